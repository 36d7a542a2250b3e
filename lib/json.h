/*
 * json.h - writing JSON output by hand, for the tools' --json options.
 *
 * skyfs only ever writes JSON (no parsing), so a few printing helpers are
 * enough; the one subtle part, string escaping, lives here once.  Strings
 * are written as UTF-8 with ", \ and control characters escaped; bytes
 * that are not valid UTF-8 (a file name may hold any bytes) are written
 * as U+FFFD, so the output is always valid JSON (use `skyfs search -0`
 * for names byte for byte).
 *
 * Used by tools/ (search --json, status --json).
 */
#ifndef SKY_JSON_H
#define SKY_JSON_H

#include <stdio.h>

/* "s" with JSON escaping; NULL writes null. */
void json_string(FILE *out, const char *s);
/* "key": (the key escaped the same way), for the caller to add a value. */
void json_key(FILE *out, const char *key);

#endif
