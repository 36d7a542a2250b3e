/*
 * sbuf.h - a growable NUL-terminated string, for building canonical
 * requests and signatures.
 *
 * Appends never fail loudly: on out-of-memory `failed` is set and later
 * appends are ignored, so a caller builds the whole string and checks once,
 * at sbuf_finish.  Start from `struct sbuf b = { 0 };`.
 *
 * Used by backends/ (the SigV4 and Azure Shared Key signers) and cache/search.c
 * (SQL text).
 */
#ifndef SKY_SBUF_H
#define SKY_SBUF_H

#include <stddef.h>

struct sbuf {
    char *s;            /* the string so far (NULL while empty) */
    size_t len, cap;
    int failed;         /* an allocation failed */
};

void sbuf_addn(struct sbuf *b, const char *s, size_t n);
void sbuf_add(struct sbuf *b, const char *s);
/* The finished string (malloc'd, "" when nothing was added), or NULL if an
 * allocation failed.  The buffer is handed over: do not use b afterwards. */
char *sbuf_finish(struct sbuf *b);

#endif
