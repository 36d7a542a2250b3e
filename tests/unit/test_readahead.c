/* test_readahead.c - finding a mount's device in mountinfo (fs/readahead.c). */
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../fs/readahead.h"

static const char MOUNTINFO[] =
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "40 22 0:45 / /mnt/clouds rw,nosuid,nodev shared:20 - fuse.skyfs skyfs rw\n"
    "41 22 0:46 / /mnt/my\\040clouds rw,nosuid shared:21 - fuse.skyfs skyfs rw\n"
    "42 22 0:47 / /mnt/clouds/deeper rw shared:22 - fuse.skyfs skyfs rw\n"
    "43 22 0:48 / /mnt/clouds rw shared:23 - fuse.skyfs skyfs rw\n"
    "short line\n";

static int bdi_of(const char *mountpoint, char *bdi, size_t size)
{
    FILE *f = fmemopen((void *)MOUNTINFO, sizeof MOUNTINFO - 1, "r");
    CHECK(f != NULL);
    if (!f)
        return -EIO;
    int rc = readahead_bdi_of(f, mountpoint, bdi, size);
    fclose(f);
    return rc;
}

TEST(readahead_finds_the_mounts_device)
{
    char bdi[32] = "";
    CHECK(bdi_of("/mnt/clouds/deeper", bdi, sizeof bdi) == 0);
    CHECK_STR(bdi, "0:47");
    CHECK(bdi_of("/mnt/my clouds", bdi, sizeof bdi) == 0);      /* \040 is a space */
    CHECK_STR(bdi, "0:46");
    CHECK(bdi_of("/mnt/clouds", bdi, sizeof bdi) == 0);         /* the mount on top */
    CHECK_STR(bdi, "0:48");
    CHECK(bdi_of("/mnt/clo", bdi, sizeof bdi) == -ENOENT);
    CHECK(bdi_of("/mnt/my\\040clouds", bdi, sizeof bdi) == -ENOENT);
    char tiny[3];
    CHECK(bdi_of("/", tiny, sizeof tiny) == -ENOENT);           /* does not fit */
}
