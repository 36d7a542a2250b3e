/* dirmemo.c - see dirmemo.h.
 *
 * The memory is a chained hash table of folders by "scope\nkey" (a scope,
 * a bucket name, holds no newline); each keeps whether a marker is there,
 * its version (a 64-bit fingerprint of the ETag, and Last-Modified) and
 * the folder's mode, owner and times as a head of the marker gave them:
 * about 100 bytes a folder, so at most ~10 MiB (DIRMEMO_MAX). */
#include "dirmemo.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"

#define DIRMEMO_BUCKETS 4096

struct dirmemo_ent {
    char *id;                       /* "scope\nkey" */
    bool stale;                     /* to be asked: the cloud's is newer than the cache's */
    bool marker;
    uint64_t etag_fp;               /* fingerprint of the ETag; 0: unknown */
    int64_t modified_s;             /* Last-Modified, whole seconds; 0: unknown */
    int64_t mtime_ns, atime_ns, ctime_ns;
    uint32_t mode, uid, gid, has;
    struct dirmemo_ent *next;
};

struct dirmemo {
    pthread_mutex_t lock;
    struct dirmemo_ent *b[DIRMEMO_BUCKETS];
    size_t n;
};

struct dirmemo_item {
    char *key;
    struct sky_dirent ent;          /* a deep copy */
};

int dirmemo_new(struct dirmemo **out)
{
    struct dirmemo *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return 0;
}

static void clear_locked(struct dirmemo *m)
{
    for (size_t i = 0; i < DIRMEMO_BUCKETS; i++) {
        while (m->b[i]) {
            struct dirmemo_ent *x = m->b[i];
            m->b[i] = x->next;
            free(x->id);
            free(x);
        }
    }
    m->n = 0;
}

void dirmemo_free(struct dirmemo *m)
{
    if (!m)
        return;
    clear_locked(m);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static unsigned hash_of(const char *scope, const char *key)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)scope; *p; p++)
        h = (h ^ *p) * 16777619u;
    h = (h ^ '\n') * 16777619u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % DIRMEMO_BUCKETS;
}

/* FNV-1a of an ETag; 0 for none. */
static uint64_t etag_fp(const char *etag)
{
    if (!etag || !*etag)
        return 0;
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)etag; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h ? h : 1;
}

/* The attributes of entry x: a directory's, kind SKY_DIR. */
static void attr_of(const struct dirmemo_ent *x, struct sky_attr *out)
{
    memset(out, 0, sizeof *out);
    out->kind = SKY_DIR;
    out->mtime_ns = x->mtime_ns;
    out->atime_ns = x->atime_ns;
    out->ctime_ns = x->ctime_ns;
    out->mode = x->mode;
    out->uid = x->uid;
    out->gid = x->gid;
    out->has = x->has;
}

static bool id_is(const char *id, const char *scope, const char *key)
{
    size_t sl = strlen(scope);
    return strncmp(id, scope, sl) == 0 && id[sl] == '\n' && strcmp(id + sl + 1, key) == 0;
}

/* The link pointing at the entry of scope/key (at NULL when none). */
static struct dirmemo_ent **find_locked(struct dirmemo *m, const char *scope, const char *key)
{
    struct dirmemo_ent **p = &m->b[hash_of(scope, key)];
    while (*p && !id_is((*p)->id, scope, key))
        p = &(*p)->next;
    return p;
}

static void unlink_locked(struct dirmemo *m, struct dirmemo_ent **p)
{
    struct dirmemo_ent *x = *p;
    *p = x->next;
    free(x->id);
    free(x);
    m->n--;
}

/* 1 with *out when remembered, 0 when not, -1 when to be asked (stale). */
static int lookup(struct dirmemo *m, const char *scope, const char *key, struct sky_attr *out)
{
    pthread_mutex_lock(&m->lock);
    struct dirmemo_ent *x = *find_locked(m, scope, key);
    int r = !x ? 0 : x->stale ? -1 : 1;
    if (r > 0)
        attr_of(x, out);
    pthread_mutex_unlock(&m->lock);
    return r;
}

bool dirmemo_get(struct dirmemo *m, const char *scope, const char *key, struct sky_attr *out)
{
    return lookup(m, scope, key, out) > 0;
}

void dirmemo_put(struct dirmemo *m, const char *scope, const char *key, bool marker,
                 const char *etag, int64_t modified_ns, const struct sky_attr *a)
{
    pthread_mutex_lock(&m->lock);
    struct dirmemo_ent **p = find_locked(m, scope, key);
    struct dirmemo_ent *x = *p;
    if (!x) {
        if (m->n >= DIRMEMO_MAX) {                  /* full: start again */
            clear_locked(m);
            p = find_locked(m, scope, key);
        }
        x = calloc(1, sizeof *x);
        if (!x || asprintf(&x->id, "%s\n%s", scope, key) < 0) {
            free(x);                                /* not remembered: asked again */
            pthread_mutex_unlock(&m->lock);
            return;
        }
        *p = x;
        m->n++;
    }
    x->stale = false;
    x->marker = marker;
    x->etag_fp = marker ? etag_fp(etag) : 0;
    /* a listing's LastModified may carry milliseconds, a head's seconds */
    x->modified_s = marker ? modified_ns / 1000000000 : 0;
    struct sky_attr none = { .kind = SKY_DIR };
    if (!marker || !a)
        a = &none;
    x->mtime_ns = a->mtime_ns;
    x->atime_ns = a->atime_ns;
    x->ctime_ns = a->ctime_ns;
    x->mode = a->mode;
    x->uid = a->uid;
    x->gid = a->gid;
    x->has = a->has;
    pthread_mutex_unlock(&m->lock);
}

void dirmemo_forget(struct dirmemo *m, const char *scope, const char *key)
{
    size_t len = strlen(key);
    if (!m || !len || key[len - 1] != '/')
        return;
    pthread_mutex_lock(&m->lock);
    struct dirmemo_ent **p = find_locked(m, scope, key);
    if (*p)
        unlink_locked(m, p);
    pthread_mutex_unlock(&m->lock);
}

void dirmemo_forget_all(struct dirmemo *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    clear_locked(m);
    pthread_mutex_unlock(&m->lock);
}

void dirmemo_seen(struct dirmemo *m, const char *scope, const char *key, bool marker,
                  const char *etag, int64_t modified_ns)
{
    pthread_mutex_lock(&m->lock);
    struct dirmemo_ent **p = find_locked(m, scope, key);
    struct dirmemo_ent *x = *p;
    if (x && (x->marker != marker ||
              (marker && (!x->etag_fp || x->etag_fp != etag_fp(etag) ||
                          x->modified_s != modified_ns / 1000000000))))
        x->stale = true;    /* asked next time, not taken from the cache */
    pthread_mutex_unlock(&m->lock);
}

/* The folder's attributes a, under the listed entry's name. */
static void take_attr(struct sky_dirent *ent, const struct sky_attr *a)
{
    ent->attr = *a;
    ent->attr.kind = SKY_DIR;
    ent->attr.size = 0;
    ent->attr.rdev = 0;
    ent->attr.etag[0] = '\0';
}

void dirmemo_batch_free(struct dirmemo_batch *b)
{
    for (size_t i = 0; b->items && i < b->n; i++) {
        free(b->items[i].key);
        sky_dirent_free(&b->items[i].ent);
    }
    free(b->items);
    b->items = NULL;
    b->n = 0;
}

/* parallel_for job: ask about item i. */
static int ask_job(void *arg, size_t i, struct sky_err *e)
{
    struct dirmemo_batch *b = arg;
    struct dirmemo_item *it = &b->items[i];
    struct sky_attr got;
    /* another listing may have asked since this folder was kept (the
     * crawl and a listing through the mount walk the same folders) */
    if (lookup(b->memo, b->scope, it->key, &got) > 0) {
        take_attr(&it->ent, &got);
        return 0;
    }
    char etag[SKY_ETAG_MAX] = "";
    int64_t modified_ns = 0;
    memset(&got, 0, sizeof got);
    int rc = b->ask(b->ask_arg, it->key, &got, etag, &modified_ns, e);
    if (rc == 0) {
        dirmemo_put(b->memo, b->scope, it->key, true, etag, modified_ns, &got);
        take_attr(&it->ent, &got);
    } else if (rc == -ENOENT) {
        dirmemo_put(b->memo, b->scope, it->key, false, NULL, 0, NULL);
    }
    return rc < 0 && rc != -ENOENT ? rc : 0;
}

int dirmemo_flush(struct dirmemo_batch *b)
{
    int rc = b->n ? parallel_for(b->n, DIRMEMO_THREADS, ask_job, b, b->e) : 0;
    for (size_t i = 0; rc == 0 && i < b->n; i++)
        rc = b->cb(b->cb_arg, &b->items[i].ent);
    dirmemo_batch_free(b);
    return rc;
}

int dirmemo_add(struct dirmemo_batch *b, const char *key, const struct sky_dirent *ent)
{
    struct sky_attr known;
    int r = lookup(b->memo, b->scope, key, &known);
    bool have = r > 0;
    if (r == 0 && b->known && b->known(b->ask_arg, key, &known)) {
        have = true;    /* remembered without a version (dirmemo_seen) */
        dirmemo_put(b->memo, b->scope, key, true, "", 0, &known);
    }
    if (have) {
        struct sky_dirent d = *ent;
        take_attr(&d, &known);
        return b->cb(b->cb_arg, &d);
    }
    if (!b->items && !(b->items = calloc(DIRMEMO_BATCH, sizeof *b->items)))
        return sky_fail(b->e, ENOMEM, "out of memory");
    struct dirmemo_item *it = &b->items[b->n];
    if (!(it->key = strdup(key)) || sky_dirent_copy(&it->ent, ent) < 0) {
        free(it->key);
        return sky_fail(b->e, ENOMEM, "out of memory");
    }
    b->n++;
    return b->n == DIRMEMO_BATCH ? dirmemo_flush(b) : 0;
}
