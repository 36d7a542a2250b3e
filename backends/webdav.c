/*
 * webdav.c - the `webdav` cloud kind: a folder on a WebDAV server (Apache
 * mod_dav, nginx, rclone serve webdav, Nextcloud, ownCloud...).
 *
 * WebDAV has real directories and renames, so the driver maps each call
 * onto one protocol method, as local.c maps them onto system calls:
 *   list      PROPFIND Depth: 1 (type, size, mtime, etag in one answer;
 *             Depth: infinity is never sent)
 *   stat      PROPFIND Depth: 0
 *   read      GET with Range, and If-Match when the server gave a strong
 *             etag (a changed file is -ESTALE, never a mix of versions)
 *   write     PUT to a hidden temporary name beside the file, then MOVE
 *             with Overwrite: T onto it, so readers see the old or the new
 *             file and never half of one (Nextcloud and ownCloud, whose
 *             PUT is atomic already, get the PUT directly, with X-OC-Mtime
 *             so the file keeps its modification time; large files go to
 *             Nextcloud in its chunked upload, checked against its
 *             documentation only)
 *   mkdir     MKCOL;  rmdir: PROPFIND Depth 1 (must be empty), DELETE
 *   remove    DELETE; rename: MOVE with Overwrite: T
 *   set_attr  PROPPATCH: mode, uid and gid as dead properties of skyfs's
 *             own namespace (webdav_xml.h) on servers that keep dead
 *             properties (Apache mod_dav_fs does; a server that refuses
 *             them makes chmod/chown -EPERM); mtime as {DAV:}lastmodified
 *             on Nextcloud/ownCloud, elsewhere the server's own time stays;
 *             a folder whose time the PROPPATCH moved (Apache's .DAV)
 *             keeps the time it had ("folder times" below)
 *   xattrs    user.* as dead properties too (webdav_xml.h), read by
 *             get_meta (PROPFIND of all properties), set and removed by
 *             PROPPATCH; a rewrite carries them to the new file
 *   statfs    PROPFIND of RFC 4331's quota properties on the root
 * Symbolic links and special files have no WebDAV form: symlink() is
 * -EPERM with a message saying so, mknod is absent (fs/ answers -EPERM).
 *
 * Authentication: `user`/`password` by Basic or Digest (libcurl, through
 * http.h), or `bearer_token` as an Authorization: Bearer header; secrets
 * never reach a message.  The XML of the protocol lives in webdav_xml.c.
 *
 * All shared state is read-only after open except one flag (the server
 * refused dead properties), so calls from many threads never wait for
 * each other; the HTTP client pools connections.
 */
#include "driver.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/xattr.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "http.h"
#include "names.h"
#include "webdav_xml.h"

#define WD_TMP_PREFIX ".skyfs-tmp-"
#define WD_PROPS_DIR  ".DAV"    /* mod_dav_fs's dead properties of a folder's entries */

enum wd_vendor { WD_OTHER, WD_NEXTCLOUD, WD_OWNCLOUD };

struct wd {
    char *name;             /* cloud name, for messages */
    char *origin;           /* "https://host:port" */
    char *root_raw;         /* the url's path as written, no trailing '/' ("" for "/") */
    char *root;             /* the same, percent-decoded */
    size_t root_len;
    enum wd_vendor vendor;
    char *bearer;           /* "Bearer TOKEN" or NULL */
    bool basic_or_digest;   /* user/password given */
    atomic_bool props_refused;      /* the server keeps no dead properties */
    char *uploads;          /* Nextcloud's chunked-upload folder, full URL, or NULL */
    struct http_client *http;
};

static int oom(struct sky_err *e)
{
    return sky_fail(e, ENOMEM, "out of memory");
}

static const char *shown(const char *path)
{
    return *path ? path : "/";
}

/* ---- requests ---------------------------------------------------------- */

/* Full URL of cloud path `path`; a trailing '/' when `slash` (collections). */
static char *wd_url(const struct wd *w, const char *path, bool slash)
{
    char *enc = http_uri_encode(path, 1);
    char *url = NULL;
    if (enc && asprintf(&url, "%s%s/%s%s", w->origin, w->root_raw, enc,
                        slash && *path ? "/" : "") < 0)
        url = NULL;
    free(enc);
    return url;
}

static int wd_sign(void *arg, struct http_request *req, struct sky_err *e)
{
    const struct wd *w = arg;
    if (w->bearer && http_headers_set(&req->headers, "Authorization", w->bearer) < 0)
        return oom(e);
    return 0;
}

/* One WebDAV request. */
struct wd_req {
    const char *method;
    const char *path;           /* cloud path, for the URL and messages */
    const char *url;            /* a full URL instead of the path's (chunked uploads) */
    bool slash;                 /* address the path as a collection */
    struct http_headers headers;
    const void *body;           /* memory body (body_len bytes), or */
    int body_fd;                /* a file's bytes [body_off, body_off + body_len) */
    uint64_t body_off, body_len;
    http_sink_fn sink;
    void *sink_arg;
    uint64_t range_off, range_len;
};

static void req_init(struct wd_req *r, const char *method, const char *path)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->path = path;
    r->body_fd = -1;
}

/* Send r (its headers are consumed); 0 when any answer came back. */
static int wd_do(struct wd *w, struct wd_req *r, struct http_response *resp, struct sky_err *e)
{
    memset(resp, 0, sizeof *resp);
    char *url = r->url ? strdup(r->url) : wd_url(w, r->path, r->slash);
    if (!url) {
        http_headers_free(&r->headers);
        return oom(e);
    }
    struct http_request req = {
        .method = r->method,
        .url = url,
        .headers = r->headers,
        .body = r->body,
        .body_fd = r->body_fd,
        .body_off = r->body_off,
        .body_len = r->body_len,
        .out_cap = r->range_len,
        .sink = r->sink,
        .sink_arg = r->sink_arg,
        .range_header = r->range_len ? "Range" : NULL,
        .range_off = r->range_off,
        .range_len = r->range_len,
        .sign = wd_sign,
        .sign_arg = w,
    };
    memset(&r->headers, 0, sizeof r->headers);
    int rc = http_do(w->http, &req, resp, e);
    http_headers_free(&req.headers);
    free(url);
    return rc;
}

/* A failure that was handled: e holds nothing any more. */
static void forget_error(struct sky_err *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}

static bool status_ok(long status)
{
    return status >= 200 && status < 300;
}

/* errno for a failed answer to `method` (RFC 4918 section 9's meanings). */
static int status_errno(const char *method, long status)
{
    bool is_mkcol = strcmp(method, "MKCOL") == 0;
    bool is_move = strcmp(method, "MOVE") == 0 || strcmp(method, "COPY") == 0;
    switch (status) {
    case 401:
    case 403:
        return EACCES;
    case 404:
        return ENOENT;
    case 405:
        /* MKCOL on something that exists */
        return is_mkcol ? EEXIST : EPERM;
    case 409:
        /* a parent collection is missing (PUT, MKCOL, MOVE, COPY) */
        return ENOENT;
    case 412:
        return is_move ? EEXIST : ESTALE;
    case 413:
        return EFBIG;
    case 414:
        return ENAMETOOLONG;
    case 423:
        return EBUSY;
    case 502:
        return is_move ? EXDEV : EIO;
    case 507:
        return ENOSPC;
    default:
        return EIO;
    }
}

/* e for a failed answer: "webdav 'nas': PUT a.txt: 507 Insufficient Storage". */
static int wd_fail_resp(struct wd *w, const char *method, const char *path,
                        const struct http_response *resp, struct sky_err *e)
{
    int err = status_errno(method, resp->status);
    if (resp->status == 401)
        return sky_fail(e, err, "webdav '%s': %s %s: 401: the server refused the %s; check "
                        "them in the config", w->name, method, shown(path),
                        w->bearer ? "bearer token" :
                        w->basic_or_digest ? "user name or password (wrong user or password)"
                                           : "request without credentials (set user and password)");
    if (resp->status == 507)
        return sky_fail(e, err, "webdav '%s': %s %s: 507: the server has no space left",
                        w->name, method, shown(path));
    return sky_fail(e, err, "webdav '%s': %s %s: %ld%s", w->name, method, shown(path),
                    resp->status, err == EIO ? " (unexpected answer)" : "");
}

/* A failure with no answer: prefix http.c's message. */
static int wd_fail_transport(struct wd *w, const char *method, const char *path, int rc,
                             struct sky_err *e)
{
    if (e && e->code) {
        sky_err_prefix(e, "webdav '%s': %s %s", w->name, method, shown(path));
        return rc;
    }
    return sky_fail(e, -rc, "webdav '%s': %s %s: %s", w->name, method, shown(path),
                    strerror(-rc));
}

/* wd_do and the status check: 0 with resp to free, or a negative errno. */
static int wd_call(struct wd *w, struct wd_req *r, struct http_response *resp, struct sky_err *e)
{
    int rc = wd_do(w, r, resp, e);
    if (rc < 0) {
        http_response_free(resp);
        return wd_fail_transport(w, r->method, r->path, rc, e);
    }
    if (!status_ok(resp->status)) {
        rc = wd_fail_resp(w, r->method, r->path, resp, e);
        http_response_free(resp);
        return rc;
    }
    return 0;
}

static int wd_call0(struct wd *w, struct wd_req *r, struct sky_err *e)
{
    struct http_response resp;
    int rc = wd_call(w, r, &resp, e);
    if (rc == 0)
        http_response_free(&resp);
    return rc;
}

/* ---- attributes -------------------------------------------------------- */

static void attr_from_entry(const struct webdav_entry *ent, struct sky_attr *a)
{
    memset(a, 0, sizeof *a);
    a->kind = ent->is_dir ? SKY_DIR : SKY_FILE;
    a->size = ent->is_dir || !ent->has_size ? 0 : ent->size;
    if (ent->has_mtime) {
        a->mtime_ns = ent->mtime_ns;
        a->has |= SKY_HAS_MTIME;
    }
    /* a time set through skyfs, while the resource is still that version */
    if (ent->has_skyfs_mtime && ent->has_etag &&
        strcmp(ent->skyfs_mtime_etag, ent->etag) == 0) {
        a->mtime_ns = ent->skyfs_mtime_ns;
        a->has |= SKY_HAS_MTIME;
    }
    if (ent->has_mode) {
        a->mode = ent->mode;
        a->has |= SKY_HAS_MODE;
    }
    if (ent->has_uid) {
        a->uid = ent->uid;
        a->has |= SKY_HAS_UID;
    }
    if (ent->has_gid) {
        a->gid = ent->gid;
        a->has |= SKY_HAS_GID;
    }
    if (ent->is_dir)
        return;
    /* the server's etag; without one, mtime and size stand for the version */
    if (ent->has_etag)
        snprintf(a->etag, sizeof a->etag, "%s", ent->etag);
    else
        snprintf(a->etag, sizeof a->etag, "m%llx-s%llx", (unsigned long long)a->mtime_ns,
                 (unsigned long long)a->size);
}

/* Is this etag one the server gave, strong, so If-Match can carry it? */
static bool etag_matchable(const char *etag)
{
    return etag && etag[0] == '"';
}

/* The decoded full server path of cloud path `path` into a malloc'd
 * string: root + "/" + path, "" for the server's own root. */
static char *full_path(const struct wd *w, const char *path)
{
    char *p;
    if (asprintf(&p, "%s%s%s", w->root, *path ? "/" : "", path) < 0)
        return NULL;
    return p;
}

/* ---- PROPFIND ---------------------------------------------------------- */

struct propfind {
    struct wd *w;
    const char *dir;            /* the cloud path asked about */
    char *self;                 /* its decoded server path */
    size_t self_len;
    bool self_seen, self_is_dir;
    struct sky_attr self_attr;
    char self_etag[SKY_ETAG_MAX];   /* the server's etag of it, also for folders ("" if none) */
    struct sky_objmeta self_user;   /* its extended attributes (an allprop PROPFIND) */
    sky_list_cb cb;             /* children (Depth 1) */
    void *arg;
    size_t children;            /* counted, also those skipped */
};

static void warn_skipped(struct propfind *p, const char *name, size_t n, const char *why)
{
    char shown_name[300];
    sky_name_show(name, n, shown_name, sizeof shown_name);
    sky_log(SKY_LOG_WARN, "webdav '%s': %s/%s skipped: the name %s", p->w->name,
            shown(p->dir), shown_name, why);
}

static int propfind_entry(void *arg, const struct webdav_entry *ent)
{
    struct propfind *p = arg;
    const char *path = ent->path;
    size_t len = ent->path_len;
    if (len == 1 && path[0] == '/')
        len = 0;                /* the server's root */
    if (len == p->self_len && memcmp(path, p->self, len) == 0) {
        p->self_seen = true;
        p->self_is_dir = ent->is_dir;
        attr_from_entry(ent, &p->self_attr);
        if (ent->has_etag)
            snprintf(p->self_etag, sizeof p->self_etag, "%s", ent->etag);
        sky_objmeta_free(&p->self_user);
        if (sky_objmeta_copy(&p->self_user, &ent->user) < 0)
            return -ENOMEM;
        p->self_user.has_user = true;
        return 0;
    }
    /* a child: self + "/" + one component */
    if (len <= p->self_len + 1 || memcmp(path, p->self, p->self_len) != 0 ||
        path[p->self_len] != '/')
        return 0;               /* not under the folder asked about: ignored */
    const char *name = path + p->self_len + 1;
    size_t n = len - p->self_len - 1;
    if (ent->is_dir && n == strlen(WD_PROPS_DIR) && memcmp(name, WD_PROPS_DIR, n) == 0)
        return 0;               /* Apache's property store, served by another server */
    p->children++;
    if (!p->cb)
        return 0;
    if (memchr(name, '/', n))
        return 0;               /* deeper than asked: some servers add them */
    const char *why = sky_name_problem(name, n);
    if (why) {
        warn_skipped(p, name, n, why);
        return 0;
    }
    if (strncmp(name, WD_TMP_PREFIX, strlen(WD_TMP_PREFIX)) == 0)
        return 0;               /* an upload of ours (or of another skyfs) under way */
    struct sky_dirent d = { .name = name };
    attr_from_entry(ent, &d.attr);
    return p->cb(p->arg, &d);
}

/* PROPFIND `path` with `depth` ("0" or "1"), addressed as a collection
 * when `slash`: p gets what the answer says of path itself, cb (may be
 * NULL) each child that can be a file name.  Free p with propfind_done,
 * whatever the result. */
static int propfind(struct wd *w, const char *path, const char *depth, bool slash,
                    enum webdav_propfind what, sky_list_cb cb, void *arg, struct propfind *p,
                    struct sky_err *e)
{
    memset(p, 0, sizeof *p);
    p->w = w;
    p->dir = path;
    p->cb = cb;
    p->arg = arg;
    p->self = full_path(w, path);
    if (!p->self)
        return oom(e);
    p->self_len = strlen(p->self);
    struct wd_req r;
    req_init(&r, "PROPFIND", path);
    r.slash = slash;
    const char *body = webdav_propfind_body(what);
    r.body = body;
    r.body_len = strlen(body);
    if (http_headers_set(&r.headers, "Depth", depth) < 0 ||
        http_headers_set(&r.headers, "Content-Type", "application/xml; charset=utf-8") < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    int rc = wd_call(w, &r, &resp, e);
    if (rc < 0)
        return rc;
    if (resp.status != 207) {
        rc = sky_fail(e, EIO, "webdav '%s': PROPFIND %s: %ld where 207 Multi-Status was "
                      "expected; is the url a WebDAV folder?", w->name, shown(path), resp.status);
    } else {
        rc = webdav_parse_multistatus(resp.body, resp.body_len, propfind_entry, p, e);
        if (rc == -ENOMEM && !e->code)
            sky_fail(e, ENOMEM, "out of memory");
        if (rc == -EBADMSG || rc == -ENOMEM)
            sky_err_prefix(e, "webdav '%s': PROPFIND %s", w->name, shown(path));
    }
    http_response_free(&resp);
    if (rc == 0 && !p->self_seen)
        rc = sky_fail(e, EIO, "webdav '%s': PROPFIND %s: the answer does not describe the "
                      "resource asked about", w->name, shown(path));
    return rc;
}

static void propfind_done(struct propfind *p)
{
    free(p->self);
    p->self = NULL;
    sky_objmeta_free(&p->self_user);
}

/* ---- Nextcloud's chunked upload ---------------------------------------- */

/* Files larger than this go up in chunks on Nextcloud (its chunks must be
 * 5 MB to 5 GB, all but the last; at most 10,000 of them). */
#define WD_CHUNK_SIZE      (16ull << 20)
#define WD_CHUNKS_MAX      10000u

/* The chunked-upload folder of a Nextcloud files URL path (as written):
 * "/remote.php/dav/files/alice/sub" -> "/remote.php/dav/uploads/alice",
 * malloc'd; NULL when the path is not of that form (or out of memory). */
char *webdav_nextcloud_uploads_path(const char *root_raw)
{
    const char *f = strstr(root_raw, "/remote.php/dav/files/");
    if (!f)
        return NULL;
    const char *user = f + strlen("/remote.php/dav/files/");
    size_t ulen = strcspn(user, "/");
    if (ulen == 0)
        return NULL;
    char *out;
    if (asprintf(&out, "%.*s/remote.php/dav/uploads/%.*s", (int)(f - root_raw), root_raw,
                 (int)ulen, user) < 0)
        return NULL;
    return out;
}

/* One request of a chunked upload to the upload folder's `item` ("",
 * "00001", ".file"), with the Destination (and total length) headers
 * every request of version 2 carries; path is the file's, for messages. */
static int chunk_call(struct wd *w, const char *method, const char *id, const char *item,
                      const char *path, const char *dest, uint64_t total,
                      struct http_headers *extra, int fd, uint64_t off, uint64_t len,
                      struct sky_err *e)
{
    char *url = NULL;
    if (asprintf(&url, "%s/%s%s%s", w->uploads, id, *item ? "/" : "", item) < 0) {
        http_headers_free(extra);
        return oom(e);
    }
    struct wd_req r;
    req_init(&r, method, path);
    r.url = url;
    if (extra) {
        r.headers = *extra;
        memset(extra, 0, sizeof *extra);
    }
    char tl[32];
    snprintf(tl, sizeof tl, "%llu", (unsigned long long)total);
    if (http_headers_set(&r.headers, "Destination", dest) < 0 ||
        (total && http_headers_set(&r.headers, "OC-Total-Length", tl) < 0)) {
        http_headers_free(&r.headers);
        free(url);
        return oom(e);
    }
    r.body_fd = len ? fd : -1;
    r.body_off = off;
    r.body_len = len;
    int rc = wd_call0(w, &r, e);
    free(url);
    return rc;
}

/* Upload size bytes of fd to `path` with Nextcloud's chunked upload
 * (version 2): MKCOL an upload folder, PUT the chunks, MOVE its .file onto
 * the path (the file appears at once, with X-OC-Mtime from hs); the
 * folder is deleted when anything fails.  Checked against Nextcloud's
 * documentation only: the tests have no Nextcloud server. */
static int put_chunked(struct wd *w, const char *path, int fd, uint64_t size,
                       struct http_headers *hs, struct sky_err *e)
{
    unsigned long long rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (unsigned long long)random();
    char id[40];
    snprintf(id, sizeof id, "skyfs-%016llx", rnd);
    char *dest = wd_url(w, path, false);
    if (!dest) {
        http_headers_free(hs);
        return oom(e);
    }
    int rc = chunk_call(w, "MKCOL", id, "", path, dest, 0, NULL, -1, 0, 0, e);
    uint64_t nchunks = (size + WD_CHUNK_SIZE - 1) / WD_CHUNK_SIZE;
    for (uint64_t i = 0; rc == 0 && i < nchunks; i++) {
        char item[16];
        snprintf(item, sizeof item, "%05llu", (unsigned long long)i + 1);
        uint64_t off = i * WD_CHUNK_SIZE;
        uint64_t len = size - off < WD_CHUNK_SIZE ? size - off : WD_CHUNK_SIZE;
        rc = chunk_call(w, "PUT", id, item, path, dest, size, NULL, fd, off, len, e);
    }
    if (rc == 0) {
        if (http_headers_set(hs, "Overwrite", "T") < 0) {
            rc = oom(e);
        } else {
            rc = chunk_call(w, "MOVE", id, ".file", path, dest, size, hs, -1, 0, 0, e);
        }
    }
    if (rc < 0) {
        struct sky_err e2 = { 0 };
        chunk_call(w, "DELETE", id, "", path, dest, 0, NULL, -1, 0, 0, &e2);
    }
    http_headers_free(hs);
    free(dest);
    return rc;
}

/* ---- open / close ------------------------------------------------------ */

static void wd_free(struct wd *w)
{
    if (!w)
        return;
    http_client_free(w->http);
    free(w->name);
    free(w->origin);
    free(w->root_raw);
    free(w->root);
    free(w->uploads);
    if (w->bearer) {
        explicit_bzero(w->bearer, strlen(w->bearer));
        free(w->bearer);
    }
    free(w);
}

static void wd_close(void *ctx)
{
    wd_free(ctx);
}

/* Split url into origin and path; 0 or -EINVAL with e naming the line. */
static int parse_url(struct wd *w, const struct sky_cloud_config *cfg, struct sky_err *e)
{
    const char *url = sky_cloud_get(cfg, "url");
    int line = sky_cloud_line(cfg, "url");
    bool http = strncasecmp(url, "http://", 7) == 0, https = strncasecmp(url, "https://", 8) == 0;
    if (!http && !https)        /* shown unless it may hold a password */
        return sky_fail(e, EINVAL, "%s:%d: url = %s is not an http:// or https:// URL; write "
                        "e.g. url = https://cloud.example.org/remote.php/dav/files/alice/",
                        cfg->file, line, strchr(url, '@') ? "(not shown)" : url);
    const char *host = url + (https ? 8 : 7);
    size_t hlen = strcspn(host, "/?#");
    if (memchr(host, '@', hlen))        /* the url itself is a secret then: not shown */
        return sky_fail(e, EINVAL, "%s:%d: url holds a user name or password; write "
                        "https://HOST[:PORT]/PATH/ and put them in user and password",
                        cfg->file, line);
    if (hlen == 0)
        return sky_fail(e, EINVAL, "%s:%d: url = %s has no host; write "
                        "https://HOST[:PORT]/PATH/", cfg->file, line, url);
    if (host[hlen] == '?' || host[hlen] == '#' || strpbrk(host + hlen, "?#"))
        return sky_fail(e, EINVAL, "%s:%d: url = %s holds a query or fragment; a WebDAV folder "
                        "is a plain path", cfg->file, line, url);
    if (asprintf(&w->origin, "%.*s", (int)(host + hlen - url), url) < 0)
        return oom(e);
    w->root_raw = strdup(host + hlen);
    if (!w->root_raw)
        return oom(e);
    size_t n = strlen(w->root_raw);
    while (n && w->root_raw[n - 1] == '/')
        w->root_raw[--n] = '\0';
    w->root = strdup(w->root_raw);
    if (!w->root)
        return oom(e);
    w->root_len = sky_pct_decode(w->root, false);
    if (w->root_len != strlen(w->root))
        return sky_fail(e, EINVAL, "%s:%d: url = %s holds %%00", cfg->file, line, url);
    return 0;
}

static int wd_open(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e)
{
    struct wd *w = calloc(1, sizeof *w);
    if (!w)
        return oom(e);
    atomic_init(&w->props_refused, false);
    int rc = 0;
    w->name = strdup(cfg->name);
    if (!w->name) {
        rc = oom(e);
        goto fail;
    }
    rc = parse_url(w, cfg, e);
    if (rc < 0)
        goto fail;
    const char *vendor = sky_cloud_get(cfg, "vendor");
    if (!vendor || strcasecmp(vendor, "other") == 0) {
        w->vendor = WD_OTHER;
    } else if (strcasecmp(vendor, "nextcloud") == 0) {
        w->vendor = WD_NEXTCLOUD;
    } else if (strcasecmp(vendor, "owncloud") == 0) {
        w->vendor = WD_OWNCLOUD;
    } else {
        rc = sky_fail(e, EINVAL, "%s:%d: vendor = %s is not known; write nextcloud, owncloud "
                      "or other", cfg->file, sky_cloud_line(cfg, "vendor"), vendor);
        goto fail;
    }
    const char *user = sky_cloud_get(cfg, "user");
    const char *password = sky_cloud_get(cfg, "password");
    const char *token = sky_cloud_get(cfg, "bearer_token");
    if (password && !user) {
        rc = sky_fail(e, EINVAL, "%s:%d: password is set but user is not; add user = NAME",
                      cfg->file, sky_cloud_line(cfg, "password"));
        goto fail;
    }
    if (token && user) {
        rc = sky_fail(e, EINVAL, "%s:%d: both user and bearer_token are set; keep one way to "
                      "sign in", cfg->file, sky_cloud_line(cfg, "bearer_token"));
        goto fail;
    }
    if (token && (!*token || strpbrk(token, "\r\n"))) {
        rc = sky_fail(e, EINVAL, "%s:%d: bearer_token is empty or holds a line break; write "
                      "the token on one line", cfg->file, sky_cloud_line(cfg, "bearer_token"));
        goto fail;
    }
    if (token && asprintf(&w->bearer, "Bearer %s", token) < 0) {
        w->bearer = NULL;
        rc = oom(e);
        goto fail;
    }
    struct http_options opt;
    rc = http_options_from_cloud(cfg, &opt, e);
    if (rc < 0)
        goto fail;
    if (user) {
        opt.user = user;
        opt.password = password ? password : "";
        w->basic_or_digest = true;
    }
    if (w->vendor == WD_NEXTCLOUD) {
        char *up = webdav_nextcloud_uploads_path(w->root_raw);
        if (up && asprintf(&w->uploads, "%s%s", w->origin, up) < 0)
            w->uploads = NULL;
        free(up);
    }
    rc = http_client_new(&opt, &w->http, e);
    if (rc < 0) {
        sky_err_prefix(e, "%s:%d: ca_file", cfg->file, sky_cloud_line(cfg, "ca_file"));
        goto fail;
    }
    *ctx = w;
    return 0;
fail:
    wd_free(w);
    return rc;
}

/* ---- reading ----------------------------------------------------------- */

static int wd_list(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct wd *w = ctx;
    struct propfind p;
    int rc = propfind(w, dir, "1", true, WEBDAV_PROPS, cb, arg, &p, e);
    if (rc == 0 && !p.self_is_dir)
        rc = sky_fail(e, ENOTDIR, "webdav '%s': list %s: not a folder", w->name, shown(dir));
    propfind_done(&p);
    return rc;
}

/* stat, and the server's etag (folders too) into etag[SKY_ETAG_MAX] unless NULL */
static int stat_etag(struct wd *w, const char *path, struct sky_attr *out, char *etag,
                     struct sky_err *e)
{
    struct propfind p;
    int rc = propfind(w, path, "0", !*path, WEBDAV_PROPS, NULL, NULL, &p, e);
    if (rc == 0) {
        *out = p.self_attr;
        if (etag)
            memcpy(etag, p.self_etag, SKY_ETAG_MAX);
    }
    propfind_done(&p);
    return rc;
}

static int wd_stat(void *ctx, const char *path, struct sky_attr *out, struct sky_err *e)
{
    return stat_etag(ctx, path, out, NULL, e);
}

/* One ranged GET; with If-Match: etag when `match`.  0, -ESTALE on 412
 * (e filled), or another negative errno. */
static int get_range(struct wd *w, const char *path, const char *etag, bool match,
                     uint64_t off, uint64_t len, sky_sink_fn sink, void *sink_arg,
                     struct sky_err *e)
{
    struct wd_req r;
    req_init(&r, "GET", path);
    r.sink = sink;
    r.sink_arg = sink_arg;
    r.range_off = off;
    r.range_len = len;          /* http.c asks for the range and checks the answer */
    if (match && http_headers_set(&r.headers, "If-Match", etag) < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    int rc = wd_do(w, &r, &resp, e);
    if (rc < 0) {
        rc = wd_fail_transport(w, "GET", path, rc, e);
    } else if (status_ok(resp.status) || resp.status == 416) {
        /* delivered; 416: at or past the end, nothing to read */
    } else if (resp.status == 412) {
        rc = sky_fail(e, ESTALE, "webdav '%s': GET %s: changed since it was listed (etag %s)",
                      w->name, path, etag);
    } else {
        rc = wd_fail_resp(w, "GET", path, &resp, e);
    }
    http_response_free(&resp);
    return rc;
}

static int wd_read(void *ctx, const char *path, const char *etag, uint64_t off, uint64_t len,
                   sky_sink_fn sink, void *sink_arg, struct sky_err *e)
{
    struct wd *w = ctx;
    if (len == 0)
        return 0;
    bool match = etag_matchable(etag);
    int rc = get_range(w, path, etag, match, off, len, sink, sink_arg, e);
    if (rc == -ESTALE) {
        /* A server that calls a version weak for a while (Apache, for a
         * second after a change) fails If-Match although the version is
         * the same: the listing's etag decides, then a plain GET reads. */
        struct sky_attr cur;
        struct sky_err e2 = { 0 };
        if (wd_stat(w, path, &cur, &e2) == 0 && strcmp(cur.etag, etag) == 0) {
            forget_error(e);
            rc = get_range(w, path, etag, false, off, len, sink, sink_arg, e);
        }
    }
    return rc;
}

/* ---- properties -------------------------------------------------------- */

/* Send a PROPPATCH `body` (freed here).  -EPERM when the server keeps no
 * such properties. */
static int proppatch_send(struct wd *w, const char *path, bool slash, char *body,
                          struct sky_err *e)
{
    if (!body)
        return oom(e);
    struct wd_req r;
    req_init(&r, "PROPPATCH", path);
    r.slash = slash;
    r.body = body;
    r.body_len = strlen(body);
    if (http_headers_set(&r.headers, "Content-Type", "application/xml; charset=utf-8") < 0) {
        http_headers_free(&r.headers);
        free(body);
        return oom(e);
    }
    struct http_response resp;
    int rc = wd_do(w, &r, &resp, e);
    free(body);
    if (rc < 0)
        return wd_fail_transport(w, "PROPPATCH", path, rc, e);
    long refused = resp.status;
    if (resp.status == 207 && !webdav_proppatch_refused(resp.body, resp.body_len, &refused)) {
        rc = 0;
    } else if (resp.status == 207 || resp.status == 403 || resp.status == 405 ||
               resp.status == 409 || resp.status == 500 || resp.status == 501) {
        /* 500: rclone serve webdav fails PROPPATCH on folders so */
        rc = sky_fail(e, EPERM, "webdav '%s': PROPPATCH %s: %ld: the server keeps no "
                      "properties for skyfs, so modes and owners cannot be stored there",
                      w->name, shown(path), refused);
    } else if (status_ok(resp.status)) {
        rc = 0;
    } else {
        rc = wd_fail_resp(w, "PROPPATCH", path, &resp, e);
    }
    http_response_free(&resp);
    return rc;
}

/* PROPPATCH skyfs's dead properties named in `which` (MODE, UID, GID,
 * MTIME bound to `etag`), the extended attributes in user (may be NULL)
 * and, when lastmod_ns >= 0, {DAV:}lastmodified.  -EPERM when the server
 * keeps no such properties. */
static int proppatch(struct wd *w, const char *path, bool slash, const struct sky_attr *attr,
                     unsigned which, const char *etag, const struct sky_objmeta *user,
                     int64_t lastmod_ns, struct sky_err *e)
{
    return proppatch_send(w, path, slash,
                          webdav_proppatch_body(attr, which, etag, user, lastmod_ns), e);
}

static bool oc_vendor(const struct wd *w)
{
    return w->vendor == WD_NEXTCLOUD || w->vendor == WD_OWNCLOUD;
}

/* What of attr skyfs keeps in dead properties on a server of this vendor:
 * mode, owner and (but on Nextcloud/ownCloud, which keep the time
 * themselves) mtime.  0 once the server refused dead properties. */
static unsigned props_of(const struct wd *w, const struct sky_attr *attr, bool with_mtime)
{
    if (!attr || atomic_load(&w->props_refused))
        return 0;
    unsigned m = SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID;
    if (with_mtime && !oc_vendor(w))
        m |= SKY_HAS_MTIME;
    return attr->has & m;
}

/* After a new file or folder: store the attributes `which` names, where
 * the server keeps them (the mtime bound to `etag`); a server that does
 * not only loses those (a warning once), never the file. */
static void store_new_props(struct wd *w, const char *path, bool slash,
                            const struct sky_attr *attr, unsigned which, const char *etag,
                            const struct sky_objmeta *meta)
{
    if (atomic_load(&w->props_refused))
        return;
    if (meta && meta->nuser == 0)
        meta = NULL;
    if (!which && !meta)
        return;
    struct sky_err e2 = { 0 };
    int rc = proppatch(w, path, slash, attr, which, etag, meta, -1, &e2);
    if (rc == -EPERM && !atomic_exchange(&w->props_refused, true))
        sky_log(SKY_LOG_WARN, "%s; files show the default mode and the server's times",
                e2.msg);
    else if (rc < 0 && rc != -EPERM)
        sky_log(SKY_LOG_WARN, "webdav '%s': %s: mode, owner and time not stored: %s", w->name,
                shown(path), e2.msg);
}

/* ---- folder times ------------------------------------------------------ */

/*
 * Apache's mod_dav_fs keeps the dead properties of a folder's entries, and
 * of the folder itself, in a .DAV folder it makes inside the folder at the
 * first PROPPATCH there (never listed: Apache hides it, propfind_entry too).
 * Making it moves the folder's mtime and etag on the server although
 * nothing changed for POSIX.  So a PROPPATCH of an existing file or folder
 * (chmod, chown, utime, setxattr) looks at the folder it may move right
 * before and right after; when the folder's etag moved, the folder keeps
 * the time it had, stored as skyfs's mtime bound to the new etag.  A real
 * change later (another client's new file) gives the folder another etag,
 * and the server's time shows again.  A real change by another client
 * between the two looks is taken for the PROPPATCH's: the folder shows its
 * old time until its next change.
 */
struct folder_guard {
    char *dir;                  /* the folder looked at, or NULL: none */
    int64_t mtime_ns;           /* its time before */
    char etag[SKY_ETAG_MAX];    /* its etag before */
};

/* Look at the folder a PROPPATCH of `path` may move: path itself for a
 * folder (`dir_attr` and `dir_etag` are what the caller read of it right
 * before, or NULL), else its parent.  Nothing to look at on
 * Nextcloud/ownCloud, on a server that keeps no dead properties, or for a
 * folder without a strong etag to bind a time to. */
static void guard_begin(struct wd *w, const char *path, bool is_dir,
                        const struct sky_attr *dir_attr, const char *dir_etag,
                        struct folder_guard *g)
{
    memset(g, 0, sizeof *g);
    if (oc_vendor(w) || atomic_load(&w->props_refused))
        return;
    const char *slash = strrchr(path, '/');
    char *dir = is_dir ? strdup(path) : strndup(path, slash ? (size_t)(slash - path) : 0);
    if (!dir)
        return;
    struct sky_attr a;
    struct sky_err e2 = { 0 };
    if (is_dir && dir_attr && dir_etag) {
        a = *dir_attr;
        snprintf(g->etag, sizeof g->etag, "%s", dir_etag);
    } else if (stat_etag(w, dir, &a, g->etag, &e2) < 0) {
        a.has = 0;
    }
    if (!(a.has & SKY_HAS_MTIME) || !etag_matchable(g->etag)) {
        free(dir);
        return;
    }
    g->dir = dir;
    g->mtime_ns = a.mtime_ns;
}

/* After the PROPPATCH: when the folder's etag moved, bind its time before
 * (or `set_mtime_ns`, when >= 0: a time just set on the folder itself) to
 * the new etag.  Best effort: a failure leaves the server's time. */
static void guard_end(struct wd *w, struct folder_guard *g, int64_t set_mtime_ns)
{
    if (!g->dir)
        return;
    struct sky_attr now;
    char etag[SKY_ETAG_MAX] = "";
    struct sky_err e2 = { 0 };
    if (stat_etag(w, g->dir, &now, etag, &e2) == 0 && etag_matchable(etag) &&
        strcmp(etag, g->etag) != 0) {
        struct sky_attr t = { .mtime_ns = set_mtime_ns >= 0 ? set_mtime_ns : g->mtime_ns };
        if (proppatch(w, g->dir, true, &t, SKY_HAS_MTIME, etag, NULL, -1, &e2) < 0)
            sky_log(SKY_LOG_WARN, "webdav '%s': %s: the folder's time is the server's: %s",
                    w->name, shown(g->dir), e2.msg);
    }
    free(g->dir);
    g->dir = NULL;
}

/* ---- writing ----------------------------------------------------------- */

/* A hidden name beside `path` for an upload under way. */
static char *tmp_name(const char *path)
{
    unsigned long long rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (unsigned long long)random();
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) + 1 : 0;
    char *t;
    if (asprintf(&t, "%.*s" WD_TMP_PREFIX "%016llx", dirlen, path, rnd) < 0)
        return NULL;
    return t;
}

static int wd_move_over(struct wd *w, const char *from, const char *to, bool slash,
                        bool overwrite, struct sky_err *e);

/* MOVE from -> to, replacing what is at `to`. */
static int wd_move(struct wd *w, const char *from, const char *to, bool slash,
                   struct sky_err *e)
{
    return wd_move_over(w, from, to, slash, true, e);
}

/* MOVE from -> to; with overwrite false (Overwrite: F) the server refuses
 * (412) when something is at `to`: -ESTALE, nothing moved. */
static int wd_move_over(struct wd *w, const char *from, const char *to, bool slash,
                        bool overwrite, struct sky_err *e)
{
    char *dest = wd_url(w, to, slash);
    if (!dest)
        return oom(e);
    struct wd_req r;
    req_init(&r, "MOVE", from);
    r.slash = slash;
    int rc = http_headers_set(&r.headers, "Destination", dest) < 0 ||
             http_headers_set(&r.headers, "Overwrite", overwrite ? "T" : "F") < 0 ? -ENOMEM : 0;
    free(dest);
    if (rc < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    rc = wd_do(w, &r, &resp, e);
    if (rc < 0)
        return wd_fail_transport(w, "MOVE", from, rc, e);
    if (resp.status == 404 && http_retried(&resp)) {
        /* an earlier attempt may have moved it: then `to` is there */
        struct sky_attr a;
        struct sky_err e2 = { 0 };
        rc = stat_etag(w, to, &a, NULL, &e2) == 0 ? 0 : wd_fail_resp(w, "MOVE", from, &resp, e);
    } else if (!overwrite && resp.status == 412) {
        rc = sky_fail(e, ESTALE, "webdav '%s': %s was created since this machine last saw it "
                      "(MOVE with Overwrite: F refused)", w->name, shown(to));
    } else if (!status_ok(resp.status)) {
        rc = wd_fail_resp(w, "MOVE", from, &resp, e);
    }
    http_response_free(&resp);
    return rc;
}

static int wd_delete(struct wd *w, const char *path, bool slash, struct sky_err *e)
{
    struct wd_req r;
    req_init(&r, "DELETE", path);
    r.slash = slash;
    struct http_response resp;
    int rc = wd_do(w, &r, &resp, e);
    if (rc < 0)
        return wd_fail_transport(w, "DELETE", path, rc, e);
    if (resp.status == 404 && http_retried(&resp))
        rc = 0;                 /* an earlier attempt did it */
    else if (!status_ok(resp.status))
        rc = wd_fail_resp(w, "DELETE", path, &resp, e);
    http_response_free(&resp);
    return rc;
}

/* PUT size bytes of fd to `path` (headers consumed). */
static int put_file(struct wd *w, const char *path, int fd, uint64_t size,
                    struct http_headers *hs, struct sky_err *e)
{
    struct wd_req r;
    req_init(&r, "PUT", path);
    r.headers = *hs;
    memset(hs, 0, sizeof *hs);
    r.body_fd = size ? fd : -1;
    r.body_len = size;
    return wd_call0(w, &r, e);
}

/* The preconditions of attr (driver.h PRECONDITIONS) with a PROPFIND of
 * path right now: -ESTALE when it holds another version.  With `none_too`
 * false the caller checks SKY_EXPECT_NONE itself (Overwrite: F). */
static int compare_now(struct wd *w, const char *path, const struct sky_attr *attr,
                       bool none_too, struct sky_err *e)
{
    if (!attr || !(attr->expect & (SKY_EXPECT_MATCH | (none_too ? SKY_EXPECT_NONE : 0))))
        return 0;
    struct sky_attr now;
    int rc = wd_stat(w, path, &now, e);
    if (rc == -ENOENT) {
        forget_error(e);
        if (!(attr->expect & SKY_EXPECT_MATCH))
            return 0;
        return sky_fail(e, ESTALE, "webdav '%s': %s was deleted since this machine last saw "
                        "it", w->name, shown(path));
    }
    if (rc < 0)
        return rc;
    if ((attr->expect & SKY_EXPECT_MATCH) && strcmp(now.etag, attr->etag) == 0)
        return 0;
    return sky_fail(e, ESTALE, "webdav '%s': %s was %s since this machine last saw it",
                    w->name, shown(path),
                    (attr->expect & SKY_EXPECT_NONE) ? "created" : "changed");
}

static int wd_guarantee(void *ctx, char *why, size_t size)
{
    struct wd *w = ctx;
    if (oc_vendor(w))
        snprintf(why, size, "a version compare (PROPFIND) right before each upload and "
                 "delete");
    else
        snprintf(why, size, "a new file goes into place with MOVE Overwrite: F (the server "
                 "refuses to replace); a replacement or delete compares the version "
                 "(PROPFIND) right before");
    return SKY_GUARD_COMPARE;
}

static int wd_write(void *ctx, const char *path, int fd, uint64_t size,
                    const struct sky_attr *attr, const struct sky_objmeta *meta,
                    struct sky_attr *out, struct sky_err *e)
{
    struct wd *w = ctx;
    struct http_headers hs = { 0 };
    if (meta && meta->content_type &&
        http_headers_set(&hs, "Content-Type", meta->content_type) < 0)
        goto nomem;
    int rc;
    if (oc_vendor(w)) {
        /* Nextcloud/ownCloud write into a .part file and rename it: atomic */
        if (attr && (attr->has & SKY_HAS_MTIME)) {
            char mt[32];
            snprintf(mt, sizeof mt, "%lld", (long long)(attr->mtime_ns / 1000000000LL));
            if (http_headers_set(&hs, "X-OC-Mtime", mt) < 0)
                goto nomem;
        }
        rc = compare_now(w, path, attr, true, e);
        if (rc < 0) {
            http_headers_free(&hs);
            return rc;
        }
        if (w->uploads && size > WD_CHUNK_SIZE && size <= WD_CHUNK_SIZE * WD_CHUNKS_MAX)
            rc = put_chunked(w, path, fd, size, &hs, e);
        else
            rc = put_file(w, path, fd, size, &hs, e);
        if (rc == 0)
            store_new_props(w, path, false, attr, props_of(w, attr, false), NULL, meta);
    } else {
        char *tmp = tmp_name(path);
        if (!tmp)
            goto nomem;
        rc = put_file(w, tmp, fd, size, &hs, e);
        bool put_ok = rc == 0;
        unsigned which = rc == 0 ? props_of(w, attr, true) : 0;
        if (rc == 0 && (which || (meta && meta->nuser))) {
            /* the time goes with the version it was set on (its etag),
             * which a MOVE keeps */
            struct sky_attr cur;
            struct sky_err e2 = { 0 };
            if (!(which & SKY_HAS_MTIME) || wd_stat(w, tmp, &cur, &e2) < 0 ||
                !etag_matchable(cur.etag))
                which &= ~SKY_HAS_MTIME;
            store_new_props(w, tmp, false, attr, which, cur.etag, meta);
        }
        /* a replacement: the version compared right before the MOVE; a
         * new file: Overwrite: F, the server refuses to replace */
        if (rc == 0)
            rc = compare_now(w, path, attr, false, e);
        if (rc == 0) {
            rc = wd_move_over(w, tmp, path, false,
                              !(attr && (attr->expect & SKY_EXPECT_NONE)), e);
        }
        if (rc < 0 && put_ok) {
            struct sky_err e2 = { 0 };
            wd_delete(w, tmp, false, &e2);     /* best effort */
        }
        free(tmp);
    }
    if (rc == 0)
        rc = wd_stat(w, path, out, e);
    return rc;
nomem:
    http_headers_free(&hs);
    return oom(e);
}

static int wd_remove(void *ctx, const char *path, struct sky_err *e)
{
    return wd_delete(ctx, path, false, e);
}

static int wd_mkdir(void *ctx, const char *path, const struct sky_attr *attr, struct sky_err *e)
{
    struct wd *w = ctx;
    struct wd_req r;
    req_init(&r, "MKCOL", path);
    r.slash = true;
    int rc = wd_call0(w, &r, e);
    if (rc == 0)
        store_new_props(w, path, true, attr, props_of(w, attr, false), NULL, NULL);
    return rc;
}

/* Does folder `path` have children?  -ENOTDIR when it is a file. */
static int folder_children(struct wd *w, const char *path, bool *any, struct sky_err *e)
{
    struct propfind p;
    int rc = propfind(w, path, "1", true, WEBDAV_PROPS, NULL, NULL, &p, e);
    if (rc == 0 && !p.self_is_dir)
        rc = sky_fail(e, ENOTDIR, "webdav '%s': %s is not a folder", w->name, shown(path));
    *any = p.children > 0;
    propfind_done(&p);
    return rc;
}

static int wd_rmdir(void *ctx, const char *path, struct sky_err *e)
{
    struct wd *w = ctx;
    bool any = false;
    int rc = folder_children(w, path, &any, e);
    if (rc < 0)
        return rc;
    /* DELETE of a collection takes everything in it: only an empty one
     * goes (a child added between the two requests goes with it) */
    if (any)
        return sky_fail(e, ENOTEMPTY, "webdav '%s': rmdir %s: the folder is not empty",
                        w->name, shown(path));
    return wd_delete(w, path, true, e);
}

static int wd_rename(void *ctx, const char *from, const char *to, struct sky_err *e)
{
    struct wd *w = ctx;
    /* Overwrite: T would take a folder at `to` with all it holds: POSIX
     * replaces only an empty one */
    struct propfind p;
    int rc = propfind(w, to, "1", false, WEBDAV_PROPS, NULL, NULL, &p, e);
    bool full = rc == 0 && p.self_is_dir && p.children > 0;
    propfind_done(&p);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (full)
        return sky_fail(e, ENOTEMPTY, "webdav '%s': rename %s to %s: the target is a folder "
                        "that is not empty", w->name, from, to);
    forget_error(e);
    return wd_move(w, from, to, false, e);
}

/* ---- attributes -------------------------------------------------------- */

static int wd_set_attr(void *ctx, const char *path, const struct sky_attr *attr, unsigned which,
                       struct sky_attr *out, struct sky_err *e)
{
    struct wd *w = ctx;
    unsigned props = which & (SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID);
    bool keep_mtime = (which & SKY_HAS_MTIME) && !atomic_load(&w->props_refused);
    int64_t lastmod = oc_vendor(w) && (which & SKY_HAS_MTIME) ? attr->mtime_ns : -1;
    int rc = 0;
    if (props && atomic_load(&w->props_refused))
        return sky_fail(e, EPERM, "webdav '%s': %s: the server keeps no properties for skyfs, "
                        "so modes and owners cannot be stored there", w->name, shown(path));
    if (props || keep_mtime || lastmod >= 0) {
        struct sky_attr cur;
        char etag[SKY_ETAG_MAX] = "";
        rc = stat_etag(w, path, &cur, etag, e);
        /* elsewhere than Nextcloud/ownCloud the time is a dead property
         * bound to the current version (etag); without one, the server's
         * own time stays (README) */
        if (rc == 0 && keep_mtime && !oc_vendor(w) && etag_matchable(etag))
            props |= SKY_HAS_MTIME;
        if (rc == 0 && (props || lastmod >= 0)) {
            bool is_dir = cur.kind == SKY_DIR;
            struct folder_guard g;
            guard_begin(w, path, is_dir, &cur, etag, &g);
            rc = proppatch(w, path, is_dir, attr, props, etag, NULL, lastmod, e);
            if (rc == 0)
                guard_end(w, &g, is_dir && (props & SKY_HAS_MTIME) ? attr->mtime_ns : -1);
            free(g.dir);
        }
        if (rc == -EPERM) {
            atomic_store(&w->props_refused, true);
            if (!(which & (SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID))) {
                /* only times: the server's stay, as on any server that
                 * keeps no properties (README) */
                forget_error(e);
                rc = 0;
            }
        }
    }
    if (rc == 0)
        rc = wd_stat(w, path, out, e);
    return rc;
}

/* ---- extended attributes (dead properties) ---------------------------- */

static int wd_get_meta(void *ctx, const char *path, struct sky_attr *attr,
                       struct sky_objmeta *meta, struct sky_err *e)
{
    struct wd *w = ctx;
    struct propfind p;
    memset(meta, 0, sizeof *meta);
    int rc = propfind(w, path, "0", !*path, WEBDAV_ALLPROP, NULL, NULL, &p, e);
    if (rc == 0) {
        *attr = p.self_attr;
        *meta = p.self_user;
        memset(&p.self_user, 0, sizeof p.self_user);
        meta->has_user = true;
    }
    propfind_done(&p);
    return rc;
}

/* The KEY of extended attribute "user.KEY", or NULL (ENOTSUP in e). */
static const char *xattr_key(struct wd *w, const char *name, struct sky_err *e)
{
    char prop[600];
    if (strncmp(name, "user.", 5) != 0 || !webdav_xattr_prop(name + 5, prop, sizeof prop)) {
        sky_fail(e, ENOTSUP, "webdav '%s': extended attribute %s cannot be stored (only "
                 "user.* names of at most 250 bytes)", w->name, name);
        return NULL;
    }
    return name + 5;
}

/* Is user.KEY set on path?  0 with *found, or a negative errno. */
static int xattr_present(struct wd *w, const char *path, const char *key, bool *found,
                         bool *is_dir, struct sky_err *e)
{
    struct sky_attr a;
    struct sky_objmeta m;
    int rc = wd_get_meta(w, path, &a, &m, e);
    if (rc < 0)
        return rc;
    *found = sky_objmeta_find(&m, key) != NULL;
    *is_dir = a.kind == SKY_DIR;
    sky_objmeta_free(&m);
    return 0;
}

static int xattr_refused(struct wd *w, const char *path, int rc, struct sky_err *e)
{
    if (rc != -EPERM)
        return rc;
    atomic_store(&w->props_refused, true);
    return sky_fail(e, ENOTSUP, "webdav '%s': %s: the server keeps no properties for skyfs, "
                    "so extended attributes cannot be stored there", w->name, shown(path));
}

static int wd_setxattr(void *ctx, const char *path, const char *name, const void *value,
                       size_t len, int flags, struct sky_err *e)
{
    struct wd *w = ctx;
    const char *key = xattr_key(w, name, e);
    if (!key)
        return -ENOTSUP;
    if (atomic_load(&w->props_refused))
        return xattr_refused(w, path, -EPERM, e);
    bool found = false, is_dir = false;
    int rc = xattr_present(w, path, key, &found, &is_dir, e);
    if (rc < 0)
        return rc;
    if ((flags & XATTR_CREATE) && found)
        return sky_fail(e, EEXIST, "webdav '%s': %s: %s exists", w->name, shown(path), name);
    if ((flags & XATTR_REPLACE) && !found)
        return sky_fail(e, ENODATA, "webdav '%s': %s: no attribute %s", w->name, shown(path),
                        name);
    struct sky_meta_item item = { .key = (char *)key, .value = (char *)value, .len = len };
    struct sky_objmeta one = { .has_user = true, .nuser = 1, .user = &item };
    struct folder_guard g;
    guard_begin(w, path, is_dir, NULL, NULL, &g);
    rc = proppatch(w, path, is_dir, NULL, 0, NULL, &one, -1, e);
    if (rc == 0)
        guard_end(w, &g, -1);
    free(g.dir);
    return xattr_refused(w, path, rc, e);
}

static int wd_removexattr(void *ctx, const char *path, const char *name, struct sky_err *e)
{
    struct wd *w = ctx;
    const char *key = xattr_key(w, name, e);
    if (!key)
        return -ENOTSUP;
    bool found = false, is_dir = false;
    int rc = xattr_present(w, path, key, &found, &is_dir, e);
    if (rc < 0)
        return rc;
    if (!found)
        return sky_fail(e, ENODATA, "webdav '%s': %s: no attribute %s", w->name, shown(path),
                        name);
    rc = proppatch_send(w, path, is_dir, webdav_proppatch_remove_body(key), e);
    return xattr_refused(w, path, rc, e);
}

static int wd_symlink(void *ctx, const char *path, const char *target,
                      const struct sky_attr *attr, struct sky_err *e)
{
    struct wd *w = ctx;
    return sky_fail(e, EPERM, "webdav '%s': symlink %s: WebDAV has no symbolic links",
                    w->name, path);
}

static int wd_readlink(void *ctx, const char *path, char *buf, size_t size, struct sky_err *e)
{
    struct wd *w = ctx;
    return sky_fail(e, EINVAL, "webdav '%s': readlink %s: WebDAV has no symbolic links",
                    w->name, path);
}

/* ---- space ------------------------------------------------------------- */

static int wd_statfs(void *ctx, struct statvfs *st, struct sky_err *e)
{
    struct wd *w = ctx;
    struct wd_req r;
    req_init(&r, "PROPFIND", "");
    r.slash = true;
    const char *body = webdav_propfind_body(WEBDAV_QUOTA);
    r.body = body;
    r.body_len = strlen(body);
    if (http_headers_set(&r.headers, "Depth", "0") < 0 ||
        http_headers_set(&r.headers, "Content-Type", "application/xml; charset=utf-8") < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    int rc = wd_call(w, &r, &resp, e);
    if (rc < 0)
        return rc;
    bool told = resp.status == 207 && webdav_quota_statvfs(resp.body, resp.body_len, st);
    http_response_free(&resp);
    if (!told)      /* fs/ shows plenty of room then */
        return sky_fail(e, ENOSYS, "webdav '%s': the server tells no quota", w->name);
    return 0;
}

/* ---- the driver -------------------------------------------------------- */

static const struct sky_key wd_keys[] = {
    { "url", SKY_KEY_REQUIRED, "the WebDAV folder to show, e.g. "
      "https://cloud.example.org/remote.php/dav/files/alice/" },
    { "user", 0, "user name (Basic or Digest authentication, as the server asks)" },
    { "password", SKY_KEY_SECRET, "password of user (an app password on Nextcloud)" },
    { "bearer_token", SKY_KEY_SECRET, "OAuth bearer token, instead of user and password" },
    { "vendor", 0, "nextcloud, owncloud or other (default): Nextcloud/ownCloud keep "
      "modification times (X-OC-Mtime)" },
    HTTP_CLOUD_KEYS,
    { "ca_file", 0, "extra CA certificates (PEM) to trust for the server" },
    { NULL, 0, NULL },
};

const struct sky_driver sky_driver_webdav = {
    .type = "webdav",
    .summary = "WebDAV folder (Apache mod_dav, nginx, rclone, Nextcloud, ownCloud...)",
    .keys = wd_keys,
    .caps = SKY_CAP_RENAME_DIR | SKY_CAP_CONDITIONAL,
    .open = wd_open,
    .close = wd_close,
    .list = wd_list,
    .stat = wd_stat,
    .read = wd_read,
    .write = wd_write,
    .remove = wd_remove,
    .mkdir = wd_mkdir,
    .rmdir = wd_rmdir,
    .rename = wd_rename,
    .set_attr = wd_set_attr,
    .setxattr = wd_setxattr,
    .removexattr = wd_removexattr,
    .get_meta = wd_get_meta,
    .symlink = wd_symlink,
    .readlink = wd_readlink,
    .statfs = wd_statfs,
    .guarantee = wd_guarantee,
};
