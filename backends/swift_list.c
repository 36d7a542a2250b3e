/* swift_list.c - see swift_list.h. */
#include "swift_list.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "swift_auth.h"

int swift_list_time(const char *s, int64_t *ns)
{
    return swift_parse_iso8601(s, ns);
}

static const char *str_of(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Does the string value of key hold a NUL byte? */
static bool nul_inside(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return false;
    return strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v);
}

static uint64_t u64_of(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        int64_t n = json_object_get_int64(v);
        return n > 0 ? (uint64_t)n : 0;
    }
    if (json_object_is_type(v, json_type_string))
        return strtoull(json_object_get_string(v), NULL, 10);
    return 0;
}

int swift_list_parse(const char *body, size_t len, swift_entry_fn cb, void *arg,
                     size_t *nentries, char **marker, struct sky_err *e)
{
    *nentries = 0;
    *marker = NULL;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i == len)
        return 0;
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return sky_fail(e, ENOMEM, "out of memory");
    struct json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success || !json_object_is_type(root, json_type_array)) {
        json_object_put(root);
        return sky_fail(e, EIO, "the listing is not a JSON array");
    }
    size_t n = json_object_array_length(root);
    const char *last = NULL;
    int rc = 0;
    char ctype[256];
    for (size_t k = 0; k < n && rc == 0; k++) {
        struct json_object *o = json_object_array_get_idx(root, k);
        if (!o || !json_object_is_type(o, json_type_object)) {
            rc = sky_fail(e, EIO, "listing entry %zu is not a JSON object", k);
            break;
        }
        struct swift_entry ent = { 0 };
        const char *subdir = str_of(o, "subdir");
        if (subdir) {
            ent.name = subdir;
            ent.is_subdir = true;
            ent.has_nul = nul_inside(o, "subdir");
        } else {
            ent.name = str_of(o, "name");
            if (!ent.name) {
                rc = sky_fail(e, EIO, "listing entry %zu has neither name nor subdir", k);
                break;
            }
            ent.has_nul = nul_inside(o, "name");
            ent.bytes = u64_of(o, "bytes");
            ent.count = u64_of(o, "count");
            ent.hash = str_of(o, "hash");
            ent.slo_etag = str_of(o, "slo_etag");
            const char *ct = str_of(o, "content_type");
            if (ct) {
                /* Swift keeps ";swift_bytes=N" on some manifests' types */
                const char *sb = strstr(ct, ";swift_bytes=");
                size_t cl = sb ? (size_t)(sb - ct) : strlen(ct);
                if (cl < sizeof ctype) {
                    memcpy(ctype, ct, cl);
                    ctype[cl] = '\0';
                    ent.content_type = ctype;
                }
            }
            const char *lm = str_of(o, "last_modified");
            if (lm)
                swift_list_time(lm, &ent.mtime_ns);
        }
        last = ent.name;
        (*nentries)++;
        rc = cb(arg, &ent);
    }
    if (rc == 0 && last) {
        *marker = strdup(last);
        if (!*marker)
            rc = sky_fail(e, ENOMEM, "out of memory");
    }
    json_object_put(root);
    return rc;
}
