/*
 * status.c - `skyfs status [-c CONFIG] [--json]`: whether a daemon serves
 * the config's mount, where it logs, what the mount's caches hold and how
 * each cloud is doing, read from the cache directory (works mounted or
 * not): its health and its search index (the last complete crawl, its
 * duration and entry count, a crawl under way; tools/indexstate.h).  Cloud health is what the daemon last saw; with no daemon running
 * (unmounted, or killed) it is shown as such, never as "online".
 *
 * --json prints the same as one JSON object:
 *
 *   {"config":"...","mount":{"mountpoint":"..."|null,"pid":N|null,
 *     "log":"..."|null},
 *    "clouds":[{"name":"docs","type":"local","state":"online|offline|
 *     unavailable|never mounted|not served","reason":"..."|null,
 *     "index":{"enabled":bool,"interval":S|null,"state":"complete|stale|
 *      incomplete|off","last_complete":T|null,"duration":S|null,
 *      "entries":N|null,"crawling":bool,"crawl_entries":N|null,
 *      "error":"..."|null},
 *     "guarantee":"native|compare|unknown","guarantee_reason":"..."|null,
 *     "conflict_count":N,"conflicts":[{"what":"upload|delete","path":"...",
 *     "copy":"..."|null,"at":UNIX_TIME}]}],
 *    "cache":{"dir":"...","objects":N,"bytes":N,"max_size":N,
 *     "pending_uploads":N,"pending_creates":N,"unfinished_renames":N,
 *     "disk_full":bool,"quota_cap":N|null},
 *    "damaged":N}
 *
 * pending_creates: folders and symlinks made on a write_back = async
 * cloud and not created on it yet (deferred mkdir and symlink), from the
 * metadata cache.  unfinished_renames: renames (of files and folders) on
 * object stores in progress, or cut short by a crash (fs/renamelog.h).  disk_full: a daemon
 * serves the cache and its databases' reserve is released: the file system
 * is full (cache/reserve.h).  quota_cap: the cache's folder is under a disk
 * quota that ran out, and the block cache keeps to this many bytes, also
 * at the next mounts (disk_full is then false).  damaged: damaged
 * cache databases the daemon set aside in <cache dir>/damaged
 * (cache/cachedamage.h).
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../cache/blocks.h"
#include "../cache/cachedir.h"
#include "../cache/meta.h"
#include "../fs/conflicts.h"
#include "../fs/skyfs.h"
#include "../lib/config.h"
#include "../lib/json.h"
#include "indexstate.h"
#include "tools.h"

/* The cloud's health line as the daemon last wrote it. */
static void read_health(const struct sky_config *cfg, const struct sky_cloud_config *c,
                        char *line, size_t size)
{
    char *path = cloud_health_path(cfg->cache_dir, c->name);
    snprintf(line, size, "never mounted");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        if (fgets(line, (int)size, f))
            line[strcspn(line, "\n")] = '\0';
        fclose(f);
    }
    free(path);
}

static const char *guarantee_word(int g)
{
    return g == SKY_GUARD_NATIVE ? "native" : g == SKY_GUARD_COMPARE ? "compare" : "unknown";
}

/* The "uploads:" and "conflict:" lines of a cloud (issue 17). */
static void print_conflicts(const struct sky_config *cfg, const struct sky_cloud_config *c)
{
    struct conflicts_view v;
    if (conflicts_read(cfg->cache_dir, c->name, &v) != 0)
        return;
    if (v.guarantee == SKY_GUARD_NATIVE)
        printf("    uploads: the cloud checks preconditions (no lost update)\n");
    else if (v.guarantee == SKY_GUARD_COMPARE)
        printf("    uploads: weaker guarantee, a version compare right before each change "
               "(%s)\n", v.why);
    if (v.count || v.n)
        printf("    conflicts: %llu so far, %zu unresolved\n", (unsigned long long)v.count, v.n);
    for (size_t i = 0; i < v.n; i++) {
        const struct conflict *k = &v.items[i];
        if (k->copy)
            printf("    conflict: %s changed on another machine; this machine's version is "
                   "%s\n", k->path, k->copy);
        else
            printf("    conflict: %s was not deleted: another machine changed it\n", k->path);
    }
    conflicts_view_free(&v);
}

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void when_utc(int64_t ns, char *buf, size_t size)
{
    time_t t = (time_t)(ns / 1000000000LL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void index_info_of(const struct sky_config *cfg, const struct sky_cloud_config *c,
                          struct index_info *in)
{
    char db[4096];
    snprintf(db, sizeof db, "%s/meta.db", cfg->cache_dir);
    index_info_read(db, c, wall_now(), in);
}

/* "    index: ..." under the cloud's health line. */
static void print_index(const struct sky_config *cfg, const struct sky_cloud_config *c,
                        bool served)
{
    struct index_info in;
    index_info_of(cfg, c, &in);
    const struct crawl_state *cs = &in.crawl;
    char when[64], took[32], every[32];
    printf("    index: %s", index_state_name(in.state));
    if (in.state == INDEX_OFF) {
        printf(" (index = off: search finds only what was listed through the mount)\n");
        return;
    }
    if (cs->done_started > 0) {
        when_utc(cs->done_started, when, sizeof when);
        index_format_duration(cs->done_finished - cs->done_started, took, sizeof took);
        printf(", last complete crawl %s, took %s, %llu entries", when, took,
               (unsigned long long)cs->done_entries);
    } else {
        printf(", no complete crawl yet");
    }
    if (c->index_interval_ns == SKY_TTL_FOREVER)
        printf("; crawled once (index_interval = forever)");
    else {
        index_format_duration(c->index_interval_ns, every, sizeof every);
        printf("; refreshed every %s", every);
    }
    if (in.running && served) {
        when_utc(cs->running_since, when, sizeof when);
        printf("; crawling since %s, %llu entries so far", when,
               (unsigned long long)cs->running_seen);
    }
    if (cs->failed_at > 0 && cs->error[0]) {
        when_utc(cs->failed_at, when, sizeof when);
        printf("; the crawl at %s failed: %s", when, cs->error);
    }
    printf("\n");
}

static void json_index(const struct sky_config *cfg, const struct sky_cloud_config *c,
                       bool served)
{
    struct index_info in;
    index_info_of(cfg, c, &in);
    const struct crawl_state *cs = &in.crawl;
    printf(",\"index\":{\"enabled\":%s,", c->index ? "true" : "false");
    if (c->index_interval_ns == SKY_TTL_FOREVER)
        fputs("\"interval\":null,", stdout);
    else
        printf("\"interval\":%.3f,", (double)c->index_interval_ns / 1e9);
    json_key(stdout, "state");
    json_string(stdout, index_state_name(in.state));
    if (cs->done_started > 0)
        printf(",\"last_complete\":%.3f,\"duration\":%.3f,\"entries\":%llu",
               (double)cs->done_started / 1e9,
               (double)(cs->done_finished - cs->done_started) / 1e9,
               (unsigned long long)cs->done_entries);
    else
        fputs(",\"last_complete\":null,\"duration\":null,\"entries\":null", stdout);
    bool crawling = in.running && served;
    printf(",\"crawling\":%s", crawling ? "true" : "false");
    if (crawling)
        printf(",\"crawl_entries\":%llu,", (unsigned long long)cs->running_seen);
    else
        fputs(",\"crawl_entries\":null,", stdout);
    json_key(stdout, "error");
    json_string(stdout, cs->failed_at > 0 && cs->error[0] ? cs->error : NULL);
    fputs("}", stdout);
}

static void print_health(const struct sky_config *cfg, const struct sky_cloud_config *c,
                         bool served)
{
    char line[600];
    read_health(cfg, c, line, sizeof line);
    if (served || strcmp(line, "never mounted") == 0)
        printf("  %-16s %-6s %s\n", c->name, c->type, line);
    else
        printf("  %-16s %-6s not served (no daemon; last seen %s)\n", c->name, c->type, line);
    print_index(cfg, c, served);
    print_conflicts(cfg, c);
}

/* ,"guarantee":..,"guarantee_reason":..,"conflict_count":N,"conflicts":[...] */
static void json_conflicts(const struct sky_config *cfg, const struct sky_cloud_config *c)
{
    struct conflicts_view v;
    if (conflicts_read(cfg->cache_dir, c->name, &v) != 0)
        memset(&v, 0, sizeof v);
    fputs(",", stdout);
    json_key(stdout, "guarantee");
    json_string(stdout, guarantee_word(v.guarantee));
    fputs(",", stdout);
    json_key(stdout, "guarantee_reason");
    json_string(stdout, v.guarantee == SKY_GUARD_NATIVE || !v.why[0] ? NULL : v.why);
    printf(",\"conflict_count\":%llu,\"conflicts\":[", (unsigned long long)v.count);
    for (size_t i = 0; i < v.n; i++) {
        const struct conflict *k = &v.items[i];
        fputs(i ? ",{" : "{", stdout);
        json_key(stdout, "what");
        json_string(stdout, k->what);
        fputs(",", stdout);
        json_key(stdout, "path");
        json_string(stdout, k->path);
        fputs(",", stdout);
        json_key(stdout, "copy");
        json_string(stdout, k->copy);
        printf(",\"at\":%lld}", (long long)k->at);
    }
    fputs("]", stdout);
    conflicts_view_free(&v);
}

/* {"name":..,"type":..,"state":..,"reason":..}: the health line is
 * "STATE" or "STATE: REASON"; with no daemon, the state is "not served"
 * and the reason what was last seen. */
static void json_health(const struct sky_config *cfg, const struct sky_cloud_config *c,
                        bool served)
{
    char line[600];
    read_health(cfg, c, line, sizeof line);
    const char *state = line, *reason = NULL;
    if (!served && strcmp(line, "never mounted") != 0) {
        state = "not served";
        reason = line;
    } else {
        char *sep = strstr(line, ": ");
        if (sep) {
            *sep = '\0';
            reason = sep + 2;
        }
    }
    fputs("{", stdout);
    json_key(stdout, "name");
    json_string(stdout, c->name);
    fputs(",", stdout);
    json_key(stdout, "type");
    json_string(stdout, c->type);
    fputs(",", stdout);
    json_key(stdout, "state");
    json_string(stdout, state);
    fputs(",", stdout);
    json_key(stdout, "reason");
    json_string(stdout, reason);
    json_index(cfg, c, served);
    json_conflicts(cfg, c);
    fputs("}", stdout);
}

/* "mount: ..." and "log: ..." lines (or the "mount" JSON member); whether
 * a daemon serves the cache. */
static bool print_daemon(const char *cache_dir, bool json)
{
    struct cachedir_holder h;
    struct sky_err e = { 0 };
    if (cachedir_holder(cache_dir, &h, &e) != 0) {
        if (json) {
            fputs("\"mount\":{\"mountpoint\":null,\"pid\":null,\"log\":null,", stdout);
            json_key(stdout, "error");
            json_string(stdout, e.msg);
            fputs("}", stdout);
        } else {
            printf("mount: unknown (%s)\n", e.msg);
        }
        return false;
    }
    if (json) {
        fputs("\"mount\":{", stdout);
        json_key(stdout, "mountpoint");
        json_string(stdout, h.mountpoint[0] ? h.mountpoint : NULL);
        if (h.pid > 0)
            printf(",\"pid\":%d,", (int)h.pid);
        else
            fputs(",\"pid\":null,", stdout);
        json_key(stdout, "log");
        json_string(stdout, h.log_path[0] ? h.log_path : NULL);
        fputs("}", stdout);
        return h.pid > 0;
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

/* How many damaged databases repairs set aside under `dir` (a folder per
 * repair, holding meta.db, blocks.db or both: cache/cachedamage.h). */
static unsigned count_damaged(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    unsigned n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        static const char *const dbs[] = { "meta.db", "blocks.db" };
        for (size_t i = 0; i < 2; i++) {
            char path[4096];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s/%s", dir, de->d_name, dbs[i]);
            n += stat(path, &st) == 0;
        }
    }
    closedir(d);
    return n;
}

int cmd_status(int argc, char **argv)
{
    const char *config = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else {
            fprintf(stderr, "skyfs: status: unexpected argument \"%s\"; usage: skyfs status "
                    "[-c CONFIG] [--json]\n", argv[i]);
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
    if (json) {
        fputs("{", stdout);
        json_key(stdout, "config");
        json_string(stdout, cfg->path);
        fputs(",", stdout);
    }
    bool served = print_daemon(cfg->cache_dir, json);
    if (json) {
        fputs(",\"clouds\":[", stdout);
        for (size_t i = 0; i < cfg->nclouds; i++) {
            if (i)
                fputs(",", stdout);
            json_health(cfg, &cfg->clouds[i], served);
        }
        fputs("]", stdout);
    } else {
        printf("clouds:\n");
        for (size_t i = 0; i < cfg->nclouds; i++)
            print_health(cfg, &cfg->clouds[i], served);
    }
    struct blocks *b;
    struct blocks_stats st;
    bool have_stats = false;
    if (blocks_open(cfg->cache_dir, cfg->block_size, cfg->max_size, NULL, &b, &e) == 0) {
        have_stats = blocks_stats(b, &st, &e) == 0;
        blocks_close(b);
    }
    /* folders and symlinks not created on their cloud yet, read beside
     * the daemon */
    uint64_t pending_dirs = 0, renames = 0;
    char db[4096];
    struct stat dbst;
    snprintf(db, sizeof db, "%s/meta.db", cfg->cache_dir);
    if (have_stats && stat(db, &dbst) == 0 &&
        meta_read_deferred_count(db, &pending_dirs, &e) == 0)
        meta_read_move_count(db, &renames, &e);
    /* a running daemon without its reserve gave that room to its
     * databases: the file system is full (cache/reserve.h) */
    char reserve[4096];
    snprintf(reserve, sizeof reserve, "%s/reserve", cfg->cache_dir);
    bool disk_full = served && access(reserve, F_OK) != 0;
    /* the block cache met a disk quota and keeps to this (cache/reserve.h) */
    char quota_file[4096];
    snprintf(quota_file, sizeof quota_file, "%s/quota", cfg->cache_dir);
    unsigned long long quota_cap = 0;
    FILE *qf = fopen(quota_file, "re");
    bool quota = qf && fscanf(qf, "%llu", &quota_cap) == 1;
    if (qf)
        fclose(qf);
    if (have_stats && json) {
        fputs(",\"cache\":{", stdout);
        json_key(stdout, "dir");
        json_string(stdout, cfg->cache_dir);
        printf(",\"objects\":%llu,\"bytes\":%llu,\"max_size\":%llu,\"pending_uploads\":%llu,"
               "\"pending_creates\":%llu,\"unfinished_renames\":%llu,\"disk_full\":%s,"
               "\"quota_cap\":",
               (unsigned long long)st.objects, (unsigned long long)st.bytes_present,
               (unsigned long long)st.max_size, (unsigned long long)st.dirty_objects,
               (unsigned long long)pending_dirs, (unsigned long long)renames,
               disk_full && !quota ? "true" : "false");
        if (quota)
            printf("%llu}", quota_cap);
        else
            fputs("null}", stdout);
    } else if (have_stats) {
        printf("block cache: %s\n  %llu objects, %llu MiB of %llu MiB, %llu pending "
               "upload(s), %llu folder(s) and symlink(s) to create\n", cfg->cache_dir,
               (unsigned long long)st.objects, (unsigned long long)(st.bytes_present >> 20),
               (unsigned long long)(st.max_size >> 20), (unsigned long long)st.dirty_objects,
               (unsigned long long)pending_dirs);
        if (renames)
            printf("  %llu rename(s) not finished (in progress, or cut short by a crash: "
                   "the next mount finishes those)\n", (unsigned long long)renames);
        if (quota)
            printf("  its folder is under a disk quota, which ran out: the cache keeps to "
                   "%llu MiB, files not cached beyond that are read straight from the cloud; "
                   "after raising the quota, remove %s\n", quota_cap >> 20, quota_file);
        else if (disk_full)
            printf("  its file system is full: the databases use the room kept back for them "
                   "(%s, 16 MiB); files not cached are read straight from the cloud and new "
                   "writes fail until there is room: free space there\n", reserve);
    }
    /* damaged databases the daemon set aside (cache/cachedamage.h) */
    char aside[4096];
    snprintf(aside, sizeof aside, "%s/damaged", cfg->cache_dir);
    unsigned damaged = count_damaged(aside);
    if (json) {
        printf(",\"damaged\":%u", damaged);
    } else if (damaged) {
        printf("damaged: %u damaged cache database(s) set aside in %s (the log says what was "
               "kept of them; remove them once you no longer need them)\n", damaged, aside);
    }
    if (json)
        fputs("}\n", stdout);
    if (e.code)
        fprintf(stderr, "skyfs: cache: %s\n", e.msg);
    sky_config_free(cfg);
    return e.code ? 1 : 0;
}
