/*
 * xml.h - a light XML tree for cloud API responses (expat underneath).
 *
 * Object-store APIs answer with small, regular XML documents
 * (ListObjectsV2 pages, error bodies, multipart replies).  xml_parse()
 * turns one into a tree of elements that keep their local name (any
 * "prefix:" is dropped) and their text; attributes are ignored.  Lookups
 * walk children by name.  xml_escape() is the other direction, for the
 * request bodies drivers build.
 *
 * Used by backends/ drivers (S3, Azure).  Not for large documents: the
 * whole tree is in memory (a 1000-key listing is a few hundred KiB).
 */
#ifndef SKY_XML_H
#define SKY_XML_H

#include <stddef.h>

#include "../lib/err.h"

struct xml_node {
    char *name;                 /* local name, e.g. "Contents" */
    char *text;                 /* concatenated character data ("" if none) */
    struct xml_node *parent;
    struct xml_node *child;     /* first child element */
    struct xml_node *next;      /* next sibling element */
};

/* Parse `len` bytes.  A body that is not UTF-8 is read as ISO-8859-1 and
 * its texts hold the document's raw bytes (callers check names with
 * names.h), so one broken key does not fail the whole page.  On success *root is the document element (free with
 * xml_free).  -EBADMSG on malformed input, -ENOMEM. */
int xml_parse(const char *buf, size_t len, struct xml_node **root, struct sky_err *e);
void xml_free(struct xml_node *root);

/* First child named `name` (NULL name: any), or NULL. */
const struct xml_node *xml_child(const struct xml_node *n, const char *name);
/* Next sibling after n with the same name as n, or NULL. */
const struct xml_node *xml_next(const struct xml_node *n);
/* Text of the first child named `name`, or NULL when there is none.
 * A path "A/B" descends through children. */
const char *xml_text(const struct xml_node *n, const char *path);

/* Escape &, <, >, " and ' for element text.  Returns a malloc'd string. */
char *xml_escape(const char *s);

#endif
