/*
 * objstore_incr.c - the object-store core's incremental uploads: write()
 * for a file changed only in part (driver.h write_delta), on the
 * protocol's compose primitive (objstore.h), and the planner of parts
 * that protocols with a minimum part size (S3's UploadPartCopy) share.
 *
 * The order of doubt.  Before anything is sent, a head must show that the
 * object is still the version the cache started from (base ETag); the
 * protocol then sends its requests conditional on that ETag, so a change
 * made meanwhile fails them (-ESTALE) instead of mixing two versions.
 * Whatever goes wrong short of the network being down - an ETag that
 * changed, an object gone, a server that refuses a request (s3rver has
 * no UploadPartCopy), a plan with too many parts - the whole file is
 * uploaded as write() does, and the reason is logged once per cloud and
 * kind of reason (later ones at debug level).
 *
 * Called only through the driver table (write_delta) and by protocol
 * modules (objstore_plan_parts).
 */
#include "objstore_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kinds of reasons for a whole upload, logged once each per cloud. */
#define OS_INCR_NO_COMPOSE 0x1u     /* the protocol has no compose */
#define OS_INCR_STALE      0x2u     /* the object is no longer the base version */
#define OS_INCR_REFUSED    0x4u     /* compose said -ENOTSUP */
#define OS_INCR_FAILED     0x8u     /* compose failed otherwise */

/* ------------------------------------------------------------------ */
/* Planning parts                                                      */
/* ------------------------------------------------------------------ */

struct plan {
    struct objstore_piece *p;
    size_t n, cap;
    uint64_t copied;
    const struct objstore_part_rules *r;
};

static int plan_add(struct plan *pl, uint64_t off, uint64_t len, bool copy)
{
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 16;
        struct objstore_piece *p = realloc(pl->p, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        pl->p = p;
        pl->cap = cap;
    }
    pl->p[pl->n++] = (struct objstore_piece){ off, len, copy };
    if (copy)
        pl->copied += len;
    return 0;
}

/* [a, b) sent, in parts of send_part (the last one takes the rest, so no
 * part is shorter than the range's own length allows). */
static int plan_send(struct plan *pl, uint64_t a, uint64_t b)
{
    if (b <= a)
        return 0;
    uint64_t sp = pl->r->send_part, len = b - a, k = len / sp;
    if (k == 0)
        k = 1;
    for (uint64_t i = 0; i < k; i++) {
        uint64_t off = a + i * sp, n = i + 1 < k ? sp : b - off;
        int rc = plan_add(pl, off, n, false);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* [a, b) copied, in equal parts no larger than max_part. */
static int plan_copy(struct plan *pl, uint64_t a, uint64_t b)
{
    uint64_t len = b - a, mp = pl->r->max_part, k = (len + mp - 1) / mp, each = len / k;
    for (uint64_t i = 0; i < k; i++) {
        uint64_t off = a + i * each, n = i + 1 < k ? each : b - off;
        int rc = plan_add(pl, off, n, true);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int objstore_plan_parts(uint64_t size, uint64_t base_size, const struct sky_range *dirty,
                        size_t ndirty, const struct objstore_part_rules *rules,
                        struct objstore_piece **out, size_t *n)
{
    struct plan pl = { .r = rules };
    uint64_t min = rules->min_part, limit = size < base_size ? size : base_size;
    uint64_t cur = 0;               /* start of the run to send */
    uint64_t pos = 0;               /* start of the next unchanged range */
    int rc = 0;
    if (size == 0 || min == 0 || rules->send_part < min || rules->max_part < 2 * min)
        return -ENOTSUP;
    for (size_t i = 0; rc == 0 && pos < limit && i <= ndirty; i++) {
        /* unchanged range [pos, end): up to the next dirty range */
        uint64_t end = i < ndirty && dirty[i].off < limit ? dirty[i].off : limit;
        if (i < ndirty && dirty[i].off < pos) {
            if (dirty[i].off + dirty[i].len > pos)
                pos = dirty[i].off + dirty[i].len;      /* overlapping input: be safe */
            continue;
        }
        uint64_t ko = pos, ke = end;
        if (ke > ko && ko - cur > 0 && ko - cur < min)
            ko = cur + min;         /* the sent run before it must be a whole part */
        if (ke > ko && ke - ko >= min) {
            rc = plan_send(&pl, cur, ko);
            if (rc == 0)
                rc = plan_copy(&pl, ko, ke);
            cur = ke;
        }
        if (i < ndirty) {
            uint64_t dend = dirty[i].off + dirty[i].len;
            pos = dend > end ? dend : end;
        } else {
            pos = limit;
        }
    }
    if (rc == 0)
        rc = plan_send(&pl, cur, size);
    if (rc == 0 && (pl.copied == 0 || pl.n > rules->max_parts))
        rc = -ENOTSUP;
    if (rc < 0) {
        free(pl.p);
        return rc;
    }
    *out = pl.p;
    *n = pl.n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* write_delta                                                         */
/* ------------------------------------------------------------------ */

/* Say once per cloud and kind why a file goes up whole. */
static void incr_note(struct objstore *o, unsigned kind, const char *show, const char *why)
{
    unsigned had = atomic_fetch_or(&o->incr_logged, kind);
    if (had & kind)
        LOG_DEBUG("%s '%s': %s goes up whole: %s", o->proto->type, o->name, show, why);
    else    /* a protocol without compose is how it is, not a problem */
        sky_log(kind == OS_INCR_NO_COMPOSE ? SKY_LOG_INFO : SKY_LOG_WARN,
                "%s '%s': %s goes up whole instead of only its changed parts: %s (said once "
                "for this cloud)", o->proto->type, o->name, show, why);
}

/* The dirty ranges clipped to size (a copy; *out NULL when none is left). */
static int clip_ranges(const struct sky_delta *d, uint64_t size, struct sky_range **out,
                       size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!d->ndirty)
        return 0;
    struct sky_range *r = malloc(d->ndirty * sizeof *r);
    if (!r)
        return -ENOMEM;
    uint64_t last_end = 0;
    for (size_t i = 0; i < d->ndirty; i++) {
        uint64_t off = d->dirty[i].off, len = d->dirty[i].len;
        if (off < last_end || len > UINT64_MAX - off) {
            free(r);
            return -EINVAL;         /* not sorted or overlapping: no trust */
        }
        last_end = off + len;
        if (off >= size || len == 0)
            continue;
        r[(*n)++] = (struct sky_range){ off, off + len > size ? size - off : len };
    }
    *out = r;
    return 0;
}

/* Try the incremental upload: 0 done, 1 not done (the reason logged),
 * or -EHOSTDOWN / -EINTR / -ENOMEM. */
static int try_compose(struct objstore *o, const struct os_loc *l, const char *show, int fd,
                       uint64_t size, const struct sky_attr *a, const struct sky_objmeta *meta,
                       const struct sky_delta *d, char etag[SKY_ETAG_MAX], struct sky_err *e)
{
    const struct objstore_proto *pr = o->proto;
    struct sky_range *dirty = NULL;
    size_t ndirty = 0;
    int rc = clip_ranges(d, size, &dirty, &ndirty);
    if (rc == -EINVAL) {
        incr_note(o, OS_INCR_FAILED, show, "the changed ranges are not in order");
        return 1;
    }
    if (rc < 0)
        return os_oom(e);
    struct objstore_head h = {0};
    struct sky_err he = { 0 };
    rc = pr->head(o->p, l->container, l->key, &h, show, &he);
    if (rc == -EHOSTDOWN || rc == -EINTR) {
        free(dirty);
        *e = he;
        return rc;
    }
    if (rc < 0) {
        incr_note(o, OS_INCR_STALE, show, he.msg);
        free(dirty);
        return 1;
    }
    if (strcmp(h.etag, d->base_etag) != 0) {
        char why[2 * SKY_ETAG_MAX + 96];
        snprintf(why, sizeof why, "the object is no longer the version it was read as "
                 "(ETag %s, not %s)", h.etag, d->base_etag);
        incr_note(o, OS_INCR_STALE, show, why);
        objstore_head_free(&h);
        free(dirty);
        return 1;
    }
    uint64_t base_size = h.size;
    objstore_head_free(&h);
    struct http_headers hm = {0};
    if (os_file_meta(o, show, &hm, a, meta) < 0) {
        free(dirty);
        return os_oom(e);
    }
    /* the completion replaces the base version only (where the server
     * checks it; Azure's compose sends its own If-Match) */
    struct objstore_new nw = { os_content_type(meta), &hm, NULL,
                               os_cond_parts_match(o, l->container, l->key, d->base_etag),
                               false };
    uint64_t sent = 0;
    struct sky_err ce = { 0 };
    rc = pr->compose(o->p, l->container, l->key, d->base_etag, base_size, dirty, ndirty, fd,
                     size, &nw, etag, &sent, show, &ce);
    http_headers_free(&hm);
    free(dirty);
    if (rc == 0) {
        LOG_DEBUG("%s '%s': %s: %llu of %llu bytes sent, the rest reused", pr->type, o->name,
                  show, (unsigned long long)sent, (unsigned long long)size);
        return 0;
    }
    if (rc == -EHOSTDOWN || rc == -EINTR || rc == -ENOMEM) {
        *e = ce;
        return rc;
    }
    incr_note(o, rc == -ENOTSUP ? OS_INCR_REFUSED : rc == -ESTALE ? OS_INCR_STALE
                                                                   : OS_INCR_FAILED,
              show, ce.msg);
    return 1;
}

int objstore_write_delta(void *ctx, const char *path, int fd, uint64_t size,
                         const struct sky_attr *attr, const struct sky_objmeta *meta,
                         const struct sky_delta *d, struct sky_attr *out, struct sky_err *e)
{
    struct objstore *o = ctx;
    /* a small file goes up in one request anyway */
    if (!d || !d->base_etag || !*d->base_etag || size <= o->proto->put_max)
        return objstore_write(ctx, path, fd, size, attr, meta, out, e);
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    if (!*l.key) {
        os_loc_free(&l);
        return objstore_write(ctx, path, fd, size, attr, meta, out, e);
    }
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    if (!o->proto->compose) {
        incr_note(o, OS_INCR_NO_COMPOSE, show, "the protocol has no way to reuse the parts "
                  "of an object");
        os_loc_free(&l);
        return objstore_write(ctx, path, fd, size, attr, meta, out, e);
    }
    struct sky_attr a = os_file_attr(attr);
    char etag[SKY_ETAG_MAX] = "";
    os_links_drop(o, l.container, l.key);
    rc = try_compose(o, &l, show, fd, size, &a, meta, d, etag, e);
    os_loc_free(&l);
    if (rc == 1)
        return objstore_write(ctx, path, fd, size, attr, meta, out, e);
    if (rc < 0)
        return rc;
    os_file_attr_out(out, &a, size, etag);
    return 0;
}
