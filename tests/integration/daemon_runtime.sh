#!/usr/bin/env bash
# daemon_runtime.sh - the daemon's runtime files and `skyfs unmount`.
#
# 1. With XDG_RUNTIME_DIR unset, a user's pid files go to /tmp/skyfs-UID,
#    which another user can create first.  A real second user does, with
#    a symbolic link to a file of the mounting user where the pid file
#    goes: the mount is refused with a message naming the folder and its
#    owner, and the linked file is left alone.  Without the planted
#    folder, the mount makes its own (0700) and works.
#    (/dev/fuse is root's alone on the test machine: the mounting user
#    gets CAP_SYS_ADMIN and CAP_DAC_OVERRIDE as ambient capabilities to
#    open it; its uid, on which skyfs decides, stays its own.)
# 2. A pid file that names another process (the daemon died, its pid was
#    reused) is recognised by the start time it records: unmount neither
#    waits for that process nor signals it.
# 3. A copy of the mount held in another mount namespace (unshare -m)
#    keeps the daemon from ever hearing of the unmount: unmount tells it
#    to stop once nothing is pending, and returns.
# 4. Unmount waits with a bound (--timeout), saying what it waits for
#    (pending uploads); a later unmount finds the daemon again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/users_lib.sh"

VICTIM=skyfs-t1
ATTACKER=skyfs-t2
vuid=$(test_user "$VICTIM") || die "no test user $VICTIM"
auid=$(test_user "$ATTACKER") || die "no test user $ATTACKER"

# ------------------------------------------- 1. the runtime folder
H="$TEST_TMP/victim"
user_dir "$VICTIM" "$H"
as_user "$VICTIM" mkdir -p "$H/data" "$H/mnt"
as_user "$VICTIM" bash -c "printf '[cache]\ndir = $H/cache\n\n[docs]\ntype = local\npath = $H/data\n' >'$H/skyfs.conf'"
as_user "$VICTIM" bash -c "echo precious >'$H/precious.txt'"
RUNDIR="/tmp/skyfs-$vuid"
PIDNAME="$(echo "$H/mnt" | tr / _).pid"
as_victim_with_fuse() {
    setpriv --reuid="$VICTIM" --regid="$VICTIM" --clear-groups \
        --inh-caps=+sys_admin,+dac_override --ambient-caps=+sys_admin,+dac_override \
        env -u XDG_RUNTIME_DIR HOME="$H" "$@"
}

rm -rf "$RUNDIR"
as_user "$ATTACKER" mkdir -m 755 "$RUNDIR"
as_user "$ATTACKER" ln -s "$H/precious.txt" "$RUNDIR/$PIDNAME"
out="$TEST_TMP/victim-mount.out"
as_victim_with_fuse "$SKYFS" mount -c "$H/skyfs.conf" --log "$H/skyfs.log" "$H/mnt" \
    >"$out" 2>&1 </dev/null
rc=$?
echo "$H/mnt" >>"$TEST_TMP/.mounts"
check "the mount is refused while another user owns $RUNDIR (exit $rc)" \
    test "$rc" -ne 0 -a "$rc" -lt 128
check "the refusal names the folder and its owner" \
    grep -F "runtime folder $RUNDIR belongs to uid $auid" "$out"
check_eq "the file behind the planted link is untouched" precious "$(cat "$H/precious.txt")"
check_fails "nothing is mounted" mountpoint -q "$H/mnt"
rm -rf "$RUNDIR"

as_victim_with_fuse "$SKYFS" mount -c "$H/skyfs.conf" --log "$H/skyfs.log" "$H/mnt" \
    >"$out" 2>&1 </dev/null
check "without the planted folder the user's mount works" as_user "$VICTIM" test -d "$H/mnt/docs"
check_eq "the runtime folder is the user's own, 0700" "$vuid 700" "$(stat -c '%u %a' "$RUNDIR")"
check "the pid file is a regular file of the user's, 0600" \
    test -f "$RUNDIR/$PIDNAME" -a ! -L "$RUNDIR/$PIDNAME" -a "$(stat -c '%u %a' "$RUNDIR/$PIDNAME")" = "$vuid 600"
check "the user unmounts it" as_victim_with_fuse timeout 60 "$SKYFS" unmount "$H/mnt"
check_eq "the file behind the old link is still untouched" precious "$(cat "$H/precious.txt")"
rm -rf "$RUNDIR"

# ------------------------------------------- 2. a pid file naming another process
CONF="$TEST_TMP/skyfs.conf"
LOCAL="$TEST_TMP/data"
write_local_config "$CONF" "$TEST_TMP/cache" docs="$LOCAL"
MNT="$TEST_TMP/mnt"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
PIDFILE="/run/skyfs/$(echo "$MNT" | tr / _).pid"
check "the pid file records pid, start time, mountpoint and cache" bash -c \
    "head -1 '$PIDFILE' | grep -Eq '^[0-9]+ [0-9]+\$' && sed -n 2p '$PIDFILE' | grep -qxF '$MNT' && sed -n 3p '$PIDFILE' | grep -qxF '$TEST_TMP/cache'"
daemon=$(daemon_pids "$MNT")
# shellcheck disable=SC2086
kill -9 $daemon
sleep 300 &
other=$!
# The daemon's pid, reused by another process: same file, another start time.
printf '%s 1\n%s\n%s\n' "$other" "$MNT" "$TEST_TMP/cache" >"$PIDFILE"
out="$TEST_TMP/unmount-reused.out"
timeout 30 "$SKYFS" unmount "$MNT" >"$out" 2>&1 </dev/null
rc=$?
check_eq "unmount of a mount whose daemon died returns at once (exit status)" 0 "$rc"
check "it says the pid file names another process" grep -F "names pid $other, which is not its daemon" "$out"
check "the other process was not signalled" kill -0 "$other"
check_fails "the mount is gone" mountpoint -q "$MNT"
kill "$other"

# ------------------------------------------- 3. a copy in another mount namespace
# holds_copy PID: PID has left our mount namespace (unshare done) with the mount
holds_copy() {
    [ "$(readlink "/proc/$1/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
        grep -qF " $MNT " "/proc/$1/mountinfo"
}
mount_skyfs "$CONF" "$MNT" || die "cannot remount"
echo hello >"$MNT/docs/hello.txt"
unshare -m --propagation private sleep 300 &
holder=$!
check "another mount namespace holds a copy of the mount" wait_until 10 holds_copy "$holder"
out="$TEST_TMP/unmount-ns.out"
timeout 60 "$SKYFS" unmount "$MNT" >"$out" 2>&1 </dev/null
rc=$?
check_eq "unmount returns although another namespace holds the mount (exit status)" 0 "$rc"
check "it says why it tells the daemon to stop" grep -F "another mount namespace" "$out"
check_eq "the daemon is gone" "" "$(daemon_pids "$MNT")"
check_eq "the file written before is in the cloud" hello "$(cat "$LOCAL/hello.txt")"
kill "$holder"

# ------------------------------------------- 4. a bounded wait, saying for what
mount_skyfs "$CONF" "$MNT" || die "cannot remount"
mkdir -p "$LOCAL/sub"
# made beside the mount: seen once the cached listing is older than its ttl
check "the mount sees the folder made in the cloud" wait_until 10 test -d "$MNT/docs/sub"
# The upload at close fails (its folder vanished in the cloud): the file
# stays in the journal and the daemon retries it.
"$PYTHON" - "$MNT/docs/sub/late.txt" "$LOCAL/sub" <<'PY' >"$LOGS/late.log" 2>&1
import os, shutil, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
shutil.rmtree(sys.argv[2])
os.write(fd, b"late\n")
try:
    os.close(fd)
except OSError as e:
    print("close:", e)
PY
check "one upload is pending" bash -c "'$SKYFS' status -c '$CONF' | grep -q ' 1 pending upload'"
unshare -m --propagation private sleep 300 &
holder=$!
check "another mount namespace holds a copy of the mount" wait_until 10 holds_copy "$holder"
out="$TEST_TMP/unmount-timeout.out"
timeout 60 "$SKYFS" unmount --timeout 3 "$MNT" >"$out" 2>&1 </dev/null
rc=$?
mkdir -p "$LOCAL/sub"
check_eq "unmount --timeout 3 gives up (exit status)" 1 "$rc"
check "while waiting it names the pending uploads" grep -F "1 pending upload(s)" "$out"
check "it says it gave up and that the daemon goes on" grep -F "gave up waiting after 3 s: daemon pid" "$out"
out="$TEST_TMP/unmount-again.out"
timeout 90 "$SKYFS" unmount "$MNT" >"$out" 2>&1 </dev/null
rc=$?
check_eq "a second unmount finds the daemon, waits for the upload and stops it" 0 "$rc"
check "it said the daemon still ran" grep -F "is not mounted here, but its daemon pid" "$out"
# create() made nothing on the cloud (a new file goes up at its close),
# so once the folder is back the retried upload makes the file itself.
check_eq "the pending file reached the cloud once its folder was back" \
    late "$(cat "$LOCAL/sub/late.txt" 2>&1)"
check_eq "as itself: no conflict copy" "" "$(ls "$LOCAL/sub" | grep conflict)"
check_eq "the daemon is gone" "" "$(daemon_pids "$MNT")"
kill "$holder"
