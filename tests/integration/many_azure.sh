#!/usr/bin/env bash
# many_azure.sh - many machines, one cloud (issue 17) on Azure Blob: two
# mounts with their own caches race on one Azurite container
# (many_lib.sh).  Azurite checks If-Match and If-None-Match on Put Blob,
# Put Block List and Delete Blob: the probe finds that, and the server
# itself refuses every upload or delete over a version the mount did not
# see (skyfs status: native).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/many_lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT/$AZURITE_ACCOUNT"
start_azurite "$TEST_TMP/azurite" "$PORT" || die "cannot start Azurite"
SAS=$(azurite_sas)
curl -sf -X PUT "$ENDPOINT/shared?restype=container&$SAS" -o /dev/null ||
    die "cannot create container shared"
many_run "type = azure
endpoint = $ENDPOINT
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
container = shared" native
check "the log says the server checks preconditions" \
    grep -q "the server checks If-Match and If-None-Match" "$LOGS/b.log"
check_fails "the probe leaves no blob behind" bash -c \
    "curl -sf '$ENDPOINT/shared?restype=container&comp=list&$SAS' | grep -q skyfs-probe"
