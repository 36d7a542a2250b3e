/*
 * aheadq.c - a queue of background work ahead of a reader; see aheadq.h.
 *
 * The queue (the next to start first) and the running jobs are lists under
 * q->lock, with a count of running jobs per cloud (index in fs->clouds).
 * aheadq_add queues and pumps; each job runs as a liveness.h background
 * refresh and, when it ends, frees its slot and pumps again.  The slot is
 * given back once, by whichever comes first: the end of the work, or
 * liveness' free_arg (called at once when a refresh of that key runs
 * already, or at the end otherwise).  The queue is short (at most `max`
 * jobs), so it is walked rather than indexed.
 */
#include "aheadq.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "liveness.h"

struct aheadq {
    struct skyfs *fs;
    int kind;                   /* LIVENESS_LISTING, LIVENESS_FETCH */
    aheadq_work_fn work;
    aheadq_bound_fn bound;
    size_t max;
    pthread_mutex_t lock;
    pthread_cond_t ended;       /* a running job ended (CLOCK_MONOTONIC) */
    struct aheadq_job *head;    /* queued, the next to start first */
    size_t queued;
    struct aheadq_job *active;  /* running */
    unsigned *running;          /* per cloud */
    bool stopping;
};

struct aheadq *aheadq_new(struct skyfs *fs, int kind, aheadq_work_fn work,
                          aheadq_bound_fn bound, size_t max)
{
    struct aheadq *q = calloc(1, sizeof *q);
    if (q)
        q->running = calloc(fs->nclouds ? fs->nclouds : 1, sizeof *q->running);
    if (!q || !q->running) {
        free(q);
        return NULL;
    }
    q->fs = fs;
    q->kind = kind;
    q->work = work;
    q->bound = bound;
    q->max = max;
    pthread_mutex_init(&q->lock, NULL);
    clock_cond_init(&q->ended);
    return q;
}

struct aheadq_job *aheadq_job_new(struct cloud *c, uint64_t ino, const char *path)
{
    struct aheadq_job *j = calloc(1, sizeof *j);
    if (j && path && !(j->path = strdup(path))) {
        free(j);
        return NULL;
    }
    if (j) {
        j->c = c;
        j->ino = ino;
    }
    return j;
}

static void job_free(struct aheadq_job *j)
{
    free(j->path);
    free(j);
}

void aheadq_jobs_free(struct aheadq_job *list)
{
    while (list) {
        struct aheadq_job *next = list->next;
        job_free(list);
        list = next;
    }
}

void aheadq_stop(struct aheadq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    struct aheadq_job *j = q->head;
    q->head = NULL;
    q->queued = 0;
    pthread_cond_broadcast(&q->ended);
    pthread_mutex_unlock(&q->lock);
    aheadq_jobs_free(j);
}

void aheadq_free(struct aheadq *q)
{
    if (!q)
        return;
    aheadq_stop(q);
    pthread_cond_destroy(&q->ended);
    pthread_mutex_destroy(&q->lock);
    free(q->running);
    free(q);
}

bool aheadq_stopping(struct aheadq *q)
{
    pthread_mutex_lock(&q->lock);
    bool stopping = q->stopping;
    pthread_mutex_unlock(&q->lock);
    return stopping;
}

/* The link that points to the job of (c, ino) in the list at *head, or
 * NULL (q->lock held). */
static struct aheadq_job **find_link(struct aheadq_job **head, struct cloud *c, uint64_t ino)
{
    for (struct aheadq_job **p = head; *p; p = &(*p)->next)
        if ((*p)->ino == ino && (*p)->c == c)
            return p;
    return NULL;
}

/* Unlink j from the list at *head, if it is there (q->lock held). */
static void unlink_job(struct aheadq_job **head, struct aheadq_job *j)
{
    for (struct aheadq_job **p = head; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            j->next = NULL;
            return;
        }
    }
}

/* A running job is over, or will not run: give back its cloud's slot,
 * once, and wake the readers waiting for it. */
static void release_slot(struct aheadq_job *j)
{
    struct aheadq *q = j->q;
    pthread_mutex_lock(&q->lock);
    if (j->counted) {
        q->running[j->c - q->fs->clouds]--;
        unlink_job(&q->active, j);
        j->counted = false;
        pthread_cond_broadcast(&q->ended);
    }
    pthread_mutex_unlock(&q->lock);
}

/* free_arg of a job's refresh: runs under liveness' lock. */
static void end_job(void *arg)
{
    struct aheadq_job *j = arg;
    release_slot(j);
    job_free(j);
}

static void pump(struct aheadq *q);

/* A job, on its own thread (or the caller's when no thread could be
 * started). */
static int run_job(struct skyfs *fs, void *arg, struct sky_err *e)
{
    struct aheadq_job *j = arg;
    struct aheadq *q = j->q;
    /* low priority: the reader's own requests come first for the CPU */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    int rc = 0;
    if (!aheadq_stopping(q) && !cloud_unreachable(j->c))
        rc = q->work(fs, j, e);
    release_slot(j);
    pump(q);
    return rc;
}

/* Start queued jobs while their clouds' bounds allow. */
static void pump(struct aheadq *q)
{
    for (;;) {
        pthread_mutex_lock(&q->lock);
        struct aheadq_job *j = NULL;
        for (struct aheadq_job **p = &q->head; !q->stopping && *p; p = &(*p)->next) {
            struct cloud *c = (*p)->c;
            if (q->running[c - q->fs->clouds] < q->bound(c)) {
                j = *p;
                *p = j->next;
                q->queued--;
                j->counted = true;
                q->running[c - q->fs->clouds]++;
                j->next = q->active;
                q->active = j;
                break;
            }
        }
        pthread_mutex_unlock(&q->lock);
        if (!j)
            return;
        if (cloud_unreachable(j->c)) {      /* offline: nothing ahead */
            end_job(j);
            continue;
        }
        struct sky_err e = { 0 };
        (void)liveness_refresh_background(q->fs, LIVENESS_KEY(j->ino, q->kind), run_job, j,
                                          end_job, &e);
    }
}

void aheadq_add(struct aheadq *q, struct aheadq_job *jobs, bool front)
{
    if (!jobs)
        return;
    pthread_mutex_lock(&q->lock);
    if (q->stopping) {
        pthread_mutex_unlock(&q->lock);
        aheadq_jobs_free(jobs);
        return;
    }
    struct aheadq_job *last = NULL, *old = NULL;
    for (struct aheadq_job *j = jobs; j; last = j, j = j->next) {
        j->q = q;
        struct aheadq_job **p = find_link(&q->head, j->c, j->ino);
        if (p) {                            /* queued already: moves with these */
            struct aheadq_job *dup = *p;
            *p = dup->next;
            dup->next = old;
            old = dup;
            q->queued--;
        }
        q->queued++;
    }
    struct aheadq_job **tail = &q->head;
    if (front) {
        last->next = q->head;
        q->head = jobs;
    } else {
        while (*tail)
            tail = &(*tail)->next;
        *tail = jobs;
    }
    /* over the bound: drop the oldest (the back of a queue filled at the
     * front, the front of one filled at the back) */
    struct aheadq_job *drop = NULL;
    if (front) {
        size_t kept = 0;
        for (tail = &q->head; *tail && kept < q->max; tail = &(*tail)->next)
            kept++;
        drop = *tail;
        *tail = NULL;
        q->queued = kept;
    } else {
        while (q->queued > q->max) {
            struct aheadq_job *j = q->head;
            q->head = j->next;
            j->next = drop;
            drop = j;
            q->queued--;
        }
    }
    pthread_mutex_unlock(&q->lock);
    aheadq_jobs_free(old);
    aheadq_jobs_free(drop);
    pump(q);
}

bool aheadq_take(struct aheadq *q, struct cloud *c, uint64_t ino)
{
    pthread_mutex_lock(&q->lock);
    struct aheadq_job **p = find_link(&q->head, c, ino), *j = p ? *p : NULL;
    if (j) {
        *p = j->next;
        q->queued--;
    }
    pthread_mutex_unlock(&q->lock);
    if (j)
        job_free(j);
    return j != NULL;
}

bool aheadq_wait(struct aheadq *q, struct cloud *c, uint64_t ino, int wait_ms)
{
    pthread_mutex_lock(&q->lock);
    struct timespec until = clock_deadline_ms(wait_ms);
    bool waited = false;
    while (!q->stopping && find_link(&q->active, c, ino)) {
        waited = true;
        if (pthread_cond_timedwait(&q->ended, &q->lock, &until) != 0)
            break;
    }
    bool over = waited && !find_link(&q->active, c, ino);
    pthread_mutex_unlock(&q->lock);
    return over;
}
