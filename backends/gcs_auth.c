/* gcs_auth.c - Google Cloud Storage credentials; see gcs_auth.h. */
#include "gcs_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sigv4.h"

/* Key files are small; a bigger one is not a key file. */
#define GCS_KEY_MAX_BYTES (64 * 1024)

void gcs_key_free(struct gcs_key *k)
{
    if (!k)
        return;
    free(k->token_uri);
    free(k->client_email);
    if (k->private_key) {
        OPENSSL_cleanse(k->private_key, strlen(k->private_key));
        free(k->private_key);
    }
    free(k->private_key_id);
    free(k->client_id);
    if (k->client_secret) {
        OPENSSL_cleanse(k->client_secret, strlen(k->client_secret));
        free(k->client_secret);
    }
    if (k->refresh_token) {
        OPENSSL_cleanse(k->refresh_token, strlen(k->refresh_token));
        free(k->refresh_token);
    }
    memset(k, 0, sizeof *k);
}

/* A string member of obj copied into *out; a missing member leaves NULL.
 * -EINVAL when present but not a string. */
static int get_string(json_object *obj, const char *name, char **out, const char *where,
                      struct sky_err *e)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(obj, name, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return sky_fail(e, EINVAL, "%s: \"%s\" must be a string", where, name);
    *out = strdup(json_object_get_string(v));
    return *out ? 0 : sky_fail(e, ENOMEM, "%s: out of memory", where);
}

static int need(const char *value, const char *name, const char *type, const char *where,
                struct sky_err *e)
{
    if (value && *value)
        return 0;
    return sky_fail(e, EINVAL, "%s: a key of type %s needs \"%s\"; download the key again "
                    "(gcloud or the Cloud console)", where, type, name);
}

int gcs_key_parse(const char *json, const char *where, struct gcs_key *out, struct sky_err *e)
{
    memset(out, 0, sizeof *out);
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return sky_fail(e, ENOMEM, "%s: out of memory", where);
    json_object *root = json_tokener_parse_ex(tok, json, (int)strlen(json));
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        json_object_put(root);
        return sky_fail(e, EINVAL, "%s: not a JSON key file (%s); give the service-account "
                        "key or gcloud's application_default_credentials.json", where,
                        jerr != json_tokener_success ? json_tokener_error_desc(jerr)
                                                     : "empty");
    }
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return sky_fail(e, EINVAL, "%s: not a JSON key file (not an object)", where);
    }
    char *type = NULL;
    int rc = get_string(root, "type", &type, where, e);
    if (rc == 0 && !type)
        rc = sky_fail(e, EINVAL, "%s: no \"type\"; expected \"service_account\" or "
                      "\"authorized_user\"", where);
    if (rc == 0 && strcmp(type, "service_account") == 0) {
        out->type = GCS_KEY_SERVICE_ACCOUNT;
        if ((rc = get_string(root, "client_email", &out->client_email, where, e)) == 0 &&
            (rc = get_string(root, "private_key", &out->private_key, where, e)) == 0 &&
            (rc = get_string(root, "private_key_id", &out->private_key_id, where, e)) == 0 &&
            (rc = get_string(root, "token_uri", &out->token_uri, where, e)) == 0 &&
            (rc = need(out->client_email, "client_email", type, where, e)) == 0)
            rc = need(out->private_key, "private_key", type, where, e);
    } else if (rc == 0 && strcmp(type, "authorized_user") == 0) {
        out->type = GCS_KEY_AUTHORIZED_USER;
        if ((rc = get_string(root, "client_id", &out->client_id, where, e)) == 0 &&
            (rc = get_string(root, "client_secret", &out->client_secret, where, e)) == 0 &&
            (rc = get_string(root, "refresh_token", &out->refresh_token, where, e)) == 0 &&
            (rc = get_string(root, "token_uri", &out->token_uri, where, e)) == 0 &&
            (rc = need(out->client_id, "client_id", type, where, e)) == 0 &&
            (rc = need(out->client_secret, "client_secret", type, where, e)) == 0)
            rc = need(out->refresh_token, "refresh_token", type, where, e);
    } else if (rc == 0) {
        rc = sky_fail(e, EINVAL, "%s: key type \"%.40s\" is not supported; use a "
                      "service_account key or authorized_user credentials", where, type);
    }
    if (rc == 0 && !out->token_uri && !(out->token_uri = strdup(GCS_DEFAULT_TOKEN_URI)))
        rc = sky_fail(e, ENOMEM, "%s: out of memory", where);
    free(type);
    json_object_put(root);
    if (rc < 0)
        gcs_key_free(out);
    return rc;
}

int gcs_key_load(const char *path, struct gcs_key *out, struct sky_err *e)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP)
        fd = open(path, O_RDONLY | O_CLOEXEC);     /* a symlink to a key is fine */
    if (fd < 0)
        return sky_fail(e, errno, "key file %s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sky_fail(e, EINVAL, "key file %s: not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return sky_fail(e, EPERM, "key file %s: holds secrets but is readable by others "
                        "(mode %04o); run: chmod 600 %s", path,
                        (unsigned)(st.st_mode & 07777), path);
    }
    if (st.st_size > GCS_KEY_MAX_BYTES) {
        close(fd);
        return sky_fail(e, EINVAL, "key file %s: too big for a key file (%lld bytes)", path,
                        (long long)st.st_size);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return sky_fail(e, ENOMEM, "key file %s: out of memory", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    int rc = gcs_key_parse(buf, path, out, e);
    OPENSSL_cleanse(buf, got);
    free(buf);
    return rc;
}

char *gcs_base64url(const unsigned char *data, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        return NULL;
    int len = EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

static char *b64url_json(json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
    return s ? gcs_base64url((const unsigned char *)s, strlen(s)) : NULL;
}

int gcs_jwt_make(const struct gcs_key *k, const char *scope, int64_t now, char **jwt,
                 struct sky_err *e)
{
    *jwt = NULL;
    if (k->type != GCS_KEY_SERVICE_ACCOUNT || !k->private_key)
        return sky_fail(e, EINVAL, "only a service-account key signs a JWT");
    json_object *hdr = json_object_new_object(), *cl = json_object_new_object();
    char *h64 = NULL, *c64 = NULL, *input = NULL, *s64 = NULL;
    unsigned char *sig = NULL;
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *md = NULL;
    int rc = -ENOMEM;
    if (!hdr || !cl)
        goto out;
    json_object_object_add(hdr, "alg", json_object_new_string("RS256"));
    json_object_object_add(hdr, "typ", json_object_new_string("JWT"));
    if (k->private_key_id && *k->private_key_id)
        json_object_object_add(hdr, "kid", json_object_new_string(k->private_key_id));
    json_object_object_add(cl, "iss", json_object_new_string(k->client_email));
    json_object_object_add(cl, "scope", json_object_new_string(scope));
    json_object_object_add(cl, "aud", json_object_new_string(k->token_uri));
    json_object_object_add(cl, "iat", json_object_new_int64(now));
    json_object_object_add(cl, "exp", json_object_new_int64(now + GCS_JWT_LIFETIME));
    if (!(h64 = b64url_json(hdr)) || !(c64 = b64url_json(cl)))
        goto out;
    if (asprintf(&input, "%s.%s", h64, c64) < 0) {
        input = NULL;
        goto out;
    }
    BIO *bio = BIO_new_mem_buf(k->private_key, -1);
    if (bio) {
        pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    if (!pkey || EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA) {
        rc = sky_fail(e, EINVAL, "the key's \"private_key\" is not an RSA private key in "
                      "PEM form; download the service-account key again");
        goto out;
    }
    size_t siglen = 0;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) != 1 ||
        !(sig = malloc(siglen)) ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
        rc = sky_fail(e, EIO, "signing the service account's JWT failed (OpenSSL)");
        goto out;
    }
    if (!(s64 = gcs_base64url(sig, siglen)))
        goto out;
    if (asprintf(jwt, "%s.%s", input, s64) < 0) {
        *jwt = NULL;
        goto out;
    }
    rc = 0;
out:
    if (rc == -ENOMEM)
        sky_fail(e, ENOMEM, "building the service account's JWT: out of memory");
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    json_object_put(hdr);
    json_object_put(cl);
    free(h64);
    free(c64);
    free(input);
    free(sig);
    free(s64);
    return rc;
}

int gcs_token_parse(const char *body, long status, char **token, int64_t *expires_in,
                    struct sky_err *e)
{
    *token = NULL;
    *expires_in = 0;
    json_object *root = body ? json_tokener_parse(body) : NULL;
    if (!root || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return sky_fail(e, status >= 200 && status < 300 ? EIO : EACCES,
                        "token endpoint answered %ld without a JSON object", status);
    }
    json_object *v;
    const char *err = NULL, *desc = NULL;
    if (json_object_object_get_ex(root, "error", &v) && json_object_is_type(v, json_type_string))
        err = json_object_get_string(v);
    if (json_object_object_get_ex(root, "error_description", &v) &&
        json_object_is_type(v, json_type_string))
        desc = json_object_get_string(v);
    int rc = 0;
    if (err || status < 200 || status >= 300) {
        rc = sky_fail(e, EACCES, "token endpoint refused (%ld %.60s%s%.200s)", status,
                      err ? err : "error", desc ? ": " : "", desc ? desc : "");
    } else if (!json_object_object_get_ex(root, "access_token", &v) ||
               !json_object_is_type(v, json_type_string) ||
               !*json_object_get_string(v)) {
        rc = sky_fail(e, EIO, "token endpoint answered without an access_token");
    } else {
        *token = strdup(json_object_get_string(v));
        if (!*token)
            rc = sky_fail(e, ENOMEM, "token answer: out of memory");
        json_object *ex;
        if (rc == 0 && json_object_object_get_ex(root, "expires_in", &ex) &&
            (json_object_is_type(ex, json_type_int) || json_object_is_type(ex, json_type_string)))
            *expires_in = json_object_get_int64(ex);
        if (rc == 0 && *expires_in <= 0)
            *expires_in = GCS_JWT_LIFETIME;    /* Google's tokens live an hour */
        const char *ttype = NULL;
        if (rc == 0 && json_object_object_get_ex(root, "token_type", &ex) &&
            json_object_is_type(ex, json_type_string))
            ttype = json_object_get_string(ex);
        if (rc == 0 && ttype && strcasecmp(ttype, "Bearer") != 0) {
            rc = sky_fail(e, EIO, "token endpoint gave a token of type \"%.40s\", not Bearer",
                          ttype);
        }
        if (rc < 0 && *token) {
            OPENSSL_cleanse(*token, strlen(*token));
            free(*token);
            *token = NULL;
        }
    }
    json_object_put(root);
    return rc;
}

int64_t gcs_token_renew_after(int64_t obtained, int64_t expires_in)
{
    if (expires_in >= 20 * 60)
        return obtained + expires_in - 5 * 60;
    return obtained + expires_in * 3 / 4;
}

enum gcs_token_state gcs_token_state_at(int64_t now, int64_t renew_after, int64_t expires_at,
                                        bool have_token)
{
    if (!have_token || now >= expires_at)
        return GCS_TOKEN_EXPIRED;
    return now >= renew_after ? GCS_TOKEN_RENEW : GCS_TOKEN_FRESH;
}

/* ---- the per-cloud state ---------------------------------------------- */

struct gcs_auth {
    enum gcs_auth_kind kind;
    char *cloud;
    /* HMAC */
    struct sigv4_creds creds;
    char *access_key, *secret_key, *region;
    /* tokens */
    struct gcs_key key;
    char *key_path;             /* for messages */
    const char *scope;
    struct http_client *http;   /* the token endpoint's own client */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *token;                /* current access token or NULL */
    int64_t renew_after, expires_at;
    bool renewing;
    unsigned fetch_gen;         /* fetches finished (under mu) */
    int fetch_rc;               /* how the last one ended */
    struct sky_err fetch_err;   /* and its message, when it failed */
    atomic_uint fetches;
};

enum gcs_auth_kind gcs_auth_kind(const struct gcs_auth *a)
{
    return a->kind;
}

bool gcs_auth_is_hmac(const struct gcs_auth *a)
{
    return a->kind == GCS_AUTH_HMAC;
}

unsigned gcs_auth_fetches(const struct gcs_auth *a)
{
    return atomic_load(&((struct gcs_auth *)a)->fetches);
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void gcs_auth_free(struct gcs_auth *a)
{
    if (!a)
        return;
    free(a->cloud);
    free(a->access_key);
    free_secret(a->secret_key);
    free(a->region);
    gcs_key_free(&a->key);
    free(a->key_path);
    free_secret(a->token);
    if (a->http)
        http_client_free(a->http);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}

/* gcloud's application-default credentials, when the file exists. */
static char *adc_path(void)
{
    const char *home = getenv("HOME");
    const char *cfgdir = getenv("CLOUDSDK_CONFIG");
    char *p = NULL;
    if (cfgdir && *cfgdir) {
        if (asprintf(&p, "%s/application_default_credentials.json", cfgdir) < 0)
            return NULL;
    } else if (home && *home) {
        if (asprintf(&p, "%s/.config/gcloud/application_default_credentials.json", home) < 0)
            return NULL;
    } else {
        return NULL;
    }
    if (access(p, F_OK) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

int gcs_auth_new(const struct gcs_auth_config *cfg, const struct http_options *opt,
                 struct gcs_auth **out, struct sky_err *e)
{
    *out = NULL;
    const char *cloud = cfg->cloud ? cfg->cloud : "gcs";
    struct gcs_auth *a = calloc(1, sizeof *a);
    if (!a)
        return sky_fail(e, ENOMEM, "gcs '%s': out of memory", cloud);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->cloud = strdup(cloud);
    a->scope = cfg->read_only ? GCS_SCOPE_READ_ONLY : GCS_SCOPE_READ_WRITE;
    int rc = 0;
    bool has_id = cfg->access_key_id && *cfg->access_key_id;
    bool has_secret = cfg->secret_access_key && *cfg->secret_access_key;
    if (has_id != has_secret) {
        rc = sky_fail(e, EINVAL, "gcs '%s': HMAC keys need both access_key_id and "
                      "secret_access_key", cloud);
    } else if (has_id && (cfg->credentials_file || cfg->anonymous)) {
        rc = sky_fail(e, EINVAL, "gcs '%s': give either HMAC keys, credentials_file or "
                      "anonymous, not several", cloud);
    } else if (has_id) {
        a->kind = GCS_AUTH_HMAC;
        a->access_key = strdup(cfg->access_key_id);
        a->secret_key = strdup(cfg->secret_access_key);
        a->region = strdup(cfg->region && *cfg->region ? cfg->region : "auto");
        if (!a->access_key || !a->secret_key || !a->region)
            rc = sky_fail(e, ENOMEM, "gcs '%s': out of memory", cloud);
        a->creds.access_key = a->access_key;
        a->creds.secret_key = a->secret_key;
        a->creds.session_token = NULL;
    } else if (cfg->anonymous && cfg->credentials_file) {
        rc = sky_fail(e, EINVAL, "gcs '%s': give either credentials_file or anonymous, "
                      "not both", cloud);
    } else if (cfg->anonymous) {
        a->kind = GCS_AUTH_ANONYMOUS;
    } else {
        const char *env = getenv("GOOGLE_APPLICATION_CREDENTIALS");
        if (cfg->credentials_file && *cfg->credentials_file)
            a->key_path = strdup(cfg->credentials_file);
        else if (env && *env)
            a->key_path = strdup(env);
        else
            a->key_path = adc_path();
        if (!a->key_path) {
            rc = sky_fail(e, EINVAL, "gcs '%s': no credentials; set access_key_id and "
                          "secret_access_key (HMAC), credentials_file (a service-account key "
                          "or gcloud's application_default_credentials.json), "
                          "GOOGLE_APPLICATION_CREDENTIALS, or anonymous = yes for a public "
                          "bucket", cloud);
        } else if ((rc = gcs_key_load(a->key_path, &a->key, e)) < 0) {
            sky_err_prefix(e, "gcs '%s'", cloud);
        } else {
            a->kind = a->key.type == GCS_KEY_SERVICE_ACCOUNT ? GCS_AUTH_SERVICE_ACCOUNT
                                                             : GCS_AUTH_AUTHORIZED_USER;
            if (cfg->token_uri && *cfg->token_uri) {
                free(a->key.token_uri);
                a->key.token_uri = strdup(cfg->token_uri);
            }
            if (!a->key.token_uri)
                rc = sky_fail(e, ENOMEM, "gcs '%s': out of memory", cloud);
            if (rc == 0 && strncmp(a->key.token_uri, "https://", 8) != 0 &&
                strncmp(a->key.token_uri, "http://127.0.0.1", 16) != 0 &&
                strncmp(a->key.token_uri, "http://localhost", 16) != 0)
                rc = sky_fail(e, EINVAL, "gcs '%s': token_uri must be an https:// URL (plain "
                              "http only to this machine)", cloud);
            if (rc == 0 && a->kind == GCS_AUTH_SERVICE_ACCOUNT) {
                /* Sign once now so a bad private key is reported at mount. */
                char *jwt = NULL;
                rc = gcs_jwt_make(&a->key, a->scope, (int64_t)time(NULL), &jwt, e);
                if (rc < 0)
                    sky_err_prefix(e, "gcs '%s': key file %s", cloud, a->key_path);
                free(jwt);
            }
            if (rc == 0)
                rc = http_client_new(opt, &a->http, e);
        }
    }
    if (rc == 0 && !a->cloud)
        rc = sky_fail(e, ENOMEM, "gcs '%s': out of memory", cloud);
    if (rc < 0) {
        gcs_auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* x-www-form-urlencoded "name=value" pairs; NULL on ENOMEM. */
static char *form_body(const char *const *pairs)
{
    char *body = strdup("");
    for (size_t i = 0; body && pairs[i]; i += 2) {
        char *v = http_uri_encode(pairs[i + 1], 0);
        char *next = NULL;
        if (v && asprintf(&next, "%s%s%s=%s", body, *body ? "&" : "", pairs[i], v) < 0)
            next = NULL;
        if (v) {
            OPENSSL_cleanse(v, strlen(v));
            free(v);
        }
        OPENSSL_cleanse(body, strlen(body));
        free(body);
        body = next;
    }
    return body;
}

/* One exchange at token_uri; fills *token and *expires_in. */
static int fetch_token(struct gcs_auth *a, char **token, int64_t *expires_in, struct sky_err *e)
{
    char *body = NULL, *jwt = NULL;
    int rc = 0;
    if (a->kind == GCS_AUTH_SERVICE_ACCOUNT) {
        rc = gcs_jwt_make(&a->key, a->scope, (int64_t)time(NULL), &jwt, e);
        if (rc == 0) {
            const char *pairs[] = { "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                    "assertion", jwt, NULL };
            body = form_body(pairs);
        }
    } else {
        const char *pairs[] = { "grant_type", "refresh_token",
                                "client_id", a->key.client_id,
                                "client_secret", a->key.client_secret,
                                "refresh_token", a->key.refresh_token, NULL };
        body = form_body(pairs);
    }
    free_secret(jwt);
    if (rc < 0)
        return rc;
    if (!body)
        return sky_fail(e, ENOMEM, "token request: out of memory");
    struct http_request req = { 0 };
    struct http_response resp = { 0 };
    req.method = "POST";
    req.url = a->key.token_uri;
    req.body = body;
    req.body_len = strlen(body);
    req.body_fd = -1;
    rc = http_headers_set(&req.headers, "Content-Type", "application/x-www-form-urlencoded");
    if (rc == 0)
        rc = http_headers_set(&req.headers, "Accept", "application/json");
    if (rc < 0)
        sky_fail(e, ENOMEM, "token request: out of memory");
    else
        rc = http_do(a->http, &req, &resp, e);
    if (rc == 0)
        rc = gcs_token_parse(resp.body, resp.status, token, expires_in, e);
    atomic_fetch_add(&a->fetches, 1);
    if (rc < 0)
        sky_err_prefix(e, "gcs '%s': getting an access token from %s", a->cloud,
                       a->key.token_uri);
    http_headers_free(&req.headers);
    http_response_free(&resp);
    free_secret(body);
    return rc;
}

int gcs_auth_token(struct gcs_auth *a, char **token, struct sky_err *e)
{
    *token = NULL;
    if (a->kind != GCS_AUTH_SERVICE_ACCOUNT && a->kind != GCS_AUTH_AUTHORIZED_USER)
        return sky_fail(e, EINVAL, "gcs '%s': this cloud uses no access token", a->cloud);
    pthread_mutex_lock(&a->mu);
    for (;;) {
        int64_t now = (int64_t)time(NULL);
        enum gcs_token_state st = gcs_token_state_at(now, a->renew_after, a->expires_at,
                                                     a->token != NULL);
        if (st == GCS_TOKEN_FRESH || (st == GCS_TOKEN_RENEW && a->renewing))
            break;                              /* use what we have */
        if (st == GCS_TOKEN_EXPIRED && a->renewing) {
            /* Another thread fetches: wait for it, and share its failure
             * rather than asking a failing endpoint once per waiter. */
            unsigned gen = a->fetch_gen;
            while (a->renewing && a->fetch_gen == gen)
                pthread_cond_wait(&a->cv, &a->mu);
            if (a->fetch_gen != gen && a->fetch_rc < 0 &&
                !(a->token && (int64_t)time(NULL) < a->expires_at)) {
                int rc = a->fetch_rc;
                if (e)
                    *e = a->fetch_err;
                pthread_mutex_unlock(&a->mu);
                return rc;
            }
            continue;
        }
        /* This thread fetches (the token is renewing-due or expired). */
        a->renewing = true;
        pthread_mutex_unlock(&a->mu);
        char *fresh = NULL;
        int64_t expires_in = 0;
        struct sky_err ferr = { 0 };
        int64_t asked = (int64_t)time(NULL);
        int rc = fetch_token(a, &fresh, &expires_in, &ferr);
        pthread_mutex_lock(&a->mu);
        a->renewing = false;
        a->fetch_gen++;
        a->fetch_rc = rc;
        a->fetch_err = ferr;
        pthread_cond_broadcast(&a->cv);
        if (rc == 0) {
            free_secret(a->token);
            a->token = fresh;
            a->expires_at = asked + expires_in;
            a->renew_after = gcs_token_renew_after(asked, expires_in);
            break;
        }
        /* A failed renewal keeps a still-valid token; it is tried again by
         * the next request. */
        if (a->token && (int64_t)time(NULL) < a->expires_at)
            break;
        pthread_mutex_unlock(&a->mu);
        if (e)
            *e = ferr;
        return rc;
    }
    *token = strdup(a->token);
    pthread_mutex_unlock(&a->mu);
    return *token ? 0 : sky_fail(e, ENOMEM, "gcs '%s': out of memory", a->cloud);
}

int gcs_auth_sign(void *arg, struct http_request *req, struct sky_err *e)
{
    struct gcs_auth *a = arg;
    switch (a->kind) {
    case GCS_AUTH_HMAC: {
        struct sigv4_http_signer signer = { &a->creds, { a->region, "s3" }, NULL };
        return sigv4_sign_http(&signer, req, e);
    }
    case GCS_AUTH_SERVICE_ACCOUNT:
    case GCS_AUTH_AUTHORIZED_USER: {
        char *token = NULL, *value = NULL;
        int rc = gcs_auth_token(a, &token, e);
        if (rc < 0)
            return rc;
        if (asprintf(&value, "Bearer %s", token) < 0)
            value = NULL;
        free_secret(token);
        if (!value)
            return sky_fail(e, ENOMEM, "gcs '%s': out of memory", a->cloud);
        rc = http_headers_set(&req->headers, "Authorization", value);
        free_secret(value);
        return rc < 0 ? sky_fail(e, ENOMEM, "gcs '%s': out of memory", a->cloud) : 0;
    }
    case GCS_AUTH_ANONYMOUS:
    default:
        return 0;
    }
}
