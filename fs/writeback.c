/*
 * writeback.c - background uploads of write_back = async clouds.
 *
 * A file closed after writes on such a cloud is made durable in the block
 * cache (files_closed_written: its bytes and journal entry fsynced) and
 * queued here; one thread uploads the queue in order (files_upload_queued).
 * The queue holds a reference on each open file (struct ofile) it lists,
 * so until its upload is done the file stays open inside the daemon: stat
 * shows its local size and mtime, readers share its cached bytes, and a
 * rename, removal or attribute change finds it and takes its upload_lock,
 * waiting for a running upload of it rather than racing it.  Closes of a
 * queued file coalesce into one upload; a file closed again after new
 * writes while its upload ran goes to the back of the queue.
 *
 * A failed upload stays in the journal and in the queue, and is retried:
 * when a whole round of the queue failed, the thread waits, backing off
 * from 1 s to 5 min (a cloud that comes back wakes it: writeback_kick).
 * At a crash the journal keeps every pending upload; the next mount's
 * journal thread (files.c) queues them here again in the journal's order.
 *
 * Called by files.c (queue), clouds.c (start, stop), liveness.c (kick)
 * and ops.c (pause around a directory rename).
 */
#include "skyfs.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "../lib/metrics.h"

#define WB_BACKOFF_MIN_S 1
#define WB_BACKOFF_MAX_S 300

/* Append of to the queue (wb_lock held). */
static void wb_append(struct skyfs *fs, struct ofile *of)
{
    of->wb_next = NULL;
    if (fs->wb_tail)
        fs->wb_tail->wb_next = of;
    else
        fs->wb_head = of;
    fs->wb_tail = of;
}

static struct ofile *wb_pop(struct skyfs *fs)
{
    struct ofile *of = fs->wb_head;
    if (of) {
        fs->wb_head = of->wb_next;
        if (!fs->wb_head)
            fs->wb_tail = NULL;
        of->wb_next = NULL;
    }
    return of;
}

static size_t wb_length(const struct skyfs *fs)
{
    size_t n = 0;
    for (const struct ofile *of = fs->wb_head; of; of = of->wb_next)
        n++;
    return n;
}

void writeback_queue(struct skyfs *fs, struct ofile *of)
{
    pthread_mutex_lock(&fs->wb_lock);
    if (!of->queued && fs->wb_started && !fs->wb_stopping) {
        pthread_mutex_lock(&fs->files_lock);
        of->refs++;                     /* the queue's reference */
        pthread_mutex_unlock(&fs->files_lock);
        of->queued = true;
        wb_append(fs, of);
        pthread_cond_broadcast(&fs->wb_cond);
    }
    pthread_mutex_unlock(&fs->wb_lock);
}

void writeback_kick(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->wb_lock);
    fs->wb_kick = true;
    pthread_cond_broadcast(&fs->wb_cond);
    pthread_mutex_unlock(&fs->wb_lock);
}

void writeback_pause(struct skyfs *fs)
{
    pthread_rwlock_wrlock(&fs->wb_tree);
}

void writeback_resume(struct skyfs *fs)
{
    pthread_rwlock_unlock(&fs->wb_tree);
}

/* Wait `seconds` or until kicked or stopping (wb_lock held). */
static void wb_backoff(struct skyfs *fs, int seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    while (!fs->wb_stopping && !fs->wb_kick &&
           pthread_cond_timedwait(&fs->wb_cond, &fs->wb_lock, &until) == 0)
        ;
    fs->wb_kick = false;
}

static void *wb_main(void *arg)
{
    struct skyfs *fs = arg;
    int delay = WB_BACKOFF_MIN_S;
    size_t failed_in_row = 0;
    pthread_mutex_lock(&fs->wb_lock);
    while (!fs->wb_stopping) {
        struct ofile *of = wb_pop(fs);
        if (!of) {
            failed_in_row = 0;
            pthread_cond_wait(&fs->wb_cond, &fs->wb_lock);
            continue;
        }
        pthread_mutex_unlock(&fs->wb_lock);

        struct sky_err e = { 0 };
        bool again = false;
        pthread_rwlock_rdlock(&fs->wb_tree);
        int rc = files_upload_queued(fs, of, &again, &e);
        pthread_rwlock_unlock(&fs->wb_tree);
        if (rc) {
            sky_metrics_inc(SKY_M_UPLOAD_RETRIES);
            LOG_ERROR("write-back: upload of \"%s\" to cloud '%s' failed, kept in the journal "
                      "and retried: %s", blocks_path(of->obj), of->cloud->cfg->name, e.msg);
        }

        pthread_mutex_lock(&fs->wb_lock);
        if (rc || again) {
            wb_append(fs, of);          /* keeps its reference */
        } else {
            of->queued = false;
            pthread_mutex_unlock(&fs->wb_lock);
            files_close(fs, of);
            pthread_mutex_lock(&fs->wb_lock);
        }
        if (!rc) {
            failed_in_row = 0;
            delay = WB_BACKOFF_MIN_S;
        } else if (++failed_in_row >= wb_length(fs)) {
            /* every queued upload failed in a row: wait before the next round */
            failed_in_row = 0;
            wb_backoff(fs, delay);
            delay = delay * 2 > WB_BACKOFF_MAX_S ? WB_BACKOFF_MAX_S : delay * 2;
        }
    }
    /* Stopping: the journal keeps what is still queued. */
    struct ofile *of;
    while ((of = wb_pop(fs)) != NULL) {
        of->queued = false;
        pthread_mutex_unlock(&fs->wb_lock);
        files_close(fs, of);
        pthread_mutex_lock(&fs->wb_lock);
    }
    pthread_mutex_unlock(&fs->wb_lock);
    return NULL;
}

int writeback_start(struct skyfs *fs, struct sky_err *e)
{
    pthread_mutex_lock(&fs->wb_lock);
    int err = pthread_create(&fs->wb_thread, NULL, wb_main, fs);
    fs->wb_started = err == 0;
    pthread_mutex_unlock(&fs->wb_lock);
    if (err)
        return sky_fail(e, err, "cannot start the write-back thread: %s", strerror(err));
    return 0;
}

void writeback_stop(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->wb_lock);
    bool started = fs->wb_started;
    fs->wb_stopping = true;
    pthread_cond_broadcast(&fs->wb_cond);
    pthread_mutex_unlock(&fs->wb_lock);
    if (started)
        pthread_join(fs->wb_thread, NULL);
}
