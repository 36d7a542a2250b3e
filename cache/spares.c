/*
 * spares.c - empty data files made ahead of need (see spares.h): a stack
 * of ready names under a mutex, refilled by one thread up to SPARES_MAX.
 */
#include "spares.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPARES_MAX 64           /* kept ready: a burst of creates between refills */
#define SPARES_NAME 40

struct spares {
    char *dir;                  /* <cache>/spare */
    pthread_mutex_t mu;
    pthread_cond_t cond;        /* the thread waits on it for takes and stop */
    char ready[SPARES_MAX][SPARES_NAME];
    unsigned n;                 /* ready[0..n) are there, empty */
    unsigned long seq;          /* names this process made */
    bool started, stop;
    pthread_t thread;
};

struct spares *spares_new(const char *cache_dir)
{
    struct spares *s = calloc(1, sizeof *s);
    if (!s || asprintf(&s->dir, "%s/spare", cache_dir) < 0) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    return s;
}

/* Take over what an earlier process left (s->mu held, before the thread
 * starts): empty regular files become ready, the rest goes. */
static void adopt_leftovers(struct spares *s)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        struct stat st;
        bool keep = strlen(de->d_name) < SPARES_NAME && s->n < SPARES_MAX &&
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISREG(st.st_mode) && st.st_size == 0;
        if (keep)
            snprintf(s->ready[s->n++], SPARES_NAME, "%s", de->d_name);
        else
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

static void wait_a_second(struct spares *s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    pthread_cond_timedwait(&s->cond, &s->mu, &until);
}

static void *refill_main(void *arg)
{
    struct spares *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        if (s->n >= SPARES_MAX) {
            pthread_cond_wait(&s->cond, &s->mu);
            continue;
        }
        char name[SPARES_NAME], path[4096];
        snprintf(name, sizeof name, "%ld-%lu", (long)getpid(), ++s->seq);
        snprintf(path, sizeof path, "%s/%s", s->dir, name);
        pthread_mutex_unlock(&s->mu);
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        int err = errno;
        if (fd >= 0)
            close(fd);
        pthread_mutex_lock(&s->mu);
        if (fd >= 0)
            snprintf(s->ready[s->n++], SPARES_NAME, "%s", name);
        else if (err != EEXIST && !s->stop)
            wait_a_second(s);   /* a full disk, say: the takes fall back meanwhile */
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The first take: the directory, the leftovers, the thread (s->mu held). */
static void start(struct spares *s)
{
    s->started = true;
    if (mkdir(s->dir, 0700) != 0 && errno != EEXIST)
        return;                 /* no spares at all: every take falls back */
    adopt_leftovers(s);
    if (pthread_create(&s->thread, NULL, refill_main, s) != 0)
        s->stop = true;
}

int spares_take(struct spares *s, const char *file)
{
    if (!s)
        return -1;
    char path[4096];
    pthread_mutex_lock(&s->mu);
    if (!s->started)
        start(s);
    bool have = s->n > 0;
    if (have)
        snprintf(path, sizeof path, "%s/%s", s->dir, s->ready[--s->n]);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    if (!have || rename(path, file) != 0)
        return -1;
    return open(file, O_RDWR | O_CLOEXEC);
}

void spares_free(struct spares *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    bool join = s->started && !s->stop;
    s->stop = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    if (join)
        pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s->dir);
    free(s);
}
