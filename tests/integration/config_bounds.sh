#!/usr/bin/env bash
# config_bounds.sh - what is not a config, and clouds whose settings can
# never work, are refused up front with one line naming FILE:LINE:
#   - a FIFO (reading it used to hang), a symlink to /dev/zero (used to
#     eat 2 GB), a directory ("no clouds configured"), a file over 1 MiB;
#   - a local path that does not exist or is a file, an endpoint that is
#     not an http(s) URL, missing or malformed credentials, an unreadable
#     ca_file: `skyfs config check` and `skyfs mount` both fail (they used
#     to say ok, and the folder answered "Host is down");
#   - a cloud that is only unreachable still mounts, offline.
. "$(dirname "$0")/lib.sh"

MNT="$TEST_TMP/mnt"
DATA="$TEST_TMP/data/alpha"
mkdir -p "$MNT" "$DATA"
# no credentials from the environment or ~/.aws for the S3 cases
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
      AZURE_STORAGE_CONNECTION_STRING
export HOME="$TEST_TMP/home"
mkdir -p "$HOME"

# expect_error CASE PATTERN cmd...: cmd fails within 20 s (status 1..123)
# with exactly one stderr line "skyfs: ..." matching PATTERN, and nothing
# is mounted.
expect_error() {
    local case=$1 pattern=$2; shift 2
    local err="$TEST_TMP/$case.stderr" rc
    timeout 20 "$@" >"$TEST_TMP/$case.stdout" 2>"$err" </dev/null
    rc=$?
    if [ $rc -ge 1 ] && [ $rc -lt 124 ] && [ "$(wc -l <"$err")" -eq 1 ] &&
       grep -q '^skyfs: ' "$err" && grep -qE -- "$pattern" "$err"; then
        record ok "$case: fails with one line: $(head -c 160 "$err")"
    else
        echo "(exit status $rc of: $*; wanted one line 'skyfs: ...' matching /$pattern/)" >>"$err"
        record FAIL "$case: fails with one clear line" "$err"
    fi
    if mountpoint -q "$MNT"; then
        record FAIL "$case: nothing mounted"
        _force_unmount "$MNT"
    fi
}

# both CASE PATTERN CONFIG: config check and mount both refuse CONFIG.
both() {
    expect_error "$1-check" "$2" "$SKYFS" config check -c "$3"
    expect_error "$1-mount" "$2" "$SKYFS" mount -c "$3" "$MNT"
}

# ---- not a config file
mkfifo "$TEST_TMP/fifo.conf"
both fifo "fifo\\.conf: is not a regular file \\(a FIFO\\)" "$TEST_TMP/fifo.conf"
ln -s /dev/zero "$TEST_TMP/zero.conf"
both dev-zero "zero\\.conf: is not a regular file \\(a character device\\)" "$TEST_TMP/zero.conf"
mkdir "$TEST_TMP/dir.conf"
both directory "dir\\.conf: is a directory, not a config file" "$TEST_TMP/dir.conf"
{ printf '[alpha]\ntype = local\npath = %s\n' "$DATA"; head -c 2000000 /dev/zero | tr '\0' '#'; } \
    >"$TEST_TMP/big.conf"
both too-big "big\\.conf: is [0-9]+ bytes, larger than a config can be" "$TEST_TMP/big.conf"

# conf NAME: stdin to $TEST_TMP/NAME.conf (mode 0600), after a [cache]
# section of 3 lines (so a cloud's [section] header is line 4)
conf() {
    local path="$TEST_TMP/$1.conf"
    { printf '[cache]\ndir = %s\n\n' "$TEST_TMP/cache"; cat; } >"$path"
    chmod 600 "$path"
    echo "$path"
}

# ---- clouds whose settings can never work
C=$(conf no-path <<EOF
[alpha]
type = local
path = $TEST_TMP/does/not/exist
EOF
)
both local-path-missing "$C:6: .*does/not/exist" "$C"
touch "$TEST_TMP/a-file"
C=$(conf path-is-file <<EOF
[alpha]
type = local
path = $TEST_TMP/a-file
EOF
)
both local-path-is-a-file "$C:6: .*a-file" "$C"
C=$(conf bad-endpoint <<EOF
[alpha]
type = local
path = $DATA

[s3]
type = s3
endpoint = ftp://127.0.0.1:21
bucket = b
access_key_id = A
secret_access_key = B
EOF
)
both s3-endpoint-not-http "$C:10: .*endpoint.*http" "$C"
C=$(conf no-creds <<EOF
[s3]
type = s3
endpoint = http://127.0.0.1:9
bucket = b
EOF
)
both s3-no-credentials "$C:4: .*credentials" "$C"
C=$(conf half-creds <<EOF
[s3]
type = s3
endpoint = http://127.0.0.1:9
bucket = b
access_key_id = A
EOF
)
both s3-key-without-secret "$C:[0-9]+: .*secret_access_key" "$C"
C=$(conf bad-azure-key <<EOF
[az]
type = azure
endpoint = http://127.0.0.1:9/devstoreaccount1
account = devstoreaccount1
key = not*base64!
container = c
EOF
)
both azure-key-not-base64 "$C:8: .*base64" "$C"
C=$(conf azure-endpoint <<EOF
[az]
type = azure
endpoint = 127.0.0.1:10000/devstoreaccount1
account = devstoreaccount1
key = $AZURITE_KEY
EOF
)
both azure-endpoint-not-http "$C:6: .*http" "$C"
C=$(conf bad-ca <<EOF
[s3]
type = s3
endpoint = https://127.0.0.1:9
bucket = b
access_key_id = A
secret_access_key = B
ca_file = $TEST_TMP/no-such-ca.pem
EOF
)
both ca-file-unreadable "$C:[0-9]+: .*no-such-ca\\.pem" "$C"

# ---- a cloud that is only unreachable mounts, offline
PORT=$(free_port)
C=$(conf unreachable <<EOF
[alpha]
type = local
path = $DATA

[s3]
type = s3
endpoint = http://127.0.0.1:$PORT
bucket = b
access_key_id = A
secret_access_key = B
EOF
)
check "an unreachable cloud passes config check" "$SKYFS" config check -c "$C"
# (f is there before the mount: the background crawl lists alpha at once,
# and a file made after that shows only once the listing's ttl has passed)
echo hi >"$DATA/f"
if mount_skyfs "$C" "$MNT"; then
    check_eq "the other cloud works" hi "$(cat "$MNT/alpha/f")"
    check_eq "the unreachable cloud answers EHOSTDOWN" EHOSTDOWN "$(errno_of listdir "$MNT/s3")"
    unmount_skyfs "$MNT"
fi
