/*
 * test_http_background.c - background transfers yield the client's
 * connections (struct http_cancel's `background`, backends/http.h): while
 * a foreground request is under way at most one background request
 * reaches the server; on a quiet client up to half the connections; a
 * background request waiting for its turn ends with -EINTR when cancelled.
 *
 * The server on 127.0.0.1 holds every request until the test opens its
 * gate, so what reached it is counted while the requests wait.
 */
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../backends/http.h"
#include "../../lib/clock.h"

struct gate {
    int fd, port;
    atomic_int arrived;         /* requests read */
    atomic_int open;            /* 1: answer them */
    atomic_int stop;
    pthread_t th;
};

struct held {
    struct gate *g;
    int s;
};

/* One connection: read a request, count it, answer once the gate opens. */
static void *held_main(void *arg)
{
    struct held *h = arg;
    char buf[8192];
    size_t have = 0;
    while (have < sizeof buf - 1) {
        ssize_t got = read(h->s, buf + have, sizeof buf - 1 - have);
        if (got <= 0)
            break;
        have += (size_t)got;
        buf[have] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    if (have > 0) {
        atomic_fetch_add(&h->g->arrived, 1);
        while (!atomic_load(&h->g->open) && !atomic_load(&h->g->stop))
            usleep(2000);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (write(h->s, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
            CHECK(!"answer not written");
    }
    close(h->s);
    free(h);
    return NULL;
}

static void *gate_main(void *arg)
{
    struct gate *g = arg;
    while (!atomic_load(&g->stop)) {
        int s = accept(g->fd, NULL, NULL);
        if (s < 0)
            continue;
        if (atomic_load(&g->stop)) {
            close(s);
            break;
        }
        struct held *h = malloc(sizeof *h);
        pthread_t th;
        if (!h) {
            close(s);
            continue;
        }
        *h = (struct held){ g, s };
        if (pthread_create(&th, NULL, held_main, h) == 0)
            pthread_detach(th);
        else {
            close(s);
            free(h);
        }
    }
    return NULL;
}

static void gate_start(struct gate *g)
{
    memset(g, 0, sizeof *g);
    g->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (g->fd < 0 || bind(g->fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(g->fd, 64) < 0 ||
        getsockname(g->fd, (struct sockaddr *)&a, &len) < 0)
        abort();
    g->port = ntohs(a.sin_port);
    pthread_create(&g->th, NULL, gate_main, g);
}

static void gate_stop(struct gate *g)
{
    atomic_store(&g->open, 1);
    atomic_store(&g->stop, 1);
    int s = socket(AF_INET, SOCK_STREAM, 0);        /* wake accept() */
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)g->port) };
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        CHECK(!"cannot wake the gate server");
    close(s);
    pthread_join(g->th, NULL);
    close(g->fd);
    usleep(20000);                                  /* its connection threads end */
}

/* Wait up to ms for the gate to have seen `n` requests. */
static bool arrived_within(struct gate *g, int n, long long ms)
{
    long long until = clock_now_ms() + ms;
    while (atomic_load(&g->arrived) < n && clock_now_ms() < until)
        usleep(2000);
    return atomic_load(&g->arrived) >= n;
}

struct getter {
    struct http_client *c;
    int port;
    struct http_cancel cancel;
    bool named;                 /* http_cancel_set(&cancel) */
    int rc;
    pthread_t th;
};

static void *getter_main(void *arg)
{
    struct getter *g = arg;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", g->port);
    struct http_request req = { .method = "GET", .url = url, .body_fd = -1 };
    struct http_response resp;
    struct sky_err e = { 0 };
    if (g->named)
        http_cancel_set(&g->cancel);
    g->rc = http_do(g->c, &req, &resp, &e);
    http_cancel_set(NULL);
    if (g->rc == 0)
        http_response_free(&resp);
    return NULL;
}

static void getter_start(struct getter *g, struct http_client *c, int port, bool background)
{
    memset(g, 0, sizeof *g);
    g->c = c;
    g->port = port;
    g->named = background;
    g->cancel.background = background;
    g->rc = 1;
    pthread_create(&g->th, NULL, getter_main, g);
}

/* Wait for getters g[0..n) to end: each must have succeeded. */
static void getters_done(struct getter *g, int n)
{
    for (int i = 0; i < n; i++) {
        pthread_join(g[i].th, NULL);
        CHECK_INT(g[i].rc, 0);
    }
}

static struct http_client *client_of(int max)
{
    struct http_options opt = { .max_connections = max };
    struct http_client *c = NULL;
    struct sky_err e = { 0 };
    CHECK(http_client_new(&opt, &c, &e) == 0);
    return c;
}

TEST(http_background_yields_while_the_foreground_works)
{
    struct gate g;
    gate_start(&g);
    struct http_client *c = client_of(8);
    struct getter fg, bg[4];
    getter_start(&fg, c, g.port, false);
    CHECK(arrived_within(&g, 1, 5000));
    for (int i = 0; i < 4; i++)
        getter_start(&bg[i], c, g.port, true);
    CHECK(arrived_within(&g, 2, 5000));             /* one background request... */
    usleep(400000);
    CHECK_INT(atomic_load(&g.arrived), 2);          /* ...and only one */
    atomic_store(&g.open, 1);
    getters_done(&fg, 1);
    getters_done(bg, 4);
    CHECK_INT(atomic_load(&g.arrived), 5);
    http_client_free(c);
    gate_stop(&g);
}

TEST(http_background_takes_half_a_quiet_client)
{
    struct gate g;
    gate_start(&g);
    struct http_client *c = client_of(8);
    struct getter bg[6];
    for (int i = 0; i < 6; i++)
        getter_start(&bg[i], c, g.port, true);
    CHECK(arrived_within(&g, 4, 5000));
    usleep(400000);
    CHECK_INT(atomic_load(&g.arrived), 4);          /* half of 8, no more */
    /* a foreground request gets a connection at once all the same */
    struct getter fg;
    getter_start(&fg, c, g.port, false);
    CHECK(arrived_within(&g, 5, 5000));
    atomic_store(&g.open, 1);
    getters_done(&fg, 1);
    getters_done(bg, 6);
    http_client_free(c);
    gate_stop(&g);
}

TEST(http_background_waiting_for_its_turn_is_cancelled)
{
    struct gate g;
    gate_start(&g);
    struct http_client *c = client_of(8);
    struct getter fg, bg[2];
    getter_start(&fg, c, g.port, false);
    CHECK(arrived_within(&g, 1, 5000));
    getter_start(&bg[0], c, g.port, true);
    CHECK(arrived_within(&g, 2, 5000));
    getter_start(&bg[1], c, g.port, true);          /* waits for its turn */
    usleep(200000);
    CHECK_INT(atomic_load(&g.arrived), 2);
    long long t0 = clock_now_ms();
    atomic_store(&bg[1].cancel.cancelled, 1);
    pthread_join(bg[1].th, NULL);
    CHECK_INT(bg[1].rc, -EINTR);
    CHECK(clock_now_ms() - t0 < 2000);
    CHECK_INT(atomic_load(&g.arrived), 2);          /* it never went out */
    atomic_store(&g.open, 1);
    getters_done(&fg, 1);
    getters_done(bg, 1);
    http_client_free(c);
    gate_stop(&g);
}
