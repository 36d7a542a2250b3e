/*
 * listahead.c - list subfolders ahead of a reader; see listahead.h.
 *
 * One FIFO of folders for the mount, and per cloud the number of listings
 * running.  listahead_dir queues and pumps; each listing runs as a
 * liveness.h background refresh (liveness_refresh_background, keyed like
 * the listing refreshes of fs/refresh.c) and, when it ends, frees its slot
 * and pumps again.  Locks: la->lock is never held while calling
 * liveness.h; la_free_job (the refresh's free_arg) runs under liveness'
 * lock and takes only la->lock.
 */
#include "listahead.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/metrics.h"
#include "liveness.h"
#include "refresh.h"

struct la_job {
    struct la_job *next;
    struct listahead *la;
    struct cloud *c;
    uint64_t ino;
    char *path;
    bool counted;               /* holds a running slot of its cloud (la->lock) */
};

struct listahead {
    pthread_mutex_t lock;
    struct la_job *head, *tail;
    size_t queued;
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
    fs->listahead = la;
    return 0;
}

static void la_job_free(struct la_job *j)
{
    free(j->path);
    free(j);
}

void listahead_stop(struct skyfs *fs)
{
    struct listahead *la = fs->listahead;
    if (!la)
        return;
    pthread_mutex_lock(&la->lock);
    la->stopping = true;
    struct la_job *j = la->head;
    la->head = la->tail = NULL;
    la->queued = 0;
    pthread_mutex_unlock(&la->lock);
    while (j) {
        struct la_job *next = j->next;
        la_job_free(j);
        j = next;
    }
}

void listahead_free(struct skyfs *fs)
{
    struct listahead *la = fs->listahead;
    if (!la)
        return;
    listahead_stop(fs);
    pthread_mutex_destroy(&la->lock);
    free(la->running);
    free(la);
    fs->listahead = NULL;
}

/* Give back the running slot of j's cloud (la->lock held). */
static void la_release_slot(struct la_job *j)
{
    if (j->counted)
        j->la->running[j->c - j->c->fs->clouds]--;
    j->counted = false;
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

/* Is cloud c offline now? */
static bool la_offline(struct cloud *c)
{
    struct sky_err e = { 0 };
    return !c->ctx || cloud_offline_check(c, &e) != 0;
}

/* Start queued listings while their clouds' bounds allow. */
static void la_pump(struct skyfs *fs)
{
    struct listahead *la = fs->listahead;
    for (;;) {
        pthread_mutex_lock(&la->lock);
        struct la_job *j = NULL, **p = &la->head, *prev = NULL;
        while (!la->stopping && *p) {
            struct cloud *c = (*p)->c;
            if (la->running[c - fs->clouds] < c->cfg->list_ahead) {
                j = *p;
                *p = j->next;
                if (la->tail == j)
                    la->tail = prev;
                la->queued--;
                j->next = NULL;
                j->counted = true;
                la->running[c - fs->clouds]++;
                break;
            }
            prev = *p;
            p = &(*p)->next;
        }
        pthread_mutex_unlock(&la->lock);
        if (!j)
            return;
        if (la_offline(j->c)) {             /* offline: no listing ahead */
            la_free_job(j);
            continue;
        }
        struct sky_err e = { 0 };
        (void)liveness_refresh_background(fs, LIVENESS_KEY(j->ino, LIVENESS_LISTING), la_run, j,
                                          la_free_job, &e);
    }
}

/* Queue a listing of folder (ino, path) unless it is queued already or
 * the queue is full (la->lock held). */
static void la_queue(struct listahead *la, struct cloud *c, uint64_t ino, const char *path)
{
    if (la->queued >= LISTAHEAD_QUEUE_MAX)
        return;
    for (struct la_job *q = la->head; q; q = q->next)
        if (q->ino == ino && q->c == c)
            return;
    struct la_job *j = calloc(1, sizeof *j);
    if (j)
        j->path = strdup(path);
    if (!j || !j->path) {
        free(j);
        return;
    }
    j->la = la;
    j->c = c;
    j->ino = ino;
    if (la->tail)
        la->tail->next = j;
    else
        la->head = j;
    la->tail = j;
    la->queued++;
    sky_metrics_inc(SKY_M_LIST_AHEAD);
}

struct la_walk {
    struct listahead *la;
    struct cloud *c;
};

static int la_child(void *arg, const struct meta_entry *ent)
{
    struct la_walk *w = arg;
    if (ent->attr.kind != SKY_DIR || ent->listed_at != 0)
        return 0;
    pthread_mutex_lock(&w->la->lock);
    bool full = w->la->stopping || w->la->queued >= LISTAHEAD_QUEUE_MAX;
    if (!full)
        la_queue(w->la, w->c, ent->ino, ent->path);
    pthread_mutex_unlock(&w->la->lock);
    return full ? 1 : 0;                    /* 1: stop the walk */
}

void listahead_dir(struct skyfs *fs, struct cloud *c, uint64_t dir_ino)
{
    struct listahead *la = fs->listahead;
    if (!la || !c || !c->cfg->list_ahead || la_offline(c))
        return;
    struct la_walk w = { la, c };
    struct sky_err e = { 0 };
    (void)meta_children(fs->meta, dir_ino, la_child, &w, &e);
    la_pump(fs);
}
