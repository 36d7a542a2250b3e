/* cachedir.c - see cachedir.h. */
#include "cachedir.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_NAME "lock"

/* mkdir -p: folders it creates are 0700; existing ones are left alone
 * (the last one is checked and fixed by the caller). */
static int make_dirs(const char *path, struct sky_err *e)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
        return sky_fail(e, ENAMETOOLONG, "cache directory %s: name too long", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(p, 0700);
        *s = '/';
    }
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
        return sky_fail(e, errno, "cannot create cache directory %s: %s; set [cache] dir to a "
                        "writable place", path, strerror(errno));
    return 0;
}

/* Read what the lock file records: "pid\nmountpoint\nlog\n". */
static void read_record(int fd, struct cachedir_holder *h)
{
    char buf[2 * PATH_MAX + 64];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *save, *line = strtok_r(buf, "\n", &save);   /* the pid: the kernel's word wins */
    if (line && (line = strtok_r(NULL, "\n", &save)) && strcmp(line, "-") != 0)
        snprintf(h->mountpoint, sizeof h->mountpoint, "%s", line);
    if (line && (line = strtok_r(NULL, "\n", &save)) && strcmp(line, "-") != 0)
        snprintf(h->log_path, sizeof h->log_path, "%s", line);
}

/* The pid holding a write lock on fd's file, 0 when none. */
static pid_t lock_owner(int fd)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK)
        return 0;
    return fl.l_pid;
}

static int fix_mode(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    mode_t want = type == FTW_D ? 0700 : 0600;
    if ((type == FTW_D || type == FTW_F) && st->st_uid == geteuid() &&
        (st->st_mode & 07777) != want && chmod(path, want) != 0)
        return errno;
    return 0;
}

int cachedir_claim(const char *dir, const char *mountpoint, const char *log_path,
                   int *lock_fd, struct sky_err *e)
{
    *lock_fd = -1;
    int rc = make_dirs(dir, e);
    if (rc)
        return rc;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (dfd < 0 || fstat(dfd, &st) != 0) {
        rc = sky_fail(e, errno, "cannot open cache directory %s: %s", dir, strerror(errno));
        goto out;
    }
    if (st.st_uid != geteuid()) {
        rc = sky_fail(e, EACCES, "cache directory %s belongs to uid %u, not to you (uid %u); "
                      "set [cache] dir to a folder of yours", dir, (unsigned)st.st_uid,
                      (unsigned)geteuid());
        goto out;
    }
    if ((st.st_mode & 07777) != 0700 && fchmod(dfd, 0700) != 0) {
        rc = sky_fail(e, errno, "cannot make cache directory %s private (chmod 700): %s", dir,
                      strerror(errno));
        goto out;
    }
    int fd = openat(dfd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = sky_fail(e, errno, "cannot open %s/%s: %s", dir, LOCK_NAME, strerror(errno));
        goto out;
    }
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int err = errno;
        struct cachedir_holder h = { 0 };
        h.pid = lock_owner(fd);
        read_record(fd, &h);
        close(fd);
        if (err != EAGAIN && err != EACCES) {
            rc = sky_fail(e, err, "cannot lock cache directory %s: %s", dir, strerror(err));
            goto out;
        }
        char who[PATH_MAX + 64] = "another skyfs daemon";
        if (h.pid > 0)
            snprintf(who, sizeof who, "the skyfs daemon pid %d%s%s", (int)h.pid,
                     h.mountpoint[0] ? " serving " : "", h.mountpoint);
        rc = sky_fail(e, EBUSY, "cache directory %s is in use by %s; two mounts cannot share "
                      "a cache: give this mount its own [cache] dir (without [cache] dir each "
                      "mount gets its own)", dir, who);
        goto out;
    }
    char rec[2 * PATH_MAX + 64];
    int len = snprintf(rec, sizeof rec, "%d\n%s\n%s\n", (int)getpid(),
                       mountpoint && *mountpoint ? mountpoint : "-", log_path ? log_path : "-");
    if (ftruncate(fd, 0) != 0 || pwrite(fd, rec, (size_t)len, 0) != len) {
        int err = errno;
        rc = sky_fail(e, err, "cannot write %s/%s: %s%s", dir, LOCK_NAME, strerror(err),
                      err == ENOSPC ? "; the cache's file system is full: free space there, "
                                      "or set [cache] dir to a folder on another one" : "");
        close(fd);
        goto out;
    }
    int bad = nftw(dir, fix_mode, 16, FTW_PHYS);
    if (bad) {
        rc = sky_fail(e, bad > 0 ? bad : errno, "cannot make the files in cache directory %s "
                      "private (chmod 600): %s", dir, strerror(bad > 0 ? bad : errno));
        close(fd);
        goto out;
    }
    *lock_fd = fd;
out:
    if (dfd >= 0)
        close(dfd);
    return rc;
}

void cachedir_release(int lock_fd)
{
    if (lock_fd >= 0)
        close(lock_fd);
}

int cachedir_holder(const char *dir, struct cachedir_holder *h, struct sky_err *e)
{
    memset(h, 0, sizeof *h);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, LOCK_NAME);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return sky_fail(e, errno, "cannot read %s: %s", path, strerror(errno));
    }
    h->pid = lock_owner(fd);
    read_record(fd, h);
    close(fd);
    return 0;
}

int cachedir_pending_uploads(const char *dir, uint64_t *count, struct sky_err *e)
{
    *count = 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/blocks.db", dir);
    if (access(path, F_OK) != 0)
        return 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM objects WHERE dirty=1", -1, &st, NULL);
    }
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *count = (uint64_t)sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    int ret = rc == SQLITE_OK ? 0 : sky_fail(e, EIO, "cannot read the upload journal in %s: %s",
                                             path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ret;
}

int cachedir_adopt_legacy(const char *legacy, const char *dir, const char *mountpoint,
                          bool *moved, struct sky_err *e)
{
    static const char *const names[] = {
        "meta.db", "meta.db-wal", "meta.db-shm", "blocks.db", "blocks.db-wal", "blocks.db-shm",
        "data", "health", "mountpoint",
    };
    *moved = false;
    char path[PATH_MAX], last[PATH_MAX] = "";
    struct stat st;
    if (stat(dir, &st) == 0)
        return 0;
    snprintf(path, sizeof path, "%s/mountpoint", legacy);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (fgets(last, sizeof last, f))
        last[strcspn(last, "\n")] = '\0';
    fclose(f);
    snprintf(path, sizeof path, "%s/meta.db", legacy);
    if (strcmp(last, mountpoint) != 0 || stat(path, &st) != 0)
        return 0;
    /* A daemon of this version may use the legacy folder as its explicit
     * [cache] dir: only move what nobody holds. */
    int lock_fd;
    struct sky_err ignored = { 0 };
    if (cachedir_claim(legacy, NULL, NULL, &lock_fd, &ignored) != 0)
        return 0;
    int rc = make_dirs(dir, e);
    for (size_t i = 0; !rc && i < sizeof names / sizeof *names; i++) {
        char from[PATH_MAX], to[PATH_MAX];
        snprintf(from, sizeof from, "%s/%s", legacy, names[i]);
        snprintf(to, sizeof to, "%s/%s", dir, names[i]);
        if (rename(from, to) != 0 && errno != ENOENT)
            rc = sky_fail(e, errno, "cannot move the cache %s to %s: %s", from, to,
                          strerror(errno));
    }
    cachedir_release(lock_fd);
    *moved = rc == 0;
    return rc;
}
