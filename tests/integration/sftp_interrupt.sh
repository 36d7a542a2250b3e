#!/usr/bin/env bash
# sftp_interrupt.sh - an SFTP server that stops answering in the middle of
# a session must not make a killed process unkillable, nor hold up the
# daemon's end:
#   - a `cat` whose read waits on the hung session, killed with SIGKILL,
#     is gone within a few seconds, and the other clouds still answer;
#   - once the server answers again, the cloud works (a new session);
#   - SIGTERM ends the daemon within a few seconds while a read waits on a
#     hung session: the session's socket is shut at once (sftp_session.c's
#     watcher), not left to libssh's request timeout (30 s here).
#
# The hang is real: the test stops (SIGSTOP) the processes sshd runs for
# the daemon's connection; the cloud has one session (connections = 1)
# and a long ttl, so that the listings stay cached and reads go to the
# server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp_lib.sh"

PORT=$(free_port)
SSHD="$TEST_TMP/sshd"
REMOTE="$TEST_TMP/remote"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
mkdir -p "$REMOTE/sub" "$TEST_TMP/cache" "$TEST_TMP/local"
start_sshd "$SSHD" "$PORT" || die "cannot start sshd"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

$(SFTP_TTL=60s sftp_cloud sftp "$PORT" "$SSHD" "$REMOTE")
connections = 1
timeout = 30s
open_ahead = 0

[local]
type = local
path = $TEST_TMP/local
EOF
)
head -c 100000 /dev/urandom >"$REMOTE/blob.bin"
# read for the first time only in the SIGTERM part (open_ahead = 0: no
# reading of blob.bin fetches it ahead)
head -c 100000 /dev/urandom >"$REMOTE/blob2.bin"
echo inner >"$REMOTE/sub/inner.txt"
echo here >"$TEST_TMP/local/here.txt"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
check_eq "the cloud lists" "blob.bin blob2.bin sub" "$(echo $(ls "$MNT/sftp"))"
check_eq "and its subdirectory" "inner.txt" "$(ls "$MNT/sftp/sub")"

# descendants PID: every process under PID (sshd's per-connection ones)
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

# killed_soon DESC CMD...: runs CMD in the background, checks it still
# waits after 1.5 s, kills it with SIGKILL and checks it is gone within 5 s.
killed_soon() {
    local desc=$1 pid; shift
    "$@" >/dev/null 2>&1 &
    pid=$!
    sleep 1.5
    check "$desc: still waiting on the hung server" kill -0 "$pid"
    kill -KILL "$pid" 2>/dev/null
    check "$desc: gone within 5 s of SIGKILL" wait_until 5 eval "! kill -0 $pid 2>/dev/null"
    wait "$pid" 2>/dev/null
}
killed_soon "cat of a file not cached" cat "$MNT/sftp/blob.bin"
check_eq "the other cloud still answers" "here" "$(timeout 10 cat "$MNT/local/here.txt" 2>&1)"
# shellcheck disable=SC2086
kill -CONT $hung
# shellcheck disable=SC2086
kill $hung 2>/dev/null
check_eq "once the server answers, the cloud works again (a new session)" "inner" \
    "$(wait_until 30 test -f "$MNT/sftp/sub/inner.txt"; timeout 40 cat "$MNT/sftp/sub/inner.txt" 2>&1)"
check_eq "and reads its files byte for byte" "$(sha256sum <"$REMOTE/blob.bin")" \
    "$(timeout 40 sha256sum <"$MNT/sftp/blob.bin" 2>&1)"

# --- SIGTERM while a read waits on a hung session (blob2.bin: not cached)
hung=$(descendants "$sshd_pid")
check "sshd runs processes for the daemon's new session" test -n "$hung"
# shellcheck disable=SC2086
kill -STOP $hung
cat "$MNT/sftp/blob2.bin" >/dev/null 2>&1 &
reader=$!
sleep 1.5
check "the read waits on the hung session" kill -0 "$reader"
pids=$(daemon_pids "$(cd "$MNT" && pwd)")
check "the daemon runs" test -n "$pids"
# shellcheck disable=SC2086 # one argument per pid
kill -TERM $pids
gone() { [ -z "$(daemon_pids "$(cd "$MNT" && pwd)")" ]; }
check "SIGTERM ends the daemon within 5 s (the hung session is cut)" wait_until 5 gone
check "the reader returned" wait_until 10 bash -c "! kill -0 $reader 2>/dev/null"
check "the mountpoint is released" wait_until 10 bash -c "! mountpoint -q '$MNT'"
# shellcheck disable=SC2086
kill -CONT $hung 2>/dev/null
