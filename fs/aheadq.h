/*
 * aheadq.h - a queue of work done in the background ahead of a reader:
 * the shared engine of listahead.c (folders listed ahead) and openahead.c
 * (files fetched ahead).
 *
 * A job names a cloud and an inode (and, when the work needs it, a path).
 * Queued jobs start in queue order while their cloud's bound allows (at
 * most bound(c) running at once per cloud); each runs as a liveness.h
 * background refresh keyed by its inode and the queue's kind (so never
 * twice at once for one key), at a lower CPU priority, and when it ends
 * frees its slot and starts the next.  Nothing starts for a cloud that is
 * offline (cloud_unreachable) or once the queue is stopping.  The queue is
 * bounded: past `max` jobs the oldest are dropped.  A job of (cloud, inode)
 * is queued once: adding it again moves it.  A reader that needs the work
 * itself takes a queued job out (aheadq_take) or waits a moment for a
 * running one (aheadq_wait) instead of doing it twice.  Jobs are quiet:
 * a failure is not reported (the reader does the work itself when it gets
 * there).
 *
 * Locks: the queue's lock is never held while calling liveness.h or the
 * work; a job's end (liveness' free_arg) takes only the queue's lock.
 *
 * Called by fs/listahead.c and fs/openahead.c only.
 */
#ifndef SKY_AHEADQ_H
#define SKY_AHEADQ_H

#include "skyfs.h"

struct aheadq;

struct aheadq_job {
    struct aheadq_job *next;    /* in the queue, the running list, or a caller's list */
    struct aheadq *q;
    struct cloud *c;
    uint64_t ino;
    char *path;                 /* NULL unless the work needs it */
    bool counted;               /* running: holds a slot of its cloud (the queue's lock) */
};

/* The work of one job, on a background thread (or the caller's when no
 * thread could be started): 0 or -errno (ignored). */
typedef int (*aheadq_work_fn)(struct skyfs *fs, struct aheadq_job *j, struct sky_err *e);
/* How many jobs of cloud c may run at once. */
typedef unsigned (*aheadq_bound_fn)(const struct cloud *c);

/* A queue whose jobs run `work`, keyed LIVENESS_KEY(ino, kind), at most
 * bound(c) at once per cloud, `max` queued; NULL when out of memory. */
struct aheadq *aheadq_new(struct skyfs *fs, int kind, aheadq_work_fn work,
                          aheadq_bound_fn bound, size_t max);
/* Drop what is queued and start nothing more; wakes aheadq_wait.  The
 * jobs that run finish (liveness_stop waits for them). */
void aheadq_stop(struct aheadq *q);
/* Free the queue (after liveness_stop: no job runs). */
void aheadq_free(struct aheadq *q);
bool aheadq_stopping(struct aheadq *q);

/* A job for (c, ino), with a copy of path (may be NULL); NULL when out of
 * memory. */
struct aheadq_job *aheadq_job_new(struct cloud *c, uint64_t ino, const char *path);
/* Free a list of jobs linked by next. */
void aheadq_jobs_free(struct aheadq_job *list);

/* Queue the list `jobs` (linked by next, in the order they should start)
 * at the front (the newest start first: a reader going depth first) or
 * at the back (first in, first out: a reader going forward), taking them
 * over; a job of the same (cloud, inode) queued already is dropped, and
 * past the bound the oldest are.  Then starts what the bounds allow. */
void aheadq_add(struct aheadq *q, struct aheadq_job *jobs, bool front);

/* The reader is about to do the work of (c, ino) itself: true when a
 * queued job of it was there (now dropped). */
bool aheadq_take(struct aheadq *q, struct cloud *c, uint64_t ino);
/* Wait, at most wait_ms, for a running job of (c, ino) to end: true when
 * one ran and ended meanwhile. */
bool aheadq_wait(struct aheadq *q, struct cloud *c, uint64_t ino, int wait_ms);

#endif
