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
 * Partial blocks.  A block is cut into chunks of 64 KiB (larger for 8 MiB
 * blocks: at most 64 chunks a block; a block of 64 KiB or less is one
 * chunk).  A random read (see Readahead) fetches only the chunks it
 * touches, in one ranged read per block, and the block is then partial:
 * SQLite records which chunks are present and each chunk's xxh3 checksum,
 * verified exactly as whole blocks are (a corrupt chunk is dropped and
 * fetched again, never served).  When a block's last missing chunk
 * arrives it becomes a whole block with one checksum.  Sequential reads,
 * readahead, writes that cover part of a block and uploads make blocks
 * whole (fetching only the missing chunks).  Sizes count partial blocks
 * at the bytes they hold.
 *
 * Writes go into the cache file and mark blocks dirty.  The object is
 * recorded as dirty in SQLite (synchronously) before blocks_write returns,
 * so after a crash blocks_each_dirty finds it and the next mount uploads
 * it.  After a successful upload fs/ calls blocks_committed.
 *
 * Eviction punches holes in least recently used blocks until the cache is
 * under max_size and the cache's file system has at least min_free bytes
 * free (blocks_set_floor); objects that are open (held by blocks_get) or
 * dirty are never evicted.  It runs at each last release, after reads that
 * fetched, after readahead, and before writes: a write that would leave
 * less than min_free free even once all clean data that can go is gone
 * fails with -ENOSPC before changing anything.
 *
 * Checksums are verified the first time a block is read after the object
 * is pinned by blocks_get (then trusted until the last release), so small
 * reads do not re-hash whole blocks.  For a sequential reader (one that
 * allows background work: a fetcher with clone) the next cached blocks
 * are verified ahead on the background threads.  Last-use times are kept in memory and
 * written to SQLite at the last release of an object.
 *
 * Readahead.  A read at the start of the object, or exactly where the
 * last read of it ended, starts a sequential run; later reads near where
 * the last one ended (within a block: the kernel's reads may arrive out
 * of order) continue it.  Sequential reads fetch whole blocks and grow a
 * window of blocks, up to 16, that background fetcher threads download in
 * parallel: at most 4 fetches per object and 8 threads in all, each fetch
 * a run of consecutive absent blocks of up to 16 MiB in one ranged read
 * (fewer, larger requests), whose blocks are kept one by one as each has
 * arrived whole (its readers go on while the rest comes).  Downloads go
 * into the cache file piece by piece as they arrive (the fetch callback
 * hands over pieces; see blocks_fetch_fn), checksummed on the way, so a
 * download holds no buffer of a block's size; a block (or chunk) is
 * marked present only once all of it arrived, and a download that fails
 * part way leaves nothing of it present.  Any other read is random: it resets
 * the window and fetches only the chunks it needs, until the object's
 * random reads turn out dense (many of its blocks touched within a short
 * window, relative to its size): its random reads then fetch whole
 * blocks, and for an object of at most a quarter of max_size the rest of
 * it is filled in the background (up to 4 runs at once, each job going on
 * with the next run until all is present, blocks_cancel_ahead or a
 * writer stops it).  A read of chunks already present and verified does
 * not wait for a download of the block's other chunks (that download
 * does not write them).  A background fetch
 * pins its object, so
 * neither release nor eviction takes the blocks away under it.
 *
 * Thread-safe.  Readers download a missing block without holding the
 * object's lock; the block is marked in flight and other readers of it
 * wait for that one download.  Writes, truncates, version changes and
 * commits first cancel queued readahead and wait for running downloads of
 * the object.  The fetch callback of blocks_write, _truncate and
 * _prepare_upload runs under the object's lock: it must not call
 * blocks_read, _write, _truncate, _prepare_upload or _committed on the
 * same object (blocks_size, _is_dirty, _path and _cloud take no lock and
 * are fine).  A background fetch callback runs on a fetcher thread.
 *
 * Used by fs/ and tools/ (cache stats/evict).
 */
#ifndef SKY_BLOCKS_H
#define SKY_BLOCKS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

struct blocks;
struct blocks_obj;

/* Takes `n` bytes of a fetch, found at offset `pos` of the range fetched
 * (pos 0 is the fetch's `off`): 0, or a negative errno when the fetch must
 * stop (blocks_fetch_fn then returns it). */
typedef int (*blocks_sink_fn)(void *sink_arg, uint64_t pos, const void *data, size_t n);

/* Fetch `len` bytes at `off` of the object from the cloud, handing them to
 * sink(sink_arg, ...) as they arrive: in order and back to back, except
 * that a fetch that retries may start again at pos 0 (the sink then takes
 * the bytes again; they must be the same bytes: the same version of the
 * object, as a ranged GET with If-Match gives).  Must return 0 once they
 * were all handed over (fewer only at the end of the object), or a
 * negative errno with e filled (the sink's own errno when it stopped the
 * fetch).  The block cache writes each piece into its file as it comes,
 * so a download costs no buffer of its size. */
typedef int (*blocks_fetch_fn)(void *arg, uint64_t off, size_t len, blocks_sink_fn sink,
                               void *sink_arg, struct sky_err *e);

struct blocks_stats {
    uint64_t objects;
    uint64_t dirty_objects;
    uint64_t dirty_bytes;       /* sizes of the dirty objects: bytes pending upload */
    uint64_t blocks_present;    /* blocks holding data, whole or in part */
    uint64_t blocks_partial;    /* of those, blocks holding only some chunks */
    uint64_t bytes_present;     /* bytes held (the last block and chunk: real size) */
    uint64_t max_size;
    uint64_t block_size;
    uint64_t hits, misses, corrupt;  /* blocks read, since open */
    uint64_t fetched_ahead;          /* blocks downloaded by readahead, since open */
    uint64_t verified_ahead;         /* cached blocks checked ahead of a reader */
};

/* How blocks_read_ahead fetches: fetch(arg, ...) for the blocks it needs
 * now; for readahead, clone(arg) makes a heap copy that a background fetch
 * owns (it may outlive the read; NULL when out of memory) and drop(copy)
 * frees it.  Without clone there is no readahead. */
struct blocks_fetcher {
    blocks_fetch_fn fetch;
    void *arg;
    void *(*clone)(void *arg);
    void (*drop)(void *copy);
};

/* Open the cache under `dir` (created if needed).  block_size must be a
 * power of two from 4 KiB to 8 MiB (-EINVAL).  The cache remembers its
 * block size: opening with another one drops the cached clean data, and is
 * refused (-EBUSY) while unsaved files cut in the old size wait for upload.
 * The daemon, owner of the cache folder, passes `repair`: the database is
 * checked, a damaged one replaced (cachedamage.h; repair says what was
 * done, for the log), and rows and files that describe nothing dropped.
 * Tools that only look (status, cache stats) pass NULL and change nothing
 * on disk beyond creating an absent cache. */
struct cache_repair;
int blocks_open(const char *dir, uint64_t block_size, uint64_t max_size,
                struct cache_repair *repair, struct blocks **out, struct sky_err *e);
/* Release every object first.  Stops the background fetchers (waiting for
 * running downloads; queued ones are dropped). */
void blocks_close(struct blocks *b);

/* Get (pin) the cached object for (cloud, path).  If the cache holds it
 * with another etag and it is not dirty, its blocks are dropped and it
 * restarts empty with `etag` and `size`.  A dirty object is returned as is
 * (its local content wins until uploaded).  An object not cached yet is
 * created empty (nothing present) with `etag` and `size`.  A new file is
 * got with etag "" and size 0: it has nothing to fetch, and is journaled
 * at its first write or truncate (blocks_truncate(o, 0, ...) journals an
 * empty new file).  "" must not be used for an existing cloud object.
 * Release with blocks_release.  Two gets of the same (cloud, path) return
 * the same object (refcounted). */
int blocks_get(struct blocks *b, const char *cloud, const char *path, const char *etag,
               uint64_t size, struct blocks_obj **out, struct sky_err *e);
/* blocks_get(b, cloud, path, "", 0, ...) of a file just made here: an
 * object not cached yet is created journaled (dirty, complete, empty) in
 * the same insert, so the blocks_truncate(o, 0, ...) that follows commits
 * nothing more. */
int blocks_get_new(struct blocks *b, const char *cloud, const char *path,
                   struct blocks_obj **out, struct sky_err *e);
/* The cloud holds version `etag` (of `size` bytes) of the object, not the
 * one it was got with, and nothing of that one was ever cached, fetched or
 * written: the object is based on `etag` from now on (an open file that
 * has read nothing yet takes the cloud's newer version).  -ESTALE when
 * some byte of its version is here (a reader may have seen it: versions
 * are never mixed). */
int blocks_take_version(struct blocks_obj *o, const char *etag, uint64_t size,
                        struct sky_err *e);

/* The last release writes last-use times, and evicts if the cache is over
 * max_size. */
void blocks_release(struct blocks_obj *o);

/* Read into buf; fetches missing blocks through fetch(arg, ...), no
 * readahead. */
int blocks_read(struct blocks_obj *o, uint64_t off, size_t len, void *buf, size_t *got,
                blocks_fetch_fn fetch, void *arg, struct sky_err *e);

/* Read into buf like blocks_read; when the object's reads are sequential
 * and f->clone is set, also queues the next blocks for background fetch
 * (never for a dirty object). */
int blocks_read_ahead(struct blocks_obj *o, uint64_t off, size_t len, void *buf, size_t *got,
                      const struct blocks_fetcher *f, struct sky_err *e);

/* Hands a read's bytes over where they are: `n` bytes at offset `off` of
 * the cache file `fd` (n is 0 at or past the end of the object).  Nothing
 * changes those bytes during the call (writers of the object wait for it
 * to end): it must copy or send them (pread, splice), and not call into
 * the object.  Calls for one object may run at once. */
typedef void (*blocks_emit_fn)(void *emit_arg, int fd, uint64_t off, size_t n);

/* blocks_read_ahead without the copy into a buffer: on success emit(...)
 * was called once with the bytes of [off, off+len) that exist.  On failure
 * it was not called. */
int blocks_read_to(struct blocks_obj *o, uint64_t off, size_t len,
                   const struct blocks_fetcher *f, blocks_emit_fn emit, void *emit_arg,
                   struct sky_err *e);

/* Name the calling thread's stop flag (NULL: none).  While it is named, a
 * read of this thread that waits for a block another thread is
 * downloading gives up with -EINTR soon after *flag becomes nonzero (the
 * download goes on for whoever else wants it).  fs/ names the flag of a
 * FUSE request that the kernel may interrupt (a killed process). */
void blocks_set_stop(const atomic_int *flag);

/* Cancel the object's queued readahead and wait for its running background
 * fetches: afterwards none uses a fetch arg cloned for this object.  Call
 * before the last release when what the args point to (a cloud
 * connection) may go away. */
void blocks_cancel_ahead(struct blocks_obj *o);

/* Write at off (extending the object if needed).  Blocks the write covers
 * only in part are made whole first (their missing chunks fetched); the
 * written blocks are whole and dirty.  Journals the object as dirty. */
int blocks_write(struct blocks_obj *o, uint64_t off, const void *buf, size_t len,
                 blocks_fetch_fn fetch, void *arg, struct sky_err *e);

/* Puts the `len` bytes a write brings at offset `at` of the cache file
 * `fd` (pwrite, or a splice from a pipe): 0 or -errno.  Runs under the
 * object's lock. */
typedef int (*blocks_copy_fn)(void *copy_arg, int fd, uint64_t at, size_t len);

/* blocks_write with the bytes coming from copy(copy_arg, ...) rather than
 * a buffer. */
int blocks_write_from(struct blocks_obj *o, uint64_t off, size_t len, blocks_copy_fn copy,
                      void *copy_arg, blocks_fetch_fn fetch, void *arg, struct sky_err *e);

/* Set the object's size (shrink or grow with zeros).  Journals as dirty. */
int blocks_truncate(struct blocks_obj *o, uint64_t size, blocks_fetch_fn fetch, void *arg,
                    struct sky_err *e);

uint64_t blocks_size(struct blocks_obj *o);
bool blocks_is_dirty(struct blocks_obj *o);
/* Is every byte of the object in the cache (all its blocks whole)? */
bool blocks_is_whole(struct blocks_obj *o);
/* Cloud path of the object; follows blocks_rename.  Every string returned
 * stays valid until the object's last release. */
const char *blocks_path(struct blocks_obj *o);
/* The cloud version (ETag) the object's bytes are based on, into buf:
 * what its missing blocks are fetched as ("" for one made here). */
void blocks_base_version(struct blocks_obj *o, char *buf, size_t size);
const char *blocks_cloud(struct blocks_obj *o);

/* The object at (cloud, from) is now at (cloud, to); with `tree` true, so
 * is everything under from + "/".  Whatever was cached at `to` (and, with
 * `tree`, under to + "/") is dropped as by blocks_forget.  Moving a tree
 * into itself (or onto an ancestor) is -EINVAL. */
int blocks_rename(struct blocks *b, const char *cloud, const char *from, const char *to,
                  bool tree, struct sky_err *e);

/* Drop the cached object (cloud, path), dirty or not (the file was
 * deleted).  A pinned object is dropped when its last holder releases it. */
int blocks_forget(struct blocks *b, const char *cloud, const char *path, struct sky_err *e);

/* What blocks_evict_under did. */
struct blocks_evicted {
    uint64_t files;     /* objects whose cached data was dropped */
    uint64_t bytes;     /* the bytes they held */
    uint64_t skipped;   /* objects kept: open (pinned) or not uploaded yet (dirty) */
};

/* Drop the cached data of object (cloud, path) and, with `tree`, of every
 * object under path + "/" (path "" with `tree`: every object of the
 * cloud), as by blocks_forget; objects pinned or dirty are kept and
 * counted as skipped.  Adds to *out. */
int blocks_evict_under(struct blocks *b, const char *cloud, const char *path, bool tree,
                       struct blocks_evicted *out, struct sky_err *e);

/* Evict LRU blocks of unpinned, clean objects until under max_size and
 * above the free-space floor (or until only pinned and dirty data is left;
 * that is not an error).  An object left without blocks is forgotten. */
int blocks_evict(struct blocks *b, struct sky_err *e);

/* Free bytes on the file system holding the cache directory `dir`: 0 with
 * *out set, or -errno (the floor is then not applied). */
typedef int (*blocks_free_fn)(void *arg, const char *dir, uint64_t *out);

/* Keep at least min_free bytes free on the cache's file system (0: no
 * floor, the default).  `probe` measures the free space (NULL: statvfs of
 * the cache directory; tests pass a fake); it is called without the
 * cache's locks held.  Call once, after blocks_open, before other
 * threads use the cache. */
void blocks_set_floor(struct blocks *b, uint64_t min_free, blocks_free_fn probe, void *arg);

/* Hold at most `cap` bytes (UINT64_MAX: no such bound): the cache folder
 * is under a disk quota an earlier mount met (reserve.h).  A write that
 * fails with EDQUOT lowers it (the cache keeps to what it held, less room
 * for the databases). */
void blocks_keep_to(struct blocks *b, uint64_t cap);

int blocks_stats(struct blocks *b, struct blocks_stats *out, struct sky_err *e);

/* The upload journal (blocks_prepare_upload, _committed, _each_dirty). */
#include "journal.h"

#endif
