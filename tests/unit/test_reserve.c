/* test_reserve.c - room kept back for the caches' databases (cache/reserve.h). */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../cache/reserve.h"

/* Bytes the file occupies on disk (allocated, not only its length). */
static long long allocated(const char *file)
{
    struct stat st;
    return stat(file, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
}

TEST(reserve_is_kept_released_once_and_made_again)
{
    char *dir = unit_tmpdir();
    char file[512];
    snprintf(file, sizeof file, "%s/reserve", dir);
    struct sky_err e = { 0 };

    /* no reserve in this process yet: nothing to release, nothing held */
    CHECK(!reserve_release());
    CHECK_INT((int)reserve_held_back(), 0);

    CHECK_INT(reserve_open(dir, 1u << 20, &e), 0);
    CHECK(allocated(file) >= (1 << 20));        /* blocks on disk, not a sparse length */
    CHECK_INT((int)reserve_held_back(), 0);

    CHECK(reserve_release());                   /* the room goes to the databases */
    CHECK(access(file, F_OK) != 0);
    CHECK_INT((int)reserve_held_back(), 1 << 20);
    CHECK(!reserve_release());                  /* once: nothing more to free */

    /* database writes watch the file system: with room, the reserve comes
     * back (tried every 10 * RESERVE_WATCH_MS while released) */
    for (int i = 0; i < 40 && reserve_held_back(); i++) {
        reserve_watch();
        nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
    }
    CHECK_INT((int)reserve_held_back(), 0);
    CHECK(allocated(file) >= (1 << 20));

    /* a second process takes the file over as it is */
    reserve_close();
    CHECK(!reserve_release());                  /* closed: no reserve */
    CHECK_INT(reserve_open(dir, 1u << 20, &e), 0);
    CHECK(allocated(file) >= (1 << 20));
    reserve_close();
    CHECK(access(file, F_OK) == 0);             /* it stays for the next process */
    free(dir);
}
