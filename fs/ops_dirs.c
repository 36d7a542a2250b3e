/*
 * ops_dirs.c - the FUSE directory operations: opendir, readdir(plus),
 * releasedir, mkdir, symlink and readlink.
 *
 * opendir takes a snapshot of the folder's listing (from the metadata
 * cache while it is fresh, else from the driver through refresh.h), so a
 * readdir in pieces never sees a half-changed folder.  Part of fs/ops.c's
 * operation table (ops.h).
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "skyfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "commit.h"
#include "listahead.h"
#include "localdirs.h"
#include "ops.h"
#include "refresh.h"
#include "virtual.h"

struct dir_item {
    char *name;
    uint64_t ino;       /* the FUSE inode (st.st_ino may be another name's: hard links) */
    struct stat st;
};

struct dir_snapshot {
    struct dir_item *items;
    size_t n, cap;
    struct skyfs *fs;
    struct cloud *cloud;
};

static int snapshot_add(struct dir_snapshot *s, const char *name, const struct stat *st)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct dir_item *n = realloc(s->items, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        s->items = n;
        s->cap = cap;
    }
    s->items[s->n].name = strdup(name);
    s->items[s->n].st = *st;
    s->items[s->n].ino = st->st_ino;
    if (!s->items[s->n].name)
        return -ENOMEM;
    s->n++;
    return 0;
}

static int snapshot_child(void *arg, const struct meta_entry *ent)
{
    struct dir_snapshot *s = arg;
    struct stat st;
    ops_fill_stat(s->fs, ent, &st);
    int rc = snapshot_add(s, ent->name, &st);
    if (rc == 0)
        s->items[s->n - 1].ino = ent->ino;
    return rc;
}

static void snapshot_free(struct dir_snapshot *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].name);
    free(s->items);
    free(s);
}

static int snapshot_root(struct skyfs *fs, struct dir_snapshot *s, struct sky_err *e)
{
    for (size_t i = 0; i < fs->nclouds; i++) {
        struct meta_entry ent;
        int rc = meta_get(fs->meta, fs->clouds[i].root_ino, &ent, e);
        if (rc)
            return rc;
        rc = snapshot_child(s, &ent);
        meta_entry_free(&ent);
        if (rc)
            return sky_fail(e, ENOMEM, "out of memory");
    }
    return 0;
}

static int snapshot_virtual(void *arg, const char *name, const struct stat *st)
{
    return snapshot_add(arg, name, st);
}

static void opendir_virtual(fuse_req_t req, struct skyfs *fs, fuse_ino_t ino,
                            struct fuse_file_info *fi)
{
    struct sky_err e = { 0 };
    struct dir_snapshot *s = calloc(1, sizeof *s);
    struct stat self;
    struct sky_requester who;
    ops_requester(req, &who);
    int rc = s ? virt_getattr(fs, &who, ino, &self, &e) : -ENOMEM;
    if (!rc) {
        s->fs = fs;
        snapshot_add(s, ".", &self);
        snapshot_add(s, "..", &self);
        rc = virt_list(fs, &who, ino, snapshot_virtual, s, &e);
    }
    if (rc) {
        if (s)
            snapshot_free(s);
        reply_err(req, rc, &e);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)s;
    fuse_reply_open(req, fi);
}

void sky_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct meta_entry dir;
    struct cloud *c;
    if (virt_is(ino)) {
        opendir_virtual(req, fs, ino, fi);
        return;
    }
    int rc = ops_load(fs, ino, &dir, &c, &e);
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    struct dir_snapshot *s = calloc(1, sizeof *s);
    if (!s) {
        meta_entry_free(&dir);
        reply_err(req, -ENOMEM, NULL);
        return;
    }
    s->fs = fs;
    s->cloud = c;
    struct stat self;
    ops_fill_stat(fs, &dir, &self);
    snapshot_add(s, ".", &self);
    snapshot_add(s, "..", &self);
    if (dir.attr.kind != SKY_DIR)
        rc = sky_fail(&e, ENOTDIR, "not a directory");
    else if (!c)
        rc = snapshot_root(fs, s, &e);
    else {
        /* a folder not on the cloud yet has only what the cache has */
        rc = dir.local_only ? 0 : refresh_listing(fs, c, &dir, &e);
        if (!rc)
            rc = meta_children(fs->meta, ino, snapshot_child, s, &e);
        if (!rc)
            listahead_dir(fs, c, ino);      /* its subfolders, in the background */
        if (!rc && times_dir_read(fs, &dir) && fs->session)
            fuse_lowlevel_notify_inval_inode(fs->session, ino, -1, 0);   /* its atime moved */
    }
    meta_entry_free(&dir);
    if (rc) {
        snapshot_free(s);
        reply_err(req, rc, &e);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)s;
    fi->cache_readdir = 0;
    fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi,
                       bool plus)
{
    struct dir_snapshot *s = (struct dir_snapshot *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0;
    for (size_t i = (size_t)off; i < s->n; i++) {
        struct dir_item *it = &s->items[i];
        size_t need;
        if (plus) {
            struct fuse_entry_param p;
            memset(&p, 0, sizeof p);
            bool dot = strcmp(it->name, ".") == 0 || strcmp(it->name, "..") == 0;
            p.attr = it->st;
            if (!dot && !virt_is(it->ino)) {
                /* attributes as of now, not as of opendir: the kernel
                 * takes them as fresh, and a file may have been written
                 * since the snapshot */
                struct meta_entry now;
                if (meta_get(s->fs->meta, it->ino, &now, NULL) == 0) {
                    ops_fill_stat(s->fs, &now, &p.attr);
                    meta_entry_free(&now);
                }
            }
            if (!dot) {
                p.ino = it->ino;
                p.generation = 1;
                p.attr_timeout = p.entry_timeout = ops_ttl_seconds(s->cloud);
            }
            need = fuse_add_direntry_plus(req, buf + used, size - used, it->name, &p,
                                          (off_t)i + 1);
        } else {
            need = fuse_add_direntry(req, buf + used, size - used, it->name, &it->st,
                                     (off_t)i + 1);
        }
        if (need > size - used)
            break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

void sky_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
    do_readdir(req, size, off, fi, false);
}

void sky_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    do_readdir(req, size, off, fi, true);
}

/* fsync of a folder: the names and attributes of what is in it, as the
 * caches hold them, become durable (commit.h); what is not uploaded yet
 * goes up from there, also after a power cut.  Files uploaded already
 * and sync clouds' changes are on the cloud: nothing else to do. */
void sky_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    (void)fi;
    struct sky_err e = { 0 };
    int rc = commit_now(ops_fs(req), &e);
    if (rc)
        LOG_ERROR("fsync of a folder: %s", e.msg);
    fuse_reply_err(req, -rc);
}

void sky_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    snapshot_free((struct dir_snapshot *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

/* A new folder or symlink of a write_back = async cloud, made in the
 * cache only: marked local-only for the write-back workers to create
 * (localdirs.h).  On failure the entry is gone again (and *ent freed). */
static int mark_deferred(struct skyfs *fs, struct cloud *c, struct meta_entry *ent,
                         struct sky_err *e)
{
    int rc = meta_set_local_only(fs->meta, ent->ino, true, e);
    if (rc) {
        meta_remove(fs->meta, ent->ino, NULL);
        meta_entry_free(ent);
        return rc;
    }
    ent->local_only = true;
    writeback_dirs_due(fs, c);
    return 0;
}

void sky_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
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
    struct sky_attr a;
    ops_new_attr(req, SKY_DIR, mode, &a);
    /* write_back = async: made in the cache only, created on the cloud
     * before anything goes under it or by the write-back thread
     * (localdirs.h) */
    bool deferred = c->cfg->write_back_async;
    if (!deferred) {
        rc = c->drv->mkdir(c->ctx, path, &a, &e);
        cloud_note_result(c, rc, &e);
    }
    if (!rc)
        rc = ops_add_child(fs, parent, name, &a, NULL, &ent, &e);
    if (!rc && deferred)
        rc = mark_deferred(fs, c, &ent, &e);
    if (!rc) {
        meta_set_listed(fs->meta, ent.ino, skyfs_now(), NULL); /* new and empty */
        ops_reply_entry(req, fs, &ent, c);
        meta_entry_free(&ent);
    } else {
        reply_err(req, rc, &e);
    }
    free(path);
    meta_entry_free(&dir);
}

void sky_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
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
    struct sky_attr a;
    ops_new_attr(req, SKY_LINK, 0777, &a);
    a.size = strlen(link);
    /* write_back = async: made in the cache only, created on the cloud by
     * the write-back thread with the folders (localdirs.h) */
    bool deferred = c->cfg->write_back_async;
    if (!deferred) {
        rc = dir.local_only ? localdirs_ensure(fs, c, parent, &e) : 0;  /* the folder first */
        if (!rc) {
            rc = c->drv->symlink(c->ctx, path, link, &a, &e);
            cloud_note_result(c, rc, &e);
        }
        struct sky_attr got;
        if (!rc && c->drv->stat(c->ctx, path, &got, NULL) == 0)
            memcpy(a.etag, got.etag, sizeof a.etag);
    }
    if (!rc)
        rc = ops_add_child(fs, parent, name, &a, link, &ent, &e);
    if (!rc && deferred)
        rc = mark_deferred(fs, c, &ent, &e);
    if (!rc) {
        ops_reply_entry(req, fs, &ent, c);
        meta_entry_free(&ent);
    } else {
        reply_err(req, rc, &e);
    }
    free(path);
    meta_entry_free(&dir);
}

void sky_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct meta_entry ent;
    struct cloud *c;
    if (virt_is(ino)) {
        char target[4096];
        struct sky_requester who;
        ops_requester(req, &who);
        int vrc = virt_readlink(fs, &who, ino, target, sizeof target, &e);
        if (vrc)
            reply_err(req, vrc, &e);
        else
            fuse_reply_readlink(req, target);
        return;
    }
    int rc = ops_load(fs, ino, &ent, &c, &e);
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    if (ent.link && (ent.local_only || skyfs_fresh(ent.fetched_at, c->cfg->ttl_ns))) {
        fuse_reply_readlink(req, ent.link);     /* (not on the cloud yet: localdirs.h) */
    } else if (!c || !c->ctx) {
        if (ent.link)
            fuse_reply_readlink(req, ent.link);
        else
            reply_err(req, c ? cloud_unavailable(c, &e) : -EINVAL, &e);
    } else {
        char target[4096];
        rc = cloud_offline_check(c, &e);
        if (rc == 0) {
            rc = c->drv->readlink(c->ctx, ent.path, target, sizeof target, &e);
            cloud_note_result(c, rc, &e);
        }
        if (rc == -EHOSTDOWN && ent.link) {
            fuse_reply_readlink(req, ent.link);
        } else if (rc) {
            reply_err(req, rc, &e);
        } else {
            meta_set_link(fs->meta, ino, target, NULL);
            fuse_reply_readlink(req, target);
        }
    }
    meta_entry_free(&ent);
}
