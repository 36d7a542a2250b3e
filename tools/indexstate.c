/* indexstate.c - see indexstate.h. */
#include "indexstate.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void index_info_read(const char *db_path, const struct sky_cloud_config *c, int64_t now,
                     struct index_info *out)
{
    memset(out, 0, sizeof *out);
    struct sky_err e = { 0 };
    if (crawlstate_read_file(db_path, c->name, &out->crawl, &e) != 0)
        memset(&out->crawl, 0, sizeof out->crawl);
    out->running = out->crawl.running_since > 0;
    if (!c->index)
        out->state = INDEX_OFF;
    else if (out->crawl.done_started <= 0)
        out->state = INDEX_INCOMPLETE;
    else if (c->index_interval_ns != SKY_TTL_FOREVER &&
             now - out->crawl.done_started > c->index_interval_ns)
        out->state = INDEX_STALE;
    else
        out->state = INDEX_COMPLETE;
}

const char *index_state_name(enum index_state s)
{
    switch (s) {
    case INDEX_COMPLETE: return "complete";
    case INDEX_STALE: return "stale";
    case INDEX_INCOMPLETE: return "incomplete";
    default: return "off";
    }
}

void index_format_duration(int64_t ns, char *buf, size_t size)
{
    double s = (double)ns / 1e9;
    if (s < 60)
        snprintf(buf, size, "%.2f s", s);
    else if (s < 3600)
        snprintf(buf, size, "%.0f min", s / 60);
    else if (s < 2 * 86400)
        snprintf(buf, size, "%.1f h", s / 3600);
    else
        snprintf(buf, size, "%.0f days", s / 86400);
}

bool index_info_warning(const struct sky_cloud_config *c, const struct index_info *in,
                        int64_t now, char *buf, size_t size)
{
    char age[32], interval[32], failed[300] = "";
    buf[0] = '\0';
    if (in->crawl.failed_at > 0 && in->crawl.error[0])
        snprintf(failed, sizeof failed, "; the last crawl failed: %s", in->crawl.error);
    switch (in->state) {
    case INDEX_COMPLETE:
        return false;
    case INDEX_OFF:
        snprintf(buf, size, "cloud '%s' has index = off: its results hold only what was listed "
                 "through the mount", c->name);
        return true;
    case INDEX_INCOMPLETE:
        if (in->running)
            snprintf(buf, size, "cloud '%s' is not fully indexed yet (a crawl is under way, "
                     "%llu entries so far%s)", c->name,
                     (unsigned long long)in->crawl.running_seen, failed);
        else
            snprintf(buf, size, "cloud '%s' is not fully indexed yet (no complete crawl; mount "
                     "it, or run skyfs index%s)", c->name, failed);
        return true;
    case INDEX_STALE:
        index_format_duration(now - in->crawl.done_started, age, sizeof age);
        index_format_duration(c->index_interval_ns, interval, sizeof interval);
        snprintf(buf, size, "cloud '%s' was last fully indexed %s ago, longer ago than its "
                 "index_interval (%s)%s%s", c->name, age, interval,
                 in->running ? "; a crawl is under way" : "", failed);
        return true;
    }
    return false;
}
