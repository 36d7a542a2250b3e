# shellcheck shell=bash
# peers.sh - mounting the tools the benchmarks compare, one way for all:
# skyfs's config, rclone mount and s3fs over one s3rver bucket.  Sourced by
# tests/bench/run.sh and tests/bench/listing.sh (before lib.sh, so that bad
# arguments are refused before anything starts); they set $WORK (a scratch
# directory) and $PORT (the s3rver port) before mounting.

declare -A PEER_PID=()  # rclone/s3fs -> pid of the running daemon

# bench_check_args PROG "TOOLS" NUMBER...: exits 2 with a message naming PROG
# when a tool is not skyfs, rclone or s3fs, or a NUMBER is not positive.
bench_check_args() {
    local prog=$1 tools=$2 t n; shift 2
    for t in $tools; do
        case "$t" in skyfs|rclone|s3fs) ;; *) echo "$prog: unknown tool $t" >&2; exit 2 ;; esac
    done
    for n in "$@"; do
        case "$n" in ''|*[!0-9]*|0) echo "$prog: '$n' is not a positive number" >&2; exit 2 ;; esac
    done
}

# bench_skyfs_config CONF CACHE BUCKET [LINE...]: a skyfs config (mode 0600)
# for one s3 cloud named BUCKET on the s3rver (lib.sh's s3rver_cloud); each
# LINE is added to the cloud's section (e.g. "ttl = 1h"), and so is each
# line of BENCH_SKYFS_LINES (e.g. BENCH_SKYFS_LINES='open_ahead = 0' to
# measure without a feature).
bench_skyfs_config() {
    local conf=$1 cache=$2 bucket=$3; shift 3
    mkdir -p "$cache"
    (umask 077; {
        echo "# written by $(basename "$0")"
        printf '[cache]\ndir = %s\n\n' "$cache"
        s3rver_cloud "$bucket" "http://127.0.0.1:$PORT" "$bucket"
        printf 'region = us-east-1\npath_style = true\n'
        local line
        for line in "$@"; do echo "$line"; done
        [ -z "${BENCH_SKYFS_LINES:-}" ] || printf '%s\n' "$BENCH_SKYFS_LINES"
    } >"$conf")
}

# start_peer TOOL BUCKET MNT CACHE LOG: starts rclone (--vfs-cache-mode
# full) or s3fs in the foreground, backgrounded here so that its pid is
# ours, and waits up to 30 s for the mount.  Records one check.
start_peer() {
    local tool=$1 bucket=$2 mnt=$3 cache=$4 log=$5 pid i
    if [ "$tool" = rclone ]; then
        : >"$WORK/rclone.conf"
        (
            unset AWS_CA_BUNDLE
            export RCLONE_CONFIG="$WORK/rclone.conf"
            export RCLONE_CONFIG_SKYBENCH_TYPE=s3 RCLONE_CONFIG_SKYBENCH_PROVIDER=Other
            export RCLONE_CONFIG_SKYBENCH_ENDPOINT="http://127.0.0.1:$PORT"
            export RCLONE_CONFIG_SKYBENCH_REGION=us-east-1
            export RCLONE_CONFIG_SKYBENCH_ACCESS_KEY_ID=S3RVER
            export RCLONE_CONFIG_SKYBENCH_SECRET_ACCESS_KEY=S3RVER
            exec rclone mount "skybench:$bucket" "$mnt" --vfs-cache-mode full \
                --cache-dir "$cache" --log-level INFO
        ) </dev/null >>"$log" 2>&1 &
    else
        (umask 077; echo "S3RVER:S3RVER" >"$WORK/s3fs.passwd")
        s3fs "$bucket" "$mnt" -f -o "url=http://127.0.0.1:$PORT,use_path_request_style" \
            -o "passwd_file=$WORK/s3fs.passwd,use_cache=$cache,endpoint=us-east-1,dbglevel=warn" \
            </dev/null >>"$log" 2>&1 &
    fi
    pid=$!
    PEER_PID[$tool]=$pid
    echo "+ $tool pid $pid on $mnt" >>"$log"
    for i in $(seq 150); do
        mountpoint -q "$mnt" && { record ok "$tool: mount $bucket"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    echo "($tool exited, or did not mount $mnt within 30 s)" >>"$log"
    record FAIL "$tool: mount $bucket" "$log"
    stop_peer "$tool" "$mnt"
    return 1
}

# stop_peer TOOL MNT: unmounts (lazily when busy) and ends the daemon.
stop_peer() {
    local tool=$1 mnt=$2 pid=${PEER_PID[$1]:-} i
    if mountpoint -q "$mnt" 2>/dev/null; then
        timeout 60 fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null
    fi
    [ -z "$pid" ] && return 0
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        [ "$i" -eq 50 ] && kill "$pid" 2>/dev/null
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    PEER_PID[$tool]=
    return 0
}

# tool_version TOOL: one line naming the tool's version, for the results.
tool_version() {
    case "$1" in
        skyfs|skyfs-async) echo "$1 $(git -C "$SKY_ROOT" describe --always --dirty 2>/dev/null || echo '?')" ;;
        rclone) rclone version 2>/dev/null | head -n 1 ;;
        s3fs) s3fs --version 2>/dev/null | head -n 1 | sed 's/ File System//' ;;
    esac
}
