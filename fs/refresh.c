/*
 * refresh.c - bringing the metadata cache up to date from the clouds, for
 * fs/ops.c; see refresh.h.
 *
 * A refresh of something the cache already holds (an expired entry or
 * listing) runs through liveness_refresh_bounded: a slow cloud then gets
 * its cached answer given after a moment while the refresh finishes in
 * the background.  A refresh of something the cache does not hold runs
 * in the caller's thread (there is nothing else to answer with), where
 * an interrupt of the request cancels it (liveness.h).
 */
#include "refresh.h"

#include "../lib/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "listahead.h"
#include "liveness.h"

/* ---- entries ----------------------------------------------------------- */

int refresh_hint_in(const struct meta_entry *dir)
{
    return dir->listed_at > 0 ? SKY_STAT_NEW : SKY_STAT_UNKNOWN;
}

int refresh_entry(struct skyfs *fs, struct cloud *c, uint64_t parent, const char *name,
                  const char *path, int hint, struct meta_entry *out, struct sky_err *e)
{
    if (!c->ctx)
        return cloud_unavailable(c, e);
    int rc = cloud_offline_check(c, e);
    if (rc)
        return rc;
    struct sky_attr a;
    sky_metrics_inc(SKY_M_META_MISSES);
    rc = c->drv->stat_hinted ? c->drv->stat_hinted(c->ctx, path, hint, &a, e)
                             : c->drv->stat(c->ctx, path, &a, e);
    cloud_note_result(c, rc, e);
    if (rc)
        return rc;
    uint64_t ino;
    rc = meta_upsert(fs->meta, parent, name, &a, NULL, skyfs_now(), &ino, e);
    if (rc)
        return rc;
    return meta_get(fs->meta, ino, out, e);
}

/* A refresh of an entry the cache holds, run by liveness_refresh_bounded. */
struct entry_refresh {
    struct cloud *c;
    uint64_t parent;
    char *name, *path;
    int hint;
};

static void entry_refresh_free(void *arg)
{
    struct entry_refresh *r = arg;
    free(r->name);
    free(r->path);
    free(r);
}

static int entry_refresh_run(struct skyfs *fs, void *arg, struct sky_err *e)
{
    struct entry_refresh *r = arg;
    struct meta_entry out;
    int rc = refresh_entry(fs, r->c, r->parent, r->name, r->path, r->hint, &out, e);
    if (rc == 0)
        meta_entry_free(&out);
    return rc;
}

int refresh_known_entry(struct skyfs *fs, struct cloud *c, const struct meta_entry *known,
                        struct meta_entry *out, struct sky_err *e)
{
    if (!c->ctx)
        return cloud_unavailable(c, e);
    int rc = cloud_offline_check(c, e);
    if (rc)
        return rc;
    int hint = known->attr.kind == SKY_DIR ? SKY_STAT_DIR : SKY_STAT_FILE;
    struct entry_refresh *r = calloc(1, sizeof *r);
    if (r) {
        r->c = c;
        r->parent = known->parent;
        r->name = strdup(known->name);
        r->path = strdup(known->path);
        r->hint = hint;
    }
    if (!r || !r->name || !r->path) {
        if (r)
            entry_refresh_free(r);
        return refresh_entry(fs, c, known->parent, known->name, known->path, hint, out, e);
    }
    rc = liveness_refresh_bounded(fs, LIVENESS_KEY(known->ino, LIVENESS_ATTR), entry_refresh_run,
                                  r, entry_refresh_free, e);
    if (rc == 0)
        rc = meta_lookup(fs->meta, known->parent, known->name, out, e);
    else if (rc == -ETIMEDOUT)
        LOG_INFO("cloud '%s' is slow to answer for \"%s\", answering from the cache: %s",
                 c->cfg->name, known->path, e->msg);
    return rc;
}

/* ---- listings ---------------------------------------------------------- */

struct listing {
    struct sky_dirent *ents;
    size_t n, cap;
};

static int collect_entry(void *arg, const struct sky_dirent *d)
{
    struct listing *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct sky_dirent *n = realloc(l->ents, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        l->ents = n;
        l->cap = cap;
    }
    if (sky_dirent_copy(&l->ents[l->n], d))
        return -ENOMEM;
    l->n++;
    return 0;
}

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        sky_dirent_free(&l->ents[i]);
    free(l->ents);
}

/* List directory `path` (inode `ino`) into the cache. */
static int list_now(struct skyfs *fs, struct cloud *c, uint64_t ino, const char *path,
                    struct sky_err *e)
{
    struct listing l = { 0 };
    int64_t started = skyfs_now();
    int rc = c->drv->list(c->ctx, path, collect_entry, &l, e);
    cloud_note_result(c, rc, e);
    if (rc == 0)
        rc = meta_replace_listing(fs->meta, ino, l.ents, l.n, started, e);
    listing_free(&l);
    return rc;
}

int refresh_list_now(struct skyfs *fs, struct cloud *c, uint64_t ino, const char *path,
                     struct sky_err *e)
{
    if (!c->ctx)
        return cloud_unavailable(c, e);
    int rc = cloud_offline_check(c, e);
    if (rc == 0) {
        sky_metrics_inc(SKY_M_META_MISSES);
        rc = list_now(fs, c, ino, path, e);
    }
    return rc;
}

/* A listing run by liveness_refresh_bounded. */
struct listing_refresh {
    struct cloud *c;
    uint64_t ino;
    char *path;
};

static void listing_refresh_free(void *arg)
{
    struct listing_refresh *r = arg;
    free(r->path);
    free(r);
}

static int listing_refresh_run(struct skyfs *fs, void *arg, struct sky_err *e)
{
    struct listing_refresh *r = arg;
    return list_now(fs, r->c, r->ino, r->path, e);
}

/* Does the cache hold a listing of directory `ino` now? */
static bool listed_meanwhile(struct skyfs *fs, uint64_t ino)
{
    struct meta_entry ent;
    struct sky_err e = { 0 };
    if (meta_get(fs->meta, ino, &ent, &e) != 0)
        return false;
    bool listed = ent.listed_at > 0;
    meta_entry_free(&ent);
    return listed;
}

int refresh_listing(struct skyfs *fs, struct cloud *c, const struct meta_entry *dir,
                           struct sky_err *e)
{
    bool fresh = skyfs_fresh(dir->listed_at, c->cfg->ttl_ns);
    sky_metrics_inc(fresh ? SKY_M_META_HITS : SKY_M_META_MISSES);
    if (fresh)
        return 0;
    if (!c->ctx)
        return cloud_unavailable(c, e);
    int rc = cloud_offline_check(c, e);
    struct listing_refresh *r = NULL;
    if (rc == 0 && dir->listed_at > 0 && (r = calloc(1, sizeof *r)) != NULL) {
        r->c = c;
        r->ino = dir->ino;
        r->path = strdup(dir->path);
        if (!r->path) {
            listing_refresh_free(r);
            r = NULL;
        }
    }
    /* a listing served before: `revalidate = async` answers with it at
     * once while one refresh per directory runs in the background; sync
     * (the default) waits, within liveness' bound, so ttl bounds how
     * stale it is */
    if (rc == 0 && r && !c->cfg->revalidate_sync)
        rc = liveness_refresh_background(fs, LIVENESS_KEY(dir->ino, LIVENESS_LISTING),
                                         listing_refresh_run, r, listing_refresh_free, e);
    else if (rc == 0 && r)
        rc = liveness_refresh_bounded(fs, LIVENESS_KEY(dir->ino, LIVENESS_LISTING),
                                      listing_refresh_run, r, listing_refresh_free, e);
    else if (rc == 0 && dir->listed_at == 0 && listahead_wait(fs, c, dir->ino) &&
             listed_meanwhile(fs, dir->ino))
        rc = 0;                             /* listed ahead (listahead.h) while we waited */
    else if (rc == 0)
        rc = list_now(fs, c, dir->ino, dir->path, e);
    if (skyfs_serve_cached(rc) && dir->listed_at > 0) {
        LOG_DEBUG("cloud '%s': serving the cached listing of \"%s\": %s", c->cfg->name,
                  dir->path, e->msg);
        rc = 0;
    }
    return rc;
}
