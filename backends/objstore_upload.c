/*
 * objstore_upload.c - the object-store core's uploads: write() as one put
 * (up to proto->put_max bytes) or a large upload of parts sent
 * OBJSTORE_THREADS at a time (aborted on failure), and streamed uploads
 * (driver.h upload_*) on the same primitives, fed while the file is
 * written.
 *
 * A streamed upload's metadata is fixed when it begins; when the final
 * metadata differs (the writer went on, so its mtime did; or a setxattr
 * meanwhile changed the user metadata), upload_finish rewrites it after
 * completion (the protocol's set_meta, else a self-copy), as chmod does.
 *
 * Called only through the driver table and by objstore_dirs.c
 * (os_store, for symlinks and special files).
 */
#include "objstore_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"

struct sky_attr os_file_attr(const struct sky_attr *attr)
{
    struct sky_attr a = attr ? *attr : (struct sky_attr){0};
    if (!(a.has & SKY_HAS_MTIME)) {
        a.mtime_ns = os_now_ns();
        a.has |= SKY_HAS_MTIME;
    }
    return a;
}

/* ------------------------------------------------------------------ */
/* Large uploads of a whole file                                       */
/* ------------------------------------------------------------------ */

struct parts {
    const struct objstore_proto *proto;
    void *up;
    int fd;
    uint64_t size, part_size;
};

static int part_job(void *arg, size_t i, struct sky_err *e)
{
    struct parts *p = arg;
    uint64_t off = (uint64_t)i * p->part_size;
    uint64_t len = p->size - off < p->part_size ? p->size - off : p->part_size;
    return p->proto->mpu_part(p->up, i, p->fd, off, len, e);
}

/* `size` bytes of fd in parts: begin, the parts in parallel, complete;
 * discarded on failure. */
static int large_upload(struct objstore *o, const struct os_loc *l, const char *key, int fd,
                        uint64_t size, const struct objstore_new *nw, char *etag_out,
                        const char *show, struct sky_err *e)
{
    const struct objstore_proto *pr = o->proto;
    uint64_t part = pr->part_size;
    while ((size + part - 1) / part > pr->max_parts)
        part += 1ull << 20;
    uint64_t nparts = (size + part - 1) / part;
    if (nparts == 0)
        nparts = 1;
    void *up = NULL;
    int rc = pr->mpu_begin(o->p, l->container, key, nw, &up, show, e);
    if (rc < 0)
        return rc;
    struct parts p = { pr, up, fd, size, part };
    rc = parallel_for((size_t)nparts, OBJSTORE_THREADS, part_job, &p, e);
    char etag[SKY_ETAG_MAX] = "";
    if (rc == 0)
        rc = pr->mpu_complete(up, nparts, fd, size, etag, e);
    pr->mpu_end(up, rc < 0);
    if (rc == 0 && etag_out)
        snprintf(etag_out, SKY_ETAG_MAX, "%s", etag);
    return rc;
}

bool os_in_parts(const struct objstore *o, const void *mem, uint64_t size)
{
    return !mem && size > o->proto->put_max && o->proto->mpu_begin;
}

int os_store(struct objstore *o, const struct os_loc *l, const char *key, const void *mem,
             int fd, uint64_t size, const struct objstore_new *nw, char *etag_out,
             const char *show, struct sky_err *e)
{
    if (!os_in_parts(o, mem, size))
        return o->proto->put(o->p, l->container, key, mem, fd, size, nw, etag_out, show, e);
    return large_upload(o, l, key, fd, size, nw, etag_out, show, e);
}

int os_file_meta(const struct objstore *o, const char *show, struct http_headers *meta,
                 const struct sky_attr *a, const struct sky_objmeta *m)
{
    int rc = os_meta_posix(o, meta, SKY_FILE, a, a->has);
    if (rc == 0)
        rc = os_meta_user(o, show, meta, m);
    if (rc < 0)
        http_headers_free(meta);
    return rc;
}

void os_file_attr_out(struct sky_attr *out, const struct sky_attr *a, uint64_t size,
                      const char *etag)
{
    memset(out, 0, sizeof *out);
    out->kind = SKY_FILE;
    out->size = size;
    out->mtime_ns = a->mtime_ns;
    out->atime_ns = a->atime_ns;
    out->ctime_ns = a->ctime_ns;
    out->mode = a->mode & 07777;
    out->uid = a->uid;
    out->gid = a->gid;
    out->has = a->has & (SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME |
                         SKY_HAS_ATIME | SKY_HAS_CTIME);
    snprintf(out->etag, sizeof out->etag, "%s", etag);
}

/* A file at an account's root (a location without a key): refused. */
static int root_refuses_file(struct objstore *o, const char *path, struct sky_err *e)
{
    return OS_FAIL(o, e, EPERM, "%s: only %ss (directories) can be made at the account root",
                   path, o->proto->container_key);
}

int objstore_file_allowed(void *ctx, const char *path, struct sky_err *e)
{
    struct objstore *o = ctx;
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    if (!*l.key)
        rc = root_refuses_file(o, path, e);
    os_loc_free(&l);
    return rc;
}

int objstore_write(void *ctx, const char *path, int fd, uint64_t size,
                   const struct sky_attr *attr, const struct sky_objmeta *meta,
                   struct sky_attr *out, struct sky_err *e)
{
    struct objstore *o = ctx;
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    if (!*l.key) {
        os_loc_free(&l);
        return root_refuses_file(o, path, e);
    }
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    struct sky_attr a = os_file_attr(attr);
    struct http_headers hm = {0};
    if (os_file_meta(o, show, &hm, &a, meta) < 0) {
        os_loc_free(&l);
        return os_oom(e);
    }
    struct objstore_new nw = { os_content_type(meta), &hm, NULL, NULL, false };
    char etag[SKY_ETAG_MAX] = "";
    rc = os_cond_prepare(o, &l, l.key, attr, os_in_parts(o, NULL, size), &nw, show, e);
    if (rc == 0) {
        os_links_drop(o, l.container, l.key);
        rc = os_store(o, &l, l.key, NULL, fd, size, &nw, etag, show, e);
        rc = os_cond_result(o, attr, rc, show, e);
    }
    http_headers_free(&hm);
    os_loc_free(&l);
    if (rc < 0)
        return rc;
    os_file_attr_out(out, &a, size, etag);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Streamed uploads                                                    */
/* ------------------------------------------------------------------ */

struct os_stream {
    struct objstore *o;
    struct os_loc l;
    char show[OS_SHOW_MAX];
    struct sky_attr begun;          /* metadata sent when it began; its expect and
                                     * etag: the preconditions (driver.h) */
    bool compare_at_end;            /* checked by a head before completing, not by
                                     * the server */
    struct sky_objmeta meta;        /* content type and user items, likewise */
    void *up;                       /* the protocol's upload */
};

static void stream_free(struct os_stream *st)
{
    if (st->up)
        st->o->proto->mpu_end(st->up, true);
    sky_objmeta_free(&st->meta);
    os_loc_free(&st->l);
    free(st);
}

int objstore_upload_begin(void *ctx, const char *path, const struct sky_attr *attr,
                          const struct sky_objmeta *meta, void **up, struct sky_err *e)
{
    struct objstore *o = ctx;
    if (!o->proto->mpu_begin)
        return OS_FAIL(o, e, ENOTSUP, "PUT %s: no large uploads", path);
    struct os_stream *st = calloc(1, sizeof *st);
    if (!st)
        return os_oom(e);
    st->o = o;
    int rc = os_locate(o, path, &st->l, e);
    if (rc == 0 && !*st->l.key)
        rc = root_refuses_file(o, path, e);
    if (rc == 0 && meta && sky_objmeta_copy(&st->meta, meta) < 0)
        rc = os_oom(e);
    if (rc < 0) {
        stream_free(st);
        return rc;
    }
    os_show(o, &st->l, st->show, sizeof st->show);
    st->begun = os_file_attr(attr);
    struct http_headers hm = {0};
    rc = os_file_meta(o, st->show, &hm, &st->begun, &st->meta);
    if (rc < 0)
        rc = os_oom(e);
    else {
        struct objstore_new nw = { os_content_type(&st->meta), &hm, NULL, NULL, false };
        /* the server checks the preconditions at completion; else (a
         * compare made now says nothing of the end) compare there */
        if (st->begun.expect & (SKY_EXPECT_MATCH | SKY_EXPECT_NONE)) {
            rc = os_cond_prepare(o, &st->l, st->l.key, &st->begun, true, &nw, st->show, e);
            st->compare_at_end = rc == 0 && !nw.if_match && !nw.if_none_match;
        }
        if (rc == 0)
            rc = o->proto->mpu_begin(o->p, st->l.container, st->l.key, &nw, &st->up,
                                     st->show, e);
        if (rc < 0)
            st->up = NULL;
    }
    http_headers_free(&hm);
    if (rc < 0) {
        stream_free(st);
        return rc;
    }
    *up = st;
    return 0;
}

/* The error of a file too large for one large upload. */
static int stream_too_big(const struct os_stream *st, struct sky_err *e)
{
    return OS_FAIL(st->o, e, EFBIG, "PUT %s: a large upload holds at most %llu parts",
                   st->show, (unsigned long long)st->o->proto->max_parts);
}

int objstore_upload_part(void *up, int fd, uint64_t index, struct sky_err *e)
{
    struct os_stream *st = up;
    const struct objstore_proto *pr = st->o->proto;
    if (index >= pr->max_parts)
        return stream_too_big(st, e);
    uint64_t ps = pr->part_size;
    return pr->mpu_part(st->up, index, fd, index * ps, ps, e);
}

/* The parts upload_finish sends itself: item i is part first + i. */
struct stream_tail {
    struct os_stream *st;
    int fd;
    uint64_t first, size;
};

static int tail_job(void *arg, size_t i, struct sky_err *e)
{
    struct stream_tail *t = arg;
    const struct objstore_proto *pr = t->st->o->proto;
    uint64_t ps = pr->part_size, n = t->first + i, off = n * ps;
    uint64_t len = t->size - off < ps ? t->size - off : ps;
    return pr->mpu_part(t->st->up, n, t->fd, off, len, e);
}

/* Are the POSIX metadata of a and b the same? */
static bool same_meta(const struct sky_attr *a, const struct sky_attr *b)
{
    unsigned bits = SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME | SKY_HAS_ATIME |
                    SKY_HAS_CTIME;
    if ((a->has & bits) != (b->has & bits))
        return false;
    return (!(a->has & SKY_HAS_MODE) || (a->mode & 07777) == (b->mode & 07777)) &&
           (!(a->has & SKY_HAS_UID) || a->uid == b->uid) &&
           (!(a->has & SKY_HAS_GID) || a->gid == b->gid) &&
           (!(a->has & SKY_HAS_MTIME) || a->mtime_ns == b->mtime_ns) &&
           (!(a->has & SKY_HAS_ATIME) || a->atime_ns == b->atime_ns) &&
           (!(a->has & SKY_HAS_CTIME) || a->ctime_ns == b->ctime_ns);
}

/* Send the parts past nparts, then complete; etag_out gets the ETag. */
static int stream_complete(struct os_stream *st, int fd, uint64_t nparts, uint64_t size,
                           char *etag_out, struct sky_err *e)
{
    const struct objstore_proto *pr = st->o->proto;
    uint64_t ps = pr->part_size, total = (size + ps - 1) / ps;
    if (total == 0)
        total = 1;      /* fs/ never finishes an empty file this way; be safe */
    if (total > pr->max_parts)
        return stream_too_big(st, e);
    if (total > nparts) {
        struct stream_tail t = { st, fd, nparts, size };
        int rc = parallel_for((size_t)(total - nparts), OBJSTORE_THREADS, tail_job, &t, e);
        if (rc < 0)
            return rc;
    }
    return pr->mpu_complete(st->up, total, fd, size, etag_out, e);
}

int objstore_upload_finish(void *up, int fd, uint64_t nparts, uint64_t size,
                           const struct sky_attr *attr, const struct sky_objmeta *meta,
                           struct sky_attr *out, struct sky_err *e)
{
    struct os_stream *st = up;
    struct objstore *o = st->o;
    char etag[SKY_ETAG_MAX] = "";
    int rc = 0;
    if (st->compare_at_end)
        rc = os_cond_prepare(o, &st->l, st->l.key, &st->begun, true,
                             &(struct objstore_new){0}, st->show, e);
    if (rc == 0)
        rc = os_cond_result(o, &st->begun, stream_complete(st, fd, nparts, size, etag, e),
                            st->show, e);
    if (rc < 0) {
        stream_free(st);
        return rc;
    }
    o->proto->mpu_end(st->up, false);
    st->up = NULL;
    os_links_drop(o, st->l.container, st->l.key);
    struct sky_attr a = os_file_attr(attr);
    if (!meta)
        meta = &st->meta;
    if (!same_meta(&a, &st->begun) || !sky_objmeta_same_stored(meta, &st->meta)) {
        struct http_headers hm = {0};
        char copied[SKY_ETAG_MAX] = "";
        if (os_file_meta(o, st->show, &hm, &a, meta) < 0) {
            rc = os_oom(e);
        } else {
            struct objstore_new nw = { os_content_type(meta), &hm, NULL, NULL, false };
            rc = o->proto->set_meta
                     ? o->proto->set_meta(o->p, st->l.container, st->l.key, size, etag, &nw,
                                          copied, st->show, e)
                     : o->proto->copy(o->p, st->l.container, st->l.key, st->l.container,
                                      st->l.key, size, etag, &nw, copied, st->show, e);
        }
        http_headers_free(&hm);
        memcpy(etag, copied, sizeof etag);
    }
    if (rc == 0)
        os_file_attr_out(out, &a, size, etag);
    stream_free(st);
    return rc;
}

void objstore_upload_abort(void *up)
{
    stream_free(up);
}
