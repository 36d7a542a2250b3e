/*
 * s3fs_xattr.c - s3fs's x-amz-meta-xattr header (see s3fs_xattr.h).
 *
 * Reading: URL-decode (curl_easy_unescape), parse (json_tokener), then
 * each string member whose name starts with "user." is base64-decoded
 * (EVP_DecodeBlock; the padding it counts as bytes is taken off again).
 * Editing removes one member and writes the object back the way s3fs
 * does (compact JSON, URL-encoded), so s3fs still reads every other item.
 */
#include "s3fs_xattr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>

/* The JSON object in a header value, or NULL (free with json_object_put). */
static struct json_object *parse_value(const char *value)
{
    if (!value)
        return NULL;
    int len = 0;
    char *json = curl_easy_unescape(NULL, value, 0, &len);
    if (!json)
        return NULL;
    struct json_object *obj = json_tokener_parse(json);
    curl_free(json);
    if (obj && !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        obj = NULL;
    }
    return obj;
}

/* base64 text -> bytes (malloc'd, NUL-terminated), *n their count; NULL
 * when the text is not base64 (or out of memory). */
static unsigned char *base64_decode(const char *b, size_t *n)
{
    size_t len = strlen(b);
    if (len % 4)
        return NULL;
    unsigned char *out = malloc(len / 4 * 3 + 1);
    if (!out)
        return NULL;
    int got = len ? EVP_DecodeBlock(out, (const unsigned char *)b, (int)len) : 0;
    if (got < 0) {
        free(out);
        return NULL;
    }
    if (len >= 1 && b[len - 1] == '=')
        got--;
    if (len >= 2 && b[len - 2] == '=')
        got--;
    out[got] = '\0';
    *n = (size_t)got;
    return out;
}

int s3fs_xattr_read(const char *value, struct sky_objmeta *m)
{
    struct json_object *obj = parse_value(value);
    if (!obj)
        return 0;
    int rc = 0;
    json_object_object_foreach(obj, name, item) {
        if (rc || strncmp(name, "user.", 5) != 0 || !name[5] ||
            !json_object_is_type(item, json_type_string) || sky_objmeta_find(m, name + 5))
            continue;
        size_t n;
        unsigned char *bytes = base64_decode(json_object_get_string(item), &n);
        if (bytes)
            rc = sky_objmeta_add_user(m, name + 5, bytes, n);
        free(bytes);
    }
    json_object_put(obj);
    return rc;
}

bool s3fs_xattr_has(const char *value, const char *name)
{
    struct json_object *obj = parse_value(value);
    bool has = obj && json_object_object_get_ex(obj, name, NULL);
    json_object_put(obj);
    return has;
}

/* obj as s3fs writes it: compact JSON, URL-encoded; malloc'd or NULL. */
static char *encode_value(struct json_object *obj)
{
    const char *json = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
    char *enc = json ? curl_easy_escape(NULL, json, 0) : NULL;
    char *out = enc ? strdup(enc) : NULL;
    curl_free(enc);
    return out;
}

int s3fs_xattr_without(const char *value, const char *name, char **out)
{
    *out = NULL;
    struct json_object *obj = parse_value(value);
    if (!obj || !json_object_object_get_ex(obj, name, NULL)) {
        json_object_put(obj);
        return -ENOENT;
    }
    json_object_object_del(obj, name);
    int rc = 0;
    if (json_object_object_length(obj) > 0 && !(*out = encode_value(obj)))
        rc = -ENOMEM;
    json_object_put(obj);
    return rc;
}

int s3fs_xattr_with(const char *value, const char *name, const void *bytes, size_t len,
                    char **out)
{
    *out = NULL;
    struct json_object *obj = parse_value(value);
    if (!obj)
        return -EINVAL;
    char *b64 = malloc((len + 2) / 3 * 4 + 1);
    struct json_object *item = NULL;
    if (b64) {
        EVP_EncodeBlock((unsigned char *)b64, bytes, (int)len);
        item = json_object_new_string(b64);
    }
    int rc = -ENOMEM;
    if (item && json_object_object_add(obj, name, item) == 0) {
        *out = encode_value(obj);
        rc = *out ? 0 : -ENOMEM;
    } else {
        json_object_put(item);
    }
    free(b64);
    json_object_put(obj);
    return rc;
}
