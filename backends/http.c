/*
 * http.c - the shared libcurl client; see http.h.
 *
 * Design.  A client owns a small pool of curl easy handles guarded by a
 * mutex and a condition variable: a request borrows one (waiting when
 * max_connections are busy), and gives it back afterwards, so a
 * connection to the server stays open for the next request.  DNS answers
 * and TLS sessions are shared between the handles (CURLSH).  Each attempt
 * resets the handle's options (connections survive curl_easy_reset),
 * calls the request's sign hook, and sends the body from memory or by
 * pread() from a file descriptor; the body is rewindable, so a retry or a
 * redirect-free resend starts again at the first byte.
 *
 * Responses with a 2xx status go to the caller's sink when it gave one;
 * anything else (error XML) is collected in resp->body so the driver can
 * name the error code.  Retries: connection errors, timeouts, resets, 429
 * and 5xx, with exponential backoff and "equal jitter" (half fixed, half
 * random) between 200 ms and 8 s.
 *
 * Cancelling (http.h): the progress callback of every transfer, and the
 * backoff sleep in slices of 100 ms, look at the calling thread's
 * struct http_cancel and at the process-wide flag, so a cancelled
 * request ends within about a second (libcurl calls the progress
 * callback at least once a second, also while nothing arrives).
 */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define HTTP_MAX_BODY (256u << 20)   /* collected bodies above this are an error */
#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS 8000

/* ---- headers ---- */

int http_headers_set(struct http_headers *hs, const char *name, const char *value)
{
    for (size_t i = 0; i < hs->n; i++) {
        if (strcasecmp(hs->h[i].name, name) == 0) {
            char *v = strdup(value);
            if (!v)
                return -ENOMEM;
            free(hs->h[i].value);
            hs->h[i].value = v;
            return 0;
        }
    }
    if (hs->n >= HTTP_MAX_HEADERS)
        return -E2BIG;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -ENOMEM;
    }
    hs->h[hs->n].name = n;
    hs->h[hs->n].value = v;
    hs->n++;
    return 0;
}

const char *http_headers_get(const struct http_headers *hs, const char *name)
{
    for (size_t i = 0; i < hs->n; i++)
        if (strcasecmp(hs->h[i].name, name) == 0)
            return hs->h[i].value;
    return NULL;
}

void http_headers_free(struct http_headers *hs)
{
    for (size_t i = 0; i < hs->n; i++) {
        free(hs->h[i].name);
        free(hs->h[i].value);
    }
    hs->n = 0;
}

size_t http_headers_bytes(const struct http_headers *hs, const char *prefix)
{
    size_t plen = strlen(prefix), n = 0;
    for (size_t i = 0; i < hs->n; i++)
        if (strncasecmp(hs->h[i].name, prefix, plen) == 0)
            n += strlen(hs->h[i].name + plen) + strlen(hs->h[i].value);
    return n;
}

void http_response_free(struct http_response *resp)
{
    http_headers_free(&resp->headers);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = 0;
}

/* ---- encoding ---- */

char *http_uri_encode(const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
            (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* ---- cancelling ---- */

static __thread struct http_cancel *thread_cancel;
static atomic_int cancel_everything;

void http_cancel_set(struct http_cancel *c)
{
    thread_cancel = c;
}

void http_cancel_all(void)
{
    atomic_store(&cancel_everything, 1);
}

long long http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cancel_requested(void)
{
    if (atomic_load(&cancel_everything))
        return 1;
    struct http_cancel *c = thread_cancel;
    if (!c)
        return 0;
    return atomic_load(&c->cancelled) || (c->deadline_ms && http_now_ms() >= c->deadline_ms);
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    return cancel_requested();
}

/* ---- global init ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* a peer closing a TLS connection must not kill the daemon */
    signal(SIGPIPE, SIG_IGN);
}

void http_global_init(void)
{
    pthread_once(&global_once, global_init_once);
}

/* ---- the client and its handle pool ---- */

struct http_client {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    CURL **idle;
    int nidle, nbusy, max;

    CURLSH *share;
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];

    char *ca_file;
    long connect_timeout_ms;
    long low_speed_time_s;
    int max_retries;
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access acc, void *arg)
{
    struct http_client *c = arg;
    pthread_mutex_lock(&c->share_lock[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    struct http_client *c = arg;
    pthread_mutex_unlock(&c->share_lock[data]);
}

int http_client_new(const struct http_options *opt, struct http_client **out, struct sky_err *e)
{
    http_global_init();
    struct http_client *c = calloc(1, sizeof *c);
    if (!c)
        return sky_fail(e, ENOMEM, "out of memory");
    c->max = opt && opt->max_connections > 0 ? opt->max_connections : 16;
    c->connect_timeout_ms = opt && opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : 10000;
    c->low_speed_time_s = opt && opt->low_speed_time_s > 0 ? opt->low_speed_time_s : 30;
    /* 0 means the default; a negative value means no retries */
    c->max_retries = !opt || opt->max_retries == 0 ? 5
                   : opt->max_retries < 0 ? 0 : opt->max_retries;
    if (opt && opt->ca_file && *opt->ca_file) {
        if (access(opt->ca_file, R_OK) != 0) {
            int err = errno;
            free(c);
            return sky_fail(e, err, "CA file %s cannot be read: %s", opt->ca_file, strerror(err));
        }
        c->ca_file = strdup(opt->ca_file);
    }
    c->idle = calloc((size_t)c->max, sizeof *c->idle);
    c->share = curl_share_init();
    if (!c->idle || !c->share || (opt && opt->ca_file && *opt->ca_file && !c->ca_file)) {
        if (c->share)
            curl_share_cleanup(c->share);
        free(c->idle);
        free(c->ca_file);
        free(c);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->freed, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_lock[i], NULL);
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = c;
    return 0;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_lock[i]);
    pthread_cond_destroy(&c->freed);
    pthread_mutex_destroy(&c->lock);
    free(c->idle);
    free(c->ca_file);
    free(c);
}

static CURL *pool_take(struct http_client *c)
{
    pthread_mutex_lock(&c->lock);
    while (c->nidle == 0 && c->nbusy >= c->max)
        pthread_cond_wait(&c->freed, &c->lock);
    CURL *h = c->nidle > 0 ? c->idle[--c->nidle] : NULL;
    c->nbusy++;
    pthread_mutex_unlock(&c->lock);
    if (!h)
        h = curl_easy_init();
    if (!h) {
        pthread_mutex_lock(&c->lock);
        c->nbusy--;
        pthread_cond_signal(&c->freed);
        pthread_mutex_unlock(&c->lock);
    }
    return h;
}

static void pool_give(struct http_client *c, CURL *h)
{
    pthread_mutex_lock(&c->lock);
    c->nbusy--;
    if (c->nidle < c->max)
        c->idle[c->nidle++] = h;
    else
        curl_easy_cleanup(h);
    pthread_cond_signal(&c->freed);
    pthread_mutex_unlock(&c->lock);
}

/* ---- one transfer ---- */

struct xfer {
    struct http_client *client;
    struct http_request *req;
    struct http_response *resp;
    uint64_t sent;              /* body bytes handed to curl */
    long status;                /* from the last status line */
    size_t body_cap;
    int overflow;               /* out_cap or HTTP_MAX_BODY exceeded */
    int read_errno;             /* pread failure */
    int sink_errno;             /* the body sink refused the bytes */
};

static size_t on_header(char *line, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue or similar): start over */
        const char *sp = memchr(line, ' ', n);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        http_headers_free(&x->resp->headers);
        return n;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line)
        return n;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char name[256], *value = strndup(v, (size_t)(end - v));
    if (nlen >= sizeof name || !value) {
        free(value);
        return n;
    }
    for (size_t i = 0; i < nlen; i++)
        name[i] = (char)tolower((unsigned char)line[i]);
    name[nlen] = '\0';
    http_headers_set(&x->resp->headers, name, value); /* too many: dropped */
    free(value);
    return n;
}

static int collect_body(struct xfer *x, const char *data, size_t n)
{
    struct http_response *r = x->resp;
    if (r->body_len + n + 1 > x->body_cap) {
        size_t cap = x->body_cap ? x->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > HTTP_MAX_BODY)
            return -1;
        char *p = realloc(r->body, cap);
        if (!p)
            return -1;
        r->body = p;
        x->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nitems;
    struct http_request *q = x->req;
    if (q->sink && x->status >= 200 && x->status < 300) {
        if (x->resp->body_len + n > q->out_cap) {
            x->overflow = 1;
            return 0;
        }
        int rc = q->sink(q->sink_arg, x->resp->body_len, data, n);
        if (rc < 0) {
            x->sink_errno = -rc;
            return 0;
        }
        x->resp->body_len += n;
        return n;
    }
    if (collect_body(x, data, n) < 0) {
        x->overflow = 1;
        return 0;
    }
    return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    struct http_request *q = x->req;
    uint64_t left = q->body_len - x->sent;
    size_t want = size * nitems;
    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (q->body) {
        memcpy(buf, (const char *)q->body + x->sent, want);
    } else {
        ssize_t got;
        do
            got = pread(q->body_fd, buf, want, (off_t)(q->body_off + x->sent));
        while (got < 0 && errno == EINTR);
        if (got <= 0) {
            x->read_errno = got < 0 ? errno : EIO;
            return CURL_READFUNC_ABORT;
        }
        want = (size_t)got;
    }
    x->sent += want;
    return want;
}

static int on_seek(void *arg, curl_off_t offset, int origin)
{
    struct xfer *x = arg;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->req->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    x->sent = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *arg)
{
    struct http_client *c = arg;
    X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)ssl_ctx);
    if (!store || X509_STORE_load_file(store, c->ca_file) != 1)
        return CURLE_SSL_CACERT_BADFILE;
    return CURLE_OK;
}

static struct curl_slist *build_header_list(const struct http_headers *hs)
{
    struct curl_slist *list = NULL, *next;
    for (size_t i = 0; i < hs->n; i++) {
        char *line;
        int rc = hs->h[i].value[0] ? asprintf(&line, "%s: %s", hs->h[i].name, hs->h[i].value)
                                   : asprintf(&line, "%s;", hs->h[i].name);
        if (rc < 0)
            goto oom;
        next = curl_slist_append(list, line);
        free(line);
        if (!next)
            goto oom;
        list = next;
    }
    /* no "Expect: 100-continue" round trip: S3 answers errors anyway */
    next = curl_slist_append(list, "Expect:");
    if (!next)
        goto oom;
    return next;
oom:
    curl_slist_free_all(list);
    return NULL;
}

static void set_method(CURL *h, const struct http_request *q)
{
    int has_body = q->body || q->body_len > 0 || strcmp(q->method, "PUT") == 0 ||
                   strcmp(q->method, "POST") == 0;
    if (strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
        if (strcmp(q->method, "PUT") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    } else if (strcmp(q->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    }
}

static void set_options(struct xfer *x, CURL *h, struct curl_slist *hdrs, char *errbuf)
{
    struct http_client *c = x->client;
    curl_easy_setopt(h, CURLOPT_URL, x->req->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file) {
        curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, c);
    }
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, x);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    set_method(h, x->req);
}

static int curl_code_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

static int status_retryable(long status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

/* Sleep before retry `attempt`; returns early when cancelled. */
static void backoff_sleep(int attempt)
{
    static __thread unsigned seed;
    if (!seed)
        seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
    long ms = BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    ms = ms / 2 + rand_r(&seed) % (ms / 2 + 1);
    for (long slept = 0; slept < ms && !cancel_requested(); slept += 100) {
        long slice = ms - slept < 100 ? ms - slept : 100;
        struct timespec ts = { 0, slice * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
}

/* One attempt.  Returns the CURLcode; *fail holds a negative errno for
 * local failures that no retry can fix (0 otherwise). */
static CURLcode attempt_once(struct xfer *x, CURL *h, char *errbuf, int *fail,
                             struct sky_err *e)
{
    struct http_request *q = x->req;
    *fail = 0;
    if (cancel_requested()) {
        *fail = sky_fail(e, EINTR, "%s cancelled", q->method);
        return CURLE_ABORTED_BY_CALLBACK;
    }
    if (q->sign && q->sign(q->sign_arg, q, e) < 0) {
        *fail = -(e && e->code ? e->code : EINVAL);
        return CURLE_ABORTED_BY_CALLBACK;
    }
    struct curl_slist *hdrs = build_header_list(&q->headers);
    if (!hdrs) {
        *fail = sky_fail(e, ENOMEM, "out of memory building a request");
        return CURLE_OUT_OF_MEMORY;
    }
    curl_easy_reset(h);
    x->sent = 0;
    x->status = 0;
    x->overflow = 0;
    x->read_errno = 0;
    x->sink_errno = 0;
    x->body_cap = 0;
    http_response_free(x->resp);
    errbuf[0] = '\0';
    set_options(x, h, hdrs, errbuf);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->resp->status);
    if (rc == CURLE_ABORTED_BY_CALLBACK && cancel_requested())
        *fail = sky_fail(e, EINTR, "%s cancelled", q->method);
    else if (x->read_errno)
        *fail = sky_fail(e, x->read_errno, "reading the upload source: %s",
                         strerror(x->read_errno));
    else if (x->sink_errno)
        *fail = sky_fail(e, x->sink_errno, "the receiver of the response failed: %s",
                         strerror(x->sink_errno));
    else if (x->overflow)
        *fail = sky_fail(e, EIO, "response body larger than expected (%zu bytes)",
                         q->sink ? q->out_cap : (size_t)HTTP_MAX_BODY);
    return rc;
}

/* The host part of a URL, for messages (never the query: it may hold a
 * signature). */
static void url_host(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

int http_do(struct http_client *c, struct http_request *req, struct http_response *resp,
            struct sky_err *e)
{
    memset(resp, 0, sizeof *resp);
    CURL *h = pool_take(c);
    if (!h)
        return sky_fail(e, ENOMEM, "cannot create a curl handle");
    struct xfer x = { .client = c, .req = req, .resp = resp };
    char errbuf[CURL_ERROR_SIZE];
    int result = 0;
    for (int attempt = 0;; attempt++) {
        int fail;
        CURLcode rc = attempt_once(&x, h, errbuf, &fail, e);
        if (fail) {
            result = fail;
            break;
        }
        int last = attempt >= c->max_retries;
        if (rc == CURLE_OK) {
            if (!status_retryable(resp->status) || last)
                break;
        } else if (!curl_code_retryable(rc) || last) {
            char host[256];
            url_host(req->url, host, sizeof host);
            result = sky_fail(e, curl_code_retryable(rc) ? EHOSTDOWN : EIO,
                              "%s %s: %s (after %d attempts)", req->method, host,
                              errbuf[0] ? errbuf : curl_easy_strerror(rc), attempt + 1);
            break;
        }
        backoff_sleep(attempt);
    }
    pool_give(c, h);
    if (result < 0)
        http_response_free(resp);
    return result;
}
