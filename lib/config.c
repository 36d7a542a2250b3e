/*
 * config.c - reading and validating the INI config; see config.h.
 *
 * Two passes: parse() turns lines into sections and key/value pairs (with
 * line numbers), validate() checks them against the common keys and the
 * keys each driver declares, so every message can say FILE:LINE.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../backends/driver.h"
#include "log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MiB (1024ULL * 1024ULL)

char *sky_config_default_path(void)
{
    const char *env = getenv("SKYFS_CONFIG");
    if (env && *env)
        return strdup(env);
    if (geteuid() == 0)
        return strdup("/etc/skyfs/skyfs.conf");
    const char *home = getenv("HOME");
    char *p;
    if (asprintf(&p, "%s/.config/skyfs/skyfs.conf", home ? home : ".") < 0)
        return NULL;
    return p;
}

int sky_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    uint64_t mult = 1;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': mult = 1ULL << 10; end++; break;
    case 'M': mult = 1ULL << 20; end++; break;
    case 'G': mult = 1ULL << 30; end++; break;
    case 'T': mult = 1ULL << 40; end++; break;
    default: return -EINVAL;
    }
    if (mult > 1 && (*end == 'i' || *end == 'I'))
        end++;
    if (mult > 1 && (*end == 'b' || *end == 'B'))
        end++;
    if (*end != '\0' || (v && mult > UINT64_MAX / v))
        return -EINVAL;
    *out = v * mult;
    return 0;
}

int sky_parse_duration(const char *s, int64_t *out)
{
    if (!s)
        return -EINVAL;
    if (strcmp(s, "forever") == 0 || strcmp(s, "never") == 0) {
        *out = SKY_TTL_FOREVER;
        return 0;
    }
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -ERANGE;
    int64_t mult;
    if (strcmp(end, "ms") == 0)
        mult = 1000000LL;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000000000LL;
    else if (strcmp(end, "m") == 0)
        mult = 60LL * 1000000000LL;
    else if (strcmp(end, "h") == 0)
        mult = 3600LL * 1000000000LL;
    else
        return -EINVAL;
    if (v > (unsigned long long)(INT64_MAX - 1) / (unsigned long long)mult)
        return -ERANGE;         /* INT64_MAX itself means forever */
    *out = (int64_t)v * mult;
    return 0;
}

int sky_parse_bool(const char *s, bool *out)
{
    static const char *yes[] = { "true", "yes", "on", "1" };
    static const char *no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = true; return 0; }
        if (strcasecmp(s, no[i]) == 0) { *out = false; return 0; }
    }
    return -EINVAL;
}

/* ---- parsing ---------------------------------------------------------- */

struct section {
    char *name;
    int line;
    size_t nkv;
    struct sky_kv *kv;
};

struct parsed {
    size_t n;
    struct section *sec;
};

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static void parsed_free(struct parsed *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->sec[i].name);
        for (size_t k = 0; k < p->sec[i].nkv; k++) {
            free(p->sec[i].kv[k].key);
            free(p->sec[i].kv[k].value);
        }
        free(p->sec[i].kv);
    }
    free(p->sec);
    p->sec = NULL;
    p->n = 0;
}

/* Is s valid UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF)? */
static bool valid_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s, n, cp, min;
        if (c < 0x80) { s++; continue; }
        if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
        else return false;
        for (unsigned i = 1; i < n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        s += n;
    }
    return true;
}

static bool valid_section_name(const char *s)
{
    if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strlen(s) > 255)
        return false;
    for (; *s; s++)
        if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7F)
            return false;
    return true;
}

/* Cut a trailing comment off a line: '#' after whitespace starts one (so
 * "a#b", a SAS token or a connection string keeps its '#'; ';' starts a
 * comment only at the start of a line, as connection strings are full of
 * them), and nothing inside double quotes does.  Returns the line, shortened. */
static char *strip_comment(char *s)
{
    bool quoted = false;
    for (char *p = s; *p; p++) {
        if (quoted && *p == '\\' && p[1])
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == '#' && p > s && isspace((unsigned char)p[-1])) {
            *p = '\0';
            break;
        }
    }
    return s;
}

/* A value in double quotes is taken as written, with \" and \\ for a
 * quote and a backslash; unquoted values are trimmed.  Returns the value
 * (in place) or NULL with *why set. */
static char *unquote(char *v, const char **why)
{
    if (*v != '"')
        return v;
    char *out = v;
    const char *p = v + 1;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
            p++;
        *out++ = *p;
    }
    if (*p != '"') {
        *why = "has no closing quote";
        return NULL;
    }
    for (p++; *p; p++)
        if (!isspace((unsigned char)*p)) {
            *why = "has text after its closing quote (start a comment with \" #\")";
            return NULL;
        }
    *out = '\0';
    return v;
}

static int parse_line(struct parsed *p, const char *file, int lineno, char *raw,
                      struct sky_err *e)
{
    char *s = trim(raw);
    if (!*s || *s == '#' || *s == ';')
        return 0;
    s = trim(strip_comment(s));
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close || *trim(close + 1))
            return sky_fail(e, EINVAL, "%s:%d: malformed section header \"%s\"; write it as [name]",
                            file, lineno, s);
        *close = '\0';
        char *name = trim(s + 1);
        if (!valid_utf8(name))
            return sky_fail(e, EINVAL, "%s:%d: a section name is not valid UTF-8; write the "
                            "file in UTF-8", file, lineno);
        if (!valid_section_name(name))
            return sky_fail(e, EINVAL, "%s:%d: \"[%s]\" cannot be a directory name; "
                            "use a name without '/' that is not empty, \".\" or \"..\"",
                            file, lineno, name);
        if (strcmp(name, ".skyfs") == 0)
            return sky_fail(e, EINVAL, "%s:%d: [.skyfs] is the mount's own directory (search); "
                            "give the cloud another name", file, lineno);
        for (size_t i = 0; i < p->n; i++)
            if (strcmp(p->sec[i].name, name) == 0)
                return sky_fail(e, EINVAL, "%s:%d: section [%s] appears twice (first at line %d); "
                                "give each cloud a unique name", file, lineno, name, p->sec[i].line);
        struct section *ns = realloc(p->sec, (p->n + 1) * sizeof *ns);
        if (!ns)
            return sky_fail(e, ENOMEM, "out of memory");
        p->sec = ns;
        p->sec[p->n] = (struct section){ .name = strdup(name), .line = lineno };
        p->n++;
        return 0;
    }
    char *eq = strchr(s, '=');
    if (!eq)
        return sky_fail(e, EINVAL, "%s:%d: expected \"key = value\" or \"[section]\", found \"%s\"",
                        file, lineno, s);
    if (p->n == 0)
        return sky_fail(e, EINVAL, "%s:%d: \"%s\" is outside any section; put it under [cache] "
                        "or under a [cloud-name] section", file, lineno, s);
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    if (!*key)
        return sky_fail(e, EINVAL, "%s:%d: missing key before '='", file, lineno);
    const char *why = NULL;
    if (!(value = unquote(value, &why)))
        return sky_fail(e, EINVAL, "%s:%d: the value of %s %s", file, lineno, key, why);
    struct section *sec = &p->sec[p->n - 1];
    for (size_t k = 0; k < sec->nkv; k++)
        if (strcmp(sec->kv[k].key, key) == 0)
            return sky_fail(e, EINVAL, "%s:%d: key \"%s\" set twice in [%s] (first at line %d); "
                            "keep one", file, lineno, key, sec->name, sec->kv[k].line);
    struct sky_kv *nkv = realloc(sec->kv, (sec->nkv + 1) * sizeof *nkv);
    if (!nkv)
        return sky_fail(e, ENOMEM, "out of memory");
    sec->kv = nkv;
    sec->kv[sec->nkv++] = (struct sky_kv){ strdup(key), strdup(value), lineno };
    return 0;
}

/* Read the whole config into memory, refusing what is not a config file:
 * a directory, a FIFO (reading it would hang), a device (/dev/zero would
 * never end), anything over SKY_CONFIG_MAX_BYTES. */
static int read_file(const char *path, char **text, size_t *len, struct sky_err *e)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT)
            return sky_fail(e, ENOENT, "%s: no such config file; create it (see README "
                            "\"Configuration\") or pass -c FILE", path);
        return sky_fail(e, err, "%s: cannot read config: %s", path, strerror(err));
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = sky_fail(e, errno, "%s: cannot read config: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = sky_fail(e, EISDIR, "%s: is a directory, not a config file; pass the file "
                      "(e.g. -c %s/skyfs.conf)", path, path);
    else if (!S_ISREG(st.st_mode))
        rc = sky_fail(e, EINVAL, "%s: is not a regular file (%s); a config must be a plain "
                      "file", path, S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode)
                      ? "a character device" : S_ISBLK(st.st_mode) ? "a block device"
                      : S_ISSOCK(st.st_mode) ? "a socket" : "a special file");
    else if (st.st_size > SKY_CONFIG_MAX_BYTES)
        rc = sky_fail(e, EFBIG, "%s: is %lld bytes, larger than a config can be (%d KiB); "
                      "pass the right file", path, (long long)st.st_size,
                      SKY_CONFIG_MAX_BYTES / 1024);
    char *buf = rc ? NULL : malloc(SKY_CONFIG_MAX_BYTES + 1);
    if (!rc && !buf)
        rc = sky_fail(e, ENOMEM, "out of memory");
    size_t got = 0;
    while (!rc) {
        ssize_t n = read(fd, buf + got, SKY_CONFIG_MAX_BYTES + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = sky_fail(e, errno, "%s: cannot read config: %s", path, strerror(errno));
        else if (n == 0)
            break;
        else if ((got += (size_t)n) > SKY_CONFIG_MAX_BYTES)
            rc = sky_fail(e, EFBIG, "%s: is larger than a config can be (%d KiB); pass the "
                          "right file", path, SKY_CONFIG_MAX_BYTES / 1024);
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 0;
}

static int parse_file(const char *path, struct parsed *p, struct sky_err *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, e);
    if (rc)
        return rc;
    char *s = text, *end = text + len;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;                 /* a UTF-8 byte order mark */
    for (int lineno = 1; !rc && s < end; lineno++) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *eol = nl ? nl : end;
        if (memchr(s, '\0', (size_t)(eol - s)))
            rc = sky_fail(e, EINVAL, "%s:%d: holds a NUL byte; a config is text (is this the "
                          "right file?)", path, lineno);
        else {
            *eol = '\0';
            rc = parse_line(p, path, lineno, s, e);
        }
        s = eol + 1;
    }
    free(text);
    return rc;
}

/* ---- validation ------------------------------------------------------- */

/* A count from min to max (list_ahead, open_ahead, upload_parallel); a
 * min of 0 means off.  The error names the key's meaning (`what`) and an
 * example value. */
static int parse_count(const struct sky_kv *kv, const char *file, long min, long max,
                       const char *example, const char *what, unsigned *out, struct sky_err *e)
{
    char *end = NULL;
    errno = 0;
    long v = isdigit((unsigned char)kv->value[0]) ? strtol(kv->value, &end, 10) : -1;
    if (v < min || v > max || errno || *end)
        return sky_fail(e, EINVAL, "%s:%d: %s = \"%s\" is not a number from %ld to %ld; write "
                        "e.g. %s = %s (%s)%s%s%s", file, kv->line, kv->key, kv->value, min, max,
                        kv->key, example, what, min == 0 ? " or " : "", min == 0 ? kv->key : "",
                        min == 0 ? " = 0 (off)" : "");
    *out = (unsigned)v;
    return 0;
}

static const struct sky_kv *find_kv(const struct section *s, const char *key)
{
    for (size_t k = 0; k < s->nkv; k++)
        if (strcmp(s->kv[k].key, key) == 0)
            return &s->kv[k];
    return NULL;
}

static char *expand_home(const char *v)
{
    if (v[0] == '~' && (v[1] == '/' || v[1] == '\0')) {
        const char *home = getenv("HOME");
        char *out;
        if (asprintf(&out, "%s%s", home ? home : "", v + 1) < 0)
            return NULL;
        return out;
    }
    return strdup(v);
}

static int validate_cache(const char *file, const struct section *s, struct sky_config *cfg,
                          struct sky_err *e)
{
    for (size_t k = 0; k < s->nkv; k++) {
        const struct sky_kv *kv = &s->kv[k];
        if (strcmp(kv->key, "dir") == 0) {
            free(cfg->cache_dir);
            cfg->cache_dir = expand_home(kv->value);
        } else if (strcmp(kv->key, "max_size") == 0 || strcmp(kv->key, "min_free") == 0) {
            uint64_t *dst = kv->key[1] == 'a' ? &cfg->max_size : &cfg->min_free;
            if (sky_parse_size(kv->value, dst))
                return sky_fail(e, EINVAL, "%s:%d: %s = \"%s\" is not a size; write a number with "
                                "an optional K, M, G or T suffix, e.g. 10G", file, kv->line,
                                kv->key, kv->value);
        } else if (strcmp(kv->key, "block_size") == 0) {
            uint64_t v;
            if (sky_parse_size(kv->value, &v) || v < MiB || v > 8 * MiB || (v & (v - 1)))
                return sky_fail(e, EINVAL, "%s:%d: block_size = \"%s\" is not allowed; use 1M, "
                                "2M, 4M or 8M", file, kv->line, kv->value);
            cfg->block_size = v;
        } else {
            return sky_fail(e, EINVAL, "%s:%d: unknown key \"%s\" in [cache]; known keys: dir, "
                            "max_size, block_size, min_free", file, kv->line, kv->key);
        }
    }
    return 0;
}

int sky_parse_listen(const char *s, struct sockaddr_storage *out, unsigned *len)
{
    char host[64];
    const char *colon;
    memset(out, 0, sizeof *out);
    if (!s)
        return -EINVAL;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host)
            return -EINVAL;
        snprintf(host, sizeof host, "%.*s", (int)(close - s - 1), s + 1);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host || memchr(s, ':', (size_t)(colon - s)))
            return -EINVAL;         /* an IPv6 address goes in brackets */
        snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
    }
    const char *port_text = colon + 1;
    if (strspn(port_text, "0123456789") != strlen(port_text) || !*port_text ||
        strlen(port_text) > 5)
        return -EINVAL;
    long port = strtol(port_text, NULL, 10);
    if (port < 1 || port > 65535)
        return -EINVAL;
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
    } else {
        return -EINVAL;
    }
    return 0;
}

static const struct { const char *key, *help; } cache_keys[] = {
    { "dir", "the cache folder (default: one folder per mount under /var/cache/skyfs or "
      "~/.cache/skyfs)" },
    { "max_size", "block cache size cap, K/M/G/T suffixes (default 10G)" },
    { "block_size", "1M, 2M, 4M or 8M (default 4M)" },
    { "min_free", "bytes kept free on the cache's file system (default 1G; 0: no floor)" },
}, daemon_keys[] = {
    { "log_level", "debug, info, warn or error (default info)" },
    { "metrics_listen", "IP:PORT where the daemon serves /metrics over HTTP (default: none)" },
}, common_keys[] = {
    { "type", "the cloud kind" },
    { "read_only", "refuse every change with EROFS (default false)" },
    { "write_back", "sync: close returns once the file is on the cloud; async: once it is safe "
      "on the local disk, the upload follows in the background (default sync)" },
    { "write_back_delay", "async: how long a closed file waits before its upload, so that "
      "attribute changes right after close go up with it, 0 to 1h (default 300ms)" },
    { "upload_parallel", "async: how many files of this cloud upload at once, 1 to 32 "
      "(default 8)" },
    { "ttl", "how long listings and attributes are trusted (default 10s)" },
    { "negative_ttl", "how long \"no such file\" is trusted (default 2s)" },
    { "index", "on: keep the search index complete with a background crawl; off: only what "
      "was listed (default on)" },
    { "index_interval", "crawl again once the last complete crawl is this old (default 1h)" },
    { "revalidate", "async: a listing older than ttl is answered at once while it is refreshed "
      "in the background; sync: refreshed first, so ttl bounds staleness (default sync)" },
    { "list_ahead", "0 to 16: when a folder is listed, its subfolders never listed yet are "
      "listed in the background, at most this many at a time (default 8; 0: off)" },
    { "open_ahead", "0 to 64: a reader going through a folder's files in order gets this "
      "many of the next files (up to 1 MiB each) fetched ahead (default 8, 0 for local "
      "clouds; 0: off)" },
};

void sky_config_each_key(void (*fn)(void *arg, const char *section, const char *key,
                                    const char *help), void *arg)
{
    for (size_t i = 0; i < sizeof cache_keys / sizeof cache_keys[0]; i++)
        fn(arg, "cache", cache_keys[i].key, cache_keys[i].help);
    for (size_t i = 0; i < sizeof daemon_keys / sizeof daemon_keys[0]; i++)
        fn(arg, "daemon", daemon_keys[i].key, daemon_keys[i].help);
    for (size_t i = 0; i < sizeof common_keys / sizeof common_keys[0]; i++)
        fn(arg, "*", common_keys[i].key, common_keys[i].help);
    char types[512];
    snprintf(types, sizeof types, "%s", sky_driver_types());
    for (char *save, *t = strtok_r(types, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        const struct sky_driver *d = sky_driver_find(t);
        for (const struct sky_key *k = d ? d->keys : NULL; k && k->name; k++)
            fn(arg, d->type, k->name, k->help);
    }
}

static int validate_daemon(const char *file, const struct section *s, struct sky_config *cfg,
                           struct sky_err *e)
{
    if (find_kv(s, "type"))
        return sky_fail(e, EINVAL, "%s:%d: [daemon] holds the daemon's own settings "
                        "(log_level, metrics_listen), so it cannot be a cloud; give the "
                        "cloud another section name", file, s->line);
    for (size_t k = 0; k < s->nkv; k++) {
        const struct sky_kv *kv = &s->kv[k];
        if (strcmp(kv->key, "log_level") == 0) {
            enum sky_log_level level;
            if (sky_log_parse_level(kv->value, &level) != 0)
                return sky_fail(e, EINVAL, "%s:%d: log_level = \"%s\" is not a level; write "
                                "debug, info, warn or error", file, kv->line, kv->value);
            cfg->log_level = (int)level;
        } else if (strcmp(kv->key, "metrics_listen") == 0) {
            struct sockaddr_storage sa;
            unsigned len;
            if (sky_parse_listen(kv->value, &sa, &len) != 0)
                return sky_fail(e, EINVAL, "%s:%d: metrics_listen = \"%s\" is not an address "
                                "to listen on; write IP:PORT, e.g. 127.0.0.1:9101 or "
                                "[::1]:9101", file, kv->line, kv->value);
            free(cfg->metrics_listen);
            if (!(cfg->metrics_listen = strdup(kv->value)))
                return sky_fail(e, ENOMEM, "out of memory");
            cfg->metrics_listen_line = kv->line;
        } else {
            return sky_fail(e, EINVAL, "%s:%d: unknown key \"%s\" in [daemon]; known keys: "
                            "log_level, metrics_listen", file, kv->line, kv->key);
        }
    }
    return 0;
}

/* One of the keys every cloud takes (common_keys: the one list, also
 * behind `skyfs config keys` and the "known keys" of messages)? */
static bool is_common_key(const char *k)
{
    for (size_t i = 0; i < sizeof common_keys / sizeof common_keys[0]; i++)
        if (strcmp(k, common_keys[i].key) == 0)
            return true;
    return false;
}

/* A whole number 0..100 (a driver key marked SKY_KEY_COUNT). */
static bool is_count(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n <= 3 && s[n] == '\0' && atoi(s) <= 100;
}

static const struct sky_key *driver_key(const struct sky_driver *d, const char *name)
{
    for (const struct sky_key *k = d->keys; k && k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

static void known_keys(const struct sky_driver *d, char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof common_keys / sizeof common_keys[0]; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? ", " : "", common_keys[i].key);
    }
    for (const struct sky_key *k = d->keys; k && k->name; k++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, ", %s", k->name);
    }
}

static int validate_cloud(const char *file, struct section *s, struct sky_cloud_config *c,
                          bool *has_secret, struct sky_err *e)
{
    const struct sky_kv *type = find_kv(s, "type");
    if (!type)
        return sky_fail(e, EINVAL, "%s:%d: cloud [%s] has no type; add \"type = TYPE\" "
                        "(one of: %s)", file, s->line, s->name, sky_driver_types());
    const struct sky_driver *d = sky_driver_find(type->value);
    if (!d)
        return sky_fail(e, EINVAL, "%s:%d: unknown cloud type \"%s\" for [%s]; use one of: %s",
                        file, type->line, type->value, s->name, sky_driver_types());
    c->name = strdup(s->name);
    c->type = strdup(type->value);
    c->driver = d;
    c->file = file;
    c->line = s->line;
    c->ttl_ns = SKY_DEFAULT_TTL_NS;
    c->negative_ttl_ns = SKY_DEFAULT_NEGATIVE_TTL_NS;
    c->revalidate_sync = true;
    c->list_ahead = SKY_DEFAULT_LIST_AHEAD;
    /* a local folder's reads wait on no network: nothing to win ahead */
    c->open_ahead = strcmp(d->type, "local") == 0 ? 0 : SKY_DEFAULT_OPEN_AHEAD;
    c->index = true;
    c->write_back_async = false;
    c->write_back_delay_ns = SKY_DEFAULT_WRITE_BACK_DELAY_NS;
    c->upload_parallel = SKY_DEFAULT_UPLOAD_PARALLEL;
    c->index_interval_ns = SKY_DEFAULT_INDEX_INTERVAL_NS;
    c->kv = calloc(s->nkv ? s->nkv : 1, sizeof *c->kv);
    if (!c->name || !c->type || !c->kv)
        return sky_fail(e, ENOMEM, "out of memory");

    for (size_t k = 0; k < s->nkv; k++) {
        struct sky_kv *kv = &s->kv[k];
        if (strcmp(kv->key, "read_only") == 0) {
            if (sky_parse_bool(kv->value, &c->read_only))
                return sky_fail(e, EINVAL, "%s:%d: read_only = \"%s\" is not a boolean; write "
                                "true or false", file, kv->line, kv->value);
        } else if (strcmp(kv->key, "revalidate") == 0) {
            if (strcmp(kv->value, "sync") != 0 && strcmp(kv->value, "async") != 0)
                return sky_fail(e, EINVAL, "%s:%d: revalidate = \"%s\" is not a mode; write "
                                "async (a listing older than ttl is answered at once and "
                                "refreshed in the background) or sync (refreshed first)",
                                file, kv->line, kv->value);
            c->revalidate_sync = strcmp(kv->value, "sync") == 0;
        } else if (strcmp(kv->key, "list_ahead") == 0) {
            int rc = parse_count(kv, file, 0, SKY_MAX_LIST_AHEAD, "2",
                                 "subfolders listed in the background at once", &c->list_ahead, e);
            if (rc)
                return rc;
        } else if (strcmp(kv->key, "open_ahead") == 0) {
            int rc = parse_count(kv, file, 0, SKY_MAX_OPEN_AHEAD, "8",
                                 "files fetched ahead of a reader going through a folder",
                                 &c->open_ahead, e);
            if (rc)
                return rc;
        } else if (strcmp(kv->key, "write_back") == 0) {
            if (strcmp(kv->value, "sync") != 0 && strcmp(kv->value, "async") != 0)
                return sky_fail(e, EINVAL, "%s:%d: write_back = \"%s\" is not sync or async; "
                                "write write_back = async (close returns once the file is safe "
                                "on the local disk; the upload follows) or write_back = sync "
                                "(close waits for the upload)", file, kv->line, kv->value);
            c->write_back_async = strcmp(kv->value, "async") == 0;
        } else if (strcmp(kv->key, "write_back_delay") == 0) {
            int64_t ns;
            int prc = sky_parse_duration(kv->value, &ns);
            if (prc || ns < 0 || ns > SKY_MAX_WRITE_BACK_DELAY_NS)
                return sky_fail(e, EINVAL, "%s:%d: write_back_delay = \"%s\" is not a duration "
                                "from 0 to 1h; write e.g. 0 (upload at once), 300ms or 5s",
                                file, kv->line, kv->value);
            c->write_back_delay_ns = ns;
        } else if (strcmp(kv->key, "upload_parallel") == 0) {
            int rc = parse_count(kv, file, 1, SKY_MAX_UPLOAD_PARALLEL, "4",
                                 "files of this cloud uploaded at once", &c->upload_parallel, e);
            if (rc)
                return rc;
        } else if (strcmp(kv->key, "index") == 0) {
            if (sky_parse_bool(kv->value, &c->index))
                return sky_fail(e, EINVAL, "%s:%d: index = \"%s\" is not on or off; write index = "
                                "on (keep this cloud's search index complete in the background) "
                                "or index = off", file, kv->line, kv->value);
        } else if (strcmp(kv->key, "index_interval") == 0) {
            int prc = sky_parse_duration(kv->value, &c->index_interval_ns);
            if (prc || c->index_interval_ns <= 0)
                return sky_fail(e, EINVAL, "%s:%d: index_interval = \"%s\" is not a duration; "
                                "write e.g. 30m, 1h, 24h, or forever (crawl once)", file, kv->line,
                                kv->value);
        } else if (strcmp(kv->key, "ttl") == 0 || strcmp(kv->key, "negative_ttl") == 0) {
            int64_t *dst = kv->key[0] == 't' ? &c->ttl_ns : &c->negative_ttl_ns;
            int prc = sky_parse_duration(kv->value, dst);
            if (prc == -ERANGE)
                return sky_fail(e, EINVAL, "%s:%d: %s = \"%s\" is too long to represent; write "
                                "at most 2562047h (292 years), or forever", file, kv->line,
                                kv->key, kv->value);
            if (prc)
                return sky_fail(e, EINVAL, "%s:%d: %s = \"%s\" is not a duration; write e.g. "
                                "500ms, 10s, 5m, 1h or forever", file, kv->line, kv->key, kv->value);
        } else if (!is_common_key(kv->key)) {
            const struct sky_key *dk = driver_key(d, kv->key);
            if (!dk) {
                char known[512];
                known_keys(d, known, sizeof known);
                return sky_fail(e, EINVAL, "%s:%d: unknown key \"%s\" for a cloud of type %s; "
                                "known keys: %s", file, kv->line, kv->key, d->type, known);
            }
            bool b;
            if ((dk->flags & SKY_KEY_BOOL) && sky_parse_bool(kv->value, &b))
                return sky_fail(e, EINVAL, "%s:%d: %s = \"%s\" is not a boolean; write true or "
                                "false", file, kv->line, kv->key, kv->value);
            int64_t ns;
            if ((dk->flags & SKY_KEY_DURATION) &&
                (sky_parse_duration(kv->value, &ns) || ns <= 0 || ns == SKY_TTL_FOREVER))
                return sky_fail(e, EINVAL, "%s:%d: %s = \"%s\" is not a duration; write e.g. "
                                "500ms, 10s or 2m", file, kv->line, kv->key, kv->value);
            if ((dk->flags & SKY_KEY_COUNT) && !is_count(kv->value))
                return sky_fail(e, EINVAL, "%s:%d: %s = \"%s\" is not a count; write a whole "
                                "number from 0 to 100", file, kv->line, kv->key, kv->value);
            if (dk->flags & SKY_KEY_SECRET)
                *has_secret = true;
            /* move the pair into the cloud config */
            c->kv[c->nkv++] = *kv;
            kv->key = kv->value = NULL;
        }
    }
    for (const struct sky_key *k = d->keys; k && k->name; k++)
        if ((k->flags & SKY_KEY_REQUIRED) && !sky_cloud_get(c, k->name))
            return sky_fail(e, EINVAL, "%s:%d: cloud [%s] of type %s needs \"%s\" (%s); add "
                            "\"%s = ...\" to the section", file, s->line, s->name, d->type,
                            k->name, k->help, k->name);
    return 0;
}

static int check_secret_mode(const char *path, struct sky_err *e)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return sky_fail(e, errno, "%s: cannot stat: %s", path, strerror(errno));
    if (st.st_mode & 077)
        return sky_fail(e, EPERM, "%s: holds secrets but is readable by others (mode %04o); "
                        "run: chmod 600 %s", path, (unsigned)(st.st_mode & 07777), path);
    return 0;
}

static int validate(struct parsed *p, struct sky_config *cfg, struct sky_err *e)
{
    const char *file = cfg->path;
    bool has_secret = false;
    size_t ncloud = 0;
    cfg->clouds = calloc(p->n ? p->n : 1, sizeof *cfg->clouds);
    if (!cfg->clouds)
        return sky_fail(e, ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n; i++) {
        struct section *s = &p->sec[i];
        int rc;
        if (strcmp(s->name, "cache") == 0)
            rc = validate_cache(file, s, cfg, e);
        else if (strcmp(s->name, "daemon") == 0)
            rc = validate_daemon(file, s, cfg, e);
        else {
            rc = validate_cloud(file, s, &cfg->clouds[ncloud], &has_secret, e);
            ncloud++;
            cfg->nclouds = ncloud;
        }
        if (rc)
            return rc;
    }
    if (ncloud == 0)
        return sky_fail(e, EINVAL, "%s: no clouds configured; add a section such as "
                        "\"[docs]\" with \"type = local\" and \"path = /some/dir\"", file);
    if (has_secret)
        return check_secret_mode(file, e);
    return 0;
}

static char *default_cache_dir(void)
{
    char *p;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (geteuid() == 0)
        return strdup("/var/cache/skyfs");
    if (xdg && *xdg) {
        if (asprintf(&p, "%s/skyfs", xdg) < 0)
            return NULL;
    } else if (asprintf(&p, "%s/.cache/skyfs", home ? home : ".") < 0) {
        return NULL;
    }
    return p;
}

/* The config file's absolute path, as mounts record it. */
static void config_abspath(const struct sky_config *cfg, char *out, size_t size)
{
    char real[PATH_MAX], cwd[PATH_MAX];
    if (realpath(cfg->path, real))
        snprintf(out, size, "%s", real);
    else if (cfg->path[0] != '/' && getcwd(cwd, sizeof cwd))
        snprintf(out, size, "%s/%s", cwd, cfg->path);
    else
        snprintf(out, size, "%s", cfg->path);
}

/* FNV-1a: a stable name for a (config, mountpoint) pair, not a secret. */
static uint64_t name_hash(const char *a, const char *b)
{
    uint64_t h = 14695981039346656037ULL;
    for (const char *s = a; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *s = b; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

char *sky_config_mount_cache_dir(const struct sky_config *cfg, const char *mountpoint)
{
    char conf[PATH_MAX], slug[41];
    config_abspath(cfg, conf, sizeof conf);
    const char *base = strrchr(mountpoint, '/');
    base = base && base[1] ? base + 1 : "root";
    size_t n = 0;
    for (; base[n] && n < sizeof slug - 1; n++)
        slug[n] = isalnum((unsigned char)base[n]) || strchr("._-", base[n]) ? base[n] : '_';
    slug[n] = '\0';
    char *dir;
    if (asprintf(&dir, "%s/mounts/%s-%016llx", cfg->cache_base, slug,
                 (unsigned long long)name_hash(conf, mountpoint)) < 0)
        return NULL;
    return dir;
}

int sky_config_use_mount_cache(struct sky_config *cfg, const char *mountpoint,
                               struct sky_err *e)
{
    if (!cfg->cache_base)
        return 0;
    char *dir = sky_config_mount_cache_dir(cfg, mountpoint);
    if (!dir)
        return sky_fail(e, ENOMEM, "out of memory");
    free(cfg->cache_dir);
    cfg->cache_dir = dir;
    return 0;
}

/* Without a mountpoint (search, status, index...): the per-mount cache of
 * this config mounted last (its `mountpoint` file is rewritten at every
 * mount), else the base folder. */
static char *recent_mount_cache(const struct sky_config *cfg)
{
    char conf[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 32], line[PATH_MAX];
    config_abspath(cfg, conf, sizeof conf);
    snprintf(dir, sizeof dir, "%s/mounts", cfg->cache_base);
    DIR *d = opendir(dir);
    char best[PATH_MAX] = "";
    struct timespec best_at = { 0, 0 };
    for (struct dirent *de; d && (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s/config", dir, de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/mountpoint", dir, de->d_name);
        if (strcmp(line, conf) != 0 || stat(path, &st) != 0)
            continue;
        if (!best[0] || st.st_mtim.tv_sec > best_at.tv_sec ||
            (st.st_mtim.tv_sec == best_at.tv_sec && st.st_mtim.tv_nsec > best_at.tv_nsec)) {
            best_at = st.st_mtim;
            snprintf(best, sizeof best, "%s/%s", dir, de->d_name);
        }
    }
    if (d)
        closedir(d);
    return strdup(best[0] ? best : cfg->cache_base);
}

int sky_config_load(const char *path, struct sky_config **out, struct sky_err *e)
{
    struct sky_config *cfg = calloc(1, sizeof *cfg);
    struct parsed p = { 0 };
    if (!cfg)
        return sky_fail(e, ENOMEM, "out of memory");
    cfg->path = strdup(path);
    cfg->max_size = 10ULL << 30;
    cfg->block_size = 4 * MiB;
    cfg->min_free = 1ULL << 30;
    cfg->log_level = -1;
    int rc = parse_file(path, &p, e);
    if (!rc)
        rc = validate(&p, cfg, e);
    if (!rc && !cfg->cache_dir &&
        (!(cfg->cache_base = default_cache_dir()) || !(cfg->cache_dir = recent_mount_cache(cfg))))
        rc = sky_fail(e, ENOMEM, "out of memory");
    parsed_free(&p);
    if (rc) {
        sky_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

void sky_config_free(struct sky_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nclouds; i++) {
        struct sky_cloud_config *c = &cfg->clouds[i];
        free(c->name);
        free(c->type);
        for (size_t k = 0; k < c->nkv; k++) {
            free(c->kv[k].key);
            free(c->kv[k].value);
        }
        free(c->kv);
    }
    free(cfg->clouds);
    free(cfg->cache_dir);
    free(cfg->cache_base);
    free(cfg->metrics_listen);
    free(cfg->path);
    free(cfg);
}

const char *sky_cloud_get(const struct sky_cloud_config *c, const char *key)
{
    for (size_t k = 0; k < c->nkv; k++)
        if (strcmp(c->kv[k].key, key) == 0)
            return c->kv[k].value;
    return NULL;
}

int sky_cloud_line(const struct sky_cloud_config *c, const char *key)
{
    for (size_t k = 0; k < c->nkv; k++)
        if (strcmp(c->kv[k].key, key) == 0)
            return c->kv[k].line;
    return c->line;
}

bool sky_cloud_bool(const struct sky_cloud_config *c, const char *key, bool dflt)
{
    const char *v = sky_cloud_get(c, key);
    bool b;
    if (!v || sky_parse_bool(v, &b))
        return dflt;
    return b;
}
