/* test_blocks.c - the block cache (cache/blocks.c). */
#include "check.h"
#include "../../cache/cachedamage.h"

static struct cache_repair unit_repair;   /* the tests own their caches */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../../cache/blocks.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* A fake cloud object: fetch streams `data` to the sink in pieces of
 * `piece` bytes (5000 unless set: pieces that straddle chunks and blocks)
 * and counts calls.  The fault fields apply to the next fetch only. */
struct remote {
    unsigned char *data;
    size_t size;
    int calls;
    size_t bytes;
    size_t max_len;                 /* the longest range asked for */
    int down;                       /* every fetch fails */
    int delay_ms;                   /* each fetch takes this long */
    int active, max_active;         /* fetches running at once */
    size_t piece;
    size_t fail_at;                 /* fail (EIO) once this many bytes went */
    size_t cut_at;                  /* end early (a short read, no error) */
    size_t replay_at;               /* send garbage up to here, then start over */
    size_t extra;                   /* send this many bytes more than asked */
    /* The first fetch whose range holds object offset X (not its first
     * byte): fail_abs fails there; resend_abs starts over from the start
     * of its range there (a retry: the same bytes again). */
    size_t fail_abs, resend_abs;
    pthread_mutex_t lock;
};

static void remote_delay(struct remote *r)
{
    pthread_mutex_lock(&r->lock);
    int ms = r->delay_ms;
    if (++r->active > r->max_active)
        r->max_active = r->active;
    pthread_mutex_unlock(&r->lock);
    if (ms)
        usleep((useconds_t)ms * 1000);
    pthread_mutex_lock(&r->lock);
    r->active--;
    pthread_mutex_unlock(&r->lock);
}

/* Hand [from, to) of the answer to the sink, in pieces; garbage bytes
 * instead of the object's when `garbage`. */
static int remote_send(struct remote *r, const unsigned char *src, size_t from, size_t to,
                       bool garbage, blocks_sink_fn sink, void *sink_arg)
{
    size_t piece = r->piece ? r->piece : 5000;
    unsigned char junk[8192];
    memset(junk, 0xa5, sizeof junk);
    for (size_t pos = from; pos < to;) {
        size_t n = to - pos < piece ? to - pos : piece;
        if (garbage && n > sizeof junk)
            n = sizeof junk;
        int rc = sink(sink_arg, pos, garbage ? junk : src + pos, n);
        if (rc)
            return rc;
        pos += n;
    }
    return 0;
}

static int remote_fetch(void *arg, uint64_t off, size_t len, blocks_sink_fn sink,
                        void *sink_arg, struct sky_err *e)
{
    struct remote *r = arg;
    pthread_mutex_lock(&r->lock);
    r->calls++;
    if (len > r->max_len)
        r->max_len = len;
    size_t fail_at = r->fail_at, cut_at = r->cut_at, replay_at = r->replay_at;
    size_t extra = r->extra, resend_at = 0;
    r->fail_at = r->cut_at = r->replay_at = r->extra = 0;
    if (r->fail_abs > off && r->fail_abs < off + len) {
        fail_at = r->fail_abs - off;
        r->fail_abs = 0;
    }
    if (r->resend_abs > off && r->resend_abs < off + len) {
        resend_at = r->resend_abs - off;
        r->resend_abs = 0;
    }
    pthread_mutex_unlock(&r->lock);
    remote_delay(r);
    if (r->down)
        return sky_fail(e, EHOSTDOWN, "test cloud is down");
    size_t n = off >= r->size ? 0 : (r->size - off < len ? r->size - off : len);
    unsigned char *src = r->data + off, *longer = NULL;
    if (extra) {                    /* a server that ignores the range */
        longer = calloc(1, n + extra);
        memcpy(longer, src, n);
        src = longer;
        n += extra;
    }
    int rc = 0;
    if (replay_at)                  /* a failed attempt, then the retry */
        rc = remote_send(r, src, 0, replay_at < n ? replay_at : n, true, sink, sink_arg);
    if (resend_at)                  /* the same, with the object's own bytes */
        rc = remote_send(r, src, 0, resend_at < n ? resend_at : n, false, sink, sink_arg);
    if (rc == 0 && fail_at && fail_at < n) {
        rc = remote_send(r, src, 0, fail_at, false, sink, sink_arg);
        if (rc == 0)
            rc = sky_fail(e, EIO, "test cloud: connection reset");
    } else if (rc == 0) {
        rc = remote_send(r, src, 0, cut_at && cut_at < n ? cut_at : n, false, sink, sink_arg);
    }
    free(longer);
    if (rc < 0 && (!e || !e->code))
        sky_fail(e, -rc, "test cloud: the sink failed");
    pthread_mutex_lock(&r->lock);
    r->bytes += n;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void remote_init(struct remote *r, size_t size, uint32_t seed)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->data = malloc(size ? size : 1);
    r->size = size;
    for (size_t i = 0; i < size; i++)
        r->data[i] = (unsigned char)rnd(&seed);
}

static void remote_free(struct remote *r)
{
    free(r->data);
    pthread_mutex_destroy(&r->lock);
}

static struct blocks *bopen(const char *dir, uint64_t bs, uint64_t max)
{
    struct blocks *b = NULL;
    struct sky_err e = { 0 };
    int rc = blocks_open(dir, bs, max, &unit_repair, &b, &e);
    if (rc)
        fprintf(stderr, "  blocks_open: %s\n", e.msg);
    CHECK_INT(rc, 0);
    return b;
}

static struct blocks_obj *bget(struct blocks *b, const char *path, const char *etag,
                               uint64_t size)
{
    struct blocks_obj *o = NULL;
    struct sky_err e = { 0 };
    int rc = blocks_get(b, "c", path, etag, size, &o, &e);
    if (rc)
        fprintf(stderr, "  blocks_get %s: %s\n", path, e.msg);
    CHECK_INT(rc, 0);
    return o;
}

/* Read [off, off+len) and compare with `want`; returns 0 when equal. */
static int read_equals(struct blocks_obj *o, uint64_t off, size_t len, const unsigned char *want,
                       struct remote *r)
{
    unsigned char *buf = malloc(len ? len : 1);
    size_t got = 0;
    struct sky_err e = { 0 };
    int rc = blocks_read(o, off, len, buf, &got, remote_fetch, r, &e);
    if (rc)
        fprintf(stderr, "  blocks_read: %s\n", e.msg);
    int diff = rc || got != len || (len && memcmp(buf, want, len) != 0);
    free(buf);
    return diff;
}

static struct blocks_stats bstats(struct blocks *b)
{
    struct blocks_stats s;
    CHECK_INT(blocks_stats(b, &s, NULL), 0);
    return s;
}

/* The only data file of the cache (tests with one object). */
static char *only_data_file(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/data", dir);
    DIR *d = opendir(path);
    char *found = NULL;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.' && asprintf(&found, "%s/%s", path, de->d_name) < 0)
            found = NULL;
    if (d)
        closedir(d);
    return found;
}

static int count_data_files(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/data", dir);
    return unit_count_files(path);
}

/* Blocks of at most 64 KiB are one chunk: every fetch is a whole block. */
TEST(blocks_read_fetches_whole_blocks_once)
{
    const uint64_t BS = 64 * KIB;
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 8 * BS + 123, 1);
    struct blocks *b = bopen(dir, BS, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "big.bin", "v1", r.size);
    CHECK_INT(blocks_size(o), r.size);
    CHECK(!blocks_is_dirty(o));
    CHECK_STR(blocks_path(o), "big.bin");
    CHECK_STR(blocks_cloud(o), "c");

    uint64_t off = 3 * BS + 100;
    CHECK_INT(read_equals(o, off, 4 * KIB, r.data + off, &r), 0);
    CHECK_INT(r.calls, 1);
    CHECK_INT(r.bytes, BS);
    struct blocks_stats s = bstats(b);
    CHECK_INT(s.misses, 1);
    CHECK_INT(s.hits, 0);
    CHECK_INT(s.blocks_present, 1);
    CHECK_INT(s.bytes_present, BS);

    CHECK_INT(read_equals(o, off + 8 * KIB, 4 * KIB, r.data + off + 8 * KIB, &r), 0);
    CHECK_INT(r.calls, 1);
    s = bstats(b);
    CHECK_INT(s.hits, 1);

    /* across a block boundary: one more block */
    CHECK_INT(read_equals(o, 4 * BS - 10, 20, r.data + 4 * BS - 10, &r), 0);
    CHECK_INT(r.calls, 2);
    /* the short last block, then a read running past the end */
    CHECK_INT(read_equals(o, 8 * BS, 123, r.data + 8 * BS, &r), 0);
    CHECK_INT(r.calls, 3);
    CHECK_INT(r.bytes, 2 * BS + 123);
    unsigned char buf[512];
    size_t got = 1;
    CHECK_INT(blocks_read(o, 8 * BS + 100, sizeof buf, buf, &got, remote_fetch, &r, NULL), 0);
    CHECK_INT(got, 23);
    CHECK(memcmp(buf, r.data + 8 * BS + 100, 23) == 0);
    CHECK_INT(blocks_read(o, r.size + 5, sizeof buf, buf, &got, remote_fetch, &r, NULL), 0);
    CHECK_INT(got, 0);
    s = bstats(b);
    CHECK_INT(s.bytes_present, 2 * BS + 123);
    CHECK_INT(s.objects, 1);
    CHECK_INT(s.dirty_objects, 0);
    CHECK_INT(s.block_size, BS);

    /* a failing cloud: the error comes back, nothing is cached */
    r.down = 1;
    struct sky_err e = { 0 };
    CHECK_INT(blocks_read(o, 0, 10, buf, &got, remote_fetch, &r, &e), -EHOSTDOWN);
    CHECK(strstr(e.msg, "down") != NULL);
    CHECK_INT(bstats(b).blocks_present, 3);
    blocks_release(o);
    blocks_close(b);

    /* blocks survive a reopen; the cloud is not asked again */
    b = bopen(dir, BS, 1024ull * MIB);
    s = bstats(b);
    CHECK_INT(s.blocks_present, 3);
    CHECK_INT(s.bytes_present, 2 * BS + 123);
    o = bget(b, "big.bin", "v1", r.size);
    CHECK_INT(read_equals(o, 3 * BS, BS, r.data + 3 * BS, &r), 0);
    CHECK_INT(read_equals(o, 8 * BS, 123, r.data + 8 * BS, &r), 0);
    CHECK_INT(r.calls, 4);                     /* only the failed attempt above */
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

static void flip_byte(const char *file, off_t at)
{
    int fd = open(file, O_RDWR);
    unsigned char c = 0;
    CHECK(fd >= 0);
    CHECK_INT(pread(fd, &c, 1, at), 1);
    c ^= 0x5a;
    CHECK_INT(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

TEST(blocks_corrupt_block_is_refetched)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 256 * KIB, 2);
    struct blocks *b = bopen(dir, 64 * KIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "f", "v1", r.size);
    CHECK_INT(read_equals(o, 0, r.size, r.data, &r), 0);
    CHECK_INT(r.calls, 4);
    blocks_release(o);
    blocks_close(b);

    char *file = only_data_file(dir);
    CHECK(file != NULL);
    flip_byte(file, 70000);                    /* block 1 */

    b = bopen(dir, 64 * KIB, 1024ull * MIB);
    o = bget(b, "f", "v1", r.size);
    CHECK_INT(read_equals(o, 69000, 4 * KIB, r.data + 69000, &r), 0);
    CHECK_INT(r.calls, 5);
    CHECK_INT(bstats(b).corrupt, 1);
    CHECK_INT(read_equals(o, 0, r.size, r.data, &r), 0);
    CHECK_INT(r.calls, 5);
    CHECK_INT(bstats(b).corrupt, 1);
    CHECK_INT(bstats(b).blocks_present, 4);
    blocks_release(o);

    /* corrupted while the cache is open, found at the next pin */
    flip_byte(file, 200000);                   /* block 3 */
    o = bget(b, "f", "v1", r.size);
    CHECK_INT(read_equals(o, 196608, 65536, r.data + 196608, &r), 0);
    CHECK_INT(r.calls, 6);
    CHECK_INT(bstats(b).corrupt, 2);
    blocks_release(o);
    blocks_close(b);
    free(file);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* Random writes, extensions and truncations of an object partly fetched
 * from the cloud, checked against a reference buffer. */
struct model {
    unsigned char *ref;
    size_t size, cap;
};

static void model_resize(struct model *m, size_t size)
{
    if (size > m->cap) {
        m->ref = realloc(m->ref, size);
        m->cap = size;
    }
    if (size > m->size)
        memset(m->ref + m->size, 0, size - m->size);
    m->size = size;
}

static void random_ops(struct blocks_obj *o, struct model *m, struct remote *r, uint32_t seed,
                       int nops)
{
    struct sky_err e = { 0 };
    unsigned char chunk[12000];
    for (int op = 0; op < nops; op++) {
        uint32_t kind = rnd(&seed) % 10;
        if (kind < 6) {                                 /* write */
            uint64_t off = rnd(&seed) % (m->size + 9000);
            size_t len = 1 + rnd(&seed) % sizeof chunk;
            for (size_t i = 0; i < len; i++)
                chunk[i] = (unsigned char)rnd(&seed);
            int rc = blocks_write(o, off, chunk, len, remote_fetch, r, &e);
            if (rc)
                fprintf(stderr, "  write: %s\n", e.msg);
            CHECK_INT(rc, 0);
            if (off + len > m->size)
                model_resize(m, off + len);
            memcpy(m->ref + off, chunk, len);
        } else if (kind < 8) {                          /* truncate */
            size_t size = rnd(&seed) % (m->size * 3 / 2 + 2);
            CHECK_INT(blocks_truncate(o, size, remote_fetch, r, &e), 0);
            model_resize(m, size);
        } else {                                        /* read back */
            uint64_t off = m->size ? rnd(&seed) % m->size : 0;
            size_t len = 1 + rnd(&seed) % 9000;
            if (off + len > m->size)
                len = m->size - off;
            CHECK_INT(read_equals(o, off, len, m->ref + off, r), 0);
        }
        CHECK_INT(blocks_size(o), m->size);
    }
}

struct dirty_seen {
    int n;
    struct model *m;
    struct remote *r;
    const char *path;
};

static int check_dirty(void *arg, struct blocks_obj *o)
{
    struct dirty_seen *s = arg;
    s->n++;
    CHECK(blocks_is_dirty(o));
    if (s->path && strcmp(blocks_path(o), s->path) != 0)
        return 0;
    CHECK_INT(blocks_size(o), s->m->size);
    CHECK_INT(read_equals(o, 0, s->m->size, s->m->ref, s->r), 0);
    return 0;
}

static void check_upload_fd(struct blocks_obj *o, const struct model *m, struct remote *r)
{
    int fd = -1;
    struct sky_err e = { 0 };
    CHECK_INT(blocks_prepare_upload(o, remote_fetch, r, &fd, &e), 0);
    CHECK(fd >= 0);
    unsigned char *buf = malloc(m->size + 1);
    CHECK_INT(pread(fd, buf, m->size + 1, 0), (ssize_t)m->size);
    CHECK(memcmp(buf, m->ref, m->size) == 0);
    free(buf);
}

TEST(blocks_random_writes_match_reference)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 50000, 3);
    struct model m = { 0 };
    model_resize(&m, r.size);
    memcpy(m.ref, r.data, r.size);
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "dir/doc.bin", "v1", r.size);
    CHECK_INT(read_equals(o, 10000, 100, r.data + 10000, &r), 0);
    random_ops(o, &m, &r, 12345, 400);
    CHECK(blocks_is_dirty(o));
    CHECK_INT(read_equals(o, 0, m.size, m.ref, &r), 0);
    CHECK(r.calls <= 13);                       /* each cloud block at most once */
    CHECK_INT(bstats(b).dirty_objects, 1);
    blocks_release(o);
    blocks_close(b);

    /* the journal survives a reopen, with the right content */
    b = bopen(dir, 4 * KIB, 1024ull * MIB);
    struct dirty_seen seen = { 0, &m, &r, NULL };
    CHECK_INT(blocks_each_dirty(b, check_dirty, &seen, NULL), 0);
    CHECK_INT(seen.n, 1);

    /* upload: every block present in the fd, then committed is clean */
    o = bget(b, "dir/doc.bin", "ignored-while-dirty", 1);
    CHECK_INT(blocks_size(o), m.size);
    check_upload_fd(o, &m, &r);
    CHECK_INT(blocks_committed(o, "v2", NULL), 0);
    CHECK(!blocks_is_dirty(o));
    CHECK_INT(bstats(b).dirty_objects, 0);
    blocks_release(o);
    seen.n = 0;
    CHECK_INT(blocks_each_dirty(b, check_dirty, &seen, NULL), 0);
    CHECK_INT(seen.n, 0);
    blocks_close(b);

    /* clean under its new version, fully cached: no fetch needed */
    b = bopen(dir, 4 * KIB, 1024ull * MIB);
    r.down = 1;
    o = bget(b, "dir/doc.bin", "v2", m.size);
    CHECK_INT(read_equals(o, 0, m.size, m.ref, &r), 0);
    CHECK_INT(bstats(b).corrupt, 0);
    blocks_release(o);
    blocks_close(b);
    free(m.ref);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

TEST(blocks_written_since_upload_stays_dirty)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 0, 4);
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "new.txt", "", 0);
    CHECK(!blocks_is_dirty(o));
    CHECK_INT(blocks_write(o, 0, "hello", 5, remote_fetch, &r, NULL), 0);
    CHECK(blocks_is_dirty(o));
    int fd;
    CHECK_INT(blocks_prepare_upload(o, remote_fetch, &r, &fd, NULL), 0);
    CHECK_INT(blocks_write(o, 5, " world", 6, remote_fetch, &r, NULL), 0);
    CHECK_INT(blocks_committed(o, "e1", NULL), 0);
    CHECK(blocks_is_dirty(o));                 /* " world" is not uploaded yet */
    CHECK_INT(blocks_prepare_upload(o, remote_fetch, &r, &fd, NULL), 0);
    CHECK_INT(blocks_committed(o, "e2", NULL), 0);
    CHECK(!blocks_is_dirty(o));
    CHECK_INT(r.calls, 0);
    blocks_release(o);
    o = bget(b, "new.txt", "e2", 11);
    CHECK_INT(read_equals(o, 0, 11, (const unsigned char *)"hello world", &r), 0);
    CHECK_INT(r.calls, 0);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* An object of which nothing was read takes the cloud's newer version
 * (etag and size); once a byte of its version is cached, or written, it
 * refuses (ESTALE): versions are never mixed. */
TEST(blocks_take_version_only_when_nothing_is_held)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 64 * KIB, 5);
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "f.bin", "v1", 10 * KIB);
    CHECK_INT(blocks_take_version(o, "v2", r.size, NULL), 0);
    CHECK_INT((long long)blocks_size(o), (long long)r.size);
    CHECK_INT(read_equals(o, 40 * KIB, 4 * KIB, r.data + 40 * KIB, &r), 0);
    struct sky_err e = { 0 };
    CHECK_INT(blocks_take_version(o, "v3", 5, &e), -ESTALE);
    CHECK_INT((long long)blocks_size(o), (long long)r.size);
    blocks_release(o);
    o = bget(b, "g.bin", "v1", 10);
    CHECK_INT(blocks_write(o, 0, "x", 1, remote_fetch, &r, NULL), 0);
    CHECK_INT(blocks_take_version(o, "v2", 20, &e), -ESTALE);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* A fetch that finds the cloud holding another version. */
static int stale_fetch(void *arg, uint64_t off, size_t len, blocks_sink_fn sink, void *sink_arg,
                       struct sky_err *e)
{
    (void)arg, (void)off, (void)len, (void)sink, (void)sink_arg;
    return sky_fail(e, ESTALE, "test cloud: it holds another version");
}

/* A write or truncate of an object that held nothing, meeting another
 * version on the cloud before it changed a byte, leaves the object as it
 * was: clean, its size kept, so it may take the newer version and be made
 * again.  One that fetched nothing for itself (a truncate into a block
 * never read, a write of whole blocks) asks the cloud all the same, as
 * bytes of its version stay needed.  One that held a written byte stays
 * dirty. */
TEST(blocks_first_write_meeting_a_newer_version_changes_nothing)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 9000, 7);
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "f.txt", "v1", 10);
    struct sky_err e = { 0 };
    CHECK_INT(blocks_write(o, 10, "Z", 1, stale_fetch, NULL, &e), -ESTALE);
    CHECK(!blocks_is_dirty(o));
    CHECK_INT((long long)blocks_size(o), 10);
    CHECK_INT(blocks_truncate(o, 5, stale_fetch, NULL, &e), -ESTALE);
    CHECK(!blocks_is_dirty(o));
    CHECK_INT((long long)blocks_size(o), 10);
    CHECK_INT(blocks_take_version(o, "v2", r.size, NULL), 0);
    CHECK_INT(blocks_write(o, r.size, "Z", 1, remote_fetch, &r, NULL), 0);
    CHECK(blocks_is_dirty(o));
    unsigned char *want = malloc(r.size + 1);
    CHECK(want != NULL);
    memcpy(want, r.data, r.size);
    want[r.size] = 'Z';
    CHECK_INT(read_equals(o, 0, r.size + 1, want, &r), 0);
    free(want);
    blocks_release(o);

    /* a block written whole, a truncate into one never read: the same */
    o = bget(b, "g.bin", "v1", 8 * KIB);
    static char page[4 * KIB];
    memset(page, 'p', sizeof page);
    CHECK_INT(blocks_write(o, 0, page, sizeof page, stale_fetch, NULL, &e), -ESTALE);
    CHECK(!blocks_is_dirty(o));
    CHECK_INT(blocks_truncate(o, 5000, stale_fetch, NULL, &e), -ESTALE);
    CHECK(!blocks_is_dirty(o));
    CHECK_INT((long long)blocks_size(o), 8 * KIB);
    CHECK_INT(blocks_truncate(o, 0, stale_fetch, NULL, &e), 0);    /* needs none of it */
    CHECK(blocks_is_dirty(o));
    blocks_release(o);

    /* a write into block 0, then one into block 1 meets another version */
    o = bget(b, "h.bin", "v1", 8 * KIB);
    r.size = 8 * KIB;
    CHECK_INT(blocks_write(o, 1, "Y", 1, remote_fetch, &r, NULL), 0);
    CHECK_INT(blocks_write(o, 4 * KIB + 1, "Z", 1, stale_fetch, NULL, &e), -ESTALE);
    CHECK(blocks_is_dirty(o));
    CHECK_INT(blocks_take_version(o, "v2", 20, &e), -ESTALE);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

TEST(blocks_grow_past_unfetched_tail)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 10000, 15);                 /* last block: 1808 bytes */
    struct model m = { 0 };
    model_resize(&m, r.size);
    memcpy(m.ref, r.data, r.size);
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);

    /* a write far past the end: the old tail comes from the cloud, the gap is zeros */
    struct blocks_obj *o = bget(b, "w", "v", r.size);
    CHECK_INT(blocks_write(o, 20000, "Z", 1, remote_fetch, &r, NULL), 0);
    model_resize(&m, 20001);
    m.ref[20000] = 'Z';
    CHECK_INT(read_equals(o, 0, m.size, m.ref, &r), 0);
    blocks_release(o);

    /* shrink into a block never fetched, then grow: cloud bytes, then zeros */
    o = bget(b, "t", "v", r.size);
    CHECK_INT(blocks_truncate(o, 5000, remote_fetch, &r, NULL), 0);
    CHECK_INT(blocks_truncate(o, 12000, remote_fetch, &r, NULL), 0);
    model_resize(&m, 5000);
    memcpy(m.ref, r.data, 5000);
    model_resize(&m, 12000);
    CHECK_INT(read_equals(o, 0, m.size, m.ref, &r), 0);
    blocks_release(o);
    blocks_close(b);
    free(m.ref);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

TEST(blocks_truncate_then_commit_keeps_checksums)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 30000, 16);
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "f", "v1", r.size);
    CHECK_INT(read_equals(o, 0, r.size, r.data, &r), 0);
    CHECK_INT(blocks_truncate(o, 10000, remote_fetch, &r, NULL), 0);   /* mid-block */
    int fd;
    CHECK_INT(blocks_prepare_upload(o, remote_fetch, &r, &fd, NULL), 0);
    CHECK_INT(blocks_committed(o, "v2", NULL), 0);
    blocks_release(o);
    blocks_close(b);
    b = bopen(dir, 4 * KIB, 1024ull * MIB);
    r.down = 1;
    o = bget(b, "f", "v2", 10000);
    CHECK_INT(read_equals(o, 0, 10000, r.data, &r), 0);
    CHECK_INT(bstats(b).corrupt, 0);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* The child writes and dies without releasing or closing anything. */
static void crash_child(const char *dir, struct remote *r, struct model *m, struct model *fresh)
{
    struct blocks *b = NULL;
    if (blocks_open(dir, 4 * KIB, 1024ull * MIB, &unit_repair, &b, NULL))
        _exit(2);
    struct blocks_obj *o, *n;
    if (blocks_get(b, "c", "partial.bin", "v1", r->size, &o, NULL) ||
        blocks_get(b, "c", "fresh.bin", "", 0, &n, NULL))
        _exit(3);
    random_ops(o, m, r, 777, 150);
    random_ops(n, fresh, r, 778, 60);
    char path[512];
    snprintf(path, sizeof path, "%s/ref-partial", dir);
    FILE *f = fopen(path, "w");
    if (!f || fwrite(m->ref, 1, m->size, f) != m->size || fclose(f))
        _exit(4);
    snprintf(path, sizeof path, "%s/ref-fresh", dir);
    f = fopen(path, "w");
    if (!f || fwrite(fresh->ref, 1, fresh->size, f) != fresh->size || fclose(f))
        _exit(4);
    _exit(unit_failures ? 5 : 0);
}

/* objects.complete of `path` as the crashed process left it. */
static int journal_complete(const char *dir, const char *path)
{
    char db_path[512];
    snprintf(db_path, sizeof db_path, "%s/blocks.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_open(db_path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT complete FROM objects WHERE path=?1 AND dirty=1", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void load_model(const char *dir, const char *name, struct model *m)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    model_resize(m, (size_t)ftell(f));
    fseek(f, 0, SEEK_SET);
    CHECK_INT(fread(m->ref, 1, m->size, f), m->size);
    fclose(f);
}

TEST(blocks_dirty_survives_crash)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 70000, 5);
    struct model m = { 0 }, fresh = { 0 };
    model_resize(&m, r.size);
    memcpy(m.ref, r.data, r.size);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        crash_child(dir, &r, &m, &fresh);
    int status = 0;
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(m.ref);
    memset(&m, 0, sizeof m);
    load_model(dir, "ref-partial", &m);
    load_model(dir, "ref-fresh", &fresh);
    /* both journal forms: rows for a partly cached object, `complete` for a new one */
    CHECK_INT(journal_complete(dir, "partial.bin"), 0);
    CHECK_INT(journal_complete(dir, "fresh.bin"), 1);

    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    CHECK_INT(bstats(b).dirty_objects, 2);
    struct dirty_seen seen = { 0, &m, &r, "partial.bin" };
    CHECK_INT(blocks_each_dirty(b, check_dirty, &seen, NULL), 0);
    CHECK_INT(seen.n, 2);
    seen = (struct dirty_seen){ 0, &fresh, &r, "fresh.bin" };
    CHECK_INT(blocks_each_dirty(b, check_dirty, &seen, NULL), 0);
    CHECK_INT(seen.n, 2);
    /* the accounting after a crash matches a fresh count */
    struct blocks_stats before = bstats(b);
    blocks_close(b);
    b = bopen(dir, 4 * KIB, 1024ull * MIB);
    CHECK_INT(bstats(b).bytes_present, before.bytes_present);
    CHECK_INT(bstats(b).blocks_present, before.blocks_present);
    blocks_close(b);
    free(m.ref);
    free(fresh.ref);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* The data file of the object at `path`, and whether the journal holds a
 * copy of its bytes, as the crashed process left them. */
static int journal_copy(const char *dir, const char *path, char *file, size_t size)
{
    char db_path[512];
    snprintf(db_path, sizeof db_path, "%s/blocks.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int copy = -1;
    if (sqlite3_open(db_path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT o.id, (SELECT count(*) FROM inline i WHERE i.obj=o.id) "
                           "FROM objects o WHERE o.path=?1 AND o.dirty=1", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(file, size, "%s/data/%lld", dir, (long long)sqlite3_column_int64(st, 0));
            copy = sqlite3_column_int(st, 1);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return copy;
}

/* A small new file made durable carries a copy of its bytes in the
 * journal: its data file lost after a crash (as a power cut may lose a
 * file never synced) is written back from it.  A file written again after
 * that drops the copy: its data file is the truth again. */
TEST(blocks_small_file_journal_copy_stands_in_for_lost_data)
{
    char *dir = unit_tmpdir();
    static const char first[] = "closed and durable\n", later[] = "written after the close\n";
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct blocks *b = NULL;
        struct blocks_obj *o = NULL, *p = NULL;
        if (blocks_open(dir, 4 * KIB, 1024ull * MIB, &unit_repair, &b, NULL) ||
            blocks_get_new(b, "c", "small.txt", &o, NULL) ||
            blocks_write(o, 0, first, sizeof first, NULL, NULL, NULL) ||
            blocks_make_durable(o, NULL, NULL, NULL) ||
            blocks_get_new(b, "c", "again.txt", &p, NULL) ||
            blocks_write(p, 0, first, sizeof first, NULL, NULL, NULL) ||
            blocks_make_durable(p, NULL, NULL, NULL) ||
            blocks_write(p, 0, later, sizeof later, NULL, NULL, NULL))
            _exit(2);
        _exit(0);       /* a crash: nothing released, nothing closed */
    }
    int status = 0;
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char small[600], again[600];
    CHECK_INT(journal_copy(dir, "small.txt", small, sizeof small), 1);
    CHECK_INT(journal_copy(dir, "again.txt", again, sizeof again), 0);
    CHECK_INT(truncate(small, 0), 0);           /* what the crash lost */

    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "small.txt", "", 0);
    char buf[64] = { 0 };
    size_t got = 0;
    CHECK_INT(blocks_size(o), sizeof first);
    CHECK_INT(blocks_read(o, 0, sizeof buf, buf, &got, NULL, NULL, NULL), 0);
    CHECK_INT(got, sizeof first);
    CHECK_STR(buf, first);
    blocks_release(o);
    o = bget(b, "again.txt", "", 0);
    memset(buf, 0, sizeof buf);
    CHECK_INT(blocks_read(o, 0, sizeof buf, buf, &got, NULL, NULL, NULL), 0);
    CHECK_STR(buf, later);
    /* the upload's commit drops the copy */
    int fd = -1;
    CHECK_INT(blocks_prepare_upload(o, NULL, NULL, &fd, NULL), 0);
    CHECK_INT(blocks_committed(o, "v1", NULL), 0);
    blocks_release(o);
    o = bget(b, "small.txt", "", 0);
    CHECK_INT(blocks_prepare_upload(o, NULL, NULL, &fd, NULL), 0);
    CHECK_INT(blocks_committed(o, "v1", NULL), 0);
    blocks_release(o);
    blocks_close(b);
    CHECK_INT(journal_copy(dir, "small.txt", small, sizeof small), -1);   /* clean now */
    char db_path[600];
    snprintf(db_path, sizeof db_path, "%s/blocks.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_open(db_path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_prepare_v2(db, "SELECT count(*) FROM inline", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_INT(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    unit_rmtree(dir);
    free(dir);
}

TEST(blocks_etag_change_drops_old_data)
{
    char *dir = unit_tmpdir();
    struct remote r1, r2;
    remote_init(&r1, 100 * KIB, 6);
    remote_init(&r2, 60 * KIB, 7);
    struct blocks *b = bopen(dir, 16 * KIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "f", "v1", r1.size);
    CHECK_INT(read_equals(o, 0, r1.size, r1.data, &r1), 0);
    blocks_release(o);
    CHECK_INT(bstats(b).bytes_present, 100 * KIB);

    o = bget(b, "f", "v2", r2.size);
    CHECK_INT(blocks_size(o), r2.size);
    CHECK_INT(bstats(b).bytes_present, 0);
    CHECK_INT(read_equals(o, 0, r2.size, r2.data, &r2), 0);
    CHECK_INT(r2.calls, 4);
    CHECK_INT(bstats(b).bytes_present, 60 * KIB);
    CHECK_INT(bstats(b).objects, 1);

    /* a dirty object keeps its local content whatever the cloud says */
    CHECK_INT(blocks_write(o, 0, "local", 5, remote_fetch, &r2, NULL), 0);
    blocks_release(o);
    o = bget(b, "f", "v3", 5);
    CHECK(blocks_is_dirty(o));
    CHECK_INT(blocks_size(o), r2.size);
    CHECK_INT(read_equals(o, 0, 5, (const unsigned char *)"local", &r2), 0);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r1);
    remote_free(&r2);
    unit_rmtree(dir);
    free(dir);
}

static void read_all(struct blocks *b, const char *path, struct remote *r)
{
    struct blocks_obj *o = bget(b, path, "v", r->size);
    CHECK_INT(read_equals(o, 0, r->size, r->data, r), 0);
    blocks_release(o);
}

TEST(blocks_eviction_lru_skips_pinned_and_dirty)
{
    char *dir = unit_tmpdir();
    struct remote ra, rb, rc, rp;
    remote_init(&ra, 32 * KIB, 8);
    remote_init(&rb, 32 * KIB, 9);
    remote_init(&rc, 32 * KIB, 10);
    remote_init(&rp, 56 * KIB, 11);
    struct blocks *b = bopen(dir, 4 * KIB, 64 * KIB);

    /* LRU: A is the oldest and goes first */
    read_all(b, "a", &ra);
    read_all(b, "b", &rb);
    read_all(b, "c", &rc);              /* the release evicts */
    struct blocks_stats s = bstats(b);
    CHECK(s.bytes_present <= 64 * KIB);
    CHECK_INT(s.bytes_present, 64 * KIB);
    rb.down = rc.down = 1;
    read_all(b, "c", &rc);              /* still cached; used again, C then B */
    read_all(b, "b", &rb);
    CHECK_INT(rb.calls, 8);
    CHECK_INT(rc.calls, 8);
    int before = ra.calls;
    read_all(b, "a", &ra);              /* evicted: fetched again; C is now the oldest */
    CHECK_INT(ra.calls, before + 8);
    read_all(b, "b", &rb);
    CHECK_INT(rb.calls, 8);
    rb.down = rc.down = 0;
    read_all(b, "c", &rc);
    CHECK_INT(rc.calls, 16);

    /* pinned P and dirty W are never evicted, even over the limit */
    struct blocks_obj *p = bget(b, "p", "v", rp.size);
    CHECK_INT(read_equals(p, 0, rp.size, rp.data, &rp), 0);
    struct blocks_obj *w = bget(b, "w", "", 0);
    unsigned char wdata[16 * KIB];
    memset(wdata, 0xab, sizeof wdata);
    CHECK_INT(blocks_write(w, 0, wdata, sizeof wdata, remote_fetch, &rp, NULL), 0);
    blocks_release(w);                  /* dirty, unpinned */
    CHECK_INT(blocks_evict(b, NULL), 0);
    s = bstats(b);
    CHECK_INT(s.bytes_present, 72 * KIB);  /* only P (56) and W (16) are left */
    rp.down = 1;
    CHECK_INT(read_equals(p, 0, rp.size, rp.data, &rp), 0);
    w = bget(b, "w", "", 0);
    CHECK(blocks_is_dirty(w));
    CHECK_INT(read_equals(w, 0, sizeof wdata, wdata, &rp), 0);
    blocks_release(w);
    blocks_release(p);                  /* P unpinned: evictable, the release evicts */
    CHECK_INT(blocks_evict(b, NULL), 0);
    CHECK_INT(bstats(b).bytes_present, 64 * KIB);
    w = bget(b, "w", "", 0);
    CHECK_INT(read_equals(w, 0, sizeof wdata, wdata, &rp), 0);
    blocks_release(w);

    /* the totals kept while running match a fresh count */
    s = bstats(b);
    blocks_close(b);
    b = bopen(dir, 4 * KIB, 64 * KIB);
    CHECK_INT(bstats(b).bytes_present, s.bytes_present);
    CHECK_INT(bstats(b).blocks_present, s.blocks_present);
    blocks_close(b);
    remote_free(&ra);
    remote_free(&rb);
    remote_free(&rc);
    remote_free(&rp);
    unit_rmtree(dir);
    free(dir);
}

TEST(blocks_rename_and_forget)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 20 * KIB, 12);
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    read_all(b, "d%_/a", &r);
    read_all(b, "d%_/sub/b", &r);
    read_all(b, "d%_x/c", &r);          /* a neighbour, not below d%_ */
    read_all(b, "dst/old", &r);         /* under the target: replaced */
    struct blocks_obj *pinned = bget(b, "d%_/sub/p", "v", r.size);
    const char *old_path = blocks_path(pinned);
    CHECK_INT(blocks_rename(b, "c", "d%_", "dst", true, NULL), 0);
    CHECK_STR(blocks_path(pinned), "dst/sub/p");
    CHECK_STR(old_path, "d%_/sub/p");   /* the old string stays valid */
    blocks_release(pinned);

    r.down = 1;
    r.calls = 0;
    read_all(b, "dst/a", &r);
    read_all(b, "dst/sub/b", &r);
    read_all(b, "d%_x/c", &r);
    int calls = r.calls;
    CHECK_INT(calls, 0);
    r.down = 0;
    read_all(b, "d%_/a", &r);           /* nothing there any more */
    CHECK_INT(r.calls, 5);
    read_all(b, "dst/old", &r);
    CHECK_INT(r.calls, 10);
    CHECK_INT(blocks_rename(b, "c", "x", "x/y", true, NULL), -EINVAL);

    /* a single object onto another */
    CHECK_INT(blocks_rename(b, "c", "dst/a", "dst/old", false, NULL), 0);
    r.down = 1;
    read_all(b, "dst/old", &r);
    r.down = 0;

    /* forget: unpinned at once, pinned at its last release */
    int files = count_data_files(dir);
    uint64_t objects = bstats(b).objects;
    CHECK_INT(blocks_forget(b, "c", "dst/old", NULL), 0);
    CHECK_INT(count_data_files(dir), files - 1);
    CHECK_INT(bstats(b).objects, objects - 1);
    struct blocks_obj *o = bget(b, "dst/sub/b", "v", r.size);
    CHECK_INT(blocks_write(o, 0, "x", 1, remote_fetch, &r, NULL), 0);
    CHECK_INT(blocks_forget(b, "c", "dst/sub/b", NULL), 0);
    CHECK_INT(bstats(b).objects, objects - 2);
    CHECK_INT(bstats(b).dirty_objects, 0);
    CHECK_INT(count_data_files(dir), files - 1);
    CHECK_INT(read_equals(o, 0, 1, (const unsigned char *)"x", &r), 0);
    blocks_release(o);
    CHECK_INT(count_data_files(dir), files - 2);
    CHECK_INT(blocks_forget(b, "c", "not/cached", NULL), 0);

    /* totals stay right through all of it */
    struct blocks_stats s = bstats(b);
    blocks_close(b);
    b = bopen(dir, 4 * KIB, 1024ull * MIB);
    CHECK_INT(bstats(b).bytes_present, s.bytes_present);
    CHECK_INT(bstats(b).objects, s.objects);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* A new file's dirty object moved onto a file the cloud holds takes that
 * file's version as its base (its upload replaces it), once, and keeps it
 * across a reopen (the replay after a crash); its blocks stay dirty, so no
 * delta is ever taken from that version. */
TEST(blocks_new_object_rebased_onto_a_cloud_version)
{
    char *dir = unit_tmpdir();
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    struct blocks_obj *o;
    CHECK_INT(blocks_get_new(b, "c", "f.lock", &o, NULL), 0);
    CHECK_INT(blocks_write(o, 0, "new bytes", 9, NULL, NULL, NULL), 0);
    char base[64];
    blocks_base_etag(o, base, sizeof base);
    CHECK_STR(base, "");
    CHECK_INT(blocks_rename(b, "c", "f.lock", "f", false, NULL), 0);
    CHECK_INT(blocks_rebase_new(o, "\"v1\"", NULL), 0);
    blocks_base_etag(o, base, sizeof base);
    CHECK_STR(base, "\"v1\"");
    struct sky_err e = { 0 };
    CHECK_INT(blocks_rebase_new(o, "\"v2\"", &e), -EINVAL);   /* a base already */
    CHECK_INT(blocks_rebase_new(o, "", &e), -EINVAL);
    struct blocks_delta d;
    int fd;
    CHECK_INT(blocks_prepare_upload(o, NULL, NULL, &fd, NULL), 0);
    CHECK_INT(blocks_upload_delta(o, &d, NULL), 0);
    CHECK(d.etag == NULL);              /* every block dirty: no delta */
    blocks_delta_free(&d);
    blocks_release(o);
    blocks_close(b);
    b = bopen(dir, 4 * KIB, 1024ull * MIB);
    CHECK_INT(blocks_get(b, "c", "f", "\"v1\"", 9, &o, NULL), 0);
    blocks_base_etag(o, base, sizeof base);
    CHECK_STR(base, "\"v1\"");
    CHECK(blocks_is_dirty(o));
    size_t got = 0;
    char back[16] = "";
    CHECK_INT(blocks_read(o, 0, 9, back, &got, NULL, NULL, NULL), 0);
    CHECK_INT(memcmp(back, "new bytes", 9), 0);
    blocks_release(o);
    blocks_close(b);
    unit_rmtree(dir);
    free(dir);
}

struct reader {
    struct blocks *b;
    struct remote *r;
    uint32_t seed;
    int bad;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    struct blocks_obj *o;
    if (blocks_get(rd->b, "c", "shared", "v", rd->r->size, &o, NULL)) {
        rd->bad++;
        return NULL;
    }
    for (int i = 0; i < 200; i++) {
        uint64_t off = rnd(&rd->seed) % rd->r->size;
        size_t len = 1 + rnd(&rd->seed) % (100 * KIB);
        if (off + len > rd->r->size)
            len = rd->r->size - off;
        rd->bad += read_equals(o, off, len, rd->r->data + off, rd->r);
    }
    blocks_release(o);
    return NULL;
}

TEST(blocks_concurrent_readers_fetch_each_block_once)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 2 * MIB, 13);
    struct blocks *b = bopen(dir, 64 * KIB, 1024ull * MIB);
    pthread_t t[8];
    struct reader rd[8];
    for (int i = 0; i < 8; i++) {
        rd[i] = (struct reader){ b, &r, 100u + (uint32_t)i, 0 };
        pthread_create(&t[i], NULL, reader_main, &rd[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(rd[i].bad, 0);
    }
    CHECK_INT(r.calls, 32);
    CHECK_INT(r.bytes, 2 * MIB);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

TEST(blocks_open_rejects_bad_block_size)
{
    char *dir = unit_tmpdir();
    struct blocks *b = NULL;
    struct sky_err e = { 0 };
    CHECK_INT(blocks_open(dir, 3 * MIB, MIB, &unit_repair, &b, &e), -EINVAL);
    CHECK_INT(blocks_open(dir, 16 * MIB, MIB, &unit_repair, &b, &e), -EINVAL);
    /* a new block size drops clean data but keeps complete dirty files */
    struct remote r;
    remote_init(&r, 10 * KIB, 14);
    b = bopen(dir, 4 * KIB, MIB);
    read_all(b, "clean", &r);
    struct blocks_obj *o = bget(b, "new", "", 0);
    CHECK_INT(blocks_write(o, 0, "abc", 3, remote_fetch, &r, NULL), 0);
    blocks_release(o);
    blocks_close(b);
    b = bopen(dir, 8 * KIB, MIB);
    CHECK_INT(bstats(b).objects, 1);
    CHECK_INT(bstats(b).dirty_objects, 1);
    r.down = 1;
    o = bget(b, "new", "", 0);
    CHECK_INT(read_equals(o, 0, 3, (const unsigned char *)"abc", &r), 0);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* ---- readahead and parallel fetches ---------------------------------------- */

static int remote_calls(struct remote *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->calls;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* The remote outlives every fetch in these tests: the "copy" is itself. */
static void *remote_clone(void *arg)
{
    return arg;
}

static void remote_drop(void *copy)
{
    (void)copy;
}

/* A read with readahead (background work allowed) that must give `want`. */
static int read_ahead_gives(struct blocks_obj *o, uint64_t off, size_t len,
                            const unsigned char *want, struct remote *r)
{
    unsigned char *buf = malloc(len ? len : 1);
    size_t got = 0;
    struct sky_err e = { 0 };
    struct blocks_fetcher f = { remote_fetch, r, remote_clone, remote_drop };
    int rc = blocks_read_ahead(o, off, len, buf, &got, &f, &e);
    if (rc)
        fprintf(stderr, "  blocks_read_ahead: %s\n", e.msg);
    int diff = rc || got != len || memcmp(buf, want, len) != 0;
    free(buf);
    return diff;
}

static int read_ahead_equals(struct blocks_obj *o, uint64_t off, size_t len, struct remote *r)
{
    return read_ahead_gives(o, off, len, r->data + off, r);
}

/* Wait until no fetch of the remote runs and none started for 50 ms. */
static void remote_settle(struct remote *r)
{
    int before;
    do {
        before = remote_calls(r);
        usleep(50 * 1000);
        pthread_mutex_lock(&r->lock);
        int active = r->active;
        pthread_mutex_unlock(&r->lock);
        if (active)
            before = -1;
    } while (before != remote_calls(r));
}

struct block_reader {
    struct blocks_obj *o;
    struct remote *r;
    uint64_t off;
    int bad;
};

static void *block_reader_main(void *arg)
{
    struct block_reader *br = arg;
    br->bad = read_equals(br->o, br->off, 1000, br->r->data + br->off, br->r);
    return NULL;
}

/* Readers of distinct blocks of one object run their fetches at once;
 * readers of one block share one fetch. */
static int run_block_readers(struct blocks_obj *o, struct remote *r, const uint64_t *offs, int n)
{
    pthread_t t[8];
    struct block_reader br[8];
    int bad = 0;
    for (int i = 0; i < n; i++) {
        br[i] = (struct block_reader){ o, r, offs[i], 0 };
        pthread_create(&t[i], NULL, block_reader_main, &br[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        bad += br[i].bad;
    }
    return bad;
}

TEST(blocks_distinct_blocks_fetch_in_parallel)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, MIB, 21);
    r.delay_ms = 100;
    struct blocks *b = bopen(dir, 64 * KIB, 64 * MIB);
    struct blocks_obj *o = bget(b, "par", "v1", r.size);
    const uint64_t offs[4] = { 1 * 64 * KIB, 5 * 64 * KIB, 9 * 64 * KIB, 13 * 64 * KIB };
    CHECK_INT(run_block_readers(o, &r, offs, 4), 0);
    CHECK_INT(r.calls, 4);
    CHECK_INT(r.max_active, 4);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

TEST(blocks_two_readers_of_one_block_share_one_fetch)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, MIB, 22);
    r.delay_ms = 100;
    struct blocks *b = bopen(dir, 64 * KIB, 64 * MIB);
    struct blocks_obj *o = bget(b, "one", "v1", r.size);
    const uint64_t offs[4] = { 3 * 64 * KIB, 3 * 64 * KIB + 5000, 3 * 64 * KIB + 60000,
                               3 * 64 * KIB + 100 };
    CHECK_INT(run_block_readers(o, &r, offs, 4), 0);
    CHECK_INT(r.calls, 1);
    CHECK_INT(r.max_active, 1);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

TEST(blocks_sequential_reads_fetch_ahead_in_parallel)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 4 * MIB, 23);
    r.delay_ms = 20;
    struct blocks *b = bopen(dir, 64 * KIB, 64 * MIB);
    struct blocks_obj *o = bget(b, "seq", "v1", r.size);
    int bad = 0;
    for (uint64_t off = 0; off < r.size; off += 16 * KIB)
        bad += read_ahead_equals(o, off, 16 * KIB, &r);
    CHECK_INT(bad, 0);
    remote_settle(&r);
    CHECK_INT(r.bytes, r.size);             /* every block once */
    CHECK(r.calls < 64);                    /* runs of blocks in one request */
    CHECK(r.max_active > 1);                /* fetched ahead in parallel */
    CHECK(r.max_active <= 5);               /* 4 ahead + the reader's own */
    struct blocks_stats st = bstats(b);
    CHECK(st.fetched_ahead >= 32);
    CHECK_INT(st.misses + st.hits, 256);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* A sequential reader of a cached object finds the blocks ahead checked
 * on the background threads; corrupt ones among them are dropped and
 * fetched again, never served. */
TEST(blocks_cached_blocks_are_checked_ahead_of_a_reader)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 4 * MIB, 24);
    struct blocks *b = bopen(dir, 64 * KIB, 64 * MIB);
    read_all(b, "warm", &r);
    blocks_close(b);
    int calls = r.calls;

    char *file = only_data_file(dir);
    CHECK(file != NULL);
    flip_byte(file, 20 * 64 * KIB + 5);         /* block 20 */
    flip_byte(file, 41 * 64 * KIB + 7000);      /* block 41 */
    b = bopen(dir, 64 * KIB, 64 * MIB);
    struct blocks_obj *o = bget(b, "warm", "v", r.size);
    int bad = read_ahead_equals(o, 0, 16 * KIB, &r);
    blocks_cancel_ahead(o);                     /* waits for the check it queued */
    CHECK_INT(bstats(b).verified_ahead, 1);     /* block 1, as the window is 1 */
    for (uint64_t off = 16 * KIB; off < r.size; off += 16 * KIB)
        bad += read_ahead_equals(o, off, 16 * KIB, &r);
    CHECK_INT(bad, 0);
    blocks_cancel_ahead(o);
    remote_settle(&r);
    struct blocks_stats st = bstats(b);
    CHECK_INT(st.corrupt, 2);
    CHECK_INT(r.calls, calls + 2);  /* the two corrupt blocks again, whoever checked them */
    CHECK_INT(st.blocks_present, 64);
    blocks_release(o);
    blocks_close(b);
    free(file);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* Writes that land while the blocks ahead of a reader are being checked
 * (how the two interleave is up to the threads): nothing written is lost
 * or taken for corruption, nothing is fetched again. */
TEST(blocks_writes_during_checks_ahead_keep_their_bytes)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 4 * MIB, 26);
    struct blocks *b = bopen(dir, 64 * KIB, 64 * MIB);
    read_all(b, "mix", &r);
    unsigned char *want = malloc(r.size);
    memcpy(want, r.data, r.size);
    unsigned char patch[3000];
    int calls = r.calls, bad = 0;
    uint32_t seed = 7;
    struct blocks_obj *o = bget(b, "mix", "v", r.size);
    for (uint64_t off = 0; off < r.size; off += 16 * KIB) {
        bad += read_ahead_gives(o, off, 16 * KIB, want + off, &r);   /* queues checks */
        if (off % (128 * KIB))
            continue;
        /* a patch across a block boundary a few blocks ahead, maybe being checked */
        seed = seed * 1103515245u + 12345u;
        uint64_t at = off + (1 + (seed >> 16) % 4) * 64 * KIB - 1000;
        if (at + sizeof patch > r.size)
            continue;
        memset(patch, (int)(seed >> 24), sizeof patch);
        CHECK_INT(blocks_write(o, at, patch, sizeof patch, remote_fetch, &r, NULL), 0);
        memcpy(want + at, patch, sizeof patch);
    }
    blocks_cancel_ahead(o);
    CHECK_INT(read_equals(o, 0, r.size, want, &r), 0);
    blocks_release(o);
    CHECK_INT(bad, 0);
    CHECK_INT(bstats(b).corrupt, 0);
    CHECK_INT(r.calls, calls);          /* nothing taken for corrupt and fetched */
    blocks_close(b);
    free(want);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

TEST(blocks_random_reads_fetch_only_the_block_needed)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 4 * MIB, 24);
    struct blocks *b = bopen(dir, 64 * KIB, 64 * MIB);
    struct blocks_obj *o = bget(b, "rnd", "v1", r.size);
    const uint64_t blocks[] = { 10, 3, 40, 25, 60, 7, 33 };
    int bad = 0;
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        bad += read_ahead_equals(o, blocks[i] * 64 * KIB + 100, 4 * KIB, &r);
        remote_settle(&r);
        CHECK_INT(r.calls, (int)i + 1);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(bstats(b).fetched_ahead, 0);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* A write into blocks being fetched ahead wins over the cloud's bytes;
 * releasing and closing with fetches under way is clean. */
TEST(blocks_write_during_readahead_keeps_written_bytes)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 2 * MIB, 25);
    r.delay_ms = 30;
    struct blocks *b = bopen(dir, 64 * KIB, 64 * MIB);
    struct blocks_obj *o = bget(b, "rw", "v1", r.size);
    int bad = 0;
    for (uint64_t off = 0; off < 4 * 64 * KIB; off += 32 * KIB)
        bad += read_ahead_equals(o, off, 32 * KIB, &r);
    CHECK_INT(bad, 0);
    unsigned char *mine = malloc(2 * 64 * KIB);
    memset(mine, 0xA5, 2 * 64 * KIB);
    CHECK_INT(blocks_write(o, 5 * 64 * KIB, mine, 2 * 64 * KIB, remote_fetch, &r, NULL), 0);
    CHECK_INT(read_equals(o, 5 * 64 * KIB, 2 * 64 * KIB, mine, &r), 0);
    remote_settle(&r);
    CHECK_INT(read_equals(o, 5 * 64 * KIB, 2 * 64 * KIB, mine, &r), 0);
    /* readahead again, then let go with fetches still queued or running */
    r.delay_ms = 50;
    struct blocks_obj *o2 = bget(b, "rw2", "v1", r.size);
    for (uint64_t off = 0; off < 2 * 64 * KIB; off += 32 * KIB)
        bad += read_ahead_equals(o2, off, 32 * KIB, &r);
    CHECK_INT(bad, 0);
    blocks_release(o2);
    blocks_release(o);
    blocks_close(b);
    free(mine);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

TEST(blocks_cancel_ahead_waits_for_background_fetches)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 2 * MIB, 26);
    r.delay_ms = 50;
    struct blocks *b = bopen(dir, 64 * KIB, 64 * MIB);
    struct blocks_obj *o = bget(b, "cancel", "v1", r.size);
    int bad = 0;
    for (uint64_t off = 0; off < 3 * 64 * KIB; off += 64 * KIB)
        bad += read_ahead_equals(o, off, 64 * KIB, &r);
    CHECK_INT(bad, 0);
    blocks_cancel_ahead(o);
    pthread_mutex_lock(&r.lock);
    CHECK_INT(r.active, 0);
    int calls = r.calls;
    pthread_mutex_unlock(&r.lock);
    usleep(100 * 1000);
    CHECK_INT(remote_calls(&r), calls);     /* nothing left queued */
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* ---- partial blocks: random reads fetch chunks ------------------------------- */

/* Random reads of 4 MiB blocks fetch 64 KiB chunks: only the chunks a read
 * touches, each request one run of chunks; re-reads are hits; the short
 * last chunk is counted at its real size; everything survives a reopen. */
TEST(blocks_random_reads_fetch_only_needed_chunks)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 16 * MIB + 1000, 31);
    struct blocks *b = bopen(dir, 4 * MIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "big", "v1", r.size);

    CHECK_INT(read_equals(o, 5 * MIB + 100, 4 * KIB, r.data + 5 * MIB + 100, &r), 0);
    CHECK_INT(r.calls, 1);
    CHECK_INT(r.bytes, 64 * KIB);
    struct blocks_stats s = bstats(b);
    CHECK_INT(s.blocks_present, 1);
    CHECK_INT(s.blocks_partial, 1);
    CHECK_INT(s.bytes_present, 64 * KIB);
    CHECK_INT(s.misses, 1);

    /* the same chunk again: a hit, no request */
    CHECK_INT(read_equals(o, 5 * MIB + 30000, 100, r.data + 5 * MIB + 30000, &r), 0);
    CHECK_INT(r.calls, 1);
    CHECK_INT(bstats(b).hits, 1);

    /* across a chunk boundary: two chunks in one request */
    uint64_t at = 9 * MIB + 64 * KIB - 100;
    CHECK_INT(read_equals(o, at, 200, r.data + at, &r), 0);
    CHECK_INT(r.calls, 2);
    CHECK_INT(r.bytes, 3 * 64 * KIB);

    /* a kernel-sized 128 KiB read, not aligned: three chunks, one request */
    at = 13 * MIB + 10000;
    CHECK_INT(read_equals(o, at, 128 * KIB, r.data + at, &r), 0);
    CHECK_INT(r.calls, 3);
    CHECK_INT(r.bytes, 6 * 64 * KIB);

    /* the object's short last chunk: all of its block, so the block is whole */
    CHECK_INT(read_equals(o, 16 * MIB + 500, 500, r.data + 16 * MIB + 500, &r), 0);
    CHECK_INT(r.calls, 4);
    CHECK_INT(r.bytes, 6 * 64 * KIB + 1000);
    s = bstats(b);
    CHECK_INT(s.blocks_present, 4);
    CHECK_INT(s.blocks_partial, 3);
    CHECK_INT(s.bytes_present, 6 * 64 * KIB + 1000);
    blocks_release(o);
    blocks_close(b);

    /* reopen: the same totals, every chunk read without the cloud */
    b = bopen(dir, 4 * MIB, 1024ull * MIB);
    s = bstats(b);
    CHECK_INT(s.blocks_present, 4);
    CHECK_INT(s.blocks_partial, 3);
    CHECK_INT(s.bytes_present, 6 * 64 * KIB + 1000);
    r.down = 1;
    o = bget(b, "big", "v1", r.size);
    CHECK_INT(read_equals(o, 5 * MIB, 64 * KIB, r.data + 5 * MIB, &r), 0);
    CHECK_INT(read_equals(o, 9 * MIB, 128 * KIB, r.data + 9 * MIB, &r), 0);
    CHECK_INT(read_equals(o, 13 * MIB, 192 * KIB, r.data + 13 * MIB, &r), 0);
    CHECK_INT(read_equals(o, 16 * MIB, 1000, r.data + 16 * MIB, &r), 0);
    CHECK_INT(r.calls, 4);
    CHECK_INT(bstats(b).corrupt, 0);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* A corrupt chunk is dropped and fetched again, never served; the other
 * chunks of its block stay. */
TEST(blocks_corrupt_chunk_is_refetched)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 8 * MIB, 32);
    struct blocks *b = bopen(dir, 4 * MIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "f", "v1", r.size);
    CHECK_INT(read_equals(o, MIB + 100, 100, r.data + MIB + 100, &r), 0);
    CHECK_INT(read_equals(o, 2 * MIB + 100, 100, r.data + 2 * MIB + 100, &r), 0);
    CHECK_INT(r.calls, 2);
    blocks_release(o);
    blocks_close(b);

    char *file = only_data_file(dir);
    CHECK(file != NULL);
    flip_byte(file, 2 * MIB + 5000);

    b = bopen(dir, 4 * MIB, 1024ull * MIB);
    o = bget(b, "f", "v1", r.size);
    CHECK_INT(read_equals(o, 2 * MIB, 64 * KIB, r.data + 2 * MIB, &r), 0);
    CHECK_INT(r.calls, 3);
    CHECK_INT(bstats(b).corrupt, 1);
    CHECK_INT(bstats(b).bytes_present, 2 * 64 * KIB);
    CHECK_INT(read_equals(o, MIB, 64 * KIB, r.data + MIB, &r), 0);
    CHECK_INT(read_equals(o, 2 * MIB, 64 * KIB, r.data + 2 * MIB, &r), 0);
    CHECK_INT(r.calls, 3);
    CHECK_INT(bstats(b).corrupt, 1);
    blocks_release(o);

    /* corrupted while the cache is open, found at the next pin */
    flip_byte(file, MIB + 64 * KIB - 1);
    o = bget(b, "f", "v1", r.size);
    CHECK_INT(read_equals(o, MIB + 64 * KIB - 10, 10, r.data + MIB + 64 * KIB - 10, &r), 0);
    CHECK_INT(r.calls, 4);
    CHECK_INT(bstats(b).corrupt, 2);
    blocks_release(o);
    blocks_close(b);
    free(file);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* A block whose chunks all arrive becomes a whole block (one checksum);
 * a sequential read of a partial block fetches only what is missing. */
TEST(blocks_partial_block_becomes_whole)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 3 * MIB, 33);
    struct blocks *b = bopen(dir, MIB, 1024ull * MIB);       /* 16 chunks a block */
    struct blocks_obj *o = bget(b, "f", "v1", r.size);
    for (int c = 15; c >= 0; c--) {                          /* block 1, chunk by chunk */
        uint64_t at = MIB + (uint64_t)c * 64 * KIB + 100;
        CHECK_INT(read_equals(o, at, 100, r.data + at, &r), 0);
    }
    CHECK_INT(r.calls, 16);
    CHECK_INT(r.bytes, MIB);
    struct blocks_stats s = bstats(b);
    CHECK_INT(s.blocks_present, 1);
    CHECK_INT(s.blocks_partial, 0);
    CHECK_INT(s.bytes_present, MIB);

    /* block 2: chunks 3 and 9 by random reads, then read on from where the
     * last read ended: the sequential reader fetches chunks 0-15 but 3 and 9
     * as the run 0..15 in one request, and the block is whole */
    uint64_t at = 2 * MIB + 3 * 64 * KIB;
    CHECK_INT(read_equals(o, at, 10, r.data + at, &r), 0);
    at = 2 * MIB + 9 * 64 * KIB;
    CHECK_INT(read_equals(o, at, 10, r.data + at, &r), 0);
    CHECK_INT(r.calls, 18);
    CHECK_INT(bstats(b).blocks_partial, 1);
    at += 10;
    CHECK_INT(read_equals(o, at, 64 * KIB, r.data + at, &r), 0);
    CHECK_INT(r.calls, 19);
    s = bstats(b);
    CHECK_INT(s.blocks_present, 2);
    CHECK_INT(s.blocks_partial, 0);
    CHECK_INT(s.bytes_present, 2 * MIB);
    blocks_release(o);
    blocks_close(b);

    /* whole blocks are checked as one: corrupt byte in a promoted block */
    char *file = only_data_file(dir);
    flip_byte(file, MIB + 700000);
    b = bopen(dir, MIB, 1024ull * MIB);
    CHECK_INT(bstats(b).blocks_partial, 0);
    o = bget(b, "f", "v1", r.size);
    int calls = r.calls;
    CHECK_INT(read_equals(o, 2 * MIB, MIB, r.data + 2 * MIB, &r), 0);
    CHECK_INT(r.calls, calls);
    CHECK_INT(read_equals(o, MIB + 5, 10, r.data + MIB + 5, &r), 0);
    CHECK_INT(bstats(b).corrupt, 1);
    CHECK_INT(r.calls, calls + 1);
    CHECK_INT(read_equals(o, MIB, MIB, r.data + MIB, &r), 0);
    blocks_release(o);
    blocks_close(b);
    free(file);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* Writes into partial blocks: a block partly overwritten gets its missing
 * chunks first; one overwritten whole needs nothing, and its journal row
 * must say so (a crash keeps the written bytes, not the old chunks). */
TEST(blocks_write_into_partial_block)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 4 * MIB, 34);
    struct model m = { 0 };
    model_resize(&m, r.size);
    memcpy(m.ref, r.data, r.size);
    struct blocks *b = bopen(dir, MIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "f", "v1", r.size);
    CHECK_INT(read_equals(o, 300 * KIB, 10, r.data + 300 * KIB, &r), 0);        /* block 0 */
    CHECK_INT(read_equals(o, MIB + 500 * KIB, 10, r.data + MIB + 500 * KIB, &r), 0);
    CHECK_INT(r.calls, 2);

    /* 100 bytes into a chunk not cached: the rest of block 0 comes first */
    unsigned char patch[100];
    memset(patch, 0x11, sizeof patch);
    CHECK_INT(blocks_write(o, 700 * KIB, patch, sizeof patch, remote_fetch, &r, NULL), 0);
    memcpy(m.ref + 700 * KIB, patch, sizeof patch);
    CHECK_INT(r.calls, 3);
    CHECK_INT(r.bytes, MIB + 128 * KIB);    /* chunks 0..15 as one run (4 again) */

    /* block 1 overwritten whole: no fetch */
    unsigned char *whole = malloc(MIB);
    memset(whole, 0x22, MIB);
    CHECK_INT(blocks_write(o, MIB, whole, MIB, remote_fetch, &r, NULL), 0);
    memcpy(m.ref + MIB, whole, MIB);
    CHECK_INT(r.calls, 3);
    struct blocks_stats s = bstats(b);
    CHECK_INT(s.blocks_partial, 0);
    CHECK_INT(s.bytes_present, 2 * MIB);
    CHECK_INT(read_equals(o, 0, m.size, m.ref, &r), 0);
    blocks_release(o);
    blocks_close(b);

    /* reopened as after a crash: the journal hands back the written bytes */
    b = bopen(dir, MIB, 1024ull * MIB);
    struct dirty_seen seen = { 0, &m, &r, NULL };
    CHECK_INT(blocks_each_dirty(b, check_dirty, &seen, NULL), 0);
    CHECK_INT(seen.n, 1);
    blocks_close(b);
    free(whole);
    free(m.ref);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* Random writes, truncates and reads over 1 MiB blocks of 16 chunks:
 * partial blocks meet every change of content and size. */
TEST(blocks_random_ops_over_partial_blocks_match_reference)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 3 * MIB + 5000, 35);
    struct model m = { 0 };
    model_resize(&m, r.size);
    memcpy(m.ref, r.data, r.size);
    struct blocks *b = bopen(dir, MIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "p", "v1", r.size);
    for (uint64_t at = 100; at < r.size; at += 300 * KIB)
        CHECK_INT(read_equals(o, at, 10, r.data + at, &r), 0);
    CHECK(bstats(b).blocks_partial > 0);
    random_ops(o, &m, &r, 4242, 300);
    CHECK_INT(read_equals(o, 0, m.size, m.ref, &r), 0);
    struct blocks_stats s = bstats(b);
    blocks_release(o);
    blocks_close(b);

    b = bopen(dir, MIB, 1024ull * MIB);
    CHECK_INT(bstats(b).bytes_present, s.bytes_present);
    CHECK_INT(bstats(b).blocks_partial, s.blocks_partial);
    struct dirty_seen seen = { 0, &m, &r, NULL };
    CHECK_INT(blocks_each_dirty(b, check_dirty, &seen, NULL), 0);
    CHECK_INT(seen.n, 1);
    o = bget(b, "p", "ignored-while-dirty", 1);
    check_upload_fd(o, &m, &r);
    CHECK_INT(blocks_committed(o, "v2", NULL), 0);
    CHECK_INT(bstats(b).blocks_partial, 0);
    blocks_release(o);
    blocks_close(b);
    free(m.ref);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* Eviction counts partial blocks at their real size. */
TEST(blocks_eviction_counts_partial_bytes)
{
    char *dir = unit_tmpdir();
    struct remote ra, rb;
    remote_init(&ra, 8 * MIB, 36);
    remote_init(&rb, 8 * MIB, 37);
    struct blocks *b = bopen(dir, MIB, 256 * KIB);
    struct blocks_obj *o = bget(b, "a", "v", ra.size);
    for (int i = 0; i < 3; i++)                              /* three chunks, oldest first */
        CHECK_INT(read_equals(o, (uint64_t)(2 * i + 1) * MIB, 10,
                              ra.data + (2 * i + 1) * MIB, &ra), 0);
    blocks_release(o);
    CHECK_INT(bstats(b).bytes_present, 192 * KIB);
    o = bget(b, "b", "v", rb.size);
    CHECK_INT(read_equals(o, MIB, 10, rb.data + MIB, &rb), 0);
    CHECK_INT(read_equals(o, 3 * MIB, 10, rb.data + 3 * MIB, &rb), 0);
    blocks_release(o);                                       /* 320 KiB: evicts one chunk */
    struct blocks_stats s = bstats(b);
    CHECK_INT(s.bytes_present, 256 * KIB);
    CHECK_INT(s.blocks_present, 4);
    CHECK_INT(s.blocks_partial, 4);
    ra.down = rb.down = 1;
    o = bget(b, "a", "v", ra.size);
    CHECK_INT(read_equals(o, 3 * MIB, 10, ra.data + 3 * MIB, &ra), 0);
    CHECK_INT(read_equals(o, 5 * MIB, 10, ra.data + 5 * MIB, &ra), 0);
    CHECK(read_equals(o, MIB, 10, ra.data + MIB, &ra) != 0);     /* the evicted one */
    blocks_release(o);
    blocks_close(b);
    b = bopen(dir, MIB, 256 * KIB);
    CHECK_INT(bstats(b).bytes_present, s.bytes_present);
    CHECK_INT(bstats(b).blocks_partial, s.blocks_partial);
    blocks_close(b);
    remote_free(&ra);
    remote_free(&rb);
    unit_rmtree(dir);
    free(dir);
}

/* ---- the free-space floor (min_free) ------------------------------------------ */

/* A fake disk holding only the cache: free = capacity - bytes cached. */
struct fake_disk {
    struct blocks *b;
    uint64_t capacity;
};

static int fake_free(void *arg, const char *dir, uint64_t *out)
{
    struct fake_disk *d = arg;
    struct blocks_stats s;
    if (blocks_stats(d->b, &s, NULL))
        return -EIO;
    *out = d->capacity > s.bytes_present ? d->capacity - s.bytes_present : 0;
    return 0;
}

/* Has the cache still got [off, off+len) of `path`?  (read with the cloud down) */
static bool still_cached(struct blocks *b, const char *path, struct remote *r, uint64_t off,
                         size_t len)
{
    int down = r->down;
    r->down = 1;
    struct blocks_obj *o = bget(b, path, "v", r->size);
    unsigned char *buf = malloc(len);
    size_t got = 0;
    bool cached = blocks_read(o, off, len, buf, &got, remote_fetch, r, NULL) == 0 &&
                  got == len && memcmp(buf, r->data + off, len) == 0;
    free(buf);
    blocks_release(o);
    r->down = down;
    return cached;
}

TEST(blocks_min_free_evicts_clean_data_then_refuses_writes)
{
    char *dir = unit_tmpdir();
    struct remote ra, rb, rc;
    remote_init(&ra, 4 * MIB, 41);
    remote_init(&rb, 4 * MIB, 42);
    remote_init(&rc, 4 * MIB, 43);
    struct blocks *b = bopen(dir, MIB, 1024ull * MIB);
    struct fake_disk disk = { b, 16 * MIB };
    blocks_set_floor(b, 4 * MIB, fake_free, &disk);
    read_all(b, "a", &ra);
    read_all(b, "b", &rb);
    CHECK_INT(bstats(b).bytes_present, 8 * MIB);

    /* 5 MiB more would leave 3 MiB free: the oldest clean block goes first */
    unsigned char *data = malloc(9 * MIB);
    memset(data, 0x5c, 9 * MIB);
    struct blocks_obj *w = bget(b, "w", "", 0);
    CHECK_INT(blocks_write(w, 0, data, 5 * MIB, remote_fetch, &ra, NULL), 0);
    CHECK_INT(bstats(b).bytes_present, 12 * MIB);
    CHECK(!still_cached(b, "a", &ra, 0, 10));
    CHECK(still_cached(b, "a", &ra, MIB, 10));
    CHECK(still_cached(b, "b", &rb, 0, rb.size));

    /* 9 MiB more cannot fit above the floor even with every clean block
     * gone: refused, the written file untouched */
    struct blocks_obj *x = bget(b, "x", "", 0);
    struct sky_err e = { 0 };
    CHECK_INT(blocks_write(x, 0, data, 9 * MIB, remote_fetch, &ra, &e), -ENOSPC);
    CHECK(strstr(e.msg, dir) != NULL);
    CHECK(strstr(e.msg, "min_free = 4 MiB") != NULL);
    CHECK(!blocks_is_dirty(x));
    CHECK_INT(blocks_size(x), 0);
    struct blocks_stats s = bstats(b);
    CHECK_INT(s.bytes_present, 5 * MIB);                 /* only the dirty file is left */
    CHECK_INT(s.dirty_objects, 1);
    CHECK_INT(read_equals(w, 0, 5 * MIB, data, &ra), 0);
    /* a write that fits above the floor goes through */
    CHECK_INT(blocks_write(x, 0, data, 2 * MIB, remote_fetch, &ra, NULL), 0);
    blocks_release(x);

    /* the floor rises (the disk fills up from elsewhere): eviction follows */
    read_all(b, "c", &rc);
    CHECK_INT(bstats(b).bytes_present, 11 * MIB);
    disk.capacity = 14 * MIB;
    CHECK_INT(blocks_evict(b, NULL), 0);
    CHECK_INT(bstats(b).bytes_present, 10 * MIB);
    CHECK(!still_cached(b, "c", &rc, 0, 10));
    CHECK(still_cached(b, "c", &rc, MIB, 3 * MIB));
    blocks_release(w);
    blocks_close(b);
    free(data);
    remote_free(&ra);
    remote_free(&rb);
    remote_free(&rc);
    unit_rmtree(dir);
    free(dir);
}

/* ---- evicting a file or a tree on request ----------------------------------- */

TEST(blocks_evict_under_drops_clean_data_and_skips_busy_files)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 20 * KIB, 51);
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    read_all(b, "d/a", &r);
    read_all(b, "d/sub/b", &r);
    read_all(b, "dx/c", &r);                    /* a neighbour, not below d */
    read_all(b, "top", &r);
    struct blocks_obj *other;
    CHECK_INT(blocks_get(b, "other", "d/a", "v", r.size, &other, NULL), 0);
    CHECK_INT(read_equals(other, 0, r.size, r.data, &r), 0);
    blocks_release(other);
    struct blocks_obj *pinned = bget(b, "d/p", "v", r.size);
    CHECK_INT(read_equals(pinned, 0, r.size, r.data, &r), 0);
    struct blocks_obj *w = bget(b, "d/w", "", 0);
    CHECK_INT(blocks_write(w, 0, "unsaved", 7, remote_fetch, &r, NULL), 0);
    blocks_release(w);                          /* dirty, not pinned */
    uint64_t before = bstats(b).bytes_present;

    struct blocks_evicted done = { 0 };
    CHECK_INT(blocks_evict_under(b, "c", "d", true, &done, NULL), 0);
    CHECK_INT(done.files, 2);
    CHECK_INT(done.bytes, 2 * r.size);
    CHECK_INT(done.skipped, 2);
    CHECK_INT(bstats(b).bytes_present, before - 2 * r.size);
    CHECK(!still_cached(b, "d/a", &r, 0, 10));
    CHECK(!still_cached(b, "d/sub/b", &r, 0, 10));
    CHECK(still_cached(b, "dx/c", &r, 0, r.size));
    CHECK(still_cached(b, "d/p", &r, 0, r.size));
    w = bget(b, "d/w", "", 0);
    CHECK(blocks_is_dirty(w));
    CHECK_INT(read_equals(w, 0, 7, (const unsigned char *)"unsaved", &r), 0);
    blocks_release(w);

    /* one file; then the whole cloud (path ""): the other cloud stays */
    done = (struct blocks_evicted){ 0 };
    CHECK_INT(blocks_evict_under(b, "c", "top", false, &done, NULL), 0);
    CHECK_INT(done.files, 1);
    CHECK_INT(done.skipped, 0);
    done = (struct blocks_evicted){ 0 };
    CHECK_INT(blocks_evict_under(b, "c", "", true, &done, NULL), 0);
    CHECK_INT(done.files, 1);                   /* dx/c */
    CHECK_INT(done.skipped, 2);
    blocks_release(pinned);
    CHECK(still_cached(b, "d/p", &r, 0, r.size));   /* kept while it was open */
    r.down = 1;
    CHECK_INT(blocks_get(b, "other", "d/a", "v", r.size, &other, NULL), 0);
    CHECK_INT(read_equals(other, 0, r.size, r.data, &r), 0);
    blocks_release(other);
    r.down = 0;

    /* the totals kept while running match a fresh count */
    struct blocks_stats s = bstats(b);
    blocks_close(b);
    b = bopen(dir, 4 * KIB, 1024ull * MIB);
    CHECK_INT(bstats(b).bytes_present, s.bytes_present);
    CHECK_INT(bstats(b).objects, s.objects);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* A cache written before partial blocks (schema version 1) keeps its
 * blocks and gains them. */
TEST(blocks_version_1_cache_is_upgraded)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 2 * MIB, 52);
    struct blocks *b = bopen(dir, MIB, 1024ull * MIB);
    read_all(b, "old", &r);
    blocks_close(b);
    char db_path[512];
    snprintf(db_path, sizeof db_path, "%s/blocks.db", dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(db_path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "ALTER TABLE blocks DROP COLUMN sums;"
                           "ALTER TABLE blocks DROP COLUMN parts; PRAGMA user_version=1;",
                           NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    b = bopen(dir, MIB, 1024ull * MIB);
    CHECK_INT(bstats(b).bytes_present, 2 * MIB);
    CHECK(still_cached(b, "old", &r, 0, r.size));
    struct remote n;
    remote_init(&n, 4 * MIB, 53);
    struct blocks_obj *o = bget(b, "new", "v", n.size);
    CHECK_INT(read_equals(o, 3 * MIB, 10, n.data + 3 * MIB, &n), 0);
    CHECK_INT(n.bytes, 64 * KIB);
    blocks_release(o);
    blocks_close(b);
    b = bopen(dir, MIB, 1024ull * MIB);
    CHECK_INT(bstats(b).blocks_partial, 1);
    CHECK(still_cached(b, "new", &n, 3 * MIB, 10));
    blocks_close(b);
    remote_free(&r);
    remote_free(&n);
    unit_rmtree(dir);
    free(dir);
}

/* ---- streamed downloads: pieces go into the cache file as they arrive ------ */

/* A read that must fail with `want` (its message holding `says`). */
static int read_fails(struct blocks_obj *o, uint64_t off, size_t len, struct remote *r, int want,
                      const char *says)
{
    unsigned char *buf = malloc(len);
    size_t got = 0;
    struct sky_err e = { 0 };
    int rc = blocks_read(o, off, len, buf, &got, remote_fetch, r, &e);
    free(buf);
    if (rc != want || !strstr(e.msg, says)) {
        fprintf(stderr, "  read at %llu: %d (%s), expected %d (%s)\n", (unsigned long long)off,
                rc, e.msg, want, says);
        return 1;
    }
    return 0;
}

/* Disk space the only data file of `dir` takes, in 512-byte units. */
static long long data_file_blocks(const char *dir)
{
    char *file = only_data_file(dir);
    struct stat st;
    long long n = file && stat(file, &st) == 0 ? (long long)st.st_blocks : -1;
    free(file);
    return n;
}

/* A download that fails part way, ends short, or runs long leaves nothing
 * of its block present (and nothing on disk); the next read fetches the
 * block again, and what is then kept survives a reopen. */
TEST(blocks_stream_failing_mid_block_keeps_nothing)
{
    const uint64_t BS = 256 * KIB;
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 4 * BS + 777, 61);
    struct blocks *b = bopen(dir, BS, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "f", "v1", r.size);

    r.fail_at = 100000;                     /* the connection drops inside block 0 */
    CHECK_INT(read_fails(o, 0, 4 * KIB, &r, -EIO, "connection reset"), 0);
    struct blocks_stats s = bstats(b);
    CHECK_INT(s.blocks_present, 0);
    CHECK_INT(s.bytes_present, 0);
    CHECK_INT(data_file_blocks(dir), 0);   /* what arrived was punched out */
    r.down = 1;                             /* not served from the cache */
    CHECK_INT(read_fails(o, 0, 4 * KIB, &r, -EHOSTDOWN, "down"), 0);
    r.down = 0;

    r.cut_at = 5000;                        /* the cloud ends early, no error */
    CHECK_INT(read_fails(o, 0, 4 * KIB, &r, -EIO, "returned 5000 bytes"), 0);
    r.extra = 10;                           /* the cloud sends more than asked */
    CHECK_INT(read_fails(o, 0, 4 * KIB, &r, -EIO, "writing cached data"), 0);
    s = bstats(b);
    CHECK_INT(s.blocks_present, 0);
    CHECK_INT(data_file_blocks(dir), 0);

    CHECK_INT(read_equals(o, 0, BS, r.data, &r), 0);
    CHECK_INT(read_equals(o, BS, BS, r.data + BS, &r), 0);
    CHECK_INT(read_equals(o, 4 * BS, 777, r.data + 4 * BS, &r), 0);
    s = bstats(b);
    CHECK_INT(s.blocks_present, 3);
    CHECK_INT(s.bytes_present, 2 * BS + 777);
    CHECK_INT(s.corrupt, 0);
    blocks_release(o);
    blocks_close(b);

    b = bopen(dir, BS, 1024ull * MIB);
    o = bget(b, "f", "v1", r.size);
    r.down = 1;                             /* checked against their checksums */
    CHECK_INT(read_equals(o, 0, 2 * BS, r.data, &r), 0);
    CHECK_INT(read_equals(o, 4 * BS, 777, r.data + 4 * BS, &r), 0);
    CHECK_INT(bstats(b).corrupt, 0);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* A download of chunks that fails part way: the missing chunks stay
 * missing, and the present chunk between them (verified before the
 * download, so only hashed as it passes, never written) keeps its bytes:
 * the garbage the cloud sent for it is not served. */
TEST(blocks_stream_failing_mid_chunks_keeps_nothing_new)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 8 * MIB, 62);
    struct blocks *b = bopen(dir, 4 * MIB, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "f", "v1", r.size);
    CHECK_INT(read_equals(o, MIB + 100, 4 * KIB, r.data + MIB + 100, &r), 0);    /* chunk 16 */
    CHECK_INT(bstats(b).bytes_present, 64 * KIB);

    /* chunks 15-17 in one request: garbage over all three, then a retry
     * that dies after 10 bytes */
    r.replay_at = 3 * 64 * KIB;
    r.fail_at = 10;
    uint64_t at = MIB - 64 * KIB;
    CHECK_INT(read_fails(o, at, 3 * 64 * KIB, &r, -EIO, "connection reset"), 0);
    struct blocks_stats s = bstats(b);
    CHECK_INT(s.blocks_present, 1);
    CHECK_INT(s.blocks_partial, 1);
    CHECK_INT(s.bytes_present, 64 * KIB);
    CHECK_INT(s.corrupt, 0);

    r.down = 1;                             /* chunk 16 still holds its bytes */
    CHECK_INT(read_equals(o, MIB, 100, r.data + MIB, &r), 0);
    CHECK_INT(bstats(b).corrupt, 0);
    r.down = 0;
    CHECK_INT(read_equals(o, at, 3 * 64 * KIB, r.data + at, &r), 0);
    s = bstats(b);
    CHECK_INT(s.bytes_present, 3 * 64 * KIB);
    CHECK_INT(s.corrupt, 0);
    blocks_release(o);

    o = bget(b, "f", "v1", r.size);        /* checked again at the new pin: right */
    r.down = 1;
    CHECK_INT(read_equals(o, at, 3 * 64 * KIB, r.data + at, &r), 0);
    CHECK_INT(bstats(b).corrupt, 0);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* A fetch that starts over (a retry after a broken transfer) keeps only
 * the bytes of the retry, with their checksums: whole blocks and chunks
 * read back clean after a new pin verifies them. */
TEST(blocks_stream_started_over_keeps_the_retry)
{
    const uint64_t BS = 256 * KIB;
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 4 * BS, 63);
    struct blocks *b = bopen(dir, BS, 1024ull * MIB);
    struct blocks_obj *o = bget(b, "f", "v1", r.size);
    r.replay_at = 70000;
    CHECK_INT(read_equals(o, 0, 4 * KIB, r.data, &r), 0);                  /* whole block 0 */
    r.replay_at = 20000;
    CHECK_INT(read_equals(o, 2 * BS + 5, 100, r.data + 2 * BS + 5, &r), 0);  /* one chunk */
    r.replay_at = 100000;
    r.piece = 3000;
    CHECK_INT(read_equals(o, 3 * BS + 60 * KIB, 8 * KIB, r.data + 3 * BS + 60 * KIB, &r), 0);
    CHECK_INT(r.calls, 3);
    blocks_release(o);

    o = bget(b, "f", "v1", r.size);        /* read in an order that stays random */
    r.down = 1;
    CHECK_INT(read_equals(o, 3 * BS, 2 * 64 * KIB, r.data + 3 * BS, &r), 0);
    CHECK_INT(read_equals(o, 2 * BS, 64 * KIB, r.data + 2 * BS, &r), 0);
    CHECK_INT(read_equals(o, 0, BS, r.data, &r), 0);
    CHECK_INT(bstats(b).corrupt, 0);
    CHECK_INT(bstats(b).bytes_present, BS + 3 * 64 * KIB);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* Sequential reads fetch ahead in runs of blocks, one request each.  A run
 * that breaks keeps the blocks that arrived whole and nothing else (the
 * reader fetches the rest itself); a run that starts over keeps its
 * blocks once.  Afterwards every byte reads back and checks clean. */
static void read_all_ahead(struct blocks_obj *o, struct remote *r, int *bad, int *failed)
{
    for (uint64_t off = 0; off < r->size; off += 16 * KIB) {
        size_t len = r->size - off < 16 * KIB ? r->size - off : 16 * KIB;
        if (read_ahead_equals(o, off, len, r) == 0)
            continue;
        (*failed)++;                        /* the reader's own fetch broke: again */
        *bad += read_ahead_equals(o, off, len, r);
    }
}

TEST(blocks_stream_runs_keep_whole_blocks_only)
{
    const uint64_t BS = 64 * KIB;
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 24 * BS + 999, 64);
    struct blocks *b = bopen(dir, BS, 64 * MIB);
    struct blocks_obj *o = bget(b, "runs", "v1", r.size);
    r.fail_abs = 9 * BS + 77;               /* breaks inside block 9 */
    r.resend_abs = 12 * BS + 5;             /* starts over inside block 12 */
    r.delay_ms = 5;                         /* so the reader gets ahead of the fetches */
    int bad = 0, failed = 0;
    read_all_ahead(o, &r, &bad, &failed);
    remote_settle(&r);
    CHECK_INT(bad, 0);
    CHECK(failed <= 1);
    /* runs: some request asked for several blocks at once (how many
     * requests in all depends on how the threads were scheduled) */
    CHECK(r.max_len > BS);
    CHECK_INT(r.fail_abs + r.resend_abs, 0); /* both faults happened */
    struct blocks_stats st = bstats(b);
    CHECK_INT(st.blocks_present, 25);
    CHECK_INT(st.bytes_present, r.size);
    CHECK_INT(st.corrupt, 0);
    blocks_release(o);

    o = bget(b, "runs", "v1", r.size);       /* checked against their checksums */
    r.down = 1;
    unsigned char *all = malloc(r.size);
    size_t got = 0;
    CHECK_INT(blocks_read(o, 0, r.size, all, &got, remote_fetch, &r, NULL), 0);
    CHECK_INT(got, r.size);
    CHECK(memcmp(all, r.data, r.size) == 0);
    CHECK_INT(bstats(b).corrupt, 0);
    free(all);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

struct slow_reader {
    struct blocks_obj *o;
    struct remote *r;
    int bad;
};

static void *slow_reader_main(void *arg)
{
    struct slow_reader *sr = arg;
    sr->bad = read_equals(sr->o, 0, 64 * KIB, sr->r->data, sr->r);
    return NULL;
}

/* A reader waiting for a block another thread is downloading gives up
 * with EINTR once its stop flag is raised (its process was killed), without
 * waiting for the download, and the download goes on for the other. */
TEST(blocks_stopped_reader_does_not_wait_for_a_download)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 256 * KIB, 31);
    r.delay_ms = 1500;
    struct blocks *b = bopen(dir, 64 * KIB, 64 * MIB);
    struct blocks_obj *o = bget(b, "stop", "v1", r.size);
    struct slow_reader sr = { o, &r, 0 };
    pthread_t t;
    pthread_create(&t, NULL, slow_reader_main, &sr);
    for (int i = 0; i < 1000; i++) {        /* until its download of block 0 runs */
        pthread_mutex_lock(&r.lock);
        int active = r.active;
        pthread_mutex_unlock(&r.lock);
        if (active)
            break;
        usleep(1000);
    }
    atomic_int stop = 1;
    blocks_set_stop(&stop);
    unsigned char buf[4096];
    size_t got = 0;
    struct sky_err e = { 0 };
    int rc = blocks_read(o, 1000, sizeof buf, buf, &got, remote_fetch, &r, &e);
    blocks_set_stop(NULL);
    pthread_mutex_lock(&r.lock);
    int still_active = r.active, calls = r.calls;
    pthread_mutex_unlock(&r.lock);
    CHECK_INT(rc, -EINTR);
    CHECK_INT(still_active, 1);             /* it did not wait for the download */
    CHECK_INT(calls, 1);                    /* nor start one of its own */
    pthread_join(t, NULL);
    CHECK_INT(sr.bad, 0);                   /* the other reader got its bytes */
    CHECK_INT(read_equals(o, 1000, sizeof buf, r.data + 1000, &r), 0);
    blocks_release(o);
    blocks_close(b);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}

/* Uploads that got no answer are journaled with their object: asked
 * after a remount and a rename, only the exact size and mtime of one of
 * them match; a successful upload forgets them. */
TEST(blocks_unanswered_uploads_kept_until_committed)
{
    char *dir = unit_tmpdir();
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    struct blocks_obj *o;
    CHECK_INT(blocks_get_new(b, "c", "f", &o, NULL), 0);
    CHECK(!blocks_was_unanswered(o, 4, 1000000001));            /* nothing noted */
    CHECK_INT(blocks_write(o, 0, "one!", 4, NULL, NULL, NULL), 0);
    CHECK_INT(blocks_note_unanswered(o, 4, 1000000001, NULL), 0);
    CHECK_INT(blocks_note_unanswered(o, 4, 1000000001, NULL), 0); /* the same, again */
    CHECK_INT(blocks_write(o, 0, "three", 5, NULL, NULL, NULL), 0);
    CHECK_INT(blocks_note_unanswered(o, 5, 2000000002, NULL), 0);
    CHECK(blocks_was_unanswered(o, 4, 1000000001));
    blocks_release(o);
    CHECK_INT(blocks_rename(b, "c", "f", "g", false, NULL), 0);
    blocks_close(b);
    b = bopen(dir, 4 * KIB, 1024ull * MIB);
    CHECK_INT(blocks_get(b, "c", "g", "", 5, &o, NULL), 0);
    CHECK(blocks_is_dirty(o));
    CHECK(blocks_was_unanswered(o, 4, 1000000001));
    CHECK(blocks_was_unanswered(o, 5, 2000000002));
    CHECK(!blocks_was_unanswered(o, 4, 1000000000));            /* the second only */
    CHECK(!blocks_was_unanswered(o, 5, 1000000001));            /* another size */
    int fd;
    CHECK_INT(blocks_prepare_upload(o, NULL, NULL, &fd, NULL), 0);
    CHECK_INT(blocks_committed(o, "\"v1\"", NULL), 0);
    CHECK(!blocks_was_unanswered(o, 5, 2000000002));
    blocks_release(o);
    blocks_close(b);
    b = bopen(dir, 4 * KIB, 1024ull * MIB);
    CHECK_INT(blocks_get(b, "c", "g", "\"v1\"", 5, &o, NULL), 0);
    CHECK(!blocks_was_unanswered(o, 4, 1000000001));
    blocks_release(o);
    blocks_close(b);
    unit_rmtree(dir);
    free(dir);
}

/* A power cut took the data files of pending files written but never
 * closed (their journal rows reached the disk, their files did not): the
 * next open keeps a file made here, empty; one of its cloud goes back to
 * the cloud's version; a small file whose close journaled a copy of its
 * bytes gets them back.  Before, the replay failed on such a row for
 * ever. */
static int count_pending(void *arg, struct blocks_obj *o)
{
    (void)o;
    (*(int *)arg)++;
    return 0;
}

TEST(blocks_pending_files_whose_data_a_power_cut_took)
{
    char *dir = unit_tmpdir();
    struct remote r;
    remote_init(&r, 9000, 11);
    struct blocks *b = bopen(dir, 4 * KIB, 1024ull * MIB);
    struct blocks_obj *n = bget(b, "new.bin", "", 0);
    struct blocks_obj *o = bget(b, "old.bin", "v1", r.size);
    struct blocks_obj *k = bget(b, "kept.txt", "", 0);
    CHECK_INT(blocks_write(n, 0, "lost", 4, remote_fetch, &r, NULL), 0);
    CHECK_INT(blocks_write(o, 3, "lost", 4, remote_fetch, &r, NULL), 0);
    CHECK_INT(blocks_write(k, 0, "kept!", 5, remote_fetch, &r, NULL), 0);
    CHECK_INT(blocks_make_durable(k, remote_fetch, &r, NULL), 0);      /* its close */
    blocks_release(n);
    blocks_release(o);
    blocks_release(k);
    blocks_close(b);
    char data[4096];
    snprintf(data, sizeof data, "%s/data", dir);
    DIR *d = opendir(data);
    CHECK(d != NULL);
    int removed = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
            removed += unlinkat(dirfd(d), de->d_name, 0) == 0;
    if (d)
        closedir(d);
    CHECK_INT(removed, 3);

    memset(&unit_repair, 0, sizeof unit_repair);
    b = bopen(dir, 4 * KIB, 1024ull * MIB);
    CHECK(strstr(unit_repair.unsaved, "'new.bin' (cloud 'c', empty)") != NULL);
    CHECK(strstr(unit_repair.unsaved, "'old.bin' (cloud 'c', the cloud's version)") != NULL);
    CHECK(strstr(unit_repair.unsaved, "kept.txt") == NULL);
    n = bget(b, "new.bin", "", 0);
    CHECK(blocks_is_dirty(n));
    CHECK_INT((long long)blocks_size(n), 0);
    o = bget(b, "old.bin", "v1", r.size);
    CHECK(!blocks_is_dirty(o));
    CHECK_INT(read_equals(o, 0, r.size, r.data, &r), 0);
    k = bget(b, "kept.txt", "", 0);
    CHECK(blocks_is_dirty(k));
    CHECK_INT(read_equals(k, 0, 5, (const unsigned char *)"kept!", &r), 0);
    int pending = 0;
    CHECK_INT(blocks_each_dirty(b, count_pending, &pending, NULL), 0);
    CHECK_INT(pending, 2);
    blocks_release(n);
    blocks_release(o);
    blocks_release(k);
    blocks_close(b);
    memset(&unit_repair, 0, sizeof unit_repair);
    remote_free(&r);
    unit_rmtree(dir);
    free(dir);
}
