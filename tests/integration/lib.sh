# shellcheck shell=bash disable=SC2013
# lib.sh - helpers for the skyfs integration tests; source it first:
#
#     . "$(dirname "$0")/lib.sh"
#
# A test file is a bash script that mounts skyfs over local clouds or over
# servers it starts on 127.0.0.1, and records results with `check`,
# `check_eq` and friends.  tests/run.sh runs each file in a fresh temporary
# directory and counts the results; a file can also be run alone
# (`bash tests/integration/local_posix.sh`), and then prints its own summary.
#
# What lib.sh gives a test file:
#   SKY_ROOT   the repository root
#   BUILD      the build directory, absolute (default $SKY_ROOT/build)
#   SKYFS      $BUILD/skyfs
#   TEST_TMP   this file's own empty temporary directory (removed afterwards)
#   TEST_NAME  the file's name without .sh
#   LOGS       $TEST_TMP/logs: daemon logs, server logs, sanitizer reports
#   PYTHON     a python3 interpreter
#
# On exit, whatever happened, lib.sh lazily unmounts every mount that
# mount_skyfs made, ends the daemons behind them and the servers that
# start_s3rver / start_azurite / start_rgw started, and checks every log for
# AddressSanitizer / UndefinedBehaviorSanitizer / LeakSanitizer reports
# (a report is a failed check).
#
# Results go to $TEST_RESULTS, one line per check: "ok<TAB>description" or
# "FAIL<TAB>description"; the output of a failed check follows in
# $TEST_RESULTS.details.

set -u -o pipefail

SKY_ROOT=${SKY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$SKY_ROOT/$BUILD" ;; esac
SKYFS="$BUILD/skyfs"
TEST_NAME=$(basename "$0" .sh)
PYTHON=${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}
SERVERS_DIR="$SKY_ROOT/tests/servers/node_modules"

# Standalone run: make our own temp dir and results file, summarize at exit.
if [ -z "${TEST_TMP:-}" ]; then
    TEST_TMP=$(mktemp -d "/tmp/skyfs-$TEST_NAME-XXXXXX")
    TEST_RESULTS="$TEST_TMP/results"
    _SKY_STANDALONE=1
else
    _SKY_STANDALONE=0
fi
TEST_RESULTS=${TEST_RESULTS:-$TEST_TMP/results}
LOGS="$TEST_TMP/logs"
mkdir -p "$LOGS"
: >>"$TEST_RESULTS"
: >>"$TEST_RESULTS.details"
_SKY_MOUNTS="$TEST_TMP/.mounts"     # mountpoints made by mount_skyfs
_SKY_TMPFS=()                       # small file systems made by mount_tmpfs
_SKY_PIDS="$TEST_TMP/.pids"         # servers started by start_*
: >>"$_SKY_MOUNTS"
: >>"$_SKY_PIDS"
_SKY_SEQ=0

# `make valgrind-test` sets SKY_VALGRIND=1: every skyfs command, the daemon
# included, then runs under memcheck (see skyfs-valgrind); its reports land
# in $LOGS and check_sanitizers reads them.
if [ "${SKY_VALGRIND:-0}" = 1 ]; then
    export SKY_VALGRIND_REAL="$SKYFS" SKY_VALGRIND_LOGS="$LOGS"
    SKYFS="$SKY_ROOT/tests/integration/skyfs-valgrind"
fi

# Sanitizer reports of every process (the daemon has no terminal) go to
# files in $LOGS, which the exit handler reads.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$LOGS/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$LOGS/sanitizer"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}log_path=$LOGS/sanitizer"

# ---------------------------------------------------------------- results

# record ok|FAIL "description" [output-file]
#   Appends one result line and, for a failure, the last 40 lines of
#   output-file to the details, and prints the line.
record() {
    local status=$1 desc=$2 out=${3:-}
    printf '%s\t%s\n' "$status" "$desc" >>"$TEST_RESULTS"
    if [ "$status" = ok ]; then
        printf 'ok   %s: %s\n' "$TEST_NAME" "$desc"
        return 0
    fi
    printf 'FAIL %s: %s\n' "$TEST_NAME" "$desc"
    {
        printf '=== %s: %s\n' "$TEST_NAME" "$desc"
        if [ -n "$out" ] && [ -s "$out" ]; then
            tail -n 40 "$out" | sed 's/^/    /'
        fi
    } >>"$TEST_RESULTS.details"
    if [ -n "$out" ] && [ -s "$out" ]; then
        tail -n 40 "$out" | sed 's/^/    /'
    fi
    return 1
}

# _out_file: prints a fresh file name in $TEST_TMP for a command's output.
_out_file() {
    _SKY_SEQ=$((_SKY_SEQ + 1))
    echo "$TEST_TMP/.out.$_SKY_SEQ"
}

# check "description" cmd [args...]
#   Runs the command (a program or a shell function) with stdout and stderr
#   captured in a file; exit 0 records ok, anything else FAIL with the
#   output.  Returns the command's status, so `check ... || die ...` works.
check() {
    local desc=$1; shift
    local out rc
    out=$(_out_file)
    "$@" >"$out" 2>&1 </dev/null
    rc=$?
    if [ $rc -eq 0 ]; then
        record ok "$desc"
    else
        echo "(exit status $rc of: $*)" >>"$out"
        record FAIL "$desc" "$out"
    fi
    return $rc
}

# transcript_complete FILE...: each posix_ops.py transcript ran to its end
#   (its last line is posix_ops.py's TRANSCRIPT_END); for use with check,
#   beside the diff of two transcripts, which two identical crashes pass.
transcript_complete() {
    local f
    for f in "$@"; do
        if ! grep -qx '# done: the whole transcript ran' "$f"; then
            echo "$f: posix_ops.py stopped before its end:"
            tail -n 5 "$f"
            return 1
        fi
    done
}

# check_fails "description" cmd [args...]
#   Like check, but the command must fail (non-zero status, not a signal).
check_fails() {
    local desc=$1; shift
    local out rc
    out=$(_out_file)
    "$@" >"$out" 2>&1 </dev/null
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ]; then
        record ok "$desc"
        return 0
    fi
    echo "(exit status $rc of: $*; expected a failure)" >>"$out"
    record FAIL "$desc" "$out"
    return 1
}

# check_eq "description" expected actual
#   Compares two strings; a failure shows both (and a diff when multi-line).
check_eq() {
    local desc=$1 expected=$2 actual=$3
    if [ "$expected" = "$actual" ]; then
        record ok "$desc"
        return 0
    fi
    local out
    out=$(_out_file)
    {
        echo "expected: $expected"
        echo "actual:   $actual"
        if [ "$(printf '%s' "$expected" | wc -l)" -gt 0 ] ||
           [ "$(printf '%s' "$actual" | wc -l)" -gt 0 ]; then
            diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual")
        fi
    } >"$out" 2>&1
    record FAIL "$desc" "$out"
}

# wait_until SECONDS cmd [args...]
#   Retries the command every 0.2 s until it succeeds (returns 0) or the
#   time is up (returns 1).  Use it inside check for eventual conditions.
wait_until() {
    local limit=$1; shift
    local end=$((SECONDS + limit))
    while :; do
        "$@" && return 0
        [ $SECONDS -ge "$end" ] && return 1
        sleep 0.2
    done
}

# indexed CONF: every cloud of CONF has had a complete crawl (skyfs search
#   succeeds and warns of none).  The first crawl of a mount waits for the
#   cloud to pause, so a test that searches right after its writes waits
#   for this first (wait_until 30 indexed CONF).
indexed() {
    local said
    said=$("$SKYFS" search -c "$1" --limit 1 -- 'no-such-name-*' 2>&1 >/dev/null) &&
        [ -z "$said" ]
}

# die "reason"
#   Records a failed check (the rest of the file cannot run) and exits; the
#   exit handler still cleans up.
die() {
    record FAIL "$1 (stopping $TEST_NAME here)"
    exit 1
}

# ------------------------------------------------------------------ skyfs

# daemon_pids MNT
#   Prints the pids of skyfs processes whose command line names MNT (so the
#   daemon serving MNT; matched by exact argument, nothing broader).
daemon_pids() {
    local mnt=$1 p comm
    for p in /proc/[0-9]*; do
        read -r comm 2>/dev/null <"$p/comm" || continue   # no fork per process
        case "$comm" in skyfs*|mount.skyfs*|memcheck*) ;; *) continue ;; esac
        if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$mnt"; then
            echo "${p#/proc/}"
        fi
    done
}

# mount_skyfs CONFIG MNT [extra mount options...]
#   Runs `$SKYFS mount -c CONFIG --log $LOGS/<mnt name>.log [options] MNT`
#   (it daemonizes and returns when the mount is ready), and checks that it
#   exited 0 and that MNT is a mountpoint.  Records one check; returns 1 on
#   failure (callers usually add `|| die "mount failed"`).  The command's
#   output goes to a file, never a pipe, since the daemon inherits it.
mount_skyfs() {
    local config=$1 mnt=$2; shift 2
    local name out rc
    mkdir -p "$mnt"
    mnt=$(cd "$mnt" && pwd)
    name=$(basename "$mnt")
    out="$LOGS/$name.mount.out"
    echo "$mnt" >>"$_SKY_MOUNTS"
    echo "+ skyfs mount -c $config --log $LOGS/$name.log $* $mnt" >>"$out"
    timeout 60 "$SKYFS" mount -c "$config" --log "$LOGS/$name.log" "$@" "$mnt" \
        >>"$out" 2>&1 </dev/null
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "(skyfs mount exited $rc)" >>"$out"
        [ -f "$LOGS/$name.log" ] && tail -n 20 "$LOGS/$name.log" >>"$out"
        record FAIL "mount $name" "$out"
        return 1
    fi
    if ! mountpoint -q "$mnt"; then
        echo "(skyfs mount exited 0 but $mnt is not a mountpoint)" >>"$out"
        record FAIL "mount $name" "$out"
        return 1
    fi
    record ok "mount $name"
}

# mount_tmpfs DIR SIZE NAME
#   Mounts a tmpfs of SIZE (8m, 64m...) named NAME at DIR (made if needed):
#   a cache or a cloud's folder with little room.  The exit handler
#   unmounts it lazily, after skyfs's mounts.  Dies when it cannot.
mount_tmpfs() {
    mkdir -p "$1"
    mount -t tmpfs -o "size=$2" "$3" "$1" || die "cannot mount a tmpfs at $1"
    _SKY_TMPFS+=("$1")
}

# make_image IMG SIZE MKFS [ARGS...]
#   A file system image: IMG truncated to SIZE (256M...), then `MKFS ARGS
#   IMG` (mkfs.ext4 -q -F, mkfs.btrfs -q -f).  Dies when it cannot.
make_image() {
    local img=$1 size=$2; shift 2
    truncate -s "$size" "$img" && "$@" "$img" >"$LOGS/mkfs.out" 2>&1 ||
        die "$1 failed: $(cat "$LOGS/mkfs.out")"
}

# mount_image IMG DIR [OPTIONS]
#   Loop-mounts the image IMG at DIR (made if needed), with mount OPTIONS
#   besides loop: a cache on a disk a test can fill, fail or cut.  The exit
#   handler unmounts it lazily, after skyfs's mounts.  Dies when it cannot.
mount_image() {
    local img=$1 dir=$2 opts=loop${3:+,$3}
    mkdir -p "$dir"
    mount -o "$opts" "$img" "$dir" 2>"$LOGS/mount-loop.out" ||
        die "cannot loop-mount $img (loop devices?): $(cat "$LOGS/mount-loop.out")"
    case " ${_SKY_TMPFS[*]} " in *" $dir "*) ;; *) _SKY_TMPFS+=("$dir") ;; esac
}

# unmount_skyfs MNT
#   Runs `$SKYFS unmount MNT` (which waits for pending uploads and for the
#   daemon to exit) and checks: exit 0, MNT no longer mounted, no daemon
#   left.  Records one check; on failure it forces a lazy unmount.
unmount_skyfs() {
    local mnt name out rc pids
    mnt=$(cd "$1" && pwd)
    name=$(basename "$mnt")
    out="$LOGS/$name.unmount.out"
    echo "+ skyfs unmount $mnt" >>"$out"
    timeout 120 "$SKYFS" unmount "$mnt" >>"$out" 2>&1 </dev/null
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "(skyfs unmount exited $rc)" >>"$out"
    elif mountpoint -q "$mnt"; then
        echo "(skyfs unmount exited 0 but $mnt is still mounted)" >>"$out"
        rc=1
    else
        pids=$(daemon_pids "$mnt")
        if [ -n "$pids" ]; then
            echo "(skyfs unmount returned but daemon pid(s) $pids still run)" >>"$out"
            rc=1
        fi
    fi
    if [ $rc -ne 0 ]; then
        [ -f "$LOGS/$name.log" ] && tail -n 20 "$LOGS/$name.log" >>"$out"
        record FAIL "unmount $name" "$out"
        _force_unmount "$mnt"
        return 1
    fi
    record ok "unmount $name"
}

# _force_unmount MNT: lazy unmount, then end the daemon (TERM, then KILL).
_force_unmount() {
    local mnt=$1 pids i
    if mountpoint -q "$mnt" 2>/dev/null; then
        fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
    fi
    pids=$(daemon_pids "$mnt")
    [ -z "$pids" ] && return 0
    for i in $(seq 50); do
        pids=$(daemon_pids "$mnt")
        [ -z "$pids" ] && return 0
        # shellcheck disable=SC2086 # one argument per pid
        [ "$i" -eq 30 ] && kill $pids 2>/dev/null
        sleep 0.2
    done
    # shellcheck disable=SC2086 # one argument per pid
    kill -KILL $pids 2>/dev/null
    return 0
}

# write_local_config CONFIG CACHE_DIR NAME=DIR...
#   Writes a config with [cache] dir = CACHE_DIR and one `type = local`
#   cloud per NAME=DIR, in the order given, each with ttl = $LOCAL_TTL
#   (default 1s).  Creates the directories.
write_local_config() {
    local config=$1 cache=$2 pair name dir; shift 2
    mkdir -p "$cache"
    {
        echo "# written by $TEST_NAME"
        echo "[cache]"
        echo "dir = $cache"
        for pair in "$@"; do
            name=${pair%%=*}
            dir=${pair#*=}
            mkdir -p "$dir"
            echo
            echo "[$name]"
            echo "type = local"
            echo "path = $dir"
            echo "ttl = ${LOCAL_TTL:-1s}"
        done
    } >"$config"
}

# errno_of OP PATH [PATH2]
#   Does one operation with Python and prints "ok" or the errno name
#   (ENOENT, EPERM...).  OP: mkdir rmdir unlink read create stat lstat
#   readlink listdir rename.
errno_of() {
    "$PYTHON" - "$@" <<'EOF'
import errno, os, sys
op, args = sys.argv[1], sys.argv[2:]
def read(p):
    with open(p, "rb") as f: f.read()
def create(p):
    os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
ops = {"mkdir": os.mkdir, "rmdir": os.rmdir, "unlink": os.unlink,
       "read": read, "create": create, "stat": os.stat, "lstat": os.lstat,
       "readlink": os.readlink, "listdir": os.listdir, "rename": os.rename,
       "link": os.link, "mkfifo": os.mkfifo}
try:
    ops[op](*args)
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}

# ---------------------------------------------------------------- servers

# free_port
#   Prints a TCP port on 127.0.0.1 that is free right now.
free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# _start_server NAME PORT URL cmd...
#   Starts cmd in the background (log in $LOGS/NAME-PORT.log), remembers its
#   pid for stop_servers, and waits until URL answers HTTP: up to
#   SKY_SERVER_START seconds (default 120: a node server's start reads
#   hundreds of files, which takes half a minute on a busy machine; this
#   bounds a hang, it does not measure speed).
#   Records one check "start NAME on port PORT"; returns 1 on failure.
_start_server() {
    local name=$1 port=$2 url=$3; shift 3
    local log="$LOGS/$name-$port.log" pid
    "$@" >"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >>"$_SKY_PIDS"
    local limit=${SKY_SERVER_START:-120}
    local end=$((SECONDS + limit))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "($name exited before answering)" >>"$log"
            record FAIL "start $name on port $port" "$log"
            return 1
        fi
        if curl -s -o /dev/null --max-time 2 "$url"; then
            record ok "start $name on port $port"
            return 0
        fi
        if [ $SECONDS -ge $end ]; then
            echo "($name did not answer at $url within $limit s)" >>"$log"
            record FAIL "start $name on port $port" "$log"
            return 1
        fi
        sleep 0.2
    done
}

# start_s3rver DIR PORT [s3rver options...]
#   Starts the s3rver S3 server storing its data in DIR, on 127.0.0.1:PORT,
#   and waits until it answers.  Credentials: access key S3RVER, secret key
#   S3RVER; endpoint http://127.0.0.1:PORT (path-style).  Extra options go
#   to s3rver, e.g. `--configure-bucket NAME` to create a bucket at start.
start_s3rver() {
    local dir=$1 port=$2; shift 2
    mkdir -p "$dir"
    [ -f "$SERVERS_DIR/s3rver/bin/s3rver.js" ] ||
        { record FAIL "start s3rver: not installed (run make deps)"; return 1; }
    # s3rver's list continuation tokens use DES, which OpenSSL 3 keeps in
    # its legacy provider.  s3rver_as_s3.js makes a copy in place move
    # Last-Modified, as on S3.
    _start_server s3rver "$port" "http://127.0.0.1:$port/" \
        env NODE_OPTIONS=--openssl-legacy-provider \
        node -r "$SERVERS_DIR/../s3rver_as_s3.js" "$SERVERS_DIR/s3rver/bin/s3rver.js" \
        -d "$dir" -a 127.0.0.1 \
        -p "$port" -s "$@"
}

# s3rver_cloud NAME ENDPOINT BUCKET: the config section of an s3 cloud NAME
# over BUCKET on the s3rver at ENDPOINT (its S3RVER keys), for a test's
# config heredoc: "$(s3rver_cloud s3 "$ENDPOINT" data)"; lines after it in
# the heredoc (ttl = ...) belong to the same section.
# start_bucket BUCKET: s3rver on a free port with BUCKET made; sets BUCKET,
#   S3PORT and BUCKET_URL (http://127.0.0.1:S3PORT/BUCKET, for bucket_get and
#   friends).  Stops the file when s3rver cannot start.
start_bucket() {
    BUCKET=$1
    S3PORT=$(free_port)
    start_s3rver "$TEST_TMP/s3rver" "$S3PORT" --configure-bucket "$BUCKET" ||
        die "cannot start s3rver"
    BUCKET_URL="http://127.0.0.1:$S3PORT/$BUCKET"
}

s3rver_cloud() {
    printf '[%s]\ntype = s3\nendpoint = %s\nbucket = %s\n' "$1" "$2" "$3"
    printf 'access_key_id = S3RVER\nsecret_access_key = S3RVER\n'
}

# sent CLOUD: the body bytes the mount at $MNT sent to CLOUD so far (its
# metrics file's skyfs_cloud_sent_bytes_total; 0 before the first).
sent() {
    awk -v n="skyfs_cloud_sent_bytes_total{cloud=\"$1\"}" \
        '$1 == n { print $2; found = 1 } END { if (!found) print 0 }' "$MNT/.skyfs/metrics"
}

# between LO HI VALUE: LO <= VALUE <= HI (prints them otherwise).
between() {
    [ "$3" -ge "$1" ] && [ "$3" -le "$2" ] && return 0
    echo "$3 is not within [$1, $2]"
    return 1
}

# s3curl CURL-ARGS...: curl signed for s3rver (SigV4 as S3RVER/S3RVER, region
# us-east-1, unsigned payload: curl 7.88 does not hash bodies), failing on
# HTTP errors; for requests straight to the server, bypassing skyfs.
s3curl() {
    curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

# header_of NAME: the value of HTTP header NAME (any case) in the headers
# on stdin (curl -I or -D -).
header_of() {
    tr -d '\r' | awk -v h="$(echo "$1" | tr '[:upper:]' '[:lower:]')" -F': ' \
        'tolower($1) == h { print $2 }'
}

# Straight to the bucket at BUCKET_URL (http://127.0.0.1:PORT/BUCKET of an
# s3rver or of the GCS emulator's S3 side), bypassing skyfs:
#   bucket_get KEY         the object's bytes; fails when it is not there
#   bucket_has KEY         it is there (a HEAD); bucket_lacks KEY: it is not
#   bucket_keys [PREFIX]   every key under PREFIX, sorted, one a line
#   bucket_header KEY NAME the value of header NAME of KEY (a HEAD)
bucket_get() { s3curl "$BUCKET_URL/$1"; }
bucket_has() { s3curl -I "$BUCKET_URL/$1" >/dev/null 2>&1; }
bucket_lacks() { ! bucket_has "$1"; }
bucket_header() { s3curl -I "$BUCKET_URL/$1" | header_of "$2"; }
bucket_keys() {
    s3curl "$BUCKET_URL?list-type=2&prefix=${1:-}" | grep -o '<Key>[^<]*</Key>' |
        sed 's/<Key>\(.*\)<\/Key>/\1/' | LC_ALL=C sort
}

# Behind the logging proxy (start_s3rver_behind logging): requests_mark
# prints how many requests reached the server so far, requests_since MARK
# the request lines after that mark.
requests_mark() { wc -l <"$REQUESTS"; }
requests_since() { tail -n +$(($1 + 1)) "$REQUESTS"; }

# start_fault_proxy LISTEN_PORT UPSTREAM_PORT: fault_proxy.py between a
# client and the server at UPSTREAM_PORT, its rules and log in $FAULTS.
start_fault_proxy() {
    _start_server fault_proxy "$1" "http://127.0.0.1:$1/" \
        "$PYTHON" "$SKY_ROOT/tests/integration/fault_proxy.py" "$1" "$2" "$FAULTS"
}

# start_s3rver_behind PROXY BUCKET
#   Starts one s3rver holding BUCKET and, in front of it, a proxy of the
#   tests, each on a free port: S3_PORT is the server's own (for requests
#   straight to it, BUCKET_URL the bucket's there: bucket_get...),
#   PROXY_PORT the proxy's (the endpoint skyfs gets).
#   PROXY is
#     liveness  liveness_proxy.py, steered by the file MODE (written
#               "forward" here) and counting requests in the file COUNT
#               ($TEST_TMP/proxy.mode and proxy.count);
#     logging   listing_proxy.py without fragments: it forwards every
#               request and logs its request line to REQUESTS
#               ($LOGS/requests.log).
#   Records the servers' start checks; returns 1 when one does not start.
start_s3rver_behind() {
    local proxy=$1 bucket=$2
    S3_PORT=$(free_port)
    PROXY_PORT=$(free_port)
    BUCKET_URL="http://127.0.0.1:$S3_PORT/$bucket"
    start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket "$bucket" || return 1
    case "$proxy" in
    liveness)
        MODE="$TEST_TMP/proxy.mode"
        COUNT="$TEST_TMP/proxy.count"
        echo forward >"$MODE"
        _start_server liveness_proxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" \
            "$PYTHON" "$SKY_ROOT/tests/integration/liveness_proxy.py" "$PROXY_PORT" "$S3_PORT" \
            "$MODE" "$COUNT"
        ;;
    logging)
        REQUESTS="$LOGS/requests.log"
        : >"$TEST_TMP/no-fragments"
        _start_server listing_proxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" \
            "$PYTHON" "$SKY_ROOT/tests/integration/listing_proxy.py" "$PROXY_PORT" "$S3_PORT" s3 \
            "$TEST_TMP/no-fragments" "$REQUESTS"
        ;;
    *)
        record FAIL "start_s3rver_behind: no proxy named '$proxy'"
        return 1
        ;;
    esac
}

# write_s3_config CONF ENDPOINT BUCKET [LINE...]
#   Writes config CONF (mode 0600): the cache in $TEST_TMP/cache and one
#   s3 cloud named s3 over BUCKET on the s3rver at ENDPOINT; each LINE
#   (a "key = value", or a comment) is added to the cloud's section.
write_s3_config() {
    local conf=$1 endpoint=$2 bucket=$3; shift 3
    mkdir -p "$TEST_TMP/cache"
    (
        umask 077
        {
            printf '[cache]\ndir = %s\n\n' "$TEST_TMP/cache"
            s3rver_cloud s3 "$endpoint" "$bucket"
            [ $# -eq 0 ] || printf '%s\n' "$@"
        } >"$conf"
    )
}

# The test Ceph cluster's S3 user (RGW_ACCESS_KEY, RGW_SECRET_KEY), its
# configuration and rgw_curl
# shellcheck source=../servers/rgw.sh
. "$SKY_ROOT/tests/servers/rgw.sh"

# _rgw_fail DIR WHY: records the failed start with the daemons' logs.
_rgw_fail() {
    local dir=$1 why=$2 f out
    out="$dir/start.failure"
    echo "($why)" >"$out"
    for f in "$dir"/*.out "$dir"/log/*.log; do
        [ -s "$f" ] || continue
        echo "--- $f"
        tail -n 8 "$f"
    done >>"$out" 2>&1
    record FAIL "start rgw: $why" "$out"
    return 1
}

# _rgw_daemon DIR NAME cmd...: starts a Ceph daemon in the foreground of a
# background job (its stderr in DIR/NAME.out), remembered for stop_servers.
_rgw_daemon() {
    local dir=$1 name=$2; shift 2
    "$@" >"$dir/$name.out" 2>&1 </dev/null &
    echo $! >>"$_SKY_PIDS"
    eval "_RGW_PID_$name=\$!"
}

# _rgw_alive DIR: every daemon started so far still runs.
_rgw_alive() {
    local name pid
    for name in mon osd rgw; do
        eval "pid=\${_RGW_PID_$name:-}"
        [ -z "$pid" ] && continue
        kill -0 "$pid" 2>/dev/null || { _RGW_DEAD=$name; return 1; }
    done
}

# _rgw_ready URL: a bucket made (or there already), an object put, read
# back and deleted.
_rgw_ready() {
    local url=$1
    rgw_curl -o /dev/null --max-time 20 -X PUT "$url/skyfs-ready" || return 1
    rgw_curl -o /dev/null --max-time 20 -X PUT --data-binary ready "$url/skyfs-ready/o" &&
    [ "$(rgw_curl --max-time 20 "$url/skyfs-ready/o")" = ready ] &&
    rgw_curl -o /dev/null --max-time 20 -X DELETE "$url/skyfs-ready/o" &&
    rgw_curl -o /dev/null --max-time 20 -X DELETE "$url/skyfs-ready"
}

# start_rgw DIR PORT [BUCKET...] [MEMSTORE_BYTES=N]
#   Starts a one-machine Ceph cluster (ceph-mon, ceph-osd on memstore,
#   radosgw) with everything under DIR, the S3 gateway on
#   http://127.0.0.1:PORT (path-style, any region), makes the S3 user
#   RGW_ACCESS_KEY / RGW_SECRET_KEY and each BUCKET, and waits (up to
#   SKY_RGW_START seconds, default 300: Ceph takes 20-60 s, more on a busy
#   machine) until an object can be put, read and deleted.  Records one
#   check "start rgw on port PORT in N s"; on failure the check fails with
#   the daemons' logs.  Needs root (Ceph's daemons) and make deps.
#   stop_servers (the exit handler) ends the three daemons.
start_rgw() {
    local dir=$1 port=$2 start=$SECONDS bin mon_port end bytes=2147483648 b
    shift 2
    local buckets=()
    for b in "$@"; do
        case "$b" in MEMSTORE_BYTES=*) bytes=${b#*=} ;; *) buckets+=("$b") ;; esac
    done
    for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
        command -v "$bin" >/dev/null ||
            { _rgw_fail "$dir" "$bin is missing (run make deps: packages ceph-mon ceph-osd radosgw ceph-common)"; return 1; }
    done
    [ "$(id -u)" -eq 0 ] || { _rgw_fail "$dir" "Ceph's daemons need root here"; return 1; }
    _RGW_PID_mon= _RGW_PID_osd= _RGW_PID_rgw=
    mkdir -p "$dir"
    mon_port=$(free_port)
    rgw_write_conf "$dir" "$mon_port" "$port" "$bytes" >"$dir/mkfs.out" 2>&1 ||
        { _rgw_fail "$dir" "cannot write the configuration and keys"; return 1; }
    rgw_mkfs_mon "$dir" >>"$dir/mkfs.out" 2>&1 ||
        { _rgw_fail "$dir" "ceph-mon --mkfs failed"; return 1; }
    _rgw_daemon "$dir" mon ceph-mon -c "$dir/ceph.conf" -i a -f
    end=$((SECONDS + ${SKY_RGW_START:-300}))
    until rgw_ceph "$dir" mon stat >>"$dir/mkfs.out" 2>&1; do
        _rgw_alive || { _rgw_fail "$dir" "ceph-mon exited"; return 1; }
        [ $SECONDS -ge $end ] && { _rgw_fail "$dir" "ceph-mon did not answer"; return 1; }
        sleep 0.5
    done
    rgw_mkfs_osd "$dir" >>"$dir/mkfs.out" 2>&1 ||
        { _rgw_fail "$dir" "making osd.0 failed"; return 1; }
    _rgw_daemon "$dir" osd ceph-osd -c "$dir/ceph.conf" -i 0 -f
    _rgw_daemon "$dir" rgw radosgw -c "$dir/ceph.conf" -n client.rgw -f
    until rgw_user "$dir" >>"$dir/mkfs.out" 2>&1; do
        _rgw_alive || { _rgw_fail "$dir" "$_RGW_DEAD exited"; return 1; }
        [ $SECONDS -ge $end ] && { _rgw_fail "$dir" "radosgw-admin could not make the S3 user"; return 1; }
        sleep 1
    done
    RGW_ENDPOINT="http://127.0.0.1:$port"
    until _rgw_ready "$RGW_ENDPOINT" >>"$dir/mkfs.out" 2>&1; do
        _rgw_alive || { _rgw_fail "$dir" "$_RGW_DEAD exited"; return 1; }
        [ $SECONDS -ge $end ] && { _rgw_fail "$dir" "radosgw did not store an object within ${SKY_RGW_START:-300} s"; return 1; }
        sleep 1
    done
    for b in "${buckets[@]}"; do
        curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user "$RGW_ACCESS_KEY:$RGW_SECRET_KEY" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --max-time 60 -X PUT \
            -w '\n%{http_code}\n' "$RGW_ENDPOINT/$b" >"$dir/bucket.out" 2>&1
        [ "$(tail -n 1 "$dir/bucket.out")" = 200 ] ||
            { _rgw_fail "$dir" "cannot make bucket $b: $(tr -d '\n' <"$dir/bucket.out" | head -c 300)"; return 1; }
    done
    RGW_START_S=$((SECONDS - start))
    record ok "start rgw (ceph-mon, ceph-osd, radosgw) on port $port in ${RGW_START_S} s"
}

# rgw_cloud NAME ENDPOINT BUCKET: the config section of an s3 cloud NAME
# over BUCKET on the RGW at ENDPOINT (the test user's keys), like
# s3rver_cloud.
rgw_cloud() {
    printf '[%s]\ntype = s3\nendpoint = %s\nbucket = %s\n' "$1" "$2" "$3"
    printf 'access_key_id = %s\nsecret_access_key = %s\n' "$RGW_ACCESS_KEY" "$RGW_SECRET_KEY"
}

# Azurite's account, key and azurite_sas
# shellcheck source=../servers/azurite.sh
. "$SKY_ROOT/tests/servers/azurite.sh"

# start_azurite DIR PORT [azurite options...]
#   Starts Azurite's Blob service storing its data in DIR, on
#   127.0.0.1:PORT, and waits until it answers.  Account devstoreaccount1
#   with Azurite's well-known key; endpoint
#   http://127.0.0.1:PORT/devstoreaccount1.  Any API version is accepted.
start_azurite() {
    local dir=$1 port=$2; shift 2
    mkdir -p "$dir"
    [ -f "$SERVERS_DIR/azurite/dist/src/blob/main.js" ] ||
        { record FAIL "start azurite: not installed (run make deps)"; return 1; }
    _start_server azurite "$port" "http://127.0.0.1:$port/devstoreaccount1?comp=list" \
        node "$SERVERS_DIR/azurite/dist/src/blob/main.js" --blobHost 127.0.0.1 \
        --blobPort "$port" -l "$dir" --disableTelemetry --skipApiVersionCheck \
        -s "$@"
}

# stop_servers
#   Stops every server this file started (TERM, then KILL after 5 s).
stop_servers() {
    local pid i alive
    for pid in $(cat "$_SKY_PIDS"); do
        kill "$pid" 2>/dev/null
    done
    for i in $(seq 25); do
        alive=
        for pid in $(cat "$_SKY_PIDS"); do
            kill -0 "$pid" 2>/dev/null && alive="$alive $pid"
        done
        [ -z "$alive" ] && break
        sleep 0.2
    done
    for pid in $(cat "$_SKY_PIDS"); do
        kill -KILL "$pid" 2>/dev/null
    done
    : >"$_SKY_PIDS"
}

# ------------------------------------------------------------------- exit

# check_sanitizers: records a failure for each log holding a sanitizer
# report (or a valgrind report with errors or definite leaks); records one ok when there is none (and there are logs).
check_sanitizers() {
    local f found=0
    local pattern='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|ERROR SUMMARY: [1-9]'
    for f in "$LOGS"/*; do
        [ -f "$f" ] || continue
        case "$f" in *.head) continue ;; esac
        if grep -qE "$pattern" "$f"; then
            found=1
            # The report's head names the error and the stack.
            grep -m1 -A 30 -E "$pattern" "$f" >"$f.head"
            case "$f" in */valgrind-*) head -n 60 "$f" >"$f.head" ;; esac
            record FAIL "sanitizer report in logs/$(basename "$f")" "$f.head"
        fi
    done
    # Only worth a check when something ran and left logs.
    if [ $found -eq 0 ] && [ -n "$(ls -A "$LOGS")" ]; then
        record ok "no sanitizer report in the logs"
    fi
    return 0
}

_sky_exit() {
    local rc=$? mnt
    while read -r mnt; do
        [ -n "$mnt" ] && _force_unmount "$mnt"
    done <"$_SKY_MOUNTS"
    for mnt in "${_SKY_TMPFS[@]}"; do
        umount -l "$mnt" 2>/dev/null
    done
    stop_servers
    check_sanitizers
    if [ "$_SKY_STANDALONE" = 1 ]; then
        local passed failed
        passed=$(grep -c '^ok' "$TEST_RESULTS")
        failed=$(grep -c '^FAIL' "$TEST_RESULTS")
        if [ "$failed" -gt 0 ]; then
            echo "--- failures (logs in $TEST_TMP):"
            cat "$TEST_RESULTS.details"
        else
            rm -rf "$TEST_TMP"
        fi
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ] || exit 1
    fi
    exit $rc
}
trap _sky_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Nothing can run without the binary and FUSE: fail loudly, not skip.
[ -x "$SKYFS" ] || die "$SKYFS is missing (run make)"
[ -c /dev/fuse ] || die "/dev/fuse is missing: FUSE tests cannot run here"
command -v fusermount3 >/dev/null || die "fusermount3 is missing (run make deps)"
