#!/usr/bin/env bash
# cache_random.sh - random reads of a large object fetch only what they
# need.
#
# A local cloud holds a 1 GiB sparse file with a known pattern at a few
# offsets.  Reading 4 KiB at three of them through the mount returns the
# right bytes, and afterwards the block cache holds less than 1 MiB for
# the file (by `skyfs cache stats` and by the disk space of its cache
# file), not three 4 MiB blocks.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
CACHE="$TEST_TMP/cache"
DATA="$TEST_TMP/data/alpha"
write_local_config "$CONF" "$CACHE" "alpha=$DATA"

OFFSETS="104870001 541077504 943718395"
truncate -s 1G "$DATA/big.bin"
for off in $OFFSETS; do
    printf 'pattern at %s;' "$off" |
        dd of="$DATA/big.bin" bs=4096 seek="$off" oflag=seek_bytes conv=notrunc status=none
done

# expected OFF: the 4096 bytes at OFF: the pattern, then zeros.
expected() {
    { printf 'pattern at %s;' "$1"; head -c 4096 /dev/zero; } | head -c 4096
}

# read_at OFF: 4096 bytes at OFF through the mount.
read_at() {
    dd if="$MNT/alpha/big.bin" bs=4096 skip="$1" count=1 iflag=skip_bytes status=none
}

# cached_mib: the block cache's "bytes cached" figure, in MiB.
cached_mib() {
    "$SKYFS" cache stats -c "$CONF" | awk '$1 == "bytes" && $2 == "cached" { print $3 }'
}

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
check_eq "the file is 1 GiB" $((1 << 30)) "$(stat -c %s "$MNT/alpha/big.bin" 2>&1)"
for off in $OFFSETS; do
    check "4 KiB at $off are the pattern and zeros" \
        cmp <(expected "$off") <(read_at "$off")
done
mib=$(cached_mib)
check "cache stats: less than 1 MiB cached after three 4 KiB reads (got '$mib' MiB)" \
    awk -v m="$mib" 'BEGIN { exit !(m != "" && m + 0 < 1) }'
kib=$(du -sk "$CACHE/data" | awk '{ print $1 }')
check "the cache files take less than 1 MiB of disk (got '$kib' KiB)" \
    test -n "$kib" -a "$kib" -lt 1024
"$SKYFS" cache stats -c "$CONF" >"$LOGS/stats.txt" 2>&1
check "cache stats: four blocks (one read straddles two), each held in part" \
    grep -Eq '^blocks present +4 of 4096 KiB \(4 of them in part\)' "$LOGS/stats.txt"
unmount_skyfs "$MNT"

# After a remount the chunks are still there and still right.
mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF again"
for off in $OFFSETS; do
    check "after remount, 4 KiB at $off still right" cmp <(expected "$off") <(read_at "$off")
done
check_eq "after remount, still the same bytes cached" "$mib" "$(cached_mib)"
unmount_skyfs "$MNT"
