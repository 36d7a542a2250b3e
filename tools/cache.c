/*
 * cache.c - `skyfs cache stats|warm`:
 *
 *   skyfs cache stats [-c CONFIG]   what the block cache holds
 *   skyfs cache warm PATH...        read every file under PATH (a path in a
 *                                   mounted skyfs) so its blocks are cached,
 *                                   with a progress line
 *
 * warm goes through the mount on purpose: the daemon fetches and caches the
 * blocks exactly as for any reader, so nothing here knows the cache layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../cache/blocks.h"
#include "../lib/config.h"
#include "tools.h"

static int cache_stats(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            config = argv[++i];
        else {
            fprintf(stderr, "skyfs: usage: skyfs cache stats [-c CONFIG]\n");
            return 2;
        }
    }
    struct sky_err e = { 0 };
    struct sky_config *cfg;
    char *path = config ? strdup(config) : sky_config_default_path();
    int rc = path ? sky_config_load(path, &cfg, &e) : sky_fail(&e, ENOMEM, "out of memory");
    free(path);
    if (rc) {
        fprintf(stderr, "skyfs: %s\n", e.msg);
        return 1;
    }
    struct blocks *b;
    struct blocks_stats st;
    rc = blocks_open(cfg->cache_dir, cfg->block_size, cfg->max_size, &b, &e);
    if (!rc) {
        rc = blocks_stats(b, &st, &e);
        blocks_close(b);
    }
    if (!rc) {
        printf("cache directory   %s\n", cfg->cache_dir);
        printf("objects           %llu\n", (unsigned long long)st.objects);
        printf("blocks present    %llu of %llu KiB (%llu of them in part)\n",
               (unsigned long long)st.blocks_present, (unsigned long long)(st.block_size >> 10),
               (unsigned long long)st.blocks_partial);
        printf("bytes cached      %.1f MiB of %llu MiB (max_size)\n",
               (double)st.bytes_present / (1 << 20), (unsigned long long)(st.max_size >> 20));
        printf("pending uploads   %llu\n", (unsigned long long)st.dirty_objects);
    } else {
        fprintf(stderr, "skyfs: %s\n", e.msg);
    }
    sky_config_free(cfg);
    return rc ? 1 : 0;
}

/* ---- warm ------------------------------------------------------------- */

static struct {
    unsigned long long files, bytes, failed;
    time_t last;
} warm;

static void warm_progress(bool done)
{
    time_t now = time(NULL);
    if (!done && now == warm.last)
        return;
    warm.last = now;
    fprintf(stderr, "\rwarming: %llu files, %llu MiB read%s", warm.files, warm.bytes >> 20,
            done ? "\n" : "");
}

static int warm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "\nskyfs: cache warm: %s: %s\n", path, strerror(errno));
        warm.failed++;
        return 0;
    }
    static char buf[1 << 20];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        warm.bytes += (unsigned long long)n;
        warm_progress(false);
    }
    if (n < 0) {
        fprintf(stderr, "\nskyfs: cache warm: %s: %s\n", path, strerror(errno));
        warm.failed++;
    }
    close(fd);
    warm.files++;
    warm_progress(false);
    return 0;
}

static int cache_warm(int argc, char **argv)
{
    if (argc == 0) {
        fprintf(stderr, "skyfs: usage: skyfs cache warm PATH... (paths inside a skyfs mount)\n");
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        if (nftw(argv[i], warm_one, 32, FTW_PHYS) != 0) {
            fprintf(stderr, "skyfs: cache warm: %s: %s\n", argv[i], strerror(errno));
            warm.failed++;
        }
    }
    warm_progress(true);
    return warm.failed ? 1 : 0;
}

int cmd_cache(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "stats") == 0)
        return cache_stats(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "warm") == 0)
        return cache_warm(argc - 2, argv + 2);
    fprintf(stderr, "skyfs: usage: skyfs cache stats [-c CONFIG] | skyfs cache warm PATH...\n");
    return 2;
}
