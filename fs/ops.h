/*
 * ops.h - what the files of the FUSE operation table share: ops.c (the
 * table, and every operation but the extended attributes) and
 * ops_xattr.c (the extended attribute operations).  For fs/ only.
 */
#ifndef SKY_OPS_H
#define SKY_OPS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "../lib/err.h"

/* Answer req with rc (0 or -errno); a failure's message (e) goes to the
 * log unless it is an everyday answer such as "no such file". */
void reply_err(fuse_req_t req, int rc, const struct sky_err *e);

/* ops_xattr.c */
void sky_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void sky_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void sky_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                  size_t size, int flags);
void sky_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
