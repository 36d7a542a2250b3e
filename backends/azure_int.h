/*
 * azure_int.h - what the Azure protocol module's own files share.
 *
 * The `azure` cloud kind (backends/azure.c) is split along its seams:
 * azure.c (requests, listings, head and get, the ETag aliases of
 * metadata-only changes, copy, set metadata, delete, containers, open and
 * the protocol table) and azure_blocks.c (Put Blob, block uploads with
 * Put Block + Put Block List, and incremental uploads that keep a blob's
 * unchanged committed blocks).  Only those two files include this header;
 * everything else sees the driver `sky_driver_azure` (backends/registry.c).
 */
#ifndef SKY_AZURE_INT_H
#define SKY_AZURE_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "azure_auth.h"
#include "http.h"
#include "objstore.h"

#define AZ_PUT_BLOB_MAX   (8ull << 20)   /* larger files go up in blocks */
#define AZ_BLOCK_SIZE     (8ull << 20)
#define AZ_MAX_BLOCKS     50000u
#define AZ_TAG_LEN        10      /* block id = tag + 5 digits */
#define AZ_ALIASES        64      /* remembered metadata-only ETag changes */
#define AZ_META_MAX       8192    /* bytes of metadata names and values a blob takes */
#define AZ_COPY_WAIT_S    3600

struct az {
    char *name;             /* cloud name, for messages */
    char *endpoint;         /* scheme://host[:port][/account], no trailing '/' */
    char *sas;              /* SAS query string (no '?'), or NULL */
    struct azure_auth auth;
    struct http_client *http;
    /* Metadata updates change a blob's ETag but not its bytes; reads that
     * still carry the old ETag are sent with the new one.  A small ring. */
    pthread_mutex_t alias_lock;
    struct etag_alias {
        char *blob;                 /* container/blob, malloc'd */
        char old_etag[SKY_ETAG_MAX], new_etag[SKY_ETAG_MAX];
    } aliases[AZ_ALIASES];
    unsigned alias_next;
};

static inline int oom(struct sky_err *e)
{
    return sky_fail(e, ENOMEM, "out of memory");
}

/* An ETag without its quotes, into out[SKY_ETAG_MAX] ("" for NULL). */
static inline void etag_bare(char *out, const char *etag)
{
    out[0] = '\0';
    if (!etag)
        return;
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        etag++;
        n -= 2;
    }
    if (n >= SKY_ETAG_MAX)
        n = SKY_ETAG_MAX - 1;
    memcpy(out, etag, n);
    out[n] = '\0';
}

/* ---- requests ---------------------------------------------------------- */

/* One REST call.  `blob` NULL or "" addresses the container (or, with
 * container NULL or "", the account); `query` has no '?'. */
struct az_req {
    const char *method;
    const char *container;
    const char *blob;
    const char *query;
    struct http_headers headers;
    const void *body;
    int body_fd;
    uint64_t body_off, body_len;
    http_sink_fn sink;              /* a 2xx body goes here, at most out_cap bytes */
    void *sink_arg;
    size_t out_cap;
    uint64_t range_off, range_len;  /* range_len > 0: a ranged GET (http.h) */
};

static inline void req_init(struct az_req *r, const char *method, const char *container,
                     const char *blob, const char *query)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->container = container;
    r->blob = blob;
    r->query = query;
    r->body_fd = -1;
}

static inline bool status_ok(long status)
{
    return status >= 200 && status < 300;
}

static inline int add_if_match(struct http_headers *hs, const char *name, const char *etag)
{
    char q[SKY_ETAG_MAX + 3];
    snprintf(q, sizeof q, "\"%s\"", etag);
    return http_headers_set(hs, name, q);
}

/* ---- azure.c: requests, metadata headers, preconditions ----------------- */

/* Send r; 0 when any response came back (check resp->status). */
int az_do(struct az *a, struct az_req *r, struct http_response *resp, struct sky_err *e);

/* Fill e for a failed response: "azure 'c': GET dir/a.txt: 404 BlobNotFound". */
int az_fail_resp(struct az *a, const char *op, const char *show,
                 const struct http_response *resp, struct sky_err *e);

/* Transport failure (no response): prefix http.c's message. */
int az_fail_transport(struct az *a, const char *op, const char *show, int rc,
                      struct sky_err *e);

/* az_do + status check; on success the caller frees resp. */
int az_call(struct az *a, struct az_req *r, const char *op, const char *show,
            struct http_response *resp, struct sky_err *e);

/* az_call for a request with a body (r->body, or r->body_len bytes of
 * r->body_fd from r->body_off), sent with its Content-MD5 (bodysum.h):
 * Azure verifies it before it stores anything, and a body damaged on the
 * way (400 Md5Mismatch) is sent again, up to three times. */
int az_call_body(struct az *a, struct az_req *r, const char *op, const char *show,
                 struct http_response *resp, struct sky_err *e);

/* Same, for calls whose response is not needed. */
int az_call0(struct az *a, struct az_req *r, const char *op, const char *show,
             struct sky_err *e);

/* x-ms-meta-* headers for metadata items. */
int az_meta_to_headers(const struct http_headers *meta, struct http_headers *hs);

/* Preconditions for a write of container/blob: If-Match the version
 * named (an alias of this process's own metadata edits resolved to the
 * blob's current ETag), If-None-Match: *.  0 or -ENOMEM. */
int az_cond_headers(struct az *a, const char *container, const char *blob,
                    const char *if_match, bool if_none_match, struct http_headers *hs);

/* ---- azure_blocks.c: the objstore.h upload calls ------------------------- */

int az_put(void *p, const char *container, const char *key, const void *mem, int fd,
           uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
           const char *show, struct sky_err *e);
int az_mpu_begin(void *p, const char *container, const char *key,
                 const struct objstore_new *nw, void **up, const char *show,
                 struct sky_err *e);
int az_mpu_part(void *up, uint64_t index, int fd, uint64_t off, uint64_t len,
                struct sky_err *e);
int az_mpu_complete(void *up, uint64_t nparts, int fd, uint64_t size,
                    char etag_out[SKY_ETAG_MAX], struct sky_err *e);
void az_mpu_end(void *up, bool discard);
int az_compose(void *p, const char *container, const char *key, const char *if_match,
               uint64_t base_size, const struct sky_range *dirty, size_t ndirty, int fd,
               uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
               uint64_t *sent, const char *show, struct sky_err *e);

#endif
