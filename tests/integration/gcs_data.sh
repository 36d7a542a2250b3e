#!/usr/bin/env bash
# gcs_data.sh - large files and large directories over GCS's XML API
# (HMAC keys), against s3rver: a 100 MiB XML multipart upload read back
# from the server and through an empty cache, 5,000 objects listed over
# several pages, a rename (server-side copy + delete) of the large file.
# The checks are objstore_data_lib.sh's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
MNT="$TEST_TMP/mnt"
NFILES=5000
CLOUD=gcs
cloud_section() { gcs_cloud "$@"; }

export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket data || die "cannot start s3rver"

. "$(dirname "$0")/objstore_data_lib.sh"
