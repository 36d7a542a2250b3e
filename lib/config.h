/*
 * config.h - the skyfs configuration file.
 *
 * INI form: a [cache] section and one section per cloud; the section name
 * is the cloud's directory name in the mount.  Example:
 *
 *     [cache]
 *     dir = /var/cache/skyfs
 *     max_size = 10G
 *     block_size = 4M
 *
 *     [photos]
 *     type = local
 *     path = /srv/photos
 *     ttl = 30s
 *
 * Comments start with '#' or ';' at the beginning of a line, or with '#'
 * after whitespace later in a line ("ttl = 30s   # half a minute"); a '#'
 * with no space before it is part of the value (SAS tokens, connection
 * strings), and so is every ';'.  A value in double quotes is taken as written, comment signs
 * and surrounding spaces included, with \" and \\ for a quote and a
 * backslash.  A UTF-8 byte order mark is skipped.  The file must be a
 * regular file of at most SKY_CONFIG_MAX_BYTES holding no NUL byte; cloud
 * names must be valid UTF-8 and not ".skyfs".  Every error names the
 * file, the line and the fix.  Keys a driver marks secret make
 * the loader demand mode 0600 on the file.
 *
 * A [daemon] section (optional; the name cannot be a cloud's) holds the
 * daemon's own settings: log_level (debug, info, warn, error) and
 * metrics_listen (IP:PORT of the Prometheus metrics listener).
 *
 * Used by tools/ (mount, config check) and read by fs/ and the drivers.
 */
#ifndef SKY_CONFIG_H
#define SKY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct sky_driver;

struct sky_kv {
    char *key;
    char *value;
    int line;
};

/* Durations are in nanoseconds; SKY_TTL_FOREVER means "never expires". */
#define SKY_DEFAULT_WRITE_BACK_DELAY_NS (300LL * 1000000LL)
#define SKY_MAX_WRITE_BACK_DELAY_NS (3600LL * 1000000000LL)
#define SKY_DEFAULT_UPLOAD_PARALLEL 8
#define SKY_MAX_UPLOAD_PARALLEL 32
#define SKY_TTL_FOREVER INT64_MAX

struct sky_cloud_config {
    char *name;                     /* section name = directory name */
    char *type;
    const struct sky_driver *driver;
    const char *file;               /* config path, for messages */
    int line;                       /* line of the [section] header */
    bool read_only;
    bool write_back_async;          /* write_back = async: close returns once the data is
                                     * durable in the cache; uploads follow (fs/writeback.c) */
    int64_t write_back_delay_ns;    /* async: how long a closed file settles before its
                                     * upload, so a chmod/utime after close rides along */
    unsigned upload_parallel;       /* async: uploads of this cloud running at once (1-32) */
    int64_t ttl_ns;                 /* listings and attributes */
    int64_t negative_ttl_ns;        /* "no such file" answers */
    bool revalidate_sync;           /* `revalidate = sync` (the default): a listing older
                                     * than ttl is refreshed before it is answered; async:
                                     * answered at once while one background refresh runs */
    unsigned list_ahead;            /* subfolders listed in the background at once, per
                                     * cloud (fs/listahead.h); 0: off */
    unsigned open_ahead;            /* files fetched ahead of a reader going through a
                                     * folder (fs/openahead.h); 0: off (a local cloud's
                                     * default) */
    bool index;                     /* crawl the cloud in the background (fs/crawl.h) */
    int64_t index_interval_ns;      /* ... again this long after the last complete crawl
                                     * began (SKY_TTL_FOREVER: once) */
    size_t nkv;
    struct sky_kv *kv;              /* driver keys (common keys removed) */
};

struct sky_config {
    char *path;
    char *cache_dir;
    char *cache_base;               /* without [cache] dir: the folder that holds one
                                     * cache folder per mount; else NULL */
    uint64_t max_size;              /* bytes */
    uint64_t block_size;            /* bytes, 1..8 MiB, power of two */
    uint64_t min_free;              /* bytes kept free on the cache disk */
    /* [daemon] */
    int log_level;                  /* enum sky_log_level (lib/log.h); -1: not set */
    char *metrics_listen;           /* "HOST:PORT" of the metrics listener, or NULL */
    int metrics_listen_line;
    size_t nclouds;
    struct sky_cloud_config *clouds;
};

#define SKY_CONFIG_MAX_BYTES (1024 * 1024)

#define SKY_DEFAULT_TTL_NS          (10LL * 1000000000LL)
#define SKY_DEFAULT_LIST_AHEAD      8u
#define SKY_MAX_LIST_AHEAD          16
#define SKY_DEFAULT_OPEN_AHEAD      8u
#define SKY_MAX_OPEN_AHEAD          64
#define SKY_DEFAULT_NEGATIVE_TTL_NS (2LL * 1000000000LL)
/* One refresh of the index an hour: on S3 a million objects cost 1,000
 * LIST requests per refresh (README, "The search index"). */
#define SKY_DEFAULT_INDEX_INTERVAL_NS (3600LL * 1000000000LL)

/* The default config path: $SKYFS_CONFIG, else /etc/skyfs/skyfs.conf for
 * root, else ~/.config/skyfs/skyfs.conf.  Returns a malloc'd string. */
char *sky_config_default_path(void);

/* Read and validate `path`.  On error returns -errno with e->msg of the form
 * "FILE:LINE: what is wrong; what to do". */
int sky_config_load(const char *path, struct sky_config **out, struct sky_err *e);
void sky_config_free(struct sky_config *cfg);

/* Without [cache] dir each mount has its own cache folder, named after the
 * config's absolute path and the mountpoint (so the same mount finds its
 * cache again): <base>/mounts/<mountpoint's name>-<hash>.  Until a mount
 * is chosen, cache_dir is the folder of this config's latest mount (for
 * status, search, index), or <base>.  sky_config_use_mount_cache sets
 * cache_dir for `mountpoint` (absolute); with [cache] dir it does nothing. */
int sky_config_use_mount_cache(struct sky_config *cfg, const char *mountpoint,
                               struct sky_err *e);
/* The folder for `mountpoint` (malloc'd); only when cache_base is set. */
char *sky_config_mount_cache_dir(const struct sky_config *cfg, const char *mountpoint);

/* Value of a driver key, or NULL when absent. */
const char *sky_cloud_get(const struct sky_cloud_config *c, const char *key);
/* Line of a driver key (or of the section when absent), for messages. */
int sky_cloud_line(const struct sky_cloud_config *c, const char *key);
/* Boolean value of a key (validated by the loader), or `dflt`. */
bool sky_cloud_bool(const struct sky_cloud_config *c, const char *key, bool dflt);

/* Parsers shared with the tools: "10G", "512K", "4M", "123" -> bytes;
 * "30s", "5m", "2h", "500ms", "forever" -> ns.  Return 0 or -EINVAL
 * (-ERANGE: a duration too long for int64 nanoseconds). */
int sky_parse_size(const char *s, uint64_t *out);
int sky_parse_duration(const char *s, int64_t *out);
int sky_parse_bool(const char *s, bool *out);
/* "127.0.0.1:9101", "[::1]:9101" -> a socket address (IP literals only:
 * no name is looked up).  0 or -EINVAL. */
struct sockaddr_storage;
int sky_parse_listen(const char *s, struct sockaddr_storage *out, unsigned *len);

/* Every key the config accepts, for `skyfs config keys` (and the test that
 * keeps the man page and README in step): calls fn(arg, section, key,
 * help) for [cache] and [daemon] keys (section "cache", "daemon"), the keys
 * every cloud takes (section "*"), and each cloud type's own keys
 * (section = the type). */
void sky_config_each_key(void (*fn)(void *arg, const char *section, const char *key,
                                    const char *help), void *arg);

#endif
