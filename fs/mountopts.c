/* mountopts.c - see mountopts.h. */
#include "mountopts.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kernel_opts[] = {
    "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime", "sync", "async", "dirsync",
    NULL,
};

static const char *const ignored_opts[] = {
    "defaults", "auto", "noauto", "user", "users", "nouser", "_netdev", "nofail", "atime",
    "relatime", "norelatime", "strictatime", "nodiratime", "lazytime", "default_permissions",
    NULL,
};

static bool in_list(const char *const *list, const char *word)
{
    for (; *list; list++)
        if (strcmp(*list, word) == 0)
            return true;
    return false;
}

/* A number, or a name getpwnam/getgrnam knows. */
static int parse_id(const char *key, const char *v, bool user, unsigned *out, struct sky_err *e)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (*v && !*end && !errno && n < 0xFFFFFFFFUL && *v != '-') {
        *out = (unsigned)n;
        return 0;
    }
    if (user) {
        struct passwd *pw = *v ? getpwnam(v) : NULL;
        if (pw) {
            *out = pw->pw_uid;
            return 0;
        }
    } else {
        struct group *gr = *v ? getgrnam(v) : NULL;
        if (gr) {
            *out = gr->gr_gid;
            return 0;
        }
    }
    return sky_fail(e, EINVAL, "mount option %s=%s: no such %s; give a number or a name", key, v,
                    user ? "user" : "group");
}

static int add_kernel(struct mountopts *o, const char *word, struct sky_err *e)
{
    size_t len = strlen(o->kernel);
    if (len + strlen(word) + 2 > sizeof o->kernel)
        return sky_fail(e, EINVAL, "too many mount options");
    snprintf(o->kernel + len, sizeof o->kernel - len, "%s%s", len ? "," : "", word);
    return 0;
}

static int parse_one(struct mountopts *o, char *word, struct sky_err *e)
{
    char *eq = strchr(word, '=');
    char *val = eq ? eq + 1 : NULL;
    if (eq)
        *eq = '\0';
    if (!*word)
        return 0;
    if (strncmp(word, "x-", 2) == 0 || strcmp(word, "comment") == 0)
        return 0;
    if (val) {
        unsigned id;
        if (strcmp(word, "uid") == 0) {
            if (parse_id("uid", val, true, &id, e))
                return -EINVAL;
            o->uid = id;
            o->has_uid = true;
            return 0;
        }
        if (strcmp(word, "gid") == 0) {
            if (parse_id("gid", val, false, &id, e))
                return -EINVAL;
            o->gid = id;
            o->has_gid = true;
            return 0;
        }
        if (strcmp(word, "umask") == 0) {
            char *end;
            errno = 0;
            unsigned long m = strtoul(val, &end, 8);
            if (!*val || *end || errno || m > 0777)
                return sky_fail(e, EINVAL, "mount option umask=%s: write an octal mode such as "
                                "022 or 077", val);
            o->umask = (mode_t)m;
            o->has_umask = true;
            return 0;
        }
        return sky_fail(e, EINVAL, "unknown mount option \"%s=%s\"; see skyfs mount --help", word,
                        val);
    }
    if (strcmp(word, "ro") == 0 || strcmp(word, "rw") == 0)
        o->ro = word[0] == 'r' && word[1] == 'o';
    else if (strcmp(word, "allow_other") == 0)
        o->allow_other = true;
    else if (strcmp(word, "allow_root") == 0)
        o->allow_root = true;
    else if (strcmp(word, "nonempty") == 0)
        o->nonempty = true;
    else if (in_list(kernel_opts, word))
        return add_kernel(o, word, e);
    else if (!in_list(ignored_opts, word))
        return sky_fail(e, EINVAL, "unknown mount option \"%s\"; see skyfs mount --help", word);
    if (o->allow_other && o->allow_root)
        return sky_fail(e, EINVAL, "mount options allow_other and allow_root exclude each other; "
                        "keep one");
    return 0;
}

int mountopts_parse(struct mountopts *o, const char *text, struct sky_err *e)
{
    char *copy = strdup(text);
    if (!copy)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = 0;
    for (char *save, *w = strtok_r(copy, ",", &save); w && !rc; w = strtok_r(NULL, ",", &save))
        rc = parse_one(o, w, e);
    free(copy);
    return rc;
}

void mountopts_fuse(const struct mountopts *o, bool as_root, char *buf, size_t size)
{
    const char *share = o->allow_root ? ",allow_root"
                      : o->allow_other || as_root ? ",allow_other" : "";
    snprintf(buf, size, "%s%s%s%s", o->ro ? "ro" : "rw", share, o->kernel[0] ? "," : "",
             o->kernel);
}

int mountopts_check_empty(const struct mountopts *o, const char *dir, struct sky_err *e)
{
    if (o->nonempty)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;               /* the mount itself says what is wrong */
    struct dirent *de;
    const char *first = NULL;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            first = de->d_name;
            break;
        }
    int rc = first ? sky_fail(e, ENOTEMPTY, "mountpoint %s is not empty (it holds \"%s\"); mount "
                              "on an empty directory, or add -o nonempty to hide what is there",
                              dir, first)
                   : 0;
    closedir(d);
    return rc;
}
