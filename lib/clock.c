/*
 * clock.c - CLOCK_MONOTONIC now, deadlines and condition variables (see
 * clock.h).
 */
#include "clock.h"

#define NS_PER_S 1000000000L

static struct timespec mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

long long clock_now_ms(void)
{
    struct timespec ts = mono_now();
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long clock_now_us(void)
{
    struct timespec ts = mono_now();
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double clock_now_s(void)
{
    struct timespec ts = mono_now();
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timespec clock_deadline_ms(long long ms)
{
    struct timespec ts = mono_now();
    if (ms <= 0)
        return ts;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= NS_PER_S) {
        ts.tv_sec++;
        ts.tv_nsec -= NS_PER_S;
    }
    return ts;
}

struct timespec clock_at_ms(long long at_ms)
{
    if (at_ms < 0)
        at_ms = 0;
    return (struct timespec){ .tv_sec = (time_t)(at_ms / 1000),
                              .tv_nsec = (long)(at_ms % 1000) * 1000000L };
}

int clock_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}
