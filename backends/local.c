/*
 * local.c - the `local` cloud kind: a directory on this machine acting as a
 * cloud.
 *
 * Every call works relative to the cloud's root directory descriptor with
 * the *at() family, so paths never need to be joined for the common calls.
 * A "write" is an upload: the new content is copied into a hidden temporary
 * file next to the target (its data extents only, so sparse files stay
 * sparse) and renamed over it, so other readers of the
 * folder see either the old or the new file, never half of one; user
 * extended attributes of the old file are carried over.  A write returns
 * once the file and its name are on the folder's disk (fdatasync of the
 * file, then fsync of its folder): the block cache forgets what it
 * uploaded, so a power cut of that disk must not take it back.  The etag is made
 * of inode, size and mtime, so any change made directly in the folder shows
 * up as a new version.
 *
 * Paths longer than PATH_MAX cannot go to one *at() call: for those the
 * directories are opened one component at a time (struct at), never
 * following a symlink on the way (fs/ never passes a path through one).
 *
 * FIFOs, sockets and device nodes are real nodes (mknodat).  Hard links
 * are real too (linkat): a file's inode number is its file_id, and a write
 * to a file with several names goes into the file itself instead of a
 * renamed copy, so every name sees it.
 *
 * Cloud metadata: the user.* extended attributes are the user metadata;
 * listings read them (a listxattr per entry, and a getxattr per
 * attribute), so the index always has them.  A folder has no content type
 * or storage class.
 */
#include "driver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../lib/config.h"
#include "../lib/log.h"

#define TMP_PREFIX ".skyfs-tmp-"

struct local {
    char *name;      /* cloud name, for messages */
    char *root;      /* absolute path of the folder */
    int root_fd;
    atomic_uint delta_logged;   /* reasons for a whole write already logged (write_delta) */
};

static const char *rel(const char *path)
{
    return *path ? path : ".";
}

/* Where a cloud path is for the *at() calls: `name` in directory `dfd`.
 * A path shorter than PATH_MAX is the root fd and the path itself; a
 * longer one is its parent directory, opened component by component, and
 * its last component. */
struct at {
    int dfd;
    const char *name;
    int own_fd;         /* dfd when we opened it (at_close closes it), else -1 */
};

static int at_open(struct local *l, const char *path, struct at *at)
{
    at->dfd = l->root_fd;
    at->name = rel(path);
    at->own_fd = -1;
    if (strlen(l->root) + strlen(path) + 2 < PATH_MAX)
        return 0;
    const char *slash = strrchr(path, '/');
    int fd = l->root_fd;
    for (const char *p = path; p < slash;) {
        const char *end = memchr(p, '/', (size_t)(slash - p));
        if (!end)
            end = slash;
        char comp[NAME_MAX + 1];
        if ((size_t)(end - p) > NAME_MAX) {
            errno = ENAMETOOLONG;
        } else {
            memcpy(comp, p, (size_t)(end - p));
            comp[end - p] = '\0';
        }
        int next = (size_t)(end - p) > NAME_MAX ? -1 :
                   openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        if (fd != l->root_fd)
            close(fd);
        if (next < 0) {
            errno = err == ELOOP ? ENOTDIR : err;
            return -1;
        }
        fd = next;
        p = end + 1;
    }
    at->dfd = at->own_fd = fd;
    at->name = slash + 1;
    return 0;
}

static void at_close(struct at *at)
{
    if (at->own_fd >= 0) {
        int err = errno;
        close(at->own_fd);
        errno = err;
    }
    at->own_fd = -1;
}

/* A path for the calls that take only whole paths (xattrs): root/path, or
 * through /proc/self/fd when that would be too long.  malloc'd. */
static char *at_full_path(struct local *l, const char *path, const struct at *at)
{
    char *p;
    int n = at->own_fd >= 0 ? asprintf(&p, "/proc/self/fd/%d/%s", at->dfd, at->name)
                            : asprintf(&p, "%s/%s", l->root, path);
    return n < 0 ? NULL : p;
}

static int fail_errno(struct local *l, struct sky_err *e, const char *op, const char *path)
{
    int err = errno ? errno : EIO;
    return sky_fail(e, err, "local cloud '%s': %s \"%s\": %s", l->name, op, path, strerror(err));
}

static void attr_from_stat(const struct stat *st, struct sky_attr *a)
{
    memset(a, 0, sizeof *a);
    a->kind = (enum sky_kind)sky_kind_of_mode(st->st_mode);
    if (!a->kind)
        a->kind = SKY_FILE;
    a->size = a->kind == SKY_FILE || a->kind == SKY_LINK ? (uint64_t)st->st_size : 0;
    a->nlink = (uint32_t)st->st_nlink;
    a->file_id = a->kind == SKY_DIR ? 0 : (uint64_t)st->st_ino;
    if (a->kind == SKY_CHR || a->kind == SKY_BLK)
        a->rdev = (uint64_t)st->st_rdev;
    a->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    a->atime_ns = (int64_t)st->st_atim.tv_sec * 1000000000LL + st->st_atim.tv_nsec;
    a->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
    a->mode = st->st_mode & 07777;
    a->uid = st->st_uid;
    a->gid = st->st_gid;
    a->has = SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME | SKY_HAS_ATIME |
             SKY_HAS_CTIME;
    if (a->kind != SKY_DIR)
        snprintf(a->etag, sizeof a->etag, "%llx-%llx-%llx", (unsigned long long)st->st_ino,
                 (unsigned long long)st->st_size, (unsigned long long)a->mtime_ns);
}

static int local_open(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e)
{
    const char *path = sky_cloud_get(cfg, "path");
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return sky_fail(e, ENOENT, "%s:%d: path = %s is not an existing directory; create it or "
                        "correct the path", cfg->file, sky_cloud_line(cfg, "path"), path);
    struct local *l = calloc(1, sizeof *l);
    if (!l)
        return sky_fail(e, ENOMEM, "out of memory");
    l->name = strdup(cfg->name);
    l->root = realpath(path, NULL);
    l->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!l->name || !l->root || l->root_fd < 0) {
        int rc = fail_errno(l, e, "open", path);
        free(l->name);
        free(l->root);
        if (l->root_fd >= 0)
            close(l->root_fd);
        free(l);
        return rc;
    }
    *ctx = l;
    return 0;
}

static void local_close(void *ctx)
{
    struct local *l = ctx;
    close(l->root_fd);
    free(l->name);
    free(l->root);
    free(l);
}

/* The user.* xattrs of the file at full path p into m (has_user set).
 * Files on filesystems without xattrs simply have none. */
static int read_user_xattrs(const char *p, struct sky_objmeta *m)
{
    m->has_user = true;
    ssize_t len = llistxattr(p, NULL, 0);
    char *names = len > 0 ? malloc((size_t)len) : NULL;
    if (len > 0 && !names)
        return -ENOMEM;
    if (names)
        len = llistxattr(p, names, (size_t)len);
    int rc = 0;
    for (ssize_t i = 0; rc == 0 && names && i < len; i += (ssize_t)strlen(names + i) + 1) {
        const char *name = names + i;
        if (strncmp(name, "user.", 5) != 0 || !name[5])
            continue;
        ssize_t vlen = lgetxattr(p, name, NULL, 0);
        char *v = vlen >= 0 ? malloc((size_t)vlen + 1) : NULL;
        if (v)
            vlen = lgetxattr(p, name, v, (size_t)vlen);
        if (v && vlen >= 0)
            rc = sky_objmeta_add_user(m, name + 5, v, (size_t)vlen);
        else if (vlen >= 0 && !v)
            rc = -ENOMEM;
        free(v);
    }
    free(names);
    return rc;
}

/* Full path of `name` in directory `dir` of the cloud, or (dir NULL) in
 * the directory open as `dfd`, in a reusable buffer. */
static const char *entry_path(struct local *l, const char *dir, int dfd, const char *name,
                              char **buf, size_t *cap)
{
    size_t need = (dir ? strlen(l->root) + strlen(dir) : 32) + strlen(name) + 3;
    if (need > *cap) {
        char *nb = realloc(*buf, need);
        if (!nb)
            return NULL;
        *buf = nb;
        *cap = need;
    }
    if (dir)
        snprintf(*buf, *cap, "%s/%s%s%s", l->root, dir, *dir ? "/" : "", name);
    else
        snprintf(*buf, *cap, "/proc/self/fd/%d/%s", dfd, name);
    return *buf;
}

static int local_list(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    int fd = at_open(l, dir, &at) ? -1
                                  : openat(at.dfd, at.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    at_close(&at);
    if (fd < 0)
        return fail_errno(l, e, "list", dir);
    bool long_dir = strlen(l->root) + strlen(dir) + NAME_MAX + 3 >= PATH_MAX;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return fail_errno(l, e, "list", dir);
    }
    int rc = 0;
    char *pbuf = NULL;
    size_t pcap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strncmp(n, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
            continue;
        struct stat st;
        if (fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* vanished meanwhile */
        if (!sky_kind_of_mode(st.st_mode)) {
            LOG_WARN("local cloud '%s': skipping \"%s%s%s\": not a kind of file skyfs shows",
                     l->name, dir, *dir ? "/" : "", n);
            continue;
        }
        struct sky_dirent ent = { .name = n };
        char target[4096];
        attr_from_stat(&st, &ent.attr);
        if (S_ISLNK(st.st_mode)) {
            ssize_t len = readlinkat(fd, n, target, sizeof target - 1);
            if (len >= 0) {
                target[len] = '\0';
                ent.link = target;
            }
        }
        struct sky_objmeta meta = { 0 };
        const char *full = long_dir ? entry_path(l, NULL, fd, n, &pbuf, &pcap)
                                    : entry_path(l, dir, -1, n, &pbuf, &pcap);
        rc = full ? read_user_xattrs(full, &meta) : -ENOMEM;
        ent.meta = &meta;
        if (rc == 0)
            rc = cb(arg, &ent);
        sky_objmeta_free(&meta);
        if (rc)
            break;
    }
    free(pbuf);
    closedir(d);
    if (rc == -ENOMEM)
        return sky_fail(e, ENOMEM, "out of memory");
    return rc;
}

static int local_stat(void *ctx, const char *path, struct sky_attr *out, struct sky_err *e)
{
    struct local *l = ctx;
    struct stat st;
    struct at at;
    int rc = at_open(l, path, &at) ? -1 : fstatat(at.dfd, at.name, &st, AT_SYMLINK_NOFOLLOW);
    at_close(&at);
    if (rc != 0)
        return fail_errno(l, e, "stat", path);
    attr_from_stat(&st, out);
    return 0;
}

/* Open path for reading, checking that it still has `etag` (if given). */
static int open_for_read(struct local *l, const char *path, const char *etag, int *fd,
                         struct sky_err *e)
{
    struct at at;
    *fd = at_open(l, path, &at) ? -1 : openat(at.dfd, at.name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    at_close(&at);
    if (*fd < 0)
        return fail_errno(l, e, "read", path);
    if (etag && *etag) {
        struct stat st;
        struct sky_attr a;
        fstat(*fd, &st);
        attr_from_stat(&st, &a);
        if (strcmp(a.etag, etag) != 0) {
            close(*fd);
            return sky_fail(e, ESTALE, "local cloud '%s': \"%s\" changed since it was listed",
                            l->name, path);
        }
    }
    return 0;
}

/* pread until `len` bytes or the end of the file; *got = bytes read. */
static int read_fully(struct local *l, int fd, const char *path, uint64_t off, size_t len,
                      void *buf, size_t *got, struct sky_err *e)
{
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = fail_errno(l, e, "read", path);
            break;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return rc;
}

/* The range in pieces of a small buffer on the stack. */
static int local_read(void *ctx, const char *path, const char *etag, uint64_t off, uint64_t len,
                      sky_sink_fn sink, void *sink_arg, struct sky_err *e)
{
    struct local *l = ctx;
    int fd;
    int rc = open_for_read(l, path, etag, &fd, e);
    if (rc)
        return rc;
    char buf[1 << 16];
    for (uint64_t pos = 0; rc == 0 && pos < len;) {
        size_t want = len - pos < sizeof buf ? (size_t)(len - pos) : sizeof buf, got;
        rc = read_fully(l, fd, path, off + pos, want, buf, &got, e);
        if (rc == 0 && got > 0 && (rc = sink(sink_arg, pos, buf, got)) < 0)
            rc = sky_fail(e, -rc, "local cloud '%s': read \"%s\": the receiver failed: %s",
                          l->name, path, strerror(-rc));
        if (got < want)
            break;                          /* end of the file */
        pos += got;
    }
    close(fd);
    return rc;
}

/* Copy bytes [off, off + len) of `from` to the same offset of `to`. */
static int copy_range(int from, int to, uint64_t off, uint64_t len)
{
    uint64_t done = 0;
    char buf[1 << 16];
    while (done < len) {
        loff_t in_off = (loff_t)(off + done), out_off = in_off;
        ssize_t n = copy_file_range(from, &in_off, to, &out_off, len - done, 0);
        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
            size_t want = len - done < sizeof buf ? len - done : sizeof buf;
            n = pread(from, buf, want, (off_t)(off + done));
            if (n > 0 && pwrite(to, buf, (size_t)n, (off_t)(off + done)) != n)
                return -1;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) { /* source shorter than promised */
            errno = EIO;
            return -1;
        }
        done += (uint64_t)n;
    }
    return 0;
}

/* Copy the data extents of `from` within [pos, size) to the same offsets
 * of `to`, whose bytes there are holes already: holes stay holes (only the
 * extents SEEK_DATA/SEEK_HOLE report are copied; copy_file_range alone
 * writes a hole as zeros, so one byte written at 1 GiB would allocate 1
 * GiB).  A file system without SEEK_DATA (EINVAL) gets the whole range
 * copied. */
static int copy_extents(int from, int to, uint64_t pos, uint64_t size)
{
    while (pos < size) {
        off_t data = lseek(from, (off_t)pos, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break;                          /* only a hole is left */
        if (data < 0 && errno != EINVAL)
            return -1;
        off_t hole = data < 0 ? (off_t)size : lseek(from, data, SEEK_HOLE);
        if (data < 0)
            data = (off_t)pos;
        if (hole < 0)
            return -1;
        if ((uint64_t)data >= size)
            break;
        uint64_t end = (uint64_t)hole < size ? (uint64_t)hole : size;
        if (copy_range(from, to, (uint64_t)data, end - (uint64_t)data) != 0)
            return -1;
        pos = end;
    }
    return 0;
}

/* Copy the first `size` bytes of `from` into the empty file `to`, keeping
 * holes as holes (copy_extents), and give `to` that size. */
static int copy_sparse(int from, int to, uint64_t size)
{
    if (copy_extents(from, to, 0, size) != 0)
        return -1;
    return ftruncate(to, (off_t)size);
}

/* Carry user.* xattrs from the file being replaced to the new one. */
static void copy_user_xattrs(int from, int to)
{
    char names[8192], value[8192];
    ssize_t len = flistxattr(from, names, sizeof names);
    for (ssize_t i = 0; i < len; i += (ssize_t)strlen(names + i) + 1) {
        if (strncmp(names + i, "user.", 5) != 0)
            continue;
        ssize_t vlen = fgetxattr(from, names + i, value, sizeof value);
        if (vlen >= 0)
            fsetxattr(to, names + i, value, (size_t)vlen, 0);
    }
}

/* The utimensat times for the atime and mtime of a that `which` names
 * (UTIME_OMIT for the other); false when it names neither.  The ctime is
 * the inode's own: the kernel sets it. */
static bool times_of(const struct sky_attr *a, unsigned which, struct timespec ts[2])
{
    ts[0] = (struct timespec){ a->atime_ns / 1000000000LL, a->atime_ns % 1000000000LL };
    ts[1] = (struct timespec){ a->mtime_ns / 1000000000LL, a->mtime_ns % 1000000000LL };
    if (!(which & SKY_HAS_ATIME))
        ts[0] = (struct timespec){ 0, UTIME_OMIT };
    if (!(which & SKY_HAS_MTIME))
        ts[1] = (struct timespec){ 0, UTIME_OMIT };
    return which & (SKY_HAS_ATIME | SKY_HAS_MTIME);
}

static int apply_attr(int fd, const struct sky_attr *a)
{
    if ((a->has & SKY_HAS_MODE) && fchmod(fd, a->mode & 07777) != 0)
        return -1;
    if ((a->has & (SKY_HAS_UID | SKY_HAS_GID)) &&
        fchown(fd, (a->has & SKY_HAS_UID) ? a->uid : (uid_t)-1,
               (a->has & SKY_HAS_GID) ? a->gid : (gid_t)-1) != 0 && errno != EPERM)
        return -1;
    struct timespec ts[2];
    if (times_of(a, a->has, ts) && futimens(fd, ts) != 0)
        return -1;
    return 0;
}

/* Split "a/b/c" into the parent directory fd and the base name. */
static int open_parent(struct local *l, const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *base = path;
        return dup(l->root_fd);
    }
    char *dir = strndup(path, (size_t)(slash - path));
    if (!dir)
        return -1;
    struct at at;
    int fd = at_open(l, dir, &at) ? -1
                                  : openat(at.dfd, at.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    at_close(&at);
    free(dir);
    *base = slash + 1;
    return fd;
}

/* The precondition of a write (driver.h PRECONDITIONS), checked right
 * before the final rename: does `base` in dfd hold what attr expects?
 * 0, or -ESTALE naming what another writer did.  SKY_EXPECT_NONE is
 * checked again, atomically, by the rename itself (RENAME_NOREPLACE). */
static int check_expect(struct local *l, int dfd, const char *base, const char *path,
                        const struct sky_attr *attr, struct sky_err *e)
{
    if (!attr || !(attr->expect & (SKY_EXPECT_MATCH | SKY_EXPECT_NONE)))
        return 0;
    struct stat st;
    bool there = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
    const char *what = NULL;
    if ((attr->expect & SKY_EXPECT_NONE) && there) {
        what = "created";
    } else if (attr->expect & SKY_EXPECT_MATCH) {
        struct sky_attr now;
        if (!there)
            what = "deleted";
        else if (attr_from_stat(&st, &now), strcmp(now.etag, attr->etag) != 0)
            what = "changed";
    }
    if (!what)
        return 0;
    return sky_fail(e, ESTALE, "local cloud '%s': write \"%s\": %s since this machine last "
                    "saw it (another writer changed it)", l->name, path, what);
}

/* A file with several names (hard links) is rewritten where it is, so
 * that every name keeps seeing it (a renamed copy would be a new inode). */
static int write_in_place(struct local *l, int dfd, const char *base, const char *path, int src,
                          uint64_t size, const struct sky_attr *attr, struct sky_attr *out,
                          struct sky_err *e)
{
    int fd = openat(dfd, base, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    int rc = 0;
    if (fd < 0 || copy_range(src, fd, 0, size) != 0 || ftruncate(fd, (off_t)size) != 0 ||
        apply_attr(fd, attr) != 0 || fdatasync(fd) != 0) {
        rc = fail_errno(l, e, "write", path);
    } else {
        struct stat st;
        fstat(fd, &st);
        attr_from_stat(&st, out);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* `meta` is not used: a local file has no content type, and the user
 * xattrs of the file being replaced are carried over as they are. */
static int local_write(void *ctx, const char *path, int src, uint64_t size,
                       const struct sky_attr *attr, const struct sky_objmeta *meta,
                       struct sky_attr *out, struct sky_err *e)
{
    struct local *l = ctx;
    const char *base;
    int dfd = open_parent(l, path, &base);
    if (dfd < 0)
        return fail_errno(l, e, "write", path);
    struct stat old_st;
    if (fstatat(dfd, base, &old_st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(old_st.st_mode) &&
        old_st.st_nlink > 1) {
        int rc = check_expect(l, dfd, base, path, attr, e);
        if (rc == 0)
            rc = write_in_place(l, dfd, base, path, src, size, attr, out, e);
        close(dfd);
        return rc;
    }
    char tmp[NAME_MAX + 1];
    snprintf(tmp, sizeof tmp, TMP_PREFIX "%d-%lx", (int)getpid(), (unsigned long)random());
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0) {
        rc = fail_errno(l, e, "write", path);
        close(dfd);
        return rc;
    }
    int old = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (old >= 0) {
        copy_user_xattrs(old, fd);
        close(old);
    }
    bool none = attr && (attr->expect & SKY_EXPECT_NONE);
    if (copy_sparse(src, fd, size) != 0 || apply_attr(fd, attr) != 0 || fdatasync(fd) != 0) {
        rc = fail_errno(l, e, "write", path);
        unlinkat(dfd, tmp, 0);
    } else if ((rc = check_expect(l, dfd, base, path, attr, e)) != 0) {
        unlinkat(dfd, tmp, 0);
    } else if (renameat2(dfd, tmp, dfd, base, none ? RENAME_NOREPLACE : 0) != 0) {
        rc = errno == EEXIST && none
                 ? sky_fail(e, ESTALE, "local cloud '%s': write \"%s\": created since this "
                            "machine last saw it (another writer made it)", l->name, path)
                 : fail_errno(l, e, "write", path);
        unlinkat(dfd, tmp, 0);
    } else if (fsync(dfd) != 0) {
        rc = fail_errno(l, e, "write", path);
    } else {
        struct stat st;
        fstat(fd, &st);
        attr_from_stat(&st, out);
    }
    close(fd);
    close(dfd);
    return rc;
}

/* ---- write_delta: clone the old file, write only what changed -------------- */

#define LOCAL_DELTA_STALE  0x1u     /* the file is no longer the base version */
#define LOCAL_DELTA_LINKS  0x2u     /* several names: rewritten in place, whole */
#define LOCAL_DELTA_FAILED 0x4u     /* cloning or copying failed */

static void delta_note(struct local *l, unsigned kind, const char *path, const char *why)
{
    unsigned had = atomic_fetch_or(&l->delta_logged, kind);
    if (had & kind)
        LOG_DEBUG("local cloud '%s': \"%s\" written whole: %s", l->name, path, why);
    else
        LOG_WARN("local cloud '%s': \"%s\" written whole instead of only its changed parts: "
                 "%s (said once for this cloud)", l->name, path, why);
}

/* The new file in `fd` (empty): the old one's bytes (a clone sharing its
 * extents where the file system can, FICLONE on btrfs and XFS; else an
 * in-kernel copy of its data extents), cut or grown to `size`, then the
 * changed ranges and everything past the old size from `src`. */
static int patch_into(int old, uint64_t old_size, int fd, int src, uint64_t size,
                      const struct sky_delta *d, uint64_t *written)
{
    uint64_t keep = old_size < size ? old_size : size;
    if (ioctl(fd, FICLONE, old) != 0 && copy_sparse(old, fd, keep) != 0)
        return -1;
    if (ftruncate(fd, (off_t)size) != 0)
        return -1;
    *written = 0;
    for (size_t i = 0; i < d->ndirty; i++) {
        uint64_t off = d->dirty[i].off, len = d->dirty[i].len;
        if (off >= keep)
            break;
        if (len > keep - off)
            len = keep - off;
        /* the old bytes there go (a hole), then the new data extents come:
         * a range the cache holds as a hole stays one */
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0
                ? copy_extents(src, fd, off, off + len) != 0
                : copy_range(src, fd, off, len) != 0)
            return -1;
        *written += len;
    }
    if (size > keep) {                      /* past the old end: a hole already */
        if (copy_extents(src, fd, keep, size) != 0)
            return -1;
        *written += size - keep;
    }
    return 0;
}

/* Is the delta's dirty list sorted and without overlaps? */
static bool delta_ordered(const struct sky_delta *d)
{
    for (size_t i = 1; i < d->ndirty; i++)
        if (d->dirty[i].off < d->dirty[i - 1].off + d->dirty[i - 1].len)
            return false;
    return true;
}

/* write() that writes only the changed ranges: the old file is cloned into
 * the hidden temporary file, the dirty ranges written over it, and the
 * result renamed over the old file, so readers see the old or the new
 * file, never a mix (as write() does).  A file with several names, or
 * one that is no longer the base version, is written whole by write(). */
static int local_write_delta(void *ctx, const char *path, int src, uint64_t size,
                             const struct sky_attr *attr, const struct sky_objmeta *meta,
                             const struct sky_delta *d, struct sky_attr *out, struct sky_err *e)
{
    struct local *l = ctx;
    if (!d || !d->base_etag || !*d->base_etag || size == 0 || !delta_ordered(d))
        return local_write(ctx, path, src, size, attr, meta, out, e);
    const char *base;
    int dfd = open_parent(l, path, &base);
    if (dfd < 0)
        return fail_errno(l, e, "write", path);
    int old = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    struct sky_attr now = {0};
    const char *why = NULL;
    unsigned kind = LOCAL_DELTA_STALE;
    if (old < 0 || fstat(old, &st) != 0 || !S_ISREG(st.st_mode)) {
        why = "it is gone or no longer a file";
    } else if (st.st_nlink > 1) {
        why = "it has several names, so it is rewritten in place";
        kind = LOCAL_DELTA_LINKS;
    } else {
        attr_from_stat(&st, &now);
        if (strcmp(now.etag, d->base_etag) != 0)
            why = "it changed in the folder since it was read";
    }
    if (why) {
        delta_note(l, kind, path, why);
        if (old >= 0)
            close(old);
        close(dfd);
        return local_write(ctx, path, src, size, attr, meta, out, e);
    }
    char tmp[NAME_MAX + 1];
    snprintf(tmp, sizeof tmp, TMP_PREFIX "%d-%lx", (int)getpid(), (unsigned long)random());
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = fail_errno(l, e, "write", path);
        close(old);
        close(dfd);
        return rc;
    }
    copy_user_xattrs(old, fd);
    uint64_t written = 0;
    int rc = 0;
    if (patch_into(old, (uint64_t)st.st_size, fd, src, size, d, &written) != 0) {
        char why_buf[160];
        snprintf(why_buf, sizeof why_buf, "cloning the old file failed: %s", strerror(errno));
        close(fd);
        unlinkat(dfd, tmp, 0);
        close(old);
        close(dfd);
        delta_note(l, LOCAL_DELTA_FAILED, path, why_buf);
        return local_write(ctx, path, src, size, attr, meta, out, e);
    }
    close(old);
    if (apply_attr(fd, attr) != 0 || fdatasync(fd) != 0 || renameat(dfd, tmp, dfd, base) != 0) {
        rc = fail_errno(l, e, "write", path);
        unlinkat(dfd, tmp, 0);
    } else if (fsync(dfd) != 0) {
        rc = fail_errno(l, e, "write", path);
    } else {
        fstat(fd, &st);
        attr_from_stat(&st, out);
        LOG_DEBUG("local cloud '%s': \"%s\": %llu of %llu bytes written, the rest cloned",
                  l->name, path, (unsigned long long)written, (unsigned long long)size);
    }
    close(fd);
    close(dfd);
    return rc;
}

static int local_remove(void *ctx, const char *path, struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    int rc = at_open(l, path, &at) ? -1 : unlinkat(at.dfd, at.name, 0);
    at_close(&at);
    return rc == 0 ? 0 : fail_errno(l, e, "delete", path);
}

/* Delete path only while it holds version etag: a stat compare right
 * before the unlink (a filesystem has no conditional unlink). */
static int local_remove_if(void *ctx, const char *path, const char *etag, struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    if (at_open(l, path, &at) != 0) {
        at_close(&at);
        return fail_errno(l, e, "delete", path);
    }
    struct stat st;
    int rc = 0;
    if (fstatat(at.dfd, at.name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        rc = fail_errno(l, e, "delete", path);
    } else if (etag && *etag) {
        struct sky_attr now;
        attr_from_stat(&st, &now);
        if (strcmp(now.etag, etag) != 0)
            rc = sky_fail(e, ESTALE, "local cloud '%s': delete \"%s\": changed since this "
                          "machine last saw it (another writer changed it)", l->name, path);
    }
    if (rc == 0 && unlinkat(at.dfd, at.name, 0) != 0)
        rc = fail_errno(l, e, "delete", path);
    at_close(&at);
    return rc;
}

static int local_guarantee(void *ctx, char *why, size_t size)
{
    (void)ctx;
    snprintf(why, size, "a stat compare right before the final rename or unlink (a "
             "filesystem has no conditional rename)");
    return SKY_GUARD_COMPARE;
}

/* Give a new node at `at` the exact mode (the *at() calls apply our umask)
 * and the owner asked for.  Best effort: a daemon that is not root cannot
 * give a node away (EPERM), and the node stays usable as created. */
static void set_new_owner_mode(const struct at *at, const struct sky_attr *attr, mode_t mode,
                               bool chmod_too)
{
    int saved = errno;
    if (chmod_too && fchmodat(at->dfd, at->name, mode, 0) != 0)
        errno = saved;
    if ((attr->has & (SKY_HAS_UID | SKY_HAS_GID)) &&
        fchownat(at->dfd, at->name, (attr->has & SKY_HAS_UID) ? attr->uid : (uid_t)-1,
                 (attr->has & SKY_HAS_GID) ? attr->gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW) != 0)
        errno = saved;
}

static int local_mkdir(void *ctx, const char *path, const struct sky_attr *attr, struct sky_err *e)
{
    struct local *l = ctx;
    mode_t mode = (attr->has & SKY_HAS_MODE) ? attr->mode : 0755;
    struct at at;
    if (at_open(l, path, &at) != 0 || mkdirat(at.dfd, at.name, mode) != 0) {
        at_close(&at);
        return fail_errno(l, e, "mkdir", path);
    }
    set_new_owner_mode(&at, attr, mode, true);
    at_close(&at);
    return 0;
}

static int local_mknod(void *ctx, const char *path, const struct sky_attr *attr,
                       struct sky_attr *out, struct sky_err *e)
{
    struct local *l = ctx;
    mode_t type = sky_kind_type_bits((int)attr->kind);
    if (!sky_kind_special((int)attr->kind))
        return sky_fail(e, EINVAL, "local cloud '%s': mknod \"%s\": not a special kind",
                        l->name, path);
    mode_t mode = (attr->has & SKY_HAS_MODE) ? attr->mode & 07777 : 0644;
    struct at at;
    struct stat st;
    if (at_open(l, path, &at) != 0 ||
        mknodat(at.dfd, at.name, type | mode, (dev_t)attr->rdev) != 0) {
        at_close(&at);
        return fail_errno(l, e, "mknod", path);
    }
    set_new_owner_mode(&at, attr, mode, true);
    int rc = fstatat(at.dfd, at.name, &st, AT_SYMLINK_NOFOLLOW);
    at_close(&at);
    if (rc != 0)
        return fail_errno(l, e, "mknod", path);
    attr_from_stat(&st, out);
    return 0;
}

static int local_link(void *ctx, const char *from, const char *to, struct sky_err *e)
{
    struct local *l = ctx;
    struct at af, at;
    int rc = -1;
    if (at_open(l, from, &af) == 0) {
        if (at_open(l, to, &at) == 0)
            rc = linkat(af.dfd, af.name, at.dfd, at.name, 0);
        at_close(&at);
    }
    at_close(&af);
    return rc == 0 ? 0 : fail_errno(l, e, "link", from);
}

static int local_rmdir(void *ctx, const char *path, struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    int rc = at_open(l, path, &at) ? -1 : unlinkat(at.dfd, at.name, AT_REMOVEDIR);
    at_close(&at);
    return rc == 0 ? 0 : fail_errno(l, e, "rmdir", path);
}

static int local_rename(void *ctx, const char *from, const char *to, struct sky_err *e)
{
    struct local *l = ctx;
    struct at af, at;
    int rc = -1;
    if (at_open(l, from, &af) == 0) {
        if (at_open(l, to, &at) == 0)
            rc = renameat(af.dfd, af.name, at.dfd, at.name);
        at_close(&at);
    }
    at_close(&af);
    return rc == 0 ? 0 : fail_errno(l, e, "rename", from);
}

/* The real inode's attributes change; *out is what it says afterwards
 * (its ctime set by the kernel, its etag new when the mtime moved). */
static int local_set_attr(void *ctx, const char *path, const struct sky_attr *a, unsigned which,
                          struct sky_attr *out, struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    struct stat st;
    int rc = 0;
    const char *op = "stat";
    if (at_open(l, path, &at) != 0 || fstatat(at.dfd, at.name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        rc = -1;
    if (!rc && (which & SKY_HAS_MODE) && !S_ISLNK(st.st_mode) &&
        fchmodat(at.dfd, at.name, a->mode & 07777, 0) != 0) {
        rc = -1;
        op = "chmod";
    }
    if (!rc && (which & (SKY_HAS_UID | SKY_HAS_GID)) &&
        fchownat(at.dfd, at.name, (which & SKY_HAS_UID) ? a->uid : (uid_t)-1,
                 (which & SKY_HAS_GID) ? a->gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW) != 0) {
        rc = -1;
        op = "chown";
    }
    struct timespec ts[2];
    if (!rc && times_of(a, which, ts) && utimensat(at.dfd, at.name, ts, AT_SYMLINK_NOFOLLOW) != 0) {
        rc = -1;
        op = "utimens";
    }
    at_close(&at);
    return rc ? fail_errno(l, e, op, path) : local_stat(ctx, path, out, e);
}

static int local_symlink(void *ctx, const char *path, const char *target,
                         const struct sky_attr *attr, struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    if (at_open(l, path, &at) != 0 || symlinkat(target, at.dfd, at.name) != 0) {
        at_close(&at);
        return fail_errno(l, e, "symlink", path);
    }
    set_new_owner_mode(&at, attr, 0, false);
    at_close(&at);
    return 0;
}

static int local_readlink(void *ctx, const char *path, char *buf, size_t size, struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    ssize_t n = at_open(l, path, &at) ? -1 : readlinkat(at.dfd, at.name, buf, size - 1);
    at_close(&at);
    if (n < 0)
        return fail_errno(l, e, "readlink", path);
    buf[n] = '\0';
    return 0;
}

/* xattr calls need a whole path: the *at() family has no xattr calls.
 * NULL with errno set; at_close(at) after use. */
static char *full_path(struct local *l, const char *path, struct at *at)
{
    if (at_open(l, path, at) != 0)
        return NULL;
    char *p = at_full_path(l, path, at);
    if (!p) {
        at_close(at);
        errno = ENOMEM;
    }
    return p;
}

static int xattr_result(struct local *l, ssize_t n, const char *op, const char *path,
                        size_t *len, struct sky_err *e)
{
    if (n < 0)
        return fail_errno(l, e, op, path);
    if (len)
        *len = (size_t)n;
    return 0;
}

static int local_getxattr(void *ctx, const char *path, const char *name, void *buf, size_t size,
                          size_t *len, struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    char *p = full_path(l, path, &at);
    if (!p)
        return fail_errno(l, e, "xattr", path);
    ssize_t n = lgetxattr(p, name, buf, size);
    free(p);
    at_close(&at);
    return xattr_result(l, n, "getxattr", path, len, e);
}

static int local_setxattr(void *ctx, const char *path, const char *name, const void *value,
                          size_t vlen, int flags, struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    char *p = full_path(l, path, &at);
    if (!p)
        return fail_errno(l, e, "xattr", path);
    ssize_t n = lsetxattr(p, name, value, vlen, flags);
    free(p);
    at_close(&at);
    return xattr_result(l, n, "setxattr", path, NULL, e);
}

static int local_listxattr(void *ctx, const char *path, char *buf, size_t size, size_t *len,
                           struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    char *p = full_path(l, path, &at);
    if (!p)
        return fail_errno(l, e, "xattr", path);
    ssize_t n = llistxattr(p, buf, size);
    free(p);
    at_close(&at);
    return xattr_result(l, n, "listxattr", path, len, e);
}

static int local_removexattr(void *ctx, const char *path, const char *name, struct sky_err *e)
{
    struct local *l = ctx;
    struct at at;
    char *p = full_path(l, path, &at);
    if (!p)
        return fail_errno(l, e, "xattr", path);
    ssize_t n = lremovexattr(p, name);
    free(p);
    at_close(&at);
    return xattr_result(l, n, "removexattr", path, NULL, e);
}

static int local_get_meta(void *ctx, const char *path, struct sky_attr *attr,
                          struct sky_objmeta *meta, struct sky_err *e)
{
    struct local *l = ctx;
    memset(meta, 0, sizeof *meta);
    int rc = local_stat(ctx, path, attr, e);
    if (rc)
        return rc;
    struct at at;
    char *p = full_path(l, path, &at);
    rc = p ? read_user_xattrs(p, meta) : -ENOMEM;
    free(p);
    at_close(&at);
    if (rc) {
        sky_objmeta_free(meta);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    return 0;
}

static int local_statfs(void *ctx, struct statvfs *st, struct sky_err *e)
{
    struct local *l = ctx;
    return fstatvfs(l->root_fd, st) == 0 ? 0 : fail_errno(l, e, "statfs", "");
}

static const struct sky_key local_keys[] = {
    { "path", SKY_KEY_REQUIRED, "the directory on this machine that holds the cloud's files" },
    { NULL, 0, NULL },
};

const struct sky_driver sky_driver_local = {
    .type = "local",
    .summary = "a directory on this machine",
    .keys = local_keys,
    .caps = SKY_CAP_RENAME_DIR | SKY_CAP_HARDLINK | SKY_CAP_CONDITIONAL,
    .open = local_open,
    .close = local_close,
    .list = local_list,
    .stat = local_stat,
    .read = local_read,
    .write = local_write,
    .write_delta = local_write_delta,
    .remove = local_remove,
    .remove_if = local_remove_if,
    .guarantee = local_guarantee,
    .mkdir = local_mkdir,
    .rmdir = local_rmdir,
    .mknod = local_mknod,
    .link = local_link,
    .rename = local_rename,
    .set_attr = local_set_attr,
    .symlink = local_symlink,
    .readlink = local_readlink,
    .getxattr = local_getxattr,
    .setxattr = local_setxattr,
    .listxattr = local_listxattr,
    .removexattr = local_removexattr,
    .get_meta = local_get_meta,
    .statfs = local_statfs,
};
