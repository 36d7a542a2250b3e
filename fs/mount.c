/*
 * mount.c - starting and stopping one mount: FUSE session, daemon, pid file.
 *
 * Without -f the process forks; the child sets everything up and tells the
 * parent through a pipe whether the mount is ready, so `skyfs mount`
 * returns only when the directory really works, or with the reason it does
 * not.  Before anything else the daemon claims its cache folder
 * (cache/cachedir.h: one daemon per cache), then opens its log, then
 * mounts and records itself in a pid file (fs/pidfile.h) that lets
 * `skyfs unmount` find it and wait for its uploads.
 *
 * A mountpoint left behind by a daemon that died ("Transport endpoint is
 * not connected") is cleared with a lazy unmount when no daemon serves
 * it, and the mount goes on.
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define SKY_LEAK_CHECK() __lsan_do_leak_check()
#else
#define SKY_LEAK_CHECK() ((void)0)
#endif

#include "../backends/http.h"
#include "../cache/cachedir.h"
#include "../lib/log.h"
#include "../lib/sdnotify.h"
#include "crawl.h"
#include "kforget.h"
#include "liveness.h"
#include "mountmetrics.h"
#include "pidfile.h"

/* /proc/self/mountinfo writes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

int skyfs_mount_lookup(const char *mountpoint, char *fstype, size_t size)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent dev root MOUNTPOINT options [optional...] - FSTYPE ... */
        char *save, *field = strtok_r(line, " ", &save);
        for (int i = 1; field && i < 5; i++)
            field = strtok_r(NULL, " ", &save);
        if (!field)
            continue;
        unescape_octal(field);
        if (strcmp(field, mountpoint) != 0)
            continue;
        found = 1;               /* the last match is the one on top */
        while ((field = strtok_r(NULL, " ", &save)) && strcmp(field, "-") != 0)
            ;
        field = field ? strtok_r(NULL, " ", &save) : NULL;
        if (fstype && size)
            snprintf(fstype, size, "%s", field ? field : "");
    }
    free(line);
    fclose(f);
    return found;
}

int skyfs_fuse_unmount(const char *mountpoint, bool lazy)
{
    if (geteuid() == 0)
        return umount2(mountpoint, lazy ? MNT_DETACH : 0) == 0 ? 0 : -errno;
    pid_t child = fork();
    if (child == 0) {
        if (lazy)
            execlp("fusermount3", "fusermount3", "-u", "-z", "--", mountpoint, (char *)NULL);
        else
            execlp("fusermount3", "fusermount3", "-u", "--", mountpoint, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) < 0)
        return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EBUSY;
}

/* The mountpoint answers ENOTCONN: the FUSE daemon behind it died.  Clear
 * it (lazy unmount) when it is a skyfs mount that no live daemon serves. */
static int clear_dead_mount(const char *mountpoint, struct sky_err *e)
{
    char abs[PATH_MAX], fstype[64] = "";
    pidfile_abspath(mountpoint, abs, sizeof abs);
    struct pidfile_info info;
    struct sky_err ignored = { 0 };
    if (pidfile_read(abs, &info, &ignored) == 0 && pidfile_daemon_alive(&info))
        return sky_fail(e, EBUSY, "mountpoint %s does not answer (Transport endpoint is not "
                        "connected) while its skyfs daemon (pid %d) still runs; unmount it "
                        "first: skyfs unmount %s", mountpoint, (int)info.pid, mountpoint);
    if (!skyfs_mount_lookup(abs, fstype, sizeof fstype) || strcmp(fstype, "fuse.skyfs") != 0)
        return sky_fail(e, ENOTCONN, "mountpoint %s: Transport endpoint is not connected (a "
                        "%s mount whose program died); clear it with fusermount3 -u -z %s",
                        mountpoint, fstype[0] ? fstype : "FUSE", mountpoint);
    int rc = skyfs_fuse_unmount(abs, true);
    if (rc)
        return sky_fail(e, -rc, "mountpoint %s was left broken by a skyfs daemon that died "
                        "(Transport endpoint is not connected) and cannot be cleared: %s; run "
                        "fusermount3 -u -z %s", mountpoint, strerror(-rc), mountpoint);
    fprintf(stderr, "skyfs: %s was left broken by a skyfs daemon that died (Transport endpoint "
            "is not connected); cleared it\n", mountpoint);
    return 0;
}

int skyfs_check_mountpoint(const char *mountpoint, struct sky_err *e)
{
    struct stat st, parent;
    int rc = stat(mountpoint, &st) == 0 ? 0 : -errno;
    if (rc == -ENOTCONN) {
        if ((rc = clear_dead_mount(mountpoint, e)) != 0)
            return rc;
        rc = stat(mountpoint, &st) == 0 ? 0 : -errno;
    }
    if (rc)
        return sky_fail(e, -rc, "mountpoint %s: %s; create it with mkdir -p %s", mountpoint,
                        strerror(-rc), mountpoint);
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

/* <cache>/mountpoint tells skyfs search where results live; <cache>/config
 * which config the cache belongs to (tools find a config's latest mount
 * cache by it, lib/config.h). */
static void record_mountpoint(const struct sky_config *cfg, const char *mountpoint)
{
    char path[PATH_MAX], conf[PATH_MAX];
    snprintf(path, sizeof path, "%s/mountpoint", cfg->cache_dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s\n", mountpoint);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/config", cfg->cache_dir);
    if (realpath(cfg->path, conf) && (f = fopen(path, "w"))) {
        fprintf(f, "%s\n", conf);
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

/* libfuse's own messages (with --debug, one per request) go to our log. */
static void fuse_log_to_sky(enum fuse_log_level level, const char *fmt, va_list ap)
{
    enum sky_log_level ours = level >= FUSE_LOG_DEBUG ? SKY_LOG_DEBUG
                              : level >= FUSE_LOG_NOTICE ? SKY_LOG_INFO
                              : level == FUSE_LOG_WARNING ? SKY_LOG_WARN : SKY_LOG_ERROR;
    sky_vlog(ours, fmt, ap);
}

#define DEFAULT_LOG_NAME "skyfs.log"
#define DEFAULT_LOG_KEEP (64ULL << 20)   /* a larger log is moved to skyfs.log.1 */

/* A log file, private (0600), appended to, not reached through a link. */
static FILE *open_log(const char *path, struct sky_err *e)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (!f) {
        sky_fail(e, errno, "cannot open log file %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

/* The background daemon's default log: <cache dir>/skyfs.log. */
static FILE *open_default_log(const char *cache_dir, struct sky_err *e)
{
    char path[PATH_MAX], old[PATH_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", cache_dir, DEFAULT_LOG_NAME);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > DEFAULT_LOG_KEEP) {
        snprintf(old, sizeof old, "%s.1", path);
        rename(path, old);
    }
    return open_log(path, e);
}

/* Under systemd (Type=notify): READY=1 once the mount answers.  A thread
 * of its own asks the mount (a stat the FUSE loop answers), so the loop
 * runs meanwhile; the daemon does not wait for it. */
static void *announce_ready(void *arg)
{
    char *mountpoint = arg;
    struct stat st;
    if (stat(mountpoint, &st) == 0) {
        char state[PATH_MAX + 64];
        snprintf(state, sizeof state, "READY=1\nSTATUS=serving %s\nMAINPID=%d", mountpoint,
                 (int)getpid());
        int rc = sky_sd_notify(state);
        if (rc)
            LOG_WARN("cannot tell systemd the mount is ready: %s", strerror(-rc));
    } else {
        LOG_WARN("%s does not answer a stat (%s); systemd is not told it is ready", mountpoint,
                 strerror(errno));
    }
    free(mountpoint);
    return NULL;
}

static void start_announce_ready(const char *mountpoint)
{
    if (!getenv("NOTIFY_SOCKET"))
        return;
    pthread_t t;
    char *copy = strdup(mountpoint);
    if (!copy || pthread_create(&t, NULL, announce_ready, copy) != 0) {
        free(copy);
        LOG_WARN("cannot tell systemd the mount is ready (no thread)");
        return;
    }
    pthread_detach(t);
}

static int serve(struct sky_config *cfg, const struct mount_options *opt, int notify_fd,
                 struct sky_err *e)
{
    tune_heap();
    umask(077);
    /* The cache folder first: nothing in it may be touched while another
     * daemon owns it. */
    char log_path[PATH_MAX] = "";
    FILE *own_log = NULL;
    if (opt->log_file)
        snprintf(log_path, sizeof log_path, "%s", opt->log_file);
    else if (!opt->foreground)
        snprintf(log_path, sizeof log_path, "%s/%s", cfg->cache_dir, DEFAULT_LOG_NAME);
    int lock_fd = -1, runtime_fd = -1;
    struct skyfs *fs = NULL;
    int rc = cachedir_claim(cfg->cache_dir, opt->mountpoint, log_path[0] ? log_path : NULL,
                            &lock_fd, e);
    if (!rc && !opt->log_file && !opt->foreground) {
        if ((own_log = open_default_log(cfg->cache_dir, e)) == NULL)
            rc = -e->code;
        else
            sky_log_set_file(own_log);
    }
    if (!rc && (runtime_fd = pidfile_open_dir(e)) < 0)
        rc = runtime_fd;
    if (!rc)
        rc = skyfs_open(cfg, opt->mountpoint, &fs, e);
    if (!rc && (rc = mountmetrics_start(fs, cfg->metrics_listen, e)) != 0)
        sky_err_prefix(e, "%s:%d", cfg->path, cfg->metrics_listen_line);
    if (rc) {
        notify_parent(notify_fd, rc, e);
        if (fs) {
            mountmetrics_stop(fs);
            skyfs_close(fs);
        }
        goto out_claim;
    }
    apply_shown_options(fs, &opt->o);
    fuse_set_log_func(fuse_log_to_sky);
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
    struct fuse_session *se = fuse_session_new(&args, liveness_ops(), sizeof skyfs_core_ops, fs);
    if (!se) {
        rc = sky_fail(e, EIO, "cannot start a FUSE session (is the fuse3 package installed?)");
        goto out;
    }
    fs->session = se;   /* notices to the kernel (an atime moved by a read: times.c) */
    fs->atime = opt->o.atime;
    if (fuse_set_signal_handlers(se) != 0 || liveness_stop_on_signals() != 0) {
        rc = sky_fail(e, EIO, "cannot install signal handlers");
        goto out_session;
    }
    if (fuse_session_mount(se, opt->mountpoint) != 0) {
        rc = sky_fail(e, EIO, "cannot mount on %s (is /dev/fuse available and fusermount3 "
                      "installed?)", opt->mountpoint);
        goto out_signals;
    }
    struct sky_err perr = { 0 };
    if (pidfile_write(runtime_fd, opt->mountpoint, cfg->cache_dir, &perr) != 0)
        LOG_WARN("%s; skyfs unmount will not wait for pending uploads", perr.msg);
    record_mountpoint(cfg, opt->mountpoint);
    if (kforget_start(fs) != 0)
        LOG_WARN("cannot start the thread that tells the kernel of removed files; "
                 "a file removed on a cloud may still show until the cloud's ttl");
    if (writeback_start(fs, &perr) != 0)
        LOG_WARN("%s; files on write_back = async clouds are uploaded by the journal thread",
                 perr.msg);
    files_start_recovery(fs);
    crawl_start(fs);
    LOG_INFO("mounted %zu cloud(s) at %s (cache %s, pid %d)", cfg->nclouds, opt->mountpoint,
             cfg->cache_dir, (int)getpid());
    notify_parent(notify_fd, 0, e);
    notify_fd = -1;
    start_announce_ready(opt->mountpoint);

    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(lc, 64);
    fuse_loop_cfg_set_idle_threads(lc, 8);
    rc = fuse_session_loop_mt(se, lc);
    fuse_loop_cfg_destroy(lc);
    LOG_INFO("unmounting %s", opt->mountpoint);
    sky_sd_notify("STOPPING=1\nSTATUS=unmounting; finishing pending uploads");
    kforget_stop(fs);
    fuse_session_unmount(se);
    pidfile_remove(runtime_fd, opt->mountpoint);
    rc = rc < 0 ? sky_fail(e, -rc, "FUSE loop ended with an error") : 0;
out_signals:
    fuse_remove_signal_handlers(se);
out_session:
    fs->session = NULL;
    fuse_session_destroy(se);
out:
    fuse_opt_free_args(&args);
    if (notify_fd >= 0)
        notify_parent(notify_fd, rc ? rc : -EIO, e);
    mountmetrics_stop(fs);
    skyfs_close(fs);
    LOG_INFO("skyfs stopped");
out_claim:
    /* The cache is released only once its journal is closed. */
    if (runtime_fd >= 0)
        close(runtime_fd);
    cachedir_release(lock_fd);
    if (own_log) {
        if (rc)
            LOG_ERROR("%s", e->msg);
        sky_log_set_file(NULL);
        fclose(own_log);
    }
    return rc;
}

int skyfs_mount(struct sky_config *cfg, const struct mount_options *given, struct sky_err *e)
{
    int rc = skyfs_check_mountpoint(given->mountpoint, e);
    if (rc)
        return rc;
    char real[PATH_MAX], log_real[PATH_MAX];
    if (!realpath(given->mountpoint, real))
        return sky_fail(e, errno, "mountpoint %s: %s", given->mountpoint, strerror(errno));
    rc = mountopts_check_empty(&given->o, real, e);
    if (rc == 0)
        rc = skyfs_check_clouds(cfg, e);
    if (rc)
        return rc;
    struct mount_options resolved = *given;
    resolved.mountpoint = real;
    char source[PATH_MAX];
    if (realpath(cfg->path, source))
        resolved.source = source;
    const struct mount_options *opt = &resolved;
    if (cfg->cache_base) {
        if ((rc = sky_config_use_mount_cache(cfg, real, e)) != 0)
            return rc;
        bool moved = false;
        if ((rc = cachedir_adopt_legacy(cfg->cache_base, cfg->cache_dir, real, &moved, e)) != 0)
            return rc;
        if (moved)
            fprintf(stderr, "skyfs: moved the cache of %s from %s to %s (each mount now has "
                    "its own cache folder)\n", real, cfg->cache_base, cfg->cache_dir);
    }
    FILE *log = NULL;
    if (opt->log_file) {
        if (!(log = open_log(opt->log_file, e)))
            return -e->code;
        if (realpath(opt->log_file, log_real))
            resolved.log_file = log_real;
    }
    if (opt->debug)
        sky_log_set_level(SKY_LOG_DEBUG);
    else if (cfg->log_level >= 0)
        sky_log_set_level((enum sky_log_level)cfg->log_level);
    if (opt->foreground) {
        sky_log_set_file(log);
        sky_log_detect_journal();       /* under systemd: levels for the journal */
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
        /* _exit skips atexit handlers, LeakSanitizer's among them: under
         * `make asan` the daemon checks for leaks here, as any process
         * does at exit (a leak report goes to the test's logs). */
        SKY_LEAK_CHECK();
        _exit(rc ? 1 : 0);
    }
    if (log)
        fclose(log);
    return rc;
}
