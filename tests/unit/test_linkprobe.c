/* test_linkprobe.c - the listed objects that could be symlinks are asked
 * about once per version, in batches, and delivered with their kind. */
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../backends/linkprobe.h"

#define N 600

struct cloud {
    pthread_mutex_t lock;
    int asked[N];
    int delivered[N];
    enum sky_kind kind[N];
    bool fail_11;
};

static int index_of(const char *key)
{
    return atoi(key + 1);               /* "k123" */
}

/* every 3rd object is a link; object 7 is gone; object 11 fails */
static int ask(void *arg, const char *key, struct sky_attr *out, struct sky_err *e)
{
    struct cloud *c = arg;
    int i = index_of(key);
    pthread_mutex_lock(&c->lock);
    c->asked[i]++;
    pthread_mutex_unlock(&c->lock);
    if (i == 7)
        return -ENOENT;
    if (i == 11 && c->fail_11)
        return sky_fail(e, EHOSTDOWN, "HEAD %s: unreachable", key);
    *out = (struct sky_attr){ .kind = i % 3 == 0 ? SKY_LINK : SKY_FILE };
    snprintf(out->etag, sizeof out->etag, "\"e%d\"", i);
    return 0;
}

static int deliver(void *arg, const struct sky_dirent *ent)
{
    struct cloud *c = arg;
    int i = index_of(ent->name);
    c->delivered[i]++;
    c->kind[i] = ent->attr.kind;
    return 0;
}

/* Object i: 100 bytes, except every 5th (5,000 bytes: too big for a link). */
static int list_some(struct linkprobe *memo, struct cloud *c, bool forgetful,
                     struct sky_err *e)
{
    struct linkprobe_batch b = { .memo = memo, .scope = "bucket", .ask = ask, .ask_arg = c,
                                 .cb = deliver, .cb_arg = c, .e = e, .forgetful = forgetful };
    int rc = 0;
    for (int i = 0; rc == 0 && i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", i);
        struct sky_dirent ent = { .name = name,
                                  .attr = { .kind = SKY_FILE, .size = i % 5 ? 100 : 5000 } };
        snprintf(ent.attr.etag, sizeof ent.attr.etag, "\"e%d\"", i);
        rc = linkprobe_add(&b, name, &ent);
    }
    if (rc == 0)
        rc = linkprobe_flush(&b);
    linkprobe_batch_free(&b);
    return rc;
}

static int list_all(struct linkprobe *memo, struct cloud *c, struct sky_err *e)
{
    return list_some(memo, c, false, e);
}

TEST(linkprobe_asks_small_objects_once_per_version)
{
    struct linkprobe *memo;
    CHECK_INT(linkprobe_new(&memo), 0);
    struct cloud *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    struct sky_err e = { 0 };
    CHECK_INT(list_all(memo, c, &e), 0);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        wrong += c->asked[i] != (i % 5 ? 1 : 0);                /* large ones never */
        wrong += c->delivered[i] != (i == 7 ? 0 : 1);           /* gone: left out */
        if (i != 7)
            wrong += c->kind[i] != (i % 5 && i % 3 == 0 ? SKY_LINK : SKY_FILE);
    }
    CHECK_INT(wrong, 0);
    /* listed again: the files are remembered, the links are the driver's
     * to remember (it keeps their targets), so only they are asked again */
    for (int i = 0; i < N; i++)
        c->asked[i] = c->delivered[i] = 0;
    CHECK_INT(list_all(memo, c, &e), 0);
    wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += c->asked[i] != (i % 5 && (i % 3 == 0 || i == 7) ? 1 : 0);
    CHECK_INT(wrong, 0);
    free(c);
    linkprobe_free(memo);
}

TEST(linkprobe_a_forgetful_listing_asks_but_teaches_nothing)
{
    struct linkprobe *memo;
    CHECK_INT(linkprobe_new(&memo), 0);
    struct cloud *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    struct sky_err e = { 0 };
    /* the crawl's listing: asked, delivered, not remembered as "not a
     * link" (the next listing's entries reach the cache before the
     * crawl's, and must carry the head's metadata) */
    CHECK_INT(list_some(memo, c, true, &e), 0);
    CHECK_INT(c->asked[1], 1);
    CHECK_INT(c->delivered[1], 1);
    CHECK(!linkprobe_known(memo, "bucket", "k1", "\"e1\""));
    /* ... but a listing right after takes the answer it just got, with
     * its metadata, without asking again; links are asked again (the
     * driver keeps their targets) */
    CHECK_INT(list_all(memo, c, &e), 0);
    CHECK_INT(c->asked[1], 1);
    CHECK_INT(c->delivered[1], 2);
    CHECK_INT(c->kind[1], SKY_FILE);
    CHECK_INT(c->asked[3], 2);
    CHECK_INT(c->kind[3], SKY_LINK);
    CHECK(linkprobe_known(memo, "bucket", "k1", "\"e1\""));
    free(c);
    linkprobe_free(memo);
}

TEST(linkprobe_a_failed_question_fails_the_listing)
{
    struct linkprobe *memo;
    CHECK_INT(linkprobe_new(&memo), 0);
    struct cloud *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->fail_11 = true;
    struct sky_err e = { 0 };
    CHECK_INT(list_all(memo, c, &e), -EHOSTDOWN);
    CHECK(strstr(e.msg, "k11") != NULL);
    free(c);
    linkprobe_free(memo);
}

/* A version remembered from elsewhere (the caller's metadata cache) is
 * known, and a listing does not ask about it; another version of the same
 * key, or the same key in another scope, is still unknown. */
TEST(linkprobe_remembered_versions_are_not_asked)
{
    struct linkprobe *memo;
    CHECK_INT(linkprobe_new(&memo), 0);
    CHECK(!linkprobe_known(memo, "bucket", "k1", "\"e1\""));
    for (int i = 0; i < N; i++) {
        char key[16], etag[16];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(etag, sizeof etag, "\"e%d\"", i);
        if (i % 3)
            linkprobe_remember(memo, "bucket", key, etag);
    }
    CHECK(linkprobe_known(memo, "bucket", "k1", "\"e1\""));
    CHECK(!linkprobe_known(memo, "bucket", "k1", "\"e2\""));
    CHECK(!linkprobe_known(memo, "other", "k1", "\"e1\""));
    struct cloud *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    struct sky_err e = { 0 };
    CHECK_INT(list_all(memo, c, &e), 0);
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += c->asked[i] != (i % 5 && i % 3 == 0 ? 1 : 0);
    CHECK_INT(wrong, 0);
    free(c);
    linkprobe_free(memo);
}

/* The head answer's stored mode, owner and mtime replace the listing's
 * guesses when the head saw the listed version ("v1"); an answer about
 * another version (rewritten meanwhile) leaves the listed entry alone. */
static int ask_meta(void *arg, const char *key, struct sky_attr *out, struct sky_err *e)
{
    (void)arg;
    (void)e;
    *out = (struct sky_attr){ .kind = SKY_FILE, .mode = 0640, .uid = 7, .gid = 8,
                              .mtime_ns = 981173106000000000LL,
                              .has = SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME };
    snprintf(out->etag, sizeof out->etag, "%s", key[0] == 's' ? "\"v1\"" : "\"v2\"");
    return 0;
}

static int keep_attr(void *arg, const struct sky_dirent *ent)
{
    struct sky_attr *got = arg;
    got[ent->name[0] == 's' ? 0 : 1] = ent->attr;
    return 0;
}

TEST(linkprobe_head_metadata_replaces_the_listed_guess)
{
    struct linkprobe *memo;
    CHECK_INT(linkprobe_new(&memo), 0);
    struct sky_attr got[2];
    memset(got, 0, sizeof got);
    struct sky_err e = { 0 };
    struct linkprobe_batch b = { .memo = memo, .scope = "bucket", .ask = ask_meta,
                                 .cb = keep_attr, .cb_arg = got, .e = &e };
    const char *names[2] = { "same", "other" };
    for (int i = 0; i < 2; i++) {
        struct sky_dirent ent = { .name = names[i],
                                  .attr = { .kind = SKY_FILE, .size = 6,
                                            .mtime_ns = 1796457541000000000LL } };
        snprintf(ent.attr.etag, sizeof ent.attr.etag, "\"v1\"");
        CHECK_INT(linkprobe_add(&b, names[i], &ent), 0);
    }
    CHECK_INT(linkprobe_flush(&b), 0);
    CHECK_INT(got[0].mode, 0640);
    CHECK_INT(got[0].uid, 7);
    CHECK_INT(got[0].gid, 8);
    CHECK(got[0].mtime_ns == 981173106000000000LL);
    CHECK_INT(got[0].has, SKY_HAS_MODE | SKY_HAS_UID | SKY_HAS_GID | SKY_HAS_MTIME);
    CHECK(got[1].mtime_ns == 1796457541000000000LL);
    CHECK_INT(got[1].has, 0);
    CHECK_INT(got[1].mode, 0);
    /* listed again right away by a listing that asks nothing (the answer
     * was kept): the head's metadata again, not the listing's guess */
    memset(got, 0, sizeof got);
    struct linkprobe_batch again = { .memo = memo, .scope = "bucket", .ask = NULL,
                                     .cb = keep_attr, .cb_arg = got, .e = &e };
    struct sky_dirent ent = { .name = "same", .attr = { .kind = SKY_FILE, .size = 6,
                                                         .mtime_ns = 1796457541000000000LL } };
    snprintf(ent.attr.etag, sizeof ent.attr.etag, "\"v1\"");
    CHECK_INT(linkprobe_add(&again, "same", &ent), 0);
    CHECK_INT(again.n, 0);                  /* delivered at once: nothing to ask */
    CHECK_INT(got[0].mode, 0640);
    CHECK_INT(got[0].uid, 7);
    CHECK(got[0].mtime_ns == 981173106000000000LL);
    linkprobe_free(memo);
}
/* Two listings need the same version at once (the crawl's and one through
 * the mount): one question goes out, both get its answer. */
struct held {
    struct linkprobe *memo;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool asking, release;
    int asked;
    bool forgetful[2];
    enum sky_kind kind[2];
    int delivered[2];
};

static int held_ask(void *arg, const char *key, struct sky_attr *out, struct sky_err *e)
{
    (void)key;
    (void)e;
    struct held *h = arg;
    pthread_mutex_lock(&h->lock);
    h->asked++;
    h->asking = true;
    pthread_cond_broadcast(&h->cond);
    while (!h->release)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    *out = (struct sky_attr){ .kind = SKY_LINK, .mode = 0777, .has = SKY_HAS_MODE };
    snprintf(out->etag, sizeof out->etag, "\"e1\"");
    return 0;
}

struct held_listing {
    struct held *h;
    int which;
    int rc;
};

static int held_deliver(void *arg, const struct sky_dirent *ent)
{
    struct held_listing *l = arg;
    l->h->delivered[l->which]++;
    l->h->kind[l->which] = ent->attr.kind;
    return 0;
}

static void *held_list(void *arg)
{
    struct held_listing *l = arg;
    struct sky_err e = { 0 };
    struct linkprobe_batch b = { .memo = l->h->memo, .scope = "bucket", .ask = held_ask,
                                 .ask_arg = l->h, .cb = held_deliver, .cb_arg = l,
                                 .e = &e, .forgetful = l->h->forgetful[l->which] };
    struct sky_dirent ent = { .name = "k1", .attr = { .kind = SKY_FILE, .size = 9 } };
    snprintf(ent.attr.etag, sizeof ent.attr.etag, "\"e1\"");
    l->rc = linkprobe_add(&b, "k1", &ent);
    if (l->rc == 0)
        l->rc = linkprobe_flush(&b);
    linkprobe_batch_free(&b);
    return NULL;
}

TEST(linkprobe_two_listings_at_once_ask_once)
{
    struct held h = { .forgetful = { true, false } };
    CHECK_INT(linkprobe_new(&h.memo), 0);
    pthread_mutex_init(&h.lock, NULL);
    pthread_cond_init(&h.cond, NULL);
    struct held_listing crawl = { &h, 0, -1 }, mount = { &h, 1, -1 };
    pthread_t t0, t1;
    pthread_create(&t0, NULL, held_list, &crawl);
    pthread_mutex_lock(&h.lock);
    while (!h.asking)
        pthread_cond_wait(&h.cond, &h.lock);
    pthread_mutex_unlock(&h.lock);
    /* the crawl's question is in flight: the mount's listing comes */
    pthread_create(&t1, NULL, held_list, &mount);
    struct timespec wait = { 0, 300 * 1000 * 1000 };
    nanosleep(&wait, NULL);
    pthread_mutex_lock(&h.lock);
    h.release = true;
    pthread_cond_broadcast(&h.cond);
    pthread_mutex_unlock(&h.lock);
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    CHECK_INT(crawl.rc, 0);
    CHECK_INT(mount.rc, 0);
    CHECK_INT(h.asked, 1);
    CHECK_INT(h.delivered[0], 1);
    CHECK_INT(h.delivered[1], 1);
    CHECK_INT(h.kind[0], SKY_LINK);
    CHECK_INT(h.kind[1], SKY_LINK);
    linkprobe_free(h.memo);
}
