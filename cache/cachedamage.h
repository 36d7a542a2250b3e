/*
 * cachedamage.h - a cache database found damaged: set aside, a new one
 * made, and what cannot be fetched again copied out of the old one.
 *
 * SQLite survives crashes and power loss on its own; what it cannot
 * survive is a file damaged under it: a disk that garbles or loses
 * sectors, another program writing into the file, a copy of the cache
 * taken in the middle of a write.  Such a file fails to open ("file is not
 * a database"), fails PRAGMA quick_check, or fails a query later
 * (SQLITE_CORRUPT).  cachedb maps those to EUCLEAN ("structure needs
 * cleaning", what the kernel's own filesystems return for damaged
 * metadata), and the daemon repairs at its next open: the damaged file,
 * with its write-ahead log, moves into `<cache dir>/damaged/<time>-<pid>/`
 * (never deleted: the person may want it), a new file is made, and the
 * rows that exist nowhere else are copied from the old file in one
 * transaction, as far as SQLite can still read them: the metadata cache's
 * entries not yet on their clouds (meta.c), the block cache's pending
 * uploads (blocks.c).  The rest is a cache and is fetched again.
 *
 * Used by cache/meta.c and cache/blocks.c when the daemon, which owns the
 * cache folder (cachedir_claim), opens them; struct cache_repair is how
 * they tell the daemon (fs/clouds.c), which logs it.  Tools that only look
 * at the caches never repair.
 */
#ifndef SKY_CACHEDAMAGE_H
#define SKY_CACHEDAMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

/* What an open repaired, for the log. */
struct cache_repair {
    bool repaired;          /* a damaged database was set aside and replaced */
    bool lost;              /* what exists nowhere else could not all be kept */
    char msg[1536];         /* one paragraph: what was found, where it went, what was kept */
    /* Pending files whose data a power cut took while they were written
     * (blocks.c blocks_drop_lost_files), for a warning; "" when none. */
    char unsaved[1024];
};

struct cachedb;

/* Whether a -errno from cachedb (or from an open) means a damaged file. */
bool cachedamage_is(int rc);

/* Take out of an error message what cachedb adds for the person (the
 * advice to remount), in place: for a repair's own message. */
void cachedamage_plain(char *msg);

/* Begin the repair of the database file `db_path`, which failed to open
 * with error e: keep e's message (without cachedb's advice) in found[size]
 * for the report, and move the file and its -wal and -shm into
 * `<folder of db_path>/damaged/<UTC time>-<pid>/` (made 0700).  *aside
 * (malloc'd) receives the path of the database file in its new place. */
int cachedamage_begin(const char *db_path, const struct sky_err *failed, char *found,
                      size_t size, char **aside, struct sky_err *e);

/* Move the folder `dir` beside the database already set aside at `aside`
 * (cachedamage_begin), under the same name, and make `dir` again,
 * empty (0700). */
int cachedamage_move_beside(const char *dir, const char *aside, struct sky_err *e);

/* One step of a salvage: copy rows of `table` from the damaged file into
 * the new one (every column both have; the new one's defaults fill the
 * rest), those matching `where` (SQL over the damaged table's columns,
 * which the step names `old`); or, when table is NULL, run `where` as
 * SQL.  *copied counts the rows changed. */
struct cachedamage_step {
    const char *table;
    const char *where;
    int64_t copied;
};

/* ATTACH the damaged file `aside` to d as schema `damaged`, run `steps` in
 * one transaction (all or nothing), DETACH.  Reads of the damaged file
 * scan its tables, not its indexes (an index may be the damaged part).  A
 * failure's message is for the repair's report (cachedamage_plain). */
int cachedamage_salvage(struct cachedb *d, const char *aside, struct cachedamage_step *steps,
                        size_t nsteps, struct sky_err *e);

#endif
