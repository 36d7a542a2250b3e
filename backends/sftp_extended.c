/*
 * sftp_extended.c - the second SFTP channel for OpenSSH extensions (see
 * sftp_extended.h).  Packets (draft-ietf-secsh-filexfer-02): a uint32
 * length, a type byte, then the fields; strings are a uint32 length and
 * the bytes.
 */
#include "sftp_extended.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FXP_INIT 1
#define FXP_VERSION 2
#define FXP_STATUS 101
#define FXP_EXTENDED 200
#define MAX_ANSWER (256 * 1024)

struct sftp_ext_channel {
    ssh_channel ch;
    uint32_t next_id;
};

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int write_all(ssh_channel ch, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        int n = ssh_channel_write(ch, buf, (uint32_t)len);
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(ssh_channel ch, unsigned char *buf, size_t len, int timeout_ms)
{
    while (len > 0) {
        int n = ssh_channel_read_timeout(ch, buf, (uint32_t)len, 0, timeout_ms);
        if (n <= 0)
            return -1;              /* error, EOF or timeout */
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read one packet: its type in *type, its body (after the type) in a
 * malloc'd *body of *len bytes. */
static int read_packet(ssh_channel ch, int timeout_ms, int *type, unsigned char **body,
                       size_t *len)
{
    unsigned char head[5];
    if (read_all(ch, head, sizeof head, timeout_ms) != 0)
        return -1;
    uint32_t n = get_u32(head);
    if (n < 1 || n > MAX_ANSWER)
        return -1;
    *type = head[4];
    *len = n - 1;
    *body = malloc(*len + 1);
    if (!*body)
        return -1;
    if (read_all(ch, *body, *len, timeout_ms) != 0) {
        free(*body);
        return -1;
    }
    return 0;
}

static int open_channel(ssh_session ssh, struct sftp_ext_channel **out, int timeout_ms)
{
    struct sftp_ext_channel *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->next_id = 1;
    c->ch = ssh_channel_new(ssh);
    unsigned char init[9];
    put_u32(init, 5);
    init[4] = FXP_INIT;
    put_u32(init + 5, 3);
    int type = 0;
    unsigned char *body = NULL;
    size_t len;
    if (!c->ch || ssh_channel_open_session(c->ch) != SSH_OK ||
        ssh_channel_request_subsystem(c->ch, "sftp") != SSH_OK ||
        write_all(c->ch, init, sizeof init) != 0 ||
        read_packet(c->ch, timeout_ms, &type, &body, &len) != 0 || type != FXP_VERSION) {
        free(body);
        sftp_ext_close(c);
        return -1;
    }
    free(body);
    *out = c;
    return 0;
}

void sftp_ext_close(struct sftp_ext_channel *c)
{
    if (!c)
        return;
    if (c->ch) {
        ssh_channel_close(c->ch);
        ssh_channel_free(c->ch);
    }
    free(c);
}

/* Appends to a growing request. */
struct req {
    unsigned char *p;
    size_t len, cap;
    bool failed;
};

static void req_put(struct req *r, const void *data, size_t n)
{
    if (r->failed)
        return;
    if (r->len + n > r->cap) {
        size_t cap = (r->len + n) * 2;
        unsigned char *np = realloc(r->p, cap);
        if (!np) {
            r->failed = true;
            return;
        }
        r->p = np;
        r->cap = cap;
    }
    memcpy(r->p + r->len, data, n);
    r->len += n;
}

static void req_u32(struct req *r, uint32_t v)
{
    unsigned char b[4];
    put_u32(b, v);
    req_put(r, b, 4);
}

static void req_str(struct req *r, const char *s)
{
    req_u32(r, (uint32_t)strlen(s));
    req_put(r, s, strlen(s));
}

/* Start EXTENDED `name` (length filled in by send_request). */
static void req_begin(struct req *r, struct sftp_ext_channel *c, const char *name, uint32_t *id)
{
    *id = c->next_id++;
    req_u32(r, 0);
    unsigned char type = FXP_EXTENDED;
    req_put(r, &type, 1);
    req_u32(r, *id);
    req_str(r, name);
}

/* Send the request and read its STATUS: the code, or -1. */
static int send_request(struct sftp_ext_channel *c, struct req *r, uint32_t id, int timeout_ms)
{
    if (r->failed) {
        free(r->p);
        return -1;
    }
    put_u32(r->p, (uint32_t)(r->len - 4));
    int rc = write_all(c->ch, r->p, r->len);
    free(r->p);
    if (rc != 0)
        return -1;
    int type;
    unsigned char *body;
    size_t len;
    if (read_packet(c->ch, timeout_ms, &type, &body, &len) != 0)
        return -1;
    int status = -1;
    if (type == FXP_STATUS && len >= 8 && get_u32(body) == id)
        status = (int)get_u32(body + 4);
    free(body);
    return status;
}

/* Open *ch if needed, run the request; a failed channel is closed. */
static int ensure_open(ssh_session ssh, struct sftp_ext_channel **ch, int timeout_ms)
{
    return *ch ? 0 : open_channel(ssh, ch, timeout_ms);
}

static int finish(struct sftp_ext_channel **ch, int status)
{
    if (status < 0) {
        sftp_ext_close(*ch);
        *ch = NULL;
    }
    return status;
}

int sftp_ext_posix_rename(ssh_session ssh, struct sftp_ext_channel **ch, int timeout_ms,
                          const char *from, const char *to)
{
    if (ensure_open(ssh, ch, timeout_ms) != 0)
        return -1;
    struct req r = { 0 };
    uint32_t id;
    req_begin(&r, *ch, "posix-rename@openssh.com", &id);
    req_str(&r, from);
    req_str(&r, to);
    return finish(ch, send_request(*ch, &r, id, timeout_ms));
}

int sftp_ext_lsetstat(ssh_session ssh, struct sftp_ext_channel **ch, int timeout_ms,
                      const char *path, const struct sftp_ext_attrs *a)
{
    if (ensure_open(ssh, ch, timeout_ms) != 0)
        return -1;
    struct req r = { 0 };
    uint32_t id;
    req_begin(&r, *ch, "lsetstat@openssh.com", &id);
    req_str(&r, path);
    uint32_t flags = (a->set_owner ? 0x2u : 0) | (a->set_times ? 0x8u : 0);
    req_u32(&r, flags);
    if (a->set_owner) {
        req_u32(&r, a->uid);
        req_u32(&r, a->gid);
    }
    if (a->set_times) {
        req_u32(&r, a->atime);
        req_u32(&r, a->mtime);
    }
    return finish(ch, send_request(*ch, &r, id, timeout_ms));
}
