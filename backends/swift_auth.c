/* swift_auth.c - see swift_auth.h. */
#include "swift_auth.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "../lib/sbuf.h"

/* A token this close to its expiry is renewed before use. */
#define SWIFT_TOKEN_MARGIN_S 60

/* ---- settings ------------------------------------------------------------ */

void swift_creds_free(struct swift_creds *c)
{
    if (!c)
        return;
    free(c->auth_url);
    free(c->user);
    free(c->key);
    free(c->user_domain);
    free(c->project);
    free(c->project_domain);
    free(c->region);
    free(c->interface);
    free(c->storage_url);
    free(c->token);
    memset(c, 0, sizeof *c);
}

/* The key's value, else the first set environment variable of env[]. */
static const char *key_or_env(swift_key_fn get, void *arg, const char *key,
                              const char *const *env)
{
    const char *v = get(arg, key);
    if (v && *v)
        return v;
    for (; env && *env; env++) {
        v = getenv(*env);
        if (v && *v)
            return v;
    }
    return NULL;
}

static int set_dup(char **field, const char *v)
{
    if (!v)
        return 0;
    *field = strdup(v);
    return *field ? 0 : -ENOMEM;
}

/* Does the URL's path end in /v3 (or /v3/)? */
static int url_is_v3(const char *url)
{
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        n--;
    return n >= 3 && strncmp(url + n - 3, "/v3", 3) == 0;
}

int swift_creds_load(swift_key_fn get, void *arg, const char *cloud, struct swift_creds *out,
                     struct sky_err *e)
{
    static const char *const env_auth[] = { "OS_AUTH_URL", "ST_AUTH", NULL };
    static const char *const env_user[] = { "OS_USERNAME", "ST_USER", NULL };
    static const char *const env_key[] = { "OS_PASSWORD", "ST_KEY", NULL };
    static const char *const env_udom[] = { "OS_USER_DOMAIN_NAME", NULL };
    static const char *const env_proj[] = { "OS_PROJECT_NAME", "OS_TENANT_NAME", NULL };
    static const char *const env_pdom[] = { "OS_PROJECT_DOMAIN_NAME", NULL };
    static const char *const env_region[] = { "OS_REGION_NAME", NULL };
    static const char *const env_iface[] = { "OS_INTERFACE", NULL };
    static const char *const env_url[] = { "OS_STORAGE_URL", NULL };
    static const char *const env_token[] = { "OS_AUTH_TOKEN", NULL };
    int rc = 0;

    memset(out, 0, sizeof *out);
    rc |= set_dup(&out->auth_url, key_or_env(get, arg, "auth_url", env_auth));
    rc |= set_dup(&out->user, key_or_env(get, arg, "user", env_user));
    rc |= set_dup(&out->key, key_or_env(get, arg, "key", env_key));
    rc |= set_dup(&out->user_domain, key_or_env(get, arg, "domain", env_udom));
    rc |= set_dup(&out->project, key_or_env(get, arg, "project", env_proj));
    rc |= set_dup(&out->project_domain, key_or_env(get, arg, "project_domain", env_pdom));
    rc |= set_dup(&out->region, key_or_env(get, arg, "region", env_region));
    rc |= set_dup(&out->interface, key_or_env(get, arg, "interface", env_iface));
    rc |= set_dup(&out->storage_url, key_or_env(get, arg, "storage_url", env_url));
    if (out->storage_url)
        rc |= set_dup(&out->token, key_or_env(get, arg, "auth_token", env_token));
    if (rc) {
        swift_creds_free(out);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", cloud);
    }
    /* trailing slashes off the URLs: paths are appended to them */
    for (char **u = &out->auth_url; u; u = (u == &out->auth_url ? &out->storage_url : NULL)) {
        if (*u) {
            size_t n = strlen(*u);
            while (n > 1 && (*u)[n - 1] == '/')
                (*u)[--n] = '\0';
        }
    }

    const char *ver = get(arg, "auth_version");
    if (ver && *ver) {
        if (strcmp(ver, "1") == 0 || strcasecmp(ver, "v1") == 0 || strcmp(ver, "1.0") == 0)
            out->version = 1;
        else if (strcmp(ver, "3") == 0 || strcasecmp(ver, "v3") == 0)
            out->version = 3;
        else {
            swift_creds_free(out);
            return sky_fail(e, EINVAL,
                            "swift '%s': auth_version must be 1 (TempAuth) or 3 (Keystone v3)",
                            cloud);
        }
    } else if (out->token && !out->auth_url) {
        out->version = 0;
    } else if ((out->auth_url && url_is_v3(out->auth_url)) || out->project) {
        out->version = 3;
    } else {
        out->version = 1;
    }

    if (out->version == 0)
        return 0;
    const char *missing = NULL, *hint = NULL;
    if (!out->auth_url)
        missing = "auth_url", hint = "OS_AUTH_URL or ST_AUTH";
    else if (!out->user)
        missing = "user", hint = "OS_USERNAME or ST_USER";
    else if (!out->key)
        missing = "key", hint = "OS_PASSWORD or ST_KEY";
    else if (out->version == 3 && !out->project)
        missing = "project", hint = "OS_PROJECT_NAME";
    if (missing) {
        swift_creds_free(out);
        return sky_fail(e, EINVAL,
                        "swift '%s': no %s: set the key `%s` in the cloud's section (or %s "
                        "in the environment)",
                        cloud, missing, missing, hint);
    }
    if (strncmp(out->auth_url, "http://", 7) != 0 && strncmp(out->auth_url, "https://", 8) != 0) {
        swift_creds_free(out);
        return sky_fail(e, EINVAL, "swift '%s': auth_url must start with http:// or https://",
                        cloud);
    }
    if (out->version == 3) {
        if (!out->user_domain && set_dup(&out->user_domain, "Default"))
            rc = -ENOMEM;
        if (!out->project_domain && set_dup(&out->project_domain, out->user_domain))
            rc = -ENOMEM;
        if (rc) {
            swift_creds_free(out);
            return sky_fail(e, ENOMEM, "swift '%s': out of memory", cloud);
        }
    }
    return 0;
}

/* ---- Keystone v3 ----------------------------------------------------------- */

static struct json_object *named_domain(const char *name)
{
    struct json_object *d = json_object_new_object();
    json_object_object_add(d, "name", json_object_new_string(name ? name : "Default"));
    return d;
}

char *swift_v3_request_body(const struct swift_creds *c)
{
    struct json_object *root = json_object_new_object();
    struct json_object *auth = json_object_new_object();
    struct json_object *identity = json_object_new_object();
    struct json_object *methods = json_object_new_array();
    struct json_object *password = json_object_new_object();
    struct json_object *user = json_object_new_object();
    struct json_object *scope = json_object_new_object();
    struct json_object *project = json_object_new_object();
    if (!root || !auth || !identity || !methods || !password || !user || !scope || !project) {
        json_object_put(root);
        json_object_put(auth);
        json_object_put(identity);
        json_object_put(methods);
        json_object_put(password);
        json_object_put(user);
        json_object_put(scope);
        json_object_put(project);
        return NULL;
    }
    json_object_array_add(methods, json_object_new_string("password"));
    json_object_object_add(user, "name", json_object_new_string(c->user ? c->user : ""));
    json_object_object_add(user, "domain", named_domain(c->user_domain));
    json_object_object_add(user, "password", json_object_new_string(c->key ? c->key : ""));
    json_object_object_add(password, "user", user);
    json_object_object_add(identity, "methods", methods);
    json_object_object_add(identity, "password", password);
    json_object_object_add(auth, "identity", identity);
    json_object_object_add(project, "name", json_object_new_string(c->project ? c->project : ""));
    json_object_object_add(project, "domain",
                           named_domain(c->project_domain ? c->project_domain : c->user_domain));
    json_object_object_add(scope, "project", project);
    json_object_object_add(auth, "scope", scope);
    json_object_object_add(root, "auth", auth);
    const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    char *out = s ? strdup(s) : NULL;
    json_object_put(root);
    return out;
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

const char *swift_catalog_select(struct json_object *catalog, const char *region,
                                 const char *interface)
{
    if (!catalog || !json_object_is_type(catalog, json_type_array))
        return NULL;
    if (!interface || !*interface)
        interface = "public";
    if (region && !*region)
        region = NULL;
    size_t n = json_object_array_length(catalog);
    for (size_t i = 0; i < n; i++) {
        struct json_object *svc = json_object_array_get_idx(catalog, i);
        const char *type = jstr(svc, "type");
        struct json_object *eps;
        if (!type || strcmp(type, "object-store") != 0 ||
            !json_object_object_get_ex(svc, "endpoints", &eps) ||
            !json_object_is_type(eps, json_type_array))
            continue;
        size_t m = json_object_array_length(eps);
        for (size_t j = 0; j < m; j++) {
            struct json_object *ep = json_object_array_get_idx(eps, j);
            const char *iface = jstr(ep, "interface");
            const char *url = jstr(ep, "url");
            const char *reg = jstr(ep, "region"), *reg_id = jstr(ep, "region_id");
            if (!url || !iface || strcmp(iface, interface) != 0)
                continue;
            if (region && !(reg && strcmp(reg, region) == 0) &&
                !(reg_id && strcmp(reg_id, region) == 0))
                continue;
            return url;
        }
    }
    return NULL;
}

/* "object-store endpoints: public/RegionOne, internal/RegionOne" for an
 * error message (malloc'd). */
static char *describe_catalog(struct json_object *catalog)
{
    struct sbuf b = { 0 };
    size_t n = catalog && json_object_is_type(catalog, json_type_array)
                   ? json_object_array_length(catalog) : 0;
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        struct json_object *svc = json_object_array_get_idx(catalog, i), *eps;
        const char *type = jstr(svc, "type");
        if (!type || strcmp(type, "object-store") != 0 ||
            !json_object_object_get_ex(svc, "endpoints", &eps) ||
            !json_object_is_type(eps, json_type_array))
            continue;
        for (size_t j = 0; j < json_object_array_length(eps); j++) {
            struct json_object *ep = json_object_array_get_idx(eps, j);
            const char *iface = jstr(ep, "interface"), *reg = jstr(ep, "region");
            if (!reg)
                reg = jstr(ep, "region_id");
            sbuf_add(&b, any ? ", " : "");
            sbuf_add(&b, iface ? iface : "?");
            sbuf_add(&b, "/");
            sbuf_add(&b, reg ? reg : "?");
            any = 1;
        }
    }
    if (!any)
        sbuf_add(&b, "none");
    return sbuf_finish(&b);
}

int swift_v3_parse_token(const char *body, size_t len, const char *region,
                         const char *interface, int want_url, char **storage_url,
                         int64_t *expires, struct sky_err *e)
{
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return sky_fail(e, ENOMEM, "out of memory");
    struct json_object *root = body ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
    json_tokener_free(tok);
    struct json_object *token = NULL, *catalog = NULL;
    if (!root || !json_object_object_get_ex(root, "token", &token) ||
        !json_object_is_type(token, json_type_object)) {
        json_object_put(root);
        return sky_fail(e, EIO, "the Keystone answer is not a v3 token");
    }
    *expires = 0;
    const char *exp = jstr(token, "expires_at");
    int64_t ns;
    if (exp && swift_parse_iso8601(exp, &ns) == 0)
        *expires = ns / 1000000000LL;
    if (!want_url) {
        json_object_put(root);
        return 0;
    }
    json_object_object_get_ex(token, "catalog", &catalog);
    const char *url = swift_catalog_select(catalog, region, interface);
    if (!url) {
        char *have = describe_catalog(catalog);
        sky_fail(e, ENOENT,
                 "the token's service catalog has no object-store endpoint for interface "
                 "%s%s%s (it has: %s); set `region`/`interface`, or `storage_url`",
                 interface && *interface ? interface : "public", region ? " in region " : "",
                 region ? region : "", have ? have : "?");
        free(have);
        json_object_put(root);
        return -ENOENT;
    }
    *storage_url = strdup(url);
    json_object_put(root);
    if (!*storage_url)
        return sky_fail(e, ENOMEM, "out of memory");
    size_t n = strlen(*storage_url);
    while (n > 1 && (*storage_url)[n - 1] == '/')
        (*storage_url)[--n] = '\0';
    return 0;
}

int swift_parse_iso8601(const char *s, int64_t *ns)
{
    struct tm tm = { 0 };
    int y, mo, d, h, mi, sec, used = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
        used == 0)
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    const char *p = s + used;
    int64_t frac = 0, scale = 100000000LL;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        for (; isdigit((unsigned char)*p); p++) {
            frac += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return -EINVAL;
        offset = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    }
    if (*p)
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    int64_t t = (int64_t)timegm(&tm) - offset;
    *ns = t * 1000000000LL + frac;
    return 0;
}

/* ---- the shared token ------------------------------------------------------ */

int swift_auth_new(struct swift_creds *creds, const char *cloud, const struct http_options *opt,
                   struct swift_auth **out, struct sky_err *e)
{
    struct swift_auth *a = calloc(1, sizeof *a);
    if (!a || !(a->cloud = strdup(cloud))) {
        free(a);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", cloud);
    }
    int rc = http_client_new(opt, &a->http, e);
    if (rc < 0) {
        free(a->cloud);
        free(a);
        return rc;
    }
    pthread_mutex_init(&a->lock, NULL);
    a->creds = *creds;
    memset(creds, 0, sizeof *creds);
    if (a->creds.version == 0 && a->creds.token) {
        a->token = strdup(a->creds.token);
        a->storage_url = strdup(a->creds.storage_url);
        if (!a->token || !a->storage_url) {
            swift_auth_free(a);
            return sky_fail(e, ENOMEM, "swift '%s': out of memory", cloud);
        }
    }
    *out = a;
    return 0;
}

void swift_auth_free(struct swift_auth *a)
{
    if (!a)
        return;
    http_client_free(a->http);
    pthread_mutex_destroy(&a->lock);
    swift_creds_free(&a->creds);
    free(a->cloud);
    free(a->token);
    free(a->storage_url);
    free(a);
}

/* An auth answer's status as an error for the cloud. */
static int auth_status_error(struct swift_auth *a, long status, struct sky_err *e)
{
    const char *how = a->creds.version == 3 ? "Keystone v3" : "TempAuth v1";
    if (status == 401 || status == 403)
        return sky_fail(e, EACCES,
                        "swift '%s': %s authentication at %s refused (%ld): check user, key"
                        "%s",
                        a->cloud, how, a->creds.auth_url, status,
                        a->creds.version == 3 ? ", domain and project" : "");
    if (status == 404)
        return sky_fail(e, ENOENT, "swift '%s': no %s service at %s (404): check auth_url",
                        a->cloud, how, a->creds.auth_url);
    return sky_fail(e, EIO, "swift '%s': %s authentication at %s answered %ld", a->cloud, how,
                    a->creds.auth_url, status);
}

/* Lock held.  Gets a new token (and storage URL) into a. */
static int authenticate(struct swift_auth *a, struct sky_err *e)
{
    struct http_request req = { 0 };
    struct http_response resp = { 0 };
    char *body = NULL, *url = NULL;
    int rc;

    req.body_fd = -1;
    if (a->creds.version == 0)
        return sky_fail(e, EACCES,
                        "swift '%s': the token given was refused and there is no auth_url to "
                        "get another",
                        a->cloud);
    if (a->creds.version == 3) {
        body = swift_v3_request_body(&a->creds);
        if (!body || asprintf(&url, "%s/auth/tokens", a->creds.auth_url) < 0) {
            free(body);
            return sky_fail(e, ENOMEM, "swift '%s': out of memory", a->cloud);
        }
        req.method = "POST";
        req.body = body;
        req.body_len = strlen(body);
        rc = http_headers_set(&req.headers, "Content-Type", "application/json");
    } else {
        url = strdup(a->creds.auth_url);
        req.method = "GET";
        rc = url ? 0 : -ENOMEM;
        rc |= http_headers_set(&req.headers, "X-Auth-User", a->creds.user);
        rc |= http_headers_set(&req.headers, "X-Auth-Key", a->creds.key);
    }
    if (rc) {
        free(body);
        free(url);
        http_headers_free(&req.headers);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", a->cloud);
    }
    req.url = url;
    rc = http_do(a->http, &req, &resp, e);
    free(body);
    free(url);
    http_headers_free(&req.headers);
    if (rc < 0) {
        sky_err_prefix(e, "swift '%s': authentication at %s", a->cloud, a->creds.auth_url);
        http_response_free(&resp);
        return rc;
    }
    if (resp.status < 200 || resp.status > 299) {
        rc = auth_status_error(a, resp.status, e);
        http_response_free(&resp);
        return rc;
    }

    const char *token, *expires_hdr;
    char *storage = NULL;
    int64_t expires = 0;
    if (a->creds.version == 3) {
        token = http_headers_get(&resp.headers, "x-subject-token");
        rc = swift_v3_parse_token(resp.body, resp.body_len, a->creds.region, a->creds.interface,
                                  a->creds.storage_url == NULL, &storage, &expires, e);
        if (rc < 0) {
            sky_err_prefix(e, "swift '%s': Keystone v3 at %s", a->cloud, a->creds.auth_url);
            http_response_free(&resp);
            return rc;
        }
    } else {
        token = http_headers_get(&resp.headers, "x-auth-token");
        if (!token)
            token = http_headers_get(&resp.headers, "x-storage-token");
        const char *su = http_headers_get(&resp.headers, "x-storage-url");
        if (!a->creds.storage_url) {
            if (!su || !*su) {
                http_response_free(&resp);
                return sky_fail(e, EIO,
                                "swift '%s': TempAuth at %s gave no X-Storage-Url; set "
                                "`storage_url`",
                                a->cloud, a->creds.auth_url);
            }
            storage = strdup(su);
            if (!storage) {
                http_response_free(&resp);
                return sky_fail(e, ENOMEM, "swift '%s': out of memory", a->cloud);
            }
            size_t n = strlen(storage);
            while (n > 1 && storage[n - 1] == '/')
                storage[--n] = '\0';
        }
        expires_hdr = http_headers_get(&resp.headers, "x-auth-token-expires");
        if (expires_hdr) {
            long long left = atoll(expires_hdr);
            if (left > 0)
                expires = (int64_t)time(NULL) + left;
        }
    }
    if (!token || !*token) {
        free(storage);
        http_response_free(&resp);
        return sky_fail(e, EIO, "swift '%s': the answer of %s carries no token", a->cloud,
                        a->creds.auth_url);
    }
    char *tok = strdup(token);
    if (!storage && a->creds.storage_url)
        storage = strdup(a->creds.storage_url);
    http_response_free(&resp);
    if (!tok || !storage) {
        free(tok);
        free(storage);
        return sky_fail(e, ENOMEM, "swift '%s': out of memory", a->cloud);
    }
    free(a->token);
    free(a->storage_url);
    a->token = tok;
    a->storage_url = storage;
    a->expires = expires;
    a->generation++;
    return 0;
}

/* Lock held.  Is the current token usable? */
static int token_valid(const struct swift_auth *a)
{
    if (!a->token)
        return 0;
    if (a->expires && (int64_t)time(NULL) + SWIFT_TOKEN_MARGIN_S >= a->expires)
        return 0;
    return 1;
}

int swift_auth_storage_url(struct swift_auth *a, char **url, struct sky_err *e)
{
    int rc = 0;
    pthread_mutex_lock(&a->lock);
    if (!token_valid(a))
        rc = authenticate(a, e);
    if (rc == 0) {
        *url = strdup(a->storage_url);
        if (!*url)
            rc = sky_fail(e, ENOMEM, "swift '%s': out of memory", a->cloud);
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int swift_auth_sign(void *arg, struct http_request *req, struct sky_err *e)
{
    struct swift_auth *a = arg;
    int rc = 0;
    pthread_mutex_lock(&a->lock);
    if (!token_valid(a))
        rc = authenticate(a, e);
    if (rc == 0 && http_headers_set(&req->headers, "X-Auth-Token", a->token) < 0)
        rc = sky_fail(e, ENOMEM, "swift '%s': out of memory", a->cloud);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void swift_auth_renew(struct swift_auth *a, const char *token)
{
    pthread_mutex_lock(&a->lock);
    if (a->token && token && strcmp(a->token, token) == 0 && a->creds.version != 0) {
        free(a->token);
        a->token = NULL;
    }
    pthread_mutex_unlock(&a->lock);
}
