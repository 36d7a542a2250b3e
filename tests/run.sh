#!/usr/bin/env bash
# shellcheck disable=SC2013 # pid files hold one number per line
# run.sh - runs the skyfs test suites and prints one total.
#
#     tests/run.sh [--integration-only] [FILTER]
#
# Runs $BUILD/unit_tests (BUILD defaults to build; skipped with
# --integration-only), then every tests/integration/*.sh file (lib.sh and
# the *_lib.sh files tests source excepted) whose name contains FILTER,
# each in its own fresh temporary directory and under a time limit
# (TEST_TIMEOUT seconds per file, default 600), TEST_JOBS files at a time
# (default 4; a file marked "# run.sh: alone" runs by itself).  A test file that cannot
# run (no binary, no /dev/fuse, a server that does not start, a crash, a
# time-out) counts as failed, never as skipped.
# After each file, whatever happened, its mounts are lazily unmounted and
# its daemons and servers ended.  Failures are listed again at the end, and
# the last line is "N passed, N failed" (unit tests plus integration
# checks); the exit status is non-zero when anything failed.
#
# Called by `make test`, `make integration` and `make asan-test`.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
# Integration files run this many at a time (most of their time is spent
# waiting on servers and TTLs); a file with a line "# run.sh: alone" runs
# by itself, after the others.
TEST_JOBS=${TEST_JOBS:-4}
# Each file's time in a whole run, to start the longest first: this
# build's last whole run, else the times kept in the repository.
DURATIONS="$ROOT/tests/integration/durations"
DURATIONS_LAST="$BUILD/test-durations"
export SKY_ROOT="$ROOT" BUILD

unit=1
filter=
for arg in "$@"; do
    case "$arg" in
        --integration-only) unit=0 ;;
        -h|--help) sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
        *) filter=$arg ;;
    esac
done

passed=0
failed=0
SUMMARY=$(mktemp /tmp/skyfs-run-XXXXXX)
DURATIONS_NEW=$(mktemp /tmp/skyfs-run-times-XXXXXX)
trap 'rm -f "$SUMMARY" "$DURATIONS_NEW"' EXIT

# fail "what" [details-file]: counts one failure and keeps it for the end.
fail() {
    failed=$((failed + 1))
    echo "FAIL $1"
    {
        echo "=== $1"
        [ -n "${2:-}" ] && [ -s "$2" ] && tail -n 40 "$2" | sed 's/^/    /'
    } >>"$SUMMARY"
}

run_unit_tests() {
    local bin="$BUILD/unit_tests" out line p f rc
    if [ ! -x "$bin" ]; then
        fail "unit: $bin is missing (run make)"
        return
    fi
    out=$(mktemp /tmp/skyfs-unit-out-XXXXXX)
    # Show the unit tests' lines as they come, except their own total.
    "$bin" 2>&1 | tee "$out" | grep -vE '^[0-9]+ passed, [0-9]+ failed$'
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    if [ -z "$line" ]; then
        fail "unit: unit_tests ended without a total (exit status $rc; crashed?)" "$out"
    else
        p=${line%% passed*}
        f=${line#*passed, }; f=${f%% failed*}
        passed=$((passed + p))
        echo "unit: $p passed, $f failed"
        if [ "$f" -gt 0 ]; then
            failed=$((failed + f))
            {
                echo "=== unit tests: $f failed"
                grep -E '^(FAIL|  )' "$out" | head -n 60 | sed 's/^/    /'
            } >>"$SUMMARY"
        elif [ "$rc" -ne 0 ]; then
            fail "unit: unit_tests exited $rc after reporting no failure" "$out"
        fi
    fi
    rm -f "$out"
}

# Lazily unmounts what a test file left mounted and ends its daemons and
# servers; a safety net behind lib.sh's own exit handler.
cleanup_after() {
    local tmp=$1 mnt pid p comm
    if [ -f "$tmp/.mounts" ]; then
        while read -r mnt; do
            [ -n "$mnt" ] || continue
            if mountpoint -q "$mnt" 2>/dev/null; then
                echo "run.sh: $mnt was left mounted; unmounting it" >&2
                fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
            fi
            for p in /proc/[0-9]*; do
                read -r comm 2>/dev/null <"$p/comm" || continue
                case "$comm" in skyfs*|memcheck*) ;; *) continue ;; esac
                if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$mnt"; then
                    kill -KILL "${p#/proc/}" 2>/dev/null
                fi
            done
        done <"$tmp/.mounts"
    fi
    if [ -f "$tmp/.pids" ]; then
        for pid in $(cat "$tmp/.pids"); do
            kill -KILL "$pid" 2>/dev/null
        done
    fi
}

# start_test_file FILE: starts one integration test file in the
# background, in its own fresh temporary directory, its output kept in
# TMP/.console and its exit status written to TMP/.rc at its end.  Sets
# started_tmp.
start_test_file() {
    local file=$1 name tmp
    name=$(basename "$file" .sh)
    tmp=$(mktemp -d "/tmp/skyfs-$name-XXXXXX")
    (
        cd "$tmp" && TEST_TMP="$tmp" TEST_RESULTS="$tmp/results" \
            timeout -k 20 "$TEST_TIMEOUT" bash "$file" >"$tmp/.console" 2>&1 </dev/null
        echo $? >"$tmp/.rc.new" && mv "$tmp/.rc.new" "$tmp/.rc"
    ) &
    started_tmp=$tmp
    started_pid=$!
}

# finish_test_file FILE TMP SECONDS: prints a finished file's output and
# adds up its checks.
finish_test_file() {
    local file=$1 tmp=$2 took=$3 name rc p f
    name=$(basename "$file" .sh)
    echo "--- $name"
    cat "$tmp/.console"
    rc=$(cat "$tmp/.rc")
    cleanup_after "$tmp"
    p=$(grep -c '^ok' "$tmp/results" 2>/dev/null)
    f=$(grep -c '^FAIL' "$tmp/results" 2>/dev/null)
    p=${p:-0}; f=${f:-0}
    passed=$((passed + p))
    failed=$((failed + f))
    [ -s "$tmp/results.details" ] && cat "$tmp/results.details" >>"$SUMMARY"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        fail "$name: timed out after $TEST_TIMEOUT s"
    elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        fail "$name: ran no check (exit status $rc)"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        fail "$name: exited $rc although every check passed"
    fi
    echo "--- $name: $p passed, $f failed in $took s"
    echo "$name $took" >>"$DURATIONS_NEW"
    if [ "$f" -eq 0 ] && [ "$rc" -eq 0 ]; then
        rm -rf "$tmp"
    else
        echo "    (logs kept in $tmp)"
    fi
}

# run_files JOBS FILE...: runs the files, JOBS at a time, and finishes
# each as it ends (in the order they end).
run_files() {
    local jobs=$1; shift
    local -a queue=("$@") run_file=() run_tmp=() run_start=() run_pid=()
    local i next=0 still
    while [ $next -lt ${#queue[@]} ] || [ ${#run_file[@]} -gt 0 ]; do
        while [ $next -lt ${#queue[@]} ] && [ ${#run_file[@]} -lt "$jobs" ]; do
            start_test_file "${queue[$next]}"
            run_file+=("${queue[$next]}")
            run_tmp+=("$started_tmp")
            run_start+=("$SECONDS")
            run_pid+=("$started_pid")
            next=$((next + 1))
        done
        wait -n 2>/dev/null || true
        still=()
        for i in "${!run_file[@]}"; do
            # a lane that ended without its status (killed) counts as failed
            if [ ! -f "${run_tmp[$i]}/.rc" ] && ! kill -0 "${run_pid[$i]}" 2>/dev/null; then
                sleep 0.5
                [ -f "${run_tmp[$i]}/.rc" ] || echo 1 >"${run_tmp[$i]}/.rc"
            fi
            if [ -f "${run_tmp[$i]}/.rc" ]; then
                finish_test_file "${run_file[$i]}" "${run_tmp[$i]}" \
                    $((SECONDS - run_start[i]))
            else
                still+=("$i")
            fi
        done
        local -a nf=() nt=() ns=() np=()
        for i in "${still[@]}"; do
            nf+=("${run_file[$i]}"); nt+=("${run_tmp[$i]}")
            ns+=("${run_start[$i]}"); np+=("${run_pid[$i]}")
        done
        run_file=("${nf[@]}"); run_tmp=("${nt[@]}")
        run_start=("${ns[@]}"); run_pid=("${np[@]}")
    done
}

# The files, longest first by their last recorded time (a new file, with
# no time yet, first of all), so the lanes end together.
order_by_duration() {
    local file name t
    local times=$DURATIONS
    [ -s "$DURATIONS_LAST" ] && times=$DURATIONS_LAST
    for file in "$@"; do
        name=$(basename "$file" .sh)
        t=$(awk -v n="$name" '$1 == n { print $2 }' "$times" 2>/dev/null | tail -n 1)
        echo "${t:-100000} $file"
    done | sort -k1,1nr -k2 | cut -d' ' -f2-
}

[ $unit -eq 1 ] && run_unit_tests

if [ ! -c /dev/fuse ]; then
    fail "integration: /dev/fuse is missing, so no integration test can run"
fi
shared=()
alone=()
for file in "$ROOT"/tests/integration/*.sh; do
    [ -e "$file" ] || continue
    case "$(basename "$file")" in lib.sh|*_lib.sh) continue ;; esac
    if [ -n "$filter" ] && [[ "$(basename "$file")" != *"$filter"* ]]; then
        continue
    fi
    if grep -q '^# run.sh: alone' "$file"; then
        alone+=("$file")
    else
        shared+=("$file")
    fi
done
nfiles=$((${#shared[@]} + ${#alone[@]}))
if [ $nfiles -eq 0 ] && [ -n "$filter" ]; then
    fail "integration: no test file matches '$filter'"
fi
if [ ${#shared[@]} -gt 0 ]; then
    mapfile -t shared < <(order_by_duration "${shared[@]}")
    run_files "$TEST_JOBS" "${shared[@]}"
fi
[ ${#alone[@]} -gt 0 ] && run_files 1 "${alone[@]}"
# keep the times for the next run's order (only a whole run's)
if [ -z "$filter" ] && [ -s "$DURATIONS_NEW" ] && [ -d "$BUILD" ]; then
    cp "$DURATIONS_NEW" "$DURATIONS_LAST"
fi

if [ $failed -gt 0 ]; then
    echo
    echo "=============== failures"
    cat "$SUMMARY"
    echo
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
