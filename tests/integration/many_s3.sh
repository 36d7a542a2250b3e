#!/usr/bin/env bash
# many_s3.sh - many machines, one cloud (issue 17) on S3: two mounts with
# their own caches race on one s3rver bucket (many_lib.sh).  s3rver ignores
# If-Match and If-None-Match on PUT: skyfs finds that out with its probe
# at the first upload, says so in its log and in skyfs status, and compares
# the object's version with a HEAD right before each upload instead.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/many_lib.sh"

PORT=$(free_port)
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket shared || die "cannot start s3rver"
many_run "$(s3rver_cloud c "http://127.0.0.1:$PORT" shared | tail -n +2)" compare
check "the log says why the guarantee is weaker" \
    grep -Eq "the server (ignores|refuses) If-(None-)?Match" "$LOGS/b.log"
check_fails "the probe leaves no object behind" bash -c \
    "s3curl() { curl -sf --aws-sigv4 'aws:amz:us-east-1:s3' --user S3RVER:S3RVER -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \"\$@\"; }; s3curl 'http://127.0.0.1:$PORT/shared?list-type=2' | grep -q skyfs-probe"
