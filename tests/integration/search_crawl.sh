#!/usr/bin/env bash
# search_crawl.sh - the background crawl keeps every cloud's search index
# complete (issue 19).
#
# Files are put straight into each kind of cloud - a local folder, an S3
# bucket (s3rver), an Azure container (Azurite) - and nothing is listed
# through the mount: `skyfs search` finds them once the first crawl is
# complete (skyfs status says when).  Objects deleted on the servers
# disappear from the results after a refresh (index_interval = 2s).  A
# cloud with `index = off` is never listed by the daemon (s3rver's own
# request log shows no LIST of its bucket until `ls` asks) and search
# says so on stderr.  status and search --json carry the crawl's state;
# search warns once a cloud's index is older than its interval; a crawl
# pauses while its cloud is offline and resumes when it is back.
. "$(dirname "$0")/lib.sh"

S3_PORT=$(free_port)
AZ_PORT=$(free_port)
S3="http://127.0.0.1:$S3_PORT"
AZ="http://127.0.0.1:$AZ_PORT/$AZURITE_ACCOUNT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
DOCS="$TEST_TMP/data/docs"
mkdir -p "$DOCS/deep/er/still" "$TEST_TMP/cache"

# s3rver with its request log on (lib.sh's start_s3rver silences it): one
# line per request it answers, so LIST requests can be counted.
start_logged_s3rver() {
    [ -f "$SERVERS_DIR/s3rver/bin/s3rver.js" ] ||
        { record FAIL "start s3rver: not installed (run make deps)"; return 1; }
    _start_server s3rver "$S3_PORT" "$S3/" env NODE_OPTIONS=--openssl-legacy-provider \
        node "$SERVERS_DIR/s3rver/bin/s3rver.js" -d "$TEST_TMP/s3rver" -a 127.0.0.1 \
        -p "$S3_PORT" --configure-bucket crawled --configure-bucket quiet
}
mkdir -p "$TEST_TMP/s3rver"
start_logged_s3rver || die "cannot start s3rver"
S3_LOG="$LOGS/s3rver-$S3_PORT.log"
start_azurite "$TEST_TMP/azurite" "$AZ_PORT" || die "cannot start Azurite"
SAS=$(azurite_sas)
curl -sf -X PUT "$AZ/box?restype=container&$SAS" -o /dev/null || die "cannot create container"

# LIST requests s3rver answered for BUCKET so far (ListObjects logs
# 'Fetched bucket "BUCKET"'); a short pause lets its log catch up.
lists_of() { sleep 0.5; grep -c "Fetched bucket \"$1\"" "$S3_LOG"; }

put_s3() { printf '%s' "$2" | s3curl -T - "$S3/$1" -o /dev/null; }
put_az() {
    printf '%s' "$2" | curl -sf -X PUT -H 'x-ms-blob-type: BlockBlob' --data-binary @- \
        "$AZ/box/$1?$SAS" -o /dev/null
}

# ---- files put straight into each cloud, never listed through the mount
echo a >"$DOCS/deep/er/still/local-one.png"
echo b >"$DOCS/local-two.png"
echo c >"$DOCS/deep/notes.txt"
put_all_s3() {
    put_s3 crawled/photos/2024/s3-one.png one && put_s3 crawled/s3-two.png two &&
        put_s3 crawled/photos/readme.txt text
}
put_all_az() { put_az a/b/c/az-one.png one && put_az az-two.png two && put_az a/readme.txt text; }
check "put objects into the S3 bucket directly" put_all_s3
check "put an object into the bucket with index = off" put_s3 quiet/hidden.png hidden
check "put blobs into the Azure container directly" put_all_az

(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[docs]
type = local
path = $DOCS
index_interval = 2s

$(s3rver_cloud s3 "$S3" crawled)
index_interval = 2s

$(s3rver_cloud quiet "$S3" quiet)
index = off

[az]
type = azure
endpoint = $AZ
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
container = box
index_interval = 2s
EOF
)

check "skyfs config check accepts index and index_interval" "$SKYFS" config check -c "$CONF"

# index_state CLOUD: the state skyfs status --json gives CLOUD's index
index_state() {
    "$SKYFS" status -c "$CONF" --json | "$PYTHON" -c '
import json, sys
for c in json.load(sys.stdin)["clouds"]:
    if c["name"] == sys.argv[1]:
        print(c["index"]["state"])' "$1"
}
all_complete() {
    [ "$(index_state docs)" = complete ] && [ "$(index_state s3)" = complete ] &&
        [ "$(index_state az)" = complete ]
}
# found GLOB: the mount paths search gives (stdout only), sorted, on one line
found() { "$SKYFS" search -c "$CONF" "$@" 2>/dev/null | sed "s|^$MNT/||" | sort | tr '\n' ' '; }

lists_before=$(lists_of quiet)
check_eq "before the mount nothing listed the bucket with index = off" 0 "$lists_before"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
check "the first crawl of every cloud completes (skyfs status)" wait_until 30 all_complete

ALL_PNG="az/a/b/c/az-one.png az/az-two.png docs/deep/er/still/local-one.png docs/local-two.png s3/photos/2024/s3-one.png s3/s3-two.png "
check_eq "search finds every file put into the clouds directly" "$ALL_PNG" "$(found '*.png')"
check_eq "including directories known only from object keys" "az/a/b s3/photos/2024 " \
    "$(found --type d --name '[b2]*')"
check_eq "the mount itself listed nothing: its own request counters are 0" \
    "az 0|docs 0|quiet 0|s3 0" \
    "$(getfattr --only-values -n user.skyfs.requests "$MNT/.skyfs" | sort | paste -sd'|')"
check "the crawl's counters show on .skyfs (user.skyfs.crawls)" bash -c \
    "getfattr --only-values -n user.skyfs.crawls '$MNT/.skyfs' > '$TEST_TMP/crawls' &&
     grep -Eq '^s3 running [01] crawls [1-9][0-9]* failures 0 entries [1-9]' '$TEST_TMP/crawls' &&
     grep -qx 'quiet off' '$TEST_TMP/crawls'"
err=$("$SKYFS" search -c "$CONF" '*.png' 2>&1 >/dev/null)
check "search says on stderr that the cloud with index = off is not indexed" \
    grep -qxF "skyfs: search: cloud 'quiet' has index = off: its results hold only what was listed through the mount" \
    <(printf '%s\n' "$err")
check_eq "and calls no crawled cloud incomplete" "" "$(grep 'not fully indexed' <<<"$err")"
check_eq "no crawl listed the bucket with index = off" 0 "$(lists_of quiet)"
check_eq "so its object is not found" "" "$(found --cloud quiet '*.png')"
check "status shows the last complete crawl, its duration and entries" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -A1 -E '^  s3 ' |
     grep -Eq '^    index: (complete|stale), last complete crawl [0-9-]+ [0-9:]+ UTC, took [0-9.]+ (s|min), 3 entries; refreshed every 2.00 s'"
check "status says index = off for that cloud" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -A1 -E '^  quiet ' | grep -q 'index: off'"
check "status --json carries the crawl's fields" bash -c \
    "'$SKYFS' status -c '$CONF' --json | '$PYTHON' -c '
import json, sys
c = {c[\"name\"]: c[\"index\"] for c in json.load(sys.stdin)[\"clouds\"]}
assert c[\"az\"][\"enabled\"] and c[\"az\"][\"interval\"] == 2.0, c
assert c[\"az\"][\"entries\"] == 3 and c[\"az\"][\"duration\"] >= 0, c
assert c[\"az\"][\"last_complete\"] > 1.7e9, c
assert not c[\"quiet\"][\"enabled\"] and c[\"quiet\"][\"state\"] == \"off\", c
'"
check "search --json gives each hit its cloud's index state" bash -c \
    "'$SKYFS' search -c '$CONF' --json '*-two.png' 2>/dev/null | '$PYTHON' -c '
import json, sys
hits = [json.loads(l) for l in sys.stdin]
assert len(hits) == 3, hits
for h in hits:
    assert h[\"index\"] in (\"complete\", \"stale\") and h[\"indexed_at\"] > 1.7e9, h
'"

# ---- index = off: what a listing through the mount shows is found
check_eq "listing the cloud with index = off through the mount" hidden.png "$(ls "$MNT/quiet")"
check_eq "sends one LIST" 1 "$(lists_of quiet)"
check_eq "and then search finds what it listed" "quiet/hidden.png " "$(found --cloud quiet '*.png')"

# ---- deleted on the servers: gone from the results after a refresh
rm "$DOCS/deep/er/still/local-one.png"
check "delete an S3 object directly" s3curl -X DELETE "$S3/crawled/photos/2024/s3-one.png"
check "delete an Azure blob directly" curl -sf -X DELETE "$AZ/box/a/b/c/az-one.png?$SAS"
echo new >"$DOCS/deep/local-three.png"
gone() { [ "$(found '*.png')" = "$1" ]; }
LEFT="az/az-two.png docs/deep/local-three.png docs/local-two.png quiet/hidden.png s3/s3-two.png "
check "after a refresh the deleted files are no longer found, a new one is" wait_until 20 gone "$LEFT"
check_eq "search results" "$LEFT" "$(found '*.png')"
check_eq "and directories left empty on object stores are gone too" "" \
    "$(found --type d --name '[b2]*')"
check "the daemon's log tells of the crawls and what they removed" \
    grep -Eq "cloud 's3': the crawl removed [0-9]+ entries gone from the cloud" "$LOGS/mnt.log"

# ---- a crawl pauses while its cloud is offline, and resumes
s3_crawls() { grep -c "cloud 's3': crawl [0-9]* complete" "$LOGS/mnt.log"; }
S3_PID=$(head -n 1 "$_SKY_PIDS")    # s3rver started first (lib.sh keeps the pids)
check "stop s3rver" kill "$S3_PID"
crawls_at_stop=$(s3_crawls)
check "the crawl pauses while the S3 cloud is offline" wait_until 20 \
    grep -q "cloud 's3': crawl paused while the cloud is offline" "$LOGS/mnt.log"
check "status says the cloud is offline" bash -c "'$SKYFS' status -c '$CONF' | grep -Eq '^  s3 .*offline'"
_start_server s3rver-again "$S3_PORT" "$S3/" env NODE_OPTIONS=--openssl-legacy-provider \
    node "$SERVERS_DIR/s3rver/bin/s3rver.js" -d "$TEST_TMP/s3rver" -a 127.0.0.1 -p "$S3_PORT" -s ||
    die "cannot restart s3rver"
check "the crawl resumes once the probe finds the cloud back" wait_until 30 \
    grep -q "cloud 's3': crawl resumed" "$LOGS/mnt.log"
more_crawls() { [ "$(s3_crawls)" -gt "$crawls_at_stop" ]; }
check "and completes again" wait_until 30 more_crawls

unmount_skyfs "$MNT"

# ---- not mounted: the index ages past its interval, and search says so
sleep 2.5
err=$("$SKYFS" search -c "$CONF" --cloud docs '*.png' 2>&1 >/dev/null)
check "search warns that an index is older than its interval" bash -c 'grep -Eq "$1" <<<"$2"' _ \
    "^skyfs: search: cloud 'docs' was last fully indexed .* ago, longer ago than its index_interval \(2.00 s\)$" \
    "$err"
check_eq "and --json says stale" stale \
    "$("$SKYFS" search -c "$CONF" --json --cloud docs 'local-two.png' 2>/dev/null |
       "$PYTHON" -c 'import json, sys; print(json.loads(sys.stdin.readline())["index"])')"
