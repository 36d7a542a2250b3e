#!/usr/bin/env bash
# webdav_posix.sh - POSIX semantics over WebDAV: Apache httpd's mod_dav +
# mod_dav_fs (Digest authentication) and `rclone serve webdav` (Basic).
#
# Checks:
#   - posix_ops.py gives the same transcript on Apache as on a plain
#     directory, but for the operations posix_known_differences.py lists
#     for "webdav" with their reasons; after the TTL the trees (and modes)
#     still match the plain one;
#   - on both servers, from the shell: what lands on the server's disk
#     (files, folders, MOVE of trees, no temporary upload left), and the
#     errors: mkdir of an existing folder, a missing parent, rmdir of a
#     non-empty folder, mv onto a non-empty folder, symlink and mkfifo;
#   - Apache keeps mode, mtime and user.* extended attributes as dead
#     properties (back after a remount, kept by a rewrite; a change on the
#     server makes its own time count again); rclone keeps none: chmod is
#     EPERM and setfattr ENOTSUP with a message, times are the server's.  rclone's answers to the rest of the transcript differ in
#     modes, owners and times only, which these checks cover.
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

# errno_of_symlink PATH: "ok" or the errno name of symlink("x", PATH)
errno_of_symlink() {
    "$PYTHON" -c 'import os, sys, errno
try:
    os.symlink("x", sys.argv[1]); print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$1"
}

DAV="$MNT/dav"
RC="$MNT/rc"

# --- the same POSIX script on Apache and on a plain directory
mkdir -p "$PLAIN/posix"
check "mkdir inside the dav cloud" mkdir "$DAV/posix"
"$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$PLAIN/posix" --kind webdav \
    --root "$PLAIN" >"$TEST_TMP/plain.out" 2>&1
timeout 300 "$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$DAV/posix" --kind webdav \
    --root "$DAV" >"$TEST_TMP/mount.out" 2>&1
check "POSIX ops give the same results and errnos on Apache mod_dav_fs as on a plain directory" \
    diff -u "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
check "both transcripts ran to their end" \
    transcript_complete "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
sleep 2
check "after the TTL the Apache tree still matches the plain one (diff -r)" \
    diff -r --no-dereference "$PLAIN/posix" "$DAV/posix"
tree_modes() { (cd "$1" && find . -printf '%p %y %m\n' | sort); }
check_eq "after the TTL a fresh PROPFIND keeps every mode (dead properties)" \
    "$(tree_modes "$PLAIN/posix")" "$(tree_modes "$DAV/posix")"

# --- shell tools, and what lands on the server's disk
for cloud in dav rc; do
    root=$AROOT
    [ $cloud = rc ] && root=$RROOT
    d="$MNT/$cloud/shell"
    mkdir -p "$d"
    echo "hello $cloud" >"$d/a.txt"
    check_eq "$cloud: cat reads what echo wrote" "hello $cloud" "$(cat "$d/a.txt" 2>&1)"
    check "$cloud: cp within the cloud" cp "$d/a.txt" "$d/b.txt"
    check "$cloud: mv within the cloud (MOVE)" mv "$d/b.txt" "$d/c.txt"
    check_eq "$cloud: ls shows the result" "a.txt c.txt" "$(ls "$d" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
    check_eq "$cloud: the server holds the file" "hello $cloud" "$(cat "$root/shell/c.txt" 2>&1)"
    check "$cloud: the source of mv is gone from the server" test ! -e "$root/shell/b.txt"
    check_eq "$cloud: no temporary upload is left on the server" "" \
        "$(find "$root" -name '.skyfs-tmp-*')"
    check "$cloud: rm (DELETE)" rm "$d/c.txt"
    check "$cloud: rm removes the file on the server" test ! -e "$root/shell/c.txt"
    check "$cloud: mkdir (MKCOL)" mkdir "$d/sub"
    check "$cloud: mkdir makes a folder on the server" test -d "$root/shell/sub"
    check_eq "$cloud: mkdir of an existing folder is EEXIST" EEXIST "$(errno_of mkdir "$d/sub")"
    check_eq "$cloud: mkdir in a missing folder is ENOENT" ENOENT \
        "$(errno_of mkdir "$d/missing/sub")"
    echo x >"$d/sub/f"
    check_eq "$cloud: rmdir of a non-empty folder is ENOTEMPTY" ENOTEMPTY \
        "$(errno_of rmdir "$d/sub")"
    check "$cloud: the folder and its file stay on the server" test -f "$root/shell/sub/f"
    mkdir -p "$d/target/inner"
    check_eq "$cloud: mv of a folder onto a non-empty one is ENOTEMPTY" ENOTEMPTY \
        "$(errno_of rename "$d/sub" "$d/target")"
    check "$cloud: the non-empty target stays on the server" test -d "$root/shell/target/inner"
    rmdir "$d/target/inner"
    check "$cloud: mv of a folder onto an empty one (MOVE, Overwrite: T)" mv -T "$d/sub" "$d/target"
    check_eq "$cloud: the tree moved on the server" "x" "$(cat "$root/shell/target/f" 2>&1)"
    check "$cloud: nothing left under the old name" test ! -e "$root/shell/sub"
    check_eq "$cloud: ln -s is EPERM (WebDAV has no symlinks)" EPERM \
        "$(errno_of_symlink "$d/link")"
    check_eq "$cloud: mkfifo is EPERM" EPERM "$(errno_of mkfifo "$d/fifo")"
done

# --- what only a server that keeps dead properties can do (Apache)
echo data >"$DAV/shell/attrs"
check "dav: chmod 0640" chmod 0640 "$DAV/shell/attrs"
check "dav: touch -d" touch -d '2001-02-03 04:05:06 UTC' "$DAV/shell/attrs"
check "dav: the mode is a dead property on the server" \
    grep -qa 'skyfs-mode' "$AROOT/shell/.DAV/attrs"
check "dav: setfattr user.color" setfattr -n user.color -v blue "$DAV/shell/attrs"
check "dav: the attribute is a dead property on the server (name in hex)" \
    grep -qa 'skyfs-x-636f6c6f72' "$AROOT/shell/.DAV/attrs"
echo "new content" >"$DAV/shell/attrs"
check_eq "dav: a rewrite of the file (PUT + MOVE) keeps the attribute" blue \
    "$(getfattr --absolute-names --only-values -n user.color "$DAV/shell/attrs" 2>&1)"
check "dav: touch -d again after the rewrite" touch -d '2001-02-03 04:05:06 UTC' "$DAV/shell/attrs"

# --- and what a server without them does (rclone): the server's own
echo data >"$RC/shell/attrs"
check_eq "rc: chmod is EPERM (the server keeps no properties)" EPERM \
    "$("$PYTHON" -c 'import os, sys, errno
try:
    os.chmod(sys.argv[1], 0o600); print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$RC/shell/attrs")"
check "rc: the log says why chmod failed" \
    grep -q "webdav 'rc'.*keeps no properties for skyfs" "$LOGS/mnt.log"
check_eq "rc: setfattr is ENOTSUP (the server keeps no properties)" ENOTSUP \
    "$("$PYTHON" -c 'import os, sys, errno
try:
    os.setxattr(sys.argv[1], "user.color", b"blue"); print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$RC/shell/attrs")"
check "rc: touch -d succeeds" touch -d '2001-02-03 04:05:06 UTC' "$RC/shell/attrs"
sleep 2
check "rc: after the TTL the file shows the server's time, not the one asked" \
    test "$(stat -c %Y "$RC/shell/attrs")" -gt 981173106
check_eq "rc: and the default mode" 644 "$(stat -c %a "$RC/shell/attrs")"

# --- Apache's mode and time survive a remount
unmount_skyfs "$MNT"
mount_skyfs "$CONF" "$MNT" || die "cannot remount"
check_eq "dav: the mode is back after a remount" 640 "$(stat -c %a "$DAV/shell/attrs")"
check_eq "dav: the mtime is back after a remount" "2001-02-03 04:05:06" \
    "$(TZ=UTC stat -c %y "$DAV/shell/attrs" | cut -c1-19)"
check_eq "dav: the attribute is back after a remount" blue \
    "$(getfattr --absolute-names --only-values -n user.color "$DAV/shell/attrs" 2>&1)"
# a change on the server gives the file a new etag: its own time counts
sleep 1
echo changed >"$AROOT/shell/attrs"
apache_fix_owner "$TEST_TMP/apache"
sleep 2
check "dav: a file changed on the server shows the server's new time, not the stored one" \
    test "$(stat -c %Y "$DAV/shell/attrs")" -gt 981173106
check_eq "dav: and its new content" changed "$(cat "$DAV/shell/attrs")"
check_eq "dav: its attribute stays (a property of the resource)" blue \
    "$(getfattr --absolute-names --only-values -n user.color "$DAV/shell/attrs" 2>&1)"
unmount_skyfs "$MNT"
