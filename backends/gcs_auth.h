/*
 * gcs_auth.h - Google Cloud Storage credentials: HMAC keys, service-account
 * keys, gcloud's application-default credentials, anonymous access.
 *
 * A gcs cloud uses one of four ways in:
 *   - HMAC keys (access_key_id / secret_access_key): GCS's XML API accepts
 *     requests signed with AWS Signature Version 4 under an HMAC key
 *     ("simple migration"), so backends/sigv4.c signs them (service "s3",
 *     region "auto" unless the cloud names one).  Under an AWS signature
 *     GCS also reads x-amz-* headers that have an x-goog-* equivalent
 *     (x-amz-meta-* for x-goog-meta-*), which is why gcs.c writes user
 *     metadata as x-amz-meta-* on HMAC clouds.
 *   - A service-account JSON key ("type": "service_account"): an RS256 JWT
 *     (header kid = private_key_id; claims iss = client_email, scope, aud =
 *     token_uri, iat, exp = iat + 1 h) signed with the key's private_key
 *     (OpenSSL EVP) is exchanged at token_uri (grant type
 *     urn:ietf:params:oauth:grant-type:jwt-bearer) for an access token.
 *   - gcloud's application-default credentials ("type": "authorized_user"):
 *     client_id, client_secret and refresh_token are exchanged at token_uri
 *     (default https://oauth2.googleapis.com/token, grant type
 *     refresh_token) for an access token.
 *   - anonymous: no Authorization header (public buckets).
 * Access tokens are sent as "Authorization: Bearer TOKEN", kept in memory
 * and renewed shortly before they expire (gcs_token_renew_after): while one
 * thread renews, the others go on with the still-valid token; only an
 * expired token makes callers wait, and those waiting share the fetch's
 * failure instead of asking a failing endpoint one by one.
 *
 * Key files must be regular files readable by their owner only (mode
 * 0600 or stricter); anything else is refused with the chmod that fixes
 * it.  JSON is read and written with json-c.  Secrets (HMAC secret,
 * private key, client secret, refresh token, access tokens) never appear
 * in error messages or logs.
 *
 * The pure functions (key parsing, JWT building, token answer parsing,
 * the renewal rule) are separate from the request hook so that the unit
 * tests check them.  Used by backends/gcs.c and tests/unit/test_gcs_auth.c.
 */
#ifndef SKY_GCS_AUTH_H
#define SKY_GCS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "http.h"

#define GCS_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GCS_SCOPE_READ_WRITE "https://www.googleapis.com/auth/devstorage.read_write"
#define GCS_SCOPE_READ_ONLY "https://www.googleapis.com/auth/devstorage.read_only"
/* Lifetime asked for in a service account's JWT (Google's maximum). */
#define GCS_JWT_LIFETIME 3600

enum gcs_key_type { GCS_KEY_SERVICE_ACCOUNT = 1, GCS_KEY_AUTHORIZED_USER = 2 };

/* A JSON key file's content; every string malloc'd or NULL. */
struct gcs_key {
    enum gcs_key_type type;
    char *token_uri;        /* from the file, or GCS_DEFAULT_TOKEN_URI */
    /* service_account */
    char *client_email;
    char *private_key;      /* PEM */
    char *private_key_id;   /* may be NULL */
    /* authorized_user */
    char *client_id;
    char *client_secret;
    char *refresh_token;
};

/* Parse a key file's JSON text.  `where` (the file name) is used in
 * messages.  -EINVAL naming the missing or wrong field (never a value). */
int gcs_key_parse(const char *json, const char *where, struct gcs_key *out, struct sky_err *e);
/* Check the file's mode (owner only: else -EPERM with the chmod fix),
 * read it and parse it. */
int gcs_key_load(const char *path, struct gcs_key *out, struct sky_err *e);
void gcs_key_free(struct gcs_key *k);

/* The signed JWT (malloc'd "header.claims.signature", base64url) a
 * service account sends to its token_uri, issued at `now` for `scope`.
 * -EINVAL when the private key cannot be read (message names the file's
 * field, not the key). */
int gcs_jwt_make(const struct gcs_key *k, const char *scope, int64_t now, char **jwt,
                 struct sky_err *e);

/* base64url without padding of n bytes (malloc'd). */
char *gcs_base64url(const unsigned char *data, size_t n);

/* Parse a token endpoint's answer: {"access_token": ..., "expires_in": N,
 * "token_type": "Bearer"}.  An {"error": ..., "error_description": ...}
 * answer, or one without access_token, gives -EACCES with the error code
 * and description (these hold no secret).  *token is malloc'd. */
int gcs_token_parse(const char *body, long status, char **token, int64_t *expires_in,
                    struct sky_err *e);

/* When a token obtained at `obtained` and valid for `expires_in` seconds
 * is renewed: 5 minutes before it expires, or after three quarters of its
 * life when it lives less than 20 minutes. */
int64_t gcs_token_renew_after(int64_t obtained, int64_t expires_in);

/* What a cached token is good for at `now`. */
enum gcs_token_state {
    GCS_TOKEN_FRESH,        /* use it */
    GCS_TOKEN_RENEW,        /* still valid: use it, but renew it now */
    GCS_TOKEN_EXPIRED,      /* (or none) fetch a new one before the request */
};
enum gcs_token_state gcs_token_state_at(int64_t now, int64_t renew_after, int64_t expires_at,
                                        bool have_token);

enum gcs_auth_kind {
    GCS_AUTH_HMAC = 1, GCS_AUTH_SERVICE_ACCOUNT, GCS_AUTH_AUTHORIZED_USER, GCS_AUTH_ANONYMOUS
};

/* How a cloud authenticates, from its config keys (gcs.c fills it). */
struct gcs_auth_config {
    const char *cloud;              /* cloud name, for messages */
    const char *access_key_id;      /* HMAC */
    const char *secret_access_key;
    const char *region;             /* SigV4 region; NULL = "auto" */
    const char *credentials_file;   /* JSON key file */
    const char *token_uri;          /* overrides the key file's; NULL = keep */
    bool anonymous;
    bool read_only;                 /* ask for the read-only scope */
};

struct gcs_auth;

/* Pick the way in: HMAC keys when given; else credentials_file; else
 * $GOOGLE_APPLICATION_CREDENTIALS; else gcloud's
 * ~/.config/gcloud/application_default_credentials.json when it exists;
 * else anonymous when asked; else -EINVAL saying what to set.  Key files
 * are read (and their mode checked) here; no token is fetched yet.
 * Tokens are fetched through a client of their own built from `opt`. */
int gcs_auth_new(const struct gcs_auth_config *cfg, const struct http_options *opt,
                 struct gcs_auth **out, struct sky_err *e);
void gcs_auth_free(struct gcs_auth *a);
enum gcs_auth_kind gcs_auth_kind(const struct gcs_auth *a);
/* Does the cloud sign with an AWS signature (so x-amz-* headers are
 * GCS's x-goog-* ones)? */
bool gcs_auth_is_hmac(const struct gcs_auth *a);

/* A current access token (malloc'd), fetching or renewing it as needed.
 * Thread-safe.  -EACCES when the endpoint refuses, -EHOSTDOWN when it
 * cannot be reached (the message names token_uri, never the token). */
int gcs_auth_token(struct gcs_auth *a, char **token, struct sky_err *e);

/* The http_sign_fn for every request of the cloud (arg: struct gcs_auth).
 * HMAC: SigV4 (memory bodies hashed, fd bodies UNSIGNED-PAYLOAD); tokens:
 * "Authorization: Bearer ..."; anonymous: nothing. */
int gcs_auth_sign(void *arg, struct http_request *req, struct sky_err *e);

/* How many tokens were fetched so far (for tests and `skyfs status`). */
unsigned gcs_auth_fetches(const struct gcs_auth *a);

#endif
