/*
 * xattr.c - extended attributes of files and directories in the clouds
 * (declared in skyfs.h).
 *
 * Reads are answered from the cloud metadata the metadata cache keeps for
 * each entry (meta_get_objmeta): user metadata shows as user.KEY, and
 * three read-only names show what else the cloud says of the object:
 *
 *   user.skyfs.etag           its version (the entry's etag)
 *   user.skyfs.content_type   its Content-Type, where the cloud has one
 *   user.skyfs.storage_class  its storage class or access tier
 *
 * The cache's copy is used while it is fresh (fetched within the cloud's
 * ttl, as every other attribute); otherwise one get_meta call (one HEAD on
 * object stores) refreshes it, so `getfattr -d` costs at most one request
 * instead of one per attribute.  A cloud that cannot be reached is
 * answered from the cache.  After setxattr/removexattr succeeds in the
 * cloud, get_meta is called again and its answer stored, so the index
 * holds exactly what the cloud now keeps (S3 and Azure lowercase names;
 * Azure gives the object a new etag), and `skyfs search --meta` sees it at
 * once.
 *
 * A driver without get_meta keeps the old path: its getxattr/listxattr
 * answer user.*, and the virtual names come from what listings stored.
 */
#include "skyfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "../lib/log.h"

#define XATTR_USER        "user."
#define XATTR_ETAG        "user.skyfs.etag"
#define XATTR_CTYPE       "user.skyfs.content_type"
#define XATTR_STORAGE     "user.skyfs.storage_class"

static bool is_virtual_name(const char *name)
{
    return strcmp(name, XATTR_ETAG) == 0 || strcmp(name, XATTR_CTYPE) == 0 ||
           strcmp(name, XATTR_STORAGE) == 0;
}

static bool is_user_name(const char *name)
{
    return strncmp(name, XATTR_USER, 5) == 0 && name[5];
}

/* Entry `ino` and its cloud, which must be open and have xattrs. */
static int load_target(struct skyfs *fs, uint64_t ino, struct meta_entry *ent, struct cloud **c,
                       struct sky_err *e)
{
    int rc = meta_get(fs->meta, ino, ent, e);
    if (rc)
        return rc;
    *c = skyfs_cloud_by_name(fs, ent->cloud);
    if (*c && (*c)->ctx && ((*c)->drv->getxattr || (*c)->drv->get_meta))
        return 0;
    rc = *c && !(*c)->ctx ? cloud_unavailable(*c, e) : -ENOTSUP;
    meta_entry_free(ent);
    return rc;
}

/* Ask the cloud (get_meta) and store the answer; *out gets it. */
static int fetch_meta_attr(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                           bool own_edit, struct sky_objmeta *out, struct sky_attr *attr,
                           struct sky_err *e);
static int fetch_meta(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                      struct sky_objmeta *out, struct sky_err *e)
{
    struct sky_attr a;
    return fetch_meta_attr(fs, c, ent, false, out, &a, e);
}

/* fetch_meta, also giving the attributes the cloud reported (*attr).
 * `own_edit`: the answer is the result of the mount's own edit of the
 * object's metadata (stored as an upload's result), not news. */
static int fetch_meta_attr(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                           bool own_edit, struct sky_objmeta *out, struct sky_attr *attr,
                           struct sky_err *e)
{
    struct sky_attr a;
    int64_t asked = skyfs_now();
    int rc = cloud_offline_check(c, e);
    if (rc)
        return rc;
    rc = c->drv->get_meta(c->ctx, ent->path, &a, out, e);
    cloud_note_result(c, rc, e);
    if (rc)
        return rc;
    struct sky_err se = { 0 };
    if ((own_edit ? meta_set_objmeta : meta_cloud_objmeta)(fs->meta, ent->ino, &a, out, asked,
                                                           &se) != 0)
        LOG_WARN("%s", se.msg);         /* the answer is still good to give */
    *attr = a;
    return 0;
}

/* Does a pending upload of file `ent` (open as `of`, or NULL) carry its
 * user metadata, so that the cache, not the cloud, has it right?  A file
 * made here and not uploaded yet, or (write_back = async) one with an
 * upload queued or due. */
static bool carried_by_upload(const struct cloud *c, const struct meta_entry *ent,
                              struct ofile *of)
{
    return ent->attr.kind == SKY_FILE &&
           (ent->local_only || (c->cfg->write_back_async && of && files_upload_pending(of)));
}

static bool upload_carries(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent)
{
    struct ofile *of = files_find(fs, ent->ino);
    bool carried = carried_by_upload(c, ent, of);
    if (of)
        files_close(fs, of);
    return carried;
}

/* A user.* change of a file whose pending upload carries its metadata
 * (upload_carries, asked with its upload lock held: sky_setxattr and
 * sky_removexattr take it; and the cache knows
 * its user metadata): answered and recorded in the cache alone; the
 * upload sends it.  1 when not such a file (the cloud is asked). */
static int change_carried(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                          const char *name, const void *value, size_t size, int flags,
                          struct sky_err *e)
{
    if (!is_user_name(name) || !c->drv->get_meta ||
        (!c->cfg->write_back_async && !ent->local_only) || ent->attr.kind != SKY_FILE)
        return 1;
    struct ofile *held = files_find(fs, ent->ino);  /* its upload lock: ops_xattr.c's */
    struct meta_entry now;
    int rc = 1;
    if (meta_get(fs->meta, ent->ino, &now, NULL) == 0) {
        bool carried = carried_by_upload(c, &now, held);
        struct sky_objmeta om;
        if (carried && meta_get_objmeta(fs->meta, ent->ino, &om, NULL, NULL) == 0) {
            if (om.has_user) {
                bool exists = sky_objmeta_find(&om, name + 5) != NULL;
                if (value && (flags & XATTR_CREATE) && exists)
                    rc = sky_fail(e, EEXIST, "cloud '%s': %s: attribute %s exists",
                                  c->cfg->name, ent->path, name);
                else if ((!value || (flags & XATTR_REPLACE)) && !exists)
                    rc = sky_fail(e, ENODATA, "cloud '%s': %s: no attribute %s",
                                  c->cfg->name, ent->path, name);
                else
                    rc = meta_set_user_item(fs->meta, ent->ino, name + 5, value, size, e);
            }
            sky_objmeta_free(&om);
        }
        meta_entry_free(&now);
    }
    if (held)
        files_close(fs, held);
    return rc;
}

/* The entry's cloud metadata as of now: the cache's while fresh (or when
 * the cloud has no get_meta, or is offline and the cache knows it), else
 * the cloud's.  Free *out with sky_objmeta_free. */
static int current_meta(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                        struct sky_objmeta *out, struct sky_err *e)
{
    int64_t at = 0;
    int rc = meta_get_objmeta(fs->meta, ent->ino, out, &at, e);
    if (rc || !c->drv->get_meta || skyfs_fresh(at, c->cfg->ttl_ns) ||
        (out->has_user && upload_carries(fs, c, ent)))
        return rc;
    struct sky_objmeta cloud;
    rc = fetch_meta(fs, c, ent, &cloud, e);
    if (rc == -EHOSTDOWN && at > 0) {
        LOG_WARN("cloud '%s' unreachable, serving cached metadata of \"%s\": %s", c->cfg->name,
                 ent->path, e->msg);
        return 0;
    }
    sky_objmeta_free(out);
    if (rc == 0)
        *out = cloud;
    return rc;
}

/* getxattr(2)'s answer: the length, or the bytes when they fit. */
static int copy_value(const void *value, size_t vlen, void *buf, size_t size, size_t *len)
{
    *len = vlen;
    if (size == 0)
        return 0;
    if (vlen > size)
        return -ERANGE;
    memcpy(buf, value, vlen);
    return 0;
}

/* The value of `name` from the entry and its metadata; -ENODATA if none. */
static int value_of(const struct meta_entry *ent, const struct sky_objmeta *om,
                    const char *name, const char **value, size_t *vlen)
{
    const char *v = NULL;
    size_t n = 0;
    if (strcmp(name, XATTR_ETAG) == 0) {
        v = ent->attr.etag[0] ? ent->attr.etag : NULL;
    } else if (strcmp(name, XATTR_CTYPE) == 0) {
        v = om->content_type;
    } else if (strcmp(name, XATTR_STORAGE) == 0) {
        v = om->storage_class;
    } else {
        const struct sky_meta_item *it = sky_objmeta_find(om, name + 5);
        if (it) {
            *value = it->value;
            *vlen = it->len;
            return 0;
        }
    }
    if (v)
        n = strlen(v);
    *value = v;
    *vlen = n;
    return v ? 0 : -ENODATA;
}

int xattr_get(struct skyfs *fs, uint64_t ino, const char *name, void *buf, size_t size,
              size_t *len, struct sky_err *e)
{
    struct meta_entry ent;
    struct cloud *c;
    int rc = load_target(fs, ino, &ent, &c, e);
    if (rc)
        return rc;
    bool from_meta = strcmp(name, XATTR_ETAG) != 0 && is_user_name(name) &&
                     (c->drv->get_meta || is_virtual_name(name));
    if (from_meta || strcmp(name, XATTR_ETAG) == 0) {
        struct sky_objmeta om = { 0 };
        rc = from_meta ? current_meta(fs, c, &ent, &om, e) : 0;
        const char *v;
        size_t vlen;
        if (rc == 0 && (rc = value_of(&ent, &om, name, &v, &vlen)) == 0)
            rc = copy_value(v, vlen, buf, size, len);
        if (rc == -ENODATA || rc == -ERANGE)
            sky_fail(e, -rc, "cloud '%s': %s: %s %s", c->cfg->name, ent.path,
                     rc == -ERANGE ? "buffer too small for" : "no attribute", name);
        sky_objmeta_free(&om);
    } else if (c->drv->getxattr) {
        rc = c->drv->getxattr(c->ctx, ent.path, name, buf, size, len, e);
        cloud_note_result(c, rc, e);
    } else {
        rc = sky_fail(e, ENODATA, "cloud '%s': %s: no attribute %s", c->cfg->name, ent.path, name);
    }
    meta_entry_free(&ent);
    return rc;
}

/* Append "name\0" (name = prefix + rest) to the list; counts when buf is
 * NULL or full (the caller compares the total with the size). */
static void list_add(char *buf, size_t size, size_t *at, const char *prefix, const char *rest)
{
    size_t pl = strlen(prefix), rl = strlen(rest);
    if (buf && *at + pl + rl + 1 <= size) {
        memcpy(buf + *at, prefix, pl);
        memcpy(buf + *at + pl, rest, rl + 1);
    }
    *at += pl + rl + 1;
}

static void list_virtual(const struct meta_entry *ent, const struct sky_objmeta *om, char *buf,
                         size_t size, size_t *at)
{
    if (ent->attr.etag[0])
        list_add(buf, size, at, XATTR_ETAG, "");
    if (om->content_type)
        list_add(buf, size, at, XATTR_CTYPE, "");
    if (om->storage_class)
        list_add(buf, size, at, XATTR_STORAGE, "");
}

/* The old path: the driver lists user.*, the cache adds the virtual names. */
static int list_by_driver(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                          char *buf, size_t size, size_t *len, struct sky_err *e)
{
    size_t got = 0;
    int rc = c->drv->listxattr ? c->drv->listxattr(c->ctx, ent->path, buf, size, &got, e) : 0;
    if (c->drv->listxattr)
        cloud_note_result(c, rc, e);
    if (rc)
        return rc;
    struct sky_objmeta om;
    rc = meta_get_objmeta(fs->meta, ent->ino, &om, NULL, e);
    if (rc)
        return rc;
    list_virtual(ent, &om, size ? buf : NULL, size, &got);
    sky_objmeta_free(&om);
    *len = got;
    return size && got > size ? -ERANGE : 0;
}

int xattr_list(struct skyfs *fs, uint64_t ino, char *buf, size_t size, size_t *len,
               struct sky_err *e)
{
    struct meta_entry ent;
    struct cloud *c;
    int rc = load_target(fs, ino, &ent, &c, e);
    if (rc)
        return rc;
    if (!c->drv->get_meta) {
        rc = list_by_driver(fs, c, &ent, buf, size, len, e);
    } else {
        struct sky_objmeta om;
        rc = current_meta(fs, c, &ent, &om, e);
        if (rc == 0) {
            size_t at = 0;
            for (size_t i = 0; i < om.nuser; i++)
                list_add(size ? buf : NULL, size, &at, XATTR_USER, om.user[i].key);
            list_virtual(&ent, &om, size ? buf : NULL, size, &at);
            *len = at;
            rc = size && at > size ? -ERANGE : 0;
            sky_objmeta_free(&om);
        }
    }
    if (rc == -ERANGE)
        sky_fail(e, ERANGE, "cloud '%s': %s: attribute list larger than the buffer",
                 c->cfg->name, ent.path);
    meta_entry_free(&ent);
    return rc;
}

/* After a change made in the cloud: store what the cloud now keeps, or at
 * least the one item we know changed. */
static void note_change(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                        const char *name, const void *value, size_t size)
{
    if (!is_user_name(name))
        return;
    struct sky_err e = { 0 };
    struct sky_objmeta om;
    struct sky_attr now;
    if (c->drv->get_meta && fetch_meta_attr(fs, c, ent, true, &om, &now, &e) == 0) {
        sky_objmeta_free(&om);
        /* the edit may have given the object a new version token for the
         * same bytes (Azure; S3's copy onto itself): a pending upload, an
         * open file and the next delete are based on that one now */
        if (ent->attr.kind == SKY_FILE && ent->attr.etag[0] && now.etag[0] &&
            strcmp(ent->attr.etag, now.etag) != 0) {
            blocks_retag(fs->blocks, c->cfg->name, ent->path, ent->attr.etag, now.etag, NULL);
            struct ofile *of = files_find(fs, ent->ino);
            if (of) {
                pthread_mutex_lock(&of->lock);
                if (strcmp(of->etag, ent->attr.etag) == 0)
                    snprintf(of->etag, sizeof of->etag, "%s", now.etag);
                pthread_mutex_unlock(&of->lock);
                files_close(fs, of);
            }
        }
        return;
    }
    if (meta_set_user_item(fs->meta, ent->ino, name + 5, value, size, &e) != 0)
        LOG_WARN("%s", e.msg);
}

/* setxattr (value non-NULL) or removexattr (value NULL). */
static int change(struct skyfs *fs, uint64_t ino, const char *name, const void *value,
                  size_t size, int flags, struct sky_err *e)
{
    if (is_virtual_name(name))
        /* the cloud sets them; setting one (cp -a, mv across clouds,
         * rsync -X) or removing one (rsync -X removes the destination's
         * names its source lacks) is accepted and changes nothing, so
         * those tools work quietly */
        return 0;
    struct meta_entry ent;
    struct cloud *c;
    int rc = load_target(fs, ino, &ent, &c, e);
    if (rc)
        return rc;
    rc = cloud_check_writable(c, e);
    if (rc == 0)
        rc = cloud_offline_check(c, e);
    if (rc == 0 && (value ? !c->drv->setxattr : !c->drv->removexattr))
        rc = sky_fail(e, ENOTSUP, "cloud '%s' cannot change extended attributes", c->cfg->name);
    int carried = rc == 0 ? change_carried(fs, c, &ent, name, value, size, flags, e) : 1;
    if (carried != 1) {
        meta_entry_free(&ent);
        return carried;
    }
    if (rc == 0) {
        rc = value ? c->drv->setxattr(c->ctx, ent.path, name, value, size, flags, e)
                   : c->drv->removexattr(c->ctx, ent.path, name, e);
        cloud_note_result(c, rc, e);
    }
    if (rc == 0)
        note_change(fs, c, &ent, name, value, size);
    meta_entry_free(&ent);
    return rc;
}

int xattr_set(struct skyfs *fs, uint64_t ino, const char *name, const void *value, size_t size,
              int flags, struct sky_err *e)
{
    return change(fs, ino, name, value ? value : "", size, flags, e);
}

int xattr_remove(struct skyfs *fs, uint64_t ino, const char *name, struct sky_err *e)
{
    return change(fs, ino, name, NULL, 0, 0, e);
}
