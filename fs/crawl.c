/*
 * crawl.c - see crawl.h.
 *
 * One struct crawler per cloud (fs->crawlers, indexed like fs->clouds).
 * Its thread sleeps on its own condition variable until the next crawl is
 * due or the mount stops; crawl_stop sets `stopping`, wakes it and
 * cancels its transfers (its own struct http_cancel), then joins it.
 *
 * A flat crawl keeps one batch of copied entries (CRAWL_BATCH) in memory,
 * whatever the cloud's size; a walk keeps one directory's listing.
 */
#include "crawl.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../backends/http.h"
#include "../cache/crawlstore.h"
#include "../lib/clock.h"
#include "../lib/log.h"

#define CRAWL_BATCH 500             /* entries per transaction, at most */
#define CRAWL_BATCH_MS 100          /* ... and a batch is stored once this old */
#define CRAWL_SWEEP_BATCH 2000      /* entries looked at per sweep transaction */
#define CRAWL_NICE 10
#define CRAWL_RETRY_FIRST_MS 30000LL
#define CRAWL_OFFLINE_POLL_MS 1000LL
#define CRAWL_QUIET_MS 1000LL       /* the first crawl waits for the cloud to pause so long */
#define CRAWL_QUIET_MAX_MS 10000LL  /* ... but no longer than this after the mount */
#define CRAWL_QUIET_POLL_MS 100LL

struct crawler {
    struct skyfs *fs;
    struct cloud *c;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;            /* CLOCK_MONOTONIC */
    bool stopping;                  /* (lock) */
    struct http_cancel cancel;      /* the thread's transfers */
    struct crawl_counters count;
};

/* ---- waiting ---------------------------------------------------------------- */

/* Sleep up to `ms` (or until stopped): true when the mount is stopping. */
static bool nap(struct crawler *cr, long long ms)
{
    struct timespec until = clock_deadline_ms(ms);
    pthread_mutex_lock(&cr->lock);
    if (!cr->stopping && ms > 0)
        pthread_cond_timedwait(&cr->cond, &cr->lock, &until);
    bool stop = cr->stopping;
    pthread_mutex_unlock(&cr->lock);
    return stop;
}

static bool stopping(struct crawler *cr)
{
    pthread_mutex_lock(&cr->lock);
    bool stop = cr->stopping;
    pthread_mutex_unlock(&cr->lock);
    return stop;
}

/* Wait while the cloud is offline (the probe thread marks it back).
 * true when the mount is stopping. */
static bool wait_online(struct crawler *cr)
{
    bool said = false;
    while (cloud_offline_check(cr->c, NULL) != 0) {
        if (!said)
            LOG_INFO("cloud '%s': crawl paused while the cloud is offline", cr->c->cfg->name);
        said = true;
        if (nap(cr, CRAWL_OFFLINE_POLL_MS))
            return true;
    }
    if (said)
        LOG_INFO("cloud '%s': crawl resumed", cr->c->cfg->name);
    return stopping(cr);
}

/* The first crawl of a mount lets the people using it go first: right
 * after a mount they list what the crawl would list, and asked at once,
 * the same symlink checks go out twice (measured on a fresh mount: cold
 * `find` 95 -> 65 requests, `grep -r` 252 -> 165 with the crawl out of the
 * way).  So it starts once the cloud has made no request for
 * CRAWL_QUIET_MS (c->requests counts them; answers from the cache make
 * none), or CRAWL_QUIET_MAX_MS after the mount at the latest.  true when
 * the mount is stopping. */
static bool wait_quiet(struct crawler *cr)
{
    long long start = clock_now_ms(), quiet_since = start;
    unsigned long long seen = atomic_load(&cr->c->requests);
    while (clock_now_ms() - start < CRAWL_QUIET_MAX_MS) {
        if (nap(cr, CRAWL_QUIET_POLL_MS))
            return true;
        unsigned long long now = atomic_load(&cr->c->requests);
        if (now != seen) {
            seen = now;
            quiet_since = clock_now_ms();
        } else if (clock_now_ms() - quiet_since >= CRAWL_QUIET_MS) {
            break;
        }
    }
    return stopping(cr);
}

/* ---- the flat crawl -------------------------------------------------------- */

struct flat {
    struct crawler *cr;
    int64_t gen, started;
    struct sky_dirent ents[CRAWL_BATCH];
    size_t n;
    int64_t batch_asof;             /* when the batch's first entry arrived */
    long long batch_ms;             /* ... on the monotonic clock */
    uint64_t seen;
    long long store_ms;             /* time spent storing (SQLite), the rest is listing */
    struct sky_err err;             /* a failure to store */
};

static void flat_clear(struct flat *f)
{
    for (size_t i = 0; i < f->n; i++)
        sky_dirent_free(&f->ents[i]);
    f->n = 0;
}

static int flat_flush(struct flat *f)
{
    if (f->n == 0)
        return 0;
    struct cloud *c = f->cr->c;
    long long t0 = clock_now_ms();
    int rc = meta_crawl_store(c->fs->meta, c->cfg->name, f->gen, f->started, f->batch_asof,
                              f->ents, f->n, f->seen, &f->err);
    f->store_ms += clock_now_ms() - t0;
    atomic_fetch_add(&f->cr->count.entries, f->n);
    flat_clear(f);
    sched_yield();                  /* users' requests first */
    return rc;
}

static int flat_entry(void *arg, const struct sky_dirent *d)
{
    struct flat *f = arg;
    if (stopping(f->cr))
        return -EINTR;
    if (f->n == 0) {
        f->batch_asof = skyfs_now();
        f->batch_ms = clock_now_ms();
    }
    if (sky_dirent_copy(&f->ents[f->n], d))
        return -ENOMEM;
    f->n++;
    f->seen++;
    return f->n == CRAWL_BATCH || clock_now_ms() - f->batch_ms >= CRAWL_BATCH_MS ? flat_flush(f)
                                                                                : 0;
}

/* The sweep after a complete flat listing. */
static int sweep(struct crawler *cr, int64_t gen, int64_t started, struct sky_err *e)
{
    char *cursor = NULL;
    bool done = false;
    uint64_t removed = 0;
    int rc = 0;
    while (rc == 0 && !done) {
        if (stopping(cr)) {
            rc = sky_fail(e, EINTR, "the mount is stopping");
            break;
        }
        rc = meta_crawl_sweep(cr->fs->meta, cr->c->cfg->name, gen, started, &cursor,
                              CRAWL_SWEEP_BATCH, &removed, &done, e);
        sched_yield();
    }
    free(cursor);
    atomic_fetch_add(&cr->count.removed, removed);
    if (removed)
        LOG_INFO("cloud '%s': the crawl removed %llu entries gone from the cloud",
                 cr->c->cfg->name, (unsigned long long)removed);
    return rc;
}

/* -ENOTSUP when the driver has no flat listing here.  *store_ms gets the
 * time spent in SQLite (storing and sweeping). */
static int crawl_flat(struct crawler *cr, int64_t gen, int64_t started, uint64_t *seen,
                      long long *store_ms, struct sky_err *e)
{
    struct cloud *c = cr->c;
    if (!c->drv->list_tree)
        return -ENOTSUP;
    struct flat *f = calloc(1, sizeof *f);
    if (!f)
        return sky_fail(e, ENOMEM, "out of memory");
    f->cr = cr;
    f->gen = gen;
    f->started = started;
    int rc = c->drv->list_tree(c->ctx, "", flat_entry, f, e);
    if (rc == -ENOTSUP) {
        flat_clear(f);
        free(f);
        return rc;
    }
    if (rc == -EHOSTDOWN)
        cloud_note_result(c, rc, e);
    if (rc == 0)
        rc = flat_flush(f);
    if (f->err.code && (rc == 0 || rc == -f->err.code))
        *e = f->err;                /* the store failed: its message, not the driver's */
    if (rc == -EINTR && stopping(cr))
        sky_fail(e, EINTR, "the mount is stopping");
    *seen = f->seen;
    *store_ms = f->store_ms;
    flat_clear(f);
    free(f);
    long long t0 = clock_now_ms();
    if (rc == 0)
        rc = sweep(cr, gen, started, e);
    *store_ms += clock_now_ms() - t0;
    return rc;
}

/* ---- the walk ----------------------------------------------------------------- */

struct listing {
    struct crawler *cr;
    struct sky_dirent *ents;
    size_t n, cap;
};

static int listing_entry(void *arg, const struct sky_dirent *d)
{
    struct listing *l = arg;
    if (stopping(l->cr))
        return -EINTR;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct sky_dirent *n = realloc(l->ents, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        l->ents = n;
        l->cap = cap;
    }
    if (sky_dirent_copy(&l->ents[l->n], d))
        return -ENOMEM;
    l->n++;
    return 0;
}

static void listing_clear(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        sky_dirent_free(&l->ents[i]);
    l->n = 0;
}

/* List directory (ino, path) into the cache, unless a listing through the
 * mount did it since the crawl began.  0, or -ESTALE when it is gone. */
static int walk_one(struct crawler *cr, struct listing *l, uint64_t ino, const char *path,
                    int64_t started, int64_t gen, uint64_t *seen, struct sky_err *e)
{
    struct cloud *c = cr->c;
    struct meta_entry dir;
    if (meta_get(c->fs->meta, ino, &dir, NULL) == 0) {
        bool fresh = dir.listed_at > started;
        meta_entry_free(&dir);
        if (fresh)
            return 0;
    }
    for (;;) {
        if (wait_online(cr))
            return sky_fail(e, EINTR, "the mount is stopping");
        int64_t asked = skyfs_now();
        int rc = c->drv->list(c->ctx, path, listing_entry, l, e);
        if (rc == -EHOSTDOWN) {
            cloud_note_result(c, rc, e);
            listing_clear(l);
            continue;                   /* paused above, then this directory again */
        }
        if (rc == -ENOENT || rc == -ENOTDIR) {
            listing_clear(l);
            meta_forget_gone(c->fs->meta, ino, NULL);   /* gone since its parent was listed */
            return 0;
        }
        if (rc == -EACCES) {
            LOG_WARN("cloud '%s': the crawl cannot list \"%s\", left out of the index: %s",
                     c->cfg->name, path, e->msg);
            listing_clear(l);
            return 0;
        }
        if (rc == 0)
            rc = meta_replace_listing(c->fs->meta, ino, l->ents, l->n, asked, e);
        if (rc == -ENOENT)
            rc = 0;                     /* removed from the cache meanwhile */
        *seen += l->n;
        atomic_fetch_add(&cr->count.entries, l->n);
        listing_clear(l);
        if (rc == 0)
            rc = meta_crawl_store(c->fs->meta, c->cfg->name, gen, started, asked, NULL, 0,
                                  *seen, e);
        sched_yield();
        return rc;
    }
}

static int crawl_walk(struct crawler *cr, int64_t gen, int64_t started, uint64_t *seen,
                      struct sky_err *e)
{
    struct cloud *c = cr->c;
    struct listing l = { .cr = cr };
    int rc = walk_one(cr, &l, c->root_ino, "", started, gen, seen, e);
    char *path = strdup("");
    if (!path)
        rc = sky_fail(e, ENOMEM, "out of memory");
    while (rc == 0) {
        if (stopping(cr)) {
            rc = sky_fail(e, EINTR, "the mount is stopping");
            break;
        }
        uint64_t ino;
        char *next = NULL;
        rc = meta_crawl_next_dir(c->fs->meta, c->cfg->name, path, &ino, &next, e);
        if (rc == -ENOENT) {
            rc = 0;
            break;
        }
        if (rc == 0) {
            free(path);
            path = next;
            rc = walk_one(cr, &l, ino, path, started, gen, seen, e);
        }
    }
    free(path);
    listing_clear(&l);
    free(l.ents);
    return rc;
}

/* ---- one crawl, and the thread -------------------------------------------- */

static int crawl_once(struct crawler *cr, struct sky_err *e)
{
    struct cloud *c = cr->c;
    struct meta *m = c->fs->meta;
    int64_t started = skyfs_now(), gen;
    long long t0 = clock_now_ms();
    int rc = meta_crawl_begin(m, c->cfg->name, started, &gen, e);
    if (rc)
        return rc;
    atomic_store(&cr->count.running, 1);
    LOG_INFO("cloud '%s': crawl %lld started", c->cfg->name, (long long)gen);
    uint64_t seen = 0;
    long long store_ms = -1;
    rc = crawl_flat(cr, gen, started, &seen, &store_ms, e);
    if (rc == -ENOTSUP) {
        seen = 0;
        store_ms = -1;
        rc = crawl_walk(cr, gen, started, &seen, e);
    }
    long long ms = clock_now_ms() - t0;
    struct sky_err end_err = { 0 };
    if (meta_crawl_end(m, c->cfg->name, started, skyfs_now(), seen, rc ? e->msg : NULL,
                       &end_err) != 0)
        LOG_WARN("cloud '%s': cannot record the crawl: %s", c->cfg->name, end_err.msg);
    atomic_store(&cr->count.running, 0);
    if (rc == 0) {
        atomic_fetch_add(&cr->count.crawls, 1);
        atomic_store(&cr->count.last_duration_ms, (unsigned long long)ms);
        if (store_ms >= 0)
            LOG_INFO("cloud '%s': crawl %lld complete: %llu entries in %.2f s (%.2f s of it "
                     "storing and sweeping, the rest listing)", c->cfg->name, (long long)gen,
                     (unsigned long long)seen, (double)ms / 1000.0, (double)store_ms / 1000.0);
        else
            LOG_INFO("cloud '%s': crawl %lld complete: %llu entries in %.2f s", c->cfg->name,
                     (long long)gen, (unsigned long long)seen, (double)ms / 1000.0);
    } else {
        atomic_fetch_add(&cr->count.failures, 1);
    }
    return rc;
}

/* Milliseconds until the next crawl is due (0: now), from the state the
 * cache keeps (so a remount within the interval does not crawl again). */
static long long due_in(struct crawler *cr, long long retry_at)
{
    struct crawl_state st;
    struct sky_err e = { 0 };
    if (meta_crawl_state(cr->fs->meta, cr->c->cfg->name, &st, &e) != 0)
        return 60000;
    int64_t interval = cr->c->cfg->index_interval_ns;
    long long wait = 0;
    if (st.done_started > 0) {
        if (interval == SKY_TTL_FOREVER)
            return -1;              /* crawled once: never again */
        int64_t age = skyfs_now() - st.done_started;
        wait = age >= interval ? 0 : (long long)((interval - age) / 1000000);
    }
    long long retry = retry_at - clock_now_ms();
    return retry > wait ? retry : wait;
}

static void *crawl_main(void *arg)
{
    struct crawler *cr = arg;
    struct cloud *c = cr->c;
    /* below the FUSE threads: the crawl takes what CPU they leave */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CRAWL_NICE) != 0)
        LOG_DEBUG("cloud '%s': cannot lower the crawl thread's priority", c->cfg->name);
    http_cancel_set(&cr->cancel);
    long long retry_at = 0, retry_ms = CRAWL_RETRY_FIRST_MS;
    bool first = true;
    while (!stopping(cr)) {
        long long wait = due_in(cr, retry_at);
        if (wait < 0) {
            nap(cr, 3600000);
            continue;
        }
        if (wait > 0) {
            nap(cr, wait);
            continue;               /* look again: the state may have moved */
        }
        if (wait_online(cr) || (first && wait_quiet(cr)))
            break;
        first = false;
        struct sky_err e = { 0 };
        int rc = crawl_once(cr, &e);
        if (rc == 0) {
            retry_at = 0;
            retry_ms = CRAWL_RETRY_FIRST_MS;
        } else if (rc == -EHOSTDOWN || cloud_offline_check(c, NULL) != 0) {
            LOG_INFO("cloud '%s': crawl stopped, the cloud is offline: %s", c->cfg->name, e.msg);
            retry_at = 0;           /* wait_online pauses until it is back */
        } else if (!stopping(cr)) {
            LOG_WARN("cloud '%s': crawl failed, trying again in %lld s: %s", c->cfg->name,
                     retry_ms / 1000, e.msg);
            retry_at = clock_now_ms() + retry_ms;
            long long cap = c->cfg->index_interval_ns / 1000000;
            retry_ms = retry_ms * 2 > cap ? (cap > CRAWL_RETRY_FIRST_MS ? cap : retry_ms)
                                          : retry_ms * 2;
        }
    }
    http_cancel_set(NULL);
    return NULL;
}

void crawl_start(struct skyfs *fs)
{
    fs->crawlers = calloc(fs->nclouds, sizeof *fs->crawlers);
    if (!fs->crawlers) {
        LOG_ERROR("out of memory: no background crawl of the clouds");
        return;
    }
    for (size_t i = 0; i < fs->nclouds; i++) {
        struct crawler *cr = &fs->crawlers[i];
        struct cloud *c = &fs->clouds[i];
        cr->fs = fs;
        cr->c = c;
        if (!c->cfg->index || !c->ctx)
            continue;
        pthread_mutex_init(&cr->lock, NULL);
        clock_cond_init(&cr->cond);
        cr->cancel.background = true;   /* its requests yield to the mount's (http.h) */
        int rc = pthread_create(&cr->thread, NULL, crawl_main, cr);
        if (rc) {
            LOG_ERROR("cloud '%s': cannot start its crawl thread: %s", c->cfg->name,
                      strerror(rc));
            pthread_cond_destroy(&cr->cond);
            pthread_mutex_destroy(&cr->lock);
            continue;
        }
        cr->started = true;
    }
}

void crawl_stop(struct skyfs *fs)
{
    if (!fs->crawlers)
        return;
    for (size_t i = 0; i < fs->nclouds; i++) {
        struct crawler *cr = &fs->crawlers[i];
        if (!cr->started)
            continue;
        pthread_mutex_lock(&cr->lock);
        cr->stopping = true;
        atomic_store(&cr->cancel.cancelled, 1);
        pthread_cond_broadcast(&cr->cond);
        pthread_mutex_unlock(&cr->lock);
    }
    for (size_t i = 0; i < fs->nclouds; i++) {
        struct crawler *cr = &fs->crawlers[i];
        if (!cr->started)
            continue;
        pthread_join(cr->thread, NULL);
        pthread_cond_destroy(&cr->cond);
        pthread_mutex_destroy(&cr->lock);
        cr->started = false;
    }
    free(fs->crawlers);
    fs->crawlers = NULL;
}

const struct crawl_counters *crawl_counters_of(struct skyfs *fs, const struct cloud *c)
{
    if (!fs->crawlers)
        return NULL;
    for (size_t i = 0; i < fs->nclouds; i++)
        if (&fs->clouds[i] == c)
            return fs->crawlers[i].started ? &fs->crawlers[i].count : NULL;
    return NULL;
}
