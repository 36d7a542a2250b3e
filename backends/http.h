/*
 * http.h - the HTTP client every network driver shares (libcurl).
 *
 * One `struct http_client` per cloud: it keeps a pool of curl easy handles
 * so connections are reused, applies connect and transfer timeouts, verifies
 * TLS (extra CAs from `ca_file`; never switched off), and retries with
 * exponential backoff and jitter on connection errors, timeouts, 429 and
 * 5xx.  Before each attempt it calls the request's `sign` hook so that
 * signers (SigV4, Azure SharedKey) stamp fresh dates.
 *
 * Used only by backends/ drivers.  Never logs headers (they hold secrets).
 */
#ifndef SKY_HTTP_H
#define SKY_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

struct http_header {
    char *name;             /* owned */
    char *value;            /* owned */
};

/* A growing list of headers: no fixed limit (an object may carry as much
 * metadata as its protocol allows).  {0} is an empty list; moving one
 * (`a = b; memset(&b, 0, sizeof b)`) hands over what it owns. */
struct http_headers {
    size_t n, cap;
    struct http_header *h;
};

/* Add (copying) or replace a header; returns 0 or -ENOMEM. */
int http_headers_set(struct http_headers *hs, const char *name, const char *value);
/* Value of a header, case-insensitive name, or NULL. */
const char *http_headers_get(const struct http_headers *hs, const char *name);
void http_headers_free(struct http_headers *hs);
/* Bytes of the headers whose name starts with `prefix` (any case): their
 * names after the prefix plus their values (a cloud's limit on metadata,
 * e.g. x-amz-meta-). */
size_t http_headers_bytes(const struct http_headers *hs, const char *prefix);

struct http_request;
/* Takes n bytes found at offset pos of a response body; 0 or -errno. */
typedef int (*http_sink_fn)(void *arg, uint64_t pos, const void *data, size_t n);
/* Called before each attempt: add auth headers to req->headers. */
typedef int (*http_sign_fn)(void *arg, struct http_request *req, struct sky_err *e);

struct http_request {
    const char *method;     /* "GET", "PUT", ... */
    char *url;              /* full URL, already percent-encoded; owned by caller */
    struct http_headers headers;     /* request headers (caller frees) */

    /* Body: either a memory buffer, or `body_len` bytes of body_fd from
     * body_off (pread).  body_len 0 and no buffer = empty body. */
    const void *body;
    int body_fd;            /* -1 when unused */
    uint64_t body_off;
    uint64_t body_len;

    /* Response body sink (ranged reads): if set, the bytes go to
     * sink(sink_arg, pos, data, n) as they arrive (pos: where they are in
     * the body; at most out_cap bytes, the rest is an error), and
     * resp->body_len counts them; otherwise the body is collected into
     * resp->body.  Only a 2xx body goes to the sink (an error body is
     * collected).  A retried attempt starts over: the sink sees pos 0
     * again.  A sink returning a negative errno stops the request:
     * http_do returns it, with no retry. */
    size_t out_cap;
    http_sink_fn sink;
    void *sink_arg;

    /* Ranged GET (optional): when range_header is set ("Range", or
     * "x-ms-range"), http_do sends "bytes=OFF-END" for [range_off,
     * range_off + range_len) under that name and checks every answer
     * against it: a 206 must carry a Content-Range that starts at range_off
     * and ends at the range's end (or earlier only at the object's end), a
     * 200 (a server that ignores ranges) only passes when range_off is 0
     * and the whole object fits in the range, and the body must be exactly
     * as long as announced.  An answer that does not match is a failed
     * attempt (retried; after the last one http_do returns -EIO naming
     * what was wrong); none of its bytes reach the sink.  range_len > 0. */
    const char *range_header;
    uint64_t range_off, range_len;

    http_sign_fn sign;
    void *sign_arg;
    /* The time (Unix seconds) the sign hook stamps on the request: set by
     * http_do before each attempt to this machine's clock corrected by the
     * server's (see http_request_time). */
    int64_t sign_time;
};

/* The time a sign hook puts in req (S3's x-amz-date, Azure's x-ms-date):
 * req->sign_time, or time(NULL) for a request signed outside http_do.
 * When a server refuses a request (401 or 403) with a Date header more
 * than HTTP_CLOCK_SKEW_MAX_S away from this machine's clock, the clock is
 * wrong (servers refuse a signature more than 15 minutes off theirs): the
 * client keeps the difference, signs with the server's time from then on
 * and sends the refused request again, once; the log says so, with the
 * fix.  A later refusal whose Date agrees with the local clock again (the
 * clock was set right) drops the difference the same way. */
int64_t http_request_time(const struct http_request *req);
#define HTTP_CLOCK_SKEW_MAX_S 300

struct http_response {
    long status;            /* HTTP status, 0 if no response */
    struct http_headers headers;     /* response headers, names lowercased */
    char *body;             /* NUL-terminated collected body, may be NULL */
    size_t body_len;        /* bytes collected or given to the sink */
    int attempts;           /* times the request went out (1 = answered at
                             * the first; libcurl's own resend over a reused
                             * connection that died counts too).
                             * More than one means an earlier attempt of a
                             * non-idempotent request may have been done by
                             * the server although its answer was lost: a
                             * retried commit, copy or delete that now fails
                             * checks what the cloud holds (see
                             * http_retried) before reporting the failure. */
};

/* Did the answer in resp come from a retry (an earlier attempt got no
 * answer, or a retryable error)?  A driver then treats "already done"
 * answers (404 to a DELETE, NoSuchUpload to a completion) as what they
 * are: the earlier attempt's success, once it checked the cloud. */
int http_retried(const struct http_response *resp);

/* Defaults of the per-cloud keys connect_timeout, timeout and retries. */
#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define HTTP_DEFAULT_STALL_TIMEOUT_MS   20000
#define HTTP_DEFAULT_RETRIES            4

struct http_options {
    const char *ca_file;    /* extra CA bundle, or NULL */
    long connect_timeout_ms;         /* 0: HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
    long stall_timeout_ms;           /* an attempt that moves no byte for this long
                                      * is abandoned; 0: HTTP_DEFAULT_STALL_TIMEOUT_MS */
    int max_retries;                 /* 0: HTTP_DEFAULT_RETRIES; < 0: none */
    int max_connections;             /* pool size; default 16 */
    const char *cloud;               /* the cloud's name, for its metrics
                                      * (lib/metrics.h), or NULL: not counted */
    /* HTTP authentication by libcurl (WebDAV): with `user` set, every
     * request carries these credentials by Basic or Digest, whichever the
     * server asks for (CURLAUTH_BASIC|CURLAUTH_DIGEST).  The first answer
     * that names the server's method fixes it for the client's later
     * requests, so Basic costs no extra round trip after that.  Both are
     * copied; the password is wiped when the client is freed. */
    const char *user;
    const char *password;
};

/* The config keys every HTTP cloud accepts besides its own (put them in
 * the driver's key table: `HTTP_CLOUD_KEYS,`); the config loader checks
 * their form (durations, a count) and http_options_from_cloud reads them,
 * with the driver's own `ca_file`. */
#define HTTP_CLOUD_KEYS                                                                    \
    { "connect_timeout", SKY_KEY_DURATION,                                                 \
      "how long connecting to the server may take (default 10s)" },                       \
    { "timeout", SKY_KEY_DURATION,                                                         \
      "a request that moves no byte for this long is abandoned (default 20s)" },           \
    { "retries", SKY_KEY_COUNT,                                                            \
      "retries of a failed request (default 4; a stalled one is retried once)" }

struct sky_cloud_config;
/* opt from the cloud's ca_file, connect_timeout, timeout and retries keys
 * (already checked by the config loader), and its name for the metrics;
 * 0 or -EINVAL naming FILE:LINE. */
int http_options_from_cloud(const struct sky_cloud_config *cfg, struct http_options *opt,
                            struct sky_err *e);

/* The struct http_cancel this thread named with http_cancel_set (below),
 * or NULL.  parallel_for (parallel.h) names its caller's in its helper
 * threads, so that cancelling a caller also cancels the part uploads and
 * copies it runs on them.  Typical use of the hook in fs/:
 *
 *     struct http_cancel cancel = { 0 };   // interrupt handler: cancelled = 1
 *     http_cancel_set(&cancel);
 *     rc = driver->read(...);              // -EINTR soon after
 *     http_cancel_set(NULL);
 */
struct http_cancel *http_cancel_current(void);


struct http_client;

int http_client_new(const struct http_options *opt, struct http_client **out, struct sky_err *e);
void http_client_free(struct http_client *c);

/* Run req (with retries).  Returns 0 when a response arrived (any status,
 * check resp->status) or a negative errno when none did after the retries
 * (-EHOSTDOWN for connection failures and timeouts, -EIO for answers that
 * do not match the range asked, -EINTR when cancelled).  Retries: up to
 * max_retries more attempts after connection errors, resets, 429 and 5xx,
 * but an attempt that stalled (no byte for stall_timeout, or no
 * connection within connect_timeout) is retried only once, so a server
 * that accepts and never answers costs a caller two stall timeouts.  resp must be freed
 * with http_response_free. */
int http_do(struct http_client *c, struct http_request *req, struct http_response *resp,
            struct sky_err *e);
void http_response_free(struct http_response *resp);

/* Cancelling transfers (used by fs/: a request whose process was killed is
 * abandoned, a probe of a hung server gives up, a stopping daemon ends).
 * A thread names a struct http_cancel with http_cancel_set; from then on
 * every http_do of that thread returns -EINTR (e filled) within a fraction
 * of a second of `cancelled` becoming nonzero or of `deadline_ms`
 * (a lib/clock.h clock_now_ms() value, 0: none) passing: the transfer's
 * progress callback and the backoff sleep between retries look at it.
 * http_cancel_set(NULL) ends that.  http_cancel_all() makes every
 * transfer of the process, now and later, return -EINTR the same way; it
 * is async-signal-safe (a SIGTERM handler calls it). */
struct http_cancel {
    atomic_int cancelled;
    long long deadline_ms;
    /* A background thread's transfers (the crawl, and the helper threads
     * of its parallel_for): they yield the client's connections to the
     * others.  While any other transfer of the client runs, waits, or
     * ended less than HTTP_BACKGROUND_QUIET_MS ago, at most one
     * background transfer is under way; on a quiet client up to half its
     * connections.  So a crawl never takes the server's capacity from
     * the people using the mount (one slow listing each), yet runs at
     * full speed when nobody does. */
    bool background;
};
#define HTTP_BACKGROUND_QUIET_MS 250
void http_cancel_set(struct http_cancel *c);
void http_cancel_all(void);
/* Has this thread's struct http_cancel (or http_cancel_all) asked to stop?
 * For drivers that speak another protocol (SFTP) and look between their
 * requests. */
bool http_cancelled(void);
/* The same question about a given struct (any thread may ask): is c
 * cancelled, past its deadline, or everything cancelled?  NULL: only the
 * last. */
bool http_cancel_is_set(struct http_cancel *c);

/* Percent-encode per RFC 3986 (unreserved kept; '/' kept when keep_slash).
 * Returns a malloc'd string. */
char *http_uri_encode(const char *s, int keep_slash);

/* An HTTP date ("Wed, 12 Oct 2009 17:50:00 GMT", RFC 9110's IMF-fixdate)
 * -> ns since the epoch; 0, or -EINVAL when s is NULL or not such a date. */
int http_parse_date(const char *s, int64_t *ns);

/* Called once at program start (curl_global_init). */
void http_global_init(void);

#endif
