/*
 * meta_moves.c - the record of directory renames in progress on clouds
 * where they take many steps (meta.h meta_move_begin): one row per
 * rename in the `moves` table of the metadata cache, written before the
 * rename starts and removed once it is done, read at mount to finish what
 * a crash cut short.  Private to cache/ (meta.c holds the SQL).
 */
#include "meta_int.h"

#include <errno.h>
#include <stdlib.h>

static int move_stmt_done(struct meta *m, int which, const char *cloud, const char *src,
                          const char *dst, const char *doing, struct sky_err *e)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = cachedb_stmt(&m->db, (size_t)which, e);
    int rc = st ? 0 : -e->code;
    if (st) {
        cachedb_bind_text(st, 1, cloud);
        cachedb_bind_text(st, 2, src);
        if (dst)
            cachedb_bind_text(st, 3, dst);
        rc = cachedb_done(&m->db, st, doing, e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_move_begin(struct meta *m, const char *cloud, const char *src, const char *dst,
                    struct sky_err *e)
{
    return move_stmt_done(m, Q_MOVE_PUT, cloud, src, dst, "recording a rename", e);
}

int meta_move_end(struct meta *m, const char *cloud, const char *src, struct sky_err *e)
{
    return move_stmt_done(m, Q_MOVE_DEL, cloud, src, NULL, "dropping the record of a rename",
                          e);
}

void meta_move_clear(struct meta_move *m)
{
    free(m->cloud);
    free(m->src);
    free(m->dst);
    *m = (struct meta_move){ 0 };
}

void meta_moves_free(struct meta_move *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        meta_move_clear(&v[i]);
    free(v);
}

int meta_moves(struct meta *m, struct meta_move **out, size_t *n, struct sky_err *e)
{
    *out = NULL;
    *n = 0;
    struct meta_move *v = NULL;
    size_t len = 0, cap = 0;
    int rc = 0, oom = 0;
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = cachedb_stmt(&m->db, Q_MOVE_LIST, e);
    if (!st)
        rc = -e->code;
    int step = SQLITE_DONE;
    while (st && rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct meta_move *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = meta_oom(e);
                break;
            }
            v = nv;
            cap = ncap;
        }
        v[len] = (struct meta_move){ cachedb_column_strdup(st, 0, &oom),
                                     cachedb_column_strdup(st, 1, &oom),
                                     cachedb_column_strdup(st, 2, &oom) };
        len++;
        if (oom)
            rc = meta_oom(e);
    }
    if (st && rc == 0 && step != SQLITE_DONE)
        rc = cachedb_fail(&m->db, step, "reading the renames in progress", e);
    if (st)
        sqlite3_reset(st);
    pthread_mutex_unlock(&m->lock);
    if (rc) {
        meta_moves_free(v, len);
        return rc;
    }
    *out = v;
    *n = len;
    return 0;
}

int meta_read_move_count(const char *db_path, uint64_t *count, struct sky_err *e)
{
    return meta_read_count_ro(db_path, "SELECT count(*) FROM moves", "the renames in progress",
                              count, e);
}
