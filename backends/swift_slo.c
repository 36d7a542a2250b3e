/* swift_slo.c - Static Large Objects: segments uploaded in parallel into
 * "<container>_segments", the manifest last; an SLO's segments found and
 * deleted when it is removed or replaced.  See swift.h. */
#include "swift.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "../lib/log.h"

struct slo_segment {
    char etag[SKY_ETAG_MAX];        /* as the segment's PUT answered, unquoted */
    uint64_t size;
    bool done;
};

struct swift_upload {
    struct swift *s;
    char *container, *key, *show;
    char *seg_container;            /* "<container>_segments" */
    char *seg_prefix;               /* "<key>/slo/<time>-<random>/" */
    struct http_headers hdrs;       /* the object's: type, metadata, kept headers */
    pthread_mutex_t lock;           /* segs, nsegs */
    struct slo_segment *segs;
    size_t nsegs;
};

static char *seg_key(const struct swift_upload *u, uint64_t index)
{
    char *k = NULL;
    if (asprintf(&k, "%s%08" PRIu64, u->seg_prefix, index) < 0)
        return NULL;
    return k;
}

static void upload_free(struct swift_upload *u)
{
    if (!u)
        return;
    free(u->container);
    free(u->key);
    free(u->show);
    free(u->seg_container);
    free(u->seg_prefix);
    http_headers_free(&u->hdrs);
    pthread_mutex_destroy(&u->lock);
    free(u->segs);
    free(u);
}

/* PUT the segments container; an existing one (202) is fine. */
static int ensure_container(struct swift *s, const char *container, const char *show,
                            struct sky_err *e)
{
    struct http_request req = { .method = "PUT", .body_fd = -1 };
    struct http_response resp;
    int rc = swift_send(s, &req, container, NULL, NULL, &resp, "PUT (segments container)", show,
                        e);
    http_headers_free(&req.headers);
    if (rc < 0)
        return rc;
    if (resp.status < 200 || resp.status > 299)
        rc = swift_status_error(s, &resp, "PUT (segments container)", container, e);
    http_response_free(&resp);
    return rc;
}

int swift_mpu_begin(void *p, const char *container, const char *key,
                    const struct objstore_new *nw, void **up, const char *show,
                    struct sky_err *e)
{
    struct swift *s = p;
    struct swift_upload *u = calloc(1, sizeof *u);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned rnd = (unsigned)ts.tv_nsec ^ (unsigned)(uintptr_t)u;
    if (!u)
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    pthread_mutex_init(&u->lock, NULL);
    u->s = s;
    int bad = !(u->container = strdup(container)) || !(u->key = strdup(key)) ||
              !(u->show = strdup(show ? show : key)) ||
              asprintf(&u->seg_container, "%s_segments", container) < 0 ||
              asprintf(&u->seg_prefix, "%s/slo/%lld.%09ld-%08x/", key, (long long)ts.tv_sec,
                       ts.tv_nsec, rnd) < 0 ||
              swift_new_headers(s, &u->hdrs, nw, show) < 0;
    if (bad) {
        upload_free(u);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    }
    int rc = ensure_container(s, u->seg_container, show, e);
    if (rc < 0) {
        upload_free(u);
        return rc;
    }
    *up = u;
    return 0;
}

int swift_mpu_part(void *up, uint64_t index, int fd, uint64_t off, uint64_t len,
                   struct sky_err *e)
{
    struct swift_upload *u = up;
    struct swift *s = u->s;
    if (index >= SWIFT_MAX_SEGMENTS)
        return sky_fail(e, EFBIG, "swift '%s': %s: more than %d segments", s->name, u->show,
                        SWIFT_MAX_SEGMENTS);
    if (len == 0)
        return sky_fail(e, EINVAL, "swift '%s': %s: an empty segment", s->name, u->show);
    char *k = seg_key(u, index);
    if (!k)
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    struct http_request req = { .method = "PUT", .body_fd = fd, .body_off = off,
                                .body_len = len };
    struct http_response resp;
    int rc = swift_send_body(s, &req, u->seg_container, k, &resp, "PUT (segment)", u->show, e);
    http_headers_free(&req.headers);
    free(k);
    if (rc < 0)
        return rc;
    if (resp.status != 201 && resp.status != 200) {
        rc = swift_status_error(s, &resp, "PUT (segment)", u->show, e);
        http_response_free(&resp);
        return rc;
    }
    const char *etag = http_headers_get(&resp.headers, "etag");
    pthread_mutex_lock(&u->lock);
    if (index >= u->nsegs) {
        struct slo_segment *n = realloc(u->segs, (index + 1) * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&u->lock);
            http_response_free(&resp);
            return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
        }
        memset(n + u->nsegs, 0, (index + 1 - u->nsegs) * sizeof *n);
        u->segs = n;
        u->nsegs = index + 1;
    }
    struct slo_segment *sg = &u->segs[index];
    snprintf(sg->etag, sizeof sg->etag, "%s", etag ? etag : "");
    /* the manifest wants the bare MD5 */
    size_t el = strlen(sg->etag);
    if (el >= 2 && sg->etag[0] == '"' && sg->etag[el - 1] == '"') {
        memmove(sg->etag, sg->etag + 1, el - 2);
        sg->etag[el - 2] = '\0';
    }
    sg->size = len;
    sg->done = true;
    pthread_mutex_unlock(&u->lock);
    http_response_free(&resp);
    return 0;
}

/* The manifest of segments [0, nparts) as JSON (malloc'd) and their
 * paths ("container/key", for the cleanup of an older SLO). */
static char *manifest_json(struct swift_upload *u, uint64_t nparts, char ***paths,
                           struct sky_err *e)
{
    struct json_object *arr = json_object_new_array();
    char **ps = calloc(nparts ? nparts : 1, sizeof *ps);
    char *out = NULL;
    if (!arr || !ps)
        goto oom;
    for (uint64_t i = 0; i < nparts; i++) {
        if (i >= u->nsegs || !u->segs[i].done) {
            json_object_put(arr);
            swift_paths_free(ps, nparts);
            sky_fail(e, EIO, "swift '%s': %s: segment %" PRIu64 " was not uploaded", u->s->name,
                     u->show, i);
            return NULL;
        }
        char *k = seg_key(u, i), *path = NULL;
        if (!k || asprintf(&path, "/%s/%s", u->seg_container, k) < 0) {
            free(k);
            goto oom;
        }
        free(k);
        ps[i] = strdup(path + 1);
        struct json_object *o = json_object_new_object();
        if (!o || !ps[i]) {
            free(path);
            json_object_put(o);
            goto oom;
        }
        json_object_object_add(o, "path", json_object_new_string(path));
        json_object_object_add(o, "etag", json_object_new_string(u->segs[i].etag));
        json_object_object_add(o, "size_bytes", json_object_new_int64((int64_t)u->segs[i].size));
        json_object_array_add(arr, o);
        free(path);
    }
    const char *s = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
    out = s ? strdup(s) : NULL;
    json_object_put(arr);
    if (!out) {
        swift_paths_free(ps, nparts);
        sky_fail(e, ENOMEM, "swift '%s': out of memory", u->s->name);
        return NULL;
    }
    *paths = ps;
    return out;
oom:
    json_object_put(arr);
    swift_paths_free(ps, nparts);
    sky_fail(e, ENOMEM, "swift '%s': out of memory", u->s->name);
    return NULL;
}

int swift_mpu_complete(void *up, uint64_t nparts, int fd, uint64_t size,
                       char etag_out[SKY_ETAG_MAX], struct sky_err *e)
{
    struct swift_upload *u = up;
    struct swift *s = u->s;
    char **new_paths = NULL, **old_segs = NULL;
    size_t nold = 0;
    struct swift_obj old;
    (void)fd;

    pthread_mutex_lock(&u->lock);
    char *body = manifest_json(u, nparts, &new_paths, e);
    pthread_mutex_unlock(&u->lock);
    if (!body)
        return -(e && e->code ? e->code : ENOMEM);
    int rc = swift_before_replace(s, u->container, u->key, &old, &old_segs, &nold, u->show, e);
    if (rc < 0) {
        free(body);
        swift_paths_free(new_paths, nparts);
        return rc;
    }
    struct http_request req = { .method = "PUT", .body_fd = -1, .body = body,
                                .body_len = strlen(body) };
    struct http_response resp;
    rc = 0;
    for (size_t i = 0; i < u->hdrs.n; i++)
        rc |= http_headers_set(&req.headers, u->hdrs.h[i].name, u->hdrs.h[i].value);
    if (rc == 0)
        rc = swift_send(s, &req, u->container, u->key, "multipart-manifest=put", &resp,
                        "PUT (manifest)", u->show, e);
    else
        rc = sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    http_headers_free(&req.headers);
    free(body);
    if (rc == 0) {
        if (resp.status == 201 || resp.status == 200) {
            if (etag_out)
                objstore_etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
            swift_after_replace(s, u->container, u->key, &old, old_segs, nold, new_paths,
                                nparts, u->show);
        } else if (http_retried(&resp)) {
            /* an earlier attempt may have landed: believe the object if it
             * is an SLO of the right size */
            struct swift_obj now;
            if (swift_head_obj(s, u->container, u->key, &now, u->show, NULL) == 0 &&
                now.exists && now.slo && now.size == size) {
                if (etag_out)
                    memcpy(etag_out, now.etag, SKY_ETAG_MAX);
                swift_after_replace(s, u->container, u->key, &old, old_segs, nold, new_paths,
                                    nparts, u->show);
            } else {
                rc = swift_status_error(s, &resp, "PUT (manifest)", u->show, e);
            }
        } else {
            rc = swift_status_error(s, &resp, "PUT (manifest)", u->show, e);
        }
        http_response_free(&resp);
    }
    swift_paths_free(old_segs, nold);
    swift_paths_free(new_paths, nparts);
    return rc;
}

void swift_mpu_end(void *up, bool discard)
{
    struct swift_upload *u = up;
    if (!u)
        return;
    if (discard) {
        char **paths = calloc(u->nsegs ? u->nsegs : 1, sizeof *paths);
        size_t n = 0;
        for (size_t i = 0; paths && i < u->nsegs; i++) {
            if (!u->segs[i].done)
                continue;
            char *k = seg_key(u, i);
            if (k && asprintf(&paths[n], "%s/%s", u->seg_container, k) >= 0)
                n++;
            free(k);
        }
        struct sky_err e = { 0 };
        if (n && swift_delete_paths(u->s, paths, n, u->show, &e) < 0)
            LOG_WARN("%s (segments of an abandoned upload left in %s)", e.msg, u->seg_container);
        swift_paths_free(paths, n);
    }
    upload_free(u);
}

/* ---- an SLO's segments ---- */

void swift_paths_free(char **paths, size_t n)
{
    if (!paths)
        return;
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

int swift_slo_segments(struct swift *s, const char *container, const char *key, char ***paths,
                       size_t *n, const char *show, struct sky_err *e)
{
    *paths = NULL;
    *n = 0;
    struct http_request req = { .method = "GET", .body_fd = -1 };
    struct http_response resp;
    int rc = swift_send(s, &req, container, key, "multipart-manifest=get&format=raw", &resp,
                        "GET (manifest)", show, e);
    http_headers_free(&req.headers);
    if (rc < 0)
        return rc;
    if (resp.status != 200) {
        rc = swift_status_error(s, &resp, "GET (manifest)", show, e);
        http_response_free(&resp);
        return rc;
    }
    struct json_object *arr = resp.body ? json_tokener_parse(resp.body) : NULL;
    http_response_free(&resp);
    if (!arr || !json_object_is_type(arr, json_type_array)) {
        json_object_put(arr);
        return sky_fail(e, EIO, "swift '%s': GET (manifest) %s: not an SLO manifest", s->name,
                        show ? show : "");
    }
    size_t m = json_object_array_length(arr);
    char **ps = calloc(m ? m : 1, sizeof *ps);
    size_t k = 0;
    if (!ps) {
        json_object_put(arr);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    }
    for (size_t i = 0; i < m; i++) {
        struct json_object *o = json_object_array_get_idx(arr, i), *v;
        /* format=raw says "path"; the older form "name" */
        if (!json_object_object_get_ex(o, "path", &v) && !json_object_object_get_ex(o, "name", &v))
            continue;
        const char *p = json_object_get_string(v);
        if (!p)
            continue;
        while (*p == '/')
            p++;
        if (!(ps[k] = strdup(p))) {
            swift_paths_free(ps, k);
            json_object_put(arr);
            return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
        }
        k++;
    }
    json_object_put(arr);
    *paths = ps;
    *n = k;
    return 0;
}

void swift_slo_delete_segments(struct swift *s, char **paths, size_t n, char **keep,
                               size_t nkeep, const char *show)
{
    char **gone = calloc(n ? n : 1, sizeof *gone);
    size_t k = 0;
    if (!gone)
        return;
    for (size_t i = 0; i < n; i++) {
        bool kept = false;
        for (size_t j = 0; j < nkeep && !kept; j++)
            kept = keep[j] && strcmp(keep[j], paths[i]) == 0;
        if (!kept)
            gone[k++] = paths[i];
    }
    struct sky_err e = { 0 };
    if (k && swift_delete_paths(s, gone, k, show, &e) < 0)
        LOG_WARN("%s (old segments of %s left in place)", e.msg, show ? show : "?");
    free(gone); /* the strings belong to paths */
}
