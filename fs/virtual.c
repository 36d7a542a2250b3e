/*
 * virtual.c - the hidden `.skyfs` directory; see virtual.h.
 *
 * Virtual entries live in a small in-memory table guarded by one mutex.
 * A query directory is re-run against the index each time it is looked up
 * or listed; a match keeps its inode for as long as the daemon runs.
 */
#include "virtual.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cache/meta.h"
#include "../cache/search.h"
#include "../lib/config.h"
#include "skyfs.h"

#define INO_TOP    (VIRT_INO_BASE + 1)   /* .skyfs */
#define INO_SEARCH (VIRT_INO_BASE + 2)   /* .skyfs/search */
#define MAX_HITS   10000
#define EVICTED_KEPT 16                  /* eviction results remembered */
#define EVICTED_XATTR "user.skyfs.evicted."

struct vnode {
    uint64_t ino, parent;
    char *name;
    bool is_dir;
    bool stale;             /* not among the latest results (refresh_query) */
    char *target;           /* symlinks */
};

struct evicted {
    char token[64];
    struct blocks_evicted done;
};

struct virt {
    pthread_mutex_t lock;
    struct evicted evicted[EVICTED_KEPT];  /* a ring */
    unsigned next_evicted;
    char *db_path;
    char *mount;
    struct search *search;  /* opened on first use */
    struct vnode *nodes;
    size_t n, cap;
    uint64_t next_ino;
};

int virt_new(const char *meta_db_path, const char *mountpoint, struct virt **out,
             struct sky_err *e)
{
    struct virt *v = calloc(1, sizeof *v);
    if (!v || !(v->db_path = strdup(meta_db_path)) || !(v->mount = strdup(mountpoint))) {
        if (v)
            free(v->db_path);
        free(v);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    pthread_mutex_init(&v->lock, NULL);
    v->next_ino = VIRT_INO_BASE + 16;
    *out = v;
    return 0;
}

void virt_free(struct virt *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        free(v->nodes[i].name);
        free(v->nodes[i].target);
    }
    free(v->nodes);
    search_close(v->search);
    pthread_mutex_destroy(&v->lock);
    free(v->db_path);
    free(v->mount);
    free(v);
}

static void fill(struct skyfs *fs, uint64_t ino, bool is_dir, size_t size, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_mode = is_dir ? (S_IFDIR | 0555) : (S_IFLNK | 0777);
    st->st_nlink = is_dir ? 2 : 1;
    st->st_uid = fs->uid;
    st->st_gid = fs->gid;
    st->st_size = (off_t)size;
    clock_gettime(CLOCK_REALTIME, &st->st_mtim);
    st->st_atim = st->st_ctim = st->st_mtim;
}

static struct vnode *find_node(struct virt *v, uint64_t parent, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->nodes[i].parent == parent && strcmp(v->nodes[i].name, name) == 0)
            return &v->nodes[i];
    return NULL;
}

static struct vnode *node_by_ino(struct virt *v, uint64_t ino)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->nodes[i].ino == ino)
            return &v->nodes[i];
    return NULL;
}

static struct vnode *add_node(struct virt *v, uint64_t parent, const char *name, bool is_dir,
                              const char *target)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        struct vnode *n = realloc(v->nodes, cap * sizeof *n);
        if (!n)
            return NULL;
        v->nodes = n;
        v->cap = cap;
    }
    struct vnode *nd = &v->nodes[v->n];
    nd->ino = v->next_ino++;
    nd->parent = parent;
    nd->name = strdup(name);
    nd->is_dir = is_dir;
    nd->stale = false;
    nd->target = target ? strdup(target) : NULL;
    if (!nd->name || (target && !nd->target)) {
        free(nd->name);
        free(nd->target);
        return NULL;
    }
    v->n++;
    return nd;
}

/* ---- queries ---------------------------------------------------------- */

#define QUERY_MAX_META 8

/* Parse a query directory name into q; strings point into `buf`, metadata
 * tests are stored in tests[QUERY_MAX_META]. */
static int parse_query(char *buf, struct search_query *q, struct search_meta_test *tests,
                       struct sky_err *e)
{
    search_query_init(q);
    q->limit = MAX_HITS;
    if (!strchr(buf, '=')) {
        q->iname_glob = buf;
        return 0;
    }
    for (char *save, *part = strtok_r(buf, "&", &save); part; part = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(part, '=');
        if (!eq)
            return sky_fail(e, ENOENT, "search: \"%s\" is not key=value", part);
        *eq = '\0';
        const char *key = part, *val = eq + 1;
        uint64_t size;
        if (strcmp(key, "name") == 0)
            q->name_glob = val;
        else if (strcmp(key, "iname") == 0)
            q->iname_glob = val;
        else if (strcmp(key, "cloud") == 0)
            q->cloud = val;
        else if (strcmp(key, "path") == 0) {
            char *p = eq + 1, *slash = strchr(p, '/');
            if (slash) {
                *slash = '\0';
                q->path_prefix = slash + 1;
            }
            q->cloud = p;
        } else if (strcmp(key, "type") == 0) {
            q->kind = *val == 'd' ? SKY_DIR : *val == 'l' ? SKY_LINK : SKY_FILE;
        } else if ((strcmp(key, "min") == 0 || strcmp(key, "max") == 0) &&
                   sky_parse_size(val, &size) == 0) {
            *(key[1] == 'i' ? &q->min_size : &q->max_size) = (int64_t)size;
        } else if (strcmp(key, "meta") == 0 && *val && *val != '=' &&
                   q->nmeta < QUERY_MAX_META) {
            char *veq = strchr(eq + 1, '=');    /* meta=KEY=GLOB or meta=KEY */
            if (veq)
                *veq = '\0';
            tests[q->nmeta++] = (struct search_meta_test){ eq + 1, veq ? veq + 1 : NULL };
            q->meta = tests;
        } else if (strcmp(key, "type_is") == 0) {
            q->content_type_glob = val;
        } else {
            return sky_fail(e, ENOENT, "search: unknown criterion \"%s\"; use name, iname, cloud, "
                            "path, type, min, max, meta or type_is", key);
        }
    }
    return 0;
}

struct refresh {
    struct virt *v;
    uint64_t dir;
    int rc;
};

static int add_hit(void *arg, const struct search_hit *h)
{
    struct refresh *r = arg;
    char target[4096], name[512];
    snprintf(target, sizeof target, "%s/%s/%s", r->v->mount, h->cloud, h->path);
    const char *base = strrchr(h->path, '/');
    base = base ? base + 1 : h->path;
    snprintf(name, sizeof name, "%s", base);
    for (size_t i = 0; i < r->v->n; i++) {
        struct vnode *nd = &r->v->nodes[i];
        if (nd->parent == r->dir && nd->target && strcmp(nd->target, target) == 0) {
            nd->stale = false; /* still a match: keeps its inode */
            return 0;
        }
    }
    for (int i = 2; find_node(r->v, r->dir, name); i++)
        snprintf(name, sizeof name, "%s (%d)", base, i);
    if (!add_node(r->v, r->dir, name, false, target)) {
        r->rc = -ENOMEM;
        return -ENOMEM;
    }
    return 0;
}

/* Drop the links of a query directory and run the query again. */
static int refresh_query(struct virt *v, struct vnode *dir, struct sky_err *e)
{
    uint64_t dir_ino = dir->ino;
    char *text = strdup(dir->name);
    if (!text)
        return sky_fail(e, ENOMEM, "out of memory");
    struct search_query q;
    struct search_meta_test tests[QUERY_MAX_META];
    int rc = parse_query(text, &q, tests, e);
    if (!rc && !v->search)
        rc = search_open(v->db_path, &v->search, e);
    if (!rc) {
        /* mark, re-add what still matches, then sweep what no longer does */
        for (size_t i = 0; i < v->n; i++)
            if (v->nodes[i].parent == dir_ino)
                v->nodes[i].stale = true;
        struct refresh r = { v, dir_ino, 0 };
        rc = search_run(v->search, &q, add_hit, &r, e);
        if (r.rc)
            rc = sky_fail(e, ENOMEM, "out of memory");
        size_t keep = 0;
        for (size_t i = 0; i < v->n; i++) {
            if (v->nodes[i].parent == dir_ino && v->nodes[i].stale) {
                free(v->nodes[i].name);
                free(v->nodes[i].target);
            } else {
                v->nodes[keep++] = v->nodes[i];
            }
        }
        v->n = keep;
    }
    free(text);
    return rc;
}

/* ---- the calls ops.c makes -------------------------------------------- */

int virt_lookup(struct skyfs *fs, uint64_t parent, const char *name, struct stat *st,
                struct sky_err *e)
{
    struct virt *v = fs->virt;
    if (parent == META_ROOT_INO) {
        if (strcmp(name, VIRT_DIR_NAME) != 0)
            return -ENOENT;
        fill(fs, INO_TOP, true, 0, st);
        return 0;
    }
    if (parent == INO_TOP) {
        if (strcmp(name, "search") != 0)
            return -ENOENT;
        fill(fs, INO_SEARCH, true, 0, st);
        return 0;
    }
    pthread_mutex_lock(&v->lock);
    int rc = 0;
    struct vnode *nd = find_node(v, parent, name);
    if (parent == INO_SEARCH) {
        if (!nd)
            nd = add_node(v, INO_SEARCH, name, true, NULL);
        if (!nd)
            rc = sky_fail(e, ENOMEM, "out of memory");
        else if ((rc = refresh_query(v, nd, e)) == 0) {
            nd = find_node(v, parent, name); /* table may have moved */
            fill(fs, nd->ino, true, 0, st);
        }
    } else if (!nd) {
        rc = -ENOENT;
    } else {
        fill(fs, nd->ino, nd->is_dir, nd->target ? strlen(nd->target) : 0, st);
    }
    pthread_mutex_unlock(&v->lock);
    return rc;
}

int virt_getattr(struct skyfs *fs, uint64_t ino, struct stat *st, struct sky_err *e)
{
    if (ino == INO_TOP || ino == INO_SEARCH) {
        fill(fs, ino, true, 0, st);
        return 0;
    }
    struct virt *v = fs->virt;
    pthread_mutex_lock(&v->lock);
    struct vnode *nd = node_by_ino(v, ino);
    if (nd)
        fill(fs, ino, nd->is_dir, nd->target ? strlen(nd->target) : 0, st);
    pthread_mutex_unlock(&v->lock);
    return nd ? 0 : -ENOENT;
}

int virt_readlink(struct skyfs *fs, uint64_t ino, char *buf, size_t size, struct sky_err *e)
{
    struct virt *v = fs->virt;
    pthread_mutex_lock(&v->lock);
    struct vnode *nd = node_by_ino(v, ino);
    int rc = nd && nd->target ? 0 : -EINVAL;
    if (!rc)
        snprintf(buf, size, "%s", nd->target);
    pthread_mutex_unlock(&v->lock);
    return rc;
}

int virt_list(struct skyfs *fs, uint64_t ino, virt_add_fn add, void *arg, struct sky_err *e)
{
    struct stat st;
    if (ino == INO_TOP) {
        fill(fs, INO_SEARCH, true, 0, &st);
        return add(arg, "search", &st);
    }
    struct virt *v = fs->virt;
    pthread_mutex_lock(&v->lock);
    int rc = 0;
    struct vnode *dir = node_by_ino(v, ino);
    if (ino != INO_SEARCH) {
        if (!dir || !dir->is_dir)
            rc = -ENOTDIR;
        else
            rc = refresh_query(v, dir, e);
    }
    for (size_t i = 0; !rc && i < v->n; i++) {
        struct vnode *nd = &v->nodes[i];
        if (nd->parent != ino)
            continue;
        fill(fs, nd->ino, nd->is_dir, nd->target ? strlen(nd->target) : 0, &st);
        rc = add(arg, nd->name, &st);
    }
    pthread_mutex_unlock(&v->lock);
    return rc;
}

void virt_note_evicted(struct virt *v, const char *token, size_t len,
                       const struct blocks_evicted *done)
{
    pthread_mutex_lock(&v->lock);
    struct evicted *slot = &v->evicted[v->next_evicted++ % EVICTED_KEPT];
    snprintf(slot->token, sizeof slot->token, "%.*s", (int)len, token);
    slot->done = *done;
    pthread_mutex_unlock(&v->lock);
}

/* user.skyfs.evicted.TOKEN */
static int evicted_value(struct virt *v, const char *token, char **out, size_t *len,
                         struct sky_err *e)
{
    int rc = -ENODATA;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < EVICTED_KEPT && rc == -ENODATA; i++) {
        const struct evicted *r = &v->evicted[i];
        if (!r->token[0] || strcmp(r->token, token) != 0)
            continue;
        int n = asprintf(out, "files %llu bytes %llu skipped %llu\n",
                         (unsigned long long)r->done.files, (unsigned long long)r->done.bytes,
                         (unsigned long long)r->done.skipped);
        rc = n < 0 ? sky_fail(e, ENOMEM, "out of memory") : 0;
        *len = n < 0 ? 0 : (size_t)n;
    }
    pthread_mutex_unlock(&v->lock);
    return rc;
}

int virt_getxattr(struct skyfs *fs, uint64_t ino, const char *name, char **out, size_t *len,
                  struct sky_err *e)
{
    size_t prefix = strlen(EVICTED_XATTR);
    if (ino == INO_TOP && strncmp(name, EVICTED_XATTR, prefix) == 0)
        return evicted_value(fs->virt, name + prefix, out, len, e);
    if (ino != INO_TOP || strcmp(name, "user.skyfs.requests") != 0)
        return -ENODATA;
    size_t size = 0;
    FILE *f = open_memstream(out, &size);
    if (!f)
        return sky_fail(e, ENOMEM, "out of memory");
    for (size_t i = 0; i < fs->nclouds; i++)
        fprintf(f, "%s %llu\n", fs->clouds[i].cfg->name,
                (unsigned long long)atomic_load(&fs->clouds[i].requests));
    fclose(f);
    *len = size;
    return 0;
}
