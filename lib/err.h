/*
 * err.h - errors that travel up as values.
 *
 * Every fallible function in skyfs returns 0 on success or a negative errno,
 * and fills a `struct sky_err` with the same errno and one sentence for the
 * person ("s3 cloud 'photos': GET a/b.txt: 403 AccessDenied").  Deep code
 * never prints: the top (fs/ answering the kernel, tools/ answering the
 * user) decides whether to log the message, print it, or drop it.
 *
 * Used by every module.  Messages must never contain secrets.
 */
#ifndef SKY_ERR_H
#define SKY_ERR_H

#include <stddef.h>

struct sky_err {
    int code;        /* positive errno, 0 when no error */
    char msg[512];   /* readable sentence, no trailing newline */
};

/* Fill `e` (may be NULL) and return -code.  printf-style message. */
int sky_fail(struct sky_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "ctx: old message".  Returns -e->code. */
int sky_err_prefix(struct sky_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reset to "no error". */
void sky_err_clear(struct sky_err *e);

#endif
