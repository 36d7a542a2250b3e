/* test_search.c - queries over the metadata index (cache/search.c), on a
 * database filled through cache/meta.h. */
#include "check.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "../../cache/meta.h"
#include "../../cache/search.h"

static struct sky_attr file_attr(uint64_t size, const char *etag)
{
    struct sky_attr a = { .kind = SKY_FILE, .size = size, .mtime_ns = 1700000000000000000LL };
    snprintf(a.etag, sizeof a.etag, "%s", etag);
    return a;
}

static void add_item(struct sky_objmeta *om, const char *key, const char *value)
{
    CHECK_INT(sky_objmeta_add_user(om, key, value, strlen(value)), 0);
}

/* Clouds "a" and "b":
 *   a/red.txt     10 B  color=red                      text/plain  STANDARD
 *   a/blue.txt    20 B  color=blue  size=small         text/plain  GLACIER
 *   a/dir/deep.png 30 B color=blue  note=it's 100%_    image/png
 *   a/plain.txt   40 B  (no metadata)
 *   b/blue.txt    50 B  color=blue                     (no type)   Hot */
static char *make_index(void)
{
    char *dir = unit_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    struct meta *m = NULL;
    CHECK_INT(meta_open(path, &m, NULL), 0);
    uint64_t a, b, sub;
    CHECK_INT(meta_cloud_root(m, "a", &a, NULL), 0);
    CHECK_INT(meta_cloud_root(m, "b", &b, NULL), 0);
    struct sky_objmeta red = { .has_user = true }, blue = { .has_user = true },
                       deep = { .has_user = true }, bblue = { .has_user = true };
    sky_objmeta_set(&red.content_type, "text/plain");
    sky_objmeta_set(&red.storage_class, "STANDARD");
    add_item(&red, "color", "red");
    sky_objmeta_set(&blue.content_type, "text/plain");
    sky_objmeta_set(&blue.storage_class, "GLACIER");
    add_item(&blue, "color", "blue");
    add_item(&blue, "size", "small");
    sky_objmeta_set(&deep.content_type, "image/png");
    add_item(&deep, "color", "blue");
    add_item(&deep, "note", "it's 100%_");
    sky_objmeta_set(&bblue.storage_class, "Hot");
    add_item(&bblue, "color", "blue");
    struct sky_attr d = { .kind = SKY_DIR };
    struct sky_dirent top[] = {
        { "red.txt", file_attr(10, "r"), NULL, &red },
        { "blue.txt", file_attr(20, "b"), NULL, &blue },
        { "dir", d, NULL, NULL },
        { "plain.txt", file_attr(40, "p"), NULL, NULL },
    };
    CHECK_INT(meta_replace_listing(m, a, top, 4, 100, NULL), 0);
    CHECK_INT(meta_find_path(m, "a", "dir", &sub, NULL), 0);
    struct sky_dirent below[] = { { "deep.png", file_attr(30, "d"), NULL, &deep } };
    CHECK_INT(meta_replace_listing(m, sub, below, 1, 100, NULL), 0);
    struct sky_dirent other[] = { { "blue.txt", file_attr(50, "x"), NULL, &bblue } };
    CHECK_INT(meta_replace_listing(m, b, other, 1, 100, NULL), 0);
    sky_objmeta_free(&red);
    sky_objmeta_free(&blue);
    sky_objmeta_free(&deep);
    sky_objmeta_free(&bblue);
    meta_close(m);
    return dir;
}

static int append_hit(void *arg, const struct search_hit *h)
{
    char *buf = arg;
    snprintf(buf + strlen(buf), 1024 - strlen(buf), "%s/%s ", h->cloud, h->path);
    return 0;
}

/* The hits of q as "cloud/path " words, or "error N". */
static const char *run(const char *dir, const struct search_query *q)
{
    static char buf[1024];
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    struct search *s = NULL;
    buf[0] = '\0';
    struct sky_err e = { 0 };
    int rc = search_open(path, &s, &e);
    if (rc == 0)
        rc = search_run(s, q, append_hit, buf, &e);
    if (rc)
        snprintf(buf, sizeof buf, "error %d", -rc);
    search_close(s);
    return buf;
}

TEST(search_by_user_metadata)
{
    char *dir = make_index();
    struct search_query q;
    struct search_meta_test t[2];

    search_query_init(&q);
    t[0] = (struct search_meta_test){ "color", "blue" };
    q.meta = t;
    q.nmeta = 1;
    CHECK_STR(run(dir, &q), "a/blue.txt a/dir/deep.png b/blue.txt ");

    t[0].value_glob = "*e*";                        /* a glob on the value */
    CHECK_STR(run(dir, &q), "a/blue.txt a/dir/deep.png a/red.txt b/blue.txt ");
    t[0].value_glob = "BLUE";                       /* values are case-sensitive */
    CHECK_STR(run(dir, &q), "");

    t[0] = (struct search_meta_test){ "size", NULL };   /* key present */
    CHECK_STR(run(dir, &q), "a/blue.txt ");

    t[0] = (struct search_meta_test){ "color", "blue" };    /* two tests: AND */
    t[1] = (struct search_meta_test){ "size", "small" };
    q.nmeta = 2;
    CHECK_STR(run(dir, &q), "a/blue.txt ");

    /* quotes, % and _ are plain characters in a bound value */
    t[0] = (struct search_meta_test){ "note", "it's 100%_" };
    q.nmeta = 1;
    CHECK_STR(run(dir, &q), "a/dir/deep.png ");
    t[0].value_glob = "it's 100%";
    CHECK_STR(run(dir, &q), "");
    unit_rmtree(dir);
    free(dir);
}

TEST(search_metadata_with_other_criteria)
{
    char *dir = make_index();
    struct search_query q;
    struct search_meta_test t = { "color", "blue" };

    search_query_init(&q);
    q.meta = &t;
    q.nmeta = 1;
    q.cloud = "a";
    CHECK_STR(run(dir, &q), "a/blue.txt a/dir/deep.png ");
    q.path_prefix = "dir";
    CHECK_STR(run(dir, &q), "a/dir/deep.png ");
    q.path_prefix = NULL;
    q.cloud = NULL;
    q.min_size = 25;
    CHECK_STR(run(dir, &q), "a/dir/deep.png b/blue.txt ");
    q.name_glob = "*.txt";
    CHECK_STR(run(dir, &q), "b/blue.txt ");
    q.min_size = -1;
    q.iname_glob = "BLUE.*";
    q.name_glob = NULL;
    CHECK_STR(run(dir, &q), "a/blue.txt b/blue.txt ");
    q.limit = 1;
    CHECK_STR(run(dir, &q), "a/blue.txt ");

    search_query_init(&q);
    q.content_type_glob = "text/*";
    CHECK_STR(run(dir, &q), "a/blue.txt a/red.txt ");
    q.storage_class_glob = "GLACIER";
    CHECK_STR(run(dir, &q), "a/blue.txt ");
    search_query_init(&q);
    q.storage_class_glob = "*";                 /* known at all */
    CHECK_STR(run(dir, &q), "a/blue.txt a/red.txt b/blue.txt ");

    search_query_init(&q);
    t.key = "";
    q.meta = &t;
    q.nmeta = 1;
    CHECK_STR(run(dir, &q), "error 22");        /* a test needs a key */
    unit_rmtree(dir);
    free(dir);
}

/* An index written by an older skyfs still answers the old criteria and
 * says what to do for the new ones. */
TEST(search_old_index_refuses_metadata_tests)
{
    char *dir = unit_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "CREATE TABLE entries(ino INTEGER PRIMARY KEY, parent INTEGER, "
                           "cloud TEXT, name TEXT, path TEXT, kind INTEGER, size INTEGER, "
                           "mtime_ns INTEGER);"
                           "INSERT INTO entries VALUES(5,2,'c','x.txt','x.txt',1,3,0);"
                           "PRAGMA user_version=2;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct search_query q;
    search_query_init(&q);
    q.name_glob = "*.txt";
    CHECK_STR(run(dir, &q), "c/x.txt ");
    q.content_type_glob = "text/*";
    CHECK_STR(run(dir, &q), "error 71");        /* EPROTO */
    unit_rmtree(dir);
    free(dir);
}
