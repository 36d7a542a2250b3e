#!/usr/bin/env bash
# shellcheck disable=SC2030,SC2031
# workloads.sh - real work on skyfs vs rclone mount vs s3fs vs local disk,
# on loopback and with a network round trip (issue 18, items 4-5).
#
#     tests/bench/workloads.sh [--tools local,skyfs,skyfs-async,rclone,s3fs]
#                              [--nets 0,20] [--files N] [--small N]
#     BENCH_QUICK=1 tests/bench/workloads.sh     (a few-minute smoke run)
#
# One s3rver on 127.0.0.1; every FUSE client talks to it through
# delayproxy.js, which adds DELAY ms to each direction (--nets: 0 is the
# loopback run, 20 a 40 ms round trip) and counts requests and bytes.  The
# source tree is the first N regular files of /usr/include (full run 2000,
# quick 100).  Workloads, each on a fresh mount with an empty cache:
#   tar     extract a tar of the tree into the mount
#   git     git clone of a local repository of the tree, then git status
#   rsync   rsync -a of the tree in, and back out to local disk
#   find    cold `find` over the extracted tree (remount, empty cache)
#   du      cold and warm `du -s`           grep  cold and warm `grep -r`
#   small   SMALL (full 500, quick 50) 4 KiB files written by 8 writers
# For writes: time until the command returns and time until the server
# lists every object with the right total size (polled every 0.2 s); for
# all: requests and bytes through the proxy and each daemon's peak RSS.
# Tool skyfs is the default write_back = sync (close returns once the file
# is on the cloud), skyfs-async the same with write_back = async (close
# returns once the file is safe on local disk; uploads follow).
# A workload whose result is wrong (files missing on the server, bytes
# differ on the way back) FAILS; timings never fail.  Results go to
# $BUILD/bench/workloads.md.
set -u -o pipefail

TOOLS="local skyfs skyfs-async rclone s3fs"
NETS="0 20"
if [ "${BENCH_QUICK:-0}" = 1 ]; then NFILES=100; NSMALL=50; else NFILES=2000; NSMALL=500; fi
# shellcheck source=SCRIPTDIR/peers.sh
. "$(dirname "$0")/peers.sh"
while [ $# -gt 0 ]; do
    case "$1" in
        --tools) TOOLS=$(echo "${2:-}" | tr ',' ' '); shift 2 ;;
        --nets) NETS=$(echo "${2:-}" | tr ',' ' '); shift 2 ;;
        --files) NFILES=${2:-}; shift 2 ;;
        --small) NSMALL=${2:-}; shift 2 ;;
        -h|--help) sed -n '3,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "workloads.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for t in $TOOLS; do
    case "$t" in local|skyfs|skyfs-async|rclone|s3fs) ;; *) echo "workloads.sh: unknown tool $t" >&2; exit 2 ;; esac
done
for n in $NETS; do
    case "$n" in ''|*[!0-9]*) echo "workloads.sh: delay '$n' is not a number of ms" >&2; exit 2 ;; esac
done
bench_check_args workloads.sh "" "$NFILES" "$NSMALL"

# shellcheck source=SCRIPTDIR/../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

BUCKET=wl
STEP_LIMIT=${BENCH_STEP_LIMIT:-900}   # seconds for one command
UPLOAD_LIMIT=600                      # seconds for its objects to reach the server
OUT="$BUILD/bench"
WORK="$TEST_TMP/work"
mkdir -p "$OUT" "$WORK"
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
ROWS="tar tar.cloud git git.cloud status rsync.in rsync.cloud rsync.out find du.cold du.warm grep.cold grep.warm small small.cloud"
declare -A CELL=()      # "net row tool" -> table cell
declare -A PEAK_KB=()   # "net tool" -> highest VmHWM
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

now() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

s3() {
    curl -sS --noproxy '*' --max-time 60 --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user S3RVER:S3RVER -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
export -f s3
# s3_each SUFFIX CURL-ARGS...: s3 CURL-ARGS on the object KEY+SUFFIX of
# the bucket for every KEY read from stdin, 8 at a time.
s3_each() {
    local suffix=$1; shift
    xargs -P 8 -I{} bash -c 's3 "$@"' _ "$@" "http://127.0.0.1:$PORT/$BUCKET/{}$suffix"
}

# s3_tally PREFIX: "COUNT BYTES" of the objects below PREFIX (directory
# markers, keys ending in /, do not count), over every listing page.
s3_tally() {
    local token="" page count=0 bytes=0 c b
    while :; do
        page=$(s3 "http://127.0.0.1:$PORT/$BUCKET?list-type=2&max-keys=1000&prefix=$1${token:+&continuation-token=$token}" 2>/dev/null) || return 1
        read -r c b < <(echo "$page" | sed 's#<Contents>#\n#g' |
            sed -n 's#.*<Key>\([^<]*\)</Key>.*<Size>\([0-9]*\)</Size>.*#\1 \2#p' |
            awk '{ k = $0; sub(/ [0-9]+$/, "", k); if (k !~ /\/$/) { n++; t += $NF } } END { print n + 0, t + 0 }')
        count=$((count + c)); bytes=$((bytes + b))
        echo "$page" | grep -q '<IsTruncated>true</IsTruncated>' || break
        token=$(echo "$page" | sed -n 's#.*<NextContinuationToken>\([^<]*\)</NextContinuationToken>.*#\1#p' |
            sed 's/+/%2B/g; s#/#%2F#g; s/=/%3D/g')
        [ -n "$token" ] || break
    done
    echo "$count $bytes"
}

# tree_tally DIR: "COUNT BYTES" of the regular files below DIR.
tree_tally() { find "$1" -type f -printf '%s\n' | awk '{ n++; t += $1 } END { print n + 0, t + 0 }'; }
# tree_sum DIR: one checksum of every file's path and content.
tree_sum() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum | md5sum | cut -c1-32); }

proxy_stats() { cat "$WORK/proxy.stats" 2>/dev/null || echo "requests=0 sent=0 received=0"; }
# traffic BEFORE AFTER: "N req, X MiB up, Y MiB down" between two proxy_stats.
traffic() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, /[ =]/); split(b, y, /[ =]/)
        printf "%d req, %.1f/%.1f MiB up/down", y[2] - x[2], (y[4] - x[4]) / 1048576, (y[6] - x[6]) / 1048576 }'
}

drop_caches() { timeout 60 sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

remember_peak() {
    local net=$1 tool=$2 pid kb
    for pid in $(tool_pids "$tool"); do
        kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status" 2>/dev/null)
        [ -n "$kb" ] && [ "$kb" -gt "${PEAK_KB["$net $tool"]:-0}" ] && PEAK_KB["$net $tool"]=$kb
    done
}
tool_pids() {
    case "$1" in
        skyfs|skyfs-async) daemon_pids "$WORK/mnt-$1" ;;
        rclone|s3fs) [ -n "${PEER_PID[$1]:-}" ] && kill -0 "${PEER_PID[$1]}" 2>/dev/null && echo "${PEER_PID[$1]}" ;;
    esac
}

# mount_tool NET TOOL: a fresh mount (empty cache) through the proxy; sets DATA.
mount_tool() {
    local net=$1 tool=$2 mnt="$WORK/mnt-$2" cache="$WORK/cache-$2" port_saved=$PORT
    rm -rf --one-file-system "$cache"
    mkdir -p "$mnt" "$cache"
    PORT=$PROXY_PORT     # peers.sh points every client at $PORT
    case "$tool" in
        local) DATA="$WORK/local-disk"; mkdir -p "$DATA" ;;
        skyfs|skyfs-async)
               if [ "$tool" = skyfs-async ]; then
                   bench_skyfs_config "$WORK/skyfs.conf" "$cache" "$BUCKET" "write_back = async"
               else
                   bench_skyfs_config "$WORK/skyfs.conf" "$cache" "$BUCKET"
               fi
               mount_skyfs "$WORK/skyfs.conf" "$mnt" || { PORT=$port_saved; return 1; }
               DATA="$mnt/$BUCKET" ;;
        *) start_peer "$tool" "$BUCKET" "$mnt" "$cache" "$LOGS/$tool-$net.log" || { PORT=$port_saved; return 1; }
           DATA="$mnt" ;;
    esac
    PORT=$port_saved
    drop_caches
}
unmount_tool() {
    local net=$1 tool=$2
    remember_peak "$net" "$tool"
    case "$tool" in
        local) ;;
        skyfs|skyfs-async) unmount_skyfs "$WORK/mnt-$tool" ;;
        *) stop_peer "$tool" "$WORK/mnt-$tool" ;;
    esac
}

# timed NET ROW TOOL CMD...: runs CMD (its output to a log), records the
# seconds it took and the proxy's traffic in the table; returns CMD's status.
timed() {
    local net=$1 row=$2 tool=$3; shift 3
    local t0 s0 rc secs log="$LOGS/$tool-$net-$row.out"
    s0=$(proxy_stats); t0=$(now)
    timeout "$STEP_LIMIT" "$@" >"$log" 2>&1
    rc=$?
    secs=$(secs_since "$t0")
    remember_peak "$net" "$tool"
    if [ $rc != 0 ]; then
        CELL["$net $row $tool"]="FAILED"
        record FAIL "$tool (+${net} ms): $row ($*) exited $rc" "$log"
        return 1
    fi
    if [ "$tool" = local ]; then CELL["$net $row $tool"]="$secs s"
    else CELL["$net $row $tool"]="$secs s ($(traffic "$s0" "$(proxy_stats)"))"; fi
    record ok "$tool (+${net} ms): $row: ${CELL["$net $row $tool"]}"
    START=$t0
}

# on_cloud NET ROW TOOL PREFIX EXPECTED: waits until the server holds
# EXPECTED ("COUNT BYTES") below PREFIX; records the time since START.
on_cloud() {
    local net=$1 row=$2 tool=$3 prefix=$4 want=$5 end have
    [ "$tool" = local ] && { CELL["$net $row $tool"]="-"; return 0; }
    end=$((SECONDS + UPLOAD_LIMIT))
    while :; do
        have=$(s3_tally "$prefix")
        [ "$have" = "$want" ] && break
        if [ $SECONDS -ge $end ]; then
            CELL["$net $row $tool"]="NOT ON THE SERVER"
            echo "server holds '$have' (count bytes) below $prefix, expected '$want'" >"$LOGS/$tool-$net-$row.out"
            record FAIL "$tool (+${net} ms): $row: every object reaches the server" "$LOGS/$tool-$net-$row.out"
            return 1
        fi
        sleep 0.2
    done
    CELL["$net $row $tool"]="$(secs_since "$START") s"
    record ok "$tool (+${net} ms): $row: $want (objects bytes) on the server after ${CELL["$net $row $tool"]}"
}

write_small() {
    local dir=$1
    mkdir -p "$dir" || return 1
    seq "$NSMALL" | xargs -P 8 -I{} sh -c 'head -c 4096 "$1" >"$2/f{}.txt"' _ "$SRC_TAR" "$dir"
}
export -f write_small
export NSMALL

# folder_markers: an empty object "D/" for every folder D of the trees the
# read rows use (src/ and rs/), put straight to s3rver.  Only for rclone,
# which makes no folder objects: s3rver leaves a folder that holds only
# folders out of a delimited listing (no CommonPrefixes for it), so without
# these a fresh rclone mount sees no src/.  A real S3 lists such a folder;
# the markers stand in for that, between timed steps.
folder_markers() {
    { (cd "$WORK/tree" && find src -type d); (cd "$WORK/tree/src" && find . -type d | sed 's#^\.#rs#'); } |
        s3_each / -X PUT --data-binary '' -o /dev/null >>"$LOGS/folder-markers.out" 2>&1
}

run_net_tool() {
    local net=$1 tool=$2 want sum
    # writes: tar, git clone + status, rsync in, small files
    mount_tool "$net" "$tool" || return
    if timed "$net" tar "$tool" tar -xf "$SRC_TAR" -C "$DATA"; then
        on_cloud "$net" tar.cloud "$tool" src/ "$SRC_TALLY"
    fi
    if timed "$net" git "$tool" git clone -q "$WORK/repo" "$DATA/clone"; then
        want=$(tree_tally "$DATA/clone")
        on_cloud "$net" git.cloud "$tool" clone/ "$want"
        timed "$net" status "$tool" git -C "$DATA/clone" status --porcelain
        check_eq "$tool (+${net} ms): git status in the clone is clean" "" "$(cat "$LOGS/$tool-$net-status.out")"
    fi
    mkdir -p "$DATA/rs"
    if timed "$net" rsync.in "$tool" rsync -a "$WORK/tree/src/" "$DATA/rs/"; then
        on_cloud "$net" rsync.cloud "$tool" rs/ "$SRC_TALLY"
    fi
    if timed "$net" small "$tool" bash -c 'write_small "$1"' _ "$DATA/small"; then
        on_cloud "$net" small.cloud "$tool" small/ "$NSMALL $((NSMALL * 4096))"
    fi
    unmount_tool "$net" "$tool"
    [ "$tool" = rclone ] && folder_markers
    # reads, cold: each on a fresh mount with an empty cache
    mount_tool "$net" "$tool" || return
    timed "$net" find "$tool" sh -c "find '$DATA/src' | wc -l"
    check_eq "$tool (+${net} ms): find lists every entry" "$SRC_ENTRIES" "$(tr -d ' ' <"$LOGS/$tool-$net-find.out")"
    unmount_tool "$net" "$tool"
    mount_tool "$net" "$tool" || return
    timed "$net" du.cold "$tool" du -s "$DATA/src"
    timed "$net" du.warm "$tool" du -s "$DATA/src"
    unmount_tool "$net" "$tool"
    mount_tool "$net" "$tool" || return
    timed "$net" grep.cold "$tool" sh -c "grep -r -c include '$DATA/src' | wc -l"
    timed "$net" grep.warm "$tool" sh -c "grep -r -c include '$DATA/src' | wc -l"
    check_eq "$tool (+${net} ms): grep -r reads every file" "$SRC_FILES" "$(tr -d ' ' <"$LOGS/$tool-$net-grep.warm.out")"
    rm -rf "$WORK/out-$tool"
    if timed "$net" rsync.out "$tool" rsync -a "$DATA/rs/" "$WORK/out-$tool/"; then
        sum=$(tree_sum "$WORK/out-$tool")
        check_eq "$tool (+${net} ms): rsync back out returns the same bytes" "$SRC_SUM" "$sum"
    fi
    unmount_tool "$net" "$tool"
    # the next tool starts from an empty bucket
    if [ "$tool" = local ]; then rm -rf "$WORK/local-disk"; else empty_bucket; fi
}

empty_bucket() {
    local keys round
    for round in $(seq 30); do
        keys=$(s3 "http://127.0.0.1:$PORT/$BUCKET?list-type=2&max-keys=1000" | grep -o '<Key>[^<]*</Key>' | sed 's#</\?Key>##g')
        [ -n "$keys" ] || return 0
        echo "$keys" | s3_each '' -X DELETE >>"$LOGS/empty-bucket.out" 2>&1
    done
    die "cannot empty the bucket between tools (see $LOGS/empty-bucket.out)"
}

start_proxy() {
    PROXY_PORT=$(free_port)
    rm -f "$WORK/proxy.stats"
    node "$SKY_ROOT/tests/bench/delayproxy.js" "$PROXY_PORT" "$PORT" "$1" "$WORK/proxy.stats" \
        >>"$LOGS/proxy-$1.log" 2>&1 &
    PROXY_PID=$!
    wait_until 10 test -s "$WORK/proxy.stats" || die "the delaying proxy did not start (see $LOGS/proxy-$1.log)"
}
stop_proxy() { [ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null; PROXY_PID=; }

write_results() {
    local md="$OUT/workloads.md" net row t
    {
        echo "## skyfs workloads ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, Linux $(uname -r))"
        echo
        echo "Load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)."
        echo "Tree: the first $NFILES files of /usr/include ($SRC_TALLY objects/bytes); $NSMALL small files."
        echo "Versions: $(for t in $TOOLS; do [ "$t" = local ] || printf '%s; ' "$(tool_version "$t")"; done)"
        echo "Cells: time until the command returns (requests, MiB up/down through the proxy);"
        echo "\".cloud\" rows: time from the command's start until the server lists every object with the right total size."
        for net in $NETS; do
            echo
            echo "### $( [ "$net" = 0 ] && echo "loopback" || echo "+$net ms each way ($((2 * net)) ms round trip)")"
            echo
            printf '| workload |'; for t in $TOOLS; do printf ' %s |' "$t"; done; echo
            printf '|---|'; for t in $TOOLS; do printf -- '---|'; done; echo
            for row in $ROWS; do
                printf '| %s |' "$row"
                for t in $TOOLS; do printf ' %s |' "${CELL["$net $row $t"]:-n/a}"; done; echo
            done
            printf '| peak RSS |'
            for t in $TOOLS; do
                if [ "$t" = local ]; then printf ' - |'
                else awk -v k="${PEAK_KB["$net $t"]:-0}" 'BEGIN { printf " %.0f MiB |", k / 1024 }'; fi
            done; echo
        done
    } >"$md"
    echo; cat "$md"; echo; echo "bench: results written to $md"
}

bench_exit() {
    local rc=$? t pid
    for t in rclone s3fs; do stop_peer "$t" "$WORK/mnt-$t"; done
    for t in skyfs skyfs-async; do
        mountpoint -q "$WORK/mnt-$t" 2>/dev/null && fusermount3 -u -z "$WORK/mnt-$t" 2>/dev/null
        for pid in $(daemon_pids "$WORK/mnt-$t"); do kill "$pid" 2>/dev/null; done
    done
    stop_proxy
    stop_servers
    mountpoint -q "$WORK/mnt-skyfs" || mountpoint -q "$WORK/mnt-skyfs-async" || rm -rf --one-file-system "$WORK"
    (exit "$rc")
    _sky_exit
}
trap bench_exit EXIT

# -------------------------------------------------------------------- main
for t in $TOOLS; do
    case "$t" in
        rclone|s3fs) command -v "$t" >/dev/null || die "$t is missing (run make deps)" ;;
    esac
done
for c in node tar git rsync; do command -v "$c" >/dev/null || die "$c is missing (run make deps)"; done

# the source tree, its tar and a git repository of it
mkdir -p "$WORK/tree/src"
(cd /usr/include && find . -type f | LC_ALL=C sort >"$WORK/all-files" && head -n "$NFILES" "$WORK/all-files" >"$WORK/files" &&
    tar -cf - -T "$WORK/files" | tar -xf - -C "$WORK/tree/src") ||
    die "cannot copy /usr/include"
export SRC_TAR="$WORK/src.tar"
tar -cf "$SRC_TAR" -C "$WORK/tree" src || die "cannot make the tar"
SRC_TALLY=$(tree_tally "$WORK/tree/src")
SRC_FILES=${SRC_TALLY% *}
SRC_ENTRIES=$(find "$WORK/tree/src" | wc -l)
SRC_SUM=$(tree_sum "$WORK/tree/src")
git init -q "$WORK/repo" && cp -a "$WORK/tree/src/." "$WORK/repo/" &&
    git -C "$WORK/repo" add -A && git -C "$WORK/repo" -c user.name=bench -c user.email=bench@localhost commit -q -m tree ||
    die "cannot make the git repository"

PORT=$(free_port)
start_s3rver "$WORK/s3rver" "$PORT" --configure-bucket "$BUCKET" || die "s3rver did not start"
for net in $NETS; do
    start_proxy "$net"
    for t in $TOOLS; do
        echo "bench: $t, +$net ms each way (load $(cut -d' ' -f1 /proc/loadavg))"
        run_net_tool "$net" "$t"
    done
    stop_proxy
done
write_results
