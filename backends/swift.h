/*
 * swift.h - OpenStack Swift clouds (type = swift): the protocol module on
 * the object-store core (backends/objstore.h).
 *
 * swift.c speaks Swift's object API for the core: JSON listings (prefix,
 * delimiter, marker), HEAD, ranged GET, PUT, server-side copy (PUT with
 * X-Copy-From; an SLO's manifest, not its data), POST for metadata,
 * DELETE (an SLO's segments with it) and bulk delete, containers.
 * swift_slo.c makes large objects: Static Large Objects whose segments go,
 * in parallel, into "<container>_segments" (the container rclone and
 * python-swiftclient use), the manifest last; and finds and deletes the
 * segments of an SLO that is removed or replaced.  swift_auth.h gets the
 * tokens, swift_list.h reads listing pages.
 *
 * This header is shared by swift.c and swift_slo.c only; everything else
 * sees the driver `sky_driver_swift` (backends/registry.c).
 */
#ifndef SKY_SWIFT_H
#define SKY_SWIFT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bodysum.h"
#include "http.h"
#include "objstore.h"
#include "swift_auth.h"

/* Sizes: objects up to SWIFT_PUT_MAX go up in one PUT; larger ones (and
 * streamed uploads) as SLO segments of SWIFT_SEGMENT_SIZE; Swift's
 * default max_manifest_segments is 1000. */
#define SWIFT_PUT_MAX       (32ull << 20)
#define SWIFT_SEGMENT_SIZE  (16ull << 20)
#define SWIFT_MAX_SEGMENTS  1000
/* Swift's default constraints on metadata: a name, a value, the whole. */
#define SWIFT_META_NAME_MAX  128
#define SWIFT_META_VALUE_MAX 256
#define SWIFT_META_OVERALL   4096

/* A manifest copied away by a rename (copy, then remove of the source):
 * removing the source must leave the segments to the copy. */
struct swift_moved {
    char *container, *key;
    char etag[SKY_ETAG_MAX];
    int64_t when;                   /* CLOCK_MONOTONIC seconds */
};
#define SWIFT_MOVED_MAX 256

struct swift {
    char *name;                     /* the cloud's name, for messages */
    struct http_client *http;
    struct swift_auth *auth;
    pthread_mutex_t lock;           /* moved[] and the bulk fields */
    struct swift_moved moved[SWIFT_MOVED_MAX];
    size_t nmoved;
    int bulk;                       /* bulk delete: 0 not asked yet, 1 yes, -1 no */
    size_t bulk_max;
    struct bodysum_trust etags;     /* what its ETags showed themselves to be (bodysum.h) */
};

/* One request to Swift.  `query` is already encoded (NULL: none).  The
 * caller sets req->method, headers, body and sink; swift_send builds the
 * URL (storage URL + container + key), signs it with the token, renews a
 * token refused with 401 once, and retries 498 (rate limited) with
 * backoff, as http.c does 429 and 5xx.  0 with *resp (any status; the
 * caller frees it) or a negative errno naming op and show. */
int swift_send(struct swift *s, struct http_request *req, const char *container,
               const char *key, const char *query, struct http_response *resp, const char *op,
               const char *show, struct sky_err *e);

/* swift_send of an upload (req's body: body, or body_len bytes of body_fd
 * from body_off) with its MD5 as the ETag header, which Swift checks
 * before it stores anything: a body damaged on the way (422) is sent
 * again, up to three times, then -EIO. */
int swift_send_body(struct swift *s, struct http_request *req, const char *container,
                    const char *key, struct http_response *resp, const char *op,
                    const char *show, struct sky_err *e);

/* The error for an answer's status: 401/403 EACCES, 404 ENOENT, 412
 * ESTALE, 413 EFBIG, 507 ENOSPC, else EIO; the message names the cloud,
 * op, show and status. */
int swift_status_error(struct swift *s, const struct http_response *resp, const char *op,
                       const char *show, struct sky_err *e);

/* Add the object headers of nw to hs: Content-Type, X-Object-Meta-* for
 * each user item Swift can take (others skipped with a warning naming
 * show), and the kept headers.  0 or -ENOMEM. */
int swift_new_headers(struct swift *s, struct http_headers *hs, const struct objstore_new *nw,
                      const char *show);

/* What a HEAD says beyond objstore_head: whether it is an SLO manifest. */
struct swift_obj {
    bool exists;
    bool slo;
    char etag[SKY_ETAG_MAX];
    uint64_t size;
};
/* HEAD container/key into *o (o->exists false on 404). */
int swift_head_obj(struct swift *s, const char *container, const char *key, struct swift_obj *o,
                   const char *show, struct sky_err *e);

/* Before a new object replaces container/key: what is there (*old) and,
 * for an SLO, its segments (*segs, *nsegs; swift_paths_free them), found
 * while its manifest still exists.  Failing to read the manifest only
 * costs the cleanup (logged). */
int swift_before_replace(struct swift *s, const char *container, const char *key,
                         struct swift_obj *old, char ***segs, size_t *nsegs, const char *show,
                         struct sky_err *e);
/* After the new object landed: delete the old SLO's segments except the
 * new object's own (keep), and forget any moved-manifest record. */
void swift_after_replace(struct swift *s, const char *container, const char *key,
                         const struct swift_obj *old, char **old_segs, size_t nold, char **keep,
                         size_t nkeep, const char *show);

/* Delete "container/object" paths (decoded), with bulk delete where the
 * cluster has it; 0 when every one is gone (or was). */
int swift_delete_paths(struct swift *s, char **paths, size_t n, const char *show,
                       struct sky_err *e);

/* swift_slo.c: the large-upload primitives of the protocol table. */
int swift_mpu_begin(void *p, const char *container, const char *key,
                    const struct objstore_new *nw, void **up, const char *show,
                    struct sky_err *e);
int swift_mpu_part(void *up, uint64_t index, int fd, uint64_t off, uint64_t len,
                   struct sky_err *e);
int swift_mpu_complete(void *up, uint64_t nparts, int fd, uint64_t size,
                       char etag_out[SKY_ETAG_MAX], struct sky_err *e);
void swift_mpu_end(void *up, bool discard);

/* The segments of SLO container/key ("container/object" paths, decoded;
 * malloc'd array of malloc'd strings), from its manifest. */
int swift_slo_segments(struct swift *s, const char *container, const char *key, char ***paths,
                       size_t *n, const char *show, struct sky_err *e);
/* Delete segments (as swift_slo_segments gives them) except those in
 * keep[0..nkeep); failures are logged, not returned (the object they
 * belonged to is already gone or replaced). */
void swift_slo_delete_segments(struct swift *s, char **paths, size_t n, char **keep,
                               size_t nkeep, const char *show);
void swift_paths_free(char **paths, size_t n);

/* The moved-manifest memory (see struct swift_moved). */
void swift_moved_add(struct swift *s, const char *container, const char *key,
                     const char *etag);
/* Was container/key (with that etag) copied away?  Forgets it when so. */
bool swift_moved_take(struct swift *s, const char *container, const char *key,
                      const char *etag);
/* A new object at container/key: forget any record of it. */
void swift_moved_forget(struct swift *s, const char *container, const char *key);

#endif
