#!/usr/bin/env bash
# pkg_systemd.sh - what skyfs tells systemd, with this test in systemd's
# place (the container runs no systemd): the daemon in the foreground, as
# skyfs@.service runs it, with
#   - $NOTIFY_SOCKET naming a datagram socket this test reads: READY=1
#     (with MAINPID, the daemon's pid) arrives, and only once the mount
#     answers; STOPPING=1 arrives at the unmount, and the daemon then ends;
#   - $JOURNAL_STREAM naming its stderr: every line starts with its syslog
#     priority (<6> info, <4> warning) and carries no time stamp;
#     log_level = warn keeps the info lines out; with $JOURNAL_STREAM
#     naming another file the lines are the plain stamped ones.
. "$(dirname "$0")/lib.sh"

MNT="$TEST_TMP/mnt"
SOCK="$TEST_TMP/notify.sock"
DOCS="$TEST_TMP/docs"
mkdir -p "$DOCS" "$MNT"
echo hello >"$DOCS/a.txt"

# the notify socket: each datagram is written to $TEST_TMP/notify.log as
# one line (newlines as '|'); at READY=1 it looks whether the mount
# answers right then and appends "answered=yes|no"
"$PYTHON" - "$SOCK" "$TEST_TMP/notify.log" "$MNT" <<'PY' &
import os, socket, sys
sock_path, log_path, mnt = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
s.settimeout(120)
with open(log_path, "a", buffering=1) as log:
    while True:
        try:
            data = s.recv(4096).decode()
        except socket.timeout:
            break
        line = data.replace("\n", "|")
        if "READY=1" in data:
            try:
                ok = os.path.ismount(mnt) and "a.txt" in os.listdir(os.path.join(mnt, "docs"))
            except OSError:
                ok = False
            line += "|answered=" + ("yes" if ok else "no")
        log.write(line + "\n")
PY
listener=$!
echo "$listener" >>"$_SKY_PIDS"
wait_until 30 test -S "$SOCK" || die "the notify socket did not appear"

# conf LEVEL: a config with one local cloud and [daemon] log_level = LEVEL
conf() {
    (umask 077 && cat >"$TEST_TMP/$1.conf" <<EOF
[cache]
dir = $TEST_TMP/cache

[daemon]
log_level = $1

[docs]
type = local
path = $DOCS
EOF
    )
}
conf info
conf warn

# run_foreground CONF STDERR [JOURNAL_STREAM]: the daemon in the
# foreground (as the unit runs it), its pid in $daemon
run_foreground() {
    : >"$2"
    local js=${3:-$(stat -c '%d:%i' "$2")}
    echo "$MNT" >>"$_SKY_MOUNTS"
    NOTIFY_SOCKET="$SOCK" JOURNAL_STREAM="$js" "$SKYFS" mount -f -c "$1" "$MNT" 2>>"$2" \
        </dev/null >/dev/null &
    daemon=$!
}

# --- READY and STOPPING, priorities with log_level = info
run_foreground "$TEST_TMP/info.conf" "$TEST_TMP/info.err"
check "READY=1 reaches the notify socket" \
    wait_until 60 grep -q "READY=1" "$TEST_TMP/notify.log"
check "at READY=1 the mount answered (the cloud's files were listed)" \
    grep -q "READY=1.*answered=yes" "$TEST_TMP/notify.log"
check "READY=1 names the daemon as MAINPID" grep -q "MAINPID=$daemon|" "$TEST_TMP/notify.log"
check "the mount serves files" test "$(cat "$MNT/docs/a.txt")" = hello
check_fails "creating a file at the mount root is refused (a warning)" touch "$MNT/stray"
check "skyfs unmount of the foreground daemon" "$SKYFS" unmount --timeout 120 "$MNT"
check "the daemon ended" wait_until 60 eval '! kill -0 "$daemon" 2>/dev/null'
check "STOPPING=1 reached the notify socket" grep -q "STOPPING=1" "$TEST_TMP/notify.log"
check "STOPPING=1 came after READY=1" \
    eval '[ "$(grep -n READY=1 "$TEST_TMP/notify.log" | cut -d: -f1)" -lt "$(grep -n STOPPING=1 "$TEST_TMP/notify.log" | cut -d: -f1)" ]'
check "the info line of the mount carries the journal priority <6>" \
    grep -q '^<6>info: mounted 1 cloud(s)' "$TEST_TMP/info.err"
check "the warning of the refused create carries <4>" \
    grep -q '^<4>warn: the mount root holds only the configured clouds' "$TEST_TMP/info.err"
check_fails "no line carries a time stamp (the journal stamps them)" \
    grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$TEST_TMP/info.err"
check_fails "every line starts with a priority" grep -qv '^<[0-7]>' "$TEST_TMP/info.err"

# --- log_level = warn: the info lines stay out
run_foreground "$TEST_TMP/warn.conf" "$TEST_TMP/warn.err"
check "the daemon mounts with log_level = warn" wait_until 60 mountpoint -q "$MNT"
check_fails "creating a file at the mount root is refused" touch "$MNT/stray"
check "skyfs unmount" "$SKYFS" unmount --timeout 120 "$MNT"
check "the daemon ended" wait_until 60 eval '! kill -0 "$daemon" 2>/dev/null'
check "log_level = warn keeps the warning" \
    grep -q '^<4>warn: the mount root holds only the configured clouds' "$TEST_TMP/warn.err"
check "the second daemon's READY=1 arrived too" \
    wait_until 30 eval '[ "$(grep -c "READY=1.*answered=yes" "$TEST_TMP/notify.log")" -ge 2 ]'
check_fails "every notice reached systemd (no warning about it)" \
    grep -q "cannot tell systemd" "$TEST_TMP/info.err" "$TEST_TMP/warn.err"
check_fails "log_level = warn drops the info lines" grep -q '^<6>' "$TEST_TMP/warn.err"

# --- $JOURNAL_STREAM naming another file: plain stamped lines
run_foreground "$TEST_TMP/info.conf" "$TEST_TMP/plain.err" "1:1"
check "the daemon mounts" wait_until 60 mountpoint -q "$MNT"
check "skyfs unmount" "$SKYFS" unmount --timeout 120 "$MNT"
check "the daemon ended" wait_until 60 eval '! kill -0 "$daemon" 2>/dev/null'
check "stderr that is not the journal gets stamped lines" \
    grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z skyfs info: mounted' "$TEST_TMP/plain.err"
check_fails "... without priority prefixes" grep -q '^<[0-7]>' "$TEST_TMP/plain.err"
kill "$listener" 2>/dev/null || true
