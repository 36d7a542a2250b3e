#!/usr/bin/env bash
# http_faults_azure.sh - skyfs against an Azure Blob server that misbehaves.
#
# fault_proxy.py sits between skyfs and Azurite and, by the rules each
# scenario of http_faults_lib.sh sets:
#   - answers ranged GETs with a 206 for another range (once: the retry
#     reads right; always: EIO and a log line, never the wrong bytes);
#   - repeats List Blobs' NextMarker, or sends new markers for pages that
#     bring nothing new: the listing stops with EIO after a few pages, and
#     the log names the cloud;
#   - loses the answer to Put Block List (the server committed): fsync
#     succeeds and the blob holds the file; and the answer to a DELETE:
#     the retry's 404 is the first attempt's success;
#   - accepts requests and never answers: with timeout = 1s a stalled
#     request is tried twice, whatever `retries` says;
#   - refuses the upload of a file rewritten longer: past the ttl the
#     mount still shows its size and bytes, not the server's older
#     version, and the journal's retry stores them;
#   - damages the body of a Put Blob and of a Put Block on the way:
#     Azurite refuses it (Content-MD5), skyfs sends it again, and the blob
#     holds the bytes written.
# And without faults: a blob with 60 x-ms-meta-* keys shows 60 xattrs, a
# rewrite through skyfs keeps them, and metadata past Azure's 8 KiB is
# E2BIG.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_faults_lib.sh"

AZ_PORT=$(free_port)
PROXY_PORT=$(free_port)
MNT="$TEST_TMP/mnt"
CLOUD=az
LIST_Q="comp=list"
META_PREFIX="x-ms-meta-k"
META_LIMIT=8192
DIRECT="http://127.0.0.1:$AZ_PORT/$AZURITE_ACCOUNT/faults"
start_azurite "$TEST_TMP/azurite" "$AZ_PORT" || die "cannot start Azurite"
start_fault_proxy "$PROXY_PORT" "$AZ_PORT" || die "cannot start fault_proxy.py"
SAS=$(azurite_sas)
curl -sf -X PUT "$DIRECT?restype=container&$SAS" -o /dev/null ||
    die "cannot create the container"

put_direct() {
    local name=$1 file=$2 h args=(); shift 2
    for h in "$@"; do args+=(-H "$h"); done
    curl -sf -X PUT -H 'x-ms-blob-type: BlockBlob' "${args[@]}" --data-binary "@$file" \
        "$DIRECT/$name?$SAS" -o /dev/null
}
get_direct() {
    curl -sf -o "$2" "$DIRECT/$1?$SAS"
}
meta_count() {
    curl -sfI "$DIRECT/$1?$SAS" | grep -ci '^x-ms-meta-k[0-9]'
}

mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$TEST_TMP/skyfs.conf" <<EOF
[cache]
dir = $TEST_TMP/cache

[az]
type = azure
endpoint = http://127.0.0.1:$PROXY_PORT/$AZURITE_ACCOUNT
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
container = faults
ttl = 1s

[slow]
type = azure
endpoint = http://127.0.0.1:$PROXY_PORT/$AZURITE_ACCOUNT
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
container = faults
prefix = hangzone
timeout = 1s
connect_timeout = 2s
retries = 5
ttl = 1s
EOF
)
mount_skyfs "$TEST_TMP/skyfs.conf" "$MNT" || die "cannot mount"

COPY_FAULT=cutfail:409:PendingCopyOperation

scenario_ranges
scenario_many_meta
scenario_listing_loops
scenario_lost_answers cutfail:400:InvalidBlockList PUT comp=blocklist PUT comp=block\& 3
scenario_lost_upload
scenario_rename_pending
scenario_pending_news
scenario_hang slow
scenario_damaged_bodies "comp=block&"
scenario_damaged_downloads

unmount_skyfs "$MNT"
