# shellcheck shell=bash
# gcs_lib.sh - helpers of the gcs_*.sh test files (source after lib.sh).
#
# The gcs clouds of the tests talk to s3rver through GCS's XML API as it
# is with HMAC keys (AWS SigV4, x-amz-* headers), and, for the token
# flows, to gcs_token_server.js: an OAuth2 token endpoint plus a storage
# front that lets only Bearer tokens it issued through to s3rver.

# gcs_cloud NAME ENDPOINT BUCKET: the config section of a gcs cloud NAME
# over BUCKET on the s3rver at ENDPOINT, with s3rver's keys as HMAC keys.
gcs_cloud() {
    printf '[%s]\ntype = gcs\nendpoint = %s\nbucket = %s\n' "$1" "$2" "$3"
    printf 'access_key_id = S3RVER\nsecret_access_key = S3RVER\n'
}

# start_gcs_token_server CONFIG_JSON TOKEN_PORT
#   Starts gcs_token_server.js with CONFIG_JSON (see its header) and waits
#   until its token endpoint answers.  Records one check.
start_gcs_token_server() {
    local conf=$1 port=$2
    command -v node >/dev/null ||
        { record FAIL "start gcs_token_server: node is not installed (run make deps)"; return 1; }
    _start_server gcs_token_server "$port" "http://127.0.0.1:$port/" \
        node "$SKY_ROOT/tests/integration/gcs_token_server.js" "$conf"
}
