/* azure_auth.c - see azure_auth.h. */
#include "azure_auth.h"
#include "../lib/sbuf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* ---- small string helpers ---------------------------------------------- */


static char *dup_trimmed(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return strndup(s, n);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode n bytes of s; malloc'd. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- connection strings ------------------------------------------------ */

void azure_conn_free(struct azure_conn *c)
{
    if (!c)
        return;
    free(c->account);
    free(c->key);
    free(c->sas);
    free(c->endpoint);
    memset(c, 0, sizeof *c);
}

/* Fields of a connection string before the endpoint is derived. */
struct conn_parts {
    char *proto, *suffix;
    int dev;
};

static int conn_set(struct azure_conn *c, struct conn_parts *p, const char *name,
                    char *value, struct sky_err *e)
{
    char **slot = NULL;
    if (strcasecmp(name, "AccountName") == 0)
        slot = &c->account;
    else if (strcasecmp(name, "AccountKey") == 0)
        slot = &c->key;
    else if (strcasecmp(name, "SharedAccessSignature") == 0)
        slot = &c->sas;
    else if (strcasecmp(name, "BlobEndpoint") == 0)
        slot = &c->endpoint;
    else if (strcasecmp(name, "DefaultEndpointsProtocol") == 0)
        slot = &p->proto;
    else if (strcasecmp(name, "EndpointSuffix") == 0)
        slot = &p->suffix;
    else if (strcasecmp(name, "UseDevelopmentStorage") == 0) {
        p->dev = strcasecmp(value, "true") == 0;
        free(value);
        return 0;
    } else {
        free(value); /* QueueEndpoint, TableEndpoint, ...: not ours */
        return 0;
    }
    free(*slot);
    *slot = value;
    (void)e;
    return 0;
}

static int conn_split(const char *s, struct azure_conn *c, struct conn_parts *p,
                      struct sky_err *e)
{
    for (int part = 1; *s; part++) {
        const char *end = strchr(s, ';');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        char *name = dup_trimmed(s, n);
        if (!name)
            return sky_fail(e, ENOMEM, "out of memory");
        if (name[0] && !eq) {
            sky_fail(e, EINVAL, "connection string: part %d has no '=' (want Name=Value;...)",
                     part);
            free(name);
            return -EINVAL;
        }
        free(name);
        if (eq) {
            char *key = dup_trimmed(s, (size_t)(eq - s));
            char *value = dup_trimmed(eq + 1, n - (size_t)(eq + 1 - s));
            if (!key || !value) {
                free(key);
                free(value);
                return sky_fail(e, ENOMEM, "out of memory");
            }
            int rc = conn_set(c, p, key, value, e);
            free(key);
            if (rc < 0)
                return rc;
        }
        s += n;
        if (*s == ';')
            s++;
    }
    return 0;
}

static int conn_finish(struct azure_conn *c, struct conn_parts *p, struct sky_err *e)
{
    if (p->dev) {
        if (!c->account)
            c->account = strdup(AZURE_DEV_ACCOUNT);
        if (!c->key && !c->sas)
            c->key = strdup(AZURE_DEV_KEY);
        if (!c->endpoint)
            c->endpoint = strdup(AZURE_DEV_ENDPOINT);
    }
    if (!c->endpoint && c->account) {
        const char *proto = p->proto ? p->proto : "https";
        const char *suffix = p->suffix ? p->suffix : "core.windows.net";
        if (strcasecmp(proto, "http") != 0 && strcasecmp(proto, "https") != 0)
            return sky_fail(e, EINVAL,
                            "connection string: DefaultEndpointsProtocol must be http or https");
        if (asprintf(&c->endpoint, "%s://%s.blob.%s", proto, c->account, suffix) < 0)
            c->endpoint = NULL;
    }
    if (!c->endpoint)
        return sky_fail(e, EINVAL,
                        "connection string: needs AccountName or BlobEndpoint");
    size_t n = strlen(c->endpoint);
    while (n && c->endpoint[n - 1] == '/')
        c->endpoint[--n] = '\0';
    if (c->sas && c->sas[0] == '?')
        memmove(c->sas, c->sas + 1, strlen(c->sas));
    return 0;
}

int azure_conn_parse(const char *s, struct azure_conn *out, struct sky_err *e)
{
    struct conn_parts p = { 0 };
    memset(out, 0, sizeof *out);
    int rc = conn_split(s, out, &p, e);
    if (rc == 0)
        rc = conn_finish(out, &p, e);
    free(p.proto);
    free(p.suffix);
    if (rc < 0)
        azure_conn_free(out);
    return rc;
}

/* ---- keys and signatures ----------------------------------------------- */

int azure_key_decode(const char *b64, unsigned char **key, size_t *len, struct sky_err *e)
{
    size_t n = strlen(b64);
    *key = NULL;
    *len = 0;
    if (n == 0 || n % 4 != 0)
        return sky_fail(e, EINVAL, "account key is not base64 (length %zu)", n);
    unsigned char *buf = malloc(n / 4 * 3 + 1);
    if (!buf)
        return sky_fail(e, ENOMEM, "out of memory");
    int got = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
    if (got < 0) {
        free(buf);
        return sky_fail(e, EINVAL, "account key is not base64");
    }
    /* EVP_DecodeBlock counts padding as zero bytes. */
    if (b64[n - 1] == '=')
        got--;
    if (b64[n - 2] == '=')
        got--;
    *key = buf;
    *len = (size_t)got;
    return 0;
}

void azure_signature(const unsigned char *key, size_t key_len, const char *msg, char out[64])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg),
         mac, &mac_len);
    EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
}

void azure_http_date(int64_t unix_seconds, char out[32])
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

/* ---- string to sign ---------------------------------------------------- */

/* Orders "name:value" lines by name alone. */
static int cmp_header_line(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    size_t nx = strcspn(x, ":"), ny = strcspn(y, ":");
    int c = memcmp(x, y, nx < ny ? nx : ny);
    if (c)
        return c;
    return nx < ny ? -1 : nx > ny;
}

/* "name:value" lines of the x-ms-* headers, sorted by lowercased name. */
static void add_canonical_headers(struct sbuf *b, const struct http_headers *hs)
{
    char **lines = calloc(hs->n ? hs->n : 1, sizeof *lines);
    size_t n = 0;
    if (!lines) {
        b->failed = 1;
        return;
    }
    for (size_t i = 0; i < hs->n; i++) {
        const char *name = hs->h[i].name;
        if (strncasecmp(name, "x-ms-", 5) != 0)
            continue;
        const char *v = hs->h[i].value;
        while (*v == ' ' || *v == '\t')
            v++;
        char *line;
        if (asprintf(&line, "%s:%s\n", name, v) < 0) {
            b->failed = 1;
            break;
        }
        for (char *c = line; *c != ':'; c++)
            *c = (char)tolower((unsigned char)*c);
        lines[n++] = line;
    }
    qsort(lines, n, sizeof lines[0], cmp_header_line);
    for (size_t i = 0; i < n; i++) {
        sbuf_add(b, lines[i]);
        free(lines[i]);
    }
    free(lines);
}

/* One decoded query parameter, name lowercased. */
struct qparam {
    char *name;
    char *value;
};

static int cmp_qparam(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static size_t parse_query(const char *q, struct qparam **out)
{
    size_t n = 0, cap = 0;
    struct qparam *ps = NULL;
    while (q && *q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t nlen = eq ? (size_t)(eq - q) : len;
        if (len) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                struct qparam *p = realloc(ps, cap * sizeof *ps);
                if (!p)
                    break;
                ps = p;
            }
            ps[n].name = pct_decode(q, nlen);
            ps[n].value = eq ? pct_decode(eq + 1, len - nlen - 1) : strdup("");
            if (!ps[n].name || !ps[n].value) {
                free(ps[n].name);
                free(ps[n].value);
                break;
            }
            for (char *c = ps[n].name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            n++;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    *out = ps;
    return n;
}

/* "/account/path" then "\nname:v1,v2" per query parameter, sorted. */
static void add_canonical_resource(struct sbuf *b, const char *account, const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    const char *query = strchr(p ? p : url, '?');
    sbuf_add(b, "/");
    sbuf_add(b, account);
    if (p)
        sbuf_addn(b, p, query ? (size_t)(query - p) : strlen(p));
    else
        sbuf_add(b, "/");

    struct qparam *ps = NULL;
    size_t n = parse_query(query ? query + 1 : NULL, &ps);
    if (n)
        qsort(ps, n, sizeof *ps, cmp_qparam);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(ps[i].name, ps[i - 1].name) != 0) {
            sbuf_add(b, "\n");
            sbuf_add(b, ps[i].name);
            sbuf_add(b, ":");
        } else {
            sbuf_add(b, ",");
        }
        sbuf_add(b, ps[i].value);
    }
    for (size_t i = 0; i < n; i++) {
        free(ps[i].name);
        free(ps[i].value);
    }
    free(ps);
}

char *azure_string_to_sign(const char *account, const char *method, const char *url,
                           const struct http_headers *hs, uint64_t body_len)
{
    static const char *const std_headers[] = {
        "Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
        "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
        "If-Unmodified-Since", "Range",
    };
    struct sbuf b = { 0 };
    char lenbuf[32];
    sbuf_add(&b, method);
    sbuf_add(&b, "\n");
    for (size_t i = 0; i < sizeof std_headers / sizeof std_headers[0]; i++) {
        const char *v = http_headers_get(hs, std_headers[i]);
        if (strcmp(std_headers[i], "Content-Length") == 0) {
            if (!v && body_len) {
                snprintf(lenbuf, sizeof lenbuf, "%llu", (unsigned long long)body_len);
                v = lenbuf;
            }
            if (v && strcmp(v, "0") == 0)
                v = NULL;
        }
        if (v)
            sbuf_add(&b, v);
        sbuf_add(&b, "\n");
    }
    add_canonical_headers(&b, hs);
    add_canonical_resource(&b, account, url);
    return sbuf_finish(&b);
}

/* ---- the request hook -------------------------------------------------- */

int azure_sign_request(void *arg, struct http_request *req, struct sky_err *e)
{
    const struct azure_auth *auth = arg;
    char date[32];
    azure_http_date(http_request_time(req), date);
    if (http_headers_set(&req->headers, "x-ms-date", date) < 0 ||
        http_headers_set(&req->headers, "x-ms-version", AZURE_API_VERSION) < 0)
        return sky_fail(e, ENOMEM, "azure: cannot add request headers");
    if (!auth->key)
        return 0;

    char *sts = azure_string_to_sign(auth->account, req->method, req->url, &req->headers,
                                     req->body_len);
    if (!sts)
        return sky_fail(e, ENOMEM, "out of memory");
    char sig[64];
    azure_signature(auth->key, auth->key_len, sts, sig);
    free(sts);

    char *value;
    if (asprintf(&value, "SharedKey %s:%s", auth->account, sig) < 0)
        return sky_fail(e, ENOMEM, "out of memory");
    int rc = http_headers_set(&req->headers, "Authorization", value);
    free(value);
    if (rc < 0)
        return sky_fail(e, -rc, "azure: cannot add the Authorization header");
    return 0;
}
