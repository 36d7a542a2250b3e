/*
 * s3proto_int.h - what the two halves of the S3 protocol module share
 * (private to s3proto.c and s3proto_upload.c; everyone else uses
 * s3proto.h): the connection's state, one request, and the helpers that
 * send requests and read their answers (s3proto.c).
 */
#ifndef SKY_S3PROTO_INT_H
#define SKY_S3PROTO_INT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "bodysum.h"
#include "s3proto.h"
#include "xml.h"

#define S3_COPY_MAX  (5ull << 30)
#define S3_COPY_PART (512ull << 20)

struct s3proto {
    char *type, *name, *host, *region, *meta_prefix, *meta_prefix_alt;
    char *sc_header, *sc_default, *service;
    bool https, path_style;
    char *access_key, *secret_key, *session_token;
    struct sigv4_creds creds;
    bool sigv4;
    http_sign_fn sign;
    void *sign_arg;
    void (*sign_arg_free)(void *);
    struct http_client *http;
    /* The server answered an UploadPartCopy with NotImplemented (s3rver):
     * compose refuses from then on without asking again. */
    atomic_bool no_part_copy;
    /* The server compares If-Match on PUT with its ETags without their
     * quotes (Ceph's RGW 16: a quoted If-Match, as S3 documents it, never
     * matches): learned at the first PUT refused quoted and taken bare. */
    atomic_bool bare_if_match;
    /* What the server's ETags have shown themselves to be: MD5s of the
     * bytes (an upload's or a whole download's ETag matched), or not
     * (three uploads in a row, or two equal downloads, differed: an
     * encryption the answers did not name); see bodysum.h. */
    struct bodysum_trust etags;
};

/* One request to send. */
struct s3_req {
    const char *method;
    const char *bucket;             /* NULL/"": service level */
    const char *key;                /* NULL/"": bucket level */
    const char *query;              /* encoded, without '?' */
    struct http_headers headers;    /* freed by s3p_send */
    const void *body;
    uint64_t body_len;
    int fd;                         /* -1 unless the body comes from a file */
    uint64_t off;
    http_sink_fn sink;              /* a 2xx body goes here, at most out_cap bytes */
    void *sink_arg;
    size_t out_cap;
    uint64_t range_off, range_len;  /* range_len > 0: a ranged GET (http.h) */
};

#define S3_REQ(m) { .method = (m), .fd = -1 }

int s3p_oom(struct sky_err *e);
/* Send r (its headers are freed); the answer, of any status, in *resp. */
int s3p_send(struct s3proto *s, struct s3_req *r, struct http_response *resp,
             const char *show, struct sky_err *e);
/* s3p_send, with any non-2xx status an error (resp then freed). */
int s3p_call(struct s3proto *s, struct s3_req *r, struct http_response *resp,
             const char *show, struct sky_err *e);
/* The error for a non-2xx answer (or a 200 carrying an <Error>). */
int s3p_fail_answer(struct s3proto *s, const char *op, const char *show,
                    const struct http_response *resp, struct sky_err *e);
bool s3p_ok_status(long st);
/* May the ETag in an answer's headers be the MD5 of the object's bytes?
 * Not for an encrypted object (SSE-KMS, SSE-C, MinIO's SSE-S3, a
 * customer's key on GCS: their ETags need not be MD5s), nor for one GCS
 * stores gzip-encoded (it may serve it decompressed), nor once the
 * server's ETags proved to be none (s->etags.opaque). */
bool s3p_etag_may_be_md5(const struct s3proto *s, const struct http_headers *h);
/* Parse a 2xx XML body whose root must be `root_name`; an <Error> root (S3
 * sends those with status 200 for copies and completions) fails. */
int s3p_xml_answer(struct s3proto *s, const char *op, const char *show,
                   const struct http_response *resp, const char *root_name,
                   struct xml_node **root, struct sky_err *e);
/* Headers for new metadata (see s3proto.c). */
int s3p_new_headers(const struct s3proto *s, struct http_headers *h,
                    const struct objstore_new *nw);
/* HEAD of bucket/key, the answer whatever its status. */
int s3p_raw_head(struct s3proto *s, const char *bucket, const char *key,
                 struct http_response *resp, const char *show, struct sky_err *e);

#endif
