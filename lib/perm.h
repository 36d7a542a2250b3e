/*
 * perm.h - who owns what the mount shows, and who may see it.
 *
 * Objects in the clouds often carry no owner or mode (an S3 object another
 * tool wrote); the mount then shows an owner and a mode of its own.  The
 * rules live here once, because two places need the same answer: fs/
 * answering stat, and the search index (.skyfs/search and `skyfs search`)
 * deciding which hits a user may see.
 *
 *   - owner: the entry's stored uid/gid, else the mount's default (the
 *     user who mounted); the uid=/gid= mount options replace every
 *     entry's owner (as s3fs and rclone do);
 *   - mode: the stored mode, else 0644 for files, 0755 for directories;
 *     the umask= mount option removes its bits from every mode, stored or
 *     not (files without a mode are then 0666 & ~umask, directories 0777 &
 *     ~umask).  Symlinks show their stored mode or 0777 (Linux ignores
 *     it), never masked.
 *
 * sky_may_access applies the kernel's own rule (owner, then group, then
 * others; root may do anything) to a requester with supplementary groups.
 *
 * Used by fs/ (stat, the search directory) and cache/search.c.
 */
#ifndef SKY_PERM_H
#define SKY_PERM_H

#include <stdbool.h>
#include <sys/types.h>

#include "../backends/driver.h"

struct sky_shown {
    uid_t uid;                  /* owner of entries that carry none */
    gid_t gid;
    bool force_uid;             /* uid= given: every entry shows `uid` */
    bool force_gid;             /* gid= given: every entry shows `gid` */
    bool has_umask;             /* umask= given */
    mode_t umask;
};

/* Defaults: owner uid/gid for entries without one, nothing forced. */
void sky_shown_init(struct sky_shown *s, uid_t uid, gid_t gid);

/* The permission bits (07777), uid and gid the mount shows for `a`. */
void sky_shown_attr(const struct sky_shown *s, const struct sky_attr *a, mode_t *perm,
                    uid_t *uid, gid_t *gid);

#define SKY_MAX_GROUPS 64

/* A user asking: uid, primary gid and supplementary groups. */
struct sky_requester {
    uid_t uid;
    gid_t gid;
    int ngroups;
    gid_t groups[SKY_MAX_GROUPS];
};

/* May `r` do `want` (R_OK, W_OK, X_OK, or'ed) on something with these
 * permission bits and owner?  Root may do anything. */
bool sky_may_access(const struct sky_requester *r, mode_t perm, uid_t uid, gid_t gid, int want);

#endif
