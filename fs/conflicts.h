/*
 * conflicts.h - what skyfs remembers about conflicts with other machines
 * (issue 17), per cloud: the conflict copies it made (an upload whose
 * precondition failed was stored beside the file as
 * NAME.conflict-HOST-YYYYMMDD-HHMMSS[.EXT]), the deletes it did not make
 * (the file had changed elsewhere), how many conflicts there were, and
 * how the cloud checks preconditions (driver.h enum sky_guarantee).
 *
 * Kept in <cache dir>/conflicts/<cloud>, rewritten on each change, so
 * that `skyfs status` lists them, mounted or not, until they are resolved:
 * a conflict copy is resolved once it is removed or renamed (through the
 * mount, or found gone by a listing).  fs/ (files.c, ops_names.c,
 * ops_files.c, clouds.c) calls the writers; tools/status.c calls conflicts_read.  Thread-safe.
 */
#ifndef SKY_FS_CONFLICTS_H
#define SKY_FS_CONFLICTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../lib/err.h"

struct conflicts;

/* One remembered conflict. */
struct conflict {
    char *what;         /* "upload" (a copy was made) or "delete" (kept the file) */
    char *path;         /* the file, in the cloud */
    char *copy;         /* the conflict copy, or NULL (a delete) */
    int64_t at;         /* when, seconds since the epoch */
};

/* What a cloud's file says. */
struct conflicts_view {
    int guarantee;          /* enum sky_guarantee */
    char why[256];
    uint64_t count;         /* conflicts ever met with this cache */
    size_t n;
    struct conflict *items; /* the unresolved ones */
};

/* The state of cloud `cloud` of cache `cache_dir` (what an earlier mount
 * left is read back).  NULL only when out of memory. */
struct conflicts *conflicts_open(const char *cache_dir, const char *cloud);
void conflicts_free(struct conflicts *cf);

/* The name of the conflict copy of `path` ("dir/a.txt" ->
 * "dir/a.conflict-HOST-20261205-071500.txt"; a dot file or a name without
 * extension gets the suffix at its end) made at `when` by host `host`,
 * with "-N" before the extension when n > 1.  Into out[size]: 0, or
 * -ENAMETOOLONG when the name would pass 255 bytes. */
int conflict_copy_name(const char *path, const char *host, time_t when, unsigned n, char *out,
                       size_t size);
/* This machine's name for conflict copies (gethostname, '/' and spaces
 * replaced). */
void conflict_host(char *out, size_t size);

/* Store a conflict copy of `path` under the first name free for it: the
 * names of conflict_copy_name (this machine's host, the time now, n = 1
 * to 9) are handed to `put` in turn while it answers `taken` (that name
 * is in use).  Returns put's answer for the last name tried, that name in
 * copy[size] (`taken` when all nine were), or 1, e untouched, when the
 * name would be too long: the caller says what that leaves undone.  Used
 * by uploads (files.c), renames (ops_names.c) and symlinks (localdirs.c)
 * that met another machine's change. */
typedef int (*conflict_put_fn)(void *arg, const char *copy, struct sky_err *e);
int conflict_copy_put(const char *path, int taken, conflict_put_fn put, void *arg, char *copy,
                      size_t size, struct sky_err *e);

/* Remember a conflict (copy may be NULL) and count it. */
void conflicts_add(struct conflicts *cf, const char *what, const char *path, const char *copy);
/* `path` was removed or renamed away: a conflict copy at path is resolved;
 * a delete conflict of the file path is resolved too.  Returns whether
 * something was resolved. */
bool conflicts_gone(struct conflicts *cf, const char *path);
/* Is `path` a conflict copy still listed? */
bool conflicts_is_copy(struct conflicts *cf, const char *path);
/* Record how the cloud checks preconditions now (rewrites the file when
 * that changed). */
void conflicts_set_guarantee(struct conflicts *cf, int guarantee, const char *why);
/* How many conflicts since this cache was made. */
uint64_t conflicts_count(struct conflicts *cf);

/* Read what the daemon wrote for `cloud`: 0 (an absent file is an empty
 * view, guarantee 0), or -errno.  Free with conflicts_view_free. */
int conflicts_read(const char *cache_dir, const char *cloud, struct conflicts_view *v);
void conflicts_view_free(struct conflicts_view *v);

#endif
