/*
 * files.c - open files: reads and writes through the block cache, and
 * uploads.
 *
 * Every open inode has one `struct ofile`, shared by all its handles.  Its
 * bytes live in the block cache; missing blocks are fetched with the
 * driver's ranged read, streamed into the cache file; sequential reads
 * also fetch the next blocks in the background (readahead, through a copy
 * of the fetch context).
 * Writes mark the cached object dirty (the block cache journals it before
 * the write is acknowledged); fsync, and close on a write_back = sync
 * cloud, upload the whole object with the driver's write, then record the
 * new version.  On a write_back = async cloud close only makes the file
 * durable in the cache and queues it: writeback.c's thread uploads it
 * (files_upload_queued) without holding the file's lock, so stat, reads
 * and writes of it never wait for the network; of->upload_lock keeps one
 * upload of a file at a time and keeps renames, removals and attribute
 * changes of it out of a running upload.  A new file
 * written from its start goes up while it is written (stream.h): close
 * and fsync then only finish that upload.  A dirty object
 * left by a crash, or whose upload failed, is uploaded by the journal
 * thread (at the next mount, and retried with backoff while mounted).
 */
#include "skyfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../lib/log.h"
#include "commit.h"
#include "conflicts.h"
#include "renamelog.h"
#include "localdirs.h"
#include "refresh.h"
#include "moved.h"
#include "../lib/metrics.h"
#include "stream.h"

struct fetch_ctx {
    struct cloud *cloud;
    const char *path;
    char etag[SKY_ETAG_MAX];
    /* Completing a changed file for its upload (upload) or its durable
     * close (files_closed_written): the version it is based on may be gone
     * from the cloud (fill_from_current_version) */
    bool complete;
    bool filled;                /* bytes came from the cloud's other version */
    bool to_end;                /* a read straight from the cloud: may end at the end */
};

/* A sink that passes the bytes of a read on and counts them. */
struct fill_sink {
    blocks_sink_fn sink;
    void *arg;
    uint64_t got;
};

static int fill_take(void *arg, uint64_t pos, const void *data, size_t n)
{
    struct fill_sink *fl = arg;
    if (pos + n > fl->got || pos == 0)
        fl->got = pos + n;      /* a driver's retry starts again at 0 */
    return fl->sink(fl->arg, pos, data, n);
}

/* A changed file is completed for its upload (or made durable in the
 * cache), but the cloud no longer holds the version it is based on, and
 * this range of it was never here: it can never be fetched again.  Its
 * bytes are taken from the version the cloud holds now, zeros past that
 * version's end (none when it is deleted), so that the file can go up at
 * all: its upload then meets the other version and goes beside it as a
 * conflict copy (upload), which mixes the two, as the log says; the other
 * machine's version stays as it is.  Without this the upload failed for
 * good and was retried for ever. */
static int fill_from_current_version(struct fetch_ctx *f, uint64_t off, size_t len,
                                     blocks_sink_fn sink, void *sink_arg, struct sky_err *e)
{
    struct cloud *c = f->cloud;
    if (!f->filled)
        LOG_WARN("cloud '%s': \"%s\" was changed here, but the version it was read at is "
                 "gone from the cloud (%s): the bytes this machine never read are taken from "
                 "the cloud's version (zeros past its end), and the file goes up as a conflict "
                 "copy that mixes the two", c->cfg->name, f->path, e->msg);
    f->filled = true;
    sky_err_clear(e);
    struct fill_sink fl = { sink, sink_arg, 0 };
    int rc = c->drv->read(c->ctx, f->path, "", off, len, fill_take, &fl, e);
    cloud_note_result(c, rc, e);
    if (rc == -ENOENT) {
        sky_err_clear(e);
        fl.got = 0;
        rc = 0;
    }
    static const char zeros[64 << 10];
    while (rc == 0 && fl.got < len) {
        size_t n = len - fl.got < sizeof zeros ? len - fl.got : sizeof zeros;
        rc = sink(sink_arg, fl.got, zeros, n);
        fl.got += n;
    }
    return rc;
}

static int fetch_from_cloud(void *arg, uint64_t off, size_t len, blocks_sink_fn sink,
                            void *sink_arg, struct sky_err *e)
{
    struct fetch_ctx *f = arg;
    struct cloud *c = f->cloud;
    if (!c->ctx)
        return sky_fail(e, c->open_err.code ? c->open_err.code : EIO, "%s", c->open_err.msg);
    if (cloud_offline_check(c, e))
        return -EHOSTDOWN;
    struct fill_sink fl = { sink, sink_arg, 0 };
    int rc = c->drv->read(c->ctx, f->path, f->etag, off, len, fill_take, &fl, e);
    cloud_note_result(c, rc, e);
    if (rc == 0 && fl.got < len && f->etag[0] && !f->to_end)
        /* the block cache asks only for bytes its version has: the cloud's
         * is shorter (S3 answers such a range 416, before If-Match) */
        rc = sky_fail(e, ESTALE, "cloud '%s': \"%s\" is shorter than the version this machine "
                      "knows (%llu bytes at offset %llu, %zu expected): it changed",
                      c->cfg->name, f->path, (unsigned long long)fl.got,
                      (unsigned long long)off, len);
    if (rc == -ESTALE && f->complete && f->etag[0])
        rc = fill_from_current_version(f, off, len, sink, sink_arg, e);
    return rc;
}

/* A copy for a background fetch (readahead): the caller's context lives on
 * its stack and the path may be renamed, so the copy owns its path.  The
 * cloud outlives the copy: files_close cancels the object's readahead
 * before the last release. */
static void *fetch_clone(void *arg)
{
    const struct fetch_ctx *f = arg;
    size_t plen = strlen(f->path) + 1;
    struct fetch_ctx *copy = malloc(sizeof *copy + plen);
    if (!copy)
        return NULL;
    *copy = *f;
    char *path = (char *)(copy + 1);
    memcpy(path, f->path, plen);
    copy->path = path;
    return copy;
}

static void fetch_drop(void *copy)
{
    free(copy);
}

static void fetch_init(struct fetch_ctx *f, struct ofile *of, const char *etag)
{
    f->complete = f->filled = f->to_end = false;
    f->cloud = of->cloud;
    f->path = blocks_path(of->obj);
    snprintf(f->etag, sizeof f->etag, "%s", etag ? etag : "");
}

struct ofile *files_find(struct skyfs *fs, uint64_t ino)
{
    pthread_mutex_lock(&fs->files_lock);
    struct ofile *of = fs->files;
    while (of && of->ino != ino)
        of = of->next;
    if (of)
        of->refs++;
    pthread_mutex_unlock(&fs->files_lock);
    return of;
}

static int open_file(struct skyfs *fs, const struct meta_entry *ent, bool fresh,
                     struct ofile **out, struct sky_err *e);

int files_open(struct skyfs *fs, const struct meta_entry *ent, struct ofile **out,
               struct sky_err *e)
{
    return open_file(fs, ent, false, out, e);
}

int files_open_new(struct skyfs *fs, const struct meta_entry *ent, struct ofile **out,
                   struct sky_err *e)
{
    return open_file(fs, ent, true, out, e);
}

/* The cache's entry of `ent` as it is now (*now, to free), when it is
 * still the same file at the same path. */
static bool entry_now(struct skyfs *fs, const struct meta_entry *ent, struct meta_entry *now)
{
    if (meta_get(fs->meta, ent->ino, now, NULL) != 0)
        return false;
    if (strcmp(now->path, ent->path) == 0 && now->attr.kind == ent->attr.kind)
        return true;
    meta_entry_free(now);
    return false;
}

static int open_file(struct skyfs *fs, const struct meta_entry *ent, bool fresh,
                     struct ofile **out, struct sky_err *e)
{
    struct ofile *of = files_find(fs, ent->ino);
    if (of) {
        *out = of;
        return 0;
    }
    struct cloud *c = skyfs_cloud_by_name(fs, ent->cloud);
    if (!c)
        return sky_fail(e, ENOENT, "no cloud for inode %llu", (unsigned long long)ent->ino);
    of = calloc(1, sizeof *of);
    if (!of)
        return sky_fail(e, ENOMEM, "out of memory");
    /* The caller's entry may predate the upload of the file's last open
     * (a release's upload records the new version, then closes the file):
     * a file not open now is opened at the version the cache has now, or
     * the object would go back to the old version and the next upload
     * meet its own as another machine's change. */
    struct meta_entry now;
    bool reread = !fresh && entry_now(fs, ent, &now);
    const struct meta_entry *at = reread ? &now : ent;
    int rc = fresh ? blocks_get_new(fs->blocks, c->cfg->name, ent->path, &of->obj, e)
                   : blocks_get(fs->blocks, c->cfg->name, ent->path, at->attr.etag,
                                at->attr.size, &of->obj, e);
    if (rc == 0) {
        times_shown(fs, at, &of->mtime_ns, &of->atime_ns, &of->ctime_ns);
        snprintf(of->etag, sizeof of->etag, "%s", at->attr.etag);
    }
    if (reread)
        meta_entry_free(&now);
    if (rc) {
        free(of);
        return rc;
    }
    of->ino = ent->ino;
    of->cloud = c;
    of->refs = 1;
    pthread_mutex_init(&of->lock, NULL);
    pthread_mutex_init(&of->upload_lock, NULL);

    /* Another thread may have opened the same inode meanwhile. */
    pthread_mutex_lock(&fs->files_lock);
    struct ofile *other = fs->files;
    while (other && other->ino != ent->ino)
        other = other->next;
    if (other) {
        other->refs++;
    } else {
        of->next = fs->files;
        fs->files = of;
    }
    pthread_mutex_unlock(&fs->files_lock);
    if (other) {
        blocks_release(of->obj);
        pthread_mutex_destroy(&of->lock);
        pthread_mutex_destroy(&of->upload_lock);
        free(of);
        of = other;
    }
    *out = of;
    return 0;
}

void files_close(struct skyfs *fs, struct ofile *of)
{
    pthread_mutex_lock(&fs->files_lock);
    bool last = --of->refs == 0;
    if (last) {
        struct ofile **p = &fs->files;
        while (*p != of)
            p = &(*p)->next;
        *p = of->next;
    }
    pthread_mutex_unlock(&fs->files_lock);
    if (!last)
        return;
    blocks_cancel_ahead(of->obj);
    /* a file whose upload failed at close (a write_back = sync cloud)
     * stays held until the journal's retry uploads it (recover_one) */
    if (of->held && (of->unlinked || !blocks_is_dirty(of->obj)))
        meta_unhold(fs->meta, of->ino);
    if (of->stream)
        stream_drop(of->stream);
    /* An unlinked file's object was forgotten at the unlink (blocks_forget
     * of a pinned object): this release frees it.  Its path may hold
     * another file by now, whose cached data and journal entry stay. */
    blocks_release(of->obj);
    pthread_mutex_destroy(&of->lock);
    pthread_mutex_destroy(&of->upload_lock);
    free(of);
}

bool files_page_cache_valid(struct skyfs *fs, uint64_t ino, const char *etag)
{
    size_t slot = (size_t)(ino % (sizeof fs->page_versions / sizeof fs->page_versions[0]));
    pthread_mutex_lock(&fs->page_lock);
    bool same = *etag && fs->page_versions[slot].ino == ino &&
                strcmp(fs->page_versions[slot].etag, etag) == 0;
    fs->page_versions[slot].ino = ino;
    snprintf(fs->page_versions[slot].etag, sizeof fs->page_versions[slot].etag, "%s", etag);
    pthread_mutex_unlock(&fs->page_lock);
    return same;
}

int files_keep_open(struct skyfs *fs, const struct meta_entry *ent, struct sky_err *e)
{
    struct ofile *of = ent->attr.kind == SKY_FILE ? files_find(fs, ent->ino) : NULL;
    if (!of)
        return 0;
    struct fetch_ctx f;
    int fd, rc;
    pthread_mutex_lock(&of->lock);
    fetch_init(&f, of, of->etag);
    /* every block present: after the removal there is nothing to fetch */
    rc = blocks_prepare_upload(of->obj, fetch_from_cloud, &f, &fd, e);
    if (rc == 0) {
        struct sky_attr a = ent->attr;
        times_fix(fs, ent, &a);
        a.size = blocks_size(of->obj);
        a.mtime_ns = of->mtime_ns;
        a.ctime_ns = of->ctime_ns;
        if (of->atime_ns > a.atime_ns)
            a.atime_ns = of->atime_ns;
        of->orphan = a;
    }
    pthread_mutex_unlock(&of->lock);
    files_close(fs, of);
    return rc;
}

int files_orphan(struct skyfs *fs, uint64_t ino, struct meta_entry *out, struct ofile **ofp)
{
    struct ofile *of = files_find(fs, ino);
    if (!of)
        return -ENOENT;
    pthread_mutex_lock(&of->lock);
    bool unlinked = of->unlinked;
    memset(out, 0, sizeof *out);
    out->ino = ino;
    out->attr = of->orphan;
    out->fetched_at = skyfs_now();
    pthread_mutex_unlock(&of->lock);
    if (!unlinked) {
        files_close(fs, of);
        return -ENOENT;
    }
    *ofp = of;
    return 0;
}

void files_mark_unlinked(struct skyfs *fs, uint64_t ino)
{
    pthread_mutex_lock(&fs->files_lock);
    for (struct ofile *of = fs->files; of; of = of->next)
        if (of->ino == ino)
            of->unlinked = true;
    pthread_mutex_unlock(&fs->files_lock);
}

static void emit_nothing(void *emit_arg, int fd, uint64_t off, size_t n)
{
    (void)emit_arg;
    (void)fd;
    (void)off;
    (void)n;
}

int files_fetch_whole(struct skyfs *fs, struct cloud *c, const struct meta_entry *ent,
                      struct sky_err *e)
{
    struct ofile *of = files_find(fs, ent->ino);
    if (of) {
        files_close(fs, of);
        return 0;
    }
    struct blocks_obj *obj;
    int rc = blocks_get(fs->blocks, c->cfg->name, ent->path, ent->attr.etag, ent->attr.size,
                        &obj, e);
    if (rc)
        return rc;
    if (!blocks_is_dirty(obj) && !blocks_is_whole(obj)) {
        struct fetch_ctx f = { .cloud = c, .path = ent->path };
        snprintf(f.etag, sizeof f.etag, "%s", ent->attr.etag);
        /* no clone: no readahead of its own, the whole file is asked at once */
        struct blocks_fetcher fetcher = { .fetch = fetch_from_cloud, .arg = &f };
        rc = blocks_read_to(obj, 0, (size_t)ent->attr.size, &fetcher, emit_nothing, NULL, e);
        if (rc == 0)
            rc = 1;
    }
    blocks_release(obj);
    return rc;
}

int files_read(struct skyfs *fs, struct ofile *of, uint64_t off, size_t len,
               blocks_emit_fn emit, void *emit_arg, struct sky_err *e)
{
    struct fetch_ctx f;
    pthread_mutex_lock(&of->lock);
    fetch_init(&f, of, of->etag);
    pthread_mutex_unlock(&of->lock);
    struct blocks_fetcher fetcher = { .fetch = fetch_from_cloud, .arg = &f,
                                      .clone = fetch_clone, .drop = fetch_drop };
    return blocks_read_to(of->obj, off, len, &fetcher, emit, emit_arg, e);
}

int files_take_newer(struct skyfs *fs, struct ofile *of, struct sky_err *e)
{
    struct meta_entry ent, fresh;
    int rc = meta_get(fs->meta, of->ino, &ent, e);
    if (rc)
        return rc;
    rc = refresh_entry(fs, of->cloud, ent.parent, ent.name, ent.path, SKY_STAT_FILE, &fresh, e);
    meta_entry_free(&ent);
    if (rc)
        return rc;
    pthread_mutex_lock(&of->lock);
    if (fresh.attr.kind != SKY_FILE || !fresh.attr.etag[0] || of->written || of->unlinked) {
        rc = sky_fail(e, ESTALE, "cloud '%s': \"%s\" changed while it was read",
                      of->cloud->cfg->name, fresh.path);
    } else if (strcmp(fresh.attr.etag, of->etag) != 0) {
        rc = blocks_take_version(of->obj, fresh.attr.etag, fresh.attr.size, e);
        if (rc == 0) {
            snprintf(of->etag, sizeof of->etag, "%s", fresh.attr.etag);
            LOG_INFO("cloud '%s': \"%s\" changed on the cloud since it was listed; reading "
                     "the new version (%llu bytes)", of->cloud->cfg->name, fresh.path,
                     (unsigned long long)fresh.attr.size);
        }
    }   /* else another reader of the file moved it already: read again */
    pthread_mutex_unlock(&of->lock);
    meta_entry_free(&fresh);
    return rc;
}

/* Bytes of a direct read, into the caller's buffer (a sky_sink_fn). */
struct direct_sink {
    char *buf;
    size_t len, got;
};

static int direct_take(void *arg, uint64_t pos, const void *data, size_t n)
{
    struct direct_sink *d = arg;
    if (pos == 0)
        d->got = 0;                     /* a retry starts again */
    if (pos > d->len || n > d->len - pos)
        return -EIO;                    /* more than asked for */
    memcpy(d->buf + pos, data, n);
    if (pos + n > d->got)
        d->got = pos + n;
    return 0;
}

static int read_direct(struct fetch_ctx *f, uint64_t off, size_t len, char *buf, size_t *got,
                       struct sky_err *e)
{
    struct direct_sink d = { .buf = buf, .len = len };
    f->to_end = true;
    int rc = fetch_from_cloud(f, off, len, direct_take, &d, e);
    *got = rc == 0 ? d.got : 0;
    return rc;
}

int files_read_direct(struct cloud *c, const char *path, const char *etag, uint64_t off,
                      size_t len, char *buf, size_t *got, struct sky_err *e)
{
    struct fetch_ctx f = { .cloud = c, .path = path };
    snprintf(f.etag, sizeof f.etag, "%s", etag);
    return read_direct(&f, off, len, buf, got, e);
}

int files_read_uncached(struct ofile *of, uint64_t off, size_t len, char *buf, size_t *got,
                        struct sky_err *e)
{
    struct fetch_ctx f;
    pthread_mutex_lock(&of->lock);
    bool dirty = blocks_is_dirty(of->obj), first = !of->read_past_cache && !dirty;
    of->read_past_cache |= first;
    fetch_init(&f, of, of->etag);
    pthread_mutex_unlock(&of->lock);
    *got = 0;
    if (dirty)
        return sky_fail(e, ENOSPC, "block cache: \"%s\" has writes not uploaded yet, and no "
                        "room in the cache to read them back into", f.path);
    if (first)
        LOG_WARN("cloud '%s': reading \"%s\" straight from the cloud, without the cache: "
                 "no room there", of->cloud->cfg->name, f.path);
    return read_direct(&f, off, len, buf, got, e);
}

/* The attributes an upload of obj records: ent's, with all three times
 * (the atime as shown; the object store writes its metadata anyway). */
static struct sky_attr upload_attr(const struct skyfs *fs, const struct meta_entry *ent,
                                   struct blocks_obj *obj, int64_t mtime_ns, int64_t ctime_ns)
{
    struct sky_attr attr = ent->attr;
    times_fix(fs, ent, &attr);
    attr.kind = SKY_FILE;
    attr.size = blocks_size(obj);
    attr.mtime_ns = mtime_ns;
    attr.ctime_ns = ctime_ns > mtime_ns ? ctime_ns : mtime_ns;
    /* the upload replaces the version the content is based on, or (a
     * new file) nothing: another machine's change is never overwritten */
    blocks_base_etag(obj, attr.etag, sizeof attr.etag);
    attr.expect = attr.etag[0] ? SKY_EXPECT_MATCH : SKY_EXPECT_NONE;
    return attr;
}

/* The written prefix of a tracked file is large enough: begin its
 * streamed upload (of->lock held).  If that cannot be, the file just goes
 * up whole at close. */
static void start_stream(struct skyfs *fs, struct ofile *of)
{
    struct meta_entry ent;
    int fd = -1;
    bool have_ent = meta_get(fs->meta, of->ino, &ent, NULL) == 0;
    if (!have_ent || blocks_open_data(of->obj, &fd, NULL) != 0) {
        if (have_ent)
            meta_entry_free(&ent);
        stream_drop(of->stream);
        of->stream = NULL;
        return;
    }
    struct sky_attr attr = upload_attr(fs, &ent, of->obj, of->mtime_ns, of->ctime_ns);
    struct sky_objmeta om;
    struct sky_err e = { 0 };
    /* its folders made here go up before its parts (localdirs.h) */
    if (localdirs_ensure(fs, of->cloud, ent.parent, &e) == 0 &&
        upmeta_for_upload(fs, of->cloud, &ent, blocks_path(of->obj), &om, &e) == 0) {
        stream_begin(of->stream, blocks_path(of->obj), &attr, &om, fd);
        sky_objmeta_free(&om);
    } else {
        close(fd);
        stream_drop(of->stream);        /* the upload at close will say why */
        of->stream = NULL;
    }
    meta_entry_free(&ent);
}

/* The file is written here: until its last close (after its upload, which
 * holds a reference; or, when that upload failed, until the journal's
 * retry), news from the cloud leaves it in the cache as it is (meta_hold),
 * as it leaves a file not uploaded yet (of->lock held). */
static void hold_written(struct skyfs *fs, struct ofile *of)
{
    if (!of->held && !of->unlinked)
        of->held = meta_hold(fs->meta, of->ino) == 0;
}

/* A write or truncate begins: the file is written and held.  True when it
 * is the first one (see unwrite_first).  of->lock held. */
static bool begin_write(struct skyfs *fs, struct ofile *of)
{
    bool first = !of->written && !of->held;
    of->written = true;
    hold_written(fs, of);
    return first;
}

/* The first write (or truncate) of a file opened at a version the cloud
 * no longer holds failed before it changed a byte (blocks_write_from left
 * the object as it was): the file is as if never written, so that it may
 * take the cloud's newer version (files_take_newer).  of->lock held. */
static void unwrite_first(struct skyfs *fs, struct ofile *of)
{
    if (blocks_is_dirty(of->obj))
        return;
    of->written = false;
    if (of->held)
        meta_unhold(fs->meta, of->ino);
    of->held = false;
}

int files_write(struct skyfs *fs, struct ofile *of, uint64_t off, size_t len, blocks_copy_fn copy,
                void *copy_arg, struct sky_err *e)
{
    struct fetch_ctx f;
    pthread_mutex_lock(&of->lock);
    fetch_init(&f, of, of->etag);
    /* an empty file written from its start may go up while it is written */
    if (!of->stream && !of->unlinked && off == 0 && len && blocks_size(of->obj) == 0)
        of->stream = stream_track(fs->streams, of->cloud);
    if (of->stream)
        stream_write_begins(of->stream, off);
    bool first = begin_write(fs, of);
    int rc = blocks_write_from(of->obj, off, len, copy, copy_arg, fetch_from_cloud, &f, e);
    if (!rc)
        of->mtime_ns = of->ctime_ns = skyfs_now();
    if (rc == -ESTALE && first)
        unwrite_first(fs, of);
    if (of->stream && stream_write_ends(of->stream, off, len, rc == 0))
        start_stream(fs, of);
    pthread_mutex_unlock(&of->lock);
    return rc;
}

int files_truncate(struct skyfs *fs, struct ofile *of, uint64_t size, struct sky_err *e)
{
    struct fetch_ctx f;
    pthread_mutex_lock(&of->lock);
    fetch_init(&f, of, of->etag);
    if (of->stream && size == 0) {
        stream_drop(of->stream);        /* what it sent is of no use any more */
        of->stream = NULL;
    } else if (of->stream) {
        stream_truncates(of->stream, size);
    }
    bool first = begin_write(fs, of);
    int rc = blocks_truncate(of->obj, size, fetch_from_cloud, &f, e);
    if (rc == -ESTALE && first)
        unwrite_first(fs, of);
    if (!rc)
        of->mtime_ns = of->ctime_ns = skyfs_now();
    if (!rc && of->unlinked)
        of->orphan.size = size;
    if (!rc && size == 0 && !of->stream && !of->unlinked)
        of->stream = stream_track(fs->streams, of->cloud);
    pthread_mutex_unlock(&of->lock);
    return rc;
}

/* The driver's write, or its write_delta when the cache knows which
 * blocks changed since a version the cloud has (incremental uploads: the
 * driver sends only those where it can, and falls back by itself). */
static int write_file(struct cloud *c, struct blocks_obj *obj, int fd,
                      const struct sky_attr *attr, const struct sky_objmeta *om,
                      const char *fetch_etag, struct sky_attr *out, struct sky_err *e)
{
    struct blocks_delta bd;
    if (!c->drv->write_delta || blocks_upload_delta(obj, &bd, e) != 0 || !bd.etag ||
        (fetch_etag && *fetch_etag && strcmp(fetch_etag, bd.etag) != 0)) {
        if (c->drv->write_delta)
            blocks_delta_free(&bd);
        sky_err_clear(e);
        return c->drv->write(c->ctx, blocks_path(obj), fd, attr->size, attr, om, out, e);
    }
    struct sky_range *ranges = malloc((bd.ndirty ? bd.ndirty : 1) * sizeof *ranges);
    if (!ranges) {
        blocks_delta_free(&bd);
        return c->drv->write(c->ctx, blocks_path(obj), fd, attr->size, attr, om, out, e);
    }
    for (size_t i = 0; i < bd.ndirty; i++)
        ranges[i] = (struct sky_range){ bd.dirty[i].off, bd.dirty[i].len };
    struct sky_delta d = { bd.etag, ranges, bd.ndirty };
    int rc = c->drv->write_delta(c->ctx, blocks_path(obj), fd, attr->size, attr, om, &d, out, e);
    free(ranges);
    blocks_delta_free(&bd);
    return rc;
}

/* The preconditions of attr (driver.h PRECONDITIONS) for a driver that
 * does not check them itself: a stat right before the upload. */
static int compare_before(struct cloud *c, const char *path, const struct sky_attr *attr,
                          struct sky_err *e)
{
    if ((c->drv->caps & SKY_CAP_CONDITIONAL) || !(attr->expect & (SKY_EXPECT_MATCH |
                                                                 SKY_EXPECT_NONE)))
        return 0;
    struct sky_attr now;
    int rc = c->drv->stat(c->ctx, path, &now, e);
    cloud_note_result(c, rc, e);
    if (rc == -ENOENT) {
        sky_err_clear(e);
        if (!(attr->expect & SKY_EXPECT_MATCH))
            return 0;
    } else if (rc) {
        return rc;
    } else if ((attr->expect & SKY_EXPECT_MATCH) && strcmp(now.etag, attr->etag) == 0) {
        return 0;
    }
    return sky_fail(e, ESTALE, "cloud '%s': \"%s\" %s since this machine last saw it",
                    c->cfg->name, path, rc == -ENOENT ? "was deleted" : "changed");
}

/* Send the prepared file (fd) with attr and om: through its stream `st`
 * when there is one and it is still good, else with write_file. */
static int send_file(struct cloud *c, struct blocks_obj *obj, int fd, const struct sky_attr *attr,
                     const struct sky_objmeta *om, struct stream *st, const char *fetch_etag,
                     struct sky_attr *out, struct sky_err *e)
{
    int rc = compare_before(c, blocks_path(obj), attr, e);
    if (rc) {
        if (st)
            stream_drop(st);
        return rc;
    }
    rc = 1;
    if (st) {
        rc = stream_finish(st, fd, attr->size, blocks_path(obj), attr, om, out, e);
        if (rc == -ESTALE)
            return rc;  /* another machine's version is there: not a transport problem */
        if (rc < 0 && rc != -EHOSTDOWN) {
            LOG_WARN("streamed upload of \"%s\" to cloud '%s' failed, uploading it whole: %s",
                     blocks_path(obj), c->cfg->name, e->msg);
            rc = 1;
        }
    }
    if (rc == 1) {
        rc = write_file(c, obj, fd, attr, om, fetch_etag, out, e);
        cloud_note_result(c, rc, e);
    }
    if (attr->expect)
        cloud_note_guarantee(c);
    return rc;
}

/* conflict_copy_put's step for an upload: the content as a new object
 * at `copy` (-ESTALE when something is there). */
struct copy_put {
    struct cloud *c;
    int fd;
    const struct sky_attr *attr;
    const struct sky_objmeta *om;
    struct sky_attr out;            /* the stored copy */
};

static int upload_to_free_name(void *arg, const char *copy, struct sky_err *e)
{
    struct copy_put *p = arg;
    struct sky_attr a = *p->attr;
    a.expect = SKY_EXPECT_NONE;
    a.etag[0] = '\0';
    int rc = compare_before(p->c, copy, &a, e);
    if (rc == 0) {
        rc = p->c->drv->write(p->c->ctx, copy, p->fd, a.size, &a, p->om, &p->out, e);
        cloud_note_result(p->c, rc, e);
    }
    return rc;
}

/* An upload of obj (fd, attr, om) met another machine's version of its
 * path (-ESTALE): nothing is lost.  This machine's content goes beside
 * it as NAME.conflict-HOST-YYYYMMDD-HHMMSS[.EXT] (a new object: it never
 * replaces anything either), the conflict is logged and remembered for
 * skyfs status, the cached object stops being a pending upload, and the
 * file shows the other machine's version from its next lookup on.
 * 0 once the copy is stored; else the copy's error (the upload stays in
 * the journal and is tried again, conflict included). */
static int keep_as_conflict_copy(struct skyfs *fs, struct cloud *c, struct blocks_obj *obj,
                                 const struct meta_entry *ent, int fd,
                                 const struct sky_attr *attr, const struct sky_objmeta *om,
                                 const struct sky_err *why, struct sky_err *e)
{
    char *path = strdup(blocks_path(obj));
    if (!path)
        return sky_fail(e, ENOMEM, "out of memory");
    char copy[4096];
    struct copy_put put = { c, fd, attr, om, { 0 } };
    int rc = conflict_copy_put(path, -ESTALE, upload_to_free_name, &put, copy, sizeof copy, e);
    if (rc == 1)
        rc = sky_fail(e, ENAMETOOLONG, "cloud '%s': \"%s\" changed on another machine, and "
                      "its conflict copy's name would be too long; kept in the journal",
                      c->cfg->name, path);
    if (rc) {
        LOG_ERROR("conflict: \"%s\" on cloud '%s' changed on another machine (%s), and the "
                  "conflict copy could not be stored: %s; kept in the journal", path,
                  c->cfg->name, why->msg, e->msg);
        free(path);
        return rc;
    }
    LOG_WARN("conflict: \"%s\" on cloud '%s' was changed by another machine since this one "
             "last saw it (%s); this machine's version is kept beside it as \"%s\"", path,
             c->cfg->name, why->msg, copy);
    conflicts_add(c->conflicts, "upload", path, copy);
    /* the cached content is the copy's now; the path's is the other machine's */
    struct sky_err ignored = { 0 };
    blocks_forget(fs->blocks, c->cfg->name, path, &ignored);
    blocks_committed(obj, put.out.etag, &ignored);
    if (ent && ent->ino) {
        struct sky_attr theirs;
        rc = c->drv->stat(c->ctx, path, &theirs, &ignored);
        cloud_note_result(c, rc, &ignored);
        if (rc == 0)
            meta_set_attr(fs->meta, ent->ino, &theirs, skyfs_now(), &ignored);
        else if (rc == -ENOENT)
            meta_remove(fs->meta, ent->ino, &ignored);
        if (ent->parent) {
            const char *slash = strrchr(copy, '/');
            put.out.kind = SKY_FILE;
            meta_upsert(fs->meta, ent->parent, slash ? slash + 1 : copy, &put.out, NULL,
                        skyfs_now(), NULL, &ignored);
        }
    }
    free(path);
    return 0;
}

/* Compares what the cloud sends with the same bytes of the upload's file. */
struct same_bytes {
    int fd;
    bool differ;
};

static int same_bytes_take(void *arg, uint64_t pos, const void *data, size_t n)
{
    struct same_bytes *sb = arg;
    unsigned char buf[16384];
    for (size_t done = 0; done < n && !sb->differ;) {
        size_t part = n - done < sizeof buf ? n - done : sizeof buf;
        ssize_t got = pread(sb->fd, buf, part, (off_t)(pos + done));
        sb->differ = got != (ssize_t)part || memcmp(buf, (const char *)data + done, part) != 0;
        done += part;
    }
    return sb->differ ? -ECANCELED : 0;
}

/* Versions up to this size are compared byte for byte (below). */
#define SAME_BYTES_MAX (16u << 20)

/* Does the cloud's version `theirs` hold exactly the `size` bytes the
 * upload's file `fd` holds?  Then keeping this machine's version beside
 * it as a conflict copy would only make a second copy of the same file:
 * an upload of this machine whose answer and note a failing cache disk
 * lost, or the same archive extracted on two machines.  Read back when
 * no larger than SAME_BYTES_MAX; false when unsure. */
static bool same_bytes_on_cloud(struct cloud *c, const char *path, const struct sky_attr *theirs,
                                int fd, uint64_t size)
{
    if (theirs->size != size || size > SAME_BYTES_MAX)
        return false;
    struct same_bytes sb = { fd, false };
    struct sky_err e = { 0 };
    int rc = c->drv->read(c->ctx, path, theirs->etag, 0, size, same_bytes_take, &sb, &e);
    cloud_note_result(c, rc == -ECANCELED ? 0 : rc, &e);
    return rc == 0 && !sb.differ;
}

/* The cloud holds a version of obj's path that is not the upload's base
 * (send_file's -ESTALE): is it one of this machine's own earlier uploads,
 * whose answer never came (blocks_note_unanswered: same size and
 * modification time) or which the cache could not record
 * (blocks_is_landed: same etag)?  Then it is no other machine's change:
 * attr is set to replace that version, and true is returned.  `fresh`:
 * the note of attr's own size and time was made for this upload
 * (note_going_up), which the cloud refused, so a version of that size
 * and time is another machine's (the same file extracted there, say).
 * And a version that holds the very bytes of the upload's file `fd` is
 * replaced too (same_bytes_on_cloud): its attributes are this upload's. */
static bool own_earlier_upload(struct cloud *c, struct blocks_obj *obj, int fd,
                               struct sky_attr *attr, bool fresh)
{
    struct sky_attr theirs;
    struct sky_err e = { 0 };
    int rc = c->drv->stat(c->ctx, blocks_path(obj), &theirs, &e);
    cloud_note_result(c, rc, &e);
    if (rc != 0 || theirs.kind != SKY_FILE || !theirs.etag[0])
        return false;
    if (blocks_is_landed(obj, theirs.etag)) {
        LOG_INFO("cloud '%s': \"%s\" holds this machine's own earlier upload, which the "
                 "cache could not record; replacing it", c->cfg->name, blocks_path(obj));
    } else if ((theirs.has & SKY_HAS_MTIME) &&
               !(fresh && theirs.size == attr->size && theirs.mtime_ns == attr->mtime_ns) &&
               blocks_was_unanswered(obj, theirs.size, theirs.mtime_ns)) {
        LOG_INFO("cloud '%s': \"%s\" holds this machine's own earlier upload, whose answer "
                 "was lost; replacing it", c->cfg->name, blocks_path(obj));
    } else if (same_bytes_on_cloud(c, blocks_path(obj), &theirs, fd, attr->size)) {
        LOG_INFO("cloud '%s': \"%s\" changed since this machine last saw it, but holds the "
                 "same bytes as this machine's version: no conflict; replacing it (for the "
                 "attributes)", c->cfg->name, blocks_path(obj));
    } else {
        return false;
    }
    memcpy(attr->etag, theirs.etag, sizeof attr->etag);
    attr->expect = SKY_EXPECT_MATCH;
    return true;
}

/* Before an upload goes out: the version it makes (size, modification
 * time) is noted in the journal, durably.  The cloud may hold it before
 * this machine records the answer (blocks_committed, synced later: a
 * power cut in between takes it back, as does a connection cut before
 * the answer); the next upload then meets a version that is not its base,
 * and the note tells it that this machine made it (own_earlier_upload),
 * instead of keeping its content beside it as a conflict copy while the
 * cloud's file lacks the last acknowledged writes.  A note that cannot be
 * made (the cache's disk full) costs only that needless conflict copy.
 * True when this note is new (no earlier upload noted the same size and
 * time): see own_earlier_upload. */
static bool note_going_up(struct skyfs *fs, struct blocks_obj *obj, const struct sky_attr *attr)
{
    struct sky_err e = { 0 };
    bool fresh = !blocks_was_unanswered(obj, attr->size, attr->mtime_ns);
    if (blocks_note_unanswered(obj, attr->size, attr->mtime_ns, &e) != 0 ||
        blocks_sync(fs->blocks, &e) != 0)
        LOG_WARN("%s", e.msg);
    return fresh;
}

/* Upload a dirty object for (cloud, entry).  `mtime_ns` is the time to
 * record; `etag` is the version to fetch missing blocks from; `st` its
 * started stream, if any (finished or dropped here).  The object keeps
 * the cloud metadata of the one it replaces, as known now (upmeta.c: a
 * setxattr made while the file was written counts).  On success (0) the
 * entry's attributes and that metadata in the metadata cache follow.
 * The upload only replaces the version its content is based on (issue
 * 17): when another machine changed the file meanwhile, the content goes
 * up as a conflict copy instead and 1 is returned. */
static int upload(struct skyfs *fs, struct cloud *c, struct blocks_obj *obj,
                  struct meta_entry *ent, int64_t mtime_ns, int64_t ctime_ns, const char *etag,
                  struct stream *st, struct sky_attr *out, struct sky_err *e)
{
    int rc = 0, fd;
    if (!c->ctx)
        rc = sky_fail(e, c->open_err.code ? c->open_err.code : EIO, "%s", c->open_err.msg);
    else if (c->cfg->read_only)
        rc = sky_fail(e, EROFS, "cloud '%s' is read-only", c->cfg->name);
    else
        rc = cloud_offline_check(c, e);         /* kept in the journal until it is back */
    struct fetch_ctx f = { .cloud = c, .path = blocks_path(obj), .complete = true };
    snprintf(f.etag, sizeof f.etag, "%s", etag ? etag : "");
    if (rc == 0)        /* its folders made here go up first (localdirs.h) */
        rc = localdirs_ensure(fs, c, ent->parent, e);
    if (rc == 0)
        rc = blocks_prepare_upload(obj, fetch_from_cloud, &f, &fd, e);
    if (rc) {
        if (st)
            stream_drop(st);
        return rc;
    }
    struct sky_attr attr = upload_attr(fs, ent, obj, mtime_ns, ctime_ns);
    /* under a rename whose refresh failed: the version it moved there */
    moved_verify(fs, c, ent->ino, blocks_path(obj), attr.etag, sizeof attr.etag);
    struct sky_objmeta om;
    rc = upmeta_for_upload(fs, c, ent, blocks_path(obj), &om, e);
    if (rc) {
        if (st)
            stream_drop(st);
        return rc;
    }
    bool fresh = note_going_up(fs, obj, &attr);
    rc = send_file(c, obj, fd, &attr, &om, st, etag, out, e);
    if (rc == -ESTALE && own_earlier_upload(c, obj, fd, &attr, fresh)) {
        sky_err_clear(e);
        rc = send_file(c, obj, fd, &attr, &om, NULL, etag, out, e);    /* st: spent */
    }
    if (rc == -ESTALE) {
        struct sky_err why = *e;
        rc = keep_as_conflict_copy(fs, c, obj, ent, fd, &attr, &om, &why, e);
        sky_objmeta_free(&om);
        if (rc == 0 && ent->local_only)     /* the name holds the other machine's file */
            meta_set_local_only(fs->meta, ent->ino, false, NULL);
        return rc ? rc : 1;
    }
    if (rc == 0)
        rc = blocks_committed(obj, out->etag, e);
    if (rc == 0) {
        /* Keep the POSIX attributes we asked for; take size and etag from the cloud. */
        attr.size = out->size;
        memcpy(attr.etag, out->etag, sizeof attr.etag);
        upmeta_record(fs, ent->ino, &attr, &om);
        /* The cloud's times of the file, and of its folder (a driver
         * may upload through a temporary name there), moved by our
         * own doing: not news at their next refresh. */
        meta_own_change(fs->meta, ent->ino, true, skyfs_now(), NULL);
        if (ent->local_only)        /* a deferred create: on the cloud now */
            meta_set_local_only(fs->meta, ent->ino, false, NULL);
        *out = attr;
    }
    sky_objmeta_free(&om);
    return rc;
}

/* An upload failed and stays in the journal: the cache shows the file as
 * written here (size, mtime), so that stat and readers see its bytes
 * once it is closed, also while the cloud is offline; its freshness is
 * left as it was (of->lock held). */
static void note_pending(struct skyfs *fs, struct ofile *of, const struct meta_entry *ent)
{
    struct sky_attr a = ent->attr;
    a.size = blocks_size(of->obj);
    a.mtime_ns = of->mtime_ns;
    a.has |= SKY_HAS_MTIME;
    struct sky_err e = { 0 };
    if (meta_set_attr(fs->meta, of->ino, &a, ent->fetched_at, &e) != 0)
        LOG_WARN("%s", e.msg);
}

int files_sync(struct skyfs *fs, struct ofile *of, struct sky_err *e)
{
    pthread_mutex_lock(&of->upload_lock);
    int rc = files_sync_held(fs, of, e);
    pthread_mutex_unlock(&of->upload_lock);
    return rc;
}

/* An open file with writes not uploaded has lost its entry, though not
 * unlinked here: an earlier flush of it (a shell's `>` closes a copy of
 * the descriptor before the command writes) met another machine's change
 * or delete and went up as a conflict copy, and the name went to the other
 * machine's version.  What was written since goes up beside it too, as
 * another conflict copy; before, it was dropped ("nothing to upload to")
 * while write and close had succeeded.  of->lock held; 0 once it is up. */
static int upload_orphaned(struct skyfs *fs, struct ofile *of, struct stream *st,
                           struct sky_err *e)
{
    sky_err_clear(e);
    struct meta_entry lost = { 0 };
    lost.path = (char *)blocks_path(of->obj);
    lost.attr.kind = SKY_FILE;
    lost.attr.mode = 0644;
    lost.attr.has = SKY_HAS_MODE;
    struct sky_attr out;
    int rc = upload(fs, of->cloud, of->obj, &lost, of->mtime_ns, of->ctime_ns, of->etag, st,
                    &out, e);
    if (rc == 1 || rc == 0)
        of->upload_due = false;
    return rc == 1 ? 0 : rc;
}

int files_sync_held(struct skyfs *fs, struct ofile *of, struct sky_err *e)
{
    pthread_mutex_lock(&of->lock);
    int rc = 0;
    if (of->unlinked && of->stream) {
        stream_drop(of->stream);
        of->stream = NULL;
    }
    if (!of->unlinked && blocks_is_dirty(of->obj)) {
        /* A started stream is finished now (or given up); one that has
         * not begun keeps tracking the file. */
        struct stream *st = NULL;
        if (of->stream && stream_started(of->stream)) {
            st = of->stream;
            of->stream = NULL;
        }
        struct meta_entry ent;
        rc = meta_get(fs->meta, of->ino, &ent, e);
        if (rc == 0) {
            struct sky_attr out;
            rc = upload(fs, of->cloud, of->obj, &ent, of->mtime_ns, of->ctime_ns, of->etag, st,
                        &out, e);
            if (rc == 0) {
                memcpy(of->etag, out.etag, sizeof of->etag);
                of->upload_due = false;         /* a queued upload has nothing left to do */
            } else if (rc == 1) {
                rc = 0;         /* kept as a conflict copy: nothing lost */
                of->upload_due = false;
            } else {
                note_pending(fs, of, &ent);
            }
            meta_entry_free(&ent);
        } else if (rc == -ENOENT) {
            rc = upload_orphaned(fs, of, st, e);
        } else if (st) {
            stream_drop(st);
        }
    }
    pthread_mutex_unlock(&of->lock);
    return rc;
}

int files_closed_written(struct skyfs *fs, struct ofile *of, struct sky_err *e)
{
    if (!of->cloud->cfg->write_back_async)
        return files_sync(fs, of, e);
    int rc = 0;
    pthread_mutex_lock(&of->lock);
    if (!of->unlinked && blocks_is_dirty(of->obj) && (of->written || !of->upload_due)) {
        /* every byte local and on disk, the journal entry too: from here
         * on a crash loses nothing (the next mount uploads it).  (Not
         * again when nothing changed since: the release after a flush.) */
        struct fetch_ctx f;
        fetch_init(&f, of, of->etag);
        f.complete = true;
        rc = blocks_make_durable(of->obj, fetch_from_cloud, &f, e);
        if (rc == 0 && of->meta_unsynced) {
            /* its entry, and the attributes set on its descriptor */
            rc = commit_meta(fs, e);
            of->meta_unsynced = rc != 0;
        }
        if (rc == 0) {
            struct meta_entry ent;
            if (meta_get(fs->meta, of->ino, &ent, NULL) == 0) {
                note_pending(fs, of, &ent);     /* stat shows the local size and mtime */
                meta_entry_free(&ent);
            }
            of->upload_due = true;
            of->written = false;
        }
    }
    bool queue = rc == 0 && of->upload_due;
    pthread_mutex_unlock(&of->lock);
    if (queue)
        writeback_queue(fs, of);
    return rc;
}

int files_upload_queued(struct skyfs *fs, struct ofile *of, bool *again, struct sky_err *e)
{
    *again = false;
    pthread_mutex_lock(&of->upload_lock);
    pthread_mutex_lock(&of->lock);
    bool due = of->upload_due && !of->unlinked && blocks_is_dirty(of->obj);
    of->upload_due = false;
    struct meta_entry ent;
    int rc = due ? meta_get(fs->meta, of->ino, &ent, e) : 0;
    if (rc == -ENOENT) {
        /* its name went to another machine's version (upload_orphaned) */
        struct stream *st = of->stream && stream_started(of->stream) ? of->stream : NULL;
        if (st)
            of->stream = NULL;
        rc = upload_orphaned(fs, of, st, e);
        if (rc)
            of->upload_due = true;      /* retried */
        pthread_mutex_unlock(&of->lock);
        pthread_mutex_unlock(&of->upload_lock);
        return rc;
    }
    if (rc)
        of->upload_due = true;          /* retried */
    if (!due || rc) {
        pthread_mutex_unlock(&of->lock);
        pthread_mutex_unlock(&of->upload_lock);
        return rc;
    }
    int64_t mtime = of->mtime_ns, ctime = of->ctime_ns;
    char etag[SKY_ETAG_MAX];
    memcpy(etag, of->etag, sizeof etag);
    struct stream *st = NULL;          /* a streamed upload begun while it was written */
    if (of->stream && stream_started(of->stream)) {
        st = of->stream;
        of->stream = NULL;
    }
    pthread_mutex_unlock(&of->lock);
    /* Without of->lock: stat, reads and writes go on.  A write meanwhile
     * leaves the object dirty (blocks_committed), to be uploaded again. */
    struct sky_attr out;
    rc = upload(fs, of->cloud, of->obj, &ent, mtime, ctime, etag, st, &out, e);
    pthread_mutex_lock(&of->lock);
    if (rc == 0 || rc == 1) {           /* 1: kept as a conflict copy, nothing lost */
        if (rc == 0)
            memcpy(of->etag, out.etag, sizeof of->etag);
        rc = 0;
        *again = of->upload_due;        /* closed again after new writes */
    } else {
        of->upload_due = true;          /* retried; the journal keeps it meanwhile */
    }
    pthread_mutex_unlock(&of->lock);
    pthread_mutex_unlock(&of->upload_lock);
    meta_entry_free(&ent);
    return rc;
}

bool files_upload_pending(struct ofile *of)
{
    pthread_mutex_lock(&of->lock);
    bool pending = !of->unlinked && (of->upload_due || blocks_is_dirty(of->obj));
    pthread_mutex_unlock(&of->lock);
    return pending;
}

struct ofile *files_hold_upload(struct skyfs *fs, uint64_t ino)
{
    struct ofile *of = files_find(fs, ino);
    if (of)
        pthread_mutex_lock(&of->upload_lock);
    return of;
}

void files_release_upload(struct skyfs *fs, struct ofile *of)
{
    if (!of)
        return;
    pthread_mutex_unlock(&of->upload_lock);
    files_close(fs, of);
}

/* ---- the journal thread ----------------------------------------------- */

struct retry_pass {
    struct skyfs *fs;
    int failed;
};

static bool open_here(struct skyfs *fs, uint64_t ino)
{
    struct ofile *of = files_find(fs, ino);
    if (of)
        files_close(fs, of);
    return of != NULL;
}

static int recover_one(void *arg, struct blocks_obj *obj)
{
    struct retry_pass *pass = arg;
    struct skyfs *fs = pass->fs;
    struct cloud *c = skyfs_cloud_by_name(fs, blocks_cloud(obj));
    struct sky_err e = { 0 };
    if (fs->stopping)
        return 1;
    if (!c) {
        LOG_WARN("journal: pending upload of \"%s\" belongs to cloud '%s', which is no longer "
                 "configured; kept in the cache", blocks_path(obj), blocks_cloud(obj));
        return 0;
    }
    struct meta_entry ent = { 0 };
    uint64_t ino;
    bool known = meta_find_path(fs->meta, c->cfg->name, blocks_path(obj), &ino, NULL) == 0;
    if (known && open_here(fs, ino))
        return 0; /* its writer's close uploads it (and its writes hold it) */
    /* held until its upload is done (also after a crash, and while its
     * retries fail): news from the cloud leaves its entry as it is.  Not
     * a file open here: a create in progress must take the cloud's answer,
     * and its last close would not let it go */
    if (known)
        meta_hold(fs->meta, ino);
    bool have = known && meta_get(fs->meta, ino, &ent, NULL) == 0;
    if (have && ent.attr.kind == SKY_FILE && ent.attr.size != blocks_size(obj)) {
        /* the cache's entry came from the cloud after its own was lost (a
         * damaged metadata cache, cachedamage.h): it shows the pending
         * bytes again, as note_pending does */
        struct sky_attr a = ent.attr;
        a.size = blocks_size(obj);
        meta_set_attr(fs->meta, ino, &a, ent.fetched_at, NULL);
        meta_entry_free(&ent);
        memset(&ent, 0, sizeof ent);
        have = meta_get(fs->meta, ino, &ent, NULL) == 0;
    }
    if (have && c->cfg->write_back_async && fs->wb_started) {
        /* queued like a closed file, in the journal's order */
        struct ofile *of;
        int rc = files_open(fs, &ent, &of, &e);
        meta_entry_free(&ent);
        if (rc) {
            pass->failed++;
            LOG_ERROR("journal: cannot queue the upload of \"%s\" to cloud '%s': %s",
                      blocks_path(obj), c->cfg->name, e.msg);
            return 0;
        }
        pthread_mutex_lock(&of->lock);
        of->upload_due = true;
        hold_written(fs, of);
        pthread_mutex_unlock(&of->lock);
        writeback_queue(fs, of);
        files_close(fs, of);
        return 0;
    }
    if (!have) {
        /* no metadata left: upload with default attributes, into folders
         * made first where the cache knows none (a power cut can lose a
         * folder made here and not created on the cloud yet, localdirs.h,
         * with the file's entry; a cloud with real folders refuses a file
         * in a missing one) */
        if (localdirs_ensure_path(fs, c, blocks_path(obj), &e) != 0) {
            pass->failed++;
            LOG_ERROR("journal: cannot make the folders of pending \"%s\" on cloud '%s', "
                      "will retry: %s", blocks_path(obj), c->cfg->name, e.msg);
            return 0;
        }
        memset(&ent, 0, sizeof ent);
        ent.attr.kind = SKY_FILE;
        ent.attr.mode = 0644;
        ent.attr.has = SKY_HAS_MODE;
        ent.attr.mtime_ns = skyfs_now();
    }
    struct sky_attr out;
    int64_t mtime = ent.attr.mtime_ns ? ent.attr.mtime_ns : skyfs_now();
    sky_metrics_inc(SKY_M_UPLOAD_RETRIES);
    char base[SKY_ETAG_MAX];
    blocks_base_version(obj, base, sizeof base);
    int rc = upload(fs, c, obj, &ent, mtime, mtime, base, NULL, &out, &e);
    if ((rc == 0 || rc == 1) && known && !open_here(fs, ino))
        meta_unhold(fs->meta, ino);     /* held above (and since its close) */
    if (rc == 1) {
        LOG_INFO("journal: pending \"%s\" of cloud '%s' met another machine's version and "
                 "went up as a conflict copy", blocks_path(obj), c->cfg->name);
    } else if (rc) {
        pass->failed++;
        LOG_ERROR("journal: upload of \"%s\" to cloud '%s' failed, will retry: %s",
                  blocks_path(obj), c->cfg->name, e.msg);
    } else {
        LOG_INFO("journal: uploaded pending \"%s\" to cloud '%s'", blocks_path(obj),
                 c->cfg->name);
    }
    if (ent.cloud)
        meta_entry_free(&ent);
    return 0;
}

static void *recovery_main(void *arg)
{
    struct skyfs *fs = arg;
    int delay = 5;
    pthread_mutex_lock(&fs->retry_lock);
    while (!fs->stopping) {
        bool last = fs->final_pass;
        pthread_mutex_unlock(&fs->retry_lock);
        struct retry_pass pass = { fs, 0 };
        struct sky_err e = { 0 };
        /* renames a crash cut short first: uploads under them go to the
         * new names */
        pass.failed += renamelog_finish(fs);
        int rc = blocks_each_dirty(fs->blocks, recover_one, &pass, &e);
        /* folders a crash left local-only (the uploads just queued create
         * theirs first; the empty ones only this way) */
        pass.failed += localdirs_recover(fs);
        if (rc < 0)
            LOG_ERROR("journal: cannot read pending uploads: %s", e.msg);
        /* failing: back off from 5 s to 5 min; otherwise look every 30 s */
        int wait_s = pass.failed || rc < 0 ? delay : 30;
        delay = pass.failed || rc < 0 ? (delay * 2 > 300 ? 300 : delay * 2) : 5;
        long long due = clock_now_ms() + wait_s * 1000LL;
        pthread_mutex_lock(&fs->retry_lock);
        if (last)
            break;
        while (!fs->stopping && !fs->retry_now && !fs->final_pass) {
            /* an upload at close that failed since may want a pass sooner */
            long long at = fs->retry_at_ms && fs->retry_at_ms < due ? fs->retry_at_ms : due;
            struct timespec until = clock_at_ms(at);
            if (pthread_cond_timedwait(&fs->retry_cond, &fs->retry_lock, &until) != 0 &&
                clock_now_ms() >= at)
                break;
        }
        if (fs->retry_now)
            delay = 5;          /* a cloud came back: start the backoff over */
        fs->retry_now = false;
        fs->retry_at_ms = 0;    /* this pass takes what failed until now */
    }
    pthread_mutex_unlock(&fs->retry_lock);
    renamelog_free(fs);
    return NULL;
}

void files_retry_soon(struct skyfs *fs)
{
    pthread_mutex_lock(&fs->retry_lock);
    if (!fs->retry_at_ms) {
        fs->retry_at_ms = clock_now_ms() + FILES_RETRY_SOON_MS;
        pthread_cond_broadcast(&fs->retry_cond);
    }
    pthread_mutex_unlock(&fs->retry_lock);
}

void files_start_recovery(struct skyfs *fs)
{
    renamelog_load(fs);
    if (pthread_create(&fs->recovery_thread, NULL, recovery_main, fs) == 0)
        fs->recovery_started = true;
    else
        renamelog_free(fs);
}
