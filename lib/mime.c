/* mime.c - extension to content type, from /etc/mime.types. */
#include "mime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIME_TYPES_FILE "/etc/mime.types"

struct mime_ext {
    char *ext;      /* lowercase, no dot */
    char *type;     /* shared by the extensions of one line */
    size_t order;   /* position in the file: the first line naming an
                     * extension wins */
};

static struct mime_ext *mime_table;
static size_t mime_count;
static char **mime_types;       /* every type string, to free */
static size_t mime_ntypes;
static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static int mime_cmp(const void *pa, const void *pb)
{
    return strcmp(((const struct mime_ext *)pa)->ext, ((const struct mime_ext *)pb)->ext);
}

static int mime_cmp_order(const void *pa, const void *pb)
{
    const struct mime_ext *a = pa, *b = pb;
    int c = strcmp(a->ext, b->ext);
    return c ? c : a->order < b->order ? -1 : a->order > b->order;
}

static void mime_free(void)
{
    for (size_t i = 0; i < mime_count; i++)
        free(mime_table[i].ext);
    for (size_t i = 0; i < mime_ntypes; i++)
        free(mime_types[i]);
    free(mime_table);
    free(mime_types);
    mime_table = NULL;
    mime_types = NULL;
    mime_count = mime_ntypes = 0;
}

static int mime_push(void **arr, size_t n, size_t elem)
{
    if ((n & (n - 1)) != 0 && n != 0)   /* grow at powers of two */
        return 0;
    void *p = realloc(*arr, (n ? n * 2 : 64) * elem);
    if (!p)
        return -1;
    *arr = p;
    return 0;
}

/* One line: "type ext ext ...". */
static int mime_add_line(char *line)
{
    char *save = NULL;
    char *type = strtok_r(line, " \t\r\n", &save);
    if (!type || type[0] == '#' || !strchr(type, '/'))
        return 0;
    char *ext = strtok_r(NULL, " \t\r\n", &save);
    if (!ext)
        return 0;
    if (mime_push((void **)&mime_types, mime_ntypes, sizeof *mime_types))
        return -1;
    char *t = strdup(type);
    if (!t)
        return -1;
    mime_types[mime_ntypes++] = t;
    for (; ext; ext = strtok_r(NULL, " \t\r\n", &save)) {
        if (mime_push((void **)&mime_table, mime_count, sizeof *mime_table))
            return -1;
        char *e = strdup(ext);
        if (!e)
            return -1;
        for (char *p = e; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        mime_table[mime_count] = (struct mime_ext){ e, t, mime_count };
        mime_count++;
    }
    return 0;
}

/* Replace the table with the one in `path` (none if it cannot be read). */
static void mime_read(const char *path)
{
    mime_free();
    FILE *f = fopen(path, "r");
    if (!f)
        return;                 /* no table: everything is the default */
    char line[1024];
    int failed = 0;
    while (!failed && fgets(line, sizeof line, f))
        failed = mime_add_line(line) < 0;
    fclose(f);
    if (failed) {
        mime_free();
        return;
    }
    qsort(mime_table, mime_count, sizeof *mime_table, mime_cmp_order);
    size_t w = 0;
    for (size_t i = 0; i < mime_count; i++) {
        if (w > 0 && strcmp(mime_table[w - 1].ext, mime_table[i].ext) == 0) {
            free(mime_table[i].ext);
            continue;
        }
        mime_table[w++] = mime_table[i];
    }
    mime_count = w;
}

static void mime_init(void)
{
    mime_read(MIME_TYPES_FILE);
}

void mime_load(const char *path)
{
    pthread_once(&mime_once, mime_init);
    mime_read(path ? path : MIME_TYPES_FILE);
}

const char *mime_type_for(const char *name)
{
    pthread_once(&mime_once, mime_init);
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || !dot[1] || strlen(dot + 1) >= 32)
        return MIME_DEFAULT;
    char ext[32];
    size_t i = 0;
    for (const char *p = dot + 1; *p; p++)
        ext[i++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    ext[i] = 0;
    struct mime_ext key = { ext, NULL, 0 };
    const struct mime_ext *hit = mime_count ? bsearch(&key, mime_table, mime_count,
                                                      sizeof *mime_table, mime_cmp)
                                            : NULL;     /* no table (no such file) */
    return hit ? hit->type : MIME_DEFAULT;
}
