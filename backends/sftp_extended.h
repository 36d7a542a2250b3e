/*
 * sftp_extended.h - OpenSSH SFTP extensions that libssh 0.10 does not
 * send: posix-rename@openssh.com (a rename that replaces its target
 * atomically, as rename(2) does) and lsetstat@openssh.com (owner and
 * times of a symlink itself: SETSTAT follows links).
 *
 * libssh 0.10 has no call for an arbitrary EXTENDED request, and its own
 * sftp_rename sends a plain RENAME, which OpenSSH refuses when the target
 * exists.  So each pooled session gets, when first needed, a second SFTP
 * channel on the same SSH connection that speaks just enough of the
 * protocol (INIT/VERSION, then EXTENDED requests answered by STATUS) for
 * these requests.  It is used by the thread that holds the session, like
 * the session itself.
 *
 * Used by backends/sftp_session.c (closing) and backends/sftp.c.
 */
#ifndef SKY_SFTP_EXTENDED_H
#define SKY_SFTP_EXTENDED_H

#include <libssh/libssh.h>
#include <stdbool.h>
#include <stdint.h>

struct sftp_ext_channel;

/* posix-rename@openssh.com of server path `from` to `to` over *ch (opened
 * on ssh when *ch is NULL).  Returns the SFTP status code (SSH_FX_OK = 0,
 * SSH_FX_FAILURE...), or -1 when the channel failed (the connection is
 * then suspect; *ch is closed and NULL). */
int sftp_ext_posix_rename(ssh_session ssh, struct sftp_ext_channel **ch, int timeout_ms,
                          const char *from, const char *to);

/* What lsetstat sets: the owner and/or the times (SFTP v3: whole seconds,
 * atime and mtime together). */
struct sftp_ext_attrs {
    bool set_owner, set_times;
    uint32_t uid, gid;
    uint32_t atime, mtime;
};

/* lsetstat@openssh.com of server path `path`; returns as
 * sftp_ext_posix_rename. */
int sftp_ext_lsetstat(ssh_session ssh, struct sftp_ext_channel **ch, int timeout_ms,
                      const char *path, const struct sftp_ext_attrs *a);

/* Close and free; NULL is fine. */
void sftp_ext_close(struct sftp_ext_channel *ch);

#endif
