/*
 * search.h - searching the metadata cache across all clouds, with no
 * network.
 *
 * The metadata cache (meta.h) is also the search index: every entry skyfs
 * has listed, in every cloud, with its size and mtime.  This module opens
 * the same database read-only, in its own connection, so `skyfs search`
 * works while a mount is running and never disturbs it, and runs one SQL
 * query built from the criteria below (all optional, all combined with AND).
 * User metadata, content type and storage class are only as complete as
 * the index (see `skyfs index --metadata`).  Name patterns with a run of
 * 3 or more literal characters are answered from the trigram index of
 * names when the database has one (schema 4 and FTS5), with the same hits
 * as a scan.
 *
 * Used by tools/ (skyfs search) and fs/ (the .skyfs/search directory).
 */
#ifndef SKY_SEARCH_H
#define SKY_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../backends/driver.h"
#include "../lib/err.h"
#include "../lib/perm.h"

struct search;

/* One user metadata test: the entry has user metadata `key` (exact, as
 * the xattr name shows it after "user.") whose value matches value_glob
 * (a shell pattern, case-sensitive), or any value when value_glob is NULL. */
struct search_meta_test {
    const char *key;
    const char *value_glob;
};

/* Whose search it is: a hit is shown only if the requester may list its
 * directory (r and x) and search every directory above it (x), up to the
 * mount root, by the modes and owners the mount shows for them
 * (lib/perm.h: the cached mode/uid/gid, the mount's defaults and
 * options).  Root sees every hit. */
struct search_viewer {
    const struct sky_requester *who;
    const struct sky_shown *shown;
};

struct search_query {
    const char *name_glob;      /* shell pattern on the file name (GLOB: * ? [a-z] [^a]) */
    const char *iname_glob;     /* the same, ASCII letters in either case */
    const char *cloud;          /* only this cloud */
    const char *path_prefix;    /* only at or under this path inside the cloud */
    int kind;                   /* 0 = any, else SKY_FILE / SKY_DIR / SKY_LINK */
    int64_t min_size;           /* -1 = no bound */
    int64_t max_size;           /* -1 = no bound */
    int64_t mtime_after_ns;     /* 0 = no bound; mtime >= this */
    int64_t mtime_before_ns;    /* 0 = no bound; mtime < this */
    const struct search_meta_test *meta;    /* nmeta tests, all must hold */
    size_t nmeta;
    const char *content_type_glob;      /* shell pattern on the content type */
    const char *storage_class_glob;     /* shell pattern on the storage class */
    size_t limit;               /* 0 = no limit */
    const struct search_viewer *viewer; /* NULL: every hit */
};

struct search_hit {
    const char *cloud;
    const char *path;           /* inside the cloud */
    enum sky_kind kind;
    uint64_t size;
    int64_t mtime_ns;
};

/* Called per hit, ordered by cloud then path.  Non-zero stops the search. */
typedef int (*search_hit_cb)(void *arg, const struct search_hit *hit);

void search_query_init(struct search_query *q);

/* Open the metadata database at db_path read-only.  A database written by
 * an older skyfs answers every criterion but the cloud metadata ones,
 * which fail with -EPROTO and a sentence saying how to upgrade it. */
int search_open(const char *db_path, struct search **out, struct sky_err *e);
void search_close(struct search *s);

/* Whether name patterns use the trigram index of names, which they do by
 * default when the database has it and SQLite has FTS5.  `use` false makes
 * every name pattern scan instead, with the same hits (to compare the
 * two).  Returns whether the index is used from now on. */
bool search_use_trigrams(struct search *s, bool use);

int search_run(struct search *s, const struct search_query *q, search_hit_cb cb, void *arg,
               struct sky_err *e);

#endif
