/*
 * s3proto.c - the S3 protocol pieces (s3proto.h): requests of S3's XML
 * API as objstore_proto callbacks, for backends/s3.c and GCS's XML API.
 *
 * Requests: ListObjectsV2 (encoding-type=url), HEAD, ranged GET with
 * If-Match, PUT, multipart uploads (CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload, AbortMultipartUpload), CopyObject with
 * x-amz-metadata-directive (UploadPartCopy above 5 GiB), DELETE,
 * DeleteObjects, buckets (ListBuckets, HEAD, PUT, DELETE).  All of them go
 * through backends/http.c (retries, pool), signed by sigv4.c or the
 * module's own hook.  A completion or copy whose answer was lost and
 * whose retry fails is checked against what the key now holds.
 */
#include "s3proto.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../lib/log.h"
#include "names.h"
#include "parallel.h"
#include "xml.h"

#define S3_COPY_MAX  (5ull << 30)
#define S3_COPY_PART (512ull << 20)

struct s3proto {
    char *type, *name, *host, *region, *meta_prefix, *meta_prefix_alt;
    char *sc_header, *sc_default, *service;
    bool https, path_style;
    char *access_key, *secret_key, *session_token;
    struct sigv4_creds creds;
    bool sigv4;
    http_sign_fn sign;
    void *sign_arg;
    void (*sign_arg_free)(void *);
    struct http_client *http;
    /* The server answered an UploadPartCopy with NotImplemented (s3rver):
     * compose refuses from then on without asking again. */
    atomic_bool no_part_copy;
    /* The server compares If-Match on PUT with its ETags without their
     * quotes (Ceph's RGW 16: a quoted If-Match, as S3 documents it, never
     * matches): learned at the first PUT refused quoted and taken bare. */
    atomic_bool bare_if_match;
};

/* ------------------------------------------------------------------ */
/* Parsers (exported for the unit tests)                               */
/* ------------------------------------------------------------------ */

int s3proto_parse_error(const char *body, size_t len, char *code, size_t cap)
{
    struct xml_node *root;
    code[0] = '\0';
    if (!body || !len || xml_parse(body, len, &root, NULL) < 0)
        return 0;
    int is_error = strcmp(root->name, "Error") == 0;
    const char *c = xml_text(root, "Code");
    if (is_error && c)
        snprintf(code, cap, "%s", c);
    xml_free(root);
    return is_error;
}

int s3proto_error_errno(long status, const char *code)
{
    code = code ? code : "";
    if (strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NoSuchBucket") == 0 ||
        strcmp(code, "NoSuchUpload") == 0)
        return ENOENT;
    if (strcmp(code, "BucketNotEmpty") == 0)
        return ENOTEMPTY;
    if (strcmp(code, "BucketAlreadyOwnedByYou") == 0 ||
        strcmp(code, "BucketAlreadyExists") == 0)
        return EEXIST;
    if (strcmp(code, "EntityTooLarge") == 0)
        return EFBIG;
    if (strcmp(code, "InvalidBucketName") == 0 || strcmp(code, "KeyTooLongError") == 0)
        return ENAMETOOLONG;
    switch (status) {
    case 401:
    case 403:
        return EACCES;
    case 404:
        return ENOENT;
    case 409:
        return EEXIST;
    case 412:
        return ESTALE;
    case 501:
        return ENOTSUP;
    default:
        return EIO;
    }
}

/* One <Contents> or <CommonPrefixes> of a listing page of `bucket`.  A key
 * that holds a NUL byte once decoded (%00) names no object skyfs can
 * reach: it is skipped here, with a warning, rather than handed on cut at
 * the NUL, as another key.  A size that no file has is reported as
 * UINT64_MAX, which the core skips. */
static int emit_item(const struct xml_node *n, int decode, int is_prefix, objstore_item_fn fn,
                     void *arg, const char *bucket)
{
    const char *raw = xml_text(n, is_prefix ? "Prefix" : "Key");
    if (!raw)
        return 0;
    char *key = strdup(raw);
    if (!key)
        return -ENOMEM;
    size_t klen = decode ? sky_pct_decode(key, true) : strlen(key);
    if (memchr(key, '\0', klen)) {
        char show[512];
        sky_name_show(key, klen, show, sizeof show);
        LOG_WARN("s3 bucket %s: skipping key \"%s\": not a valid file name (it holds a NUL "
                 "byte)", bucket, show);
        free(key);
        return 0;
    }
    struct objstore_item it = { .key = key, .is_prefix = is_prefix };
    if (!is_prefix) {
        if (sky_size_parse(xml_text(n, "Size"), &it.size) < 0)
            it.size = UINT64_MAX;
        if (objstore_parse_iso8601(xml_text(n, "LastModified"), &it.last_modified_ns) < 0)
            it.last_modified_ns = 0;
        objstore_etag_copy(it.etag, xml_text(n, "ETag"));
        const char *sc = xml_text(n, "StorageClass");
        it.storage_class = sc && *sc ? sc : NULL;
    }
    int rc = fn(arg, &it);
    free(key);
    return rc;
}

int s3proto_parse_list(const char *body, size_t len, objstore_item_fn fn, void *arg,
                       char **next_token, struct sky_err *e)
{
    struct xml_node *root;
    *next_token = NULL;
    int rc = xml_parse(body, len, &root, e);
    if (rc < 0)
        return rc;
    if (strcmp(root->name, "ListBucketResult") != 0) {
        rc = sky_fail(e, EBADMSG, "unexpected <%s> answer to a listing", root->name);
        goto done;
    }
    const char *enc = xml_text(root, "EncodingType");
    int decode = enc && strcasecmp(enc, "url") == 0;
    const char *bucket = xml_text(root, "Name");
    bucket = bucket ? bucket : "?";
    /* objects and prefixes, in document order */
    for (const struct xml_node *n = root->child; n && rc == 0; n = n->next) {
        if (strcmp(n->name, "Contents") == 0)
            rc = emit_item(n, decode, 0, fn, arg, bucket);
        else if (strcmp(n->name, "CommonPrefixes") == 0)
            rc = emit_item(n, decode, 1, fn, arg, bucket);
    }
    const char *trunc = xml_text(root, "IsTruncated");
    const char *tok = xml_text(root, "NextContinuationToken");
    if (rc == 0 && trunc && strcmp(trunc, "true") == 0) {
        if (!tok || !*tok)
            rc = sky_fail(e, EBADMSG, "truncated listing without a continuation token");
        else if (!(*next_token = strdup(tok)))
            rc = sky_fail(e, ENOMEM, "out of memory");
    }
done:
    xml_free(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static int oom(struct sky_err *e)
{
    return sky_fail(e, ENOMEM, "out of memory");
}

static char *s3_url(const struct s3proto *s, const char *bucket, const char *key,
                    const char *query)
{
    char *ekey = http_uri_encode(key ? key : "", 1), *url = NULL;
    if (!ekey)
        return NULL;
    const char *scheme = s->https ? "https" : "http";
    const char *q = query && *query ? "?" : "";
    int rc;
    if (!bucket || !*bucket)
        rc = asprintf(&url, "%s://%s/%s%s", scheme, s->host, q, query ? query : "");
    else if (s->path_style)
        rc = asprintf(&url, "%s://%s/%s%s%s%s%s", scheme, s->host, bucket, *ekey ? "/" : "",
                      ekey, q, query ? query : "");
    else
        rc = asprintf(&url, "%s://%s.%s/%s%s%s", scheme, bucket, s->host, ekey, q,
                      query ? query : "");
    free(ekey);
    return rc < 0 ? NULL : url;
}

/* One request to send. */
struct s3_req {
    const char *method;
    const char *bucket;             /* NULL/"": service level */
    const char *key;                /* NULL/"": bucket level */
    const char *query;              /* encoded, without '?' */
    struct http_headers headers;    /* freed by s3_send */
    const void *body;
    uint64_t body_len;
    int fd;                         /* -1 unless the body comes from a file */
    uint64_t off;
    http_sink_fn sink;              /* a 2xx body goes here, at most out_cap bytes */
    void *sink_arg;
    size_t out_cap;
    uint64_t range_off, range_len;  /* range_len > 0: a ranged GET (http.h) */
};

#define S3_REQ(m) { .method = (m), .fd = -1 }

static int s3_send(struct s3proto *s, struct s3_req *r, struct http_response *resp,
                   const char *show, struct sky_err *e)
{
    memset(resp, 0, sizeof *resp);
    char hash[65];
    const char *payload = NULL;
    int rc = 0;
    if (s->sigv4 && r->fd >= 0 && !s->https) {
        rc = sigv4_sha256_fd_hex(r->fd, r->off, r->body_len, hash);
        if (rc < 0) {
            http_headers_free(&r->headers);
            return sky_fail(e, -rc, "%s '%s': %s %s: reading the local file: %s", s->type,
                            s->name, r->method, show, strerror(-rc));
        }
        payload = hash;
    }
    struct sigv4_http_signer signer = { &s->creds, { s->region, s->service }, payload };
    struct http_request req = {
        .method = r->method, .url = s3_url(s, r->bucket, r->key, r->query),
        .headers = r->headers, .body = r->body, .body_fd = r->fd, .body_off = r->off,
        .body_len = r->body_len, .out_cap = r->out_cap,
        .sink = r->sink, .sink_arg = r->sink_arg,
        .range_header = r->range_len ? "Range" : NULL,
        .range_off = r->range_off, .range_len = r->range_len,
        .sign = s->sigv4 ? sigv4_sign_http : s->sign,
        .sign_arg = s->sigv4 ? (void *)&signer : s->sign_arg,
    };
    memset(&r->headers, 0, sizeof r->headers);
    if (!req.url)
        rc = oom(e);
    else if ((rc = http_do(s->http, &req, resp, e)) < 0)
        sky_err_prefix(e, "%s '%s': %s %s", s->type, s->name, r->method, show);
    free(req.url);
    http_headers_free(&req.headers);
    return rc;
}

/* The error for a non-2xx answer (or a 200 carrying an <Error>). */
static int fail_answer(struct s3proto *s, const char *op, const char *show,
                       const struct http_response *resp, struct sky_err *e)
{
    char code[96];
    s3proto_parse_error(resp->body, resp->body_len, code, sizeof code);
    int err = s3proto_error_errno(resp->status, code);
    if (!code[0])
        snprintf(code, sizeof code, "%s", resp->status == 404 ? "NotFound"
                                        : resp->status == 403 ? "Forbidden"
                                        : resp->status == 412 ? "PreconditionFailed"
                                                              : "error");
    return sky_fail(e, err, "%s '%s': %s %s: %ld %s", s->type, s->name, op, show,
                    resp->status, code);
}

static bool ok_status(long st)
{
    return st >= 200 && st < 300;
}

/* Send and treat any non-2xx status as an error. */
static int s3_call(struct s3proto *s, struct s3_req *r, struct http_response *resp,
                   const char *show, struct sky_err *e)
{
    int rc = s3_send(s, r, resp, show, e);
    if (rc < 0)
        return rc;
    if (!ok_status(resp->status)) {
        rc = fail_answer(s, r->method, show, resp, e);
        http_response_free(resp);
    }
    return rc;
}

/* Parse a 2xx XML body whose root must be `root_name`; an <Error> root (S3
 * sends those with status 200 for copies and completions) fails. */
static int xml_answer(struct s3proto *s, const char *op, const char *show,
                      const struct http_response *resp, const char *root_name,
                      struct xml_node **root, struct sky_err *e)
{
    int rc = xml_parse(resp->body, resp->body_len, root, e);
    if (rc < 0)
        return sky_err_prefix(e, "%s '%s': %s %s", s->type, s->name, op, show);
    if (strcmp((*root)->name, "Error") == 0) {
        const char *code = xml_text(*root, "Code");
        rc = sky_fail(e, s3proto_error_errno(500, code), "%s '%s': %s %s: %s", s->type,
                      s->name, op, show, code ? code : "error");
    } else if (strcmp((*root)->name, root_name) != 0) {
        rc = sky_fail(e, EIO, "%s '%s': %s %s: unexpected <%s> answer", s->type, s->name, op,
                      show, (*root)->name);
    }
    if (rc < 0) {
        xml_free(*root);
        *root = NULL;
    }
    return rc;
}

/* Headers for new metadata: Content-Type, prefixed user metadata and the
 * kept headers.  0 or -ENOMEM. */
static int new_headers(const struct s3proto *s, struct http_headers *h,
                       const struct objstore_new *nw)
{
    int rc = http_headers_set(h, "Content-Type", nw->content_type);
    for (size_t i = 0; rc == 0 && nw->meta && i < nw->meta->n; i++) {
        char name[400];
        snprintf(name, sizeof name, "%s%s", s->meta_prefix, nw->meta->h[i].name);
        rc = http_headers_set(h, name, nw->meta->h[i].value);
    }
    for (size_t i = 0; rc == 0 && nw->keep && i < nw->keep->n; i++)
        rc = http_headers_set(h, nw->keep->h[i].name, nw->keep->h[i].value);
    return rc < 0 ? -ENOMEM : 0;
}

static const char *const kept_names[] = { "content-encoding", "cache-control",
                                          "content-disposition", NULL };

int s3proto_parse_head(const struct s3proto_conf *c, const struct http_headers *h,
                       struct objstore_head *out)
{
    memset(out, 0, sizeof *out);
    const char *len = http_headers_get(h, "content-length");
    out->size = len ? strtoull(len, NULL, 10) : 0;
    objstore_etag_copy(out->etag, http_headers_get(h, "etag"));
    if (objstore_parse_http_date(http_headers_get(h, "last-modified"),
                                 &out->last_modified_ns) < 0)
        out->last_modified_ns = 0;
    const char *type = http_headers_get(h, "content-type");
    const char *sc = c->storage_class_header ? http_headers_get(h, c->storage_class_header)
                                             : NULL;
    sc = sc && *sc ? sc : c->default_storage_class;
    int rc = 0;
    if (type && !(out->content_type = strdup(type)))
        rc = -ENOMEM;
    if (rc == 0 && sc && !(out->storage_class = strdup(sc)))
        rc = -ENOMEM;
    /* the alternative prefix first, so that ours wins */
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        const char *pre = pass ? c->meta_prefix : c->meta_prefix_alt;
        size_t n = pre ? strlen(pre) : 0;
        for (size_t i = 0; pre && rc == 0 && i < h->n; i++)
            if (strncasecmp(h->h[i].name, pre, n) == 0 && h->h[i].name[n])
                rc = http_headers_set(&out->meta, h->h[i].name + n, h->h[i].value);
    }
    for (size_t i = 0; rc == 0 && i < h->n; i++)
        for (int k = 0; kept_names[k]; k++)
            if (strcasecmp(h->h[i].name, kept_names[k]) == 0)
                rc = http_headers_set(&out->keep, h->h[i].name, h->h[i].value);
    if (rc < 0)
        objstore_head_free(out);
    return rc;
}

static int head_from_headers(const struct s3proto *s, const struct http_headers *h,
                             struct objstore_head *out)
{
    struct s3proto_conf c = { .meta_prefix = s->meta_prefix,
                              .meta_prefix_alt = s->meta_prefix_alt,
                              .storage_class_header = s->sc_header,
                              .default_storage_class = s->sc_default };
    return s3proto_parse_head(&c, h, out);
}

/* ------------------------------------------------------------------ */
/* Listing, HEAD, GET                                                  */
/* ------------------------------------------------------------------ */

static int add_query(char *q, size_t cap, const char *name, const char *value)
{
    char *enc = http_uri_encode(value, 0);
    if (!enc)
        return -ENOMEM;
    size_t len = strlen(q);
    int n = snprintf(q + len, cap - len, "%s%s=%s", len ? "&" : "", name, enc);
    free(enc);
    return n < 0 || (size_t)n >= cap - len ? -E2BIG : 0;
}

int s3proto_list_page(void *p, const char *container, const char *prefix, bool delimited,
                      int max_keys, const char *token, objstore_item_fn fn, void *arg,
                      char **next, const char *show, struct sky_err *e)
{
    struct s3proto *s = p;
    char query[4096] = "";
    char mk[16];
    *next = NULL;
    snprintf(mk, sizeof mk, "%d", max_keys > 0 ? max_keys : 1000);
    int rc = add_query(query, sizeof query, "list-type", "2");
    if (rc == 0 && token)
        rc = add_query(query, sizeof query, "continuation-token", token);
    if (rc == 0 && delimited)
        rc = add_query(query, sizeof query, "delimiter", "/");
    if (rc == 0)
        rc = add_query(query, sizeof query, "encoding-type", "url");
    if (rc == 0)
        rc = add_query(query, sizeof query, "max-keys", mk);
    if (rc == 0)
        rc = add_query(query, sizeof query, "prefix", prefix);
    if (rc < 0)
        return sky_fail(e, -rc, "%s '%s': LIST %s: %s", s->type, s->name, show,
                        rc == -E2BIG ? "prefix or page token too long" : strerror(-rc));
    struct s3_req r = S3_REQ("GET");
    r.bucket = container;
    r.query = query;
    struct http_response resp;
    rc = s3_call(s, &r, &resp, show, e);
    if (rc < 0)
        return rc;
    rc = s3proto_parse_list(resp.body, resp.body_len, fn, arg, next, e);
    if (rc < 0 && e && e->code == EBADMSG)
        sky_err_prefix(e, "%s '%s': LIST %s", s->type, s->name, show);
    http_response_free(&resp);
    if (rc < 0) {
        free(*next);
        *next = NULL;
    }
    return rc;
}

int s3proto_list_containers(void *p, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct s3proto *s = p;
    struct s3_req r = S3_REQ("GET");
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, "/", e);
    if (rc < 0)
        return rc;
    struct xml_node *root;
    rc = xml_answer(s, "LIST", "/", &resp, "ListAllMyBucketsResult", &root, e);
    http_response_free(&resp);
    if (rc < 0)
        return rc;
    const struct xml_node *b = xml_child(xml_child(root, "Buckets"), "Bucket");
    for (; b && rc == 0; b = xml_next(b)) {
        const char *name = xml_text(b, "Name");
        if (!name || sky_name_problem(name, strlen(name)))
            continue;
        struct sky_dirent ent = { .name = name, .attr = { .kind = SKY_DIR } };
        if (objstore_parse_iso8601(xml_text(b, "CreationDate"), &ent.attr.mtime_ns) == 0)
            ent.attr.has |= SKY_HAS_MTIME;
        rc = cb(arg, &ent);
    }
    xml_free(root);
    return rc;
}

static int raw_head(struct s3proto *s, const char *bucket, const char *key,
                    struct http_response *resp, const char *show, struct sky_err *e)
{
    struct s3_req r = S3_REQ("HEAD");
    r.bucket = bucket;
    r.key = key;
    return s3_send(s, &r, resp, show, e);
}

int s3proto_head(void *p, const char *container, const char *key, struct objstore_head *out,
                 const char *show, struct sky_err *e)
{
    struct s3proto *s = p;
    struct http_response resp;
    memset(out, 0, sizeof *out);
    int rc = raw_head(s, container, key, &resp, show, e);
    if (rc < 0)
        return rc;
    if (ok_status(resp.status))
        rc = head_from_headers(s, &resp.headers, out) < 0 ? oom(e) : 0;
    else
        rc = fail_answer(s, "HEAD", show, &resp, e);
    http_response_free(&resp);
    return rc;
}

/* Servers that ignore If-Match still send the object's ETag: compare. */
static bool etag_differs(const char *want, const struct http_response *resp)
{
    if (!want || !*want)
        return false;
    char have[SKY_ETAG_MAX];
    objstore_etag_copy(have, http_headers_get(&resp->headers, "etag"));
    return have[0] && strcmp(have, want) != 0;
}

int s3proto_get(void *p, const char *container, const char *key, const char *if_match,
                uint64_t off, uint64_t len, sky_sink_fn sink, void *sink_arg,
                char etag_out[SKY_ETAG_MAX], const char *show, struct sky_err *e)
{
    struct s3proto *s = p;
    struct s3_req r = S3_REQ("GET");
    r.bucket = container;
    r.key = key;
    r.sink = sink;
    r.sink_arg = sink_arg;
    r.out_cap = (size_t)len;
    r.range_off = off;
    r.range_len = len;      /* http.c asks for it and checks the answer */
    if (if_match && *if_match && http_headers_set(&r.headers, "If-Match", if_match) < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    int rc = s3_send(s, &r, &resp, show, e);
    bool delivered = rc == 0 && (resp.status == 200 || resp.status == 206);
    if (delivered && etag_differs(if_match, &resp)) {
        rc = sky_fail(e, ESTALE, "%s '%s': GET %s: changed since it was opened", s->type,
                      s->name, show);
    } else if (rc == 0 && !delivered && resp.status != 416) {  /* 416: past the end */
        if (resp.status == 412)
            rc = sky_fail(e, ESTALE, "%s '%s': GET %s: 412 changed since it was opened",
                          s->type, s->name, show);
        else
            rc = fail_answer(s, "GET", show, &resp, e);
    }
    if (rc == 0 && etag_out)
        objstore_etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
    http_response_free(&resp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* PUT                                                                 */
/* ------------------------------------------------------------------ */

/* The preconditions of nw (If-Match / If-None-Match: *) into hs: 0 or
 * -ENOMEM.  GCS's XML API has no If-None-Match on writes: its create-only
 * precondition is the generation 0 (its proto asks for no If-Match). */
static int cond_headers(const struct s3proto *s, struct http_headers *hs, const char *if_match,
                        bool if_none_match, bool bare)
{
    bool gcs = strcmp(s->type, "gcs") == 0;
    char tag[SKY_ETAG_MAX];
    size_t n = if_match ? strlen(if_match) : 0;
    if (bare && n >= 2 && if_match[0] == '"' && if_match[n - 1] == '"') {
        snprintf(tag, sizeof tag, "%.*s", (int)(n - 2), if_match + 1);
        if_match = tag;
    }
    if (if_match && *if_match && http_headers_set(hs, "If-Match", if_match) < 0)
        return -ENOMEM;
    if (if_none_match && http_headers_set(hs, gcs ? "x-goog-if-generation-match" : "If-None-Match",
                                          gcs ? "0" : "*") < 0)
        return -ENOMEM;
    return 0;
}

static int put_once(struct s3proto *s, const char *container, const char *key, const void *mem,
                    int fd, uint64_t size, const struct objstore_new *nw, bool bare,
                    char etag_out[SKY_ETAG_MAX], const char *show, struct sky_err *e)
{
    struct s3_req r = S3_REQ("PUT");
    r.bucket = container;
    r.key = key;
    if (new_headers(s, &r.headers, nw) < 0 ||
        cond_headers(s, &r.headers, nw->if_match, nw->if_none_match, bare) < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    r.fd = mem ? -1 : fd;
    r.body = mem;
    r.body_len = size;
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, show, e);
    if (rc == 0 && etag_out)
        objstore_etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
    if (rc == 0)
        http_response_free(&resp);
    return rc;
}

int s3proto_put(void *p, const char *container, const char *key, const void *mem, int fd,
                uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
                const char *show, struct sky_err *e)
{
    struct s3proto *s = p;
    bool bare = atomic_load(&s->bare_if_match);
    int rc = put_once(s, container, key, mem, fd, size, nw, bare, etag_out, show, e);
    /* Refused with a quoted If-Match: the same ETag bare.  Its success
     * means the object is that version (a bare tag never matches a
     * server that compares quoted ones), so the answer holds either way. */
    if (rc == -ESTALE && !bare && nw->if_match && nw->if_match[0] == '"') {
        struct sky_err e2 = { 0 };
        int rc2 = put_once(s, container, key, mem, fd, size, nw, true, etag_out, show, &e2);
        if (rc2 == 0) {
            if (!atomic_exchange(&s->bare_if_match, true))
                LOG_INFO("%s '%s': the server compares If-Match with ETags without their "
                         "quotes (Ceph's RGW does): sending them bare from now on", s->type,
                         s->name);
            sky_err_clear(e);
            rc = 0;
        } else if (rc2 != -ESTALE) {
            *e = e2;
            rc = rc2;
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Multipart uploads                                                   */
/* ------------------------------------------------------------------ */

struct mpu {
    struct s3proto *s;
    char *bucket, *key, *show;
    char *upload_id;            /* as returned */
    char *enc_upload_id;        /* encoded for the query */
    const char *copy_source;    /* "/bucket/key" encoded, for UploadPartCopy */
    const char *copy_if_match;  /* NULL, or the ETag the copy source must have */
    pthread_mutex_t lock;       /* guards etags and cap */
    char (*etags)[SKY_ETAG_MAX];
    uint64_t cap, nparts;
    char if_match[SKY_ETAG_MAX];/* the completion's preconditions ("" / false: none) */
    bool if_none_match;
};

static void mpu_free(struct mpu *m)
{
    free(m->bucket);
    free(m->key);
    free(m->show);
    free(m->upload_id);
    free(m->enc_upload_id);
    free(m->etags);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Room for the ETags of parts [0, n) (m->lock held). */
static int mpu_reserve(struct mpu *m, uint64_t n)
{
    if (n <= m->cap)
        return 0;
    uint64_t cap = m->cap ? m->cap : 16;
    while (cap < n)
        cap *= 2;
    char (*etags)[SKY_ETAG_MAX] = realloc(m->etags, cap * sizeof *etags);
    if (!etags)
        return -ENOMEM;
    memset(etags + m->cap, 0, (cap - m->cap) * sizeof *etags);
    m->etags = etags;
    m->cap = cap;
    return 0;
}

static struct mpu *mpu_new(struct s3proto *s, const char *bucket, const char *key,
                           const char *show)
{
    struct mpu *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->s = s;
    m->bucket = strdup(bucket);
    m->key = strdup(key);
    m->show = strdup(show);
    if (!m->bucket || !m->key || !m->show) {
        mpu_free(m);
        return NULL;
    }
    return m;
}

static int mpu_create(struct mpu *m, struct http_headers *hdrs, struct sky_err *e)
{
    struct s3proto *s = m->s;
    struct s3_req r = S3_REQ("POST");
    r.bucket = m->bucket;
    r.key = m->key;
    r.query = "uploads";
    r.headers = *hdrs;
    memset(hdrs, 0, sizeof *hdrs);
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, m->show, e);
    if (rc < 0)
        return rc;
    struct xml_node *root;
    rc = xml_answer(s, "POST", m->show, &resp, "InitiateMultipartUploadResult", &root, e);
    http_response_free(&resp);
    if (rc < 0)
        return rc;
    const char *id = xml_text(root, "UploadId");
    bool have_id = id && *id;
    if (have_id) {
        m->upload_id = strdup(id);
        m->enc_upload_id = http_uri_encode(id, 0);
    }
    xml_free(root);
    if (!have_id)
        return sky_fail(e, EIO, "%s '%s': POST %s: no UploadId in the answer", s->type,
                        s->name, m->show);
    if (!m->upload_id || !m->enc_upload_id)
        return oom(e);
    return 0;
}

int s3proto_mpu_begin(void *p, const char *container, const char *key,
                      const struct objstore_new *nw, void **up, const char *show,
                      struct sky_err *e)
{
    struct s3proto *s = p;
    struct mpu *m = mpu_new(s, container, key, show);
    if (!m)
        return oom(e);
    struct http_headers hdrs = {0};
    if (nw->if_match)
        snprintf(m->if_match, sizeof m->if_match, "%s", nw->if_match);
    m->if_none_match = nw->if_none_match;
    int rc = new_headers(s, &hdrs, nw) < 0 ? oom(e) : mpu_create(m, &hdrs, e);
    http_headers_free(&hdrs);
    if (rc < 0) {
        mpu_free(m);
        return rc;
    }
    *up = m;
    return 0;
}

/* Part n (from 1): bytes [off, off + len) of fd, or with `copy` of
 * m->copy_source (UploadPartCopy, with m->copy_if_match when set); its
 * ETag goes to etag_out. */
static int send_part(struct mpu *m, int fd, unsigned n, uint64_t off, uint64_t len, bool copy,
                     char etag_out[SKY_ETAG_MAX], struct sky_err *e)
{
    struct s3proto *s = m->s;
    char query[512], range[80];
    snprintf(query, sizeof query, "partNumber=%u&uploadId=%s", n, m->enc_upload_id);
    struct s3_req r = S3_REQ("PUT");
    r.bucket = m->bucket;
    r.key = m->key;
    r.query = query;
    if (copy) {
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1));
        if (http_headers_set(&r.headers, "x-amz-copy-source", m->copy_source) < 0 ||
            http_headers_set(&r.headers, "x-amz-copy-source-range", range) < 0 ||
            (m->copy_if_match &&
             http_headers_set(&r.headers, "x-amz-copy-source-if-match", m->copy_if_match) < 0)) {
            http_headers_free(&r.headers);
            return oom(e);
        }
    } else {
        r.fd = fd;
        r.off = off;
        r.body_len = len;
    }
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, m->show, e);
    if (rc < 0)
        return rc;
    if (copy) {
        struct xml_node *root;
        rc = xml_answer(s, "COPY", m->show, &resp, "CopyPartResult", &root, e);
        if (rc == 0) {
            objstore_etag_copy(etag_out, xml_text(root, "ETag"));
            xml_free(root);
        }
    } else {
        objstore_etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
    }
    http_response_free(&resp);
    if (rc == 0 && !etag_out[0])
        rc = sky_fail(e, EIO, "%s '%s': PUT %s: part %u answered without an ETag", s->type,
                      s->name, m->show, n);
    return rc;
}

int s3proto_mpu_part(void *up, uint64_t index, int fd, uint64_t off, uint64_t len,
                     struct sky_err *e)
{
    struct mpu *m = up;
    if (index >= S3PROTO_MAX_PARTS)
        return sky_fail(e, EFBIG, "%s '%s': PUT %s: a multipart upload holds at most %llu "
                        "parts", m->s->type, m->s->name, m->show, S3PROTO_MAX_PARTS);
    char etag[SKY_ETAG_MAX];
    int rc = send_part(m, fd, (unsigned)index + 1, off, len, false, etag, e);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&m->lock);
    rc = mpu_reserve(m, index + 1);
    if (rc == 0)
        memcpy(m->etags[index], etag, sizeof etag);
    pthread_mutex_unlock(&m->lock);
    return rc < 0 ? oom(e) : 0;
}

static char *complete_body(const struct mpu *m)
{
    size_t cap = 128 + (size_t)m->nparts * (64 + SKY_ETAG_MAX * 6);
    char *body = malloc(cap);
    if (!body)
        return NULL;
    size_t len = (size_t)snprintf(body, cap, "<CompleteMultipartUpload>");
    for (uint64_t i = 0; i < m->nparts; i++) {
        char *etag = xml_escape(m->etags[i]);
        if (!etag) {
            free(body);
            return NULL;
        }
        len += (size_t)snprintf(body + len, cap - len,
                                "<Part><PartNumber>%llu</PartNumber><ETag>%s</ETag></Part>",
                                (unsigned long long)i + 1, etag);
        free(etag);
    }
    snprintf(body + len, cap - len, "</CompleteMultipartUpload>");
    return body;
}

/* The ETag S3 gives a completed multipart upload: the MD5 of the parts'
 * binary MD5s, "-" and the number of parts; "" if a part ETag is not an
 * MD5. */
static void multipart_etag(const struct mpu *m, char *out)
{
    out[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return;
    }
    for (uint64_t i = 0; i < m->nparts; i++) {
        const char *t = m->etags[i];
        t += *t == '"';
        unsigned char md[16];
        for (int k = 0; k < 16; k++) {
            unsigned v;
            if (!isxdigit((unsigned char)t[2 * k]) || !isxdigit((unsigned char)t[2 * k + 1]) ||
                sscanf(t + 2 * k, "%2x", &v) != 1) {
                EVP_MD_CTX_free(ctx);
                return;
            }
            md[k] = (unsigned char)v;
        }
        EVP_DigestUpdate(ctx, md, sizeof md);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    char etag[SKY_ETAG_MAX];
    snprintf(etag, sizeof etag, "\"%s-%llu\"", hex, (unsigned long long)m->nparts);
    objstore_etag_copy(out, etag);
}

/* The ETag of a single-part object of `size` bytes of fd: its MD5
 * (servers such as s3rver give completed uploads that one). */
static void content_etag(int fd, uint64_t size, char *out)
{
    out[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *buf = malloc(1 << 20);
    int ok = ctx && buf && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1;
    for (uint64_t off = 0; ok && off < size;) {
        size_t want = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got <= 0)
            ok = 0;
        else {
            EVP_DigestUpdate(ctx, buf, (size_t)got);
            off += (uint64_t)got;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1) {
        char etag[SKY_ETAG_MAX] = "\"";
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(etag + 1 + 2 * i, 3, "%02x", md[i]);
        strcat(etag, "\"");
        objstore_etag_copy(out, etag);
    }
    free(buf);
    EVP_MD_CTX_free(ctx);
}

/* A completion was retried and its last answer is an error (NoSuchUpload:
 * the first attempt, whose answer was lost, completed it).  Does the key
 * now hold this upload?  Then *etag_out gets it and the completion
 * succeeded. */
static bool upload_landed(struct mpu *m, int fd, uint64_t size, char *etag_out)
{
    struct http_response head;
    struct sky_err ignored = { 0 };
    if (raw_head(m->s, m->bucket, m->key, &head, m->show, &ignored) < 0)
        return false;
    char have[SKY_ETAG_MAX], want[SKY_ETAG_MAX];
    objstore_etag_copy(have, http_headers_get(&head.headers, "etag"));
    const char *len = http_headers_get(&head.headers, "content-length");
    bool same = ok_status(head.status) && have[0] && len && strtoull(len, NULL, 10) == size;
    http_response_free(&head);
    if (!same)
        return false;
    multipart_etag(m, want);
    if (!want[0] || strcmp(have, want) != 0) {
        if (fd < 0)
            return false;
        content_etag(fd, size, want);
        if (!want[0] || strcmp(have, want) != 0)
            return false;
    }
    LOG_INFO("%s '%s': POST %s: the answer to the completion was lost; the object holds the "
             "upload", m->s->type, m->s->name, m->show);
    snprintf(etag_out, SKY_ETAG_MAX, "%s", have);
    return true;
}

int s3proto_mpu_complete(void *up, uint64_t nparts, int fd, uint64_t size,
                         char etag_out[SKY_ETAG_MAX], struct sky_err *e)
{
    struct mpu *m = up;
    struct s3proto *s = m->s;
    pthread_mutex_lock(&m->lock);
    int rc = mpu_reserve(m, nparts);
    pthread_mutex_unlock(&m->lock);
    if (rc < 0)
        return oom(e);
    for (uint64_t i = 0; i < nparts; i++)
        if (!m->etags[i][0])
            return sky_fail(e, EIO, "%s '%s': PUT %s: part %llu was never sent", s->type,
                            s->name, m->show, (unsigned long long)i + 1);
    m->nparts = nparts;
    char *body = complete_body(m), query[512];
    if (!body)
        return oom(e);
    snprintf(query, sizeof query, "uploadId=%s", m->enc_upload_id);
    struct s3_req r = S3_REQ("POST");
    r.bucket = m->bucket;
    r.key = m->key;
    r.query = query;
    r.body = body;
    r.body_len = strlen(body);
    http_headers_set(&r.headers, "Content-Type", "application/xml");
    if (cond_headers(s, &r.headers, m->if_match, m->if_none_match,
                     atomic_load(&s->bare_if_match)) < 0) {
        free(body);
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    rc = s3_send(s, &r, &resp, m->show, e);
    free(body);
    if (rc < 0)
        return rc;
    bool retried = http_retried(&resp);
    struct xml_node *root = NULL;
    if (!ok_status(resp.status))
        rc = fail_answer(s, "POST", m->show, &resp, e);
    else
        rc = xml_answer(s, "POST", m->show, &resp, "CompleteMultipartUploadResult", &root, e);
    http_response_free(&resp);
    if (rc == 0) {
        objstore_etag_copy(etag_out, xml_text(root, "ETag"));
        xml_free(root);
        /* RGW 16 answers <ETag></ETag>: S3's multipart ETag of the parts is
         * what its HEAD gives (a HEAD could meet another client's object) */
        if (!etag_out[0]) {
            multipart_etag(m, etag_out);
            LOG_DEBUG("%s '%s': POST %s: the completion answered no ETag; the parts' make %s",
                      s->type, s->name, m->show, etag_out[0] ? etag_out : "none");
        }
    } else if (retried && upload_landed(m, fd, size, etag_out)) {
        sky_err_clear(e);
        rc = 0;
    }
    return rc;
}

static void mpu_abort(struct mpu *m)
{
    char query[512];
    snprintf(query, sizeof query, "uploadId=%s", m->enc_upload_id);
    struct s3_req r = S3_REQ("DELETE");
    r.bucket = m->bucket;
    r.key = m->key;
    r.query = query;
    struct http_response resp;
    struct sky_err ignored;
    if (s3_send(m->s, &r, &resp, m->show, &ignored) == 0)
        http_response_free(&resp);
}

void s3proto_mpu_end(void *up, bool discard)
{
    struct mpu *m = up;
    if (discard && m->enc_upload_id)
        mpu_abort(m);
    mpu_free(m);
}

/* ------------------------------------------------------------------ */
/* Copy                                                                */
/* ------------------------------------------------------------------ */

/* x-amz-copy-source: "/BUCKET/KEY", the key URL-encoded but for the
 * characters a path segment may hold as they are ($ & + : = @), which
 * rclone sends raw to every S3 too.  Servers that decode the header with
 * JavaScript's decodeURI (s3rver) leave %2B and its kin encoded and then
 * find no such key: a chmod of "c++" answered ENOENT. */
static char *copy_source(const char *bucket, const char *key)
{
    char *enc = http_uri_encode(key, 1), *out = NULL;
    if (!enc)
        return NULL;
    static const char raw[] = "$&+,:;=@";
    char *w = enc;
    for (const char *r = enc; *r; r++) {
        unsigned v;
        if (r[0] == '%' && sscanf(r + 1, "%2X", &v) == 1 && v && strchr(raw, (int)v)) {
            *w++ = (char)v;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    if (asprintf(&out, "/%s/%s", bucket, enc) < 0)
        out = NULL;
    free(enc);
    return out;
}

/* A copy was retried and its last answer is an error.  Does dst hold
 * `size` bytes and, when `want` is not NULL, exactly the metadata
 * headers in want?  Then the copy succeeded. */
static bool copy_landed(struct s3proto *s, const char *bucket, const char *key, uint64_t size,
                        const struct http_headers *want, char *etag_out)
{
    struct http_response head;
    struct sky_err ignored = { 0 };
    if (raw_head(s, bucket, key, &head, key, &ignored) < 0)
        return false;
    const char *len = http_headers_get(&head.headers, "content-length");
    bool same = ok_status(head.status) && len && strtoull(len, NULL, 10) == size;
    if (same && want) {
        same = http_headers_bytes(&head.headers, s->meta_prefix) ==
               http_headers_bytes(want, s->meta_prefix);
        for (size_t i = 0; same && i < want->n; i++) {
            const char *v = http_headers_get(&head.headers, want->h[i].name);
            same = v && strcmp(v, want->h[i].value) == 0;
        }
    }
    if (same && etag_out)
        objstore_etag_copy(etag_out, http_headers_get(&head.headers, "etag"));
    http_response_free(&head);
    if (same)
        LOG_INFO("%s '%s': COPY to %s: the answer was lost; the target holds the copy",
                 s->type, s->name, key);
    return same;
}

/* A copy above the single-copy limit: UploadPartCopy parts, with the
 * metadata explicit (nw's, or the source's). */
static int copy_multipart(struct s3proto *s, const char *src, const char *sbucket,
                          const char *skey, const char *dbucket, const char *dkey,
                          uint64_t size, const struct objstore_new *nw, char *etag_out,
                          const char *show, struct sky_err *e)
{
    struct http_headers meta = {0};
    int rc = 0;
    if (nw) {
        rc = new_headers(s, &meta, nw) < 0 ? oom(e) : 0;
    } else {
        struct http_response head;
        rc = raw_head(s, sbucket, skey, &head, show, e);
        for (size_t i = 0; rc == 0 && i < head.headers.n; i++)
            if (strncasecmp(head.headers.h[i].name, s->meta_prefix,
                            strlen(s->meta_prefix)) == 0 ||
                strcmp(head.headers.h[i].name, "content-type") == 0)
                http_headers_set(&meta, head.headers.h[i].name, head.headers.h[i].value);
        if (rc == 0)
            http_response_free(&head);
    }
    struct mpu *m = rc == 0 ? mpu_new(s, dbucket, dkey, show) : NULL;
    if (rc == 0 && !m)
        rc = oom(e);
    if (rc < 0) {
        http_headers_free(&meta);
        return rc;
    }
    m->copy_source = src;
    uint64_t part = S3_COPY_PART;
    while ((size + part - 1) / part > S3PROTO_MAX_PARTS)
        part += 1ull << 20;
    uint64_t nparts = (size + part - 1) / part;
    rc = mpu_create(m, &meta, e);
    for (uint64_t i = 0; rc == 0 && i < nparts; i++) {
        uint64_t off = i * part, len = size - off < part ? size - off : part;
        rc = mpu_reserve(m, i + 1) < 0 ? oom(e)
                                       : send_part(m, -1, (unsigned)i + 1, off, len, true,
                                                   m->etags[i], e);
    }
    char etag[SKY_ETAG_MAX] = "";
    if (rc == 0)
        rc = s3proto_mpu_complete(m, nparts, -1, size, etag, e);
    if (rc == 0 && etag_out)
        snprintf(etag_out, SKY_ETAG_MAX, "%s", etag);
    s3proto_mpu_end(m, rc < 0);
    http_headers_free(&meta);
    return rc;
}

int s3proto_copy(void *p, const char *scontainer, const char *skey, const char *dcontainer,
                 const char *dkey, uint64_t size, const char *if_match,
                 const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX], const char *show,
                 struct sky_err *e)
{
    struct s3proto *s = p;
    char *src = copy_source(scontainer, skey);
    if (!src)
        return oom(e);
    int rc;
    if (size > S3_COPY_MAX) {
        rc = copy_multipart(s, src, scontainer, skey, dcontainer, dkey, size, nw, etag_out,
                            show, e);
        free(src);
        return rc;
    }
    struct s3_req r = S3_REQ("PUT");
    r.bucket = dcontainer;
    r.key = dkey;
    rc = nw && new_headers(s, &r.headers, nw) < 0 ? -ENOMEM : 0;
    if (rc == 0)
        rc = http_headers_set(&r.headers, "x-amz-copy-source", src);
    if (rc == 0)
        rc = http_headers_set(&r.headers, "x-amz-metadata-directive", nw ? "REPLACE" : "COPY");
    if (rc == 0 && if_match && *if_match)
        rc = http_headers_set(&r.headers, "x-amz-copy-source-if-match", if_match);
    free(src);
    /* what the copy must leave on dst, should its answer be lost */
    struct http_headers want = {0};
    size_t plen = strlen(s->meta_prefix);
    for (size_t i = 0; rc == 0 && nw && i < r.headers.n; i++)
        if (strncasecmp(r.headers.h[i].name, s->meta_prefix, plen) == 0)
            rc = http_headers_set(&want, r.headers.h[i].name, r.headers.h[i].value);
    if (rc < 0) {
        http_headers_free(&r.headers);
        http_headers_free(&want);
        return oom(e);
    }
    struct http_response resp;
    rc = s3_send(s, &r, &resp, show, e);
    if (rc < 0) {
        http_headers_free(&want);
        return rc;
    }
    bool retried = http_retried(&resp);
    struct xml_node *root = NULL;
    if (!ok_status(resp.status))
        rc = fail_answer(s, "PUT", show, &resp, e);
    else
        rc = xml_answer(s, "COPY", show, &resp, "CopyObjectResult", &root, e);
    http_response_free(&resp);
    if (rc == 0) {
        if (etag_out)
            objstore_etag_copy(etag_out, xml_text(root, "ETag"));
        xml_free(root);
    } else if (retried && copy_landed(s, dcontainer, dkey, size, nw ? &want : NULL, etag_out)) {
        sky_err_clear(e);
        rc = 0;
    }
    http_headers_free(&want);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Incremental uploads                                                 */
/* ------------------------------------------------------------------ */

/* S3's part limits: 5 MiB at least but for the last part, 5 GiB at most. */
static const struct objstore_part_rules s3_part_rules = {
    .min_part = 5ull << 20,
    .send_part = S3PROTO_PART_SIZE,
    .max_part = S3_COPY_MAX,
    .max_parts = S3PROTO_MAX_PARTS,
};

struct compose_job {
    struct mpu *m;
    const struct objstore_piece *pieces;
    size_t first;                   /* job i is piece first + i */
    int fd;
};

static int compose_part(void *arg, size_t i, struct sky_err *e)
{
    struct compose_job *j = arg;
    size_t k = j->first + i;
    const struct objstore_piece *pc = &j->pieces[k];
    return send_part(j->m, j->fd, (unsigned)k + 1, pc->off, pc->len, pc->copy, j->m->etags[k],
                     e);
}

/* After the parts were copied: is the object still the version if_match?
 * Ceph's RGW 16 ignores x-amz-copy-source-if-match, so a change made
 * between the caller's head and a copy would be copied in, a mix of two
 * versions; a head now, after every copy, finds such a change (-ESTALE)
 * before the completion makes anything of the parts. */
static int copied_from(struct s3proto *s, const char *bucket, const char *key,
                       const char *if_match, const char *show, struct sky_err *e)
{
    struct objstore_head h;
    int rc = s3proto_head(s, bucket, key, &h, show, e);
    if (rc == -ENOENT)
        return sky_fail(e, ESTALE, "%s '%s': HEAD %s: the object was deleted while its parts "
                        "were copied", s->type, s->name, show);
    if (rc < 0)
        return rc;
    if (strcmp(h.etag, if_match) != 0)
        rc = sky_fail(e, ESTALE, "%s '%s': HEAD %s: the object changed while its parts were "
                      "copied (ETag %s, not %s)", s->type, s->name, show, h.etag, if_match);
    objstore_head_free(&h);
    return rc;
}

int s3proto_compose(void *p, const char *container, const char *key, const char *if_match,
                    uint64_t base_size, const struct sky_range *dirty, size_t ndirty, int fd,
                    uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
                    uint64_t *sent, const char *show, struct sky_err *e)
{
    struct s3proto *s = p;
    if (atomic_load(&s->no_part_copy))
        return sky_fail(e, ENOTSUP, "%s '%s': PUT %s: the server has no UploadPartCopy (it "
                        "answered NotImplemented)", s->type, s->name, show);
    struct objstore_piece *pieces = NULL;
    size_t n = 0;
    int rc = objstore_plan_parts(size, base_size, dirty, ndirty, &s3_part_rules, &pieces, &n);
    if (rc == -ENOTSUP)
        return sky_fail(e, ENOTSUP, "%s '%s': PUT %s: no unchanged range of 5 MiB or more to "
                        "copy (or too many parts)", s->type, s->name, show);
    if (rc < 0)
        return oom(e);
    char *src = copy_source(container, key);
    struct mpu *m = src ? mpu_new(s, container, key, show) : NULL;
    struct http_headers hdrs = {0};
    rc = m && mpu_reserve(m, n) == 0 && new_headers(s, &hdrs, nw) == 0 ? 0 : oom(e);
    if (rc == 0) {
        m->copy_source = src;
        m->copy_if_match = if_match;
        if (nw->if_match)   /* the completion's precondition */
            snprintf(m->if_match, sizeof m->if_match, "%s", nw->if_match);
        rc = mpu_create(m, &hdrs, e);
    }
    http_headers_free(&hdrs);
    /* One copied part first, alone: a server without UploadPartCopy says
     * so before any byte of the file was sent. */
    size_t first_copy = 0;
    while (first_copy < n && !pieces[first_copy].copy)
        first_copy++;
    struct compose_job job = { m, pieces, first_copy, fd };
    if (rc == 0)
        rc = compose_part(&job, 0, e);
    if (rc == -ENOTSUP) {
        atomic_store(&s->no_part_copy, true);
        sky_err_prefix(e, "the server has no UploadPartCopy");
    }
    if (rc == 0 && first_copy > 0) {
        job.first = 0;
        rc = parallel_for(first_copy, OBJSTORE_THREADS, compose_part, &job, e);
    }
    if (rc == 0 && first_copy + 1 < n) {
        job.first = first_copy + 1;
        rc = parallel_for(n - first_copy - 1, OBJSTORE_THREADS, compose_part, &job, e);
    }
    if (rc == 0 && if_match)
        rc = copied_from(s, container, key, if_match, show, e);
    if (rc == 0)
        rc = s3proto_mpu_complete(m, n, fd, size, etag_out, e);
    if (rc == 0 && sent) {
        *sent = 0;
        for (size_t i = 0; i < n; i++)
            *sent += pieces[i].copy ? 0 : pieces[i].len;
    }
    if (m)
        s3proto_mpu_end(m, rc < 0);
    free(src);
    free(pieces);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Delete                                                              */
/* ------------------------------------------------------------------ */

int s3proto_remove(void *p, const char *container, const char *key, const char *show,
                   struct sky_err *e)
{
    struct s3proto *s = p;
    struct s3_req r = S3_REQ("DELETE");
    r.bucket = container;
    r.key = key;
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, show, e);
    if (rc == 0)
        http_response_free(&resp);
    return rc;
}

static void md5_base64(const char *data, size_t len, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

int s3proto_remove_batch(void *p, const char *container, char *const *keys, size_t n,
                         const char *show, struct sky_err *e)
{
    struct s3proto *s = p;
    size_t cap = 64;
    for (size_t i = 0; i < n; i++)
        cap += strlen(keys[i]) * 6 + 32;
    char *body = malloc(cap);
    if (!body)
        return oom(e);
    size_t len = (size_t)snprintf(body, cap, "<Delete><Quiet>true</Quiet>");
    for (size_t i = 0; i < n; i++) {
        char *k = xml_escape(keys[i]);
        if (!k) {
            free(body);
            return oom(e);
        }
        len += (size_t)snprintf(body + len, cap - len, "<Object><Key>%s</Key></Object>", k);
        free(k);
    }
    len += (size_t)snprintf(body + len, cap - len, "</Delete>");
    char md5[32];
    md5_base64(body, len, md5);
    struct s3_req r = S3_REQ("POST");
    r.bucket = container;
    r.query = "delete";
    r.body = body;
    r.body_len = len;
    if (http_headers_set(&r.headers, "Content-MD5", md5) < 0 ||
        http_headers_set(&r.headers, "Content-Type", "application/xml") < 0) {
        http_headers_free(&r.headers);
        free(body);
        return oom(e);
    }
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, show, e);
    free(body);
    if (rc < 0)
        return rc;
    struct xml_node *root;
    rc = xml_answer(s, "DELETE", show, &resp, "DeleteResult", &root, e);
    http_response_free(&resp);
    if (rc < 0)
        return rc;
    const struct xml_node *err = xml_child(root, "Error");
    if (err)
        rc = sky_fail(e, s3proto_error_errno(500, xml_text(err, "Code")),
                      "%s '%s': DELETE %s: %s %s", s->type, s->name,
                      xml_text(err, "Key") ? xml_text(err, "Key") : show,
                      xml_text(err, "Code") ? xml_text(err, "Code") : "error", "(batch delete)");
    xml_free(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Buckets                                                             */
/* ------------------------------------------------------------------ */

int s3proto_container_head(void *p, const char *container, struct sky_err *e)
{
    struct s3proto *s = p;
    struct http_response resp;
    int rc = raw_head(s, container, NULL, &resp, container, e);
    if (rc == 0 && !ok_status(resp.status))
        rc = fail_answer(s, "HEAD", container, &resp, e);
    http_response_free(&resp);
    return rc;
}

int s3proto_container_create(void *p, const char *container, struct sky_err *e)
{
    struct s3proto *s = p;
    char body[256] = "";
    struct s3_req r = S3_REQ("PUT");
    r.bucket = container;
    if (strcmp(s->region, "us-east-1") != 0) {
        snprintf(body, sizeof body,
                 "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
                 "</CreateBucketConfiguration>", s->region);
        r.body = body;
        r.body_len = strlen(body);
    }
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, container, e);
    if (rc == 0)
        http_response_free(&resp);
    return rc;
}

int s3proto_container_remove(void *p, const char *container, struct sky_err *e)
{
    struct s3proto *s = p;
    struct s3_req r = S3_REQ("DELETE");
    r.bucket = container;
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, container, e);
    if (rc == 0)
        http_response_free(&resp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

static void wipe(char *p)
{
    if (p) {
        memset(p, 0, strlen(p));
        free(p);
    }
}

void s3proto_free(struct s3proto *s)
{
    if (!s)
        return;
    http_client_free(s->http);
    if (s->sign_arg_free)
        s->sign_arg_free(s->sign_arg);
    free(s->type);
    free(s->name);
    free(s->host);
    free(s->region);
    free(s->meta_prefix);
    free(s->meta_prefix_alt);
    free(s->sc_header);
    free(s->sc_default);
    free(s->service);
    free(s->access_key);
    wipe(s->secret_key);
    wipe(s->session_token);
    free(s);
}

void s3proto_close(void *p)
{
    s3proto_free(p);
}

static int dup_opt(char **dst, const char *src)
{
    if (!src)
        return 0;
    return (*dst = strdup(src)) ? 0 : -ENOMEM;
}

int s3proto_new(const struct s3proto_conf *c, struct s3proto **out, struct sky_err *e)
{
    struct s3proto *s = calloc(1, sizeof *s);
    if (!s)
        return oom(e);
    s->https = c->https;
    s->path_style = c->path_style;
    s->sign = c->sign;
    s->sign_arg = c->sign_arg;
    s->sign_arg_free = c->sign_arg_free;
    int rc = dup_opt(&s->type, c->type) | dup_opt(&s->name, c->name) |
             dup_opt(&s->host, c->host) | dup_opt(&s->region, c->region ? c->region : "us-east-1") |
             dup_opt(&s->meta_prefix, c->meta_prefix ? c->meta_prefix : "x-amz-meta-") |
             dup_opt(&s->meta_prefix_alt, c->meta_prefix_alt) |
             dup_opt(&s->sc_header, c->storage_class_header ? c->storage_class_header
                                                            : "x-amz-storage-class") |
             dup_opt(&s->sc_default, c->default_storage_class) |
             dup_opt(&s->service, c->service ? c->service : "s3");
    if (rc == 0 && c->creds) {
        s->sigv4 = true;
        rc = dup_opt(&s->access_key, c->creds->access_key) |
             dup_opt(&s->secret_key, c->creds->secret_key) |
             dup_opt(&s->session_token, c->creds->session_token);
        s->creds.access_key = s->access_key;
        s->creds.secret_key = s->secret_key;
        s->creds.session_token = s->session_token;
    }
    if (rc) {
        s->sign_arg_free = NULL;    /* the caller still owns it */
        s3proto_free(s);
        return oom(e);
    }
    rc = http_client_new(c->http, &s->http, e);
    if (rc < 0) {
        s->sign_arg_free = NULL;
        s3proto_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
