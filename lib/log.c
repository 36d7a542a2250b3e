/* log.c - see log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <time.h>

static enum sky_log_level min_level = SKY_LOG_INFO;
static FILE *log_file;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void sky_log_set_level(enum sky_log_level level) { min_level = level; }
void sky_log_set_file(FILE *f) { log_file = f; }

void sky_vlog(enum sky_log_level level, const char *fmt, va_list ap)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    if (level < min_level)
        return;
    FILE *out = log_file ? log_file : stderr;
    struct timespec now;
    struct tm tm;
    char stamp[32], text[4096];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    int len = vsnprintf(text, sizeof text, fmt, ap);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof text)
        len = sizeof text - 1;
    while (len > 0 && text[len - 1] == '\n')
        text[--len] = '\0';

    pthread_mutex_lock(&log_lock);
    fprintf(out, "%s.%03ldZ skyfs %s: %s\n", stamp, now.tv_nsec / 1000000L, names[level], text);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

void sky_log(enum sky_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sky_vlog(level, fmt, ap);
    va_end(ap);
}
