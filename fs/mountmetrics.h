/*
 * mountmetrics.h - a mount's metrics: what fs/ adds to lib/metrics.h's
 * counters at each render (each cloud's health and driver calls, the
 * block cache's size, limit, hits and misses, the uploads pending in the
 * journal), and the optional HTTP listener Prometheus scrapes
 * (`metrics_listen = IP:PORT` in [daemon]): GET /metrics answers the same
 * text as MOUNTPOINT/.skyfs/metrics.
 *
 * The listener is one thread that answers one connection at a time, each
 * bounded in time (a client that sends nothing for 5 s is dropped), and
 * serves nothing but the metrics (no file content, no secret).
 *
 * Called by fs/mount.c: mountmetrics_start after skyfs_open,
 * mountmetrics_stop before skyfs_close.
 */
#ifndef SKY_MOUNTMETRICS_H
#define SKY_MOUNTMETRICS_H

#include "../lib/err.h"

struct skyfs;

/* Register fs's collector and, when `listen` is set ("IP:PORT", checked
 * by the config loader), start the listener: 0, or -errno with e naming
 * the address (in use, not ours...). */
int mountmetrics_start(struct skyfs *fs, const char *listen, struct sky_err *e);
/* Stop the listener and remove the collector (waits for a render in
 * progress).  Safe when start failed or was not called. */
void mountmetrics_stop(struct skyfs *fs);

#endif
