/*
 * virtual.h - the hidden, read-only `.skyfs` directory at the mount root.
 *
 *   .skyfs/search/<query>/   one symlink per match of <query>, pointing at
 *                            the match's path in the mount, so that ls and
 *                            find users can search every cloud too.
 *
 * <query> is either a name pattern ("*.pdf", case-insensitive) or
 * criteria joined by '&': name=GLOB, iname=GLOB, cloud=NAME, path=PATH
 * (as seen in the mount, "docs/reports"), type=f|d|l, min=SIZE, max=SIZE,
 * meta=KEY=GLOB or meta=KEY (user metadata, up to 8), type_is=GLOB
 * (content type).
 * Example: ls ~/clouds/.skyfs/search/'iname=*.jpg&min=1M&meta=color=blue'
 * A name cannot hold '/', so values are %-decoded: path=docs%2Freports,
 * type_is=image%2Fjpeg (%26 is '&', %3D '=', %25 '%').  A query that
 * cannot work (an unknown criterion, type=x, min=lots) is EINVAL, and the
 * log says why.
 *
 * Privacy: a query directory belongs to the user who looked it up (mode
 * 0500, owned by that user); other users get their own, list only their
 * own, and see only hits whose directories they may list and reach
 * (cache/search.h, search_viewer).  A query directory unused for 60 s
 * (SKYFS_SEARCH_EXPIRY seconds, for tests) is forgotten.
 *
 *   .skyfs/metrics           the daemon's metrics in the Prometheus text
 *                            format (lib/metrics.h), read-only, rendered
 *                            at each open.
 *
 * `.skyfs` does not appear in listings of the root; it is reached by name.
 * Its xattr user.skyfs.requests lists each cloud's request count ("name N"
 * lines), so tests and people can see what went to the network (the
 * background crawl's requests are not counted there); its xattr
 * user.skyfs.crawls shows each cloud's crawl counters (crawl.h: "name
 * running 0|1 crawls N failures N entries N removed N last_ms N", or
 * "name off").  Its
 * xattr user.skyfs.evicted.TOKEN tells what the eviction asked with
 * TOKEN did ("files N bytes N skipped N"): `skyfs cache evict` sets
 * user.skyfs.evict = TOKEN on a path (fs/ops_xattr.c), then reads it here.
 *
 * Inodes of virtual entries have VIRT_INO_BASE set, far above anything the
 * metadata cache hands out.  Used only by fs/ops*.c.
 */
#ifndef SKY_VIRTUAL_H
#define SKY_VIRTUAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "../lib/err.h"
#include "../lib/perm.h"

#define VIRT_INO_BASE (1ULL << 62)
#define VIRT_DIR_NAME ".skyfs"

struct skyfs;
struct virt;
struct blocks_evicted;

int virt_new(const char *meta_db_path, const char *mountpoint, struct virt **out,
             struct sky_err *e);
void virt_free(struct virt *v);

static inline bool virt_is(uint64_t ino) { return ino >= VIRT_INO_BASE; }

/* Child `name` of virtual directory `parent` (or of the root when name is
 * VIRT_DIR_NAME and parent is the root), as user `who` sees it: fills *st
 * (st_ino set).  Every call takes the requesting user (fuse_req_ctx). */
int virt_lookup(struct skyfs *fs, const struct sky_requester *who, uint64_t parent,
                const char *name, struct stat *st, struct sky_err *e);
int virt_getattr(struct skyfs *fs, const struct sky_requester *who, uint64_t ino,
                 struct stat *st, struct sky_err *e);
int virt_readlink(struct skyfs *fs, const struct sky_requester *who, uint64_t ino, char *buf,
                  size_t size, struct sky_err *e);

/* Calls add(arg, name, st) for each child of a virtual directory. */
typedef int (*virt_add_fn)(void *arg, const char *name, const struct stat *st);
int virt_list(struct skyfs *fs, const struct sky_requester *who, uint64_t ino, virt_add_fn add,
              void *arg, struct sky_err *e);

/* Open the virtual file `ino` (.skyfs/metrics) for reading: its whole
 * text, rendered now, in *text (malloc'd, *len bytes), which the handle
 * keeps so that reads of one open see one snapshot.  -EISDIR for the
 * virtual directories, -EACCES for a write or for symlinks. */
int virt_open_file(struct skyfs *fs, uint64_t ino, int flags, char **text, size_t *len,
                   struct sky_err *e);

/* Remember what the eviction asked with `token` (len bytes) did, for
 * user.skyfs.evicted.TOKEN (the last few are kept). */
void virt_note_evicted(struct virt *v, const char *token, size_t len,
                       const struct blocks_evicted *done);

/* The value of xattr `name` on a virtual entry (malloc'd in *out). */
int virt_getxattr(struct skyfs *fs, uint64_t ino, const char *name, char **out, size_t *len,
                  struct sky_err *e);

#endif
