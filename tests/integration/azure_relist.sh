#!/usr/bin/env bash
# azure_relist.sh - past the ttl, the cached names of a folder listed before
# are checked with one listing of the folder, not a HEAD each, on Azure
# (Azurite), and a change of a blob's metadata by another client is seen.
#
# Azure listings carry each blob's metadata (the mode and times skyfs keeps
# there), and a change of the metadata alone gives the blob a new ETag and
# Last-Modified: the listing itself brings the change, with no HEAD.  The
# requests are counted by listing_proxy.py's request log (no fragments).
. "$(dirname "$0")/lib.sh"

AZ_PORT=$(free_port)
PROXY_PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$AZ_PORT/$AZURITE_ACCOUNT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
REQUESTS="$LOGS/requests.log"
start_azurite "$TEST_TMP/azurite" "$AZ_PORT" || die "cannot start Azurite"
SAS=$(azurite_sas)
: >"$TEST_TMP/no-fragments"
_start_server listing_proxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" \
    "$PYTHON" "$SKY_ROOT/tests/integration/listing_proxy.py" "$PROXY_PORT" "$AZ_PORT" azure \
    "$TEST_TMP/no-fragments" "$REQUESTS" || die "cannot start listing_proxy.py"
curl -sf -X PUT "$ENDPOINT/relist?restype=container&$SAS" >/dev/null || die "cannot create container"
mkdir -p "$TEST_TMP/cache"
# (index = off: the background crawl, which starts in the first quiet
# second, would refresh the names between the counts)
(umask 077 && cat >"$CONF" <<CONF_END
[cache]
dir = $TEST_TMP/cache

[az]
type = azure
endpoint = http://127.0.0.1:$PROXY_PORT/$AZURITE_ACCOUNT
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
container = relist
ttl = 2s
index = off
CONF_END
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
D="$MNT/az/d"
. "$SKY_ROOT/tests/integration/relist_lib.sh"
make_names
lists_of_d() { requests_since "$1" | grep -c "^GET /$AZURITE_ACCOUNT/relist?.*comp=list.*prefix=d%2F"; }

sleep 2.5
stat "$D" >/dev/null            # the folder's own entry, refreshed first
m=$(requests_mark)
check_eq "past the ttl, stat of the 12 names shows their mode and mtime" \
    "$(expected f05 600 "$want")" "$(attrs)"
check_eq "and cost one listing of their folder" 1 "$(lists_of_d "$m")"
check_eq "and no HEAD" 0 "$(heads "$m")"
check_eq "and no other request" 1 "$(requests_since "$m" | wc -l)"

check "another client sets f05's metadata (mode 644, mtime 1000000000)" \
    curl -sf -X PUT -H "x-ms-meta-mode: $((8#100644))" -H "x-ms-meta-mtime: 1000000000" \
        -o /dev/null "$ENDPOINT/relist/d/f05?comp=metadata&$SAS"
sleep 2.5
stat "$D" >/dev/null
m=$(requests_mark)
check_eq "past the ttl, stat shows f05's new mode and mtime" \
    "$(expected f05 644 1000000000)" "$(attrs)"
check_eq "from one listing of the folder" 1 "$(lists_of_d "$m")"
check_eq "and no HEAD" 0 "$(heads "$m")"
unmount_skyfs "$MNT"
