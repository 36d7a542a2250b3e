/* cachedamage.c - see cachedamage.h. */
#include "cachedamage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cachedb.h"

bool cachedamage_is(int rc)
{
    return rc == -EUCLEAN;
}

void cachedamage_plain(char *msg)
{
    char *hint = strstr(msg, CACHEDB_DAMAGED_HINT);
    if (hint)
        memmove(hint, hint + strlen(CACHEDB_DAMAGED_HINT),
                strlen(hint + strlen(CACHEDB_DAMAGED_HINT)) + 1);
}

static int move_into(const char *from, const char *folder, bool must, struct sky_err *e)
{
    const char *base = strrchr(from, '/');
    base = base ? base + 1 : from;
    char to[4096];
    if ((size_t)snprintf(to, sizeof to, "%s/%s", folder, base) >= sizeof to)
        return sky_fail(e, ENAMETOOLONG, "cache: path too long: %s/%s", folder, base);
    if (rename(from, to) == 0 || (!must && errno == ENOENT))
        return 0;
    return sky_fail(e, errno, "cache: cannot move %s to %s: %s", from, to, strerror(errno));
}

int cachedamage_begin(const char *db_path, const struct sky_err *failed, char *found,
                      size_t size, char **aside, struct sky_err *e)
{
    snprintf(found, size, "%s", failed->msg);
    cachedamage_plain(found);
    *aside = NULL;
    const char *slash = strrchr(db_path, '/');
    int dirlen = slash ? (int)(slash - db_path) : 1;
    const char *dir = slash ? db_path : ".";
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    char folder[4096];
    if ((size_t)snprintf(folder, sizeof folder, "%.*s/damaged", dirlen, dir) >= sizeof folder)
        return sky_fail(e, ENAMETOOLONG, "cache: path too long: %s", db_path);
    if (mkdir(folder, 0700) != 0 && errno != EEXIST)
        return sky_fail(e, errno, "cache: cannot make %s: %s", folder, strerror(errno));
    size_t len = strlen(folder);
    snprintf(folder + len, sizeof folder - len, "/%s-%ld", stamp, (long)getpid());
    if (mkdir(folder, 0700) != 0 && errno != EEXIST)
        return sky_fail(e, errno, "cache: cannot make %s: %s", folder, strerror(errno));
    /* the log and its index first: a database without its log is what
     * was there before the log's transactions, never a mix */
    static const char *const suffix[] = { "-wal", "-shm" };
    for (size_t i = 0; i < 2; i++) {
        char side[4096];
        snprintf(side, sizeof side, "%s%s", db_path, suffix[i]);
        int rc = move_into(side, folder, false, e);
        if (rc)
            return rc;
    }
    int rc = move_into(db_path, folder, true, e);
    if (rc)
        return rc;
    const char *base = slash ? slash + 1 : db_path;
    if (asprintf(aside, "%s/%s", folder, base) < 0) {
        *aside = NULL;
        return sky_fail(e, ENOMEM, "out of memory");
    }
    return 0;
}

int cachedamage_move_beside(const char *dir, const char *aside, struct sky_err *e)
{
    char folder[4096];
    snprintf(folder, sizeof folder, "%s", aside);
    char *slash = strrchr(folder, '/');
    if (slash)
        *slash = '\0';
    int rc = move_into(dir, folder, false, e);
    if (rc == 0 && mkdir(dir, 0700) != 0 && errno != EEXIST)
        rc = sky_fail(e, errno, "cache: cannot make %s: %s", dir, strerror(errno));
    return rc;
}

/* The columns `table` has in both schemas, comma-separated, into cols. */
static int shared_columns(struct cachedb *d, const char *table, char *cols, size_t size,
                          struct sky_err *e)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(d->db,
                                "SELECT group_concat('\"' || n.name || '\"', ',') "
                                "FROM pragma_table_info(?1, 'main') n "
                                "WHERE n.name IN (SELECT o.name FROM pragma_table_info(?1, "
                                "'damaged') o)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return cachedb_fail(d, rc, "reading the damaged file's schema", e);
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    const unsigned char *got = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    int ret = 0;
    if (rc != SQLITE_ROW)
        ret = cachedb_fail(d, rc, "reading the damaged file's schema", e);
    else if (!got)
        ret = sky_fail(e, EUCLEAN, "%s: the damaged file has no table %s", d->what, table);
    else if ((size_t)snprintf(cols, size, "%s", (const char *)got) >= size)
        ret = sky_fail(e, E2BIG, "%s: too many columns in %s", d->what, table);
    sqlite3_finalize(st);
    return ret;
}

static int run_step(struct cachedb *d, struct cachedamage_step *s, struct sky_err *e)
{
    char *sql = NULL;
    if (s->table) {
        char cols[2048];
        int rc = shared_columns(d, s->table, cols, sizeof cols, e);
        if (rc)
            return rc;
        if (asprintf(&sql, "INSERT INTO main.\"%s\"(%s) SELECT %s FROM damaged.\"%s\" AS old "
                     "NOT INDEXED WHERE %s", s->table, cols, cols, s->table, s->where) < 0)
            return sky_fail(e, ENOMEM, "out of memory");
    }
    int rc = sqlite3_exec(d->db, sql ? sql : s->where, NULL, NULL, NULL);
    free(sql);
    if (rc != SQLITE_OK)
        return cachedb_fail(d, rc, s->table ? "copying rows from the damaged file"
                                            : "reading the damaged file", e);
    s->copied = sqlite3_changes(d->db);
    return 0;
}

int cachedamage_salvage(struct cachedb *d, const char *aside, struct cachedamage_step *steps,
                        size_t nsteps, struct sky_err *e)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(d->db, "ATTACH ?1 AS damaged", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, aside, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    int ret;
    if (rc != SQLITE_OK) {
        ret = cachedb_fail(d, rc, "opening the damaged file", e);
    } else {
        ret = cachedb_begin(d, e);
        for (size_t i = 0; ret == 0 && i < nsteps; i++)
            ret = run_step(d, &steps[i], e);
        if (ret == 0)
            ret = cachedb_commit(d, e);
        else
            cachedb_rollback(d);
        sqlite3_exec(d->db, "DETACH damaged", NULL, NULL, NULL);
    }
    if (ret) {
        cachedamage_plain(e->msg);      /* for a repair's report, not advice */
        for (size_t i = 0; i < nsteps; i++)
            steps[i].copied = 0;
    }
    return ret;
}
