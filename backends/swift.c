/* swift.c - OpenStack Swift as a protocol module of the object-store core;
 * see swift.h. */
#include "swift.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "../lib/clock.h"
#include "../lib/config.h"
#include "../lib/log.h"
#include "../lib/sbuf.h"
#include "bodysum.h"
#include "names.h"
#include "swift_list.h"

#define META_PREFIX "x-object-meta-"
#define LIST_LIMIT 10000
#define RATE_LIMIT_RETRIES 4

/* ------------------------------------------------------------------ */
/* requests                                                            */
/* ------------------------------------------------------------------ */

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* storage URL + "/" container [+ "/" key] [+ "?" query], encoded. */
static char *build_url(const char *base, const char *container, const char *key,
                       const char *query)
{
    struct sbuf b = { 0 };
    sbuf_add(&b, base);
    if (container) {
        char *c = http_uri_encode(container, 0);
        sbuf_add(&b, "/");
        sbuf_add(&b, c ? c : "");
        free(c);
        if (!c)
            b.failed = 1;
    }
    if (container && key) {
        char *k = http_uri_encode(key, 1);
        sbuf_add(&b, "/");
        sbuf_add(&b, k ? k : "");
        free(k);
        if (!k)
            b.failed = 1;
    }
    if (query && *query) {
        sbuf_add(&b, "?");
        sbuf_add(&b, query);
    }
    return sbuf_finish(&b);
}

int swift_send(struct swift *s, struct http_request *req, const char *container,
               const char *key, const char *query, struct http_response *resp, const char *op,
               const char *show, struct sky_err *e)
{
    int renewed = 0, limited = 0;
    for (;;) {
        char *base = NULL;
        int rc = swift_auth_storage_url(s->auth, &base, e);
        if (rc < 0)
            return rc;
        req->url = build_url(base, container, key, query);
        free(base);
        if (!req->url)
            return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
        req->sign = swift_auth_sign;
        req->sign_arg = s->auth;
        memset(resp, 0, sizeof *resp);
        rc = http_do(s->http, req, resp, e);
        free(req->url);
        req->url = NULL;
        if (rc < 0) {
            http_response_free(resp);
            /* an auth failure inside the sign hook already names the cloud */
            if (!e || strncmp(e->msg, "swift '", 7) != 0)
                sky_err_prefix(e, "swift '%s': %s %s", s->name, op, show ? show : "");
            return rc;
        }
        if (resp->status == 401 && !renewed) {
            /* the token expired or was revoked: one new token, one retry */
            renewed = 1;
            swift_auth_renew(s->auth, http_headers_get(&req->headers, "X-Auth-Token"));
            http_response_free(resp);
            continue;
        }
        if (resp->status == 498 && limited < RATE_LIMIT_RETRIES) {
            /* Swift's ratelimit middleware: back off and try again */
            http_response_free(resp);
            sleep_ms(200L << limited);
            limited++;
            continue;
        }
        return 0;
    }
}

int swift_status_error(struct swift *s, const struct http_response *resp, const char *op,
                       const char *show, struct sky_err *e)
{
    long st = resp->status;
    int code;
    const char *what;
    switch (st) {
    case 401: code = EACCES; what = "Unauthorized (the token was refused twice)"; break;
    case 403: code = EACCES; what = "Forbidden"; break;
    case 404: code = ENOENT; what = "Not Found"; break;
    case 409: code = EIO; what = "Conflict"; break;
    case 412: code = ESTALE; what = "Precondition Failed (the object changed)"; break;
    case 413: code = EFBIG; what = "Request Entity Too Large"; break;
    case 416: code = EIO; what = "Requested Range Not Satisfiable"; break;
    case 422: code = EIO; what = "Unprocessable Entity (checksum mismatch)"; break;
    case 429: code = EIO; what = "Too Many Requests (after retries)"; break;
    case 498: code = EIO; what = "Rate Limited (after retries)"; break;
    case 507: code = ENOSPC; what = "Insufficient Storage"; break;
    default:
        code = EIO;
        what = st >= 500 ? "server error (after retries)" : "unexpected answer";
    }
    /* Swift's error bodies are short text ("<html><h1>Not Found</h1>...");
     * show the first line of a plain one. */
    char detail[120] = "";
    if (resp->body && resp->body_len && resp->body[0] != '<') {
        size_t n = strcspn(resp->body, "\r\n");
        if (n > sizeof detail - 4)
            n = sizeof detail - 4;
        snprintf(detail, sizeof detail, ": %.*s", (int)n, resp->body);
    }
    return sky_fail(e, code, "swift '%s': %s %s: %ld %s%s", s->name, op, show ? show : "", st,
                    what, detail);
}

/* ------------------------------------------------------------------ */
/* metadata                                                            */
/* ------------------------------------------------------------------ */

/* Headers Swift keeps on an object besides its metadata, which a
 * metadata rewrite (POST, copy with fresh metadata) must send again. */
static const char *const kept_headers[] = {
    "content-encoding", "content-disposition", "x-delete-at", "x-object-manifest", NULL
};

int swift_new_headers(struct swift *s, struct http_headers *hs, const struct objstore_new *nw,
                      const char *show)
{
    int rc = 0;
    if (!nw)
        return 0;
    if (nw->content_type)
        rc |= http_headers_set(hs, "Content-Type", nw->content_type);
    if (nw->meta) {
        for (size_t i = 0; i < nw->meta->n; i++) {
            const char *name = nw->meta->h[i].name, *value = nw->meta->h[i].value;
            size_t nl = strlen(name), vl = strlen(value);
            if (nl == 0 || nl > SWIFT_META_NAME_MAX || vl > SWIFT_META_VALUE_MAX) {
                LOG_WARN("swift '%s': %s: metadata item '%.40s' left out (Swift takes names "
                         "up to %d and values up to %d bytes)",
                         s->name, show ? show : "", name, SWIFT_META_NAME_MAX,
                         SWIFT_META_VALUE_MAX);
                continue;
            }
            char hdr[SWIFT_META_NAME_MAX + 32];
            snprintf(hdr, sizeof hdr, "X-Object-Meta-%s", name);
            rc |= http_headers_set(hs, hdr, value);
        }
    }
    if (nw->keep)
        for (size_t i = 0; i < nw->keep->n; i++)
            rc |= http_headers_set(hs, nw->keep->h[i].name, nw->keep->h[i].value);
    /* a new file (OBJSTORE_COND_NEW): nothing may be there yet; Swift has
     * no If-Match on PUT, so the core compares before a replacement */
    if (nw->if_none_match)
        rc |= http_headers_set(hs, "If-None-Match", "*");
    return rc ? -ENOMEM : 0;
}

/* Fill out (an objstore_head) from a HEAD or GET answer's headers. */
static int head_from_headers(const struct http_headers *hs, struct objstore_head *out)
{
    const char *v;
    int rc = 0;
    memset(out, 0, sizeof *out);
    v = http_headers_get(hs, "content-length");
    out->size = v ? strtoull(v, NULL, 10) : 0;
    v = http_headers_get(hs, "last-modified");
    if (v)
        objstore_parse_http_date(v, &out->last_modified_ns);
    /* Swift's X-Timestamp has the sub-second part Last-Modified lacks */
    v = http_headers_get(hs, "x-timestamp");
    if (v) {
        int64_t ns;
        if (objstore_parse_time(v, &ns) == 0)
            out->last_modified_ns = ns;
    }
    objstore_etag_copy(out->etag, http_headers_get(hs, "etag"));
    v = http_headers_get(hs, "content-type");
    if (v && !(out->content_type = strdup(v)))
        rc = -ENOMEM;
    for (size_t i = 0; i < hs->n && rc == 0; i++) {
        const char *name = hs->h[i].name; /* lowercased by http.c */
        if (strncmp(name, META_PREFIX, strlen(META_PREFIX)) == 0 && name[strlen(META_PREFIX)])
            rc = http_headers_set(&out->meta, name + strlen(META_PREFIX), hs->h[i].value);
        for (int k = 0; kept_headers[k] && rc == 0; k++)
            if (strcmp(name, kept_headers[k]) == 0)
                rc = http_headers_set(&out->keep, name, hs->h[i].value);
    }
    if (rc) {
        objstore_head_free(out);
        return -ENOMEM;
    }
    return 0;
}

static bool header_true(const struct http_headers *hs, const char *name)
{
    const char *v = http_headers_get(hs, name);
    return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0);
}

/* ------------------------------------------------------------------ */
/* the protocol's callbacks                                            */
/* ------------------------------------------------------------------ */

static const char *const swift_dir_types[] = {
    "application/directory", "application/x-directory", "text/directory", NULL
};

/* Swift turns '_' in header names into '-' (WSGI), so a name with '_'
 * would come back as another name: lowercase letters, digits, '-', '.'. */
static bool swift_user_name_ok(const char *name)
{
    if (!*name || strlen(name) > SWIFT_META_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.'))
            return false;
    return true;
}

static const struct objstore_codec swift_codec = {
    .flags = 0,
    .format_time = objstore_time_decimal,
    .marker_type = "application/directory",
    .dir_types = swift_dir_types,
    .folder_flag = NULL,
    /* room left for mode, uid, gid and the times within Swift's 4096 */
    .meta_max = SWIFT_META_OVERALL - 256,
    .user_name_ok = swift_user_name_ok,
    .reserved = NULL,
    .attr_read = NULL,
    .attr_write = NULL,
};

static int cfg_fail(const struct sky_cloud_config *cfg, const char *key, struct sky_err *e)
{
    return sky_err_prefix(e, "%s:%d: [%s]", cfg->file ? cfg->file : "config",
                          key ? sky_cloud_line(cfg, key) : cfg->line, cfg->name);
}

static const char *cfg_get(void *arg, const char *key)
{
    return sky_cloud_get(arg, key);
}

static void swift_close(void *p)
{
    struct swift *s = p;
    if (!s)
        return;
    swift_auth_free(s->auth);
    http_client_free(s->http);
    for (size_t i = 0; i < s->nmoved; i++) {
        free(s->moved[i].container);
        free(s->moved[i].key);
    }
    pthread_mutex_destroy(&s->lock);
    free(s->name);
    free(s);
}

static int swift_open(const struct sky_cloud_config *cfg, const char *name,
                      const struct objstore_where *where, void **p, struct sky_err *e)
{
    struct swift_creds creds;
    struct http_options opt;
    int rc = http_options_from_cloud(cfg, &opt, e);
    if (rc < 0)
        return rc;
    rc = swift_creds_load(cfg_get, (void *)cfg, name, &creds, e);
    if (rc < 0)
        return cfg_fail(cfg, NULL, e);
    if (creds.storage_url && strncmp(creds.storage_url, "http://", 7) != 0 &&
        strncmp(creds.storage_url, "https://", 8) != 0) {
        swift_creds_free(&creds);
        sky_fail(e, EINVAL, "storage_url must start with http:// or https://");
        return cfg_fail(cfg, "storage_url", e);
    }
    if (where->container && strchr(where->container, '/')) {
        swift_creds_free(&creds);
        sky_fail(e, EINVAL, "container: a container name holds no '/' (use prefix for a "
                            "folder inside it)");
        return cfg_fail(cfg, "container", e);
    }
    struct swift *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(name))) {
        free(s);
        swift_creds_free(&creds);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", name);
    }
    pthread_mutex_init(&s->lock, NULL);
    rc = http_client_new(&opt, &s->http, e);
    if (rc == 0)
        rc = swift_auth_new(&creds, name, &opt, &s->auth, e);
    swift_creds_free(&creds);
    if (rc < 0) {
        swift_close(s);
        return rc;
    }
    *p = s;
    return 0;
}

/* ---- listings ---- */

struct page_state {
    objstore_item_fn fn;
    void *arg;
    struct swift *s;
};

static int page_item(void *arg, const struct swift_entry *ent)
{
    struct page_state *ps = arg;
    struct objstore_item it = { 0 };
    if (ent->has_nul) {
        LOG_WARN("swift '%s': skipping \"%.80s\\0...\": not a valid file name (it holds a NUL "
                 "byte)", ps->s->name, ent->name);
        return 0;
    }
    it.key = ent->name;
    it.is_prefix = ent->is_subdir;
    if (!ent->is_subdir) {
        it.size = ent->bytes <= SKY_SIZE_MAX ? ent->bytes : UINT64_MAX;
        it.last_modified_ns = ent->mtime_ns;
        /* an SLO's listed hash is its manifest's; HEAD and GET answer the
         * large object's etag, which newer clusters list as slo_etag */
        objstore_etag_copy(it.etag, ent->slo_etag ? ent->slo_etag : ent->hash);
        it.content_type = ent->content_type;
    }
    return ps->fn(ps->arg, &it);
}

static int swift_list_page(void *p, const char *container, const char *prefix, bool delimited,
                           int max_keys, const char *token, objstore_item_fn fn, void *arg,
                           char **next, const char *show, struct sky_err *e)
{
    struct swift *s = p;
    int limit = max_keys > 0 && max_keys < LIST_LIMIT ? max_keys : LIST_LIMIT;
    char *pre = http_uri_encode(prefix ? prefix : "", 0);
    char *mark = token ? http_uri_encode(token, 0) : NULL;
    char *query = NULL;
    *next = NULL;
    if (!pre || (token && !mark) ||
        asprintf(&query, "format=json&limit=%d&prefix=%s%s%s%s", limit, pre,
                 delimited ? "&delimiter=%2F" : "", mark ? "&marker=" : "", mark ? mark : "") < 0) {
        free(pre);
        free(mark);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    }
    free(pre);
    free(mark);
    struct http_request req = { .method = "GET", .body_fd = -1 };
    struct http_response resp;
    http_headers_set(&req.headers, "Accept", "application/json");
    int rc = swift_send(s, &req, container, NULL, query, &resp, "LIST", show, e);
    free(query);
    http_headers_free(&req.headers);
    if (rc < 0)
        return rc;
    if (resp.status == 204 || resp.status == 200) {
        struct page_state ps = { fn, arg, s };
        size_t n = 0;
        char *marker = NULL;
        rc = swift_list_parse(resp.body ? resp.body : "", resp.body ? resp.body_len : 0, page_item,
                              &ps, &n, &marker, e);
        if (rc < 0 && e && e->code == EIO)
            sky_err_prefix(e, "swift '%s': LIST %s", s->name, show ? show : "");
        if (rc == 0 && (int)n >= limit && marker)
            *next = marker;
        else
            free(marker);
    } else {
        rc = swift_status_error(s, &resp, "LIST", show, e);
    }
    http_response_free(&resp);
    return rc;
}

struct containers_state {
    sky_list_cb cb;
    void *arg;
    struct swift *s;
};

static int container_entry(void *arg, const struct swift_entry *ent)
{
    struct containers_state *cs = arg;
    const char *why = ent->has_nul ? "holds a NUL byte"
                                   : sky_name_problem(ent->name, strlen(ent->name));
    if (why) {
        LOG_WARN("swift '%s': container '%.80s' skipped: its name %s", cs->s->name, ent->name, why);
        return 0;
    }
    struct sky_dirent d = { 0 };
    d.name = ent->name;
    d.attr.kind = SKY_DIR;
    d.attr.mode = 0755;
    d.attr.has = SKY_HAS_MODE;
    if (ent->mtime_ns) {
        d.attr.mtime_ns = d.attr.atime_ns = d.attr.ctime_ns = ent->mtime_ns;
        d.attr.has |= SKY_HAS_MTIME;
    }
    return cs->cb(cs->arg, &d);
}

static int swift_list_containers(void *p, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct swift *s = p;
    char *marker = NULL;
    int rc;
    for (int pages = 0;; pages++) {
        char *query = NULL, *mark = marker ? http_uri_encode(marker, 0) : NULL;
        if ((marker && !mark) ||
            asprintf(&query, "format=json&limit=%d%s%s", LIST_LIMIT, mark ? "&marker=" : "",
                     mark ? mark : "") < 0) {
            free(mark);
            free(marker);
            return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
        }
        free(mark);
        struct http_request req = { .method = "GET", .body_fd = -1 };
        struct http_response resp;
        http_headers_set(&req.headers, "Accept", "application/json");
        rc = swift_send(s, &req, NULL, NULL, query, &resp, "LIST", "(the account)", e);
        free(query);
        http_headers_free(&req.headers);
        if (rc < 0)
            break;
        if (resp.status != 200 && resp.status != 204) {
            rc = swift_status_error(s, &resp, "LIST", "(the account)", e);
            http_response_free(&resp);
            break;
        }
        struct containers_state cs = { cb, arg, s };
        size_t n = 0;
        char *next = NULL;
        rc = swift_list_parse(resp.body ? resp.body : "", resp.body ? resp.body_len : 0,
                              container_entry, &cs, &n, &next, e);
        http_response_free(&resp);
        if (rc < 0)
            break;
        if (n < LIST_LIMIT || !next || (marker && strcmp(next, marker) == 0)) {
            free(next);
            break;
        }
        free(marker);
        marker = next;
    }
    free(marker);
    return rc;
}

/* ---- objects ---- */

int swift_head_obj(struct swift *s, const char *container, const char *key, struct swift_obj *o,
                   const char *show, struct sky_err *e)
{
    struct http_request req = { .method = "HEAD", .body_fd = -1 };
    struct http_response resp;
    memset(o, 0, sizeof *o);
    int rc = swift_send(s, &req, container, key, NULL, &resp, "HEAD", show, e);
    http_headers_free(&req.headers);
    if (rc < 0)
        return rc;
    if (resp.status == 404) {
        http_response_free(&resp);
        return 0;
    }
    if (resp.status < 200 || resp.status > 299) {
        rc = swift_status_error(s, &resp, "HEAD", show, e);
        http_response_free(&resp);
        return rc;
    }
    o->exists = true;
    o->slo = header_true(&resp.headers, "x-static-large-object");
    objstore_etag_copy(o->etag, http_headers_get(&resp.headers, "etag"));
    const char *v = http_headers_get(&resp.headers, "content-length");
    o->size = v ? strtoull(v, NULL, 10) : 0;
    http_response_free(&resp);
    return 0;
}

static int swift_head(void *p, const char *container, const char *key, struct objstore_head *out,
                      const char *show, struct sky_err *e)
{
    struct swift *s = p;
    struct http_request req = { .method = "HEAD", .body_fd = -1 };
    struct http_response resp;
    memset(out, 0, sizeof *out);
    int rc = swift_send(s, &req, container, key, NULL, &resp, "HEAD", show, e);
    http_headers_free(&req.headers);
    if (rc < 0)
        return rc;
    if (resp.status < 200 || resp.status > 299) {
        rc = swift_status_error(s, &resp, "HEAD", show, e);
        http_response_free(&resp);
        return rc;
    }
    rc = head_from_headers(&resp.headers, out);
    http_response_free(&resp);
    if (rc < 0)
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    return 0;
}

/* The answer to a GET from `off` brought a whole plain object (not a
 * large object's manifest, whose ETag sums its segments' ETags) whose
 * bytes' sum (in *sum) is not its ETag. */
static bool got_other_bytes(struct swift *s, const struct http_response *resp, uint64_t off,
                            struct bodysum_sink *ss, struct bodysum *sum)
{
    const struct http_headers *h = &resp->headers;
    return !http_headers_get(h, "x-static-large-object") &&
           !http_headers_get(h, "x-object-manifest") && bodysum_sink_whole(ss, resp, off, sum) &&
           bodysum_trust_differs(&s->etags, sum, http_headers_get(h, "etag"));
}

/* One try of a GET: 0 and the answer in *resp (freed by the caller), 1
 * when its bytes arrived damaged and it should be asked again, or -errno. */
static int get_once(struct swift *s, const char *container, const char *key,
                    const char *if_match, uint64_t off, uint64_t len, struct bodysum_sink *ss,
                    int tries, struct bodysum *prev, struct http_response *resp,
                    const char *show, struct sky_err *e)
{
    struct http_request req = { .method = "GET", .body_fd = -1 };
    req.range_header = "Range";
    req.range_off = off;
    req.range_len = len;
    req.sink = bodysum_sink_take;
    req.sink_arg = ss;
    req.out_cap = len;
    if (if_match && *if_match)
        http_headers_set(&req.headers, "If-Match", if_match);
    bodysum_sink_start(ss);
    int rc = swift_send(s, &req, container, key, NULL, resp, "GET", show, e);
    http_headers_free(&req.headers);
    struct bodysum sum;
    if (rc == 0 && resp->status >= 200 && resp->status <= 299 &&
        got_other_bytes(s, resp, off, ss, &sum)) {
        char what[512];
        snprintf(what, sizeof what, "swift '%s': GET %s", s->name, show ? show : "");
        rc = bodysum_got_other(&s->etags, tries, &sum, tries > 1 ? prev : NULL, what, e);
        *prev = sum;
        if (rc != 1)
            http_response_free(resp);
        rc = rc == 0 ? 1 : rc == 1 ? 0 : rc;
    }
    return rc;
}

static int swift_get(void *p, const char *container, const char *key, const char *if_match,
                     uint64_t off, uint64_t len, sky_sink_fn sink, void *sink_arg,
                     char etag_out[SKY_ETAG_MAX], const char *show, struct sky_err *e)
{
    struct swift *s = p;
    struct bodysum_sink ss = { .sink = sink, .arg = sink_arg, .wanted = off == 0 };
    struct bodysum prev;
    struct http_response resp;
    int rc = 1;
    for (int tries = 1; rc == 1; tries++)
        rc = get_once(s, container, key, if_match, off, len, &ss, tries, &prev, &resp, show, e);
    bodysum_sink_free(&ss);
    if (rc < 0)
        return rc;
    if (resp.status == 416) {
        /* at or past the end of the object: no bytes, no error */
        http_response_free(&resp);
        return 0;
    }
    if (resp.status < 200 || resp.status > 299) {
        rc = swift_status_error(s, &resp, "GET", show, e);
        http_response_free(&resp);
        return rc;
    }
    char got[SKY_ETAG_MAX];
    objstore_etag_copy(got, http_headers_get(&resp.headers, "etag"));
    if (etag_out)
        memcpy(etag_out, got, SKY_ETAG_MAX);
    http_response_free(&resp);
    if (if_match && *if_match && got[0]) {
        char want[SKY_ETAG_MAX];
        objstore_etag_copy(want, if_match);
        if (strcmp(want, got) != 0)
            return sky_fail(e, ESTALE, "swift '%s': GET %s: the object changed (etag %s, "
                                       "expected %s)",
                            s->name, show ? show : "", got, want);
    }
    return 0;
}

/* After a new object replaced `old` at container/key: delete the old
 * SLO's segments (except those the new object uses: keep). */
void swift_after_replace(struct swift *s, const char *container, const char *key,
                         const struct swift_obj *old, char **old_segs, size_t nold, char **keep,
                         size_t nkeep, const char *show)
{
    swift_moved_forget(s, container, key);
    if (old->slo && nold)
        swift_slo_delete_segments(s, old_segs, nold, keep, nkeep, show);
}

/* Before replacing container/key: what is there, and the segments of an
 * old SLO (which may not be found later, once its manifest is gone).  An
 * SLO whose manifest was copied away by a rename is not ours to clean. */
int swift_before_replace(struct swift *s, const char *container, const char *key,
                          struct swift_obj *old, char ***segs, size_t *nsegs, const char *show,
                          struct sky_err *e)
{
    *segs = NULL;
    *nsegs = 0;
    int rc = swift_head_obj(s, container, key, old, show, e);
    if (rc < 0)
        return rc;
    if (old->exists && old->slo) {
        rc = swift_slo_segments(s, container, key, segs, nsegs, show, e);
        if (rc < 0) {
            /* the upload matters more than the cleanup */
            LOG_WARN("%s (its segments are left in place)", e ? e->msg : "swift: segments");
            old->slo = false;
            sky_err_clear(e);
        }
    }
    return 0;
}

int swift_send_body(struct swift *s, struct http_request *req, const char *container,
                    const char *key, struct http_response *resp, const char *op,
                    const char *show, struct sky_err *e)
{
    struct bodysum sum;
    char hex[33];
    int rc = bodysum_of(req->body, req->body_fd, req->body_off, req->body_len, &sum);
    if (rc == -EIO)
        return sky_fail(e, EIO, "swift '%s': %s %s: cannot read the cached file to send",
                        s->name, op, show);
    bodysum_hex(&sum, hex);
    if (rc || http_headers_set(&req->headers, "ETag", hex) < 0)
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    for (int tries = 1;; tries++) {
        rc = swift_send(s, req, container, key, NULL, resp, op, show, e);
        if (rc == 0 && resp->status >= 200 && resp->status <= 299)
            bodysum_trust_differs(&s->etags, &sum, http_headers_get(&resp->headers, "etag"));
        if (rc < 0 || resp->status != 422)
            return rc;
        http_response_free(resp);
        if (tries == BODYSUM_TRIES)
            return sky_fail(e, EIO, "swift '%s': %s %s: the server received other bytes than "
                            "were sent, %d times (422): something on the way damages data",
                            s->name, op, show, BODYSUM_TRIES);
        LOG_WARN("swift '%s': %s %s: the server received other bytes than were sent (422); "
                 "sending them again", s->name, op, show);
    }
}

static int swift_put(void *p, const char *container, const char *key, const void *mem, int fd,
                     uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
                     const char *show, struct sky_err *e)
{
    struct swift *s = p;
    struct swift_obj old;
    char **old_segs;
    size_t nold;
    int rc = swift_before_replace(s, container, key, &old, &old_segs, &nold, show, e);
    if (rc < 0)
        return rc;
    struct http_request req = { .method = "PUT", .body_fd = -1 };
    struct http_response resp;
    if (mem) {
        req.body = mem;
    } else if (size) {
        req.body_fd = fd;
        req.body_off = 0;
    }
    req.body_len = size;
    if (swift_new_headers(s, &req.headers, nw, show) < 0) {
        http_headers_free(&req.headers);
        swift_paths_free(old_segs, nold);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    }
    rc = swift_send_body(s, &req, container, key, &resp, "PUT", show, e);
    http_headers_free(&req.headers);
    if (rc == 0) {
        if (resp.status == 201 || resp.status == 200) {
            if (etag_out)
                objstore_etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
            swift_after_replace(s, container, key, &old, old_segs, nold, NULL, 0, show);
        } else {
            rc = swift_status_error(s, &resp, "PUT", show, e);
        }
        http_response_free(&resp);
    }
    swift_paths_free(old_segs, nold);
    return rc;
}

static int swift_copy(void *p, const char *scontainer, const char *skey, const char *dcontainer,
                      const char *dkey, uint64_t size, const char *if_match,
                      const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX], const char *show,
                      struct sky_err *e)
{
    struct swift *s = p;
    bool same = strcmp(scontainer, dcontainer) == 0 && strcmp(skey, dkey) == 0;
    struct swift_obj src, old = { 0 };
    char **old_segs = NULL, **src_segs = NULL;
    size_t nold = 0, nsrc = 0;
    int rc = swift_head_obj(s, scontainer, skey, &src, show, e);
    if (rc < 0)
        return rc;
    if (!src.exists)
        return sky_fail(e, ENOENT, "swift '%s': COPY %s: 404 Not Found (the source is gone)",
                        s->name, show ? show : "");
    if (if_match && *if_match) {
        char want[SKY_ETAG_MAX];
        objstore_etag_copy(want, if_match);
        if (strcmp(want, src.etag) != 0)
            return sky_fail(e, ESTALE, "swift '%s': COPY %s: the source changed", s->name,
                            show ? show : "");
    }
    if (!same) {
        rc = swift_before_replace(s, dcontainer, dkey, &old, &old_segs, &nold, show, e);
        if (rc < 0)
            return rc;
        if (old.slo && src.slo &&
            swift_slo_segments(s, scontainer, skey, &src_segs, &nsrc, show, NULL) < 0)
            nsrc = 0;
    }

    struct http_request req = { .method = "PUT", .body_fd = -1 };
    struct http_response resp;
    char *from = NULL, *ec = http_uri_encode(scontainer, 0), *ek = http_uri_encode(skey, 1);
    rc = 0;
    if (!ec || !ek || asprintf(&from, "/%s/%s", ec, ek) < 0)
        rc = -ENOMEM;
    free(ec);
    free(ek);
    if (rc == 0) {
        rc |= http_headers_set(&req.headers, "X-Copy-From", from);
        /* an SLO's source is read as its manifest, whose etag is not the
         * object's: the HEAD above checked that one */
        if (if_match && *if_match && !src.slo)
            rc |= http_headers_set(&req.headers, "If-Match", if_match);
        if (nw) {
            rc |= http_headers_set(&req.headers, "X-Fresh-Metadata", "true");
            rc |= swift_new_headers(s, &req.headers, nw, show);
        }
    }
    free(from);
    if (rc) {
        http_headers_free(&req.headers);
        swift_paths_free(old_segs, nold);
        swift_paths_free(src_segs, nsrc);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    }
    /* an SLO is copied as its manifest: the copy shares the segments */
    rc = swift_send(s, &req, dcontainer, dkey, src.slo ? "multipart-manifest=get" : NULL, &resp,
                    "COPY", show, e);
    http_headers_free(&req.headers);
    if (rc == 0) {
        if (resp.status == 201 || resp.status == 200) {
            if (etag_out) {
                /* the copy of a manifest answers the manifest's etag; the
                 * object's (what HEAD says) is the source's */
                if (src.slo)
                    memcpy(etag_out, src.etag, SKY_ETAG_MAX);
                else
                    objstore_etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
            }
            if (!same) {
                swift_after_replace(s, dcontainer, dkey, &old, old_segs, nold, src_segs, nsrc, show);
                if (src.slo)
                    swift_moved_add(s, scontainer, skey, src.etag);
            }
        } else {
            rc = swift_status_error(s, &resp, "COPY", show, e);
        }
        http_response_free(&resp);
    }
    swift_paths_free(old_segs, nold);
    swift_paths_free(src_segs, nsrc);
    (void)size;
    return rc;
}

static int swift_set_meta(void *p, const char *container, const char *key, uint64_t size,
                          const char *if_match, const struct objstore_new *nw,
                          char etag_out[SKY_ETAG_MAX], const char *show, struct sky_err *e)
{
    struct swift *s = p;
    struct swift_obj cur;
    int rc = swift_head_obj(s, container, key, &cur, show, e);
    if (rc < 0)
        return rc;
    if (!cur.exists)
        return sky_fail(e, ENOENT, "swift '%s': POST %s: 404 Not Found", s->name,
                        show ? show : "");
    if (if_match && *if_match) {
        char want[SKY_ETAG_MAX];
        objstore_etag_copy(want, if_match);
        if (strcmp(want, cur.etag) != 0)
            return sky_fail(e, ESTALE, "swift '%s': POST %s: the object changed", s->name,
                            show ? show : "");
    }
    struct http_request req = { .method = "POST", .body_fd = -1 };
    struct http_response resp;
    if (swift_new_headers(s, &req.headers, nw, show) < 0) {
        http_headers_free(&req.headers);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    }
    rc = swift_send(s, &req, container, key, NULL, &resp, "POST", show, e);
    http_headers_free(&req.headers);
    if (rc < 0)
        return rc;
    if (resp.status >= 200 && resp.status <= 299) {
        /* a POST changes metadata only: the content's etag stays */
        if (etag_out)
            memcpy(etag_out, cur.etag, SKY_ETAG_MAX);
    } else {
        rc = swift_status_error(s, &resp, "POST", show, e);
    }
    http_response_free(&resp);
    (void)size;
    return rc;
}

/* DELETE with an optional query; 404 is success. */
static int delete_object(struct swift *s, const char *container, const char *key,
                         const char *query, const char *show, struct sky_err *e)
{
    struct http_request req = { .method = "DELETE", .body_fd = -1 };
    struct http_response resp;
    if (query)
        http_headers_set(&req.headers, "Accept", "application/json");
    int rc = swift_send(s, &req, container, key, query, &resp, "DELETE", show, e);
    http_headers_free(&req.headers);
    if (rc < 0)
        return rc;
    if (resp.status == 404 || (resp.status >= 200 && resp.status <= 299 && !query)) {
        http_response_free(&resp);
        return 0;
    }
    if (resp.status < 200 || resp.status > 299) {
        rc = swift_status_error(s, &resp, "DELETE", show, e);
        http_response_free(&resp);
        return rc;
    }
    /* multipart-manifest=delete answers 200 and tells in its body how
     * the segments and the manifest went */
    struct json_object *o = resp.body ? json_tokener_parse(resp.body) : NULL, *v;
    const char *status = NULL;
    if (o && json_object_object_get_ex(o, "Response Status", &v))
        status = json_object_get_string(v);
    if (status && strncmp(status, "200", 3) != 0 && strncmp(status, "404", 3) != 0)
        rc = sky_fail(e, EIO, "swift '%s': DELETE %s (a large object and its segments): %s",
                      s->name, show ? show : "", status);
    json_object_put(o);
    http_response_free(&resp);
    return rc;
}

static int swift_remove(void *p, const char *container, const char *key, const char *show,
                        struct sky_err *e)
{
    struct swift *s = p;
    struct swift_obj o;
    int rc = swift_head_obj(s, container, key, &o, show, e);
    if (rc < 0)
        return rc;
    if (!o.exists)
        return 0;
    if (o.slo && !swift_moved_take(s, container, key, o.etag))
        return delete_object(s, container, key, "multipart-manifest=delete", show, e);
    return delete_object(s, container, key, NULL, show, e);
}

/* Does the cluster offer bulk delete, and how many per request?  Asked
 * once, of /info (the capabilities). */
static size_t bulk_capacity(struct swift *s)
{
    pthread_mutex_lock(&s->lock);
    int known = s->bulk;
    size_t max = s->bulk_max;
    pthread_mutex_unlock(&s->lock);
    if (known)
        return known > 0 ? max : 0;

    char *base = NULL;
    size_t cap = 0;
    struct sky_err e = { 0 };
    if (swift_auth_storage_url(s->auth, &base, &e) < 0)
        return 0; /* ask again later */
    /* /info lives at the root of the storage URL's host: cut "/v1/..." */
    char *v1 = strstr(base, "/v1/");
    if (!v1)
        v1 = strstr(base, "/v1");
    if (v1)
        strcpy(v1, "/info");
    struct http_request req = { .method = "GET", .body_fd = -1, .url = base };
    struct http_response resp = { 0 };
    int rc = v1 ? http_do(s->http, &req, &resp, &e) : -EINVAL;
    free(base);
    if (rc == 0 && resp.status == 200 && resp.body) {
        struct json_object *o = json_tokener_parse(resp.body), *bd, *m;
        if (o && json_object_object_get_ex(o, "bulk_delete", &bd)) {
            cap = 1000;
            if (json_object_object_get_ex(bd, "max_deletes_per_request", &m)) {
                int64_t n = json_object_get_int64(m);
                if (n > 0 && (uint64_t)n < cap)
                    cap = (size_t)n;
            }
        }
        json_object_put(o);
    }
    if (rc < 0) {
        http_response_free(&resp);
        return 0; /* unreachable now: ask again later */
    }
    http_response_free(&resp);
    pthread_mutex_lock(&s->lock);
    s->bulk = cap ? 1 : -1;
    s->bulk_max = cap;
    pthread_mutex_unlock(&s->lock);
    return cap;
}

/* Delete "container/key" paths (decoded) with bulk delete; 0 when every
 * one is gone. */
static int bulk_delete(struct swift *s, const char *const *containers, char *const *keys,
                       size_t n, const char *show, struct sky_err *e)
{
    struct sbuf b = { 0 };
    for (size_t i = 0; i < n; i++) {
        char *c = http_uri_encode(containers[i], 0), *k = http_uri_encode(keys[i], 1);
        if (!c || !k)
            b.failed = 1;
        sbuf_add(&b, "/");
        sbuf_add(&b, c ? c : "");
        sbuf_add(&b, "/");
        sbuf_add(&b, k ? k : "");
        sbuf_add(&b, "\n");
        free(c);
        free(k);
    }
    char *body = sbuf_finish(&b);
    if (!body)
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    struct http_request req = { .method = "POST", .body_fd = -1, .body = body,
                                .body_len = strlen(body) };
    struct http_response resp;
    http_headers_set(&req.headers, "Content-Type", "text/plain");
    http_headers_set(&req.headers, "Accept", "application/json");
    int rc = swift_send(s, &req, NULL, NULL, "bulk-delete", &resp, "BULK DELETE", show, e);
    http_headers_free(&req.headers);
    free(body);
    if (rc < 0)
        return rc;
    if (resp.status != 200) {
        rc = swift_status_error(s, &resp, "BULK DELETE", show, e);
        http_response_free(&resp);
        return rc;
    }
    struct json_object *o = resp.body ? json_tokener_parse(resp.body) : NULL, *v;
    const char *status = NULL;
    if (o && json_object_object_get_ex(o, "Response Status", &v))
        status = json_object_get_string(v);
    if (!status)
        rc = sky_fail(e, EIO, "swift '%s': BULK DELETE %s: the answer has no Response Status",
                      s->name, show ? show : "");
    else if (strncmp(status, "200", 3) != 0) {
        int nerr = 0;
        if (json_object_object_get_ex(o, "Errors", &v) && json_object_is_type(v, json_type_array))
            nerr = (int)json_object_array_length(v);
        rc = sky_fail(e, strncmp(status, "401", 3) == 0 || strncmp(status, "403", 3) == 0
                             ? EACCES : EIO,
                      "swift '%s': BULK DELETE %s: %s (%d objects not deleted)", s->name,
                      show ? show : "", status, nerr);
    }
    json_object_put(o);
    http_response_free(&resp);
    return rc;
}

/* The core's batch delete (renames of trees; an SLO's manifest goes, its
 * segments stay with the copy). */
static int swift_remove_batch(void *p, const char *container, char *const *keys, size_t n,
                              const char *show, struct sky_err *e)
{
    struct swift *s = p;
    size_t cap = bulk_capacity(s);
    int rc = 0;
    if (!cap) {
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = delete_object(s, container, keys[i], NULL, show, e);
        return rc;
    }
    const char **conts = malloc((n ? n : 1) * sizeof *conts);
    if (!conts)
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    for (size_t i = 0; i < n; i++)
        conts[i] = container;
    for (size_t i = 0; i < n && rc == 0; i += cap)
        rc = bulk_delete(s, conts + i, keys + i, n - i < cap ? n - i : cap, show, e);
    free(conts);
    return rc;
}

int swift_delete_paths(struct swift *s, char **paths, size_t n, const char *show,
                       struct sky_err *e)
{
    size_t cap = bulk_capacity(s);
    int rc = 0, first = 0;
    const char **conts = calloc(n ? n : 1, sizeof *conts);
    char **keys = calloc(n ? n : 1, sizeof *keys);
    char **owned = calloc(n ? n : 1, sizeof *owned);
    if (!conts || !keys || !owned) {
        free(conts);
        free(keys);
        free(owned);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", s->name);
    }
    for (size_t i = 0; i < n; i++) {
        const char *slash = strchr(paths[i], '/');
        owned[i] = slash ? strndup(paths[i], (size_t)(slash - paths[i])) : NULL;
        conts[i] = owned[i];
        keys[i] = slash ? (char *)slash + 1 : NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!conts[i] || !keys[i]) {
            rc = sky_fail(e, EINVAL, "swift '%s': segment path '%.80s' names no object",
                          s->name, paths[i]);
            goto out;
        }
    if (cap) {
        for (size_t i = 0; i < n && rc == 0; i += cap)
            rc = bulk_delete(s, conts + i, keys + i, n - i < cap ? n - i : cap, show, e);
    } else {
        for (size_t i = 0; i < n; i++) {
            struct sky_err one = { 0 };
            int r = delete_object(s, conts[i], keys[i], NULL, show, &one);
            if (r < 0 && !first) {
                first = 1;
                rc = r;
                if (e)
                    *e = one;
            }
        }
    }
out:
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(conts);
    free(keys);
    free(owned);
    return rc;
}

/* ---- containers ---- */

static int container_call(struct swift *s, const char *method, const char *container,
                          long *status, struct sky_err *e)
{
    struct http_request req = { .method = method, .body_fd = -1 };
    struct http_response resp;
    int rc = swift_send(s, &req, container, NULL, NULL, &resp, method, container, e);
    http_headers_free(&req.headers);
    if (rc < 0)
        return rc;
    *status = resp.status;
    if (resp.status >= 300 && resp.status != 404 && resp.status != 409)
        rc = swift_status_error(s, &resp, method, container, e);
    http_response_free(&resp);
    return rc;
}

static int swift_container_head(void *p, const char *container, struct sky_err *e)
{
    struct swift *s = p;
    long st = 0;
    int rc = container_call(s, "HEAD", container, &st, e);
    if (rc < 0)
        return rc;
    if (st == 404)
        return sky_fail(e, ENOENT, "swift '%s': HEAD %s: 404 no such container", s->name,
                        container);
    return 0;
}

static int swift_container_create(void *p, const char *container, struct sky_err *e)
{
    struct swift *s = p;
    long st = 0;
    int rc = container_call(s, "PUT", container, &st, e);
    if (rc < 0)
        return rc;
    if (st == 202) /* Accepted: it was there already */
        return sky_fail(e, EEXIST, "swift '%s': PUT %s: the container exists", s->name,
                        container);
    if (st == 404 || st == 409)
        return sky_fail(e, EIO, "swift '%s': PUT %s: %ld", s->name, container, st);
    return 0;
}

static int swift_container_remove(void *p, const char *container, struct sky_err *e)
{
    struct swift *s = p;
    long st = 0;
    int rc = container_call(s, "DELETE", container, &st, e);
    if (rc < 0)
        return rc;
    if (st == 409)
        return sky_fail(e, ENOTEMPTY, "swift '%s': DELETE %s: 409 the container is not empty",
                        s->name, container);
    if (st == 404)
        return sky_fail(e, ENOENT, "swift '%s': DELETE %s: 404 no such container", s->name,
                        container);
    return 0;
}

/* ------------------------------------------------------------------ */
/* the moved-manifest memory                                           */
/* ------------------------------------------------------------------ */

#define MOVED_TTL_S 600

static void moved_drop(struct swift *s, size_t i)
{
    free(s->moved[i].container);
    free(s->moved[i].key);
    s->moved[i] = s->moved[--s->nmoved];
    memset(&s->moved[s->nmoved], 0, sizeof s->moved[0]);
}

void swift_moved_add(struct swift *s, const char *container, const char *key, const char *etag)
{
    char *c = strdup(container), *k = strdup(key);
    if (!c || !k) {
        free(c);
        free(k);
        return;
    }
    int64_t now = clock_now_ms() / 1000;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nmoved;)
        if (now - s->moved[i].when > MOVED_TTL_S)
            moved_drop(s, i);
        else
            i++;
    if (s->nmoved == SWIFT_MOVED_MAX) {
        size_t oldest = 0;
        for (size_t i = 1; i < s->nmoved; i++)
            if (s->moved[i].when < s->moved[oldest].when)
                oldest = i;
        moved_drop(s, oldest);
    }
    struct swift_moved *m = &s->moved[s->nmoved++];
    m->container = c;
    m->key = k;
    objstore_etag_copy(m->etag, etag);
    m->when = now;
    pthread_mutex_unlock(&s->lock);
}

bool swift_moved_take(struct swift *s, const char *container, const char *key,
                      const char *etag)
{
    bool found = false;
    char want[SKY_ETAG_MAX];
    objstore_etag_copy(want, etag);
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nmoved; i++) {
        struct swift_moved *m = &s->moved[i];
        if (strcmp(m->container, container) == 0 && strcmp(m->key, key) == 0) {
            found = strcmp(m->etag, want) == 0 &&
                    clock_now_ms() / 1000 - m->when <= MOVED_TTL_S;
            moved_drop(s, i);
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

void swift_moved_forget(struct swift *s, const char *container, const char *key)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nmoved; i++)
        if (strcmp(s->moved[i].container, container) == 0 &&
            strcmp(s->moved[i].key, key) == 0) {
            moved_drop(s, i);
            break;
        }
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ */
/* the table and the driver                                            */
/* ------------------------------------------------------------------ */

static const struct objstore_proto swift_proto = {
    .type = "swift",
    .container_key = "container",
    .flags = OBJSTORE_ACCOUNT | OBJSTORE_COND_NEW,
    .cond_new_name = "If-None-Match: *",
    .codec = &swift_codec,
    .put_max = SWIFT_PUT_MAX,
    .part_size = SWIFT_SEGMENT_SIZE,
    .max_parts = SWIFT_MAX_SEGMENTS,
    .batch_max = 1000,
    .open = swift_open,
    .close = swift_close,
    .list_page = swift_list_page,
    .list_containers = swift_list_containers,
    .head = swift_head,
    .get = swift_get,
    .put = swift_put,
    .mpu_begin = swift_mpu_begin,
    .mpu_part = swift_mpu_part,
    .mpu_complete = swift_mpu_complete,
    .mpu_end = swift_mpu_end,
    .copy = swift_copy,
    .set_meta = swift_set_meta,
    .remove = swift_remove,
    .remove_batch = swift_remove_batch,
    .container_head = swift_container_head,
    .container_create = swift_container_create,
    .container_remove = swift_container_remove,
};

static const struct sky_key swift_keys[] = {
    { "auth_url", 0,
      "TempAuth URL (http://host:8080/auth/v1.0) or Keystone v3 URL (https://host:5000/v3); "
      "default $OS_AUTH_URL or $ST_AUTH" },
    { "user", 0, "user name (TempAuth: account:user); default $OS_USERNAME or $ST_USER" },
    { "key", SKY_KEY_SECRET, "password or TempAuth key; default $OS_PASSWORD or $ST_KEY" },
    { "domain", 0, "Keystone v3: the user's domain (default $OS_USER_DOMAIN_NAME, Default)" },
    { "project", 0, "Keystone v3: the project (tenant) name; default $OS_PROJECT_NAME" },
    { "project_domain", 0,
      "Keystone v3: the project's domain (default $OS_PROJECT_DOMAIN_NAME, else domain)" },
    { "region", 0, "Keystone v3: the catalog region of the object store (default: the first)" },
    { "interface", 0, "Keystone v3: the catalog interface: public (default), internal, admin" },
    { "auth_version", 0, "1 (TempAuth) or 3 (Keystone v3); default: from auth_url" },
    { "storage_url", 0, "the storage URL (https://host/v1/AUTH_x), instead of the catalog's" },
    { "auth_token", SKY_KEY_SECRET, "a token to use with storage_url (default $OS_AUTH_TOKEN)" },
    { "container", 0, "the container; without it the cloud lists the account's containers" },
    { "prefix", 0, "a folder inside the container that is the cloud's root" },
    { "ca_file", 0, "extra CA certificates (PEM) for the servers" },
    OBJSTORE_CORE_KEYS("container"),
    HTTP_CLOUD_KEYS,
    { NULL, 0, NULL },
};

static int swift_driver_open(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e)
{
    return objstore_open(&swift_proto, cfg, ctx, e);
}

const struct sky_driver sky_driver_swift =
    OBJSTORE_DRIVER("swift", "OpenStack Swift (TempAuth or Keystone v3)", swift_keys,
                    swift_driver_open, SWIFT_SEGMENT_SIZE);
