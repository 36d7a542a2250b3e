/*
 * status.c - `skyfs status`: what the mount's caches hold and how each
 * cloud is doing, read from the cache directory (works while mounted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cache/blocks.h"
#include "../fs/skyfs.h"
#include "../lib/config.h"
#include "tools.h"

static void print_health(const struct sky_config *cfg, const struct sky_cloud_config *c)
{
    char *path = cloud_health_path(cfg->cache_dir, c->name);
    char line[600] = "never mounted";
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        if (fgets(line, sizeof line, f))
            line[strcspn(line, "\n")] = '\0';
        fclose(f);
    }
    printf("  %-16s %-6s %s\n", c->name, c->type, line);
    free(path);
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
    printf("clouds:\n");
    for (size_t i = 0; i < cfg->nclouds; i++)
        print_health(cfg, &cfg->clouds[i]);
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
