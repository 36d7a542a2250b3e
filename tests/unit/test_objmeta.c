/* test_objmeta.c - the sky_objmeta helpers (backends/objmeta.c): copies,
 * and whether two sets of metadata would store the same on a new object
 * (what a streamed S3 upload checks before rewriting its metadata). */
#include "check.h"

#include "../../backends/driver.h"

static struct sky_objmeta meta_of(const char *type, const char *k1, const char *v1,
                                  const char *k2, const char *v2)
{
    struct sky_objmeta m = { .has_user = true };
    CHECK_INT(sky_objmeta_set(&m.content_type, type), 0);
    if (k1)
        CHECK_INT(sky_objmeta_add_user(&m, k1, v1, strlen(v1)), 0);
    if (k2)
        CHECK_INT(sky_objmeta_add_user(&m, k2, v2, strlen(v2)), 0);
    return m;
}

TEST(objmeta_same_stored_compares_type_and_items)
{
    struct sky_objmeta a = meta_of("text/plain", "color", "blue", "size", "big");
    struct sky_objmeta b = meta_of("text/plain", "size", "big", "color", "blue");
    CHECK(sky_objmeta_same_stored(&a, &b));             /* order does not count */
    CHECK_INT(sky_objmeta_set(&b.storage_class, "GLACIER"), 0);
    b.has_user = false;
    CHECK(sky_objmeta_same_stored(&a, &b));             /* neither do these */

    struct sky_objmeta other_type = meta_of("text/html", "color", "blue", "size", "big");
    struct sky_objmeta other_value = meta_of("text/plain", "color", "blu", "size", "big");
    struct sky_objmeta fewer = meta_of("text/plain", "color", "blue", NULL, NULL);
    struct sky_objmeta no_type = meta_of(NULL, "color", "blue", "size", "big");
    CHECK(!sky_objmeta_same_stored(&a, &other_type));
    CHECK(!sky_objmeta_same_stored(&a, &other_value));
    CHECK(!sky_objmeta_same_stored(&a, &fewer));
    CHECK(!sky_objmeta_same_stored(&fewer, &a));
    CHECK(!sky_objmeta_same_stored(&a, &no_type));

    /* NULL is no metadata at all */
    struct sky_objmeta empty = { .has_user = true };
    CHECK(sky_objmeta_same_stored(NULL, NULL));
    CHECK(sky_objmeta_same_stored(NULL, &empty));
    CHECK(!sky_objmeta_same_stored(&a, NULL));

    /* values are bytes, not strings */
    struct sky_objmeta x = { 0 }, y = { 0 };
    CHECK_INT(sky_objmeta_add_user(&x, "bin", "a\0b", 3), 0);
    CHECK_INT(sky_objmeta_add_user(&y, "bin", "a\0c", 3), 0);
    CHECK(!sky_objmeta_same_stored(&x, &y));

    struct sky_objmeta copy;
    CHECK_INT(sky_objmeta_copy(&copy, &a), 0);
    CHECK(sky_objmeta_same_stored(&copy, &a));
    CHECK(copy.user != a.user && copy.content_type != a.content_type);
    sky_objmeta_free(&copy);
    CHECK(copy.content_type == NULL && copy.nuser == 0);

    struct sky_objmeta *all[] = { &a, &b, &other_type, &other_value, &fewer, &no_type, &x, &y };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sky_objmeta_free(all[i]);
}
