/*
 * stream.c - see stream.h.
 *
 * One mutex (the pool's) guards every stream's state and the queue of
 * streams that have something for a worker to do: a begin to make, a part
 * to send, or (once dropped and idle) an abort and a free.  A stream sits
 * in the queue at most once; a worker that takes a part puts the stream
 * back while more parts are ready, so up to STREAM_FILE_PARTS workers send
 * parts of one file at once.  Drivers are always called without the lock.
 *
 * Who frees a stream: stream_finish (after the driver's finish), the
 * owner's stream_drop when nothing was ever begun and no worker holds it,
 * or else the worker that finds it dropped and idle.
 */
#include "stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"
#include "skyfs.h"

struct stream {
    struct stream_pool *pool;
    struct cloud *cloud;
    uint64_t part_size;
    uint64_t written;       /* [0, written) written contiguously since empty */
    uint64_t limit;         /* a write in progress starts here: cut no part past it */
    uint64_t sent;          /* parts below this were handed out */
    int running;            /* parts being sent */
    bool started;           /* stream_begin was called */
    bool beginning;         /* a worker is in upload_begin */
    bool begun;             /* upload_begin succeeded: `up` is set */
    bool dead;              /* abandoned: no new part, finish refuses */
    bool finishing;         /* the owner waits in stream_finish */
    bool dropped;           /* the owner let go */
    bool queued;
    char *path;             /* set by stream_begin, then fixed */
    struct sky_attr attr;
    struct sky_objmeta meta;    /* set by stream_begin, then fixed */
    int fd;
    void *up;               /* the driver's upload */
    struct stream *next;    /* in the queue */
};

struct stream_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;    /* a stream was queued, or the pool stops */
    pthread_cond_t done;    /* a begin or a part ended */
    struct stream *head, *tail;
    pthread_t threads[STREAM_THREADS];
    int nthreads;
    int busy;               /* workers handling a stream */
    bool stopping;
};

/* ---- the queue (pool lock held) ------------------------------------------ */

static bool has_work(const struct stream *s)
{
    if (s->dropped)
        return !s->running && !s->beginning;    /* abort and free */
    if (s->dead || s->finishing || s->pool->stopping)
        return false;
    if (s->started && !s->begun)
        return !s->beginning;
    uint64_t ready = s->written < s->limit ? s->written : s->limit;
    return s->begun && s->running < STREAM_FILE_PARTS && ready >= s->sent + s->part_size;
}

static void queue_if_ready(struct stream_pool *p, struct stream *s)
{
    if (s->queued || !has_work(s))
        return;
    s->queued = true;
    s->next = NULL;
    if (p->tail)
        p->tail->next = s;
    else
        p->head = s;
    p->tail = s;
    pthread_cond_signal(&p->work);
}

static struct stream *queue_pop(struct stream_pool *p)
{
    struct stream *s = p->head;
    p->head = s->next;
    if (!p->head)
        p->tail = NULL;
    s->queued = false;
    return s;
}

static void queue_remove(struct stream_pool *p, struct stream *s)
{
    if (!s->queued)
        return;
    struct stream *prev = NULL;
    for (struct stream *q = p->head; q != s; q = q->next)
        prev = q;
    if (prev)
        prev->next = s->next;
    else
        p->head = s->next;
    if (p->tail == s)
        p->tail = prev;
    s->queued = false;
}

/* ---- streams -------------------------------------------------------------- */

static void stream_free(struct stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    sky_objmeta_free(&s->meta);
    free(s->path);
    free(s);
}

/* Abandon the stream (pool lock held), saying why once. */
static void kill_stream(struct stream *s, const char *why)
{
    if (!s->dead && s->started)
        sky_log_cloud(SKY_LOG_INFO, s->cloud->cfg->name, "streamed upload of \"%s\" abandoned "
                      "(%s); the file goes up whole at close", s->path ? s->path : "?", why);
    s->dead = true;
}

/* ---- the workers ---------------------------------------------------------- */

/* upload_begin for s (pool lock held; released around the call). */
static void run_begin(struct stream_pool *p, struct stream *s)
{
    const struct sky_driver *drv = s->cloud->drv;
    s->beginning = true;
    pthread_mutex_unlock(&p->lock);
    struct sky_err e = { 0 };
    void *up = NULL;
    int rc = drv->upload_begin(s->cloud->ctx, s->path, &s->attr, &s->meta, &up, &e);
    cloud_note_result(s->cloud, rc, &e);
    pthread_mutex_lock(&p->lock);
    s->beginning = false;
    if (rc == 0) {
        s->up = up;
        s->begun = true;
    } else {
        kill_stream(s, e.msg);
    }
    pthread_cond_broadcast(&p->done);
}

/* Send the next part of s (pool lock held; released around the call). */
static void run_part(struct stream_pool *p, struct stream *s)
{
    uint64_t index = s->sent / s->part_size;
    s->sent += s->part_size;
    s->running++;
    queue_if_ready(p, s);       /* another worker may take the next part */
    pthread_mutex_unlock(&p->lock);
    struct sky_err e = { 0 };
    int rc = s->cloud->drv->upload_part(s->up, s->fd, index, &e);
    cloud_note_result(s->cloud, rc, &e);
    pthread_mutex_lock(&p->lock);
    s->running--;
    if (rc)
        kill_stream(s, e.msg);
    pthread_cond_broadcast(&p->done);
}

/* A dropped stream nobody uses any more: abort and free (lock released). */
static void run_abort(struct stream_pool *p, struct stream *s)
{
    pthread_mutex_unlock(&p->lock);
    if (s->up)
        s->cloud->drv->upload_abort(s->up);
    stream_free(s);
    pthread_mutex_lock(&p->lock);
}

static void *worker_main(void *arg)
{
    struct stream_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !(p->stopping && p->busy == 0))
            pthread_cond_wait(&p->work, &p->lock);
        if (!p->head)
            break;
        struct stream *s = queue_pop(p);
        if (!has_work(s))
            continue;
        p->busy++;
        if (s->dropped) {
            run_abort(p, s);
        } else {
            if (s->started && !s->begun)
                run_begin(p, s);
            else
                run_part(p, s);
            queue_if_ready(p, s);
        }
        p->busy--;
        if (p->stopping && p->busy == 0 && !p->head)
            pthread_cond_broadcast(&p->work);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Start the workers if they are not running (pool lock held); false if
 * none can run. */
static bool pool_start(struct stream_pool *p)
{
    while (p->nthreads < STREAM_THREADS &&
           pthread_create(&p->threads[p->nthreads], NULL, worker_main, p) == 0)
        p->nthreads++;
    return p->nthreads > 0;
}

/* ---- public --------------------------------------------------------------- */

int stream_pool_new(struct stream_pool **out, struct sky_err *e)
{
    struct stream_pool *p = calloc(1, sizeof *p);
    if (!p)
        return sky_fail(e, ENOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    *out = p;
    return 0;
}

void stream_pool_free(struct stream_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p);
}

struct stream *stream_track(struct stream_pool *p, struct cloud *c)
{
    const struct sky_driver *drv = c->drv;
    if (!p || !c->ctx || !drv->upload_part_size || !drv->upload_begin || !drv->upload_part ||
        !drv->upload_finish || !drv->upload_abort)
        return NULL;
    pthread_mutex_lock(&p->lock);
    bool workers = !p->stopping && pool_start(p);
    pthread_mutex_unlock(&p->lock);
    struct stream *s = workers ? calloc(1, sizeof *s) : NULL;
    if (!s)
        return NULL;
    s->pool = p;
    s->cloud = c;
    s->part_size = drv->upload_part_size;
    s->limit = UINT64_MAX;
    s->fd = -1;
    return s;
}

void stream_write_begins(struct stream *s, uint64_t off)
{
    struct stream_pool *p = s->pool;
    pthread_mutex_lock(&p->lock);
    s->limit = off;
    if (off < s->sent)
        kill_stream(s, "written again below what was sent");
    pthread_mutex_unlock(&p->lock);
}

bool stream_write_ends(struct stream *s, uint64_t off, uint64_t len, bool ok)
{
    struct stream_pool *p = s->pool;
    pthread_mutex_lock(&p->lock);
    s->limit = UINT64_MAX;
    if (!ok && off < s->written)
        s->written = off;       /* part of it may have changed */
    else if (ok && off <= s->written && off + len > s->written)
        s->written = off + len;
    bool begin = !s->started && !s->dead &&
                 s->written >= STREAM_START_PARTS * s->part_size;
    queue_if_ready(p, s);
    pthread_mutex_unlock(&p->lock);
    return begin;
}

void stream_truncates(struct stream *s, uint64_t size)
{
    struct stream_pool *p = s->pool;
    pthread_mutex_lock(&p->lock);
    if (size < s->sent)
        kill_stream(s, "truncated below what was sent");
    if (size < s->written)
        s->written = size;
    pthread_mutex_unlock(&p->lock);
}

void stream_begin(struct stream *s, const char *path, const struct sky_attr *attr,
                  const struct sky_objmeta *meta, int fd)
{
    struct stream_pool *p = s->pool;
    char *copy = strdup(path);
    struct sky_objmeta mcopy = { 0 };
    bool meta_ok = !meta || sky_objmeta_copy(&mcopy, meta) == 0;
    pthread_mutex_lock(&p->lock);
    s->started = true;
    s->path = copy;
    s->attr = *attr;
    s->meta = mcopy;
    s->fd = fd;
    if (!copy || !meta_ok)
        s->dead = true;
    queue_if_ready(p, s);
    pthread_mutex_unlock(&p->lock);
}

bool stream_started(const struct stream *s)
{
    return s->started;      /* only the owner changes it */
}

int stream_finish(struct stream *s, int fd, uint64_t size, const char *path,
                  const struct sky_attr *attr, const struct sky_objmeta *meta,
                  struct sky_attr *out, struct sky_err *e)
{
    struct stream_pool *p = s->pool;
    pthread_mutex_lock(&p->lock);
    s->finishing = true;
    queue_remove(p, s);
    while (s->running || s->beginning)
        pthread_cond_wait(&p->done, &p->lock);
    bool usable = s->begun && !s->dead && size >= s->sent && s->path &&
                  strcmp(s->path, path) == 0;
    uint64_t nparts = s->sent / s->part_size;
    pthread_mutex_unlock(&p->lock);
    if (!usable) {
        stream_drop(s);
        return 1;
    }
    int rc = s->cloud->drv->upload_finish(s->up, fd, nparts, size, attr, meta, out, e);
    cloud_note_result(s->cloud, rc, e);
    s->up = NULL;
    stream_free(s);
    return rc;
}

void stream_drop(struct stream *s)
{
    struct stream_pool *p = s->pool;
    pthread_mutex_lock(&p->lock);
    s->dropped = true;
    s->dead = true;
    bool idle = !s->running && !s->beginning && !s->queued;
    if (idle && !s->up) {
        pthread_mutex_unlock(&p->lock);
        stream_free(s);
        return;
    }
    queue_if_ready(p, s);
    pthread_mutex_unlock(&p->lock);
}
