/*
 * test_objstore.c - the object-store core's codec plumbing, no server:
 * times written the s3fs and the rclone way and read back, POSIX
 * attributes read from a head by a codec's conventions (directory content
 * types, blobfuse2's folder flag, an attr_read hook), and what counts as
 * user metadata.
 */
#include "check.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../../backends/objstore_int.h"

TEST(objstore_times_both_forms_round_trip)
{
    char buf[64];
    int64_t ns = 0;
    objstore_time_decimal(1620284889123456789LL, buf, sizeof buf);
    CHECK_STR(buf, "1620284889.123456789");
    objstore_time_decimal(1620284889000000000LL, buf, sizeof buf);
    CHECK_STR(buf, "1620284889");
    objstore_time_rfc3339(1620284889123456789LL, buf, sizeof buf);
    CHECK_STR(buf, "2021-05-06T07:08:09.123456789Z");
    CHECK_INT(objstore_parse_time(buf, &ns), 0);
    CHECK_INT(ns, 1620284889123456789LL);
    /* before 1970: the fraction still counts forward from the second */
    objstore_time_decimal(-1500000000LL, buf, sizeof buf);
    CHECK_STR(buf, "-2.500000000");
    objstore_time_rfc3339(-1500000000LL, buf, sizeof buf);
    CHECK_STR(buf, "1969-12-31T23:59:58.500000000Z");
    CHECK_INT(objstore_parse_time("soon", &ns), -EINVAL);
}

static void later_mtime(const struct objstore_head *h, struct sky_attr *a)
{
    const char *v = http_headers_get(&h->meta, "other_mtime");
    if (v && !http_headers_get(&h->meta, "mtime") && objstore_parse_time(v, &a->mtime_ns) == 0)
        a->has |= SKY_HAS_MTIME;
}

static const char *const dir_types[] = { "application/directory", NULL };
static const char *const reserved[] = { "other_mtime", NULL };

static const struct objstore_codec codec = {
    .format_time = objstore_time_rfc3339,
    .dir_types = dir_types,
    .folder_flag = "hdi_isfolder",
    .meta_max = 1024,
    .reserved = reserved,
    .attr_read = later_mtime,
};

TEST(objstore_attr_from_head_by_codec)
{
    struct objstore o = { .codec = &codec };
    struct objstore_head h = { .size = 12, .last_modified_ns = 5000000000LL, .etag = "\"e\"" };
    struct sky_attr a;
    os_attr_from_head(&o, &h, &a);
    CHECK_INT(a.kind, SKY_FILE);
    CHECK_INT(a.size, 12);
    CHECK_INT(a.mtime_ns, 5000000000LL);        /* Last-Modified without metadata */
    CHECK_INT(a.has, SKY_HAS_MTIME);
    CHECK_STR(a.etag, "\"e\"");

    http_headers_set(&h.meta, "mode", "0100600");   /* rclone's octal form */
    http_headers_set(&h.meta, "uid", "7");
    http_headers_set(&h.meta, "other_mtime", "1620284889.5");
    os_attr_from_head(&o, &h, &a);
    CHECK_INT(a.mode, 0600);
    CHECK_INT(a.uid, 7);
    CHECK_INT(a.mtime_ns, 1620284889500000000LL);   /* the hook read another tool's */
    CHECK(a.has & SKY_HAS_UID);

    h.size = 0;
    http_headers_set(&h.meta, "hdi_isfolder", "true");
    os_attr_from_head(&o, &h, &a);
    CHECK_INT(a.kind, SKY_DIR);
    CHECK_STR(a.etag, "");
    http_headers_free(&h.meta);

    h.content_type = (char *)"application/directory; charset=x";
    os_attr_from_head(&o, &h, &a);
    CHECK_INT(a.kind, SKY_DIR);
    h.size = 3;                                 /* has content: a file */
    os_attr_from_head(&o, &h, &a);
    CHECK_INT(a.kind, SKY_FILE);
}

TEST(objstore_user_names_exclude_posix_and_reserved)
{
    struct objstore o = { .codec = &codec };
    CHECK(os_is_user_name(&o, "color"));
    CHECK(!os_is_user_name(&o, "mode"));
    CHECK(!os_is_user_name(&o, "MTIME"));
    CHECK(!os_is_user_name(&o, "xattr"));
    CHECK(!os_is_user_name(&o, "other_mtime"));
    CHECK(!os_is_user_name(&o, "hdi_isfolder"));
    CHECK(objstore_name_token("a-b_c.d1"));
    CHECK(!objstore_name_token("Upper"));
    CHECK(!objstore_name_token(""));
}

TEST(objstore_cloud_metadata_from_head)
{
    struct objstore o = { .codec = &codec };
    struct objstore_head h = { .content_type = (char *)"text/plain",
                               .storage_class = (char *)"COLD" };
    http_headers_set(&h.meta, "mode", "33188");
    http_headers_set(&h.meta, "color", "blue");
    http_headers_set(&h.meta, "bin", "b64:AAEC");     /* 00 01 02 */
    struct sky_objmeta m = { 0 };
    CHECK_INT(os_objmeta_from_head(&o, &h, &m), 0);
    CHECK_STR(m.content_type, "text/plain");
    CHECK_STR(m.storage_class, "COLD");
    CHECK(m.has_user);
    CHECK_INT(m.nuser, 2);
    const struct sky_meta_item *it = sky_objmeta_find(&m, "color");
    CHECK(it && it->len == 4 && memcmp(it->value, "blue", 4) == 0);
    it = sky_objmeta_find(&m, "bin");
    CHECK(it && it->len == 3 && memcmp(it->value, "\0\1\2", 3) == 0);
    sky_objmeta_free(&m);
    http_headers_free(&h.meta);
}

TEST(objstore_etag_copy_quotes_and_empty_is_none)
{
    char out[SKY_ETAG_MAX];
    objstore_etag_copy(out, "abc");
    CHECK_STR(out, "\"abc\"");
    objstore_etag_copy(out, "\"abc-2\"");
    CHECK_STR(out, "\"abc-2\"");
    /* RGW 16 completes a multipart upload with <ETag></ETag>: no ETag,
     * not the version "" that no object has */
    objstore_etag_copy(out, "");
    CHECK_STR(out, "");
    objstore_etag_copy(out, "\"\"");
    CHECK_STR(out, "");
    objstore_etag_copy(out, NULL);
    CHECK_STR(out, "");
}
