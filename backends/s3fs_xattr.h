/*
 * s3fs_xattr.h - s3fs's x-amz-meta-xattr header: extended attributes that
 * s3fs keeps in one piece of S3 user metadata.
 *
 * s3fs stores every xattr of an object in one header, x-amz-meta-xattr,
 * whose value is a URL-encoded JSON object mapping each full xattr name
 * to its base64 value: {"user.color":"Ymx1ZQ=="}.  skyfs keeps its own
 * user.NAME xattrs as x-amz-meta-NAME headers (the object-store core);
 * this module lets it read s3fs's too and, on an object that has that header, change its
 * items there (so s3fs sees the change) and keep the others.  JSON goes
 * through json-c, URL encoding through libcurl, base64 through OpenSSL:
 * nothing here parses a format by hand.
 *
 * Used by backends/objstore_meta.c only (for codecs with
 * OBJSTORE_CODEC_S3FS_XATTR).
 */
#ifndef SKY_S3FS_XATTR_H
#define SKY_S3FS_XATTR_H

#include <stdbool.h>
#include <stddef.h>

#include "driver.h"

/* The user.* items of header value `value` into m (keys without "user.";
 * an item m already has is not replaced).  Other namespaces and items
 * that are not base64 are skipped; a value that is not such JSON at all
 * adds nothing.  0, or -ENOMEM. */
int s3fs_xattr_read(const char *value, struct sky_objmeta *m);

/* Does header value `value` hold xattr `name` (a full name, "user.x")? */
bool s3fs_xattr_has(const char *value, const char *name);

/* Header value `value` without item `name`: *out is the new value
 * (malloc'd), or NULL when no item is left.  0, -ENOENT when `name` is
 * not there or `value` cannot be read (then *out is NULL and the header
 * should stay as it is), or -ENOMEM. */
int s3fs_xattr_without(const char *value, const char *name, char **out);

/* Header value `value` with item `name` set to `len` bytes of `bytes`
 * (base64, as s3fs stores them): *out is the new value (malloc'd).  0,
 * -EINVAL when `value` cannot be read (the header should then stay as it
 * is), or -ENOMEM. */
int s3fs_xattr_with(const char *value, const char *name, const void *bytes, size_t len,
                    char **out);

#endif
