#!/usr/bin/env bash
# swift_data.sh - large objects, large containers and other tools over
# OpenStack Swift (Debian's all-in-one from swift_lib.sh).
#
# Checks:
#   - a 100 MiB file written through the mount becomes a Static Large
#     Object: segments in "data_segments", the manifest listing each; it
#     comes back byte for byte from the server, through a fresh mount with
#     an empty cache, and through rclone's swift backend;
#   - renaming it copies the manifest, not the data (the same segments,
#     none added), and keeps its bytes; replacing it with a small file,
#     and removing a large file, delete their segments;
#   - a new file goes up as SLO segments while it is written (streamed
#     upload), the manifest at close;
#   - files written through skyfs are read right by rclone (content and
#     mtime);
#     (swift_many.sh lists 5,000 objects and moves files between clouds.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/swift_lib.sh"

MNT="$TEST_TMP/mnt"
start_swift "$TEST_TMP/swift" || die "cannot start swift"
swift_container data || die "cannot create the container"

# write_conf CONFIG CACHE_DIR
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

[sw]
type = swift
auth_url = $SWIFT_AUTH
user = $SWIFT_USER
key = $SWIFT_KEY
container = data
ttl = 2s
EOF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
SW="$MNT/sw"

sw_header() {
    scurl -I "$SWIFT_URL/data/$1" | header_of "$2"
}
sw_sha() { scurl "$SWIFT_URL/data/$1" | sha256sum | cut -d' ' -f1; }
segments() { scurl "$SWIFT_URL/data_segments?prefix=$1" | LC_ALL=C sort; }
# rclone's swift backend on the same account (no config file)
export RCLONE_CONFIG_RSW_TYPE=swift RCLONE_CONFIG_RSW_AUTH="$SWIFT_AUTH" \
    RCLONE_CONFIG_RSW_USER="$SWIFT_USER" RCLONE_CONFIG_RSW_KEY="$SWIFT_KEY"
rcl() { env -u AWS_CA_BUNDLE rclone --config /dev/null "$@"; }
command -v rclone >/dev/null || die "rclone is missing (run make deps)"

# --- 100 MiB: a Static Large Object
head -c $((100 << 20)) /dev/urandom >"$TEST_TMP/big"
SHA=$(sha256sum <"$TEST_TMP/big" | cut -d' ' -f1)
check "cp of a 100 MiB file into the cloud" cp "$TEST_TMP/big" "$SW/big.bin"
check_eq "the object is a Static Large Object" True "$(sw_header big.bin x-static-large-object)"
check_eq "of 7 segments of 16 MiB in data_segments" 7 "$(segments big.bin/ | grep -c .)"
check_eq "the manifest lists exactly those segments" "$(segments big.bin/ | sed 's|^|data_segments/|')" \
    "$(scurl "$SWIFT_URL/data/big.bin?multipart-manifest=get&format=raw" |
       "$PYTHON" -c 'import json, sys
for s in json.load(sys.stdin): print(s["path"].lstrip("/"))' | LC_ALL=C sort)"
check_eq "the server gives back the same 100 MiB" "$SHA" "$(sw_sha big.bin)"
check_eq "rclone's swift backend reads the same 100 MiB" "$SHA" \
    "$(rcl cat rsw:data/big.bin | sha256sum | cut -d' ' -f1)"
mount_skyfs "$TEST_TMP/b.conf" "$TEST_TMP/mnt2" || die "cannot mount a second time"
check_eq "a fresh mount with an empty cache reads the same 100 MiB" "$SHA" \
    "$(sha256sum <"$TEST_TMP/mnt2/sw/big.bin" | cut -d' ' -f1)"
unmount_skyfs "$TEST_TMP/mnt2"

# --- rename: the manifest moves, the segments stay
BEFORE=$(segments "")
check "mv of the large file" mv "$SW/big.bin" "$SW/moved.bin"
check_eq "the copy is an SLO too" True "$(sw_header moved.bin x-static-large-object)"
check_eq "no segment was added or removed (the data was not copied)" "$BEFORE" "$(segments "")"
check_fails "the old name is gone from the server" scurl -I "$SWIFT_URL/data/big.bin"
check_eq "the moved object has the same bytes" "$SHA" "$(sw_sha moved.bin)"
check_eq "read through the mount too" "$SHA" "$(sha256sum <"$SW/moved.bin" | cut -d' ' -f1)"

# --- replacing and removing large objects removes their segments
check "a small file replaces the large one" eval 'echo small >"$SW/moved.bin"'
check_eq "the replaced object's segments are gone" "" "$(segments "")"
check_eq "and the object is the small file" small "$(scurl "$SWIFT_URL/data/moved.bin")"
head -c $((40 << 20)) /dev/urandom >"$TEST_TMP/mid"
check "cp of a 40 MiB file" cp "$TEST_TMP/mid" "$SW/mid.bin"
check_eq "3 segments" 3 "$(segments mid.bin/ | grep -c .)"
check "rm of the large file" rm "$SW/mid.bin"
check_eq "rm removed its segments" "" "$(segments "")"
check_fails "and its manifest" scurl -I "$SWIFT_URL/data/mid.bin"

# --- a new file goes up while it is written (streamed SLO segments)
WRITER="$SKY_ROOT/tests/integration/stream_writer.py"
mkdir -p "$TEST_TMP/sig"
head -c $((40 << 20)) /dev/urandom >"$TEST_TMP/src40"
"$PYTHON" "$WRITER" "$SW/stream.bin" "$TEST_TMP/src40" "$TEST_TMP/src40" "$TEST_TMP/sig" \
    w:0:40M p:written >"$LOGS/writer.log" 2>&1 &
WRITER_PID=$!
check "the writer wrote 40 MiB and holds the file open" \
    wait_until 120 test -e "$TEST_TMP/sig/written"
check "segments of the open file are on the server before close" \
    wait_until 60 eval '[ "$(segments stream.bin/ | grep -c .)" -ge 2 ]'
check_eq "while the object is still the empty file the open created" 0 \
    "$(sw_header stream.bin content-length)"
touch "$TEST_TMP/sig/written.go"
check "the writer's close succeeds" wait "$WRITER_PID"
check_eq "the object is an SLO with the 40 MiB written" \
    "True $(sha256sum <"$TEST_TMP/src40" | cut -d' ' -f1)" \
    "$(echo "$(sw_header stream.bin x-static-large-object) $(sw_sha stream.bin)")"
check_eq "made of the 3 segments the stream sent" 3 "$(segments stream.bin/ | grep -c .)"

# --- what skyfs writes, rclone reads right
mkdir -p "$SW/for-rclone"
printf 'written by skyfs\n' >"$SW/for-rclone/note.txt"
touch -d '2015-06-07 08:09:10.5 UTC' "$SW/for-rclone/note.txt"
check_eq "rclone cat reads a file skyfs wrote" "written by skyfs" \
    "$(sleep 1; rcl cat rsw:data/for-rclone/note.txt 2>&1)"
check_eq "rclone lsl shows the mtime skyfs stored" "2015-06-07 08:09:10.500000000" \
    "$(TZ=UTC rcl lsl rsw:data/for-rclone 2>&1 | awk '{ print $2, $3 }')"

unmount_skyfs "$MNT"
