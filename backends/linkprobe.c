/* linkprobe.c - see linkprobe.h.
 *
 * The memory is an open-addressing table of 64-bit fingerprints (FNV-1a of
 * scope, key and ETag; 0 marks an empty slot), grown by doubling up to
 * LINKPROBE_MEMO_MAX slots (8 MiB) and emptied when that is half full: a
 * forgotten answer costs one HEAD more, never a wrong answer (a
 * fingerprint collision, 1 in 2^64, would show one link as a file). */
#include "linkprobe.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"

#define LINKPROBE_MEMO_MIN 4096
#define LINKPROBE_MEMO_MAX (1u << 20)

/* The last head answers, for the next listing that needs the same
 * version soon after: the crawl's answers are not remembered as "not a
 * link" (linkprobe.h, forgetful), and a listing through the mount right
 * after it would ask the same objects again.  A direct-mapped table of
 * LINKPROBE_RECENT answers (what take_head_attr takes), 48 bytes each. */
#define LINKPROBE_RECENT 4096

struct recent {
    uint64_t fp;                    /* 0: empty */
    uint32_t mode, uid, gid;
    unsigned has;
    int64_t mtime_ns, atime_ns, ctime_ns;
};

/* A question in flight: a listing that needs the same object version
 * meanwhile (the crawl and a listing through the mount walk the same
 * folders at once) waits for its answer instead of asking again. */
struct asking {
    uint64_t fp;
    bool answered;
    int rc;                         /* 0 with attr, or -ENOENT; else waiters ask themselves */
    struct sky_attr attr;
    int waiters;                    /* the last one out frees an answered question */
    struct asking *next;
};

struct linkprobe {
    pthread_mutex_t lock;
    uint64_t *slots;
    size_t cap, used;
    struct recent *recent;          /* LINKPROBE_RECENT, or NULL (out of memory) */
    struct asking *asking;          /* questions in flight (under lock) */
    pthread_cond_t answer;          /* one of them was answered */
};

struct linkprobe_item {
    char *key;
    struct sky_dirent ent;          /* a deep copy */
    bool gone;
};

int linkprobe_new(struct linkprobe **out)
{
    struct linkprobe *lp = calloc(1, sizeof *lp);
    if (!lp)
        return -ENOMEM;
    pthread_mutex_init(&lp->lock, NULL);
    pthread_cond_init(&lp->answer, NULL);
    lp->recent = calloc(LINKPROBE_RECENT, sizeof *lp->recent);     /* NULL: none kept */
    *out = lp;
    return 0;
}

void linkprobe_free(struct linkprobe *lp)
{
    if (!lp)
        return;
    pthread_mutex_destroy(&lp->lock);
    pthread_cond_destroy(&lp->answer);
    free(lp->slots);
    free(lp->recent);
    free(lp);
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull;       /* a separator no string holds */
}

static uint64_t fingerprint(const char *scope, const char *key, const char *etag)
{
    uint64_t h = fnv(fnv(fnv(14695981039346656037ull, scope), key), etag);
    return h ? h : 1;
}

/* The slot of fp in slots[cap] (cap a power of two): where it is, or the
 * empty slot where it belongs. */
static size_t memo_slot(const uint64_t *slots, size_t cap, uint64_t fp)
{
    size_t i = (size_t)(fp & (cap - 1));
    while (slots[i] && slots[i] != fp)
        i = (i + 1) & (cap - 1);
    return i;
}

static bool memo_has(struct linkprobe *lp, uint64_t fp)
{
    pthread_mutex_lock(&lp->lock);
    bool has = lp->slots && lp->slots[memo_slot(lp->slots, lp->cap, fp)] == fp;
    pthread_mutex_unlock(&lp->lock);
    return has;
}

/* Room for one more fingerprint: 0, or -ENOMEM (then nothing is kept). */
static int memo_reserve(struct linkprobe *lp)
{
    if (lp->slots && (lp->used + 1) * 2 <= lp->cap)
        return 0;
    if (lp->cap >= LINKPROBE_MEMO_MAX) {            /* full: start again */
        memset(lp->slots, 0, lp->cap * sizeof *lp->slots);
        lp->used = 0;
        return 0;
    }
    size_t cap = lp->cap ? lp->cap * 2 : LINKPROBE_MEMO_MIN;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < lp->cap; i++)
        if (lp->slots[i])
            slots[memo_slot(slots, cap, lp->slots[i])] = lp->slots[i];
    free(lp->slots);
    lp->slots = slots;
    lp->cap = cap;
    return 0;
}

static void memo_add(struct linkprobe *lp, uint64_t fp)
{
    pthread_mutex_lock(&lp->lock);
    if (memo_reserve(lp) == 0) {
        size_t i = memo_slot(lp->slots, lp->cap, fp);
        if (lp->slots[i] != fp) {
            lp->slots[i] = fp;
            lp->used++;
        }
    }
    pthread_mutex_unlock(&lp->lock);
}

bool linkprobe_known(struct linkprobe *lp, const char *scope, const char *key, const char *etag)
{
    return memo_has(lp, fingerprint(scope, key, etag));
}

void linkprobe_remember(struct linkprobe *lp, const char *scope, const char *key,
                        const char *etag)
{
    memo_add(lp, fingerprint(scope, key, etag));
}

static bool may_be_link(const struct sky_dirent *ent)
{
    const struct sky_attr *a = &ent->attr;
    return a->kind == SKY_FILE && a->size >= 1 && a->size <= LINKPROBE_SIZE_MAX && a->etag[0];
}

static void item_free(struct linkprobe_item *it)
{
    free(it->key);
    sky_dirent_free(&it->ent);
}

void linkprobe_batch_free(struct linkprobe_batch *b)
{
    for (size_t i = 0; b->items && i < b->n; i++)
        item_free(&b->items[i]);
    free(b->items);
    b->items = NULL;
    b->n = 0;
}

/* The head answer holds the object's full metadata: its mode, owner and
 * times (the stored mtime, or Last-Modified when it holds none) replace
 * what the listing guessed, when the head saw the listed version. */
static void take_head_attr(struct sky_attr *listed, const struct sky_attr *got)
{
    if (got->has & SKY_HAS_MODE)
        listed->mode = got->mode;
    if (got->has & SKY_HAS_UID)
        listed->uid = got->uid;
    if (got->has & SKY_HAS_GID)
        listed->gid = got->gid;
    if (got->has & SKY_HAS_MTIME)
        listed->mtime_ns = got->mtime_ns;
    if (got->has & SKY_HAS_ATIME)
        listed->atime_ns = got->atime_ns;
    if (got->has & SKY_HAS_CTIME)
        listed->ctime_ns = got->ctime_ns;
    listed->has |= got->has & (SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME |
                               SKY_HAS_ATIME | SKY_HAS_CTIME);
}

/* The answer kept for version fp in its slot, as a head answer: true, or
 * false when none is kept (lp->lock held). */
static bool recent_get(struct linkprobe *lp, uint64_t fp, struct sky_attr *got)
{
    if (!lp->recent)
        return false;
    const struct recent *r = &lp->recent[fp & (LINKPROBE_RECENT - 1)];
    if (r->fp != fp)
        return false;
    *got = (struct sky_attr){ .kind = SKY_FILE, .mode = r->mode, .uid = r->uid, .gid = r->gid,
                              .has = r->has, .mtime_ns = r->mtime_ns, .atime_ns = r->atime_ns,
                              .ctime_ns = r->ctime_ns };
    return true;
}

/* The head answer kept for version fp, put into *listed: true, or false
 * when none is kept. */
static bool recent_take(struct linkprobe *lp, uint64_t fp, struct sky_attr *listed)
{
    struct sky_attr got;
    pthread_mutex_lock(&lp->lock);
    bool kept = recent_get(lp, fp, &got);
    pthread_mutex_unlock(&lp->lock);
    if (kept)
        take_head_attr(listed, &got);
    return kept;
}

enum { ASK_IT, ANSWERED, KEPT };

/* How to learn about version fp: KEPT (*got holds a kept answer: a file
 * of that version), ANSWERED (*rc and *got: a question about it that was
 * in flight, waited for), or ASK_IT: ask, with *mine the question others
 * may wait on meanwhile (NULL: out of memory, or after a failed question
 * in flight). */
static int find_answer(struct linkprobe *lp, uint64_t fp, int *rc, struct sky_attr *got,
                       struct asking **mine)
{
    *mine = NULL;
    pthread_mutex_lock(&lp->lock);
    if (recent_get(lp, fp, got)) {
        pthread_mutex_unlock(&lp->lock);
        return KEPT;
    }
    struct asking *q = lp->asking;
    while (q && q->fp != fp)
        q = q->next;
    if (!q) {
        if ((q = calloc(1, sizeof *q))) {
            q->fp = fp;
            q->next = lp->asking;
            lp->asking = q;
        }
        *mine = q;
        pthread_mutex_unlock(&lp->lock);
        return ASK_IT;
    }
    q->waiters++;
    while (!q->answered)
        pthread_cond_wait(&lp->answer, &lp->lock);
    bool took = q->rc == 0 || q->rc == -ENOENT;
    *rc = q->rc;
    *got = q->attr;
    if (--q->waiters == 0)
        free(q);            /* answered: out of the list already */
    pthread_mutex_unlock(&lp->lock);
    return took ? ANSWERED : ASK_IT;
}

/* Publish the answer to question q (asked by this thread: may be NULL),
 * keeping it for later listings first when `keep` (a file of the version
 * asked), then take q out of the questions in flight. */
static void answer_question(struct linkprobe *lp, struct asking *q, uint64_t fp, int rc,
                            const struct sky_attr *got, bool keep)
{
    pthread_mutex_lock(&lp->lock);
    if (keep && lp->recent)
        lp->recent[fp & (LINKPROBE_RECENT - 1)] = (struct recent){
            fp, got->mode, got->uid, got->gid, got->has, got->mtime_ns, got->atime_ns,
            got->ctime_ns };
    if (q) {
        struct asking **p = &lp->asking;
        while (*p != q)
            p = &(*p)->next;
        *p = q->next;
        q->answered = true;
        q->rc = rc;
        if (rc == 0)
            q->attr = *got;
        if (q->waiters > 0)
            pthread_cond_broadcast(&lp->answer);
        else
            free(q);
    }
    pthread_mutex_unlock(&lp->lock);
}

/* parallel_for job: ask about item i, unless another listing has asked
 * since the item was kept, or is asking now. */
static int ask_job(void *arg, size_t i, struct sky_err *e)
{
    struct linkprobe_batch *b = arg;
    struct linkprobe_item *it = &b->items[i];
    uint64_t fp = fingerprint(b->scope, it->key, it->ent.attr.etag);
    struct sky_attr got;
    struct asking *mine;
    int rc = 0;
    int how = find_answer(b->memo, fp, &rc, &got, &mine);
    if (how == KEPT) {
        take_head_attr(&it->ent.attr, &got);
        if (!b->forgetful)
            memo_add(b->memo, fp);
        return 0;
    }
    if (how == ASK_IT)
        rc = b->ask(b->ask_arg, it->key, &got, e);
    bool same_version = rc == 0 && strcmp(got.etag, it->ent.attr.etag) == 0;
    if (how == ASK_IT)
        answer_question(b->memo, mine, fp, rc, &got, same_version && got.kind != SKY_LINK);
    if (rc == -ENOENT) {
        it->gone = true;
        return 0;
    }
    if (rc < 0)
        return rc;
    if (same_version)
        take_head_attr(&it->ent.attr, &got);
    if (got.kind == SKY_LINK) {
        it->ent.attr.kind = SKY_LINK;
        it->ent.attr.mode = got.has & SKY_HAS_MODE ? got.mode : 0777;
        it->ent.attr.has |= SKY_HAS_MODE;
    } else if (same_version && !b->forgetful) {
        memo_add(b->memo, fp);
    }
    return 0;
}

int linkprobe_flush(struct linkprobe_batch *b)
{
    int rc = b->n ? parallel_for(b->n, LINKPROBE_THREADS, ask_job, b, b->e) : 0;
    for (size_t i = 0; rc == 0 && i < b->n; i++)
        if (!b->items[i].gone)
            rc = b->cb(b->cb_arg, &b->items[i].ent);
    linkprobe_batch_free(b);
    return rc;
}

/* Entries b keeps before it asks about them (its `max`, at most LINKPROBE_BATCH). */
static size_t batch_cap(const struct linkprobe_batch *b)
{
    return b->max && b->max < LINKPROBE_BATCH ? b->max : LINKPROBE_BATCH;
}

int linkprobe_add(struct linkprobe_batch *b, const char *key, const struct sky_dirent *ent)
{
    if (!may_be_link(ent))
        return b->cb(b->cb_arg, ent);
    uint64_t fp = fingerprint(b->scope, key, ent->attr.etag);
    struct sky_dirent answered = *ent;      /* a listing just asked: with its metadata */
    if (recent_take(b->memo, fp, &answered.attr)) {
        if (!b->forgetful)
            memo_add(b->memo, fp);
        return b->cb(b->cb_arg, &answered);
    }
    if (memo_has(b->memo, fp))
        return b->cb(b->cb_arg, ent);
    if (!b->items && !(b->items = calloc(LINKPROBE_BATCH, sizeof *b->items)))
        return sky_fail(b->e, ENOMEM, "out of memory");
    struct linkprobe_item *it = &b->items[b->n];
    if (!(it->key = strdup(key)) || sky_dirent_copy(&it->ent, ent) < 0) {
        free(it->key);
        return sky_fail(b->e, ENOMEM, "out of memory");
    }
    it->gone = false;
    b->n++;
    return b->n == batch_cap(b) ? linkprobe_flush(b) : 0;
}
