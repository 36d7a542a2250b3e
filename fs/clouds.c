/*
 * clouds.c - opening a mount's caches and clouds, and each cloud's health.
 *
 * A cloud whose driver cannot open (bad key, bad URL) still gets its
 * directory in the root; every call inside answers with the saved error.
 * A cloud that stops answering is marked offline with the reason, so that
 * `skyfs status` can say why, and fs/ serves its cached metadata without
 * asking it until a probe finds it back (liveness.h).
 */
#include "skyfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../cache/cachedamage.h"
#include "../cache/reserve.h"
#include "../lib/log.h"
#include "commit.h"
#include "conflicts.h"
#include "crawl.h"
#include "kinds.h"
#include "listahead.h"
#include "openahead.h"
#include "liveness.h"
#include "moved.h"
#include "stream.h"
#include "virtual.h"

int64_t skyfs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int make_dirs(const char *path, struct sky_err *e)
{
    char *p = strdup(path);
    if (!p)
        return sky_fail(e, ENOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(p, 0700);
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
        rc = sky_fail(e, errno, "cannot create cache directory %s: %s; set [cache] dir to a "
                      "writable place", path, strerror(errno));
    free(p);
    return rc;
}

char *cloud_health_path(const char *cache_dir, const char *cloud)
{
    char *p;
    if (asprintf(&p, "%s/health/%s", cache_dir, cloud) < 0)
        return NULL;
    return p;
}

static void write_health(struct cloud *c, const char *state, const char *reason)
{
    if (!c->health_path)
        return;
    FILE *f = fopen(c->health_path, "w");
    if (!f)
        return;
    fprintf(f, "%s%s%s\n", state, reason ? ": " : "", reason ? reason : "");
    fclose(f);
}

void cloud_note_result(struct cloud *c, int rc, const struct sky_err *e)
{
    atomic_fetch_add(&c->requests, 1);
    bool down = rc == -EHOSTDOWN;
    bool was_offline;
    pthread_mutex_lock(&c->health_lock);
    was_offline = c->offline;
    if (down && !c->offline)
        sky_log_cloud(SKY_LOG_WARN, c->cfg->name, "offline, answering from the cache until "
                      "it is back: %s", e ? e->msg : "unreachable");
    else if (!down && c->offline && (rc == 0 || rc == -ENOENT))
        sky_log_cloud(SKY_LOG_INFO, c->cfg->name, "back online");
    if (down) {
        c->offline = true;
        snprintf(c->offline_reason, sizeof c->offline_reason, "%s", e ? e->msg : "unreachable");
    } else if (rc == 0 || rc == -ENOENT) {
        c->offline = false;
    }
    if (c->offline != was_offline)
        write_health(c, c->offline ? "offline" : "online", c->offline ? c->offline_reason : NULL);
    bool went_offline = c->offline && !was_offline;
    pthread_mutex_unlock(&c->health_lock);
    if (went_offline && c->fs && c->fs->live_ready)
        liveness_cloud_went_offline(c->fs, c);
}

void cloud_mark_online(struct cloud *c)
{
    pthread_mutex_lock(&c->health_lock);
    if (c->offline) {
        sky_log_cloud(SKY_LOG_INFO, c->cfg->name, "back online");
        c->offline = false;
        write_health(c, "online", NULL);
    }
    pthread_mutex_unlock(&c->health_lock);
}

void cloud_note_guarantee(struct cloud *c)
{
    if (!c->ctx)
        return;
    char why[256] = "";
    int g = SKY_GUARD_COMPARE;
    if (c->drv->guarantee)
        g = c->drv->guarantee(c->ctx, why, sizeof why);
    else
        snprintf(why, sizeof why, "the %s driver has no preconditions: skyfs compares the "
                 "version with a stat right before each upload", c->drv->type);
    conflicts_set_guarantee(c->conflicts, g, why);
}

int cloud_offline_check(struct cloud *c, struct sky_err *e)
{
    pthread_mutex_lock(&c->health_lock);
    int rc = c->offline ? sky_fail(e, EHOSTDOWN, "cloud '%s' is offline (%s); answering from "
                                   "the cache until it is back", c->cfg->name,
                                   c->offline_reason)
                        : 0;
    pthread_mutex_unlock(&c->health_lock);
    return rc;
}

bool cloud_unreachable(struct cloud *c)
{
    return !c->ctx || cloud_offline_check(c, NULL) != 0;
}

bool skyfs_fresh(int64_t at, int64_t ttl)
{
    return at > 0 && (ttl == SKY_TTL_FOREVER || skyfs_now() - at < ttl);
}

bool skyfs_serve_cached(int rc)
{
    return rc == -EHOSTDOWN || rc == -ETIMEDOUT || rc == -ENOSPC;
}

int cloud_unavailable(const struct cloud *c, struct sky_err *e)
{
    return sky_fail(e, c->open_err.code == EACCES ? EACCES : EHOSTDOWN,
                    "cloud '%s' is unavailable: %s", c->cfg->name, c->open_err.msg);
}

int cloud_check_writable(const struct cloud *c, struct sky_err *e)
{
    if (!c)
        return sky_fail(e, EPERM, "the mount root holds only the configured clouds; add a "
                        "cloud section to the config to get a new directory here");
    if (!c->ctx)
        return cloud_unavailable(c, e);
    if (c->cfg->read_only)
        return sky_fail(e, EROFS, "cloud '%s' is read-only (read_only = true)", c->cfg->name);
    return 0;
}

struct cloud *skyfs_cloud_by_name(struct skyfs *fs, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < fs->nclouds; i++)
        if (strcmp(fs->clouds[i].cfg->name, name) == 0)
            return &fs->clouds[i];
    return NULL;
}

/* A cache database found damaged at open and replaced (cachedamage.h). */
static void report_repair(const struct cache_repair *r)
{
    if (r->repaired)
        sky_log(r->lost ? SKY_LOG_ERROR : SKY_LOG_WARN, "%s", r->msg);
    if (r->unsaved[0])
        LOG_WARN("%s", r->unsaved);
}

/* A cache could not be opened (e says which and why): name the folder,
 * and the fix when its file system is full or read-only. */
static int cache_open_failed(const struct sky_config *cfg, int rc, struct sky_err *e)
{
    const char *fix = rc == -ENOSPC ? "; its file system is full: free space there, or set "
                                      "[cache] dir to a folder on another one"
                      : rc == -EROFS ? "; its file system is read-only: set [cache] dir to a "
                                       "writable folder" : "";
    char msg[sizeof e->msg];
    snprintf(msg, sizeof msg, "%s", e->msg);
    return sky_fail(e, -rc, "cache folder %s: %s%s", cfg->cache_dir, msg, fix);
}

static int open_caches(struct skyfs *fs, const char *mountpoint, struct sky_err *e)
{
    const struct sky_config *cfg = fs->cfg;
    int rc = make_dirs(cfg->cache_dir, e);
    if (rc)
        return rc;
    char *health;
    if (asprintf(&health, "%s/health", cfg->cache_dir) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    mkdir(health, 0700);
    free(health);
    char *db;
    if (asprintf(&db, "%s/meta.db", cfg->cache_dir) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    struct cache_repair meta_repair = { 0 }, blocks_repair = { 0 };
    rc = meta_open(db, &meta_repair, &fs->meta, e);
    report_repair(&meta_repair);
    if (!rc)
        rc = virt_new(db, mountpoint, &fs->virt, e);
    free(db);
    if (rc)
        return cache_open_failed(cfg, rc, e);
    rc = blocks_open(cfg->cache_dir, cfg->block_size, cfg->max_size, &blocks_repair,
                     &fs->blocks, e);
    report_repair(&blocks_repair);
    if (rc == 0 && blocks_repair.lost) {
        struct sky_err le = { 0 };
        if (meta_uploads_lost(fs->meta, &le) != 0)
            LOG_ERROR("metadata cache: %s", le.msg);
    }
    if (rc == 0)
        blocks_set_floor(fs->blocks, cfg->min_free, NULL, NULL);
    if (rc == 0)        /* room for the databases when another program fills the disk */
        rc = reserve_open(cfg->cache_dir, RESERVE_BYTES, e);
    if (rc == 0)        /* a disk quota an earlier mount met */
        blocks_keep_to(fs->blocks, reserve_quota_cap());
    return rc ? cache_open_failed(cfg, rc, e) : 0;
}

/* Open the driver of cloud `c` (no network: drivers only check their
 * settings and build their state); a failure's message always starts
 * with FILE:LINE, as the config loader's do. */
static int open_driver(const struct sky_cloud_config *c, void **ctx, struct sky_err *e)
{
    int rc = c->driver->open(c, ctx, e);
    if (rc == 0)
        return 0;
    *ctx = NULL;
    size_t flen = c->file ? strlen(c->file) : 0;
    if (!flen || strncmp(e->msg, c->file, flen) != 0 || e->msg[flen] != ':')
        sky_err_prefix(e, "%s:%d: cloud [%s]", c->file ? c->file : "config", c->line, c->name);
    return rc;
}

int skyfs_check_clouds(const struct sky_config *cfg, struct sky_err *e)
{
    for (size_t i = 0; i < cfg->nclouds; i++) {
        void *ctx = NULL;
        int rc = open_driver(&cfg->clouds[i], &ctx, e);
        if (rc)
            return rc;
        cfg->clouds[i].driver->close(ctx);
    }
    return 0;
}

int skyfs_open(struct sky_config *cfg, const char *mountpoint, struct skyfs **out,
               struct sky_err *e)
{
    struct skyfs *fs = calloc(1, sizeof *fs);
    if (!fs)
        return sky_fail(e, ENOMEM, "out of memory");
    fs->cfg = cfg;
    fs->mountpoint = strdup(mountpoint);     /* skyfs_mount resolved it */
    if (!fs->mountpoint) {
        free(fs);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    fs->started_ns = skyfs_now();
    sky_shown_init(&fs->shown, getuid(), getgid());
    pthread_mutex_init(&fs->files_lock, NULL);
    pthread_mutex_init(&fs->page_lock, NULL);
    pthread_mutex_init(&fs->retry_lock, NULL);
    clock_cond_init(&fs->retry_cond);    /* files.c's retry waits */
    pthread_mutex_init(&fs->wb_lock, NULL);
    clock_cond_init(&fs->wb_cond);       /* writeback.c's waits */
    pthread_rwlock_init(&fs->wb_tree, NULL);
    pthread_mutex_init(&fs->localdirs_mu, NULL);
    pthread_cond_init(&fs->localdirs_cond, NULL);
    fs->clouds = calloc(cfg->nclouds, sizeof *fs->clouds);
    if (!fs->clouds) {
        free(fs->mountpoint);
        free(fs);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    fs->nclouds = cfg->nclouds;
    int rc = stream_pool_new(&fs->streams, e);
    if (!rc)
        rc = open_caches(fs, mountpoint, e);
    for (size_t i = 0; i < cfg->nclouds && !rc; i++) {
        struct cloud *c = &fs->clouds[i];
        c->cfg = &cfg->clouds[i];
        c->drv = c->cfg->driver;
        c->fs = fs;
        pthread_mutex_init(&c->health_lock, NULL);
        c->health_path = cloud_health_path(cfg->cache_dir, c->cfg->name);
        c->conflicts = conflicts_open(cfg->cache_dir, c->cfg->name);
        rc = meta_cloud_root(fs->meta, c->cfg->name, &c->root_ino, e);
        if (rc)
            break;
        /* skyfs_mount refused settings a driver refuses before it got
         * here (skyfs_check_clouds); `skyfs index` keeps the other clouds */
        if (open_driver(c->cfg, &c->ctx, &c->open_err) != 0) {
            sky_log_cloud(SKY_LOG_ERROR, c->cfg->name, "unavailable: %s", c->open_err.msg);
            write_health(c, "unavailable", c->open_err.msg);
        } else {
            kinds_register(c);
            write_health(c, "online", NULL);
            cloud_note_guarantee(c);
        }
    }
    if (!rc)
        rc = liveness_start(fs, e);
    if (!rc)
        rc = commit_start(fs, e);
    if (!rc)
        rc = listahead_start(fs, e);
    if (!rc)
        rc = openahead_start(fs, e);
    if (rc) {
        skyfs_close(fs);
        return rc;
    }
    *out = fs;
    return 0;
}

void skyfs_close(struct skyfs *fs)
{
    if (!fs)
        return;
    crawl_stop(fs);             /* its threads call drivers and the caches */
    listahead_stop(fs);         /* nothing more queued; liveness_stop waits for the rest */
    openahead_stop(fs);
    liveness_stop(fs);
    listahead_free(fs);
    openahead_free(fs);
    if (fs->recovery_started) {
        /* one last pass over the journal (it may be backing off for
         * minutes): the unmount tries every pending upload once more */
        pthread_mutex_lock(&fs->retry_lock);
        fs->final_pass = true;
        pthread_cond_broadcast(&fs->retry_cond);
        pthread_mutex_unlock(&fs->retry_lock);
        pthread_join(fs->recovery_thread, NULL);
        pthread_mutex_lock(&fs->retry_lock);
        fs->stopping = true;
        pthread_cond_broadcast(&fs->retry_cond);
        pthread_mutex_unlock(&fs->retry_lock);
    }
    writeback_stop(fs);         /* releases the queued files before the block cache */
    commit_stop(fs);            /* the caches synced before they close */
    virt_free(fs->virt);
    handles_free_all(fs);       /* open files never released: before the caches close */
    /* streamed uploads and the block cache first: their threads may still
     * call drivers */
    stream_pool_free(fs->streams);
    fs->streams = NULL;
    if (fs->blocks)
        blocks_close(fs->blocks);
    fs->blocks = NULL;
    for (size_t i = 0; i < fs->nclouds; i++) {
        struct cloud *c = &fs->clouds[i];
        if (c->ctx)
            c->drv->close(c->ctx);
        if (c->cfg)
            pthread_mutex_destroy(&c->health_lock);
        free(c->health_path);
        conflicts_free(c->conflicts);
        moved_forget(c);
    }
    if (fs->meta)
        meta_close(fs->meta);
    reserve_close();
    free(fs->clouds);
    free(fs->mountpoint);
    pthread_mutex_destroy(&fs->files_lock);
    pthread_mutex_destroy(&fs->page_lock);
    pthread_mutex_destroy(&fs->retry_lock);
    pthread_cond_destroy(&fs->retry_cond);
    pthread_mutex_destroy(&fs->wb_lock);
    pthread_cond_destroy(&fs->wb_cond);
    pthread_rwlock_destroy(&fs->wb_tree);
    pthread_mutex_destroy(&fs->localdirs_mu);
    pthread_cond_destroy(&fs->localdirs_cond);
    free(fs);
}
