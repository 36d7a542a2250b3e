/*
 * paging.h - the guard a paged listing runs under.
 *
 * Object stores list in pages: each answer carries a token (S3's
 * continuation token, Azure's NextMarker) that asks for the next one.  A
 * server that repeats a token, or keeps answering pages that bring nothing
 * new, would make a listing loop forever.  The guard stops such a listing
 * with an error that names the cloud:
 *
 *   - a page whose next token is the one that asked for it (or the token
 *     of the page before) is an error at once;
 *   - the listed names come in byte order, so a page that brings no name
 *     past the greatest seen so far brings nothing new; many such pages in
 *     a row (LIST_STALL_PAGES) are an error (one now and then is not: S3
 *     may answer an empty page while it skips over deleted versions);
 *   - a listing has at most LIST_MAX_PAGES pages and LIST_MAX_BYTES bytes
 *     of answers.
 *
 * Use (backends/ drivers only):
 *
 *     struct list_guard g = LIST_GUARD_INIT;
 *     for each page:
 *         for each item: list_guard_item(&g, name);
 *         rc = list_guard_page(&g, body_len, next_token, e);   // 0 or -EIO
 *     list_guard_free(&g);
 *
 * The caller prefixes e with its cloud and path (sky_err_prefix).
 */
#ifndef SKY_PAGING_H
#define SKY_PAGING_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

#define LIST_STALL_PAGES 16
#define LIST_MAX_PAGES   200000
#define LIST_MAX_BYTES   (64ull << 30)

struct list_guard {
    size_t pages;
    uint64_t bytes;
    char *token;            /* the token that asked for the current page */
    char *prev_token;       /* the one before */
    char *greatest;         /* the greatest name listed so far */
    int progressed;         /* the current page listed a name past it */
    int stalled;            /* pages in a row that brought nothing new */
};

#define LIST_GUARD_INIT { 0 }

/* An item (object or prefix) of the current page. */
void list_guard_item(struct list_guard *g, const char *name);
/* The current page was `bytes` long and names `next` (NULL or "": the
 * last page).  0 to go on (or stop, for the last page), -EIO with e set
 * when the listing must stop, -ENOMEM. */
int list_guard_page(struct list_guard *g, size_t bytes, const char *next, struct sky_err *e);
void list_guard_free(struct list_guard *g);

#endif
