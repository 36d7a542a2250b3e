/*
 * ops.h - what the files of the FUSE operation table share: ops.c (the
 * table, the helpers below, lookup, getattr, setattr, statfs) and
 * ops_dirs.c, ops_names.c, ops_files.c and ops_xattr.c (the operations
 * each names).  For those files only.
 */
#ifndef SKY_OPS_H
#define SKY_OPS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "../lib/err.h"
#include "skyfs.h"

/* Answer req with rc (0 or -errno); a failure's message (e) goes to the
 * log unless it is an everyday answer such as "no such file". */
void reply_err(fuse_req_t req, int rc, const struct sky_err *e);

/* ---- shared by the ops files (ops.c) ---- */

/* The mount a request belongs to. */
struct skyfs *ops_fs(fuse_req_t req);

/* The open-file handle behind fi->fh, and its open file. */
struct fhandle *ops_handle(struct fuse_file_info *fi);

struct ofile *ops_ofile(struct fuse_file_info *fi);

/* Give the kernel a handle on `of` (fi->fh); wrote: it changed the file
 * already (O_TRUNC).  Returns 0 or -ENOMEM. */
int ops_handle_new(struct skyfs *fs, struct fuse_file_info *fi, struct ofile *of, bool wrote);

/* The user making a request, with its supplementary groups (what the
 * .skyfs/search directory shows depends on who asks). */
void ops_requester(fuse_req_t req, struct sky_requester *who);

/* Load an entry and its cloud.  The root has no cloud. */
int ops_load(struct skyfs *fs, fuse_ino_t ino, struct meta_entry *ent, struct cloud **c,
             struct sky_err *e);

/* Join a directory path and a name into a cloud path (malloc'd). */
char *ops_child_path(const char *dir, const char *name);

/* The kernel's attribute and entry timeout for a cloud's entries. */
double ops_ttl_seconds(const struct cloud *c);

/* The stat of a cached entry, and the kernel entry (stat and timeouts);
 * ops_reply_entry answers a lookup-like request with it. */
void ops_fill_stat(struct skyfs *fs, const struct meta_entry *ent, struct stat *st);

void ops_fill_entry(struct skyfs *fs, const struct meta_entry *ent, const struct cloud *c,
                    struct fuse_entry_param *p);

void ops_reply_entry(fuse_req_t req, struct skyfs *fs, const struct meta_entry *ent,
                     const struct cloud *c);

/* Is entry ino a file made here and not uploaded yet (asked again once
 * its upload lock is held: an upload may have just sent it)? */
bool ops_still_local(struct skyfs *fs, uint64_t ino);

/* Load the parent of a new entry and build the child's path; checks that
 * the cloud may be written. */
int ops_prepare_new(struct skyfs *fs, fuse_ino_t parent, const char *name,
                    struct meta_entry *dir, struct cloud **c, char **path, struct sky_err *e);

/* The attributes of a new entry of `kind` made by the requester. */
void ops_new_attr(fuse_req_t req, enum sky_kind kind, mode_t mode, struct sky_attr *a);

/* Record a new child in the cache (its directory's times move) and give
 * its entry. */
int ops_add_child(struct skyfs *fs, uint64_t parent, const char *name,
                  const struct sky_attr *a, const char *link, struct meta_entry *out,
                  struct sky_err *e);

/* ---- the operations, by file ---- */

/* ops_dirs.c */
void sky_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void sky_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sky_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 struct fuse_file_info *fi);
void sky_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi);
void sky_readlink(fuse_req_t req, fuse_ino_t ino);
void sky_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sky_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);

/* ops_names.c */
void sky_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void sky_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                const char *newname, unsigned int flags);
void sky_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void sky_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);

/* ops_files.c */
void sky_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                struct fuse_file_info *fi);
void sky_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sky_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void sky_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void sky_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
               dev_t rdev);
void sky_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sky_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
              struct fuse_file_info *fi);
void sky_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sky_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
                   struct fuse_file_info *fi);

/* ops_xattr.c */
void sky_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void sky_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void sky_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                  size_t size, int flags);
void sky_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
