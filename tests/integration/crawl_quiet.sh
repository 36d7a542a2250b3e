#!/usr/bin/env bash
# crawl_quiet.sh - the first crawl of a mount lets the people using the
# cloud go first (fs/crawl.c wait_quiet).
#
# Checks, on s3rver, the crawl's counters read from .skyfs
# (user.skyfs.crawls: "NAME running 0|1 crawls N ..."):
#   - while a process keeps the cloud busy (a stat of a new name every
#     0.05 s: each asks the server), the crawl has not started 3 s after
#     the mount (before, it started at once);
#   - once the process stops, the crawl starts and completes, and the
#     index holds the cloud's objects (skyfs search);
#   - on a fresh mount kept busy all along, the crawl still starts and
#     completes (10 s after the mount at the latest: it is never starved).
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket quiet || die "cannot start s3rver"
for i in 1 2 3 4 5; do
    s3curl -X PUT --data-binary "object $i" "$ENDPOINT/quiet/dir/obj$i.txt" -o /dev/null ||
        die "cannot put dir/obj$i.txt"
done

# crawl_field MNT FIELD: the s3 cloud's crawl counter FIELD (running, crawls)
crawl_field() {
    getfattr --only-values -n user.skyfs.crawls "$1/.skyfs" 2>/dev/null |
        awk -v f="$2" '$1 == "s3" { for (i = 2; i < NF; i++) if ($i == f) print $(i + 1) }'
}
# busy MNT STOPFILE: stats a new name of the cloud every 0.05 s until
# STOPFILE exists (negative_ttl does not help: every name is new)
busy() {
    local n=0
    while [ ! -e "$2" ]; do
        n=$((n + 1))
        stat "$1/s3/dir/missing-$n" >/dev/null 2>&1
        sleep 0.05
    done
}

CONF="$TEST_TMP/skyfs.conf"
write_s3_config "$CONF" "$ENDPOINT" quiet
MNT="$TEST_TMP/mnt"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
busy "$MNT" "$TEST_TMP/stop1" &
busy_pid=$!
sleep 3
check_eq "3 s into a busy mount, no crawl has run" "0 0" \
    "$(crawl_field "$MNT" running) $(crawl_field "$MNT" crawls)"
touch "$TEST_TMP/stop1"
wait "$busy_pid"
check "once the cloud pauses, the crawl runs and completes" \
    wait_until 15 eval '[ "$(crawl_field "$MNT" crawls)" = 1 ]'
check_eq "the index holds the cloud's objects" 5 \
    "$("$SKYFS" search -c "$CONF" --cloud s3 'obj*.txt' 2>&1 | grep -c 'obj[1-5]\.txt$')"
unmount_skyfs "$MNT"

# a fresh cache (no crawl recorded), kept busy from the mount on
write_s3_config "$TEST_TMP/fresh.conf" "$ENDPOINT" quiet
sed -i "s|^dir = .*|dir = $TEST_TMP/cache-fresh|" "$TEST_TMP/fresh.conf"
mkdir -p "$TEST_TMP/cache-fresh"
MNT2="$TEST_TMP/mnt2"
mount_skyfs "$TEST_TMP/fresh.conf" "$MNT2" || die "cannot mount a fresh cache"
busy "$MNT2" "$TEST_TMP/stop2" &
busy_pid=$!
check "kept busy all along, the crawl still completes" \
    wait_until 30 eval '[ "$(crawl_field "$MNT2" crawls)" = 1 ]'
check "and the cloud was busy until then (the process still runs)" kill -0 "$busy_pid"
touch "$TEST_TMP/stop2"
wait "$busy_pid"
unmount_skyfs "$MNT2"
