/*
 * moved.h - after a rename, the caches take the moved objects' versions as
 * the cloud now holds them (issue 17).
 *
 * Object stores rename by copy + delete, and a copy may carry a new
 * version token (Azure gives every copy a new ETag; S3 does for multipart
 * objects).  A cache that kept the pre-copy token would make this mount's
 * next conditional delete or upload of a moved file meet "another
 * machine's" version that is its own: a kept file, a needless conflict
 * copy.  So right after the driver's rename, the metadata cache, the
 * block cache (the base of a pending upload) and the open files take the
 * tokens the cloud reports: one stat for a file, one listing per cached
 * directory for a directory tree.  If that cannot be done (the cloud fails
 * the question), the paths under the destination are remembered as
 * unverified, and the next conditional operation on one of them first
 * asks the cloud for its version (moved_verify).
 *
 * Called by fs/ops_names.c (rename, unlink) and fs/files.c (uploads) only.
 * Thread-safe.
 */
#ifndef SKY_FS_MOVED_H
#define SKY_FS_MOVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../backends/driver.h"

struct skyfs;
struct cloud;

/* Entry `ino` (a file, or with `dir` a directory and everything the cache
 * holds under it) was just renamed to `to` on cloud c, and the caches
 * already know it under its new name: give it (them) the versions the
 * cloud holds now. */
void moved_refresh(struct skyfs *fs, struct cloud *c, uint64_t ino, const char *to, bool dir);

/* Before a conditional operation on `path` that expects version `etag`
 * (etag[0..size), a file's): when path lies under a rename whose refresh
 * failed, ask the cloud for path's version and take it into etag and the
 * caches (entry ino; 0 if none).  Returns true when etag changed.  (A
 * change another machine made between that rename and this call is then
 * taken as this mount's: the weaker guarantee, after a failure only.) */
bool moved_verify(struct skyfs *fs, struct cloud *c, uint64_t ino, const char *path,
                  char *etag, size_t size);

/* Forget the unverified marks of cloud c (at unmount). */
void moved_forget(struct cloud *c);

#endif
