/* test_conflicts.c - conflict copy names and the per-cloud conflicts file
 * (fs/conflicts.c, issue 17). */
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fs/conflicts.h"

TEST(conflict_copy_names)
{
    char out[4096];
    time_t when = 1796454900;   /* 2026-12-05 07:15:00 UTC */
    CHECK(conflict_copy_name("a.txt", "vm", when, 1, out, sizeof out) == 0);
    CHECK_STR(out, "a.conflict-vm-20261205-071500.txt");
    CHECK(conflict_copy_name("dir/sub/report.tar.gz", "vm", when, 1, out, sizeof out) == 0);
    CHECK_STR(out, "dir/sub/report.tar.conflict-vm-20261205-071500.gz");
    CHECK(conflict_copy_name("d.x/README", "vm", when, 1, out, sizeof out) == 0);
    CHECK_STR(out, "d.x/README.conflict-vm-20261205-071500");
    CHECK(conflict_copy_name(".bashrc", "vm", when, 1, out, sizeof out) == 0);
    CHECK_STR(out, ".bashrc.conflict-vm-20261205-071500");
    CHECK(conflict_copy_name("a.txt", "vm", when, 3, out, sizeof out) == 0);
    CHECK_STR(out, "a.conflict-vm-20261205-071500-3.txt");
    char longname[300];
    memset(longname, 'x', 250);
    strcpy(longname + 250, ".txt");
    CHECK(conflict_copy_name(longname, "vm", when, 1, out, sizeof out) == -ENAMETOOLONG);
}

TEST(conflicts_file_round_trip)
{
    char *dir = unit_tmpdir();
    struct conflicts *cf = conflicts_open(dir, "c1");
    CHECK(cf != NULL);
    conflicts_set_guarantee(cf, 2, "the server ignores If-Match");
    conflicts_add(cf, "upload", "a\tb.txt", "a\tb.conflict-vm-20261205-071500.txt");
    conflicts_add(cf, "delete", "gone.txt", NULL);
    CHECK(conflicts_is_copy(cf, "a\tb.conflict-vm-20261205-071500.txt"));
    CHECK(conflicts_count(cf) == 2);

    struct conflicts_view v;
    CHECK(conflicts_read(dir, "c1", &v) == 0);
    CHECK(v.guarantee == 2);
    CHECK_STR(v.why, "the server ignores If-Match");
    CHECK(v.count == 2 && v.n == 2);
    CHECK_STR(v.items[0].path, "a\tb.txt");
    CHECK_STR(v.items[0].copy, "a\tb.conflict-vm-20261205-071500.txt");
    CHECK_STR(v.items[1].what, "delete");
    CHECK(v.items[1].copy == NULL);
    conflicts_view_free(&v);

    /* the copy removed: resolved, still counted; a later mount reads it back */
    CHECK(conflicts_gone(cf, "a\tb.conflict-vm-20261205-071500.txt"));
    CHECK(!conflicts_gone(cf, "a\tb.txt"));
    conflicts_free(cf);
    cf = conflicts_open(dir, "c1");
    CHECK(cf != NULL && conflicts_count(cf) == 2);
    CHECK(conflicts_read(dir, "c1", &v) == 0);
    CHECK(v.n == 1);
    CHECK_STR(v.items[0].path, "gone.txt");
    conflicts_view_free(&v);
    conflicts_free(cf);

    CHECK(conflicts_read(dir, "never", &v) == 0);      /* no file: nothing */
    CHECK(v.n == 0 && v.count == 0 && v.guarantee == 0);
    unit_rmtree(dir);
    free(dir);
}
