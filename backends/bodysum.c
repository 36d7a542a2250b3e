/*
 * bodysum.c - see bodysum.h.
 */
#include "bodysum.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../lib/log.h"
#include "http.h"

#define BODYSUM_CHUNK (1u << 20)

int bodysum_of(const void *mem, int fd, uint64_t off, uint64_t len, struct bodysum *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *buf = mem ? NULL : malloc(BODYSUM_CHUNK);
    int rc = ctx && (mem || buf) && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 ? 0 : -ENOMEM;
    if (rc == 0 && mem && len)
        EVP_DigestUpdate(ctx, mem, (size_t)len);
    for (uint64_t done = 0; rc == 0 && !mem && done < len;) {
        size_t want = len - done < BODYSUM_CHUNK ? (size_t)(len - done) : BODYSUM_CHUNK;
        ssize_t got = pread(fd, buf, want, (off_t)(off + done));
        if (got <= 0) {
            rc = -EIO;
        } else {
            EVP_DigestUpdate(ctx, buf, (size_t)got);
            done += (uint64_t)got;
        }
    }
    unsigned mdlen = 0;
    if (rc == 0 && (EVP_DigestFinal_ex(ctx, out->md5, &mdlen) != 1 || mdlen != sizeof out->md5))
        rc = -ENOMEM;
    free(buf);
    EVP_MD_CTX_free(ctx);
    return rc;
}

void bodysum_base64(const struct bodysum *b, char out[25])
{
    EVP_EncodeBlock((unsigned char *)out, b->md5, (int)sizeof b->md5);
}

void bodysum_hex(const struct bodysum *b, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof b->md5; i++) {
        out[2 * i] = hex[b->md5[i] >> 4];
        out[2 * i + 1] = hex[b->md5[i] & 15];
    }
    out[32] = '\0';
}

int bodysum_begin(struct bodysum_run *r)
{
    r->ctx = EVP_MD_CTX_new();
    if (r->ctx && EVP_DigestInit_ex(r->ctx, EVP_md5(), NULL) == 1)
        return 0;
    bodysum_run_free(r);
    return -ENOMEM;
}

void bodysum_add(struct bodysum_run *r, const void *data, size_t n)
{
    if (r->ctx && n)
        EVP_DigestUpdate(r->ctx, data, n);
}

int bodysum_end(struct bodysum_run *r, struct bodysum *out)
{
    unsigned mdlen = 0;
    int rc = r->ctx && EVP_DigestFinal_ex(r->ctx, out->md5, &mdlen) == 1 &&
             mdlen == sizeof out->md5 ? 0 : -ENOMEM;
    bodysum_run_free(r);
    return rc;
}

void bodysum_run_free(struct bodysum_run *r)
{
    EVP_MD_CTX_free(r->ctx);
    r->ctx = NULL;
}

bool bodysum_etag_is_md5(const char *etag)
{
    if (!etag)
        return false;
    etag += *etag == '"';
    size_t n = 0;
    while (n < 32 && isxdigit((unsigned char)etag[n]))
        n++;
    return n == 32 && (!etag[32] || (etag[32] == '"' && !etag[33]));
}

bool bodysum_etag_differs(const struct bodysum *b, const char *etag)
{
    if (!bodysum_etag_is_md5(etag))
        return false;           /* not a plain MD5: says nothing */
    etag += *etag == '"';
    char hex[33];
    bodysum_hex(b, hex);
    for (size_t i = 0; i < 32; i++)
        if (tolower((unsigned char)etag[i]) != hex[i])
            return true;
    return false;
}

void bodysum_sink_start(struct bodysum_sink *ss)
{
    bodysum_run_free(&ss->run);
    ss->next = 0;
    ss->gap = !ss->wanted || bodysum_begin(&ss->run) != 0;
}

int bodysum_sink_take(void *arg, uint64_t pos, const void *data, size_t n)
{
    struct bodysum_sink *ss = arg;
    if (!ss->wanted)
        return ss->sink(ss->arg, pos, data, n);
    if (pos == 0 && ss->next)               /* a retry inside the request */
        bodysum_sink_start(ss);
    if (pos != ss->next || !ss->run.ctx) {
        ss->gap = true;
    } else {
        bodysum_add(&ss->run, data, n);
        ss->next += n;
    }
    return ss->sink(ss->arg, pos, data, n);
}

bool bodysum_sink_whole(struct bodysum_sink *ss, const struct http_response *resp, uint64_t off,
                        struct bodysum *sum)
{
    uint64_t total = UINT64_MAX;
    const char *cr = http_headers_get(&resp->headers, "content-range"), *slash;
    const char *cl = http_headers_get(&resp->headers, "content-length");
    if (resp->status == 206 && cr && (slash = strrchr(cr, '/')) != NULL)
        total = strtoull(slash + 1, NULL, 10);
    else if (resp->status == 200 && cl)
        total = strtoull(cl, NULL, 10);
    return off == 0 && !ss->gap && ss->next == total && bodysum_end(&ss->run, sum) == 0;
}

void bodysum_sink_free(struct bodysum_sink *ss)
{
    bodysum_run_free(&ss->run);
}

bool bodysum_trust_differs(struct bodysum_trust *t, const struct bodysum *sum, const char *etag)
{
    if (atomic_load(&t->opaque) || !bodysum_etag_is_md5(etag))
        return false;
    if (bodysum_etag_differs(sum, etag))
        return true;
    atomic_store(&t->are_md5, true);
    return false;
}

int bodysum_got_other(struct bodysum_trust *t, int tries, const struct bodysum *sum,
                      const struct bodysum *prev, const char *what, struct sky_err *e)
{
    if (prev && memcmp(prev->md5, sum->md5, sizeof sum->md5) == 0 &&
        !atomic_load(&t->are_md5)) {
        if (!atomic_exchange(&t->opaque, true))
            LOG_WARN("%s: two downloads brought the same bytes, whose MD5 is not the object's "
                     "ETag: taken as this server's way of naming versions, not as damage; "
                     "ETags are compared with content no more", what);
        return 1;
    }
    if (tries >= BODYSUM_TRIES)
        return sky_fail(e, EIO, "%s: the bytes arrived damaged %d times (their MD5 is not the "
                        "object's ETag): something on the way damages data", what, tries);
    LOG_WARN("%s: the bytes that arrived are not those the server holds (their MD5 is not the "
             "object's ETag); asking again", what);
    return 0;
}
