/*
 * webdav_xml.h - what WebDAV servers answer in XML, and what skyfs asks.
 *
 * A PROPFIND answer is a 207 multistatus: one <response> per resource with
 * its <href> and one <propstat> per status (200 for the properties the
 * server has, 404 for the ones it lacks).  webdav_parse_multistatus turns
 * each <response> into a struct webdav_entry with only the properties that
 * came under a 2xx status: the type (collection or not), size, last
 * modification time, etag, RFC 4331 quota and the dead properties skyfs
 * stores (mode, uid, gid, mtime and user.* extended attributes: see
 * webdav.c).  A PROPPATCH answer is also a
 * multistatus; webdav_proppatch_refused finds a property the server would
 * not set.  The request bodies (PROPFIND and PROPPATCH) are built here too,
 * so every XML of the protocol lives in one place.
 *
 * Used by backends/webdav.c only (and its unit tests).  No I/O, no state.
 */
#ifndef SKY_WEBDAV_XML_H
#define SKY_WEBDAV_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "driver.h"

/* The namespace of the dead properties skyfs stores on a resource. */
#define WEBDAV_SKYFS_NS "urn:x-skyfs:posix"

/* One resource of a multistatus answer.  `path` is the href's path
 * percent-decoded, without scheme, host or trailing slash ("/dav/a b");
 * it may hold a NUL (its length is path_len): callers check names. */
struct webdav_entry {
    char *path;
    size_t path_len;
    bool is_dir;
    bool has_size, has_mtime, has_etag;
    uint64_t size;
    int64_t mtime_ns;
    char etag[SKY_ETAG_MAX];        /* as the server wrote it, quotes included, without
                                     * a weak validator's "W/" */
    bool has_mode, has_uid, has_gid;
    uint32_t mode, uid, gid;        /* skyfs dead properties (mode: permission bits) */
    /* skyfs's dead property skyfs-mtime, "NS ETAG": the modification time
     * set through skyfs, valid only while the resource has that etag (a
     * change made on the server gives it another, and its own time counts) */
    bool has_skyfs_mtime;
    int64_t skyfs_mtime_ns;
    char skyfs_mtime_etag[SKY_ETAG_MAX];
    bool has_quota_avail, has_quota_used;
    uint64_t quota_avail, quota_used;
    /* the extended attributes skyfs stored (dead properties skyfs-x-HEX,
     * see webdav_xattr_prop): user.KEY as items KEY (owned by the parser,
     * valid during the callback); user.has_user is false, since only an
     * answer to an allprop PROPFIND holds them all */
    struct sky_objmeta user;
};

/* Called once per <response> that has a 2xx propstat.  0 goes on; a
 * negative errno stops the parse and is returned. */
typedef int (*webdav_entry_fn)(void *arg, const struct webdav_entry *ent);

/* Parse a multistatus body.  0, the callback's error, -EBADMSG when the
 * body is not a multistatus (e names what is wrong), -ENOMEM. */
int webdav_parse_multistatus(const char *body, size_t len, webdav_entry_fn fn, void *arg,
                             struct sky_err *e);

/* df from the answer to a PROPFIND of RFC 4331's quota (WEBDAV_QUOTA):
 * the first resource that tells quota-available-bytes (quota-used-bytes
 * may be missing: 0), in 4 KiB blocks.  false (st untouched) when the
 * answer tells no quota: properties missing (Apache and rclone answer
 * 404), not a number (Nextcloud's -3 for "unlimited"), or 0 available and
 * 0 used, which servers send for "none" (a quota used up has bytes used):
 * the caller reports plenty of room, never a full disk. */
struct statvfs;
bool webdav_quota_statvfs(const char *body, size_t len, struct statvfs *st);

/* The path of an href, percent-decoded, without trailing slash, malloc'd
 * (its decoded length in *len): "http://h:1/a%20b/" -> "/a b".  NULL when
 * out of memory or when the href is no URL or absolute path. */
char *webdav_href_path(const char *href, size_t *len);

/* Does a PROPPATCH multistatus answer refuse any property (a propstat
 * whose status is not 2xx)?  Then *status holds that status (403, 409,
 * 424...).  false for an answer with no refusal. */
bool webdav_proppatch_refused(const char *body, size_t len, long *status);

/* The PROPFIND bodies skyfs sends (static strings): */
enum webdav_propfind {
    WEBDAV_PROPS,       /* the live properties it reads plus its own dead ones */
    WEBDAV_ALLPROP,     /* everything: also every extended attribute */
    WEBDAV_QUOTA,       /* RFC 4331's two quota properties */
};
const char *webdav_propfind_body(enum webdav_propfind which);

/* The local name of the dead property that holds extended attribute
 * user.KEY: "skyfs-x-" and KEY's bytes in hex (any bytes make an XML
 * name so), into out (cap bytes); false when it does not fit. */
bool webdav_xattr_prop(const char *key, char *out, size_t cap);

/* A PROPPATCH body setting skyfs's dead properties named in `which`
 * (SKY_HAS_MODE, _UID, _GID, and SKY_HAS_MTIME: skyfs-mtime, attr's mtime
 * bound to `etag`, which must then be the resource's current etag) from
 * attr; the extended attributes user->user[] (may be NULL: none; values
 * in hex); and, when `lastmodified_ns` is not negative, Nextcloud/
 * ownCloud's {DAV:}lastmodified (seconds).  malloc'd, or NULL when out of
 * memory or when an item's name is too long for a property. */
char *webdav_proppatch_body(const struct sky_attr *attr, unsigned which, const char *etag,
                            const struct sky_objmeta *user, int64_t lastmodified_ns);

/* A PROPPATCH body removing extended attribute user.KEY; malloc'd or NULL. */
char *webdav_proppatch_remove_body(const char *key);

#endif
