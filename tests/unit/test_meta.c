/* test_meta.c - the metadata cache (cache/meta.c). */
#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <sqlite3.h>

#include "../../cache/meta.h"
#include "../../lib/clock.h"

static struct meta *meta_test_open(const char *dir)
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

static struct sky_attr attr_of(enum sky_kind kind, uint64_t size, const char *etag)
{
    struct sky_attr a = { .kind = kind, .size = size, .mtime_ns = 1700000000123456789LL,
                          .mode = 0640, .uid = 1000, .gid = 100,
                          .has = SKY_HAS_MODE | SKY_HAS_MTIME };
    snprintf(a.etag, sizeof a.etag, "%s", etag);
    return a;
}

/* The wall clock, in ns. */
static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Upsert child `name` of `parent`; returns its inode (0 on failure). */
static uint64_t put(struct meta *m, uint64_t parent, const char *name, enum sky_kind kind)
{
    struct sky_attr a = attr_of(kind, kind == SKY_FILE ? 42 : 0, kind == SKY_FILE ? "e1" : "");
    uint64_t ino = 0;
    struct sky_err e = { 0 };
    int rc = meta_upsert(m, parent, name, &a, NULL, 1000, &ino, &e);
    if (rc)
        fprintf(stderr, "  upsert %s: %s\n", name, e.msg);
    CHECK_INT(rc, 0);
    return ino;
}

static uint64_t ino_at(struct meta *m, const char *cloud, const char *path)
{
    uint64_t ino = 0;
    return meta_find_path(m, cloud, path, &ino, NULL) == 0 ? ino : 0;
}

static char *path_of(struct meta *m, uint64_t ino)
{
    struct meta_entry ent;
    if (meta_get(m, ino, &ent, NULL) != 0)
        return strdup("(missing)");
    char *p = strdup(ent.path);
    meta_entry_free(&ent);
    return p;
}

TEST(meta_root_and_cloud_roots)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    struct meta_entry ent;
    CHECK_INT(meta_get(m, META_ROOT_INO, &ent, NULL), 0);
    CHECK_INT(ent.attr.kind, SKY_DIR);
    CHECK_INT(ent.parent, 0);
    CHECK(ent.cloud == NULL);
    CHECK_STR(ent.name, "");
    meta_entry_free(&ent);

    uint64_t a = 0, a2 = 0, b = 0;
    CHECK_INT(meta_cloud_root(m, "photos", &a, NULL), 0);
    CHECK_INT(meta_cloud_root(m, "docs", &b, NULL), 0);
    CHECK_INT(meta_cloud_root(m, "photos", &a2, NULL), 0);
    CHECK_INT(a, a2);
    CHECK(a != b && a > META_ROOT_INO && b > META_ROOT_INO);
    CHECK_INT(meta_get(m, a, &ent, NULL), 0);
    CHECK_STR(ent.cloud, "photos");
    CHECK_STR(ent.name, "photos");
    CHECK_STR(ent.path, "");
    CHECK_INT(ent.parent, META_ROOT_INO);
    CHECK_INT(ent.attr.kind, SKY_DIR);
    meta_entry_free(&ent);
    CHECK_INT(ino_at(m, "photos", ""), a);
    CHECK_INT(meta_cloud_root(m, "a/b", &a2, NULL), -EINVAL);
    CHECK_INT(meta_remove(m, META_ROOT_INO, NULL), -EBUSY);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

TEST(meta_inodes_stable_across_reopen)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root, d, f, gone;
    CHECK_INT(meta_cloud_root(m, "s3", &root, NULL), 0);
    d = put(m, root, "dir", SKY_DIR);
    f = put(m, d, "file.txt", SKY_FILE);
    gone = put(m, root, "temp", SKY_FILE);
    CHECK_INT(meta_remove(m, gone, NULL), 0);
    meta_close(m);

    m = meta_test_open(dir);
    uint64_t root2;
    CHECK_INT(meta_cloud_root(m, "s3", &root2, NULL), 0);
    CHECK_INT(root2, root);
    CHECK_INT(ino_at(m, "s3", "dir"), d);
    CHECK_INT(ino_at(m, "s3", "dir/file.txt"), f);
    struct meta_entry ent;
    CHECK_INT(meta_lookup(m, d, "file.txt", &ent, NULL), 0);
    CHECK_INT(ent.ino, f);
    CHECK_STR(ent.path, "dir/file.txt");
    CHECK_STR(ent.cloud, "s3");
    meta_entry_free(&ent);
    /* a removed inode is never handed out again, even after reopen */
    uint64_t again = put(m, root, "temp", SKY_FILE);
    CHECK(again > gone);
    CHECK(again != gone);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

TEST(meta_upsert_and_lookup)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root, ino = 0, ino2 = 0;
    struct sky_err e = { 0 };
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    struct sky_attr a = attr_of(SKY_FILE, 1234, "\"etag-1\"");
    CHECK_INT(meta_upsert(m, root, "report.pdf", &a, NULL, 555, &ino, &e), 0);
    struct meta_entry ent;
    CHECK_INT(meta_lookup(m, root, "report.pdf", &ent, NULL), 0);
    CHECK_INT(ent.ino, ino);
    CHECK_INT(ent.parent, root);
    CHECK_INT(ent.attr.kind, SKY_FILE);
    CHECK_INT(ent.attr.size, 1234);
    CHECK_INT(ent.attr.mtime_ns, a.mtime_ns);
    CHECK_INT(ent.attr.mode, 0640);
    CHECK_INT(ent.attr.uid, 1000);
    CHECK_INT(ent.attr.gid, 100);
    CHECK_INT(ent.attr.has, SKY_HAS_MODE | SKY_HAS_MTIME);
    CHECK_STR(ent.attr.etag, "\"etag-1\"");
    CHECK_INT(ent.fetched_at, 555);
    CHECK_INT(ent.listed_at, 0);
    CHECK(ent.link == NULL);
    meta_entry_free(&ent);

    a.size = 99;
    CHECK_INT(meta_upsert(m, root, "report.pdf", &a, NULL, 600, &ino2, NULL), 0);
    CHECK_INT(ino2, ino);
    CHECK_INT(meta_get(m, ino, &ent, NULL), 0);
    CHECK_INT(ent.attr.size, 99);
    CHECK_INT(ent.fetched_at, 600);
    meta_entry_free(&ent);

    CHECK_INT(meta_lookup(m, root, "nope", &ent, NULL), -ENOENT);
    CHECK_INT(meta_get(m, 999999, &ent, NULL), -ENOENT);
    CHECK_INT(meta_upsert(m, ino, "child", &a, NULL, 1, NULL, &e), -ENOTDIR);
    CHECK_INT(meta_upsert(m, root, "a/b", &a, NULL, 1, NULL, &e), -EINVAL);
    CHECK_INT(meta_upsert(m, root, "", &a, NULL, 1, NULL, &e), -EINVAL);
    CHECK_INT(meta_upsert(m, 424242, "x", &a, NULL, 1, NULL, &e), -ENOENT);

    /* symlinks keep a known target while their version stays */
    struct sky_attr l = attr_of(SKY_LINK, 6, "L1");
    uint64_t lino;
    CHECK_INT(meta_upsert(m, root, "link", &l, "target", 1, &lino, NULL), 0);
    CHECK_INT(meta_upsert(m, root, "link", &l, NULL, 2, NULL, NULL), 0);
    CHECK_INT(meta_get(m, lino, &ent, NULL), 0);
    CHECK_STR(ent.link, "target");
    meta_entry_free(&ent);
    snprintf(l.etag, sizeof l.etag, "L2");
    CHECK_INT(meta_upsert(m, root, "link", &l, NULL, 3, NULL, NULL), 0);
    CHECK_INT(meta_get(m, lino, &ent, NULL), 0);
    CHECK(ent.link == NULL);
    meta_entry_free(&ent);
    CHECK_INT(meta_set_link(m, lino, "other", NULL), 0);
    CHECK_INT(meta_get(m, lino, &ent, NULL), 0);
    CHECK_STR(ent.link, "other");
    meta_entry_free(&ent);

    /* a directory that becomes a file loses its descendants */
    uint64_t d = put(m, root, "x", SKY_DIR);
    uint64_t sub = put(m, d, "y", SKY_DIR);
    put(m, sub, "z", SKY_FILE);
    CHECK_INT(meta_set_listed(m, d, 77, NULL), 0);
    struct sky_attr f = attr_of(SKY_FILE, 1, "now-a-file");
    CHECK_INT(meta_upsert(m, root, "x", &f, NULL, 5, &ino2, NULL), 0);
    CHECK_INT(ino2, d);
    CHECK_INT(ino_at(m, "c", "x/y"), 0);
    CHECK_INT(ino_at(m, "c", "x/y/z"), 0);
    CHECK_INT(meta_get(m, d, &ent, NULL), 0);
    CHECK_INT(ent.attr.kind, SKY_FILE);
    CHECK_INT(ent.listed_at, 0);
    meta_entry_free(&ent);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* atime and ctime are kept; a refresh from the cloud (upsert, listing)
 * never moves them back while the entry holds the same content (same
 * etag, or a copy: same size and mtime), nor a directory's mtime; a
 * change made through the mount (set_attr) sets them as given; a new
 * version of a file takes the cloud's. */
TEST(meta_times_survive_refreshes)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    uint64_t f = put(m, root, "f", SKY_FILE);
    uint64_t d = put(m, root, "d", SKY_DIR);
    struct sky_attr a = attr_of(SKY_FILE, 42, "e1");
    a.atime_ns = 3000;
    a.ctime_ns = 2000;
    a.has |= SKY_HAS_ATIME | SKY_HAS_CTIME;
    CHECK_INT(meta_set_attr(m, f, &a, 10, NULL), 0);
    struct meta_entry ent;
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.atime_ns, 3000);
    CHECK_INT(ent.attr.ctime_ns, 2000);
    CHECK((ent.attr.has & (SKY_HAS_ATIME | SKY_HAS_CTIME)) == (SKY_HAS_ATIME | SKY_HAS_CTIME));
    meta_entry_free(&ent);

    struct sky_attr older = a;                  /* the cloud stored older times */
    older.atime_ns = 1000;
    older.ctime_ns = 1500;
    uint64_t ino;
    CHECK_INT(meta_upsert(m, root, "f", &older, NULL, 20, &ino, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.atime_ns, 3000);
    CHECK_INT(ent.attr.ctime_ns, 2000);
    meta_entry_free(&ent);
    struct sky_attr silent = a;                 /* ... or none at all */
    silent.has &= ~(SKY_HAS_ATIME | SKY_HAS_CTIME);
    silent.atime_ns = silent.ctime_ns = 0;
    CHECK_INT(meta_upsert(m, root, "f", &silent, NULL, 30, &ino, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.atime_ns, 3000);
    CHECK_INT(ent.attr.ctime_ns, 2000);
    meta_entry_free(&ent);
    struct sky_attr later = a;      /* later news (than set_attr, our own change) is taken */
    later.atime_ns = wall_ns() + 1000000000LL;
    CHECK_INT(meta_upsert(m, root, "f", &later, NULL, 40, &ino, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.atime_ns, later.atime_ns);
    meta_entry_free(&ent);
    CHECK_INT(meta_set_attr(m, f, &older, 50, NULL), 0);   /* utime: as given */
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.atime_ns, 1000);
    CHECK_INT(ent.attr.ctime_ns, 1500);
    meta_entry_free(&ent);
    struct sky_attr copy = older;               /* a copy: new etag, same bytes */
    copy.atime_ns = 10;
    snprintf(copy.etag, sizeof copy.etag, "e1-copy");
    CHECK_INT(meta_upsert(m, root, "f", &copy, NULL, 60, &ino, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.atime_ns, 1000);
    meta_entry_free(&ent);
    struct sky_attr v2 = older;                 /* a new version: the cloud's */
    v2.atime_ns = 10;
    v2.mtime_ns += 1;
    snprintf(v2.etag, sizeof v2.etag, "e2");
    CHECK_INT(meta_upsert(m, root, "f", &v2, NULL, 65, &ino, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.atime_ns, 10);
    meta_entry_free(&ent);

    CHECK_INT(meta_set_atime(m, f, 7777, NULL), 0);      /* a read: the atime alone */
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.atime_ns, 7777);
    CHECK_INT(ent.attr.ctime_ns, 1500);
    CHECK_INT(ent.attr.mtime_ns, v2.mtime_ns);
    CHECK_STR(ent.attr.etag, "e2");
    CHECK(ent.attr.has & SKY_HAS_ATIME);
    meta_entry_free(&ent);
    CHECK_INT(meta_set_atime(m, 987654, 1, NULL), -ENOENT);

    struct sky_attr da = attr_of(SKY_DIR, 0, "");
    da.mtime_ns = 9000;
    CHECK_INT(meta_set_attr(m, d, &da, 10, NULL), 0);
    struct sky_attr marker = attr_of(SKY_DIR, 0, "");    /* its marker's older mtime */
    marker.mtime_ns = 100;
    CHECK_INT(meta_upsert(m, root, "d", &marker, NULL, 20, &ino, NULL), 0);
    CHECK_INT(meta_get(m, d, &ent, NULL), 0);
    CHECK_INT(ent.attr.mtime_ns, 9000);
    meta_entry_free(&ent);
    struct sky_attr fa = attr_of(SKY_FILE, 42, "e2");    /* a file's mtime is the cloud's */
    fa.mtime_ns = 100;
    CHECK_INT(meta_upsert(m, root, "f", &fa, NULL, 70, &ino, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.mtime_ns, 100);
    meta_entry_free(&ent);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* Entry `ino`'s mtime and ctime. */
static void times_of(struct meta *m, uint64_t ino, int64_t *mtime, int64_t *ctime)
{
    struct meta_entry ent;
    CHECK_INT(meta_get(m, ino, &ent, NULL), 0);
    *mtime = ent.attr.mtime_ns;
    *ctime = ent.attr.ctime_ns;
    meta_entry_free(&ent);
}

/* A refresh does not take the marks the mount's own changes left on the
 * cloud's times (up to the time of the change, recorded by set_attr and
 * meta_own_change, also across a reopen), but takes a later change by
 * another writer, and a new version's times. */
TEST(meta_own_changes_are_not_news)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root, ino;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    uint64_t d = put(m, root, "d", SKY_DIR);
    int64_t t0 = wall_ns() - 60 * 1000000000LL, mt, ct;
    struct sky_attr da = attr_of(SKY_DIR, 0, "");
    da.mtime_ns = da.ctime_ns = t0;
    da.has |= SKY_HAS_CTIME;
    CHECK_INT(meta_set_attr(m, d, &da, 10, NULL), 0);   /* a change through the mount */
    struct sky_attr mark = da;          /* the cloud stamped it a little later */
    mark.mtime_ns = mark.ctime_ns = wall_ns();
    CHECK_INT(meta_upsert(m, root, "d", &mark, NULL, 20, &ino, NULL), 0);
    times_of(m, d, &mt, &ct);
    CHECK_INT(mt, t0);
    CHECK_INT(ct, t0);

    /* a file written in d through a temporary name: both marked */
    struct sky_attr fa = attr_of(SKY_FILE, 5, "e1");
    fa.ctime_ns = t0;
    fa.has |= SKY_HAS_CTIME;
    uint64_t f;
    CHECK_INT(meta_upsert(m, d, "f", &fa, NULL, 30, &f, NULL), 0);
    int64_t upload = wall_ns() + 2000000000LL;        /* the folder's time of the rename */
    CHECK_INT(meta_own_change(m, f, true, upload, NULL), 0);
    CHECK_INT(meta_own_change(m, 987654, true, upload, NULL), 0);  /* unknown: nothing */
    mark.mtime_ns = mark.ctime_ns = upload;
    CHECK_INT(meta_upsert(m, root, "d", &mark, NULL, 40, &ino, NULL), 0);
    struct sky_attr fmark = fa;
    fmark.ctime_ns = upload;
    CHECK_INT(meta_upsert(m, d, "f", &fmark, NULL, 40, &ino, NULL), 0);
    times_of(m, d, &mt, &ct);
    CHECK_INT(mt, t0);
    CHECK_INT(ct, t0);
    times_of(m, f, &mt, &ct);
    CHECK_INT(ct, t0);

    /* ... also after a reopen */
    meta_close(m);
    m = meta_test_open(dir);
    CHECK_INT(meta_upsert(m, root, "d", &mark, NULL, 50, &ino, NULL), 0);
    times_of(m, d, &mt, &ct);
    CHECK_INT(mt, t0);

    /* another writer, after our change: taken */
    mark.mtime_ns = upload + 1000000000LL;
    mark.ctime_ns = upload + 2000000000LL;
    CHECK_INT(meta_upsert(m, root, "d", &mark, NULL, 60, &ino, NULL), 0);
    times_of(m, d, &mt, &ct);
    CHECK_INT(mt, upload + 1000000000LL);
    CHECK_INT(ct, upload + 2000000000LL);
    /* a new version of f (another etag, size and mtime): all its times */
    struct sky_attr v2 = fmark;
    snprintf(v2.etag, sizeof v2.etag, "e2");
    v2.size = 6;
    v2.mtime_ns = v2.ctime_ns = upload - 1000;
    CHECK_INT(meta_upsert(m, d, "f", &v2, NULL, 70, &ino, NULL), 0);
    times_of(m, f, &mt, &ct);
    CHECK_INT(mt, upload - 1000);
    CHECK_INT(ct, upload - 1000);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

TEST(meta_set_attr_and_listed)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    uint64_t f = put(m, root, "f", SKY_FILE);
    struct sky_attr a = attr_of(SKY_FILE, 777, "v2");
    a.uid = 5;
    CHECK_INT(meta_set_attr(m, f, &a, 4242, NULL), 0);
    struct meta_entry ent;
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.size, 777);
    CHECK_INT(ent.attr.uid, 5);
    CHECK_STR(ent.attr.etag, "v2");
    CHECK_INT(ent.fetched_at, 4242);
    meta_entry_free(&ent);
    CHECK_INT(meta_set_listed(m, root, 99, NULL), 0);
    CHECK_INT(meta_get(m, root, &ent, NULL), 0);
    CHECK_INT(ent.listed_at, 99);
    meta_entry_free(&ent);
    CHECK_INT(meta_set_listed(m, 987654, 1, NULL), -ENOENT);
    CHECK_INT(meta_set_link(m, 987654, "x", NULL), -ENOENT);
    CHECK_INT(meta_set_attr(m, 987654, &a, 1, NULL), -ENOENT);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

struct names {
    char buf[64][32];
    int n;
    uint64_t probe_ino;
    struct meta *m;
};

static int collect_name(void *arg, const struct meta_entry *ent)
{
    struct names *c = arg;
    if (c->n < 64)
        snprintf(c->buf[c->n], sizeof c->buf[c->n], "%s", ent->name);
    c->n++;
    /* the mutex is not held during the callback: calling back in is fine */
    struct meta_entry again;
    if (c->m && meta_get(c->m, ent->ino, &again, NULL) == 0) {
        CHECK_STR(again.name, ent->name);
        meta_entry_free(&again);
    }
    return 0;
}

TEST(meta_replace_listing_keeps_survivors)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    struct sky_dirent first[] = {
        { "b", attr_of(SKY_FILE, 1, "b1"), NULL, NULL },
        { "a", attr_of(SKY_DIR, 0, ""), NULL, NULL },
        { "c", attr_of(SKY_FILE, 3, "c1"), NULL, NULL },
        { "ln", attr_of(SKY_LINK, 3, "l1"), "tgt", NULL },
    };
    CHECK_INT(meta_replace_listing(m, root, first, 4, 100, NULL), 0);
    uint64_t a = ino_at(m, "c", "a"), b = ino_at(m, "c", "b"), c = ino_at(m, "c", "c");
    CHECK(a && b && c);
    uint64_t deep = put(m, a, "deep", SKY_DIR);
    put(m, deep, "z", SKY_FILE);
    CHECK_INT(meta_set_listed(m, a, 50, NULL), 0);

    struct sky_dirent second[] = {
        { "d", attr_of(SKY_FILE, 4, "d1"), NULL, NULL },
        { "b", attr_of(SKY_FILE, 10, "b2"), NULL, NULL },
        { "bad/name", attr_of(SKY_FILE, 1, "x"), NULL, NULL },    /* skipped */
        { "..", attr_of(SKY_DIR, 0, ""), NULL, NULL },            /* skipped */
        { "ln", attr_of(SKY_LINK, 3, "l1"), NULL, NULL },
        { "e", attr_of(SKY_FILE, 1, "old"), NULL, NULL },
        { "e", attr_of(SKY_FILE, 2, "new"), NULL, NULL },         /* last one wins */
    };
    CHECK_INT(meta_replace_listing(m, root, second, 7, 200, NULL), 0);
    CHECK_INT(ino_at(m, "c", "a"), 0);
    CHECK_INT(ino_at(m, "c", "a/deep"), 0);
    CHECK_INT(ino_at(m, "c", "a/deep/z"), 0);
    CHECK_INT(ino_at(m, "c", "c"), 0);
    CHECK_INT(ino_at(m, "c", "b"), b);
    CHECK(ino_at(m, "c", "d") > c);
    struct meta_entry ent;
    CHECK_INT(meta_get(m, b, &ent, NULL), 0);
    CHECK_INT(ent.attr.size, 10);
    CHECK_STR(ent.attr.etag, "b2");
    CHECK_INT(ent.fetched_at, 200);
    meta_entry_free(&ent);
    CHECK_INT(meta_lookup(m, root, "e", &ent, NULL), 0);
    CHECK_STR(ent.attr.etag, "new");
    meta_entry_free(&ent);
    CHECK_INT(meta_lookup(m, root, "ln", &ent, NULL), 0);
    CHECK_STR(ent.link, "tgt");                 /* same version: target kept */
    meta_entry_free(&ent);
    CHECK_INT(meta_get(m, root, &ent, NULL), 0);
    CHECK_INT(ent.listed_at, 200);
    meta_entry_free(&ent);

    uint64_t count = 0;
    CHECK_INT(meta_child_count(m, root, &count, NULL), 0);
    CHECK_INT(count, 4);
    struct names got = { .m = m };
    CHECK_INT(meta_children(m, root, collect_name, &got, NULL), 0);
    CHECK_INT(got.n, 4);
    CHECK_STR(got.buf[0], "b");
    CHECK_STR(got.buf[1], "d");
    CHECK_STR(got.buf[2], "e");
    CHECK_STR(got.buf[3], "ln");

    /* an empty listing empties the directory */
    CHECK_INT(meta_replace_listing(m, root, NULL, 0, 300, NULL), 0);
    CHECK_INT(meta_child_count(m, root, &count, NULL), 0);
    CHECK_INT(count, 0);
    CHECK_INT(meta_replace_listing(m, b, NULL, 0, 300, NULL), -ENOENT);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* An object store listing carries no POSIX metadata (has = 0): what the
 * cache knows survives while the entry is the same version; a new version
 * takes the listing's values. */
TEST(meta_listing_without_posix_attrs_keeps_known_ones)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    struct sky_attr known = attr_of(SKY_FILE, 5, "v1");
    known.mode = 0755;
    known.has = SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME;
    struct sky_attr kdir = known;
    kdir.kind = SKY_DIR;
    kdir.mode = 0700;
    kdir.etag[0] = 0;
    uint64_t f = 0, d = 0;
    CHECK_INT(meta_upsert(m, root, "f", &known, NULL, 100, &f, NULL), 0);
    CHECK_INT(meta_upsert(m, root, "d", &kdir, NULL, 100, &d, NULL), 0);

    struct sky_attr bare = { .kind = SKY_FILE, .size = 5, .mtime_ns = 42, .mode = 0644 };
    snprintf(bare.etag, sizeof bare.etag, "v1");
    struct sky_attr bare_dir = { .kind = SKY_DIR, .mtime_ns = 42, .mode = 0755 };
    struct sky_dirent listing[] = { { "f", bare, NULL, NULL }, { "d", bare_dir, NULL, NULL } };
    CHECK_INT(meta_replace_listing(m, root, listing, 2, 200, NULL), 0);
    struct meta_entry ent;
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.mode, 0755);
    CHECK_INT(ent.attr.uid, 1000);
    CHECK_INT(ent.attr.mtime_ns, 1700000000123456789LL);
    CHECK_INT(ent.attr.has, known.has);
    CHECK_INT(ent.fetched_at, 200);
    meta_entry_free(&ent);
    CHECK_INT(meta_get(m, d, &ent, NULL), 0);
    CHECK_INT(ent.attr.mode, 0700);
    CHECK_INT(ent.attr.mtime_ns, 1700000000123456789LL);
    meta_entry_free(&ent);

    /* a new version (etag v2): the listing's values, nothing kept */
    snprintf(listing[0].attr.etag, sizeof listing[0].attr.etag, "v2");
    CHECK_INT(meta_replace_listing(m, root, listing, 2, 300, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.mode, 0644);
    CHECK_INT(ent.attr.mtime_ns, 42);
    CHECK_INT(ent.attr.has, 0);
    meta_entry_free(&ent);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* A listing without metadata but with the cloud's stamp (an S3 listing:
 * ETag, size, Last-Modified) refreshes an entry only while it is the
 * version whose metadata the cache read (meta_replace_listing). */
TEST(meta_listing_vouches_by_cloud_stamp)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    const int64_t S = 1000000000LL;
    int64_t t = (wall_ns() / S - 100) * S;          /* a settled second */
    struct sky_attr headed = attr_of(SKY_FILE, 5, "v1");   /* as a HEAD gives it */
    headed.mode = 0755;
    headed.modified_ns = t;
    uint64_t f = 0, g = 0;
    CHECK_INT(meta_upsert(m, root, "f", &headed, NULL, 100, &f, NULL), 0);
    struct sky_attr uploaded = attr_of(SKY_FILE, 7, "u1");  /* an upload's answer: no date */
    CHECK_INT(meta_upsert(m, root, "g", &uploaded, NULL, 100, &g, NULL), 0);
    uint64_t q = 0;
    CHECK_INT(meta_upsert(m, root, "q", &uploaded, NULL, 100, &q, NULL), 0);
    int64_t own = t + 10 * S + S / 2;
    CHECK_INT(meta_own_change(m, g, false, own, NULL), 0);
    CHECK_INT(meta_own_change(m, q, false, own, NULL), 0);

    struct sky_attr bf = { .kind = SKY_FILE, .size = 5, .mtime_ns = t + S / 3,
                           .modified_ns = t + S / 3 };          /* same second */
    snprintf(bf.etag, sizeof bf.etag, "v1");
    struct sky_attr bg = { .kind = SKY_FILE, .size = 7, .mtime_ns = t + 9 * S,
                           .modified_ns = t + 9 * S };  /* a second before our own change */
    snprintf(bg.etag, sizeof bg.etag, "u1");
    struct sky_attr bq = bg;                    /* the second of our own change: */
    bq.mtime_ns = bq.modified_ns = t + 10 * S;  /* maybe another's change after ours */
    struct sky_attr bh = { .kind = SKY_FILE, .size = 9, .mtime_ns = t, .modified_ns = t };
    snprintf(bh.etag, sizeof bh.etag, "h1");
    struct sky_dirent l1[] = { { "f", bf, NULL, NULL }, { "g", bg, NULL, NULL },
                               { "h", bh, NULL, NULL }, { "q", bq, NULL, NULL } };
    CHECK_INT(meta_replace_listing(m, root, l1, 4, 200, NULL), 0);
    struct meta_entry ent;
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.fetched_at, 200);                 /* vouched: the HEAD's date */
    CHECK_INT(ent.attr.mode, 0755);
    meta_entry_free(&ent);
    CHECK_INT(meta_get(m, g, &ent, NULL), 0);
    CHECK_INT(ent.fetched_at, 200);                 /* vouched: our own upload */
    meta_entry_free(&ent);
    CHECK_INT(meta_get(m, q, &ent, NULL), 0);
    CHECK_INT(ent.fetched_at, 100);                 /* not: a stat will ask */
    meta_entry_free(&ent);
    CHECK_INT(meta_lookup(m, root, "h", &ent, NULL), 0);
    CHECK_INT(ent.fetched_at, 200);                 /* new: as listings make them */
    uint64_t h = ent.ino;
    meta_entry_free(&ent);

    /* a copy in place elsewhere (same ETag, later date) on f and g; h's
     * metadata was never read */
    l1[0].attr.modified_ns = l1[0].attr.mtime_ns = t + 20 * S;
    l1[1].attr.modified_ns = l1[1].attr.mtime_ns = t + 11 * S;
    CHECK_INT(meta_replace_listing(m, root, l1, 4, 300, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.fetched_at, 200);                 /* stays stale: a stat will ask */
    CHECK_INT(ent.attr.mode, 0755);
    meta_entry_free(&ent);
    CHECK_INT(meta_get(m, g, &ent, NULL), 0);
    CHECK_INT(ent.fetched_at, 200);
    meta_entry_free(&ent);
    CHECK_INT(meta_get(m, h, &ent, NULL), 0);
    CHECK_INT(ent.fetched_at, 200);
    meta_entry_free(&ent);

    /* the stat reads f's new version: the next listing vouches again */
    headed.mode = 0600;
    headed.modified_ns = t + 20 * S;
    CHECK_INT(meta_upsert(m, root, "f", &headed, NULL, 400, NULL, NULL), 0);
    CHECK_INT(meta_replace_listing(m, root, l1, 4, 500, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.fetched_at, 500);
    CHECK_INT(ent.attr.mode, 0600);
    meta_entry_free(&ent);

    /* a listing that gives no date: as it always was */
    l1[1].attr.modified_ns = 0;
    CHECK_INT(meta_replace_listing(m, root, l1, 4, 600, NULL), 0);
    CHECK_INT(meta_get(m, g, &ent, NULL), 0);
    CHECK_INT(ent.fetched_at, 600);
    meta_entry_free(&ent);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* An object store may hold an object "a" and objects under "a/": the
 * directory is what the mount shows, whatever the listing's order. */
TEST(meta_listing_name_both_file_and_dir_shows_the_dir)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    struct sky_dirent one[] = {
        { "a", attr_of(SKY_DIR, 0, ""), NULL, NULL },
        { "a", attr_of(SKY_FILE, 1, "x"), NULL, NULL },
        { "b", attr_of(SKY_FILE, 1, "y"), NULL, NULL },
        { "b", attr_of(SKY_DIR, 0, ""), NULL, NULL },
    };
    CHECK_INT(meta_replace_listing(m, root, one, 4, 100, NULL), 0);
    uint64_t count = 0;
    CHECK_INT(meta_child_count(m, root, &count, NULL), 0);
    CHECK_INT(count, 2);
    struct meta_entry ent;
    CHECK_INT(meta_lookup(m, root, "a", &ent, NULL), 0);
    CHECK_INT(ent.attr.kind, SKY_DIR);
    meta_entry_free(&ent);
    CHECK_INT(meta_lookup(m, root, "b", &ent, NULL), 0);
    CHECK_INT(ent.attr.kind, SKY_DIR);
    meta_entry_free(&ent);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* Azure lists a folder twice: the prefix "d/" (no attributes) and its
 * marker blob "d" (mode, times), in either order; the marker's attributes
 * show, whichever comes last. */
TEST(meta_listing_folder_marker_beats_bare_prefix)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    struct sky_attr bare = { .kind = SKY_DIR };
    struct sky_attr marked = attr_of(SKY_DIR, 0, "");
    marked.mode = 0750;
    marked.mtime_ns = 1546300800000000000LL;
    struct sky_dirent two[] = {
        { "first", marked, NULL, NULL },  { "first", bare, NULL, NULL },
        { "second", bare, NULL, NULL },   { "second", marked, NULL, NULL },
        { "plain", bare, NULL, NULL },    { "plain", bare, NULL, NULL },
    };
    CHECK_INT(meta_replace_listing(m, root, two, 6, 100, NULL), 0);
    const char *names[] = { "first", "second" };
    for (int i = 0; i < 2; i++) {
        struct meta_entry ent;
        CHECK_INT(meta_lookup(m, root, names[i], &ent, NULL), 0);
        CHECK_INT(ent.attr.kind, SKY_DIR);
        CHECK_INT(ent.attr.mode & 07777, 0750);
        CHECK(ent.attr.mtime_ns == 1546300800000000000LL);
        meta_entry_free(&ent);
    }
    uint64_t count = 0;
    CHECK_INT(meta_child_count(m, root, &count, NULL), 0);
    CHECK_INT(count, 3);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

TEST(meta_rename_directory_moves_descendants)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    /* names that LIKE would misread, neighbours that share the prefix,
     * and multi-byte UTF-8 below */
    uint64_t src = put(m, root, "a%_b", SKY_DIR);
    uint64_t x = put(m, src, "x_1", SKY_DIR);
    uint64_t y = put(m, x, "y%z", SKY_FILE);
    uint64_t u = put(m, put(m, src, "\xc3\xa9", SKY_DIR), "\xc3\xbc.txt", SKY_FILE);
    uint64_t n1 = put(m, root, "a%_bc", SKY_DIR);
    uint64_t n1c = put(m, n1, "k", SKY_FILE);
    uint64_t n2 = put(m, root, "a%_b0", SKY_DIR);
    uint64_t n2c = put(m, n2, "q", SKY_FILE);
    uint64_t n3 = put(m, root, "aX_b", SKY_DIR);
    uint64_t n3c = put(m, n3, "w", SKY_FILE);
    uint64_t dst = put(m, root, "dst", SKY_DIR);

    struct sky_err e = { 0 };
    int rc = meta_rename(m, src, dst, "n_%", &e);
    if (rc)
        fprintf(stderr, "  rename: %s\n", e.msg);
    CHECK_INT(rc, 0);
    char *p;
    CHECK_STR(p = path_of(m, src), "dst/n_%");
    free(p);
    CHECK_STR(p = path_of(m, x), "dst/n_%/x_1");
    free(p);
    CHECK_STR(p = path_of(m, y), "dst/n_%/x_1/y%z");
    free(p);
    CHECK_STR(p = path_of(m, u), "dst/n_%/\xc3\xa9/\xc3\xbc.txt");
    free(p);
    CHECK_STR(p = path_of(m, n1c), "a%_bc/k");
    free(p);
    CHECK_STR(p = path_of(m, n2c), "a%_b0/q");
    free(p);
    CHECK_STR(p = path_of(m, n3c), "aX_b/w");
    free(p);
    CHECK_INT(ino_at(m, "c", "dst/n_%/x_1/y%z"), y);
    CHECK_INT(ino_at(m, "c", "a%_b/x_1/y%z"), 0);
    struct meta_entry ent;
    CHECK_INT(meta_lookup(m, dst, "n_%", &ent, NULL), 0);
    CHECK_INT(ent.ino, src);
    CHECK_INT(ent.parent, dst);
    meta_entry_free(&ent);

    /* a multi-byte name in the moved prefix itself */
    uint64_t wide = put(m, root, "\xc3\xa9t\xc3\xa9", SKY_DIR);
    uint64_t wide_child = put(m, put(m, wide, "sub", SKY_DIR), "k", SKY_FILE);
    CHECK_INT(meta_rename(m, wide, root, "plain", NULL), 0);
    CHECK_STR(p = path_of(m, wide_child), "plain/sub/k");
    free(p);

    /* onto an existing entry: it is replaced */
    uint64_t t1 = put(m, root, "t1", SKY_FILE), t2 = put(m, root, "t2", SKY_FILE);
    CHECK_INT(meta_rename(m, t1, root, "t2", NULL), 0);
    CHECK_INT(meta_get(m, t2, &ent, NULL), -ENOENT);
    CHECK_INT(ino_at(m, "c", "t2"), t1);
    CHECK_INT(ino_at(m, "c", "t1"), 0);
    /* same place: nothing happens */
    CHECK_INT(meta_rename(m, t1, root, "t2", NULL), 0);
    CHECK_INT(ino_at(m, "c", "t2"), t1);
    /* into itself, out of its cloud, a cloud directory */
    CHECK_INT(meta_rename(m, src, x, "loop", NULL), -EINVAL);
    CHECK_INT(meta_rename(m, src, src, "loop", NULL), -EINVAL);
    uint64_t other;
    CHECK_INT(meta_cloud_root(m, "other", &other, NULL), 0);
    CHECK_INT(meta_rename(m, t1, other, "t", NULL), -EXDEV);
    CHECK_INT(meta_rename(m, root, dst, "r", NULL), -EBUSY);
    /* a new parent that is not a directory */
    CHECK_INT(meta_rename(m, n3c, t1, "w", NULL), -ENOTDIR);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

TEST(meta_remove_recursive)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    uint64_t a = put(m, root, "a", SKY_DIR);
    uint64_t b = put(m, a, "b", SKY_DIR);
    uint64_t cc = put(m, b, "c", SKY_FILE);
    uint64_t d = put(m, a, "d", SKY_FILE);
    uint64_t a0 = put(m, root, "a0", SKY_FILE);
    uint64_t a_ = put(m, root, "a_", SKY_DIR);
    uint64_t a_x = put(m, a_, "x", SKY_FILE);
    uint64_t keep;
    CHECK_INT(meta_cloud_root(m, "c2", &keep, NULL), 0);
    uint64_t other = put(m, keep, "a", SKY_DIR);
    uint64_t other_child = put(m, other, "b", SKY_FILE);

    /* wildcards in the removed name must not reach neighbours */
    uint64_t w = put(m, root, "a%_b", SKY_DIR);
    put(m, w, "gone", SKY_FILE);
    uint64_t wn = put(m, put(m, root, "aXYb", SKY_DIR), "w", SKY_FILE);
    CHECK_INT(meta_remove(m, w, NULL), 0);
    CHECK_INT(ino_at(m, "c", "a%_b/gone"), 0);
    CHECK_INT(ino_at(m, "c", "aXYb/w"), wn);

    CHECK_INT(meta_remove(m, a, NULL), 0);
    struct meta_entry ent;
    CHECK_INT(meta_get(m, a, &ent, NULL), -ENOENT);
    CHECK_INT(meta_get(m, b, &ent, NULL), -ENOENT);
    CHECK_INT(meta_get(m, cc, &ent, NULL), -ENOENT);
    CHECK_INT(meta_get(m, d, &ent, NULL), -ENOENT);
    CHECK_INT(ino_at(m, "c", "a0"), a0);
    CHECK_INT(ino_at(m, "c", "a_/x"), a_x);
    CHECK_INT(ino_at(m, "c2", "a/b"), other_child);
    CHECK_INT(meta_remove(m, a, NULL), -ENOENT);

    /* removing a cloud directory empties that cloud only */
    CHECK_INT(meta_remove(m, root, NULL), 0);
    CHECK_INT(ino_at(m, "c", "a0"), 0);
    CHECK_INT(ino_at(m, "c", "a_/x"), 0);
    CHECK_INT(ino_at(m, "c2", "a/b"), other_child);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* The trigram index of names matches the entries (FTS5's own check). */
static int trigrams_consistent(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "INSERT INTO entry_trigrams(entry_trigrams) "
                              "VALUES('integrity-check')", NULL, NULL, NULL);
    /* and every name it finds is an entry's (the check above does not
     * see an index entry left behind by a deleted row) */
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK &&
        (rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM entry_trigrams t WHERE "
                                 "entry_trigrams MATCH 'txt' AND NOT EXISTS (SELECT 1 FROM "
                                 "entries e WHERE e.ino=t.rowid)", -1, &st, NULL)) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) != 0) {
        fprintf(stderr, "  trigram index: %d names of deleted entries\n",
                sqlite3_column_int(st, 0));
        rc = SQLITE_CORRUPT;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        fprintf(stderr, "  trigram check: %s\n", sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}

static bool is_local_only(struct meta *m, uint64_t ino)
{
    struct meta_entry ent;
    if (meta_get(m, ino, &ent, NULL) != 0)
        return false;
    bool local = ent.local_only;
    meta_entry_free(&ent);
    return local;
}

/* News that a folder is gone from the cloud (meta_forget_gone, and a
 * listing without it) never drops a file made here and not uploaded yet:
 * the file stays, with the folders above it, which become local-only. */
TEST(meta_forget_gone_keeps_what_is_not_uploaded)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    uint64_t a = put(m, root, "a", SKY_DIR);
    uint64_t old = put(m, a, "old.txt", SKY_FILE);
    uint64_t sub = put(m, a, "sub", SKY_DIR);
    uint64_t fresh = put(m, sub, "new.txt", SKY_FILE);
    CHECK_INT(meta_set_local_only(m, fresh, true, NULL), 0);
    uint64_t other = put(m, a, "other", SKY_DIR);
    uint64_t other_x = put(m, other, "x", SKY_FILE);
    uint64_t b = put(m, root, "b", SKY_DIR);
    uint64_t b_y = put(m, b, "y", SKY_FILE);
    uint64_t z = put(m, root, "z", SKY_DIR);
    uint64_t z_new = put(m, z, "new", SKY_FILE);
    CHECK_INT(meta_set_local_only(m, z_new, true, NULL), 0);

    CHECK_INT(meta_forget_gone(m, a, NULL), 0);
    CHECK_INT(ino_at(m, "c", "a"), a);
    CHECK(is_local_only(m, a));
    CHECK_INT(ino_at(m, "c", "a/sub"), sub);
    CHECK(is_local_only(m, sub));
    CHECK_INT(ino_at(m, "c", "a/sub/new.txt"), fresh);
    CHECK(is_local_only(m, fresh));
    CHECK_INT(ino_at(m, "c", "a/old.txt"), 0);
    CHECK_INT(ino_at(m, "c", "a/other"), 0);
    CHECK_INT(ino_at(m, "c", "a/other/x"), 0);
    (void)old;
    (void)other_x;

    /* nothing made here below: gone whole */
    CHECK_INT(meta_forget_gone(m, b, NULL), 0);
    CHECK_INT(ino_at(m, "c", "b"), 0);
    CHECK_INT(ino_at(m, "c", "b/y"), 0);
    (void)b_y;

    /* a listing of the cloud without z keeps z for its new file */
    CHECK_INT(meta_replace_listing(m, root, NULL, 0, wall_ns(), NULL), 0);
    CHECK_INT(ino_at(m, "c", "z"), z);
    CHECK(is_local_only(m, z));
    CHECK_INT(ino_at(m, "c", "z/new"), z_new);
    CHECK_INT(ino_at(m, "c", "a/sub/new.txt"), fresh);

    /* once uploaded, the file goes with its folder like any other */
    CHECK_INT(meta_set_local_only(m, z_new, false, NULL), 0);
    CHECK_INT(meta_set_local_only(m, z, false, NULL), 0);
    CHECK_INT(meta_forget_gone(m, z, NULL), 0);
    CHECK_INT(ino_at(m, "c", "z"), 0);
    CHECK_INT(ino_at(m, "c", "z/new"), 0);
    meta_close(m);
    CHECK_INT(trigrams_consistent(dir), SQLITE_OK);
    unit_rmtree(dir);
    free(dir);
}

/* A file written here and not uploaded yet (meta_hold) is kept by news
 * that it or its folder is gone, as a file made here is; once let go, it
 * goes like any other. */
TEST(meta_forget_gone_keeps_what_is_held)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    uint64_t top = put(m, root, "top.txt", SKY_FILE);
    uint64_t a = put(m, root, "a", SKY_DIR);
    uint64_t mod = put(m, a, "mod.txt", SKY_FILE);
    uint64_t other = put(m, a, "other.txt", SKY_FILE);
    CHECK_INT(meta_hold(m, top), 0);
    CHECK_INT(meta_hold(m, mod), 0);
    CHECK_INT(meta_hold(m, mod), 0);            /* twice: still one hold */

    CHECK_INT(meta_forget_gone(m, top, NULL), 0);
    CHECK_INT(ino_at(m, "c", "top.txt"), top);
    CHECK(!is_local_only(m, top));              /* it is on the cloud: not made here */
    CHECK_INT(meta_forget_gone(m, a, NULL), 0);
    CHECK_INT(ino_at(m, "c", "a"), a);
    CHECK(is_local_only(m, a));                 /* made again before the upload */
    CHECK_INT(ino_at(m, "c", "a/mod.txt"), mod);
    CHECK_INT(ino_at(m, "c", "a/other.txt"), 0);
    (void)other;

    /* a listing of the cloud with neither keeps both */
    CHECK_INT(meta_set_local_only(m, a, false, NULL), 0);
    CHECK_INT(meta_replace_listing(m, root, NULL, 0, wall_ns(), NULL), 0);
    CHECK_INT(ino_at(m, "c", "top.txt"), top);
    CHECK_INT(ino_at(m, "c", "a/mod.txt"), mod);

    CHECK(is_local_only(m, a));
    meta_unhold(m, top);                        /* uploaded: folder made, file let go */
    CHECK_INT(meta_set_local_only(m, a, false, NULL), 0);
    meta_unhold(m, mod);
    meta_unhold(m, mod);                        /* not held: nothing */
    CHECK_INT(meta_replace_listing(m, root, NULL, 0, wall_ns(), NULL), 0);
    CHECK_INT(ino_at(m, "c", "top.txt"), 0);
    CHECK_INT(ino_at(m, "c", "a"), 0);
    CHECK_INT(ino_at(m, "c", "a/mod.txt"), 0);
    meta_close(m);
    CHECK_INT(trigrams_consistent(dir), SQLITE_OK);
    unit_rmtree(dir);
    free(dir);
}

/* A held file (writes here wait for their upload) keeps what the cache
 * has whatever the cloud's older version says (a stat, a listing, a
 * get_meta): only its fetched time moves.  Its own upload's record
 * (meta_set_objmeta) is taken; once let go, news is taken again. */
TEST(meta_news_leaves_a_held_file_as_it_is)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    struct sky_attr mine = attr_of(SKY_FILE, 13, "v1");
    mine.mode = 0600;
    mine.mtime_ns = 1577934245000000000LL;
    uint64_t f = 0;
    CHECK_INT(meta_upsert(m, root, "f", &mine, NULL, 100, &f, NULL), 0);
    CHECK_INT(meta_set_attr(m, f, &mine, 100, NULL), 0);
    CHECK_INT(meta_hold(m, f), 0);

    struct sky_attr cloud = attr_of(SKY_FILE, 6, "v1");     /* the older version */
    cloud.mode = 0644;
    CHECK_INT(meta_upsert(m, root, "f", &cloud, NULL, 200, NULL, NULL), 0);
    struct sky_dirent listing[] = { { "f", cloud, NULL, NULL } };
    CHECK_INT(meta_replace_listing(m, root, listing, 1, 300, NULL), 0);
    struct sky_objmeta om = { 0 };
    CHECK_INT(meta_cloud_objmeta(m, f, &cloud, &om, 400, NULL), 0);
    struct meta_entry ent;
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.size, 13);
    CHECK_INT(ent.attr.mode, 0600);
    CHECK_INT(ent.attr.mtime_ns, 1577934245000000000LL);
    CHECK_INT(ent.fetched_at, 400);              /* asked: not again before the ttl */
    meta_entry_free(&ent);

    /* its upload's record is taken while it is still held */
    struct sky_attr up = mine;
    snprintf(up.etag, sizeof up.etag, "v2");
    CHECK_INT(meta_set_objmeta(m, f, &up, &om, 500, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_STR(ent.attr.etag, "v2");
    meta_entry_free(&ent);

    /* let go: the cloud's news is the file again */
    meta_unhold(m, f);
    CHECK_INT(meta_upsert(m, root, "f", &cloud, NULL, 600, NULL, NULL), 0);
    CHECK_INT(meta_get(m, f, &ent, NULL), 0);
    CHECK_INT(ent.attr.size, 6);
    CHECK_INT(ent.attr.mode, 0644);
    CHECK_STR(ent.attr.etag, "v1");
    meta_entry_free(&ent);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* The record of directory renames in progress survives a reopen, one per
 * source, until dropped. */
TEST(meta_moves_recorded_until_dropped)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    CHECK_INT(meta_move_begin(m, "s3", "photos", "album", NULL), 0);
    CHECK_INT(meta_move_begin(m, "az", "a/b", "c", NULL), 0);
    CHECK_INT(meta_move_begin(m, "s3", "photos", "pictures", NULL), 0);  /* replaces */
    meta_close(m);
    m = meta_test_open(dir);
    struct meta_move *v;
    size_t n;
    CHECK_INT(meta_moves(m, &v, &n, NULL), 0);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(v[0].cloud, "az");
        CHECK_STR(v[0].src, "a/b");
        CHECK_STR(v[0].dst, "c");
        CHECK_STR(v[1].cloud, "s3");
        CHECK_STR(v[1].src, "photos");
        CHECK_STR(v[1].dst, "pictures");
    }
    meta_moves_free(v, n);
    CHECK_INT(meta_move_end(m, "s3", "photos", NULL), 0);
    CHECK_INT(meta_move_end(m, "s3", "never", NULL), 0);
    CHECK_INT(meta_moves(m, &v, &n, NULL), 0);
    CHECK_INT(n, 1);
    meta_moves_free(v, n);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

static int count_and_stop(void *arg, const struct meta_entry *ent)
{
    int *n = arg;
    (*n)++;
    return *n == 300 ? 7 : 0;
}

struct order_check {
    char last[32];
    int n, bad;
};

static int check_order(void *arg, const struct meta_entry *ent)
{
    struct order_check *o = arg;
    if (o->n && strcmp(o->last, ent->name) >= 0)
        o->bad++;
    snprintf(o->last, sizeof o->last, "%s", ent->name);
    o->n++;
    return 0;
}

static double seconds_since(double t0)
{
    return clock_now_s() - t0;
}

TEST(meta_listing_20000_entries)
{
    enum { N = 20000 };
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "big", &root, NULL), 0);
    uint64_t d = put(m, root, "d", SKY_DIR);
    struct sky_dirent *ents = calloc(N, sizeof *ents);
    char (*names)[24] = calloc(N, sizeof *names);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "file-%05d", (i * 7919) % N);
        ents[i].name = names[i];
        ents[i].attr = attr_of(SKY_FILE, (uint64_t)i, "e");
    }
    double t0 = clock_now_s();
    CHECK_INT(meta_replace_listing(m, d, ents, N, 10, NULL), 0);
    double first = seconds_since(t0);
    uint64_t count = 0, survivor = ino_at(m, "big", "d/file-19999");
    CHECK_INT(meta_child_count(m, d, &count, NULL), 0);
    CHECK_INT(count, N);
    CHECK(survivor != 0);

    /* half vanish, half are new */
    for (int i = 0; i < N / 2; i++)
        snprintf(names[i], sizeof names[i], "new-%05d", i);
    for (int i = N / 2; i < N; i++)
        snprintf(names[i], sizeof names[i], "file-%05d", i);
    t0 = clock_now_s();
    CHECK_INT(meta_replace_listing(m, d, ents, N, 20, NULL), 0);
    double second = seconds_since(t0);
    CHECK_INT(meta_child_count(m, d, &count, NULL), 0);
    CHECK_INT(count, N);
    CHECK_INT(ino_at(m, "big", "d/file-19999"), survivor);
    CHECK_INT(ino_at(m, "big", "d/file-00000"), 0);
    CHECK(ino_at(m, "big", "d/new-00000") != 0);
    /* Timings are reported, never asserted (speed is for tests/bench). */
    printf("     (20,000-entry listing: %.3f s new, %.3f s replaced)\n", first, second);

    struct order_check oc = { .n = 0 };
    CHECK_INT(meta_children(m, d, check_order, &oc, NULL), 0);
    CHECK_INT(oc.n, N);
    CHECK_INT(oc.bad, 0);
    int seen = 0;
    CHECK_INT(meta_children(m, d, count_and_stop, &seen, NULL), 7);
    CHECK_INT(seen, 300);
    free(ents);
    free(names);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* ---- cloud metadata ---------------------------------------------------- */

static struct sky_objmeta objmeta_of(const char *type, const char *class, bool has_user)
{
    struct sky_objmeta om = { 0 };
    CHECK_INT(sky_objmeta_set(&om.content_type, type), 0);
    CHECK_INT(sky_objmeta_set(&om.storage_class, class), 0);
    om.has_user = has_user;
    return om;
}

/* "key=value,key=value" of an entry's cached user metadata. */
static char *user_items(struct meta *m, uint64_t ino, int64_t *meta_at)
{
    struct sky_objmeta om;
    char buf[512] = "";
    if (meta_get_objmeta(m, ino, &om, meta_at, NULL) != 0)
        return strdup("(error)");
    for (size_t i = 0; i < om.nuser; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s=%.*s", i ? "," : "",
                 om.user[i].key, (int)om.user[i].len, om.user[i].value);
    sky_objmeta_free(&om);
    return strdup(buf);
}

static long long count_rows(const char *dir, const char *sql)
{
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

TEST(meta_objmeta_from_listings)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    /* an Azure-like listing: everything; an S3-like one: storage class only */
    struct sky_objmeta full = objmeta_of("text/csv", "Hot", true);
    CHECK_INT(sky_objmeta_add_user(&full, "project", "apollo", 6), 0);
    CHECK_INT(sky_objmeta_add_user(&full, "bin", "a\0b", 3), 0);
    struct sky_objmeta partial = objmeta_of(NULL, "GLACIER", false);
    struct sky_dirent first[] = {
        { "full.csv", attr_of(SKY_FILE, 1, "f1"), NULL, &full },
        { "part.bin", attr_of(SKY_FILE, 2, "p1"), NULL, &partial },
        { "none.txt", attr_of(SKY_FILE, 3, "n1"), NULL, NULL },
    };
    CHECK_INT(meta_replace_listing(m, root, first, 3, 100, NULL), 0);
    uint64_t f = ino_at(m, "c", "full.csv"), p = ino_at(m, "c", "part.bin");
    int64_t at = -1;
    struct sky_objmeta got;
    CHECK_INT(meta_get_objmeta(m, f, &got, &at, NULL), 0);
    CHECK_STR(got.content_type, "text/csv");
    CHECK_STR(got.storage_class, "Hot");
    CHECK(got.has_user);
    CHECK_INT(at, 100);
    CHECK_INT(got.nuser, 2);
    const struct sky_meta_item *bin = sky_objmeta_find(&got, "bin");
    CHECK(bin && bin->len == 3 && memcmp(bin->value, "a\0b", 3) == 0);
    sky_objmeta_free(&got);
    CHECK_INT(meta_get_objmeta(m, p, &got, &at, NULL), 0);
    CHECK(got.content_type == NULL);
    CHECK_STR(got.storage_class, "GLACIER");
    CHECK(!got.has_user);
    CHECK_INT(at, 0);
    sky_objmeta_free(&got);

    /* same versions, listings without metadata: what is known stays */
    struct sky_dirent same[] = {
        { "full.csv", attr_of(SKY_FILE, 1, "f1"), NULL, NULL },
        { "part.bin", attr_of(SKY_FILE, 2, "p2"), NULL, NULL },   /* new version */
    };
    CHECK_INT(meta_replace_listing(m, root, same, 2, 200, NULL), 0);
    char *items = user_items(m, f, &at);
    CHECK_STR(items, "bin=a,project=apollo");   /* %.*s stops at the NUL */
    CHECK_INT(at, 100);
    free(items);
    CHECK_INT(meta_get_objmeta(m, p, &got, &at, NULL), 0);
    CHECK(got.storage_class == NULL);           /* forgotten with the old version */
    sky_objmeta_free(&got);

    /* a new version of full.csv forgets its metadata, items included */
    struct sky_dirent changed[] = { { "full.csv", attr_of(SKY_FILE, 9, "f2"), NULL, NULL } };
    CHECK_INT(meta_replace_listing(m, root, changed, 1, 300, NULL), 0);
    CHECK_INT(meta_get_objmeta(m, f, &got, &at, NULL), 0);
    CHECK(got.content_type == NULL && got.storage_class == NULL && !got.has_user);
    CHECK_INT(got.nuser, 0);
    CHECK_INT(at, 0);
    sky_objmeta_free(&got);
    CHECK_INT(count_rows(dir, "SELECT count(*) FROM user_meta"), 0);

    /* a new version that brings its own metadata keeps that */
    struct sky_objmeta next = objmeta_of("text/plain", NULL, true);
    CHECK_INT(sky_objmeta_add_user(&next, "project", "gemini", 6), 0);
    struct sky_dirent again[] = { { "full.csv", attr_of(SKY_FILE, 5, "f3"), NULL, &next } };
    CHECK_INT(meta_replace_listing(m, root, again, 1, 400, NULL), 0);
    items = user_items(m, f, &at);
    CHECK_STR(items, "project=gemini");
    CHECK_INT(at, 400);
    free(items);
    CHECK_INT(meta_get_objmeta(m, f, &got, NULL, NULL), 0);
    CHECK_STR(got.content_type, "text/plain");
    sky_objmeta_free(&got);

    /* entries that leave the listing take their items with them */
    CHECK_INT(meta_replace_listing(m, root, NULL, 0, 500, NULL), 0);
    CHECK_INT(count_rows(dir, "SELECT count(*) FROM user_meta"), 0);
    sky_objmeta_free(&full);
    sky_objmeta_free(&partial);
    sky_objmeta_free(&next);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

static int collect_missing(void *arg, uint64_t ino, const char *path)
{
    char *buf = arg;
    snprintf(buf + strlen(buf), 512 - strlen(buf), "%s ", path);
    return 0;
}

TEST(meta_objmeta_set_items_and_missing)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    uint64_t d = put(m, root, "d", SKY_DIR);
    uint64_t a = put(m, d, "a.txt", SKY_FILE);
    uint64_t b = put(m, d, "b.txt", SKY_FILE);
    uint64_t top = put(m, root, "top.txt", SKY_FILE);
    put(m, d, "sub", SKY_DIR);
    char buf[512] = "";
    CHECK_INT(meta_missing_objmeta(m, "c", "", collect_missing, buf, NULL), 0);
    CHECK_STR(buf, "d/a.txt d/b.txt top.txt ");     /* files only */

    /* get_meta's answer, with attributes of a new version */
    struct sky_objmeta om = objmeta_of("image/png", "STANDARD", true);
    CHECK_INT(sky_objmeta_add_user(&om, "color", "blue", 4), 0);
    struct sky_attr na = attr_of(SKY_FILE, 77, "e2");
    CHECK_INT(meta_set_objmeta(m, a, &na, &om, 900, NULL), 0);
    struct meta_entry ent;
    CHECK_INT(meta_get(m, a, &ent, NULL), 0);
    CHECK_INT(ent.attr.size, 77);
    CHECK_STR(ent.attr.etag, "e2");
    CHECK_INT(ent.fetched_at, 900);
    meta_entry_free(&ent);
    int64_t at = 0;
    char *items = user_items(m, a, &at);
    CHECK_STR(items, "color=blue");
    CHECK_INT(at, 900);
    free(items);
    buf[0] = '\0';
    CHECK_INT(meta_missing_objmeta(m, "c", "d", collect_missing, buf, NULL), 0);
    CHECK_STR(buf, "d/b.txt ");
    buf[0] = '\0';
    CHECK_INT(meta_missing_objmeta(m, "c", "top.txt", collect_missing, buf, NULL), 0);
    CHECK_STR(buf, "top.txt ");

    /* without attributes: only the metadata */
    CHECK_INT(meta_set_objmeta(m, b, NULL, &om, 950, NULL), 0);
    items = user_items(m, b, &at);
    CHECK_STR(items, "color=blue");
    CHECK_INT(at, 950);
    free(items);
    CHECK_INT(meta_set_objmeta(m, 987654, NULL, &om, 1, NULL), -ENOENT);

    /* single items changed through the mount; meta_at is left alone */
    CHECK_INT(meta_set_user_item(m, top, "tag", "x", 1, NULL), 0);
    CHECK_INT(meta_set_user_item(m, a, "size", "big", 3, NULL), 0);
    CHECK_INT(meta_set_user_item(m, a, "color", NULL, 0, NULL), 0);
    items = user_items(m, a, &at);
    CHECK_STR(items, "size=big");
    CHECK_INT(at, 900);
    free(items);
    items = user_items(m, top, &at);
    CHECK_STR(items, "tag=x");
    CHECK_INT(at, 0);
    free(items);
    CHECK_INT(meta_set_user_item(m, 987654, "k", "v", 1, NULL), -ENOENT);

    /* removing a tree removes its items */
    CHECK_INT(count_rows(dir, "SELECT count(*) FROM user_meta"), 3);
    CHECK_INT(meta_remove(m, d, NULL), 0);
    CHECK_INT(count_rows(dir, "SELECT count(*) FROM user_meta"), 1);
    sky_objmeta_free(&om);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* fix callback of the test: the times an entry lacks are 7 */
static void fix_to_seven(void *arg, const struct meta_entry *ent, struct sky_attr *a)
{
    (void)ent;
    (*(int *)arg)++;
    if (!(a->has & SKY_HAS_ATIME)) {
        a->atime_ns = 7;
        a->has |= SKY_HAS_ATIME;
    }
}

/* A file made here and not uploaded (local-only) renamed over a file the
 * cloud holds: one transaction moves it, drops the replaced entry, shows
 * the replaced version as the one its upload replaces and moves the
 * times; a failed rename changes nothing. */
TEST(meta_rename_onto_a_cloud_file)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root;
    CHECK_INT(meta_cloud_root(m, "c", &root, NULL), 0);
    uint64_t target = put(m, root, "config", SKY_FILE);
    CHECK_INT(meta_set_user_item(m, target, "theirs", "1", 1, NULL), 0);
    uint64_t plain = put(m, root, "plain", SKY_FILE);
    struct sky_attr la = attr_of(SKY_FILE, 5, "");
    uint64_t lock = 0;
    struct meta_touch created = { root, SKY_HAS_MTIME | SKY_HAS_CTIME, 3000 };
    struct meta_touches create_times = { &created, 1, NULL, NULL };
    CHECK_INT(meta_upsert_local(m, root, "config.lock", &la, NULL, 1000, &create_times, &lock,
                                NULL), 0);
    struct meta_entry rootent;
    CHECK_INT(meta_get(m, root, &rootent, NULL), 0);  /* the create moved its folder's times */
    CHECK_INT(rootent.attr.mtime_ns, 3000);
    CHECK_INT(rootent.attr.ctime_ns, 3000);
    meta_entry_free(&rootent);
    CHECK_INT(meta_set_user_item(m, lock, "mine", "2", 1, NULL), 0);

    /* into a file: -ENOTDIR, and the new file is as it was */
    int fixed = 0;
    struct meta_touch touch[2] = { { lock, SKY_HAS_CTIME, 5000 },
                                   { root, SKY_HAS_MTIME | SKY_HAS_CTIME, 5000 } };
    struct meta_touches times = { touch, 2, fix_to_seven, &fixed };
    struct meta_rename_with onto = { .onto_etag = "e1", .times = &times };
    CHECK_INT(meta_rename_ex(m, lock, plain, "x", &onto, NULL), -ENOTDIR);
    struct meta_rename_with no_version = { .onto_etag = "" };
    CHECK_INT(meta_rename_ex(m, lock, root, "config", &no_version, NULL), -EINVAL);
    struct meta_entry ent;
    CHECK_INT(meta_get(m, lock, &ent, NULL), 0);
    CHECK_STR(ent.path, "config.lock");
    CHECK(ent.local_only);
    CHECK_STR(ent.attr.etag, "");
    meta_entry_free(&ent);
    CHECK_INT(ino_at(m, "c", "config"), target);

    struct sky_err e = { 0 };
    int rc = meta_rename_ex(m, lock, root, "config", &onto, &e);
    if (rc)
        fprintf(stderr, "  rename_ex: %s\n", e.msg);
    CHECK_INT(rc, 0);
    CHECK_INT(ino_at(m, "c", "config"), lock);
    CHECK_INT(ino_at(m, "c", "config.lock"), 0);
    CHECK_INT(meta_get(m, target, &ent, NULL), -ENOENT);
    CHECK_INT(meta_get(m, lock, &ent, NULL), 0);
    CHECK(!ent.local_only);
    CHECK_STR(ent.attr.etag, "e1");
    CHECK_INT(ent.attr.size, 5);
    CHECK_INT(ent.attr.ctime_ns, 5000);             /* touched */
    CHECK_INT(ent.attr.atime_ns, 7);                /* fixed first */
    CHECK_INT(ent.attr.mtime_ns, la.mtime_ns);      /* kept */
    meta_entry_free(&ent);
    CHECK_INT(fixed, 2);
    CHECK_INT(meta_get(m, root, &ent, NULL), 0);
    CHECK_INT(ent.attr.mtime_ns, 5000);
    CHECK_INT(ent.attr.ctime_ns, 5000);
    meta_entry_free(&ent);
    /* a plain rename moves times too; a touched entry that is gone is skipped */
    struct meta_touch gone[2] = { { plain, SKY_HAS_CTIME, 6000 }, { 987654, SKY_HAS_CTIME, 6000 } };
    struct meta_touches gone_times = { gone, 2, NULL, NULL };
    struct meta_rename_with plain_with = { .times = &gone_times };
    CHECK_INT(meta_rename_ex(m, plain, root, "plain2", &plain_with, NULL), 0);
    CHECK_INT(meta_get(m, plain, &ent, NULL), 0);
    CHECK_STR(ent.path, "plain2");
    CHECK_INT(ent.attr.ctime_ns, 6000);
    meta_entry_free(&ent);
    int64_t at = 0;
    char *items = user_items(m, lock, &at);
    CHECK_STR(items, "mine=2");          /* its own, complete: none of the replaced file's */
    CHECK(at != 0);
    free(items);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* A database written by the schema-2 skyfs opens, keeps its entries and
 * inode numbers, and gains the cloud metadata. */
TEST(meta_upgrades_a_version_2_database)
{
    char *dir = unit_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/meta.db", dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    const char *v2 =
        "CREATE TABLE entries(ino INTEGER PRIMARY KEY AUTOINCREMENT, parent INTEGER NOT NULL,"
        " cloud TEXT, name TEXT NOT NULL, path TEXT NOT NULL, kind INTEGER NOT NULL,"
        " size INTEGER NOT NULL DEFAULT 0, mtime_ns INTEGER NOT NULL DEFAULT 0,"
        " mode INTEGER NOT NULL DEFAULT 0, uid INTEGER NOT NULL DEFAULT 0,"
        " gid INTEGER NOT NULL DEFAULT 0, has INTEGER NOT NULL DEFAULT 0,"
        " etag TEXT NOT NULL DEFAULT '', link TEXT, fetched_at INTEGER NOT NULL DEFAULT 0,"
        " listed_at INTEGER NOT NULL DEFAULT 0, UNIQUE(parent, name));"
        "CREATE INDEX entries_cloud_path ON entries(cloud, path);"
        "CREATE INDEX entries_name ON entries(name);"
        "INSERT INTO entries(ino,parent,cloud,name,path,kind) VALUES(1,0,NULL,'','',2);"
        "INSERT INTO entries(ino,parent,cloud,name,path,kind) VALUES(7,1,'c','c','',2);"
        "INSERT INTO entries(ino,parent,cloud,name,path,kind,size,etag) "
        " VALUES(9,7,'c','old.txt','old.txt',1,5,'e1');"
        "PRAGMA user_version=2;";
    CHECK_INT(sqlite3_exec(db, v2, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct meta *m = meta_test_open(dir);
    CHECK_INT(ino_at(m, "c", "old.txt"), 9);
    struct sky_objmeta got;
    int64_t at = -1;
    CHECK_INT(meta_get_objmeta(m, 9, &got, &at, NULL), 0);
    CHECK(got.content_type == NULL && !got.has_user && got.nuser == 0);
    CHECK_INT(at, 0);
    sky_objmeta_free(&got);
    CHECK_INT(meta_set_user_item(m, 9, "k", "v", 1, NULL), 0);
    char *items = user_items(m, 9, NULL);
    CHECK_STR(items, "k=v");
    free(items);
    meta_close(m);
    m = meta_test_open(dir);                    /* and opens again as version 5 */
    CHECK_INT(count_rows(dir, "PRAGMA user_version"), 5);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

static int count_ino(void *arg, uint64_t ino)
{
    (void)ino;
    (*(int *)arg)++;
    return 0;
}

/* Special kinds keep their device number; the names of one hard-linked
 * file (same file_id, nlink > 1) show one inode number, the smallest;
 * counts follow meta_set_nlinks; subdirectories are counted. */
TEST(meta_special_files_hard_links_and_subdirs)
{
    char *dir = unit_tmpdir();
    struct meta *m = meta_test_open(dir);
    uint64_t root, dev, a, b, other;
    CHECK_INT(meta_cloud_root(m, "loc", &root, NULL), 0);
    struct sky_attr d = attr_of(SKY_CHR, 0, "e0");
    d.rdev = 259;
    CHECK_INT(meta_upsert(m, root, "null", &d, NULL, 1000, &dev, NULL), 0);
    struct sky_attr f = attr_of(SKY_FILE, 5, "e1");
    f.nlink = 2;
    f.file_id = 77;
    CHECK_INT(meta_upsert(m, root, "a", &f, NULL, 1000, &a, NULL), 0);
    CHECK_INT(meta_upsert(m, root, "b", &f, NULL, 1000, &b, NULL), 0);
    struct sky_attr lone = attr_of(SKY_FILE, 5, "e2");
    lone.nlink = 1;
    lone.file_id = 78;              /* one name: no file_id kept */
    CHECK_INT(meta_upsert(m, root, "c", &lone, NULL, 1000, &other, NULL), 0);
    put(m, root, "sub1", SKY_DIR);
    put(m, root, "sub2", SKY_DIR);

    struct meta_entry ent;
    CHECK_INT(meta_get(m, dev, &ent, NULL), 0);
    CHECK_INT(ent.attr.kind, SKY_CHR);
    CHECK_INT(ent.attr.rdev, 259);
    CHECK_INT(ent.stat_ino, dev);
    meta_entry_free(&ent);
    CHECK_INT(meta_get(m, b, &ent, NULL), 0);
    CHECK_INT(ent.stat_ino, a);
    CHECK_INT(ent.attr.nlink, 2);
    meta_entry_free(&ent);
    CHECK_INT(meta_get(m, other, &ent, NULL), 0);
    CHECK_INT(ent.stat_ino, other);
    CHECK_INT(ent.attr.file_id, 0);
    meta_entry_free(&ent);
    int n = 0;
    CHECK_INT(meta_same_file(m, "loc", 77, a, count_ino, &n, NULL), 0);
    CHECK_INT(n, 1);

    CHECK_INT(meta_remove(m, a, NULL), 0);          /* unlink a: b is alone */
    CHECK_INT(meta_set_nlinks(m, "loc", 77, 1, NULL), 0);
    CHECK_INT(meta_get(m, b, &ent, NULL), 0);
    CHECK_INT(ent.attr.nlink, 1);
    CHECK_INT(ent.stat_ino, b);
    meta_entry_free(&ent);

    uint64_t subdirs = 0;
    CHECK_INT(meta_subdir_count(m, root, &subdirs, NULL), 0);
    CHECK_INT(subdirs, 2);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}
