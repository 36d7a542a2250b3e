/*
 * test_s3_xml.c - the XML reader and the S3 answer parsers, no server.
 *
 * The S3 parsers are backends/s3proto.h's; times, child names and the
 * reading of a head's metadata are the object-store core's
 * (backends/objstore.h, objstore_int.h).
 */
#include "check.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../../backends/driver.h"
#include "../../backends/http.h"
#include "../../backends/objstore_int.h"
#include "../../backends/s3proto.h"
#include "../../backends/xml.h"
#include "../../lib/config.h"

/* The S3 module's metadata codec (backends/s3.c, not static for these
 * tests). */
extern const struct objstore_codec sky_s3_codec;

/* A HEAD answer's headers as the S3 cloud reads them: the S3 protocol
 * pieces make a head of them, the core reads it with S3's codec. */
static void s3_attr_from_headers(const struct http_headers *h, struct sky_attr *a)
{
    struct s3proto_conf conf = { .meta_prefix = "x-amz-meta-",
                                 .storage_class_header = "x-amz-storage-class",
                                 .default_storage_class = "STANDARD" };
    struct objstore_head head;
    memset(a, 0, sizeof *a);
    if (s3proto_parse_head(&conf, h, &head) < 0)
        return;
    struct objstore o = { .codec = &sky_s3_codec };
    os_attr_from_head(&o, &head, a);
    objstore_head_free(&head);
}

static const char list_page[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bucket</Name><Prefix>photos/</Prefix><KeyCount>4</KeyCount>"
    "<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
    "<Contents><Key>photos/</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
    "<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>photos/a &amp; b.jpg</Key><LastModified>2009-10-12T17:50:30.500Z</LastModified>"
    "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>"
    "<StorageClass>GLACIER</StorageClass></Contents>"
    "<CommonPrefixes><Prefix>photos/2006/</Prefix></CommonPrefixes>"
    "<CommonPrefixes><Prefix>photos/2007/</Prefix></CommonPrefixes>"
    "</ListBucketResult>";

struct seen {
    int n;
    char keys[8][64];
    int is_prefix[8];
    struct sky_attr attr[8];
    char storage_class[8][16];      /* "-" when NULL */
};

static int remember(void *arg, const struct objstore_item *it)
{
    struct seen *s = arg;
    if (s->n < 8) {
        snprintf(s->keys[s->n], sizeof s->keys[0], "%s", it->key);
        s->is_prefix[s->n] = it->is_prefix;
        struct sky_attr a = { .kind = it->is_prefix ? SKY_DIR : SKY_FILE, .size = it->size,
                              .mtime_ns = it->last_modified_ns,
                              .has = it->last_modified_ns ? SKY_HAS_MTIME : 0 };
        memcpy(a.etag, it->etag, sizeof a.etag);
        s->attr[s->n] = a;
        snprintf(s->storage_class[s->n], sizeof s->storage_class[0], "%s",
                 it->storage_class ? it->storage_class : "-");
    }
    s->n++;
    return 0;
}

TEST(s3_xml_list_objects_v2_page)
{
    struct seen s = {0};
    char *token = NULL;
    struct sky_err e = {0};
    CHECK_INT(s3proto_parse_list(list_page, strlen(list_page), remember, &s, &token, &e), 0);
    CHECK_INT(s.n, 4);
    CHECK_STR(s.keys[0], "photos/");
    CHECK_STR(s.keys[1], "photos/a & b.jpg");
    CHECK_INT(s.attr[1].size, 434234);
    CHECK_STR(s.attr[1].etag, "\"fba9dede5f27731c9771645a39863328\"");
    CHECK_INT(s.attr[1].mtime_ns, 1255369830500000000LL);
    CHECK(s.attr[1].has & SKY_HAS_MTIME);
    CHECK_INT(s.attr[1].kind, SKY_FILE);
    CHECK_STR(s.storage_class[0], "STANDARD");
    CHECK_STR(s.storage_class[1], "GLACIER");
    CHECK_STR(s.storage_class[2], "-");         /* prefixes have none */
    CHECK_STR(s.keys[2], "photos/2006/");
    CHECK_INT(s.is_prefix[2], 1);
    CHECK_INT(s.attr[2].kind, SKY_DIR);
    CHECK_STR(token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    free(token);
}

TEST(s3_xml_list_last_page_and_url_encoding)
{
    const char *page =
        "<ListBucketResult><Name>b</Name><EncodingType>url</EncodingType>"
        "<IsTruncated>false</IsTruncated>"
        "<Contents><Key>dir/caf%C3%A9+menu%2B1.txt</Key><Size>3</Size>"
        "<ETag>abc</ETag><LastModified>2020-01-01T00:00:00Z</LastModified></Contents>"
        "<CommonPrefixes><Prefix>dir/sub%01x/</Prefix></CommonPrefixes>"
        "</ListBucketResult>";
    struct seen s = {0};
    char *token = (char *)"untouched";
    CHECK_INT(s3proto_parse_list(page, strlen(page), remember, &s, &token, NULL), 0);
    CHECK(token == NULL);
    CHECK_INT(s.n, 2);
    CHECK_STR(s.keys[0], "dir/caf\xc3\xa9 menu+1.txt");
    CHECK_STR(s.attr[0].etag, "\"abc\"");   /* always quoted */
    CHECK_STR(s.keys[1], "dir/sub\x01x/");
}

TEST(s3_xml_list_skips_nul_keys_and_marks_bad_sizes)
{
    /* "a%00b" would be "a" cut at the NUL: another key.  It is not passed
     * on at all; sizes no file has come out as UINT64_MAX. */
    const char *page =
        "<ListBucketResult><Name>b</Name><EncodingType>url</EncodingType>"
        "<IsTruncated>false</IsTruncated>"
        "<Contents><Key>a%00b</Key><Size>3</Size><ETag>x</ETag></Contents>"
        "<Contents><Key>ok</Key><Size>-5</Size><ETag>y</ETag></Contents>"
        "<Contents><Key>big</Key><Size>99999999999999999999</Size><ETag>z</ETag></Contents>"
        "</ListBucketResult>";
    struct seen s = {0};
    char *token = NULL;
    CHECK_INT(s3proto_parse_list(page, strlen(page), remember, &s, &token, NULL), 0);
    CHECK_INT(s.n, 2);
    CHECK_STR(s.keys[0], "ok");
    CHECK(s.attr[0].size == UINT64_MAX);
    CHECK_STR(s.keys[1], "big");
    CHECK(s.attr[1].size == UINT64_MAX);
}

TEST(s3_xml_a_body_that_is_not_utf8_still_parses)
{
    /* a raw 0xFF in one key: expat would refuse the whole page as UTF-8 */
    const char *page =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated>"
        "<Contents><Key>bad\xffname</Key><Size>3</Size><ETag>x</ETag></Contents>"
        "<Contents><Key>caf\xc3\xa9</Key><Size>4</Size><ETag>y</ETag></Contents>"
        "</ListBucketResult>";
    struct seen s = {0};
    char *token = NULL;
    CHECK_INT(s3proto_parse_list(page, strlen(page), remember, &s, &token, NULL), 0);
    CHECK_INT(s.n, 2);
    CHECK_STR(s.keys[0], "bad\xffname");      /* its own bytes: the name check skips it */
    CHECK_STR(s.keys[1], "caf\xc3\xa9");       /* the good key unchanged */
    CHECK_INT(s.attr[1].size, 4);
}

TEST(s3_xml_list_rejects_garbage)
{
    struct seen s = {0};
    char *token = NULL;
    struct sky_err e = {0};
    const char *bad = "<ListBucketResult><Contents><Key>x</Key>";
    CHECK_INT(s3proto_parse_list(bad, strlen(bad), remember, &s, &token, &e), -EBADMSG);
    CHECK(strstr(e.msg, "malformed XML") != NULL);
    const char *err = "<Error><Code>AccessDenied</Code></Error>";
    CHECK_INT(s3proto_parse_list(err, strlen(err), remember, &s, &token, &e), -EBADMSG);
    const char *trunc = "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
    CHECK_INT(s3proto_parse_list(trunc, strlen(trunc), remember, &s, &token, &e), -EBADMSG);
}

static int stop_at_two(void *arg, const struct objstore_item *it)
{
    int *n = arg;
    return ++*n == 2 ? -EINTR : 0;
}

TEST(s3_xml_list_callback_can_stop)
{
    int n = 0;
    char *token = NULL;
    CHECK_INT(s3proto_parse_list(list_page, strlen(list_page), stop_at_two, &n, &token, NULL), -EINTR);
    CHECK_INT(n, 2);
    CHECK(token == NULL);
}

TEST(s3_xml_error_bodies)
{
    const char *body =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
        "<Message>The resource you requested does not exist</Message>"
        "<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>";
    char code[64];
    CHECK_INT(s3proto_parse_error(body, strlen(body), code, sizeof code), 1);
    CHECK_STR(code, "NoSuchKey");
    CHECK_INT(s3proto_error_errno(404, code), ENOENT);
    CHECK_INT(s3proto_parse_error("", 0, code, sizeof code), 0);
    CHECK_STR(code, "");
    CHECK_INT(s3proto_parse_error("not xml", 7, code, sizeof code), 0);
    CHECK_INT(s3proto_error_errno(403, "AccessDenied"), EACCES);
    CHECK_INT(s3proto_error_errno(403, "SignatureDoesNotMatch"), EACCES);
    CHECK_INT(s3proto_error_errno(404, "NoSuchBucket"), ENOENT);
    CHECK_INT(s3proto_error_errno(409, "BucketNotEmpty"), ENOTEMPTY);
    CHECK_INT(s3proto_error_errno(412, "PreconditionFailed"), ESTALE);
    CHECK_INT(s3proto_error_errno(503, "SlowDown"), EIO);
    CHECK_INT(s3proto_error_errno(500, "InternalError"), EIO);
    CHECK_INT(s3proto_error_errno(400, "InvalidArgument"), EIO);
    CHECK_INT(s3proto_error_errno(404, ""), ENOENT);
}

TEST(s3_xml_times)
{
    int64_t ns = 0;
    CHECK_INT(objstore_parse_iso8601("2009-10-12T17:50:30.000Z", &ns), 0);
    CHECK_INT(ns, 1255369830000000000LL);
    CHECK_INT(objstore_parse_iso8601("2009-10-12T19:50:30.25+02:00", &ns), 0);
    CHECK_INT(ns, 1255369830250000000LL);
    CHECK_INT(objstore_parse_iso8601("yesterday", &ns), -EINVAL);
    CHECK_INT(objstore_parse_http_date("Mon, 12 Oct 2009 17:50:30 GMT", &ns), 0);
    CHECK_INT(ns, 1255369830000000000LL);
    /* s3fs: whole seconds; rclone: fractional seconds; RFC 3339 */
    CHECK_INT(objstore_parse_time("1700000000", &ns), 0);
    CHECK_INT(ns, 1700000000000000000LL);
    CHECK_INT(objstore_parse_time("1700000000.123456789", &ns), 0);
    CHECK_INT(ns, 1700000000123456789LL);
    CHECK_INT(objstore_parse_time("1700000000.5", &ns), 0);
    CHECK_INT(ns, 1700000000500000000LL);
    CHECK_INT(objstore_parse_time("2023-11-14T22:13:20.000000001Z", &ns), 0);
    CHECK_INT(ns, 1700000000000000001LL);
    CHECK_INT(objstore_parse_time("12abc", &ns), -EINVAL);
    CHECK_INT(objstore_parse_time("", &ns), -EINVAL);
}

TEST(s3_xml_head_headers_to_attr)
{
    struct http_headers h = {0};
    http_headers_set(&h, "content-length", "1234");
    http_headers_set(&h, "etag", "\"abc\"");
    http_headers_set(&h, "last-modified", "Mon, 12 Oct 2009 17:50:30 GMT");
    http_headers_set(&h, "x-amz-meta-mode", "33188");   /* S_IFREG | 0644 */
    http_headers_set(&h, "x-amz-meta-uid", "1000");
    http_headers_set(&h, "x-amz-meta-gid", "100");
    http_headers_set(&h, "x-amz-meta-mtime", "1700000000");
    struct sky_attr a;
    s3_attr_from_headers(&h, &a);
    CHECK_INT(a.kind, SKY_FILE);
    CHECK_INT(a.size, 1234);
    CHECK_INT(a.mode, 0644);
    CHECK_INT(a.uid, 1000);
    CHECK_INT(a.gid, 100);
    CHECK_INT(a.mtime_ns, 1700000000000000000LL);
    CHECK_INT(a.has, SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME);
    CHECK_STR(a.etag, "\"abc\"");

    http_headers_set(&h, "x-amz-meta-mode", "41471");   /* S_IFLNK | 0777 */
    s3_attr_from_headers(&h, &a);
    CHECK_INT(a.kind, SKY_LINK);
    CHECK_INT(a.mode, 0777);
    http_headers_free(&h);

    /* a foreign object: no metadata, Last-Modified is the mtime */
    http_headers_set(&h, "content-length", "5");
    http_headers_set(&h, "last-modified", "Mon, 12 Oct 2009 17:50:30 GMT");
    s3_attr_from_headers(&h, &a);
    CHECK_INT(a.has, SKY_HAS_MTIME);
    CHECK_INT(a.mtime_ns, 1255369830000000000LL);
    http_headers_free(&h);
}

/* s3fs's special files: the type in x-amz-meta-mode, a device's number in
 * x-amz-meta-rdev (read only for devices). */
TEST(s3_xml_head_headers_special_files)
{
    struct http_headers h = {0};
    struct sky_attr a;
    http_headers_set(&h, "content-length", "0");
    http_headers_set(&h, "x-amz-meta-mode", "4480");    /* S_IFIFO | 0600 */
    http_headers_set(&h, "x-amz-meta-rdev", "99");
    s3_attr_from_headers(&h, &a);
    CHECK_INT(a.kind, SKY_FIFO);
    CHECK_INT(a.mode, 0600);
    CHECK_INT(a.rdev, 0);
    http_headers_set(&h, "x-amz-meta-mode", "49645");   /* S_IFSOCK | 0755 */
    s3_attr_from_headers(&h, &a);
    CHECK_INT(a.kind, SKY_SOCK);
    http_headers_set(&h, "x-amz-meta-mode", "8592");    /* S_IFCHR | 0620 */
    http_headers_set(&h, "x-amz-meta-rdev", "1027");    /* makedev(4, 3) */
    s3_attr_from_headers(&h, &a);
    CHECK_INT(a.kind, SKY_CHR);
    CHECK_INT(a.mode, 0620);
    CHECK_INT(a.rdev, 1027);
    http_headers_set(&h, "x-amz-meta-mode", "25008");   /* S_IFBLK | 0660 */
    http_headers_set(&h, "x-amz-meta-rdev", "not a number");
    s3_attr_from_headers(&h, &a);
    CHECK_INT(a.kind, SKY_BLK);
    CHECK_INT(a.rdev, 0);
    http_headers_free(&h);
}

/* Older tools' directories: an empty "dir" object (no slash) whose
 * Content-Type is application/x-directory. */
TEST(s3_xml_head_headers_directory_objects)
{
    struct http_headers h = {0};
    struct sky_attr a;
    http_headers_set(&h, "content-length", "0");
    http_headers_set(&h, "etag", "\"d41d8cd98f00b204e9800998ecf8427e\"");
    http_headers_set(&h, "content-type", "application/x-directory; charset=UTF-8");
    s3_attr_from_headers(&h, &a);
    CHECK_INT(a.kind, SKY_DIR);
    CHECK_STR(a.etag, "");
    http_headers_set(&h, "content-type", "application/x-directory-listing");
    s3_attr_from_headers(&h, &a);
    CHECK_INT(a.kind, SKY_FILE);
    http_headers_set(&h, "content-type", "application/x-directory");
    http_headers_set(&h, "content-length", "12");   /* has content: a file */
    s3_attr_from_headers(&h, &a);
    CHECK_INT(a.kind, SKY_FILE);
    http_headers_free(&h);
}

TEST(s3_list_child_names)
{
    char name[256];
    CHECK_INT(objstore_child_name("dir/a.txt", 4, 0, name), 1);
    CHECK_STR(name, "a.txt");
    CHECK_INT(objstore_child_name("dir/sub/", 4, 1, name), 1);
    CHECK_STR(name, "sub");
    CHECK_INT(objstore_child_name("dir/", 4, 0, name), 0);      /* the marker itself */
    CHECK_INT(objstore_child_name("dir//", 4, 1, name), -1);    /* empty segment */
    CHECK_INT(objstore_child_name("dir/./", 4, 1, name), -1);
    CHECK_INT(objstore_child_name("dir/../", 4, 1, name), -1);
    CHECK_INT(objstore_child_name("dir/.", 4, 0, name), -1);
    CHECK_INT(objstore_child_name("dir/..", 4, 0, name), -1);
    CHECK_INT(objstore_child_name("dir/...", 4, 0, name), 1);
    char longkey[300] = "d/";
    memset(longkey + 2, 'n', 256);
    longkey[258] = '\0';
    CHECK_INT(objstore_child_name(longkey, 2, 0, name), -1);    /* 256 bytes */
    longkey[257] = '\0';
    CHECK_INT(objstore_child_name(longkey, 2, 0, name), 1);     /* 255 bytes */
    CHECK_INT(strlen(name), 255);
    CHECK_INT(objstore_child_name("top", 0, 0, name), 1);
    CHECK_STR(name, "top");
}

TEST(xml_tree_and_escape)
{
    const char *doc = "<a:Root xmlns:a=\"urn:x\"><a:B>one</a:B><C/><B>tw<![CDATA[o]]></B>"
                      "<D><E>deep</E></D></a:Root>";
    struct xml_node *root = NULL;
    CHECK_INT(xml_parse(doc, strlen(doc), &root, NULL), 0);
    CHECK(root != NULL);
    if (!root)
        return;
    CHECK_STR(root->name, "Root");
    const struct xml_node *b = xml_child(root, "B");
    CHECK_STR(b ? b->text : NULL, "one");
    b = xml_next(b);
    CHECK_STR(b ? b->text : NULL, "two");
    CHECK(xml_next(b) == NULL);
    CHECK_STR(xml_text(root, "C"), "");
    CHECK_STR(xml_text(root, "D/E"), "deep");
    CHECK(xml_text(root, "D/F") == NULL);
    xml_free(root);

    char *esc = xml_escape("a<b>&\"c'");
    CHECK_STR(esc, "a&lt;b&gt;&amp;&quot;c&apos;");
    free(esc);

    struct sky_err e = {0};
    CHECK_INT(xml_parse("<a><b></a>", 10, &root, &e), -EBADMSG);
    CHECK(root == NULL);
    CHECK_INT(xml_parse("", 0, &root, &e), -EBADMSG);
}

/* open(): where credentials come from, and config errors naming the key. */
static int open_with(struct sky_kv *kv, size_t n, struct sky_err *e)
{
    extern const struct sky_driver sky_driver_s3;
    struct sky_cloud_config cfg = { .name = (char *)"c", .type = (char *)"s3",
                                    .file = "t.conf", .line = 3, .nkv = n, .kv = kv };
    void *ctx = NULL;
    int rc = sky_driver_s3.open(&cfg, &ctx, e);
    if (rc == 0)
        sky_driver_s3.close(ctx);
    return rc;
}

TEST(s3_open_credentials_and_config_errors)
{
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    const char *envs[] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                           "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE" };
    char *saved[5];
    for (int i = 0; i < 5; i++) {
        saved[i] = getenv(envs[i]) ? strdup(getenv(envs[i])) : NULL;
        unsetenv(envs[i]);
    }
    char *dir = unit_tmpdir();
    setenv("HOME", dir, 1);
    struct sky_err e = {0};
    struct sky_kv bucket[] = { { (char *)"bucket", (char *)"b", 4 } };

    CHECK_INT(open_with(bucket, 1, &e), -EACCES);
    CHECK(strstr(e.msg, "no S3 credentials") != NULL);

    char aws[600];
    snprintf(aws, sizeof aws, "%s/.aws", dir);
    mkdir(aws, 0700);
    free(unit_write_file(aws, "credentials",
                         "[default]\naws_access_key_id = AKID\naws_secret_access_key = s3cr3t\n"
                         "[other]\naws_access_key_id=X\n", 0600));
    CHECK_INT(open_with(bucket, 1, &e), 0);
    struct sky_kv other[] = { { (char *)"bucket", (char *)"b", 4 },
                              { (char *)"profile", (char *)"other", 5 } };
    CHECK_INT(open_with(other, 2, &e), -EACCES);   /* no secret in [other] */
    CHECK(!strstr(e.msg, "s3cr3t"));

    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    CHECK_INT(open_with(other, 2, &e), 0);         /* env wins over the file */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");

    struct sky_kv bad_ep[] = { { (char *)"endpoint", (char *)"s3.example.com", 7 } };
    CHECK_INT(open_with(bad_ep, 1, &e), -EINVAL);
    CHECK(strstr(e.msg, "t.conf") && strstr(e.msg, "endpoint"));
    struct sky_kv half[] = { { (char *)"access_key_id", (char *)"K", 8 } };
    CHECK_INT(open_with(half, 1, &e), -EINVAL);
    CHECK(strstr(e.msg, "secret_access_key") != NULL);
    struct sky_kv pfx[] = { { (char *)"prefix", (char *)"a/b", 9 } };
    CHECK_INT(open_with(pfx, 1, &e), -EINVAL);
    CHECK(strstr(e.msg, "bucket") != NULL);

    unit_rmtree(dir);
    free(dir);
    if (old_home)
        setenv("HOME", old_home, 1);
    free(old_home);
    for (int i = 0; i < 5; i++) {
        if (saved[i])
            setenv(envs[i], saved[i], 1);
        free(saved[i]);
    }
}
