/*
 * tools.h - subcommands of the `skyfs` command that live in their own
 * files.  Each takes argc/argv starting at its own name and returns the
 * process exit code.
 */
#ifndef SKY_TOOLS_H
#define SKY_TOOLS_H

int cmd_status(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_metrics(int argc, char **argv);

/* unmount.c: unmount MOUNTPOINT and wait up to timeout_s seconds (0: no
 * bound) for its daemon to finish pending uploads and exit. */
#define UNMOUNT_DEFAULT_TIMEOUT_S 300
int unmount_and_wait(const char *mountpoint, int timeout_s);

#endif
