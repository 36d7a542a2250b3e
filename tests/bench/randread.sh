#!/usr/bin/env bash
# randread.sh - a benchmark tool: cold random 4 KiB reads of one object on
# s3rver through delayproxy.js (issue 18 item 3), by skyfs and, beside it,
# by rclone mount (--vfs-cache-mode full) and s3fs.
#
#     BUILD=build bash tests/bench/randread.sh [MIB [READS [DELAY_MS [JOBS]]]]
#     RANDREAD_TOOLS="skyfs rclone s3fs" BUILD=build bash tests/bench/randread.sh ...
#
# One s3rver on 127.0.0.1, behind delayproxy.js adding DELAY_MS (default 0)
# each way.  An object of MIB MiB (default 256) of random bytes; for each
# tool of RANDREAD_TOOLS (default skyfs alone) a fresh mount with an empty
# cache and its default settings; READS (default 1024) seeded random 4 KiB
# reads of it by tests/integration/random_reader.py (each checked against
# the source; the same offsets for every tool), by JOBS threads (default
# 1).  Prints, per tool, the time of the reads, the requests and bytes the
# server saw during them, and the daemon's peak RSS.  Checks nothing but
# the bytes; timings never fail.
set -u -o pipefail
MIB=${1:-256}
READS=${2:-1024}
DELAY=${3:-0}
export READER_JOBS=${4:-1}
TOOLS=${RANDREAD_TOOLS:-skyfs}
# shellcheck source=SCRIPTDIR/peers.sh
. "$(dirname "$0")/peers.sh"
bench_check_args randread.sh "$TOOLS" "$MIB" "$READS" "$READER_JOBS"
case "$DELAY" in ''|*[!0-9]*) echo "randread.sh: delay '$DELAY' is not a number of ms" >&2; exit 2 ;; esac
# shellcheck source=SCRIPTDIR/../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

S3_PORT=$(free_port)
PROXY_PORT=$(free_port)
STATS="$TEST_TMP/proxy.stats"
WORK="$TEST_TMP"
start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket bench || die "cannot start s3rver"
_start_server delayproxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" node "$SKY_ROOT/tests/bench/delayproxy.js" \
    "$PROXY_PORT" "$S3_PORT" "$DELAY" "$STATS" || die "cannot start delayproxy.js"
head -c $((MIB << 20)) /dev/urandom >"$TEST_TMP/big.bin"
check "upload the object" s3curl -T "$TEST_TMP/big.bin" "http://127.0.0.1:$S3_PORT/bench/big.bin"
PORT=$PROXY_PORT        # every tool reaches s3rver through the proxy (peers.sh)

field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }
# peak_rss PID: the process's VmHWM in MiB.
peak_rss() { awk '/^VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }

RESULTS="$TEST_TMP/results"
: >"$RESULTS"
for tool in $TOOLS; do
    mnt="$TEST_TMP/mnt-$tool"
    cache="$TEST_TMP/cache-$tool"
    mkdir -p "$mnt" "$cache"
    if [ "$tool" = skyfs ]; then
        bench_skyfs_config "$TEST_TMP/skyfs.conf" "$cache" bench "ttl = 1h" "timeout = 10m"
        mount_skyfs "$TEST_TMP/skyfs.conf" "$mnt" || die "cannot mount skyfs"
        file="$mnt/bench/big.bin"
        pid=$(pgrep -n -f "skyfs.*$TEST_TMP/skyfs.conf" || true)
    else
        start_peer "$tool" bench "$mnt" "$cache" "$TEST_TMP/$tool.log" || continue
        file="$mnt/big.bin"
        pid=${PEER_PID[$tool]}
    fi
    stat "$file" >/dev/null
    sleep 0.3
    before=$(cat "$STATS")
    start=$(date +%s.%N)
    check "$tool: $READS random 4 KiB reads give the object's bytes" \
        "$PYTHON" "$SKY_ROOT/tests/integration/random_reader.py" "$file" \
        "$TEST_TMP/big.bin" "$READS" 1
    end=$(date +%s.%N)
    sleep 0.3
    after=$(cat "$STATS")
    line="$(printf '%-6s' "$tool") $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s,"
    line="$line $(( $(field "$after" requests) - $(field "$before" requests) )) requests,"
    line="$line $(( ($(field "$after" received) - $(field "$before" received)) >> 20 )) MiB received,"
    line="$line peak RSS $(peak_rss "$pid") MiB"
    echo "$line" >>"$RESULTS"
    if [ "$tool" = skyfs ]; then
        unmount_skyfs "$mnt"
    else
        stop_peer "$tool" "$mnt"
    fi
done
echo "randread: $MIB MiB object, $READS reads by $READER_JOBS thread(s), delay $DELAY ms each way:"
sed 's/^/  /' "$RESULTS"
