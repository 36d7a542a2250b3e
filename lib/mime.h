/*
 * mime.h - the content type of a file name, from its extension.
 *
 * Object stores hand the Content-Type of an object to every browser and
 * tool that downloads it, so skyfs sets it on upload the way s3fs and
 * rclone do: from the system's /etc/mime.types (Debian's media-types
 * package), read once, on first use.  A name without a known extension is
 * "application/octet-stream".
 *
 * Thread-safe.  Used by fs/ (uploads of new files).
 */
#ifndef SKY_MIME_H
#define SKY_MIME_H

#define MIME_DEFAULT "application/octet-stream"

/* The content type for file name `name` (a path is fine; only the last
 * extension counts, case-insensitively).  The string is static. */
const char *mime_type_for(const char *name);

/* Read the table from `path` instead (tests); NULL restores the default
 * file.  Must not run concurrently with mime_type_for. */
void mime_load(const char *path);

#endif
