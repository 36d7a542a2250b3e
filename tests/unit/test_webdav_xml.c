/*
 * test_webdav_xml.c - WebDAV's XML (backends/webdav_xml.c), no server:
 * multistatus answers as Apache mod_dav_fs, rclone and Nextcloud write
 * them, hrefs, PROPPATCH refusals, df from quota answers and the request
 * bodies; and where
 * webdav.c finds Nextcloud's chunked-upload folder.
 */
#include "check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/statvfs.h>

#include "../../backends/webdav_xml.h"

#define MAXE 8

struct seen {
    int n;
    struct webdav_entry e[MAXE];
    char path[MAXE][256];
    size_t xattrs[MAXE];        /* extended attributes of each entry */
    bool color_ok[MAXE];        /* user.color = "bl\0e" among them */
};

static int keep(void *arg, const struct webdav_entry *ent)
{
    struct seen *s = arg;
    if (s->n >= MAXE)
        return -E2BIG;
    s->e[s->n] = *ent;
    snprintf(s->path[s->n], sizeof s->path[0], "%s", ent->path);
    s->e[s->n].path = s->path[s->n];
    s->xattrs[s->n] = ent->user.nuser;
    const struct sky_meta_item *it = sky_objmeta_find(&ent->user, "color");
    s->color_ok[s->n] = it && it->len == 4 && memcmp(it->value, "bl\0e", 4) == 0;
    memset(&s->e[s->n].user, 0, sizeof s->e[s->n].user);      /* the parser's */
    s->n++;
    return 0;
}

/* Apache mod_dav_fs: a lp1 namespace for live properties, weak etag for a
 * file changed within the second, 404 propstat for what it lacks */
static const char apache_answer[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<D:multistatus xmlns:D=\"DAV:\" xmlns:ns1=\"urn:x-skyfs:posix\" xmlns:ns0=\"DAV:\">\n"
    "<D:response xmlns:lp1=\"DAV:\">\n"
    "<D:href>/dav/docs/</D:href>\n"
    "<D:propstat><D:prop><lp1:resourcetype><D:collection/></lp1:resourcetype>\n"
    "<lp1:getlastmodified>Sat, 05 Dec 2026 06:12:13 GMT</lp1:getlastmodified>\n"
    "<lp1:getetag>\"1000-5e3a\"</lp1:getetag>\n"
    "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>\n"
    "<D:propstat><D:prop><D:getcontentlength/><ns1:skyfs-mode/></D:prop>\n"
    "<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>\n"
    "</D:response>\n"
    "<D:response xmlns:lp1=\"DAV:\">\n"
    "<D:href>/dav/docs/a%20b%C3%A9.txt</D:href>\n"
    "<D:propstat><D:prop><lp1:resourcetype/>\n"
    "<lp1:getcontentlength>42</lp1:getcontentlength>\n"
    "<lp1:getlastmodified>Sat, 05 Dec 2026 06:12:14 GMT</lp1:getlastmodified>\n"
    "<lp1:getetag>W/\"2a-5e3b\"</lp1:getetag>\n"
    "<ns1:skyfs-mode>416</ns1:skyfs-mode><ns1:skyfs-uid>1000</ns1:skyfs-uid>\n"
    "<ns1:skyfs-mtime>981173106000000001 \"2a-5e3b\"</ns1:skyfs-mtime>\n"
    "<ns2:skyfs-x-636f6c6f72 xmlns:ns2=\"urn:x-skyfs:posix:xattr\">626c0065</ns2:skyfs-x-636f6c6f72>\n"
    "<ns2:skyfs-x-6 xmlns:ns2=\"urn:x-skyfs:posix:xattr\">zz</ns2:skyfs-x-6>\n"
    "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>\n"
    "<D:propstat><D:prop><ns1:skyfs-gid/></D:prop>\n"
    "<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>\n"
    "</D:response>\n"
    "<D:response><D:href>/dav/docs/gone</D:href>"
    "<D:status>HTTP/1.1 404 Not Found</D:status></D:response>\n"
    "</D:multistatus>\n";

TEST(webdav_multistatus_apache)
{
    struct seen s = { 0 };
    struct sky_err e = { 0 };
    CHECK_INT(webdav_parse_multistatus(apache_answer, sizeof apache_answer - 1, keep, &s, &e), 0);
    CHECK_INT(s.n, 2);          /* the 404-only response is no entry */
    CHECK_STR(s.path[0], "/dav/docs");
    CHECK(s.e[0].is_dir);
    CHECK(!s.e[0].has_size);
    CHECK(!s.e[0].has_mode);
    CHECK(s.e[0].has_mtime);
    CHECK_INT(s.e[0].mtime_ns, 1796451133LL * 1000000000LL);
    CHECK_STR(s.path[1], "/dav/docs/a b\xc3\xa9.txt");
    CHECK(!s.e[1].is_dir);
    CHECK(s.e[1].has_size);
    CHECK_INT(s.e[1].size, 42);
    CHECK_STR(s.e[1].etag, "\"2a-5e3b\"");      /* W/ dropped: one version, one token */
    CHECK(s.e[1].has_mode);
    CHECK_INT(s.e[1].mode, 0640);
    CHECK(s.e[1].has_uid);
    CHECK_INT(s.e[1].uid, 1000);
    CHECK(!s.e[1].has_gid);
    CHECK(s.e[1].has_skyfs_mtime);
    CHECK_INT(s.e[1].skyfs_mtime_ns, 981173106000000001LL);
    CHECK_STR(s.e[1].skyfs_mtime_etag, "\"2a-5e3b\"");
    CHECK_INT(s.xattrs[1], 1);                  /* the broken one is left out */
    CHECK(s.color_ok[1]);
}

/* rclone: absolute hrefs without a trailing slash on the root, no etag
 * for folders; Nextcloud: full URLs and d: prefixes */
TEST(webdav_multistatus_hrefs)
{
    static const char answer[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><d:multistatus xmlns:d=\"DAV:\">"
        "<d:response><d:href>https://cloud.example.org/remote.php/dav/files/a/</d:href>"
        "<d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop>"
        "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
        "<d:response><d:href>  /x/y%2Fz?q=1  </d:href>"
        "<d:propstat><d:prop><d:getcontentlength> 7 </d:getcontentlength>"
        "<d:quota-available-bytes>1000</d:quota-available-bytes>"
        "<d:quota-used-bytes>24</d:quota-used-bytes></d:prop>"
        "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
        "</d:multistatus>";
    struct seen s = { 0 };
    CHECK_INT(webdav_parse_multistatus(answer, sizeof answer - 1, keep, &s, NULL), 0);
    CHECK_INT(s.n, 2);
    CHECK_STR(s.path[0], "/remote.php/dav/files/a");
    CHECK(s.e[0].is_dir);
    CHECK(!s.e[0].has_etag);
    CHECK_STR(s.path[1], "/x/y/z");             /* a %2F decodes: callers check names */
    CHECK_INT(s.e[1].size, 7);
    CHECK(s.e[1].has_quota_avail && s.e[1].has_quota_used);
    CHECK_INT(s.e[1].quota_avail, 1000);
    CHECK_INT(s.e[1].quota_used, 24);

    size_t len = 0;
    char *p = webdav_href_path("http://h:8080", &len);
    CHECK_STR(p, "/");
    CHECK_INT(len, 1);
    free(p);
    p = webdav_href_path("/a%00b/", &len);
    CHECK(p != NULL);
    CHECK_INT(len, 4);                          /* "/a\0b": the NUL stays visible */
    free(p);
    CHECK(webdav_href_path("relative/path", &len) == NULL);
}

TEST(webdav_multistatus_refuses_junk)
{
    struct seen s = { 0 };
    struct sky_err e = { 0 };
    static const char html[] = "<html><body>Login</body></html>";
    CHECK_INT(webdav_parse_multistatus(html, sizeof html - 1, keep, &s, &e), -EBADMSG);
    CHECK(strstr(e.msg, "not a WebDAV multistatus") != NULL);
    static const char broken[] = "<D:multistatus xmlns:D=\"DAV:\"><D:response>";
    CHECK_INT(webdav_parse_multistatus(broken, sizeof broken - 1, keep, &s, NULL), -EBADMSG);
    /* bad numbers are no properties, not errors */
    static const char odd[] =
        "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>/f</D:href><D:propstat><D:prop>"
        "<D:getcontentlength>-5</D:getcontentlength><S:skyfs-mode xmlns:S=\"x\">99999</S:skyfs-mode>"
        "<D:getlastmodified>yesterday</D:getlastmodified>"
        "<S:skyfs-mtime xmlns:S=\"x\">12</S:skyfs-mtime>"
        "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>";
    s.n = 0;
    CHECK_INT(webdav_parse_multistatus(odd, sizeof odd - 1, keep, &s, NULL), 0);
    CHECK_INT(s.n, 1);
    CHECK(!s.e[0].has_size);
    CHECK(!s.e[0].has_mode);
    CHECK(!s.e[0].has_mtime);
    CHECK(!s.e[0].has_skyfs_mtime);             /* no etag part */
}

/* A quota answer: one response for /dav/ with `props` under `status`. */
static bool quota_of(const char *props, const char *status, struct statvfs *st)
{
    char body[1024];
    snprintf(body, sizeof body,
             "<?xml version=\"1.0\"?><D:multistatus xmlns:D=\"DAV:\"><D:response>"
             "<D:href>/dav/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/>"
             "</D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
             "<D:propstat><D:prop>%s</D:prop><D:status>HTTP/1.1 %s</D:status></D:propstat>"
             "</D:response></D:multistatus>", props, status);
    memset(st, 0x5a, sizeof *st);
    return webdav_quota_statvfs(body, strlen(body), st);
}

/* df never shows a full disk for a server that tells no quota */
TEST(webdav_quota_statvfs)
{
    struct statvfs st;
    CHECK(quota_of("<D:quota-available-bytes>4096000</D:quota-available-bytes>"
                   "<D:quota-used-bytes>98304</D:quota-used-bytes>", "200 OK", &st));
    CHECK_INT(st.f_bsize, 4096);
    CHECK_INT(st.f_bavail, 1000);
    CHECK_INT(st.f_bfree, 1000);
    CHECK_INT(st.f_blocks, 1024);
    /* available without used: the free room counts */
    CHECK(quota_of("<D:quota-available-bytes>8192</D:quota-available-bytes>", "200 OK", &st));
    CHECK_INT(st.f_bavail, 2);
    CHECK_INT(st.f_blocks, 2);
    /* a quota used up is full indeed */
    CHECK(quota_of("<D:quota-available-bytes>0</D:quota-available-bytes>"
                   "<D:quota-used-bytes>40960</D:quota-used-bytes>", "200 OK", &st));
    CHECK_INT(st.f_bavail, 0);
    CHECK_INT(st.f_blocks, 10);
    /* no quota told: Apache and rclone (404, empty), Nextcloud's unlimited
     * (-3), nothing at all, zeros for "none" */
    CHECK(!quota_of("<D:quota-available-bytes/><D:quota-used-bytes/>", "404 Not Found", &st));
    CHECK(!quota_of("<D:quota-available-bytes></D:quota-available-bytes>", "200 OK", &st));
    CHECK(!quota_of("<D:quota-available-bytes>-3</D:quota-available-bytes>"
                    "<D:quota-used-bytes>1234</D:quota-used-bytes>", "200 OK", &st));
    CHECK(!quota_of("<D:quota-used-bytes>1234</D:quota-used-bytes>", "200 OK", &st));
    CHECK(!quota_of("<D:quota-available-bytes>0</D:quota-available-bytes>"
                    "<D:quota-used-bytes>0</D:quota-used-bytes>", "200 OK", &st));
    CHECK(!quota_of("<D:quota-available-bytes>0</D:quota-available-bytes>", "200 OK", &st));
    CHECK(!webdav_quota_statvfs("not xml", 7, &st));
}

TEST(webdav_proppatch)
{
    static const char ok[] =
        "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>/f</D:href><D:propstat>"
        "<D:prop><S:skyfs-mode xmlns:S=\"urn:x-skyfs:posix\"/></D:prop>"
        "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>";
    static const char refused[] =
        "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>/f</D:href><D:propstat>"
        "<D:prop><S:skyfs-mode xmlns:S=\"urn:x-skyfs:posix\"/></D:prop>"
        "<D:status>HTTP/1.1 403 Forbidden</D:status></D:propstat></D:response></D:multistatus>";
    long st = 0;
    CHECK(!webdav_proppatch_refused(ok, sizeof ok - 1, &st));
    CHECK(webdav_proppatch_refused(refused, sizeof refused - 1, &st));
    CHECK_INT(st, 403);

    struct sky_attr a = { .mode = 0100640, .uid = 7, .gid = 8, .mtime_ns = 1500000000123456789LL };
    struct sky_meta_item items[] = { { .key = "color", .value = "bl\0e", .len = 4 } };
    struct sky_objmeta user = { .has_user = true, .nuser = 1, .user = items };
    char *body = webdav_proppatch_body(&a, SKY_HAS_MODE | SKY_HAS_GID | SKY_HAS_MTIME,
                                       "\"e<1>\"", &user, -1);
    CHECK(body != NULL);
    CHECK(strstr(body, "<S:skyfs-mode>416</S:skyfs-mode>") != NULL);    /* bits only */
    CHECK(strstr(body, "skyfs-uid") == NULL);
    CHECK(strstr(body, "<S:skyfs-gid>8</S:skyfs-gid>") != NULL);
    CHECK(strstr(body, "<S:skyfs-mtime>1500000000123456789 &quot;e&lt;1&gt;&quot;</S:skyfs-mtime>")
          != NULL);
    CHECK(strstr(body, "lastmodified") == NULL);
    /* user.color = "bl\0e": name and value in hex */
    CHECK(strstr(body, "<X:skyfs-x-636f6c6f72>626c0065</X:skyfs-x-636f6c6f72>") != NULL);
    free(body);
    body = webdav_proppatch_remove_body("color");
    CHECK(body != NULL);
    CHECK(strstr(body, "<D:remove><D:prop><X:skyfs-x-636f6c6f72/></D:prop></D:remove>") != NULL);
    free(body);
    body = webdav_proppatch_body(&a, 0, NULL, NULL, 1500000000123456789LL);
    CHECK(body != NULL);
    CHECK(strstr(body, "<D:lastmodified>1500000000</D:lastmodified>") != NULL);
    free(body);

    CHECK(strstr(webdav_propfind_body(WEBDAV_PROPS), "<S:skyfs-mtime/>") != NULL);
    CHECK(strstr(webdav_propfind_body(WEBDAV_QUOTA), "quota-available-bytes") != NULL);
    CHECK(strstr(webdav_propfind_body(WEBDAV_ALLPROP), "<D:allprop/>") != NULL);
}

/* in backends/webdav.c (not static, for this test) */
char *webdav_nextcloud_uploads_path(const char *root_raw);

TEST(webdav_nextcloud_uploads_folder)
{
    char *p = webdav_nextcloud_uploads_path("/remote.php/dav/files/alice/Photos/2024");
    CHECK_STR(p, "/remote.php/dav/uploads/alice");
    free(p);
    p = webdav_nextcloud_uploads_path("/nc/remote.php/dav/files/bob%20x");
    CHECK_STR(p, "/nc/remote.php/dav/uploads/bob%20x");
    free(p);
    /* the old endpoint and other servers have no chunked upload */
    CHECK(webdav_nextcloud_uploads_path("/remote.php/webdav") == NULL);
    CHECK(webdav_nextcloud_uploads_path("/remote.php/dav/files/") == NULL);
    CHECK(webdav_nextcloud_uploads_path("") == NULL);
}
