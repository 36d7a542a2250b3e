/*
 * writeback.c - background uploads of write_back = async clouds.
 *
 * A file closed after writes on such a cloud is made durable in the block
 * cache (files_closed_written: its bytes and journal entry fsynced) and
 * queued here; worker threads upload the queue (files_upload_queued).
 * The queue holds a reference on each open file (struct ofile) it lists,
 * so until its upload is done the file stays open inside the daemon: stat
 * shows its local size and mtime, readers share its cached bytes, and a
 * rename, removal or attribute change finds it and takes its upload_lock,
 * waiting for a running upload of it rather than racing it (and on these
 * clouds records an attribute change for the upload to carry, ops.c).
 *
 * A queued file settles for its cloud's write_back_delay before its upload
 * starts, so that tar's close, chmod and utime of a file make one upload.
 * Up to upload_parallel files of a cloud upload at once, by as many
 * workers; a file is in the queue at most once and taken by one worker at
 * a time, so its uploads keep their order.  Closes of a queued file
 * coalesce into one upload; a file closed again after new writes while
 * its upload ran goes to the back of the queue.
 *
 * A failed upload stays in the journal and in the queue, and is retried
 * after a wait: 1 s, doubled (up to 5 min) each time a whole round of the
 * queue failed; a success starts over, and a cloud that comes back makes
 * every queued file due at once (writeback_kick).  At a crash the journal
 * keeps every pending upload; the next mount's journal thread (files.c)
 * queues them here again in the journal's order.
 *
 * Folders made on these clouds wait too (localdirs.h): a file's upload
 * creates its local-only folders first; those still local-only when the
 * cloud's write_back_delay has passed since they last changed (ctime) are
 * created by a worker with nothing else due (wb_flush_dirs), retried like
 * uploads.
 *
 * Unmounting (writeback_stop) uploads what is queued without waiting for
 * it to settle, trying each file once more, and creates the folders left;
 * what fails stays in the journal (a folder: local-only in the cache) for
 * the next mount.
 *
 * Called by files.c (queue), ops_dirs.c (folders due), clouds.c and
 * mount.c (start, stop),
 * liveness.c (kick) and ops_names.c (pause around a directory rename).
 */
#include "skyfs.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "../lib/clock.h"
#include "../lib/log.h"
#include "../lib/metrics.h"
#include "localdirs.h"

#define WB_BACKOFF_MIN_S 1
#define WB_BACKOFF_MAX_S 300

/* Append of to the queue, due at `due_ms` (wb_lock held). */
static void wb_append(struct skyfs *fs, struct ofile *of, int64_t due_ms)
{
    of->wb_next = NULL;
    of->wb_due_ms = due_ms;
    if (fs->wb_tail)
        fs->wb_tail->wb_next = of;
    else
        fs->wb_head = of;
    fs->wb_tail = of;
}

/* Unlink `of`, whose predecessor is `prev` (NULL: the head). */
static void wb_unlink(struct skyfs *fs, struct ofile *prev, struct ofile *of)
{
    if (prev)
        prev->wb_next = of->wb_next;
    else
        fs->wb_head = of->wb_next;
    if (fs->wb_tail == of)
        fs->wb_tail = prev;
    of->wb_next = NULL;
}

static struct ofile *wb_pop(struct skyfs *fs)
{
    struct ofile *of = fs->wb_head;
    if (of)
        wb_unlink(fs, NULL, of);
    return of;
}

/* The first queued file that is due and whose cloud has an upload slot
 * free, taken off the queue; else NULL, with *wake_ms the earliest time a
 * file settles (0: none waits for that) (wb_lock held). */
static struct ofile *wb_take(struct skyfs *fs, int64_t now_ms, int64_t *wake_ms)
{
    *wake_ms = 0;
    struct ofile *prev = NULL;
    for (struct ofile *of = fs->wb_head; of; prev = of, of = of->wb_next) {
        if (of->cloud->wb_active >= of->cloud->cfg->upload_parallel)
            continue;           /* a worker finishing an upload of that cloud wakes us */
        if (of->wb_due_ms <= now_ms || fs->wb_draining) {
            wb_unlink(fs, prev, of);
            return of;
        }
        if (!*wake_ms || of->wb_due_ms < *wake_ms)
            *wake_ms = of->wb_due_ms;
    }
    return NULL;
}

static size_t wb_length(const struct skyfs *fs)
{
    size_t n = 0;
    for (const struct ofile *of = fs->wb_head; of; of = of->wb_next)
        n++;
    return n;
}

static int64_t wb_delay_ms(const struct ofile *of)
{
    return of->cloud->cfg->write_back_delay_ns / 1000000;
}

void writeback_queue(struct skyfs *fs, struct ofile *of)
{
    pthread_mutex_lock(&fs->wb_lock);
    if (!of->queued && fs->wb_started && !fs->wb_stopping) {
        pthread_mutex_lock(&fs->files_lock);
        of->refs++;                     /* the queue's reference */
        pthread_mutex_unlock(&fs->files_lock);
        of->queued = true;
        wb_append(fs, of, clock_now_ms() + wb_delay_ms(of));
        pthread_cond_broadcast(&fs->wb_cond);
    }
    pthread_mutex_unlock(&fs->wb_lock);
}

void writeback_kick(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->wb_lock);
    int64_t now = clock_now_ms();
    for (struct ofile *of = fs->wb_head; of; of = of->wb_next)
        if (of->wb_due_ms > now)
            of->wb_due_ms = now;
    fs->wb_retry_s = WB_BACKOFF_MIN_S;
    fs->wb_failed_in_row = 0;
    pthread_cond_broadcast(&fs->wb_cond);
    pthread_mutex_unlock(&fs->wb_lock);
}

/* Folders due at `due_ms` (wb_lock held). */
static void wb_dirs_at(struct skyfs *fs, int64_t due_ms)
{
    if (!fs->wb_dirs_due || due_ms < fs->wb_dirs_due_ms)
        fs->wb_dirs_due_ms = due_ms;
    fs->wb_dirs_due = true;
    pthread_cond_broadcast(&fs->wb_cond);
}

void writeback_dirs_due(struct skyfs *fs, struct cloud *c)
{
    pthread_mutex_lock(&fs->wb_lock);
    wb_dirs_at(fs, clock_now_ms() + (int64_t)(c->cfg->write_back_delay_ns / 1000000));
    pthread_mutex_unlock(&fs->wb_lock);
}

/* Create the folders made without the cloud (localdirs.h) once they are
 * due, like a queued file (wb_lock held, dropped meanwhile); false when
 * it is not time yet, with *wake_ms lowered to when it is. */
static bool wb_flush_dirs(struct skyfs *fs, int64_t now_ms, int64_t *wake_ms)
{
    if (!fs->wb_dirs_due)
        return false;
    if (fs->wb_dirs_due_ms > now_ms && !fs->wb_draining) {
        if (!*wake_ms || fs->wb_dirs_due_ms < *wake_ms)
            *wake_ms = fs->wb_dirs_due_ms;
        return false;
    }
    fs->wb_dirs_due = false;
    fs->wb_busy++;
    bool settle = !fs->wb_draining;
    pthread_mutex_unlock(&fs->wb_lock);
    pthread_rwlock_rdlock(&fs->wb_tree);
    int64_t next = 0;       /* wall clock: a folder changed since its mkdir */
    int failed = localdirs_flush_all(fs, settle, &next);
    int64_t left_ms = next ? (next - skyfs_now()) / 1000000 + 1 : 0;
    pthread_rwlock_unlock(&fs->wb_tree);
    pthread_mutex_lock(&fs->wb_lock);
    fs->wb_busy--;
    if (failed && !fs->wb_draining)     /* retried after a failed upload's wait */
        wb_dirs_at(fs, clock_now_ms() + (int64_t)fs->wb_retry_s * 1000);
    else if (next && !fs->wb_draining)
        wb_dirs_at(fs, clock_now_ms() + (left_ms > 0 ? left_ms : 0));
    pthread_cond_broadcast(&fs->wb_cond);
    return true;
}

void writeback_pause(struct skyfs *fs)
{
    pthread_rwlock_wrlock(&fs->wb_tree);
}

void writeback_resume(struct skyfs *fs)
{
    pthread_rwlock_unlock(&fs->wb_tree);
}

/* Wait until `wake_ms` (0: until woken) or a broadcast (wb_lock held). */
static void wb_wait(struct skyfs *fs, int64_t wake_ms)
{
    if (!wake_ms) {
        pthread_cond_wait(&fs->wb_cond, &fs->wb_lock);
        return;
    }
    struct timespec until = clock_at_ms(wake_ms);
    pthread_cond_timedwait(&fs->wb_cond, &fs->wb_lock, &until);
}

static void *wb_main(void *arg)
{
    struct skyfs *fs = arg;
    pthread_mutex_lock(&fs->wb_lock);
    while (!fs->wb_stopping) {
        int64_t wake_ms, now = clock_now_ms();
        struct ofile *of = wb_take(fs, now, &wake_ms);
        if (!of && wb_flush_dirs(fs, now, &wake_ms))
            continue;
        if (!of) {
            wb_wait(fs, wake_ms);
            continue;
        }
        struct cloud *c = of->cloud;
        c->wb_active++;
        fs->wb_busy++;
        pthread_mutex_unlock(&fs->wb_lock);

        struct sky_err e = { 0 };
        bool again = false;
        pthread_rwlock_rdlock(&fs->wb_tree);
        int rc = files_upload_queued(fs, of, &again, &e);
        pthread_rwlock_unlock(&fs->wb_tree);
        if (rc) {
            sky_metrics_inc(SKY_M_UPLOAD_RETRIES);
            LOG_ERROR("write-back: upload of \"%s\" to cloud '%s' failed, kept in the journal "
                      "and retried: %s", blocks_path(of->obj), c->cfg->name, e.msg);
        }

        pthread_mutex_lock(&fs->wb_lock);
        c->wb_active--;
        fs->wb_busy--;
        if (rc && fs->wb_draining) {
            /* unmounting: tried once more; the journal keeps it for the next mount */
            of->queued = false;
            pthread_mutex_unlock(&fs->wb_lock);
            files_close(fs, of);
            pthread_mutex_lock(&fs->wb_lock);
        } else if (rc) {
            wb_append(fs, of, clock_now_ms() + (int64_t)fs->wb_retry_s * 1000); /* its reference */
            /* every queued upload failed in a row: wait longer after the next round */
            if (++fs->wb_failed_in_row >= wb_length(fs)) {
                fs->wb_failed_in_row = 0;
                fs->wb_retry_s = fs->wb_retry_s * 2 > WB_BACKOFF_MAX_S ? WB_BACKOFF_MAX_S
                                                                       : fs->wb_retry_s * 2;
            }
        } else {
            fs->wb_failed_in_row = 0;
            fs->wb_retry_s = WB_BACKOFF_MIN_S;
            if (again) {
                wb_append(fs, of, clock_now_ms() + wb_delay_ms(of));
            } else {
                of->queued = false;
                pthread_mutex_unlock(&fs->wb_lock);
                files_close(fs, of);
                pthread_mutex_lock(&fs->wb_lock);
            }
        }
        pthread_cond_broadcast(&fs->wb_cond);   /* an upload slot of c is free */
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
    unsigned n = 1;
    for (size_t i = 0; i < fs->nclouds; i++)
        if (fs->clouds[i].cfg->write_back_async && fs->clouds[i].cfg->upload_parallel > n)
            n = fs->clouds[i].cfg->upload_parallel;
    if (n > SKY_MAX_UPLOAD_PARALLEL)
        n = SKY_MAX_UPLOAD_PARALLEL;
    int err = 0;
    pthread_mutex_lock(&fs->wb_lock);
    fs->wb_retry_s = WB_BACKOFF_MIN_S;
    for (fs->wb_nthreads = 0; fs->wb_nthreads < n; fs->wb_nthreads++) {
        err = pthread_create(&fs->wb_threads[fs->wb_nthreads], NULL, wb_main, fs);
        if (err)
            break;
    }
    fs->wb_started = fs->wb_nthreads > 0;
    pthread_mutex_unlock(&fs->wb_lock);
    if (err && !fs->wb_started)
        return sky_fail(e, err, "cannot start the write-back thread: %s", strerror(err));
    if (err)
        LOG_WARN("write-back: started %u upload workers of %u: %s", fs->wb_nthreads, n,
                 strerror(err));
    return 0;
}

void writeback_stop(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->wb_lock);
    unsigned n = fs->wb_started ? fs->wb_nthreads : 0;
    /* Unmounting: upload what is queued now, settled or not, each file
     * once more at most (a failure stays in the journal), then stop. */
    fs->wb_draining = true;
    pthread_cond_broadcast(&fs->wb_cond);
    while (n && (fs->wb_head || fs->wb_busy || fs->wb_dirs_due))
        pthread_cond_wait(&fs->wb_cond, &fs->wb_lock);
    fs->wb_stopping = true;
    pthread_cond_broadcast(&fs->wb_cond);
    pthread_mutex_unlock(&fs->wb_lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(fs->wb_threads[i], NULL);
}
