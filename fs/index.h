/*
 * index.h - filling the metadata index ahead of time (`skyfs index`).
 *
 * Lists a cloud (or a directory inside it) completely and stores every
 * directory's listing in the metadata cache, so that `ls -lR`, `find` and
 * `skyfs search` answer from the cache.  Where the driver has list_tree
 * (one flat listing without delimiter, as S3 and Azure allow), the whole
 * tree costs only its LIST pages; otherwise the tree is walked directory by
 * directory.  Listings fill the cloud metadata they carry; the optional
 * metadata pass fetches the rest.
 *
 * Used by tools/ (skyfs index).
 */
#ifndef SKY_INDEX_H
#define SKY_INDEX_H

#include <stdint.h>

#include "skyfs.h"

struct index_progress {
    const char *cloud;
    uint64_t entries;           /* seen so far */
    uint64_t directories;       /* stored so far */
    /* the metadata pass (index_cloud with metadata = true) */
    bool meta_phase;            /* the listing pass is over, get_meta runs */
    uint64_t meta_total;        /* files whose metadata was not in the index */
    uint64_t meta_done;         /* of those, fetched and stored so far */
    bool done;
};
typedef void (*index_progress_fn)(void *arg, const struct index_progress *p);

/* Index `path` ("" = everything) of cloud `c`.  With `metadata`, a second
 * pass then calls the driver's get_meta (INDEX_META_THREADS at a time) for
 * every file under `path` whose complete metadata is not in the index yet
 * (on S3, one HEAD per object: listings carry no user metadata), so that
 * `skyfs search --meta` sees it; a file deleted meanwhile is skipped.
 * Drivers without get_meta have nothing to add.  progress (may be NULL,
 * called from one thread at a time) is called now and then, and once with
 * done = true. */
#define INDEX_META_THREADS 8
int index_cloud(struct skyfs *fs, struct cloud *c, const char *path, bool metadata,
                index_progress_fn progress, void *arg, struct sky_err *e);

#endif
