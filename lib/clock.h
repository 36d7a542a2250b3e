/*
 * clock.h - time on CLOCK_MONOTONIC, the clock that never jumps: "now" for
 * measuring and deadlines, and the timespec that pthread_cond_timedwait
 * wants for "N ms from now" on a condition variable made by
 * clock_cond_init.
 *
 * A wait made this way is not lengthened or cut short when the wall clock
 * is set.  Wall-clock times (file times, log lines, expiry dates) stay on
 * CLOCK_REALTIME where they are; this module is only for intervals.
 *
 * Any module may call it (fs/, cache/, backends/, tools/, tests/).
 */
#ifndef SKY_CLOCK_H
#define SKY_CLOCK_H

#include <pthread.h>
#include <time.h>

/* CLOCK_MONOTONIC now, in ms, in us, in seconds. */
long long clock_now_ms(void);
long long clock_now_us(void);
double clock_now_s(void);

/* The CLOCK_MONOTONIC instant `ms` from now (ms <= 0: now), normalised,
 * for pthread_cond_timedwait on a clock_cond_init condition variable. */
struct timespec clock_deadline_ms(long long ms);

/* The CLOCK_MONOTONIC instant `at_ms` (a clock_now_ms() value) as a
 * timespec, for the same waits. */
struct timespec clock_at_ms(long long at_ms);

/* Initialise `c` to time its waits on CLOCK_MONOTONIC (0, or an errno). */
int clock_cond_init(pthread_cond_t *c);

#endif
