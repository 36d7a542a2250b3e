/*
 * listahead.c - list subfolders ahead of a reader; see listahead.h.
 *
 * One queue of folders for the mount (aheadq.h), newest first: a reader
 * walking the tree depth first (find, ls -R, du) opens the first subfolder
 * of the folder it just read next, so each opendir's subfolders go to the
 * front, in their order, and when the queue is full the oldest are
 * dropped.  Listings are keyed like fs/refresh.c's listing refreshes
 * (LIVENESS_LISTING), so a reader's own refresh of a folder and its
 * listing ahead never run at once.
 */
#include "listahead.h"

#include <errno.h>

#include "../lib/metrics.h"
#include "aheadq.h"
#include "liveness.h"
#include "refresh.h"

static unsigned la_bound(const struct cloud *c)
{
    return c->cfg->list_ahead;
}

/* A listing ahead.  A folder listed meanwhile (by the reader) is left
 * alone. */
static int la_work(struct skyfs *fs, struct aheadq_job *j, struct sky_err *e)
{
    struct meta_entry ent;
    if (meta_get(fs->meta, j->ino, &ent, e) != 0)
        return 0;
    bool cold = ent.attr.kind == SKY_DIR && ent.listed_at == 0;
    meta_entry_free(&ent);
    return cold ? refresh_list_now(fs, j->c, j->ino, j->path, e) : 0;
}

int listahead_start(struct skyfs *fs, struct sky_err *e)
{
    fs->listahead = aheadq_new(fs, LIVENESS_LISTING, la_work, la_bound, LISTAHEAD_QUEUE_MAX);
    return fs->listahead ? 0 : sky_fail(e, ENOMEM, "out of memory");
}

void listahead_stop(struct skyfs *fs)
{
    aheadq_stop(fs->listahead);
}

void listahead_free(struct skyfs *fs)
{
    aheadq_free(fs->listahead);
    fs->listahead = NULL;
}

/* Subfolders found by one opendir, in order, before they join the queue. */
struct la_walk {
    struct cloud *c;
    struct aheadq_job *head, **tail;
    size_t n;
};

static int la_child(void *arg, const struct meta_entry *ent)
{
    struct la_walk *w = arg;
    if (ent->attr.kind != SKY_DIR || ent->listed_at != 0)
        return 0;
    struct aheadq_job *j = aheadq_job_new(w->c, ent->ino, ent->path);
    if (!j)
        return 1;                           /* stop the walk */
    *w->tail = j;
    w->tail = &j->next;
    sky_metrics_inc(SKY_M_LIST_AHEAD);
    return ++w->n >= LISTAHEAD_QUEUE_MAX ? 1 : 0;
}

void listahead_dir(struct skyfs *fs, struct cloud *c, uint64_t dir_ino)
{
    if (!fs->listahead || !c || !c->cfg->list_ahead || cloud_unreachable(c))
        return;
    struct la_walk w = { .c = c };
    w.tail = &w.head;
    struct sky_err e = { 0 };
    (void)meta_children(fs->meta, dir_ino, la_child, &w, &e);
    /* to the front, in order: a reader goes depth first */
    aheadq_add(fs->listahead, w.head, true);
}

bool listahead_wait(struct skyfs *fs, struct cloud *c, uint64_t ino)
{
    if (!fs->listahead || aheadq_take(fs->listahead, c, ino))
        return false;                       /* queued: the reader lists it now */
    return aheadq_wait(fs->listahead, c, ino, LISTAHEAD_WAIT_MS);
}
