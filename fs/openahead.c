/*
 * openahead.c - fetch the next files of a folder ahead of a reader; see
 * openahead.h.
 *
 * One first-in first-out queue of files for the mount (aheadq.h: a reader
 * goes forward, so the files it will open first were queued first), and
 * the reader being followed: the folder and name of the last file opened
 * for reading and the furthest name queued in that folder.  Fetches are
 * keyed by the file's inode (LIVENESS_FETCH).  oa->lock guards the
 * follower only and is never held while calling the queue or the caches.
 */
#include "openahead.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/metrics.h"
#include "aheadq.h"
#include "liveness.h"

struct openahead {
    struct aheadq *q;
    pthread_mutex_t lock;
    /* the reader followed: its last file opened, the furthest file queued */
    struct cloud *last_cloud;
    uint64_t last_parent;
    char *last_name, *ahead;
};

static unsigned oa_bound(const struct cloud *c)
{
    (void)c;
    return OPENAHEAD_RUNNING;
}

/* Worth fetching ahead: a file of the cloud, not empty, not too large,
 * with a version to ask for. */
static bool oa_wanted(const struct meta_entry *ent)
{
    return ent->attr.kind == SKY_FILE && !ent->local_only && ent->attr.size > 0 &&
           ent->attr.size <= OPENAHEAD_FILE_MAX && ent->attr.etag[0];
}

/* A fetch ahead, of the file as the cache lists it now. */
static int oa_work(struct skyfs *fs, struct aheadq_job *j, struct sky_err *e)
{
    struct meta_entry ent;
    if (meta_get(fs->meta, j->ino, &ent, e) != 0)
        return 0;
    int rc = 0;
    if (oa_wanted(&ent)) {
        rc = files_fetch_whole(fs, j->c, &ent, e);
        if (rc == 1)
            sky_metrics_inc(SKY_M_OPEN_AHEAD);
    }
    meta_entry_free(&ent);
    return rc > 0 ? 0 : rc;
}

int openahead_start(struct skyfs *fs, struct sky_err *e)
{
    struct openahead *oa = calloc(1, sizeof *oa);
    if (oa)
        oa->q = aheadq_new(fs, LIVENESS_FETCH, oa_work, oa_bound, OPENAHEAD_QUEUE_MAX);
    if (!oa || !oa->q) {
        free(oa);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    pthread_mutex_init(&oa->lock, NULL);
    fs->openahead = oa;
    return 0;
}

void openahead_stop(struct skyfs *fs)
{
    if (fs->openahead)
        aheadq_stop(fs->openahead->q);
}

void openahead_free(struct skyfs *fs)
{
    struct openahead *oa = fs->openahead;
    if (!oa)
        return;
    aheadq_free(oa->q);
    pthread_mutex_destroy(&oa->lock);
    free(oa->last_name);
    free(oa->ahead);
    free(oa);
    fs->openahead = NULL;
}

/* The files after the one opened, before they join the queue. */
struct oa_walk {
    struct cloud *c;
    const char *after;          /* queue only names past this one (asked already) */
    unsigned want, seen, looked;
    struct aheadq_job *head, **tail;
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
        struct aheadq_job *j = aheadq_job_new(w->c, ent->ino, NULL);
        if (!j)
            return 1;
        *w->tail = j;
        w->tail = &j->next;
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
    bool forward = oa_follow(oa, c, ent, &after);
    pthread_mutex_unlock(&oa->lock);
    if (!forward || cloud_unreachable(c) || aheadq_stopping(oa->q)) {
        free(after);
        return;
    }
    struct oa_walk w = { .c = c, .after = after, .want = c->cfg->open_ahead };
    w.tail = &w.head;
    struct sky_err e = { 0 };
    (void)meta_children_after(fs->meta, ent->parent, ent->name, w.want + 1, oa_child, &w, &e);
    free(after);
    pthread_mutex_lock(&oa->lock);
    bool moved = oa->last_cloud != c || oa->last_parent != ent->parent;
    if (!moved && w.last && (!oa->ahead || strcmp(w.last, oa->ahead) > 0)) {
        free(oa->ahead);
        oa->ahead = w.last;
        w.last = NULL;
    }
    pthread_mutex_unlock(&oa->lock);
    free(w.last);
    if (moved)                  /* the reader went elsewhere meanwhile */
        aheadq_jobs_free(w.head);
    else
        aheadq_add(oa->q, w.head, false);
}
