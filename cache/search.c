/*
 * search.c - see search.h.  One SELECT over the `entries` table of the
 * metadata cache (and `user_meta` for metadata tests), its WHERE clause
 * built from the criteria that are set; values are always bound, never
 * pasted into the SQL.
 *
 * A metadata test is "ino IN (SELECT ino FROM user_meta WHERE key = ? AND
 * value GLOB ?)": the subquery walks the (key, value) index, and SQLite
 * answers the IN by rowid, so a search by metadata alone never scans the
 * entries table.
 */
#include "search.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/sbuf.h"

/* The first schema version of cache/meta.c with cloud metadata. */
#define SEARCH_META_SCHEMA 3

struct search {
    sqlite3 *db;
    int schema;             /* the database's user_version */
};

void search_query_init(struct search_query *q)
{
    memset(q, 0, sizeof *q);
    q->min_size = q->max_size = -1;
}

static int search_schema(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
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
    s->schema = search_schema(s->db);
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

/* ---- the WHERE clause and its bound values, built side by side ---------- */

struct bind {
    const char *text;       /* NULL: bind num */
    int64_t num;
};

struct clause {
    struct sbuf sql;
    struct bind *binds;
    size_t n, cap;
    bool failed;
};

static void clause_bind(struct clause *c, const char *fragment, struct bind b)
{
    sbuf_add(&c->sql, fragment);
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct bind *nb = realloc(c->binds, cap * sizeof *nb);
        if (!nb) {
            c->failed = true;
            return;
        }
        c->binds = nb;
        c->cap = cap;
    }
    c->binds[c->n++] = b;
}

static void clause_text(struct clause *c, const char *fragment, const char *value)
{
    clause_bind(c, fragment, (struct bind){ .text = value });
}

static void clause_int(struct clause *c, const char *fragment, int64_t value)
{
    clause_bind(c, fragment, (struct bind){ .num = value });
}

/* A case-insensitive glob as a LIKE pattern: * and ? become % and _, and
 * LIKE's own specials are escaped with '\'. */
static char *glob_to_like(const char *g)
{
    char *like = malloc(strlen(g) * 2 + 1), *o = like;
    if (!like)
        return NULL;
    for (; *g; g++) {
        if (*g == '*')
            *o++ = '%';
        else if (*g == '?')
            *o++ = '_';
        else {
            if (*g == '%' || *g == '_' || *g == '\\')
                *o++ = '\\';
            *o++ = *g;
        }
    }
    *o = '\0';
    return like;
}

/* Strings the clause points at that this module made. */
struct owned {
    char *like, *under, *under_end;
};

static void add_path_prefix(struct clause *c, const char *prefix, struct owned *own)
{
    /* the entry itself, or anything under "prefix/" (byte range, so '%'
     * and '_' in names mean nothing special) */
    if (asprintf(&own->under, "%s/", prefix) < 0)
        own->under = NULL;
    if (asprintf(&own->under_end, "%s0", prefix) < 0)
        own->under_end = NULL;
    if (!own->under || !own->under_end)
        c->failed = true;
    clause_text(c, " AND (path = ?", prefix);
    clause_text(c, " OR (path >= ?", own->under);
    clause_text(c, " AND path < ?))", own->under_end);
}

static void add_meta_tests(struct clause *c, const struct search_query *q)
{
    for (size_t i = 0; i < q->nmeta; i++) {
        const struct search_meta_test *t = &q->meta[i];
        if (t->value_glob) {
            clause_text(c, " AND ino IN (SELECT ino FROM user_meta WHERE key = ?", t->key);
            clause_text(c, " AND value GLOB ?)", t->value_glob);
        } else {
            clause_text(c, " AND ino IN (SELECT ino FROM user_meta WHERE key = ?)", t->key);
        }
    }
    if (q->content_type_glob)
        clause_text(c, " AND content_type GLOB ?", q->content_type_glob);
    if (q->storage_class_glob)
        clause_text(c, " AND storage_class GLOB ?", q->storage_class_glob);
}

/* The whole query for q into c (c->failed on out-of-memory). */
static void build_query(struct clause *c, const struct search_query *q, struct owned *own)
{
    sbuf_add(&c->sql, "SELECT cloud, path, kind, size, mtime_ns FROM entries "
                      "WHERE cloud IS NOT NULL AND path > ''");
    if (q->name_glob)
        clause_text(c, " AND name GLOB ?", q->name_glob);
    if (q->iname_glob) {
        if (!(own->like = glob_to_like(q->iname_glob)))
            c->failed = true;
        clause_text(c, " AND name LIKE ? ESCAPE '\\'", own->like);
    }
    if (q->cloud)
        clause_text(c, " AND cloud = ?", q->cloud);
    if (q->path_prefix && *q->path_prefix)
        add_path_prefix(c, q->path_prefix, own);
    if (q->kind)
        clause_int(c, " AND kind = ?", q->kind);
    if (q->min_size >= 0)
        clause_int(c, " AND size >= ?", q->min_size);
    if (q->max_size >= 0)
        clause_int(c, " AND size <= ?", q->max_size);
    if (q->mtime_after_ns)
        clause_int(c, " AND mtime_ns >= ?", q->mtime_after_ns);
    if (q->mtime_before_ns)
        clause_int(c, " AND mtime_ns < ?", q->mtime_before_ns);
    add_meta_tests(c, q);
    /* "+" keeps the planner from walking the (cloud, path) index just to
     * sort: the WHERE clause picks the index, the few matches are sorted */
    sbuf_add(&c->sql, " ORDER BY +cloud, +path");
    if (q->limit)
        clause_int(c, " LIMIT ?", (int64_t)q->limit);
}

static bool wants_cloud_meta(const struct search_query *q)
{
    return q->nmeta || q->content_type_glob || q->storage_class_glob;
}

static int run_statement(struct search *s, const char *sql, const struct clause *c,
                         search_hit_cb cb, void *arg, struct sky_err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        int rc = sky_fail(e, EIO, "search: %s", sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        return rc;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->binds[i].text)
            sqlite3_bind_text(st, (int)i + 1, c->binds[i].text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, (int)i + 1, c->binds[i].num);
    }
    int rc = 0, step;
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
    sqlite3_finalize(st);
    return rc;
}

int search_run(struct search *s, const struct search_query *q, search_hit_cb cb, void *arg,
               struct sky_err *e)
{
    if (wants_cloud_meta(q) && s->schema < SEARCH_META_SCHEMA)
        return sky_fail(e, EPROTO, "search: this index was written by an older skyfs and holds "
                        "no cloud metadata; mount once or run skyfs index to upgrade it");
    for (size_t i = 0; i < q->nmeta; i++)
        if (!q->meta[i].key || !*q->meta[i].key)
            return sky_fail(e, EINVAL, "search: a metadata test needs a key");
    struct clause c = { 0 };
    struct owned own = { 0 };
    build_query(&c, q, &own);
    char *sql = sbuf_finish(&c.sql);
    int rc = !sql || c.failed ? sky_fail(e, ENOMEM, "out of memory")
                              : run_statement(s, sql, &c, cb, arg, e);
    free(sql);
    free(c.binds);
    free(own.like);
    free(own.under);
    free(own.under_end);
    return rc;
}
