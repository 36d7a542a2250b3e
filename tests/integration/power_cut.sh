#!/usr/bin/env bash
# power_cut.sh - the cache's disk loses its power: no acknowledged write is lost.
#
# kill -9 (crash_journal.sh, writeback_*) kills the daemon but keeps the
# kernel's page cache, so whatever the daemon wrote reaches the disk in
# the end, synced or not.  A power cut loses every write the disk was not
# made to keep.  Here the cache folder is on an ext4 image, loop-mounted,
# and the cut is the file system's shutdown ioctl without a log flush
# (FS_IOC_SHUTDOWN, NOLOGFLUSH; xfstests' "godown"): from that moment the
# file system writes nothing, and after a remount it holds exactly what
# was synced.  The daemon is stopped (SIGSTOP) the instant before, and
# killed after, as a power cut would.  The clouds (s3rver; a local folder
# off the image) are elsewhere: they keep what they were sent.
#   1. nothing uploaded yet (write_back_delay = 1h), on an async S3 cloud
#      and an async local one: new files in new folders (1 KiB to 9 MiB),
#      an append to a file on the cloud, a write into the middle of a
#      large one, a new file renamed, chmod of a new file, a symlink, an
#      unlink.  After the cut and a new mount, every change reaches the
#      cloud, byte for byte.
#   2. uploads running: a writer on each cloud (and an async Azure
#      container, Azurite) creates files (some under a
#      temporary name, renamed), appends a line to one log file after each,
#      and notes every close and rename that returned; the power goes out
#      under it.  After a new mount, every file and line it was told were
#      written is on the cloud, with its bytes.
#   3. the power goes out right after two uploads (a new file, an append):
#      their answers were not synced yet, but the versions they made were
#      noted before they went out, so the next mount knows them for its
#      own and makes no conflict copy; a local cloud on the same disk
#      (the power goes for it too) still holds what was uploaded to it;
#      the same on a write_back = sync cloud, whose closes uploaded.
#   A canary written to the image without a sync is gone after each cut:
#   the cut really lost what was not synced.
. "$(dirname "$0")/lib.sh"

command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 is missing (e2fsprogs)"
start_bucket pc
AZPORT=$(free_port)
AZURL="http://127.0.0.1:$AZPORT/$AZURITE_ACCOUNT"
start_azurite "$TEST_TMP/azurite" "$AZPORT" || die "cannot start Azurite"
SAS=$(azurite_sas)
curl -sf -X PUT "$AZURL/pcut?restype=container&$SAS" -o /dev/null || die "cannot create container pcut"
IMG="$TEST_TMP/ext4.img"
DISK="$TEST_TMP/disk"
LOCAL="$TEST_TMP/data/local"
LSYNC="$TEST_TMP/data/lsync"         # write_back = sync
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
SRC="$TEST_TMP/src"
S3DIR="$TEST_TMP/s3rver/pc"          # s3rver's own files: KEY._S3rver_object
WRITER="$SKY_ROOT/tests/integration/power_writer.py"
mkdir -p "$LOCAL" "$LSYNC" "$SRC"
make_image "$IMG" 512M mkfs.ext4 -q -F
mount_disk() { mount_image "$IMG" "$DISK"; }
mount_disk
mkdir -p "$DISK/cloud"        # a local cloud on the disk that loses its power

# config DELAY: both clouds async, their uploads settling for DELAY.
config() {
    (umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $DISK/cache
min_free = 0

$(s3rver_cloud s3 "http://127.0.0.1:$S3PORT" pc)
write_back = async
write_back_delay = $1

[local]
type = local
path = $LOCAL
write_back = async
write_back_delay = $1

[disk]
type = local
path = $DISK/cloud
write_back = async
write_back_delay = $1

[lsync]
type = local
path = $LSYNC

[az]
type = azure
endpoint = $AZURL
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
container = pcut
write_back = async
write_back_delay = $1
EOF
    )
}

# all_stopped PID...: every thread of each process is stopped (state T).
all_stopped() {
    local p t state
    for p in "$@"; do
        for t in /proc/"$p"/task/*; do
            state=$(sed 's/^.*) //' "$t/stat" 2>/dev/null | cut -c1)
            [ "$state" = T ] || [ "$state" = t ] || return 1
        done
    done
}

# power_cut: SIGSTOP the daemon, shut the cache's file system down without
# flushing anything, SIGKILL the daemon, drop the dead mount, and remount
# the file system (its journal replayed, as at the next boot).  Checks that
# a canary written without a sync just before is gone.
power_cut() {
    local pids p
    pids=$(daemon_pids "$MNT")
    [ -n "$pids" ] || die "no daemon serves $MNT"
    # shellcheck disable=SC2086
    kill -STOP $pids
    # every thread stopped, none left inside a sync that would commit what
    # follows (a thread in a system call stops when it returns)
    wait_until 20 all_stopped $pids || die "the daemon's threads did not stop"
    echo "written, never synced" >"$DISK/canary"
    "$PYTHON" - "$DISK" <<'PY' || die "the shutdown ioctl failed on $DISK"
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
# FS_IOC_SHUTDOWN = _IOR('X', 125, __u32); 2 = FS_SHUTDOWN_FLAGS_NOLOGFLUSH
fcntl.ioctl(fd, 0x8004587d, struct.pack("I", 2))
PY
    # shellcheck disable=SC2086
    kill -KILL $pids
    for p in $pids; do
        wait_until 20 bash -c "! kill -0 $p 2>/dev/null" || die "daemon $p did not die"
    done
    fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    umount "$DISK" 2>"$LOGS/umount-disk.out" || die "cannot unmount the shut-down disk: $(cat "$LOGS/umount-disk.out")"
    mount_disk
    check_fails "the power cut lost what was not synced (a canary)" grep -q written "$DISK/canary"
}

on_s3() { cmp -s "$1" "$S3DIR/$2._S3rver_object"; }
on_disk() { cmp -s "$1" "$DISK/cloud/$2"; }
on_lsync() { cmp -s "$1" "$LSYNC/$2"; }
on_s3_and_local() { on_s3 "$@" && on_local "$@"; }
# on_cloud CLOUD FILE KEY: KEY on CLOUD holds FILE's bytes, within 60 s
on_cloud() { wait_until 60 "on_$1" "$2" "$3"; }
# holds_both CLOUD OLD: CLOUD holds the last cut's new file, and old.txt
# with OLD's bytes
holds_both() { "on_$1" "$SRC/s4" new/up.txt && "on_$1" "$2" old.txt; }
on_local() { cmp -s "$1" "$LOCAL/$2"; }
s3_mode() { bucket_header "$1" x-amz-meta-mode | tr -d '\r'; }

# --- 1. nothing uploaded yet ------------------------------------------------
head -c 5000 /dev/urandom >"$SRC/old.txt"
head -c $((12 << 20)) /dev/urandom >"$SRC/big-old.bin"
echo "to be removed" >"$SRC/gone.txt"
for f in old.txt big-old.bin gone.txt; do
    s3curl -X PUT --data-binary "@$SRC/$f" "$BUCKET_URL/$f" -o /dev/null || die "cannot put $f on s3rver"
    cp "$SRC/$f" "$LOCAL/$f"
done
config 1h
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
# the expected results, made on local disk the same way
cp "$SRC/old.txt" "$SRC/old.want"; echo "appended after the mount" >>"$SRC/old.want"
cp "$SRC/big-old.bin" "$SRC/big.want"; head -c 70000 /dev/urandom >"$SRC/patch"
dd if="$SRC/patch" of="$SRC/big.want" bs=1 seek=$((5 << 20)) conv=notrunc status=none
for n in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do head -c $((n * 997)) /dev/urandom >"$SRC/s$n"; done
head -c $((300 << 10)) /dev/urandom >"$SRC/mid"
head -c $((9 << 20)) /dev/urandom >"$SRC/large"
for c in s3 local; do
    d="$MNT/$c"
    check "$c: new files in new folders, closes returned" bash -c "
        mkdir -p '$d/new/deep/er' && for n in \$(seq 20); do cp '$SRC/s'\$n '$d/new/deep/er/s'\$n; done &&
        cp '$SRC/mid' '$d/new/mid' && cp '$SRC/large' '$d/new/large' && cp '$SRC/s2' '$d/new/s2'"
    check "$c: an append to a file on the cloud" bash -c "echo 'appended after the mount' >>'$d/old.txt'"
    check "$c: a write into the middle of a 12 MiB file on the cloud" \
        dd if="$SRC/patch" of="$d/big-old.bin" bs=70000 seek=$((5 << 20)) oflag=seek_bytes conv=notrunc status=none
    check "$c: a new file renamed" bash -c "cp '$SRC/s1' '$d/new/tmp' && mv '$d/new/tmp' '$d/new/renamed'"
    check "$c: chmod 640 of a new file" chmod 640 "$d/new/mid"
    check "$c: a symlink" ln -s new/mid "$d/link"
    check "$c: an unlink of a file on the cloud" rm "$d/gone.txt"
done
check "nothing new reached the clouds before the cut" bash -c \
    "! test -e '$LOCAL/new' && ! test -e '$S3DIR/new/mid._S3rver_object' && cmp -s '$SRC/old.txt' '$LOCAL/old.txt'"
# the last changes are made durable within the commit interval (5 s)
sleep 7
power_cut
config 0s
mount_skyfs "$CONF" "$MNT" || die "cannot mount after the power cut"
for n in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    check "s3 and local: new/deep/er/s$n is on the cloud after the cut" \
        wait_until 60 on_s3_and_local "$SRC/s$n" new/deep/er/s$n
done
for c in s3 local; do
    check "$c: the 300 KiB file is on the cloud" on_cloud $c "$SRC/mid" new/mid
    check "$c: the 9 MiB file is on the cloud" on_cloud $c "$SRC/large" new/large
    check "$c: the append is on the cloud" on_cloud $c "$SRC/old.want" old.txt
    check "$c: the write into the 12 MiB file is on the cloud" on_cloud $c "$SRC/big.want" big-old.bin
    check "$c: a rename made 7 s before the cut is on the cloud" on_cloud $c "$SRC/s1" new/renamed
    check_fails "$c: and nothing is left under the old name" "on_$c" "$SRC/s1" new/tmp
    check_eq "$c: the unlinked file is gone" "" "$(ls "$MNT/$c" | grep -x gone.txt)"
    check_eq "$c: the symlink reads" "new/mid" "$(readlink "$MNT/$c/link" 2>&1)"
done
check_eq "local: a chmod made 7 s before the cut is on the cloud" 640 "$(stat -c %a "$LOCAL/new/mid" 2>&1)"
check_eq "local: a symlink made 7 s before the cut is on the cloud" "new/mid" "$(readlink "$LOCAL/link" 2>&1)"
check "local: the unlinked file is gone from the cloud" test ! -e "$LOCAL/gone.txt"
check "s3: the unlinked file is gone from the cloud" bucket_lacks gone.txt
check_eq "s3: a chmod made 7 s before the cut is on the cloud" "100640" "$(printf '%o' "$(s3_mode new/mid)" 2>&1)"
check "s3: a symlink made 7 s before the cut is on the cloud" bucket_has link
check "the mount reads the files back" bash -c "cmp '$SRC/large' '$MNT/s3/new/large' && cmp '$SRC/big.want' '$MNT/local/big-old.bin'"
unmount_skyfs "$MNT"

# --- 1b. the power goes out right after a directory's fsync and a close ----
# A rename, chmod and symlink followed by fsync of the folder are safe at
# once; a file's mode and times set on its descriptor before the close
# (GNU tar does this) are as safe as its bytes once the close returns
# (those closes come last: nothing syncs after them).
config 1h
mount_skyfs "$CONF" "$MNT" || die "cannot mount for the fsync test"
for c in s3 local; do
    check "$c: a rename, a chmod and a symlink, then fsync of their folders" bash -c "
        mv '$MNT/$c/new/s2' '$MNT/$c/new/s2-renamed' && chmod 604 '$MNT/$c/new/large' &&
        ln -s new/large '$MNT/$c/link2' &&
        '$PYTHON' -c 'import os, sys
for d in sys.argv[1:]:
    fd = os.open(d, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)' '$MNT/$c' '$MNT/$c/new'"
done
for c in s3 local; do
    check "$c: a new file, fchmod 600 and futimens to 2001 on its descriptor, closed" \
        "$PYTHON" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, open(sys.argv[2], "rb").read())
os.fchmod(fd, 0o600)
os.utime(fd, (978307200, 978307200))
os.close(fd)' "$MNT/$c/new/attrs" "$SRC/s3"
    check "$c: a file on the cloud appended to, fchmod 640 and futimens to 2002, closed" \
        "$PYTHON" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, b"appended\n")
os.fchmod(fd, 0o640)
os.utime(fd, (1009843200, 1009843200))
os.close(fd)' "$MNT/$c/new/deep/er/s5"
done
cp "$SRC/s5" "$SRC/s5.want"; echo appended >>"$SRC/s5.want"
power_cut
config 0s
mount_skyfs "$CONF" "$MNT" || die "cannot mount after the power cut"
for c in s3 local; do
    check "$c: the file whose attributes were set before its close is on the cloud" on_cloud $c "$SRC/s3" new/attrs
    check "$c: the rename followed by fsync of the folder is on the cloud" on_cloud $c "$SRC/s2" new/s2-renamed
    check_fails "$c: and nothing is left under the old name" "on_$c" "$SRC/s2" new/s2
    check_eq "$c: the symlink followed by fsync of the folder reads" "new/large" "$(readlink "$MNT/$c/link2" 2>&1)"
done
check_eq "local: the mode and mtime set before the close are on the cloud" "600 978307200" \
    "$(stat -c '%a %Y' "$LOCAL/new/attrs" 2>&1)"
check "local: the append to a file of the cloud is on the cloud" on_cloud local "$SRC/s5.want" new/deep/er/s5
check_eq "local: with the mode and mtime set before its close" "640 1009843200" \
    "$(stat -c '%a %Y' "$LOCAL/new/deep/er/s5" 2>&1)"
check_eq "local: the chmod followed by fsync of the folder is on the cloud" 604 "$(stat -c %a "$LOCAL/new/large" 2>&1)"
check_eq "local: the symlink followed by fsync of the folder is on the cloud" "new/large" "$(readlink "$LOCAL/link2" 2>&1)"
check_eq "s3: the mode and mtime set before the close are on the cloud" "100600 978307200" \
    "$(printf '%o' "$(s3_mode new/attrs)" 2>&1) $(bucket_header new/attrs x-amz-meta-mtime | tr -d '\r' | cut -d. -f1)"
check "s3: the append to a file of the cloud is on the cloud" on_cloud s3 "$SRC/s5.want" new/deep/er/s5
check_eq "s3: with the mode and mtime set before its close" "100640 1009843200" \
    "$(printf '%o' "$(s3_mode new/deep/er/s5)" 2>&1) $(bucket_header new/deep/er/s5 x-amz-meta-mtime | tr -d '\r' | cut -d. -f1)"
check_eq "s3: the chmod followed by fsync of the folder is on the cloud" "100604" "$(printf '%o' "$(s3_mode new/large)" 2>&1)"
check "s3: the symlink followed by fsync of the folder is on the cloud" bucket_has link2
unmount_skyfs "$MNT"

# --- 2. the power goes out under a writer, uploads running -------------------
config 300ms
mount_skyfs "$CONF" "$MNT" || die "cannot mount for the writers"
mkdir -p "$MNT/s3/w" "$MNT/local/w" "$MNT/az/w" || die "cannot make the writers' folders"
"$PYTHON" "$WRITER" write "$MNT/s3/w" "$TEST_TMP/ack-s3" 1 2>"$LOGS/writer-s3.err" &
w1=$!
"$PYTHON" "$WRITER" write "$MNT/local/w" "$TEST_TMP/ack-local" 2 2>"$LOGS/writer-local.err" &
w2=$!
"$PYTHON" "$WRITER" write "$MNT/az/w" "$TEST_TMP/ack-az" 3 2>"$LOGS/writer-az.err" &
w3=$!
wait_until 60 bash -c "[ \$(cat '$TEST_TMP/ack-s3' 2>/dev/null | grep -c ^file) -ge 40 ] &&
                       [ \$(cat '$TEST_TMP/ack-local' 2>/dev/null | grep -c ^file) -ge 40 ] &&
                       [ \$(cat '$TEST_TMP/ack-az' 2>/dev/null | grep -c ^file) -ge 40 ]" ||
    die "the writers did not write 40 files each within 60 s"
check "uploads were running when the power went out (some files on the cloud)" \
    wait_until 30 bash -c "ls '$LOCAL/w' | grep -q '^f.*\.bin$' && ls '$S3DIR/w' | grep -q '^f.*\.bin\._S3rver_object$'"
power_cut
wait "$w1" "$w2" "$w3"
check "the writers stopped with the daemon" bash -c "! kill -0 $w1 2>/dev/null && ! kill -0 $w2 2>/dev/null && ! kill -0 $w3 2>/dev/null"
config 0s
mount_skyfs "$CONF" "$MNT" || die "cannot mount after the second power cut"
unmount_skyfs "$MNT"     # waits for the journal's uploads
check "s3: every acknowledged file and appended line is on the cloud, byte for byte" \
    "$PYTHON" "$WRITER" check "$S3DIR/w" ._S3rver_object "$TEST_TMP/ack-s3" 1
check "local: every acknowledged file and appended line is on the cloud, byte for byte" \
    "$PYTHON" "$WRITER" check "$LOCAL/w" "" "$TEST_TMP/ack-local" 2
# Azurite's blobs, fetched straight from it into a folder for the checker
mkdir -p "$TEST_TMP/az-w"
az_names=$(curl -sf "$AZURL/pcut?restype=container&comp=list&prefix=w/&$SAS" |
    grep -o '<Name>w/[^<]*</Name>' | sed 's#<Name>w/##; s#</Name>##')
for n in $az_names; do
    curl -sf "$AZURL/pcut/w/$n?$SAS" -o "$TEST_TMP/az-w/$n" || echo "cannot fetch w/$n" >>"$LOGS/az-fetch.err"
done
check "azure: every acknowledged file and appended line is on the cloud, byte for byte" \
    "$PYTHON" "$WRITER" check "$TEST_TMP/az-w" "" "$TEST_TMP/ack-az" 3
check_eq "azure: the writer's files made no conflict copy" "" "$(echo "$az_names" | grep conflict)"
for c in s3 local; do
    check_eq "$c: the writer's files made no conflict copy" "" \
        "$(ls "$( [ $c = s3 ] && echo "$S3DIR/w" || echo "$LOCAL/w")" | grep conflict)"
done

# --- 3. the power goes out right after uploads, before their answers were
# synced: the next mount's journal sees versions it did not record; it must
# know them for its own (noted, durably, before they went out), not keep
# its content beside them as conflict copies.
# The local cloud "disk" is on the image too: an upload to it must be on
# its disk when it returns (the block cache then forgets it was pending).
cp "$SRC/old.txt" "$DISK/cloud/old.txt" && mkdir -p "$DISK/cloud/new" && sync
cp "$SRC/old.txt" "$LSYNC/old.txt" && mkdir -p "$LSYNC/new"
cp "$SRC/old.txt" "$SRC/old.disk"; echo 'one more line' >>"$SRC/old.disk"
config 0s
mount_skyfs "$CONF" "$MNT" || die "cannot mount for the last cut"
for c in s3 local disk lsync; do
    check "$c: a new file and an append to a file on the cloud" bash -c \
        "cp '$SRC/s4' '$MNT/$c/new/up.txt' && echo 'one more line' >>'$MNT/$c/old.txt'"
done
cp "$SRC/old.want" "$SRC/old.want2"; echo 'one more line' >>"$SRC/old.want2"
for c in s3 local; do
    check "$c: both are on the cloud" wait_until 60 holds_both $c "$SRC/old.want2"
done
check "disk: both are on the cloud" wait_until 60 holds_both disk "$SRC/old.disk"
check "disk: their uploads are done (nothing pending)" wait_until 30 bash -c \
    "awk '\$1 ~ /^skyfs_upload_pending_files/ { s += \$2 } END { exit s != 0 }' '$MNT/.skyfs/metrics'"
power_cut
for c in s3 local; do
    check "$c: after the cut the cloud still holds both" holds_both $c "$SRC/old.want2"
done
check "disk: after the cut its disk still holds both (synced by the upload)" \
    holds_both disk "$SRC/old.disk"
check "lsync (write_back = sync): both were on the cloud when their closes returned" \
    holds_both lsync "$SRC/old.disk"
mount_skyfs "$CONF" "$MNT" || die "cannot mount after the last cut"
unmount_skyfs "$MNT"
check "lsync: and after a new mount" holds_both lsync "$SRC/old.disk"
check_eq "no conflict copy on any cloud" "" \
    "$(find "$LOCAL" "$S3DIR" "$DISK/cloud" "$LSYNC" -name '*conflict*' | sed "s#^$TEST_TMP/##")"
check_fails "the log reports no conflict" grep -q "conflict:" "$LOGS/mnt.log"
check_fails "no database error in the log" grep -Eq "database (disk image )?is malformed|disk I/O error" "$LOGS/mnt.log"
