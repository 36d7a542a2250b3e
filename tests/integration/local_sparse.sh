#!/usr/bin/env bash
# local_sparse.sh - sparse files stay sparse, in the block cache and in a
# local cloud's folder after the upload.
#
# One byte written at 1 GiB through the mount: the cache file and the
# backing file both hold about one page of data, not 1 GiB of zeros
# (copy_file_range alone writes holes as zeros), and every byte reads
# back right: the byte at the end, zeros before it.  Then a file with
# data, a hole and data again, and a file that ends in a hole.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
CACHE="$TEST_TMP/cache"
DATA="$TEST_TMP/data"
write_local_config "$CONF" "$CACHE" "loc=$DATA"
GIB=$((1024 * 1024 * 1024))

# kib_used FILE: the KiB the file allocates on disk.
kib_used() { du -k "$1" | cut -f1; }

# small_on_disk FILE MAX_KIB: FILE allocates at most MAX_KIB (prints both).
small_on_disk() {
    local used
    used=$(kib_used "$1") || return 1
    echo "$1: $used KiB allocated (at most $2 allowed), apparent size $(stat -c %s "$1")"
    [ "$used" -le "$2" ]
}

# cache_file_of SIZE: the cache's data file with that apparent size.
cache_file_of() {
    find "$CACHE" -type f ! -name '*.db*' -size "$1"c | head -n 1
}

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"

check "write one byte at 1 GiB" \
    sh -c "printf Z | dd of='$MNT/loc/far' bs=1 seek=$GIB conv=notrunc status=none"
check_eq "the file is 1 GiB + 1 byte in the mount" "$((GIB + 1))" "$(stat -c %s "$MNT/loc/far")"
CF=$(cache_file_of $((GIB + 1)))
check "the block cache holds the file" test -n "$CF"
check "the block cache file stays sparse" small_on_disk "$CF" 1024
check_eq "the backing file is 1 GiB + 1 byte" "$((GIB + 1))" "$(stat -c %s "$DATA/far" 2>&1)"
check "the backing file stays sparse after the upload" small_on_disk "$DATA/far" 1024
check_eq "the last byte of the backing file" "Z" "$(tail -c 1 "$DATA/far")"
check "the backing file is zeros before it" \
    bash -c "head -c $GIB '$DATA/far' | cmp -s - <(head -c $GIB /dev/zero)"
check "the last bytes read back through the mount" \
    bash -c "tail -c 4097 '$MNT/loc/far' | cmp - <(head -c 4096 /dev/zero; printf Z)"

# data, a 64 MiB hole, data; then a file that ends in a hole (truncate up).
head -c 100000 /dev/urandom >"$TEST_TMP/a"
head -c 5000 /dev/urandom >"$TEST_TMP/b"
{ cat "$TEST_TMP/a"; head -c $((64 * 1024 * 1024)) /dev/zero; cat "$TEST_TMP/b"; } \
    >"$TEST_TMP/holey.expected"
check "write data, a 64 MiB hole, data" sh -c "
    cat '$TEST_TMP/a' >'$MNT/loc/holey' &&
    dd if='$TEST_TMP/b' of='$MNT/loc/holey' bs=1M seek=$((100000 + 64 * 1024 * 1024)) \
       oflag=seek_bytes conv=notrunc status=none"
check "the backing file has the bytes written, zeros in the hole" \
    cmp "$TEST_TMP/holey.expected" "$DATA/holey"
check "the backing file does not allocate the hole" small_on_disk "$DATA/holey" 2048
check "truncate a file up to 256 MiB (a hole at its end)" \
    sh -c "printf abc >'$MNT/loc/tail' && truncate -s 256M '$MNT/loc/tail'"
check_eq "the backing file is 256 MiB" "$((256 * 1024 * 1024))" "$(stat -c %s "$DATA/tail" 2>&1)"
check "the backing file does not allocate its trailing hole" small_on_disk "$DATA/tail" 1024
check_eq "its first bytes" "abc" "$(head -c 3 "$DATA/tail")"
# (a new file never written goes up at its release, right after its close)
check "an empty file uploads" sh -c ": >'$MNT/loc/empty'"
check "the backing file is there, empty" wait_until 10 \
    sh -c "test -f '$DATA/empty' && ! test -s '$DATA/empty'"
unmount_skyfs "$MNT"
