#!/usr/bin/env bash
# s3_mtime_relist.sh - a file's mtime survives fresh listings on S3.
#
# Checks: a small file, a large one and a multipart one written through the mount, with an
# mtime set by touch -d, keep that mtime when their directory is listed
# again after the ttl (the listing carries only LastModified), through the
# same mount and through a second mount with an empty cache (where a small
# object's metadata comes from the symlink probe's HEAD, and a large one
# shows LastModified until a lookup after the ttl).
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
MNT="$TEST_TMP/mnt"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket data || die "cannot start s3rver"

write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<CONF
[cache]
dir = $2

$(s3rver_cloud s3 "$ENDPOINT" data)
ttl = 1s
CONF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"

started=$(date +%s)
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
mkdir "$MNT/s3/d"
echo small >"$MNT/s3/d/small"
head -c 300000 /dev/urandom >"$MNT/s3/d/large"
head -c 17000000 /dev/urandom >"$MNT/s3/d/multi"     # a multipart upload: ETag "...-3"
echo copied >"$MNT/s3/d/copied"
touch -d '2001-02-03 04:05:06' "$MNT/s3/d/small" "$MNT/s3/d/large" "$MNT/s3/d/multi"
cp -p "$MNT/s3/d/small" "$MNT/s3/d/copied"
chmod 640 "$MNT/s3/d/small"
want=$(date -d '2001-02-03 04:05:06' +%s)
check_eq "small file's mtime right after touch" "$want" "$(stat -c %Y "$MNT/s3/d/small")"
sleep 2
ls -l "$MNT/s3/d" >/dev/null
for f in small large copied multi; do
    check_eq "$f: mtime after a fresh listing" "$want" "$(stat -c %Y "$MNT/s3/d/$f")"
done
check_eq "small: mode after a fresh listing" 640 "$(stat -c %a "$MNT/s3/d/small")"
sleep 2
for f in small large copied multi; do
    check_eq "$f: mtime by stat after the ttl" "$want" "$(stat -c %Y "$MNT/s3/d/$f")"
done
unmount_skyfs "$MNT"

mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount with an empty cache"
ls -l "$MNT/s3/d" >/dev/null
# small objects (1-4096 bytes) are HEADed by the symlink probe: their
# stored metadata shows at once; larger ones show Last-Modified until a
# lookup after the ttl HEADs them
for f in small copied; do
    check_eq "$f: mtime through a fresh cache" "$want" "$(stat -c %Y "$MNT/s3/d/$f")"
done
check_eq "small: mode through a fresh cache" 640 "$(stat -c %a "$MNT/s3/d/small")"
large_listed=$(stat -c %Y "$MNT/s3/d/large")
check "large: a fresh cache's listing shows Last-Modified ($large_listed)" \
    test "$large_listed" -ge "$started"
sleep 2
for f in large multi; do
    check_eq "$f: mtime by stat after the ttl on a fresh cache" "$want" "$(stat -c %Y "$MNT/s3/d/$f")"
done
sleep 2
ls -l "$MNT/s3/d" >/dev/null
for f in small large copied multi; do
    check_eq "$f: mtime after the fresh cache's relisting" "$want" "$(stat -c %Y "$MNT/s3/d/$f")"
done
check_eq "small: mode after the fresh cache's relisting" 640 "$(stat -c %a "$MNT/s3/d/small")"
unmount_skyfs "$MNT"
