#!/usr/bin/env bash
# cache_quota.sh - the cache folder is under a disk quota.
#
# A quota is not a full disk: statvfs shows the file system's free space,
# and writes fail with EDQUOT long before it is used up.  The cache folder
# here is a btrfs subvolume limited to 64 MiB (a qgroup, which binds root
# too) on a loop-mounted image; the cloud is a local folder holding files
# larger than the quota.
#   - a 50 MiB file reads right, twice: the block cache meets the quota,
#     keeps to what it allowed from then on (the log says so) and the rest
#     is read straight from the cloud.  Before, the daemon died (SIGBUS in
#     SQLite's shared memory, once the quota was used up) or every read
#     failed with "Disk quota exceeded" and the databases with I/O errors;
#   - small files, listings, mkdir, rename, skyfs status keep working;
#   - a 10 MiB file written through the mount reaches the cloud;
#   - another large file reads right (the cache evicts within its room);
#   - unmount, and a new mount with the same cache keeps to what the first
#     one learnt (<cache>/quota, shown by skyfs status) and reads right;
#   - a quota met first by a write (24 MiB, a 40 MiB file): ENOSPC, and
#     the mount goes on.
. "$(dirname "$0")/lib.sh"

command -v mkfs.btrfs >/dev/null || die "mkfs.btrfs is missing (run make deps: btrfs-progs)"
IMG="$TEST_TMP/btrfs.img"
FS="$TEST_TMP/btrfs"
DATA="$TEST_TMP/data"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
mkdir -p "$DATA/dir"
make_image "$IMG" 512M mkfs.btrfs -q -f
mount_image "$IMG" "$FS"
btrfs quota enable "$FS" && btrfs subvolume create "$FS/cache" >/dev/null &&
    btrfs qgroup limit 64M "$FS/cache" || die "cannot set a btrfs quota on $FS/cache"
btrfs subvolume create "$FS/small" >/dev/null && btrfs qgroup limit 24M "$FS/small" ||
    die "cannot set a btrfs quota on $FS/small"

head -c $((50 << 20)) /dev/urandom >"$DATA/big1"
head -c $((40 << 20)) /dev/urandom >"$DATA/big2"
for i in 1 2 3; do echo "small $i" >"$DATA/dir/s$i.txt"; done
head -c $((10 << 20)) /dev/urandom >"$TEST_TMP/new.bin"
(umask 077 && cat >"$CONF" <<CONF
[cache]
dir = $FS/cache/c
min_free = 0

[c]
type = local
path = $DATA
CONF
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount"

alive() { mountpoint -q "$MNT" && ls "$MNT/c" >/dev/null; }
check "a 50 MiB file reads right through a 64 MiB quota" cmp "$DATA/big1" "$MNT/c/big1"
check "and again" cmp "$DATA/big1" "$MNT/c/big1"
check "the daemon is alive" alive
check "the log says the cache folder is under a quota" \
    grep -q "is under a disk quota, now exceeded: the cache keeps to" "$LOGS/mnt.log"
check_eq "a small file reads" "small 1" "$(cat "$MNT/c/dir/s1.txt" 2>&1)"
check_eq "a folder lists" "s1.txt s2.txt s3.txt" "$(ls "$MNT/c/dir" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check "mkdir works" mkdir "$MNT/c/made"
check "rename works" mv "$MNT/c/dir/s3.txt" "$MNT/c/made/s3.txt"
check_eq "the cloud has the rename" "small 3" "$(cat "$DATA/made/s3.txt" 2>&1)"
check "a 10 MiB file is written through the mount" cp "$TEST_TMP/new.bin" "$MNT/c/new.bin"
check "and is on the cloud" cmp "$TEST_TMP/new.bin" "$DATA/new.bin"
check "another large file reads right" cmp "$DATA/big2" "$MNT/c/big2"
check "the first one still reads right" cmp "$DATA/big1" "$MNT/c/big1"
check "skyfs status says the quota ran out" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q 'its folder is under a disk quota, which ran out: the cache keeps to [0-9]* MiB'"
check "skyfs status --json gives the size the cache keeps to" bash -c \
    "'$SKYFS' status -c '$CONF' --json | grep -Eq '\"quota_cap\":[0-9]+,?[}]' && '$SKYFS' status -c '$CONF' --json | grep -q '\"disk_full\":false'"
check "the daemon is still alive" alive
check_fails "no database error in the log" grep -Eq "disk I/O error|database (disk image )?is malformed" "$LOGS/mnt.log"
unmount_skyfs "$MNT"
[ -n "${QDEBUG:-}" ] && { sync; btrfs qgroup show -re "$FS" >"$LOGS/qgroup.out" 2>&1; du -a "$FS/cache/c" >>"$LOGS/qgroup.out"; }

mount_skyfs "$CONF" "$MNT" || die "cannot mount again"
check "a new mount keeps to the quota the first one met (its log says so)" \
    grep -q "an earlier mount met its disk quota: the block cache keeps to" "$LOGS/mnt.log"
check "after a new mount, the large files read right" \
    bash -c "cmp '$DATA/big1' '$MNT/c/big1' && cmp '$DATA/big2' '$MNT/c/big2'"
check "and the written one" cmp "$TEST_TMP/new.bin" "$MNT/c/new.bin"
check "the daemon is alive" alive
check_eq "it never ran into the quota again" 1 \
    "$(grep -c 'is under a disk quota, now exceeded' "$LOGS/mnt.log")"
unmount_skyfs "$MNT"
rm "$FS/cache/c/quota"
check "without its note of the quota, skyfs status says nothing of it" bash -c \
    "'$SKYFS' status -c '$CONF' --json | grep -q '\"quota_cap\":null'"

# --- a quota met first by a write: a 40 MiB file into a cache folder of
# 24 MiB fails with ENOSPC (what is dirty cannot be evicted), and the
# daemon, its databases and the rest of the mount go on
CONF2="$TEST_TMP/small.conf"
MNT2="$TEST_TMP/mnt2"
(umask 077 && sed "s|^dir = .*|dir = $FS/small/c|" "$CONF" >"$CONF2")
mount_skyfs "$CONF2" "$MNT2" || die "cannot mount on the small quota"
head -c $((40 << 20)) /dev/urandom >"$TEST_TMP/w40.bin"
check "a 40 MiB write into a 24 MiB quota fails: no space left" bash -c \
    "! cp '$TEST_TMP/w40.bin' '$MNT2/c/w40.bin' 2>'$LOGS/cp40.err' && grep -q 'No space left on device' '$LOGS/cp40.err'"
check "the daemon is alive" bash -c "mountpoint -q '$MNT2' && ls '$MNT2/c' >/dev/null"
check_eq "a small file reads" "small 2" "$(cat "$MNT2/c/dir/s2.txt" 2>&1)"
check "skyfs status answers" "$SKYFS" status -c "$CONF2"
check_fails "no database error in its log" grep -Eq "disk I/O error|database (disk image )?is malformed" "$LOGS/mnt2.log"
unmount_skyfs "$MNT2"
