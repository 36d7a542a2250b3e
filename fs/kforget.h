/*
 * kforget.h - tell the kernel to forget names the cloud no longer has.
 *
 * The kernel keeps each name skyfs gave it (a lookup, a readdirplus) for
 * the cloud's TTL, and every `ls` renews it.  When a listing finds a file
 * removed on the cloud (by another machine or tool), the metadata cache
 * drops it at once, but the kernel would still answer a stat of it from
 * its own cache until the name's time runs out.  This module asks the
 * kernel to forget such names (fuse_lowlevel_notify_inval_entry).
 *
 * The notice cannot be sent from the handler that found the change: a
 * readdir holds its directory's lock in the kernel, and the notice waits
 * for that lock.  So names are queued (meta.h's meta_on_gone hook, called
 * with the cache's lock held: it only queues) and one thread sends them.
 * The queue is bounded; a name dropped when it is full only lasts until
 * its TTL, as before.
 *
 * Called by fs/mount.c: kforget_start once the session is mounted,
 * kforget_stop before it is unmounted; by ops_names.c: kforget_name for a name
 * whose entry the operation itself changed behind the kernel's back.
 */
#ifndef SKY_KFORGET_H
#define SKY_KFORGET_H

#include <stdint.h>

struct skyfs;

/* Hook the metadata cache and start the sending thread: 0 or -errno. */
int kforget_start(struct skyfs *fs);

/* Ask the kernel to forget the name `name` in directory `parent` (queued:
 * safe from any handler, also before replying to one that holds that
 * directory's lock).  Nothing when the thread is not running. */
void kforget_name(uint64_t parent, const char *name);

/* Unhook, stop the thread and drop what is still queued.  Safe when
 * kforget_start failed or was not called. */
void kforget_stop(struct skyfs *fs);

#endif
