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
};

/* Checks and small helpers. */
bool meta_valid_name(const char *name);
bool meta_valid_kind(const struct sky_attr *a);
char *meta_join(const char *dir, const char *name);
int meta_tree_bounds(const char *path, char **lo, char **hi);
int meta_oom(struct sky_err *e);

/* Reads (m->lock held). */
int meta_get_locked(struct meta *m, uint64_t ino, struct meta_entry *out, struct sky_err *e);
int meta_lookup_locked(struct meta *m, uint64_t parent, const char *name,
                       struct meta_entry *out, struct sky_err *e);

/* Write transactions: meta_finish commits when rc is 0, else rolls back,
 * and returns rc or the commit's error. */
int meta_begin(struct meta *m, struct sky_err *e);
int meta_finish(struct meta *m, int rc, struct sky_err *e);

/* Writers (m->lock held, inside a transaction).  meta_insert adds child
 * `name` of directory `dir` (only ino, cloud and path of dir are read);
 * meta_update_attr gives entry `ino` new attributes (`exact`: a change
 * made through the mount, not a refresh); meta_remove_tree removes an
 * entry and, for a directory, everything below it. */
int meta_insert(struct meta *m, const struct meta_entry *dir, const char *name,
                const struct sky_attr *a, const char *link, const struct sky_objmeta *om,
                int64_t now, uint64_t *ino, struct sky_err *e);
int meta_update_attr(struct meta *m, uint64_t ino, enum sky_kind old_kind, const char *cloud,
                     const char *path, const struct sky_attr *a, const char *link,
                     const struct sky_objmeta *om, int64_t now, bool exact, struct sky_err *e);
int meta_remove_tree(struct meta *m, uint64_t ino, enum sky_kind kind, const char *cloud,
                     const char *path, struct sky_err *e);
int meta_set_listed_locked(struct meta *m, uint64_t ino, int64_t when, struct sky_err *e);

/* crawlstore.c: its schema step (idempotent, any schema version) and its
 * statements, called by meta_open and meta_close. */
int crawlstore_prepare(struct meta *m, const char *db_path, struct sky_err *e);
void crawlstore_close(struct meta *m);

#endif
