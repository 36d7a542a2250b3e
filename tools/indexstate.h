/*
 * indexstate.h - how complete a cloud's search index is, in words, for
 * `skyfs search` (a line on stderr, a field of --json) and `skyfs status`.
 *
 * Read from the metadata database (the crawl state cache/crawlstore.h
 * keeps) and the cloud's config (index, index_interval).  Used only by
 * tools/.
 */
#ifndef SKY_INDEXSTATE_H
#define SKY_INDEXSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "../cache/crawlstore.h"
#include "../lib/config.h"

enum index_state {
    INDEX_COMPLETE,             /* a complete crawl younger than index_interval */
    INDEX_STALE,                /* complete once, longer ago than index_interval */
    INDEX_INCOMPLETE,           /* never crawled completely */
    INDEX_OFF                   /* index = off: only what was listed through the mount */
};

struct index_info {
    enum index_state state;
    struct crawl_state crawl;   /* all zero when the database has none */
    bool running;               /* a crawl began and did not end (maybe a dead daemon's) */
};

/* The index of cloud c in the metadata database db_path, as of `now`
 * (wall-clock ns). */
void index_info_read(const char *db_path, const struct sky_cloud_config *c, int64_t now,
                     struct index_info *out);

/* "complete", "stale", "incomplete" or "off". */
const char *index_state_name(enum index_state s);

/* One sentence saying what the index of cloud c covers when it is not
 * complete (no newline), into buf; false (buf "") when it is complete. */
bool index_info_warning(const struct sky_cloud_config *c, const struct index_info *in,
                        int64_t now, char *buf, size_t size);

/* A duration for people: "0.42 s", "12 min", "3 h", "2 days". */
void index_format_duration(int64_t ns, char *buf, size_t size);

#endif
