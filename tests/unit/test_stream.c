/* test_stream.c - fs/stream.c against a fake driver that records the
 * streamed-upload calls: parts go up while the file is written, each once,
 * never more than STREAM_FILE_PARTS at a time and never past a write in
 * progress; a write or truncate below what was sent, a failed part or a
 * rename make finish refuse the stream, and what was begun is aborted. */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../../fs/skyfs.h"
#include "../../fs/stream.h"
#include "../../lib/log.h"

#define PS 4096u                /* the fake driver's part size */
#define MAX_PARTS 64

struct fake {
    pthread_mutex_t lock;
    int begins, aborts, finishes;
    int sent[MAX_PARTS];        /* upload_part calls per index */
    int running, most_running;
    int fail_index;             /* this part fails; -1: none */
    uint64_t finish_nparts, finish_size;
    char path[64];
    char begin_type[64], begin_color[16];   /* what upload_begin got as meta */
    char finish_type[64];                   /* upload_finish's meta, "(none)" */
};

static struct fake fake;

static void fake_reset(void)
{
    memset(&fake, 0, sizeof fake);
    pthread_mutex_init(&fake.lock, NULL);
    fake.fail_index = -1;
}

static void pause_ms(int ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

static int fake_begin(void *ctx, const char *path, const struct sky_attr *attr,
                      const struct sky_objmeta *meta, void **up, struct sky_err *e)
{
    const struct sky_meta_item *color = meta ? sky_objmeta_find(meta, "color") : NULL;
    pthread_mutex_lock(&fake.lock);
    fake.begins++;
    snprintf(fake.path, sizeof fake.path, "%s", path);
    snprintf(fake.begin_type, sizeof fake.begin_type, "%s",
             meta && meta->content_type ? meta->content_type : "(none)");
    snprintf(fake.begin_color, sizeof fake.begin_color, "%s", color ? color->value : "(none)");
    pthread_mutex_unlock(&fake.lock);
    *up = &fake;
    return 0;
}

static int fake_part(void *up, int fd, uint64_t index, struct sky_err *e)
{
    char buf[PS];
    pthread_mutex_lock(&fake.lock);
    if (index < MAX_PARTS)
        fake.sent[index]++;
    if (++fake.running > fake.most_running)
        fake.most_running = fake.running;
    pthread_mutex_unlock(&fake.lock);
    ssize_t got = pread(fd, buf, PS, (off_t)(index * PS));
    pause_ms(5);                /* let other parts overlap */
    pthread_mutex_lock(&fake.lock);
    fake.running--;
    bool fail = (int)index == fake.fail_index || got != PS || buf[0] != (char)index;
    pthread_mutex_unlock(&fake.lock);
    return fail ? sky_fail(e, EIO, "part %llu failed", (unsigned long long)index) : 0;
}

static int fake_finish(void *up, int fd, uint64_t nparts, uint64_t size,
                       const struct sky_attr *attr, const struct sky_objmeta *meta,
                       struct sky_attr *out, struct sky_err *e)
{
    pthread_mutex_lock(&fake.lock);
    fake.finishes++;
    snprintf(fake.finish_type, sizeof fake.finish_type, "%s",
             !meta ? "(none)" : meta->content_type ? meta->content_type : "(no type)");
    fake.finish_nparts = nparts;
    fake.finish_size = size;
    pthread_mutex_unlock(&fake.lock);
    memset(out, 0, sizeof *out);
    snprintf(out->etag, sizeof out->etag, "\"done\"");
    return 0;
}

static void fake_abort(void *up)
{
    pthread_mutex_lock(&fake.lock);
    fake.aborts++;
    pthread_mutex_unlock(&fake.lock);
}

static const struct sky_driver fake_driver = {
    .type = "fake",
    .upload_part_size = PS,
    .upload_begin = fake_begin,
    .upload_part = fake_part,
    .upload_finish = fake_finish,
    .upload_abort = fake_abort,
};

/* A file, a cloud over the fake driver and a pool, for one test. */
struct rig {
    char *dir;
    int fd;                     /* the "cache file": part k holds byte k */
    struct sky_cloud_config cfg;
    struct cloud cloud;
    struct stream_pool *pool;
};

static void rig_open(struct rig *r)
{
    fake_reset();
    sky_log_set_level(SKY_LOG_WARN);    /* abandoned streams are logged as info */
    memset(r, 0, sizeof *r);
    r->dir = unit_tmpdir();
    char *file = unit_write_file(r->dir, "data", "", 0600);
    r->fd = open(file, O_RDWR);
    free(file);
    r->cfg.name = "fake";
    r->cloud.cfg = &r->cfg;
    r->cloud.drv = &fake_driver;
    r->cloud.ctx = &fake;
    pthread_mutex_init(&r->cloud.health_lock, NULL);
    struct sky_err e = { 0 };
    CHECK_INT(stream_pool_new(&r->pool, &e), 0);
}

static void rig_close(struct rig *r)
{
    stream_pool_free(r->pool);
    sky_log_set_level(SKY_LOG_INFO);
    close(r->fd);
    pthread_mutex_destroy(&r->cloud.health_lock);
    unit_rmtree(r->dir);
    free(r->dir);
}

/* Write part-sized pieces [from, to) of the file (piece k all byte k),
 * as files.c does: begins the upload when the stream asks. */
static void write_parts(struct rig *r, struct stream *s, unsigned from, unsigned to)
{
    char buf[PS];
    for (unsigned k = from; k < to; k++) {
        memset(buf, (char)k, sizeof buf);
        stream_write_begins(s, (uint64_t)k * PS);
        bool ok = pwrite(r->fd, buf, PS, (off_t)k * PS) == PS;
        if (stream_write_ends(s, (uint64_t)k * PS, PS, ok)) {
            struct sky_attr a = { .kind = SKY_FILE };
            stream_begin(s, "dir/file", &a, NULL, dup(r->fd));
        }
    }
}

static int parts_sent(void)
{
    pthread_mutex_lock(&fake.lock);
    int n = 0;
    for (int i = 0; i < MAX_PARTS; i++)
        n += fake.sent[i] > 0;
    pthread_mutex_unlock(&fake.lock);
    return n;
}

/* Wait (5 s at most) until `n` parts were sent. */
static bool wait_parts(int n)
{
    for (int i = 0; i < 1000 && parts_sent() < n; i++)
        pause_ms(5);
    return parts_sent() >= n;
}

/* Wait (5 s at most) until *count reaches n. */
static bool wait_count(const int *count, int n)
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&fake.lock);
        int got = *count;
        pthread_mutex_unlock(&fake.lock);
        if (got >= n)
            return true;
        pause_ms(5);
    }
    return false;
}

static bool wait_aborts(int n)
{
    return wait_count(&fake.aborts, n);
}

static int finish(struct stream *s, struct rig *r, uint64_t size, const char *path)
{
    struct sky_attr a = { .kind = SKY_FILE, .size = size }, out;
    struct sky_err e = { 0 };
    return stream_finish(s, r->fd, size, path, &a, NULL, &out, &e);
}

TEST(stream_sends_parts_while_written)
{
    struct rig r;
    rig_open(&r);
    struct stream *s = stream_track(r.pool, &r.cloud);
    CHECK(s != NULL);
    write_parts(&r, s, 0, 1);
    CHECK(!stream_started(s));          /* one part: not yet */
    write_parts(&r, s, 1, 20);
    CHECK(stream_started(s));
    CHECK(wait_parts(20));              /* all sent before finish */
    CHECK_INT(finish(s, &r, 20 * PS + 100, "dir/file"), 0);
    CHECK_INT(fake.begins, 1);
    CHECK_STR(fake.path, "dir/file");
    CHECK_INT(fake.finishes, 1);
    CHECK_INT(fake.finish_nparts, 20);
    CHECK_INT(fake.finish_size, 20 * PS + 100);
    int twice = 0;
    for (int i = 0; i < 20; i++)
        twice += fake.sent[i] != 1;
    CHECK_INT(twice, 0);
    CHECK(fake.most_running <= STREAM_FILE_PARTS);
    CHECK_INT(fake.aborts, 0);
    rig_close(&r);
}

TEST(stream_cuts_no_part_past_a_write_in_progress)
{
    struct rig r;
    rig_open(&r);
    struct stream *s = stream_track(r.pool, &r.cloud);
    write_parts(&r, s, 0, 8);
    CHECK(wait_parts(8));
    stream_write_begins(s, 8 * PS);     /* a write at 8 parts, still running */
    char buf[3 * PS];
    memset(buf, 8, PS);
    memset(buf + PS, 9, PS);
    memset(buf + 2 * PS, 10, PS);
    CHECK_INT(pwrite(r.fd, buf, sizeof buf, 8 * PS), (long)sizeof buf);
    pause_ms(50);
    CHECK_INT(parts_sent(), 8);
    stream_write_ends(s, 8 * PS, sizeof buf, true);
    CHECK(wait_parts(11));
    CHECK_INT(finish(s, &r, 11 * PS, "dir/file"), 0);
    CHECK_INT(fake.finish_nparts, 11);
    rig_close(&r);
}

TEST(stream_write_below_sent_abandons)
{
    struct rig r;
    rig_open(&r);
    struct stream *s = stream_track(r.pool, &r.cloud);
    write_parts(&r, s, 0, 4);
    CHECK(wait_parts(2));
    stream_write_begins(s, 0);
    stream_write_ends(s, 0, 10, true);
    write_parts(&r, s, 4, 6);
    CHECK_INT(finish(s, &r, 6 * PS, "dir/file"), 1);
    CHECK(wait_aborts(1));
    CHECK_INT(fake.finishes, 0);
    rig_close(&r);
}

TEST(stream_truncate_below_sent_abandons)
{
    struct rig r;
    rig_open(&r);
    struct stream *s = stream_track(r.pool, &r.cloud);
    write_parts(&r, s, 0, 4);
    CHECK(wait_parts(2));
    stream_truncates(s, PS);
    CHECK_INT(finish(s, &r, PS, "dir/file"), 1);
    CHECK(wait_aborts(1));
    rig_close(&r);
}

TEST(stream_failed_part_or_rename_is_not_used)
{
    struct rig r;
    rig_open(&r);
    fake.fail_index = 1;
    struct stream *s = stream_track(r.pool, &r.cloud);
    write_parts(&r, s, 0, 6);
    CHECK(wait_parts(2));
    CHECK_INT(finish(s, &r, 6 * PS, "dir/file"), 1);
    CHECK(wait_aborts(1));

    fake.fail_index = -1;
    s = stream_track(r.pool, &r.cloud);
    write_parts(&r, s, 0, 3);
    CHECK(stream_started(s));
    CHECK(wait_count(&fake.begins, 2));
    CHECK_INT(finish(s, &r, 3 * PS, "dir/renamed"), 1);
    CHECK(wait_aborts(2));
    CHECK_INT(fake.finishes, 0);
    rig_close(&r);
}

TEST(stream_dropped_before_begin_sends_nothing)
{
    struct rig r;
    rig_open(&r);
    struct stream *s = stream_track(r.pool, &r.cloud);
    write_parts(&r, s, 0, 1);
    stream_drop(s);
    s = stream_track(r.pool, &r.cloud);
    write_parts(&r, s, 0, 5);
    stream_drop(s);                     /* begun or about to: aborted */
    rig_close(&r);                      /* waits for the pool */
    CHECK_INT(fake.finishes, 0);
    CHECK_INT(fake.aborts, fake.begins);
}

TEST(stream_passes_cloud_metadata_to_begin_and_finish)
{
    struct rig r;
    rig_open(&r);
    struct stream *s = stream_track(r.pool, &r.cloud);
    char buf[PS];
    for (unsigned k = 0; k < 3; k++) {
        memset(buf, (char)k, sizeof buf);
        stream_write_begins(s, (uint64_t)k * PS);
        bool ok = pwrite(r.fd, buf, PS, (off_t)k * PS) == PS;
        if (stream_write_ends(s, (uint64_t)k * PS, PS, ok)) {
            struct sky_attr a = { .kind = SKY_FILE };
            struct sky_objmeta om = { .has_user = true };
            CHECK_INT(sky_objmeta_set(&om.content_type, "image/png"), 0);
            CHECK_INT(sky_objmeta_add_user(&om, "color", "blue", 4), 0);
            stream_begin(s, "dir/pic.png", &a, &om, dup(r.fd));
            sky_objmeta_free(&om);      /* the stream keeps its own copy */
        }
    }
    CHECK(wait_parts(3));
    CHECK_STR(fake.begin_type, "image/png");
    CHECK_STR(fake.begin_color, "blue");
    struct sky_objmeta final = { .has_user = true };
    CHECK_INT(sky_objmeta_set(&final.content_type, "image/x-final"), 0);
    struct sky_attr a = { .kind = SKY_FILE, .size = 3 * PS }, out;
    struct sky_err e = { 0 };
    CHECK_INT(stream_finish(s, r.fd, 3 * PS, "dir/pic.png", &a, &final, &out, &e), 0);
    CHECK_STR(fake.finish_type, "image/x-final");
    sky_objmeta_free(&final);
    rig_close(&r);
}
