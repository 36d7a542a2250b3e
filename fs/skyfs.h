/*
 * skyfs.h - the filesystem core: what fs/ modules share, and the one entry
 * point tools/ calls to run a mount.
 *
 * A `struct skyfs` owns everything one mount needs: the config, the
 * metadata cache, the block cache, the clouds (each a driver plus its
 * context and health), and the table of open files.  fs/ops.c answers the
 * kernel with it (fs/refresh.c brings the metadata cache up to date for
 * it); fs/files.c keeps open files and uploads them; fs/clouds.c opens the
 * drivers and tracks each cloud's health; fs/liveness.c keeps requests
 * from waiting needlessly (interrupts, offline clouds, slow answers,
 * stopping); fs/xattr.c answers extended attributes; fs/upmeta.c chooses
 * the cloud metadata (content type, user metadata) each upload stores;
 * fs/times.c keeps the three POSIX times.
 *
 * fs/ never knows which kind of cloud it serves: it calls the driver table.
 */
#ifndef SKY_SKYFS_H
#define SKY_SKYFS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../backends/driver.h"
#include "../cache/blocks.h"
#include "../cache/meta.h"
#include "../lib/config.h"
#include "../lib/err.h"
#include "../lib/perm.h"
#include "mountopts.h"

struct crawler;
struct ofile;
struct refresh_job;
struct skyfs;
struct stream;
struct stream_pool;

/* One configured cloud at run time. */
struct cloud {
    const struct sky_cloud_config *cfg;
    const struct sky_driver *drv;
    void *ctx;                  /* driver context; NULL if open failed */
    uint64_t root_ino;
    struct sky_err open_err;    /* why the driver could not open */
    /* health: last network failure, for status and offline serving */
    pthread_mutex_t health_lock;
    bool offline;
    unsigned wb_active;         /* its background uploads running now (fs->wb_lock) */
    char offline_reason[256];
    long long probe_at;         /* offline: when to probe next (monotonic ms; health_lock) */
    long long probe_delay_ms;   /* offline: the probe's backoff (health_lock) */
    atomic_ullong requests;     /* driver calls made (for tests and status) */
    atomic_ullong probes;       /* probes of the cloud while offline (liveness.h) */
    struct skyfs *fs;           /* the mount it belongs to */
    char *health_path;          /* <cache>/health/<cloud>: read by skyfs status */
    struct conflicts *conflicts;/* conflicts with other machines (conflicts.h) */
};

struct fuse_session; /* fuse_lowlevel.h */
struct conflicts;    /* conflicts.h */

struct skyfs {
    struct sky_config *cfg;
    struct meta *meta;
    struct blocks *blocks;
    size_t nclouds;
    struct cloud *clouds;
    int64_t started_ns;         /* mount time: the root's and clouds' mtime */
    struct sky_shown shown;     /* owners and modes shown (perm.h, mount options) */
    pthread_mutex_t files_lock; /* guards the open-file and handle lists */
    struct ofile *files;
    struct fhandle *handles;    /* handles the kernel holds (freed at close if never released) */
    struct stream_pool *streams; /* uploads of files being written (stream.h) */
    struct virt *virt;          /* the hidden .skyfs directory (virtual.h) */
    /* Which version of a file the kernel's page cache last got from us, so
     * an unchanged file keeps its cached pages across opens (a small
     * direct-mapped table: a collision only costs a re-read). */
    pthread_mutex_t page_lock;
    struct { uint64_t ino; char etag[SKY_ETAG_MAX]; } page_versions[1024];
    char *mountpoint;           /* real path; "" when not mounted (skyfs index) */
    struct fuse_session *session; /* for notices to the kernel; NULL when not mounted */
    atomic_bool readahead_raised; /* the first open raised it (readahead.h) */
    pthread_t recovery_thread;
    bool recovery_started;
    pthread_mutex_t retry_lock; /* wakes the journal thread early to stop */
    pthread_cond_t retry_cond;
    bool retry_now;             /* a cloud is back: retry pending uploads now (retry_lock) */
    bool final_pass;            /* unmounting: one more pass, then stop (retry_lock) */
    long long retry_at_ms;      /* an upload at close or fsync failed: a pass is due at this
                                 * monotonic ms (0: none) (retry_lock) */
    /* renamelog.c: the renames an earlier daemon left recorded, read before
     * the journal thread starts, those not finished yet (that thread's) */
    struct meta_move *crashed_moves;
    size_t ncrashed_moves;
    atomic_bool stopping;
    enum atime_rule atime;      /* mount option: when reads move atime (times.c) */
    /* liveness.h: the probe thread and the refreshes running in the background */
    pthread_mutex_t live_lock;
    pthread_cond_t live_cond;   /* CLOCK_MONOTONIC */
    bool live_ready, live_stopping;
    struct refresh_job *live_jobs;
    pthread_t probe_thread;
    bool probe_started;
    /* commit.h: the thread that syncs the caches every few seconds */
    pthread_mutex_t commit_lock;
    pthread_cond_t commit_cond; /* CLOCK_MONOTONIC */
    bool commit_ready, commit_started, commit_stopping;
    pthread_t commit_thread;
    struct crawler *crawlers;   /* crawl.h: the background crawls, one per cloud, or NULL */
    struct aheadq *listahead;   /* listahead.h: subfolders listed ahead of a reader */
    struct openahead *openahead; /* openahead.h: files fetched ahead of a reader */
    /* writeback.c: the queue of background uploads (write_back = async) */
    pthread_mutex_t wb_lock;
    pthread_cond_t wb_cond;
    struct ofile *wb_head, *wb_tail; /* queued files, each holding a reference (wb_lock) */
    pthread_rwlock_t wb_tree;   /* read: a background upload runs; write: a directory rename */
    pthread_t wb_threads[SKY_MAX_UPLOAD_PARALLEL]; /* the upload workers */
    unsigned wb_nthreads;
    bool wb_started, wb_stopping;           /* wb_lock */
    bool wb_draining;           /* unmounting: upload what is queued, once (wb_lock) */
    unsigned wb_busy;           /* uploads running now (wb_lock) */
    size_t wb_failed_in_row;    /* uploads failed since the last success (wb_lock) */
    int wb_retry_s;             /* a failed upload's wait before its retry (wb_lock) */
    /* folders made on write_back = async clouds and not created there yet
     * (localdirs.h): flushed by a worker once wb_dirs_due_ms has come */
    bool wb_dirs_due;           /* wb_lock */
    int64_t wb_dirs_due_ms;     /* monotonic ms (wb_lock) */
    /* localdirs.h: the lock of ops that decide a folder is still
     * local-only (held exclusively, recursively, by one thread), and the
     * folder creations running beside each other without it */
    pthread_mutex_t localdirs_mu;
    pthread_cond_t localdirs_cond;
    pthread_t localdirs_owner;          /* while localdirs_depth > 0 */
    unsigned localdirs_depth;           /* the owner's nesting (localdirs_mu) */
    unsigned localdirs_waiting;         /* threads waiting to hold it (localdirs_mu) */
    unsigned localdirs_creating;        /* creations running (localdirs_mu) */
    struct localdirs_claim *localdirs_claims; /* folders being created now (localdirs_mu) */
};

/* ---- ops_names.c: hard links ------------------------------------------- */

/* File `ino` of cloud `cloud` changed to attributes a (an upload, a chmod):
 * its other names (a hard-linked file: a->file_id, nlink > 1) take them
 * too, and the kernel forgets what it cached of them. */
void skyfs_same_file_changed(struct skyfs *fs, const char *cloud, uint64_t ino,
                             const struct sky_attr *a);

/* ---- clouds.c --------------------------------------------------------- */

/* Open the caches and every cloud's driver for a mount at `mountpoint`
 * (absolute).  A cloud whose driver fails to open is kept, marked with its
 * error ("FILE:LINE: ..."); only cache failures are fatal.  (skyfs_mount
 * refuses such a cloud before, with skyfs_check_clouds; `skyfs index`
 * goes on with the others.) */
int skyfs_open(struct sky_config *cfg, const char *mountpoint, struct skyfs **out,
               struct sky_err *e);
void skyfs_close(struct skyfs *fs);

/* Open and close every cloud's driver, so that `skyfs config check` and
 * `skyfs mount` refuse settings that can never work (a missing local
 * path, a bad endpoint, malformed or missing credentials, an unreadable
 * ca_file) instead of a folder answering "Host is down": 0 or the first
 * failure, "FILE:LINE: ...".  Drivers do not touch the network to open,
 * so a cloud that is only unreachable passes (and is served offline). */
int skyfs_check_clouds(const struct sky_config *cfg, struct sky_err *e);

struct cloud *skyfs_cloud_by_name(struct skyfs *fs, const char *name);
/* Record the outcome of a driver call for the cloud's health: EHOSTDOWN
 * marks it offline (and gets it probed, liveness.h), an answer online. */
void cloud_note_result(struct cloud *c, int rc, const struct sky_err *e);
/* A probe reached the offline cloud c: mark it online. */
void cloud_mark_online(struct cloud *c);
/* 0 if c may be asked now; -EHOSTDOWN (e filled) while it is offline:
 * the caller answers from the cache without the network. */
int cloud_offline_check(struct cloud *c, struct sky_err *e);
/* Nothing may be asked of c now: it did not open, or it is offline (for
 * work done ahead of a reader, which is then simply not done). */
bool cloud_unreachable(struct cloud *c);

/* The health file of a cloud: one line, "online", "offline: REASON" or
 * "unavailable: REASON", written by the daemon when the state changes. */
char *cloud_health_path(const char *cache_dir, const char *cloud);

/* The error every call inside a cloud whose driver did not open gets
 * (-EACCES or -EHOSTDOWN, with the saved reason). */
int cloud_unavailable(const struct cloud *c, struct sky_err *e);
/* 0 if the cloud takes changes; else -EPERM (the root: c NULL), the
 * unavailable error, or -EROFS for a read_only cloud. */
int cloud_check_writable(const struct cloud *c, struct sky_err *e);

/* After a conditional call: record how the cloud checks preconditions
 * (its driver's guarantee(); without one, fs/ compares) for skyfs status. */
void cloud_note_guarantee(struct cloud *c);

/* Current wall-clock time in ns. */
int64_t skyfs_now(void);
/* true if something fetched at `at` (0 = never) is still within `ttl`. */
bool skyfs_fresh(int64_t at, int64_t ttl);
/* true if a refresh that failed with rc leaves the cached answer the
 * best one: the cloud is offline (-EHOSTDOWN) or slow (-ETIMEDOUT), or
 * the metadata cache cannot take the news (-ENOSPC: its disk is full). */
bool skyfs_serve_cached(int rc);

/* ---- files.c: open files and uploads ---------------------------------- */

struct ofile {
    uint64_t ino;
    struct cloud *cloud;
    struct blocks_obj *obj;
    int refs;                   /* open handles (guarded by files_lock) */
    pthread_mutex_t lock;       /* serialises writes, truncates, uploads */
    bool unlinked;              /* deleted (or replaced) while open: never upload */
    struct sky_attr orphan;     /* once unlinked: its attributes (of->lock) */
    int64_t mtime_ns;           /* mtime the next upload records (of->lock) */
    int64_t ctime_ns;           /* ctime likewise (of->lock) */
    int64_t atime_ns;           /* atime as last shown or moved by a read (of->lock) */
    char etag[SKY_ETAG_MAX];    /* cloud version the cached bytes came from */
    struct stream *stream;      /* its upload while being written, or NULL (of->lock) */
    struct ofile *next;
    /* One upload of the file at a time: taken before `lock` by every
     * upload, and by a rename, removal or attribute change of the file,
     * so that none of them lands in the middle of a background upload. */
    pthread_mutex_t upload_lock;
    bool upload_due;            /* write_back = async: closed after writes, upload due (lock) */
    bool written;               /* written or truncated since files_closed_written last made
                                 * it durable (lock): a close without new writes (release
                                 * after flush) need not fsync again */
    bool held;                  /* written here: meta_hold'ed until the last close (lock) */
    bool meta_unsynced;         /* made here, or attributes set on it while open: its next
                                 * async close syncs the metadata cache too (commit.h; lock) */
    bool read_past_cache;       /* read straight from the cloud once (files_read_uncached;
                                 * the log said so) (lock) */
    bool queued;                /* in the write-back queue (fs->wb_lock) */
    struct ofile *wb_next;      /* the write-back queue (fs->wb_lock) */
    int64_t wb_due_ms;          /* queued: not uploaded before this (monotonic ms; wb_lock) */
};

/* One open file description (a FUSE file handle, fi->fh): its file, and
 * whether it changed the file (wrote, truncated), so that closing a
 * descriptor that only read uploads nothing (an upload left pending by a
 * writer stays with the journal). */
/* A file opened for reading while the block cache could not take it (its
 * disk full): read straight from the cloud (files_read_direct). */
struct direct_src {
    struct cloud *cloud;
    char etag[SKY_ETAG_MAX];
    char path[];
};

struct fhandle {
    struct ofile *of;           /* NULL for a virtual file (.skyfs/metrics), or direct */
    struct direct_src *direct;  /* or NULL */
    atomic_bool wrote;
    bool made;                  /* by its create: goes up at its release, even unwritten */
    char *virt_text;            /* a virtual file: its text as of the open */
    size_t virt_len;
    struct fhandle *prev, *next; /* fs->handles (files_lock) */
};

/* ops.c: gives fi->fh to h and lists it in fs->handles; frees a listed
 * handle; frees (closing their files) the handles the kernel never
 * released, for skyfs_close once no request runs. */
void handle_link(struct skyfs *fs, struct fhandle *h);
void handle_free(struct skyfs *fs, struct fhandle *h);
void handles_free_all(struct skyfs *fs);

/* Find-or-create the open file for an entry (refcounted). */
int files_open(struct skyfs *fs, const struct meta_entry *ent, struct ofile **out,
               struct sky_err *e);
void files_close(struct skyfs *fs, struct ofile *of);
/* files_open of a file just made here (a deferred create): its cached
 * object, when new, starts empty and journaled (blocks_get_new). */
int files_open_new(struct skyfs *fs, const struct meta_entry *ent, struct ofile **out,
                   struct sky_err *e);
/* The open file for an inode, if any (adds a reference: files_close it). */
struct ofile *files_find(struct skyfs *fs, uint64_t ino);
/* Bring the whole of file `ent` of cloud c (its cloud version, ent's etag)
 * into the block cache, unless it is there already, holds local writes
 * or is open (its readers fetch it themselves).  For fs/openahead.c:
 * 1 when it was fetched, 0 when it was left alone, else the fetch's
 * failure (-ESTALE: the cloud holds another version now). */
int files_fetch_whole(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                      struct sky_err *e);

/* Read [off, off+len): on success emit(emit_arg, ...) got the bytes where
 * they sit in the cache file (see blocks_emit_fn); on failure it was not
 * called. */
int files_read(struct skyfs *fs, struct ofile *of, uint64_t off, size_t len,
               blocks_emit_fn emit, void *emit_arg, struct sky_err *e);
/* files_read failed with -ESTALE: the cloud holds another version than the
 * one the file was opened at (its cached entry was older than the cloud's
 * object, within the ttl).  When nothing of that version is here (no byte
 * cached or written, so no reader saw one), the file takes the cloud's
 * version: its entry is asked again and its object and open version move
 * to it; 0 (read again; the kernel's attributes are stale), else -ESTALE
 * or the refresh's error. */
int files_take_newer(struct skyfs *fs, struct ofile *of, struct sky_err *e);
/* Reads that bypass the block cache, for when it cannot take a file (its
 * disk is full: -ENOSPC): [off, off+len) of the file straight from the
 * cloud into buf, *got bytes (fewer only at the end of the file).
 * files_read_direct reads version `etag` of `path` (-ESTALE once the
 * cloud holds another); files_read_uncached the version an open file's
 * cached bytes came from, and fails with -ENOSPC when it holds writes not
 * uploaded yet (those are only in the cache). */
int files_read_direct(struct cloud *c, const char *path, const char *etag, uint64_t off,
                      size_t len, char *buf, size_t *got, struct sky_err *e);
int files_read_uncached(struct ofile *of, uint64_t off, size_t len, char *buf, size_t *got,
                        struct sky_err *e);
/* Write `len` bytes at off, put into the cache file by copy(copy_arg, ...)
 * (see blocks_copy_fn). */
int files_write(struct skyfs *fs, struct ofile *of, uint64_t off, size_t len, blocks_copy_fn copy,
                void *copy_arg, struct sky_err *e);
int files_truncate(struct skyfs *fs, struct ofile *of, uint64_t size, struct sky_err *e);
/* Upload if dirty (fsync; close on a write_back = sync cloud).  Returns
 * the upload's error, if any.  Waits for a background upload of the file
 * that is running. */
int files_sync(struct skyfs *fs, struct ofile *of, struct sky_err *e);
/* files_sync with of->upload_lock already held (files_hold_upload). */
int files_sync_held(struct skyfs *fs, struct ofile *of, struct sky_err *e);
/* A descriptor that wrote is closed (flush, release; a truncate(2) by
 * path).  write_back = sync: files_sync.  async: make the file durable in
 * the cache (every block present, the cache file and the journal
 * fsynced), show its local size and mtime in the metadata cache, and
 * queue its upload (writeback.c); an error only when the bytes cannot be
 * made complete locally (a missing block that cannot be fetched). */
int files_closed_written(struct skyfs *fs, struct ofile *of, struct sky_err *e);
/* The background upload of a queued file (writeback.c): 0 when it is on
 * the cloud or has nothing left to upload (deleted, clean); *again when
 * it was closed after new writes meanwhile (queue it again).  On failure
 * the file stays due and in the journal. */
int files_upload_queued(struct skyfs *fs, struct ofile *of, bool *again, struct sky_err *e);
/* The open file of `ino` (NULL when it is neither open nor queued for
 * upload), its upload_lock taken: no upload of it runs until
 * files_release_upload.  For renames, removals and attribute changes. */
struct ofile *files_hold_upload(struct skyfs *fs, uint64_t ino);
/* Has `of` content that is still to be uploaded (written and not sent,
 * queued, or failed and kept in the journal)?  Then its upload carries
 * attribute changes (write_back = async).  Call with its upload_lock held
 * (files_hold_upload), so that no upload of it runs meanwhile. */
bool files_upload_pending(struct ofile *of);
void files_release_upload(struct skyfs *fs, struct ofile *of);
/* true if the kernel may keep its cached pages of this file: it last read
 * the same version.  Records `etag` as the version it has now. */
bool files_page_cache_valid(struct skyfs *fs, uint64_t ino, const char *etag);

/* The entry `ent` (a file) is about to be removed from its cloud, or
 * replaced there by a rename, while open: make every block of its content
 * present in the cache, so that its open descriptors keep reading it, and
 * remember its attributes.  0 when it is not open; an error when its
 * content cannot be fetched (then nothing must be removed). */
int files_keep_open(struct skyfs *fs, const struct meta_entry *ent, struct sky_err *e);
/* Mark every open file of this inode as deleted: it is never uploaded,
 * reads and writes go on in the cache until the last close, and
 * files_orphan answers for it. */
void files_mark_unlinked(struct skyfs *fs, uint64_t ino);
/* An inode that is gone from the metadata cache but still open (unlinked
 * or replaced while open): *out gets an entry with its attributes (only
 * ino, attr and fetched_at are set; free it with meta_entry_free) and
 * *of the open file (a reference: files_close it).  -ENOENT otherwise. */
int files_orphan(struct skyfs *fs, uint64_t ino, struct meta_entry *out, struct ofile **of);

/* The journal thread: uploads every object the journal lists as dirty
 * and not open here (left by a crash, or whose upload at close failed),
 * at mount and then again every 30 s, backing off from 5 s to 5 min while
 * uploads keep failing, and at once when an offline cloud is back
 * (retry_now).  skyfs_close stops it after one last pass (final_pass),
 * so that an unmount tries every pending upload once more. */
void files_start_recovery(struct skyfs *fs);
/* An upload at close or fsync failed and stays in the journal: have the
 * journal's next pass come within FILES_RETRY_SOON_MS, not at its next
 * look (every 30 s while nothing fails). */
#define FILES_RETRY_SOON_MS 5000
void files_retry_soon(struct skyfs *fs);

/* ---- writeback.c: background uploads (write_back = async) ----------------- */

/* Start and stop the upload workers (as many as the largest
 * upload_parallel of a write_back = async cloud).  Stopping first uploads
 * what is queued (settled or not; a file whose upload fails is not
 * retried), then releases the queued files; uploads not done stay in the
 * journal (the next mount's journal thread uploads them). */
int writeback_start(struct skyfs *fs, struct sky_err *e);
void writeback_stop(struct skyfs *fs);
/* Queue the background upload of `of` (a reference is taken); a file
 * already queued is not queued twice (its closes coalesce).  Its upload
 * starts no sooner than its cloud's write_back_delay from now, so that
 * attribute changes right after the close go up with it. */
void writeback_queue(struct skyfs *fs, struct ofile *of);
/* A cloud came back: retry failed uploads now, not after the backoff. */
void writeback_kick(struct skyfs *fs);
/* A folder was made on write_back = async cloud c without the cloud
 * (localdirs.h): a worker creates the folders still local-only after c's
 * write_back_delay (those a file's upload did not create first). */
void writeback_dirs_due(struct skyfs *fs, struct cloud *c);
/* Around a directory rename: no background upload runs in between. */
void writeback_pause(struct skyfs *fs);
void writeback_resume(struct skyfs *fs);

/* ---- times.c: atime, mtime, ctime ----------------------------------------- */

/* The times stat shows for ent (defaults for those its attr lacks). */
void times_shown(const struct skyfs *fs, const struct meta_entry *ent, int64_t *mtime,
                 int64_t *atime, int64_t *ctime);
/* Give a (attributes of ent, maybe changed) every time ent lacks, as
 * shown now, with its has bit. */
void times_fix(const struct skyfs *fs, const struct meta_entry *ent, struct sky_attr *a);
/* Set the times of entry ino named by `which` (SKY_HAS_MTIME/ATIME/CTIME)
 * to `now` in the metadata cache. */
int times_touch(struct skyfs *fs, uint64_t ino, unsigned which, int64_t now);
/* meta_rename_ex of entry ino to (newparent, newname) from folder parent,
 * with what a rename moves in the same commit: the entry's ctime, both
 * folders' mtime and ctime (now); onto_etag as meta_rename_ex's. */
int times_rename(struct skyfs *fs, uint64_t ino, uint64_t parent, uint64_t newparent,
                 const char *newname, const char *onto_etag, struct sky_err *e);
/* meta_upsert_local of a new entry in folder parent, with what a create
 * moves in the same commit: the folder's mtime and ctime (now). */
int times_create_local(struct skyfs *fs, uint64_t parent, const char *name,
                       const struct sky_attr *attr, const struct sky_objmeta *om, uint64_t *ino,
                       struct sky_err *e);
/* The atime stat shows for ino now (0 if unknown). */
int64_t times_atime(struct skyfs *fs, uint64_t ino);
/* ino's cloud metadata changed (an xattr): its ctime is now, and its
 * atime not earlier than atime_before (taken before the change; an object
 * store may have given the object a new version, whose stored atime the
 * cache would otherwise take). */
void times_meta_changed(struct skyfs *fs, uint64_t ino, int64_t atime_before);
/* An entry was created in, removed from or renamed into or out of
 * directory `dir`: its mtime and ctime are now. */
void times_dir_changed(struct skyfs *fs, uint64_t dir);
/* The relatime rule: does a read at `now` move this atime? */
bool times_relatime_due(int64_t atime, int64_t mtime, int64_t ctime, int64_t now);
/* Directory dir is being listed: move its atime when the rule says so
 * (in the cache only).  true when it moved. */
bool times_dir_read(struct skyfs *fs, const struct meta_entry *dir);
/* Would a read of open file of move its atime now?  sky_open then lets
 * the kernel drop its cached pages, so that the read reaches us. */
bool times_access_due(struct skyfs *fs, struct ofile *of);
/* A read of open file of: move its atime when the rule says so (in the
 * cache only).  true when it moved (the kernel's copy is then stale). */
bool times_accessed(struct skyfs *fs, struct ofile *of);

/* ---- upmeta.c: the cloud metadata of uploads ---------------------------- */

/* The metadata a new file at `path` is created with: a content type from
 * its name (when the cloud's objects carry one), no user items (has_user
 * true).  Free with sky_objmeta_free. */
void upmeta_for_new(const struct cloud *c, const char *path, struct sky_objmeta *out);

/* The metadata an upload of `ent` (the file at `path`; ent->ino 0 when the
 * cache has no entry) sends, so that a rewrite keeps what the object had:
 * content type and user items from the cache, else from one get_meta call
 * when the object exists (non-empty etag) and the cache does not know its
 * user metadata.  When that call fails for a reason that may pass (the
 * cloud unreachable, a server error) this fails with its errno and e
 * filled, and nothing is to be uploaded now (the journal retries later);
 * -ENOENT means nothing to keep, a refusal (EACCES) is logged and the
 * upload goes on with what the cache has.  A file without a known content
 * type gets one from its name.  Out of memory gives less metadata, not an
 * error.  On 0, has_user is true; free with sky_objmeta_free (on error
 * *out holds nothing). */
int upmeta_for_upload(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                      const char *path, struct sky_objmeta *out, struct sky_err *e);

/* After a successful upload: record the new attributes of inode `ino` and
 * the metadata sent with it (om) in the cache.  Errors are logged (an
 * unknown inode is ignored). */
void upmeta_record(struct skyfs *fs, uint64_t ino, const struct sky_attr *attr,
                   const struct sky_objmeta *om);

/* ---- xattr.c: extended attributes --------------------------------------- */

/* The extended attributes of inode `ino` (not the root, not virtual), for
 * fs/ops.c.  User metadata ("user.KEY") and the read-only
 * user.skyfs.etag / user.skyfs.content_type / user.skyfs.storage_class
 * come from the metadata cache while its copy is fresh (the cloud's ttl),
 * else from the driver's get_meta, whose answer is stored; offline, the
 * cache answers.  Changes go to the driver, then the cache is refreshed at
 * once so that `skyfs search --meta` sees them.  Setting or removing a
 * user.skyfs.* attribute above is accepted and changes nothing (cp -a,
 * rsync -X).
 * Sizes follow getxattr(2): size 0 only reports *len; a smaller buffer is
 * -ERANGE.  -ENOTSUP when the cloud has no xattrs (or ino is the root). */
int xattr_get(struct skyfs *fs, uint64_t ino, const char *name, void *buf, size_t size,
              size_t *len, struct sky_err *e);
int xattr_list(struct skyfs *fs, uint64_t ino, char *buf, size_t size, size_t *len,
               struct sky_err *e);
int xattr_set(struct skyfs *fs, uint64_t ino, const char *name, const void *value, size_t size,
              int flags, struct sky_err *e);
int xattr_remove(struct skyfs *fs, uint64_t ino, const char *name, struct sky_err *e);

/* ---- mount.c ---------------------------------------------------------- */

struct mount_options {
    const char *mountpoint;
    bool foreground;
    bool debug;
    const char *log_file;
    struct mountopts o;         /* -o options (mountopts.h) */
    const char *source;         /* the config's real path, for fsname (set by skyfs_mount) */
};


/* The largest read and write the kernel may send (max_read, max_write):
 * 1 MiB where this process may make a pipe larger than 1 MiB, else 512
 * KiB.  Request data moves through a pipe by splice (read replies from the
 * cache file, written bytes into it), and the pipe must hold the data and
 * a header page; most systems cap pipes at 1 MiB (fs.pipe-max-size) for
 * processes without CAP_SYS_RESOURCE, so 1 MiB requests would be copied
 * through memory instead, which made warm reads 1.7x slower. */
unsigned skyfs_request_size(void);

/* Mount and serve until unmounted.  When not in the foreground, forks; the
 * parent returns 0 only once the mount is ready, or an error.  */
int skyfs_mount(struct sky_config *cfg, const struct mount_options *opt, struct sky_err *e);

/* The FUSE operations (ops.c); mounts use liveness_ops(), which wraps
 * them (liveness.h). */
struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops skyfs_core_ops;

#endif
