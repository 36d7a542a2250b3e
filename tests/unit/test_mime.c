/* test_mime.c - content types from file names (lib/mime.c). */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../lib/mime.h"

TEST(mime_types_from_a_table)
{
    char *dir = unit_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/mime.types", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("# comment line\n"
          "text/html\t\thtml htm\n"
          "image/jpeg\t\tjpeg jpg JPE\n"
          "application/x-no-extensions\n"
          "text/x-other\t\thtml\n", f);       /* a later line does not win */
    fclose(f);
    mime_load(path);
    CHECK_STR(mime_type_for("index.html"), "text/html");
    CHECK_STR(mime_type_for("a/b/photo.JPG"), "image/jpeg");
    CHECK_STR(mime_type_for("x.jpe"), "image/jpeg");
    CHECK_STR(mime_type_for("archive.tar.htm"), "text/html");
    CHECK_STR(mime_type_for("README"), MIME_DEFAULT);
    CHECK_STR(mime_type_for(".htm"), MIME_DEFAULT);          /* a hidden file */
    CHECK_STR(mime_type_for("dir.html/file"), MIME_DEFAULT);
    CHECK_STR(mime_type_for("trailing."), MIME_DEFAULT);
    CHECK_STR(mime_type_for("x.unknownext"), MIME_DEFAULT);

    snprintf(path, sizeof path, "%s/missing", dir);
    mime_load(path);                                         /* no table at all */
    CHECK_STR(mime_type_for("index.html"), MIME_DEFAULT);
    mime_load(NULL);
    unit_rmtree(dir);
    free(dir);
}
