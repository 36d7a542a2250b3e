/*
 * localdirs.h - folders and symlinks made on a write_back = async cloud
 * and not created on it yet (deferred mkdir and symlink).
 *
 * A symlink is deferred as a folder is (below, "folder" stands for both
 * where a symlink can be one): an entry marked local-only with its target,
 * created by the same flush, after its local-only folders; its unlink or
 * rename sends nothing, its readlink answers from the cache.  One that
 * meets another machine's file or folder at its name at creation goes
 * beside it as a conflict copy (NAME.conflict-HOST-DATE).
 *
 * On such a cloud mkdir answers from the cache alone: the folder is an
 * entry marked local-only (meta_set_local_only), with its attributes, and
 * the cloud hears of it later, in order: before anything is put under it
 * (a file's upload, a symlink, a rename into it: localdirs_ensure creates
 * it and its local-only parents first, top down), or, for a folder that
 * stays empty, when the write-back thread next flushes the folders
 * (localdirs_flush, once unchanged for the cloud's write_back_delay; at
 * unmount; and
 * at every pass of the journal thread, which after a crash finds the
 * folders the last mount left local-only).  Until then a chmod, chown or
 * utime of it changes the cache only (the create carries them), lookups
 * and listings in it ask nothing, and an rmdir or a rename of it sends
 * nothing at all.
 *
 * A folder is created with the driver's mkdir under SKY_EXPECT_ANY: one
 * already there (another machine made the same folder) is taken as ours,
 * so an object store just puts its marker, asking nothing first.
 *
 * Ops that decide a folder is still local-only (an rmdir, a rename of
 * it: ops_names.c) hold localdirs_lock, held by one thread at a time,
 * recursively, and taken only once no creation runs (new creations wait
 * for a thread waiting for it).  Creations by localdirs_ensure outside it
 * run beside each other (the upload workers create different folders at
 * once), each folder claimed by one of them while it is created, the
 * others waiting for it and then finding it made; inside it (a rename
 * creating its folders) they run under it, claiming each folder too.  An
 * op that changes one entry alone (chmod, chown, utime of a folder: ops.c)
 * claims that entry with localdirs_hold instead: it waits only for a
 * creation of that entry, never for the creation of other folders over
 * the network (tar setting its folders' times while the workers create
 * them).
 * Both are taken inside an upload's locks (the write-back tree lock, a
 * file's upload lock), never around them.
 *
 * Called by ops*.c, files.c (uploads), writeback.c and the journal thread.
 */
#ifndef SKY_LOCALDIRS_H
#define SKY_LOCALDIRS_H

#include "skyfs.h"

/* Is `ent` a folder or symlink made here and not created on its cloud
 * yet? */
bool localdirs_deferred(const struct meta_entry *ent);
/* The same for entry ino, read from the cache (false when not there);
 * *parent (when not NULL) gets its parent. */
bool localdirs_deferred_ino(struct skyfs *fs, uint64_t ino, uint64_t *parent);

/* Create folder `ino` of cloud c on the cloud, with its local-only
 * ancestors first, when it is local-only; nothing for any other entry
 * (or ino 0).  0 or -errno (e filled); what was created stays created. */
int localdirs_ensure(struct skyfs *fs, struct cloud *c, uint64_t ino, struct sky_err *e);

/* localdirs_ensure for an entry whose cloud the caller does not know
 * (xattr calls): loads it; 0 for anything but a local-only folder. */
int localdirs_ensure_ino(struct skyfs *fs, uint64_t ino, struct sky_err *e);

/* Create every local-only folder of cloud c (the empty ones too) that
 * has settled: unchanged (its ctime) for settle_ns (0: all of them); the
 * others are left, and *next (when not NULL) gets the wall-clock time the
 * first of them settles (0: none left).  0, or the first failure (e
 * filled) after trying them all. */
int localdirs_flush(struct skyfs *fs, struct cloud *c, int64_t settle_ns, int64_t *next,
                    struct sky_err *e);

/* localdirs_flush of every cloud whose driver is open (settle: each
 * write_back = async cloud's write_back_delay, else none), failures
 * logged; *next as above, over all clouds.  Returns the number of clouds
 * whose flush failed. */
int localdirs_flush_all(struct skyfs *fs, bool settle, int64_t *next);

/* The folders of cloud path `path` (each prefix before a '/'), for a
 * pending upload whose metadata is gone: a local-only one is created as
 * by localdirs_ensure; one the cache does not know is created with
 * default attributes (0755) unless the cloud has it; one the cache knows on
 * the cloud is left alone.  0 or -errno (e filled). */
int localdirs_ensure_path(struct skyfs *fs, struct cloud *c, const char *path,
                          struct sky_err *e);

/* The journal thread's pass: every cloud with local-only folders gets
 * them created, by the write-back workers on a write_back = async cloud
 * (writeback_dirs_due), else here.  Returns the number of clouds whose
 * creation failed here. */
int localdirs_recover(struct skyfs *fs);

void localdirs_lock(struct skyfs *fs);
void localdirs_unlock(struct skyfs *fs);

/* One entry claimed: by a creation while it creates it, or by an op's
 * localdirs_hold (the caller's storage, listed in fs->localdirs_claims). */
struct localdirs_claim {
    uint64_t ino;
    struct localdirs_claim *next;
};

/* Claim entry ino as a creation does (waiting while one creates it), so
 * that it is not created until localdirs_release: the caller decides
 * whether it is still local-only and changes it in the cache. */
void localdirs_hold(struct skyfs *fs, struct localdirs_claim *k, uint64_t ino);
void localdirs_release(struct skyfs *fs, struct localdirs_claim *k);

#endif
