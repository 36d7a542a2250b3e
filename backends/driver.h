/*
 * driver.h - the one interface every cloud kind implements.
 *
 * fs/ and cache/ talk to clouds only through a `struct sky_driver`; nothing
 * outside backends/ knows whether a cloud is S3, Azure or a local folder.
 * Like curl's Curl_handler and SQLite's sqlite3_io_methods, this header is
 * the contract: a new backend can be written from it alone.  An object
 * cloud (S3-like: containers, keys, user metadata) need not implement it
 * at all: backends/objstore.h implements it once over a small protocol
 * table, and the cloud's module only speaks its protocol.
 *
 * PATHS.  Every path a driver receives is relative to the cloud's root:
 * no leading or trailing slash, components joined by '/', "" for the root
 * itself.  The driver adds its own bucket, container or prefix.  Paths are
 * already valid file names (fs/ never passes "." or ".." or empty parts).
 *
 * ERRORS.  Every call returns 0 or a negative errno and, on failure, fills
 * `e` with one sentence that names the cloud, the path and the remote error
 * ("s3 'photos': GET a.txt: 403 AccessDenied").  Mapping: not found ->
 * ENOENT; forbidden -> EACCES; exists -> EEXIST; directory not empty ->
 * ENOTEMPTY; unreachable or timed out after retries -> EHOSTDOWN (fs/ then
 * serves the cache); anything else from the server -> EIO; a call whose
 * requests were cancelled -> EINTR (fs/ names a struct http_cancel for its
 * thread with http_cancel_set, backends/http.h; network drivers honour it
 * in every request, also in the helper threads of parallel_for).  Secrets
 * never appear in messages.
 *
 * THREADS.  fs/ calls a driver from many threads at once, with the same
 * ctx.  A driver protects its own shared state; calls must not block each
 * other needlessly (one slow request must not stall the rest).
 *
 * METADATA.  POSIX mode/uid/gid and the three times (mtime, atime, ctime)
 * travel in `struct sky_attr`; a driver stores them the way its peers do
 * (s3fs/rclone user metadata on object stores: x-amz-meta-atime/-ctime
 * beside -mtime, the same names on Azure; the real inode on local/SFTP)
 * and reports in `has` which ones it found.  fs/ fills defaults for the
 * rest (atime and ctime default to mtime).  Object stores store atime and
 * ctime only when they write an object's metadata anyway (an upload,
 * chmod, utime); fs/ keeps them in its cache otherwise, so a read never
 * costs an upload.
 *
 * CLOUD METADATA.  What a cloud keeps about an object besides those
 * attributes - its content type, its storage class (tier) and its user
 * metadata - travels in `struct sky_objmeta`: in listings that carry it
 * (sky_dirent.meta) and from get_meta.  User metadata is what the xattr
 * calls show as "user.KEY"; the POSIX fields stored as metadata (mode, uid,
 * gid, mtime, atime, ctime, btime and the like) are never part of it.  The
 * metadata cache keeps all of it as the search index (`skyfs search
 * --meta`).
 *
 * NEW OBJECTS' METADATA.  write() and upload_begin() take the cloud
 * metadata the new object is stored with (`meta`, may be NULL = none):
 * its content type (NULL = the driver's default,
 * "application/octet-stream" on object stores) and its user items
 * (meta->user[], by the names get_meta reports; has_user is ignored, the
 * items given are the whole set).  The storage class is never set: the
 * bucket's or account's default applies.  A driver stores the items it
 * can and skips the others (a name or value the protocol cannot carry;
 * items past the protocol's size limit, with a warning in the log that
 * names them): metadata never makes an upload fail.  `meta` need only live during the call; a driver copies
 * what it keeps.  fs/ passes the metadata of the object being replaced
 * (so a rewrite keeps it, as s3fs and rclone do) or, for a new file, a
 * content type from its name.  A driver whose objects carry no content
 * type (SKY_CAP_CONTENT_TYPE unset) ignores meta->content_type; one that
 * keeps user metadata some other way (local: the old file's xattrs are
 * carried over) may ignore the items.
 */
#ifndef SKY_DRIVER_H
#define SKY_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "../lib/err.h"

struct sky_cloud_config; /* lib/config.h */

/* What a path is.  The special kinds (FIFO, socket, character and block
 * device) have no content: mknod() makes them (on object stores an empty
 * object whose stored mode carries the type, as s3fs stores them). */
enum sky_kind {
    SKY_FILE = 1, SKY_DIR = 2, SKY_LINK = 3,
    SKY_FIFO = 4, SKY_SOCK = 5, SKY_CHR = 6, SKY_BLK = 7
};

/* Is k one of the special kinds (made by mknod, no content)? */
static inline bool sky_kind_special(int k)
{
    return k >= SKY_FIFO && k <= SKY_BLK;
}

/* The S_IF* type bits of kind k (S_IFREG for a file or an unknown kind). */
static inline uint32_t sky_kind_type_bits(int k)
{
    switch (k) {
    case SKY_DIR: return S_IFDIR;
    case SKY_LINK: return S_IFLNK;
    case SKY_FIFO: return S_IFIFO;
    case SKY_SOCK: return S_IFSOCK;
    case SKY_CHR: return S_IFCHR;
    case SKY_BLK: return S_IFBLK;
    default: return S_IFREG;
    }
}

/* The kind whose type bits st_mode `mode` has, or 0 for none. */
static inline int sky_kind_of_mode(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return SKY_FILE;
    case S_IFDIR: return SKY_DIR;
    case S_IFLNK: return SKY_LINK;
    case S_IFIFO: return SKY_FIFO;
    case S_IFSOCK: return SKY_SOCK;
    case S_IFCHR: return SKY_CHR;
    case S_IFBLK: return SKY_BLK;
    default: return 0;
    }
}

/* Bits of sky_attr.has, and of the `which` argument to set_attr. */
#define SKY_HAS_MODE  0x1u
#define SKY_HAS_UID   0x2u
#define SKY_HAS_GID   0x4u
#define SKY_HAS_MTIME 0x8u
#define SKY_HAS_ATIME 0x10u
#define SKY_HAS_CTIME 0x20u

#define SKY_ETAG_MAX 128

/* What a driver knows about one file, directory or symlink. */
struct sky_attr {
    enum sky_kind kind;
    uint64_t size;          /* bytes; 0 for directories */
    int64_t mtime_ns;       /* modification time, ns since the epoch */
    int64_t atime_ns;       /* last access, ns since the epoch */
    int64_t ctime_ns;       /* last change of content or attributes */
    uint32_t mode;          /* permission bits only (07777) */
    uint32_t uid, gid;
    unsigned has;           /* SKY_HAS_* bits: which of the fields above are real */
    uint64_t rdev;          /* SKY_CHR/SKY_BLK: the device number (makedev()); else 0 */
    /* Names the object has, where the cloud keeps count (a local file's or
     * directory's st_nlink); 0 = the cloud does not say (object stores). */
    uint32_t nlink;
    /* Where two names can be one object (SKY_CAP_HARDLINK): the same non-0
     * number for every name of it (a local file's inode), else 0. */
    uint64_t file_id;
    /* The cloud's own stamp of this version's last change (an object
     * store's Last-Modified, which a change of the object's metadata alone
     * moves too: a copy in place keeps the ETag), ns since the epoch; 0 =
     * the cloud does not keep one apart from mtime_ns.  Set by stat() and
     * by listings; a listing entry with `has` 0 (no metadata: an S3
     * listing) that gives it lets fs/ tell, without a stat, that an object
     * is still the version whose metadata it last read (cache/meta.h,
     * meta_replace_listing). */
    int64_t modified_ns;
    /* Version token: must change whenever the content changes (ETag,
     * generation, or mtime+size for filesystems).  "" for directories. */
    char etag[SKY_ETAG_MAX];
    /* Input to write() and upload_begin() only (see PRECONDITIONS below;
     * 0 elsewhere and in every output): SKY_EXPECT_* bits. */
    unsigned expect;
};

/* PRECONDITIONS (issue 17: many machines, one cloud).  Bits of
 * sky_attr.expect, given to write() and upload_begin() by a caller that
 * knows which version the new content replaces:
 *   SKY_EXPECT_MATCH  path must still hold the version attr->etag (in the
 *                     form this driver reported it);
 *   SKY_EXPECT_NONE   nothing may be at path yet.
 * When the cloud holds something else (another machine changed, created
 * or deleted the file since), the call changes nothing and returns
 * -ESTALE with a message that says so.  A driver with SKY_CAP_CONDITIONAL
 * checks them itself, with the cloud's own preconditions where it has
 * them (If-Match / If-None-Match, generations...) and else with a compare
 * right before the final step (a head, a stat before the rename); fs/
 * compares with stat() before calling a driver without it.  A streamed
 * upload checks them at upload_finish (the precondition of upload_begin). */
#define SKY_EXPECT_MATCH 0x1u
#define SKY_EXPECT_NONE  0x2u
/* Given to mkdir() only: the caller takes a directory already at path as
 * made (a folder made on this machine and created on the cloud later,
 * fs/localdirs.h), so the driver may skip asking whether something is
 * there first and just make it; -EEXIST is still fine to return. */
#define SKY_EXPECT_ANY   0x4u

/* How a driver checks preconditions, as guarantee() reports it. */
enum sky_guarantee {
    SKY_GUARD_UNKNOWN = 0,  /* not found out yet (no conditional call made) */
    SKY_GUARD_NATIVE,       /* the server checks them atomically */
    SKY_GUARD_COMPARE,      /* a compare right before the change: a short window in
                             * which another machine's change can still be lost */
};

/* One item of an object's user metadata.  `key` is the name the xattr
 * calls show after "user." (S3 and Azure keep keys in lowercase); `value`
 * holds `len` bytes (any bytes) followed by a NUL that is not counted. */
struct sky_meta_item {
    char *key;
    char *value;
    size_t len;
};

/* An object's cloud metadata, or the part of it one source knows.
 *
 * A NULL string means "this source does not say", never "empty".
 * `has_user` says that user[] is the object's complete user metadata (which
 * may be no item at all); when false, the source knows nothing of it (an S3
 * listing) and nuser is 0.
 *
 * OWNERSHIP.  A struct filled by get_meta, sky_objmeta_copy or
 * meta_get_objmeta (cache/meta.h) owns every string and the user array:
 * release it with sky_objmeta_free.  A struct a driver hands to a listing
 * callback (sky_dirent.meta) belongs to the driver and lives only during
 * the call; the callback copies what it keeps (sky_objmeta_copy). */
struct sky_objmeta {
    char *content_type;     /* MIME type ("text/plain"), or NULL */
    char *storage_class;    /* the cloud's own word: "STANDARD", "GLACIER", "Hot",
                             * "Cool", "Archive"..., or NULL */
    bool has_user;
    size_t nuser;
    struct sky_meta_item *user;
};

/* Helpers for drivers and caches (backends/objmeta.c).  Each returns 0 or
 * -ENOMEM (then the struct stays valid and can be freed). */
/* Append one user item (copied).  A key already present is replaced. */
int sky_objmeta_add_user(struct sky_objmeta *m, const char *key, const void *value, size_t len);
/* Set content_type / storage_class (copied; NULL clears). */
int sky_objmeta_set(char **field, const char *value);
/* Deep copy of src into dst (dst's old content is not freed). */
int sky_objmeta_copy(struct sky_objmeta *dst, const struct sky_objmeta *src);
/* Would a and b (either may be NULL: no metadata) store the same on a new
 * object: the same content type and the same user items, in any order?
 * storage_class and has_user are not compared. */
bool sky_objmeta_same_stored(const struct sky_objmeta *a, const struct sky_objmeta *b);
/* The item named `key`, or NULL. */
const struct sky_meta_item *sky_objmeta_find(const struct sky_objmeta *m, const char *key);
/* Free what the struct owns and zero it; NULL is fine. */
void sky_objmeta_free(struct sky_objmeta *m);

/* One entry of a listing.  `name` is one path component.  `link` is the
 * symlink target when kind == SKY_LINK and the listing carries it, else
 * NULL (fs/ then calls readlink).  `meta` is the cloud metadata the listing
 * carries for this entry (see sky_objmeta; owned by the driver, valid
 * during the callback only), or NULL when it carries none. */
struct sky_dirent {
    const char *name;
    struct sky_attr attr;
    const char *link;
    const struct sky_objmeta *meta;
};

/* A deep copy of a listing entry (name, link and meta), for callbacks that
 * keep entries after the call: 0 or -ENOMEM (then dst holds nothing).
 * sky_dirent_free releases such a copy. */
int sky_dirent_copy(struct sky_dirent *dst, const struct sky_dirent *src);
void sky_dirent_free(struct sky_dirent *d);

/* Receives the bytes of a read: `n` bytes that are at offset `pos` of the
 * range asked for (not of the object).  Pieces arrive in order and back to
 * back (pos 0, then pos 0 + the first n...), except that a driver retrying
 * a failed transfer starts again at pos 0: the sink then forgets what it
 * had and takes the bytes again.  Return 0 to go on, or a negative errno
 * to stop the transfer (read then fails with that errno). */
typedef int (*sky_sink_fn)(void *arg, uint64_t pos, const void *data, size_t n);

/* Called once per entry by list().  Return 0 to go on, or a negative errno
 * to stop the listing; list() then returns that value. */
typedef int (*sky_list_cb)(void *arg, const struct sky_dirent *ent);

/* What the caller already knows of one object version, for drivers whose
 * listings do not say what an object is (see set_known_kinds).  Given the
 * path of a listed object (relative to the cloud root, as everywhere) and
 * the version token its listing reports (`etag`, never ""), returns true
 * when an entry at `path` with exactly that etag is known, with its kind
 * in *kind and its device number in *rdev (0 unless SKY_CHR/SKY_BLK);
 * for a SKY_LINK whose target is known and fits, the target (NUL-ended)
 * is copied into target[0..target_size) and target[0] is '\0' otherwise
 * (the link is still a link: fs/ calls readlink later).  false when
 * nothing is known of that version (another etag, or no entry).  It only
 * reads a local cache: no network, short, never calls the driver back. */
typedef bool (*sky_known_kind_fn)(void *arg, const char *path, const char *etag,
                                  enum sky_kind *kind, uint64_t *rdev, char *target,
                                  size_t target_size);

/* What the caller already knows of one directory, for drivers whose
 * listings show directories without their attributes (see
 * set_known_dirs): true when the cache holds a directory at `path` whose
 * attributes came from the cloud's metadata (some SKY_HAS_* bit set),
 * with them in *out.  Reads a local cache only, like sky_known_kind_fn. */
typedef bool (*sky_known_dir_fn)(void *arg, const char *path, struct sky_attr *out);

/* What the caller's cache expects at a path it asks stat_hinted about. */
enum sky_stat_hint {
    SKY_STAT_UNKNOWN = 0,       /* nothing known: a path walked into a folder never listed */
    SKY_STAT_FILE,              /* the cache holds something other than a folder there */
    SKY_STAT_DIR,               /* the cache holds a folder there */
    SKY_STAT_NEW,               /* the folder's (stale) listing lacks the name: most
                                 * likely nothing is there (a name about to be made) */
};

/* One byte range [off, off + len) of a file. */
struct sky_range {
    uint64_t off, len;
};

/* What changed in a file since a known version of it, for write_delta.
 * Every byte of the new file outside dirty[] is, at the same offset, a
 * byte of the version whose etag is base_etag (as stat or write reported
 * it; never ""), as long as it lies below that version's size: bytes at
 * or past the base's size count as changed whether listed or not.  dirty[]
 * is sorted by offset, the ranges do not overlap, and may reach past the
 * new size (the driver clips them).  The cache lists whole blocks. */
struct sky_delta {
    const char *base_etag;
    const struct sky_range *dirty;
    size_t ndirty;
};

/* Config keys a driver accepts, besides the common ones every cloud has
 * (type, read_only, ttl, negative_ttl). */
#define SKY_KEY_REQUIRED 0x1u
#define SKY_KEY_SECRET   0x2u  /* config file holding it must be mode 0600 */
#define SKY_KEY_BOOL     0x4u  /* true/false/yes/no/1/0 */
#define SKY_KEY_DURATION 0x8u  /* "500ms", "10s", "2m" (more than 0, not "forever") */
#define SKY_KEY_COUNT    0x10u /* a whole number 0..100 */
struct sky_key {
    const char *name;
    unsigned flags;
    const char *help;       /* one line for `skyfs config check` and errors */
};

/* Capabilities: what the protocol does natively. */
#define SKY_CAP_RENAME_DIR 0x1u  /* rename of a directory is one cheap call */
#define SKY_CAP_HARDLINK   0x2u  /* link() makes a second name of one file */
#define SKY_CAP_CONTENT_TYPE 0x4u /* objects carry a content type (see NEW OBJECTS' METADATA) */
#define SKY_CAP_CONDITIONAL 0x8u /* write/upload_begin honour attr->expect (PRECONDITIONS) */

struct sky_driver {
    const char *type;               /* value of `type =` in the config */
    const char *summary;            /* one line for help output */
    const struct sky_key *keys;     /* terminated by {NULL} */
    unsigned caps;

    /* Connect (or just prepare) for one configured cloud.  Must not block
     * long: a dead server is reported by later calls, not here, unless the
     * config itself is wrong (missing key, bad URL), which fails here with
     * a message naming the key. */
    int (*open)(const struct sky_cloud_config *cfg, void **ctx, struct sky_err *e);
    void (*close)(void *ctx);

    /* List the direct children of directory `dir` (all pages).  Entries
     * that cannot be file names are skipped with a warning by the driver.
     * -ENOENT if `dir` does not exist, -ENOTDIR if it is a file. */
    int (*list)(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e);

    /* Optional.  Everything under `dir`, recursively, in one flat pass
     * where the protocol allows it (a listing without delimiter): cb gets
     * each object with `name` relative to `dir` ("a/b/c.txt", so it may
     * hold '/').  Directories that exist only as prefixes need not be
     * reported.  NULL: `skyfs index` walks the tree with list(). */
    int (*list_tree)(void *ctx, const char *dir, sky_list_cb cb, void *arg, struct sky_err *e);

    /* Attributes of one path.  A prefix with children but no marker object
     * is a directory.  -ENOENT if nothing is there. */
    int (*stat)(void *ctx, const char *path, struct sky_attr *out, struct sky_err *e);

    /* Optional: stat with the caller's guess of what is there (enum
     * sky_stat_hint), for a driver that needs several questions for one
     * stat (an object store: the object, then the folder) and can ask the
     * likely one first, or all at once.  The answer is stat's; only the
     * requests and their order differ.  NULL: fs/ calls stat. */
    int (*stat_hinted)(void *ctx, const char *path, int hint, struct sky_attr *out,
                       struct sky_err *e);

    /* Optional: may a file be made at `path`?  Answered without a request,
     * for what the protocol refuses by the place alone (a file at an
     * account's root, where only containers live): 0, or a negative errno
     * with e filled.  fs/ asks before a create, whose upload (the cloud's
     * first word on it) comes only at the close.  NULL: anywhere. */
    int (*file_allowed)(void *ctx, const char *path, struct sky_err *e);

    /* Read the bytes of [off, off+len): they go to sink(sink_arg, ...) as
     * they arrive (see sky_sink_fn), so that a large range costs the
     * caller only what it keeps.  Returns 0 once the range was delivered
     * (fewer bytes only at the end of the object; none when off is at or
     * past it).  If `etag` is non-empty and the object no longer has that
     * etag, returns -ESTALE. */
    int (*read)(void *ctx, const char *path, const char *etag, uint64_t off, uint64_t len,
                sky_sink_fn sink, void *sink_arg, struct sky_err *e);

    /* Replace (or create) file `path` with the first `size` bytes of `fd`
     * (read with pread; the driver must not move or close fd), storing
     * attr's mode/uid/gid and times where attr->has says so, and `meta` (may
     * be NULL) as its content type and user metadata (see NEW OBJECTS'
     * METADATA above).  The new object appears atomically where the
     * protocol allows.  On success *out holds the new attributes (etag
     * included).  With size 0, fd may be -1 and must not be read (fs/
     * creates empty files this way).  A file with several names (hard
     * links) keeps them: every name shows the new content. */
    int (*write)(void *ctx, const char *path, int fd, uint64_t size,
                 const struct sky_attr *attr, const struct sky_objmeta *meta,
                 struct sky_attr *out, struct sky_err *e);

    /* Optional: write() for a file that changed only in part since the
     * version `d->base_etag` (see struct sky_delta): the same contract and
     * the same result as write() - the first `size` bytes of fd, attr,
     * meta, *out - but the driver may send only what changed (the dirty
     * ranges) and take the rest from the object it replaces, where the
     * protocol allows it atomically (S3 UploadPartCopy, Azure Put Block
     * List reusing committed blocks, a local file cloned then patched).
     * Whenever it cannot, or has any doubt (the object's version is no
     * longer d->base_etag, a range or a size that does not fit, a server
     * that lacks the request), it uploads the whole file as write() does,
     * and says why in the log (once per cloud and reason).  So a failure
     * is a failure of the upload, never "try write() instead".  NULL: fs/
     * calls write(). */
    int (*write_delta)(void *ctx, const char *path, int fd, uint64_t size,
                       const struct sky_attr *attr, const struct sky_objmeta *meta,
                       const struct sky_delta *d, struct sky_attr *out, struct sky_err *e);

    /* ---- Streamed uploads (optional: upload_part_size 0 and the four
     * calls NULL, or all set) ----
     *
     * A file still being written can go up while its writer goes on.  fs/
     * begins a streamed upload once a new file's written prefix is large
     * enough, hands each part the writer has passed to upload_part, and at
     * close or fsync calls upload_finish with the whole file: the driver
     * sends what is left and the object appears at once, as with write().
     * Until upload_finish succeeds nothing changes at `path` (whatever was
     * there stays, and readers see it).
     *
     * Part k is bytes [k * upload_part_size, (k + 1) * upload_part_size) of
     * the file, read with pread from the fd passed (never moved or closed
     * by the driver).  fs/ sends each part index at most once, from worker
     * threads of its own, several at once, finishing in any order, and
     * never calls upload_finish or upload_abort while an upload_part of the
     * same upload runs.  `up` is the driver's handle for one upload; it
     * must stay usable from any thread. */
    uint64_t upload_part_size;

    /* Start a streamed upload to file `path`.  attr's mode/uid/gid/times
     * (where attr->has says so) are the file's metadata as known now;
     * upload_finish gets the final ones.  Likewise `meta` (may be NULL),
     * the content type and user metadata as known now (see NEW OBJECTS'
     * METADATA; the driver copies what it keeps).  May make a request
     * (S3's CreateMultipartUpload).  On success *up is the new upload. */
    int (*upload_begin)(void *ctx, const char *path, const struct sky_attr *attr,
                        const struct sky_objmeta *meta, void **up, struct sky_err *e);

    /* Send part `index`.  -EFBIG when index is past what one upload may
     * hold (fs/ then abandons the stream and uploads the whole file with
     * write()).  Any failure abandons the stream the same way. */
    int (*upload_part)(void *up, int fd, uint64_t index, struct sky_err *e);

    /* Complete the upload: parts [0, nparts) were all sent successfully,
     * and the file is now `size` bytes (size >= nparts * upload_part_size).
     * Send the rest, [nparts * upload_part_size, size), then make the
     * object appear at the path given to upload_begin with attr's metadata
     * and `meta` (the final content type and user metadata; NULL: those
     * given to upload_begin); *out as for write().  Frees `up`, whether
     * it succeeds or not.  After a failure fs/ falls back to write() (the
     * path may or may not hold the new content meanwhile). */
    int (*upload_finish)(void *up, int fd, uint64_t nparts, uint64_t size,
                         const struct sky_attr *attr, const struct sky_objmeta *meta,
                         struct sky_attr *out, struct sky_err *e);

    /* Give up: discard what was sent (best effort; may make a request) and
     * free `up`.  Nothing changes at the path. */
    void (*upload_abort)(void *up);

    /* Delete one file, symlink or special file (one name of it, where the
     * file has several). */
    int (*remove)(void *ctx, const char *path, struct sky_err *e);

    /* Optional (PRECONDITIONS): delete file `path` only while it holds the
     * version `etag` (never ""): -ESTALE, deleting nothing, when it holds
     * another (-ENOENT when nothing is there).  NULL: fs/ compares with
     * stat() and then calls remove. */
    int (*remove_if)(void *ctx, const char *path, const char *etag, struct sky_err *e);

    /* Optional: how this cloud checks preconditions now
     * (enum sky_guarantee), with a short reason for the weaker ones in
     * why[0..size) ("the server ignores If-Match").  NULL: fs/ compares
     * itself (SKY_GUARD_COMPARE). */
    int (*guarantee)(void *ctx, char *why, size_t size);

    /* Create an empty directory (a marker object on object stores).
     * -EEXIST if something is already there (optional under attr->expect
     * SKY_EXPECT_ANY, see above). */
    int (*mkdir)(void *ctx, const char *path, const struct sky_attr *attr, struct sky_err *e);

    /* Create special file `path` of attr->kind (SKY_FIFO, SKY_SOCK,
     * SKY_CHR, SKY_BLK; attr->rdev for devices) with attr's mode/uid/gid/
     * mtime where attr->has says so: a real node where the cloud is a
     * filesystem, an empty object whose stored mode carries the type (and
     * rdev its device number) on object stores.  -EEXIST if something is
     * already there.  On success *out holds its attributes (etag included).
     * May be NULL: fs/ answers -EPERM. */
    int (*mknod)(void *ctx, const char *path, const struct sky_attr *attr,
                 struct sky_attr *out, struct sky_err *e);

    /* Optional (SKY_CAP_HARDLINK): make `to` a second name of file `from`
     * (-EEXIST if `to` exists).  NULL: fs/ answers -EPERM. */
    int (*link)(void *ctx, const char *from, const char *to, struct sky_err *e);

    /* Remove an empty directory; -ENOTEMPTY if it has children. */
    int (*rmdir)(void *ctx, const char *path, struct sky_err *e);

    /* Move a file, symlink or directory (with everything under it),
     * replacing a file at `to`.  Object stores copy then delete (the
     * object-store core, backends/objstore.h, does it once for every
     * object cloud).  Renaming a directory onto a non-empty
     * directory is -ENOTEMPTY.  The moved objects keep their cloud
     * metadata (content type, user metadata). */
    int (*rename)(void *ctx, const char *from, const char *to, struct sky_err *e);

    /* Optional, for clouds whose rename is many steps (object stores:
     * every object copied, then deleted): finish a rename of `from` to
     * `to` that was cut short (the daemon killed in the middle).  A file
     * still at `from` is copied to `to` and deleted; a directory's objects
     * still under `from` are copied under `to`, replacing what the
     * cut-short rename copied there, then deleted; nothing left at `from`
     * is success.  fs/ records such renames before it starts them
     * (meta_move_begin) and calls this at the next mount. */
    int (*rename_finish)(void *ctx, const char *from, const char *to, struct sky_err *e);

    /* Change the fields of attr named by `which` (SKY_HAS_*) on path; "" is
     * the cloud's root directory (a driver with nowhere to store its
     * attributes, such as a bucket, changes nothing and succeeds).  On
     * success *out holds the path's attributes after the change, as stat()
     * would report them now, version token (etag) included: a change of
     * metadata may give an object a new etag (Azure) or, on a folder, a
     * new mtime is part of it.  fs/ caches *out as it is. */
    int (*set_attr)(void *ctx, const char *path, const struct sky_attr *attr,
                    unsigned which, struct sky_attr *out, struct sky_err *e);

    /* Create symlink `path` pointing at `target` (s3fs/rclone conventions on
     * object stores).  readlink fills buf with a NUL-terminated target. */
    int (*symlink)(void *ctx, const char *path, const char *target,
                   const struct sky_attr *attr, struct sky_err *e);
    int (*readlink)(void *ctx, const char *path, char *buf, size_t size, struct sky_err *e);

    /* Extended attributes ("user.*" namespace): the user metadata, by
     * the same names get_meta reports.  getxattr/listxattr with size 0
     * only report the length in *len.  -ENODATA when absent, -ERANGE when
     * buf is too small.  May be NULL: fs/ answers -ENOTSUP.  When get_meta
     * exists, fs/ reads through it (and its cache) instead, and calls
     * getxattr/listxattr only for names outside "user.*".  fs/ answers
     * the user.skyfs.* names itself. */
    int (*getxattr)(void *ctx, const char *path, const char *name, void *buf,
                    size_t size, size_t *len, struct sky_err *e);
    int (*setxattr)(void *ctx, const char *path, const char *name, const void *value,
                    size_t len, int flags, struct sky_err *e);
    int (*listxattr)(void *ctx, const char *path, char *buf, size_t size,
                     size_t *len, struct sky_err *e);
    int (*removexattr)(void *ctx, const char *path, const char *name, struct sky_err *e);

    /* Optional.  What stat() reports for `path` (into *attr), plus the
     * object's cloud metadata into *meta, complete: has_user true, the
     * content type and storage class where the cloud has them.  One HEAD
     * on object stores.  Paths that are only prefixes, and cloud roots,
     * are directories with no metadata (has_user true, no item).  On
     * success the caller frees *meta with sky_objmeta_free; on failure
     * *meta holds nothing to free.  NULL: fs/ serves xattrs through
     * getxattr/listxattr and the index holds what listings carry. */
    int (*get_meta)(void *ctx, const char *path, struct sky_attr *attr,
                    struct sky_objmeta *meta, struct sky_err *e);

    /* Space figures; may be NULL (fs/ reports a large free space). */
    int (*statfs)(void *ctx, struct statvfs *st, struct sky_err *e);

    /* Optional.  fs/ calls it once right after open (before any other
     * call) to say how to learn what its metadata cache already knows of
     * an object version (sky_known_kind_fn): a driver whose listings do
     * not tell symlinks and special files from files (S3) asks it before
     * sending a request to find out, so an object version is asked about
     * once, not once per process (`skyfs index` runs and remounts with
     * the same cache send no question for versions seen before).  The
     * driver may call fn from any thread, also the listing's own and the
     * helper threads of parallel_for, until close; fn(arg, ...) stays
     * valid until then.  An answer is only as good as what the cache was
     * told: a driver that lists without asking (S3's `symlinks = no`)
     * lets fs/ store what it listed.  NULL: the driver asks the cloud. */
    void (*set_known_kinds)(void *ctx, sky_known_kind_fn fn, void *arg);

    /* Optional, like set_known_kinds (called right after it): how to learn
     * what the metadata cache knows of a directory (sky_known_dir_fn).  A
     * driver that asks the cloud for the attributes of each directory a
     * listing shows (S3: a HEAD of its marker "dir/") asks fn first, so a
     * directory is asked about once, not once per process. */
    void (*set_known_dirs)(void *ctx, sky_known_dir_fn fn, void *arg);
};

/* The registry (backends/registry.c): the driver for a `type` value, or
 * NULL.  sky_driver_types() lists them, comma-separated, for messages. */
const struct sky_driver *sky_driver_find(const char *type);
const char *sky_driver_types(void);

#endif
