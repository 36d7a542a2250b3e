/*
 * meta.c - the metadata cache: one SQLite table of entries.
 *
 * Every file, directory and symlink is one row of `entries`, keyed by its
 * inode number (an AUTOINCREMENT primary key, so numbers only grow and are
 * never handed out twice, even after the entry is removed).  UNIQUE(parent,
 * name) answers lookups and gives children in name order; the (cloud, path)
 * index answers "what is at this path" and, with a range condition, "all
 * descendants of this directory": everything under "a/b" has a path in
 * ["a/b/", "a/b0") because '0' is the byte after '/'.  Ranges need no
 * escaping, unlike LIKE, so names with '%' or '_' are safe, and renaming a
 * tree rewrites the prefix of those paths byte-wise in one UPDATE.
 *
 * One connection, one mutex; statements are prepared once and cached
 * (cachedb.h).  Walks over children page through the index by name, so the
 * mutex is not held while the caller's callback runs.
 *
 * Cloud metadata (schema version 3): content_type, storage_class and
 * meta_at (when the user metadata was last known complete) are columns of
 * `entries`, so a listing that carries them costs no extra statement; user
 * metadata items are rows of `user_meta` keyed by (ino, key), with an index
 * on (key, value) for `skyfs search --meta`.  Two triggers keep them true:
 * a removed entry takes its items with it, and a new version of an object
 * (its etag changes) forgets them, since a rewrite on an object store
 * replaces the metadata too.  The same rule, written as CASE expressions in
 * the attribute update, forgets the content type, storage class and
 * meta_at unless the source of the new version says them again.
 *
 * The trigram index (schema version 4): `entry_trigrams`, an FTS5 table
 * with the trigram tokenizer (case-folded) over the names, with `entries`
 * as its external content and the inode as its rowid, lets cache/search.c
 * find "names that contain these 3 characters" without a scan.  It is kept
 * in step here, once per write transaction, not by triggers: FTS5 writes
 * its pending terms to disk as a new segment whenever a statement opens a
 * savepoint, which every statement that fires a trigger does, so index
 * writes interleaved with our deletes and updates would cost a segment
 * each (measured: 2-3x slower relisting).  Instead, inodes only grow, so
 * the entries added by a transaction are those above the largest inode at
 * its start (meta_begin), indexed in one statement at its end
 * (meta_finish); an entry about to be deleted has its name queued in a
 * temporary table, forgotten in one statement at the end too.  A rename
 * updates the index at once (forget the old name, then add the new one).
 * So at every commit the index holds exactly the names `entries` holds.
 * Without FTS5 in the SQLite library there is no such table, nothing to
 * maintain, and searches scan.
 *
 * Special files and hard links: columns rdev (a device's number), nlink
 * (the names the cloud says the object has; 0 = unknown) and file_id (the
 * object's identity where names can share one, kept only while nlink > 1)
 * are added by their own idempotent step (meta_add_node_columns) and set
 * by their own statement after each insert or attribute update, so they
 * stay out of the way of the other columns' rules.  Every name of one
 * hard-linked file stays its own row and FUSE inode (so a name can go
 * without the others noticing), and stat shows them all the smallest of
 * their inode numbers (stat_ino).
 *
 * The mount's own changes: column own_ns is when the mount last changed
 * the entry on the cloud itself (meta_set_attr records it; meta_own_change
 * for what reaches the cloud without it: a new entry, an upload, and the
 * folder an upload passed through with a temporary name).  Such a change
 * leaves marks on the cloud's times that POSIX would not (a folder's
 * mtime moved by the temporary name, a ctime stamped by the cloud's clock
 * a little after the one the cache recorded), and a refresh after the TTL
 * must not take them for news: see TIME_COL.  It is a column, not memory,
 * because after a remount the cached times are still what the kernel was
 * told.  Added, when missing, by the same kind of step as local_only.
 *
 * This file holds the table, its statements, opening and the writers the
 * others share (meta_int.h); listings are merged in meta_listing.c, single
 * fields and cloud metadata are updated in meta_fields.c, and the crawl's
 * state lives in crawlstore.c.
 */
#include "meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cachedamage.h"
#include "cachedb.h"
#include "meta_int.h"

#define META_SCHEMA_VERSION 5


/* The last column is the inode stat shows (see "Hard links" at the top). */
#define ENTRY_COLS "ino,parent,cloud,name,path,kind,size,mtime_ns,mode,uid,gid,has,etag," \
                   "link,fetched_at,listed_at,rdev,nlink,file_id," \
                   "CASE WHEN file_id<>0 AND nlink>1 THEN (SELECT min(s.ino) FROM entries s " \
                   "WHERE s.cloud=entries.cloud AND s.file_id=entries.file_id) ELSE ino END," \
                   "atime_ns,ctime_ns,local_only"


/* In Q_UPDATE_ATTR: the entry stays what it was (?2 = new kind, ?9 = new
 * etag; 2 = SKY_DIR). */
#define SAME_ENTRY "(kind=?2 AND (?2=2 OR etag=?9))"

/* In Q_UPDATE_ATTR: the entry holds the same content, though an object
 * store may have given it a new etag (a copy for a rename, a metadata
 * change on Azure): the same etag, or the same size and mtime (?3, ?4). */
#define SAME_CONTENT "(kind=?2 AND (?2=2 OR etag=?9 OR (size=?3 AND mtime_ns=?4)))"

/* How much later than the mount's own last change of an entry (own_ns,
 * see "The mount's own changes" at the top) a cloud time may be and still
 * count as that change's mark, in ns: 10 ms.  On a local folder, and on
 * servers on this machine, none is needed: the cloud stamps its time (with
 * the kernel's coarse clock, which lags) before the call returns, and
 * own_ns is read after.  It covers a server whose clock runs a little
 * ahead of ours, or rounds a time up.  Larger would hide more of other
 * writers' changes: a change of only an entry's times (not its content:
 * the etag shows that) made within this much after our own is taken for
 * ours.  A server whose clock is further ahead shows our own changes as
 * later times, as before; one whose clock is behind hides, for as long as
 * it is behind, other writers' time-only changes made after ours. */
#define OWN_SLACK_NS "10000000"

/* In Q_UPDATE_ATTR: time column COL (bit BIT of `has`, new value PARAM).
 * A source that does not say it keeps the cached one while the entry
 * stays the same; and a refresh (?17 = 0: a listing or a stat, not a
 * change made through the mount) of the same content never moves it back
 * when KEEP holds, since the cache may know of later accesses and changes
 * than the cloud stores (atime and ctime, and a directory's mtime, are
 * kept in the cache alone on object stores); nor forward to a time no
 * later than the mount's own last change of the entry (plus OWN_SLACK_NS):
 * that is the mark of our own change, which the cache already records as
 * POSIX would (writing a file through a temporary name in its folder
 * leaves the folder as it was). */
#define TIME_COL(COL, BIT, PARAM, KEEP) \
    COL "=CASE WHEN " SAME_ENTRY " AND (?8&" BIT ")=0 AND (has&" BIT ")<>0 THEN " COL " " \
    "WHEN ?17=0 AND " SAME_CONTENT " AND (" KEEP ") AND (has&" BIT ")<>0 AND (" COL ">" PARAM \
    " OR " PARAM "<=own_ns+" OWN_SLACK_NS ") THEN " COL " ELSE " PARAM " END,"

/* An entry that news of its tree's disappearance from the cloud leaves
 * in place (meta_forget_tree): one made here and not uploaded yet, a file
 * whose writes here wait for their upload (held(ino): meta_hold), or a
 * folder above such an entry. */
#define KEPT_WHEN_GONE "(local_only<>0 OR held(ino) OR (kind=2 AND EXISTS (SELECT 1 " \
    "FROM entries l WHERE l.cloud=entries.cloud AND (l.local_only<>0 OR held(l.ino)) " \
    "AND l.path>entries.path || '/' AND l.path<entries.path || '0')))"

/* Queue the names of the entries selected by the condition that follows,
 * indexed ones only (inode <= ?9, the last one before the transaction), to
 * be removed from the trigram index at commit. */
#define TRI_GONE "INSERT OR IGNORE INTO temp.trigram_gone(ino,name) " \
                 "SELECT ino,name FROM entries WHERE ino<=?9 AND "

static const char *const meta_sql[Q_COUNT] = {
    [Q_GET] = "SELECT " ENTRY_COLS " FROM entries WHERE ino=?1",
    [Q_LOOKUP] = "SELECT " ENTRY_COLS " FROM entries WHERE parent=?1 AND name=?2",
    [Q_CHILDREN_PAGE] = "SELECT " ENTRY_COLS " FROM entries WHERE parent=?1 AND name>?2 "
                        "ORDER BY name LIMIT ?3",
    [Q_CHILD_COUNT] = "SELECT count(*) FROM entries WHERE parent=?1",
    [Q_CHILD_COUNT_UPTO] = "SELECT count(*) FROM (SELECT 1 FROM entries WHERE parent=?1 LIMIT ?2)",
    [Q_CHILD_KEYS] = "SELECT ino,name,kind,fetched_at,local_only,etag,size,cloud_modified_ns,"
                     "own_ns FROM entries WHERE parent=?1 ORDER BY name",
    [Q_INSERT] = "INSERT INTO entries(parent,cloud,name,path,kind,size,mtime_ns,mode,uid,gid,"
                 "has,etag,link,fetched_at,listed_at,content_type,storage_class,meta_at,"
                 "atime_ns,ctime_ns,cloud_modified_ns) "
                 "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,0,?15,?16,?17,?18,?19,"
                 "CASE WHEN ?11<>0 THEN ?20 ELSE 0 END)",
    /* A symlink target not given is kept while the kind and etag stay the
     * same; a directory keeps listed_at while it stays a directory; cloud
     * metadata not given is kept while the etag stays the same.  While the
     * entry stays the same (same kind; a directory, or the same etag), the
     * POSIX attributes the new ones lack (bits missing from `has`, as in an
     * S3 listing, which carries no user metadata) keep their cached values.
     * (In SET, `etag`, `kind` and `has` are still the old values.) */
    [Q_UPDATE_ATTR] = "UPDATE entries SET kind=?2,size=?3,"
                      TIME_COL("mtime_ns", "8", "?4", "?2=2")
                      TIME_COL("atime_ns", "16", "?15", "1")
                      TIME_COL("ctime_ns", "32", "?16", "1")
                      "mode=CASE WHEN " SAME_ENTRY " AND (?8&1)=0 AND (has&1)<>0 THEN mode ELSE ?5 END,"
                      "uid=CASE WHEN " SAME_ENTRY " AND (?8&2)=0 AND (has&2)<>0 THEN uid ELSE ?6 END,"
                      "gid=CASE WHEN " SAME_ENTRY " AND (?8&4)=0 AND (has&4)<>0 THEN gid ELSE ?7 END,"
                      "has=CASE WHEN " SAME_ENTRY " THEN has|?8 ELSE ?8 END,etag=?9,"
                      "link=CASE WHEN ?10 IS NOT NULL THEN ?10 "
                      "WHEN ?2=3 AND kind=3 AND etag=?9 THEN link ELSE NULL END,"
                      "fetched_at=?11,"
                      "listed_at=CASE WHEN ?2=2 AND kind=2 THEN listed_at ELSE 0 END,"
                      "content_type=CASE WHEN ?12 IS NOT NULL THEN ?12 "
                      "WHEN etag=?9 THEN content_type END,"
                      "storage_class=CASE WHEN ?13 IS NOT NULL THEN ?13 "
                      "WHEN etag=?9 THEN storage_class END,"
                      "meta_at=CASE WHEN ?14>0 THEN ?14 WHEN etag=?9 THEN meta_at ELSE 0 END,"
                      "cloud_modified_ns=CASE WHEN ?8<>0 THEN ?19 "
                      "WHEN etag=?9 THEN cloud_modified_ns ELSE 0 END,"
                      "own_ns=max(own_ns,?18) WHERE ino=?1",
    [Q_SET_OWN] = "UPDATE entries SET own_ns=max(own_ns,?2) WHERE ino=?1 OR "
                  "(?3<>0 AND ino=(SELECT parent FROM entries WHERE ino=?1))",
    [Q_SET_LINK] = "UPDATE entries SET link=?2 WHERE ino=?1",
    [Q_SET_ATIME] = "UPDATE entries SET atime_ns=?2,has=has|16 WHERE ino=?1",
    [Q_SET_LISTED] = "UPDATE entries SET listed_at=?2 WHERE ino=?1",
    [Q_SET_FETCHED] = "UPDATE entries SET fetched_at=?2,"
                      "cloud_modified_ns=CASE WHEN ?3<>0 THEN ?3 ELSE cloud_modified_ns END "
                      "WHERE ino=?1",
    [Q_FIND_PATH] = "SELECT ino FROM entries WHERE cloud=?1 AND path=?2",
    [Q_DELETE_INO] = "DELETE FROM entries WHERE ino=?1",
    [Q_DELETE_RANGE] = "DELETE FROM entries WHERE cloud=?1 AND path>=?2 AND path<?3",
    [Q_DELETE_CLOUD] = "DELETE FROM entries WHERE cloud=?1 AND path>''",
    [Q_MOVE] = "UPDATE entries SET parent=?2,name=?3,path=?4 WHERE ino=?1",
    /* byte-wise prefix swap: substr on a BLOB counts bytes, not characters */
    [Q_MOVE_RANGE] = "UPDATE entries SET path=?4 || CAST(substr(CAST(path AS BLOB), ?5) AS TEXT) "
                     "WHERE cloud=?1 AND path>=?2 AND path<?3",
    [Q_OBJMETA_GET] = "SELECT content_type,storage_class,meta_at FROM entries WHERE ino=?1",
    [Q_OBJMETA_SET] = "UPDATE entries SET content_type=coalesce(?2,content_type),"
                      "storage_class=coalesce(?3,storage_class),"
                      "meta_at=CASE WHEN ?4>0 THEN ?4 ELSE meta_at END WHERE ino=?1",
    [Q_USER_LIST] = "SELECT key,value FROM user_meta WHERE ino=?1 ORDER BY key",
    [Q_USER_CLEAR] = "DELETE FROM user_meta WHERE ino=?1",
    [Q_USER_PUT] = "INSERT OR REPLACE INTO user_meta(ino,key,value) VALUES(?1,?2,?3)",
    [Q_USER_DEL] = "DELETE FROM user_meta WHERE ino=?1 AND key=?2",
    [Q_MISSING_ALL] = "SELECT ino,path FROM entries WHERE cloud=?1 AND path>'' AND kind=1 "
                      "AND meta_at=0 ORDER BY path",
    [Q_MISSING_UNDER] = "SELECT ino,path FROM entries WHERE cloud=?1 AND kind=1 AND meta_at=0 "
                        "AND (path=?2 OR (path>=?3 AND path<?4)) ORDER BY path",
    /* the trigram index (see the top of this file): an external-content
     * FTS5 table forgets a row only when told its rowid and the very name
     * it was given */
    [Q_MAX_INO] = "SELECT coalesce(max(ino),0) FROM entries",
    [Q_TRI_GONE_INO] = TRI_GONE "ino=?1",
    [Q_TRI_GONE_RANGE] = TRI_GONE "cloud=?1 AND path>=?2 AND path<?3",
    [Q_TRI_GONE_CLOUD] = TRI_GONE "cloud=?1 AND path>''",
    /* meta_forget_tree: what stays of a tree the cloud says is gone */
    [Q_FORGET_TRI_RANGE] = TRI_GONE "cloud=?1 AND path>=?2 AND path<?3 AND NOT " KEPT_WHEN_GONE,
    [Q_FORGET_TRI_CLOUD] = TRI_GONE "cloud=?1 AND path>'' AND NOT " KEPT_WHEN_GONE,
    [Q_FORGET_RANGE] = "DELETE FROM entries WHERE cloud=?1 AND path>=?2 AND path<?3 AND NOT "
                       KEPT_WHEN_GONE,
    [Q_FORGET_CLOUD] = "DELETE FROM entries WHERE cloud=?1 AND path>'' AND NOT " KEPT_WHEN_GONE,
    [Q_FORGET_KEPT_RANGE] = "UPDATE entries SET local_only=1 WHERE cloud=?1 AND path>=?2 "
                            "AND path<?3 AND local_only=0 AND kind=2",
    [Q_FORGET_KEPT_CLOUD] = "UPDATE entries SET local_only=1 WHERE cloud=?1 AND path>'' "
                            "AND local_only=0 AND kind=2",
    [Q_LOCAL_BELOW_RANGE] = "SELECT 1 FROM entries WHERE cloud=?1 AND path>=?2 AND path<?3 "
                            "AND (local_only<>0 OR held(ino)) LIMIT 1",
    [Q_LOCAL_BELOW_CLOUD] = "SELECT 1 FROM entries WHERE cloud=?1 AND path>'' "
                            "AND (local_only<>0 OR held(ino)) LIMIT 1",
    [Q_KEPT_INO] = "SELECT 1 FROM entries WHERE ino=?1 AND " KEPT_WHEN_GONE,
    /* meta_moves.c */
    [Q_MOVE_PUT] = "INSERT OR REPLACE INTO moves(cloud,src,dst) VALUES(?1,?2,?3)",
    [Q_MOVE_DEL] = "DELETE FROM moves WHERE cloud=?1 AND src=?2",
    [Q_MOVE_LIST] = "SELECT cloud,src,dst FROM moves ORDER BY cloud,src",
    /* meta_uploads_lost */
    [Q_LOST_TRI] = TRI_GONE "local_only<>0 AND kind=1",
    [Q_LOST_FILES] = "DELETE FROM entries WHERE local_only<>0 AND kind=1",
    [Q_LOST_STALE] = "UPDATE entries SET fetched_at=0, listed_at=0, own_ns=0 WHERE local_only=0",
    [Q_TRI_FORGET_GONE] = "INSERT INTO entry_trigrams(entry_trigrams,rowid,name) "
                          "SELECT 'delete',ino,name FROM temp.trigram_gone",
    [Q_TRI_CLEAR_GONE] = "DELETE FROM temp.trigram_gone",
    [Q_TRI_ADD_NEW] = "INSERT INTO entry_trigrams(rowid,name) SELECT ino,name FROM entries "
                      "WHERE ino>?1",
    [Q_TRI_FORGET_INO] = "INSERT INTO entry_trigrams(entry_trigrams,rowid,name) "
                         "SELECT 'delete',ino,name FROM entries WHERE ino=?1",
    [Q_TRI_ADD] = "INSERT INTO entry_trigrams(rowid,name) VALUES(?1,?2)",
    /* special files and hard links (see the top of this file) */
    [Q_SET_NODE] = "UPDATE entries SET rdev=?2,nlink=?3,file_id=CASE WHEN ?3>1 THEN ?4 ELSE 0 END "
                   "WHERE ino=?1",
    [Q_SUBDIR_COUNT] = "SELECT count(*) FROM entries WHERE parent=?1 AND kind=2",
    [Q_SET_NLINKS] = "UPDATE entries SET nlink=?3 WHERE cloud=?1 AND file_id=?2",
    [Q_SAME_FILE] = "SELECT ino FROM entries WHERE cloud=?1 AND file_id=?2 AND ino<>?3",
    [Q_SET_LOCAL_ONLY] = "UPDATE entries SET local_only=?2 WHERE ino=?1",
    [Q_NEXT_DEFERRED] = "SELECT ino FROM entries WHERE cloud=?1 AND ino>?2 AND local_only<>0 "
                        "AND kind IN (2,3) ORDER BY ino LIMIT 1",
    [Q_DEFERRED_COUNT] = "SELECT count(*) FROM entries WHERE local_only<>0 AND kind IN (2,3)",
};

static const char meta_schema[] =
    "CREATE TABLE entries("
    " ino INTEGER PRIMARY KEY AUTOINCREMENT,"
    " parent INTEGER NOT NULL,"
    " cloud TEXT,"
    " name TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " kind INTEGER NOT NULL,"
    " size INTEGER NOT NULL DEFAULT 0,"
    " mtime_ns INTEGER NOT NULL DEFAULT 0,"
    " mode INTEGER NOT NULL DEFAULT 0,"
    " uid INTEGER NOT NULL DEFAULT 0,"
    " gid INTEGER NOT NULL DEFAULT 0,"
    " has INTEGER NOT NULL DEFAULT 0,"
    " etag TEXT NOT NULL DEFAULT '',"
    " link TEXT,"
    " fetched_at INTEGER NOT NULL DEFAULT 0,"
    " listed_at INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(parent, name));"
    "CREATE INDEX entries_cloud_path ON entries(cloud, path);"
    "INSERT INTO entries(ino,parent,cloud,name,path,kind) VALUES(1,0,NULL,'','',2);";

/* Version 2: names are indexed, so `skyfs search --name` with a literal
 * or a literal prefix answers from the index instead of a table scan. */
static const char meta_schema_v2[] =
    "CREATE INDEX IF NOT EXISTS entries_name ON entries(name);";

/* Version 3: cloud metadata (see the top of this file).  Older databases
 * gain the columns empty: what they list next fills them. */
static const char meta_schema_v3[] =
    "ALTER TABLE entries ADD COLUMN content_type TEXT;"
    "ALTER TABLE entries ADD COLUMN storage_class TEXT;"
    "ALTER TABLE entries ADD COLUMN meta_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE user_meta("
    " ino INTEGER NOT NULL,"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " PRIMARY KEY(ino, key)) WITHOUT ROWID;"
    "CREATE INDEX user_meta_key_value ON user_meta(key, value);"
    "CREATE TRIGGER entries_gone AFTER DELETE ON entries "
    " BEGIN DELETE FROM user_meta WHERE ino=old.ino; END;"
    "CREATE TRIGGER entries_new_version AFTER UPDATE OF etag ON entries "
    " WHEN old.etag IS NOT new.etag "
    " BEGIN DELETE FROM user_meta WHERE ino=new.ino; END;";

/* Version 5: atime and ctime (driver.h's SKY_HAS_ATIME, SKY_HAS_CTIME).
 * Older entries gain them as 0, with their `has` bits clear: the times
 * then read as the mtime until a source says them. */
static const char meta_schema_v5[] =
    "ALTER TABLE entries ADD COLUMN atime_ns INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE entries ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;";

/* Version 4: the trigram index of names (see the top of this file), made
 * by meta_prepare_schema when SQLite has FTS5, and filled from the rows
 * already there.  Only the rowids are needed (the names are tested on the
 * rows), so FTS5 keeps no positions (detail=none) and no sizes
 * (columnsize=0).  It merges its segments 16 at a time instead of 4: with
 * a segment per transaction, indexing 100,000 entries in listings of a
 * thousand costs 13% fewer instructions, a query a tenth of a millisecond
 * more. */
static const char meta_trigrams[] =
    "CREATE VIRTUAL TABLE entry_trigrams USING fts5(name, content='entries', "
    "content_rowid='ino', tokenize='trigram case_sensitive 0', detail=none, columnsize=0);"
    "INSERT INTO entry_trigrams(entry_trigrams, rank) VALUES('automerge', 16);"
    "INSERT INTO entry_trigrams(entry_trigrams) VALUES('rebuild');";

/* Special files and hard links: columns added, when missing, by a step of
 * their own that any schema version runs (so it combines with other
 * upgrades in any order), with an index to find a file's other names. */
static const char meta_node_columns[] =
    "ALTER TABLE entries ADD COLUMN rdev INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE entries ADD COLUMN nlink INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE entries ADD COLUMN file_id INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX IF NOT EXISTS entries_file_id ON entries(cloud, file_id) WHERE file_id<>0;";

/* The mount's own changes (see the top of this file): a column added, when
 * missing, by a step of its own as below. */
static const char meta_own_column[] =
    "ALTER TABLE entries ADD COLUMN own_ns INTEGER NOT NULL DEFAULT 0;";

/* The cloud's stamp (sky_attr.modified_ns: Last-Modified) of the version
 * whose metadata the entry holds, as a stat or one of the mount's own
 * changes reported it (0 = not known; a listing that carries no metadata
 * never sets it, see meta_listing.c), kept only once settled
 * (meta_settled_stamp): a column added, when missing, by a step of its
 * own as below. */
static const char meta_cloud_modified_column[] =
    "ALTER TABLE entries ADD COLUMN cloud_modified_ns INTEGER NOT NULL DEFAULT 0;";

/* Files made here and not uploaded yet (write_back = async defers the
 * create to the upload): a column added, when missing, by a step of its
 * own as above, so that caches made before it keep working.  Such an
 * entry is not on the cloud: a listing or a crawl that lacks it keeps it,
 * and lookups answer it from the cache. */
static const char meta_local_only_column[] =
    "ALTER TABLE entries ADD COLUMN local_only INTEGER NOT NULL DEFAULT 0;";

/* Folders and symlinks made here and not created on the cloud yet
 * (write_back = async defers a mkdir and a symlink too): found by
 * meta_next_deferred through an index of their own, small as they are
 * few.  Made at every open (cheap when it exists), so that caches made
 * before it get it; the index of folders alone that came before it goes. */
static const char meta_deferred_index[] =
    "DROP INDEX IF EXISTS entries_local_dirs;"
    "CREATE INDEX IF NOT EXISTS entries_deferred ON entries(cloud, ino) "
    "WHERE local_only<>0 AND kind IN (2,3);"
    /* and the subfolders of a folder (its link count: meta_subdir_count,
     * asked at every stat of a folder) without reading all its entries */
    "CREATE INDEX IF NOT EXISTS entries_subdirs ON entries(parent) WHERE kind=2;"
    /* directory renames in progress (meta_moves.c) */
    "CREATE TABLE IF NOT EXISTS moves(cloud TEXT NOT NULL, src TEXT NOT NULL, "
    "dst TEXT NOT NULL, PRIMARY KEY(cloud, src)) WITHOUT ROWID;";

/* Per connection, in memory: the names to take out of the trigram index at
 * the end of the write transaction (meta_update_trigrams). */
static const char meta_trigram_queue[] =
    "CREATE TEMP TABLE trigram_gone(ino INTEGER PRIMARY KEY, name TEXT NOT NULL);";

/* ---- small helpers ------------------------------------------------------ */

bool meta_valid_name(const char *name)
{
    return name && name[0] && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

bool meta_valid_kind(const struct sky_attr *a)
{
    return a && (a->kind == SKY_FILE || a->kind == SKY_DIR || a->kind == SKY_LINK ||
                 sky_kind_special((int)a->kind));
}

int meta_check_new(const char *name, const struct sky_attr *attr, struct sky_err *e)
{
    if (!meta_valid_name(name))
        return sky_fail(e, EINVAL, "metadata cache: '%s' is not a valid name",
                        name ? name : "(null)");
    if (!meta_valid_kind(attr))
        return sky_fail(e, EINVAL, "metadata cache: '%s': unknown kind", name);
    return 0;
}

/* "dir/name", or "name" when dir is the cloud root "". */
char *meta_join(const char *dir, const char *name)
{
    char *out;
    if (!dir[0])
        return strdup(name);
    return asprintf(&out, "%s/%s", dir, name) < 0 ? NULL : out;
}

/* Bounds of the paths strictly below `path`: [path "/", path "0"). */
int meta_tree_bounds(const char *path, char **lo, char **hi)
{
    *lo = *hi = NULL;
    if (asprintf(lo, "%s/", path) < 0) {
        *lo = NULL;
        return -ENOMEM;
    }
    if (asprintf(hi, "%s0", path) < 0) {
        free(*lo);
        *lo = *hi = NULL;
        return -ENOMEM;
    }
    return 0;
}

int meta_oom(struct sky_err *e)
{
    return sky_fail(e, ENOMEM, "metadata cache: out of memory");
}

void meta_entry_free(struct meta_entry *ent)
{
    if (!ent)
        return;
    free(ent->cloud);
    free(ent->name);
    free(ent->path);
    free(ent->link);
    ent->cloud = ent->name = ent->path = ent->link = NULL;
}

/* Fill `out` from a row of ENTRY_COLS. */
int meta_entry_from_row(sqlite3_stmt *st, struct meta_entry *out, struct sky_err *e)
{
    int oom = 0;
    memset(out, 0, sizeof *out);
    out->ino = (uint64_t)sqlite3_column_int64(st, 0);
    out->parent = (uint64_t)sqlite3_column_int64(st, 1);
    out->cloud = cachedb_column_strdup(st, 2, &oom);
    out->name = cachedb_column_strdup(st, 3, &oom);
    out->path = cachedb_column_strdup(st, 4, &oom);
    out->attr.kind = (enum sky_kind)sqlite3_column_int(st, 5);
    out->attr.size = (uint64_t)sqlite3_column_int64(st, 6);
    out->attr.mtime_ns = sqlite3_column_int64(st, 7);
    out->attr.mode = (uint32_t)sqlite3_column_int64(st, 8);
    out->attr.uid = (uint32_t)sqlite3_column_int64(st, 9);
    out->attr.gid = (uint32_t)sqlite3_column_int64(st, 10);
    out->attr.has = (unsigned)sqlite3_column_int64(st, 11);
    const unsigned char *etag = sqlite3_column_text(st, 12);
    snprintf(out->attr.etag, sizeof out->attr.etag, "%s", etag ? (const char *)etag : "");
    out->link = cachedb_column_strdup(st, 13, &oom);
    out->fetched_at = sqlite3_column_int64(st, 14);
    out->listed_at = sqlite3_column_int64(st, 15);
    out->attr.rdev = (uint64_t)sqlite3_column_int64(st, 16);
    out->attr.nlink = (uint32_t)sqlite3_column_int64(st, 17);
    out->attr.file_id = (uint64_t)sqlite3_column_int64(st, 18);
    out->stat_ino = (uint64_t)sqlite3_column_int64(st, 19);
    out->attr.atime_ns = sqlite3_column_int64(st, 20);
    out->attr.ctime_ns = sqlite3_column_int64(st, 21);
    out->local_only = sqlite3_column_int(st, 22) != 0;
    if (oom || !out->name || !out->path) {
        meta_entry_free(out);
        return meta_oom(e);
    }
    return 0;
}

/* Step a statement expected to return at most one entry row. */
static int meta_one_entry(struct meta *m, sqlite3_stmt *st, struct meta_entry *out,
                          const char *what, struct sky_err *e)
{
    int rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW)
        ret = meta_entry_from_row(st, out, e);
    else if (rc == SQLITE_DONE)
        ret = sky_fail(e, ENOENT, "metadata cache: no entry for %s", what);
    else
        ret = cachedb_fail(&m->db, rc, "reading an entry", e);
    sqlite3_reset(st);
    return ret;
}

/* ---- lookups (mutex held) ---------------------------------------------- */

int meta_get_locked(struct meta *m, uint64_t ino, struct meta_entry *out,
                           struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_GET, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    char what[48];
    snprintf(what, sizeof what, "inode %llu", (unsigned long long)ino);
    return meta_one_entry(m, st, out, what, e);
}

int meta_lookup_locked(struct meta *m, uint64_t parent, const char *name,
                              struct meta_entry *out, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_LOOKUP, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
    cachedb_bind_text(st, 2, name);
    return meta_one_entry(m, st, out, name, e);
}

/* The directory `ino`, or -ENOENT / -ENOTDIR. */
int meta_get_dir_locked(struct meta *m, uint64_t ino, struct meta_entry *out,
                        struct sky_err *e)
{
    int rc = meta_get_locked(m, ino, out, e);
    if (rc)
        return rc;
    if (out->attr.kind != SKY_DIR) {
        meta_entry_free(out);
        return sky_fail(e, ENOTDIR, "metadata cache: inode %llu is not a directory",
                        (unsigned long long)ino);
    }
    return 0;
}

/* ---- changes (mutex held, inside a transaction where it matters) ------- */

/* Statement `which`, with ?9 bound to the trigram mark when it has one. */
static sqlite3_stmt *meta_stmt(struct meta *m, int which, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, which, e);
    if (st && which >= Q_TRI_GONE_INO && which <= Q_TRI_GONE_LAST)
        sqlite3_bind_int64(st, 9, m->tri_mark);
    return st;
}

/* Run statement `which` on the entry `ino`. */
static int meta_step_ino(struct meta *m, int which, uint64_t ino, const char *doing,
                         struct sky_err *e)
{
    sqlite3_stmt *st = meta_stmt(m, which, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    return cachedb_done(&m->db, st, doing, e);
}

/* Statement `which` bound to the paths of `cloud` in [lo, hi), or to the
 * whole cloud but its root when lo is NULL; NULL with e filled on error. */
static sqlite3_stmt *meta_tree_stmt(struct meta *m, int which, const char *cloud,
                                    const char *lo, const char *hi, struct sky_err *e)
{
    sqlite3_stmt *st = meta_stmt(m, which, e);
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        if (lo) {
            cachedb_bind_text(st, 2, lo);
            cachedb_bind_text(st, 3, hi);
        }
    }
    return st;
}

/* Run statement `which` on the paths of `cloud` in [lo, hi), or on the
 * whole cloud but its root when lo is NULL. */
static int meta_step_tree(struct meta *m, int which, const char *cloud, const char *lo,
                          const char *hi, const char *doing, struct sky_err *e)
{
    sqlite3_stmt *st = meta_tree_stmt(m, which, cloud, lo, hi, e);
    return st ? cachedb_done(&m->db, st, doing, e) : -e->code;
}

/* Delete everything below `path` in `cloud` (not the entry itself), their
 * names queued for the trigram index first. */
static int meta_drop_tree(struct meta *m, const char *cloud, const char *path,
                          struct sky_err *e)
{
    if (!cloud)
        return sky_fail(e, EINVAL, "metadata cache: the root cannot be emptied");
    char *lo = NULL, *hi = NULL;
    if (path[0] && meta_tree_bounds(path, &lo, &hi))
        return meta_oom(e);
    int rc = 0;
    if (m->trigrams) {
        rc = meta_step_tree(m, lo ? Q_TRI_GONE_RANGE : Q_TRI_GONE_CLOUD, cloud, lo, hi,
                            "unindexing descendants", e);
        m->tri_gone = true;
    }
    if (rc == 0)
        rc = meta_step_tree(m, lo ? Q_DELETE_RANGE : Q_DELETE_CLOUD, cloud, lo, hi,
                            "removing descendants", e);
    free(lo);
    free(hi);
    return rc;
}

static int meta_delete_ino(struct meta *m, uint64_t ino, struct sky_err *e)
{
    int rc = 0;
    if (m->trigrams) {
        rc = meta_step_ino(m, Q_TRI_GONE_INO, ino, "unindexing a name", e);
        m->tri_gone = true;
    }
    return rc ? rc : meta_step_ino(m, Q_DELETE_INO, ino, "removing an entry", e);
}

/* Remove an entry and, if it is a directory, everything below it. */
int meta_remove_tree(struct meta *m, uint64_t ino, enum sky_kind kind, const char *cloud,
                            const char *path, struct sky_err *e)
{
    int rc = kind == SKY_DIR ? meta_drop_tree(m, cloud, path, e) : 0;
    return rc ? rc : meta_delete_ino(m, ino, e);
}

/* Step st (bound, from cachedb_stmt): *found = whether it gave a row. */
static int meta_any_row(struct meta *m, sqlite3_stmt *st, const char *what, bool *found,
                        struct sky_err *e)
{
    int step = sqlite3_step(st);
    *found = step == SQLITE_ROW;
    int rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : cachedb_fail(&m->db, step, what, e);
    sqlite3_reset(st);
    return rc;
}

int meta_forget_tree(struct meta *m, uint64_t ino, enum sky_kind kind, const char *cloud,
                     const char *path, bool *kept, struct sky_err *e)
{
    bool keep = false;
    if (kept)
        *kept = false;
    if (!cloud)                 /* a cloud's own folder: no pending upload above */
        return meta_remove_tree(m, ino, kind, cloud, path, e);
    if (kind != SKY_DIR) {
        sqlite3_stmt *st = cachedb_stmt(&m->db, Q_KEPT_INO, e);
        if (!st)
            return -e->code;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        int rc = meta_any_row(m, st, "looking for a pending upload", &keep, e);
        if (rc || !keep)
            return rc ? rc : meta_remove_tree(m, ino, kind, cloud, path, e);
        if (kept)
            *kept = true;
        return 0;
    }
    char *lo = NULL, *hi = NULL;
    if (path[0] && meta_tree_bounds(path, &lo, &hi))
        return meta_oom(e);
    int rc = 0;
    if (m->trigrams) {
        rc = meta_step_tree(m, lo ? Q_FORGET_TRI_RANGE : Q_FORGET_TRI_CLOUD, cloud, lo, hi,
                            "unindexing descendants", e);
        m->tri_gone = true;
    }
    if (rc == 0)
        rc = meta_step_tree(m, lo ? Q_FORGET_RANGE : Q_FORGET_CLOUD, cloud, lo, hi,
                            "removing descendants", e);
    if (rc == 0)
        rc = meta_step_tree(m, lo ? Q_FORGET_KEPT_RANGE : Q_FORGET_KEPT_CLOUD, cloud, lo, hi,
                            "keeping folders above files not uploaded yet", e);
    sqlite3_stmt *st = rc ? NULL : meta_tree_stmt(m, lo ? Q_LOCAL_BELOW_RANGE
                                                        : Q_LOCAL_BELOW_CLOUD, cloud, lo, hi, e);
    if (rc == 0 && !st)
        rc = -e->code;
    if (st)
        rc = meta_any_row(m, st, "looking for files not uploaded yet", &keep, e);
    free(lo);
    free(hi);
    if (rc || !keep)
        return rc ? rc : meta_delete_ino(m, ino, e);
    if (kept)
        *kept = true;
    /* the folder stays, to be made again (a cloud's root is the cloud) */
    return path[0] ? meta_set_local_only_locked(m, ino, true, e) : 0;
}

/* An entry being renamed: its old name out of the trigram index now,
 * before the move (an entry new in this transaction is not in it yet). */
static int meta_unindex_name(struct meta *m, uint64_t ino, struct sky_err *e)
{
    if (!m->trigrams || (int64_t)ino > m->tri_mark)
        return 0;
    return meta_step_ino(m, Q_TRI_FORGET_INO, ino, "unindexing a name", e);
}

/* ... and its new name in, after the move (an entry new in this
 * transaction is added at commit). */
static int meta_index_name(struct meta *m, uint64_t ino, const char *new_name,
                           struct sky_err *e)
{
    if (!m->trigrams || (int64_t)ino > m->tri_mark)
        return 0;
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_TRI_ADD, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    cachedb_bind_text(st, 2, new_name);
    return cachedb_done(&m->db, st, "indexing a name", e);
}

/* ---- write transactions ------------------------------------------------- */

/* BEGIN IMMEDIATE, and note where the trigram index stands: every entry
 * after the largest inode now is new in this transaction. */
int meta_begin(struct meta *m, struct sky_err *e)
{
    int rc = cachedb_begin(&m->db, e);
    if (rc || !m->trigrams)
        return rc;
    m->tri_gone = false;
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_MAX_INO, e);
    if (!st) {
        rc = -e->code;
    } else {
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            m->tri_mark = sqlite3_column_int64(st, 0);
        else
            rc = cachedb_fail(&m->db, step, "starting a transaction", e);
        sqlite3_reset(st);
    }
    if (rc)
        cachedb_rollback(&m->db);
    return rc;
}

/* Run statement `which`, which has no parameters (but the trigram mark
 * of a TRI_GONE statement). */
static int meta_step(struct meta *m, int which, const char *doing, struct sky_err *e)
{
    sqlite3_stmt *st = meta_stmt(m, which, e);
    return st ? cachedb_done(&m->db, st, doing, e) : -e->code;
}

/* Bring the trigram index up to date in one go (see the top of this
 * file): the queued names out, the names of the new entries in. */
static int meta_update_trigrams(struct meta *m, struct sky_err *e)
{
    int rc = 0;
    if (m->tri_gone) {
        rc = meta_step(m, Q_TRI_FORGET_GONE, "unindexing names", e);
        if (rc == 0)
            rc = meta_step(m, Q_TRI_CLEAR_GONE, "unindexing names", e);
    }
    sqlite3_stmt *st = rc ? NULL : cachedb_stmt(&m->db, Q_TRI_ADD_NEW, e);
    if (!st)
        return rc ? rc : -e->code;
    sqlite3_bind_int64(st, 1, m->tri_mark);
    return cachedb_done(&m->db, st, "indexing names", e);
}

/* Commit when rc is 0, else roll back; returns rc or the commit's error. */
int meta_finish(struct meta *m, int rc, struct sky_err *e)
{
    if (rc == 0 && m->trigrams)
        rc = meta_update_trigrams(m, e);
    if (rc == 0)
        return cachedb_commit(&m->db, e);
    cachedb_rollback(&m->db);
    return rc;
}

int64_t meta_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t meta_settled_stamp(int64_t stamp)
{
    const int64_t s = 1000000000LL;
    return stamp > 0 && stamp / s < meta_wall_now() / s ? stamp : 0;
}

static void meta_bind_attr(sqlite3_stmt *st, int first, const struct sky_attr *a)
{
    sqlite3_bind_int(st, first, (int)a->kind);
    sqlite3_bind_int64(st, first + 1, a->kind == SKY_DIR ? 0 : (sqlite3_int64)a->size);
    sqlite3_bind_int64(st, first + 2, a->mtime_ns);
    sqlite3_bind_int64(st, first + 3, a->mode);
    sqlite3_bind_int64(st, first + 4, a->uid);
    sqlite3_bind_int64(st, first + 5, a->gid);
    sqlite3_bind_int64(st, first + 6, a->has);
    sqlite3_bind_text(st, first + 7, a->etag, (int)strnlen(a->etag, sizeof a->etag),
                      SQLITE_STATIC);
}

/* Content type, storage class and meta_at (now when om holds the complete
 * user metadata, else 0) at parameters first .. first + 2. */
void meta_bind_objmeta(sqlite3_stmt *st, int first, const struct sky_objmeta *om,
                       int64_t now)
{
    cachedb_bind_text(st, first, om ? om->content_type : NULL);
    cachedb_bind_text(st, first + 1, om ? om->storage_class : NULL);
    sqlite3_bind_int64(st, first + 2, om && om->has_user ? now : 0);
}

/* Replace the user metadata items of `ino` with om's (clear: delete the
 * old ones first; a new entry has none). */
int meta_put_user_locked(struct meta *m, uint64_t ino, const struct sky_objmeta *om,
                         bool clear, struct sky_err *e)
{
    sqlite3_stmt *st;
    int rc = 0;
    if (clear) {
        if (!(st = cachedb_stmt(&m->db, Q_USER_CLEAR, e)))
            return -e->code;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        rc = cachedb_done(&m->db, st, "clearing user metadata", e);
    }
    for (size_t i = 0; rc == 0 && i < om->nuser; i++) {
        if (!(st = cachedb_stmt(&m->db, Q_USER_PUT, e)))
            return -e->code;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        cachedb_bind_text(st, 2, om->user[i].key);
        sqlite3_bind_text(st, 3, om->user[i].value, (int)om->user[i].len, SQLITE_STATIC);
        rc = cachedb_done(&m->db, st, "storing user metadata", e);
    }
    return rc;
}

/* The device number, link count and file identity of a (columns added
 * after the others; see "Special files and hard links" at the top). */
static int meta_set_node_locked(struct meta *m, uint64_t ino, const struct sky_attr *a,
                                struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SET_NODE, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)a->rdev);
    sqlite3_bind_int64(st, 3, a->nlink);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)a->file_id);
    return cachedb_done(&m->db, st, "updating an entry", e);
}

bool meta_news_kept_out(const struct meta *m, uint64_t ino, enum meta_from from)
{
    return from == META_FROM_CLOUD && u64set_has(&m->held, ino);
}

int meta_set_fetched_locked(struct meta *m, uint64_t ino, int64_t when, int64_t stamp,
                            struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SET_FETCHED, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    sqlite3_bind_int64(st, 2, when);
    sqlite3_bind_int64(st, 3, stamp);
    return cachedb_done(&m->db, st, "refreshing an entry", e);
}

/* New attributes for an existing entry (old kind `old_kind`, at cloud/path),
 * with the cloud metadata `om` (may be NULL) that came with them, from
 * `from` (meta_from; for the times: TIME_COL). */
int meta_update_attr(struct meta *m, uint64_t ino, enum sky_kind old_kind,
                            const char *cloud, const char *path, const struct sky_attr *a,
                            const char *link, const struct sky_objmeta *om, int64_t now,
                            enum meta_from from, struct sky_err *e)
{
    if (meta_news_kept_out(m, ino, from))      /* only that the cloud was asked */
        return meta_set_fetched_locked(m, ino, now, 0, e);
    bool exact = from == META_FROM_MOUNT;
    if (old_kind == SKY_DIR && a->kind != SKY_DIR) {
        int rc = meta_drop_tree(m, cloud, path, e);
        if (rc)
            return rc;
    }
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_UPDATE_ATTR, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    meta_bind_attr(st, 2, a);
    cachedb_bind_text(st, 10, a->kind == SKY_LINK ? link : NULL);
    sqlite3_bind_int64(st, 11, now);
    meta_bind_objmeta(st, 12, om, now);
    sqlite3_bind_int64(st, 15, a->atime_ns);
    sqlite3_bind_int64(st, 16, a->ctime_ns);
    sqlite3_bind_int(st, 17, exact);
    sqlite3_bind_int64(st, 18, exact ? meta_wall_now() : 0);   /* the mount's own change */
    sqlite3_bind_int64(st, 19, meta_settled_stamp(a->modified_ns));
    int rc = cachedb_done(&m->db, st, "updating an entry", e);
    if (rc == 0)
        rc = meta_set_node_locked(m, ino, a, e);
    if (rc == 0 && om && om->has_user)
        rc = meta_put_user_locked(m, ino, om, true, e);
    return rc;
}

/* Insert child `name` of directory `dir` with the cloud metadata `om`
 * (may be NULL); *ino (may be NULL) gets its new inode. */
int meta_insert(struct meta *m, const struct meta_entry *dir, const char *name,
                       const struct sky_attr *a, const char *link,
                       const struct sky_objmeta *om, int64_t now, uint64_t *ino,
                       struct sky_err *e)
{
    bool under_root = dir->ino == META_ROOT_INO;
    if (under_root && a->kind != SKY_DIR)
        return sky_fail(e, EINVAL, "metadata cache: '%s': only cloud directories live in the "
                        "root", name);
    const char *cloud = under_root ? name : dir->cloud;
    char *path = under_root ? strdup("") : meta_join(dir->path, name);
    if (!path)
        return meta_oom(e);
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_INSERT, e);
    if (!st) {
        free(path);
        return -e->code;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)dir->ino);
    cachedb_bind_text(st, 2, cloud);
    cachedb_bind_text(st, 3, name);
    cachedb_bind_text(st, 4, path);
    meta_bind_attr(st, 5, a);
    cachedb_bind_text(st, 13, a->kind == SKY_LINK ? link : NULL);
    sqlite3_bind_int64(st, 14, now);
    meta_bind_objmeta(st, 15, om, now);
    sqlite3_bind_int64(st, 18, a->atime_ns);
    sqlite3_bind_int64(st, 19, a->ctime_ns);
    sqlite3_bind_int64(st, 20, meta_settled_stamp(a->modified_ns));
    int rc = cachedb_done(&m->db, st, "adding an entry", e);
    free(path);
    uint64_t new_ino = (uint64_t)sqlite3_last_insert_rowid(m->db.db);
    if (rc == 0)
        rc = meta_set_node_locked(m, new_ino, a, e);
    if (rc == 0 && om && om->nuser)
        rc = meta_put_user_locked(m, new_ino, om, false, e);
    if (rc == 0 && ino)
        *ino = new_ino;
    return rc;
}

int meta_upsert_locked(struct meta *m, const struct meta_entry *dir, const char *name,
                       const struct sky_attr *a, const char *link, int64_t now, uint64_t *ino,
                       struct sky_err *e)
{
    struct meta_entry old;
    int rc = meta_lookup_locked(m, dir->ino, name, &old, e);
    if (rc == -ENOENT)
        return meta_insert(m, dir, name, a, link, NULL, now, ino, e);
    if (rc)
        return rc;
    if (dir->ino == META_ROOT_INO && a->kind != SKY_DIR)
        rc = sky_fail(e, EINVAL, "metadata cache: '%s': a cloud directory must stay a "
                      "directory", name);
    else
        rc = meta_update_attr(m, old.ino, old.attr.kind, old.cloud, old.path, a, link, NULL, now,
                              META_FROM_CLOUD, e);
    if (rc == 0 && ino)
        *ino = old.ino;
    meta_entry_free(&old);
    return rc;
}

int meta_set_listed_locked(struct meta *m, uint64_t ino, int64_t when, struct sky_err *e)
{
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_SET_LISTED, e);
    if (!st)
        return -e->code;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
    sqlite3_bind_int64(st, 2, when);
    return cachedb_done(&m->db, st, "marking a listing", e);
}

/* ---- open / close ------------------------------------------------------ */

/* The schema version (0: a new database) and whether the trigram index
 * exists. */
static int meta_schema_state(struct meta *m, int *version, bool *has_trigrams,
                             struct sky_err *e)
{
    int rc = cachedb_version(&m->db, version, e);
    return rc ? rc : cachedb_has_table(&m->db, "entry_trigrams", has_trigrams, e);
}

/* Bring a database at schema `version` up to META_SCHEMA_VERSION but the
 * trigram index, inside the caller's transaction: version 0 is a new
 * database, 1 lacks the index on names, 2 the cloud metadata, 3 the
 * trigram index (a skyfs that knows version 4 keeps it in step; an older
 * one, which would not, refuses the database). */
static int meta_upgrade(struct meta *m, int version, struct sky_err *e)
{
    int rc = 0;
    if (version < 1)
        rc = cachedb_exec(&m->db, meta_schema, e);
    if (rc == 0 && version < 2)
        rc = cachedb_exec(&m->db, meta_schema_v2, e);
    if (rc == 0 && version < 3)
        rc = cachedb_exec(&m->db, meta_schema_v3, e);
    if (rc == 0 && version < 5)
        rc = cachedb_exec(&m->db, meta_schema_v5, e);
    return rc ? rc : cachedb_set_version(&m->db, META_SCHEMA_VERSION, e);
}

/* Does table `entries` have column `name`? */
static int meta_has_column(struct meta *m, const char *name, bool *has, struct sky_err *e)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(m->db.db,
                                "SELECT 1 FROM pragma_table_info('entries') WHERE name=?1", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return cachedb_fail(&m->db, rc, "reading the schema", e);
    cachedb_bind_text(st, 1, name);
    rc = sqlite3_step(st);
    *has = rc == SQLITE_ROW;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cachedb_fail(&m->db, rc, "reading the schema", e);
    return 0;
}

/* Run `sql` when table entries lacks column `column` (idempotent). */
static int meta_add_column(struct meta *m, const char *db_path, const char *column,
                           const char *sql, struct sky_err *e)
{
    bool has;
    int rc = meta_has_column(m, column, &has, e);
    if (rc || has)
        return rc;
    rc = cachedb_begin(&m->db, e);
    if (rc == 0)
        rc = meta_has_column(m, column, &has, e); /* another process may have done it */
    if (rc == 0 && !has)
        rc = cachedb_exec(&m->db, sql, e);
    if (rc == 0)
        return cachedb_commit(&m->db, e);
    cachedb_rollback(&m->db);
    return sky_err_prefix(e, "upgrading %s", db_path);
}

/* Add the special-file and hard-link columns, local_only, own_ns and
 * cloud_modified_ns, when missing (idempotent). */
static int meta_add_node_columns(struct meta *m, const char *db_path, struct sky_err *e)
{
    int rc = meta_add_column(m, db_path, "file_id", meta_node_columns, e);
    if (rc == 0)
        rc = meta_add_column(m, db_path, "local_only", meta_local_only_column, e);
    if (rc == 0)
        rc = meta_add_column(m, db_path, "own_ns", meta_own_column, e);
    return rc ? rc : meta_add_column(m, db_path, "cloud_modified_ns",
                                     meta_cloud_modified_column, e);
}

static int meta_prepare_schema(struct meta *m, const char *db_path, struct sky_err *e)
{
    int version;
    bool has_trigrams;
    int rc = meta_schema_state(m, &version, &has_trigrams, e);
    if (rc)
        return rc;
    if (version > META_SCHEMA_VERSION)
        return sky_fail(e, EPROTO, "metadata cache %s has schema version %d, newer than this "
                        "skyfs understands (%d); use a newer skyfs or delete the file",
                        db_path, version, META_SCHEMA_VERSION);
    m->trigrams = cachedb_has_trigrams();
    if (has_trigrams && !m->trigrams)
        return sky_fail(e, EPROTO, "metadata cache %s has a name index that this SQLite library "
                        "cannot update (it lacks FTS5); run skyfs with the SQLite it was built "
                        "with, or delete the file", db_path);
    if (version == META_SCHEMA_VERSION && has_trigrams == m->trigrams)
        return 0;
    /* again inside the write transaction: another process may have just
     * done it */
    rc = cachedb_begin(&m->db, e);
    if (rc == 0)
        rc = meta_schema_state(m, &version, &has_trigrams, e);
    if (rc == 0 && version < META_SCHEMA_VERSION)
        rc = meta_upgrade(m, version, e);
    if (rc == 0 && m->trigrams && !has_trigrams)
        rc = cachedb_exec(&m->db, meta_trigrams, e);
    if (rc == 0)
        return cachedb_commit(&m->db, e);
    cachedb_rollback(&m->db);
    return sky_err_prefix(e, "%s %s", version ? "upgrading" : "creating", db_path);
}

/* Open the file at db_path into m: checked, with the schema of this
 * version; on failure everything opened is closed again. */
/* SQL held(ino): is entry ino held (meta_hold)?  Called by the cache's
 * own statements, so with m->lock held. */
static void meta_sql_held(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const struct meta *m = sqlite3_user_data(ctx);
    sqlite3_result_int(ctx, u64set_has(&m->held, (uint64_t)sqlite3_value_int64(argv[0])));
}

static int meta_open_file(struct meta *m, const char *db_path, bool check, struct sky_err *e)
{
    int rc = cachedb_open(&m->db, db_path, "metadata cache", meta_sql, Q_COUNT, e);
    if (rc == 0) {
        int src = sqlite3_create_function_v2(m->db.db, "held", 1,
                                             SQLITE_UTF8 | SQLITE_DIRECTONLY, m, meta_sql_held,
                                             NULL, NULL, NULL);
        if (src != SQLITE_OK)
            rc = cachedb_fail(&m->db, src, "defining held()", e);
    }
    if (rc == 0 && check)
        rc = cachedb_check(&m->db, e);
    if (rc == 0)
        rc = meta_prepare_schema(m, db_path, e);
    if (rc == 0)
        rc = meta_add_node_columns(m, db_path, e);
    if (rc == 0)
        rc = cachedb_exec(&m->db, meta_deferred_index, e);
    if (rc == 0)
        rc = crawlstore_prepare(m, db_path, e);
    if (rc == 0 && m->trigrams)
        rc = cachedb_exec(&m->db, meta_trigram_queue, e);
    if (rc) {
        crawlstore_close(m);
        cachedb_close(&m->db);
    }
    return rc;
}

/* What a new metadata cache takes from a damaged one (cachedamage.h):
 * every entry, their user metadata and the crawls' state, when SQLite can
 * still read its tables (the damage was in an index, or in pages the
 * tables do not use); folders are listed again.  Among them are the only
 * record of what was made here and is not on the clouds yet (local_only),
 * and of files whose pending upload changed them (their size and times).
 * *kept counts the entries, *local those made here. */
static int meta_salvage(struct meta *m, const char *aside, int64_t *kept, int64_t *local,
                        struct sky_err *e)
{
    struct cachedamage_step steps[] = {
        { "entries", "old.ino NOT IN (SELECT ino FROM main.entries)", 0 },
        { "user_meta", "1", 0 },
        { "crawls", "1", 0 },
        /* folders listed again (the damage may have taken some of their
         * entries with it) */
        { NULL, "UPDATE main.entries SET listed_at=0 WHERE kind=2 AND local_only=0", 0 },
        { NULL, m->trigrams ? "INSERT INTO entry_trigrams(entry_trigrams) VALUES('rebuild')"
                            : "SELECT 1", 0 },
    };
    int rc = cachedamage_salvage(&m->db, aside, steps, sizeof steps / sizeof *steps, e);
    *kept = rc ? 0 : steps[0].copied;
    *local = 0;
    sqlite3_stmt *st;
    if (rc == 0 && sqlite3_prepare_v2(m->db.db, "SELECT count(*) FROM entries WHERE "
                                      "local_only<>0", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *local = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return rc;
}

/* meta_open found the file damaged (error e): set it aside, open a new
 * one, and copy what only it held (meta_salvage). */
static int meta_repair(struct meta *m, const char *db_path, struct cache_repair *repair,
                       struct sky_err *e)
{
    char found[512];
    char *aside = NULL;
    int rc = cachedamage_begin(db_path, e, found, sizeof found, &aside, e);
    if (rc == 0)
        rc = meta_open_file(m, db_path, false, e);
    if (rc) {
        free(aside);
        return sky_err_prefix(e, "replacing the damaged metadata cache %s", db_path);
    }
    int64_t kept = 0, local = 0;
    struct sky_err se = { 0 };
    int lost = meta_salvage(m, aside, &kept, &local, &se);
    repair->repaired = true;
    repair->lost = lost != 0;
    if (lost)
        snprintf(repair->msg, sizeof repair->msg,
                 "the metadata cache %s was damaged (%s); it was moved to %s and a new one "
                 "made: listings and attributes are fetched again from the clouds; nothing "
                 "could be read from it (%s): folders and symlinks made here and not created "
                 "on their clouds yet are lost (files not uploaded yet are uploaded from the "
                 "block cache)", db_path, found, aside, se.msg);
    else
        snprintf(repair->msg, sizeof repair->msg,
                 "the metadata cache %s was damaged (%s); it was moved to %s and a new one "
                 "made from what could be read of it: %lld entries (%lld of them made here and "
                 "not on their clouds yet); folders are listed again", db_path, found, aside,
                 (long long)kept, (long long)local);
    free(aside);
    return 0;
}

int meta_open(const char *db_path, struct cache_repair *repair, struct meta **out,
              struct sky_err *e)
{
    struct meta *m = calloc(1, sizeof *m);
    if (!m)
        return meta_oom(e);
    int rc = meta_open_file(m, db_path, repair != NULL, e);
    if (rc && repair && cachedamage_is(rc))
        rc = meta_repair(m, db_path, repair, e);
    if (rc) {
        free(m);
        return rc;
    }
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return 0;
}

int meta_read_count_ro(const char *db_path, const char *sql, const char *what,
                       uint64_t *count, struct sky_err *e)
{
    *count = 0;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        int rc = sky_fail(e, EIO, "cannot open the metadata cache %s: %s", db_path,
                          db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    /* what it counts is not there yet: an older cache, with none of it */
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            *count = (uint64_t)sqlite3_column_int64(st, 0);
        else
            rc = sky_fail(e, EIO, "counting %s in %s: %s", what, db_path, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int meta_read_deferred_count(const char *db_path, uint64_t *count, struct sky_err *e)
{
    return meta_read_count_ro(db_path, meta_sql[Q_DEFERRED_COUNT],
                              "folders and symlinks not created yet", count, e);
}

int meta_sync(struct meta *m, struct sky_err *e)
{
    return cachedb_sync_outside(&m->db, &m->lock, e);
}

void meta_close(struct meta *m)
{
    if (!m)
        return;
    crawlstore_close(m);
    cachedb_close(&m->db);
    u64set_free(&m->held);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int meta_hold(struct meta *m, uint64_t ino)
{
    pthread_mutex_lock(&m->lock);
    int rc = u64set_add(&m->held, ino);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void meta_unhold(struct meta *m, uint64_t ino)
{
    pthread_mutex_lock(&m->lock);
    u64set_remove(&m->held, ino);
    pthread_mutex_unlock(&m->lock);
}

/* ---- the public calls -------------------------------------------------- */

int meta_cloud_root(struct meta *m, const char *cloud, uint64_t *ino, struct sky_err *e)
{
    if (!meta_valid_name(cloud))
        return sky_fail(e, EINVAL, "metadata cache: '%s' is not a valid cloud name",
                        cloud ? cloud : "(null)");
    pthread_mutex_lock(&m->lock);
    struct meta_entry ent;
    int rc = meta_lookup_locked(m, META_ROOT_INO, cloud, &ent, e);
    if (rc == 0) {
        *ino = ent.ino;
        meta_entry_free(&ent);
    } else if (rc == -ENOENT && (rc = meta_begin(m, e)) == 0) {
        struct meta_entry root = { .ino = META_ROOT_INO, .name = "", .path = "" };
        struct sky_attr a = { .kind = SKY_DIR };
        rc = meta_finish(m, meta_insert(m, &root, cloud, &a, NULL, NULL, 0, ino, e), e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_get(struct meta *m, uint64_t ino, struct meta_entry *out, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int rc = meta_get_locked(m, ino, out, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_lookup(struct meta *m, uint64_t parent, const char *name, struct meta_entry *out,
                struct sky_err *e)
{
    if (!name)
        return sky_fail(e, EINVAL, "metadata cache: lookup without a name");
    pthread_mutex_lock(&m->lock);
    int rc = meta_lookup_locked(m, parent, name, out, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_upsert(struct meta *m, uint64_t parent, const char *name, const struct sky_attr *attr,
                const char *link, int64_t now, uint64_t *ino, struct sky_err *e)
{
    int bad = meta_check_new(name, attr, e);
    if (bad)
        return bad;
    pthread_mutex_lock(&m->lock);
    struct meta_entry dir;
    int rc = meta_begin(m, e);
    if (rc == 0)
        rc = meta_get_dir_locked(m, parent, &dir, e);
    if (rc == 0) {
        rc = meta_upsert_locked(m, &dir, name, attr, link, now, ino, e);
        meta_entry_free(&dir);
    }
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- remove / rename --------------------------------------------------- */

static int meta_remove_locked(struct meta *m, uint64_t ino, struct sky_err *e)
{
    if (ino == META_ROOT_INO)
        return sky_fail(e, EBUSY, "metadata cache: the root cannot be removed");
    struct meta_entry ent;
    int rc = meta_get_locked(m, ino, &ent, e);
    if (rc)
        return rc;
    rc = meta_remove_tree(m, ent.ino, ent.attr.kind, ent.cloud, ent.path, e);
    meta_entry_free(&ent);
    return rc;
}

int meta_forget_gone(struct meta *m, uint64_t ino, struct sky_err *e)
{
    if (ino == META_ROOT_INO)
        return sky_fail(e, EBUSY, "metadata cache: the root cannot be removed");
    pthread_mutex_lock(&m->lock);
    struct meta_entry ent;
    int rc = meta_begin(m, e);
    if (rc == 0 && (rc = meta_get_locked(m, ino, &ent, e)) == 0) {
        rc = meta_forget_tree(m, ent.ino, ent.attr.kind, ent.cloud, ent.path, NULL, e);
        meta_entry_free(&ent);
    }
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_uploads_lost(struct meta *m, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int rc = meta_begin(m, e);
    if (rc == 0 && m->trigrams) {
        rc = meta_step(m, Q_LOST_TRI, "unindexing", e);
        m->tri_gone = true;
    }
    if (rc == 0)
        rc = meta_step(m, Q_LOST_FILES, "removing files not uploaded", e);
    if (rc == 0)
        rc = meta_step(m, Q_LOST_STALE, "marking entries stale", e);
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_remove(struct meta *m, uint64_t ino, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    int rc = meta_begin(m, e);
    if (rc == 0)
        rc = meta_remove_locked(m, ino, e);
    rc = meta_finish(m, rc, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static bool meta_is_below(const char *path, const char *ancestor)
{
    size_t n = strlen(ancestor);
    if (n == 0)
        return path[0] != '\0';
    return strncmp(path, ancestor, n) == 0 && path[n] == '/';
}

/* Rewrite the paths below src->path to start with new_path instead. */
static int meta_move_descendants(struct meta *m, const struct meta_entry *src,
                                 const char *new_path, struct sky_err *e)
{
    char *lo, *hi, *new_lo = NULL;
    if (meta_tree_bounds(src->path, &lo, &hi) || asprintf(&new_lo, "%s/", new_path) < 0) {
        free(lo);
        free(hi);
        return meta_oom(e);
    }
    int rc;
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_MOVE_RANGE, e);
    if (!st) {
        rc = -e->code;
    } else {
        cachedb_bind_text(st, 1, src->cloud);
        cachedb_bind_text(st, 2, lo);
        cachedb_bind_text(st, 3, hi);
        cachedb_bind_text(st, 4, new_lo);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)strlen(lo) + 1);
        rc = cachedb_done(&m->db, st, "moving descendants", e);
    }
    free(lo);
    free(hi);
    free(new_lo);
    return rc;
}

/* Checks that (src -> dst/new_name) is a move this cache can record. */
static int meta_check_move(const struct meta_entry *src, const struct meta_entry *dst,
                           struct sky_err *e)
{
    if (src->ino == META_ROOT_INO || src->parent == META_ROOT_INO)
        return sky_fail(e, EBUSY, "metadata cache: '%s' is a cloud directory and cannot move",
                        src->name);
    if (dst->ino == META_ROOT_INO || !dst->cloud || strcmp(dst->cloud, src->cloud) != 0)
        return sky_fail(e, EXDEV, "metadata cache: '%s' cannot move to another cloud",
                        src->path);
    if (dst->ino == src->ino || meta_is_below(dst->path, src->path))
        return sky_fail(e, EINVAL, "metadata cache: '%s' cannot move inside itself", src->path);
    return 0;
}

int meta_rename_locked(struct meta *m, uint64_t ino, uint64_t new_parent, const char *new_name,
                       struct sky_err *e)
{
    struct meta_entry src, dst, old;
    int rc = meta_get_locked(m, ino, &src, e);
    if (rc)
        return rc;
    rc = meta_get_dir_locked(m, new_parent, &dst, e);
    if (rc) {
        meta_entry_free(&src);
        return rc;
    }
    char *new_path = NULL;
    rc = meta_check_move(&src, &dst, e);
    if (rc == 0 && src.parent == new_parent && strcmp(src.name, new_name) == 0)
        goto out;                                       /* nothing moves */
    if (rc == 0) {
        rc = meta_lookup_locked(m, new_parent, new_name, &old, e);
        if (rc == 0) {
            if (meta_is_below(src.path, old.path))
                rc = sky_fail(e, ENOTEMPTY, "metadata cache: '%s' contains '%s'", old.path,
                              src.path);
            else
                rc = meta_remove_tree(m, old.ino, old.attr.kind, old.cloud, old.path, e);
            meta_entry_free(&old);
        } else if (rc == -ENOENT) {
            rc = 0;
        }
    }
    if (rc == 0 && !(new_path = meta_join(dst.path, new_name)))
        rc = meta_oom(e);
    bool renamed = strcmp(src.name, new_name) != 0;
    if (rc == 0 && renamed)
        rc = meta_unindex_name(m, ino, e);
    if (rc == 0) {
        sqlite3_stmt *st = cachedb_stmt(&m->db, Q_MOVE, e);
        if (!st) {
            rc = -e->code;
        } else {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)new_parent);
            cachedb_bind_text(st, 3, new_name);
            cachedb_bind_text(st, 4, new_path);
            rc = cachedb_done(&m->db, st, "moving an entry", e);
        }
    }
    if (rc == 0 && renamed)
        rc = meta_index_name(m, ino, new_name, e);
    if (rc == 0 && src.attr.kind == SKY_DIR)
        rc = meta_move_descendants(m, &src, new_path, e);
out:
    free(new_path);
    meta_entry_free(&src);
    meta_entry_free(&dst);
    return rc;
}

int meta_rename(struct meta *m, uint64_t ino, uint64_t new_parent, const char *new_name,
                struct sky_err *e)
{
    return meta_rename_ex(m, ino, new_parent, new_name, NULL, e);
}
