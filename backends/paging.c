/* paging.c - see paging.h. */
#include "paging.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void list_guard_item(struct list_guard *g, const char *name)
{
    if (!name || (g->greatest && strcmp(name, g->greatest) <= 0))
        return;
    char *copy = strdup(name);
    if (!copy)
        return;         /* only weakens the check */
    free(g->greatest);
    g->greatest = copy;
    g->progressed = 1;
}

int list_guard_page(struct list_guard *g, size_t bytes, const char *next, struct sky_err *e)
{
    g->pages++;
    g->bytes += bytes;
    int progressed = g->progressed;
    g->progressed = 0;
    if (!next || !*next)
        return 0;
    if ((g->token && strcmp(next, g->token) == 0) ||
        (g->prev_token && strcmp(next, g->prev_token) == 0))
        return sky_fail(e, EIO, "the server repeated a page token after %zu pages; listing "
                        "stopped", g->pages);
    g->stalled = progressed ? 0 : g->stalled + 1;
    if (g->stalled >= LIST_STALL_PAGES)
        return sky_fail(e, EIO, "the server sent %d pages in a row without a new name; "
                        "listing stopped", g->stalled);
    if (g->pages >= LIST_MAX_PAGES || g->bytes >= LIST_MAX_BYTES)
        return sky_fail(e, EIO, "the listing passed %zu pages or %llu bytes; listing stopped",
                        (size_t)LIST_MAX_PAGES, (unsigned long long)LIST_MAX_BYTES);
    char *copy = strdup(next);
    if (!copy)
        return sky_fail(e, ENOMEM, "out of memory");
    free(g->prev_token);
    g->prev_token = g->token;
    g->token = copy;
    return 0;
}

void list_guard_free(struct list_guard *g)
{
    free(g->token);
    free(g->prev_token);
    free(g->greatest);
    memset(g, 0, sizeof *g);
}
