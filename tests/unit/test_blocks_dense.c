/* test_blocks_dense.c - the block cache's random-dense reads
 * (cache/blocks_fetch.c): dense random reads switch to whole blocks and
 * fill the object in the background, sparse ones stay thrifty, a file
 * too large for the cache cap is not filled, and a read of cached chunks
 * never waits for a download of the same block's other chunks. */
#include "check.h"
#include "../../cache/cachedamage.h"

static struct cache_repair unit_repair;   /* the tests own their caches */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../cache/blocks.h"
#include "../../lib/clock.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* A fake cloud object.  While `hold` is set, fetches wait (counted in
 * `held`) until it is cleared. */
struct dremote {
    unsigned char *data;
    size_t size;
    int calls, held;
    bool hold;
    uint64_t bytes;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void dremote_init(struct dremote *r, size_t size, uint32_t seed)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->data = malloc(size);
    r->size = size;
    for (size_t i = 0; i < size; i++) {
        seed = seed * 1103515245u + 12345u;
        r->data[i] = (unsigned char)(seed >> 16);
    }
}

static void dremote_free(struct dremote *r)
{
    free(r->data);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
}

static int dremote_fetch(void *arg, uint64_t off, size_t len, blocks_sink_fn sink,
                         void *sink_arg, struct sky_err *e)
{
    struct dremote *r = arg;
    pthread_mutex_lock(&r->lock);
    r->calls++;
    r->held++;
    pthread_cond_broadcast(&r->cond);
    while (r->hold)
        pthread_cond_wait(&r->cond, &r->lock);
    r->held--;
    pthread_mutex_unlock(&r->lock);
    size_t n = off >= r->size ? 0 : (r->size - off < len ? r->size - off : len);
    for (size_t pos = 0; pos < n;) {
        size_t piece = n - pos < 7000 ? n - pos : 7000;
        int rc = sink(sink_arg, pos, r->data + off + pos, piece);
        if (rc)
            return sky_fail(e, -rc, "test cloud: the sink failed");
        pos += piece;
    }
    pthread_mutex_lock(&r->lock);
    r->bytes += n;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static int dremote_get(struct dremote *r, const int *field)
{
    pthread_mutex_lock(&r->lock);
    int v = *field;
    pthread_mutex_unlock(&r->lock);
    return v;
}

static void *dremote_clone(void *arg)
{
    return arg;         /* the remote outlives every fetch */
}

static void dremote_drop(void *copy)
{
    (void)copy;
}

/* A read as fs/ does it (background work allowed); 0 when it gives the
 * object's bytes. */
static int dread(struct blocks_obj *o, struct dremote *r, uint64_t off, size_t len)
{
    unsigned char *buf = malloc(len);
    size_t got = 0;
    struct sky_err e = { 0 };
    struct blocks_fetcher f = { dremote_fetch, r, dremote_clone, dremote_drop };
    int rc = blocks_read_ahead(o, off, len, buf, &got, &f, &e);
    if (rc)
        fprintf(stderr, "  blocks_read_ahead at %llu: %s\n", (unsigned long long)off, e.msg);
    int diff = rc || got != len || memcmp(buf, r->data + off, len) != 0;
    free(buf);
    return diff;
}

static struct blocks_stats dstats(struct blocks *b)
{
    struct blocks_stats s;
    memset(&s, 0, sizeof s);
    CHECK_INT(blocks_stats(b, &s, NULL), 0);
    return s;
}

/* Wait (up to 60 s: only a failure waits that long) until the cache holds
 * `bytes`; returns what it holds. */
static uint64_t wait_bytes(struct blocks *b, uint64_t bytes)
{
    uint64_t now = 0;
    for (int i = 0; i < 6000 && (now = dstats(b).bytes_present) < bytes; i++)
        usleep(10 * 1000);
    return now;
}

/* Random 4 KiB reads, one in each of `n` distinct blocks (spread over the
 * object in a scrambled order), at an offset inside the block that varies. */
static int read_spread(struct blocks_obj *o, struct dremote *r, uint64_t bs, uint64_t nblocks,
                       unsigned n)
{
    int bad = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t blk = ((uint64_t)i * 37u + 11u) % nblocks;
        uint64_t off = blk * bs + ((uint64_t)i * 69632u + 5000u) % (bs - 4 * KIB);
        bad += dread(o, r, off, 4 * KIB);
    }
    return bad;
}

/* One test's set-up: a fresh cache directory and block cache (block size
 * `bs`, cap `cap`), a fake cloud object of `size` bytes made from `seed`,
 * and that object pinned in the cache (o).  dfix_close undoes it all. */
struct dfix {
    char *dir;
    struct dremote r;
    struct blocks *b;
    struct blocks_obj *o;
    uint64_t bs, size, nblocks;
};

static void dfix_open(struct dfix *f, uint64_t bs, uint64_t size, uint64_t cap, uint32_t seed)
{
    struct sky_err e = { 0 };
    memset(f, 0, sizeof *f);
    f->dir = unit_tmpdir();
    f->bs = bs;
    f->size = size;
    f->nblocks = size / bs;
    dremote_init(&f->r, size, seed);
    CHECK_INT(blocks_open(f->dir, bs, cap, &unit_repair, &f->b, &e), 0);
    CHECK_INT(blocks_get(f->b, "c", "f", "v1", size, &f->o, &e), 0);
}

static void dfix_close(struct dfix *f)
{
    blocks_release(f->o);
    blocks_close(f->b);
    dremote_free(&f->r);
    unit_rmtree(f->dir);
    free(f->dir);
}

/* Dense random reads of a 32 MiB object (128 blocks of 256 KiB, 4 chunks
 * each) with a cache cap of 1 GiB: after the first ones (chunks), reads
 * fetch whole blocks and the rest of the object is filled in the
 * background, in runs: far fewer requests than reads, all of it cached,
 * and then readable with the cloud gone. */
TEST(blocks_dense_random_reads_fill_the_object)
{
    struct dfix f;
    dfix_open(&f, 256 * KIB, 32 * MIB, 1024ull * MIB, 7);
    CHECK_INT(read_spread(f.o, &f.r, f.bs, f.nblocks, 40), 0);
    CHECK_INT(wait_bytes(f.b, f.size), f.size);
    struct blocks_stats s = dstats(f.b);
    CHECK_INT(s.blocks_present, f.nblocks);
    CHECK_INT(s.blocks_partial, 0);
    int calls = dremote_get(&f.r, &f.r.calls);
    if (calls >= (int)f.nblocks)
        fprintf(stderr, "  %d requests for 40 reads and the fill\n", calls);
    CHECK(calls < (int)f.nblocks);              /* ~16 chunks, ~16 blocks, then runs */
    CHECK(s.fetched_ahead > 0);
    /* every byte is right, with the cloud out of the way (no more calls) */
    for (uint64_t off = 0; off < f.size; off += MIB)
        CHECK_INT(dread(f.o, &f.r, off, MIB), 0);
    CHECK_INT(dremote_get(&f.r, &f.r.calls), calls);
    blocks_cancel_ahead(f.o);
    dfix_close(&f);
}

/* The fill starts as soon as the reads turn out dense (16 of 128 blocks
 * touched: an eighth), not after a quarter of the blocks: the reader
 * does not fetch block after block on its own first. */
TEST(blocks_dense_reads_fill_from_the_switch)
{
    struct dfix f;
    dfix_open(&f, 256 * KIB, 32 * MIB, 1024ull * MIB, 10);
    CHECK_INT(read_spread(f.o, &f.r, f.bs, f.nblocks, 16), 0);
    CHECK_INT(wait_bytes(f.b, f.size), f.size);
    struct blocks_stats s = dstats(f.b);
    CHECK_INT(s.blocks_present, f.nblocks);
    CHECK(s.fetched_ahead > 0);
    int calls = dremote_get(&f.r, &f.r.calls);
    if (calls >= (int)f.nblocks / 2)
        fprintf(stderr, "  %d requests for 16 reads and the fill\n", calls);
    CHECK(calls < (int)f.nblocks / 2);         /* 16 chunks, then runs between them */
    blocks_cancel_ahead(f.o);
    dfix_close(&f);
}

/* Sparse random reads (a few, far apart, of a 32 MiB object of 128
 * blocks) keep fetching only the 64 KiB chunks they touch. */
TEST(blocks_sparse_random_reads_stay_small)
{
    struct dfix f;
    dfix_open(&f, 256 * KIB, 32 * MIB, 1024ull * MIB, 8);
    CHECK_INT(read_spread(f.o, &f.r, f.bs, f.nblocks, 12), 0);
    usleep(200 * 1000);                         /* a fill (wrong) would be under way */
    blocks_cancel_ahead(f.o);
    struct blocks_stats s = dstats(f.b);
    CHECK_INT(s.bytes_present, 12 * 64 * KIB);
    CHECK_INT(s.fetched_ahead, 0);
    CHECK_INT(dremote_get(&f.r, &f.r.calls), 12);
    dfix_close(&f);
}

/* Dense random reads of an object larger than a quarter of the cache cap
 * fetch whole blocks but do not fill the object. */
TEST(blocks_dense_reads_of_a_file_too_big_for_the_cap_do_not_fill)
{
    struct dfix f;
    dfix_open(&f, 256 * KIB, 32 * MIB, 64ull * MIB, 9);        /* 32 MiB > 64 MiB / 4 */
    CHECK_INT(read_spread(f.o, &f.r, f.bs, f.nblocks, 40), 0);
    usleep(200 * 1000);
    blocks_cancel_ahead(f.o);
    struct blocks_stats s = dstats(f.b);
    CHECK_INT(s.fetched_ahead, 0);
    CHECK(s.bytes_present < 40 * f.bs);
    CHECK(s.blocks_present - s.blocks_partial >= 20);   /* whole blocks once dense */
    dfix_close(&f);
}

struct dreader {
    struct blocks_obj *o;
    struct dremote *r;
    uint64_t off;
    size_t len;
    int diff;
    bool done;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
};

static void *dreader_main(void *arg)
{
    struct dreader *d = arg;
    int diff = dread(d->o, d->r, d->off, d->len);
    pthread_mutex_lock(d->lock);
    d->diff = diff;
    d->done = true;
    pthread_cond_broadcast(d->cond);
    pthread_mutex_unlock(d->lock);
    return NULL;
}

/* Wait up to 20 s (only a failure waits that long) for d to finish. */
static bool dreader_wait(struct dreader *d)
{
    struct timespec until = clock_deadline_ms(20 * 1000);
    pthread_mutex_lock(d->lock);
    while (!d->done && pthread_cond_timedwait(d->cond, d->lock, &until) == 0)
        ;
    bool done = d->done;
    pthread_mutex_unlock(d->lock);
    return done;
}

/* A small read of cached (verified) chunks of a block does not wait while
 * another reader downloads other chunks of that block around them. */
TEST(blocks_cached_chunk_read_does_not_wait_for_the_network)
{
    struct dfix f;
    dfix_open(&f, 4 * MIB, 8 * MIB, 1024ull * MIB, 10);
    CHECK_INT(dread(f.o, &f.r, MIB + 100, 4 * KIB), 0);        /* chunk 16, verified */
    CHECK_INT(dremote_get(&f.r, &f.r.calls), 1);

    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond;
    clock_cond_init(&cond);                     /* dreader_wait: clock_deadline_ms */
    pthread_mutex_lock(&f.r.lock);
    f.r.hold = true;
    pthread_mutex_unlock(&f.r.lock);
    /* chunks 15-17 in one request (16 comes again), held at the cloud */
    struct dreader a = { f.o, &f.r, MIB - 64 * KIB, 3 * 64 * KIB, 0, false, &lock, &cond };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, dreader_main, &a);
    for (int i = 0; i < 2000 && dremote_get(&f.r, &f.r.held) == 0; i++)
        usleep(10 * 1000);
    CHECK_INT(dremote_get(&f.r, &f.r.held), 1);
    struct dreader c = { f.o, &f.r, MIB + 1000, 8 * KIB, 0, false, &lock, &cond };
    pthread_create(&tb, NULL, dreader_main, &c);
    CHECK(dreader_wait(&c));                    /* done while the download is held */
    CHECK_INT(c.diff, 0);
    CHECK_INT(dremote_get(&f.r, &f.r.calls), 2);
    pthread_mutex_lock(&f.r.lock);
    f.r.hold = false;
    pthread_cond_broadcast(&f.r.cond);
    pthread_mutex_unlock(&f.r.lock);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK_INT(a.diff, 0);
    CHECK_INT(dstats(f.b).bytes_present, 3 * 64 * KIB);
    /* chunk 16 kept its bytes and checksum: right after a new pin too */
    struct sky_err e = { 0 };
    blocks_release(f.o);
    CHECK_INT(blocks_get(f.b, "c", "f", "v1", f.size, &f.o, &e), 0);
    CHECK_INT(dread(f.o, &f.r, MIB - 64 * KIB, 3 * 64 * KIB), 0);
    CHECK_INT(dstats(f.b).corrupt, 0);
    CHECK_INT(dremote_get(&f.r, &f.r.calls), 2);
    pthread_cond_destroy(&cond);
    dfix_close(&f);
}
