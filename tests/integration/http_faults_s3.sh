#!/usr/bin/env bash
# http_faults_s3.sh - skyfs against an S3 server that misbehaves.
#
# fault_proxy.py sits between skyfs and s3rver and, by the rules each
# scenario of http_faults_lib.sh sets:
#   - answers ranged GETs with a 206 for another range (once: the retry
#     reads right; always: EIO and a log line, never the wrong bytes);
#   - repeats ListObjectsV2's continuation token, or sends new tokens for
#     pages that bring nothing new: the listing stops with EIO after a few
#     pages, and the log names the cloud;
#   - loses the answer to CompleteMultipartUpload (the server committed):
#     the retry's failure is checked against what the bucket holds and
#     fsync succeeds; likewise a DELETE whose answer was lost;
#   - accepts requests and never answers: with timeout = 1s a stalled
#     request is tried twice, whatever `retries` says;
#   - refuses the upload of a file rewritten longer: past the ttl the
#     mount still shows its size and bytes, not the server's older
#     version, and the journal's retry stores them;
#   - damages the body of a PUT and of a part on the way: sent again, the
#     bucket holds the bytes written.
# And without faults: an object with 60 x-amz-meta-* keys shows 60 xattrs,
# a rewrite through skyfs keeps them, and metadata past S3's 2 KiB is
# E2BIG.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_faults_lib.sh"

S3_PORT=$(free_port)
PROXY_PORT=$(free_port)
MNT="$TEST_TMP/mnt"
CLOUD=s3
LIST_Q="list-type=2"
META_PREFIX="x-amz-meta-k"
META_LIMIT=2048
start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket faults ||
    die "cannot start s3rver"
start_fault_proxy "$PROXY_PORT" "$S3_PORT" || die "cannot start fault_proxy.py"

put_direct() {
    local name=$1 file=$2 h args=(); shift 2
    for h in "$@"; do args+=(-H "$h"); done
    s3curl "${args[@]}" -T "$file" "http://127.0.0.1:$S3_PORT/faults/$name" -o /dev/null
}
get_direct() {
    s3curl -o "$2" "http://127.0.0.1:$S3_PORT/faults/$1"
}
meta_count() {
    s3curl -I "http://127.0.0.1:$S3_PORT/faults/$1" | grep -ci '^x-amz-meta-k[0-9]'
}

mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$TEST_TMP/skyfs.conf" <<EOF
[cache]
dir = $TEST_TMP/cache

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" faults)
ttl = 1s

$(s3rver_cloud slow "http://127.0.0.1:$PROXY_PORT" faults)
prefix = hangzone
timeout = 1s
connect_timeout = 2s
retries = 5
ttl = 1s
EOF
)
mount_skyfs "$TEST_TMP/skyfs.conf" "$MNT" || die "cannot mount"

COPY_FAULT=cutfail:412:PreconditionFailed

scenario_ranges
scenario_many_meta
scenario_listing_loops
scenario_lost_answers cut POST uploadId= POST uploads 1
scenario_lost_upload
scenario_rename_pending
scenario_pending_news
scenario_hang slow
scenario_damaged_bodies "partNumber=2&"
scenario_damaged_downloads

unmount_skyfs "$MNT"
