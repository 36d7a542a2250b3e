/*
 * virtual.c - the hidden `.skyfs` directory; see virtual.h.
 *
 * Virtual entries live in a small in-memory table guarded by one mutex.
 * A query directory belongs to the user who looked it up: another user
 * asking the same query gets a directory of its own, with the hits that
 * user may see (search_viewer), and lists only its own queries.  It is
 * re-run against the index each time it is looked up or listed; a match
 * keeps its inode while the directory lives, and a directory unused for
 * the expiry time (SKYFS_SEARCH_EXPIRY seconds, default 60) goes away
 * with its links.
 */
#include "virtual.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cache/meta.h"
#include "../cache/search.h"
#include "../lib/config.h"
#include "../lib/metrics.h"
#include "crawl.h"
#include "skyfs.h"

#define INO_TOP    (VIRT_INO_BASE + 1)   /* .skyfs */
#define INO_SEARCH (VIRT_INO_BASE + 2)   /* .skyfs/search */
#define INO_METRICS (VIRT_INO_BASE + 3)  /* .skyfs/metrics */
#define MAX_HITS   10000
#define DEFAULT_EXPIRY_S 60                  /* unused query directories */
#define EVICTED_KEPT 16                  /* eviction results remembered */
#define EVICTED_XATTR "user.skyfs.evicted."

struct vnode {
    uint64_t ino, parent;
    char *name;
    bool is_dir;
    bool stale;             /* not among the latest results (refresh_query) */
    char *target;           /* symlinks */
    uid_t owner;            /* the user who asked (query dirs and their links) */
    gid_t group;
    int64_t used_ns;        /* query dirs: last time the owner used it */
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
    int64_t expiry_ns;      /* unused query directories go after this */
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
    const char *expiry = getenv("SKYFS_SEARCH_EXPIRY");
    long secs = expiry && *expiry ? strtol(expiry, NULL, 10) : 0;
    v->expiry_ns = (int64_t)(secs > 0 ? secs : DEFAULT_EXPIRY_S) * 1000000000LL;
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

static void fill_as(uint64_t ino, bool is_dir, mode_t perm, size_t size, uid_t uid, gid_t gid,
                    struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_mode = (is_dir ? S_IFDIR : S_IFLNK) | perm;
    st->st_nlink = is_dir ? 2 : 1;
    st->st_uid = uid;
    st->st_gid = gid;
    st->st_size = (off_t)size;
    clock_gettime(CLOCK_REALTIME, &st->st_mtim);
    st->st_atim = st->st_ctim = st->st_mtim;
}

/* .skyfs and .skyfs/search: everyone's, read-only */
static void fill_top(struct skyfs *fs, uint64_t ino, struct stat *st)
{
    fill_as(ino, true, 0555, 0, fs->shown.uid, fs->shown.gid, st);
}

/* .skyfs/metrics: a read-only file for everyone.  Its size is unknown
 * until it is read (opened with direct_io, so reads go on to the end). */
static void fill_metrics(struct skyfs *fs, struct stat *st)
{
    fill_as(INO_METRICS, false, 0444, 0, fs->shown.uid, fs->shown.gid, st);
    st->st_mode = S_IFREG | 0444;
}

/* a query directory (only its owner may list it) or one of its links */
static void fill_node(const struct vnode *nd, struct stat *st)
{
    fill_as(nd->ino, nd->is_dir, nd->is_dir ? 0500 : 0777, nd->target ? strlen(nd->target) : 0,
            nd->owner, nd->group, st);
}

static struct vnode *find_node(struct virt *v, uint64_t parent, const char *name, uid_t owner)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->nodes[i].parent == parent && v->nodes[i].owner == owner &&
            strcmp(v->nodes[i].name, name) == 0)
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
                              const char *target, uid_t owner, gid_t group)
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
    nd->owner = owner;
    nd->group = group;
    nd->used_ns = 0;
    if (!nd->name || (target && !nd->target)) {
        free(nd->name);
        free(nd->target);
        return NULL;
    }
    v->n++;
    return nd;
}

static bool node_is_dir(struct virt *v, uint64_t ino)
{
    pthread_mutex_lock(&v->lock);
    struct vnode *nd = node_by_ino(v, ino);
    bool dir = nd && nd->is_dir;
    pthread_mutex_unlock(&v->lock);
    return dir;
}

/* ---- queries ---------------------------------------------------------- */

#define QUERY_MAX_META 8

/* Undo %XX escapes in place: a query directory's name cannot hold '/', so
 * path=docs%2Freports and type_is=image%2Fjpeg spell it, %26 an '&', %3D
 * an '=' and %25 a '%'.  A '%' not followed by two hex digits stays.
 * false for %00. */
static bool percent_decode(char *s)
{
    char *out = s;
    for (const char *p = s; *p; p++) {
        if (p[0] == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hex[3] = { p[1], p[2], 0 };
            char c = (char)strtol(hex, NULL, 16);
            if (!c)
                return false;
            *out++ = c;
            p += 2;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
    return true;
}

/* Parse a query directory name into q; strings point into `buf`, metadata
 * tests are stored in tests[QUERY_MAX_META].  A query that cannot work is
 * -EINVAL with the reason (fs/ops.c logs it). */
static int parse_query(char *buf, struct search_query *q, struct search_meta_test *tests,
                       struct sky_err *e)
{
    search_query_init(q);
    q->limit = MAX_HITS;
    if (!strchr(buf, '=')) {
        if (!percent_decode(buf))
            return sky_fail(e, EINVAL, "%%00 cannot be part of a name");
        q->iname_glob = buf;
        return 0;
    }
    for (char *save, *part = strtok_r(buf, "&", &save); part; part = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(part, '=');
        if (!eq)
            return sky_fail(e, EINVAL, "\"%s\" is not key=value", part);
        *eq = '\0';
        char *key = part, *val = eq + 1, *veq = NULL;
        if (strcmp(key, "meta") == 0 && (veq = strchr(val, '=')))
            *veq++ = '\0';     /* meta=KEY=GLOB: split before decoding */
        if (!percent_decode(val) || (veq && !percent_decode(veq)))
            return sky_fail(e, EINVAL, "%s: %%00 cannot be part of a value", key);
        uint64_t size;
        if (strcmp(key, "name") == 0)
            q->name_glob = val;
        else if (strcmp(key, "iname") == 0)
            q->iname_glob = val;
        else if (strcmp(key, "cloud") == 0)
            q->cloud = val;
        else if (strcmp(key, "path") == 0) {
            while (*val == '/')
                val++;
            char *slash = strchr(val, '/');
            if (slash) {
                *slash = '\0';
                q->path_prefix = slash + 1;
                size_t n = strlen(q->path_prefix);
                while (n && q->path_prefix[n - 1] == '/')
                    slash[n--] = '\0';
            }
            q->cloud = val;
        } else if (strcmp(key, "type") == 0) {
            if (strcmp(val, "f") != 0 && strcmp(val, "d") != 0 && strcmp(val, "l") != 0)
                return sky_fail(e, EINVAL, "type=%s: use f, d or l", val);
            q->kind = *val == 'd' ? SKY_DIR : *val == 'l' ? SKY_LINK : SKY_FILE;
        } else if (strcmp(key, "min") == 0 || strcmp(key, "max") == 0) {
            if (sky_parse_size(val, &size) != 0)
                return sky_fail(e, EINVAL, "%s=%s is not a size; write e.g. 10M", key, val);
            *(key[1] == 'i' ? &q->min_size : &q->max_size) = (int64_t)size;
        } else if (strcmp(key, "meta") == 0) {
            if (!*val)
                return sky_fail(e, EINVAL, "meta= needs a KEY (meta=KEY or meta=KEY=GLOB)");
            if (q->nmeta == QUERY_MAX_META)
                return sky_fail(e, EINVAL, "at most %d meta= criteria", QUERY_MAX_META);
            tests[q->nmeta++] = (struct search_meta_test){ val, veq };
            q->meta = tests;
        } else if (strcmp(key, "type_is") == 0) {
            q->content_type_glob = val;
        } else {
            return sky_fail(e, EINVAL, "unknown criterion \"%s\"; use name, iname, cloud, "
                            "path, type, min, max, meta or type_is", key);
        }
    }
    return 0;
}

struct refresh {
    struct virt *v;
    const struct vnode *dir;
    int rc;
};

static int add_hit(void *arg, const struct search_hit *h)
{
    struct refresh *r = arg;
    uint64_t dir = r->dir->ino;
    char target[4096], name[512];
    snprintf(target, sizeof target, "%s/%s/%s", r->v->mount, h->cloud, h->path);
    const char *base = strrchr(h->path, '/');
    base = base ? base + 1 : h->path;
    snprintf(name, sizeof name, "%s", base);
    for (size_t i = 0; i < r->v->n; i++) {
        struct vnode *nd = &r->v->nodes[i];
        if (nd->parent == dir && nd->target && strcmp(nd->target, target) == 0) {
            nd->stale = false; /* still a match: keeps its inode */
            return 0;
        }
    }
    for (int i = 2; find_node(r->v, dir, name, r->dir->owner); i++)
        snprintf(name, sizeof name, "%s (%d)", base, i);
    if (!add_node(r->v, dir, name, false, target, r->dir->owner, r->dir->group)) {
        r->rc = -ENOMEM;
        return -ENOMEM;
    }
    return 0;
}

/* Check a query directory's name; the message says why it cannot work. */
static int check_query(const char *name, struct sky_err *e)
{
    char *text = strdup(name);
    if (!text)
        return sky_fail(e, ENOMEM, "out of memory");
    struct search_query q;
    struct search_meta_test tests[QUERY_MAX_META];
    int rc = parse_query(text, &q, tests, e);
    free(text);
    if (rc)
        sky_err_prefix(e, "search query \"%s\"", name);
    return rc;
}

/* Drop the links of a query directory and run the query again, as its
 * owner `who` sees the index. */
static int refresh_query(struct skyfs *fs, struct virt *v, struct vnode *dir,
                         const struct sky_requester *who, struct sky_err *e)
{
    struct vnode self = *dir;           /* the table may move */
    char *text = strdup(dir->name);
    if (!text)
        return sky_fail(e, ENOMEM, "out of memory");
    struct search_query q;
    struct search_meta_test tests[QUERY_MAX_META];
    struct search_viewer viewer = { who, &fs->shown };
    int rc = parse_query(text, &q, tests, e);
    q.viewer = &viewer;
    if (!rc && !v->search)
        rc = search_open(v->db_path, &v->search, e);
    if (!rc) {
        /* mark, re-add what still matches, then sweep what no longer does */
        for (size_t i = 0; i < v->n; i++)
            if (v->nodes[i].parent == self.ino)
                v->nodes[i].stale = true;
        struct refresh r = { v, &self, 0 };
        rc = search_run(v->search, &q, add_hit, &r, e);
        if (r.rc)
            rc = sky_fail(e, ENOMEM, "out of memory");
        size_t keep = 0;
        for (size_t i = 0; i < v->n; i++) {
            if (v->nodes[i].parent == self.ino && v->nodes[i].stale) {
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

/* Forget query directories unused for the expiry time, with their links
 * (a few directories per pass, each pass one walk over the table). */
static void expire_queries(struct virt *v, int64_t now)
{
    uint64_t gone[32];
    size_t ngone = 0;
    bool more = false;
    for (size_t i = 0; i < v->n; i++) {
        const struct vnode *nd = &v->nodes[i];
        if (nd->parent == INO_SEARCH && nd->used_ns + v->expiry_ns < now) {
            if (ngone < sizeof gone / sizeof gone[0])
                gone[ngone++] = nd->ino;
            else
                more = true;
        }
    }
    if (!ngone)
        return;
    size_t keep = 0;
    for (size_t i = 0; i < v->n; i++) {
        struct vnode *nd = &v->nodes[i];
        bool drop = false;
        for (size_t g = 0; g < ngone && !drop; g++)
            drop = nd->ino == gone[g] || nd->parent == gone[g];
        if (drop) {
            free(nd->name);
            free(nd->target);
        } else {
            v->nodes[keep++] = *nd;
        }
    }
    v->n = keep;
    if (more)
        expire_queries(v, now);
}

/* A node `who` may use: its own, and for a link, its query directory is
 * marked used. */
static struct vnode *own_node(struct virt *v, uint64_t ino, const struct sky_requester *who)
{
    struct vnode *nd = node_by_ino(v, ino);
    if (!nd || nd->owner != who->uid)
        return NULL;
    struct vnode *dir = nd->parent == INO_SEARCH ? nd : node_by_ino(v, nd->parent);
    if (dir)
        dir->used_ns = skyfs_now();
    return nd;
}

/* ---- the calls ops.c makes -------------------------------------------- */

int virt_lookup(struct skyfs *fs, const struct sky_requester *who, uint64_t parent,
                const char *name, struct stat *st, struct sky_err *e)
{
    struct virt *v = fs->virt;
    if (parent == META_ROOT_INO) {
        if (strcmp(name, VIRT_DIR_NAME) != 0)
            return -ENOENT;
        fill_top(fs, INO_TOP, st);
        return 0;
    }
    if (parent == INO_TOP) {
        if (strcmp(name, "metrics") == 0) {
            fill_metrics(fs, st);
            return 0;
        }
        if (strcmp(name, "search") != 0)
            return -ENOENT;
        fill_top(fs, INO_SEARCH, st);
        return 0;
    }
    pthread_mutex_lock(&v->lock);
    int64_t now = skyfs_now();
    expire_queries(v, now);
    int rc = 0;
    if (parent == INO_SEARCH) {
        struct vnode *nd = find_node(v, parent, name, who->uid);
        if (!nd && (rc = check_query(name, e)) == 0 &&
            !(nd = add_node(v, INO_SEARCH, name, true, NULL, who->uid, who->gid)))
            rc = sky_fail(e, ENOMEM, "out of memory");
        if (!rc) {
            nd->used_ns = now;
            rc = refresh_query(fs, v, nd, who, e);
        }
        if (!rc) {
            nd = find_node(v, parent, name, who->uid); /* table may have moved */
            fill_node(nd, st);
        }
    } else {
        struct vnode *dir = own_node(v, parent, who);
        struct vnode *nd = dir ? find_node(v, parent, name, who->uid) : NULL;
        if (!nd)
            rc = -ENOENT;
        else
            fill_node(nd, st);
    }
    pthread_mutex_unlock(&v->lock);
    return rc;
}

int virt_getattr(struct skyfs *fs, const struct sky_requester *who, uint64_t ino,
                 struct stat *st, struct sky_err *e)
{
    if (ino == INO_TOP || ino == INO_SEARCH) {
        fill_top(fs, ino, st);
        return 0;
    }
    if (ino == INO_METRICS) {
        fill_metrics(fs, st);
        return 0;
    }
    struct virt *v = fs->virt;
    pthread_mutex_lock(&v->lock);
    struct vnode *nd = own_node(v, ino, who);
    if (nd)
        fill_node(nd, st);
    pthread_mutex_unlock(&v->lock);
    return nd ? 0 : -ENOENT;
}

int virt_readlink(struct skyfs *fs, const struct sky_requester *who, uint64_t ino, char *buf,
                  size_t size, struct sky_err *e)
{
    struct virt *v = fs->virt;
    pthread_mutex_lock(&v->lock);
    struct vnode *nd = own_node(v, ino, who);
    int rc = nd && nd->target ? 0 : nd ? -EINVAL : -ENOENT;
    if (!rc)
        snprintf(buf, size, "%s", nd->target);
    pthread_mutex_unlock(&v->lock);
    return rc;
}

int virt_list(struct skyfs *fs, const struct sky_requester *who, uint64_t ino, virt_add_fn add,
              void *arg, struct sky_err *e)
{
    struct stat st;
    if (ino == INO_TOP) {
        fill_metrics(fs, &st);
        int rc = add(arg, "metrics", &st);
        fill_top(fs, INO_SEARCH, &st);
        return rc ? rc : add(arg, "search", &st);
    }
    struct virt *v = fs->virt;
    pthread_mutex_lock(&v->lock);
    expire_queries(v, skyfs_now());
    int rc = 0;
    if (ino != INO_SEARCH) {
        struct vnode *dir = own_node(v, ino, who);
        if (!dir)
            rc = -ENOENT;
        else if (!dir->is_dir)
            rc = -ENOTDIR;
        else
            rc = refresh_query(fs, v, dir, who, e);
    }
    for (size_t i = 0; !rc && i < v->n; i++) {
        struct vnode *nd = &v->nodes[i];
        if (nd->parent != ino || nd->owner != who->uid)
            continue;
        fill_node(nd, &st);
        rc = add(arg, nd->name, &st);
    }
    pthread_mutex_unlock(&v->lock);
    return rc;
}

int virt_open_file(struct skyfs *fs, uint64_t ino, int flags, char **text, size_t *len,
                   struct sky_err *e)
{
    if (ino != INO_METRICS)
        return ino == INO_TOP || ino == INO_SEARCH || node_is_dir(fs->virt, ino) ? -EISDIR
                                                                                : -EACCES;
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
        return sky_fail(e, EACCES, ".skyfs/metrics is read-only");
    if (!(*text = sky_metrics_render(len)))
        return sky_fail(e, ENOMEM, "out of memory rendering the metrics");
    return 0;
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
    bool crawls = ino == INO_TOP && strcmp(name, "user.skyfs.crawls") == 0;
    if (ino != INO_TOP || (!crawls && strcmp(name, "user.skyfs.requests") != 0))
        return -ENODATA;
    size_t size = 0;
    FILE *f = open_memstream(out, &size);
    if (!f)
        return sky_fail(e, ENOMEM, "out of memory");
    for (size_t i = 0; i < fs->nclouds; i++) {
        const struct crawl_counters *cc = crawl_counters_of(fs, &fs->clouds[i]);
        if (!crawls)
            fprintf(f, "%s %llu\n", fs->clouds[i].cfg->name,
                    (unsigned long long)atomic_load(&fs->clouds[i].requests));
        else if (cc)
            fprintf(f, "%s running %d crawls %llu failures %llu entries %llu removed %llu "
                    "last_ms %llu\n", fs->clouds[i].cfg->name, atomic_load(&cc->running),
                    (unsigned long long)atomic_load(&cc->crawls),
                    (unsigned long long)atomic_load(&cc->failures),
                    (unsigned long long)atomic_load(&cc->entries),
                    (unsigned long long)atomic_load(&cc->removed),
                    (unsigned long long)atomic_load(&cc->last_duration_ms));
        else
            fprintf(f, "%s off\n", fs->clouds[i].cfg->name);
    }
    fclose(f);
    *len = size;
    return 0;
}
