/*
 * cachedir.h - the cache folder as the property of one daemon.
 *
 * Two daemons on one cache folder would both believe they own its upload
 * journal: the second one's recovery uploads a file the first still has
 * open and marks it clean, the first's later writes are then never
 * journaled, and a crash loses acknowledged data.  So a daemon claims the
 * folder for its whole life with a lock on `<dir>/lock` (a POSIX record
 * lock: the kernel drops it when the daemon exits or is killed, and tells
 * others the holder's pid), and a second daemon is refused with a message
 * that names the holder.  The lock file also says which mountpoint the
 * holder serves and where it logs, for `skyfs status`.
 *
 * Claiming also makes the folder private, whatever existed before: the
 * folder and every folder in it 0700, every file 0600 (the databases with
 * their -wal and -shm files, block data, health files), and the daemon
 * creates new files with umask 077.
 *
 * Used by fs/mount.c (the daemon) and tools/ (status, unmount).  The
 * daemon must not open `<dir>/lock` anywhere else: closing any descriptor
 * of that file would drop its POSIX lock.
 */
#ifndef SKY_CACHEDIR_H
#define SKY_CACHEDIR_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/err.h"

/* Create `dir` (0700) if needed, check that it belongs to this user, lock
 * it for this process (fails with -EBUSY and a message naming the holding
 * daemon's pid and mountpoint, and the fix), record `mountpoint` and
 * `log_path` (either may be NULL) for others, and make every folder in it
 * 0700 and every file 0600.  *lock_fd stays open for the daemon's life. */
int cachedir_claim(const char *dir, const char *mountpoint, const char *log_path,
                   int *lock_fd, struct sky_err *e);
void cachedir_release(int lock_fd);

/* Who holds a cache folder. */
struct cachedir_holder {
    pid_t pid;                    /* 0 when no daemon holds it */
    char mountpoint[PATH_MAX];    /* served (or last served) mountpoint, "" unknown */
    char log_path[PATH_MAX];      /* its log file, "" when it logs nowhere */
};

/* Fill `h` from `dir`: the pid of the daemon holding the lock right now
 * (0 when none, e.g. after kill -9), and what the lock file last recorded.
 * Returns 0, or -errno when the folder cannot be read. */
int cachedir_holder(const char *dir, struct cachedir_holder *h, struct sky_err *e);

/* Files waiting for upload in the journal of the cache at `dir`, read
 * without changing anything (0 when the cache has no block database). */
int cachedir_pending_uploads(const char *dir, uint64_t *count, struct sky_err *e);

/* Before per-mount cache folders, every mount without [cache] dir shared
 * the folder `legacy`.  If `dir` does not exist yet and `legacy` holds a
 * cache last mounted at `mountpoint`, move that cache (databases, block
 * data, health) into `dir` so its pending uploads and index are kept.
 * *moved says whether it did. */
int cachedir_adopt_legacy(const char *legacy, const char *dir, const char *mountpoint,
                          bool *moved, struct sky_err *e);

#endif
