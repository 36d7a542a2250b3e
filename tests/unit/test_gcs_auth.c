/*
 * test_gcs_auth.c - GCS credentials: key files, the service account's JWT
 * (its RS256 signature verified with OpenSSL against the public key),
 * token answers, the renewal rule.
 */
#include "check.h"

#include <errno.h>
#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../../backends/gcs_auth.h"

/* A fresh 2048-bit RSA key: its private PEM (malloc'd) and the key. */
static EVP_PKEY *new_rsa(char **pem)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    *pem = strndup(data, (size_t)n);
    BIO_free(b);
    return k;
}

static char *sa_json(const char *pem, const char *token_uri)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("service_account"));
    json_object_object_add(o, "project_id", json_object_new_string("p"));
    json_object_object_add(o, "private_key_id", json_object_new_string("kid-123"));
    json_object_object_add(o, "private_key", json_object_new_string(pem));
    json_object_object_add(o, "client_email",
                           json_object_new_string("sa@p.iam.gserviceaccount.com"));
    if (token_uri)
        json_object_object_add(o, "token_uri", json_object_new_string(token_uri));
    char *s = strdup(json_object_to_json_string(o));
    json_object_put(o);
    return s;
}

/* base64url decode (no padding) into a malloc'd buffer. */
static unsigned char *b64url_decode(const char *s, size_t len, size_t *out_len)
{
    size_t padded = (len + 3) / 4 * 4;
    char *t = calloc(1, padded + 1);
    for (size_t i = 0; i < len; i++)
        t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    for (size_t i = len; i < padded; i++)
        t[i] = '=';
    unsigned char *out = malloc(padded);
    int n = EVP_DecodeBlock(out, (unsigned char *)t, (int)padded);
    free(t);
    if (n < 0) {
        free(out);
        return NULL;
    }
    size_t pad = padded - len;
    *out_len = (size_t)n - pad;
    return out;
}

static json_object *part_json(const char *s, size_t len)
{
    size_t n;
    unsigned char *raw = b64url_decode(s, len, &n);
    if (!raw)
        return NULL;
    char *z = strndup((char *)raw, n);
    json_object *o = json_tokener_parse(z);
    free(z);
    free(raw);
    return o;
}

static const char *jstr(json_object *o, const char *name)
{
    json_object *v;
    return json_object_object_get_ex(o, name, &v) ? json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *name)
{
    json_object *v;
    return json_object_object_get_ex(o, name, &v) ? json_object_get_int64(v) : -1;
}

TEST(gcs_jwt_signature_verifies_with_the_public_key)
{
    char *pem;
    EVP_PKEY *k = new_rsa(&pem);
    char *json = sa_json(pem, "http://127.0.0.1:9/token");
    struct gcs_key key;
    struct sky_err e;
    CHECK_INT(gcs_key_parse(json, "key.json", &key, &e), 0);
    char *jwt = NULL;
    CHECK_INT(gcs_jwt_make(&key, GCS_SCOPE_READ_WRITE, 1700000000, &jwt, &e), 0);
    CHECK(jwt != NULL);
    const char *d1 = strchr(jwt, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    CHECK(d1 && d2 && !strchr(d2 + 1, '.'));
    if (d1 && d2) {
        json_object *h = part_json(jwt, (size_t)(d1 - jwt));
        json_object *c = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
        CHECK_STR(jstr(h, "alg"), "RS256");
        CHECK_STR(jstr(h, "typ"), "JWT");
        CHECK_STR(jstr(h, "kid"), "kid-123");
        CHECK_STR(jstr(c, "iss"), "sa@p.iam.gserviceaccount.com");
        CHECK_STR(jstr(c, "aud"), "http://127.0.0.1:9/token");
        CHECK_STR(jstr(c, "scope"), GCS_SCOPE_READ_WRITE);
        CHECK_INT(jint(c, "iat"), 1700000000);
        CHECK_INT(jint(c, "exp"), 1700000000 + 3600);
        json_object_put(h);
        json_object_put(c);

        /* The signature over "header.claims", checked by OpenSSL with the
         * public half only. */
        size_t siglen = 0;
        unsigned char *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &siglen);
        CHECK(sig != NULL);
        CHECK_INT(siglen, 256);
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(b, k);
        EVP_PKEY *pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        BIO_free(b);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        CHECK_INT(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
        CHECK_INT(EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt,
                                   (size_t)(d2 - jwt)), 1);
        /* and a changed claim does not verify */
        char *bad = strdup(jwt);
        bad[d1 - jwt + 3] ^= 1;
        EVP_MD_CTX_reset(md);
        CHECK_INT(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
        CHECK(EVP_DigestVerify(md, sig, siglen, (const unsigned char *)bad,
                               (size_t)(d2 - jwt)) != 1);
        free(bad);
        EVP_MD_CTX_free(md);
        EVP_PKEY_free(pub);
        free(sig);
    }
    free(jwt);
    gcs_key_free(&key);
    free(json);
    free(pem);
    EVP_PKEY_free(k);
}

TEST(gcs_key_parse_defaults_and_errors_name_fields_not_values)
{
    struct gcs_key key;
    struct sky_err e;
    CHECK_INT(gcs_key_parse("{\"type\":\"authorized_user\",\"client_id\":\"cid\","
                            "\"client_secret\":\"topsecret\",\"refresh_token\":\"rt\"}",
                            "adc.json", &key, &e), 0);
    CHECK_INT(key.type, GCS_KEY_AUTHORIZED_USER);
    CHECK_STR(key.token_uri, GCS_DEFAULT_TOKEN_URI);
    CHECK_STR(key.refresh_token, "rt");
    gcs_key_free(&key);

    CHECK_INT(gcs_key_parse("{\"type\":\"authorized_user\",\"client_id\":\"cid\","
                            "\"client_secret\":\"topsecret\"}", "adc.json", &key, &e), -EINVAL);
    CHECK(strstr(e.msg, "refresh_token") && strstr(e.msg, "adc.json"));
    CHECK(!strstr(e.msg, "topsecret"));

    CHECK_INT(gcs_key_parse("{\"type\":\"external_account\"}", "x.json", &key, &e), -EINVAL);
    CHECK(strstr(e.msg, "external_account") != NULL);
    CHECK_INT(gcs_key_parse("not json", "x.json", &key, &e), -EINVAL);
    CHECK(strstr(e.msg, "x.json") != NULL);
    CHECK_INT(gcs_key_parse("{\"type\":\"service_account\",\"client_email\":\"a@b\","
                            "\"private_key\":42}", "k.json", &key, &e), -EINVAL);
    CHECK(strstr(e.msg, "private_key") != NULL);

    /* A private key that is no PEM is caught when signing. */
    CHECK_INT(gcs_key_parse("{\"type\":\"service_account\",\"client_email\":\"a@b\","
                            "\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n\"}",
                            "k.json", &key, &e), 0);
    char *jwt = NULL;
    CHECK_INT(gcs_jwt_make(&key, GCS_SCOPE_READ_ONLY, 1, &jwt, &e), -EINVAL);
    CHECK(jwt == NULL);
    CHECK(strstr(e.msg, "private_key") != NULL);
    gcs_key_free(&key);
}

TEST(gcs_key_load_refuses_a_key_readable_by_others)
{
    char *dir = unit_tmpdir();
    char *pem;
    EVP_PKEY *k = new_rsa(&pem);
    char *json = sa_json(pem, NULL);
    char *open_path = unit_write_file(dir, "open.json", json, 0644);
    char *ok_path = unit_write_file(dir, "ok.json", json, 0600);
    struct gcs_key key;
    struct sky_err e;
    CHECK_INT(gcs_key_load(open_path, &key, &e), -EPERM);
    CHECK(strstr(e.msg, "chmod 600") && strstr(e.msg, "0644") && strstr(e.msg, open_path));
    CHECK(!strstr(e.msg, "PRIVATE KEY"));
    CHECK_INT(gcs_key_load(ok_path, &key, &e), 0);
    CHECK_INT(key.type, GCS_KEY_SERVICE_ACCOUNT);
    CHECK_STR(key.token_uri, GCS_DEFAULT_TOKEN_URI);
    gcs_key_free(&key);
    char *missing;
    if (asprintf(&missing, "%s/none.json", dir) > 0) {
        CHECK_INT(gcs_key_load(missing, &key, &e), -ENOENT);
        free(missing);
    }
    free(open_path);
    free(ok_path);
    free(json);
    free(pem);
    EVP_PKEY_free(k);
    unit_rmtree(dir);
    free(dir);
}

TEST(gcs_token_answers)
{
    char *tok = NULL;
    int64_t ttl = 0;
    struct sky_err e;
    CHECK_INT(gcs_token_parse("{\"access_token\":\"ya29.abc\",\"expires_in\":3599,"
                              "\"token_type\":\"Bearer\"}", 200, &tok, &ttl, &e), 0);
    CHECK_STR(tok, "ya29.abc");
    CHECK_INT(ttl, 3599);
    free(tok);
    /* no expires_in: an hour */
    CHECK_INT(gcs_token_parse("{\"access_token\":\"t\"}", 200, &tok, &ttl, &e), 0);
    CHECK_INT(ttl, 3600);
    free(tok);
    CHECK_INT(gcs_token_parse("{\"error\":\"invalid_grant\",\"error_description\":"
                              "\"Invalid JWT Signature.\"}", 400, &tok, &ttl, &e), -EACCES);
    CHECK(tok == NULL);
    CHECK(strstr(e.msg, "invalid_grant") && strstr(e.msg, "Invalid JWT Signature."));
    CHECK_INT(gcs_token_parse("<html>", 502, &tok, &ttl, &e), -EACCES);
    CHECK_INT(gcs_token_parse("{\"expires_in\":5}", 200, &tok, &ttl, &e), -EIO);
    CHECK_INT(gcs_token_parse("{\"access_token\":\"t\",\"token_type\":\"MAC\"}", 200, &tok,
                              &ttl, &e), -EIO);
    CHECK(tok == NULL);
    CHECK(!strstr(e.msg, "\"t\""));
    CHECK_INT(gcs_token_parse(NULL, 200, &tok, &ttl, &e), -EIO);
}

TEST(gcs_token_renewal_rule)
{
    /* an hour's token: renewed 5 minutes before it ends */
    CHECK_INT(gcs_token_renew_after(1000, 3600), 1000 + 3300);
    /* a short one: after three quarters of its life */
    CHECK_INT(gcs_token_renew_after(1000, 8), 1006);
    CHECK_INT(gcs_token_state_at(1000, 1006, 1008, true), GCS_TOKEN_FRESH);
    CHECK_INT(gcs_token_state_at(1005, 1006, 1008, true), GCS_TOKEN_FRESH);
    CHECK_INT(gcs_token_state_at(1006, 1006, 1008, true), GCS_TOKEN_RENEW);
    CHECK_INT(gcs_token_state_at(1007, 1006, 1008, true), GCS_TOKEN_RENEW);
    CHECK_INT(gcs_token_state_at(1008, 1006, 1008, true), GCS_TOKEN_EXPIRED);
    CHECK_INT(gcs_token_state_at(0, 1006, 1008, false), GCS_TOKEN_EXPIRED);
}

TEST(gcs_base64url_has_no_padding_or_plus_slash)
{
    const unsigned char in[] = { 0xfb, 0xff, 0xbf };
    char *s = gcs_base64url(in, 3);
    CHECK_STR(s, "-_-_");
    free(s);
    s = gcs_base64url((const unsigned char *)"a", 1);
    CHECK_STR(s, "YQ");
    free(s);
}

TEST(gcs_auth_picks_the_way_in)
{
    struct gcs_auth *a = NULL;
    struct sky_err e;
    struct http_options opt = { 0 };
    struct gcs_auth_config c = { .cloud = "g", .access_key_id = "GOOG1X",
                                 .secret_access_key = "s3cr3t" };
    CHECK_INT(gcs_auth_new(&c, &opt, &a, &e), 0);
    CHECK(a && gcs_auth_is_hmac(a));
    gcs_auth_free(a);
    struct gcs_auth_config half = { .cloud = "g", .access_key_id = "GOOG1X" };
    CHECK_INT(gcs_auth_new(&half, &opt, &a, &e), -EINVAL);
    CHECK(strstr(e.msg, "secret_access_key") != NULL);
    struct gcs_auth_config anon = { .cloud = "g", .anonymous = true };
    CHECK_INT(gcs_auth_new(&anon, &opt, &a, &e), 0);
    CHECK_INT(gcs_auth_kind(a), GCS_AUTH_ANONYMOUS);
    /* anonymous requests carry no Authorization */
    struct http_request req = { 0 };
    req.method = "GET";
    req.url = "http://127.0.0.1:1/b/o";
    CHECK_INT(gcs_auth_sign(a, &req, &e), 0);
    CHECK(http_headers_get(&req.headers, "Authorization") == NULL);
    http_headers_free(&req.headers);
    gcs_auth_free(a);
    /* HMAC: an AWS SigV4 Authorization */
    CHECK_INT(gcs_auth_new(&c, &opt, &a, &e), 0);
    req = (struct http_request){ 0 };
    req.method = "GET";
    req.url = "http://127.0.0.1:1/b/o";
    req.body_fd = -1;
    CHECK_INT(gcs_auth_sign(a, &req, &e), 0);
    const char *auth = http_headers_get(&req.headers, "Authorization");
    CHECK(auth && strncmp(auth, "AWS4-HMAC-SHA256 Credential=GOOG1X/", 35) == 0);
    CHECK(auth && strstr(auth, "/auto/s3/aws4_request") != NULL);
    CHECK(auth && !strstr(auth, "s3cr3t"));
    http_headers_free(&req.headers);
    gcs_auth_free(a);
}
