/*
 * meta_int.h - the inside of the metadata cache, shared by the modules of
 * cache/ that write it (meta.c, crawlstore.c).  Nothing outside cache/
 * includes it.
 *
 * Every function named *_locked, and the writers below, expect the
 * caller to hold m->lock; writers run inside meta_begin / meta_finish
 * (one write transaction, which also keeps the trigram index of names in
 * step: see the top of meta.c).
 */
#ifndef SKY_META_INT_H
#define SKY_META_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/u64set.h"
#include "cachedb.h"
#include "meta.h"

struct meta {
    pthread_mutex_t lock;
    struct cachedb db;
    bool trigrams;              /* entry_trigrams exists and is kept in step */
    int64_t tri_mark;           /* in a write transaction: the last inode before it */
    bool tri_gone;              /* ... names were queued in temp.trigram_gone */
    struct cachedb crawl_db;    /* crawlstore.c's statements, on the same connection */
    meta_gone_fn gone;          /* meta_on_gone: entries a listing found removed */
    void *gone_arg;
    struct u64set held;         /* meta_hold: entries kept whatever the cloud says */
};

/* The cache's prepared statements (meta.c holds their SQL). */
enum {
    Q_GET, Q_LOOKUP, Q_CHILDREN_PAGE, Q_CHILD_COUNT, Q_CHILD_COUNT_UPTO, Q_CHILD_KEYS, Q_INSERT, Q_UPDATE_ATTR,
    Q_SET_OWN,
    Q_SET_LINK, Q_SET_LISTED, Q_SET_FETCHED, Q_FIND_PATH, Q_DELETE_INO, Q_DELETE_RANGE, Q_DELETE_CLOUD,
    Q_MOVE, Q_MOVE_RANGE, Q_OBJMETA_GET, Q_OBJMETA_SET, Q_USER_LIST, Q_USER_CLEAR,
    Q_USER_PUT, Q_USER_DEL, Q_MISSING_ALL, Q_MISSING_UNDER, Q_MAX_INO,
    /* the statements built on TRI_GONE (?9: the trigram mark, which
     * meta_stmt binds), from Q_TRI_GONE_INO to Q_TRI_GONE_LAST */
    Q_TRI_GONE_INO, Q_TRI_GONE_RANGE, Q_TRI_GONE_CLOUD, Q_FORGET_TRI_RANGE, Q_FORGET_TRI_CLOUD,
    Q_LOST_TRI, Q_TRI_GONE_LAST = Q_LOST_TRI,
    Q_TRI_FORGET_GONE, Q_TRI_CLEAR_GONE, Q_TRI_ADD_NEW,
    Q_TRI_FORGET_INO, Q_TRI_ADD, Q_SET_NODE, Q_SUBDIR_COUNT, Q_SET_NLINKS, Q_SAME_FILE,
    Q_SET_ATIME, Q_SET_LOCAL_ONLY, Q_KEPT_INO, Q_MOVE_PUT, Q_MOVE_DEL, Q_MOVE_LIST,
    Q_NEXT_DEFERRED, Q_DEFERRED_COUNT,
    Q_FORGET_RANGE, Q_FORGET_CLOUD, Q_FORGET_KEPT_RANGE, Q_FORGET_KEPT_CLOUD,
    Q_LOCAL_BELOW_RANGE, Q_LOCAL_BELOW_CLOUD, Q_LOST_FILES, Q_LOST_STALE, Q_COUNT
};

/* Children read per page by meta_children. */
#define CHILDREN_PAGE 256

/* Checks and small helpers.  meta_wall_now: the wall clock in ns (the
 * time of the mount's own changes). */
int64_t meta_wall_now(void);
/* A cloud stamp (sky_attr.modified_ns) worth keeping as the version whose
 * metadata was read: `stamp` when its second has passed by the wall
 * clock, else 0.  Clouds stamp whole seconds (S3's Last-Modified), so
 * another change in the same second would carry the same stamp; once the
 * second is over, any later change carries a later one. */
int64_t meta_settled_stamp(int64_t stamp);
bool meta_valid_name(const char *name);
bool meta_valid_kind(const struct sky_attr *a);
/* 0, or -EINVAL with the reason when `name` or the kind in `attr` cannot
 * be a new entry (meta_upsert, meta_upsert_local). */
int meta_check_new(const char *name, const struct sky_attr *attr, struct sky_err *e);
char *meta_join(const char *dir, const char *name);
int meta_tree_bounds(const char *path, char **lo, char **hi);
int meta_oom(struct sky_err *e);

/* Reads (m->lock held). */
int meta_get_locked(struct meta *m, uint64_t ino, struct meta_entry *out, struct sky_err *e);
int meta_lookup_locked(struct meta *m, uint64_t parent, const char *name,
                       struct meta_entry *out, struct sky_err *e);
/* Like meta_get_locked, but -ENOTDIR unless the entry is a directory. */
int meta_get_dir_locked(struct meta *m, uint64_t ino, struct meta_entry *out,
                        struct sky_err *e);
/* meta_upsert inside a transaction (m->lock held, dir loaded). */
int meta_upsert_locked(struct meta *m, const struct meta_entry *dir, const char *name,
                       const struct sky_attr *a, const char *link, int64_t now, uint64_t *ino,
                       struct sky_err *e);
/* One child already in the cache, as a listing's merge sees it. */
struct meta_known {
    uint64_t ino;
    char *name;
    enum sky_kind kind;
    int64_t fetched_at;
    bool local_only;            /* made here, not uploaded yet: kept */
    char *etag;
    uint64_t size;
    int64_t cloud_modified_ns;  /* the cloud's stamp when its metadata was read */
    int64_t own_ns;             /* the mount's own last change of it (wall clock) */
};
/* Entry k, just updated with listed attributes `a` and fetched_at = now
 * (m->lock held, in the transaction): when `a` carries no metadata but
 * the cloud's stamp (an S3 listing), the entry stays as stale as it was
 * unless the listing vouches for the metadata the cache holds (the same
 * version: meta_listing.c).  Shared by a listing's merge and the crawl. */
int meta_listed_freshness(struct meta *m, const struct meta_known *k, const struct sky_attr *a,
                          int64_t now, struct sky_err *e);
/* meta_rename inside a transaction (m->lock held). */
int meta_rename_locked(struct meta *m, uint64_t ino, uint64_t new_parent, const char *new_name,
                       struct sky_err *e);
/* The entry in the current row of a statement that selects ENTRY_COLS. */
int meta_entry_from_row(sqlite3_stmt *st, struct meta_entry *out, struct sky_err *e);

/* Cloud metadata: content type, storage class and meta_at (now when om
 * holds the complete user metadata, else 0) bound at parameters first ..
 * first + 2; and the user metadata items of `ino` replaced with om's
 * (clear: delete the old ones first; a new entry has none). */
void meta_bind_objmeta(sqlite3_stmt *st, int first, const struct sky_objmeta *om,
                       int64_t now);
int meta_put_user_locked(struct meta *m, uint64_t ino, const struct sky_objmeta *om,
                         bool clear, struct sky_err *e);

/* Write transactions: meta_finish commits when rc is 0, else rolls back,
 * and returns rc or the commit's error. */
int meta_begin(struct meta *m, struct sky_err *e);
int meta_finish(struct meta *m, int rc, struct sky_err *e);

/* Where new attributes of an entry come from (meta_update_attr):
 * - META_FROM_CLOUD: news from the cloud (a stat, a listing, the crawl).
 *   A file held (meta_hold: writes here wait for their upload) keeps
 *   everything the cache has but its fetched time: until its upload the
 *   cache, not the cloud's older version, is the file (its mode, owner,
 *   times and size are what the upload will carry);
 * - META_FROM_UPLOAD: what the mount's own upload or copy left on the
 *   cloud (a refresh's rules for times, but a held file takes it);
 * - META_FROM_MOUNT: a change made through the mount, its times taken as
 *   they are. */
enum meta_from { META_FROM_CLOUD, META_FROM_UPLOAD, META_FROM_MOUNT };
/* Does meta_update_attr leave entry `ino` as it is (news about a held
 * file)?  m->lock held. */
bool meta_news_kept_out(const struct meta *m, uint64_t ino, enum meta_from from);
/* Entry `ino` was asked of the cloud at `when`; `stamp` (0: as it is) is
 * the cloud's settled stamp of its version (m->lock held, in a
 * transaction). */
int meta_set_fetched_locked(struct meta *m, uint64_t ino, int64_t when, int64_t stamp,
                            struct sky_err *e);

/* Writers (m->lock held, inside a transaction).  meta_insert adds child
 * `name` of directory `dir` (only ino, cloud and path of dir are read);
 * meta_update_attr gives entry `ino` new attributes (`from`: see above);
 * meta_remove_tree removes an entry and, for a directory, everything
 * below it. */
int meta_insert(struct meta *m, const struct meta_entry *dir, const char *name,
                const struct sky_attr *a, const char *link, const struct sky_objmeta *om,
                int64_t now, uint64_t *ino, struct sky_err *e);
int meta_update_attr(struct meta *m, uint64_t ino, enum sky_kind old_kind, const char *cloud,
                     const char *path, const struct sky_attr *a, const char *link,
                     const struct sky_objmeta *om, int64_t now, enum meta_from from,
                     struct sky_err *e);
int meta_remove_tree(struct meta *m, uint64_t ino, enum sky_kind kind, const char *cloud,
                     const char *path, struct sky_err *e);
/* The cloud says the entry is gone (a listing without it, a directory it
 * cannot list, a stat that finds nothing): like meta_remove_tree, except
 * for what was made here and is not on the cloud yet (local_only) and
 * the files with writes here not uploaded yet (meta_hold): those entries
 * stay, and so do the folders above them, which become local-only too
 * (made again on the cloud before what goes under them): a pending
 * upload is never dropped from the cache by news from the cloud.
 * *kept (may be NULL): whether the entry itself stayed. */
int meta_forget_tree(struct meta *m, uint64_t ino, enum sky_kind kind, const char *cloud,
                     const char *path, bool *kept, struct sky_err *e);
int meta_set_listed_locked(struct meta *m, uint64_t ino, int64_t when, struct sky_err *e);
/* SQL `sql` (a count) on the database at db_path opened read-only, beside
 * a running daemon: *count, 0 when what it counts is not there (an older
 * cache), or -errno naming `what`. */
int meta_read_count_ro(const char *db_path, const char *sql, const char *what,
                       uint64_t *count, struct sky_err *e);

/* meta_set_local_only with m->lock held (meta_fields.c). */
int meta_set_local_only_locked(struct meta *m, uint64_t ino, bool local_only,
                               struct sky_err *e);

/* crawlstore.c: its schema step (idempotent, any schema version) and its
 * statements, called by meta_open and meta_close. */
int crawlstore_prepare(struct meta *m, const char *db_path, struct sky_err *e);
void crawlstore_close(struct meta *m);

#endif
