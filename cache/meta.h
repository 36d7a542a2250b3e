/*
 * meta.h - the persistent metadata cache (SQLite, WAL).
 *
 * One database per mount.  It holds every file, directory and symlink skyfs
 * has seen, keyed by (parent inode, name), each with a stable inode number
 * that survives remounts, its attributes, the time they were fetched, and
 * for directories the time they were last listed completely.  fs/ answers
 * lookup, getattr and readdir from here and asks a driver only when an
 * entry is missing or older than the cloud's TTL.  The same table is the
 * search index across clouds.
 *
 * Inode 1 is the mount root.  Each cloud's directory is a child of the root
 * whose name is the cloud's name (meta_cloud_root).  Every entry records
 * the cloud it belongs to and its path inside that cloud ("" for the cloud
 * root, "a/b/c.txt" below it), so fs/ can hand drivers a path without
 * walking parents.
 *
 * Thread-safe: one connection behind a mutex; every call is short (no
 * network).  Times are wall-clock nanoseconds since the epoch.
 *
 * Inode numbers only grow: a number is never given to another entry, even
 * after its entry is removed and the database reopened.  Names are single
 * components: empty, ".", ".." and names with '/' are -EINVAL.  Errors:
 * -ENOENT for an unknown inode, -ENOTDIR when a parent is not a directory.
 *
 * Entries keep all three times (driver.h's sky_attr: mtime, atime,
 * ctime, each real when its `has` bit is set).
 *
 * Each entry also keeps the cloud metadata skyfs has learnt of it
 * (driver.h's sky_objmeta: content type, storage class, user metadata),
 * from listings that carry it, from get_meta and from our own xattr
 * changes, and the time its user metadata was last known complete
 * (meta_at).  When an entry's etag changes, what was known of the old
 * version is forgotten (unless the same update brings the new version's).
 *
 * Used by fs/ and tools/ (search, status).  Knows nothing of clouds'
 * kinds.
 */
#ifndef SKY_META_H
#define SKY_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../backends/driver.h"
#include "../lib/err.h"

#define META_ROOT_INO 1

struct meta;

struct meta_entry {
    uint64_t ino;
    uint64_t parent;        /* 0 for the root */
    char *cloud;            /* cloud name; NULL for the root */
    char *name;             /* component; "" for the root */
    char *path;             /* path inside the cloud; "" for a cloud root */
    struct sky_attr attr;
    char *link;             /* symlink target if known, else NULL */
    int64_t fetched_at;     /* when attr was last fetched from the cloud */
    int64_t listed_at;      /* directories: last complete listing, 0 = never */
    /* The inode number stat shows: `ino`, or for a file with several names
     * in the cache (same attr.file_id, nlink > 1) the smallest of theirs,
     * so that every name of a hard-linked file shows one inode. */
    uint64_t stat_ino;
    /* A file made here whose create waits for its upload (write_back =
     * async): not on the cloud yet.  Listings and crawls keep it, and it
     * is always fresh (meta_set_local_only). */
    bool local_only;
};

/* Open or create the database at `db_path` (its folder must exist).  The
 * daemon, owner of the cache folder, passes `repair`: the file is checked
 * first, and a damaged one is replaced (see cachedamage.h; repair says
 * what was done, for the log); others pass NULL. */
struct cache_repair;
int meta_open(const char *db_path, struct cache_repair *repair, struct meta **out,
              struct sky_err *e);
void meta_close(struct meta *m);

/* Free the strings of an entry filled by meta_get/meta_lookup/children. */
void meta_entry_free(struct meta_entry *ent);

/* The inode of cloud `cloud`'s root directory, created on first use as a
 * directory child of the root named after the cloud.  Stable forever. */
int meta_cloud_root(struct meta *m, const char *cloud, uint64_t *ino, struct sky_err *e);

/* Entry by inode; -ENOENT if unknown.  The root has cloud NULL. */
int meta_get(struct meta *m, uint64_t ino, struct meta_entry *out, struct sky_err *e);

/* Child `name` of directory `parent`; -ENOENT if not in the cache (which
 * means "absent" only when the parent's listing is fresh). */
int meta_lookup(struct meta *m, uint64_t parent, const char *name,
                struct meta_entry *out, struct sky_err *e);

/* Insert or update child `name` of `parent` with attr (and link, may be
 * NULL), fetched at `now`.  An existing entry keeps its inode; if its kind
 * changes from directory to something else its descendants are dropped.
 * *ino (may be NULL) receives the inode.  A symlink target not given (NULL)
 * is kept while the entry stays a symlink with the same etag, and cleared
 * otherwise.  Only directories can be children of the root (-EINVAL).
 * This is news from the cloud: a file held (meta_hold, writes here wait
 * for their upload) keeps what the cache has, its fetched time alone
 * moves (the cloud's older version must not undo a chmod, a utime or a
 * rename's mode before the upload carries them); so do listings
 * (meta_replace_listing) and the crawl. */
int meta_upsert(struct meta *m, uint64_t parent, const char *name,
                const struct sky_attr *attr, const char *link, int64_t now,
                uint64_t *ino, struct sky_err *e);

/* Replace what is known of `parent`'s children with a complete listing,
 * in one transaction: entries are upserted (inodes kept), children not in
 * the listing are removed with their descendants, and listed_at = now.
 * The cloud metadata a listing entry carries (ents[i].meta) is stored as
 * meta_set_objmeta does.
 * Entries whose name is not a valid component are skipped; of two entries
 * with the same name the later one wins.  Fast for 100,000 entries (one
 * merge of two sorted lists, well under a second).  `now` must be the time
 * the listing was requested: a child whose fetched_at is later (the mount
 * changed it meanwhile) is left as it is.  A listed entry gets fetched_at
 * = now, except one the listing carries no metadata for (`has` 0) but the
 * cloud's stamp (modified_ns): that one only when it is still the version
 * whose metadata the cache read (the same etag, size and stamp as the
 * stat or the mount's own change that brought it; see meta_listing.c);
 * else it keeps its fetched_at, so that it stays as stale as it was. */
int meta_replace_listing(struct meta *m, uint64_t parent, const struct sky_dirent *ents,
                         size_t n, int64_t now, struct sky_err *e);

/* Called, with the cache's lock held, for every entry a listing found
 * gone (removed on the cloud): fs/ tells the kernel to forget the name.
 * `fn` must not block or call meta_*.  Set once, before other threads
 * use the cache; NULL turns it off. */
typedef void (*meta_gone_fn)(void *arg, uint64_t parent, const char *name);
void meta_on_gone(struct meta *m, meta_gone_fn fn, void *arg);

/* Calls cb for each child of `parent`, sorted by name (byte order).  The
 * entry passed is valid only during the call.  A non-zero return from cb
 * stops the walk and is returned.  The walk reads pages of children and
 * does not hold the cache's lock while cb runs, so cb may call meta_*;
 * children changed during the walk may or may not be seen. */
typedef int (*meta_child_cb)(void *arg, const struct meta_entry *ent);
int meta_children(struct meta *m, uint64_t parent, meta_child_cb cb, void *arg,
                  struct sky_err *e);
/* The same for the children named after `after` (byte order), read from
 * SQLite `page` at a time (0: the usual page): for a walk that stops soon
 * after a given name, in a folder of any size. */
int meta_children_after(struct meta *m, uint64_t parent, const char *after, size_t page,
                        meta_child_cb cb, void *arg, struct sky_err *e);

/* Number of children of `parent` in the cache. */
int meta_child_count(struct meta *m, uint64_t parent, uint64_t *count, struct sky_err *e);
/* The same, counting no further than `upto` (cheap in a large folder). */
int meta_child_count_upto(struct meta *m, uint64_t parent, uint64_t upto, uint64_t *count,
                          struct sky_err *e);

/* Remove an entry and all its descendants.  The root is -EBUSY; removing a
 * cloud's directory empties that cloud (meta_cloud_root recreates it). */
int meta_remove(struct meta *m, uint64_t ino, struct sky_err *e);

/* The cloud says entry `ino` is gone (a stat or a listing of it found
 * nothing): remove it and what is below it, except the entries made here
 * and not uploaded yet (local_only) and the folders above them, which
 * become local-only (made again on the cloud before what goes under
 * them).  A pending upload is never dropped by news from the cloud. */
int meta_forget_gone(struct meta *m, uint64_t ino, struct sky_err *e);

/* Hold entry `ino`: a file with writes here not uploaded yet (fs/ holds
 * it from its first write until its open file is gone, after the upload,
 * or until the journal's retry of an upload that failed).  News that it
 * is gone (meta_forget_gone, listings, the crawl's sweep) leaves it and
 * the folders above it, as it leaves a file not uploaded yet
 * (local_only): its upload decides what becomes of it (README "Many
 * machines, one cloud"); news of its attributes (meta_upsert) leaves them
 * as the cache has them.  Kept in memory only: after a crash the
 * journal's replay holds again what it uploads.  0 or -ENOMEM. */
int meta_hold(struct meta *m, uint64_t ino);
void meta_unhold(struct meta *m, uint64_t ino);

/* Renames of directories that take many steps on the cloud (object
 * stores copy every object, then delete it: driver.h rename_finish):
 * recorded before they start (a durable commit) and dropped once done,
 * so that one cut short by a crash is finished at the next mount.
 * meta_move_begin replaces a record of the same source. */
struct meta_move {
    char *cloud, *src, *dst;
};
int meta_move_begin(struct meta *m, const char *cloud, const char *src, const char *dst,
                    struct sky_err *e);
int meta_move_end(struct meta *m, const char *cloud, const char *src, struct sky_err *e);
/* The recorded ones, in *out[0..*n) (free with meta_moves_free): 0 or -errno. */
int meta_moves(struct meta *m, struct meta_move **out, size_t *n, struct sky_err *e);
void meta_moves_free(struct meta_move *v, size_t n);
/* Free one record's strings (one taken out of such an array). */
void meta_move_clear(struct meta_move *m);
/* How many are recorded in the database at db_path, read-only, beside a
 * running daemon (skyfs status); an older cache without the record: 0. */
int meta_read_move_count(const char *db_path, uint64_t *count, struct sky_err *e);

/* The block cache lost its pending uploads (a damaged database that could
 * not be read, cachedamage.h): the files made here and not uploaded are
 * gone, and what the cache says of the rest may describe writes that
 * never reach the cloud: remove those files, and make every other entry
 * stale (asked again of the cloud).  Folders and symlinks not created on
 * the cloud yet stay: they live here, not in the block cache. */
int meta_uploads_lost(struct meta *m, struct sky_err *e);

/* Move entry `ino` to (new_parent, new_name), replacing (and removing) any
 * entry already there; descendants' paths follow.  Inode is kept.
 * Moving to where it already is does nothing.  Errors: -EBUSY for the
 * root or a cloud's directory, -EXDEV into another cloud (or the root),
 * -EINVAL into itself or below itself, -ENOTDIR when new_parent is not a
 * directory, -ENOTEMPTY when the entry to replace contains `ino`. */
int meta_rename(struct meta *m, uint64_t ino, uint64_t new_parent, const char *new_name,
                struct sky_err *e);

/* Times a change moves, in the change's own transaction (a create or a
 * rename and its folders' times: one commit, not several): for each
 * touch[0..n), the entry's times named by `which` (SKY_HAS_MTIME|ATIME|
 * CTIME) are set to `now` after `fix` (the caller's, given the entry as
 * stored: it fills in the times the entry does not have; it must not
 * call into the cache) set the others.  An entry not there is skipped;
 * the entries stay as fresh as they were (no news from the cloud). */
struct meta_touch {
    uint64_t ino;
    unsigned which;
    int64_t now;
};
typedef void (*meta_fix_fn)(void *arg, const struct meta_entry *ent, struct sky_attr *a);
struct meta_touches {
    const struct meta_touch *touch;
    size_t n;
    meta_fix_fn fix;
    void *fix_arg;
};

/* meta_rename with what follows from it, in the same transaction:
 * - onto_etag (NULL: none): the entry was made here and not uploaded yet
 *   (local_only) and replaces a file the cloud holds; it stops being
 *   local-only and shows onto_etag, the replaced file's version, as its
 *   own (its pending upload replaces that version), with its own user
 *   metadata as complete (nothing is to be read from the replaced object);
 * - times (NULL: none): the entry's ctime, both folders' mtime and ctime.
 * Errors as meta_rename's; on any, nothing changed. */
struct meta_rename_with {
    const char *onto_etag;
    const struct meta_touches *times;
};
int meta_rename_ex(struct meta *m, uint64_t ino, uint64_t new_parent, const char *new_name,
                   const struct meta_rename_with *with, struct sky_err *e);

/* Update attributes / symlink target of one entry, fetched_at = now.
 * set_attr follows meta_upsert's rules (descendants dropped when a
 * directory stops being one, symlink target kept while the etag stays),
 * but its times are taken as they are: it records a change made through
 * the mount.  The other updates (meta_upsert, meta_replace_listing,
 * meta_set_objmeta) are refreshes from the cloud, which never move an
 * entry's cached atime or ctime, or a directory's mtime, back while it
 * holds the same content (same kind; a directory, the same etag, or the
 * same size and mtime: a copy or a metadata change may give an object a
 * new etag): the cache may know of later accesses and changes than the
 * cloud stores.  Nor do they move those times forward to a time no later
 * than the mount's own last change of the entry (plus a few ms): that is
 * the mark our own change left on the cloud.  meta_set_attr notes the
 * change as the mount's own, made now (wall clock). */
int meta_set_attr(struct meta *m, uint64_t ino, const struct sky_attr *attr, int64_t now,
                  struct sky_err *e);
int meta_set_link(struct meta *m, uint64_t ino, const char *link, struct sky_err *e);

/* The mount itself changed entry `ino` on the cloud, done at `at` (wall
 * clock, after the driver's call returned), and when `and_parent`, its
 * directory too (an upload through a temporary name in it): a refresh
 * takes none of their times up to `at` (see meta_set_attr).  For changes
 * not recorded through meta_set_attr: a new entry, an upload.  An unknown
 * inode is no error (nothing to mark). */
int meta_own_change(struct meta *m, uint64_t ino, bool and_parent, int64_t at,
                    struct sky_err *e);

/* An access at `atime` (the entry's atime, nothing else: one statement,
 * cheap enough for every first read of a file). */
int meta_set_atime(struct meta *m, uint64_t ino, int64_t atime, struct sky_err *e);

/* Mark file or folder `ino` as made here and not on the cloud yet (true),
 * or on the cloud now (false).  A listing that lacks a local-only entry,
 * or lists another object under its name, keeps it as it is; so does a
 * crawl. */
/* Make every change committed so far durable (one fdatasync of the
 * database's write-ahead log, taken outside the cache's lock; nothing when
 * nothing changed since the last).  Changes are committed with
 * synchronous=NORMAL: a power cut may take back the ones not synced yet.
 * For fs/commit.c: an async close (the attributes set on its descriptor),
 * fsyncdir, the commit interval. */
int meta_sync(struct meta *m, struct sky_err *e);

int meta_set_local_only(struct meta *m, uint64_t ino, bool local_only, struct sky_err *e);

/* meta_upsert of a new entry made here and not on the cloud yet, with its
 * cloud metadata om (when not NULL: as meta_set_objmeta with attr),
 * marked local-only, and the times a create moves (its folder's mtime
 * and ctime; times may be NULL), in one transaction (a deferred create:
 * one commit, not four). */
int meta_upsert_local(struct meta *m, uint64_t parent, const char *name,
                      const struct sky_attr *attr, const struct sky_objmeta *om, int64_t now,
                      const struct meta_touches *times, uint64_t *ino, struct sky_err *e);

/* The smallest inode above `after` of a local-only folder or symlink of
 * `cloud` (a deferred mkdir or symlink): 0 with *ino set, -ENOENT when
 * there is none. */
int meta_next_deferred(struct meta *m, const char *cloud, uint64_t after, uint64_t *ino,
                       struct sky_err *e);

/* How many folders and symlinks, of every cloud, are made here and not
 * created on their cloud yet (deferred mkdir and symlink), read from the
 * database file at db_path opened read-only, beside a daemon that may be
 * using it (skyfs status).  A database older than deferred folders holds
 * none: 0. */
int meta_read_deferred_count(const char *db_path, uint64_t *count, struct sky_err *e);

/* Mark a directory's listing as stale (listed_at = 0) or fresh. */
int meta_set_listed(struct meta *m, uint64_t ino, int64_t when, struct sky_err *e);

/* Inode of the entry at `path` in cloud `cloud` ("" = the cloud's
 * directory), or -ENOENT. */
int meta_find_path(struct meta *m, const char *cloud, const char *path, uint64_t *ino,
                   struct sky_err *e);

/* ---- special files and hard links -------------------------------------- */

/* Number of children of `parent` that are directories, in the cache. */
int meta_subdir_count(struct meta *m, uint64_t parent, uint64_t *count, struct sky_err *e);

/* Every cached name of file `file_id` in `cloud` now has `nlink` names
 * (after a link or an unlink of one of them). */
int meta_set_nlinks(struct meta *m, const char *cloud, uint64_t file_id, uint32_t nlink,
                    struct sky_err *e);

/* Calls cb(arg, ino) for each cached name of file `file_id` in `cloud`
 * other than `except`; cb runs with the cache locked (must not call
 * meta_*). */
typedef int (*meta_ino_cb)(void *arg, uint64_t ino);
int meta_same_file(struct meta *m, const char *cloud, uint64_t file_id, uint64_t except,
                   meta_ino_cb cb, void *arg, struct sky_err *e);

/* ---- cloud metadata ---------------------------------------------------- */

/* What the cache knows of entry `ino`'s cloud metadata, into *out (free it
 * with sky_objmeta_free): content type and storage class (NULL when not
 * known), and the user items sorted by key.  out->has_user is true when
 * the user metadata was known complete at *meta_at (may be NULL; 0 =
 * never, or the object changed since); the items of an incomplete set are
 * still the ones our own setxattr stored.  -ENOENT for an unknown inode. */
int meta_get_objmeta(struct meta *m, uint64_t ino, struct sky_objmeta *out, int64_t *meta_at,
                     struct sky_err *e);

/* Record what the mount's own upload or copy left on the cloud at `now`:
 * attr (may be NULL) with a refresh's rules for the times (meta_set_attr),
 * then om's content type and storage class where not NULL; when
 * om->has_user, the user items are replaced by om's and meta_at = now.
 * One transaction. */
int meta_set_objmeta(struct meta *m, uint64_t ino, const struct sky_attr *attr,
                     const struct sky_objmeta *om, int64_t now, struct sky_err *e);
/* The same for what get_meta said of an object (news from the cloud): a
 * file held (meta_hold) keeps what the cache has, as with meta_upsert. */
int meta_cloud_objmeta(struct meta *m, uint64_t ino, const struct sky_attr *attr,
                       const struct sky_objmeta *om, int64_t now, struct sky_err *e);

/* One user item changed through the mount: set `key` to `len` bytes of
 * value, or remove it when value is NULL.  meta_at is left alone. */
int meta_set_user_item(struct meta *m, uint64_t ino, const char *key, const void *value,
                       size_t len, struct sky_err *e);

/* Calls cb(arg, ino, path) for every file of `cloud` at or under `path`
 * ("" = the whole cloud) whose user metadata is not known (meta_at = 0),
 * in path order; a non-zero return stops and is returned.  cb runs with
 * the cache locked: it must not call meta_* (collect, then act). */
typedef int (*meta_path_cb)(void *arg, uint64_t ino, const char *path);
int meta_missing_objmeta(struct meta *m, const char *cloud, const char *path, meta_path_cb cb,
                         void *arg, struct sky_err *e);

#endif
