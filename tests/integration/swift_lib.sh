# shellcheck shell=bash
# swift_lib.sh - an all-in-one OpenStack Swift for the integration tests.
#
#     . "$(dirname "$0")/lib.sh"
#     . "$(dirname "$0")/swift_lib.sh"
#     start_swift "$TEST_TMP/swift" || die "cannot start swift"
#
# start_swift DIR starts Debian's Swift (swift-proxy-server, -account-,
# -container- and -object-server) plus the memcached TempAuth keeps its
# tokens in, every one on 127.0.0.1 on a free port, with their
# configuration, rings (one replica, built with Swift's RingBuilder), data
# (a plain directory as the one device, mount_check = false) and logs all
# under DIR.  The servers run under eatmydata: their fsyncs (one per
# object, container and account update) are no-ops, since no test cuts the
# power under them, and a bulk put of thousands of objects takes a third
# less time.  It records one check, "start swift ... in N s", and fails
# loudly (the check fails, with the servers' logs) when anything is missing
# or does not answer within 120 s.  It works as root and as another user
# (the servers run as whoever starts them).  lib.sh's exit handler stops
# the servers (stop_servers).
#
# After start_swift:
#   SWIFT_AUTH     TempAuth v1 URL   http://127.0.0.1:PORT/auth/v1.0
#   SWIFT_USER     test:tester       (an admin of account AUTH_test)
#   SWIFT_KEY      testing
#   SWIFT_URL      storage URL       http://127.0.0.1:PORT/v1/AUTH_test
#   SWIFT_PROXY    http://127.0.0.1:PORT
#   SWIFT_START_S  seconds the start took
# and swift_token prints a fresh token; scurl runs curl with it (failing on
# HTTP errors); swift_container NAME makes a container; swiftcli runs
# python-swiftclient's `swift` CLI on this cluster.

# the configuration and the TempAuth user (SWIFT_USER, SWIFT_KEY)
# shellcheck source=../servers/swift.sh
. "$SKY_ROOT/tests/servers/swift.sh"

# _swift_fail DIR WHY: records the failed start with the servers' logs.
_swift_fail() {
    local dir=$1 why=$2 f out
    out="$dir/start.failure"
    echo "($why)" >"$out"
    for f in "$LOGS"/swift-*.log "$LOGS"/memcached-*.log "$dir/rings.log"; do
        [ -s "$f" ] || continue
        echo "--- $f"
        tail -n 15 "$f"
    done >>"$out" 2>&1
    record FAIL "start swift: $why" "$out"
    return 1
}

# start_swift DIR: see the top of this file.
start_swift() {
    local dir=$1 start=$SECONDS bin kind pid end server
    for bin in swift-proxy-server swift-account-server swift-container-server \
               swift-object-server swift-ring-builder memcached eatmydata; do
        command -v "$bin" >/dev/null ||
            { _swift_fail "$dir" "$bin is missing (run make deps: packages swift-proxy swift-account swift-container swift-object memcached eatmydata)"; return 1; }
    done
    _SWIFT_PROXY_PORT=$(free_port)
    _SWIFT_ACCOUNT_PORT=$(free_port)
    _SWIFT_CONTAINER_PORT=$(free_port)
    _SWIFT_OBJECT_PORT=$(free_port)
    _SWIFT_MEMCACHED_PORT=$(free_port)
    _SWIFT_SINK_PORT=$(free_port)
    mkdir -p "$dir"
    swift_write_conf "$dir" "$_SWIFT_PROXY_PORT" "$_SWIFT_ACCOUNT_PORT" "$_SWIFT_CONTAINER_PORT" \
        "$_SWIFT_OBJECT_PORT" "$_SWIFT_MEMCACHED_PORT" "$_SWIFT_SINK_PORT" >"$dir/rings.log" 2>&1 || { _swift_fail "$dir" "building the rings (Swift's RingBuilder) failed"; return 1; }

    # memcached refuses to run as root unless told whom to run as
    local mc_user=()
    [ "$(id -u)" -eq 0 ] && mc_user=(-u root)
    memcached -l 127.0.0.1 -p "$_SWIFT_MEMCACHED_PORT" -U 0 -m 32 "${mc_user[@]}" \
        >"$LOGS/memcached-$_SWIFT_MEMCACHED_PORT.log" 2>&1 </dev/null &
    echo $! >>"$_SKY_PIDS"
    for kind in account container object proxy; do
        server=swift-$kind-server
        # -v: log to the console too, i.e. to the log file
        eatmydata "$server" "$dir/conf/$kind-server.conf" -v \
            >"$LOGS/swift-$kind.log" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >>"$_SKY_PIDS"
        eval "_SWIFT_PID_$kind=$pid"
    done
    SWIFT_PROXY="http://127.0.0.1:$_SWIFT_PROXY_PORT"
    SWIFT_AUTH="$SWIFT_PROXY/auth/v1.0"
    end=$((SECONDS + 120))
    while :; do
        for kind in account container object proxy; do
            eval "pid=\$_SWIFT_PID_$kind"
            kill -0 "$pid" 2>/dev/null ||
                { _swift_fail "$dir" "swift-$kind-server exited"; return 1; }
        done
        # ready: the proxy hands out a token and every server answers (a
        # container and an object made and removed again)
        if SWIFT_URL=$(_swift_auth_header X-Storage-Url) && [ -n "$SWIFT_URL" ] &&
           curl -sf -o /dev/null --max-time 5 -H "X-Auth-Token: $(swift_token)" "$SWIFT_URL" &&
           scurl -o /dev/null --max-time 30 -X PUT "$SWIFT_URL/skyfs-test-ready" &&
           scurl -o /dev/null --max-time 30 -X PUT --data-binary ready "$SWIFT_URL/skyfs-test-ready/o" &&
           scurl -o /dev/null --max-time 30 -X DELETE "$SWIFT_URL/skyfs-test-ready/o" &&
           scurl -o /dev/null --max-time 30 -X DELETE "$SWIFT_URL/skyfs-test-ready"; then
            break
        fi
        [ $SECONDS -ge $end ] && { _swift_fail "$dir" "swift did not answer within 120 s"; return 1; }
        sleep 0.3
    done
    SWIFT_START_S=$((SECONDS - start))
    record ok "start swift (4 servers + memcached) on port $_SWIFT_PROXY_PORT in ${SWIFT_START_S} s"
}

# _swift_auth_header NAME: one header of a TempAuth answer.
_swift_auth_header() {
    curl -sf --max-time 5 -D - -o /dev/null -H "X-Auth-User: $SWIFT_USER" \
        -H "X-Auth-Key: $SWIFT_KEY" "$SWIFT_AUTH" | header_of "$1"
}

# swift_token: prints a valid token (TempAuth hands out the same one while
# it lives).
swift_token() {
    _swift_auth_header X-Auth-Token
}

# scurl CURL-ARGS...: curl with a token, failing on HTTP errors; paths are
# relative to nothing: pass "$SWIFT_URL/container/object".
scurl() {
    curl -sf -H "X-Auth-Token: $(swift_token)" "$@"
}

# swift_put_retrying RETRY PATH [CURL-ARGS...]: PUT $SWIFT_URL/PATH,
# trying again for up to 60 s while the answer is one that RETRY (a case
# pattern of status codes; 000 is no answer) matches: a loaded machine's
# Swift can answer 503 while a server is busy.  Returns 0 on a 2xx; else
# prints the last status and body and returns 1.
swift_put_retrying() {
    local retry=$1 path=$2 end=$((SECONDS + 60)) code
    shift 2
    while :; do
        code=$(curl -s -o "$TEST_TMP/swift-put.out" -w '%{http_code}' --max-time 30 \
            -X PUT -H "X-Auth-Token: $(swift_token)" "$@" "$SWIFT_URL/$path")
        code=${code:-000}
        case "$code" in 2??) return 0 ;; esac
        # shellcheck disable=SC2254 # RETRY is a pattern
        case "$code" in $retry) [ $SECONDS -lt $end ] && { sleep 1; continue; } ;; esac
        echo "PUT $SWIFT_URL/$path answered $code: $(head -c 300 "$TEST_TMP/swift-put.out" 2>/dev/null)" >&2
        return 1
    done
}

# swift_put PATH [CURL-ARGS...]: swift_put_retrying while the server is
# busy (503) or does not answer; any other refusal (a 412 to If-None-Match)
# is the answer.
swift_put() {
    swift_put_retrying '503|000' "$@"
}

# swift_container NAME: creates the container NAME, trying again on any
# refusal for up to 60 s (as it always did: a cluster just started can
# refuse in more ways than a busy one).
swift_container() {
    swift_put_retrying '*' "$1"
}

# swiftcli ARGS...: python-swiftclient's CLI on this cluster.
swiftcli() {
    swift -A "$SWIFT_AUTH" -U "$SWIFT_USER" -K "$SWIFT_KEY" "$@"
}
