/*
 * objstore_dirs.c - the object-store core's namespace operations:
 * remove, mkdir (a "dir/" marker, or blobfuse2's named marker; asked
 * first unless the caller takes one already there as made), rmdir
 * (with another tool's "dir" object), symlinks and special files as small
 * objects, readlink, and rename: the rules (ENOTDIR, EISDIR, an empty
 * target directory replaced, ENOTEMPTY, EINVAL into itself, EXDEV for
 * containers), a file as copy + delete, a directory as every key under it
 * copied OBJSTORE_THREADS at a time, then deleted in batches.
 *
 * Called only through the driver table (objstore.h).
 */
#include "objstore_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"

static int delete_key(struct objstore *o, const char *container, const char *key,
                      const char *show, struct sky_err *e)
{
    int rc = o->proto->remove(o->p, container, key, show, e);
    os_dirs_forget(o, container, key);
    return rc;
}

int objstore_remove(void *ctx, const char *path, struct sky_err *e)
{
    struct objstore *o = ctx;
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    rc = *l.key ? delete_key(o, l.container, l.key, show, e)
                : OS_FAIL(o, e, EISDIR, "DELETE %s: is a %s", show, o->proto->container_key);
    if (rc == 0)
        os_links_drop(o, l.container, l.key);
    os_loc_free(&l);
    return rc;
}

/* The directory marker with directory metadata. */
static int put_marker(struct objstore *o, const struct os_loc *l, const struct sky_attr *attr,
                      unsigned which, const char *show, struct sky_err *e)
{
    const struct objstore_codec *c = o->codec;
    bool named = (c->flags & OBJSTORE_CODEC_NAMED_MARKER) && c->folder_flag;
    char *mkey;
    if (asprintf(&mkey, named ? "%s" : "%s/", l->key) < 0)
        return os_oom(e);
    struct sky_attr a = attr ? *attr : (struct sky_attr){0};
    if (!(which & SKY_HAS_MTIME)) {
        a.mtime_ns = os_now_ns();
        which |= SKY_HAS_MTIME;
    }
    struct http_headers meta = {0};
    int rc = os_meta_posix(o, &meta, SKY_DIR, &a, which);
    if (rc == 0 && named)
        rc = http_headers_set(&meta, c->folder_flag, "true");
    if (rc < 0) {
        http_headers_free(&meta);
        free(mkey);
        return os_oom(e);
    }
    struct objstore_new nw = { c->marker_type ? c->marker_type : "application/octet-stream",
                               &meta, NULL, NULL, false };
    rc = o->proto->put(o->p, l->container, mkey, "", -1, 0, &nw, NULL, show, e);
    os_dirs_forget(o, l->container, mkey);
    http_headers_free(&meta);
    free(mkey);
    return rc;
}

int objstore_mkdir(void *ctx, const char *path, const struct sky_attr *attr, struct sky_err *e)
{
    struct objstore *o = ctx;
    /* a folder the caller takes as made when it is there already
     * (SKY_EXPECT_ANY) is just put: its marker, no head and listing first */
    int rc = attr && (attr->expect & SKY_EXPECT_ANY) ? 0 : os_must_be_free(o, path, "mkdir", e);
    if (rc)
        return rc;
    struct os_loc l;
    rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    if (!*l.key)
        rc = o->proto->container_create ? o->proto->container_create(o->p, l.container, e)
                                        : OS_FAIL(o, e, EPERM, "mkdir %s: %ss cannot be made "
                                                  "here", show, o->proto->container_key);
    else
        rc = put_marker(o, &l, attr, attr ? attr->has : 0, show, e);
    os_loc_free(&l);
    return rc;
}

/* Is container/key itself another tool's directory object ("dir")? */
static bool is_dir_object(struct objstore *o, const char *container, const char *key,
                          const char *show)
{
    uint64_t rdev;
    return os_head_kind(o, container, key, show, &rdev) == SKY_DIR;
}

int objstore_rmdir(void *ctx, const char *path, struct sky_err *e)
{
    struct objstore *o = ctx;
    if (!*path)
        return OS_FAIL(o, e, EBUSY, "%s", "cannot remove the cloud's root");
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    if (!*l.key) {
        rc = o->proto->container_remove ? o->proto->container_remove(o->p, l.container, e)
                                        : OS_FAIL(o, e, EPERM, "rmdir %s: %ss cannot be "
                                                  "removed here", show,
                                                  o->proto->container_key);
        os_loc_free(&l);
        return rc;
    }
    bool any, marker, others;
    rc = os_probe_dir(o, &l, 2, &any, &marker, &others, show, e);
    bool dir_object = rc == 0 && !others && is_dir_object(o, l.container, l.key, show);
    if (rc == 0 && others)
        rc = OS_FAIL(o, e, ENOTEMPTY, "rmdir %s: directory not empty", show);
    else if (rc == 0 && !any && !dir_object)
        rc = OS_FAIL(o, e, ENOENT, "rmdir %s: no such directory", show);
    else if (rc == 0) {
        char *mkey;
        if (asprintf(&mkey, "%s/", l.key) < 0) {
            rc = os_oom(e);
        } else {
            rc = any ? delete_key(o, l.container, mkey, show, e) : 0;
            free(mkey);
        }
        if (rc == 0 && dir_object)
            rc = delete_key(o, l.container, l.key, show, e);
        if (rc == 0 && dir_object)
            os_links_drop(o, l.container, l.key);
    }
    os_loc_free(&l);
    return rc;
}

int objstore_symlink(void *ctx, const char *path, const char *target,
                     const struct sky_attr *attr, struct sky_err *e)
{
    struct objstore *o = ctx;
    int rc = os_must_be_free(o, path, "symlink", e);
    if (rc)
        return rc;
    struct os_loc l;
    rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    struct sky_attr a = attr ? *attr : (struct sky_attr){0};
    unsigned which = a.has & ~SKY_HAS_MODE;   /* links are always 0777 */
    if (!(which & SKY_HAS_MTIME)) {
        a.mtime_ns = os_now_ns();
        which |= SKY_HAS_MTIME;
    }
    struct http_headers meta = {0};
    if (os_meta_posix(o, &meta, SKY_LINK, &a, which) < 0) {
        http_headers_free(&meta);
        os_loc_free(&l);
        return os_oom(e);
    }
    struct objstore_new nw = { "application/octet-stream", &meta, NULL, NULL, false };
    char etag[SKY_ETAG_MAX] = "";
    rc = *l.key ? o->proto->put(o->p, l.container, l.key, target, -1, strlen(target), &nw,
                                etag, show, e)
                : OS_FAIL(o, e, EPERM, "symlink %s: a %s cannot be a link", show,
                          o->proto->container_key);
    if (rc == 0)
        os_typed_put(o, l.container, l.key, etag, SKY_LINK, 0, target);
    http_headers_free(&meta);
    os_loc_free(&l);
    return rc;
}

/* A FIFO, socket or device: an empty object whose mode has the type bits
 * (and rdev a device's number), as s3fs makes them. */
int objstore_mknod(void *ctx, const char *path, const struct sky_attr *attr,
                   struct sky_attr *out, struct sky_err *e)
{
    struct objstore *o = ctx;
    int rc = os_must_be_free(o, path, "mknod", e);
    if (rc)
        return rc;
    struct os_loc l;
    rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    struct sky_attr a = *attr;
    if (!(a.has & SKY_HAS_MTIME)) {
        a.mtime_ns = os_now_ns();
        a.has |= SKY_HAS_MTIME;
    }
    struct http_headers meta = {0};
    rc = os_meta_posix(o, &meta, a.kind, &a, a.has);
    if (rc == 0 && (a.kind == SKY_CHR || a.kind == SKY_BLK)) {
        char num[32];
        snprintf(num, sizeof num, "%llu", (unsigned long long)a.rdev);
        rc = http_headers_set(&meta, "rdev", num) < 0 ? -ENOMEM : 0;
    }
    if (rc < 0) {
        http_headers_free(&meta);
        os_loc_free(&l);
        return os_oom(e);
    }
    struct objstore_new nw = { "application/octet-stream", &meta, NULL, NULL, false };
    char etag[SKY_ETAG_MAX] = "";
    rc = *l.key ? o->proto->put(o->p, l.container, l.key, "", -1, 0, &nw, etag, show, e)
                : OS_FAIL(o, e, EPERM, "mknod %s: a %s cannot be a special file", show,
                          o->proto->container_key);
    if (rc == 0) {
        os_typed_put(o, l.container, l.key, etag, a.kind, a.rdev, NULL);
        *out = a;
        out->size = 0;
        snprintf(out->etag, sizeof out->etag, "%s", etag);
    }
    http_headers_free(&meta);
    os_loc_free(&l);
    return rc;
}

/* The first bytes of a link object, gathered. */
struct link_body {
    char buf[OS_LINK_MAX + 1];
    size_t len;
};

static int link_sink(void *arg, uint64_t pos, const void *data, size_t n)
{
    struct link_body *b = arg;
    if (pos == 0)
        b->len = 0;     /* a retried transfer starts again */
    size_t room = OS_LINK_MAX - b->len;
    size_t take = n < room ? n : room;
    memcpy(b->buf + b->len, data, take);
    b->len += take;
    return 0;
}

int objstore_readlink(void *ctx, const char *path, char *buf, size_t size, struct sky_err *e)
{
    struct objstore *o = ctx;
    if (size == 0)
        return OS_FAIL(o, e, ERANGE, "readlink %s: no room", path);
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    struct link_body *b = calloc(1, sizeof *b);
    char etag[SKY_ETAG_MAX] = "";
    rc = b ? o->proto->get(o->p, l.container, l.key, NULL, 0, OS_LINK_MAX, link_sink, b, etag,
                           show, e)
           : os_oom(e);
    if (rc == 0) {
        size_t n = b->len < size - 1 ? b->len : size - 1;
        if (n)
            memcpy(buf, b->buf, n);
        buf[n] = '\0';
        b->buf[b->len] = '\0';
        if (b->len < OS_LINK_MAX && strlen(b->buf) == b->len)
            os_typed_put(o, l.container, l.key, etag, SKY_LINK, 0, b->buf);
    }
    free(b);
    os_loc_free(&l);
    return rc;
}

/* ------------------------------------------------------------------ */
/* rename                                                              */
/* ------------------------------------------------------------------ */

/* Every key under a prefix (flat), collected. */
struct key_list {
    char **keys;
    uint64_t *sizes;
    char (*etags)[SKY_ETAG_MAX];
    size_t n, cap;
};

static int on_collect(void *arg, const struct objstore_item *it)
{
    struct key_list *k = arg;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        char **keys = realloc(k->keys, cap * sizeof *keys);
        if (!keys)
            return -ENOMEM;
        k->keys = keys;
        uint64_t *sizes = realloc(k->sizes, cap * sizeof *sizes);
        if (!sizes)
            return -ENOMEM;
        k->sizes = sizes;
        char (*etags)[SKY_ETAG_MAX] = realloc(k->etags, cap * sizeof *etags);
        if (!etags)
            return -ENOMEM;
        k->etags = etags;
        k->cap = cap;
    }
    if (!(k->keys[k->n] = strdup(it->key)))
        return -ENOMEM;
    memcpy(k->etags[k->n], it->etag, SKY_ETAG_MAX);
    k->sizes[k->n++] = it->size;
    return 0;
}

static void key_list_free(struct key_list *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->keys[i]);
    free(k->keys);
    free(k->sizes);
    free(k->etags);
}

/* Parallel copies of a key list from one prefix to another. */
struct tree_copy {
    struct objstore *o;
    const char *from_container, *to_container;
    size_t from_len;            /* strlen of the source prefix */
    const char *to_prefix;
    struct key_list *keys;
    char **made;                /* made[i]: key i's copy, once made (else NULL) */
    const char *show;
};

static int copy_job(void *arg, size_t i, struct sky_err *e)
{
    struct tree_copy *t = arg;
    struct objstore *o = t->o;
    char *dkey;
    if (asprintf(&dkey, "%s%s", t->to_prefix, t->keys->keys[i] + t->from_len) < 0)
        return os_oom(e);
    int rc = o->proto->copy(o->p, t->from_container, t->keys->keys[i], t->to_container, dkey,
                            t->keys->sizes[i], NULL, NULL, NULL, t->show, e);
    os_dirs_forget(o, t->to_container, dkey);
    if (rc == 0)
        os_links_move(o, t->from_container, t->keys->keys[i], t->to_container, dkey,
                      t->keys->etags[i]);
    if (rc == 0)
        t->made[i] = dkey;      /* each job its own slot: no lock */
    else
        free(dkey);
    return rc;
}

/* Delete keys[0..n): in batches where the protocol has them. */
static int delete_keys(struct objstore *o, const char *container, char **keys, size_t n,
                       const char *show, struct sky_err *e)
{
    const struct objstore_proto *pr = o->proto;
    int rc = 0;
    if (pr->remove_batch && pr->batch_max) {
        for (size_t i = 0; rc == 0 && i < n; i += pr->batch_max) {
            size_t k = n - i < pr->batch_max ? n - i : pr->batch_max;
            rc = pr->remove_batch(o->p, container, keys + i, k, show, e);
        }
        for (size_t i = 0; i < n; i++)
            os_dirs_forget(o, container, keys[i]);
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = delete_key(o, container, keys[i], show, e);
        if (rc == -ENOENT) {
            sky_err_clear(e);
            rc = 0;
        }
    }
    return rc;
}

/* A directory's rename failed while copying (the cloud refused or stopped
 * answering part way): the copies it made are deleted again, so that the
 * cloud holds the tree under its old name alone, as before the rename,
 * and a second try is not refused for a target that is not empty.  Best
 * effort: what cannot be deleted now is named in the log. */
static void undo_copies(struct objstore *o, const char *container, char **made, size_t n,
                        const char *show)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (made[i])
            made[k++] = made[i];
    for (size_t i = k; i < n; i++)
        made[i] = NULL;
    if (!k)
        return;
    struct sky_err e = { 0 };
    int rc = delete_keys(o, container, made, k, show, &e);
    if (rc < 0)
        LOG_WARN("%s '%s': rename %s failed part way, and the %zu copies it made could not "
                 "all be deleted again (%s): they stay beside the old tree", o->proto->type,
                 o->name, show, k, e.msg);
    else
        LOG_INFO("%s '%s': rename %s failed part way: the %zu copies it made were deleted "
                 "again", o->proto->type, o->name, show, k);
}

static int rename_dir(struct objstore *o, const struct os_loc *from, const struct os_loc *to,
                      const char *show, struct sky_err *e)
{
    char *fp = NULL, *tp = NULL;
    if (asprintf(&fp, "%s/", from->key) < 0 || asprintf(&tp, "%s/", to->key) < 0) {
        free(fp);
        return os_oom(e);
    }
    struct key_list keys = {0};
    int rc = os_list_keys(o, from->container, fp, false, 0, on_collect, &keys, show, e);
    if (rc == -ENOMEM)
        os_oom(e);
    char **made = rc == 0 ? calloc(keys.n ? keys.n : 1, sizeof *made) : NULL;
    if (rc == 0 && !made)
        rc = os_oom(e);
    if (rc == 0) {
        struct tree_copy t = { .o = o, .from_container = from->container,
                               .to_container = to->container, .from_len = strlen(fp),
                               .to_prefix = tp, .keys = &keys, .made = made, .show = show };
        rc = parallel_for(keys.n, OBJSTORE_THREADS, copy_job, &t, e);
        if (rc < 0)
            undo_copies(o, to->container, made, keys.n, show);
    }
    if (rc == 0)
        rc = delete_keys(o, from->container, keys.keys, keys.n, show, e);
    for (size_t i = 0; made && i < keys.n; i++)
        free(made[i]);
    free(made);
    key_list_free(&keys);
    free(fp);
    free(tp);
    return rc;
}

/* A directory's move: every key under it, and another tool's "dir"
 * object, which goes along in the same form. */
static int move_dir(struct objstore *o, const struct os_loc *from, const struct os_loc *to,
                    const char *show, struct sky_err *e)
{
    bool dir_object = is_dir_object(o, from->container, from->key, show);
    int rc = rename_dir(o, from, to, show, e);
    if (rc == 0 && dir_object)
        rc = o->proto->copy(o->p, from->container, from->key, to->container, to->key, 0, NULL,
                            NULL, NULL, show, e);
    if (rc == 0 && dir_object)
        rc = delete_key(o, from->container, from->key, show, e);
    return rc;
}

/* Where a rename's two paths are, and how to name the source: 0, or a
 * failure (EXDEV for a container: those are not renamed).  On success the
 * caller frees both. */
static int locate_pair(struct objstore *o, const char *from, const char *to, struct os_loc *lf,
                       struct os_loc *lt, char show[OS_SHOW_MAX], struct sky_err *e)
{
    int rc = os_locate(o, from, lf, e);
    if (rc < 0)
        return rc;
    if ((rc = os_locate(o, to, lt, e)) < 0) {
        os_loc_free(lf);
        return rc;
    }
    os_show(o, lf, show, OS_SHOW_MAX);
    if (*lf->key && *lt->key)
        return 0;
    rc = OS_FAIL(o, e, EXDEV, "rename %s: %ss cannot be renamed", show, o->proto->container_key);
    os_loc_free(lf);
    os_loc_free(lt);
    return rc;
}

/* Move one object (a file, a symlink, a special file) of attributes fa:
 * copied to `to` while it is still that version, then deleted. */
static int move_object(struct objstore *o, const struct os_loc *lf, const struct os_loc *lt,
                       const struct sky_attr *fa, const char *show, struct sky_err *e)
{
    int rc = o->proto->copy(o->p, lf->container, lf->key, lt->container, lt->key, fa->size,
                            fa->etag, NULL, NULL, show, e);
    if (rc == 0)
        rc = delete_key(o, lf->container, lf->key, show, e);
    if (rc == 0)
        os_links_move(o, lf->container, lf->key, lt->container, lt->key, fa->etag);
    return rc;
}

int objstore_rename_finish(void *ctx, const char *from, const char *to, struct sky_err *e)
{
    struct objstore *o = ctx;
    struct sky_attr fa;
    int rc = objstore_stat(ctx, from, &fa, e);
    if (rc == -ENOENT) {
        sky_err_clear(e);
        return 0;                       /* nothing left under the old name */
    }
    struct os_loc lf, lt;
    char show[OS_SHOW_MAX];
    if (rc < 0 || (rc = locate_pair(o, from, to, &lf, &lt, show, e)) < 0)
        return rc;
    rc = fa.kind == SKY_DIR ? move_dir(o, &lf, &lt, show, e)
                            : move_object(o, &lf, &lt, &fa, show, e);
    os_loc_free(&lf);
    os_loc_free(&lt);
    return rc;
}

/* What a rename needs to know first, asked at once: what `from` is, and
 * what holds `to` (most often nothing: a temporary file renamed to its
 * final name, so the object and folder questions go out together). */
struct rename_stats {
    struct objstore *o;
    const char *from, *to;
    struct sky_attr fa, ta;
    int from_rc, to_rc;
    struct sky_err from_err, to_err;
};

static int rename_stat_job(void *arg, size_t i, struct sky_err *e)
{
    (void)e;
    struct rename_stats *st = arg;
    if (i == 0)
        st->from_rc = objstore_stat(st->o, st->from, &st->fa, &st->from_err);
    else
        st->to_rc = objstore_stat_hinted(st->o, st->to, SKY_STAT_NEW, &st->ta, &st->to_err);
    return 0;
}

int objstore_rename(void *ctx, const char *from, const char *to, struct sky_err *e)
{
    struct objstore *o = ctx;
    size_t flen = strlen(from);
    if (!*from || !*to)
        return OS_FAIL(o, e, EBUSY, "%s", "cannot rename the cloud's root");
    if (strncmp(to, from, flen) == 0 && to[flen] == '/')
        return OS_FAIL(o, e, EINVAL, "rename %s into itself", from);
    struct rename_stats st = { .o = o, .from = from, .to = to };
    int rc = parallel_for(2, 2, rename_stat_job, &st, e);
    if (rc == 0 && st.from_rc < 0 && e)
        *e = st.from_err;
    if (rc == 0)
        rc = st.from_rc;
    if (rc < 0)
        return rc;
    struct sky_attr fa = st.fa, ta = st.ta;
    int trc = st.to_rc;
    if (trc < 0 && trc != -ENOENT) {
        if (e)
            *e = st.to_err;
        return trc;
    }
    struct os_loc lf, lt;
    char show[OS_SHOW_MAX];
    if ((rc = locate_pair(o, from, to, &lf, &lt, show, e)) < 0)
        return rc;
    if (trc == 0 && fa.kind == SKY_DIR && ta.kind != SKY_DIR) {
        rc = OS_FAIL(o, e, ENOTDIR, "rename %s: target is not a directory", to);
    } else if (trc == 0 && fa.kind != SKY_DIR && ta.kind == SKY_DIR) {
        rc = OS_FAIL(o, e, EISDIR, "rename %s: target is a directory", to);
    } else if (trc == 0 && ta.kind == SKY_DIR && (rc = objstore_rmdir(ctx, to, e)) < 0) {
        /* rmdir refused: not empty (or failed) */
    } else if (fa.kind == SKY_DIR) {
        rc = move_dir(o, &lf, &lt, show, e);
    } else {
        rc = move_object(o, &lf, &lt, &fa, show, e);
    }
    os_loc_free(&lf);
    os_loc_free(&lt);
    return rc;
}
