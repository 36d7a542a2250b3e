/*
 * openahead.c - fetch the next files of a folder ahead of a reader; see
 * openahead.h.
 *
 * One FIFO of files for the mount (a reader goes forward: the files it
 * will open first were queued first), per cloud the number of fetches
 * running, and the reader being followed: the folder and name of the last
 * file opened for reading and the furthest name queued in that folder.
 * openahead_opened queues and pumps; each fetch runs as a liveness.h
 * background refresh keyed by the file's inode and, when it ends, frees
 * its slot and pumps again.  Locks: oa->lock is never held while calling
 * liveness.h or the caches; oa_free_job (the refresh's free_arg) runs
 * under liveness' lock and takes only oa->lock.
 */
#include "openahead.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/metrics.h"
#include "liveness.h"

struct oa_job {
    struct oa_job *next;        /* in the queue */
    struct openahead *oa;
    struct cloud *c;
    uint64_t ino;
    bool counted;               /* running: holds a slot of its cloud (oa->lock) */
};

struct openahead {
    pthread_mutex_t lock;
    struct oa_job *head, **tail;    /* queued, the next to start first */
    size_t queued;
    unsigned *running;              /* per cloud (index in fs->clouds) */
    bool stopping;
    /* the reader followed: its last file opened, the furthest file queued */
    struct cloud *last_cloud;
    uint64_t last_parent;
    char *last_name, *ahead;
};

int openahead_start(struct skyfs *fs, struct sky_err *e)
{
    struct openahead *oa = calloc(1, sizeof *oa);
    if (oa)
        oa->running = calloc(fs->nclouds ? fs->nclouds : 1, sizeof *oa->running);
    if (!oa || !oa->running) {
        free(oa);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    pthread_mutex_init(&oa->lock, NULL);
    oa->tail = &oa->head;
    fs->openahead = oa;
    return 0;
}

static void oa_free_list(struct oa_job *j)
{
    while (j) {
        struct oa_job *next = j->next;
        free(j);
        j = next;
    }
}

void openahead_stop(struct skyfs *fs)
{
    struct openahead *oa = fs->openahead;
    if (!oa)
        return;
    pthread_mutex_lock(&oa->lock);
    oa->stopping = true;
    struct oa_job *j = oa->head;
    oa->head = NULL;
    oa->tail = &oa->head;
    oa->queued = 0;
    pthread_mutex_unlock(&oa->lock);
    oa_free_list(j);
}

void openahead_free(struct skyfs *fs)
{
    struct openahead *oa = fs->openahead;
    if (!oa)
        return;
    openahead_stop(fs);
    pthread_mutex_destroy(&oa->lock);
    free(oa->running);
    free(oa->last_name);
    free(oa->ahead);
    free(oa);
    fs->openahead = NULL;
}

/* A fetch is over (or will not run): give back its cloud's slot, once. */
static void oa_release_slot(struct oa_job *j)
{
    struct openahead *oa = j->oa;
    pthread_mutex_lock(&oa->lock);
    if (j->counted)
        oa->running[j->c - j->c->fs->clouds]--;
    j->counted = false;
    pthread_mutex_unlock(&oa->lock);
}

/* free_arg of a fetch: runs under liveness' lock (at the end of the
 * fetch, or at once when a refresh of that key runs already). */
static void oa_free_job(void *arg)
{
    struct oa_job *j = arg;
    oa_release_slot(j);
    free(j);
}

static void oa_pump(struct skyfs *fs);

/* Worth fetching ahead: a file of the cloud, not empty, not too large,
 * with a version to ask for. */
static bool oa_wanted(const struct meta_entry *ent)
{
    return ent->attr.kind == SKY_FILE && !ent->local_only && ent->attr.size > 0 &&
           ent->attr.size <= OPENAHEAD_FILE_MAX && ent->attr.etag[0];
}

/* The fetch, on its own thread (or the caller's when no thread could be
 * started). */
static int oa_run(struct skyfs *fs, void *arg, struct sky_err *e)
{
    struct oa_job *j = arg;
    struct openahead *oa = j->oa;
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    pthread_mutex_lock(&oa->lock);
    bool stopping = oa->stopping;
    pthread_mutex_unlock(&oa->lock);
    int rc = 0;
    struct meta_entry ent;
    if (!stopping && !cloud_unreachable(j->c) && meta_get(fs->meta, j->ino, &ent, e) == 0) {
        if (oa_wanted(&ent)) {
            rc = files_fetch_whole(fs, j->c, &ent, e);
            if (rc == 1)
                sky_metrics_inc(SKY_M_OPEN_AHEAD);
            rc = rc > 0 ? 0 : rc;
        }
        meta_entry_free(&ent);
    }
    oa_release_slot(j);
    oa_pump(fs);
    return rc;
}

/* Start queued fetches while their clouds' bounds allow. */
static void oa_pump(struct skyfs *fs)
{
    struct openahead *oa = fs->openahead;
    for (;;) {
        pthread_mutex_lock(&oa->lock);
        struct oa_job *j = NULL;
        for (struct oa_job **p = &oa->head; !oa->stopping && *p; p = &(*p)->next) {
            struct cloud *c = (*p)->c;
            if (oa->running[c - fs->clouds] < OPENAHEAD_RUNNING) {
                j = *p;
                *p = j->next;
                if (oa->tail == &j->next)
                    oa->tail = p;
                j->next = NULL;
                oa->queued--;
                j->counted = true;
                oa->running[c - fs->clouds]++;
                break;
            }
        }
        pthread_mutex_unlock(&oa->lock);
        if (!j)
            return;
        struct sky_err e = { 0 };
        (void)liveness_refresh_background(fs, LIVENESS_KEY(j->ino, LIVENESS_FETCH), oa_run, j,
                                          oa_free_job, &e);
    }
}

/* The files after the one opened, before they join the queue. */
struct oa_walk {
    struct openahead *oa;
    struct cloud *c;
    const char *after;          /* queue only names past this one (asked already) */
    unsigned want, seen, looked;
    struct oa_job *head, **tail;
    size_t n;
    char *last;                 /* the furthest name considered */
};

static int oa_child(void *arg, const struct meta_entry *ent)
{
    struct oa_walk *w = arg;
    if (++w->looked > 4 * w->want)
        return 1;               /* a folder of mostly other things: enough */
    if (ent->attr.kind != SKY_FILE)
        return 0;
    char *last = strdup(ent->name);
    if (!last)
        return 1;
    free(w->last);
    w->last = last;
    if (oa_wanted(ent) && (!w->after || strcmp(ent->name, w->after) > 0)) {
        struct oa_job *j = calloc(1, sizeof *j);
        if (!j)
            return 1;
        j->oa = w->oa;
        j->c = w->c;
        j->ino = ent->ino;
        *w->tail = j;
        w->tail = &j->next;
        w->n++;
    }
    return ++w->seen >= w->want ? 1 : 0;
}

/* Note that `ent` was opened: true when it continues the reader's way
 * through its folder; *after then gets the furthest name queued there
 * (NULL: none yet).  oa->lock held. */
static bool oa_follow(struct openahead *oa, struct cloud *c, const struct meta_entry *ent,
                      char **after)
{
    bool same = oa->last_cloud == c && oa->last_parent == ent->parent && oa->last_name;
    bool forward = same && strcmp(ent->name, oa->last_name) > 0;
    char *name = strdup(ent->name);
    if (!name)
        return false;
    free(oa->last_name);
    oa->last_name = name;
    oa->last_cloud = c;
    oa->last_parent = ent->parent;
    if (!same) {
        free(oa->ahead);
        oa->ahead = NULL;
    }
    *after = forward && oa->ahead ? strdup(oa->ahead) : NULL;
    return forward;
}

void openahead_opened(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent)
{
    struct openahead *oa = fs->openahead;
    if (!oa || !c || !c->cfg->open_ahead || ent->attr.kind != SKY_FILE || !ent->parent)
        return;
    char *after = NULL;
    pthread_mutex_lock(&oa->lock);
    bool forward = !oa->stopping && oa_follow(oa, c, ent, &after);
    pthread_mutex_unlock(&oa->lock);
    if (!forward || cloud_unreachable(c)) {
        free(after);
        return;
    }
    struct oa_walk w = { .oa = oa, .c = c, .after = after, .want = c->cfg->open_ahead };
    w.tail = &w.head;
    struct sky_err e = { 0 };
    (void)meta_children_after(fs->meta, ent->parent, ent->name, w.want + 1, oa_child, &w, &e);
    free(after);
    pthread_mutex_lock(&oa->lock);
    if (oa->stopping || oa->last_cloud != c || oa->last_parent != ent->parent) {
        pthread_mutex_unlock(&oa->lock);        /* the reader went elsewhere meanwhile */
        oa_free_list(w.head);
        free(w.last);
        return;
    }
    if (w.last && (!oa->ahead || strcmp(w.last, oa->ahead) > 0)) {
        free(oa->ahead);
        oa->ahead = w.last;
        w.last = NULL;
    }
    if (w.head) {
        *oa->tail = w.head;
        oa->tail = w.tail;
        oa->queued += w.n;
    }
    /* over the bound: drop the oldest */
    struct oa_job *drop = NULL, **dtail = &drop;
    while (oa->queued > OPENAHEAD_QUEUE_MAX) {
        struct oa_job *j = oa->head;
        oa->head = j->next;
        if (!oa->head)
            oa->tail = &oa->head;
        j->next = NULL;
        *dtail = j;
        dtail = &j->next;
        oa->queued--;
    }
    pthread_mutex_unlock(&oa->lock);
    free(w.last);
    oa_free_list(drop);
    oa_pump(fs);
}
