/*
 * stream.h - uploads that start while a file is still being written.
 *
 * Without streams, writing a large file costs the time to write it plus
 * the time to upload it at close.  A stream sends the file while its writer
 * goes on, through the driver's streamed-upload calls (backends/driver.h),
 * so that close costs about the larger of the two.
 *
 * How.  files.c starts tracking a file when it is empty (just created,
 * opened with O_TRUNC, truncated to 0) and reports each write and truncate
 * around the change.  The stream keeps `written`, the prefix [0, written)
 * written contiguously since the file was empty.  Once that prefix holds
 * STREAM_START_PARTS parts, files.c begins the upload (stream_begin): a
 * worker calls the driver's upload_begin, then sends every whole part below
 * `written` as the writer passes it.  Bounded: at most STREAM_FILE_PARTS
 * parts of one file at a time, STREAM_THREADS workers for the whole mount;
 * each part is read with pread from the block cache's file, never copied
 * whole into memory.  At close or fsync, files.c calls stream_finish: it
 * waits for the parts being sent, and the driver sends the rest and makes
 * the object appear (then files.c records it with blocks_committed).
 *
 * Correctness first.  A write or truncate below `sent` (the end of the
 * parts handed out), a part or a begin that fails, or a rename of the file
 * makes the stream dead: stream_finish refuses it, it is dropped (the driver
 * aborts the upload, from a worker) and the file goes up whole, as without
 * streams.  A part is never cut past a write in progress.  Nothing counts
 * as uploaded until stream_finish succeeds and the journal is untouched:
 * after a crash the next mount uploads the whole file from the cache (an
 * S3 multipart upload left open keeps its parts on the server until a
 * lifecycle rule for incomplete uploads removes them).
 *
 * fsync (or any flush) in the middle of a stream finishes it: the object
 * on the server is complete as of that moment.  The file is not empty
 * then, so later writes go up whole at the next close or fsync.  A flush
 * before the upload began leaves the stream tracking.
 *
 * Used by fs/files.c only.  Calls for one stream are serialised by its
 * file's lock; the pool's workers synchronise with them inside stream.c.
 */
#ifndef SKY_STREAM_H
#define SKY_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "../backends/driver.h"
#include "../lib/err.h"

#define STREAM_THREADS     4    /* workers sending parts, for the whole mount */
#define STREAM_FILE_PARTS  4    /* parts of one file being sent at most */
#define STREAM_START_PARTS 2    /* begin once the written prefix holds this many */

struct cloud;
struct stream;
struct stream_pool;

/* The mount's pool; its threads start with the first stream. */
int stream_pool_new(struct stream_pool **out, struct sky_err *e);
/* Lets the parts being sent end and the aborts of dropped streams run;
 * afterwards no driver is called.  Streams still tracked are left alone. */
void stream_pool_free(struct stream_pool *p);

/* Start tracking an empty file of cloud c.  NULL when the cloud's driver
 * has no streamed uploads or no worker can run: the file then simply goes
 * up whole. */
struct stream *stream_track(struct stream_pool *p, struct cloud *c);

/* Around a write of [off, off + len): stream_write_begins before it
 * changes the cache, stream_write_ends after (ok: it succeeded).  _ends
 * returns true when the upload should begin now (stream_begin). */
void stream_write_begins(struct stream *s, uint64_t off);
bool stream_write_ends(struct stream *s, uint64_t off, uint64_t len, bool ok);
/* Before truncating to `size` (not 0: files.c drops the stream then). */
void stream_truncates(struct stream *s, uint64_t size);

/* Begin the upload to `path` with metadata `attr` as known now and the
 * cloud metadata `meta` (copied; may be NULL) the object appears with;
 * parts are read from `fd`, which the stream takes over (and closes).
 * Returns at once: a worker makes the request. */
void stream_begin(struct stream *s, const char *path, const struct sky_attr *attr,
                  const struct sky_objmeta *meta, int fd);
/* Has stream_begin been called? */
bool stream_started(const struct stream *s);

/* Finish a started stream and free it: wait for the parts being sent, then
 * have the driver send [sent, size) of `fd` (the file as synced by
 * blocks_prepare_upload) and commit with `attr` and the cloud metadata
 * `meta` (may be NULL: stream_begin's); *out as for the driver's write.
 * `path` is where the file is now.  Returns 0, 1 when the stream cannot
 * be used (dead, renamed: nothing sent counts, upload the file whole), or
 * the driver's error (upload whole, unless unreachable). */
int stream_finish(struct stream *s, int fd, uint64_t size, const char *path,
                  const struct sky_attr *attr, const struct sky_objmeta *meta,
                  struct sky_attr *out, struct sky_err *e);

/* Let go of a stream: what was sent is aborted by a worker, which frees
 * it.  Returns at once. */
void stream_drop(struct stream *s);

#endif
