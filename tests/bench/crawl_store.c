/*
 * crawl_store.c - the SQLite side of a background crawl, measured alone:
 * N synthetic objects (1,000 per directory) stored the way a flat crawl
 * stores them (cache/crawlstore.h: batches of 500, then the sweep in
 * batches of 2,000), into a fresh metadata cache, twice: a first crawl
 * (every entry new) and a refresh in which 1% of the objects are gone
 * (updated entries, 1% swept).  Prints the time of each phase and the
 * process's peak memory (VmHWM).  With the LIST page time measured on a
 * server (tests/integration/search_crawl_scale.sh), this gives what a
 * crawl of N objects costs.
 *
 *     crawl_store DIR N
 *
 * Built and run by tests/bench/crawl.sh against build/libskyfs.a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../cache/crawlstore.h"
#include "../../cache/meta.h"
#include "../../lib/clock.h"

#define BATCH 500

static long long wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static int crawl(struct meta *m, long n, int round, struct sky_err *e)
{
    static char names[BATCH][64];
    struct sky_dirent ents[BATCH];
    int64_t gen, started = wall_ns();
    if (meta_crawl_begin(m, "big", started, &gen, e))
        return -1;
    double t0 = clock_now_s();
    size_t k = 0;
    long seen = 0;
    for (long i = 0; i < n; i++) {
        if (round == 2 && i % 100 == 0)
            continue;                           /* gone from the cloud */
        snprintf(names[k], sizeof names[k], "d%04ld/f%07ld.dat", i / 1000, i);
        ents[k] = (struct sky_dirent){ .name = names[k] };
        ents[k].attr.kind = SKY_FILE;
        ents[k].attr.size = (uint64_t)i;
        ents[k].attr.mtime_ns = 1600000000LL * 1000000000LL + i;
        ents[k].attr.has = SKY_HAS_MTIME;
        snprintf(ents[k].attr.etag, sizeof ents[k].attr.etag, "\"%08lx\"", i);
        k++;
        seen++;
        if (k == BATCH || i == n - 1) {
            if (meta_crawl_store(m, "big", gen, started, wall_ns(), ents, k, (uint64_t)seen, e))
                return -1;
            k = 0;
        }
    }
    double t1 = clock_now_s();
    char *cursor = NULL;
    bool done = false;
    uint64_t removed = 0;
    while (!done)
        if (meta_crawl_sweep(m, "big", gen, started, &cursor, 2000, &removed, &done, e))
            return -1;
    free(cursor);
    double t2 = clock_now_s();
    meta_crawl_end(m, "big", started, wall_ns(), (uint64_t)seen, NULL, e);
    printf("%s of %ld objects: storing %.2f s (%.0f entries/s), sweep %.2f s (%llu removed), "
           "VmHWM %ld MiB\n", round == 1 ? "first crawl" : "refresh", seen, t1 - t0,
           (double)seen / (t1 - t0), t2 - t1, (unsigned long long)removed, hwm_kib() / 1024);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: crawl_store DIR N\n");
        return 2;
    }
    char db[4096];
    snprintf(db, sizeof db, "%s/meta.db", argv[1]);
    struct meta *m;
    struct sky_err e = { 0 };
    uint64_t root;
    if (meta_open(db, NULL, &m, &e) || meta_cloud_root(m, "big", &root, &e)) {
        fprintf(stderr, "crawl_store: %s\n", e.msg);
        return 1;
    }
    long n = atol(argv[2]);
    int rc = crawl(m, n, 1, &e) || crawl(m, n, 2, &e);
    if (rc)
        fprintf(stderr, "crawl_store: %s\n", e.msg);
    meta_close(m);
    return rc ? 1 : 0;
}
