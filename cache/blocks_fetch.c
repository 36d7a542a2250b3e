/*
 * blocks_fetch.c - fetch scheduling: ranged reads, readahead, waiting for fetches.
 *
 * Everything about getting missing bytes from the cloud: a block or some
 * of its chunks fetched by a reader (without the object's lock, others
 * waiting for that one download), the background fetchers and the
 * readahead window, warming cached blocks ahead of a sequential reader,
 * and the public reads (blocks_read, _read_ahead, _read_to).
 * Private to the block cache (blocks_int.h) except for the reads and
 * blocks_set_stop / _cancel_ahead in blocks.h.
 *
 * Readahead.  struct blocks_pool is a FIFO of jobs (object pinned, a run
 * of block indexes, a cloned fetch arg) served by up to BLOCKS_FETCHERS
 * threads started on demand.  A queued block is B_QUEUED; a reader that
 * needs it first takes it over (clears the bit; the job then skips it and
 * fetches only the first run of blocks still queued).  A run downloads in
 * one ranged read (obj_fetch_run): the sink checksums it block by block
 * and keeps each block as it completes (obj_run_block_done takes o->lock
 * for that; the download itself runs without it).  Present blocks a
 * sequential reader is about to verify are asked from the disk ahead and
 * checked by the same threads (obj_warm_ahead, B_WARMING, pool_verify: a
 * job without a fetch function), so that the reader only copies them out.
 *
 * Random-dense reads.  obj_track_dense counts, per object, the blocks
 * random reads touch first; a dense object's random reads fetch whole
 * blocks (o->wide) and a fill (o->fill) keeps up to BLOCKS_AHEAD_PER_OBJ
 * jobs that each take the next run of absent blocks when done
 * (obj_fill_continue), until the object is all present.
 */
#include "blocks_int.h"
#include "../lib/clock.h"

/* ---- block I/O (o->lock held) ------------------------------------------ */

/* Around a download without o->lock: block idx is B_FETCHING (its other
 * readers wait for this download) and counted in o->inflight (writers
 * wait until no download runs).  begin unlocks; end is called with the
 * lock taken again, after the bytes are stored. */
static void obj_download_begin(struct blocks_obj *o, uint64_t idx)
{
    o->st[idx] = (uint8_t)((o->st[idx] & ~B_QUEUED) | B_FETCHING);
    o->inflight++;
    pthread_mutex_unlock(&o->lock);
}

static void obj_download_end(struct blocks_obj *o, uint64_t idx)
{
    o->st[idx] &= (uint8_t)~B_FETCHING;
    o->inflight--;
    pthread_cond_broadcast(&o->cond);
}

/* Fetch block idx whole; with `unlocked` the download runs without
 * o->lock (entered and left with it). */
static int obj_fetch_block(struct blocks_obj *o, uint64_t idx, blocks_fetch_fn fetch, void *arg,
                           bool unlocked, struct sky_err *e)
{
    uint64_t len = obj_block_len(o, idx);
    if (unlocked)
        obj_download_begin(o, idx);
    struct obj_sink s = { 0 };
    int rc = obj_download(o, idx << o->b->shift, len, len, fetch, arg, &s, e);
    if (unlocked)
        pthread_mutex_lock(&o->lock);
    if (rc == 0)
        rc = obj_store_block(o, idx, s.sums[0], e);
    else if (s.wrote)
        blocks_punch(o->fd, idx << o->b->shift, len);     /* nothing of it is kept */
    if (unlocked)
        obj_download_end(o, idx);
    return rc;
}

/* A download of chunks first..last of partial block idx failed part way:
 * the missing ones among them are punched out, and the present ones it may
 * have written over are checked again before they are served. */
static void obj_unfetch_chunks(struct blocks_obj *o, uint64_t idx, unsigned first,
                               unsigned last, uint64_t skip)
{
    for (unsigned c = first; c <= last; c++) {
        if ((skip >> (c - first)) & 1)
            continue;                       /* the download did not write it */
        uint64_t off, len;
        obj_chunk_range(o, idx, c, &off, &len);
        if (!(o->parts[idx] & (1ull << c)))
            blocks_punch(o->fd, off, len);
        o->parts_ok[idx] &= ~(1ull << c);
    }
}

/* Fetch the chunks of block idx from the first to the last of `missing`
 * in one ranged read (present chunks between them come again: those
 * already verified are only hashed, not written, so that their readers
 * go on during the download, and keep their checksums); with `unlocked`
 * as obj_fetch_block. */
static int obj_fetch_chunks(struct blocks_obj *o, uint64_t idx, uint64_t missing,
                            blocks_fetch_fn fetch, void *arg, bool unlocked, struct sky_err *e)
{
    unsigned first = (unsigned)__builtin_ctzll(missing);
    unsigned last = 63u - (unsigned)__builtin_clzll(missing);
    uint64_t off, len, last_off, last_len;
    obj_chunk_range(o, idx, first, &off, &len);
    obj_chunk_range(o, idx, last, &last_off, &last_len);
    uint64_t span = last_off + last_len - off;
    uint64_t skip = (o->parts[idx] & o->parts_ok[idx] & ~missing) >> first;
    if (unlocked)
        obj_download_begin(o, idx);
    struct obj_sink s = { .skip = skip };
    int rc = obj_download(o, off, span, 1ull << o->b->chunk_shift, fetch, arg, &s, e);
    if (unlocked)
        pthread_mutex_lock(&o->lock);
    for (unsigned c = first; rc == 0 && c <= last; c++)
        if (((skip >> (c - first)) & 1) && (o->parts[idx] >> c & 1))
            s.sums[c - first] = o->chunk_sum[idx][c];   /* its bytes are the cached ones */
    if (rc == 0)
        rc = obj_store_chunks(o, idx, first, last, s.sums, e);
    else if (s.wrote)
        obj_unfetch_chunks(o, idx, first, last, skip);
    if (unlocked)
        obj_download_end(o, idx);
    return rc;
}

/* unit_done of a run: block s->first + u has arrived whole; keep it now,
 * so that its readers go on while the rest of the run downloads. */
static int obj_run_block_done(struct obj_sink *s, unsigned u)
{
    struct blocks_obj *o = s->o;
    uint64_t idx = s->first + u;
    pthread_mutex_lock(&o->lock);
    int rc = obj_store_block(o, idx, s->sums[u], s->e);
    o->st[idx] &= (uint8_t)~B_FETCHING;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    return rc;
}

/* Background fetch of absent blocks first..first+n-1 in one ranged read
 * (o->lock held on entry and return, not during the download).  Each
 * block is kept as soon as all of it has arrived; on failure the blocks
 * not kept yet are punched out and stay absent.  Returns how many were
 * kept. */
static uint64_t obj_fetch_run(struct blocks_obj *o, uint64_t first, uint64_t n,
                              blocks_fetch_fn fetch, void *arg, struct sky_err *e)
{
    uint64_t off = first << o->b->shift, len = 0;
    for (uint64_t i = first; i < first + n; i++) {
        o->st[i] = (uint8_t)((o->st[i] & ~B_QUEUED) | B_FETCHING);
        len += obj_block_len(o, i);
    }
    o->inflight++;
    pthread_mutex_unlock(&o->lock);
    struct obj_sink s = { .unit_done = obj_run_block_done, .first = first, .e = e };
    obj_download(o, off, len, o->b->bs, fetch, arg, &s, e);
    pthread_mutex_lock(&o->lock);
    if (s.kept_differs) {       /* the driver asked again (damage on the way): which is right? */
        for (uint64_t i = first; i < first + s.kept; i++)
            obj_forget_stored(o, i);
        s.kept = 0;
    }
    for (uint64_t i = first + s.kept; i < first + n; i++) {
        if (s.wrote)
            blocks_punch(o->fd, i << o->b->shift, obj_block_len(o, i));
        o->st[i] &= (uint8_t)~B_FETCHING;
    }
    o->inflight--;
    pthread_cond_broadcast(&o->cond);
    return s.kept;
}

static _Thread_local const atomic_int *thread_stop;

void blocks_set_stop(const atomic_int *flag)
{
    thread_stop = flag;
}

/* Wait while block idx is being downloaded by someone else, or (when we
 * would download it) while a writer waits for downloads to stop: 0, or
 * -EINTR once the thread's stop flag (blocks_set_stop) is raised; with a
 * flag named, the wait wakes every 100 ms to look at it. */
static int obj_wait_block(struct blocks_obj *o, uint64_t idx, bool unlocked, struct sky_err *e)
{
    while (idx < o->nblocks && ((o->st[idx] & B_FETCHING) ||
                                (unlocked && o->writers && !(o->st[idx] & B_PRESENT)))) {
        if (!thread_stop) {
            pthread_cond_wait(&o->cond, &o->lock);
            continue;
        }
        if (atomic_load(thread_stop))
            return sky_fail(e, EINTR, "interrupted while waiting for a block being downloaded");
        struct timespec until = clock_deadline_ms(100);
        pthread_cond_timedwait(&o->cond, &o->lock, &until);
    }
    return 0;
}

/* Make the chunks `want` of block idx (~0: all of it) present and
 * trustworthy: verify what is cached once, fetch the rest.  An absent
 * block wanted whole is fetched whole; otherwise only the missing chunks
 * are, and a block whose last chunk arrives becomes whole.  With
 * `unlocked`, the download runs without o->lock (readers); the caller
 * must then check o->change_gen, since a writer may have changed the
 * object meanwhile (idx may even be past the end: then nothing is done). */
int obj_ensure_block(struct blocks_obj *o, uint64_t idx, uint64_t want,
                     blocks_fetch_fn fetch, void *arg, bool count, bool unlocked,
                     struct sky_err *e)
{
    struct blocks *b = o->b;
    int rc = obj_wait_block(o, idx, unlocked, e);
    if (rc)
        return rc;
    if (idx >= o->nblocks)
        return 0;
    o->st[idx] &= (uint8_t)~B_QUEUED;           /* queued ahead: we take it over */
    uint64_t all = obj_chunk_mask(o, idx);
    want &= all;
    rc = obj_check_cached(o, idx, want, e);
    if (rc)
        return rc;
    if ((o->st[idx] & B_PRESENT) || !(want & ~o->parts[idx])) {
        if (count)
            blocks_count(&b->hits);
        return 0;
    }
    if (count)
        blocks_count(&b->misses);
    if (!o->parts[idx] && want == all)
        return obj_fetch_block(o, idx, fetch, arg, unlocked, e);
    if ((o->parts[idx] | want) == all) {
        rc = obj_verify_chunks(o, idx, all, e);   /* it completes the block: check the rest */
        if (rc)
            return rc;
    }
    return obj_fetch_chunks(o, idx, want & ~o->parts[idx], fetch, arg, unlocked, e);
}

/* Before changing the object: cancel queued readahead and wait until no
 * download is running, so none lands on top of the change (o->lock). */
void obj_quiesce(struct blocks_obj *o)
{
    o->writers++;
    for (uint64_t i = 0; i < o->nblocks; i++)
        o->st[i] &= (uint8_t)~B_QUEUED;
    while (o->inflight)
        pthread_cond_wait(&o->cond, &o->lock);
    o->writers--;
    o->change_gen++;
    o->wide = false;
    o->fill = FILL_NONE;
    o->rnd_new = o->rnd_miss = 0;
    pthread_cond_broadcast(&o->cond);
}

/* ---- readahead: background fetchers -------------------------------------- */

struct blocks_pool *pool_new(struct blocks *b)
{
    struct blocks_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->b = b;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    return p;
}

/* Is block i waiting for this background fetch, and absent? */
static bool obj_still_queued(const struct blocks_obj *o, uint64_t i)
{
    return i < o->nblocks && (o->st[i] & (B_QUEUED | B_PRESENT | B_FETCHING)) == B_QUEUED;
}

/* A check ahead of a sequential reader (obj_warm_ahead): hash cached
 * block job->idx without o->lock, marked B_FETCHING meanwhile, so that
 * readers wait for the answer and writers (obj_quiesce) for the end; a
 * corrupt block is counted and dropped, to be fetched again.  Then unpin. */
void pool_verify(struct blocks_job *job)
{
    struct blocks_obj *o = job->o;
    uint64_t i = job->idx;
    pthread_mutex_lock(&o->lock);
    if (i < o->nblocks) {
        o->st[i] &= (uint8_t)~B_WARMING;
        if (!o->writers &&
            (o->st[i] & (B_PRESENT | B_VERIFIED | B_DIRTY | B_FETCHING)) == B_PRESENT) {
            obj_download_begin(o, i);
            uint64_t sum;
            int rc = blocks_hash_file(o->fd, i << o->b->shift, obj_block_len(o, i), &sum);
            pthread_mutex_lock(&o->lock);
            struct sky_err e = { 0 };       /* a reader checks again and reports */
            if (rc == 0)
                blocks_count(&o->b->ahead_verified);
            if (rc == 0 && sum == o->sum[i]) {
                o->st[i] |= B_VERIFIED;
            } else if (rc == 0) {
                blocks_count(&o->b->corrupt);
                (void)obj_drop_block(o, i, &e);
            }
            obj_download_end(o, i);
        }
    }
    o->ahead--;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    blocks_release(o);
    free(job);
}

static bool obj_fill_continue(struct blocks_obj *o, struct blocks_job *job);

/* Download the blocks of the job still wanted (the first run of them:
 * readers may have taken some over), then unpin the object.  A fill job
 * that did its run goes on with the next one (obj_fill_continue). */
static void pool_run(struct blocks_job *job)
{
    struct blocks_obj *o = job->o;
    struct blocks *b = o->b;
    if (!job->fetch) {
        pool_verify(job);
        return;
    }
    pthread_mutex_lock(&o->lock);
    uint64_t end = job->idx + job->count, first = job->idx, n = 0;
    while (first < end && !obj_still_queued(o, first))
        first++;
    while (first + n < end && obj_still_queued(o, first + n) && (n == 0 || !o->parts[first + n]))
        n++;
    for (uint64_t i = job->idx; i < end && i < o->nblocks; i++)
        if (i < first || i >= first + n)
            o->st[i] &= (uint8_t)~B_QUEUED;
    uint64_t fetched = 0;
    struct sky_err e = { 0 };              /* a failed readahead is retried on demand */
    if (n && o->writers) {
        for (uint64_t i = first; i < first + n; i++)
            o->st[i] &= (uint8_t)~B_QUEUED;
    } else if (n == 1) {
        o->st[first] &= (uint8_t)~B_QUEUED;
        fetched = obj_ensure_block(o, first, ~0ull, job->fetch, job->arg, false, true, &e) == 0 &&
                  first < o->nblocks && (o->st[first] & B_PRESENT);
    } else if (n > 1) {
        fetched = obj_fetch_run(o, first, n, job->fetch, job->arg, &e);
    }
    __atomic_add_fetch(&b->ahead_fetched, fetched, __ATOMIC_RELAXED);
    if (job->fill && fetched < n)
        o->fill = FILL_OFF;                 /* it failed: no more fill this time */
    if (job->fill && obj_fill_continue(o, job)) {
        pthread_mutex_unlock(&o->lock);
        if (fetched)
            blocks_evict(b, NULL);
        return;
    }
    o->ahead--;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    if (job->drop)
        job->drop(job->arg);
    blocks_release(o);
    free(job);
    if (fetched)
        blocks_evict(b, NULL);              /* keep the limits */
}

/* A job that will not run: forget it was queued, unpin the object. */
static void pool_cancel(struct blocks_job *job)
{
    struct blocks_obj *o = job->o;
    pthread_mutex_lock(&o->lock);
    uint8_t mark = job->fetch ? B_QUEUED : B_WARMING;
    for (uint64_t i = job->idx; i < job->idx + job->count && i < o->nblocks; i++)
        o->st[i] &= (uint8_t)~mark;
    o->ahead--;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    if (job->drop)
        job->drop(job->arg);
    blocks_release(o);
    free(job);
}

static void *pool_main(void *arg)
{
    struct blocks_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->wake, &p->lock);
            p->idle--;
        }
        if (p->stop)
            break;
        struct blocks_job *job = p->head;
        p->head = job->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->lock);
        pool_run(job);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Queue a job, starting a fetcher when none is idle and the cap allows.
 * False when the queue is full or no fetcher can run. */
static bool pool_submit(struct blocks_pool *p, struct blocks_job *job)
{
    pthread_mutex_lock(&p->lock);
    bool ok = !p->stop && p->queued < BLOCKS_QUEUE_MAX;
    if (ok && p->idle <= (int)p->queued && p->nthreads < BLOCKS_FETCHERS &&
        pthread_create(&p->threads[p->nthreads], NULL, pool_main, p) == 0)
        p->nthreads++;
    ok = ok && p->nthreads > 0;
    if (ok) {
        job->next = NULL;
        if (p->tail)
            p->tail->next = job;
        else
            p->head = job;
        p->tail = job;
        p->queued++;
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->lock);
    return ok;
}

/* Stop the fetchers: running jobs finish, queued ones are cancelled. */
void pool_free(struct blocks_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    while (p->head) {
        struct blocks_job *job = p->head;
        p->head = job->next;
        pool_cancel(job);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p);
}

/* ---- readahead: which blocks (o->lock held) ------------------------------ */

/* Note a read of [off, off+n): a read at the start, or exactly where the
 * last one ended, starts a sequential run; while a run lasts, a read near
 * where the last one ended (the kernel's reads may arrive out of order)
 * continues it.  Sequential reads double the window; any other read is
 * random and resets it.  Returns the window to fetch ahead, in blocks (0:
 * the read is random). */
static uint64_t obj_track_access(struct blocks_obj *o, uint64_t off, uint64_t n)
{
    uint64_t bs = o->b->bs, next = o->ra_next;
    bool near = off + bs >= next && off <= next + bs;
    bool sequential = o->ra_window ? near : off == next;
    if (!sequential)
        o->ra_window = 0;
    else if (o->ra_window < BLOCKS_WINDOW_MAX)
        o->ra_window = o->ra_window ? o->ra_window * 2 : 1;
    if (o->ra_window > BLOCKS_WINDOW_MAX)
        o->ra_window = BLOCKS_WINDOW_MAX;
    if (off + n > next || !sequential)
        o->ra_next = off + n;
    return o->ra_window;
}

/* Hand a job on o's blocks (its state bits `mark` set meanwhile) to the
 * pool, pinning o for it; false when the pool cannot take it: then
 * nothing changed, and the caller still owns the job. */
static bool obj_submit_job(struct blocks_obj *o, struct blocks_job *job, uint8_t mark)
{
    struct blocks *b = o->b;
    pthread_mutex_lock(&b->lock);
    o->refs++;                              /* the job pins the object */
    pthread_mutex_unlock(&b->lock);
    for (uint64_t i = job->idx; i < job->idx + job->count; i++)
        o->st[i] |= mark;
    o->ahead++;
    if (pool_submit(b->pool, job))
        return true;
    for (uint64_t i = job->idx; i < job->idx + job->count; i++)
        o->st[i] &= (uint8_t)~mark;
    o->ahead--;
    pthread_mutex_lock(&b->lock);
    o->refs--;                              /* we still hold our own pin */
    pthread_mutex_unlock(&b->lock);
    return false;
}

/* Queue one background fetch of blocks idx..idx+count-1; false when it
 * cannot be. */
static bool obj_queue_run(struct blocks_obj *o, uint64_t idx, uint64_t count,
                          const struct blocks_fetcher *f)
{
    struct blocks_job *job = calloc(1, sizeof *job);
    void *arg = job ? f->clone(f->arg) : NULL;
    if (!arg) {
        free(job);
        return false;
    }
    *job = (struct blocks_job){ .o = o, .idx = idx, .count = count, .fetch = f->fetch,
                                .arg = arg, .drop = f->drop };
    if (obj_submit_job(o, job, B_QUEUED))
        return true;
    if (f->drop)
        f->drop(arg);
    free(job);
    return false;
}

/* ---- random-dense reads: wider fetches, and filling the object ---------- */

/* Is block i absent, with nothing of it under way? */
static bool obj_absent(const struct blocks_obj *o, uint64_t i)
{
    return !(o->st[i] & (B_PRESENT | B_FETCHING | B_QUEUED));
}

/* The next run of absent blocks for the fill, from o->fill_next (then from
 * the start, for blocks passed over while they were under way): up to
 * BLOCKS_RUN_BYTES of consecutive absent blocks (a block held in part goes
 * alone).  False when every block is present or under way. */
static bool obj_fill_find(struct blocks_obj *o, uint64_t *idx, uint64_t *count)
{
    uint64_t run_max = BLOCKS_RUN_BYTES >> o->b->shift;
    run_max = run_max < 1 ? 1 : run_max > BLOCKS_CHUNKS ? BLOCKS_CHUNKS : run_max;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t i = pass ? 0 : o->fill_next;
        while (i < o->nblocks && !obj_absent(o, i))
            i++;
        if (i >= o->nblocks)
            continue;
        uint64_t n = 1;
        while (!o->parts[i] && n < run_max && i + n < o->nblocks && obj_absent(o, i + n) &&
               !o->parts[i + n])
            n++;
        *idx = i;
        *count = n;
        o->fill_next = i + n;
        return true;
    }
    o->fill_next = o->nblocks;
    return false;
}

/* May the object be filled in the background now? */
static bool obj_fill_allowed(const struct blocks_obj *o)
{
    return o->fill == FILL_ON && !o->dirty && !o->writers && o->b->pool;
}

/* A fill job ended its run (o->lock held): give it the next run and queue
 * it again, keeping its pin, its fetch arg and its place in o->ahead.
 * False when the fill is over (or stopped, or the pool refuses): the
 * caller then ends the job. */
static bool obj_fill_continue(struct blocks_obj *o, struct blocks_job *job)
{
    uint64_t idx, n;
    if (!obj_fill_allowed(o) || !obj_fill_find(o, &idx, &n))
        return false;
    job->idx = idx;
    job->count = n;
    for (uint64_t i = idx; i < idx + n; i++)
        o->st[i] |= B_QUEUED;
    if (pool_submit(o->b->pool, job))
        return true;
    for (uint64_t i = idx; i < idx + n; i++)
        o->st[i] &= (uint8_t)~B_QUEUED;
    return false;
}

/* Start fill jobs until BLOCKS_AHEAD_PER_OBJ background jobs run for the
 * object (each then goes on by itself, run after run). */
static void obj_fill_more(struct blocks_obj *o, const struct blocks_fetcher *f)
{
    uint64_t idx, n;
    while (obj_fill_allowed(o) && o->ahead < BLOCKS_AHEAD_PER_OBJ && obj_fill_find(o, &idx, &n)) {
        struct blocks_job *job = calloc(1, sizeof *job);
        void *arg = job ? f->clone(f->arg) : NULL;
        if (!arg) {
            free(job);
            return;
        }
        *job = (struct blocks_job){ .o = o, .idx = idx, .count = n, .fetch = f->fetch,
                                    .arg = arg, .drop = f->drop, .fill = true };
        if (!obj_submit_job(o, job, B_QUEUED)) {
            if (f->drop)
                f->drop(arg);
            free(job);
            return;
        }
    }
}

/* Note a random read of [off, end) (o->lock held) and learn whether the
 * object is read randomly and densely: within BLOCKS_DENSE_WINDOW
 * seconds, at least BLOCKS_DENSE_MIN blocks first touched by random reads
 * and together an eighth of the object's blocks (for an object of fewer
 * blocks: BLOCKS_DENSE_SMALL random reads that needed the network).  A
 * dense object's random reads then fetch whole blocks (o->wide) rather
 * than 64 KiB chunks, and from then on, when it is at most a
 * BLOCKS_FILL_SHARE'th of the cache's size cap, the rest of it is fetched
 * in the background, in runs of blocks, by up to BLOCKS_AHEAD_PER_OBJ jobs
 * at once (o->fill).  (Waiting for a quarter of its blocks to be touched
 * first cost a dense reader eight one-block fetches in a row: 0.5 s of
 * its 2.3 s with a 40 ms round trip.)  Sparse random reads of a large
 * object keep fetching chunks. */
static void obj_track_dense(struct blocks_obj *o, uint64_t off, uint64_t end,
                            const struct blocks_fetcher *f)
{
    int64_t now = blocks_now();
    if (!o->wide && now - o->rnd_since > (int64_t)BLOCKS_DENSE_WINDOW * 1000000000LL) {
        o->rnd_new = o->rnd_miss = 0;
        o->rnd_since = now;
    }
    uint64_t first = off >> o->b->shift, last = (end - 1) >> o->b->shift;
    bool miss = false;
    for (uint64_t i = first; i <= last && i < o->nblocks; i++) {
        if (obj_absent(o, i) && !o->parts[i])
            o->rnd_new++;
        if (!(o->st[i] & B_PRESENT) && (obj_range_mask(o, i, off, end) & ~o->parts[i]))
            miss = true;
    }
    o->rnd_miss += miss;
    bool small = o->nblocks < BLOCKS_DENSE_MIN;
    if (small ? o->rnd_miss >= BLOCKS_DENSE_SMALL
              : o->rnd_new >= BLOCKS_DENSE_MIN && o->rnd_new * 8 >= o->nblocks)
        o->wide = true;
    uint64_t cap = o->b->max_size / BLOCKS_FILL_SHARE;
    if (o->wide && o->fill == FILL_NONE &&
        f->clone && o->size <= cap) {
        o->fill = FILL_ON;
        o->fill_next = 0;
    }
    if (o->fill == FILL_ON)
        obj_fill_more(o, f);
}

/* Queue a background check of cached block idx (a job without a fetch
 * function, B_WARMING meanwhile); false when it cannot be. */
static bool obj_queue_verify(struct blocks_obj *o, uint64_t idx)
{
    struct blocks_job *job = o->b->pool ? calloc(1, sizeof *job) : NULL;
    if (!job)
        return false;
    *job = (struct blocks_job){ .o = o, .idx = idx, .count = 1 };
    if (obj_submit_job(o, job, B_WARMING))
        return true;
    free(job);
    return false;
}

/* Queue the missing blocks of [from, from+window) not yet under way, up to
 * BLOCKS_AHEAD_PER_OBJ background fetches for the object, each a run of
 * consecutive absent blocks of up to BLOCKS_RUN_BYTES in one request (a
 * block held in part goes alone: it needs only its missing chunks). */
static void obj_read_ahead(struct blocks_obj *o, uint64_t from, uint64_t window,
                           const struct blocks_fetcher *f)
{
    if (!window || !f->clone || o->dirty || o->writers || !o->b->pool)
        return;
    uint64_t end = from + window < o->nblocks ? from + window : o->nblocks;
    uint64_t run_max = BLOCKS_RUN_BYTES >> o->b->shift;
    run_max = run_max < 1 ? 1 : run_max > BLOCKS_CHUNKS ? BLOCKS_CHUNKS : run_max;
    for (uint64_t i = from; i < end && o->ahead < BLOCKS_AHEAD_PER_OBJ;) {
        if (!obj_absent(o, i)) {
            i++;
            continue;
        }
        uint64_t n = 1;
        while (!o->parts[i] && n < run_max && i + n < end && obj_absent(o, i + n) &&
               !o->parts[i + n])
            n++;
        if (!obj_queue_run(o, i, n, f))
            break;
        i += n;
    }
}

/* The cached blocks among the next few that a sequential reader will
 * verify (hash) first: start reading them from the disk now, in large
 * requests, and (for a reader that allows background work, as for
 * obj_read_ahead) hash them on the background threads (pool_verify), up
 * to BLOCKS_AHEAD_PER_OBJ jobs at once, so that a read of block i finds
 * it checked and only copies it out. */
static void obj_warm_ahead(struct blocks_obj *o, uint64_t from, uint64_t window,
                           const struct blocks_fetcher *f)
{
    if (window > BLOCKS_WINDOW_MAX)
        window = BLOCKS_WINDOW_MAX;
    bool background = f->clone && !o->writers;
    uint64_t end = from + window < o->nblocks ? from + window : o->nblocks;
    for (uint64_t i = from; i < end; i++) {
        if ((o->st[i] & (B_PRESENT | B_VERIFIED | B_DIRTY | B_WARMING | B_FETCHING)) !=
            B_PRESENT)
            continue;                       /* not cached, done, or under way */
        if (background && (o->ahead >= BLOCKS_AHEAD_PER_OBJ || !obj_queue_verify(o, i)))
            break;                          /* the next read queues the rest */
        posix_fadvise(o->fd, (off_t)(i << o->b->shift), (off_t)obj_block_len(o, i),
                      POSIX_FADV_WILLNEED);
        o->st[i] |= B_WARMING;              /* asked ahead (and maybe queued) */
    }
}

/* ---- public: reading and writing ----------------------------------------- */

/* Make bytes [off, end) usable: the blocks they touch whole, or with
 * `chunks_only` only the chunks they touch.  1 when a writer changed the
 * object meanwhile (start over), 0, or -errno. */
static int obj_ensure_range(struct blocks_obj *o, uint64_t off, uint64_t end, bool chunks_only,
                            const struct blocks_fetcher *f, struct sky_err *e)
{
    uint64_t gen = o->change_gen;
    int64_t now = blocks_now();
    uint64_t first = off >> o->b->shift, last = (end - 1) >> o->b->shift;
    for (uint64_t i = first; i <= last; i++) {
        uint64_t need = obj_range_mask(o, i, off, end);
        if ((o->st[i] & (B_FETCHING | B_PRESENT)) == B_FETCHING &&
            !(need & ~(o->parts[i] & o->parts_ok[i]))) {
            /* the chunks read are cached and verified, and the download
             * of the block's others leaves them alone: no wait */
            blocks_count(&o->b->hits);
        } else {
            uint64_t want = chunks_only ? need : ~0ull;
            int rc = obj_ensure_block(o, i, want, f->fetch, f->arg, true, true, e);
            if (o->change_gen != gen)
                return 1;
            if (rc)
                return rc;
        }
        o->st[i] |= B_USED;
        o->used[i] = now;
    }
    return 0;
}

/* With o->lock held: make what a read of [off, off+len) gets usable (and
 * queue readahead); *n = the bytes it gets (0 at or past the end). */
static int obj_prepare_read(struct blocks_obj *o, uint64_t off, size_t len,
                            const struct blocks_fetcher *f, size_t *n, struct sky_err *e)
{
    int rc = 1;
    bool tracked = false, random = false;
    while (rc == 1) {
        rc = 0;
        *n = 0;
        if (off >= o->size || len == 0)
            break;
        *n = o->size - off < len ? (size_t)(o->size - off) : len;
        if (!tracked) {
            uint64_t window = obj_track_access(o, off, *n);
            uint64_t next = ((off + *n - 1) >> o->b->shift) + 1;
            obj_read_ahead(o, next, window, f);
            if (window)
                obj_warm_ahead(o, next, window, f);
            random = window == 0;
            if (random)
                obj_track_dense(o, off, off + *n, f);
            random = random && !o->wide;
            tracked = true;
        }
        rc = obj_ensure_range(o, off, off + *n, random, f, e);
    }
    return rc;
}

/* The end of a read: keep the limits when it fetched. */
static void obj_read_done(struct blocks_obj *o, uint64_t misses_before)
{
    if (__atomic_load_n(&o->b->misses, __ATOMIC_RELAXED) != misses_before)
        blocks_evict(o->b, NULL);
}

int blocks_read_ahead(struct blocks_obj *o, uint64_t off, size_t len, void *buf, size_t *got,
                      const struct blocks_fetcher *f, struct sky_err *e)
{
    *got = 0;
    uint64_t misses = __atomic_load_n(&o->b->misses, __ATOMIC_RELAXED);
    pthread_mutex_lock(&o->lock);
    size_t n;
    int rc = obj_prepare_read(o, off, len, f, &n, e);
    if (rc == 0 && n && (rc = blocks_pread(o->fd, buf, n, off)) != 0)
        rc = obj_io_fail(o, rc, "reading", e);
    if (rc == 0)
        *got = n;
    pthread_mutex_unlock(&o->lock);
    obj_read_done(o, misses);
    return rc;
}

int blocks_read_to(struct blocks_obj *o, uint64_t off, size_t len,
                   const struct blocks_fetcher *f, blocks_emit_fn emit, void *emit_arg,
                   struct sky_err *e)
{
    struct blocks *b = o->b;
    uint64_t misses = __atomic_load_n(&b->misses, __ATOMIC_RELAXED);
    pthread_mutex_lock(&b->lock);
    o->refs++;          /* once emit answered, the caller's own pin may go at once */
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_lock(&o->lock);
    size_t n;
    int rc = obj_prepare_read(o, off, len, f, &n, e);
    if (rc == 0 && !o->writers) {
        /* Hand the bytes out without the lock, so that the kernel's
         * parallel reads of one file overlap; counted like a download, so
         * nothing changes them meanwhile (obj_quiesce). */
        o->inflight++;
        pthread_mutex_unlock(&o->lock);
        emit(emit_arg, o->fd, off, n);
        pthread_mutex_lock(&o->lock);
        o->inflight--;
        pthread_cond_broadcast(&o->cond);
    } else if (rc == 0) {
        emit(emit_arg, o->fd, off, n);  /* a writer waits: do not keep it waiting */
    }
    pthread_mutex_unlock(&o->lock);
    obj_read_done(o, misses);
    blocks_release(o);
    return rc;
}

int blocks_read(struct blocks_obj *o, uint64_t off, size_t len, void *buf, size_t *got,
                blocks_fetch_fn fetch, void *arg, struct sky_err *e)
{
    struct blocks_fetcher f = { .fetch = fetch, .arg = arg };
    return blocks_read_ahead(o, off, len, buf, got, &f, e);
}

void blocks_cancel_ahead(struct blocks_obj *o)
{
    pthread_mutex_lock(&o->lock);
    for (uint64_t i = 0; i < o->nblocks; i++)
        o->st[i] &= (uint8_t)~B_QUEUED;
    if (o->fill == FILL_ON)
        o->fill = FILL_OFF;                 /* the fill jobs end after their run */
    while (o->ahead)
        pthread_cond_wait(&o->cond, &o->lock);
    if (o->fill == FILL_OFF)
        o->fill = FILL_NONE;                /* dense reads of a next open fill again */
    pthread_mutex_unlock(&o->lock);
}
