#!/usr/bin/env bash
# many_gcs.sh - many machines, one cloud (issue 17) on a gcs cloud: two
# mounts with their own caches race on one bucket (many_lib.sh).  The test
# server is s3rver spoken to through GCS's XML API (gcs_lib.sh).  skyfs
# sends GCS's create-only precondition, x-goog-if-generation-match: 0,
# where its probe finds the server checks it; s3rver ignores it, so the
# probe says so (log and skyfs status) and every upload compares the
# object's version with a HEAD right before instead.  Against real GCS
# the probe finds the header honoured (not tested here: no GCS server).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"
. "$(dirname "$0")/many_lib.sh"

PORT=$(free_port)
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket shared || die "cannot start s3rver"
many_run "$(gcs_cloud c "http://127.0.0.1:$PORT" shared | tail -n +2)" compare
check "the log says the server ignores x-goog-if-generation-match: 0" \
    grep -q "the server ignores x-goog-if-generation-match: 0" "$LOGS/b.log"
check_fails "the probe leaves no object behind" bash -c \
    "curl -sf --aws-sigv4 'aws:amz:us-east-1:s3' --user S3RVER:S3RVER -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' 'http://127.0.0.1:$PORT/shared?list-type=2' | grep -q skyfs-probe"
