#!/usr/bin/env bash
# listahead.sh - a benchmark tool: a cold `find` over a tree of folders on
# s3rver through delayproxy.js, for several list_ahead values (issue 18
# item 4).
#
#     BUILD=build bash tests/bench/listahead.sh [TOP [SUB [DELAY_MS [VALUES]]]]
#
# A tree of TOP (default 20) folders, each with a file and SUB (default 3)
# subfolders holding a file each; delayproxy.js adds DELAY_MS (default 20)
# each way.  For each list_ahead value in VALUES (default "0 2 8"): a
# fresh mount with an empty cache, `find` over the tree (checked against
# the tree), its time and the requests the server saw.  Timings never
# fail.
set -u -o pipefail
TOP=${1:-20}
SUB=${2:-3}
DELAY=${3:-20}
VALUES=${4:-0 2 8}
# shellcheck source=SCRIPTDIR/../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

S3_PORT=$(free_port)
PROXY_PORT=$(free_port)
STATS="$TEST_TMP/proxy.stats"
start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket bench || die "cannot start s3rver"
_start_server delayproxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" node \
    "$SKY_ROOT/tests/bench/delayproxy.js" "$PROXY_PORT" "$S3_PORT" "$DELAY" "$STATS" ||
    die "cannot start delayproxy.js"
{
    echo tree
    for i in $(seq 1 "$TOP"); do
        echo "tree/d$i"
        echo "tree/d$i/file"
        for j in $(seq 1 "$SUB"); do
            echo "tree/d$i/s$j"
            echo "tree/d$i/s$j/file"
        done
    done
} | sort >"$TEST_TMP/expected"
grep '/file$' "$TEST_TMP/expected" | while read -r key; do
    echo x | s3curl -T - "http://127.0.0.1:$S3_PORT/bench/$key" || die "cannot upload $key"
done
field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }
for v in $VALUES; do
    mkdir -p "$TEST_TMP/cache-$v"
    cat >"$TEST_TMP/$v.conf" <<EOF
[cache]
dir = $TEST_TMP/cache-$v

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" bench)
ttl = 1h
index = off
list_ahead = $v
EOF
    chmod 600 "$TEST_TMP/$v.conf"
    mount_skyfs "$TEST_TMP/$v.conf" "$TEST_TMP/mnt" || die "cannot mount"
    sleep 0.3
    before=$(cat "$STATS")
    start=$(date +%s.%N)
    find "$TEST_TMP/mnt/s3/tree" >"$TEST_TMP/found"
    end=$(date +%s.%N)
    sleep 0.3
    after=$(cat "$STATS")
    check "list_ahead = $v: find gives the tree" \
        cmp "$TEST_TMP/expected" <(sed "s|^$TEST_TMP/mnt/s3/||" "$TEST_TMP/found" | sort)
    echo "listahead: list_ahead = $v, $TOP x $SUB folders, delay $DELAY ms each way: find" \
        "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s," \
        "$(( $(field "$after" requests) - $(field "$before" requests) )) requests"
    unmount_skyfs "$TEST_TMP/mnt"
done
