#!/usr/bin/env bash
# writeback_folder_wait.sh - on a write_back = async cloud, an op on one
# folder made here, or a rename of a new file in it, never waits for the
# creation of another folder on the cloud (issue 18: tar setting its
# folders' times, rsync and git renaming their temporary files, while the
# upload workers create folders over a slow network).
#
# fault_proxy.py holds every PUT under slow/ (retries too) at a gate (a program
# the proxy runs before forwarding it) until the test opens it.  An fsync
# of slow/f makes its upload create slow/ first, and that creation hangs
# at the gate.  Meanwhile, in another folder made here (b, not created on
# the cloud yet: write_back_delay is 30 s): mkdir, a new file and its
# rename, utime and chmod must all return while the gate is still closed.
# (Before: each waited for every folder creation in flight, here until
# the gate opened.)  Then the gate opens and everything reaches the
# server with the times and modes set meanwhile.
. "$(dirname "$0")/lib.sh"

start_bucket fw
FAULTS="$TEST_TMP/faults"
GATE="$TEST_TMP/gate"
mkdir -p "$FAULTS" "$GATE"
cat >"$FAULTS/gate" <<EOF
#!/bin/sh
touch "$GATE/reached"
i=0
while [ ! -e "$GATE/open" ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
EOF
chmod +x "$FAULTS/gate"
echo "run:gate PUT /$BUCKET/slow/ all" >"$FAULTS/rules"
PROXYPORT=$(free_port)
start_fault_proxy "$PROXYPORT" "$S3PORT" || die "cannot start fault_proxy.py"

MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
write_s3_config "$CONF" "http://127.0.0.1:$PROXYPORT" "$BUCKET" \
    "write_back = async" "write_back_delay = 30s"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
D="$MNT/s3"
gate_closed() { [ ! -e "$GATE/open" ]; }

check "mkdir slow, a file in it" eval "mkdir '$D/slow' && echo f >'$D/slow/f'"
# fsync: the upload now, its folder first; it waits at the gate
sync "$D/slow/f" &
fsync_pid=$!
check "the creation of slow/ reached the gate" wait_until 20 test -e "$GATE/reached"

# --- while slow/ is being created: ops on another folder made here
check "mkdir b" timeout 15 mkdir "$D/b"
check "a new file in b" timeout 15 sh -c "echo tmp-content >'$D/b/.t.tmp'"
check "rename of the new file in b returns while slow/ is being created" \
    timeout 15 mv "$D/b/.t.tmp" "$D/b/t"
check "utime of b returns" timeout 15 touch -d @1000000000 "$D/b"
check "chmod of b returns" timeout 15 chmod 750 "$D/b"
check "the gate is still closed: all that happened during the creation" gate_closed
check "and the fsync still waits for it" kill -0 "$fsync_pid"
check_eq "b shows its times and mode" "1000000000 750" "$(stat -c '%Y %a' "$D/b")"
check_eq "b/t shows its content" "tmp-content" "$(cat "$D/b/t")"
check "nothing of b reached the server yet" eval '! bucket_keys | grep -q "^b/"'

# --- the gate opens: the fsync returns, the rest goes up at unmount
touch "$GATE/open"
check "the fsync returns once slow/ is created" wait_until 20 eval "! kill -0 $fsync_pid"
check "slow/f is on the server" wait_until 20 bucket_has slow/f
unmount_skyfs "$MNT"
check_eq "everything on the server" "b/ b/t slow/ slow/f" "$(bucket_keys | paste -sd' ')"
check_eq "b/t's content" "tmp-content" "$(bucket_get b/t)"
mtime_of_b=$(bucket_header b/ x-amz-meta-mtime)
check_eq "b/'s marker carries the mode set meanwhile" "$((8#40750))" \
    "$(bucket_header b/ x-amz-meta-mode)"
check_eq "and its mtime" "1000000000" "${mtime_of_b%%.*}"
mount_skyfs "$CONF" "$MNT" || die "cannot mount again"
check_eq "a fresh mount shows b as set" "1000000000 750" "$(stat -c '%Y %a' "$MNT/s3/b")"
unmount_skyfs "$MNT"
