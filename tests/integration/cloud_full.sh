#!/usr/bin/env bash
# cloud_full.sh - a cloud with no room left: a local cloud whose folder is
# on an 8 MiB tmpfs that another program has nearly filled.
#   - write_back = sync: the writer's close fails with ENOSPC, and the log
#     names the cloud and the file;
#   - write_back = async: close succeeds, the upload fails and is retried;
#   - either way the file reads back through the mount with its bytes,
#     skyfs status counts both pending, and the cloud's folder holds no
#     half-written file;
#   - once the other program frees room, both uploads go through by
#     themselves, and unmount leaves nothing pending.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
CLOUDFS="$TEST_TMP/cloudfs"
SRC="$TEST_TMP/src"
mkdir -p "$CLOUDFS" "$SRC"
mount_tmpfs "$CLOUDFS" 8m skyfs-test-cloud
mkdir -p "$CLOUDFS/sy" "$CLOUDFS/as"
write_local_config "$CONF" "$TEST_TMP/cache" "sy=$CLOUDFS/sy" "as=$CLOUDFS/as"
sed -i '/^path = .*\/as$/a write_back = async\nwrite_back_delay = 0s' "$CONF"
head -c $((5 << 20)) /dev/urandom >"$CLOUDFS/filler"      # another program's file
head -c $((4 << 20)) /dev/urandom >"$SRC/one"
head -c $((4 << 20)) /dev/urandom >"$SRC/two"
# pending: the count skyfs status gives
pending() { "$SKYFS" status -c "$CONF" | sed -n 's/.* \([0-9]*\) pending upload(s).*/\1/p'; }

mount_skyfs "$CONF" "$MNT" || die "cannot mount"
cp "$SRC/one" "$MNT/sy/one" 2>"$LOGS/cp-sync.err"
check_eq "sync: cp of 4 MiB into 3 MiB of room fails" 1 "$?"
check "  at close, with ENOSPC" grep -q "failed to close.*No space left on device" "$LOGS/cp-sync.err"
check "  the log names the cloud and the file" \
    grep -q "local cloud 'sy': write \"one\": No space left on device" "$LOGS/mnt.log"
check "async: cp of 4 MiB succeeds (the upload comes later)" cp "$SRC/two" "$MNT/as/two"
check "  its upload fails and stays in the journal" wait_until 10 grep -q \
    "upload of \"two\" to cloud 'as' failed, kept in the journal and retried: local cloud 'as': write \"two\": No space left on device" \
    "$LOGS/mnt.log"
check "sync: the file reads back through the mount" cmp "$SRC/one" "$MNT/sy/one"
check "async: the file reads back through the mount" cmp "$SRC/two" "$MNT/as/two"
check_eq "skyfs status counts both pending" 2 "$(pending)"
check_eq "the cloud's folders hold no half-written file" "" \
    "$(ls -A "$CLOUDFS/sy" "$CLOUDFS/as" | grep -v ':$' | grep -v '^$')"

rm "$CLOUDFS/filler"                    # the other program frees its room
check "sync: once there is room the upload goes through" \
    wait_until 60 cmp -s "$SRC/one" "$CLOUDFS/sy/one"
check "async: once there is room the upload goes through" \
    wait_until 60 cmp -s "$SRC/two" "$CLOUDFS/as/two"
check "skyfs status counts none pending" wait_until 10 test "$(pending)" = 0
unmount_skyfs "$MNT"
