/* kinds.c - see kinds.h. */
#include "kinds.h"

#include <stdio.h>
#include <string.h>

/* sky_known_kind_fn for cloud `arg`: the cached entry at `path`, when it
 * holds exactly that version.  Directories have no version (etag ""), so
 * they never match; the cache's lookup by (cloud, path) is indexed. */
static bool known_kind(void *arg, const char *path, const char *etag, enum sky_kind *kind,
                       uint64_t *rdev, char *target, size_t target_size)
{
    struct cloud *c = arg;
    struct meta *m = c->fs->meta;
    uint64_t ino;
    struct meta_entry ent;
    if (!etag || !*etag || meta_find_path(m, c->cfg->name, path, &ino, NULL) != 0 ||
        meta_get(m, ino, &ent, NULL) != 0)
        return false;
    bool known = ent.attr.kind != SKY_DIR && strcmp(ent.attr.etag, etag) == 0;
    if (known) {
        *kind = ent.attr.kind;
        *rdev = ent.attr.kind == SKY_CHR || ent.attr.kind == SKY_BLK ? ent.attr.rdev : 0;
        if (target_size) {
            target[0] = '\0';
            if (ent.attr.kind == SKY_LINK && ent.link && strlen(ent.link) < target_size)
                snprintf(target, target_size, "%s", ent.link);
        }
    }
    meta_entry_free(&ent);
    return known;
}

/* sky_known_dir_fn for cloud `arg`: the cached directory at `path`, when
 * its attributes came from the cloud (a directory listed before its marker
 * was asked, or without a marker, has none: asked again). */
static bool known_dir(void *arg, const char *path, struct sky_attr *out)
{
    struct cloud *c = arg;
    struct meta *m = c->fs->meta;
    uint64_t ino;
    struct meta_entry ent;
    if (meta_find_path(m, c->cfg->name, path, &ino, NULL) != 0 ||
        meta_get(m, ino, &ent, NULL) != 0)
        return false;
    bool known = ent.attr.kind == SKY_DIR && ent.attr.has != 0;
    if (known)
        *out = ent.attr;
    meta_entry_free(&ent);
    return known;
}

void kinds_register(struct cloud *c)
{
    if (c->ctx && c->drv->set_known_kinds)
        c->drv->set_known_kinds(c->ctx, known_kind, c);
    if (c->ctx && c->drv->set_known_dirs)
        c->drv->set_known_dirs(c->ctx, known_dir, c);
}
