#!/usr/bin/env bash
# local_data.sh - bytes written through the mount land unchanged in the
# backing directory of a local cloud.
#
# Small files, a 20 MiB file written with dd in odd-sized chunks, rewrites
# in the middle (one across a 4 MiB block boundary), appends, and a file in
# the second cloud; each compared with cmp through the mount and in the
# backing directory.  Also: the first open raised the kernel's readahead
# for the mount from 128 KiB to 2 MiB (the tests run as root).
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
ALPHA="$TEST_TMP/data/alpha"
BETA="$TEST_TMP/data/beta"
SRC="$TEST_TMP/src"
write_local_config "$CONF" "$TEST_TMP/cache" "alpha=$ALPHA" "beta=$BETA"
mkdir -p "$SRC"

# patch FILE OFFSET PATCHFILE: overwrite FILE's bytes at OFFSET in place.
patch_at() {
    dd if="$3" of="$1" bs=7001 seek="$2" oflag=seek_bytes conv=notrunc status=none
}

# same_in_mount_and_backing NAME EXPECTED: cmp through the mount and in the
# backing directory of alpha.
same_in_mount_and_backing() {
    local name=$1 expected=$2
    check "$name: through the mount equals what was written" cmp "$expected" "$MNT/alpha/$name"
    check "$name: backing file equals what was written" cmp "$expected" "$ALPHA/$name"
}

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"

# --- small files
printf 'hello, skyfs\n' >"$SRC/hello.txt"
check "write a small file with cp" cp "$SRC/hello.txt" "$MNT/alpha/hello.txt"
same_in_mount_and_backing hello.txt "$SRC/hello.txt"

# The mount's backing device info, 0:MINOR (fuse mounts have major 0).
dev=$(stat -c %d "$MNT")
ra_file="/sys/class/bdi/0:$((dev & 0xff | (dev >> 12 & 0xfff00)))/read_ahead_kb"
check_eq "the first open raised the kernel's readahead of the mount to 2 MiB" \
    2048 "$(cat "$ra_file" 2>&1)"
: >"$SRC/empty"
check "create an empty file" touch "$MNT/alpha/empty"
same_in_mount_and_backing empty "$SRC/empty"
head -c 100000 /dev/urandom >"$SRC/binary"
check "write 100000 random bytes" cp "$SRC/binary" "$MNT/alpha/binary"
same_in_mount_and_backing binary "$SRC/binary"

# --- 20 MiB written in odd-sized chunks
head -c $((20 * 1024 * 1024)) /dev/urandom >"$SRC/big"
check "dd 20 MiB in 12345-byte chunks" \
    dd if="$SRC/big" of="$MNT/alpha/big" bs=12345 status=none
same_in_mount_and_backing big "$SRC/big"
check_eq "20 MiB file has the right size through the mount" $((20 * 1024 * 1024)) \
    "$(stat -c %s "$MNT/alpha/big" 2>&1)"

# --- rewrites in the middle
head -c 70001 /dev/urandom >"$SRC/patch"
cp "$SRC/big" "$SRC/big.expected"
patch_at "$SRC/big.expected" $((4 * 1024 * 1024 - 5000)) "$SRC/patch"
check "rewrite 70001 bytes across the 4 MiB boundary of big" \
    patch_at "$MNT/alpha/big" $((4 * 1024 * 1024 - 5000)) "$SRC/patch"
same_in_mount_and_backing big "$SRC/big.expected"

head -c $((3 * 1024 * 1024 + 17)) /dev/urandom >"$SRC/mid"
check "write a 3 MiB file" cp "$SRC/mid" "$MNT/alpha/mid"
cp "$SRC/mid" "$SRC/mid.expected"
patch_at "$SRC/mid.expected" 1500001 "$SRC/patch"
check "rewrite the middle of the 3 MiB file" patch_at "$MNT/alpha/mid" 1500001 "$SRC/patch"
same_in_mount_and_backing mid "$SRC/mid.expected"

# Rewrite with a fresh open after the TTL, so the daemon works from its
# cache or the backing store rather than a still-open file.
sleep 2
patch_at "$SRC/mid.expected" 17 "$SRC/patch"
check "rewrite the start of the file after the TTL" patch_at "$MNT/alpha/mid" 17 "$SRC/patch"
same_in_mount_and_backing mid "$SRC/mid.expected"

# --- appends
cp "$SRC/hello.txt" "$SRC/log.expected"
check "create log" cp "$SRC/hello.txt" "$MNT/alpha/log"
for i in 1 2 3; do
    printf 'line %s\n' "$i" >>"$SRC/log.expected"
    printf 'line %s\n' "$i" >>"$MNT/alpha/log"
done
same_in_mount_and_backing log "$SRC/log.expected"

# --- the second cloud
check "write a file in beta" cp "$SRC/binary" "$MNT/beta/binary"
check "beta's backing file equals what was written" cmp "$SRC/binary" "$BETA/binary"
check "a file written in alpha is not in beta" test ! -e "$BETA/big"

# --- overwrite with a shorter file (O_TRUNC)
check "overwrite big with a small file" cp "$SRC/hello.txt" "$MNT/alpha/big"
same_in_mount_and_backing big "$SRC/hello.txt"

unmount_skyfs "$MNT"
