#!/usr/bin/env bash
# shellcheck disable=SC2012 # test file names are plain
# local_remount.sh - data and the cache survive unmount + remount.
#
# Writes files, a directory and a symlink, unmounts, checks that the cache
# directory still holds its databases (meta.db, blocks.db) and cached data,
# mounts again with the same config and reads everything back.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
CACHE="$TEST_TMP/cache"
ALPHA="$TEST_TMP/data/alpha"
BETA="$TEST_TMP/data/beta"
SRC="$TEST_TMP/src"
write_local_config "$CONF" "$CACHE" "alpha=$ALPHA" "beta=$BETA"
mkdir -p "$SRC"
head -c $((6 * 1024 * 1024 + 3)) /dev/urandom >"$SRC/six"
printf 'small file\n' >"$SRC/small"
head -c 5000 /dev/urandom >"$SRC/pre"
cp "$SRC/pre" "$ALPHA/pre-existing"

# cache_data_files: files in the cache dir other than SQLite databases.
cache_data_files() {
    find "$CACHE" -type f ! -name '*.db' ! -name '*.db-wal' ! -name '*.db-shm' \
        ! -name '*.db-journal' -size +0 | head -n 5
}

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
check "write a 6 MiB file" cp "$SRC/six" "$MNT/alpha/six"
check "mkdir dir" mkdir "$MNT/alpha/dir"
check "write a small file in dir" cp "$SRC/small" "$MNT/alpha/dir/small"
check "symlink" ln -s dir/small "$MNT/alpha/link"
check "write a file in beta" cp "$SRC/small" "$MNT/beta/small"
check "read a pre-existing file (fills the block cache)" cmp "$SRC/pre" "$MNT/alpha/pre-existing"
check "read the 6 MiB file back" cmp "$SRC/six" "$MNT/alpha/six"
unmount_skyfs "$MNT"

# --- after unmount
check "backing file equals what was written" cmp "$SRC/six" "$ALPHA/six"
check "the cache dir holds meta.db" test -n "$(find "$CACHE" -name meta.db -size +0)"
check "the cache dir holds blocks.db" test -n "$(find "$CACHE" -name blocks.db -size +0)"
check "the cache dir holds cached data besides the databases" test -n "$(cache_data_files)"
find "$CACHE" -type f -exec ls -ld {} + >"$LOGS/cache-after-unmount.txt" 2>&1

# --- remount with the same config
mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF again"
check_eq "the root still lists both clouds" "alpha beta" \
    "$("$PYTHON" -c 'import os, sys; print(" ".join(os.listdir(sys.argv[1])))' "$MNT" 2>&1)"
check_eq "the cloud lists the same entries" "dir link pre-existing six" \
    "$(ls "$MNT/alpha" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check "read the 6 MiB file after remount" cmp "$SRC/six" "$MNT/alpha/six"
check "read the small file after remount" cmp "$SRC/small" "$MNT/alpha/dir/small"
check "read the pre-existing file after remount" cmp "$SRC/pre" "$MNT/alpha/pre-existing"
check_eq "readlink after remount" "dir/small" "$(readlink "$MNT/alpha/link" 2>&1)"
check "read through the symlink after remount" cmp "$SRC/small" "$MNT/alpha/link"
check "read beta's file after remount" cmp "$SRC/small" "$MNT/beta/small"

# A file changed outside while unmounted (same size, other bytes, other
# mtime) is seen fresh once the TTL has passed, not from the block cache.
unmount_skyfs "$MNT"
head -c 5000 /dev/urandom >"$SRC/pre2"
cp "$SRC/pre2" "$ALPHA/pre-existing"
touch -d '2001-01-01' "$ALPHA/pre-existing"
sleep 2   # ttl + 1: even the remembered metadata is stale now
mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF a third time"
check "a file changed while unmounted reads its new content" \
    cmp "$SRC/pre2" "$MNT/alpha/pre-existing"
unmount_skyfs "$MNT"
