/*
 * readahead.h - raise the kernel's readahead for one skyfs mount.
 *
 * The kernel reads a FUSE file ahead by its backing device's
 * read_ahead_kb, which starts at 128 KiB and cannot be raised through the
 * FUSE handshake.  With 128 KiB the daemon sees one small request after
 * another; with a few MiB the kernel keeps several requests in flight,
 * and sequential reads from the cache (or the cloud) overlap.  The only
 * knob is /sys/class/bdi/<major:minor>/read_ahead_kb, writable by root.
 *
 * Called by fs/ops_files.c once, at the first open (the FUSE handshake
 * must be over: it resets the value); the unit tests call
 * readahead_bdi_of.
 */
#ifndef SKY_READAHEAD_H
#define SKY_READAHEAD_H

#include <stddef.h>
#include <stdio.h>

#include "../lib/err.h"

/* How far ahead the kernel should read a skyfs file. */
#define READAHEAD_KIB 2048u

/* Find `mountpoint` (an absolute path) in a /proc/self/mountinfo stream
 * and write its device, "major:minor", to bdi: 0, or -ENOENT when it is
 * not there.  The last matching line wins (the mount on top). */
int readahead_bdi_of(FILE *mountinfo, const char *mountpoint, char *bdi, size_t size);

/* Raise the readahead of the mount at `mountpoint` to `kib` unless it is
 * that already or more: 0, or -errno with a message (not root, no sysfs).
 * Never touches the mount itself, so it is safe inside a FUSE handler. */
int readahead_raise(const char *mountpoint, unsigned kib, struct sky_err *e);

#endif
