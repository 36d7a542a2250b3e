/*
 * ops_xattr.c - the FUSE extended attribute operations: getxattr,
 * listxattr, setxattr, removexattr.
 *
 * Names of the kernel's own namespaces (security., system., trusted.) are
 * answered here as absent; names under the hidden .skyfs directory by
 * virtual.c; `user.skyfs.evict` asks the block cache to drop data (skyfs
 * cache evict); every other name by xattr.c, which keeps the metadata
 * cache in step.  A change of an attribute moves the entry's ctime
 * (times.c).  Part of fs/ops.c's operation table (ops.h).
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "skyfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "localdirs.h"
#include "ops.h"
#include "virtual.h"

static struct skyfs *skyfs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static bool is_kernel_xattr(const char *name)
{
    return strncmp(name, "security.", 9) == 0 || strncmp(name, "system.", 7) == 0 ||
           strncmp(name, "trusted.", 8) == 0;
}

/* Reply to getxattr/listxattr: the length when size is 0, else the bytes. */
static void reply_xattr(fuse_req_t req, int rc, const char *buf, size_t len, size_t size,
                        const struct sky_err *e)
{
    if (rc == -ERANGE)
        fuse_reply_err(req, ERANGE);      /* the caller asks again, bigger */
    else if (rc)
        reply_err(req, rc, e);
    else if (size == 0)
        fuse_reply_xattr(req, len);
    else
        fuse_reply_buf(req, buf, len);
}

static void getxattr_virtual(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct sky_err e = { 0 };
    char *value = NULL;
    size_t len = 0;
    int rc = virt_getxattr(skyfs_of(req), ino, name, &value, &len, &e);
    if (rc == 0 && size && size < len)
        rc = -ERANGE;
    reply_xattr(req, rc, value, len, size, &e);
    free(value);
}

void sky_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    if (is_kernel_xattr(name)) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    if (virt_is(ino)) {
        getxattr_virtual(req, ino, name, size);
        return;
    }
    struct sky_err e = { 0 };
    char *buf = size ? malloc(size) : NULL;
    size_t len = 0;
    /* a folder not on the cloud yet is created first (localdirs.h) */
    int rc = size && !buf ? -ENOMEM : localdirs_ensure_ino(skyfs_of(req), ino, &e);
    if (!rc)
        rc = xattr_get(skyfs_of(req), ino, name, buf, size, &len, &e);
    reply_xattr(req, rc, buf, len, size, &e);
    free(buf);
}

void sky_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct sky_err e = { 0 };
    char *buf = size ? malloc(size) : NULL;
    size_t len = 0;
    int rc = virt_is(ino) ? -ENOTSUP
             : size && !buf ? -ENOMEM : localdirs_ensure_ino(skyfs_of(req), ino, &e);
    if (!rc)
        rc = xattr_list(skyfs_of(req), ino, buf, size, &len, &e);
    if (rc == -ENOTSUP) {               /* nothing to list is not an error */
        rc = 0;
        len = 0;
    }
    reply_xattr(req, rc, buf, len, size, &e);
    free(buf);
}

/* user.skyfs.evict = TOKEN on a file or directory: drop the cached data
 * of the files at or under it (all clouds at the mount root), keeping
 * open files and files not uploaded yet; the figures are kept under TOKEN
 * for `skyfs cache evict` to read (virtual.h).  Works on any cloud, also
 * read-only or offline ones: only the local cache changes. */
#define EVICT_XATTR "user.skyfs.evict"

static int evict_inode(struct skyfs *fs, fuse_ino_t ino, struct blocks_evicted *done,
                       struct sky_err *e)
{
    if (virt_is(ino))
        return sky_fail(e, EINVAL, "%s: nothing is cached under .skyfs", EVICT_XATTR);
    struct meta_entry ent;
    int rc = meta_get(fs->meta, ino, &ent, e);
    if (rc)
        return rc;
    if (ino == META_ROOT_INO) {
        for (size_t i = 0; rc == 0 && i < fs->nclouds; i++)
            rc = blocks_evict_under(fs->blocks, fs->clouds[i].cfg->name, "", true, done, e);
    } else {
        rc = blocks_evict_under(fs->blocks, ent.cloud, ent.path, ent.attr.kind == SKY_DIR,
                                done, e);
    }
    meta_entry_free(&ent);
    return rc;
}

static void setxattr_evict(fuse_req_t req, fuse_ino_t ino, const char *value, size_t size)
{
    struct skyfs *fs = skyfs_of(req);
    struct sky_err e = { 0 };
    struct blocks_evicted done = { 0 };
    int rc = evict_inode(fs, ino, &done, &e);
    if (rc == 0) {
        LOG_INFO("evicted %llu files (%llu bytes) from the block cache; %llu skipped (open or "
                 "not uploaded yet)", (unsigned long long)done.files,
                 (unsigned long long)done.bytes, (unsigned long long)done.skipped);
        virt_note_evicted(fs->virt, value, size, &done);
    }
    reply_err(req, rc, rc ? &e : NULL);
}

void sky_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                         size_t size, int flags)
{
    struct sky_err e = { 0 };
    if (!is_kernel_xattr(name) && !virt_is(ino) && strcmp(name, EVICT_XATTR) == 0) {
        setxattr_evict(req, ino, value, size);
        return;
    }
    int64_t atime = virt_is(ino) ? 0 : times_atime(skyfs_of(req), ino);
    /* not in the middle of a background upload of the file (which sends
     * the cloud metadata the cache had when it began) */
    struct ofile *held = virt_is(ino) ? NULL : files_hold_upload(skyfs_of(req), ino);
    int rc = is_kernel_xattr(name) ? -ENOTSUP
             : virt_is(ino) ? -EROFS : localdirs_ensure_ino(skyfs_of(req), ino, &e);
    if (!rc)
        rc = xattr_set(skyfs_of(req), ino, name, value, size, flags, &e);
    files_release_upload(skyfs_of(req), held);
    if (rc == 0 && strncmp(name, "user.skyfs.", 11) != 0)
        times_meta_changed(skyfs_of(req), ino, atime);
    reply_err(req, rc, rc ? &e : NULL);
}

void sky_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct sky_err e = { 0 };
    int64_t atime = virt_is(ino) ? 0 : times_atime(skyfs_of(req), ino);
    struct ofile *held = virt_is(ino) ? NULL : files_hold_upload(skyfs_of(req), ino);
    int rc = is_kernel_xattr(name) ? -ENODATA
             : virt_is(ino) ? -EROFS : localdirs_ensure_ino(skyfs_of(req), ino, &e);
    if (!rc)
        rc = xattr_remove(skyfs_of(req), ino, name, &e);
    files_release_upload(skyfs_of(req), held);
    if (rc == 0)
        times_meta_changed(skyfs_of(req), ino, atime);
    reply_err(req, rc, rc ? &e : NULL);
}
