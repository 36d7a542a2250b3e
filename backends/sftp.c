/*
 * sftp.c - the `sftp` cloud kind: a directory on an SSH server, through
 * its SFTP subsystem (libssh).
 *
 * SFTP has real directories, renames and attributes, so every driver call
 * maps onto SFTP requests directly, as local.c maps them onto system
 * calls:
 *   - list: OPENDIR + READDIR pages, each entry with its attributes (no
 *     stat per entry); symlink targets are read later by readlink;
 *   - read: several READ requests in flight (READ_WINDOW of READ_CHUNK
 *     bytes), answers taken in order;
 *   - write: the bytes go to a hidden temporary name next to the target,
 *     get their mode, owner and times, and are renamed over it with
 *     posix-rename@openssh.com (atomic), or where the server lacks that
 *     extension, with a plain RENAME after removing the target;
 *   - mkdir, rmdir, remove, rename, setstat, symlink, readlink, and
 *     statvfs@openssh.com for df.
 * SFTP version 3 (OpenSSH) keeps whole seconds for times, no ctime, no
 * hard links, no special files (mknod is EPERM) and no extended
 * attributes.  Its status codes are coarse (most errors are "Failure"):
 * a failed mkdir, rmdir, remove or rename looks at the paths to give the
 * errno a local file system would (EEXIST, ENOTEMPTY, EISDIR...).
 *
 * The etag is size + mtime: a change made on the server directly shows up
 * as a new version (one made within the same second at the same size
 * does not: SFTP has no finer clock or inode number).
 *
 * Every call takes a session from the cloud's pool (sftp_session.c).
 * When its connection broke, the call is sent again once on a fresh
 * session; a server that cannot be reached is EHOSTDOWN, so fs/ marks the
 * cloud offline.  A cancelled call (http_cancel, backends/http.h) stops
 * between requests with EINTR.
 */
#include "driver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "http.h"
#include "sftp_session.h"

#define TMP_PREFIX ".skyfs-tmp-"
#define READ_CHUNK (64 * 1024)      /* bytes per READ request */
#define READ_WINDOW 16              /* READ requests in flight */
#define WRITE_CHUNK (252 * 1024)    /* bytes per WRITE request */

struct sftp_cloud {
    struct sftp_pool pool;
};

static const char *cloud_name(struct sftp_cloud *s)
{
    return s->pool.set.name;
}

/* The server path of cloud path `path` (malloc'd): the root joined with
 * it; the login directory "." when both are empty. */
static char *remote(struct sftp_cloud *s, const char *path)
{
    const char *root = s->pool.set.root;
    char *p;
    int n;
    if (!*root)
        n = asprintf(&p, "%s", *path ? path : ".");
    else if (!*path)
        n = asprintf(&p, "%s", root);
    else
        n = asprintf(&p, "%s%s%s", root, strcmp(root, "/") == 0 ? "" : "/", path);
    return n < 0 ? NULL : p;
}

/* ---- errors ---- */

/* The errno of SFTP status `code`, and a few words for messages. */
static int status_errno(int code, const char **what)
{
    switch (code) {
    case SSH_FX_NO_SUCH_FILE:
    case SSH_FX_NO_SUCH_PATH:
        *what = "no such file";
        return ENOENT;
    case SSH_FX_PERMISSION_DENIED:
    case SSH_FX_WRITE_PROTECT:
        *what = "permission denied";
        return EACCES;
    case SSH_FX_FILE_ALREADY_EXISTS:
        *what = "already exists";
        return EEXIST;
    case SSH_FX_OP_UNSUPPORTED:
        *what = "the server does not support it";
        return ENOTSUP;
    case SSH_FX_BAD_MESSAGE:
        *what = "invalid request";
        return EINVAL;
    default:
        *what = "failure";
        return EIO;
    }
}

/* The failure of the last request on c: -ECONNRESET (c dropped) when the
 * connection is gone, else the errno of the SFTP status. */
static int op_fail(struct sftp_cloud *s, struct sftp_conn *c, struct sky_err *e, const char *op,
                   const char *path)
{
    if (sftp_conn_broken(c)) {
        c->drop = true;
        return sky_fail(e, ECONNRESET, "sftp '%s': %s \"%s\": connection lost: %s",
                        cloud_name(s), op, path, c->ssh ? ssh_get_error(c->ssh) : "closed");
    }
    int code = sftp_get_error(c->sftp);
    const char *what;
    int err = status_errno(code, &what);
    return sky_fail(e, err, "sftp '%s': %s \"%s\": %s (SFTP status %d)", cloud_name(s), op,
                    path, what, code);
}

/* An operation on one session; returns 0, a negative errno, or
 * -ECONNRESET when the connection broke before anything was done that
 * cannot be done again. */
typedef int (*sftp_op_fn)(struct sftp_cloud *s, struct sftp_conn *c, void *arg,
                          struct sky_err *e);

/* Run fn on a pooled session; once more on a fresh one if the connection
 * broke.  A second break, or no way to reconnect, is EHOSTDOWN. */
static int run(struct sftp_cloud *s, sftp_op_fn fn, void *arg, struct sky_err *e)
{
    for (int attempt = 0;; attempt++) {
        struct sftp_conn *c;
        int rc = attempt ? sftp_pool_get_fresh(&s->pool, &c, e) : sftp_pool_get(&s->pool, &c, e);
        if (rc)
            return rc;
        rc = fn(s, c, arg, e);
        bool broken = rc == -ECONNRESET;
        sftp_pool_put(&s->pool, c, broken);
        if (!broken)
            return rc;
        if (http_cancelled())
            return sky_fail(e, EINTR, "sftp '%s': request cancelled", cloud_name(s));
        if (attempt >= 1)
            return sky_fail(e, EHOSTDOWN, "sftp '%s': %s:%u: the connection broke again",
                            cloud_name(s), s->pool.set.host, s->pool.set.port);
        LOG_INFO("%s; reconnecting", e ? e->msg : "sftp: connection lost");
    }
}

/* ---- attributes ---- */

static void attr_from_sftp(const struct sftp_attributes_struct *a, struct sky_attr *o)
{
    memset(o, 0, sizeof *o);
    o->kind = (enum sky_kind)sky_kind_of_mode(a->permissions);
    if (!o->kind)
        o->kind = a->type == SSH_FILEXFER_TYPE_DIRECTORY ? SKY_DIR :
                  a->type == SSH_FILEXFER_TYPE_SYMLINK ? SKY_LINK : SKY_FILE;
    if (o->kind == SKY_FILE || o->kind == SKY_LINK)
        o->size = a->size;
    if (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) {
        o->mode = a->permissions & 07777;
        o->has |= SKY_HAS_MODE;
    }
    if (a->flags & SSH_FILEXFER_ATTR_UIDGID) {
        o->uid = a->uid;
        o->gid = a->gid;
        o->has |= SKY_HAS_UID | SKY_HAS_GID;
    }
    if (a->flags & SSH_FILEXFER_ATTR_ACMODTIME) {
        uint64_t m = a->mtime64 ? a->mtime64 : a->mtime;
        uint64_t at = a->atime64 ? a->atime64 : a->atime;
        o->mtime_ns = (int64_t)m * 1000000000LL;
        o->atime_ns = (int64_t)at * 1000000000LL;
        o->has |= SKY_HAS_MTIME | SKY_HAS_ATIME;
    }
    if (o->kind != SKY_DIR)
        snprintf(o->etag, sizeof o->etag, "%llx-%llx", (unsigned long long)o->size,
                 (unsigned long long)o->mtime_ns);
}

/* lstat of server path rp into *out: 0, or a failure as op_fail. */
static int lstat_remote(struct sftp_cloud *s, struct sftp_conn *c, const char *rp,
                        const char *path, struct sky_attr *out, struct sky_err *e)
{
    sftp_attributes a = sftp_lstat(c->sftp, rp);
    if (!a)
        return op_fail(s, c, e, "stat", path);
    attr_from_sftp(a, out);
    sftp_attributes_free(a);
    return 0;
}

/* What a path is, for explaining a coarse failure: a kind, or 0 when
 * nothing is there (or it cannot be asked). */
static int kind_at(struct sftp_conn *c, const char *rp)
{
    sftp_attributes a = sftp_lstat(c->sftp, rp);
    if (!a)
        return 0;
    int k = sky_kind_of_mode(a->permissions);
    if (!k)
        k = a->type == SSH_FILEXFER_TYPE_DIRECTORY ? SKY_DIR : SKY_FILE;
    sftp_attributes_free(a);
    return k;
}

/* Does directory rp hold any entry? */
static bool dir_has_entries(struct sftp_conn *c, const char *rp)
{
    sftp_dir d = sftp_opendir(c->sftp, rp);
    if (!d)
        return false;
    bool found = false;
    sftp_attributes a;
    while (!found && (a = sftp_readdir(c->sftp, d)) != NULL) {
        found = strcmp(a->name, ".") != 0 && strcmp(a->name, "..") != 0;
        sftp_attributes_free(a);
    }
    sftp_closedir(d);
    return found;
}

/* The parent directory of server path rp (malloc'd), "." for none. */
static char *parent_of(const char *rp)
{
    const char *slash = strrchr(rp, '/');
    if (!slash)
        return strdup(".");
    if (slash == rp)
        return strdup("/");
    return strndup(rp, (size_t)(slash - rp));
}

/* A parent that is not a directory explains a failure as ENOTDIR. */
static bool parent_not_dir(struct sftp_conn *c, const char *rp)
{
    char *parent = parent_of(rp);
    int k = parent ? kind_at(c, parent) : 0;
    free(parent);
    return k && k != SKY_DIR;
}

/* ---- list ---- */

struct list_args {
    const char *dir;
    sky_list_cb cb;
    void *arg;
    unsigned delivered;
};

static bool usable_name(const char *n)
{
    return *n && !strchr(n, '/') && strcmp(n, ".") != 0 && strcmp(n, "..") != 0;
}

static int op_list(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct list_args *la = arg;
    char *rp = remote(s, la->dir);
    if (!rp)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    sftp_dir d = sftp_opendir(c->sftp, rp);
    if (!d) {
        rc = op_fail(s, c, e, "list", la->dir);
        int k = rc == -EIO ? kind_at(c, rp) : 0;
        if (k && k != SKY_DIR)
            rc = sky_fail(e, ENOTDIR, "sftp '%s': list \"%s\": not a directory", cloud_name(s),
                          la->dir);
        free(rp);
        return rc;
    }
    for (;;) {
        if (http_cancelled()) {
            c->drop = true;
            rc = sky_fail(e, EINTR, "sftp '%s': list \"%s\" cancelled", cloud_name(s), la->dir);
            break;
        }
        sftp_attributes a = sftp_readdir(c->sftp, d);
        if (!a) {
            if (!sftp_dir_eof(d)) {
                rc = op_fail(s, c, e, "list", la->dir);
                if (rc == -ECONNRESET && la->delivered)
                    rc = sky_fail(e, EHOSTDOWN, "sftp '%s': list \"%s\": connection lost "
                                  "midway", cloud_name(s), la->dir);
            }
            break;
        }
        const char *n = a->name ? a->name : "";
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
            strncmp(n, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
            sftp_attributes_free(a);
            continue;
        }
        if (!usable_name(n)) {
            LOG_WARN("sftp '%s': skipping an entry of \"%s\" whose name cannot be a file name",
                     cloud_name(s), la->dir);
            sftp_attributes_free(a);
            continue;
        }
        struct sky_dirent ent = { .name = n };
        attr_from_sftp(a, &ent.attr);
        la->delivered++;
        rc = la->cb(la->arg, &ent);
        sftp_attributes_free(a);
        if (rc)
            break;
    }
    sftp_closedir(d);
    free(rp);
    return rc;
}

static int sftp_list(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e)
{
    struct list_args la = { dir, cb, arg, 0 };
    return run(ctx, op_list, &la, e);
}

/* ---- stat ---- */

struct stat_args {
    const char *path;
    struct sky_attr *out;
};

static int op_stat(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct stat_args *sa = arg;
    char *rp = remote(s, sa->path);
    if (!rp)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = lstat_remote(s, c, rp, sa->path, sa->out, e);
    free(rp);
    return rc;
}

static int sftp_stat_path(void *ctx, const char *path, struct sky_attr *out, struct sky_err *e)
{
    struct stat_args sa = { path, out };
    return run(ctx, op_stat, &sa, e);
}

/* ---- read ---- */

struct read_args {
    const char *path;
    const char *etag;
    uint64_t off, len;
    sky_sink_fn sink;
    void *sink_arg;
};

struct inflight {
    uint64_t pos;       /* relative to the range asked */
    uint32_t len;
    int id;
};

/* Take (and forget) the answers of requests still in flight. */
static void drain(sftp_file f, struct inflight *q, int head, int count, char *buf)
{
    for (int i = 0; i < count; i++) {
        struct inflight *r = &q[(head + i) % READ_WINDOW];
        f->eof = 0;     /* libssh answers 0 at once after an EOF, unread */
        sftp_async_read(f, buf, r->len, (uint32_t)r->id);
    }
}

/* The range [off, off + len) in READ_CHUNK requests, READ_WINDOW in flight,
 * never past the size the open file had (so no request meets EOF unless
 * the file shrank meanwhile). */
static int pipelined_read(struct sftp_cloud *s, struct sftp_conn *c, sftp_file f,
                          struct read_args *ra, uint64_t size, struct sky_err *e)
{
    uint64_t end = ra->off >= size ? 0 : size - ra->off < ra->len ? size - ra->off : ra->len;
    struct inflight q[READ_WINDOW];
    int head = 0, count = 0, rc = 0;
    uint64_t next = 0;
    char *buf = malloc(READ_CHUNK);
    if (!buf)
        return sky_fail(e, ENOMEM, "out of memory");
    if (end && sftp_seek64(f, ra->off) < 0)
        rc = op_fail(s, c, e, "read", ra->path);
    while (rc == 0) {
        while (count < READ_WINDOW && next < end) {
            uint32_t n = end - next < READ_CHUNK ? (uint32_t)(end - next) : READ_CHUNK;
            int id = sftp_async_read_begin(f, n);
            if (id < 0) {
                rc = op_fail(s, c, e, "read", ra->path);
                break;
            }
            q[(head + count) % READ_WINDOW] = (struct inflight){ next, n, id };
            count++;
            next += n;
        }
        if (rc || count == 0)
            break;
        if (http_cancelled()) {
            c->drop = true;         /* answers still in flight: not reused */
            rc = sky_fail(e, EINTR, "sftp '%s': read \"%s\" cancelled", cloud_name(s),
                          ra->path);
            break;
        }
        struct inflight r = q[head];
        head = (head + 1) % READ_WINDOW;
        count--;
        int got = sftp_async_read(f, buf, r.len, (uint32_t)r.id);
        if (got < 0) {
            rc = op_fail(s, c, e, "read", ra->path);
            if (rc == -ECONNRESET)
                break;
            drain(f, q, head, count, buf);
            count = 0;
            break;
        }
        if (got > 0 && (rc = ra->sink(ra->sink_arg, r.pos, buf, (size_t)got)) < 0) {
            rc = sky_fail(e, -rc, "sftp '%s': read \"%s\": the receiver failed: %s",
                          cloud_name(s), ra->path, strerror(-rc));
            drain(f, q, head, count, buf);
            count = 0;
            break;
        }
        if ((uint32_t)got < r.len) {
            /* a short answer (the file shrank, or a server that sends
             * less): forget the rest and go on from where it stopped */
            drain(f, q, head, count, buf);
            count = 0;
            if (got == 0)
                break;              /* end of the file */
            next = r.pos + (uint64_t)got;
            f->eof = 0;
            if (sftp_seek64(f, ra->off + next) < 0)
                rc = op_fail(s, c, e, "read", ra->path);
        }
    }
    free(buf);
    return rc;
}

static int op_read(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct read_args *ra = arg;
    char *rp = remote(s, ra->path);
    if (!rp)
        return sky_fail(e, ENOMEM, "out of memory");
    sftp_file f = sftp_open(c->sftp, rp, O_RDONLY, 0);
    free(rp);
    if (!f)
        return op_fail(s, c, e, "read", ra->path);
    int rc = 0;
    struct sky_attr now;
    sftp_attributes a = sftp_fstat(f);
    if (!a) {
        rc = op_fail(s, c, e, "read", ra->path);
    } else {
        attr_from_sftp(a, &now);
        sftp_attributes_free(a);
        if (ra->etag && *ra->etag && strcmp(now.etag, ra->etag) != 0)
            rc = sky_fail(e, ESTALE, "sftp '%s': \"%s\" changed since it was listed",
                          cloud_name(s), ra->path);
    }
    if (rc == 0)
        rc = pipelined_read(s, c, f, ra, now.size, e);
    sftp_close(f);
    return rc;
}

static int sftp_read_range(void *ctx, const char *path, const char *etag, uint64_t off,
                           uint64_t len, sky_sink_fn sink, void *sink_arg, struct sky_err *e)
{
    struct read_args ra = { path, etag, off, len, sink, sink_arg };
    return run(ctx, op_read, &ra, e);
}

/* ---- attributes on the server ---- */

/* setstat of the fields of `a` that `which` names, on server path rp.
 * SFTP v3 sets atime and mtime together: one missing is taken from `cur`
 * (the path's attributes now).  A chown the server refuses is not an
 * error when `lenient_chown` (a new file keeps the login user's owner, as
 * cp does without -p). */
static int set_remote_attr(struct sftp_cloud *s, struct sftp_conn *c, const char *rp,
                           const char *path, const struct sky_attr *a, unsigned which,
                           const struct sky_attr *cur, bool lenient_chown, struct sky_err *e)
{
    if (which & (SKY_HAS_UID | SKY_HAS_GID)) {
        struct sftp_attributes_struct sa = { 0 };
        sa.flags = SSH_FILEXFER_ATTR_UIDGID;
        sa.uid = (which & SKY_HAS_UID) ? a->uid : cur->uid;
        sa.gid = (which & SKY_HAS_GID) ? a->gid : cur->gid;
        if (sftp_setstat(c->sftp, rp, &sa) < 0) {
            int rc = op_fail(s, c, e, "chown", path);
            if (!(lenient_chown && rc == -EACCES))
                return rc;
        }
    }
    struct sftp_attributes_struct sa = { 0 };
    if (which & SKY_HAS_MODE) {
        sa.flags |= SSH_FILEXFER_ATTR_PERMISSIONS;
        sa.permissions = a->mode & 07777;
    }
    if (which & (SKY_HAS_MTIME | SKY_HAS_ATIME)) {
        int64_t m = (which & SKY_HAS_MTIME) ? a->mtime_ns : cur->mtime_ns;
        int64_t at = (which & SKY_HAS_ATIME) ? a->atime_ns : cur->atime_ns;
        sa.flags |= SSH_FILEXFER_ATTR_ACMODTIME;
        sa.mtime = (uint32_t)(m / 1000000000LL);
        sa.atime = (uint32_t)(at / 1000000000LL);
        sa.mtime64 = sa.mtime;
        sa.atime64 = sa.atime;
    }
    if (sa.flags && sftp_setstat(c->sftp, rp, &sa) < 0)
        return op_fail(s, c, e, (which & SKY_HAS_MODE) ? "chmod" : "utimes", path);
    return 0;
}

struct setattr_args {
    const char *path;
    const struct sky_attr *attr;
    unsigned which;
    struct sky_attr *out;
};

/* A symlink's own owner and times go with lsetstat@openssh.com (SETSTAT
 * would follow the link); its mode is left as it is, as local.c leaves
 * it (Linux ignores a symlink's mode). */
static int set_link_attr(struct sftp_cloud *s, struct sftp_conn *c, const char *rp,
                         const char *path, const struct sky_attr *a, unsigned which,
                         const struct sky_attr *cur, struct sky_err *e)
{
    struct sftp_ext_attrs la = {
        .set_owner = which & (SKY_HAS_UID | SKY_HAS_GID),
        .set_times = which & (SKY_HAS_MTIME | SKY_HAS_ATIME),
        .uid = (which & SKY_HAS_UID) ? a->uid : cur->uid,
        .gid = (which & SKY_HAS_GID) ? a->gid : cur->gid,
        .mtime = (uint32_t)(((which & SKY_HAS_MTIME) ? a->mtime_ns : cur->mtime_ns) / 1000000000LL),
        .atime = (uint32_t)(((which & SKY_HAS_ATIME) ? a->atime_ns : cur->atime_ns) / 1000000000LL),
    };
    if (!c->lsetstat || (!la.set_owner && !la.set_times))
        return 0;
    int st = sftp_ext_lsetstat(c->ssh, &c->ext, s->pool.set.timeout_s * 1000, rp, &la);
    if (st == SSH_FX_OK)
        return 0;
    if (st < 0) {
        c->drop = true;
        return sky_fail(e, ECONNRESET, "sftp '%s': lsetstat \"%s\": connection lost",
                        cloud_name(s), path);
    }
    const char *what;
    int err = status_errno(st, &what);
    return sky_fail(e, err, "sftp '%s': lsetstat \"%s\": %s (SFTP status %d)", cloud_name(s),
                    path, what, st);
}

static int op_set_attr(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct setattr_args *sa = arg;
    char *rp = remote(s, sa->path);
    if (!rp)
        return sky_fail(e, ENOMEM, "out of memory");
    struct sky_attr cur;
    int rc = lstat_remote(s, c, rp, sa->path, &cur, e);
    if (rc == 0 && cur.kind == SKY_LINK)
        rc = set_link_attr(s, c, rp, sa->path, sa->attr, sa->which, &cur, e);
    else if (rc == 0)
        rc = set_remote_attr(s, c, rp, sa->path, sa->attr, sa->which, &cur, false, e);
    if (rc == 0)
        rc = lstat_remote(s, c, rp, sa->path, sa->out, e);
    free(rp);
    return rc;
}

static int sftp_set_attr(void *ctx, const char *path, const struct sky_attr *a, unsigned which,
                         struct sky_attr *out, struct sky_err *e)
{
    struct setattr_args sa = { path, a, which, out };
    return run(ctx, op_set_attr, &sa, e);
}

/* ---- write ---- */

struct write_args {
    const char *path;
    int fd;
    uint64_t size;
    const struct sky_attr *attr;
    struct sky_attr *out;
};

/* Copy the first `size` bytes of fd into the open server file. */
static int upload_bytes(struct sftp_cloud *s, struct sftp_conn *c, sftp_file f, int fd,
                        uint64_t size, const char *path, struct sky_err *e)
{
    if (size == 0)
        return 0;
    char *buf = malloc(WRITE_CHUNK);
    if (!buf)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    for (uint64_t pos = 0; rc == 0 && pos < size;) {
        if (http_cancelled()) {
            rc = sky_fail(e, EINTR, "sftp '%s': write \"%s\" cancelled", cloud_name(s), path);
            break;
        }
        size_t want = size - pos < WRITE_CHUNK ? (size_t)(size - pos) : WRITE_CHUNK;
        ssize_t n = pread(fd, buf, want, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = sky_fail(e, EIO, "sftp '%s': write \"%s\": reading the local copy: %s",
                          cloud_name(s), path, n < 0 ? strerror(errno) : "shorter than its size");
            break;
        }
        for (ssize_t done = 0; rc == 0 && done < n;) {
            ssize_t w = sftp_write(f, buf + done, (size_t)(n - done));
            if (w <= 0)
                rc = op_fail(s, c, e, "write", path);
            else
                done += w;
        }
        pos += (uint64_t)n;
    }
    free(buf);
    return rc;
}

/* Rename server path `from` over `to`: posix-rename@openssh.com replaces
 * `to` atomically; without it a plain RENAME, which refuses an existing
 * target, goes after removing a file there.  0 or a failure as op_fail. */
static int rename_over(struct sftp_cloud *s, struct sftp_conn *c, const char *from,
                       const char *to, const char *op, const char *path, struct sky_err *e)
{
    if (c->posix_rename) {
        int st = sftp_ext_posix_rename(c->ssh, &c->ext, s->pool.set.timeout_s * 1000, from, to);
        if (st == SSH_FX_OK)
            return 0;
        if (st < 0) {
            c->drop = true;
            return sky_fail(e, ECONNRESET, "sftp '%s': %s \"%s\": connection lost",
                            cloud_name(s), op, path);
        }
        const char *what;
        int err = status_errno(st, &what);
        return sky_fail(e, err, "sftp '%s': %s \"%s\": %s (SFTP status %d)", cloud_name(s), op,
                        path, what, st);
    }
    if (sftp_rename(c->sftp, from, to) == 0)
        return 0;
    int k = sftp_conn_broken(c) ? 0 : kind_at(c, to);
    if (k && k != SKY_DIR && sftp_unlink(c->sftp, to) == 0 && sftp_rename(c->sftp, from, to) == 0)
        return 0;
    return op_fail(s, c, e, op, path);
}

/* The preconditions of attr (driver.h PRECONDITIONS), checked with a stat
 * of rp right before the final rename: SFTP has no conditional rename, so
 * a change landing between the two can still be overwritten (the weaker
 * guarantee sftp_guarantee reports). */
static int check_expect(struct sftp_cloud *s, struct sftp_conn *c, const char *rp,
                        const struct sky_attr *attr, const char *path, struct sky_err *e)
{
    if (!(attr->expect & (SKY_EXPECT_MATCH | SKY_EXPECT_NONE)))
        return 0;
    struct sky_attr now;
    int rc = lstat_remote(s, c, rp, path, &now, e);
    if (rc == -ENOENT) {
        sky_err_clear(e);
        if (!(attr->expect & SKY_EXPECT_MATCH))
            return 0;
        return sky_fail(e, ESTALE, "sftp '%s': \"%s\" was deleted since this machine last saw "
                        "it", cloud_name(s), path);
    }
    if (rc)
        return rc;
    if ((attr->expect & SKY_EXPECT_MATCH) && strcmp(now.etag, attr->etag) == 0)
        return 0;
    return sky_fail(e, ESTALE, "sftp '%s': \"%s\" was %s since this machine last saw it",
                    cloud_name(s), path, (attr->expect & SKY_EXPECT_NONE) ? "created" : "changed");
}

static int sftp_guarantee(void *ctx, char *why, size_t size)
{
    (void)ctx;
    snprintf(why, size, "a stat compare right before the final rename or the delete (SFTP "
             "has no conditional rename)");
    return SKY_GUARD_COMPARE;
}

static int op_write(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct write_args *wa = arg;
    char *rp = remote(s, wa->path), *parent = rp ? parent_of(rp) : NULL, *tmp = NULL;
    if (!parent || asprintf(&tmp, "%s/" TMP_PREFIX "%d-%lx", parent, (int)getpid(),
                            (unsigned long)random()) < 0) {
        free(rp);
        free(parent);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    int rc = 0;
    sftp_file f = sftp_open(c->sftp, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (!f) {
        rc = op_fail(s, c, e, "write", wa->path);
        if (rc == -EIO && parent_not_dir(c, rp))
            rc = sky_fail(e, ENOTDIR, "sftp '%s': write \"%s\": a parent is not a directory",
                          cloud_name(s), wa->path);
        goto out;
    }
    rc = upload_bytes(s, c, f, wa->fd, wa->size, wa->path, e);
    if (sftp_close(f) < 0 && rc == 0)
        rc = op_fail(s, c, e, "write", wa->path);
    struct sky_attr cur;
    unsigned which = wa->attr->has & (SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID |
                                      SKY_HAS_MTIME | SKY_HAS_ATIME);
    struct sky_attr want = *wa->attr;
    if (!(which & SKY_HAS_MODE)) {
        want.mode = 0644;
        which |= SKY_HAS_MODE;
    }
    if (rc == 0)
        rc = lstat_remote(s, c, tmp, wa->path, &cur, e);
    if (rc == 0)
        rc = set_remote_attr(s, c, tmp, wa->path, &want, which, &cur, true, e);
    if (rc == 0)
        rc = check_expect(s, c, rp, wa->attr, wa->path, e);
    if (rc == 0)
        rc = rename_over(s, c, tmp, rp, "write (rename into place)", wa->path, e);
    if (rc == 0)
        rc = lstat_remote(s, c, rp, wa->path, wa->out, e);
    else if (!sftp_conn_broken(c))
        sftp_unlink(c->sftp, tmp);
out:
    free(tmp);
    free(parent);
    free(rp);
    return rc;
}

static int sftp_write_file(void *ctx, const char *path, int fd, uint64_t size,
                           const struct sky_attr *attr, const struct sky_objmeta *meta,
                           struct sky_attr *out, struct sky_err *e)
{
    struct write_args wa = { path, fd, size, attr, out };
    return run(ctx, op_write, &wa, e);
}

/* ---- names: remove, mkdir, rmdir, rename, symlink, readlink ---- */

struct path_args {
    const char *path, *path2;
    const struct sky_attr *attr;
    char *buf;
    size_t size;
};

static int op_remove(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct path_args *pa = arg;
    char *rp = remote(s, pa->path);
    if (!rp)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    if (sftp_unlink(c->sftp, rp) < 0) {
        rc = op_fail(s, c, e, "delete", pa->path);
        if (rc == -EIO && kind_at(c, rp) == SKY_DIR)
            rc = sky_fail(e, EISDIR, "sftp '%s': delete \"%s\": is a directory", cloud_name(s),
                          pa->path);
        else if (rc == -EIO && parent_not_dir(c, rp))
            rc = sky_fail(e, ENOTDIR, "sftp '%s': delete \"%s\": a parent is not a directory",
                          cloud_name(s), pa->path);
    }
    free(rp);
    return rc;
}

static int sftp_remove(void *ctx, const char *path, struct sky_err *e)
{
    struct path_args pa = { .path = path };
    return run(ctx, op_remove, &pa, e);
}

static int op_mkdir(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct path_args *pa = arg;
    char *rp = remote(s, pa->path);
    if (!rp)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    mode_t mode = (pa->attr->has & SKY_HAS_MODE) ? pa->attr->mode & 07777 : 0755;
    if (sftp_mkdir(c->sftp, rp, mode) < 0) {
        rc = op_fail(s, c, e, "mkdir", pa->path);
        if (rc == -EIO && kind_at(c, rp))
            rc = sky_fail(e, EEXIST, "sftp '%s': mkdir \"%s\": something is already there",
                          cloud_name(s), pa->path);
        else if (rc == -EIO && parent_not_dir(c, rp))
            rc = sky_fail(e, ENOTDIR, "sftp '%s': mkdir \"%s\": a parent is not a directory",
                          cloud_name(s), pa->path);
    } else {
        /* the server's umask applied to the mode: set it exactly */
        struct sky_attr cur;
        unsigned which = SKY_HAS_MODE | (pa->attr->has & (SKY_HAS_UID | SKY_HAS_GID));
        struct sky_attr want = *pa->attr;
        want.mode = mode;
        rc = lstat_remote(s, c, rp, pa->path, &cur, e);
        if (rc == 0)
            rc = set_remote_attr(s, c, rp, pa->path, &want, which, &cur, true, e);
    }
    free(rp);
    return rc;
}

static int sftp_mkdir_path(void *ctx, const char *path, const struct sky_attr *attr,
                           struct sky_err *e)
{
    struct path_args pa = { .path = path, .attr = attr };
    return run(ctx, op_mkdir, &pa, e);
}

static int op_rmdir(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct path_args *pa = arg;
    char *rp = remote(s, pa->path);
    if (!rp)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    if (sftp_rmdir(c->sftp, rp) < 0) {
        rc = op_fail(s, c, e, "rmdir", pa->path);
        int k = rc == -EIO ? kind_at(c, rp) : 0;
        if (k && k != SKY_DIR)
            rc = sky_fail(e, ENOTDIR, "sftp '%s': rmdir \"%s\": not a directory", cloud_name(s),
                          pa->path);
        else if (k == SKY_DIR && dir_has_entries(c, rp))
            rc = sky_fail(e, ENOTEMPTY, "sftp '%s': rmdir \"%s\": directory not empty",
                          cloud_name(s), pa->path);
    }
    free(rp);
    return rc;
}

static int sftp_rmdir_path(void *ctx, const char *path, struct sky_err *e)
{
    struct path_args pa = { .path = path };
    return run(ctx, op_rmdir, &pa, e);
}

/* The errno a local rename would give, from the kinds of both paths. */
static int explain_rename(struct sftp_cloud *s, struct sftp_conn *c, const char *rfrom,
                          const char *rto, const struct path_args *pa, struct sky_err *e)
{
    int kf = kind_at(c, rfrom), kt = kind_at(c, rto);
    size_t lf = strlen(rfrom);
    const char *why = NULL;
    int err = EIO;
    if (!kf)
        err = ENOENT, why = "no such file";
    else if (kf == SKY_DIR && strncmp(rto, rfrom, lf) == 0 && rto[lf] == '/')
        err = EINVAL, why = "a directory cannot move into itself";
    else if (kf == SKY_DIR && kt && kt != SKY_DIR)
        err = ENOTDIR, why = "the target is not a directory";
    else if (kf != SKY_DIR && kt == SKY_DIR)
        err = EISDIR, why = "the target is a directory";
    else if (kf == SKY_DIR && kt == SKY_DIR && dir_has_entries(c, rto))
        err = ENOTEMPTY, why = "the target directory is not empty";
    else if (parent_not_dir(c, rto))
        err = ENOTDIR, why = "a parent of the target is not a directory";
    if (!why)
        return -EIO;
    return sky_fail(e, err, "sftp '%s': rename \"%s\" to \"%s\": %s", cloud_name(s), pa->path,
                    pa->path2, why);
}

static int op_rename(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct path_args *pa = arg;
    char *rfrom = remote(s, pa->path), *rto = remote(s, pa->path2);
    int rc = 0;
    if (!rfrom || !rto)
        rc = sky_fail(e, ENOMEM, "out of memory");
    else if ((rc = rename_over(s, c, rfrom, rto, "rename", pa->path, e)) != 0) {
        if (rc == -EIO || rc == -ENOENT) {
            int why = explain_rename(s, c, rfrom, rto, pa, e);
            if (why != -EIO)
                rc = why;
        }
    }
    free(rfrom);
    free(rto);
    return rc;
}

static int sftp_rename_path(void *ctx, const char *from, const char *to, struct sky_err *e)
{
    struct path_args pa = { .path = from, .path2 = to };
    return run(ctx, op_rename, &pa, e);
}

/* The link's owner is set where the server lets us (lsetstat). */
static int op_symlink(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct path_args *pa = arg;
    char *rp = remote(s, pa->path);
    if (!rp)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    if (sftp_symlink(c->sftp, pa->path2, rp) < 0) {
        rc = op_fail(s, c, e, "symlink", pa->path);
        if (rc == -EIO && kind_at(c, rp))
            rc = sky_fail(e, EEXIST, "sftp '%s': symlink \"%s\": something is already there",
                          cloud_name(s), pa->path);
    } else if (pa->attr && (pa->attr->has & (SKY_HAS_UID | SKY_HAS_GID))) {
        struct sky_attr cur;
        rc = lstat_remote(s, c, rp, pa->path, &cur, e);
        if (rc == 0)
            rc = set_link_attr(s, c, rp, pa->path, pa->attr,
                               pa->attr->has & (SKY_HAS_UID | SKY_HAS_GID), &cur, e);
        if (rc == -EACCES)
            rc = 0;     /* the login user may not give files away: it keeps them */
    }
    free(rp);
    return rc;
}

static int sftp_symlink_path(void *ctx, const char *path, const char *target,
                             const struct sky_attr *attr, struct sky_err *e)
{
    struct path_args pa = { .path = path, .path2 = target, .attr = attr };
    return run(ctx, op_symlink, &pa, e);
}

static int op_readlink(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct path_args *pa = arg;
    char *rp = remote(s, pa->path);
    if (!rp)
        return sky_fail(e, ENOMEM, "out of memory");
    char *t = sftp_readlink(c->sftp, rp);
    free(rp);
    if (!t)
        return op_fail(s, c, e, "readlink", pa->path);
    int rc = 0;
    if (strlen(t) >= pa->size)
        rc = sky_fail(e, ENAMETOOLONG, "sftp '%s': readlink \"%s\": target too long",
                      cloud_name(s), pa->path);
    else
        strcpy(pa->buf, t);
    ssh_string_free_char(t);
    return rc;
}

static int sftp_readlink_path(void *ctx, const char *path, char *buf, size_t size,
                              struct sky_err *e)
{
    struct path_args pa = { .path = path, .buf = buf, .size = size };
    return run(ctx, op_readlink, &pa, e);
}

/* ---- df ---- */

static int op_statfs(struct sftp_cloud *s, struct sftp_conn *c, void *arg, struct sky_err *e)
{
    struct statvfs *st = arg;
    if (!c->statvfs)
        return sky_fail(e, ENOSYS, "sftp '%s': the server has no statvfs@openssh.com",
                        cloud_name(s));
    char *rp = remote(s, "");
    if (!rp)
        return sky_fail(e, ENOMEM, "out of memory");
    sftp_statvfs_t v = sftp_statvfs(c->sftp, rp);
    free(rp);
    if (!v)
        return op_fail(s, c, e, "statvfs", "");
    memset(st, 0, sizeof *st);
    st->f_bsize = v->f_bsize;
    st->f_frsize = v->f_frsize;
    st->f_blocks = v->f_blocks;
    st->f_bfree = v->f_bfree;
    st->f_bavail = v->f_bavail;
    st->f_files = v->f_files;
    st->f_ffree = v->f_ffree;
    st->f_favail = v->f_favail;
    st->f_fsid = v->f_fsid;
    st->f_namemax = v->f_namemax;
    sftp_statvfs_free(v);
    return 0;
}

static int sftp_statfs_cloud(void *ctx, struct statvfs *st, struct sky_err *e)
{
    return run(ctx, op_statfs, st, e);
}

/* ---- open, close ---- */

static int sftp_open_cloud(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e)
{
    struct sftp_cloud *s = calloc(1, sizeof *s);
    if (!s)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = sftp_pool_init(&s->pool, cfg, e);
    if (rc) {
        free(s);
        return rc;
    }
    *ctx = s;
    return 0;
}

static void sftp_close_cloud(void *ctx)
{
    struct sftp_cloud *s = ctx;
    sftp_pool_destroy(&s->pool);
    free(s);
}

static const struct sky_key sftp_keys[] = {
    { "host", SKY_KEY_REQUIRED, "the SSH server's name or address" },
    { "port", 0, "its SSH port (default 22)" },
    { "user", 0, "the user to log in as (default: the user running skyfs)" },
    { "path", 0, "the cloud's root directory on the server (default: the login directory)" },
    { "key_file", 0, "private key to log in with (mode 0600)" },
    { "key_passphrase", SKY_KEY_SECRET, "passphrase of key_file, if it has one" },
    { "password", SKY_KEY_SECRET, "password to log in with" },
    { "agent", SKY_KEY_BOOL, "yes: log in with the keys of the ssh-agent at SSH_AUTH_SOCK" },
    { "known_hosts", 0,
      "file of trusted host keys (default ~/.ssh/known_hosts of the user running skyfs)" },
    { "host_key", 0,
      "the server's host key fingerprint, SHA256:... (checked instead of known_hosts)" },
    { "connections", SKY_KEY_COUNT, "SSH sessions kept open at most, 1 to 16 (default 4)" },
    { "timeout", SKY_KEY_DURATION, "connect and per-request timeout (default 15s)" },
    { NULL, 0, NULL },
};

const struct sky_driver sky_driver_sftp = {
    .type = "sftp",
    .summary = "a directory on an SSH server (SFTP)",
    .keys = sftp_keys,
    .caps = SKY_CAP_RENAME_DIR | SKY_CAP_CONDITIONAL,
    .open = sftp_open_cloud,
    .close = sftp_close_cloud,
    .list = sftp_list,
    .stat = sftp_stat_path,
    .read = sftp_read_range,
    .write = sftp_write_file,
    .remove = sftp_remove,
    .mkdir = sftp_mkdir_path,
    .rmdir = sftp_rmdir_path,
    .rename = sftp_rename_path,
    .set_attr = sftp_set_attr,
    .symlink = sftp_symlink_path,
    .readlink = sftp_readlink_path,
    .statfs = sftp_statfs_cloud,
    .guarantee = sftp_guarantee,
};
