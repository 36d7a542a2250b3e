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
