/*
 * crawlstore.c - see crawlstore.h.
 *
 * Schema (added by an idempotent step of its own, like the node columns
 * of meta.c, so it combines with any schema version): a column
 * entries.crawl_gen (the generation of the last crawl that saw the entry)
 * and a table `crawls`, one row per cloud.  Statements live in their own
 * table (m->crawl_db) on the cache's one connection, under its lock.
 *
 * Storing an entry costs an indexed lookup of its parent (remembered
 * from one entry to the next: a flat listing gives a directory's objects
 * together), a lookup of the entry, an insert or an update with the
 * listing rules of meta.c, and the mark.
 */
#include "crawlstore.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta_int.h"

static const char crawl_schema[] =
    "ALTER TABLE entries ADD COLUMN crawl_gen INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE IF NOT EXISTS crawls("
    " cloud TEXT PRIMARY KEY,"
    " gen INTEGER NOT NULL DEFAULT 0,"
    " running_since INTEGER NOT NULL DEFAULT 0,"
    " running_seen INTEGER NOT NULL DEFAULT 0,"
    " done_started INTEGER NOT NULL DEFAULT 0,"
    " done_finished INTEGER NOT NULL DEFAULT 0,"
    " done_entries INTEGER NOT NULL DEFAULT 0,"
    " failed_at INTEGER NOT NULL DEFAULT 0,"
    " error TEXT);";

enum {
    C_STATE, C_BEGIN, C_GEN, C_PROGRESS, C_END_OK, C_END_FAIL, C_FIND, C_CHILD, C_MARK,
    C_SWEEP_PAGE, C_NEXT_DIR, C_COUNT
};

#define STATE_COLS "gen,running_since,running_seen,done_started,done_finished,done_entries," \
                   "failed_at,error"

static const char *const crawl_sql[C_COUNT] = {
    [C_STATE] = "SELECT " STATE_COLS " FROM crawls WHERE cloud=?1",
    [C_BEGIN] = "INSERT INTO crawls(cloud,gen,running_since,running_seen) VALUES(?1,1,?2,0) "
                "ON CONFLICT(cloud) DO UPDATE SET gen=gen+1,running_since=?2,running_seen=0",
    [C_GEN] = "SELECT gen FROM crawls WHERE cloud=?1",
    [C_PROGRESS] = "UPDATE crawls SET running_seen=?2 WHERE cloud=?1",
    [C_END_OK] = "UPDATE crawls SET running_since=0,done_started=?2,done_finished=?3,"
                 "done_entries=?4,failed_at=0,error=NULL WHERE cloud=?1",
    [C_END_FAIL] = "UPDATE crawls SET running_since=0,failed_at=?2,error=?3 WHERE cloud=?1",
    [C_FIND] = "SELECT ino,kind,fetched_at,crawl_gen,has,etag,size,cloud_modified_ns,own_ns "
               "FROM entries "
               "WHERE cloud=?1 AND path=?2",
    [C_CHILD] = "SELECT ino,kind,fetched_at,crawl_gen,has,etag,size,cloud_modified_ns,own_ns "
                "FROM entries "
                "WHERE parent=?1 AND name=?2",
    [C_MARK] = "UPDATE entries SET crawl_gen=?2 WHERE ino=?1",
    /* a local-only entry (not uploaded yet) counts as fetched forever: kept */
    [C_SWEEP_PAGE] = "SELECT ino,path,kind,crawl_gen,"
                     "CASE WHEN local_only<>0 THEN 9223372036854775807 ELSE fetched_at END "
                     "FROM entries "
                     "WHERE cloud=?1 AND path>?2 ORDER BY path LIMIT ?3",
    [C_NEXT_DIR] = "SELECT ino,path FROM entries WHERE cloud=?1 AND path>?2 AND kind=2 "
                   "ORDER BY path LIMIT 1",
};

/* ---- schema and statements ------------------------------------------------ */

static int has_crawl_column(struct meta *m, bool *has, struct sky_err *e)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(m->db.db, "SELECT 1 FROM pragma_table_info('entries') "
                                "WHERE name='crawl_gen'", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return cachedb_fail(&m->db, rc, "reading the schema", e);
    rc = sqlite3_step(st);
    *has = rc == SQLITE_ROW;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
                                                 : cachedb_fail(&m->db, rc, "reading the schema", e);
}

int crawlstore_prepare(struct meta *m, const char *db_path, struct sky_err *e)
{
    m->crawl_db = (struct cachedb){ .db = m->db.db, .what = "metadata cache", .sql = crawl_sql,
                                    .nstmts = C_COUNT };
    m->crawl_db.stmts = calloc(C_COUNT, sizeof *m->crawl_db.stmts);
    if (!m->crawl_db.stmts)
        return meta_oom(e);
    bool has;
    int rc = has_crawl_column(m, &has, e);
    if (rc || has)
        return rc;
    rc = cachedb_begin(&m->db, e);
    if (rc == 0)
        rc = has_crawl_column(m, &has, e);      /* another process may have done it */
    if (rc == 0 && !has)
        rc = cachedb_exec(&m->db, crawl_schema, e);
    if (rc == 0)
        return cachedb_commit(&m->db, e);
    cachedb_rollback(&m->db);
    return sky_err_prefix(e, "upgrading %s", db_path);
}

void crawlstore_close(struct meta *m)
{
    if (!m->crawl_db.stmts)
        return;
    for (size_t i = 0; i < C_COUNT; i++)
        sqlite3_finalize(m->crawl_db.stmts[i]);
    free(m->crawl_db.stmts);
    m->crawl_db.stmts = NULL;
}

static sqlite3_stmt *stmt(struct meta *m, int which, struct sky_err *e)
{
    return cachedb_stmt(&m->crawl_db, (size_t)which, e);
}

/* ---- state ---------------------------------------------------------------- */

static void state_from_row(sqlite3_stmt *st, struct crawl_state *out)
{
    out->gen = sqlite3_column_int64(st, 0);
    out->running_since = sqlite3_column_int64(st, 1);
    out->running_seen = (uint64_t)sqlite3_column_int64(st, 2);
    out->done_started = sqlite3_column_int64(st, 3);
    out->done_finished = sqlite3_column_int64(st, 4);
    out->done_entries = (uint64_t)sqlite3_column_int64(st, 5);
    out->failed_at = sqlite3_column_int64(st, 6);
    const unsigned char *err = sqlite3_column_text(st, 7);
    snprintf(out->error, sizeof out->error, "%s", err ? (const char *)err : "");
}

int meta_crawl_state(struct meta *m, const char *cloud, struct crawl_state *out,
                     struct sky_err *e)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = stmt(m, C_STATE, e);
    int rc = st ? 0 : -e->code;
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            state_from_row(st, out);
        else if (step != SQLITE_DONE)
            rc = cachedb_fail(&m->db, step, "reading the crawl state", e);
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_crawl_begin(struct meta *m, const char *cloud, int64_t now, int64_t *gen,
                     struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int rc = meta_begin(m, e);
    sqlite3_stmt *st = rc ? NULL : stmt(m, C_BEGIN, e);
    if (!rc && !st)
        rc = -e->code;
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        sqlite3_bind_int64(st, 2, now);
        rc = cachedb_done(&m->crawl_db, st, "starting a crawl", e);
    }
    if (rc == 0 && (st = stmt(m, C_GEN, e)) == NULL)
        rc = -e->code;
    if (rc == 0) {
        cachedb_bind_text(st, 1, cloud);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            *gen = sqlite3_column_int64(st, 0);
        else
            rc = cachedb_fail(&m->db, step, "starting a crawl", e);
        sqlite3_reset(st);
    }
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_crawl_end(struct meta *m, const char *cloud, int64_t started, int64_t finished,
                   uint64_t entries, const char *error, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = stmt(m, error ? C_END_FAIL : C_END_OK, e);
    int rc = st ? 0 : -e->code;
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        if (error) {
            sqlite3_bind_int64(st, 2, finished);
            cachedb_bind_text(st, 3, error);
        } else {
            sqlite3_bind_int64(st, 2, started);
            sqlite3_bind_int64(st, 3, finished);
            sqlite3_bind_int64(st, 4, (sqlite3_int64)entries);
        }
        rc = cachedb_done(&m->crawl_db, st, "ending a crawl", e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- storing a batch ----------------------------------------------------- */

/* What the cache holds at a path (the columns of C_FIND / C_CHILD). */
struct found {
    uint64_t ino;
    enum sky_kind kind;
    int64_t fetched_at;
    int64_t gen;
    uint32_t has;               /* which attributes came from the cloud */
    char etag[SKY_ETAG_MAX];
    uint64_t size;
    int64_t cloud_modified_ns;  /* as in struct meta_known */
    int64_t own_ns;
};

/* Step C_FIND or C_CHILD: 0 with *f, -ENOENT, or an error. */
static int found_row(struct meta *m, sqlite3_stmt *st, struct found *f, struct sky_err *e)
{
    int step = sqlite3_step(st), rc = 0;
    if (step == SQLITE_ROW) {
        *f = (struct found){ (uint64_t)sqlite3_column_int64(st, 0),
                             (enum sky_kind)sqlite3_column_int(st, 1),
                             sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                             (uint32_t)sqlite3_column_int64(st, 4), "", 0, 0, 0 };
        const unsigned char *etag = sqlite3_column_text(st, 5);
        snprintf(f->etag, sizeof f->etag, "%s", etag ? (const char *)etag : "");
        f->size = (uint64_t)sqlite3_column_int64(st, 6);
        f->cloud_modified_ns = sqlite3_column_int64(st, 7);
        f->own_ns = sqlite3_column_int64(st, 8);
    }
    else if (step == SQLITE_DONE)
        rc = -ENOENT;
    else
        rc = cachedb_fail(&m->db, step, "reading an entry", e);
    sqlite3_reset(st);
    return rc;
}

static int find_path(struct meta *m, const char *cloud, const char *path, struct found *f,
                     struct sky_err *e)
{
    sqlite3_stmt *st = stmt(m, C_FIND, e);
    if (!st)
        return -e->code;
    cachedb_bind_text(st, 1, cloud);
    cachedb_bind_text(st, 2, path);
    return found_row(m, st, f, e);
}

static int find_child(struct meta *m, uint64_t parent, const char *name, struct found *f,
                      struct sky_err *e)
{
    sqlite3_stmt *st = stmt(m, C_CHILD, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
    cachedb_bind_text(st, 2, name);
    return found_row(m, st, f, e);
}

static int mark(struct meta *m, uint64_t ino, int64_t gen, struct sky_err *e)
{
    sqlite3_stmt *st = stmt(m, C_MARK, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    sqlite3_bind_int64(st, 2, gen);
    return cachedb_done(&m->crawl_db, st, "marking an entry", e);
}

/* One batch's context: the cloud, the crawl, and the last parent found. */
struct batch {
    struct meta *m;
    const char *cloud;
    int64_t gen, started, asof;
    char *parent_path;          /* the last directory resolved, or NULL */
    uint64_t parent_ino;
};

/* Does the crawl know attributes of the cached entry f that the mount's
 * newer news lack?  A listing carries no object metadata (S3, GCS): a
 * mount's listing that found the object's version already asked about
 * (the symlink probe's or a folder marker's memory, which the crawl's own
 * HEAD just filled) stores it without the mode and mtime that HEAD
 * brought, and the crawl's entry, with them, would be left out as older.
 * The same version (etag) of the same kind: the crawl's attributes are
 * the object's, and go in under the usual rules of a listing. */
static bool fills_in(const struct found *f, const struct sky_attr *a)
{
    return f->has == 0 && a->has != 0 && f->kind == a->kind && strcmp(f->etag, a->etag) == 0;
}

/* Store one entry `name` (kind a->kind...) under directory (dir_ino at
 * dir_path).  The rules are those of crawlstore.h.  *ino gets the entry's
 * inode and *kind what it is now in the cache. */
static int put_entry(struct batch *b, uint64_t dir_ino, const char *dir_path, const char *name,
                     const char *path, const struct sky_attr *a, const char *link,
                     const struct sky_objmeta *om, uint64_t *ino, enum sky_kind *kind,
                     struct sky_err *e)
{
    *kind = a->kind;
    struct found f;
    int rc = find_child(b->m, dir_ino, name, &f, e);
    if (rc == -ENOENT) {
        struct meta_entry dir = { .ino = dir_ino, .cloud = (char *)b->cloud,
                                  .path = (char *)dir_path };
        rc = meta_insert(b->m, &dir, name, a, link, om, b->asof, ino, e);
        return rc ? rc : mark(b->m, *ino, b->gen, e);
    }
    if (rc)
        return rc;
    *ino = f.ino;
    *kind = f.kind;
    if (f.fetched_at > b->started && !fills_in(&f, a))
        return 0;               /* the mount's news are newer: keep them */
    /* an object "x" beside objects under "x/": the directory wins, as in
     * a listing of one directory */
    bool keep_dir = f.kind == SKY_DIR && a->kind != SKY_DIR && f.gen == b->gen;
    if (!keep_dir) {
        /* a held file stays one, whatever the cloud holds at its name */
        *kind = meta_news_kept_out(b->m, f.ino, META_FROM_CLOUD) ? f.kind : a->kind;
        rc = meta_update_attr(b->m, f.ino, f.kind, b->cloud, path, a, link, om, b->asof,
                              META_FROM_CLOUD, e);
    }
    if (rc == 0 && !keep_dir) {
        /* fresh only as a listing through the mount would make it: a
         * listed version whose metadata the cache has not read is not */
        struct meta_known k = { .ino = f.ino, .kind = f.kind, .fetched_at = f.fetched_at,
                                .etag = f.etag, .size = f.size,
                                .cloud_modified_ns = f.cloud_modified_ns, .own_ns = f.own_ns };
        rc = meta_listed_freshness(b->m, &k, a, b->asof, e);
    }
    return rc ? rc : mark(b->m, f.ino, b->gen, e);
}

/* The inode of directory `path` ("" = the cloud root), added (with the
 * directories above it) when the cache does not have it: a flat listing
 * implies the directories its keys pass through.  -ENOTDIR when the
 * mount has made it something else since the crawl began. */
static int ensure_dir(struct batch *b, const char *path, uint64_t *ino, struct sky_err *e)
{
    struct found f;
    int rc = find_path(b->m, b->cloud, path, &f, e);
    if (rc == 0 && f.kind == SKY_DIR) {
        *ino = f.ino;
        if (f.gen == b->gen || !*path)
            return 0;           /* marked, and so are the directories above it */
        rc = mark(b->m, f.ino, b->gen, e);
        const char *slash = strrchr(path, '/');
        char *parent = strndup(path, slash ? (size_t)(slash - path) : 0);
        uint64_t pino;
        if (rc == 0)
            rc = parent ? ensure_dir(b, parent, &pino, e) : meta_oom(e);
        free(parent);
        return rc == -ENOTDIR ? 0 : rc;
    }
    if (rc && rc != -ENOENT)
        return rc;
    if (!*path)
        return sky_fail(e, ENOENT, "metadata cache: cloud '%s' has no root entry", b->cloud);
    /* missing, or not a directory any more: (re)made from its parent */
    const char *slash = strrchr(path, '/');
    char *parent = strndup(path, slash ? (size_t)(slash - path) : 0);
    if (!parent)
        return meta_oom(e);
    uint64_t pino;
    rc = ensure_dir(b, parent, &pino, e);
    struct sky_attr dir = { .kind = SKY_DIR };
    enum sky_kind now;
    if (rc == 0)
        rc = put_entry(b, pino, parent, slash ? slash + 1 : path, path, &dir, NULL, NULL, ino,
                       &now, e);
    free(parent);
    if (rc == 0 && now != SKY_DIR)
        rc = -ENOTDIR;
    return rc;
}

/* true if every '/'-separated part of path can be a file name. */
static bool valid_path(const char *path)
{
    if (!*path)
        return false;
    for (const char *p = path;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

static int store_one(struct batch *b, const struct sky_dirent *d, struct sky_err *e)
{
    if (!valid_path(d->name) || !meta_valid_kind(&d->attr))
        return 0;
    const char *slash = strrchr(d->name, '/');
    size_t plen = slash ? (size_t)(slash - d->name) : 0;
    if (!b->parent_path || strlen(b->parent_path) != plen ||
        strncmp(b->parent_path, d->name, plen) != 0) {
        free(b->parent_path);
        b->parent_path = strndup(d->name, plen);
        if (!b->parent_path)
            return meta_oom(e);
        int rc = ensure_dir(b, b->parent_path, &b->parent_ino, e);
        if (rc) {
            free(b->parent_path);
            b->parent_path = NULL;
            return rc == -ENOTDIR ? 0 : rc;     /* the mount's news are newer */
        }
    }
    uint64_t ino;
    enum sky_kind kind;
    return put_entry(b, b->parent_ino, b->parent_path, slash ? slash + 1 : d->name, d->name,
                     &d->attr, d->link, d->meta, &ino, &kind, e);
}

int meta_crawl_store(struct meta *m, const char *cloud, int64_t gen, int64_t started,
                     int64_t asof, const struct sky_dirent *ents, size_t n, uint64_t seen,
                     struct sky_err *e)
{
    struct batch b = { .m = m, .cloud = cloud, .gen = gen, .started = started, .asof = asof };
    pthread_mutex_lock(&m->lock);
    int rc = meta_begin(m, e);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = store_one(&b, &ents[i], e);
    sqlite3_stmt *st = rc ? NULL : stmt(m, C_PROGRESS, e);
    if (!rc && !st)
        rc = -e->code;
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)seen);
        rc = cachedb_done(&m->crawl_db, st, "recording a crawl's progress", e);
    }
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    free(b.parent_path);
    return rc;
}

/* ---- the sweep ------------------------------------------------------------ */

struct swept {
    uint64_t ino;
    char *path;
    enum sky_kind kind;
    bool gone;
};

static bool below(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

int meta_crawl_sweep(struct meta *m, const char *cloud, int64_t gen, int64_t started,
                     char **cursor, size_t batch, uint64_t *removed, bool *done,
                     struct sky_err *e)
{
    struct swept *rows = calloc(batch ? batch : 1, sizeof *rows);
    if (!rows)
        return meta_oom(e);
    size_t n = 0;
    pthread_mutex_lock(&m->lock);
    int rc = meta_begin(m, e);
    sqlite3_stmt *st = rc ? NULL : stmt(m, C_SWEEP_PAGE, e);
    if (!rc && !st)
        rc = -e->code;
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        cachedb_bind_text(st, 2, *cursor ? *cursor : "");
        sqlite3_bind_int64(st, 3, (sqlite3_int64)batch);
        int step, oom = 0;
        while (n < batch && (step = sqlite3_step(st)) == SQLITE_ROW) {
            rows[n] = (struct swept){ (uint64_t)sqlite3_column_int64(st, 0),
                                      cachedb_column_strdup(st, 1, &oom),
                                      (enum sky_kind)sqlite3_column_int(st, 2),
                                      sqlite3_column_int64(st, 3) != gen &&
                                          sqlite3_column_int64(st, 4) < started };
            if (oom || !rows[n].path) {
                free(rows[n].path);
                rc = meta_oom(e);
                break;
            }
            n++;
        }
        if (rc == 0 && n < batch && step != SQLITE_DONE)
            rc = cachedb_fail(&m->db, step, "sweeping the index", e);
        sqlite3_reset(st);
    }
    const char *removed_dir = NULL;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!rows[i].gone || (removed_dir && below(rows[i].path, removed_dir)))
            continue;
        bool kept;
        rc = meta_forget_tree(m, rows[i].ino, rows[i].kind, cloud, rows[i].path, &kept, e);
        *removed += !kept;
        if (rows[i].kind == SKY_DIR)
            removed_dir = rows[i].path;
    }
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    if (rc == 0) {
        *done = n < batch;
        if (n) {
            free(*cursor);
            *cursor = rows[n - 1].path;
            rows[n - 1].path = NULL;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(rows[i].path);
    free(rows);
    return rc;
}

/* ---- the walk ------------------------------------------------------------- */

int meta_crawl_next_dir(struct meta *m, const char *cloud, const char *after, uint64_t *ino,
                        char **path, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = stmt(m, C_NEXT_DIR, e);
    int rc = st ? 0 : -e->code;
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        cachedb_bind_text(st, 2, after);
        int step = sqlite3_step(st), oom = 0;
        if (step == SQLITE_ROW) {
            *ino = (uint64_t)sqlite3_column_int64(st, 0);
            *path = cachedb_column_strdup(st, 1, &oom);
            if (oom || !*path)
                rc = meta_oom(e);
        } else if (step == SQLITE_DONE) {
            rc = -ENOENT;
        } else {
            rc = cachedb_fail(&m->db, step, "walking the index", e);
        }
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- readers outside the daemon ------------------------------------------ */

int crawlstate_read_file(const char *db_path, const char *cloud, struct crawl_state *out,
                         struct sky_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return sky_fail(e, ENOENT, "cannot open the metadata index %s", db_path);
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, crawl_sql[C_STATE], -1, &st, NULL);
    int ret = 0;
    if (rc != SQLITE_OK) {
        ret = sky_fail(e, ENOENT, "the metadata index %s holds no crawl state", db_path);
    } else {
        sqlite3_bind_text(st, 1, cloud, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            state_from_row(st, out);
        else if (step != SQLITE_DONE)
            ret = sky_fail(e, EIO, "reading the crawl state in %s: %s", db_path,
                           sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ret;
}
