/*
 * check.h - the unit-test harness: CHECK macros and a test registry.
 *
 * Each tests/unit/test_*.c file defines tests with TEST(name) { ... } and
 * they register themselves; tests/unit/main.c runs them all (or those whose
 * name contains argv[1]) and prints "N passed, N failed".  A failed CHECK
 * prints file:line and the expression and marks the test failed, and the
 * test goes on.
 */
#ifndef SKY_CHECK_H
#define SKY_CHECK_H

#include <stdio.h>
#include <string.h>

struct unit_test {
    const char *name;
    void (*fn)(void);
    struct unit_test *next;
};

void unit_register(struct unit_test *t);
extern int unit_failures;    /* failed checks in the current test */

#define TEST(name)                                                         \
    static void test_##name(void);                                         \
    static struct unit_test unit_##name = { #name, test_##name, NULL };    \
    __attribute__((constructor)) static void reg_##name(void)              \
    { unit_register(&unit_##name); }                                       \
    static void test_##name(void)

#define CHECK(expr) do {                                                   \
        if (!(expr)) {                                                     \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n",                 \
                    __FILE__, __LINE__, #expr);                            \
            unit_failures++;                                               \
        }                                                                  \
    } while (0)

#define CHECK_INT(a, b) do {                                               \
        long long va_ = (long long)(a), vb_ = (long long)(b);              \
        if (va_ != vb_) {                                                  \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n",  \
                    __FILE__, __LINE__, #a, va_, #b, vb_);                 \
            unit_failures++;                                               \
        }                                                                  \
    } while (0)

#define CHECK_STR(a, b) do {                                               \
        const char *sa_ = (a), *sb_ = (b);                                 \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                       \
            fprintf(stderr, "  %s:%d: %s is \"%s\", expected \"%s\"\n",    \
                    __FILE__, __LINE__, #a, sa_ ? sa_ : "(null)",          \
                    sb_ ? sb_ : "(null)");                                 \
            unit_failures++;                                               \
        }                                                                  \
    } while (0)

/* A fresh empty temporary directory for this test (malloc'd path);
 * removed recursively by unit_rmtree. */
char *unit_tmpdir(void);
void unit_rmtree(const char *path);
/* Write `text` to dir/name with `mode`; returns malloc'd full path. */
char *unit_write_file(const char *dir, const char *name, const char *text, int mode);
/* How many entries whose names do not start with '.' are in `dir` (0 when
 * it cannot be read). */
int unit_count_files(const char *dir);

#endif
