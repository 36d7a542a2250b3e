/*
 * test_objstore_incr.c - the planner of incremental uploads in parts
 * (objstore_plan_parts), no server: an append copies the old object and
 * sends the new tail; a write in the middle sends at least a minimum
 * part; every plan covers the new object exactly once, copies only
 * unchanged bytes below the old size, and keeps S3's part limits; and a
 * plan that would copy nothing is refused.
 */
#include "check.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../backends/objstore.h"

#define MiB (1ull << 20)

static const struct objstore_part_rules rules = {
    .min_part = 5 * MiB, .send_part = 8 * MiB, .max_part = 5ull << 30, .max_parts = 10000,
};

/* Is plan p[0..n) valid for a new object of `size` bytes: contiguous from
 * 0 to size, no copied byte dirty or at/past base_size, every part but the
 * last at least min_part?  *sent gets the bytes sent. */
static bool plan_ok(const struct objstore_piece *p, size_t n, uint64_t size, uint64_t base_size,
                    const struct sky_range *d, size_t nd, uint64_t *sent)
{
    uint64_t at = 0;
    *sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i].off != at || p[i].len == 0 || p[i].len > rules.max_part)
            return false;
        if (i + 1 < n && p[i].len < rules.min_part)
            return false;
        if (p[i].copy) {
            if (p[i].off + p[i].len > base_size)
                return false;
            for (size_t k = 0; k < nd; k++)
                if (d[k].off < p[i].off + p[i].len && d[k].off + d[k].len > p[i].off)
                    return false;
        } else {
            *sent += p[i].len;
        }
        at += p[i].len;
    }
    return at == size;
}

TEST(objstore_plan_append_sends_only_the_tail)
{
    struct sky_range d[] = { { 64 * MiB, 1 * MiB } };
    struct objstore_piece *p = NULL;
    size_t n = 0;
    uint64_t sent;
    CHECK_INT(objstore_plan_parts(65 * MiB, 64 * MiB, d, 1, &rules, &p, &n), 0);
    CHECK(plan_ok(p, n, 65 * MiB, 64 * MiB, d, 1, &sent));
    CHECK_INT(sent, 1 * MiB);
    CHECK_INT(n, 2);
    free(p);
}

TEST(objstore_plan_middle_write_sends_a_minimum_part)
{
    struct sky_range d[] = { { 32 * MiB, 1 * MiB } };
    struct objstore_piece *p = NULL;
    size_t n = 0;
    uint64_t sent;
    CHECK_INT(objstore_plan_parts(64 * MiB, 64 * MiB, d, 1, &rules, &p, &n), 0);
    CHECK(plan_ok(p, n, 64 * MiB, 64 * MiB, d, 1, &sent));
    CHECK_INT(sent, 5 * MiB);
    free(p);
}

TEST(objstore_plan_scattered_writes_stay_valid)
{
    /* many small dirty ranges, some closer than a minimum part */
    struct sky_range d[40];
    size_t nd = 0;
    for (uint64_t off = 3 * MiB; off < 200 * MiB && nd < 40; off += (nd % 3 ? 2 : 11) * MiB)
        d[nd++] = (struct sky_range){ off, MiB / 2 };
    uint64_t sizes[] = { 150 * MiB, 201 * MiB, 260 * MiB + 17 };
    for (size_t s = 0; s < 3; s++) {
        struct objstore_piece *p = NULL;
        size_t n = 0;
        uint64_t sent;
        int rc = objstore_plan_parts(sizes[s], 200 * MiB, d, nd, &rules, &p, &n);
        CHECK(rc == 0 || rc == -ENOTSUP);
        if (rc == 0) {
            CHECK(plan_ok(p, n, sizes[s], 200 * MiB, d, nd, &sent));
            CHECK(sent < sizes[s]);
        }
        free(p);
    }
}

TEST(objstore_plan_refuses_when_nothing_is_copied)
{
    struct objstore_piece *p = NULL;
    size_t n = 0;
    /* every 4 MiB dirty: no unchanged run of 5 MiB */
    struct sky_range d[8];
    for (int i = 0; i < 8; i++)
        d[i] = (struct sky_range){ (uint64_t)i * 4 * MiB, MiB };
    CHECK_INT(objstore_plan_parts(32 * MiB, 32 * MiB, d, 8, &rules, &p, &n), -ENOTSUP);
    /* a small object */
    CHECK_INT(objstore_plan_parts(3 * MiB, 3 * MiB, NULL, 0, &rules, &p, &n), -ENOTSUP);
    /* nothing of the old object below the new size */
    struct sky_range all[] = { { 0, 64 * MiB } };
    CHECK_INT(objstore_plan_parts(64 * MiB, 64 * MiB, all, 1, &rules, &p, &n), -ENOTSUP);
}

TEST(objstore_plan_truncate_copies_below_the_new_size_only)
{
    /* shrunk to 40 MiB + 3 bytes: the partial last block is dirty */
    struct sky_range d[] = { { 40 * MiB, MiB } };
    struct objstore_piece *p = NULL;
    size_t n = 0;
    uint64_t sent;
    CHECK_INT(objstore_plan_parts(40 * MiB + 3, 64 * MiB, d, 1, &rules, &p, &n), 0);
    CHECK(plan_ok(p, n, 40 * MiB + 3, 64 * MiB, d, 1, &sent));
    CHECK_INT(sent, 3);
    free(p);
    /* without any dirty range, a shrink copies the kept prefix only */
    CHECK_INT(objstore_plan_parts(40 * MiB, 64 * MiB, NULL, 0, &rules, &p, &n), 0);
    CHECK(plan_ok(p, n, 40 * MiB, 64 * MiB, NULL, 0, &sent));
    CHECK_INT(sent, 0);
    free(p);
}
