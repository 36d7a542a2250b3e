/*
 * test_sigv4.c - SigV4 against AWS's published vectors.
 *
 * The "service" vectors come from the aws-sig-v4-test-suite (credentials
 * AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830T123600Z);
 * the "s3" ones from the S3 API reference's signature examples
 * (AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,
 * 20130524T000000Z, bucket examplebucket).
 */
#include "check.h"

#include <stdlib.h>

#include "../../backends/http.h"
#include "../../backends/sigv4.h"

static const struct sigv4_creds suite_creds = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL,
};
static const struct sigv4_scope suite_scope = { "us-east-1", "service" };

static const struct sigv4_creds s3_creds = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL,
};
static const struct sigv4_scope s3_scope = { "us-east-1", "s3" };

/* Sign with headers given as "name", "value", ..., NULL; returns the
 * signature (static buffer) and optionally the whole result. */
static const char *sign_with(const struct sigv4_creds *cr, const struct sigv4_scope *sc,
                             const char *method, const char *path, const char *query,
                             const char *payload, const char *date, const char **hdrs,
                             struct sigv4_result *keep)
{
    static char sig[65];
    struct http_headers hs = {0};
    for (size_t i = 0; hdrs[i]; i += 2)
        http_headers_set(&hs, hdrs[i], hdrs[i + 1]);
    struct sigv4_request rq = { method, path, query, &hs, payload, date };
    struct sigv4_result r;
    sig[0] = '\0';
    if (sigv4_sign(cr, sc, &rq, &r) == 0) {
        memcpy(sig, r.signature, sizeof sig);
        if (keep)
            *keep = r;
        else
            sigv4_result_free(&r);
    }
    http_headers_free(&hs);
    return sig;
}

static const char *suite_sign(const char *method, const char *path, const char *query,
                              const char *payload, const char **hdrs)
{
    return sign_with(&suite_creds, &suite_scope, method, path, query, payload,
                     "20150830T123600Z", hdrs, NULL);
}

static const char *base_hdrs[] = {
    "Host", "example.amazonaws.com", "X-Amz-Date", "20150830T123600Z", NULL,
};

TEST(sigv4_get_vanilla)
{
    struct sigv4_result r;
    const char *sig = sign_with(&suite_creds, &suite_scope, "GET", "/", NULL,
                                SIGV4_EMPTY_SHA256, "20150830T123600Z", base_hdrs, &r);
    CHECK_STR(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    CHECK_STR(r.canonical_request,
              "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
              "host;x-amz-date\n" SIGV4_EMPTY_SHA256);
    CHECK_STR(r.authorization,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
              "SignedHeaders=host;x-amz-date, "
              "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    sigv4_result_free(&r);
}

TEST(sigv4_get_vanilla_query_order_key_case)
{
    CHECK_STR(suite_sign("GET", "/", "Param2=value2&Param1=value1", SIGV4_EMPTY_SHA256, base_hdrs),
              "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(sigv4_get_vanilla_query_order_key)
{
    struct sigv4_result r;
    const char *sig = sign_with(&suite_creds, &suite_scope, "GET", "/",
                                "Param1=value2&Param1=Value1", SIGV4_EMPTY_SHA256,
                                "20150830T123600Z", base_hdrs, &r);
    CHECK_STR(sig, "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1");
    CHECK(strstr(r.canonical_request, "\nParam1=Value1&Param1=value2\n") != NULL);
    CHECK(strstr(r.string_to_sign,
                 "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89") != NULL);
    sigv4_result_free(&r);
}

TEST(sigv4_get_vanilla_query_unreserved)
{
    const char *q = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    CHECK_STR(suite_sign("GET", "/", q, SIGV4_EMPTY_SHA256, base_hdrs),
              "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

TEST(sigv4_post_vanilla)
{
    CHECK_STR(suite_sign("POST", "/", NULL, SIGV4_EMPTY_SHA256, base_hdrs),
              "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(sigv4_post_header_key_sort)
{
    const char *h[] = { "Host", "example.amazonaws.com", "My-Header1", "value1",
                        "X-Amz-Date", "20150830T123600Z", NULL };
    CHECK_STR(suite_sign("POST", "/", NULL, SIGV4_EMPTY_SHA256, h),
              "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c");
}

TEST(sigv4_post_x_www_form_urlencoded)
{
    const char *body = "Param1=value1";
    char hash[65];
    sigv4_sha256_hex(body, strlen(body), hash);
    CHECK_STR(hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    const char *h[] = { "Content-Type", "application/x-www-form-urlencoded",
                        "Host", "example.amazonaws.com", "X-Amz-Date", "20150830T123600Z", NULL };
    struct sigv4_result r;
    const char *sig = sign_with(&suite_creds, &suite_scope, "POST", "/", NULL, hash,
                                "20150830T123600Z", h, &r);
    CHECK_STR(sig, "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
    CHECK_STR(r.canonical_request,
              "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
              "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
              "content-type;host;x-amz-date\n"
              "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    sigv4_result_free(&r);
}

TEST(sigv4_post_sts_header_before)
{
    const char *token =
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpS"
        "PfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQ"
        "DYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz"
        "+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
    const char *h[] = { "Host", "example.amazonaws.com", "X-Amz-Date", "20150830T123600Z",
                        "X-Amz-Security-Token", token, NULL };
    CHECK_STR(suite_sign("POST", "/", NULL, SIGV4_EMPTY_SHA256, h),
              "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}

TEST(sigv4_s3_get_object_range)
{
    const char *h[] = { "Host", "examplebucket.s3.amazonaws.com", "Range", "bytes=0-9",
                        "x-amz-content-sha256", SIGV4_EMPTY_SHA256,
                        "x-amz-date", "20130524T000000Z", NULL };
    struct sigv4_result r;
    const char *sig = sign_with(&s3_creds, &s3_scope, "GET", "/test.txt", NULL,
                                SIGV4_EMPTY_SHA256, "20130524T000000Z", h, &r);
    CHECK_STR(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CHECK_STR(r.string_to_sign,
              "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
              "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    sigv4_result_free(&r);
}

TEST(sigv4_s3_put_object_escaped_key)
{
    const char *body = "Welcome to Amazon S3.";
    char hash[65];
    sigv4_sha256_hex(body, strlen(body), hash);
    CHECK_STR(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    const char *h[] = { "Date", "Fri, 24 May 2013 00:00:00 GMT",
                        "Host", "examplebucket.s3.amazonaws.com",
                        "x-amz-content-sha256", hash, "x-amz-date", "20130524T000000Z",
                        "x-amz-storage-class", "REDUCED_REDUNDANCY", NULL };
    CHECK_STR(sign_with(&s3_creds, &s3_scope, "PUT", "/test%24file.text", NULL, hash,
                        "20130524T000000Z", h, NULL),
              "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    /* the same key given unencoded signs the same way */
    CHECK_STR(sign_with(&s3_creds, &s3_scope, "PUT", "/test$file.text", NULL, hash,
                        "20130524T000000Z", h, NULL),
              "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(sigv4_s3_list_objects_and_subresource)
{
    const char *h[] = { "Host", "examplebucket.s3.amazonaws.com",
                        "x-amz-content-sha256", SIGV4_EMPTY_SHA256,
                        "x-amz-date", "20130524T000000Z", NULL };
    CHECK_STR(sign_with(&s3_creds, &s3_scope, "GET", "/", "prefix=J&max-keys=2",
                        SIGV4_EMPTY_SHA256, "20130524T000000Z", h, NULL),
              "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    CHECK_STR(sign_with(&s3_creds, &s3_scope, "GET", "/", "lifecycle",
                        SIGV4_EMPTY_SHA256, "20130524T000000Z", h, NULL),
              "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(sigv4_amz_date_and_fd_hash)
{
    char d[17];
    sigv4_amz_date(1440938160, d);
    CHECK_STR(d, "20150830T123600Z");

    char *dir = unit_tmpdir();
    char *path = unit_write_file(dir, "body", "xxWelcome to Amazon S3.yy", 0600);
    FILE *f = fopen(path, "r");
    char hash[65] = "";
    CHECK(f != NULL);
    if (f) {
        CHECK_INT(sigv4_sha256_fd_hex(fileno(f), 2, 21, hash), 0);
        fclose(f);
    }
    CHECK_STR(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    unit_rmtree(dir);
    free(path);
    free(dir);
}

TEST(sigv4_sign_http_stamps_headers)
{
    struct sigv4_creds cr = { "AKID", "secret", "tok" };
    struct sigv4_http_signer s = { &cr, { "us-east-1", "s3" }, NULL };
    char url[] = "http://127.0.0.1:4568/bucket/a%20b?uploads";
    struct http_request req = { .method = "POST", .url = url, .body_fd = -1 };
    struct sky_err e = {0};
    CHECK_INT(sigv4_sign_http(&s, &req, &e), 0);
    CHECK_STR(http_headers_get(&req.headers, "host"), "127.0.0.1:4568");
    CHECK_STR(http_headers_get(&req.headers, "x-amz-content-sha256"), SIGV4_EMPTY_SHA256);
    CHECK_STR(http_headers_get(&req.headers, "x-amz-security-token"), "tok");
    const char *auth = http_headers_get(&req.headers, "authorization");
    CHECK(auth && strstr(auth, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                               "x-amz-security-token, Signature=") != NULL);
    CHECK(auth && !strstr(auth, "secret"));
    /* a second signing (a retry) replaces, not duplicates */
    size_t n = req.headers.n;
    CHECK_INT(sigv4_sign_http(&s, &req, &e), 0);
    CHECK_INT(req.headers.n, n);
    http_headers_free(&req.headers);

    char url2[] = "https://bucket.s3.amazonaws.com:443/k";
    struct http_request req2 = { .method = "GET", .url = url2, .body_fd = 3 };
    CHECK_INT(sigv4_sign_http(&s, &req2, &e), 0);
    CHECK_STR(http_headers_get(&req2.headers, "host"), "bucket.s3.amazonaws.com");
    http_headers_free(&req2.headers);
}

TEST(sigv4_sign_http_stamps_the_time_http_do_gives)
{
    struct sigv4_creds cr = { "AKID", "secret", NULL };
    struct sigv4_http_signer s = { &cr, { "us-east-1", "s3" }, NULL };
    char url[] = "http://127.0.0.1:4568/bucket/k";
    /* 2013-05-24T00:00:00Z: the server's clock, as http_do corrects it */
    struct http_request req = { .method = "GET", .url = url, .body_fd = -1,
                                .sign_time = 1369353600 };
    struct sky_err e = {0};
    CHECK_INT(sigv4_sign_http(&s, &req, &e), 0);
    CHECK_STR(http_headers_get(&req.headers, "x-amz-date"), "20130524T000000Z");
    const char *auth = http_headers_get(&req.headers, "authorization");
    CHECK(auth && strstr(auth, "Credential=AKID/20130524/us-east-1/s3/aws4_request") != NULL);
    http_headers_free(&req.headers);
}

TEST(http_uri_encode_rfc3986)
{
    char *a = http_uri_encode("a b/c~d_e.f-g+h*$", 1);
    char *b = http_uri_encode("a/b", 0);
    char *c = http_uri_encode("\xc3\xa9", 0);
    CHECK_STR(a, "a%20b/c~d_e.f-g%2Bh%2A%24");
    CHECK_STR(b, "a%2Fb");
    CHECK_STR(c, "%C3%A9");
    free(a);
    free(b);
    free(c);
}
