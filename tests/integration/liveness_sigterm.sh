#!/usr/bin/env bash
# liveness_sigterm.sh - SIGTERM ends the daemon within a bounded time even
# while an upload and a listing wait on a server that never answers; the
# upload cut short stays in the journal, and the next mount (the server
# answering again) uploads it.
#
# liveness_proxy.py sits between skyfs and s3rver; "hang" never answers.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
start_s3rver_behind liveness term || die "cannot start s3rver behind liveness_proxy.py"
write_s3_config "$CONF" "http://127.0.0.1:$PROXY_PORT" term
s3curl -X PUT -T "$CONF" "http://127.0.0.1:$S3_PORT/term/sub/x" -o /dev/null ||
    die "cannot put sub/x"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
head -c 300000 /dev/urandom >"$TEST_TMP/data"

# A writer whose close (the upload) waits on the hung server.
"$PYTHON" - "$MNT/s3/data.bin" "$TEST_TMP/data" "$TEST_TMP/written" "$TEST_TMP/go" \
    >"$LOGS/writer.log" 2>&1 <<'PY' &
import os, sys, time
target, src, written, go = sys.argv[1:5]
fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, open(src, "rb").read())
open(written, "w").close()
while not os.path.exists(go):
    time.sleep(0.1)
try:
    os.close(fd)
    print("close: ok")
except OSError as e:
    print("close:", e.strerror)
PY
writer=$!
check "the writer wrote" wait_until 30 test -e "$TEST_TMP/written"
echo hang >"$MODE"
before=$(cat "$COUNT")
touch "$TEST_TMP/go"
ls "$MNT/s3/sub" >/dev/null 2>&1 &
lister=$!
reached() { [ "$(cat "$COUNT")" -ge $((before + 2)) ]; }
check "the upload and the listing reached the hung server" wait_until 20 reached
pids=$(daemon_pids "$MNT")
check "the daemon runs" test -n "$pids"
# shellcheck disable=SC2086 # one argument per pid
kill -TERM $pids
gone() { [ -z "$(daemon_pids "$MNT")" ]; }
check "SIGTERM ends the daemon within 15 s" wait_until 15 gone
check "the writer's close returned" wait_until 10 bash -c "! kill -0 $writer 2>/dev/null"
check "and so did the ls" wait_until 10 bash -c "! kill -0 $lister 2>/dev/null"
check_fails "the close did not claim success" grep -q "close: ok" "$LOGS/writer.log"
wait "$writer" "$lister" 2>/dev/null
check "the mountpoint is released" wait_until 10 bash -c "! mountpoint -q '$MNT'"
check "the upload is pending in the journal" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q ' 1 pending upload'"

echo forward >"$MODE"
mount_skyfs "$CONF" "$MNT" || die "cannot mount again"
uploaded() { s3curl "http://127.0.0.1:$S3_PORT/term/data.bin" | cmp -s "$TEST_TMP/data" -; }
check "the next mount uploads it" wait_until 60 uploaded
unmount_skyfs "$MNT"
