/*
 * test_http_cancel.c - cancelling HTTP transfers (http.h): a request to a
 * server that accepts and never answers ends with -EINTR when its
 * thread's cancel flag is set or its deadline passes, instead of waiting
 * out the timeouts and retries (minutes).
 */
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../backends/http.h"
#include "../../lib/clock.h"

/* A socket on 127.0.0.1 that takes connections (the kernel's backlog) and
 * never answers; *port gets its port.  Returns the fd or -1. */
static int silent_server(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* GET / from the silent server with `cancel` named for this thread. */
static int get_silent(int port, struct http_cancel *cancel, struct sky_err *e)
{
    struct http_client *c;
    if (http_client_new(NULL, &c, e) != 0)
        return -ENOMEM;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    struct http_request req = { .method = "GET", .url = url, .body_fd = -1 };
    struct http_response resp;
    http_cancel_set(cancel);
    int rc = http_do(c, &req, &resp, e);
    http_cancel_set(NULL);
    if (rc == 0)
        http_response_free(&resp);
    http_client_free(c);
    return rc;
}

TEST(http_cancel_deadline_ends_a_hung_request)
{
    int port, fd = silent_server(&port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    struct http_cancel cancel = { .deadline_ms = clock_now_ms() + 300 };
    struct sky_err e = { 0 };
    CHECK_INT(get_silent(port, &cancel, &e), -EINTR);
    CHECK_INT(e.code, EINTR);
    close(fd);
}

TEST(http_cancel_flag_set_before_sends_nothing)
{
    int port, fd = silent_server(&port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    struct http_cancel cancel = { .deadline_ms = 0 };
    atomic_store(&cancel.cancelled, 1);
    struct sky_err e = { 0 };
    CHECK_INT(get_silent(port, &cancel, &e), -EINTR);
    close(fd);
}

struct later {
    struct http_cancel *cancel;
};

static void *cancel_later(void *arg)
{
    struct later *l = arg;
    usleep(200 * 1000);
    atomic_store(&l->cancel->cancelled, 1);
    return NULL;
}

TEST(http_cancel_flag_set_by_another_thread)
{
    int port, fd = silent_server(&port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    struct http_cancel cancel = { .deadline_ms = 0 };
    struct later l = { &cancel };
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, cancel_later, &l), 0);
    struct sky_err e = { 0 };
    CHECK_INT(get_silent(port, &cancel, &e), -EINTR);
    pthread_join(t, NULL);
    close(fd);
}
