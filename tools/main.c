/*
 * main.c - the `skyfs` command: parses the command line and hands each
 * subcommand to its module.  Every failure ends as one line on stderr,
 * "skyfs: <what is wrong; what to do>", and a non-zero exit.
 *
 *   skyfs mount [-c CONFIG] [-f] [--log FILE] [--debug] MOUNTPOINT
 *   skyfs unmount [--timeout SECONDS] MOUNTPOINT
 *   skyfs config check [-c CONFIG]
 *   skyfs status [-c CONFIG]
 *   skyfs search ... / skyfs index ... / skyfs cache stats|warm|evict ...
 *   mount.skyfs CONFIG MOUNTPOINT [-o OPTIONS]     (for /etc/fstab)
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backends/driver.h"
#include "../fs/skyfs.h"
#include "../lib/config.h"
#include "tools.h"

#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: skyfs COMMAND [OPTIONS]\n"
            "\n"
            "commands:\n"
            "  mount [-c CONFIG] [-f] [--log FILE] [--debug] MOUNTPOINT\n"
            "                    mount every configured cloud under MOUNTPOINT\n"
            "  unmount [--timeout SECONDS] MOUNTPOINT\n"
            "                    unmount, after pending uploads have finished\n"
            "  config check [-c CONFIG]\n"
            "                    validate the config and list its clouds\n"
            "  status [-c CONFIG]\n"
            "                    caches, pending uploads and each cloud's health\n"
            "  search [-c CONFIG] [--name GLOB] [--iname GLOB] [--path PATH] [--cloud NAME]\n"
            "         [--type f|d|l] [--min-size N] [--max-size N] [--newer DATE]\n"
            "         [--older DATE] [--meta KEY[=GLOB]]... [--content-type GLOB]\n"
            "         [--storage-class GLOB] [--limit N] [--long]\n"
            "                    find files in every cloud from the index, offline\n"
            "  index [-c CONFIG] [--metadata] [CLOUD[/DIR]]\n"
            "                    list clouds completely into the index ahead of time;\n"
            "                    --metadata also fetches user metadata listings lack\n"
            "  cache stats [-c CONFIG]\n"
            "                    what the block cache holds\n"
            "  cache warm PATH...\n"
            "                    read every file under PATH (in a mount) into the cache\n"
            "  cache evict PATH...\n"
            "                    drop the cached data of the files under PATH (in a mount),\n"
            "                    except open files and files not uploaded yet\n"
            "  help              this text\n"
            "\n"
            "CONFIG defaults to $SKYFS_CONFIG, else /etc/skyfs/skyfs.conf for root,\n"
            "else ~/.config/skyfs/skyfs.conf.  See README.md for the format.\n");
}

static int fail(const struct sky_err *e)
{
    fprintf(stderr, "skyfs: %s\n", e->msg);
    return 1;
}

static int load_config(const char *path, struct sky_config **cfg, struct sky_err *e)
{
    char *p = path ? strdup(path) : sky_config_default_path();
    if (!p)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = sky_config_load(p, cfg, e);
    free(p);
    return rc;
}

static int cmd_mount(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "foreground", no_argument, NULL, 'f' },
        { "log", required_argument, NULL, 'l' },
        { "debug", no_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL;
    struct mount_options opt = { 0 };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:fl:dh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'f': opt.foreground = true; break;
        case 'l': opt.log_file = optarg; break;
        case 'd': opt.debug = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "skyfs: mount needs exactly one MOUNTPOINT; "
                        "e.g. skyfs mount -c skyfs.conf ~/clouds\n");
        return EXIT_USAGE;
    }
    opt.mountpoint = argv[optind];
    struct sky_err e = { 0 };
    struct sky_config *cfg;
    if (load_config(config, &cfg, &e) != 0)
        return fail(&e);
    int rc = skyfs_mount(cfg, &opt, &e);
    sky_config_free(cfg);
    return rc ? fail(&e) : 0;
}

static int cmd_unmount(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "timeout", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    int timeout_s = UNMOUNT_DEFAULT_TIMEOUT_S, ch;
    char *end;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "t:", longopts, NULL)) != -1) {
        if (ch != 't' || (timeout_s = (int)strtol(optarg, &end, 10)) < 0 || *end) {
            fprintf(stderr, "skyfs: usage: skyfs unmount [--timeout SECONDS] MOUNTPOINT "
                            "(0: wait as long as it takes)\n");
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "skyfs: unmount needs exactly one MOUNTPOINT\n");
        return EXIT_USAGE;
    }
    return unmount_and_wait(argv[optind], timeout_s);
}

static int cmd_config(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "skyfs: usage: skyfs config check [-c CONFIG]\n");
        return EXIT_USAGE;
    }
    const char *config = NULL;
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            config = argv[++i];
        else {
            fprintf(stderr, "skyfs: config check: unexpected argument \"%s\"\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    struct sky_err e = { 0 };
    struct sky_config *cfg;
    if (load_config(config, &cfg, &e) != 0)
        return fail(&e);
    printf("%s: ok, %zu cloud(s); cache %s (max %llu MiB, blocks of %llu MiB)\n", cfg->path,
           cfg->nclouds, cfg->cache_dir, (unsigned long long)(cfg->max_size >> 20),
           (unsigned long long)(cfg->block_size >> 20));
    for (size_t i = 0; i < cfg->nclouds; i++) {
        const struct sky_cloud_config *c = &cfg->clouds[i];
        printf("  %-16s type %-6s%s", c->name, c->type, c->read_only ? " read-only" : "");
        for (size_t k = 0; k < c->nkv; k++) {
            bool secret = false;
            for (const struct sky_key *dk = c->driver->keys; dk && dk->name; dk++)
                if (strcmp(dk->name, c->kv[k].key) == 0)
                    secret = dk->flags & SKY_KEY_SECRET;
            printf(" %s=%s", c->kv[k].key, secret ? "(secret)" : c->kv[k].value);
        }
        printf("\n");
    }
    sky_config_free(cfg);
    return 0;
}

/* mount.skyfs CONFIG MOUNTPOINT [-o opts]: what mount(8) runs for fstab
 * lines of type fuse.skyfs or skyfs. */
static int mount_helper(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mount.skyfs CONFIG MOUNTPOINT [-o OPTIONS]\n");
        return EXIT_USAGE;
    }
    char *args[] = { "mount", "-c", argv[1], argv[2], NULL };
    return cmd_mount(4, args);
}

int main(int argc, char **argv)
{
    const char *self = basename(argv[0]);
    if (strcmp(self, "mount.skyfs") == 0 || strcmp(self, "mount.fuse.skyfs") == 0)
        return mount_helper(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "mount") == 0)
        return cmd_mount(argc - 1, argv + 1);
    if (strcmp(cmd, "unmount") == 0 || strcmp(cmd, "umount") == 0)
        return cmd_unmount(argc - 1, argv + 1);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    if (strcmp(cmd, "search") == 0)
        return cmd_search(argc - 1, argv + 1);
    if (strcmp(cmd, "index") == 0)
        return cmd_index(argc - 1, argv + 1);
    if (strcmp(cmd, "cache") == 0)
        return cmd_cache(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "skyfs: unknown command \"%s\"; run skyfs help\n", cmd);
    return EXIT_USAGE;
}
