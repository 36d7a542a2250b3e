/* test_http.c - backends/http.c against a canned server on 127.0.0.1:
 * many headers, ranged answers checked against the range asked, the
 * cancellation hook, the stall rule, HTTP authentication (a challenge
 * answered is no retry; the method is learnt); the per-cloud keys
 * connect_timeout, timeout and retries; and the listing guard
 * (backends/paging.c). */
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../backends/driver.h"
#include "../../backends/http.h"
#include "../../backends/paging.h"
#include "../../lib/config.h"

/* ---- a server that answers every connection with the same bytes ---- */

struct canned {
    int fd;                 /* listening socket */
    int port;
    const char *answer;     /* NULL: accept, read, never answer */
    atomic_int connections;
    atomic_int stop;
    pthread_t th;
};

static void *canned_main(void *arg)
{
    struct canned *c = arg;
    while (!atomic_load(&c->stop)) {
        int s = accept(c->fd, NULL, NULL);
        if (s < 0)
            continue;
        atomic_fetch_add(&c->connections, 1);
        char buf[8192];
        ssize_t got = read(s, buf, sizeof buf);    /* one request, small */
        if (got > 0 && c->answer) {
            size_t n = strlen(c->answer);
            if (write(s, c->answer, n) != (ssize_t)n)
                CHECK(!"canned answer not written");
            close(s);
        } else {
            /* hold the connection until the client gives up */
            while (read(s, buf, sizeof buf) > 0)
                ;
            close(s);
        }
    }
    return NULL;
}

/* A listening socket on 127.0.0.1 and a free port, into c. */
static void listen_local(struct canned *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(c->fd, 16) < 0 ||
        getsockname(c->fd, (struct sockaddr *)&a, &len) < 0)
        abort();
    c->port = ntohs(a.sin_port);
}

static void canned_start(struct canned *c, const char *answer)
{
    memset(c, 0, sizeof *c);
    c->answer = answer;
    listen_local(c);
    pthread_create(&c->th, NULL, canned_main, c);
}

static void canned_stop(struct canned *c)
{
    atomic_store(&c->stop, 1);
    shutdown(c->fd, SHUT_RDWR);
    /* wake accept() */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)c->port) };
    connect(s, (struct sockaddr *)&a, sizeof a);
    close(s);
    pthread_join(c->th, NULL);
    close(c->fd);
}

struct collected {
    char data[256];
    size_t n;
};

static int collect(void *arg, uint64_t pos, const void *data, size_t n)
{
    struct collected *c = arg;
    if (pos + n > sizeof c->data)
        return -EFBIG;
    memcpy(c->data + pos, data, n);
    c->n = (size_t)(pos + n);
    return 0;
}

/* GET [off, off + len) from a server answering `answer`; returns http_do's
 * result, the bytes in *got, the error in e. */
static int ranged_get(const char *answer, uint64_t off, uint64_t len, struct collected *got,
                      struct sky_err *e)
{
    struct canned srv;
    canned_start(&srv, answer);
    struct http_options opt = { .max_retries = 1 };
    struct http_client *c;
    CHECK_INT(http_client_new(&opt, &c, e), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/o", srv.port);
    memset(got, 0, sizeof *got);
    struct http_request req = { .method = "GET", .url = url, .body_fd = -1,
                                .sink = collect, .sink_arg = got,
                                .range_header = "Range", .range_off = off, .range_len = len };
    struct http_response resp;
    int rc = http_do(c, &req, &resp, e);
    if (rc == 0)
        http_response_free(&resp);
    http_headers_free(&req.headers);
    http_client_free(c);
    canned_stop(&srv);
    return rc;
}

TEST(http_range_answers_checked)
{
    struct collected got;
    struct sky_err e = { 0 };
    /* the range asked: taken */
    CHECK_INT(ranged_get("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-5/10\r\n"
                         "Content-Length: 4\r\n\r\ncdef", 2, 4, &got, &e), 0);
    CHECK_INT(got.n, 4);
    CHECK(memcmp(got.data, "cdef", 4) == 0);
    /* shorter only at the object's end: taken */
    CHECK_INT(ranged_get("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 8-9/10\r\n"
                         "Content-Length: 2\r\n\r\nij", 8, 4, &got, &e), 0);
    CHECK_INT(got.n, 2);
    /* 200 with the whole object when it fits in a range from 0: taken */
    CHECK_INT(ranged_get("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 0, 8, &got, &e), 0);
    CHECK_INT(got.n, 3);
    /* another start: refused, nothing reaches the sink */
    e = (struct sky_err){ 0 };
    CHECK_INT(ranged_get("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 3-6/10\r\n"
                         "Content-Length: 4\r\n\r\ndefg", 2, 4, &got, &e), -EIO);
    CHECK_INT(got.n, 0);
    CHECK(strstr(e.msg, "does not match the range asked") != NULL);
    CHECK(strstr(e.msg, "bytes 3-6/10") != NULL);
    /* shorter, not at the end */
    CHECK_INT(ranged_get("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-3/10\r\n"
                         "Content-Length: 2\r\n\r\ncd", 2, 4, &got, &e), -EIO);
    /* no Content-Range */
    CHECK_INT(ranged_get("HTTP/1.1 206 Partial Content\r\nContent-Length: 4\r\n\r\ncdef", 2, 4,
                         &got, &e), -EIO);
    /* Content-Length that disagrees with Content-Range */
    CHECK_INT(ranged_get("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-5/10\r\n"
                         "Content-Length: 3\r\n\r\ncde", 2, 4, &got, &e), -EIO);
    /* 200 (the whole object) for a range not from 0 */
    CHECK_INT(ranged_get("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcdefghij", 2, 4, &got,
                         &e), -EIO);
    CHECK_INT(got.n, 0);
    /* 200 with more than the range */
    CHECK_INT(ranged_get("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcdefghij", 0, 4, &got,
                         &e), -EIO);
    /* errors are not bodies: a 404 is an answer for the driver */
    CHECK_INT(ranged_get("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, 4, &got,
                         &e), 0);
}

TEST(http_many_headers)
{
    struct http_headers h = {0};
    char name[32], value[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "x-amz-meta-k%03d", i);
        snprintf(value, sizeof value, "v%d", i);
        CHECK_INT(http_headers_set(&h, name, value), 0);
    }
    CHECK_INT(h.n, 300);
    CHECK_STR(http_headers_get(&h, "X-AMZ-META-K299"), "v299");
    CHECK_INT(http_headers_set(&h, "x-amz-meta-k000", "again"), 0);
    CHECK_INT(h.n, 300);
    CHECK_STR(http_headers_get(&h, "x-amz-meta-k000"), "again");
    http_headers_free(&h);
    CHECK_INT(h.n, 0);
}

/* ---- a server that asks for Basic authentication ---- */

struct basic_server {
    struct canned base;         /* its socket and thread fields */
    atomic_int requests, signed_requests;
};

/* Answers 204 to a request signed "alice:pw" (Basic), else 401 with a
 * Basic challenge; one request per connection. */
static void *basic_main(void *arg)
{
    struct basic_server *b = arg;
    while (!atomic_load(&b->base.stop)) {
        int s = accept(b->base.fd, NULL, NULL);
        if (s < 0)
            continue;
        char buf[8192];
        ssize_t got = read(s, buf, sizeof buf - 1);
        if (got > 0) {
            buf[got] = '\0';
            atomic_fetch_add(&b->requests, 1);
            bool ok = strstr(buf, "Authorization: Basic YWxpY2U6cHc=") != NULL;
            if (strstr(buf, "Authorization:"))
                atomic_fetch_add(&b->signed_requests, 1);
            const char *answer = ok ? "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
                : "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"t\"\r\n"
                  "Content-Length: 0\r\nConnection: close\r\n\r\n";
            if (write(s, answer, strlen(answer)) != (ssize_t)strlen(answer))
                CHECK(!"answer not written");
        }
        close(s);
    }
    return NULL;
}

TEST(http_basic_auth_challenge_is_no_retry)
{
    struct basic_server b;
    memset(&b, 0, sizeof b);
    listen_local(&b.base);
    pthread_create(&b.base.th, NULL, basic_main, &b);

    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/f", b.base.port);
    struct http_options opt = { .user = "alice", .password = "pw", .max_retries = -1 };
    struct http_client *c = NULL;
    struct sky_err e = { 0 };
    CHECK_INT(http_client_new(&opt, &c, &e), 0);
    for (int i = 0; i < 2; i++) {
        struct http_request req = { .method = "DELETE", .url = url, .body_fd = -1 };
        struct http_response resp;
        CHECK_INT(http_do(c, &req, &resp, &e), 0);
        CHECK_INT(resp.status, 204);
        CHECK_INT(resp.attempts, 1);        /* the challenge was no retry */
        CHECK(!http_retried(&resp));
        http_response_free(&resp);
        http_headers_free(&req.headers);
    }
    /* the first DELETE met the challenge (2 requests); the second went
     * out signed at once (Basic learnt) */
    CHECK_INT(atomic_load(&b.requests), 3);
    CHECK_INT(atomic_load(&b.signed_requests), 2);
    http_client_free(c);

    /* a wrong password: the 401 is the answer */
    struct http_options bad = { .user = "alice", .password = "nope", .max_retries = -1 };
    CHECK_INT(http_client_new(&bad, &c, &e), 0);
    struct http_request req = { .method = "DELETE", .url = url, .body_fd = -1 };
    struct http_response resp;
    CHECK_INT(http_do(c, &req, &resp, &e), 0);
    CHECK_INT(resp.status, 401);
    http_response_free(&resp);
    http_headers_free(&req.headers);
    http_client_free(c);
    canned_stop(&b.base);
}

static void *cancel_soon(void *arg)
{
    struct http_cancel *c = arg;
    usleep(300 * 1000);
    atomic_store(&c->cancelled, 1);
    return NULL;
}

TEST(http_cancel_stops_a_request_in_flight)
{
    struct canned srv;
    canned_start(&srv, NULL);       /* accepts and never answers */
    struct http_options opt = { .stall_timeout_ms = 600000, .max_retries = 5 };
    struct http_client *c;
    struct sky_err e = { 0 };
    CHECK_INT(http_client_new(&opt, &c, &e), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/o", srv.port);
    struct http_cancel cancel = { 0 };
    pthread_t th;
    http_cancel_set(&cancel);
    CHECK(http_cancel_current() == &cancel);
    pthread_create(&th, NULL, cancel_soon, &cancel);
    struct http_request req = { .method = "GET", .url = url, .body_fd = -1 };
    struct http_response resp;
    int rc = http_do(c, &req, &resp, &e);
    pthread_join(th, NULL);
    CHECK_INT(rc, -EINTR);
    CHECK_STR(e.msg, "GET cancelled");
    CHECK_INT(atomic_load(&srv.connections), 1);
    /* already cancelled: nothing goes out */
    rc = http_do(c, &req, &resp, &e);
    CHECK_INT(rc, -EINTR);
    CHECK_INT(atomic_load(&srv.connections), 1);
    http_cancel_set(NULL);
    http_client_free(c);
    canned_stop(&srv);
}

TEST(http_stalled_request_tried_twice)
{
    struct canned srv;
    canned_start(&srv, NULL);
    struct http_options opt = { .stall_timeout_ms = 1000, .max_retries = 6 };
    struct http_client *c;
    struct sky_err e = { 0 };
    CHECK_INT(http_client_new(&opt, &c, &e), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/o", srv.port);
    struct http_request req = { .method = "GET", .url = url, .body_fd = -1 };
    struct http_response resp;
    CHECK_INT(http_do(c, &req, &resp, &e), -EHOSTDOWN);
    CHECK(strstr(e.msg, "(after 2 attempts)") != NULL);
    CHECK_INT(atomic_load(&srv.connections), 2);
    http_client_free(c);
    canned_stop(&srv);
}

/* ---- the per-cloud keys ---- */

static int load(const char *text, struct sky_config **cfg, struct sky_err *e, char **dir)
{
    *dir = unit_tmpdir();
    char *path = unit_write_file(*dir, "skyfs.conf", text, 0600);
    int rc = sky_config_load(path, cfg, e);
    free(path);
    return rc;
}

TEST(http_cloud_keys)
{
    struct sky_config *cfg = NULL;
    struct sky_err e = { 0 };
    char *dir;
    CHECK_INT(load("[s]\ntype = s3\nbucket = b\nconnect_timeout = 2s\ntimeout = 1500ms\n"
                   "retries = 7\n", &cfg, &e, &dir), 0);
    struct http_options opt;
    CHECK_INT(http_options_from_cloud(&cfg->clouds[0], &opt, &e), 0);
    CHECK_INT(opt.connect_timeout_ms, 2000);
    CHECK_INT(opt.stall_timeout_ms, 1500);
    CHECK_INT(opt.max_retries, 7);
    sky_config_free(cfg);
    unit_rmtree(dir);
    free(dir);

    CHECK_INT(load("[a]\ntype = azure\naccount = x\nretries = 0\n", &cfg, &e, &dir), 0);
    CHECK_INT(http_options_from_cloud(&cfg->clouds[0], &opt, &e), 0);
    CHECK_INT(opt.max_retries, -1);     /* none */
    CHECK_INT(opt.connect_timeout_ms, 0);   /* the default */
    sky_config_free(cfg);
    unit_rmtree(dir);
    free(dir);

    static const char *const bad[][2] = {
        { "[s]\ntype = s3\nbucket = b\ntimeout = soon\n",
          ":4: timeout = \"soon\" is not a duration; write e.g. 500ms, 10s or 2m" },
        { "[s]\ntype = s3\nbucket = b\nconnect_timeout = forever\n",
          ":4: connect_timeout = \"forever\" is not a duration; write e.g. 500ms, 10s or 2m" },
        { "[s]\ntype = s3\nbucket = b\nretries = -1\n",
          ":4: retries = \"-1\" is not a count; write a whole number from 0 to 100" },
        { "[s]\ntype = azure\naccount = x\nretries = 500\n",
          ":4: retries = \"500\" is not a count; write a whole number from 0 to 100" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e = (struct sky_err){ 0 };
        cfg = NULL;
        CHECK(load(bad[i][0], &cfg, &e, &dir) < 0);
        const char *colon = strstr(e.msg, ".conf:");
        CHECK_STR(colon ? colon + 5 : e.msg, bad[i][1]);
        sky_config_free(cfg);
        unit_rmtree(dir);
        free(dir);
    }
    /* not an HTTP cloud: not a key of it */
    CHECK(load("[l]\ntype = local\npath = /x\ntimeout = 1s\n", &cfg, &e, &dir) < 0);
    CHECK(strstr(e.msg, "unknown key \"timeout\"") != NULL);
    sky_config_free(cfg);
    unit_rmtree(dir);
    free(dir);
}

/* ---- the listing guard ---- */

TEST(list_guard_stops_loops)
{
    struct sky_err e = { 0 };
    struct list_guard g = LIST_GUARD_INIT;
    /* a normal listing: names move on, tokens change, the last has none */
    list_guard_item(&g, "a");
    CHECK_INT(list_guard_page(&g, 100, "t1", &e), 0);
    list_guard_item(&g, "b");
    CHECK_INT(list_guard_page(&g, 100, "t2", &e), 0);
    list_guard_item(&g, "c");
    CHECK_INT(list_guard_page(&g, 100, NULL, &e), 0);
    list_guard_free(&g);

    /* the token that asked for a page comes back */
    list_guard_item(&g, "a");
    CHECK_INT(list_guard_page(&g, 100, "t1", &e), 0);
    list_guard_item(&g, "b");
    CHECK_INT(list_guard_page(&g, 100, "t1", &e), -EIO);
    CHECK(strstr(e.msg, "repeated a page token") != NULL);
    list_guard_free(&g);

    /* two tokens taking turns */
    CHECK_INT(list_guard_page(&g, 1, "A", &e), 0);
    list_guard_item(&g, "x");
    CHECK_INT(list_guard_page(&g, 1, "B", &e), 0);
    list_guard_item(&g, "y");
    CHECK_INT(list_guard_page(&g, 1, "A", &e), -EIO);
    list_guard_free(&g);

    /* new tokens, the same names again: stops after LIST_STALL_PAGES */
    int rc = 0, pages = 0;
    for (; rc == 0 && pages < 100; pages++) {
        char tok[16];
        snprintf(tok, sizeof tok, "t%d", pages);
        list_guard_item(&g, "a");
        list_guard_item(&g, "b");
        rc = list_guard_page(&g, 100, tok, &e);
    }
    CHECK_INT(rc, -EIO);
    CHECK_INT(pages, LIST_STALL_PAGES + 1);
    CHECK(strstr(e.msg, "without a new name") != NULL);
    list_guard_free(&g);
}
