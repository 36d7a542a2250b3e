/*
 * objmeta.c - building, copying and freeing `struct sky_objmeta`, and deep
 * copies of listing entries (the helpers declared in driver.h).
 *
 * The user items are a plain array grown by doubling; objects carry a few
 * items at most (S3 allows 2 KiB of user metadata, Azure 8 KiB), so a
 * linear search for duplicates costs nothing.
 */
#include "driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void item_free(struct sky_meta_item *it)
{
    free(it->key);
    free(it->value);
}

/* A NUL-terminated copy of len bytes. */
static char *bytes_dup(const void *value, size_t len)
{
    char *v = malloc(len + 1);
    if (!v)
        return NULL;
    if (len)
        memcpy(v, value, len);
    v[len] = '\0';
    return v;
}

static bool same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool sky_objmeta_same_stored(const struct sky_objmeta *a, const struct sky_objmeta *b)
{
    static const struct sky_objmeta none;
    a = a ? a : &none;
    b = b ? b : &none;
    if (!same_text(a->content_type, b->content_type) || a->nuser != b->nuser)
        return false;
    for (size_t i = 0; i < a->nuser; i++) {
        const struct sky_meta_item *other = sky_objmeta_find(b, a->user[i].key);
        if (!other || other->len != a->user[i].len ||
            memcmp(other->value, a->user[i].value, other->len) != 0)
            return false;
    }
    return true;
}

const struct sky_meta_item *sky_objmeta_find(const struct sky_objmeta *m, const char *key)
{
    for (size_t i = 0; m && i < m->nuser; i++)
        if (strcmp(m->user[i].key, key) == 0)
            return &m->user[i];
    return NULL;
}

int sky_objmeta_add_user(struct sky_objmeta *m, const char *key, const void *value, size_t len)
{
    char *v = bytes_dup(value, len);
    if (!v)
        return -ENOMEM;
    struct sky_meta_item *old = (struct sky_meta_item *)sky_objmeta_find(m, key);
    if (old) {
        free(old->value);
        old->value = v;
        old->len = len;
        return 0;
    }
    char *k = strdup(key);
    /* grow at powers of two: nuser items fit in the next one up */
    size_t n = m->nuser;
    struct sky_meta_item *items = m->user;
    if (k && (n & (n - 1)) == 0)
        items = realloc(m->user, (n ? 2 * n : 1) * sizeof *items);
    if (!k || !items) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    m->user = items;
    m->user[n] = (struct sky_meta_item){ k, v, len };
    m->nuser = n + 1;
    return 0;
}

int sky_objmeta_set(char **field, const char *value)
{
    char *copy = value ? strdup(value) : NULL;
    if (value && !copy)
        return -ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

int sky_objmeta_copy(struct sky_objmeta *dst, const struct sky_objmeta *src)
{
    memset(dst, 0, sizeof *dst);
    dst->has_user = src->has_user;
    int rc = sky_objmeta_set(&dst->content_type, src->content_type);
    if (rc == 0)
        rc = sky_objmeta_set(&dst->storage_class, src->storage_class);
    for (size_t i = 0; rc == 0 && i < src->nuser; i++)
        rc = sky_objmeta_add_user(dst, src->user[i].key, src->user[i].value, src->user[i].len);
    if (rc)
        sky_objmeta_free(dst);
    return rc;
}

void sky_objmeta_free(struct sky_objmeta *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nuser; i++)
        item_free(&m->user[i]);
    free(m->user);
    free(m->content_type);
    free(m->storage_class);
    memset(m, 0, sizeof *m);
}

int sky_dirent_copy(struct sky_dirent *dst, const struct sky_dirent *src)
{
    *dst = (struct sky_dirent){ .attr = src->attr };
    char *name = strdup(src->name);
    char *link = src->link ? strdup(src->link) : NULL;
    struct sky_objmeta *meta = src->meta ? malloc(sizeof *meta) : NULL;
    bool ok = name && (!src->link || link) && (!src->meta || meta);
    if (ok && meta && sky_objmeta_copy(meta, src->meta)) {
        free(meta);
        meta = NULL;
        ok = false;
    }
    if (!ok) {
        free(name);
        free(link);
        free(meta);
        return -ENOMEM;
    }
    dst->name = name;
    dst->link = link;
    dst->meta = meta;
    return 0;
}

void sky_dirent_free(struct sky_dirent *d)
{
    if (!d)
        return;
    free((char *)d->name);
    free((char *)d->link);
    if (d->meta) {
        sky_objmeta_free((struct sky_objmeta *)d->meta);
        free((struct sky_objmeta *)d->meta);
    }
    *d = (struct sky_dirent){ 0 };
}
