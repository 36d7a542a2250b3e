/*
 * openahead.h - fetch the next files of a folder ahead of a reader that
 * goes through it file by file (the clouds' open_ahead key).
 *
 * grep -r, rsync, tar and cp -r reading from the mount, md5sum *: each
 * opens the files of a folder one after another, in the order readdir
 * gave them (by name), and on a real network each cold file costs a
 * round trip or more before its first byte.  When a file is opened for
 * reading just after another file of the same folder whose name comes
 * before it (a reader going through the folder), the next `open_ahead`
 * regular files of the folder after it, of at most OPENAHEAD_FILE_MAX
 * bytes each, are fetched whole into the block cache in the background,
 * so the reader finds them there.  Each file is asked once per run of the
 * reader (the furthest one asked is remembered); at most
 * OPENAHEAD_RUNNING fetches run at once per cloud, each on a liveness.h
 * background thread at a lower CPU priority; the queue is bounded
 * (OPENAHEAD_QUEUE_MAX files, the oldest dropped).  A file already
 * cached, open, or holding local writes is left alone, none is asked
 * while its cloud is offline, and a fetch that fails is quiet (the
 * reader fetches the file itself when it gets there).  Fetched versions
 * are the ones the cache lists (the read asks for that ETag), so a file
 * changed on the cloud meanwhile is not fetched ahead.
 *
 * Called by fs/ops_files.c (open) and fs/clouds.c (start and stop).
 */
#ifndef SKY_OPENAHEAD_H
#define SKY_OPENAHEAD_H

#include "skyfs.h"

#define OPENAHEAD_FILE_MAX (1u << 20)   /* larger files: the reader's own readahead */
#define OPENAHEAD_RUNNING 8             /* fetches at once, per cloud */
#define OPENAHEAD_QUEUE_MAX 256         /* files waiting, in all */

/* Set up (skyfs_open, after liveness_start): 0 or -ENOMEM. */
int openahead_start(struct skyfs *fs, struct sky_err *e);
/* Drop the queue and start nothing more (skyfs_close, before
 * liveness_stop, which waits for the fetches that run). */
void openahead_stop(struct skyfs *fs);
/* Free what openahead_start made (after liveness_stop). */
void openahead_free(struct skyfs *fs);

/* File `ent` of cloud c was opened for reading: when that continues a
 * reader's way through its folder, queue the files after it and start
 * what the cloud's bound allows.  Quiet: nothing is reported. */
void openahead_opened(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent);

#endif
