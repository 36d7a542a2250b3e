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

#endif
