/*
 * journal.c - the upload journal: dirty objects, uploads, replay after a crash.
 *
 * An object is journaled as dirty (SQLite, synchronously) before its
 * first byte changes; blocks_prepare_upload makes it complete and durable
 * (cache file and journal fsynced) for an upload, blocks_committed
 * records the upload, and blocks_each_dirty hands back every pending
 * upload in journal order (after a crash: the replay).  Public face:
 * journal.h (included by blocks.h); the other block cache files call
 * obj_mark_dirty / obj_record_new_blocks through blocks_int.h.
 *
 * Dirty objects (the journal).  The first write to a clean object commits
 * objects.dirty = 1 before any byte changes; later writes touch SQLite only
 * when a block becomes present without having a row (one insert per block,
 * not per write).  For a dirty object every block with a row counts as
 * present and trusted, whatever its recorded checksum, and the object's
 * size is its data file's size.  When all blocks are present at that first
 * write (a new file, or one fully cached) `complete` = 1 is recorded
 * instead and no block rows are needed at all.  After a crash that is
 * enough to find every byte written locally: blocks_each_dirty hands the
 * objects back, and blocks never fetched are fetched from the cloud.
 */
#include "blocks_int.h"

/* ---- size changes and the journal (o->lock held) ----------------------- */

/* Journal the object as dirty before its content changes. */
int obj_mark_dirty(struct blocks_obj *o, struct sky_err *e)
{
    if (o->inlined) {
        /* written again: the data file is the truth from here on.  It
         * holds the copy's bytes now, but only in the page cache (the
         * close that made the copy synced the journal instead): synced
         * first, or a power cut after the copy's removal reached the disk
         * would lose what that close acknowledged (the file empty, or not
         * there at all). */
        if (fdatasync(o->fd) != 0)
            return obj_io_fail(o, -errno, "syncing", e);
        int rc = obj_update(o, Q_INLINE_DEL, 0, 0, "dropping a journaled copy", e);
        if (rc)
            return rc;
        o->inlined = false;
    }
    if (o->dirty)
        return 0;
    bool complete = true;
    for (uint64_t i = 0; i < o->nblocks && complete; i++)
        complete = o->st[i] & B_PRESENT;
    int rc = obj_update(o, Q_OBJ_DIRTY, complete, (int64_t)o->size, "journaling a write", e);
    if (rc)
        return rc;
    o->complete = complete;
    obj_set_dirty(o, true);
    return 0;
}

/* Rows for blocks [from, to) of a dirty object not recorded as complete. */
int obj_record_new_blocks(struct blocks_obj *o, uint64_t from, uint64_t to,
                          struct sky_err *e)
{
    if (o->complete || from >= to)
        return 0;
    uint64_t *idx = malloc((to - from) * sizeof *idx);
    if (!idx)
        return blocks_oom(e);
    size_t n = 0;
    for (uint64_t i = from; i < to; i++)
        if (!(o->st[i] & B_ROW))
            idx[n++] = i;
    int rc = obj_put_rows(o, idx, n, e);
    free(idx);
    return rc;
}

/* ---- public: uploads ------------------------------------------------------ */

int blocks_open_data(struct blocks_obj *o, int *fd, struct sky_err *e)
{
    char file[4096];
    blocks_data_path(o->b, o->id, file, sizeof file);
    *fd = open(file, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return sky_fail(e, errno, "block cache: cannot open %s: %s", file, strerror(errno));
    return 0;
}

static int obj_open_upload_fd(struct blocks_obj *o, struct sky_err *e)
{
    return o->upload_fd >= 0 ? 0 : blocks_open_data(o, &o->upload_fd, e);
}

/* The journal's copy of a small dirty object's bytes, with `complete`
 * recorded, in one transaction (o->lock held; every block present). */
static int obj_put_inline(struct blocks_obj *o, struct sky_err *e)
{
    struct blocks *b = o->b;
    void *buf = malloc(o->size ? o->size : 1);
    if (!buf)
        return blocks_oom(e);
    int rc = o->size ? blocks_pread(o->fd, buf, o->size, 0) : 0;
    if (rc) {
        free(buf);
        return obj_io_fail(o, rc, "reading", e);
    }
    pthread_mutex_lock(&b->lock);
    if (!o->gone) {
        sqlite3_stmt *st;
        rc = cachedb_begin(&b->db, e);
        if (rc == 0 && !(st = cachedb_stmt(&b->db, Q_INLINE_PUT, e)))
            rc = -e->code;
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, o->id);
            sqlite3_bind_blob64(st, 2, buf, o->size, SQLITE_STATIC);
            rc = cachedb_done(&b->db, st, "journaling a copy", e);
        }
        if (rc == 0 && !o->complete && !(st = cachedb_stmt(&b->db, Q_OBJ_COMPLETE, e)))
            rc = -e->code;
        if (rc == 0 && !o->complete) {
            sqlite3_bind_int64(st, 1, o->id);
            sqlite3_bind_int64(st, 2, 1);
            rc = cachedb_done(&b->db, st, "recording the journal", e);
        }
        rc = rc ? (cachedb_rollback(&b->db), rc) : cachedb_commit(&b->db, e);
    }
    pthread_mutex_unlock(&b->lock);
    free(buf);
    if (rc == 0) {
        o->complete = true;
        o->inlined = true;
    }
    return rc;
}

/* Every block present, the cache file and the journal on disk (o->lock).
 * A small object (BLOCKS_INLINE_MAX) puts a copy of its bytes in the
 * journal instead of syncing its cache file: one sync in all, of the
 * block cache database's write-ahead log (cachedb_sync), which makes the
 * copy, the object's row (dirty, committed before any byte changed) and
 * its path durable together.  After a crash the copy is written back
 * into the data file before anything reads it (blocks.c,
 * blocks_restore_inline), whatever the crash left of that file, even
 * none; a later write drops the copy first (obj_mark_dirty), the upload's
 * commit drops it too (blocks_del_rows).  A larger object: two syncs, its
 * cache file's bytes, then the log.  The log is synced without b->lock so
 * that other files' writes, opens and uploads go on meanwhile.  Nothing
 * is synced again when nothing was written, cut or fetched since this
 * object was last made durable and its journal entry did not move (a
 * rename): the upload of a file whose close made it durable syncs
 * nothing. */
static int obj_make_durable(struct blocks_obj *o, blocks_fetch_fn fetch, void *arg,
                            struct sky_err *e)
{
    struct blocks *b = o->b;
    int rc = 0;
    bool fetched = false;
    for (uint64_t i = 0; rc == 0 && i < o->nblocks; i++) {
        fetched = fetched || !(o->st[i] & B_PRESENT);
        rc = obj_ensure_block(o, i, ~0ull, fetch, arg, false, false, e);
    }
    if (rc)
        return rc;
    uint64_t moves = __atomic_load_n(&o->move_gen, __ATOMIC_RELAXED);
    if (o->synced && o->synced_gen == o->write_gen && o->synced_move == moves && !fetched)
        return 0;
    if (o->dirty && o->size <= BLOCKS_INLINE_MAX) {
        rc = obj_put_inline(o, e);
    } else {
        /* the bytes and the size that reads them back: fdatasync is enough */
        if (fdatasync(o->fd) != 0)
            return obj_io_fail(o, -errno, "syncing", e);
        if (o->dirty && !o->complete) {
            rc = obj_update(o, Q_OBJ_COMPLETE, 1, 0, "recording the journal", e);
            o->complete = rc == 0;
        }
    }
    if (rc == 0)
        rc = cachedb_sync_outside(&b->db, &b->lock, e);
    if (rc == 0) {
        o->synced_gen = o->write_gen;
        o->synced_move = moves;     /* a rename since is synced next time */
        o->synced = true;
    }
    return rc;
}

int blocks_sync(struct blocks *b, struct sky_err *e)
{
    return cachedb_sync_outside(&b->db, &b->lock, e);
}

int blocks_make_durable(struct blocks_obj *o, blocks_fetch_fn fetch, void *arg,
                        struct sky_err *e)
{
    pthread_mutex_lock(&o->lock);
    int rc = obj_make_durable(o, fetch, arg, e);
    pthread_mutex_unlock(&o->lock);
    return rc;
}

int blocks_prepare_upload(struct blocks_obj *o, blocks_fetch_fn fetch, void *arg, int *fd,
                          struct sky_err *e)
{
    pthread_mutex_lock(&o->lock);
    int rc = obj_make_durable(o, fetch, arg, e);
    if (rc == 0)
        rc = obj_open_upload_fd(o, e);
    if (rc == 0) {
        o->prepared = true;
        o->prepared_gen = o->write_gen;
        *fd = o->upload_fd;
    }
    pthread_mutex_unlock(&o->lock);
    return rc;
}

/* Checksums for every present block (the content now matches the cloud). */
static int obj_compute_sums(struct blocks_obj *o, struct sky_err *e)
{
    for (uint64_t i = 0; i < o->nblocks; i++) {
        if (!(o->st[i] & B_PRESENT) || (o->st[i] & B_VERIFIED))
            continue;
        int rc = blocks_hash_file(o->fd, i << o->b->shift, obj_block_len(o, i), &o->sum[i]);
        if (rc)
            return obj_io_fail(o, rc, "reading", e);
    }
    return 0;
}

/* Replace the object's rows by its clean state (b->lock held, in a txn). */
static int obj_write_clean(struct blocks_obj *o, const char *etag, struct sky_err *e)
{
    struct blocks *b = o->b;
    int rc = blocks_del_rows(b, o->id, e);
    int64_t now = blocks_now();
    sqlite3_stmt *st;
    for (uint64_t i = 0; rc == 0 && i < o->nblocks; i++) {
        if (!(o->st[i] & B_PRESENT) && !o->parts[i])
            continue;
        if (!(st = cachedb_stmt(&b->db, Q_BLK_PUT, e)))
            return -e->code;
        obj_bind_row(o, st, i, o->used[i] ? o->used[i] : now);
        if (o->st[i] & B_PRESENT)           /* dirty until this commits */
            sqlite3_bind_int64(st, 3, (sqlite3_int64)o->sum[i]);
        rc = cachedb_done(&b->db, st, "recording a block", e);
    }
    if (rc == 0 && !(st = cachedb_stmt(&b->db, Q_OBJ_CLEAN, e)))
        return -e->code;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, o->id);
        cachedb_bind_text(st, 2, etag);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)o->size);
        sqlite3_bind_int64(st, 4, now);
        rc = cachedb_done(&b->db, st, "recording an upload", e);
    }
    return rc;
}

static int obj_commit_clean(struct blocks_obj *o, const char *etag, struct sky_err *e)
{
    struct blocks *b = o->b;
    int rc = obj_compute_sums(o, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&b->lock);
    if (!o->gone) {
        rc = cachedb_begin(&b->db, e);
        if (rc == 0)
            rc = obj_write_clean(o, etag, e);
        rc = rc ? (cachedb_rollback(&b->db), rc) : cachedb_commit(&b->db, e);
    }
    pthread_mutex_unlock(&b->lock);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < o->nblocks; i++)
        if (o->st[i] & B_PRESENT)
            o->st[i] = (o->st[i] | B_VERIFIED | B_ROW) & (uint8_t)~B_DIRTY;
    o->complete = false;
    o->inlined = false;             /* blocks_del_rows dropped the copy */
    obj_set_dirty(o, false);
    return 0;
}

void blocks_base_etag(struct blocks_obj *o, char *out, size_t size)
{
    pthread_mutex_lock(&o->lock);
    snprintf(out, size, "%s", o->etag);
    pthread_mutex_unlock(&o->lock);
}

/* The object's base version is `etag` now: its row, then its memory
 * (o->lock held). */
static int obj_set_etag(struct blocks_obj *o, const char *etag, struct sky_err *e)
{
    char *copy = strdup(etag);
    if (!copy)
        return blocks_oom(e);
    int rc = obj_set_etag_row(o, etag, e);
    if (rc == 0) {
        free(o->etag);
        o->etag = copy;
    } else {
        free(copy);
    }
    return rc;
}

int blocks_retag(struct blocks *b, const char *cloud, const char *path, const char *old,
                 const char *etag, struct sky_err *e)
{
    if (!old || !*old || !etag || !*etag || strcmp(old, etag) == 0)
        return 0;
    struct blocks_obj *o;
    int rc = blocks_acquire(b, cloud, path, NULL, 0, &o, e);
    if (rc == -ENOENT) {
        sky_err_clear(e);
        return 0;               /* not cached: nothing to say */
    }
    if (rc)
        return rc;
    pthread_mutex_lock(&o->lock);
    if (strcmp(o->etag, old) == 0)
        rc = obj_set_etag(o, etag, e);
    pthread_mutex_unlock(&o->lock);
    blocks_release(o);
    return rc;
}

int blocks_rebase_new(struct blocks_obj *o, const char *etag, struct sky_err *e)
{
    if (!etag || !*etag)
        return sky_fail(e, EINVAL, "block cache: no version");
    pthread_mutex_lock(&o->lock);
    int rc = o->etag && *o->etag
                 ? sky_fail(e, EINVAL, "block cache: \"%s\" is based on a version already",
                            blocks_path(o))
                 : obj_set_etag(o, etag, e);
    pthread_mutex_unlock(&o->lock);
    return rc;
}

int blocks_committed(struct blocks_obj *o, const char *etag, struct sky_err *e)
{
    if (!etag)
        return sky_fail(e, EINVAL, "block cache: committed without an etag");
    char *copy = strdup(etag);
    if (!copy)
        return blocks_oom(e);
    pthread_mutex_lock(&o->lock);
    obj_quiesce(o);
    int rc;
    if (o->dirty && o->prepared && o->prepared_gen == o->write_gen)
        rc = obj_commit_clean(o, etag, e);
    else
        rc = obj_set_etag_row(o, etag, e);      /* clean already, or written since */
    if (rc == 0) {
        free(o->etag);
        o->etag = copy;
        copy = NULL;
    }
    if (rc == 0 && o->unanswered &&     /* the cloud's version is known again */
        obj_update(o, Q_UNANSWERED_DEL, 0, 0, "dropping unanswered uploads", e) == 0)
        o->unanswered = false;
    free(o->landed);
    o->landed = copy;                   /* NULL once committed */
    pthread_mutex_unlock(&o->lock);
    return rc;
}

bool blocks_is_landed(struct blocks_obj *o, const char *etag)
{
    pthread_mutex_lock(&o->lock);
    bool landed = o->landed && etag && strcmp(o->landed, etag) == 0;
    pthread_mutex_unlock(&o->lock);
    return landed;
}

int blocks_note_unanswered(struct blocks_obj *o, uint64_t size, int64_t mtime_ns,
                           struct sky_err *e)
{
    pthread_mutex_lock(&o->lock);
    int rc = obj_update(o, Q_UNANSWERED_PUT, (int64_t)size, mtime_ns,
                        "recording an unanswered upload", e);
    if (rc == 0)
        o->unanswered = true;
    pthread_mutex_unlock(&o->lock);
    return rc;
}

bool blocks_was_unanswered(struct blocks_obj *o, uint64_t size, int64_t mtime_ns)
{
    struct blocks *b = o->b;
    struct sky_err e = { 0 };
    bool found = false;
    pthread_mutex_lock(&o->lock);
    pthread_mutex_lock(&b->lock);
    sqlite3_stmt *st = o->unanswered && !o->gone ? cachedb_stmt(&b->db, Q_UNANSWERED_HAS, &e)
                                                 : NULL;
    if (st) {
        sqlite3_bind_int64(st, 1, o->id);
        sqlite3_bind_int64(st, 2, (int64_t)size);
        sqlite3_bind_int64(st, 3, mtime_ns);
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_unlock(&o->lock);
    return found;
}

/* ---- the journal -------------------------------------------------------------- */

struct blocks_key {
    char *cloud, *path;
};

static int blocks_dirty_keys(struct blocks *b, struct blocks_key **out, size_t *count,
                             struct sky_err *e)
{
    struct blocks_key *keys = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step = SQLITE_DONE;
    pthread_mutex_lock(&b->lock);
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_OBJ_DIRTY_KEYS, e);
    if (!st)
        rc = -e->code;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        struct blocks_key k = { strdup((const char *)sqlite3_column_text(st, 0)),
                                strdup((const char *)sqlite3_column_text(st, 1)) };
        if (!k.cloud || !k.path || blocks_push((void **)&keys, &n, &cap, sizeof k, &k)) {
            free(k.cloud);
            free(k.path);
            rc = blocks_oom(e);
        }
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = cachedb_fail(&b->db, step, "reading the journal", e);
    if (st)
        sqlite3_reset(st);
    pthread_mutex_unlock(&b->lock);
    *out = keys;
    *count = n;
    return rc;
}

int blocks_each_dirty(struct blocks *b, blocks_dirty_cb cb, void *arg, struct sky_err *e)
{
    struct blocks_key *keys;
    size_t n;
    int first_err = blocks_dirty_keys(b, &keys, &n, e);
    int rc = 0;
    struct sky_err one;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct blocks_obj *o;
        int got = blocks_acquire(b, keys[i].cloud, keys[i].path, NULL, 0, &o, &one);
        if (got == -ENOENT)
            continue;                           /* forgotten meanwhile */
        if (got) {
            if (!first_err && e)
                *e = one;
            first_err = first_err ? first_err : got;
            continue;
        }
        if (blocks_is_dirty(o))
            rc = cb(arg, o);
        blocks_release(o);
    }
    for (size_t i = 0; i < n; i++) {
        free(keys[i].cloud);
        free(keys[i].path);
    }
    free(keys);
    return rc ? rc : first_err;
}

/* ---- what an upload may take from the cloud's copy (incremental uploads) -- */

void blocks_delta_free(struct blocks_delta *d)
{
    if (!d)
        return;
    free(d->etag);
    free(d->dirty);
    memset(d, 0, sizeof *d);
}

int blocks_upload_delta(struct blocks_obj *o, struct blocks_delta *d, struct sky_err *e)
{
    memset(d, 0, sizeof *d);
    pthread_mutex_lock(&o->lock);
    int rc = 0;
    bool any_clean = false;
    for (uint64_t i = 0; i < o->nblocks && !any_clean; i++)
        any_clean = !(o->st[i] & B_DIRTY);
    /* no write since the prepare, a version to start from, something kept */
    if (o->prepared && o->prepared_gen == o->write_gen && o->etag && *o->etag && any_clean) {
        size_t cap = 0;
        for (uint64_t i = 0; i < o->nblocks; i++)
            if ((o->st[i] & B_DIRTY) && (i == 0 || !(o->st[i - 1] & B_DIRTY)))
                cap++;
        d->etag = strdup(o->etag);
        d->dirty = malloc((cap ? cap : 1) * sizeof *d->dirty);
        if (!d->etag || !d->dirty)
            rc = blocks_oom(e);
        for (uint64_t i = 0; rc == 0 && i < o->nblocks; i++) {
            if (!(o->st[i] & B_DIRTY))
                continue;
            uint64_t j = i;
            while (j + 1 < o->nblocks && (o->st[j + 1] & B_DIRTY))
                j++;
            uint64_t off = i << o->b->shift, end = (j + 1) << o->b->shift;
            if (end > o->size)
                end = o->size;
            d->dirty[d->ndirty++] = (struct blocks_range){ off, end - off };
            i = j;
        }
    }
    pthread_mutex_unlock(&o->lock);
    if (rc)
        blocks_delta_free(d);
    return rc;
}
