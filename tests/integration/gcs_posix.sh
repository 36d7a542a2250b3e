#!/usr/bin/env bash
# gcs_posix.sh - POSIX semantics and GCS conventions over GCS's XML API
# with HMAC keys (AWS SigV4), against s3rver.
#
# Clouds: "gcs" (bucket "posix"), "pre" (bucket "posix", prefix
# "sub/dir"), "bad" (an HMAC key the server does not know).  Checks:
#   - posix_ops.py gives the same transcript on the mount as on a plain
#     directory (files, renames, directories, symlinks, chmod, utime,
#     xattrs, special files), before and after the TTL;
#   - shell tools, and what lands in the bucket: "dir/" placeholders as
#     gcsfuse makes them, the mode in x-amz-meta-mode (what GCS reads as
#     x-goog-meta-mode under an AWS signature), the mtime both as rclone
#     writes it on GCS (mtime, RFC 3339) and as gcsfuse does
#     (gcsfuse_mtime); symlink bodies; user xattrs as user metadata;
#     chmod and mtime after a remount;
#   - objects other tools put: gcsfuse's gcsfuse_mtime, rclone's RFC 3339
#     and decimal mtimes, gsutil's goog-reserved-file-mtime, an object put
#     by rclone's s3 backend, implicit directories (no placeholder) and an
#     empty placeholder; a direct delete disappears after the TTL;
#   - the prefix cloud maps paths to the right keys;
#   - an unknown HMAC key gives EACCES on that cloud only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
PLAIN="$TEST_TMP/plain"

# s3rver makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3
# only offers through its legacy provider.
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket posix || die "cannot start s3rver"

mkdir -p "$PLAIN" "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

$(gcs_cloud gcs "$ENDPOINT" posix)
ttl = 1s

$(gcs_cloud pre "$ENDPOINT" posix)
prefix = /sub/dir/
ttl = 1s

[bad]
type = gcs
endpoint = $ENDPOINT
bucket = posix
access_key_id = GOOG1NOBODY
secret_access_key = nothing
ttl = 1s
EOF
)
check "skyfs config check accepts the gcs clouds" "$SKYFS" config check -c "$CONF"

# g_put KEY FILE [curl args...]: PUT an object straight to the server.
g_put() {
    local key file=$2
    key=$("$PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")
    shift 2
    s3curl -T "$file" "$@" "$ENDPOINT/posix/$key" >/dev/null
}
# bucket_header KEY HEADER: one header of HEAD KEY ("" when absent).
BUCKET_URL="$ENDPOINT/posix"

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
G="$MNT/gcs"

# --- the same POSIX script on the mount and on a plain directory
check "mkdir inside the gcs cloud" mkdir "$G/posix"
mkdir "$PLAIN/posix"
"$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$PLAIN/posix" --kind gcs \
    --root "$PLAIN" >"$TEST_TMP/plain.out" 2>&1
timeout 300 "$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$G/posix" --kind gcs \
    --root "$G" >"$TEST_TMP/mount.out" 2>&1
check "POSIX ops give the same results and errnos on GCS as on a plain directory" \
    diff -u "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
check "both transcripts ran to their end" \
    transcript_complete "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
sleep 2
check "after the TTL the GCS tree still matches the plain one (diff -r)" \
    diff -r --no-dereference "$PLAIN/posix" "$G/posix"
tree_modes() { (cd "$1" && find . -printf '%p %y %m\n' | sort); }
check_eq "after the TTL a fresh listing keeps every mode" \
    "$(tree_modes "$PLAIN/posix")" "$(tree_modes "$G/posix")"

# --- shell tools, and what lands in the bucket
mkdir -p "$G/shell"
echo "hello gcs" >"$G/shell/a.txt"
check_eq "cat reads what echo wrote" "hello gcs" "$(cat "$G/shell/a.txt" 2>&1)"
check "cp within the cloud" cp "$G/shell/a.txt" "$G/shell/b.txt"
check "mv within the cloud (server-side copy)" mv "$G/shell/b.txt" "$G/shell/c.txt"
check_eq "ls shows the result" "a.txt c.txt" "$(ls "$G/shell" 2>&1 | paste -sd' ')"
check "the file is one object with its body" \
    wait_until 10 eval '[ "$(bucket_get shell/c.txt)" = "hello gcs" ]'
check "the source of mv is gone from the bucket" wait_until 10 bucket_lacks shell/b.txt
check "rm" rm "$G/shell/c.txt"
check "rm removes the object" wait_until 10 bucket_lacks shell/c.txt
check "mkdir" mkdir "$G/shell/d"
check "mkdir writes a dir/ placeholder as gcsfuse does" wait_until 10 bucket_has shell/d/
check_eq "the placeholder is empty and says S_IFDIR|0755" "16877 0" \
    "$(echo "$(bucket_header shell/d/ x-amz-meta-mode) $(bucket_header shell/d/ content-length)")"
check "rmdir" rmdir "$G/shell/d"
check "rmdir deletes the placeholder" wait_until 10 bucket_lacks shell/d/
check "ln -s" ln -s a.txt "$G/shell/link"
check_eq "readlink" "a.txt" "$(readlink "$G/shell/link" 2>&1)"
check_eq "the link object's body is its target" "a.txt" \
    "$(wait_until 10 bucket_has shell/link; bucket_get shell/link)"
mkdir -p "$G/shell/full/sub"
echo x >"$G/shell/full/sub/f"
check_eq "rmdir of a non-empty directory is ENOTEMPTY" ENOTEMPTY "$(errno_of rmdir "$G/shell/full")"
check "mv of a directory tree (copy + delete key by key)" mv "$G/shell/full" "$G/shell/moved"
check_eq "the tree moved in the bucket" "shell/moved/sub/f" \
    "$(wait_until 10 bucket_has shell/moved/sub/f; bucket_keys shell/moved/ | grep -v '/$')"
check_eq "nothing left under the old name" "" "$(bucket_keys shell/full/)"
check "setfattr user.color" setfattr -n user.color -v green "$G/shell/a.txt"
check_eq "the xattr is user metadata color" green \
    "$(wait_until 10 eval '[ "$(bucket_header shell/a.txt x-amz-meta-color)" = green ]'
       bucket_header shell/a.txt x-amz-meta-color)"

# --- chmod and mtime: rclone's mtime and gcsfuse's gcsfuse_mtime
echo data >"$G/shell/attrs"
check "chmod 0640" chmod 0640 "$G/shell/attrs"
check "touch -d with nanoseconds" touch -d '2001-02-03 04:05:06.123456789 UTC' "$G/shell/attrs"
check_eq "mode stored as the whole st_mode in decimal" 33184 \
    "$(wait_until 10 eval '[ "$(bucket_header shell/attrs x-amz-meta-mode)" = 33184 ]'
       bucket_header shell/attrs x-amz-meta-mode)"
check_eq "mtime stored as rclone does on GCS (RFC 3339)" "2001-02-03T04:05:06.123456789Z" \
    "$(wait_until 10 eval '[ -n "$(bucket_header shell/attrs x-amz-meta-mtime)" ]'
       bucket_header shell/attrs x-amz-meta-mtime)"
check_eq "and as gcsfuse does (gcsfuse_mtime, RFC 3339)" "2001-02-03T04:05:06.123456789Z" \
    "$(bucket_header shell/attrs x-amz-meta-gcsfuse_mtime)"
check_eq "gcsfuse_mtime is not shown as an xattr" "" \
    "$(getfattr -d "$G/shell/attrs" 2>/dev/null | grep -i gcsfuse)"
unmount_skyfs "$MNT"
mount_skyfs "$CONF" "$MNT" || die "cannot remount $CONF"
check_eq "mode and mtime after a remount" "640 2001-02-03 04:05:06.123456789" \
    "$(TZ=UTC stat -c '%a %y' "$G/shell/attrs" 2>&1 | sed 's/ +0000$//')"

# --- objects other tools put
printf 'from outside\n' >"$TEST_TMP/ext"
: >"$TEST_TMP/empty"
g_put other/gcsfuse.txt "$TEST_TMP/ext" -H "x-amz-meta-gcsfuse_mtime: 2020-01-02T03:04:05Z"
g_put other/rclone.txt "$TEST_TMP/ext" -H "x-amz-meta-mtime: 2019-05-06T07:08:09.5Z"
g_put other/s3fs.txt "$TEST_TMP/ext" -H "x-amz-meta-mtime: 1500000000" \
    -H "x-amz-meta-mode: 33152"
g_put other/gsutil.txt "$TEST_TMP/ext" -H "x-amz-meta-goog-reserved-file-mtime: 1400000000"
g_put other/both.txt "$TEST_TMP/ext" -H "x-amz-meta-gcsfuse_mtime: 2020-01-02T03:04:05Z" \
    -H "x-amz-meta-mtime: 2018-01-01T00:00:00Z"
g_put implicit/a/b/deep.txt "$TEST_TMP/ext"
# (curl -T would append the file's name to a URL ending in '/')
s3curl -X PUT --data-binary @"$TEST_TMP/empty" "$ENDPOINT/posix/placeholder/" >/dev/null
check "objects put on the server appear after the TTL" \
    wait_until 10 test -f "$G/other/gcsfuse.txt"
check_eq "gcsfuse's gcsfuse_mtime is the mtime" 1577934245 \
    "$(stat -c %Y "$G/other/gcsfuse.txt" 2>&1)"
check_eq "rclone's RFC 3339 mtime is the mtime" "2019-05-06 07:08:09.500000000" \
    "$(TZ=UTC stat -c %y "$G/other/rclone.txt" 2>&1 | sed 's/ +0000$//')"
check_eq "s3fs's decimal mtime and mode" "600 1500000000" \
    "$(stat -c '%a %Y' "$G/other/s3fs.txt" 2>&1)"
check_eq "gsutil's goog-reserved-file-mtime is the mtime" 1400000000 \
    "$(stat -c %Y "$G/other/gsutil.txt" 2>&1)"
check_eq "mtime wins over gcsfuse_mtime when both are there" 1514764800 \
    "$(stat -c %Y "$G/other/both.txt" 2>&1)"
check_eq "its content" "from outside" "$(cat "$G/other/gcsfuse.txt" 2>&1)"
check_eq "implicit directories (no placeholder) are shown" "directory directory" \
    "$(stat -c %F "$G/implicit/a" "$G/implicit/a/b" 2>&1 | paste -sd' ')"
check_eq "the file under them" "from outside" "$(cat "$G/implicit/a/b/deep.txt" 2>&1)"
check_eq "an empty placeholder put by another tool is an empty directory" "directory 0" \
    "$(echo "$(stat -c %F "$G/placeholder" 2>&1) $(ls -A "$G/placeholder" | wc -l)")"
s3curl -X DELETE "$ENDPOINT/posix/other/rclone.txt" >/dev/null
check "an object deleted on the server disappears after the TTL" \
    wait_until 10 test ! -e "$G/other/rclone.txt"

# rclone's s3 backend puts an object (it signs with SigV4 as GCS's HMAC
# interoperability expects); rclone must not see the tests' CA bundle.
if command -v rclone >/dev/null; then
    echo "put by rclone" >"$TEST_TMP/rc.txt"
    touch -d '2010-01-01 00:00:00 UTC' "$TEST_TMP/rc.txt"
    check "rclone copies a file into the bucket" env -u AWS_CA_BUNDLE \
        RCLONE_CONFIG_G_TYPE=s3 RCLONE_CONFIG_G_PROVIDER=Other \
        RCLONE_CONFIG_G_ACCESS_KEY_ID=S3RVER RCLONE_CONFIG_G_SECRET_ACCESS_KEY=S3RVER \
        RCLONE_CONFIG_G_ENDPOINT="$ENDPOINT" RCLONE_CONFIG_G_REGION=us-east-1 \
        rclone --config /dev/null copyto "$TEST_TMP/rc.txt" g:posix/other/rc.txt
    check_eq "the object rclone put appears with its content" "put by rclone" \
        "$(wait_until 10 test -f "$G/other/rc.txt"; cat "$G/other/rc.txt" 2>&1)"
    check_eq "and rclone's mtime" 1262304000 "$(stat -c %Y "$G/other/rc.txt" 2>&1)"
else
    record FAIL "rclone is not installed (run make deps)"
fi

# --- the prefix cloud
echo pre >"$MNT/pre/x.txt"
check "a file in the prefix cloud is stored under the prefix" \
    wait_until 10 eval '[ "$(bucket_get sub/dir/x.txt)" = pre ]'
check "the prefix cloud's files are visible in the bucket cloud" \
    wait_until 10 test -f "$G/sub/dir/x.txt"

# --- an HMAC key the server does not know
check_eq "an unknown HMAC key gives EACCES" EACCES "$(errno_of listdir "$MNT/bad")"
check "the other clouds still work" test -f "$G/shell/a.txt"

unmount_skyfs "$MNT"
