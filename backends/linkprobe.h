/*
 * linkprobe.h - finding the symlinks of a listing that does not say which
 * objects are symlinks.
 *
 * On S3 a symlink is an object whose body is its target and whose
 * x-amz-meta-mode has S_IFLNK (s3fs's convention, which skyfs follows),
 * but a listing (ListObjectsV2) carries no user metadata: from a listing
 * alone every symlink looks like a small file.  Shown that way, `ls -l`,
 * `find -type l`, `cp -a`, `rsync -a` and `tar` on a fresh mount would turn
 * symlinks into files.  So before a listing is answered, every listed
 * object that could be a symlink is asked (one HEAD) what it is.
 *
 * Only objects that could be a symlink are asked: a symlink's object holds
 * its target, so it is 1 to LINKPROBE_SIZE_MAX (PATH_MAX) bytes long.
 * Larger and empty objects are files without a question, and so is every
 * object version already asked: the answer "not a link" is remembered per
 * object version (bucket, key, ETag) for the life of the mount, in 8 bytes
 * (a 64-bit fingerprint), so a directory listed again costs no request;
 * the driver remembers the links itself (it keeps their targets), and
 * may add versions its caller's metadata cache knows to be files
 * (linkprobe_remember), so they cost no request either.  The last
 * LINKPROBE_RECENT answers are also kept with the metadata they brought,
 * so that a listing right after another one's questions (a listing through
 * the mount while the crawl walks the same folders) takes them instead of
 * asking again, even when that other listing could not remember them
 * (forgetful, below).  The
 * questions go out LINKPROBE_THREADS at a time, in batches of
 * LINKPROBE_BATCH entries, so memory stays bounded on any listing.
 *
 * Used by backends/objstore.c (list and list_tree of protocols whose
 * listings carry no metadata).  Thread-safe: one memory per
 * cloud, shared by all its listings; a batch belongs to one listing.
 */
#ifndef SKY_LINKPROBE_H
#define SKY_LINKPROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"

#define LINKPROBE_SIZE_MAX 4096     /* PATH_MAX: no symlink object is larger */
#define LINKPROBE_THREADS  16
#define LINKPROBE_BATCH    256

/* The memory of object versions found not to be symlinks. */
struct linkprobe;
int linkprobe_new(struct linkprobe **out);      /* 0 or -ENOMEM */
void linkprobe_free(struct linkprobe *lp);

/* Is object version (scope, key, etag) remembered as not a symlink? */
bool linkprobe_known(struct linkprobe *lp, const char *scope, const char *key, const char *etag);
/* Remember that it is not one (learnt elsewhere: the caller's cache). */
void linkprobe_remember(struct linkprobe *lp, const char *scope, const char *key,
                        const char *etag);

/* Asks the cloud what the object `key` is: 0 with *out (kind SKY_LINK for
 * a symlink), -ENOENT when it is gone, or another negative errno with e
 * filled (the listing then fails with it).  Called from several threads
 * at once. */
typedef int (*linkprobe_ask_fn)(void *arg, const char *key, struct sky_attr *out,
                                struct sky_err *e);

struct linkprobe_item;

/* One listing's entries on their way to the listing callback. */
struct linkprobe_batch {
    struct linkprobe *memo;
    const char *scope;              /* the bucket: keys are unique inside it */
    linkprobe_ask_fn ask;
    void *ask_arg;
    sky_list_cb cb;
    void *cb_arg;
    struct sky_err *e;              /* the first failure's message */
    /* true: the answers are not remembered.  For a listing whose entries
     * reach the metadata cache later than its callback (the crawl stores
     * them in batches): a remembered version makes the next listing skip
     * the head, and that listing's entry, without the mode and mtime the
     * head brought, would reach the cache first.  The caller's cache
     * (kind_known) answers for the versions once they are stored. */
    bool forgetful;
    /* Entries kept before they are asked about and handed on (0:
     * LINKPROBE_BATCH).  The crawl hands its answers on in small batches,
     * so that they reach the cache soon after they arrive. */
    size_t max;
    /* private */
    struct linkprobe_item *items;
    size_t n;
};

/* Hands `ent` (listed as object `key`) to the callback now, or keeps a
 * copy until it has been asked about, when it is a file that could be a
 * symlink not asked about yet.  Returns 0, or the callback's or a probe's
 * failure (stop the listing). */
int linkprobe_add(struct linkprobe_batch *b, const char *key, const struct sky_dirent *ent);

/* Asks about every kept entry (in parallel) and hands them all to the
 * callback, symlinks as SKY_LINK entries.  An entry gone meanwhile is left
 * out.  Call it once the listing is complete; 0 or the first failure. */
int linkprobe_flush(struct linkprobe_batch *b);

/* Frees what a batch still keeps (after a failure). */
void linkprobe_batch_free(struct linkprobe_batch *b);

#endif
