/*
 * xml.c - see xml.h.
 *
 * The expat callbacks keep a stack of open elements: a start tag appends
 * a child to the element on top (through the top's last-child pointer, so
 * siblings stay in document order) and pushes it; character data is
 * appended to the top's growable text buffer; an end tag freezes the text
 * into the node and pops.  Depth is capped at XML_MAX_DEPTH.
 *
 * A body that is not UTF-8 (a server that put a key's raw bytes in its
 * listing) would make expat reject the whole document, and with it every
 * good key of the page.  Such a body is parsed as ISO-8859-1 instead, where
 * every byte is a character, and each text is turned back into the
 * document's own bytes (sky_latin1_unmap): the driver then checks each
 * name on its own (names.h) and skips only the broken ones.
 */
#include "xml.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "names.h"

#define XML_MAX_DEPTH 64

struct open_elem {
    struct xml_node *node;
    struct xml_node *last_child;
    char *text;
    size_t len, cap;
};

struct builder {
    XML_Parser parser;
    struct xml_node *root;
    struct open_elem stack[XML_MAX_DEPTH];
    int depth;
    int error;                  /* errno when a callback failed */
    bool latin1;                /* parsed as ISO-8859-1: texts need unmapping */
};

static const char *local_name(const char *name)
{
    const char *colon = strrchr(name, ':');
    return colon ? colon + 1 : name;
}

static void fail(struct builder *b, int err)
{
    if (!b->error)
        b->error = err;
    XML_StopParser(b->parser, XML_FALSE);
}

static void on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
    struct builder *b = arg;
    if (b->error)
        return;
    if (b->depth >= XML_MAX_DEPTH || (b->depth == 0 && b->root)) {
        fail(b, EBADMSG);
        return;
    }
    struct xml_node *n = calloc(1, sizeof *n);
    if (!n || !(n->name = strdup(local_name(name)))) {
        free(n);
        fail(b, ENOMEM);
        return;
    }
    if (b->depth == 0) {
        b->root = n;
    } else {
        struct open_elem *p = &b->stack[b->depth - 1];
        n->parent = p->node;
        if (p->last_child)
            p->last_child->next = n;
        else
            p->node->child = n;
        p->last_child = n;
    }
    b->stack[b->depth++] = (struct open_elem){ .node = n };
}

static void on_end(void *arg, const XML_Char *name)
{
    struct builder *b = arg;
    if (b->error || b->depth == 0)
        return;
    struct open_elem *o = &b->stack[--b->depth];
    o->node->text = o->text ? o->text : strdup("");
    if (o->node->text && b->latin1)
        sky_latin1_unmap(o->node->text);
    if (!o->node->text)
        fail(b, ENOMEM);
}

static void on_text(void *arg, const XML_Char *s, int len)
{
    struct builder *b = arg;
    if (b->error || b->depth == 0 || len <= 0)
        return;
    struct open_elem *o = &b->stack[b->depth - 1];
    if (o->len + (size_t)len + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        while (cap < o->len + (size_t)len + 1)
            cap *= 2;
        char *p = realloc(o->text, cap);
        if (!p) {
            fail(b, ENOMEM);
            return;
        }
        o->text = p;
        o->cap = cap;
    }
    memcpy(o->text + o->len, s, (size_t)len);
    o->len += (size_t)len;
    o->text[o->len] = '\0';
}

int xml_parse(const char *buf, size_t len, struct xml_node **root, struct sky_err *e)
{
    struct builder b = {0};
    *root = NULL;
    b.latin1 = buf && !sky_utf8_valid(buf, len);
    b.parser = XML_ParserCreate(b.latin1 ? "ISO-8859-1" : NULL);
    if (!b.parser)
        return sky_fail(e, ENOMEM, "out of memory parsing XML");
    XML_SetUserData(b.parser, &b);
    XML_SetElementHandler(b.parser, on_start, on_end);
    XML_SetCharacterDataHandler(b.parser, on_text);
    enum XML_Status st = XML_Parse(b.parser, buf ? buf : "", (int)len, XML_TRUE);
    int rc = 0;
    if (b.error) {
        rc = sky_fail(e, b.error, b.error == ENOMEM ? "out of memory parsing XML"
                                                     : "XML nested too deep or malformed");
    } else if (st != XML_STATUS_OK || !b.root || b.depth != 0) {
        rc = sky_fail(e, EBADMSG, "malformed XML at line %lu: %s",
                      (unsigned long)XML_GetCurrentLineNumber(b.parser),
                      b.root ? XML_ErrorString(XML_GetErrorCode(b.parser)) : "no element");
    }
    /* texts of elements left open on error */
    for (int i = 0; i < b.depth; i++)
        b.stack[i].node->text = b.stack[i].text;
    XML_ParserFree(b.parser);
    if (rc < 0) {
        xml_free(b.root);
        return rc;
    }
    *root = b.root;
    return 0;
}

void xml_free(struct xml_node *n)
{
    while (n) {
        struct xml_node *next = n->next;
        xml_free(n->child);
        free(n->name);
        free(n->text);
        free(n);
        n = next;
    }
}

const struct xml_node *xml_child(const struct xml_node *n, const char *name)
{
    if (!n)
        return NULL;
    for (const struct xml_node *c = n->child; c; c = c->next)
        if (!name || strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

const struct xml_node *xml_next(const struct xml_node *n)
{
    if (!n)
        return NULL;
    for (const struct xml_node *c = n->next; c; c = c->next)
        if (strcmp(c->name, n->name) == 0)
            return c;
    return NULL;
}

const char *xml_text(const struct xml_node *n, const char *path)
{
    char part[128];
    while (n && *path) {
        size_t len = strcspn(path, "/");
        if (len >= sizeof part)
            return NULL;
        memcpy(part, path, len);
        part[len] = '\0';
        n = xml_child(n, part);
        path += len + (path[len] == '/');
    }
    return n ? n->text : NULL;
}

char *xml_escape(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += *p == '&' ? 5 : *p == '<' || *p == '>' ? 4 : *p == '"' || *p == '\'' ? 6 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = s; *p; p++) {
        const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;"
                        : *p == '"' ? "&quot;" : *p == '\'' ? "&apos;" : NULL;
        if (rep) {
            size_t l = strlen(rep);
            memcpy(o, rep, l);
            o += l;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}
