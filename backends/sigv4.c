/*
 * sigv4.c - AWS Signature Version 4; see sigv4.h.
 *
 * The canonical request is built in a growable string: method, path
 * (decoded then encoded once, '/' kept), query (pairs decoded, encoded
 * strictly, sorted by name then value), headers (names lowercased, values
 * trimmed with inner runs of spaces collapsed, sorted), the signed header
 * list and the payload hash.  The key is derived by chaining HMACs over
 * date, region, service and "aws4_request".
 */
#include "sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "../lib/sbuf.h"
#include <openssl/sha.h>


/* ---- hashing ---- */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *buf, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(buf, len, md);
    hex_encode(md, sizeof md, out);
}

int sigv4_sha256_fd_hex(int fd, uint64_t off, uint64_t len, char out[65])
{
    enum { CHUNK = 64 << 10 };     /* several parts hash at once: keep it small */
    char *buf = malloc(CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = 0;
    if (!buf || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        rc = -ENOMEM;
        goto done;
    }
    while (len > 0) {
        size_t want = len < CHUNK ? (size_t)len : CHUNK;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = got < 0 ? -errno : -EIO;
            goto done;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)got);
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    hex_encode(md, mdlen, out);
done:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

static void hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
    unsigned outlen = 32;
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &outlen);
}

void sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- percent-encoding ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode %XX sequences (and nothing else) of s[0..n) into a new string. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n &&
            (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static char *reencode(const char *s, size_t n, int keep_slash)
{
    char *raw = pct_decode(s, n);
    if (!raw)
        return NULL;
    char *enc = http_uri_encode(raw, keep_slash);
    free(raw);
    return enc;
}

/* ---- canonical query ---- */

struct qpair {
    char *name, *value;
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static void canonical_query(struct sbuf *b, const char *q)
{
    if (!q || !*q)
        return;
    size_t n = 1;
    for (const char *p = q; *p; p++)
        n += *p == '&';
    struct qpair *pairs = calloc(n, sizeof *pairs);
    if (!pairs) {
        b->failed = 1;
        return;
    }
    size_t np = 0;
    for (const char *p = q; *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq ? (size_t)(eq - p) : len;
            pairs[np].name = reencode(p, nlen, 0);
            pairs[np].value = eq ? reencode(eq + 1, len - nlen - 1, 0) : strdup("");
            if (!pairs[np].name || !pairs[np].value)
                b->failed = 1;
            np++;
        }
        p += len + (end ? 1 : 0);
    }
    if (!b->failed) {
        qsort(pairs, np, sizeof *pairs, qpair_cmp);
        for (size_t i = 0; i < np; i++) {
            if (i)
                sbuf_add(b, "&");
            sbuf_add(b, pairs[i].name);
            sbuf_add(b, "=");
            sbuf_add(b, pairs[i].value);
        }
    }
    for (size_t i = 0; i < np; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
}

/* ---- canonical headers ---- */

struct chdr {
    char *name;             /* lowercased copy */
    const char *value;
};

static int chdr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct chdr *)a)->name, ((const struct chdr *)b)->name);
}

/* Value trimmed, inner runs of blanks collapsed to one space. */
static void add_trimmed(struct sbuf *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    int pending_space = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            pending_space = 1;
            continue;
        }
        if (pending_space)
            sbuf_add(b, " ");
        pending_space = 0;
        sbuf_addn(b, v, 1);
    }
}

/* Appends the canonical header block to b and the signed list to sig
 * (as many headers as the request has); 0 or -ENOMEM. */
static int canonical_headers(struct sbuf *b, struct sbuf *sig, const struct http_headers *hs)
{
    size_t n = 0, total = hs ? hs->n : 0;
    struct chdr *h = calloc(total ? total : 1, sizeof *h);
    if (!h)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < total; i++) {
        if (strcasecmp(hs->h[i].name, "authorization") == 0)
            continue;
        char *name = strdup(hs->h[i].name);
        if (!name) {
            rc = -ENOMEM;
            break;
        }
        for (char *c = name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        h[n].name = name;
        h[n].value = hs->h[i].value;
        n++;
    }
    if (rc == 0) {
        qsort(h, n, sizeof h[0], chdr_cmp);
        for (size_t i = 0; i < n; i++) {
            sbuf_add(b, h[i].name);
            sbuf_add(b, ":");
            add_trimmed(b, h[i].value);
            sbuf_add(b, "\n");
            if (i)
                sbuf_add(sig, ";");
            sbuf_add(sig, h[i].name);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(h[i].name);
    free(h);
    return rc;
}

/* ---- the algorithm ---- */

static char *canonical_request(const struct sigv4_request *rq, char **signed_headers)
{
    struct sbuf b = {0}, sig = {0};
    const char *path = rq->path && *rq->path ? rq->path : "/";
    char *cpath = reencode(path, strlen(path), 1);
    if (!cpath)
        return NULL;
    sbuf_add(&b, rq->method);
    sbuf_add(&b, "\n");
    sbuf_add(&b, cpath);
    sbuf_add(&b, "\n");
    free(cpath);
    canonical_query(&b, rq->query);
    sbuf_add(&b, "\n");
    if (canonical_headers(&b, &sig, rq->headers) < 0)
        b.failed = 1;
    sbuf_add(&b, "\n");
    sbuf_add(&b, sig.s ? sig.s : "");
    sbuf_add(&b, "\n");
    sbuf_add(&b, rq->payload_hash);
    *signed_headers = sbuf_finish(&sig);
    char *out = sbuf_finish(&b);
    if (!out || !*signed_headers) {
        free(out);
        free(*signed_headers);
        *signed_headers = NULL;
        return NULL;
    }
    return out;
}

static void signing_key(const struct sigv4_creds *cr, const struct sigv4_scope *sc,
                        const char *date8, unsigned char key[32])
{
    size_t slen = strlen(cr->secret_key) + 5;
    char *k0 = malloc(slen);
    if (!k0) {
        memset(key, 0, 32);
        return;
    }
    snprintf(k0, slen, "AWS4%s", cr->secret_key);
    unsigned char k1[32], k2[32], k3[32];
    hmac(k0, strlen(k0), date8, k1);
    hmac(k1, 32, sc->region, k2);
    hmac(k2, 32, sc->service, k3);
    hmac(k3, 32, "aws4_request", key);
    memset(k0, 0, slen);
    free(k0);
}

int sigv4_sign(const struct sigv4_creds *cr, const struct sigv4_scope *sc,
               const struct sigv4_request *rq, struct sigv4_result *out)
{
    memset(out, 0, sizeof *out);
    if (!rq->amz_date || strlen(rq->amz_date) != 16)
        return -EINVAL;
    char date8[9];
    memcpy(date8, rq->amz_date, 8);
    date8[8] = '\0';

    char *signed_headers = NULL;
    out->canonical_request = canonical_request(rq, &signed_headers);
    if (!out->canonical_request)
        return -ENOMEM;

    char creq_hash[65], scope[256];
    sigv4_sha256_hex(out->canonical_request, strlen(out->canonical_request), creq_hash);
    snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date8, sc->region, sc->service);
    if (asprintf(&out->string_to_sign, "AWS4-HMAC-SHA256\n%s\n%s\n%s",
                 rq->amz_date, scope, creq_hash) < 0) {
        out->string_to_sign = NULL;
        goto oom;
    }

    unsigned char key[32], sig[32];
    signing_key(cr, sc, date8, key);
    hmac(key, 32, out->string_to_sign, sig);
    memset(key, 0, sizeof key);
    hex_encode(sig, 32, out->signature);

    if (asprintf(&out->authorization,
                 "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 cr->access_key, scope, signed_headers, out->signature) < 0) {
        out->authorization = NULL;
        goto oom;
    }
    free(signed_headers);
    return 0;
oom:
    free(signed_headers);
    sigv4_result_free(out);
    return -ENOMEM;
}

void sigv4_result_free(struct sigv4_result *r)
{
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->authorization);
    memset(r, 0, sizeof *r);
}

/* ---- the http sign hook ---- */

/* Split "scheme://host[:port]/path?query" into host (default ports
 * dropped), path and query.  Returns 0 or -EINVAL. */
static int split_url(const char *url, char *host, size_t hostcap, const char **path,
                     const char **query)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -EINVAL;
    int https = strncasecmp(url, "https", 5) == 0;
    p += 3;
    size_t hlen = strcspn(p, "/?");
    if (hlen == 0 || hlen >= hostcap)
        return -EINVAL;
    memcpy(host, p, hlen);
    host[hlen] = '\0';
    const char *port = strrchr(host, ':');
    if (port && !strchr(port, ']') &&
        ((https && strcmp(port, ":443") == 0) || (!https && strcmp(port, ":80") == 0)))
        host[port - host] = '\0';
    p += hlen;
    *path = p;
    const char *q = strchr(p, '?');
    *query = q ? q + 1 : NULL;
    return 0;
}

int sigv4_sign_http(void *arg, struct http_request *req, struct sky_err *e)
{
    const struct sigv4_http_signer *s = arg;
    char host[512];
    const char *path, *query;
    if (split_url(req->url, host, sizeof host, &path, &query) < 0)
        return sky_fail(e, EINVAL, "cannot sign a request to a malformed URL");

    char hash[65];
    const char *payload = s->payload_hash;
    if (!payload) {
        if (req->body || req->body_fd < 0) {
            sigv4_sha256_hex(req->body ? req->body : "", req->body ? req->body_len : 0, hash);
            payload = hash;
        } else {
            payload = SIGV4_UNSIGNED_PAYLOAD;
        }
    }
    char date[17];
    sigv4_amz_date((time_t)http_request_time(req), date);

    struct http_headers *hs = &req->headers;
    if (http_headers_set(hs, "Host", host) < 0 ||
        http_headers_set(hs, "x-amz-date", date) < 0 ||
        http_headers_set(hs, "x-amz-content-sha256", payload) < 0 ||
        (s->creds->session_token && *s->creds->session_token &&
         http_headers_set(hs, "x-amz-security-token", s->creds->session_token) < 0))
        return sky_fail(e, ENOMEM, "out of memory signing a request");

    /* path without the query part */
    size_t plen = strcspn(path, "?");
    char *pathonly = strndup(path, plen);
    if (!pathonly)
        return sky_fail(e, ENOMEM, "out of memory signing a request");
    struct sigv4_request rq = {
        .method = req->method, .path = pathonly, .query = query,
        .headers = hs, .payload_hash = payload, .amz_date = date,
    };
    struct sigv4_result res;
    int rc = sigv4_sign(s->creds, &s->scope, &rq, &res);
    free(pathonly);
    if (rc < 0)
        return sky_fail(e, -rc, "cannot sign the request");
    rc = http_headers_set(hs, "Authorization", res.authorization);
    sigv4_result_free(&res);
    if (rc < 0)
        return sky_fail(e, ENOMEM, "out of memory signing a request");
    return 0;
}
