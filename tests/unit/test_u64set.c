/* test_u64set.c - the set of inode numbers (lib/u64set.c), against a
 * plain array as the model, through growth and many removals (removal
 * moves entries back: a wrong move makes a member unfindable). */
#include "check.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../lib/u64set.h"

TEST(u64set_adds_removes_and_finds_like_a_plain_array)
{
    struct u64set s = { 0 };
    CHECK(!u64set_has(&s, 1));
    CHECK(!u64set_remove(&s, 1));
    CHECK_INT(u64set_add(&s, 0), -22);          /* 0 is no member */
    enum { RANGE = 3000 };
    static bool model[RANGE];
    uint64_t x = 12345;
    size_t members = 0, wrong = 0;
    for (int round = 0; round < 200000; round++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t v = 1 + (x >> 33) % (RANGE - 1);
        if ((x >> 20) % 3) {            /* add twice as often as remove, then drain */
            if (round < 150000) {
                CHECK_INT(u64set_add(&s, v), 0);
                members += !model[v];
                model[v] = true;
                continue;
            }
        }
        wrong += u64set_remove(&s, v) != model[v];
        members -= model[v];
        model[v] = false;
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(s.n, members);
    for (uint64_t v = 1; v < RANGE; v++)
        wrong += u64set_has(&s, v) != model[v];
    CHECK_INT(wrong, 0);
    CHECK(u64set_add(&s, 1ULL << 63) == 0 && u64set_has(&s, 1ULL << 63));
    u64set_free(&s);
    CHECK(!u64set_has(&s, 1ULL << 63));
}
