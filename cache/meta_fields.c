/*
 * meta_fields.c - the metadata cache's updates of single fields and of
 * what hangs off an entry: special files and hard links (rdev, nlink,
 * file_id), attributes, symlink targets, atime, listing times, and the
 * cloud metadata (content type, storage class, user metadata).
 *
 * Part of the metadata cache (meta.h has the contract, meta.c the table
 * and its statements); called through meta.h only.
 */
#include "meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cachedb.h"
#include "meta_int.h"

/* ---- special files and hard links ---------------------------------------- */

int meta_subdir_count(struct meta *m, uint64_t parent, uint64_t *count, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SUBDIR_COUNT, e);
    int rc = st ? 0 : -e->code;
    if (st) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            *count = (uint64_t)sqlite3_column_int64(st, 0);
        else
            rc = cachedb_fail(&m->db, step, "counting subdirectories", e);
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_set_nlinks(struct meta *m, const char *cloud, uint64_t file_id, uint32_t nlink,
                    struct sky_err *e)
{
    if (!cloud || !file_id)
        return 0;
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SET_NLINKS, e);
    int rc = st ? 0 : -e->code;
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)file_id);
        sqlite3_bind_int64(st, 3, nlink);
        rc = cachedb_done(&m->db, st, "counting a file's names", e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_same_file(struct meta *m, const char *cloud, uint64_t file_id, uint64_t except,
                   meta_ino_cb cb, void *arg, struct sky_err *e)
{
    if (!cloud || !file_id)
        return 0;
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SAME_FILE, e);
    int rc = st ? 0 : -e->code;
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)file_id);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)except);
        int step;
        while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
            rc = cb(arg, (uint64_t)sqlite3_column_int64(st, 0));
        if (rc == 0 && step != SQLITE_DONE)
            rc = cachedb_fail(&m->db, step, "finding a file's names", e);
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- single-field updates ---------------------------------------------- */

int meta_set_attr(struct meta *m, uint64_t ino, const struct sky_attr *attr, int64_t now,
                  struct sky_err *e)
{
    if (!meta_valid_kind(attr))
        return sky_fail(e, EINVAL, "metadata cache: inode %llu: unknown kind",
                        (unsigned long long)ino);
    pthread_mutex_lock(&m->lock);
    struct meta_entry ent;
    int rc = meta_begin(m, e);
    if (rc == 0)
        rc = meta_get_locked(m, ino, &ent, e);
    if (rc == 0) {
        if ((ino == META_ROOT_INO || ent.parent == META_ROOT_INO) && attr->kind != SKY_DIR)
            rc = sky_fail(e, EINVAL, "metadata cache: a cloud directory must stay a directory");
        else
            rc = meta_update_attr(m, ino, ent.attr.kind, ent.cloud, ent.path, attr, NULL, NULL,
                                  now, META_FROM_MOUNT, e);
        meta_entry_free(&ent);
    }
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Run one UPDATE ... WHERE ino=?1 and report -ENOENT when no row matched. */
static int meta_update_one(struct meta *m, sqlite3_stmt *st, uint64_t ino, const char *doing,
                           struct sky_err *e)
{
    int rc = cachedb_done(&m->db, st, doing, e);
    if (rc == 0 && sqlite3_changes(m->db.db) == 0)
        rc = sky_fail(e, ENOENT, "metadata cache: no entry for inode %llu",
                      (unsigned long long)ino);
    return rc;
}

int meta_set_link(struct meta *m, uint64_t ino, const char *link, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int rc;
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SET_LINK, e);
    if (!st) {
        rc = -e->code;
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        cachedb_bind_text(st, 2, link);
        rc = meta_update_one(m, st, ino, "recording a symlink target", e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_set_atime(struct meta *m, uint64_t ino, int64_t atime, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int rc;
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SET_ATIME, e);
    if (!st) {
        rc = -e->code;
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        sqlite3_bind_int64(st, 2, atime);
        rc = meta_update_one(m, st, ino, "recording an access", e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_set_listed(struct meta *m, uint64_t ino, int64_t when, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int rc;
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SET_LISTED, e);
    if (!st) {
        rc = -e->code;
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        sqlite3_bind_int64(st, 2, when);
        rc = meta_update_one(m, st, ino, "marking a listing", e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_set_local_only_locked(struct meta *m, uint64_t ino, bool local_only,
                               struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SET_LOCAL_ONLY, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    sqlite3_bind_int(st, 2, local_only ? 1 : 0);
    return meta_update_one(m, st, ino, local_only ? "marking an entry local-only"
                                                  : "marking an entry on the cloud", e);
}

int meta_set_local_only(struct meta *m, uint64_t ino, bool local_only, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int rc = meta_set_local_only_locked(m, ino, local_only, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_next_deferred(struct meta *m, const char *cloud, uint64_t after, uint64_t *ino,
                        struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_NEXT_DEFERRED, e);
    int rc = st ? 0 : -e->code;
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            *ino = (uint64_t)sqlite3_column_int64(st, 0);
        else if (step == SQLITE_DONE)
            rc = -ENOENT;
        else
            rc = cachedb_fail(&m->db, step, "finding folders and symlinks not created yet", e);
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_own_change(struct meta *m, uint64_t ino, bool and_parent, int64_t at,
                    struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int rc;
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SET_OWN, e);
    if (!st) {
        rc = -e->code;
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        sqlite3_bind_int64(st, 2, at);
        sqlite3_bind_int(st, 3, and_parent ? 1 : 0);
        rc = cachedb_done(&m->db, st, "noting the mount's own change", e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_find_path(struct meta *m, const char *cloud, const char *path, uint64_t *ino,
                   struct sky_err *e)
{
    if (!cloud || !path)
        return sky_fail(e, EINVAL, "metadata cache: find_path needs a cloud and a path");
    pthread_mutex_lock(&m->lock);
    int ret = 0;
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_FIND_PATH, e);
    if (!st) {
        ret = -e->code;
    } else {
        cachedb_bind_text(st, 1, cloud);
        cachedb_bind_text(st, 2, path);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *ino = (uint64_t)sqlite3_column_int64(st, 0);
        else if (rc == SQLITE_DONE)
            ret = sky_fail(e, ENOENT, "metadata cache: nothing cached at '%s' in cloud '%s'",
                           path, cloud);
        else
            ret = cachedb_fail(&m->db, rc, "finding a path", e);
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&m->lock);
    return ret;
}

/* ---- cloud metadata ------------------------------------------------------ */

static int meta_read_user_locked(struct meta *m, uint64_t ino, struct sky_objmeta *out,
                                 struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_USER_LIST, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        const void *value = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (key && sky_objmeta_add_user(out, key, value ? value : "", len)) {
            ret = meta_oom(e);
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = cachedb_fail(&m->db, rc, "reading user metadata", e);
    sqlite3_reset(st);
    return ret;
}

static int meta_get_objmeta_locked(struct meta *m, uint64_t ino, struct sky_objmeta *out,
                                   int64_t *meta_at, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_OBJMETA_GET, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    int rc = sqlite3_step(st), ret = 0, oom = 0;
    if (rc == SQLITE_ROW) {
        out->content_type = cachedb_column_strdup(st, 0, &oom);
        out->storage_class = cachedb_column_strdup(st, 1, &oom);
        *meta_at = sqlite3_column_int64(st, 2);
        out->has_user = *meta_at > 0;
        ret = oom ? meta_oom(e) : 0;
    } else if (rc == SQLITE_DONE) {
        ret = sky_fail(e, ENOENT, "metadata cache: no entry for inode %llu",
                       (unsigned long long)ino);
    } else {
        ret = cachedb_fail(&m->db, rc, "reading cloud metadata", e);
    }
    sqlite3_reset(st);
    return ret ? ret : meta_read_user_locked(m, ino, out, e);
}

int meta_get_objmeta(struct meta *m, uint64_t ino, struct sky_objmeta *out, int64_t *meta_at,
                     struct sky_err *e)
{
    memset(out, 0, sizeof *out);
    int64_t at = 0;
    pthread_mutex_lock(&m->lock);
    int rc = meta_get_objmeta_locked(m, ino, out, &at, e);
    pthread_mutex_unlock(&m->lock);
    if (rc)
        sky_objmeta_free(out);
    else if (meta_at)
        *meta_at = at;
    return rc;
}

/* The metadata part of meta_set_objmeta, for an entry known to exist. */
static int meta_store_objmeta_locked(struct meta *m, uint64_t ino, const struct sky_objmeta *om,
                                     int64_t now, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_OBJMETA_SET, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    meta_bind_objmeta(st, 2, om, now);
    int rc = meta_update_one(m, st, ino, "storing cloud metadata", e);
    if (rc == 0 && om->has_user)
        rc = meta_put_user_locked(m, ino, om, true, e);
    return rc;
}

static int meta_set_objmeta_locked(struct meta *m, uint64_t ino, const struct sky_attr *attr,
                                   const struct sky_objmeta *om, int64_t now,
                                   enum meta_from from, struct sky_err *e)
{
    if (!attr)
        return meta_store_objmeta_locked(m, ino, om, now, e);
    struct meta_entry ent;
    int rc = meta_get_locked(m, ino, &ent, e);
    if (rc)
        return rc;
    if ((ino == META_ROOT_INO || ent.parent == META_ROOT_INO) && attr->kind != SKY_DIR)
        rc = sky_fail(e, EINVAL, "metadata cache: a cloud directory must stay a directory");
    else
        rc = meta_update_attr(m, ino, ent.attr.kind, ent.cloud, ent.path, attr, NULL, om, now,
                              from, e);
    meta_entry_free(&ent);
    return rc;
}

static int meta_objmeta_from(struct meta *m, uint64_t ino, const struct sky_attr *attr,
                             const struct sky_objmeta *om, int64_t now, enum meta_from from,
                             struct sky_err *e)
{
    if (attr && !meta_valid_kind(attr))
        return sky_fail(e, EINVAL, "metadata cache: inode %llu: unknown kind",
                        (unsigned long long)ino);
    pthread_mutex_lock(&m->lock);
    int rc = meta_begin(m, e);
    if (rc == 0)
        rc = meta_set_objmeta_locked(m, ino, attr, om, now, from, e);
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_set_objmeta(struct meta *m, uint64_t ino, const struct sky_attr *attr,
                     const struct sky_objmeta *om, int64_t now, struct sky_err *e)
{
    return meta_objmeta_from(m, ino, attr, om, now, META_FROM_UPLOAD, e);
}

int meta_cloud_objmeta(struct meta *m, uint64_t ino, const struct sky_attr *attr,
                       const struct sky_objmeta *om, int64_t now, struct sky_err *e)
{
    return meta_objmeta_from(m, ino, attr, om, now, META_FROM_CLOUD, e);
}

/* meta_rename_ex's onto_etag (m->lock held, in its transaction). */
static int meta_take_version_locked(struct meta *m, uint64_t ino, const char *etag,
                                    struct sky_err *e)
{
    struct meta_entry ent;
    int rc = meta_get_locked(m, ino, &ent, e);
    if (rc)
        return rc;
    struct sky_objmeta om = { 0 };
    int64_t meta_at = 0;
    if (meta_get_objmeta_locked(m, ino, &om, &meta_at, NULL) != 0) {
        sky_objmeta_free(&om);
        memset(&om, 0, sizeof om);
    }
    om.has_user = true;
    struct sky_attr a = ent.attr;
    snprintf(a.etag, sizeof a.etag, "%s", etag);
    rc = meta_set_objmeta_locked(m, ino, &a, &om, ent.fetched_at, META_FROM_UPLOAD, e);
    sky_objmeta_free(&om);
    meta_entry_free(&ent);
    return rc ? rc : meta_set_local_only_locked(m, ino, false, e);
}

/* One of struct meta_touches (m->lock held, in the change's transaction). */
static int meta_touch_locked(struct meta *m, const struct meta_touch *t, meta_fix_fn fix,
                             void *arg, struct sky_err *e)
{
    struct meta_entry ent;
    int rc = meta_get_locked(m, t->ino, &ent, NULL);
    if (rc)
        return rc == -ENOENT ? 0 : sky_fail(e, -rc, "metadata cache: reading inode %llu",
                                             (unsigned long long)t->ino);
    struct sky_attr a = ent.attr;
    if (fix)
        fix(arg, &ent, &a);
    if (t->which & SKY_HAS_MTIME)
        a.mtime_ns = t->now;
    if (t->which & SKY_HAS_ATIME)
        a.atime_ns = t->now;
    if (t->which & SKY_HAS_CTIME)
        a.ctime_ns = t->now;
    a.has |= t->which & (SKY_HAS_MTIME | SKY_HAS_ATIME | SKY_HAS_CTIME);
    rc = meta_update_attr(m, t->ino, ent.attr.kind, ent.cloud, ent.path, &a, NULL, NULL,
                          ent.fetched_at, META_FROM_MOUNT, e);
    meta_entry_free(&ent);
    return rc;
}

/* Every touch of `times` (may be NULL; m->lock held, in the transaction). */
static int meta_touches_locked(struct meta *m, const struct meta_touches *times,
                               struct sky_err *e)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && times && i < times->n; i++)
        rc = meta_touch_locked(m, &times->touch[i], times->fix, times->fix_arg, e);
    return rc;
}

int meta_rename_ex(struct meta *m, uint64_t ino, uint64_t new_parent, const char *new_name,
                   const struct meta_rename_with *with, struct sky_err *e)
{
    if (!meta_valid_name(new_name))
        return sky_fail(e, EINVAL, "metadata cache: '%s' is not a valid name",
                        new_name ? new_name : "(null)");
    if (with && with->onto_etag && !*with->onto_etag)
        return sky_fail(e, EINVAL, "metadata cache: renaming onto '%s' needs its version",
                        new_name);
    pthread_mutex_lock(&m->lock);
    int rc = meta_begin(m, e);
    if (rc == 0)
        rc = meta_rename_locked(m, ino, new_parent, new_name, e);
    if (rc == 0 && with && with->onto_etag)
        rc = meta_take_version_locked(m, ino, with->onto_etag, e);
    if (rc == 0 && with)
        rc = meta_touches_locked(m, with->times, e);
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_upsert_local(struct meta *m, uint64_t parent, const char *name,
                      const struct sky_attr *attr, const struct sky_objmeta *om, int64_t now,
                      const struct meta_touches *times, uint64_t *ino, struct sky_err *e)
{
    int bad = meta_check_new(name, attr, e);
    if (bad)
        return bad;
    pthread_mutex_lock(&m->lock);
    struct meta_entry dir;
    uint64_t got = 0;
    int rc = meta_begin(m, e);
    if (rc == 0)
        rc = meta_get_dir_locked(m, parent, &dir, e);
    if (rc == 0) {
        rc = meta_upsert_locked(m, &dir, name, attr, NULL, now, &got, e);
        meta_entry_free(&dir);
    }
    if (rc == 0 && om)
        rc = meta_set_objmeta_locked(m, got, attr, om, now, META_FROM_UPLOAD, e);
    if (rc == 0)
        rc = meta_set_local_only_locked(m, got, true, e);
    if (rc == 0)
        rc = meta_touches_locked(m, times, e);
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    if (rc == 0 && ino)
        *ino = got;
    return rc;
}

static int meta_set_user_item_locked(struct meta *m, uint64_t ino, const char *key,
                                     const void *value, size_t len, struct sky_err *e)
{
    struct meta_entry ent;
    int rc = meta_get_locked(m, ino, &ent, e);     /* no rows for unknown inodes */
    if (rc)
        return rc;
    meta_entry_free(&ent);
    sqlite3_stmt *st = cachedb_stmt(&m->db, value ? Q_USER_PUT : Q_USER_DEL, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    cachedb_bind_text(st, 2, key);
    if (value)
        sqlite3_bind_text(st, 3, value, (int)len, SQLITE_STATIC);
    return cachedb_done(&m->db, st, "storing user metadata", e);
}

int meta_set_user_item(struct meta *m, uint64_t ino, const char *key, const void *value,
                       size_t len, struct sky_err *e)
{
    if (!key || !*key)
        return sky_fail(e, EINVAL, "metadata cache: user metadata needs a key");
    pthread_mutex_lock(&m->lock);
    int rc = meta_begin(m, e);
    if (rc == 0)
        rc = meta_set_user_item_locked(m, ino, key, value, len, e);
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_missing_objmeta(struct meta *m, const char *cloud, const char *path, meta_path_cb cb,
                         void *arg, struct sky_err *e)
{
    if (!cloud || !path)
        return sky_fail(e, EINVAL, "metadata cache: missing_objmeta needs a cloud and a path");
    char *lo = NULL, *hi = NULL;
    if (path[0] && meta_tree_bounds(path, &lo, &hi))
        return meta_oom(e);
    pthread_mutex_lock(&m->lock);
    int rc, ret = 0;
    sqlite3_stmt *st = cachedb_stmt(&m->db, path[0] ? Q_MISSING_UNDER : Q_MISSING_ALL, e);
    if (!st) {
        ret = -e->code;
        goto out;
    }
    cachedb_bind_text(st, 1, cloud);
    if (path[0]) {
        cachedb_bind_text(st, 2, path);
        cachedb_bind_text(st, 3, lo);
        cachedb_bind_text(st, 4, hi);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(st, 1);
        ret = cb(arg, (uint64_t)sqlite3_column_int64(st, 0), p ? p : "");
        if (ret)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = cachedb_fail(&m->db, rc, "finding files without metadata", e);
    sqlite3_reset(st);
out:
    pthread_mutex_unlock(&m->lock);
    free(lo);
    free(hi);
    return ret;
}
