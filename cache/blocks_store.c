/*
 * blocks_store.c - the block store: data files, block state, checksums, writes.
 *
 * Per-block state of a pinned object and its rows in SQLite; reading,
 * hashing (xxh3) and verifying cached blocks and chunks; keeping the bytes
 * a download hands over (struct obj_sink) and marking them present; local
 * writes and size changes (blocks_write, _write_from, _truncate).
 * Private to the block cache: called by blocks.c, blocks_fetch.c,
 * blocks_evict.c and journal.c through blocks_int.h, and by everyone
 * through blocks.h for writes.
 *
 * Partial blocks are never dirty: a write makes its blocks whole first
 * (obj_prepare_edges fetches the missing chunks of blocks it covers in
 * part; a block it covers whole just becomes whole, and its row is
 * rewritten as a dirty one).  So everything below about dirty blocks
 * concerns whole blocks; a partial row of a dirty object (a random read
 * of a part never written) is loaded as partial and verified as usual.
 *
 * Clean objects.  A block is present iff it has a row with a checksum, or
 * partial iff its row has a chunk map.
 * Every block is checked against its checksum the first time it is read
 * after the object is pinned (blocks_get); a mismatch counts as corrupt,
 * punches the block out and fetches it again.  Checked blocks are then
 * trusted until the object is released, which keeps reads cheap (a 4 KiB
 * read does not re-hash a whole 8 MiB block each time).
 *
 * Downloads (struct obj_sink) never hold a block in memory: pieces are
 * pwritten at their offsets and hashed as they come; a block or chunk is
 * marked present only once all of it is there, and whatever a failed
 * download wrote is punched out again.
 */
#include "blocks_int.h"
#include "../lib/clock.h"

/* ---- small helpers ------------------------------------------------------ */

int64_t blocks_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int blocks_oom(struct sky_err *e)
{
    return sky_fail(e, ENOMEM, "block cache: out of memory");
}

uint64_t blocks_count_for(const struct blocks *b, uint64_t size)
{
    return (size + b->bs - 1) >> b->shift;
}

/* Length of block idx of an object of `size` bytes (0 past the end). */
uint64_t blocks_block_len(const struct blocks *b, uint64_t size, uint64_t idx)
{
    uint64_t start = idx << b->shift;
    if (start >= size)
        return 0;
    return size - start < b->bs ? size - start : b->bs;
}

/* Every chunk of block idx (a short last block has fewer). */
uint64_t blocks_chunk_mask(const struct blocks *b, uint64_t size, uint64_t idx)
{
    uint64_t len = blocks_block_len(b, size, idx);
    uint64_t n = (len + (1ull << b->chunk_shift) - 1) >> b->chunk_shift;
    return n >= 64 ? ~0ull : (1ull << n) - 1;
}

/* Bytes held by chunks `mask` of block idx (the object's last chunk may be
 * short). */
uint64_t blocks_chunk_bytes(const struct blocks *b, uint64_t size, uint64_t idx,
                            uint64_t mask)
{
    uint64_t all = blocks_chunk_mask(b, size, idx);
    mask &= all;
    if (!mask)
        return 0;
    uint64_t bytes = (uint64_t)__builtin_popcountll(mask) << b->chunk_shift;
    unsigned last = 63u - (unsigned)__builtin_clzll(all);
    if (mask & (1ull << last))
        bytes -= ((uint64_t)(last + 1) << b->chunk_shift) - blocks_block_len(b, size, idx);
    return bytes;
}

void blocks_account(struct blocks *b, int64_t nblocks, int64_t npartial, int64_t nbytes)
{
    __atomic_add_fetch(&b->blocks_present, (uint64_t)nblocks, __ATOMIC_RELAXED);
    __atomic_add_fetch(&b->blocks_partial, (uint64_t)npartial, __ATOMIC_RELAXED);
    __atomic_add_fetch(&b->bytes_present, (uint64_t)nbytes, __ATOMIC_RELAXED);
}

void blocks_count(uint64_t *counter)
{
    __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

uint64_t blocks_bytes(struct blocks *b)
{
    return __atomic_load_n(&b->bytes_present, __ATOMIC_RELAXED);
}

void blocks_data_path(const struct blocks *b, int64_t id, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%lld", b->data_dir, (long long)id);
}

/* Is `path` strictly below directory `dir`? */
bool blocks_is_below(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

int blocks_pread(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int blocks_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Give a range's disk space back.  A file system without hole punching
 * keeps the bytes; the block is forgotten all the same. */
void blocks_punch(int fd, uint64_t off, uint64_t len)
{
    if (len)
        (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
}

/* The xxh3 of bytes [off, off+len) of fd, read in pieces (no buffer the
 * size of a block): 0 or -errno. */
int blocks_hash_file(int fd, uint64_t off, uint64_t len, uint64_t *sum)
{
    unsigned char buf[BLOCKS_IO_PIECE];
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    if (len > sizeof buf)       /* one large read from the disk, not many small ones */
        posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
    while (len) {
        size_t n = len < sizeof buf ? (size_t)len : sizeof buf;
        int rc = blocks_pread(fd, buf, n, off);
        if (rc)
            return rc;
        XXH3_64bits_update(&st, buf, n);
        off += n;
        len -= n;
    }
    *sum = XXH3_64bits_digest(&st);
    return 0;
}

/* ---- in-memory objects ------------------------------------------------- */

uint64_t obj_block_len(const struct blocks_obj *o, uint64_t idx)
{
    return blocks_block_len(o->b, o->size, idx);
}

uint64_t obj_chunk_mask(const struct blocks_obj *o, uint64_t idx)
{
    return blocks_chunk_mask(o->b, o->size, idx);
}

/* Chunks of block idx that bytes [off, end) touch. */
uint64_t obj_range_mask(const struct blocks_obj *o, uint64_t idx, uint64_t off,
                        uint64_t end)
{
    uint64_t start = idx << o->b->shift, stop = start + obj_block_len(o, idx);
    off = off > start ? off : start;
    end = end < stop ? end : stop;
    if (off >= end)
        return 0;
    unsigned first = (unsigned)((off - start) >> o->b->chunk_shift);
    unsigned last = (unsigned)((end - 1 - start) >> o->b->chunk_shift);
    uint64_t upto = last >= 63 ? ~0ull : (1ull << (last + 1)) - 1;
    return upto & ~((1ull << first) - 1);
}

/* Add (sign 1) or remove (-1) what block idx holds now to the totals. */
static void obj_account_block(struct blocks_obj *o, uint64_t idx, int sign)
{
    if (o->st[idx] & B_PRESENT)
        blocks_account(o->b, sign, 0, sign * (int64_t)obj_block_len(o, idx));
    else if (o->parts[idx])
        blocks_account(o->b, sign, sign,
                       sign * (int64_t)blocks_chunk_bytes(o->b, o->size, idx, o->parts[idx]));
}

void obj_account_all(struct blocks_obj *o, int sign)
{
    for (uint64_t i = 0; i < o->nblocks; i++)
        obj_account_block(o, i, sign);
}

/* Block idx no longer holds chunks (memory only; accounting is the
 * caller's). */
void obj_clear_partial(struct blocks_obj *o, uint64_t idx)
{
    o->parts[idx] = o->parts_ok[idx] = 0;
    free(o->chunk_sum[idx]);
    o->chunk_sum[idx] = NULL;
}

void obj_clear_all_partial(struct blocks_obj *o)
{
    for (uint64_t i = 0; i < o->cap; i++)
        obj_clear_partial(o, i);
}

/* Room for n blocks of state; new entries are zero (absent). */
int obj_reserve(struct blocks_obj *o, uint64_t n)
{
    if (n <= o->cap)
        return 0;
    uint64_t cap = o->cap ? o->cap : 16;
    while (cap < n)
        cap *= 2;
    uint8_t *st = realloc(o->st, cap);
    if (st)
        o->st = st;
    uint64_t *sum = realloc(o->sum, cap * sizeof *sum);
    if (sum)
        o->sum = sum;
    int64_t *used = realloc(o->used, cap * sizeof *used);
    if (used)
        o->used = used;
    uint64_t *parts = realloc(o->parts, cap * sizeof *parts);
    if (parts)
        o->parts = parts;
    uint64_t *parts_ok = realloc(o->parts_ok, cap * sizeof *parts_ok);
    if (parts_ok)
        o->parts_ok = parts_ok;
    uint64_t **chunk_sum = realloc(o->chunk_sum, cap * sizeof *chunk_sum);
    if (chunk_sum)
        o->chunk_sum = chunk_sum;
    if (!st || !sum || !used || !parts || !parts_ok || !chunk_sum)
        return -ENOMEM;
    size_t more = cap - o->cap;
    memset(o->st + o->cap, 0, more);
    memset(o->sum + o->cap, 0, more * sizeof *sum);
    memset(o->used + o->cap, 0, more * sizeof *used);
    memset(o->parts + o->cap, 0, more * sizeof *parts);
    memset(o->parts_ok + o->cap, 0, more * sizeof *parts_ok);
    memset(o->chunk_sum + o->cap, 0, more * sizeof *chunk_sum);
    o->cap = cap;
    return 0;
}

void obj_free(struct blocks_obj *o)
{
    if (o->fd >= 0)
        close(o->fd);
    if (o->upload_fd >= 0)
        close(o->upload_fd);
    for (struct blocks_name *n = o->retired, *next; n; n = next) {
        next = n->next;
        free(n->path);
        free(n);
    }
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->cond);
    free(o->cloud);
    free(o->landed);
    free(o->path);
    free(o->etag);
    if (o->chunk_sum)
        obj_clear_all_partial(o);
    free(o->st);
    free(o->sum);
    free(o->used);
    free(o->parts);
    free(o->parts_ok);
    free(o->chunk_sum);
    free(o);
}

struct blocks_obj *obj_new(struct blocks *b, int64_t id, const char *cloud,
                           const char *path, const char *etag, uint64_t size)
{
    struct blocks_obj *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->b = b;
    o->id = id;
    o->fd = o->upload_fd = -1;
    o->size = size;
    o->nblocks = blocks_count_for(b, size);
    pthread_mutex_init(&o->lock, NULL);
    clock_cond_init(&o->cond);    /* blocks_fetch.c waits with clock_deadline_ms */
    o->cloud = strdup(cloud);
    o->path = strdup(path);
    o->etag = strdup(etag);
    if (!o->cloud || !o->path || !o->etag || obj_reserve(o, o->nblocks)) {
        obj_free(o);
        return NULL;
    }
    return o;
}

void obj_set_size(struct blocks_obj *o, uint64_t size)
{
    __atomic_store_n(&o->size, size, __ATOMIC_RELEASE);
}

void obj_set_dirty(struct blocks_obj *o, bool dirty)
{
    __atomic_store_n(&o->dirty, dirty, __ATOMIC_RELEASE);
}

/* ---- database rows of one object (takes b->lock) ----------------------- */

/* Bind block idx's row: its checksum (NULL when dirty), or for a partial
 * block its chunk map and the chunks' checksums. */
void obj_bind_row(struct blocks_obj *o, sqlite3_stmt *st, uint64_t idx, int64_t used)
{
    sqlite3_bind_int64(st, 1, o->id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
    if (o->st[idx] & B_PRESENT) {
        if (o->st[idx] & B_DIRTY)
            sqlite3_bind_null(st, 3);
        else
            sqlite3_bind_int64(st, 3, (sqlite3_int64)o->sum[idx]);
    } else {
        sqlite3_bind_null(st, 3);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)o->parts[idx]);
        sqlite3_bind_blob(st, 6, o->chunk_sum[idx], (int)(o->b->chunks * sizeof(uint64_t)),
                          SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 4, used);
}

/* Record rows for the listed blocks (present, or partial). */
int obj_put_rows(struct blocks_obj *o, const uint64_t *idx, size_t n, struct sky_err *e)
{
    struct blocks *b = o->b;
    int rc = 0;
    pthread_mutex_lock(&b->lock);
    if (!o->gone && n) {
        rc = n > 1 ? cachedb_begin(&b->db, e) : 0;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            sqlite3_stmt *st = cachedb_stmt(&b->db, Q_BLK_PUT, e);
            if (!st) {
                rc = -e->code;
                break;
            }
            obj_bind_row(o, st, idx[i], o->used[idx[i]]);
            rc = cachedb_done(&b->db, st, "recording a block", e);
        }
        if (n > 1)
            rc = rc ? (cachedb_rollback(&b->db), rc) : cachedb_commit(&b->db, e);
    }
    pthread_mutex_unlock(&b->lock);
    for (size_t i = 0; rc == 0 && i < n; i++)
        o->st[idx[i]] |= B_ROW;
    return rc;
}

/* Run one statement about this object, bound with (id, v2, v3). */
int obj_update(struct blocks_obj *o, int q, int64_t v2, int64_t v3, const char *doing,
               struct sky_err *e)
{
    struct blocks *b = o->b;
    int rc = 0;
    pthread_mutex_lock(&b->lock);
    if (!o->gone) {
        sqlite3_stmt *st = cachedb_stmt(&b->db, q, e);
        if (!st) {
            rc = -e->code;
        } else {
            sqlite3_bind_int64(st, 1, o->id);
            sqlite3_bind_int64(st, 2, v2);
            sqlite3_bind_int64(st, 3, v3);
            rc = cachedb_done(&b->db, st, doing, e);
        }
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}

int obj_set_etag_row(struct blocks_obj *o, const char *etag, struct sky_err *e)
{
    struct blocks *b = o->b;
    int rc = 0;
    pthread_mutex_lock(&b->lock);
    if (!o->gone) {
        sqlite3_stmt *st = cachedb_stmt(&b->db, Q_OBJ_ETAG, e);
        if (!st) {
            rc = -e->code;
        } else {
            sqlite3_bind_int64(st, 1, o->id);
            cachedb_bind_text(st, 2, etag);
            rc = cachedb_done(&b->db, st, "recording an etag", e);
        }
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}

/* A dirty object recorded as complete is about to lose a block: give every
 * present block a row first, then record complete = 0. */
static int obj_uncomplete(struct blocks_obj *o, struct sky_err *e)
{
    uint64_t *idx = malloc((o->nblocks ? o->nblocks : 1) * sizeof *idx);
    if (!idx)
        return blocks_oom(e);
    size_t n = 0;
    for (uint64_t i = 0; i < o->nblocks; i++)
        if ((o->st[i] & (B_PRESENT | B_ROW)) == B_PRESENT)
            idx[n++] = i;
    int rc = obj_put_rows(o, idx, n, e);
    free(idx);
    if (rc == 0)
        rc = obj_update(o, Q_OBJ_COMPLETE, 0, 0, "recording the journal", e);
    if (rc == 0)
        o->complete = false;
    return rc;
}

/* ---- block I/O (o->lock held) ------------------------------------------ */

int obj_io_fail(struct blocks_obj *o, int rc, const char *doing, struct sky_err *e)
{
    if (rc == -EDQUOT) {
        /* as a full disk: reads go straight to the cloud, writes fail */
        blocks_note_quota(o->b);
        return sky_fail(e, ENOSPC, "block cache: %s cached data of '%s': the cache folder's "
                        "disk quota is exceeded (%s); free space there or raise the quota",
                        doing, o->path, o->b->dir);
    }
    return sky_fail(e, -rc, "block cache: %s cached data of '%s': %s", doing, o->path,
                    strerror(-rc));
}

/* Forget block idx, whole or partial: drop its row and punch its bytes
 * out. */
int obj_drop_block(struct blocks_obj *o, uint64_t idx, struct sky_err *e)
{
    int rc = 0;
    if (o->dirty && o->complete)
        rc = obj_uncomplete(o, e);
    if (rc == 0 && (o->st[idx] & B_ROW)) {
        struct blocks *b = o->b;
        pthread_mutex_lock(&b->lock);
        sqlite3_stmt *st = o->gone ? NULL : cachedb_stmt(&b->db, Q_BLK_DEL, e);
        if (!o->gone && !st) {
            rc = -e->code;
        } else if (st) {
            sqlite3_bind_int64(st, 1, o->id);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
            rc = cachedb_done(&b->db, st, "dropping a block", e);
        }
        pthread_mutex_unlock(&b->lock);
    }
    if (rc)
        return rc;
    blocks_punch(o->fd, idx << o->b->shift, obj_block_len(o, idx));
    obj_account_block(o, idx, -1);
    obj_clear_partial(o, idx);
    o->st[idx] = 0;
    return 0;
}

/* Where chunk c of block idx is in the object. */
void obj_chunk_range(const struct blocks_obj *o, uint64_t idx, unsigned c, uint64_t *off,
                     uint64_t *len)
{
    uint64_t start = (idx << o->b->shift) + ((uint64_t)c << o->b->chunk_shift);
    uint64_t stop = (idx << o->b->shift) + obj_block_len(o, idx);
    uint64_t size = 1ull << o->b->chunk_shift;
    *off = start;
    *len = stop - start < size ? stop - start : size;
}

/* Forget chunks `mask` of partial block idx (found corrupt). */
static int obj_drop_chunks(struct blocks_obj *o, uint64_t idx, uint64_t mask, struct sky_err *e)
{
    if (!(o->parts[idx] & ~mask))
        return obj_drop_block(o, idx, e);
    obj_account_block(o, idx, -1);
    for (unsigned c = 0; c < o->b->chunks; c++) {
        uint64_t off, len;
        obj_chunk_range(o, idx, c, &off, &len);
        if (mask & (1ull << c))
            blocks_punch(o->fd, off, len);
    }
    o->parts[idx] &= ~mask;
    o->parts_ok[idx] &= ~mask;
    obj_account_block(o, idx, +1);
    return obj_put_rows(o, &idx, 1, e);
}

/* 0 if block idx matches its checksum, 1 if not, or -errno. */
static int obj_verify_block(struct blocks_obj *o, uint64_t idx, struct sky_err *e)
{
    uint64_t sum;
    int rc = blocks_hash_file(o->fd, idx << o->b->shift, obj_block_len(o, idx), &sum);
    if (rc)
        return obj_io_fail(o, rc, "reading", e);
    if (sum != o->sum[idx])
        return 1;
    o->st[idx] |= B_VERIFIED;
    return 0;
}

/* Check the present chunks of `mask` of partial block idx against their
 * checksums (once per pin); corrupt ones are counted and dropped. */
int obj_verify_chunks(struct blocks_obj *o, uint64_t idx, uint64_t mask, struct sky_err *e)
{
    mask &= o->parts[idx] & ~o->parts_ok[idx];
    if (!mask)
        return 0;
    uint64_t bad = 0;
    int rc = 0;
    for (unsigned c = 0; rc == 0 && c < o->b->chunks; c++) {
        if (!(mask & (1ull << c)))
            continue;
        uint64_t off, len, sum;
        obj_chunk_range(o, idx, c, &off, &len);
        rc = blocks_hash_file(o->fd, off, len, &sum);
        if (rc == 0 && sum == o->chunk_sum[idx][c])
            o->parts_ok[idx] |= 1ull << c;
        else if (rc == 0)
            bad |= 1ull << c;
    }
    if (rc)
        return obj_io_fail(o, rc, "reading", e);
    if (!bad)
        return 0;
    __atomic_add_fetch(&o->b->corrupt, (uint64_t)__builtin_popcountll(bad), __ATOMIC_RELAXED);
    return obj_drop_chunks(o, idx, bad, e);
}

/* Verify what block idx holds of the chunks `want` (whole blocks as a
 * whole), once per pin; corrupt data is counted and dropped. */
int obj_check_cached(struct blocks_obj *o, uint64_t idx, uint64_t want, struct sky_err *e)
{
    if (!(o->st[idx] & B_PRESENT))
        return o->parts[idx] ? obj_verify_chunks(o, idx, want, e) : 0;
    if (o->st[idx] & (B_DIRTY | B_VERIFIED))
        return 0;
    int rc = obj_verify_block(o, idx, e);
    if (rc <= 0)
        return rc;
    blocks_count(&o->b->corrupt);
    return obj_drop_block(o, idx, e);
}

static int obj_sink_fail(struct obj_sink *s, int err)
{
    s->err = err;
    return -err;
}

/* The sink (blocks_sink_fn): called without o->lock, while the range is
 * B_FETCHING (no writer touches it, and readers only the units in s->skip:
 * present and verified chunks, which are hashed here but not written). */
static int obj_sink_take(void *arg, uint64_t pos, const void *data, size_t n)
{
    struct obj_sink *s = arg;
    if (pos == 0 && s->got) {               /* the fetch started over */
        s->got = 0;
        XXH3_64bits_reset(&s->hash);
    }
    if (pos != s->got || n > s->len - s->got)
        return obj_sink_fail(s, EIO);
    const unsigned char *p = data;
    while (n) {
        uint64_t u = s->got / s->unit, room = s->unit - s->got % s->unit;
        size_t take = n < room ? n : (size_t)room;
        if (u >= s->kept && !(u < 64 && (s->skip >> u) & 1)) {
            s->wrote = true;
            int rc = blocks_pwrite(s->o->fd, p, take, s->off + s->got);
            if (rc)
                return obj_sink_fail(s, -rc);
        }
        XXH3_64bits_update(&s->hash, p, take);
        p += take;
        n -= take;
        s->got += take;
        if (s->got % s->unit == 0 || s->got == s->len) {
            uint64_t sum = XXH3_64bits_digest(&s->hash);
            XXH3_64bits_reset(&s->hash);
            if (u < s->kept && sum != s->sums[u]) {
                s->kept_differs = true;         /* kept, and now other bytes */
                return obj_sink_fail(s, EIO);
            }
            if (u < s->kept)
                continue;
            s->sums[u] = sum;
            if (s->unit_done) {
                int rc = s->unit_done(s, (unsigned)u);
                if (rc)
                    return obj_sink_fail(s, -rc);
                s->kept = (unsigned)u + 1;
            }
        }
    }
    return 0;
}

/* Allocate [off, off+len) of the cache file: 0, or an errno (EDQUOT,
 * ENOSPC; 0 too where the file system cannot, which glibc's
 * posix_fallocate would emulate by writing, slowly). */
static int obj_make_room_for(struct blocks_obj *o, uint64_t off, uint64_t len)
{
    if (fallocate(o->fd, 0, (off_t)off, (off_t)len) == 0)
        return 0;
    return errno == EDQUOT || errno == ENOSPC ? errno : 0;
}

/* The room for bytes [off, off+len) of the cache file, before they are
 * written: all of it or none, so that a disk quota met here leaves what
 * room there is (a write would use it up, and on btrfs SQLite's shared
 * memory, a mapped file, then faults).  btrfs counts room reserved and
 * freed against a quota only at its commits: on EDQUOT the file system is
 * synced and asked once more.  0, or -ENOSPC (obj_io_fail). */
static int obj_take_room(struct blocks_obj *o, uint64_t off, uint64_t len, const char *doing,
                         struct sky_err *e)
{
    int rc = obj_make_room_for(o, off, len);
    if (rc == EDQUOT) {
        reserve_sync_fs();
        rc = obj_make_room_for(o, off, len);
    }
    return rc ? obj_io_fail(o, -rc, doing, e) : 0;
}

/* Fetch [off, off+len) from the cloud straight into the cache file, with a
 * checksum per `unit` bytes in s->sums (no lock is needed: the object's
 * size cannot change while the fetch is counted in o->inflight or the
 * lock is held).  On failure the bytes may be in the file, unrecorded. */
int obj_download(struct blocks_obj *o, uint64_t off, uint64_t len, uint64_t unit,
                 blocks_fetch_fn fetch, void *arg, struct obj_sink *s,
                 struct sky_err *e)
{
    s->o = o;
    s->off = off;
    s->len = len;
    s->unit = unit ? unit : 1;
    XXH3_64bits_reset(&s->hash);
    if (!fetch)
        return sky_fail(e, EIO, "block cache: '%s': bytes at %llu are not cached", o->path,
                        (unsigned long long)off);
    if (len == 0)
        return 0;
    if (reserve_held_back())            /* the room left is the databases' (reserve.h) */
        return sky_fail(e, ENOSPC, "block cache: the file system of %s is full: no room to "
                        "cache \"%s\"; free space there", o->b->dir, o->path);
    uint64_t quota;
    if (blocks_past_quota(o->b, len, &quota))
        /* under a disk quota that ran out: what is open stays, and the
         * rest is read straight from the cloud (eviction after reads
         * keeps the closed files' blocks within it) */
        return sky_fail(e, ENOSPC, "block cache: the cache folder %s is at its disk quota "
                        "(the cache keeps to %llu MiB): no room to cache \"%s\"", o->b->dir,
                        (unsigned long long)(quota >> 20), o->path);
    int rc = obj_take_room(o, off, len, "making room for", e);
    if (rc)
        return rc;
    __atomic_add_fetch(&o->b->downloading, len, __ATOMIC_RELAXED);
    rc = fetch(arg, off, (size_t)len, obj_sink_take, s, e);
    __atomic_sub_fetch(&o->b->downloading, len, __ATOMIC_RELAXED);
    if (rc && s->err)
        return obj_io_fail(o, -s->err, "writing", e);
    if (rc == 0 && s->got != len)
        rc = sky_fail(e, EIO, "block cache: '%s': the cloud returned %llu bytes at offset %llu, "
                      "expected %llu", o->path, (unsigned long long)s->got,
                      (unsigned long long)off, (unsigned long long)len);
    return rc < 0 ? rc : rc ? -EIO : 0;
}

void obj_forget_stored(struct blocks_obj *o, uint64_t idx)
{
    blocks_punch(o->fd, idx << o->b->shift, obj_block_len(o, idx));
    obj_account_block(o, idx, -1);
    obj_clear_partial(o, idx);
    o->st[idx] &= B_FETCHING;
}

/* Block idx, whatever it held, is now whole in the cache file with
 * checksum `sum` (memory and totals; `keep`: state bits it keeps). */
static void obj_make_whole(struct blocks_obj *o, uint64_t idx, uint64_t sum, uint8_t keep)
{
    obj_account_block(o, idx, -1);
    obj_clear_partial(o, idx);
    o->st[idx] = B_PRESENT | B_VERIFIED | (o->st[idx] & keep);
    o->sum[idx] = sum;
    obj_account_block(o, idx, +1);
}

/* A downloaded block, now in the cache file with checksum `sum`: record
 * it (o->lock). */
int obj_store_block(struct blocks_obj *o, uint64_t idx, uint64_t sum, struct sky_err *e)
{
    obj_make_whole(o, idx, sum, B_FETCHING);
    o->used[idx] = blocks_now();
    int rc = obj_put_rows(o, &idx, 1, e);
    if (rc)
        obj_forget_stored(o, idx);
    return rc;
}

/* Every chunk of partial block idx is present and verified: it becomes a
 * whole block with one checksum. */
static int obj_promote(struct blocks_obj *o, uint64_t idx, struct sky_err *e)
{
    uint64_t sum;
    int rc = blocks_hash_file(o->fd, idx << o->b->shift, obj_block_len(o, idx), &sum);
    if (rc)
        return obj_io_fail(o, rc, "reading", e);
    obj_make_whole(o, idx, sum, B_FETCHING | B_USED);
    return obj_put_rows(o, &idx, 1, e);
}

/* Downloaded chunks first..last of block idx, now in the cache file with
 * checksums sums[0..last-first]: record them.  A block whose chunks are
 * then all present becomes whole. */
int obj_store_chunks(struct blocks_obj *o, uint64_t idx, unsigned first, unsigned last,
                     const uint64_t *sums, struct sky_err *e)
{
    int rc;
    if (!o->chunk_sum[idx] && !(o->chunk_sum[idx] = calloc(o->b->chunks, sizeof(uint64_t))))
        return blocks_oom(e);           /* the bytes are there, unrecorded: harmless */
    obj_account_block(o, idx, -1);
    for (unsigned c = first; c <= last; c++) {
        o->chunk_sum[idx][c] = sums[c - first];
        o->parts[idx] |= 1ull << c;
        o->parts_ok[idx] |= 1ull << c;
    }
    o->used[idx] = blocks_now();
    obj_account_block(o, idx, +1);
    uint64_t all = obj_chunk_mask(o, idx);
    if (o->parts[idx] == all && o->parts_ok[idx] == all)
        rc = obj_promote(o, idx, e);
    else
        rc = obj_put_rows(o, &idx, 1, e);
    if (rc)
        obj_forget_stored(o, idx);
    return rc;
}

/* ---- size changes and the journal (o->lock held) ----------------------- */

/* Set the size, keeping the accounting right.  Blocks past the new end are
 * forgotten; new blocks (growth) are present, dirty and zero. */
static int obj_resize(struct blocks_obj *o, uint64_t size)
{
    struct blocks *b = o->b;
    uint64_t oldn = o->nblocks, newn = blocks_count_for(b, size);
    uint64_t first = (size < o->size ? size : o->size) >> b->shift;
    if (obj_reserve(o, newn))
        return -ENOMEM;
    for (uint64_t i = first; i < oldn; i++)
        obj_account_block(o, i, -1);
    for (uint64_t i = newn; i < oldn; i++) {
        o->st[i] = 0;
        obj_clear_partial(o, i);
    }
    int64_t now = blocks_now();
    for (uint64_t i = oldn; i < newn; i++) {
        o->st[i] = B_PRESENT | B_DIRTY | B_USED;
        o->used[i] = now;
    }
    o->nblocks = newn;
    obj_set_size(o, size);
    for (uint64_t i = first; i < newn; i++)
        obj_account_block(o, i, +1);
    return 0;
}

/* The partial last block changes length: it must be valid, then dirty. */
static int obj_touch_tail(struct blocks_obj *o, uint64_t at, blocks_fetch_fn fetch, void *arg,
                          struct sky_err *e)
{
    uint64_t idx = at >> o->b->shift;
    if (!(at & (o->b->bs - 1)) || idx >= o->nblocks)
        return 0;
    int rc = obj_ensure_block(o, idx, ~0ull, fetch, arg, false, false, e);
    if (rc == 0)
        o->st[idx] = (o->st[idx] | B_DIRTY) & (uint8_t)~B_VERIFIED;
    return rc;
}

static int obj_grow(struct blocks_obj *o, uint64_t size, blocks_fetch_fn fetch, void *arg,
                    struct sky_err *e)
{
    int rc = obj_touch_tail(o, o->size, fetch, arg, e);
    if (rc)
        return rc;
    if (ftruncate(o->fd, (off_t)size) != 0)
        return obj_io_fail(o, -errno, "growing", e);
    uint64_t oldn = o->nblocks;
    if (obj_resize(o, size))
        return blocks_oom(e);
    return obj_record_new_blocks(o, oldn, o->nblocks, e);
}

static int obj_shrink(struct blocks_obj *o, uint64_t size, blocks_fetch_fn fetch, void *arg,
                      struct sky_err *e)
{
    uint64_t idx = size >> o->b->shift;
    int rc = 0;
    if ((size & (o->b->bs - 1)) && (o->st[idx] & B_PRESENT))
        rc = obj_touch_tail(o, size, fetch, arg, e);
    else if ((size & (o->b->bs - 1)) && o->parts[idx])
        rc = obj_drop_block(o, idx, e);     /* its last chunk would change: fetch it again */
    if (rc)
        return rc;
    if (ftruncate(o->fd, (off_t)size) != 0)
        return obj_io_fail(o, -errno, "shrinking", e);
    return obj_resize(o, size) ? blocks_oom(e) : 0;
}

/* After bytes [off, end) were written: blocks present, dirty, recorded. */
static int obj_mark_written(struct blocks_obj *o, uint64_t off, uint64_t end, struct sky_err *e)
{
    uint64_t first = off >> o->b->shift, last = (end - 1) >> o->b->shift;
    int64_t now = blocks_now();
    for (uint64_t i = first; i <= last; i++) {
        if (!(o->st[i] & B_PRESENT)) {
            /* a partial block overwritten whole: its row must be rewritten */
            obj_account_block(o, i, -1);
            if (o->parts[i])
                o->st[i] &= (uint8_t)~B_ROW;
            obj_clear_partial(o, i);
            o->st[i] |= B_PRESENT;
            obj_account_block(o, i, +1);
        }
        o->st[i] = (o->st[i] | B_DIRTY | B_USED) & (uint8_t)~B_VERIFIED;
        o->used[i] = now;
    }
    return obj_record_new_blocks(o, first, last + 1, e);
}

/* Before writing [off, end): blocks only partly overwritten must be valid. */
static int obj_prepare_edges(struct blocks_obj *o, uint64_t off, uint64_t end,
                             blocks_fetch_fn fetch, void *arg, struct sky_err *e)
{
    uint64_t edges[2] = { off >> o->b->shift, (end - 1) >> o->b->shift };
    for (int k = 0; k < 2; k++) {
        uint64_t idx = edges[k];
        if (k == 1 && idx == edges[0])
            break;
        uint64_t start = idx << o->b->shift, stop = start + obj_block_len(o, idx);
        if (off <= start && end >= stop)
            continue;
        int rc = obj_ensure_block(o, idx, ~0ull, fetch, arg, false, false, e);
        if (rc)
            return rc;
    }
    return 0;
}

/* The first change of an object that held nothing (a write, a truncate)
 * made room for itself without fetching a byte of the object's version
 * (a truncate into a block never read, a write of whole blocks), so the
 * cloud was not asked whether it still holds that version.  When bytes of
 * it stay needed (blocks below `nold` not wholly overwritten by
 * [off, end)), one chunk of one of them is fetched now: a version the
 * cloud no longer holds is found before a byte is changed (-ESTALE, which
 * the caller undoes) and not at the upload, when this machine's version
 * could no longer be made whole.  Any other failure of that fetch is left
 * to the upload, as before (offline, a change needs no fetch).  o->lock
 * held. */
static int obj_check_base(struct blocks_obj *o, uint64_t nold, uint64_t off, uint64_t end,
                          blocks_fetch_fn fetch, void *arg, struct sky_err *e)
{
    uint64_t n = nold < o->nblocks ? nold : o->nblocks, pick = UINT64_MAX;
    for (uint64_t i = 0; i < n; i++) {
        if ((o->st[i] & B_PRESENT) || (o->parts && o->parts[i]))
            return 0;                   /* fetched: the version was checked */
        uint64_t start = i << o->b->shift, stop = start + obj_block_len(o, i);
        if (pick == UINT64_MAX && !(off <= start && end >= stop))
            pick = i;
    }
    if (pick == UINT64_MAX)
        return 0;
    struct sky_err soft = { 0 };
    int rc = obj_ensure_block(o, pick, 1, fetch, arg, false, false, &soft);
    if (rc != -ESTALE)
        return 0;
    if (e)
        *e = soft;
    return rc;
}

/* ---- public: reading and writing ----------------------------------------- */

/* A write or truncate of an object that held nothing found, fetching the
 * bytes around it, that the cloud no longer holds the version it is based
 * on (-ESTALE), before it changed a byte: the object is made as it was,
 * clean and empty, so that the caller may move it to the cloud's newer
 * version (blocks_take_version) and try again.  o->lock held. */
static void obj_undo_untouched(struct blocks_obj *o, uint64_t size)
{
    struct sky_err ignored = { 0 };
    obj_quiesce(o);
    if (obj_reset(o, o->etag, size, &ignored) == 0)
        obj_set_dirty(o, false);
}

/* What a write or truncate knew before it made room for itself: whether
 * the object held nothing of its version (untouched), its size and block
 * count then. */
struct first_change {
    bool untouched;
    uint64_t size, nold;
};

static struct first_change obj_first_change(const struct blocks_obj *o)
{
    return (struct first_change){ !obj_holds_any(o), o->size, o->nblocks };
}

/* After the change made room (rc) and before it copies a byte: for an
 * untouched object, the cloud's version checked (obj_check_base, [off,
 * end) overwritten), and an -ESTALE undone (obj_undo_untouched). */
static int obj_first_change_checked(struct blocks_obj *o, const struct first_change *fc, int rc,
                                    uint64_t off, uint64_t end, blocks_fetch_fn fetch,
                                    void *arg, struct sky_err *e)
{
    if (!fc->untouched)
        return rc;
    if (rc == 0)
        rc = obj_check_base(o, fc->nold, off, end, fetch, arg, e);
    if (rc == -ESTALE)                  /* no byte of the change is made yet */
        obj_undo_untouched(o, fc->size);
    return rc;
}

int blocks_write_from(struct blocks_obj *o, uint64_t off, size_t len, blocks_copy_fn copy,
                      void *copy_arg, blocks_fetch_fn fetch, void *arg, struct sky_err *e)
{
    if (len == 0)
        return 0;
    if (off + len < off || off + len > (uint64_t)INT64_MAX)
        return sky_fail(e, EFBIG, "block cache: write past the largest file size");
    uint64_t end = off + len;
    int rc = blocks_make_room(o->b, len, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&o->lock);
    obj_quiesce(o);
    struct first_change fc = obj_first_change(o);
    rc = obj_mark_dirty(o, e);
    if (rc == 0 && end > o->size)
        rc = obj_grow(o, end, fetch, arg, e);
    if (rc == 0)
        rc = obj_prepare_edges(o, off, end, fetch, arg, e);
    rc = obj_first_change_checked(o, &fc, rc, off, end, fetch, arg, e);
    if (rc == 0)
        rc = obj_take_room(o, off, len, "making room for", e);
    if (rc == 0 && (rc = copy(copy_arg, o->fd, off, len)) != 0)
        rc = obj_io_fail(o, rc, "writing", e);
    if (rc == 0)
        rc = obj_mark_written(o, off, end, e);
    o->write_gen++;
    pthread_mutex_unlock(&o->lock);
    return rc;
}

/* blocks_copy_fn for a buffer in memory. */
static int blocks_copy_mem(void *arg, int fd, uint64_t at, size_t len)
{
    return blocks_pwrite(fd, arg, len, at);
}

int blocks_write(struct blocks_obj *o, uint64_t off, const void *buf, size_t len,
                 blocks_fetch_fn fetch, void *arg, struct sky_err *e)
{
    return blocks_write_from(o, off, len, blocks_copy_mem, (void *)buf, fetch, arg, e);
}

int blocks_truncate(struct blocks_obj *o, uint64_t size, blocks_fetch_fn fetch, void *arg,
                    struct sky_err *e)
{
    if (size > (uint64_t)INT64_MAX)
        return sky_fail(e, EFBIG, "block cache: size past the largest file size");
    pthread_mutex_lock(&o->lock);
    obj_quiesce(o);
    struct first_change fc = obj_first_change(o);
    int rc = obj_mark_dirty(o, e);
    if (rc == 0 && size > o->size)
        rc = obj_grow(o, size, fetch, arg, e);
    else if (rc == 0 && size < o->size)
        rc = obj_shrink(o, size, fetch, arg, e);
    rc = obj_first_change_checked(o, &fc, rc, 0, 0, fetch, arg, e);
    o->write_gen++;
    pthread_mutex_unlock(&o->lock);
    return rc;
}
