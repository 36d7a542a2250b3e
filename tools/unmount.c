/*
 * unmount.c - `skyfs unmount`: unmount, then wait (with a bound, saying
 * what for) until the daemon has finished its pending uploads and exited.
 *
 * The daemon is the process its pid file names only if that process
 * still has the start time the file records (a pid can be reused).  When
 * the kernel unmount succeeded but the daemon runs on with nothing left
 * to upload while still serving (its pid file is kept until its FUSE loop
 * ends), a copy of the mount lives in another mount namespace and the
 * kernel will never tell the daemon to stop: it is asked to with SIGTERM.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../cache/cachedir.h"
#include "../fs/mount.h"
#include "../lib/clock.h"
#include "../fs/pidfile.h"
#include "tools.h"

#define REPORT_EVERY_S 2
#define IDLE_BEFORE_SIGNAL_S 1     /* nothing pending, still serving: this long */

/* Whether the daemon is still in its FUSE loop: its pid file names it. */
static bool still_serving(const struct pidfile_info *daemon)
{
    struct pidfile_info now;
    struct sky_err ignored = { 0 };
    return pidfile_read(daemon->mountpoint, &now, &ignored) == 0 && now.pid == daemon->pid &&
           now.start_time == daemon->start_time;
}

static int wait_for_daemon(const struct pidfile_info *d, int timeout_s)
{
    double start = clock_now_s(), last_report = start, idle_since = -1;
    bool signalled = false;
    while (pidfile_daemon_alive(d)) {
        uint64_t pending = 0;
        struct sky_err e = { 0 };
        bool known = d->cache_dir[0] && cachedir_pending_uploads(d->cache_dir, &pending, &e) == 0;
        double t = clock_now_s();
        if (known && pending == 0 && !signalled && still_serving(d)) {
            if (idle_since < 0)
                idle_since = t;
            if (t - idle_since >= IDLE_BEFORE_SIGNAL_S) {
                fprintf(stderr, "skyfs: %s is unmounted here, but daemon pid %d still serves it "
                        "(a copy of the mount in another mount namespace keeps it); nothing "
                        "is pending, so it is told to stop\n", d->mountpoint, (int)d->pid);
                if (pidfile_daemon_alive(d))
                    kill(d->pid, SIGTERM);
                signalled = true;
            }
        } else {
            idle_since = -1;
        }
        if (timeout_s > 0 && t - start >= timeout_s) {
            char what[64] = "";
            if (known)
                snprintf(what, sizeof what, " with %" PRIu64 " pending upload(s)", pending);
            fprintf(stderr, "skyfs: gave up waiting after %d s: daemon pid %d still runs%s; it "
                    "goes on by itself (skyfs status shows what is pending)\n", timeout_s,
                    (int)d->pid, what);
            return 1;
        }
        if (t - last_report >= REPORT_EVERY_S) {
            last_report = t;
            if (known && pending)
                fprintf(stderr, "skyfs: waiting for daemon pid %d: %" PRIu64 " pending "
                        "upload(s) (%.0f s)\n", (int)d->pid, pending, t - start);
            else
                fprintf(stderr, "skyfs: waiting for daemon pid %d to exit (%.0f s)\n",
                        (int)d->pid, t - start);
        }
        struct timespec tick = { 0, 100 * 1000 * 1000 };
        nanosleep(&tick, NULL);
    }
    /* the daemon tried every pending upload once more before it exited:
     * what is left could not be made, and the person should know */
    uint64_t left = 0;
    struct sky_err e = { 0 };
    if (d->cache_dir[0] && cachedir_pending_uploads(d->cache_dir, &left, &e) == 0 && left) {
        fprintf(stderr, "skyfs: %s is unmounted, but %" PRIu64 " upload(s) could not be made "
                "(the cloud refused or could not be reached; its log says why): they are "
                "kept in the cache %s and go up at the next mount with it; skyfs status "
                "counts them\n", d->mountpoint, left, d->cache_dir);
        return 1;
    }
    return 0;
}

int unmount_and_wait(const char *given, int timeout_s)
{
    char mnt[PATH_MAX], fstype[64] = "";
    pidfile_abspath(given, mnt, sizeof mnt);
    bool mounted = skyfs_mount_lookup(mnt, fstype, sizeof fstype);
    if (!mounted) {
        /* Perhaps a path through a symbolic link. */
        char real[PATH_MAX];
        if (realpath(given, real) && strcmp(real, mnt) != 0 &&
            skyfs_mount_lookup(real, fstype, sizeof fstype)) {
            snprintf(mnt, sizeof mnt, "%s", real);
            mounted = true;
        }
    }
    struct pidfile_info daemon;
    struct sky_err e = { 0 };
    int rc = pidfile_read(mnt, &daemon, &e);
    bool have_daemon = rc == 0 && pidfile_daemon_alive(&daemon);
    if (rc == 0 && !have_daemon && pidfile_process_start(daemon.pid))
        fprintf(stderr, "skyfs: the pid file of %s names pid %d, which is not its daemon any "
                "more (another process since); not waiting for it\n", mnt, (int)daemon.pid);
    else if (rc != 0 && rc != -ENOENT)
        fprintf(stderr, "skyfs: %s\n", e.msg);
    if (!mounted && !have_daemon) {
        fprintf(stderr, "skyfs: %s is not mounted\n", mnt);
        return 1;
    }
    if (mounted && strcmp(fstype, "fuse.skyfs") != 0) {
        fprintf(stderr, "skyfs: %s is a %s mount, not a skyfs one; use umount\n", mnt, fstype);
        return 1;
    }
    if (mounted) {
        rc = skyfs_fuse_unmount(mnt, false);
        if (rc) {
            fprintf(stderr, "skyfs: cannot unmount %s: %s%s\n", mnt, strerror(-rc),
                    rc == -EBUSY ? "; close the files and shells using it first" : "");
            return 1;
        }
    } else {
        fprintf(stderr, "skyfs: %s is not mounted here, but its daemon pid %d still runs; "
                "waiting for it\n", mnt, (int)daemon.pid);
    }
    return have_daemon ? wait_for_daemon(&daemon, timeout_s) : 0;
}
