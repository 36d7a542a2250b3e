/*
 * listahead.h - list subfolders ahead of a reader (the clouds' list_ahead
 * key).
 *
 * When a folder is opened for listing, its subfolders that were never
 * listed are queued to be listed in the background, so that a cold `find`
 * or `ls -R` finds them in the cache instead of waiting for one round
 * trip after another.  At most `list_ahead` listings run at once per
 * cloud (0: off), each on a thread of liveness.h's background refreshes
 * (keyed per folder, so never two listings of one folder at once), at a
 * lower CPU priority; none is queued or started while the cloud is
 * offline; the queue is bounded (LISTAHEAD_QUEUE_MAX folders, newest
 * first: a reader goes depth first; the oldest are dropped and listed
 * when the reader gets there).  A reader that needs a folder never listed
 * takes it out of the queue, or waits (at most LISTAHEAD_WAIT_MS) for its
 * listing ahead that runs, instead of sending a second one.  A listing ahead
 * does not queue its own subfolders: the reader's next opendir does, so
 * the listings stay one level ahead of the reader.
 *
 * Called by fs/ops_dirs.c (opendir), fs/refresh.c (a cold listing) and
 * fs/clouds.c (start and stop).
 */
#ifndef SKY_LISTAHEAD_H
#define SKY_LISTAHEAD_H

#include "skyfs.h"

#define LISTAHEAD_QUEUE_MAX 256     /* folders waiting, in all */
#define LISTAHEAD_WAIT_MS 1500      /* a reader waits this long for a listing ahead */

/* Set up (skyfs_open, after liveness_start): 0 or -ENOMEM. */
int listahead_start(struct skyfs *fs, struct sky_err *e);
/* Drop the queue and start nothing more (skyfs_close, before
 * liveness_stop, which waits for the listings that run). */
void listahead_stop(struct skyfs *fs);
/* Free what listahead_start made (after liveness_stop). */
void listahead_free(struct skyfs *fs);

/* Folder `dir_ino` of cloud c was opened for listing (its listing is in
 * the cache): queue its subfolders never listed, and start what the
 * cloud's bound allows.  Quiet: nothing is reported (a listing ahead that
 * fails is done again when the reader gets there). */
void listahead_dir(struct skyfs *fs, struct cloud *c, uint64_t dir_ino);

/* The reader is about to list folder `ino` of cloud c, never listed: a
 * queued listing ahead of it is dropped (false: the reader lists it);
 * one that runs is waited for, up to LISTAHEAD_WAIT_MS: true when it
 * ended meanwhile (the caller then finds the listing in the cache, unless
 * it failed). */
bool listahead_wait(struct skyfs *fs, struct cloud *c, uint64_t ino);

#endif
