/*
 * status.c - `skyfs status`: whether a daemon serves the config's mount,
 * where it logs, what the mount's caches hold and how each cloud is
 * doing, read from the cache directory (works mounted or not).  Cloud
 * health is what the daemon last saw; with no daemon running (unmounted,
 * or killed) it is shown as such, never as "online".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cache/blocks.h"
#include "../cache/cachedir.h"
#include "../fs/skyfs.h"
#include "../lib/config.h"
#include "tools.h"

static void print_health(const struct sky_config *cfg, const struct sky_cloud_config *c,
                         bool served)
{
    char *path = cloud_health_path(cfg->cache_dir, c->name);
    char line[600] = "never mounted";
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        if (fgets(line, sizeof line, f))
            line[strcspn(line, "\n")] = '\0';
        fclose(f);
    }
    if (served || strcmp(line, "never mounted") == 0)
        printf("  %-16s %-6s %s\n", c->name, c->type, line);
    else
        printf("  %-16s %-6s not served (no daemon; last seen %s)\n", c->name, c->type, line);
    free(path);
}

/* "mount: ..." and "log: ..." lines; whether a daemon serves the cache. */
static bool print_daemon(const char *cache_dir)
{
    struct cachedir_holder h;
    struct sky_err e = { 0 };
    if (cachedir_holder(cache_dir, &h, &e) != 0) {
        printf("mount: unknown (%s)\n", e.msg);
        return false;
    }
    if (h.pid > 0)
        printf("mount: %s (daemon pid %d)\n", h.mountpoint[0] ? h.mountpoint : "?", (int)h.pid);
    else if (h.mountpoint[0])
        printf("mount: not mounted (no skyfs daemon serves this cache; last mounted at %s)\n",
               h.mountpoint);
    else
        printf("mount: not mounted (never mounted with this cache)\n");
    if (h.log_path[0])
        printf("log: %s\n", h.log_path);
    return h.pid > 0;
}

int cmd_status(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            config = argv[++i];
        else {
            fprintf(stderr, "skyfs: status: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    struct sky_err e = { 0 };
    struct sky_config *cfg;
    char *path = config ? strdup(config) : sky_config_default_path();
    int rc = path ? sky_config_load(path, &cfg, &e) : sky_fail(&e, 12, "out of memory");
    free(path);
    if (rc) {
        fprintf(stderr, "skyfs: %s\n", e.msg);
        return 1;
    }
    bool served = print_daemon(cfg->cache_dir);
    printf("clouds:\n");
    for (size_t i = 0; i < cfg->nclouds; i++)
        print_health(cfg, &cfg->clouds[i], served);
    struct blocks *b;
    struct blocks_stats st;
    if (blocks_open(cfg->cache_dir, cfg->block_size, cfg->max_size, &b, &e) == 0) {
        if (blocks_stats(b, &st, &e) == 0)
            printf("block cache: %s\n  %llu objects, %llu MiB of %llu MiB, %llu pending "
                   "upload(s)\n", cfg->cache_dir, (unsigned long long)st.objects,
                   (unsigned long long)(st.bytes_present >> 20),
                   (unsigned long long)(st.max_size >> 20),
                   (unsigned long long)st.dirty_objects);
        blocks_close(b);
    }
    if (e.code)
        fprintf(stderr, "skyfs: cache: %s\n", e.msg);
    sky_config_free(cfg);
    return e.code ? 1 : 0;
}
