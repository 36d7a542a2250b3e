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
 *
 * Name patterns use the trigram index of names (schema 4, see meta.c) the
 * same way: every run of 3 or more literal characters in the pattern must
 * occur in a matching name, so each of its 3-character windows must be one
 * of the name's trigrams.  "ino IN (SELECT rowid FROM entry_trigrams WHERE
 * entry_trigrams MATCH '"abc" AND "bcd" ...')" picks the candidates from
 * the index; the pattern itself is still tested on each row, so the hits
 * are exactly those of a scan.  The index folds case (Unicode), GLOB and
 * lower() fold none or ASCII only, so its candidates are a superset of
 * the matches for --name and --iname alike.  Patterns without such a run
 * ("*.c", "a?b*") scan, or walk the name index when they start with a
 * literal prefix.  --iname is lower(name) GLOB the ASCII-lowered pattern:
 * the same shell pattern as --name ([] classes included), ASCII letters in
 * either case.
 */
#include "search.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/sbuf.h"
#include "cachedb.h"

/* The first schema version of cache/meta.c with cloud metadata. */
#define SEARCH_META_SCHEMA 3

/* At most this many trigrams go into one MATCH: any subset of them still
 * picks a superset of the matches. */
#define SEARCH_MAX_TRIGRAMS 24

struct search {
    sqlite3 *db;
    int schema;             /* the database's user_version */
    bool has_trigrams;      /* the database has the trigram index, SQLite has FTS5 */
    bool use_trigrams;
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

static bool search_has_trigram_table(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    bool has = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                  "name='entry_trigrams'", -1, &st, NULL) == SQLITE_OK &&
               sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return has;
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
    s->has_trigrams = s->use_trigrams = search_has_trigram_table(s->db) && cachedb_has_trigrams();
    *out = s;
    return 0;
}

bool search_use_trigrams(struct search *s, bool use)
{
    s->use_trigrams = use && s->has_trigrams;
    return s->use_trigrams;
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

/* The pattern with ASCII letters in lowercase, as SQL's lower() does. */
static char *ascii_lower(const char *g)
{
    char *low = strdup(g);
    for (char *p = low; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return low;
}

/* ---- trigrams of a pattern ------------------------------------------------ */

struct trigrams {
    char gram[SEARCH_MAX_TRIGRAMS][13];     /* up to 3 UTF-8 characters */
    int n;
};

/* Length of the valid UTF-8 character at p, or 0. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
             : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 2 && p[0] < 0xc2)
        return 0;                       /* overlong */
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

static void trigrams_add(struct trigrams *t, const char *start, size_t len)
{
    for (int i = 0; i < t->n; i++)
        if (strlen(t->gram[i]) == len && memcmp(t->gram[i], start, len) == 0)
            return;
    if (t->n < SEARCH_MAX_TRIGRAMS) {
        memcpy(t->gram[t->n], start, len);
        t->gram[t->n++][len] = '\0';
    }
}

/* After '[' at *p: the end of the class (just past its ']'), or NULL when
 * it has none.  As in SQLite's GLOB: '^' first negates, and a ']' first
 * (after the '^') is a member. */
static const char *skip_class(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    p = strchr(p, ']');
    return p ? p + 1 : NULL;
}

/* Add the trigrams of the literal runs of a GLOB pattern: the
 * 3-character windows of every stretch of valid UTF-8 characters between
 * '*', '?' and [...] classes.  A class without its ']' (which no name
 * matches) adds none at all. */
static void glob_trigrams(const char *glob, struct trigrams *t)
{
    struct trigrams mine = { .n = 0 };
    const char *win[3];                 /* starts of the run's last characters */
    int have = 0;
    for (const char *p = glob; *p;) {
        size_t len = strchr("*?[", *p) ? 0 : utf8_len((const unsigned char *)p);
        if (len == 0) {                 /* the run ends here */
            have = 0;
            if (*p != '[')
                p++;
            else if (!(p = skip_class(p)))
                return;
            continue;
        }
        if (have == 3) {
            win[0] = win[1];
            win[1] = win[2];
            have = 2;
        }
        win[have++] = p;
        p += len;
        if (have == 3)
            trigrams_add(&mine, win[0], (size_t)(p - win[0]));
    }
    for (int i = 0; i < mine.n; i++)
        trigrams_add(t, mine.gram[i], strlen(mine.gram[i]));
}

/* The FTS5 query: every trigram as a quoted string ('"' doubled), joined
 * by AND; NULL when there is none (*none) or out of memory. */
static char *trigrams_match(const struct trigrams *t, bool *none)
{
    struct sbuf q = { 0 };
    *none = t->n == 0;
    if (*none)
        return NULL;
    for (int i = 0; i < t->n; i++) {
        sbuf_add(&q, i ? " AND \"" : "\"");
        for (const char *c = t->gram[i]; *c; c++) {
            sbuf_addn(&q, c, 1);
            if (*c == '"')
                sbuf_addn(&q, c, 1);
        }
        sbuf_add(&q, "\"");
    }
    return sbuf_finish(&q);
}

/* Strings the clause points at that this module made. */
struct owned {
    char *lower, *match, *under, *under_end;
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

/* The lowered --iname pattern (own->lower) and, with `trigrams`, the
 * MATCH query for the trigrams of the name patterns (own->match; NULL when
 * they have none); false on out-of-memory. */
static bool prepare_names(const struct search_query *q, bool trigrams, struct owned *own)
{
    struct trigrams t = { .n = 0 };
    if (q->name_glob)
        glob_trigrams(q->name_glob, &t);
    if (q->iname_glob) {
        if (!(own->lower = ascii_lower(q->iname_glob)))
            return false;
        glob_trigrams(own->lower, &t);
    }
    if (!trigrams)
        return true;
    bool none;
    own->match = trigrams_match(&t, &none);
    return own->match || none;
}

/* SQLite keeps no statistics on how many rows a MATCH selects, so it
 * always walks the trigram index when given one: a random row lookup per
 * candidate, which for a pattern most names match ("*.jpg" among a
 * million photos, "file*") is slower than reading the table through.  So
 * the candidates are first counted, up to a sixteenth of the table, and
 * the index is left out when they reach that. */
static bool trigrams_selective(struct search *s, const char *match)
{
    static const char rows[] = "SELECT coalesce(max(ino),0) FROM entries";
    static const char count[] = "SELECT count(*) FROM (SELECT rowid FROM entry_trigrams "
                                "WHERE entry_trigrams MATCH ?1 LIMIT ?2)";
    sqlite3_stmt *st = NULL;
    int64_t limit = 0, n = 0;
    if (sqlite3_prepare_v2(s->db, rows, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        limit = sqlite3_column_int64(st, 0) / 16;
    sqlite3_finalize(st);
    if (limit < 1024)
        limit = 1024;
    st = NULL;
    if (sqlite3_prepare_v2(s->db, count, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, limit);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n < limit;       /* a failed count keeps the index: the query says why */
}

/* Does q leave out hits its viewer may not see?  (Then LIMIT counts the
 * hits shown, not the rows.) */
static bool filters(const struct search_query *q)
{
    return q->viewer && q->viewer->who->uid != 0;
}

/* ---- who may see a hit ---------------------------------------------------- */

#define VIS_SLOTS 512

/* What is known of one directory: may the viewer list it (r and x), and
 * search it and every directory above it (x)? */
struct vis_slot {
    int64_t ino;                /* 0 = empty */
    bool listable, reachable;
};

struct visibility {
    sqlite3_stmt *dir;          /* a directory's parent and attributes */
    const struct search_viewer *viewer;
    struct vis_slot slots[VIS_SLOTS];
};

static const struct vis_slot *dir_visibility(struct visibility *v, int64_t ino, int depth)
{
    struct vis_slot *slot = &v->slots[(uint64_t)ino % VIS_SLOTS];
    if (slot->ino == ino)
        return slot;
    struct vis_slot found = { ino, false, false };
    int64_t parent = 0;
    sqlite3_reset(v->dir);
    sqlite3_bind_int64(v->dir, 1, ino);
    if (depth < 4096 && sqlite3_step(v->dir) == SQLITE_ROW) {
        parent = sqlite3_column_int64(v->dir, 0);
        struct sky_attr a = {
            .kind = (enum sky_kind)sqlite3_column_int(v->dir, 1),
            .mode = (uint32_t)sqlite3_column_int64(v->dir, 2),
            .uid = (uint32_t)sqlite3_column_int64(v->dir, 3),
            .gid = (uint32_t)sqlite3_column_int64(v->dir, 4),
            .has = (unsigned)sqlite3_column_int(v->dir, 5),
        };
        mode_t perm;
        uid_t uid;
        gid_t gid;
        sky_shown_attr(v->viewer->shown, &a, &perm, &uid, &gid);
        found.reachable = sky_may_access(v->viewer->who, perm, uid, gid, X_OK);
        found.listable = found.reachable && sky_may_access(v->viewer->who, perm, uid, gid, R_OK);
    }
    sqlite3_reset(v->dir);
    /* unknown directories (a broken chain) hide what is under them */
    if (found.reachable && parent != 0)
        found.reachable = dir_visibility(v, parent, depth + 1)->reachable;
    found.listable = found.listable && found.reachable;
    *slot = found;
    return slot;
}

/* The whole query for q into c (c->failed on out-of-memory). */
static void build_query(struct clause *c, const struct search_query *q, struct owned *own)
{
    sbuf_add(&c->sql, "SELECT cloud, path, kind, size, mtime_ns, parent FROM entries "
                      "WHERE cloud IS NOT NULL AND path > ''");
    if (q->name_glob)
        clause_text(c, " AND name GLOB ?", q->name_glob);
    if (q->iname_glob)
        clause_text(c, " AND lower(name) GLOB ?", own->lower);
    if (own->match)
        clause_text(c, " AND ino IN (SELECT rowid FROM entry_trigrams "
                       "WHERE entry_trigrams MATCH ?)", own->match);
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
    if (q->limit && !filters(q))
        clause_int(c, " LIMIT ?", (int64_t)q->limit);
}

static bool wants_cloud_meta(const struct search_query *q)
{
    return q->nmeta || q->content_type_glob || q->storage_class_glob;
}

static int run_statement(struct search *s, const char *sql, const struct clause *c,
                         const struct search_query *q, search_hit_cb cb, void *arg,
                         struct sky_err *e)
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
    struct visibility *vis = NULL;
    if (filters(q)) {
        vis = calloc(1, sizeof *vis);
        if (!vis) {
            sqlite3_finalize(st);
            return sky_fail(e, ENOMEM, "out of memory");
        }
        vis->viewer = q->viewer;
        if (sqlite3_prepare_v2(s->db, "SELECT parent, kind, mode, uid, gid, has FROM entries "
                               "WHERE ino = ?", -1, &vis->dir, NULL) != SQLITE_OK) {
            int rc = sky_fail(e, EIO, "search: %s", sqlite3_errmsg(s->db));
            sqlite3_finalize(vis->dir);
            sqlite3_finalize(st);
            free(vis);
            return rc;
        }
    }
    int rc = 0, step;
    size_t shown = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (vis && !dir_visibility(vis, sqlite3_column_int64(st, 5), 0)->listable)
            continue;
        if (vis && q->limit && shown == q->limit)
            break;
        shown++;
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
    if (!rc && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = sky_fail(e, EIO, "search: %s", sqlite3_errmsg(s->db));
    if (vis)
        sqlite3_finalize(vis->dir);
    free(vis);
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
    if (!prepare_names(q, s->use_trigrams, &own))
        c.failed = true;
    if (own.match && !trigrams_selective(s, own.match)) {
        free(own.match);
        own.match = NULL;
    }
    build_query(&c, q, &own);
    char *sql = sbuf_finish(&c.sql);
    int rc = !sql || c.failed ? sky_fail(e, ENOMEM, "out of memory")
                              : run_statement(s, sql, &c, q, cb, arg, e);
    free(sql);
    free(c.binds);
    free(own.lower);
    free(own.match);
    free(own.under);
    free(own.under_end);
    return rc;
}
