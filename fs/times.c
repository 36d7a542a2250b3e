/*
 * times.c - the three POSIX times of entries: what stat shows, and how
 * changes and accesses move them.
 *
 * A driver reports the times it knows (driver.h: a local folder all
 * three, an object store the mtime and what s3fs/rclone-style metadata
 * holds); what it does not know shows as the mtime, and an mtime no one
 * knows as the time the entry was fetched (or the mount started).  Before
 * one time is changed in the cache, the others are fixed at what stat
 * showed (times_fix), so that changing the ctime never moves an atime
 * that only defaulted to the mtime.
 *
 * Changes made through the mount move the times in the metadata cache at
 * once, as a POSIX file system would: every change of an entry moves its
 * ctime; creating, removing or renaming an entry moves its directory's
 * (both directories') mtime and ctime (times_touch).  On object stores
 * these times are stored in the cloud only when its metadata is written
 * anyway (an upload, chmod, utime); a refresh from the cloud never moves
 * them back (cache/meta.h).
 *
 * atime follows the relatime rule of Linux mounts: a read moves it when
 * it is not later than the mtime or the ctime, or is a day old
 * (times_accessed); the mount options noatime (never) and strictatime
 * (every read) choose otherwise.  That changes the cache only, never the
 * cloud, so a read costs no upload.
 */
#include "skyfs.h"

#include <string.h>

#define DAY_NS (86400LL * 1000000000LL)

void times_shown(const struct skyfs *fs, const struct meta_entry *ent, int64_t *mtime,
                 int64_t *atime, int64_t *ctime)
{
    const struct sky_attr *a = &ent->attr;
    int64_t m = (a->has & SKY_HAS_MTIME) || a->mtime_ns ? a->mtime_ns
                : ent->fetched_at ? ent->fetched_at : fs->started_ns;
    *mtime = m;
    *atime = (a->has & SKY_HAS_ATIME) ? a->atime_ns : m;
    *ctime = (a->has & SKY_HAS_CTIME) ? a->ctime_ns : m;
}

void times_fix(const struct skyfs *fs, const struct meta_entry *ent, struct sky_attr *a)
{
    int64_t m, at, ct;
    times_shown(fs, ent, &m, &at, &ct);
    if (!(a->has & SKY_HAS_MTIME)) {
        a->mtime_ns = m;
        a->has |= SKY_HAS_MTIME;
    }
    if (!(a->has & SKY_HAS_ATIME)) {
        a->atime_ns = at;
        a->has |= SKY_HAS_ATIME;
    }
    if (!(a->has & SKY_HAS_CTIME)) {
        a->ctime_ns = ct;
        a->has |= SKY_HAS_CTIME;
    }
}

int times_touch(struct skyfs *fs, uint64_t ino, unsigned which, int64_t now)
{
    struct meta_entry ent;
    int rc = meta_get(fs->meta, ino, &ent, NULL);
    if (rc)
        return rc;
    struct sky_attr a = ent.attr;
    times_fix(fs, &ent, &a);
    if (which & SKY_HAS_MTIME)
        a.mtime_ns = now;
    if (which & SKY_HAS_ATIME)
        a.atime_ns = now;
    if (which & SKY_HAS_CTIME)
        a.ctime_ns = now;
    /* keep the entry as fresh as it was: this is no news from the cloud */
    rc = meta_set_attr(fs->meta, ino, &a, ent.fetched_at, NULL);
    meta_entry_free(&ent);
    return rc;
}

static void times_fix_cb(void *fs, const struct meta_entry *ent, struct sky_attr *a)
{
    times_fix(fs, ent, a);
}

int times_rename(struct skyfs *fs, uint64_t ino, uint64_t parent, uint64_t newparent,
                 const char *newname, const char *onto_etag, struct sky_err *e)
{
    int64_t now = skyfs_now();
    const unsigned dir = SKY_HAS_MTIME | SKY_HAS_CTIME;
    struct meta_touch touch[3] = { { ino, SKY_HAS_CTIME, now }, { parent, dir, now },
                                   { newparent, dir, now } };
    struct meta_touches times = { touch, newparent != parent ? 3 : 2, times_fix_cb, fs };
    struct meta_rename_with with = { .onto_etag = onto_etag, .times = &times };
    return meta_rename_ex(fs->meta, ino, newparent, newname, &with, e);
}

int times_create_local(struct skyfs *fs, uint64_t parent, const char *name,
                       const struct sky_attr *attr, const struct sky_objmeta *om, uint64_t *ino,
                       struct sky_err *e)
{
    int64_t now = skyfs_now();
    struct meta_touch touch = { parent, SKY_HAS_MTIME | SKY_HAS_CTIME, now };
    struct meta_touches times = { &touch, 1, times_fix_cb, fs };
    return meta_upsert_local(fs->meta, parent, name, attr, om, now, &times, ino, e);
}

int64_t times_atime(struct skyfs *fs, uint64_t ino)
{
    struct meta_entry ent;
    if (meta_get(fs->meta, ino, &ent, NULL) != 0)
        return 0;
    int64_t m, at, ct;
    times_shown(fs, &ent, &m, &at, &ct);
    meta_entry_free(&ent);
    return at;
}

void times_meta_changed(struct skyfs *fs, uint64_t ino, int64_t atime_before)
{
    struct meta_entry ent;
    if (meta_get(fs->meta, ino, &ent, NULL) != 0)
        return;
    struct sky_attr a = ent.attr;
    times_fix(fs, &ent, &a);
    a.ctime_ns = skyfs_now();
    if (atime_before > a.atime_ns)
        a.atime_ns = atime_before;
    meta_set_attr(fs->meta, ino, &a, ent.fetched_at, NULL);
    meta_entry_free(&ent);
}

void times_dir_changed(struct skyfs *fs, uint64_t dir)
{
    times_touch(fs, dir, SKY_HAS_MTIME | SKY_HAS_CTIME, skyfs_now());
}

bool times_relatime_due(int64_t atime, int64_t mtime, int64_t ctime, int64_t now)
{
    return atime <= mtime || atime <= ctime || now - atime >= DAY_NS;
}

bool times_dir_read(struct skyfs *fs, const struct meta_entry *dir)
{
    if (fs->atime == ATIME_NOATIME)
        return false;
    int64_t m, at, ct, now = skyfs_now();
    times_shown(fs, dir, &m, &at, &ct);
    if (fs->atime != ATIME_STRICTATIME && !times_relatime_due(at, m, ct, now))
        return false;
    return meta_set_atime(fs->meta, dir->ino, now, NULL) == 0;
}

bool times_access_due(struct skyfs *fs, struct ofile *of)
{
    if (fs->atime == ATIME_NOATIME)
        return false;
    pthread_mutex_lock(&of->lock);
    bool due = !of->unlinked &&
               (fs->atime == ATIME_STRICTATIME ||
                times_relatime_due(of->atime_ns, of->mtime_ns, of->ctime_ns, skyfs_now()));
    pthread_mutex_unlock(&of->lock);
    return due;
}

bool times_accessed(struct skyfs *fs, struct ofile *of)
{
    if (fs->atime == ATIME_NOATIME)
        return false;
    int64_t now = skyfs_now();
    pthread_mutex_lock(&of->lock);
    bool due = !of->unlinked &&
               (fs->atime == ATIME_STRICTATIME ||
                times_relatime_due(of->atime_ns, of->mtime_ns, of->ctime_ns, now));
    if (due)
        of->atime_ns = now;
    pthread_mutex_unlock(&of->lock);
    return due && meta_set_atime(fs->meta, of->ino, now, NULL) == 0;
}
