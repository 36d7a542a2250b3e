/*
 * liveness.h - no unkillable or needless waits: interrupted requests,
 * offline clouds, slow answers, and stopping on a signal.
 *
 * - Interrupts.  liveness_ops() is the FUSE operations table the session
 *   runs: fs/ops.c's table (skyfs_core_ops) with every operation that may
 *   go to the network wrapped.  The wrapper names, for its thread, a
 *   cancel flag of the HTTP layer (http_cancel_set) and registers a FUSE
 *   interrupt function: when the kernel interrupts the request because
 *   its process is being killed (a fatal signal is pending for it; see
 *   /proc/PID/status), the transfer in flight is cancelled, the
 *   operation fails with EINTR at once and the process can die.  An
 *   interrupt for a signal the process catches leaves the request alone
 *   (POSIX does not let stat or read fail with EINTR there), but its
 *   process is watched from then on (the kernel interrupts a request only
 *   once), and cancelled as soon as it is being killed.
 *
 * - Offline clouds.  A cloud is marked offline when a call reports
 *   EHOSTDOWN (clouds.c).  While it is, fs/ answers from the cache at
 *   once, without asking it (cloud_offline_check), and one background
 *   thread per mount probes each offline cloud (a stat of a name that
 *   need not exist; any answer at all means reachable), 1 s after it
 *   went offline, then backing off to every 16 s.  A probe that answers
 *   marks the cloud online and wakes the journal thread, so pending
 *   uploads go up at once.
 *
 * - Slow answers.  liveness_refresh_bounded runs a refresh of expired
 *   metadata on a thread of its own and waits for it at most
 *   LIVENESS_SLOW_MS: a slower refresh goes on in the background (and
 *   updates the cache when it ends) while the caller answers from the
 *   cache it has.
 *
 * - Signals.  liveness_stop_on_signals makes SIGTERM, SIGINT and SIGHUP
 *   cancel every transfer (http_cancel_all) before libfuse's own handler
 *   ends the session loop, so the daemon stops in bounded time even with
 *   a hung server; uploads cut short stay in the journal for the next
 *   mount.
 *
 * Used by fs/mount.c (ops table, signals), fs/clouds.c (probe thread)
 * and fs/ops.c (bounded refreshes).
 */
#ifndef SKY_LIVENESS_H
#define SKY_LIVENESS_H

#include <stdbool.h>

#include "skyfs.h"

/* How long a refresh of metadata the cache still holds may keep the
 * caller waiting before the cached answer is given. */
#define LIVENESS_SLOW_MS 1500

struct fuse_lowlevel_ops;
struct fuse_session;

/* The operations table to mount with (built once, on first call). */
const struct fuse_lowlevel_ops *liveness_ops(void);

/* After fuse_set_signal_handlers(se): chain the transfer cancel in front
 * of libfuse's handlers.  0 or -errno. */
int liveness_stop_on_signals(void);

/* Start and stop the probe thread (skyfs_open / skyfs_close). */
int liveness_start(struct skyfs *fs, struct sky_err *e);
void liveness_stop(struct skyfs *fs);
/* clouds.c calls it when a cloud goes offline: probe it soon. */
void liveness_cloud_went_offline(struct skyfs *fs, struct cloud *c);

/* A refresh: does the network call and updates the cache; its result is
 * an errno as usual.  `arg` is owned by the job: free_arg(arg) is called
 * once the refresh is over, whether the caller waited for it or not. */
typedef int (*liveness_refresh_fn)(struct skyfs *fs, void *arg, struct sky_err *e);

/* Run refresh(fs, arg) and wait for it at most LIVENESS_SLOW_MS.  Returns
 * its result, or -ETIMEDOUT when it is still running (it then finishes in
 * the background; the caller answers from the cache).  `key` names what
 * is refreshed (an inode number and a kind, see LIVENESS_KEY; 0: no
 * name): while a refresh of the same key runs, another is not started;
 * the caller waits for the running one, up to LIVENESS_SLOW_MS after it
 * began (so at once when it is slow already).  When a thread
 * cannot be started, it runs here.  An interrupt of the calling request
 * (see above) ends the wait with -EINTR. */
int liveness_refresh_bounded(struct skyfs *fs, uint64_t key, liveness_refresh_fn refresh,
                             void *arg, void (*free_arg)(void *), struct sky_err *e);
/* The same without waiting (stale-while-revalidate, issue 17): starts the
 * refresh unless one of `key` runs already, and returns at once: the
 * refresh's result when it is already over, else -ETIMEDOUT (the caller
 * answers from the cache; the refresh updates it when it ends). */
int liveness_refresh_background(struct skyfs *fs, uint64_t key, liveness_refresh_fn refresh,
                                void *arg, void (*free_arg)(void *), struct sky_err *e);
#define LIVENESS_KEY(ino, kind) (((uint64_t)(ino) << 2) | (uint64_t)(kind))
enum { LIVENESS_ATTR = 1, LIVENESS_LISTING = 2, LIVENESS_FETCH = 3 };

#endif
