/*
 * commit.c - the commit interval and the syncs of fsyncdir and close
 * (commit.h).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "../cache/blocks.h"
#include "../cache/meta.h"
#include "../lib/clock.h"
#include "../lib/log.h"
#include "commit.h"
#include "skyfs.h"

int commit_meta(struct skyfs *fs, struct sky_err *e)
{
    return fs->meta ? meta_sync(fs->meta, e) : 0;
}

int commit_now(struct skyfs *fs, struct sky_err *e)
{
    int rc = fs->blocks ? blocks_sync(fs->blocks, e) : 0;
    struct sky_err e2 = { 0 };
    int rc2 = commit_meta(fs, rc ? &e2 : e);
    return rc ? rc : rc2;
}

static void *commit_main(void *arg)
{
    struct skyfs *fs = arg;
    bool warned = false;
    pthread_mutex_lock(&fs->commit_lock);
    while (!fs->commit_stopping) {
        struct timespec until = clock_deadline_ms(COMMIT_INTERVAL_MS);
        pthread_cond_timedwait(&fs->commit_cond, &fs->commit_lock, &until);
        if (fs->commit_stopping)
            break;
        pthread_mutex_unlock(&fs->commit_lock);
        struct sky_err e = { 0 };
        int rc = commit_now(fs, &e);
        if (rc && !warned)          /* a full or failing disk: said once */
            LOG_WARN("the caches could not be synced (tried again every %d s): %s",
                     COMMIT_INTERVAL_MS / 1000, e.msg);
        warned = rc != 0;
        pthread_mutex_lock(&fs->commit_lock);
    }
    pthread_mutex_unlock(&fs->commit_lock);
    return NULL;
}

int commit_start(struct skyfs *fs, struct sky_err *e)
{
    pthread_mutex_init(&fs->commit_lock, NULL);
    clock_cond_init(&fs->commit_cond);
    fs->commit_ready = true;
    int rc = pthread_create(&fs->commit_thread, NULL, commit_main, fs);
    if (rc)
        return sky_fail(e, rc, "cannot start the commit thread: %s", strerror(rc));
    fs->commit_started = true;
    return 0;
}

void commit_stop(struct skyfs *fs)
{
    if (!fs->commit_ready)
        return;
    if (fs->commit_started) {
        pthread_mutex_lock(&fs->commit_lock);
        fs->commit_stopping = true;
        pthread_cond_broadcast(&fs->commit_cond);
        pthread_mutex_unlock(&fs->commit_lock);
        pthread_join(fs->commit_thread, NULL);
        fs->commit_started = false;
        struct sky_err e = { 0 };
        if (commit_now(fs, &e) != 0)
            LOG_WARN("the caches could not be synced at unmount: %s", e.msg);
    }
    pthread_cond_destroy(&fs->commit_cond);
    pthread_mutex_destroy(&fs->commit_lock);
    fs->commit_ready = false;
}
