#!/usr/bin/env bash
# gcs_data.sh - large files and large directories over GCS's XML API
# (HMAC keys), against s3rver.
#
# Checks:
#   - a 100 MiB file written through the mount goes up as an XML
#     multipart upload and comes back byte for byte: from the server
#     directly, and through a second mount with an empty cache (every byte
#     from ranged GETs);
#   - a directory of 5,000 objects created on the server directly (several
#     listing pages) is listed completely, with names and sizes, from the
#     listing alone;
#   - renaming the 100 MiB file (server-side copy + delete) keeps its bytes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
MNT="$TEST_TMP/mnt"
NFILES=5000

export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket data || die "cannot start s3rver"

write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOC
[cache]
dir = $2

$(gcs_cloud gcs "$ENDPOINT" data)
ttl = 2s
EOC
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"

# --- 100 MiB, multipart
head -c $((100 << 20)) /dev/urandom >"$TEST_TMP/big"
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
check "cp of a 100 MiB file into the cloud" cp "$TEST_TMP/big" "$MNT/gcs/big.bin"
check "the mount reads it back byte for byte" cmp "$TEST_TMP/big" "$MNT/gcs/big.bin"
unmount_skyfs "$MNT"     # drains the upload
check "the server holds the same 100 MiB" \
    eval 's3curl -o "$TEST_TMP/big.server" "$ENDPOINT/data/big.bin" && cmp "$TEST_TMP/big" "$TEST_TMP/big.server"'
rm -f "$TEST_TMP/big.server"

mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount with an empty cache"
check_eq "a fresh mount sees the size" $((100 << 20)) "$(stat -c %s "$MNT/gcs/big.bin" 2>&1)"
check "a fresh mount (empty cache) reads it byte for byte" cmp "$TEST_TMP/big" "$MNT/gcs/big.bin"
check "rename of the large file" mv "$MNT/gcs/big.bin" "$MNT/gcs/big2.bin"
check "the renamed file reads back" cmp "$TEST_TMP/big" "$MNT/gcs/big2.bin"
check "the old key is gone" eval '! s3curl -I "$ENDPOINT/data/big.bin" >/dev/null'
check "rm of the large file" rm "$MNT/gcs/big2.bin"
rm -f "$TEST_TMP/big"

# --- 5,000 objects made on the server, listed through the mount
printf 'x%.0s' $(seq 10) >"$TEST_TMP/small"
for i in $(seq -w 1 $NFILES); do
    echo "upload-file = \"$TEST_TMP/small\""
    echo "url = \"$ENDPOINT/data/many/file-$i.txt\""
done >"$TEST_TMP/uploads.curl"
check "create $NFILES objects on the server" \
    s3curl --parallel --parallel-max 16 -K "$TEST_TMP/uploads.curl"
seq -w 1 $NFILES | sed 's/^/file-/; s/$/.txt/' >"$TEST_TMP/expected"
check "ls lists all $NFILES objects, names exact" wait_until 10 eval \
    'ls "$MNT/gcs/many" | LC_ALL=C sort | cmp -s - "$TEST_TMP/expected"'
check_eq "every listed file has its size" "10 $NFILES" \
    "$(find "$MNT/gcs/many" -type f -printf '%s\n' | sort | uniq -c | awk '{print $2, $1}')"
sleep 3
check_eq "after the TTL the listing is still complete" $NFILES "$(ls "$MNT/gcs/many" | wc -l)"

unmount_skyfs "$MNT"
