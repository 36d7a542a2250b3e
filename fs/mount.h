/*
 * mount.h - helpers shared by the mount daemon (fs/mount.c) and the
 * `skyfs unmount` command: where a mount's pid file lives, and whether a
 * directory can be mounted on.
 */
#ifndef SKY_MOUNT_H
#define SKY_MOUNT_H

#include "../lib/err.h"

/* Path of the pid file for a mountpoint (malloc'd). */
char *skyfs_pidfile_path(const char *mountpoint);

/* 0 if mountpoint exists, is a directory and is not already mounted. */
int skyfs_check_mountpoint(const char *mountpoint, struct sky_err *e);

#endif
