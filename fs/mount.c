/*
 * mount.c - starting and stopping one mount: FUSE session, daemon, pid file.
 *
 * Without -f the process forks; the child sets everything up and tells the
 * parent through a pipe whether the mount is ready, so `skyfs mount`
 * returns only when the directory really works, or with the reason it does
 * not.  The pid file (runtime dir, named after the mountpoint) lets
 * `skyfs unmount` wait for the daemon to finish its uploads.
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "skyfs.h"
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../backends/http.h"
#include "../lib/log.h"

/* Absolute form of a path, worked out from the text alone: a mountpoint
 * must not be touched (stat) when its daemon may be hung. */
static void lexical_abspath(const char *path, char *out, size_t size)
{
    char buf[PATH_MAX], cwd[PATH_MAX];
    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
        snprintf(buf, sizeof buf, "%s", path);
    else
        snprintf(buf, sizeof buf, "%s/%s", cwd, path);
    size_t len = 0;
    out[0] = '\0';
    for (char *save, *part = strtok_r(buf, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        if (strcmp(part, ".") == 0)
            continue;
        if (strcmp(part, "..") == 0) {
            char *slash = strrchr(out, '/');
            len = slash ? (size_t)(slash - out) : 0;
            out[len] = '\0';
            continue;
        }
        len += (size_t)snprintf(out + len, size - len, "/%s", part);
        if (len >= size)
            break;
    }
    if (!out[0])
        snprintf(out, size, "/");
}

char *skyfs_pidfile_path(const char *mountpoint)
{
    char real[PATH_MAX];
    lexical_abspath(mountpoint, real, sizeof real);
    char dir[PATH_MAX];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (geteuid() == 0)
        snprintf(dir, sizeof dir, "/run/skyfs");
    else if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/skyfs", xdg);
    else
        snprintf(dir, sizeof dir, "/tmp/skyfs-%u", (unsigned)getuid());
    mkdir(dir, 0700);
    for (char *p = real; *p; p++)
        if (*p == '/')
            *p = '_';
    char *out;
    if (asprintf(&out, "%s/%s.pid", dir, real) < 0)
        return NULL;
    return out;
}

int skyfs_check_mountpoint(const char *mountpoint, struct sky_err *e)
{
    struct stat st, parent;
    if (stat(mountpoint, &st) != 0)
        return sky_fail(e, errno, "mountpoint %s: %s; create it with mkdir -p %s", mountpoint,
                        strerror(errno), mountpoint);
    if (!S_ISDIR(st.st_mode))
        return sky_fail(e, ENOTDIR, "mountpoint %s is not a directory; mount on an empty "
                        "directory", mountpoint);
    char up[PATH_MAX];
    snprintf(up, sizeof up, "%s/..", mountpoint);
    if (stat(up, &parent) == 0 && parent.st_dev != st.st_dev)
        return sky_fail(e, EBUSY, "mountpoint %s is already in use by another mount; unmount "
                        "it first (skyfs unmount %s)", mountpoint, mountpoint);
    return 0;
}

/* <cache>/mountpoint tells skyfs search where results live. */
static void record_mountpoint(const char *cache_dir, const char *mountpoint)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/mountpoint", cache_dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s\n", mountpoint);
        fclose(f);
    }
}

/* Tell the waiting parent how set-up went: "0" or the error message. */
static void notify_parent(int fd, int rc, const struct sky_err *e)
{
    if (fd < 0)
        return;
    char msg[600];
    int len = snprintf(msg, sizeof msg, "%d %s", rc ? (e->code ? e->code : EIO) : 0,
                       rc ? e->msg : "");
    if (write(fd, msg, (size_t)len) < 0)
        LOG_ERROR("cannot report to the starting process");
    close(fd);
}

/* In the parent: wait for the child's verdict. */
static int wait_for_child(int fd, struct sky_err *e)
{
    char msg[600];
    ssize_t n, len = 0;
    while ((n = read(fd, msg + len, sizeof msg - 1 - (size_t)len)) > 0)
        len += n;
    close(fd);
    msg[len] = '\0';
    if (len == 0)
        return sky_fail(e, EIO, "the skyfs daemon died while starting; run with -f to see why");
    int code = atoi(msg);
    if (code == 0)
        return 0;
    char *text = strchr(msg, ' ');
    return sky_fail(e, code, "%s", text ? text + 1 : "mount failed");
}

static void detach_stdio(void)
{
    int null = open("/dev/null", O_RDWR);
    if (null < 0)
        return;
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2)
        close(null);
}

/* The daemon's heap: a fixed threshold (glibc would raise it to the
 * largest block freed so far, 1 MiB read replies and FUSE buffers, and
 * then keep such blocks in its arenas) hands large buffers back to the
 * kernel at free; two arenas instead of one per thread (8 per core)
 * bound what many fetch, upload and FUSE threads leave behind. */
static void tune_heap(void)
{
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024);
    mallopt(M_ARENA_MAX, 2);
}

unsigned skyfs_request_size(void)
{
    static atomic_uint size;
    unsigned n = atomic_load(&size);
    if (n)
        return n;
    n = 512u * 1024;
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
        if (fcntl(p[0], F_SETPIPE_SZ, (int)(1024 * 1024 + sysconf(_SC_PAGESIZE))) >= 0)
            n = 1024u * 1024;
        close(p[0]);
        close(p[1]);
    }
    atomic_store(&size, n);
    return n;
}

/* uid=, gid=, umask=: what every entry shows (perm.h). */
static void apply_shown_options(struct skyfs *fs, const struct mountopts *o)
{
    if (o->has_uid) {
        fs->shown.uid = o->uid;
        fs->shown.force_uid = true;
    }
    if (o->has_gid) {
        fs->shown.gid = o->gid;
        fs->shown.force_gid = true;
    }
    if (o->has_umask) {
        fs->shown.umask = o->umask;
        fs->shown.has_umask = true;
    }
}

/* A value inside FUSE's -o list: ',' and '\' escaped with '\'. */
static void escape_option(const char *value, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = value; *p && n + 3 < size; p++) {
        if (*p == ',' || *p == '\\')
            out[n++] = '\\';
        out[n++] = *p;
    }
    out[n] = '\0';
}

static int serve(struct sky_config *cfg, const struct mount_options *opt, int notify_fd,
                 struct sky_err *e)
{
    tune_heap();
    struct skyfs *fs = NULL;
    int rc = skyfs_open(cfg, opt->mountpoint, &fs, e);
    if (rc) {
        notify_parent(notify_fd, rc, e);
        return rc;
    }
    apply_shown_options(fs, &opt->o);
    char *argv[8];
    int argc = 0;
    argv[argc++] = "skyfs";
    if (opt->debug)
        argv[argc++] = "-d";
    /* fsname is the config's path, as an fstab line names it: mount(8)
     * finds a mounted fstab entry by source, target and type fuse.skyfs,
     * so a second `mount -a` leaves it alone */
    char fsname[PATH_MAX * 2], kernel[300], options[PATH_MAX * 2 + 400];
    escape_option(opt->source ? opt->source : cfg->path, fsname, sizeof fsname);
    mountopts_fuse(&opt->o, geteuid() == 0, kernel, sizeof kernel);
    snprintf(options, sizeof options, "fsname=%s,subtype=skyfs,default_permissions,"
             "max_read=%u,%s", fsname, skyfs_request_size(), kernel);
    argv[argc++] = "-o";
    argv[argc++] = options;
    argv[argc] = NULL;
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_session *se = fuse_session_new(&args, &skyfs_ops, sizeof skyfs_ops, fs);
    if (!se) {
        rc = sky_fail(e, EIO, "cannot start a FUSE session (is the fuse3 package installed?)");
        goto out;
    }
    if (fuse_set_signal_handlers(se) != 0) {
        rc = sky_fail(e, EIO, "cannot install signal handlers");
        goto out_session;
    }
    /* Resolve paths before mounting: afterwards, touching the mountpoint
     * would ask this very process, which is not serving yet. */
    char *pidfile = skyfs_pidfile_path(opt->mountpoint);
    if (fuse_session_mount(se, opt->mountpoint) != 0) {
        free(pidfile);
        rc = sky_fail(e, EIO, "cannot mount on %s (is /dev/fuse available and fusermount3 "
                      "installed?)", opt->mountpoint);
        goto out_signals;
    }
    FILE *pf = pidfile ? fopen(pidfile, "w") : NULL;
    if (pf) {
        fprintf(pf, "%d\n", (int)getpid());
        fclose(pf);
    }
    record_mountpoint(cfg->cache_dir, opt->mountpoint);
    files_start_recovery(fs);
    LOG_INFO("mounted %zu cloud(s) at %s (cache %s)", cfg->nclouds, opt->mountpoint,
             cfg->cache_dir);
    notify_parent(notify_fd, 0, e);
    notify_fd = -1;

    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(lc, 64);
    fuse_loop_cfg_set_idle_threads(lc, 8);
    rc = fuse_session_loop_mt(se, lc);
    fuse_loop_cfg_destroy(lc);
    LOG_INFO("unmounting %s", opt->mountpoint);
    fuse_session_unmount(se);
    if (pidfile)
        unlink(pidfile);
    free(pidfile);
    rc = rc < 0 ? sky_fail(e, -rc, "FUSE loop ended with an error") : 0;
out_signals:
    fuse_remove_signal_handlers(se);
out_session:
    fuse_session_destroy(se);
out:
    fuse_opt_free_args(&args);
    if (notify_fd >= 0)
        notify_parent(notify_fd, rc ? rc : -EIO, e);
    skyfs_close(fs);
    LOG_INFO("skyfs stopped");
    return rc;
}

int skyfs_mount(struct sky_config *cfg, const struct mount_options *given, struct sky_err *e)
{
    int rc = skyfs_check_mountpoint(given->mountpoint, e);
    if (rc)
        return rc;
    char real[PATH_MAX];
    if (!realpath(given->mountpoint, real))
        return sky_fail(e, errno, "mountpoint %s: %s", given->mountpoint, strerror(errno));
    rc = mountopts_check_empty(&given->o, real, e);
    if (rc)
        return rc;
    struct mount_options resolved = *given;
    resolved.mountpoint = real;
    char source[PATH_MAX];
    if (realpath(cfg->path, source))
        resolved.source = source;
    const struct mount_options *opt = &resolved;
    FILE *log = NULL;
    if (opt->log_file) {
        log = fopen(opt->log_file, "a");
        if (!log)
            return sky_fail(e, errno, "cannot open log file %s: %s", opt->log_file, strerror(errno));
        setvbuf(log, NULL, _IOLBF, 0);
    }
    if (opt->debug)
        sky_log_set_level(SKY_LOG_DEBUG);
    if (opt->foreground) {
        sky_log_set_file(log);
        http_global_init();
        rc = serve(cfg, opt, -1, e);
    } else {
        int fds[2];
        if (pipe(fds) != 0)
            return sky_fail(e, errno, "pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
            return sky_fail(e, errno, "fork: %s", strerror(errno));
        if (pid > 0) {
            close(fds[1]);
            if (log)
                fclose(log);
            return wait_for_child(fds[0], e);
        }
        close(fds[0]);
        setsid();
        if (chdir("/") != 0)
            LOG_WARN("cannot chdir to /");
        detach_stdio();
        sky_log_set_file(log);
        http_global_init();
        rc = serve(cfg, opt, fds[1], e);
        if (rc)
            LOG_ERROR("%s", e->msg);
        sky_config_free(cfg);
        if (log)
            fclose(log);
        _exit(rc ? 1 : 0);
    }
    if (log)
        fclose(log);
    return rc;
}
