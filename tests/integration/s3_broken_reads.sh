#!/usr/bin/env bash
# s3_broken_reads.sh - downloads that break part way are retried, and what
# the block cache keeps of them is right.
#
# Between skyfs and s3rver sits cut_proxy.py, which cuts each ranged GET
# after half its body the first time (and every other time) it is asked:
# libcurl sees a transfer that broke, the HTTP client retries it, and the
# retry hands its bytes to the block cache again from the start of the
# range, where the block cache must start over (for a run of blocks: keep
# the blocks it already kept, and take the rest).  Checks:
#   - a 24 MiB file read sequentially (readahead: runs of blocks in one
#     request) and random 4 KiB reads (64 KiB chunks) come back byte for
#     byte, and the proxy did cut responses;
#   - after a remount with the same cache and the server gone, the cached
#     bytes read back unchanged: each block and chunk was kept with the
#     checksum of its bytes (a wrong one would be dropped and refetched,
#     which fails offline).
. "$(dirname "$0")/lib.sh"

S3_PORT=$(free_port)
PROXY_PORT=$(free_port)
MNT="$TEST_TMP/mnt"
CUTS="$TEST_TMP/cuts"
start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket flaky || die "cannot start s3rver"
_start_server cut_proxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" \
    "$PYTHON" "$SKY_ROOT/tests/integration/cut_proxy.py" "$PROXY_PORT" "$S3_PORT" "$CUTS" ||
    die "cannot start cut_proxy.py"

# write_conf CONFIG CACHE_DIR
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" flaky)
ttl = 1h
EOF
    )
}
write_conf "$TEST_TMP/seq.conf" "$TEST_TMP/cache-seq"
write_conf "$TEST_TMP/rnd.conf" "$TEST_TMP/cache-rnd"

head -c $((24 << 20)) /dev/urandom >"$TEST_TMP/big"
check "upload a 24 MiB object straight to the server" \
    curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$TEST_TMP/big" \
        "http://127.0.0.1:$S3_PORT/flaky/big.bin"

# --- sequential: readahead runs, some cut
mount_skyfs "$TEST_TMP/seq.conf" "$MNT" || die "cannot mount"
check "a sequential read through broken downloads equals the object" \
    cmp "$TEST_TMP/big" "$MNT/s3/big.bin"
seq_cuts=$(cat "$CUTS")
check "the proxy cut downloads of the sequential read" test "$seq_cuts" -ge 2
unmount_skyfs "$MNT"

# --- random 4 KiB reads: chunks, some cut
OFFSETS="123457 3000001 5242880 9999999 17000000 25165000"
read_at() {     # read_at FILE OFFSET: 4 KiB at OFFSET
    dd if="$1" bs=4096 count=1 iflag=skip_bytes skip="$2" status=none
}
same_pieces() {
    local off
    for off in $OFFSETS; do
        cmp <(read_at "$TEST_TMP/big" "$off") <(read_at "$MNT/s3/big.bin" "$off") || return 1
    done
}
mount_skyfs "$TEST_TMP/rnd.conf" "$MNT" || die "cannot mount"
check "random reads through broken downloads equal the object" same_pieces
check "the proxy cut downloads of the random reads" test "$(cat "$CUTS")" -gt "$seq_cuts"
unmount_skyfs "$MNT"

# --- offline: only what the cache kept, checked against its checksums
stop_servers
mount_skyfs "$TEST_TMP/seq.conf" "$MNT" || die "cannot mount offline"
check "offline, the whole cached file reads back unchanged" cmp "$TEST_TMP/big" "$MNT/s3/big.bin"
unmount_skyfs "$MNT"
mount_skyfs "$TEST_TMP/rnd.conf" "$MNT" || die "cannot mount offline"
check "offline, the cached chunks read back unchanged" same_pieces
unmount_skyfs "$MNT"
