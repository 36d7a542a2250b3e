#!/usr/bin/env bash
# azure_folder_modes.sh - on Azure (Azurite), a folder's mode, owner and
# times show through a fresh cache whose first look at the folder is its
# parent's listing, for both kinds of folder marker:
#   - skyfs's (blobfuse2's) named marker "dir" with hdi_isfolder, listed with
#     its metadata: no question needed;
#   - another tool's "dir/" marker blob, hidden behind the listing's
#     BlobPrefix "dir/": one HEAD of "dir/" per folder before the listing
#     is answered (as on S3), none for a folder with a named marker (mount
#     B has no background crawl, whose flat listing shows "dir/" blobs with
#     their metadata and would fill the cache first);
#   - a prefix with no marker at all shows the default 0755.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT/$AZURITE_ACCOUNT"
MNT="$TEST_TMP/mnt"
AZLOG="$LOGS/azurite-debug.log"     # Azurite's debug log names each request
start_azurite "$TEST_TMP/azurite" "$PORT" -d "$AZLOG" || die "cannot start Azurite"
# marker_heads: the folder markers (top/NAME/) HEADed since the mark, sorted
marker_heads() {
    tail -n +"$mark" "$AZLOG" | grep -o "RequestMethod=HEAD RequestURL=[^ ]*/fmodes/top/[^/ ]*/ " |
        sed 's#.*/top/##; s# $##' | sort | tr '\n' ' ' | sed 's/ $//'
}

# write_conf CONFIG CACHE_DIR [LINE]: LINE added to the cloud's section
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<CONF
[cache]
dir = $2

[acct]
type = azure
endpoint = $ENDPOINT
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
ttl = 3s
${3:-}
CONF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
# B without the background crawl: its flat listing would show the "x/"
# blob with its metadata and fill the cache before the listing is made
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b" "index = off"
SAS=$(azurite_sas)
want_mtime=$(date -d '2001-02-03 04:05:06' +%s)

mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount A"
top="$MNT/acct/fmodes/top"
check "mkdir of the container and the folders" mkdir -p "$top/d1" "$top/d2"
chmod 750 "$top/d1"
chmod 700 "$top/d2"
chown 1234:2345 "$top/d2"
touch -d '2001-02-03 04:05:06' "$top/d1"
# d3 holds a file: Azurite lists its prefix "top/d3/" before its named
# marker "top/d3", and the marker's mode and mtime must win over the bare
# prefix (the prefix, listed first, is asked about once)
check "a folder with a file in it" eval "mkdir '$top/d3' && echo f >'$top/d3/f'"
chmod 750 "$top/d3"
touch -d '2001-02-03 04:05:06' "$top/d3"
unmount_skyfs "$MNT"

# put_blob NAME [curl args...]: an empty block blob straight to Azurite
put_blob() {
    local name=$1; shift
    curl -sf -X PUT -H "x-ms-blob-type: BlockBlob" "$@" --data-binary "" \
        "$ENDPOINT/fmodes/$name?$SAS" >/dev/null
}
check "another tool's folder: a top/x/ marker blob (040700, uid 77)" \
    put_blob top/x/ -H "x-ms-meta-mode: $((040700))" -H "x-ms-meta-uid: 77" \
    -H "x-ms-meta-mtime: 2001-02-03T04:05:06Z"
check "a file in it" put_blob top/x/f
check "a folder without marker: only top/plain/f" put_blob top/plain/f

mark=$(($(wc -l <"$AZLOG") + 1))
mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount B"
got=$(ls -ln --time-style=+%s "$top" | awk 'NR > 1 { print $NF, $1, $3, $4, $6 }')
check_eq "ls -l through an empty cache: modes, owners, mtimes" \
    "d1 drwxr-x--- 0 0 $want_mtime
d2 drwx------ 1234 2345
d3 drwxr-x--- 0 0 $want_mtime
plain drwxr-xr-x 0 0
x drwx------ 77 0 $want_mtime" "$(echo "$got" | awk '$1 == "d2" || $1 == "plain" { NF = 4 } { print }')"
# (Azurite writes its debug log a moment after it answers: its last lines
# may not be there yet when ls returns)
heads_are() { [ "$(marker_heads)" = "$1" ]; }
wait_until 5 heads_are "d3/ plain/ x/"
check_eq "one HEAD of d3/, x/ and plain/, none of d1/ d2/ (named markers)" \
    "d3/ plain/ x/" "$(marker_heads)"
unmount_skyfs "$MNT"
