/*
 * azure_auth.h - Azure Storage credentials: connection strings, Shared Key
 * signing and SAS tokens.
 *
 * Azure accepts three ways in, and a cloud uses one of them:
 *   - Shared Key: the account key (base64) signs each request.  The string
 *     to sign is the verb, eleven standard headers, the x-ms-* headers
 *     (lowercased, sorted) and the resource ("/account/path" plus the query
 *     parameters, lowercased, sorted, values decoded); the signature is the
 *     base64 HMAC-SHA256 of it under the decoded key, sent as
 *     "Authorization: SharedKey account:signature".
 *   - SAS: a query string the owner signed in advance; appended to every
 *     URL, no Authorization header.
 *   - A connection string ("AccountName=...;AccountKey=...;...") carrying
 *     either of the above plus the endpoint.
 *
 * The pure functions (azure_conn_parse, azure_string_to_sign,
 * azure_signature) are separate from the request hook so that unit tests
 * check them against known values.  Used only by backends/azure.c and its
 * tests.  Keys never appear in error messages.
 */
#ifndef SKY_AZURE_AUTH_H
#define SKY_AZURE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "http.h"

/* Storage API version sent in x-ms-version (supported by Azurite 3.x). */
#define AZURE_API_VERSION "2021-08-06"

/* Azurite's well-known development account. */
#define AZURE_DEV_ACCOUNT "devstoreaccount1"
#define AZURE_DEV_KEY \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define AZURE_DEV_ENDPOINT "http://127.0.0.1:10000/devstoreaccount1"

/* What a connection string says; every field malloc'd or NULL. */
struct azure_conn {
    char *account;      /* AccountName */
    char *key;          /* AccountKey, base64 as given */
    char *sas;          /* SharedAccessSignature, without a leading '?' */
    char *endpoint;     /* BlobEndpoint, or built from protocol + suffix */
};

/* Parse "Key=Value;Key=Value".  Keys are case-insensitive; unknown keys
 * (QueueEndpoint, ...) are ignored.  Without BlobEndpoint, the endpoint is
 * DefaultEndpointsProtocol://AccountName.blob.EndpointSuffix (https,
 * core.windows.net by default).  "UseDevelopmentStorage=true" means
 * Azurite's account on 127.0.0.1:10000.  -EINVAL with a message naming the
 * bad part (never its value) when the string is malformed. */
int azure_conn_parse(const char *s, struct azure_conn *out, struct sky_err *e);
void azure_conn_free(struct azure_conn *c);

/* Decode a base64 account key into a malloc'd buffer.  -EINVAL if it is
 * not base64. */
int azure_key_decode(const char *b64, unsigned char **key, size_t *len, struct sky_err *e);

/* The Shared Key string to sign (malloc'd, NULL on ENOMEM) for a request
 * with `method`, full `url` (scheme://host[:port]/path?query, as sent),
 * headers `hs` and a body of `body_len` bytes (Content-Length is signed as
 * "" when 0, as the 2015-02-21+ rules say). */
char *azure_string_to_sign(const char *account, const char *method, const char *url,
                           const struct http_headers *hs, uint64_t body_len);

/* base64(HMAC-SHA256(key, msg)) into out (at least 45 bytes). */
void azure_signature(const unsigned char *key, size_t key_len, const char *msg, char out[64]);

/* RFC 1123 date for x-ms-date ("Sun, 11 Oct 2009 21:49:13 GMT"), 30 bytes. */
void azure_http_date(int64_t unix_seconds, char out[32]);

/* Signing state for one cloud: set up once by the driver, then used as an
 * http_request sign hook (arg = struct azure_auth *) from any thread. */
struct azure_auth {
    char *account;
    unsigned char *key;     /* decoded; NULL when the cloud uses a SAS */
    size_t key_len;
};

/* http_sign_fn: stamps x-ms-date and x-ms-version and, with a key, the
 * Authorization header.  With a SAS it only stamps the date and version
 * (the SAS is already in the URL). */
int azure_sign_request(void *arg, struct http_request *req, struct sky_err *e);

#endif
