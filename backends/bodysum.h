/*
 * bodysum.h - the MD5 of an upload's body, for the object protocols'
 * integrity checks: the Content-MD5 header, which a server verifies
 * before it stores anything (S3, GCS's XML API, Ceph, MinIO answer
 * BadDigest), and the ETag it answers with, which S3 servers give as the
 * MD5 of what they stored for a single PUT and for each part (a server
 * that does not verify the header, such as s3rver, is caught there).
 * Without them a body damaged on a plain-HTTP path (no TLS to catch it)
 * would be stored as the file's new version, wrong bytes and all.
 *
 * Azure verifies Content-MD5 too; Swift takes the MD5 in hex as the PUT's
 * ETag header and answers 422 to a body that does not match.
 *
 * Downloads are checked the same way where an answer holds a whole object
 * whose ETag is its MD5 (S3 and GCS in s3proto.c, Swift), or where the
 * server sends the MD5 of the range it answers (Azure, on request).
 *
 * Used by the protocol modules: s3proto_upload.c, s3proto.c (GET, batch
 * deletes), azure.c, swift.c.
 */
#ifndef SKY_BODYSUM_H
#define SKY_BODYSUM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

/* How many times a body is sent when the server says it got other bytes
 * (S3's BadDigest or an ETag that is not the body's MD5, Azure's
 * Md5Mismatch, Swift's 422): damage on the way is rare and random. */
#define BODYSUM_TRIES 3

struct bodysum {
    unsigned char md5[16];
};

/* The sum of mem[0..len), or (mem NULL) of len bytes of fd from off:
 * 0, or -EIO when fd cannot be read, -ENOMEM. */
int bodysum_of(const void *mem, int fd, uint64_t off, uint64_t len, struct bodysum *out);

/* As a Content-MD5 header's value (base64, 24 characters and a NUL). */
void bodysum_base64(const struct bodysum *b, char out[25]);

/* As 32 lowercase hex digits and a NUL (Swift's ETag request header). */
void bodysum_hex(const struct bodysum *b, char out[33]);

/* A sum taken as the bytes come (a download): bodysum_begin, then
 * bodysum_add in order, then bodysum_end (which frees; so does
 * bodysum_run_free, for a sum not ended).  begin: 0 or -ENOMEM. */
struct bodysum_run {
    void *ctx;
};
int bodysum_begin(struct bodysum_run *r);
void bodysum_add(struct bodysum_run *r, const void *data, size_t n);
int bodysum_end(struct bodysum_run *r, struct bodysum *out);
void bodysum_run_free(struct bodysum_run *r);

/* Is `etag` (quoted or not) a plain MD5, 32 hex digits, that can name
 * content at all? */
bool bodysum_etag_is_md5(const char *etag);

/* ---- the download check ----------------------------------------------
 * A GET whose answer holds a whole object sums its bytes on their way to
 * the caller's sink (struct bodysum_sink, the answer's http sink); when
 * the server names the object by its MD5 and the sum is another, the
 * bytes were damaged on the way: the protocol asks again (the caller's
 * sink then starts over at pos 0, as after any retry) and gives up with
 * EIO after BODYSUM_TRIES (bodysum_got_other). */
struct bodysum_sink {
    int (*sink)(void *arg, uint64_t pos, const void *data, size_t n);
    void *arg;
    bool wanted;                    /* sum at all (a GET from offset 0 may be whole, one of
                                     * a range the server sends the MD5 of): else the bytes
                                     * only pass, at no cost */
    struct bodysum_run run;
    uint64_t next;                  /* bytes summed, in order */
    bool gap;                       /* a piece out of order: the sum says nothing */
};
/* Before each try (the sum starts empty). */
void bodysum_sink_start(struct bodysum_sink *ss);
/* The http sink (http_sink_fn; arg: the bodysum_sink). */
int bodysum_sink_take(void *arg, uint64_t pos, const void *data, size_t n);
/* After a 2xx answer to a GET from offset `off`: when the bytes summed
 * are the whole object (a 206 "bytes 0-N/N+1", or a 200 with all of its
 * Content-Length), their sum in *sum and true. */
struct http_response;
bool bodysum_sink_whole(struct bodysum_sink *ss, const struct http_response *resp, uint64_t off,
                        struct bodysum *sum);
void bodysum_sink_free(struct bodysum_sink *ss);

/* What a server's ETags have shown themselves to be (one per cloud). */
struct bodysum_trust {
    /* not MD5s of content (an encryption the answers did not name): they
     * are compared no more */
    atomic_bool opaque;
    /* once the MD5 of the bytes they named: a download whose bytes differ
     * is damage then, even when two tries bring the same */
    atomic_bool are_md5;
};
/* A sum of bytes named by `etag` was compared (the caller checked that
 * the ETag may be an MD5 for this answer): true when it differs; a match
 * is remembered in t->are_md5.  false when the ETags are opaque. */
bool bodysum_trust_differs(struct bodysum_trust *t, const struct bodysum *sum, const char *etag);
/* Bytes of a whole object whose MD5 is not its ETag arrived at try
 * `tries` (from 1; sum: theirs; prev: the try before's, or NULL).  Damage
 * on the way is rare and random: 0 to ask again (a warning names `what`,
 * such as "s3 'x': GET key"); 1 when two tries brought the same bytes
 * from a server whose ETags were never seen to be MD5s (they are its way
 * of naming versions: t->opaque, compared no more); or -EIO after
 * BODYSUM_TRIES. */
int bodysum_got_other(struct bodysum_trust *t, int tries, const struct bodysum *sum,
                      const struct bodysum *prev, const char *what, struct sky_err *e);

/* Does `etag` (quoted or not) say the server stored other bytes?  Only
 * an ETag that is a plain MD5 (32 hex digits) says anything: a
 * multipart object's ("...-N") and most servers' opaque tags do not. */
bool bodysum_etag_differs(const struct bodysum *b, const char *etag);

#endif
