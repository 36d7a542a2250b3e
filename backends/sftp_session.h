/*
 * sftp_session.h - SSH connections of one SFTP cloud: settings, host key
 * checks, authentication and a small pool of sessions.
 *
 * A cloud holds a few SSH sessions (each with its SFTP channel), opened
 * when first needed.  A call takes one for itself (sftp_pool_get), uses it
 * alone, and gives it back (sftp_pool_put), so a long transfer on one
 * session never blocks a listing on another.  A session whose connection
 * broke is given back as broken: it is closed, and the next taker opens a
 * fresh one.
 *
 * libssh waits inside a request until the answer or its timeout; so that
 * a cancelled call (http_cancel, backends/http.h: the calling process was
 * killed, a probe's deadline passed) does not wait that long, a watcher
 * thread shuts down the socket of a session whose taker was cancelled,
 * and of one whose server sent nothing for the timeout (libssh 0.10 may
 * wait for an SFTP answer without end): the request fails at once (a
 * timed-out one is retried once on a new session) and the session is
 * closed when given back.
 *
 * Connecting checks the server's host key before anything is sent to it:
 * against a pinned `host_key` fingerprint when the config has one, else
 * against the known_hosts file (default ~/.ssh/known_hosts of the user
 * running the daemon).  An unknown or changed key refuses the connection
 * (EACCES) with a message that shows the key's SHA256 fingerprint and how
 * to trust it.  A server that cannot be reached is EHOSTDOWN; refused
 * credentials are EACCES.  Secrets (password, passphrase) never appear in
 * messages.
 *
 * Used by backends/sftp.c only.
 */
#ifndef SKY_SFTP_SESSION_H
#define SKY_SFTP_SESSION_H

#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <pthread.h>
#include <stdbool.h>

#include "../lib/err.h"
#include "http.h"
#include "sftp_extended.h"

struct sky_cloud_config;

#define SFTP_POOL_MAX 16

/* The settings of one cloud, from its config section. */
struct sftp_settings {
    char *name;             /* cloud name, for messages */
    char *host;
    unsigned port;
    char *user;             /* NULL: the daemon user's name */
    char *root;             /* `path`: the cloud's root on the server ("" = login dir) */
    char *key_file;
    char *key_passphrase;
    char *password;
    bool agent;
    char *known_hosts;      /* file checked when host_key is not set */
    char *host_key;         /* pinned "SHA256:..." fingerprint, or NULL */
    int timeout_s;          /* connect and per-request timeout */
    int connections;        /* pool size */
};

/* One pooled session. */
struct sftp_conn {
    ssh_session ssh;
    sftp_session sftp;
    bool busy;
    bool posix_rename;      /* the server has posix-rename@openssh.com */
    bool statvfs;           /* ... and statvfs@openssh.com */
    bool lsetstat;          /* ... and lsetstat@openssh.com */
    bool drop;              /* close it when given back (left mid-request) */
    struct sftp_ext_channel *ext;   /* for posix-rename, opened when first needed */
    int fd;                 /* its socket, -1 when closed (guarded by the pool lock) */
    struct http_cancel *cancel;     /* the taker's, while busy (pool lock) */
    long long busy_since_ms;        /* when it was taken (pool lock) */
};

struct sftp_pool {
    struct sftp_settings set;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    pthread_cond_t stop;            /* wakes the watcher to end it */
    bool watching, stopping;
    pthread_t watcher;              /* cuts the sockets of cancelled calls */
    struct sftp_conn conns[SFTP_POOL_MAX];
};

/* Read and check the config keys into pool->set and prepare the pool (no
 * connection yet).  A wrong key fails with a message naming the file,
 * the line and the fix. */
int sftp_pool_init(struct sftp_pool *pool, const struct sky_cloud_config *cfg,
                   struct sky_err *e);
/* Close every session and free the settings. */
void sftp_pool_destroy(struct sftp_pool *pool);

/* Take a session for this thread, connecting it if it is not connected.
 * Waits while all are busy (-EINTR when the caller's http_cancel asks).
 * -EHOSTDOWN when the server cannot be reached, -EACCES when the host key
 * or the credentials are refused. */
int sftp_pool_get(struct sftp_pool *pool, struct sftp_conn **out, struct sky_err *e);
/* The same, but a newly made connection (after one broke, the others
 * that sat idle may be just as dead). */
int sftp_pool_get_fresh(struct sftp_pool *pool, struct sftp_conn **out, struct sky_err *e);
/* Give it back; broken: its connection failed, close it. */
void sftp_pool_put(struct sftp_pool *pool, struct sftp_conn *c, bool broken);

/* Did the last failure of c come from a lost connection (not an answer)? */
bool sftp_conn_broken(struct sftp_conn *c);

/* The "SHA256:..." fingerprint of a public key (malloc'd), or NULL. */
char *sftp_key_fingerprint(ssh_key key);

#endif
