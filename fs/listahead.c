/*
 * listahead.c - list subfolders ahead of a reader; see listahead.h.
 *
 * One queue of folders for the mount, newest first: a reader walking the
 * tree depth first (find, ls -R, du) opens the first subfolder of the
 * folder it just read next, so each opendir's subfolders go to the front,
 * in their order, and when the queue is full the oldest are dropped.  Per
 * cloud, the number of listings running.  listahead_dir queues and pumps;
 * each listing runs as a liveness.h background refresh
 * (liveness_refresh_background, keyed like fs/refresh.c's listing
 * refreshes) and, when it ends, frees its slot and pumps again.  A reader
 * that needs a folder itself (listahead_wait) takes it out of the queue,
 * or waits a moment for its running listing rather than sending a second
 * one.  Locks: la->lock is never held while calling liveness.h;
 * la_free_job (the refresh's free_arg) runs under liveness' lock and
 * takes only la->lock.
 */
#include "listahead.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../lib/metrics.h"
#include "liveness.h"
#include "refresh.h"

struct la_job {
    struct la_job *next;        /* in la->head (queued) or la->active (running) */
    struct listahead *la;
    struct cloud *c;
    uint64_t ino;
    char *path;
    bool counted;               /* running: holds a slot of its cloud (la->lock) */
};

struct listahead {
    pthread_mutex_t lock;
    pthread_cond_t ended;       /* a running listing ended (CLOCK_MONOTONIC) */
    struct la_job *head;        /* queued, the next to start first */
    size_t queued;
    struct la_job *active;      /* running */
    unsigned *running;          /* per cloud (index in fs->clouds) */
    bool stopping;
};

int listahead_start(struct skyfs *fs, struct sky_err *e)
{
    struct listahead *la = calloc(1, sizeof *la);
    if (la)
        la->running = calloc(fs->nclouds ? fs->nclouds : 1, sizeof *la->running);
    if (!la || !la->running) {
        free(la);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    pthread_mutex_init(&la->lock, NULL);
    clock_cond_init(&la->ended);
    fs->listahead = la;
    return 0;
}

static void la_job_free(struct la_job *j)
{
    free(j->path);
    free(j);
}

static void la_free_list(struct la_job *j)
{
    while (j) {
        struct la_job *next = j->next;
        la_job_free(j);
        j = next;
    }
}

void listahead_stop(struct skyfs *fs)
{
    struct listahead *la = fs->listahead;
    if (!la)
        return;
    pthread_mutex_lock(&la->lock);
    la->stopping = true;
    struct la_job *j = la->head;
    la->head = NULL;
    la->queued = 0;
    pthread_cond_broadcast(&la->ended);
    pthread_mutex_unlock(&la->lock);
    la_free_list(j);
}

void listahead_free(struct skyfs *fs)
{
    struct listahead *la = fs->listahead;
    if (!la)
        return;
    listahead_stop(fs);
    pthread_cond_destroy(&la->ended);
    pthread_mutex_destroy(&la->lock);
    free(la->running);
    free(la);
    fs->listahead = NULL;
}

/* Unlink j from the list at *p, if it is there. */
static bool la_unlink(struct la_job **p, struct la_job *j)
{
    for (; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            j->next = NULL;
            return true;
        }
    }
    return false;
}

/* A running listing is over: give back its cloud's slot, and wake the
 * readers waiting for it (la->lock held). */
static void la_release_slot(struct la_job *j)
{
    struct listahead *la = j->la;
    if (!j->counted)
        return;
    la->running[j->c - j->c->fs->clouds]--;
    la_unlink(&la->active, j);
    j->counted = false;
    pthread_cond_broadcast(&la->ended);
}

/* free_arg of a listing: runs under liveness' lock (at the end of the
 * listing, or at once when a refresh of that folder runs already). */
static void la_free_job(void *arg)
{
    struct la_job *j = arg;
    pthread_mutex_lock(&j->la->lock);
    la_release_slot(j);
    pthread_mutex_unlock(&j->la->lock);
    la_job_free(j);
}

static void la_pump(struct skyfs *fs);

/* The listing, on its own thread (or the caller's when no thread could be
 * started).  A folder listed meanwhile (by the reader) is left alone. */
static int la_run(struct skyfs *fs, void *arg, struct sky_err *e)
{
    struct la_job *j = arg;
    struct listahead *la = j->la;
    /* low priority: the reader's own requests come first for the CPU */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    pthread_mutex_lock(&la->lock);
    bool stopping = la->stopping;
    pthread_mutex_unlock(&la->lock);
    int rc = 0;
    struct meta_entry ent;
    if (!stopping && meta_get(fs->meta, j->ino, &ent, e) == 0) {
        bool cold = ent.attr.kind == SKY_DIR && ent.listed_at == 0;
        meta_entry_free(&ent);
        if (cold)
            rc = refresh_list_now(fs, j->c, j->ino, j->path, e);
    }
    pthread_mutex_lock(&la->lock);
    la_release_slot(j);
    pthread_mutex_unlock(&la->lock);
    la_pump(fs);
    return rc;
}

/* Start queued listings while their clouds' bounds allow. */
static void la_pump(struct skyfs *fs)
{
    struct listahead *la = fs->listahead;
    for (;;) {
        pthread_mutex_lock(&la->lock);
        struct la_job *j = NULL;
        for (struct la_job **p = &la->head; !la->stopping && *p; p = &(*p)->next) {
            struct cloud *c = (*p)->c;
            if (la->running[c - fs->clouds] < c->cfg->list_ahead) {
                j = *p;
                *p = j->next;
                la->queued--;
                j->counted = true;
                la->running[c - fs->clouds]++;
                j->next = la->active;
                la->active = j;
                break;
            }
        }
        pthread_mutex_unlock(&la->lock);
        if (!j)
            return;
        if (cloud_unreachable(j->c)) {      /* offline: no listing ahead */
            la_free_job(j);
            continue;
        }
        struct sky_err e = { 0 };
        (void)liveness_refresh_background(fs, LIVENESS_KEY(j->ino, LIVENESS_LISTING), la_run, j,
                                          la_free_job, &e);
    }
}

/* The queued job for (c, ino), or NULL (la->lock held); *prev gets the
 * link that points to it. */
static struct la_job *la_find(struct la_job **head, struct cloud *c, uint64_t ino,
                              struct la_job ***prev)
{
    for (struct la_job **p = head; *p; p = &(*p)->next) {
        if ((*p)->ino == ino && (*p)->c == c) {
            *prev = p;
            return *p;
        }
    }
    return NULL;
}

/* Subfolders found by one opendir, in order, before they join the queue. */
struct la_walk {
    struct listahead *la;
    struct cloud *c;
    struct la_job *head, **tail;
    size_t n;
};

static int la_child(void *arg, const struct meta_entry *ent)
{
    struct la_walk *w = arg;
    if (ent->attr.kind != SKY_DIR || ent->listed_at != 0)
        return 0;
    struct la_job *j = calloc(1, sizeof *j);
    if (j)
        j->path = strdup(ent->path);
    if (!j || !j->path) {
        free(j);
        return 1;                           /* stop the walk */
    }
    j->la = w->la;
    j->c = w->c;
    j->ino = ent->ino;
    *w->tail = j;
    w->tail = &j->next;
    return ++w->n >= LISTAHEAD_QUEUE_MAX ? 1 : 0;
}

void listahead_dir(struct skyfs *fs, struct cloud *c, uint64_t dir_ino)
{
    struct listahead *la = fs->listahead;
    if (!la || !c || !c->cfg->list_ahead || cloud_unreachable(c))
        return;
    struct la_walk w = { .la = la, .c = c };
    w.tail = &w.head;
    struct sky_err e = { 0 };
    (void)meta_children(fs->meta, dir_ino, la_child, &w, &e);
    if (!w.head)
        return;
    pthread_mutex_lock(&la->lock);
    if (la->stopping) {
        pthread_mutex_unlock(&la->lock);
        la_free_list(w.head);
        return;
    }
    /* to the front, in order; one already queued moves up with them */
    for (struct la_job *j = w.head; j; j = j->next) {
        struct la_job **prev, *old = la_find(&la->head, c, j->ino, &prev);
        if (old) {
            *prev = old->next;
            la->queued--;
            la_job_free(old);
        }
        sky_metrics_inc(SKY_M_LIST_AHEAD);
    }
    *w.tail = la->head;
    la->head = w.head;
    la->queued += w.n;
    /* over the bound: drop the oldest */
    struct la_job *drop = NULL;
    size_t kept = 0;
    for (struct la_job **p = &la->head; *p; p = &(*p)->next) {
        if (++kept > LISTAHEAD_QUEUE_MAX) {
            drop = *p;
            *p = NULL;
            la->queued = LISTAHEAD_QUEUE_MAX;
            break;
        }
    }
    pthread_mutex_unlock(&la->lock);
    la_free_list(drop);
    la_pump(fs);
}

bool listahead_wait(struct skyfs *fs, struct cloud *c, uint64_t ino)
{
    struct listahead *la = fs->listahead;
    if (!la)
        return false;
    pthread_mutex_lock(&la->lock);
    struct la_job **prev, *j = la_find(&la->head, c, ino, &prev);
    if (j) {                                /* queued: the reader lists it now */
        *prev = j->next;
        la->queued--;
        pthread_mutex_unlock(&la->lock);
        la_job_free(j);
        return false;
    }
    struct timespec until = clock_deadline_ms(LISTAHEAD_WAIT_MS);
    bool waited = false;
    while (!la->stopping && la_find(&la->active, c, ino, &prev)) {
        waited = true;
        if (pthread_cond_timedwait(&la->ended, &la->lock, &until) != 0)
            break;
    }
    bool over = waited && !la_find(&la->active, c, ino, &prev);
    pthread_mutex_unlock(&la->lock);
    return over;
}
