/*
 * journal.h - the upload journal of the block cache: what waits for upload,
 * preparing an upload, recording it, and the replay after a crash.
 *
 * A written object is journaled as dirty in the block cache's database
 * before its first byte changes, so a crash loses no write: the next mount
 * finds it with blocks_each_dirty and uploads it.  fs/ uploads an object
 * by blocks_prepare_upload (complete and durable on local disk), the
 * driver's put, then blocks_committed; blocks_upload_delta tells the
 * driver which blocks changed since the version the cache read, so it may
 * send only those (incremental uploads).
 *
 * Included by blocks.h; used by fs/ (uploads, the replay at mount) and
 * tools/.
 */
#ifndef SKY_JOURNAL_H
#define SKY_JOURNAL_H

#include "blocks.h"

/* Make every block present (fetching what is missing), fsync the cache
 * file and the journal, and return a read-only fd on the cache file (owned
 * by the object; do not close; valid until its last release) for the
 * upload. */
int blocks_prepare_upload(struct blocks_obj *o, blocks_fetch_fn fetch, void *arg, int *fd,
                          struct sky_err *e);

/* blocks_prepare_upload without the upload: every block present, the
 * cache file and the journal fsynced, so that a crash from here on loses
 * none of the object's bytes.  What an upload prepared before stays
 * prepared (blocks_committed still compares with that). */
int blocks_make_durable(struct blocks_obj *o, blocks_fetch_fn fetch, void *arg,
                        struct sky_err *e);

/* Make every change of the journal committed so far durable (one
 * fdatasync of its write-ahead log; nothing when nothing changed since
 * the last): a rename of a dirty object, a note of an upload about to go
 * out.  For fs/commit.c and uploads. */
int blocks_sync(struct blocks *b, struct sky_err *e);

/* What an upload may take from the cloud's copy (incremental uploads,
 * driver.h write_delta).  `etag` is the version the object's unchanged
 * blocks hold (malloc'd), or NULL when there is no such version to start
 * from: a file never uploaded, one whose every block changed, or one
 * written or truncated since blocks_prepare_upload.  `dirty` lists the
 * changed blocks as byte ranges, merged, in order, ending at the size:
 * every byte outside them, below the size of version `etag`, is that
 * version's byte at the same offset (blocks written, grown or cut are
 * dirty; a crash recovery counts every block it kept as dirty). */
struct blocks_range {
    uint64_t off, len;
};
struct blocks_delta {
    char *etag;
    struct blocks_range *dirty;
    size_t ndirty;
};

/* Fill *d for the upload blocks_prepare_upload just prepared: 0 (d->etag
 * may be NULL, see above) or -ENOMEM.  Free with blocks_delta_free. */
int blocks_upload_delta(struct blocks_obj *o, struct blocks_delta *d, struct sky_err *e);
void blocks_delta_free(struct blocks_delta *d);

/* A new read-only fd (the caller closes it) on the object's cache file, for
 * uploading parts of an object still being written (fs/ streamed uploads):
 * once blocks_write returned, its bytes are there at their offsets.  No
 * block is fetched, nothing is synced: only ranges the caller knows were
 * written are meaningful.  The fd stays readable after a rename, a forget
 * or the last release (the data may then be gone or stale). */
int blocks_open_data(struct blocks_obj *o, int *fd, struct sky_err *e);

/* The version the object's content is based on (the etag it was got
 * with, or the last one committed): what an upload of its dirty content
 * replaces (issue 17's preconditions), "" for a new file.  Survives a
 * crash with the journal. */
void blocks_base_etag(struct blocks_obj *o, char *out, size_t size);

/* The cloud renamed version `old` of (cloud, path) to `etag` without
 * changing its bytes (a metadata edit: chmod, utime, xattr on a cloud
 * where those make a new version): a cached object based on `old` is
 * now based on `etag` (dirty or not).  Nothing cached, or based on
 * another version: nothing changes. */
int blocks_retag(struct blocks *b, const char *cloud, const char *path, const char *old,
                 const char *etag, struct sky_err *e);

/* A new file's dirty object, never uploaded (base ""), was moved in the
 * cache onto a name whose file the cloud holds as version `etag` (a rename
 * over it, blocks_rename): its upload now replaces that version (as an
 * upload of an edit of it would: If-Match), instead of creating the file.
 * Every block of such an object is dirty, so no delta is ever taken from
 * `etag`.  -EINVAL when the object has a base already; survives a crash
 * with the journal (a crash between the blocks_rename and this leaves a
 * base of "": the replayed upload then finds the file there and keeps its
 * content beside it as a conflict copy, losing nothing). */
int blocks_rebase_new(struct blocks_obj *o, const char *etag, struct sky_err *e);

/* The upload of the content as of blocks_prepare_upload succeeded and the
 * cloud now calls it `etag`: record checksums, clear dirty (unless written
 * again since), set the etag.  When the object was written or truncated
 * after blocks_prepare_upload it stays dirty with the new etag recorded:
 * upload again.  When it cannot be recorded (an error: the cache's disk
 * full), the object stays dirty and `etag` is remembered as this
 * machine's own version (blocks_is_landed). */
int blocks_committed(struct blocks_obj *o, const char *etag, struct sky_err *e);

/* An upload of the object's content, `size` bytes with modification time
 * `mtime_ns`, failed without an answer that says the cloud refused it (a
 * connection cut after the request went out, a server stopped while it
 * worked): the cloud may hold that version now, or not.  Journaled with
 * the object until an upload of it succeeds (blocks_committed), so that
 * a later upload, meeting a version that is not its base, can tell this
 * machine's own from another machine's (blocks_was_unanswered) instead
 * of keeping its content beside it as a conflict copy.  0 or the cache
 * database's error (then such an upload makes a needless conflict copy:
 * nothing is lost). */
int blocks_note_unanswered(struct blocks_obj *o, uint64_t size, int64_t mtime_ns,
                           struct sky_err *e);

/* Is a version of `size` bytes and modification time `mtime_ns`, as the
 * cloud reports them, one of the object's uploads that got no answer?
 * The times must be equal to the nanosecond: a cloud that keeps whole
 * seconds, or an object whose time is the server's (Last-Modified), is
 * taken for another machine's (a conflict copy: safe). */
bool blocks_was_unanswered(struct blocks_obj *o, uint64_t size, int64_t mtime_ns);

/* Is version `etag` of the object's path one this process uploaded but
 * could not record (blocks_committed failed after the cloud took it: the
 * cache's disk full)?  Then the next upload replaces it as this machine's
 * own.  Kept in memory only: after a crash such a version is taken for
 * another machine's (a conflict copy: safe). */
bool blocks_is_landed(struct blocks_obj *o, const char *etag);

/* The journal: call cb for every dirty object (after a crash: pending
 * uploads).  cb gets the object pinned; blocks_each_dirty releases it.
 * A non-zero return from cb stops the walk and is returned.  An object
 * whose cached data cannot be loaded (its file is gone) is skipped and the
 * first such error returned after the others were visited. */
typedef int (*blocks_dirty_cb)(void *arg, struct blocks_obj *o);
int blocks_each_dirty(struct blocks *b, blocks_dirty_cb cb, void *arg, struct sky_err *e);

#endif
