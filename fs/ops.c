/*
 * ops.c - the FUSE low-level operations: skyfs answering the kernel.
 *
 * Inode numbers are the metadata cache's stable ones (inode 1 is the root,
 * each cloud's directory is a child of it).  An answer comes from the
 * metadata cache while it is fresh (the cloud's ttl) and from the driver
 * otherwise (refresh.h: offline or slow clouds get the cached answer);
 * our own changes update the cache at once.  The session runs these
 * operations wrapped by liveness.h (interrupts).  Every error reply
 * carries the driver's errno; the person-readable message goes to the log.
 *
 * Because inode numbers live in SQLite, the kernel's lookup counts need no
 * table here: forget is a no-op and an inode stays valid while its entry
 * exists.
 *
 * This file holds the operation table, the helpers the ops files share
 * (ops.h), lookup, getattr, setattr and statfs; directories are in
 * ops_dirs.c, names (unlink, rmdir, rename, link) in ops_names.c, files
 * (create, open, read, write, flush, fsync, release) in ops_files.c and
 * the extended attributes in ops_xattr.c.
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "skyfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/names.h"
#include "../lib/log.h"
#include "../lib/metrics.h"
#include "localdirs.h"
#include "ops.h"
#include "refresh.h"
#include "virtual.h"

#define NS 1000000000LL


struct skyfs *ops_fs(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

struct fhandle *ops_handle(struct fuse_file_info *fi)
{
    return (struct fhandle *)(uintptr_t)fi->fh;
}

struct ofile *ops_ofile(struct fuse_file_info *fi)
{
    return ops_handle(fi)->of;
}

void handle_link(struct skyfs *fs, struct fhandle *h)
{
    pthread_mutex_lock(&fs->files_lock);
    h->prev = NULL;
    h->next = fs->handles;
    if (fs->handles)
        fs->handles->prev = h;
    fs->handles = h;
    pthread_mutex_unlock(&fs->files_lock);
}

void handle_free(struct skyfs *fs, struct fhandle *h)
{
    pthread_mutex_lock(&fs->files_lock);
    if (h->prev)
        h->prev->next = h->next;
    else if (fs->handles == h)
        fs->handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    pthread_mutex_unlock(&fs->files_lock);
    free(h->virt_text);
    free(h->direct);
    free(h);
}

/* The session ended with files still open (a SIGTERM, a lazy unmount
 * while a process held them): the kernel will never release them.
 * Their uploads stay with the journal, as after a crash. */
void handles_free_all(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->files_lock);
    struct fhandle *h = fs->handles;
    fs->handles = NULL;
    pthread_mutex_unlock(&fs->files_lock);
    while (h) {
        struct fhandle *next = h->next;
        if (h->of)
            files_close(fs, h->of);
        free(h->virt_text);
        free(h->direct);
        free(h);
        h = next;
    }
}

/* Give the kernel a handle on `of` (fi->fh); wrote: it changed the file
 * already (O_TRUNC).  Returns 0 or -ENOMEM. */
int ops_handle_new(struct skyfs *fs, struct fuse_file_info *fi, struct ofile *of, bool wrote)
{
    struct fhandle *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->of = of;
    atomic_store(&h->wrote, wrote);
    handle_link(fs, h);
    fi->fh = (uint64_t)(uintptr_t)h;
    return 0;
}

/* Answer with rc (0 or -errno); a failure's message goes to the log unless
 * it is an everyday answer such as "no such file". */
void reply_err(fuse_req_t req, int rc, const struct sky_err *e)
{
    int err = rc < 0 ? -rc : rc;
    if (e && e->msg[0] && err != ENOENT && err != EEXIST && err != ENOTEMPTY && err != ENODATA)
        LOG_WARN("%s", e->msg);
    fuse_reply_err(req, err);
}

double ops_ttl_seconds(const struct cloud *c)
{
    if (!c)
        return 1.0;
    if (c->cfg->ttl_ns == SKY_TTL_FOREVER)
        return 365.0 * 86400.0;
    return (double)c->cfg->ttl_ns / (double)NS;
}

static double negative_seconds(const struct cloud *c)
{
    if (c->cfg->negative_ttl_ns == SKY_TTL_FOREVER)
        return 365.0 * 86400.0;
    return (double)c->cfg->negative_ttl_ns / (double)NS;
}

/* The user making a request, with its supplementary groups (what the
 * .skyfs/search directory shows depends on who asks). */
void ops_requester(fuse_req_t req, struct sky_requester *who)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    who->uid = ctx->uid;
    who->gid = ctx->gid;
    int n = fuse_req_getgroups(req, SKY_MAX_GROUPS, who->groups);
    who->ngroups = n < 0 ? 0 : n > SKY_MAX_GROUPS ? SKY_MAX_GROUPS : n;
}

/* ---- attributes ------------------------------------------------------- */

/* A directory has 2 links plus one per subdirectory (its ".."): the
 * cloud's count where it keeps one and the directory was not listed yet,
 * else the subdirectories the cache knows. */
static nlink_t dir_nlink(struct skyfs *fs, const struct meta_entry *ent)
{
    uint64_t subdirs = 0;
    if (ent->attr.nlink >= 2 && !ent->listed_at)
        return ent->attr.nlink;
    if (meta_subdir_count(fs->meta, ent->ino, &subdirs, NULL) != 0)
        return ent->attr.nlink >= 2 ? ent->attr.nlink : 2;
    return (nlink_t)(2 + subdirs);
}

void ops_fill_stat(struct skyfs *fs, const struct meta_entry *ent, struct stat *st)
{
    const struct sky_attr *a = &ent->attr;
    memset(st, 0, sizeof *st);
    st->st_ino = ent->stat_ino ? ent->stat_ino : ent->ino;
    mode_t perm;
    sky_shown_attr(&fs->shown, a, &perm, &st->st_uid, &st->st_gid);
    st->st_mode = sky_kind_type_bits((int)a->kind) | perm;
    if (a->kind == SKY_DIR)
        st->st_nlink = dir_nlink(fs, ent);
    else
        st->st_nlink = a->nlink ? a->nlink : 1;
    if (a->kind == SKY_CHR || a->kind == SKY_BLK)
        st->st_rdev = (dev_t)a->rdev;
    st->st_size = (off_t)a->size;
    st->st_blksize = 65536;
    st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
    int64_t mtime, atime, ctime;
    times_shown(fs, ent, &mtime, &atime, &ctime);
    /* An open file's own writes win over what the cloud last said; one
     * unlinked (or replaced) while open has no name left. */
    struct ofile *of = a->kind == SKY_FILE ? files_find(fs, ent->ino) : NULL;
    if (of) {
        pthread_mutex_lock(&of->lock);
        if (blocks_is_dirty(of->obj) || of->unlinked) {
            st->st_size = (off_t)blocks_size(of->obj);
            st->st_blocks = (blkcnt_t)((blocks_size(of->obj) + 511) / 512);
            mtime = of->mtime_ns;
            ctime = of->ctime_ns > ctime ? of->ctime_ns : ctime;
        }
        if (of->unlinked)
            st->st_nlink = 0;
        pthread_mutex_unlock(&of->lock);
        files_close(fs, of);
    }
    st->st_mtim = (struct timespec){ mtime / NS, mtime % NS };
    st->st_atim = (struct timespec){ atime / NS, atime % NS };
    st->st_ctim = (struct timespec){ ctime / NS, ctime % NS };
}

static struct cloud *cloud_of(struct skyfs *fs, const struct meta_entry *ent)
{
    return skyfs_cloud_by_name(fs, ent->cloud);
}

/* Join a directory path and a name into a cloud path (malloc'd). */
char *ops_child_path(const char *dir, const char *name)
{
    char *p;
    if (asprintf(&p, "%s%s%s", dir, *dir ? "/" : "", name) < 0)
        return NULL;
    return p;
}

/* Load an entry and its cloud.  The root has no cloud. */
int ops_load(struct skyfs *fs, fuse_ino_t ino, struct meta_entry *ent, struct cloud **c,
             struct sky_err *e)
{
    int rc = meta_get(fs->meta, ino, ent, e);
    if (rc)
        return rc;
    *c = cloud_of(fs, ent);
    if (ino != META_ROOT_INO && !*c) {
        meta_entry_free(ent);
        return sky_fail(e, ENOENT, "inode %llu belongs to a cloud no longer configured",
                        (unsigned long long)ino);
    }
    return 0;
}

void ops_fill_entry(struct skyfs *fs, const struct meta_entry *ent, const struct cloud *c,
                    struct fuse_entry_param *p)
{
    memset(p, 0, sizeof *p);
    p->ino = ent->ino;
    p->generation = 1;
    ops_fill_stat(fs, ent, &p->attr);
    p->attr_timeout = p->entry_timeout = ops_ttl_seconds(c);
}

void ops_reply_entry(fuse_req_t req, struct skyfs *fs, const struct meta_entry *ent,
                     const struct cloud *c)
{
    struct fuse_entry_param p;
    ops_fill_entry(fs, ent, c, &p);
    fuse_reply_entry(req, &p);
}

static void reply_negative(fuse_req_t req, const struct cloud *c)
{
    struct fuse_entry_param p;
    memset(&p, 0, sizeof p);
    p.ino = 0;
    p.entry_timeout = negative_seconds(c);
    fuse_reply_entry(req, &p);
}

/* ---- lookup and attributes -------------------------------------------- */

static void lookup_virtual(fuse_req_t req, struct skyfs *fs, fuse_ino_t parent,
                           const char *name)
{
    struct sky_err e = { 0 };
    struct fuse_entry_param p;
    memset(&p, 0, sizeof p);
    struct sky_requester who;
    ops_requester(req, &who);
    int rc = virt_lookup(fs, &who, parent, name, &p.attr, &e);
    if (rc == -ENOENT) {
        p.entry_timeout = 1.0;
        fuse_reply_entry(req, &p);
    } else if (rc) {
        reply_err(req, rc, &e);
    } else {
        p.ino = p.attr.st_ino;
        p.generation = 1;
        /* search results change: never let the kernel cache them long */
        p.attr_timeout = p.entry_timeout = 0.0;
        fuse_reply_entry(req, &p);
    }
}

/* A stale cached name is revalidated by listing its folder again when the
 * folder holds at least this many cached names (for one, a stat costs as
 * much as a listing and brings the metadata too) ... */
#define RELIST_NAMES_MIN 2
/* ... and at most this many: one page of a listing. */
#define RELIST_NAMES_MAX 1000

/* Lookup of cached name `name`, gone stale, in directory `dir` whose own
 * listing is stale too: list the folder again (one request, refresh.h)
 * rather than stat the name alone, when the folder was listed before and
 * holds RELIST_NAMES_MIN..RELIST_NAMES_MAX names.  The names of a folder go
 * stale together, and whoever stats one (git status, ls -l, make, rsync)
 * stats the rest: 100 files past the ttl cost one LIST instead of 100
 * stats.  The listing refreshes the names it vouches for
 * (meta_replace_listing: on a cloud whose listings carry no metadata,
 * those still at the version whose metadata the cache read); the others
 * stay stale and the caller stats them.
 *
 * 1 when the lookup was answered here: with the relisted name, with "no
 * such name" when the listing lacks it, or with the cached name when the
 * listing was not refreshed now (the cloud is offline or slow to answer,
 * or `revalidate = async` lists it in the background: refresh_listing
 * served the cached listing, as a stat would have served the cached
 * name).  0 when the caller goes on with a stat (of *child, which this
 * may have replaced with what the listing left). */
static int lookup_relist(fuse_req_t req, struct skyfs *fs, struct cloud *c,
                         const struct meta_entry *dir, const char *name,
                         struct meta_entry *child)
{
    struct sky_err e = { 0 };
    uint64_t n = 0;
    if (dir->listed_at <= 0 || dir->local_only ||
        meta_child_count_upto(fs->meta, dir->ino, RELIST_NAMES_MAX + 1, &n, &e) != 0 ||
        n < RELIST_NAMES_MIN || n > RELIST_NAMES_MAX)
        return 0;
    if (refresh_listing(fs, c, dir, &e) != 0)
        return 0;                       /* the stat will say what is wrong */
    struct meta_entry now_dir, again;
    if (meta_get(fs->meta, dir->ino, &now_dir, &e) != 0)
        return 0;
    bool listed = now_dir.listed_at != dir->listed_at;
    meta_entry_free(&now_dir);
    if (!listed) {                      /* served the cached listing */
        ops_reply_entry(req, fs, child, c);
        return 1;
    }
    int rc = meta_lookup(fs->meta, dir->ino, name, &again, &e);
    if (rc == -ENOENT) {
        reply_negative(req, c);
        return 1;
    }
    if (rc)
        return 0;
    if (again.local_only || skyfs_fresh(again.fetched_at, c->cfg->ttl_ns)) {
        sky_metrics_inc(SKY_M_META_HITS);
        ops_reply_entry(req, fs, &again, c);
        meta_entry_free(&again);
        return 1;
    }
    meta_entry_free(child);             /* still stale: the caller stats it */
    *child = again;
    return 0;
}

/* The cloud found nothing at entry ino: forget it (meta_forget_gone).  A
 * folder above files not uploaded yet stays: true with *kept, its entry
 * now (free it); false when the entry is gone. */
static bool forget_gone(struct skyfs *fs, uint64_t ino, struct meta_entry *kept)
{
    return meta_forget_gone(fs->meta, ino, NULL) == 0 && meta_get(fs->meta, ino, kept, NULL) == 0;
}

static void sky_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct meta_entry dir, child;
    struct cloud *c;
    if (virt_is(parent) || (parent == META_ROOT_INO && strcmp(name, VIRT_DIR_NAME) == 0)) {
        lookup_virtual(req, fs, parent, name);
        return;
    }
    if (strlen(name) > SKY_NAME_MAX) {      /* no cloud is asked for a name no file has */
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    int rc = ops_load(fs, parent, &dir, &c, &e);
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    if (parent == META_ROOT_INO) {
        struct cloud *target = skyfs_cloud_by_name(fs, name);
        meta_entry_free(&dir);
        if (!target || meta_get(fs->meta, target->root_ino, &child, &e) != 0) {
            struct fuse_entry_param p = { .ino = 0, .entry_timeout = 1.0 };
            fuse_reply_entry(req, &p);
            return;
        }
        ops_reply_entry(req, fs, &child, target);
        meta_entry_free(&child);
        return;
    }
    rc = meta_lookup(fs->meta, parent, name, &child, &e);
    /* a folder made here and not on the cloud yet has what the cache has */
    bool parent_fresh = dir.local_only || skyfs_fresh(dir.listed_at, c->cfg->ttl_ns);
    /* a file made here and not uploaded yet is only in the cache; a name
     * the folder's last listing did not vouch for stays stale in a fresh
     * folder (meta_replace_listing) */
    if (rc == 0 && (dir.local_only || child.local_only ||
                    skyfs_fresh(child.fetched_at, c->cfg->ttl_ns))) {
        sky_metrics_inc(SKY_M_META_HITS);
        ops_reply_entry(req, fs, &child, c);
        meta_entry_free(&child);
        meta_entry_free(&dir);
        return;
    }
    if (rc == -ENOENT && parent_fresh) {
        sky_metrics_inc(SKY_M_META_HITS);
        meta_entry_free(&dir);
        reply_negative(req, c);
        return;
    }
    bool cached = rc == 0;
    if (cached && !parent_fresh && lookup_relist(req, fs, c, &dir, name, &child)) {
        meta_entry_free(&child);
        meta_entry_free(&dir);
        return;
    }
    char *path = ops_child_path(dir.path, name);
    struct meta_entry fresh_child;
    if (!path)
        rc = -ENOMEM;
    else if (cached)
        rc = refresh_known_entry(fs, c, &child, &fresh_child, &e);
    else
        rc = refresh_entry(fs, c, parent, name, path, refresh_hint_in(&dir), &fresh_child, &e);
    if (rc == 0) {
        ops_reply_entry(req, fs, &fresh_child, c);
        meta_entry_free(&fresh_child);
    } else if (rc == -ENOENT) {
        struct meta_entry kept;
        if (cached && forget_gone(fs, child.ino, &kept)) {
            ops_reply_entry(req, fs, &kept, c);
            meta_entry_free(&kept);
        } else {
            reply_negative(req, c);
        }
    } else if (skyfs_serve_cached(rc) && cached) {
        ops_reply_entry(req, fs, &child, c); /* offline, slow, disk full: what we know */
    } else if (rc == -EHOSTDOWN && dir.listed_at > 0) {
        reply_negative(req, c);         /* offline: not in the last listing */
    } else {
        reply_err(req, rc, &e);
    }
    if (cached)
        meta_entry_free(&child);
    free(path);
    meta_entry_free(&dir);
}

static void sky_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    fuse_reply_none(req);
}

static void sky_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    fuse_reply_none(req);
}

static void reply_attr(fuse_req_t req, struct skyfs *fs, const struct meta_entry *ent,
                       const struct cloud *c)
{
    struct stat st;
    ops_fill_stat(fs, ent, &st);
    fuse_reply_attr(req, &st, ops_ttl_seconds(c));
}

static bool is_open(struct skyfs *fs, uint64_t ino)
{
    struct ofile *of = files_find(fs, ino);
    if (of)
        files_close(fs, of);
    return of != NULL;
}

static void sky_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct meta_entry ent;
    struct cloud *c;
    if (virt_is(ino)) {
        struct stat st;
        struct sky_requester who;
        ops_requester(req, &who);
        int vrc = virt_getattr(fs, &who, ino, &st, &e);
        if (vrc)
            reply_err(req, vrc, &e);
        else
            fuse_reply_attr(req, &st, 0.0);
        return;
    }
    int rc = ops_load(fs, ino, &ent, &c, &e);
    struct ofile *orphan;
    if (rc == -ENOENT && files_orphan(fs, ino, &ent, &orphan) == 0) {
        reply_attr(req, fs, &ent, orphan->cloud);       /* unlinked while open */
        files_close(fs, orphan);
        return;
    }
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    if (!c || ino == c->root_ino || ent.local_only ||
        skyfs_fresh(ent.fetched_at, c->cfg->ttl_ns)) {
        sky_metrics_inc(SKY_M_META_HITS);
        reply_attr(req, fs, &ent, c);
        meta_entry_free(&ent);
        return;
    }
    struct meta_entry upd;
    rc = refresh_known_entry(fs, c, &ent, &upd, &e);
    if (rc == 0) {
        reply_attr(req, fs, &upd, c);
        meta_entry_free(&upd);
    } else if (skyfs_serve_cached(rc) || (rc == -ENOENT && is_open(fs, ino))) {
        /* offline, slow, disk full, or deleted elsewhere while we hold it
         * open: what we know */
        reply_attr(req, fs, &ent, c);
    } else {
        struct meta_entry kept;
        if (rc == -ENOENT && forget_gone(fs, ino, &kept)) {
            reply_attr(req, fs, &kept, c);
            meta_entry_free(&kept);
        } else {
            reply_err(req, rc, &e);
        }
    }
    meta_entry_free(&ent);
}

/* The changes a setattr asks for, applied to a (attributes of an entry
 * with every time fixed, see times_fix); which gets the SKY_HAS_* bits of
 * what changed.  Every change moves the ctime. */
static unsigned setattr_changes(const struct stat *attr, int to_set, int64_t now,
                                struct sky_attr *a)
{
    unsigned which = 0;
    if (to_set & FUSE_SET_ATTR_MODE) {
        a->mode = attr->st_mode & 07777;
        which |= SKY_HAS_MODE;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
        a->uid = attr->st_uid;
        which |= SKY_HAS_UID;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        a->gid = attr->st_gid;
        which |= SKY_HAS_GID;
    }
    if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
        a->mtime_ns = (to_set & FUSE_SET_ATTR_MTIME_NOW)
                          ? now : (int64_t)attr->st_mtim.tv_sec * NS + attr->st_mtim.tv_nsec;
        which |= SKY_HAS_MTIME;
    }
    if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
        a->atime_ns = (to_set & FUSE_SET_ATTR_ATIME_NOW)
                          ? now : (int64_t)attr->st_atim.tv_sec * NS + attr->st_atim.tv_nsec;
        which |= SKY_HAS_ATIME;
    }
    if (a->kind == SKY_LINK)
        which &= ~(unsigned)SKY_HAS_MODE;
    if (which) {
        a->ctime_ns = now;
        which |= SKY_HAS_CTIME;
    }
    a->has |= which;
    return which;
}

/* An open file's times (and version token, when etag is not NULL) follow
 * a change of its attributes; takes of->lock. */
static void setattr_open_file(struct ofile *of, const struct sky_attr *a, unsigned which,
                              const char *etag)
{
    pthread_mutex_lock(&of->lock);
    if (which & SKY_HAS_MTIME)
        of->mtime_ns = a->mtime_ns;
    if (which & SKY_HAS_ATIME)
        of->atime_ns = a->atime_ns;
    if (which & SKY_HAS_CTIME)
        of->ctime_ns = a->ctime_ns;
    of->meta_unsynced = true;       /* as safe as the bytes once it is closed */
    /* a change of metadata may give the object a new version token for
     * the same bytes: fetch what is missing by that one */
    if (etag && *etag)
        snprintf(of->etag, sizeof of->etag, "%s", etag);
    pthread_mutex_unlock(&of->lock);
}

/* What the cache keeps after a setattr: what the driver reports (out),
 * and of the changes asked for (a, which) those it did not keep (the
 * ctime on an object store that stores none; a folder's is the kernel's).
 * Times not set by the call never go back: the cache knows of reads (and,
 * for a directory, of changes of its entries) that the cloud may not have
 * seen.  Nor does a folder's mtime move unless the call sets it: the
 * cloud's may be the stamp of the mount's own mkdir, taken by the
 * backing file system's coarser clock a moment after the cache's (a
 * change of the folder made elsewhere arrives with its next refresh). */
static void setattr_merge(struct sky_attr *out, const struct sky_attr *a, unsigned which)
{
    unsigned kept = which & ~out->has;
    if (kept & SKY_HAS_MODE)
        out->mode = a->mode;
    if (kept & SKY_HAS_UID)
        out->uid = a->uid;
    if (kept & SKY_HAS_GID)
        out->gid = a->gid;
    if (kept & SKY_HAS_MTIME)
        out->mtime_ns = a->mtime_ns;
    if (kept & SKY_HAS_ATIME)
        out->atime_ns = a->atime_ns;
    if (kept & SKY_HAS_CTIME)
        out->ctime_ns = a->ctime_ns;
    out->has |= kept;
    if (!(which & SKY_HAS_ATIME) && a->atime_ns > out->atime_ns)
        out->atime_ns = a->atime_ns;
    if (!(which & SKY_HAS_MTIME) && a->kind == SKY_DIR)
        out->mtime_ns = a->mtime_ns;
    if (a->ctime_ns > out->ctime_ns)
        out->ctime_ns = a->ctime_ns;
}

/* setattr on a file unlinked while open (fchmod, ftruncate, futimens):
 * only the open file changes. */
static void setattr_orphan(fuse_req_t req, struct skyfs *fs, struct meta_entry *ent,
                           struct ofile *of, const struct stat *attr, int to_set)
{
    struct sky_err e = { 0 };
    int rc = 0;
    if (to_set & FUSE_SET_ATTR_SIZE)
        rc = files_truncate(fs, of, (uint64_t)attr->st_size, &e);
    if (rc == 0) {
        pthread_mutex_lock(&of->lock);
        struct sky_attr a = of->orphan;
        pthread_mutex_unlock(&of->lock);
        unsigned which = setattr_changes(attr, to_set, skyfs_now(), &a);
        setattr_open_file(of, &a, which, NULL);
        pthread_mutex_lock(&of->lock);
        a.size = blocks_size(of->obj);
        of->orphan = a;
        pthread_mutex_unlock(&of->lock);
        ent->attr = a;
        reply_attr(req, fs, ent, of->cloud);
    } else {
        reply_err(req, rc, &e);
    }
}

/* Is entry ino a file made here and not uploaded yet (asked again once
 * its upload lock is held: an upload may have just sent it)? */
bool ops_still_local(struct skyfs *fs, uint64_t ino)
{
    struct meta_entry now;
    if (meta_get(fs->meta, ino, &now, NULL) != 0)
        return false;
    bool local = now.local_only;
    meta_entry_free(&now);
    return local;
}

/* Apply chmod/chown/utimens/truncate.  The driver reports the attributes
 * it has afterwards, and those are what the cache keeps.  A cloud's root
 * directory takes them too (on object stores, in the cache only). */
static void sky_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                        struct fuse_file_info *fi)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct meta_entry ent;
    struct cloud *c;
    if (virt_is(ino)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    int rc = ops_load(fs, ino, &ent, &c, &e);
    struct ofile *of = NULL;
    if (rc == -ENOENT && files_orphan(fs, ino, &ent, &of) == 0) {
        setattr_orphan(req, fs, &ent, of, attr, to_set);
        files_close(fs, of);
        return;
    }
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    if (!c) {
        meta_entry_free(&ent);
        reply_err(req, -EPERM, NULL);           /* the mount root */
        return;
    }
    rc = cloud_check_writable(c, &e);
    /* not in the middle of a background upload of the file */
    struct ofile *held = rc ? NULL : files_hold_upload(fs, ino);
    if (!rc && (to_set & FUSE_SET_ATTR_SIZE)) {
        if (fi)
            atomic_store(&ops_handle(fi)->wrote, true);     /* ftruncate */
        if (ent.attr.kind != SKY_FILE)
            rc = sky_fail(&e, EISDIR, "truncate of a directory");
        else
            rc = files_open(fs, &ent, &of, &e);
        if (!rc)
            rc = files_truncate(fs, of, (uint64_t)attr->st_size, &e);
        if (rc == -ESTALE && files_take_newer(fs, of, &e) == 0)
            rc = files_truncate(fs, of, (uint64_t)attr->st_size, &e);  /* as a write */
    }
    int64_t now = skyfs_now();
    struct sky_attr a = ent.attr;
    times_fix(fs, &ent, &a);
    unsigned which = rc ? 0 : setattr_changes(attr, to_set, now, &a);
    /* A file not created on the cloud yet, or open with unsent writes:
     * its upload carries the new attributes instead of a request of their
     * own (on a write_back = async cloud, the pending upload; on a sync
     * one, the upload at the writer's close: tar sets a file's times,
     * owner and mode on its descriptor before it closes it, one request,
     * not four, and the cloud never holds the new attributes on the old
     * bytes).  Else the driver changes them in place. */
    if (!of && which)
        of = files_find(fs, ino);
    /* A folder or symlink not created on the cloud yet takes them in the
     * cache: its create carries them (asked under the lock that keeps its
     * creation out, localdirs.h). */
    bool dir_held = !rc && which && localdirs_deferred(&ent);
    struct localdirs_claim hold;
    if (dir_held)
        localdirs_hold(fs, &hold, ino);
    bool carried = !rc && which &&
                   ((ent.attr.kind == SKY_FILE && held && files_upload_pending(held)) ||
                    ((ent.attr.kind == SKY_FILE || (c->cfg->write_back_async && dir_held)) &&
                     ops_still_local(fs, ino)));
    if (carried) {
        struct sky_attr out = a;
        if (of) {
            setattr_open_file(of, &out, which, NULL);
            pthread_mutex_lock(&of->lock);
            out.size = blocks_size(of->obj);
            pthread_mutex_unlock(&of->lock);
        }
        rc = meta_set_attr(fs->meta, ino, &out, now, &e);
        if (!rc)
            skyfs_same_file_changed(fs, c->cfg->name, ino, &out);
    } else if (!rc && which) {
        rc = cloud_offline_check(c, &e);
        /* the metadata is written anyway: the atime the cache kept goes
         * along (a symlink has no atime of its own to keep) */
        unsigned send = which | (a.kind == SKY_LINK ? 0 : SKY_HAS_ATIME);
        struct sky_attr out;
        if (!rc) {
            rc = c->drv->set_attr(c->ctx, ent.path, &a, send, &out, &e);
            cloud_note_result(c, rc, &e);
        }
        if (!rc) {
            /* a metadata edit may give the object a new version token: the
             * cached content (maybe a pending upload) is based on it now */
            blocks_retag(fs->blocks, c->cfg->name, ent.path, ent.attr.etag, out.etag, NULL);
            setattr_merge(&out, &a, which);
            if (of)
                setattr_open_file(of, &out, which, out.etag);
            rc = meta_set_attr(fs->meta, ino, &out, now, &e);
        }
        if (!rc)
            skyfs_same_file_changed(fs, c->cfg->name, ino, &out);
    }
    if (dir_held)
        localdirs_release(fs, &hold);
    files_release_upload(fs, held);
    if (!rc && of && (to_set & FUSE_SET_ATTR_SIZE) && !fi)
        rc = files_closed_written(fs, of, &e); /* truncate(2) on a path: as a close */
    if (of)
        files_close(fs, of);
    if (rc) {
        reply_err(req, rc, &e);
    } else {
        struct meta_entry now_ent;
        if (meta_get(fs->meta, ino, &now_ent, &e) == 0) {
            reply_attr(req, fs, &now_ent, c);
            meta_entry_free(&now_ent);
        } else {
            reply_err(req, -EIO, &e);
        }
    }
    meta_entry_free(&ent);
}

/* ---- new entries (for ops_dirs.c and ops_files.c) -------------------- */

/* Load the parent of a new entry and build the child's path; checks that
 * the cloud may be written. */
int ops_prepare_new(struct skyfs *fs, fuse_ino_t parent, const char *name,
                    struct meta_entry *dir, struct cloud **c, char **path, struct sky_err *e)
{
    if (virt_is(parent))
        return sky_fail(e, EROFS, "the .skyfs directory is read-only");
    if (strlen(name) > SKY_NAME_MAX)        /* before anything is sent; not worth a log line */
        return -ENAMETOOLONG;
    int rc = ops_load(fs, parent, dir, c, e);
    if (rc)
        return rc;
    rc = cloud_check_writable(*c, e);
    if (!rc)
        rc = cloud_offline_check(*c, e);        /* fail at once, not after the retries */
    if (rc) {
        meta_entry_free(dir);
        return rc;
    }
    *path = ops_child_path(dir->path, name);
    if (!*path) {
        meta_entry_free(dir);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    return 0;
}

void ops_new_attr(fuse_req_t req, enum sky_kind kind, mode_t mode, struct sky_attr *a)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->mode = mode & 07777;
    a->uid = ctx->uid;
    a->gid = ctx->gid;
    a->mtime_ns = a->atime_ns = a->ctime_ns = skyfs_now();
    a->has = SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME | SKY_HAS_ATIME |
             SKY_HAS_CTIME;
}

/* Record a new child in the cache (its directory's times move) and give
 * its entry.  It is the mount's own change: the times the cloud stamped
 * on the new entry are not news at its next refresh. */
int ops_add_child(struct skyfs *fs, uint64_t parent, const char *name,
                  const struct sky_attr *a, const char *link, struct meta_entry *out,
                  struct sky_err *e)
{
    uint64_t ino;
    int64_t now = skyfs_now();
    int rc = meta_upsert(fs->meta, parent, name, a, link, now, &ino, e);
    if (!rc)            /* without it, only what stat shows after the TTL differs */
        meta_own_change(fs->meta, ino, false, now, NULL);
    if (!rc && link)
        rc = meta_set_link(fs->meta, ino, link, e);
    if (!rc)
        rc = meta_get(fs->meta, ino, out, e);
    if (!rc)
        times_dir_changed(fs, parent);
    return rc;
}

/* ---- filesystem-wide -------------------------------------------------- */

static void sky_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct skyfs *fs = ops_fs(req);
    struct statvfs st;
    memset(&st, 0, sizeof st);
    struct meta_entry ent;
    struct cloud *c = NULL;
    if (ops_load(fs, ino, &ent, &c, NULL) == 0)
        meta_entry_free(&ent);
    int rc = -ENOSYS;
    if (c && c->ctx && c->drv->statfs) {
        rc = c->drv->statfs(c->ctx, &st, NULL);
    }
    if (rc) {
        /* object stores have no capacity: report plenty, like s3fs */
        st.f_bsize = st.f_frsize = 4096;
        st.f_blocks = st.f_bfree = st.f_bavail = 1ULL << 38;
        st.f_files = st.f_ffree = st.f_favail = 1ULL << 32;
    }
    st.f_namemax = 255;
    fuse_reply_statfs(req, &st);
}

static void sky_init(void *userdata, struct fuse_conn_info *conn)
{
    conn->max_write = skyfs_request_size();
    conn->max_readahead = 1024 * 1024;
    conn->max_read = skyfs_request_size();     /* as the mount option (mount.c) */
    /* Data moves between the kernel and the cache files by splice: no
     * copy through this process, and no request-sized buffer per FUSE
     * thread filled by each large read or write.  Not SPLICE_MOVE:
     * stealing the cache file's pages into the mount's page cache costs
     * more than the copy it saves (warm reads of a 256 MiB file took
     * 0.40 s with it, 0.29 s without), and empties the cache file's page
     * cache as it goes. */
    if (conn->capable & FUSE_CAP_SPLICE_WRITE)
        conn->want |= FUSE_CAP_SPLICE_WRITE;
    if (conn->capable & FUSE_CAP_SPLICE_READ)
        conn->want |= FUSE_CAP_SPLICE_READ;
    if (conn->capable & FUSE_CAP_ASYNC_READ)
        conn->want |= FUSE_CAP_ASYNC_READ;
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
}

const struct fuse_lowlevel_ops skyfs_core_ops = {
    .init = sky_init,
    .lookup = sky_lookup,
    .forget = sky_forget,
    .forget_multi = sky_forget_multi,
    .getattr = sky_getattr,
    .setattr = sky_setattr,
    .readlink = sky_readlink,
    .mknod = sky_mknod,
    .mkdir = sky_mkdir,
    .unlink = sky_unlink,
    .rmdir = sky_rmdir,
    .symlink = sky_symlink,
    .rename = sky_rename,
    .link = sky_link,
    .open = sky_open,
    .read = sky_read,
    .write_buf = sky_write_buf,
    .flush = sky_flush,
    .release = sky_release,
    .fsync = sky_fsync,
    .opendir = sky_opendir,
    .readdir = sky_readdir,
    .readdirplus = sky_readdirplus,
    .releasedir = sky_releasedir,
    .fsyncdir = sky_fsyncdir,
    .statfs = sky_statfs,
    .setxattr = sky_setxattr,
    .getxattr = sky_getxattr,
    .listxattr = sky_listxattr,
    .removexattr = sky_removexattr,
    .create = sky_create,
};
