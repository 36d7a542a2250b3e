/*
 * blocks.c - the block cache: opening it, its objects, renames, statistics.
 *
 * The cache's front: blocks_open/_close (schema, block size, recovery of
 * sizes and orphaned data files), the table of pinned objects,
 * blocks_get/_release (loading an object's rows, resetting a changed
 * version), blocks_rename and blocks_stats.  The block store, fetch
 * scheduling, eviction and the upload journal live beside it
 * (blocks_store.c, blocks_fetch.c, blocks_evict.c, journal.c), sharing
 * blocks_int.h.  Callers outside cache/ use blocks.h only.
 *
 * On disk.  <dir>/data/<id> holds object <id>'s bytes at their own offsets
 * (absent blocks are holes) and is always exactly as long as the object.
 * <dir>/blocks.db has objects(id, cloud, path, etag, size, dirty, complete,
 * last_use) and blocks(obj, idx, sum, last_use, parts, sums): a row per
 * present block with its xxh3 checksum, or per partial block its map of
 * present chunks (`parts`, bit c for chunk c) and `sums`, the chunks'
 * xxh3 checksums (b->chunks native 64-bit values; absent ones 0).  Ids
 * come from AUTOINCREMENT, so a data file name is never reused for
 * another object.
 *
 * Memory.  Only pinned objects (held by blocks_get) live in memory, in a
 * hash table keyed by (cloud, path), each with per-block state, checksum
 * and last use.  Last-use times are written to SQLite when the object is
 * released, not on every read.  Eviction works on the database alone and
 * skips pinned and dirty objects, so it never needs an object's lock.
 */
#include "blocks_int.h"
#include "cachedamage.h"

static const char *const blocks_sql[Q_COUNT] = {
    [Q_INFO_GET] = "SELECT value FROM info WHERE key=?1",
    [Q_INFO_SET] = "INSERT OR REPLACE INTO info(key,value) VALUES(?1,?2)",
    [Q_COUNT_INCOMPLETE] = "SELECT count(*) FROM objects WHERE dirty=1 AND complete=0",
    [Q_OBJ_FIND] = "SELECT id,etag,size,dirty,complete FROM objects WHERE cloud=?1 AND path=?2",
    [Q_OBJ_EXISTS] = "SELECT 1 FROM objects WHERE id=?1",
    [Q_OBJ_SIZE] = "SELECT size FROM objects WHERE id=?1 AND dirty=1",
    [Q_OBJ_INSERT] = "INSERT INTO objects(cloud,path,etag,size,dirty,complete,last_use) "
                     "VALUES(?1,?2,?3,?4,?6,?6,?5)",
    [Q_OBJ_RESET] = "UPDATE objects SET etag=?2,size=?3,dirty=0,complete=0 WHERE id=?1",
    [Q_OBJ_DIRTY] = "UPDATE objects SET dirty=1,complete=?2,size=?3 WHERE id=?1",
    [Q_OBJ_COMPLETE] = "UPDATE objects SET complete=?2 WHERE id=?1",
    [Q_OBJ_CLEAN] = "UPDATE objects SET etag=?2,size=?3,dirty=0,complete=0,last_use=?4 "
                    "WHERE id=?1",
    [Q_OBJ_ETAG] = "UPDATE objects SET etag=?2 WHERE id=?1",
    [Q_OBJ_TOUCH] = "UPDATE objects SET last_use=max(last_use,?2),size=?3 WHERE id=?1",
    [Q_OBJ_DELETE] = "DELETE FROM objects WHERE id=?1",
    [Q_OBJ_ALL] = "SELECT id,size,dirty,complete FROM objects",
    [Q_OBJ_DIRTY_KEYS] = "SELECT cloud,path FROM objects WHERE dirty=1 ORDER BY id",
    [Q_OBJ_COUNTS] = "SELECT count(*),coalesce(sum(dirty),0),"
                     "coalesce(sum(CASE WHEN dirty THEN size ELSE 0 END),0) FROM objects",
    [Q_OBJ_UNDER] = "SELECT path FROM objects WHERE cloud=?1 AND path>=?2 AND path<?3",
    [Q_OBJ_OF_CLOUD] = "SELECT path FROM objects WHERE cloud=?1",
    [Q_OBJ_MOVE] = "UPDATE objects SET path=?3 WHERE cloud=?1 AND path=?2",
    [Q_OBJ_MOVE_RANGE] = "UPDATE objects SET path=?4 || CAST(substr(CAST(path AS BLOB),?5) "
                         "AS TEXT) WHERE cloud=?1 AND path>=?2 AND path<?3",
    [Q_BLK_LOAD] = "SELECT idx,sum,last_use,parts,sums FROM blocks WHERE obj=?1",
    [Q_BLK_PUT] = "INSERT OR REPLACE INTO blocks(obj,idx,sum,last_use,parts,sums) "
                  "VALUES(?1,?2,?3,?4,?5,?6)",
    [Q_BLK_DEL] = "DELETE FROM blocks WHERE obj=?1 AND idx=?2",
    [Q_BLK_DEL_OBJ] = "DELETE FROM blocks WHERE obj=?1",
    [Q_BLK_TOUCH] = "UPDATE blocks SET last_use=?3 WHERE obj=?1 AND idx=?2",
    [Q_BLK_USAGE] = "SELECT idx,sum IS NOT NULL,parts FROM blocks WHERE obj=?1",
    [Q_BLK_LRU] = "SELECT b.obj,b.idx,o.size,b.last_use,b.parts,b.sum IS NOT NULL FROM blocks b "
                  "JOIN objects o ON o.id=b.obj "
                  "WHERE (b.last_use,b.obj,b.idx)>(?1,?2,?3) AND o.dirty=0 "
                  "ORDER BY b.last_use,b.obj,b.idx LIMIT ?4",
    [Q_BLK_ANY] = "SELECT 1 FROM blocks WHERE obj=?1 LIMIT 1",
    [Q_INLINE_PUT] = "INSERT OR REPLACE INTO inline(obj,data) VALUES(?1,?2)",
    [Q_INLINE_GET] = "SELECT data FROM inline WHERE obj=?1",
    [Q_INLINE_DEL] = "DELETE FROM inline WHERE obj=?1",
    [Q_UNANSWERED_PUT] = "INSERT OR IGNORE INTO unanswered(obj,size,mtime) VALUES(?1,?2,?3)",
    [Q_UNANSWERED_HAS] = "SELECT 1 FROM unanswered WHERE obj=?1 AND size=?2 AND mtime=?3",
    [Q_UNANSWERED_DEL] = "DELETE FROM unanswered WHERE obj=?1",
};

/* The bytes of a small dirty object as of the close that made it durable
 * (journal.c): made at every open, when missing, so that caches made
 * before it get it; its rows outlive no write (obj_mark_dirty drops the
 * row first) and no upload (blocks_del_rows). */
static const char blocks_inline_table[] =
    "CREATE TABLE IF NOT EXISTS inline(obj INTEGER PRIMARY KEY, data BLOB NOT NULL);";

/* Uploads of a dirty object whose answer never came (journal.c
 * blocks_note_unanswered): made at every open, when missing, like inline;
 * an object's rows go with its upload (blocks_committed) and its rows. */
static const char blocks_unanswered_table[] =
    "CREATE TABLE IF NOT EXISTS unanswered(obj INTEGER NOT NULL, size INTEGER NOT NULL,"
    " mtime INTEGER NOT NULL, PRIMARY KEY(obj, size, mtime)) WITHOUT ROWID;";

static const char blocks_schema[] =
    "CREATE TABLE info(key TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID;"
    "CREATE TABLE objects("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " cloud TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " etag TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " dirty INTEGER NOT NULL DEFAULT 0,"
    " complete INTEGER NOT NULL DEFAULT 0,"
    " last_use INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(cloud, path));"
    "CREATE INDEX objects_dirty ON objects(dirty) WHERE dirty=1;"
    "CREATE TABLE blocks("
    " obj INTEGER NOT NULL,"
    " idx INTEGER NOT NULL,"
    " sum INTEGER,"
    " last_use INTEGER NOT NULL,"
    " parts INTEGER,"
    " sums BLOB,"
    " PRIMARY KEY(obj, idx)) WITHOUT ROWID;"
    "CREATE INDEX blocks_lru ON blocks(last_use, obj, idx);";

/* Version 1 had no partial blocks. */
static const char blocks_upgrade_v2[] =
    "ALTER TABLE blocks ADD COLUMN parts INTEGER;"
    "ALTER TABLE blocks ADD COLUMN sums BLOB;";

/* ---- small helpers ------------------------------------------------------ */

static int blocks_mkdirs(const char *dir, struct sky_err *e)
{
    char *p = strdup(dir);
    if (!p)
        return blocks_oom(e);
    for (char *s = p + 1; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            int err = errno;
            sky_fail(e, err, "block cache: cannot create %s: %s", p, strerror(err));
            free(p);
            return -err;
        }
        *s = c;
        if (!c)
            break;
    }
    free(p);
    return 0;
}

/* ---- the object table (b->lock held) ----------------------------------- */

static size_t blocks_bucket(const struct blocks *b, const char *cloud, const char *path)
{
    uint64_t h = XXH3_64bits(cloud, strlen(cloud)) * 0x9E3779B97F4A7C15ull;
    h ^= XXH3_64bits(path, strlen(path));
    return (size_t)(h & (b->nbuckets - 1));
}

struct blocks_obj *blocks_table_find(struct blocks *b, const char *cloud,
                                     const char *path)
{
    struct blocks_obj *o = b->buckets[blocks_bucket(b, cloud, path)];
    while (o && (strcmp(o->cloud, cloud) != 0 || strcmp(o->path, path) != 0))
        o = o->next;
    return o;
}

static void blocks_table_grow(struct blocks *b)
{
    size_t n = b->nbuckets * 2;
    struct blocks_obj **nb = calloc(n, sizeof *nb);
    if (!nb)
        return;                         /* longer chains, still correct */
    struct blocks_obj **old = b->buckets;
    size_t oldn = b->nbuckets;
    b->buckets = nb;
    b->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        for (struct blocks_obj *o = old[i], *next; o; o = next) {
            next = o->next;
            size_t k = blocks_bucket(b, o->cloud, o->path);
            o->next = nb[k];
            nb[k] = o;
        }
    }
    free(old);
}

static void blocks_table_add(struct blocks *b, struct blocks_obj *o)
{
    if (b->nobjs >= b->nbuckets)
        blocks_table_grow(b);
    size_t k = blocks_bucket(b, o->cloud, o->path);
    o->next = b->buckets[k];
    b->buckets[k] = o;
    b->nobjs++;
}

void blocks_table_del(struct blocks *b, struct blocks_obj *o)
{
    struct blocks_obj **p = &b->buckets[blocks_bucket(b, o->cloud, o->path)];
    while (*p && *p != o)
        p = &(*p)->next;
    if (*p) {
        *p = o->next;
        b->nobjs--;
    }
    o->next = NULL;
}

/* ---- loading and creating objects (b->lock held) ------------------------ */

/* A partial block's row: its chunk map and checksums (a row that does not
 * fit the block is ignored). */
static int blocks_load_partial(struct blocks_obj *o, uint64_t idx, sqlite3_stmt *st)
{
    uint64_t parts = (uint64_t)sqlite3_column_int64(st, 3);
    const void *sums = sqlite3_column_blob(st, 4);
    size_t len = (size_t)sqlite3_column_bytes(st, 4);
    if (!parts || (parts & ~obj_chunk_mask(o, idx)) || !sums ||
        len != o->b->chunks * sizeof(uint64_t))
        return 0;
    uint64_t *copy = malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, sums, len);
    obj_clear_partial(o, idx);
    o->chunk_sum[idx] = copy;
    o->parts[idx] = parts;
    o->st[idx] = B_ROW;
    o->used[idx] = sqlite3_column_int64(st, 2);
    return 0;
}

int blocks_load_rows(struct blocks *b, struct blocks_obj *o, bool dirty,
                     struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_BLK_LOAD, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, o->id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t idx = (uint64_t)sqlite3_column_int64(st, 0);
        bool has_sum = sqlite3_column_type(st, 1) != SQLITE_NULL;
        bool partial = sqlite3_column_type(st, 3) != SQLITE_NULL;
        if (idx >= o->nblocks || (!dirty && !has_sum && !partial))
            continue;
        if (partial) {
            if (blocks_load_partial(o, idx, st) == 0)
                continue;
            sqlite3_reset(st);
            return blocks_oom(e);
        }
        o->st[idx] = B_PRESENT | B_ROW | (dirty ? B_DIRTY : 0);
        o->sum[idx] = (uint64_t)sqlite3_column_int64(st, 1);
        o->used[idx] = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : cachedb_fail(&b->db, rc, "loading blocks", e);
}

int blocks_del_rows(struct blocks *b, int64_t id, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_BLK_DEL_OBJ, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, id);
    int rc = cachedb_done(&b->db, st, "dropping blocks", e);
    if (rc == 0 && !(st = cachedb_stmt(&b->db, Q_INLINE_DEL, e)))
        rc = -e->code;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        rc = cachedb_done(&b->db, st, "dropping a journaled copy", e);
    }
    if (rc == 0 && !(st = cachedb_stmt(&b->db, Q_UNANSWERED_DEL, e)))
        rc = -e->code;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        rc = cachedb_done(&b->db, st, "dropping unanswered uploads", e);
    }
    return rc;
}

int blocks_delete_object_rows(struct blocks *b, int64_t id, struct sky_err *e)
{
    int rc = blocks_del_rows(b, id, e);
    sqlite3_stmt *st = rc ? NULL : cachedb_stmt(&b->db, Q_OBJ_DELETE, e);
    if (rc == 0 && !st)
        rc = -e->code;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        rc = cachedb_done(&b->db, st, "dropping an object", e);
    }
    return rc;
}

/* A dirty object whose bytes the journal holds (a small file closed and
 * not written since, journal.c): those bytes are the truth, whatever a
 * crash left of the data file (even none: its folder entry was never
 * synced).  Written back into the file at `file` (b->lock held). */
static int blocks_restore_inline(struct blocks *b, struct blocks_obj *o, const char *file,
                                 struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_INLINE_GET, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, o->id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? 0 : cachedb_fail(&b->db, rc, "reading a journaled copy", e);
    }
    const void *data = sqlite3_column_blob(st, 0);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    rc = 0;
    if (o->fd < 0 && (o->fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        rc = sky_fail(e, errno, "block cache: cannot create %s: %s", file, strerror(errno));
    if (rc == 0 && ((len && blocks_pwrite(o->fd, data, len, 0) != 0) ||
                    ftruncate(o->fd, (off_t)len) != 0))
        rc = obj_io_fail(o, -EIO, "restoring", e);
    sqlite3_reset(st);
    if (rc == 0)
        o->inlined = true;
    return rc;
}

/* A clean object whose data file is missing or of the wrong size starts
 * over empty. */
static int blocks_wipe_loaded(struct blocks *b, struct blocks_obj *o, struct sky_err *e)
{
    obj_account_all(o, -1);
    if (o->nblocks)             /* an empty object may have no state (st NULL) */
        memset(o->st, 0, o->nblocks);
    obj_clear_all_partial(o);
    if (ftruncate(o->fd, 0) != 0 || ftruncate(o->fd, (off_t)o->size) != 0)
        return obj_io_fail(o, -errno, "resetting", e);
    return blocks_del_rows(b, o->id, e);
}

/* Open the data file and fill the block state of a loaded object. */
static int blocks_load_state(struct blocks *b, struct blocks_obj *o, bool complete,
                             struct sky_err *e)
{
    char file[4096];
    blocks_data_path(b, o->id, file, sizeof file);
    o->fd = open(file, O_RDWR | O_CLOEXEC);
    if (o->dirty) {
        int rc = blocks_restore_inline(b, o, file, e);
        if (rc)
            return rc;
    }
    if (o->fd < 0 && o->dirty)
        return sky_fail(e, EIO, "block cache: the cached data of unsaved '%s' (cloud '%s') "
                        "is missing (%s)", o->path, o->cloud, file);
    bool fresh = o->fd < 0;
    if (fresh && (o->fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return sky_fail(e, errno, "block cache: cannot create %s: %s", file, strerror(errno));
    struct stat s;
    if (fstat(o->fd, &s) != 0)
        return obj_io_fail(o, -errno, "inspecting", e);
    if (o->dirty) {                     /* the file is the truth */
        o->size = (uint64_t)s.st_size;
        o->nblocks = blocks_count_for(b, o->size);
        if (obj_reserve(o, o->nblocks))
            return blocks_oom(e);
    }
    int rc = blocks_load_rows(b, o, o->dirty, e);
    if (rc)
        return rc;
    if (o->dirty && complete) {
        obj_clear_all_partial(o);
        for (uint64_t i = 0; i < o->nblocks; i++)
            o->st[i] |= B_PRESENT | B_DIRTY;
    }
    if (!o->dirty && (fresh || (uint64_t)s.st_size != o->size))
        return blocks_wipe_loaded(b, o, e);
    return 0;
}

/* The object (cloud, path) from the database, or -ENOENT. */
static int blocks_load(struct blocks *b, const char *cloud, const char *path,
                       struct blocks_obj **out, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_OBJ_FIND, e);
    if (!st)
        return -e->code;
    cachedb_bind_text(st, 1, cloud);
    cachedb_bind_text(st, 2, path);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        if (rc == SQLITE_DONE)
            return -ENOENT;
        return cachedb_fail(&b->db, rc, "finding an object", e);
    }
    const unsigned char *etag = sqlite3_column_text(st, 1);
    struct blocks_obj *o = obj_new(b, sqlite3_column_int64(st, 0), cloud, path,
                                   etag ? (const char *)etag : "",
                                   (uint64_t)sqlite3_column_int64(st, 2));
    bool dirty = sqlite3_column_int(st, 3) != 0;
    bool complete = sqlite3_column_int(st, 4) != 0;
    sqlite3_reset(st);
    if (!o)
        return blocks_oom(e);
    o->dirty = dirty;
    o->unanswered = dirty;          /* maybe: its rows are looked at when asked */
    o->complete = dirty && complete;
    rc = blocks_load_state(b, o, complete, e);
    if (rc) {
        obj_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* A new object, empty with `etag` and `size`; dirty: journaled already
 * (a new file made here: dirty and complete, size 0, in the same insert). */
static int blocks_create(struct blocks *b, const char *cloud, const char *path,
                         const char *etag, uint64_t size, bool dirty, struct blocks_obj **out,
                         struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_OBJ_INSERT, e);
    if (!st)
        return -e->code;
    cachedb_bind_text(st, 1, cloud);
    cachedb_bind_text(st, 2, path);
    cachedb_bind_text(st, 3, etag);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)size);
    sqlite3_bind_int64(st, 5, blocks_now());
    sqlite3_bind_int(st, 6, dirty ? 1 : 0);
    int rc = cachedb_done(&b->db, st, "adding an object", e);
    if (rc)
        return rc;
    int64_t id = sqlite3_last_insert_rowid(b->db.db);
    struct blocks_obj *o = obj_new(b, id, cloud, path, etag, size);
    char file[4096];
    blocks_data_path(b, id, file, sizeof file);
    if (!o)
        rc = blocks_oom(e);
    else if (((o->fd = spares_take(b->spares, file)) < 0 &&
              (o->fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) ||
             ftruncate(o->fd, (off_t)size) != 0)
        rc = sky_fail(e, errno, "block cache: cannot create %s: %s", file, strerror(errno));
    if (rc) {
        if (o)
            obj_free(o);
        unlink(file);
        if ((st = cachedb_stmt(&b->db, Q_OBJ_DELETE, NULL))) {
            sqlite3_bind_int64(st, 1, id);
            cachedb_done(&b->db, st, "", NULL);
        }
        return rc;
    }
    if (dirty) {
        o->complete = true;
        obj_set_dirty(o, true);
    }
    *out = o;
    return 0;
}

/* blocks_acquire; dirty: a new object is created journaled (blocks_create). */
static int blocks_pin(struct blocks *b, const char *cloud, const char *path, const char *etag,
                      uint64_t size, bool dirty, struct blocks_obj **out, struct sky_err *e)
{
    pthread_mutex_lock(&b->lock);
    struct blocks_obj *o = blocks_table_find(b, cloud, path);
    int rc = 0;
    if (!o) {
        rc = blocks_load(b, cloud, path, &o, e);
        if (rc == -ENOENT && etag)
            rc = blocks_create(b, cloud, path, etag, size, dirty, &o, e);
        else if (rc == -ENOENT)
            sky_fail(e, ENOENT, "block cache: '%s' is not cached", path);
        if (rc == 0)
            blocks_table_add(b, o);
    }
    if (rc == 0)
        o->refs++;
    pthread_mutex_unlock(&b->lock);
    *out = rc ? NULL : o;
    return rc;
}

/* Pin the object (cloud, path): from memory, else from the database, else
 * (when etag is not NULL) a new empty one. */
int blocks_acquire(struct blocks *b, const char *cloud, const char *path,
                   const char *etag, uint64_t size, struct blocks_obj **out,
                   struct sky_err *e)
{
    return blocks_pin(b, cloud, path, etag, size, false, out, e);
}

/* A clean object whose version changed: drop its blocks, start over. */
int obj_reset(struct blocks_obj *o, const char *etag, uint64_t size, struct sky_err *e)
{
    struct blocks *b = o->b;
    char *copy = strdup(etag);
    if (!copy || obj_reserve(o, blocks_count_for(b, size))) {
        free(copy);
        return blocks_oom(e);
    }
    int rc = 0;
    pthread_mutex_lock(&b->lock);
    if (!o->gone) {
        sqlite3_stmt *st;
        rc = cachedb_begin(&b->db, e);
        if (rc == 0)
            rc = blocks_del_rows(b, o->id, e);
        if (rc == 0 && !(st = cachedb_stmt(&b->db, Q_OBJ_RESET, e)))
            rc = -e->code;
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, o->id);
            cachedb_bind_text(st, 2, etag);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)size);
            rc = cachedb_done(&b->db, st, "resetting an object", e);
        }
        rc = rc ? (cachedb_rollback(&b->db), rc) : cachedb_commit(&b->db, e);
    }
    pthread_mutex_unlock(&b->lock);
    if (rc == 0 && (ftruncate(o->fd, 0) != 0 || ftruncate(o->fd, (off_t)size) != 0))
        rc = obj_io_fail(o, -errno, "resetting", e);
    if (rc) {
        free(copy);
        return rc;
    }
    obj_account_all(o, -1);
    if (o->cap)                 /* an empty object may have no state yet (st NULL) */
        memset(o->st, 0, o->cap);
    obj_clear_all_partial(o);
    o->nblocks = blocks_count_for(b, size);
    obj_set_size(o, size);
    free(o->etag);
    o->etag = copy;
    o->prepared = false;
    return 0;
}

/* ---- public: objects ----------------------------------------------------- */

int blocks_get(struct blocks *b, const char *cloud, const char *path, const char *etag,
               uint64_t size, struct blocks_obj **out, struct sky_err *e)
{
    if (!cloud || !path || !etag)
        return sky_fail(e, EINVAL, "block cache: get needs a cloud, a path and an etag");
    struct blocks_obj *o;
    int rc = blocks_acquire(b, cloud, path, etag, size, &o, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&o->lock);
    if (!o->dirty && (strcmp(o->etag, etag) != 0 || o->size != size)) {
        obj_quiesce(o);
        rc = obj_reset(o, etag, size, e);
    }
    pthread_mutex_unlock(&o->lock);
    if (rc) {
        blocks_release(o);
        return rc;
    }
    *out = o;
    return 0;
}

bool obj_holds_any(const struct blocks_obj *o)
{
    if (o->dirty || o->inlined)
        return true;
    for (uint64_t i = 0; i < o->nblocks; i++)
        if ((o->st[i] & (B_PRESENT | B_WARMING)) || (o->parts && o->parts[i]))
            return true;
    return false;
}

int blocks_take_version(struct blocks_obj *o, const char *etag, uint64_t size,
                        struct sky_err *e)
{
    pthread_mutex_lock(&o->lock);
    int rc = 0;
    if (obj_holds_any(o)) {
        rc = sky_fail(e, ESTALE, "block cache: \"%s\": bytes of the version it holds are "
                      "cached or written", o->path);
    } else if (strcmp(o->etag, etag) != 0 || o->size != size) {
        obj_quiesce(o);                 /* the fetches of its version end first */
        rc = obj_holds_any(o) ? sky_fail(e, ESTALE, "block cache: \"%s\": bytes of the "
                                         "version it holds arrived meanwhile", o->path)
                              : obj_reset(o, etag, size, e);
    }
    pthread_mutex_unlock(&o->lock);
    return rc;
}

int blocks_get_new(struct blocks *b, const char *cloud, const char *path,
                   struct blocks_obj **out, struct sky_err *e)
{
    if (!cloud || !path)
        return sky_fail(e, EINVAL, "block cache: get needs a cloud and a path");
    struct blocks_obj *o;
    int rc = blocks_pin(b, cloud, path, "", 0, true, &o, e);
    if (rc)
        return rc;
    /* one cached before under this name: as blocks_get(.., "", 0) */
    pthread_mutex_lock(&o->lock);
    if (!o->dirty && (strcmp(o->etag, "") != 0 || o->size != 0)) {
        obj_quiesce(o);
        rc = obj_reset(o, "", 0, e);
    }
    pthread_mutex_unlock(&o->lock);
    if (rc) {
        blocks_release(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* Write last-use times (and the size) of a released object (b->lock held). */
static void blocks_flush_use(struct blocks *b, struct blocks_obj *o)
{
    int64_t latest = 0;
    if (cachedb_begin(&b->db, NULL))
        return;
    for (uint64_t i = 0; i < o->nblocks; i++) {
        if ((o->st[i] & (B_USED | B_ROW)) != (B_USED | B_ROW))
            continue;
        sqlite3_stmt *st = cachedb_stmt(&b->db, Q_BLK_TOUCH, NULL);
        if (!st)
            break;
        sqlite3_bind_int64(st, 1, o->id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        sqlite3_bind_int64(st, 3, o->used[i]);
        cachedb_done(&b->db, st, "", NULL);
        latest = o->used[i] > latest ? o->used[i] : latest;
    }
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_OBJ_TOUCH, NULL);
    if (st) {
        sqlite3_bind_int64(st, 1, o->id);
        sqlite3_bind_int64(st, 2, latest);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)o->size);
        cachedb_done(&b->db, st, "", NULL);
    }
    cachedb_commit(&b->db, NULL);
}

void blocks_release(struct blocks_obj *o)
{
    if (!o)
        return;
    struct blocks *b = o->b;
    pthread_mutex_lock(&b->lock);
    if (--o->refs > 0) {
        pthread_mutex_unlock(&b->lock);
        return;
    }
    if (o->gone) {
        char file[4096];
        blocks_data_path(b, o->id, file, sizeof file);
        unlink(file);
        obj_account_all(o, -1);
    } else {
        blocks_table_del(b, o);
        blocks_flush_use(b, o);
    }
    b->evict_stuck = false;                 /* its blocks may be evicted now */
    pthread_mutex_unlock(&b->lock);
    obj_free(o);
    blocks_evict(b, NULL);
}

uint64_t blocks_size(struct blocks_obj *o)
{
    return __atomic_load_n(&o->size, __ATOMIC_ACQUIRE);
}

bool blocks_is_dirty(struct blocks_obj *o)
{
    return __atomic_load_n(&o->dirty, __ATOMIC_ACQUIRE);
}

bool blocks_is_whole(struct blocks_obj *o)
{
    pthread_mutex_lock(&o->lock);
    bool whole = true;
    for (uint64_t i = 0; whole && i < o->nblocks; i++)
        whole = o->st[i] & B_PRESENT;
    pthread_mutex_unlock(&o->lock);
    return whole;
}

const char *blocks_path(struct blocks_obj *o)
{
    return __atomic_load_n(&o->path, __ATOMIC_ACQUIRE);
}

void blocks_base_version(struct blocks_obj *o, char *buf, size_t size)
{
    pthread_mutex_lock(&o->lock);
    snprintf(buf, size, "%s", o->etag ? o->etag : "");
    pthread_mutex_unlock(&o->lock);
}

const char *blocks_cloud(struct blocks_obj *o)
{
    return o->cloud;
}

/* ---- rename ---------------------------------------------------------------- */

static int blocks_move_rows(struct blocks *b, const char *cloud, const char *from,
                            const char *to, bool tree, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_OBJ_MOVE, e);
    if (!st)
        return -e->code;
    cachedb_bind_text(st, 1, cloud);
    cachedb_bind_text(st, 2, from);
    cachedb_bind_text(st, 3, to);
    int rc = cachedb_done(&b->db, st, "renaming an object", e);
    if (rc || !tree)
        return rc;
    char *lo = NULL, *hi = NULL, *new_lo = NULL;
    if (asprintf(&lo, "%s/", from) < 0 || asprintf(&hi, "%s0", from) < 0 ||
        asprintf(&new_lo, "%s/", to) < 0)
        rc = blocks_oom(e);
    if (rc == 0 && !(st = cachedb_stmt(&b->db, Q_OBJ_MOVE_RANGE, e)))
        rc = -e->code;
    if (rc == 0) {
        cachedb_bind_text(st, 1, cloud);
        cachedb_bind_text(st, 2, lo);
        cachedb_bind_text(st, 3, hi);
        cachedb_bind_text(st, 4, new_lo);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)strlen(lo) + 1);
        rc = cachedb_done(&b->db, st, "renaming objects", e);
    }
    free(lo);
    free(hi);
    free(new_lo);
    return rc;
}

/* New path of `path` after from -> to, or NULL if it does not move. */
static char *blocks_moved_path(const char *path, const char *from, const char *to, bool tree)
{
    char *out = NULL;
    if (strcmp(path, from) == 0)
        return strdup(to);
    if (tree && blocks_is_below(path, from) &&
        asprintf(&out, "%s%s", to, path + strlen(from)) < 0)
        return NULL;
    return out;
}

/* Rename pinned objects in memory; old path strings stay valid until the
 * object is freed, since callers may still hold them. */
static void blocks_move_pinned(struct blocks *b, const char *cloud, const char *from,
                               const char *to, bool tree)
{
    struct blocks_obj *moved = NULL;
    for (size_t k = 0; k < b->nbuckets; k++) {
        for (struct blocks_obj *o = b->buckets[k], *next; o; o = next) {
            next = o->next;
            if (strcmp(o->cloud, cloud) != 0)
                continue;
            char *np = blocks_moved_path(o->path, from, to, tree);
            struct blocks_name *old = np ? malloc(sizeof *old) : NULL;
            if (!old) {
                free(np);
                continue;
            }
            blocks_table_del(b, o);
            old->path = o->path;
            old->next = o->retired;
            o->retired = old;
            __atomic_store_n(&o->path, np, __ATOMIC_RELEASE);
            /* its journal entry moved: the next upload syncs the journal */
            __atomic_add_fetch(&o->move_gen, 1, __ATOMIC_RELAXED);
            o->next = moved;
            moved = o;
        }
    }
    while (moved) {
        struct blocks_obj *o = moved;
        moved = o->next;
        blocks_table_add(b, o);
    }
}

int blocks_rename(struct blocks *b, const char *cloud, const char *from, const char *to,
                  bool tree, struct sky_err *e)
{
    if (!cloud || !from || !to)
        return sky_fail(e, EINVAL, "block cache: rename needs a cloud and two paths");
    if (strcmp(from, to) == 0)
        return 0;
    if (tree && (blocks_is_below(to, from) || blocks_is_below(from, to)))
        return sky_fail(e, EINVAL, "block cache: cannot move '%s' to '%s'", from, to);
    struct blocks_drop d = { 0 };
    pthread_mutex_lock(&b->lock);
    int rc = cachedb_begin(&b->db, e);
    if (rc == 0) {
        rc = blocks_drop_one(b, &d, cloud, to, e);
        if (rc == 0 && tree)
            rc = blocks_drop_under(b, &d, cloud, to, e);
        if (rc == 0)
            rc = blocks_move_rows(b, cloud, from, to, tree, e);
        rc = rc ? (cachedb_rollback(&b->db), rc) : cachedb_commit(&b->db, e);
    }
    if (rc == 0) {
        blocks_drop_apply(b, &d);
        blocks_move_pinned(b, cloud, from, to, tree);
    }
    pthread_mutex_unlock(&b->lock);
    blocks_drop_free(&d);
    return rc;
}

/* ---- eviction (b->lock held) ----------------------------------------------- */

int blocks_stats(struct blocks *b, struct blocks_stats *out, struct sky_err *e)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&b->lock);
    int rc = 0;
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_OBJ_COUNTS, e);
    if (!st) {
        rc = -e->code;
    } else {
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            out->objects = (uint64_t)sqlite3_column_int64(st, 0);
            out->dirty_objects = (uint64_t)sqlite3_column_int64(st, 1);
            out->dirty_bytes = (uint64_t)sqlite3_column_int64(st, 2);
        } else {
            rc = cachedb_fail(&b->db, step, "counting objects", e);
        }
        sqlite3_reset(st);
    }
    /* The journal holds a dirty object's size as of its first write; one
     * in memory (open, or uploading) may have changed since: its size
     * now counts instead. */
    sqlite3_stmt *size_st = rc ? NULL : cachedb_stmt(&b->db, Q_OBJ_SIZE, NULL);
    for (size_t k = 0; size_st && k < b->nbuckets; k++)
        for (struct blocks_obj *o = b->buckets[k]; o; o = o->next) {
            if (!__atomic_load_n(&o->dirty, __ATOMIC_ACQUIRE))
                continue;
            sqlite3_bind_int64(size_st, 1, o->id);
            if (sqlite3_step(size_st) == SQLITE_ROW)
                out->dirty_bytes += __atomic_load_n(&o->size, __ATOMIC_ACQUIRE) -
                                    (uint64_t)sqlite3_column_int64(size_st, 0);
            sqlite3_reset(size_st);
        }
    pthread_mutex_unlock(&b->lock);
    out->blocks_present = __atomic_load_n(&b->blocks_present, __ATOMIC_RELAXED);
    out->blocks_partial = __atomic_load_n(&b->blocks_partial, __ATOMIC_RELAXED);
    out->bytes_present = __atomic_load_n(&b->bytes_present, __ATOMIC_RELAXED);
    out->max_size = b->max_size;
    out->block_size = b->bs;
    out->hits = __atomic_load_n(&b->hits, __ATOMIC_RELAXED);
    out->misses = __atomic_load_n(&b->misses, __ATOMIC_RELAXED);
    out->corrupt = __atomic_load_n(&b->corrupt, __ATOMIC_RELAXED);
    out->fetched_ahead = __atomic_load_n(&b->ahead_fetched, __ATOMIC_RELAXED);
    out->verified_ahead = __atomic_load_n(&b->ahead_verified, __ATOMIC_RELAXED);
    return rc;
}

/* ---- open / close ---------------------------------------------------------- */

static int blocks_prepare_schema(struct blocks *b, struct sky_err *e)
{
    int version;
    int rc = cachedb_version(&b->db, &version, e);
    if (rc || version == BLOCKS_SCHEMA_VERSION)
        return rc;
    if (version > BLOCKS_SCHEMA_VERSION)
        return sky_fail(e, EPROTO, "block cache in %s has schema version %d, newer than this "
                        "skyfs understands (%d); use a newer skyfs", b->dir, version,
                        BLOCKS_SCHEMA_VERSION);
    rc = cachedb_begin(&b->db, e);          /* 0: a new cache; 1: add partial blocks */
    if (rc == 0)
        rc = cachedb_exec(&b->db, version == 1 ? blocks_upgrade_v2 : blocks_schema, e);
    if (rc == 0)
        rc = cachedb_set_version(&b->db, BLOCKS_SCHEMA_VERSION, e);
    return rc ? (cachedb_rollback(&b->db), rc) : cachedb_commit(&b->db, e);
}

static int blocks_query_int(struct blocks *b, int q, const char *key, int64_t *out, bool *found,
                            struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, q, e);
    if (!st)
        return -e->code;
    if (key)
        cachedb_bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : cachedb_fail(&b->db, rc, "reading", e);
}

/* The cache remembers its block size; a new one drops the clean data.
 * Unsaved partial objects cut in the old size must be uploaded first. */
static int blocks_check_block_size(struct blocks *b, struct sky_err *e)
{
    int64_t stored = 0, incomplete = 0;
    bool found;
    int rc = blocks_query_int(b, Q_INFO_GET, "block_size", &stored, &found, e);
    if (rc || (found && (uint64_t)stored == b->bs))
        return rc;
    if (found) {
        rc = blocks_query_int(b, Q_COUNT_INCOMPLETE, NULL, &incomplete, &found, e);
        if (rc)
            return rc;
        if (incomplete > 0)
            return sky_fail(e, EBUSY, "block cache in %s holds %lld unsaved files cut in blocks "
                            "of %lld bytes; mount once with that block_size so they upload, "
                            "then change it", b->dir, (long long)incomplete, (long long)stored);
    }
    rc = cachedb_begin(&b->db, e);
    if (rc == 0 && found)
        rc = cachedb_exec(&b->db, "DELETE FROM blocks; DELETE FROM objects WHERE dirty=0;", e);
    sqlite3_stmt *st = rc ? NULL : cachedb_stmt(&b->db, Q_INFO_SET, e);
    if (rc == 0 && !st)
        rc = -e->code;
    if (rc == 0) {
        cachedb_bind_text(st, 1, "block_size");
        sqlite3_bind_int64(st, 2, (sqlite3_int64)b->bs);
        rc = cachedb_done(&b->db, st, "recording the block size", e);
    }
    return rc ? (cachedb_rollback(&b->db), rc) : cachedb_commit(&b->db, e);
}

/* Rows that cannot describe present data: of unknown objects, partial
 * blocks whose checksums do not fit the chunk size, and rows of clean
 * objects either without any checksum or past the end. */
static int blocks_drop_stray_rows(struct blocks *b, struct sky_err *e)
{
    char sql[640];
    snprintf(sql, sizeof sql,
             "DELETE FROM blocks WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.id=obj) "
             "OR (parts IS NOT NULL AND (parts=0 OR length(sums) IS NOT %u)) "
             "OR EXISTS (SELECT 1 FROM objects o WHERE o.id=obj AND o.dirty=0 "
             "AND ((sum IS NULL AND parts IS NULL) OR idx*%llu>=o.size));"
             "DELETE FROM inline WHERE NOT EXISTS "
             "(SELECT 1 FROM objects o WHERE o.id=obj AND o.dirty=1);",
             b->chunks * 8u, (unsigned long long)b->bs);
    return cachedb_exec(&b->db, sql, e);
}

struct blocks_row {
    int64_t id;
    uint64_t size;
    bool dirty, complete;
};

/* Measure what every object holds (the totals in stats). */
static int blocks_measure(struct blocks *b, struct sky_err *e)
{
    struct blocks_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step = SQLITE_DONE;
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_OBJ_ALL, e);
    if (!st)
        return -e->code;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        struct blocks_row r = { sqlite3_column_int64(st, 0),
                                (uint64_t)sqlite3_column_int64(st, 1),
                                sqlite3_column_int(st, 2) != 0, sqlite3_column_int(st, 3) != 0 };
        if (blocks_push((void **)&rows, &n, &cap, sizeof r, &r))
            rc = blocks_oom(e);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = cachedb_fail(&b->db, step, "reading objects", e);
    sqlite3_reset(st);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct blocks_held held;
        rc = blocks_usage(b, rows[i].id, rows[i].size, rows[i].dirty, rows[i].complete,
                          &held, e);
        blocks_account(b, held.blocks, held.partial, held.bytes);
    }
    free(rows);
    return rc;
}

static bool blocks_object_exists(struct blocks *b, int64_t id)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_OBJ_EXISTS, NULL);
    if (!st)
        return true;                    /* when unsure, keep the file */
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc != SQLITE_DONE;
}

/* Pending files whose data file is gone: the power went out while one was
 * written, before a close made it durable (a close that returned synced
 * the file, or put its bytes in `inline`), and the journal's row outlived
 * the file's creation.  What was written and never acknowledged is lost,
 * as on a local disk: a file made here (no version on its cloud) stays,
 * empty, and goes up so; a file of its cloud keeps the cloud's version
 * (the row goes, and the file is fetched again).  Named in
 * repair->unsaved.  Before, the journal's replay failed on such a row at
 * every pass, and the unmount reported an upload it could never make. */
static int blocks_drop_lost_files(struct blocks *b, struct cache_repair *repair,
                                  struct sky_err *e)
{
    struct lost { int64_t id; bool made_here; char *cloud, *path; } *lost = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(b->db.db, "SELECT id,cloud,path,etag FROM objects WHERE dirty=1 "
                                "AND id NOT IN (SELECT obj FROM inline)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return cachedb_fail(&b->db, rc, "finding pending files", e);
    int err = 0;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        char file[4096];
        blocks_data_path(b, id, file, sizeof file);
        if (access(file, F_OK) == 0 || errno != ENOENT)
            continue;
        const unsigned char *etag = sqlite3_column_text(st, 3);
        struct lost *grown = n < cap ? lost : realloc(lost, (cap = cap * 2 + 4) * sizeof *lost);
        if (!grown) {
            err = blocks_oom(e);
            break;
        }
        lost = grown;
        lost[n] = (struct lost){ id, !etag || !*etag,
                                 strdup((const char *)sqlite3_column_text(st, 1)),
                                 strdup((const char *)sqlite3_column_text(st, 2)) };
        if (!lost[n].cloud || !lost[n].path)
            err = blocks_oom(e);
        n++;
    }
    sqlite3_finalize(st);
    if (!err && rc != SQLITE_DONE)
        err = cachedb_fail(&b->db, rc, "finding pending files", e);
    size_t len = 0;
    for (size_t i = 0; !err && i < n; i++) {
        char file[4096];
        blocks_data_path(b, lost[i].id, file, sizeof file);
        int fd = -1;
        err = cachedb_begin(&b->db, e);
        if (!err && lost[i].made_here) {
            /* an empty file, dirty and complete, as a new one starts */
            sqlite3_stmt *st = NULL;
            fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (fd < 0)
                err = sky_fail(e, errno, "block cache: cannot create %s: %s", file,
                               strerror(errno));
            if (!err)
                err = blocks_del_rows(b, lost[i].id, e);
            if (!err && !(st = cachedb_stmt(&b->db, Q_OBJ_DIRTY, e)))
                err = -e->code;
            if (!err) {
                sqlite3_bind_int64(st, 1, lost[i].id);
                sqlite3_bind_int64(st, 2, 1);
                sqlite3_bind_int64(st, 3, 0);
                err = cachedb_done(&b->db, st, "emptying a lost file", e);
            }
        } else if (!err) {
            err = blocks_delete_object_rows(b, lost[i].id, e);
        }
        if (fd >= 0)
            close(fd);
        if (!err)
            err = cachedb_commit(&b->db, e);
        else
            cachedb_rollback(&b->db);
        if (err)
            break;
        char *note = repair->unsaved;
        size_t size = sizeof repair->unsaved;
        if (i == 0)
            len = (size_t)snprintf(note, size, "block cache: the power went out (or the cache's "
                                   "disk failed) while files were written, before their close: "
                                   "what was written to them is lost, as on a local disk; a "
                                   "file made here stays, empty, a file of its cloud keeps "
                                   "the cloud's version:");
        if (len < size)
            len += (size_t)snprintf(note + len, size - len, " '%s' (cloud '%s', %s)",
                                    lost[i].path, lost[i].cloud,
                                    lost[i].made_here ? "empty" : "the cloud's version");
    }
    for (size_t i = 0; i < n; i++) {
        free(lost[i].cloud);
        free(lost[i].path);
    }
    free(lost);
    return err;
}

/* Remove data files that belong to no object (left by a crash). */
static void blocks_sweep_orphans(struct blocks *b)
{
    DIR *d = opendir(b->data_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long long id = strtoll(de->d_name, &end, 10);
        if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end)
            continue;
        if (!blocks_object_exists(b, id))
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* What a new block cache takes from a damaged one (cachedamage.h): the
 * pending uploads (dirty objects) with their blocks, inline bytes and
 * unanswered uploads, and the block size they were cut in.  Clean data
 * is fetched again (its files go with the next sweep). */
static int blocks_salvage(struct blocks *b, const char *aside, int64_t *kept, struct sky_err *e)
{
    struct cachedamage_step steps[] = {
        { NULL, "INSERT OR REPLACE INTO main.info(key,value) SELECT key,value FROM "
                "damaged.info NOT INDEXED", 0 },
        { "objects", "old.dirty<>0", 0 },
        { "blocks", "old.obj IN (SELECT id FROM main.objects)", 0 },
        { "inline", "old.obj IN (SELECT id FROM main.objects)", 0 },
        { "unanswered", "old.obj IN (SELECT id FROM main.objects)", 0 },
    };
    int rc = cachedamage_salvage(&b->db, aside, steps, sizeof steps / sizeof *steps, e);
    *kept = rc ? 0 : steps[1].copied;
    return rc;
}

static int blocks_open_db(struct blocks *b, const char *db_path, bool check, struct sky_err *e)
{
    int rc = cachedb_open(&b->db, db_path, "block cache", blocks_sql, Q_COUNT, e);
    if (rc == 0 && check)
        rc = cachedb_check(&b->db, e);
    if (rc == 0)
        rc = blocks_prepare_schema(b, e);
    if (rc == 0)
        rc = cachedb_exec(&b->db, blocks_inline_table, e);
    if (rc == 0)
        rc = cachedb_exec(&b->db, blocks_unanswered_table, e);
    if (rc)
        cachedb_close(&b->db);
    return rc;
}

/* blocks_start found the database damaged (error e): set it aside, make a
 * new one and copy the pending uploads into it (blocks_salvage); when they
 * cannot be read, the data files go beside the damaged database, kept for
 * the person (nothing else knows which file they were). */
static int blocks_repair(struct blocks *b, const char *db_path, struct cache_repair *repair,
                         struct sky_err *e)
{
    char found[512];
    char *aside = NULL;
    int rc = cachedamage_begin(db_path, e, found, sizeof found, &aside, e);
    if (rc == 0)
        rc = blocks_open_db(b, db_path, false, e);
    if (rc) {
        free(aside);
        return sky_err_prefix(e, "replacing the damaged block cache %s", db_path);
    }
    int64_t kept = 0;
    struct sky_err se = { 0 };
    int lost = blocks_salvage(b, aside, &kept, &se);
    if (lost && (rc = cachedamage_move_beside(b->data_dir, aside, e)) != 0) {
        free(aside);
        return rc;
    }
    repair->repaired = true;
    repair->lost = lost != 0;
    snprintf(repair->msg, sizeof repair->msg,
             "the block cache %s was damaged (%s); it was moved to %s and a new one made: "
             "cached data is fetched again from the clouds; ", db_path, found, aside);
    size_t len = strlen(repair->msg);
    if (lost)
        snprintf(repair->msg + len, sizeof repair->msg - len,
                 "its pending uploads could not be read from it (%s): writes not uploaded "
                 "yet will not be, the mount shows the clouds' versions, and the bytes "
                 "written are among the data files moved beside it", se.msg);
    else
        snprintf(repair->msg + len, sizeof repair->msg - len,
                 "%lld pending uploads were kept and go on", (long long)kept);
    free(aside);
    return 0;
}

/* The owner (repair not NULL) checks the file, repairs a damaged one,
 * settles the block size and drops what describes nothing; a visitor
 * only reads. */
static int blocks_start(struct blocks *b, struct cache_repair *repair, struct sky_err *e)
{
    char db_path[4096];
    snprintf(db_path, sizeof db_path, "%s/blocks.db", b->dir);
    int rc = blocks_mkdirs(b->data_dir, e);
    if (rc == 0)
        rc = blocks_open_db(b, db_path, repair != NULL, e);
    if (rc && repair && cachedamage_is(rc))
        rc = blocks_repair(b, db_path, repair, e);
    if (rc == 0 && repair)
        rc = blocks_check_block_size(b, e);
    if (rc == 0 && repair)
        rc = blocks_drop_stray_rows(b, e);
    if (rc == 0 && repair)
        rc = blocks_drop_lost_files(b, repair, e);
    if (rc == 0)
        rc = blocks_measure(b, e);
    if (rc == 0 && repair)
        blocks_sweep_orphans(b);
    return rc;
}

int blocks_open(const char *dir, uint64_t block_size, uint64_t max_size,
                struct cache_repair *repair, struct blocks **out, struct sky_err *e)
{
    if (!dir || !dir[0])
        return sky_fail(e, EINVAL, "block cache: no cache directory given");
    if (block_size < BLOCKS_MIN_BLOCK || block_size > BLOCKS_MAX_BLOCK ||
        (block_size & (block_size - 1)))
        return sky_fail(e, EINVAL, "block cache: block size %llu is not a power of two "
                        "between 4 KiB and 8 MiB", (unsigned long long)block_size);
    struct blocks *b = calloc(1, sizeof *b);
    if (!b)
        return blocks_oom(e);
    b->bs = block_size;
    b->max_size = max_size;
    b->quota_cap = UINT64_MAX;
    b->probe = blocks_statvfs;
    while ((1ull << b->shift) < block_size)
        b->shift++;
    /* chunks of 64 KiB, or larger so that a block has at most 64 */
    b->chunk_shift = b->shift;
    while (b->chunk_shift > 0 && (1ull << (b->chunk_shift - 1)) >= BLOCKS_CHUNK_MIN &&
           (block_size >> (b->chunk_shift - 1)) <= BLOCKS_CHUNKS)
        b->chunk_shift--;
    b->chunks = (unsigned)(block_size >> b->chunk_shift);
    b->nbuckets = 256;
    b->buckets = calloc(b->nbuckets, sizeof *b->buckets);
    b->dir = strdup(dir);
    if (asprintf(&b->data_dir, "%s/data", dir) < 0)
        b->data_dir = NULL;
    pthread_mutex_init(&b->lock, NULL);
    b->pool = pool_new(b);
    b->spares = spares_new(dir);        /* NULL: data files are made on the spot */
    int rc = b->pool && b->buckets && b->dir && b->data_dir ? blocks_start(b, repair, e)
                                                            : blocks_oom(e);
    if (rc) {
        blocks_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

/* Every object should have been released; any still pinned is flushed and
 * freed (a holder must not use it afterwards). */
void blocks_close(struct blocks *b)
{
    if (!b)
        return;
    pool_free(b->pool);
    spares_free(b->spares);
    for (size_t k = 0; b->buckets && k < b->nbuckets; k++) {
        for (struct blocks_obj *o = b->buckets[k], *next; o; o = next) {
            next = o->next;
            if (b->db.db)
                blocks_flush_use(b, o);
            obj_free(o);
        }
    }
    cachedb_close(&b->db);
    pthread_mutex_destroy(&b->lock);
    free(b->buckets);
    free(b->dir);
    free(b->data_dir);
    free(b);
}
