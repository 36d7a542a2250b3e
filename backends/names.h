/*
 * names.h - what a listing may hand to fs/: names that can be file names,
 * sizes that can be file sizes.
 *
 * A cloud's keys are not file names.  An S3 key or an Azure blob name can
 * hold a NUL byte (percent-encoded in the listing), a part longer than a
 * file name may be, "." or "..", or bytes that are not UTF-8, and a
 * listing can carry a size no file has (negative, absurd).  Every driver
 * runs what it lists through these checks and skips, with a warning, what
 * fails them, so that one bad key costs that key and never the folder,
 * and is never shown as (or read as) another key.
 *
 * Also the decoding helpers the listings need to get there: percent
 * decoding that keeps a NUL visible (it returns the length), and the way
 * back from a document parsed as ISO-8859-1 (the fallback for XML bodies
 * that are not UTF-8; see sky_latin1_unmap).
 *
 * Used by backends/ (the drivers, xml.c) and fs/ (SKY_NAME_MAX: names too
 * long are ENAMETOOLONG before anything is sent).  No state and no I/O:
 * every call is a pure function of its arguments.
 */
#ifndef SKY_NAMES_H
#define SKY_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest file name, in bytes (NAME_MAX of Linux file systems). */
#define SKY_NAME_MAX 255

/* Largest size a listed object may claim (2^62 bytes, 4 EiB): anything
 * larger, or negative, is a broken listing, not a file. */
#define SKY_SIZE_MAX (1ull << 62)

/* NULL when the `len` bytes at `name` can be one file name; otherwise why
 * not, as a short phrase for a warning ("holds a NUL byte", "is longer
 * than 255 bytes", ...).  Refused: empty, ".", "..", '/' or NUL inside,
 * more than SKY_NAME_MAX bytes, bytes that are not UTF-8. */
const char *sky_name_problem(const char *name, size_t len);

/* Is s[0..len) well-formed UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF)? */
bool sky_utf8_valid(const char *s, size_t len);

/* Parse a listed size: decimal digits only, at most SKY_SIZE_MAX.  0, or
 * -1 for anything else (empty, a sign, junk, too large). */
int sky_size_parse(const char *text, uint64_t *out);

/* Decode %XX in place (and '+' as a space when plus_is_space); returns the
 * decoded length, which is less than strlen(s) afterwards when the text
 * held %00: callers check for it (sky_name_problem does). */
size_t sky_pct_decode(char *s, bool plus_is_space);

/* Text that expat produced from a document parsed as ISO-8859-1 (each
 * byte of the document became U+0000..U+00FF, written in UTF-8) back to
 * the document's own bytes, in place; returns the new length.  Code
 * points past U+00FF (from character references) stay as they are.  So a
 * body that is not UTF-8 can still be parsed, and each name in it checked
 * on its own. */
size_t sky_latin1_unmap(char *s);

/* A printable form of name[0..len) for messages: valid UTF-8 and printable
 * ASCII as they are, every other byte as \xNN, cut with "..." to fit cap. */
void sky_name_show(const char *name, size_t len, char *out, size_t cap);

#endif
