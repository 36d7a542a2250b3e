/*
 * liveness.c - interrupted requests, offline probes, bounded refreshes and
 * stopping on a signal; see liveness.h.
 *
 * Interrupts.  A FUSE interrupt function gets only the request; what it
 * must reach is the HTTP cancel flag of the thread serving it.  Each
 * guarded request takes a slot in a static table (so an interrupt
 * function that runs late, after the request was answered, touches
 * memory that is still there and finds the slot no longer names its
 * request).  Lock order: libfuse's request lock, then guards_lock.
 *
 * Bounded refreshes.  A job is shared by the thread that runs it and the
 * requests waiting for it (reference counted); jobs still running are
 * kept in a list, both to let a second request for the same key wait for
 * the same job instead of asking again, and to let skyfs_close wait for
 * them.
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "liveness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../backends/http.h"
#include "../cache/blocks.h"
#include "../lib/clock.h"
#include "../lib/log.h"

#define PROBE_FIRST_MS 1000
#define PROBE_MAX_MS 16000
#define PROBE_TIMEOUT_MS 10000
#define PROBE_NAME ".skyfs-probe"

/* ---- interrupts ------------------------------------------------------- */

#define GUARD_SLOTS 256

struct guard {
    fuse_req_t req;             /* NULL: free (guards_lock) */
    pid_t watch;                /* interrupted by a signal its process caught: this
                                 * process, checked until it dies (guards_lock) */
    struct http_cancel cancel;
};

static struct guard guards[GUARD_SLOTS];
static pthread_mutex_t guards_lock = PTHREAD_MUTEX_INITIALIZER;
static int watched;             /* guards with a watch (guards_lock) */
static __thread struct guard *current_guard;

/* true if process `pid` is being killed (a fatal signal shows as SIGKILL
 * pending for each of its threads) or is gone. */
static bool process_dying(pid_t pid)
{
    if (pid <= 0)
        return false;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    bool dying = false;
    while (!dying && fgets(line, sizeof line, f)) {
        if (strncmp(line, "SigPnd:", 7) == 0 || strncmp(line, "ShdPnd:", 7) == 0)
            dying = (strtoull(line + 7, NULL, 16) & (1ULL << (SIGKILL - 1))) != 0;
    }
    fclose(f);
    return dying;
}

/* The kernel sends one interrupt per request, at the first signal.  A
 * signal the process catches is no reason to give up, but the process
 * may be killed later without another interrupt: it is then watched (the
 * probe thread looks every WATCH_MS). */
#define WATCH_MS 500

static void on_interrupt(fuse_req_t req, void *data)
{
    struct guard *g = data;
    pid_t pid = fuse_req_ctx(req)->pid;
    bool dying = process_dying(pid);
    bool watch = false;
    pthread_mutex_lock(&guards_lock);
    if (g->req == req && dying) {
        atomic_store(&g->cancel.cancelled, 1);
    } else if (g->req == req && !g->watch) {
        g->watch = pid;
        watched++;
        watch = true;
    }
    pthread_mutex_unlock(&guards_lock);
    struct skyfs *fs = fuse_req_userdata(req);
    if (watch && fs && fs->live_ready) {
        pthread_mutex_lock(&fs->live_lock);
        pthread_cond_broadcast(&fs->live_cond);
        pthread_mutex_unlock(&fs->live_lock);
    }
}

/* Cancel the watched requests whose process is dying; true if some are
 * still watched. */
static bool check_watched(void)
{
    pthread_mutex_lock(&guards_lock);
    for (size_t i = 0; i < GUARD_SLOTS && watched > 0; i++) {
        struct guard *g = &guards[i];
        if (g->req && g->watch && process_dying(g->watch)) {
            atomic_store(&g->cancel.cancelled, 1);
            g->watch = 0;
            watched--;
        }
    }
    bool more = watched > 0;
    pthread_mutex_unlock(&guards_lock);
    return more;
}

static struct guard *guard_begin(fuse_req_t req)
{
    struct guard *g = NULL;
    pthread_mutex_lock(&guards_lock);
    for (size_t i = 0; i < GUARD_SLOTS && !g; i++) {
        if (!guards[i].req) {
            g = &guards[i];
            g->req = req;
            g->watch = 0;
            atomic_store(&g->cancel.cancelled, 0);
            g->cancel.deadline_ms = 0;
        }
    }
    pthread_mutex_unlock(&guards_lock);
    if (!g)
        return NULL;            /* more requests than slots: this one unguarded */
    current_guard = g;
    http_cancel_set(&g->cancel);
    blocks_set_stop(&g->cancel.cancelled);
    fuse_req_interrupt_func(req, on_interrupt, g);
    return g;
}

static void guard_end(struct guard *g)
{
    http_cancel_set(NULL);
    blocks_set_stop(NULL);
    current_guard = NULL;
    if (!g)
        return;
    pthread_mutex_lock(&guards_lock);
    g->req = NULL;
    if (g->watch) {
        g->watch = 0;
        watched--;
    }
    pthread_mutex_unlock(&guards_lock);
}

static bool current_cancelled(void)
{
    return current_guard && atomic_load(&current_guard->cancel.cancelled);
}

#define GUARDED(op, params, args)                                                             \
    static void guarded_##op params                                                           \
    {                                                                                         \
        struct guard *g = guard_begin(req);                                                   \
        skyfs_core_ops.op args;                                                               \
        guard_end(g);                                                                         \
    }

GUARDED(lookup, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))
GUARDED(getattr, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
GUARDED(setattr, (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                  struct fuse_file_info *fi), (req, ino, attr, to_set, fi))
GUARDED(readlink, (fuse_req_t req, fuse_ino_t ino), (req, ino))
GUARDED(mknod, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev),
        (req, parent, name, mode, rdev))
GUARDED(mkdir, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode),
        (req, parent, name, mode))
GUARDED(unlink, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))
GUARDED(rmdir, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))
GUARDED(symlink, (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name),
        (req, link, parent, name))
GUARDED(rename, (fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                 const char *newname, unsigned int flags),
        (req, parent, name, newparent, newname, flags))
GUARDED(open, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
GUARDED(read, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
               struct fuse_file_info *fi), (req, ino, size, off, fi))
GUARDED(flush, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
GUARDED(fsync, (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi),
        (req, ino, datasync, fi))
GUARDED(opendir, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
GUARDED(statfs, (fuse_req_t req, fuse_ino_t ino), (req, ino))
GUARDED(setxattr, (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                   size_t size, int flags), (req, ino, name, value, size, flags))
GUARDED(getxattr, (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size),
        (req, ino, name, size))
GUARDED(listxattr, (fuse_req_t req, fuse_ino_t ino, size_t size), (req, ino, size))
GUARDED(removexattr, (fuse_req_t req, fuse_ino_t ino, const char *name), (req, ino, name))
GUARDED(create, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                 struct fuse_file_info *fi), (req, parent, name, mode, fi))

static struct fuse_lowlevel_ops table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void)
{
    table = skyfs_core_ops;
#define USE_GUARDED(op)                                                                       \
    if (table.op)                                                                             \
        table.op = guarded_##op
    USE_GUARDED(lookup);
    USE_GUARDED(getattr);
    USE_GUARDED(setattr);
    USE_GUARDED(readlink);
    USE_GUARDED(mknod);
    USE_GUARDED(mkdir);
    USE_GUARDED(unlink);
    USE_GUARDED(rmdir);
    USE_GUARDED(symlink);
    USE_GUARDED(rename);
    USE_GUARDED(open);
    USE_GUARDED(read);
    USE_GUARDED(flush);
    USE_GUARDED(fsync);
    USE_GUARDED(opendir);
    USE_GUARDED(statfs);
    USE_GUARDED(setxattr);
    USE_GUARDED(getxattr);
    USE_GUARDED(listxattr);
    USE_GUARDED(removexattr);
    USE_GUARDED(create);
#undef USE_GUARDED
}

const struct fuse_lowlevel_ops *liveness_ops(void)
{
    pthread_once(&table_once, build_table);
    return &table;
}

/* ---- signals ---------------------------------------------------------- */

static const int stop_signals[] = { SIGTERM, SIGINT, SIGHUP };
static struct sigaction chained[3];

static void on_stop_signal(int sig, siginfo_t *info, void *uctx)
{
    http_cancel_all();
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++) {
        if (stop_signals[i] != sig)
            continue;
        const struct sigaction *old = &chained[i];
        if (old->sa_flags & SA_SIGINFO)
            old->sa_sigaction(sig, info, uctx);
        else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN)
            old->sa_handler(sig);
    }
}

int liveness_stop_on_signals(void)
{
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_stop_signal;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        if (sigaction(stop_signals[i], &sa, &chained[i]) != 0)
            return -errno;
    }
    return 0;
}

/* ---- probing offline clouds ------------------------------------------- */

/* One probe of c: true if the cloud answered (anything but unreachable). */
static bool probe(struct cloud *c)
{
    struct http_cancel cancel = { .deadline_ms = clock_now_ms() + PROBE_TIMEOUT_MS };
    struct sky_attr a;
    struct sky_err e = { 0 };
    http_cancel_set(&cancel);
    int rc = c->drv->stat(c->ctx, PROBE_NAME, &a, &e);
    http_cancel_set(NULL);
    atomic_fetch_add(&c->probes, 1);
    if (rc == -EHOSTDOWN || rc == -EINTR) {
        LOG_DEBUG("cloud '%s' still offline: %s", c->cfg->name, e.msg);
        return false;
    }
    return true;
}

static void *probe_main(void *arg)
{
    struct skyfs *fs = arg;
    pthread_mutex_lock(&fs->live_lock);
    while (!fs->live_stopping) {
        long long now = clock_now_ms(), next = now + 60000;
        if (check_watched())
            next = now + WATCH_MS;
        struct cloud *due = NULL;
        for (size_t i = 0; i < fs->nclouds; i++) {
            struct cloud *c = &fs->clouds[i];
            pthread_mutex_lock(&c->health_lock);
            if (c->offline && c->ctx) {
                if (c->probe_at <= now && !due)
                    due = c;
                else if (c->probe_at < next)
                    next = c->probe_at;
            }
            pthread_mutex_unlock(&c->health_lock);
        }
        if (due) {
            pthread_mutex_unlock(&fs->live_lock);
            bool back = probe(due);
            if (back) {
                cloud_mark_online(due);
                /* pending uploads need not wait for the journal's backoff */
                pthread_mutex_lock(&fs->retry_lock);
                fs->retry_now = true;
                pthread_cond_broadcast(&fs->retry_cond);
                pthread_mutex_unlock(&fs->retry_lock);
                writeback_kick(fs);
            } else {
                pthread_mutex_lock(&due->health_lock);
                due->probe_delay_ms = due->probe_delay_ms * 2 > PROBE_MAX_MS
                                          ? PROBE_MAX_MS : due->probe_delay_ms * 2;
                due->probe_at = clock_now_ms() + due->probe_delay_ms;
                pthread_mutex_unlock(&due->health_lock);
            }
            pthread_mutex_lock(&fs->live_lock);
            continue;
        }
        struct timespec until = clock_deadline_ms(next - now);
        pthread_cond_timedwait(&fs->live_cond, &fs->live_lock, &until);
    }
    pthread_mutex_unlock(&fs->live_lock);
    return NULL;
}

void liveness_cloud_went_offline(struct skyfs *fs, struct cloud *c)
{
    pthread_mutex_lock(&c->health_lock);
    c->probe_delay_ms = PROBE_FIRST_MS;
    c->probe_at = clock_now_ms() + PROBE_FIRST_MS;
    pthread_mutex_unlock(&c->health_lock);
    pthread_mutex_lock(&fs->live_lock);
    pthread_cond_broadcast(&fs->live_cond);
    pthread_mutex_unlock(&fs->live_lock);
}

int liveness_start(struct skyfs *fs, struct sky_err *e)
{
    pthread_mutex_init(&fs->live_lock, NULL);
    clock_cond_init(&fs->live_cond);
    fs->live_ready = true;
    int rc = pthread_create(&fs->probe_thread, NULL, probe_main, fs);
    if (rc)
        return sky_fail(e, rc, "cannot start the probe thread: %s", strerror(rc));
    fs->probe_started = true;
    return 0;
}

/* ---- bounded refreshes ------------------------------------------------ */

struct refresh_job {
    struct skyfs *fs;
    uint64_t key;
    liveness_refresh_fn refresh;
    void *arg;
    void (*free_arg)(void *);
    long long started_ms;       /* when it began (monotonic) */
    int refs;                   /* the thread + each waiting request (live_lock) */
    bool done;
    int rc;
    struct sky_err err;
    struct refresh_job *next;   /* in fs->live_jobs while running */
};

/* Drop a reference (live_lock held); the last one frees the job. */
static void job_put(struct refresh_job *j)
{
    if (--j->refs > 0)
        return;
    if (j->free_arg)
        j->free_arg(j->arg);
    free(j);
}

static void *job_main(void *arg)
{
    struct refresh_job *j = arg;
    struct skyfs *fs = j->fs;
    struct sky_err e = { 0 };
    int rc = j->refresh(fs, j->arg, &e);
    pthread_mutex_lock(&fs->live_lock);
    j->done = true;
    j->rc = rc;
    j->err = e;
    for (struct refresh_job **p = &fs->live_jobs; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            break;
        }
    }
    job_put(j);
    pthread_cond_broadcast(&fs->live_cond);
    pthread_mutex_unlock(&fs->live_lock);
    return NULL;
}

static int refresh_waiting(struct skyfs *fs, uint64_t key, liveness_refresh_fn refresh,
                           void *arg, void (*free_arg)(void *), long long wait_ms,
                           struct sky_err *e);

int liveness_refresh_bounded(struct skyfs *fs, uint64_t key, liveness_refresh_fn refresh,
                             void *arg, void (*free_arg)(void *), struct sky_err *e)
{
    return refresh_waiting(fs, key, refresh, arg, free_arg, LIVENESS_SLOW_MS, e);
}

int liveness_refresh_background(struct skyfs *fs, uint64_t key, liveness_refresh_fn refresh,
                                void *arg, void (*free_arg)(void *), struct sky_err *e)
{
    return refresh_waiting(fs, key, refresh, arg, free_arg, 0, e);
}

static int refresh_waiting(struct skyfs *fs, uint64_t key, liveness_refresh_fn refresh,
                           void *arg, void (*free_arg)(void *), long long wait_ms,
                           struct sky_err *e)
{
    pthread_mutex_lock(&fs->live_lock);
    struct refresh_job *j = NULL;
    for (struct refresh_job *r = fs->live_jobs; key && r && !j; r = r->next)
        if (r->key == key)
            j = r;
    if (j) {
        if (free_arg)
            free_arg(arg);      /* the running refresh answers for us */
    } else {
        j = calloc(1, sizeof *j);
        pthread_attr_t at;
        bool started = false;
        if (j && !fs->live_stopping) {
            *j = (struct refresh_job){ .fs = fs, .key = key, .refresh = refresh, .arg = arg,
                                       .free_arg = free_arg, .started_ms = clock_now_ms(),
                                       .refs = 1, .next = fs->live_jobs };
            pthread_attr_init(&at);
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            pthread_t t;
            started = pthread_create(&t, &at, job_main, j) == 0;
            pthread_attr_destroy(&at);
        }
        if (!started) {
            pthread_mutex_unlock(&fs->live_lock);
            free(j);
            int rc = refresh(fs, arg, e);
            if (free_arg)
                free_arg(arg);
            return rc;
        }
        fs->live_jobs = j;
    }
    j->refs++;
    /* counted from the job's start: a request that comes while a slow
     * refresh of the same thing runs gets the cached answer at once */
    long long deadline = j->started_ms + wait_ms;
    int rc;
    while (!j->done && !current_cancelled() && clock_now_ms() < deadline) {
        struct timespec until = clock_deadline_ms(100);  /* look at interrupts every 100 ms */
        pthread_cond_timedwait(&fs->live_cond, &fs->live_lock, &until);
    }
    if (j->done) {
        rc = j->rc;
        if (rc && e)
            *e = j->err;
    } else if (current_cancelled()) {
        rc = sky_fail(e, EINTR, "request interrupted");
    } else {
        rc = sky_fail(e, ETIMEDOUT, "no answer within %lld ms", wait_ms);
    }
    job_put(j);
    pthread_mutex_unlock(&fs->live_lock);
    return rc;
}

void liveness_stop(struct skyfs *fs)
{
    if (!fs->live_ready)
        return;
    pthread_mutex_lock(&fs->live_lock);
    fs->live_stopping = true;
    pthread_cond_broadcast(&fs->live_cond);
    pthread_mutex_unlock(&fs->live_lock);
    if (fs->probe_started)
        pthread_join(fs->probe_thread, NULL);
    fs->probe_started = false;
    /* refreshes still running use the caches and drivers: wait for them */
    pthread_mutex_lock(&fs->live_lock);
    while (fs->live_jobs)
        pthread_cond_wait(&fs->live_cond, &fs->live_lock);
    pthread_mutex_unlock(&fs->live_lock);
    pthread_cond_destroy(&fs->live_cond);
    pthread_mutex_destroy(&fs->live_lock);
    fs->live_ready = false;
}
