/* err.c - see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sky_fail(struct sky_err *e, int code, const char *fmt, ...)
{
    if (code < 0)
        code = -code;
    if (e) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -code;
}

int sky_err_prefix(struct sky_err *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char head[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%s: %s", head, old);
    return -e->code;
}

void sky_err_clear(struct sky_err *e)
{
    if (e) {
        e->code = 0;
        e->msg[0] = '\0';
    }
}
