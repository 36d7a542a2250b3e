#!/usr/bin/env bash
# many_rgw.sh - many machines, one cloud (issue 17) on S3 served by Ceph's
# RADOS Gateway (start_rgw): two mounts with their own caches race on one
# bucket (many_lib.sh).  RGW 16 checks If-Match and If-None-Match on PUT
# and DELETE, but ignores them when it completes a multipart upload: the
# probe finds both, files sent in one PUT are protected by the server,
# files sent in parts (over 8 MiB) compare with a HEAD, and skyfs status
# reports the weaker guarantee, saying why.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/many_lib.sh"

PORT=$(free_port)
start_rgw "$TEST_TMP/rgw" "$PORT" shared || die "cannot start rgw"
many_run "$(rgw_cloud c "$RGW_ENDPOINT" shared | tail -n +2)" compare
check "the log says PUT checks the preconditions, the multipart completion does not" \
    grep -q "the server checks If-Match and If-None-Match on PUT but ignores If-Match when it completes a multipart upload" "$LOGS/b.log"
check "skyfs status says why" bash -c \
    "'$SKYFS' status -c '$TEST_TMP/b.conf' | grep -q 'ignores If-Match when it completes a multipart upload'"
check_fails "the probes leave no object and no multipart upload behind" bash -c \
    ". '$SKY_ROOT/tests/servers/rgw.sh'; { rgw_curl '$RGW_ENDPOINT/shared?list-type=2'; rgw_curl '$RGW_ENDPOINT/shared?uploads='; } | grep -q skyfs-probe"
check "the log says If-Match goes bare (RGW compares ETags without quotes on PUT)" \
    grep -q "the server compares If-Match with ETags without their quotes" "$LOGS/b.log"
