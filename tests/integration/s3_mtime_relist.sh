#!/usr/bin/env bash
# s3_mtime_relist.sh - a file's mtime and mode survive fresh listings on
# S3 and GCS (one object-store core), against s3rver.
#
# Checks, on cloud "s3" (bucket data) and cloud "gcs" (bucket gdata, GCS's
# XML API): a small file, a large one and a multipart one written through
# the mount, with an mtime set by touch -d (and cp -p, chmod), keep that
# mtime and mode when their directory is listed again after the ttl (the
# listing carries only LastModified and the ETag), through the same mount
# and through a second mount with an empty cache (where a small object's
# metadata comes from the symlink probe's HEAD, and a larger one shows
# LastModified until a lookup after the ttl HEADs it).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
MNT="$TEST_TMP/mnt"
CLOUDS="s3 gcs"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket data --configure-bucket gdata ||
    die "cannot start s3rver"

write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<CONF
[cache]
dir = $2

$(s3rver_cloud s3 "$ENDPOINT" data)
ttl = 1s

$(gcs_cloud gcs "$ENDPOINT" gdata)
ttl = 1s
CONF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"
want=$(date -d '2001-02-03 04:05:06' +%s)

started=$(date +%s)
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
for c in $CLOUDS; do
    d="$MNT/$c/d"
    mkdir "$d"
    echo small >"$d/small"
    head -c 300000 /dev/urandom >"$d/large"
    head -c 17000000 /dev/urandom >"$d/multi"     # a multipart upload: ETag "...-3"
    echo copied >"$d/copied"
    touch -d '2001-02-03 04:05:06' "$d/small" "$d/large" "$d/multi"
    cp -p "$d/small" "$d/copied"
    chmod 640 "$d/small"
    check_eq "$c: small file's mtime right after touch" "$want" "$(stat -c %Y "$d/small")"
done
sleep 2
for c in $CLOUDS; do
    d="$MNT/$c/d"
    ls -l "$d" >/dev/null
    for f in small large copied multi; do
        check_eq "$c: $f: mtime after a fresh listing" "$want" "$(stat -c %Y "$d/$f")"
    done
    check_eq "$c: small: mode after a fresh listing" 640 "$(stat -c %a "$d/small")"
done
sleep 2
for c in $CLOUDS; do
    for f in small large copied multi; do
        check_eq "$c: $f: mtime by stat after the ttl" "$want" "$(stat -c %Y "$MNT/$c/d/$f")"
    done
done
unmount_skyfs "$MNT"

mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount with an empty cache"
for c in $CLOUDS; do
    d="$MNT/$c/d"
    ls -l "$d" >/dev/null
    # small objects (1-4096 bytes) are HEADed by the symlink probe: their
    # stored metadata shows at once; larger ones show Last-Modified until
    # a lookup after the ttl HEADs them
    for f in small copied; do
        check_eq "$c: $f: mtime through a fresh cache" "$want" "$(stat -c %Y "$d/$f")"
    done
    check_eq "$c: small: mode through a fresh cache" 640 "$(stat -c %a "$d/small")"
    large_listed=$(stat -c %Y "$d/large")
    check "$c: large: a fresh cache's listing shows Last-Modified ($large_listed)" \
        test "$large_listed" -ge "$started"
done
sleep 2
for c in $CLOUDS; do
    for f in large multi; do
        check_eq "$c: $f: mtime by stat after the ttl on a fresh cache" "$want" \
            "$(stat -c %Y "$MNT/$c/d/$f")"
    done
done
sleep 2
for c in $CLOUDS; do
    d="$MNT/$c/d"
    ls -l "$d" >/dev/null
    for f in small large copied multi; do
        check_eq "$c: $f: mtime after the fresh cache's relisting" "$want" "$(stat -c %Y "$d/$f")"
    done
    check_eq "$c: small: mode after the fresh cache's relisting" 640 "$(stat -c %a "$d/small")"
done
unmount_skyfs "$MNT"
