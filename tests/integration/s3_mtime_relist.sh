#!/usr/bin/env bash
# s3_mtime_relist.sh - a file's mtime survives fresh listings on S3.
#
# Checks: a small file and a large one written through the mount, with an
# mtime set by touch -d, keep that mtime when their directory is listed
# again after the ttl (the listing carries only LastModified), through the
# same mount and through a second mount with an empty cache.
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

mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
mkdir "$MNT/s3/d"
echo small >"$MNT/s3/d/small"
head -c 300000 /dev/urandom >"$MNT/s3/d/large"
echo copied >"$MNT/s3/d/copied"
touch -d '2001-02-03 04:05:06' "$MNT/s3/d/small" "$MNT/s3/d/large"
cp -p "$MNT/s3/d/small" "$MNT/s3/d/copied"
want=$(date -d '2001-02-03 04:05:06' +%s)
check_eq "small file's mtime right after touch" "$(stat -c %Y "$MNT/s3/d/small")" "$want"
sleep 2
ls -l "$MNT/s3/d" >/dev/null
for f in small large copied; do
    check_eq "$f: mtime after a fresh listing" "$want" "$(stat -c %Y "$MNT/s3/d/$f")"
done
sleep 2
for f in small large copied; do
    check_eq "$f: mtime by stat after the ttl" "$want" "$(stat -c %Y "$MNT/s3/d/$f")"
done
unmount_skyfs "$MNT"

mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount with an empty cache"
ls -l "$MNT/s3/d" >/dev/null
for f in small large copied; do
    check_eq "$f: mtime through a fresh cache" "$want" "$(stat -c %Y "$MNT/s3/d/$f")"
done
sleep 2
ls -l "$MNT/s3/d" >/dev/null
for f in small large copied; do
    check_eq "$f: mtime after the fresh cache's relisting" "$want" "$(stat -c %Y "$MNT/s3/d/$f")"
done
unmount_skyfs "$MNT"
