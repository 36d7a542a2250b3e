#!/usr/bin/env bash
# cache_min_free.sh - the block cache keeps [cache] min_free bytes free.
#
# The cache directory is an 80 MiB tmpfs with min_free = 40M; the daemon
# keeps 16 MiB of it for its databases (cache/reserve.h), so the cache may
# use about 24 MiB.  Reading a 16 MiB file fills it; writing a
# 12 MiB file then evicts clean blocks of the first instead of eating the
# floor; writing 40 MiB cannot fit above the floor even with every clean
# block gone, so the writer gets ENOSPC, the log says which directory and
# which setting, and every byte acknowledged before reaches the cloud.
# Last, a mount whose cache file system is full: refused with a message
# that names the folder and the fix, and fine once there is room.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
CACHE="$TEST_TMP/cachefs"
DATA="$TEST_TMP/data/alpha"
SRC="$TEST_TMP/src"
mkdir -p "$CACHE" "$SRC"
mount_tmpfs "$CACHE" 80m skyfs-test-cache
write_local_config "$CONF" "$CACHE" "alpha=$DATA"
sed -i 's|^dir = .*|&\nmin_free = 40M|' "$CONF"

# free_mib: free space of the cache file system, in MiB.
free_mib() { df -m --output=avail "$CACHE" | tail -n 1 | tr -d ' '; }

head -c $((16 << 20)) /dev/urandom >"$DATA/first.bin"
head -c $((12 << 20)) /dev/urandom >"$SRC/second.bin"
head -c $((40 << 20)) /dev/urandom >"$SRC/third.bin"

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
check "read a 16 MiB file (cached)" cmp "$DATA/first.bin" "$MNT/alpha/first.bin"
check "its blocks take the cache's disk space" test "$(free_mib)" -lt 50
check "write 12 MiB: clean blocks make room" cp "$SRC/second.bin" "$MNT/alpha/second.bin"
check "the written file reached the cloud" cmp "$SRC/second.bin" "$DATA/second.bin"
free=$(free_mib)
check "at least min_free (40 MiB) is still free (got $free MiB)" test "$free" -ge 40

dd if="$SRC/third.bin" of="$MNT/alpha/third.bin" bs=1M >"$LOGS/dd.out" 2>&1
rc=$?
check "writing 40 MiB fails (exit status $rc)" test "$rc" -ne 0
check "the writer was told ENOSPC" grep -q 'No space left on device' "$LOGS/dd.out"
check "the log names the cache dir and min_free" \
    grep -q "$CACHE.*min_free = 40 MiB" "$LOGS/mnt.log"
written=$(stat -c %s "$DATA/third.bin" 2>/dev/null || echo 0)
check "some of it was written before the floor ($written bytes)" test "$written" -gt 0
check "every acknowledged byte is in the cloud" \
    cmp -n "$written" "$SRC/third.bin" "$DATA/third.bin"
acked=$(awk '/bytes .* copied/ { print $1 }' "$LOGS/dd.out")
check_eq "the cloud holds exactly what dd was told was written" "$acked" "$written"
free=$(free_mib)
check "still at least about min_free free (got $free MiB)" test "$free" -ge 39
check "the first file still reads right" cmp "$DATA/first.bin" "$MNT/alpha/first.bin"
unmount_skyfs "$MNT"

# --- a full cache file system at mount
CONF2="$TEST_TMP/full.conf"
write_local_config "$CONF2" "$CACHE/other" "alpha=$DATA"
check "fill the cache file system" eval \
    "dd if=/dev/zero of='$CACHE/fill' bs=1M 2>/dev/null; test \"\$(free_mib)\" -eq 0"
out="$LOGS/full-mount.out"
timeout 60 "$SKYFS" mount -c "$CONF2" "$MNT" >"$out" 2>&1
check_eq "the mount is refused" "1" "$?"
check "it names the cache folder and the fix" \
    grep -q "$CACHE/other.*full: free space there, or set \[cache\] dir to a folder on another one" "$out"
check "nothing is mounted" eval "! mountpoint -q '$MNT'"
rm -f "$CACHE/fill"
mount_skyfs "$CONF2" "$MNT" || die "cannot mount once there is room"
check "with room again the mount serves the cloud" cmp "$DATA/first.bin" "$MNT/alpha/first.bin"
unmount_skyfs "$MNT"
umount "$CACHE"
