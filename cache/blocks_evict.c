/*
 * blocks_evict.c - eviction: the size cap and the free-space floor; dropping objects.
 *
 * Least recently used blocks of clean, unpinned objects are punched out
 * until the cache is under max_size and the floor (blocks_evict,
 * blocks_make_room before writes); blocks_forget and blocks_evict_under
 * drop whole objects.  Works on the database alone (never an object's
 * lock).  Called through blocks.h, and by the other block cache files
 * through blocks_int.h.
 *
 * Limits.  blocks_target turns max_size and min_free (the free space the
 * probe measures, called with no lock held) into the bytes the cache may
 * hold now; blocks_evict_locked evicts down to it.  When only pinned or
 * dirty data is left, b->evict_stuck skips further passes until the next
 * last release (only then can anything become evictable), so readers of
 * a large open file do not rescan the LRU index on every fetch.
 */
#include "blocks_int.h"
#include "../lib/log.h"

/* ---- small helpers ------------------------------------------------------ */

/* Free bytes on the file system holding the cache directory. */
int blocks_statvfs(void *arg, const char *dir, uint64_t *out)
{
    struct statvfs s;
    if (statvfs(dir, &s) != 0)
        return -errno;
    *out = (uint64_t)s.f_bavail * s.f_frsize;
    return 0;
}

/* The free space the cache leaves on its file system: min_free, and the
 * databases' reserve while that is released (reserve.h). */
static uint64_t blocks_floor(struct blocks *b)
{
    return b->min_free + reserve_held_back();
}

/* How many bytes the cache may hold now: max_size, or less when the file
 * system's free space, less `need` bytes about to be written, is under
 * min_free.  *free_left (may be NULL) gets the free space less `need`
 * (UINT64_MAX when there is no floor or it cannot be measured).  Called
 * without b->lock (the probe may take it). */
static uint64_t blocks_target(struct blocks *b, uint64_t need, uint64_t *free_left)
{
    uint64_t target = b->max_size, free_now = 0, left = UINT64_MAX, floor = blocks_floor(b);
    uint64_t quota = __atomic_load_n(&b->quota_cap, __ATOMIC_RELAXED);
    if (quota != UINT64_MAX) {
        /* under a disk quota: its room is what the cache may hold */
        uint64_t room = quota > need ? quota - need : 0;
        target = room < target ? room : target;
    }
    if (floor && b->probe(b->probe_arg, b->dir, &free_now) == 0) {
        left = free_now > need ? free_now - need : 0;
        if (left < floor) {
            uint64_t deficit = floor - left, have = blocks_bytes(b);
            uint64_t floor_target = have > deficit ? have - deficit : 0;
            target = floor_target < target ? floor_target : target;
        }
    }
    if (free_left)
        *free_left = left;
    return target;
}

/* ---- dropping objects (b->lock held) -------------------------------------- */

int blocks_push(void **arr, size_t *n, size_t *cap, size_t elem, const void *item)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void *na = realloc(*arr, ncap * elem);
        if (!na)
            return -ENOMEM;
        *arr = na;
        *cap = ncap;
    }
    memcpy((char *)*arr + *n * elem, item, elem);
    (*n)++;
    return 0;
}

/* Add what one block row holds (as blocks_load_rows reads it). */
static void blocks_held_add(const struct blocks *b, struct blocks_held *h, uint64_t size,
                            bool dirty, uint64_t idx, bool has_sum, bool partial, uint64_t parts)
{
    if (idx >= blocks_count_for(b, size))
        return;
    if (partial && parts && !(parts & ~blocks_chunk_mask(b, size, idx))) {
        h->blocks++;
        h->partial++;
        h->bytes += (int64_t)blocks_chunk_bytes(b, size, idx, parts);
    } else if (!partial && (dirty || has_sum)) {
        h->blocks++;
        h->bytes += (int64_t)blocks_block_len(b, size, idx);
    }
}

static int blocks_usage_query(struct blocks *b, int64_t id, uint64_t size, bool dirty,
                              struct blocks_held *out, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_BLK_USAGE, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        blocks_held_add(b, out, size, dirty, (uint64_t)sqlite3_column_int64(st, 0),
                        sqlite3_column_int(st, 1) != 0,
                        sqlite3_column_type(st, 2) != SQLITE_NULL,
                        (uint64_t)sqlite3_column_int64(st, 2));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : cachedb_fail(&b->db, rc, "measuring an object", e);
}

/* What an unpinned object holds.  A clean object whose data file is
 * missing or of the wrong size loses its rows (it holds nothing). */
int blocks_usage(struct blocks *b, int64_t id, uint64_t size, bool dirty, bool complete,
                 struct blocks_held *out, struct sky_err *e)
{
    char file[4096];
    struct stat s;
    blocks_data_path(b, id, file, sizeof file);
    bool exists = stat(file, &s) == 0;
    *out = (struct blocks_held){ 0 };
    if (!dirty && (!exists || (uint64_t)s.st_size != size))
        return blocks_del_rows(b, id, e);
    if (!exists)
        return 0;
    size = (uint64_t)s.st_size;             /* the same, or a dirty object's truth */
    if (dirty && complete) {
        out->blocks = (int64_t)blocks_count_for(b, size);
        out->bytes = (int64_t)size;
        return 0;
    }
    return blocks_usage_query(b, id, size, dirty, out, e);
}

/* Plan the drop of object (cloud, path), if cached, and delete its rows. */
int blocks_drop_one(struct blocks *b, struct blocks_drop *d, const char *cloud,
                    const char *path, struct sky_err *e)
{
    struct blocks_obj *pinned = blocks_table_find(b, cloud, path);
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_OBJ_FIND, e);
    if (!st)
        return -e->code;
    cachedb_bind_text(st, 1, cloud);
    cachedb_bind_text(st, 2, path);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? 0 : cachedb_fail(&b->db, rc, "finding an object", e);
    }
    int64_t id = sqlite3_column_int64(st, 0);
    uint64_t size = (uint64_t)sqlite3_column_int64(st, 2);
    bool dirty = sqlite3_column_int(st, 3), complete = sqlite3_column_int(st, 4);
    sqlite3_reset(st);
    if (d->keep_busy && (pinned || dirty)) {
        d->busy++;
        return 0;
    }
    struct blocks_held held = { 0 };
    if (pinned)
        rc = blocks_push((void **)&d->pinned, &d->npinned, &d->pincap, sizeof pinned, &pinned);
    else if ((rc = blocks_usage(b, id, size, dirty, complete, &held, e)) == 0)
        rc = blocks_push((void **)&d->ids, &d->nids, &d->idcap, sizeof id, &id);
    if (rc == -ENOMEM)
        return blocks_oom(e);
    if (rc)
        return rc;
    d->held.blocks += held.blocks;
    d->held.partial += held.partial;
    d->held.bytes += held.bytes;
    d->with_data += held.blocks > 0;
    return blocks_delete_object_rows(b, id, e);
}

/* Every cached path strictly below `dir` in `cloud` (malloc'd list); dir
 * "" is the cloud's root: every path of the cloud. */
static int blocks_paths_under(struct blocks *b, const char *cloud, const char *dir,
                              char ***out, size_t *count, struct sky_err *e)
{
    char *lo = NULL, *hi = NULL;
    char **paths = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (dir[0] && (asprintf(&lo, "%s/", dir) < 0 || asprintf(&hi, "%s0", dir) < 0))
        rc = blocks_oom(e);
    sqlite3_stmt *st = rc ? NULL : cachedb_stmt(&b->db, dir[0] ? Q_OBJ_UNDER : Q_OBJ_OF_CLOUD, e);
    if (rc == 0 && !st)
        rc = -e->code;
    if (rc == 0) {
        cachedb_bind_text(st, 1, cloud);
        if (dir[0]) {
            cachedb_bind_text(st, 2, lo);
            cachedb_bind_text(st, 3, hi);
        }
        int step;
        while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
            char *p = strdup((const char *)sqlite3_column_text(st, 0));
            if (!p || blocks_push((void **)&paths, &n, &cap, sizeof p, &p)) {
                free(p);
                rc = blocks_oom(e);
            }
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = cachedb_fail(&b->db, step, "listing objects", e);
        sqlite3_reset(st);
    }
    free(lo);
    free(hi);
    *out = paths;
    *count = n;
    return rc;
}

int blocks_drop_under(struct blocks *b, struct blocks_drop *d, const char *cloud,
                      const char *dir, struct sky_err *e)
{
    char **paths;
    size_t n;
    int rc = blocks_paths_under(b, cloud, dir, &paths, &n, e);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = blocks_drop_one(b, d, cloud, paths[i], e);
        free(paths[i]);
    }
    free(paths);
    return rc;
}

/* After the transaction committed: unpinned files go, pinned objects are
 * `gone` (their file goes at the last release). */
void blocks_drop_apply(struct blocks *b, struct blocks_drop *d)
{
    char file[4096];
    for (size_t i = 0; i < d->nids; i++) {
        blocks_data_path(b, d->ids[i], file, sizeof file);
        unlink(file);
    }
    for (size_t i = 0; i < d->npinned; i++) {
        blocks_table_del(b, d->pinned[i]);
        d->pinned[i]->gone = true;
    }
    blocks_account(b, -d->held.blocks, -d->held.partial, -d->held.bytes);
}

void blocks_drop_free(struct blocks_drop *d)
{
    free(d->ids);
    free(d->pinned);
}

int blocks_evict_under(struct blocks *b, const char *cloud, const char *path, bool tree,
                       struct blocks_evicted *out, struct sky_err *e)
{
    if (!cloud || !path)
        return sky_fail(e, EINVAL, "block cache: evict needs a cloud and a path");
    struct blocks_drop d = { .keep_busy = true };
    pthread_mutex_lock(&b->lock);
    int rc = cachedb_begin(&b->db, e);
    if (rc == 0) {
        rc = blocks_drop_one(b, &d, cloud, path, e);
        if (rc == 0 && tree)
            rc = blocks_drop_under(b, &d, cloud, path, e);
        rc = rc ? (cachedb_rollback(&b->db), rc) : cachedb_commit(&b->db, e);
    }
    if (rc == 0) {
        blocks_drop_apply(b, &d);
        out->files += d.with_data;
        out->bytes += (uint64_t)d.held.bytes;
        out->skipped += d.busy;
    }
    pthread_mutex_unlock(&b->lock);
    blocks_drop_free(&d);
    return rc;
}

int blocks_forget(struct blocks *b, const char *cloud, const char *path, struct sky_err *e)
{
    if (!cloud || !path)
        return sky_fail(e, EINVAL, "block cache: forget needs a cloud and a path");
    struct blocks_drop d = { 0 };
    pthread_mutex_lock(&b->lock);
    int rc = cachedb_begin(&b->db, e);
    if (rc == 0) {
        rc = blocks_drop_one(b, &d, cloud, path, e);
        rc = rc ? (cachedb_rollback(&b->db), rc) : cachedb_commit(&b->db, e);
    }
    if (rc == 0)
        blocks_drop_apply(b, &d);
    pthread_mutex_unlock(&b->lock);
    blocks_drop_free(&d);
    return rc;
}

/* ---- eviction (b->lock held) ----------------------------------------------- */

struct blocks_victim {
    int64_t obj, idx, last_use;
    uint64_t size;
    uint64_t parts;                 /* a partial block's chunk map */
    bool partial, has_sum;
};

static int blocks_cmp_id(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

/* Sorted ids of pinned objects. */
static int64_t *blocks_pinned_ids(struct blocks *b, size_t *n)
{
    int64_t *ids = malloc((b->nobjs ? b->nobjs : 1) * sizeof *ids);
    *n = 0;
    if (!ids)
        return NULL;
    for (size_t k = 0; k < b->nbuckets; k++)
        for (struct blocks_obj *o = b->buckets[k]; o; o = o->next)
            ids[(*n)++] = o->id;
    qsort(ids, *n, sizeof *ids, blocks_cmp_id);
    return ids;
}

/* The next least recently used blocks of clean objects after `after`. */
static int blocks_lru_batch(struct blocks *b, const struct blocks_victim *after,
                            struct blocks_victim *out, size_t *n, struct sky_err *e)
{
    *n = 0;
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_BLK_LRU, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, after->last_use);
    sqlite3_bind_int64(st, 2, after->obj);
    sqlite3_bind_int64(st, 3, after->idx);
    sqlite3_bind_int(st, 4, BLOCKS_EVICT_BATCH);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out[*n] = (struct blocks_victim){
            .obj = sqlite3_column_int64(st, 0), .idx = sqlite3_column_int64(st, 1),
            .size = (uint64_t)sqlite3_column_int64(st, 2),
            .last_use = sqlite3_column_int64(st, 3),
            .parts = (uint64_t)sqlite3_column_int64(st, 4),
            .partial = sqlite3_column_type(st, 4) != SQLITE_NULL,
            .has_sum = sqlite3_column_int(st, 5) != 0 };
        (*n)++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : cachedb_fail(&b->db, rc, "choosing blocks to evict", e);
}

/* Punch one block of an unpinned object and forget its row. */
static int blocks_evict_one(struct blocks *b, const struct blocks_victim *v, int *fd,
                            int64_t *fd_obj, struct sky_err *e)
{
    if (*fd_obj != v->obj) {
        char file[4096];
        if (*fd >= 0)
            close(*fd);
        blocks_data_path(b, v->obj, file, sizeof file);
        *fd = open(file, O_RDWR | O_CLOEXEC);
        *fd_obj = v->obj;
    }
    uint64_t start = (uint64_t)v->idx << b->shift;
    uint64_t len = blocks_block_len(b, v->size, (uint64_t)v->idx);
    struct blocks_held held = { 0 };
    blocks_held_add(b, &held, v->size, false, (uint64_t)v->idx, v->has_sum, v->partial, v->parts);
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_BLK_DEL, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, v->obj);
    sqlite3_bind_int64(st, 2, v->idx);
    int rc = cachedb_done(&b->db, st, "evicting a block", e);
    if (rc)
        return rc;
    if (*fd >= 0)
        blocks_punch(*fd, start, len);
    blocks_account(b, -held.blocks, -held.partial, -held.bytes);
    return 0;
}

/* Objects left without blocks are forgotten entirely. */
static void blocks_drop_if_empty(struct blocks *b, int64_t id)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_BLK_ANY, NULL);
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE || !(st = cachedb_stmt(&b->db, Q_OBJ_DELETE, NULL)))
        return;
    sqlite3_bind_int64(st, 1, id);
    if (cachedb_done(&b->db, st, "", NULL) == 0) {
        char file[4096];
        blocks_data_path(b, id, file, sizeof file);
        unlink(file);
    }
}

/* Evict until the cache holds at most `target` bytes, or only pinned and
 * dirty data is left (then b->evict_stuck is set: until an object is
 * released, nothing could be evicted). */
static int blocks_evict_locked(struct blocks *b, uint64_t target, struct sky_err *e)
{
    size_t npinned;
    int64_t *pinned = blocks_pinned_ids(b, &npinned);
    struct blocks_victim *batch = malloc(BLOCKS_EVICT_BATCH * sizeof *batch);
    if (!pinned || !batch) {
        free(pinned);
        free(batch);
        return blocks_oom(e);
    }
    struct blocks_victim cursor = { .obj = INT64_MIN, .idx = INT64_MIN, .last_use = INT64_MIN };
    int fd = -1, rc = 0;
    int64_t fd_obj = -1, last_obj = -1;
    size_t n = 1;
    while (rc == 0 && n > 0 && blocks_bytes(b) > target) {
        rc = blocks_lru_batch(b, &cursor, batch, &n, e);
        if (rc == 0 && n > 0)
            rc = cachedb_begin(&b->db, e);
        for (size_t i = 0; rc == 0 && i < n && blocks_bytes(b) > target; i++) {
            cursor = batch[i];
            if (bsearch(&batch[i].obj, pinned, npinned, sizeof *pinned, blocks_cmp_id))
                continue;
            rc = blocks_evict_one(b, &batch[i], &fd, &fd_obj, e);
            if (rc == 0 && last_obj != batch[i].obj) {
                if (last_obj >= 0)
                    blocks_drop_if_empty(b, last_obj);
                last_obj = batch[i].obj;
            }
        }
        if (n > 0)
            rc = rc ? (cachedb_rollback(&b->db), rc) : cachedb_commit(&b->db, e);
    }
    if (rc == 0 && last_obj >= 0 && cachedb_begin(&b->db, NULL) == 0) {
        blocks_drop_if_empty(b, last_obj);
        cachedb_commit(&b->db, NULL);
    }
    if (fd >= 0)
        close(fd);
    free(pinned);
    free(batch);
    b->evict_stuck = rc == 0 && blocks_bytes(b) > target;
    return rc;
}

static int blocks_evict_to(struct blocks *b, uint64_t target, struct sky_err *e)
{
    pthread_mutex_lock(&b->lock);
    int rc = !b->evict_stuck && blocks_bytes(b) > target ? blocks_evict_locked(b, target, e) : 0;
    pthread_mutex_unlock(&b->lock);
    return rc;
}

int blocks_evict(struct blocks *b, struct sky_err *e)
{
    return blocks_evict_to(b, blocks_target(b, 0, NULL), e);
}

void blocks_set_floor(struct blocks *b, uint64_t min_free, blocks_free_fn probe, void *arg)
{
    b->min_free = min_free;
    b->probe = probe ? probe : blocks_statvfs;
    b->probe_arg = probe ? arg : NULL;
}

bool blocks_past_quota(struct blocks *b, uint64_t need, uint64_t *cap)
{
    uint64_t quota = __atomic_load_n(&b->quota_cap, __ATOMIC_RELAXED);
    if (cap)
        *cap = quota;
    return quota != UINT64_MAX && blocks_bytes(b) + need > quota;
}

void blocks_keep_to(struct blocks *b, uint64_t cap)
{
    __atomic_store_n(&b->quota_cap, cap, __ATOMIC_RELAXED);
}

void blocks_note_quota(struct blocks *b)
{
    /* what it holds and the downloads under way had room; the reserve,
     * released now, is the databases' (a little more is kept free) */
    uint64_t have = blocks_bytes(b) + __atomic_load_n(&b->downloading, __ATOMIC_RELAXED);
    uint64_t margin = RESERVE_BYTES / 2;
    uint64_t cap = have > margin ? have - margin : 0;
    uint64_t was = __atomic_load_n(&b->quota_cap, __ATOMIC_RELAXED);
    while (cap < was &&
           !__atomic_compare_exchange_n(&b->quota_cap, &was, cap, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
    if (cap >= was)
        return;
    reserve_note_quota(cap);        /* its room goes to the databases now */
    LOG_WARN("block cache: the cache folder %s is under a disk quota, now exceeded: the "
             "cache keeps to %llu MiB from now on (it held %llu MiB, downloads included), "
             "evicting what it can; "
             "reads of what is not cached go straight to the cloud; raise the quota or "
             "free space there", b->dir, (unsigned long long)(cap >> 20),
             (unsigned long long)(have >> 20));
}

/* Before writing `need` bytes: keep the free space at min_free or more,
 * and the cache within a disk quota it met, evicting clean data if
 * needed; -ENOSPC when even that is not enough. */
int blocks_make_room(struct blocks *b, uint64_t need, struct sky_err *e)
{
    uint64_t quota;
    if (blocks_past_quota(b, need, &quota)) {
        uint64_t room = quota > need ? quota - need : 0, before = blocks_bytes(b);
        int rc = blocks_evict_to(b, room, e);
        if (blocks_bytes(b) < before)
            reserve_sync_fs();          /* the quota counts what was evicted */
        if (rc != 0 || blocks_past_quota(b, need, NULL))
            return sky_fail(e, ENOSPC, "block cache: the cache folder %s is at its disk "
                            "quota (the cache keeps to %llu MiB), and everything left to "
                            "evict is open or not uploaded yet; raise the quota or free "
                            "space there", b->dir, (unsigned long long)(quota >> 20));
    }
    uint64_t left;
    uint64_t target = blocks_target(b, need, &left), floor = blocks_floor(b);
    for (int round = 0; round < 4 && left < floor; round++) {
        uint64_t before = blocks_bytes(b);
        if (blocks_evict_to(b, target, e) != 0 || blocks_bytes(b) == before)
            break;                      /* nothing more to evict */
        target = blocks_target(b, need, &left);
    }
    if (left >= floor)
        return 0;
    if (floor > b->min_free)
        return sky_fail(e, ENOSPC, "block cache: the file system of %s is full (%llu MiB "
                        "free are kept for the caches' databases); free space there",
                        b->dir, (unsigned long long)((floor - b->min_free) >> 20));
    return sky_fail(e, ENOSPC, "block cache: %llu MiB would be left free in %s, less than "
                    "min_free = %llu MiB, and everything left to evict is open or not "
                    "uploaded yet; free space there or lower min_free in [cache]",
                    (unsigned long long)(left >> 20), b->dir,
                    (unsigned long long)(b->min_free >> 20));
}
