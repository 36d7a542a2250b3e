/*
 * commit.h - when what the caches recorded becomes safe from a power cut.
 *
 * The metadata cache and the block cache's journal commit with SQLite's
 * synchronous=NORMAL: a commit reaches the write-ahead log but not the
 * disk, so a crash of the daemon loses nothing, and a power cut may take
 * back what was not synced.  The journal is synced where a write is
 * acknowledged (an async close, blocks_make_durable), and so is, then,
 * the metadata cache: the mode, owner and times set on the descriptor
 * before the close (GNU tar) are as safe as the bytes.  What changes a
 * file or folder not uploaded yet after that (a rename, chmod, chown,
 * utime, symlink, mkdir, unlink) is made durable within the commit
 * interval, COMMIT_INTERVAL_MS (as ext4 commits its journal every 5 s),
 * by one thread that syncs both databases when they changed, or at once
 * by fsync of a folder (fsyncdir) or of the file (which uploads it).
 *
 * Called by fs/clouds.c (commit_start, commit_stop), ops_dirs.c
 * (fsyncdir) and files.c (the async close).
 */
#ifndef SKY_COMMIT_H
#define SKY_COMMIT_H

#include "../lib/err.h"

struct skyfs;

#define COMMIT_INTERVAL_MS 5000

/* Start the commit thread: 0 or -errno (e says why). */
int commit_start(struct skyfs *fs, struct sky_err *e);

/* Stop it, after one last commit.  Safe when it never started. */
void commit_stop(struct skyfs *fs);

/* Make every change both caches committed so far durable: 0, or the
 * first failure (-errno). */
int commit_now(struct skyfs *fs, struct sky_err *e);

/* Only the metadata cache's (for a close, whose journal entry its own
 * sync made durable). */
int commit_meta(struct skyfs *fs, struct sky_err *e);

#endif
