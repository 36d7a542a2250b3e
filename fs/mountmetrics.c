/* mountmetrics.c - see mountmetrics.h. */
#include "mountmetrics.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "../lib/metrics.h"
#include "crawl.h"
#include "skyfs.h"

#define REQUEST_MAX 8192
#define CLIENT_TIMEOUT_S 5

struct listener {
    int fd;
    int stop[2];            /* a byte on stop[1] ends the thread */
    pthread_t thread;
    char addr[80];
};

static struct listener *running;    /* one mount per daemon */

/* ---- the collector ---------------------------------------------------- */

/* The background index crawl of each cloud (fs/crawl.h); clouds without
 * one (index = off, not opened) have no sample. */
static void collect_crawls(struct skyfs *fs, struct sky_metrics_text *t)
{
    static const struct { const char *name, *type, *help; } fam[] = {
        { "skyfs_index_crawls_total", "counter", "Complete crawls of each cloud for the "
          "search index." },
        { "skyfs_index_crawl_failures_total", "counter", "Index crawls that failed (they are "
          "tried again later)." },
        { "skyfs_index_crawl_entries_total", "counter", "Entries the index crawls stored." },
        { "skyfs_index_crawl_removed_total", "counter", "Entries the index crawls removed "
          "(gone from the cloud)." },
        { "skyfs_index_last_crawl_duration_seconds", "gauge", "How long the last complete "
          "index crawl took." },
        { "skyfs_index_crawl_running", "gauge", "1 while an index crawl of the cloud runs." },
    };
    for (size_t k = 0; k < sizeof fam / sizeof fam[0]; k++) {
        sky_metrics_family(t, fam[k].name, fam[k].type, fam[k].help);
        for (size_t i = 0; i < fs->nclouds; i++) {
            const struct crawl_counters *cc = crawl_counters_of(fs, &fs->clouds[i]);
            if (!cc)
                continue;
            double v = 0;
            switch (k) {
            case 0: v = (double)atomic_load(&cc->crawls); break;
            case 1: v = (double)atomic_load(&cc->failures); break;
            case 2: v = (double)atomic_load(&cc->entries); break;
            case 3: v = (double)atomic_load(&cc->removed); break;
            case 4: v = (double)atomic_load(&cc->last_duration_ms) / 1000.0; break;
            default: v = atomic_load(&cc->running); break;
            }
            sky_metrics_sample(t, fam[k].name, "cloud", fs->clouds[i].cfg->name, v);
        }
    }
}

static void collect(void *arg, struct sky_metrics_text *t)
{
    struct skyfs *fs = arg;
    sky_metrics_family(t, "skyfs_cloud_online", "gauge",
                       "1 while the cloud answers, 0 while it is offline or unavailable.");
    for (size_t i = 0; i < fs->nclouds; i++) {
        struct cloud *c = &fs->clouds[i];
        pthread_mutex_lock(&c->health_lock);
        bool online = c->ctx && !c->offline;
        pthread_mutex_unlock(&c->health_lock);
        sky_metrics_sample(t, "skyfs_cloud_online", "cloud", c->cfg->name, online);
    }
    sky_metrics_family(t, "skyfs_cloud_operations_total", "counter",
                       "Calls of each cloud's driver (list, stat, read, write...; any kind "
                       "of cloud, local folders included).");
    for (size_t i = 0; i < fs->nclouds; i++)
        sky_metrics_sample(t, "skyfs_cloud_operations_total", "cloud", fs->clouds[i].cfg->name,
                           (double)atomic_load(&fs->clouds[i].requests));
    collect_crawls(fs, t);
    struct blocks_stats st;
    struct sky_err e = { 0 };
    if (!fs->blocks || blocks_stats(fs->blocks, &st, &e) != 0)
        return;         /* the families are left out rather than shown wrong */
    static const struct { const char *name, *type, *help; size_t off; } fields[] = {
        { "skyfs_cache_block_hits_total", "counter", "Block reads served by the block cache.",
          offsetof(struct blocks_stats, hits) },
        { "skyfs_cache_block_misses_total", "counter", "Block reads that fetched from the "
          "cloud.", offsetof(struct blocks_stats, misses) },
        { "skyfs_cache_block_corrupt_total", "counter", "Cached blocks whose checksum did not "
          "match (dropped and fetched again).", offsetof(struct blocks_stats, corrupt) },
        { "skyfs_cache_bytes", "gauge", "Bytes of file data held by the block cache.",
          offsetof(struct blocks_stats, bytes_present) },
        { "skyfs_cache_limit_bytes", "gauge", "The block cache's size cap ([cache] max_size).",
          offsetof(struct blocks_stats, max_size) },
        { "skyfs_cache_objects", "gauge", "Files the block cache holds data of.",
          offsetof(struct blocks_stats, objects) },
        { "skyfs_upload_pending_files", "gauge", "Files written but not uploaded yet (the "
          "journal).", offsetof(struct blocks_stats, dirty_objects) },
        { "skyfs_upload_pending_bytes", "gauge", "Size of the files not uploaded yet.",
          offsetof(struct blocks_stats, dirty_bytes) },
    };
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
        sky_metrics_family(t, fields[k].name, fields[k].type, fields[k].help);
        sky_metrics_sample(t, fields[k].name, NULL, NULL,
                           (double)*(const uint64_t *)((const char *)&st + fields[k].off));
    }
}

/* ---- the listener ----------------------------------------------------- */

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static void reply(int fd, const char *status, const char *type, const char *body, size_t len,
                  bool head)
{
    char header[256];
    int n = snprintf(header, sizeof header, "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, type, len);
    send_all(fd, header, (size_t)n);
    if (!head)
        send_all(fd, body, len);
}

/* One connection: read the request head, answer, close. */
static void serve_client(int fd)
{
    struct timeval tv = { CLIENT_TIMEOUT_S, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char req[REQUEST_MAX + 1];
    size_t got = 0;
    while (got < REQUEST_MAX) {
        ssize_t n = recv(fd, req + got, REQUEST_MAX - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[got] = '\0';
    char method[16] = "", target[512] = "";
    if (sscanf(req, "%15s %511s", method, target) != 2) {
        static const char msg[] = "bad request\n";
        reply(fd, "400 Bad Request", "text/plain", msg, sizeof msg - 1, false);
        return;
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !head) {
        static const char msg[] = "only GET and HEAD\n";
        reply(fd, "405 Method Not Allowed", "text/plain", msg, sizeof msg - 1, false);
        return;
    }
    target[strcspn(target, "?")] = '\0';
    if (strcmp(target, "/") == 0) {
        static const char msg[] = "skyfs metrics: GET /metrics\n";
        reply(fd, "200 OK", "text/plain; charset=utf-8", msg, sizeof msg - 1, head);
        return;
    }
    if (strcmp(target, "/metrics") != 0) {
        static const char msg[] = "not found; the metrics are at /metrics\n";
        reply(fd, "404 Not Found", "text/plain", msg, sizeof msg - 1, head);
        return;
    }
    size_t len = 0;
    char *text = sky_metrics_render(&len);
    if (!text) {
        static const char msg[] = "out of memory\n";
        reply(fd, "500 Internal Server Error", "text/plain", msg, sizeof msg - 1, head);
        return;
    }
    reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", text, len, head);
    free(text);
}

static void *listen_main(void *arg)
{
    struct listener *l = arg;
    for (;;) {
        struct pollfd p[2] = { { l->fd, POLLIN, 0 }, { l->stop[0], POLLIN, 0 } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            LOG_ERROR("metrics listener on %s stops: %s", l->addr, strerror(errno));
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int c = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        serve_client(c);
        close(c);
    }
    return NULL;
}

static int start_listener(const char *addr, struct sky_err *e)
{
    struct sockaddr_storage sa;
    unsigned salen;
    if (sky_parse_listen(addr, &sa, &salen) != 0)
        return sky_fail(e, EINVAL, "metrics_listen = \"%s\" is not IP:PORT", addr);
    struct listener *l = calloc(1, sizeof *l);
    if (!l)
        return sky_fail(e, ENOMEM, "out of memory");
    snprintf(l->addr, sizeof l->addr, "%s", addr);
    l->stop[0] = l->stop[1] = -1;
    int one = 1, rc = 0;
    l->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l->fd < 0)
        rc = sky_fail(e, errno, "metrics_listen %s: socket: %s", addr, strerror(errno));
    else if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
             bind(l->fd, (struct sockaddr *)&sa, salen) != 0 || listen(l->fd, 16) != 0)
        rc = sky_fail(e, errno, "metrics_listen %s: cannot listen there: %s; choose a free "
                      "port or an address of this machine", addr, strerror(errno));
    else if (pipe2(l->stop, O_CLOEXEC) != 0)
        rc = sky_fail(e, errno, "pipe: %s", strerror(errno));
    else if ((rc = -pthread_create(&l->thread, NULL, listen_main, l)) != 0)
        sky_fail(e, -rc, "cannot start the metrics listener: %s", strerror(-rc));
    if (rc) {
        if (l->fd >= 0)
            close(l->fd);
        if (l->stop[0] >= 0) {
            close(l->stop[0]);
            close(l->stop[1]);
        }
        free(l);
        return rc;
    }
    running = l;
    LOG_INFO("metrics served at http://%s/metrics", addr);
    return 0;
}

int mountmetrics_start(struct skyfs *fs, const char *listen, struct sky_err *e)
{
    sky_metrics_set_collector(collect, fs);
    return listen ? start_listener(listen, e) : 0;
}

void mountmetrics_stop(struct skyfs *fs)
{
    struct listener *l = running;
    if (l) {
        running = NULL;
        if (write(l->stop[1], "x", 1) < 0)
            LOG_WARN("cannot stop the metrics listener: %s", strerror(errno));
        pthread_join(l->thread, NULL);
        close(l->fd);
        close(l->stop[0]);
        close(l->stop[1]);
        free(l);
    }
    sky_metrics_set_collector(NULL, NULL);
}
