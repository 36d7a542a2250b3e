/* test_bodysum.c - the MD5 of upload bodies (backends/bodysum.c): from
 * memory and from a file range, as Content-MD5, and which ETags say the
 * server stored other bytes. */
#include "check.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../backends/bodysum.h"

TEST(bodysum_of_memory_and_file_ranges)
{
    struct bodysum a, b;
    char b64[25];
    /* RFC 1321's test vector */
    CHECK_INT(bodysum_of("abc", -1, 0, 3, &a), 0);
    bodysum_base64(&a, b64);
    CHECK_STR(b64, "kAFQmDzST7DWlj99KOF/cg==");
    char hex[33];
    bodysum_hex(&a, hex);
    CHECK_STR(hex, "900150983cd24fb0d6963f7d28e17f72");
    CHECK(!bodysum_etag_differs(&a, "\"900150983cd24fb0d6963f7d28e17f72\""));
    CHECK(!bodysum_etag_differs(&a, "900150983CD24FB0D6963F7D28E17F72"));
    CHECK(bodysum_etag_differs(&a, "\"900150983cd24fb0d6963f7d28e17f73\""));
    /* tags that are no MD5 say nothing */
    CHECK(!bodysum_etag_differs(&a, "\"900150983cd24fb0d6963f7d28e17f73-2\""));
    CHECK(!bodysum_etag_differs(&a, "0x8DC1234567890AB"));
    CHECK(!bodysum_etag_differs(&a, ""));
    CHECK(!bodysum_etag_differs(&a, NULL));

    /* a range of a file larger than one read chunk */
    char *dir = unit_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/body", dir);
    size_t n = (3u << 20) + 17;
    char *data = malloc(n);
    CHECK(data != NULL);
    for (size_t i = 0; data && i < n; i++)
        data[i] = (char)(i * 7 + (i >> 11));
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    CHECK(fd >= 0 && data && write(fd, data, n) == (ssize_t)n);
    CHECK_INT(bodysum_of(NULL, fd, 5, n - 5, &a), 0);
    CHECK_INT(bodysum_of(data + 5, -1, 0, n - 5, &b), 0);
    CHECK(memcmp(a.md5, b.md5, sizeof a.md5) == 0);
    CHECK_INT(bodysum_of(NULL, fd, 5, n, &a), -5);      /* past the end: EIO */
    close(fd);
    free(data);
    unit_rmtree(dir);
    free(dir);
}
