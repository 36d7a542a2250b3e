/*
 * localdirs.c - deferred folders of write_back = async clouds (see
 * localdirs.h): created on the cloud, top down, before what goes under
 * them, or when the write-back thread flushes them.
 */
#include "localdirs.h"

#include <errno.h>
#include <stdlib.h>

#include "../lib/log.h"

void localdirs_lock(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->localdirs_lock);
}

void localdirs_unlock(struct skyfs *fs)
{
    pthread_mutex_unlock(&fs->localdirs_lock);
}

/* Is entry `ino` a local-only folder?  *parent gets its parent. */
static bool is_local_dir(struct skyfs *fs, uint64_t ino, uint64_t *parent)
{
    struct meta_entry ent;
    if (meta_get(fs->meta, ino, &ent, NULL) != 0)
        return false;
    bool local = ent.local_only && ent.attr.kind == SKY_DIR;
    *parent = ent.parent;
    meta_entry_free(&ent);
    return local;
}

/* Create local-only folder `ino` (its parent is on the cloud) with the
 * attributes the cache has for it now, then mark it on the cloud
 * (localdirs_lock held). */
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
    if (ent.local_only && ent.attr.kind == SKY_DIR) {
        if (!c->ctx)
            rc = sky_fail(e, c->open_err.code ? c->open_err.code : EIO, "%s", c->open_err.msg);
        else
            rc = cloud_offline_check(c, e);
        if (rc == 0) {
            rc = c->drv->mkdir(c->ctx, ent.path, &ent.attr, e);
            cloud_note_result(c, rc, e);
        }
        if (rc == -EEXIST) {            /* another machine made it meanwhile: ours too */
            sky_err_clear(e);
            rc = 0;
        }
        if (rc == 0)
            rc = meta_set_local_only(fs->meta, ino, false, e);
        if (rc == 0)
            LOG_DEBUG("cloud '%s': created deferred folder \"%s\"", c->cfg->name, ent.path);
    }
    meta_entry_free(&ent);
    return rc;
}

int localdirs_ensure(struct skyfs *fs, struct cloud *c, uint64_t ino, struct sky_err *e)
{
    if (!ino || ino == c->root_ino)
        return 0;
    uint64_t parent;
    if (!is_local_dir(fs, ino, &parent))
        return 0;                       /* the common case: asks the cache once */
    localdirs_lock(fs);
    /* the chain of local-only folders from ino up (a cloud's root is
     * never local-only), then created top down */
    uint64_t *chain = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (uint64_t cur = ino; cur && cur != c->root_ino && is_local_dir(fs, cur, &parent);
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
    while (rc == 0 && n > 0)
        rc = create_one(fs, c, chain[--n], e);
    free(chain);
    localdirs_unlock(fs);
    return rc;
}

int localdirs_ensure_ino(struct skyfs *fs, uint64_t ino, struct sky_err *e)
{
    struct meta_entry ent;
    if (meta_get(fs->meta, ino, &ent, NULL) != 0)
        return 0;
    bool local = ent.local_only && ent.attr.kind == SKY_DIR;
    struct cloud *c = local ? skyfs_cloud_by_name(fs, ent.cloud) : NULL;
    meta_entry_free(&ent);
    return c ? localdirs_ensure(fs, c, ino, e) : 0;
}

int localdirs_flush(struct skyfs *fs, struct cloud *c, struct sky_err *e)
{
    uint64_t after = 0, ino;
    int first = 0;
    struct sky_err one = { 0 };
    while (meta_next_local_dir(fs->meta, c->cfg->name, after, &ino, NULL) == 0) {
        int rc = localdirs_ensure(fs, c, ino, &one);
        if (rc && !first) {
            first = rc;
            if (e)
                *e = one;
        }
        if (rc == -EHOSTDOWN)
            break;                      /* offline: the rest would fail alike */
        after = ino;
    }
    return first;
}

int localdirs_flush_all(struct skyfs *fs)
{
    int failed = 0;
    for (size_t i = 0; i < fs->nclouds; i++) {
        struct cloud *c = &fs->clouds[i];
        struct sky_err e = { 0 };
        if (!c->ctx || c->cfg->read_only)
            continue;
        if (localdirs_flush(fs, c, &e) != 0) {
            failed++;
            LOG_ERROR("write-back: creating the folders made on cloud '%s' failed, retried: %s",
                      c->cfg->name, e.msg);
        }
    }
    return failed;
}
