/*
 * objstore_meta.c - the object-store core's metadata plumbing: times,
 * POSIX attributes read from and written to user metadata (objstore.h
 * NAMES IN METADATA, with the protocol's codec), user metadata as
 * extended attributes, set_attr and the xattr calls.
 *
 * Metadata changes (chmod, utime, xattrs) rewrite the object's metadata:
 * with the protocol's set_meta where it has one, else by copying the
 * object onto itself with the new metadata (S3's metadata-replacing
 * copy).  An implicit directory (a prefix without marker) gets a marker
 * carrying the metadata.  Values that are not plain printable text are
 * stored as "b64:" + base64 (unless the codec says values must be
 * plain); s3fs's "xattr" JSON item is read, and edited where it is, when
 * the codec says so (s3fs_xattr.h).
 *
 * Called only by the other objstore*.c files (objstore_int.h) and, for
 * the driver ops, through the driver table.
 */
#include "objstore_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "s3fs_xattr.h"

#define S3FS_XATTR "xattr"
/* setxattr flags (XATTR_CREATE / XATTR_REPLACE of <sys/xattr.h>) */
#define XATTR_CREATE_FLAG  0x1
#define XATTR_REPLACE_FLAG 0x2

/* ------------------------------------------------------------------ */
/* Times                                                               */
/* ------------------------------------------------------------------ */

static int64_t fraction_ns(const char **p)
{
    int64_t ns = 0, scale = 100000000;
    while (isdigit((unsigned char)**p)) {
        ns += (**p - '0') * scale;
        scale /= 10;
        (*p)++;
    }
    return ns;
}

int objstore_parse_iso8601(const char *s, int64_t *ns)
{
    struct tm tm = {0};
    int used = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -EINVAL;
    const char *p = s + used;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        frac = fraction_ns(&p);
    }
    long offset = 0;
    if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -EINVAL;
        offset = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z' && *p != 'z') {
        return -EINVAL;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    *ns = ((int64_t)t - offset) * 1000000000LL + frac;
    return 0;
}

int objstore_parse_http_date(const char *s, int64_t *ns)
{
    struct tm tm = {0};
    if (!s || !strptime(s, "%a, %d %b %Y %H:%M:%S", &tm))
        return -EINVAL;
    *ns = (int64_t)timegm(&tm) * 1000000000LL;
    return 0;
}

/* "1700000000" (s3fs), "1700000000.123456789" (rclone), or RFC 3339. */
int objstore_parse_time(const char *s, int64_t *ns)
{
    if (!s || !*s)
        return -EINVAL;
    if (strchr(s, 'T'))
        return objstore_parse_iso8601(s, ns);
    char *end;
    errno = 0;
    long long sec = strtoll(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    int64_t frac = 0;
    if (*end == '.') {
        const char *p = end + 1;
        frac = fraction_ns(&p);
        end = (char *)p;
    }
    if (*end)
        return -EINVAL;
    *ns = (int64_t)sec * 1000000000LL + (sec < 0 ? -frac : frac);
    return 0;
}

static void split_ns(int64_t ns, int64_t *sec, int64_t *frac)
{
    *sec = ns / 1000000000LL;
    *frac = ns % 1000000000LL;
    if (*frac < 0) {
        (*sec)--;
        *frac += 1000000000LL;
    }
}

/* s3fs's form: whole seconds, with a 9-digit fraction when there is one. */
void objstore_time_decimal(int64_t ns, char *buf, size_t cap)
{
    int64_t sec, frac;
    split_ns(ns, &sec, &frac);
    if (frac)
        snprintf(buf, cap, "%lld.%09lld", (long long)sec, (long long)frac);
    else
        snprintf(buf, cap, "%lld", (long long)sec);
}

/* rclone's form: RFC 3339 in UTC with nanoseconds. */
void objstore_time_rfc3339(int64_t ns, char *buf, size_t cap)
{
    int64_t sec, frac;
    split_ns(ns, &sec, &frac);
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
}

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

/* The core's own names: never user metadata. */
static const char *const core_names[] = { "mode", "uid", "gid", "mtime", "atime", "ctime",
                                          "btime", "xattr", "rdev", NULL };

bool objstore_name_token(const char *name)
{
    if (!*name || strlen(name) > 255)
        return false;
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' ||
              *p == '_' || *p == '.'))
            return false;
    return true;
}

static bool in_list(const char *const *list, const char *name)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcasecmp(list[i], name) == 0)
            return true;
    return false;
}

bool os_is_user_name(const struct objstore *o, const char *name)
{
    const struct objstore_codec *c = o->codec;
    return *name && !in_list(core_names, name) && !in_list(c->reserved, name) &&
           !(c->folder_flag && strcasecmp(name, c->folder_flag) == 0);
}

/* Can user.NAME be stored: the NAME of xname, or NULL. */
static const char *storable_name(const struct objstore *o, const char *xname)
{
    if (strncmp(xname, "user.", 5) != 0)
        return NULL;
    const char *n = xname + 5;
    bool ok = o->codec->user_name_ok ? o->codec->user_name_ok(n) : objstore_name_token(n);
    return ok && os_is_user_name(o, n) ? n : NULL;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

static bool plain_value(const void *v, size_t len)
{
    const unsigned char *p = v;
    if (len && (p[0] == ' ' || p[len - 1] == ' '))
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] >= 0x7f)
            return false;
    return true;
}

/* Values travel as header text: printable ASCII as is, anything else
 * (or text that could be mistaken for the encoding) as "b64:" + base64;
 * NULL when the codec takes plain values only and this one is not. */
static char *value_encode(const struct objstore *o, const void *v, size_t len, bool *nomem)
{
    const unsigned char *p = v;
    *nomem = false;
    bool plain = len > 0 && plain_value(v, len);
    if (o->codec->flags & OBJSTORE_CODEC_PLAIN_VALUES) {
        if (!plain_value(v, len))
            return NULL;
    } else if (!plain || (len >= 4 && memcmp(p, "b64:", 4) == 0)) {
        char *out = malloc(4 + 4 * ((len + 2) / 3) + 1);
        if (!out) {
            *nomem = true;
            return NULL;
        }
        memcpy(out, "b64:", 4);
        EVP_EncodeBlock((unsigned char *)out + 4, p, (int)len);
        return out;
    }
    char *out = strndup(v, len);
    *nomem = !out;
    return out;
}

/* Decodes into buf (NULL: only the length); returns the length or -1. */
static ssize_t value_decode(const struct objstore *o, const char *text, unsigned char *buf)
{
    if ((o->codec->flags & OBJSTORE_CODEC_PLAIN_VALUES) || strncmp(text, "b64:", 4) != 0) {
        size_t n = strlen(text);
        if (buf)
            memcpy(buf, text, n);
        return (ssize_t)n;
    }
    const char *b = text + 4;
    size_t n = strlen(b);
    if (n % 4)
        return -1;
    unsigned char *tmp = malloc(n / 4 * 3 + 1);
    if (!tmp)
        return -1;
    int got = n ? EVP_DecodeBlock(tmp, (const unsigned char *)b, (int)n) : 0;
    if (got < 0) {
        free(tmp);
        return -1;
    }
    if (n >= 1 && b[n - 1] == '=')
        got--;
    if (n >= 2 && b[n - 2] == '=')
        got--;
    if (buf)
        memcpy(buf, tmp, (size_t)got);
    free(tmp);
    return got;
}

/* ------------------------------------------------------------------ */
/* Attributes from and to metadata                                     */
/* ------------------------------------------------------------------ */

static int parse_u32(const char *s, uint32_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || v > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s)
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -EINVAL;
    *out = (uint64_t)v;
    return 0;
}

static bool type_is_dir(const struct objstore_codec *c, const char *type)
{
    for (size_t i = 0; type && c->dir_types && c->dir_types[i]; i++) {
        size_t n = strlen(c->dir_types[i]);
        if (strncasecmp(type, c->dir_types[i], n) == 0 &&
            (type[n] == '\0' || type[n] == ';' || type[n] == ' '))
            return true;
    }
    return false;
}

void os_attr_from_head(const struct objstore *o, const struct objstore_head *h,
                       struct sky_attr *a)
{
    const struct objstore_codec *c = o->codec;
    const struct http_headers *m = &h->meta;
    memset(a, 0, sizeof *a);
    a->kind = SKY_FILE;
    a->size = h->size;
    memcpy(a->etag, h->etag, sizeof a->etag);
    a->modified_ns = h->last_modified_ns;
    if (objstore_parse_time(http_headers_get(m, "mtime"), &a->mtime_ns) == 0)
        a->has |= SKY_HAS_MTIME;
    else if (h->last_modified_ns) {
        a->mtime_ns = h->last_modified_ns;
        a->has |= SKY_HAS_MTIME;
    }
    if (objstore_parse_time(http_headers_get(m, "atime"), &a->atime_ns) == 0)
        a->has |= SKY_HAS_ATIME;
    if (objstore_parse_time(http_headers_get(m, "ctime"), &a->ctime_ns) == 0)
        a->has |= SKY_HAS_CTIME;
    uint32_t mode;
    if (parse_u32(http_headers_get(m, "mode"), &mode) == 0) {
        a->mode = mode & 07777;
        a->has |= SKY_HAS_MODE;
        if (sky_kind_of_mode(mode) > SKY_FILE)  /* a directory, link or special file */
            a->kind = (enum sky_kind)sky_kind_of_mode(mode);
    }
    uint64_t rdev;
    if ((a->kind == SKY_CHR || a->kind == SKY_BLK) &&
        parse_u64(http_headers_get(m, "rdev"), &rdev) == 0)
        a->rdev = rdev;
    if (parse_u32(http_headers_get(m, "uid"), &a->uid) == 0)
        a->has |= SKY_HAS_UID;
    if (parse_u32(http_headers_get(m, "gid"), &a->gid) == 0)
        a->has |= SKY_HAS_GID;
    /* other tools' directory objects: "dir" with a directory content
     * type, or blobfuse2's folder flag */
    const char *flag = c->folder_flag ? http_headers_get(m, c->folder_flag) : NULL;
    if (flag && strcasecmp(flag, "true") == 0)
        a->kind = SKY_DIR;
    if (a->kind == SKY_FILE && a->size == 0 && type_is_dir(c, h->content_type))
        a->kind = SKY_DIR;
    if (c->attr_read)
        c->attr_read(h, a);
    if (a->kind == SKY_DIR) {
        a->size = 0;
        a->etag[0] = '\0';
    }
}

static int set_num(struct http_headers *h, const char *name, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return http_headers_set(h, name, buf);
}

static int add_times(const struct objstore *o, struct http_headers *h, const struct sky_attr *a,
                     unsigned which)
{
    static const struct { unsigned bit; const char *name; size_t off; } times[] = {
        { SKY_HAS_MTIME, "mtime", offsetof(struct sky_attr, mtime_ns) },
        { SKY_HAS_ATIME, "atime", offsetof(struct sky_attr, atime_ns) },
        { SKY_HAS_CTIME, "ctime", offsetof(struct sky_attr, ctime_ns) },
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        if (!(which & times[i].bit))
            continue;
        char t[64];
        int64_t ns;
        memcpy(&ns, (const char *)a + times[i].off, sizeof ns);
        o->codec->format_time(ns, t, sizeof t);
        rc |= http_headers_set(h, times[i].name, t);
    }
    return rc ? -ENOMEM : 0;
}

int os_meta_posix(const struct objstore *o, struct http_headers *h, enum sky_kind kind,
                  const struct sky_attr *a, unsigned which)
{
    int rc = 0;
    uint32_t perm = kind == SKY_LINK ? 0777 : kind == SKY_DIR ? 0755 : 0644;
    if (a && (which & SKY_HAS_MODE))
        perm = a->mode & 07777;
    if ((a && (which & SKY_HAS_MODE)) || kind != SKY_FILE)
        rc |= set_num(h, "mode", (long long)(sky_kind_type_bits((int)kind) | perm));
    if (a && (which & SKY_HAS_UID))
        rc |= set_num(h, "uid", a->uid);
    if (a && (which & SKY_HAS_GID))
        rc |= set_num(h, "gid", a->gid);
    if (a)
        rc |= add_times(o, h, a, which);
    if (rc == 0 && a && o->codec->attr_write)
        rc = o->codec->attr_write(h, a, which);
    return rc ? -ENOMEM : 0;
}

const char *os_content_type(const struct sky_objmeta *m)
{
    const char *v = m ? m->content_type : NULL;
    if (!v || !*v)
        return "application/octet-stream";
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            return "application/octet-stream";
    return v;
}

int os_meta_user(const struct objstore *o, const char *show, struct http_headers *h,
                 const struct sky_objmeta *m)
{
    for (size_t i = 0; m && i < m->nuser; i++) {
        const struct sky_meta_item *it = &m->user[i];
        char xname[300];
        if (strlen(it->key) + 6 > sizeof xname)
            continue;
        snprintf(xname, sizeof xname, "user.%s", it->key);
        const char *name = storable_name(o, xname);
        if (!name)
            continue;
        bool nomem;
        char *v = value_encode(o, it->value, it->len, &nomem);
        if (!v) {
            if (nomem)
                return -ENOMEM;
            continue;
        }
        int rc = 0;
        size_t bytes = http_headers_bytes(h, "") + strlen(name) + strlen(v);
        if (bytes <= o->codec->meta_max)
            rc = http_headers_set(h, name, v) == 0 ? 0 : -ENOMEM;
        else
            LOG_WARN("%s '%s': PUT %s: user metadata %s left out: it would take the object's "
                     "user metadata to %zu bytes, past the limit of %zu", o->proto->type,
                     o->name, show, it->key, bytes, o->codec->meta_max);
        free(v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int os_objmeta_from_head(const struct objstore *o, const struct objstore_head *h,
                         struct sky_objmeta *m)
{
    m->has_user = true;
    int rc = sky_objmeta_set(&m->content_type, h->content_type);
    if (rc == 0 && h->storage_class)
        rc = sky_objmeta_set(&m->storage_class, h->storage_class);
    for (size_t i = 0; rc == 0 && i < h->meta.n; i++) {
        const char *name = h->meta.h[i].name, *text = h->meta.h[i].value;
        if (!os_is_user_name(o, name))
            continue;
        char key[256];
        size_t k = 0;
        for (; name[k] && k < sizeof key - 1; k++)
            key[k] = (char)tolower((unsigned char)name[k]);
        key[k] = '\0';
        ssize_t n = value_decode(o, text, NULL);
        unsigned char *v = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (v) {
            value_decode(o, text, v);
            rc = sky_objmeta_add_user(m, key, v, (size_t)n);
        } else {            /* not valid base64: shown as stored */
            rc = n < 0 ? sky_objmeta_add_user(m, key, text, strlen(text)) : -ENOMEM;
        }
        free(v);
    }
    /* s3fs's items, unless an item of ours says otherwise */
    if (rc == 0 && (o->codec->flags & OBJSTORE_CODEC_S3FS_XATTR))
        rc = s3fs_xattr_read(http_headers_get(&h->meta, S3FS_XATTR), m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The object behind a path                                            */
/* ------------------------------------------------------------------ */

int os_head_meta(struct objstore *o, const struct os_loc *l, bool dir_first,
                 struct objstore_head *h, char **key_out, enum sky_kind *kind,
                 bool *dir_exists, const char *show, struct sky_err *e)
{
    *dir_exists = false;
    *key_out = NULL;
    char *mkey;
    if (asprintf(&mkey, "%s/", l->key) < 0)
        return os_oom(e);
    /* the object, then the marker; a folder known: the marker first */
    const char *keys[2] = { l->key, mkey };
    if (dir_first) {
        keys[0] = mkey;
        keys[1] = l->key;
    }
    int rc = -ENOENT;
    for (int i = 0; i < 2 && rc == -ENOENT; i++) {
        if (i > 0)
            sky_err_clear(e);
        rc = o->proto->head(o->p, l->container, keys[i], h, show, e);
        if (rc != 0)
            continue;
        if (keys[i] == mkey) {
            *kind = SKY_DIR;
            *key_out = mkey;
            return 0;
        }
        struct sky_attr a;
        os_attr_from_head(o, h, &a);
        *kind = a.kind;
        *key_out = strdup(l->key);
        free(mkey);
        if (*key_out)
            return 0;
        objstore_head_free(h);
        return os_oom(e);
    }
    free(mkey);
    if (rc != -ENOENT)
        return rc;
    sky_err_clear(e);
    bool any, marker, others;
    rc = os_probe_dir(o, l, 1, &any, &marker, &others, show, e);
    if (rc < 0)
        return rc;
    *dir_exists = any;
    *kind = SKY_DIR;
    return OS_FAIL(o, e, ENOENT, "HEAD %s: 404 NoSuchKey", show);
}

/* ------------------------------------------------------------------ */
/* Metadata edits: set_attr and xattrs                                  */
/* ------------------------------------------------------------------ */

/* Edits the metadata of one object in place.  `kind` is what the object
 * is; `meta` holds its current user metadata and is what will be stored. */
typedef int (*meta_edit_fn)(void *arg, enum sky_kind kind, struct http_headers *meta,
                            struct sky_err *e);

static int copy_headers(const struct http_headers *from, struct http_headers *to)
{
    for (size_t i = 0; i < from->n; i++)
        if (http_headers_set(to, from->h[i].name, from->h[i].value) < 0)
            return -ENOMEM;
    return 0;
}

/* The attributes of a `kind` object of `size` bytes whose metadata is now
 * `meta`, with ETag `etag`. */
static void attr_after_edit(const struct objstore *o, struct sky_attr *out,
                            const struct http_headers *meta, enum sky_kind kind, uint64_t size,
                            const char *etag)
{
    struct objstore_head h = { .size = size };
    h.meta = *meta;     /* borrowed */
    os_attr_from_head(o, &h, out);
    out->kind = kind;
    out->size = kind == SKY_DIR ? 0 : size;
    snprintf(out->etag, sizeof out->etag, "%s", kind == SKY_DIR ? "" : etag);
}

/* A marker for an implicit directory, carrying `meta`. */
static int put_dir_marker(struct objstore *o, const struct os_loc *l, struct http_headers *meta,
                          const char *show, struct sky_err *e)
{
    const struct objstore_codec *c = o->codec;
    bool named = (c->flags & OBJSTORE_CODEC_NAMED_MARKER) && c->folder_flag;
    char *key;
    if (asprintf(&key, named ? "%s" : "%s/", l->key) < 0)
        return os_oom(e);
    int rc = named && http_headers_set(meta, c->folder_flag, "true") < 0 ? os_oom(e) : 0;
    struct objstore_new nw = { c->marker_type ? c->marker_type : "application/octet-stream",
                               meta, NULL, NULL, false };
    if (rc == 0)
        rc = o->proto->put(o->p, l->container, key, "", -1, 0, &nw, NULL, show, e);
    os_dirs_forget(o, l->container, key);
    free(key);
    return rc;
}

/* Rewrite the metadata of object `key` (of `size` bytes, ETag `etag`,
 * kept headers `keep`) to content type `type` and `meta`. */
static int rewrite_meta(struct objstore *o, const struct os_loc *l, const char *key,
                        uint64_t size, const char *etag, const char *type,
                        const struct http_headers *meta, const struct http_headers *keep,
                        char *etag_out, const char *show, struct sky_err *e)
{
    struct objstore_new nw = { type ? type : "application/octet-stream", meta, keep, NULL, false };
    int rc = o->proto->set_meta
                 ? o->proto->set_meta(o->p, l->container, key, size, etag, &nw, etag_out, show,
                                      e)
                 : o->proto->copy(o->p, l->container, key, l->container, key, size, etag, &nw,
                                  etag_out, show, e);
    os_dirs_forget(o, l->container, key);
    return rc;
}

/* Edit the metadata of path's object with fn; when out is not NULL it
 * gets the object's attributes afterwards.  The rewrite names the version
 * it read: when someone changed the object in between (-ESTALE), it is
 * read and edited again, a few times. */
static int edit_meta_once(struct objstore *o, const char *path, bool dir_first, meta_edit_fn fn,
                          void *arg, struct sky_attr *out, struct sky_err *e);

/* Edit the metadata of the object behind `path` (dir_first: the caller
 * knows a folder there, whose marker is asked first). */
static int edit_meta(struct objstore *o, const char *path, bool dir_first, meta_edit_fn fn,
                     void *arg, struct sky_attr *out, struct sky_err *e)
{
    int rc;
    for (int attempt = 0;; attempt++) {
        rc = edit_meta_once(o, path, dir_first, fn, arg, out, e);
        if (rc != -ESTALE || attempt >= 3)
            return rc;
        sky_err_clear(e);
    }
}

static int edit_meta_once(struct objstore *o, const char *path, bool dir_first, meta_edit_fn fn,
                          void *arg, struct sky_attr *out, struct sky_err *e)
{
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    if (!*l.key) {
        os_loc_free(&l);
        return OS_FAIL(o, e, ENOTSUP, "%s: %ss carry no metadata", *path ? path : "/",
                       o->proto->container_key);
    }
    char show[OS_SHOW_MAX], *key = NULL;
    os_show(o, &l, show, sizeof show);
    struct objstore_head head;
    struct http_headers meta = {0};
    enum sky_kind kind = SKY_FILE;
    bool dir_exists;
    rc = os_head_meta(o, &l, dir_first, &head, &key, &kind, &dir_exists, show, e);
    if (rc == -ENOENT && dir_exists) {
        /* an implicit directory: give it a marker carrying the metadata */
        sky_err_clear(e);
        rc = fn(arg, SKY_DIR, &meta, e);
        if (rc == 0)
            rc = put_dir_marker(o, &l, &meta, show, e);
        if (rc == 0 && out)
            attr_after_edit(o, out, &meta, SKY_DIR, 0, "");
    } else if (rc == 0) {
        rc = copy_headers(&head.meta, &meta) < 0 ? os_oom(e) : 0;
        if (rc == 0)
            rc = fn(arg, kind, &meta, e);
        if (rc == 0) {
            char copied[SKY_ETAG_MAX] = "";
            rc = rewrite_meta(o, &l, key, head.size, head.etag, head.content_type, &meta,
                              &head.keep, copied, show, e);
            if (rc == 0 && out)
                attr_after_edit(o, out, &meta, kind, head.size,
                                copied[0] ? copied : head.etag);
        }
        objstore_head_free(&head);
    }
    http_headers_free(&meta);
    free(key);
    os_loc_free(&l);
    return rc;
}

struct attr_edit {
    const struct objstore *o;
    const struct sky_attr *attr;
    unsigned which;
};

static int edit_attr(void *arg, enum sky_kind kind, struct http_headers *meta, struct sky_err *e)
{
    struct attr_edit *ae = arg;
    const struct sky_attr *a = ae->attr;
    int rc = 0;
    const char *old_mode = http_headers_get(meta, "mode");
    if (ae->which & SKY_HAS_MODE)
        rc |= set_num(meta, "mode", (long long)(sky_kind_type_bits((int)kind) | (a->mode & 07777)));
    else if (!old_mode && kind != SKY_FILE)
        rc |= set_num(meta, "mode",
                      (long long)(sky_kind_type_bits((int)kind) | (kind == SKY_DIR ? 0755 : 0777)));
    if (ae->which & SKY_HAS_UID)
        rc |= set_num(meta, "uid", a->uid);
    if (ae->which & SKY_HAS_GID)
        rc |= set_num(meta, "gid", a->gid);
    rc |= add_times(ae->o, meta, a, ae->which);
    if (rc == 0 && ae->o->codec->attr_write)
        rc = ae->o->codec->attr_write(meta, a, ae->which);
    return rc ? os_oom(e) : 0;
}

int objstore_set_attr(void *ctx, const char *path, const struct sky_attr *attr, unsigned which,
                      struct sky_attr *out, struct sky_err *e)
{
    struct objstore *o = ctx;
    if (which == 0 || !*path || (!o->container && !strchr(path, '/'))) {
        *out = *attr;   /* containers and the bare root carry no metadata */
        return 0;
    }
    struct attr_edit ae = { o, attr, which };
    return edit_meta(o, path, attr->kind == SKY_DIR, edit_attr, &ae, out, e);
}

/* The metadata of the object behind path for the xattr readers; an
 * implicit directory or a container has none (empty set). */
static int xattr_head(struct objstore *o, const char *path, struct objstore_head *h,
                      struct sky_err *e)
{
    memset(h, 0, sizeof *h);
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    if (!*l.key) {
        os_loc_free(&l);
        return 0;
    }
    char show[OS_SHOW_MAX], *key = NULL;
    os_show(o, &l, show, sizeof show);
    enum sky_kind kind;
    bool dir_exists;
    rc = os_head_meta(o, &l, false, h, &key, &kind, &dir_exists, show, e);
    if (rc == -ENOENT && dir_exists) {
        sky_err_clear(e);
        memset(h, 0, sizeof *h);
        rc = 0;
    }
    free(key);
    os_loc_free(&l);
    return rc;
}

int objstore_getxattr(void *ctx, const char *path, const char *name, void *buf, size_t size,
                      size_t *len, struct sky_err *e)
{
    struct objstore *o = ctx;
    const char *mname = storable_name(o, name);
    if (!mname)
        return OS_FAIL(o, e, ENODATA, "%s: no attribute %s", path, name);
    struct objstore_head head;
    int rc = xattr_head(o, path, &head, e);
    if (rc < 0)
        return rc;
    const char *v = http_headers_get(&head.meta, mname);
    ssize_t n = v ? value_decode(o, v, NULL) : -1;
    if (!v)
        rc = OS_FAIL(o, e, ENODATA, "%s: no attribute %s", path, name);
    else if (n < 0)
        rc = OS_FAIL(o, e, EIO, "%s: attribute %s is not valid base64", path, name);
    else if (size && (size_t)n > size)
        rc = OS_FAIL(o, e, ERANGE, "%s: attribute %s is larger than the buffer", path, name);
    else {
        if (size)
            value_decode(o, v, buf);
        *len = (size_t)n;
    }
    objstore_head_free(&head);
    return rc;
}

int objstore_listxattr(void *ctx, const char *path, char *buf, size_t size, size_t *len,
                       struct sky_err *e)
{
    struct objstore *o = ctx;
    struct objstore_head head;
    int rc = xattr_head(o, path, &head, e);
    if (rc < 0)
        return rc;
    size_t total = 0;
    for (size_t i = 0; i < head.meta.n; i++) {
        const char *h = head.meta.h[i].name;
        if (!os_is_user_name(o, h))
            continue;
        size_t n = strlen(h) + 6;   /* "user." + name + NUL */
        if (size && total + n > size) {
            rc = OS_FAIL(o, e, ERANGE, "%s: attribute list larger than the buffer", path);
            break;
        }
        if (size)
            snprintf(buf + total, n, "user.%s", h);
        total += n;
    }
    *len = total;
    objstore_head_free(&head);
    return rc;
}

struct xattr_edit {
    const struct objstore *o;
    const char *name;           /* metadata name (NAME of user.NAME) */
    const void *value;          /* NULL: remove */
    size_t len;
    int flags;
};

/* Remove item `name` from meta, if there. */
static void header_drop(struct http_headers *meta, const char *name)
{
    for (size_t i = 0; i < meta->n; i++) {
        if (strcasecmp(meta->h[i].name, name) == 0) {
            free(meta->h[i].name);
            free(meta->h[i].value);
            meta->h[i] = meta->h[--meta->n];
            return;
        }
    }
}

/* s3fs's "xattr" item without xattr `name` (a changed or removed item now
 * lives in its own item, or nowhere); its other items stay. */
static int s3fs_xattr_forget(struct http_headers *meta, const char *name)
{
    char *rest;
    int rc = s3fs_xattr_without(http_headers_get(meta, S3FS_XATTR), name, &rest);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0 && rest)
        rc = http_headers_set(meta, S3FS_XATTR, rest);
    else if (rc == 0)
        header_drop(meta, S3FS_XATTR);
    free(rest);
    return rc;
}

static int edit_xattr(void *arg, enum sky_kind kind, struct http_headers *meta,
                      struct sky_err *e)
{
    struct xattr_edit *x = arg;
    bool s3fs = x->o->codec->flags & OBJSTORE_CODEC_S3FS_XATTR;
    char xname[300];
    snprintf(xname, sizeof xname, "user.%s", x->name);
    bool in_s3fs = s3fs && s3fs_xattr_has(http_headers_get(meta, S3FS_XATTR), xname);
    bool exists = http_headers_get(meta, x->name) != NULL || in_s3fs;
    if (in_s3fs && !x->value && s3fs_xattr_forget(meta, xname) < 0)
        return os_oom(e);
    if (!x->value || (x->flags & XATTR_REPLACE_FLAG)) {
        if (!exists)
            return sky_fail(e, ENODATA, "no attribute %s", x->name);
    }
    if (x->value && (x->flags & XATTR_CREATE_FLAG) && exists)
        return sky_fail(e, EEXIST, "attribute %s exists", x->name);
    if (!x->value) {
        header_drop(meta, x->name);
        return 0;
    }
    char *json = NULL;  /* an object s3fs gave xattrs keeps them where s3fs reads them */
    int jrc = s3fs ? s3fs_xattr_with(http_headers_get(meta, S3FS_XATTR), xname, x->value,
                                     x->len, &json)
                   : -EINVAL;
    int rc;
    if (jrc == 0) {
        header_drop(meta, x->name);
        rc = http_headers_set(meta, S3FS_XATTR, json);
        free(json);
    } else if (jrc == -ENOMEM) {
        rc = -ENOMEM;
    } else {
        bool nomem;
        char *v = value_encode(x->o, x->value, x->len, &nomem);
        rc = v ? http_headers_set(meta, x->name, v) : -ENOMEM;
        free(v);
    }
    if (rc < 0)
        return os_oom(e);
    size_t bytes = http_headers_bytes(meta, "");
    if (bytes > x->o->codec->meta_max)
        return sky_fail(e, E2BIG, "the metadata would be %zu bytes, past the limit of %zu",
                        bytes, x->o->codec->meta_max);
    return 0;
}

int objstore_setxattr(void *ctx, const char *path, const char *name, const void *value,
                      size_t len, int flags, struct sky_err *e)
{
    struct objstore *o = ctx;
    const char *mname = storable_name(o, name);
    if (!mname)
        return OS_FAIL(o, e, ENOTSUP, "%s: attribute name %s cannot be stored as metadata "
                       "(user.NAME, NAME of lowercase letters, digits and the marks the "
                       "cloud takes)", path, name);
    value = value ? value : "";
    if ((o->codec->flags & OBJSTORE_CODEC_PLAIN_VALUES) && !plain_value(value, len))
        return OS_FAIL(o, e, ENOTSUP, "%s: value of %s must be printable ASCII without "
                       "leading or trailing spaces", path, name);
    struct xattr_edit x = { o, mname, value, len, flags };
    int rc = edit_meta(o, path, false, edit_xattr, &x, NULL, e);
    if (rc == -ENODATA || rc == -EEXIST || rc == -E2BIG)
        sky_err_prefix(e, "%s '%s': %s", o->proto->type, o->name, path);
    return rc;
}

int objstore_removexattr(void *ctx, const char *path, const char *name, struct sky_err *e)
{
    struct objstore *o = ctx;
    const char *mname = storable_name(o, name);
    if (!mname)
        return OS_FAIL(o, e, ENODATA, "%s: no attribute %s", path, name);
    struct xattr_edit x = { o, mname, NULL, 0, 0 };
    int rc = edit_meta(o, path, false, edit_xattr, &x, NULL, e);
    if (rc == -ENODATA)
        sky_err_prefix(e, "%s '%s': %s", o->proto->type, o->name, path);
    return rc;
}
