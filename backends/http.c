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
 * Answers are checked, not trusted: a ranged GET's answer must be the
 * range asked (status, Content-Range, length) or the attempt failed; and
 * each request that changes things counts the times it went out (libcurl
 * resends by itself over a dead reused connection), so that a driver can
 * tell a retried commit or delete from a first one (http_retried).  An
 * attempt that stalled is retried only once.
 *
 * Responses with a 2xx status go to the caller's sink when it gave one;
 * anything else (error XML) is collected in resp->body so the driver can
 * name the error code.  Retries: connection errors, timeouts, resets, 429
 * and 5xx, with exponential backoff and "equal jitter" (half fixed, half
 * random) between 200 ms and 8 s.
 *
 * The server's clock: a 401 or 403 whose Date header is far from this
 * machine's clock teaches the client the difference, which every later
 * signature adds (http_request_time; learn_server_clock).
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "../lib/clock.h"
#include "../lib/config.h"
#include "../lib/log.h"
#include "../lib/metrics.h"

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
    if (hs->n == hs->cap) {
        size_t cap = hs->cap ? hs->cap * 2 : 16;
        struct http_header *h = realloc(hs->h, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        hs->h = h;
        hs->cap = cap;
    }
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
    free(hs->h);
    hs->h = NULL;
    hs->n = hs->cap = 0;
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

int http_retried(const struct http_response *resp)
{
    return resp->attempts > 1;
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

static int cancel_requested(void)
{
    if (atomic_load(&cancel_everything))
        return 1;
    struct http_cancel *c = thread_cancel;
    if (!c)
        return 0;
    return atomic_load(&c->cancelled) || (c->deadline_ms && clock_now_ms() >= c->deadline_ms);
}

bool http_cancelled(void)
{
    return cancel_requested() != 0;
}

bool http_cancel_is_set(struct http_cancel *c)
{
    if (atomic_load(&cancel_everything))
        return true;
    return c && (atomic_load(&c->cancelled) ||
                 (c->deadline_ms && clock_now_ms() >= c->deadline_ms));
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
    pthread_cond_t freed;       /* CLOCK_MONOTONIC; broadcast: waiters differ */
    CURL **idle;
    int nidle, nbusy, max;
    int busy_background;        /* of nbusy: background transfers (http_cancel) */
    int waiting_foreground;     /* foreground transfers waiting for a handle */
    long long foreground_ms;    /* when the last foreground transfer ended */

    CURLSH *share;
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];

    char *ca_file;
    struct sky_metrics_cloud *metrics;  /* NULL: not counted */
    long connect_timeout_ms;
    long stall_timeout_ms;
    int max_retries;

    char *user, *password;      /* HTTP authentication (http_options), or NULL */
    atomic_long auth_methods;   /* CURLAUTH_* bits to offer; narrowed once known */
    atomic_llong clock_offset_s;    /* the server's clock minus this machine's */
    char *cloud;                /* the cloud's name for the log, or NULL */
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
    c->metrics = opt ? sky_metrics_cloud(opt->cloud) : NULL;
    c->connect_timeout_ms = opt && opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms
                                                               : HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
    c->stall_timeout_ms = opt && opt->stall_timeout_ms > 0 ? opt->stall_timeout_ms
                                                           : HTTP_DEFAULT_STALL_TIMEOUT_MS;
    /* 0 means the default; a negative value means no retries */
    c->max_retries = !opt || opt->max_retries == 0 ? HTTP_DEFAULT_RETRIES
                   : opt->max_retries < 0 ? 0 : opt->max_retries;
    if (opt && opt->ca_file && *opt->ca_file) {
        if (access(opt->ca_file, R_OK) != 0) {
            int err = errno;
            free(c);
            return sky_fail(e, err, "CA file %s cannot be read: %s", opt->ca_file, strerror(err));
        }
        c->ca_file = strdup(opt->ca_file);
    }
    if (opt && opt->user) {
        c->user = strdup(opt->user);
        c->password = strdup(opt->password ? opt->password : "");
    }
    atomic_init(&c->auth_methods, (long)(CURLAUTH_BASIC | CURLAUTH_DIGEST));
    atomic_init(&c->clock_offset_s, 0);
    if (opt && opt->cloud)
        c->cloud = strdup(opt->cloud);
    c->idle = calloc((size_t)c->max, sizeof *c->idle);
    c->share = curl_share_init();
    if (!c->idle || !c->share || (opt && opt->ca_file && *opt->ca_file && !c->ca_file) ||
        (opt && opt->user && (!c->user || !c->password)) || (opt && opt->cloud && !c->cloud)) {
        if (c->share)
            curl_share_cleanup(c->share);
        free(c->idle);
        free(c->ca_file);
        free(c->cloud);
        free(c->user);
        free(c->password);
        free(c);
        return sky_fail(e, ENOMEM, "out of memory");
    }
    pthread_mutex_init(&c->lock, NULL);
    clock_cond_init(&c->freed);
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
    free(c->cloud);
    free(c->user);
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    free(c);
}

/* May a background transfer start now (c->lock held)?  See struct
 * http_cancel: one at a time while foreground transfers run, wait or
 * ended recently; up to half the connections on a quiet client. */
static bool background_may_start(struct http_client *c)
{
    if (c->nidle == 0 && c->nbusy >= c->max)
        return false;
    bool quiet = c->nbusy == c->busy_background && c->waiting_foreground == 0 &&
                 clock_now_ms() - c->foreground_ms >= HTTP_BACKGROUND_QUIET_MS;
    int allowed = quiet ? (c->max / 2 > 1 ? c->max / 2 : 1) : 1;
    return c->busy_background < allowed;
}

/* A handle for this thread's transfer, or NULL: out of memory (ENOMEM), or
 * cancelled while a background transfer waited for its turn (EINTR). */
static CURL *pool_take(struct http_client *c, bool background, int *err)
{
    pthread_mutex_lock(&c->lock);
    if (background) {
        while (!background_may_start(c)) {
            if (cancel_requested()) {
                pthread_mutex_unlock(&c->lock);
                *err = EINTR;
                return NULL;
            }
            struct timespec until = clock_deadline_ms(50);  /* quiet comes with no signal */
            pthread_cond_timedwait(&c->freed, &c->lock, &until);
        }
        c->busy_background++;
    } else {
        c->waiting_foreground++;
        while (c->nidle == 0 && c->nbusy >= c->max)
            pthread_cond_wait(&c->freed, &c->lock);
        c->waiting_foreground--;
    }
    CURL *h = c->nidle > 0 ? c->idle[--c->nidle] : NULL;
    c->nbusy++;
    pthread_mutex_unlock(&c->lock);
    if (!h)
        h = curl_easy_init();
    if (!h) {
        pthread_mutex_lock(&c->lock);
        c->nbusy--;
        if (background)
            c->busy_background--;
        pthread_cond_broadcast(&c->freed);
        pthread_mutex_unlock(&c->lock);
        *err = ENOMEM;
    }
    return h;
}

static void pool_give(struct http_client *c, CURL *h, bool background)
{
    pthread_mutex_lock(&c->lock);
    c->nbusy--;
    if (background)
        c->busy_background--;
    else
        c->foreground_ms = clock_now_ms();
    if (c->nidle < c->max)
        c->idle[c->nidle++] = h;
    else
        curl_easy_cleanup(h);
    pthread_cond_broadcast(&c->freed);
    pthread_mutex_unlock(&c->lock);
}

/* ---- one transfer ---- */

struct xfer {
    struct http_client *client;
    struct http_request *req;
    struct http_response *resp;
    long long clock_offset_s;   /* the client's, when this attempt was signed */
    uint64_t sent;              /* body bytes handed to curl */
    long status;                /* from the last status line */
    size_t body_cap;
    int overflow;               /* out_cap or HTTP_MAX_BODY exceeded */
    int read_errno;             /* pread failure */
    int sink_errno;             /* the body sink refused the bytes */
    int oom;                    /* a response header could not be kept */
    int sends;                  /* times the request went out (libcurl resends
                                 * on its own when a reused connection died) */
    int sends_before;           /* ... before the current attempt */
    int challenges;             /* 401 answers followed by another response (HTTP
                                 * authentication: curl answered the challenge) */
    long auth_seen;             /* CURLAUTH_* methods the WWW-Authenticate headers named */
    /* ranged GETs (req->range_header set) */
    int range_checked;          /* the answer's headers were checked */
    int range_bad;              /* ... and do not match the range asked */
    uint64_t range_expect;      /* body bytes the answer announced */
    char range_why[160];        /* what did not match, for the error */
};

/* Counts the times the request's head goes out: libcurl sends a request
 * again by itself when a reused connection turns out dead before any
 * answer, and that second send is a retry like ours. */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
    struct xfer *x = arg;
    if (type == CURLINFO_HEADER_OUT)
        x->sends++;
    return 0;
}

/* ---- checking a ranged answer ---- */

static int parse_u64(const char *s, const char **end, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *e;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno)
        return -1;
    *out = v;
    *end = e;
    return 0;
}

/* Does the 2xx answer whose headers just arrived carry the range asked
 * for?  Sets range_bad and range_why when not, range_expect when so. */
static void check_range(struct xfer *x)
{
    const struct http_request *q = x->req;
    const struct http_headers *h = &x->resp->headers;
    uint64_t first = q->range_off, last = q->range_off + q->range_len - 1;
    const char *cl_text = http_headers_get(h, "content-length");
    uint64_t cl = UINT64_MAX;
    const char *end;
    x->range_checked = 1;
    if (cl_text && (parse_u64(cl_text, &end, &cl) < 0 || *end))
        cl = UINT64_MAX;
    if (x->status == 206) {
        const char *cr = http_headers_get(h, "content-range");
        uint64_t s = 0, e = 0, total = UINT64_MAX;
        int ok = cr && strncasecmp(cr, "bytes ", 6) == 0;
        const char *p = ok ? cr + 6 : "";
        ok = ok && parse_u64(p, &end, &s) == 0 && *end == '-' &&
             parse_u64(end + 1, &end, &e) == 0 && *end == '/';
        if (ok && strcmp(end + 1, "*") != 0)
            ok = parse_u64(end + 1, &end, &total) == 0 && !*end;
        if (!ok) {
            snprintf(x->range_why, sizeof x->range_why,
                     "206 without a valid Content-Range for bytes %llu-%llu",
                     (unsigned long long)first, (unsigned long long)last);
        } else if (s != first || e < s || e > last ||
                   (e != last && (total == UINT64_MAX || e + 1 != total))) {
            ok = 0;
            snprintf(x->range_why, sizeof x->range_why,
                     "206 with Content-Range %.60s for bytes %llu-%llu", cr,
                     (unsigned long long)first, (unsigned long long)last);
        } else if (cl != UINT64_MAX && cl != e - s + 1) {
            ok = 0;
            snprintf(x->range_why, sizeof x->range_why,
                     "206 with Content-Length %llu for Content-Range %.60s",
                     (unsigned long long)cl, cr);
        }
        x->range_bad = !ok;
        x->range_expect = e - s + 1;
    } else {
        /* 200: the whole object; only right for a range from 0 that holds
         * it (of unknown length: as long as no more than the range comes) */
        if (first != 0 || (cl != UINT64_MAX && cl > q->range_len)) {
            x->range_bad = 1;
            if (cl == UINT64_MAX)
                snprintf(x->range_why, sizeof x->range_why,
                         "%ld (the whole object) for bytes %llu-%llu", x->status,
                         (unsigned long long)first, (unsigned long long)last);
            else
                snprintf(x->range_why, sizeof x->range_why,
                         "%ld with the whole object of %llu bytes for bytes %llu-%llu",
                         x->status, (unsigned long long)cl, (unsigned long long)first,
                         (unsigned long long)last);
        }
        x->range_expect = cl;
    }
}

static size_t on_header(char *line, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue or similar): start over */
        const char *sp = memchr(line, ' ', n);
        if (x->status == 401)
            x->challenges++;
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
    if (nlen == 16 && strncasecmp(line, "www-authenticate", 16) == 0) {
        if (end - v >= 6 && strncasecmp(v, "Digest", 6) == 0)
            x->auth_seen |= (long)CURLAUTH_DIGEST;
        else if (end - v >= 5 && strncasecmp(v, "Basic", 5) == 0)
            x->auth_seen |= (long)CURLAUTH_BASIC;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *name = strndup(line, nlen), *value = strndup(v, (size_t)(end - v));
    int rc = name && value ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < nlen; i++)
        name[i] = (char)tolower((unsigned char)name[i]);
    if (rc == 0)
        rc = http_headers_set(&x->resp->headers, name, value);
    free(name);
    free(value);
    if (rc < 0) {
        x->oom = 1;     /* a header lost would be a silent lie: fail */
        return 0;
    }
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
    int ok_status = x->status >= 200 && x->status < 300;
    if (q->range_header && ok_status) {
        if (!x->range_checked)
            check_range(x);
        if (!x->range_bad && x->resp->body_len + n > x->range_expect) {
            x->range_bad = 1;
            snprintf(x->range_why, sizeof x->range_why,
                     "a body longer than the %llu bytes announced",
                     (unsigned long long)x->range_expect);
        }
        if (x->range_bad)
            return 0;   /* not one byte of it reaches the sink */
    }
    if (q->sink && ok_status) {
        if (x->resp->body_len + n > q->out_cap) {
            x->overflow = 1;
            if (q->range_header) {
                x->range_bad = 1;
                snprintf(x->range_why, sizeof x->range_why, "more than the %llu bytes asked",
                         (unsigned long long)q->range_len);
            }
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
    /* curl counts the stall in whole seconds */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (c->stall_timeout_ms + 999) / 1000);
    if (strcmp(x->req->method, "GET") != 0 && strcmp(x->req->method, "HEAD") != 0) {
        /* requests that change things: know whether they went out twice */
        curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
        curl_easy_setopt(h, CURLOPT_DEBUGDATA, x);
        curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    }
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
    if (c->user) {
        curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->password);
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, atomic_load(&c->auth_methods));
    }
    set_method(h, x->req);
}

/* After an answer: when the server named its authentication method (a
 * 401 with WWW-Authenticate on the way: `avail`), offer only that one
 * from now on, Digest when it offers both (curl's own choice). */
static void learn_auth(struct http_client *c, long avail)
{
    if (!c->user || atomic_load(&c->auth_methods) != (long)(CURLAUTH_BASIC | CURLAUTH_DIGEST))
        return;
    if (avail & CURLAUTH_DIGEST)
        atomic_store(&c->auth_methods, (long)CURLAUTH_DIGEST);
    else if (avail & CURLAUTH_BASIC)
        atomic_store(&c->auth_methods, (long)CURLAUTH_BASIC);
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
    x->clock_offset_s = atomic_load(&x->client->clock_offset_s);
    q->sign_time = (int64_t)time(NULL) + x->clock_offset_s;
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
    x->sends_before = x->sends;
    x->challenges = 0;
    x->auth_seen = 0;
    x->sent = 0;
    x->status = 0;
    x->overflow = 0;
    x->read_errno = 0;
    x->sink_errno = 0;
    x->oom = 0;
    x->range_checked = 0;
    x->range_bad = 0;
    x->range_expect = UINT64_MAX;
    x->range_why[0] = '\0';
    x->body_cap = 0;
    http_response_free(x->resp);
    errbuf[0] = '\0';
    set_options(x, h, hdrs, errbuf);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->resp->status);
        /* a 401 challenge answered with credentials (Digest, or the first
         * request before the method is known) is one request, not a retry */
        if (x->client->user) {
            int extra = x->sends - x->sends_before - 1;
            x->sends -= x->challenges < extra ? x->challenges : (extra > 0 ? extra : 0);
            learn_auth(x->client, x->auth_seen);
        }
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK && cancel_requested())
        *fail = sky_fail(e, EINTR, "%s cancelled", q->method);
    else if (x->read_errno)
        *fail = sky_fail(e, x->read_errno, "reading the upload source: %s",
                         strerror(x->read_errno));
    else if (x->sink_errno)
        *fail = sky_fail(e, x->sink_errno, "the receiver of the response failed: %s",
                         strerror(x->sink_errno));
    else if (x->overflow && !q->range_header)
        *fail = sky_fail(e, EIO, "response body larger than expected (%zu bytes)",
                         q->sink ? q->out_cap : (size_t)HTTP_MAX_BODY);
    else if (x->oom)
        *fail = sky_fail(e, ENOMEM, "out of memory keeping the response headers");
    long st = x->resp->status;
    if (!*fail && rc == CURLE_OK && q->range_header && st >= 200 && st < 300) {
        if (!x->range_checked)
            check_range(x);
        if (!x->range_bad && x->range_expect != UINT64_MAX &&
            x->resp->body_len != x->range_expect) {
            x->range_bad = 1;
            snprintf(x->range_why, sizeof x->range_why, "a body of %zu bytes where %llu were "
                     "announced", x->resp->body_len, (unsigned long long)x->range_expect);
        }
    }
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

/* Count one attempt in the cloud's metrics (lib/metrics.h).  An attempt
 * that never went out (its signing failed) is not counted. */
static void count_attempt(struct http_client *c, CURL *h, const struct http_request *q,
                          CURLcode rc, int fail, long status, long long started_us)
{
    if (!c->metrics || (fail && fail != -EINTR && rc == CURLE_ABORTED_BY_CALLBACK))
        return;
    double seconds = (double)(clock_now_us() - started_us) / 1e6;
    enum sky_metrics_outcome outcome = SKY_OUTCOME_NETWORK_ERROR;
    if (fail == -EINTR || (rc == CURLE_ABORTED_BY_CALLBACK && cancel_requested()))
        outcome = SKY_OUTCOME_CANCELLED;
    else if (status >= 500)
        outcome = SKY_OUTCOME_SERVER_ERROR;
    else if (status >= 400)
        outcome = SKY_OUTCOME_CLIENT_ERROR;
    else if (status > 0)
        outcome = SKY_OUTCOME_SUCCESS;
    curl_off_t up = 0, down = 0;
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &down);
    sky_metrics_http(c->metrics, q->method, outcome, seconds, up > 0 ? (uint64_t)up : 0,
                     down > 0 ? (uint64_t)down : 0);
}

int64_t http_request_time(const struct http_request *req)
{
    return req->sign_time ? req->sign_time : (int64_t)time(NULL);
}

/* A refusal (401, 403) from a server whose clock (its Date header) is more
 * than HTTP_CLOCK_SKEW_MAX_S from the time the client signs with: the
 * signature's time is the likely reason.  Keeps the server's clock for
 * the signatures to come (none when it agrees with this machine's again)
 * and returns true: the refused request is worth sending again.  Also
 * true for a refusal of a request signed with a difference another
 * request has corrected since (`signed_with`: the one it was signed with). */
static bool learn_server_clock(struct http_client *c, const struct http_response *resp,
                               long long signed_with)
{
    if (resp->status != 401 && resp->status != 403)
        return false;
    if (atomic_load(&c->clock_offset_s) != signed_with)
        return true;    /* another request learned the clock meanwhile */
    const char *date = http_headers_get(&resp->headers, "date");
    time_t server = date ? curl_getdate(date, NULL) : -1;
    if (server <= 0)
        return false;
    long long skew = (long long)server - (long long)time(NULL);
    if (llabs(skew - signed_with) <= HTTP_CLOCK_SKEW_MAX_S)
        return false;
    long long now = llabs(skew) <= HTTP_CLOCK_SKEW_MAX_S ? 0 : skew;
    atomic_store(&c->clock_offset_s, now);
    if (now)
        LOG_WARN("cloud '%s': the server refused a request, and its clock is %lld s %s this "
                 "machine's: requests are signed with the server's time from now on; set this "
                 "machine's clock right (NTP: timedatectl set-ntp true)",
                 c->cloud ? c->cloud : "?", llabs(now), now > 0 ? "ahead of" : "behind");
    else
        LOG_WARN("cloud '%s': the server's clock agrees with this machine's again: requests "
                 "are signed with this machine's time", c->cloud ? c->cloud : "?");
    return true;
}

/* The stall of an attempt that moved no byte in time (no connection
 * within connect_timeout, or nothing for stall_timeout). */
static int curl_code_stalled(CURLcode rc)
{
    return rc == CURLE_OPERATION_TIMEDOUT;
}

int http_do(struct http_client *c, struct http_request *req, struct http_response *resp,
            struct sky_err *e)
{
    memset(resp, 0, sizeof *resp);
    if (req->range_header) {
        char range[64];
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)req->range_off,
                 (unsigned long long)(req->range_off + req->range_len - 1));
        if (req->range_len == 0 || http_headers_set(&req->headers, req->range_header, range) < 0)
            return sky_fail(e, req->range_len ? ENOMEM : EINVAL, "cannot ask for a range");
        if (req->out_cap == 0 || req->out_cap > req->range_len)
            req->out_cap = (size_t)req->range_len;
    }
    struct xfer x = { .client = c, .req = req, .resp = resp };
    bool background = thread_cancel && thread_cancel->background;
    int taken = 0;
    CURL *h = pool_take(c, background, &taken);
    if (!h)
        return taken == EINTR ? sky_fail(e, EINTR, "%s: cancelled", req->method)
                              : sky_fail(e, ENOMEM, "cannot create a curl handle");
    char errbuf[CURL_ERROR_SIZE];
    int result = 0, stalls = 0;
    bool clock_learned = false;
    for (int attempt = 0;; attempt++) {
        int fail;
        int sends_before = x.sends;
        if (attempt > 0)
            sky_metrics_http_retry(c->metrics);
        long long t0_us = clock_now_us();
        CURLcode rc = attempt_once(&x, h, errbuf, &fail, e);
        /* an answer cut short (reset, timeout) counts as a network error */
        count_attempt(c, h, req, rc, fail,
                      rc == CURLE_OK || rc == CURLE_WRITE_ERROR ? x.status : 0, t0_us);
        if (x.sends == sends_before)
            x.sends++;          /* GET/HEAD: not counted by on_debug */
        resp->attempts = x.sends;
        if (fail) {
            result = fail;
            break;
        }
        if (rc == CURLE_OK && !clock_learned && learn_server_clock(c, resp, x.clock_offset_s)) {
            clock_learned = true;       /* signed again with the server's time, at once */
            continue;
        }
        stalls += curl_code_stalled(rc);
        int last = attempt >= c->max_retries || stalls >= 2;
        /* a wrong range was refused at its first byte (a write error) or
         * at its end: a failed attempt, never an answer */
        if (x.range_bad && (rc == CURLE_OK || rc == CURLE_WRITE_ERROR)) {
            if (last) {
                char host[256];
                url_host(req->url, host, sizeof host);
                result = sky_fail(e, EIO, "%s %s: the answer does not match the range asked: "
                                  "%s (after %d attempts)", req->method, host, x.range_why,
                                  attempt + 1);
                break;
            }
        } else if (rc == CURLE_OK) {
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
    pool_give(c, h, background);
    if (result < 0)
        http_response_free(resp);
    return result;
}

int http_options_from_cloud(const struct sky_cloud_config *cfg, struct http_options *opt,
                            struct sky_err *e)
{
    memset(opt, 0, sizeof *opt);
    opt->cloud = cfg->name;
    opt->ca_file = sky_cloud_get(cfg, "ca_file");
    static const char *const durations[] = { "connect_timeout", "timeout" };
    long *fields[] = { &opt->connect_timeout_ms, &opt->stall_timeout_ms };
    for (int i = 0; i < 2; i++) {
        const char *v = sky_cloud_get(cfg, durations[i]);
        int64_t ns;
        if (!v)
            continue;
        if (sky_parse_duration(v, &ns) < 0 || ns <= 0 || ns == SKY_TTL_FOREVER)
            return sky_fail(e, EINVAL, "%s:%d: %s = \"%s\" is not a duration; write e.g. "
                            "500ms, 10s or 2m", cfg->file, sky_cloud_line(cfg, durations[i]),
                            durations[i], v);
        int64_t ms = (ns + 999999) / 1000000;
        *fields[i] = ms > 86400000 ? 86400000 : (long)ms;
    }
    const char *r = sky_cloud_get(cfg, "retries");
    if (r) {
        char *end;
        long n = strtol(r, &end, 10);
        if (end == r || *end || n < 0 || n > 100)
            return sky_fail(e, EINVAL, "%s:%d: retries = \"%s\" is not a count; write a whole "
                            "number from 0 to 100", cfg->file, sky_cloud_line(cfg, "retries"), r);
        opt->max_retries = n == 0 ? -1 : (int)n;
    }
    return 0;
}

int http_parse_date(const char *s, int64_t *ns)
{
    struct tm tm = { 0 };
    while (s && isspace((unsigned char)*s))
        s++;
    if (!s || !strptime(s, "%a, %d %b %Y %H:%M:%S", &tm))
        return -EINVAL;
    *ns = (int64_t)timegm(&tm) * 1000000000LL;
    return 0;
}

struct http_cancel *http_cancel_current(void)
{
    return thread_cancel;
}
