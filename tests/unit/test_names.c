/* test_names.c - the shared checks of listed names and sizes (names.h). */
#include "check.h"

#include "../../backends/names.h"

#define PROBLEM(lit) sky_name_problem((lit), sizeof(lit) - 1)

TEST(names_accept_file_names)
{
    CHECK(PROBLEM("a") == NULL);
    CHECK(PROBLEM("...") == NULL);
    CHECK(PROBLEM(".hidden") == NULL);
    CHECK(PROBLEM("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == NULL);   /* é € 😀 */
    char max[SKY_NAME_MAX];
    memset(max, 'x', sizeof max);
    CHECK(sky_name_problem(max, sizeof max) == NULL);
}

TEST(names_refuse_what_cannot_be_a_file_name)
{
    CHECK_STR(PROBLEM(""), "is empty");
    CHECK_STR(PROBLEM("."), "is . or ..");
    CHECK_STR(PROBLEM(".."), "is . or ..");
    CHECK_STR(PROBLEM("a\0b"), "holds a NUL byte");
    CHECK_STR(PROBLEM("a/b"), "holds a '/'");
    CHECK_STR(PROBLEM("bad\xffname"), "is not valid UTF-8");
    CHECK_STR(PROBLEM("\xc0\xaf"), "is not valid UTF-8");              /* overlong '/' */
    CHECK_STR(PROBLEM("\xed\xa0\x80"), "is not valid UTF-8");          /* a surrogate */
    CHECK_STR(PROBLEM("\xf4\x90\x80\x80"), "is not valid UTF-8");      /* past U+10FFFF */
    CHECK_STR(PROBLEM("cut\xe2\x82"), "is not valid UTF-8");           /* cut sequence */
    char long_name[SKY_NAME_MAX + 1];
    memset(long_name, 'x', sizeof long_name);
    CHECK_STR(sky_name_problem(long_name, sizeof long_name), "is longer than 255 bytes");
}

TEST(names_sizes_must_be_plausible)
{
    uint64_t v = 7;
    CHECK_INT(sky_size_parse("0", &v), 0);
    CHECK_INT(v, 0);
    CHECK_INT(sky_size_parse("1073741825", &v), 0);
    CHECK_INT(v, 1073741825);
    CHECK_INT(sky_size_parse("4611686018427387904", &v), 0);          /* 2^62 */
    CHECK_INT(sky_size_parse("4611686018427387905", &v), -1);
    CHECK_INT(sky_size_parse("18446744073709551615", &v), -1);
    CHECK_INT(sky_size_parse("99999999999999999999999", &v), -1);
    CHECK_INT(sky_size_parse("-5", &v), -1);
    CHECK_INT(sky_size_parse("+5", &v), -1);
    CHECK_INT(sky_size_parse("", &v), -1);
    CHECK_INT(sky_size_parse(NULL, &v), -1);
    CHECK_INT(sky_size_parse("12abc", &v), -1);
}

TEST(names_percent_decoding_keeps_a_nul_visible)
{
    char a[] = "a%00b";
    CHECK_INT(sky_pct_decode(a, false), 3);
    CHECK(memcmp(a, "a\0b", 3) == 0);
    CHECK_STR(sky_name_problem(a, 3), "holds a NUL byte");
    char b[] = "x+y%2Fz%zz%4";
    CHECK_INT(sky_pct_decode(b, true), 10);
    CHECK_STR(b, "x y/z%zz%4");
    char c[] = "x+y";
    sky_pct_decode(c, false);
    CHECK_STR(c, "x+y");
}

TEST(names_latin1_unmap_gives_the_documents_bytes_back)
{
    /* "b" 0xFF "d" parsed as ISO-8859-1 comes out of expat as b U+00FF d */
    char s[] = "b\xc3\xbf" "d \xc2\x80 \xe2\x82\xac";
    size_t n = sky_latin1_unmap(s);
    CHECK_INT(n, 9);
    CHECK(memcmp(s, "b\xff" "d \x80 \xe2\x82\xac", 9) == 0);
}

TEST(names_shown_printable)
{
    char out[64];
    sky_name_show("a\0b\xff\xc3\xa9\n", 7, out, sizeof out);
    CHECK_STR(out, "a\\x00b\\xff\xc3\xa9\\x0a");
    char longer[300];
    memset(longer, 'y', sizeof longer);
    sky_name_show(longer, sizeof longer, out, 16);
    CHECK_STR(out, "yyyyyyyyyyyy...");
}
