/*
 * dirmemo.h - the attributes of folders that a listing shows only as a
 * name.
 *
 * On S3 (and GCS, Swift) a folder's mode, owner and times live in the
 * user metadata of its marker object "dir/" (x-amz-meta-mode and friends,
 * s3fs's convention, which skyfs follows).  A delimited listing shows the
 * folder as a common prefix, without metadata: from a listing alone every
 * folder would look like 0755, root-owned, which shows a folder made 0700
 * (by s3fs, or by skyfs on another machine) to every local user.  So before
 * a listing is answered, every folder it holds whose marker was not asked
 * yet is asked (one HEAD of "dir/"), DIRMEMO_THREADS at a time, in batches
 * of DIRMEMO_BATCH entries.
 *
 * The answers are remembered per folder (bucket and marker key) for the
 * life of the mount, 404s ("no marker: a plain prefix") too, so a folder
 * costs one HEAD once, not one per listing.  Before asking, the caller's
 * metadata cache is consulted (driver.h set_known_dirs): a folder it holds
 * with attributes from its marker costs no HEAD after a remount either.
 * A memory is forgotten when the driver writes or deletes the marker
 * (dirmemo_forget), and when the folder's own listing shows its marker in
 * another version than the one remembered (ETag and Last-Modified: a
 * metadata-only rewrite keeps an empty marker's ETag but not its
 * Last-Modified; a memory taken from the cache has no version, so it is
 * asked again then), or shows a marker where none was, or none where one
 * was (dirmemo_seen): the next listing of the parent asks again, without
 * consulting the cache.  When
 * full (DIRMEMO_MAX folders) the memory starts again: a forgotten answer
 * costs one HEAD more, never a wrong answer.
 *
 * Used by backends/objstore.c (list and stat of protocols whose listings
 * carry no metadata) and objstore_dirs.c / objstore_meta.c (forgetting).
 * Thread-safe: one memory per cloud, shared by all its listings; a batch
 * belongs to one listing.
 */
#ifndef SKY_DIRMEMO_H
#define SKY_DIRMEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"

#define DIRMEMO_THREADS 8
#define DIRMEMO_BATCH   256
#define DIRMEMO_MAX     100000

struct dirmemo;
int dirmemo_new(struct dirmemo **out);          /* 0 or -ENOMEM */
void dirmemo_free(struct dirmemo *m);

/* The remembered attributes of the folder whose marker is `key` ("a/b/")
 * in `scope` (the bucket): true with *out (a SKY_DIR attr: the marker's,
 * or the defaults when there is no marker), false when not remembered. */
bool dirmemo_get(struct dirmemo *m, const char *scope, const char *key, struct sky_attr *out);
/* Remember what the marker `key` is: marker false for none (a); else its
 * version (ETag, Last-Modified in ns; "" and 0 when not known) and the
 * folder's attributes a. */
void dirmemo_put(struct dirmemo *m, const char *scope, const char *key, bool marker,
                 const char *etag, int64_t modified_ns, const struct sky_attr *a);
/* Forget marker `key` (the driver changes or deletes it); keys that do not
 * end in '/' are ignored. */
void dirmemo_forget(struct dirmemo *m, const char *scope, const char *key);
/* Forget everything (a tree moved). */
void dirmemo_forget_all(struct dirmemo *m);
/* The folder's own listing showed its marker `key` in version etag,
 * modified_ns (marker true) or showed no marker: a memory that disagrees
 * (or has no version) is marked to be asked again, the caller's cache not
 * consulted (it holds the old answer). */
void dirmemo_seen(struct dirmemo *m, const char *scope, const char *key, bool marker,
                  const char *etag, int64_t modified_ns);

/* What the caller's cache holds for the folder of marker `key`: true with
 * its attributes when they came from the marker (see set_known_dirs). */
typedef bool (*dirmemo_known_fn)(void *arg, const char *key, struct sky_attr *out);

/* Asks the cloud about marker `key`: 0 with *out (the folder's attributes,
 * kind SKY_DIR), etag[SKY_ETAG_MAX] and *modified_ns (the marker's
 * version), -ENOENT when
 * there is no marker, 1 when it cannot be told now (unreadable: defaults,
 * not remembered), or another negative errno with e filled (the listing
 * then fails with it).  Called from several threads at once. */
typedef int (*dirmemo_ask_fn)(void *arg, const char *key, struct sky_attr *out, char *etag,
                              int64_t *modified_ns, struct sky_err *e);

struct dirmemo_item;

/* One listing's folders on their way to the listing callback. */
struct dirmemo_batch {
    struct dirmemo *memo;
    const char *scope;
    dirmemo_ask_fn ask;
    void *ask_arg;
    dirmemo_known_fn known;         /* may be NULL; takes ask_arg */
    sky_list_cb cb;
    void *cb_arg;
    struct sky_err *e;
    /* private */
    struct dirmemo_item *items;
    size_t n;
};

/* Hands folder entry `ent` (marker key `key`) to the callback now with the
 * remembered attributes, or keeps a copy until its marker has been asked
 * about.  0, or the callback's or a question's failure. */
int dirmemo_add(struct dirmemo_batch *b, const char *key, const struct sky_dirent *ent);
/* Asks about every kept folder (in parallel) and hands them all to the
 * callback with their attributes.  0 or the first failure. */
int dirmemo_flush(struct dirmemo_batch *b);
/* Frees what a batch still keeps (after a failure). */
void dirmemo_batch_free(struct dirmemo_batch *b);

#endif
