/* test_parallel.c - parallel_for runs each item once and reports the first
 * failure. */
#include "check.h"

#include <errno.h>
#include <pthread.h>

#include "../../backends/parallel.h"

struct tally {
    pthread_mutex_t lock;
    int seen[200];
    size_t fail_at;             /* item that fails, or 200 for none */
};

static int count_item(void *arg, size_t i, struct sky_err *e)
{
    struct tally *t = arg;
    pthread_mutex_lock(&t->lock);
    t->seen[i]++;
    pthread_mutex_unlock(&t->lock);
    if (i == t->fail_at)
        return sky_fail(e, EIO, "item %zu failed", i);
    return 0;
}

TEST(parallel_runs_every_item_once)
{
    struct tally t = { .lock = PTHREAD_MUTEX_INITIALIZER, .fail_at = 200 };
    struct sky_err e = { 0 };
    CHECK_INT(parallel_for(200, 4, count_item, &t, &e), 0);
    int wrong = 0;
    for (int i = 0; i < 200; i++)
        wrong += t.seen[i] != 1;
    CHECK_INT(wrong, 0);
}

TEST(parallel_reports_the_first_failure)
{
    struct tally t = { .lock = PTHREAD_MUTEX_INITIALIZER, .fail_at = 3 };
    struct sky_err e = { 0 };
    CHECK_INT(parallel_for(200, 4, count_item, &t, &e), -EIO);
    CHECK_STR(e.msg, "item 3 failed");
    int ran = 0;
    for (int i = 0; i < 200; i++)
        ran += t.seen[i];
    CHECK(ran < 200);           /* no new items after the failure */
}

TEST(parallel_with_one_thread_runs_inline)
{
    struct tally t = { .lock = PTHREAD_MUTEX_INITIALIZER, .fail_at = 200 };
    CHECK_INT(parallel_for(10, 1, count_item, &t, NULL), 0);
    CHECK_INT(t.seen[9], 1);
    CHECK_INT(parallel_for(0, 4, count_item, &t, NULL), 0);
}
