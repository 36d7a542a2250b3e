#!/usr/bin/env bash
# liveness_offline.sh - once a cloud is known to be offline, the mount
# answers from the cache without asking it: stat of expired entries, ls
# and cat of cached files send no request at all (user.skyfs.requests
# stays the same), and a name the last listing did not hold is ENOENT.
# Reading a file whose upload is pending (its writer's close failed)
# prints its bytes and exits 0: a read-only descriptor's close uploads
# nothing.  One background probe finds the cloud back; the pending upload
# then goes up without a remount.
#
# liveness_proxy.py sits between skyfs and s3rver; "drop" closes each
# connection without an answer (the server cannot be reached).
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
start_s3rver_behind liveness off || die "cannot start s3rver behind liveness_proxy.py"
write_s3_config "$CONF" "http://127.0.0.1:$PROXY_PORT" off "ttl = 1s" \
    "# close must report the failed upload (writeback_async.sh tests async)" \
    "write_back = sync" \
    "# the crawl's requests (it starts once the cloud pauses) would blur the counts" \
    "index = off"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
requests() {
    getfattr --absolute-names --only-values -n user.skyfs.requests "$MNT/.skyfs" | awk '$1 == "s3" { print $2 }'
}

echo hello >"$MNT/s3/hello.txt" || die "cannot write hello.txt"
check_eq "a file reads back" "hello" "$(cat "$MNT/s3/hello.txt")"

# A writer whose upload at close fails while the cloud is unreachable.
"$PYTHON" - "$MNT/s3/pending.txt" "$TEST_TMP/written" "$TEST_TMP/go" \
    >"$LOGS/writer.log" 2>&1 <<'PY' &
import os, sys, time
target, written, go = sys.argv[1:4]
fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"pending data\n")
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
check_eq "the directory lists" "hello.txt pending.txt" "$(echo $(ls "$MNT/s3"))"
echo drop >"$MODE"
touch "$TEST_TMP/go"
wait "$writer"
check_fails "its close reports the failed upload" grep -q "close: ok" "$LOGS/writer.log"
check "skyfs status says the cloud is offline" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q offline"

before=$(requests)
sleep 1.2       # every cached entry and listing is now older than the ttl
check_eq "stat of an expired entry answers from the cache" "6" \
    "$(stat -c %s "$MNT/s3/hello.txt")"
check_eq "ls answers from the cached listing" "hello.txt pending.txt" \
    "$(echo $(ls "$MNT/s3"))"
check_eq "cat of a cached file" "hello" "$(cat "$MNT/s3/hello.txt")"
out="$TEST_TMP/cat.out"
check "cat of the file whose upload is pending exits 0" bash -c "cat '$MNT/s3/pending.txt' >'$out'"
check_eq "and prints its bytes" "pending data" "$(cat "$out")"
check_eq "a name the last listing did not hold is ENOENT" "ENOENT" \
    "$(errno_of stat "$MNT/s3/never.txt")"
check_eq "no request was sent to the offline cloud for all that" "$before" "$(requests)"

echo forward >"$MODE"
check "a probe finds the cloud back" wait_until 40 bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q '^ *s3.*online'"
uploaded() {
    [ "$(s3curl "http://127.0.0.1:$S3_PORT/off/pending.txt")" = "pending data" ]
}
check "the pending upload goes up without a remount" wait_until 40 uploaded
echo new >"$TEST_TMP/new"
s3curl -X PUT -T "$TEST_TMP/new" "http://127.0.0.1:$S3_PORT/off/new.txt" -o /dev/null ||
    die "cannot put new.txt"
check "listings come from the cloud again" wait_until 10 test -e "$MNT/s3/new.txt"
unmount_skyfs "$MNT"
