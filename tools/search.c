/*
 * search.c - `skyfs search`: find files in every cloud at once, from the
 * metadata index, with no network.
 *
 *   skyfs search [-c CONFIG] [--name GLOB] [--iname GLOB] [--path PATH]
 *                [--cloud NAME] [--type f|d|l] [--min-size N] [--max-size N]
 *                [--newer DATE] [--older DATE] [--meta KEY[=GLOB]]...
 *                [--content-type GLOB] [--storage-class GLOB] [--limit N]
 *                [--long] [-0 | --json] [GLOB]
 *
 * --meta KEY=GLOB wants user metadata KEY (the xattr user.KEY) with a
 * value matching GLOB; --meta KEY only wants KEY present; repeated, all
 * must hold.  --type-is is another name for --content-type.
 * PATH is a path as seen in the mount ("docs/reports"), which names the
 * cloud and a prefix inside it.  DATE is YYYY-MM-DD, "YYYY-MM-DD HH:MM:SS"
 * (UTC), @EPOCH, or an age such as 30m, 2h, 7d.  Default output: one mount
 * path per line (for xargs); --long adds size, mtime and cloud; -0 (--null)
 * ends each path with a NUL instead (for xargs -0: names may hold newlines);
 * --json prints one JSON object per line (path, cloud, cloud_path, type,
 * size, mtime, and index: how complete the hit's cloud's index is,
 * "complete", "stale", "incomplete" or "off", with indexed_at, when its
 * last complete crawl began).  Each cloud searched whose index is not
 * complete gets a line on stderr saying so (tools/indexstate.h).  A user shown only what the mount would show them: hits
 * in directories they may not list or reach are left out.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../cache/search.h"
#include "../lib/config.h"
#include "../lib/json.h"
#include "indexstate.h"
#include "tools.h"

#define SEARCH_MAX_META 16

enum out_format { OUT_LINES, OUT_NUL, OUT_JSON };

struct out {
    char mount[PATH_MAX];       /* "" when the mountpoint is unknown */
    bool longfmt;
    enum out_format format;
    size_t hits;
    const struct sky_config *cfg;
    const struct index_info *index;     /* per cloud of cfg */
};

static const char *kind_name(enum sky_kind k)
{
    return k == SKY_DIR ? "dir" : k == SKY_LINK ? "link" : "file";
}

/* One JSON object per line: path (in the mount), cloud, cloud_path, type,
 * size, mtime (seconds since the epoch, with fractions). */
static void print_json(const struct out *o, const struct search_hit *h)
{
    char *path = NULL;
    if (asprintf(&path, "%s%s%s/%s", o->mount, *o->mount ? "/" : "", h->cloud, h->path) < 0)
        path = NULL;
    fputs("{", stdout);
    json_key(stdout, "path");
    json_string(stdout, path ? path : "");
    fputs(",", stdout);
    json_key(stdout, "cloud");
    json_string(stdout, h->cloud);
    fputs(",", stdout);
    json_key(stdout, "cloud_path");
    json_string(stdout, h->path);
    fputs(",", stdout);
    json_key(stdout, "type");
    json_string(stdout, kind_name(h->kind));
    printf(",\"size\":%llu,\"mtime\":%lld.%09lld", (unsigned long long)h->size,
           (long long)(h->mtime_ns / 1000000000LL), (long long)(h->mtime_ns % 1000000000LL));
    const struct index_info *in = NULL;
    for (size_t i = 0; o->index && i < o->cfg->nclouds; i++)
        if (strcmp(o->cfg->clouds[i].name, h->cloud) == 0)
            in = &o->index[i];
    fputs(",", stdout);
    json_key(stdout, "index");
    json_string(stdout, in ? index_state_name(in->state) : "incomplete");
    if (in && in->crawl.done_started > 0)
        printf(",\"indexed_at\":%lld.%09lld}\n", (long long)(in->crawl.done_started / 1000000000LL),
               (long long)(in->crawl.done_started % 1000000000LL));
    else
        fputs(",\"indexed_at\":null}\n", stdout);
    free(path);
}

static int print_hit(void *arg, const struct search_hit *h)
{
    struct out *o = arg;
    o->hits++;
    if (o->format == OUT_JSON) {
        print_json(o, h);
        return 0;
    }
    if (o->longfmt) {
        char when[32];
        time_t t = (time_t)(h->mtime_ns / 1000000000LL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        printf("%c %12llu  %s  %-12s ", h->kind == SKY_DIR ? 'd' : h->kind == SKY_LINK ? 'l' : '-',
               (unsigned long long)h->size, when, h->cloud);
    }
    printf("%s%s%s/%s%c", o->mount, *o->mount ? "/" : "", h->cloud, h->path,
           o->format == OUT_NUL ? '\0' : '\n');
    return 0;
}

/* DATE forms described at the top; returns ns since the epoch. */
static int parse_when(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char *end;
    if (*s == '@') {
        long long v = strtoll(s + 1, &end, 10);
        if (*end)
            return -EINVAL;
        *out = v * 1000000000LL;
        return 0;
    }
    end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (!end || *end) {
        memset(&tm, 0, sizeof tm);
        end = strptime(s, "%Y-%m-%d", &tm);
    }
    if (end && !*end) {
        *out = (int64_t)timegm(&tm) * 1000000000LL;
        return 0;
    }
    /* an age: now minus a duration ("7d" is days here) */
    size_t len = strlen(s);
    int64_t ns;
    if (len > 1 && s[len - 1] == 'd') {
        char *copy = strndup(s, len - 1);
        long long days = strtoll(copy, &end, 10);
        bool ok = *copy && !*end;
        free(copy);
        if (!ok)
            return -EINVAL;
        ns = days * 86400LL * 1000000000LL;
    } else if (sky_parse_duration(s, &ns) != 0 || ns == SKY_TTL_FOREVER) {
        return -EINVAL;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    *out = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec - ns;
    return 0;
}

static void read_mountpoint(const char *cache_dir, char *buf, size_t size)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/mountpoint", cache_dir);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(buf, (int)size, f))
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

/* Who is searching, and the index's owner (the user who mounted: entries
 * without an owner show as theirs).  The index of a mount is private to
 * its owner (a 0700 cache directory): another user is told so, instead
 * of SQLite's "unable to open database file".  When the index can be
 * read, hits are shown as the mount would let this user see them. */
static int viewer_of_index(const char *cache_dir, const char *db, struct sky_requester *who,
                           struct sky_shown *shown, struct sky_err *e)
{
    who->uid = getuid();
    who->gid = getgid();
    int n = getgroups(SKY_MAX_GROUPS, who->groups);
    who->ngroups = n < 0 ? 0 : n;
    sky_shown_init(shown, who->uid, who->gid);
    struct stat st;
    if (stat(db, &st) != 0 || access(db, R_OK) != 0) {
        if (errno != EACCES)
            return 0;           /* search_open says what is wrong */
        uid_t owner = stat(db, &st) == 0 || stat(cache_dir, &st) == 0 ? st.st_uid : 0;
        return sky_fail(e, EACCES, "cannot read the metadata index %s: it belongs to the "
                        "user who mounted (uid %u); search through the mount instead "
                        "(ls MOUNTPOINT/.skyfs/search/QUERY), or run skyfs search as that user",
                        db, (unsigned)owner);
    }
    sky_shown_init(shown, st.st_uid, st.st_gid);
    return 0;
}

/* How complete each cloud's index is (one per cloud of cfg, or NULL);
 * a line on stderr for each cloud searched (`only`, or all) whose index
 * is not complete, so the user knows what the answer covers. */
static struct index_info *warn_incomplete(const struct sky_config *cfg, const char *db,
                                          const char *only)
{
    struct index_info *in = calloc(cfg->nclouds ? cfg->nclouds : 1, sizeof *in);
    if (!in)
        return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    for (size_t i = 0; i < cfg->nclouds; i++) {
        const struct sky_cloud_config *c = &cfg->clouds[i];
        index_info_read(db, c, now, &in[i]);
        char line[600];
        if ((!only || strcmp(only, c->name) == 0) &&
            index_info_warning(c, &in[i], now, line, sizeof line))
            fprintf(stderr, "skyfs: search: %s\n", line);
    }
    return in;
}

static int bad(const char *what, const char *value, const char *fix)
{
    fprintf(stderr, "skyfs: search: %s \"%s\" is not valid; %s\n", what, value, fix);
    return 2;
}

int cmd_search(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' }, { "name", required_argument, NULL, 'n' },
        { "iname", required_argument, NULL, 'i' },  { "path", required_argument, NULL, 'p' },
        { "cloud", required_argument, NULL, 'C' },  { "type", required_argument, NULL, 't' },
        { "min-size", required_argument, NULL, 'm' }, { "max-size", required_argument, NULL, 'M' },
        { "newer", required_argument, NULL, 'N' },  { "older", required_argument, NULL, 'O' },
        { "limit", required_argument, NULL, 'L' },  { "long", no_argument, NULL, 'l' },
        { "meta", required_argument, NULL, 'x' },
        { "content-type", required_argument, NULL, 'T' },
        { "type-is", required_argument, NULL, 'T' },
        { "storage-class", required_argument, NULL, 'S' },
        { "null", no_argument, NULL, '0' },
        { "json", no_argument, NULL, 'j' },
        { NULL, 0, NULL, 0 },
    };
    struct search_meta_test tests[SEARCH_MAX_META];
    struct search_query q;
    search_query_init(&q);
    struct out o = { 0 };
    const char *config = NULL;
    char *path_arg = NULL;
    uint64_t v;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:l0", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'n': q.name_glob = optarg; break;
        case 'i': q.iname_glob = optarg; break;
        case 'p': path_arg = optarg; break;
        case 'C': q.cloud = optarg; break;
        case 't':
            if (strcmp(optarg, "f") == 0) q.kind = SKY_FILE;
            else if (strcmp(optarg, "d") == 0) q.kind = SKY_DIR;
            else if (strcmp(optarg, "l") == 0) q.kind = SKY_LINK;
            else return bad("--type", optarg, "use f, d or l");
            break;
        case 'm': case 'M':
            if (sky_parse_size(optarg, &v) != 0)
                return bad(ch == 'm' ? "--min-size" : "--max-size", optarg, "write e.g. 10M");
            *(ch == 'm' ? &q.min_size : &q.max_size) = (int64_t)v;
            break;
        case 'N': case 'O':
            if (parse_when(optarg, ch == 'N' ? &q.mtime_after_ns : &q.mtime_before_ns) != 0)
                return bad(ch == 'N' ? "--newer" : "--older", optarg,
                           "write YYYY-MM-DD, \"YYYY-MM-DD HH:MM:SS\", @EPOCH or an age like 7d");
            break;
        case 'L':
            if (sky_parse_size(optarg, &v) != 0)
                return bad("--limit", optarg, "write a number");
            q.limit = (size_t)v;
            break;
        case 'l': o.longfmt = true; break;
        case '0': o.format = OUT_NUL; break;
        case 'j': o.format = OUT_JSON; break;
        case 'x':
            if (q.nmeta == SEARCH_MAX_META)
                return bad("--meta", optarg, "give at most 16 metadata tests");
            if (!*optarg || *optarg == '=')
                return bad("--meta", optarg, "write KEY=VALUE, KEY=GLOB or KEY");
            tests[q.nmeta].key = optarg;
            tests[q.nmeta].value_glob = NULL;
            char *eq = strchr(optarg, '=');
            if (eq) {
                *eq = '\0';
                tests[q.nmeta].value_glob = eq + 1;
            }
            q.meta = tests;
            q.nmeta++;
            break;
        case 'T': q.content_type_glob = optarg; break;
        case 'S': q.storage_class_glob = optarg; break;
        default:
            fprintf(stderr, "skyfs: usage: skyfs search [--name GLOB] [--iname GLOB] [--path PATH] "
                            "[--cloud NAME] [--type f|d|l] [--min-size N] [--max-size N] "
                            "[--newer DATE] [--older DATE] [--meta KEY[=GLOB]]... "
                            "[--content-type GLOB] [--storage-class GLOB] [--limit N] "
                            "[--long] [-0 | --json] [GLOB]\n");
            return 2;
        }
    }
    if (optind < argc && !q.name_glob)
        q.name_glob = argv[optind++]; /* skyfs search '*.pdf' */
    if (optind < argc)
        return bad("argument", argv[optind], "pass criteria as options (see skyfs help)");

    /* --path docs/a/b: cloud "docs", prefix "a/b" */
    if (path_arg) {
        while (*path_arg == '/')
            path_arg++;
        char *slash = strchr(path_arg, '/');
        if (slash) {
            *slash = '\0';
            q.path_prefix = slash + 1;
            size_t n = strlen(q.path_prefix);
            while (n && slash[n] == '/')
                slash[n--] = '\0';
        }
        if (q.cloud && strcmp(q.cloud, path_arg) != 0)
            return bad("--path", path_arg, "it names another cloud than --cloud");
        q.cloud = path_arg;
    }

    struct sky_err e = { 0 };
    struct sky_config *cfg;
    char *cpath = config ? strdup(config) : sky_config_default_path();
    int rc = cpath ? sky_config_load(cpath, &cfg, &e) : sky_fail(&e, ENOMEM, "out of memory");
    free(cpath);
    if (rc) {
        fprintf(stderr, "skyfs: %s\n", e.msg);
        return 1;
    }
    read_mountpoint(cfg->cache_dir, o.mount, sizeof o.mount);
    char db[PATH_MAX];
    snprintf(db, sizeof db, "%s/meta.db", cfg->cache_dir);
    struct sky_requester who;
    struct sky_shown shown;
    struct search_viewer viewer = { &who, &shown };
    rc = viewer_of_index(cfg->cache_dir, db, &who, &shown, &e);
    q.viewer = &viewer;
    struct search *s;
    if (!rc)
        rc = search_open(db, &s, &e);
    struct index_info *index = NULL;
    if (!rc)
        index = warn_incomplete(cfg, db, q.cloud);
    o.cfg = cfg;
    o.index = index;
    if (!rc) {
        rc = search_run(s, &q, print_hit, &o, &e);
        search_close(s);
    }
    free(index);
    sky_config_free(cfg);
    if (rc) {
        fprintf(stderr, "skyfs: %s\n", e.msg);
        return 1;
    }
    return 0;
}
