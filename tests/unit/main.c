/* main.c - runs the registered unit tests; see check.h. */
#include <dirent.h>
#include "check.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

int unit_failures;
static struct unit_test *tests;

void unit_register(struct unit_test *t)
{
    /* keep file order: append */
    struct unit_test **p = &tests;
    while (*p)
        p = &(*p)->next;
    *p = t;
}

char *unit_tmpdir(void)
{
    char tmpl[] = "/tmp/skyfs-unit-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d) {
        perror("mkdtemp");
        exit(2);
    }
    return strdup(d);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(p);
}

void unit_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *unit_write_file(const char *dir, const char *name, const char *text, int mode)
{
    char *path;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        exit(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        perror(path);
        exit(2);
    }
    fchmod(fd, mode);
    close(fd);
    return path;
}

int unit_count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (struct unit_test *t = tests; t; t = t->next) {
        if (argc > 1 && !strstr(t->name, argv[1]))
            continue;
        unit_failures = 0;
        t->fn();
        if (unit_failures) {
            fprintf(stderr, "FAIL unit %s\n", t->name);
            failed++;
        } else {
            printf("ok   unit %s\n", t->name);
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
