#!/usr/bin/env bash
# upload_retry.sh - an upload that fails at close (the cloud went away)
# stays in the journal, `skyfs status` counts it, and the mount uploads it
# by itself once the cloud is back, without a remount.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
mkdir -p "$TEST_TMP/cache"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket retry || die "cannot start s3rver"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[s3]
type = s3
endpoint = http://127.0.0.1:$PORT
bucket = retry
access_key_id = S3RVER
secret_access_key = S3RVER
EOF
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
head -c 300000 /dev/urandom >"$TEST_TMP/data"

# Write through an open descriptor, stop the server, then close.
"$PYTHON" - "$MNT/s3/late.bin" "$TEST_TMP/data" "$TEST_TMP/written" "$TEST_TMP/go" \
    >"$LOGS/writer.log" 2>&1 <<'PY' &
import os, sys, time
target, src, written, go = sys.argv[1:]
fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, open(src, "rb").read())
open(written, "w").close()
for _ in range(600):
    if os.path.exists(go):
        break
    time.sleep(0.1)
try:
    os.close(fd)
    print("close: ok")
except OSError as e:
    print("close:", e.strerror)
PY
writer=$!
check "the writer wrote through the mount" wait_until 30 test -e "$TEST_TMP/written"
stop_servers
touch "$TEST_TMP/go"
wait "$writer"
check "close reports the failed upload" grep -q "close: " "$LOGS/writer.log"
check_fails "close did not claim success" grep -q "close: ok" "$LOGS/writer.log"
check "skyfs status counts the pending upload" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q ' 1 pending upload'"

start_s3rver "$TEST_TMP/s3rver" "$PORT" || die "cannot restart s3rver"
check "the mount uploads it once the cloud is back" wait_until 60 bash -c \
    "curl -sf 'http://127.0.0.1:$PORT/retry/late.bin' | cmp -s '$TEST_TMP/data' -"
check "the journal is empty again" wait_until 10 bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q ' 0 pending upload'"
unmount_skyfs "$MNT"
