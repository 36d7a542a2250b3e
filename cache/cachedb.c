/* cachedb.c - see cachedb.h. */
#include "cachedb.h"
#include "reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Did rc say the disk is full?  SQLite says SQLITE_FULL only for ENOSPC;
 * a disk quota's EDQUOT comes as an I/O error (SQLITE_IOERR_WRITE and
 * the like) whose system errno tells. */
static bool db_full(struct cachedb *d, int rc)
{
    if ((rc & 0xff) == SQLITE_FULL)
        return true;
    if ((rc & 0xff) != SQLITE_IOERR || !d->db)
        return false;
    int err = sqlite3_system_errno(d->db);
    return err == EDQUOT || err == ENOSPC;
}

static int errno_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:       return ENOSPC;
    case SQLITE_NOMEM:      return ENOMEM;
    case SQLITE_READONLY:   return EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:       return EACCES;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:     return EBUSY;
    case SQLITE_CONSTRAINT: return EEXIST;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:     return EUCLEAN;     /* see cachedamage.h */
    default:                return EIO;
    }
}

int cachedb_fail(struct cachedb *d, int rc, const char *doing, struct sky_err *e)
{
    const char *msg = d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc);
    int err = db_full(d, rc) ? ENOSPC : errno_of(rc);
    int sys = d->db ? sqlite3_system_errno(d->db) : 0;
    if (err == ENOSPC && sys == EDQUOT)
        msg = "the cache folder's disk quota is exceeded";
    /* The disk under the cache failing, or its file system turned
     * read-only after an error (ext4's errors=remount-ro): SQLite says
     * "disk I/O error", and once a write failed so, may call what it
     * reads next "malformed".
     * The file is not damaged (a mount once the disk is fixed checks it):
     * the person needs to hear about the disk. */
    int ext = d->db ? sqlite3_extended_errcode(d->db) : rc;
    if (err == EIO && (ext & 0xff) == SQLITE_IOERR && ext != SQLITE_IOERR_NOMEM)
        d->disk_failed = true;          /* and what fails after it, for it */
    if ((err == EIO || err == EUCLEAN) && d->disk_failed) {
        err = EIO;
        msg = "the cache folder's disk fails (an I/O error, or its file system turned "
              "read-only after one): fix it and mount again; what waits for upload stays "
              "in the cache";
    }
    return sky_fail(e, err, "%s: %s: %s%s", d->what, doing, msg,
                    err == EUCLEAN ? CACHEDB_DAMAGED_HINT : "");
}

int cachedb_check(struct cachedb *d, struct sky_err *e)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(d->db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return cachedb_fail(d, rc, "checking the file", e);
    rc = sqlite3_step(st);
    const char *got = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int ret = 0;
    if (rc != SQLITE_ROW)
        ret = cachedb_fail(d, rc, "checking the file", e);
    else if (!got || strcmp(got, "ok") != 0) {
        /* one line: without SQLite's "*** in database main ***" header */
        char what[256];
        const char *from = got ? got : "no answer";
        if (strncmp(from, "*** ", 4) == 0 && strchr(from, '\n'))
            from = strchr(from, '\n') + 1;
        snprintf(what, sizeof what, "%s", from);
        for (char *p = what; *p; p++)
            if (*p == '\n')
                *p = ' ';
        ret = sky_fail(e, EUCLEAN, "%s: the file is damaged: %s", d->what, what);
    }
    sqlite3_finalize(st);
    return ret;
}

int cachedb_exec(struct cachedb *d, const char *sql, struct sky_err *e)
{
    int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : cachedb_fail(d, rc, "running SQL", e);
}

int cachedb_open(struct cachedb *d, const char *path, const char *what,
                 const char *const *sql, size_t nstmts, struct sky_err *e)
{
    memset(d, 0, sizeof *d);
    d->log_fd = -1;
    d->what = what;
    d->sql = sql;
    d->nstmts = nstmts;
    d->stmts = calloc(nstmts, sizeof *d->stmts);
    if (!d->stmts)
        return sky_fail(e, ENOMEM, "%s: out of memory", what);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &d->db, flags, NULL);
    if (rc != SQLITE_OK) {
        sky_fail(e, errno_of(rc), "%s: cannot open %s: %s", what,
                 path, d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
        cachedb_close(d);
        return -e->code;
    }
    sqlite3_busy_timeout(d->db, 5000);
    rc = cachedb_exec(d, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         "PRAGMA temp_store=MEMORY; PRAGMA foreign_keys=OFF;", e);
    if (rc) {
        sky_err_prefix(e, "opening %s", path);
        cachedb_close(d);
    }
    return rc;
}

void cachedb_close(struct cachedb *d)
{
    if (d->stmts) {
        for (size_t i = 0; i < d->nstmts; i++)
            sqlite3_finalize(d->stmts[i]);
        free(d->stmts);
    }
    if (d->db)
        sqlite3_close(d->db);
    if (d->log_fd >= 0)
        close(d->log_fd);
    d->log_fd = -1;
    d->stmts = NULL;
    d->db = NULL;
}

sqlite3_stmt *cachedb_stmt(struct cachedb *d, size_t which, struct sky_err *e)
{
    sqlite3_stmt *st = d->stmts[which];
    if (!st) {
        int rc = sqlite3_prepare_v3(d->db, d->sql[which], -1, SQLITE_PREPARE_PERSISTENT, &st,
                                    NULL);
        if (rc != SQLITE_OK) {
            cachedb_fail(d, rc, "preparing a statement", e);
            return NULL;
        }
        d->stmts[which] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* A write failed with rc: when the file system was full and the reserve
 * (reserve.h) could free room for it, may it be tried again?  Only when
 * SQLite kept the transaction it ran in (in_txn: one was open before). */
static bool cachedb_room_freed(struct cachedb *d, int rc, bool in_txn)
{
    if (!db_full(d, rc))
        return false;
    /* for the next write, if not for this one; a quota's never made again */
    bool freed = d->db && sqlite3_system_errno(d->db) == EDQUOT ? reserve_note_quota(UINT64_MAX)
                                                                 : reserve_release();
    return freed && in_txn != (bool)sqlite3_get_autocommit(d->db);
}

int cachedb_done(struct cachedb *d, sqlite3_stmt *st, const char *doing, struct sky_err *e)
{
    bool in_txn = !sqlite3_get_autocommit(d->db);
    if (!in_txn)
        reserve_watch();
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW && cachedb_room_freed(d, rc, in_txn)) {
        rc = sqlite3_step(st);          /* the bindings outlive the reset */
        sqlite3_reset(st);
    }
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    return cachedb_fail(d, rc, doing, e);
}

int cachedb_begin(struct cachedb *d, struct sky_err *e)
{
    reserve_watch();
    int rc = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : cachedb_fail(d, rc, "starting a transaction", e);
}

int cachedb_commit(struct cachedb *d, struct sky_err *e)
{
    int rc = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK && cachedb_room_freed(d, rc, true))
        rc = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    int ret = cachedb_fail(d, rc, "committing", e);
    cachedb_rollback(d);
    return ret;
}

void cachedb_rollback(struct cachedb *d)
{
    if (!sqlite3_get_autocommit(d->db))
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
}

int cachedb_version(struct cachedb *d, int *version, struct sky_err *e)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(d->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return cachedb_fail(d, rc, "reading the schema version", e);
    rc = sqlite3_step(st);
    *version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : cachedb_fail(d, rc, "reading the schema version", e);
}

int cachedb_set_version(struct cachedb *d, int version, struct sky_err *e)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", version);
    return cachedb_exec(d, sql, e);
}

/* In WAL mode a transaction is durable once its frames in the log are on
 * disk: SQLite wrote them (pwrite) before its COMMIT returned, and recovery
 * replays every frame up to the last commit whose checksums hold.  So one
 * fdatasync of the log file is enough; a checkpoint would sync the log,
 * then the database, then (on the next write, the log starting over) the
 * log's header again: three syncs for the same promise.  SQLite itself
 * syncs the log before a checkpoint copies it and the database before the
 * log starts over, so nothing made durable here is lost by its later
 * checkpoints.  The log file stays the same file while the connection is
 * open (SQLite removes it only at the last close, and journal_size_limit
 * is not set), so an fd of our own on it syncs what SQLite wrote through
 * its own: the page cache belongs to the file, not to a descriptor. */
int cachedb_sync_prepare(struct cachedb *d, struct cachedb_sync *s, struct sky_err *e)
{
    s->fd = -1;
#if SQLITE_VERSION_NUMBER >= 3037000
    s->changes = sqlite3_total_changes64(d->db);
#else   /* wraps past 2^31 changes: a skip is then only missed, never wrong */
    s->changes = (int64_t)(unsigned)sqlite3_total_changes(d->db);
#endif
    if (d->synced && s->changes == d->synced_changes)
        return 0;               /* no row changed since the last sync */
    if (!sqlite3_get_autocommit(d->db))
        s->changes = -1;        /* a transaction open (a caller's mistake): its rows are
                                 * not committed yet, so they do not count as synced */
    if (d->log_fd < 0) {
        const char *wal = sqlite3_filename_wal(sqlite3_db_filename(d->db, "main"));
        if (wal && *wal)
            d->log_fd = open(wal, O_RDONLY | O_CLOEXEC);
    }
    if (d->log_fd >= 0) {
        s->fd = d->log_fd;
        return 0;
    }
    /* no log file (nothing written yet, or not WAL): a checkpoint syncs */
    int rc = sqlite3_wal_checkpoint_v2(d->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK)
        return cachedb_fail(d, rc, "syncing the journal", e);
    cachedb_synced(d, s);
    return 0;
}

int cachedb_sync_run(struct cachedb *d, struct cachedb_sync *s, struct sky_err *e)
{
    if (s->fd >= 0 && fdatasync(s->fd) != 0) {
        int err = errno;
        s->fd = -1;
        s->changes = -1;
        return sky_fail(e, err, "%s: syncing the journal: %s", d->what, strerror(err));
    }
    return 0;
}

void cachedb_synced(struct cachedb *d, const struct cachedb_sync *s)
{
    if (s->changes < 0)
        return;                 /* the sync failed */
    /* (a slower sync that covered less may land last: then the next
     * caller syncs again, never too little) */
    d->synced_changes = s->changes;
    d->synced = true;
}

int cachedb_sync(struct cachedb *d, struct sky_err *e)
{
    struct cachedb_sync s;
    int rc = cachedb_sync_prepare(d, &s, e);
    if (rc == 0)
        rc = cachedb_sync_run(d, &s, e);
    if (rc == 0)
        cachedb_synced(d, &s);
    return rc;
}

int cachedb_sync_outside(struct cachedb *d, pthread_mutex_t *lock, struct sky_err *e)
{
    struct cachedb_sync s;
    pthread_mutex_lock(lock);
    int rc = cachedb_sync_prepare(d, &s, e);
    pthread_mutex_unlock(lock);
    if (rc == 0)
        rc = cachedb_sync_run(d, &s, e);
    if (rc == 0) {
        pthread_mutex_lock(lock);
        cachedb_synced(d, &s);
        pthread_mutex_unlock(lock);
    }
    return rc;
}

bool cachedb_has_trigrams(void)
{
    return sqlite3_compileoption_used("ENABLE_FTS5") && sqlite3_libversion_number() >= 3034000;
}

int cachedb_has_table(struct cachedb *d, const char *name, bool *has, struct sky_err *e)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(d->db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return cachedb_fail(d, rc, "reading the schema", e);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *has = rc == SQLITE_ROW;
    int ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
              : cachedb_fail(d, rc, "reading the schema", e);
    sqlite3_finalize(st);
    return ret;
}

int cachedb_bind_text(sqlite3_stmt *st, int col, const char *s)
{
    if (!s)
        return sqlite3_bind_null(st, col);
    return sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
}

char *cachedb_column_strdup(sqlite3_stmt *st, int col, int *oom)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    if (!s)
        return NULL;
    char *copy = strdup((const char *)s);
    if (!copy)
        *oom = 1;
    return copy;
}
