#!/usr/bin/env bash
# sftp_posix.sh - POSIX semantics over an SFTP cloud (OpenSSH's sshd).
#
# sshd runs on 127.0.0.1 (sftp_lib.sh); cloud "sftp" has its root in
# $TEST_TMP/remote.  Checks:
#   - posix_ops.py gives the same transcript on the mount as on a plain
#     directory (the SFTP differences are in posix_known_differences.py),
#     and the server's directory then matches the plain one, before and
#     after the TTL;
#   - what SFTP cannot do answers as the README says: link and mknod are
#     EPERM, xattrs ENOTSUP; a symlink's mode is left alone;
#   - shell tools land on the server as real files, directories, symlinks,
#     modes and times (second precision); df shows the server's disk;
#   - a write lands atomically: no temporary name is left behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp_lib.sh"

PORT=$(free_port)
SSHD="$TEST_TMP/sshd"
REMOTE="$TEST_TMP/remote"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
PLAIN="$TEST_TMP/plain"
mkdir -p "$REMOTE" "$PLAIN" "$TEST_TMP/cache"

start_sshd "$SSHD" "$PORT" || die "cannot start sshd"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

$(sftp_cloud sftp "$PORT" "$SSHD" "$REMOTE")
EOF
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
S="$MNT/sftp"

# --- the same POSIX script on the mount and on a plain directory
check "mkdir inside the sftp cloud" mkdir "$S/posix"
mkdir "$PLAIN/posix"
"$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$PLAIN/posix" --kind sftp \
    --root "$PLAIN" >"$TEST_TMP/plain.out" 2>&1
check "posix_ops.py runs on a plain directory" test -s "$TEST_TMP/plain.out"
timeout 300 "$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$S/posix" --kind sftp \
    --root "$S" >"$TEST_TMP/mount.out" 2>&1
check "POSIX ops give the same results and errnos over SFTP as on a plain directory" \
    diff -u "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
check "both transcripts ran to their end" \
    transcript_complete "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
check "the server's directory matches the plain one (diff -r)" \
    diff -r --no-dereference "$PLAIN/posix" "$REMOTE/posix"
sleep 2
check "after the TTL the mount still matches the plain one (diff -r)" \
    diff -r --no-dereference "$PLAIN/posix" "$S/posix"
tree_modes() { (cd "$1" && find . ! -type l -printf '%p %y %m\n' | sort); }
check_eq "after the TTL every mode is the server's (find -printf %m)" \
    "$(tree_modes "$PLAIN/posix")" "$(tree_modes "$S/posix")"

# --- what SFTP cannot do
echo data >"$S/a.txt"
check_eq "link over SFTP is EPERM (no hard links in SFTP v3)" EPERM \
    "$(errno_of link "$S/a.txt" "$S/a2.txt")"
check_eq "the link made nothing" ENOENT "$(errno_of stat "$S/a2.txt")"
check_eq "mkfifo over SFTP is EPERM (SFTP cannot make special files)" EPERM \
    "$(errno_of mkfifo "$S/fifo")"
check_fails "setfattr over SFTP fails (no extended attributes)" \
    setfattr -n user.x -v 1 "$S/a.txt"
check_eq "the error is ENOTSUP" "Operation not supported" \
    "$(setfattr -n user.x -v 1 "$S/a.txt" 2>&1 | sed 's/.*: //')"
mkfifo "$REMOTE/server-fifo"
check_eq "a FIFO made on the server is listed as a FIFO" "fifo" \
    "$(wait_until 5 test -p "$S/server-fifo"; stat -c %F "$S/server-fifo" 2>&1)"
rm -f "$REMOTE/server-fifo"

# --- shell tools, and what lands on the server
mkdir -p "$S/shell"
echo "hello sftp" >"$S/shell/a.txt"
check_eq "cat reads what echo wrote" "hello sftp" "$(cat "$S/shell/a.txt" 2>&1)"
check_eq "the server holds the file" "hello sftp" "$(cat "$REMOTE/shell/a.txt" 2>&1)"
check "cp within the cloud" cp "$S/shell/a.txt" "$S/shell/b.txt"
check "mv within the cloud" mv "$S/shell/b.txt" "$S/shell/c.txt"
check_eq "the server has the moved file, not the old name" "a.txt c.txt" \
    "$(ls "$REMOTE/shell" | paste -sd' ')"
check "chmod 0640" chmod 0640 "$S/shell/a.txt"
check_eq "the server file took the mode" 640 "$(stat -c %a "$REMOTE/shell/a.txt")"
check "touch -d" touch -d '2001-02-03 04:05:06 UTC' "$S/shell/a.txt"
check_eq "the server file took the mtime (whole seconds)" 981173106 \
    "$(stat -c %Y "$REMOTE/shell/a.txt")"
check "chown" chown 1234:2345 "$S/shell/a.txt"
check_eq "the server file took the owner" "1234:2345" "$(stat -c %u:%g "$REMOTE/shell/a.txt")"
check "ln -s" ln -s a.txt "$S/shell/link"
check_eq "the server has a real symlink" "a.txt" "$(readlink "$REMOTE/shell/link")"
check_eq "cat through the link" "hello sftp" "$(cat "$S/shell/link" 2>&1)"
check "mkdir -m 0700" mkdir -m 0700 "$S/shell/d"
check_eq "the server directory has exactly that mode" 700 "$(stat -c %a "$REMOTE/shell/d")"
mkdir -p "$S/shell/full/sub" && echo x >"$S/shell/full/sub/f"
check_eq "rmdir of a non-empty directory is ENOTEMPTY" ENOTEMPTY \
    "$(errno_of rmdir "$S/shell/full")"
check "mv of a directory tree" mv "$S/shell/full" "$S/shell/moved"
check_eq "the tree moved on the server in one rename" "x" "$(cat "$REMOTE/shell/moved/sub/f")"
check "rm -r" rm -r "$S/shell/moved" "$S/shell/d"
check_eq "the server directory is gone" no "$(test -e "$REMOTE/shell/moved" && echo yes || echo no)"
check_eq "no temporary upload name is left on the server" "" \
    "$(find "$REMOTE" -name '.skyfs-tmp-*')"
check_eq "df shows the server's disk (statvfs@openssh.com)" \
    "$(df -k --output=size "$REMOTE" | tail -1 | tr -d ' ')" \
    "$(df -k --output=size "$S" | tail -1 | tr -d ' ')"

unmount_skyfs "$MNT"
