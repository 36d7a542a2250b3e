/* test_meta_trigrams.c - the trigram index of names that cache/meta.c
 * keeps (schema 4): in step with the entries after every kind of change,
 * and built when a cache of schema 3 is upgraded. */
#include "check.h"

#include <errno.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "../../cache/meta.h"

static struct meta *open_meta(const char *dir)
{
    char path[512];
    struct sky_err e = { 0 };
    struct meta *m = NULL;
    snprintf(path, sizeof path, "%s/meta.db", dir);
    int rc = meta_open(path, NULL, &m, &e);
    if (rc)
        fprintf(stderr, "  meta_open: %s\n", e.msg);
    CHECK_INT(rc, 0);
    return m;
}

static struct sky_attr attr_of(enum sky_kind kind, const char *etag)
{
    struct sky_attr a = { .kind = kind, .size = kind == SKY_FILE ? 7 : 0, .mtime_ns = 1 };
    snprintf(a.etag, sizeof a.etag, "%s", etag);
    return a;
}

static uint64_t ino_at(struct meta *m, const char *cloud, const char *path)
{
    uint64_t ino = 0;
    return meta_find_path(m, cloud, path, &ino, NULL) == 0 ? ino : 0;
}

static sqlite3 *open_raw(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    return db;
}

static long long one_number(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "  %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return n;
}

/* How far the trigram index skyfs kept is from one built afresh from the
 * entries as they are: the (trigram, inode) pairs only one of them has;
 * -1 when they cannot be compared (no index).  (FTS5's integrity-check
 * does not compare an index without positions with its content.) */
static long long trigram_drift(const char *dir)
{
    sqlite3 *db = open_raw(dir);
    int rc = sqlite3_exec(db,
        "CREATE VIRTUAL TABLE temp.fresh USING fts5(name, content='', "
        " tokenize='trigram case_sensitive 0', detail=none, columnsize=0);"
        "INSERT INTO temp.fresh(rowid, name) SELECT ino, name FROM main.entries;"
        "CREATE VIRTUAL TABLE temp.kept USING fts5vocab(main, entry_trigrams, instance);"
        "CREATE VIRTUAL TABLE temp.want USING fts5vocab(temp, fresh, instance);",
        NULL, NULL, NULL);
    long long n = -1;
    if (rc == SQLITE_OK && one_number(db, "SELECT count(*) FROM temp.kept") > 0)
        n = one_number(db, "SELECT (SELECT count(*) FROM (SELECT term, doc FROM temp.kept "
                           "EXCEPT SELECT term, doc FROM temp.want)) + "
                           "(SELECT count(*) FROM (SELECT term, doc FROM temp.want "
                           "EXCEPT SELECT term, doc FROM temp.kept))");
    sqlite3_close(db);
    return n;
}

/* The inodes whose names hold `three` (3 characters), as "ino ino ". */
static const char *matching(const char *dir, const char *three)
{
    static char buf[256];
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT rowid FROM entry_trigrams WHERE entry_trigrams MATCH "
             "'\"%s\"' ORDER BY rowid", three);
    sqlite3 *db = open_raw(dir);
    sqlite3_stmt *st = NULL;
    buf[0] = '\0';
    CHECK_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%lld ",
                 (long long)sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return buf;
}

static void list(struct meta *m, uint64_t dir, const char *const *names, const char *etag)
{
    struct sky_dirent ents[8];
    size_t n = 0;
    for (; names[n]; n++) {
        bool is_dir = strchr(names[n], '.') == NULL;
        ents[n] = (struct sky_dirent){ names[n], attr_of(is_dir ? SKY_DIR : SKY_FILE, etag),
                                       NULL, NULL };
    }
    CHECK_INT(meta_replace_listing(m, dir, ents, n, 100, NULL), 0);
}

TEST(meta_trigram_index_follows_every_change)
{
    char *dir = unit_tmpdir();
    struct meta *m = open_meta(dir);
    uint64_t c, d, docs, old, deep;
    CHECK_INT(meta_cloud_root(m, "c", &c, NULL), 0);
    CHECK_INT(meta_cloud_root(m, "d", &d, NULL), 0);
    list(m, c, (const char *[]){ "alpha.txt", "beta.txt", "Gamma.TXT", "docs", "old", NULL },
         "e1");
    docs = ino_at(m, "c", "docs");
    old = ino_at(m, "c", "old");
    list(m, docs, (const char *[]){ "report-2024.pdf", "notes.md", NULL }, "e1");
    list(m, old, (const char *[]){ "x1.log", "deep", NULL }, "e1");
    deep = ino_at(m, "c", "old/deep");
    list(m, deep, (const char *[]){ "y.log", "report.old", NULL }, "e1");
    list(m, d, (const char *[]){ "elsewhere.txt", NULL }, "e1");
    CHECK_INT(trigram_drift(dir), 0);
    uint64_t report = ino_at(m, "c", "docs/report-2024.pdf");
    char want[64];
    snprintf(want, sizeof want, "%llu %llu ", (unsigned long long)report,
             (unsigned long long)ino_at(m, "c", "old/deep/report.old"));
    CHECK_STR(matching(dir, "REP"), want);              /* case folded */

    /* a relisting: one gone, one new, one changed */
    list(m, c, (const char *[]){ "beta.txt", "delta.txt", "Gamma.TXT", "docs", "old", NULL },
         "e2");
    CHECK_INT(ino_at(m, "c", "alpha.txt"), 0);
    CHECK_INT(trigram_drift(dir), 0);
    CHECK_STR(matching(dir, "alp"), "");

    /* renames: the name, the parent only, a directory, over an entry */
    CHECK_INT(meta_rename(m, ino_at(m, "c", "beta.txt"), c, "beta-renamed.txt", NULL), 0);
    CHECK_INT(trigram_drift(dir), 0);
    CHECK_INT(meta_rename(m, ino_at(m, "c", "docs/notes.md"), old, "notes.md", NULL), 0);
    CHECK_INT(meta_rename(m, old, c, "archive", NULL), 0);
    CHECK_INT(trigram_drift(dir), 0);
    CHECK_INT(meta_rename(m, ino_at(m, "c", "delta.txt"), c, "Gamma.TXT", NULL), 0);
    CHECK_INT(trigram_drift(dir), 0);

    /* removals: a tree, a directory that became a file, a whole cloud */
    CHECK_INT(meta_remove(m, ino_at(m, "c", "archive"), NULL), 0);
    CHECK_INT(trigram_drift(dir), 0);
    struct sky_attr f = attr_of(SKY_FILE, "e3");
    CHECK_INT(meta_set_attr(m, docs, &f, 200, NULL), 0);
    CHECK_INT(ino_at(m, "c", "docs/report-2024.pdf"), 0);
    CHECK_INT(trigram_drift(dir), 0);
    CHECK_INT(meta_remove(m, d, NULL), 0);
    CHECK_INT(trigram_drift(dir), 0);
    CHECK_STR(matching(dir, "rep"), "");

    /* and across a reopen */
    meta_close(m);
    m = open_meta(dir);
    uint64_t ino = 0;
    struct sky_attr a = attr_of(SKY_FILE, "e4");
    CHECK_INT(meta_upsert(m, c, "fresh-report.txt", &a, NULL, 300, &ino, NULL), 0);
    CHECK_INT(trigram_drift(dir), 0);
    snprintf(want, sizeof want, "%llu ", (unsigned long long)ino);
    CHECK_STR(matching(dir, "rep"), want);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* The schema-3 tables, as the skyfs before the trigram index made them. */
static const char schema_v3[] =
    "CREATE TABLE entries(ino INTEGER PRIMARY KEY AUTOINCREMENT, parent INTEGER NOT NULL,"
    " cloud TEXT, name TEXT NOT NULL, path TEXT NOT NULL, kind INTEGER NOT NULL,"
    " size INTEGER NOT NULL DEFAULT 0, mtime_ns INTEGER NOT NULL DEFAULT 0,"
    " mode INTEGER NOT NULL DEFAULT 0, uid INTEGER NOT NULL DEFAULT 0,"
    " gid INTEGER NOT NULL DEFAULT 0, has INTEGER NOT NULL DEFAULT 0,"
    " etag TEXT NOT NULL DEFAULT '', link TEXT, fetched_at INTEGER NOT NULL DEFAULT 0,"
    " listed_at INTEGER NOT NULL DEFAULT 0, content_type TEXT, storage_class TEXT,"
    " meta_at INTEGER NOT NULL DEFAULT 0, UNIQUE(parent, name));"
    "CREATE INDEX entries_cloud_path ON entries(cloud, path);"
    "CREATE INDEX entries_name ON entries(name);"
    "CREATE TABLE user_meta(ino INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY(ino, key)) WITHOUT ROWID;"
    "CREATE INDEX user_meta_key_value ON user_meta(key, value);"
    "CREATE TRIGGER entries_gone AFTER DELETE ON entries"
    " BEGIN DELETE FROM user_meta WHERE ino=old.ino; END;"
    "CREATE TRIGGER entries_new_version AFTER UPDATE OF etag ON entries"
    " WHEN old.etag IS NOT new.etag BEGIN DELETE FROM user_meta WHERE ino=new.ino; END;"
    "INSERT INTO entries(ino,parent,cloud,name,path,kind) VALUES(1,0,NULL,'','',2);"
    "INSERT INTO entries(ino,parent,cloud,name,path,kind) VALUES(7,1,'c','c','',2);"
    "INSERT INTO entries(ino,parent,cloud,name,path,kind,size,etag)"
    " VALUES(9,7,'c','old-report.txt','old-report.txt',1,5,'e1');"
    "INSERT INTO entries(ino,parent,cloud,name,path,kind,size,etag)"
    " VALUES(12,7,'c','Photo.JPG','Photo.JPG',1,5,'e1');"
    "PRAGMA user_version=3;";

/* A schema-3 cache opens as version 5 with its names indexed, keeps its
 * inodes, and stays in step afterwards. */
TEST(meta_upgrades_a_version_3_database_with_trigrams)
{
    char *dir = unit_tmpdir();
    sqlite3 *db = open_raw(dir);
    CHECK_INT(sqlite3_exec(db, schema_v3, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct meta *m = open_meta(dir);
    db = open_raw(dir);
    CHECK_INT(one_number(db, "PRAGMA user_version"), 5);
    sqlite3_close(db);
    CHECK_INT(ino_at(m, "c", "old-report.txt"), 9);
    CHECK_STR(matching(dir, "rep"), "9 ");
    CHECK_STR(matching(dir, "jpg"), "12 ");
    CHECK_INT(trigram_drift(dir), 0);
    CHECK_INT(meta_rename(m, 9, 7, "new-report.txt", NULL), 0);
    CHECK_INT(trigram_drift(dir), 0);
    CHECK_STR(matching(dir, "new"), "9 ");
    meta_close(m);
    m = open_meta(dir);                         /* opens again with nothing to do */
    CHECK_STR(matching(dir, "rep"), "9 ");
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* An upgrade that fails says so and leaves the cache as it was. */
TEST(meta_failed_trigram_upgrade_changes_nothing)
{
    char *dir = unit_tmpdir();
    sqlite3 *db = open_raw(dir);
    /* a damaged schema-3 cache: `entries` without its name column */
    CHECK_INT(sqlite3_exec(db, "CREATE TABLE entries(ino INTEGER PRIMARY KEY, path TEXT);"
                               "INSERT INTO entries VALUES(1, '');"
                               "PRAGMA user_version=3;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    struct meta *m = NULL;
    struct sky_err e = { 0 };
    int rc = meta_open(path, NULL, &m, &e);
    CHECK(rc < 0);
    CHECK(m == NULL);
    CHECK(strstr(e.msg, "upgrading") != NULL);
    db = open_raw(dir);
    CHECK_INT(one_number(db, "PRAGMA user_version"), 3);
    CHECK_INT(one_number(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'entry_tri%'"),
              0);
    sqlite3_close(db);
    unit_rmtree(dir);
    free(dir);
}
