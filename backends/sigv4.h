/*
 * sigv4.h - AWS Signature Version 4 request signing (HMAC-SHA256).
 *
 * Two layers.  sigv4_sign() is the pure algorithm: from a method, a URL's
 * path and query, a set of headers, a payload hash, a scope and a time it
 * builds the canonical request, the string to sign and the Authorization
 * value; it touches no clock and no network, so the unit tests check it
 * against AWS's published vectors.  sigv4_sign_http() is the glue the S3
 * driver uses as an http_request sign hook: it stamps x-amz-date (now),
 * x-amz-content-sha256, the session token and Host, then signs.
 *
 * Paths are signed the S3 way (no dot-segment normalisation, encoded
 * once).  Every header present in the request is signed, so callers must
 * not add headers after signing.  Secrets never leave this module except
 * inside the Authorization value.
 *
 * Used by backends/s3proto.c (the S3 protocol pieces) and the unit tests.
 */
#ifndef SKY_SIGV4_H
#define SKY_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http.h"

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of the empty string, hex. */
#define SIGV4_EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_creds {
    const char *access_key;
    const char *secret_key;
    const char *session_token;      /* NULL or "" when none */
};

struct sigv4_scope {
    const char *region;             /* "us-east-1" */
    const char *service;            /* "s3" */
};

/* One request as the signer sees it. */
struct sigv4_request {
    const char *method;
    const char *path;               /* "/a/b%20c", percent-encoded or not */
    const char *query;              /* "a=1&b=2" (without '?'), or NULL */
    const struct http_headers *headers;  /* all of them are signed */
    const char *payload_hash;       /* hex SHA-256 or UNSIGNED-PAYLOAD */
    const char *amz_date;           /* "20150830T123600Z" */
};

/* The results, for the caller and for tests. */
struct sigv4_result {
    char *canonical_request;        /* malloc'd */
    char *string_to_sign;           /* malloc'd */
    char signature[65];
    char *authorization;            /* malloc'd "AWS4-HMAC-SHA256 Credential=..." */
};

/* Sign one request.  Returns 0 or -ENOMEM/-EINVAL. */
int sigv4_sign(const struct sigv4_creds *cr, const struct sigv4_scope *sc,
               const struct sigv4_request *rq, struct sigv4_result *out);
void sigv4_result_free(struct sigv4_result *r);

/* "YYYYMMDDTHHMMSSZ" for t (UTC) into out[17]. */
void sigv4_amz_date(time_t t, char out[17]);

/* Hex SHA-256 of a buffer, or of `len` bytes of fd from `off` (pread). */
void sigv4_sha256_hex(const void *buf, size_t len, char out[65]);
int sigv4_sha256_fd_hex(int fd, uint64_t off, uint64_t len, char out[65]);

/* What sigv4_sign_http needs; `payload_hash` may be NULL, in which case a
 * memory body is hashed and an fd body is sent as UNSIGNED-PAYLOAD. */
struct sigv4_http_signer {
    const struct sigv4_creds *creds;
    struct sigv4_scope scope;
    const char *payload_hash;
};

/* An http_sign_fn: arg is a struct sigv4_http_signer. */
int sigv4_sign_http(void *arg, struct http_request *req, struct sky_err *e);

#endif
