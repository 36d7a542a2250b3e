/*
 * webdav_xml.c - WebDAV's XML: reading multistatus answers, writing
 * PROPFIND and PROPPATCH bodies (see webdav_xml.h).
 *
 * The answer goes through xml.c (expat): the tree keeps local names, so
 * <D:href>, <d:href> and <href xmlns="DAV:"> read alike, and skyfs's dead
 * properties are known by their local names (skyfs-mode...), which no
 * other namespace a server answers with uses.
 */
#include "webdav_xml.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "http.h"
#include "names.h"
#include "xml.h"

/* "HTTP/1.1 200 OK" -> 200; 0 when unreadable. */
static long status_code(const char *s)
{
    if (!s)
        return 0;
    while (isspace((unsigned char)*s))
        s++;
    const char *sp = strchr(s, ' ');
    return sp ? strtol(sp + 1, NULL, 10) : 0;
}

/* Text without surrounding white space, copied into out (cap bytes). */
static void trimmed(const char *s, char *out, size_t cap)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

static bool parse_u32(const char *s, uint32_t *out)
{
    char buf[32];
    trimmed(s, buf, sizeof buf);
    char *end;
    unsigned long v = strtoul(buf, &end, 10);
    if (!*buf || *end || !isdigit((unsigned char)buf[0]) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char buf[32];
    trimmed(s, buf, sizeof buf);
    return sky_size_parse(buf, out) == 0;
}

char *webdav_href_path(const char *href, size_t *len)
{
    char buf[8192];
    trimmed(href, buf, sizeof buf);
    const char *p = buf;
    const char *scheme = strstr(p, "://");
    if (scheme && scheme < p + strcspn(p, "/")) {
        p = strchr(scheme + 3, '/');
        if (!p)
            p = "/";
    }
    if (*p != '/')
        return NULL;
    char *out = strdup(p);
    if (!out)
        return NULL;
    out[strcspn(out, "?#")] = '\0';
    size_t n = sky_pct_decode(out, false);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    *len = n;
    return out;
}

#define XATTR_PREFIX "skyfs-x-"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode hex text (white space around it allowed) into a malloc'd buffer
 * of *n bytes, NUL-ended; NULL when it is not hex (or out of memory). */
static char *unhex(const char *text, size_t *n)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    if (len % 2)
        return NULL;
    char *out = malloc(len / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval((unsigned char)text[2 * i]), lo = hexval((unsigned char)text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (char)(hi << 4 | lo);
    }
    out[len / 2] = '\0';
    *n = len / 2;
    return out;
}

/* hex of n bytes into a malloc'd string */
static char *tohex(const void *data, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *out = malloc(2 * n + 1);
    if (!out)
        return NULL;
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

bool webdav_xattr_prop(const char *key, char *out, size_t cap)
{
    size_t n = strlen(key);
    if (n == 0 || strlen(XATTR_PREFIX) + 2 * n + 1 > cap)
        return false;
    char *hex = tohex(key, n);
    if (!hex)
        return false;
    snprintf(out, cap, XATTR_PREFIX "%s", hex);
    free(hex);
    return true;
}

/* An extended attribute property: its item into ent->user (a broken
 * one, stored by something else, is left out). */
static int take_xattr(const struct xml_node *p, struct webdav_entry *ent)
{
    size_t klen, vlen;
    char *key = unhex(p->name + strlen(XATTR_PREFIX), &klen);
    char *value = key ? unhex(p->text, &vlen) : NULL;
    int rc = 0;
    if (key && value && klen == strlen(key))
        rc = sky_objmeta_add_user(&ent->user, key, value, vlen);
    free(key);
    free(value);
    return rc;
}

/* The properties of one <prop> (under a 2xx status) into ent. */
static int take_props(const struct xml_node *prop, struct webdav_entry *ent)
{
    for (const struct xml_node *p = prop->child; p; p = p->next) {
        const char *n = p->name;
        if (strcmp(n, "resourcetype") == 0) {
            ent->is_dir = xml_child(p, "collection") != NULL;
        } else if (strcmp(n, "getcontentlength") == 0) {
            ent->has_size = parse_u64(p->text, &ent->size);
        } else if (strcmp(n, "getlastmodified") == 0) {
            ent->has_mtime = http_parse_date(p->text, &ent->mtime_ns) == 0;
        } else if (strcmp(n, "getetag") == 0) {
            /* Apache calls a file changed within the last second weak
             * (W/"...") and the same version strong a second later: one
             * version, one token */
            char raw[SKY_ETAG_MAX];
            trimmed(p->text, raw, sizeof raw);
            snprintf(ent->etag, sizeof ent->etag, "%s",
                     strncmp(raw, "W/", 2) == 0 ? raw + 2 : raw);
            ent->has_etag = ent->etag[0] != '\0';
        } else if (strcmp(n, "skyfs-mode") == 0) {
            ent->has_mode = parse_u32(p->text, &ent->mode) && ent->mode <= 07777;
        } else if (strcmp(n, "skyfs-uid") == 0) {
            ent->has_uid = parse_u32(p->text, &ent->uid);
        } else if (strcmp(n, "skyfs-gid") == 0) {
            ent->has_gid = parse_u32(p->text, &ent->gid);
        } else if (strcmp(n, "skyfs-mtime") == 0) {
            char buf[SKY_ETAG_MAX + 32];
            long long ns;
            int used = 0;
            trimmed(p->text, buf, sizeof buf);
            if (sscanf(buf, "%lld %n", &ns, &used) == 1 && used > 0 && buf[used] &&
                strlen(buf + used) < sizeof ent->skyfs_mtime_etag) {
                ent->has_skyfs_mtime = true;
                ent->skyfs_mtime_ns = ns;
                snprintf(ent->skyfs_mtime_etag, sizeof ent->skyfs_mtime_etag, "%s", buf + used);
            }
        } else if (strcmp(n, "quota-available-bytes") == 0) {
            ent->has_quota_avail = parse_u64(p->text, &ent->quota_avail);
        } else if (strcmp(n, "quota-used-bytes") == 0) {
            ent->has_quota_used = parse_u64(p->text, &ent->quota_used);
        } else if (strncmp(n, XATTR_PREFIX, strlen(XATTR_PREFIX)) == 0) {
            if (take_xattr(p, ent) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static int quota_entry(void *arg, const struct webdav_entry *ent)
{
    struct webdav_entry *q = arg;
    if (ent->has_quota_avail && !q->has_quota_avail &&
        (ent->quota_avail > 0 || (ent->has_quota_used && ent->quota_used > 0))) {
        q->has_quota_avail = true;
        q->quota_avail = ent->quota_avail;
        q->quota_used = ent->has_quota_used ? ent->quota_used : 0;
    }
    return 0;
}

bool webdav_quota_statvfs(const char *body, size_t len, struct statvfs *st)
{
    struct webdav_entry q;
    memset(&q, 0, sizeof q);
    if (webdav_parse_multistatus(body, len, quota_entry, &q, NULL) < 0 || !q.has_quota_avail)
        return false;
    memset(st, 0, sizeof *st);
    st->f_bsize = st->f_frsize = 4096;
    st->f_bfree = st->f_bavail = q.quota_avail / 4096;
    st->f_blocks = (q.quota_avail + q.quota_used) / 4096;
    st->f_files = st->f_ffree = st->f_favail = 1ULL << 32;
    return true;
}

int webdav_parse_multistatus(const char *body, size_t len, webdav_entry_fn fn, void *arg,
                             struct sky_err *e)
{
    struct xml_node *root = NULL;
    int rc = xml_parse(body ? body : "", len, &root, e);
    if (rc < 0)
        return rc;
    if (strcmp(root->name, "multistatus") != 0) {
        rc = sky_fail(e, EBADMSG, "the answer is <%s>, not a WebDAV multistatus", root->name);
        xml_free(root);
        return rc;
    }
    for (const struct xml_node *r = xml_child(root, "response"); r && rc == 0; r = xml_next(r)) {
        const char *href = xml_text(r, "href");
        if (!href)
            continue;
        struct webdav_entry ent;
        memset(&ent, 0, sizeof ent);
        bool found = false;
        for (const struct xml_node *ps = xml_child(r, "propstat"); ps; ps = xml_next(ps)) {
            long st = status_code(xml_text(ps, "status"));
            const struct xml_node *prop = xml_child(ps, "prop");
            if (st >= 200 && st < 300 && prop) {
                if (take_props(prop, &ent) < 0)
                    rc = sky_fail(e, ENOMEM, "out of memory");
                found = true;
            }
        }
        if (!found || rc < 0) {
            sky_objmeta_free(&ent.user);
            continue;
        }
        ent.path = webdav_href_path(href, &ent.path_len);
        if (!ent.path) {
            sky_objmeta_free(&ent.user);
            rc = sky_fail(e, EBADMSG, "the answer names a resource by \"%.200s\", which is not "
                          "a path", href);
            break;
        }
        rc = fn(arg, &ent);
        free(ent.path);
        sky_objmeta_free(&ent.user);
    }
    xml_free(root);
    return rc;
}

bool webdav_proppatch_refused(const char *body, size_t len, long *status)
{
    struct xml_node *root = NULL;
    if (xml_parse(body ? body : "", len, &root, NULL) < 0)
        return false;
    bool refused = false;
    for (const struct xml_node *r = xml_child(root, "response"); r && !refused;
         r = xml_next(r)) {
        const char *direct = xml_text(r, "status");
        long st = status_code(direct);
        if (direct && (st < 200 || st >= 300)) {
            refused = true;
            *status = st;
        }
        for (const struct xml_node *ps = xml_child(r, "propstat"); ps && !refused;
             ps = xml_next(ps)) {
            st = status_code(xml_text(ps, "status"));
            if (st < 200 || st >= 300) {
                refused = true;
                *status = st;
            }
        }
    }
    xml_free(root);
    return refused;
}

const char *webdav_propfind_body(enum webdav_propfind which)
{
    static const char all[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>\n";
    static const char plain[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<D:propfind xmlns:D=\"DAV:\" xmlns:S=\"" WEBDAV_SKYFS_NS "\"><D:prop>"
        "<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
        "<S:skyfs-mode/><S:skyfs-uid/><S:skyfs-gid/><S:skyfs-mtime/>"
        "</D:prop></D:propfind>\n";
    static const char quota[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<D:propfind xmlns:D=\"DAV:\"><D:prop>"
        "<D:resourcetype/><D:quota-available-bytes/><D:quota-used-bytes/>"
        "</D:prop></D:propfind>\n";
    return which == WEBDAV_QUOTA ? quota : which == WEBDAV_ALLPROP ? all : plain;
}

/* Opens a PROPPATCH document on f. */
static void patch_head(FILE *f)
{
    fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
          "<D:propertyupdate xmlns:D=\"DAV:\" xmlns:S=\"" WEBDAV_SKYFS_NS "\" "
          "xmlns:X=\"" WEBDAV_SKYFS_NS ":xattr\">", f);
}

/* Closes f (an open_memstream) and returns its text, or NULL when a
 * write failed (`ok` false) or memory ran out. */
static char *patch_done(FILE *f, char **buf, bool ok)
{
    fputs("</D:propertyupdate>\n", f);
    if (ferror(f))
        ok = false;
    if (fclose(f) != 0)         /* sets *buf (open_memstream) */
        ok = false;
    if (!ok) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

char *webdav_proppatch_body(const struct sky_attr *attr, unsigned which, const char *etag,
                            const struct sky_objmeta *user, int64_t lastmodified_ns)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    bool ok = true;
    patch_head(f);
    fputs("<D:set><D:prop>", f);
    if (which & SKY_HAS_MODE)
        fprintf(f, "<S:skyfs-mode>%u</S:skyfs-mode>", (unsigned)(attr->mode & 07777));
    if (which & SKY_HAS_UID)
        fprintf(f, "<S:skyfs-uid>%u</S:skyfs-uid>", (unsigned)attr->uid);
    if (which & SKY_HAS_GID)
        fprintf(f, "<S:skyfs-gid>%u</S:skyfs-gid>", (unsigned)attr->gid);
    if ((which & SKY_HAS_MTIME) && etag && *etag) {
        char *esc = xml_escape(etag);
        ok = esc != NULL;
        if (esc)
            fprintf(f, "<S:skyfs-mtime>%lld %s</S:skyfs-mtime>", (long long)attr->mtime_ns, esc);
        free(esc);
    }
    for (size_t i = 0; ok && user && i < user->nuser; i++) {
        char name[600];
        char *hex = tohex(user->user[i].value, user->user[i].len);
        ok = hex && webdav_xattr_prop(user->user[i].key, name, sizeof name);
        if (ok)
            fprintf(f, "<X:%s>%s</X:%s>", name, hex, name);
        free(hex);
    }
    if (lastmodified_ns >= 0)
        fprintf(f, "<D:lastmodified>%lld</D:lastmodified>",
                (long long)(lastmodified_ns / 1000000000LL));
    fputs("</D:prop></D:set>", f);
    return patch_done(f, &buf, ok);
}

char *webdav_proppatch_remove_body(const char *key)
{
    char name[600];
    if (!webdav_xattr_prop(key, name, sizeof name))
        return NULL;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    patch_head(f);
    fprintf(f, "<D:remove><D:prop><X:%s/></D:prop></D:remove>", name);
    return patch_done(f, &buf, true);
}
