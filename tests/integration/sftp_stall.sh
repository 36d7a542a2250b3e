#!/usr/bin/env bash
# sftp_stall.sh - a session whose server stops answering (no process
# waiting on it is killed) is dropped after the cloud's `timeout`, and the
# request goes again on a new session: libssh alone would wait for the
# answer without end, and the cloud's sessions would all be lost.
#
# The test stops (SIGSTOP) the processes sshd runs for the daemon's only
# session (connections = 1, timeout = 2s); sshd itself still accepts new
# connections.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp_lib.sh"

PORT=$(free_port)
SSHD="$TEST_TMP/sshd"
REMOTE="$TEST_TMP/remote"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
mkdir -p "$REMOTE/sub" "$TEST_TMP/cache"
start_sshd "$SSHD" "$PORT" || die "cannot start sshd"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

$(sftp_cloud sftp "$PORT" "$SSHD" "$REMOTE")
connections = 1
timeout = 2s
EOF
)
echo one >"$REMOTE/sub/one.txt"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
check_eq "the cloud lists" "sub" "$(ls "$MNT/sftp")"

descendants() {
    local p
    for p in $(pgrep -P "$1"); do
        echo "$p"
        descendants "$p"
    done
}
sshd_pid=$(head -n1 "$_SKY_PIDS")
hung=$(descendants "$sshd_pid")
check "sshd runs processes for the daemon's session" test -n "$hung"
# shellcheck disable=SC2086 # one argument per pid
kill -STOP $hung
sleep 1.2       # the ttl passes: the next listing goes to the server
echo two >"$REMOTE/sub/two.txt"
ls "$MNT/sftp/sub" >/dev/null 2>&1
check "the stalled session is dropped after the timeout (the log says so)" \
    wait_until 15 grep -qF "sftp 'sftp': 127.0.0.1:$PORT sent nothing for 2 s; dropping the session" \
    "$LOGS/mnt.log"
check_eq "the listing went again on a new session" "one.txt two.txt" \
    "$(wait_until 20 test -f "$MNT/sftp/sub/two.txt"; ls "$MNT/sftp/sub" | paste -sd' ')"
check_eq "and files read" "two" "$(timeout 10 cat "$MNT/sftp/sub/two.txt" 2>&1)"
# shellcheck disable=SC2086
kill -CONT $hung 2>/dev/null
# shellcheck disable=SC2086
kill $hung 2>/dev/null
unmount_skyfs "$MNT"
