/* perm.c - see perm.h. */
#include "perm.h"

#include <unistd.h>

void sky_shown_init(struct sky_shown *s, uid_t uid, gid_t gid)
{
    *s = (struct sky_shown){ .uid = uid, .gid = gid };
}

void sky_shown_attr(const struct sky_shown *s, const struct sky_attr *a, mode_t *perm,
                    uid_t *uid, gid_t *gid)
{
    mode_t p;
    if (a->kind == SKY_LINK)
        p = (a->has & SKY_HAS_MODE) ? a->mode & 07777 : 0777;
    else if (a->has & SKY_HAS_MODE)
        p = (a->mode & 07777) & (s->has_umask ? ~s->umask : 07777);
    else if (s->has_umask)
        p = (a->kind == SKY_DIR ? 0777 : 0666) & ~s->umask;
    else
        p = a->kind == SKY_DIR ? 0755 : 0644;
    *perm = p;
    *uid = s->force_uid || !(a->has & SKY_HAS_UID) ? s->uid : a->uid;
    *gid = s->force_gid || !(a->has & SKY_HAS_GID) ? s->gid : a->gid;
}

bool sky_may_access(const struct sky_requester *r, mode_t perm, uid_t uid, gid_t gid, int want)
{
    if (r->uid == 0)
        return true;
    mode_t bits;
    if (r->uid == uid) {
        bits = (perm >> 6) & 7;
    } else {
        bool member = r->gid == gid;
        for (int i = 0; !member && i < r->ngroups; i++)
            member = r->groups[i] == gid;
        bits = member ? (perm >> 3) & 7 : perm & 7;
    }
    return ((mode_t)want & ~bits) == 0;
}
