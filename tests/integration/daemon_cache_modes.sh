#!/usr/bin/env bash
# daemon_cache_modes.sh - the cache is private whatever existed before:
# a cache folder left 0755 with files 0644 (databases, SQLite's -wal and
# -shm files, block data, health, the mountpoint record) is made 0700 with
# every file 0600 by the next mount, and another user can no longer read
# the metadata database.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/users_lib.sh"

OTHER=skyfs-t1
test_user "$OTHER" >/dev/null || die "no test user"
CACHE="$TEST_TMP/cache"
CONF="$TEST_TMP/skyfs.conf"
write_local_config "$CONF" "$CACHE" docs="$TEST_TMP/data"
head -c 300000 /dev/urandom >"$TEST_TMP/data/f.bin"

# A first mount fills the cache (databases, a block data file, health).
mount_skyfs "$CONF" "$TEST_TMP/mnt" || die "cannot mount"
check "a file is read through the mount" cmp "$TEST_TMP/data/f.bin" "$TEST_TMP/mnt/docs/f.bin"
check "the cache holds block data" bash -c "find '$CACHE/data' -type f | grep -q ."
daemon=$(daemon_pids "$TEST_TMP/mnt")
# kill -9 keeps the -wal and -shm files, as a crash would
# shellcheck disable=SC2086
kill -9 $daemon
fusermount3 -u -z "$TEST_TMP/mnt" 2>/dev/null || umount -l "$TEST_TMP/mnt"
check "SQLite's -wal and -shm files are there" \
    test -e "$CACHE/meta.db-wal" -a -e "$CACHE/meta.db-shm"

# Loosen everything, as an older skyfs or another tool may have left it.
chmod 755 "$TEST_TMP" "$CACHE"
find "$CACHE" -mindepth 1 -type d -exec chmod 755 {} +
find "$CACHE" -type f -exec chmod 644 {} +
check "another user can read the loose metadata database" as_user "$OTHER" head -c 16 "$CACHE/meta.db"

mount_skyfs "$CONF" "$TEST_TMP/mnt" || die "cannot remount"
check_eq "the cache folder is 0700" 700 "$(stat -c %a "$CACHE")"
check_eq "every folder in the cache is 0700" "" "$(find "$CACHE" -type d ! -perm 700)"
check_eq "every file in the cache is 0600 (databases, -wal, -shm, block data)" "" \
    "$(find "$CACHE" -type f ! -perm 600)"
check "block data files were among them" bash -c "find '$CACHE/data' -type f -perm 600 | grep -q ."
check "meta.db-wal was among them" test "$(stat -c %a "$CACHE/meta.db-wal")" = 600
check_fails "another user cannot read the metadata database" as_user "$OTHER" head -c 16 "$CACHE/meta.db"
check "a file read after the remount" cmp "$TEST_TMP/data/f.bin" "$TEST_TMP/mnt/docs/f.bin"
echo new >"$TEST_TMP/mnt/docs/new.txt"
check_eq "files the daemon creates later are 0600 too" "" "$(find "$CACHE" -type f ! -perm 600)"
unmount_skyfs "$TEST_TMP/mnt"
