/*
 * reserve.h - room kept back on the cache's file system for the caches'
 * databases.
 *
 * When another program fills the file system the cache lives on, SQLite
 * can no longer commit: an upload the cloud took cannot be recorded, a
 * folder never listed cannot be listed, a mkdir, chmod or rename cannot
 * be remembered.  So the daemon keeps RESERVE_BYTES allocated in
 * <cache>/reserve.  The first commit that fails for lack of room releases
 * it (cachedb.c, which then tries once more), and the log says so; while
 * it is released the block cache keeps that much free on top of min_free
 * (it stores no new data where that would eat it: reads then go straight
 * to the cloud, writes fail with ENOSPC), so that the room goes to the
 * databases.  Database writes also look at the free space now and then
 * (reserve_watch): they release the reserve when little is left, and make
 * it again once the file system has twice its size free.
 *
 * One reserve per process, for the daemon's cache folder: reserve_open
 * and reserve_close by fs/ (the caches' owner), reserve_release and
 * reserve_watch by cachedb.c, reserve_held_back by the block cache.  A
 * process that never opens one (skyfs status, the unit tests) releases
 * nothing and holds nothing back.  Thread-safe.
 */
#ifndef SKY_RESERVE_H
#define SKY_RESERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "../lib/err.h"

#define RESERVE_BYTES (16u << 20)

/* Keep `bytes` in <dir>/reserve (made, or taken over from an earlier
 * process).  When the file system has no room for it now, the reserve
 * starts released (a warning in the log) and is made once there is room.
 * 0, or -errno for anything but a full file system. */
int reserve_open(const char *dir, uint64_t bytes, struct sky_err *e);

/* A commit failed for lack of room: give the reserve back to the file
 * system.  true when this call freed room (the caller tries again), false
 * when there was none to free (released already, or no reserve). */
bool reserve_release(void);

/* Before a database write: every RESERVE_WATCH_MS at most, look at the
 * file system's free space and release the reserve when less than a
 * quarter of it is left (SQLite rolls a transaction back when its commit
 * finds the disk full: better to give the room before); while released,
 * every ten times that, make it again if there is room. */
#define RESERVE_WATCH_MS 100
void reserve_watch(void);

/* A write into the cache folder failed with EDQUOT: the folder is under a
 * disk quota, which statvfs does not show.  The reserve is released (its
 * room goes to the databases; true when this call freed it, and the file
 * system is then synced so that the quota counts it) and never made again
 * in this process; the block cache keeps to `cap` bytes
 * (blocks_note_quota; UINT64_MAX: not known here), which <dir>/quota keeps
 * for `skyfs status` and the next mounts: reserve_open reads it, and
 * reserve_quota_cap says it (UINT64_MAX: none).  A quota that runs out is
 * worth avoiding, not only handling: on btrfs, SQLite's shared memory (a
 * mapped file) can then fault with SIGBUS.  Removing the file forgets the
 * quota. */
bool reserve_note_quota(uint64_t cap);
uint64_t reserve_quota_cap(void);
/* Sync the reserve's file system: what was freed counts against a quota
 * once synced (btrfs gives a qgroup its room back at a commit). */
void reserve_sync_fs(void);

/* How many bytes the block cache must leave free beyond min_free: the
 * reserve's size while it is released, else 0. */
uint64_t reserve_held_back(void);

/* Stop; the file stays for the next process. */
void reserve_close(void);

#endif
