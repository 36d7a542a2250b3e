/*
 * sdnotify.h - telling systemd how the daemon is doing (the sd_notify
 * protocol: one datagram of "KEY=VALUE" lines to the AF_UNIX socket named
 * by $NOTIFY_SOCKET, '@' at its start meaning the abstract namespace).
 * No libsystemd needed.  Without $NOTIFY_SOCKET nothing is sent.
 *
 * Used by fs/mount.c: READY=1 once the mount answers (Type=notify units
 * start what needs the mount after it), STOPPING=1 when it unmounts.
 */
#ifndef SKY_SDNOTIFY_H
#define SKY_SDNOTIFY_H

/* Send `state` ("READY=1\nSTATUS=...").  0 when sent or when there is no
 * $NOTIFY_SOCKET; -errno when sending failed. */
int sky_sd_notify(const char *state);

#endif
