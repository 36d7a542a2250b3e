/*
 * swift_list.h - reading OpenStack Swift's JSON listings.
 *
 * A container listing (GET /v1/ACCOUNT/CONTAINER?format=json&prefix=P&
 * delimiter=/&marker=M) is a JSON array of objects: one per object
 * ({"name", "bytes", "hash", "content_type", "last_modified"}, plus
 * "slo_etag"/"symlink_path" on newer clusters) and, with a delimiter, one
 * per common prefix ({"subdir": "P/sub/"}).  An account listing
 * (GET /v1/ACCOUNT?format=json) is the same form with one object per
 * container ({"name", "count", "bytes", "last_modified"}).  A page holds at
 * most `limit` entries (10,000 by default); the next page starts after the
 * marker = the last name or subdir of this one.
 *
 * swift_list_parse turns one page into swift_entry callbacks with the
 * sizes, hashes, times and content types the listing carries (no request
 * per entry).  Used only by backends/swift*.c and the unit tests.
 */
#ifndef SKY_SWIFT_LIST_H
#define SKY_SWIFT_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

/* One entry of a page; strings live only during the callback. */
struct swift_entry {
    const char *name;           /* full object (or container) name, or the
                                 * subdir prefix with its trailing '/' */
    bool is_subdir;             /* a common prefix (directory), nothing else set */
    uint64_t bytes;             /* size (an SLO's: the whole object's) */
    const char *hash;           /* MD5 etag as listed (an SLO's: its manifest's), or NULL */
    const char *slo_etag;       /* an SLO's etag of the whole object, or NULL */
    const char *content_type;   /* without Swift's ";swift_bytes=" suffix, or NULL */
    int64_t mtime_ns;           /* last_modified (UTC), 0 when absent */
    uint64_t count;             /* account listing: the container's object count */
    bool has_nul;               /* the name holds a NUL byte (`name` stops there):
                                 * no file can have it, the caller skips it */
};

typedef int (*swift_entry_fn)(void *arg, const struct swift_entry *ent);

/* Parse one page (`len` bytes of JSON; an empty body is an empty page).
 * Calls cb for each entry in order; a non-zero return from cb stops and is
 * returned.  *nentries gets the number of entries of the page and *marker
 * (malloc'd, NULL for an empty page) the marker for the next one.  -EIO
 * with a message for a body that is not a Swift listing. */
int swift_list_parse(const char *body, size_t len, swift_entry_fn cb, void *arg,
                     size_t *nentries, char **marker, struct sky_err *e);

/* Swift's listing time ("2026-12-05T06:09:57.960600", UTC, no zone) ->
 * ns since the epoch; 0 or -EINVAL. */
int swift_list_time(const char *s, int64_t *ns);

#endif
