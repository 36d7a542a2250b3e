/*
 * s3proto_upload.c - the S3 protocol requests that write objects
 * (s3proto.h): PUT with its preconditions, multipart uploads
 * (CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
 * AbortMultipartUpload), CopyObject with x-amz-metadata-directive
 * (UploadPartCopy above 5 GiB) and incremental uploads composed of copied
 * and sent parts.  Every body goes with its Content-MD5, and the ETag of
 * what was stored is compared with it (bodysum.h): a body damaged on the
 * way is sent again.  A completion or copy whose answer was lost and whose
 * retry fails is checked against what the key now holds.
 */
#include "s3proto_int.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../lib/log.h"
#include "bodysum.h"
#include "parallel.h"

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

/* ---- the integrity of what is sent (bodysum.h) ---- */

/* Sum the body of an upload (mem, or len bytes of fd from off), once for
 * all its tries: 0, or a failure in e. */
static int sum_body(struct s3proto *s, const void *mem, int fd, uint64_t off, uint64_t len,
                    struct bodysum *sum, const char *show, struct sky_err *e)
{
    int rc = bodysum_of(mem, fd, off, len, sum);
    if (rc == -EIO)
        return sky_fail(e, EIO, "%s '%s': PUT %s: cannot read the cached file to send",
                        s->type, s->name, show);
    return rc ? s3p_oom(e) : 0;
}

/* The Content-MD5 header of a body whose sum is `sum`, into hs: 0 or -ENOMEM. */
static int md5_header(struct http_headers *hs, const struct bodysum *sum)
{
    char b64[25];
    bodysum_base64(sum, b64);
    return http_headers_set(hs, "Content-MD5", b64);
}

/* After a 2xx answer to an upload whose body's sum is `sum`: does its
 * ETag say the server stored other bytes?  Only where the ETag may be an
 * MD5 (s3p_etag_may_be_md5; AWS, which encrypts every object, verifies
 * the Content-MD5 header).  One that matches shows the server's ETags are
 * MD5s (s->etags.are_md5, for the downloads' check). */
static bool stored_other_bytes(struct s3proto *s, const struct http_response *resp,
                               const struct bodysum *sum)
{
    const struct http_headers *h = &resp->headers;
    return s3p_etag_may_be_md5(s, h) &&
           bodysum_trust_differs(&s->etags, sum, http_headers_get(h, "etag"));
}

/* The body of try `tries` (from 1) of an upload arrived other than sent
 * (why: BadDigest, or the ETag of what was stored).  true: send it again;
 * false: give up.  The last ETag that differs is taken as the server's
 * way of naming versions (an encryption its answer did not name), not as
 * damage, which is rare and random: the ETags are compared no more, and
 * the server's own Content-MD5 check is what is left. */
static bool send_again(struct s3proto *s, int tries, bool etag, const char *show)
{
    if (tries < BODYSUM_TRIES) {
        LOG_WARN("%s '%s': PUT %s: the server %s other bytes than were sent (%s); sending "
                 "them again", s->type, s->name, show, etag ? "stored" : "received",
                 etag ? "its ETag is not their MD5" : "BadDigest");
        return true;
    }
    if (etag && !atomic_exchange(&s->etags.opaque, true))
        LOG_WARN("%s '%s': PUT %s: %d uploads in a row got an ETag that is not the MD5 of the "
                 "bytes sent: taken as this server's way of naming versions, not as damage; "
                 "uploads are checked by the server's Content-MD5 check only from now on",
                 s->type, s->name, show, BODYSUM_TRIES);
    return false;
}

static int put_once(struct s3proto *s, const char *container, const char *key, const void *mem,
                    int fd, uint64_t size, const struct bodysum *sum,
                    const struct objstore_new *nw, bool bare, char etag_out[SKY_ETAG_MAX],
                    bool *other_bytes, const char *show, struct sky_err *e)
{
    struct s3_req r = S3_REQ("PUT");
    r.bucket = container;
    r.key = key;
    *other_bytes = false;
    if (s3p_new_headers(s, &r.headers, nw) < 0 ||
        cond_headers(s, &r.headers, nw->if_match, nw->if_none_match, bare) < 0 ||
        md5_header(&r.headers, sum) < 0) {
        http_headers_free(&r.headers);
        return s3p_oom(e);
    }
    r.fd = mem ? -1 : fd;
    r.body = mem;
    r.body_len = size;
    struct http_response resp;
    int rc = s3p_call(s, &r, &resp, show, e);
    if (rc == 0) {
        objstore_etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
        *other_bytes = stored_other_bytes(s, &resp, sum);
        http_response_free(&resp);
    }
    return rc;
}

/* put_once, and with a quoted If-Match refused, the same ETag bare. */
static int put_conditional(struct s3proto *s, const char *container, const char *key,
                           const void *mem, int fd, uint64_t size, const struct bodysum *sum,
                           const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
                           bool *other_bytes, const char *show, struct sky_err *e)
{
    bool bare = atomic_load(&s->bare_if_match);
    int rc = put_once(s, container, key, mem, fd, size, sum, nw, bare, etag_out, other_bytes,
                      show, e);
    /* Refused with a quoted If-Match: the same ETag bare.  Its success
     * means the object is that version (a bare tag never matches a
     * server that compares quoted ones), so the answer holds either way. */
    if (rc == -ESTALE && !bare && nw->if_match && nw->if_match[0] == '"') {
        struct sky_err e2 = { 0 };
        int rc2 = put_once(s, container, key, mem, fd, size, sum, nw, true, etag_out,
                           other_bytes, show, &e2);
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

int s3proto_put(void *p, const char *container, const char *key, const void *mem, int fd,
                uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
                const char *show, struct sky_err *e)
{
    struct s3proto *s = p;
    struct objstore_new again = *nw;
    char ours[SKY_ETAG_MAX], etag[SKY_ETAG_MAX] = "";
    struct bodysum sum;
    int rc = sum_body(s, mem, fd, 0, size, &sum, show, e);
    for (int tries = 1; rc == 0; tries++) {
        bool other = false;
        rc = put_conditional(s, container, key, mem, fd, size, &sum, &again, etag, &other, show,
                             e);
        if (rc == -EBADMSG && send_again(s, tries, false, show)) {
            sky_err_clear(e);   /* refused: nothing was stored */
            continue;
        }
        if (rc == 0 && other && send_again(s, tries, true, show)) {
            /* what was stored is this upload's, damaged: replaced, and
             * only that version (another machine's change meanwhile stays) */
            snprintf(ours, sizeof ours, "%s", etag);
            again.if_match = ours;
            again.if_none_match = false;
            continue;
        }
        break;
    }
    if (rc == -EBADMSG)
        rc = sky_fail(e, EIO, "%s '%s': PUT %s: the server received other bytes than were sent, "
                      "%d times (BadDigest): something on the way damages data", s->type,
                      s->name, show, BODYSUM_TRIES);
    if (rc == 0 && etag_out)
        snprintf(etag_out, SKY_ETAG_MAX, "%s", etag);
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
    int rc = s3p_call(s, &r, &resp, m->show, e);
    if (rc < 0)
        return rc;
    struct xml_node *root;
    rc = s3p_xml_answer(s, "POST", m->show, &resp, "InitiateMultipartUploadResult", &root, e);
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
        return s3p_oom(e);
    return 0;
}

int s3proto_mpu_begin(void *p, const char *container, const char *key,
                      const struct objstore_new *nw, void **up, const char *show,
                      struct sky_err *e)
{
    struct s3proto *s = p;
    struct mpu *m = mpu_new(s, container, key, show);
    if (!m)
        return s3p_oom(e);
    struct http_headers hdrs = {0};
    if (nw->if_match)
        snprintf(m->if_match, sizeof m->if_match, "%s", nw->if_match);
    m->if_none_match = nw->if_none_match;
    int rc = s3p_new_headers(s, &hdrs, nw) < 0 ? s3p_oom(e) : mpu_create(m, &hdrs, e);
    http_headers_free(&hdrs);
    if (rc < 0) {
        mpu_free(m);
        return rc;
    }
    *up = m;
    return 0;
}

/* Part n (from 1): bytes [off, off + len) of fd, whose sum is `sum`, or
 * with sum NULL a copy of m->copy_source (UploadPartCopy, with
 * m->copy_if_match when set); its ETag goes to etag_out.  *other_bytes:
 * the server's ETag says it stored other bytes than were sent. */
static int send_part_once(struct mpu *m, int fd, unsigned n, uint64_t off, uint64_t len,
                          const struct bodysum *sum, char etag_out[SKY_ETAG_MAX],
                          bool *other_bytes, struct sky_err *e)
{
    bool copy = !sum;
    struct s3proto *s = m->s;
    char query[512], range[80];
    snprintf(query, sizeof query, "partNumber=%u&uploadId=%s", n, m->enc_upload_id);
    struct s3_req r = S3_REQ("PUT");
    r.bucket = m->bucket;
    r.key = m->key;
    r.query = query;
    *other_bytes = false;
    if (copy) {
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1));
        if (http_headers_set(&r.headers, "x-amz-copy-source", m->copy_source) < 0 ||
            http_headers_set(&r.headers, "x-amz-copy-source-range", range) < 0 ||
            (m->copy_if_match &&
             http_headers_set(&r.headers, "x-amz-copy-source-if-match", m->copy_if_match) < 0)) {
            http_headers_free(&r.headers);
            return s3p_oom(e);
        }
    } else {
        if (md5_header(&r.headers, sum) < 0) {
            http_headers_free(&r.headers);
            return s3p_oom(e);
        }
        r.fd = fd;
        r.off = off;
        r.body_len = len;
    }
    struct http_response resp;
    int rc = s3p_call(s, &r, &resp, m->show, e);
    if (rc < 0)
        return rc;
    if (copy) {
        struct xml_node *root;
        rc = s3p_xml_answer(s, "COPY", m->show, &resp, "CopyPartResult", &root, e);
        if (rc == 0) {
            objstore_etag_copy(etag_out, xml_text(root, "ETag"));
            xml_free(root);
        }
    } else {
        objstore_etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
        *other_bytes = stored_other_bytes(s, &resp, sum);
    }
    http_response_free(&resp);
    if (rc == 0 && !etag_out[0])
        rc = sky_fail(e, EIO, "%s '%s': PUT %s: part %u answered without an ETag", s->type,
                      s->name, m->show, n);
    return rc;
}

/* send_part_once, again while the server says it got other bytes (a part
 * sent again replaces the damaged one). */
static int send_part(struct mpu *m, int fd, unsigned n, uint64_t off, uint64_t len, bool copy,
                     char etag_out[SKY_ETAG_MAX], struct sky_err *e)
{
    struct bodysum sum;
    if (!copy) {
        int rc = sum_body(m->s, NULL, fd, off, len, &sum, m->show, e);
        if (rc)
            return rc;
    }
    for (int tries = 1;; tries++) {
        bool other = false;
        int rc = send_part_once(m, fd, n, off, len, copy ? NULL : &sum, etag_out, &other, e);
        if (rc == -EBADMSG && send_again(m->s, tries, false, m->show)) {
            sky_err_clear(e);
            continue;
        }
        if (rc == 0 && other && send_again(m->s, tries, true, m->show))
            continue;
        if (rc == -EBADMSG)
            rc = sky_fail(e, EIO, "%s '%s': PUT %s: part %u: the server received other bytes "
                          "than were sent, %d times (BadDigest): something on the way damages "
                          "data", m->s->type, m->s->name, m->show, n, BODYSUM_TRIES);
        return rc;
    }
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
    return rc < 0 ? s3p_oom(e) : 0;
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
    struct bodysum sum;
    if (bodysum_of(NULL, fd, 0, size, &sum) != 0)
        return;
    char etag[SKY_ETAG_MAX] = "\"";
    for (size_t i = 0; i < sizeof sum.md5; i++)
        snprintf(etag + 1 + 2 * i, 3, "%02x", sum.md5[i]);
    strcat(etag, "\"");
    objstore_etag_copy(out, etag);
}

/* A completion was retried and its last answer is an error (NoSuchUpload:
 * the first attempt, whose answer was lost, completed it).  Does the key
 * now hold this upload?  Then *etag_out gets it and the completion
 * succeeded. */
static bool upload_landed(struct mpu *m, int fd, uint64_t size, char *etag_out)
{
    struct http_response head;
    struct sky_err ignored = { 0 };
    if (s3p_raw_head(m->s, m->bucket, m->key, &head, m->show, &ignored) < 0)
        return false;
    char have[SKY_ETAG_MAX], want[SKY_ETAG_MAX];
    objstore_etag_copy(have, http_headers_get(&head.headers, "etag"));
    const char *len = http_headers_get(&head.headers, "content-length");
    bool same = s3p_ok_status(head.status) && have[0] && len && strtoull(len, NULL, 10) == size;
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
        return s3p_oom(e);
    for (uint64_t i = 0; i < nparts; i++)
        if (!m->etags[i][0])
            return sky_fail(e, EIO, "%s '%s': PUT %s: part %llu was never sent", s->type,
                            s->name, m->show, (unsigned long long)i + 1);
    m->nparts = nparts;
    char *body = complete_body(m), query[512];
    if (!body)
        return s3p_oom(e);
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
        return s3p_oom(e);
    }
    struct http_response resp;
    rc = s3p_send(s, &r, &resp, m->show, e);
    free(body);
    if (rc < 0)
        return rc;
    bool retried = http_retried(&resp);
    struct xml_node *root = NULL;
    if (!s3p_ok_status(resp.status))
        rc = s3p_fail_answer(s, "POST", m->show, &resp, e);
    else
        rc = s3p_xml_answer(s, "POST", m->show, &resp, "CompleteMultipartUploadResult", &root, e);
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
    if (s3p_send(m->s, &r, &resp, m->show, &ignored) == 0)
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
    if (s3p_raw_head(s, bucket, key, &head, key, &ignored) < 0)
        return false;
    const char *len = http_headers_get(&head.headers, "content-length");
    bool same = s3p_ok_status(head.status) && len && strtoull(len, NULL, 10) == size;
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
        rc = s3p_new_headers(s, &meta, nw) < 0 ? s3p_oom(e) : 0;
    } else {
        struct http_response head;
        rc = s3p_raw_head(s, sbucket, skey, &head, show, e);
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
        rc = s3p_oom(e);
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
        rc = mpu_reserve(m, i + 1) < 0 ? s3p_oom(e)
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
        return s3p_oom(e);
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
    rc = nw && s3p_new_headers(s, &r.headers, nw) < 0 ? -ENOMEM : 0;
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
        return s3p_oom(e);
    }
    struct http_response resp;
    rc = s3p_send(s, &r, &resp, show, e);
    if (rc < 0) {
        http_headers_free(&want);
        return rc;
    }
    bool retried = http_retried(&resp);
    struct xml_node *root = NULL;
    if (!s3p_ok_status(resp.status))
        rc = s3p_fail_answer(s, "PUT", show, &resp, e);
    else
        rc = s3p_xml_answer(s, "COPY", show, &resp, "CopyObjectResult", &root, e);
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
        return s3p_oom(e);
    char *src = copy_source(container, key);
    struct mpu *m = src ? mpu_new(s, container, key, show) : NULL;
    struct http_headers hdrs = {0};
    rc = m && mpu_reserve(m, n) == 0 && s3p_new_headers(s, &hdrs, nw) == 0 ? 0 : s3p_oom(e);
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
