/*
 * main.c - the `skyfs` command: parses the command line and hands each
 * subcommand to its module.  Every failure ends as one line on stderr,
 * "skyfs: <what is wrong; what to do>", and a non-zero exit.
 *
 *   skyfs mount [-c CONFIG] [-f] [--log FILE] [--debug] [-o OPTIONS] MOUNTPOINT
 *   skyfs unmount [--timeout SECONDS] MOUNTPOINT
 *   skyfs config check [-c CONFIG] | skyfs config keys
 *   skyfs status [-c CONFIG]
 *   skyfs metrics MOUNTPOINT
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
#include "../fs/mountopts.h"
#include "../fs/skyfs.h"
#include "../lib/config.h"
#include "../lib/version.h"
#include "tools.h"

#define EXIT_USAGE 2

/* Every command with its usage: `skyfs help`, `skyfs COMMAND --help` and
 * the usage errors print from here, so they never disagree. */
struct command {
    const char *name;
    const char *usage;          /* the arguments, after "skyfs NAME " */
    const char *summary;
};

static const struct command commands[] = {
    { "mount", "[-c CONFIG] [-f] [--log FILE] [--debug] [-o OPTIONS] MOUNTPOINT",
      "mount every configured cloud under MOUNTPOINT; OPTIONS: ro, rw, uid=N, gid=N,\n"
      "umask=NNN, allow_other, allow_root, default_permissions, nonempty, _netdev,\n"
      "nofail, x-* (see README \"Mount options\")" },
    { "unmount", "[--timeout SECONDS] MOUNTPOINT",
      "unmount, after pending uploads have finished (waiting at most SECONDS,\n"
      "default 300; 0: as long as it takes)" },
    { "config", "check [-c CONFIG] | keys",
      "check: validate the config and list its clouds; keys: every key a config\n"
      "may hold, by section and cloud type" },
    { "status", "[-c CONFIG] [--json]", "caches, pending uploads and each cloud's health" },
    { "search", "[-c CONFIG] [--name GLOB] [--iname GLOB] [--path PATH] [--cloud NAME]\n"
      "       [--type f|d|l] [--min-size N] [--max-size N] [--newer DATE]\n"
      "       [--older DATE] [--meta KEY[=GLOB]]... [--content-type GLOB]\n"
      "       [--storage-class GLOB] [--limit N] [--long] [-0 | --json] [GLOB]",
      "find files in every cloud from the index, offline; -0 ends each path with\n"
      "a NUL (for xargs -0), --json prints one JSON object per line" },
    { "index", "[-c CONFIG] [--metadata] [CLOUD[/DIR]]",
      "list clouds completely into the index ahead of time;\n"
      "--metadata also fetches user metadata listings lack" },
    { "cache", "stats [-c CONFIG] | warm PATH... | evict PATH...",
      "stats: what the block cache holds; warm: read every file under PATH (in a\n"
      "mount) into the cache; evict: drop the cached data of the files under PATH\n"
      "(in a mount), except open files and files not uploaded yet" },
    { "metrics", "MOUNTPOINT",
      "the daemon's metrics in the Prometheus text format (MOUNTPOINT/.skyfs/metrics)" },
    { "help", "[COMMAND]", "this text, or one command's" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const char *name)
{
    if (strcmp(name, "umount") == 0)
        name = "unmount";
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* "usage: skyfs NAME ARGS" with the summary indented below it. */
static void command_usage(FILE *out, const struct command *c)
{
    fprintf(out, "usage: skyfs %s %s\n", c->name, c->usage);
    fputs("    ", out);
    for (const char *p = c->summary; *p; p++) {
        putc(*p, out);
        if (*p == '\n')
            fputs("    ", out);
    }
    putc('\n', out);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: skyfs COMMAND [OPTIONS]     (skyfs COMMAND --help for one)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *c = &commands[i];
        fprintf(out, "  %s %s\n", c->name, c->usage);
        fputs("                    ", out);
        for (const char *p = c->summary; *p; p++) {
            putc(*p, out);
            if (*p == '\n')
                fputs("                    ", out);
        }
        putc('\n', out);
    }
    fprintf(out, "\n  mount.skyfs CONFIG MOUNTPOINT [-o OPTIONS]   (for /etc/fstab and mount -a)\n"
                 "  skyfs --version\n"
                 "\n"
                 "CONFIG defaults to $SKYFS_CONFIG, else /etc/skyfs/skyfs.conf for root,\n"
                 "else ~/.config/skyfs/skyfs.conf.  See README.md for the format.\n");
}

/* Does argv (the command's own arguments, after its name) ask for help?
 * Arguments after "--" are operands. */
static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
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
        { "options", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL;
    struct mount_options opt = { 0 };
    struct sky_err e = { 0 };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:fl:do:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'f': opt.foreground = true; break;
        case 'l': opt.log_file = optarg; break;
        case 'd': opt.debug = true; break;
        case 'o':
            if (mountopts_parse(&opt.o, optarg, &e) != 0) {
                fprintf(stderr, "skyfs: %s\n", e.msg);
                return EXIT_USAGE;
            }
            break;
        case 'h': command_usage(stdout, find_command("mount")); return 0;
        default: command_usage(stderr, find_command("mount")); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "skyfs: mount needs exactly one MOUNTPOINT; "
                        "e.g. skyfs mount -c skyfs.conf ~/clouds\n");
        return EXIT_USAGE;
    }
    opt.mountpoint = argv[optind];
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
            command_usage(stderr, find_command("unmount"));
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "skyfs: unmount needs exactly one MOUNTPOINT\n");
        return EXIT_USAGE;
    }
    return unmount_and_wait(argv[optind], timeout_s);
}

static void print_key(void *arg, const char *section, const char *key, const char *help)
{
    const char *where = strcmp(section, "cache") == 0 ? "[cache]"
                      : strcmp(section, "daemon") == 0 ? "[daemon]"
                      : strcmp(section, "*") == 0 ? "cloud" : section;
    printf("%-8s %-22s %s\n", where, key, help);
}

static int cmd_config(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "keys") == 0) {
        sky_config_each_key(print_key, NULL);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "skyfs: usage: skyfs config check [-c CONFIG] | skyfs config keys\n");
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
    if (skyfs_check_clouds(cfg, &e) != 0) {
        sky_config_free(cfg);
        return fail(&e);
    }
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

/* mount.skyfs CONFIG MOUNTPOINT [-sfnv] [-o OPTIONS] [-t TYPE]: what
 * mount(8) runs for fstab lines of type skyfs (or fuse.skyfs through
 * mount.fuse.skyfs).  -o goes to skyfs mount; mount(8)'s own flags
 * (-s sloppy, -f fake, -n no mtab, -v verbose) and -t are accepted. */
static int mount_helper(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: mount.skyfs CONFIG MOUNTPOINT [-o OPTIONS]\n"
               "    mount every cloud of CONFIG under MOUNTPOINT (for /etc/fstab and mount -a);\n"
               "    OPTIONS as for skyfs mount -o (see skyfs mount --help)\n");
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: mount.skyfs CONFIG MOUNTPOINT [-o OPTIONS]\n");
        return EXIT_USAGE;
    }
    char **args = calloc((size_t)argc + 4, sizeof *args);
    if (!args) {
        fprintf(stderr, "skyfs: out of memory\n");
        return 1;
    }
    int n = 0;
    bool fake = false;
    args[n++] = "mount";
    args[n++] = "-c";
    args[n++] = argv[1];
    for (int i = 3; i < argc; i++) {
        if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "-t") == 0) && i + 1 < argc) {
            if (argv[i][1] == 'o') {
                args[n++] = "-o";
                args[n++] = argv[i + 1];
            }
            i++;
        } else if (argv[i][0] == '-' && argv[i][1] && strspn(argv[i] + 1, "sfnv") ==
                   strlen(argv[i] + 1)) {
            fake = fake || strchr(argv[i], 'f');
        } else {
            fprintf(stderr, "skyfs: mount.skyfs: unexpected argument \"%s\"; usage: "
                    "mount.skyfs CONFIG MOUNTPOINT [-o OPTIONS]\n", argv[i]);
            free(args);
            return EXIT_USAGE;
        }
    }
    args[n++] = argv[2];
    args[n] = NULL;
    int rc = fake ? 0 : cmd_mount(n, args);
    free(args);
    return rc;
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
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("skyfs %s\n", SKYFS_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        const char *which = argc > 2 ? argv[2] : NULL;
        if (which && (strcmp(which, "--help") == 0 || strcmp(which, "-h") == 0))
            which = "help";
        const struct command *c = which ? find_command(which) : NULL;
        if (argc > 2 && !c) {
            fprintf(stderr, "skyfs: unknown command \"%s\"; run skyfs help\n", argv[2]);
            return EXIT_USAGE;
        }
        if (c)
            command_usage(stdout, c);
        else
            usage(stdout);
        return 0;
    }
    const struct command *c = find_command(cmd);
    if (!c) {
        fprintf(stderr, "skyfs: unknown command \"%s\"; run skyfs help\n", cmd);
        return EXIT_USAGE;
    }
    if (wants_help(argc - 1, argv + 1)) {
        command_usage(stdout, c);
        return 0;
    }
    if (strcmp(c->name, "mount") == 0)
        return cmd_mount(argc - 1, argv + 1);
    if (strcmp(c->name, "unmount") == 0)
        return cmd_unmount(argc - 1, argv + 1);
    if (strcmp(c->name, "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(c->name, "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    if (strcmp(c->name, "search") == 0)
        return cmd_search(argc - 1, argv + 1);
    if (strcmp(c->name, "index") == 0)
        return cmd_index(argc - 1, argv + 1);
    if (strcmp(c->name, "metrics") == 0)
        return cmd_metrics(argc - 1, argv + 1);
    return cmd_cache(argc - 1, argv + 1);
}
