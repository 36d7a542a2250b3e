/*
 * objstore.c - the object-store core (objstore.h): open and close, paths,
 * the memory of what objects are (symlinks and special files, by key and
 * ETag), listings, stat, read and get_meta.  The rest of the driver is in
 * objstore_dirs.c, objstore_meta.c and objstore_upload.c
 * (objstore_int.h).
 *
 * Listings: every page of the protocol's list_page with delimiter "/".
 * When listing items carry no metadata (S3, GCS, Swift), nothing tells a
 * symlink from a small file, so every listed object of 1 to 4096 bytes
 * whose version is not known yet is asked (one head, eight at a time)
 * before the listing is answered (backends/linkprobe.h); the answers are
 * remembered per object version for the life of the mount: links with
 * their targets here, the other files as fingerprints in linkprobe.
 * Before asking, the caller's metadata cache is consulted
 * (set_known_kinds).  Empty objects may be special files or another
 * tool's directory object: their head says, once per version.  Folders
 * listed as prefixes (no metadata) are asked the same way: one head of
 * their marker "dir/", once per folder, remembered in dirmemo (its mode,
 * owner and times; dirmemo.h).
 */
#include "objstore_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../lib/config.h"
#include "names.h"
#include "paging.h"
#include "parallel.h"

int os_oom(struct sky_err *e)
{
    return sky_fail(e, ENOMEM, "out of memory");
}

int64_t os_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void objstore_head_free(struct objstore_head *h)
{
    if (!h)
        return;
    free(h->content_type);
    free(h->storage_class);
    http_headers_free(&h->meta);
    http_headers_free(&h->keep);
    memset(h, 0, sizeof *h);
}

void objstore_etag_copy(char *dst, const char *src)
{
    /* an empty ETag (RGW 16's <ETag></ETag>, or "") is none */
    if (!src || !*src || strcmp(src, "\"\"") == 0) {
        dst[0] = '\0';
        return;
    }
    if (src[0] == '"')
        snprintf(dst, SKY_ETAG_MAX, "%s", src);
    else
        snprintf(dst, SKY_ETAG_MAX, "\"%s\"", src);
}

/* ------------------------------------------------------------------ */
/* The memory of links and special files                               */
/* ------------------------------------------------------------------ */

static unsigned link_hash(const char *container, const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = container; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ '/') * 16777619u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % OS_LINK_BUCKETS;
}

static bool link_is(const struct os_link *l, const char *container, const char *key)
{
    size_t bl = strlen(container);
    return strncmp(l->id, container, bl) == 0 && l->id[bl] == '/' &&
           strcmp(l->id + bl + 1, key) == 0;
}

/* Remember that container/key with `etag` is of `kind` (a link or a
 * special file; target may be NULL: an existing target for the same etag
 * is kept). */
void os_typed_put(struct objstore *o, const char *container, const char *key,
                  const char *etag, enum sky_kind kind, uint64_t rdev, const char *target)
{
    if (!etag || !*etag)
        return;
    unsigned h = link_hash(container, key);
    pthread_mutex_lock(&o->links_lock);
    struct os_link *l = o->links[h];
    while (l && !link_is(l, container, key))
        l = l->next;
    if (!l && o->nlinks < OS_LINKS_MAX && (l = calloc(1, sizeof *l))) {
        if (asprintf(&l->id, "%s/%s", container, key) < 0) {
            free(l);
            l = NULL;
        } else {
            l->next = o->links[h];
            o->links[h] = l;
            o->nlinks++;
        }
    }
    if (l) {
        if (strcmp(l->etag, etag) != 0 || target) {
            free(l->target);
            l->target = target ? strdup(target) : NULL;
        }
        snprintf(l->etag, sizeof l->etag, "%s", etag);
        l->kind = kind;
        l->rdev = rdev;
    }
    pthread_mutex_unlock(&o->links_lock);
}

void os_links_drop(struct objstore *o, const char *container, const char *key)
{
    unsigned h = link_hash(container, key);
    pthread_mutex_lock(&o->links_lock);
    for (struct os_link **p = &o->links[h]; *p; p = &(*p)->next) {
        if (link_is(*p, container, key)) {
            struct os_link *l = *p;
            *p = l->next;
            free(l->id);
            free(l->target);
            free(l);
            o->nlinks--;
            break;
        }
    }
    pthread_mutex_unlock(&o->links_lock);
}

/* Is container/key known to be a link or special file with this etag?
 * Its kind into *kind, its device number into *rdev; *target gets a copy
 * of a link's target when known (else NULL). */
static bool typed_get(struct objstore *o, const char *container, const char *key,
                      const char *etag, enum sky_kind *kind, uint64_t *rdev, char **target)
{
    bool found = false;
    *target = NULL;
    unsigned h = link_hash(container, key);
    pthread_mutex_lock(&o->links_lock);
    for (struct os_link *l = o->links[h]; l; l = l->next) {
        if (link_is(l, container, key)) {
            found = strcmp(l->etag, etag) == 0;
            if (found && l->target)
                *target = strdup(l->target);
            *kind = l->kind;
            *rdev = l->rdev;
            break;
        }
    }
    pthread_mutex_unlock(&o->links_lock);
    return found;
}

/* The path (relative to the cloud root) of object container/key, or NULL
 * when the key is outside the cloud's prefix or memory runs out. */
static char *cloud_path_of(const struct objstore *o, const char *container, const char *key)
{
    char *path = NULL;
    if (!o->container) {
        if (asprintf(&path, "%s/%s", container, key) < 0)
            path = NULL;
        return path;
    }
    size_t plen = strlen(o->prefix);
    if (plen && (strncmp(key, o->prefix, plen) != 0 || key[plen] != '/'))
        return NULL;
    return strdup(plen ? key + plen + 1 : key);
}

/* Is version `etag` of listed object container/key (of `size` bytes)
 * known: to this process (typed_get), or else, when the listing would
 * otherwise ask the cloud about it (an empty object, or one that may be a
 * symlink and is not remembered as a file), to the caller's metadata
 * cache (set_known_kinds), whose answer is then remembered here too? */
static bool kind_known(struct objstore *o, const char *container, const char *key,
                       const char *etag, uint64_t size, enum sky_kind *kind, uint64_t *rdev,
                       char **target)
{
    if (typed_get(o, container, key, etag, kind, rdev, target))
        return true;
    bool would_ask = size == 0 || (o->probe && size <= LINKPROBE_SIZE_MAX &&
                                   !linkprobe_known(o->probe, container, key, etag));
    if (!o->known_fn || !*etag || !would_ask)
        return false;
    char *path = cloud_path_of(o, container, key);
    char link[LINKPROBE_SIZE_MAX + 1] = "";
    bool known = path && o->known_fn(o->known_arg, path, etag, kind, rdev, link, sizeof link);
    free(path);
    if (!known || *kind == SKY_DIR)
        return false;
    if (*kind == SKY_FILE && size > 0) {
        if (o->probe)
            linkprobe_remember(o->probe, container, key, etag);
    } else {
        os_typed_put(o, container, key, etag, *kind, *rdev, link[0] ? link : NULL);
        if (*kind == SKY_LINK && link[0])
            *target = strdup(link);
    }
    return true;
}

void objstore_set_known_kinds(void *ctx, sky_known_kind_fn fn, void *arg)
{
    struct objstore *o = ctx;
    o->known_fn = fn;
    o->known_arg = arg;
}

void objstore_set_known_dirs(void *ctx, sky_known_dir_fn fn, void *arg)
{
    struct objstore *o = ctx;
    o->known_dir_fn = fn;
    o->known_dir_arg = arg;
}

/* Remember what stat or get_meta found container/key to be. */
void os_typed_note(struct objstore *o, const char *container, const char *key,
                   const struct sky_attr *a)
{
    if (a->kind == SKY_LINK || sky_kind_special((int)a->kind))
        os_typed_put(o, container, key, a->etag, a->kind, a->rdev, NULL);
    else
        os_links_drop(o, container, key);
}

/* After a copy of an object with `etag` (copies keep the ETag of simple
 * objects): carry its link or special status over. */
void os_links_move(struct objstore *o, const char *fcontainer, const char *fkey,
                   const char *tcontainer, const char *tkey, const char *etag)
{
    char *target;
    enum sky_kind kind;
    uint64_t rdev;
    if (typed_get(o, fcontainer, fkey, etag, &kind, &rdev, &target)) {
        os_typed_put(o, tcontainer, tkey, etag, kind, rdev, target);
        free(target);
        os_links_drop(o, fcontainer, fkey);
    }
}

static void links_free(struct objstore *o)
{
    for (int i = 0; i < OS_LINK_BUCKETS; i++) {
        while (o->links[i]) {
            struct os_link *l = o->links[i];
            o->links[i] = l->next;
            free(l->id);
            free(l->target);
            free(l);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Paths                                                               */
/* ------------------------------------------------------------------ */

static int join_key(const char *a, const char *b, char **out)
{
    int rc = *a && *b ? asprintf(out, "%s/%s", a, b) : asprintf(out, "%s", *a ? a : b);
    if (rc < 0) {
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

int os_locate(struct objstore *o, const char *path, struct os_loc *l, struct sky_err *e)
{
    memset(l, 0, sizeof *l);
    const char *rest = path;
    if (o->container) {
        snprintf(l->container, sizeof l->container, "%s", o->container);
    } else {
        size_t n = strcspn(path, "/");
        if (n >= sizeof l->container)
            return OS_FAIL(o, e, ENAMETOOLONG, "%.*s...: %s name too long", 64, path,
                           o->proto->container_key);
        memcpy(l->container, path, n);
        l->container[n] = '\0';
        rest = path[n] ? path + n + 1 : "";
    }
    if (join_key(o->container ? o->prefix : "", rest, &l->key) < 0)
        return os_oom(e);
    return 0;
}

void os_loc_free(struct os_loc *l)
{
    free(l->key);
    l->key = NULL;
}

const char *os_show(const struct objstore *o, const struct os_loc *l, char *buf, size_t cap)
{
    if (o->container)
        snprintf(buf, cap, "%s", *l->key ? l->key : "/");
    else
        snprintf(buf, cap, "%s%s%s", l->container, *l->key ? "/" : "", l->key);
    return buf;
}

/* ------------------------------------------------------------------ */
/* Listing                                                             */
/* ------------------------------------------------------------------ */

/* Passes each listed item on, telling the listing's guard its name. */
struct guarded_items {
    struct list_guard guard;
    objstore_item_fn fn;
    void *arg;
    size_t page_bytes;      /* about what the page's items took to send */
};

static int guarded_item(void *arg, const struct objstore_item *it)
{
    struct guarded_items *g = arg;
    list_guard_item(&g->guard, it->key);
    g->page_bytes += strlen(it->key) + 64;
    return g->fn(g->arg, it);
}

/* Every page of `prefix` in `container` unless max_keys > 0 (then one
 * page of at most max_keys).  A server that repeats its token or sends
 * pages without progress stops the listing (backends/paging.h). */
int os_list_keys(struct objstore *o, const char *container, const char *prefix,
                 bool delimited, int max_keys, objstore_item_fn fn, void *arg,
                 const char *show, struct sky_err *e)
{
    char *token = NULL;
    struct guarded_items g = { LIST_GUARD_INIT, fn, arg, 0 };
    int rc = 0;
    do {
        char *next = NULL;
        g.page_bytes = 0;
        rc = o->proto->list_page(o->p, container, prefix, delimited, max_keys, token,
                                 guarded_item, &g, &next, show, e);
        free(token);
        token = next;
        /* the guard counts a page's bytes by its items (the answer's
         * size is the protocol's business) */
        if (rc == 0 && max_keys <= 0 && list_guard_page(&g.guard, g.page_bytes, token, e) < 0)
            rc = sky_err_prefix(e, "%s '%s': LIST %s", o->proto->type, o->name, show);
    } while (rc == 0 && token && max_keys <= 0);
    free(token);
    list_guard_free(&g.guard);
    return rc;
}

static bool valid_name(const char *name, size_t len)
{
    return sky_name_problem(name, len) == NULL;
}

/* A listed size a file can have (protocols mark the others UINT64_MAX). */
static bool listable_size(const struct sky_attr *a)
{
    return a->kind == SKY_DIR || a->size <= SKY_SIZE_MAX;
}

/* The warning for a listed key that is skipped: why, and the key in a
 * printable form. */
static void warn_skipped(const struct objstore *o, const char *container, const char *key,
                         const char *name, size_t len)
{
    char show[600];
    sky_name_show(key, strlen(key), show, sizeof show);
    const char *why = sky_name_problem(name, len);
    LOG_WARN("%s '%s': skipping key \"%s\" in %s %s: %s%s%s", o->proto->type, o->name, show,
             o->proto->container_key, container,
             why ? "not a valid file name (its name " : "its size is not a file size",
             why ? why : "", why ? ")" : "");
}

int objstore_child_name(const char *key, size_t plen, int is_prefix, char *out)
{
    const char *name = key + plen;
    size_t len = strlen(name);
    if (is_prefix && len > 0 && name[len - 1] == '/')
        len--;
    else if (is_prefix)
        return -1;
    if (!is_prefix && len == 0)
        return 0;
    if (!valid_name(name, len))
        return -1;
    memcpy(out, name, len);
    out[len] = '\0';
    return 1;
}

/* Is content type `type` one of the codec's directory types? */
static bool is_dir_type(const struct objstore_codec *c, const char *type)
{
    for (size_t i = 0; type && c->dir_types && c->dir_types[i]; i++) {
        size_t n = strlen(c->dir_types[i]);
        if (strncasecmp(type, c->dir_types[i], n) == 0 &&
            (type[n] == '\0' || type[n] == ';' || type[n] == ' '))
            return true;
    }
    return false;
}

/* The attributes of a listed item: from its metadata when the listing
 * carries it, else size, Last-Modified and ETag (a file until asked, or a
 * directory object when its listed content type says so). */
static void item_attr(const struct objstore *o, const struct objstore_item *it,
                      struct sky_attr *a)
{
    memset(a, 0, sizeof *a);
    if (it->is_prefix) {
        a->kind = SKY_DIR;
        return;
    }
    if (it->meta) {
        struct objstore_head h = { .size = it->size, .last_modified_ns = it->last_modified_ns,
                                   .content_type = (char *)it->content_type };
        memcpy(h.etag, it->etag, sizeof h.etag);
        h.meta = *it->meta;     /* borrowed, never freed here */
        os_attr_from_head(o, &h, a);
        if (a->kind == SKY_FILE || a->kind == SKY_LINK)
            a->size = it->size; /* UINT64_MAX stays: skipped */
        return;
    }
    a->kind = it->size == 0 && is_dir_type(o->codec, it->content_type) ? SKY_DIR : SKY_FILE;
    a->size = it->size;
    /* Last-Modified stands in for the mtime but is not claimed as one
     * (SKY_HAS_MTIME stays clear): the object may hold its own mtime in
     * its metadata, which the listing does not carry, and the cache keeps
     * the mtime it knows while the ETag stays the same. */
    a->mtime_ns = it->last_modified_ns;
    a->modified_ns = it->last_modified_ns;
    a->has = 0;
    memcpy(a->etag, it->etag, sizeof a->etag);
}

/* The listing's cloud metadata of an item (borrowed strings). */
struct item_meta {
    struct sky_objmeta om;
    bool any;
};

static int item_objmeta(const struct objstore *o, const struct objstore_item *it,
                        struct item_meta *m)
{
    memset(m, 0, sizeof *m);
    if (it->is_prefix)
        return 0;
    if (it->meta) {
        struct objstore_head h = { .content_type = (char *)it->content_type,
                                   .storage_class = (char *)it->storage_class };
        h.meta = *it->meta;
        m->any = true;
        return os_objmeta_from_head(o, &h, &m->om);
    }
    if (it->storage_class) {
        m->om.storage_class = strdup(it->storage_class);
        m->any = true;
        if (!m->om.storage_class)
            return -ENOMEM;
    }
    return 0;
}

static int head_kind_ask(struct objstore *o, const char *container, const char *key,
                         const char *etag, struct sky_dirent *ent)
{
    ent->attr.kind = os_head_kind(o, container, key, key, &ent->attr.rdev);
    os_typed_put(o, container, key, etag, ent->attr.kind, ent->attr.rdev, NULL);
    return 0;
}

struct dir_lister {
    struct objstore *o;
    const char *container;
    const char *prefix;     /* "dir/" or "" */
    size_t plen;
    sky_list_cb cb;
    void *arg;
    bool found;             /* anything at all under the prefix */
    struct linkprobe_batch batch;   /* files that may be symlinks wait here */
    struct dirmemo_batch dirs;      /* folders whose markers are asked wait here */
    bool own_marker;        /* the directory's own marker was listed */
    char own_etag[SKY_ETAG_MAX];
    int64_t own_modified_ns;
    /* the last directory object listed ("dir" with metadata, Azure's
     * named marker): the prefix "dir/" after it needs no question */
    char last_dir_object[SKY_NAME_MAX + 1];
};

/* Hand a listed entry on: through the link probe when it is a file that
 * may be a symlink, else to the callback. */
static int deliver(struct objstore *o, struct linkprobe_batch *batch, sky_list_cb cb, void *arg,
                   const char *key, const struct sky_dirent *ent)
{
    return ent->attr.kind == SKY_FILE && o->probe ? linkprobe_add(batch, key, ent)
                                                  : cb(arg, ent);
}

/* What an entry listed without metadata is, when that can be known
 * without asking or must be asked (empty objects). */
static void settle_kind(struct objstore *o, const char *container, const char *key,
                        struct sky_dirent *ent, char **target)
{
    enum sky_kind known;
    uint64_t rdev;
    if (kind_known(o, container, key, ent->attr.etag, ent->attr.size, &known, &rdev, target)) {
        ent->attr.kind = known;
        ent->attr.rdev = rdev;
        if (known == SKY_LINK) {
            ent->attr.mode = 0777;
            ent->attr.has |= SKY_HAS_MODE;
            ent->link = *target;
        }
    } else if (ent->attr.size == 0) {
        /* an empty object may be a special file or another tool's
         * directory object ("dir", no slash): its head says, once per
         * version (remembered by ETag, empty plain files too) */
        head_kind_ask(o, container, key, ent->attr.etag, ent);
    }
}

static int on_dir_item(void *arg, const struct objstore_item *it)
{
    struct dir_lister *d = arg;
    const char *key = it->key;
    if (strncmp(key, d->prefix, d->plen) != 0)
        return 0;
    d->found = true;
    char name[SKY_NAME_MAX + 1];
    int kind = objstore_child_name(key, d->plen, it->is_prefix, name);
    if (kind == 0) {    /* the directory's own marker */
        d->own_marker = true;
        snprintf(d->own_etag, sizeof d->own_etag, "%s", it->etag);
        d->own_modified_ns = it->last_modified_ns;
        return 0;
    }
    struct sky_attr a;
    item_attr(d->o, it, &a);
    if (kind < 0 || !listable_size(&a)) {
        size_t len = strlen(key + d->plen);
        warn_skipped(d->o, d->container, key, key + d->plen, len - (it->is_prefix && len));
        return 0;
    }
    struct item_meta im;
    if (item_objmeta(d->o, it, &im) < 0) {
        sky_objmeta_free(&im.om);
        return -ENOMEM;
    }
    struct sky_dirent ent = { .name = name, .attr = a, .link = NULL,
                              .meta = im.any ? &im.om : NULL };
    char *target = NULL;
    if (!it->is_prefix && a.kind == SKY_FILE && !it->meta)
        settle_kind(d->o, d->container, key, &ent, &target);
    if (ent.attr.kind == SKY_DIR) {
        ent.attr.size = 0;
        ent.attr.etag[0] = '\0';
    }
    if (!it->is_prefix && it->meta && ent.attr.kind == SKY_DIR)
        snprintf(d->last_dir_object, sizeof d->last_dir_object, "%s", name);
    bool ask = it->is_prefix && d->o->dirs && strcmp(name, d->last_dir_object) != 0;
    int rc = ask ? dirmemo_add(&d->dirs, key, &ent)
                 : deliver(d->o, &d->batch, d->cb, d->arg, key, &ent);
    free(target);
    sky_objmeta_free(&im.om);
    return rc;
}

/* linkprobe's question (linkprobe.h): what is `key` of `container`?  One
 * head; a symlink found is remembered with the other known links. */
struct probe_where {
    struct objstore *o;
    const char *container;
};

/* `key` as the messages name it: with its container on an account cloud. */
static void where_show(const struct probe_where *w, const char *key, char *buf, size_t cap)
{
    if (w->o->container)
        snprintf(buf, cap, "%s", key);
    else
        snprintf(buf, cap, "%s/%s", w->container, key);
}

static int probe_ask(void *arg, const char *key, struct sky_attr *out, struct sky_err *e)
{
    struct probe_where *w = arg;
    char show[OS_SHOW_MAX];
    where_show(w, key, show, sizeof show);
    struct objstore_head h;
    struct sky_err err = { 0 };
    int rc = w->o->proto->head(w->o->p, w->container, key, &h, show, &err);
    if (rc == 0) {
        os_attr_from_head(w->o, &h, out);
        os_typed_note(w->o, w->container, key, out);
        objstore_head_free(&h);
    } else if (rc == -EACCES) {
        memset(out, 0, sizeof *out);    /* unreadable: a file, asked again next time */
        out->kind = SKY_FILE;
        rc = 0;
    } else if (e && rc != -ENOENT) {
        *e = err;
    }
    return rc;
}

/* dirmemo's question (dirmemo.h): what does marker `key` of `container`
 * say of its folder?  One head. */
static int dirs_ask(void *arg, const char *key, struct sky_attr *out, char *etag,
                    int64_t *modified_ns, struct sky_err *e)
{
    struct probe_where *w = arg;
    char show[OS_SHOW_MAX];
    where_show(w, key, show, sizeof show);
    struct objstore_head h;
    struct sky_err err = { 0 };
    int rc = w->o->proto->head(w->o->p, w->container, key, &h, show, &err);
    if (rc == 0) {
        memcpy(etag, h.etag, SKY_ETAG_MAX);
        etag[SKY_ETAG_MAX - 1] = '\0';
        *modified_ns = h.last_modified_ns;
        os_marker_attr(w->o, &h, out);
        objstore_head_free(&h);
    } else if (rc == -EACCES) {
        os_dir_attr(out);       /* unreadable: the defaults, asked again next time */
        rc = 1;
    } else if (e && rc != -ENOENT) {
        *e = err;
    }
    return rc;
}

/* dirmemo's question to the caller's cache: what is known of the folder
 * of marker `key` ("a/b/")? */
static bool dirs_known(void *arg, const char *key, struct sky_attr *out)
{
    struct probe_where *w = arg;
    if (!w->o->known_dir_fn)
        return false;
    size_t len = strlen(key);
    char *mkey = strndup(key, len ? len - 1 : 0);
    char *path = mkey ? cloud_path_of(w->o, w->container, mkey) : NULL;
    bool known = path && w->o->known_dir_fn(w->o->known_dir_arg, path, out);
    free(path);
    free(mkey);
    return known;
}

void os_dirs_forget(struct objstore *o, const char *container, const char *key)
{
    if (o->dirs)
        dirmemo_forget(o->dirs, container, key);
}

enum sky_kind os_head_kind(struct objstore *o, const char *container, const char *key,
                           const char *show, uint64_t *rdev)
{
    struct objstore_head h;
    struct sky_err e = {0};
    enum sky_kind kind = SKY_FILE;
    *rdev = 0;
    if (o->proto->head(o->p, container, key, &h, show, &e) == 0) {
        struct sky_attr a;
        os_attr_from_head(o, &h, &a);
        kind = a.kind;
        *rdev = a.rdev;
        objstore_head_free(&h);
    }
    return kind;
}

static int list_containers(struct objstore *o, sky_list_cb cb, void *arg, struct sky_err *e)
{
    if (!o->proto->list_containers)
        return OS_FAIL(o, e, ENOTSUP, "LIST /: %s", "the account's containers cannot be listed");
    return o->proto->list_containers(o->p, cb, arg, e);
}

/* OBJSTORE_LIST_DEDUPE: a directory's entries gathered, to be sorted and
 * given once per name. */
struct gathered {
    struct sky_dirent ent;      /* a deep copy */
    int rank;                   /* which one of a name wins: directory object 3,
                                 * prefix 2, anything else 1 */
};

struct gather {
    struct gathered *v;
    size_t n, cap;
};

static int gather_entry(void *arg, const struct sky_dirent *ent)
{
    struct gather *g = arg;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        struct gathered *v = realloc(g->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        g->v = v;
        g->cap = cap;
    }
    struct gathered *it = &g->v[g->n];
    if (sky_dirent_copy(&it->ent, ent) < 0)
        return -ENOMEM;
    /* a prefix has no etag and no mtime of its own */
    it->rank = ent->attr.kind != SKY_DIR ? 1 : ent->attr.has || ent->meta ? 3 : 2;
    g->n++;
    return 0;
}

static int cmp_gathered(const void *x, const void *y)
{
    const struct gathered *a = x, *b = y;
    int c = strcmp(a->ent.name, b->ent.name);
    return c ? c : b->rank - a->rank;    /* best first */
}

/* Sort, keep the best of each name, hand the entries to cb. */
static int gather_deliver(struct objstore *o, struct gather *g, const char *show,
                          sky_list_cb cb, void *arg)
{
    if (g->n)
        qsort(g->v, g->n, sizeof *g->v, cmp_gathered);
    int rc = 0;
    for (size_t i = 0; i < g->n && rc == 0; i++) {
        if (i > 0 && strcmp(g->v[i].ent.name, g->v[i - 1].ent.name) == 0) {
            if (g->v[i].rank == 1)
                LOG_WARN("%s '%s': \"%s\" in %s is hidden by a directory of the same name",
                         o->proto->type, o->name, g->v[i].ent.name, show);
            continue;
        }
        rc = cb(arg, &g->v[i].ent);
    }
    return rc;
}

static void gather_free(struct gather *g)
{
    for (size_t i = 0; i < g->n; i++)
        sky_dirent_free(&g->v[i].ent);
    free(g->v);
}

int objstore_list(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct objstore *o = ctx;
    if (!o->container && !*dir)
        return list_containers(o, cb, arg, e);
    struct os_loc l;
    int rc = os_locate(o, dir, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX], *prefix = NULL;
    os_show(o, &l, show, sizeof show);
    if (asprintf(&prefix, "%s%s", l.key, *l.key ? "/" : "") < 0) {
        os_loc_free(&l);
        return os_oom(e);
    }
    struct gather g = { 0 };
    bool dedupe = o->proto->flags & OBJSTORE_LIST_DEDUPE;
    sky_list_cb to = dedupe ? gather_entry : cb;
    void *to_arg = dedupe ? (void *)&g : arg;
    struct probe_where where = { o, l.container };
    struct dir_lister d = { o, l.container, prefix, strlen(prefix), to, to_arg, false,
                            { .memo = o->probe, .scope = l.container, .ask = probe_ask,
                              .ask_arg = &where, .cb = to, .cb_arg = to_arg, .e = e },
                            { .memo = o->dirs, .scope = l.container, .ask = dirs_ask,
                              .ask_arg = &where, .known = dirs_known, .cb = to, .cb_arg = to_arg, .e = e },
                            false, "", 0, "" };
    rc = os_list_keys(o, l.container, prefix, true, 0, on_dir_item, &d, show, e);
    if (rc == 0)
        rc = linkprobe_flush(&d.batch);
    if (rc == 0)
        rc = dirmemo_flush(&d.dirs);
    linkprobe_batch_free(&d.batch);
    dirmemo_batch_free(&d.dirs);
    if (rc == 0 && o->dirs && *prefix)
        dirmemo_seen(o->dirs, l.container, prefix, d.own_marker, d.own_etag,
                     d.own_modified_ns);
    if (rc == -ENOMEM && e && !e->code)
        os_oom(e);
    if (rc == 0 && dedupe)
        rc = gather_deliver(o, &g, show, cb, arg);
    gather_free(&g);
    bool is_root = !*dir || (!o->container && !strchr(dir, '/'));
    if (rc == 0 && !d.found && !is_root) {
        /* nothing under dir/: a file, or nothing at all */
        struct objstore_head h;
        struct sky_err err = { 0 };
        rc = o->proto->head(o->p, l.container, l.key, &h, show, &err);
        if (rc == 0) {
            /* another tool's directory object with nothing under it is an
             * empty directory; any other object is a file */
            struct sky_attr a;
            os_attr_from_head(o, &h, &a);
            objstore_head_free(&h);
            if (a.kind != SKY_DIR)
                rc = OS_FAIL(o, e, ENOTDIR, "LIST %s: not a directory", show);
        } else if (rc == -ENOENT || rc == -EACCES) {
            rc = OS_FAIL(o, e, ENOENT, "LIST %s: no such directory", show);
        } else if (e) {
            *e = err;
        }
    }
    free(prefix);
    os_loc_free(&l);
    return rc;
}

/* Flat listing for `skyfs index`: every key under dir/, no delimiter. */
struct tree_lister {
    struct objstore *o;
    const char *container;
    size_t plen;
    sky_list_cb cb;
    void *arg;
    struct linkprobe_batch batch;   /* files that may be symlinks wait here */
    struct dirmemo_batch dirs;      /* folders whose markers are asked wait here */
};

/* true if every '/'-separated part of rel is a valid file name */
static bool valid_rel_path(const char *rel, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || rel[i] == '/') {
            if (!valid_name(rel + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

static int on_tree_item(void *arg, const struct objstore_item *it)
{
    struct tree_lister *t = arg;
    const char *key = it->key;
    const char *rel = key + t->plen;
    size_t len = strlen(rel);
    struct sky_attr attr;
    item_attr(t->o, it, &attr);
    bool marker = len && rel[len - 1] == '/' && !it->is_prefix;
    if (len && rel[len - 1] == '/') { /* a directory marker */
        len--;
        attr.kind = SKY_DIR;
    }
    if (len == 0)
        return 0; /* the start directory's own marker */
    if (!valid_rel_path(rel, len) || !listable_size(&attr)) {
        /* the warning names the first part that cannot be a file name */
        size_t start = 0, end = 0;
        while (end < len) {
            end = start + strcspn(rel + start, "/");
            if (end > len)
                end = len;
            if (!valid_name(rel + start, end - start) || end == len)
                break;
            start = end + 1;
        }
        warn_skipped(t->o, t->container, key, rel + start, end - start);
        return 0;
    }
    char *name = strndup(rel, len);
    if (!name)
        return -ENOMEM;
    struct item_meta im;
    if (item_objmeta(t->o, it, &im) < 0) {
        sky_objmeta_free(&im.om);
        free(name);
        return -ENOMEM;
    }
    struct sky_dirent ent = { .name = name, .attr = attr, .link = NULL,
                              .meta = im.any && attr.kind != SKY_DIR ? &im.om : NULL };
    char *target = NULL;
    if (attr.kind == SKY_FILE && !it->meta) {
        settle_kind(t->o, t->container, key, &ent, &target);
        if (ent.attr.kind == SKY_DIR)
            ent.meta = NULL;
    }
    if (ent.attr.kind == SKY_DIR) {
        ent.attr.size = 0;
        ent.attr.etag[0] = '\0';
    }
    int rc;
    if (marker && !it->meta && t->o->dirs) {
        /* its attributes are in its metadata: remembered per ETag */
        dirmemo_seen(t->o->dirs, t->container, key, true, it->etag, it->last_modified_ns);
        rc = dirmemo_add(&t->dirs, key, &ent);
    } else {
        rc = deliver(t->o, &t->batch, t->cb, t->arg, key, &ent);
    }
    free(target);
    free(name);
    sky_objmeta_free(&im.om);
    return rc;
}

/* The account root, flat: each container as a directory, then what it
 * holds, named "container/...". */
struct account_tree {
    struct objstore *o;
    sky_list_cb cb;
    void *arg;
    struct sky_err *e;
};

/* Passes a container's entries on under "container/". */
struct named_under {
    const char *container;
    sky_list_cb cb;
    void *arg;
};

static int under_container(void *arg, const struct sky_dirent *ent)
{
    struct named_under *u = arg;
    char *name;
    if (asprintf(&name, "%s/%s", u->container, ent->name) < 0)
        return -ENOMEM;
    struct sky_dirent d = *ent;
    d.name = name;
    int rc = u->cb(u->arg, &d);
    free(name);
    return rc;
}

static int tree_of_container(void *arg, const struct sky_dirent *ent)
{
    struct account_tree *t = arg;
    int rc = t->cb(t->arg, ent);
    struct named_under u = { ent->name, t->cb, t->arg };
    if (rc == 0)
        rc = objstore_list_tree(t->o, ent->name, under_container, &u, t->e);
    return rc;
}

int objstore_list_tree(void *ctx, const char *dir, sky_list_cb cb, void *arg,
                       struct sky_err *e)
{
    struct objstore *o = ctx;
    if (!o->container && !*dir) {
        struct account_tree t = { o, cb, arg, e };
        return list_containers(o, tree_of_container, &t, e);
    }
    struct os_loc l;
    int rc = os_locate(o, dir, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX], *prefix = NULL;
    os_show(o, &l, show, sizeof show);
    if (asprintf(&prefix, "%s%s", l.key, *l.key ? "/" : "") < 0) {
        os_loc_free(&l);
        return os_oom(e);
    }
    struct probe_where where = { o, l.container };
    struct tree_lister t = { o, l.container, strlen(prefix), cb, arg,
                             { .memo = o->probe, .scope = l.container, .ask = probe_ask,
                               .ask_arg = &where, .cb = cb, .cb_arg = arg, .e = e,
                               .forgetful = true, .max = LINKPROBE_THREADS * 2 },
                             { .memo = o->dirs, .scope = l.container, .ask = dirs_ask,
                               .ask_arg = &where, .known = dirs_known, .cb = cb, .cb_arg = arg, .e = e } };
    rc = os_list_keys(o, l.container, prefix, false, 0, on_tree_item, &t, show, e);
    if (rc == 0)
        rc = linkprobe_flush(&t.batch);
    if (rc == 0)
        rc = dirmemo_flush(&t.dirs);
    linkprobe_batch_free(&t.batch);
    dirmemo_batch_free(&t.dirs);
    free(prefix);
    os_loc_free(&l);
    return rc;
}

/* ------------------------------------------------------------------ */
/* stat                                                                */
/* ------------------------------------------------------------------ */

struct first_key {
    char *key;
    int count;
    bool other;             /* a key besides the marker */
    const char *marker;
};

static int on_first_key(void *arg, const struct objstore_item *it)
{
    struct first_key *f = arg;
    f->count++;
    if (!f->key)
        f->key = strdup(it->key);
    if (!f->marker || strcmp(it->key, f->marker) != 0)
        f->other = true;
    return 0;
}

int os_probe_dir(struct objstore *o, const struct os_loc *l, int max, bool *any, bool *marker,
                 bool *others, const char *show, struct sky_err *e)
{
    char *prefix;
    if (asprintf(&prefix, "%s/", l->key) < 0)
        return os_oom(e);
    struct first_key f = { .marker = prefix };
    int rc = os_list_keys(o, l->container, prefix, false, max, on_first_key, &f, show, e);
    *any = f.count > 0;
    *marker = f.key && strcmp(f.key, prefix) == 0;
    *others = f.other;
    free(f.key);
    free(prefix);
    return rc;
}

void os_dir_attr(struct sky_attr *out)
{
    memset(out, 0, sizeof *out);
    out->kind = SKY_DIR;
}

void os_marker_attr(const struct objstore *o, const struct objstore_head *h,
                    struct sky_attr *out)
{
    os_attr_from_head(o, h, out);
    out->kind = SKY_DIR;
    out->size = 0;
    out->etag[0] = '\0';
    out->rdev = 0;
}

/* Attributes of the marker "key/" merged into a directory's attrs. */
static int stat_marker(struct objstore *o, const struct os_loc *l, struct sky_attr *out,
                       const char *show, struct sky_err *e)
{
    char *mkey;
    if (asprintf(&mkey, "%s/", l->key) < 0)
        return os_oom(e);
    struct objstore_head h;
    struct sky_err err = { 0 };
    int rc = o->proto->head(o->p, l->container, mkey, &h, show, &err);
    os_dir_attr(out);
    if (rc == 0) {
        os_marker_attr(o, &h, out);
        if (o->dirs)
            dirmemo_put(o->dirs, l->container, mkey, true, h.etag, h.last_modified_ns, out);
        objstore_head_free(&h);
    } else if (rc == -ENOENT || rc == -EACCES) {
        if (rc == -ENOENT && o->dirs)
            dirmemo_put(o->dirs, l->container, mkey, false, NULL, 0, NULL);
        rc = 0;             /* gone meanwhile: still a directory */
    } else if (e) {
        *e = err;
    }
    free(mkey);
    return rc;
}

static int stat_container(struct objstore *o, const struct os_loc *l, struct sky_attr *out,
                          struct sky_err *e)
{
    int rc = o->proto->container_head ? o->proto->container_head(o->p, l->container, e) : 0;
    if (rc == -EINVAL)      /* a name no container can have: none is there */
        rc = OS_FAIL(o, e, ENOENT, "%s: no such %s", l->container, o->proto->container_key);
    if (rc == 0)
        os_dir_attr(out);
    return rc;
}

/* What is at `key`: the object itself (a head of "key"), or else a folder:
 * the first key under "key/" (is it a folder at all?) and the marker's
 * head (its attributes).  Which are asked, and in what order, follows the
 * caller's guess (enum sky_stat_hint): the object first (nothing known, or
 * a file known: one round trip when it is one), the folder first (a
 * folder known: one round trip, no head of "key"), or all three at once (a
 * name its folder's listing lacks, most likely new: one round trip to
 * learn that nothing is there, instead of two). */
struct stat_question {
    struct objstore *o;
    const struct os_loc *l;
    const char *show;
    bool ask_object, ask_folder;    /* what the round being answered asked */
    int object_rc, list_rc, marker_rc;
    struct sky_err object_err, list_err, marker_err;
    struct objstore_head head;      /* the object's, while object_rc is 0 */
    bool any, marker, others;
    struct sky_attr marker_attr;
};

static int stat_question_job(void *arg, size_t i, struct sky_err *e)
{
    (void)e;
    struct stat_question *q = arg;
    if (!q->ask_object)
        i++;                    /* the folder's questions only */
    if (i == 0)
        q->object_rc = q->o->proto->head(q->o->p, q->l->container, q->l->key, &q->head,
                                         q->show, &q->object_err);
    else if (i == 1)
        q->list_rc = os_probe_dir(q->o, q->l, 1, &q->any, &q->marker, &q->others, q->show,
                                  &q->list_err);
    else
        q->marker_rc = stat_marker(q->o, q->l, &q->marker_attr, q->show, &q->marker_err);
    return 0;
}

/* One round: ask about the object, the folder or both, at once; then
 * answer: 0 (*out set), -ENOENT when what was asked found nothing, or a
 * failure.  The object's answer comes first: a file is the answer even
 * when a folder was asked about too. */
static int stat_round(struct stat_question *q, bool object, bool folder, struct sky_attr *out,
                      struct sky_err *e)
{
    q->ask_object = object;
    q->ask_folder = folder;
    q->object_rc = q->list_rc = q->marker_rc = -ENOENT;
    size_t n = (object ? 1 : 0) + (folder ? 2 : 0);
    int rc = parallel_for(n, (int)n, stat_question_job, q, e);
    if (q->object_rc == 0) {
        if (rc == 0) {
            os_attr_from_head(q->o, &q->head, out);
            os_typed_note(q->o, q->l->container, q->l->key, out);
        }
        objstore_head_free(&q->head);
    }
    if (rc)
        return rc;
    if (object && (q->object_rc != -ENOENT || !folder)) {   /* a file, a failure, or none */
        if (q->object_rc && e)
            *e = q->object_err;
        return q->object_rc;
    }
    if (q->list_rc) {
        if (e)
            *e = q->list_err;
        return q->list_rc;
    }
    if (!q->any)
        return OS_FAIL(q->o, e, ENOENT, "HEAD %s: 404 NoSuchKey", q->show);
    if (!q->marker) {
        os_dir_attr(out);
        return 0;
    }
    if (q->marker_rc == 0)
        *out = q->marker_attr;
    else if (e)
        *e = q->marker_err;
    return q->marker_rc;
}

int objstore_stat_hinted(void *ctx, const char *path, int hint, struct sky_attr *out,
                         struct sky_err *e)
{
    struct objstore *o = ctx;
    if (!*path) {
        os_dir_attr(out);
        return 0;
    }
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    if (!*l.key) {
        rc = stat_container(o, &l, out, e);
        os_loc_free(&l);
        return rc;
    }
    /* the likely questions first (all of them for a new name); the others
     * only when those found nothing */
    struct stat_question q = { .o = o, .l = &l, .show = show };
    bool object_first = hint != SKY_STAT_DIR, both = hint == SKY_STAT_NEW;
    rc = stat_round(&q, object_first || both, !object_first || both, out, e);
    if (rc == -ENOENT && !both) {
        sky_err_clear(e);
        rc = stat_round(&q, !object_first, object_first, out, e);
    }
    os_loc_free(&l);
    return rc;
}

int objstore_stat(void *ctx, const char *path, struct sky_attr *out, struct sky_err *e)
{
    return objstore_stat_hinted(ctx, path, SKY_STAT_UNKNOWN, out, e);
}

int os_must_be_free(struct objstore *o, const char *path, const char *op, struct sky_err *e)
{
    struct sky_attr cur;
    struct sky_err probe = {0};
    /* most likely nothing is there: the object and the folder asked at once */
    int rc = objstore_stat_hinted(o, path, SKY_STAT_NEW, &cur, &probe);
    if (rc == 0)
        return OS_FAIL(o, e, EEXIST, "%s %s: already exists", op, path);
    if (rc != -ENOENT) {
        if (e)
            *e = probe;
        return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* read                                                                */
/* ------------------------------------------------------------------ */

int objstore_read(void *ctx, const char *path, const char *etag, uint64_t off, uint64_t len,
                  sky_sink_fn sink, void *sink_arg, struct sky_err *e)
{
    struct objstore *o = ctx;
    if (len == 0)
        return 0;
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    rc = o->proto->get(o->p, l.container, l.key, etag, off, len, sink, sink_arg, NULL, show, e);
    os_loc_free(&l);
    return rc;
}

/* ------------------------------------------------------------------ */
/* get_meta                                                            */
/* ------------------------------------------------------------------ */

/* One head (of the object, else of its "dir/" marker; an implicit
 * directory costs a one-key listing too). */
int objstore_get_meta(void *ctx, const char *path, struct sky_attr *attr,
                      struct sky_objmeta *meta, struct sky_err *e)
{
    struct objstore *o = ctx;
    memset(meta, 0, sizeof *meta);
    meta->has_user = true;
    if (!*path || (!o->container && !strchr(path, '/')))
        return objstore_stat(ctx, path, attr, e);   /* the root or a container */
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    char show[OS_SHOW_MAX], *key = NULL;
    os_show(o, &l, show, sizeof show);
    struct objstore_head h;
    enum sky_kind kind = SKY_FILE;
    bool dir_exists;
    rc = os_head_meta(o, &l, false, &h, &key, &kind, &dir_exists, show, e);
    if (rc == -ENOENT && dir_exists) {
        sky_err_clear(e);
        os_dir_attr(attr);                      /* a prefix without marker */
        rc = 0;
    } else if (rc == 0) {
        os_attr_from_head(o, &h, attr);
        if (kind == SKY_DIR) {
            attr->kind = SKY_DIR;
            attr->size = 0;
            attr->etag[0] = '\0';
            attr->rdev = 0;
        } else {
            os_typed_note(o, l.container, l.key, attr);
        }
        if (os_objmeta_from_head(o, &h, meta) < 0)
            rc = os_oom(e);
        objstore_head_free(&h);
    }
    free(key);
    os_loc_free(&l);
    if (rc)
        sky_objmeta_free(meta);
    return rc;
}

/* ------------------------------------------------------------------ */
/* open / close                                                        */
/* ------------------------------------------------------------------ */

static int cfg_fail(const struct sky_cloud_config *cfg, const char *key, int code,
                    const char *what, struct sky_err *e)
{
    return sky_fail(e, code, "%s:%d: [%s] %s%s%s", cfg->file ? cfg->file : "config",
                    key ? sky_cloud_line(cfg, key) : cfg->line, cfg->name, key ? key : "",
                    key ? ": " : "", what);
}

/* container_key and prefix, checked. */
static int setup_where(struct objstore *o, const struct sky_cloud_config *cfg,
                       struct sky_err *e)
{
    const char *ckey = o->proto->container_key;
    const char *container = sky_cloud_get(cfg, ckey);
    const char *prefix = sky_cloud_get(cfg, "prefix");
    if (container && *container) {
        if (strchr(container, '/') || strlen(container) > 255) {
            char what[160];
            snprintf(what, sizeof what, "must be a %s name (put the rest of the path in "
                     "`prefix`)", ckey);
            return cfg_fail(cfg, ckey, EINVAL, what, e);
        }
        if (!(o->container = strdup(container)))
            return os_oom(e);
    } else if (!(o->proto->flags & OBJSTORE_ACCOUNT)) {
        return cfg_fail(cfg, ckey, EINVAL, "missing; name the container to show", e);
    } else if (prefix && *prefix) {
        char what[64];
        snprintf(what, sizeof what, "needs `%s` as well", ckey);
        return cfg_fail(cfg, "prefix", EINVAL, what, e);
    }
    prefix = prefix ? prefix : "";
    while (*prefix == '/')
        prefix++;
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/')
        n--;
    if (!(o->prefix = strndup(prefix, n)))
        return os_oom(e);
    return 0;
}

void objstore_close(void *ctx)
{
    struct objstore *o = ctx;
    if (!o)
        return;
    if (o->p)
        o->proto->close(o->p);
    links_free(o);
    linkprobe_free(o->probe);
    dirmemo_free(o->dirs);
    pthread_mutex_destroy(&o->links_lock);
    pthread_mutex_destroy(&o->cond_lock);
    free(o->name);
    free(o->container);
    free(o->prefix);
    free(o);
}

int objstore_open(const struct objstore_proto *proto, const struct sky_cloud_config *cfg,
                  void **ctx, struct sky_err *e)
{
    struct objstore *o = calloc(1, sizeof *o);
    if (!o || !(o->name = strdup(cfg->name))) {
        free(o);
        return os_oom(e);
    }
    o->proto = proto;
    o->codec = proto->codec;
    pthread_mutex_init(&o->links_lock, NULL);
    pthread_mutex_init(&o->cond_lock, NULL);
    int rc = !(proto->flags & OBJSTORE_LIST_META) && sky_cloud_bool(cfg, "symlinks", true) &&
                     linkprobe_new(&o->probe) < 0
                 ? os_oom(e) : 0;
    if (rc == 0 && dirmemo_new(&o->dirs) < 0)
        rc = os_oom(e);
    if (rc == 0)
        rc = setup_where(o, cfg, e);
    if (rc == 0) {
        struct objstore_where where = { o->container, o->prefix };
        rc = proto->open(cfg, o->name, &where, &o->p, e);
    }
    if (rc < 0) {
        objstore_close(o);
        return rc;
    }
    *ctx = o;
    return 0;
}
