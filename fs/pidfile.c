/* pidfile.c - see pidfile.h. */
#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void pidfile_abspath(const char *path, char *out, size_t size)
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

static void runtime_dir_path(char *dir, size_t size)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (geteuid() == 0)
        snprintf(dir, size, "/run/skyfs");
    else if (xdg && *xdg)
        snprintf(dir, size, "%s/skyfs", xdg);
    else
        snprintf(dir, size, "/tmp/skyfs-%u", (unsigned)geteuid());
}

/* "_srv_clouds.pid" for /srv/clouds. */
static void file_name(const char *mountpoint, char *out, size_t size)
{
    char abs[PATH_MAX];
    pidfile_abspath(mountpoint, abs, sizeof abs);
    for (char *p = abs; *p; p++)
        if (*p == '/')
            *p = '_';
    snprintf(out, size, "%s.pid", abs);
}

int pidfile_open_dir(struct sky_err *e)
{
    char dir[PATH_MAX];
    runtime_dir_path(dir, sizeof dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return sky_fail(e, errno, "cannot create the runtime folder %s: %s; set "
                        "XDG_RUNTIME_DIR to a folder of yours", dir, strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int err = errno == ELOOP || errno == ENOTDIR ? EACCES : errno;
        if (fd >= 0)
            close(fd);
        return sky_fail(e, err, "the runtime folder %s is not a folder of yours (%s); remove "
                        "it, or set XDG_RUNTIME_DIR to a folder of yours", dir,
                        errno == ELOOP ? "it is a symbolic link" : strerror(errno));
    }
    if (st.st_uid != geteuid() || (st.st_mode & 07777) != 0700) {
        close(fd);
        if (st.st_uid != geteuid())
            return sky_fail(e, EACCES, "the runtime folder %s belongs to uid %u, not to you "
                            "(uid %u); skyfs keeps its pid files only in a folder of yours: "
                            "have it removed, or set XDG_RUNTIME_DIR to a folder of yours",
                            dir, (unsigned)st.st_uid, (unsigned)geteuid());
        return sky_fail(e, EACCES, "the runtime folder %s has mode %04o; skyfs keeps its pid "
                        "files only in a private folder: chmod 700 %s", dir,
                        (unsigned)(st.st_mode & 07777), dir);
    }
    return fd;
}

unsigned long long pidfile_process_start(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return 0;
    p += 2;                               /* field 3, the state */
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p ? strtoull(p, NULL, 10) : 0;
}

int pidfile_write(int dirfd, const char *mountpoint, const char *cache_dir, struct sky_err *e)
{
    char name[PATH_MAX], tmp[PATH_MAX + 16];
    file_name(mountpoint, name, sizeof name);
    snprintf(tmp, sizeof tmp, ".%d.tmp", (int)getpid());
    unlinkat(dirfd, tmp, 0);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sky_fail(e, errno, "cannot write the pid file for %s: %s", mountpoint,
                        strerror(errno));
    char rec[2 * PATH_MAX + 64];
    int len = snprintf(rec, sizeof rec, "%d %llu\n%s\n%s\n", (int)getpid(),
                       pidfile_process_start(getpid()), mountpoint, cache_dir);
    int rc = 0;
    if (write(fd, rec, (size_t)len) != len || renameat(dirfd, tmp, dirfd, name) != 0) {
        rc = sky_fail(e, errno, "cannot write the pid file for %s: %s", mountpoint,
                      strerror(errno));
        unlinkat(dirfd, tmp, 0);
    }
    close(fd);
    return rc;
}

static int read_at(int dirfd, const char *name, struct pidfile_info *out)
{
    memset(out, 0, sizeof *out);
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    char buf[2 * PATH_MAX + 64];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid())
        n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EINVAL;
    buf[n] = '\0';
    int pid = 0;
    char *save, *line = strtok_r(buf, "\n", &save);
    if (!line || sscanf(line, "%d %llu", &pid, &out->start_time) < 1 || pid <= 0)
        return -EINVAL;
    out->pid = (pid_t)pid;
    if ((line = strtok_r(NULL, "\n", &save)))
        snprintf(out->mountpoint, sizeof out->mountpoint, "%s", line);
    if (line && (line = strtok_r(NULL, "\n", &save)))
        snprintf(out->cache_dir, sizeof out->cache_dir, "%s", line);
    return 0;
}

void pidfile_remove(int dirfd, const char *mountpoint)
{
    char name[PATH_MAX];
    struct pidfile_info info;
    file_name(mountpoint, name, sizeof name);
    if (read_at(dirfd, name, &info) == 0 && info.pid == getpid())
        unlinkat(dirfd, name, 0);
}

int pidfile_read(const char *mountpoint, struct pidfile_info *out, struct sky_err *e)
{
    int dirfd = pidfile_open_dir(e);
    if (dirfd < 0)
        return dirfd;
    char name[PATH_MAX];
    file_name(mountpoint, name, sizeof name);
    int rc = read_at(dirfd, name, out);
    close(dirfd);
    if (rc == -EINVAL)
        return sky_fail(e, EINVAL, "the pid file of %s is not one skyfs wrote; ignoring it",
                        mountpoint);
    return rc == -ENOENT ? -ENOENT : rc ? sky_fail(e, -rc, "cannot read the pid file of %s: %s",
                                                   mountpoint, strerror(-rc)) : 0;
}

bool pidfile_daemon_alive(const struct pidfile_info *info)
{
    if (info->pid <= 0)
        return false;
    unsigned long long start = pidfile_process_start(info->pid);
    return start != 0 && start == info->start_time;
}
