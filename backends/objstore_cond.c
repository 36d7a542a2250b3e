/*
 * objstore_cond.c - the object-store core's preconditions (issue 17: many
 * machines, one cloud; driver.h PRECONDITIONS): a write that replaces a
 * version says which (If-Match), a write of a new file says nothing may be
 * there (If-None-Match: *), and a delete says which version it deletes.
 *
 * Whether a server really checks them is found out once per cloud, at the
 * first conditional call, by a probe on a hidden object of its own
 * (".skyfs-probe-HOST-PID" beside the file, deleted again): an If-Match
 * naming a version that is not there, and an If-None-Match: * on an
 * object that is, must both fail, and an If-Match naming the object's
 * own version must succeed.  A protocol without OBJSTORE_COND, or a
 * server that ignores or rejects either header (s3rver ignores them),
 * gets a head compare right before each conditional write instead: the
 * weaker guarantee that objstore_guarantee reports (`skyfs status`).
 * Where a plain PUT checks both, a protocol with large uploads is probed
 * once more, with one-part multipart uploads: a server that ignores them
 * at the completion (Ceph's RGW 16) gets the head compare for files sent
 * in parts, and the weaker guarantee is reported.
 * A protocol with OBJSTORE_COND_NEW (Swift, GCS) has only the create-only
 * precondition: the probe checks that one, a new file is then protected
 * by the server itself, and a replacement or delete compares with a head.
 *
 * Called by objstore_upload.c (os_cond_prepare, os_cond_result) and
 * through the driver table (remove_if, guarantee).
 */
#include "objstore_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The version a probe names that no object has, in the protocol's form
 * (quoted when its ETags are, as `like` is). */
static void never_etag(const char *like, char out[SKY_ETAG_MAX])
{
    snprintf(out, SKY_ETAG_MAX, like[0] == '"' ? "\"%s\"" : "%s", "0000skyfsprobe0000");
}

/* The probe key beside `key` (same directory, so the same container and
 * permissions). */
static char *probe_key(const char *key)
{
    char host[64] = "host";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/')
            *c = '_';
    const char *slash = strrchr(key, '/');
    int dir = slash ? (int)(slash - key + 1) : 0;
    char *out = NULL;
    if (asprintf(&out, "%.*s.skyfs-probe-%s-%d", dir, key, host, (int)getpid()) < 0)
        return NULL;
    return out;
}

/* The create-only precondition's name, for messages. */
static const char *new_name(const struct objstore_proto *pr)
{
    return pr->cond_new_name ? pr->cond_new_name : "If-None-Match: *";
}

/* What a native probe means for a protocol with only the create-only
 * precondition (OBJSTORE_COND_NEW), for skyfs status. */
static void new_only_why(const struct objstore_proto *pr, char *why, size_t size)
{
    snprintf(why, size, "the server checks %s (a new file never replaces another machine's), "
             "but %s has no If-Match on writes: a replacement or delete compares the version "
             "with a HEAD right before", new_name(pr), pr->type);
}

/* Does a PUT onto pk with If-Match naming its own version etag succeed
 * (always true without OBJSTORE_COND: no If-Match is sent)? */
static bool own_version_ok(struct objstore *o, const char *container, const char *pk,
                           const char *etag, struct objstore_new *nw, struct sky_err *e)
{
    if (!(o->proto->flags & OBJSTORE_COND))
        return true;
    sky_err_clear(e);
    nw->if_match = etag;
    return o->proto->put(o->p, container, pk, "", -1, 0, nw, NULL, pk, e) == 0;
}

/* A one-part multipart upload of one byte onto pk (which exists) with
 * nw's precondition: 0 done, or the error of its completion. */
static int probe_upload(struct objstore *o, const char *container, const char *pk,
                        const struct objstore_new *nw, struct sky_err *e)
{
    const struct objstore_proto *pr = o->proto;
    FILE *f = tmpfile();
    if (!f || fputc('p', f) == EOF || fflush(f) != 0) {
        if (f)
            fclose(f);
        return sky_fail(e, errno ? errno : EIO, "cannot make a temporary file");
    }
    void *up = NULL;
    char etag[SKY_ETAG_MAX] = "";
    int rc = pr->mpu_begin(o->p, container, pk, nw, &up, pk, e);
    if (rc == 0) {
        rc = pr->mpu_part(up, 0, fileno(f), 0, 1, e);
        if (rc == 0)
            rc = pr->mpu_complete(up, 1, fileno(f), 1, etag, e);
        pr->mpu_end(up, rc < 0);
    }
    fclose(f);
    return rc;
}

/* The probe of a protocol with OBJSTORE_COND and large uploads, after a
 * plain PUT was found to check both preconditions: does the completion of
 * a multipart upload check them too?  (Ceph's RGW 16 ignores them there.)
 * false with why filled when it does not. */
static bool probe_parts(struct objstore *o, const char *container, const char *pk,
                        const char *never, char *why, size_t size)
{
    struct objstore_new nw = { "application/octet-stream", NULL, NULL, never, false };
    struct sky_err e = { 0 };
    int rc = probe_upload(o, container, pk, &nw, &e);
    const char *name = "If-Match";
    if (rc == -ESTALE) {
        nw.if_match = NULL;
        nw.if_none_match = true;
        name = "If-None-Match: *";
        sky_err_clear(&e);
        rc = probe_upload(o, container, pk, &nw, &e);
        if (rc == -ESTALE || rc == -EEXIST)
            return true;
    }
    if (rc == 0)
        snprintf(why, size, "the server checks If-Match and If-None-Match on PUT but ignores "
                 "%s when it completes a multipart upload: files over %llu MiB compare the "
                 "object's version with a HEAD right before", name,
                 (unsigned long long)(o->proto->put_max >> 20));
    else
        snprintf(why, size, "the server checks If-Match and If-None-Match on PUT but refuses "
                 "%s when it completes a multipart upload (%s): files over %llu MiB compare "
                 "the object's version with a HEAD right before", name, e.msg,
                 (unsigned long long)(o->proto->put_max >> 20));
    return false;
}

/* Does the server check both preconditions (or, OBJSTORE_COND_NEW, the
 * create-only one)?  SKY_GUARD_NATIVE or
 * SKY_GUARD_COMPARE with why filled; SKY_GUARD_UNKNOWN when the probe
 * could not be made (the cloud unreachable, no write permission): asked
 * again at the next conditional call. */
static enum sky_guarantee probe(struct objstore *o, const char *container, const char *key,
                                bool *parts_compare, char *why, size_t size)
{
    const struct objstore_proto *pr = o->proto;
    char *pk = probe_key(key);
    if (!pk)
        return SKY_GUARD_UNKNOWN;
    struct sky_err e = { 0 };
    struct objstore_new nw = { "application/octet-stream", NULL, NULL, NULL, false };
    char etag[SKY_ETAG_MAX] = "", never[SKY_ETAG_MAX];
    enum sky_guarantee g = SKY_GUARD_UNKNOWN;
    int rc = pr->put(o->p, container, pk, "", -1, 0, &nw, etag, pk, &e);
    if (rc < 0) {
        LOG_WARN("%s '%s': cannot find out whether the server checks If-Match (%s); "
                 "asking again at the next upload", pr->type, o->name, e.msg);
        free(pk);
        return g;
    }
    never_etag(etag, never);
    nw.if_match = (pr->flags & OBJSTORE_COND) ? never : NULL;
    sky_err_clear(&e);
    rc = nw.if_match ? pr->put(o->p, container, pk, "", -1, 0, &nw, NULL, pk, &e) : -ESTALE;
    if (rc == 0) {
        snprintf(why, size, "the server ignores If-Match");
        g = SKY_GUARD_COMPARE;
    } else if (rc != -ESTALE) {
        snprintf(why, size, "the server refuses If-Match (%s)", e.msg);
        g = SKY_GUARD_COMPARE;
    } else if (!own_version_ok(o, container, pk, etag, &nw, &e)) {
        /* every upload would be a false conflict */
        snprintf(why, size, "the server refuses If-Match with the object's own ETag (%s)",
                 e.msg);
        g = SKY_GUARD_COMPARE;
    } else {
        nw.if_match = NULL;
        nw.if_none_match = true;
        sky_err_clear(&e);
        rc = pr->put(o->p, container, pk, "", -1, 0, &nw, NULL, pk, &e);
        if (rc == 0) {
            snprintf(why, size, "the server ignores %s", new_name(pr));
            g = SKY_GUARD_COMPARE;
        } else if (rc != -ESTALE && rc != -EEXIST) {
            snprintf(why, size, "the server refuses %s (%s)", new_name(pr), e.msg);
            g = SKY_GUARD_COMPARE;
        } else {
            g = SKY_GUARD_NATIVE;
            if ((pr->flags & OBJSTORE_COND) && pr->mpu_begin)
                *parts_compare = !probe_parts(o, container, pk, never, why, size);
        }
    }
    sky_err_clear(&e);
    if (pr->remove(o->p, container, pk, pk, &e) < 0 && e.code != ENOENT)
        LOG_WARN("%s '%s': could not delete the probe object \"%s\": %s", pr->type, o->name,
                 pk, e.msg);
    free(pk);
    return g;
}

/* How preconditions are checked on o for a plain write or (parts) a
 * multipart upload, probing once (beside `key` of `container`) when
 * nobody has yet. */
static enum sky_guarantee cond_mode(struct objstore *o, const char *container, const char *key,
                                    bool parts)
{
    if (!(o->proto->flags & (OBJSTORE_COND | OBJSTORE_COND_NEW)))
        return SKY_GUARD_COMPARE;
    pthread_mutex_lock(&o->cond_lock);
    if (o->cond_state == SKY_GUARD_UNKNOWN) {
        char why[sizeof o->cond_why] = "";
        bool parts_compare = false;
        enum sky_guarantee g = probe(o, container, key, &parts_compare, why, sizeof why);
        o->cond_state = g;
        o->parts_compare = g == SKY_GUARD_NATIVE && parts_compare;
        if (g == SKY_GUARD_NATIVE && !(o->proto->flags & OBJSTORE_COND))
            new_only_why(o->proto, why, sizeof why);
        snprintf(o->cond_why, sizeof o->cond_why, "%s", why);
        if (g == SKY_GUARD_NATIVE && !(o->proto->flags & OBJSTORE_COND))
            LOG_INFO("%s '%s': %s", o->proto->type, o->name, why);
        else if (g == SKY_GUARD_NATIVE && o->parts_compare)
            LOG_WARN("%s '%s': %s (a weaker guarantee for those: a change made by another "
                     "machine in between can still be overwritten)", o->proto->type, o->name,
                     why);
        else if (g == SKY_GUARD_NATIVE)
            LOG_INFO("%s '%s': the server checks If-Match and If-None-Match: uploads, "
                     "deletes and renames never overwrite another machine's change",
                     o->proto->type, o->name);
        else if (g == SKY_GUARD_COMPARE)
            LOG_WARN("%s '%s': %s: uploads compare the object's version with a HEAD right "
                     "before sending (a weaker guarantee: a change made by another machine in "
                     "between can still be overwritten)", o->proto->type, o->name, why);
    }
    enum sky_guarantee g = o->cond_state;
    if (g == SKY_GUARD_NATIVE && parts && o->parts_compare)
        g = SKY_GUARD_COMPARE;
    pthread_mutex_unlock(&o->cond_lock);
    return g == SKY_GUARD_UNKNOWN ? SKY_GUARD_COMPARE : g;
}

/* The error of a precondition that failed at `show`. */
static int changed(struct objstore *o, const char *show, const char *what, struct sky_err *e)
{
    return OS_FAIL(o, e, ESTALE, "%s: %s since this machine last saw it (another machine "
                   "changed it)", show, what);
}

/* Compare what key holds now with what attr expects (a head).  A key
 * gone under SKY_EXPECT_MATCH is -ESTALE, or -ENOENT with gone_ok (a
 * delete finds its work done). */
static int compare(struct objstore *o, const char *container, const char *key,
                   const struct sky_attr *attr, bool gone_ok, const char *show,
                   struct sky_err *e)
{
    struct objstore_head h = { 0 };
    int rc = o->proto->head(o->p, container, key, &h, show, e);
    if (rc == -ENOENT && gone_ok)
        return rc;
    if (rc == -ENOENT) {
        sky_err_clear(e);
        return (attr->expect & SKY_EXPECT_MATCH) ? changed(o, show, "deleted", e) : 0;
    }
    if (rc < 0)
        return rc;
    bool same = (attr->expect & SKY_EXPECT_MATCH) && strcmp(h.etag, attr->etag) == 0;
    objstore_head_free(&h);
    if (attr->expect & SKY_EXPECT_NONE)
        return changed(o, show, "created", e);
    return same ? 0 : changed(o, show, "changed", e);
}

int os_cond_prepare(struct objstore *o, const struct os_loc *l, const char *key,
                    const struct sky_attr *attr, bool parts, struct objstore_new *nw,
                    const char *show, struct sky_err *e)
{
    if (!attr || !(attr->expect & (SKY_EXPECT_MATCH | SKY_EXPECT_NONE)))
        return 0;
    if (cond_mode(o, l->container, key, parts) != SKY_GUARD_NATIVE ||
        ((attr->expect & SKY_EXPECT_MATCH) && !(o->proto->flags & OBJSTORE_COND)))
        return compare(o, l->container, key, attr, false, show, e);
    if (attr->expect & SKY_EXPECT_MATCH)
        nw->if_match = attr->etag;
    else
        nw->if_none_match = true;
    return 0;
}

const char *os_cond_parts_match(struct objstore *o, const char *container, const char *key,
                                const char *etag)
{
    if (!(o->proto->flags & OBJSTORE_COND))
        return NULL;
    return cond_mode(o, container, key, true) == SKY_GUARD_NATIVE ? etag : NULL;
}

int os_cond_result(struct objstore *o, const struct sky_attr *attr, int rc, const char *show,
                   struct sky_err *e)
{
    if (!attr || rc >= 0)
        return rc;
    if ((attr->expect & SKY_EXPECT_MATCH) && (rc == -ENOENT || rc == -ESTALE))
        return changed(o, show, rc == -ENOENT ? "deleted" : "changed", e);
    if ((attr->expect & SKY_EXPECT_NONE) && (rc == -EEXIST || rc == -ESTALE))
        return changed(o, show, "created", e);
    return rc;
}

int objstore_remove_if(void *ctx, const char *path, const char *etag, struct sky_err *e)
{
    struct objstore *o = ctx;
    if (!etag || !*etag)
        return objstore_remove(ctx, path, e);
    struct os_loc l;
    int rc = os_locate(o, path, &l, e);
    if (rc < 0)
        return rc;
    if (!*l.key) {
        os_loc_free(&l);
        return objstore_remove(ctx, path, e);   /* its own error */
    }
    char show[OS_SHOW_MAX];
    os_show(o, &l, show, sizeof show);
    struct sky_attr want = { 0 };
    snprintf(want.etag, sizeof want.etag, "%s", etag);
    want.expect = SKY_EXPECT_MATCH;
    bool native = o->proto->remove_match &&
                  cond_mode(o, l.container, l.key, false) == SKY_GUARD_NATIVE;
    if (native) {
        rc = o->proto->remove_match(o->p, l.container, l.key, etag, show, e);
        if (rc == -ESTALE)
            rc = changed(o, show, "changed", e);
        if (rc == 0)
            os_links_drop(o, l.container, l.key);
    } else {
        rc = compare(o, l.container, l.key, &want, true, show, e);
    }
    os_loc_free(&l);
    if (!native && rc == 0)
        rc = objstore_remove(ctx, path, e);
    return rc;
}

int objstore_guarantee(void *ctx, char *why, size_t size)
{
    struct objstore *o = ctx;
    if (!(o->proto->flags & (OBJSTORE_COND | OBJSTORE_COND_NEW))) {
        snprintf(why, size, "%s has no preconditions in skyfs yet: a HEAD compare right "
                 "before each upload", o->proto->type);
        return SKY_GUARD_COMPARE;
    }
    pthread_mutex_lock(&o->cond_lock);
    enum sky_guarantee g = o->cond_state;
    snprintf(why, size, "%s", g == SKY_GUARD_UNKNOWN ? "not found out yet (no upload so far)"
                                                     : o->cond_why);
    pthread_mutex_unlock(&o->cond_lock);
    /* only new files, or only files sent in one PUT, are protected
     * natively: the weaker guarantee stands */
    if (g == SKY_GUARD_NATIVE && (!(o->proto->flags & OBJSTORE_COND) || o->parts_compare))
        g = SKY_GUARD_COMPARE;
    return (int)g;
}
