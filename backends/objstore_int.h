/*
 * objstore_int.h - what the object-store core's own modules share.
 *
 * The core is split along its seams: objstore.c (open/close, paths, the
 * memory of object kinds, listings, stat, read, get_meta),
 * objstore_dirs.c (mkdir, rmdir, remove, symlinks, special files,
 * rename and tree moves), objstore_meta.c (the metadata codec plumbing:
 * attributes from and to user metadata, set_attr, xattrs),
 * objstore_upload.c (write, large and streamed uploads), objstore_cond.c
 * (preconditions: the probe, head compares, conditional deletes).  Only those
 * files (and the unit tests) include this header; protocol modules use
 * objstore.h alone.
 */
#ifndef SKY_OBJSTORE_INT_H
#define SKY_OBJSTORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/log.h"
#include "dirmemo.h"
#include "linkprobe.h"
#include "objstore.h"

#define OS_LINK_BUCKETS 1024
#define OS_LINKS_MAX    100000
#define OS_LINK_MAX     4096        /* bytes of a symlink target read back */
#define OS_SHOW_MAX     1024

/* An object known to be a symlink or special file (by key and ETag). */
struct os_link {
    char *id;                       /* "container/key" */
    char etag[SKY_ETAG_MAX];
    enum sky_kind kind;             /* SKY_LINK, or a special kind (SKY_FIFO...) */
    uint64_t rdev;
    char *target;                   /* links: NULL until read */
    struct os_link *next;
};

/* One cloud (the driver's ctx). */
struct objstore {
    const struct objstore_proto *proto;
    const struct objstore_codec *codec;
    void *p;                        /* the protocol's context */
    char *name;                     /* cloud name, for messages */
    char *container;                /* NULL: the account's containers */
    char *prefix;                   /* "" or "a/b" (no slashes at the ends) */

    /* Objects known to be symlinks or special files, valid while their
     * ETag is unchanged: listings without metadata keep them what they
     * are after a relisting. */
    pthread_mutex_t links_lock;
    struct os_link *links[OS_LINK_BUCKETS];
    size_t nlinks;
    /* Object versions a head found not to be links; NULL when listings
     * carry metadata or with `symlinks = no`. */
    struct linkprobe *probe;
    /* The attributes of folders listed as prefixes, from a head of their
     * "dir/" markers (dirmemo.h). */
    struct dirmemo *dirs;
    /* What the caller's metadata cache knows (set_known_kinds). */
    sky_known_kind_fn known_fn;
    void *known_arg;
    sky_known_dir_fn known_dir_fn;  /* set_known_dirs */
    void *known_dir_arg;
    /* Incremental uploads (objstore_incr.c): OS_INCR_* bits of the
     * reasons for a whole upload already logged for this cloud. */
    atomic_uint incr_logged;
    /* How preconditions are checked (objstore_cond.c): found out once, by
     * a probe at the first conditional call (cond_lock held while it
     * runs); cond_why says why a compare is used.  parts_compare: the
     * server checks them on a plain PUT but not at the completion of a
     * multipart upload (Ceph's RGW 16): files uploaded in parts compare
     * with a head, and cond_why says so. */
    pthread_mutex_t cond_lock;
    enum sky_guarantee cond_state;
    bool parts_compare;
    char cond_why[256];
};

/* Where a path lives: container ("" for the account root) and key. */
struct os_loc {
    char container[256];
    char *key;                      /* malloc'd; "" for a container's root */
};

/* "s3 'photos': " then the rest. */
#define OS_FAIL(o, e, code, fmt, ...)                                                        \
    sky_fail((e), (code), "%s '%s': " fmt, (o)->proto->type, (o)->name, __VA_ARGS__)

int os_oom(struct sky_err *e);
int64_t os_now_ns(void);

/* ---- objstore.c ---- */
int os_locate(struct objstore *o, const char *path, struct os_loc *l, struct sky_err *e);
void os_loc_free(struct os_loc *l);
/* The path for messages: "container/key" in account mode, else the key. */
const char *os_show(const struct objstore *o, const struct os_loc *l, char *buf, size_t cap);
/* ListObjects-style walk of every page (or one page of at most max_keys). */
int os_list_keys(struct objstore *o, const char *container, const char *prefix,
                 bool delimited, int max_keys, objstore_item_fn fn, void *arg,
                 const char *show, struct sky_err *e);
/* Probe "key/": anything under it, its marker, keys besides the marker. */
int os_probe_dir(struct objstore *o, const struct os_loc *l, int max, bool *any, bool *marker,
                 bool *others, const char *show, struct sky_err *e);
/* What container/key is by its head (SKY_FILE when it cannot be told). */
enum sky_kind os_head_kind(struct objstore *o, const char *container, const char *key,
                           const char *show, uint64_t *rdev);
void os_dir_attr(struct sky_attr *out);
/* A folder's attributes from the head h of its marker. */
void os_marker_attr(const struct objstore *o, const struct objstore_head *h,
                    struct sky_attr *out);
/* The driver changes or deletes container/key: forget what dirmemo knew of
 * it when it is a folder's marker ("a/b/"). */
void os_dirs_forget(struct objstore *o, const char *container, const char *key);
/* The child name of a listed key under a prefix of plen bytes, into
 * out[SKY_NAME_MAX + 1]: 1 for a valid name, 0 for the directory's own
 * marker, -1 for a key that cannot be a file name. */
int objstore_child_name(const char *key, size_t plen, int is_prefix, char *out);
/* 0 when nothing is at path; -EEXIST naming op when something is. */
int os_must_be_free(struct objstore *o, const char *path, const char *op, struct sky_err *e);

/* The memory of links and special files. */
void os_typed_put(struct objstore *o, const char *container, const char *key,
                  const char *etag, enum sky_kind kind, uint64_t rdev, const char *target);
void os_links_drop(struct objstore *o, const char *container, const char *key);
void os_typed_note(struct objstore *o, const char *container, const char *key,
                   const struct sky_attr *a);
void os_links_move(struct objstore *o, const char *fcontainer, const char *fkey,
                   const char *tcontainer, const char *tkey, const char *etag);

/* ---- objstore_meta.c ---- */
/* Attributes from a head (the core's names, then codec->attr_read). */
void os_attr_from_head(const struct objstore *o, const struct objstore_head *h,
                       struct sky_attr *a);
/* The POSIX names for the `which` bits of a into meta; the mode always
 * carries the type bits of `kind` (links, directories and special files
 * always get one).  0 or -ENOMEM. */
int os_meta_posix(const struct objstore *o, struct http_headers *meta, enum sky_kind kind,
                  const struct sky_attr *a, unsigned which);
/* The user items of m into meta, skipping what the protocol cannot carry
 * (those past codec->meta_max with a warning naming show).  0 or -ENOMEM. */
int os_meta_user(const struct objstore *o, const char *show, struct http_headers *meta,
                 const struct sky_objmeta *m);
/* The content type to store for m (its own when it can be sent). */
const char *os_content_type(const struct sky_objmeta *m);
/* Cloud metadata of a head (content type, storage class, user items). */
int os_objmeta_from_head(const struct objstore *o, const struct objstore_head *h,
                         struct sky_objmeta *m);
/* Is meta name (without prefix) a user item (not POSIX, not reserved)? */
bool os_is_user_name(const struct objstore *o, const char *name);
/* Head the object behind a path: the key itself, else its "key/" marker
 * (dir_first: the caller knows a folder there, the marker is asked
 * first).  *key_out is the key found; -ENOENT when neither exists
 * (*dir_exists tells whether the path is still an implicit directory). */
int os_head_meta(struct objstore *o, const struct os_loc *l, bool dir_first,
                 struct objstore_head *h, char **key_out, enum sky_kind *kind,
                 bool *dir_exists, const char *show, struct sky_err *e);

/* ---- objstore_upload.c ---- */
/* The metadata a new file is stored with: attr's, with now as mtime when
 * it has none. */
struct sky_attr os_file_attr(const struct sky_attr *attr);
/* Does os_store send `size` bytes (of mem, or of a file when NULL) as a
 * large (multipart) upload? */
bool os_in_parts(const struct objstore *o, const void *mem, uint64_t size);
/* Store `size` bytes of fd (or mem) at l with nw: one put or a large
 * upload. */
int os_store(struct objstore *o, const struct os_loc *l, const char *key, const void *mem,
             int fd, uint64_t size, const struct objstore_new *nw, char *etag_out,
             const char *show, struct sky_err *e);
/* The metadata of a new file: POSIX attributes a, cloud metadata m (may
 * be NULL).  On failure (-ENOMEM) meta is freed. */
int os_file_meta(const struct objstore *o, const char *show, struct http_headers *meta,
                 const struct sky_attr *a, const struct sky_objmeta *m);
/* write()'s and upload_finish()'s *out: a file of `size` bytes stored
 * with metadata a. */
void os_file_attr_out(struct sky_attr *out, const struct sky_attr *a, uint64_t size,
                      const char *etag);

/* ---- objstore_cond.c ---- */
/* The preconditions attr->expect asks of a write to l (key) into *nw when
 * the server checks them; else compared now with a head (-ESTALE when
 * the key holds another version).  attr may be NULL (none).  parts: the
 * write is a multipart upload (its completion carries them). */
int os_cond_prepare(struct objstore *o, const struct os_loc *l, const char *key,
                    const struct sky_attr *attr, bool parts, struct objstore_new *nw,
                    const char *show, struct sky_err *e);
/* etag when the server checks If-Match at the completion of a multipart
 * upload (probing once), else NULL: the precondition of an incremental
 * upload's completion (objstore_incr.c). */
const char *os_cond_parts_match(struct objstore *o, const char *container, const char *key,
                                const char *etag);
/* The result rc of a write made with attr's preconditions, with the
 * answers that mean "another version is there" (a gone key under
 * If-Match, an existing one under If-None-Match) turned into -ESTALE. */
int os_cond_result(struct objstore *o, const struct sky_attr *attr, int rc, const char *show,
                   struct sky_err *e);

#endif
