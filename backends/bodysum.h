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
 * whose ETag is its MD5 (s3proto.c's GET).
 *
 * Used by the protocol modules: s3proto_upload.c, s3proto.c (GET, batch
 * deletes), azure.c, swift.c.
 */
#ifndef SKY_BODYSUM_H
#define SKY_BODYSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Does `etag` (quoted or not) say the server stored other bytes?  Only
 * an ETag that is a plain MD5 (32 hex digits) says anything: a
 * multipart object's ("...-N") and most servers' opaque tags do not. */
bool bodysum_etag_differs(const struct bodysum *b, const char *etag);

#endif
