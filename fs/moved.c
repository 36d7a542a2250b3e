/*
 * moved.c - after a rename, the caches take the moved objects' versions as
 * the cloud now holds them (see moved.h).
 */
#include "moved.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "skyfs.h"

/* ---- unverified destinations (a refresh that failed) ------------------- */

struct mark {
    const struct cloud *cloud;
    char *prefix;               /* the rename's destination path */
    struct mark *next;
};

static pthread_mutex_t marks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mark *marks;

static void mark_add(const struct cloud *c, const char *to)
{
    struct mark *m = calloc(1, sizeof *m);
    char *p = strdup(to);
    if (!m || !p) {
        free(m);
        free(p);
        LOG_WARN("cloud '%s': out of memory remembering \"%s\" as unverified", c->cfg->name, to);
        return;
    }
    m->cloud = c;
    m->prefix = p;
    pthread_mutex_lock(&marks_lock);
    m->next = marks;
    marks = m;
    pthread_mutex_unlock(&marks_lock);
}

static bool under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool marked(const struct cloud *c, const char *path)
{
    bool found = false;
    pthread_mutex_lock(&marks_lock);
    for (struct mark *m = marks; m && !found; m = m->next)
        found = m->cloud == c && under(path, m->prefix);
    pthread_mutex_unlock(&marks_lock);
    return found;
}

void moved_forget(struct cloud *c)
{
    pthread_mutex_lock(&marks_lock);
    for (struct mark **at = &marks; *at;) {
        struct mark *m = *at;
        if (m->cloud == c) {
            *at = m->next;
            free(m->prefix);
            free(m);
        } else {
            at = &m->next;
        }
    }
    pthread_mutex_unlock(&marks_lock);
}

/* ---- taking a new version ----------------------------------------------- */

/* File entry ino at path holds version `old` in the caches and `etag` on
 * the cloud, with the same bytes: the metadata cache, the block cache (a
 * pending upload's base) and an open file take etag. */
static void retag(struct skyfs *fs, struct cloud *c, uint64_t ino, const char *path,
                  const char *old, const char *etag)
{
    if (!*etag || strcmp(old, etag) == 0)
        return;
    struct sky_err e = { 0 };
    struct meta_entry ent;
    if (ino && meta_get(fs->meta, ino, &ent, NULL) == 0) {
        if (strcmp(ent.attr.etag, old) == 0) {
            struct sky_attr a = ent.attr;
            snprintf(a.etag, sizeof a.etag, "%s", etag);
            if (meta_set_attr(fs->meta, ino, &a, skyfs_now(), &e) != 0)
                LOG_WARN("%s", e.msg);
        }
        meta_entry_free(&ent);
    }
    sky_err_clear(&e);
    if (blocks_retag(fs->blocks, c->cfg->name, path, old, etag, &e) != 0)
        LOG_WARN("%s", e.msg);
    struct ofile *of = ino ? files_find(fs, ino) : NULL;
    if (of) {
        pthread_mutex_lock(&of->lock);
        if (strcmp(of->etag, old) == 0)
            snprintf(of->etag, sizeof of->etag, "%s", etag);
        pthread_mutex_unlock(&of->lock);
        files_close(fs, of);
    }
}

/* What the cache holds under one directory. */
struct known {
    uint64_t ino;
    char *name;
    enum sky_kind kind;
    char etag[SKY_ETAG_MAX];
};
struct knowns {
    struct known *v;
    size_t n, cap;
    int err;
};

static int add_known(void *arg, const struct meta_entry *ent)
{
    struct knowns *k = arg;
    if (ent->attr.kind != SKY_FILE && ent->attr.kind != SKY_DIR)
        return 0;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 16;
        struct known *v = realloc(k->v, cap * sizeof *v);
        if (!v)
            return k->err = -ENOMEM;
        k->v = v;
        k->cap = cap;
    }
    struct known *it = &k->v[k->n];
    it->name = strdup(ent->name);
    if (!it->name)
        return k->err = -ENOMEM;
    it->ino = ent->ino;
    it->kind = ent->attr.kind;
    snprintf(it->etag, sizeof it->etag, "%s", ent->attr.etag);
    k->n++;
    return 0;
}

static void knowns_free(struct knowns *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i].name);
    free(k->v);
}

/* The listing's files (name, etag). */
struct listed {
    char **names;
    char (*etags)[SKY_ETAG_MAX];
    size_t n, cap;
};

static int add_listed(void *arg, const struct sky_dirent *d)
{
    struct listed *l = arg;
    if (d->attr.kind != SKY_FILE)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **names = realloc(l->names, cap * sizeof *names);
        if (!names)
            return -ENOMEM;
        l->names = names;
        char (*etags)[SKY_ETAG_MAX] = realloc(l->etags, cap * sizeof *etags);
        if (!etags)
            return -ENOMEM;
        l->etags = etags;
        l->cap = cap;
    }
    l->names[l->n] = strdup(d->name);
    if (!l->names[l->n])
        return -ENOMEM;
    snprintf(l->etags[l->n], SKY_ETAG_MAX, "%s", d->attr.etag);
    l->n++;
    return 0;
}

static void listed_free(struct listed *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->etags);
}

static const char *listed_etag(const struct listed *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return l->etags[i];
    return NULL;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", dir, *dir ? "/" : "", name);
    return p;
}

/* Directory `ino` at `path` (already renamed): one listing, and the cached
 * files in it take the versions it reports; its cached subdirectories
 * follow.  0, or the first failure (the rest is still tried). */
static int refresh_dir(struct skyfs *fs, struct cloud *c, uint64_t ino, const char *path,
                       unsigned depth, struct sky_err *e)
{
    struct knowns k = { 0 };
    int rc = meta_children(fs->meta, ino, add_known, &k, e);
    if (rc == 0 && k.err)
        rc = sky_fail(e, ENOMEM, "out of memory");
    struct listed l = { 0 };
    bool any_file = false;
    for (size_t i = 0; rc == 0 && i < k.n; i++)
        any_file |= k.v[i].kind == SKY_FILE && k.v[i].etag[0];
    if (rc == 0 && any_file) {
        rc = c->drv->list(c->ctx, path, add_listed, &l, e);
        cloud_note_result(c, rc, e);
    }
    for (size_t i = 0; rc == 0 && any_file && i < k.n; i++) {
        const char *now = k.v[i].kind == SKY_FILE ? listed_etag(&l, k.v[i].name) : NULL;
        char *p = now ? join(path, k.v[i].name) : NULL;
        if (p)
            retag(fs, c, k.v[i].ino, p, k.v[i].etag, now);
        free(p);
    }
    listed_free(&l);
    int first = rc;
    for (size_t i = 0; depth < 256 && i < k.n; i++) {
        if (k.v[i].kind != SKY_DIR)
            continue;
        char *p = join(path, k.v[i].name);
        struct sky_err se = { 0 };
        int r = p ? refresh_dir(fs, c, k.v[i].ino, p, depth + 1, first ? &se : e)
                  : sky_fail(first ? &se : e, ENOMEM, "out of memory");
        if (!first)
            first = r;
        free(p);
    }
    knowns_free(&k);
    return first;
}

void moved_refresh(struct skyfs *fs, struct cloud *c, uint64_t ino, const char *to, bool dir)
{
    struct sky_err e = { 0 };
    int rc;
    if (dir) {
        rc = refresh_dir(fs, c, ino, to, 0, &e);
    } else {
        struct meta_entry ent;
        rc = meta_get(fs->meta, ino, &ent, &e);
        if (rc == 0) {
            if (ent.attr.kind == SKY_FILE && ent.attr.etag[0]) {
                struct sky_attr now;
                rc = c->drv->stat(c->ctx, to, &now, &e);
                cloud_note_result(c, rc, &e);
                if (rc == 0 && now.kind == SKY_FILE)
                    retag(fs, c, ino, to, ent.attr.etag, now.etag);
            }
            meta_entry_free(&ent);
        }
    }
    if (rc) {
        LOG_WARN("cloud '%s': after the rename to \"%s\", its version could not be read "
                 "(%s); the next delete or upload under it asks the cloud first",
                 c->cfg->name, to, e.msg);
        mark_add(c, to);
    }
}

bool moved_verify(struct skyfs *fs, struct cloud *c, uint64_t ino, const char *path,
                  char *etag, size_t size)
{
    if (!*etag || !marked(c, path))
        return false;
    struct sky_attr now;
    struct sky_err e = { 0 };
    int rc = c->drv->stat(c->ctx, path, &now, &e);
    cloud_note_result(c, rc, &e);
    if (rc != 0 || now.kind != SKY_FILE || strcmp(now.etag, etag) == 0)
        return false;
    retag(fs, c, ino, path, etag, now.etag);
    snprintf(etag, size, "%s", now.etag);
    return true;
}
