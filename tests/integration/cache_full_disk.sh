#!/usr/bin/env bash
# cache_full_disk.sh - another program fills the cache's file system while
# files wait for upload.
#
# The cache folder is a 64 MiB tmpfs (min_free = 0: no floor of the block
# cache's own), an S3 cloud (s3rver) writes back with write_back = async,
# a local cloud in sync.  The daemon keeps 16 MiB of the file system for
# its databases (<cache>/reserve, cache/reserve.h).
#   - filled once (dd until ENOSPC): the reserve goes to the databases and
#     the log says so; folders never listed list, files never cached read
#     right (straight from the cloud), files waiting for upload read back;
#     mkdir, chmod, rename and unlink work; a new file's bytes are refused
#     with ENOSPC; the waiting uploads reach the cloud, no conflict copy;
#   - filled again (the reserve's room taken too): an upload the cloud
#     takes but the cache cannot record (fsync fails) is not mistaken,
#     when tried again, for another machine's change: no conflict copy;
#     skyfs status says the file system is full;
#   - room again: writes work, the reserve is made again, and after
#     unmount the cloud holds every file with its bytes;
#   - kill -9 while the disk is full: the next mount (with room) uploads
#     what was waiting, with its bytes, and makes no conflict copy.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
CACHE="$TEST_TMP/cachefs"
DATA="$TEST_TMP/data/loc"
SRC="$TEST_TMP/src"
mkdir -p "$CACHE" "$SRC" "$DATA/sub"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_bucket full
mount_tmpfs "$CACHE" 64m skyfs-test-full

(umask 077 && cat >"$CONF" <<CONF
[cache]
dir = $CACHE/c
min_free = 0

$(s3rver_cloud s3 "$BUCKET_URL" full | sed "s|^endpoint = .*|endpoint = http://127.0.0.1:$S3PORT|")
write_back = async
write_back_delay = 20s
ttl = 1s

[loc]
type = local
path = $DATA
ttl = 1s
CONF
)
free_kib() { df -k --output=avail "$CACHE" | tail -n 1 | tr -d ' '; }
# fill NAME: another program takes every free byte of the cache's file
# system, in one step (fallocate): the daemon, which looks at the free
# space before its database writes (at most every 0.1 s), may give its
# reserve to its databases right after, but never while the other
# program still writes and would take that room too.  Then free space is
# nothing, or the reserve's 16 MiB.
fill() {
    fallocate -l "$(($(free_kib) * 1024))" "$CACHE/$1" || return 1
    sleep 0.3
    local kib
    kib=$(free_kib)
    [ "$kib" -lt 64 ] || { [ "$kib" -ge 16384 ] && [ "$kib" -lt $((16384 + 64)) ]; }
}
# take_rest NAME: another program takes what is left, the reserve's room
# too (dd until ENOSPC)
take_rest() {
    dd if=/dev/zero of="$CACHE/$1" bs=64k 2>/dev/null
    sync
    test "$(free_kib)" -lt 64
}
# cloud_holds KEY FILE: the bucket's object KEY has FILE's bytes
cloud_holds() { bucket_get "$1" | cmp -s "$2" -; }
conflict_copies() { bucket_keys | grep -c conflict; }

for f in a1 a2 a3 a4 r1 u1 new k1; do head -c $((RANDOM * 7 + 1000)) /dev/urandom >"$SRC/$f"; done
s3curl -X PUT --data-binary @"$SRC/r1" "$BUCKET_URL/remote/r1.bin" >/dev/null ||
    die "cannot put remote/r1.bin"
cp "$SRC/u1" "$DATA/sub/u1.bin"

mount_skyfs "$CONF" "$MNT" || die "cannot mount"
check_eq "the databases' reserve is kept (KiB)" 16384 "$(du -k "$CACHE/c/reserve" | cut -f1)"
for f in a1 a2 a3 a4; do check "s3: write $f (its upload waits)" cp "$SRC/$f" "$MNT/s3/$f"; done
check "loc: write l1" cp "$SRC/a1" "$MNT/loc/l1"

# ---- another program fills the file system --------------------------------
check "another program fills the cache's file system" fill fill1
check_eq "s3: a folder never listed lists" "r1.bin" "$(ls "$MNT/s3/remote" 2>&1)"
check "the log says the reserve went to the databases" \
    grep -q "file system is full: released the 16 MiB kept back" "$LOGS/mnt.log"
check_eq "loc: a folder never listed lists" "u1.bin" "$(ls "$MNT/loc/sub" 2>&1)"
check "s3: a file never cached reads right (from the cloud)" cmp "$SRC/r1" "$MNT/s3/remote/r1.bin"
check "loc: a file never cached reads right (from the cloud)" cmp "$SRC/u1" "$MNT/loc/sub/u1.bin"
check "the log says it read past the cache" \
    grep -q "reading \"sub/u1.bin\" straight from the cloud, without the cache" "$LOGS/mnt.log"
check "s3: a file waiting for upload reads back" cmp "$SRC/a2" "$MNT/s3/a2"
check "s3: mkdir" mkdir "$MNT/s3/made"
check "s3: chmod" chmod 600 "$MNT/s3/a3"
check_eq "s3: the mode shows" 600 "$(stat -c %a "$MNT/s3/a3")"
check "s3: rename a file waiting for upload" mv "$MNT/s3/a1" "$MNT/s3/a1m"
check "s3: unlink a file waiting for upload" rm "$MNT/s3/a2"
dd if="$SRC/new" of="$MNT/s3/new" bs=64k >"$LOGS/dd-new.out" 2>&1
check_eq "s3: a new file's bytes are refused (dd's exit status)" 1 "$?"
check "  with ENOSPC" grep -q 'No space left on device' "$LOGS/dd-new.out"
check "  and the log says the file system is full" \
    grep -q "block cache: the file system of $CACHE/c is full" "$LOGS/mnt.log"
check "skyfs status says the file system is full" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q 'its file system is full: the databases use the room'"
check "  and so does its JSON" bash -c \
    "'$SKYFS' status -c '$CONF' --json | grep -q '\"disk_full\":true'"
check "s3: fsync uploads a1m while the disk is full" \
    "$PYTHON" -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.fsync(fd)" "$MNT/s3/a1m"
check "  the cloud holds a1m" cloud_holds a1m "$SRC/a1"

# ---- the rest of the room goes too ----------------------------------------
check "another program takes the room left too" take_rest fill2
"$PYTHON" -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.fsync(fd)" "$MNT/s3/a3" \
    2>"$LOGS/fsync-a3.err"
check_eq "s3: fsync of a3 fails (the cache cannot record its upload)" 1 "$?"
check "  but the cloud took it" cloud_holds a3 "$SRC/a3"
check "  the log says why" grep -q 'upload failed, kept in the journal' "$LOGS/mnt.log"
check "s3: a file waiting for upload still reads back" cmp "$SRC/a4" "$MNT/s3/a4"
"$PYTHON" -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.fsync(fd)" "$MNT/s3/a3" \
    2>>"$LOGS/fsync-a3.err"
check_eq "s3: a second fsync of a3 fails too" 1 "$?"
check "  its upload knew the cloud's version as its own" grep -q \
    "\"a3\" holds this machine's own earlier upload, which the cache could not record" \
    "$LOGS/mnt.log"
check_eq "no conflict copy on the cloud" 0 "$(conflict_copies)"

# ---- room again ------------------------------------------------------------
rm -f "$CACHE/fill1" "$CACHE/fill2"
check "room again: a new file can be written (s3)" wait_until 10 cp "$SRC/new" "$MNT/s3/new"
check "room again: a new file can be written (loc)" cp "$SRC/new" "$MNT/loc/new"
check "  the local cloud holds it" cmp "$SRC/new" "$DATA/new"
# reserve_back: the reserve is whole again (the daemon looks when it
# writes its databases: a touch makes it write)
reserve_back() {
    touch "$MNT/loc/new"
    [ "$(du -k "$CACHE/c/reserve" 2>/dev/null | cut -f1)" = 16384 ]
}
check "the reserve is made again" wait_until 10 reserve_back
check "  the log says so" grep -q "has room again: 16 MiB kept back" "$LOGS/mnt.log"
check "skyfs status no longer says the file system is full" bash -c \
    "'$SKYFS' status -c '$CONF' --json | grep -q '\"disk_full\":false'"
unmount_skyfs "$MNT"
for f in a1m a3 a4 new; do
    src=$SRC/${f%m}
    check "after unmount the cloud holds $f" cloud_holds "$f" "$src"
done
check "  and not a2 (removed before its upload)" bucket_lacks a2
check "  and not a1 (renamed before its upload)" bucket_lacks a1
check_eq "  and no conflict copy" 0 "$(conflict_copies)"
check "  the folder made while the disk was full" bucket_has made/

# ---- kill -9 while the disk is full ---------------------------------------
mount_skyfs "$CONF" "$MNT" || die "cannot mount again"
check "s3: write k1 (its upload waits)" cp "$SRC/k1" "$MNT/s3/k1"
check "another program fills the file system" fill fill3
check "s3: k1 reads back" cmp "$SRC/k1" "$MNT/s3/k1"
daemon=$(daemon_pids "$MNT")
check "the daemon is running" test -n "$daemon"
# shellcheck disable=SC2086 # one pid or none
kill -9 $daemon
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
check "  k1 had not reached the cloud" bucket_lacks k1
rm -f "$CACHE/fill3"
# the same cache, a shorter settle delay: the next mount uploads at once
(umask 077 && sed 's/^write_back_delay = .*/write_back_delay = 0s/' "$CONF" >"$TEST_TMP/again.conf")
mount_skyfs "$TEST_TMP/again.conf" "$MNT" || die "cannot mount after the crash"
check "the next mount uploads k1" wait_until 30 cloud_holds k1 "$SRC/k1"
check "  it reads back" cmp "$SRC/k1" "$MNT/s3/k1"
unmount_skyfs "$MNT"
check_eq "no conflict copy on the cloud" 0 "$(conflict_copies)"
