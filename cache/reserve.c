/* reserve.c - see reserve.h. */
#include "reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"

static pthread_mutex_t reserve_lock = PTHREAD_MUTEX_INITIALIZER;
static char *reserve_file;              /* NULL: no reserve in this process */
static char *reserve_dir;               /* the cache folder it is in */
static uint64_t reserve_bytes;
static atomic_bool reserve_out;         /* released: its room is the databases' */
static atomic_bool reserve_quota;       /* the folder met a disk quota: never made again */
static _Atomic uint64_t reserve_cap = UINT64_MAX;   /* what the block cache keeps to */

/* Allocate the file (reserve_lock held): 0 or -errno. */
static int reserve_make(void)
{
    int fd = open(reserve_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = posix_fallocate(fd, 0, (off_t)reserve_bytes);
    if (rc == EOPNOTSUPP || rc == EINVAL) {      /* no fallocate there: write it */
        static const char zeros[65536];
        rc = 0;
        for (uint64_t at = 0; rc == 0 && at < reserve_bytes; at += sizeof zeros)
            if (pwrite(fd, zeros, sizeof zeros, (off_t)at) != (ssize_t)sizeof zeros)
                rc = errno ? errno : EIO;
    }
    if (rc == 0 && fdatasync(fd) != 0)
        rc = errno;
    close(fd);
    if (rc)
        unlink(reserve_file);                     /* what it got goes back */
    return -rc;
}

int reserve_open(const char *dir, uint64_t bytes, struct sky_err *e)
{
    char *file;
    if (asprintf(&file, "%s/reserve", dir) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    char *quota;
    unsigned long long cap;
    if (asprintf(&quota, "%s/quota", dir) >= 0) {
        /* a quota an earlier mount met: kept to from the start, so that
         * the cache does not run into it again (SIGBUS risk, reserve.h) */
        FILE *f = fopen(quota, "re");
        if (f && fscanf(f, "%llu", &cap) == 1 && cap < UINT64_MAX) {
            atomic_store(&reserve_cap, (uint64_t)cap);
            atomic_store(&reserve_quota, true);
            LOG_INFO("cache folder %s: an earlier mount met its disk quota: the block cache "
                     "keeps to %llu MiB (remove %s after raising the quota)", dir,
                     cap >> 20, quota);
        }
        if (f)
            fclose(f);
        free(quota);
    }
    char *folder = strdup(dir);
    if (!folder) {
        free(file);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&reserve_lock);
    free(reserve_file);
    free(reserve_dir);
    reserve_file = file;
    reserve_dir = folder;
    reserve_bytes = bytes;
    int rc = reserve_make();
    atomic_store(&reserve_out, rc != 0);
    pthread_mutex_unlock(&reserve_lock);
    if (rc == -ENOSPC || rc == -EDQUOT) {
        LOG_WARN("cache folder %s: its file system is full: no room to keep %llu MiB back for "
                 "the caches' databases (made once there is room); free space there",
                 dir, (unsigned long long)(bytes >> 20));
        return 0;
    }
    if (rc)
        return sky_fail(e, -rc, "cache folder %s: cannot make %s: %s", dir, file,
                        strerror(-rc));
    return 0;
}

bool reserve_release(void)
{
    pthread_mutex_lock(&reserve_lock);
    bool freed = reserve_file && !atomic_load(&reserve_out) && unlink(reserve_file) == 0;
    if (freed) {
        atomic_store(&reserve_out, true);
        LOG_WARN("the cache's file system is full: released the %llu MiB kept back for the "
                 "caches' databases (%s); until there is room again, reads of what is not "
                 "cached go straight to the cloud and new writes fail; free space there",
                 (unsigned long long)(reserve_bytes >> 20), reserve_file);
    }
    pthread_mutex_unlock(&reserve_lock);
    return freed;
}

/* The free space of the reserve's file system, in bytes (reserve_lock
 * held, reserve_file set); false when it cannot be measured. */
static bool reserve_free_space(uint64_t *out)
{
    struct statvfs s;
    bool ok = statvfs(reserve_dir, &s) == 0;
    *out = ok ? (uint64_t)s.f_bavail * s.f_frsize : 0;
    return ok;
}

/* Released: make the reserve again when the file system has twice its
 * size free (reserve_lock held). */
static void reserve_try_restore(void)
{
    uint64_t free_now;
    if (atomic_load(&reserve_quota))
        return;                 /* statvfs does not show the quota's room */
    if (!reserve_free_space(&free_now) || free_now < 2 * reserve_bytes || reserve_make() != 0)
        return;
    atomic_store(&reserve_out, false);
    LOG_INFO("the cache's file system has room again: %llu MiB kept back for the caches' "
             "databases again (%s)", (unsigned long long)(reserve_bytes >> 20), reserve_file);
}

void reserve_watch(void)
{
    static _Atomic int64_t next_ms;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t due = atomic_load(&next_ms);
    bool out = atomic_load(&reserve_out);
    /* kept: watch the free space; released: try to make it again, less often */
    if (now_ms < due ||
        !atomic_compare_exchange_strong(&next_ms, &due,
                                        now_ms + (out ? 10 : 1) * RESERVE_WATCH_MS))
        return;
    pthread_mutex_lock(&reserve_lock);
    uint64_t free_now;
    bool full = false;
    if (reserve_file && atomic_load(&reserve_out))
        reserve_try_restore();
    else if (reserve_file)
        full = reserve_free_space(&free_now) && free_now < reserve_bytes / 4;
    pthread_mutex_unlock(&reserve_lock);
    if (full)
        reserve_release();
}

/* <dir>/quota says `skyfs status` how much the block cache keeps to. */
static void reserve_write_quota(uint64_t cap)
{
    pthread_mutex_lock(&reserve_lock);
    char *file = NULL;
    if (reserve_dir && asprintf(&file, "%s/quota", reserve_dir) < 0)
        file = NULL;
    pthread_mutex_unlock(&reserve_lock);
    if (!file)
        return;
    FILE *f = fopen(file, "we");
    if (f) {
        fprintf(f, "%llu\n", (unsigned long long)cap);
        fclose(f);
    }
    free(file);
}

bool reserve_note_quota(uint64_t cap)
{
    atomic_store(&reserve_quota, true);
    bool freed = reserve_release();
    if (freed)
        reserve_sync_fs();      /* the quota counts the room given back */
    if (cap != UINT64_MAX)
        reserve_write_quota(cap);
    return freed;
}

uint64_t reserve_quota_cap(void)
{
    return atomic_load(&reserve_cap);
}

void reserve_sync_fs(void)
{
    pthread_mutex_lock(&reserve_lock);
    char *dir = reserve_dir ? strdup(reserve_dir) : NULL;
    pthread_mutex_unlock(&reserve_lock);
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
    free(dir);
}

uint64_t reserve_held_back(void)
{
    return atomic_load(&reserve_out) ? reserve_bytes : 0;
}

void reserve_close(void)
{
    pthread_mutex_lock(&reserve_lock);
    free(reserve_file);
    free(reserve_dir);
    reserve_file = reserve_dir = NULL;
    atomic_store(&reserve_out, false);
    pthread_mutex_unlock(&reserve_lock);
}
