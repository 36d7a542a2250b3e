#!/usr/bin/env bash
# cache_disk_fails.sh - the disk under the cache folder fails while mounted.
#
# The cache folder is on a loop-mounted ext4 image.  Twice, under a running
# daemon: the file system turns read-only after an error (ext4's
# errors=remount-ro, triggered through /sys/fs/ext4/DEV/trigger_fs_error,
# as a failing disk triggers it), and it is shut down (every read and
# write fails with EIO, as when a USB disk is pulled).  A cache that can
# write nothing cannot serve this mount (its entries are its inode table):
# what matters is how it fails and what is kept.
#   - every call returns within 10 s (no hang) with "Input/output error",
#     never "Structure needs cleaning" (before: EUCLEAN, and a log telling
#     the person the database file was damaged and would be set aside);
#   - the daemon lives, `skyfs status` answers, the log names the disk;
#   - another mount of the same bucket, its cache on a good disk, works;
#   - after `skyfs unmount`, the disk fixed (e2fsck) and mounted again,
#     a new mount uploads the file that was waiting, byte for byte, sets no
#     database aside as damaged and makes no conflict copy.
. "$(dirname "$0")/lib.sh"

command -v mkfs.ext4 >/dev/null && command -v e2fsck >/dev/null ||
    die "mkfs.ext4 or e2fsck is missing (e2fsprogs)"
start_bucket cd
IMG="$TEST_TMP/ext4.img"
DISK="$TEST_TMP/disk"
LOCAL="$TEST_TMP/data/local"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
OTHER="$TEST_TMP/other"
mkdir -p "$LOCAL"
make_image "$IMG" 256M mkfs.ext4 -q -F
mount_disk() { mount_image "$IMG" "$DISK" errors=remount-ro; }
mount_disk

for i in 1 2 3; do
    echo "local $i" >"$LOCAL/l$i.txt"
    s3curl -X PUT --data-binary "s3 $i" "$BUCKET_URL/s$i.txt" -o /dev/null || die "cannot put s$i.txt"
done
# config FILE CACHE DELAY
config() {
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2
min_free = 0

$(s3rver_cloud s3 "http://127.0.0.1:$S3PORT" cd)
write_back = async
write_back_delay = $3

[local]
type = local
path = $LOCAL
EOF
    )
}
config "$TEST_TMP/other.conf" "$TEST_TMP/other-cache" 0s
mount_skyfs "$TEST_TMP/other.conf" "$OTHER" || die "cannot mount the other mount"

# fails_with_eio CMD...: CMD returns within 10 s, fails, and says
# "Input/output error" (the kernel's EIO).
fails_with_eio() {
    local out rc
    out=$(timeout 10 "$@" 2>&1)
    rc=$?
    if [ $rc = 124 ]; then echo "hung: $*"; return 1; fi
    if [ $rc = 0 ]; then echo "succeeded: $*: $out"; return 1; fi
    case "$out" in
        *"Structure needs cleaning"*) echo "EUCLEAN: $out"; return 1 ;;
        *"Input/output error"*) return 0 ;;
        *) echo "not EIO (exit $rc): $out"; return 1 ;;
    esac
}

pend_on_cloud() { [ "$(s3curl "$BUCKET_URL/pend-$1.txt")" = "waiting ($1)" ]; }

for how in read-only shut-down; do
    rm -rf --one-file-system "${DISK:?}/cache"
    config "$CONF" "$DISK/cache" 1h
    mark=$(cat "$LOGS/mnt.log" 2>/dev/null | wc -l)
    mount_skyfs "$CONF" "$MNT" || die "cannot mount ($how)"
    check "$how: a file reads before the disk fails" test "$(cat "$MNT/s3/s1.txt")" = "s3 1"
    echo "waiting ($how)" >"$TEST_TMP/pend-$how"
    check "$how: a new file is written, its upload waiting" cp "$TEST_TMP/pend-$how" "$MNT/s3/pend-$how.txt"
    if [ "$how" = read-only ]; then
        dev=$(basename "$(findmnt -n -o SOURCE "$DISK")")
        [ -w "/sys/fs/ext4/$dev/trigger_fs_error" ] || die "no /sys/fs/ext4/$dev/trigger_fs_error"
        echo "cache_disk_fails.sh" >"/sys/fs/ext4/$dev/trigger_fs_error"
        check "the cache's file system is read-only now" bash -c \
            "! touch '$DISK/probe' 2>'$LOGS/probe.err' && grep -q 'Read-only file system' '$LOGS/probe.err'"
    else
        "$PYTHON" - "$DISK" <<'PY' || die "the shutdown ioctl failed on $DISK"
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.ioctl(fd, 0x8004587d, struct.pack("I", 1))     # FS_IOC_SHUTDOWN, log flushed
PY
    fi
    check "$how: a listing fails at once with EIO" fails_with_eio ls "$MNT/s3"
    check "$how: a read of a file never cached fails at once with EIO" fails_with_eio cat "$MNT/s3/s2.txt"
    check "$how: on the other cloud too" fails_with_eio cat "$MNT/local/l2.txt"
    check "$how: a new file fails at once with EIO" fails_with_eio cp "$TEST_TMP/pend-$how" "$MNT/local/new.txt"
    check "$how: mkdir fails at once with EIO" fails_with_eio mkdir "$MNT/local/d"
    check "$how: the daemon lives" test -n "$(daemon_pids "$MNT")"
    timeout 10 "$SKYFS" status -c "$CONF" >"$LOGS/status-$how.out" 2>&1
    check "$how: skyfs status answers within 10 s" test $? != 124 -a -s "$LOGS/status-$how.out"
    tail -n +$((mark + 1)) "$LOGS/mnt.log" >"$LOGS/mnt-$how.log"
    check "$how: the log says the cache's disk fails" grep -q "the cache folder's disk fails" "$LOGS/mnt-$how.log"
    check_fails "$how: and never that a database file is damaged" grep -q "the file is damaged" "$LOGS/mnt-$how.log"
    check_eq "$how: the other mount (its cache on a good disk) lists the bucket" "s1.txt s2.txt s3.txt" \
        "$(ls "$OTHER/s3" 2>&1 | grep '^s[0-9]' | tr '\n' ' ' | sed 's/ $//')"
    check_eq "$how: and reads" "s3 2" "$(cat "$OTHER/s3/s2.txt" 2>&1)"
    timeout 120 "$SKYFS" unmount "$MNT" >"$LOGS/unmount-$how.out" 2>&1
    check "$how: skyfs unmount returns and the mount is gone" bash -c "! mountpoint -q '$MNT'"
    umount "$DISK" 2>"$LOGS/umount-disk.out" || die "cannot unmount the failed disk: $(cat "$LOGS/umount-disk.out")"
    e2fsck -fy "$IMG" >"$LOGS/e2fsck-$how.out" 2>&1
    check "$how: the disk is fixed (e2fsck)" test $? -lt 4
    mount_disk
    config "$CONF" "$DISK/cache" 0s
    mount_skyfs "$CONF" "$MNT" || die "cannot mount after the disk was fixed ($how)"
    check "$how: the file that was waiting goes up, byte for byte" wait_until 30 pend_on_cloud "$how"
    check "$how: the mount reads again" test "$(cat "$MNT/s3/s2.txt" 2>&1)" = "s3 2"
    check_fails "$how: no database was set aside as damaged" test -e "$DISK/cache/damaged"
    unmount_skyfs "$MNT"
done
check_eq "no conflict copy on the bucket" "" \
    "$(s3curl "$BUCKET_URL?list-type=2" | grep -o '<Key>[^<]*conflict[^<]*</Key>')"
unmount_skyfs "$OTHER"
