/*
 * gcs.c - Google Cloud Storage clouds (type = gcs): a protocol module on
 * the object-store core (objstore.h) that speaks GCS's XML API, which is
 * S3-compatible, through the S3 protocol pieces (s3proto.h).
 *
 * What is GCS's own here:
 *   - Where: endpoint https://storage.googleapis.com unless `endpoint`
 *     says otherwise, bucket in the URL path, `bucket` required.
 *   - Authentication (gcs_auth.h): HMAC keys sign with AWS SigV4; a
 *     service-account key or gcloud's authorized_user credentials give a
 *     Bearer token; or anonymous.
 *   - Headers: under an AWS signature GCS reads the x-amz-* headers that
 *     have an x-goog-* equivalent (GCS's "simple migration"), so HMAC
 *     clouds write user metadata as x-amz-meta-* (which s3rver, the test
 *     server, keeps too).  Without an AWS signature GCS only knows
 *     x-goog-*: Bearer and anonymous clouds write x-goog-meta-*, and their
 *     sign hook renames every other x-amz-* request header the S3 pieces
 *     send (x-amz-copy-source, x-amz-metadata-directive...) to its
 *     x-goog-* name.  Both prefixes are read, whatever the auth.
 *   - Conventions: mtime written as rclone writes it on GCS (`mtime`, RFC
 *     3339) and as gcsfuse writes it (`gcsfuse_mtime`, RFC 3339), read
 *     from either (and from gsutil's goog-reserved-file-mtime, seconds);
 *     directories are "dir/" placeholder objects as gcsfuse makes them,
 *     and prefixes without one are shown as directories (gcsfuse's
 *     implicit directories), both done by the core.
 *   - No batch delete: GCS's XML API has no multi-object delete, so the
 *     core deletes key by key.
 *
 * Registered in backends/registry.c as sky_driver_gcs; nothing else calls
 * it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/config.h"
#include "gcs_auth.h"
#include "objstore.h"
#include "s3proto.h"

#define GCS_DEFAULT_ENDPOINT "https://storage.googleapis.com"
/* GCS: custom metadata of an object at most 8 KiB (names and values). */
#define GCS_META_MAX 8192

/* ---- the metadata codec ------------------------------------------------ */

static const char *const gcs_dir_types[] = { "application/x-directory", NULL };
static const char *const gcs_reserved[] = { "gcsfuse_mtime", "goog-reserved-file-mtime",
                                            NULL };

/* gcsfuse's gcsfuse_mtime, then gsutil's goog-reserved-file-mtime, when
 * the object has no `mtime` (s3fs/rclone) of its own. */
static void gcs_attr_read(const struct objstore_head *h, struct sky_attr *a)
{
    int64_t ns;
    /* the core already took `mtime` (or else Last-Modified) */
    if (objstore_parse_time(http_headers_get(&h->meta, "mtime"), &ns) == 0)
        return;
    static const char *const names[] = { "gcsfuse_mtime", "goog-reserved-file-mtime" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = http_headers_get(&h->meta, names[i]);
        if (v && objstore_parse_time(v, &ns) == 0) {
            a->mtime_ns = ns;
            a->has |= SKY_HAS_MTIME;
            return;
        }
    }
}

/* gcsfuse_mtime beside mtime, so gcsfuse shows the same time. */
static int gcs_attr_write(struct http_headers *meta, const struct sky_attr *a, unsigned which)
{
    if (!(which & SKY_HAS_MTIME))
        return 0;
    char buf[64];
    objstore_time_rfc3339(a->mtime_ns, buf, sizeof buf);
    return http_headers_set(meta, "gcsfuse_mtime", buf);
}

static const struct objstore_codec gcs_codec = {
    .flags = 0,
    .format_time = objstore_time_rfc3339,
    .marker_type = "application/x-directory",
    .dir_types = gcs_dir_types,
    .folder_flag = NULL,
    .meta_max = GCS_META_MAX,
    .user_name_ok = NULL,
    .reserved = gcs_reserved,
    .attr_read = gcs_attr_read,
    .attr_write = gcs_attr_write,
};

/* ---- the sign hook ----------------------------------------------------- */

struct gcs_signer {
    struct gcs_auth *auth;
    bool goog_headers;      /* rename x-amz-* request headers to x-goog-* */
};

static void gcs_signer_free(void *arg)
{
    struct gcs_signer *s = arg;
    if (s) {
        gcs_auth_free(s->auth);
        free(s);
    }
}

/* "x-amz-copy-source" -> "x-goog-copy-source" for requests GCS reads
 * without an AWS signature; then the credentials' own signing. */
static int gcs_sign(void *arg, struct http_request *req, struct sky_err *e)
{
    struct gcs_signer *s = arg;
    if (s->goog_headers) {
        for (size_t i = 0; i < req->headers.n; i++) {
            char *name = req->headers.h[i].name;
            if (strncasecmp(name, "x-amz-", 6) != 0)
                continue;
            char *renamed = malloc(strlen(name) + 2);
            if (!renamed)
                return sky_fail(e, ENOMEM, "gcs: out of memory");
            memcpy(renamed, "x-goog-", 7);
            strcpy(renamed + 7, name + 6);
            free(name);
            req->headers.h[i].name = renamed;
        }
    }
    return gcs_auth_sign(s->auth, req, e);
}

/* ---- open ---------------------------------------------------------------- */

static int cfg_fail(const struct sky_cloud_config *cfg, const char *key, int code,
                    const char *what, struct sky_err *e)
{
    return sky_fail(e, code, "%s:%d: [%s] %s%s%s", cfg->file ? cfg->file : "config",
                    key ? sky_cloud_line(cfg, key) : cfg->line, cfg->name, key ? key : "",
                    key ? ": " : "", what);
}

/* endpoint "scheme://host[:port]" into https and a malloc'd host. */
static int parse_endpoint(const struct sky_cloud_config *cfg, bool *https, char **host,
                          struct sky_err *e)
{
    const char *ep = sky_cloud_get(cfg, "endpoint");
    if (!ep || !*ep)
        ep = GCS_DEFAULT_ENDPOINT;
    const char *h;
    if (strncasecmp(ep, "https://", 8) == 0) {
        *https = true;
        h = ep + 8;
    } else if (strncasecmp(ep, "http://", 7) == 0) {
        *https = false;
        h = ep + 7;
    } else {
        return cfg_fail(cfg, "endpoint", EINVAL, "must start with https:// or http:// "
                        "(default " GCS_DEFAULT_ENDPOINT ")", e);
    }
    size_t n = strcspn(h, "/?#");
    if (n == 0 || (h[n] && strcmp(h + n, "/") != 0))
        return cfg_fail(cfg, "endpoint", EINVAL, "must be scheme://host[:port] with no path; "
                        "put the bucket in `bucket`", e);
    *host = strndup(h, n);
    return *host ? 0 : sky_fail(e, ENOMEM, "out of memory");
}

static int gcs_proto_open(const struct sky_cloud_config *cfg, const char *name,
                          const struct objstore_where *where, void **p, struct sky_err *e)
{
    (void)where;
    *p = NULL;
    struct http_options opt;
    int rc = http_options_from_cloud(cfg, &opt, e);
    if (rc < 0)
        return rc;
    struct gcs_auth_config ac = {
        .cloud = name,
        .access_key_id = sky_cloud_get(cfg, "access_key_id"),
        .secret_access_key = sky_cloud_get(cfg, "secret_access_key"),
        .region = sky_cloud_get(cfg, "region"),
        .credentials_file = sky_cloud_get(cfg, "credentials_file"),
        .token_uri = sky_cloud_get(cfg, "token_uri"),
        .anonymous = sky_cloud_bool(cfg, "anonymous", false),
        .read_only = cfg->read_only,
    };
    struct gcs_signer *signer = calloc(1, sizeof *signer);
    if (!signer)
        return sky_fail(e, ENOMEM, "out of memory");
    rc = gcs_auth_new(&ac, &opt, &signer->auth, e);
    if (rc < 0) {
        free(signer);
        return sky_err_prefix(e, "%s:%d", cfg->file ? cfg->file : "config", cfg->line);
    }
    bool hmac = gcs_auth_is_hmac(signer->auth);
    signer->goog_headers = !hmac;
    bool https = true;
    char *host = NULL;
    rc = parse_endpoint(cfg, &https, &host, e);
    if (rc < 0) {
        gcs_signer_free(signer);
        return rc;
    }
    struct s3proto_conf conf = {
        .type = "gcs",
        .name = name,
        .https = https,
        .host = host,
        .path_style = true,
        .region = ac.region && *ac.region ? ac.region : "auto",
        .meta_prefix = hmac ? "x-amz-meta-" : "x-goog-meta-",
        .meta_prefix_alt = hmac ? "x-goog-meta-" : "x-amz-meta-",
        .storage_class_header = hmac ? "x-amz-storage-class" : "x-goog-storage-class",
        .default_storage_class = "STANDARD",
        .creds = NULL,
        .service = "s3",
        .sign = gcs_sign,
        .sign_arg = signer,
        .sign_arg_free = gcs_signer_free,
        .http = &opt,
    };
    struct s3proto *s = NULL;
    rc = s3proto_new(&conf, &s, e);
    free(host);
    if (rc < 0) {
        gcs_signer_free(signer);
        return rc;
    }
    *p = s;
    return 0;
}

static const struct objstore_proto gcs_proto = {
    .type = "gcs",
    .container_key = "bucket",
    .flags = OBJSTORE_COND_NEW,
    .cond_new_name = "x-goog-if-generation-match: 0",
    .codec = &gcs_codec,
    .put_max = S3PROTO_PUT_MAX,
    .part_size = S3PROTO_PART_SIZE,
    .max_parts = S3PROTO_MAX_PARTS,
    .batch_max = 0,
    .open = gcs_proto_open,
    .close = s3proto_close,
    .list_page = s3proto_list_page,
    .list_containers = NULL,
    .head = s3proto_head,
    .get = s3proto_get,
    .put = s3proto_put,
    .mpu_begin = s3proto_mpu_begin,
    .mpu_part = s3proto_mpu_part,
    .mpu_complete = s3proto_mpu_complete,
    .mpu_end = s3proto_mpu_end,
    .copy = s3proto_copy,
    .set_meta = NULL,
    .remove = s3proto_remove,
    .remove_batch = NULL,       /* the XML API has no multi-object delete */
    .container_head = NULL,
    .container_create = NULL,
    .container_remove = NULL,
};

static int gcs_open(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e)
{
    return objstore_open(&gcs_proto, cfg, ctx, e);
}

static const struct sky_key gcs_keys[] = {
    { "bucket", SKY_KEY_REQUIRED, "the bucket to show" },
    { "prefix", 0, "object name prefix inside the bucket used as the cloud's root" },
    { "endpoint", 0, "XML API URL, scheme://host[:port] (default " GCS_DEFAULT_ENDPOINT ")" },
    { "access_key_id", 0, "HMAC key's access ID (signs requests with AWS SigV4)" },
    { "secret_access_key", SKY_KEY_SECRET, "HMAC key's secret" },
    { "region", 0, "SigV4 region for HMAC keys (default auto)" },
    { "credentials_file", 0,
      "service-account JSON key or gcloud's application_default_credentials.json, mode 0600 "
      "(default: $GOOGLE_APPLICATION_CREDENTIALS, then gcloud's file)" },
    { "token_uri", 0, "OAuth2 token endpoint overriding the key file's (https://)" },
    { "anonymous", SKY_KEY_BOOL, "yes: send no credentials (a public bucket)" },
    HTTP_CLOUD_KEYS,
    { "ca_file", 0, "extra CA certificates (PEM) trusted for https" },
    OBJSTORE_CORE_KEYS("bucket"),
    { NULL, 0, NULL },
};

const struct sky_driver sky_driver_gcs =
    OBJSTORE_DRIVER("gcs", "Google Cloud Storage buckets (XML API; HMAC, OAuth2 or anonymous)",
                    gcs_keys, gcs_open, S3PROTO_PART_SIZE);
