/*
 * index.c - see index.h.
 *
 * Flat mode: collect every object under the start directory, add the
 * directories their paths imply, sort by (depth of parent, parent, name)
 * and store one listing per directory, parents first so that each parent's
 * inode exists when its children are stored.  Walk mode: breadth-first
 * with list().  The metadata pass asks the cache which files lack their
 * metadata, then runs get_meta on them with parallel_for.
 */
#include "index.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/parallel.h"
#include "../cache/crawlstore.h"
#include "../lib/log.h"

struct item {
    char *path;                 /* relative to the cloud root */
    struct sky_attr attr;
    char *link;
    struct sky_objmeta *meta;   /* what the listing carried, or NULL */
    int depth;                  /* '/' count of path */
    bool implied;               /* a directory known only from a prefix */
};

struct collection {
    struct item *items;
    size_t n, cap;
    const char *base;           /* start path, "" for the cloud root */
    struct index_progress *progress;
    index_progress_fn report;
    void *report_arg;
};

static char *join(const char *a, const char *b)
{
    char *p;
    if (asprintf(&p, "%s%s%s", a, *a && *b ? "/" : "", b) < 0)
        return NULL;
    return p;
}

static struct sky_objmeta *objmeta_dup(const struct sky_objmeta *src)
{
    struct sky_objmeta *m = src ? malloc(sizeof *m) : NULL;
    if (m && sky_objmeta_copy(m, src)) {
        free(m);
        m = NULL;
    }
    return m;
}

static void objmeta_drop(struct sky_objmeta *m)
{
    sky_objmeta_free(m);
    free(m);
}

static int add_item(struct collection *c, char *path, const struct sky_attr *attr,
                    const char *link, const struct sky_objmeta *meta, bool implied)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        struct item *n = realloc(c->items, cap * sizeof *n);
        if (!n) {
            free(path);
            return -ENOMEM;
        }
        c->items = n;
        c->cap = cap;
    }
    struct item *it = &c->items[c->n++];
    it->path = path;
    it->attr = *attr;
    it->link = link ? strdup(link) : NULL;
    it->meta = objmeta_dup(meta);
    it->implied = implied;
    if ((link && !it->link) || (meta && !it->meta))
        return -ENOMEM;     /* the item is counted, collection_free frees it */
    it->depth = 0;
    for (const char *s = path; *s; s++)
        it->depth += *s == '/';
    return 0;
}

static int collect(void *arg, const struct sky_dirent *d)
{
    struct collection *c = arg;
    char *path = join(c->base, d->name);
    if (!path || add_item(c, path, &d->attr, d->link, d->meta, false))
        return -ENOMEM;
    c->progress->entries++;
    if (c->report && c->progress->entries % 5000 == 0)
        c->report(c->report_arg, c->progress);
    /* the directories above it, down to the start */
    struct sky_attr dir = { .kind = SKY_DIR };
    for (char *slash = strrchr(path, '/'); slash; slash = strrchr(path, '/')) {
        size_t len = (size_t)(slash - path);
        if (len <= strlen(c->base))
            break;
        char *parent = strndup(path, len);
        if (!parent || add_item(c, parent, &dir, NULL, NULL, true))
            return -ENOMEM;
        path = c->items[c->n - 1].path;
    }
    return 0;
}

static void parent_of(const char *path, const char **start, size_t *len)
{
    const char *slash = strrchr(path, '/');
    *start = path;
    *len = slash ? (size_t)(slash - path) : 0;
}

static int by_parent_then_name(const void *pa, const void *pb)
{
    const struct item *a = pa, *b = pb;
    if (a->depth != b->depth)
        return a->depth < b->depth ? -1 : 1;
    const char *ap, *bp;
    size_t al, bl;
    parent_of(a->path, &ap, &al);
    parent_of(b->path, &bp, &bl);
    int c = strncmp(ap, bp, al < bl ? al : bl);
    if (c || al != bl)
        return c ? c : (al < bl ? -1 : 1);
    c = strcmp(a->path, b->path);
    if (c)
        return c;
    return (int)a->implied - (int)b->implied; /* real entry first */
}

/* Inode of directory `path` of cloud c, "" being the cloud root. */
static int dir_ino(struct skyfs *fs, struct cloud *c, const char *path, uint64_t *ino,
                   struct sky_err *e)
{
    if (!*path) {
        *ino = c->root_ino;
        return 0;
    }
    return meta_find_path(fs->meta, c->cfg->name, path, ino, e);
}

static int store_groups(struct skyfs *fs, struct cloud *c, struct collection *col, int64_t now,
                        struct sky_err *e)
{
    qsort(col->items, col->n, sizeof *col->items, by_parent_then_name);
    struct sky_dirent *ents = malloc((col->n ? col->n : 1) * sizeof *ents);
    if (!ents)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < col->n && !rc;) {
        const char *pp;
        size_t pl;
        parent_of(col->items[i].path, &pp, &pl);
        size_t n = 0, j = i;
        for (; j < col->n; j++) {
            const char *qp;
            size_t ql;
            parent_of(col->items[j].path, &qp, &ql);
            if (col->items[j].depth != col->items[i].depth || ql != pl || strncmp(qp, pp, pl))
                break;
            if (j > i && strcmp(col->items[j].path, col->items[j - 1].path) == 0)
                continue; /* same directory implied twice, or also listed */
            const char *name = col->items[j].path + (pl ? pl + 1 : 0);
            ents[n++] = (struct sky_dirent){ name, col->items[j].attr, col->items[j].link,
                                             col->items[j].meta };
        }
        char *parent = strndup(pp, pl);
        uint64_t ino;
        rc = parent ? dir_ino(fs, c, parent, &ino, e) : sky_fail(e, ENOMEM, "out of memory");
        if (!rc)
            rc = meta_replace_listing(fs->meta, ino, ents, n, now, e);
        free(parent);
        col->progress->directories++;
        i = j;
    }
    free(ents);
    return rc;
}

static void collection_free(struct collection *col)
{
    for (size_t i = 0; i < col->n; i++) {
        free(col->items[i].path);
        free(col->items[i].link);
        objmeta_drop(col->items[i].meta);
    }
    free(col->items);
}

/* Make sure the start directory and the ones above it are in the cache. */
static int ensure_path(struct skyfs *fs, struct cloud *c, const char *path, struct sky_err *e)
{
    uint64_t parent = c->root_ino;
    char *copy = strdup(path), *save = NULL;
    if (!copy)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    size_t done = 0;
    for (char *part = strtok_r(copy, "/", &save); part && !rc; part = strtok_r(NULL, "/", &save)) {
        done += strlen(part) + (done ? 1 : 0);
        char *sub = strndup(path, done);
        struct sky_attr a;
        rc = sub ? c->drv->stat(c->ctx, sub, &a, e) : -ENOMEM;
        if (!rc && a.kind != SKY_DIR)
            rc = sky_fail(e, ENOTDIR, "cloud '%s': \"%s\" is not a directory", c->cfg->name, sub);
        if (!rc)
            rc = meta_upsert(fs->meta, parent, part, &a, NULL, skyfs_now(), &parent, e);
        free(sub);
    }
    free(copy);
    return rc;
}

/* Walk mode: breadth-first, one list() per directory. */
static int walk(struct skyfs *fs, struct cloud *c, struct collection *col, int64_t now,
                struct sky_err *e)
{
    char **queue = malloc(sizeof *queue);
    size_t head = 0, tail = 0, cap = 1;
    if (!queue || !(queue[tail++] = strdup(col->base)))
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    while (head < tail && !rc) {
        char *dir = queue[head++];
        struct collection one = { .base = "", .progress = col->progress,
                                  .report = col->report, .report_arg = col->report_arg };
        rc = c->drv->list(c->ctx, dir, collect, &one, e);
        cloud_note_result(c, rc, e);
        uint64_t ino;
        if (!rc)
            rc = dir_ino(fs, c, dir, &ino, e);
        struct sky_dirent *ents = malloc((one.n ? one.n : 1) * sizeof *ents);
        for (size_t i = 0; !rc && i < one.n; i++) {
            ents[i] = (struct sky_dirent){ one.items[i].path, one.items[i].attr, one.items[i].link,
                                           one.items[i].meta };
            if (one.items[i].attr.kind != SKY_DIR)
                continue;
            if (tail == cap) {
                cap *= 2;
                char **nq = realloc(queue, cap * sizeof *nq);
                if (!nq) {
                    rc = -ENOMEM;
                    break;
                }
                queue = nq;
            }
            queue[tail++] = join(dir, one.items[i].path);
        }
        if (!rc)
            rc = meta_replace_listing(fs->meta, ino, ents, one.n, now, e);
        col->progress->directories++;
        free(ents);
        collection_free(&one);
    }
    for (size_t i = 0; i < tail; i++)
        free(queue[i]);
    free(queue);
    return rc;
}

/* ---- the metadata pass --------------------------------------------------- */

struct meta_job {
    uint64_t ino;
    char *path;
};

struct meta_pass {
    struct skyfs *fs;
    struct cloud *c;
    struct meta_job *jobs;
    size_t n, cap;
    struct index_progress *progress;
    index_progress_fn report;
    void *report_arg;
    pthread_mutex_t lock;       /* progress and its reports */
};

static int add_job(void *arg, uint64_t ino, const char *path)
{
    struct meta_pass *mp = arg;
    if (mp->n == mp->cap) {
        size_t cap = mp->cap ? mp->cap * 2 : 256;
        struct meta_job *nj = realloc(mp->jobs, cap * sizeof *nj);
        if (!nj)
            return -ENOMEM;
        mp->jobs = nj;
        mp->cap = cap;
    }
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    mp->jobs[mp->n++] = (struct meta_job){ ino, copy };
    return 0;
}

static void job_done(struct meta_pass *mp)
{
    pthread_mutex_lock(&mp->lock);
    mp->progress->meta_done++;
    if (mp->report && mp->progress->meta_done % 100 == 0)
        mp->report(mp->report_arg, mp->progress);
    pthread_mutex_unlock(&mp->lock);
}

/* get_meta for one file, stored with the attributes that came with it. */
static int fetch_meta(void *arg, size_t i, struct sky_err *e)
{
    struct meta_pass *mp = arg;
    struct cloud *c = mp->c;
    const struct meta_job *job = &mp->jobs[i];
    struct sky_attr a;
    struct sky_objmeta om;
    int64_t asked = skyfs_now();
    int rc = c->drv->get_meta(c->ctx, job->path, &a, &om, e);
    cloud_note_result(c, rc, e);
    if (rc == -ENOENT) {
        rc = 0;                 /* deleted since the listing: the next one drops it */
    } else if (rc == 0) {
        rc = meta_cloud_objmeta(mp->fs->meta, job->ino, &a, &om, asked, e);
        if (rc == -ENOENT)
            rc = 0;             /* dropped from the cache meanwhile */
        sky_objmeta_free(&om);
    }
    job_done(mp);
    return rc;
}

static int metadata_pass(struct skyfs *fs, struct cloud *c, const char *path,
                         struct index_progress *p, index_progress_fn progress, void *arg,
                         struct sky_err *e)
{
    if (!c->drv->get_meta)
        return 0;
    struct meta_pass mp = { .fs = fs, .c = c, .progress = p, .report = progress,
                            .report_arg = arg };
    int rc = meta_missing_objmeta(fs->meta, c->cfg->name, path, add_job, &mp, e);
    if (rc == -ENOMEM)
        rc = sky_fail(e, ENOMEM, "out of memory");
    p->meta_phase = true;
    p->meta_total = mp.n;
    if (progress)
        progress(arg, p);
    pthread_mutex_init(&mp.lock, NULL);
    if (rc == 0)
        rc = parallel_for(mp.n, INDEX_META_THREADS, fetch_meta, &mp, e);
    pthread_mutex_destroy(&mp.lock);
    for (size_t i = 0; i < mp.n; i++)
        free(mp.jobs[i].path);
    free(mp.jobs);
    return rc;
}

int index_cloud(struct skyfs *fs, struct cloud *c, const char *path, bool metadata,
                index_progress_fn progress, void *arg, struct sky_err *e)
{
    if (!c->ctx)
        return sky_fail(e, c->open_err.code ? c->open_err.code : EHOSTDOWN, "%s", c->open_err.msg);
    struct index_progress p = { .cloud = c->cfg->name };
    struct collection col = { .base = path, .progress = &p, .report = progress, .report_arg = arg };
    int64_t started = skyfs_now(), gen;
    /* a whole cloud listed is a complete crawl (crawlstore.h): skyfs
     * search and status say so, and the mount's crawl waits its interval */
    struct sky_err ce = { 0 };
    bool whole = !*path && meta_crawl_begin(fs->meta, c->cfg->name, started, &gen, &ce) == 0;
    int rc = ensure_path(fs, c, path, e);
    bool flat = !rc && c->drv->list_tree;
    if (flat) {
        rc = c->drv->list_tree(c->ctx, path, collect, &col, e);
        if (rc == -ENOTSUP) { /* not here (an account root, say): walk instead */
            flat = false;
            rc = 0;
        }
    }
    if (flat) {
        cloud_note_result(c, rc, e);
        if (!rc)
            rc = store_groups(fs, c, &col, started, e);
        uint64_t ino;
        if (!rc && col.n == 0 && dir_ino(fs, c, path, &ino, e) == 0)
            rc = meta_replace_listing(fs->meta, ino, NULL, 0, started, e); /* empty */
    } else if (!rc) {
        collection_free(&col);
        col.items = NULL;
        col.n = col.cap = 0;
        rc = walk(fs, c, &col, started, e);
    }
    collection_free(&col);
    if (whole)
        meta_crawl_end(fs->meta, c->cfg->name, started, skyfs_now(), p.entries,
                       rc ? e->msg : NULL, &ce);
    if (!rc && metadata)
        rc = metadata_pass(fs, c, path, &p, progress, arg, e);
    p.done = true;
    if (progress)
        progress(arg, &p);
    return rc;
}
