/*
 * spares.h - empty data files made ahead of need (private to cache/).
 *
 * Creating a file allocates an inode, and on some filesystems that is
 * slow: ext4 without a journal checks each candidate inode against the
 * recently deleted ones, which after some churn costs 0.2-0.5 ms a file,
 * on the path of every create (tar, git and rsync make thousands).  So a
 * background thread keeps a few empty files in <cache>/spare/, and a new
 * object's data file is one of them, renamed into place (about 15 us, no
 * inode made).  When none is ready the caller creates the file itself, as
 * before.  Spares left by an earlier process are taken over (an empty
 * file is an empty file); anything else found there is deleted.  The
 * thread starts at the first take, so a process that only reads the cache
 * (skyfs status) makes none.
 *
 * Used by blocks.c (blocks_create, blocks_open/close).  Thread-safe.
 */
#ifndef SKY_SPARES_H
#define SKY_SPARES_H

struct spares;

/* The spares of the cache at cache_dir (nothing is made yet); NULL when
 * out of memory, and then spares_take and spares_free take NULL too. */
struct spares *spares_new(const char *cache_dir);

/* Make `file` an empty file from a spare: its descriptor (O_RDWR,
 * O_CLOEXEC; a file there before is replaced), or -1 when no spare is
 * ready or the move failed (the caller creates the file). */
int spares_take(struct spares *s, const char *file);

/* Stop the thread and free; the spares stay for the next process. */
void spares_free(struct spares *s);

#endif
