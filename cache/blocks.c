/*
 * blocks.c - the block cache: one sparse file per object, SQLite beside it.
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
 *
 * Memory.  Only pinned objects (held by blocks_get) live in memory, in a
 * hash table keyed by (cloud, path), each with per-block state, checksum
 * and last use.  Last-use times are written to SQLite when the object is
 * released, not on every read.  Eviction works on the database alone and
 * skips pinned and dirty objects, so it never needs an object's lock.
 *
 * Locks.  b->lock guards the database, the table and refcounts; each
 * object's lock guards its state and file.  Readers download without the
 * object's lock: the block is B_FETCHING (others wait on o->cond, so a
 * block is downloaded once; a download of some chunks makes readers of
 * other chunks of the block wait too) and o->inflight counts them; a
 * writer (write, truncate, reset, commit) first clears queued readahead
 * and waits for o->inflight to drop to 0 (obj_quiesce), so a download
 * never lands on changed content, and bumps o->change_gen so a reader that
 * waited starts over.  Writers keep the lock across their own fetches.
 * blocks_read_to hands bytes out without the lock too, counted in
 * o->inflight the same way, unless a writer is already waiting.
 * Order: an object's lock, then b->lock or the pool's lock; b->lock is
 * never held during a fetch.
 *
 * Limits.  blocks_target turns max_size and min_free (the free space the
 * probe measures, called with no lock held) into the bytes the cache may
 * hold now; blocks_evict_locked evicts down to it.  When only pinned or
 * dirty data is left, b->evict_stuck skips further passes until the next
 * last release (only then can anything become evictable), so readers of
 * a large open file do not rescan the LRU index on every fetch.
 *
 * Readahead.  struct blocks_pool is a FIFO of jobs (object pinned, a run
 * of block indexes, a cloned fetch arg) served by up to BLOCKS_FETCHERS
 * threads started on demand.  A queued block is B_QUEUED; a reader that
 * needs it first takes it over (clears the bit; the job then skips it and
 * fetches only the first run of blocks still queued).  A run downloads in
 * one ranged read (obj_fetch_run): the sink checksums it block by block
 * and keeps each block as it completes (obj_run_block_done takes o->lock
 * for that; the download itself runs without it).  Present blocks a
 * sequential reader is about to verify are asked from the disk ahead and
 * checked by the same threads (obj_warm_ahead, B_WARMING, pool_verify: a
 * job without a fetch function), so that the reader only copies them out.
 *
 * Downloads (struct obj_sink) never hold a block in memory: pieces are
 * pwritten at their offsets and hashed as they come; a block or chunk is
 * marked present only once all of it is there, and whatever a failed
 * download wrote is punched out again.
 */
#include "blocks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY     /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "cachedb.h"

#define BLOCKS_SCHEMA_VERSION 2
#define BLOCKS_MIN_BLOCK (4u << 10)
#define BLOCKS_MAX_BLOCK (8u << 20)
#define BLOCKS_EVICT_BATCH 256
#define BLOCKS_FETCHERS 8           /* background fetcher threads, in all */
#define BLOCKS_AHEAD_PER_OBJ 4      /* background fetches per object */
#define BLOCKS_QUEUE_MAX 64         /* queued background fetches, in all */
#define BLOCKS_RUN_BYTES (16u << 20) /* most bytes one background fetch asks for */
#define BLOCKS_WINDOW_MAX 16        /* readahead window, in blocks */
#define BLOCKS_CHUNK_MIN (64u << 10) /* smallest unit of a partial block */
#define BLOCKS_CHUNKS 64            /* most chunks per block: one 64-bit map */
#define BLOCKS_IO_PIECE (64u << 10) /* buffer for hashing cached bytes */

/* Per-block state bits. */
#define B_PRESENT  0x01u   /* the bytes are in the data file */
#define B_DIRTY    0x02u   /* written locally: no checksum, trusted */
#define B_VERIFIED 0x04u   /* checksum checked since pinned */
#define B_ROW      0x08u   /* a row exists in `blocks` */
#define B_USED     0x10u   /* last use not yet written to SQLite */
#define B_FETCHING 0x20u   /* being downloaded without the object lock */
#define B_QUEUED   0x40u   /* waiting for a background fetcher (readahead) */
#define B_WARMING  0x80u   /* cached, not yet verified, asked from the disk ahead
                              (and queued for pool_verify, for background readers) */

struct blocks_name {                /* a path the object had before a rename */
    struct blocks_name *next;
    char *path;
};

struct blocks_obj {
    struct blocks *b;
    struct blocks_obj *next;        /* hash chain; b->lock */
    int64_t id;
    char *cloud;
    char *path;                     /* atomic pointer; old ones kept in `retired` */
    struct blocks_name *retired;
    int refs;                       /* b->lock */
    bool gone;                      /* forgotten while pinned; b->lock */

    pthread_mutex_t lock;           /* guards everything below */
    pthread_cond_t cond;            /* a download ended, or a writer is done */
    int inflight;                   /* downloads running without the lock */
    int writers;                    /* writers waiting for them to end */
    int ahead;                      /* background jobs queued or running */
    uint64_t change_gen;            /* bumped by every change of content or size */
    uint64_t ra_next;               /* offset just after the last read */
    uint64_t ra_window;             /* readahead window in blocks; 0: random */
    char *etag;
    uint64_t size;                  /* also read atomically without the lock */
    bool dirty;                     /* likewise */
    bool complete;                  /* dirty and recorded as all-present */
    uint64_t write_gen, prepared_gen;
    bool prepared;
    int fd, upload_fd;
    uint64_t nblocks, cap;
    uint8_t *st;
    uint64_t *sum;
    int64_t *used;
    /* Partial blocks (not B_PRESENT): which chunks are present, which of
     * them were verified since pinned, and each chunk's checksum (an array
     * of b->chunks, allocated while the block is partial). */
    uint64_t *parts, *parts_ok;
    uint64_t **chunk_sum;
};

struct blocks {
    char *dir, *data_dir;
    uint64_t bs, max_size;
    unsigned shift;
    unsigned chunk_shift, chunks;               /* chunk size, chunks per block */
    pthread_mutex_t lock;
    struct cachedb db;
    struct blocks_obj **buckets;
    size_t nbuckets, nobjs;
    uint64_t blocks_present, bytes_present;    /* atomic */
    uint64_t blocks_partial;                   /* atomic */
    uint64_t hits, misses, corrupt;            /* atomic */
    uint64_t ahead_fetched;                    /* atomic */
    uint64_t ahead_verified;                   /* atomic */
    struct blocks_pool *pool;                  /* background fetchers */
    uint64_t min_free;                         /* free-space floor; 0: none */
    blocks_free_fn probe;                      /* measures the free space */
    void *probe_arg;
    bool evict_stuck;       /* the last eviction left only pinned or dirty data; b->lock */
};

/* One background fetch: blocks idx.. of o (pinned), with its own fetch
 * arg. */
struct blocks_job {
    struct blocks_job *next;
    struct blocks_obj *o;
    uint64_t idx, count;            /* blocks idx..idx+count-1 */
    blocks_fetch_fn fetch;
    void *arg;
    void (*drop)(void *arg);
};

/* The background fetchers: threads started on demand, up to
 * BLOCKS_FETCHERS, taking jobs from one FIFO queue. */
struct blocks_pool {
    struct blocks *b;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct blocks_job *head, *tail;
    size_t queued;
    pthread_t threads[BLOCKS_FETCHERS];
    int nthreads, idle;
    bool stop;
};

enum {
    Q_INFO_GET, Q_INFO_SET, Q_COUNT_INCOMPLETE, Q_OBJ_FIND, Q_OBJ_EXISTS, Q_OBJ_SIZE, Q_OBJ_INSERT,
    Q_OBJ_RESET, Q_OBJ_DIRTY, Q_OBJ_COMPLETE, Q_OBJ_CLEAN, Q_OBJ_ETAG, Q_OBJ_TOUCH,
    Q_OBJ_DELETE, Q_OBJ_ALL, Q_OBJ_DIRTY_KEYS, Q_OBJ_COUNTS, Q_OBJ_UNDER, Q_OBJ_OF_CLOUD,
    Q_OBJ_MOVE, Q_OBJ_MOVE_RANGE, Q_BLK_LOAD, Q_BLK_PUT, Q_BLK_DEL, Q_BLK_DEL_OBJ, Q_BLK_TOUCH,
    Q_BLK_USAGE, Q_BLK_LRU, Q_BLK_ANY, Q_COUNT
};

static const char *const blocks_sql[Q_COUNT] = {
    [Q_INFO_GET] = "SELECT value FROM info WHERE key=?1",
    [Q_INFO_SET] = "INSERT OR REPLACE INTO info(key,value) VALUES(?1,?2)",
    [Q_COUNT_INCOMPLETE] = "SELECT count(*) FROM objects WHERE dirty=1 AND complete=0",
    [Q_OBJ_FIND] = "SELECT id,etag,size,dirty,complete FROM objects WHERE cloud=?1 AND path=?2",
    [Q_OBJ_EXISTS] = "SELECT 1 FROM objects WHERE id=?1",
    [Q_OBJ_SIZE] = "SELECT size FROM objects WHERE id=?1 AND dirty=1",
    [Q_OBJ_INSERT] = "INSERT INTO objects(cloud,path,etag,size,dirty,complete,last_use) "
                     "VALUES(?1,?2,?3,?4,0,0,?5)",
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
};

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

static int64_t blocks_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int blocks_oom(struct sky_err *e)
{
    return sky_fail(e, ENOMEM, "block cache: out of memory");
}

static uint64_t blocks_count_for(const struct blocks *b, uint64_t size)
{
    return (size + b->bs - 1) >> b->shift;
}

/* Length of block idx of an object of `size` bytes (0 past the end). */
static uint64_t blocks_block_len(const struct blocks *b, uint64_t size, uint64_t idx)
{
    uint64_t start = idx << b->shift;
    if (start >= size)
        return 0;
    return size - start < b->bs ? size - start : b->bs;
}

/* Every chunk of block idx (a short last block has fewer). */
static uint64_t blocks_chunk_mask(const struct blocks *b, uint64_t size, uint64_t idx)
{
    uint64_t len = blocks_block_len(b, size, idx);
    uint64_t n = (len + (1ull << b->chunk_shift) - 1) >> b->chunk_shift;
    return n >= 64 ? ~0ull : (1ull << n) - 1;
}

/* Bytes held by chunks `mask` of block idx (the object's last chunk may be
 * short). */
static uint64_t blocks_chunk_bytes(const struct blocks *b, uint64_t size, uint64_t idx,
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

/* What a set of blocks holds: blocks with data (whole or in part), those
 * only in part, and bytes. */
struct blocks_held {
    int64_t blocks, partial, bytes;
};

static void blocks_account(struct blocks *b, int64_t nblocks, int64_t npartial, int64_t nbytes)
{
    __atomic_add_fetch(&b->blocks_present, (uint64_t)nblocks, __ATOMIC_RELAXED);
    __atomic_add_fetch(&b->blocks_partial, (uint64_t)npartial, __ATOMIC_RELAXED);
    __atomic_add_fetch(&b->bytes_present, (uint64_t)nbytes, __ATOMIC_RELAXED);
}

static void blocks_count(uint64_t *counter)
{
    __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

static uint64_t blocks_bytes(struct blocks *b)
{
    return __atomic_load_n(&b->bytes_present, __ATOMIC_RELAXED);
}

/* Free bytes on the file system holding the cache directory. */
static int blocks_statvfs(void *arg, const char *dir, uint64_t *out)
{
    struct statvfs s;
    if (statvfs(dir, &s) != 0)
        return -errno;
    *out = (uint64_t)s.f_bavail * s.f_frsize;
    return 0;
}

/* How many bytes the cache may hold now: max_size, or less when the file
 * system's free space, less `need` bytes about to be written, is under
 * min_free.  *free_left (may be NULL) gets the free space less `need`
 * (UINT64_MAX when there is no floor or it cannot be measured).  Called
 * without b->lock (the probe may take it). */
static uint64_t blocks_target(struct blocks *b, uint64_t need, uint64_t *free_left)
{
    uint64_t target = b->max_size, free_now = 0, left = UINT64_MAX;
    if (b->min_free && b->probe(b->probe_arg, b->dir, &free_now) == 0) {
        left = free_now > need ? free_now - need : 0;
        if (left < b->min_free) {
            uint64_t deficit = b->min_free - left, have = blocks_bytes(b);
            uint64_t floor_target = have > deficit ? have - deficit : 0;
            target = floor_target < target ? floor_target : target;
        }
    }
    if (free_left)
        *free_left = left;
    return target;
}

static void blocks_data_path(const struct blocks *b, int64_t id, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%lld", b->data_dir, (long long)id);
}

/* Is `path` strictly below directory `dir`? */
static bool blocks_is_below(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static int blocks_pread(int fd, void *buf, size_t len, uint64_t off)
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

static int blocks_pwrite(int fd, const void *buf, size_t len, uint64_t off)
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
static void blocks_punch(int fd, uint64_t off, uint64_t len)
{
    if (len)
        (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
}

/* The xxh3 of bytes [off, off+len) of fd, read in pieces (no buffer the
 * size of a block): 0 or -errno. */
static int blocks_hash_file(int fd, uint64_t off, uint64_t len, uint64_t *sum)
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

static struct blocks_obj *blocks_table_find(struct blocks *b, const char *cloud,
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

static void blocks_table_del(struct blocks *b, struct blocks_obj *o)
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

/* ---- in-memory objects ------------------------------------------------- */

static uint64_t obj_block_len(const struct blocks_obj *o, uint64_t idx)
{
    return blocks_block_len(o->b, o->size, idx);
}

static uint64_t obj_chunk_mask(const struct blocks_obj *o, uint64_t idx)
{
    return blocks_chunk_mask(o->b, o->size, idx);
}

/* Chunks of block idx that bytes [off, end) touch. */
static uint64_t obj_range_mask(const struct blocks_obj *o, uint64_t idx, uint64_t off,
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

static void obj_account_all(struct blocks_obj *o, int sign)
{
    for (uint64_t i = 0; i < o->nblocks; i++)
        obj_account_block(o, i, sign);
}

/* Block idx no longer holds chunks (memory only; accounting is the
 * caller's). */
static void obj_clear_partial(struct blocks_obj *o, uint64_t idx)
{
    o->parts[idx] = o->parts_ok[idx] = 0;
    free(o->chunk_sum[idx]);
    o->chunk_sum[idx] = NULL;
}

static void obj_clear_all_partial(struct blocks_obj *o)
{
    for (uint64_t i = 0; i < o->cap; i++)
        obj_clear_partial(o, i);
}

/* Room for n blocks of state; new entries are zero (absent). */
static int obj_reserve(struct blocks_obj *o, uint64_t n)
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

static void obj_free(struct blocks_obj *o)
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

static struct blocks_obj *obj_new(struct blocks *b, int64_t id, const char *cloud,
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
    pthread_cond_init(&o->cond, NULL);
    o->cloud = strdup(cloud);
    o->path = strdup(path);
    o->etag = strdup(etag);
    if (!o->cloud || !o->path || !o->etag || obj_reserve(o, o->nblocks)) {
        obj_free(o);
        return NULL;
    }
    return o;
}

static void obj_set_size(struct blocks_obj *o, uint64_t size)
{
    __atomic_store_n(&o->size, size, __ATOMIC_RELEASE);
}

static void obj_set_dirty(struct blocks_obj *o, bool dirty)
{
    __atomic_store_n(&o->dirty, dirty, __ATOMIC_RELEASE);
}

/* ---- database rows of one object (takes b->lock) ----------------------- */

/* Bind block idx's row: its checksum (NULL when dirty), or for a partial
 * block its chunk map and the chunks' checksums. */
static void obj_bind_row(struct blocks_obj *o, sqlite3_stmt *st, uint64_t idx, int64_t used)
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
static int obj_put_rows(struct blocks_obj *o, const uint64_t *idx, size_t n, struct sky_err *e)
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
static int obj_update(struct blocks_obj *o, int q, int64_t v2, int64_t v3, const char *doing,
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

static int obj_set_etag_row(struct blocks_obj *o, const char *etag, struct sky_err *e)
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

static int obj_io_fail(struct blocks_obj *o, int rc, const char *doing, struct sky_err *e)
{
    return sky_fail(e, -rc, "block cache: %s cached data of '%s': %s", doing, o->path,
                    strerror(-rc));
}

/* Forget block idx, whole or partial: drop its row and punch its bytes
 * out. */
static int obj_drop_block(struct blocks_obj *o, uint64_t idx, struct sky_err *e)
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
static void obj_chunk_range(const struct blocks_obj *o, uint64_t idx, unsigned c, uint64_t *off,
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
static int obj_verify_chunks(struct blocks_obj *o, uint64_t idx, uint64_t mask, struct sky_err *e)
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
static int obj_check_cached(struct blocks_obj *o, uint64_t idx, uint64_t want, struct sky_err *e)
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

/* One download as it arrives: each piece is written into the cache file
 * at its place, and checksummed on the way in units (a chunk, or a whole
 * block), so that a download costs no buffer of its size. */
struct obj_sink {
    struct blocks_obj *o;
    uint64_t off, len;              /* the range, in the object */
    uint64_t got;                   /* bytes written so far, from off */
    uint64_t unit;                  /* bytes per checksum */
    uint64_t sums[BLOCKS_CHUNKS];   /* checksums of the units done */
    bool wrote;                     /* bytes went into the file */
    int err;                        /* errno of a failed piece */
    XXH3_state_t hash;              /* of the current unit */
    /* Optional: called (without o->lock) as each unit completes, so that
     * it can be kept at once (0, or -errno to stop the fetch).  The units
     * it took are then `kept`: a fetch that starts over does not write
     * them again, and must bring the same bytes. */
    int (*unit_done)(struct obj_sink *s, unsigned unit);
    unsigned kept;
    uint64_t first;                 /* for unit_done: the block of unit 0 */
    struct sky_err *e;
};

static int obj_sink_fail(struct obj_sink *s, int err)
{
    s->err = err;
    return -err;
}

/* The sink (blocks_sink_fn): called without o->lock, while the range is
 * B_FETCHING (no reader or writer touches it). */
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
        if (u >= s->kept) {
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
            if (u < s->kept && sum != s->sums[u])
                return obj_sink_fail(s, EIO);   /* kept, and now other bytes */
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

/* Fetch [off, off+len) from the cloud straight into the cache file, with a
 * checksum per `unit` bytes in s->sums (no lock is needed: the object's
 * size cannot change while the fetch is counted in o->inflight or the
 * lock is held).  On failure the bytes may be in the file, unrecorded. */
static int obj_download(struct blocks_obj *o, uint64_t off, uint64_t len, uint64_t unit,
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
    int rc = fetch(arg, off, (size_t)len, obj_sink_take, s, e);
    if (rc && s->err)
        return obj_io_fail(o, -s->err, "writing", e);
    if (rc == 0 && s->got != len)
        rc = sky_fail(e, EIO, "block cache: '%s': the cloud returned %llu bytes at offset %llu, "
                      "expected %llu", o->path, (unsigned long long)s->got,
                      (unsigned long long)off, (unsigned long long)len);
    return rc < 0 ? rc : rc ? -EIO : 0;
}

/* A store failed: forget block idx in memory (its bytes are punched out;
 * a row left behind no longer matches them, so it is caught when read). */
static void obj_forget_stored(struct blocks_obj *o, uint64_t idx)
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
static int obj_store_block(struct blocks_obj *o, uint64_t idx, uint64_t sum, struct sky_err *e)
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
static int obj_store_chunks(struct blocks_obj *o, uint64_t idx, unsigned first, unsigned last,
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

/* Around a download without o->lock: block idx is B_FETCHING (its other
 * readers wait for this download) and counted in o->inflight (writers
 * wait until no download runs).  begin unlocks; end is called with the
 * lock taken again, after the bytes are stored. */
static void obj_download_begin(struct blocks_obj *o, uint64_t idx)
{
    o->st[idx] = (uint8_t)((o->st[idx] & ~B_QUEUED) | B_FETCHING);
    o->inflight++;
    pthread_mutex_unlock(&o->lock);
}

static void obj_download_end(struct blocks_obj *o, uint64_t idx)
{
    o->st[idx] &= (uint8_t)~B_FETCHING;
    o->inflight--;
    pthread_cond_broadcast(&o->cond);
}

/* Fetch block idx whole; with `unlocked` the download runs without
 * o->lock (entered and left with it). */
static int obj_fetch_block(struct blocks_obj *o, uint64_t idx, blocks_fetch_fn fetch, void *arg,
                           bool unlocked, struct sky_err *e)
{
    uint64_t len = obj_block_len(o, idx);
    if (unlocked)
        obj_download_begin(o, idx);
    struct obj_sink s = { 0 };
    int rc = obj_download(o, idx << o->b->shift, len, len, fetch, arg, &s, e);
    if (unlocked)
        pthread_mutex_lock(&o->lock);
    if (rc == 0)
        rc = obj_store_block(o, idx, s.sums[0], e);
    else if (s.wrote)
        blocks_punch(o->fd, idx << o->b->shift, len);     /* nothing of it is kept */
    if (unlocked)
        obj_download_end(o, idx);
    return rc;
}

/* A download of chunks first..last of partial block idx failed part way:
 * the missing ones among them are punched out, and the present ones it may
 * have written over are checked again before they are served. */
static void obj_unfetch_chunks(struct blocks_obj *o, uint64_t idx, unsigned first,
                               unsigned last)
{
    for (unsigned c = first; c <= last; c++) {
        uint64_t off, len;
        obj_chunk_range(o, idx, c, &off, &len);
        if (!(o->parts[idx] & (1ull << c)))
            blocks_punch(o->fd, off, len);
        o->parts_ok[idx] &= ~(1ull << c);
    }
}

/* Fetch the chunks of block idx from the first to the last of `missing`
 * in one ranged read (present chunks between them come again); with
 * `unlocked` as obj_fetch_block. */
static int obj_fetch_chunks(struct blocks_obj *o, uint64_t idx, uint64_t missing,
                            blocks_fetch_fn fetch, void *arg, bool unlocked, struct sky_err *e)
{
    unsigned first = (unsigned)__builtin_ctzll(missing);
    unsigned last = 63u - (unsigned)__builtin_clzll(missing);
    uint64_t off, len, last_off, last_len;
    obj_chunk_range(o, idx, first, &off, &len);
    obj_chunk_range(o, idx, last, &last_off, &last_len);
    uint64_t span = last_off + last_len - off;
    if (unlocked)
        obj_download_begin(o, idx);
    struct obj_sink s = { 0 };
    int rc = obj_download(o, off, span, 1ull << o->b->chunk_shift, fetch, arg, &s, e);
    if (unlocked)
        pthread_mutex_lock(&o->lock);
    if (rc == 0)
        rc = obj_store_chunks(o, idx, first, last, s.sums, e);
    else if (s.wrote)
        obj_unfetch_chunks(o, idx, first, last);
    if (unlocked)
        obj_download_end(o, idx);
    return rc;
}

/* unit_done of a run: block s->first + u has arrived whole; keep it now,
 * so that its readers go on while the rest of the run downloads. */
static int obj_run_block_done(struct obj_sink *s, unsigned u)
{
    struct blocks_obj *o = s->o;
    uint64_t idx = s->first + u;
    pthread_mutex_lock(&o->lock);
    int rc = obj_store_block(o, idx, s->sums[u], s->e);
    o->st[idx] &= (uint8_t)~B_FETCHING;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    return rc;
}

/* Background fetch of absent blocks first..first+n-1 in one ranged read
 * (o->lock held on entry and return, not during the download).  Each
 * block is kept as soon as all of it has arrived; on failure the blocks
 * not kept yet are punched out and stay absent.  Returns how many were
 * kept. */
static uint64_t obj_fetch_run(struct blocks_obj *o, uint64_t first, uint64_t n,
                              blocks_fetch_fn fetch, void *arg, struct sky_err *e)
{
    uint64_t off = first << o->b->shift, len = 0;
    for (uint64_t i = first; i < first + n; i++) {
        o->st[i] = (uint8_t)((o->st[i] & ~B_QUEUED) | B_FETCHING);
        len += obj_block_len(o, i);
    }
    o->inflight++;
    pthread_mutex_unlock(&o->lock);
    struct obj_sink s = { .unit_done = obj_run_block_done, .first = first, .e = e };
    obj_download(o, off, len, o->b->bs, fetch, arg, &s, e);
    pthread_mutex_lock(&o->lock);
    for (uint64_t i = first + s.kept; i < first + n; i++) {
        if (s.wrote)
            blocks_punch(o->fd, i << o->b->shift, obj_block_len(o, i));
        o->st[i] &= (uint8_t)~B_FETCHING;
    }
    o->inflight--;
    pthread_cond_broadcast(&o->cond);
    return s.kept;
}

static _Thread_local const atomic_int *thread_stop;

void blocks_set_stop(const atomic_int *flag)
{
    thread_stop = flag;
}

/* Wait while block idx is being downloaded by someone else, or (when we
 * would download it) while a writer waits for downloads to stop: 0, or
 * -EINTR once the thread's stop flag (blocks_set_stop) is raised; with a
 * flag named, the wait wakes every 100 ms to look at it. */
static int obj_wait_block(struct blocks_obj *o, uint64_t idx, bool unlocked, struct sky_err *e)
{
    while (idx < o->nblocks && ((o->st[idx] & B_FETCHING) ||
                                (unlocked && o->writers && !(o->st[idx] & B_PRESENT)))) {
        if (!thread_stop) {
            pthread_cond_wait(&o->cond, &o->lock);
            continue;
        }
        if (atomic_load(thread_stop))
            return sky_fail(e, EINTR, "interrupted while waiting for a block being downloaded");
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&o->cond, &o->lock, &until);
    }
    return 0;
}

/* Make the chunks `want` of block idx (~0: all of it) present and
 * trustworthy: verify what is cached once, fetch the rest.  An absent
 * block wanted whole is fetched whole; otherwise only the missing chunks
 * are, and a block whose last chunk arrives becomes whole.  With
 * `unlocked`, the download runs without o->lock (readers); the caller
 * must then check o->change_gen, since a writer may have changed the
 * object meanwhile (idx may even be past the end: then nothing is done). */
static int obj_ensure_block(struct blocks_obj *o, uint64_t idx, uint64_t want,
                            blocks_fetch_fn fetch, void *arg, bool count, bool unlocked,
                            struct sky_err *e)
{
    struct blocks *b = o->b;
    int rc = obj_wait_block(o, idx, unlocked, e);
    if (rc)
        return rc;
    if (idx >= o->nblocks)
        return 0;
    o->st[idx] &= (uint8_t)~B_QUEUED;           /* queued ahead: we take it over */
    uint64_t all = obj_chunk_mask(o, idx);
    want &= all;
    rc = obj_check_cached(o, idx, want, e);
    if (rc)
        return rc;
    if ((o->st[idx] & B_PRESENT) || !(want & ~o->parts[idx])) {
        if (count)
            blocks_count(&b->hits);
        return 0;
    }
    if (count)
        blocks_count(&b->misses);
    if (!o->parts[idx] && want == all)
        return obj_fetch_block(o, idx, fetch, arg, unlocked, e);
    if ((o->parts[idx] | want) == all) {
        rc = obj_verify_chunks(o, idx, all, e);   /* it completes the block: check the rest */
        if (rc)
            return rc;
    }
    return obj_fetch_chunks(o, idx, want & ~o->parts[idx], fetch, arg, unlocked, e);
}

/* Before changing the object: cancel queued readahead and wait until no
 * download is running, so none lands on top of the change (o->lock). */
static void obj_quiesce(struct blocks_obj *o)
{
    o->writers++;
    for (uint64_t i = 0; i < o->nblocks; i++)
        o->st[i] &= (uint8_t)~B_QUEUED;
    while (o->inflight)
        pthread_cond_wait(&o->cond, &o->lock);
    o->writers--;
    o->change_gen++;
    pthread_cond_broadcast(&o->cond);
}

/* ---- size changes and the journal (o->lock held) ----------------------- */

/* Journal the object as dirty before its content changes. */
static int obj_mark_dirty(struct blocks_obj *o, struct sky_err *e)
{
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

/* Rows for blocks [from, to) of a dirty object not recorded as complete. */
static int obj_record_new_blocks(struct blocks_obj *o, uint64_t from, uint64_t to,
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

static int blocks_load_rows(struct blocks *b, struct blocks_obj *o, bool dirty,
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

static int blocks_del_rows(struct blocks *b, int64_t id, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&b->db, Q_BLK_DEL_OBJ, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, id);
    return cachedb_done(&b->db, st, "dropping blocks", e);
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
    o->complete = dirty && complete;
    rc = blocks_load_state(b, o, complete, e);
    if (rc) {
        obj_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

static int blocks_create(struct blocks *b, const char *cloud, const char *path,
                         const char *etag, uint64_t size, struct blocks_obj **out,
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
    int rc = cachedb_done(&b->db, st, "adding an object", e);
    if (rc)
        return rc;
    int64_t id = sqlite3_last_insert_rowid(b->db.db);
    struct blocks_obj *o = obj_new(b, id, cloud, path, etag, size);
    char file[4096];
    blocks_data_path(b, id, file, sizeof file);
    if (!o)
        rc = blocks_oom(e);
    else if ((o->fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
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
    *out = o;
    return 0;
}

/* Pin the object (cloud, path): from memory, else from the database, else
 * (when etag is not NULL) a new empty one. */
static int blocks_acquire(struct blocks *b, const char *cloud, const char *path,
                          const char *etag, uint64_t size, struct blocks_obj **out,
                          struct sky_err *e)
{
    pthread_mutex_lock(&b->lock);
    struct blocks_obj *o = blocks_table_find(b, cloud, path);
    int rc = 0;
    if (!o) {
        rc = blocks_load(b, cloud, path, &o, e);
        if (rc == -ENOENT && etag)
            rc = blocks_create(b, cloud, path, etag, size, &o, e);
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

/* A clean object whose version changed: drop its blocks, start over. */
static int obj_reset(struct blocks_obj *o, const char *etag, uint64_t size, struct sky_err *e)
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

const char *blocks_path(struct blocks_obj *o)
{
    return __atomic_load_n(&o->path, __ATOMIC_ACQUIRE);
}

const char *blocks_cloud(struct blocks_obj *o)
{
    return o->cloud;
}

/* ---- readahead: background fetchers -------------------------------------- */

static struct blocks_pool *pool_new(struct blocks *b)
{
    struct blocks_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->b = b;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    return p;
}

/* Is block i waiting for this background fetch, and absent? */
static bool obj_still_queued(const struct blocks_obj *o, uint64_t i)
{
    return i < o->nblocks && (o->st[i] & (B_QUEUED | B_PRESENT | B_FETCHING)) == B_QUEUED;
}

/* A check ahead of a sequential reader (obj_warm_ahead): hash cached
 * block job->idx without o->lock, marked B_FETCHING meanwhile, so that
 * readers wait for the answer and writers (obj_quiesce) for the end; a
 * corrupt block is counted and dropped, to be fetched again.  Then unpin. */
static void pool_verify(struct blocks_job *job)
{
    struct blocks_obj *o = job->o;
    uint64_t i = job->idx;
    pthread_mutex_lock(&o->lock);
    if (i < o->nblocks) {
        o->st[i] &= (uint8_t)~B_WARMING;
        if (!o->writers &&
            (o->st[i] & (B_PRESENT | B_VERIFIED | B_DIRTY | B_FETCHING)) == B_PRESENT) {
            obj_download_begin(o, i);
            uint64_t sum;
            int rc = blocks_hash_file(o->fd, i << o->b->shift, obj_block_len(o, i), &sum);
            pthread_mutex_lock(&o->lock);
            struct sky_err e = { 0 };       /* a reader checks again and reports */
            if (rc == 0)
                blocks_count(&o->b->ahead_verified);
            if (rc == 0 && sum == o->sum[i]) {
                o->st[i] |= B_VERIFIED;
            } else if (rc == 0) {
                blocks_count(&o->b->corrupt);
                (void)obj_drop_block(o, i, &e);
            }
            obj_download_end(o, i);
        }
    }
    o->ahead--;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    blocks_release(o);
    free(job);
}

/* Download the blocks of the job still wanted (the first run of them:
 * readers may have taken some over), then unpin the object. */
static void pool_run(struct blocks_job *job)
{
    struct blocks_obj *o = job->o;
    struct blocks *b = o->b;
    if (!job->fetch) {
        pool_verify(job);
        return;
    }
    pthread_mutex_lock(&o->lock);
    uint64_t end = job->idx + job->count, first = job->idx, n = 0;
    while (first < end && !obj_still_queued(o, first))
        first++;
    while (first + n < end && obj_still_queued(o, first + n) && (n == 0 || !o->parts[first + n]))
        n++;
    for (uint64_t i = job->idx; i < end && i < o->nblocks; i++)
        if (i < first || i >= first + n)
            o->st[i] &= (uint8_t)~B_QUEUED;
    uint64_t fetched = 0;
    struct sky_err e = { 0 };              /* a failed readahead is retried on demand */
    if (n && o->writers) {
        for (uint64_t i = first; i < first + n; i++)
            o->st[i] &= (uint8_t)~B_QUEUED;
    } else if (n == 1) {
        o->st[first] &= (uint8_t)~B_QUEUED;
        fetched = obj_ensure_block(o, first, ~0ull, job->fetch, job->arg, false, true, &e) == 0 &&
                  first < o->nblocks && (o->st[first] & B_PRESENT);
    } else if (n > 1) {
        fetched = obj_fetch_run(o, first, n, job->fetch, job->arg, &e);
    }
    __atomic_add_fetch(&b->ahead_fetched, fetched, __ATOMIC_RELAXED);
    o->ahead--;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    if (job->drop)
        job->drop(job->arg);
    blocks_release(o);
    free(job);
    if (fetched)
        blocks_evict(b, NULL);              /* keep the limits */
}

/* A job that will not run: forget it was queued, unpin the object. */
static void pool_cancel(struct blocks_job *job)
{
    struct blocks_obj *o = job->o;
    pthread_mutex_lock(&o->lock);
    uint8_t mark = job->fetch ? B_QUEUED : B_WARMING;
    for (uint64_t i = job->idx; i < job->idx + job->count && i < o->nblocks; i++)
        o->st[i] &= (uint8_t)~mark;
    o->ahead--;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    if (job->drop)
        job->drop(job->arg);
    blocks_release(o);
    free(job);
}

static void *pool_main(void *arg)
{
    struct blocks_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->wake, &p->lock);
            p->idle--;
        }
        if (p->stop)
            break;
        struct blocks_job *job = p->head;
        p->head = job->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->lock);
        pool_run(job);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Queue a job, starting a fetcher when none is idle and the cap allows.
 * False when the queue is full or no fetcher can run. */
static bool pool_submit(struct blocks_pool *p, struct blocks_job *job)
{
    pthread_mutex_lock(&p->lock);
    bool ok = !p->stop && p->queued < BLOCKS_QUEUE_MAX;
    if (ok && p->idle <= (int)p->queued && p->nthreads < BLOCKS_FETCHERS &&
        pthread_create(&p->threads[p->nthreads], NULL, pool_main, p) == 0)
        p->nthreads++;
    ok = ok && p->nthreads > 0;
    if (ok) {
        job->next = NULL;
        if (p->tail)
            p->tail->next = job;
        else
            p->head = job;
        p->tail = job;
        p->queued++;
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->lock);
    return ok;
}

/* Stop the fetchers: running jobs finish, queued ones are cancelled. */
static void pool_free(struct blocks_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    while (p->head) {
        struct blocks_job *job = p->head;
        p->head = job->next;
        pool_cancel(job);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p);
}

/* ---- readahead: which blocks (o->lock held) ------------------------------ */

/* Note a read of [off, off+n): a read at the start, or exactly where the
 * last one ended, starts a sequential run; while a run lasts, a read near
 * where the last one ended (the kernel's reads may arrive out of order)
 * continues it.  Sequential reads double the window; any other read is
 * random and resets it.  Returns the window to fetch ahead, in blocks (0:
 * the read is random). */
static uint64_t obj_track_access(struct blocks_obj *o, uint64_t off, uint64_t n)
{
    uint64_t bs = o->b->bs, next = o->ra_next;
    bool near = off + bs >= next && off <= next + bs;
    bool sequential = o->ra_window ? near : off == next;
    if (!sequential)
        o->ra_window = 0;
    else if (o->ra_window < BLOCKS_WINDOW_MAX)
        o->ra_window = o->ra_window ? o->ra_window * 2 : 1;
    if (o->ra_window > BLOCKS_WINDOW_MAX)
        o->ra_window = BLOCKS_WINDOW_MAX;
    if (off + n > next || !sequential)
        o->ra_next = off + n;
    return o->ra_window;
}

/* Hand a job on o's blocks (its state bits `mark` set meanwhile) to the
 * pool, pinning o for it; false when the pool cannot take it: then
 * nothing changed, and the caller still owns the job. */
static bool obj_submit_job(struct blocks_obj *o, struct blocks_job *job, uint8_t mark)
{
    struct blocks *b = o->b;
    pthread_mutex_lock(&b->lock);
    o->refs++;                              /* the job pins the object */
    pthread_mutex_unlock(&b->lock);
    for (uint64_t i = job->idx; i < job->idx + job->count; i++)
        o->st[i] |= mark;
    o->ahead++;
    if (pool_submit(b->pool, job))
        return true;
    for (uint64_t i = job->idx; i < job->idx + job->count; i++)
        o->st[i] &= (uint8_t)~mark;
    o->ahead--;
    pthread_mutex_lock(&b->lock);
    o->refs--;                              /* we still hold our own pin */
    pthread_mutex_unlock(&b->lock);
    return false;
}

/* Queue one background fetch of blocks idx..idx+count-1; false when it
 * cannot be. */
static bool obj_queue_run(struct blocks_obj *o, uint64_t idx, uint64_t count,
                          const struct blocks_fetcher *f)
{
    struct blocks_job *job = calloc(1, sizeof *job);
    void *arg = job ? f->clone(f->arg) : NULL;
    if (!arg) {
        free(job);
        return false;
    }
    *job = (struct blocks_job){ .o = o, .idx = idx, .count = count, .fetch = f->fetch,
                                .arg = arg, .drop = f->drop };
    if (obj_submit_job(o, job, B_QUEUED))
        return true;
    if (f->drop)
        f->drop(arg);
    free(job);
    return false;
}

/* Queue a background check of cached block idx (a job without a fetch
 * function, B_WARMING meanwhile); false when it cannot be. */
static bool obj_queue_verify(struct blocks_obj *o, uint64_t idx)
{
    struct blocks_job *job = o->b->pool ? calloc(1, sizeof *job) : NULL;
    if (!job)
        return false;
    *job = (struct blocks_job){ .o = o, .idx = idx, .count = 1 };
    if (obj_submit_job(o, job, B_WARMING))
        return true;
    free(job);
    return false;
}

/* Is block i absent, with nothing of it under way? */
static bool obj_absent(const struct blocks_obj *o, uint64_t i)
{
    return !(o->st[i] & (B_PRESENT | B_FETCHING | B_QUEUED));
}

/* Queue the missing blocks of [from, from+window) not yet under way, up to
 * BLOCKS_AHEAD_PER_OBJ background fetches for the object, each a run of
 * consecutive absent blocks of up to BLOCKS_RUN_BYTES in one request (a
 * block held in part goes alone: it needs only its missing chunks). */
static void obj_read_ahead(struct blocks_obj *o, uint64_t from, uint64_t window,
                           const struct blocks_fetcher *f)
{
    if (!window || !f->clone || o->dirty || o->writers || !o->b->pool)
        return;
    uint64_t end = from + window < o->nblocks ? from + window : o->nblocks;
    uint64_t run_max = BLOCKS_RUN_BYTES >> o->b->shift;
    run_max = run_max < 1 ? 1 : run_max > BLOCKS_CHUNKS ? BLOCKS_CHUNKS : run_max;
    for (uint64_t i = from; i < end && o->ahead < BLOCKS_AHEAD_PER_OBJ;) {
        if (!obj_absent(o, i)) {
            i++;
            continue;
        }
        uint64_t n = 1;
        while (!o->parts[i] && n < run_max && i + n < end && obj_absent(o, i + n) &&
               !o->parts[i + n])
            n++;
        if (!obj_queue_run(o, i, n, f))
            break;
        i += n;
    }
}

/* The cached blocks among the next few that a sequential reader will
 * verify (hash) first: start reading them from the disk now, in large
 * requests, and (for a reader that allows background work, as for
 * obj_read_ahead) hash them on the background threads (pool_verify), up
 * to BLOCKS_AHEAD_PER_OBJ jobs at once, so that a read of block i finds
 * it checked and only copies it out. */
static void obj_warm_ahead(struct blocks_obj *o, uint64_t from, uint64_t window,
                           const struct blocks_fetcher *f)
{
    if (window > BLOCKS_WINDOW_MAX)
        window = BLOCKS_WINDOW_MAX;
    bool background = f->clone && !o->writers;
    uint64_t end = from + window < o->nblocks ? from + window : o->nblocks;
    for (uint64_t i = from; i < end; i++) {
        if ((o->st[i] & (B_PRESENT | B_VERIFIED | B_DIRTY | B_WARMING | B_FETCHING)) !=
            B_PRESENT)
            continue;                       /* not cached, done, or under way */
        if (background && (o->ahead >= BLOCKS_AHEAD_PER_OBJ || !obj_queue_verify(o, i)))
            break;                          /* the next read queues the rest */
        posix_fadvise(o->fd, (off_t)(i << o->b->shift), (off_t)obj_block_len(o, i),
                      POSIX_FADV_WILLNEED);
        o->st[i] |= B_WARMING;              /* asked ahead (and maybe queued) */
    }
}

/* ---- public: reading and writing ----------------------------------------- */

static int blocks_make_room(struct blocks *b, uint64_t need, struct sky_err *e);  /* eviction */

/* Make bytes [off, end) usable: the blocks they touch whole, or with
 * `chunks_only` only the chunks they touch.  1 when a writer changed the
 * object meanwhile (start over), 0, or -errno. */
static int obj_ensure_range(struct blocks_obj *o, uint64_t off, uint64_t end, bool chunks_only,
                            const struct blocks_fetcher *f, struct sky_err *e)
{
    uint64_t gen = o->change_gen;
    int64_t now = blocks_now();
    uint64_t first = off >> o->b->shift, last = (end - 1) >> o->b->shift;
    for (uint64_t i = first; i <= last; i++) {
        uint64_t want = chunks_only ? obj_range_mask(o, i, off, end) : ~0ull;
        int rc = obj_ensure_block(o, i, want, f->fetch, f->arg, true, true, e);
        if (o->change_gen != gen)
            return 1;
        if (rc)
            return rc;
        o->st[i] |= B_USED;
        o->used[i] = now;
    }
    return 0;
}

/* With o->lock held: make what a read of [off, off+len) gets usable (and
 * queue readahead); *n = the bytes it gets (0 at or past the end). */
static int obj_prepare_read(struct blocks_obj *o, uint64_t off, size_t len,
                            const struct blocks_fetcher *f, size_t *n, struct sky_err *e)
{
    int rc = 1;
    bool tracked = false, random = false;
    while (rc == 1) {
        rc = 0;
        *n = 0;
        if (off >= o->size || len == 0)
            break;
        *n = o->size - off < len ? (size_t)(o->size - off) : len;
        if (!tracked) {
            uint64_t window = obj_track_access(o, off, *n);
            uint64_t next = ((off + *n - 1) >> o->b->shift) + 1;
            obj_read_ahead(o, next, window, f);
            if (window)
                obj_warm_ahead(o, next, window, f);
            random = window == 0;
            tracked = true;
        }
        rc = obj_ensure_range(o, off, off + *n, random, f, e);
    }
    return rc;
}

/* The end of a read: keep the limits when it fetched. */
static void obj_read_done(struct blocks_obj *o, uint64_t misses_before)
{
    if (__atomic_load_n(&o->b->misses, __ATOMIC_RELAXED) != misses_before)
        blocks_evict(o->b, NULL);
}

int blocks_read_ahead(struct blocks_obj *o, uint64_t off, size_t len, void *buf, size_t *got,
                      const struct blocks_fetcher *f, struct sky_err *e)
{
    *got = 0;
    uint64_t misses = __atomic_load_n(&o->b->misses, __ATOMIC_RELAXED);
    pthread_mutex_lock(&o->lock);
    size_t n;
    int rc = obj_prepare_read(o, off, len, f, &n, e);
    if (rc == 0 && n && (rc = blocks_pread(o->fd, buf, n, off)) != 0)
        rc = obj_io_fail(o, rc, "reading", e);
    if (rc == 0)
        *got = n;
    pthread_mutex_unlock(&o->lock);
    obj_read_done(o, misses);
    return rc;
}

int blocks_read_to(struct blocks_obj *o, uint64_t off, size_t len,
                   const struct blocks_fetcher *f, blocks_emit_fn emit, void *emit_arg,
                   struct sky_err *e)
{
    struct blocks *b = o->b;
    uint64_t misses = __atomic_load_n(&b->misses, __ATOMIC_RELAXED);
    pthread_mutex_lock(&b->lock);
    o->refs++;          /* once emit answered, the caller's own pin may go at once */
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_lock(&o->lock);
    size_t n;
    int rc = obj_prepare_read(o, off, len, f, &n, e);
    if (rc == 0 && !o->writers) {
        /* Hand the bytes out without the lock, so that the kernel's
         * parallel reads of one file overlap; counted like a download, so
         * nothing changes them meanwhile (obj_quiesce). */
        o->inflight++;
        pthread_mutex_unlock(&o->lock);
        emit(emit_arg, o->fd, off, n);
        pthread_mutex_lock(&o->lock);
        o->inflight--;
        pthread_cond_broadcast(&o->cond);
    } else if (rc == 0) {
        emit(emit_arg, o->fd, off, n);  /* a writer waits: do not keep it waiting */
    }
    pthread_mutex_unlock(&o->lock);
    obj_read_done(o, misses);
    blocks_release(o);
    return rc;
}

int blocks_read(struct blocks_obj *o, uint64_t off, size_t len, void *buf, size_t *got,
                blocks_fetch_fn fetch, void *arg, struct sky_err *e)
{
    struct blocks_fetcher f = { .fetch = fetch, .arg = arg };
    return blocks_read_ahead(o, off, len, buf, got, &f, e);
}

void blocks_cancel_ahead(struct blocks_obj *o)
{
    pthread_mutex_lock(&o->lock);
    for (uint64_t i = 0; i < o->nblocks; i++)
        o->st[i] &= (uint8_t)~B_QUEUED;
    while (o->ahead)
        pthread_cond_wait(&o->cond, &o->lock);
    pthread_mutex_unlock(&o->lock);
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
    rc = obj_mark_dirty(o, e);
    if (rc == 0 && end > o->size)
        rc = obj_grow(o, end, fetch, arg, e);
    if (rc == 0)
        rc = obj_prepare_edges(o, off, end, fetch, arg, e);
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
    int rc = obj_mark_dirty(o, e);
    if (rc == 0 && size > o->size)
        rc = obj_grow(o, size, fetch, arg, e);
    else if (rc == 0 && size < o->size)
        rc = obj_shrink(o, size, fetch, arg, e);
    o->write_gen++;
    pthread_mutex_unlock(&o->lock);
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

int blocks_prepare_upload(struct blocks_obj *o, blocks_fetch_fn fetch, void *arg, int *fd,
                          struct sky_err *e)
{
    struct blocks *b = o->b;
    pthread_mutex_lock(&o->lock);
    int rc = 0;
    for (uint64_t i = 0; rc == 0 && i < o->nblocks; i++)
        rc = obj_ensure_block(o, i, ~0ull, fetch, arg, false, false, e);
    if (rc == 0 && fsync(o->fd) != 0)
        rc = obj_io_fail(o, -errno, "syncing", e);
    if (rc == 0 && o->dirty && !o->complete) {
        rc = obj_update(o, Q_OBJ_COMPLETE, 1, 0, "recording the journal", e);
        o->complete = rc == 0;
    }
    if (rc == 0) {
        pthread_mutex_lock(&b->lock);
        rc = cachedb_sync(&b->db, e);
        pthread_mutex_unlock(&b->lock);
    }
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
    obj_set_dirty(o, false);
    return 0;
}

void blocks_base_etag(struct blocks_obj *o, char *out, size_t size)
{
    pthread_mutex_lock(&o->lock);
    snprintf(out, size, "%s", o->etag);
    pthread_mutex_unlock(&o->lock);
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
    char *copy = strdup(etag);
    pthread_mutex_lock(&o->lock);
    if (!copy)
        rc = blocks_oom(e);
    else if (strcmp(o->etag, old) == 0 && (rc = obj_set_etag_row(o, etag, e)) == 0) {
        free(o->etag);
        o->etag = copy;
        copy = NULL;
    }
    pthread_mutex_unlock(&o->lock);
    free(copy);
    blocks_release(o);
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
    pthread_mutex_unlock(&o->lock);
    free(copy);
    return rc;
}

/* ---- dropping objects (b->lock held) -------------------------------------- */

/* Objects to drop, gathered inside a transaction and applied after it. */
struct blocks_drop {
    int64_t *ids;                   /* unpinned: files to unlink */
    size_t nids, idcap;
    struct blocks_obj **pinned;     /* pinned: become `gone` */
    size_t npinned, pincap;
    struct blocks_held held;        /* what the unpinned objects held */
    bool keep_busy;                 /* evicting: keep pinned and dirty objects */
    uint64_t with_data, busy;       /* unpinned objects that held data; objects kept */
};

static int blocks_push(void **arr, size_t *n, size_t *cap, size_t elem, const void *item)
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
static int blocks_usage(struct blocks *b, int64_t id, uint64_t size, bool dirty, bool complete,
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

static int blocks_delete_object_rows(struct blocks *b, int64_t id, struct sky_err *e)
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

/* Plan the drop of object (cloud, path), if cached, and delete its rows. */
static int blocks_drop_one(struct blocks *b, struct blocks_drop *d, const char *cloud,
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

static int blocks_drop_under(struct blocks *b, struct blocks_drop *d, const char *cloud,
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
static void blocks_drop_apply(struct blocks *b, struct blocks_drop *d)
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

static void blocks_drop_free(struct blocks_drop *d)
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

/* Before writing `need` bytes: keep the free space at min_free or more,
 * evicting clean data if needed; -ENOSPC when even that is not enough. */
static int blocks_make_room(struct blocks *b, uint64_t need, struct sky_err *e)
{
    uint64_t left;
    uint64_t target = blocks_target(b, need, &left);
    for (int round = 0; round < 4 && left < b->min_free; round++) {
        uint64_t before = blocks_bytes(b);
        if (blocks_evict_to(b, target, e) != 0 || blocks_bytes(b) == before)
            break;                      /* nothing more to evict */
        target = blocks_target(b, need, &left);
    }
    if (left >= b->min_free)
        return 0;
    return sky_fail(e, ENOSPC, "block cache: %llu MiB would be left free in %s, less than "
                    "min_free = %llu MiB, and everything left to evict is open or not "
                    "uploaded yet; free space there or lower min_free in [cache]",
                    (unsigned long long)(left >> 20), b->dir,
                    (unsigned long long)(b->min_free >> 20));
}

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
             "AND ((sum IS NULL AND parts IS NULL) OR idx*%llu>=o.size));",
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

static int blocks_start(struct blocks *b, struct sky_err *e)
{
    char db_path[4096];
    snprintf(db_path, sizeof db_path, "%s/blocks.db", b->dir);
    int rc = blocks_mkdirs(b->data_dir, e);
    if (rc == 0)
        rc = cachedb_open(&b->db, db_path, "block cache", blocks_sql, Q_COUNT, e);
    if (rc == 0)
        rc = blocks_prepare_schema(b, e);
    if (rc == 0)
        rc = blocks_check_block_size(b, e);
    if (rc == 0)
        rc = blocks_drop_stray_rows(b, e);
    if (rc == 0)
        rc = blocks_measure(b, e);
    if (rc == 0)
        blocks_sweep_orphans(b);
    return rc;
}

int blocks_open(const char *dir, uint64_t block_size, uint64_t max_size, struct blocks **out,
                struct sky_err *e)
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
    int rc = b->pool && b->buckets && b->dir && b->data_dir ? blocks_start(b, e) : blocks_oom(e);
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
