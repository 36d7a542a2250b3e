#!/usr/bin/env bash
# azure_stream.sh - uploads that start while the writer is still writing, on
# Azure Blob Storage (Azurite).
#
# While a writer (stream_writer.py) pauses, the test asks Azurite for the
# blob's uncommitted blocks (Get Block List).  Checks:
#   - a 41 MiB file written with a pause after 24 MiB: Azurite holds
#     uncommitted blocks while the file is open; after close the blob holds
#     the same bytes, committed in one block list with its metadata;
#   - a writer that overwrites 64 KiB at 1 MiB after blocks went up: the
#     stream is abandoned (the log says so) and the blob ends with the
#     overwritten bytes (the abandoned stream's blocks are not in its list);
#   - a fresh mount with an empty cache reads the first file back.
. "$(dirname "$0")/lib.sh"
# shellcheck source=stream_lib.sh
. "$(dirname "$0")/stream_lib.sh"

AZ_ACCOUNT=$AZURITE_ACCOUNT
AZ_KEY=$AZURITE_KEY
PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT/$AZ_ACCOUNT"

start_azurite "$TEST_TMP/azurite" "$PORT" || die "cannot start Azurite"

SAS=$(azurite_sas)
curl -sf -X PUT "$ENDPOINT/stream?restype=container&$SAS" -o /dev/null ||
    die "cannot create container stream"

# write_conf CONFIG CACHE_DIR: one azure cloud "az" over container "stream".
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

[az]
type = azure
endpoint = $ENDPOINT
account = $AZ_ACCOUNT
key = $AZ_KEY
container = stream
ttl = 2s
EOF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"


server_has() { curl -sf "$ENDPOINT/stream/$1?$SAS" | cmp -s "$2" -; }
# has_uncommitted BLOB: Azurite lists uncommitted blocks for BLOB.
has_uncommitted() {
    curl -sf "$ENDPOINT/stream/$1?comp=blocklist&blocklisttype=uncommitted&$SAS" |
        grep -q '<UncommittedBlocks><Block>'
}

# at_pause NAME: waits for the writer's pause NAME, checks that Azurite
# holds uncommitted blocks of NAME.bin (the file is open), lets it go on.
at_pause() {
    check "$1: the writer reaches its pause" wait_until 30 test -e "$SIG/$1"
    check "$1: Azurite holds uncommitted blocks while the file is still open" \
        wait_until 30 has_uncommitted "$1.bin"
    touch "$SIG/$1.go"
}

mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"

size=$((41 * MiB + 12345))
expect seq "w:0:$size"
start_writer az seq w:0:24M p:seq "w:24M:$size"
at_pause seq
writer_done seq
check "seq: the blob holds the same $size bytes after close" server_has seq.bin "$TEST_TMP/seq.want"
check "seq: its metadata came with the block list" \
    bash -c "curl -sfI '$ENDPOINT/stream/seq.bin?$SAS' | grep -qi '^x-ms-meta-mtime:'"

expect over w:0:24M o:1M:1088K w:24M:40M
start_writer az over w:0:24M p:over o:1M:1088K w:24M:40M
at_pause over
writer_done over
check "over: the blob holds the overwritten bytes" server_has over.bin "$TEST_TMP/over.want"
check "over: the log says the stream was abandoned" \
    grep -q 'upload of "over.bin" abandoned (written again below' "$LOGS/mnt.log"
unmount_skyfs "$MNT"

mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount with an empty cache"
check "seq: a fresh mount reads it back byte for byte" cmp "$TEST_TMP/seq.want" "$MNT/az/seq.bin"
unmount_skyfs "$MNT"
