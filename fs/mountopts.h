/*
 * mountopts.h - the -o options of `skyfs mount` and `mount.skyfs` (the
 * fourth field of an /etc/fstab line, or `mount -o`).
 *
 * One parser for both commands, so that fstab, `mount -o` and
 * `skyfs mount -o` take the same words:
 *
 *   ro, rw                  the whole mount read-only (the kernel refuses
 *                           writes with EROFS), or not (the default)
 *   uid=N, gid=N            the owner every file shows (a number or a
 *                           name), as in s3fs and rclone; default: the
 *                           stored owner, else the user who mounted
 *   umask=NNN               octal bits removed from every mode shown;
 *                           default: none (files without a stored mode
 *                           show 0644, directories 0755)
 *   allow_other             other users may use the mount (the default
 *                           when root mounts; a user needs
 *                           user_allow_other in /etc/fuse.conf)
 *   allow_root              only the mounting user and root may (instead
 *                           of root's default allow_other)
 *   default_permissions     accepted: the kernel always checks modes
 *   nonempty                mount over a directory that is not empty
 *                           (refused otherwise)
 *   nosuid, suid, nodev, dev, noexec, exec, noatime, sync, async,
 *   dirsync                 passed to the kernel
 *   defaults, auto, noauto, user, users, nouser, _netdev, nofail,
 *   atime, relatime, norelatime, strictatime, nodiratime, lazytime,
 *   x-*, comment=*          accepted and ignored (mount(8) and systemd
 *                           act on them)
 *
 * Anything else is an error that names the option.  Used by tools/main.c
 * (parsing) and fs/mount.c (applying).
 */
#ifndef SKY_MOUNTOPTS_H
#define SKY_MOUNTOPTS_H

#include <stdbool.h>
#include <sys/types.h>

#include "../lib/err.h"

struct mountopts {
    bool ro;
    bool allow_other, allow_root;   /* as given; neither: root's default applies */
    bool nonempty;
    bool has_uid, has_gid, has_umask;
    uid_t uid;
    gid_t gid;
    mode_t umask;
    char kernel[256];               /* pass-through options, comma-separated */
};

/* Add the comma-separated options of one -o to *o (start from a zeroed
 * struct; may be called once per -o).  -EINVAL with the option named. */
int mountopts_parse(struct mountopts *o, const char *text, struct sky_err *e);

/* The FUSE options for a mount with *o: "ro,allow_other,..." (no
 * fsname, subtype or max_read) into buf. */
void mountopts_fuse(const struct mountopts *o, bool as_root, char *buf, size_t size);

/* 0 if directory `dir` is empty or nonempty was given; else -ENOTEMPTY
 * with a message that says how to mount anyway. */
int mountopts_check_empty(const struct mountopts *o, const char *dir, struct sky_err *e);

#endif
