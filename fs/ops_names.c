/*
 * ops_names.c - the FUSE operations on names: unlink, rmdir, rename and
 * link, with what they share (finding a child, hard links' other names,
 * rename's checks for a target another machine changed, and keeping a
 * file with a pending upload in step).  Part of fs/ops.c's operation
 * table (ops.h).
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "skyfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "conflicts.h"
#include "renamelog.h"
#include "kforget.h"
#include "localdirs.h"
#include "moved.h"
#include "ops.h"
#include "refresh.h"
#include "stream.h"
#include "virtual.h"

/* Find child `name` of `parent`, asking the driver if the cache does not
 * know it. */
static int find_child(struct skyfs *fs, struct cloud *c, const struct meta_entry *dir,
                      const char *name, struct meta_entry *out, struct sky_err *e)
{
    int rc = meta_lookup(fs->meta, dir->ino, name, out, e);
    if (rc != -ENOENT || skyfs_fresh(dir->listed_at, c->cfg->ttl_ns))
        return rc;
    char *path = ops_child_path(dir->path, name);
    if (!path)
        return sky_fail(e, ENOMEM, "out of memory");
    rc = refresh_entry(fs, c, dir->ino, name, path, refresh_hint_in(dir), out, e);
    free(path);
    return rc;
}

/* ---- hard links --------------------------------------------------------- */

static int forget_attrs_of(void *arg, uint64_t ino)
{
    struct skyfs *fs = arg;
    if (fs->session)    /* only the attributes: no page cache, no locks taken */
        fuse_lowlevel_notify_inval_inode(fs->session, ino, -1, 0);
    return 0;
}

struct ino_list {
    uint64_t *inos;
    size_t n, cap;
};

static int collect_ino(void *arg, uint64_t ino)
{
    struct ino_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        uint64_t *n = realloc(l->inos, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        l->inos = n;
        l->cap = cap;
    }
    l->inos[l->n++] = ino;
    return 0;
}

void skyfs_same_file_changed(struct skyfs *fs, const char *cloud, uint64_t ino,
                             const struct sky_attr *a)
{
    if (!cloud || !a->file_id || a->nlink < 2)
        return;
    struct ino_list l = { 0 };
    meta_same_file(fs->meta, cloud, a->file_id, ino, collect_ino, &l, NULL);
    for (size_t i = 0; i < l.n; i++) {
        meta_set_attr(fs->meta, l.inos[i], a, skyfs_now(), NULL);
        if (fs->session)    /* attributes and pages: the content changed */
            fuse_lowlevel_notify_inval_inode(fs->session, l.inos[i], 0, 0);
    }
    free(l.inos);
}

/* A hard-linked file (attr->file_id) now has `nlink` names: the cache's
 * other names of it (all but `except`) say so, and the kernel asks again
 * for their attributes instead of keeping the old count. */
static void other_names_count(struct skyfs *fs, struct cloud *c, const struct sky_attr *a,
                              uint64_t except, uint32_t nlink)
{
    meta_set_nlinks(fs->meta, c->cfg->name, a->file_id, nlink, NULL);
    meta_same_file(fs->meta, c->cfg->name, a->file_id, except, forget_attrs_of, fs, NULL);
}

/* Delete the file at path only if it still holds the version this
 * machine last saw (issue 17): -ESTALE, deleting nothing, when another
 * machine changed it meanwhile (the driver's conditional delete, else a
 * stat compare right before). */
static int remove_seen(struct skyfs *fs, struct cloud *c, uint64_t ino, const char *path,
                       const struct sky_attr *seen_attr, struct sky_err *e)
{
    if (seen_attr->kind != SKY_FILE || !seen_attr->etag[0])
        return c->drv->remove(c->ctx, path, e);
    char seen[SKY_ETAG_MAX];
    snprintf(seen, sizeof seen, "%s", seen_attr->etag);
    moved_verify(fs, c, ino, path, seen, sizeof seen);  /* a rename's refresh failed */
    if (c->drv->remove_if) {
        int rc = c->drv->remove_if(c->ctx, path, seen, e);
        cloud_note_guarantee(c);
        return rc;
    }
    struct sky_attr now;
    int rc = c->drv->stat(c->ctx, path, &now, e);
    if (rc == 0 && strcmp(now.etag, seen) != 0)
        return sky_fail(e, ESTALE, "cloud '%s': delete \"%s\": changed since this machine "
                        "last saw it", c->cfg->name, path);
    return rc ? rc : c->drv->remove(c->ctx, path, e);
}

/* A delete met another machine's change (e says which): the file stays,
 * showing that version, and the conflict is logged and remembered. */
static void kept_changed(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                         const char *path, const struct sky_err *e)
{
    LOG_WARN("conflict: not deleting \"%s\" on cloud '%s': %s; the other machine's version "
             "stays", path, c->cfg->name, e->msg);
    conflicts_add(c->conflicts, "delete", path, NULL);
    struct sky_attr theirs;
    struct sky_err ignored = { 0 };
    int rc = c->drv->stat(c->ctx, path, &theirs, &ignored);
    cloud_note_result(c, rc, &ignored);
    if (rc == 0)
        meta_set_attr(fs->meta, ent->ino, &theirs, skyfs_now(), &ignored);
}

/* rmdir: on the cloud, or for a folder not created there yet
 * (localdirs.h), in the cache alone, where all its entries are: nothing
 * is sent.  (The lock keeps its creation out until it is gone.) */
static int remove_dir(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                      const char *path, struct sky_err *e)
{
    if (!ent->local_only)
        return c->drv->rmdir(c->ctx, path, e);
    localdirs_lock(fs);
    uint64_t n = 0;
    int rc;
    if (!ops_still_local(fs, ent->ino))
        rc = c->drv->rmdir(c->ctx, path, e);            /* created meanwhile */
    else if ((rc = meta_child_count(fs->meta, ent->ino, &n, e)) == 0 && n > 0)
        rc = -ENOTEMPTY;
    else if (rc == 0)
        rc = meta_remove(fs->meta, ent->ino, e);
    localdirs_unlock(fs);
    return rc;
}

/* unlink of a symlink not created on the cloud yet (localdirs.h): in the
 * cache alone, nothing sent; created meanwhile, deleted on the cloud.
 * (The lock keeps its creation out until it is gone.) */
static int remove_local_link(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                             const char *path, struct sky_err *e)
{
    localdirs_lock(fs);
    int rc = ops_still_local(fs, ent->ino) ? meta_remove(fs->meta, ent->ino, e)
                                           : c->drv->remove(c->ctx, path, e);
    localdirs_unlock(fs);
    return rc;
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool is_dir)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct meta_entry dir, ent;
    struct cloud *c;
    char *path;
    int rc = ops_prepare_new(fs, parent, name, &dir, &c, &path, &e);
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    rc = find_child(fs, c, &dir, name, &ent, &e);
    if (!rc) {
        /* a file: not in the middle of its background upload, which
         * would put it back */
        struct ofile *held = is_dir || ent.attr.kind == SKY_DIR
                             ? NULL : files_hold_upload(fs, ent.ino);
        /* an upload that ran meanwhile made a new version of our own: the
         * delete is conditional on that one, not the one read before */
        struct meta_entry now;
        if (held && meta_get(fs->meta, ent.ino, &now, NULL) == 0) {
            meta_entry_free(&ent);
            ent = now;
        }
        if (is_dir && ent.attr.kind != SKY_DIR)
            rc = sky_fail(&e, ENOTDIR, "not a directory");
        else if (!is_dir && ent.attr.kind == SKY_DIR)
            rc = sky_fail(&e, EISDIR, "is a directory");
        else if (is_dir)
            rc = remove_dir(fs, c, &ent, path, &e);
        else if (ent.attr.kind == SKY_LINK && ent.local_only)
            rc = remove_local_link(fs, c, &ent, path, &e);
        else if ((rc = files_keep_open(fs, &ent, &e)) == 0 && !ent.local_only)
            rc = remove_seen(fs, c, ent.ino, path, &ent.attr, &e);  /* open: its data stayed */
        /* (a file not uploaded yet is not on the cloud: nothing to send) */
        if (rc != -ENOTDIR && rc != -EISDIR)
            cloud_note_result(c, rc, &e);
        if (rc == -ESTALE) {
            kept_changed(fs, c, &ent, path, &e);
            rc = 0;
            meta_entry_free(&ent);
            fuse_reply_err(req, 0);
            free(path);
            meta_entry_free(&dir);
            return;
        }
        if (rc == 0 || rc == -ENOENT) {
            if (!is_dir) {
                files_mark_unlinked(fs, ent.ino);
                blocks_forget(fs->blocks, c->cfg->name, path, NULL);
            }
            meta_remove(fs->meta, ent.ino, NULL);
            conflicts_gone(c->conflicts, path);     /* a conflict copy: resolved */
            if (rc == 0)
                times_dir_changed(fs, parent);
            if (rc == 0 && !is_dir && ent.attr.file_id && ent.attr.nlink > 1)
                other_names_count(fs, c, &ent.attr, ent.ino, ent.attr.nlink - 1);
        }
        files_release_upload(fs, held);
        meta_entry_free(&ent);
    }
    fuse_reply_err(req, -rc);
    if (rc && rc != -ENOENT && rc != -ENOTEMPTY)
        LOG_WARN("%s", e.msg);
    free(path);
    meta_entry_free(&dir);
}

void sky_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_entry(req, parent, name, false);
}

void sky_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_entry(req, parent, name, true);
}

static int check_rename_target(struct skyfs *fs, struct cloud *c, const struct meta_entry *src,
                               const struct meta_entry *dst_dir, const char *newname,
                               unsigned int flags, uint64_t *replaced, struct sky_err *e)
{
    struct meta_entry dst;
    int rc = find_child(fs, c, dst_dir, newname, &dst, e);
    *replaced = 0;
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    if (flags & RENAME_NOREPLACE)
        rc = sky_fail(e, EEXIST, "target exists");
    else if (src->attr.kind == SKY_DIR && dst.attr.kind != SKY_DIR)
        rc = sky_fail(e, ENOTDIR, "cannot replace a file with a directory");
    else if (src->attr.kind != SKY_DIR && dst.attr.kind == SKY_DIR)
        rc = sky_fail(e, EISDIR, "cannot replace a directory with a file");
    /* two names of one file (hard links): rename does nothing, as rename(2) */
    *replaced = src->attr.file_id && src->attr.file_id == dst.attr.file_id ? src->ino : dst.ino;
    meta_entry_free(&dst);
    return rc;
}

/* The file `ino` a rename is about to replace: if open, keep its data. */
static int keep_replaced(struct skyfs *fs, uint64_t ino, struct sky_err *e)
{
    struct meta_entry ent;
    if (meta_get(fs->meta, ino, &ent, NULL) != 0)
        return 0;
    int rc = files_keep_open(fs, &ent, e);
    meta_entry_free(&ent);
    return rc;
}

/* A rename onto an existing file (an editor's save: write a new name,
 * then rename it over the old one) must not lose another machine's change
 * of that file (issue 17).  Right before the rename, the target's version
 * on the cloud is compared with the one this machine last saw: 1 when it
 * changed (theirs: its attributes now), 0 when not (or when it is gone, or
 * was never uploaded), else -errno. */
static int target_changed_elsewhere(struct skyfs *fs, struct cloud *c, uint64_t ino,
                                    const char *path, struct sky_attr *theirs, struct sky_err *e)
{
    struct meta_entry ent;
    if (meta_get(fs->meta, ino, &ent, NULL) != 0)
        return 0;
    int changed = 0;
    if (ent.attr.kind == SKY_FILE && ent.attr.etag[0]) {
        char seen[SKY_ETAG_MAX];
        snprintf(seen, sizeof seen, "%s", ent.attr.etag);
        moved_verify(fs, c, ino, path, seen, sizeof seen);  /* a rename's refresh failed */
        int rc = c->drv->stat(c->ctx, path, theirs, e);
        cloud_note_result(c, rc, e);
        if (rc == 0)
            changed = strcmp(theirs->etag, seen) != 0;
        else if (rc != -ENOENT)
            changed = rc;
    }
    meta_entry_free(&ent);
    return changed;
}

/* conflict_copy_put's step for a rename: -EEXIST when `copy` is taken,
 * else the rename of `from` to it. */
struct rename_put {
    struct cloud *c;
    const char *from;
};

static int rename_to_free_name(void *arg, const char *copy, struct sky_err *e)
{
    struct rename_put *r = arg;
    struct sky_attr there;
    int rc = r->c->drv->stat(r->c->ctx, copy, &there, e);
    if (rc == 0)
        return -EEXIST;
    if (rc == -ENOENT) {
        rc = r->c->drv->rename(r->c->ctx, r->from, copy, e);
        cloud_note_result(r->c, rc, e);
    }
    return rc;
}

/* The rename of file src (at `from`) over `to` met another machine's
 * change of `to` (theirs): nothing is lost.  `to` keeps that version, and
 * this machine's file goes beside it as to's conflict copy
 * (NAME.conflict-HOST-YYYYMMDD-HHMMSS[.EXT], a name nothing holds yet), as
 * an upload's conflict does; logged and remembered for skyfs status.  The
 * kernel, told the rename happened, is asked to forget the target's name,
 * so that its next lookup finds the other machine's file. */
static int rename_to_conflict_copy(struct skyfs *fs, struct cloud *c, const struct meta_entry *src,
                                   uint64_t replaced, fuse_ino_t parent, fuse_ino_t newparent,
                                   const char *newname,
                                   const char *from, const char *to,
                                   const struct sky_attr *theirs, struct sky_err *e)
{
    char copy[4096];
    struct rename_put put = { c, from };
    int rc = conflict_copy_put(to, -EEXIST, rename_to_free_name, &put, copy, sizeof copy, e);
    if (rc == 1)
        return sky_fail(e, ENAMETOOLONG, "cloud '%s': \"%s\" changed on another machine, and "
                        "the name of a conflict copy would be too long; nothing renamed",
                        c->cfg->name, to);
    if (rc)
        return rc == -EEXIST ? sky_fail(e, EEXIST, "cloud '%s': \"%s\" changed on another "
                                        "machine, and every conflict copy name is taken",
                                        c->cfg->name, to) : rc;
    LOG_WARN("conflict: \"%s\" on cloud '%s' was changed by another machine since this one "
             "last saw it; the rename of \"%s\" over it went beside it as \"%s\"", to,
             c->cfg->name, from, copy);
    conflicts_add(c->conflicts, "rename", to, copy);
    struct sky_err ignored = { 0 };
    blocks_forget(fs->blocks, c->cfg->name, to, &ignored);  /* the old version's bytes */
    blocks_rename(fs->blocks, c->cfg->name, from, copy, false, &ignored);
    conflicts_gone(c->conflicts, from);
    meta_set_attr(fs->meta, replaced, theirs, skyfs_now(), &ignored);
    const char *slash = strrchr(copy, '/');
    rc = times_rename(fs, src->ino, parent, newparent, slash ? slash + 1 : copy, NULL, e);
    if (!rc)
        moved_refresh(fs, c, src->ino, copy, false);
    kforget_name(newparent, newname);
    return rc;
}

/* A file made here and not uploaded yet (open, or queued for its
 * upload), renamed over a file the cloud holds (git's `mv config.lock
 * config`, an editor's save): nothing is sent.  The pending upload moves to the new name in the
 * cache and replaces the version of the file there that this machine last
 * saw (If-Match, or the head compare), as an upload of an edit of that file
 * would: the target's check for another machine's change (a rename's
 * target_changed_elsewhere) happens at the upload, and such a change
 * sends this content beside it as a conflict copy.  From the rename on
 * the name is the cloud's file with a pending upload, not a local one: a
 * later unlink deletes that version, a later rename uploads first. */
struct onto_cloud {
    struct ofile *of;               /* the moved file (held); NULL: not this case */
    char etag[SKY_ETAG_MAX];        /* the version of the replaced file on the cloud */
    struct ofile *opened;           /* of, opened by the rename (nobody had it open) */
};

/* A file made here whose upload is pending, which nobody has open (on a
 * sync cloud: its close's upload failed; the journal retries it): opened
 * (files_close it), so that it can be held and moved like an open one;
 * NULL when it is open already or not such a file. */
static struct ofile *open_pending(struct skyfs *fs, const struct meta_entry *src)
{
    struct ofile *of = files_find(fs, src->ino);
    if (of) {
        files_close(fs, of);
        return NULL;
    }
    struct sky_err e = { 0 };
    if (src->attr.kind != SKY_FILE || !ops_still_local(fs, src->ino) ||
        files_open(fs, src, &of, &e) != 0)
        return NULL;
    return of;
}

static bool onto_cloud_file(struct skyfs *fs, struct cloud *c, const struct meta_entry *src,
                            uint64_t replaced, const char *to, struct ofile *of,
                            struct onto_cloud *onto)
{
    struct meta_entry dst;
    if (!of || src->attr.kind != SKY_FILE ||
        meta_get(fs->meta, replaced, &dst, NULL) != 0)
        return false;
    bool ok = dst.attr.kind == SKY_FILE && dst.attr.etag[0] && !dst.local_only;
    if (ok) {
        snprintf(onto->etag, sizeof onto->etag, "%s", dst.attr.etag);
        moved_verify(fs, c, replaced, to, onto->etag, sizeof onto->etag);
        onto->of = of;
    }
    meta_entry_free(&dst);
    return ok;
}

/* Before the cache moves the file: its upload is to replace onto->etag
 * (the journal keeps that across a restart).  Nothing has moved when
 * this fails. */
static int onto_cloud_rebase(const struct onto_cloud *onto, struct sky_err *e)
{
    int rc = blocks_rebase_new(onto->of->obj, onto->etag, e);
    if (rc == 0) {
        pthread_mutex_lock(&onto->of->lock);
        snprintf(onto->of->etag, sizeof onto->of->etag, "%s", onto->etag);
        pthread_mutex_unlock(&onto->of->lock);
    }
    return rc;
}

/* Before a rename: no background upload of the files involved may run
 * across it (it would land at the old name, or over the new one).  A
 * file's rename holds the upload locks of it and of the file it replaces
 * (in inode order: two renames never wait for each other); a directory's
 * pauses the write-back thread.  A file whose upload is queued
 * (write_back = async) goes up first, so that the cloud sees its content
 * before its new name, as the writer did. */
static int hold_for_rename(struct skyfs *fs, struct cloud *c, const struct meta_entry *src,
                           uint64_t replaced, const char *to, struct ofile *held[2],
                           bool *paused, bool *local_move, struct onto_cloud *onto,
                           struct sky_err *e)
{
    *local_move = false;
    onto->of = onto->opened = NULL;
    if (src->attr.kind == SKY_DIR) {
        writeback_pause(fs);
        *paused = true;
        return 0;
    }
    if (replaced && !ops_still_local(fs, replaced))
        onto->opened = open_pending(fs, src);      /* held below in inode order */
    uint64_t first = replaced && replaced < src->ino ? replaced : src->ino;
    uint64_t second = first == src->ino ? replaced : src->ino;
    held[0] = files_hold_upload(fs, first);
    if (second)
        held[1] = files_hold_upload(fs, second);
    struct ofile *of = held[0] && held[0]->ino == src->ino ? held[0]
                     : held[1] && held[1]->ino == src->ino ? held[1] : NULL;
    /* A file not uploaded yet, moved onto no file or another such file,
     * moves in the cache only: its upload goes to the new name. */
    bool src_local = ops_still_local(fs, src->ino);
    *local_move = src_local && (!replaced || ops_still_local(fs, replaced));
    if (src_local && !*local_move && onto_cloud_file(fs, c, src, replaced, to, of, onto))
        *local_move = true;
    if (*local_move && of) {
        /* a streamed upload begun under the old name is of no use */
        pthread_mutex_lock(&of->lock);
        if (of->stream && stream_started(of->stream)) {
            stream_drop(of->stream);
            of->stream = NULL;
        }
        pthread_mutex_unlock(&of->lock);
    }
    if (*local_move || !of || !c->cfg->write_back_async)
        return 0;
    pthread_mutex_lock(&of->lock);
    bool due = of->upload_due || src_local;
    pthread_mutex_unlock(&of->lock);
    return due ? files_sync_held(fs, of, e) : 0;
}

void sky_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                const char *newname, unsigned int flags)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct meta_entry dir, ndir, src;
    struct cloud *c, *nc;
    char *from, *to = NULL;
    if (flags & RENAME_EXCHANGE) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    int rc = ops_prepare_new(fs, parent, name, &dir, &c, &from, &e);
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    rc = ops_prepare_new(fs, newparent, newname, &ndir, &nc, &to, &e);
    if (rc) {
        free(from);
        meta_entry_free(&dir);
        reply_err(req, rc, &e);
        return;
    }
    uint64_t replaced = 0;
    if (nc != c)
        rc = -EXDEV; /* across clouds: mv falls back to copy + delete */
    else
        rc = find_child(fs, c, &dir, name, &src, &e);
    struct ofile *held[2] = { NULL, NULL };
    bool paused = false, local_move = false;
    struct onto_cloud onto = { 0 };
    if (!rc) {
        rc = check_rename_target(fs, c, &src, &ndir, newname, flags, &replaced, &e);
        if (!rc && replaced != src.ino)
            rc = hold_for_rename(fs, c, &src, replaced, to, held, &paused, &local_move,
                                 &onto, &e);
        /* Folders and symlinks made here and not created on the cloud yet
         * (localdirs.h, under its lock until the cache has the new name,
         * also when one is replaced): a folder moved onto no folder, a
         * symlink onto no entry or one made here, move in the cache only;
         * else it is created first, and so is the folder that receives
         * what moves. */
        bool src_deferred = src.attr.kind == SKY_DIR || src.attr.kind == SKY_LINK;
        bool dirs_held = !rc && replaced != src.ino &&
                         ((src_deferred && (src.local_only || ndir.local_only ||
                                            (replaced && ops_still_local(fs, replaced)))) ||
                          (replaced && localdirs_deferred_ino(fs, replaced, NULL)));
        /* A file's rename needs no lock (its upload, and the replaced
         * file's, are held): a busy write-back creating folders never
         * holds up rsync's or git's renames of new files.  Moved on the
         * cloud, its new folder is created first. */
        if (!rc && !dirs_held && !src_deferred && !local_move && ndir.local_only &&
            replaced != src.ino)
            rc = localdirs_ensure(fs, c, newparent, &e);
        if (dirs_held) {
            localdirs_lock(fs);
            if (src.attr.kind == SKY_DIR)
                local_move = local_move || (!replaced && ops_still_local(fs, src.ino));
            else if (src.attr.kind == SKY_LINK)     /* decided again, under the lock */
                local_move = ops_still_local(fs, src.ino) &&
                             (!replaced || ops_still_local(fs, replaced));
            if (!local_move && src_deferred)
                rc = localdirs_ensure(fs, c, src.ino, &e);
            if (!rc && !local_move)
                rc = localdirs_ensure(fs, c, newparent, &e);
        }
        if (!rc && replaced && replaced != src.ino)
            rc = keep_replaced(fs, replaced, &e);      /* open: its data stays */
        bool diverted = false;          /* went to a conflict copy instead */
        if (!rc && replaced && replaced != src.ino && src.attr.kind != SKY_DIR && !local_move) {
            struct sky_attr theirs;
            int changed = target_changed_elsewhere(fs, c, replaced, to, &theirs, &e);
            if (changed < 0) {
                rc = changed;
            } else if (changed) {
                rc = rename_to_conflict_copy(fs, c, &src, replaced, parent, newparent, newname,
                                             from, to, &theirs, &e);
                diverted = true;
            }
        }
        /* a rename of several steps (an object store's copies and
         * deletes) is recorded until the caches follow it: a crash in its
         * middle is finished at the next mount */
        bool recorded = false;
        if (!rc && replaced != src.ino && !diverted && !local_move) {
            recorded = renamelog_begin(fs, c, from, to);
            rc = c->drv->rename(c->ctx, from, to, &e);
            cloud_note_result(c, rc, &e);
        }
        if (!rc && onto.of && !diverted)
            rc = onto_cloud_rebase(&onto, &e);
        if (!rc && replaced != src.ino && !diverted) {
            if (replaced)
                files_mark_unlinked(fs, replaced);
            blocks_forget(fs->blocks, c->cfg->name, to, NULL);
            blocks_rename(fs->blocks, c->cfg->name, from, to, src.attr.kind == SKY_DIR, NULL);
            conflicts_gone(c->conflicts, from);     /* a conflict copy renamed: resolved */
            rc = times_rename(fs, src.ino, parent, newparent, newname,
                              onto.of ? onto.etag : NULL, &e);
            /* a copy may have given the moved objects new version tokens */
            if (!rc && !local_move)
                moved_refresh(fs, c, src.ino, to, src.attr.kind == SKY_DIR);
        }
        if (recorded)
            renamelog_done(fs, c, from);
        if (dirs_held)
            localdirs_unlock(fs);
        files_release_upload(fs, held[0]);
        files_release_upload(fs, held[1]);
        if (paused)
            writeback_resume(fs);
        if (onto.opened) {
            /* moved over the cloud's file in the cache: a sync cloud's
             * upload is tried now (else the journal's, as before) */
            struct sky_err up = { 0 };
            if (!rc && onto.of && !c->cfg->write_back_async &&
                files_sync(fs, onto.opened, &up) != 0)
                LOG_ERROR("upload of \"%s\" after its rename failed, kept in the journal "
                          "for retry: %s", to, up.msg);
            files_close(fs, onto.opened);
        }
        meta_entry_free(&src);
    }
    if (rc && rc != -EXDEV)
        reply_err(req, rc, &e);
    else
        fuse_reply_err(req, -rc);
    free(from);
    free(to);
    meta_entry_free(&dir);
    meta_entry_free(&ndir);
}

/* A second name of a file, where the cloud has hard links (local); object
 * stores have none: EPERM, as on filesystems without them. */
/* A file made here goes up before it gets a second name on the cloud
 * (link(2) of a file still open from its create): 0, or why it could not. */
static int upload_before_link(struct skyfs *fs, struct cloud *c, const struct meta_entry *src,
                              struct sky_err *e)
{
    struct ofile *opened = open_pending(fs, src);
    struct ofile *of = files_hold_upload(fs, src->ino);
    int rc = 0;
    if (ops_still_local(fs, src->ino))
        rc = of ? files_sync_held(fs, of, e)
                : sky_fail(e, EIO, "cloud '%s': link of \"%s\": its upload is still pending "
                           "(see skyfs status)", c->cfg->name, src->path);
    files_release_upload(fs, of);
    if (opened)
        files_close(fs, opened);
    return rc;
}

void sky_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct meta_entry src, dir, ent;
    struct cloud *c, *nc;
    char *to = NULL;
    if (virt_is(ino)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    int rc = ops_load(fs, ino, &src, &c, &e);
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    rc = ops_prepare_new(fs, newparent, newname, &dir, &nc, &to, &e);
    if (!rc) {
        struct sky_attr a;
        if (!c || nc != c)
            rc = c ? -EXDEV : -EPERM;
        else if (!c->drv->link || src.attr.kind == SKY_DIR)
            rc = sky_fail(&e, EPERM, "cloud '%s' has no hard links", c->cfg->name);
        else if (dir.local_only && (rc = localdirs_ensure(fs, c, newparent, &e)) != 0)
            ;   /* its folder, made here, could not be created first */
        else if (src.local_only && (rc = upload_before_link(fs, c, &src, &e)) != 0)
            ;
        else if (!(rc = c->drv->link(c->ctx, src.path, to, &e)))
            rc = c->drv->stat(c->ctx, to, &a, &e);
        if (c && nc == c)
            cloud_note_result(c, rc, &e);
        if (!rc) {  /* the old name first: the new one's inode number is the smaller one's */
            meta_set_attr(fs->meta, src.ino, &a, skyfs_now(), NULL);
            rc = ops_add_child(fs, newparent, newname, &a, src.link, &ent, &e);
        }
        if (!rc) {
            other_names_count(fs, c, &a, ent.ino, a.nlink);
            ops_reply_entry(req, fs, &ent, c);
            meta_entry_free(&ent);
        }
        meta_entry_free(&dir);
    }
    if (rc)
        reply_err(req, rc, &e);
    free(to);
    meta_entry_free(&src);
}
