/* names.c - see names.h. */
#include "names.h"

#include <stdio.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool sky_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

const char *sky_name_problem(const char *name, size_t len)
{
    if (len == 0)
        return "is empty";
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return "is . or ..";
    if (memchr(name, '\0', len))
        return "holds a NUL byte";
    if (memchr(name, '/', len))
        return "holds a '/'";
    if (len > SKY_NAME_MAX)
        return "is longer than 255 bytes";
    if (!sky_utf8_valid(name, len))
        return "is not valid UTF-8";
    return NULL;
}

int sky_size_parse(const char *text, uint64_t *out)
{
    if (!text || !*text)
        return -1;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > SKY_SIZE_MAX)
            return -1;
    }
    *out = v;
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t sky_pct_decode(char *s, bool plus_is_space)
{
    char *o = s;
    for (const char *p = s; *p; p++) {
        int hi, lo;
        if (*p == '+' && plus_is_space) {
            *o++ = ' ';
        } else if (*p == '%' && (hi = hex_value(p[1])) >= 0 && (lo = hex_value(p[2])) >= 0) {
            *o++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return (size_t)(o - s);
}

size_t sky_latin1_unmap(char *s)
{
    unsigned char *p = (unsigned char *)s, *o = p;
    while (*p) {
        if ((p[0] == 0xc2 || p[0] == 0xc3) && (p[1] & 0xc0) == 0x80) {
            *o++ = (unsigned char)(((p[0] & 0x03) << 6) | (p[1] & 0x3f));
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return (size_t)(o - (unsigned char *)s);
}

void sky_name_show(const char *name, size_t len, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)name;
    size_t o = 0;
    if (cap < 4) {
        if (cap)
            out[0] = '\0';
        return;
    }
    for (size_t i = 0; i < len;) {
        size_t n = p[i] >= 0x80 ? utf8_seq(p + i, len - i) : (p[i] >= 0x20 && p[i] < 0x7f);
        size_t need = n ? n : 4;
        if (o + need + 4 > cap) {           /* room for "..." and the NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (n) {
            memcpy(out + o, p + i, n);
            o += n;
            i += n;
        } else {
            snprintf(out + o, 5, "\\x%02x", p[i]);
            o += 4;
            i++;
        }
    }
    out[o] = '\0';
}
