/*
 * swift_auth.h - OpenStack Swift credentials: TempAuth (v1) and Keystone v3
 * password authentication, the storage URL, and the token of every request.
 *
 * A Swift cloud gets a token and a storage URL ("https://host/v1/AUTH_x",
 * the account every object URL starts with) in one of two ways:
 *   - v1 (TempAuth, swauth, many providers' "v1.0" endpoints): GET auth_url
 *     with X-Auth-User and X-Auth-Key; the answer's X-Auth-Token and
 *     X-Storage-Url headers.
 *   - Keystone v3 password auth: POST auth_url + "/auth/tokens" with the
 *     user (and its domain), the password and the project scope (and its
 *     domain); the token is the X-Subject-Token header, the storage URL is
 *     the "object-store" endpoint of the token's service catalog for the
 *     chosen region and interface (public by default).
 * `storage_url` overrides the URL either way.
 *
 * Settings come from the cloud's keys, else from the standard environment
 * (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME,
 * OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME,
 * OS_INTERFACE, OS_STORAGE_URL, OS_AUTH_TOKEN; ST_AUTH, ST_USER, ST_KEY).
 *
 * A `struct swift_auth` is shared by every thread of one cloud: it
 * authenticates on first use, hands out the current token, renews it
 * before it expires and when a request was refused with 401
 * (swift_auth_renew: many threads refused with the same token cause one
 * renewal).  Its own HTTP client does the auth requests.
 *
 * The pure functions (swift_v3_request_body, swift_v3_parse_token,
 * swift_catalog_select, swift_parse_iso8601) are separate so the unit tests
 * check them.  Used only by backends/swift*.c and their tests.  Keys and
 * tokens never appear in messages.
 */
#ifndef SKY_SWIFT_AUTH_H
#define SKY_SWIFT_AUTH_H

#include <pthread.h>
#include <stdint.h>

#include "../lib/err.h"
#include "http.h"

/* What one cloud authenticates with; every string malloc'd or NULL. */
struct swift_creds {
    int version;            /* 1 (TempAuth) or 3 (Keystone v3); 0 = token only */
    char *auth_url;         /* v1: the full URL (".../auth/v1.0"); v3: ".../v3" */
    char *user, *key;
    char *user_domain;      /* v3; default "Default" */
    char *project;          /* v3 project (tenant) name */
    char *project_domain;   /* v3; default user_domain */
    char *region;           /* catalog region, or NULL: the first */
    char *interface;        /* catalog interface; default "public" */
    char *storage_url;      /* override, or NULL */
    char *token;            /* a pre-made token (OS_AUTH_TOKEN with storage_url) */
};

/* Looks up one config key of the cloud, NULL when absent. */
typedef const char *(*swift_key_fn)(void *arg, const char *key);

/* Fill *out from the cloud's keys (auth_url, user, key, domain,
 * project_domain, project, region, interface, storage_url, auth_version)
 * and, for what the keys do not say, the environment.  The version is
 * `auth_version` when given, else 3 when the auth URL ends in /v3 (or
 * /v3/) or a project/domain is given, else 1.  -EINVAL naming the missing
 * key (and the environment variable that could give it) otherwise. */
int swift_creds_load(swift_key_fn get, void *arg, const char *cloud, struct swift_creds *out,
                     struct sky_err *e);
void swift_creds_free(struct swift_creds *c);

/* The Keystone v3 password auth request body (malloc'd JSON), or NULL on
 * ENOMEM. */
char *swift_v3_request_body(const struct swift_creds *c);

/* Parse a Keystone v3 token answer body: the object-store endpoint chosen
 * by swift_catalog_select into *storage_url (malloc'd; untouched when
 * want_url is 0) and the expiry (token.expires_at, seconds since the
 * epoch, 0 when absent) into *expires.  -EIO for a body that is not a
 * token answer, -ENOENT (message listing what the catalog offers) when no
 * endpoint fits. */
int swift_v3_parse_token(const char *body, size_t len, const char *region,
                         const char *interface, int want_url, char **storage_url,
                         int64_t *expires, struct sky_err *e);

struct json_object;
/* From a catalog array (token.catalog), the URL of the first endpoint of
 * the first service of type "object-store" whose interface is `interface`
 * (NULL: "public") and whose region or region_id is `region` (NULL: any).
 * Returns the URL (owned by the JSON object) or NULL. */
const char *swift_catalog_select(struct json_object *catalog, const char *region,
                                 const char *interface);

/* "2026-12-05T06:09:57.960600Z" / "...+00:00" / without zone (UTC) ->
 * nanoseconds since the epoch; 0 or -EINVAL. */
int swift_parse_iso8601(const char *s, int64_t *ns);

struct swift_auth {
    struct swift_creds creds;
    char *cloud;                /* for messages */
    struct http_client *http;   /* auth requests only */
    pthread_mutex_t lock;
    char *token;                /* current token, or NULL */
    char *storage_url;          /* current storage URL (no trailing '/') */
    int64_t expires;            /* seconds since the epoch, 0 = unknown */
    uint64_t generation;        /* bumped by each authentication */
};

/* Set up (no request yet).  Takes over *creds (zeroed).  -ENOMEM or the
 * HTTP client's error. */
int swift_auth_new(struct swift_creds *creds, const char *cloud, const struct http_options *opt,
                   struct swift_auth **out, struct sky_err *e);
void swift_auth_free(struct swift_auth *a);

/* The storage URL (malloc'd copy, no trailing '/'), authenticating first
 * when there is no valid token.  Errors: -EACCES (credentials refused),
 * -EHOSTDOWN (auth server unreachable), -EIO/-ENOENT (an answer without a
 * token or storage URL), each naming the cloud and the auth URL. */
int swift_auth_storage_url(struct swift_auth *a, char **url, struct sky_err *e);

/* http_sign_fn (arg = struct swift_auth *): sets X-Auth-Token to the
 * current token, authenticating when there is none or it is about to
 * expire. */
int swift_auth_sign(void *arg, struct http_request *req, struct sky_err *e);

/* A request sent with `token` (its X-Auth-Token header) was answered 401:
 * forget that token so that the next swift_auth_sign authenticates again
 * (a newer token someone else got meanwhile is kept). */
void swift_auth_renew(struct swift_auth *a, const char *token);

#endif
