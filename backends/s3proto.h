/*
 * s3proto.h - the S3 protocol pieces (ListObjectsV2, HEAD, ranged GET,
 * PUT, multipart uploads, CopyObject/UploadPartCopy, DeleteObjects,
 * buckets), as `struct objstore_proto` callbacks, for every protocol that
 * speaks S3's XML API: type = s3 (backends/s3.c) and GCS's XML API
 * (backends/gcs.c).
 *
 * A protocol module makes one `struct s3proto` per cloud with s3proto_new
 * (in its objstore_proto open) and puts the s3proto_* functions below in
 * its table; their `void *p` is that struct s3proto.  The variation points
 * are in `struct s3proto_conf`: the user metadata header prefix
 * (x-amz-meta- or x-goog-meta-, and one more prefix read), the storage
 * class header, and the authentication: AWS SigV4 (creds + scope), a sign
 * hook of the module's own (a Bearer token), or none (anonymous).
 *
 * Threads: an s3proto is read-only after s3proto_new; every call may run
 * on many threads at once (the http client pools connections).  The
 * parsing helpers (s3proto_parse_*) are pure and exported for the unit
 * tests (tests/unit/test_s3_xml.c).
 */
#ifndef SKY_S3PROTO_H
#define SKY_S3PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "objstore.h"
#include "sigv4.h"

struct s3proto_conf {
    const char *type;               /* "s3", "gcs": first word of messages */
    const char *name;               /* the cloud's name, for messages */
    bool https;
    const char *host;               /* endpoint host[:port] */
    bool path_style;                /* bucket in the path, not the host name */
    const char *region;             /* for SigV4 and CreateBucket ("us-east-1") */
    const char *meta_prefix;        /* written and read: "x-amz-meta-" */
    const char *meta_prefix_alt;    /* also read (NULL: none): "x-amz-meta-" for gcs */
    const char *storage_class_header;   /* "x-amz-storage-class" */
    const char *default_storage_class;  /* when the HEAD does not say: "STANDARD" */
    /* Authentication, one of: SigV4 with creds (s3proto_new copies the
     * strings; the secret is wiped when freed) and `service` ("s3");
     * else sign/sign_arg, an http_sign_fn (http.h) run on every request
     * from any thread (it may add an Authorization header); else nothing
     * (anonymous).  The s3proto owns sign_arg once s3proto_new succeeded
     * (sign_arg_free is then called by s3proto_free); on failure the
     * caller still owns it. */
    const struct sigv4_creds *creds;
    const char *service;
    http_sign_fn sign;
    void *sign_arg;
    /* Called by s3proto_free with sign_arg (may be NULL). */
    void (*sign_arg_free)(void *sign_arg);
    const struct http_options *http;    /* http_options_from_cloud(cfg) */
};

struct s3proto;

/* 0 with *out, or a negative errno with e filled (the http options were
 * wrong: ca_file...).  Copies every string of conf. */
int s3proto_new(const struct s3proto_conf *conf, struct s3proto **out, struct sky_err *e);
void s3proto_free(struct s3proto *s);

/* Limits of the S3 API, for the protocol table. */
#define S3PROTO_PUT_MAX     (8ull << 20)    /* larger objects go up in parts */
#define S3PROTO_PART_SIZE   (8ull << 20)
#define S3PROTO_MAX_PARTS   10000ull
#define S3PROTO_BATCH_MAX   1000

/* objstore_proto callbacks (see objstore.h for each contract); p is a
 * struct s3proto.  s3proto_close is s3proto_free. */
void s3proto_close(void *p);
int s3proto_list_page(void *p, const char *container, const char *prefix, bool delimited,
                      int max_keys, const char *token, objstore_item_fn fn, void *arg,
                      char **next, const char *show, struct sky_err *e);
int s3proto_list_containers(void *p, sky_list_cb cb, void *arg, struct sky_err *e);
int s3proto_head(void *p, const char *container, const char *key, struct objstore_head *out,
                 const char *show, struct sky_err *e);
int s3proto_get(void *p, const char *container, const char *key, const char *if_match,
                uint64_t off, uint64_t len, sky_sink_fn sink, void *sink_arg,
                char etag_out[SKY_ETAG_MAX], const char *show, struct sky_err *e);
int s3proto_put(void *p, const char *container, const char *key, const void *mem, int fd,
                uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
                const char *show, struct sky_err *e);
int s3proto_mpu_begin(void *p, const char *container, const char *key,
                      const struct objstore_new *nw, void **up, const char *show,
                      struct sky_err *e);
int s3proto_mpu_part(void *up, uint64_t index, int fd, uint64_t off, uint64_t len,
                     struct sky_err *e);
int s3proto_mpu_complete(void *up, uint64_t nparts, int fd, uint64_t size,
                         char etag_out[SKY_ETAG_MAX], struct sky_err *e);
void s3proto_mpu_end(void *up, bool discard);
int s3proto_copy(void *p, const char *scontainer, const char *skey, const char *dcontainer,
                 const char *dkey, uint64_t size, const char *if_match,
                 const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX], const char *show,
                 struct sky_err *e);
int s3proto_remove(void *p, const char *container, const char *key, const char *show,
                   struct sky_err *e);
/* objstore.h compose: a multipart upload of UploadPartCopy parts (with
 * x-amz-copy-source-if-match) for unchanged ranges of 5 MiB or more and
 * UploadPart for the rest (objstore_plan_parts).  GCS's XML API has no
 * part copy: only s3.c uses it. */
int s3proto_compose(void *p, const char *container, const char *key, const char *if_match,
                    uint64_t base_size, const struct sky_range *dirty, size_t ndirty, int fd,
                    uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
                    uint64_t *sent, const char *show, struct sky_err *e);
int s3proto_remove_batch(void *p, const char *container, char *const *keys, size_t n,
                         const char *show, struct sky_err *e);
int s3proto_container_head(void *p, const char *container, struct sky_err *e);
int s3proto_container_create(void *p, const char *container, struct sky_err *e);
int s3proto_container_remove(void *p, const char *container, struct sky_err *e);

/* Pure parsers (no server), exported for the unit tests. */
/* Error document: its <Code> into code (""), 1 when the body is one. */
int s3proto_parse_error(const char *body, size_t len, char *code, size_t cap);
/* The errno of an S3 answer's status and error code. */
int s3proto_error_errno(long status, const char *code);
/* One ListObjectsV2 page: items to fn (item.meta NULL), *next_token the
 * continuation token (malloc'd) or NULL; -EBADMSG for what is not one. */
int s3proto_parse_list(const char *body, size_t len, objstore_item_fn fn, void *arg,
                       char **next_token, struct sky_err *e);

/* A HEAD answer's headers (names lowercased, as http.c gives them) as the
 * core sees them, by conf's meta_prefix, meta_prefix_alt,
 * storage_class_header and default_storage_class (the other fields are
 * not read): 0 or -ENOMEM (then *out holds nothing). */
int s3proto_parse_head(const struct s3proto_conf *conf, const struct http_headers *h,
                       struct objstore_head *out);

#endif
