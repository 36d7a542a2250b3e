/*
 * crawlstore.h - what the background crawl (fs/crawl.h) writes into the
 * metadata cache, and each cloud's crawl state.
 *
 * A crawl lists a whole cloud.  Where the driver has a flat listing
 * (list_tree), its entries arrive as paths relative to the cloud root and
 * are stored in batches (meta_crawl_store, one short transaction each, so
 * neither memory nor the cache's lock is held for long), every entry
 * stored or confirmed being marked with the crawl's generation.  Once the
 * listing is complete, meta_crawl_sweep removes, again in batches, the
 * entries of the cloud the crawl did not see and the mount did not touch
 * since the crawl began: they are gone from the cloud.  (Mark and sweep:
 * the listing is never held in memory.)
 *
 * The rules that keep the crawl out of the way of the mount:
 *  - an entry the mount fetched or changed after the crawl began is left
 *    as it is (its news are newer than the crawl's);
 *  - the crawl never marks a directory's listing complete (listed_at):
 *    fs/ still lists a directory from the cloud when its ttl says so;
 *  - what the crawl stores follows the same rules as a listing
 *    (meta_update_attr): kinds and symlink targets a listing cannot know
 *    are kept while an object keeps its version (etag).
 * Known limit (no tombstones): an object the mount deletes between the
 * crawl reading its LIST page and storing that batch (well under a
 * second) comes back into the cache, as with a listing that was under
 * way; the cloud's ttl, or the next crawl's sweep, removes it again.
 *
 * The state of each cloud's crawls (table `crawls`) is read by fs/ (when
 * to crawl next) and by tools/ (skyfs status, skyfs search), the latter
 * with crawlstate_read_file on a read-only connection of their own.
 *
 * Used by fs/crawl.c (writes) and tools/ (reads).
 */
#ifndef SKY_CRAWLSTORE_H
#define SKY_CRAWLSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../backends/driver.h"
#include "../lib/err.h"
#include "meta.h"

/* One cloud's crawls.  Times are wall-clock ns since the epoch. */
struct crawl_state {
    int64_t gen;                /* generation of the latest crawl (0: never crawled) */
    int64_t running_since;      /* a crawl began then and has not ended (0: none); after
                                 * a daemon was killed it stays set until the next one */
    uint64_t running_seen;      /* entries it has stored so far */
    int64_t done_started;       /* the last complete crawl began then (0: never): the
                                 * index holds the cloud as it was at that time */
    int64_t done_finished;      /* ... and ended then */
    uint64_t done_entries;      /* ... having seen that many entries */
    int64_t failed_at;          /* the last crawl that failed, after done_*: when (0: none) */
    char error[256];            /* ... and why */
};

/* The state of `cloud` (all zero when it was never crawled). */
int meta_crawl_state(struct meta *m, const char *cloud, struct crawl_state *out,
                     struct sky_err *e);

/* A crawl of `cloud` begins at `now`: *gen gets its generation. */
int meta_crawl_begin(struct meta *m, const char *cloud, int64_t now, int64_t *gen,
                     struct sky_err *e);

/* Store n listed entries of `cloud` in one transaction.  ents[i].name is
 * the path relative to the cloud root ("a/b/c.txt"); directories above
 * an entry that are not in the cache are added (a flat listing need not
 * report them).  `asof` is when they were listed (their fetched_at);
 * `started` when the crawl began (entries fetched since are left alone);
 * `seen` the crawl's count so far, kept for skyfs status.  Entries whose
 * path holds a part that cannot be a file name are skipped. */
int meta_crawl_store(struct meta *m, const char *cloud, int64_t gen, int64_t started,
                     int64_t asof, const struct sky_dirent *ents, size_t n, uint64_t seen,
                     struct sky_err *e);

/* One batch of the sweep after a complete crawl of generation `gen`,
 * begun at `started`: looks at up to `batch` entries of `cloud` after
 * *cursor (path order; start with NULL, free it at the end) and removes
 * those the crawl did not mark and that were fetched before it began
 * (with everything below them).  *removed grows by the entries removed;
 * *done is set when the cloud has been gone through. */
int meta_crawl_sweep(struct meta *m, const char *cloud, int64_t gen, int64_t started,
                     char **cursor, size_t batch, uint64_t *removed, bool *done,
                     struct sky_err *e);

/* The walk (clouds without list_tree): the first directory of `cloud`
 * whose path sorts after `after` ("" for the cloud root's children on),
 * into *ino and *path (malloc'd); -ENOENT when there is none.  Children
 * sort after their parent, so listing each directory found this way, in
 * turn, reaches every directory once, with no queue in memory. */
int meta_crawl_next_dir(struct meta *m, const char *cloud, const char *after, uint64_t *ino,
                        char **path, struct sky_err *e);

/* The crawl that began at `started` ended at `finished`: complete with
 * `entries` entries when error is NULL, else failed with that reason. */
int meta_crawl_end(struct meta *m, const char *cloud, int64_t started, int64_t finished,
                   uint64_t entries, const char *error, struct sky_err *e);

/* For readers outside the daemon: the state of `cloud` in the metadata
 * database at db_path, opened read-only.  -ENOENT when the database has
 * no crawl state at all (written by an older skyfs, or missing). */
int crawlstate_read_file(const char *db_path, const char *cloud, struct crawl_state *out,
                         struct sky_err *e);

#endif
