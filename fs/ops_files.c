/*
 * ops_files.c - the FUSE file operations: create, mknod, open, read,
 * write_buf, flush, fsync and release, on the open files of files.c and
 * the block cache.  Part of fs/ops.c's operation table (ops.h).
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "skyfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../lib/log.h"
#include "localdirs.h"
#include "openahead.h"
#include "ops.h"
#include "readahead.h"
#include "virtual.h"

/* A new file is not created on the cloud: the cache holds it, marked
 * local-only, as an empty object dirty in the block cache's journal (so a
 * crash before its upload loses nothing), and its upload creates it: at
 * its close on a write_back = sync cloud (even when nothing was written),
 * queued after it on an async one.  One request (with a head compare on
 * a server without preconditions, two) instead of an empty object at
 * create and the file at close, and no other machine ever lists it empty
 * while it is written.  *ofp gets it open (a reference) when not NULL;
 * else (mknod) it goes up at once (sync) or is queued (async), as a
 * closed file. */
static int defer_create(struct skyfs *fs, struct meta_entry *ent, struct ofile **ofp,
                        struct sky_err *e)
{
    struct ofile *of;
    int rc = files_open_new(fs, ent, &of, e);   /* journals the empty new file */
    if (rc)
        return rc;
    rc = files_truncate(fs, of, 0, e);
    if (rc == 0) {                  /* created, not modified: its times stay as made */
        pthread_mutex_lock(&of->lock);
        of->mtime_ns = ent->attr.mtime_ns;
        of->ctime_ns = ent->attr.ctime_ns ? ent->attr.ctime_ns : ent->attr.mtime_ns;
        pthread_mutex_unlock(&of->lock);
    }
    if (rc == 0 && !ofp)
        rc = files_closed_written(fs, of, e);
    if (rc == 0 && ofp)
        *ofp = of;
    else
        files_close(fs, of);
    return rc;
}

/* Create an empty file `name` in `parent`, in the cache until its upload
 * (defer_create); *ent receives its entry, *c its cloud, and *ofp (when
 * not NULL) the open file. */
static int new_file(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                    struct meta_entry *ent, struct cloud **c, struct ofile **ofp,
                    struct sky_err *e)
{
    struct skyfs *fs = ops_fs(req);
    struct meta_entry dir;
    char *path;
    int rc = ops_prepare_new(fs, parent, name, &dir, c, &path, e);
    if (rc)
        return rc;
    struct sky_attr a;
    struct sky_objmeta om;
    ops_new_attr(req, SKY_FILE, mode, &a);
    upmeta_for_new(*c, path, &om);
    if (ofp)
        *ofp = NULL;
    /* what the cloud would refuse by the place alone, refused now */
    if ((*c)->drv->file_allowed)
        rc = (*c)->drv->file_allowed((*c)->ctx, path, e);
    /* the entry, its cloud metadata (the index knows it: its first upload
     * asks nothing) and local-only, in one commit */
    uint64_t ino;
    if (!rc)
        rc = times_create_local(fs, parent, name, &a, &om, &ino, e);
    if (!rc)
        rc = meta_get(fs->meta, ino, ent, e);
    if (!rc) {
        rc = defer_create(fs, ent, ofp, e);
        if (rc) {
            meta_remove(fs->meta, ent->ino, NULL);
            meta_entry_free(ent);
        }
    }
    sky_objmeta_free(&om);
    free(path);
    meta_entry_free(&dir);
    return rc;
}

void sky_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                struct fuse_file_info *fi)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct meta_entry ent;
    struct cloud *c;
    struct ofile *of;
    int rc = new_file(req, parent, name, mode, &ent, &c, &of, &e);
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    /* of is open already.  It goes up even when nothing is written: at
     * its release on a sync cloud (not at a close before any write: a
     * shell's `>` closes its first descriptor after a dup2), queued at its
     * first close on an async one. */
    struct fuse_entry_param p;
    ops_fill_entry(fs, &ent, c, &p);
    if (ops_handle_new(fs, fi, of, c->cfg->write_back_async) != 0) {
        files_close(fs, of);
        reply_err(req, -ENOMEM, NULL);
        meta_entry_free(&ent);
        return;
    }
    ops_handle(fi)->made = true;
    pthread_mutex_lock(&of->lock);
    of->meta_unsynced = true;           /* its entry: its mode, owner, name */
    pthread_mutex_unlock(&of->lock);
    if (fuse_reply_create(req, &p, fi) != 0) {
        handle_free(fs, ops_handle(fi));
        files_close(fs, of);
    }
    meta_entry_free(&ent);
}

/* SKY_FIFO, SKY_SOCK, SKY_CHR or SKY_BLK for a mode of one of those, else 0. */
static enum sky_kind special_kind(mode_t mode)
{
    int k = sky_kind_of_mode(mode);
    return sky_kind_special(k) ? (enum sky_kind)k : 0;
}

/* A FIFO, socket or device node: the driver makes it (a real node, or an
 * empty object whose mode says what it is); the kernel has already
 * refused devices to callers without CAP_MKNOD. */
static int new_special(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                       dev_t rdev, struct meta_entry *ent, struct cloud **c, struct sky_err *e)
{
    struct skyfs *fs = ops_fs(req);
    struct meta_entry dir;
    char *path;
    int rc = ops_prepare_new(fs, parent, name, &dir, c, &path, e);
    if (rc)
        return rc;
    struct sky_attr a, out;
    ops_new_attr(req, special_kind(mode), mode, &a);
    if (a.kind == SKY_CHR || a.kind == SKY_BLK)
        a.rdev = rdev;
    if (!(*c)->drv->mknod) {
        rc = sky_fail(e, EPERM, "cloud '%s' cannot hold special files", (*c)->cfg->name);
    } else if (dir.local_only && (rc = localdirs_ensure(fs, *c, parent, e)) != 0) {
        /* its folder, made here, could not be created first */
    } else {
        rc = (*c)->drv->mknod((*c)->ctx, path, &a, &out, e);
        cloud_note_result(*c, rc, e);
    }
    if (!rc)
        rc = ops_add_child(fs, parent, name, &out, NULL, ent, e);
    free(path);
    meta_entry_free(&dir);
    return rc;
}

void sky_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
               dev_t rdev)
{
    struct sky_err e = { 0 };
    struct meta_entry ent;
    struct cloud *c;
    int rc;
    if (special_kind(mode))
        rc = new_special(req, parent, name, mode, rdev, &ent, &c, &e);
    else if (S_ISREG(mode) || !(mode & S_IFMT))
        rc = new_file(req, parent, name, mode, &ent, &c, NULL, &e);
    else
        rc = -EINVAL;
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    ops_reply_entry(req, ops_fs(req), &ent, c);
    meta_entry_free(&ent);
}

/* Once, at the first open (the FUSE handshake is over by then, and it
 * would undo it): let the kernel read further ahead (readahead.h). */
static void raise_readahead_once(struct skyfs *fs)
{
    if (!*fs->mountpoint || atomic_exchange(&fs->readahead_raised, true))
        return;
    struct sky_err e = { 0 };
    if (readahead_raise(fs->mountpoint, READAHEAD_KIB, &e) == 0)
        LOG_DEBUG("kernel readahead of %s: at least %u KiB", fs->mountpoint, READAHEAD_KIB);
    else
        LOG_INFO("kernel readahead stays as it is (%s); sequential reads may be slower",
                 e.msg);
}

/* .skyfs/metrics: the text rendered now, kept by the handle; direct_io
 * since its size is known only now. */
static void open_virtual(fuse_req_t req, struct skyfs *fs, fuse_ino_t ino,
                         struct fuse_file_info *fi)
{
    struct sky_err e = { 0 };
    struct fhandle *h = calloc(1, sizeof *h);
    int rc = h ? virt_open_file(fs, ino, fi->flags, &h->virt_text, &h->virt_len, &e) : -ENOMEM;
    if (rc) {
        free(h);
        reply_err(req, rc, &e);
        return;
    }
    handle_link(fs, h);
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1;
    if (fuse_reply_open(req, fi) != 0)
        handle_free(fs, h);
}

/* The block cache cannot take the file (its disk is full: why): a
 * read-only open still works, reading straight from the cloud. */
static void open_direct(fuse_req_t req, struct skyfs *fs, struct fuse_file_info *fi,
                        struct cloud *c, const struct meta_entry *ent, const struct sky_err *why)
{
    size_t plen = strlen(ent->path) + 1;
    struct direct_src *d = malloc(sizeof *d + plen);
    struct fhandle *h = NULL;
    if (!d || ops_handle_new(fs, fi, NULL, false) != 0) {
        free(d);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    h = ops_handle(fi);
    d->cloud = c;
    memcpy(d->etag, ent->attr.etag, sizeof d->etag);
    memcpy(d->path, ent->path, plen);
    h->direct = d;
    LOG_WARN("cloud '%s': reading \"%s\" straight from the cloud, without the cache: %s",
             c->cfg->name, ent->path, why->msg);
    fi->keep_cache = 0;
    if (fuse_reply_open(req, fi) != 0)
        handle_free(fs, h);
}

void sky_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    if (virt_is(ino)) {
        open_virtual(req, fs, ino, fi);
        return;
    }
    raise_readahead_once(fs);
    struct meta_entry ent;
    struct cloud *c;
    int rc = ops_load(fs, ino, &ent, &c, &e);
    if (rc) {
        reply_err(req, rc, &e);
        return;
    }
    bool writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
    if (ent.attr.kind == SKY_DIR)
        rc = sky_fail(&e, EISDIR, "is a directory");
    else if (!c)
        rc = -EISDIR;
    else if (!c->ctx)
        rc = cloud_unavailable(c, &e);
    else if (writing)
        rc = cloud_check_writable(c, &e);
    struct ofile *of = NULL;
    if (!rc)
        rc = files_open(fs, &ent, &of, &e);
    if (rc == -ENOSPC && !writing && !ent.local_only && ent.attr.etag[0]) {
        /* the cache's disk is full, and the file is a version on the cloud
         * (not one made or written here: that would be in the cache) */
        open_direct(req, fs, fi, c, &ent, &e);
        meta_entry_free(&ent);
        return;
    }
    if (!rc && (fi->flags & O_TRUNC)) {
        rc = files_truncate(fs, of, 0, &e);
        if (rc)
            files_close(fs, of);
    }
    if (!rc && ops_handle_new(fs, fi, of, (fi->flags & O_TRUNC) != 0) != 0) {
        files_close(fs, of);
        rc = -ENOMEM;
    }
    if (rc) {
        reply_err(req, rc, &e);
    } else {
        /* The kernel keeps its cached pages while the version is unchanged;
         * a file with local writes not yet uploaded is re-read. */
        pthread_mutex_lock(&of->lock);
        bool dirty = blocks_is_dirty(of->obj);
        char etag[SKY_ETAG_MAX];
        memcpy(etag, dirty ? "" : of->etag, dirty ? 1 : sizeof etag);
        pthread_mutex_unlock(&of->lock);
        fi->keep_cache = files_page_cache_valid(fs, ino, etag);
        /* a read that moves the atime must reach us, not the page cache */
        if (fi->keep_cache && (fi->flags & O_ACCMODE) != O_WRONLY && times_access_due(fs, of))
            fi->keep_cache = 0;
        if (fuse_reply_open(req, fi) != 0) {
            handle_free(fs, ops_handle(fi));
            files_close(fs, of);
        } else if (!writing) {
            openahead_opened(fs, c, &ent);      /* the next files of its folder, maybe */
        }
    }
    meta_entry_free(&ent);
}

/* blocks_emit_fn: reply to a read with the bytes where they sit in the
 * cache file; libfuse splices them to the kernel (FUSE_CAP_SPLICE_WRITE)
 * or, for small replies, copies them. */
static void reply_from_file(void *arg, int fd, uint64_t off, size_t n)
{
    fuse_req_t req = arg;
    if (n == 0) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    struct fuse_bufvec bv = FUSE_BUFVEC_INIT(n);
    bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    bv.buf[0].fd = fd;
    bv.buf[0].pos = (off_t)off;
    fuse_reply_data(req, &bv, 0);       /* spliced, copied by the kernel (sky_init) */
}

/* Reply to a read with bytes straight from the cloud, bypassing the block
 * cache: of a direct handle, or of open file `of` whose blocks the cache
 * has no room for. */
static void reply_from_cloud(fuse_req_t req, const struct direct_src *d, struct ofile *of,
                             uint64_t off, size_t size)
{
    struct sky_err e = { 0 };
    char *buf = malloc(size ? size : 1);
    size_t got = 0;
    int rc = !buf ? -ENOMEM
             : d  ? files_read_direct(d->cloud, d->path, d->etag, off, size, buf, &got, &e)
                  : files_read_uncached(of, off, size, buf, &got, &e);
    if (rc == 0)
        fuse_reply_buf(req, buf, got);
    else
        reply_err(req, rc == -ESTALE ? -EIO : rc, &e);
    free(buf);
}

void sky_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
              struct fuse_file_info *fi)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct fhandle *h = ops_handle(fi);
    if (h->direct) {
        reply_from_cloud(req, h->direct, NULL, (uint64_t)off, size);
        return;
    }
    if (!h->of) {                       /* a virtual file */
        size_t start = off < 0 || (uint64_t)off > h->virt_len ? h->virt_len : (size_t)off;
        size_t n = h->virt_len - start < size ? h->virt_len - start : size;
        /* Reply from a copy of our own: once the reply is written the
         * reader may close and its release free virt_text while this
         * thread is still inside the write (ASan checks the buffer after
         * writev returns). */
        char *copy = n ? malloc(n) : NULL;
        if (n && !copy) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        if (n)
            memcpy(copy, h->virt_text + start, n);
        fuse_reply_buf(req, copy, n);
        free(copy);
        return;
    }
    /* the atime moves before the reply, so a stat after the read sees it
     * (the kernel is told its copy of the attributes is stale) */
    if (times_accessed(fs, ops_ofile(fi)) && fs->session)
        fuse_lowlevel_notify_inval_inode(fs->session, ino, -1, 0);
    int rc = files_read(fs, ops_ofile(fi), (uint64_t)off, size, reply_from_file, req, &e);
    if (rc == -ESTALE && files_take_newer(fs, ops_ofile(fi), &e) == 0) {
        /* opened at a version the cloud no longer holds, none of it read:
         * the new one is read, and its size asked for again */
        if (fs->session)
            fuse_lowlevel_notify_inval_inode(fs->session, ino, -1, 0);
        rc = files_read(fs, ops_ofile(fi), (uint64_t)off, size, reply_from_file, req, &e);
    }
    if (rc == -ENOSPC)                  /* no room to cache what it reads */
        reply_from_cloud(req, NULL, ops_ofile(fi), (uint64_t)off, size);
    else if (rc)
        reply_err(req, rc == -ESTALE ? -EIO : rc, &e);
}

/* blocks_copy_fn: the bytes of a write, in memory or (spliced from the
 * kernel) in a pipe, into the cache file at `at`. */
static int copy_write_data(void *arg, int fd, uint64_t at, size_t len)
{
    struct fuse_bufvec *src = arg;
    struct fuse_bufvec dst = FUSE_BUFVEC_INIT(len);
    dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    dst.buf[0].fd = fd;
    dst.buf[0].pos = (off_t)at;
    ssize_t n = fuse_buf_copy(&dst, src, 0);
    if (n < 0)
        return (int)n;
    return (size_t)n == len ? 0 : -EIO;
}

/* A large write's bytes arrived in this FUSE thread's request buffer (no
 * splice: the kernel refused a pipe that large, when fs.pipe-max-size is
 * too small for skyfs_request_size() plus a page): give its pages back, or
 * every FUSE thread would keep the pages of the last large write it
 * served.
 * The next request fills the buffer again (libfuse reads into it); the
 * pages are then faulted in only as far as that request is long. */
static void drop_request_pages(const struct fuse_bufvec *bufv, size_t size)
{
    if ((bufv->buf[0].flags & FUSE_BUF_IS_FD) || size < (256u << 10))
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)bufv->buf[0].mem + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)bufv->buf[0].mem + size) & ~(page - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}

/* Writes: the data comes in a pipe (zero copy, FUSE_CAP_SPLICE_READ) or
 * in memory. */
void sky_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
                   struct fuse_file_info *fi)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct ofile *of = ops_ofile(fi);
    size_t size = fuse_buf_size(bufv);
    atomic_store(&ops_handle(fi)->wrote, true);
    /* An append goes at the end of the file as this daemon has it: the
     * kernel placed it by the size it knows, which is older when the file
     * took a newer version from the cloud (below: its first write) */
    bool append = fi->flags & O_APPEND;
    uint64_t at = append ? blocks_size(of->obj) : (uint64_t)off;
    int rc = cloud_check_writable(of->cloud, &e);
    if (!rc)
        rc = files_write(fs, of, at, size, copy_write_data, bufv, &e);
    if (rc == -ESTALE && files_take_newer(fs, of, &e) == 0) {
        /* opened at a version the cloud no longer holds, none of it read
         * or written (the write copied nothing yet): it goes into the new
         * version, an append at the new end */
        at = append ? blocks_size(of->obj) : (uint64_t)off;
        rc = files_write(fs, of, at, size, copy_write_data, bufv, &e);
    }
    drop_request_pages(bufv, size);
    if (rc)
        reply_err(req, rc == -ESTALE ? -EIO : rc, &e);
    else
        fuse_reply_write(req, size);
    if (at != (uint64_t)off && fs->session)     /* the kernel's size is not the file's */
        fuse_lowlevel_notify_inval_inode(fs->session, ino, -1, 0);
}

/* Upload at close (write_back = async: queue the upload): only what this
 * descriptor changed (a reader's close leaves a writer's pending upload
 * to the writer and the journal). */
void sky_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    int rc = atomic_load(&ops_handle(fi)->wrote) && ops_handle(fi)->of
             ? files_closed_written(fs, ops_ofile(fi), &e) : 0;
    if (rc) {
        LOG_ERROR("upload failed, kept in the journal for retry: %s", e.msg);
        files_retry_soon(fs);
    }
    fuse_reply_err(req, -rc);
}

void sky_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    int rc = ops_handle(fi)->of ? files_sync(fs, ops_ofile(fi), &e) : 0;
    if (rc) {
        LOG_ERROR("upload failed, kept in the journal for retry: %s", e.msg);
        files_retry_soon(fs);
    }
    fuse_reply_err(req, -rc);
}

void sky_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct skyfs *fs = ops_fs(req);
    struct sky_err e = { 0 };
    struct fhandle *h = ops_handle(fi);
    struct ofile *of = h->of;
    if (!of) {                          /* a virtual file, or read past the cache */
        handle_free(fs, h);
        fuse_reply_err(req, 0);
        return;
    }
    if ((atomic_load(&h->wrote) || h->made) && files_closed_written(fs, of, &e) != 0) {
        LOG_ERROR("upload at close failed, kept in the journal for retry: %s", e.msg);
        files_retry_soon(fs);
    }
    files_close(fs, of);
    handle_free(fs, h);
    fuse_reply_err(req, 0);
}
