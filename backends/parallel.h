/*
 * parallel.h - run one job per item on a few threads, stopping at the
 * first failure.
 *
 * The drivers' bulk work (S3 multipart parts and tree copies, Azure blocks)
 * is "do job i for i = 0..n-1, a few at a time, and report the first error
 * with its message"; this is that loop, once.  The calling thread works
 * too, so it also runs (serially) when no thread can be started.  The
 * helper threads take the caller's struct http_cancel (http.h), so
 * cancelling the caller cancels their requests too.
 *
 * Used by backends/ drivers and fs/index.c (the metadata pass of skyfs index).
 */
#ifndef SKY_PARALLEL_H
#define SKY_PARALLEL_H

#include <stddef.h>

#include "../lib/err.h"

/* One item of work: 0 or a negative errno with e filled. */
typedef int (*parallel_job_fn)(void *arg, size_t i, struct sky_err *e);

/* Run job(arg, i, ...) for every i in [0, n) on up to `threads` threads.
 * After a failure no new item is started; returns the first failure (and
 * its message in e), or 0. */
int parallel_for(size_t n, int threads, parallel_job_fn job, void *arg, struct sky_err *e);

#endif
