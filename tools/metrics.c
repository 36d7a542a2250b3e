/*
 * metrics.c - `skyfs metrics MOUNTPOINT`: prints the metrics of the daemon
 * serving MOUNTPOINT, in the Prometheus text format, by reading
 * MOUNTPOINT/.skyfs/metrics (fs/virtual.c), so it needs nothing but the
 * mount (no config, no network).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../fs/mount.h"
#include "../fs/pidfile.h"
#include "tools.h"

int cmd_metrics(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "skyfs: usage: skyfs metrics MOUNTPOINT\n");
        return 2;
    }
    char abs[PATH_MAX], path[PATH_MAX + 32];
    pidfile_abspath(argv[1], abs, sizeof abs);
    char fstype[64] = "";
    if (!skyfs_mount_lookup(abs, fstype, sizeof fstype) || strcmp(fstype, "fuse.skyfs") != 0) {
        fprintf(stderr, "skyfs: %s is not a skyfs mount; give the directory skyfs is mounted "
                "on (see skyfs status)\n", argv[1]);
        return 1;
    }
    snprintf(path, sizeof path, "%s/.skyfs/metrics", abs);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "skyfs: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            break;
    int err = n < 0 ? errno : 0;
    close(fd);
    if (err || fflush(stdout) != 0) {
        fprintf(stderr, "skyfs: reading %s: %s\n", path, strerror(err ? err : errno));
        return 1;
    }
    return 0;
}
