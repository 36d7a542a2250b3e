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

/* The properties of one <prop> (under a 2xx status) into ent. */
static void take_props(const struct xml_node *prop, struct webdav_entry *ent)
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
        }
    }
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
                take_props(prop, &ent);
                found = true;
            }
        }
        if (!found)
            continue;
        ent.path = webdav_href_path(href, &ent.path_len);
        if (!ent.path) {
            rc = sky_fail(e, EBADMSG, "the answer names a resource by \"%.200s\", which is not "
                          "a path", href);
            break;
        }
        rc = fn(arg, &ent);
        free(ent.path);
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

const char *webdav_propfind_body(bool with_quota)
{
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
    return with_quota ? quota : plain;
}

char *webdav_proppatch_body(const struct sky_attr *attr, unsigned which, const char *etag,
                            int64_t lastmodified_ns)
{
    char props[1024] = "";
    size_t n = 0;
    if (which & SKY_HAS_MODE)
        n += (size_t)snprintf(props + n, sizeof props - n, "<S:skyfs-mode>%u</S:skyfs-mode>",
                              (unsigned)(attr->mode & 07777));
    if (which & SKY_HAS_UID)
        n += (size_t)snprintf(props + n, sizeof props - n, "<S:skyfs-uid>%u</S:skyfs-uid>",
                              (unsigned)attr->uid);
    if (which & SKY_HAS_GID)
        n += (size_t)snprintf(props + n, sizeof props - n, "<S:skyfs-gid>%u</S:skyfs-gid>",
                              (unsigned)attr->gid);
    if ((which & SKY_HAS_MTIME) && etag && *etag) {
        char *esc = xml_escape(etag);
        if (!esc)
            return NULL;
        n += (size_t)snprintf(props + n, sizeof props - n,
                              "<S:skyfs-mtime>%lld %s</S:skyfs-mtime>",
                              (long long)attr->mtime_ns, esc);
        free(esc);
    }
    if (lastmodified_ns >= 0)
        snprintf(props + n, sizeof props - n, "<D:lastmodified>%lld</D:lastmodified>",
                 (long long)(lastmodified_ns / 1000000000LL));
    char *out;
    if (asprintf(&out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                 "<D:propertyupdate xmlns:D=\"DAV:\" xmlns:S=\"" WEBDAV_SKYFS_NS "\">"
                 "<D:set><D:prop>%s</D:prop></D:set></D:propertyupdate>\n", props) < 0)
        return NULL;
    return out;
}
