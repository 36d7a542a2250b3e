/*
 * s3.c - the S3 cloud kind (type = s3): AWS S3 and compatible servers.
 *
 * A cloud is one bucket plus an optional key prefix; without `bucket` the
 * cloud's root lists the account's buckets as directories and paths are
 * "bucket/key...".  Directories are key prefixes, with an optional
 * zero-byte "dir/" marker object (written by mkdir so empty directories
 * persist; it carries the directory's mode and times).  An empty object
 * "dir" without the slash whose Content-Type is application/x-directory,
 * or whose mode says S_IFDIR, is a directory too, as s3fs and older tools
 * made them: its metadata is the directory's, and rmdir and rename take it
 * along.
 *
 * POSIX metadata follows s3fs so that both can share a bucket:
 * x-amz-meta-mode holds the whole st_mode in decimal (type bits included;
 * symlinks are objects whose body is the target and whose mode has
 * S_IFLNK; FIFOs, sockets and device nodes are empty objects whose mode
 * has S_IFIFO, S_IFSOCK, S_IFCHR or S_IFBLK, devices with their number in
 * x-amz-meta-rdev, decimal), x-amz-meta-uid/-gid are decimal, x-amz-meta-mtime is decimal
 * seconds with a 9-digit fraction when there is one (s3fs 1.90 writes
 * "1620284889.123456789").  Reading also accepts rclone's fractional
 * seconds and RFC 3339 times.
 *
 * Listings carry no user metadata, so listed entries report only size,
 * mtime (Last-Modified), ETag and storage class (their one piece of cloud
 * metadata; get_meta's HEAD gives the content type and user metadata
 * too).  Nothing in a listing tells a symlink from a small file, so every
 * listed object of 1 to 4096 bytes whose version is not known yet is asked
 * (one HEAD, eight at a time) before the listing is answered
 * (backends/linkprobe.h); the answers are remembered per object version
 * for the life of the mount: links with their targets here (by key and
 * ETag), the other files as fingerprints in linkprobe.  Before asking,
 * the caller's metadata cache is consulted (set_known_kinds): a version it
 * already knows (from an earlier mount or `skyfs index` run) is not asked
 * again.  `symlinks = no`
 * turns the questions off (for buckets of many small files and no
 * links: a link is then known only once stat has seen it).  Keys that cannot
 * be file names (names.h) and sizes no file has are skipped with a
 * warning.  Empty objects may be special files or another tool's
 * directory object: their HEAD says, once per version (remembered with
 * the links, by key and ETag, and looked up in the caller's cache too).
 *
 * Extended attributes user.NAME are x-amz-meta-NAME headers (NAME in
 * lowercase letters, digits, '-', '_', '.'; values that are not plain
 * printable text are stored as "b64:" + base64).  Those s3fs keeps in its
 * x-amz-meta-xattr JSON are read too (s3fs_xattr.h), and on an object
 * that has that JSON, xattrs are changed inside it, where s3fs reads
 * them; its other items stay.  Metadata changes
 * (chmod, utime, xattrs) copy the object onto itself with new metadata.
 * A new object gets the Content-Type and user items fs/ passes (driver.h:
 * a rewrite keeps the old object's); items S3 cannot carry, or past its
 * 2 KiB limit of user metadata, are left out.
 *
 * Requests: ListObjectsV2 (delimiter "/", all pages), HEAD, ranged GET
 * with If-Match, PUT (single up to 8 MiB, else multipart with 4 parallel
 * part uploads, aborted on failure; or a streamed multipart upload fed
 * while the file is written, see driver.h), CopyObject (UploadPartCopy above
 * 5 GiB) + DELETE for rename, DeleteObjects in batches of 1000.  All of
 * them go through backends/http.c (retries, pool) signed by sigv4.c.
 *
 * The parsing helpers near the top (s3_parse_*, s3_child_name, ...) are
 * not static so that tests/unit/test_s3_xml.c can check them without a
 * server.
 */
#include "driver.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "http.h"
#include "linkprobe.h"
#include "names.h"
#include "paging.h"
#include "parallel.h"
#include "s3fs_xattr.h"
#include "sigv4.h"
#include "xml.h"

#define S3_SINGLE_PUT_MAX (8ull << 20)
#define S3_MIN_PART       (8ull << 20)
#define S3_MAX_PARTS      10000ull
#define S3_COPY_MAX       (5ull << 30)
#define S3_COPY_PART      (512ull << 20)
#define S3_THREADS        4
#define S3_DELETE_BATCH   1000
#define S3_NAME_MAX       SKY_NAME_MAX
#define S3_LINK_MAX       4096
#define S3FS_XATTR_HEADER "x-amz-meta-xattr"
#define S3_LINK_BUCKETS   1024
#define S3_LINKS_MAX      100000
#define S3_USER_META_MAX  2048  /* bytes of x-amz-meta-* names and values S3 takes */
/* setxattr flags (XATTR_CREATE / XATTR_REPLACE of <sys/xattr.h>) */
#define XATTR_CREATE_FLAG  0x1
#define XATTR_REPLACE_FLAG 0x2

/* ------------------------------------------------------------------ */
/* Parsing helpers (exported for the unit tests)                       */
/* ------------------------------------------------------------------ */

/* Called once per listed object (is_prefix 0, storage_class as listed or
 * NULL) or common prefix (1, storage_class NULL). */
typedef int (*s3_item_fn)(void *arg, const char *key, int is_prefix, const struct sky_attr *a,
                          const char *storage_class);

int s3_parse_iso8601(const char *s, int64_t *ns);
int s3_parse_http_date(const char *s, int64_t *ns);
int s3_parse_meta_mtime(const char *s, int64_t *ns);
int s3_parse_error(const char *body, size_t len, char *code, size_t cap);
int s3_error_errno(long status, const char *code);
int s3_parse_list(const char *body, size_t len, s3_item_fn fn, void *arg, char **next_token,
                  struct sky_err *e);
void s3_attr_from_headers(const struct http_headers *h, struct sky_attr *a);
int s3_child_name(const char *key, size_t plen, int is_prefix, char *out);

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

/* "2009-10-12T17:50:30.000Z" or "...+02:00". */
int s3_parse_iso8601(const char *s, int64_t *ns)
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

/* "Wed, 12 Oct 2009 17:50:00 GMT" (Last-Modified). */
int s3_parse_http_date(const char *s, int64_t *ns)
{
    struct tm tm = {0};
    if (!s || !strptime(s, "%a, %d %b %Y %H:%M:%S", &tm))
        return -EINVAL;
    *ns = (int64_t)timegm(&tm) * 1000000000LL;
    return 0;
}

/* x-amz-meta-mtime: "1700000000" (s3fs), "1700000000.123456789" (rclone),
 * or an RFC 3339 time. */
int s3_parse_meta_mtime(const char *s, int64_t *ns)
{
    if (!s || !*s)
        return -EINVAL;
    if (strchr(s, 'T'))
        return s3_parse_iso8601(s, ns);
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

/* Code of an <Error> body into code (""); returns 1 when the body is an
 * error document. */
int s3_parse_error(const char *body, size_t len, char *code, size_t cap)
{
    struct xml_node *root;
    code[0] = '\0';
    if (!body || !len || xml_parse(body, len, &root, NULL) < 0)
        return 0;
    int is_error = strcmp(root->name, "Error") == 0;
    const char *c = xml_text(root, "Code");
    if (is_error && c)
        snprintf(code, cap, "%s", c);
    xml_free(root);
    return is_error;
}

int s3_error_errno(long status, const char *code)
{
    code = code ? code : "";
    if (strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NoSuchBucket") == 0 ||
        strcmp(code, "NoSuchUpload") == 0)
        return ENOENT;
    if (strcmp(code, "BucketNotEmpty") == 0)
        return ENOTEMPTY;
    if (strcmp(code, "BucketAlreadyOwnedByYou") == 0 ||
        strcmp(code, "BucketAlreadyExists") == 0)
        return EEXIST;
    if (strcmp(code, "EntityTooLarge") == 0)
        return EFBIG;
    if (strcmp(code, "InvalidBucketName") == 0 || strcmp(code, "KeyTooLongError") == 0)
        return ENAMETOOLONG;
    switch (status) {
    case 401:
    case 403:
        return EACCES;
    case 404:
        return ENOENT;
    case 409:
        return EEXIST;
    case 412:
        return ESTALE;
    case 501:
        return ENOTSUP;
    default:
        return EIO;
    }
}

static void etag_copy(char *dst, const char *src)
{
    if (!src) {
        dst[0] = '\0';
        return;
    }
    if (src[0] == '"')
        snprintf(dst, SKY_ETAG_MAX, "%s", src);
    else
        snprintf(dst, SKY_ETAG_MAX, "\"%s\"", src);
}

/* One <Contents> or <CommonPrefixes> of a listing page of `bucket`.  A key
 * that holds a NUL byte once decoded (%00) names no object skyfs can
 * reach (every path is a C string): it is skipped here, with a warning,
 * rather than handed on cut at the NUL, as another key.  A size that no
 * file has (negative, not a number, past SKY_SIZE_MAX) is reported as
 * UINT64_MAX, which listings skip (see listable_size). */
static int emit_item(const struct xml_node *n, int decode, int is_prefix, s3_item_fn fn,
                     void *arg, const char *bucket)
{
    const char *raw = xml_text(n, is_prefix ? "Prefix" : "Key");
    if (!raw)
        return 0;
    char *key = strdup(raw);
    if (!key)
        return -ENOMEM;
    size_t klen = decode ? sky_pct_decode(key, true) : strlen(key);
    if (memchr(key, '\0', klen)) {
        char show[512];
        sky_name_show(key, klen, show, sizeof show);
        LOG_WARN("s3 bucket %s: skipping key \"%s\": not a valid file name (it holds a NUL "
                 "byte)", bucket, show);
        free(key);
        return 0;
    }
    struct sky_attr a = { .kind = is_prefix ? SKY_DIR : SKY_FILE };
    if (!is_prefix) {
        if (sky_size_parse(xml_text(n, "Size"), &a.size) < 0)
            a.size = UINT64_MAX;
        if (s3_parse_iso8601(xml_text(n, "LastModified"), &a.mtime_ns) == 0)
            a.has |= SKY_HAS_MTIME;
        etag_copy(a.etag, xml_text(n, "ETag"));
    }
    const char *sc = is_prefix ? NULL : xml_text(n, "StorageClass");
    int rc = fn(arg, key, is_prefix, &a, sc && *sc ? sc : NULL);
    free(key);
    return rc;
}

/* One ListObjectsV2 page.  *next_token is the continuation token
 * (malloc'd) when the listing goes on, else NULL. */
int s3_parse_list(const char *body, size_t len, s3_item_fn fn, void *arg, char **next_token,
                  struct sky_err *e)
{
    struct xml_node *root;
    *next_token = NULL;
    int rc = xml_parse(body, len, &root, e);
    if (rc < 0)
        return rc;
    if (strcmp(root->name, "ListBucketResult") != 0) {
        rc = sky_fail(e, EBADMSG, "unexpected <%s> answer to a listing", root->name);
        goto done;
    }
    const char *enc = xml_text(root, "EncodingType");
    int decode = enc && strcasecmp(enc, "url") == 0;
    const char *bucket = xml_text(root, "Name");
    bucket = bucket ? bucket : "?";
    /* objects and prefixes, in document order */
    for (const struct xml_node *n = root->child; n && rc == 0; n = n->next) {
        if (strcmp(n->name, "Contents") == 0)
            rc = emit_item(n, decode, 0, fn, arg, bucket);
        else if (strcmp(n->name, "CommonPrefixes") == 0)
            rc = emit_item(n, decode, 1, fn, arg, bucket);
    }
    const char *trunc = xml_text(root, "IsTruncated");
    const char *tok = xml_text(root, "NextContinuationToken");
    if (rc == 0 && trunc && strcmp(trunc, "true") == 0) {
        if (!tok || !*tok)
            rc = sky_fail(e, EBADMSG, "truncated listing without a continuation token");
        else if (!(*next_token = strdup(tok)))
            rc = sky_fail(e, ENOMEM, "out of memory");
    }
done:
    xml_free(root);
    return rc;
}

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

/* Attributes of a HEAD answer (names lowercased by http.c). */
void s3_attr_from_headers(const struct http_headers *h, struct sky_attr *a)
{
    memset(a, 0, sizeof *a);
    a->kind = SKY_FILE;
    const char *len = http_headers_get(h, "content-length");
    a->size = len ? strtoull(len, NULL, 10) : 0;
    etag_copy(a->etag, http_headers_get(h, "etag"));
    if (s3_parse_meta_mtime(http_headers_get(h, "x-amz-meta-mtime"), &a->mtime_ns) == 0 ||
        s3_parse_http_date(http_headers_get(h, "last-modified"), &a->mtime_ns) == 0)
        a->has |= SKY_HAS_MTIME;
    if (s3_parse_meta_mtime(http_headers_get(h, "x-amz-meta-atime"), &a->atime_ns) == 0)
        a->has |= SKY_HAS_ATIME;
    if (s3_parse_meta_mtime(http_headers_get(h, "x-amz-meta-ctime"), &a->ctime_ns) == 0)
        a->has |= SKY_HAS_CTIME;
    uint32_t mode;
    if (parse_u32(http_headers_get(h, "x-amz-meta-mode"), &mode) == 0) {
        a->mode = mode & 07777;
        a->has |= SKY_HAS_MODE;
        if (sky_kind_of_mode(mode) > SKY_FILE)  /* a directory, link or special file */
            a->kind = (enum sky_kind)sky_kind_of_mode(mode);
    }
    uint64_t rdev;
    if ((a->kind == SKY_CHR || a->kind == SKY_BLK) &&
        parse_u64(http_headers_get(h, "x-amz-meta-rdev"), &rdev) == 0)
        a->rdev = rdev;
    if (parse_u32(http_headers_get(h, "x-amz-meta-uid"), &a->uid) == 0)
        a->has |= SKY_HAS_UID;
    if (parse_u32(http_headers_get(h, "x-amz-meta-gid"), &a->gid) == 0)
        a->has |= SKY_HAS_GID;
    /* older tools' directory objects: "dir" with this content type */
    const char *type = http_headers_get(h, "content-type");
    if (a->kind == SKY_FILE && a->size == 0 && type &&
        strncasecmp(type, "application/x-directory", 23) == 0 &&
        (type[23] == '\0' || type[23] == ';' || type[23] == ' '))
        a->kind = SKY_DIR;
    if (a->kind == SKY_DIR) {
        a->size = 0;
        a->etag[0] = '\0';
    }
}

/* ------------------------------------------------------------------ */
/* The cloud                                                           */
/* ------------------------------------------------------------------ */

struct link_entry {
    char *id;                   /* "bucket/key" */
    char etag[SKY_ETAG_MAX];
    enum sky_kind kind;         /* SKY_LINK, or a special kind (SKY_FIFO...) */
    uint64_t rdev;              /* a device's number */
    char *target;               /* links: NULL until read */
    struct link_entry *next;
};

struct s3 {
    char *name;             /* cloud name, for messages */
    bool https;
    char *host;             /* endpoint host[:port] */
    char *region;
    char *bucket;           /* NULL: the account's buckets */
    char *prefix;           /* "" or "a/b" (no slashes at the ends) */
    bool path_style;
    char *access_key, *secret_key, *session_token;
    struct sigv4_creds creds;
    struct http_client *http;

    /* Objects known to be symlinks (from stat, readlink or symlink), by
     * "bucket/key", valid while their ETag is unchanged: listings carry no
     * metadata, so this keeps known links links after a relisting. */
    pthread_mutex_t links_lock;
    struct link_entry *links[S3_LINK_BUCKETS];
    size_t nlinks;
    /* Object versions a HEAD found not to be links (linkprobe.h); NULL
     * with `symlinks = no`: listings then ask nothing. */
    struct linkprobe *probe;
    /* What the caller's metadata cache knows of object versions
     * (set_known_kinds), asked before a HEAD; NULL: nothing. */
    sky_known_kind_fn known_fn;
    void *known_arg;
};

/* Where a path lives: bucket ("" for the account root) and key. */
struct s3_loc {
    char bucket[256];
    char *key;              /* malloc'd; "" for a bucket's root */
};

static void loc_free(struct s3_loc *l)
{
    free(l->key);
    l->key = NULL;
}

/* ---- the known-links cache ---- */

static unsigned link_hash(const char *bucket, const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = bucket; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ '/') * 16777619u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % S3_LINK_BUCKETS;
}

static bool link_is(const struct link_entry *l, const char *bucket, const char *key)
{
    size_t bl = strlen(bucket);
    return strncmp(l->id, bucket, bl) == 0 && l->id[bl] == '/' && strcmp(l->id + bl + 1, key) == 0;
}

/* Remember that bucket/key with `etag` is of `kind` (a link or a special
 * file; target may be NULL: an existing target for the same etag is
 * kept). */
static void typed_put(struct s3 *s, const char *bucket, const char *key, const char *etag,
                      enum sky_kind kind, uint64_t rdev, const char *target)
{
    if (!etag || !*etag)
        return;
    unsigned h = link_hash(bucket, key);
    pthread_mutex_lock(&s->links_lock);
    struct link_entry *l = s->links[h];
    while (l && !link_is(l, bucket, key))
        l = l->next;
    if (!l && s->nlinks < S3_LINKS_MAX && (l = calloc(1, sizeof *l))) {
        if (asprintf(&l->id, "%s/%s", bucket, key) < 0) {
            free(l);
            l = NULL;
        } else {
            l->next = s->links[h];
            s->links[h] = l;
            s->nlinks++;
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
    pthread_mutex_unlock(&s->links_lock);
}

static void links_put(struct s3 *s, const char *bucket, const char *key, const char *etag,
                      const char *target)
{
    typed_put(s, bucket, key, etag, SKY_LINK, 0, target);
}

static void links_drop(struct s3 *s, const char *bucket, const char *key)
{
    unsigned h = link_hash(bucket, key);
    pthread_mutex_lock(&s->links_lock);
    for (struct link_entry **p = &s->links[h]; *p; p = &(*p)->next) {
        if (link_is(*p, bucket, key)) {
            struct link_entry *l = *p;
            *p = l->next;
            free(l->id);
            free(l->target);
            free(l);
            s->nlinks--;
            break;
        }
    }
    pthread_mutex_unlock(&s->links_lock);
}

/* Is bucket/key known to be a link or special file with this etag?  Its
 * kind into *kind, its device number into *rdev; *target gets a copy of a
 * link's target when known (else NULL). */
static bool typed_get(struct s3 *s, const char *bucket, const char *key, const char *etag,
                      enum sky_kind *kind, uint64_t *rdev, char **target)
{
    bool found = false;
    *target = NULL;
    unsigned h = link_hash(bucket, key);
    pthread_mutex_lock(&s->links_lock);
    for (struct link_entry *l = s->links[h]; l; l = l->next) {
        if (link_is(l, bucket, key)) {
            found = strcmp(l->etag, etag) == 0;
            if (found && l->target)
                *target = strdup(l->target);
            *kind = l->kind;
            *rdev = l->rdev;
            break;
        }
    }
    pthread_mutex_unlock(&s->links_lock);
    return found;
}

/* The path (relative to the cloud root) of object bucket/key, or NULL
 * when the key is outside the cloud's prefix or memory runs out. */
static char *cloud_path_of(const struct s3 *s, const char *bucket, const char *key)
{
    char *path = NULL;
    if (!s->bucket) {
        if (asprintf(&path, "%s/%s", bucket, key) < 0)
            path = NULL;
        return path;
    }
    size_t plen = strlen(s->prefix);
    if (plen && (strncmp(key, s->prefix, plen) != 0 || key[plen] != '/'))
        return NULL;
    return strdup(plen ? key + plen + 1 : key);
}

/* Is version `etag` of listed object bucket/key (of `size` bytes) known:
 * to this process (typed_get), or else, when the listing would otherwise
 * ask the cloud about it (an empty object, or one that may be a symlink
 * and is not remembered as a file), to the caller's metadata cache
 * (set_known_kinds), whose answer is then remembered here too?  Fills
 * *kind, *rdev and *target as typed_get does. */
static bool kind_known(struct s3 *s, const char *bucket, const char *key, const char *etag,
                       uint64_t size, enum sky_kind *kind, uint64_t *rdev, char **target)
{
    if (typed_get(s, bucket, key, etag, kind, rdev, target))
        return true;
    bool would_ask = size == 0 || (s->probe && size <= LINKPROBE_SIZE_MAX &&
                                   !linkprobe_known(s->probe, bucket, key, etag));
    if (!s->known_fn || !*etag || !would_ask)
        return false;
    char *path = cloud_path_of(s, bucket, key);
    char link[LINKPROBE_SIZE_MAX + 1] = "";
    bool known = path && s->known_fn(s->known_arg, path, etag, kind, rdev, link, sizeof link);
    free(path);
    if (!known || *kind == SKY_DIR)
        return false;
    if (*kind == SKY_FILE && size > 0) {
        if (s->probe)
            linkprobe_remember(s->probe, bucket, key, etag);
    } else {
        typed_put(s, bucket, key, etag, *kind, *rdev, link[0] ? link : NULL);
        if (*kind == SKY_LINK && link[0])
            *target = strdup(link);
    }
    return true;
}

static void s3_set_known_kinds(void *ctx, sky_known_kind_fn fn, void *arg)
{
    struct s3 *s = ctx;
    s->known_fn = fn;
    s->known_arg = arg;
}

/* Remember what stat or get_meta found bucket/key to be. */
static void typed_note(struct s3 *s, const char *bucket, const char *key,
                       const struct sky_attr *a)
{
    if (a->kind == SKY_LINK || sky_kind_special((int)a->kind))
        typed_put(s, bucket, key, a->etag, a->kind, a->rdev, NULL);
    else
        links_drop(s, bucket, key);
}

/* After a copy from -> to of an object with `etag` (copies keep the
 * ETag of simple objects): carry its link or special status over. */
static void links_move(struct s3 *s, const struct s3_loc *from, const struct s3_loc *to,
                       const char *etag)
{
    char *target;
    enum sky_kind kind;
    uint64_t rdev;
    if (typed_get(s, from->bucket, from->key, etag, &kind, &rdev, &target)) {
        typed_put(s, to->bucket, to->key, etag, kind, rdev, target);
        free(target);
        links_drop(s, from->bucket, from->key);
    }
}

static void links_free(struct s3 *s)
{
    for (int i = 0; i < S3_LINK_BUCKETS; i++) {
        while (s->links[i]) {
            struct link_entry *l = s->links[i];
            s->links[i] = l->next;
            free(l->id);
            free(l->target);
            free(l);
        }
    }
}

static int join_key(const char *a, const char *b, char **out)
{
    int rc = *a && *b ? asprintf(out, "%s/%s", a, b) : asprintf(out, "%s", *a ? a : b);
    if (rc < 0) {
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

static int s3_locate(struct s3 *s, const char *path, struct s3_loc *l, struct sky_err *e)
{
    memset(l, 0, sizeof *l);
    const char *rest = path;
    if (s->bucket) {
        snprintf(l->bucket, sizeof l->bucket, "%s", s->bucket);
    } else {
        size_t n = strcspn(path, "/");
        if (n >= sizeof l->bucket)
            return sky_fail(e, ENAMETOOLONG, "s3 '%s': %.*s...: bucket name too long", s->name,
                            64, path);
        memcpy(l->bucket, path, n);
        l->bucket[n] = '\0';
        rest = path[n] ? path + n + 1 : "";
    }
    if (join_key(s->bucket ? s->prefix : "", rest, &l->key) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    return 0;
}

/* The path for messages: "bucket/key" in account mode, else the key. */
static const char *loc_show(const struct s3_loc *l, char *buf, size_t cap, const struct s3 *s)
{
    if (s->bucket)
        snprintf(buf, cap, "%s", *l->key ? l->key : "/");
    else
        snprintf(buf, cap, "%s%s%s", l->bucket, *l->key ? "/" : "", l->key);
    return buf;
}

static char *s3_url(const struct s3 *s, const char *bucket, const char *key, const char *query)
{
    char *ekey = http_uri_encode(key ? key : "", 1), *url = NULL;
    if (!ekey)
        return NULL;
    const char *scheme = s->https ? "https" : "http";
    const char *q = query && *query ? "?" : "";
    int rc;
    if (!bucket || !*bucket)
        rc = asprintf(&url, "%s://%s/%s%s", scheme, s->host, q, query ? query : "");
    else if (s->path_style)
        rc = asprintf(&url, "%s://%s/%s%s%s%s%s", scheme, s->host, bucket, *ekey ? "/" : "",
                      ekey, q, query ? query : "");
    else
        rc = asprintf(&url, "%s://%s.%s/%s%s%s", scheme, bucket, s->host, ekey, q,
                      query ? query : "");
    free(ekey);
    return rc < 0 ? NULL : url;
}

/* One request to send. */
struct s3_req {
    const char *method;
    const char *bucket;             /* NULL/"": service level */
    const char *key;                /* NULL/"": bucket level */
    const char *query;              /* encoded, without '?' */
    struct http_headers headers;    /* freed by s3_send */
    const void *body;
    uint64_t body_len;
    int fd;                         /* -1 unless the body comes from a file */
    uint64_t off;
    http_sink_fn sink;              /* a 2xx body goes here, at most out_cap bytes */
    void *sink_arg;
    size_t out_cap;
    uint64_t range_off, range_len;  /* range_len > 0: a ranged GET (http.h) */
};

#define S3_REQ(m) { .method = (m), .fd = -1 }

static int s3_send(struct s3 *s, struct s3_req *r, struct http_response *resp, const char *show,
                   struct sky_err *e)
{
    memset(resp, 0, sizeof *resp);
    char hash[65];
    const char *payload = NULL;
    int rc = 0;
    if (r->fd >= 0 && !s->https) {
        rc = sigv4_sha256_fd_hex(r->fd, r->off, r->body_len, hash);
        if (rc < 0) {
            http_headers_free(&r->headers);
            return sky_fail(e, -rc, "s3 '%s': %s %s: reading the local file: %s", s->name,
                            r->method, show, strerror(-rc));
        }
        payload = hash;
    }
    struct sigv4_http_signer signer = { &s->creds, { s->region, "s3" }, payload };
    struct http_request req = {
        .method = r->method, .url = s3_url(s, r->bucket, r->key, r->query),
        .headers = r->headers, .body = r->body, .body_fd = r->fd, .body_off = r->off,
        .body_len = r->body_len, .out_cap = r->out_cap,
        .sink = r->sink, .sink_arg = r->sink_arg,
        .range_header = r->range_len ? "Range" : NULL,
        .range_off = r->range_off, .range_len = r->range_len,
        .sign = sigv4_sign_http, .sign_arg = &signer,
    };
    memset(&r->headers, 0, sizeof r->headers);
    if (!req.url)
        rc = sky_fail(e, ENOMEM, "out of memory");
    else if ((rc = http_do(s->http, &req, resp, e)) < 0)
        sky_err_prefix(e, "s3 '%s': %s %s", s->name, r->method, show);
    free(req.url);
    http_headers_free(&req.headers);
    return rc;
}

/* The error for a non-2xx answer (or a 200 carrying an <Error>). */
static int s3_fail_answer(struct s3 *s, const char *op, const char *show,
                          const struct http_response *resp, struct sky_err *e)
{
    char code[96];
    s3_parse_error(resp->body, resp->body_len, code, sizeof code);
    int err = s3_error_errno(resp->status, code);
    if (!code[0])
        snprintf(code, sizeof code, "%s", resp->status == 404 ? "NotFound"
                                        : resp->status == 403 ? "Forbidden"
                                        : resp->status == 412 ? "PreconditionFailed"
                                                              : "error");
    return sky_fail(e, err, "s3 '%s': %s %s: %ld %s", s->name, op, show, resp->status, code);
}

static bool ok_status(long st)
{
    return st >= 200 && st < 300;
}

/* Send and treat any non-2xx status as an error. */
static int s3_call(struct s3 *s, struct s3_req *r, struct http_response *resp, const char *show,
                   struct sky_err *e)
{
    int rc = s3_send(s, r, resp, show, e);
    if (rc < 0)
        return rc;
    if (!ok_status(resp->status)) {
        rc = s3_fail_answer(s, r->method, show, resp, e);
        http_response_free(resp);
    }
    return rc;
}

/* Parse a 2xx XML body whose root must be `root`; an <Error> root (S3
 * sends those with status 200 for copies and completions) fails. */
static int s3_xml_answer(struct s3 *s, const char *op, const char *show,
                         const struct http_response *resp, const char *root_name,
                         struct xml_node **root, struct sky_err *e)
{
    int rc = xml_parse(resp->body, resp->body_len, root, e);
    if (rc < 0)
        return sky_err_prefix(e, "s3 '%s': %s %s", s->name, op, show);
    if (strcmp((*root)->name, "Error") == 0) {
        const char *code = xml_text(*root, "Code");
        rc = sky_fail(e, s3_error_errno(500, code), "s3 '%s': %s %s: %s", s->name, op, show,
                      code ? code : "error");
    } else if (strcmp((*root)->name, root_name) != 0) {
        rc = sky_fail(e, EIO, "s3 '%s': %s %s: unexpected <%s> answer", s->name, op, show,
                      (*root)->name);
    }
    if (rc < 0) {
        xml_free(*root);
        *root = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Metadata headers                                                    */
/* ------------------------------------------------------------------ */

static int set_num(struct http_headers *h, const char *name, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return http_headers_set(h, name, buf);
}

/* x-amz-meta-mtime the way s3fs writes it: whole seconds, with a
 * 9-digit fraction when there is one ("1620284889.123456789"). */
static void format_mtime(int64_t ns, char *buf, size_t cap)
{
    int64_t sec = ns / 1000000000LL, frac = ns % 1000000000LL;
    if (frac < 0) {
        sec--;
        frac += 1000000000LL;
    }
    if (frac)
        snprintf(buf, cap, "%lld.%09lld", (long long)sec, (long long)frac);
    else
        snprintf(buf, cap, "%lld", (long long)sec);
}

/* x-amz-meta-mtime, -atime and -ctime for the `which` bits of a, in
 * s3fs's form: 0 or -ENOMEM. */
static int add_times(struct http_headers *h, const struct sky_attr *a, unsigned which)
{
    static const struct { unsigned bit; const char *name; size_t off; } times[] = {
        { SKY_HAS_MTIME, "x-amz-meta-mtime", offsetof(struct sky_attr, mtime_ns) },
        { SKY_HAS_ATIME, "x-amz-meta-atime", offsetof(struct sky_attr, atime_ns) },
        { SKY_HAS_CTIME, "x-amz-meta-ctime", offsetof(struct sky_attr, ctime_ns) },
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        if (!(which & times[i].bit))
            continue;
        char t[48];
        int64_t ns;
        memcpy(&ns, (const char *)a + times[i].off, sizeof ns);
        format_mtime(ns, t, sizeof t);
        rc |= http_headers_set(h, times[i].name, t);
    }
    return rc ? -ENOMEM : 0;
}

/* x-amz-meta-* for the `which` bits of a; the mode always carries the
 * type bits of `kind`.  Links and directories always get a mode so that
 * their type survives. */
static int add_meta(struct http_headers *h, enum sky_kind kind, const struct sky_attr *a,
                    unsigned which)
{
    int rc = 0;
    uint32_t perm = kind == SKY_LINK ? 0777 : kind == SKY_DIR ? 0755 : 0644;
    if (a && (which & SKY_HAS_MODE))
        perm = a->mode & 07777;
    if ((a && (which & SKY_HAS_MODE)) || kind != SKY_FILE)
        rc |= set_num(h, "x-amz-meta-mode", (long long)(sky_kind_type_bits((int)kind) | perm));
    if (a && (which & SKY_HAS_UID))
        rc |= set_num(h, "x-amz-meta-uid", a->uid);
    if (a && (which & SKY_HAS_GID))
        rc |= set_num(h, "x-amz-meta-gid", a->gid);
    if (a)
        rc |= add_times(h, a, which);
    return rc ? -ENOMEM : 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Listing                                                             */
/* ------------------------------------------------------------------ */

static int add_query(char *q, size_t cap, const char *name, const char *value)
{
    char *enc = http_uri_encode(value, 0);
    if (!enc)
        return -ENOMEM;
    size_t len = strlen(q);
    int n = snprintf(q + len, cap - len, "%s%s=%s", len ? "&" : "", name, enc);
    free(enc);
    return n < 0 || (size_t)n >= cap - len ? -E2BIG : 0;
}

/* Passes each listed item on, telling the listing's guard its name. */
struct guarded_items {
    struct list_guard guard;
    s3_item_fn fn;
    void *arg;
};

static int guarded_item(void *arg, const char *key, int is_prefix, const struct sky_attr *a,
                        const char *storage_class)
{
    struct guarded_items *g = arg;
    list_guard_item(&g->guard, key);
    return g->fn(g->arg, key, is_prefix, a, storage_class);
}

/* ListObjectsV2 of `prefix` in `bucket`, every page unless max_keys > 0
 * (then one page of at most max_keys).  A server that repeats its
 * continuation token or sends pages without progress stops the listing
 * (backends/paging.h). */
static int s3_list_keys(struct s3 *s, const char *bucket, const char *prefix, bool delimited,
                        int max_keys, s3_item_fn fn, void *arg, const char *show,
                        struct sky_err *e)
{
    char *token = NULL;
    struct guarded_items g = { LIST_GUARD_INIT, fn, arg };
    int rc = 0;
    do {
        char query[4096] = "";
        char mk[16];
        snprintf(mk, sizeof mk, "%d", max_keys > 0 ? max_keys : 1000);
        rc = add_query(query, sizeof query, "list-type", "2");
        if (rc == 0 && token)
            rc = add_query(query, sizeof query, "continuation-token", token);
        if (rc == 0 && delimited)
            rc = add_query(query, sizeof query, "delimiter", "/");
        if (rc == 0)
            rc = add_query(query, sizeof query, "encoding-type", "url");
        if (rc == 0)
            rc = add_query(query, sizeof query, "max-keys", mk);
        if (rc == 0)
            rc = add_query(query, sizeof query, "prefix", prefix);
        free(token);
        token = NULL;
        if (rc < 0) {
            rc = sky_fail(e, -rc, "s3 '%s': LIST %s: %s", s->name, show,
                          rc == -E2BIG ? "prefix or page token too long" : strerror(-rc));
            break;
        }
        struct s3_req r = S3_REQ("GET");
        r.bucket = bucket;
        r.query = query;
        struct http_response resp;
        rc = s3_call(s, &r, &resp, show, e);
        if (rc < 0)
            break;
        rc = s3_parse_list(resp.body, resp.body_len, guarded_item, &g, &token, e);
        if (rc < 0 && e && e->code == EBADMSG)
            sky_err_prefix(e, "s3 '%s': LIST %s", s->name, show);
        if (rc == 0 && max_keys <= 0 && list_guard_page(&g.guard, resp.body_len, token, e) < 0)
            rc = sky_err_prefix(e, "s3 '%s': LIST %s", s->name, show);
        http_response_free(&resp);
    } while (rc == 0 && token && max_keys <= 0);
    free(token);
    list_guard_free(&g.guard);
    return rc;
}

static bool valid_name(const char *name, size_t len)
{
    return sky_name_problem(name, len) == NULL;
}

/* A listed size a file can have (emit_item marks the others UINT64_MAX). */
static bool listable_size(const struct sky_attr *a)
{
    return a->kind == SKY_DIR || a->size <= SKY_SIZE_MAX;
}

/* The warning for a listed key that is skipped: why, and the key in a
 * printable form. */
static void warn_skipped(const struct s3 *s, const char *bucket, const char *key,
                         const char *name, size_t len)
{
    char show[600];
    sky_name_show(key, strlen(key), show, sizeof show);
    const char *why = sky_name_problem(name, len);
    LOG_WARN("s3 '%s': skipping key \"%s\" in bucket %s: %s%s%s", s->name, show, bucket,
             why ? "not a valid file name (its name " : "its size is not a file size",
             why ? why : "", why ? ")" : "");
}

/* The child name of a listed key under a prefix of plen bytes, into
 * out[S3_NAME_MAX + 1]: 1 for a valid name, 0 for the directory's own
 * marker, -1 for a key that cannot be a file name. */
int s3_child_name(const char *key, size_t plen, int is_prefix, char *out)
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

static enum sky_kind head_kind(struct s3 *s, const char *bucket, const char *key,
                               const char *show, uint64_t *rdev);

struct dir_lister {
    struct s3 *s;
    const char *bucket;
    const char *prefix;     /* "dir/" or "" */
    size_t plen;
    sky_list_cb cb;
    void *arg;
    bool found;             /* anything at all under the prefix */
    struct linkprobe_batch batch;   /* files that may be symlinks wait here */
};

static int on_dir_item(void *arg, const char *key, int is_prefix, const struct sky_attr *a,
                       const char *storage_class)
{
    struct dir_lister *d = arg;
    if (strncmp(key, d->prefix, d->plen) != 0)
        return 0;
    d->found = true;
    char name[S3_NAME_MAX + 1];
    int kind = s3_child_name(key, d->plen, is_prefix, name);
    if (kind == 0)
        return 0;       /* the directory's own marker */
    if (kind < 0 || !listable_size(a)) {
        size_t len = strlen(key + d->plen);
        warn_skipped(d->s, d->bucket, key, key + d->plen, len - (is_prefix && len));
        return 0;
    }
    /* the listing's one piece of cloud metadata (borrowed, never freed) */
    struct sky_objmeta om = { .storage_class = (char *)storage_class };
    struct sky_dirent ent = { .name = name, .attr = *a, .link = NULL,
                              .meta = storage_class ? &om : NULL };
    char *target = NULL;
    enum sky_kind known;
    uint64_t rdev;
    if (!is_prefix && kind_known(d->s, d->bucket, key, a->etag, a->size, &known, &rdev, &target)) {
        ent.attr.kind = known;
        ent.attr.rdev = rdev;
        if (known == SKY_LINK) {
            ent.attr.mode = 0777;
            ent.attr.has |= SKY_HAS_MODE;
            ent.link = target;
        }
    } else if (!is_prefix && a->size == 0) {
        /* an empty object may be a special file or another tool's
         * directory object ("dir", no slash): its HEAD says, once per
         * version (remembered by ETag, empty plain files too) */
        ent.attr.kind = head_kind(d->s, d->bucket, key, key, &ent.attr.rdev);
        typed_put(d->s, d->bucket, key, a->etag, ent.attr.kind, ent.attr.rdev, NULL);
    }
    if (ent.attr.kind == SKY_DIR) {
        ent.attr.size = 0;
        ent.attr.etag[0] = '\0';
    }
    int rc = ent.attr.kind == SKY_FILE && d->s->probe ? linkprobe_add(&d->batch, key, &ent)
                                                      : d->cb(d->arg, &ent);
    free(target);
    return rc;
}

static int list_buckets(struct s3 *s, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct s3_req r = S3_REQ("GET");
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, "/", e);
    if (rc < 0)
        return rc;
    struct xml_node *root;
    rc = s3_xml_answer(s, "LIST", "/", &resp, "ListAllMyBucketsResult", &root, e);
    http_response_free(&resp);
    if (rc < 0)
        return rc;
    const struct xml_node *b = xml_child(xml_child(root, "Buckets"), "Bucket");
    for (; b && rc == 0; b = xml_next(b)) {
        const char *name = xml_text(b, "Name");
        if (!name || !valid_name(name, strlen(name)))
            continue;
        struct sky_dirent ent = { .name = name, .attr = { .kind = SKY_DIR } };
        if (s3_parse_iso8601(xml_text(b, "CreationDate"), &ent.attr.mtime_ns) == 0)
            ent.attr.has |= SKY_HAS_MTIME;
        rc = cb(arg, &ent);
    }
    xml_free(root);
    return rc;
}

static int s3_head(struct s3 *s, const char *bucket, const char *key, struct http_response *resp,
                   const char *show, struct sky_err *e)
{
    struct s3_req r = S3_REQ("HEAD");
    r.bucket = bucket;
    r.key = key;
    return s3_send(s, &r, resp, show, e);
}

/* linkprobe's question (linkprobe.h): what is `key` of `bucket`?  One
 * HEAD; a symlink found is remembered with the other known links. */
struct probe_where {
    struct s3 *s;
    const char *bucket;
};

static int probe_ask(void *arg, const char *key, struct sky_attr *out, struct sky_err *e)
{
    struct probe_where *w = arg;
    char show[1024];
    if (w->s->bucket)
        snprintf(show, sizeof show, "%s", key);
    else
        snprintf(show, sizeof show, "%s/%s", w->bucket, key);
    struct http_response resp;
    int rc = s3_head(w->s, w->bucket, key, &resp, show, e);
    if (rc < 0)
        return rc;
    if (ok_status(resp.status)) {
        s3_attr_from_headers(&resp.headers, out);
        typed_note(w->s, w->bucket, key, out);
    } else if (resp.status == 404) {
        rc = -ENOENT;
    } else if (resp.status == 403) {
        memset(out, 0, sizeof *out);    /* unreadable: a file, asked again next time */
        out->kind = SKY_FILE;
    } else {
        rc = s3_fail_answer(w->s, "HEAD", show, &resp, e);
    }
    http_response_free(&resp);
    return rc;
}

/* What object bucket/key is, by its HEAD (SKY_FILE when it cannot be
 * told); *rdev a device's number. */
static enum sky_kind head_kind(struct s3 *s, const char *bucket, const char *key,
                               const char *show, uint64_t *rdev)
{
    struct http_response resp;
    struct sky_err e = {0};
    enum sky_kind kind = SKY_FILE;
    *rdev = 0;
    if (s3_head(s, bucket, key, &resp, show, &e) == 0) {
        if (ok_status(resp.status)) {
            struct sky_attr a;
            s3_attr_from_headers(&resp.headers, &a);
            kind = a.kind;
            *rdev = a.rdev;
        }
        http_response_free(&resp);
    }
    return kind;
}

static int s3_list(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct s3 *s = ctx;
    if (!s->bucket && !*dir)
        return list_buckets(s, cb, arg, e);
    struct s3_loc l;
    int rc = s3_locate(s, dir, &l, e);
    if (rc < 0)
        return rc;
    char show[1024], *prefix = NULL;
    loc_show(&l, show, sizeof show, s);
    if (asprintf(&prefix, "%s%s", l.key, *l.key ? "/" : "") < 0) {
        loc_free(&l);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    struct probe_where where = { s, l.bucket };
    struct dir_lister d = { s, l.bucket, prefix, strlen(prefix), cb, arg, false,
                            { .memo = s->probe, .scope = l.bucket, .ask = probe_ask,
                              .ask_arg = &where, .cb = cb, .cb_arg = arg, .e = e } };
    rc = s3_list_keys(s, l.bucket, prefix, true, 0, on_dir_item, &d, show, e);
    if (rc == 0)
        rc = linkprobe_flush(&d.batch);
    linkprobe_batch_free(&d.batch);
    bool is_root = !*dir || (!s->bucket && !strchr(dir, '/'));
    if (rc == 0 && !d.found && !is_root) {
        /* nothing under dir/: a file, or nothing at all */
        struct http_response resp;
        rc = s3_head(s, l.bucket, l.key, &resp, show, e);
        if (rc == 0)
            rc = ok_status(resp.status)
                     ? sky_fail(e, ENOTDIR, "s3 '%s': LIST %s: not a directory", s->name, show)
                     : sky_fail(e, ENOENT, "s3 '%s': LIST %s: no such directory", s->name, show);
        http_response_free(&resp);
    }
    free(prefix);
    loc_free(&l);
    return rc;
}

/* Flat listing for `skyfs index`: every key under dir/, no delimiter. */
struct tree_lister {
    struct s3 *s;
    const char *bucket;
    size_t plen;
    sky_list_cb cb;
    void *arg;
    struct linkprobe_batch batch;   /* files that may be symlinks wait here */
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

static int on_tree_item(void *arg, const char *key, int is_prefix, const struct sky_attr *a,
                        const char *storage_class)
{
    struct tree_lister *t = arg;
    const char *rel = key + t->plen;
    size_t len = strlen(rel);
    struct sky_attr attr = *a;
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
        warn_skipped(t->s, t->bucket, key, rel + start, end - start);
        return 0;
    }
    char *name = strndup(rel, len);
    if (!name)
        return -ENOMEM;
    struct sky_objmeta om = { .storage_class = (char *)storage_class };
    struct sky_dirent ent = { .name = name, .attr = attr, .link = NULL,
                              .meta = storage_class && attr.kind != SKY_DIR ? &om : NULL };
    char *target = NULL;
    enum sky_kind known;
    uint64_t rdev;
    if (attr.kind == SKY_FILE &&
        kind_known(t->s, t->bucket, key, attr.etag, attr.size, &known, &rdev, &target)) {
        ent.attr.kind = known;
        ent.attr.rdev = rdev;
        if (known == SKY_LINK) {
            ent.attr.mode = 0777;
            ent.attr.has |= SKY_HAS_MODE;
            ent.link = target;
        }
    } else if (attr.kind == SKY_FILE && attr.size == 0) {
        /* as in a listing of one directory: its HEAD says, once per
         * version (the index keeps what it stores, so it must be right) */
        ent.attr.kind = head_kind(t->s, t->bucket, key, key, &ent.attr.rdev);
        typed_put(t->s, t->bucket, key, attr.etag, ent.attr.kind, ent.attr.rdev, NULL);
        if (ent.attr.kind == SKY_DIR) {
            ent.attr.size = 0;
            ent.attr.etag[0] = '\0';
            ent.meta = NULL;
        }
    }
    int rc = ent.attr.kind == SKY_FILE && t->s->probe ? linkprobe_add(&t->batch, key, &ent)
                                                      : t->cb(t->arg, &ent);
    free(target);
    free(name);
    return rc;
}

static int s3_list_tree(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct s3 *s = ctx;
    if (!s->bucket && !*dir)
        return sky_fail(e, ENOTSUP, "s3 '%s': a flat listing needs a bucket", s->name);
    struct s3_loc l;
    int rc = s3_locate(s, dir, &l, e);
    if (rc < 0)
        return rc;
    char show[1024], *prefix = NULL;
    loc_show(&l, show, sizeof show, s);
    if (asprintf(&prefix, "%s%s", l.key, *l.key ? "/" : "") < 0) {
        loc_free(&l);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    struct probe_where where = { s, l.bucket };
    struct tree_lister t = { s, l.bucket, strlen(prefix), cb, arg,
                             { .memo = s->probe, .scope = l.bucket, .ask = probe_ask,
                               .ask_arg = &where, .cb = cb, .cb_arg = arg, .e = e } };
    rc = s3_list_keys(s, l.bucket, prefix, false, 0, on_tree_item, &t, show, e);
    if (rc == 0)
        rc = linkprobe_flush(&t.batch);
    linkprobe_batch_free(&t.batch);
    free(prefix);
    loc_free(&l);
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

static int on_first_key(void *arg, const char *key, int is_prefix, const struct sky_attr *a,
                        const char *storage_class)
{
    struct first_key *f = arg;
    f->count++;
    if (!f->key)
        f->key = strdup(key);
    if (!f->marker || strcmp(key, f->marker) != 0)
        f->other = true;
    return 0;
}

/* Probe "key/": *count objects seen (max `max`), whether besides the
 * marker, and whether the marker itself exists. */
static int probe_dir(struct s3 *s, const struct s3_loc *l, int max, bool *any, bool *marker,
                     bool *others, const char *show, struct sky_err *e)
{
    char *prefix;
    if (asprintf(&prefix, "%s/", l->key) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    struct first_key f = { .marker = prefix };
    int rc = s3_list_keys(s, l->bucket, prefix, false, max, on_first_key, &f, show, e);
    *any = f.count > 0;
    *marker = f.key && strcmp(f.key, prefix) == 0;
    *others = f.other;
    free(f.key);
    free(prefix);
    return rc;
}

static void dir_attr(struct sky_attr *out)
{
    memset(out, 0, sizeof *out);
    out->kind = SKY_DIR;
}

/* Attributes of the marker "key/" merged into a directory's attrs. */
static int stat_marker(struct s3 *s, const struct s3_loc *l, struct sky_attr *out,
                       const char *show, struct sky_err *e)
{
    char *mkey;
    if (asprintf(&mkey, "%s/", l->key) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    struct http_response resp;
    int rc = s3_head(s, l->bucket, mkey, &resp, show, e);
    free(mkey);
    dir_attr(out);
    if (rc == 0 && ok_status(resp.status)) {
        s3_attr_from_headers(&resp.headers, out);
        out->kind = SKY_DIR;
        out->size = 0;
        out->etag[0] = '\0';
    }
    http_response_free(&resp);
    return rc;
}

static int stat_bucket(struct s3 *s, const struct s3_loc *l, struct sky_attr *out,
                       const char *show, struct sky_err *e)
{
    struct http_response resp;
    int rc = s3_head(s, l->bucket, NULL, &resp, show, e);
    if (rc == 0 && !ok_status(resp.status))
        rc = s3_fail_answer(s, "HEAD", show, &resp, e);
    http_response_free(&resp);
    if (rc == 0)
        dir_attr(out);
    return rc;
}

static int s3_stat(void *ctx, const char *path, struct sky_attr *out, struct sky_err *e)
{
    struct s3 *s = ctx;
    if (!*path) {
        dir_attr(out);
        return 0;
    }
    struct s3_loc l;
    int rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    char show[1024];
    loc_show(&l, show, sizeof show, s);
    if (!*l.key) {
        rc = stat_bucket(s, &l, out, show, e);
        loc_free(&l);
        return rc;
    }
    struct http_response resp;
    rc = s3_head(s, l.bucket, l.key, &resp, show, e);
    if (rc == 0 && ok_status(resp.status)) {
        s3_attr_from_headers(&resp.headers, out);
        typed_note(s, l.bucket, l.key, out);
    } else if (rc == 0 && resp.status == 404) {
        bool any, marker, others;
        rc = probe_dir(s, &l, 1, &any, &marker, &others, show, e);
        if (rc == 0 && !any)
            rc = sky_fail(e, ENOENT, "s3 '%s': HEAD %s: 404 NoSuchKey", s->name, show);
        else if (rc == 0 && marker)
            rc = stat_marker(s, &l, out, show, e);
        else if (rc == 0)
            dir_attr(out);
    } else if (rc == 0) {
        rc = s3_fail_answer(s, "HEAD", show, &resp, e);
    }
    http_response_free(&resp);
    loc_free(&l);
    return rc;
}

/* ------------------------------------------------------------------ */
/* read                                                                */
/* ------------------------------------------------------------------ */

/* Servers that ignore If-Match still send the object's ETag: compare. */
static bool etag_differs(const char *want, const struct http_response *resp)
{
    if (!want || !*want)
        return false;
    char have[SKY_ETAG_MAX];
    etag_copy(have, http_headers_get(&resp->headers, "etag"));
    return have[0] && strcmp(have, want) != 0;
}

/* GET [off, off+len) of path, to sink as it arrives (driver.h). */
static int s3_read(void *ctx, const char *path, const char *etag, uint64_t off, uint64_t len,
                   sky_sink_fn sink, void *sink_arg, struct sky_err *e)
{
    struct s3 *s = ctx;
    if (len == 0)
        return 0;
    struct s3_loc l;
    int rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    char show[1024];
    loc_show(&l, show, sizeof show, s);
    struct s3_req r = S3_REQ("GET");
    r.bucket = l.bucket;
    r.key = l.key;
    r.sink = sink;
    r.sink_arg = sink_arg;
    r.out_cap = (size_t)len;
    r.range_off = off;
    r.range_len = len;      /* http.c asks for it and checks the answer */
    if (etag && *etag && http_headers_set(&r.headers, "If-Match", etag) < 0) {
        http_headers_free(&r.headers);
        loc_free(&l);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    struct http_response resp;
    rc = s3_send(s, &r, &resp, show, e);
    bool delivered = rc == 0 && (resp.status == 200 || resp.status == 206);
    if (delivered && etag_differs(etag, &resp)) {
        rc = sky_fail(e, ESTALE, "s3 '%s': GET %s: changed since it was opened", s->name, show);
    } else if (rc == 0 && !delivered && resp.status != 416) {  /* 416: past the end */
        if (resp.status == 412)
            rc = sky_fail(e, ESTALE, "s3 '%s': GET %s: 412 changed since it was opened",
                          s->name, show);
        else
            rc = s3_fail_answer(s, "GET", show, &resp, e);
    }
    http_response_free(&resp);
    loc_free(&l);
    return rc;
}

/* ------------------------------------------------------------------ */
/* write: single PUT or parallel multipart                             */
/* ------------------------------------------------------------------ */

/* PUT key with a body from fd or memory; *etag_out gets the ETag. */
static int put_object(struct s3 *s, const struct s3_loc *l, const char *key, int fd,
                      const void *mem, uint64_t size, struct http_headers *hdrs,
                      char *etag_out, const char *show, struct sky_err *e)
{
    struct s3_req r = S3_REQ("PUT");
    r.bucket = l->bucket;
    r.key = key;
    r.headers = *hdrs;
    memset(hdrs, 0, sizeof *hdrs);
    r.fd = mem ? -1 : fd;
    r.body = mem;
    r.body_len = size;
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, show, e);
    if (rc == 0 && etag_out)
        etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
    http_response_free(&resp);
    return rc;
}

struct mpu {
    struct s3 *s;
    const struct s3_loc *l;
    const char *show;
    char *upload_id;            /* as returned */
    char *enc_upload_id;        /* encoded for the query */
    int fd;                     /* source file, or -1 for copy parts */
    const char *copy_source;    /* "/bucket/key" encoded, for UploadPartCopy */
    uint64_t size, part_size;
    unsigned nparts;
    char (*etags)[SKY_ETAG_MAX];
};

/* Part n (from 1) of the upload: bytes [off, off + len) of fd, or of
 * m->copy_source; its ETag goes to etag_out. */
static int send_part(struct mpu *m, int fd, unsigned n, uint64_t off, uint64_t len,
                     char etag_out[SKY_ETAG_MAX], struct sky_err *e)
{
    char query[512], range[80];
    snprintf(query, sizeof query, "partNumber=%u&uploadId=%s", n, m->enc_upload_id);
    struct s3_req r = S3_REQ("PUT");
    r.bucket = m->l->bucket;
    r.key = m->l->key;
    r.query = query;
    if (m->copy_source) {
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1));
        if (http_headers_set(&r.headers, "x-amz-copy-source", m->copy_source) < 0 ||
            http_headers_set(&r.headers, "x-amz-copy-source-range", range) < 0) {
            http_headers_free(&r.headers);
            return sky_fail(e, ENOMEM, "out of memory");
        }
    } else {
        r.fd = fd;
        r.off = off;
        r.body_len = len;
    }
    struct http_response resp;
    int rc = s3_call(m->s, &r, &resp, m->show, e);
    if (rc < 0)
        return rc;
    if (m->copy_source) {
        struct xml_node *root;
        rc = s3_xml_answer(m->s, "COPY", m->show, &resp, "CopyPartResult", &root, e);
        if (rc == 0) {
            etag_copy(etag_out, xml_text(root, "ETag"));
            xml_free(root);
        }
    } else {
        etag_copy(etag_out, http_headers_get(&resp.headers, "etag"));
    }
    http_response_free(&resp);
    if (rc == 0 && !etag_out[0])
        rc = sky_fail(e, EIO, "s3 '%s': PUT %s: part %u answered without an ETag",
                      m->s->name, m->show, n);
    return rc;
}

/* Part n (from 1) of m->size bytes cut in m->part_size pieces. */
static int upload_part(struct mpu *m, unsigned n, struct sky_err *e)
{
    uint64_t off = (uint64_t)(n - 1) * m->part_size;
    uint64_t len = m->size - off < m->part_size ? m->size - off : m->part_size;
    return send_part(m, m->fd, n, off, len, m->etags[n - 1], e);
}

/* parallel_for job: item i is part number i + 1 */
static int part_job(void *arg, size_t i, struct sky_err *e)
{
    return upload_part(arg, (unsigned)i + 1, e);
}

static int run_parts(struct mpu *m, struct sky_err *e)
{
    return parallel_for(m->nparts, S3_THREADS, part_job, m, e);
}

static int mpu_begin(struct mpu *m, struct http_headers *hdrs, struct sky_err *e)
{
    struct s3_req r = S3_REQ("POST");
    r.bucket = m->l->bucket;
    r.key = m->l->key;
    r.query = "uploads";
    r.headers = *hdrs;
    memset(hdrs, 0, sizeof *hdrs);
    struct http_response resp;
    int rc = s3_call(m->s, &r, &resp, m->show, e);
    if (rc < 0)
        return rc;
    struct xml_node *root;
    rc = s3_xml_answer(m->s, "POST", m->show, &resp, "InitiateMultipartUploadResult", &root, e);
    http_response_free(&resp);
    if (rc < 0)
        return rc;
    const char *id = xml_text(root, "UploadId");
    bool have_id = id && *id;
    if (have_id) {
        m->upload_id = strdup(id);
        m->enc_upload_id = http_uri_encode(id, 0);
    }
    xml_free(root);
    if (!have_id)
        return sky_fail(e, EIO, "s3 '%s': POST %s: no UploadId in the answer", m->s->name,
                        m->show);
    if (!m->upload_id || !m->enc_upload_id)
        return sky_fail(e, ENOMEM, "out of memory");
    return 0;
}

static char *complete_body(const struct mpu *m)
{
    size_t cap = 128 + (size_t)m->nparts * (64 + SKY_ETAG_MAX * 6);
    char *body = malloc(cap);
    if (!body)
        return NULL;
    size_t len = (size_t)snprintf(body, cap, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < m->nparts; i++) {
        char *etag = xml_escape(m->etags[i]);
        if (!etag) {
            free(body);
            return NULL;
        }
        len += (size_t)snprintf(body + len, cap - len,
                                "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1,
                                etag);
        free(etag);
    }
    snprintf(body + len, cap - len, "</CompleteMultipartUpload>");
    return body;
}

/* The ETag S3 gives a completed multipart upload: the MD5 of the parts'
 * binary MD5s, "-" and the number of parts ("\"9b2cf5...-3\""), into
 * out[SKY_ETAG_MAX] as etag_copy keeps ETags; "" if a part ETag is not an
 * MD5. */
static void multipart_etag(const struct mpu *m, char *out)
{
    out[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return;
    }
    for (unsigned i = 0; i < m->nparts; i++) {
        const char *t = m->etags[i];
        t += *t == '"';
        unsigned char md[16];
        for (int k = 0; k < 16; k++) {
            unsigned v;
            if (!isxdigit((unsigned char)t[2 * k]) || !isxdigit((unsigned char)t[2 * k + 1]) ||
                sscanf(t + 2 * k, "%2x", &v) != 1) {
                EVP_MD_CTX_free(ctx);
                return;
            }
            md[k] = (unsigned char)v;
        }
        EVP_DigestUpdate(ctx, md, sizeof md);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    char etag[SKY_ETAG_MAX];
    snprintf(etag, sizeof etag, "\"%s-%u\"", hex, m->nparts);
    etag_copy(out, etag);
}

/* The ETag of a single-part object of `size` bytes of fd: its MD5
 * (servers such as s3rver give completed uploads that one); "" when fd
 * cannot be read. */
static void content_etag(int fd, uint64_t size, char *out)
{
    out[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *buf = malloc(1 << 20);
    int ok = ctx && buf && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1;
    for (uint64_t off = 0; ok && off < size;) {
        size_t want = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got <= 0)
            ok = 0;
        else {
            EVP_DigestUpdate(ctx, buf, (size_t)got);
            off += (uint64_t)got;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1) {
        char etag[SKY_ETAG_MAX] = "\"";
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(etag + 1 + 2 * i, 3, "%02x", md[i]);
        strcat(etag, "\"");
        etag_copy(out, etag);
    }
    free(buf);
    EVP_MD_CTX_free(ctx);
}

/* A completion was retried and its last answer is an error (NoSuchUpload:
 * the first attempt, whose answer was lost, completed it).  Does the key
 * now hold this upload: `size` bytes under the ETag of these parts (or,
 * from servers that give completed uploads a plain MD5, the MD5 of fd)?
 * Then *etag_out gets it and the completion succeeded. */
static bool upload_landed(struct mpu *m, int fd, uint64_t size, char *etag_out)
{
    struct http_response head;
    struct sky_err ignored = { 0 };
    if (s3_head(m->s, m->l->bucket, m->l->key, &head, m->show, &ignored) < 0)
        return false;
    char have[SKY_ETAG_MAX], want[SKY_ETAG_MAX];
    etag_copy(have, http_headers_get(&head.headers, "etag"));
    const char *len = http_headers_get(&head.headers, "content-length");
    bool same = ok_status(head.status) && have[0] && len && strtoull(len, NULL, 10) == size;
    http_response_free(&head);
    if (!same)
        return false;
    multipart_etag(m, want);
    if (!want[0] || strcmp(have, want) != 0) {
        if (fd < 0)
            return false;
        content_etag(fd, size, want);
        if (!want[0] || strcmp(have, want) != 0)
            return false;
    }
    LOG_INFO("s3 '%s': POST %s: the answer to the completion was lost; the object holds the "
             "upload", m->s->name, m->show);
    snprintf(etag_out, SKY_ETAG_MAX, "%s", have);
    return true;
}

/* CompleteMultipartUpload of m's parts, the object being `size` bytes of
 * fd (-1 for a copy).  When the answer of a first attempt was lost and the
 * retry fails, what the key holds decides (upload_landed). */
static int mpu_complete(struct mpu *m, int fd, uint64_t size, char *etag_out,
                        struct sky_err *e)
{
    char *body = complete_body(m), query[512];
    if (!body)
        return sky_fail(e, ENOMEM, "out of memory");
    snprintf(query, sizeof query, "uploadId=%s", m->enc_upload_id);
    struct s3_req r = S3_REQ("POST");
    r.bucket = m->l->bucket;
    r.key = m->l->key;
    r.query = query;
    r.body = body;
    r.body_len = strlen(body);
    http_headers_set(&r.headers, "Content-Type", "application/xml");
    struct http_response resp;
    int rc = s3_send(m->s, &r, &resp, m->show, e);
    free(body);
    if (rc < 0)
        return rc;
    bool retried = http_retried(&resp);
    struct xml_node *root = NULL;
    if (!ok_status(resp.status))
        rc = s3_fail_answer(m->s, "POST", m->show, &resp, e);
    else
        rc = s3_xml_answer(m->s, "POST", m->show, &resp, "CompleteMultipartUploadResult", &root,
                           e);
    http_response_free(&resp);
    if (rc == 0) {
        etag_copy(etag_out, xml_text(root, "ETag"));
        xml_free(root);
    } else if (retried && upload_landed(m, fd, size, etag_out)) {
        sky_err_clear(e);
        rc = 0;
    }
    return rc;
}

static void mpu_abort(struct mpu *m)
{
    char query[512];
    snprintf(query, sizeof query, "uploadId=%s", m->enc_upload_id);
    struct s3_req r = S3_REQ("DELETE");
    r.bucket = m->l->bucket;
    r.key = m->l->key;
    r.query = query;
    struct http_response resp;
    struct sky_err ignored;
    if (s3_send(m->s, &r, &resp, m->show, &ignored) == 0)
        http_response_free(&resp);
}

/* Multipart upload of m->size bytes (from m->fd, or copied from
 * m->copy_source), with `hdrs` on the create call. */
static int multipart(struct mpu *m, struct http_headers *hdrs, uint64_t min_part,
                     char *etag_out, struct sky_err *e)
{
    uint64_t part = min_part;
    while ((m->size + part - 1) / part > S3_MAX_PARTS)
        part += 1ull << 20;
    m->part_size = part;
    m->nparts = (unsigned)((m->size + part - 1) / part);
    if (m->nparts == 0)
        m->nparts = 1;
    m->etags = calloc(m->nparts, sizeof *m->etags);
    if (!m->etags) {
        http_headers_free(hdrs);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    int rc = mpu_begin(m, hdrs, e);
    if (rc == 0)
        rc = run_parts(m, e);
    if (rc == 0)
        rc = mpu_complete(m, m->fd, m->size, etag_out, e);
    if (rc < 0 && m->enc_upload_id)
        mpu_abort(m);
    free(m->etags);
    free(m->upload_id);
    free(m->enc_upload_id);
    return rc;
}

/* The metadata a new file is stored with: attr's, with the time now when
 * it has no mtime. */
static struct sky_attr file_attr(const struct sky_attr *attr)
{
    struct sky_attr a = attr ? *attr : (struct sky_attr){0};
    if (!(a.has & SKY_HAS_MTIME)) {
        a.mtime_ns = now_ns();
        a.has |= SKY_HAS_MTIME;
    }
    return a;
}

static int xattr_header(const char *name, char *out, size_t cap);
static char *xattr_encode(const void *v, size_t len);

/* A content type we can send as is: printable ASCII, not empty. */
static bool plain_header_value(const char *v)
{
    if (!v || !*v)
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            return false;
    return true;
}

/* One user item as x-amz-meta-KEY, encoded as s3_setxattr does, unless
 * S3 cannot carry its name or it would pass the size limit (then skipped,
 * the latter with a warning naming the cloud and `show`): 0 or -ENOMEM. */
static int add_user_item(const struct s3 *s, const char *show, struct http_headers *h,
                         const struct sky_meta_item *it)
{
    char xname[300], hname[320];
    if (strlen(it->key) + 6 > sizeof xname)
        return 0;
    snprintf(xname, sizeof xname, "user.%s", it->key);
    if (xattr_header(xname, hname, sizeof hname) < 0)
        return 0;
    char *v = xattr_encode(it->value, it->len);
    if (!v)
        return -ENOMEM;
    int rc = 0;
    size_t bytes = http_headers_bytes(h, "x-amz-meta-") + strlen(hname + 11) + strlen(v);
    if (bytes <= S3_USER_META_MAX)
        rc = http_headers_set(h, hname, v) == 0 ? 0 : -ENOMEM;
    else
        LOG_WARN("s3 '%s': PUT %s: user metadata %s left out: it would take the object's user "
                 "metadata to %zu bytes, past S3's limit of %d", s->name, show, it->key, bytes,
                 S3_USER_META_MAX);
    free(v);
    return rc;
}

/* Headers of a new file object with POSIX metadata a and cloud metadata
 * meta (may be NULL: no user items, the default content type); on failure
 * (-ENOMEM) h is freed. */
static int file_headers(const struct s3 *s, const char *show, struct http_headers *h,
                        const struct sky_attr *a, const struct sky_objmeta *meta)
{
    const char *type = meta && plain_header_value(meta->content_type)
                           ? meta->content_type : "application/octet-stream";
    int rc = add_meta(h, SKY_FILE, a, a->has) < 0 || http_headers_set(h, "Content-Type", type) < 0
                 ? -ENOMEM : 0;
    for (size_t i = 0; rc == 0 && meta && i < meta->nuser; i++)
        rc = add_user_item(s, show, h, &meta->user[i]);
    if (rc < 0)
        http_headers_free(h);
    return rc;
}

/* write()'s and upload_finish()'s *out: a file of `size` bytes stored
 * with metadata a. */
static void file_attr_out(struct sky_attr *out, const struct sky_attr *a, uint64_t size,
                          const char *etag)
{
    memset(out, 0, sizeof *out);
    out->kind = SKY_FILE;
    out->size = size;
    out->mtime_ns = a->mtime_ns;
    out->atime_ns = a->atime_ns;
    out->ctime_ns = a->ctime_ns;
    out->mode = a->mode & 07777;
    out->uid = a->uid;
    out->gid = a->gid;
    out->has = a->has & (SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME |
                         SKY_HAS_ATIME | SKY_HAS_CTIME);
    snprintf(out->etag, sizeof out->etag, "%s", etag);
}

static int s3_write(void *ctx, const char *path, int fd, uint64_t size,
                    const struct sky_attr *attr, const struct sky_objmeta *meta,
                    struct sky_attr *out, struct sky_err *e)
{
    struct s3 *s = ctx;
    struct s3_loc l;
    int rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    if (!*l.key) {
        loc_free(&l);
        return sky_fail(e, EISDIR, "s3 '%s': PUT %s: is a directory", s->name, path);
    }
    char show[1024];
    loc_show(&l, show, sizeof show, s);
    struct sky_attr a = file_attr(attr);
    struct http_headers hdrs = {0};
    if (file_headers(s, show, &hdrs, &a, meta) < 0) {
        loc_free(&l);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    char etag[SKY_ETAG_MAX] = "";
    links_drop(s, l.bucket, l.key);
    if (size <= S3_SINGLE_PUT_MAX) {
        rc = put_object(s, &l, l.key, fd, NULL, size, &hdrs, etag, show, e);
    } else {
        struct mpu m = { .s = s, .l = &l, .show = show, .fd = fd, .size = size };
        rc = multipart(&m, &hdrs, S3_MIN_PART, etag, e);
    }
    http_headers_free(&hdrs);
    loc_free(&l);
    if (rc < 0)
        return rc;
    file_attr_out(out, &a, size, etag);
    return 0;
}

/* ------------------------------------------------------------------ */
/* remove, mkdir, rmdir, symlink, readlink                              */
/* ------------------------------------------------------------------ */

static int delete_key(struct s3 *s, const char *bucket, const char *key, const char *show,
                      struct sky_err *e)
{
    struct s3_req r = S3_REQ("DELETE");
    r.bucket = bucket;
    r.key = key;
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, show, e);
    if (rc == 0)
        http_response_free(&resp);
    return rc;
}

static int s3_remove(void *ctx, const char *path, struct sky_err *e)
{
    struct s3 *s = ctx;
    struct s3_loc l;
    int rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    char show[1024];
    loc_show(&l, show, sizeof show, s);
    rc = *l.key ? delete_key(s, l.bucket, l.key, show, e)
                : sky_fail(e, EISDIR, "s3 '%s': DELETE %s: is a bucket", s->name, show);
    if (rc == 0)
        links_drop(s, l.bucket, l.key);
    loc_free(&l);
    return rc;
}

static int create_bucket(struct s3 *s, const struct s3_loc *l, const char *show,
                         struct sky_err *e)
{
    char body[256] = "";
    struct s3_req r = S3_REQ("PUT");
    r.bucket = l->bucket;
    if (strcmp(s->region, "us-east-1") != 0) {
        snprintf(body, sizeof body,
                 "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
                 "</CreateBucketConfiguration>", s->region);
        r.body = body;
        r.body_len = strlen(body);
    }
    struct http_response resp;
    int rc = s3_call(s, &r, &resp, show, e);
    if (rc == 0)
        http_response_free(&resp);
    return rc;
}

/* PUT the "key/" marker with directory metadata. */
static int put_marker(struct s3 *s, const struct s3_loc *l, const struct sky_attr *attr,
                      unsigned which, const char *show, struct sky_err *e)
{
    char *mkey;
    if (asprintf(&mkey, "%s/", l->key) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    struct sky_attr a = attr ? *attr : (struct sky_attr){0};
    if (!(which & SKY_HAS_MTIME)) {
        a.mtime_ns = now_ns();
        which |= SKY_HAS_MTIME;
    }
    struct http_headers hdrs = {0};
    int rc = add_meta(&hdrs, SKY_DIR, &a, which);
    if (rc == 0)
        rc = http_headers_set(&hdrs, "Content-Type", "application/x-directory");
    if (rc < 0) {
        http_headers_free(&hdrs);
        free(mkey);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    rc = put_object(s, l, mkey, -1, "", 0, &hdrs, NULL, show, e);
    http_headers_free(&hdrs);
    free(mkey);
    return rc;
}

/* 0 when nothing is at `path` yet; -EEXIST (naming `op`) when something
 * is, or the error of asking. */
static int s3_must_be_free(struct s3 *s, const char *path, const char *op, struct sky_err *e)
{
    struct sky_attr cur;
    struct sky_err probe = {0};
    int rc = s3_stat(s, path, &cur, &probe);
    if (rc == 0)
        return sky_fail(e, EEXIST, "s3 '%s': %s %s: already exists", s->name, op, path);
    if (rc != -ENOENT) {
        if (e)
            *e = probe;
        return rc;
    }
    return 0;
}

static int s3_mkdir(void *ctx, const char *path, const struct sky_attr *attr, struct sky_err *e)
{
    struct s3 *s = ctx;
    int rc = s3_must_be_free(s, path, "mkdir", e);
    if (rc)
        return rc;
    struct s3_loc l;
    rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    char show[1024];
    loc_show(&l, show, sizeof show, s);
    if (!*l.key)
        rc = create_bucket(s, &l, show, e);
    else
        rc = put_marker(s, &l, attr, attr ? attr->has : 0, show, e);
    loc_free(&l);
    return rc;
}

/* Is bucket/key itself another tool's directory object ("dir", no slash)? */
static bool is_dir_object(struct s3 *s, const char *bucket, const char *key, const char *show)
{
    uint64_t rdev;
    return head_kind(s, bucket, key, show, &rdev) == SKY_DIR;
}

static int s3_rmdir(void *ctx, const char *path, struct sky_err *e)
{
    struct s3 *s = ctx;
    if (!*path)
        return sky_fail(e, EBUSY, "s3 '%s': cannot remove the cloud's root", s->name);
    struct s3_loc l;
    int rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    char show[1024];
    loc_show(&l, show, sizeof show, s);
    if (!*l.key) {
        struct s3_req r = S3_REQ("DELETE");
        r.bucket = l.bucket;
        struct http_response resp;
        rc = s3_call(s, &r, &resp, show, e);
        if (rc == 0)
            http_response_free(&resp);
        loc_free(&l);
        return rc;
    }
    bool any, marker, others;
    rc = probe_dir(s, &l, 2, &any, &marker, &others, show, e);
    bool dir_object = rc == 0 && !others && is_dir_object(s, l.bucket, l.key, show);
    if (rc == 0 && others)
        rc = sky_fail(e, ENOTEMPTY, "s3 '%s': rmdir %s: directory not empty", s->name, show);
    else if (rc == 0 && !any && !dir_object)
        rc = sky_fail(e, ENOENT, "s3 '%s': rmdir %s: no such directory", s->name, show);
    else if (rc == 0) {
        char *mkey;
        if (asprintf(&mkey, "%s/", l.key) < 0) {
            rc = sky_fail(e, ENOMEM, "out of memory");
        } else {
            rc = any ? delete_key(s, l.bucket, mkey, show, e) : 0;
            free(mkey);
        }
        if (rc == 0 && dir_object)
            rc = delete_key(s, l.bucket, l.key, show, e);
        if (rc == 0 && dir_object)
            links_drop(s, l.bucket, l.key);
    }
    loc_free(&l);
    return rc;
}

static int s3_symlink(void *ctx, const char *path, const char *target,
                      const struct sky_attr *attr, struct sky_err *e)
{
    struct s3 *s = ctx;
    int rc = s3_must_be_free(s, path, "symlink", e);
    if (rc)
        return rc;
    struct s3_loc l;
    rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    char show[1024];
    loc_show(&l, show, sizeof show, s);
    struct sky_attr a = attr ? *attr : (struct sky_attr){0};
    unsigned which = a.has & ~SKY_HAS_MODE;   /* links are always 0777 */
    if (!(which & SKY_HAS_MTIME)) {
        a.mtime_ns = now_ns();
        which |= SKY_HAS_MTIME;
    }
    struct http_headers hdrs = {0};
    rc = add_meta(&hdrs, SKY_LINK, &a, which);
    if (rc == 0)
        rc = http_headers_set(&hdrs, "Content-Type", "application/octet-stream");
    if (rc < 0) {
        http_headers_free(&hdrs);
        loc_free(&l);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    char etag[SKY_ETAG_MAX] = "";
    rc = *l.key ? put_object(s, &l, l.key, -1, target, strlen(target), &hdrs, etag, show, e)
                : sky_fail(e, EPERM, "s3 '%s': symlink %s: a bucket cannot be a link", s->name,
                           show);
    if (rc == 0)
        links_put(s, l.bucket, l.key, etag, target);
    http_headers_free(&hdrs);
    loc_free(&l);
    return rc;
}

/* A FIFO, socket or device: an empty object whose x-amz-meta-mode has the
 * type bits (and x-amz-meta-rdev a device's number), as s3fs makes them. */
static int s3_mknod(void *ctx, const char *path, const struct sky_attr *attr,
                    struct sky_attr *out, struct sky_err *e)
{
    struct s3 *s = ctx;
    int rc = s3_must_be_free(s, path, "mknod", e);
    if (rc)
        return rc;
    struct s3_loc l;
    rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    char show[1024];
    loc_show(&l, show, sizeof show, s);
    struct sky_attr a = *attr;
    if (!(a.has & SKY_HAS_MTIME)) {
        a.mtime_ns = now_ns();
        a.has |= SKY_HAS_MTIME;
    }
    struct http_headers hdrs = {0};
    rc = add_meta(&hdrs, a.kind, &a, a.has);
    if (rc == 0 && (a.kind == SKY_CHR || a.kind == SKY_BLK))
        rc = set_num(&hdrs, "x-amz-meta-rdev", (long long)a.rdev) < 0 ? -ENOMEM : 0;
    if (rc == 0)
        rc = http_headers_set(&hdrs, "Content-Type", "application/octet-stream");
    if (rc < 0) {
        http_headers_free(&hdrs);
        loc_free(&l);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    char etag[SKY_ETAG_MAX] = "";
    rc = *l.key ? put_object(s, &l, l.key, -1, "", 0, &hdrs, etag, show, e)
                : sky_fail(e, EPERM, "s3 '%s': mknod %s: a bucket cannot be a special file",
                           s->name, show);
    if (rc == 0) {
        typed_put(s, l.bucket, l.key, etag, a.kind, a.rdev, NULL);
        *out = a;
        out->size = 0;
        snprintf(out->etag, sizeof out->etag, "%s", etag);
    }
    http_headers_free(&hdrs);
    loc_free(&l);
    return rc;
}

static int s3_readlink(void *ctx, const char *path, char *buf, size_t size, struct sky_err *e)
{
    struct s3 *s = ctx;
    if (size == 0)
        return sky_fail(e, ERANGE, "s3 '%s': readlink %s: no room", s->name, path);
    struct s3_loc l;
    int rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    char show[1024];
    loc_show(&l, show, sizeof show, s);
    struct s3_req r = S3_REQ("GET");
    r.bucket = l.bucket;
    r.key = l.key;
    http_headers_set(&r.headers, "Range", "bytes=0-" "4095");
    struct http_response resp;
    rc = s3_call(s, &r, &resp, show, e);
    if (rc == 0) {
        size_t n = resp.body_len < size - 1 ? resp.body_len : size - 1;
        if (n)
            memcpy(buf, resp.body, n);
        buf[n] = '\0';
        char etag[SKY_ETAG_MAX];
        etag_copy(etag, http_headers_get(&resp.headers, "etag"));
        if (resp.body && resp.body_len < S3_LINK_MAX && strlen(resp.body) == resp.body_len)
            links_put(s, l.bucket, l.key, etag, resp.body);
        http_response_free(&resp);
    }
    loc_free(&l);
    return rc;
}

/* ------------------------------------------------------------------ */
/* copy, rename, set_attr                                              */
/* ------------------------------------------------------------------ */

static char *copy_source(const char *bucket, const char *key)
{
    char *enc = http_uri_encode(key, 1), *out = NULL;
    if (enc && asprintf(&out, "/%s/%s", bucket, enc) < 0)
        out = NULL;
    free(enc);
    return out;
}

/* A copy was retried and its last answer is an error (a copy onto itself
 * whose first attempt, answer lost, changed the ETag the retry's
 * condition names).  Does dst hold `size` bytes and, when `want` is not
 * NULL, exactly the x-amz-meta-* headers in want?  Then the copy
 * succeeded; *etag_out (unless NULL) gets dst's ETag. */
static bool copy_landed(struct s3 *s, const struct s3_loc *dst, uint64_t size,
                        const struct http_headers *want, char *etag_out)
{
    struct http_response head;
    struct sky_err ignored = { 0 };
    if (s3_head(s, dst->bucket, dst->key, &head, dst->key, &ignored) < 0)
        return false;
    const char *len = http_headers_get(&head.headers, "content-length");
    bool same = ok_status(head.status) && len && strtoull(len, NULL, 10) == size;
    if (same && want) {
        same = http_headers_bytes(&head.headers, "x-amz-meta-") ==
               http_headers_bytes(want, "x-amz-meta-");
        for (size_t i = 0; same && i < want->n; i++) {
            const char *v = http_headers_get(&head.headers, want->h[i].name);
            same = v && strcmp(v, want->h[i].value) == 0;
        }
    }
    if (same && etag_out)
        etag_copy(etag_out, http_headers_get(&head.headers, "etag"));
    http_response_free(&head);
    if (same)
        LOG_INFO("s3 '%s': COPY to %s: the answer was lost; the target holds the copy",
                 s->name, dst->key);
    return same;
}

/* Copy src -> dst (same cloud, any bucket).  `hdrs` (may be NULL) holds
 * replacement metadata: then the directive is REPLACE, else COPY.  Sizes
 * above 5 GiB use a multipart copy, which needs the metadata explicitly:
 * the caller passes size and, for COPY, the source's headers are fetched.
 * The copy's ETag goes to etag_out unless it is NULL. */
static int copy_object(struct s3 *s, const char *sbucket, const char *skey,
                       const struct s3_loc *dst, uint64_t size, const char *if_match,
                       struct http_headers *hdrs, char *etag_out, const char *show,
                       struct sky_err *e)
{
    char *src = copy_source(sbucket, skey);
    if (!src) {
        if (hdrs)
            http_headers_free(hdrs);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    int rc;
    if (size > S3_COPY_MAX) {
        struct http_headers meta = {0};
        if (hdrs) {
            meta = *hdrs;
            memset(hdrs, 0, sizeof *hdrs);
        } else {
            struct http_response head;
            rc = s3_head(s, sbucket, skey, &head, show, e);
            for (size_t i = 0; rc == 0 && i < head.headers.n; i++)
                if (strncmp(head.headers.h[i].name, "x-amz-meta-", 11) == 0 ||
                    strcmp(head.headers.h[i].name, "content-type") == 0)
                    http_headers_set(&meta, head.headers.h[i].name, head.headers.h[i].value);
            if (rc == 0)
                http_response_free(&head);
        }
        struct mpu m = { .s = s, .l = dst, .show = show, .fd = -1, .copy_source = src,
                         .size = size };
        char etag[SKY_ETAG_MAX];
        rc = multipart(&m, &meta, S3_COPY_PART, etag, e);
        if (rc == 0 && etag_out)
            snprintf(etag_out, SKY_ETAG_MAX, "%s", etag);
        http_headers_free(&meta);
        free(src);
        return rc;
    }
    struct s3_req r = S3_REQ("PUT");
    r.bucket = dst->bucket;
    r.key = dst->key;
    if (hdrs) {
        r.headers = *hdrs;
        memset(hdrs, 0, sizeof *hdrs);
    }
    rc = http_headers_set(&r.headers, "x-amz-copy-source", src);
    if (rc == 0)
        rc = http_headers_set(&r.headers, "x-amz-metadata-directive", hdrs ? "REPLACE" : "COPY");
    if (rc == 0 && if_match && *if_match)
        rc = http_headers_set(&r.headers, "x-amz-copy-source-if-match", if_match);
    free(src);
    if (rc < 0) {
        http_headers_free(&r.headers);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    /* what the copy must leave on dst, should its answer be lost */
    struct http_headers want = {0};
    for (size_t i = 0; rc == 0 && hdrs && i < r.headers.n; i++)
        if (strncasecmp(r.headers.h[i].name, "x-amz-meta-", 11) == 0)
            rc = http_headers_set(&want, r.headers.h[i].name, r.headers.h[i].value);
    if (rc < 0) {
        http_headers_free(&r.headers);
        http_headers_free(&want);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    struct http_response resp;
    rc = s3_send(s, &r, &resp, show, e);
    if (rc < 0) {
        http_headers_free(&want);
        return rc;
    }
    bool retried = http_retried(&resp);
    struct xml_node *root = NULL;
    if (!ok_status(resp.status))
        rc = s3_fail_answer(s, "PUT", show, &resp, e);
    else
        rc = s3_xml_answer(s, "COPY", show, &resp, "CopyObjectResult", &root, e);
    http_response_free(&resp);
    if (rc == 0) {
        if (etag_out)
            etag_copy(etag_out, xml_text(root, "ETag"));
        xml_free(root);
    } else if (retried && copy_landed(s, dst, size, hdrs ? &want : NULL, etag_out)) {
        sky_err_clear(e);
        rc = 0;
    }
    http_headers_free(&want);
    return rc;
}

/* Every key under "prefix" (flat), collected. */
struct key_list {
    char **keys;
    uint64_t *sizes;
    char (*etags)[SKY_ETAG_MAX];
    size_t n, cap;
};

static int on_collect(void *arg, const char *key, int is_prefix, const struct sky_attr *a,
                      const char *storage_class)
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
    if (!(k->keys[k->n] = strdup(key)))
        return -ENOMEM;
    memcpy(k->etags[k->n], a->etag, SKY_ETAG_MAX);
    k->sizes[k->n++] = a->size;
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

static void base64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static void md5_base64(const char *data, size_t len, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
    base64(md, mdlen, out);
}

/* DeleteObjects for keys[0..n) (n <= 1000). */
static int delete_batch(struct s3 *s, const char *bucket, char **keys, size_t n,
                        const char *show, struct sky_err *e)
{
    size_t cap = 64;
    for (size_t i = 0; i < n; i++)
        cap += strlen(keys[i]) * 6 + 32;
    char *body = malloc(cap);
    if (!body)
        return sky_fail(e, ENOMEM, "out of memory");
    size_t len = (size_t)snprintf(body, cap, "<Delete><Quiet>true</Quiet>");
    for (size_t i = 0; i < n; i++) {
        char *k = xml_escape(keys[i]);
        if (!k) {
            free(body);
            return sky_fail(e, ENOMEM, "out of memory");
        }
        len += (size_t)snprintf(body + len, cap - len, "<Object><Key>%s</Key></Object>", k);
        free(k);
    }
    len += (size_t)snprintf(body + len, cap - len, "</Delete>");
    char md5[32];
    md5_base64(body, len, md5);
    struct s3_req r = S3_REQ("POST");
    r.bucket = bucket;
    r.query = "delete";
    r.body = body;
    r.body_len = len;
    int rc = 0;
    if (http_headers_set(&r.headers, "Content-MD5", md5) < 0 ||
        http_headers_set(&r.headers, "Content-Type", "application/xml") < 0) {
        http_headers_free(&r.headers);
        free(body);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    struct http_response resp;
    rc = s3_call(s, &r, &resp, show, e);
    free(body);
    if (rc < 0)
        return rc;
    struct xml_node *root;
    rc = s3_xml_answer(s, "DELETE", show, &resp, "DeleteResult", &root, e);
    http_response_free(&resp);
    if (rc < 0)
        return rc;
    const struct xml_node *err = xml_child(root, "Error");
    if (err)
        rc = sky_fail(e, s3_error_errno(500, xml_text(err, "Code")), "s3 '%s': DELETE %s: %s %s",
                      s->name, xml_text(err, "Key") ? xml_text(err, "Key") : show,
                      xml_text(err, "Code") ? xml_text(err, "Code") : "error",
                      "(batch delete)");
    xml_free(root);
    return rc;
}

/* Parallel copies of a key list from one prefix to another. */
struct tree_copy {
    struct s3 *s;
    const char *bucket_from, *bucket_to;
    size_t from_len;            /* strlen of the source prefix */
    const char *to_prefix;
    struct key_list *keys;
    const char *show;
};

static int copy_one(struct tree_copy *t, size_t i, struct sky_err *e)
{
    struct s3_loc dst = {0};
    snprintf(dst.bucket, sizeof dst.bucket, "%s", t->bucket_to);
    if (asprintf(&dst.key, "%s%s", t->to_prefix, t->keys->keys[i] + t->from_len) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = copy_object(t->s, t->bucket_from, t->keys->keys[i], &dst, t->keys->sizes[i], NULL,
                         NULL, NULL, t->show, e);
    if (rc == 0) {
        struct s3_loc src = {0};
        snprintf(src.bucket, sizeof src.bucket, "%s", t->bucket_from);
        src.key = t->keys->keys[i];
        links_move(t->s, &src, &dst, t->keys->etags[i]);
    }
    loc_free(&dst);
    return rc;
}

static int copy_job(void *arg, size_t i, struct sky_err *e)
{
    return copy_one(arg, i, e);
}

static int copy_tree(struct tree_copy *t, struct sky_err *e)
{
    return parallel_for(t->keys->n, S3_THREADS, copy_job, t, e);
}

static int rename_dir(struct s3 *s, const struct s3_loc *from, const struct s3_loc *to,
                      const char *show, struct sky_err *e)
{
    char *fp = NULL, *tp = NULL;
    if (asprintf(&fp, "%s/", from->key) < 0 || asprintf(&tp, "%s/", to->key) < 0) {
        free(fp);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    struct key_list keys = {0};
    int rc = s3_list_keys(s, from->bucket, fp, false, 0, on_collect, &keys, show, e);
    if (rc == -ENOMEM)
        sky_fail(e, ENOMEM, "out of memory");
    if (rc == 0) {
        struct tree_copy t = { .s = s, .bucket_from = from->bucket, .bucket_to = to->bucket,
                               .from_len = strlen(fp), .to_prefix = tp, .keys = &keys,
                               .show = show };
        rc = copy_tree(&t, e);
    }
    for (size_t i = 0; rc == 0 && i < keys.n; i += S3_DELETE_BATCH) {
        size_t n = keys.n - i < S3_DELETE_BATCH ? keys.n - i : S3_DELETE_BATCH;
        rc = delete_batch(s, from->bucket, keys.keys + i, n, show, e);
    }
    key_list_free(&keys);
    free(fp);
    free(tp);
    return rc;
}

static int s3_rename(void *ctx, const char *from, const char *to, struct sky_err *e)
{
    struct s3 *s = ctx;
    size_t flen = strlen(from);
    if (!*from || !*to)
        return sky_fail(e, EBUSY, "s3 '%s': cannot rename the cloud's root", s->name);
    if (strncmp(to, from, flen) == 0 && to[flen] == '/')
        return sky_fail(e, EINVAL, "s3 '%s': rename %s into itself", s->name, from);
    struct sky_attr fa, ta;
    int rc = s3_stat(ctx, from, &fa, e);
    if (rc < 0)
        return rc;
    struct sky_err probe = {0};
    int trc = s3_stat(ctx, to, &ta, &probe);
    if (trc < 0 && trc != -ENOENT) {
        if (e)
            *e = probe;
        return trc;
    }
    struct s3_loc lf, lt;
    if ((rc = s3_locate(s, from, &lf, e)) < 0)
        return rc;
    if ((rc = s3_locate(s, to, &lt, e)) < 0) {
        loc_free(&lf);
        return rc;
    }
    char show[1024];
    loc_show(&lf, show, sizeof show, s);
    if (!*lf.key || !*lt.key) {
        rc = sky_fail(e, EXDEV, "s3 '%s': rename %s: buckets cannot be renamed", s->name, show);
    } else if (trc == 0 && fa.kind == SKY_DIR && ta.kind != SKY_DIR) {
        rc = sky_fail(e, ENOTDIR, "s3 '%s': rename %s: target is not a directory", s->name, to);
    } else if (trc == 0 && fa.kind != SKY_DIR && ta.kind == SKY_DIR) {
        rc = sky_fail(e, EISDIR, "s3 '%s': rename %s: target is a directory", s->name, to);
    } else if (trc == 0 && ta.kind == SKY_DIR && (rc = s3_rmdir(ctx, to, e)) < 0) {
        /* rmdir refused: not empty (or failed) */
    } else if (fa.kind == SKY_DIR) {
        bool dir_object = is_dir_object(s, lf.bucket, lf.key, show);
        rc = rename_dir(s, &lf, &lt, show, e);
        /* another tool's "dir" object goes along, in the same form */
        if (rc == 0 && dir_object)
            rc = copy_object(s, lf.bucket, lf.key, &lt, 0, NULL, NULL, NULL, show, e);
        if (rc == 0 && dir_object)
            rc = delete_key(s, lf.bucket, lf.key, show, e);
    } else {
        rc = copy_object(s, lf.bucket, lf.key, &lt, fa.size, fa.etag, NULL, NULL, show, e);
        if (rc == 0)
            rc = delete_key(s, lf.bucket, lf.key, show, e);
        if (rc == 0)
            links_move(s, &lf, &lt, fa.etag);
    }
    loc_free(&lf);
    loc_free(&lt);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Streamed uploads: a multipart upload fed while the file is written  */
/* ------------------------------------------------------------------ */

/* One streamed upload.  Parts come from fs/'s worker threads, several at
 * once: their ETags go into a growing array under `lock`.  The metadata is
 * fixed by CreateMultipartUpload; when the final metadata differs (the
 * writer went on, so its mtime did; or a setxattr meanwhile changed the
 * user metadata), upload_finish rewrites it with a self-copy, as chmod
 * does. */
struct s3_stream {
    struct s3 *s;
    struct s3_loc l;
    char show[1024];
    struct sky_attr begun;          /* metadata sent with the create call */
    struct sky_objmeta meta;        /* content type and user items, likewise */
    struct mpu m;                   /* upload id, part size, ETags */
    pthread_mutex_t lock;           /* guards m.etags and cap */
    uint64_t cap;                   /* ETag slots in m.etags */
};

#define S3_STREAM_PART S3_MIN_PART

static void stream_free(struct s3_stream *st)
{
    sky_objmeta_free(&st->meta);
    free(st->m.etags);
    free(st->m.upload_id);
    free(st->m.enc_upload_id);
    loc_free(&st->l);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static int s3_upload_begin(void *ctx, const char *path, const struct sky_attr *attr,
                           const struct sky_objmeta *meta, void **up, struct sky_err *e)
{
    struct s3 *s = ctx;
    struct s3_stream *st = calloc(1, sizeof *st);
    if (!st)
        return sky_fail(e, ENOMEM, "out of memory");
    pthread_mutex_init(&st->lock, NULL);
    st->s = s;
    int rc = s3_locate(s, path, &st->l, e);
    if (rc == 0 && !*st->l.key)
        rc = sky_fail(e, EISDIR, "s3 '%s': POST %s: is a directory", s->name, path);
    if (rc == 0 && meta && sky_objmeta_copy(&st->meta, meta) < 0)
        rc = sky_fail(e, ENOMEM, "out of memory");
    if (rc < 0) {
        stream_free(st);
        return rc;
    }
    loc_show(&st->l, st->show, sizeof st->show, s);
    st->begun = file_attr(attr);
    st->m = (struct mpu){ .s = s, .l = &st->l, .show = st->show, .fd = -1,
                          .part_size = S3_STREAM_PART };
    struct http_headers hdrs = {0};
    rc = file_headers(s, st->show, &hdrs, &st->begun, &st->meta) < 0 ? sky_fail(e, ENOMEM, "out of memory")
                                             : mpu_begin(&st->m, &hdrs, e);
    http_headers_free(&hdrs);
    if (rc < 0) {
        stream_free(st);
        return rc;
    }
    *up = st;
    return 0;
}

/* Room for the ETags of parts [0, n) (st->lock held, or no part running). */
static int stream_reserve(struct s3_stream *st, uint64_t n)
{
    if (n <= st->cap)
        return 0;
    uint64_t cap = st->cap ? st->cap : 16;
    while (cap < n)
        cap *= 2;
    char (*etags)[SKY_ETAG_MAX] = realloc(st->m.etags, cap * sizeof *etags);
    if (!etags)
        return -ENOMEM;
    memset(etags + st->cap, 0, (cap - st->cap) * sizeof *etags);
    st->m.etags = etags;
    st->cap = cap;
    return 0;
}

/* The error of a file too large for one multipart upload. */
static int stream_too_big(const struct s3_stream *st, struct sky_err *e)
{
    return sky_fail(e, EFBIG, "s3 '%s': PUT %s: a multipart upload holds at most %llu parts",
                    st->s->name, st->show, S3_MAX_PARTS);
}

static int s3_upload_part(void *up, int fd, uint64_t index, struct sky_err *e)
{
    struct s3_stream *st = up;
    if (index >= S3_MAX_PARTS)
        return stream_too_big(st, e);
    char etag[SKY_ETAG_MAX];
    uint64_t ps = st->m.part_size;
    int rc = send_part(&st->m, fd, (unsigned)index + 1, index * ps, ps, etag, e);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&st->lock);
    rc = stream_reserve(st, index + 1);
    if (rc == 0)
        memcpy(st->m.etags[index], etag, sizeof etag);
    pthread_mutex_unlock(&st->lock);
    return rc < 0 ? sky_fail(e, ENOMEM, "out of memory") : 0;
}

/* The parts upload_finish sends itself: item i is part first + i (from 0)
 * of a file of `size` bytes. */
struct stream_tail {
    struct s3_stream *st;
    int fd;
    uint64_t first, size;
};

static int tail_job(void *arg, size_t i, struct sky_err *e)
{
    struct stream_tail *t = arg;
    uint64_t ps = t->st->m.part_size, n = t->first + i, off = n * ps;
    uint64_t len = t->size - off < ps ? t->size - off : ps;
    return send_part(&t->st->m, t->fd, (unsigned)n + 1, off, len, t->st->m.etags[n], e);
}

/* Are the POSIX metadata of a and b the same? */
static bool same_meta(const struct sky_attr *a, const struct sky_attr *b)
{
    unsigned bits = SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME | SKY_HAS_ATIME |
                    SKY_HAS_CTIME;
    if ((a->has & bits) != (b->has & bits))
        return false;
    return (!(a->has & SKY_HAS_MODE) || (a->mode & 07777) == (b->mode & 07777)) &&
           (!(a->has & SKY_HAS_UID) || a->uid == b->uid) &&
           (!(a->has & SKY_HAS_GID) || a->gid == b->gid) &&
           (!(a->has & SKY_HAS_MTIME) || a->mtime_ns == b->mtime_ns) &&
           (!(a->has & SKY_HAS_ATIME) || a->atime_ns == b->atime_ns) &&
           (!(a->has & SKY_HAS_CTIME) || a->ctime_ns == b->ctime_ns);
}

/* Send the parts past nparts, then CompleteMultipartUpload; etag_out gets
 * the object's ETag. */
static int stream_complete(struct s3_stream *st, int fd, uint64_t nparts, uint64_t size,
                           char *etag_out, struct sky_err *e)
{
    uint64_t ps = st->m.part_size, total = (size + ps - 1) / ps;
    if (total == 0)
        total = 1;      /* fs/ never finishes an empty file this way; be safe */
    if (total > S3_MAX_PARTS)
        return stream_too_big(st, e);
    if (stream_reserve(st, total) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    for (uint64_t i = 0; i < nparts; i++)
        if (!st->m.etags[i][0])
            return sky_fail(e, EIO, "s3 '%s': PUT %s: part %llu was never sent", st->s->name,
                            st->show, (unsigned long long)i + 1);
    if (total > nparts) {
        struct stream_tail t = { st, fd, nparts, size };
        int rc = parallel_for((size_t)(total - nparts), S3_THREADS, tail_job, &t, e);
        if (rc < 0)
            return rc;
    }
    st->m.nparts = (unsigned)total;
    return mpu_complete(&st->m, fd, size, etag_out, e);
}

static int s3_upload_finish(void *up, int fd, uint64_t nparts, uint64_t size,
                            const struct sky_attr *attr, const struct sky_objmeta *meta,
                            struct sky_attr *out, struct sky_err *e)
{
    struct s3_stream *st = up;
    struct s3 *s = st->s;
    char etag[SKY_ETAG_MAX] = "";
    int rc = stream_complete(st, fd, nparts, size, etag, e);
    if (rc < 0) {
        if (st->m.enc_upload_id)
            mpu_abort(&st->m);
        stream_free(st);
        return rc;
    }
    links_drop(s, st->l.bucket, st->l.key);
    struct sky_attr a = file_attr(attr);
    if (!meta)
        meta = &st->meta;
    if (!same_meta(&a, &st->begun) || !sky_objmeta_same_stored(meta, &st->meta)) {
        struct http_headers hdrs = {0};
        char copied[SKY_ETAG_MAX] = "";
        rc = file_headers(s, st->show, &hdrs, &a, meta) < 0
                 ? sky_fail(e, ENOMEM, "out of memory")
                 : copy_object(s, st->l.bucket, st->l.key, &st->l, size, etag, &hdrs, copied,
                               st->show, e);
        http_headers_free(&hdrs);
        memcpy(etag, copied, sizeof etag);
    }
    if (rc == 0)
        file_attr_out(out, &a, size, etag);
    stream_free(st);
    return rc;
}

static void s3_upload_abort(void *up)
{
    struct s3_stream *st = up;
    if (st->m.enc_upload_id)
        mpu_abort(&st->m);
    stream_free(st);
}

/* ------------------------------------------------------------------ */
/* Metadata edits: set_attr and xattrs                                  */
/* ------------------------------------------------------------------ */

/* Edits the metadata of one object in place.  `kind` is what the object
 * is; `meta` holds its current x-amz-meta-* (and content headers) and is
 * what will be stored. */
typedef int (*meta_edit_fn)(void *arg, enum sky_kind kind, struct http_headers *meta,
                            struct sky_err *e);

/* The headers to keep on a metadata-replacing copy: user metadata and
 * the content headers of the current object. */
static int kept_headers(const struct http_headers *from, struct http_headers *to)
{
    for (size_t i = 0; i < from->n; i++) {
        const char *n = from->h[i].name;
        if (strncmp(n, "x-amz-meta-", 11) == 0 || strcmp(n, "content-type") == 0 ||
            strcmp(n, "content-encoding") == 0 || strcmp(n, "cache-control") == 0 ||
            strcmp(n, "content-disposition") == 0)
            if (http_headers_set(to, n, from->h[i].value) < 0)
                return -ENOMEM;
    }
    return 0;
}

/* HEAD the object behind path: the key itself, else the "key/" marker.
 * *key_out is the key found (malloc'd); *kind what it is.  -ENOENT when
 * neither exists (*dir_exists tells whether the path is still an
 * implicit directory). */
static int head_meta(struct s3 *s, const struct s3_loc *l, struct http_response *head,
                     char **key_out, enum sky_kind *kind, bool *dir_exists, const char *show,
                     struct sky_err *e)
{
    *dir_exists = false;
    *key_out = NULL;
    int rc = s3_head(s, l->bucket, l->key, head, show, e);
    if (rc == 0 && ok_status(head->status)) {
        struct sky_attr a;
        s3_attr_from_headers(&head->headers, &a);
        *kind = a.kind;
        *key_out = strdup(l->key);
        return *key_out ? 0 : sky_fail(e, ENOMEM, "out of memory");
    }
    if (rc == 0 && head->status != 404)
        rc = s3_fail_answer(s, "HEAD", show, head, e);
    http_response_free(head);
    if (rc < 0)
        return rc;
    char *mkey;
    if (asprintf(&mkey, "%s/", l->key) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    rc = s3_head(s, l->bucket, mkey, head, show, e);
    if (rc == 0 && ok_status(head->status)) {
        *kind = SKY_DIR;
        *key_out = mkey;
        return 0;
    }
    free(mkey);
    if (rc == 0 && head->status != 404)
        rc = s3_fail_answer(s, "HEAD", show, head, e);
    http_response_free(head);
    if (rc < 0)
        return rc;
    bool any, marker, others;
    rc = probe_dir(s, l, 1, &any, &marker, &others, show, e);
    if (rc < 0)
        return rc;
    *dir_exists = any;
    *kind = SKY_DIR;
    return sky_fail(e, ENOENT, "s3 '%s': HEAD %s: 404 NoSuchKey", s->name, show);
}

/* Edit the metadata of path's object with fn; when out is not NULL it
 * gets the object's attributes afterwards (its new metadata, size and
 * ETag). */
/* The attributes of a `kind` object of `size` bytes whose metadata is now
 * `meta`, with ETag `etag`. */
static void attr_after_edit(struct sky_attr *out, const struct http_headers *meta,
                            enum sky_kind kind, uint64_t size, const char *etag)
{
    s3_attr_from_headers(meta, out);
    out->kind = kind;
    out->size = kind == SKY_DIR ? 0 : size;
    snprintf(out->etag, sizeof out->etag, "%s", kind == SKY_DIR ? "" : etag);
}

static int edit_meta(struct s3 *s, const char *path, meta_edit_fn fn, void *arg,
                     struct sky_attr *out, struct sky_err *e)
{
    struct s3_loc l;
    int rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    if (!*l.key) {
        loc_free(&l);
        return sky_fail(e, ENOTSUP, "s3 '%s': %s: buckets carry no metadata", s->name,
                        *path ? path : "/");
    }
    char show[1024], *key = NULL;
    loc_show(&l, show, sizeof show, s);
    struct http_response head;
    struct http_headers meta = {0};
    enum sky_kind kind = SKY_FILE;
    bool dir_exists;
    rc = head_meta(s, &l, &head, &key, &kind, &dir_exists, show, e);
    if (rc == -ENOENT && dir_exists) {
        /* an implicit directory: give it a marker carrying the metadata */
        rc = http_headers_set(&meta, "Content-Type", "application/x-directory") < 0
                 ? sky_fail(e, ENOMEM, "out of memory") : 0;
        if (rc == 0)
            rc = fn(arg, SKY_DIR, &meta, e);
        if (rc == 0 && asprintf(&key, "%s/", l.key) < 0)
            rc = sky_fail(e, ENOMEM, "out of memory");
        if (rc == 0)
            rc = put_object(s, &l, key, -1, "", 0, &meta, NULL, show, e);
        if (rc == 0 && out)
            attr_after_edit(out, &meta, SKY_DIR, 0, "");
    } else if (rc == 0) {
        const char *len = http_headers_get(&head.headers, "content-length");
        uint64_t size = len ? strtoull(len, NULL, 10) : 0;
        char etag[SKY_ETAG_MAX];
        etag_copy(etag, http_headers_get(&head.headers, "etag"));
        rc = kept_headers(&head.headers, &meta) < 0 ? sky_fail(e, ENOMEM, "out of memory") : 0;
        http_response_free(&head);
        if (rc == 0)
            rc = fn(arg, kind, &meta, e);
        if (rc == 0) {
            struct s3_loc self = l;
            self.key = key;
            char copied[SKY_ETAG_MAX] = "";
            rc = copy_object(s, l.bucket, key, &self, size, etag, &meta, copied, show, e);
            if (rc == 0 && out)
                attr_after_edit(out, &meta, kind, size, copied[0] ? copied : etag);
        }
    }
    http_headers_free(&meta);
    free(key);
    loc_free(&l);
    return rc;
}

struct attr_edit {
    const struct sky_attr *attr;
    unsigned which;
};

static int edit_attr(void *arg, enum sky_kind kind, struct http_headers *meta, struct sky_err *e)
{
    struct attr_edit *ae = arg;
    const struct sky_attr *a = ae->attr;
    int rc = 0;
    const char *old_mode = http_headers_get(meta, "x-amz-meta-mode");
    if (ae->which & SKY_HAS_MODE)
        rc |= set_num(meta, "x-amz-meta-mode",
                      (long long)(sky_kind_type_bits((int)kind) | (a->mode & 07777)));
    else if (!old_mode && kind != SKY_FILE)
        rc |= set_num(meta, "x-amz-meta-mode",
                      (long long)(sky_kind_type_bits((int)kind) | (kind == SKY_DIR ? 0755 : 0777)));
    if (ae->which & SKY_HAS_UID)
        rc |= set_num(meta, "x-amz-meta-uid", a->uid);
    if (ae->which & SKY_HAS_GID)
        rc |= set_num(meta, "x-amz-meta-gid", a->gid);
    rc |= add_times(meta, a, ae->which);
    return rc ? sky_fail(e, ENOMEM, "out of memory") : 0;
}

static int s3_set_attr(void *ctx, const char *path, const struct sky_attr *attr, unsigned which,
                       struct sky_attr *out, struct sky_err *e)
{
    struct s3 *s = ctx;
    if (which == 0 || !*path || (!s->bucket && !strchr(path, '/'))) {
        *out = *attr;   /* buckets and the bare root carry no metadata */
        return 0;
    }
    struct attr_edit ae = { attr, which };
    return edit_meta(s, path, edit_attr, &ae, out, e);
}

/* user.NAME <-> x-amz-meta-NAME.  NAME must survive as an HTTP header
 * name that S3 lowercases, and must not be one of the POSIX fields. */
static const char *const reserved_meta[] = { "mode", "uid", "gid", "mtime", "atime", "ctime",
                                             "btime", "xattr", "rdev", NULL };

static int xattr_header(const char *name, char *out, size_t cap)
{
    if (strncmp(name, "user.", 5) != 0)
        return -ENOTSUP;
    const char *n = name + 5;
    if (!*n || strlen(n) + 12 > cap)
        return -ENOTSUP;
    for (const char *p = n; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' ||
              *p == '_' || *p == '.'))
            return -ENOTSUP;
    for (int i = 0; reserved_meta[i]; i++)
        if (strcmp(n, reserved_meta[i]) == 0)
            return -ENOTSUP;
    snprintf(out, cap, "x-amz-meta-%s", n);
    return 0;
}

static bool is_user_xattr_header(const char *h)
{
    if (strncmp(h, "x-amz-meta-", 11) != 0 || !h[11])
        return false;
    for (int i = 0; reserved_meta[i]; i++)
        if (strcmp(h + 11, reserved_meta[i]) == 0)
            return false;
    return true;
}

/* Values travel as header text: printable ASCII as is, anything else
 * (or text that could be mistaken for the encoding) as "b64:" + base64. */
static char *xattr_encode(const void *v, size_t len)
{
    const unsigned char *p = v;
    bool plain = len > 0 && p[0] != ' ' && p[len - 1] != ' ' &&
                 !(len >= 4 && memcmp(p, "b64:", 4) == 0);
    for (size_t i = 0; plain && i < len; i++)
        plain = p[i] >= 0x20 && p[i] < 0x7f;
    if (plain)
        return strndup(v, len);
    char *out = malloc(4 + 4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    memcpy(out, "b64:", 4);
    base64(p, len, out + 4);
    return out;
}

/* Decodes into buf (NULL: only the length); returns the length or -1. */
static ssize_t xattr_decode(const char *text, unsigned char *buf)
{
    if (strncmp(text, "b64:", 4) != 0) {
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

/* HEAD for the xattr readers: headers of the object or its marker;
 * an implicit directory has none (empty set). */
static int xattr_head(struct s3 *s, const char *path, struct http_response *head,
                      struct sky_err *e)
{
    memset(head, 0, sizeof *head);
    struct s3_loc l;
    int rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    if (!*l.key) {
        loc_free(&l);
        return 0;
    }
    char show[1024], *key = NULL;
    loc_show(&l, show, sizeof show, s);
    enum sky_kind kind;
    bool dir_exists;
    rc = head_meta(s, &l, head, &key, &kind, &dir_exists, show, e);
    if (rc == -ENOENT && dir_exists)
        rc = 0;
    free(key);
    loc_free(&l);
    return rc;
}

static int s3_getxattr(void *ctx, const char *path, const char *name, void *buf, size_t size,
                       size_t *len, struct sky_err *e)
{
    struct s3 *s = ctx;
    char hname[300];
    if (xattr_header(name, hname, sizeof hname) < 0)
        return sky_fail(e, ENODATA, "s3 '%s': %s: no attribute %s", s->name, path, name);
    struct http_response head;
    int rc = xattr_head(s, path, &head, e);
    if (rc < 0)
        return rc;
    const char *v = http_headers_get(&head.headers, hname);
    ssize_t n = v ? xattr_decode(v, NULL) : -1;
    if (!v)
        rc = sky_fail(e, ENODATA, "s3 '%s': %s: no attribute %s", s->name, path, name);
    else if (n < 0)
        rc = sky_fail(e, EIO, "s3 '%s': %s: attribute %s is not valid base64", s->name, path,
                      name);
    else if (size && (size_t)n > size)
        rc = sky_fail(e, ERANGE, "s3 '%s': %s: attribute %s is larger than the buffer",
                      s->name, path, name);
    else {
        if (size)
            xattr_decode(v, buf);
        *len = (size_t)n;
    }
    http_response_free(&head);
    return rc;
}

static int s3_listxattr(void *ctx, const char *path, char *buf, size_t size, size_t *len,
                        struct sky_err *e)
{
    struct s3 *s = ctx;
    struct http_response head;
    int rc = xattr_head(s, path, &head, e);
    if (rc < 0)
        return rc;
    size_t total = 0;
    for (size_t i = 0; i < head.headers.n; i++) {
        const char *h = head.headers.h[i].name;
        if (!is_user_xattr_header(h))
            continue;
        size_t n = strlen(h + 11) + 6;   /* "user." + name + NUL */
        if (size && total + n > size) {
            rc = sky_fail(e, ERANGE, "s3 '%s': %s: attribute list larger than the buffer",
                          s->name, path);
            break;
        }
        if (size)
            snprintf(buf + total, n, "user.%s", h + 11);
        total += n;
    }
    *len = total;
    http_response_free(&head);
    return rc;
}

struct xattr_edit {
    const char *header;
    const void *value;          /* NULL: remove */
    size_t len;
    int flags;
};

/* Remove header `name` from meta, if there. */
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

/* s3fs's x-amz-meta-xattr without xattr `name` (a changed or removed item
 * now lives in its own header, or nowhere); its other items stay. */
static int s3fs_xattr_forget(struct http_headers *meta, const char *name)
{
    char *rest;
    int rc = s3fs_xattr_without(http_headers_get(meta, S3FS_XATTR_HEADER), name, &rest);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0 && rest)
        rc = http_headers_set(meta, S3FS_XATTR_HEADER, rest);
    else if (rc == 0)
        header_drop(meta, S3FS_XATTR_HEADER);
    free(rest);
    return rc;
}

static int edit_xattr(void *arg, enum sky_kind kind, struct http_headers *meta,
                      struct sky_err *e)
{
    struct xattr_edit *x = arg;
    char xname[300];
    snprintf(xname, sizeof xname, "user.%s", x->header + 11);
    bool in_s3fs = s3fs_xattr_has(http_headers_get(meta, S3FS_XATTR_HEADER), xname);
    bool exists = http_headers_get(meta, x->header) != NULL || in_s3fs;
    if (in_s3fs && !x->value && s3fs_xattr_forget(meta, xname) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    if (!x->value || (x->flags & XATTR_REPLACE_FLAG)) {
        if (!exists)
            return sky_fail(e, ENODATA, "no attribute %s", x->header + 11);
    }
    if (x->value && (x->flags & XATTR_CREATE_FLAG) && exists)
        return sky_fail(e, EEXIST, "attribute %s exists", x->header + 11);
    if (!x->value) {
        header_drop(meta, x->header);
        return 0;
    }
    char *json;     /* an object s3fs gave xattrs keeps them where s3fs reads them */
    int jrc = s3fs_xattr_with(http_headers_get(meta, S3FS_XATTR_HEADER), xname, x->value,
                              x->len, &json);
    int rc;
    if (jrc == 0) {
        header_drop(meta, x->header);
        rc = http_headers_set(meta, S3FS_XATTR_HEADER, json);
        free(json);
    } else if (jrc == -ENOMEM) {
        rc = -ENOMEM;
    } else {
        char *v = xattr_encode(x->value, x->len);
        rc = v ? http_headers_set(meta, x->header, v) : -ENOMEM;
        free(v);
    }
    if (rc < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    size_t bytes = http_headers_bytes(meta, "x-amz-meta-");
    if (bytes > S3_USER_META_MAX)
        return sky_fail(e, E2BIG, "the metadata would be %zu bytes, past S3's limit of %d",
                        bytes, S3_USER_META_MAX);
    return 0;
}

static int s3_setxattr(void *ctx, const char *path, const char *name, const void *value,
                       size_t len, int flags, struct sky_err *e)
{
    struct s3 *s = ctx;
    char hname[300];
    if (xattr_header(name, hname, sizeof hname) < 0)
        return sky_fail(e, ENOTSUP, "s3 '%s': %s: attribute name %s cannot be stored "
                        "(user.* with lowercase letters, digits, '-', '_', '.')", s->name, path,
                        name);
    struct xattr_edit x = { hname, value ? value : "", len, flags };
    int rc = edit_meta(s, path, edit_xattr, &x, NULL, e);
    if (rc == -ENODATA || rc == -EEXIST || rc == -E2BIG)
        sky_err_prefix(e, "s3 '%s': %s", s->name, path);
    return rc;
}

static int s3_removexattr(void *ctx, const char *path, const char *name, struct sky_err *e)
{
    struct s3 *s = ctx;
    char hname[300];
    if (xattr_header(name, hname, sizeof hname) < 0)
        return sky_fail(e, ENODATA, "s3 '%s': %s: no attribute %s", s->name, path, name);
    struct xattr_edit x = { hname, NULL, 0, 0 };
    int rc = edit_meta(s, path, edit_xattr, &x, NULL, e);
    if (rc == -ENODATA)
        sky_err_prefix(e, "s3 '%s': %s", s->name, path);
    return rc;
}

/* Cloud metadata of a HEAD answer: Content-Type, x-amz-storage-class
 * (absent means STANDARD) and the user items, decoded. */
static int objmeta_from_headers(const struct http_headers *h, struct sky_objmeta *m)
{
    const char *sc = http_headers_get(h, "x-amz-storage-class");
    m->has_user = true;
    int rc = sky_objmeta_set(&m->content_type, http_headers_get(h, "content-type"));
    if (rc == 0)
        rc = sky_objmeta_set(&m->storage_class, sc && *sc ? sc : "STANDARD");
    for (size_t i = 0; rc == 0 && i < h->n; i++) {
        const char *name = h->h[i].name, *text = h->h[i].value;
        if (!is_user_xattr_header(name))
            continue;
        ssize_t n = xattr_decode(text, NULL);
        unsigned char *v = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (v) {
            xattr_decode(text, v);
            rc = sky_objmeta_add_user(m, name + 11, v, (size_t)n);
        } else {            /* not valid base64: shown as stored */
            rc = n < 0 ? sky_objmeta_add_user(m, name + 11, text, strlen(text)) : -ENOMEM;
        }
        free(v);
    }
    /* s3fs's items, unless a header of ours says otherwise */
    if (rc == 0)
        rc = s3fs_xattr_read(http_headers_get(h, S3FS_XATTR_HEADER), m);
    return rc;
}

/* One HEAD (of the object, else of its "dir/" marker; an implicit
 * directory costs a one-key LIST too). */
static int s3_get_meta(void *ctx, const char *path, struct sky_attr *attr,
                       struct sky_objmeta *meta, struct sky_err *e)
{
    struct s3 *s = ctx;
    memset(meta, 0, sizeof *meta);
    meta->has_user = true;
    if (!*path || (!s->bucket && !strchr(path, '/')))
        return s3_stat(ctx, path, attr, e);     /* the root or a bucket: no metadata */
    struct s3_loc l;
    int rc = s3_locate(s, path, &l, e);
    if (rc < 0)
        return rc;
    char show[1024], *key = NULL;
    loc_show(&l, show, sizeof show, s);
    struct http_response head;
    enum sky_kind kind = SKY_FILE;
    bool dir_exists;
    rc = head_meta(s, &l, &head, &key, &kind, &dir_exists, show, e);
    if (rc == -ENOENT && dir_exists) {
        dir_attr(attr);                         /* a prefix without marker */
        rc = 0;
    } else if (rc == 0) {
        s3_attr_from_headers(&head.headers, attr);
        if (kind == SKY_DIR) {
            attr->kind = SKY_DIR;
            attr->size = 0;
            attr->etag[0] = '\0';
        } else {
            typed_note(s, l.bucket, l.key, attr);
        }
        if (objmeta_from_headers(&head.headers, meta) < 0)
            rc = sky_fail(e, ENOMEM, "out of memory");
        http_response_free(&head);
    }
    free(key);
    loc_free(&l);
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

static int setup_endpoint(struct s3 *s, const struct sky_cloud_config *cfg, struct sky_err *e)
{
    const char *region = sky_cloud_get(cfg, "region");
    s->region = strdup(region && *region ? region : "us-east-1");
    const char *ep = sky_cloud_get(cfg, "endpoint");
    char *url = NULL;
    if (ep && *ep)
        url = strdup(ep);
    else if (asprintf(&url, "https://s3.%s.amazonaws.com", s->region) < 0)
        url = NULL;
    if (!s->region || !url) {
        free(url);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    const char *host;
    if (strncasecmp(url, "https://", 8) == 0) {
        s->https = true;
        host = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        host = url + 7;
    } else {
        free(url);
        return cfg_fail(cfg, "endpoint", EINVAL,
                        "must start with http:// or https:// (e.g. https://s3.example.com)", e);
    }
    size_t hlen = strcspn(host, "/?#");
    const char *rest = host + hlen;
    if (hlen == 0 || (*rest && strcmp(rest, "/") != 0)) {
        free(url);
        return cfg_fail(cfg, "endpoint", EINVAL,
                        "must be scheme://host[:port] with no path; put the bucket in `bucket`", e);
    }
    s->host = strndup(host, hlen);
    free(url);
    if (!s->host)
        return sky_fail(e, ENOMEM, "out of memory");
    s->path_style = sky_cloud_bool(cfg, "path_style", ep && *ep);
    return 0;
}

static int setup_bucket(struct s3 *s, const struct sky_cloud_config *cfg, struct sky_err *e)
{
    const char *bucket = sky_cloud_get(cfg, "bucket");
    const char *prefix = sky_cloud_get(cfg, "prefix");
    if (bucket && *bucket) {
        if (strchr(bucket, '/') || strlen(bucket) > 63)
            return cfg_fail(cfg, "bucket", EINVAL,
                            "must be a bucket name (put the rest of the path in `prefix`)", e);
        if (!(s->bucket = strdup(bucket)))
            return sky_fail(e, ENOMEM, "out of memory");
        /* dotted names do not match the wildcard certificate */
        if (strchr(bucket, '.') && s->https)
            s->path_style = true;
    } else if (prefix && *prefix) {
        return cfg_fail(cfg, "prefix", EINVAL, "needs `bucket` as well", e);
    }
    prefix = prefix ? prefix : "";
    while (*prefix == '/')
        prefix++;
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/')
        n--;
    if (!(s->prefix = strndup(prefix, n)))
        return sky_fail(e, ENOMEM, "out of memory");
    return 0;
}

static char *trimmed(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return strndup(s, n);
}

/* [profile] of ~/.aws/credentials (or $AWS_SHARED_CREDENTIALS_FILE). */
static void creds_from_file(struct s3 *s, const char *profile)
{
    const char *path = getenv("AWS_SHARED_CREDENTIALS_FILE");
    char buf[4096];
    if (!path || !*path) {
        const char *home = getenv("HOME");
        if (!home)
            return;
        snprintf(buf, sizeof buf, "%s/.aws/credentials", home);
        path = buf;
    }
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[4096];
    bool in_section = false;
    while (fgets(line, sizeof line, f)) {
        char *t = trimmed(line, strlen(line));
        if (!t)
            break;
        if (t[0] == '[') {
            char *end = strchr(t, ']');
            char *name = end ? trimmed(t + 1, (size_t)(end - t - 1)) : NULL;
            in_section = name && strcmp(name, profile) == 0;
            free(name);
        } else if (in_section && t[0] != '#' && t[0] != ';' && strchr(t, '=')) {
            char *eq = strchr(t, '=');
            char *k = trimmed(t, (size_t)(eq - t)), *v = trimmed(eq + 1, strlen(eq + 1));
            char **slot = !k ? NULL
                        : strcasecmp(k, "aws_access_key_id") == 0 ? &s->access_key
                        : strcasecmp(k, "aws_secret_access_key") == 0 ? &s->secret_key
                        : strcasecmp(k, "aws_session_token") == 0 ? &s->session_token : NULL;
            if (slot && v && !*slot) {
                *slot = v;
                v = NULL;
            }
            free(k);
            free(v);
        }
        free(t);
    }
    fclose(f);
}

static int dup_opt(char **dst, const char *src)
{
    if (!src || !*src)
        return 0;
    return (*dst = strdup(src)) ? 0 : -ENOMEM;
}

static int setup_creds(struct s3 *s, const struct sky_cloud_config *cfg, struct sky_err *e)
{
    const char *id = sky_cloud_get(cfg, "access_key_id");
    const char *secret = sky_cloud_get(cfg, "secret_access_key");
    int rc = 0;
    if (id && *id) {
        if (!secret || !*secret)
            return cfg_fail(cfg, "secret_access_key", EINVAL,
                            "missing; access_key_id needs its secret", e);
        rc |= dup_opt(&s->access_key, id);
        rc |= dup_opt(&s->secret_key, secret);
        rc |= dup_opt(&s->session_token, sky_cloud_get(cfg, "session_token"));
    } else if (getenv("AWS_ACCESS_KEY_ID") && getenv("AWS_SECRET_ACCESS_KEY")) {
        rc |= dup_opt(&s->access_key, getenv("AWS_ACCESS_KEY_ID"));
        rc |= dup_opt(&s->secret_key, getenv("AWS_SECRET_ACCESS_KEY"));
        rc |= dup_opt(&s->session_token, getenv("AWS_SESSION_TOKEN"));
    } else {
        const char *profile = sky_cloud_get(cfg, "profile");
        if (!profile || !*profile)
            profile = getenv("AWS_PROFILE");
        creds_from_file(s, profile && *profile ? profile : "default");
    }
    if (rc)
        return sky_fail(e, ENOMEM, "out of memory");
    if (!s->access_key || !s->secret_key)
        return cfg_fail(cfg, NULL, EACCES,
                        "no S3 credentials: set access_key_id and secret_access_key, or "
                        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a [profile] in "
                        "~/.aws/credentials", e);
    s->creds.access_key = s->access_key;
    s->creds.secret_key = s->secret_key;
    s->creds.session_token = s->session_token;
    return 0;
}

static void wipe(char *p)
{
    if (p) {
        memset(p, 0, strlen(p));
        free(p);
    }
}

static void s3_close(void *ctx)
{
    struct s3 *s = ctx;
    if (!s)
        return;
    http_client_free(s->http);
    links_free(s);
    linkprobe_free(s->probe);
    pthread_mutex_destroy(&s->links_lock);
    free(s->name);
    free(s->host);
    free(s->region);
    free(s->bucket);
    free(s->prefix);
    free(s->access_key);
    wipe(s->secret_key);
    wipe(s->session_token);
    free(s);
}

static int s3_open(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e)
{
    struct s3 *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(cfg->name))) {
        free(s);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->links_lock, NULL);
    int rc = sky_cloud_bool(cfg, "symlinks", true) && linkprobe_new(&s->probe) < 0
                 ? sky_fail(e, ENOMEM, "out of memory") : 0;
    if (rc == 0)
        rc = setup_endpoint(s, cfg, e);
    if (rc == 0)
        rc = setup_bucket(s, cfg, e);
    if (rc == 0)
        rc = setup_creds(s, cfg, e);
    if (rc == 0) {
        struct http_options opt;
        rc = http_options_from_cloud(cfg, &opt, e);
        if (rc == 0)
            rc = http_client_new(&opt, &s->http, e);
        if (rc < 0 && e && e->code != EINVAL)
            sky_err_prefix(e, "%s:%d: [%s] ca_file", cfg->file ? cfg->file : "config",
                           sky_cloud_line(cfg, "ca_file"), cfg->name);
    }
    if (rc < 0) {
        s3_close(s);
        return rc;
    }
    *ctx = s;
    return 0;
}

static const struct sky_key s3_keys[] = {
    { "endpoint", 0,
      "URL of the S3 service, scheme://host[:port] (default https://s3.<region>.amazonaws.com)" },
    { "region", 0, "signing region (default us-east-1)" },
    { "bucket", 0, "bucket to show; without it the root lists the account's buckets" },
    { "prefix", 0, "key prefix inside the bucket used as the cloud's root" },
    { "path_style", SKY_KEY_BOOL,
      "bucket in the URL path, not the host name (default: yes when endpoint is set)" },
    { "access_key_id", 0, "access key (else AWS_ACCESS_KEY_ID, else ~/.aws/credentials)" },
    { "secret_access_key", SKY_KEY_SECRET, "secret key matching access_key_id" },
    { "session_token", SKY_KEY_SECRET, "session token for temporary credentials" },
    { "profile", 0, "section of ~/.aws/credentials to use (default: default)" },
    HTTP_CLOUD_KEYS,
    { "ca_file", 0, "extra CA certificates (PEM) trusted for https" },
    { "symlinks", SKY_KEY_BOOL,
      "no: the bucket holds no symlinks, so listings send no HEAD for small objects "
      "(default yes)" },
    { NULL, 0, NULL },
};

const struct sky_driver sky_driver_s3 = {
    .type = "s3",
    .summary = "Amazon S3 and compatible object stores (one bucket, or all of an account's)",
    .keys = s3_keys,
    .caps = SKY_CAP_CONTENT_TYPE,
    .open = s3_open,
    .close = s3_close,
    .list = s3_list,
    .list_tree = s3_list_tree,
    .stat = s3_stat,
    .read = s3_read,
    .write = s3_write,
    .upload_part_size = S3_STREAM_PART,
    .upload_begin = s3_upload_begin,
    .upload_part = s3_upload_part,
    .upload_finish = s3_upload_finish,
    .upload_abort = s3_upload_abort,
    .remove = s3_remove,
    .mkdir = s3_mkdir,
    .rmdir = s3_rmdir,
    .rename = s3_rename,
    .set_attr = s3_set_attr,
    .symlink = s3_symlink,
    .mknod = s3_mknod,
    .readlink = s3_readlink,
    .getxattr = s3_getxattr,
    .setxattr = s3_setxattr,
    .listxattr = s3_listxattr,
    .removexattr = s3_removexattr,
    .get_meta = s3_get_meta,
    .statfs = NULL,
    .set_known_kinds = s3_set_known_kinds,
};
