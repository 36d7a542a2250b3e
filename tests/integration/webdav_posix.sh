#!/usr/bin/env bash
# webdav_posix.sh - POSIX semantics over WebDAV: Apache httpd's mod_dav +
# mod_dav_fs (Digest authentication) and `rclone serve webdav` (Basic).
#
# Checks:
#   - posix_ops.py gives the same transcript on each server as on a plain
#     directory, but for the operations posix_known_differences.py lists
#     for "webdav" (Apache) and "webdav-rclone" with their reasons;
#   - after the TTL the trees still match the plain one;
#   - what lands on the server's disk: files, folders, renames, and the
#     mode kept as a dead property (Apache) across a remount;
#   - the server's own errors: rmdir of a non-empty folder, mv onto a
#     non-empty folder, a missing parent.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webdav_lib.sh"

APORT=$(free_port)
RPORT=$(free_port)
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
PLAIN="$TEST_TMP/plain"
AROOT="$TEST_TMP/apache/data"
RROOT="$TEST_TMP/rclone"

start_apache_dav "$TEST_TMP/apache" "$APORT" digest || die "cannot start apache2"
start_rclone_dav "$RROOT" "$RPORT" || die "cannot start rclone serve webdav"

mkdir -p "$PLAIN" "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF2
[cache]
dir = $TEST_TMP/cache

$(webdav_cloud dav "http://127.0.0.1:$APORT/dav/" "$DAV_USER" "$DAV_PASS")
ttl = 1s

$(webdav_cloud rc "http://127.0.0.1:$RPORT/" bob builder)
ttl = 1s
EOF2
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"

# posix_transcript CLOUD KIND: the script on the cloud against a plain dir
posix_transcript() {
    local cloud=$1 kind=$2
    mkdir -p "$PLAIN/$cloud/posix"
    check "mkdir inside the $cloud cloud" mkdir "$MNT/$cloud/posix"
    "$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$PLAIN/$cloud/posix" --kind "$kind" \
        --root "$PLAIN/$cloud" >"$TEST_TMP/plain-$cloud.out" 2>&1
    timeout 300 "$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$MNT/$cloud/posix" \
        --kind "$kind" --root "$MNT/$cloud" >"$TEST_TMP/mount-$cloud.out" 2>&1
    check "POSIX ops give the same results and errnos on $cloud ($kind) as on a plain directory" \
        diff -u "$TEST_TMP/plain-$cloud.out" "$TEST_TMP/mount-$cloud.out"
}
posix_transcript dav webdav

