/* test_s3fs_xattr.c - s3fs's x-amz-meta-xattr JSON, read and edited. */
#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/s3fs_xattr.h"

/* {"user.color":"Ymx1ZQ==","security.selinux":"eA==","user.bin":"AAH/"}
 * URL-encoded, as s3fs writes it ("blue", "x", bytes 00 01 ff). */
#define S3FS_VALUE "%7B%22user.color%22%3A%22Ymx1ZQ%3D%3D%22%2C%22security.selinux%22%3A" \
                   "%22eA%3D%3D%22%2C%22user.bin%22%3A%22AAH%2F%22%7D"

TEST(s3fs_xattr_reads_user_items)
{
    struct sky_objmeta m = { 0 };
    CHECK_INT(s3fs_xattr_read(S3FS_VALUE, &m), 0);
    CHECK_INT(m.nuser, 2);
    const struct sky_meta_item *color = sky_objmeta_find(&m, "color");
    const struct sky_meta_item *bin = sky_objmeta_find(&m, "bin");
    CHECK(color && color->len == 4 && memcmp(color->value, "blue", 4) == 0);
    CHECK(bin && bin->len == 3 && memcmp(bin->value, "\x00\x01\xff", 3) == 0);
    CHECK(!sky_objmeta_find(&m, "selinux"));
    sky_objmeta_free(&m);
}

TEST(s3fs_xattr_own_items_win_and_garbage_adds_nothing)
{
    struct sky_objmeta m = { 0 };
    CHECK_INT(sky_objmeta_add_user(&m, "color", "red", 3), 0);
    CHECK_INT(s3fs_xattr_read(S3FS_VALUE, &m), 0);
    const struct sky_meta_item *color = sky_objmeta_find(&m, "color");
    CHECK(color && color->len == 3 && memcmp(color->value, "red", 3) == 0);
    sky_objmeta_free(&m);
    CHECK_INT(s3fs_xattr_read("%7Bnot json", &m), 0);
    CHECK_INT(s3fs_xattr_read("%5B1%2C2%5D", &m), 0);   /* [1,2]: not an object */
    CHECK_INT(s3fs_xattr_read(NULL, &m), 0);
    CHECK_INT(m.nuser, 0);
    sky_objmeta_free(&m);
}

TEST(s3fs_xattr_edit_keeps_the_other_items)
{
    CHECK(s3fs_xattr_has(S3FS_VALUE, "user.color"));
    CHECK(!s3fs_xattr_has(S3FS_VALUE, "user.size"));
    char *rest = NULL;
    CHECK_INT(s3fs_xattr_without(S3FS_VALUE, "user.size", &rest), -ENOENT);
    CHECK(rest == NULL);
    CHECK_INT(s3fs_xattr_without(S3FS_VALUE, "user.color", &rest), 0);
    CHECK(rest != NULL);
    CHECK(!s3fs_xattr_has(rest, "user.color"));
    CHECK(s3fs_xattr_has(rest, "security.selinux"));
    struct sky_objmeta m = { 0 };
    CHECK_INT(s3fs_xattr_read(rest, &m), 0);
    CHECK_INT(m.nuser, 1);
    CHECK(sky_objmeta_find(&m, "bin") != NULL);
    sky_objmeta_free(&m);
    char *last = NULL, *none = NULL;
    CHECK_INT(s3fs_xattr_without(rest, "user.bin", &last), 0);
    CHECK_INT(s3fs_xattr_without(last, "security.selinux", &none), 0);
    CHECK(none == NULL);        /* nothing left: the header goes */
    free(rest);
    free(last);
}

TEST(s3fs_xattr_set_inside_the_json)
{
    char *out = NULL;
    CHECK_INT(s3fs_xattr_with(S3FS_VALUE, "user.color", "green", 5, &out), 0);
    struct sky_objmeta m = { 0 };
    CHECK_INT(s3fs_xattr_read(out, &m), 0);
    const struct sky_meta_item *color = sky_objmeta_find(&m, "color");
    CHECK(color && color->len == 5 && memcmp(color->value, "green", 5) == 0);
    CHECK(sky_objmeta_find(&m, "bin") != NULL);
    CHECK(s3fs_xattr_has(out, "security.selinux"));
    sky_objmeta_free(&m);
    free(out);
    CHECK_INT(s3fs_xattr_with("%7Bbroken", "user.x", "v", 1, &out), -EINVAL);
    CHECK(out == NULL);
    CHECK_INT(s3fs_xattr_with(NULL, "user.x", "v", 1, &out), -EINVAL);
}
