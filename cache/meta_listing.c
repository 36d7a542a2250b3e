/*
 * meta_listing.c - a directory's listing in the metadata cache: replacing
 * it with what a cloud listed (a merge of two sorted lists that keeps the
 * inodes of entries still there), and walking a directory's children a
 * page at a time.
 *
 * A listing that carries no metadata (an S3 listing: ETag, size and
 * Last-Modified, but not the mode and times s3fs and skyfs keep in an
 * object's metadata) cannot say an entry's cached metadata is still true
 * unless the object is still the version whose metadata the cache read:
 * the same ETag and size, and the same cloud stamp (sky_attr.modified_ns,
 * which a copy in place that changes only the metadata moves) as the stat
 * or the mount's own change that brought it (see meta_listed_vouches).
 * Such an entry is refreshed (fetched_at = the listing's time); any other
 * keeps its fetched_at, so that a lookup after the ttl still stats it.
 *
 * Part of the metadata cache (meta.h has the contract, meta.c the table
 * and its statements); called through meta.h only.
 */
#include "meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cachedb.h"
#include "meta_int.h"

/* ---- replace_listing: a merge of two sorted lists ----------------------- */

struct meta_listed {            /* one usable entry of the new listing */
    const struct sky_dirent *ent;
    size_t order;               /* position in the caller's array */
};

static int meta_cmp_listed(const void *pa, const void *pb)
{
    const struct meta_listed *a = pa, *b = pb;
    int c = strcmp(a->ent->name, b->ent->name);
    if (c)
        return c;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Valid entries sorted by name.  Of duplicate names (an object store can
 * hold both an object "a" and objects under "a/") a directory wins, and of
 * two directories one with attributes (a folder marker's mode and times:
 * Azure lists the prefix "a/" beside the marker blob "a", in either
 * order), else the last one. */
static int meta_sort_listing(const struct sky_dirent *ents, size_t n, struct meta_listed **out,
                             size_t *count)
{
    struct meta_listed *l = malloc((n ? n : 1) * sizeof *l);
    if (!l)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (meta_valid_name(ents[i].name) && meta_valid_kind(&ents[i].attr))
            l[k++] = (struct meta_listed){ &ents[i], i };
    qsort(l, k, sizeof *l, meta_cmp_listed);
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        if (w > 0 && strcmp(l[w - 1].ent->name, l[i].ent->name) == 0) {
            const struct sky_dirent *was = l[w - 1].ent, *now = l[i].ent;
            bool was_told = was->attr.has || was->meta, now_told = now->attr.has || now->meta;
            if (was->attr.kind != SKY_DIR ||
                (now->attr.kind == SKY_DIR && (now_told || !was_told)))
                l[w - 1] = l[i];
            continue;
        }
        l[w++] = l[i];
    }
    *out = l;
    *count = w;
    return 0;
}

static void meta_free_known(struct meta_known *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(k[i].name);
        free(k[i].etag);
    }
    free(k);
}

/* The children of `parent` already cached, sorted by name. */
static int meta_load_known(struct meta *m, uint64_t parent, struct meta_known **out,
                           size_t *count, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_CHILD_KEYS, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
    struct meta_known *k = NULL;
    size_t n = 0, cap = 0;
    int rc, oom = 0, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct meta_known *nk = realloc(k, ncap * sizeof *nk);
            if (!nk) {
                oom = 1;
                break;
            }
            k = nk;
            cap = ncap;
        }
        k[n].ino = (uint64_t)sqlite3_column_int64(st, 0);
        k[n].name = cachedb_column_strdup(st, 1, &oom);
        k[n].kind = (enum sky_kind)sqlite3_column_int(st, 2);
        k[n].fetched_at = sqlite3_column_int64(st, 3);
        k[n].local_only = sqlite3_column_int(st, 4) != 0;
        k[n].etag = cachedb_column_strdup(st, 5, &oom);
        k[n].size = (uint64_t)sqlite3_column_int64(st, 6);
        k[n].cloud_modified_ns = sqlite3_column_int64(st, 7);
        k[n].own_ns = sqlite3_column_int64(st, 8);
        if (oom) {
            free(k[n].name);
            free(k[n].etag);
            break;
        }
        n++;
    }
    if (oom)
        ret = meta_oom(e);
    else if (rc != SQLITE_DONE)
        ret = cachedb_fail(&m->db, rc, "reading a directory", e);
    sqlite3_reset(st);
    if (ret) {
        meta_free_known(k, n);
        return ret;
    }
    *out = k;
    *count = n;
    return 0;
}

/* Path of child `name` of `dir`, in a reusable buffer. */
static const char *meta_child_path(const struct meta_entry *dir, const char *name, char **buf,
                                   size_t *cap)
{
    size_t need = strlen(dir->path) + strlen(name) + 2;
    if (need > *cap) {
        char *nb = realloc(*buf, need);
        if (!nb)
            return NULL;
        *buf = nb;
        *cap = need;
    }
    if (dir->path[0])
        snprintf(*buf, *cap, "%s/%s", dir->path, name);
    else
        snprintf(*buf, *cap, "%s", name);
    return *buf;
}

/* Cloud stamps are compared to the second: a HEAD's Last-Modified has
 * whole seconds, a listing's may have milliseconds. */
#define META_NS_PER_S 1000000000LL

/* Does listed attribute set `a`, which carries no metadata, show the very
 * version of cached entry `k` whose metadata the cache holds?  The same
 * ETag and size, and either the cloud's stamp of the stat which read its
 * metadata (kept only once settled: meta_settled_stamp), or, after an
 * upload or change by the mount (whose answer has no stamp), a stamp in a
 * second before the one in which that change ended: a change by anyone
 * else after ours carries a stamp no earlier than our change's end, so
 * one in the same second may be another's (a chmod by s3fs half a second
 * after our upload keeps the ETag and shows the same whole-second date)
 * and is not vouched for; the stat then tells. */
static bool meta_listed_vouches(const struct meta_known *k, const struct sky_attr *a)
{
    if (!k->etag || strcmp(k->etag, a->etag) != 0 || k->size != a->size)
        return false;
    if (k->cloud_modified_ns > 0 &&
        k->cloud_modified_ns / META_NS_PER_S == a->modified_ns / META_NS_PER_S)
        return true;
    return k->own_ns > 0 && a->modified_ns / META_NS_PER_S < k->own_ns / META_NS_PER_S;
}

/* Entry `k`, just updated from listed entry `d` with fetched_at = now:
 * when the listing carries no metadata but the cloud's stamp, keep the
 * entry as stale as it was unless the listing vouches for its metadata
 * (see the top of this file). */
int meta_listed_freshness(struct meta *m, const struct meta_known *k, const struct sky_attr *a,
                          int64_t now, struct sky_err *e)
{
    if (a->has || !a->modified_ns || a->kind == SKY_DIR || k->kind == SKY_DIR)
        return 0;               /* what the listing says is all there is */
    bool vouches = meta_listed_vouches(k, a);
    int64_t stamp = vouches ? meta_settled_stamp(a->modified_ns) : 0;
    if (vouches && (!stamp || k->cloud_modified_ns / META_NS_PER_S == stamp / META_NS_PER_S))
        return 0;               /* refreshed, and its stamp known (or not settled yet) */
    return meta_set_fetched_locked(m, k->ino, vouches ? now : k->fetched_at, stamp, e);
}

static int meta_merge_listing(struct meta *m, const struct meta_entry *dir,
                              const struct meta_listed *l, size_t nl,
                              const struct meta_known *k, size_t nk, int64_t now,
                              struct sky_err *e)
{
    bool under_root = dir->ino == META_ROOT_INO;
    char *buf = NULL;
    size_t cap = 0, i = 0, j = 0;
    int rc = 0;
    while (rc == 0 && (i < nk || j < nl)) {
        int c = i == nk ? 1 : j == nl ? -1 : strcmp(k[i].name, l[j].ent->name);
        const char *name = c <= 0 ? k[i].name : l[j].ent->name;
        const char *cloud = under_root ? name : dir->cloud;
        const char *path = under_root ? "" : meta_child_path(dir, name, &buf, &cap);
        if (!path) {
            rc = meta_oom(e);
        } else if (c <= 0 && (k[i].fetched_at > now || k[i].local_only)) {
            /* changed by us after the listing was asked for: the listing
             * is older news than what we have; or made here and not
             * uploaded yet (its upload decides what the cloud holds) */
            i++;
            j += c == 0;
        } else if (c < 0) {             /* vanished */
            bool kept;
            rc = meta_forget_tree(m, k[i].ino, k[i].kind, cloud, path, &kept, e);
            if (rc == 0 && !kept && m->gone)
                m->gone(m->gone_arg, dir->ino, k[i].name);
            i++;
        } else if (c == 0) {            /* still there: keep the inode */
            const struct sky_dirent *d = l[j].ent;
            if (under_root && d->attr.kind != SKY_DIR)
                rc = meta_remove_tree(m, k[i].ino, k[i].kind, cloud, path, e);
            else if ((rc = meta_update_attr(m, k[i].ino, k[i].kind, cloud, path, &d->attr,
                                            d->link, d->meta, now, META_FROM_CLOUD, e)) == 0)
                rc = meta_listed_freshness(m, &k[i], &d->attr, now, e);
            i++;
            j++;
        } else {                        /* new */
            const struct sky_dirent *d = l[j].ent;
            if (!under_root || d->attr.kind == SKY_DIR)
                rc = meta_insert(m, dir, d->name, &d->attr, d->link, d->meta, now, NULL, e);
            j++;
        }
    }
    free(buf);
    return rc;
}

static int meta_replace_locked(struct meta *m, uint64_t parent, const struct sky_dirent *ents,
                               size_t n, int64_t now, struct sky_err *e)
{
    struct meta_entry dir;
    int rc = meta_get_dir_locked(m, parent, &dir, e);
    if (rc)
        return rc;
    struct meta_listed *l = NULL;
    struct meta_known *k = NULL;
    size_t nl = 0, nk = 0;
    if (meta_sort_listing(ents, n, &l, &nl))
        rc = meta_oom(e);
    if (rc == 0)
        rc = meta_load_known(m, parent, &k, &nk, e);
    if (rc == 0)
        rc = meta_merge_listing(m, &dir, l, nl, k, nk, now, e);
    if (rc == 0)
        rc = meta_set_listed_locked(m, parent, now, e);
    free(l);
    if (k)
        meta_free_known(k, nk);
    meta_entry_free(&dir);
    return rc;
}

void meta_on_gone(struct meta *m, meta_gone_fn fn, void *arg)
{
    pthread_mutex_lock(&m->lock);
    m->gone = fn;
    m->gone_arg = arg;
    pthread_mutex_unlock(&m->lock);
}

int meta_replace_listing(struct meta *m, uint64_t parent, const struct sky_dirent *ents,
                         size_t n, int64_t now, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int rc = meta_begin(m, e);
    if (rc == 0)
        rc = meta_replace_locked(m, parent, ents, n, now, e);
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- walking children -------------------------------------------------- */

/* Up to `want` (at most CHILDREN_PAGE) children of `parent` named after `after`. */
static int meta_children_page(struct meta *m, uint64_t parent, const char *after, size_t want,
                              struct meta_entry *page, size_t *n, struct sky_err *e)
{
    *n = 0;
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_CHILDREN_PAGE, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
    cachedb_bind_text(st, 2, after);
    sqlite3_bind_int(st, 3, (int)want);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ret = meta_entry_from_row(st, &page[*n], e);
        if (ret)
            break;
        (*n)++;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = cachedb_fail(&m->db, rc, "listing a directory", e);
    sqlite3_reset(st);
    return ret;
}

int meta_children(struct meta *m, uint64_t parent, meta_child_cb cb, void *arg,
                  struct sky_err *e)
{
    return meta_children_after(m, parent, "", 0, cb, arg, e);
}

int meta_children_after(struct meta *m, uint64_t parent, const char *from, size_t want,
                        meta_child_cb cb, void *arg, struct sky_err *e)
{
    if (want == 0 || want > CHILDREN_PAGE)
        want = CHILDREN_PAGE;
    struct meta_entry *page = calloc(want, sizeof *page);
    char *after = strdup(from);
    if (!page || !after) {
        free(page);
        free(after);
        return meta_oom(e);
    }
    int rc = 0;
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&m->lock);
        rc = meta_children_page(m, parent, after, want, page, &n, e);
        pthread_mutex_unlock(&m->lock);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = cb(arg, &page[i]);
        if (rc == 0 && n == want) {
            free(after);
            after = strdup(page[n - 1].name);
            if (!after)
                rc = meta_oom(e);
        }
        for (size_t i = 0; i < n; i++)
            meta_entry_free(&page[i]);
        if (rc || n < want)
            break;
    }
    free(after);
    free(page);
    return rc;
}

static int meta_count(struct meta *m, uint64_t parent, uint64_t upto, uint64_t *count,
                      struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int ret = 0;
    sqlite3_stmt *st = cachedb_stmt(&m->db, upto ? Q_CHILD_COUNT_UPTO : Q_CHILD_COUNT, e);
    if (!st) {
        ret = -e->code;
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
        if (upto)
            sqlite3_bind_int64(st, 2, (sqlite3_int64)upto);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *count = (uint64_t)sqlite3_column_int64(st, 0);
        else
            ret = cachedb_fail(&m->db, rc, "counting children", e);
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&m->lock);
    return ret;
}

int meta_child_count(struct meta *m, uint64_t parent, uint64_t *count, struct sky_err *e)
{
    return meta_count(m, parent, 0, count, e);
}

int meta_child_count_upto(struct meta *m, uint64_t parent, uint64_t upto, uint64_t *count,
                          struct sky_err *e)
{
    return meta_count(m, parent, upto ? upto : 1, count, e);
}
