/*
 * kforget.c - queue and send "forget this name" notices to the kernel.
 * See kforget.h.
 */
#define FUSE_USE_VERSION 314
#include "kforget.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../cache/meta.h"
#include "../lib/log.h"
#include "skyfs.h"

#define KFORGET_MAX_QUEUED 8192

struct kforget_item {
    struct kforget_item *next;
    uint64_t parent;
    char name[];
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct kforget_item *head, *tail;
    size_t queued;
    bool stopping, started;
    pthread_t thread;
    struct skyfs *fs;
} kq = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* meta_gone_fn: with the cache's lock held, so only queue. */
static void kforget_queue(void *arg, uint64_t parent, const char *name)
{
    (void)arg;
    size_t len = strlen(name);
    pthread_mutex_lock(&kq.lock);
    if (!kq.stopping && kq.queued < KFORGET_MAX_QUEUED) {
        struct kforget_item *it = malloc(sizeof *it + len + 1);
        if (it) {
            it->next = NULL;
            it->parent = parent;
            memcpy(it->name, name, len + 1);
            if (kq.tail)
                kq.tail->next = it;
            else
                kq.head = it;
            kq.tail = it;
            kq.queued++;
            pthread_cond_signal(&kq.cond);
        }
    }
    pthread_mutex_unlock(&kq.lock);
}

void kforget_name(uint64_t parent, const char *name)
{
    pthread_mutex_lock(&kq.lock);
    bool started = kq.started;
    pthread_mutex_unlock(&kq.lock);
    if (started)
        kforget_queue(NULL, parent, name);
}

static void *kforget_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&kq.lock);
    for (;;) {
        while (!kq.head && !kq.stopping)
            pthread_cond_wait(&kq.cond, &kq.lock);
        if (kq.stopping)
            break;
        struct kforget_item *it = kq.head;
        kq.head = it->next;
        if (!kq.head)
            kq.tail = NULL;
        kq.queued--;
        struct fuse_session *se = kq.fs->session;
        pthread_mutex_unlock(&kq.lock);
        /* -ENOENT: the kernel had already forgotten it */
        int rc = se ? fuse_lowlevel_notify_inval_entry(se, it->parent, it->name,
                                                         strlen(it->name)) : 0;
        if (rc && rc != -ENOENT)
            LOG_DEBUG("kernel notice for a removed name failed: %s", strerror(-rc));
        free(it);
        pthread_mutex_lock(&kq.lock);
    }
    pthread_mutex_unlock(&kq.lock);
    return NULL;
}

int kforget_start(struct skyfs *fs)
{
    pthread_mutex_lock(&kq.lock);
    kq.fs = fs;
    kq.stopping = false;
    int rc = pthread_create(&kq.thread, NULL, kforget_thread, NULL);
    kq.started = rc == 0;
    pthread_mutex_unlock(&kq.lock);
    if (rc)
        return -rc;
    meta_on_gone(fs->meta, kforget_queue, NULL);
    return 0;
}

void kforget_stop(struct skyfs *fs)
{
    if (fs->meta)
        meta_on_gone(fs->meta, NULL, NULL);
    pthread_mutex_lock(&kq.lock);
    bool started = kq.started;
    kq.stopping = true;
    kq.started = false;
    pthread_cond_signal(&kq.cond);
    pthread_mutex_unlock(&kq.lock);
    if (started)
        pthread_join(kq.thread, NULL);
    pthread_mutex_lock(&kq.lock);
    while (kq.head) {
        struct kforget_item *it = kq.head;
        kq.head = it->next;
        free(it);
    }
    kq.tail = NULL;
    kq.queued = 0;
    pthread_mutex_unlock(&kq.lock);
}
