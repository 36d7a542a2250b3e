/*
 * crawl.h - keeping each cloud's search index complete in the background.
 *
 * A mounted cloud with `index = on` (the default) gets one crawl thread.
 * It lists the whole cloud into the metadata cache soon after the mount
 * (unless the last complete crawl, kept in the cache, is younger than the
 * cloud's `index_interval`): once the cloud has made no request for a
 * second, or 10 s after the mount at the latest, so that the first
 * listings people ask for go first; then again whenever the last complete crawl
 * is that old, so that `skyfs search` and .skyfs/search find what was put
 * into the cloud by other means, and stop finding what was removed.
 *
 * How it lists: one flat listing where the driver has list_tree (S3 and
 * Azure: a LIST page per 1,000 or 5,000 objects), streamed into the cache
 * in batches with mark-and-sweep (cache/crawlstore.h); elsewhere a walk,
 * directory by directory, each directory's listing stored as a listing
 * through the mount would be (meta_replace_listing), the next directory
 * taken from the cache (no queue in memory).
 *
 * Politely: one crawl at a time per cloud, on a thread of its own with a
 * lower CPU priority (nice 10), in short transactions that never hold the
 * cache for long, never asking the cloud while it is offline (the crawl
 * waits until the probe finds it back; a walk then goes on where it
 * stopped, a flat listing starts over).  A crawl that fails is tried
 * again after a pause (30 s, doubling up to the interval).  Stopping
 * the mount cancels a crawl at once.
 *
 * Used by fs/mount.c (crawl_start once the mount is up) and fs/clouds.c
 * (skyfs_close calls crawl_stop first).
 */
#ifndef SKY_CRAWL_H
#define SKY_CRAWL_H

#include <stdatomic.h>
#include <stdint.h>

#include "skyfs.h"

/* What one cloud's crawls did since the mount (for .skyfs and metrics). */
struct crawl_counters {
    atomic_ullong crawls;           /* crawls completed */
    atomic_ullong failures;         /* crawls that failed */
    atomic_ullong entries;          /* entries stored by all crawls */
    atomic_ullong removed;          /* entries the sweeps removed */
    atomic_ullong last_duration_ms; /* the last complete crawl's duration */
    atomic_int running;             /* 1 while a crawl runs */
};

/* Start the crawl threads of every cloud that wants one (index = on,
 * driver opened).  Errors starting a thread are logged; the mount goes on
 * without that cloud's crawl. */
void crawl_start(struct skyfs *fs);

/* Stop every crawl thread (cancelling a crawl in progress) and wait for
 * them.  Safe when none was started. */
void crawl_stop(struct skyfs *fs);

/* The counters of cloud c, or NULL when it has no crawl thread. */
const struct crawl_counters *crawl_counters_of(struct skyfs *fs, const struct cloud *c);

#endif
