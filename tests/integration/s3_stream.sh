#!/usr/bin/env bash
# s3_stream.sh - uploads that start while the writer is still writing, on
# S3 (s3rver), and what happens when the writer does not stay sequential.
#
# s3rver runs with its log on: every part it stores is a line "Stored part
# N of UPLOADID".  The writers (stream_writer.py) pause at given points and
# wait for the test.  Checks:
#   - a 41 MiB file written with a pause after 24 MiB: the server stores
#     parts while the file is still open; after close it holds the same
#     bytes, with an x-amz-meta-mtime from after the pause (the final
#     metadata, not the one of the upload's start); a fresh mount with an
#     empty cache reads it back byte for byte;
#   - a writer that overwrites 64 KiB at 1 MiB after parts went up, and one
#     that truncates below them and writes other bytes: the stream is
#     abandoned (the log says so) and the server ends with the right bytes;
#   - fsync in the middle finishes the upload (the server then holds the
#     bytes up to the fsync); 8 MiB more acknowledged, then kill -9 of the
#     daemon: the next mount uploads them (the journal), and a file closed
#     before the crash is intact.
. "$(dirname "$0")/lib.sh"
# shellcheck source=stream_lib.sh
. "$(dirname "$0")/stream_lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
S3LOG="$LOGS/s3rver-$PORT.log"

# s3rver with its log on (lib.sh's start_s3rver silences it).
[ -f "$SERVERS_DIR/s3rver/bin/s3rver.js" ] || die "s3rver is not installed (run make deps)"
_start_server s3rver "$PORT" "$ENDPOINT/" env NODE_OPTIONS=--openssl-legacy-provider \
    node "$SERVERS_DIR/s3rver/bin/s3rver.js" -d "$TEST_TMP/s3rver" -a 127.0.0.1 -p "$PORT" \
    --configure-bucket stream || die "cannot start s3rver"

# write_conf CONFIG CACHE_DIR: one s3 cloud "s3" over bucket "stream".
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

$(s3rver_cloud s3 "$ENDPOINT" stream)
ttl = 2s
# checks the server right after close (writeback_async.sh tests async)
write_back = sync
EOF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"


parts_stored() { grep -c 'Stored part ' "$S3LOG"; }
more_parts_than() { [ "$(parts_stored)" -gt "$1" ]; }
server_has() { curl -sf "$ENDPOINT/stream/$1" | cmp -s "$2" -; }

# at_pause NAME PARTS_BEFORE: waits for the writer's pause NAME, checks
# that s3rver stored parts since PARTS_BEFORE were counted (the file is
# open), then lets the writer go on.
at_pause() {
    check "$1: the writer reaches its pause" wait_until 30 test -e "$SIG/$1"
    check "$1: the server stores parts while the file is still open" \
        wait_until 30 more_parts_than "$2"
    touch "$SIG/$1.go"
}

mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"

# --- a sequential writer that pauses: parts go up before close
size=$((41 * MiB + 12345))
expect seq "w:0:$size"
before=$(parts_stored)
start_writer s3 seq w:0:24M p:seq "w:24M:$size"
at_pause seq "$before"
resumed=$(date +%s.%N)
writer_done seq
check "seq: the server holds the same $size bytes after close" server_has seq.bin "$TEST_TMP/seq.want"
mtime=$(curl -sfI "$ENDPOINT/stream/seq.bin" | tr -d '\r' | sed -n 's/^x-amz-meta-mtime: //Ip')
check "seq: its x-amz-meta-mtime ($mtime) is from after the pause ($resumed)" \
    awk -v m="${mtime:-0}" -v r="$resumed" 'BEGIN { exit !(m + 0 > r + 0) }'

# --- overwrite below what was sent: abandoned, uploaded whole
expect over w:0:24M o:1M:1088K w:24M:40M
before=$(parts_stored)
start_writer s3 over w:0:24M p:over o:1M:1088K w:24M:40M
at_pause over "$before"
writer_done over
check "over: the server holds the overwritten bytes" server_has over.bin "$TEST_TMP/over.want"
check "over: the log says the stream was abandoned" \
    grep -q 'upload of "over.bin" abandoned (written again below' "$LOGS/mnt.log"

# --- truncate below what was sent, then other bytes
expect trunc w:0:24M t:5M o:5M:30M
before=$(parts_stored)
start_writer s3 trunc w:0:24M p:trunc t:5M o:5M:30M
at_pause trunc "$before"
writer_done trunc
check "trunc: the server holds the truncated, rewritten bytes" \
    server_has trunc.bin "$TEST_TMP/trunc.want"
check "trunc: the log says the stream was abandoned" \
    grep -q 'upload of "trunc.bin" abandoned (truncated below' "$LOGS/mnt.log"

# --- fsync mid-stream, then a crash with acknowledged writes
expect closed w:0:1M
"$PYTHON" "$WRITER" "$MNT/s3/closed.bin" "$SRC" "$ALT" - w:0:1M
expect synced w:0:24M
expect fsync w:0:24M w:24M:32M
before=$(parts_stored)
start_writer s3 fsync w:0:24M p:fs1 f p:fs2 w:24M:32M h
at_pause fs1 "$before"
check "fsync: the writer's fsync returns" wait_until 30 test -e "$SIG/fs2"
check "fsync: then the server holds the 24 MiB written before it" \
    server_has fsync.bin "$TEST_TMP/synced.want"
touch "$SIG/fs2.go"
check "fsync: the writer writes 8 MiB more" wait_until 30 test -e "$SIG/held"
daemon=$(daemon_pids "$MNT")
check "the daemon is running" test -n "$daemon"
# shellcheck disable=SC2086 # one argument per pid
kill -9 $daemon
kill "$WRITER_PID" 2>/dev/null
wait "$WRITER_PID" 2>/dev/null
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot remount after the crash"
check "crash: the next mount uploads the acknowledged 32 MiB" \
    wait_until 30 server_has fsync.bin "$TEST_TMP/fsync.want"
check "crash: the file closed before the crash is intact" \
    server_has closed.bin "$TEST_TMP/closed.want"
unmount_skyfs "$MNT"

# --- a fresh mount with an empty cache reads the streamed file back
mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount with an empty cache"
check "seq: a fresh mount reads it back byte for byte" cmp "$TEST_TMP/seq.want" "$MNT/s3/seq.bin"
unmount_skyfs "$MNT"
