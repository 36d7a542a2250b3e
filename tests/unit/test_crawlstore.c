/* test_crawlstore.c - what a crawl writes into the metadata cache
 * (cache/crawlstore.c): implied directories, mark and sweep, entries the
 * mount changed meanwhile, the walk order, the crawl state. */
#include "check.h"

#include <errno.h>
#include <stdlib.h>

#include "../../cache/crawlstore.h"
#include "../../cache/meta.h"

#define T0 1700000000000000000LL        /* a crawl's start, ns */

static struct meta *open_meta(const char *dir, uint64_t *root)
{
    char path[512];
    struct sky_err e = { 0 };
    struct meta *m = NULL;
    snprintf(path, sizeof path, "%s/meta.db", dir);
    CHECK_INT(meta_open(path, NULL, &m, &e), 0);
    CHECK_INT(meta_cloud_root(m, "c", root, &e), 0);
    return m;
}

static struct sky_dirent ent(const char *path, enum sky_kind kind, const char *etag)
{
    struct sky_dirent d = { .name = path };
    d.attr.kind = kind;
    d.attr.size = kind == SKY_FILE ? 7 : 0;
    d.attr.mtime_ns = T0 - 1000;
    d.attr.has = SKY_HAS_MTIME;
    snprintf(d.attr.etag, sizeof d.attr.etag, "%s", etag);
    return d;
}

static bool has(struct meta *m, const char *path)
{
    uint64_t ino;
    return meta_find_path(m, "c", path, &ino, NULL) == 0;
}

/* One whole crawl of the entries given, begun at `start`, swept. */
static int64_t crawl(struct meta *m, int64_t start, const struct sky_dirent *ents, size_t n)
{
    struct sky_err e = { 0 };
    int64_t gen = 0;
    CHECK_INT(meta_crawl_begin(m, "c", start, &gen, &e), 0);
    CHECK_INT(meta_crawl_store(m, "c", gen, start, start + 1, ents, n, n, &e), 0);
    char *cursor = NULL;
    bool done = false;
    uint64_t removed = 0;
    while (!done)
        if (meta_crawl_sweep(m, "c", gen, start, &cursor, 2, &removed, &done, &e) != 0)
            break;
    free(cursor);
    CHECK_INT(meta_crawl_end(m, "c", start, start + 10, n, NULL, &e), 0);
    return gen;
}

TEST(crawlstore_implies_directories_and_sweeps)
{
    char *dir = unit_tmpdir();
    uint64_t root;
    struct meta *m = open_meta(dir, &root);
    struct sky_dirent first[] = { ent("a/b/c/one.png", SKY_FILE, "e1"),
                                  ent("a/readme.txt", SKY_FILE, "e2"),
                                  ent("top.txt", SKY_FILE, "e3") };
    CHECK_INT(crawl(m, T0, first, 3), 1);
    CHECK(has(m, "a") && has(m, "a/b") && has(m, "a/b/c") && has(m, "a/b/c/one.png"));
    struct meta_entry d;
    uint64_t ino;
    CHECK_INT(meta_find_path(m, "c", "a/b", &ino, NULL), 0);
    CHECK_INT(meta_get(m, ino, &d, NULL), 0);
    CHECK_INT(d.attr.kind, SKY_DIR);
    CHECK_INT(d.listed_at, 0);          /* a flat crawl never marks a listing fresh */
    meta_entry_free(&d);

    /* a refresh: a/b/c/one.png still there (so a/b, reached only through
     * a/b/c, stays), top.txt gone */
    struct sky_dirent second[] = { ent("a/b/c/one.png", SKY_FILE, "e1"),
                                   ent("a/readme.txt", SKY_FILE, "e2") };
    CHECK_INT(crawl(m, T0 + 100, second, 2), 2);
    CHECK(has(m, "a/b") && has(m, "a/b/c/one.png") && has(m, "a/readme.txt"));
    CHECK(!has(m, "top.txt"));

    /* a third: the a/b tree gone as a whole */
    struct sky_dirent third[] = { ent("a/readme.txt", SKY_FILE, "e2") };
    crawl(m, T0 + 200, third, 1);
    CHECK(!has(m, "a/b") && !has(m, "a/b/c") && !has(m, "a/b/c/one.png"));
    CHECK(has(m, "a/readme.txt"));
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

TEST(crawlstore_leaves_the_mounts_news)
{
    char *dir = unit_tmpdir();
    uint64_t root;
    struct meta *m = open_meta(dir, &root);
    struct sky_err e = { 0 };
    struct sky_dirent first[] = { ent("old.txt", SKY_FILE, "e1") };
    crawl(m, T0, first, 1);
    /* during the next crawl the mount creates new.txt and rewrites
     * old.txt (fetched after the crawl began): the crawl, which saw
     * neither new.txt nor the new old.txt, keeps both as the mount left
     * them */
    int64_t start = T0 + 100, gen;
    CHECK_INT(meta_crawl_begin(m, "c", start, &gen, &e), 0);
    struct sky_attr a = ent("x", SKY_FILE, "e9").attr;
    uint64_t ino;
    CHECK_INT(meta_upsert(m, root, "new.txt", &a, NULL, start + 5, &ino, &e), 0);
    CHECK_INT(meta_upsert(m, root, "old.txt", &a, NULL, start + 5, &ino, &e), 0);
    struct sky_dirent stale[] = { ent("old.txt", SKY_FILE, "e1") };
    CHECK_INT(meta_crawl_store(m, "c", gen, start, start + 1, stale, 1, 1, &e), 0);
    char *cursor = NULL;
    bool done = false;
    uint64_t removed = 0;
    while (!done)
        if (meta_crawl_sweep(m, "c", gen, start, &cursor, 100, &removed, &done, &e) != 0)
            break;
    free(cursor);
    CHECK_INT(removed, 0);
    CHECK(has(m, "new.txt"));
    struct meta_entry d;
    CHECK_INT(meta_get(m, ino, &d, NULL), 0);
    CHECK_STR(d.attr.etag, "e9");
    meta_entry_free(&d);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* A file held by the mount (writes here wait for their upload) stays as
 * the cache has it when the crawl finds another version, or a folder,
 * at its name: nothing is put under it, its size and etag stay. */
TEST(crawlstore_leaves_a_held_file_as_it_is)
{
    char *dir = unit_tmpdir();
    uint64_t root;
    struct meta *m = open_meta(dir, &root);
    struct sky_dirent first[] = { ent("held.txt", SKY_FILE, "e1"),
                                  ent("notes.txt", SKY_FILE, "e2") };
    crawl(m, T0, first, 2);
    uint64_t held, notes;
    CHECK_INT(meta_find_path(m, "c", "held.txt", &held, NULL), 0);
    CHECK_INT(meta_find_path(m, "c", "notes.txt", &notes, NULL), 0);
    CHECK_INT(meta_hold(m, held), 0);
    CHECK_INT(meta_hold(m, notes), 0);
    /* another machine made held.txt a folder, and rewrote notes.txt */
    struct sky_dirent second[] = { ent("held.txt/inside.txt", SKY_FILE, "e3"),
                                   ent("notes.txt", SKY_FILE, "e4") };
    second[1].attr.size = 99;
    crawl(m, T0 + 100, second, 2);
    struct meta_entry d;
    CHECK_INT(meta_get(m, held, &d, NULL), 0);
    CHECK_INT(d.attr.kind, SKY_FILE);
    CHECK_STR(d.attr.etag, "e1");
    meta_entry_free(&d);
    CHECK(!has(m, "held.txt/inside.txt"));
    CHECK_INT(meta_get(m, notes, &d, NULL), 0);
    CHECK_INT(d.attr.size, 7);
    CHECK_STR(d.attr.etag, "e2");
    meta_entry_free(&d);
    /* let go: the next crawl brings the cloud's */
    meta_unhold(m, held);
    meta_unhold(m, notes);
    crawl(m, T0 + 200, second, 2);
    CHECK(has(m, "held.txt/inside.txt"));
    CHECK_INT(meta_get(m, notes, &d, NULL), 0);
    CHECK_INT(d.attr.size, 99);
    meta_entry_free(&d);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

TEST(crawlstore_fills_in_what_the_mounts_listing_lacked)
{
    char *dir = unit_tmpdir();
    uint64_t root;
    struct meta *m = open_meta(dir, &root);
    struct sky_err e = { 0 };
    /* during a crawl the mount lists small.txt (version e1) without its
     * metadata (the crawl's own HEAD of that version was remembered, so
     * the listing did not ask), after the crawl began; the crawl then
     * stores the same version with the mode and mtime its HEAD brought:
     * they go in.  other.txt, listed by the mount in a new version (e5),
     * keeps the mount's news. */
    int64_t start = T0, gen;
    CHECK_INT(meta_crawl_begin(m, "c", start, &gen, &e), 0);
    struct sky_attr bare = { .kind = SKY_FILE, .size = 7, .mtime_ns = T0 + 3 };
    snprintf(bare.etag, sizeof bare.etag, "e1");
    uint64_t small, other;
    CHECK_INT(meta_upsert(m, root, "small.txt", &bare, NULL, start + 5, &small, &e), 0);
    snprintf(bare.etag, sizeof bare.etag, "e5");
    CHECK_INT(meta_upsert(m, root, "other.txt", &bare, NULL, start + 5, &other, &e), 0);
    struct sky_dirent crawled[] = { ent("small.txt", SKY_FILE, "e1"),
                                    ent("other.txt", SKY_FILE, "e4") };
    crawled[0].attr.mode = 0640;
    crawled[0].attr.has |= SKY_HAS_MODE;
    CHECK_INT(meta_crawl_store(m, "c", gen, start, start + 1, crawled, 2, 2, &e), 0);
    struct meta_entry d;
    CHECK_INT(meta_get(m, small, &d, NULL), 0);
    CHECK_INT(d.attr.mode & 07777, 0640);
    CHECK(d.attr.mtime_ns == T0 - 1000);
    CHECK(d.attr.has & SKY_HAS_MTIME);
    meta_entry_free(&d);
    CHECK_INT(meta_get(m, other, &d, NULL), 0);
    CHECK_STR(d.attr.etag, "e5");
    CHECK_INT(d.attr.has, 0);
    meta_entry_free(&d);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

/* An S3 crawl lists versions without their metadata (mode, mtime): an
 * entry whose metadata the cache read for the listed version (the same
 * ETag, size and cloud stamp) is fresh again, as after a listing through
 * the mount; one whose stamp moved (another client's copy in place: the
 * same ETag, new metadata) stays as stale as it was, so that the mount
 * still asks about it past the ttl. */
TEST(crawlstore_refreshes_only_versions_it_can_vouch_for)
{
    char *dir = unit_tmpdir();
    uint64_t root;
    struct meta *m = open_meta(dir, &root);
    struct sky_err e = { 0 };
    const int64_t s1 = T0 - 5000000000LL, s2 = T0 - 2000000000LL;
    struct sky_attr read = { .kind = SKY_FILE, .size = 7, .mtime_ns = 42, .mode = 0600,
                             .has = SKY_HAS_MODE | SKY_HAS_MTIME, .modified_ns = s1 };
    snprintf(read.etag, sizeof read.etag, "e1");
    uint64_t same, moved;
    CHECK_INT(meta_upsert(m, root, "same.txt", &read, NULL, T0 - 100, &same, &e), 0);
    CHECK_INT(meta_upsert(m, root, "moved.txt", &read, NULL, T0 - 100, &moved, &e), 0);
    struct sky_dirent listed[] = { ent("moved.txt", SKY_FILE, "e1"),
                                   ent("same.txt", SKY_FILE, "e1") };
    for (int i = 0; i < 2; i++)
        listed[i].attr.has = 0;         /* a listing: no metadata */
    listed[0].attr.modified_ns = s2;
    listed[1].attr.modified_ns = s1 + 123000000;    /* milliseconds: the same second */
    crawl(m, T0, listed, 2);
    struct meta_entry d;
    CHECK_INT(meta_get(m, same, &d, NULL), 0);
    CHECK_INT(d.fetched_at, T0 + 1);                /* vouched for: fresh */
    CHECK_INT(d.attr.mode & 07777, 0600);
    meta_entry_free(&d);
    CHECK_INT(meta_get(m, moved, &d, NULL), 0);
    CHECK_INT(d.fetched_at, T0 - 100);              /* not: as stale as it was */
    CHECK_INT(d.attr.mode & 07777, 0600);
    meta_entry_free(&d);
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

TEST(crawlstore_directory_beats_object_of_same_name)
{
    char *dir = unit_tmpdir();
    uint64_t root;
    struct meta *m = open_meta(dir, &root);
    /* an object "x" beside objects under "x/": x is a directory */
    struct sky_dirent ents[] = { ent("x/inner.txt", SKY_FILE, "e1"), ent("x", SKY_FILE, "e2") };
    crawl(m, T0, ents, 2);
    uint64_t ino;
    struct meta_entry d;
    CHECK_INT(meta_find_path(m, "c", "x", &ino, NULL), 0);
    CHECK_INT(meta_get(m, ino, &d, NULL), 0);
    CHECK_INT(d.attr.kind, SKY_DIR);
    meta_entry_free(&d);
    CHECK(has(m, "x/inner.txt"));
    meta_close(m);
    unit_rmtree(dir);
    free(dir);
}

TEST(crawlstore_walk_order_and_state)
{
    char *dir = unit_tmpdir();
    uint64_t root;
    struct meta *m = open_meta(dir, &root);
    struct sky_err e = { 0 };
    struct crawl_state st;
    CHECK_INT(meta_crawl_state(m, "c", &st, &e), 0);
    CHECK_INT(st.gen, 0);
    CHECK_INT(st.done_started, 0);
    struct sky_dirent ents[] = { ent("a", SKY_DIR, ""), ent("a b", SKY_DIR, ""),
                                 ent("a/z", SKY_DIR, ""), ent("f", SKY_FILE, "e") };
    crawl(m, T0, ents, 4);
    /* directories after "", in path order: children after their parent */
    const char *want[] = { "a", "a b", "a/z" };
    char *after = strdup("");
    for (size_t i = 0; i < 3; i++) {
        uint64_t ino;
        char *p = NULL;
        CHECK_INT(meta_crawl_next_dir(m, "c", after, &ino, &p, &e), 0);
        CHECK_STR(p, want[i]);
        free(after);
        after = p ? p : strdup("");
    }
    uint64_t ino;
    char *p = NULL;
    CHECK_INT(meta_crawl_next_dir(m, "c", after, &ino, &p, &e), -ENOENT);
    free(after);
    CHECK_INT(meta_crawl_state(m, "c", &st, &e), 0);
    CHECK_INT(st.gen, 1);
    CHECK_INT(st.running_since, 0);
    CHECK_INT(st.done_started, T0);
    CHECK_INT(st.done_finished, T0 + 10);
    CHECK_INT(st.done_entries, 4);
    /* a failed crawl keeps the last complete one and says why */
    int64_t gen;
    CHECK_INT(meta_crawl_begin(m, "c", T0 + 50, &gen, &e), 0);
    CHECK_INT(meta_crawl_state(m, "c", &st, &e), 0);
    CHECK_INT(st.running_since, T0 + 50);
    CHECK_INT(meta_crawl_end(m, "c", T0 + 50, T0 + 60, 0, "server said no", &e), 0);
    meta_close(m);
    char db[512];
    snprintf(db, sizeof db, "%s/meta.db", dir);
    CHECK_INT(crawlstate_read_file(db, "c", &st, &e), 0);
    CHECK_INT(st.done_started, T0);
    CHECK_INT(st.failed_at, T0 + 60);
    CHECK_STR(st.error, "server said no");
    CHECK_INT(st.running_since, 0);
    unit_rmtree(dir);
    free(dir);
}
