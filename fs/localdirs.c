/*
 * localdirs.c - deferred folders and symlinks of write_back = async
 * clouds (see localdirs.h): created on the cloud, top down, before what
 * goes under them, or when the write-back thread flushes them; several
 * workers create different ones at once (the lock and claims below).
 */
#include "localdirs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "conflicts.h"
#include "kforget.h"

static bool holds_lock(const struct skyfs *fs)
{
    return fs->localdirs_depth && pthread_equal(fs->localdirs_owner, pthread_self());
}

void localdirs_lock(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->localdirs_mu);
    if (holds_lock(fs)) {
        fs->localdirs_depth++;
        pthread_mutex_unlock(&fs->localdirs_mu);
        return;
    }
    fs->localdirs_waiting++;
    while (fs->localdirs_depth || fs->localdirs_creating)
        pthread_cond_wait(&fs->localdirs_cond, &fs->localdirs_mu);
    fs->localdirs_waiting--;
    fs->localdirs_owner = pthread_self();
    fs->localdirs_depth = 1;
    pthread_mutex_unlock(&fs->localdirs_mu);
}

void localdirs_unlock(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->localdirs_mu);
    if (--fs->localdirs_depth == 0)
        pthread_cond_broadcast(&fs->localdirs_cond);
    pthread_mutex_unlock(&fs->localdirs_mu);
}

static bool claimed(const struct skyfs *fs, uint64_t ino)
{
    for (const struct localdirs_claim *k = fs->localdirs_claims; k; k = k->next)
        if (k->ino == ino)
            return true;
    return false;
}

/* Begin creating folders without the lock: once nobody holds or waits
 * for it (ops wait for the creations running, new creations wait for
 * them). */
static void creating_begin(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->localdirs_mu);
    while (fs->localdirs_depth || fs->localdirs_waiting)
        pthread_cond_wait(&fs->localdirs_cond, &fs->localdirs_mu);
    fs->localdirs_creating++;
    pthread_mutex_unlock(&fs->localdirs_mu);
}

static void creating_end(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->localdirs_mu);
    if (--fs->localdirs_creating == 0)
        pthread_cond_broadcast(&fs->localdirs_cond);
    pthread_mutex_unlock(&fs->localdirs_mu);
}

/* Claim folder k->ino for this creation, waiting while another creates it. */
static void claim(struct skyfs *fs, struct localdirs_claim *k)
{
    pthread_mutex_lock(&fs->localdirs_mu);
    while (claimed(fs, k->ino))
        pthread_cond_wait(&fs->localdirs_cond, &fs->localdirs_mu);
    k->next = fs->localdirs_claims;
    fs->localdirs_claims = k;
    pthread_mutex_unlock(&fs->localdirs_mu);
}

static void unclaim(struct skyfs *fs, struct localdirs_claim *k)
{
    pthread_mutex_lock(&fs->localdirs_mu);
    for (struct localdirs_claim **p = &fs->localdirs_claims; *p; p = &(*p)->next)
        if (*p == k) {
            *p = k->next;
            break;
        }
    pthread_cond_broadcast(&fs->localdirs_cond);
    pthread_mutex_unlock(&fs->localdirs_mu);
}

void localdirs_hold(struct skyfs *fs, struct localdirs_claim *k, uint64_t ino)
{
    k->ino = ino;
    k->next = NULL;
    claim(fs, k);
}

void localdirs_release(struct skyfs *fs, struct localdirs_claim *k)
{
    unclaim(fs, k);
}

bool localdirs_deferred(const struct meta_entry *ent)
{
    return ent->local_only && (ent->attr.kind == SKY_DIR || ent->attr.kind == SKY_LINK);
}

bool localdirs_deferred_ino(struct skyfs *fs, uint64_t ino, uint64_t *parent)
{
    struct meta_entry ent;
    if (meta_get(fs->meta, ino, &ent, NULL) != 0)
        return false;
    bool local = localdirs_deferred(&ent);
    if (parent)
        *parent = ent.parent;
    meta_entry_free(&ent);
    return local;
}

/* conflict_copy_put's step for a symlink: its creation at `copy`
 * (-EEXIST when taken). */
struct link_put {
    struct cloud *c;
    const char *target;
    const struct sky_attr *a;
};

static int link_to_free_name(void *arg, const char *copy, struct sky_err *e)
{
    struct link_put *l = arg;
    sky_err_clear(e);
    int rc = l->c->drv->symlink(l->c->ctx, copy, l->target, l->a, e);
    cloud_note_result(l->c, rc, e);
    return rc;
}

/* Symlink `ent` met another machine's file or folder at its name: that
 * one stays, this machine's link goes beside it as a conflict copy
 * (NAME.conflict-HOST-YYYYMMDD-HHMMSS, a name nothing holds yet), logged
 * and remembered for skyfs status, and the name shows theirs from its
 * next lookup on.  0, or the copy's error (the link stays local-only and
 * is tried again). */
static int link_beside(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                       const struct sky_attr *a, struct sky_err *e)
{
    char copy[4096];
    struct link_put put = { c, ent->link, a };
    int rc = conflict_copy_put(ent->path, -EEXIST, link_to_free_name, &put, copy, sizeof copy,
                               e);
    if (rc == 1)
        return sky_fail(e, ENAMETOOLONG, "cloud '%s': \"%s\" was made on another machine, "
                        "and the name of a conflict copy would be too long", c->cfg->name,
                        ent->path);
    if (rc)
        return rc;
    LOG_WARN("conflict: \"%s\" on cloud '%s' was made by another machine meanwhile; this "
             "machine's symlink to \"%s\" is kept beside it as \"%s\"", ent->path,
             c->cfg->name, ent->link, copy);
    conflicts_add(c->conflicts, "symlink", ent->path, copy);
    struct sky_err ignored = { 0 };
    meta_remove(fs->meta, ent->ino, &ignored);
    if (meta_set_listed(fs->meta, ent->parent, 0, &ignored) == 0)
        kforget_name(ent->parent, strrchr(ent->path, '/') ? strrchr(ent->path, '/') + 1
                                                           : ent->path);
    return 0;
}

/* Create local-only folder or symlink `ino` (its parent is on the cloud)
 * with the attributes the cache has for it now, then mark it on the
 * cloud (localdirs_lock held, or ino claimed by a creation). */
static int create_one(struct skyfs *fs, struct cloud *c, uint64_t ino, struct sky_err *e)
{
    struct meta_entry ent;
    int rc = meta_get(fs->meta, ino, &ent, e);
    if (rc == -ENOENT) {
        sky_err_clear(e);
        return 0;                       /* removed meanwhile */
    }
    if (rc)
        return rc;
    bool link = ent.attr.kind == SKY_LINK;
    if (localdirs_deferred(&ent)) {
        if (!c->ctx)
            rc = sky_fail(e, c->open_err.code ? c->open_err.code : EIO, "%s", c->open_err.msg);
        else
            rc = cloud_offline_check(c, e);
        if (rc == 0 && link) {
            rc = c->drv->symlink(c->ctx, ent.path, ent.link ? ent.link : "", &ent.attr, e);
            cloud_note_result(c, rc, e);
            if (rc == -EEXIST) {
                rc = link_beside(fs, c, &ent, &ent.attr, e);
                meta_entry_free(&ent);
                return rc;
            }
            struct sky_attr got;        /* its version, for a later conditional delete */
            if (rc == 0 && c->drv->stat(c->ctx, ent.path, &got, NULL) == 0) {
                memcpy(ent.attr.etag, got.etag, sizeof ent.attr.etag);
                meta_set_attr(fs->meta, ino, &ent.attr, skyfs_now(), NULL);
            }
        } else if (rc == 0) {
            /* made here, so one already there is taken as ours (below):
             * the driver need not ask first */
            struct sky_attr a = ent.attr;
            a.expect = SKY_EXPECT_ANY;
            rc = c->drv->mkdir(c->ctx, ent.path, &a, e);
            cloud_note_result(c, rc, e);
        }
        if (rc == -EEXIST) {            /* another machine made it meanwhile: ours too */
            sky_err_clear(e);
            rc = 0;
        }
        if (rc == 0)
            rc = meta_set_local_only(fs->meta, ino, false, e);
        if (rc == 0)    /* its times and its folder's, moved by us (meta_own_change) */
            meta_own_change(fs->meta, ino, true, skyfs_now(), NULL);
        if (rc == 0)
            LOG_DEBUG("cloud '%s': created deferred %s \"%s\"", c->cfg->name,
                      link ? "symlink" : "folder", ent.path);
    }
    meta_entry_free(&ent);
    return rc;
}

int localdirs_ensure(struct skyfs *fs, struct cloud *c, uint64_t ino, struct sky_err *e)
{
    if (!ino || ino == c->root_ino)
        return 0;
    uint64_t parent;
    if (!localdirs_deferred_ino(fs, ino, &parent))
        return 0;                       /* the common case: asks the cache once */
    /* Inside the lock (an op deciding about local-only folders) the
     * folders are created under it; else beside other creations, each
     * folder claimed while it is created, the ops waiting for them all. */
    pthread_mutex_lock(&fs->localdirs_mu);
    bool held = holds_lock(fs);
    pthread_mutex_unlock(&fs->localdirs_mu);
    if (!held)
        creating_begin(fs);
    /* the chain of local-only folders from ino up (a cloud's root is
     * never local-only), then created top down */
    uint64_t *chain = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (uint64_t cur = ino; cur && cur != c->root_ino && localdirs_deferred_ino(fs, cur, &parent);
         cur = parent) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint64_t *more = realloc(chain, ncap * sizeof *more);
            if (!more) {
                rc = sky_fail(e, ENOMEM, "out of memory");
                break;
            }
            chain = more;
            cap = ncap;
        }
        chain[n++] = cur;
    }
    while (rc == 0 && n > 0) {
        struct localdirs_claim k = { chain[--n], NULL };
        claim(fs, &k);              /* under the lock too: an op's localdirs_hold */
        rc = create_one(fs, c, k.ino, e);       /* nothing when made meanwhile */
        unclaim(fs, &k);
    }
    free(chain);
    if (!held)
        creating_end(fs);
    return rc;
}

int localdirs_ensure_ino(struct skyfs *fs, uint64_t ino, struct sky_err *e)
{
    struct meta_entry ent;
    if (meta_get(fs->meta, ino, &ent, NULL) != 0)
        return 0;
    bool local = localdirs_deferred(&ent);
    struct cloud *c = local ? skyfs_cloud_by_name(fs, ent.cloud) : NULL;
    meta_entry_free(&ent);
    return c ? localdirs_ensure(fs, c, ino, e) : 0;
}

/* Has local-only folder `ino` settled: unchanged (its ctime) for
 * settle_ns?  If not, *next lowers to when it will have (0: unset). */
static bool settled(struct skyfs *fs, uint64_t ino, int64_t settle_ns, int64_t now,
                    int64_t *next)
{
    struct meta_entry ent;
    if (settle_ns <= 0 || meta_get(fs->meta, ino, &ent, NULL) != 0)
        return true;
    int64_t at = ent.attr.ctime_ns + settle_ns;
    meta_entry_free(&ent);
    if (at <= now)
        return true;
    if (next && (!*next || at < *next))
        *next = at;
    return false;
}

int localdirs_flush(struct skyfs *fs, struct cloud *c, int64_t settle_ns, int64_t *next,
                    struct sky_err *e)
{
    uint64_t after = 0, ino;
    int first = 0;
    struct sky_err one = { 0 };
    int64_t now = skyfs_now();
    if (next)
        *next = 0;
    while (meta_next_deferred(fs->meta, c->cfg->name, after, &ino, NULL) == 0) {
        after = ino;
        if (!settled(fs, ino, settle_ns, now, next))
            continue;
        int rc = localdirs_ensure(fs, c, ino, &one);
        if (rc && !first) {
            first = rc;
            if (e)
                *e = one;
        }
        if (rc == -EHOSTDOWN)
            break;                      /* offline: the rest would fail alike */
    }
    return first;
}

int localdirs_flush_all(struct skyfs *fs, bool settle, int64_t *next)
{
    int failed = 0;
    *next = 0;
    for (size_t i = 0; i < fs->nclouds; i++) {
        struct cloud *c = &fs->clouds[i];
        struct sky_err e = { 0 };
        int64_t later = 0;
        if (!c->ctx || c->cfg->read_only)
            continue;
        int64_t settle_ns = settle && c->cfg->write_back_async ? c->cfg->write_back_delay_ns : 0;
        int rc = localdirs_flush(fs, c, settle_ns, &later, &e);
        if (later && (!*next || later < *next))
            *next = later;
        if (rc != 0) {
            failed++;
            LOG_ERROR("write-back: creating the folders and symlinks made on cloud '%s' "
                      "failed, retried: %s", c->cfg->name, e.msg);
        }
    }
    return failed;
}

int localdirs_recover(struct skyfs *fs)
{
    int failed = 0;
    for (size_t i = 0; i < fs->nclouds; i++) {
        struct cloud *c = &fs->clouds[i];
        uint64_t ino;
        if (!c->ctx || c->cfg->read_only ||
            meta_next_deferred(fs->meta, c->cfg->name, 0, &ino, NULL) != 0)
            continue;
        if (c->cfg->write_back_async && fs->wb_started) {
            writeback_dirs_due(fs, c);
            continue;
        }
        struct sky_err e = { 0 };
        pthread_rwlock_rdlock(&fs->wb_tree);
        int rc = localdirs_flush(fs, c, 0, NULL, &e);
        pthread_rwlock_unlock(&fs->wb_tree);
        if (rc) {
            failed++;
            LOG_ERROR("journal: creating the folders and symlinks made on cloud '%s' "
                      "failed, retried: %s", c->cfg->name, e.msg);
        }
    }
    return failed;
}

int localdirs_ensure_path(struct skyfs *fs, struct cloud *c, const char *path,
                          struct sky_err *e)
{
    char *dir = strdup(path);
    if (!dir)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    for (char *slash = strchr(dir, '/'); rc == 0 && slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        uint64_t ino;
        if (meta_find_path(fs->meta, c->cfg->name, dir, &ino, NULL) == 0) {
            rc = localdirs_ensure(fs, c, ino, e);       /* nothing unless local-only */
        } else if (!c->ctx) {
            rc = sky_fail(e, c->open_err.code ? c->open_err.code : EIO, "%s", c->open_err.msg);
        } else if ((rc = cloud_offline_check(c, e)) == 0) {
            /* asked first: not every cloud says EEXIST for a mkdir of a
             * folder it has */
            struct sky_attr a;
            rc = c->drv->stat(c->ctx, dir, &a, e);
            if (rc == -ENOENT) {
                sky_err_clear(e);
                memset(&a, 0, sizeof a);
                a.kind = SKY_DIR;
                a.mode = 0755;
                a.has = SKY_HAS_MODE;
                rc = c->drv->mkdir(c->ctx, dir, &a, e);
                if (rc == -EEXIST) {            /* made meanwhile */
                    sky_err_clear(e);
                    rc = 0;
                }
            }
            cloud_note_result(c, rc, e);
        }
        *slash = '/';
    }
    free(dir);
    return rc;
}
