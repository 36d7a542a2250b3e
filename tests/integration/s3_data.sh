#!/usr/bin/env bash
# s3_data.sh - large files and large directories over S3 (s3rver): a
# 100 MiB multipart upload read back from the server and through an empty
# cache, 5,000 objects listed over several ListObjectsV2 pages, a rename
# of the large file.  The checks are objstore_data_lib.sh's.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
MNT="$TEST_TMP/mnt"
NFILES=5000
CLOUD=s3
cloud_section() { s3rver_cloud "$@"; }

# s3rver makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3
# only offers through its legacy provider.
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket data || die "cannot start s3rver"

. "$(dirname "$0")/objstore_data_lib.sh"
