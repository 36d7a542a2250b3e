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

void sky_log(enum sky_log_level level, const char *fmt, ...)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    if (level < min_level)
        return;
    FILE *out = log_file ? log_file : stderr;
    struct timespec now;
    struct tm tm;
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    fprintf(out, "%s.%03ldZ skyfs %s: ", stamp, now.tv_nsec / 1000000L, names[level]);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}
