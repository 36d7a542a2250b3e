/*
 * index.h - filling the metadata index ahead of time (`skyfs index`).
 *
 * Lists a cloud (or a directory inside it) completely and stores every
 * directory's listing in the metadata cache, so that `ls -lR`, `find` and
 * `skyfs search` answer from the cache.  Where the driver has list_tree
 * (one flat listing without delimiter, as S3 and Azure allow), the whole
 * tree costs only its LIST pages; otherwise the tree is walked directory by
 * directory.
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
    bool done;
};
typedef void (*index_progress_fn)(void *arg, const struct index_progress *p);

/* Index `path` ("" = everything) of cloud `c`.  progress (may be NULL) is
 * called now and then, and once with done = true. */
int index_cloud(struct skyfs *fs, struct cloud *c, const char *path, index_progress_fn progress,
                void *arg, struct sky_err *e);

#endif
