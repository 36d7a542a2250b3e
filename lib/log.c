/* log.c - see log.h. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum sky_log_level min_level = SKY_LOG_INFO;
static FILE *log_file;
static bool to_journal;     /* stderr is journald's stream: "<N>" prefixes */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void sky_log_set_level(enum sky_log_level level) { min_level = level; }
void sky_log_set_file(FILE *f) { log_file = f; }

int sky_log_parse_level(const char *s, enum sky_log_level *out)
{
    static const struct { const char *name; enum sky_log_level level; } names[] = {
        { "debug", SKY_LOG_DEBUG }, { "info", SKY_LOG_INFO }, { "warn", SKY_LOG_WARN },
        { "warning", SKY_LOG_WARN }, { "error", SKY_LOG_ERROR },
    };
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    return -EINVAL;
}

bool sky_log_detect_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    to_journal = !log_file && js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
                 fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
                 (unsigned long long)st.st_ino == ino;
    return to_journal;
}

void sky_vlog(enum sky_log_level level, const char *fmt, va_list ap)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    static const int syslog_priority[] = { 7, 6, 4, 3 };  /* debug, info, warning, err */
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
    /* one journal entry per line: a newline inside would start another */
    for (char *p = text; to_journal && (p = strchr(p, '\n')) != NULL;)
        *p = ' ';

    pthread_mutex_lock(&log_lock);
    if (to_journal && !log_file)
        fprintf(out, "<%d>%s: %s\n", syslog_priority[level], names[level], text);
    else
        fprintf(out, "%s.%03ldZ skyfs %s: %s\n", stamp, now.tv_nsec / 1000000L, names[level],
                text);
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

void sky_log_cloud(enum sky_log_level level, const char *cloud, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    sky_log(level, "cloud '%s': %s", cloud ? cloud : "?", text);
}
