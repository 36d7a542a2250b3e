/*
 * blocks_int.h - what the block cache's own files share (private to cache/:
 * blocks.c, blocks_store.c, blocks_fetch.c, blocks_evict.c, journal.c).
 *
 * The in-memory object and cache, the background fetch queue, the SQL
 * statements' indexes, and the functions one file calls in another.
 * Everyone else uses blocks.h.
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
 */
#ifndef SKY_BLOCKS_INT_H
#define SKY_BLOCKS_INT_H

#include "blocks.h"
#include "reserve.h"

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
#include "spares.h"

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
#define BLOCKS_DENSE_MIN 8          /* blocks a random reader touches before it is dense */
#define BLOCKS_DENSE_SMALL 32       /* or network reads, for a file of fewer blocks */
#define BLOCKS_DENSE_WINDOW 30      /* seconds: the touches counted are this recent */
#define BLOCKS_FILL_SHARE 4         /* fill only a file of at most max_size / this */

/* Background fill of a random-dense object (o->fill). */
enum { FILL_NONE, FILL_ON, FILL_OFF };

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
    /* Random-dense reads (blocks_fetch.c, obj_track_dense): in the current
     * window (since rnd_since), blocks first touched by random reads, and
     * random reads that needed the network. */
    uint64_t rnd_new, rnd_miss;
    int64_t rnd_since;
    bool wide;                      /* dense: random reads fetch whole blocks */
    int fill;                       /* FILL_NONE, FILL_ON (background fill), FILL_OFF */
    uint64_t fill_next;             /* where the fill looks for absent blocks next */
    char *etag;
    /* The table `unanswered` may hold rows of this object (uploads whose
     * answer never came, journal.c blocks_note_unanswered): set by a note,
     * and at load for a dirty object; cleared by blocks_committed. */
    bool unanswered;
    /* The cloud took an upload of this object as version `landed`, but
     * blocks_committed could not record it (the cache's disk is full):
     * that version is this machine's own (blocks_is_landed), not another
     * machine's change.  In memory only; cleared by the next commit. */
    char *landed;
    uint64_t size;                  /* also read atomically without the lock */
    bool dirty;                     /* likewise */
    bool complete;                  /* dirty and recorded as all-present */
    uint64_t write_gen, prepared_gen;
    bool prepared;
    /* Made durable (journal.c obj_make_durable) at write_gen synced_gen
     * and move_gen synced_move (synced: at least once).  move_gen counts
     * renames of the object's journal entry (atomic: blocks.c bumps it
     * under b->lock, not o->lock). */
    uint64_t synced_gen, synced_move, move_gen;
    bool synced;
    bool inlined;                   /* the journal has a copy of its bytes (table inline) */
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
    struct spares *spares;                     /* new data files made ahead (spares.h) */
    uint64_t min_free;                         /* free-space floor; 0: none */
    blocks_free_fn probe;                      /* measures the free space */
    void *probe_arg;
    bool evict_stuck;       /* the last eviction left only pinned or dirty data; b->lock */
    /* The cache folder is under a disk quota (a write failed with EDQUOT,
     * which statvfs does not show): the most bytes the cache holds from
     * then on (blocks_note_quota); UINT64_MAX while none was met.  Atomic. */
    uint64_t quota_cap;
    uint64_t downloading;   /* bytes of downloads under way (room made for them); atomic */
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
    bool fill;                      /* fills the object: takes the next run when done */
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
    Q_BLK_USAGE, Q_BLK_LRU, Q_BLK_ANY, Q_INLINE_PUT, Q_INLINE_GET, Q_INLINE_DEL,
    Q_UNANSWERED_PUT, Q_UNANSWERED_HAS, Q_UNANSWERED_DEL, Q_COUNT
};

/* A dirty object up to this size is made durable with its bytes in the
 * journal itself (journal.c, obj_make_durable): one sync, of the log. */
#define BLOCKS_INLINE_MAX (128u << 10)

/* What a set of blocks holds: blocks with data (whole or in part), those
 * only in part, and bytes. */
struct blocks_held {
    int64_t blocks, partial, bytes;
};

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
    uint64_t skip;                  /* units already present: hashed, not written */
    int err;                        /* errno of a failed piece */
    XXH3_state_t hash;              /* of the current unit */
    /* Optional: called (without o->lock) as each unit completes, so that
     * it can be kept at once (0, or -errno to stop the fetch).  The units
     * it took are then `kept`: a fetch that starts over does not write
     * them again, and must bring the same bytes. */
    int (*unit_done)(struct obj_sink *s, unsigned unit);
    unsigned kept;
    bool kept_differs;              /* a fetch that started over brought other bytes for a
                                     * kept unit: those kept are suspect */
    uint64_t first;                 /* for unit_done: the block of unit 0 */
    struct sky_err *e;
};

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

/* ---- blocks_store.c -------------------------------------------------------- */

int64_t blocks_now(void);
int blocks_oom(struct sky_err *e);
uint64_t blocks_count_for(const struct blocks *b, uint64_t size);
uint64_t blocks_block_len(const struct blocks *b, uint64_t size, uint64_t idx);
uint64_t blocks_chunk_mask(const struct blocks *b, uint64_t size, uint64_t idx);
uint64_t blocks_chunk_bytes(const struct blocks *b, uint64_t size, uint64_t idx,
                            uint64_t mask);
void blocks_account(struct blocks *b, int64_t nblocks, int64_t npartial, int64_t nbytes);
void blocks_count(uint64_t *counter);
uint64_t blocks_bytes(struct blocks *b);
void blocks_data_path(const struct blocks *b, int64_t id, char *buf, size_t size);
bool blocks_is_below(const char *path, const char *dir);
int blocks_pread(int fd, void *buf, size_t len, uint64_t off);
int blocks_pwrite(int fd, const void *buf, size_t len, uint64_t off);
void blocks_punch(int fd, uint64_t off, uint64_t len);
int blocks_hash_file(int fd, uint64_t off, uint64_t len, uint64_t *sum);
uint64_t obj_block_len(const struct blocks_obj *o, uint64_t idx);
uint64_t obj_chunk_mask(const struct blocks_obj *o, uint64_t idx);
uint64_t obj_range_mask(const struct blocks_obj *o, uint64_t idx, uint64_t off,
                        uint64_t end);
void obj_account_all(struct blocks_obj *o, int sign);
void obj_clear_partial(struct blocks_obj *o, uint64_t idx);
void obj_clear_all_partial(struct blocks_obj *o);
int obj_reserve(struct blocks_obj *o, uint64_t n);
void obj_free(struct blocks_obj *o);
struct blocks_obj *obj_new(struct blocks *b, int64_t id, const char *cloud,
                           const char *path, const char *etag, uint64_t size);
void obj_set_size(struct blocks_obj *o, uint64_t size);
void obj_set_dirty(struct blocks_obj *o, bool dirty);
void obj_bind_row(struct blocks_obj *o, sqlite3_stmt *st, uint64_t idx, int64_t used);
int obj_put_rows(struct blocks_obj *o, const uint64_t *idx, size_t n, struct sky_err *e);
int obj_update(struct blocks_obj *o, int q, int64_t v2, int64_t v3, const char *doing,
               struct sky_err *e);
int obj_set_etag_row(struct blocks_obj *o, const char *etag, struct sky_err *e);
int obj_io_fail(struct blocks_obj *o, int rc, const char *doing, struct sky_err *e);
/* A write into the cache folder failed with EDQUOT (see quota_cap). */
void blocks_note_quota(struct blocks *b);
/* Would `need` more bytes take the cache past a disk quota it met?  The
 * size it keeps to then goes into *cap (may be NULL). */
bool blocks_past_quota(struct blocks *b, uint64_t need, uint64_t *cap);
int obj_drop_block(struct blocks_obj *o, uint64_t idx, struct sky_err *e);
void obj_chunk_range(const struct blocks_obj *o, uint64_t idx, unsigned c, uint64_t *off,
                     uint64_t *len);
int obj_verify_chunks(struct blocks_obj *o, uint64_t idx, uint64_t mask, struct sky_err *e);
int obj_check_cached(struct blocks_obj *o, uint64_t idx, uint64_t want, struct sky_err *e);
int obj_download(struct blocks_obj *o, uint64_t off, uint64_t len, uint64_t unit,
                 blocks_fetch_fn fetch, void *arg, struct obj_sink *s,
                 struct sky_err *e);
int obj_store_block(struct blocks_obj *o, uint64_t idx, uint64_t sum, struct sky_err *e);
/* Forget block idx in memory (its bytes are punched out; a row left
 * behind no longer matches them, so it is caught when read) (o->lock). */
void obj_forget_stored(struct blocks_obj *o, uint64_t idx);
int obj_store_chunks(struct blocks_obj *o, uint64_t idx, unsigned first, unsigned last,
                     const uint64_t *sums, struct sky_err *e);

/* ---- blocks_fetch.c -------------------------------------------------------- */

int obj_ensure_block(struct blocks_obj *o, uint64_t idx, uint64_t want,
                     blocks_fetch_fn fetch, void *arg, bool count, bool unlocked,
                     struct sky_err *e);
void obj_quiesce(struct blocks_obj *o);
struct blocks_pool *pool_new(struct blocks *b);
void pool_verify(struct blocks_job *job);
void pool_free(struct blocks_pool *p);

/* ---- blocks_evict.c -------------------------------------------------------- */

int blocks_statvfs(void *arg, const char *dir, uint64_t *out);
int blocks_push(void **arr, size_t *n, size_t *cap, size_t elem, const void *item);
int blocks_usage(struct blocks *b, int64_t id, uint64_t size, bool dirty, bool complete,
                 struct blocks_held *out, struct sky_err *e);
int blocks_drop_one(struct blocks *b, struct blocks_drop *d, const char *cloud,
                    const char *path, struct sky_err *e);
int blocks_drop_under(struct blocks *b, struct blocks_drop *d, const char *cloud,
                      const char *dir, struct sky_err *e);
void blocks_drop_apply(struct blocks *b, struct blocks_drop *d);
void blocks_drop_free(struct blocks_drop *d);
int blocks_make_room(struct blocks *b, uint64_t need, struct sky_err *e);

/* ---- journal.c ------------------------------------------------------------- */

int obj_mark_dirty(struct blocks_obj *o, struct sky_err *e);
/* Does the object hold a byte of its version (o->lock held)?  Fetches
 * queued or running hold none yet. */
bool obj_holds_any(const struct blocks_obj *o);
/* The object based on version `etag` of `size` bytes, nothing of it held
 * (o->lock held, fetches quiesced). */
int obj_reset(struct blocks_obj *o, const char *etag, uint64_t size, struct sky_err *e);
int obj_record_new_blocks(struct blocks_obj *o, uint64_t from, uint64_t to,
                          struct sky_err *e);

/* ---- blocks.c -------------------------------------------------------------- */

struct blocks_obj *blocks_table_find(struct blocks *b, const char *cloud,
                                     const char *path);
void blocks_table_del(struct blocks *b, struct blocks_obj *o);
int blocks_load_rows(struct blocks *b, struct blocks_obj *o, bool dirty,
                     struct sky_err *e);
int blocks_del_rows(struct blocks *b, int64_t id, struct sky_err *e);
/* blocks_del_rows, and the object's own row */
int blocks_delete_object_rows(struct blocks *b, int64_t id, struct sky_err *e);
int blocks_acquire(struct blocks *b, const char *cloud, const char *path,
                   const char *etag, uint64_t size, struct blocks_obj **out,
                   struct sky_err *e);

#endif
