/*
 * conflicts.c - conflicts with other machines, remembered per cloud in
 * <cache dir>/conflicts/<cloud> (see conflicts.h).
 *
 * The file is text, one record a line, fields separated by tabs (a tab,
 * newline or '%' inside a field is written as %09, %0A, %25):
 *   guarantee <TAB> N <TAB> why        (N: enum sky_guarantee)
 *   count <TAB> N
 *   conflict <TAB> unix-time <TAB> what <TAB> path <TAB> copy ("" for none)
 * It is rewritten whole (to a temporary file, then renamed) at each change.
 */
#include "conflicts.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/metrics.h"

struct conflicts {
    pthread_mutex_t lock;
    char *file;
    struct conflicts_view v;
};

static char *conflicts_file(const char *cache_dir, const char *cloud)
{
    char *p = NULL;
    if (asprintf(&p, "%s/conflicts/%s", cache_dir, cloud) < 0)
        return NULL;
    return p;
}

/* ---- names -------------------------------------------------------------- */

void conflict_host(char *out, size_t size)
{
    char host[256] = "";
    if (gethostname(host, sizeof host) != 0 || !host[0])
        snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    char *dot = strchr(host, '.');      /* the short name, as Nextcloud's */
    if (dot && dot != host)
        *dot = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/' || *c == ' ' || *c == '\t' || *c == '\n')
            *c = '_';
    snprintf(out, size, "%s", host);
}

int conflict_copy_name(const char *path, const char *host, time_t when, unsigned n, char *out,
                       size_t size)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot == base)
        dot = NULL;                      /* ".bashrc": no extension */
    size_t stem = dot ? (size_t)(dot - path) : strlen(path);
    struct tm tm;
    gmtime_r(&when, &tm);
    char stamp[32], num[16] = "";
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    if (n > 1)
        snprintf(num, sizeof num, "-%u", n);
    int len = snprintf(out, size, "%.*s.conflict-%s-%s%s%s", (int)stem, path, host, stamp, num,
                       dot ? dot : "");
    if (len < 0 || (size_t)len >= size)
        return -ENAMETOOLONG;
    const char *nbase = strrchr(out, '/');
    nbase = nbase ? nbase + 1 : out;
    return strlen(nbase) > 255 ? -ENAMETOOLONG : 0;
}

int conflict_copy_put(const char *path, int taken, conflict_put_fn put, void *arg, char *copy,
                      size_t size, struct sky_err *e)
{
    char host[128];
    conflict_host(host, sizeof host);
    time_t now = time(NULL);
    int rc = taken;
    for (unsigned n = 1; rc == taken && n <= 9; n++) {
        if (conflict_copy_name(path, host, now, n, copy, size) != 0)
            return 1;
        rc = put(arg, copy, e);
    }
    return rc;
}

/* ---- the file ------------------------------------------------------------- */

static void put_field(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\t' || *s == '\n' || *s == '%')
            fprintf(f, "%%%02X", (unsigned char)*s);
        else
            fputc(*s, f);
    }
}

/* Undo put_field in place. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        unsigned v;
        if (*r == '%' && sscanf(r + 1, "%2x", &v) == 1) {
            *w++ = (char)v;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Write the view to cf->file (cf->lock held). */
static void save(struct conflicts *cf)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp", cf->file) < 0)
        return;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        LOG_WARN("cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        return;
    }
    fprintf(f, "guarantee\t%d\t", cf->v.guarantee);
    put_field(f, cf->v.why);
    fprintf(f, "\ncount\t%llu\n", (unsigned long long)cf->v.count);
    for (size_t i = 0; i < cf->v.n; i++) {
        const struct conflict *c = &cf->v.items[i];
        fprintf(f, "conflict\t%lld\t", (long long)c->at);
        put_field(f, c->what);
        fputc('\t', f);
        put_field(f, c->path);
        fputc('\t', f);
        put_field(f, c->copy);
        fputc('\n', f);
    }
    bool ok = fflush(f) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, cf->file) != 0) {
        LOG_WARN("cannot write %s: %s", cf->file, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
}

static int push(struct conflicts_view *v, const char *what, const char *path, const char *copy,
                int64_t at)
{
    struct conflict *items = realloc(v->items, (v->n + 1) * sizeof *items);
    if (!items)
        return -ENOMEM;
    v->items = items;
    struct conflict *c = &items[v->n];
    c->what = strdup(what);
    c->path = strdup(path);
    c->copy = copy && *copy ? strdup(copy) : NULL;
    c->at = at;
    if (!c->what || !c->path || (copy && *copy && !c->copy)) {
        free(c->what);
        free(c->path);
        free(c->copy);
        return -ENOMEM;
    }
    v->n++;
    return 0;
}

static void drop_item(struct conflicts_view *v, size_t i)
{
    free(v->items[i].what);
    free(v->items[i].path);
    free(v->items[i].copy);
    memmove(&v->items[i], &v->items[i + 1], (v->n - i - 1) * sizeof *v->items);
    v->n--;
}

void conflicts_view_free(struct conflicts_view *v)
{
    while (v && v->n)
        drop_item(v, v->n - 1);
    if (v) {
        free(v->items);
        memset(v, 0, sizeof *v);
    }
}

int conflicts_read(const char *cache_dir, const char *cloud, struct conflicts_view *v)
{
    memset(v, 0, sizeof *v);
    char *file = conflicts_file(cache_dir, cloud);
    if (!file)
        return -ENOMEM;
    FILE *f = fopen(file, "r");
    free(file);
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *fields[5] = { 0 };
        int n = 0;
        for (char *p = line; n < 5;) {
            fields[n++] = p;
            char *tab = strchr(p, '\t');
            if (!tab)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        for (int i = 0; i < n; i++)
            unescape(fields[i]);
        if (n >= 3 && strcmp(fields[0], "guarantee") == 0) {
            v->guarantee = atoi(fields[1]);
            snprintf(v->why, sizeof v->why, "%s", fields[2]);
        } else if (n >= 2 && strcmp(fields[0], "count") == 0) {
            v->count = strtoull(fields[1], NULL, 10);
        } else if (n == 5 && strcmp(fields[0], "conflict") == 0) {
            rc = push(v, fields[2], fields[3], fields[4], strtoll(fields[1], NULL, 10));
        }
    }
    free(line);
    fclose(f);
    if (rc)
        conflicts_view_free(v);
    return rc;
}

/* ---- the daemon's state --------------------------------------------------- */

struct conflicts *conflicts_open(const char *cache_dir, const char *cloud)
{
    struct conflicts *cf = calloc(1, sizeof *cf);
    if (!cf)
        return NULL;
    char *dir = NULL;
    if (asprintf(&dir, "%s/conflicts", cache_dir) >= 0) {
        mkdir(dir, 0700);
        free(dir);
    }
    cf->file = conflicts_file(cache_dir, cloud);
    if (!cf->file) {
        free(cf);
        return NULL;
    }
    int rc = conflicts_read(cache_dir, cloud, &cf->v);
    if (rc)
        LOG_WARN("cannot read %s (%s): its conflicts are forgotten", cf->file, strerror(-rc));
    cf->v.guarantee = 0;        /* found out again by this mount */
    cf->v.why[0] = '\0';
    pthread_mutex_init(&cf->lock, NULL);
    return cf;
}

void conflicts_free(struct conflicts *cf)
{
    if (!cf)
        return;
    conflicts_view_free(&cf->v);
    pthread_mutex_destroy(&cf->lock);
    free(cf->file);
    free(cf);
}

void conflicts_add(struct conflicts *cf, const char *what, const char *path, const char *copy)
{
    if (!cf)
        return;
    sky_metrics_inc(SKY_M_CONFLICTS);
    pthread_mutex_lock(&cf->lock);
    cf->v.count++;
    if (push(&cf->v, what, path, copy, (int64_t)time(NULL)) < 0)
        LOG_WARN("out of memory: the conflict on \"%s\" is counted but not listed", path);
    save(cf);
    pthread_mutex_unlock(&cf->lock);
}

bool conflicts_gone(struct conflicts *cf, const char *path)
{
    if (!cf)
        return false;
    bool any = false;
    pthread_mutex_lock(&cf->lock);
    for (size_t i = cf->v.n; i-- > 0;) {
        const struct conflict *c = &cf->v.items[i];
        if ((c->copy && strcmp(c->copy, path) == 0) || (!c->copy && strcmp(c->path, path) == 0)) {
            drop_item(&cf->v, i);
            any = true;
        }
    }
    if (any)
        save(cf);
    pthread_mutex_unlock(&cf->lock);
    return any;
}

bool conflicts_is_copy(struct conflicts *cf, const char *path)
{
    if (!cf)
        return false;
    bool found = false;
    pthread_mutex_lock(&cf->lock);
    for (size_t i = 0; i < cf->v.n && !found; i++)
        found = cf->v.items[i].copy && strcmp(cf->v.items[i].copy, path) == 0;
    pthread_mutex_unlock(&cf->lock);
    return found;
}

void conflicts_set_guarantee(struct conflicts *cf, int guarantee, const char *why)
{
    if (!cf)
        return;
    pthread_mutex_lock(&cf->lock);
    if (cf->v.guarantee != guarantee || strcmp(cf->v.why, why ? why : "") != 0 ||
        access(cf->file, F_OK) != 0) {
        cf->v.guarantee = guarantee;
        snprintf(cf->v.why, sizeof cf->v.why, "%s", why ? why : "");
        save(cf);
    }
    pthread_mutex_unlock(&cf->lock);
}

uint64_t conflicts_count(struct conflicts *cf)
{
    if (!cf)
        return 0;
    pthread_mutex_lock(&cf->lock);
    uint64_t n = cf->v.count;
    pthread_mutex_unlock(&cf->lock);
    return n;
}
