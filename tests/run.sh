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
# (TEST_TIMEOUT seconds per file, default 600).  A test file that cannot
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
export SKY_ROOT="$ROOT" BUILD

unit=1
filter=
for arg in "$@"; do
    case "$arg" in
        --integration-only) unit=0 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
        *) filter=$arg ;;
    esac
done

passed=0
failed=0
SUMMARY=$(mktemp /tmp/skyfs-run-XXXXXX)
trap 'rm -f "$SUMMARY"' EXIT

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
    local tmp=$1 mnt pid p
    if [ -f "$tmp/.mounts" ]; then
        while read -r mnt; do
            [ -n "$mnt" ] || continue
            if mountpoint -q "$mnt" 2>/dev/null; then
                echo "run.sh: $mnt was left mounted; unmounting it" >&2
                fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
            fi
            for p in /proc/[0-9]*; do
                case "$(cat "$p/comm" 2>/dev/null)" in skyfs*|memcheck*) ;; *) continue ;; esac
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

# Runs one integration test file and adds up its checks.
run_test_file() {
    local file=$1 name tmp rc p f start=$SECONDS
    name=$(basename "$file" .sh)
    tmp=$(mktemp -d "/tmp/skyfs-$name-XXXXXX")
    echo "--- $name"
    (cd "$tmp" && TEST_TMP="$tmp" TEST_RESULTS="$tmp/results" \
        timeout -k 20 "$TEST_TIMEOUT" bash "$file")
    rc=$?
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
    echo "--- $name: $p passed, $f failed in $((SECONDS - start)) s"
    if [ "$f" -eq 0 ] && [ "$rc" -eq 0 ]; then
        rm -rf "$tmp"
    else
        echo "    (logs kept in $tmp)"
    fi
}

[ $unit -eq 1 ] && run_unit_tests

if [ ! -c /dev/fuse ]; then
    fail "integration: /dev/fuse is missing, so no integration test can run"
fi
nfiles=0
for file in "$ROOT"/tests/integration/*.sh; do
    [ -e "$file" ] || continue
    case "$(basename "$file")" in lib.sh|*_lib.sh) continue ;; esac
    if [ -n "$filter" ] && [[ "$(basename "$file")" != *"$filter"* ]]; then
        continue
    fi
    nfiles=$((nfiles + 1))
    run_test_file "$file"
done
if [ $nfiles -eq 0 ] && [ -n "$filter" ]; then
    fail "integration: no test file matches '$filter'"
fi

if [ $failed -gt 0 ]; then
    echo
    echo "=============== failures"
    cat "$SUMMARY"
    echo
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
