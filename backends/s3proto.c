/*
 * s3proto.c - the S3 protocol pieces (s3proto.h): requests of S3's XML
 * API as objstore_proto callbacks, for backends/s3.c and GCS's XML API.
 * This file: the parsers, sending a request, listings, HEAD, GET, deletes,
 * buckets and setup; what writes objects (PUT, multipart uploads, copies,
 * incremental uploads) is s3proto_upload.c.
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
#include "s3proto_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../lib/log.h"
#include "bodysum.h"
#include "names.h"
#include "xml.h"


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
    if (strcmp(code, "BadDigest") == 0 || strcmp(code, "InvalidDigest") == 0)
        return EBADMSG;         /* the body arrived damaged: sent again (s3proto_put) */
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

int s3p_oom(struct sky_err *e)
{
    return sky_fail(e, ENOMEM, "out of memory");
}

static char *s3p_url(const struct s3proto *s, const char *bucket, const char *key,
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


int s3p_send(struct s3proto *s, struct s3_req *r, struct http_response *resp,
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
        .method = r->method, .url = s3p_url(s, r->bucket, r->key, r->query),
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
        rc = s3p_oom(e);
    else if ((rc = http_do(s->http, &req, resp, e)) < 0)
        sky_err_prefix(e, "%s '%s': %s %s", s->type, s->name, r->method, show);
    free(req.url);
    http_headers_free(&req.headers);
    return rc;
}

/* The error for a non-2xx answer (or a 200 carrying an <Error>). */
int s3p_fail_answer(struct s3proto *s, const char *op, const char *show,
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

bool s3p_ok_status(long st)
{
    return st >= 200 && st < 300;
}

/* Send and treat any non-2xx status as an error. */
/* GCS serves an object stored gzip-encoded decompressed to a client that
 * does not accept gzip: the bytes are not those its ETag sums. */
static bool stored_encoded(const struct http_headers *h)
{
    const char *enc = http_headers_get(h, "x-goog-stored-content-encoding");
    return enc && strcmp(enc, "identity") != 0;
}

bool s3p_etag_may_be_md5(const struct s3proto *s, const struct http_headers *h)
{
    return !atomic_load(&s->etags.opaque) && !http_headers_get(h, "x-amz-server-side-encryption") &&
           !http_headers_get(h, "x-amz-server-side-encryption-customer-algorithm") &&
           !http_headers_get(h, "x-goog-encryption-kms-key-name") &&
           !http_headers_get(h, "x-goog-encryption-algorithm") &&
           !stored_encoded(h);
}

int s3p_call(struct s3proto *s, struct s3_req *r, struct http_response *resp,
                   const char *show, struct sky_err *e)
{
    int rc = s3p_send(s, r, resp, show, e);
    if (rc < 0)
        return rc;
    if (!s3p_ok_status(resp->status)) {
        rc = s3p_fail_answer(s, r->method, show, resp, e);
        http_response_free(resp);
    }
    return rc;
}

/* Parse a 2xx XML body whose root must be `root_name`; an <Error> root (S3
 * sends those with status 200 for copies and completions) fails. */
int s3p_xml_answer(struct s3proto *s, const char *op, const char *show,
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
int s3p_new_headers(const struct s3proto *s, struct http_headers *h,
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

static int s3p_head_from_headers(const struct s3proto *s, const struct http_headers *h,
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
    rc = s3p_call(s, &r, &resp, show, e);
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
    int rc = s3p_call(s, &r, &resp, "/", e);
    if (rc < 0)
        return rc;
    struct xml_node *root;
    rc = s3p_xml_answer(s, "LIST", "/", &resp, "ListAllMyBucketsResult", &root, e);
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

int s3p_raw_head(struct s3proto *s, const char *bucket, const char *key,
                    struct http_response *resp, const char *show, struct sky_err *e)
{
    struct s3_req r = S3_REQ("HEAD");
    r.bucket = bucket;
    r.key = key;
    return s3p_send(s, &r, resp, show, e);
}

int s3proto_head(void *p, const char *container, const char *key, struct objstore_head *out,
                 const char *show, struct sky_err *e)
{
    struct s3proto *s = p;
    struct http_response resp;
    memset(out, 0, sizeof *out);
    int rc = s3p_raw_head(s, container, key, &resp, show, e);
    if (rc < 0)
        return rc;
    if (s3p_ok_status(resp.status))
        rc = s3p_head_from_headers(s, &resp.headers, out) < 0 ? s3p_oom(e) : 0;
    else
        rc = s3p_fail_answer(s, "HEAD", show, &resp, e);
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

static int get_once(struct s3proto *s, const char *container, const char *key,
                    const char *if_match, uint64_t off, uint64_t len, struct bodysum_sink *ss,
                    struct http_response *resp, const char *show, struct sky_err *e)
{
    memset(resp, 0, sizeof *resp);
    struct s3_req r = S3_REQ("GET");
    r.bucket = container;
    r.key = key;
    r.sink = bodysum_sink_take;
    r.sink_arg = ss;
    r.out_cap = (size_t)len;
    r.range_off = off;
    r.range_len = len;      /* http.c asks for it and checks the answer */
    if (if_match && *if_match && http_headers_set(&r.headers, "If-Match", if_match) < 0) {
        http_headers_free(&r.headers);
        return s3p_oom(e);
    }
    bodysum_sink_start(ss);
    return s3p_send(s, &r, resp, show, e);
}

/* The answer to a GET from `off` brought a whole object whose ETag may be
 * its MD5, and the bytes' sum (in *sum) is another. */
static bool got_other_bytes(struct s3proto *s, const struct http_response *resp, uint64_t off,
                            struct bodysum_sink *ss, struct bodysum *sum)
{
    return s3p_etag_may_be_md5(s, &resp->headers) && bodysum_sink_whole(ss, resp, off, sum) &&
           bodysum_trust_differs(&s->etags, sum, http_headers_get(&resp->headers, "etag"));
}

int s3proto_get(void *p, const char *container, const char *key, const char *if_match,
                uint64_t off, uint64_t len, sky_sink_fn sink, void *sink_arg,
                char etag_out[SKY_ETAG_MAX], const char *show, struct sky_err *e)
{
    struct s3proto *s = p;
    struct bodysum_sink ss = { .sink = sink, .arg = sink_arg, .wanted = off == 0 };
    struct bodysum sum, prev;
    struct http_response resp;
    int rc;
    for (int tries = 1;; tries++) {
        rc = get_once(s, container, key, if_match, off, len, &ss, &resp, show, e);
        if (rc < 0)
            break;
        bool delivered = resp.status == 200 || resp.status == 206;
        if (delivered && etag_differs(if_match, &resp)) {
            rc = sky_fail(e, ESTALE, "%s '%s': GET %s: changed since it was opened", s->type,
                          s->name, show);
        } else if (!delivered && resp.status != 416) {     /* 416: past the end */
            if (resp.status == 412)
                rc = sky_fail(e, ESTALE, "%s '%s': GET %s: 412 changed since it was opened",
                              s->type, s->name, show);
            else
                rc = s3p_fail_answer(s, "GET", show, &resp, e);
        } else if (delivered && got_other_bytes(s, &resp, off, &ss, &sum)) {
            char what[512];
            snprintf(what, sizeof what, "%s '%s': GET %s", s->type, s->name, show);
            rc = bodysum_got_other(&s->etags, tries, &sum, tries > 1 ? &prev : NULL, what, e);
            if (rc == 0) {
                prev = sum;
                http_response_free(&resp);
                continue;                   /* the sink starts again at pos 0 */
            }
            rc = rc > 0 ? 0 : rc;
        }
        break;
    }
    bodysum_sink_free(&ss);
    if (rc == 0 && etag_out)
        objstore_etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
    http_response_free(&resp);
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
    int rc = s3p_call(s, &r, &resp, show, e);
    if (rc == 0)
        http_response_free(&resp);
    return rc;
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
        return s3p_oom(e);
    size_t len = (size_t)snprintf(body, cap, "<Delete><Quiet>true</Quiet>");
    for (size_t i = 0; i < n; i++) {
        char *k = xml_escape(keys[i]);
        if (!k) {
            free(body);
            return s3p_oom(e);
        }
        len += (size_t)snprintf(body + len, cap - len, "<Object><Key>%s</Key></Object>", k);
        free(k);
    }
    len += (size_t)snprintf(body + len, cap - len, "</Delete>");
    struct bodysum sum;
    char md5[25];
    if (bodysum_of(body, -1, 0, len, &sum) != 0) {
        free(body);
        return s3p_oom(e);
    }
    bodysum_base64(&sum, md5);
    struct s3_req r = S3_REQ("POST");
    r.bucket = container;
    r.query = "delete";
    r.body = body;
    r.body_len = len;
    if (http_headers_set(&r.headers, "Content-MD5", md5) < 0 ||
        http_headers_set(&r.headers, "Content-Type", "application/xml") < 0) {
        http_headers_free(&r.headers);
        free(body);
        return s3p_oom(e);
    }
    struct http_response resp;
    int rc = s3p_call(s, &r, &resp, show, e);
    free(body);
    if (rc < 0)
        return rc;
    struct xml_node *root;
    rc = s3p_xml_answer(s, "DELETE", show, &resp, "DeleteResult", &root, e);
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
    int rc = s3p_raw_head(s, container, NULL, &resp, container, e);
    if (rc == 0 && !s3p_ok_status(resp.status))
        rc = s3p_fail_answer(s, "HEAD", container, &resp, e);
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
    int rc = s3p_call(s, &r, &resp, container, e);
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
    int rc = s3p_call(s, &r, &resp, container, e);
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
        return s3p_oom(e);
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
        return s3p_oom(e);
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
