/*
 * azure.c - the `azure` cloud kind: Azure Blob Storage (and Azurite), a
 * protocol module on the object-store core (objstore.h).  This file only
 * speaks Azure's Blob REST API; directories, renames, attributes, xattrs
 * and uploads are the core's.
 *
 * A cloud is one container plus an optional prefix; without `container`
 * the cloud's root lists the account's containers as directories and paths
 * are "container/blob...".  Blobs are block blobs.
 *
 * Conventions (the codec below), chosen to match the tools people already
 * use on the same containers:
 *   - mkdir writes a marker the way blobfuse2 does: a zero-length blob
 *     named like the directory (no trailing slash) with metadata
 *     hdi_isfolder=true.  Zero-length "dir/" blobs (other tools) are read
 *     as markers too.
 *   - POSIX attributes in blob metadata: mode, uid and gid in decimal
 *     (mode is the full st_mode, as s3fs writes it), mtime, atime and ctime
 *     in rclone's form (RFC 3339 with nanoseconds); decimal seconds are
 *     read too.  Symlinks, FIFOs, sockets and devices as on S3 (the core).
 *   - user.NAME extended attributes are metadata NAME (a C identifier in
 *     lowercase); values must be printable ASCII without leading or
 *     trailing spaces (no encoding: other tools read them as they are).
 *     Azure takes 8 KiB of metadata per blob.
 *   - Listings ask for metadata (include=metadata), so each listed blob
 *     carries its user metadata, Content-Type and access tier: kinds and
 *     attributes come from the listing, with no HEAD per blob.
 *
 * Requests: List Blobs / List Containers (parsed as they stream through
 * expat; xml.h's caveats on Encoded="true" names apply), Get Blob
 * Properties, ranged Get Blob with If-Match, Put Blob (up to 8 MiB), Put
 * Block + Put Block List (larger files, and streamed uploads: each upload
 * names its blocks with a tag of its own), Get Block List + Put Block +
 * Put Block List with <Committed> blocks and If-Match for a file changed
 * in part (compose: only the changed blocks are sent), Copy Blob (waiting for a
 * pending copy) for renames, Set Blob Metadata for chmod, utime and
 * xattrs, Delete Blob, containers (create, delete, properties).  The
 * uploads (Put Blob, blocks, compose) live in azure_blocks.c; the two
 * files share azure_int.h.
 *
 * ETags: Set Blob Metadata and Copy Blob give a blob a new ETag without
 * changing its bytes, while fs/ keeps reading with the ETag it cached.
 * This module remembers these changes (a small ring per cloud) and sends
 * reads with the current ETag, so only a change of content made elsewhere
 * turns into -ESTALE.  ETags are kept without their quotes.
 *
 * Auth (Shared Key, SAS, connection strings) lives in azure_auth.c.
 */
#include "azure_int.h"

#include <ctype.h>
#include <errno.h>
#include <expat.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "azure_auth.h"
#include "bodysum.h"
#include "http.h"
#include "names.h"

/* ---- requests ---------------------------------------------------------- */

/* Full URL of a container or blob, with `query` and the SAS appended. */
static char *az_url(const struct az *a, const char *container, const char *blob,
                    const char *query)
{
    char *cont = container && *container ? http_uri_encode(container, 0) : strdup("");
    char *name = blob && *blob ? http_uri_encode(blob, 1) : strdup("");
    char *url = NULL;
    const char *q = query && *query ? query : NULL;
    if (cont && name &&
        asprintf(&url, "%s/%s%s%s%s%s%s%s", a->endpoint, cont, *name ? "/" : "", name,
                 q || a->sas ? "?" : "", q ? q : "", q && a->sas ? "&" : "",
                 a->sas ? a->sas : "") < 0)
        url = NULL;
    free(cont);
    free(name);
    return url;
}

/* Send r; 0 when any response came back (check resp->status). */
int az_do(struct az *a, struct az_req *r, struct http_response *resp, struct sky_err *e)
{
    memset(resp, 0, sizeof *resp);
    char *url = az_url(a, r->container, r->blob, r->query);
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
        .out_cap = r->out_cap,
        .sink = r->sink,
        .sink_arg = r->sink_arg,
        .range_header = r->range_len ? "x-ms-range" : NULL,
        .range_off = r->range_off,
        .range_len = r->range_len,
        .sign = azure_sign_request,
        .sign_arg = &a->auth,
    };
    memset(&r->headers, 0, sizeof r->headers);
    int rc = http_do(a->http, &req, resp, e);
    http_headers_free(&req.headers);
    free(url);
    return rc;
}

/* errno for a failed response. */
static int status_errno(long status, const char *code)
{
    code = code ? code : "";
    switch (status) {
    case 400:
        return strstr(code, "InvalidResourceName") || strstr(code, "OutOfRange") ? EINVAL : EIO;
    case 401:
    case 403:
        return EACCES;
    case 404:
        return ENOENT;
    case 409:
        if (strstr(code, "AlreadyExists"))
            return EEXIST;
        if (strstr(code, "BeingDeleted") || strstr(code, "Lease"))
            return EBUSY;
        return EIO;
    case 412:
        return ESTALE;
    case 413:
        return EFBIG;
    default:
        return EIO;
    }
}

/* Fill e for a failed response: "azure 'c': GET dir/a.txt: 404 BlobNotFound". */
int az_fail_resp(struct az *a, const char *op, const char *show,
                 const struct http_response *resp, struct sky_err *e)
{
    const char *code = http_headers_get(&resp->headers, "x-ms-error-code");
    int err = status_errno(resp->status, code);
    /* a body that arrived damaged (sent again: az_call_body): Azure says
     * Md5Mismatch, Azurite's Put Blob InvalidOperation, "Provided
     * contentMD5 doesn't match." */
    if (resp->status == 400 && code &&
        (strcmp(code, "Md5Mismatch") == 0 ||
         (strcmp(code, "InvalidOperation") == 0 && resp->body &&
          memmem(resp->body, resp->body_len, "contentMD5", 10))))
        err = EBADMSG;
    return sky_fail(e, err, "azure '%s': %s %s: %ld %s", a->name, op, show, resp->status,
                    code ? code : "");
}

/* Transport failure (no response): prefix http.c's message. */
int az_fail_transport(struct az *a, const char *op, const char *show, int rc,
                      struct sky_err *e)
{
    if (e && e->code) {
        sky_err_prefix(e, "azure '%s': %s %s", a->name, op, show);
        return rc;
    }
    return sky_fail(e, -rc, "azure '%s': %s %s: %s", a->name, op, show, strerror(-rc));
}

/* az_do + status check; on success the caller frees resp. */
int az_call(struct az *a, struct az_req *r, const char *op, const char *show,
            struct http_response *resp, struct sky_err *e)
{
    int rc = az_do(a, r, resp, e);
    if (rc < 0) {
        http_response_free(resp);
        return az_fail_transport(a, op, show, rc, e);
    }
    if (!status_ok(resp->status)) {
        rc = az_fail_resp(a, op, show, resp, e);
        http_response_free(resp);
        return rc;
    }
    return 0;
}

static int headers_copy(const struct http_headers *from, struct http_headers *to)
{
    *to = (struct http_headers){ 0 };
    for (size_t i = 0; i < from->n; i++)
        if (http_headers_set(to, from->h[i].name, from->h[i].value) < 0) {
            http_headers_free(to);
            return -ENOMEM;
        }
    return 0;
}

int az_call_body(struct az *a, struct az_req *r, const char *op, const char *show,
                 struct http_response *resp, struct sky_err *e)
{
    struct bodysum sum;
    char b64[25];
    struct http_headers hs = r->headers;        /* each try sends a copy */
    r->headers = (struct http_headers){ 0 };
    int rc = bodysum_of(r->body, r->body_fd, r->body_off, r->body_len, &sum);
    if (rc == 0) {
        bodysum_base64(&sum, b64);
        rc = http_headers_set(&hs, "Content-MD5", b64);
    }
    if (rc) {
        http_headers_free(&hs);
        return rc == -EIO ? sky_fail(e, EIO, "azure '%s': %s %s: cannot read the cached file "
                                     "to send", a->name, op, show)
                          : sky_fail(e, ENOMEM, "out of memory");
    }
    for (int tries = 1;; tries++) {
        struct az_req again = *r;
        if (headers_copy(&hs, &again.headers) < 0) {
            rc = sky_fail(e, ENOMEM, "out of memory");
            break;
        }
        rc = az_call(a, &again, op, show, resp, e);
        if (rc != -EBADMSG)
            break;
        if (tries == BODYSUM_TRIES) {
            rc = sky_fail(e, EIO, "azure '%s': %s %s: the server received other bytes than "
                          "were sent, %d times (Md5Mismatch): something on the way damages "
                          "data", a->name, op, show, BODYSUM_TRIES);
            break;
        }
        LOG_WARN("azure '%s': %s %s: the server received other bytes than were sent "
                 "(Md5Mismatch); sending them again", a->name, op, show);
        sky_err_clear(e);
    }
    http_headers_free(&hs);
    return rc;
}

/* Same, for calls whose response is not needed. */
int az_call0(struct az *a, struct az_req *r, const char *op, const char *show,
             struct sky_err *e)
{
    struct http_response resp;
    int rc = az_call(a, r, op, show, &resp, e);
    if (rc == 0)
        http_response_free(&resp);
    return rc;
}

/* "Mon, 01 Jan 2024 00:00:00 GMT" -> ns, 0 when malformed. */
static int64_t http_date_ns(const char *s)
{
    int64_t ns = 0;
    return objstore_parse_http_date(s, &ns) == 0 ? ns : 0;
}

/* The metadata items of a header list ("x-ms-meta-NAME"), names lowercased. */
static int meta_from_headers(const struct http_headers *hs, struct http_headers *meta)
{
    for (size_t i = 0; i < hs->n; i++)
        if (strncasecmp(hs->h[i].name, "x-ms-meta-", 10) == 0 && hs->h[i].name[10]) {
            char name[256];
            size_t k = 0;
            for (const char *p = hs->h[i].name + 10; *p && k < sizeof name - 1; p++)
                name[k++] = (char)tolower((unsigned char)*p);
            name[k] = '\0';
            if (http_headers_set(meta, name, hs->h[i].value) < 0)
                return -ENOMEM;
        }
    return 0;
}

/* x-ms-meta-* headers for metadata items. */
int az_meta_to_headers(const struct http_headers *meta, struct http_headers *hs)
{
    for (size_t i = 0; meta && i < meta->n; i++) {
        char name[300];
        snprintf(name, sizeof name, "x-ms-meta-%s", meta->h[i].name);
        if (http_headers_set(hs, name, meta->h[i].value) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---- listings (XML) ---------------------------------------------------- */

/* One <Blob>, <BlobPrefix> or <Container> of a listing. */
struct az_item {
    char *name;             /* full blob (or container) name, decoded */
    bool is_prefix;         /* <BlobPrefix> */
    uint64_t size;
    int64_t last_modified_ns;
    char etag[SKY_ETAG_MAX];
    char *content_type, *tier;
    struct http_headers meta;   /* names lowercased */
};

static void item_clear(struct az_item *it)
{
    free(it->name);
    free(it->content_type);
    free(it->tier);
    http_headers_free(&it->meta);
    memset(it, 0, sizeof *it);
}

/* Called per item; 0 goes on, < 0 stops the listing with that error. */
typedef int (*az_item_fn)(void *arg, const struct az_item *it);

#define XML_DEPTH_MAX 16

struct list_parser {
    char *stack[XML_DEPTH_MAX];
    int depth;
    char *text;
    size_t text_len, text_cap;
    bool name_encoded;
    bool latin1;            /* parsed as ISO-8859-1: texts need unmapping (xml.c) */
    int item_depth;         /* depth of the open item element, 0 if none */
    struct az_item cur;
    char *next_marker;
    az_item_fn fn;
    void *arg;
    int rc;                 /* first non-zero callback result */
    bool nomem;
};

/* A name Azure sent percent-encoded (Encoded="true"), decoded; NULL when
 * it holds a NUL byte once decoded (%00: no path can name it, and cut at
 * the NUL it would be another blob's name), with a warning. */
static char *pct_decode_dup(const char *s, bool *nomem)
{
    char *out = strdup(s);
    if (!out) {
        *nomem = true;
        return NULL;
    }
    size_t n = sky_pct_decode(out, false);
    if (memchr(out, '\0', n)) {
        char show[512];
        sky_name_show(out, n, show, sizeof show);
        LOG_WARN("azure: skipping listed blob \"%s\": not a valid file name (it holds a NUL "
                 "byte)", show);
        free(out);
        return NULL;
    }
    return out;
}

static void lp_start(void *ud, const XML_Char *el, const XML_Char **attrs)
{
    struct list_parser *p = ud;
    if (p->depth < XML_DEPTH_MAX) {
        p->stack[p->depth] = strdup(el);
        if (!p->stack[p->depth])
            p->nomem = true;
    }
    p->depth++;
    p->text_len = 0;
    if (p->depth == 3 && (strcmp(el, "Blob") == 0 || strcmp(el, "BlobPrefix") == 0 ||
                          strcmp(el, "Container") == 0)) {
        item_clear(&p->cur);
        p->cur.is_prefix = strcmp(el, "BlobPrefix") == 0;
        p->item_depth = p->depth;
    }
    if (p->item_depth && p->depth == p->item_depth + 1 && strcmp(el, "Name") == 0) {
        p->name_encoded = false;
        for (int i = 0; attrs[i]; i += 2)
            if (strcmp(attrs[i], "Encoded") == 0 && strcasecmp(attrs[i + 1], "true") == 0)
                p->name_encoded = true;
    }
}

static void lp_text(void *ud, const XML_Char *s, int len)
{
    struct list_parser *p = ud;
    if (p->text_len + (size_t)len + 1 > p->text_cap) {
        size_t cap = (p->text_len + (size_t)len + 1) * 2;
        char *t = realloc(p->text, cap);
        if (!t) {
            p->nomem = true;
            return;
        }
        p->text = t;
        p->text_cap = cap;
    }
    memcpy(p->text + p->text_len, s, (size_t)len);
    p->text_len += (size_t)len;
    p->text[p->text_len] = '\0';
}

static void set_str(char **dst, const char *text, bool *nomem)
{
    free(*dst);
    *dst = strdup(text);
    if (!*dst)
        *nomem = true;
}

/* End of an element inside the current item. */
static void lp_item_field(struct list_parser *p, const char *el, const char *text)
{
    int rel = p->depth - p->item_depth;   /* 1: child of item, 2: grandchild */
    const char *parent = p->depth >= 2 && p->depth - 2 < XML_DEPTH_MAX ? p->stack[p->depth - 2] : "";
    if (rel == 1 && strcmp(el, "Name") == 0) {
        free(p->cur.name);
        p->cur.name = p->name_encoded ? pct_decode_dup(text, &p->nomem) : strdup(text);
        if (!p->cur.name && !p->name_encoded)
            p->nomem = true;
    } else if (rel == 2 && parent && strcmp(parent, "Properties") == 0) {
        if (strcmp(el, "Content-Length") == 0 && sky_size_parse(text, &p->cur.size) < 0)
            p->cur.size = UINT64_MAX;       /* no file's size: listings skip it */
        else if (strcmp(el, "Last-Modified") == 0)
            p->cur.last_modified_ns = http_date_ns(text);
        else if (strcmp(el, "Etag") == 0)
            etag_bare(p->cur.etag, text);
        else if (strcmp(el, "Content-Type") == 0 && *text)
            set_str(&p->cur.content_type, text, &p->nomem);
        else if (strcmp(el, "AccessTier") == 0 && *text)
            set_str(&p->cur.tier, text, &p->nomem);
    } else if (rel == 2 && parent && strcmp(parent, "Metadata") == 0) {
        char name[256];
        size_t k = 0;
        for (const char *c = el; *c && k < sizeof name - 1; c++)
            name[k++] = (char)tolower((unsigned char)*c);
        name[k] = '\0';
        p->nomem |= http_headers_set(&p->cur.meta, name, text) < 0;
    }
}

static void lp_end(void *ud, const XML_Char *el)
{
    struct list_parser *p = ud;
    if (p->latin1 && p->text_len)
        p->text_len = sky_latin1_unmap(p->text);
    const char *text = p->text_len ? p->text : "";
    if (p->item_depth && p->depth > p->item_depth) {
        lp_item_field(p, el, text);
    } else if (p->item_depth && p->depth == p->item_depth) {
        if (p->cur.name && p->rc == 0)
            p->rc = p->fn(p->arg, &p->cur);
        item_clear(&p->cur);
        p->item_depth = 0;
    } else if (p->depth == 2 && strcmp(el, "NextMarker") == 0) {
        free(p->next_marker);
        p->next_marker = p->text_len ? strdup(text) : NULL;
    }
    p->depth--;
    if (p->depth < XML_DEPTH_MAX) {
        free(p->stack[p->depth]);
        p->stack[p->depth] = NULL;
    }
    p->text_len = 0;
}

/* Parse one listing page; *next = NextMarker (malloc'd) or NULL. */
static int parse_listing(const char *body, size_t len, az_item_fn fn, void *arg, char **next,
                         int *cb_rc)
{
    /* a body that is not UTF-8 is read as ISO-8859-1 (see xml.c), so that
     * one blob's raw bytes cost that blob, not the page */
    struct list_parser p = { .fn = fn, .arg = arg, .latin1 = body && !sky_utf8_valid(body, len) };
    XML_Parser xp = XML_ParserCreate(p.latin1 ? "ISO-8859-1" : NULL);
    if (!xp)
        return -ENOMEM;
    XML_SetUserData(xp, &p);
    XML_SetElementHandler(xp, lp_start, lp_end);
    XML_SetCharacterDataHandler(xp, lp_text);
    int ok = XML_Parse(xp, body ? body : "", (int)len, 1) == XML_STATUS_OK;
    XML_ParserFree(xp);
    for (int i = 0; i < XML_DEPTH_MAX; i++)
        free(p.stack[i]);
    free(p.text);
    item_clear(&p.cur);
    *cb_rc = p.rc;
    if (!ok || p.nomem || p.rc < 0) {
        free(p.next_marker);
        *next = NULL;
        return p.nomem ? -ENOMEM : ok ? 0 : -EPROTO;
    }
    *next = p.next_marker;
    return 0;
}

/* One page of a List Blobs (container set) or List Containers. */
static int list_one_page(struct az *a, const char *container, const char *prefix,
                         bool delimited, int max_keys, const char *marker, az_item_fn fn,
                         void *arg, char **next, const char *show, struct sky_err *e)
{
    char *pfx = http_uri_encode(prefix ? prefix : "", 0);
    char *mk = marker ? http_uri_encode(marker, 0) : NULL;
    char max[32] = "";
    char *q = NULL;
    *next = NULL;
    if (max_keys > 0)
        snprintf(max, sizeof max, "&maxresults=%d", max_keys);
    if (pfx && (!marker || mk) &&
        asprintf(&q, "%scomp=list&include=metadata%s%s%s%s%s%s",
                 container ? "restype=container&" : "", delimited ? "&delimiter=%2F" : "",
                 *pfx ? "&prefix=" : "", pfx, mk ? "&marker=" : "", mk ? mk : "", max) < 0)
        q = NULL;
    free(pfx);
    free(mk);
    if (!q)
        return oom(e);
    struct az_req r;
    req_init(&r, "GET", container, NULL, q);
    struct http_response resp;
    int rc = az_call(a, &r, "LIST", show, &resp, e);
    free(q);
    if (rc < 0)
        return rc;
    int cb_rc = 0;
    rc = parse_listing(resp.body, resp.body_len, fn, arg, next, &cb_rc);
    http_response_free(&resp);
    if (rc < 0)
        return sky_fail(e, -rc, "azure '%s': LIST %s: %s", a->name, show,
                        rc == -EPROTO ? "malformed XML in the listing" : strerror(-rc));
    if (cb_rc < 0) {
        free(*next);
        *next = NULL;
        return cb_rc;
    }
    return 0;
}

/* An Azure item as the core's. */
struct item_pass {
    objstore_item_fn fn;
    void *arg;
};

static int pass_item(void *arg, const struct az_item *it)
{
    struct item_pass *ip = arg;
    struct objstore_item oi = { .key = it->name, .is_prefix = it->is_prefix,
                                .size = it->size, .last_modified_ns = it->last_modified_ns,
                                .storage_class = it->tier, .content_type = it->content_type,
                                .meta = it->is_prefix ? NULL : &it->meta };
    memcpy(oi.etag, it->etag, sizeof oi.etag);
    return ip->fn(ip->arg, &oi);
}

static int az_list_page(void *p, const char *container, const char *prefix, bool delimited,
                        int max_keys, const char *token, objstore_item_fn fn, void *arg,
                        char **next, const char *show, struct sky_err *e)
{
    struct item_pass ip = { fn, arg };
    return list_one_page(p, container, prefix, delimited, max_keys, token, pass_item, &ip,
                         next, show, e);
}

struct container_pass {
    sky_list_cb cb;
    void *arg;
};

static int pass_container(void *arg, const struct az_item *it)
{
    struct container_pass *cp = arg;
    if (sky_name_problem(it->name, strlen(it->name)))
        return 0;
    struct sky_dirent d = { .name = it->name, .attr = { .kind = SKY_DIR } };
    if (it->last_modified_ns) {
        d.attr.mtime_ns = it->last_modified_ns;
        d.attr.has = SKY_HAS_MTIME;
    }
    return cp->cb(cp->arg, &d);
}

static int az_list_containers(void *p, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct az *a = p;
    struct container_pass cp = { cb, arg };
    char *marker = NULL;
    int rc = 0;
    do {
        char *next = NULL;
        rc = list_one_page(a, NULL, "", false, 0, marker, pass_container, &cp, &next, "/", e);
        free(marker);
        marker = next;
    } while (rc == 0 && marker && *marker);
    free(marker);
    return rc;
}

/* ---- head, get ---------------------------------------------------------- */

static int az_head_raw(struct az *a, const char *container, const char *blob,
                       struct http_response *resp, const char *show, struct sky_err *e)
{
    struct az_req r;
    req_init(&r, "HEAD", container, blob, *blob ? NULL : "restype=container");
    return az_call(a, &r, "HEAD", show, resp, e);
}

static int az_head(void *p, const char *container, const char *key, struct objstore_head *out,
                   const char *show, struct sky_err *e)
{
    struct az *a = p;
    memset(out, 0, sizeof *out);
    struct http_response resp;
    int rc = az_head_raw(a, container, key, &resp, show, e);
    if (rc < 0)
        return rc;
    const struct http_headers *hs = &resp.headers;
    const char *len = http_headers_get(hs, "content-length");
    out->size = len ? strtoull(len, NULL, 10) : 0;
    out->last_modified_ns = http_date_ns(http_headers_get(hs, "last-modified"));
    etag_bare(out->etag, http_headers_get(hs, "etag"));
    const char *type = http_headers_get(hs, "content-type");
    const char *tier = http_headers_get(hs, "x-ms-access-tier");
    if ((type && !(out->content_type = strdup(type))) ||
        (tier && !(out->storage_class = strdup(tier))) ||
        meta_from_headers(hs, &out->meta) < 0) {
        objstore_head_free(out);
        rc = oom(e);
    }
    http_response_free(&resp);
    return rc;
}

static bool alias_is(const struct etag_alias *al, const char *container, const char *blob,
                     const char *etag)
{
    size_t n = strlen(container);
    return al->blob && strcmp(al->old_etag, etag) == 0 && strncmp(al->blob, container, n) == 0 &&
           al->blob[n] == '/' && strcmp(al->blob + n + 1, blob) == 0;
}

/* Record that a blob went from old_etag to new_etag by a metadata update
 * only; earlier aliases that pointed at old_etag now point at new_etag. */
static void alias_add(struct az *a, const char *container, const char *blob_name,
                      const char *old_etag, const char *new_etag)
{
    char *blob = NULL;
    if (!*old_etag || !*new_etag || asprintf(&blob, "%s/%s", container, blob_name) < 0)
        return;
    pthread_mutex_lock(&a->alias_lock);
    for (unsigned i = 0; i < AZ_ALIASES; i++)
        if (alias_is(&a->aliases[i], container, blob_name, old_etag) ||
            (a->aliases[i].blob && strcmp(a->aliases[i].blob, blob) == 0 &&
             strcmp(a->aliases[i].new_etag, old_etag) == 0))
            snprintf(a->aliases[i].new_etag, SKY_ETAG_MAX, "%s", new_etag);
    struct etag_alias *al = &a->aliases[a->alias_next++ % AZ_ALIASES];
    free(al->blob);
    al->blob = blob;
    snprintf(al->old_etag, SKY_ETAG_MAX, "%s", old_etag);
    snprintf(al->new_etag, SKY_ETAG_MAX, "%s", new_etag);
    pthread_mutex_unlock(&a->alias_lock);
}

/* After blob src (ETag src_etag) was copied to dst as new_etag: the old
 * ETags that src's bytes went by name the copy too. */
static void alias_copy(struct az *a, const char *scont, const char *sblob, const char *src_etag,
                       const char *dcont, const char *dblob, const char *new_etag)
{
    char olds[AZ_ALIASES][SKY_ETAG_MAX];
    unsigned n = 0;
    pthread_mutex_lock(&a->alias_lock);
    for (unsigned i = 0; i < AZ_ALIASES; i++) {
        const struct etag_alias *al = &a->aliases[i];
        if (al->blob && strcmp(al->new_etag, src_etag) == 0 &&
            alias_is(al, scont, sblob, al->old_etag))
            memcpy(olds[n++], al->old_etag, SKY_ETAG_MAX);
    }
    pthread_mutex_unlock(&a->alias_lock);
    alias_add(a, dcont, dblob, src_etag, new_etag);
    for (unsigned i = 0; i < n; i++)
        alias_add(a, dcont, dblob, olds[i], new_etag);
}

/* The ETag the blob's current bytes carry, given one the caller knows. */
static void alias_resolve(struct az *a, const char *container, const char *blob,
                          const char *etag, char out[SKY_ETAG_MAX])
{
    snprintf(out, SKY_ETAG_MAX, "%s", etag);
    pthread_mutex_lock(&a->alias_lock);
    for (unsigned i = 0; i < AZ_ALIASES; i++)
        if (alias_is(&a->aliases[i], container, blob, etag))
            snprintf(out, SKY_ETAG_MAX, "%s", a->aliases[i].new_etag);
    pthread_mutex_unlock(&a->alias_lock);
}

/* Azure answers a ranged GET of at most this much with the MD5 of the
 * bytes it sends (x-ms-range-get-content-md5), and refuses a larger one. */
#define AZ_RANGE_MD5_MAX (4u << 20)

/* The answer to a GET that asked for its range's MD5 holds one (a 206
 * with Content-MD5) other than the sum of the bytes that came: damaged on
 * the way. */
static bool range_damaged(const struct http_response *resp, struct bodysum_sink *ss,
                          struct bodysum *sum)
{
    const char *md5 = http_headers_get(&resp->headers, "content-md5");
    char mine[25];
    if (resp->status != 206 || !md5 || ss->gap || ss->next != resp->body_len ||
        bodysum_end(&ss->run, sum) != 0)
        return false;
    bodysum_base64(sum, mine);
    return strcmp(mine, md5) != 0;
}

/* One try of a GET: 0 and the answer in *resp (freed by the caller), 1
 * when its bytes arrived damaged and it should be asked again, or -errno
 * (no answer to free). */
static int get_once(struct az *a, const char *container, const char *key,
                    const char *current, uint64_t off, uint64_t len, struct bodysum_sink *ss,
                    int tries, struct http_response *resp, const char *show, struct sky_err *e)
{
    struct az_req r;
    req_init(&r, "GET", container, key, NULL);
    r.sink = bodysum_sink_take;
    r.sink_arg = ss;
    r.out_cap = (size_t)len;
    r.range_off = off;
    r.range_len = len;      /* http.c asks for it and checks the answer */
    if ((*current && add_if_match(&r.headers, "If-Match", current) < 0) ||
        (len <= AZ_RANGE_MD5_MAX &&
         http_headers_set(&r.headers, "x-ms-range-get-content-md5", "true") < 0)) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    bodysum_sink_start(ss);
    int rc = az_do(a, &r, resp, e);
    if (rc < 0) {
        http_response_free(resp);           /* az_do cleared it first */
        return az_fail_transport(a, "GET", show, rc, e);
    }
    struct bodysum sum;
    if (!range_damaged(resp, ss, &sum))
        return 0;
    http_response_free(resp);
    if (tries >= BODYSUM_TRIES)
        return sky_fail(e, EIO, "azure '%s': GET %s: the bytes arrived damaged %d times (their "
                        "MD5 is not the one the server sent): something on the way damages "
                        "data", a->name, show, tries);
    LOG_WARN("azure '%s': GET %s: the bytes that arrived are not those the server sent (their "
             "MD5 is not its Content-MD5); asking again", a->name, show);
    return 1;
}

static int az_get(void *p, const char *container, const char *key, const char *if_match,
                  uint64_t off, uint64_t len, sky_sink_fn sink, void *sink_arg,
                  char etag_out[SKY_ETAG_MAX], const char *show, struct sky_err *e)
{
    struct az *a = p;
    char current[SKY_ETAG_MAX] = "";
    if (if_match && *if_match)
        alias_resolve(a, container, key, if_match, current);
    struct bodysum_sink ss = { .sink = sink, .arg = sink_arg,
                               .wanted = len <= AZ_RANGE_MD5_MAX };
    struct http_response resp;
    int rc = 1;
    for (int tries = 1; rc == 1; tries++)
        rc = get_once(a, container, key, current, off, len, &ss, tries, &resp, show, e);
    bodysum_sink_free(&ss);
    if (rc < 0)
        return rc;
    if (status_ok(resp.status) || resp.status == 416) {
        /* delivered; 416: at or past the end, nothing to read */
        if (etag_out)
            etag_bare(etag_out, http_headers_get(&resp.headers, "etag"));
    } else if (resp.status == 412) {
        rc = sky_fail(e, ESTALE, "azure '%s': GET %s: changed since it was listed (etag %s)",
                      a->name, show, if_match);
    } else {
        rc = az_fail_resp(a, "GET", show, &resp, e);
    }
    http_response_free(&resp);
    return rc;
}

/* Preconditions for a write of container/blob: If-Match the version
 * named (an alias of this process's own metadata edits resolved to the
 * blob's current ETag), If-None-Match: *.  0 or -ENOMEM. */
int az_cond_headers(struct az *a, const char *container, const char *blob,
                    const char *if_match, bool if_none_match, struct http_headers *hs)
{
    if (if_match && *if_match) {
        char current[SKY_ETAG_MAX];
        alias_resolve(a, container, blob, if_match, current);
        if (add_if_match(hs, "If-Match", current) < 0)
            return -ENOMEM;
    }
    if (if_none_match && http_headers_set(hs, "If-None-Match", "*") < 0)
        return -ENOMEM;
    return 0;
}

/* ---- copy, set metadata, delete ----------------------------------------- */

/* Wait until a pending server-side copy into dst finishes; etag gets the
 * finished blob's ETag. */
static int wait_copy(struct az *a, const char *container, const char *blob, const char *show,
                     char etag[SKY_ETAG_MAX], struct sky_err *e)
{
    for (int waited_ms = 0; waited_ms < AZ_COPY_WAIT_S * 1000;) {
        int ms = waited_ms < 2000 ? 100 : 1000;
        usleep((useconds_t)ms * 1000);
        waited_ms += ms;
        struct http_response resp;
        int rc = az_head_raw(a, container, blob, &resp, show, e);
        if (rc < 0)
            return rc;
        const char *status = http_headers_get(&resp.headers, "x-ms-copy-status");
        bool pending = status && strcmp(status, "pending") == 0;
        bool success = !status || strcmp(status, "success") == 0;
        etag_bare(etag, http_headers_get(&resp.headers, "etag"));
        http_response_free(&resp);
        if (success)
            return 0;
        if (!pending)
            return sky_fail(e, EIO, "azure '%s': COPY to %s: copy %s", a->name, show, status);
    }
    return sky_fail(e, ETIMEDOUT, "azure '%s': COPY to %s: still pending after %d s", a->name,
                    show, AZ_COPY_WAIT_S);
}

/* A Copy Blob was retried and its last answer is an error (409
 * PendingCopyOperation, say): is dst the copy the first attempt started,
 * its answer lost?  Azure keeps the source of a blob's last copy in
 * x-ms-copy-source (compared without the query: a SAS). */
static bool copy_landed(struct az *a, const char *container, const char *blob,
                        const char *src_url, const char *show)
{
    struct http_response resp;
    struct sky_err ignored = { 0 };
    if (az_head_raw(a, container, blob, &resp, show, &ignored) < 0)
        return false;
    const char *from = http_headers_get(&resp.headers, "x-ms-copy-source");
    const char *status = http_headers_get(&resp.headers, "x-ms-copy-status");
    size_t n = strcspn(src_url, "?");
    bool same = from && status && strcmp(status, "failed") != 0 &&
                strcmp(status, "aborted") != 0 && strncmp(from, src_url, n) == 0 &&
                (from[n] == '\0' || from[n] == '?');
    http_response_free(&resp);
    if (same)
        LOG_INFO("azure '%s': COPY to %s: the answer was lost; the blob is the copy", a->name,
                 show);
    return same;
}

/* Copy Blob: the metadata comes along (or nw's replaces it; the content
 * type always comes along).  Azure's copy takes no source condition, so
 * if_match only names the source's version: reads that still name it
 * (fs/ keeps it across a rename) are sent with the copy's ETag. */
static int az_copy(void *p, const char *scont, const char *sblob, const char *dcont,
                   const char *dblob, uint64_t size, const char *if_match,
                   const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX], const char *show,
                   struct sky_err *e)
{
    struct az *a = p;
    char *src_url = az_url(a, scont, sblob, NULL);
    if (!src_url)
        return oom(e);
    struct az_req r;
    req_init(&r, "PUT", dcont, dblob, NULL);
    int rc = http_headers_set(&r.headers, "x-ms-copy-source", src_url);
    if (rc == 0 && nw)
        rc = az_meta_to_headers(nw->meta, &r.headers);
    if (rc < 0) {
        free(src_url);
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    rc = az_do(a, &r, &resp, e);
    if (rc < 0) {
        free(src_url);
        return az_fail_transport(a, "COPY to", show, rc, e);
    }
    char copied[SKY_ETAG_MAX] = "";
    if (!status_ok(resp.status)) {
        rc = az_fail_resp(a, "COPY to", show, &resp, e);
        bool landed = http_retried(&resp) && copy_landed(a, dcont, dblob, src_url, show);
        http_response_free(&resp);
        free(src_url);
        if (!landed)
            return rc;
        /* the first attempt's copy: wait for it like for our own */
        sky_err_clear(e);
        rc = wait_copy(a, dcont, dblob, show, copied, e);
    } else {
        free(src_url);
        const char *status = http_headers_get(&resp.headers, "x-ms-copy-status");
        bool pending = status && strcmp(status, "pending") == 0;
        etag_bare(copied, http_headers_get(&resp.headers, "etag"));
        http_response_free(&resp);
        if (pending)
            rc = wait_copy(a, dcont, dblob, show, copied, e);
    }
    if (rc == 0 && if_match && *if_match && copied[0])
        alias_copy(a, scont, sblob, if_match, dcont, dblob, copied);
    if (rc == 0 && etag_out)
        snprintf(etag_out, SKY_ETAG_MAX, "%s", copied);
    return rc;
}

/* Set Blob Metadata, If-Match the version edited; the new ETag names the
 * same bytes (an alias for reads). */
static int az_set_meta(void *p, const char *container, const char *key, uint64_t size,
                       const char *if_match, const struct objstore_new *nw,
                       char etag_out[SKY_ETAG_MAX], const char *show, struct sky_err *e)
{
    struct az *a = p;
    struct az_req r;
    req_init(&r, "PUT", container, key, "comp=metadata");
    int rc = az_meta_to_headers(nw->meta, &r.headers);
    if (rc == 0 && if_match && *if_match)
        rc = add_if_match(&r.headers, "If-Match", if_match);
    if (rc < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    rc = az_call(a, &r, "SET metadata of", show, &resp, e);
    if (rc < 0)
        return rc;
    char after[SKY_ETAG_MAX];
    etag_bare(after, http_headers_get(&resp.headers, "etag"));
    http_response_free(&resp);
    if (if_match && *if_match)
        alias_add(a, container, key, if_match, after);
    if (etag_out)
        snprintf(etag_out, SKY_ETAG_MAX, "%s", after);
    return 0;
}

/* Delete Blob only while it has ETag if_match (If-Match): a 412 is
 * -ESTALE, and nothing is deleted. */
static int az_remove_match(void *p, const char *container, const char *key,
                           const char *if_match, const char *show, struct sky_err *e)
{
    struct az *a = p;
    struct az_req r;
    req_init(&r, "DELETE", container, key, NULL);
    if (http_headers_set(&r.headers, "x-ms-delete-snapshots", "include") < 0 ||
        az_cond_headers(a, container, key, if_match, false, &r.headers) < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    int rc = az_do(a, &r, &resp, e);
    if (rc < 0)
        return az_fail_transport(a, "DELETE", show, rc, e);
    if (!status_ok(resp.status))
        rc = az_fail_resp(a, "DELETE", show, &resp, e);
    http_response_free(&resp);
    return rc;
}

/* Delete Blob.  A 404 to a retried DELETE is the first attempt's success
 * (its answer was lost): the blob is gone, as asked. */
static int az_remove(void *p, const char *container, const char *key, const char *show,
                     struct sky_err *e)
{
    struct az *a = p;
    struct az_req r;
    req_init(&r, "DELETE", container, key, NULL);
    if (http_headers_set(&r.headers, "x-ms-delete-snapshots", "include") < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    int rc = az_do(a, &r, &resp, e);
    if (rc < 0)
        rc = az_fail_transport(a, "DELETE", show, rc, e);
    else if (resp.status == 404 && http_retried(&resp))
        LOG_INFO("azure '%s': DELETE %s: the answer was lost; the retry found the blob gone",
                 a->name, show);
    else if (!status_ok(resp.status))
        rc = az_fail_resp(a, "DELETE", show, &resp, e);
    http_response_free(&resp);
    return rc;
}

/* ---- containers ---------------------------------------------------------- */

static int az_container_head(void *p, const char *container, struct sky_err *e)
{
    struct az *a = p;
    struct http_response resp;
    int rc = az_head_raw(a, container, "", &resp, container, e);
    if (rc == 0)
        http_response_free(&resp);
    return rc;
}

static int az_container_create(void *p, const char *container, struct sky_err *e)
{
    struct az_req r;
    req_init(&r, "PUT", container, NULL, "restype=container");
    return az_call0(p, &r, "CREATE container", container, e);
}

static int found_any(void *arg, const struct az_item *it)
{
    *(bool *)arg = true;
    return 0;
}

/* Azure deletes a container with its blobs: refuse one that has any. */
static int az_container_remove(void *p, const char *container, struct sky_err *e)
{
    struct az *a = p;
    bool any = false;
    char *next = NULL;
    int rc = list_one_page(a, container, "", true, 1, NULL, found_any, &any, &next, container, e);
    free(next);
    if (rc == 0 && any)
        rc = sky_fail(e, ENOTEMPTY, "azure '%s': %s: container not empty", a->name, container);
    if (rc < 0)
        return rc;
    struct az_req r;
    req_init(&r, "DELETE", container, NULL, "restype=container");
    return az_call0(a, &r, "DELETE container", container, e);
}

/* ---- open / close -------------------------------------------------------- */

static void az_free(struct az *a)
{
    if (!a)
        return;
    if (a->http)
        http_client_free(a->http);
    for (unsigned i = 0; i < AZ_ALIASES; i++)
        free(a->aliases[i].blob);
    pthread_mutex_destroy(&a->alias_lock);
    free(a->name);
    free(a->endpoint);
    free(a->sas);
    free(a->auth.account);
    if (a->auth.key)
        memset(a->auth.key, 0, a->auth.key_len);
    free(a->auth.key);
    free(a);
}

static void az_close(void *p)
{
    az_free(p);
}

/* Account name from a path-style (http://host/account) or host-style
 * (https://account.blob...) endpoint. */
static char *account_from_endpoint(const char *endpoint)
{
    const char *host = strstr(endpoint, "://");
    host = host ? host + 3 : endpoint;
    const char *path = strchr(host, '/');
    if (path && path[1])
        return strndup(path + 1, strcspn(path + 1, "/"));
    size_t n = strcspn(host, ".:/");
    return n && host[n] == '.' ? strndup(host, n) : NULL;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* Where the credentials come from: explicit keys win over the connection
 * string, which comes from the config or AZURE_STORAGE_CONNECTION_STRING. */
static int az_credentials(struct az *a, const struct sky_cloud_config *cfg, struct sky_err *e)
{
    const char *account = sky_cloud_get(cfg, "account");
    const char *key = sky_cloud_get(cfg, "key");
    const char *sas = sky_cloud_get(cfg, "sas_token");
    const char *endpoint = sky_cloud_get(cfg, "endpoint");
    const char *conn_str = sky_cloud_get(cfg, "connection_string");
    const char *conn_key = "connection_string";
    if (!conn_str && !account && !key && !sas) {
        conn_str = getenv("AZURE_STORAGE_CONNECTION_STRING");
        conn_key = "AZURE_STORAGE_CONNECTION_STRING";
    }
    struct azure_conn conn = { 0 };
    if (conn_str && *conn_str) {
        int rc = azure_conn_parse(conn_str, &conn, e);
        if (rc < 0)
            return sky_err_prefix(e, "%s:%d: azure cloud '%s': %s", cfg->file,
                                  sky_cloud_line(cfg, "connection_string"), cfg->name, conn_key);
    }
    a->endpoint = dup_or_null(endpoint ? endpoint : conn.endpoint);
    a->auth.account = dup_or_null(account ? account : conn.account);
    if (!key && !sas)
        key = conn.key, sas = conn.sas;
    a->sas = key ? NULL : dup_or_null(sas && *sas == '?' ? sas + 1 : sas);

    int rc = 0;
    if (!a->endpoint && a->auth.account &&
        asprintf(&a->endpoint, "https://%s.blob.core.windows.net", a->auth.account) < 0)
        a->endpoint = NULL;
    if (a->endpoint && !a->auth.account)
        a->auth.account = account_from_endpoint(a->endpoint);
    if (!a->endpoint)
        rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': no account; set account = NAME "
                      "(or endpoint, or connection_string)", cfg->file, cfg->line, cfg->name);
    else if (!key && !a->sas)
        rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': no credentials; set key, sas_token "
                      "or connection_string", cfg->file, cfg->line, cfg->name);
    else if (key && !a->auth.account)
        rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': key needs account = NAME", cfg->file,
                      cfg->line, cfg->name);
    else if (key && azure_key_decode(key, &a->auth.key, &a->auth.key_len, e) < 0)
        rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': the account key is not valid base64; "
                      "copy it again from the portal", cfg->file,
                      sky_cloud_line(cfg, sky_cloud_get(cfg, "key") ? "key" : "connection_string"),
                      cfg->name);
    azure_conn_free(&conn);
    return rc;
}

static int az_proto_open(const struct sky_cloud_config *cfg, const char *name,
                         const struct objstore_where *where, void **p, struct sky_err *e)
{
    struct az *a = calloc(1, sizeof *a);
    if (!a)
        return oom(e);
    pthread_mutex_init(&a->alias_lock, NULL);
    a->name = strdup(name);
    int rc = a->name ? az_credentials(a, cfg, e) : oom(e);
    if (rc == 0 && strncmp(a->endpoint, "http://", 7) != 0 &&
        strncmp(a->endpoint, "https://", 8) != 0)
        rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': endpoint must start with http:// or "
                      "https://", cfg->file, sky_cloud_line(cfg, "endpoint"), cfg->name);
    if (rc == 0) {
        size_t n = strlen(a->endpoint);
        while (n && a->endpoint[n - 1] == '/')
            a->endpoint[--n] = '\0';
        struct http_options opt;
        rc = http_options_from_cloud(cfg, &opt, e);
        if (rc == 0)
            rc = http_client_new(&opt, &a->http, e);
    }
    if (rc < 0) {
        az_free(a);
        return rc;
    }
    *p = a;
    return 0;
}

/* ---- the codec, the protocol, the driver ----------------------------------- */

/* Can user.NAME be Azure metadata NAME?  A C identifier in lowercase
 * (names are case-insensitive; HEAD answers show them lowercased). */
static bool az_name_ok(const char *n)
{
    size_t len = strlen(n);
    bool ok = len > 0 && len < 200 && (islower((unsigned char)n[0]) || n[0] == '_');
    for (size_t i = 0; ok && i < len; i++)
        ok = islower((unsigned char)n[i]) || isdigit((unsigned char)n[i]) || n[i] == '_';
    return ok;
}

static const struct objstore_codec az_codec = {
    .flags = OBJSTORE_CODEC_PLAIN_VALUES | OBJSTORE_CODEC_NAMED_MARKER,
    .format_time = objstore_time_rfc3339,
    .marker_type = "application/octet-stream",
    .dir_types = NULL,
    .folder_flag = "hdi_isfolder",
    .meta_max = AZ_META_MAX,
    .user_name_ok = az_name_ok,
};

static const struct objstore_proto az_proto = {
    .type = "azure",
    .container_key = "container",
    .flags = OBJSTORE_LIST_META | OBJSTORE_ACCOUNT | OBJSTORE_COND,
    .codec = &az_codec,
    .put_max = AZ_PUT_BLOB_MAX,
    .part_size = AZ_BLOCK_SIZE,
    .max_parts = AZ_MAX_BLOCKS,
    .batch_max = 0,
    .open = az_proto_open,
    .close = az_close,
    .list_page = az_list_page,
    .list_containers = az_list_containers,
    .head = az_head,
    .get = az_get,
    .put = az_put,
    .mpu_begin = az_mpu_begin,
    .mpu_part = az_mpu_part,
    .mpu_complete = az_mpu_complete,
    .mpu_end = az_mpu_end,
    .copy = az_copy,
    .compose = az_compose,
    .set_meta = az_set_meta,
    .remove = az_remove,
    .remove_match = az_remove_match,
    .remove_batch = NULL,
    .container_head = az_container_head,
    .container_create = az_container_create,
    .container_remove = az_container_remove,
};

static int az_open(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e)
{
    return objstore_open(&az_proto, cfg, ctx, e);
}

static const struct sky_key az_keys[] = {
    { "account", 0, "storage account name (default: from the connection string or endpoint)" },
    { "key", SKY_KEY_SECRET, "account key (base64) for Shared Key authorization" },
    { "sas_token", SKY_KEY_SECRET, "shared access signature query string, instead of a key" },
    { "connection_string", SKY_KEY_SECRET,
      "AccountName=...;AccountKey=... (default: $AZURE_STORAGE_CONNECTION_STRING)" },
    { "endpoint", 0, "blob endpoint URL (default https://ACCOUNT.blob.core.windows.net; "
      "Azurite: http://127.0.0.1:10000/ACCOUNT)" },
    { "container", 0, "the container to show (default: all containers as directories)" },
    { "prefix", 0, "show only blobs under this prefix of the container" },
    HTTP_CLOUD_KEYS,
    { "ca_file", 0, "extra CA certificates (PEM) to trust for the endpoint" },
    { NULL, 0, NULL },
};

const struct sky_driver sky_driver_azure =
    OBJSTORE_DRIVER("azure", "Azure Blob Storage container (or Azurite)", az_keys, az_open,
                    AZ_BLOCK_SIZE);
