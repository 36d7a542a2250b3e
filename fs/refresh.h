/*
 * refresh.h - bringing the metadata cache up to date from the clouds.
 *
 * fs/ops.c calls these when what the cache holds is older than the
 * cloud's ttl (or missing).  While a cloud is offline (clouds.c) none of
 * them asks it: they fail at once with -EHOSTDOWN and the caller answers
 * from the cache.
 */
#ifndef SKY_REFRESH_H
#define SKY_REFRESH_H

#include "skyfs.h"

/* Ask the driver for the attributes of `path` (child `name` of directory
 * inode `parent`), store them, and give the stored entry in *out.  `hint`
 * (enum sky_stat_hint) is what the cache expects there: the driver asks
 * the likely question first (for a name the cache lacks: refresh_hint_in). */
int refresh_entry(struct skyfs *fs, struct cloud *c, uint64_t parent, const char *name,
                  const char *path, int hint, struct meta_entry *out, struct sky_err *e);

/* refresh_entry for the entry the cache holds as `known` (its kind is
 * the hint): when the cloud is slow to answer (liveness.h) this gives
 * -ETIMEDOUT after a moment and the refresh goes on in the background;
 * the caller answers with the cached entry, as it does for -EHOSTDOWN. */
int refresh_known_entry(struct skyfs *fs, struct cloud *c, const struct meta_entry *known,
                        struct meta_entry *out, struct sky_err *e);

/* The hint for a name the cache does not hold in folder `dir`: a name
 * its (stale) listing lacks is most likely new; in a folder never listed
 * nothing is known. */
int refresh_hint_in(const struct meta_entry *dir);

/* Make sure the cached children of directory `dir` are no older than the
 * ttl.  When the cloud cannot be reached (or is offline), or is slow to
 * answer (liveness.h), an earlier listing is served instead (0); a slow
 * listing goes on in the background and updates the cache when it ends. */
int refresh_listing(struct skyfs *fs, struct cloud *c, const struct meta_entry *dir,
                    struct sky_err *e);

/* List directory `path` (inode `ino`) from the cloud into the cache now,
 * in the caller's thread (fs/listahead.c's background listings): 0, or
 * -EHOSTDOWN at once while the cloud is offline, or the listing's error. */
int refresh_list_now(struct skyfs *fs, struct cloud *c, uint64_t ino, const char *path,
                     struct sky_err *e);

#endif
