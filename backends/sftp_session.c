/*
 * sftp_session.c - settings, host key checks, authentication and the
 * session pool of SFTP clouds (see sftp_session.h).
 *
 * libssh sessions are not shared between threads: a session belongs to
 * the one call that took it from the pool until it is given back.
 */
#include "sftp_session.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../lib/config.h"
#include "../lib/log.h"
#include "http.h"

#define DEFAULT_CONNECTIONS 4
#define DEFAULT_TIMEOUT_S 15
/* AES-GCM first: OpenSSL runs it on the CPU's AES instructions, several
 * times faster than libssh's chacha20-poly1305; all are strong. */
#define FAST_CIPHERS "aes128-gcm@openssh.com,aes256-gcm@openssh.com," \
                     "chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr"

static pthread_once_t ssh_once = PTHREAD_ONCE_INIT;

static void ssh_global_init(void)
{
    ssh_init();
}

/* ---- settings ---- */

static int key_error(const struct sky_cloud_config *cfg, const char *key, int code,
                     struct sky_err *e, const char *fix)
{
    return sky_fail(e, code, "%s:%d: [%s] %s: %s", cfg->file ? cfg->file : "config",
                    sky_cloud_line(cfg, key), cfg->name, key, fix);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Is s "SHA256:" followed by base64 (padding optional)? */
static bool valid_fingerprint(const char *s)
{
    if (strncmp(s, "SHA256:", 7) != 0 || !s[7])
        return false;
    for (const char *p = s + 7; *p; p++)
        if (!(p[0] >= 'A' && p[0] <= 'Z') && !(p[0] >= 'a' && p[0] <= 'z') &&
            !(p[0] >= '0' && p[0] <= '9') && *p != '+' && *p != '/' && *p != '=')
            return false;
    return true;
}

/* ~/.ssh/known_hosts of the user running the daemon (malloc'd). */
static char *default_known_hosts(void)
{
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : "/";
    }
    char *p;
    return asprintf(&p, "%s/.ssh/known_hosts", home) < 0 ? NULL : p;
}

/* The private key file must exist and be readable by its owner only, as
 * ssh itself demands. */
static int check_key_file(const struct sky_cloud_config *cfg, const char *path,
                          struct sky_err *e)
{
    struct stat st;
    char fix[PATH_MAX + 160];
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(fix, sizeof fix, "%s is not a readable file (%s); give the path of the private "
                 "key", path, strerror(errno ? errno : EINVAL));
        return key_error(cfg, "key_file", ENOENT, e, fix);
    }
    if (st.st_mode & 077) {
        snprintf(fix, sizeof fix, "the private key %s is readable by others (mode %04o); "
                 "run chmod 600 %s", path, (unsigned)(st.st_mode & 07777), path);
        return key_error(cfg, "key_file", EPERM, e, fix);
    }
    return 0;
}

static int read_settings(struct sftp_settings *s, const struct sky_cloud_config *cfg,
                         struct sky_err *e)
{
    const char *host = sky_cloud_get(cfg, "host");
    const char *port = sky_cloud_get(cfg, "port");
    const char *key_file = sky_cloud_get(cfg, "key_file");
    const char *host_key = sky_cloud_get(cfg, "host_key");
    const char *conns = sky_cloud_get(cfg, "connections");
    const char *timeout = sky_cloud_get(cfg, "timeout");

    if (!host || !*host)
        return key_error(cfg, "host", EINVAL, e, "set host = the SFTP server's name or address");
    s->port = 22;
    if (port) {
        char *end;
        long v = strtol(port, &end, 10);
        if (*end || v < 1 || v > 65535)
            return key_error(cfg, "port", EINVAL, e, "must be a TCP port number, 1 to 65535");
        s->port = (unsigned)v;
    }
    s->agent = sky_cloud_bool(cfg, "agent", false);
    if (!key_file && !sky_cloud_get(cfg, "password") && !s->agent)
        return sky_fail(e, EINVAL, "%s:%d: [%s]: no way to log in: set key_file, password or "
                        "agent = true", cfg->file ? cfg->file : "config", cfg->line, cfg->name);
    if (sky_cloud_get(cfg, "key_passphrase") && !key_file)
        return key_error(cfg, "key_passphrase", EINVAL, e,
                         "a passphrase without key_file; set key_file too");
    int rc = key_file ? check_key_file(cfg, key_file, e) : 0;
    if (rc)
        return rc;
    if (host_key && !valid_fingerprint(host_key))
        return key_error(cfg, "host_key", EINVAL, e,
                         "must be a SHA256 fingerprint as `ssh-keygen -lf KEY.pub` prints it "
                         "(SHA256:...)");
    s->connections = DEFAULT_CONNECTIONS;
    if (conns) {
        s->connections = atoi(conns);
        if (s->connections < 1 || s->connections > SFTP_POOL_MAX)
            return key_error(cfg, "connections", EINVAL, e,
                             "must be a number of sessions from 1 to 16");
    }
    s->timeout_s = DEFAULT_TIMEOUT_S;
    if (timeout) {
        int64_t ns;
        if (sky_parse_duration(timeout, &ns) != 0 || ns < 1000000000LL)
            return key_error(cfg, "timeout", EINVAL, e, "must be a duration of 1s or more");
        s->timeout_s = (int)(ns / 1000000000LL);
    }
    const char *root = sky_cloud_get(cfg, "path");
    s->name = strdup(cfg->name);
    s->host = strdup(host);
    s->user = dup_or_null(sky_cloud_get(cfg, "user"));
    s->root = strdup(root ? root : "");
    s->key_file = dup_or_null(key_file);
    s->key_passphrase = dup_or_null(sky_cloud_get(cfg, "key_passphrase"));
    s->password = dup_or_null(sky_cloud_get(cfg, "password"));
    s->host_key = dup_or_null(host_key);
    const char *kh = sky_cloud_get(cfg, "known_hosts");
    s->known_hosts = kh ? strdup(kh) : default_known_hosts();
    if (!s->name || !s->host || !s->root || !s->known_hosts)
        return sky_fail(e, ENOMEM, "out of memory");
    /* the root without trailing slashes ("/" stays) */
    for (size_t n = strlen(s->root); n > 1 && s->root[n - 1] == '/'; n--)
        s->root[n - 1] = '\0';
    return 0;
}

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void free_settings(struct sftp_settings *s)
{
    free(s->name);
    free(s->host);
    free(s->user);
    free(s->root);
    free(s->key_file);
    free_secret(s->key_passphrase);
    free_secret(s->password);
    free(s->known_hosts);
    free(s->host_key);
    memset(s, 0, sizeof *s);
}

/* ---- connecting ---- */

char *sftp_key_fingerprint(ssh_key key)
{
    unsigned char *hash = NULL;
    size_t hlen = 0;
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != 0)
        return NULL;
    char *fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    ssh_clean_pubkey_hash(&hash);
    return fp;
}

/* Equal fingerprints, ignoring base64 padding. */
static bool same_fingerprint(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la && a[la - 1] == '=')
        la--;
    while (lb && b[lb - 1] == '=')
        lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

static int verify_host_key(struct sftp_settings *s, ssh_session ssh, struct sky_err *e)
{
    ssh_key key = NULL;
    if (ssh_get_server_publickey(ssh, &key) != SSH_OK)
        return sky_fail(e, EIO, "sftp '%s': %s:%u sent no host key", s->name, s->host, s->port);
    char *fp = sftp_key_fingerprint(key);
    const char *type = ssh_key_type_to_char(ssh_key_type(key));
    ssh_key_free(key);
    if (!fp)
        return sky_fail(e, EIO, "sftp '%s': cannot hash the host key of %s:%u", s->name,
                        s->host, s->port);
    char where[300];
    if (s->port == 22)
        snprintf(where, sizeof where, "%s", s->host);
    else
        snprintf(where, sizeof where, "[%s]:%u", s->host, s->port);
    int rc = 0;
    if (s->host_key) {
        if (!same_fingerprint(fp, s->host_key))
            rc = sky_fail(e, EACCES, "sftp '%s': connection refused: the host key of %s is %s "
                          "%s, not the host_key = %s the config pins; if the server's key was "
                          "really replaced, put the new fingerprint in host_key",
                          s->name, where, type ? type : "", fp, s->host_key);
        ssh_string_free_char(fp);
        return rc;
    }
    enum ssh_known_hosts_e st = ssh_session_is_known_server(ssh);
    switch (st) {
    case SSH_KNOWN_HOSTS_OK:
        break;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
        rc = sky_fail(e, EACCES, "sftp '%s': connection refused: the host key of %s CHANGED: it "
                      "is now %s %s, and %s holds another key for it (someone may be "
                      "intercepting the connection); if the server's key was really replaced, "
                      "remove the old one with `ssh-keygen -R '%s' -f %s` and trust the new one, "
                      "or set host_key = %s", s->name, where, type ? type : "", fp,
                      s->known_hosts, where, s->known_hosts, fp);
        break;
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
        rc = sky_fail(e, EACCES, "sftp '%s': connection refused: the host key of %s is unknown "
                      "(%s %s is not in %s); if that is the server's key, trust it with "
                      "`ssh-keyscan -p %u %s >> %s` or set host_key = %s",
                      s->name, where, type ? type : "", fp, s->known_hosts, s->port, s->host,
                      s->known_hosts, fp);
        break;
    default:
        rc = sky_fail(e, EACCES, "sftp '%s': connection refused: cannot check the host key "
                      "%s of %s against %s: %s", s->name, fp, where, s->known_hosts,
                      ssh_get_error(ssh));
        break;
    }
    ssh_string_free_char(fp);
    return rc;
}

static int authenticate(struct sftp_settings *s, ssh_session ssh, struct sky_err *e)
{
    char tried[64] = "";
    if (s->key_file) {
        ssh_key key = NULL;
        if (ssh_pki_import_privkey_file(s->key_file, s->key_passphrase, NULL, NULL, &key) !=
            SSH_OK)
            return sky_fail(e, EACCES, "sftp '%s': cannot load the private key %s (%s)", s->name,
                            s->key_file, s->key_passphrase ? "wrong key_passphrase, or not a key"
                                                           : "not a key, or it needs key_passphrase");
        int rc = ssh_userauth_publickey(ssh, NULL, key);
        ssh_key_free(key);
        if (rc == SSH_AUTH_SUCCESS)
            return 0;
        if (rc == SSH_AUTH_ERROR)
            goto broken;
        strcat(tried, "the key_file key");
    }
    if (s->agent) {
        if (!getenv("SSH_AUTH_SOCK"))
            return sky_fail(e, EACCES, "sftp '%s': agent = true but SSH_AUTH_SOCK is not set in "
                            "the daemon's environment; start it with an ssh-agent running",
                            s->name);
        int rc = ssh_userauth_agent(ssh, NULL);
        if (rc == SSH_AUTH_SUCCESS)
            return 0;
        if (rc == SSH_AUTH_ERROR)
            goto broken;
        strcat(tried, *tried ? ", the agent's keys" : "the agent's keys");
    }
    if (s->password) {
        int rc = ssh_userauth_password(ssh, NULL, s->password);
        if (rc == SSH_AUTH_SUCCESS)
            return 0;
        if (rc == SSH_AUTH_ERROR)
            goto broken;
        strcat(tried, *tried ? ", the password" : "the password");
    }
    return sky_fail(e, EACCES, "sftp '%s': %s:%u refused the login of user '%s' (tried %s); "
                    "check user, password and key_file", s->name, s->host, s->port,
                    s->user ? s->user : "(the daemon's user)", tried);
broken:
    return sky_fail(e, EHOSTDOWN, "sftp '%s': logging in to %s:%u failed: %s", s->name, s->host,
                    s->port, ssh_get_error(ssh));
}

static void conn_close(struct sftp_conn *c)
{
    sftp_ext_close(c->ext);
    c->ext = NULL;
    if (c->sftp)
        sftp_free(c->sftp);
    if (c->ssh) {
        ssh_disconnect(c->ssh);
        ssh_free(c->ssh);
    }
    c->sftp = NULL;
    c->ssh = NULL;
}

static int conn_open(struct sftp_settings *s, struct sftp_conn *c, struct sky_err *e)
{
    pthread_once(&ssh_once, ssh_global_init);
    if (http_cancelled())
        return sky_fail(e, EINTR, "sftp '%s': connecting cancelled", s->name);
    ssh_session ssh = ssh_new();
    if (!ssh)
        return sky_fail(e, ENOMEM, "out of memory");
    long timeout = s->timeout_s;
    bool no = false;
    int verbosity = SSH_LOG_NOLOG;
    int nodelay = 1;    /* small requests go at once (Nagle would hold them) */
    unsigned port = s->port;
    int rc = 0;
    if (ssh_options_set(ssh, SSH_OPTIONS_HOST, s->host) < 0 ||
        ssh_options_set(ssh, SSH_OPTIONS_PORT, &port) < 0 ||
        (s->user && ssh_options_set(ssh, SSH_OPTIONS_USER, s->user) < 0) ||
        ssh_options_set(ssh, SSH_OPTIONS_TIMEOUT, &timeout) < 0 ||
        ssh_options_set(ssh, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
        ssh_options_set(ssh, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) < 0 ||
        ssh_options_set(ssh, SSH_OPTIONS_NODELAY, &nodelay) < 0 ||
        ssh_options_set(ssh, SSH_OPTIONS_CIPHERS_C_S, FAST_CIPHERS) < 0 ||
        ssh_options_set(ssh, SSH_OPTIONS_CIPHERS_S_C, FAST_CIPHERS) < 0 ||
        ssh_options_set(ssh, SSH_OPTIONS_KNOWNHOSTS, s->known_hosts) < 0)
        rc = sky_fail(e, EINVAL, "sftp '%s': bad connection settings: %s", s->name,
                      ssh_get_error(ssh));
    if (!rc && ssh_connect(ssh) != SSH_OK)
        rc = sky_fail(e, EHOSTDOWN, "sftp '%s': cannot reach %s:%u: %s", s->name, s->host,
                      s->port, ssh_get_error(ssh));
    if (!rc)
        rc = verify_host_key(s, ssh, e);
    if (!rc)
        rc = authenticate(s, ssh, e);
    sftp_session sftp = NULL;
    if (!rc && (!(sftp = sftp_new(ssh)) || sftp_init(sftp) != SSH_OK))
        rc = sky_fail(e, EIO, "sftp '%s': %s:%u has no SFTP service: %s", s->name, s->host,
                      s->port, ssh_get_error(ssh));
    c->ssh = ssh;
    c->sftp = sftp;
    if (rc) {
        conn_close(c);
        return rc;
    }
    c->posix_rename = sftp_extension_supported(sftp, "posix-rename@openssh.com", "1");
    c->statvfs = sftp_extension_supported(sftp, "statvfs@openssh.com", "2");
    c->lsetstat = sftp_extension_supported(sftp, "lsetstat@openssh.com", "1");
    LOG_DEBUG("sftp '%s': connected to %s:%u (posix-rename %s)", s->name, s->host, s->port,
              c->posix_rename ? "yes" : "no");
    return 0;
}

/* ---- the pool ---- */

int sftp_pool_init(struct sftp_pool *pool, const struct sky_cloud_config *cfg,
                   struct sky_err *e)
{
    memset(pool, 0, sizeof *pool);
    int rc = read_settings(&pool->set, cfg, e);
    if (rc) {
        free_settings(&pool->set);
        return rc;
    }
    pthread_mutex_init(&pool->lock, NULL);
    clock_cond_init(&pool->freed);      /* both waited on with clock_deadline_ms */
    clock_cond_init(&pool->stop);
    for (int i = 0; i < SFTP_POOL_MAX; i++)
        pool->conns[i].fd = -1;
    return 0;
}

/* Has the server sent nothing on busy session c for longer than the
 * timeout (and c been busy that long)?  libssh 0.10 may wait for an SFTP
 * answer without end when the server stops answering. */
static bool stalled(const struct sftp_pool *pool, const struct sftp_conn *c, long long now)
{
    long long limit = (long long)pool->set.timeout_s * 1000;
    if (now - c->busy_since_ms < limit)
        return false;
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return false;
    return (long long)ti.tcpi_last_data_recv >= limit;
}

/* Every 100 ms: shut down the socket of each session whose taker was
 * cancelled, or whose server has not answered for the timeout, so that
 * its request in libssh fails now. */
static void *watch_cancels(void *arg)
{
    struct sftp_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    while (!pool->stopping) {
        long long now = clock_now_ms();
        for (int i = 0; i < pool->set.connections; i++) {
            struct sftp_conn *c = &pool->conns[i];
            if (!c->busy || c->fd < 0)
                continue;
            bool cancelled = http_cancel_is_set(c->cancel);
            if (cancelled || stalled(pool, c, now)) {
                if (!cancelled)
                    LOG_WARN("sftp '%s': %s:%u sent nothing for %d s; dropping the session",
                             pool->set.name, pool->set.host, pool->set.port,
                             pool->set.timeout_s);
                shutdown(c->fd, SHUT_RDWR);
                c->fd = -1;
            }
        }
        struct timespec until = clock_deadline_ms(100);
        pthread_cond_timedwait(&pool->stop, &pool->lock, &until);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

void sftp_pool_destroy(struct sftp_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_signal(&pool->stop);
    bool join = pool->watching;
    pthread_mutex_unlock(&pool->lock);
    if (join)
        pthread_join(pool->watcher, NULL);
    for (int i = 0; i < SFTP_POOL_MAX; i++)
        conn_close(&pool->conns[i]);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->freed);
    pthread_cond_destroy(&pool->stop);
    free_settings(&pool->set);
}

static int pool_take(struct sftp_pool *pool, bool fresh, struct sftp_conn **out,
                     struct sky_err *e);

int sftp_pool_get(struct sftp_pool *pool, struct sftp_conn **out, struct sky_err *e)
{
    return pool_take(pool, false, out, e);
}

int sftp_pool_get_fresh(struct sftp_pool *pool, struct sftp_conn **out, struct sky_err *e)
{
    return pool_take(pool, true, out, e);
}

static int pool_take(struct sftp_pool *pool, bool fresh, struct sftp_conn **out,
                     struct sky_err *e)
{
    struct sftp_conn *c = NULL;
    pthread_mutex_lock(&pool->lock);
    while (!c) {
        struct sftp_conn *idle = NULL;
        for (int i = 0; i < pool->set.connections && !c; i++) {
            struct sftp_conn *k = &pool->conns[i];
            if (k->busy)
                continue;
            if (k->ssh && !fresh)
                c = k;              /* a connected one first */
            else if (!idle || (idle->ssh && !k->ssh))
                idle = k;           /* else an empty slot first */
        }
        if (!c)
            c = idle;
        if (c)
            break;
        if (http_cancelled()) {
            pthread_mutex_unlock(&pool->lock);
            return sky_fail(e, EINTR, "sftp '%s': waiting for a session cancelled",
                            pool->set.name);
        }
        struct timespec until = clock_deadline_ms(100);
        pthread_cond_timedwait(&pool->freed, &pool->lock, &until);
    }
    c->busy = true;
    c->busy_since_ms = clock_now_ms();
    c->cancel = http_cancel_current();
    if (!pool->watching && pthread_create(&pool->watcher, NULL, watch_cancels, pool) == 0)
        pool->watching = true;
    if (fresh && c->ssh)
        c->fd = -1;
    pthread_mutex_unlock(&pool->lock);
    if (fresh && c->ssh)
        conn_close(c);
    if (!c->ssh) {
        int rc = conn_open(&pool->set, c, e);
        if (rc) {
            sftp_pool_put(pool, c, true);
            return rc;
        }
        pthread_mutex_lock(&pool->lock);
        c->fd = ssh_get_fd(c->ssh);
        pthread_mutex_unlock(&pool->lock);
    }
    *out = c;
    return 0;
}

void sftp_pool_put(struct sftp_pool *pool, struct sftp_conn *c, bool broken)
{
    pthread_mutex_lock(&pool->lock);
    c->cancel = NULL;
    /* also close one whose socket the watcher shut */
    bool close_it = broken || c->drop || (c->ssh && c->fd < 0);
    if (close_it)
        c->fd = -1;
    pthread_mutex_unlock(&pool->lock);
    if (close_it)
        conn_close(c);
    c->drop = false;
    pthread_mutex_lock(&pool->lock);
    c->busy = false;
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
}

bool sftp_conn_broken(struct sftp_conn *c)
{
    if (!c->ssh || !c->sftp || !ssh_is_connected(c->ssh))
        return true;
    int err = sftp_get_error(c->sftp);
    return err == SSH_FX_NO_CONNECTION || err == SSH_FX_CONNECTION_LOST ||
           ssh_get_error_code(c->ssh) == SSH_FATAL;
}
