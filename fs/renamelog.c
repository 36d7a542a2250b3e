/*
 * renamelog.c - see renamelog.h.
 */
#include "skyfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "commit.h"
#include "renamelog.h"

bool renamelog_begin(struct skyfs *fs, struct cloud *c, const char *from, const char *to)
{
    if (!c->drv->rename_finish)
        return false;           /* one step: nothing to finish after a crash */
    struct sky_err e = { 0 };
    if (meta_move_begin(fs->meta, c->cfg->name, from, to, &e) == 0) {
        /* synced: a power cut in the rename's middle must find the record */
        if (commit_meta(fs, &e) != 0)
            LOG_WARN("cloud '%s': the record of the rename of \"%s\" to \"%s\" is not on "
                     "disk (a power cut in its middle would leave it half done): %s",
                     c->cfg->name, from, to, e.msg);
        return true;
    }
    LOG_WARN("cloud '%s': the rename of \"%s\" to \"%s\" goes ahead unrecorded (a crash in "
             "its middle would leave it half done): %s", c->cfg->name, from, to, e.msg);
    return false;
}

void renamelog_done(struct skyfs *fs, struct cloud *c, const char *from)
{
    struct sky_err e = { 0 };
    if (meta_move_end(fs->meta, c->cfg->name, from, &e) != 0)
        LOG_WARN("cloud '%s': %s (the next mount finds the rename of \"%s\" done)",
                 c->cfg->name, e.msg, from);
}

/* The parent of `path` in the cache ("a/b" -> "a", "b" -> the cloud's
 * folder) and the last name of `path`. */
static int parent_of(struct skyfs *fs, struct cloud *c, const char *path, uint64_t *parent,
                     const char **name)
{
    const char *slash = strrchr(path, '/');
    *name = slash ? slash + 1 : path;
    if (!slash) {
        *parent = c->root_ino;
        return 0;
    }
    char *dir = strndup(path, (size_t)(slash - path));
    if (!dir)
        return -ENOMEM;
    int rc = meta_find_path(fs->meta, c->cfg->name, dir, parent, NULL);
    free(dir);
    return rc;
}

/* The caches follow a rename the cloud has finished: pending uploads and
 * cached blocks under `from` go under `to` (what was cached there is
 * dropped, blocks_rename), the entry moves, and both
 * folders are listed again (the cloud's tree may differ from the cache's). */
static void caches_follow(struct skyfs *fs, struct cloud *c, const char *from, const char *to)
{
    struct sky_err e = { 0 };
    if (blocks_rename(fs->blocks, c->cfg->name, from, to, true, &e) != 0)
        LOG_WARN("cloud '%s': block cache: %s", c->cfg->name, e.msg);
    uint64_t ino, from_parent, to_parent;
    const char *from_name, *to_name;
    bool have = meta_find_path(fs->meta, c->cfg->name, from, &ino, NULL) == 0;
    bool from_dir = parent_of(fs, c, from, &from_parent, &from_name) == 0;
    bool to_dir = parent_of(fs, c, to, &to_parent, &to_name) == 0;
    bool moved = have && to_dir && meta_rename(fs->meta, ino, to_parent, to_name, &e) == 0;
    if (have && !moved)         /* the next listing says where it is now */
        meta_remove(fs->meta, ino, NULL);
    if (from_dir)
        meta_set_listed(fs->meta, from_parent, 0, NULL);
    if (to_dir)
        meta_set_listed(fs->meta, to_parent, 0, NULL);
}

/* Finish the rename m: 0; 1 when its cloud is not configured (the record
 * stays for a mount that has it); or -errno with e saying why (left for
 * the next pass). */
static int finish_one(struct skyfs *fs, const struct meta_move *m, struct sky_err *e)
{
    struct cloud *c = skyfs_cloud_by_name(fs, m->cloud);
    if (!c || !c->drv->rename_finish) {
        LOG_WARN("cloud '%s': the rename of \"%s\" to \"%s\" was cut short, and the cloud is "
                 "no longer configured (as the same kind); kept for a mount that has it",
                 m->cloud, m->src, m->dst);
        return 1;
    }
    int rc = !c->ctx ? sky_fail(e, c->open_err.code ? c->open_err.code : EIO, "%s",
                                c->open_err.msg)
           : cloud_offline_check(c, e);
    if (rc)
        return rc;
    writeback_pause(fs);        /* no upload under either name meanwhile */
    rc = c->drv->rename_finish(c->ctx, m->src, m->dst, e);
    cloud_note_result(c, rc, e);
    if (rc == 0)
        caches_follow(fs, c, m->src, m->dst);
    writeback_resume(fs);
    if (rc == 0) {
        renamelog_done(fs, c, m->src);
        LOG_INFO("cloud '%s': finished the rename of \"%s\" to \"%s\", which a crash had "
                 "cut short", c->cfg->name, m->src, m->dst);
    }
    return rc;
}

void renamelog_load(struct skyfs *fs)
{
    struct sky_err e = { 0 };
    if (meta_moves(fs->meta, &fs->crashed_moves, &fs->ncrashed_moves, &e) != 0)
        LOG_ERROR("journal: cannot read the renames a crash may have cut short (they stay "
                  "as they are on the clouds): %s", e.msg);
}

int renamelog_finish(struct skyfs *fs)
{
    struct sky_err e = { 0 };
    size_t kept = 0;
    struct meta_move *v = fs->crashed_moves;
    for (size_t i = 0; i < fs->ncrashed_moves; i++) {
        sky_err_clear(&e);
        if (!fs->stopping && finish_one(fs, &v[i], &e) >= 0) {  /* done, or not ours */
            meta_move_clear(&v[i]);
            continue;
        }
        if (e.code)
            LOG_ERROR("cloud '%s': the rename of \"%s\" to \"%s\" was cut short, and "
                      "finishing it failed, will retry: %s", v[i].cloud, v[i].src, v[i].dst,
                      e.msg);
        v[kept++] = v[i];
    }
    fs->ncrashed_moves = kept;
    return (int)kept;
}

void renamelog_free(struct skyfs *fs)
{
    meta_moves_free(fs->crashed_moves, fs->ncrashed_moves);
    fs->crashed_moves = NULL;
    fs->ncrashed_moves = 0;
}
