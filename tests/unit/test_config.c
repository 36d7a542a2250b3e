/* test_config.c - the config loader: good files, and each bad file with
 * its exact message. */
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/driver.h"
#include "../../lib/config.h"

/* Load `text` as a config file; returns rc and leaves the message in e. */
static int load_text(const char *text, int mode, struct sky_config **cfg, struct sky_err *e,
                     char **dir_out, char **path_out)
{
    char *dir = unit_tmpdir();
    char *path = unit_write_file(dir, "skyfs.conf", text, mode);
    int rc = sky_config_load(path, cfg, e);
    *dir_out = dir;
    *path_out = path;
    return rc;
}

/* Expect failure with message "<path>:<rest>". */
static void expect_error(const char *text, int mode, const char *rest)
{
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    char *dir, *path, *want;
    int rc = load_text(text, mode, &cfg, &e, &dir, &path);
    CHECK(rc < 0);
    if (asprintf(&want, "%s%s", path, rest) < 0)
        abort();
    CHECK_STR(e.msg, want);
    free(want);
    unit_rmtree(dir);
    free(dir);
    free(path);
}

TEST(config_good_file)
{
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    char *dir, *path;
    int rc = load_text("# comment\n"
                       "[cache]\n"
                       "dir = /tmp/skyfs-cache\n"
                       "max_size = 2G\n"
                       "block_size = 8M\n"
                       "\n"
                       "; another comment\n"
                       "[docs]\n"
                       "type = local\n"
                       "path = /srv/docs\n"
                       "ttl = 500ms\n"
                       "\n"
                       "[photos]\n"
                       "  type=local  \n"
                       "path=/srv/photos\n"
                       "read_only = yes\n"
                       "ttl = forever\n"
                       "negative_ttl = 1m\n",
                       0644, &cfg, &e, &dir, &path);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK_STR(cfg->cache_dir, "/tmp/skyfs-cache");
        CHECK(cfg->max_size == 2ULL << 30);
        CHECK(cfg->block_size == 8ULL << 20);
        CHECK_INT(cfg->nclouds, 2);
        CHECK_STR(cfg->clouds[0].name, "docs");
        CHECK_STR(cfg->clouds[0].type, "local");
        CHECK_STR(sky_cloud_get(&cfg->clouds[0], "path"), "/srv/docs");
        CHECK_INT(cfg->clouds[0].ttl_ns, 500000000LL);
        CHECK(!cfg->clouds[0].read_only);
        CHECK_INT(cfg->clouds[0].negative_ttl_ns, SKY_DEFAULT_NEGATIVE_TTL_NS);
        CHECK_STR(cfg->clouds[1].name, "photos");
        CHECK(cfg->clouds[1].read_only);
        CHECK(cfg->clouds[1].ttl_ns == SKY_TTL_FOREVER);
        CHECK_INT(cfg->clouds[1].negative_ttl_ns, 60LL * 1000000000LL);
        CHECK_INT(sky_cloud_line(&cfg->clouds[1], "path"), 15);
        CHECK(sky_cloud_get(&cfg->clouds[1], "type") == NULL);
        sky_config_free(cfg);
    }
    unit_rmtree(dir);
    free(dir);
    free(path);
}

TEST(config_defaults_without_cache_section)
{
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    char *dir, *path;
    int rc = load_text("[a]\ntype = local\npath = /x\n", 0600, &cfg, &e, &dir, &path);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK(cfg->max_size == 10ULL << 30);
        CHECK(cfg->block_size == 4ULL << 20);
        CHECK(cfg->cache_dir != NULL);
        CHECK_INT(cfg->clouds[0].ttl_ns, SKY_DEFAULT_TTL_NS);
        sky_config_free(cfg);
    }
    unit_rmtree(dir);
    free(dir);
    free(path);
}

/* Without [cache] dir each mount has its own cache folder, the same at
 * every mount of the same config on the same mountpoint. */
TEST(config_cache_per_mount)
{
    struct sky_config *cfg = NULL, *other = NULL;
    struct sky_err e = { 0 };
    char *dir, *path, *dir2, *path2;
    CHECK_INT(load_text("[a]\ntype = local\npath = /x\n", 0600, &cfg, &e, &dir, &path), 0);
    CHECK_INT(load_text("[a]\ntype = local\npath = /x\n", 0600, &other, &e, &dir2, &path2), 0);
    if (cfg && other) {
        CHECK(cfg->cache_base != NULL);
        char *a = sky_config_mount_cache_dir(cfg, "/srv/clouds");
        char *again = sky_config_mount_cache_dir(cfg, "/srv/clouds");
        char *b = sky_config_mount_cache_dir(cfg, "/home/me/clouds");
        char *c = sky_config_mount_cache_dir(other, "/srv/clouds");
        char prefix[4096];
        snprintf(prefix, sizeof prefix, "%s/mounts/clouds-", cfg->cache_base);
        CHECK(strncmp(a, prefix, strlen(prefix)) == 0);
        CHECK_STR(a, again);
        CHECK(strcmp(a, b) != 0);          /* another mountpoint */
        CHECK(strcmp(a, c) != 0);          /* another config file */
        CHECK_INT(sky_config_use_mount_cache(cfg, "/srv/clouds", &e), 0);
        CHECK_STR(cfg->cache_dir, a);
        free(a);
        free(again);
        free(b);
        free(c);
    }
    sky_config_free(cfg);
    sky_config_free(other);
    unit_rmtree(dir);
    unit_rmtree(dir2);
    free(dir);
    free(dir2);
    free(path);
    free(path2);

    /* An explicit [cache] dir is used as it is. */
    cfg = NULL;
    CHECK_INT(load_text("[cache]\ndir = /tmp/skyfs-cache\n[a]\ntype = local\npath = /x\n",
                        0600, &cfg, &e, &dir, &path), 0);
    if (cfg) {
        CHECK(cfg->cache_base == NULL);
        CHECK_INT(sky_config_use_mount_cache(cfg, "/srv/clouds", &e), 0);
        CHECK_STR(cfg->cache_dir, "/tmp/skyfs-cache");
    }
    sky_config_free(cfg);
    unit_rmtree(dir);
    free(dir);
    free(path);
}

TEST(config_missing_file)
{
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    CHECK_INT(sky_config_load("/nonexistent/skyfs.conf", &cfg, &e), -ENOENT);
    CHECK_STR(e.msg, "/nonexistent/skyfs.conf: no such config file; create it (see README "
                     "\"Configuration\") or pass -c FILE");
}

TEST(config_bad_lines)
{
    expect_error("[a\ntype = local\n", 0644,
                 ":1: malformed section header \"[a\"; write it as [name]");
    expect_error("[a]\ntype local\n", 0644,
                 ":2: expected \"key = value\" or \"[section]\", found \"type local\"");
    expect_error("type = local\n", 0644,
                 ":1: \"type = local\" is outside any section; put it under [cache] or under "
                 "a [cloud-name] section");
    expect_error("[a]\n = x\n", 0644, ":2: missing key before '='");
    expect_error("[a/b]\n", 0644,
                 ":1: \"[a/b]\" cannot be a directory name; use a name without '/' that is not "
                 "empty, \".\" or \"..\"");
    expect_error("[a]\ntype = local\npath = /x\n[a]\n", 0644,
                 ":4: section [a] appears twice (first at line 1); give each cloud a unique name");
    expect_error("[a]\ntype = local\ntype = local\n", 0644,
                 ":3: key \"type\" set twice in [a] (first at line 2); keep one");
}

TEST(config_bad_clouds)
{
    char msg[512];
    snprintf(msg, sizeof msg, ":1: cloud [a] has no type; add \"type = TYPE\" (one of: %s)",
             sky_driver_types());
    expect_error("[a]\npath = /x\n", 0644, msg);
    snprintf(msg, sizeof msg, ":2: unknown cloud type \"ftp\" for [a]; use one of: %s",
             sky_driver_types());
    expect_error("[a]\ntype = ftp\n", 0644, msg);
    expect_error("[a]\ntype = local\n", 0644,
                 ":1: cloud [a] of type local needs \"path\" (the directory on this machine that "
                 "holds the cloud's files); add \"path = ...\" to the section");
    expect_error("[a]\ntype = local\npath = /x\ncolour = blue\n", 0644,
                 ":4: unknown key \"colour\" for a cloud of type local; known keys: type, "
                 "read_only, ttl, negative_ttl, path");
    expect_error("[a]\ntype = local\npath = /x\nread_only = maybe\n", 0644,
                 ":4: read_only = \"maybe\" is not a boolean; write true or false");
    expect_error("[a]\ntype = local\npath = /x\nttl = soon\n", 0644,
                 ":4: ttl = \"soon\" is not a duration; write e.g. 500ms, 10s, 5m, 1h or forever");
    expect_error("[cache]\n", 0644,
                 ": no clouds configured; add a section such as \"[docs]\" with \"type = local\" "
                 "and \"path = /some/dir\"");
}

TEST(config_bad_cache)
{
    expect_error("[cache]\nmax_size = lots\n[a]\ntype = local\npath = /x\n", 0644,
                 ":2: max_size = \"lots\" is not a size; write a number with an optional K, M, G "
                 "or T suffix, e.g. 10G");
    expect_error("[cache]\nblock_size = 3M\n", 0644,
                 ":2: block_size = \"3M\" is not allowed; use 1M, 2M, 4M or 8M");
    expect_error("[cache]\nblock_size = 16M\n", 0644,
                 ":2: block_size = \"16M\" is not allowed; use 1M, 2M, 4M or 8M");
    expect_error("[cache]\nsize = 1G\n", 0644,
                 ":2: unknown key \"size\" in [cache]; known keys: dir, max_size, block_size, "
                 "min_free");
}

TEST(config_secret_needs_0600)
{
    /* Any driver with a secret key will do; skip the mode check if none is
     * built in (the local driver has no secrets). */
    const struct sky_driver *d = sky_driver_find("s3");
    CHECK(d != NULL);
    if (!d)
        return;
    const char *text = "[b]\ntype = s3\nbucket = b\naccess_key_id = AK\n"
                       "secret_access_key = SECRET\n";
    char *dir = unit_tmpdir();
    char *path = unit_write_file(dir, "skyfs.conf", text, 0644);
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    CHECK_INT(sky_config_load(path, &cfg, &e), -EPERM);
    char want[1024];
    snprintf(want, sizeof want, "%s: holds secrets but is readable by others (mode 0644); run: "
             "chmod 600 %s", path, path);
    CHECK_STR(e.msg, want);
    CHECK(strstr(e.msg, "SECRET") == NULL);
    free(path);
    path = unit_write_file(dir, "skyfs.conf", text, 0600);
    CHECK_INT(sky_config_load(path, &cfg, &e), 0);
    sky_config_free(cfg);
    unit_rmtree(dir);
    free(dir);
    free(path);
}

TEST(config_parsers)
{
    uint64_t v;
    int64_t d;
    bool b;
    CHECK_INT(sky_parse_size("512K", &v), 0);
    CHECK(v == 512ULL << 10);
    CHECK_INT(sky_parse_size("10GiB", &v), 0);
    CHECK(v == 10ULL << 30);
    CHECK_INT(sky_parse_size("123", &v), 0);
    CHECK(v == 123);
    CHECK_INT(sky_parse_size("-1", &v), -EINVAL);
    CHECK_INT(sky_parse_size("1X", &v), -EINVAL);
    CHECK_INT(sky_parse_duration("2h", &d), 0);
    CHECK(d == 7200LL * 1000000000LL);
    CHECK_INT(sky_parse_duration("5", &d), 0);
    CHECK(d == 5LL * 1000000000LL);
    CHECK_INT(sky_parse_duration("5d", &d), -EINVAL);
    CHECK_INT(sky_parse_bool("Off", &b), 0);
    CHECK(!b);
    CHECK_INT(sky_parse_bool("maybe", &b), -EINVAL);
}
