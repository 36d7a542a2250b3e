/*
 * azure_blocks.c - the Azure protocol module's uploads (see azure_int.h
 * for how backends/azure.c is split): Put Blob (up to 8 MiB), Put Block +
 * Put Block List for larger files and streamed uploads (each upload names
 * its blocks with a tag of its own; a Put Block List whose answer was lost
 * is recognised by the committed blocks), and incremental uploads
 * (compose): Get Block List + Put Block for the changed ranges + Put Block
 * List keeping the unchanged <Committed> blocks, with If-Match.
 * Called through the objstore_proto table in azure.c only.
 */
#include "azure_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "http.h"
#include "parallel.h"
#include "xml.h"

/* ---- put, blocks --------------------------------------------------------- */

/* Headers for new metadata: content type (as `type_header`) and x-ms-meta-*. */
static int new_headers(const struct objstore_new *nw, const char *type_header,
                       struct http_headers *hs)
{
    if (http_headers_set(hs, type_header, nw->content_type) < 0)
        return -ENOMEM;
    return az_meta_to_headers(nw->meta, hs);
}


int az_put(void *p, const char *container, const char *key, const void *mem, int fd,
           uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
           const char *show, struct sky_err *e)
{
    struct az *a = p;
    struct az_req r;
    req_init(&r, "PUT", container, key, NULL);
    r.body = mem;
    r.body_fd = mem ? -1 : fd;
    r.body_len = size;
    if (http_headers_set(&r.headers, "x-ms-blob-type", "BlockBlob") < 0 ||
        new_headers(nw, "Content-Type", &r.headers) < 0 ||
        az_cond_headers(a, container, key, nw->if_match, nw->if_none_match, &r.headers) < 0) {
        http_headers_free(&r.headers);
        return oom(e);
    }
    struct http_response resp;
    int rc = az_call_body(a, &r, "PUT", show, &resp, e);
    if (rc < 0)
        return rc;
    if (etag_out)
        etag_bare(etag_out, http_headers_get(&resp.headers, "etag"));
    http_response_free(&resp);
    return 0;
}

/* One large upload: blocks named with the upload's own tag, committed by
 * Put Block List (which also sets the metadata).  An abandoned upload
 * leaves uncommitted blocks that Azure drops by itself (at the blob's
 * next commit, or after a week). */
struct az_upload {
    struct az *a;
    char *container, *blob, *show;
    char *content_type;
    struct http_headers meta;
    char tag[AZ_TAG_LEN + 1];
    char if_match[SKY_ETAG_MAX];    /* Put Block List's preconditions ("": none) */
    bool if_none_match;
};

static void upload_free(struct az_upload *u)
{
    free(u->container);
    free(u->blob);
    free(u->show);
    free(u->content_type);
    http_headers_free(&u->meta);
    free(u);
}

/* A tag no other upload of this process uses, and unlikely to match one
 * of another process: "sky" + 6 hex digits + "-". */
static void upload_tag(char out[AZ_TAG_LEN + 1])
{
    static atomic_uint counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned n = atomic_fetch_add(&counter, 1) * 2654435761u;
    unsigned v = (n ^ (unsigned)ts.tv_nsec ^ (unsigned)getpid() << 12) & 0xffffffu;
    snprintf(out, AZ_TAG_LEN + 1, "sky%06x-", v);
}

/* Block ids must all have the same length within a blob (committed or
 * not): base64 of the 10-byte tag plus 5 digits (15 bytes, so no
 * padding). */
static void block_id(const char *tag, unsigned i, char out[32])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char raw[AZ_TAG_LEN + 6];
    snprintf(raw, sizeof raw, "%.*s%05u", AZ_TAG_LEN, tag, i % 100000u);
    size_t o = 0;
    for (size_t j = 0; j < 15; j += 3) {
        unsigned v = (unsigned char)raw[j] << 16 | (unsigned char)raw[j + 1] << 8 |
                     (unsigned char)raw[j + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    out[o] = '\0';
}

int az_mpu_begin(void *p, const char *container, const char *key,
                 const struct objstore_new *nw, void **up, const char *show,
                 struct sky_err *e)
{
    struct az_upload *u = calloc(1, sizeof *u);
    if (!u)
        return oom(e);
    u->a = p;
    u->container = strdup(container);
    u->blob = strdup(key);
    u->show = strdup(show);
    u->content_type = strdup(nw->content_type);
    int rc = u->container && u->blob && u->show && u->content_type ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && nw->meta && i < nw->meta->n; i++)
        rc = http_headers_set(&u->meta, nw->meta->h[i].name, nw->meta->h[i].value);
    if (rc < 0) {
        upload_free(u);
        return oom(e);
    }
    upload_tag(u->tag);
    if (nw->if_match)
        snprintf(u->if_match, sizeof u->if_match, "%s", nw->if_match);
    u->if_none_match = nw->if_none_match;
    *up = u;
    return 0;
}

int az_mpu_part(void *up, uint64_t index, int fd, uint64_t off, uint64_t len,
                struct sky_err *e)
{
    struct az_upload *u = up;
    if (index >= AZ_MAX_BLOCKS)
        return sky_fail(e, EFBIG, "azure '%s': %s: an upload holds at most %u blocks",
                        u->a->name, u->show, AZ_MAX_BLOCKS);
    char id[32], *enc, *query = NULL;
    block_id(u->tag, (unsigned)index, id);
    enc = http_uri_encode(id, 0);
    if (!enc || asprintf(&query, "comp=block&blockid=%s", enc) < 0) {
        free(enc);
        return oom(e);
    }
    free(enc);
    struct az_req r;
    req_init(&r, "PUT", u->container, u->blob, query);
    r.body_fd = fd;
    r.body_off = off;
    r.body_len = len;
    struct http_response resp;
    int rc = az_call_body(u->a, &r, "PUT block of", u->show, &resp, e);
    if (rc == 0)
        http_response_free(&resp);
    free(query);
    return rc;
}

static char *block_list_xml(const char *tag, uint64_t nblocks)
{
    static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    static const char tail[] = "</BlockList>";
    size_t per = strlen("<Latest></Latest>") + 20;
    char *xml = malloc(sizeof head + (size_t)nblocks * per + sizeof tail);
    if (!xml)
        return NULL;
    char *p = xml + sprintf(xml, "%s", head);
    for (uint64_t i = 0; i < nblocks; i++) {
        char id[32];
        block_id(tag, (unsigned)i, id);
        p += sprintf(p, "<Latest>%s</Latest>", id);
    }
    strcpy(p, tail);
    return xml;
}

/* A Put Block List was retried and its last answer is an error: did the
 * first attempt, whose answer was lost, commit it?  It did when the blob's
 * committed blocks are exactly u's, in order, `size` bytes in all. */
static bool blocks_landed(struct az_upload *u, uint64_t nblocks, uint64_t size,
                          char etag_out[SKY_ETAG_MAX])
{
    struct az_req r;
    req_init(&r, "GET", u->container, u->blob, "comp=blocklist&blocklisttype=committed");
    struct http_response resp;
    struct sky_err ignored = { 0 };
    if (az_call(u->a, &r, "GET block list of", u->show, &resp, &ignored) < 0)
        return false;
    struct xml_node *root = NULL;
    bool same = xml_parse(resp.body, resp.body_len, &root, &ignored) == 0;
    const struct xml_node *b = same ? xml_child(xml_child(root, "CommittedBlocks"), "Block")
                                    : NULL;
    uint64_t total = 0, i = 0;
    for (; same && b; b = xml_next(b), i++) {
        char id[32];
        block_id(u->tag, (unsigned)i, id);
        const char *name = xml_text(b, "Name"), *bsize = xml_text(b, "Size");
        same = i < nblocks && name && strcmp(name, id) == 0 && bsize;
        if (same)
            total += strtoull(bsize, NULL, 10);
    }
    same = same && i == nblocks && total == size;
    xml_free(root);
    if (same) {
        etag_bare(etag_out, http_headers_get(&resp.headers, "etag"));
        LOG_INFO("azure '%s': PUT block list of %s: the answer was lost; the blob holds the "
                 "upload", u->a->name, u->show);
    }
    http_response_free(&resp);
    return same;
}

int az_mpu_complete(void *up, uint64_t nparts, int fd, uint64_t size,
                    char etag_out[SKY_ETAG_MAX], struct sky_err *e)
{
    struct az_upload *u = up;
    char *xml = block_list_xml(u->tag, nparts);
    if (!xml)
        return oom(e);
    struct az_req r;
    req_init(&r, "PUT", u->container, u->blob, "comp=blocklist");
    r.body = xml;
    r.body_len = strlen(xml);
    struct objstore_new nw = { u->content_type, &u->meta, NULL, NULL, false };
    if (http_headers_set(&r.headers, "Content-Type", "application/xml") < 0 ||
        new_headers(&nw, "x-ms-blob-content-type", &r.headers) < 0 ||
        az_cond_headers(u->a, u->container, u->blob, u->if_match, u->if_none_match,
                     &r.headers) < 0) {
        http_headers_free(&r.headers);
        free(xml);
        return oom(e);
    }
    struct http_response resp;
    int rc = az_do(u->a, &r, &resp, e);
    free(xml);
    if (rc < 0)
        return az_fail_transport(u->a, "PUT block list of", u->show, rc, e);
    if (status_ok(resp.status)) {
        etag_bare(etag_out, http_headers_get(&resp.headers, "etag"));
    } else {
        rc = az_fail_resp(u->a, "PUT block list of", u->show, &resp, e);
        if (http_retried(&resp) && blocks_landed(u, nparts, size, etag_out)) {
            sky_err_clear(e);
            rc = 0;
        }
    }
    http_response_free(&resp);
    return rc;
}

void az_mpu_end(void *up, bool discard)
{
    upload_free(up);    /* uncommitted blocks: Azure drops them itself */
}

/* ---- incremental uploads (compose) --------------------------------------- */

/* One block of the new blob: a committed block of the present blob kept
 * as it is (id set, `keep`), or a new block of bytes [off, off + len) of
 * the file, sent with Put Block under the upload's own tag. */
struct az_piece {
    char id[72];
    uint64_t off, len;
    bool keep;
};

/* Does any dirty range meet [off, end)? */
static bool range_dirty(const struct sky_range *dirty, size_t ndirty, uint64_t off, uint64_t end)
{
    for (size_t i = 0; i < ndirty; i++)
        if (dirty[i].off < end && dirty[i].off + dirty[i].len > off)
            return true;
    return false;
}

static int piece_add(struct az_piece **p, size_t *n, size_t *cap, struct az_piece pc)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        struct az_piece *q = realloc(*p, c * sizeof *q);
        if (!q)
            return -ENOMEM;
        *p = q;
        *cap = c;
    }
    (*p)[(*n)++] = pc;
    return 0;
}

/* The new blob's blocks: each committed block of the present one (from
 * `list`, a Get Block List answer) that lies whole below both sizes and
 * holds no dirty byte is kept; the others, and what lies past the
 * present blob, are new blocks.  -ENOTSUP (e says why) when the blocks
 * cannot be trusted or none would be kept. */
static int plan_blocks(struct az *a, const struct xml_node *list, uint64_t base_size,
                       const struct sky_range *dirty, size_t ndirty, uint64_t size,
                       const char *tag, const char *show, struct az_piece **out, size_t *nout,
                       struct sky_err *e)
{
    struct az_piece *p = NULL;
    size_t n = 0, cap = 0, kept = 0, fresh = 0;
    uint64_t off = 0;
    int rc = 0;
    const char *why = NULL;
    for (const struct xml_node *b = xml_child(xml_child(list, "CommittedBlocks"), "Block");
         b && rc == 0 && !why; b = xml_next(b)) {
        const char *name = xml_text(b, "Name"), *bsize = xml_text(b, "Size");
        char *endp = NULL;
        uint64_t len = bsize ? strtoull(bsize, &endp, 10) : 0;
        if (!name || !bsize || endp == bsize || *endp || len == 0)
            why = "a committed block without a name or size";
        else if (strlen(name) != 20)
            why = "its blocks were named by another tool (ids of another length)";
        if (why)
            break;
        uint64_t end = off + len;
        struct az_piece pc = { .off = off, .len = len, .keep = true };
        snprintf(pc.id, sizeof pc.id, "%s", name);
        if (end <= size && end <= base_size && !range_dirty(dirty, ndirty, off, end)) {
            kept++;
            rc = piece_add(&p, &n, &cap, pc);
        } else if (off < size) {
            pc.keep = false;
            pc.len = (end < size ? end : size) - off;
            rc = piece_add(&p, &n, &cap, pc);
        }
        off = end;
    }
    if (!why && rc == 0 && off != base_size)
        why = "its committed blocks do not add up to its size";
    for (uint64_t at = off; !why && rc == 0 && at < size; at += AZ_BLOCK_SIZE) {
        struct az_piece pc = { .off = at, .keep = false };
        pc.len = size - at < AZ_BLOCK_SIZE ? size - at : AZ_BLOCK_SIZE;
        rc = piece_add(&p, &n, &cap, pc);
    }
    if (!why && rc == 0 && kept == 0)
        why = "none of its committed blocks is unchanged (a blob put in one request has none)";
    if (!why && rc == 0 && n > AZ_MAX_BLOCKS)
        why = "the new block list would be too long";
    /* name the new blocks; an id the blob already has would mix them up */
    for (size_t i = 0; !why && rc == 0 && i < n; i++) {
        if (p[i].keep)
            continue;
        block_id(tag, (unsigned)fresh++, p[i].id);
        for (size_t k = 0; k < n && !why; k++)
            if (p[k].keep && strcmp(p[k].id, p[i].id) == 0)
                why = "a new block id is already one of its blocks";
    }
    if (rc < 0 || why) {
        free(p);
        return rc < 0 ? oom(e)
                      : sky_fail(e, ENOTSUP, "azure '%s': PUT block list of %s: %s", a->name,
                                 show, why);
    }
    *out = p;
    *nout = n;
    return 0;
}

struct az_compose_job {
    struct az *a;
    const char *container, *blob, *show;
    const struct az_piece *p;
    size_t *fresh;                  /* indexes of the new blocks in p */
    int fd;
};

static int compose_block(void *arg, size_t i, struct sky_err *e)
{
    struct az_compose_job *j = arg;
    const struct az_piece *pc = &j->p[j->fresh[i]];
    char *enc = http_uri_encode(pc->id, 0), *query = NULL;
    if (!enc || asprintf(&query, "comp=block&blockid=%s", enc) < 0) {
        free(enc);
        return oom(e);
    }
    free(enc);
    struct az_req r;
    req_init(&r, "PUT", j->container, j->blob, query);
    r.body_fd = j->fd;
    r.body_off = pc->off;
    r.body_len = pc->len;
    struct http_response resp;
    int rc = az_call_body(j->a, &r, "PUT block of", j->show, &resp, e);
    if (rc == 0)
        http_response_free(&resp);
    free(query);
    return rc;
}

static char *compose_list_xml(const struct az_piece *p, size_t n)
{
    static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    static const char tail[] = "</BlockList>";
    size_t per = strlen("<Committed></Committed>") + 72;
    char *xml = malloc(sizeof head + n * per + sizeof tail);
    if (!xml)
        return NULL;
    char *q = xml + sprintf(xml, "%s", head);
    for (size_t i = 0; i < n; i++)
        q += sprintf(q, p[i].keep ? "<Committed>%s</Committed>" : "<Latest>%s</Latest>",
                     p[i].id);
    strcpy(q, tail);
    return xml;
}

/* Commit the new block list, on condition that the blob is still
 * `if_match` (412 -> -ESTALE). */
static int compose_commit(struct az *a, const char *container, const char *blob,
                          const char *if_match, const struct az_piece *p, size_t n,
                          const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
                          const char *show, struct sky_err *e)
{
    char *xml = compose_list_xml(p, n);
    if (!xml)
        return oom(e);
    struct az_req r;
    req_init(&r, "PUT", container, blob, "comp=blocklist");
    r.body = xml;
    r.body_len = strlen(xml);
    if (http_headers_set(&r.headers, "Content-Type", "application/xml") < 0 ||
        add_if_match(&r.headers, "If-Match", if_match) < 0 ||
        new_headers(nw, "x-ms-blob-content-type", &r.headers) < 0) {
        http_headers_free(&r.headers);
        free(xml);
        return oom(e);
    }
    struct http_response resp;
    int rc = az_call(a, &r, "PUT block list of", show, &resp, e);
    free(xml);
    if (rc < 0)
        return rc;
    etag_bare(etag_out, http_headers_get(&resp.headers, "etag"));
    http_response_free(&resp);
    return 0;
}

/* objstore.h compose: Get Block List (committed) of the present blob,
 * Put Block for what changed, Put Block List keeping the unchanged
 * committed blocks, with If-Match.  A blob put in one request (8 MiB or
 * less, or written by another tool that way) has no blocks: it goes up
 * whole (Put Block From URL would need the source's own authorization,
 * a SAS, which a Shared Key cloud does not have). */
int az_compose(void *p, const char *container, const char *key, const char *if_match,
               uint64_t base_size, const struct sky_range *dirty, size_t ndirty, int fd,
               uint64_t size, const struct objstore_new *nw, char etag_out[SKY_ETAG_MAX],
               uint64_t *sent, const char *show, struct sky_err *e)
{
    struct az *a = p;
    struct az_req r;
    req_init(&r, "GET", container, key, "comp=blocklist&blocklisttype=committed");
    struct http_response resp;
    int rc = az_call(a, &r, "GET block list of", show, &resp, e);
    if (rc < 0)
        return rc;
    char have[SKY_ETAG_MAX];
    etag_bare(have, http_headers_get(&resp.headers, "etag"));
    struct xml_node *root = NULL;
    if (strcmp(have, if_match) != 0)
        rc = sky_fail(e, ESTALE, "azure '%s': GET block list of %s: ETag %s, not %s", a->name,
                      show, have, if_match);
    else if ((rc = xml_parse(resp.body, resp.body_len, &root, e)) < 0)
        sky_err_prefix(e, "azure '%s': GET block list of %s", a->name, show);
    http_response_free(&resp);
    struct az_piece *pieces = NULL;
    size_t n = 0;
    char tag[AZ_TAG_LEN + 1];
    upload_tag(tag);
    if (rc == 0)
        rc = plan_blocks(a, root, base_size, dirty, ndirty, size, tag, show, &pieces, &n, e);
    xml_free(root);
    if (rc < 0)
        return rc;
    size_t *fresh = malloc((n ? n : 1) * sizeof *fresh), nfresh = 0;
    if (!fresh) {
        free(pieces);
        return oom(e);
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        if (!pieces[i].keep) {
            fresh[nfresh++] = i;
            bytes += pieces[i].len;
        }
    struct az_compose_job job = { a, container, key, show, pieces, fresh, fd };
    rc = parallel_for(nfresh, OBJSTORE_THREADS, compose_block, &job, e);
    if (rc == 0)
        rc = compose_commit(a, container, key, if_match, pieces, n, nw, etag_out, show, e);
    if (rc == 0 && sent)
        *sent = bytes;
    free(fresh);
    free(pieces);
    return rc;
}
