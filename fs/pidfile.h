/*
 * pidfile.h - which process serves a mountpoint: the runtime folder and
 * the pid files in it.
 *
 * A daemon records itself in <runtime>/<mountpoint with / as _>.pid:
 * its pid, its start time (field 22 of /proc/PID/stat, so a recycled pid
 * is not mistaken for it), its mountpoint and its cache folder.  The
 * runtime folder is /run/skyfs for root, $XDG_RUNTIME_DIR/skyfs, else
 * /tmp/skyfs-UID.  Another user can create that last one first, with
 * links in it; so the folder is used only when it belongs to this user
 * and has mode 0700 (else the mount refuses and says why), and every
 * file in it is reached through the folder's descriptor without
 * following links.
 *
 * Used by fs/mount.c (the daemon writes and removes its file) and
 * tools/unmount.c and tools/status.c (read, verified).
 */
#ifndef SKY_PIDFILE_H
#define SKY_PIDFILE_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "../lib/err.h"

struct pidfile_info {
    pid_t pid;
    unsigned long long start_time;     /* clock ticks after boot */
    char mountpoint[PATH_MAX];
    char cache_dir[PATH_MAX];
};

/* Open (creating) this user's runtime folder, checked: a directory owned
 * by the effective uid with mode 0700.  Returns a descriptor, or -errno
 * with a message that names the folder and the fix. */
int pidfile_open_dir(struct sky_err *e);

/* Record this process as the daemon of `mountpoint` (absolute) in the
 * runtime folder `dirfd` (written aside and renamed into place). */
int pidfile_write(int dirfd, const char *mountpoint, const char *cache_dir,
                  struct sky_err *e);
/* Remove the file, if it names this process. */
void pidfile_remove(int dirfd, const char *mountpoint);

/* Read the file of `mountpoint`: 0, -ENOENT when there is none, other
 * -errno (an unsafe runtime folder) with a message. */
int pidfile_read(const char *mountpoint, struct pidfile_info *out, struct sky_err *e);

/* Whether the process the file names still runs and is the same process
 * (same start time; a zombie counts as gone: its work is done). */
bool pidfile_daemon_alive(const struct pidfile_info *info);

/* Start time of a process (field 22 of /proc/PID/stat); 0 if it is gone
 * or a zombie. */
unsigned long long pidfile_process_start(pid_t pid);

/* Absolute form of `path` worked out from the text alone (a mountpoint
 * must not be touched, its daemon may hang). */
void pidfile_abspath(const char *path, char *out, size_t size);

#endif
