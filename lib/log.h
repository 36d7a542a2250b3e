/*
 * log.h - the daemon's one log stream.
 *
 * Lines go to stderr (foreground) or to a log file chosen at mount time
 * (--log FILE, else <cache dir>/skyfs.log for a background daemon), each
 * stamped with time and level.  Under systemd (stderr is the stream named
 * by $JOURNAL_STREAM, see sky_log_detect_journal) a line is instead
 * "<N>text", N the syslog priority, which journald turns into the
 * entry's PRIORITY (journald stamps the time itself).  A line about one
 * cloud names it ("cloud 'photos': ..."; sky_log_cloud writes that
 * form).  Thread-safe.  Callers must not pass secrets; the top of the
 * stack logs, deep code returns sky_err instead.
 */
#ifndef SKY_LOG_H
#define SKY_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

enum sky_log_level { SKY_LOG_DEBUG, SKY_LOG_INFO, SKY_LOG_WARN, SKY_LOG_ERROR };

void sky_log_set_level(enum sky_log_level level);
/* "debug", "info", "warn" (or "warning"), "error" -> level: 0 or -EINVAL. */
int sky_log_parse_level(const char *s, enum sky_log_level *out);
/* When lines go to stderr and stderr is the journal's stream (its device
 * and inode are $JOURNAL_STREAM's "DEV:INO"), write them with syslog
 * priority prefixes for journald.  Returns whether it does. */
bool sky_log_detect_journal(void);
/* Send log lines to `f` (not closed by log); NULL means stderr. */
void sky_log_set_file(FILE *f);
void sky_log(enum sky_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same with a va_list; a trailing newline in the text is dropped (for
 * libfuse's own messages, which fs/mount.c routes here). */
void sky_vlog(enum sky_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* A line about cloud `cloud`: "cloud 'NAME': text". */
void sky_log_cloud(enum sky_log_level level, const char *cloud, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_DEBUG(...) sky_log(SKY_LOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...)  sky_log(SKY_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...)  sky_log(SKY_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) sky_log(SKY_LOG_ERROR, __VA_ARGS__)

#endif
