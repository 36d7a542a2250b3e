/* parallel.c - see parallel.h. */
#include "parallel.h"

#include <pthread.h>

#include "http.h"

#define PARALLEL_MAX_THREADS 32

struct parallel {
    size_t n;
    parallel_job_fn job;
    void *arg;
    pthread_mutex_t lock;
    size_t next;                /* next item to hand out */
    int rc;                     /* first failure */
    struct sky_err first;
    struct http_cancel *cancel; /* the caller's (http.h), for the helper threads */
};

static void *parallel_worker(void *arg)
{
    struct parallel *p = arg;
    http_cancel_set(p->cancel);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        size_t i = p->next;
        int stop = p->rc < 0 || i >= p->n;
        if (!stop)
            p->next++;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
        struct sky_err e = { 0 };
        int rc = p->job(p->arg, i, &e);
        if (rc < 0) {
            pthread_mutex_lock(&p->lock);
            if (p->rc == 0) {
                p->rc = rc;
                p->first = e;
            }
            pthread_mutex_unlock(&p->lock);
        }
    }
}

int parallel_for(size_t n, int threads, parallel_job_fn job, void *arg, struct sky_err *e)
{
    struct parallel p = { .n = n, .job = job, .arg = arg, .cancel = http_cancel_current() };
    pthread_t th[PARALLEL_MAX_THREADS];
    int started = 0;
    if (threads > PARALLEL_MAX_THREADS)
        threads = PARALLEL_MAX_THREADS;
    pthread_mutex_init(&p.lock, NULL);
    for (int i = 1; i < threads && (size_t)i < n; i++)
        if (pthread_create(&th[started], NULL, parallel_worker, &p) == 0)
            started++;
    parallel_worker(&p);        /* this thread works too */
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.lock);
    if (p.rc < 0 && e)
        *e = p.first;
    return p.rc;
}
