/* test_search.c - queries over the metadata index (cache/search.c), on a
 * database filled through cache/meta.h; name patterns through the trigram
 * index and by scanning, which must give the same hits. */
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
    CHECK_INT(meta_open(path, NULL, &m, NULL), 0);
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

#define HITS_MAX 4096

static int append_hit(void *arg, const struct search_hit *h)
{
    char *buf = arg;
    snprintf(buf + strlen(buf), HITS_MAX - strlen(buf), "%s/%s ", h->cloud, h->path);
    return 0;
}

/* The hits of q as "cloud/path " words, or "error N"; with the trigram
 * index (when the database has it) or, with `scan`, without. */
static const char *run_how(const char *dir, const struct search_query *q, bool scan)
{
    static char buf[HITS_MAX];
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    struct search *s = NULL;
    buf[0] = '\0';
    struct sky_err e = { 0 };
    int rc = search_open(path, &s, &e);
    if (rc == 0) {
        search_use_trigrams(s, !scan);
        rc = search_run(s, q, append_hit, buf, &e);
    }
    if (rc)
        snprintf(buf, sizeof buf, "error %d", -rc);
    search_close(s);
    return buf;
}

static const char *run(const char *dir, const struct search_query *q)
{
    return run_how(dir, q, false);
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
    q.name_glob = "*x.tx*";             /* no trigram index: a scan */
    CHECK_STR(run(dir, &q), "c/x.txt ");
    q.content_type_glob = "text/*";
    CHECK_STR(run(dir, &q), "error 71");        /* EPROTO */
    unit_rmtree(dir);
    free(dir);
}

/* ---- name patterns: the trigram index against the scan ------------------- */

/* Names for the pattern tests, in cloud "n" (and "n/sub"): ASCII in both
 * cases, Unicode, names of 1 and 2 characters, GLOB and LIKE specials,
 * quotes, and two that are not valid UTF-8. */
static const char *const odd_names[] = {
    "report.txt", "Report-2024.TXT", "REPORT_final.pdf", "summary.md",
    "\xc3\x89t\xc3\xa9.txt",                    /* Été.txt */
    "\xc3\xa9t\xc3\xa9.txt",                    /* été.txt */
    "na\xc3\xafve caf\xc3\xa9.md",              /* naïve café.md */
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x95\xe3\x82\xa1"
    "\xe3\x82\xa4\xe3\x83\xab.txt",             /* 日本語のファイル.txt */
    "a", "ab", "AB", "x.c", "\xc3\xa9",         /* é */
    "[draft] notes.txt", "a*b?c.txt", "100%_done.log", "say \"hi\".txt",
    "back\\slash.txt", "it's.txt", "IMG_0001.JPG", "img_0002.jpg", "img_0003.jpeg",
    "photo.JpG",
    "ab\xc3\xa9\x80x",                          /* "abé" and a stray continuation byte */
    "bad\xc3(x.txt",                            /* a lead byte without its continuation */
};

static char *make_odd_index(void)
{
    char *dir = unit_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    struct meta *m = NULL;
    CHECK_INT(meta_open(path, NULL, &m, NULL), 0);
    uint64_t root, sub;
    CHECK_INT(meta_cloud_root(m, "n", &root, NULL), 0);
    enum { N = sizeof odd_names / sizeof *odd_names };
    struct sky_dirent ents[N + 1];
    for (size_t i = 0; i < N; i++)
        ents[i] = (struct sky_dirent){ odd_names[i], file_attr(i, "e"), NULL, NULL };
    ents[N] = (struct sky_dirent){ "sub", { .kind = SKY_DIR }, NULL, NULL };
    CHECK_INT(meta_replace_listing(m, root, ents, N + 1, 100, NULL), 0);
    CHECK_INT(meta_find_path(m, "n", "sub", &sub, NULL), 0);
    struct sky_dirent deep[] = { { "deep-report.txt", file_attr(1, "d"), NULL, NULL } };
    CHECK_INT(meta_replace_listing(m, sub, deep, 1, 100, NULL), 0);
    meta_close(m);
    return dir;
}

/* Every pattern, as --name and as --iname, gives the same hits through
 * the trigram index as by scanning. */
TEST(search_trigrams_give_the_hits_of_a_scan)
{
    static const char *const patterns[] = {
        "*report*", "*REPORT*", "*port*", "report*", "*.txt", "*.TXT", "*txt", "*Report-20??.*",
        "*\xc3\xa9t\xc3\xa9*", "*\xc3\x89T\xc3\x89*", "*\xc3\x89t\xc3\xa9*",
        "*\xe3\x83\x95\xe3\x82\xa1\xe3\x82\xa4\xe3\x83\xab*",
        "*\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae*",
        "*caf\xc3\xa9*", "*na*ve*", "*\xc3\xaf*", "*ve caf*",
        "a", "ab", "AB", "??", "?", "*b*", "?b", "x.c", "*.c", "\xc3\xa9",
        "[ar]*", "*[_-]*", "*[!a]*", "*[^.]txt", "*[]]*", "[[]draft]*", "*[[]*", "*[*]*",
        "*[?]*", "*t [n]ot*", "i[m]g_*", "*[A-Z][A-Z][A-Z]*", "[", "*[abc", "*[^abc",
        "*100%_*", "*0%_d*", "*\"hi\"*", "*y \"h*", "*\\\\*", "*k\\\\sl*", "*'s.*", "*it's*",
        "img_000?.jpg", "*_000[12].*", "*.jp*g", "*jpg", "*JPG", "*.jpeg", "IMG*", "*photo*",
        "*ab\xc3\xa9*", "*\xc3\xa9\x80*", "*b\xc3\xa9\x80x", "*d\xc3(x*", "*\xc3(x.*",
        "*abc*", "*", "***", "*deep-rep*", "deep*", "*ummar*",
    };
    char *dir = make_odd_index();
    struct search_query q;
    int differ = 0;
    for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
        for (int insensitive = 0; insensitive < 2; insensitive++) {
            search_query_init(&q);
            *(insensitive ? &q.iname_glob : &q.name_glob) = patterns[i];
            char *indexed = strdup(run(dir, &q));
            const char *scanned = run_how(dir, &q, true);
            if (strcmp(indexed, scanned) != 0) {
                fprintf(stderr, "  --%s '%s': index \"%s\", scan \"%s\"\n",
                        insensitive ? "iname" : "name", patterns[i], indexed, scanned);
                differ++;
            }
            free(indexed);
        }
    }
    CHECK_INT(differ, 0);

    /* and the hits are right */
    search_query_init(&q);
    q.name_glob = "*port*";
    CHECK_STR(run(dir, &q), "n/Report-2024.TXT n/report.txt n/sub/deep-report.txt ");
    q.name_glob = NULL;
    q.iname_glob = "*PORT*";
    CHECK_STR(run(dir, &q), "n/REPORT_final.pdf n/Report-2024.TXT n/report.txt "
                            "n/sub/deep-report.txt ");
    q.iname_glob = "*\xc3\xa9t\xc3\xa9*";       /* ASCII letters only fold */
    CHECK_STR(run(dir, &q), "n/\xc3\xa9t\xc3\xa9.txt ");
    q.iname_glob = "*.jpg";
    CHECK_STR(run(dir, &q), "n/IMG_0001.JPG n/img_0002.jpg n/photo.JpG ");
    q.iname_glob = "i[m]g_*";                   /* --iname has classes too */
    CHECK_STR(run(dir, &q), "n/IMG_0001.JPG n/img_0002.jpg n/img_0003.jpeg ");
    q.iname_glob = NULL;
    q.name_glob = "*\xe3\x83\x95\xe3\x82\xa1\xe3\x82\xa4\xe3\x83\xab*";
    CHECK_STR(run(dir, &q), "n/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x95"
                            "\xe3\x82\xa1\xe3\x82\xa4\xe3\x83\xab.txt ");
    q.name_glob = "[[]draft]*";
    CHECK_STR(run(dir, &q), "n/[draft] notes.txt ");
    q.name_glob = "*100%_*";
    CHECK_STR(run(dir, &q), "n/100%_done.log ");
    q.name_glob = "*\"hi\"*";
    CHECK_STR(run(dir, &q), "n/say \"hi\".txt ");
    q.name_glob = "??";
    CHECK_STR(run(dir, &q), "n/AB n/ab ");
    unit_rmtree(dir);
    free(dir);
}

/* Remove `name`'s trigrams from the index behind skyfs's back. */
static void unindex(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_prepare_v2(db, "INSERT INTO entry_trigrams(entry_trigrams,rowid,name) "
                                 "SELECT 'delete',ino,name FROM entries WHERE name=?1", -1, &st,
                                 NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    CHECK_INT(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

struct find_one {
    const char *path;
    int seen, hits;
};

static int note_hit(void *arg, const struct search_hit *h)
{
    struct find_one *f = arg;
    f->hits++;
    f->seen += strcmp(h->path, f->path) == 0;
    return 0;
}

/* Whether q finds `path` (in any cloud); sets *hits. */
static bool finds(const char *dir, const struct search_query *q, const char *path, int *hits)
{
    char db[512];
    snprintf(db, sizeof db, "%s/meta.db", dir);
    struct search *s = NULL;
    struct find_one f = { path, 0, 0 };
    CHECK_INT(search_open(db, &s, NULL), 0);
    CHECK_INT(search_run(s, q, note_hit, &f, NULL), 0);
    search_close(s);
    *hits = f.hits;
    return f.seen == 1;
}

/* A pattern few names match is answered from the trigram index (a name
 * missing from it is not found); one most names match ("*.dat" here) reads
 * the table instead (the missing name is found). */
TEST(search_uses_the_trigram_index_only_when_selective)
{
    enum { N = 2000 };
    char *dir = unit_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    struct meta *m = NULL;
    CHECK_INT(meta_open(path, NULL, &m, NULL), 0);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "big", &root, NULL), 0);
    struct sky_dirent *ents = calloc(N, sizeof *ents);
    char (*names)[16] = calloc(N, sizeof *names);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "f%04d.dat", i);
        ents[i] = (struct sky_dirent){ names[i], file_attr(1, "e"), NULL, NULL };
    }
    CHECK_INT(meta_replace_listing(m, root, ents, N, 100, NULL), 0);
    meta_close(m);
    free(ents);
    free(names);

    struct search_query q;
    search_query_init(&q);
    q.name_glob = "*1234*";
    CHECK_STR(run(dir, &q), "big/f1234.dat ");
    unindex(dir, "f1234.dat");
    CHECK_STR(run(dir, &q), "");                    /* the index answered */
    CHECK_STR(run_how(dir, &q, true), "big/f1234.dat ");
    int hits;
    q.name_glob = "*4.dat";                         /* 200 of 2,000: selective */
    CHECK(!finds(dir, &q, "f1234.dat", &hits));
    CHECK_INT(hits, 199);
    q.name_glob = "*.dat";                          /* all of them: a scan */
    CHECK(finds(dir, &q, "f1234.dat", &hits));
    CHECK_INT(hits, N);
    q.name_glob = NULL;
    q.iname_glob = "*1234*";
    CHECK_STR(run(dir, &q), "");
    CHECK_STR(run_how(dir, &q, true), "big/f1234.dat ");
    unit_rmtree(dir);
    free(dir);
}
