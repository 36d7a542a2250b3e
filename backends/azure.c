/*
 * azure.c - the `azure` cloud kind: Azure Blob Storage (and Azurite).
 *
 * A cloud is one container plus an optional prefix; without `container`
 * the cloud's root lists the account's containers as directories and paths
 * are "container/blob...".  Blobs are block blobs.
 *
 * Conventions, chosen to match the tools people already use on the same
 * containers:
 *   - Directories are prefixes.  mkdir writes a marker the way blobfuse2
 *     does: a zero-length blob named like the directory (no trailing slash)
 *     with metadata hdi_isfolder=true.  Zero-length "dir/" blobs (other
 *     tools) are accepted as markers too: where a directory has one and
 *     no blobfuse2 marker, its metadata (mode, owner, mtime) is the
 *     directory's, and chmod, utime and xattrs edit it rather than add a
 *     second marker.
 *   - POSIX attributes live in blob metadata: mode, uid and gid in decimal
 *     (mode is the full st_mode, as s3fs writes it), mtime in rclone's form
 *     (RFC 3339 with nanoseconds).  Both RFC 3339 and decimal seconds are
 *     read back.
 *   - A symlink is a blob whose body is the target and whose mode has
 *     S_IFLNK (as s3fs does on S3).  FIFOs, sockets and device nodes are
 *     empty blobs whose mode has S_IFIFO, S_IFSOCK, S_IFCHR or S_IFBLK,
 *     devices with their number in metadata rdev (decimal).
 *   - user.NAME extended attributes are metadata NAME (when NAME is a
 *     valid metadata name in lowercase: a C identifier); names other tools
 *     wrote in capitals show in lowercase.
 *     Listings ask for metadata (include=metadata), so each listed blob
 *     also carries its user metadata, Content-Type and access tier
 *     (sky_dirent.meta): the index needs no HEAD per blob.
 *
 * A new blob gets the content type and user metadata fs/ passes (driver.h:
 * a rewrite keeps the old blob's): x-ms-blob-content-type and x-ms-meta-*
 * on Put Blob and Put Block List; items Azure cannot carry, or past its
 * 8 KiB limit, are left out.
 *
 * Uploads up to 8 MiB are one Put Blob; larger ones are Put Block calls on
 * four threads followed by Put Block List, so the new content appears at
 * once.  Streamed uploads (driver.h) send Put Block while the file is
 * written and Put Block List at close.  Renames are Copy Blob + Delete
 * Blob, blob by blob for directories.
 * Listings are parsed as they stream through expat (xml.h drops the
 * Encoded="true" attribute Azure puts on names it had to percent-encode).
 *
 * ETags: Set Blob Metadata (chmod, utime, xattrs) and Copy Blob (rename)
 * give a blob a new ETag without changing its bytes, while fs/ keeps
 * reading with the ETag it cached.  The driver remembers these changes (a
 * small ring per cloud) and sends reads with the current ETag, so only a
 * change of content made elsewhere turns into -ESTALE.
 *
 * Auth (Shared Key, SAS, connection strings) lives in azure_auth.c.  All
 * shared state here is read-only after open, so calls from many threads
 * never wait for each other; the HTTP client pools connections.
 */
#include "driver.h"

#include <ctype.h>
#include <errno.h>
#include <expat.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "azure_auth.h"
#include "http.h"
#include "names.h"
#include "paging.h"
#include "parallel.h"
#include "xml.h"

#define AZ_PUT_BLOB_MAX   (8ull << 20)   /* larger files go up in blocks */
#define AZ_BLOCK_MIN      (8ull << 20)
#define AZ_BLOCK_MAX      (4000ull << 20)
#define AZ_MAX_BLOCKS     50000u
#define AZ_UPLOAD_THREADS 4
#define AZ_TAG_LEN        10      /* block id = tag + 5 digits */
#define AZ_WHOLE_TAG      "skyfs-blk-"
#define AZ_ALIASES        64      /* remembered metadata-only ETag changes */
#define AZ_META_MAX       8192    /* bytes of metadata names and values a blob takes */

struct az {
    char *name;             /* cloud name, for messages */
    char *endpoint;         /* scheme://host[:port][/account], no trailing '/' */
    char *container;        /* NULL: the root lists containers */
    char *prefix;           /* "" or "a/b/" (always ends with '/') */
    char *sas;              /* SAS query string (no '?'), or NULL */
    struct azure_auth auth;
    struct http_client *http;
    /* Metadata updates change a blob's ETag but not its bytes; reads that
     * still carry the old ETag are sent with the new one.  A small ring. */
    pthread_mutex_t alias_lock;
    struct etag_alias {
        char *blob;                 /* container/blob, malloc'd */
        char old_etag[SKY_ETAG_MAX], new_etag[SKY_ETAG_MAX];
    } aliases[AZ_ALIASES];
    unsigned alias_next;
};

/* Where a path lives: container (NULL for the account root) and blob name
 * ("" for the container itself).  `own` holds the malloc'd storage. */
struct az_loc {
    const char *container;
    char *blob;
    char *own_container;
};

/* ---- small helpers ----------------------------------------------------- */

static void loc_free(struct az_loc *l)
{
    free(l->blob);
    free(l->own_container);
    memset(l, 0, sizeof *l);
}

static int oom(struct sky_err *e)
{
    return sky_fail(e, ENOMEM, "out of memory");
}

/* Path inside the cloud -> container and blob name. */
static int az_locate(const struct az *a, const char *path, struct az_loc *l, struct sky_err *e)
{
    memset(l, 0, sizeof *l);
    if (a->container) {
        l->container = a->container;
        if (!*path)
            l->blob = strdup(a->prefix[0] ? a->prefix : "");
        else if (asprintf(&l->blob, "%s%s", a->prefix, path) < 0)
            l->blob = NULL;
        if (l->blob && *path == '\0' && a->prefix[0])
            l->blob[strlen(l->blob) - 1] = '\0'; /* "a/b/" -> "a/b" */
        return l->blob ? 0 : oom(e);
    }
    const char *slash = strchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : strlen(path);
    if (n) {
        l->own_container = strndup(path, n);
        l->container = l->own_container;
    }
    l->blob = strdup(slash ? slash + 1 : "");
    if (!l->blob || (n && !l->own_container)) {
        loc_free(l);
        return oom(e);
    }
    return 0;
}

/* The path of a blob relative to the cloud root, for messages. */
static const char *shown(const char *path)
{
    return *path ? path : "/";
}

static void set_etag(struct sky_attr *a, const char *etag)
{
    if (!etag)
        return;
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        etag++;
        n -= 2;
    }
    if (n >= sizeof a->etag)
        n = sizeof a->etag - 1;
    memcpy(a->etag, etag, n);
    a->etag[n] = '\0';
}

static bool valid_name(const char *s, size_t n)
{
    return sky_name_problem(s, n) == NULL;
}

/* A listed blob that cannot be shown: why, for the warning (its name part
 * name[0..n) cannot be a file name, or its size is no file's size). */
static void warn_skipped(const struct az *a, const char *blob, const char *name, size_t n,
                         const char *where)
{
    char show[600];
    sky_name_show(blob, strlen(blob), show, sizeof show);
    const char *why = sky_name_problem(name, n);
    LOG_WARN("azure '%s': skipping blob \"%s\" in %s: %s%s%s", a->name, show, where,
             why ? "not a valid file name (its name " : "its size is not a file size",
             why ? why : "", why ? ")" : "");
}

/* ---- times ------------------------------------------------------------- */

static int month_index(const char *m)
{
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    for (int i = 0; i < 12; i++)
        if (strncasecmp(m, months[i], 3) == 0)
            return i;
    return -1;
}

/* "Mon, 01 Jan 2024 00:00:00 GMT" -> ns; false if malformed. */
static bool parse_http_date(const char *s, int64_t *ns)
{
    struct tm tm = { 0 };
    char mon[4] = "";
    if (!s || sscanf(s, "%*3s, %d %3s %d %d:%d:%d", &tm.tm_mday, mon, &tm.tm_year, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec) != 6)
        return false;
    tm.tm_mon = month_index(mon);
    if (tm.tm_mon < 0)
        return false;
    tm.tm_year -= 1900;
    *ns = (int64_t)timegm(&tm) * 1000000000LL;
    return true;
}

/* RFC 3339 ("2024-01-02T03:04:05.123456789Z", "+02:00" offsets) or decimal
 * seconds ("1704164645", "1704164645.5") -> ns. */
static bool parse_mtime(const char *s, int64_t *ns)
{
    struct tm tm = { 0 };
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) == 6) {
        const char *p = s + used;
        int64_t frac = 0, scale = 1000000000LL;
        if (*p == '.')
            for (p++; isdigit((unsigned char)*p); p++)
                if (scale > 1) {
                    scale /= 10;
                    frac += (*p - '0') * scale;
                }
        int64_t off = 0;
        int oh, om;
        if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
            off = (*p == '+' ? 1 : -1) * (oh * 3600 + om * 60);
        else if (*p != 'Z' && *p != 'z')
            return false;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        *ns = ((int64_t)timegm(&tm) - off) * 1000000000LL + frac;
        return true;
    }
    char *end;
    double d = strtod(s, &end);
    if (end == s || *end)
        return false;
    *ns = (int64_t)(d * 1e9);
    return true;
}

static void format_mtime(int64_t ns, char out[48])
{
    int64_t sec = ns / 1000000000LL, frac = ns % 1000000000LL;
    if (frac < 0) {
        frac += 1000000000LL;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
}

/* ---- POSIX metadata ---------------------------------------------------- */

/* What the metadata of one blob says. */
struct az_meta {
    bool has_mode, has_uid, has_gid, has_mtime, is_folder;
    uint32_t mode, uid, gid;    /* mode: full st_mode */
    uint64_t rdev;              /* devices: metadata rdev */
    int64_t mtime_ns;
};

static bool parse_u32(const char *v, uint32_t *out)
{
    char *end;
    /* Decimal (s3fs); a leading 0 means octal (rclone's "0100644"). */
    unsigned long x = strtoul(v, &end, v[0] == '0' && v[1] ? 8 : 10);
    if (end == v || *end || x > UINT32_MAX)
        return false;
    *out = (uint32_t)x;
    return true;
}

/* Feed one metadata item (name without "x-ms-meta-"). */
static void meta_take(struct az_meta *m, const char *name, const char *value)
{
    if (strcasecmp(name, "mode") == 0)
        m->has_mode = parse_u32(value, &m->mode);
    else if (strcasecmp(name, "uid") == 0)
        m->has_uid = parse_u32(value, &m->uid);
    else if (strcasecmp(name, "gid") == 0)
        m->has_gid = parse_u32(value, &m->gid);
    else if (strcasecmp(name, "mtime") == 0)
        m->has_mtime = parse_mtime(value, &m->mtime_ns);
    else if (strcasecmp(name, "hdi_isfolder") == 0)
        m->is_folder = strcasecmp(value, "true") == 0;
    else if (strcasecmp(name, "rdev") == 0)
        m->rdev = strtoull(value, NULL, 10);
}

/* Metadata that is ours (or blobfuse2's, or rclone's times), never shown
 * as user metadata. */
static bool meta_is_posix(const char *name)
{
    static const char *const posix[] = { "mode", "uid", "gid", "mtime", "atime", "ctime",
                                         "btime", "hdi_isfolder", "rdev", NULL };
    for (int i = 0; posix[i]; i++)
        if (strcasecmp(name, posix[i]) == 0)
            return true;
    return false;
}

/* Can user.NAME be stored as metadata NAME?  A C identifier in lowercase
 * (names are case-insensitive; HEAD answers show them lowercased), not one
 * of ours. */
static bool user_meta_name_ok(const char *n)
{
    size_t len = strlen(n);
    bool ok = len > 0 && len < 200 && (islower((unsigned char)n[0]) || n[0] == '_');
    for (size_t i = 0; ok && i < len; i++)
        ok = islower((unsigned char)n[i]) || isdigit((unsigned char)n[i]) || n[i] == '_';
    return ok && !meta_is_posix(n);
}

/* One metadata item into the user metadata of m, unless it is POSIX;
 * names are lowercased, as HEAD answers show them. */
static int user_meta_take(struct sky_objmeta *m, const char *name, const char *value)
{
    char key[256];
    if (meta_is_posix(name) || strlen(name) >= sizeof key)
        return 0;
    size_t i = 0;
    for (; name[i]; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[i] = '\0';
    return sky_objmeta_add_user(m, key, value, strlen(value));
}

/* Attributes of a blob from its properties and metadata. */
static void attr_from_blob(struct sky_attr *a, uint64_t size, int64_t last_modified_ns,
                           const char *etag, const struct az_meta *m)
{
    memset(a, 0, sizeof *a);
    a->kind = SKY_FILE;
    if (m->is_folder)
        a->kind = SKY_DIR;
    else if (m->has_mode && S_ISLNK(m->mode))
        a->kind = SKY_LINK;
    else if (m->has_mode && S_ISDIR(m->mode) && size == 0)
        a->kind = SKY_DIR;
    else if (m->has_mode && sky_kind_special(sky_kind_of_mode(m->mode)))
        a->kind = (enum sky_kind)sky_kind_of_mode(m->mode);
    if (a->kind == SKY_CHR || a->kind == SKY_BLK)
        a->rdev = m->rdev;
    a->size = a->kind == SKY_FILE || a->kind == SKY_LINK ? size : 0;
    a->mtime_ns = m->has_mtime ? m->mtime_ns : last_modified_ns;
    a->mode = m->mode & 07777;
    a->uid = m->uid;
    a->gid = m->gid;
    a->has = (m->has_mode ? SKY_HAS_MODE : 0) | (m->has_uid ? SKY_HAS_UID : 0) |
             (m->has_gid ? SKY_HAS_GID : 0) |
             (m->has_mtime || last_modified_ns ? SKY_HAS_MTIME : 0);
    if (a->kind != SKY_DIR)
        set_etag(a, etag);
}

static void attr_dir(struct sky_attr *a, int64_t mtime_ns)
{
    memset(a, 0, sizeof *a);
    a->kind = SKY_DIR;
    a->mtime_ns = mtime_ns;
    a->has = mtime_ns ? SKY_HAS_MTIME : 0;
}

/* Set x-ms-meta-{mode,uid,gid,mtime} from attr for a blob of kind k (a
 * symlink or special file always gets a mode, since that is what marks
 * it, and a device its rdev). */
static int add_posix_meta(struct http_headers *hs, const struct sky_attr *attr, unsigned which,
                          enum sky_kind k)
{
    char v[48];
    int rc = 0;
    if ((which & SKY_HAS_MODE) || k == SKY_LINK || sky_kind_special((int)k)) {
        /* a special file's mode is written again with any change: its
         * permission bits are attr's when known */
        bool known = (which & SKY_HAS_MODE) ||
                     (k != SKY_LINK && attr && (attr->has & SKY_HAS_MODE));
        uint32_t perm = known ? attr->mode & 07777 : k == SKY_LINK ? 0777 : 0644;
        snprintf(v, sizeof v, "%u", sky_kind_type_bits((int)k) | perm);
        rc |= http_headers_set(hs, "x-ms-meta-mode", v);
    }
    if (k == SKY_CHR || k == SKY_BLK) {
        snprintf(v, sizeof v, "%llu", (unsigned long long)attr->rdev);
        rc |= http_headers_set(hs, "x-ms-meta-rdev", v);
    }
    if (which & SKY_HAS_UID) {
        snprintf(v, sizeof v, "%u", attr->uid);
        rc |= http_headers_set(hs, "x-ms-meta-uid", v);
    }
    if (which & SKY_HAS_GID) {
        snprintf(v, sizeof v, "%u", attr->gid);
        rc |= http_headers_set(hs, "x-ms-meta-gid", v);
    }
    if (which & SKY_HAS_MTIME) {
        format_mtime(attr->mtime_ns, v);
        rc |= http_headers_set(hs, "x-ms-meta-mtime", v);
    }
    return rc < 0 ? -ENOMEM : 0;
}

/* ---- requests ---------------------------------------------------------- */

/* One REST call.  `blob` NULL or "" addresses the container (or, with
 * container NULL, the account); `query` has no '?'. */
struct az_req {
    const char *method;
    const char *container;
    const char *blob;
    const char *query;
    struct http_headers headers;
    const void *body;
    int body_fd;
    uint64_t body_off, body_len;
    http_sink_fn sink;              /* a 2xx body goes here, at most out_cap bytes */
    void *sink_arg;
    size_t out_cap;
    uint64_t range_off, range_len;  /* range_len > 0: a ranged GET (http.h) */
};

static void req_init(struct az_req *r, const char *method, const struct az_loc *l,
                     const char *query)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->container = l ? l->container : NULL;
    r->blob = l ? l->blob : NULL;
    r->query = query;
    r->body_fd = -1;
}

/* Full URL of a container or blob, with `query` and the SAS appended. */
static char *az_url(const struct az *a, const char *container, const char *blob,
                    const char *query)
{
    char *cont = container ? http_uri_encode(container, 0) : strdup("");
    char *name = blob && *blob ? http_uri_encode(blob, 1) : strdup("");
    char *url = NULL;
    const char *q = query && *query ? query : NULL;
    if (cont && name &&
        asprintf(&url, "%s/%s%s%s%s%s%s%s", a->endpoint, cont, *name ? "/" : "", name,
                 q || a->sas ? "?" : "", q ? q : "", q && a->sas ? "&" : "",
                 a->sas ? a->sas : "") < 0)
        url = NULL;
    free(cont);
    free(name);
    return url;
}

/* Send r; 0 when any response came back (check resp->status). */
static int az_do(struct az *a, struct az_req *r, struct http_response *resp, struct sky_err *e)
{
    memset(resp, 0, sizeof *resp);
    char *url = az_url(a, r->container, r->blob, r->query);
    if (!url) {
        http_headers_free(&r->headers);
        return oom(e);
    }
    struct http_request req = {
        .method = r->method,
        .url = url,
        .headers = r->headers,
        .body = r->body,
        .body_fd = r->body_fd,
        .body_off = r->body_off,
        .body_len = r->body_len,
        .out_cap = r->out_cap,
        .sink = r->sink,
        .sink_arg = r->sink_arg,
        .range_header = r->range_len ? "x-ms-range" : NULL,
        .range_off = r->range_off,
        .range_len = r->range_len,
        .sign = azure_sign_request,
        .sign_arg = &a->auth,
    };
    memset(&r->headers, 0, sizeof r->headers);
    int rc = http_do(a->http, &req, resp, e);
    http_headers_free(&req.headers);
    free(url);
    return rc;
}

static bool status_ok(long status)
{
    return status >= 200 && status < 300;
}

/* errno for a failed response. */
static int status_errno(long status, const char *code)
{
    code = code ? code : "";
    switch (status) {
    case 400:
        return strstr(code, "InvalidResourceName") || strstr(code, "OutOfRange") ? EINVAL : EIO;
    case 401:
    case 403:
        return EACCES;
    case 404:
        return ENOENT;
    case 409:
        if (strstr(code, "AlreadyExists"))
            return EEXIST;
        if (strstr(code, "BeingDeleted") || strstr(code, "Lease"))
            return EBUSY;
        return EIO;
    case 412:
        return ESTALE;
    case 413:
        return EFBIG;
    default:
        return EIO;
    }
}

/* Fill e for a failed response: "azure 'c': GET dir/a.txt: 404 BlobNotFound". */
static int az_fail_resp(struct az *a, const char *op, const char *path,
                        const struct http_response *resp, struct sky_err *e)
{
    const char *code = http_headers_get(&resp->headers, "x-ms-error-code");
    int err = status_errno(resp->status, code);
    return sky_fail(e, err, "azure '%s': %s %s: %ld %s", a->name, op, shown(path), resp->status,
                    code ? code : "");
}

/* Transport failure (no response): prefix http.c's message. */
static int az_fail_transport(struct az *a, const char *op, const char *path, int rc,
                             struct sky_err *e)
{
    if (e && e->code) {
        sky_err_prefix(e, "azure '%s': %s %s", a->name, op, shown(path));
        return rc;
    }
    return sky_fail(e, -rc, "azure '%s': %s %s: %s", a->name, op, shown(path), strerror(-rc));
}

/* az_do + status check; on success the caller frees resp. */
static int az_call(struct az *a, struct az_req *r, const char *op, const char *path,
                   struct http_response *resp, struct sky_err *e)
{
    int rc = az_do(a, r, resp, e);
    if (rc < 0) {
        http_response_free(resp);
        return az_fail_transport(a, op, path, rc, e);
    }
    if (!status_ok(resp->status)) {
        rc = az_fail_resp(a, op, path, resp, e);
        http_response_free(resp);
        return rc;
    }
    return 0;
}

/* Same, for calls whose response is not needed. */
static int az_call0(struct az *a, struct az_req *r, const char *op, const char *path,
                    struct sky_err *e)
{
    struct http_response resp;
    int rc = az_call(a, r, op, path, &resp, e);
    if (rc == 0)
        http_response_free(&resp);
    return rc;
}

/* Metadata from response headers ("x-ms-meta-NAME"). */
static void meta_from_headers(struct az_meta *m, const struct http_headers *hs)
{
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < hs->n; i++)
        if (strncasecmp(hs->h[i].name, "x-ms-meta-", 10) == 0)
            meta_take(m, hs->h[i].name + 10, hs->h[i].value);
}

static void attr_from_headers(struct sky_attr *a, const struct http_headers *hs)
{
    struct az_meta m;
    int64_t lm = 0;
    const char *len = http_headers_get(hs, "content-length");
    meta_from_headers(&m, hs);
    parse_http_date(http_headers_get(hs, "last-modified"), &lm);
    attr_from_blob(a, len ? strtoull(len, NULL, 10) : 0, lm, http_headers_get(hs, "etag"), &m);
}

/* ---- listings (XML) ---------------------------------------------------- */

/* One <Blob>, <BlobPrefix> or <Container> of a listing. */
struct az_item {
    char *name;             /* full blob (or container) name, decoded */
    bool is_prefix;         /* <BlobPrefix> */
    uint64_t size;
    int64_t last_modified_ns;
    char etag[SKY_ETAG_MAX];
    struct az_meta meta;
    struct sky_objmeta cloud;   /* content type, access tier, user metadata */
};

/* Called per item; 0 goes on, 1 stops the listing early (success), < 0
 * stops it with that error. */
typedef int (*az_item_fn)(void *arg, const struct az_item *it);

#define XML_DEPTH_MAX 16

struct list_parser {
    char *stack[XML_DEPTH_MAX];
    int depth;
    char *text;
    size_t text_len, text_cap;
    bool name_encoded;
    bool latin1;            /* parsed as ISO-8859-1: texts need unmapping (xml.c) */
    int item_depth;         /* depth of the open item element, 0 if none */
    struct az_item cur;
    char *next_marker;
    az_item_fn fn;
    void *arg;
    int rc;                 /* first non-zero callback result */
    bool nomem;
};

/* A name Azure sent percent-encoded (Encoded="true"), decoded; NULL when
 * it holds a NUL byte once decoded (%00: no path can name it, and cut at
 * the NUL it would be another blob's name), with a warning. */
static char *pct_decode_dup(const char *s, bool *nomem)
{
    char *out = strdup(s);
    if (!out) {
        *nomem = true;
        return NULL;
    }
    size_t n = sky_pct_decode(out, false);
    if (memchr(out, '\0', n)) {
        char show[512];
        sky_name_show(out, n, show, sizeof show);
        LOG_WARN("azure: skipping listed blob \"%s\": not a valid file name (it holds a NUL "
                 "byte)", show);
        free(out);
        return NULL;
    }
    return out;
}

static void lp_start(void *ud, const XML_Char *el, const XML_Char **attrs)
{
    struct list_parser *p = ud;
    if (p->depth < XML_DEPTH_MAX) {
        p->stack[p->depth] = strdup(el);
        if (!p->stack[p->depth])
            p->nomem = true;
    }
    p->depth++;
    p->text_len = 0;
    if (p->depth == 3 && (strcmp(el, "Blob") == 0 || strcmp(el, "BlobPrefix") == 0 ||
                          strcmp(el, "Container") == 0)) {
        sky_objmeta_free(&p->cur.cloud);
        memset(&p->cur, 0, sizeof p->cur);
        p->cur.is_prefix = strcmp(el, "BlobPrefix") == 0;
        p->cur.cloud.has_user = !p->cur.is_prefix;
        p->item_depth = p->depth;
    }
    if (p->item_depth && p->depth == p->item_depth + 1 && strcmp(el, "Name") == 0) {
        p->name_encoded = false;
        for (int i = 0; attrs[i]; i += 2)
            if (strcmp(attrs[i], "Encoded") == 0 && strcasecmp(attrs[i + 1], "true") == 0)
                p->name_encoded = true;
    }
}

static void lp_text(void *ud, const XML_Char *s, int len)
{
    struct list_parser *p = ud;
    if (p->text_len + (size_t)len + 1 > p->text_cap) {
        size_t cap = (p->text_len + (size_t)len + 1) * 2;
        char *t = realloc(p->text, cap);
        if (!t) {
            p->nomem = true;
            return;
        }
        p->text = t;
        p->text_cap = cap;
    }
    memcpy(p->text + p->text_len, s, (size_t)len);
    p->text_len += (size_t)len;
    p->text[p->text_len] = '\0';
}

/* End of an element inside the current item. */
static void lp_item_field(struct list_parser *p, const char *el, const char *text)
{
    int rel = p->depth - p->item_depth;   /* 1: child of item, 2: grandchild */
    const char *parent = p->depth >= 2 && p->depth - 2 < XML_DEPTH_MAX ? p->stack[p->depth - 2] : "";
    if (rel == 1 && strcmp(el, "Name") == 0) {
        free(p->cur.name);
        p->cur.name = p->name_encoded ? pct_decode_dup(text, &p->nomem) : strdup(text);
        if (!p->cur.name && !p->name_encoded)
            p->nomem = true;
    } else if (rel == 2 && parent && strcmp(parent, "Properties") == 0) {
        if (strcmp(el, "Content-Length") == 0 && sky_size_parse(text, &p->cur.size) < 0)
            p->cur.size = UINT64_MAX;       /* no file's size: listings skip it */
        else if (strcmp(el, "Last-Modified") == 0)
            parse_http_date(text, &p->cur.last_modified_ns);
        else if (strcmp(el, "Etag") == 0) {
            struct sky_attr tmp;
            set_etag(&tmp, text);
            memcpy(p->cur.etag, tmp.etag, sizeof tmp.etag);
        } else if (strcmp(el, "Content-Type") == 0 && *text) {
            p->nomem |= sky_objmeta_set(&p->cur.cloud.content_type, text) < 0;
        } else if (strcmp(el, "AccessTier") == 0 && *text) {
            p->nomem |= sky_objmeta_set(&p->cur.cloud.storage_class, text) < 0;
        }
    } else if (rel == 2 && parent && strcmp(parent, "Metadata") == 0) {
        meta_take(&p->cur.meta, el, text);
        p->nomem |= user_meta_take(&p->cur.cloud, el, text) < 0;
    }
}

static void lp_end(void *ud, const XML_Char *el)
{
    struct list_parser *p = ud;
    if (p->latin1 && p->text_len)
        p->text_len = sky_latin1_unmap(p->text);
    const char *text = p->text_len ? p->text : "";
    if (p->item_depth && p->depth > p->item_depth) {
        lp_item_field(p, el, text);
    } else if (p->item_depth && p->depth == p->item_depth) {
        if (p->cur.name && p->rc == 0)
            p->rc = p->fn(p->arg, &p->cur);
        free(p->cur.name);
        p->cur.name = NULL;
        sky_objmeta_free(&p->cur.cloud);
        p->item_depth = 0;
    } else if (p->depth == 2 && strcmp(el, "NextMarker") == 0) {
        free(p->next_marker);
        p->next_marker = p->text_len ? strdup(text) : NULL;
    }
    p->depth--;
    if (p->depth < XML_DEPTH_MAX) {
        free(p->stack[p->depth]);
        p->stack[p->depth] = NULL;
    }
    p->text_len = 0;
}

/* Parse one listing page; *next = NextMarker (malloc'd) or NULL. */
static int parse_listing(const char *body, size_t len, az_item_fn fn, void *arg, char **next,
                         int *cb_rc)
{
    /* a body that is not UTF-8 is read as ISO-8859-1 (see xml.c), so that
     * one blob's raw bytes cost that blob, not the page */
    struct list_parser p = { .fn = fn, .arg = arg, .latin1 = body && !sky_utf8_valid(body, len) };
    XML_Parser xp = XML_ParserCreate(p.latin1 ? "ISO-8859-1" : NULL);
    if (!xp)
        return -ENOMEM;
    XML_SetUserData(xp, &p);
    XML_SetElementHandler(xp, lp_start, lp_end);
    XML_SetCharacterDataHandler(xp, lp_text);
    int ok = XML_Parse(xp, body ? body : "", (int)len, 1) == XML_STATUS_OK;
    XML_ParserFree(xp);
    for (int i = 0; i < XML_DEPTH_MAX; i++)
        free(p.stack[i]);
    free(p.text);
    free(p.cur.name);
    sky_objmeta_free(&p.cur.cloud);
    *cb_rc = p.rc;
    if (!ok || p.nomem || p.rc < 0) {
        free(p.next_marker);
        *next = NULL;
        return p.nomem ? -ENOMEM : ok ? 0 : -EPROTO;
    }
    *next = p.next_marker;
    return 0;
}

/* What to list: blobs of `container` under `prefix` (with or without the
 * '/' delimiter), or the account's containers when container is NULL. */
struct az_listing {
    const char *container;
    const char *prefix;
    bool delimiter;
    unsigned max_results;   /* per page; 0 = server default (5000) */
    bool first_page_only;
};

static char *listing_query(const struct az_listing *ls, const char *marker)
{
    char *pfx = http_uri_encode(ls->prefix ? ls->prefix : "", 0);
    char *mk = marker ? http_uri_encode(marker, 0) : NULL;
    char max[32] = "";
    char *q = NULL;
    if (ls->max_results)
        snprintf(max, sizeof max, "&maxresults=%u", ls->max_results);
    if (pfx && (!marker || mk) &&
        asprintf(&q, "%scomp=list&include=metadata%s%s%s%s%s",
                 ls->container ? "restype=container&" : "", ls->delimiter ? "&delimiter=%2F" : "",
                 *pfx ? "&prefix=" : "", pfx, mk ? "&marker=" : "", mk ? mk : "") < 0)
        q = NULL;
    if (q && max[0]) {
        char *q2 = NULL;
        if (asprintf(&q2, "%s%s", q, max) < 0)
            q2 = NULL;
        free(q);
        q = q2;
    }
    free(pfx);
    free(mk);
    return q;
}

/* Passes each listed item on, telling the listing's guard its name. */
struct guarded_items {
    struct list_guard guard;
    az_item_fn fn;
    void *arg;
};

static int guarded_item(void *arg, const struct az_item *it)
{
    struct guarded_items *g = arg;
    list_guard_item(&g->guard, it->name);
    return g->fn(g->arg, it);
}

/* Run a listing over all pages, calling fn per item.  A server that
 * repeats its NextMarker or sends pages without progress stops the
 * listing (backends/paging.h). */
static int az_list_all(struct az *a, const struct az_listing *ls, const char *path,
                       az_item_fn fn, void *arg, struct sky_err *e)
{
    char *marker = NULL;
    struct guarded_items g = { LIST_GUARD_INIT, fn, arg };
    int rc = 0;
    do {
        char *query = listing_query(ls, marker);
        free(marker);
        marker = NULL;
        if (!query) {
            rc = oom(e);
            break;
        }
        struct az_req r;
        struct az_loc l = { .container = ls->container };
        req_init(&r, "GET", &l, query);
        struct http_response resp;
        rc = az_call(a, &r, "LIST", path, &resp, e);
        free(query);
        if (rc < 0)
            break;
        int cb_rc = 0;
        rc = parse_listing(resp.body, resp.body_len, guarded_item, &g, &marker, &cb_rc);
        size_t page_bytes = resp.body_len;
        http_response_free(&resp);
        if (rc < 0) {
            rc = sky_fail(e, -rc, "azure '%s': LIST %s: %s", a->name, shown(path),
                          rc == -EPROTO ? "malformed XML in the listing" : strerror(-rc));
            break;
        }
        if (cb_rc < 0) {
            rc = cb_rc;
            break;
        }
        if (cb_rc > 0 || ls->first_page_only)
            break;
        if (list_guard_page(&g.guard, page_bytes, marker, e) < 0) {
            rc = sky_err_prefix(e, "azure '%s': LIST %s", a->name, shown(path));
            break;
        }
    } while (marker && *marker);
    free(marker);
    list_guard_free(&g.guard);
    return rc;
}

/* ---- open / close ------------------------------------------------------ */

static void az_free(struct az *a)
{
    if (!a)
        return;
    if (a->http)
        http_client_free(a->http);
    for (unsigned i = 0; i < AZ_ALIASES; i++)
        free(a->aliases[i].blob);
    pthread_mutex_destroy(&a->alias_lock);
    free(a->name);
    free(a->endpoint);
    free(a->container);
    free(a->prefix);
    free(a->sas);
    free(a->auth.account);
    if (a->auth.key)
        memset(a->auth.key, 0, a->auth.key_len);
    free(a->auth.key);
    free(a);
}

static void az_close(void *ctx)
{
    az_free(ctx);
}

/* Account name from a path-style (http://host/account) or host-style
 * (https://account.blob...) endpoint. */
static char *account_from_endpoint(const char *endpoint)
{
    const char *host = strstr(endpoint, "://");
    host = host ? host + 3 : endpoint;
    const char *path = strchr(host, '/');
    if (path && path[1])
        return strndup(path + 1, strcspn(path + 1, "/"));
    size_t n = strcspn(host, ".:/");
    return n && host[n] == '.' ? strndup(host, n) : NULL;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* "/a/b/" -> "a/b/"; "" -> "". */
static char *normalize_prefix(const char *p)
{
    while (p && *p == '/')
        p++;
    if (!p || !*p)
        return strdup("");
    size_t n = strlen(p);
    while (n && p[n - 1] == '/')
        n--;
    char *out = malloc(n + 2);
    if (out) {
        memcpy(out, p, n);
        out[n] = '/';
        out[n + 1] = '\0';
    }
    return out;
}

/* Where the credentials come from: explicit keys win over the connection
 * string, which comes from the config or AZURE_STORAGE_CONNECTION_STRING. */
static int az_credentials(struct az *a, const struct sky_cloud_config *cfg, struct sky_err *e)
{
    const char *account = sky_cloud_get(cfg, "account");
    const char *key = sky_cloud_get(cfg, "key");
    const char *sas = sky_cloud_get(cfg, "sas_token");
    const char *endpoint = sky_cloud_get(cfg, "endpoint");
    const char *conn_str = sky_cloud_get(cfg, "connection_string");
    const char *conn_key = "connection_string";
    if (!conn_str && !account && !key && !sas) {
        conn_str = getenv("AZURE_STORAGE_CONNECTION_STRING");
        conn_key = "AZURE_STORAGE_CONNECTION_STRING";
    }
    struct azure_conn conn = { 0 };
    if (conn_str && *conn_str) {
        int rc = azure_conn_parse(conn_str, &conn, e);
        if (rc < 0)
            return sky_err_prefix(e, "%s:%d: azure cloud '%s': %s", cfg->file,
                                  sky_cloud_line(cfg, "connection_string"), cfg->name, conn_key);
    }
    a->endpoint = dup_or_null(endpoint ? endpoint : conn.endpoint);
    a->auth.account = dup_or_null(account ? account : conn.account);
    if (!key && !sas)
        key = conn.key, sas = conn.sas;
    a->sas = key ? NULL : dup_or_null(sas && *sas == '?' ? sas + 1 : sas);

    int rc = 0;
    if (!a->endpoint && a->auth.account &&
        asprintf(&a->endpoint, "https://%s.blob.core.windows.net", a->auth.account) < 0)
        a->endpoint = NULL;
    if (a->endpoint && !a->auth.account)
        a->auth.account = account_from_endpoint(a->endpoint);
    if (!a->endpoint)
        rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': no account; set account = NAME "
                      "(or endpoint, or connection_string)", cfg->file, cfg->line, cfg->name);
    else if (!key && !a->sas)
        rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': no credentials; set key, sas_token "
                      "or connection_string", cfg->file, cfg->line, cfg->name);
    else if (key && !a->auth.account)
        rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': key needs account = NAME", cfg->file,
                      cfg->line, cfg->name);
    else if (key && azure_key_decode(key, &a->auth.key, &a->auth.key_len, e) < 0)
        rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': the account key is not valid base64; "
                      "copy it again from the portal", cfg->file,
                      sky_cloud_line(cfg, sky_cloud_get(cfg, "key") ? "key" : "connection_string"),
                      cfg->name);
    azure_conn_free(&conn);
    return rc;
}

static int az_open(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e)
{
    struct az *a = calloc(1, sizeof *a);
    if (!a)
        return oom(e);
    pthread_mutex_init(&a->alias_lock, NULL);
    a->name = strdup(cfg->name);
    int rc = az_credentials(a, cfg, e);
    if (rc == 0 && strncmp(a->endpoint, "http://", 7) != 0 &&
        strncmp(a->endpoint, "https://", 8) != 0)
        rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': endpoint must start with http:// or "
                      "https://", cfg->file, sky_cloud_line(cfg, "endpoint"), cfg->name);
    if (rc == 0) {
        size_t n = strlen(a->endpoint);
        while (n && a->endpoint[n - 1] == '/')
            a->endpoint[--n] = '\0';
        const char *container = sky_cloud_get(cfg, "container");
        const char *prefix = sky_cloud_get(cfg, "prefix");
        a->container = dup_or_null(container);
        a->prefix = normalize_prefix(a->container ? prefix : NULL);
        if (prefix && *prefix && !a->container)
            rc = sky_fail(e, EINVAL, "%s:%d: azure cloud '%s': prefix needs container = NAME",
                          cfg->file, sky_cloud_line(cfg, "prefix"), cfg->name);
    }
    if (rc == 0 && (!a->name || !a->prefix))
        rc = oom(e);
    if (rc == 0) {
        struct http_options opt;
        rc = http_options_from_cloud(cfg, &opt, e);
        if (rc == 0)
            rc = http_client_new(&opt, &a->http, e);
    }
    if (rc < 0) {
        az_free(a);
        return rc;
    }
    *ctx = a;
    return 0;
}

/* ---- stat -------------------------------------------------------------- */

static int found_any(void *arg, const struct az_item *it)
{
    (void)it;
    *(bool *)arg = true;
    return 1;
}

/* Does anything exist under blob prefix `blob`/ ? */
static int az_has_children(struct az *a, const struct az_loc *l, const char *path, bool *any,
                           struct sky_err *e)
{
    char *prefix = NULL;
    if (*l->blob && asprintf(&prefix, "%s/", l->blob) < 0)
        return oom(e);
    struct az_listing ls = { .container = l->container, .prefix = prefix ? prefix : "",
                             .delimiter = true, .max_results = 1, .first_page_only = true };
    *any = false;
    int rc = az_list_all(a, &ls, path, found_any, any, e);
    free(prefix);
    return rc;
}

/* HEAD of a blob, or of a container when l->blob is "". */
static int az_head(struct az *a, const struct az_loc *l, const char *path,
                   struct http_response *resp, struct sky_err *e)
{
    struct az_req r;
    req_init(&r, "HEAD", l, *l->blob ? NULL : "restype=container");
    return az_call(a, &r, "HEAD", path, resp, e);
}

/* HEAD the "blob/" marker other tools write for directory l->blob: 0 and
 * *resp when it exists, -ENOENT when not.  *marker (may be NULL) gets its
 * location (free with loc_free). */
static int az_head_slash_marker(struct az *a, const struct az_loc *l, const char *path,
                                struct http_response *resp, struct az_loc *marker,
                                struct sky_err *e)
{
    struct az_loc m = { .container = l->container };
    if (asprintf(&m.blob, "%s/", l->blob) < 0)
        return oom(e);
    int rc = az_head(a, &m, path, resp, e);
    if (rc == 0 && marker)
        *marker = m;
    else
        free(m.blob);
    return rc;
}

static int az_stat_loc(struct az *a, const struct az_loc *l, const char *path,
                       struct sky_attr *out, struct sky_err *e)
{
    struct http_response resp;
    if (!l->container) {                    /* the account: check we may list it */
        bool any;
        int rc = az_has_children(a, l, path, &any, e);
        if (rc == 0)
            attr_dir(out, 0);
        return rc;
    }
    int rc = az_head(a, l, path, &resp, e);
    if (rc == 0) {
        if (*l->blob) {
            attr_from_headers(out, &resp.headers);
        } else {
            int64_t lm = 0;
            parse_http_date(http_headers_get(&resp.headers, "last-modified"), &lm);
            attr_dir(out, lm);
        }
        http_response_free(&resp);
        return 0;
    }
    if (rc != -ENOENT || !*l->blob)
        return rc;
    rc = az_head_slash_marker(a, l, path, &resp, NULL, e);
    if (rc == 0) {                          /* another tool's "dir/": its metadata */
        attr_from_headers(out, &resp.headers);
        http_response_free(&resp);
        out->kind = SKY_DIR;
        out->size = 0;
        out->etag[0] = '\0';
        return 0;
    }
    if (rc != -ENOENT)
        return rc;
    bool any;
    rc = az_has_children(a, l, path, &any, e);
    if (rc < 0)
        return rc;
    if (!any)
        return sky_fail(e, ENOENT, "azure '%s': %s: no such file or directory", a->name,
                        shown(path));
    attr_dir(out, 0);
    return 0;
}

static int az_stat(void *ctx, const char *path, struct sky_attr *out, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    int rc = az_locate(a, path, &l, e);
    if (rc == 0 && !*path && l.container)
        l.blob[0] = '\0';                  /* the root is the container (prefix or not) */
    if (rc == 0)
        rc = az_stat_loc(a, &l, path, out, e);
    loc_free(&l);
    return rc;
}

/* ---- list -------------------------------------------------------------- */

struct az_entry {
    char *name;
    struct sky_attr attr;
    struct sky_objmeta *cloud;  /* a blob's cloud metadata; NULL for prefixes */
    int rank;               /* which duplicate wins: marker dir 3, prefix dir 2, file 1 */
};

struct list_ctx {
    struct az *a;
    const char *path;       /* directory being listed, for messages */
    size_t prefix_len;      /* bytes of the blob names to strip */
    bool account;           /* listing containers */
    bool saw_self;          /* a "dir/" marker blob was listed */
    struct az_entry *ents;
    size_t n, cap;
    struct sky_err *e;
};

static int list_push(struct list_ctx *c, const char *name, size_t len, const struct sky_attr *a,
                     const struct sky_objmeta *cloud, int rank)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct az_entry *p = realloc(c->ents, cap * sizeof *p);
        if (!p)
            return oom(c->e);
        c->ents = p;
        c->cap = cap;
    }
    struct az_entry *ent = &c->ents[c->n];
    ent->name = strndup(name, len);
    ent->cloud = cloud ? malloc(sizeof *ent->cloud) : NULL;
    if (ent->cloud && sky_objmeta_copy(ent->cloud, cloud)) {
        free(ent->cloud);
        ent->cloud = NULL;
    }
    if (!ent->name || (cloud && !ent->cloud)) {
        free(ent->name);
        free(ent->cloud);
        return oom(c->e);
    }
    ent->attr = *a;
    ent->rank = rank;
    c->n++;
    return 0;
}

static void list_free(struct list_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->ents[i].name);
        sky_objmeta_free(c->ents[i].cloud);
        free(c->ents[i].cloud);
    }
    free(c->ents);
}

static int list_item(void *arg, const struct az_item *it)
{
    struct list_ctx *c = arg;
    struct sky_attr attr;
    if (c->account) {
        attr_dir(&attr, it->last_modified_ns);
        return list_push(c, it->name, strlen(it->name), &attr, NULL, 2);
    }
    if (strlen(it->name) < c->prefix_len)
        return 0;
    const char *rest = it->name + c->prefix_len;
    size_t len = strlen(rest);
    if (it->is_prefix && len && rest[len - 1] == '/')
        len--;
    if (!it->is_prefix && len == 0) {
        c->saw_self = true;         /* "dir/" marker of the listed directory */
        return 0;
    }
    if (!valid_name(rest, len) || (!it->is_prefix && it->size > SKY_SIZE_MAX)) {
        warn_skipped(c->a, it->name, rest, len, shown(c->path));
        return 0;
    }
    if (it->is_prefix) {
        attr_dir(&attr, 0);
        return list_push(c, rest, len, &attr, NULL, 2);
    }
    attr_from_blob(&attr, it->size, it->last_modified_ns, it->etag, &it->meta);
    return list_push(c, rest, len, &attr, &it->cloud, attr.kind == SKY_DIR ? 3 : 1);
}

static int cmp_entry(const void *x, const void *y)
{
    const struct az_entry *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : b->rank - a->rank;    /* best first */
}

/* Sort, keep the best of each name, and hand the entries to cb. */
static int list_deliver(struct list_ctx *c, sky_list_cb cb, void *arg)
{
    if (c->n)
        qsort(c->ents, c->n, sizeof *c->ents, cmp_entry);
    for (size_t i = 0; i < c->n; i++) {
        if (i > 0 && strcmp(c->ents[i].name, c->ents[i - 1].name) == 0) {
            if (c->ents[i].rank == 1)
                LOG_WARN("azure '%s': blob \"%s\" in %s is hidden by a directory of the same "
                         "name", c->a->name, c->ents[i].name, shown(c->path));
            continue;
        }
        struct sky_dirent d = { .name = c->ents[i].name, .attr = c->ents[i].attr,
                                .meta = c->ents[i].cloud };
        int rc = cb(arg, &d);
        if (rc < 0)
            return sky_fail(c->e, -rc, "azure '%s': listing %s stopped: %s", c->a->name,
                            shown(c->path), strerror(-rc));
    }
    return 0;
}

/* An empty listing: is `dir` an empty directory, a file, or nothing? */
static int list_check_empty(struct az *a, const char *dir, struct sky_err *e)
{
    struct sky_attr st;
    int rc = az_stat(a, dir, &st, e);
    if (rc == 0 && st.kind != SKY_DIR)
        return sky_fail(e, ENOTDIR, "azure '%s': %s: not a directory", a->name, shown(dir));
    return rc;
}

static int az_list(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    int rc = az_locate(a, dir, &l, e);
    if (rc < 0)
        return rc;
    char *prefix = NULL;
    if (*l.blob && asprintf(&prefix, "%s/", l.blob) < 0) {
        loc_free(&l);
        return oom(e);
    }
    struct list_ctx c = { .a = a, .path = dir, .prefix_len = prefix ? strlen(prefix) : 0,
                          .account = !l.container, .e = e };
    struct az_listing ls = { .container = l.container, .prefix = prefix ? prefix : "",
                             .delimiter = true };
    rc = az_list_all(a, &ls, dir, list_item, &c, e);
    if (rc == 0 && c.n == 0 && !c.saw_self && *dir)
        rc = list_check_empty(a, dir, e);
    if (rc == 0)
        rc = list_deliver(&c, cb, arg);
    list_free(&c);
    free(prefix);
    loc_free(&l);
    return rc;
}

/* ---- list_tree: everything under a directory, flat --------------------- */

struct tree_ctx {
    struct az *a;
    const char *dir;        /* for messages */
    size_t prefix_len;      /* bytes of blob names to strip */
    const char *name_prefix;    /* "container/" in account mode, else "" */
    sky_list_cb cb;
    void *arg;
    struct sky_err *e;
};

/* Every '/'-separated part of a relative name can be a file name. */
static bool valid_rel_path(const char *rel)
{
    while (*rel) {
        size_t n = strcspn(rel, "/");
        if (!valid_name(rel, n))
            return false;
        rel += n;
        if (*rel == '/' && !*++rel)
            return false;
    }
    return true;
}

static int tree_item(void *arg, const struct az_item *it)
{
    struct tree_ctx *t = arg;
    if (strlen(it->name) <= t->prefix_len)
        return 0;                           /* the directory's own "dir/" marker */
    char *rel = NULL;
    if (asprintf(&rel, "%s%s", t->name_prefix, it->name + t->prefix_len) < 0)
        return oom(t->e);
    size_t len = strlen(rel);
    bool slash_marker = rel[len - 1] == '/';
    if (slash_marker)
        rel[--len] = '\0';
    int rc = 0;
    if (!valid_rel_path(rel) || it->size > SKY_SIZE_MAX) {
        const char *part = rel;     /* the first part that cannot be a name */
        while (valid_name(part, strcspn(part, "/")) && part[strcspn(part, "/")])
            part += strcspn(part, "/") + 1;
        warn_skipped(t->a, it->name, part, strcspn(part, "/"), shown(t->dir));
    } else {
        struct sky_dirent d = { .name = rel, .meta = &it->cloud };
        attr_from_blob(&d.attr, it->size, it->last_modified_ns, it->etag, &it->meta);
        if (slash_marker) {
            attr_dir(&d.attr, it->last_modified_ns);
            d.meta = NULL;
        }
        rc = t->cb(t->arg, &d);
        if (rc < 0)
            rc = sky_fail(t->e, -rc, "azure '%s': listing %s stopped: %s", t->a->name,
                          shown(t->dir), strerror(-rc));
    }
    free(rel);
    return rc;
}

static int tree_container(struct az *a, const char *container, const char *blob_dir,
                          struct tree_ctx *t)
{
    char *prefix = NULL;
    if (*blob_dir && asprintf(&prefix, "%s/", blob_dir) < 0)
        return oom(t->e);
    t->prefix_len = prefix ? strlen(prefix) : 0;
    struct az_listing ls = { .container = container, .prefix = prefix ? prefix : "" };
    int rc = az_list_all(a, &ls, t->dir, tree_item, t, t->e);
    free(prefix);
    return rc;
}

/* Account root: each container is a directory, then its blobs. */
static int tree_account_item(void *arg, const struct az_item *it)
{
    struct tree_ctx *t = arg;
    struct sky_dirent d = { .name = it->name };
    attr_dir(&d.attr, it->last_modified_ns);
    int rc = t->cb(t->arg, &d);
    if (rc < 0)
        return sky_fail(t->e, -rc, "azure '%s': listing stopped: %s", t->a->name, strerror(-rc));
    char *name_prefix = NULL;
    if (asprintf(&name_prefix, "%s/", it->name) < 0)
        return oom(t->e);
    struct tree_ctx sub = *t;
    sub.name_prefix = name_prefix;
    rc = tree_container(t->a, it->name, "", &sub);
    free(name_prefix);
    return rc;
}

static int az_list_tree(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    int rc = az_locate(a, dir, &l, e);
    if (rc < 0)
        return rc;
    struct tree_ctx t = { .a = a, .dir = dir, .name_prefix = "", .cb = cb, .arg = arg, .e = e };
    if (!l.container) {
        struct az_listing ls = { .container = NULL };
        rc = az_list_all(a, &ls, dir, tree_account_item, &t, e);
    } else {
        rc = tree_container(a, l.container, l.blob, &t);
    }
    loc_free(&l);
    return rc;
}

/* ---- read -------------------------------------------------------------- */

static int add_if_match(struct http_headers *hs, const char *etag)
{
    char q[SKY_ETAG_MAX + 3];
    snprintf(q, sizeof q, "\"%s\"", etag);
    return http_headers_set(hs, "If-Match", q);
}

static bool alias_is(const struct etag_alias *al, const struct az_loc *l, const char *etag)
{
    size_t n = strlen(l->container);
    return al->blob && strcmp(al->old_etag, etag) == 0 && strncmp(al->blob, l->container, n) == 0 &&
           al->blob[n] == '/' && strcmp(al->blob + n + 1, l->blob) == 0;
}

/* Record that blob l went from old_etag to new_etag by a metadata update
 * only; earlier aliases that pointed at old_etag now point at new_etag. */
static void alias_add(struct az *a, const struct az_loc *l, const char *old_etag,
                      const char *new_etag)
{
    char *blob = NULL;
    if (asprintf(&blob, "%s/%s", l->container, l->blob) < 0)
        return;
    pthread_mutex_lock(&a->alias_lock);
    for (unsigned i = 0; i < AZ_ALIASES; i++)
        if (alias_is(&a->aliases[i], l, old_etag) || (a->aliases[i].blob &&
            strcmp(a->aliases[i].blob, blob) == 0 && strcmp(a->aliases[i].new_etag, old_etag) == 0))
            snprintf(a->aliases[i].new_etag, SKY_ETAG_MAX, "%s", new_etag);
    struct etag_alias *al = &a->aliases[a->alias_next++ % AZ_ALIASES];
    free(al->blob);
    al->blob = blob;
    snprintf(al->old_etag, SKY_ETAG_MAX, "%s", old_etag);
    snprintf(al->new_etag, SKY_ETAG_MAX, "%s", new_etag);
    pthread_mutex_unlock(&a->alias_lock);
}

/* After blob src (ETag src_etag) was copied to dst as new_etag: the old
 * ETags that src's bytes went by name the copy too. */
static void alias_copy(struct az *a, const struct az_loc *src, const char *src_etag,
                       const struct az_loc *dst, const char *new_etag)
{
    char olds[AZ_ALIASES][SKY_ETAG_MAX];
    unsigned n = 0;
    pthread_mutex_lock(&a->alias_lock);
    for (unsigned i = 0; i < AZ_ALIASES; i++) {
        const struct etag_alias *al = &a->aliases[i];
        if (al->blob && strcmp(al->new_etag, src_etag) == 0 &&
            alias_is(al, src, al->old_etag))
            memcpy(olds[n++], al->old_etag, SKY_ETAG_MAX);
    }
    pthread_mutex_unlock(&a->alias_lock);
    alias_add(a, dst, src_etag, new_etag);
    for (unsigned i = 0; i < n; i++)
        alias_add(a, dst, olds[i], new_etag);
}

/* The ETag the blob's current bytes carry, given one the caller knows. */
static void alias_resolve(struct az *a, const struct az_loc *l, const char *etag,
                          char out[SKY_ETAG_MAX])
{
    snprintf(out, SKY_ETAG_MAX, "%s", etag);
    pthread_mutex_lock(&a->alias_lock);
    for (unsigned i = 0; i < AZ_ALIASES; i++)
        if (alias_is(&a->aliases[i], l, etag))
            snprintf(out, SKY_ETAG_MAX, "%s", a->aliases[i].new_etag);
    pthread_mutex_unlock(&a->alias_lock);
}

/* GET [off, off+len) of path, to sink as it arrives (driver.h). */
static int az_read(void *ctx, const char *path, const char *etag, uint64_t off, uint64_t len,
                   sky_sink_fn sink, void *sink_arg, struct sky_err *e)
{
    struct az *a = ctx;
    if (len == 0)
        return 0;
    struct az_loc l;
    int rc = az_locate(a, path, &l, e);
    if (rc < 0)
        return rc;
    struct az_req r;
    req_init(&r, "GET", &l, NULL);
    r.sink = sink;
    r.sink_arg = sink_arg;
    r.out_cap = (size_t)len;
    r.range_off = off;
    r.range_len = len;      /* http.c asks for it and checks the answer */
    char current[SKY_ETAG_MAX] = "";
    if (etag && *etag)
        alias_resolve(a, &l, etag, current);
    if (*current && add_if_match(&r.headers, current) < 0) {
        http_headers_free(&r.headers);
        loc_free(&l);
        return oom(e);
    }
    struct http_response resp;
    rc = az_do(a, &r, &resp, e);
    if (rc < 0) {
        rc = az_fail_transport(a, "GET", path, rc, e);
    } else if (status_ok(resp.status) || resp.status == 416) {
        /* delivered; 416: at or past the end, nothing to read */
    } else if (resp.status == 412) {
        rc = sky_fail(e, ESTALE, "azure '%s': GET %s: changed since it was listed (etag %s)",
                      a->name, path, etag);
    } else {
        rc = az_fail_resp(a, "GET", path, &resp, e);
    }
    http_response_free(&resp);
    loc_free(&l);
    return rc;
}

/* ---- write ------------------------------------------------------------- */

/* The new blob's attributes after an upload answered with `resp`. */
static void attr_after_put(struct sky_attr *out, const struct http_response *resp, uint64_t size,
                           const struct sky_attr *attr, enum sky_kind kind)
{
    int64_t lm = 0;
    parse_http_date(http_headers_get(&resp->headers, "last-modified"), &lm);
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->size = size;
    out->mode = attr ? attr->mode & 07777 : 0;
    out->uid = attr ? attr->uid : 0;
    out->gid = attr ? attr->gid : 0;
    out->rdev = attr && (kind == SKY_CHR || kind == SKY_BLK) ? attr->rdev : 0;
    out->has = attr ? attr->has : 0;
    out->mtime_ns = (out->has & SKY_HAS_MTIME) ? attr->mtime_ns : lm;
    if (lm)
        out->has |= SKY_HAS_MTIME;
    if (kind == SKY_LINK) {
        out->has |= SKY_HAS_MODE;
        if (!(attr && (attr->has & SKY_HAS_MODE)))
            out->mode = 0777;
    }
    set_etag(out, http_headers_get(&resp->headers, "etag"));
}

static bool header_safe(const void *v, size_t len);

/* meta's user items as x-ms-meta-KEY, skipping those Azure cannot carry
 * (name, value, or past the size limit: that one with a warning naming
 * the cloud and path); 0 or -ENOMEM. */
static int add_user_meta(const struct az *a, const char *path, struct http_headers *hs,
                         const struct sky_objmeta *meta)
{
    for (size_t i = 0; meta && i < meta->nuser; i++) {
        const struct sky_meta_item *it = &meta->user[i];
        char name[256];
        if (!user_meta_name_ok(it->key) || !header_safe(it->value, it->len))
            continue;
        size_t bytes = http_headers_bytes(hs, "x-ms-meta-") + strlen(it->key) + it->len;
        if (bytes > AZ_META_MAX) {
            LOG_WARN("azure '%s': PUT %s: user metadata %s left out: it would take the blob's "
                     "metadata to %zu bytes, past Azure's limit of %d", a->name, shown(path),
                     it->key, bytes, AZ_META_MAX);
            continue;
        }
        snprintf(name, sizeof name, "x-ms-meta-%s", it->key);
        if (http_headers_set(hs, name, it->value) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* Headers of a new blob: type, content type (meta's, else the default),
 * POSIX metadata, meta's user items (meta may be NULL). */
static int new_blob_headers(const struct az *a, const char *path, struct http_headers *hs,
                            const struct sky_attr *attr, const struct sky_objmeta *meta,
                            enum sky_kind k, bool block_list)
{
    const char *type = "application/octet-stream";
    if (meta && meta->content_type && *meta->content_type &&
        header_safe(meta->content_type, strlen(meta->content_type)))
        type = meta->content_type;
    int rc = 0;
    if (!block_list)
        rc |= http_headers_set(hs, "x-ms-blob-type", "BlockBlob");
    rc |= http_headers_set(hs, block_list ? "x-ms-blob-content-type" : "Content-Type", type);
    if (k == SKY_DIR)
        rc |= http_headers_set(hs, "x-ms-meta-hdi_isfolder", "true");
    if (rc < 0 || add_posix_meta(hs, attr, attr ? attr->has : 0, k) < 0)
        return -ENOMEM;
    return add_user_meta(a, path, hs, meta);
}

/* One Put Blob with the body from memory or from fd. */
static int az_put_blob(struct az *a, const struct az_loc *l, const char *path,
                       const void *body, int fd, uint64_t size, const struct sky_attr *attr,
                       const struct sky_objmeta *meta, enum sky_kind k, bool exclusive,
                       struct sky_attr *out, struct sky_err *e)
{
    struct az_req r;
    req_init(&r, "PUT", l, NULL);
    r.body = body;
    r.body_fd = fd;
    r.body_len = size;
    if (new_blob_headers(a, path, &r.headers, attr, meta, k, false) < 0 ||
        (exclusive && http_headers_set(&r.headers, "If-None-Match", "*") < 0)) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    int rc = az_call(a, &r, "PUT", path, &resp, e);
    if (rc == -ESTALE)   /* If-None-Match: * failed */
        rc = sky_fail(e, EEXIST, "azure '%s': %s: already exists", a->name, shown(path));
    if (rc < 0)
        return rc;
    if (out)
        attr_after_put(out, &resp, size, attr, k);
    http_response_free(&resp);
    return 0;
}

/* Parallel block upload: workers take the next block number until done
 * or until one fails.  Blocks [first, nblocks) of a file of `size` bytes
 * cut in block_size pieces, named by `tag`. */
struct block_upload {
    struct az *a;
    const struct az_loc *l;
    const char *path;
    int fd;
    uint64_t size, block_size;
    unsigned first, nblocks;
    char tag[AZ_TAG_LEN + 1];
};

/* Block ids must all have the same length within a blob (committed or
 * not): base64 of the 10-byte tag plus 5 digits (15 bytes, so no
 * padding).  Whole uploads use the tag "skyfs-blk-"; each streamed upload
 * has a tag of its own ("skyNNNNNN-"), so blocks of an abandoned stream
 * never end up in another upload's list. */
static void block_id(const char *tag, unsigned i, char out[32])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char raw[AZ_TAG_LEN + 6];
    snprintf(raw, sizeof raw, "%.*s%05u", AZ_TAG_LEN, tag, i % 100000u);
    size_t o = 0;
    for (size_t j = 0; j < 15; j += 3) {
        unsigned v = (unsigned char)raw[j] << 16 | (unsigned char)raw[j + 1] << 8 |
                     (unsigned char)raw[j + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    out[o] = '\0';
}

/* Put Block i: bytes [i * block_size, + len) of fd. */
static int send_block(struct block_upload *u, int fd, unsigned i, uint64_t len,
                      struct sky_err *e)
{
    char id[32], *enc, *query = NULL;
    block_id(u->tag, i, id);
    enc = http_uri_encode(id, 0);
    if (!enc || asprintf(&query, "comp=block&blockid=%s", enc) < 0) {
        free(enc);
        return oom(e);
    }
    free(enc);
    struct az_req r;
    req_init(&r, "PUT", u->l, query);
    r.body_fd = fd;
    r.body_off = (uint64_t)i * u->block_size;
    r.body_len = len;
    int rc = az_call0(u->a, &r, "PUT block of", u->path, e);
    free(query);
    return rc;
}

static int put_block(struct block_upload *u, unsigned i, struct sky_err *e)
{
    uint64_t off = (uint64_t)i * u->block_size;
    return send_block(u, u->fd, i, u->size - off < u->block_size ? u->size - off : u->block_size,
                      e);
}

static int block_job(void *arg, size_t i, struct sky_err *e)
{
    struct block_upload *u = arg;
    return put_block(u, u->first + (unsigned)i, e);
}

static int put_blocks_parallel(struct block_upload *u, struct sky_err *e)
{
    return parallel_for(u->nblocks - u->first, AZ_UPLOAD_THREADS, block_job, u, e);
}

static char *block_list_xml(const char *tag, unsigned nblocks)
{
    static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    static const char tail[] = "</BlockList>";
    size_t per = strlen("<Latest></Latest>") + 20;
    char *xml = malloc(sizeof head + (size_t)nblocks * per + sizeof tail);
    if (!xml)
        return NULL;
    char *p = xml + sprintf(xml, "%s", head);
    for (unsigned i = 0; i < nblocks; i++) {
        char id[32];
        block_id(tag, i, id);
        p += sprintf(p, "<Latest>%s</Latest>", id);
    }
    strcpy(p, tail);
    return xml;
}

/* A Put Block List was retried and its last answer is an error: did the
 * first attempt, whose answer was lost, commit it?  It did when the blob's
 * committed blocks are exactly u's, in order, u->size bytes in all; then
 * *out gets the blob's attributes. */
static bool blocks_landed(struct block_upload *u, const struct sky_attr *attr,
                          struct sky_attr *out)
{
    struct az_req r;
    req_init(&r, "GET", u->l, "comp=blocklist&blocklisttype=committed");
    struct http_response resp;
    struct sky_err ignored = { 0 };
    if (az_call(u->a, &r, "GET block list of", u->path, &resp, &ignored) < 0)
        return false;
    struct xml_node *root = NULL;
    bool same = xml_parse(resp.body, resp.body_len, &root, &ignored) == 0;
    const struct xml_node *b = same ? xml_child(xml_child(root, "CommittedBlocks"), "Block")
                                    : NULL;
    uint64_t total = 0;
    unsigned i = 0;
    for (; same && b; b = xml_next(b), i++) {
        char id[32];
        block_id(u->tag, i, id);
        const char *name = xml_text(b, "Name"), *size = xml_text(b, "Size");
        same = i < u->nblocks && name && strcmp(name, id) == 0 && size;
        if (same)
            total += strtoull(size, NULL, 10);
    }
    same = same && i == u->nblocks && total == u->size;
    xml_free(root);
    if (same) {
        attr_after_put(out, &resp, u->size, attr, SKY_FILE);
        LOG_INFO("azure '%s': PUT block list of %s: the answer was lost; the blob holds the "
                 "upload", u->a->name, shown(u->path));
    }
    http_response_free(&resp);
    return same;
}

/* Put Block List of blocks [0, u->nblocks): the blob appears with attr's
 * and meta's metadata; *out its new attributes.  When the answer of a
 * first attempt was lost and the retry fails, the committed block list
 * decides (blocks_landed). */
static int commit_blocks(struct block_upload *u, const struct sky_attr *attr,
                         const struct sky_objmeta *meta, struct sky_attr *out, struct sky_err *e)
{
    char *xml = block_list_xml(u->tag, u->nblocks);
    if (!xml)
        return oom(e);
    struct az_req r;
    req_init(&r, "PUT", u->l, "comp=blocklist");
    r.body = xml;
    r.body_len = strlen(xml);
    if (http_headers_set(&r.headers, "Content-Type", "application/xml") < 0 ||
        new_blob_headers(u->a, u->path, &r.headers, attr, meta, SKY_FILE, true) < 0) {
        http_headers_free(&r.headers);
        free(xml);
        return oom(e);
    }
    struct http_response resp;
    int rc = az_do(u->a, &r, &resp, e);
    free(xml);
    if (rc < 0)
        return az_fail_transport(u->a, "PUT block list of", u->path, rc, e);
    if (status_ok(resp.status)) {
        attr_after_put(out, &resp, u->size, attr, SKY_FILE);
    } else {
        rc = az_fail_resp(u->a, "PUT block list of", u->path, &resp, e);
        if (http_retried(&resp) && blocks_landed(u, attr, out)) {
            sky_err_clear(e);
            rc = 0;
        }
    }
    http_response_free(&resp);
    return rc;
}

static int az_put_blocks(struct az *a, const struct az_loc *l, const char *path, int fd,
                         uint64_t size, const struct sky_attr *attr,
                         const struct sky_objmeta *meta, struct sky_attr *out, struct sky_err *e)
{
    struct block_upload u = { .a = a, .l = l, .path = path, .fd = fd, .size = size,
                              .block_size = AZ_BLOCK_MIN, .tag = AZ_WHOLE_TAG };
    while ((size + u.block_size - 1) / u.block_size > AZ_MAX_BLOCKS && u.block_size < AZ_BLOCK_MAX)
        u.block_size *= 2;
    u.nblocks = (unsigned)((size + u.block_size - 1) / u.block_size);
    if ((uint64_t)u.nblocks * u.block_size < size)
        return sky_fail(e, EFBIG, "azure '%s': %s: too large for a block blob", a->name, path);
    int rc = put_blocks_parallel(&u, e);
    return rc < 0 ? rc : commit_blocks(&u, attr, meta, out, e);
}

/* Files may not sit at the account root: only containers live there. */
static int need_container(struct az *a, const struct az_loc *l, const char *path,
                          struct sky_err *e)
{
    if (l->container && *l->blob)
        return 0;
    return sky_fail(e, EPERM, "azure '%s': %s: only containers (directories) can be created "
                    "at the account root", a->name, shown(path));
}

static int az_write(void *ctx, const char *path, int fd, uint64_t size,
                    const struct sky_attr *attr, const struct sky_objmeta *meta,
                    struct sky_attr *out, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    int rc = az_locate(a, path, &l, e);
    if (rc == 0)
        rc = need_container(a, &l, path, e);
    if (rc == 0) {
        if (size <= AZ_PUT_BLOB_MAX)
            rc = az_put_blob(a, &l, path, NULL, fd, size, attr, meta, SKY_FILE, false, out, e);
        else
            rc = az_put_blocks(a, &l, path, fd, size, attr, meta, out, e);
    }
    loc_free(&l);
    return rc;
}

/* ---- streamed uploads: Put Block while the file is written ------------- */

/* One streamed upload: blocks of AZ_BLOCK_MIN bytes named with the
 * stream's own tag, committed by Put Block List (which also sets the
 * final metadata).  An abandoned stream leaves uncommitted blocks that
 * Azure drops by itself (at the blob's next commit, or after a week). */
struct az_stream {
    struct block_upload u;
    struct az_loc l;
    char *path;
    struct sky_objmeta meta;    /* committed with the block list */
};

static void az_stream_free(struct az_stream *st)
{
    sky_objmeta_free(&st->meta);
    loc_free(&st->l);
    free(st->path);
    free(st);
}

/* A tag no other streamed upload of this process uses, and unlikely to
 * match one of another process: "sky" + 6 hex digits + "-". */
static void stream_tag(char out[AZ_TAG_LEN + 1])
{
    static atomic_uint counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned n = atomic_fetch_add(&counter, 1) * 2654435761u;
    unsigned v = (n ^ (unsigned)ts.tv_nsec ^ (unsigned)getpid() << 12) & 0xffffffu;
    snprintf(out, AZ_TAG_LEN + 1, "sky%06x-", v);
}

static int az_upload_begin(void *ctx, const char *path, const struct sky_attr *attr,
                           const struct sky_objmeta *meta, void **up, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_stream *st = calloc(1, sizeof *st);
    if (!st)
        return oom(e);
    int rc = az_locate(a, path, &st->l, e);
    if (rc == 0)
        rc = need_container(a, &st->l, path, e);
    if (rc == 0 && !(st->path = strdup(path)))
        rc = oom(e);
    if (rc == 0 && meta && sky_objmeta_copy(&st->meta, meta) < 0)
        rc = oom(e);
    if (rc < 0) {
        az_stream_free(st);
        return rc;
    }
    st->u = (struct block_upload){ .a = a, .l = &st->l, .path = st->path, .fd = -1,
                                   .block_size = AZ_BLOCK_MIN };
    stream_tag(st->u.tag);
    *up = st;
    return 0;
}

/* The error of a file with more blocks than one streamed upload holds. */
static int stream_too_big(const struct az_stream *st, struct sky_err *e)
{
    return sky_fail(e, EFBIG, "azure '%s': %s: a streamed upload holds at most %u blocks",
                    st->u.a->name, shown(st->path), AZ_MAX_BLOCKS);
}

static int az_upload_part(void *up, int fd, uint64_t index, struct sky_err *e)
{
    struct az_stream *st = up;
    if (index >= AZ_MAX_BLOCKS)
        return stream_too_big(st, e);
    return send_block(&st->u, fd, (unsigned)index, st->u.block_size, e);
}

static int az_upload_finish(void *up, int fd, uint64_t nparts, uint64_t size,
                            const struct sky_attr *attr, const struct sky_objmeta *meta,
                            struct sky_attr *out, struct sky_err *e)
{
    struct az_stream *st = up;
    struct block_upload *u = &st->u;
    uint64_t total = (size + u->block_size - 1) / u->block_size;
    int rc = 0;
    if (total > AZ_MAX_BLOCKS)
        rc = stream_too_big(st, e);
    if (rc == 0) {
        u->fd = fd;
        u->size = size;
        u->first = (unsigned)nparts;
        u->nblocks = (unsigned)total;
        if (u->nblocks > u->first)
            rc = put_blocks_parallel(u, e);
    }
    if (rc == 0)
        rc = commit_blocks(u, attr, meta ? meta : &st->meta, out, e);
    az_stream_free(st);
    return rc;
}

static void az_upload_abort(void *up)
{
    az_stream_free(up);
}

/* ---- remove, mkdir, rmdir ---------------------------------------------- */

/* Delete Blob.  A 404 to a retried DELETE is the first attempt's
 * success (its answer was lost): the blob is gone, as asked. */
static int az_delete_blob(struct az *a, const struct az_loc *l, const char *path,
                          struct sky_err *e)
{
    struct az_req r;
    req_init(&r, "DELETE", l, NULL);
    if (http_headers_set(&r.headers, "x-ms-delete-snapshots", "include") < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    int rc = az_do(a, &r, &resp, e);
    if (rc < 0)
        rc = az_fail_transport(a, "DELETE", path, rc, e);
    else if (resp.status == 404 && http_retried(&resp))
        LOG_INFO("azure '%s': DELETE %s: the answer was lost; the retry found the blob gone",
                 a->name, shown(path));
    else if (!status_ok(resp.status))
        rc = az_fail_resp(a, "DELETE", path, &resp, e);
    http_response_free(&resp);
    return rc;
}

static int az_remove(void *ctx, const char *path, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    int rc = az_locate(a, path, &l, e);
    if (rc == 0)
        rc = need_container(a, &l, path, e);
    if (rc == 0)
        rc = az_delete_blob(a, &l, path, e);
    loc_free(&l);
    return rc;
}

static int az_container_op(struct az *a, const struct az_loc *l, const char *method,
                           const char *path, struct sky_err *e)
{
    struct az_req r;
    req_init(&r, method, l, "restype=container");
    return az_call0(a, &r, strcmp(method, "PUT") == 0 ? "CREATE container" : "DELETE container",
                    path, e);
}

static int az_mkdir(void *ctx, const char *path, const struct sky_attr *attr, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    int rc = az_locate(a, path, &l, e);
    if (rc < 0)
        return rc;
    if (!l.container || (!*l.blob && a->container)) {
        rc = sky_fail(e, EEXIST, "azure '%s': %s: already exists", a->name, shown(path));
    } else if (!*l.blob) {
        rc = az_container_op(a, &l, "PUT", path, e);
    } else {
        struct sky_attr st;
        rc = az_stat_loc(a, &l, path, &st, e);
        if (rc == 0)
            rc = sky_fail(e, EEXIST, "azure '%s': %s: already exists", a->name, path);
        else if (rc == -ENOENT)
            rc = az_put_blob(a, &l, path, NULL, -1, 0, attr, NULL, SKY_DIR, true, NULL, e);
    }
    loc_free(&l);
    return rc;
}

/* Children of directory blob `l->blob`, flat: any besides a "dir/" marker? */
struct rmdir_scan {
    size_t self_len;        /* strlen("dir/") */
    bool other, self_marker;
};

static int rmdir_item(void *arg, const struct az_item *it)
{
    struct rmdir_scan *s = arg;
    if (!it->is_prefix && strlen(it->name) == s->self_len) {
        s->self_marker = true;
        return 0;
    }
    s->other = true;
    return 1;
}

static int az_rmdir_blob(struct az *a, struct az_loc *l, const char *path, struct sky_err *e)
{
    char *prefix = NULL;
    if (asprintf(&prefix, "%s/", l->blob) < 0)
        return oom(e);
    struct rmdir_scan s = { .self_len = strlen(prefix) };
    struct az_listing ls = { .container = l->container, .prefix = prefix, .max_results = 2,
                             .first_page_only = true };
    int rc = az_list_all(a, &ls, path, rmdir_item, &s, e);
    if (rc == 0 && s.other)
        rc = sky_fail(e, ENOTEMPTY, "azure '%s': %s: directory not empty", a->name, path);
    struct sky_attr st = { 0 };
    bool marker = false;
    if (rc == 0) {
        struct http_response resp;
        rc = az_head(a, l, path, &resp, e);
        if (rc == 0) {
            attr_from_headers(&st, &resp.headers);
            http_response_free(&resp);
            marker = true;
            if (st.kind != SKY_DIR)
                rc = sky_fail(e, ENOTDIR, "azure '%s': %s: not a directory", a->name, path);
        } else if (rc == -ENOENT && s.self_marker) {
            rc = 0;
        }
    }
    if (rc == 0 && marker)
        rc = az_delete_blob(a, l, path, e);
    if (rc == 0 && s.self_marker) {
        struct az_loc slash = { .container = l->container, .blob = prefix };
        rc = az_delete_blob(a, &slash, path, e);
        if (rc == -ENOENT)
            rc = 0;
    }
    free(prefix);
    return rc;
}

static int az_rmdir(void *ctx, const char *path, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    int rc = az_locate(a, path, &l, e);
    if (rc < 0)
        return rc;
    if (!l.container || (!*l.blob && a->container)) {
        rc = sky_fail(e, EBUSY, "azure '%s': the cloud's root cannot be removed", a->name);
    } else if (!*l.blob) {
        bool any;
        rc = az_has_children(a, &l, path, &any, e);
        if (rc == 0 && any)
            rc = sky_fail(e, ENOTEMPTY, "azure '%s': %s: container not empty", a->name, path);
        if (rc == 0)
            rc = az_container_op(a, &l, "DELETE", path, e);
    } else {
        rc = az_rmdir_blob(a, &l, path, e);
    }
    loc_free(&l);
    return rc;
}

/* ---- rename (copy + delete) -------------------------------------------- */

#define AZ_COPY_WAIT_S 3600

/* Wait until a pending server-side copy into `dst` finishes; etag gets
 * the finished blob's ETag. */
static int wait_copy(struct az *a, const struct az_loc *dst, const char *path,
                     char etag[SKY_ETAG_MAX], struct sky_err *e)
{
    for (int waited_ms = 0; waited_ms < AZ_COPY_WAIT_S * 1000;) {
        int ms = waited_ms < 2000 ? 100 : 1000;
        usleep((useconds_t)ms * 1000);
        waited_ms += ms;
        struct http_response resp;
        int rc = az_head(a, dst, path, &resp, e);
        if (rc < 0)
            return rc;
        const char *status = http_headers_get(&resp.headers, "x-ms-copy-status");
        bool pending = status && strcmp(status, "pending") == 0;
        bool success = !status || strcmp(status, "success") == 0;
        struct sky_attr now = { 0 };
        set_etag(&now, http_headers_get(&resp.headers, "etag"));
        memcpy(etag, now.etag, SKY_ETAG_MAX);
        http_response_free(&resp);
        if (success)
            return 0;
        if (!pending)
            return sky_fail(e, EIO, "azure '%s': COPY to %s: copy %s", a->name, path, status);
    }
    return sky_fail(e, ETIMEDOUT, "azure '%s': COPY to %s: still pending after %d s", a->name,
                    path, AZ_COPY_WAIT_S);
}

/* A Copy Blob was retried and its last answer is an error (409
 * PendingCopyOperation, say): is dst the copy the first attempt started,
 * its answer lost?  Azure keeps the source of a blob's last copy in
 * x-ms-copy-source (compared without the query: a SAS). */
static bool copy_landed(struct az *a, const struct az_loc *dst, const char *src_url)
{
    struct http_response resp;
    struct sky_err ignored = { 0 };
    if (az_head(a, dst, dst->blob, &resp, &ignored) < 0)
        return false;
    const char *from = http_headers_get(&resp.headers, "x-ms-copy-source");
    const char *status = http_headers_get(&resp.headers, "x-ms-copy-status");
    size_t n = strcspn(src_url, "?");
    bool same = from && status && strcmp(status, "failed") != 0 &&
                strcmp(status, "aborted") != 0 && strncmp(from, src_url, n) == 0 &&
                (from[n] == '\0' || from[n] == '?');
    http_response_free(&resp);
    if (same)
        LOG_INFO("azure '%s': COPY to %s: the answer was lost; the blob is the copy",
                 a->name, shown(dst->blob));
    return same;
}

/* Server-side Copy Blob (metadata comes along).  The copy has the
 * source's bytes under a new ETag: reads still naming src_etag (fs/ keeps
 * it across a rename) are sent with the new one. */
static int az_copy(struct az *a, const struct az_loc *src, const struct az_loc *dst,
                   const char *to_path, const char *src_etag, struct sky_err *e)
{
    char *src_url = az_url(a, src->container, src->blob, NULL);
    if (!src_url)
        return oom(e);
    struct az_req r;
    req_init(&r, "PUT", dst, NULL);
    int rc = http_headers_set(&r.headers, "x-ms-copy-source", src_url);
    if (rc < 0) {
        free(src_url);
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    rc = az_do(a, &r, &resp, e);
    if (rc < 0) {
        free(src_url);
        return az_fail_transport(a, "COPY to", to_path, rc, e);
    }
    if (!status_ok(resp.status)) {
        rc = az_fail_resp(a, "COPY to", to_path, &resp, e);
        bool landed = http_retried(&resp) && copy_landed(a, dst, src_url);
        http_response_free(&resp);
        free(src_url);
        if (!landed)
            return rc;
        /* the first attempt's copy: wait for it like for our own */
        sky_err_clear(e);
        struct sky_attr copied = { 0 };
        rc = wait_copy(a, dst, to_path, copied.etag, e);
        if (rc == 0 && src_etag && src_etag[0] && copied.etag[0])
            alias_copy(a, src, src_etag, dst, copied.etag);
        return rc;
    }
    free(src_url);
    const char *status = http_headers_get(&resp.headers, "x-ms-copy-status");
    bool pending = status && strcmp(status, "pending") == 0;
    struct sky_attr copied = { 0 };
    set_etag(&copied, http_headers_get(&resp.headers, "etag"));
    http_response_free(&resp);
    if (pending)
        rc = wait_copy(a, dst, to_path, copied.etag, e);
    if (rc == 0 && src_etag && src_etag[0] && copied.etag[0])
        alias_copy(a, src, src_etag, dst, copied.etag);
    return rc;
}

static int az_move_blob(struct az *a, const struct az_loc *src, const struct az_loc *dst,
                        const char *from, const char *to, const char *src_etag,
                        struct sky_err *e)
{
    int rc = az_copy(a, src, dst, to, src_etag, e);
    if (rc == 0)
        rc = az_delete_blob(a, src, from, e);
    return rc;
}

/* Every blob name under a prefix (flat listing), collected. */
struct name_list {
    char **names;
    char (*etags)[SKY_ETAG_MAX];
    size_t n, cap;
};

static int collect_name(void *arg, const struct az_item *it)
{
    struct name_list *nl = arg;
    if (nl->n == nl->cap) {
        size_t cap = nl->cap ? nl->cap * 2 : 64;
        char **p = realloc(nl->names, cap * sizeof *p);
        if (p)
            nl->names = p;
        char (*t)[SKY_ETAG_MAX] = p ? realloc(nl->etags, cap * sizeof *t) : NULL;
        if (!t)
            return -ENOMEM;
        nl->etags = t;
        nl->cap = cap;
    }
    memcpy(nl->etags[nl->n], it->etag, SKY_ETAG_MAX);
    nl->names[nl->n] = strdup(it->name);
    if (!nl->names[nl->n])
        return -ENOMEM;
    nl->n++;
    return 0;
}

static void name_list_free(struct name_list *nl)
{
    for (size_t i = 0; i < nl->n; i++)
        free(nl->names[i]);
    free(nl->names);
    free(nl->etags);
}

/* Move every blob under from/ to to/, then the marker blob itself. */
static int az_move_dir(struct az *a, const struct az_loc *src, const struct az_loc *dst,
                       const char *from, const char *to, struct sky_err *e)
{
    char *prefix = NULL;
    if (asprintf(&prefix, "%s/", src->blob) < 0)
        return oom(e);
    struct name_list nl = { 0 };
    struct az_listing ls = { .container = src->container, .prefix = prefix };
    int rc = az_list_all(a, &ls, from, collect_name, &nl, e);
    if (rc == -ENOMEM)
        rc = oom(e);
    size_t plen = strlen(prefix);
    for (size_t i = 0; rc == 0 && i < nl.n; i++) {
        char *dst_blob = NULL;
        if (asprintf(&dst_blob, "%s/%s", dst->blob, nl.names[i] + plen) < 0) {
            rc = oom(e);
            break;
        }
        struct az_loc s = { .container = src->container, .blob = nl.names[i] };
        struct az_loc d = { .container = dst->container, .blob = dst_blob };
        rc = az_move_blob(a, &s, &d, from, to, nl.etags[i], e);
        free(dst_blob);
    }
    name_list_free(&nl);
    free(prefix);
    if (rc < 0)
        return rc;

    struct http_response resp;
    rc = az_head(a, src, from, &resp, e);       /* the marker, if any */
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    http_response_free(&resp);
    return az_move_blob(a, src, dst, from, to, NULL, e);
}

/* May `from` (a directory) replace `to`?  Only if `to` is absent or an
 * empty directory. */
static int check_dir_target(struct az *a, const struct az_loc *dst, const char *to,
                            struct sky_err *e)
{
    struct sky_attr st;
    int rc = az_stat_loc(a, dst, to, &st, e);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    if (st.kind != SKY_DIR)
        return sky_fail(e, ENOTDIR, "azure '%s': rename onto %s: not a directory", a->name, to);
    bool any;
    char *prefix = NULL;
    if (asprintf(&prefix, "%s/", dst->blob) < 0)
        return oom(e);
    struct rmdir_scan s = { .self_len = strlen(prefix) };
    struct az_listing ls = { .container = dst->container, .prefix = prefix, .max_results = 2,
                             .first_page_only = true };
    rc = az_list_all(a, &ls, to, rmdir_item, &s, e);
    free(prefix);
    any = s.other;
    if (rc == 0 && any)
        return sky_fail(e, ENOTEMPTY, "azure '%s': rename onto %s: directory not empty", a->name,
                        to);
    return rc;
}

static int az_rename_loc(struct az *a, const struct az_loc *src, const struct az_loc *dst,
                         const char *from, const char *to, struct sky_err *e)
{
    struct sky_attr st, dt;
    int rc = az_stat_loc(a, src, from, &st, e);
    if (rc < 0)
        return rc;
    if (st.kind == SKY_DIR) {
        rc = check_dir_target(a, dst, to, e);
        return rc < 0 ? rc : az_move_dir(a, src, dst, from, to, e);
    }
    rc = az_stat_loc(a, dst, to, &dt, e);
    if (rc == 0 && dt.kind == SKY_DIR)
        return sky_fail(e, EISDIR, "azure '%s': rename onto %s: is a directory", a->name, to);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    return az_move_blob(a, src, dst, from, to, st.etag, e);
}

static int az_rename(void *ctx, const char *from, const char *to, struct sky_err *e)
{
    struct az *a = ctx;
    size_t flen = strlen(from);
    if (strncmp(to, from, flen) == 0 && to[flen] == '/')
        return sky_fail(e, EINVAL, "azure '%s': cannot move %s into itself", a->name, from);
    if (strcmp(from, to) == 0)
        return 0;
    struct az_loc src, dst;
    int rc = az_locate(a, from, &src, e);
    if (rc < 0)
        return rc;
    rc = az_locate(a, to, &dst, e);
    if (rc < 0) {
        loc_free(&src);
        return rc;
    }
    if (!src.container || !dst.container || !*src.blob || !*dst.blob)
        /* a container: no rename in Azure; EXDEV makes mv copy and delete */
        rc = sky_fail(e, EXDEV, "azure '%s': containers cannot be renamed (%s -> %s)", a->name,
                      shown(from), shown(to));
    else
        rc = az_rename_loc(a, &src, &dst, from, to, e);
    loc_free(&src);
    loc_free(&dst);
    return rc;
}

/* ---- metadata updates: set_attr and xattrs ----------------------------- */

/* One change to a blob's (or container's) metadata.  Everything else in
 * the metadata is kept. */
struct meta_edit {
    const struct sky_attr *attr;    /* POSIX fields named by `which` */
    unsigned which;
    const char *set_name;           /* metadata name to set (lowercase) */
    const char *set_value;
    const char *del_name;           /* metadata name to remove */
    int flags;                      /* XATTR_CREATE / XATTR_REPLACE */
};

/* Is metadata `name` written anew by add_posix_meta(which, k)?  (Nothing
 * is when which is 0: an xattr change.) */
static bool posix_field_replaced(const char *name, unsigned which, enum sky_kind k)
{
    if (!which)
        return false;
    return (strcasecmp(name, "mode") == 0 &&
            ((which & SKY_HAS_MODE) || k == SKY_LINK || sky_kind_special((int)k))) ||
           (strcasecmp(name, "rdev") == 0 && (k == SKY_CHR || k == SKY_BLK)) ||
           (strcasecmp(name, "uid") == 0 && (which & SKY_HAS_UID)) ||
           (strcasecmp(name, "gid") == 0 && (which & SKY_HAS_GID)) ||
           (strcasecmp(name, "mtime") == 0 && (which & SKY_HAS_MTIME));
}

/* Headers for Set Metadata: the old metadata with the edit applied. */
static int edited_meta(const struct http_headers *old, const struct meta_edit *ed,
                       enum sky_kind k, struct http_headers *hs, const char *path,
                       struct az *a, struct sky_err *e)
{
    bool found = false;
    int rc = 0;
    for (size_t i = 0; i < old->n && rc == 0; i++) {
        const char *h = old->h[i].name;
        if (strncasecmp(h, "x-ms-meta-", 10) != 0)
            continue;
        const char *name = h + 10;
        bool target = (ed->set_name && strcasecmp(name, ed->set_name) == 0) ||
                      (ed->del_name && strcasecmp(name, ed->del_name) == 0);
        found |= target;
        if (!target && !posix_field_replaced(name, ed->which, k))
            rc = http_headers_set(hs, h, old->h[i].value);
    }
    if (rc < 0)
        return sky_fail(e, -rc, "azure '%s': %s: %s", a->name, path, strerror(-rc));
    if ((ed->flags & XATTR_CREATE) && found)
        return sky_fail(e, EEXIST, "azure '%s': %s: attribute exists", a->name, path);
    if (((ed->flags & XATTR_REPLACE) || ed->del_name) && !found)
        return sky_fail(e, ENODATA, "azure '%s': %s: no such attribute", a->name, path);
    char name[300];
    if (ed->set_name) {
        snprintf(name, sizeof name, "x-ms-meta-%s", ed->set_name);
        rc = http_headers_set(hs, name, ed->set_value);
    }
    if (rc == 0 && ed->which)
        rc = add_posix_meta(hs, ed->attr, ed->which, k);
    if (rc < 0)
        return sky_fail(e, -rc, "azure '%s': %s: %s", a->name, path, strerror(-rc));
    size_t bytes = http_headers_bytes(hs, "x-ms-meta-");
    if (bytes > AZ_META_MAX)
        return sky_fail(e, E2BIG, "azure '%s': %s: the metadata would be %zu bytes, past "
                        "Azure's limit of %d", a->name, path, bytes, AZ_META_MAX);
    return 0;
}

/* Read, edit, write back; retried when someone else changed the blob in
 * between (If-Match). */
static int az_update_meta(struct az *a, const struct az_loc *l, const char *path,
                          const struct meta_edit *ed, struct sky_err *e)
{
    bool container = !*l->blob;
    for (int attempt = 0;; attempt++) {
        struct http_response head;
        int rc = az_head(a, l, path, &head, e);
        if (rc < 0)
            return rc;
        struct sky_attr cur;
        attr_from_headers(&cur, &head.headers);
        struct az_req r;
        req_init(&r, "PUT", l, container ? "restype=container&comp=metadata" : "comp=metadata");
        bool slash_marker = !container && l->blob[strlen(l->blob) - 1] == '/';
        rc = edited_meta(&head.headers, ed, container || slash_marker ? SKY_DIR : cur.kind,
                         &r.headers, path, a, e);
        const char *etag = http_headers_get(&head.headers, "etag");
        if (rc == 0 && !container && etag && http_headers_set(&r.headers, "If-Match", etag) < 0)
            rc = oom(e);
        if (rc < 0) {
            http_response_free(&head);
            http_headers_free(&r.headers);
            return rc;
        }
        struct http_response resp;
        rc = az_call(a, &r, "SET metadata of", path, &resp, e);
        if (rc == 0) {
            struct sky_attr before, after;
            set_etag(&before, etag);
            set_etag(&after, http_headers_get(&resp.headers, "etag"));
            if (!container && before.etag[0] && after.etag[0])
                alias_add(a, l, before.etag, after.etag);
            http_response_free(&resp);
        }
        http_response_free(&head);
        if (rc != -ESTALE || attempt >= 3)
            return rc;
    }
}

/* Locate a path whose metadata we edit; a directory without a marker blob
 * gets one (so that its attributes persist). */
static int meta_target(struct az *a, const char *path, struct az_loc *l,
                       const struct sky_attr *attr, unsigned which, struct sky_err *e)
{
    int rc = az_locate(a, path, l, e);
    if (rc < 0)
        return rc;
    if (!l->container || (!*l->blob && a->container)) {
        loc_free(l);
        return 1;                       /* the cloud root: nowhere to store */
    }
    if (!*l->blob)
        return 0;                       /* a container */
    struct http_response resp;
    rc = az_head(a, l, path, &resp, e);
    if (rc == 0) {
        http_response_free(&resp);
        return 0;
    }
    struct az_loc marker;
    if (rc == -ENOENT && (rc = az_head_slash_marker(a, l, path, &resp, &marker, e)) == 0) {
        http_response_free(&resp);          /* edit another tool's "dir/" marker */
        loc_free(l);
        *l = marker;
        return 0;
    }
    bool any = false;
    if (rc == -ENOENT)
        rc = az_has_children(a, l, path, &any, e);
    if (rc == 0 && !any)
        rc = sky_fail(e, ENOENT, "azure '%s': %s: no such file or directory", a->name, path);
    if (rc == 0) {
        struct sky_attr none = { 0 };
        rc = az_put_blob(a, l, path, NULL, -1, 0, attr ? attr : &none, NULL, SKY_DIR, true,
                         NULL, e);
        if (rc == -EEXIST)
            rc = 0;
        if (rc == 0 && attr && which == attr->has)
            rc = 2;                     /* the new marker already holds everything */
    }
    if (rc < 0)
        loc_free(l);
    return rc;
}

static int az_set_attr(void *ctx, const char *path, const struct sky_attr *attr, unsigned which,
                       struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    struct sky_attr only = *attr;
    only.has = which;
    int rc = meta_target(a, path, &l, &only, which, e);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        struct meta_edit ed = { .attr = attr, .which = which };
        rc = az_update_meta(a, &l, path, &ed, e);
    } else if (rc == 2) {
        rc = 0;
    } else {
        return 0;                       /* the root */
    }
    loc_free(&l);
    return rc;
}

/* "user.NAME" -> "NAME" when NAME can be Azure metadata (a C identifier
 * and not one of ours) in lowercase, the way it reads back (Azure names
 * are case-insensitive; HEAD answers show them lowercased); else
 * -ENOTSUP. */
static int xattr_meta_name(struct az *a, const char *xname, char out[256], struct sky_err *e)
{
    const char *n = strncmp(xname, "user.", 5) == 0 ? xname + 5 : NULL;
    if (!n || !user_meta_name_ok(n))
        return sky_fail(e, ENOTSUP, "azure '%s': extended attribute '%s' cannot be stored "
                        "(only user.NAME with NAME lowercase letters, digits, '_')", a->name,
                        xname);
    memcpy(out, n, strlen(n) + 1);
    return 0;
}

/* HEAD the blob behind path (or the "dir/" marker of a directory: then
 * *slash_marker, which may be NULL, is set); *exists false for a directory
 * without marker or for the cloud root. */
static int meta_head(struct az *a, const char *path, struct http_response *resp, bool *exists,
                     bool *slash_marker, struct sky_err *e)
{
    struct az_loc l;
    *exists = false;
    if (slash_marker)
        *slash_marker = false;
    int rc = az_locate(a, path, &l, e);
    if (rc < 0)
        return rc;
    if (!l.container || (!*l.blob && a->container)) {
        loc_free(&l);
        return 0;
    }
    rc = az_head(a, &l, path, resp, e);
    if (rc == -ENOENT && *l.blob) {
        rc = az_head_slash_marker(a, &l, path, resp, NULL, e);
        if (rc == 0 && slash_marker)
            *slash_marker = true;
    }
    if (rc == 0) {
        *exists = true;
    } else if (rc == -ENOENT && *l.blob) {
        bool any = false;
        rc = az_has_children(a, &l, path, &any, e);
        if (rc == 0 && !any)
            rc = sky_fail(e, ENOENT, "azure '%s': %s: no such file or directory", a->name, path);
    }
    loc_free(&l);
    return rc;
}

static int copy_out(const char *v, size_t vlen, void *buf, size_t size, size_t *len)
{
    *len = vlen;
    if (size == 0)
        return 0;
    if (vlen > size)
        return -ERANGE;
    memcpy(buf, v, vlen);
    return 0;
}

static int az_getxattr(void *ctx, const char *path, const char *name, void *buf, size_t size,
                       size_t *len, struct sky_err *e)
{
    struct az *a = ctx;
    char meta[256], hdr[300];
    int rc = xattr_meta_name(a, name, meta, e);
    if (rc < 0)
        return sky_fail(e, ENODATA, "azure '%s': %s: no attribute %s", a->name, path, name);
    struct http_response resp;
    bool exists;
    rc = meta_head(a, path, &resp, &exists, NULL, e);
    if (rc < 0)
        return rc;
    if (!exists)
        return sky_fail(e, ENODATA, "azure '%s': %s: no attribute %s", a->name, path, name);
    snprintf(hdr, sizeof hdr, "x-ms-meta-%s", meta);
    const char *v = http_headers_get(&resp.headers, hdr);
    rc = v ? copy_out(v, strlen(v), buf, size, len) : -ENODATA;
    http_response_free(&resp);
    if (rc < 0)
        sky_fail(e, -rc, "azure '%s': %s: getxattr %s", a->name, path, name);
    return rc;
}

static int az_listxattr(void *ctx, const char *path, char *buf, size_t size, size_t *len,
                        struct sky_err *e)
{
    struct az *a = ctx;
    struct http_response resp;
    bool exists;
    *len = 0;
    int rc = meta_head(a, path, &resp, &exists, NULL, e);
    if (rc < 0 || !exists)
        return rc;
    size_t need = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t at = 0;
        for (size_t i = 0; i < resp.headers.n; i++) {
            const char *h = resp.headers.h[i].name;
            if (strncmp(h, "x-ms-meta-", 10) != 0 || meta_is_posix(h + 10))
                continue;
            size_t n = strlen(h + 10);
            if (pass == 1) {
                memcpy(buf + at, "user.", 5);
                memcpy(buf + at + 5, h + 10, n + 1);
            }
            at += 5 + n + 1;
        }
        need = at;
        if (size == 0 || need > size)
            break;
    }
    http_response_free(&resp);
    *len = need;
    if (size && need > size)
        return sky_fail(e, ERANGE, "azure '%s': %s: listxattr buffer too small", a->name, path);
    return 0;
}

static bool header_safe(const void *v, size_t len)
{
    const unsigned char *s = v;
    if (len && (s[0] == ' ' || s[len - 1] == ' '))
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

static int az_setxattr(void *ctx, const char *path, const char *name, const void *value,
                       size_t len, int flags, struct sky_err *e)
{
    struct az *a = ctx;
    char meta[256];
    int rc = xattr_meta_name(a, name, meta, e);
    if (rc < 0)
        return rc;
    if (!header_safe(value, len))
        return sky_fail(e, ENOTSUP, "azure '%s': %s: value of %s must be printable ASCII "
                        "without leading or trailing spaces", a->name, path, name);
    if (len + strlen(meta) > AZ_META_MAX)
        return sky_fail(e, E2BIG, "azure '%s': %s: %s is %zu bytes, past Azure's limit of %d "
                        "bytes of metadata", a->name, path, name, len, AZ_META_MAX);
    char *v = strndup(value, len);
    if (!v)
        return oom(e);
    struct az_loc l;
    rc = meta_target(a, path, &l, NULL, 0, e);
    if (rc == 1)
        rc = sky_fail(e, ENOTSUP, "azure '%s': the cloud root has no attributes", a->name);
    else if (rc == 0) {
        struct meta_edit ed = { .set_name = meta, .set_value = v, .flags = flags };
        rc = az_update_meta(a, &l, path, &ed, e);
        loc_free(&l);
    }
    free(v);
    return rc;
}

static int az_removexattr(void *ctx, const char *path, const char *name, struct sky_err *e)
{
    struct az *a = ctx;
    char meta[256];
    int rc = xattr_meta_name(a, name, meta, e);
    if (rc < 0)
        return rc == -ENOTSUP ? sky_fail(e, ENODATA, "azure '%s': %s: no attribute %s",
                                         a->name, path, name) : rc;
    struct http_response resp;
    bool exists;
    rc = meta_head(a, path, &resp, &exists, NULL, e);
    if (rc < 0)
        return rc;
    if (!exists)
        return sky_fail(e, ENODATA, "azure '%s': %s: no attribute %s", a->name, path, name);
    http_response_free(&resp);
    struct az_loc l;
    rc = az_locate(a, path, &l, e);
    if (rc == 0) {
        struct meta_edit ed = { .del_name = meta };
        rc = az_update_meta(a, &l, path, &ed, e);
        loc_free(&l);
    }
    return rc;
}

/* Cloud metadata of a Get Blob Properties (or container HEAD) answer. */
static int objmeta_from_headers(const struct http_headers *hs, bool blob, struct sky_objmeta *m)
{
    int rc = 0;
    if (blob) {
        rc = sky_objmeta_set(&m->content_type, http_headers_get(hs, "content-type"));
        if (rc == 0)
            rc = sky_objmeta_set(&m->storage_class, http_headers_get(hs, "x-ms-access-tier"));
    }
    for (size_t i = 0; rc == 0 && i < hs->n; i++)
        if (strncmp(hs->h[i].name, "x-ms-meta-", 10) == 0)
            rc = user_meta_take(m, hs->h[i].name + 10, hs->h[i].value);
    return rc;
}

static int az_get_meta(void *ctx, const char *path, struct sky_attr *attr,
                       struct sky_objmeta *meta, struct sky_err *e)
{
    struct az *a = ctx;
    memset(meta, 0, sizeof *meta);
    meta->has_user = true;
    struct http_response resp;
    bool exists, slash_marker;
    int rc = meta_head(a, path, &resp, &exists, &slash_marker, e);
    if (rc < 0)
        return rc;
    if (!exists) {                          /* a prefix, or the cloud root */
        attr_dir(attr, 0);
        return 0;
    }
    struct az_loc l;
    rc = az_locate(a, path, &l, e);
    bool blob = rc == 0 && *l.blob;         /* else a container */
    loc_free(&l);
    if (rc < 0) {
        http_response_free(&resp);
        return rc;
    }
    if (blob) {
        attr_from_headers(attr, &resp.headers);
        if (slash_marker) {                 /* another tool's "dir/" marker */
            attr->kind = SKY_DIR;
            attr->size = 0;
            attr->etag[0] = '\0';
        }
    } else {
        int64_t lm = 0;
        parse_http_date(http_headers_get(&resp.headers, "last-modified"), &lm);
        attr_dir(attr, lm);
    }
    if (objmeta_from_headers(&resp.headers, blob, meta) < 0) {
        sky_objmeta_free(meta);
        rc = oom(e);
    }
    http_response_free(&resp);
    return rc;
}

/* ---- symlinks ---------------------------------------------------------- */

/* A FIFO, socket or device: an empty blob whose mode metadata has the type
 * (and rdev a device's number). */
static int az_mknod(void *ctx, const char *path, const struct sky_attr *attr,
                    struct sky_attr *out, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    int rc = az_locate(a, path, &l, e);
    if (rc == 0)
        rc = need_container(a, &l, path, e);
    if (rc == 0)
        rc = az_put_blob(a, &l, path, "", -1, 0, attr, NULL, attr->kind, true, out, e);
    loc_free(&l);
    return rc;
}

static int az_symlink(void *ctx, const char *path, const char *target,
                      const struct sky_attr *attr, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    int rc = az_locate(a, path, &l, e);
    if (rc == 0)
        rc = need_container(a, &l, path, e);
    if (rc == 0)
        rc = az_put_blob(a, &l, path, target, -1, strlen(target), attr, NULL, SKY_LINK, true,
                         NULL, e);
    loc_free(&l);
    return rc;
}

static int az_readlink(void *ctx, const char *path, char *buf, size_t size, struct sky_err *e)
{
    struct az *a = ctx;
    struct az_loc l;
    int rc = az_locate(a, path, &l, e);
    if (rc == 0)
        rc = need_container(a, &l, path, e);
    if (rc < 0) {
        loc_free(&l);
        return rc;
    }
    struct az_req r;
    req_init(&r, "GET", &l, NULL);
    struct http_response resp;
    rc = az_call(a, &r, "GET", path, &resp, e);
    loc_free(&l);
    if (rc < 0)
        return rc;
    if (size) {
        size_t n = resp.body_len < size - 1 ? resp.body_len : size - 1;
        if (n)
            memcpy(buf, resp.body, n);
        buf[n] = '\0';
    }
    http_response_free(&resp);
    return 0;
}

/* ---- the driver -------------------------------------------------------- */

static const struct sky_key az_keys[] = {
    { "account", 0, "storage account name (default: from the connection string or endpoint)" },
    { "key", SKY_KEY_SECRET, "account key (base64) for Shared Key authorization" },
    { "sas_token", SKY_KEY_SECRET, "shared access signature query string, instead of a key" },
    { "connection_string", SKY_KEY_SECRET,
      "AccountName=...;AccountKey=... (default: $AZURE_STORAGE_CONNECTION_STRING)" },
    { "endpoint", 0, "blob endpoint URL (default https://ACCOUNT.blob.core.windows.net; "
      "Azurite: http://127.0.0.1:10000/ACCOUNT)" },
    { "container", 0, "the container to show (default: all containers as directories)" },
    { "prefix", 0, "show only blobs under this prefix of the container" },
    HTTP_CLOUD_KEYS,
    { "ca_file", 0, "extra CA certificates (PEM) to trust for the endpoint" },
    { NULL, 0, NULL },
};

const struct sky_driver sky_driver_azure = {
    .type = "azure",
    .summary = "Azure Blob Storage container (or Azurite)",
    .keys = az_keys,
    .caps = SKY_CAP_CONTENT_TYPE,
    .open = az_open,
    .close = az_close,
    .list = az_list,
    .list_tree = az_list_tree,
    .stat = az_stat,
    .read = az_read,
    .write = az_write,
    .upload_part_size = AZ_BLOCK_MIN,
    .upload_begin = az_upload_begin,
    .upload_part = az_upload_part,
    .upload_finish = az_upload_finish,
    .upload_abort = az_upload_abort,
    .remove = az_remove,
    .mkdir = az_mkdir,
    .rmdir = az_rmdir,
    .rename = az_rename,
    .set_attr = az_set_attr,
    .symlink = az_symlink,
    .mknod = az_mknod,
    .readlink = az_readlink,
    .getxattr = az_getxattr,
    .setxattr = az_setxattr,
    .listxattr = az_listxattr,
    .removexattr = az_removexattr,
    .get_meta = az_get_meta,
    .statfs = NULL,
};
