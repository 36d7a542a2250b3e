/* test_swift_auth.c - Swift settings, the Keystone v3 request and token
 * answer (service catalog selection) and listing pages.
 *
 * The token answer below follows the example of the Keystone v3 API
 * reference ("Password authentication with scoped authorization", POST
 * /v3/auth/tokens, 201): token.expires_at, and a catalog whose services
 * carry "type" and endpoints with "interface", "region", "region_id" and
 * "url".  The listing follows Swift's "Show container details and list
 * objects" reference (format=json, with subdir entries for delimiter=/). */
#include "check.h"

#include <errno.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "../../backends/swift_auth.h"
#include "../../backends/swift_list.h"

static const char *const v3_answer =
    "{\"token\": {\"methods\": [\"password\"],"
    " \"expires_at\": \"2026-12-05T07:00:00.000000Z\","
    " \"project\": {\"domain\": {\"id\": \"default\", \"name\": \"Default\"},"
    "   \"id\": \"a6944d763bf64ee6a275f1263fae0352\", \"name\": \"admin\"},"
    " \"catalog\": ["
    "  {\"endpoints\": [{\"region_id\": \"RegionOne\", \"url\": \"http://ks:5000/v3/\","
    "     \"region\": \"RegionOne\", \"interface\": \"public\", \"id\": \"1\"}],"
    "   \"type\": \"identity\", \"id\": \"i\", \"name\": \"keystone\"},"
    "  {\"endpoints\": ["
    "     {\"region_id\": \"RegionOne\", \"url\": \"http://internal:8080/v1/AUTH_a6\","
    "      \"region\": \"RegionOne\", \"interface\": \"internal\", \"id\": \"2\"},"
    "     {\"region_id\": \"RegionOne\", \"url\": \"https://one.example/v1/AUTH_a6/\","
    "      \"region\": \"RegionOne\", \"interface\": \"public\", \"id\": \"3\"},"
    "     {\"region_id\": \"GRA\", \"url\": \"https://gra.example/v1/AUTH_a6\","
    "      \"region\": \"GRA\", \"interface\": \"public\", \"id\": \"4\"}],"
    "   \"type\": \"object-store\", \"id\": \"o\", \"name\": \"swift\"}],"
    " \"user\": {\"domain\": {\"id\": \"default\", \"name\": \"Default\"},"
    "   \"id\": \"ee4dfb6e5540447cb3741905149d9b6e\", \"name\": \"admin\"},"
    " \"issued_at\": \"2026-12-05T06:00:00.000000Z\"}}";

TEST(swift_v3_token_catalog_region)
{
    char *url = NULL;
    int64_t exp = 0;
    struct sky_err e = { 0 };
    CHECK_INT(swift_v3_parse_token(v3_answer, strlen(v3_answer), "GRA", NULL, 1, &url, &exp, &e),
              0);
    CHECK_STR(url, "https://gra.example/v1/AUTH_a6");
    CHECK_INT(exp, 1796454000); /* date -u -d 2026-12-05T07:00:00Z +%s */
    free(url);
    url = NULL;
    /* no region: the first public object-store endpoint; trailing '/' dropped */
    CHECK_INT(swift_v3_parse_token(v3_answer, strlen(v3_answer), NULL, NULL, 1, &url, &exp, &e), 0);
    CHECK_STR(url, "https://one.example/v1/AUTH_a6");
    free(url);
    url = NULL;
    CHECK_INT(swift_v3_parse_token(v3_answer, strlen(v3_answer), "RegionOne", "internal", 1, &url,
                                   &exp, &e),
              0);
    CHECK_STR(url, "http://internal:8080/v1/AUTH_a6");
    free(url);
}

TEST(swift_v3_token_no_endpoint)
{
    char *url = NULL;
    int64_t exp = 0;
    struct sky_err e = { 0 };
    CHECK_INT(swift_v3_parse_token(v3_answer, strlen(v3_answer), "BHS", NULL, 1, &url, &exp, &e),
              -ENOENT);
    CHECK(url == NULL);
    CHECK(strstr(e.msg, "region BHS") != NULL);
    CHECK(strstr(e.msg, "public/RegionOne") != NULL);
    CHECK(strstr(e.msg, "public/GRA") != NULL);
    /* with storage_url set, the catalog is not needed */
    CHECK_INT(swift_v3_parse_token(v3_answer, strlen(v3_answer), "BHS", NULL, 0, &url, &exp, &e),
              0);
    CHECK(url == NULL);
    const char *bad = "{\"error\": {\"code\": 401}}";
    CHECK_INT(swift_v3_parse_token(bad, strlen(bad), NULL, NULL, 1, &url, &exp, &e), -EIO);
    CHECK_INT(swift_v3_parse_token("not json", 8, NULL, NULL, 1, &url, &exp, &e), -EIO);
}

TEST(swift_catalog_select_region_id)
{
    struct json_object *cat = json_tokener_parse(
        "[{\"type\": \"object-store\", \"endpoints\": [{\"interface\": \"public\","
        " \"region_id\": \"R2\", \"url\": \"http://r2\"}]}]");
    CHECK(cat != NULL);
    CHECK_STR(swift_catalog_select(cat, "R2", NULL), "http://r2");
    CHECK(swift_catalog_select(cat, "R3", NULL) == NULL);
    CHECK(swift_catalog_select(cat, NULL, "admin") == NULL);
    json_object_put(cat);
}

TEST(swift_v3_request_body_form)
{
    struct swift_creds c = { 0 };
    c.version = 3;
    c.user = "demo";
    c.key = "se\"cret";
    c.user_domain = "UDom";
    c.project = "proj";
    c.project_domain = "PDom";
    char *body = swift_v3_request_body(&c);
    CHECK(body != NULL);
    struct json_object *o = json_tokener_parse(body);
    CHECK(o != NULL);
    struct json_object *v;
    CHECK(json_pointer_get(o, "/auth/identity/methods/0", &v) == 0 &&
          strcmp(json_object_get_string(v), "password") == 0);
    CHECK(json_pointer_get(o, "/auth/identity/password/user/name", &v) == 0 &&
          strcmp(json_object_get_string(v), "demo") == 0);
    CHECK(json_pointer_get(o, "/auth/identity/password/user/password", &v) == 0 &&
          strcmp(json_object_get_string(v), "se\"cret") == 0);
    CHECK(json_pointer_get(o, "/auth/identity/password/user/domain/name", &v) == 0 &&
          strcmp(json_object_get_string(v), "UDom") == 0);
    CHECK(json_pointer_get(o, "/auth/scope/project/name", &v) == 0 &&
          strcmp(json_object_get_string(v), "proj") == 0);
    CHECK(json_pointer_get(o, "/auth/scope/project/domain/name", &v) == 0 &&
          strcmp(json_object_get_string(v), "PDom") == 0);
    json_object_put(o);
    free(body);
}

/* config keys for swift_creds_load */
static const char *keys_get(void *arg, const char *key)
{
    const char *const *kv = arg;
    for (; kv[0]; kv += 2)
        if (strcmp(kv[0], key) == 0)
            return kv[1];
    return NULL;
}

static void clear_env(void)
{
    const char *vars[] = { "OS_AUTH_URL", "ST_AUTH", "OS_USERNAME", "ST_USER", "OS_PASSWORD",
                           "ST_KEY", "OS_USER_DOMAIN_NAME", "OS_PROJECT_NAME",
                           "OS_TENANT_NAME", "OS_PROJECT_DOMAIN_NAME", "OS_REGION_NAME",
                           "OS_INTERFACE", "OS_STORAGE_URL", "OS_AUTH_TOKEN", NULL };
    for (int i = 0; vars[i]; i++)
        unsetenv(vars[i]);
}

TEST(swift_creds_versions_and_env)
{
    struct swift_creds c;
    struct sky_err e = { 0 };
    clear_env();
    const char *v1[] = { "auth_url", "http://127.0.0.1:8080/auth/v1.0/", "user", "test:tester",
                         "key", "testing", NULL, NULL };
    CHECK_INT(swift_creds_load(keys_get, (void *)v1, "sw", &c, &e), 0);
    CHECK_INT(c.version, 1);
    CHECK_STR(c.auth_url, "http://127.0.0.1:8080/auth/v1.0");
    swift_creds_free(&c);

    const char *v3[] = { "auth_url", "https://ks/v3", "user", "u", "key", "k", "project", "p",
                         NULL, NULL };
    CHECK_INT(swift_creds_load(keys_get, (void *)v3, "sw", &c, &e), 0);
    CHECK_INT(c.version, 3);
    CHECK_STR(c.user_domain, "Default");
    CHECK_STR(c.project_domain, "Default");
    swift_creds_free(&c);

    const char *v3_noproj[] = { "auth_url", "https://ks/v3/", "user", "u", "key", "k", NULL,
                                NULL };
    CHECK_INT(swift_creds_load(keys_get, (void *)v3_noproj, "sw", &c, &e), -EINVAL);
    CHECK(strstr(e.msg, "project") && strstr(e.msg, "OS_PROJECT_NAME"));

    /* the standard environment fills what the keys do not say */
    const char *none[] = { NULL, NULL };
    CHECK_INT(swift_creds_load(keys_get, (void *)none, "sw", &c, &e), -EINVAL);
    CHECK(strstr(e.msg, "auth_url") != NULL);
    setenv("OS_AUTH_URL", "https://ks.example/v3", 1);
    setenv("OS_USERNAME", "envuser", 1);
    setenv("OS_PASSWORD", "envpass", 1);
    setenv("OS_PROJECT_NAME", "envproj", 1);
    setenv("OS_USER_DOMAIN_NAME", "ud", 1);
    setenv("OS_PROJECT_DOMAIN_NAME", "pd", 1);
    setenv("OS_REGION_NAME", "GRA", 1);
    CHECK_INT(swift_creds_load(keys_get, (void *)none, "sw", &c, &e), 0);
    CHECK_INT(c.version, 3);
    CHECK_STR(c.user, "envuser");
    CHECK_STR(c.key, "envpass");
    CHECK_STR(c.project, "envproj");
    CHECK_STR(c.user_domain, "ud");
    CHECK_STR(c.project_domain, "pd");
    CHECK_STR(c.region, "GRA");
    swift_creds_free(&c);
    clear_env();
    setenv("ST_AUTH", "http://h/auth/v1.0", 1);
    setenv("ST_USER", "a:b", 1);
    setenv("ST_KEY", "c", 1);
    CHECK_INT(swift_creds_load(keys_get, (void *)none, "sw", &c, &e), 0);
    CHECK_INT(c.version, 1);
    CHECK_STR(c.user, "a:b");
    swift_creds_free(&c);
    const char *badver[] = { "auth_version", "2", NULL, NULL };
    CHECK_INT(swift_creds_load(keys_get, (void *)badver, "sw", &c, &e), -EINVAL);
    CHECK(strstr(e.msg, "auth_version") != NULL);
    clear_env();
    /* no secret in the messages */
    const char *nokey[] = { "auth_url", "http://h/auth/v1.0", "user", "secretuser", NULL, NULL };
    CHECK_INT(swift_creds_load(keys_get, (void *)nokey, "sw", &c, &e), -EINVAL);
    CHECK(strstr(e.msg, "`key`") != NULL);
}

TEST(swift_iso8601)
{
    int64_t ns = 0;
    CHECK_INT(swift_parse_iso8601("2026-12-05T06:09:57.960600", &ns), 0);
    CHECK_INT(ns, 1796450997960600000LL);
    CHECK_INT(swift_parse_iso8601("2026-12-05T06:09:57Z", &ns), 0);
    CHECK_INT(ns, 1796450997000000000LL);
    CHECK_INT(swift_parse_iso8601("2026-12-05T08:09:57+02:00", &ns), 0);
    CHECK_INT(ns, 1796450997000000000LL);
    CHECK_INT(swift_parse_iso8601("yesterday", &ns), -EINVAL);
    CHECK_INT(swift_parse_iso8601("2026-12-05T06:09:57junk", &ns), -EINVAL);
}

struct seen {
    char names[8][64];
    int subdir[8];
    uint64_t bytes[8];
    char ctype[8][64];
    int64_t mtime[8];
    int n;
};

static int collect(void *arg, const struct swift_entry *ent)
{
    struct seen *s = arg;
    if (s->n >= 8)
        return -E2BIG;
    snprintf(s->names[s->n], 64, "%s", ent->name);
    s->subdir[s->n] = ent->is_subdir;
    s->bytes[s->n] = ent->bytes;
    snprintf(s->ctype[s->n], 64, "%s", ent->content_type ? ent->content_type : "-");
    s->mtime[s->n] = ent->mtime_ns;
    s->n++;
    return 0;
}

TEST(swift_list_page)
{
    const char *page =
        "[{\"subdir\": \"photos/2024/\"},"
        " {\"hash\": \"d41d8cd98f00b204e9800998ecf8427e\", \"last_modified\": "
        "\"2026-12-05T06:09:57.960600\", \"bytes\": 0, \"name\": \"photos/dir\","
        " \"content_type\": \"application/directory\"},"
        " {\"hash\": \"abc\", \"last_modified\": \"2026-12-05T06:09:57.000000\", \"bytes\": "
        "104857600, \"name\": \"photos/big.bin\", \"content_type\": "
        "\"application/octet-stream;swift_bytes=104857600\", \"slo_etag\": \"\\\"e\\\"\"},"
        " {\"name\": \"photos/\\u00fc.txt\", \"bytes\": 3, \"hash\": \"h\","
        " \"content_type\": \"text/plain\", \"last_modified\": \"2026-12-05T06:09:58\"}]";
    struct seen s = { 0 };
    size_t n = 0;
    char *marker = NULL;
    struct sky_err e = { 0 };
    CHECK_INT(swift_list_parse(page, strlen(page), collect, &s, &n, &marker, &e), 0);
    CHECK_INT(n, 4);
    CHECK_INT(s.n, 4);
    CHECK_STR(s.names[0], "photos/2024/");
    CHECK_INT(s.subdir[0], 1);
    CHECK_STR(s.names[1], "photos/dir");
    CHECK_STR(s.ctype[1], "application/directory");
    CHECK_INT(s.mtime[1], 1796450997960600000LL);
    CHECK_INT(s.bytes[2], 104857600);
    CHECK_STR(s.ctype[2], "application/octet-stream");
    CHECK_STR(s.names[3], "photos/\xc3\xbc.txt");
    CHECK_STR(marker, "photos/\xc3\xbc.txt");
    free(marker);

    /* an empty page, and bodies that are not listings */
    CHECK_INT(swift_list_parse("", 0, collect, &s, &n, &marker, &e), 0);
    CHECK_INT(n, 0);
    CHECK(marker == NULL);
    CHECK_INT(swift_list_parse("[]", 2, collect, &s, &n, &marker, &e), 0);
    CHECK_INT(n, 0);
    CHECK(marker == NULL);
    CHECK_INT(swift_list_parse("<html>", 6, collect, &s, &n, &marker, &e), -EIO);
    CHECK_INT(swift_list_parse("[{\"bytes\": 1}]", 14, collect, &s, &n, &marker, &e), -EIO);
}

/* like collect, but subdir[] records has_nul */
static int collect_nul(void *arg, const struct swift_entry *ent)
{
    struct seen *s = arg;
    if (s->n >= 8)
        return -E2BIG;
    snprintf(s->names[s->n], 64, "%s", ent->name);
    s->subdir[s->n] = ent->has_nul;
    s->n++;
    return 0;
}

static int stop_at_second(void *arg, const struct swift_entry *ent)
{
    int *k = arg;
    return ++*k == 2 ? -EINTR : 0;
}

TEST(swift_list_callback_stops)
{
    const char *page = "[{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": \"c\"}]";
    int k = 0;
    size_t n = 0;
    char *marker = NULL;
    CHECK_INT(swift_list_parse(page, strlen(page), stop_at_second, &k, &n, &marker, NULL), -EINTR);
    CHECK_INT(k, 2);
    CHECK(marker == NULL);
}

TEST(swift_list_nul_in_name)
{
    /* Swift refuses such names, but a listing that carries one must not
     * show it as the shorter name before the NUL */
    const char *page = "[{\"name\": \"a\\u0000b\", \"bytes\": 1}, {\"subdir\": \"c\\u0000/\"},"
                       " {\"name\": \"ok\", \"bytes\": 2}]";
    struct seen s = { 0 };
    size_t n = 0;
    char *marker = NULL;
    CHECK_INT(swift_list_parse(page, strlen(page), collect_nul, &s, &n, &marker, NULL), 0);
    CHECK_INT(n, 3);
    CHECK_INT(s.n, 3);
    CHECK_INT(s.subdir[0], 1); /* has_nul, recorded in subdir[] by collect_nul */
    CHECK_INT(s.subdir[1], 1);
    CHECK_INT(s.subdir[2], 0);
    CHECK_STR(s.names[2], "ok");
    free(marker);
}
