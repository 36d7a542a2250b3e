#!/usr/bin/env bash
# writeback_tar.sh - tar extract into S3 (s3rver) with write_back = sync and
# write_back = async: the time until tar returns and the time until every
# file is on the server (`skyfs status` shows no pending upload).
#
#     BUILD=build bash tests/bench/writeback_tar.sh [DIR]
#
# DIR (default /usr/include/linux) is archived first; each mode extracts
# it into its own bucket on one s3rver, on one mount.  Prints one line per
# mode, after a line for the same extraction onto local disk (the cache's
# file system, no FUSE) to compare with.  MODES="async" (default "sync
# async") picks the modes.  A benchmark: it asserts nothing about speed.
. "$(dirname "$0")/../integration/lib.sh"

SRCDIR=${1:-/usr/include/linux}
PORT=$(free_port)
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket tsync --configure-bucket tasync ||
    die "cannot start s3rver"
mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

$(s3rver_cloud sync "http://127.0.0.1:$PORT" tsync)
write_back = sync

$(s3rver_cloud async "http://127.0.0.1:$PORT" tasync)
write_back = async
EOF
)
tar -C "$(dirname "$SRCDIR")" -cf "$TEST_TMP/src.tar" "$(basename "$SRCDIR")" || die "cannot archive $SRCDIR"
nfiles=$(tar -tf "$TEST_TMP/src.tar" | grep -vc '/$')
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
pending() { "$SKYFS" status -c "$CONF" 2>/dev/null | grep -Eo '[0-9]+ pending upload' | grep -Eo '^[0-9]+'; }
# (a function: wait_until asks again each time; `test "$(pending)" = 0` as
# its argument would be the count at the call, forever)
drained() { [ "$(pending)" = 0 ]; }
now() { date +%s.%N; }
mkdir -p "$TEST_TMP/local"
t0=$(now)
tar -C "$TEST_TMP/local" -xf "$TEST_TMP/src.tar" || record FAIL "tar onto local disk"
t1=$(now)
awk -v n="$nfiles" -v a="$t0" -v b="$t1" 'BEGIN {
    printf "local  %d files: tar returned after %.2f s\n", n, b - a }' | tee -a "$LOGS/bench.txt"
MODES=${MODES:-sync async}
for mode in $MODES; do
    t0=$(now)
    tar -C "$MNT/$mode" -xf "$TEST_TMP/src.tar" || record FAIL "tar into $mode"
    t1=$(now)
    wait_until 600 drained || record FAIL "$mode: uploads did not drain"
    t2=$(now)
    awk -v m="$mode" -v n="$nfiles" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
        printf "%-6s %d files: tar returned after %.2f s, all on the server after %.2f s\n",
               m, n, b - a, c - a }' | tee -a "$LOGS/bench.txt"
done
objects() { (cd "$TEST_TMP/s3rver/$1" && find . -name '*._S3rver_object' | sort); }
case " $MODES " in *" sync "*" async "*)
    check_eq "both buckets hold the same objects" "$(objects tsync)" "$(objects tasync)" ;;
esac
for mode in $MODES; do
    check "$mode: at least one object per file" test "$(objects "t$mode" | wc -l)" -ge "$nfiles"
done
unmount_skyfs "$MNT"
