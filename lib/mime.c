/* mime.c - extension to content type, from /etc/mime.types. */
#include "mime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIME_TYPES_FILE "/etc/mime.types"

struct mime_ext {
    char *ext;      /* lowercase, no dot */
    char *type;     /* shared by the extensions of one line */
    size_t order;   /* position in the file: the first line naming an
                     * extension wins */
};

static struct mime_ext *mime_table;
static size_t mime_count, mime_table_cap;
static char **mime_types;       /* every type string, to free */
static size_t mime_ntypes, mime_types_cap;
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
    mime_count = mime_ntypes = mime_table_cap = mime_types_cap = 0;
}

/* Room for one more element in *arr (n used, *cap allocated). */
static int mime_reserve(void **arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ASCII lowercase, in place. */
static void mime_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
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
    if (mime_reserve((void **)&mime_types, mime_ntypes, &mime_types_cap, sizeof *mime_types))
        return -1;
    char *t = strdup(type);
    if (!t)
        return -1;
    mime_types[mime_ntypes++] = t;
    for (; ext; ext = strtok_r(NULL, " \t\r\n", &save)) {
        if (mime_reserve((void **)&mime_table, mime_count, &mime_table_cap,
                         sizeof *mime_table))
            return -1;
        char *e = strdup(ext);
        if (!e)
            return -1;
        mime_lower(e);
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
    strcpy(ext, dot + 1);       /* fits: checked above */
    mime_lower(ext);
    struct mime_ext key = { ext, NULL, 0 };
    const struct mime_ext *hit = mime_count ? bsearch(&key, mime_table, mime_count,
                                                      sizeof *mime_table, mime_cmp)
                                            : NULL;     /* no table (no such file) */
    return hit ? hit->type : MIME_DEFAULT;
}
