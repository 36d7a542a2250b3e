/*
 * index.c - `skyfs index [-c CONFIG] [--metadata] [PATH]`: fill the
 * metadata index of every cloud (or of PATH, "cloud/dir" as seen in the
 * mount) ahead of time, with a progress line on stderr.  --metadata then
 * fetches the cloud metadata the listings did not carry (fs/index.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../fs/index.h"
#include "../fs/skyfs.h"
#include "../lib/clock.h"
#include "../lib/config.h"
#include "tools.h"

static void show_progress(void *arg, const struct index_progress *p)
{
    bool tty = isatty(2);
    bool *listed = arg;         /* the listing line has been finished */
    if (p->meta_phase && !*listed) {
        fprintf(stderr, "%sindexing %s: %llu entries, %llu directories - done\n",
                tty ? "\r" : "", p->cloud, (unsigned long long)p->entries,
                (unsigned long long)p->directories);
        *listed = true;
    }
    if (!p->done && !tty)
        return;
    if (p->meta_phase)
        fprintf(stderr, "%smetadata %s: %llu/%llu files%s", tty ? "\r" : "", p->cloud,
                (unsigned long long)p->meta_done, (unsigned long long)p->meta_total,
                p->done ? " - done\n" : "");
    else
        fprintf(stderr, "%sindexing %s: %llu entries, %llu directories%s", tty ? "\r" : "",
                p->cloud, (unsigned long long)p->entries, (unsigned long long)p->directories,
                p->done ? " - done\n" : "");
}

int cmd_index(int argc, char **argv)
{
    const char *config = NULL, *target = NULL;
    bool metadata = false;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--metadata") == 0)
            metadata = true;
        else if (!target && argv[i][0] != '-')
            target = argv[i];
        else {
            fprintf(stderr, "skyfs: usage: skyfs index [-c CONFIG] [--metadata] "
                            "[CLOUD[/DIR]]\n");
            return 2;
        }
    }
    struct sky_err e = { 0 };
    struct sky_config *cfg;
    char *cpath = config ? strdup(config) : sky_config_default_path();
    int rc = cpath ? sky_config_load(cpath, &cfg, &e) : -1;
    free(cpath);
    if (rc) {
        fprintf(stderr, "skyfs: %s\n", e.msg);
        return 1;
    }
    char *cloud_name = NULL;
    const char *sub = "";
    if (target) {
        while (*target == '/')
            target++;
        cloud_name = strdup(target);
        char *slash = strchr(cloud_name, '/');
        if (slash) {
            *slash = '\0';
            sub = target + (slash - cloud_name) + 1;
        }
    }
    struct skyfs *fs;
    rc = skyfs_open(cfg, "", &fs, &e);
    if (rc) {
        fprintf(stderr, "skyfs: %s\n", e.msg);
        free(cloud_name);
        sky_config_free(cfg);
        return 1;
    }
    int failures = 0;
    bool found = false;
    for (size_t i = 0; i < fs->nclouds; i++) {
        struct cloud *c = &fs->clouds[i];
        if (cloud_name && strcmp(cloud_name, c->cfg->name) != 0)
            continue;
        found = true;
        char *path = strdup(sub);
        size_t n = strlen(path);
        while (n && path[n - 1] == '/')
            path[--n] = '\0';
        double t0 = clock_now_s();
        struct sky_err ce = { 0 };
        bool listed = false;
        if (index_cloud(fs, c, path, metadata, show_progress, &listed, &ce) != 0) {
            fprintf(stderr, "skyfs: index %s: %s\n", c->cfg->name, ce.msg);
            failures++;
        } else {
            fprintf(stderr, "indexed %s in %.2f s\n", c->cfg->name, clock_now_s() - t0);
        }
        free(path);
    }
    if (cloud_name && !found) {
        fprintf(stderr, "skyfs: index: no cloud named \"%s\" in %s\n", cloud_name, cfg->path);
        failures++;
    }
    skyfs_close(fs);
    free(cloud_name);
    sky_config_free(cfg);
    return failures ? 1 : 0;
}
