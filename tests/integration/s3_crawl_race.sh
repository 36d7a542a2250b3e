#!/usr/bin/env bash
# s3_crawl_race.sh - a listing through the mount while the background crawl
# is still probing shows the mode and mtime stored in an object's metadata
# (S3 listings carry neither; the symlink probe's HEAD brings them).
#
# A bucket holds a/f (6 bytes, s3fs-style x-amz-meta-mtime and -mode) and
# 96 small objects under z/, all asked about by the crawl's symlink probe;
# fault_proxy.py slows each HEAD of z/ by 0.2 s, so that the crawl's
# answers wait a few seconds before they reach the cache.  Once the crawl
# has asked about a/f (its HEAD is in the proxy's log), `ls -l a` and stat
# through the mount must show a/f's stored mtime and mode at once: the
# crawl's answer about a/f must not let the mount's listing skip its own
# question while the crawl has not stored what it learnt.  (Before the
# fix: mode 644 and the object's Last-Modified, until the ttl.)
. "$(dirname "$0")/lib.sh"

BUCKET=race
S3PORT=$(free_port)
start_s3rver "$TEST_TMP/s3rver" "$S3PORT" --configure-bucket "$BUCKET" ||
    die "cannot start s3rver"
FAULTS="$TEST_TMP/faults"
mkdir -p "$FAULTS"
printf '#!/bin/sh\nsleep 0.2\n' >"$FAULTS/slow"
chmod +x "$FAULTS/slow"
echo "run:slow HEAD /$BUCKET/z/ all" >"$FAULTS/rules"
PROXYPORT=$(free_port)
start_fault_proxy "$PROXYPORT" "$S3PORT" || die "cannot start fault_proxy.py"

want=$(date -d '2001-02-03 04:05:06 UTC' +%s)
put() {  # put KEY BODY [HEADER...]
    local key=$1 body=$2; shift 2
    printf '%s' "$body" | s3curl --max-time 30 -X PUT "$@" --data-binary @- \
        "http://127.0.0.1:$S3PORT/$BUCKET/$key" >/dev/null
}
check "an object with s3fs metadata (mode 0640, an mtime of 2001)" \
    put a/f "hello" -H "x-amz-meta-mtime: $want" -H "x-amz-meta-mode: $((0100640))"
# (waits name their jobs: a bare wait would wait for the servers too)
pids=()
for i in $(seq 1 96); do
    put "z/$i" "small $i" &
    pids+=($!)
    if [ ${#pids[@]} -ge 16 ]; then wait "${pids[@]}"; pids=(); fi
done
[ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"
check_eq "96 small objects under z/" 96 \
    "$(s3curl "http://127.0.0.1:$S3PORT/$BUCKET?list-type=2&prefix=z/" | grep -o '<Key>' | wc -l)"

MNT="$TEST_TMP/mnt"
write_s3_config "$TEST_TMP/skyfs.conf" "http://127.0.0.1:$PROXYPORT" "$BUCKET" "ttl = 1h"
mount_skyfs "$TEST_TMP/skyfs.conf" "$MNT" || die "cannot mount"
check "the crawl asks about a/f (HEAD in the proxy's log)" \
    wait_until 30 grep -q "^HEAD /$BUCKET/a/f" "$FAULTS/log"
check_eq "the crawl is still asking about z/ (its answers not stored yet)" 1 \
    "$(getfattr --only-values -n user.skyfs.crawls "$MNT/.skyfs" 2>/dev/null |
        awk '$1 == "s3" { print $3 }')"
check_eq "a/f listed during the crawl: its stored mode and mtime" "640 $want" \
    "$(ls -l "$MNT/s3/a" >/dev/null && stat -c '%a %Y' "$MNT/s3/a/f" 2>&1)"
check_eq "a/f read through the mount" "hello" "$(cat "$MNT/s3/a/f" 2>&1)"
unmount_skyfs "$MNT"
