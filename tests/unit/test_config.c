/* test_config.c - the config loader: good files, and each bad file with
 * its exact message. */
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../backends/driver.h"
#include "../../lib/config.h"

#ifndef SKY_SOURCE_ROOT
#define SKY_SOURCE_ROOT "."         /* the Makefile sets it to the source tree */
#endif

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
        CHECK(cfg->clouds[0].index);
        CHECK_INT(cfg->clouds[0].index_interval_ns, SKY_DEFAULT_INDEX_INTERVAL_NS);
        CHECK_INT(cfg->clouds[0].list_ahead, 8);
        CHECK_INT(cfg->clouds[0].open_ahead, 0);     /* local: no network to hide */
        sky_config_free(cfg);
    }
    unit_rmtree(dir);
    free(dir);
    free(path);
}

TEST(config_list_ahead_and_open_ahead)
{
    static const struct { const char *key, *value; int want; } cases[] = {
        { "list_ahead", "0", 0 }, { "list_ahead", "5", 5 }, { "list_ahead", "16", 16 },
        { "open_ahead", "0", 0 }, { "open_ahead", "3", 3 }, { "open_ahead", "64", 64 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sky_config *cfg = NULL;
        struct sky_err e = { 0 };
        char *dir, *path, text[128];
        snprintf(text, sizeof text, "[a]\ntype = local\npath = /x\n%s = %s\n", cases[i].key,
                 cases[i].value);
        int rc = load_text(text, 0600, &cfg, &e, &dir, &path);
        CHECK_INT(rc, 0);
        if (rc == 0) {
            bool list = strcmp(cases[i].key, "list_ahead") == 0;
            CHECK_INT(list ? cfg->clouds[0].list_ahead : cfg->clouds[0].open_ahead, cases[i].want);
            sky_config_free(cfg);
        }
        unit_rmtree(dir);
        free(dir);
        free(path);
    }
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
                 "read_only, write_back, write_back_delay, upload_parallel, ttl, negative_ttl, "
                 "index, index_interval, revalidate, list_ahead, open_ahead, path");
    expect_error("[a]\ntype = local\npath = /x\nrevalidate = later\n", 0644,
                 ":4: revalidate = \"later\" is not a mode; write async (a listing older than "
                 "ttl is answered at once and refreshed in the background) or sync (refreshed "
                 "first)");
    expect_error("[a]\ntype = local\npath = /x\nlist_ahead = 17\n", 0644,
                 ":4: list_ahead = \"17\" is not a number from 0 to 16; write e.g. list_ahead = 2 "
                 "(subfolders listed in the background at once) or list_ahead = 0 (off)");
    expect_error("[a]\ntype = local\npath = /x\nlist_ahead = two\n", 0644,
                 ":4: list_ahead = \"two\" is not a number from 0 to 16; write e.g. list_ahead = 2 "
                 "(subfolders listed in the background at once) or list_ahead = 0 (off)");
    expect_error("[a]\ntype = local\npath = /x\nopen_ahead = 65\n", 0644,
                 ":4: open_ahead = \"65\" is not a number from 0 to 64; write e.g. open_ahead = 8 "
                 "(files fetched ahead of a reader going through a folder) or open_ahead = 0 "
                 "(off)");
    expect_error("[a]\ntype = local\npath = /x\nindex = maybe\n", 0644,
                 ":4: index = \"maybe\" is not on or off; write index = on (keep this cloud's "
                 "search index complete in the background) or index = off");
    expect_error("[a]\ntype = local\npath = /x\nindex_interval = soon\n", 0644,
                 ":4: index_interval = \"soon\" is not a duration; write e.g. 30m, 1h, 24h, or "
                 "forever (crawl once)");
    expect_error("[a]\ntype = local\npath = /x\nread_only = maybe\n", 0644,
                 ":4: read_only = \"maybe\" is not a boolean; write true or false");
    expect_error("[a]\ntype = local\npath = /x\nwrite_back_delay = soon\n", 0644,
                 ":4: write_back_delay = \"soon\" is not a duration from 0 to 1h; write e.g. 0 "
                 "(upload at once), 300ms or 5s");
    expect_error("[a]\ntype = local\npath = /x\nwrite_back_delay = 2h\n", 0644,
                 ":4: write_back_delay = \"2h\" is not a duration from 0 to 1h; write e.g. 0 "
                 "(upload at once), 300ms or 5s");
    expect_error("[a]\ntype = local\npath = /x\nupload_parallel = 0\n", 0644,
                 ":4: upload_parallel = \"0\" is not a number from 1 to 32; write "
                 "e.g. upload_parallel = 4 (files of this cloud uploaded at once)");
    expect_error("[a]\ntype = local\npath = /x\nupload_parallel = 33\n", 0644,
                 ":4: upload_parallel = \"33\" is not a number from 1 to 32; write "
                 "e.g. upload_parallel = 4 (files of this cloud uploaded at once)");
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
    if (cfg)        /* a cloud over the network reads ahead by default (a local one: 0) */
        CHECK_INT(cfg->clouds[0].open_ahead, SKY_DEFAULT_OPEN_AHEAD);
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

/* Load a file holding exactly `len` bytes of `data` (NULs allowed). */
static int load_bytes(const char *data, size_t len, struct sky_config **cfg, struct sky_err *e,
                      char **dir_out, char **path_out)
{
    char *dir = unit_tmpdir(), *path;
    if (asprintf(&path, "%s/skyfs.conf", dir) < 0)
        abort();
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(data, 1, len, f) == len);
        fclose(f);
    }
    *dir_out = dir;
    *path_out = path;
    return sky_config_load(path, cfg, e);
}

TEST(config_inline_comments_and_quotes)
{
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    char *dir, *path;
    int rc = load_text("[cache]   # the caches\n"
                       "max_size = 2G      # a cap\n"
                       "[docs]\t# a cloud\n"
                       "type = local # kind\n"
                       "path = /srv/a#b\n"
                       "ttl = 30s\t# tab before the comment\n"
                       "[az]\n"
                       "type = azure\n"
                       "sas_token = sv=2020&sig=ab#cd;x=y ; z\n"
                       "container = \"c #1\"   # quoted: the # is kept\n"
                       "prefix = \"say \\\"hi\\\" \\\\ \"\n",
                       0600, &cfg, &e, &dir, &path);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK(cfg->max_size == 2ULL << 30);
        CHECK_STR(cfg->clouds[0].type, "local");
        CHECK_STR(sky_cloud_get(&cfg->clouds[0], "path"), "/srv/a#b");
        CHECK_INT(cfg->clouds[0].ttl_ns, 30LL * 1000000000LL);
        CHECK_STR(sky_cloud_get(&cfg->clouds[1], "sas_token"), "sv=2020&sig=ab#cd;x=y ; z");
        CHECK_STR(sky_cloud_get(&cfg->clouds[1], "container"), "c #1");
        CHECK_STR(sky_cloud_get(&cfg->clouds[1], "prefix"), "say \"hi\" \\ ");
        sky_config_free(cfg);
    } else {
        fprintf(stderr, "  %s\n", e.msg);
    }
    unit_rmtree(dir);
    free(dir);
    free(path);
    expect_error("[a]\ntype = local\npath = \"/x\n", 0644,
                 ":3: the value of path has no closing quote");
    expect_error("[a]\ntype = local\npath = \"/x\" y\n", 0644,
                 ":3: the value of path has text after its closing quote (start a comment "
                 "with \" #\")");
}

TEST(config_bom_nul_and_names)
{
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    char *dir, *path, *want;
    static const char bom[] = "\xEF\xBB\xBF[docs]\ntype = local\npath = /x\n";
    CHECK_INT(load_bytes(bom, sizeof bom - 1, &cfg, &e, &dir, &path), 0);
    if (cfg) {
        CHECK_STR(cfg->clouds[0].name, "docs");
        sky_config_free(cfg);
        cfg = NULL;
    }
    unit_rmtree(dir);
    free(dir);
    free(path);

    static const char nul[] = "[docs]\ntype = local\npath = /x\0y\n";
    CHECK_INT(load_bytes(nul, sizeof nul - 1, &cfg, &e, &dir, &path), -EINVAL);
    if (asprintf(&want, "%s:3: holds a NUL byte; a config is text (is this the right file?)",
                 path) < 0)
        abort();
    CHECK_STR(e.msg, want);
    free(want);
    unit_rmtree(dir);
    free(dir);
    free(path);

    expect_error("[.skyfs]\ntype = local\npath = /x\n", 0644,
                 ":1: [.skyfs] is the mount's own directory (search); give the cloud another "
                 "name");
    expect_error("[caf\xe9]\ntype = local\npath = /x\n", 0644,
                 ":1: a section name is not valid UTF-8; write the file in UTF-8");
    expect_error("[\xc0\xafx]\ntype = local\npath = /x\n", 0644,
                 ":1: a section name is not valid UTF-8; write the file in UTF-8");
    expect_error("[a]\ntype = local\npath = /x\nttl = 1000000000h\n", 0644,
                 ":4: ttl = \"1000000000h\" is too long to represent; write at most 2562047h "
                 "(292 years), or forever");
    expect_error("[a]\ntype = local\npath = /x\nnegative_ttl = 99999999999999999999999\n", 0644,
                 ":4: negative_ttl = \"99999999999999999999999\" is too long to represent; "
                 "write at most 2562047h (292 years), or forever");
    int64_t d;
    CHECK_INT(sky_parse_duration("2562047h", &d), 0);
    CHECK_INT(sky_parse_duration("2562048h", &d), -ERANGE);
}

/* Expect sky_config_load(path) to fail with "<path><rest>". */
static void expect_file_error(const char *path, int code, const char *rest)
{
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    char *want;
    CHECK_INT(sky_config_load(path, &cfg, &e), -code);
    if (asprintf(&want, "%s%s", path, rest) < 0)
        abort();
    CHECK_STR(e.msg, want);
    free(want);
}

TEST(config_not_a_config_file)
{
    char *dir = unit_tmpdir(), *p;
    /* a directory */
    struct sky_err e = { 0 };
    struct sky_config *cfg = NULL;
    CHECK_INT(sky_config_load(dir, &cfg, &e), -EISDIR);
    CHECK(strstr(e.msg, ": is a directory, not a config file; pass the file") != NULL);
    /* a FIFO: must not hang */
    if (asprintf(&p, "%s/fifo.conf", dir) < 0)
        abort();
    CHECK_INT(mkfifo(p, 0600), 0);
    expect_file_error(p, EINVAL, ": is not a regular file (a FIFO); a config must be a plain "
                      "file");
    free(p);
    /* a symlink to /dev/zero */
    if (asprintf(&p, "%s/zero.conf", dir) < 0)
        abort();
    CHECK_INT(symlink("/dev/zero", p), 0);
    expect_file_error(p, EINVAL, ": is not a regular file (a character device); a config must "
                      "be a plain file");
    free(p);
    /* over the limit */
    if (asprintf(&p, "%s/big.conf", dir) < 0)
        abort();
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("[docs]\ntype = local\npath = /x\n", f);
        for (int i = 0; i < SKY_CONFIG_MAX_BYTES / 16 + 1; i++)
            fputs("# padding......\n", f);  /* 16 bytes */
        fclose(f);
    }
    CHECK_INT(sky_config_load(p, &cfg, &e), -EFBIG);
    CHECK(strstr(e.msg, "larger than a config can be (1024 KiB); pass the right file") != NULL);
    free(p);
    unit_rmtree(dir);
    free(dir);
}

/* The example in README.md's "Configuration" section parses as written:
 * the indented block that starts with "[cache]". */
TEST(config_readme_example)
{
    const char *readme = SKY_SOURCE_ROOT "/README.md";
    FILE *f = fopen(readme, "r");
    CHECK(f != NULL);
    if (!f) {
        fprintf(stderr, "  cannot open %s\n", readme);
        return;
    }
    char line[4096];
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    bool in_section = false, in_block = false;
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "## ", 3) == 0)
            in_section = strcmp(line, "## Configuration\n") == 0;
        if (!in_section)
            continue;
        if (!in_block && strcmp(line, "    [cache]\n") == 0)
            in_block = true;
        if (in_block && line[0] != ' ' && line[0] != '\n')
            break;
        if (in_block) {
            fputs(line[0] == '\n' ? line : line + 4, out);
            lines++;
        }
    }
    fclose(f);
    fclose(out);
    CHECK(lines > 20);
    char *dir = unit_tmpdir();
    char *path = unit_write_file(dir, "skyfs.conf", text, 0600);
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    int rc = sky_config_load(path, &cfg, &e);
    CHECK_INT(rc, 0);
    if (rc)
        fprintf(stderr, "  %s\n", e.msg);
    if (cfg) {
        CHECK_STR(cfg->cache_dir, "/var/cache/skyfs");
        CHECK(cfg->max_size == 10ULL << 30);
        CHECK(cfg->nclouds >= 4);
        sky_config_free(cfg);
    }
    free(text);
    unit_rmtree(dir);
    free(dir);
    free(path);
}

TEST(config_daemon_section)
{
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    char *dir, *path;
    int rc = load_text("[daemon]\nlog_level = warn\nmetrics_listen = [::1]:9101\n"
                       "[docs]\ntype = local\npath = /tmp\n", 0644, &cfg, &e, &dir, &path);
    CHECK_INT(rc, 0);
    if (cfg) {
        CHECK_INT(cfg->nclouds, 1);             /* [daemon] is no cloud */
        CHECK_INT(cfg->log_level, 2);           /* SKY_LOG_WARN */
        CHECK_STR(cfg->metrics_listen, "[::1]:9101");
        CHECK_INT(cfg->metrics_listen_line, 3);
        sky_config_free(cfg);
    }
    unit_rmtree(dir);
    free(dir);
    free(path);
    expect_error("[daemon]\nlog_level = loud\n[a]\ntype = local\npath = /tmp\n", 0644,
                 ":2: log_level = \"loud\" is not a level; write debug, info, warn or error");
    expect_error("[daemon]\nmetrics_listen = 9101\n[a]\ntype = local\npath = /tmp\n", 0644,
                 ":2: metrics_listen = \"9101\" is not an address to listen on; write IP:PORT, "
                 "e.g. 127.0.0.1:9101 or [::1]:9101");
    expect_error("[daemon]\nmax_size = 1G\n[a]\ntype = local\npath = /tmp\n", 0644,
                 ":2: unknown key \"max_size\" in [daemon]; known keys: log_level, "
                 "metrics_listen");
    expect_error("[daemon]\npath = /tmp\ntype = local\n", 0644,
                 ":1: [daemon] holds the daemon's own settings (log_level, metrics_listen), so "
                 "it cannot be a cloud; give the cloud another section name");
}
