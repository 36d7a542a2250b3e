/*
 * cachedb.h - the SQLite plumbing shared by the two caches (private to
 * cache/).
 *
 * One connection in WAL mode with synchronous=NORMAL, a table of SQL
 * statements prepared once on first use and kept (indexed by the caller's
 * enum), transactions, and the mapping of SQLite result codes to errno with
 * a readable sentence.  Callers serialize access with their own mutex; this
 * module takes no locks.
 *
 * Used only by cache/ (meta.c, blocks*.c and journal.c; search.c for
 * cachedb_has_trigrams).
 */
#ifndef SKY_CACHEDB_H
#define SKY_CACHEDB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "../lib/err.h"

struct cachedb {
    sqlite3 *db;
    const char *what;              /* "metadata cache", for messages */
    const char *const *sql;        /* statement texts, by caller's index */
    sqlite3_stmt **stmts;          /* prepared lazily, same indexes */
    size_t nstmts;
    bool synced;                   /* a sync succeeded once, and then */
    int64_t synced_changes;        /* sqlite3_total_changes64() was this */
    int log_fd;                    /* our own fd on the write-ahead log, or -1 */
    bool disk_failed;              /* SQLite met an I/O error: the disk under it fails */
};

/* Open (creating) the database file at `path`, set WAL, synchronous=NORMAL
 * and a busy timeout.  `sql` (nstmts texts, kept by reference) are the
 * statements cachedb_stmt hands out. */
int cachedb_open(struct cachedb *d, const char *path, const char *what,
                 const char *const *sql, size_t nstmts, struct sky_err *e);
void cachedb_close(struct cachedb *d);

/* Statement `which`, reset and with bindings cleared; NULL with e filled on
 * error.  Call sqlite3_reset() on it when done so no read stays open. */
sqlite3_stmt *cachedb_stmt(struct cachedb *d, size_t which, struct sky_err *e);

/* PRAGMA quick_check: 0, or -EUCLEAN with the first thing SQLite found
 * wrong (a damaged file: see cachedamage.h).  Reads the whole file: about
 * 0.2 s for 300,000 entries. */
int cachedb_check(struct cachedb *d, struct sky_err *e);

/* What cachedb_fail adds to the message of a damaged file's error. */
#define CACHEDB_DAMAGED_HINT " (the file is damaged: unmount, and the next mount sets it " \
    "aside and makes a new one)"

/* Turn SQLite result `rc` into -errno (a damaged file: -EUCLEAN) with
 * "WHAT: DOING: sqlite message". */
int cachedb_fail(struct cachedb *d, int rc, const char *doing, struct sky_err *e);

/* Step a statement that returns no rows, then reset it. */
int cachedb_done(struct cachedb *d, sqlite3_stmt *st, const char *doing, struct sky_err *e);

/* Run SQL text without results (schema, pragmas). */
int cachedb_exec(struct cachedb *d, const char *sql, struct sky_err *e);

int cachedb_begin(struct cachedb *d, struct sky_err *e);     /* BEGIN IMMEDIATE */
int cachedb_commit(struct cachedb *d, struct sky_err *e);
void cachedb_rollback(struct cachedb *d);

/* PRAGMA user_version: the schema version. */
int cachedb_version(struct cachedb *d, int *version, struct sky_err *e);
int cachedb_set_version(struct cachedb *d, int version, struct sky_err *e);

/* Make every committed transaction durable: one fdatasync of the
 * write-ahead log (with synchronous=NORMAL a COMMIT writes the log but does
 * not sync it; see cachedb.c for why that is enough); a checkpoint when no
 * log file is open; nothing when no row changed since the last sync
 * (sqlite3_total_changes64).  In three steps so that the sync itself runs
 * without the caller's mutex (other threads go on using the connection):
 * cachedb_sync_prepare (mutex held, no transaction open), then
 * cachedb_sync_run (mutex not needed), then cachedb_synced (mutex held).
 * cachedb_sync does all three (mutex held throughout). */
struct cachedb_sync {
    int fd;                 /* to fdatasync, or -1: nothing left to do */
    int64_t changes;        /* the change count it covers; -1: failed */
};
int cachedb_sync_prepare(struct cachedb *d, struct cachedb_sync *s, struct sky_err *e);
int cachedb_sync_run(struct cachedb *d, struct cachedb_sync *s, struct sky_err *e);
void cachedb_synced(struct cachedb *d, const struct cachedb_sync *s);
int cachedb_sync(struct cachedb *d, struct sky_err *e);
/* The three steps with `lock` (the caller's mutex over d, not held on
 * entry) taken around the first and the last. */
int cachedb_sync_outside(struct cachedb *d, pthread_mutex_t *lock, struct sky_err *e);

/* Whether this SQLite can build the trigram index of names: FTS5 compiled
 * in (sqlite3_compileoption_used) and a version with the trigram
 * tokenizer (3.34).  Without it, searches scan. */
bool cachedb_has_trigrams(void);

/* Whether the database has a table (or virtual table) named `name`. */
int cachedb_has_table(struct cachedb *d, const char *name, bool *has, struct sky_err *e);

/* Bind a C string (NULL binds SQL NULL) as TEXT without copying. */
int cachedb_bind_text(sqlite3_stmt *st, int col, const char *s);

/* Column as a malloc'd string (NULL for SQL NULL); *oom set on failure. */
char *cachedb_column_strdup(sqlite3_stmt *st, int col, int *oom);

#endif
