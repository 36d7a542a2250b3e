#!/usr/bin/env bash
# webdav_cross.sh - cp and mv between a WebDAV cloud (Apache mod_dav_fs)
# and the other clouds: a local folder and S3 (s3rver).
#
# Checks: cp of a file and of a tree each way between webdav and local
# and between webdav and s3, byte for byte (a 5 MiB file among them);
# mv each way (EXDEV, so mv copies and deletes): the source is gone from
# its cloud and the target is on the WebDAV server's disk or in the
# bucket.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webdav_lib.sh"

APORT=$(free_port)
SPORT=$(free_port)
MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
AROOT="$TEST_TMP/apache/data"
LOCAL="$TEST_TMP/localdir"
S3END="http://127.0.0.1:$SPORT"

start_apache_dav "$TEST_TMP/apache" "$APORT" basic || die "cannot start apache2"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$SPORT" --configure-bucket cross || die "cannot start s3rver"

mkdir -p "$TEST_TMP/cache" "$LOCAL"
(umask 077 && cat >"$CONF" <<EOF2
[cache]
dir = $TEST_TMP/cache

$(webdav_cloud dav "http://127.0.0.1:$APORT/dav/" "$DAV_USER" "$DAV_PASS")
ttl = 1s

[loc]
type = local
path = $LOCAL
ttl = 1s

$(s3rver_cloud s3 "$S3END" cross)
ttl = 1s
EOF2
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount"

# a small tree to copy around
SRC="$TEST_TMP/tree"
mkdir -p "$SRC/sub/deeper"
echo "top" >"$SRC/top.txt"
echo "inner" >"$SRC/sub/inner.txt"
head -c $((5 << 20)) /dev/urandom >"$SRC/sub/deeper/blob.bin"
printf '' >"$SRC/empty"

s3_exists() { s3curl -I "$S3END/cross/$1" >/dev/null 2>&1; }

for other in loc s3; do
    # webdav -> other, other -> webdav: cp
    check "cp -r a tree into dav" cp -r "$SRC" "$MNT/dav/from-$other"
    check "cp -r dav -> $other" cp -r "$MNT/dav/from-$other" "$MNT/$other/t"
    check "the tree arrived in $other byte for byte" diff -r "$SRC" "$MNT/$other/t"
    check "cp -r $other -> dav" cp -r "$MNT/$other/t" "$MNT/dav/back-$other"
    check "the tree came back into dav byte for byte" diff -r "$SRC" "$MNT/dav/back-$other"
    check "and it is on the WebDAV server's disk (Apache's .DAV property folders aside)" diff -r -x .DAV "$SRC" "$AROOT/back-$other"
    # mv each way (EXDEV: copy, then delete)
    check "mv a file dav -> $other" mv "$MNT/dav/from-$other/top.txt" "$MNT/$other/moved.txt"
    check_eq "the file reads in $other" top "$(cat "$MNT/$other/moved.txt" 2>&1)"
    check "the source is gone from the WebDAV server" test ! -e "$AROOT/from-$other/top.txt"
    check "mv a file $other -> dav" mv "$MNT/$other/moved.txt" "$MNT/dav/moved-back-$other.txt"
    check_eq "it is on the WebDAV server" top "$(cat "$AROOT/moved-back-$other.txt" 2>&1)"
    check_eq "and gone from $other" ENOENT "$(errno_of stat "$MNT/$other/moved.txt")"
    check "mv a tree dav -> $other" mv "$MNT/dav/back-$other" "$MNT/$other/tree2"
    check "the moved tree reads in $other" diff -r "$SRC" "$MNT/$other/tree2"
    check "the tree is gone from the WebDAV server" test ! -e "$AROOT/back-$other"
    check "mv a tree $other -> dav" mv "$MNT/$other/tree2" "$MNT/dav/tree2-$other"
    check "the moved tree is on the WebDAV server" diff -r -x .DAV "$SRC" "$AROOT/tree2-$other"
    check_eq "and gone from $other" ENOENT "$(errno_of stat "$MNT/$other/tree2")"
done
check "the local folder holds what was copied there" diff -r "$SRC" "$LOCAL/t"
check "the bucket holds what was copied there" s3_exists t/sub/deeper/blob.bin
unmount_skyfs "$MNT"
