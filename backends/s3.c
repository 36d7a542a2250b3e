/*
 * s3.c - the S3 cloud kind (type = s3): AWS S3 and compatible servers, a
 * protocol module on the object-store core (objstore.h) made of the S3
 * protocol pieces (s3proto.h).  This file holds only what is S3's own:
 * its config keys (endpoint, region, path style, credentials from the
 * config, the environment or ~/.aws/credentials) and its metadata codec.
 *
 * A cloud is one bucket plus an optional key prefix; without `bucket` the
 * cloud's root lists the account's buckets as directories and paths are
 * "bucket/key...".  Directories are key prefixes, with an optional
 * zero-byte "dir/" marker object (Content-Type application/x-directory);
 * an empty object "dir" with that content type, or whose mode says
 * S_IFDIR, is a directory too, as s3fs and older tools made them.
 *
 * POSIX metadata follows s3fs so that both can share a bucket:
 * x-amz-meta-mode holds the whole st_mode in decimal, x-amz-meta-uid/-gid
 * are decimal, x-amz-meta-mtime (and -atime, -ctime) are decimal seconds
 * with a 9-digit fraction when there is one (s3fs 1.90 writes
 * "1620284889.123456789"); rclone's fractional seconds and RFC 3339 times
 * are read too.  Extended attributes user.NAME are x-amz-meta-NAME (NAME
 * in lowercase letters, digits, '-', '_', '.'; other values as "b64:" +
 * base64), and those s3fs keeps in its x-amz-meta-xattr JSON are read and
 * edited where they are.  S3 takes 2 KiB of user metadata per object.
 *
 * Listings carry no user metadata, so small objects are asked what they
 * are once per version (the core, linkprobe.h); `symlinks = no` turns that
 * off.  Uploads above 8 MiB are multipart (8 MiB parts, 4 at a time);
 * renames are CopyObject (UploadPartCopy above 5 GiB) + DELETE,
 * DeleteObjects in batches of 1000 for directories.
 */
#include "s3proto.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/config.h"
#include "objstore.h"

static int cfg_fail(const struct sky_cloud_config *cfg, const char *key, int code,
                    const char *what, struct sky_err *e)
{
    return sky_fail(e, code, "%s:%d: [%s] %s%s%s", cfg->file ? cfg->file : "config",
                    key ? sky_cloud_line(cfg, key) : cfg->line, cfg->name, key ? key : "",
                    key ? ": " : "", what);
}

/* What open collects before making the s3proto. */
struct s3_setup {
    char *region, *host;
    bool https, path_style;
    char *access_key, *secret_key, *session_token;
};

static void wipe(char *p)
{
    if (p) {
        memset(p, 0, strlen(p));
        free(p);
    }
}

static void setup_free(struct s3_setup *st)
{
    free(st->region);
    free(st->host);
    free(st->access_key);
    wipe(st->secret_key);
    wipe(st->session_token);
}

static int setup_endpoint(struct s3_setup *st, const struct sky_cloud_config *cfg,
                          const char *bucket, struct sky_err *e)
{
    const char *region = sky_cloud_get(cfg, "region");
    st->region = strdup(region && *region ? region : "us-east-1");
    const char *ep = sky_cloud_get(cfg, "endpoint");
    char *url = NULL;
    if (ep && *ep)
        url = strdup(ep);
    else if (asprintf(&url, "https://s3.%s.amazonaws.com", st->region) < 0)
        url = NULL;
    if (!st->region || !url) {
        free(url);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    const char *host;
    if (strncasecmp(url, "https://", 8) == 0) {
        st->https = true;
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
    st->host = strndup(host, hlen);
    free(url);
    if (!st->host)
        return sky_fail(e, ENOMEM, "out of memory");
    st->path_style = sky_cloud_bool(cfg, "path_style", ep && *ep);
    if (bucket) {
        if (strlen(bucket) > 63)
            return cfg_fail(cfg, "bucket", EINVAL,
                            "must be a bucket name (put the rest of the path in `prefix`)", e);
        /* dotted names do not match the wildcard certificate */
        if (strchr(bucket, '.') && st->https)
            st->path_style = true;
    }
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
static void creds_from_file(struct s3_setup *st, const char *profile)
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
                        : strcasecmp(k, "aws_access_key_id") == 0 ? &st->access_key
                        : strcasecmp(k, "aws_secret_access_key") == 0 ? &st->secret_key
                        : strcasecmp(k, "aws_session_token") == 0 ? &st->session_token : NULL;
            if (slot && v && !*slot) {
                *slot = v;
                v = NULL;
            }
            free(k);
            wipe(v);
        }
        wipe(t);
    }
    fclose(f);
}

static int dup_opt(char **dst, const char *src)
{
    if (!src || !*src)
        return 0;
    return (*dst = strdup(src)) ? 0 : -ENOMEM;
}

static int setup_creds(struct s3_setup *st, const struct sky_cloud_config *cfg,
                       struct sky_err *e)
{
    const char *id = sky_cloud_get(cfg, "access_key_id");
    const char *secret = sky_cloud_get(cfg, "secret_access_key");
    int rc = 0;
    if (id && *id) {
        if (!secret || !*secret)
            return cfg_fail(cfg, "secret_access_key", EINVAL,
                            "missing; access_key_id needs its secret", e);
        rc |= dup_opt(&st->access_key, id);
        rc |= dup_opt(&st->secret_key, secret);
        rc |= dup_opt(&st->session_token, sky_cloud_get(cfg, "session_token"));
    } else if (getenv("AWS_ACCESS_KEY_ID") && getenv("AWS_SECRET_ACCESS_KEY")) {
        rc |= dup_opt(&st->access_key, getenv("AWS_ACCESS_KEY_ID"));
        rc |= dup_opt(&st->secret_key, getenv("AWS_SECRET_ACCESS_KEY"));
        rc |= dup_opt(&st->session_token, getenv("AWS_SESSION_TOKEN"));
    } else {
        const char *profile = sky_cloud_get(cfg, "profile");
        if (!profile || !*profile)
            profile = getenv("AWS_PROFILE");
        creds_from_file(st, profile && *profile ? profile : "default");
    }
    if (rc)
        return sky_fail(e, ENOMEM, "out of memory");
    if (!st->access_key || !st->secret_key)
        return cfg_fail(cfg, NULL, EACCES,
                        "no S3 credentials: set access_key_id and secret_access_key, or "
                        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a [profile] in "
                        "~/.aws/credentials", e);
    return 0;
}

static int s3_proto_open(const struct sky_cloud_config *cfg, const char *name,
                         const struct objstore_where *where, void **p, struct sky_err *e)
{
    struct s3_setup st = {0};
    int rc = setup_endpoint(&st, cfg, where->container, e);
    if (rc == 0)
        rc = setup_creds(&st, cfg, e);
    struct http_options opt;
    bool http_setup = false;
    if (rc == 0) {
        http_setup = true;
        rc = http_options_from_cloud(cfg, &opt, e);
    }
    if (rc == 0) {
        struct sigv4_creds creds = { st.access_key, st.secret_key, st.session_token };
        struct s3proto_conf conf = {
            .type = "s3", .name = name, .https = st.https, .host = st.host,
            .path_style = st.path_style, .region = st.region,
            .meta_prefix = "x-amz-meta-", .storage_class_header = "x-amz-storage-class",
            .default_storage_class = "STANDARD", .creds = &creds, .service = "s3",
            .http = &opt,
        };
        struct s3proto *s;
        rc = s3proto_new(&conf, &s, e);
        if (rc == 0)
            *p = s;
    }
    if (rc < 0 && http_setup && e && e->code != EINVAL)
        sky_err_prefix(e, "%s:%d: [%s] ca_file", cfg->file ? cfg->file : "config",
                       sky_cloud_line(cfg, "ca_file"), cfg->name);
    setup_free(&st);
    return rc;
}

static const char *const s3_dir_types[] = { "application/x-directory", NULL };

/* Not static: tests/unit/test_s3_xml.c reads heads with it. */
extern const struct objstore_codec sky_s3_codec;
const struct objstore_codec sky_s3_codec = {
    .flags = OBJSTORE_CODEC_S3FS_XATTR,
    .format_time = objstore_time_decimal,
    .marker_type = "application/x-directory",
    .dir_types = s3_dir_types,
    .meta_max = 2048,           /* bytes of x-amz-meta-* names and values S3 takes */
    .user_name_ok = NULL,       /* objstore_name_token */
};

static const struct objstore_proto s3_proto = {
    .type = "s3",
    .container_key = "bucket",
    .flags = OBJSTORE_ACCOUNT,
    .codec = &sky_s3_codec,
    .put_max = S3PROTO_PUT_MAX,
    .part_size = S3PROTO_PART_SIZE,
    .max_parts = S3PROTO_MAX_PARTS,
    .batch_max = S3PROTO_BATCH_MAX,
    .open = s3_proto_open,
    .close = s3proto_close,
    .list_page = s3proto_list_page,
    .list_containers = s3proto_list_containers,
    .head = s3proto_head,
    .get = s3proto_get,
    .put = s3proto_put,
    .mpu_begin = s3proto_mpu_begin,
    .mpu_part = s3proto_mpu_part,
    .mpu_complete = s3proto_mpu_complete,
    .mpu_end = s3proto_mpu_end,
    .copy = s3proto_copy,
    .compose = s3proto_compose,
    .set_meta = NULL,           /* a metadata-replacing self-copy */
    .remove = s3proto_remove,
    .remove_batch = s3proto_remove_batch,
    .container_head = s3proto_container_head,
    .container_create = s3proto_container_create,
    .container_remove = s3proto_container_remove,
};

static int s3_open(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e)
{
    return objstore_open(&s3_proto, cfg, ctx, e);
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
    OBJSTORE_CORE_KEYS("bucket"),
    { NULL, 0, NULL },
};

const struct sky_driver sky_driver_s3 =
    OBJSTORE_DRIVER("s3", "Amazon S3 and compatible object stores (one bucket, or all of an "
                    "account's)", s3_keys, s3_open, S3PROTO_PART_SIZE);
