# shellcheck shell=bash
# objstore_data_lib.sh - large files and large directories over one object
# cloud: the body shared by s3_data.sh and gcs_data.sh (source it after
# lib.sh, once the server is up).
#
# The caller sets CLOUD (the cloud's name, also its kind's word), ENDPOINT
# (the server, holding bucket "data"), MNT, NFILES, and defines
# cloud_section NAME ENDPOINT BUCKET (the config section of the cloud).
# Objects are put and read on the server directly with s3curl (both
# kinds' tests run on s3rver).
#
# Checks:
#   - a 100 MiB file written through the mount goes up as a multipart
#     upload and comes back byte for byte: from the server directly, and
#     through a second mount with an empty cache (every byte from ranged
#     GETs);
#   - a directory of NFILES objects created on the server directly (so the
#     listing takes several pages) is listed completely, with the right
#     names and sizes, from the listing alone;
#   - renaming the 100 MiB file (server-side copy + delete) keeps its bytes.

# write_conf CONFIG CACHE_DIR: one cloud $CLOUD over bucket "data".
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

$(cloud_section "$CLOUD" "$ENDPOINT" data)
ttl = 2s
EOF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"

# --- 100 MiB, multipart
head -c $((100 << 20)) /dev/urandom >"$TEST_TMP/big"
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
check "cp of a 100 MiB file into the cloud" cp "$TEST_TMP/big" "$MNT/$CLOUD/big.bin"
check "the mount reads it back byte for byte" cmp "$TEST_TMP/big" "$MNT/$CLOUD/big.bin"
unmount_skyfs "$MNT"     # drains the upload
check "the server holds the same 100 MiB" \
    eval 's3curl -o "$TEST_TMP/big.server" "$ENDPOINT/data/big.bin" && cmp "$TEST_TMP/big" "$TEST_TMP/big.server"'
rm -f "$TEST_TMP/big.server"

mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount with an empty cache"
check_eq "a fresh mount sees the size" $((100 << 20)) "$(stat -c %s "$MNT/$CLOUD/big.bin" 2>&1)"
check "a fresh mount (empty cache) reads it byte for byte" cmp "$TEST_TMP/big" "$MNT/$CLOUD/big.bin"
check "rename of the large file" mv "$MNT/$CLOUD/big.bin" "$MNT/$CLOUD/big2.bin"
check "the renamed file reads back" cmp "$TEST_TMP/big" "$MNT/$CLOUD/big2.bin"
check "the old key is gone" eval '! s3curl -I "$ENDPOINT/data/big.bin" >/dev/null'
check "rm of the large file" rm "$MNT/$CLOUD/big2.bin"
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
check "the last object is on the server" s3curl -I "$ENDPOINT/data/many/file-$NFILES.txt"
check "ls lists all $NFILES objects, names exact" wait_until 10 eval \
    'ls "$MNT/$CLOUD/many" | LC_ALL=C sort | cmp -s - "$TEST_TMP/expected"'
check_eq "every listed file has its size" "10 $NFILES" \
    "$(find "$MNT/$CLOUD/many" -type f -printf '%s\n' | sort | uniq -c | awk '{print $2, $1}')"
sleep 3
check_eq "after the TTL the listing is still complete" $NFILES "$(ls "$MNT/$CLOUD/many" | wc -l)"

unmount_skyfs "$MNT"
