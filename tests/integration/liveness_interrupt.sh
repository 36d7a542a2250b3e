#!/usr/bin/env bash
# liveness_interrupt.sh - a server that accepts and never answers must not
# make a killed process unkillable: `ls`, `stat` and `cat` of a cloud
# behind such a server, killed with SIGKILL, are gone within a few seconds
# (not the minutes the HTTP timeouts and retries take), and the daemon
# goes on serving the other clouds.
#
# liveness_proxy.py sits between skyfs and s3rver: it forwards while the
# test fills the cache, then hangs every request.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
start_s3rver_behind liveness hung || die "cannot start s3rver behind liveness_proxy.py"
mkdir -p "$TEST_TMP/cache" "$TEST_TMP/local"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" hung)
ttl = 1s
# a request that gets no byte is abandoned after 10 s (20 s by default):
# well past the 5 s a killed process may take to go, and the kernel's
# readahead of blob.bin, which no signal interrupts, ends sooner once the
# server answers again
timeout = 10s

[local]
type = local
path = $TEST_TMP/local
EOF
)
head -c 100000 /dev/urandom >"$TEST_TMP/blob"
s3curl -X PUT -T "$TEST_TMP/blob" "http://127.0.0.1:$S3_PORT/hung/blob.bin" -o /dev/null ||
    die "cannot put blob.bin"
s3curl -X PUT -T "$TEST_TMP/blob" "http://127.0.0.1:$S3_PORT/hung/sub/inner.bin" -o /dev/null ||
    die "cannot put sub/inner.bin"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
# The root's listing (and so blob.bin's attributes) is cached; its bytes
# and sub's listing are not.
check_eq "the cloud lists through the proxy" "blob.bin sub" "$(echo $(ls "$MNT/s3"))"
echo hang >"$MODE"
sleep 1.2       # the listing's ttl (1 s) passes: the next ones go to the server

# killed_soon DESC REQUEST CMD...: runs CMD in the background, waits
# until a request whose line ("METHOD /bucket/key...") begins with REQUEST
# reached the hung server after it started (CMD waits on it), kills CMD
# with SIGKILL and checks that it is gone within 5 s.
killed_soon() {
    local desc=$1 request=$2; shift 2
    local before pid
    before=$(wc -l <"$COUNT.requests")
    "$@" >/dev/null 2>&1 &
    pid=$!
    check "$desc: the request reached the hung server ($request)" wait_until 20 \
        bash -c "tail -n +$((before + 1)) '$COUNT.requests' | grep -qF -- '$request'"
    sleep 0.5
    check "$desc: still waiting before the kill" kill -0 "$pid"
    kill -KILL "$pid"
    check "$desc: gone within 5 s of SIGKILL" wait_until 5 bash -c "! kill -0 $pid 2>/dev/null"
    wait "$pid" 2>/dev/null
}

killed_soon "ls of a directory never listed" "prefix=sub%2F" ls "$MNT/s3/sub"
killed_soon "stat of a name the cache does not know" "HEAD /hung/unknown.txt" \
    stat "$MNT/s3/unknown.txt"
# cat: the expired entry's refresh, if it is asked, hangs (answered from
# the cache after a moment), then the read of the bytes hangs
killed_soon "cat of a file whose bytes are not cached" "GET /hung/blob.bin" \
    cat "$MNT/s3/blob.bin"

# A signal the process catches does not end its request (stat must not
# fail with EINTR), but a SIGKILL after it does (the kernel interrupts a
# request only once: the daemon watches that process).
# (the handler is in place before the stat starts: READY says so, and a
# request counted before it may be another one, a background refresh)
READY="$TEST_TMP/handler-ready"
"$PYTHON" -c 'import os, signal, sys
signal.signal(signal.SIGUSR1, lambda *a: None)
before = open(sys.argv[3]).read().strip()
open(sys.argv[2], "w").write(before)
os.stat(sys.argv[1])' "$MNT/s3/other.txt" "$READY" "$COUNT" >/dev/null 2>&1 &
pid=$!
check "caught signal: the handler is in place" wait_until 20 test -s "$READY"
check "caught signal: the stat reached the hung server" wait_until 20 \
    bash -c "[ \"\$(cat '$COUNT')\" -gt \"\$(cat '$READY')\" ]"
kill -USR1 "$pid"
sleep 1
check "caught signal: the stat still waits after SIGUSR1" kill -0 "$pid"
kill -KILL "$pid"
check "caught signal: gone within 5 s of a later SIGKILL" wait_until 5 \
    bash -c "! kill -0 $pid 2>/dev/null"
wait "$pid" 2>/dev/null

check "the daemon still serves the other cloud" bash -c \
    "echo still here >'$MNT/local/note.txt' && [ \"\$(cat '$MNT/local/note.txt')\" = 'still here' ]"
check "and still answers for the hung cloud's root" ls -d "$MNT/s3"
echo forward >"$MODE"
check "once the server answers again, the file reads" wait_until 60 \
    cmp -s "$TEST_TMP/blob" "$MNT/s3/blob.bin"
unmount_skyfs "$MNT"
