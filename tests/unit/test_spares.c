/* test_spares.c - empty data files made ahead of need (cache/spares.h). */
#include "check.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../cache/spares.h"

/* Take until a spare is ready (the thread makes them), at most ~5 s. */
static int take_soon(struct spares *s, const char *file)
{
    for (int i = 0; i < 500; i++) {
        int fd = spares_take(s, file);
        if (fd >= 0)
            return fd;
        nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
    }
    return -1;
}

static off_t size_of(const char *file)
{
    struct stat st;
    return stat(file, &st) == 0 ? st.st_size : -1;
}

TEST(spares_make_new_data_files_ahead_and_survive_a_restart)
{
    char *dir = unit_tmpdir();
    char spare_dir[512], file[512], other[512], junk[512];
    snprintf(spare_dir, sizeof spare_dir, "%s/spare", dir);
    snprintf(file, sizeof file, "%s/a", dir);
    snprintf(other, sizeof other, "%s/b", dir);

    struct spares *s = spares_new(dir);
    CHECK(s != NULL);
    CHECK_INT(unit_count_files(spare_dir), 0);       /* nothing made before the first take */
    int fd = take_soon(s, file);
    CHECK(fd >= 0);
    CHECK_INT(write(fd, "abc", 3), 3);          /* the caller's data file, writable */
    close(fd);
    CHECK_INT((int)size_of(file), 3);
    /* a file already at the name is replaced by an empty one */
    fd = take_soon(s, file);
    CHECK(fd >= 0);
    close(fd);
    CHECK_INT((int)size_of(file), 0);
    /* the thread refills, up to its limit */
    for (int i = 0; i < 500 && unit_count_files(spare_dir) < 64; i++)
        nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
    CHECK_INT(unit_count_files(spare_dir), 64);
    spares_free(s);
    CHECK_INT(unit_count_files(spare_dir), 64);      /* kept for the next process */

    /* the next process takes them over at once; a non-empty file found
     * there goes */
    snprintf(junk, sizeof junk, "%s/junk", spare_dir);
    FILE *f = fopen(junk, "w");
    CHECK(f != NULL);
    fputs("not empty", f);
    fclose(f);
    s = spares_new(dir);
    fd = spares_take(s, other);
    CHECK(fd >= 0);
    close(fd);
    CHECK_INT((int)size_of(other), 0);
    snprintf(junk, sizeof junk, "%s/junk", spare_dir);
    CHECK_INT((int)size_of(junk), -1);
    spares_free(s);

    /* no place for spares (the cache directory is a file): every take
     * says so, and nothing breaks */
    char notdir[512];
    snprintf(notdir, sizeof notdir, "%s/a", dir);
    s = spares_new(notdir);
    CHECK_INT(spares_take(s, other), -1);
    CHECK_INT(spares_take(s, other), -1);
    spares_free(s);
    CHECK_INT(spares_take(NULL, other), -1);
    spares_free(NULL);
    unit_rmtree(dir);
    free(dir);
}
