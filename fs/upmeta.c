/*
 * upmeta.c - the cloud metadata an upload stores (declared in skyfs.h).
 *
 * Object stores replace an object's metadata with every PUT, so a program
 * that rewrites a file would silently drop what users set on it (setfattr
 * user.*, a Content-Type chosen by their tooling).  s3fs and rclone keep
 * it, and so do we: an upload sends the content type and user metadata of
 * the object it replaces, taken from the metadata cache when it knows them
 * and otherwise from one get_meta call (one HEAD) before the upload.  A
 * new object gets a content type from its name (/etc/mime.types, lib/mime.h)
 * and no user metadata.
 *
 * The HEAD's answer is stored in the cache too, so a streamed upload asks
 * once (when it begins) and its end finds the answer there; a setxattr
 * made while the file is written refreshes the cache (xattr.c), so the end
 * of the upload sends the metadata as it is then.
 *
 * Metadata is never lost for a passing network failure: when that HEAD
 * fails (the cloud unreachable, a server error), the upload fails with it
 * and the journal retries the file later, as for a failed PUT.  Only a
 * cloud that cannot tell (no get_meta, or a refusal: EACCES) gets the file
 * without its old user metadata, with one warning.  After the
 * upload, what was sent is recorded in the cache with the new etag, so
 * `skyfs search --meta` keeps finding the file and getfattr needs no HEAD.
 *
 * The storage class is never sent (the bucket's default applies), so the
 * cache forgets it with the old version.
 */
#include "skyfs.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/mime.h"

static bool keeps_content_type(const struct cloud *c)
{
    return (c->drv->caps & SKY_CAP_CONTENT_TYPE) != 0;
}

void upmeta_for_new(const struct cloud *c, const char *path, struct sky_objmeta *out)
{
    memset(out, 0, sizeof *out);
    out->has_user = true;
    if (keeps_content_type(c))
        sky_objmeta_set(&out->content_type, mime_type_for(path));  /* NULL if out of memory */
}

/* The metadata of the object behind `ent` from the cloud (one get_meta)
 * into *cloud: 0, 1 when there is nothing to keep (no such file), 2 when
 * it cannot be known (no get_meta, or refused: after a warning), or the
 * driver's negative errno (e filled) when asking failed and may work
 * later.  An answer about the version the cache has is stored, so the next
 * upload of it (the end of a stream) asks nothing. */
static int ask_cloud(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                     const char *path, struct sky_objmeta *cloud, struct sky_err *err)
{
    memset(cloud, 0, sizeof *cloud);
    if (!c->drv->get_meta || !c->ctx)
        return 2;
    struct sky_attr a;
    struct sky_err e = { 0 };
    int64_t asked = skyfs_now();
    int rc = c->drv->get_meta(c->ctx, path, &a, cloud, &e);
    cloud_note_result(c, rc, &e);
    if (rc == -ENOENT)
        return 1;
    if (rc == -EACCES || rc == -EPERM) {
        LOG_WARN("cloud '%s': \"%s\" is uploaded without its previous user metadata, which "
                 "could not be read: %s", c->cfg->name, path, e.msg);
        return 2;
    }
    if (rc) {
        *err = e;
        sky_err_prefix(err, "reading the metadata to keep before uploading");
        return rc;
    }
    if (a.kind != SKY_FILE) {
        sky_objmeta_free(cloud);        /* no longer a file: nothing to keep */
        return 1;
    }
    if (ent->ino && strcmp(a.etag, ent->attr.etag) == 0 &&
        meta_set_objmeta(fs->meta, ent->ino, NULL, cloud, asked, &e) != 0 && e.code != ENOENT)
        LOG_WARN("%s", e.msg);
    return 0;
}

/* What the cache knows of entry `ino` (0 = no entry), without the storage
 * class: *known true when it has the complete user metadata. */
static void from_cache(struct skyfs *fs, uint64_t ino, struct sky_objmeta *out, bool *known)
{
    *known = false;
    if (ino == 0 || meta_get_objmeta(fs->meta, ino, out, NULL, NULL) != 0) {
        memset(out, 0, sizeof *out);
        return;
    }
    *known = out->has_user;
    sky_objmeta_set(&out->storage_class, NULL);
}

/* Keep only m's content type. */
static void drop_user_items(struct sky_objmeta *m)
{
    char *type = m->content_type;
    m->content_type = NULL;
    sky_objmeta_free(m);
    m->content_type = type;
}

int upmeta_for_upload(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                      const char *path, struct sky_objmeta *out, struct sky_err *e)
{
    bool known;
    from_cache(fs, ent->ino, out, &known);
    if (!known && ent->attr.etag[0]) {
        /* the object exists and the cache does not know its user metadata */
        struct sky_objmeta cloud;
        int rc = ask_cloud(fs, c, ent, path, &cloud, e);
        if (rc < 0) {
            sky_objmeta_free(out);
            return rc;
        }
        if (rc == 0) {
            if (!cloud.content_type) {
                cloud.content_type = out->content_type;
                out->content_type = NULL;
            }
            sky_objmeta_set(&cloud.storage_class, NULL);
            sky_objmeta_free(out);
            *out = cloud;
        } else if (rc == 1) {
            drop_user_items(out);       /* gone meanwhile: nothing to keep */
        }   /* else: the items the cache has, if any (our own setxattr) */
    }
    out->has_user = true;   /* the new object has exactly these items */
    if (!keeps_content_type(c))
        sky_objmeta_set(&out->content_type, NULL);
    else if (!out->content_type)
        sky_objmeta_set(&out->content_type, mime_type_for(path));  /* NULL if out of memory */
    return 0;
}

void upmeta_record(struct skyfs *fs, uint64_t ino, const struct sky_attr *attr,
                   const struct sky_objmeta *om)
{
    struct sky_err e = { 0 };
    int rc = meta_set_objmeta(fs->meta, ino, attr, om, skyfs_now(), &e);
    if (rc != 0 && rc != -ENOENT)
        LOG_WARN("%s", e.msg);
    if (rc == 0 && attr && attr->file_id && attr->nlink > 1) {
        struct meta_entry ent;
        if (meta_get(fs->meta, ino, &ent, NULL) == 0) {
            skyfs_same_file_changed(fs, ent.cloud, ino, attr);  /* hard links */
            meta_entry_free(&ent);
        }
    }
}
