/*
 * metrics.h - the daemon's counters and histograms, and their text in the
 * Prometheus exposition format (version 0.0.4).
 *
 * One process-wide registry.  Counting is a relaxed atomic add, cheap
 * enough for every HTTP attempt and every cache lookup; nothing here
 * locks on the counting path except the first use of a cloud's name.
 *
 * Who counts what (one-line hooks, nowhere else):
 *   backends/http.c   every HTTP attempt of a cloud: requests by method
 *                     and outcome, latency, bytes sent and received,
 *                     retries (sky_metrics_http_*);
 *   fs/ (refresh.c, ops.c)  metadata cache hits and misses;
 *   fs/files.c        upload retries from the journal;
 *   fs/conflicts.c    conflicts with other machines.
 * A driver that speaks HTTP gets its cloud's series by building its
 * client from http_options_from_cloud (which names the cloud).
 * Gauges and the block cache's own counters are read when the text is
 * rendered, from the collector fs/ registers (sky_metrics_set_collector):
 * block cache bytes and limit, block hits and misses, pending uploads,
 * each cloud's health.  lib/ never knows fs/.
 *
 * Readers: MOUNTPOINT/.skyfs/metrics (fs/virtual.c), `skyfs metrics`
 * (tools/metrics.c, which reads that file) and the optional HTTP
 * listener (fs/mountmetrics.c), all through sky_metrics_render.
 *
 * Names follow Prometheus's conventions: skyfs_ prefix, base units
 * (seconds, bytes), _total on counters.  Label values are escaped.
 */
#ifndef SKY_METRICS_H
#define SKY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many clouds get their own series; names past it are not
 * counted (a config holds far fewer clouds). */
#define SKY_METRICS_MAX_CLOUDS 128

struct sky_metrics_cloud;

/* The slot of cloud `name` (made at first use; the name is copied), or
 * NULL when the table is full or out of memory (counting then does
 * nothing: every sky_metrics_* call accepts NULL). */
struct sky_metrics_cloud *sky_metrics_cloud(const char *name);

/* Outcome of one HTTP attempt. */
enum sky_metrics_outcome {
    SKY_OUTCOME_SUCCESS,        /* 1xx-3xx answer */
    SKY_OUTCOME_CLIENT_ERROR,   /* 4xx answer (404 to a HEAD included) */
    SKY_OUTCOME_SERVER_ERROR,   /* 5xx answer */
    SKY_OUTCOME_NETWORK_ERROR,  /* no answer: connection failed, reset, timed out */
    SKY_OUTCOME_CANCELLED,      /* given up by skyfs (interrupted, stopping) */
    SKY_OUTCOME_COUNT
};

/* One HTTP attempt to cloud c: `method` ("GET", "PUT"...; others are
 * counted as "OTHER"), its outcome, how long it took, and the body bytes
 * it sent and received. */
void sky_metrics_http(struct sky_metrics_cloud *c, const char *method,
                      enum sky_metrics_outcome outcome, double seconds, uint64_t sent,
                      uint64_t received);
/* An attempt that is a retry of a failed one (after backoff). */
void sky_metrics_http_retry(struct sky_metrics_cloud *c);

/* Process-wide counters fs/ moves. */
enum sky_metrics_counter {
    SKY_M_META_HITS,            /* a lookup, stat or listing answered by the metadata cache */
    SKY_M_META_MISSES,          /* ... that had to ask the cloud */
    SKY_M_UPLOAD_RETRIES,       /* uploads of the journal tried again */
    SKY_M_CONFLICTS,            /* another machine's change met (fs/conflicts.c) */
    SKY_M_LIST_AHEAD,           /* folders queued for a listing ahead (fs/listahead.c) */
    SKY_M_OPEN_AHEAD,           /* files fetched ahead of a reader (fs/openahead.c) */
    SKY_M_COUNTER_COUNT
};
void sky_metrics_inc(enum sky_metrics_counter which);

/* The text being rendered; a collector adds whole families to it. */
struct sky_metrics_text;

/* A family header: "# HELP name help" and "# TYPE name type" (type is
 * "counter" or "gauge").  Its samples follow with sky_metrics_sample. */
void sky_metrics_family(struct sky_metrics_text *t, const char *name, const char *type,
                        const char *help);
/* One sample of the family just started; `label`/`value` name one label
 * (both NULL: none).  The value is escaped. */
void sky_metrics_sample(struct sky_metrics_text *t, const char *name, const char *label,
                        const char *value, double v);

/* Called at each render (from the rendering thread) to add the gauges and
 * counters that live elsewhere.  One collector; NULL removes it.  The
 * caller keeps arg alive until it removes the collector. */
typedef void (*sky_metrics_collect_fn)(void *arg, struct sky_metrics_text *t);
void sky_metrics_set_collector(sky_metrics_collect_fn fn, void *arg);

/* The whole exposition text (malloc'd, NUL-ended, *len without the NUL),
 * or NULL when out of memory. */
char *sky_metrics_render(size_t *len);

/* Forget every count and cloud (unit tests). */
void sky_metrics_reset(void);

#endif
