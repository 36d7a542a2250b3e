/*
 * search.c - see search.h.  One SELECT over the `entries` table of the
 * metadata cache, its WHERE clause built from the criteria that are set;
 * values are always bound, never pasted into the SQL.
 */
#include "search.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct search {
    sqlite3 *db;
};

void search_query_init(struct search_query *q)
{
    memset(q, 0, sizeof *q);
    q->min_size = q->max_size = -1;
}

int search_open(const char *db_path, struct search **out, struct sky_err *e)
{
    struct search *s = calloc(1, sizeof *s);
    if (!s)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = sqlite3_open_v2(db_path, &s->db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        sky_fail(e, ENOENT, "cannot open the metadata index %s: %s; mount once (or run skyfs "
                 "index) so there is something to search", db_path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sqlite3_close(s->db);
        free(s);
        return -ENOENT;
    }
    sqlite3_busy_timeout(s->db, 5000);
    *out = s;
    return 0;
}

void search_close(struct search *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

/* The WHERE clause and its bound values, built side by side. */
struct clause {
    char sql[1024];
    int ntext, nint;
    const char *text[8];
    int text_pos[8];
    int64_t ints[8];
    int int_pos[8];
    int next;           /* next parameter number */
};

static void add_text(struct clause *c, const char *fragment, const char *value)
{
    strncat(c->sql, fragment, sizeof c->sql - strlen(c->sql) - 1);
    c->text[c->ntext] = value;
    c->text_pos[c->ntext++] = ++c->next;
}

static void add_int(struct clause *c, const char *fragment, int64_t value)
{
    strncat(c->sql, fragment, sizeof c->sql - strlen(c->sql) - 1);
    c->ints[c->nint] = value;
    c->int_pos[c->nint++] = ++c->next;
}

int search_run(struct search *s, const struct search_query *q, search_hit_cb cb, void *arg,
               struct sky_err *e)
{
    struct clause c = { .sql = "SELECT cloud, path, kind, size, mtime_ns FROM entries "
                               "WHERE cloud IS NOT NULL AND path > ''" };
    char *under = NULL, *under_end = NULL;
    if (q->name_glob)
        add_text(&c, " AND name GLOB ?", q->name_glob);
    if (q->iname_glob)
        add_text(&c, " AND name LIKE ?", q->iname_glob); /* converted below */
    if (q->cloud)
        add_text(&c, " AND cloud = ?", q->cloud);
    if (q->path_prefix && *q->path_prefix) {
        /* the entry itself, or anything under "prefix/" (byte range, so
         * '%' and '_' in names mean nothing special) */
        if (asprintf(&under, "%s/", q->path_prefix) < 0 ||
            asprintf(&under_end, "%s0", q->path_prefix) < 0) {
            free(under);
            return sky_fail(e, ENOMEM, "out of memory");
        }
        add_text(&c, " AND (path = ?", q->path_prefix);
        add_text(&c, " OR (path >= ?", under);
        add_text(&c, " AND path < ?))", under_end);
    }
    if (q->kind)
        add_int(&c, " AND kind = ?", q->kind);
    if (q->min_size >= 0)
        add_int(&c, " AND size >= ?", q->min_size);
    if (q->max_size >= 0)
        add_int(&c, " AND size <= ?", q->max_size);
    if (q->mtime_after_ns)
        add_int(&c, " AND mtime_ns >= ?", q->mtime_after_ns);
    if (q->mtime_before_ns)
        add_int(&c, " AND mtime_ns < ?", q->mtime_before_ns);
    /* "+" keeps the planner from walking the (cloud, path) index just to
     * sort: the WHERE clause picks the index, the few matches are sorted */
    strncat(c.sql, " ORDER BY +cloud, +path", sizeof c.sql - strlen(c.sql) - 1);
    if (q->limit)
        add_int(&c, " LIMIT ?", (int64_t)q->limit);

    /* case-insensitive glob: turn * and ? into LIKE's % and _ (escaping
     * LIKE's own specials) */
    char *like = NULL;
    if (q->iname_glob) {
        const char *g = q->iname_glob;
        like = malloc(strlen(g) * 2 + 1);
        if (!like) {
            free(under);
            free(under_end);
            return sky_fail(e, ENOMEM, "out of memory");
        }
        char *o = like;
        for (; *g; g++) {
            if (*g == '*') *o++ = '%';
            else if (*g == '?') *o++ = '_';
            else if (*g == '%' || *g == '_' || *g == '\\') { *o++ = '\\'; *o++ = *g; }
            else *o++ = *g;
        }
        *o = '\0';
        for (int i = 0; i < c.ntext; i++)
            if (c.text[i] == q->iname_glob)
                c.text[i] = like;
        char *pos = strstr(c.sql, "name LIKE ?");
        if (pos) {
            /* add the ESCAPE clause right after the parameter */
            char rest[1024];
            snprintf(rest, sizeof rest, "%s", pos + strlen("name LIKE ?"));
            snprintf(pos, sizeof c.sql - (size_t)(pos - c.sql), "name LIKE ? ESCAPE '\\'%s", rest);
        }
    }

    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, c.sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = sky_fail(e, EIO, "search: %s", sqlite3_errmsg(s->db));
        goto out;
    }
    for (int i = 0; i < c.ntext; i++)
        sqlite3_bind_text(st, c.text_pos[i], c.text[i], -1, SQLITE_STATIC);
    for (int i = 0; i < c.nint; i++)
        sqlite3_bind_int64(st, c.int_pos[i], c.ints[i]);
    rc = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct search_hit h = {
            .cloud = (const char *)sqlite3_column_text(st, 0),
            .path = (const char *)sqlite3_column_text(st, 1),
            .kind = (enum sky_kind)sqlite3_column_int(st, 2),
            .size = (uint64_t)sqlite3_column_int64(st, 3),
            .mtime_ns = sqlite3_column_int64(st, 4),
        };
        rc = cb(arg, &h);
        if (rc)
            break;
    }
    if (!rc && step != SQLITE_DONE)
        rc = sky_fail(e, EIO, "search: %s", sqlite3_errmsg(s->db));
out:
    sqlite3_finalize(st);
    free(like);
    free(under);
    free(under_end);
    return rc;
}
