#!/usr/bin/env bash
# config_errors.sh - bad input gives one clear line, not a crash.
#
# Each bad input (malformed line, unknown cloud type, missing key, missing
# or busy mountpoint, missing config file, secret-bearing config readable
# by others) must make `skyfs mount` (and `skyfs config check` where a
# config is at fault) exit non-zero with exactly one line on stderr,
# "skyfs: ...", mount nothing, leave no daemon, dump no core and trigger no
# sanitizer report (lib.sh checks the logs at exit).
. "$(dirname "$0")/lib.sh"

MNT="$TEST_TMP/mnt"
DATA="$TEST_TMP/data/alpha"
RUN="$TEST_TMP/cwd"      # commands run here, so a core file would land here
mkdir -p "$MNT" "$DATA" "$RUN"

# expect_error CASE PATTERN cmd...: cmd must fail (status 1..127) with
# exactly one stderr line starting "skyfs: " and matching the extended
# regex PATTERN, and leave MNT unmounted and no daemon behind.
expect_error() {
    local case=$1 pattern=$2; shift 2
    local err="$TEST_TMP/$case.stderr" rc lines
    (cd "$RUN" && ulimit -c unlimited 2>/dev/null; timeout 60 "$@" >"$TEST_TMP/$case.stdout" 2>"$err" </dev/null)
    rc=$?
    echo "(exit status $rc of: $*)" >"$TEST_TMP/$case.status"
    if [ $rc -ge 1 ] && [ $rc -lt 124 ]; then
        record ok "$case: exits non-zero without a signal"
    else
        cat "$err" >>"$TEST_TMP/$case.status"
        record FAIL "$case: exits non-zero without a signal" "$TEST_TMP/$case.status"
    fi
    lines=$(grep -c . "$err")
    if [ "$lines" -eq 1 ] && [ "$(wc -l <"$err")" -eq 1 ] && grep -q '^skyfs: ' "$err" &&
       grep -qE -- "$pattern" "$err"; then
        record ok "$case: one line on stderr: $(head -c 150 "$err")"
    else
        echo "(wanted exactly one line 'skyfs: ...' matching /$pattern/)" >>"$err"
        record FAIL "$case: one clear line on stderr" "$err"
    fi
    if mountpoint -q "$MNT" || [ -n "$(daemon_pids "$MNT")" ]; then
        record FAIL "$case: nothing mounted, no daemon left"
        _force_unmount "$MNT"
    else
        record ok "$case: nothing mounted, no daemon left"
    fi
    if compgen -G "$RUN/core*" >/dev/null; then
        record FAIL "$case: no core dump"
        rm -f "$RUN"/core*
    fi
}

# conf NAME MODE: writes stdin to $TEST_TMP/NAME.conf with MODE; prints path.
conf() {
    local path="$TEST_TMP/$1.conf"
    cat >"$path"
    chmod "$2" "$path"
    echo "$path"
}

GOOD=$(conf good 0644 <<EOF
[cache]
dir = $TEST_TMP/cache

[alpha]
type = local
path = $DATA
EOF
)

check "the good config passes config check" "$SKYFS" config check -c "$GOOD"

# --- config errors: mount and config check must both refuse
MALFORMED=$(conf malformed 0644 <<EOF
[cache]
dir = $TEST_TMP/cache

[alpha]
type = local
this line is neither a section nor a key
path = $DATA
EOF
)
expect_error malformed-mount "$MALFORMED:6" "$SKYFS" mount -c "$MALFORMED" "$MNT"
expect_error malformed-check "$MALFORMED:6" "$SKYFS" config check -c "$MALFORMED"

UNKNOWN=$(conf unknown-type 0644 <<EOF
[cache]
dir = $TEST_TMP/cache

[alpha]
type = nosuchcloud
path = $DATA
EOF
)
expect_error unknown-type-mount "$UNKNOWN:5.*nosuchcloud|nosuchcloud.*$UNKNOWN:5|$UNKNOWN:5" \
    "$SKYFS" mount -c "$UNKNOWN" "$MNT"
expect_error unknown-type-check "$UNKNOWN:5" "$SKYFS" config check -c "$UNKNOWN"

NOPATH=$(conf no-path 0644 <<EOF
[cache]
dir = $TEST_TMP/cache

[alpha]
type = local
ttl = 1s
EOF
)
expect_error missing-path-mount "$NOPATH:[0-9]+.*path" "$SKYFS" mount -c "$NOPATH" "$MNT"
expect_error missing-path-check "$NOPATH:[0-9]+.*path" "$SKYFS" config check -c "$NOPATH"

expect_error missing-config-mount "nope\\.conf" \
    "$SKYFS" mount -c "$TEST_TMP/nope.conf" "$MNT"
expect_error missing-config-check "nope\\.conf" \
    "$SKYFS" config check -c "$TEST_TMP/nope.conf"

SECRET=$(conf secret-0644 0644 <<EOF
[cache]
dir = $TEST_TMP/cache

[vault]
type = s3
secret_access_key = x
EOF
)
expect_error secret-0644-mount "chmod 0?600|0600|mode 0?644" "$SKYFS" mount -c "$SECRET" "$MNT"
expect_error secret-0644-check "chmod 0?600|0600|mode 0?644" "$SKYFS" config check -c "$SECRET"

# --- mountpoint errors
expect_error missing-mountpoint-arg "." "$SKYFS" mount -c "$GOOD"
expect_error mountpoint-does-not-exist "$TEST_TMP/no/such/dir" \
    "$SKYFS" mount -c "$GOOD" "$TEST_TMP/no/such/dir"

if mount_skyfs "$GOOD" "$MNT"; then
    expect_busy() {
        local err="$TEST_TMP/busy.stderr" rc
        (cd "$RUN" && timeout 60 "$SKYFS" mount -c "$GOOD" "$MNT" >/dev/null 2>"$err" </dev/null)
        rc=$?
        [ $rc -ge 1 ] && [ $rc -lt 124 ] && [ "$(wc -l <"$err")" -eq 1 ] &&
            grep -q '^skyfs: ' "$err"
    }
    check "busy mountpoint: second mount fails with one line on stderr" expect_busy
    check "busy mountpoint: the first mount still works" ls "$MNT/alpha"
    check "busy mountpoint: still mounted" mountpoint -q "$MNT"
    unmount_skyfs "$MNT"
fi
