#!/usr/bin/env bash
# daemon_cache_lock.sh - a cache folder belongs to one daemon at a time.
#
# 1. Two mounts of one config with an explicit [cache] dir: the second is
#    refused, with a message naming the folder, the holder's pid and
#    mountpoint, and the fix; the first mount is untouched.
# 2. Without [cache] dir each mount gets its own cache folder (stable
#    across remounts), so two mounts of one config work side by side, and
#    the scenario that lost acknowledged data with a shared cache loses
#    nothing: A keeps a file open and written, B mounts (with a shared
#    cache B's journal recovery uploaded A's file and marked it clean, so
#    A's next writes were never journaled), A writes more and is killed
#    with -9; the next mount of A uploads all 2 MiB.
# Runs as root: the default cache base is /var/cache/skyfs; the test
# removes the per-mount folders it made there.
. "$(dirname "$0")/lib.sh"

LOCAL="$TEST_TMP/data"
mkdir -p "$LOCAL"

# ---------------------------------------------------------- explicit dir
CONF="$TEST_TMP/shared.conf"
write_local_config "$CONF" "$TEST_TMP/cache" docs="$LOCAL"
mount_skyfs "$CONF" "$TEST_TMP/a" || die "cannot mount a"
pid_a=$(daemon_pids "$TEST_TMP/a")
mkdir -p "$TEST_TMP/b"
out="$TEST_TMP/second.out"
"$SKYFS" mount -c "$CONF" --log "$LOGS/b.log" "$TEST_TMP/b" >"$out" 2>&1 </dev/null
rc=$?
check "a second mount on the same cache folder is refused (exit $rc)" \
    test "$rc" -ne 0 -a "$rc" -lt 128
check "the refusal names the folder, the holder's pid and mountpoint, and the fix" \
    grep -F "cache directory $TEST_TMP/cache is in use by the skyfs daemon pid $pid_a serving $TEST_TMP/a" "$out"
check "the refusal says to give the mount its own [cache] dir" grep -F "[cache] dir" "$out"
check_fails "nothing is mounted at b" mountpoint -q "$TEST_TMP/b"
check "the first mount still works" test -d "$TEST_TMP/a/docs"
unmount_skyfs "$TEST_TMP/a"
mount_skyfs "$CONF" "$TEST_TMP/b" || die "cannot mount b once a is gone"
unmount_skyfs "$TEST_TMP/b"

# ----------------------------------------------------------- default dir
CONF="$TEST_TMP/default.conf"
cat >"$CONF" <<EOF
[docs]
type = local
path = $LOCAL
ttl = 1s
EOF
BASE=/var/cache/skyfs
# our_caches: the per-mount cache folders of this test's config
our_caches() {
    grep -lxF "$CONF" "$BASE"/mounts/*/config 2>/dev/null | xargs -r -n1 dirname | sort
}
cleanup_caches() {
    our_caches | while read -r d; do rm -rf "$d"; done
    rmdir "$BASE/mounts" "$BASE" 2>/dev/null
    return 0
}

A="$TEST_TMP/mnt-a"
B="$TEST_TMP/mnt-b"
mount_skyfs "$CONF" "$A" || die "cannot mount a with the default cache"

"$PYTHON" - "$A/docs/open.bin" "$TEST_TMP" >"$LOGS/writer.log" 2>&1 <<'PY' &
import os, random, sys, time
path, tmp = sys.argv[1:]
data = random.Random(7).randbytes(2 << 20)
with open(f"{tmp}/ref.bin", "wb") as ref:
    ref.write(data)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data[:1 << 20])          # acknowledged: journaled as dirty
open(f"{tmp}/first-half", "w").close()
while not os.path.exists(f"{tmp}/go"):
    time.sleep(0.05)
os.write(fd, data[1 << 20:])          # acknowledged too
open(f"{tmp}/second-half", "w").close()
time.sleep(120)                        # killed with the daemon's mount
PY
writer=$!
check "the writer has 1 MiB acknowledged in the open file" \
    wait_until 30 test -e "$TEST_TMP/first-half"
mount_skyfs "$CONF" "$B" || die "cannot mount b with the default cache"
check_eq "the two mounts have a cache folder each" 2 "$(our_caches | wc -l)"
# With a shared cache, b's journal recovery would now upload the open file.
wait_until 3 test -s "$LOCAL/open.bin"
touch "$TEST_TMP/go"
check "the writer has 2 MiB acknowledged" wait_until 30 test -e "$TEST_TMP/second-half"
daemon=$(daemon_pids "$A")
check "a's daemon runs" test -n "$daemon"
# shellcheck disable=SC2086
kill -9 $daemon
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null
fusermount3 -u -z "$A" 2>/dev/null || umount -l "$A"
unmount_skyfs "$B"

mount_skyfs "$CONF" "$A" || die "cannot remount a"
check_eq "a's remount uses the same cache folder" 2 "$(our_caches | wc -l)"
check "a's remount uploads both acknowledged MiB of the file open at the crash" \
    wait_until 30 cmp "$TEST_TMP/ref.bin" "$LOCAL/open.bin"
unmount_skyfs "$A"
cleanup_caches
