/* test_dirmemo.c - the folders a listing shows without attributes are
 * asked about once, in batches, and delivered with their marker's
 * attributes; a newer marker seen in the folder's own listing is asked
 * again. */
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/dirmemo.h"

#define N 600

struct cloud {
    pthread_mutex_t lock;
    int asked[N];
    int delivered[N];
    unsigned mode[N];
    bool fail_11;
    bool cache_knows_even;          /* the caller's cache knows even folders */
};

static int index_of(const char *key)
{
    return atoi(key + 1);               /* "d123/" or "d123" */
}

/* folder i: a marker with mode 0700 + i % 8, except every 4th (no marker);
 * folder 11 fails when fail_11 */
static int ask(void *arg, const char *key, struct sky_attr *out, char *etag,
               int64_t *modified_ns, struct sky_err *e)
{
    struct cloud *c = arg;
    int i = index_of(key);
    pthread_mutex_lock(&c->lock);
    c->asked[i]++;
    pthread_mutex_unlock(&c->lock);
    if (i == 11 && c->fail_11)
        return sky_fail(e, EHOSTDOWN, "HEAD %s: unreachable", key);
    if (i % 4 == 0)
        return -ENOENT;
    *out = (struct sky_attr){ .kind = SKY_DIR, .mode = 0700u + (unsigned)(i % 8),
                              .has = SKY_HAS_MODE };
    snprintf(etag, SKY_ETAG_MAX, "\"m%d\"", i);
    *modified_ns = 1000000000ll * 1000 + 123;
    return 0;
}

static bool known(void *arg, const char *key, struct sky_attr *out)
{
    struct cloud *c = arg;
    int i = index_of(key);
    if (!c->cache_knows_even || i % 2)
        return false;
    *out = (struct sky_attr){ .kind = SKY_DIR, .mode = 0711, .has = SKY_HAS_MODE };
    return true;
}

static int deliver(void *arg, const struct sky_dirent *ent)
{
    struct cloud *c = arg;
    int i = index_of(ent->name);
    c->delivered[i]++;
    c->mode[i] = ent->attr.has & SKY_HAS_MODE ? ent->attr.mode : 0755;
    return ent->attr.kind == SKY_DIR ? 0 : -EINVAL;
}

static int list_all(struct dirmemo *memo, struct cloud *c, struct sky_err *e)
{
    struct dirmemo_batch b = { .memo = memo, .scope = "bucket", .ask = ask, .ask_arg = c,
                               .known = known, .cb = deliver, .cb_arg = c, .e = e };
    int rc = 0;
    for (int i = 0; rc == 0 && i < N; i++) {
        char name[16], key[16];
        snprintf(name, sizeof name, "d%d", i);
        snprintf(key, sizeof key, "d%d/", i);
        struct sky_dirent ent = { .name = name, .attr = { .kind = SKY_DIR } };
        rc = dirmemo_add(&b, key, &ent);
    }
    if (rc == 0)
        rc = dirmemo_flush(&b);
    dirmemo_batch_free(&b);
    return rc;
}

static void reset(struct cloud *c)
{
    for (int i = 0; i < N; i++)
        c->asked[i] = c->delivered[i] = 0;
}

static unsigned want_mode(int i)
{
    return i % 4 == 0 ? 0755 : 0700u + (unsigned)(i % 8);
}

TEST(dirmemo_asks_each_folder_once)
{
    struct dirmemo *memo;
    CHECK_INT(dirmemo_new(&memo), 0);
    struct cloud *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    struct sky_err e = { 0 };
    CHECK_INT(list_all(memo, c, &e), 0);
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += c->asked[i] != 1 || c->delivered[i] != 1 || c->mode[i] != want_mode(i);
    CHECK_INT(wrong, 0);
    /* listed again: nothing asked, the same attributes (404s remembered) */
    reset(c);
    CHECK_INT(list_all(memo, c, &e), 0);
    wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += c->asked[i] != 0 || c->delivered[i] != 1 || c->mode[i] != want_mode(i);
    CHECK_INT(wrong, 0);
    /* the folders' own listings: d1's marker in the remembered version,
     * d2's in a newer one (same ETag, later Last-Modified), d3's gone, a
     * marker for d4 (none before); the driver rewrote d5's */
    int64_t mod = 1000000000ll * 1000 + 456;     /* the same second */
    dirmemo_seen(memo, "bucket", "d1/", true, "\"m1\"", mod);
    dirmemo_seen(memo, "bucket", "d2/", true, "\"m2\"", mod + 1000000000ll);
    dirmemo_seen(memo, "bucket", "d3/", false, NULL, 0);
    dirmemo_seen(memo, "bucket", "d4/", true, "\"x\"", mod);
    dirmemo_forget(memo, "bucket", "d5/");
    reset(c);
    CHECK_INT(list_all(memo, c, &e), 0);
    wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += c->asked[i] != (i >= 2 && i <= 5 ? 1 : 0);
    CHECK_INT(wrong, 0);
    free(c);
    dirmemo_free(memo);
}

/* What the caller's cache knows is not asked; a folder whose own listing
 * showed a newer marker is asked, not taken from the cache. */
TEST(dirmemo_the_cache_is_asked_first)
{
    struct dirmemo *memo;
    CHECK_INT(dirmemo_new(&memo), 0);
    struct cloud *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->cache_knows_even = true;
    struct sky_err e = { 0 };
    CHECK_INT(list_all(memo, c, &e), 0);
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += c->asked[i] != i % 2 || c->mode[i] != (i % 2 ? want_mode(i) : 0711);
    CHECK_INT(wrong, 0);
    /* a memory from the cache has no version: the folder's own listing
     * makes it asked again */
    dirmemo_seen(memo, "bucket", "d2/", true, "\"m2\"", 0);
    reset(c);
    CHECK_INT(list_all(memo, c, &e), 0);
    wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += c->asked[i] != (i == 2);
    CHECK_INT(wrong, 0);
    CHECK_INT((int)c->mode[2], 0702);
    free(c);
    dirmemo_free(memo);
}

TEST(dirmemo_a_failed_question_fails_the_listing)
{
    struct dirmemo *memo;
    CHECK_INT(dirmemo_new(&memo), 0);
    struct cloud *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->fail_11 = true;
    struct sky_err e = { 0 };
    CHECK_INT(list_all(memo, c, &e), -EHOSTDOWN);
    CHECK(strstr(e.msg, "d11/") != NULL);
    free(c);
    dirmemo_free(memo);
}

/* A folder kept in a batch that another listing asks about before the
 * batch is flushed (the crawl and a listing through the mount walk the
 * same folders) is not asked again: its answer is taken. */
TEST(dirmemo_an_answer_that_came_meanwhile_is_taken)
{
    struct dirmemo *memo;
    CHECK_INT(dirmemo_new(&memo), 0);
    struct cloud *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    struct sky_err e = { 0 };
    struct dirmemo_batch b = { .memo = memo, .scope = "bucket", .ask = ask, .ask_arg = c,
                               .cb = deliver, .cb_arg = c, .e = &e };
    struct sky_dirent ent = { .name = "d5", .attr = { .kind = SKY_DIR } };
    CHECK_INT(dirmemo_add(&b, "d5/", &ent), 0);
    CHECK_INT((int)b.n, 1);                         /* kept, to be asked */
    struct sky_attr theirs = { .kind = SKY_DIR, .mode = 0705, .has = SKY_HAS_MODE };
    dirmemo_put(memo, "bucket", "d5/", true, "\"m5\"", 1000000000ll * 1000, &theirs);
    CHECK_INT(dirmemo_flush(&b), 0);
    CHECK_INT(c->asked[5], 0);
    CHECK_INT(c->delivered[5], 1);
    CHECK_INT((int)c->mode[5], 0705);
    free(c);
    dirmemo_free(memo);
}
