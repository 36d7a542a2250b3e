#!/usr/bin/env bash
# unmount_pending.sh - `skyfs unmount` tries every pending upload once more
# and says so when some could not be made.
#
# An upload that failed (the server answered 500) stays in the journal and
# is retried later, backing off up to 5 minutes.  Before, an unmount in
# that time stopped the daemon without another try and returned 0: the
# file stayed in the cache, the cloud did not have it, and nothing said
# so.  Now the daemon makes one last pass over the journal before it
# exits, and when uploads are still left `skyfs unmount` names them and
# exits 1.
#
# Round 1 (write_back = sync): the server refuses PUTs of later.txt, so
# its close fails and the journal keeps it; then the server takes PUTs
# again, and an unmount right away uploads it (the old binary left it
# behind: the journal's next try was seconds away).
# Round 2: the server refuses every PUT of stuck.txt through the unmount:
# exit status 1, a message that counts it, `skyfs status` too; the next
# mount with the server healthy uploads it.
. "$(dirname "$0")/lib.sh"

start_bucket later
FAULTS="$TEST_TMP/faults"
mkdir -p "$FAULTS"
: >"$FAULTS/rules"
PROXYPORT=$(free_port)
start_fault_proxy "$PROXYPORT" "$S3PORT" || die "cannot start fault_proxy.py"
MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
SYNC_CONF="$TEST_TMP/sync.conf"
write_s3_config "$SYNC_CONF" "http://127.0.0.1:$PROXYPORT" "$BUCKET" "retries = 0"
write_s3_config "$CONF" "http://127.0.0.1:$PROXYPORT" "$BUCKET" \
    "write_back = async" "write_back_delay = 0" "retries = 0"
failed_upload_of() { grep -q "upload.*failed.*$1\|$1.*kept in the journal" "$LOGS/mnt.log"; }

# --- round 1: refused, then accepted: the unmount uploads it
echo "status:500 PUT /$BUCKET/later.txt all" >"$FAULTS/rules"
mount_skyfs "$SYNC_CONF" "$MNT" || die "cannot mount"
check_fails "write later.txt: its close fails" "$PYTHON" -c 'import sys
f = open(sys.argv[1], "w"); f.write("made before the unmount\n"); f.close()' "$MNT/s3/later.txt"
check "the log says the journal keeps it" failed_upload_of later.txt
check "the server does not have it" bucket_lacks later.txt
: >"$FAULTS/rules"      # the server takes it now; the journal's next try is seconds away
out="$LOGS/unmount1.out"
"$SKYFS" unmount "$MNT" >"$out" 2>&1
check_eq "skyfs unmount exits 0" "0" "$?"
check_eq "the server has later.txt" "made before the unmount" "$(bucket_get later.txt)"
check "nothing is left pending" bash -c "'$SKYFS' status -c '$SYNC_CONF' | grep -q ' 0 pending upload'"

# --- round 2: refused through the unmount: it says so
echo "status:500 PUT /$BUCKET/stuck.txt all" >"$FAULTS/rules"
mount_skyfs "$CONF" "$MNT" || die "cannot mount again"
check "write stuck.txt" eval "echo 'still pending' >'$MNT/s3/stuck.txt'"
check "its upload fails" wait_until 30 failed_upload_of stuck.txt
out="$LOGS/unmount2.out"
"$SKYFS" unmount "$MNT" >"$out" 2>&1
check_eq "skyfs unmount exits 1" "1" "$?"
check "it says one upload could not be made" \
    grep -q "is unmounted, but 1 upload(s) could not be made" "$out"
check "the mount is gone" eval "! mountpoint -q '$MNT'"
check "skyfs status counts it" bash -c "'$SKYFS' status -c '$CONF' | grep -q ' 1 pending upload'"
check "the server does not have stuck.txt" bucket_lacks stuck.txt
: >"$FAULTS/rules"
mount_skyfs "$CONF" "$MNT" || die "cannot mount a third time"
check "the next mount uploads it" wait_until 30 bucket_has stuck.txt
check_eq "with its bytes" "still pending" "$(bucket_get stuck.txt)"
unmount_skyfs "$MNT"
