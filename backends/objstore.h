/*
 * objstore.h - the object-store core: ONE `struct sky_driver` for every
 * object cloud (S3, Azure Blob, GCS, Swift...), over a small per-protocol
 * table, in the spirit of curl's Curl_handler.
 *
 * WHO CALLS WHAT.  A protocol module (backends/s3.c, gcs.c, swift.c...)
 * fills one `const struct objstore_proto` and defines its driver with
 * OBJSTORE_DRIVER (bottom of this file); backends/registry.c lists that
 * driver as for any other backend.  fs/ and cache/ see only the driver
 * (driver.h) and never this header.  The core (objstore*.c) calls the
 * protocol's callbacks; a protocol module never calls the core back except
 * through the helpers declared here (objstore_etag_copy, time parsing and
 * formatting, objstore_head_free...).  This header is the contract: a new
 * protocol module can be written from it alone.
 *
 * WHAT THE CORE DOES ONCE FOR EVERY OBJECT CLOUD.
 *   - Paths: a cloud is one container (bucket) plus an optional key
 *     prefix; without a container the root lists the account's containers
 *     as directories and paths are "container/key...".  The core turns
 *     driver paths into (container, key) and back; a protocol only ever
 *     sees containers and whole keys.
 *   - Directories: key prefixes, with an optional zero-byte "dir/" marker
 *     object (mkdir writes one so empty directories persist; it carries
 *     the directory's mode and times).  An empty object "dir" (no slash)
 *     whose content type is one of codec->dir_types, or whose stored mode
 *     says S_IFDIR, is a directory too (s3fs and older tools made them):
 *     rmdir and rename take it along.  stat of a prefix without marker is
 *     a directory; rmdir refuses a non-empty one (ENOTEMPTY).
 *   - Rename rules: ENOTDIR (dir onto file), EISDIR (file onto dir), an
 *     empty target directory replaced, ENOTEMPTY onto a non-empty one,
 *     EINVAL into itself, EXDEV for containers; a file is copy + delete, a
 *     directory is every key under it copied (parallel) then deleted (in
 *     batches where remove_batch exists).
 *   - POSIX attributes as user metadata, by these names (the s3fs names,
 *     shared by every protocol; the protocol adds its own header prefix):
 *       mode  the whole st_mode in decimal (type bits included)
 *       uid, gid  decimal
 *       mtime, atime, ctime  written by codec->format_time; read in any
 *             of the forms objstore_parse_time accepts
 *       rdev  a device node's number, decimal
 *     A symlink is an object whose body is the target and whose mode has
 *     S_IFLNK; FIFOs, sockets and devices are empty objects whose mode
 *     carries the type.
 *   - Extended attributes user.NAME are user metadata NAME (when
 *     codec->user_name_ok accepts NAME), values that are not plain
 *     printable text stored as "b64:" + base64; s3fs's "xattr" JSON item
 *     is read and kept up to date where codec->flags says so.
 *   - Listings whose items carry no metadata (OBJSTORE_LIST_META unset):
 *     small objects that may be symlinks are asked about once per version
 *     (backends/linkprobe.h, one head each), answers remembered per
 *     version and asked of the caller's metadata cache first
 *     (driver.h set_known_kinds); the `symlinks = no` key turns that off.
 *     Folders listed as prefixes get their marker's attributes the same
 *     way: one head of "dir/" per folder, remembered (backends/dirmemo.h),
 *     asked of the caller's metadata cache first (set_known_dirs).
 *   - Uploads: one put up to proto->put_max bytes, else the large-upload
 *     primitives (mpu_*) with OBJSTORE_THREADS parts at once; streamed
 *     uploads (driver.h upload_*) on the same primitives; a changed final
 *     metadata is written after completion (set_meta, else a self-copy).
 *   - Incremental uploads (driver.h write_delta): where the protocol has
 *     compose, a file changed in part is made from the object it replaces
 *     plus its dirty ranges, after a head confirmed the base ETag; any
 *     doubt, or a server that refuses, falls back to the whole upload
 *     with the reason logged once per cloud (objstore_incr.c).
 *   - Names: keys that cannot be file names (backends/names.h) and sizes
 *     no file has are skipped with a warning naming the cloud and key.
 *
 * NAMES IN METADATA.  Everywhere in this header "metadata" is the object's
 * user metadata as a list of (name, value) pairs in a `struct
 * http_headers` (backends/http.h) WITHOUT the protocol's prefix
 * ("mode", "mtime", "color"; not "x-amz-meta-mode"), names in lowercase,
 * values as stored (text).  The protocol adds and strips its own prefix
 * (x-amz-meta-, x-goog-meta-, x-ms-meta-, X-Object-Meta-).
 *
 * ERRORS.  As in driver.h: every callback returns 0 or a negative errno
 * and then fills `e` with one sentence naming the protocol, the cloud,
 * the operation and the object, e.g. "s3 'photos': HEAD a/b.txt: 404
 * NoSuchKey" (`show` arguments give the text to name the object by).
 * Mapping: no such object or container -> ENOENT (also for a HEAD: the
 * core tells "absent" from "failed" by -ENOENT); forbidden -> EACCES;
 * container exists -> EEXIST; container not empty -> ENOTEMPTY; a
 * precondition (if_match) failed -> ESTALE; unreachable after the http
 * client's retries -> EHOSTDOWN; a request cancelled -> EINTR (http.c does
 * both); anything else -> EIO.  Secrets and tokens never appear in
 * messages.  `e` may be NULL.
 *
 * THREADS.  The core calls every callback from many threads at once with
 * the same protocol context (fs/'s threads and parallel_for's helpers):
 * a protocol keeps its shared state safe (backends/http.c's client is).
 * An mpu handle is used by several threads at once only through mpu_part
 * for distinct part numbers (see there).
 *
 * MEMORY.  Strings and structs the core passes live during the call only;
 * a protocol copies what it keeps.  What a callback fills for the core is
 * said at each callback.
 */
#ifndef SKY_OBJSTORE_H
#define SKY_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "http.h"

struct sky_cloud_config;

#define OBJSTORE_THREADS 4          /* parts or copies of one call sent at once */

/* ------------------------------------------------------------------ */
/* What the protocol reports about objects                             */
/* ------------------------------------------------------------------ */

/* One object, as a HEAD (or a listing that carries metadata) tells it. */
struct objstore_head {
    uint64_t size;                  /* bytes of content */
    int64_t last_modified_ns;       /* the server's Last-Modified, 0 = unknown */
    char etag[SKY_ETAG_MAX];        /* version token ("" = none), in the protocol's
                                     * own form (objstore_etag_copy quotes it, as
                                     * S3 does): the core only compares it and
                                     * hands it back (if_match) */
    char *content_type;             /* malloc'd, or NULL */
    char *storage_class;            /* malloc'd: the cloud's word ("STANDARD",
                                     * "Hot"...), or NULL when it does not say */
    struct http_headers meta;       /* user metadata, names without prefix */
    /* Other headers of the object that a metadata rewrite must keep
     * (Content-Encoding, Cache-Control, Content-Disposition...), named as
     * the protocol sends them; the core only hands them back
     * (objstore_new.keep).  May stay empty. */
    struct http_headers keep;
};

/* Frees what a head owns and zeroes it (NULL is fine). */
void objstore_head_free(struct objstore_head *h);

/* One item of a listing page. */
struct objstore_item {
    const char *key;                /* the whole key, decoded (never holds a NUL) */
    bool is_prefix;                 /* a common prefix ("dir/"), not an object */
    uint64_t size;                  /* UINT64_MAX when the listed size is not a
                                     * number a file can have (the core skips it) */
    int64_t last_modified_ns;       /* 0 = unknown */
    char etag[SKY_ETAG_MAX];        /* in the same form as the head's */
    const char *storage_class;      /* or NULL */
    const char *content_type;       /* or NULL (listings that carry it: Swift, Azure) */
    /* The item's user metadata (names without prefix) when the listing
     * carries it (OBJSTORE_LIST_META), else NULL. */
    const struct http_headers *meta;
};

/* Receives each item of a page, in the order of the page.  Returns 0 to
 * go on, or a negative errno: list_page stops and returns it. */
typedef int (*objstore_item_fn)(void *arg, const struct objstore_item *it);

/* The metadata a new object (put, mpu_begin, copy with new metadata,
 * set_meta) is stored with. */
struct objstore_new {
    const char *content_type;       /* never NULL: the core picks the default */
    const struct http_headers *meta;/* user metadata, names without prefix; the
                                     * core keeps it within codec->meta_max */
    const struct http_headers *keep;/* NULL, or the `keep` headers of the object's
                                     * head, to send as they are */
    /* Preconditions of put and of a large upload's completion (the
     * mpu handle keeps them from mpu_begin), given only to a protocol
     * with OBJSTORE_COND: if_match non-NULL: the key must still hold
     * that ETag (If-Match); if_none_match: nothing may be at the key
     * (If-None-Match: *).  A failed one is -ESTALE; a key that is gone
     * under if_match may be -ESTALE or -ENOENT.  Ignored by copy and
     * set_meta (they have their own if_match). */
    const char *if_match;
    bool if_none_match;
};

/* ------------------------------------------------------------------ */
/* The metadata codec: how POSIX attributes are named on a cloud       */
/* ------------------------------------------------------------------ */

/* codec->flags */
#define OBJSTORE_CODEC_S3FS_XATTR 0x1u  /* read s3fs's "xattr" JSON item (s3fs_xattr.h) as
                                         * xattrs, and edit them inside it where it is */
#define OBJSTORE_CODEC_PLAIN_VALUES 0x2u /* values must be printable ASCII without a
                                         * leading or trailing space (Azure): no "b64:"
                                         * form; setxattr of another value is ENOTSUP
                                         * and such items are left out of new objects */
#define OBJSTORE_CODEC_NAMED_MARKER 0x4u /* mkdir writes the marker as blobfuse2 does: an
                                         * empty object "dir" (no slash) whose metadata
                                         * has folder_flag = "true"; "dir/" markers are
                                         * still read */

struct objstore_codec {
    unsigned flags;                 /* OBJSTORE_CODEC_* */
    /* How times are written: objstore_time_decimal (s3fs, Swift:
     * "1620284889.123456789") or objstore_time_rfc3339 (rclone:
     * "2021-05-06T07:08:09.123456789Z").  Reading accepts both always. */
    void (*format_time)(int64_t ns, char *buf, size_t cap);
    /* Content type of the "dir/" markers mkdir writes, e.g.
     * "application/x-directory". */
    const char *marker_type;
    /* Content types that make an empty object "dir" (no slash) a
     * directory object, NULL-terminated (may be NULL: none). */
    const char *const *dir_types;
    /* Metadata name that makes an empty object "dir" (no slash) a
     * directory object when its value is "true" (blobfuse2's
     * "hdi_isfolder"), never user metadata; NULL: none. */
    const char *folder_flag;
    /* Bytes of user metadata (names + values, without prefix) an object
     * may carry: items past it are left out of new objects with a warning,
     * and setxattr fails with E2BIG. */
    size_t meta_max;
    /* Can NAME (what follows "user.") be stored as a user metadata name?
     * The core already refuses its own names (mode, uid, gid, mtime,
     * atime, ctime, btime, rdev, xattr) and `reserved`.  NULL:
     * objstore_name_token (lowercase letters, digits, '-', '_', '.'). */
    bool (*user_name_ok)(const char *name);
    /* More metadata names that are the protocol's or another tool's, never
     * user metadata (e.g. "gcsfuse_mtime"), NULL-terminated, or NULL. */
    const char *const *reserved;
    /* Optional: after the core read the standard names of `h` into *a,
     * read another tool's convention too (gcsfuse's gcsfuse_mtime when
     * there is no mtime...).  Must only change fields and `has` bits. */
    void (*attr_read)(const struct objstore_head *h, struct sky_attr *a);
    /* Optional: after the core wrote the standard names for the `which`
     * bits (SKY_HAS_*) of *a into meta, write another tool's names too
     * (gcsfuse_mtime beside mtime).  0 or -ENOMEM. */
    int (*attr_write)(struct http_headers *meta, const struct sky_attr *a, unsigned which);
};

/* Time writers for codec->format_time, and the reader of every form
 * (decimal seconds with an optional fraction, RFC 3339): 0 or -EINVAL. */
void objstore_time_decimal(int64_t ns, char *buf, size_t cap);
void objstore_time_rfc3339(int64_t ns, char *buf, size_t cap);
int objstore_parse_time(const char *s, int64_t *ns);
/* RFC 3339 / ISO 8601 ("2009-10-12T17:50:30.000Z", "...+02:00") and HTTP
 * dates ("Wed, 12 Oct 2009 17:50:00 GMT"): 0 or -EINVAL. */
int objstore_parse_iso8601(const char *s, int64_t *ns);
int objstore_parse_http_date(const char *s, int64_t *ns);
/* The default user_name_ok. */
bool objstore_name_token(const char *name);
/* An ETag into dst[SKY_ETAG_MAX], in double quotes whether src had them
 * or not; NULL gives "". */
void objstore_etag_copy(char *dst, const char *src);

/* ------------------------------------------------------------------ */
/* The protocol table                                                  */
/* ------------------------------------------------------------------ */

/* Where a cloud lives, as the core read it from the config before
 * calling proto->open: container (NULL: the account's containers, when
 * OBJSTORE_ACCOUNT is set) and prefix ("" or "a/b", no slash at either
 * end). */
struct objstore_where {
    const char *container;
    const char *prefix;
};

/* proto->flags */
#define OBJSTORE_LIST_META 0x1u     /* listing items carry user metadata (item.meta):
                                     * kinds are known without a head */
#define OBJSTORE_ACCOUNT   0x2u     /* a cloud without container lists the account's
                                     * containers (list_containers required) */
#define OBJSTORE_LIST_DEDUPE 0x4u   /* a directory listing is gathered, sorted and each
                                     * name given once: a directory (a named marker,
                                     * then a prefix) hides a file of the same name,
                                     * with a warning (blobfuse2's "dir" marker is
                                     * listed beside the prefix "dir/") */
#define OBJSTORE_COND      0x8u     /* put and mpu_complete send objstore_new's
                                     * preconditions (the core still probes once per
                                     * cloud whether the server honours them, and
                                     * compares with a head where it does not) */
#define OBJSTORE_COND_NEW  0x10u    /* put and mpu_complete send objstore_new's
                                     * if_none_match only: the server has a create-only
                                     * precondition (Swift's If-None-Match: *, GCS's
                                     * x-goog-if-generation-match: 0) but no If-Match
                                     * on writes; probed like OBJSTORE_COND, and a
                                     * replacement or delete compares with a head */

struct objstore_proto {
    const char *type;               /* "s3": the first word of every message */
    const char *container_key;      /* config key naming the container: "bucket" */
    unsigned flags;                 /* OBJSTORE_* above */
    /* OBJSTORE_COND_NEW: the create-only precondition's name in messages
     * ("If-None-Match: *"; NULL: that) */
    const char *cond_new_name;
    const struct objstore_codec *codec;

    /* Sizes.  put_max: largest object sent with one put (larger files use
     * mpu_*).  part_size: the size of every part but the last (the core
     * grows it in 1 MiB steps when a file would need more than max_parts
     * parts; streamed uploads use it as is).  max_parts: most parts one
     * large upload holds.  batch_max: most keys one remove_batch takes. */
    uint64_t put_max, part_size, max_parts;
    size_t batch_max;

    /* Set up the protocol for one cloud: read its own keys from cfg (the
     * core read container_key and "prefix" into *where already, and
     * checked every key against the driver's key list), check them (a bad
     * value fails naming file, line and key: sky_cloud_line), and make
     * *p, the context every other callback gets.  `name` is the cloud's
     * name for messages.  Must not block long (no request). */
    int (*open)(const struct sky_cloud_config *cfg, const char *name,
                const struct objstore_where *where, void **p, struct sky_err *e);
    void (*close)(void *p);

    /* One page of the keys under `prefix` (may be "") in `container`, in
     * key order: objects, and with `delimited` the common prefixes up to
     * the next '/' (is_prefix items, key ending in '/').  At most
     * `max_keys` items when max_keys > 0 (the core asks for 1 or 2 to
     * learn whether a directory is empty), else the server's page size.
     * `token` is NULL for the first page, else what the previous page put
     * in *next.  *next: a malloc'd token when more pages follow, else
     * NULL.  Keys holding a NUL once decoded are skipped (with a warning)
     * by the protocol.  The core guards against servers that repeat a
     * token (paging.h). */
    int (*list_page)(void *p, const char *container, const char *prefix, bool delimited,
                     int max_keys, const char *token, objstore_item_fn fn, void *arg,
                     char **next, const char *show, struct sky_err *e);

    /* OBJSTORE_ACCOUNT only: every container of the account, to cb as
     * SKY_DIR entries (name, mtime where known); names that cannot be
     * file names left out. */
    int (*list_containers)(void *p, sky_list_cb cb, void *arg, struct sky_err *e);

    /* What object `key` of `container` is: 0 with *out filled (the caller
     * frees it with objstore_head_free), -ENOENT when there is none,
     * other errors as usual.  On failure *out holds nothing to free. */
    int (*head)(void *p, const char *container, const char *key, struct objstore_head *out,
                const char *show, struct sky_err *e);

    /* Bytes [off, off + len) of the object (len > 0) to sink as they
     * arrive (driver.h sky_sink_fn; a retried transfer starts again at
     * pos 0).  Fewer bytes only at the end of the object, none when off is
     * at or past it (then 0, not an error).  With if_match non-empty: the
     * object must still have that ETag, else -ESTALE (also when the server
     * ignores the condition but answers another ETag).  etag_out (may be
     * NULL) gets the ETag the answer carries. */
    int (*get)(void *p, const char *container, const char *key, const char *if_match,
               uint64_t off, uint64_t len, sky_sink_fn sink, void *sink_arg,
               char etag_out[SKY_ETAG_MAX], const char *show, struct sky_err *e);

    /* Store an object of `size` bytes: from `mem` when it is not NULL,
     * else from fd (pread at [0, size); never moved or closed), with the
     * metadata of `nw`.  The new object replaces the old one at once.
     * etag_out (may be NULL) gets its ETag. */
    int (*put)(void *p, const char *container, const char *key, const void *mem, int fd,
               uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
               const char *show, struct sky_err *e);

    /* ---- large uploads (S3/GCS multipart, Azure blocks, Swift SLO) ----
     * mpu_begin starts one (it may send a request) and makes *up, the
     * protocol's handle, which owns copies of what it needs (container,
     * key, show, nw).  mpu_part sends part `index` (from 0): bytes
     * [off, off + len) of fd; the core calls it for distinct indexes from
     * several threads at once, in any order, each index once (a failed
     * part fails the upload), so the handle records each part's answer
     * (its ETag, block id...) under its own lock.  mpu_complete makes the
     * object of parts [0, nparts) (all sent) appear at once with the
     * metadata given to mpu_begin; `size` is the object's size and fd
     * its bytes (-1 when not at hand), for a protocol that checks, after
     * a lost answer, whether the completion landed.  etag_out gets the
     * object's ETag.  mpu_end frees the handle; with discard it first
     * discards what was sent (best effort, errors ignored).  The core
     * always calls mpu_end once, after success too (discard false). */
    int (*mpu_begin)(void *p, const char *container, const char *key,
                     const struct objstore_new *nw, void **up, const char *show,
                     struct sky_err *e);
    int (*mpu_part)(void *up, uint64_t index, int fd, uint64_t off, uint64_t len,
                    struct sky_err *e);
    int (*mpu_complete)(void *up, uint64_t nparts, int fd, uint64_t size,
                        char etag_out[SKY_ETAG_MAX], struct sky_err *e);
    void (*mpu_end)(void *up, bool discard);

    /* ---- incremental uploads (optional) ----
     * Make the object `key` of `size` bytes anew from ranges of the object
     * there now (which must still have ETag `if_match`: -ESTALE
     * otherwise, checked by the server in the same requests) and bytes of
     * fd: every byte outside dirty[0..ndirty) (struct sky_range, sorted,
     * disjoint, clipped to `size`) and below `base_size` (the present
     * object's size, as a head reported it with that ETag) may be taken
     * from the present object at the same offset; every other byte comes
     * from fd.  Atomic as put is: the object changes at once, or not at
     * all.  With the metadata of `nw`.  etag_out gets the new ETag and
     * *sent the body bytes sent (for the log).  -ENOTSUP with e saying why
     * when it cannot or would not save anything (the core then uploads
     * the whole file and logs the reason once); any other failure makes
     * the core fall back as well, except -EHOSTDOWN and -EINTR.  NULL: no
     * incremental uploads on this protocol. */
    int (*compose)(void *p, const char *container, const char *key, const char *if_match,
                   uint64_t base_size, const struct sky_range *dirty, size_t ndirty, int fd,
                   uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
                   uint64_t *sent, const char *show, struct sky_err *e);

    /* Server-side copy of an object of `size` bytes from skey of
     * scontainer to dkey of dcontainer (same cloud; they may be the same
     * key: a metadata rewrite).  nw NULL: the copy keeps the source's
     * content type and user metadata; else it gets nw's.  if_match
     * non-empty: the source must have that ETag (-ESTALE otherwise).
     * Objects of any size (a protocol whose single copy has a limit copies
     * in parts itself).  etag_out (may be NULL) gets the copy's ETag.  A
     * copy whose answer was lost and whose retry fails succeeds when the
     * target holds the copy (size and, with nw, the metadata). */
    int (*copy)(void *p, const char *scontainer, const char *skey, const char *dcontainer,
                const char *dkey, uint64_t size, const char *if_match,
                const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX], const char *show,
                struct sky_err *e);

    /* Optional: replace the content type and user metadata of an object
     * in place (Azure's Set Blob Metadata).  if_match as for copy.
     * etag_out gets its ETag afterwards.  NULL: the core copies the
     * object onto itself with nw. */
    int (*set_meta)(void *p, const char *container, const char *key, uint64_t size,
                    const char *if_match, const struct objstore_new *nw,
                    char etag_out[SKY_ETAG_MAX], const char *show, struct sky_err *e);

    /* Delete one object.  A key that is already gone is success or
     * -ENOENT, either is fine. */
    int (*remove)(void *p, const char *container, const char *key, const char *show,
                  struct sky_err *e);

    /* Optional: delete the object only while it has ETag if_match
     * (Azure's If-Match on Delete Blob): -ESTALE when it has another.
     * NULL: the core compares with a head right before remove. */
    int (*remove_match)(void *p, const char *container, const char *key, const char *if_match,
                        const char *show, struct sky_err *e);

    /* Optional: delete keys[0..n) (n <= batch_max) in one request; fails
     * when any key could not be deleted (a key already gone is fine).
     * NULL: the core deletes one by one. */
    int (*remove_batch)(void *p, const char *container, char *const *keys, size_t n,
                        const char *show, struct sky_err *e);

    /* Containers (OBJSTORE_ACCOUNT, each optional: NULL answers EPERM).
     * container_head: 0 when it exists and may be read, -ENOENT...;
     * container_create: mkdir at the account root (-EEXIST when taken);
     * container_remove: rmdir there (-ENOTEMPTY when it holds objects). */
    int (*container_head)(void *p, const char *container, struct sky_err *e);
    int (*container_create)(void *p, const char *container, struct sky_err *e);
    int (*container_remove)(void *p, const char *container, struct sky_err *e);
};

/* ------------------------------------------------------------------ */
/* Planning an incremental upload in parts (objstore_incr.c)           */
/* ------------------------------------------------------------------ */

/* One part of a new object: bytes [off, off + len), copied from the
 * present object at the same offset (`copy`) or sent. */
struct objstore_piece {
    uint64_t off, len;
    bool copy;
};

/* The limits of a protocol's parts. */
struct objstore_part_rules {
    uint64_t min_part;      /* every part but the last at least this (S3: 5 MiB) */
    uint64_t send_part;     /* sent ranges are cut into parts of about this size */
    uint64_t max_part;      /* no part larger (S3: 5 GiB) */
    uint64_t max_parts;     /* parts one upload holds */
};

/* The parts of a new object of `size` bytes whose bytes outside dirty[]
 * and below base_size are those of the present object (see compose):
 * unchanged ranges of at least min_part are copied, the rest is sent, and
 * sent parts shorter than min_part take bytes from the next copied range
 * (which becomes sent when too little of it is left).  *out (malloc'd,
 * the caller frees it) holds *n pieces in order, covering [0, size).
 * 0; -ENOTSUP when no byte would be copied or the parts would be too
 * many; -ENOMEM. */
int objstore_plan_parts(uint64_t size, uint64_t base_size, const struct sky_range *dirty,
                        size_t ndirty, const struct objstore_part_rules *rules,
                        struct objstore_piece **out, size_t *n);

/* ------------------------------------------------------------------ */
/* The driver the core makes of a protocol                             */
/* ------------------------------------------------------------------ */

/* The driver.h operations, implemented once by the core (objstore*.c).
 * objstore_open's first argument is the protocol; each protocol module
 * wraps it in a driver `open` of its own: */
int objstore_open(const struct objstore_proto *proto, const struct sky_cloud_config *cfg,
                  void **ctx, struct sky_err *e);
void objstore_close(void *ctx);
int objstore_list(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e);
int objstore_list_tree(void *ctx, const char *dir, sky_list_cb cb, void *arg,
                       struct sky_err *e);
int objstore_stat(void *ctx, const char *path, struct sky_attr *out, struct sky_err *e);
int objstore_stat_hinted(void *ctx, const char *path, int hint, struct sky_attr *out,
                         struct sky_err *e);
int objstore_file_allowed(void *ctx, const char *path, struct sky_err *e);
int objstore_read(void *ctx, const char *path, const char *etag, uint64_t off, uint64_t len,
                  sky_sink_fn sink, void *sink_arg, struct sky_err *e);
int objstore_write(void *ctx, const char *path, int fd, uint64_t size,
                   const struct sky_attr *attr, const struct sky_objmeta *meta,
                   struct sky_attr *out, struct sky_err *e);
int objstore_write_delta(void *ctx, const char *path, int fd, uint64_t size,
                         const struct sky_attr *attr, const struct sky_objmeta *meta,
                         const struct sky_delta *d, struct sky_attr *out, struct sky_err *e);
int objstore_upload_begin(void *ctx, const char *path, const struct sky_attr *attr,
                          const struct sky_objmeta *meta, void **up, struct sky_err *e);
int objstore_upload_part(void *up, int fd, uint64_t index, struct sky_err *e);
int objstore_upload_finish(void *up, int fd, uint64_t nparts, uint64_t size,
                           const struct sky_attr *attr, const struct sky_objmeta *meta,
                           struct sky_attr *out, struct sky_err *e);
void objstore_upload_abort(void *up);
int objstore_remove(void *ctx, const char *path, struct sky_err *e);
int objstore_remove_if(void *ctx, const char *path, const char *etag, struct sky_err *e);
int objstore_guarantee(void *ctx, char *why, size_t size);
int objstore_mkdir(void *ctx, const char *path, const struct sky_attr *attr, struct sky_err *e);
int objstore_mknod(void *ctx, const char *path, const struct sky_attr *attr,
                   struct sky_attr *out, struct sky_err *e);
int objstore_rmdir(void *ctx, const char *path, struct sky_err *e);
int objstore_rename(void *ctx, const char *from, const char *to, struct sky_err *e);
int objstore_rename_finish(void *ctx, const char *from, const char *to, struct sky_err *e);
int objstore_set_attr(void *ctx, const char *path, const struct sky_attr *attr, unsigned which,
                      struct sky_attr *out, struct sky_err *e);
int objstore_symlink(void *ctx, const char *path, const char *target,
                     const struct sky_attr *attr, struct sky_err *e);
int objstore_readlink(void *ctx, const char *path, char *buf, size_t size, struct sky_err *e);
int objstore_getxattr(void *ctx, const char *path, const char *name, void *buf, size_t size,
                      size_t *len, struct sky_err *e);
int objstore_setxattr(void *ctx, const char *path, const char *name, const void *value,
                      size_t len, int flags, struct sky_err *e);
int objstore_listxattr(void *ctx, const char *path, char *buf, size_t size, size_t *len,
                       struct sky_err *e);
int objstore_removexattr(void *ctx, const char *path, const char *name, struct sky_err *e);
int objstore_get_meta(void *ctx, const char *path, struct sky_attr *attr,
                      struct sky_objmeta *meta, struct sky_err *e);
void objstore_set_known_kinds(void *ctx, sky_known_kind_fn fn, void *arg);
void objstore_set_known_dirs(void *ctx, sky_known_dir_fn fn, void *arg);

/* The config keys the core reads for every object cloud; a protocol's
 * key list (its driver's `keys`) includes them, with its word for a
 * container (a string literal):
 *   OBJSTORE_CORE_KEYS("bucket"),
 * besides its container_key, "prefix" and its own keys. */
#define OBJSTORE_CORE_KEYS(container_word_)                                                 \
    { "symlinks", SKY_KEY_BOOL,                                                              \
      "no: the " container_word_ " holds no symlinks, so listings send no HEAD for small "   \
      "objects (default yes)" }

/* A protocol module's driver:
 *
 *   static int s3_open(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e)
 *   {
 *       return objstore_open(&s3_proto, cfg, ctx, e);
 *   }
 *   const struct sky_driver sky_driver_s3 =
 *       OBJSTORE_DRIVER("s3", "Amazon S3 and compatible object stores", s3_keys, s3_open,
 *                       S3_PART_SIZE);
 *
 * part_size_ is a constant equal to the protocol's part_size (the size
 * of a streamed upload's parts, driver.h upload_part_size).  Every object
 * store carries content types (SKY_CAP_CONTENT_TYPE) and renames
 * directories key by key (no SKY_CAP_RENAME_DIR); every one honours
 * preconditions (SKY_CAP_CONDITIONAL: natively with OBJSTORE_COND where
 * the server does, else by a head compare). */
#define OBJSTORE_DRIVER(type_, summary_, keys_, open_, part_size_)                          \
    {                                                                                        \
        .type = (type_), .summary = (summary_), .keys = (keys_),                             \
        .caps = SKY_CAP_CONTENT_TYPE | SKY_CAP_CONDITIONAL, .open = (open_),                \
        .close = objstore_close,                                                             \
        .list = objstore_list, .list_tree = objstore_list_tree, .stat = objstore_stat,       \
        .stat_hinted = objstore_stat_hinted, .file_allowed = objstore_file_allowed,          \
        .read = objstore_read, .write = objstore_write,                                      \
        .write_delta = objstore_write_delta,                                                 \
        .upload_part_size = (part_size_),                                                    \
        .upload_begin = objstore_upload_begin, .upload_part = objstore_upload_part,          \
        .upload_finish = objstore_upload_finish, .upload_abort = objstore_upload_abort,      \
        .remove = objstore_remove, .remove_if = objstore_remove_if,                          \
        .guarantee = objstore_guarantee, .mkdir = objstore_mkdir, .mknod = objstore_mknod,   \
        .rmdir = objstore_rmdir, .rename = objstore_rename,                                \
        .rename_finish = objstore_rename_finish, .set_attr = objstore_set_attr,               \
        .symlink = objstore_symlink, .readlink = objstore_readlink,                           \
        .getxattr = objstore_getxattr, .setxattr = objstore_setxattr,                        \
        .listxattr = objstore_listxattr, .removexattr = objstore_removexattr,                \
        .get_meta = objstore_get_meta, .statfs = NULL,                                       \
        .set_known_kinds = objstore_set_known_kinds,                                         \
        .set_known_dirs = objstore_set_known_dirs,                                           \
    }

#endif
