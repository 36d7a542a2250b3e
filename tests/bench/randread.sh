#!/usr/bin/env bash
# randread.sh - a benchmark tool: cold random 4 KiB reads of one object on
# s3rver through delayproxy.js (issue 18 item 3).
#
#     BUILD=build bash tests/bench/randread.sh [MIB [READS [DELAY_MS [JOBS]]]]
#
# One s3rver on 127.0.0.1, behind delayproxy.js adding DELAY_MS (default 0)
# each way.  An object of MIB MiB (default 256) of random bytes; a fresh
# mount with an empty cache and the default block size; READS (default
# 1024) seeded random 4 KiB reads of it by tests/integration/random_reader.py
# (each checked against the source), by JOBS threads (default 1).  Prints the time of the reads, the
# requests and bytes the server saw during them, and what the cache then
# holds.  Checks nothing but the bytes; timings never fail.
set -u -o pipefail
MIB=${1:-256}
READS=${2:-1024}
DELAY=${3:-0}
export READER_JOBS=${4:-1}
# shellcheck source=SCRIPTDIR/../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

S3_PORT=$(free_port)
PROXY_PORT=$(free_port)
STATS="$TEST_TMP/proxy.stats"
start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket bench || die "cannot start s3rver"
_start_server delayproxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" node "$SKY_ROOT/tests/bench/delayproxy.js" \
    "$PROXY_PORT" "$S3_PORT" "$DELAY" "$STATS" || die "cannot start delayproxy.js"
head -c $((MIB << 20)) /dev/urandom >"$TEST_TMP/big.bin"
check "upload the object" s3curl -T "$TEST_TMP/big.bin" "http://127.0.0.1:$S3_PORT/bench/big.bin"
mkdir -p "$TEST_TMP/cache"
cat >"$TEST_TMP/skyfs.conf" <<EOF
[cache]
dir = $TEST_TMP/cache

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" bench)
ttl = 1h
timeout = 10m
EOF
chmod 600 "$TEST_TMP/skyfs.conf"
mount_skyfs "$TEST_TMP/skyfs.conf" "$TEST_TMP/mnt" || die "cannot mount"
stat "$TEST_TMP/mnt/s3/big.bin" >/dev/null
sleep 0.3
before=$(cat "$STATS")
start=$(date +%s.%N)
check "$READS random 4 KiB reads give the object's bytes" \
    "$PYTHON" "$SKY_ROOT/tests/integration/random_reader.py" "$TEST_TMP/mnt/s3/big.bin" \
    "$TEST_TMP/big.bin" "$READS" 1
end=$(date +%s.%N)
sleep 0.3
after=$(cat "$STATS")
field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }
echo "randread: $MIB MiB object, $READS reads by $READER_JOBS thread(s), delay $DELAY ms each way:" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s," \
    "$(( $(field "$after" requests) - $(field "$before" requests) )) requests," \
    "$(( ($(field "$after" received) - $(field "$before" received)) >> 20 )) MiB received," \
    "cache: $("$SKYFS" cache stats -c "$TEST_TMP/skyfs.conf" | awk '$1 == "bytes" && $2 == "cached" { print $3 }') MiB"
unmount_skyfs "$TEST_TMP/mnt"
