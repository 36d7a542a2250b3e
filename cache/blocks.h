/*
 * blocks.h - the block-level local data cache and the upload journal.
 *
 * Each cached object version lives in one sparse file under
 * <cache dir>/data/, cut into fixed-size blocks.  A SQLite database
 * (<cache dir>/blocks.db, WAL) records, per object, its cloud, path, etag,
 * size and whether it holds writes not yet uploaded (the journal), and per
 * block whether it is present, its xxh3 checksum and when it was last used.
 *
 * Reads are served from present blocks, each verified against its checksum
 * (a mismatch drops the block and fetches it again); missing blocks are
 * fetched through a callback the caller supplies (fs/ wraps the driver's
 * ranged read), so this module never knows which cloud is behind it.
 *
 * Writes go into the cache file and mark blocks dirty.  The object is
 * recorded as dirty in SQLite (synchronously) before blocks_write returns,
 * so after a crash blocks_each_dirty finds it and the next mount uploads
 * it.  After a successful upload fs/ calls blocks_committed.
 *
 * Eviction punches holes in least recently used blocks until the cache is
 * under max_size; objects that are open (held by blocks_get) or dirty are
 * never evicted.
 *
 * Thread-safe.  Used by fs/ and tools/ (cache stats/evict).
 */
#ifndef SKY_BLOCKS_H
#define SKY_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

struct blocks;
struct blocks_obj;

/* Fetch `len` bytes at `off` of the object from the cloud into buf.  Must
 * return 0 and set *got (short only at end of object) or a negative errno
 * with e filled. */
typedef int (*blocks_fetch_fn)(void *arg, uint64_t off, size_t len, void *buf,
                               size_t *got, struct sky_err *e);

struct blocks_stats {
    uint64_t objects;
    uint64_t dirty_objects;
    uint64_t blocks_present;
    uint64_t bytes_present;     /* block_size * blocks (last block: real size) */
    uint64_t max_size;
    uint64_t block_size;
    uint64_t hits, misses, corrupt;  /* since open */
};

/* Open the cache under `dir` (created if needed). */
int blocks_open(const char *dir, uint64_t block_size, uint64_t max_size,
                struct blocks **out, struct sky_err *e);
void blocks_close(struct blocks *b);

/* Get (pin) the cached object for (cloud, path).  If the cache holds it
 * with another etag and it is not dirty, its blocks are dropped and it
 * restarts empty with `etag` and `size`.  A dirty object is returned as is
 * (its local content wins until uploaded).  `etag` "" with `create` true
 * makes a new empty dirty-able object (new file).  Release with
 * blocks_release.  Two gets of the same (cloud, path) return the same
 * object (refcounted). */
int blocks_get(struct blocks *b, const char *cloud, const char *path, const char *etag,
               uint64_t size, struct blocks_obj **out, struct sky_err *e);
void blocks_release(struct blocks_obj *o);

/* Read into buf; fetches missing blocks through fetch(arg, ...). */
int blocks_read(struct blocks_obj *o, uint64_t off, size_t len, void *buf, size_t *got,
                blocks_fetch_fn fetch, void *arg, struct sky_err *e);

/* Write at off (extending the object if needed).  Partial blocks that are
 * not present are fetched first.  Journals the object as dirty. */
int blocks_write(struct blocks_obj *o, uint64_t off, const void *buf, size_t len,
                 blocks_fetch_fn fetch, void *arg, struct sky_err *e);

/* Set the object's size (shrink or grow with zeros).  Journals as dirty. */
int blocks_truncate(struct blocks_obj *o, uint64_t size, blocks_fetch_fn fetch, void *arg,
                    struct sky_err *e);

uint64_t blocks_size(struct blocks_obj *o);
bool blocks_is_dirty(struct blocks_obj *o);
const char *blocks_path(struct blocks_obj *o);   /* cloud path of the object */
const char *blocks_cloud(struct blocks_obj *o);

/* Make every block present (fetching what is missing), fsync the cache
 * file and the journal, and return a read-only fd on the cache file (owned
 * by the object; do not close) for the upload. */
int blocks_prepare_upload(struct blocks_obj *o, blocks_fetch_fn fetch, void *arg, int *fd,
                          struct sky_err *e);

/* The upload of the content as of blocks_prepare_upload succeeded and the
 * cloud now calls it `etag`: record checksums, clear dirty (unless written
 * again since), set the etag. */
int blocks_committed(struct blocks_obj *o, const char *etag, struct sky_err *e);

/* The object at (cloud, from) is now at (cloud, to); with `tree` true, so
 * is everything under from + "/". */
int blocks_rename(struct blocks *b, const char *cloud, const char *from, const char *to,
                  bool tree, struct sky_err *e);

/* Drop the cached object (cloud, path), dirty or not (the file was
 * deleted).  A pinned object is dropped when its last holder releases it. */
int blocks_forget(struct blocks *b, const char *cloud, const char *path, struct sky_err *e);

/* The journal: call cb for every dirty object (after a crash: pending
 * uploads).  cb gets the object pinned; blocks_each_dirty releases it. */
typedef int (*blocks_dirty_cb)(void *arg, struct blocks_obj *o);
int blocks_each_dirty(struct blocks *b, blocks_dirty_cb cb, void *arg, struct sky_err *e);

/* Evict LRU blocks of unpinned, clean objects until under max_size. */
int blocks_evict(struct blocks *b, struct sky_err *e);

int blocks_stats(struct blocks *b, struct blocks_stats *out, struct sky_err *e);

#endif
