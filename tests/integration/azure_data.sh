#!/usr/bin/env bash
# azure_data.sh - Azure Blob Storage (Azurite) at size, from outside, and
# with each way of signing in.
#
#   - a 100 MiB file goes up in blocks (Put Block + Put Block List) and
#     reads back byte for byte, also after a remount with an empty cache;
#   - a directory of 5,000 blobs created directly on Azurite (plus a few
#     subdirectories, so the listing takes two pages) lists completely;
#   - blobs uploaded, rewritten and deleted directly on Azurite show in the
#     mount after the TTL; blobfuse2 and "dir/" markers are directories;
#     rclone/s3fs metadata gives modes and mtimes; names that cannot be
#     file names are skipped with a warning;
#   - `skyfs index` fills the search index from flat listings;
#   - clouds signed in with a SAS token, a connection string and the
#     AZURE_STORAGE_CONNECTION_STRING variable work; a wrong key gives
#     EACCES in that cloud only.
. "$(dirname "$0")/lib.sh"

AZ_KEY=$AZURITE_KEY
AZ_ACCOUNT=$AZURITE_ACCOUNT
PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT/$AZ_ACCOUNT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
BAD_KEY=$(head -c 64 /dev/zero | base64 -w0)

start_azurite "$TEST_TMP/azurite" "$PORT" || die "cannot start Azurite"

SAS=$(azurite_sas)

# put_blob CONTAINER BLOB FILE [curl options...]: uploads FILE directly.
put_blob() {
    local c=$1 b=$2 f=$3; shift 3
    curl -sf --path-as-is -X PUT -H 'x-ms-blob-type: BlockBlob' --data-binary "@$f" "$@" \
        "$ENDPOINT/$c/$b?$SAS" -o /dev/null
}
delete_blob() {
    curl -sf -X DELETE "$ENDPOINT/$1/$2?$SAS" -o /dev/null
}

for c in data many sas; do
    curl -sf -X PUT "$ENDPOINT/$c?restype=container&$SAS" -o /dev/null ||
        die "cannot create container $c"
done

mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[data]
type = azure
endpoint = $ENDPOINT
account = $AZ_ACCOUNT
key = $AZ_KEY
container = data
ttl = 1s

[many]
type = azure
connection_string = DefaultEndpointsProtocol=http;AccountName=$AZ_ACCOUNT;AccountKey=$AZ_KEY;BlobEndpoint=$ENDPOINT;
container = many
ttl = 1s

[sas]
type = azure
endpoint = $ENDPOINT
sas_token = ?$SAS
container = sas
ttl = 1s

[envconn]
type = azure
container = data
prefix = sub
ttl = 1s

[bad]
type = azure
endpoint = $ENDPOINT
account = $AZ_ACCOUNT
key = $BAD_KEY
container = data
EOF
)

# --- blobs that exist before the mount
echo one >"$TEST_TMP/one.txt"
for i in $(seq -w 1 5000); do
    printf 'url = "%s/many/big/f%s?%s"\nupload-file = "%s"\n' "$ENDPOINT" "$i" "$SAS" \
        "$TEST_TMP/one.txt"
done >"$TEST_TMP/many.curl"
for d in sub1 sub2 sub3; do
    printf 'url = "%s/many/big/%s/x?%s"\nupload-file = "%s"\n' "$ENDPOINT" "$d" "$SAS" \
        "$TEST_TMP/one.txt"
done >>"$TEST_TMP/many.curl"
check "5,003 blobs created directly on Azurite" bash -c \
    "curl -s -Z --parallel-max 32 -H 'x-ms-blob-type: BlockBlob' -K '$TEST_TMP/many.curl' \
     -o /dev/null -w '%{http_code}\n' | sort | uniq -c | grep -qx ' *5003 201'"

printf 'in sub\n' >"$TEST_TMP/sub.txt"
put_blob data sub/inside.txt "$TEST_TMP/sub.txt"
: >"$TEST_TMP/empty"
put_blob data bf/folder "$TEST_TMP/empty" -H 'x-ms-meta-hdi_isfolder: true'
put_blob data slash/dir/ "$TEST_TMP/empty"
put_blob data meta/rclone.txt "$TEST_TMP/one.txt" \
    -H 'x-ms-meta-mtime: 2021-05-06T07:08:09.123456789Z' -H "x-ms-meta-mode: $((0100600))"
put_blob data meta/s3fs.txt "$TEST_TMP/one.txt" \
    -H 'x-ms-meta-mtime: 1600000000' -H "x-ms-meta-mode: $((0100640))" \
    -H 'x-ms-meta-uid: 1234' -H 'x-ms-meta-gid: 4321'
put_blob data weird/ok.txt "$TEST_TMP/one.txt"
put_blob data weird/./dot.txt "$TEST_TMP/one.txt"
put_blob data weird//empty-segment.txt "$TEST_TMP/one.txt"

export AZURE_STORAGE_CONNECTION_STRING="AccountName=$AZ_ACCOUNT;AccountKey=$AZ_KEY;BlobEndpoint=$ENDPOINT"
mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
unset AZURE_STORAGE_CONNECTION_STRING

# --- a big directory
check_eq "a 5,000-blob directory lists completely (ls | wc -l)" 5003 \
    "$(ls "$MNT/many/big" 2>&1 | wc -l)"
check_eq "first and last names of the big directory" "f0001 f5000 sub1" \
    "$(find "$MNT/many/big" -mindepth 1 -maxdepth 1 \( -name f0001 -o -name f5000 -o -name sub1 \) \
        -printf '%f\n' 2>&1 | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
check_eq "ls -l of the big directory sees 5,000 files of 4 bytes" 5000 \
    "$(ls -l "$MNT/many/big" 2>&1 | awk '$1 ~ /^-/ && $5 == 4' | wc -l)"

# --- conventions of other tools
check "a blobfuse2 marker (hdi_isfolder) is a directory" test -d "$MNT/data/bf/folder"
check "a zero-byte \"dir/\" blob is a directory" test -d "$MNT/data/slash/dir"
check_eq "rclone's RFC 3339 mtime is read (ns)" "1620284889.123456789" \
    "$(stat -c %.9Y "$MNT/data/meta/rclone.txt" 2>&1)"
check_eq "mode metadata is read" "600" "$(stat -c %a "$MNT/data/meta/rclone.txt" 2>&1)"
check_eq "s3fs's decimal mtime, mode, uid and gid are read" "1600000000 640 1234 4321" \
    "$(stat -c '%Y %a %u %g' "$MNT/data/meta/s3fs.txt" 2>&1)"
check_eq "names that cannot be file names are skipped, the rest listed" "ok.txt" \
    "$(ls "$MNT/data/weird" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check "the skipped names are logged as warnings" grep -q 'not a valid file name' \
    "$LOGS/mnt.log"

# --- changes made directly on Azurite show after the TTL
check_eq "a pre-existing blob is readable" "in sub" "$(cat "$MNT/data/sub/inside.txt" 2>&1)"
check_eq "a missing blob is ENOENT" ENOENT "$(errno_of stat "$MNT/data/outside.txt")"
printf 'uploaded from outside\n' >"$TEST_TMP/outside.txt"
put_blob data outside.txt "$TEST_TMP/outside.txt"
printf 'rewritten from outside, longer\n' >"$TEST_TMP/sub2.txt"
put_blob data sub/inside.txt "$TEST_TMP/sub2.txt"
sleep 2
check_eq "a blob uploaded directly shows after the TTL" "uploaded from outside" \
    "$(cat "$MNT/data/outside.txt" 2>&1)"
check_eq "a blob rewritten directly shows its new content" "rewritten from outside, longer" \
    "$(cat "$MNT/data/sub/inside.txt" 2>&1)"
delete_blob data outside.txt
sleep 2
check_eq "a blob deleted directly is gone after the TTL" ENOENT \
    "$(errno_of stat "$MNT/data/outside.txt")"

# --- a 100 MiB file: block upload, byte-for-byte read
head -c $((100 << 20)) /dev/urandom >"$TEST_TMP/big.bin"
check "copy a 100 MiB file into Azure" cp "$TEST_TMP/big.bin" "$MNT/data/big.bin"
check "sync after the copy" sync
check "the 100 MiB file reads back byte for byte" cmp "$TEST_TMP/big.bin" "$MNT/data/big.bin"
check_eq "the blob on Azurite has every byte" $((100 << 20)) \
    "$(curl -sfI "$ENDPOINT/data/big.bin?$SAS" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "content-length" { print $2 }')"
check "the blob was uploaded as several blocks" bash -c \
    "curl -sf '$ENDPOINT/data/big.bin?comp=blocklist&blocklisttype=committed&$SAS' |
     grep -o '<Block>' | wc -l | awk '\$1 > 1 { ok = 1 } END { exit !ok }'"

# --- sign-in variants
check "a cloud with a SAS token: write" cp "$TEST_TMP/sub.txt" "$MNT/sas/viasas.txt"
check "a cloud with a SAS token: sync" sync
check_eq "a cloud with a SAS token: the blob is there" "in sub" \
    "$(curl -sf "$ENDPOINT/sas/viasas.txt?$SAS" 2>&1)"
check "a cloud with a SAS token: mkdir and rename" bash -c \
    "mkdir '$MNT/sas/d' && mv '$MNT/sas/viasas.txt' '$MNT/sas/d/moved.txt'"
check_eq "a cloud with a SAS token: read after rename" "in sub" \
    "$(cat "$MNT/sas/d/moved.txt" 2>&1)"
check_eq "AZURE_STORAGE_CONNECTION_STRING + prefix shows data/sub" "inside.txt" \
    "$(ls "$MNT/envconn" 2>&1)"
check_eq "a wrong key gives EACCES in that cloud" EACCES "$(errno_of listdir "$MNT/bad")"
check_eq "the other clouds still work" "rewritten from outside, longer" \
    "$(cat "$MNT/data/sub/inside.txt" 2>&1)"

unmount_skyfs "$MNT"

# --- after a remount with an empty cache
rm -rf "$TEST_TMP/cache"
mkdir -p "$TEST_TMP/cache"
AZURE_STORAGE_CONNECTION_STRING="AccountName=$AZ_ACCOUNT;AccountKey=$AZ_KEY;BlobEndpoint=$ENDPOINT" \
    mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF again"
check "after a remount the 100 MiB file reads back byte for byte" \
    cmp "$TEST_TMP/big.bin" "$MNT/data/big.bin"
unmount_skyfs "$MNT"

# --- the index is filled from flat listings (list_tree), offline search
check "skyfs index lists the many cloud" "$SKYFS" index -c "$CONF" many
check_eq "the index finds all 5,003 blobs" 5003 \
    "$("$SKYFS" search -c "$CONF" --cloud many --type f 2>&1 | wc -l)"
check_eq "the index knows the big directory's subdirectories" \
    "many/big/sub1 many/big/sub2 many/big/sub3" \
    "$("$SKYFS" search -c "$CONF" --cloud many --type d --name 'sub*' 2>&1 |
        sed 's|.*/many/|many/|' | LC_ALL=C sort |
        tr '\n' ' ' | sed 's/ $//')"
