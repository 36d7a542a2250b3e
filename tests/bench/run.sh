#!/usr/bin/env bash
# shellcheck disable=SC2030,SC2031 # rclone's settings live in its subshell only
# run.sh - the skyfs benchmark: skyfs vs rclone mount vs s3fs, one s3rver.
#
#     tests/bench/run.sh [--tools skyfs,rclone,s3fs] [--size MIB] [--reads N]
#                        [--files N] [--repeat N]
#     BENCH_QUICK=1 tests/bench/run.sh   (32 MiB, 50 reads, 100 files, 1 round)
#
# Starts one s3rver on 127.0.0.1, mounts its bucket three ways (skyfs,
# `rclone mount --vfs-cache-mode full`, s3fs), each with its own fresh cache
# directory, and times the same workloads on each (wall clock, date +%s.%N):
#
#   1. cold sequential read of a SIZE MiB object (default 256), fresh mount,
#      empty cache, page cache dropped;
#   2. warm read of the same object on the same mount, page cache dropped;
#   3. N (default 200) 4 KiB reads at seeded random offsets of that object
#      after a remount with an empty cache, and the bytes the server sent
#      for them (s3rver's wchar in /proc/PID/io);
#   4. a SIZE MiB sequential write, until a HEAD on the server shows the
#      whole object (polled every 0.2 s; rclone uploads after close);
#   5. N (default 500) files of 4 KiB written, until the server lists them;
#   6. each daemon's peak RSS (VmHWM; the highest of its mounts).
#
# Each tool does --repeat rounds (default 3) of two fresh mounts (rows 1-2;
# rows 3-5) and the table shows the median of the rounds.
# Every read is checked (XXH3 of the content, bytes of each random read)
# and every write is read back from the server, so a wrong answer is a
# failure, never a fast result.  Prints one table with a column per tool and
# "skyfs vs best peer", and writes it to $BUILD/bench/results.md.  Each step
# has a time limit; on exit, whatever happened, everything is unmounted and
# the server stopped (lib.sh's exit handler plus ours).  Needs root for
# dropping the page cache (else it says so and the reads stay warm).
#
# Called by `make bench`; tools/logs come from tests/integration/lib.sh.
set -u -o pipefail

BENCH_TOOLS="skyfs rclone s3fs"
BENCH_MIB=256
BENCH_READS=200
BENCH_FILES=500
BENCH_REPEAT=3
if [ "${BENCH_QUICK:-0}" = 1 ]; then   # a few-minute smoke run
    BENCH_MIB=32; BENCH_READS=50; BENCH_FILES=100; BENCH_REPEAT=1
fi
# shellcheck source=SCRIPTDIR/peers.sh
. "$(dirname "$0")/peers.sh"
while [ $# -gt 0 ]; do
    case "$1" in
        --tools) BENCH_TOOLS=$(echo "${2:-}" | tr ',' ' '); shift 2 ;;
        --size) BENCH_MIB=${2:-}; shift 2 ;;
        --reads) BENCH_READS=${2:-}; shift 2 ;;
        --files) BENCH_FILES=${2:-}; shift 2 ;;
        --repeat) BENCH_REPEAT=${2:-}; shift 2 ;;
        -h|--help) sed -n '3,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
bench_check_args run.sh "$BENCH_TOOLS" "$BENCH_MIB" "$BENCH_READS" "$BENCH_FILES" "$BENCH_REPEAT"

# shellcheck source=SCRIPTDIR/../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

BENCH_ALL="skyfs rclone s3fs"
BUCKET=bench
SIZE=$((BENCH_MIB * 1024 * 1024))
SMALL_SIZE=4096
READ_LIMIT=180          # seconds for one read workload
UPLOAD_LIMIT=240        # seconds for a write to reach the server
OUT="$BUILD/bench"
WORK="$TEST_TMP/work"   # big files; removed at exit, logs stay in $LOGS
TOOL="$OUT/benchtool"
mkdir -p "$OUT" "$WORK"
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

ROWS="cold warm random sent write closed small mem"
declare -A SAMPLES=()   # "row tool" -> its measurements, space-separated
declare -A VAL=()       # "row tool" -> their median (seconds, bytes or KiB)
declare -A TXT=()       # "row tool" -> table cell
declare -A PEAK_KB=()   # tool -> highest VmHWM seen
NOTES=()

# ------------------------------------------------------------ small helpers

now() { date +%s.%N; }
# calc EXPR: floating-point arithmetic through awk, e.g. calc "$b - $a".
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
fmt2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }

# mbps BYTES SECONDS: throughput in MB/s (10^6 bytes).
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / s / 1e6; else print "inf" }'; }

# s3 CURL-ARGS...: one signed request to the server (SigV4 with
# UNSIGNED-PAYLOAD, which curl 7.88 signs when the header is given).
s3() {
    curl -sS --noproxy '*' --max-time 120 --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user S3RVER:S3RVER -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
s3_url() { echo "http://127.0.0.1:$PORT/$BUCKET/$1"; }

# s3_size KEY: Content-Length of the object, or nothing when absent.
s3_size() {
    s3 -I --max-time 10 "$(s3_url "$1")" 2>/dev/null |
        awk 'toupper($1) == "HTTP/1.1" && $2 != "200" { exit }
             tolower($1) == "content-length:" { gsub("\r", "", $2); print $2 }'
}

# s3_count PREFIX: how many keys below PREFIX (a directory marker "PREFIX"
# itself does not count).  One ListObjectsV2 page holds up to 1000.
s3_count() {
    s3 --max-time 10 "http://127.0.0.1:$PORT/$BUCKET?list-type=2&max-keys=1000&prefix=$1" \
        2>/dev/null | grep -o "<Key>$1[^<]" | wc -l
}

# server_sent: bytes s3rver has written so far (sockets count in wchar).
server_sent() { awk '$1 == "wchar:" { print $2 }' "/proc/$S3_PID/io"; }

DROP_OK=1
drop_caches() {
    timeout 60 sync
    if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
        if [ $DROP_OK = 1 ]; then
            NOTES+=("The page cache could NOT be dropped (not root): reads may be served from memory.")
            echo "bench: cannot drop the page cache (needs root); reads may be warm" >&2
        fi
        DROP_OK=0
    fi
}

# wait_for SECONDS cmd...: like lib.sh's wait_until, at most every 0.2 s.
wait_for() {
    local limit=$1; shift
    local end=$((SECONDS + limit))
    until "$@"; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.2
    done
}
size_is() { [ "$(s3_size "$1")" = "$2" ]; }
count_is() { [ "$(s3_count "$1")" -ge "$2" ]; }

# add_sample ROW TOOL NUMBER: one measurement (seconds, bytes or KiB).
add_sample() { SAMPLES["$1 $2"]="${SAMPLES["$1 $2"]:-}${SAMPLES["$1 $2"]:+ }$3"; }

# median NUMBER...: the middle value (the mean of the two middle ones).
median() {
    printf '%s\n' "$@" | sort -g |
        awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                                printf "%.6f\n", m }'
}

# cell_text ROW VALUE: how the table shows a row's value.
cell_text() {
    local v=$1 n=$2
    case "$v" in
        cold|warm|write) echo "$(fmt2 "$n") s ($(mbps "$SIZE" "$n") MB/s)" ;;
        random) awk -v s="$n" -v r="$BENCH_READS" 'BEGIN { printf "%.2f s (%.1f ms/read)\n", s, s * 1000 / r }' ;;
        small) awk -v s="$n" -v f="$BENCH_FILES" 'BEGIN { printf "%.2f s (%.0f files/s)\n", s, f / s }' ;;
        closed) echo "$(fmt2 "$n") s" ;;
        sent) awk -v b="$n" 'BEGIN { printf "%.1f MiB\n", b / 1048576 }' ;;
        mem) awk -v k="$n" 'BEGIN { printf "%.0f MiB\n", k / 1024 }' ;;
    esac
}

# finish_cells TOOL: each row's value is the median of its samples.
finish_cells() {
    local row m
    for row in $ROWS; do
        [ -n "${SAMPLES["$row $1"]:-}" ] || continue
        # shellcheck disable=SC2086 # one argument per sample
        m=$(median ${SAMPLES["$row $1"]})
        VAL["$row $1"]=$m
        TXT["$row $1"]=$(cell_text "$row" "$m")
    done
}

# ------------------------------------------------------- mounting the tools

# tool_pids TOOL MNT: the pid(s) of the daemon serving MNT.
tool_pids() {
    case "$1" in
        skyfs) daemon_pids "$2" ;;
        *) [ -n "${PEER_PID[$1]:-}" ] && kill -0 "${PEER_PID[$1]}" 2>/dev/null &&
               echo "${PEER_PID[$1]}" ;;
    esac
}

# mount_tool TOOL RUN: mounts TOOL on $WORK/mnt-TOOL with a fresh cache and
# sets DATA to the directory that shows the bucket.
mount_tool() {
    local tool=$1 run=$2 mnt="$WORK/mnt-$1" cache="$WORK/cache-$1"
    rm -rf --one-file-system "$cache"
    mkdir -p "$mnt" "$cache"
    case "$tool" in
        skyfs)
            bench_skyfs_config "$WORK/skyfs.conf" "$cache" "$BUCKET"
            mount_skyfs "$WORK/skyfs.conf" "$mnt" || return 1
            DATA="$mnt/$BUCKET" ;;
        *)
            start_peer "$tool" "$BUCKET" "$mnt" "$cache" "$LOGS/$tool-$run.log" || return 1
            DATA="$mnt" ;;
    esac
}

# remember_peak TOOL MNT: keeps the highest VmHWM of TOOL's daemon.
remember_peak() {
    local pid kb
    for pid in $(tool_pids "$1" "$2"); do
        kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status" 2>/dev/null)
        [ -n "$kb" ] && [ "$kb" -gt "${PEAK_KB[$1]:-0}" ] && PEAK_KB[$1]=$kb
    done
}

unmount_tool() {
    local tool=$1 mnt="$WORK/mnt-$1"
    remember_peak "$tool" "$mnt"
    case "$tool" in
        skyfs) unmount_skyfs "$mnt" ;;
        *) stop_peer "$tool" "$mnt" ;;
    esac
    rm -rf --one-file-system "$WORK/cache-$tool"
}

# ---------------------------------------------------------------- workloads

# run_timed ROW TOOL LIMIT cmd...: runs the workload with its output in a
# log; sets T0/T1 and returns its status.
run_timed() {
    local row=$1 tool=$2 limit=$3; shift 3
    RUN_OUT="$LOGS/$tool-$row.out"
    echo "+ $*" >"$RUN_OUT"
    T0=$(now)
    timeout -k 10 "$limit" "$@" >>"$RUN_OUT" 2>&1 </dev/null
    local rc=$?
    T1=$(now)
    [ $rc -ne 0 ] && echo "(exit status $rc)" >>"$RUN_OUT"
    return $rc
}

# bench_read ROW TOOL: reads the big object through the mount, whole.
bench_read() {
    local row=$1 tool=$2 secs
    drop_caches
    if ! run_timed "$row" "$tool" $READ_LIMIT "$TOOL" hash "$DATA/big.bin"; then
        record FAIL "$tool: $row read of $BENCH_MIB MiB" "$RUN_OUT"; return
    fi
    if [ "$(tail -n 1 "$RUN_OUT")" != "$BIG_HASH" ]; then
        echo "(expected '$BIG_HASH': size and XXH3 of the object)" >>"$RUN_OUT"
        record FAIL "$tool: $row read of $BENCH_MIB MiB returns the object's bytes" "$RUN_OUT"
        return
    fi
    secs=$(calc "$T1 - $T0")
    add_sample "$row" "$tool" "$secs"
    record ok "$tool: $row read of $BENCH_MIB MiB: $(fmt2 "$secs") s"
}

bench_random() {
    local tool=$1 secs before sent
    drop_caches
    before=$(server_sent)
    if ! run_timed random "$tool" $READ_LIMIT "$TOOL" randread "$WORK/big.bin" \
            "$DATA/big.bin" "$BENCH_READS" 42; then
        record FAIL "$tool: $BENCH_READS random 4 KiB reads" "$RUN_OUT"; return
    fi
    sleep 1     # downloads still in flight when the reads end count too
    sent=$(( $(server_sent) - before ))
    secs=$(calc "$T1 - $T0")
    add_sample random "$tool" "$secs"
    add_sample sent "$tool" "$sent"
    record ok "$tool: $BENCH_READS random 4 KiB reads: $(fmt2 "$secs") s, server sent $sent bytes"
}

# written_ok KEY: the object on the server is the big object, byte for byte.
written_ok() {
    [ "$(s3 "$(s3_url "$1")" | "$TOOL" hash -)" = "$BIG_HASH" ]
}

bench_write() {
    local tool=$1 key="w-$1-$2.bin" secs closed
    if ! run_timed write "$tool" $READ_LIMIT dd if="$WORK/big.bin" of="$DATA/$key" bs=1M; then
        record FAIL "$tool: write $BENCH_MIB MiB" "$RUN_OUT"; return
    fi
    closed=$(calc "$T1 - $T0")
    if ! wait_for $UPLOAD_LIMIT size_is "$key" "$SIZE"; then
        echo "(the server did not show $SIZE bytes for $key within $UPLOAD_LIMIT s after close)" >>"$RUN_OUT"
        record FAIL "$tool: write $BENCH_MIB MiB reaches the server" "$RUN_OUT"; return
    fi
    secs=$(calc "$(now) - $T0")
    if ! written_ok "$key"; then
        echo "(the object on the server differs from what was written)" >>"$RUN_OUT"
        record FAIL "$tool: write $BENCH_MIB MiB: the server holds the bytes written" "$RUN_OUT"
        return
    fi
    add_sample write "$tool" "$secs"
    add_sample closed "$tool" "$closed"
    record ok "$tool: write $BENCH_MIB MiB: close after $(fmt2 "$closed") s, on the server after $(fmt2 "$secs") s"
}

bench_small() {
    local tool=$1 name="small-$1-$2" secs closed
    mkdir -p "$DATA/$name"
    if ! run_timed small "$tool" $READ_LIMIT "$TOOL" smallfiles "$DATA/$name" \
            "$BENCH_FILES" "$SMALL_SIZE" "$2"; then
        record FAIL "$tool: write $BENCH_FILES small files" "$RUN_OUT"; return
    fi
    closed=$(calc "$T1 - $T0")
    if ! wait_for $UPLOAD_LIMIT count_is "$name/" "$BENCH_FILES"; then
        echo "(the server lists $(s3_count "$name/") of $BENCH_FILES files after $UPLOAD_LIMIT s)" >>"$RUN_OUT"
        record FAIL "$tool: $BENCH_FILES small files reach the server" "$RUN_OUT"; return
    fi
    secs=$(calc "$(now) - $T0")
    add_sample small "$tool" "$secs"
    record ok "$tool: $BENCH_FILES small files: close after $(fmt2 "$closed") s, listed after $(fmt2 "$secs") s"
}

# skyfs_ready: `skyfs config check` accepts a type = s3 cloud.
skyfs_ready() {
    local out="$LOGS/skyfs-config-check.out"
    bench_skyfs_config "$WORK/skyfs.conf" "$WORK/cache-skyfs" "$BUCKET"
    mkdir -p "$WORK/cache-skyfs"
    if timeout 30 "$SKYFS" config check -c "$WORK/skyfs.conf" >"$out" 2>&1 </dev/null; then
        record ok "skyfs: config check accepts a type = s3 cloud"
        return 0
    fi
    record FAIL "skyfs: config check accepts a type = s3 cloud (no S3 driver yet?)" "$out"
    NOTES+=("skyfs was not measured: \`skyfs config check\` rejected the s3 cloud ($(head -n 1 "$out")).")
    return 1
}

# run_tool TOOL: BENCH_REPEAT rounds of two fresh mounts each (reads;
# random reads and writes); a mount that fails ends the tool's rounds.
run_tool() {
    local tool=$1 rep
    echo "--- $tool"
    if [ "$tool" = skyfs ]; then
        skyfs_ready || return
    fi
    for rep in $(seq "$BENCH_REPEAT"); do
        mount_tool "$tool" "$rep-read" || break
        bench_read cold "$tool"
        bench_read warm "$tool"
        unmount_tool "$tool"
        mount_tool "$tool" "$rep-write" || break
        bench_random "$tool"
        bench_write "$tool" "$rep"
        bench_small "$tool" "$rep"
        unmount_tool "$tool"
    done
    [ -n "${PEAK_KB[$tool]:-}" ] && add_sample mem "$tool" "${PEAK_KB[$tool]}"
    finish_cells "$tool"
}

# ------------------------------------------------------------------ the table

# versus ROW WORD: "skyfs vs best peer" - the best peer's value over
# skyfs's (every row is lower-is-better): "1.8x faster", "0.7x (slower)".
versus() {
    local row=$1 word=$2 sky=${VAL["$1 skyfs"]:-} best="" t v
    for t in rclone s3fs; do
        v=${VAL["$row $t"]:-}
        [ -z "$v" ] && continue
        if [ -z "$best" ] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$v
        fi
    done
    if [ -z "$sky" ] || [ -z "$best" ]; then
        echo "n/a"
    elif awk -v s="$sky" 'BEGIN { exit !(s <= 0) }'; then
        echo "n/a"
    else
        awk -v b="$best" -v s="$sky" -v w="$word" \
            'BEGIN { r = b / s; if (r >= 1) printf "%.1fx %s\n", r, w; else printf "%.1fx (%s)\n", r, w == "faster" ? "slower" : "more" }'
    fi
}

cell() {
    case " $BENCH_TOOLS " in *" $2 "*) ;; *) echo "skipped"; return ;; esac
    echo "${TXT["$1 $2"]:-FAILED}"
}

table_row() {
    local row=$1 label=$2 word=$3
    printf '| %-44s | %-22s | %-22s | %-22s | %-18s |\n' "$label" \
        "$(cell "$row" skyfs)" "$(cell "$row" rclone)" "$(cell "$row" s3fs)" "$(versus "$row" "$word")"
}

print_table() {
    printf '| %-44s | %-22s | %-22s | %-22s | %-18s |\n' "workload" skyfs "rclone mount" s3fs \
        "skyfs vs best peer"
    printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 46))" "$(printf -- '-%.0s' $(seq 24))" \
        "$(printf -- '-%.0s' $(seq 24))" "$(printf -- '-%.0s' $(seq 24))" "$(printf -- '-%.0s' $(seq 20))"
    table_row cold "1. cold sequential read, $BENCH_MIB MiB" faster
    table_row warm "2. warm read (page cache dropped)" faster
    table_row random "3. $BENCH_READS random 4 KiB reads, cold" faster
    table_row sent "3b. bytes the server sent for them" less
    table_row write "4. sequential write $BENCH_MIB MiB, until on server" faster
    table_row closed "4b. (the same: until close() returned)" faster
    table_row small "5. $BENCH_FILES files of 4 KiB, until listed" faster
    table_row mem "6. daemon peak RSS (VmHWM)" less
}

print_samples() {
    local row t
    for row in $ROWS; do
        for t in $BENCH_ALL; do
            [ -n "${SAMPLES["$row $t"]:-}" ] &&
                printf -- '- %s %s: %s\n' "$row" "$t" "$(for v in ${SAMPLES["$row $t"]}; do
                    case "$row" in sent|mem) printf '%s ' "$v" ;; *) printf '%s ' "$(fmt2 "$v")" ;; esac
                done)"
        done
    done
}

write_results() {
    local md="$OUT/results.md" t
    {
        echo "# skyfs benchmark"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, Linux $(uname -r); one s3rver" \
             "on 127.0.0.1 (node $(node --version 2>/dev/null)), the same bucket mounted three ways."
        echo
        print_table
        echo
        echo "- Each cell is the median of $BENCH_REPEAT rounds (samples below). Times are wall-clock"
        echo "  seconds (date +%s.%N); MB/s = 10^6 bytes per second;"
        echo "  ratios are the best peer's value over skyfs's (above 1: skyfs is better)."
        echo "- Before any tool, the server answers two whole GETs of the object (its warm-up)."
        echo "- Every mount starts with an empty cache directory; rows 1-3 drop the page cache"
        echo "  first (sync; echo 3 > /proc/sys/vm/drop_caches). Row 2 reads the same mount's cache."
        echo "- Row 3 remounts with an empty cache; 3b is s3rver's wchar (/proc/PID/io) over the reads."
        echo "- Rows 4 and 5 stop when the server shows the data (HEAD size / ListObjectsV2 count,"
        echo "  polled every 0.2 s); rclone uploads after its default --vfs-write-back of 5 s."
        echo "- Reads are checked (XXH3, byte compare); written objects are read back from the server."
        echo "- Options: skyfs defaults; rclone mount --vfs-cache-mode full --cache-dir DIR;"
        echo "  s3fs -o use_path_request_style,use_cache=DIR."
        for t in "${NOTES[@]}"; do echo "- $t"; done
        echo
        echo "Versions:"
        for t in $BENCH_ALL; do echo "- $(tool_version "$t")"; done
        echo
        echo "Samples (seconds; sent: bytes; mem: KiB):"
        echo
        print_samples
    } >"$md"
    echo
    print_table
    for t in "${NOTES[@]}"; do echo "bench: note: $t"; done
    echo
    echo "bench: results written to $md"
}

# ---------------------------------------------------------------- clean-up

# On exit: unmount and end every daemon (ours first, while the server still
# runs, so skyfs can drain), stop the server, delete the big files, then let
# lib.sh's handler check and summarize.
bench_exit() {
    local rc=$? t pid busy
    for t in rclone s3fs; do
        stop_peer "$t" "$WORK/mnt-$t"
    done
    if mountpoint -q "$WORK/mnt-skyfs" 2>/dev/null; then
        fusermount3 -u -z "$WORK/mnt-skyfs" 2>/dev/null
    fi
    for pid in $(daemon_pids "$WORK/mnt-skyfs"); do
        kill "$pid" 2>/dev/null
    done
    stop_servers
    busy=0
    for t in $BENCH_ALL; do
        mountpoint -q "$WORK/mnt-$t" 2>/dev/null && busy=1
    done
    [ $busy = 0 ] && rm -rf --one-file-system "$WORK"
    (exit "$rc")
    _sky_exit
}
trap bench_exit EXIT

# -------------------------------------------------------------------- main

for t in $BENCH_TOOLS; do
    case "$t" in
        rclone) command -v rclone >/dev/null || die "rclone is missing (run make deps)" ;;
        s3fs) command -v s3fs >/dev/null || die "s3fs is missing (run make deps)" ;;
    esac
done
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$TOOL" "$SKY_ROOT/tests/bench/benchtool.c" -lxxhash \
    >"$LOGS/benchtool.cc.out" 2>&1 || { cat "$LOGS/benchtool.cc.out"; die "cannot build benchtool"; }

PORT=$(free_port)
start_s3rver "$WORK/s3rver" "$PORT" --configure-bucket "$BUCKET" || die "s3rver did not start"
S3_PID=$(tail -n 1 "$_SKY_PIDS")    # start_s3rver's server, recorded by lib.sh

"$TOOL" gen "$WORK/big.bin" "$SIZE" 1 || die "cannot write the test object"
BIG_HASH=$("$TOOL" hash "$WORK/big.bin")
check "upload big.bin ($BENCH_MIB MiB) to the server" \
    s3 -f -o /dev/null -T "$WORK/big.bin" "$(s3_url big.bin)" || die "cannot upload the test object"
# The first tool measured must not also pay for the server's own start-up
# (node compiling its code paths): two whole GETs first.
warm_server() { s3 -f -o /dev/null "$(s3_url big.bin)" && s3 -f -o /dev/null "$(s3_url big.bin)"; }
check "warm up the server with two GETs of big.bin" warm_server

for t in $BENCH_TOOLS; do
    run_tool "$t"
done
write_results
