/*
 * mount.h - helpers shared by the mount daemon (fs/mount.c) and the
 * `skyfs unmount` and `status` commands: whether a directory can be
 * mounted on, what the mount table says, and unmounting.  (Which daemon
 * serves a mountpoint: fs/pidfile.h.)
 */
#ifndef SKY_MOUNT_H
#define SKY_MOUNT_H

#include <stdbool.h>
#include <stddef.h>

#include "../lib/err.h"

/* 0 if mountpoint exists, is a directory and is not already mounted.  A
 * skyfs mountpoint left broken by a daemon that died (ENOTCONN) and
 * served by no daemon is cleared (lazy unmount, with a line on stderr
 * saying so); a broken one that a live daemon still holds is -EBUSY. */
int skyfs_check_mountpoint(const char *mountpoint, struct sky_err *e);

/* Whether the absolute path `mountpoint` is a mount point in this mount
 * namespace (/proc/self/mountinfo, nothing is touched); `fstype` (may be
 * NULL) gets the type of the mount on top, e.g. "fuse.skyfs". */
int skyfs_mount_lookup(const char *mountpoint, char *fstype, size_t size);

/* Unmount a FUSE mount: umount2 as root, else fusermount3 -u (-z when
 * lazy: detach now, finish when no longer busy).  0 or -errno (-EBUSY
 * for any fusermount3 failure, which prints its own reason). */
int skyfs_fuse_unmount(const char *mountpoint, bool lazy);

#endif
