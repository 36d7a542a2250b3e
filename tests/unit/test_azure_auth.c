/* test_azure_auth.c - Azure Shared Key signing and connection strings.
 *
 * The expected signatures were computed independently of this code, from a
 * string to sign written out by hand per the "Authorize with Shared Key"
 * rules:  printf '...' > sts; openssl dgst -sha256 -mac HMAC
 * -macopt hexkey:$(base64 -d <<<KEY | xxd -p -c 256) -binary sts | base64 */
#include "check.h"

#include <errno.h>
#include <stdlib.h>

#include "../../backends/azure_auth.h"

static const char *const sts_put_blob =
    "PUT\n\n\n11\n\napplication/octet-stream\n\n\n\n\n\n\n"
    "x-ms-blob-type:BlockBlob\n"
    "x-ms-date:Mon, 01 Jan 2024 00:00:00 GMT\n"
    "x-ms-meta-mode:33188\n"
    "x-ms-meta-mtime:2024-01-01T00:00:00.000000000Z\n"
    "x-ms-version:2021-08-06\n"
    "/devstoreaccount1/devstoreaccount1/photos/dir/a%20b.txt";

static const char *const sts_list =
    "GET\n\n\n\n\n\n\n\n\"0x8DC1\"\n\n\n\n"
    "x-ms-date:Mon, 01 Jan 2024 00:00:00 GMT\n"
    "x-ms-range:bytes=0-99\n"
    "x-ms-version:2021-08-06\n"
    "/myaccount/photos\ncomp:list\ndelimiter:/\ninclude:metadata\n"
    "marker:2!88!abc\nprefix:dir/sub dir/\nrestype:container";

static unsigned char *dev_key(size_t *len)
{
    unsigned char *key = NULL;
    struct sky_err e;
    CHECK_INT(azure_key_decode(AZURE_DEV_KEY, &key, len, &e), 0);
    return key;
}

TEST(azure_key_decode_dev_account)
{
    size_t len = 0;
    unsigned char *key = dev_key(&len);
    CHECK_INT(len, 64);
    CHECK(key && key[0] == 0x11 && key[63] == 0x1b);
    free(key);

    struct sky_err e;
    CHECK_INT(azure_key_decode("not base64!", &key, &len, &e), -EINVAL);
    CHECK(key == NULL);
}

TEST(azure_string_to_sign_put_blob)
{
    struct http_headers hs = { 0 };
    http_headers_set(&hs, "x-ms-version", "2021-08-06");
    http_headers_set(&hs, "X-MS-Date", "Mon, 01 Jan 2024 00:00:00 GMT");
    http_headers_set(&hs, "x-ms-meta-mtime", "2024-01-01T00:00:00.000000000Z");
    http_headers_set(&hs, "Content-Type", "application/octet-stream");
    http_headers_set(&hs, "x-ms-blob-type", "BlockBlob");
    http_headers_set(&hs, "x-ms-meta-mode", "  33188");
    char *sts = azure_string_to_sign(
        "devstoreaccount1", "PUT",
        "http://127.0.0.1:10000/devstoreaccount1/photos/dir/a%20b.txt", &hs, 11);
    CHECK_STR(sts, sts_put_blob);
    free(sts);
    http_headers_free(&hs);
}

TEST(azure_string_to_sign_list_query_sorted_and_decoded)
{
    struct http_headers hs = { 0 };
    http_headers_set(&hs, "x-ms-date", "Mon, 01 Jan 2024 00:00:00 GMT");
    http_headers_set(&hs, "x-ms-version", "2021-08-06");
    http_headers_set(&hs, "x-ms-range", "bytes=0-99");
    http_headers_set(&hs, "If-Match", "\"0x8DC1\"");
    char *sts = azure_string_to_sign(
        "myaccount", "GET",
        "https://myaccount.blob.core.windows.net/photos?restype=container&comp=list"
        "&delimiter=%2F&prefix=dir%2Fsub%20dir%2F&include=metadata&Marker=2%2188%21abc",
        &hs, 0);
    CHECK_STR(sts, sts_list);
    free(sts);
    http_headers_free(&hs);
}

/* Examples from the canonicalized-resource section of the Shared Key docs. */
TEST(azure_string_to_sign_documented_resources)
{
    struct http_headers hs = { 0 };
    char *sts = azure_string_to_sign(
        "myaccount", "GET",
        "http://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata",
        &hs, 0);
    CHECK(sts && strstr(sts, "\n/myaccount/mycontainer\ncomp:metadata\nrestype:container"));
    free(sts);
    sts = azure_string_to_sign(
        "myaccount", "GET",
        "http://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=list"
        "&include=snapshots&include=metadata&include=uncommittedblobs",
        &hs, 0);
    CHECK(sts && strstr(sts, "\n/myaccount/mycontainer\ncomp:list\n"
                             "include:metadata,snapshots,uncommittedblobs\nrestype:container"));
    free(sts);
    sts = azure_string_to_sign("myaccount", "GET", "https://myaccount.blob.core.windows.net",
                               &hs, 0);
    CHECK(sts && strstr(sts, "\n/myaccount/") && sts[strlen(sts) - 1] == '/');
    free(sts);
}

TEST(azure_signature_matches_openssl)
{
    size_t len = 0;
    unsigned char *key = dev_key(&len);
    char sig[64];
    azure_signature(key, len, sts_put_blob, sig);
    CHECK_STR(sig, "U/JmE1ANixnp40hn5JmBoHtV65YscXkACDZm6DhIRiI=");
    azure_signature(key, len, sts_list, sig);
    CHECK_STR(sig, "OkrhvOaBEEwrT+3z8mAF6NonBmIJHoo6FllrLQxF/fg=");
    free(key);
}

TEST(azure_sign_request_adds_headers)
{
    size_t len = 0;
    struct azure_auth auth = { "devstoreaccount1", dev_key(&len), 0 };
    auth.key_len = len;
    char url[] = "http://127.0.0.1:10000/devstoreaccount1/c?restype=container";
    struct http_request req = { .method = "GET", .url = url, .body_fd = -1 };
    struct sky_err e;
    CHECK_INT(azure_sign_request(&auth, &req, &e), 0);
    CHECK_STR(http_headers_get(&req.headers, "x-ms-version"), AZURE_API_VERSION);
    CHECK(http_headers_get(&req.headers, "x-ms-date") != NULL);
    const char *authz = http_headers_get(&req.headers, "Authorization");
    CHECK(authz && strncmp(authz, "SharedKey devstoreaccount1:", 27) == 0);
    http_headers_free(&req.headers);

    /* With a SAS there is no key and no Authorization header. */
    struct azure_auth sas = { "devstoreaccount1", NULL, 0 };
    CHECK_INT(azure_sign_request(&sas, &req, &e), 0);
    CHECK(http_headers_get(&req.headers, "Authorization") == NULL);
    http_headers_free(&req.headers);
    free(auth.key);
}

TEST(azure_http_date_format)
{
    char d[32];
    azure_http_date(1255297753, d);
    CHECK_STR(d, "Sun, 11 Oct 2009 21:49:13 GMT");
    azure_http_date(0, d);
    CHECK_STR(d, "Thu, 01 Jan 1970 00:00:00 GMT");
}

TEST(azure_conn_parse_account_key)
{
    struct azure_conn c;
    struct sky_err e;
    CHECK_INT(azure_conn_parse("DefaultEndpointsProtocol=https;AccountName=acct;"
                               "AccountKey=" AZURE_DEV_KEY ";EndpointSuffix=core.chinacloudapi.cn;",
                               &c, &e), 0);
    CHECK_STR(c.account, "acct");
    CHECK_STR(c.key, AZURE_DEV_KEY);
    CHECK_STR(c.endpoint, "https://acct.blob.core.chinacloudapi.cn");
    CHECK(c.sas == NULL);
    azure_conn_free(&c);

    CHECK_INT(azure_conn_parse(" accountname = a2 ; accountkey=" AZURE_DEV_KEY, &c, &e), 0);
    CHECK_STR(c.endpoint, "https://a2.blob.core.windows.net");
    azure_conn_free(&c);
}

TEST(azure_conn_parse_blob_endpoint_and_sas)
{
    struct azure_conn c;
    struct sky_err e;
    CHECK_INT(azure_conn_parse("BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;"
                               "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
                               "SharedAccessSignature=?sv=2019-12-12&ss=b&sig=a%2Bb%3D",
                               &c, &e), 0);
    CHECK_STR(c.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
    CHECK_STR(c.sas, "sv=2019-12-12&ss=b&sig=a%2Bb%3D");
    CHECK(c.account == NULL && c.key == NULL);
    azure_conn_free(&c);
}

TEST(azure_conn_parse_development_storage)
{
    struct azure_conn c;
    struct sky_err e;
    CHECK_INT(azure_conn_parse("UseDevelopmentStorage=true", &c, &e), 0);
    CHECK_STR(c.account, AZURE_DEV_ACCOUNT);
    CHECK_STR(c.key, AZURE_DEV_KEY);
    CHECK_STR(c.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
    azure_conn_free(&c);
}

TEST(azure_conn_parse_rejects_bad_strings_without_leaking_values)
{
    struct azure_conn c;
    struct sky_err e;
    CHECK_INT(azure_conn_parse("AccountKey=secretvalue", &c, &e), -EINVAL);
    CHECK(strstr(e.msg, "AccountName") != NULL);
    CHECK(strstr(e.msg, "secretvalue") == NULL);
    CHECK_INT(azure_conn_parse("AccountName=a;garbage", &c, &e), -EINVAL);
    CHECK_INT(azure_conn_parse("AccountName=a;DefaultEndpointsProtocol=ftp", &c, &e), -EINVAL);
    CHECK(c.account == NULL);
}
