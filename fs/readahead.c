/*
 * readahead.c - raise the kernel's readahead for one skyfs mount (see
 * readahead.h).
 */
#include "readahead.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Undo mountinfo's octal escapes (\040 for a space, \011, \012, \134) in
 * place. */
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

int readahead_bdi_of(FILE *mountinfo, const char *mountpoint, char *bdi, size_t size)
{
    char *line = NULL;
    size_t cap = 0;
    int rc = -ENOENT;
    while (getline(&line, &cap, mountinfo) > 0) {
        /* id parent major:minor root mountpoint options ... */
        char *save = NULL, *field[5];
        int n = 0;
        for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
            field[n++] = t;
        if (n < 5)
            continue;
        unescape_octal(field[4]);
        if (strcmp(field[4], mountpoint) == 0 && strlen(field[2]) < size) {
            strcpy(bdi, field[2]);
            rc = 0;
        }
    }
    free(line);
    return rc;
}

/* Read a small decimal number from a sysfs file: 0 or -errno. */
static int read_number(const char *path, unsigned long *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    int ok = fscanf(f, "%lu", out) == 1;
    fclose(f);
    return ok ? 0 : -EINVAL;
}

int readahead_raise(const char *mountpoint, unsigned kib, struct sky_err *e)
{
    FILE *mi = fopen("/proc/self/mountinfo", "r");
    if (!mi)
        return sky_fail(e, errno, "cannot read /proc/self/mountinfo: %s", strerror(errno));
    char bdi[64];
    int rc = readahead_bdi_of(mi, mountpoint, bdi, sizeof bdi);
    fclose(mi);
    if (rc)
        return sky_fail(e, -rc, "%s is not in /proc/self/mountinfo", mountpoint);
    char path[128];
    snprintf(path, sizeof path, "/sys/class/bdi/%s/read_ahead_kb", bdi);
    unsigned long now;
    rc = read_number(path, &now);
    if (rc)
        return sky_fail(e, -rc, "cannot read %s: %s", path, strerror(-rc));
    if (now >= kib)
        return 0;
    FILE *f = fopen(path, "w");
    if (!f)
        return sky_fail(e, errno, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "%u\n", kib);
    if (fclose(f) != 0)
        return sky_fail(e, errno, "cannot write %s: %s", path, strerror(errno));
    return 0;
}
