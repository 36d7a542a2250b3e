/*
 * cache.c - `skyfs cache stats|warm|evict`:
 *
 *   skyfs cache stats [-c CONFIG]   what the block cache holds
 *   skyfs cache warm PATH...        read every file under PATH (a path in a
 *                                   mounted skyfs; others are refused) so its
 *                                   blocks are cached, with a progress line
 *   skyfs cache evict PATH...       drop the cached data of the files at or
 *                                   under PATH (in a mounted skyfs), except
 *                                   open files and files not uploaded yet
 *
 * warm and evict go through the mount on purpose: the daemon holds the
 * open files and the cache's state in memory, so it must do the work.  warm
 * reads like any reader; evict sets the xattr user.skyfs.evict = TOKEN on
 * PATH, and reads what it did from MOUNT/.skyfs's user.skyfs.evicted.TOKEN
 * (fs/virtual.h).  Nothing here knows the cache layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
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
    rc = blocks_open(cfg->cache_dir, cfg->block_size, cfg->max_size, NULL, &b, &e);
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

/* The root of the skyfs mount holding `path` (its .skyfs answers
 * user.skyfs.requests), into root; -1 when path is in none. */
static int mount_root_of(const char *path, char *root, size_t size)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return -1;
    for (;;) {
        char probe[PATH_MAX + 16];
        snprintf(probe, sizeof probe, "%s/.skyfs", strcmp(real, "/") == 0 ? "" : real);
        if (getxattr(probe, "user.skyfs.requests", NULL, 0) >= 0) {
            snprintf(root, size, "%s", real);
            return 0;
        }
        char *slash = strrchr(real, '/');
        if (!slash || slash == real)
            return -1;
        *slash = '\0';
    }
}


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
        char root[PATH_MAX];
        if (mount_root_of(argv[i], root, sizeof root) != 0) {
            /* reading files elsewhere would only fill the page cache */
            fprintf(stderr, "skyfs: cache warm: %s: not a path inside a mounted skyfs\n",
                    argv[i]);
            warm.failed++;
            continue;
        }
        if (nftw(argv[i], warm_one, 32, FTW_PHYS) != 0) {
            fprintf(stderr, "skyfs: cache warm: %s: %s\n", argv[i], strerror(errno));
            warm.failed++;
        }
    }
    warm_progress(true);
    return warm.failed ? 1 : 0;
}

/* ---- evict ------------------------------------------------------------ */

struct evict_total {
    unsigned long long files, bytes, skipped;
};

/* Ask the daemon to evict at `path`; add what it did to *t. */
static int evict_one(const char *path, int n, struct evict_total *t)
{
    char root[PATH_MAX], token[64], name[96], value[128];
    if (mount_root_of(path, root, sizeof root) != 0) {
        fprintf(stderr, "skyfs: cache evict: %s: not a path inside a mounted skyfs\n", path);
        return -1;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(token, sizeof token, "%ld-%lld-%09ld-%d", (long)getpid(), (long long)now.tv_sec,
             now.tv_nsec, n);
    if (setxattr(path, "user.skyfs.evict", token, strlen(token), 0) != 0) {
        fprintf(stderr, "skyfs: cache evict: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char at[PATH_MAX + 16];
    snprintf(at, sizeof at, "%s/.skyfs", root);
    snprintf(name, sizeof name, "user.skyfs.evicted.%s", token);
    ssize_t len = getxattr(at, name, value, sizeof value - 1);
    value[len > 0 ? len : 0] = '\0';
    unsigned long long files, bytes, skipped;
    if (sscanf(value, "files %llu bytes %llu skipped %llu", &files, &bytes, &skipped) != 3) {
        fprintf(stderr, "skyfs: cache evict: %s: evicted, but the daemon did not say how much\n",
                path);
        return 0;
    }
    t->files += files;
    t->bytes += bytes;
    t->skipped += skipped;
    return 0;
}

static int cache_evict(int argc, char **argv)
{
    if (argc == 0) {
        fprintf(stderr, "skyfs: usage: skyfs cache evict PATH... (paths inside a skyfs mount)\n");
        return 2;
    }
    struct evict_total t = { 0 };
    int failed = 0;
    for (int i = 0; i < argc; i++)
        failed += evict_one(argv[i], i, &t) != 0;
    if (failed < argc)
        printf("evicted %llu files (%.1f MiB); %llu skipped (open or not uploaded yet)\n",
               t.files, (double)t.bytes / (1 << 20), t.skipped);
    return failed ? 1 : 0;
}

int cmd_cache(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "stats") == 0)
        return cache_stats(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "warm") == 0)
        return cache_warm(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "evict") == 0)
        return cache_evict(argc - 2, argv + 2);
    fprintf(stderr, "skyfs: usage: skyfs cache stats [-c CONFIG] | skyfs cache warm PATH... | "
            "skyfs cache evict PATH...\n");
    return 2;
}
