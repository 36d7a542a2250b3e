/*
 * renamelog.h - renames on object stores that a crash cut short are
 * finished.
 *
 * On an object store a rename is copies then deletes: a file's, one copy
 * and one delete; a directory's, every object under it copied to the new
 * name, then deleted (backends/objstore_dirs.c).  A daemon killed in the
 * middle left both names on the cloud (a directory's old tree whole or in
 * part and the new one in part), the cache still showing the old name,
 * pending uploads under it, and a retry of a directory's rename refused
 * (the new name is a directory that is not empty).  So a rename on such a
 * cloud (a driver with rename_finish) is recorded in the metadata cache
 * (and synced) before its first request and the record dropped once the caches follow
 * it (meta_move_begin/end: two small commits, next to the rename's two or
 * more requests); a record found at the next mount means the rename was
 * cut short, and the journal thread finishes it before its first upload:
 * the driver moves what is left (rename_finish), then the block cache's
 * pending uploads and the cache's entries take the new name, as after any
 * rename, and both folders are listed again.
 *
 * Called by ops_names.c (record, drop) and files.c (the journal thread's
 * passes).
 */
#ifndef SKY_FS_RENAMELOG_H
#define SKY_FS_RENAMELOG_H

#include <stdbool.h>

#include "../lib/err.h"

struct skyfs;
struct cloud;

/* Before the driver's rename of `from` to `to` on cloud c: true when it
 * is recorded (c's renames take several steps), and renamelog_done must
 * follow once the caches know the new name, or the rename failed. */
bool renamelog_begin(struct skyfs *fs, struct cloud *c, const char *from, const char *to);
void renamelog_done(struct skyfs *fs, struct cloud *c, const char *from);

/* Read the renames an earlier daemon left recorded, before the journal
 * thread starts (and before this daemon makes renames of its own: those
 * are recorded too, and are not to be finished by anyone else). */
void renamelog_load(struct skyfs *fs);
/* Finish them; one on a cloud that is offline or fails is tried again at
 * the next call.  Returns how many are left to try.  The journal thread's
 * only. */
int renamelog_finish(struct skyfs *fs);
/* Forget what renamelog_finish holds (the journal thread, ending). */
void renamelog_free(struct skyfs *fs);

#endif
