#!/usr/bin/env bash
# upload_retry.sh - an upload that fails at close (the cloud went away)
# stays in the journal, `skyfs status` counts it, and the mount uploads it
# by itself once the cloud is back, without a remount.  A rewrite of an
# object whose user metadata skyfs has not read yet fails the same way
# (the metadata cannot be read to be kept) and, retried, keeps it.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket retry || die "cannot start s3rver"
write_s3_config "$CONF" "http://127.0.0.1:$PORT" retry \
    "# close must report the failed upload (writeback_async.sh tests async)" \
    "write_back = sync"
echo old >"$TEST_TMP/old"
s3curl -X PUT -H "x-amz-meta-color: blue" -T "$TEST_TMP/old" \
    "http://127.0.0.1:$PORT/retry/kept.txt" -o /dev/null || die "cannot put kept.txt"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
head -c 300000 /dev/urandom >"$TEST_TMP/data"
echo new >"$TEST_TMP/new"

# Write through an open descriptor, stop the server, then close.
"$PYTHON" - "$TEST_TMP/written" "$TEST_TMP/go" "$MNT/s3/late.bin" "$TEST_TMP/data" \
    "$MNT/s3/kept.txt" "$TEST_TMP/new" >"$LOGS/writer.log" 2>&1 <<'PY' &
import os, sys, time
written, go = sys.argv[1:3]
pairs = list(zip(sys.argv[3::2], sys.argv[4::2]))
fds = []
for target, src in pairs:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, open(src, "rb").read())
    fds.append((target, fd))
open(written, "w").close()
for _ in range(600):
    if os.path.exists(go):
        break
    time.sleep(0.1)
for target, fd in fds:
    name = os.path.basename(target)
    try:
        os.close(fd)
        print(name, "close: ok")
    except OSError as e:
        print(name, "close:", e.strerror)
PY
writer=$!
check "the writer wrote through the mount" wait_until 30 test -e "$TEST_TMP/written"
stop_servers
touch "$TEST_TMP/go"
wait "$writer"
check "close reports the failed uploads" grep -q "kept.txt close: " "$LOGS/writer.log"
check_fails "close did not claim success" grep -q "close: ok" "$LOGS/writer.log"
check "skyfs status counts the pending uploads" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q ' 2 pending upload'"

start_s3rver "$TEST_TMP/s3rver" "$PORT" || die "cannot restart s3rver"
check "the mount uploads it once the cloud is back" wait_until 60 bash -c \
    "curl -sf 'http://127.0.0.1:$PORT/retry/late.bin' | cmp -s '$TEST_TMP/data' -"
check "the rewrite whose metadata could not be read is uploaded too" wait_until 60 bash -c \
    "curl -sf 'http://127.0.0.1:$PORT/retry/kept.txt' | cmp -s '$TEST_TMP/new' -"
check_eq "and it kept the object's user metadata" "blue" \
    "$(s3curl -I "http://127.0.0.1:$PORT/retry/kept.txt" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "x-amz-meta-color" { print $2 }')"
check "the journal is empty again" wait_until 10 bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q ' 0 pending upload'"
unmount_skyfs "$MNT"
