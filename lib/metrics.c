/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "version.h"

#define NMETHODS 6
static const char *const method_names[NMETHODS] = { "GET", "HEAD", "PUT", "POST", "DELETE",
                                                    "OTHER" };
static const char *const outcome_names[SKY_OUTCOME_COUNT] = {
    "success", "client_error", "server_error", "network_error", "cancelled"
};

/* Upper bounds of the latency buckets, in seconds (+Inf is implied). */
#define NBUCKETS 12
static const double bucket_bounds[NBUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                0.5,   1,    2.5,   5,    10,  30 };

struct histogram {
    uint64_t buckets[NBUCKETS + 1];     /* not cumulative; the last is +Inf */
    uint64_t count;
    uint64_t sum_ns;
};

struct sky_metrics_cloud {
    char *name;
    uint64_t requests[NMETHODS][SKY_OUTCOME_COUNT];
    struct histogram latency[NMETHODS];
    uint64_t sent, received, retries;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sky_metrics_cloud clouds[SKY_METRICS_MAX_CLOUDS];
static size_t nclouds;      /* published with release order after the slot is ready */
static uint64_t counters[SKY_M_COUNTER_COUNT];
/* readers hold it while the collector runs, so removing one waits */
static pthread_rwlock_t collector_lock = PTHREAD_RWLOCK_INITIALIZER;
static sky_metrics_collect_fn collector;
static void *collector_arg;
static int64_t start_time_s;

static void add(uint64_t *v, uint64_t n)
{
    __atomic_fetch_add(v, n, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *v)
{
    return __atomic_load_n(v, __ATOMIC_RELAXED);
}

struct sky_metrics_cloud *sky_metrics_cloud(const char *name)
{
    if (!name)
        return NULL;
    size_t n = __atomic_load_n(&nclouds, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < n; i++)
        if (strcmp(clouds[i].name, name) == 0)
            return &clouds[i];
    struct sky_metrics_cloud *found = NULL;
    pthread_mutex_lock(&reg_lock);
    n = nclouds;
    for (size_t i = 0; i < n && !found; i++)
        if (strcmp(clouds[i].name, name) == 0)
            found = &clouds[i];
    if (!found && n < SKY_METRICS_MAX_CLOUDS) {
        memset(&clouds[n], 0, sizeof clouds[n]);
        if ((clouds[n].name = strdup(name)) != NULL) {
            found = &clouds[n];
            __atomic_store_n(&nclouds, n + 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return found;
}

static int method_index(const char *method)
{
    for (int i = 0; i < NMETHODS - 1; i++)
        if (method && strcmp(method, method_names[i]) == 0)
            return i;
    return NMETHODS - 1;
}

void sky_metrics_http(struct sky_metrics_cloud *c, const char *method,
                      enum sky_metrics_outcome outcome, double seconds, uint64_t sent,
                      uint64_t received)
{
    if (!c || outcome < 0 || outcome >= SKY_OUTCOME_COUNT)
        return;
    int m = method_index(method);
    add(&c->requests[m][outcome], 1);
    if (seconds < 0 || isnan(seconds))
        seconds = 0;
    int b = 0;
    while (b < NBUCKETS && seconds > bucket_bounds[b])
        b++;
    struct histogram *h = &c->latency[m];
    add(&h->buckets[b], 1);
    add(&h->count, 1);
    add(&h->sum_ns, (uint64_t)(seconds * 1e9));
    add(&c->sent, sent);
    add(&c->received, received);
}

void sky_metrics_http_retry(struct sky_metrics_cloud *c)
{
    if (c)
        add(&c->retries, 1);
}

void sky_metrics_inc(enum sky_metrics_counter which)
{
    if (which >= 0 && which < SKY_M_COUNTER_COUNT)
        add(&counters[which], 1);
}

void sky_metrics_set_collector(sky_metrics_collect_fn fn, void *arg)
{
    pthread_rwlock_wrlock(&collector_lock);
    collector = fn;
    collector_arg = arg;
    if (!start_time_s)
        start_time_s = (int64_t)time(NULL);
    pthread_rwlock_unlock(&collector_lock);
}

void sky_metrics_reset(void)
{
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < nclouds; i++)
        free(clouds[i].name);
    memset(clouds, 0, sizeof clouds);
    memset(counters, 0, sizeof counters);
    __atomic_store_n(&nclouds, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&reg_lock);
}

/* ---- the text --------------------------------------------------------- */

struct sky_metrics_text {
    FILE *f;
};

void sky_metrics_family(struct sky_metrics_text *t, const char *name, const char *type,
                        const char *help)
{
    fprintf(t->f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped. */
static void put_label_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f), fputc(*v, f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void put_number(FILE *f, double v)
{
    if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    else if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
        fprintf(f, "%lld", (long long)v);
    else
        fprintf(f, "%.9g", v);
}

void sky_metrics_sample(struct sky_metrics_text *t, const char *name, const char *label,
                        const char *value, double v)
{
    fputs(name, t->f);
    if (label && value) {
        fprintf(t->f, "{%s=\"", label);
        put_label_value(t->f, value);
        fputs("\"}", t->f);
    }
    fputc(' ', t->f);
    put_number(t->f, v);
    fputc('\n', t->f);
}

/* name{cloud="C",k2="v2"[,le="..."]} value */
static void sample2(FILE *f, const char *name, const char *cloud, const char *k2,
                    const char *v2, const char *le, double v)
{
    fprintf(f, "%s{cloud=\"", name);
    put_label_value(f, cloud);
    fputc('"', f);
    if (k2)
        fprintf(f, ",%s=\"%s\"", k2, v2);
    if (le)
        fprintf(f, ",le=\"%s\"", le);
    fputs("} ", f);
    put_number(f, v);
    fputc('\n', f);
}

static void render_http(struct sky_metrics_text *t, size_t n)
{
    FILE *f = t->f;
    sky_metrics_family(t, "skyfs_cloud_requests_total", "counter",
                       "HTTP requests sent to each cloud (every attempt, retries included), "
                       "by method and outcome.");
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < NMETHODS; m++)
            for (int o = 0; o < SKY_OUTCOME_COUNT; o++) {
                uint64_t v = get(&clouds[i].requests[m][o]);
                if (!v)
                    continue;
                fprintf(f, "skyfs_cloud_requests_total{cloud=\"");
                put_label_value(f, clouds[i].name);
                fprintf(f, "\",method=\"%s\",outcome=\"%s\"} %llu\n", method_names[m],
                        outcome_names[o], (unsigned long long)v);
            }
    sky_metrics_family(t, "skyfs_cloud_request_duration_seconds", "histogram",
                       "Time each HTTP attempt to a cloud took, by method.");
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < NMETHODS; m++) {
            const struct histogram *h = &clouds[i].latency[m];
            uint64_t count = get(&h->count);
            if (!count)
                continue;
            uint64_t cumulative = 0;
            char le[32];
            for (int b = 0; b < NBUCKETS; b++) {
                cumulative += get(&h->buckets[b]);
                snprintf(le, sizeof le, "%g", bucket_bounds[b]);
                sample2(f, "skyfs_cloud_request_duration_seconds_bucket", clouds[i].name,
                        "method", method_names[m], le, (double)cumulative);
            }
            cumulative += get(&h->buckets[NBUCKETS]);
            /* the +Inf bucket equals _count; both from one reading */
            sample2(f, "skyfs_cloud_request_duration_seconds_bucket", clouds[i].name,
                    "method", method_names[m], "+Inf", (double)cumulative);
            sample2(f, "skyfs_cloud_request_duration_seconds_sum", clouds[i].name, "method",
                    method_names[m], NULL, (double)get(&h->sum_ns) / 1e9);
            sample2(f, "skyfs_cloud_request_duration_seconds_count", clouds[i].name,
                    "method", method_names[m], NULL, (double)cumulative);
        }
    static const struct {
        const char *name, *help;
        size_t off;
    } per_cloud[] = {
        { "skyfs_cloud_sent_bytes_total", "Body bytes sent to each cloud (uploads).",
          offsetof(struct sky_metrics_cloud, sent) },
        { "skyfs_cloud_received_bytes_total", "Body bytes received from each cloud "
          "(downloads, listings).", offsetof(struct sky_metrics_cloud, received) },
        { "skyfs_cloud_request_retries_total", "HTTP attempts that retried a failed one "
          "(after backoff).", offsetof(struct sky_metrics_cloud, retries) },
    };
    for (size_t k = 0; k < sizeof per_cloud / sizeof per_cloud[0]; k++) {
        sky_metrics_family(t, per_cloud[k].name, "counter", per_cloud[k].help);
        for (size_t i = 0; i < n; i++) {
            const uint64_t *v = (const uint64_t *)((const char *)&clouds[i] + per_cloud[k].off);
            sky_metrics_sample(t, per_cloud[k].name, "cloud", clouds[i].name, (double)get(v));
        }
    }
}

char *sky_metrics_render(size_t *len)
{
    char *out = NULL;
    size_t size = 0;
    struct sky_metrics_text t = { open_memstream(&out, &size) };
    if (!t.f)
        return NULL;
    sky_metrics_family(&t, "skyfs_build_info", "gauge", "The running skyfs version.");
    sky_metrics_sample(&t, "skyfs_build_info", "version", SKYFS_VERSION, 1);
    pthread_rwlock_rdlock(&collector_lock);
    int64_t started = start_time_s;
    if (started) {
        sky_metrics_family(&t, "skyfs_start_time_seconds", "gauge",
                           "When the daemon started, in seconds since the epoch.");
        sky_metrics_sample(&t, "skyfs_start_time_seconds", NULL, NULL, (double)started);
    }
    render_http(&t, __atomic_load_n(&nclouds, __ATOMIC_ACQUIRE));
    static const struct {
        enum sky_metrics_counter which;
        const char *name, *help;
    } plain[] = {
        { SKY_M_META_HITS, "skyfs_cache_metadata_hits_total",
          "Lookups, stats and listings answered by the metadata cache." },
        { SKY_M_META_MISSES, "skyfs_cache_metadata_misses_total",
          "Lookups, stats and listings that had to ask the cloud." },
        { SKY_M_UPLOAD_RETRIES, "skyfs_upload_retries_total",
          "Pending uploads of the journal tried again (after a failure or a restart)." },
        { SKY_M_CONFLICTS, "skyfs_conflicts_total",
          "Changes that met another machine's change of the same file (issue 17): uploads "
          "kept as conflict copies, deletes not made." },
        { SKY_M_LIST_AHEAD, "skyfs_list_ahead_total",
          "Folders queued to be listed in the background ahead of a reader (list_ahead)." },
        { SKY_M_OPEN_AHEAD, "skyfs_open_ahead_total",
          "Files brought into the block cache ahead of a reader going through their folder "
          "(open_ahead)." },
    };
    for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++) {
        sky_metrics_family(&t, plain[k].name, "counter", plain[k].help);
        sky_metrics_sample(&t, plain[k].name, NULL, NULL, (double)get(&counters[plain[k].which]));
    }
    if (collector)
        collector(collector_arg, &t);
    pthread_rwlock_unlock(&collector_lock);
    if (fclose(t.f) != 0) {
        free(out);
        return NULL;
    }
    if (len)
        *len = size;
    return out;
}
