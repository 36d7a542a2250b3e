#!/usr/bin/env bash
# swift_posix.sh - POSIX semantics and object conventions over OpenStack
# Swift (Debian's all-in-one from swift_lib.sh, TempAuth).
#
# Clouds: "sw" (container "posix"), "pre" (container "posix", prefix
# "sub/dir"), "acct" (no container: the account's containers are its
# directories), "env" (no credentials in the config: ST_AUTH/ST_USER/ST_KEY
# from the environment) and "bad" (a key TempAuth refuses).  Checks:
#   - posix_ops.py gives the same transcript on the mount as on a plain
#     directory, before and after the TTL;
#   - cat/cp/mv/rm/mkdir/rmdir/ln -s from the shell and what lands in the
#     container: X-Object-Meta-Mode/-Mtime, "dir/" markers of type
#     application/directory, symlink bodies; chmod and mtime survive a
#     remount;
#   - objects uploaded with python-swiftclient appear with their mtime
#     (X-Object-Meta-Mtime, seconds with a fraction) and directory objects
#     other tools make (application/directory, no slash) are directories;
#   - user metadata as xattrs, both ways;
#   - prefix and account clouds map paths to the right objects and
#     containers (mkdir/rmdir of a container);
#   - a token TempAuth forgot (memcached flushed) is renewed on its 401;
#   - a refused key gives EACCES on that cloud only, and the error names it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/swift_lib.sh"

start_swift "$TEST_TMP/swift" || die "cannot start swift"
swift_container posix || die "cannot create the container posix"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
PLAIN="$TEST_TMP/plain"
mkdir -p "$PLAIN" "$TEST_TMP/cache"
swift_cloud() {
    printf '[%s]\ntype = swift\nauth_url = %s\nuser = %s\nkey = %s\nttl = 1s\n' \
        "$1" "$SWIFT_AUTH" "$SWIFT_USER" "$SWIFT_KEY"
}
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

$(swift_cloud sw)
container = posix

$(swift_cloud pre)
container = posix
prefix = /sub/dir/

$(swift_cloud acct)

[env]
type = swift
container = posix
ttl = 1s

[bad]
type = swift
auth_url = $SWIFT_AUTH
user = $SWIFT_USER
key = not-the-key
container = posix
ttl = 1s
EOF
)

# helpers straight to the server
enc() { "$PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
sw_header() {
    scurl -I "$SWIFT_URL/posix/$(enc "$1")" | header_of "$2"
}
sw_get() { scurl "$SWIFT_URL/posix/$(enc "$1")"; }
sw_exists() { scurl -I "$SWIFT_URL/posix/$(enc "$1")" >/dev/null; }
sw_missing() { ! sw_exists "$1"; }
sw_keys() { scurl "$SWIFT_URL/posix?prefix=$(enc "$1")" | LC_ALL=C sort; }

ST_AUTH=$SWIFT_AUTH ST_USER=$SWIFT_USER ST_KEY=$SWIFT_KEY mount_skyfs "$CONF" "$MNT" ||
    die "cannot mount $CONF"
SW="$MNT/sw"

# --- the same POSIX script on the mount and on a plain directory
check "mkdir inside the swift cloud" mkdir "$SW/posix"
mkdir "$PLAIN/posix"
"$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$PLAIN/posix" --kind swift \
    --root "$PLAIN" >"$TEST_TMP/plain.out" 2>&1
timeout 300 "$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$SW/posix" --kind swift \
    --root "$SW" >"$TEST_TMP/mount.out" 2>&1
check "POSIX ops give the same results and errnos on Swift as on a plain directory" \
    diff -u "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
check "both transcripts ran to their end" \
    transcript_complete "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
sleep 2
check "after the TTL the Swift tree still matches the plain one (diff -r)" \
    diff -r --no-dereference "$PLAIN/posix" "$SW/posix"
tree_modes() { (cd "$1" && find . -printf '%p %y %m\n' | sort); }
check_eq "after the TTL a fresh listing keeps every mode (find -printf %m)" \
    "$(tree_modes "$PLAIN/posix")" "$(tree_modes "$SW/posix")"

# --- shell tools, and what lands in the container
mkdir -p "$SW/shell"
echo "hello swift" >"$SW/shell/a.txt"
check_eq "cat reads what echo wrote" "hello swift" "$(cat "$SW/shell/a.txt" 2>&1)"
check "cp within the cloud" cp "$SW/shell/a.txt" "$SW/shell/b.txt"
check "mv within the cloud" mv "$SW/shell/b.txt" "$SW/shell/c.txt"
check_eq "ls shows the result" "a.txt c.txt" "$(ls "$SW/shell" 2>&1 | paste -sd' ')"
check "the file is one object with its body" \
    wait_until 10 eval '[ "$(sw_get shell/c.txt)" = "hello swift" ]'
check "the source of mv is gone from the container" wait_until 10 sw_missing shell/b.txt
check "rm" rm "$SW/shell/c.txt"
check "rm removes the object" wait_until 10 sw_missing shell/c.txt
check "mkdir" mkdir "$SW/shell/d"
check "mkdir writes a dir/ marker" wait_until 10 sw_exists shell/d/
check_eq "the marker is application/directory with mode S_IFDIR|0755" \
    "application/directory 16877" \
    "$(echo "$(sw_header shell/d/ content-type) $(sw_header shell/d/ x-object-meta-mode)")"
check "rmdir" rmdir "$SW/shell/d"
check "rmdir deletes the marker" wait_until 10 sw_missing shell/d/
check "ln -s" ln -s a.txt "$SW/shell/link"
check_eq "readlink" "a.txt" "$(readlink "$SW/shell/link" 2>&1)"
check_eq "cat through the link" "hello swift" "$(cat "$SW/shell/link" 2>&1)"
check_eq "the link object's body is its target" "a.txt" \
    "$(wait_until 10 sw_exists shell/link; sw_get shell/link)"
check_eq "the link object's mode is S_IFLNK|0777" 41471 "$(sw_header shell/link x-object-meta-mode)"
mkdir -p "$SW/shell/full/sub"
echo x >"$SW/shell/full/sub/f"
check_eq "rmdir of a non-empty directory is ENOTEMPTY" ENOTEMPTY "$(errno_of rmdir "$SW/shell/full")"
check "mv of a directory tree" mv "$SW/shell/full" "$SW/shell/moved"
check_eq "the tree moved in the container" "shell/moved/sub/f" \
    "$(wait_until 10 sw_exists shell/moved/sub/f; sw_keys shell/moved/ | grep -v '/$')"
check_eq "nothing left under the old name" "" "$(sw_keys shell/full/)"
check_eq "cat in the moved tree" x "$(cat "$SW/shell/moved/sub/f" 2>&1)"

# --- chmod and mtime: X-Object-Meta-Mode/-Mtime, back after a remount
echo data >"$SW/shell/attrs"
check "chmod 0640" chmod 0640 "$SW/shell/attrs"
check "touch -d with a fraction" touch -d '2001-02-03 04:05:06.25 UTC' "$SW/shell/attrs"
check_eq "X-Object-Meta-Mode is the whole st_mode in decimal" 33184 \
    "$(wait_until 10 eval '[ "$(sw_header shell/attrs x-object-meta-mode)" = 33184 ]'
       sw_header shell/attrs x-object-meta-mode)"
check_eq "X-Object-Meta-Mtime is decimal seconds with a fraction (as swiftclient and rclone)" \
    "981173106.250000000" \
    "$(wait_until 10 eval '[ -n "$(sw_header shell/attrs x-object-meta-mtime)" ]'
       sw_header shell/attrs x-object-meta-mtime)"
unmount_skyfs "$MNT"
ST_AUTH=$SWIFT_AUTH ST_USER=$SWIFT_USER ST_KEY=$SWIFT_KEY mount_skyfs "$CONF" "$MNT" ||
    die "cannot remount $CONF"
check_eq "mode and mtime after a remount" "640 2001-02-03 04:05:06.250000000" \
    "$(TZ=UTC stat -c '%a %y' "$SW/shell/attrs" 2>&1 | sed 's/ +0000$//')"

# --- user metadata as xattrs, both ways
check "setfattr user.color" setfattr -n user.color -v blue "$SW/shell/a.txt"
check_eq "is stored as X-Object-Meta-Color" blue \
    "$(wait_until 10 eval '[ -n "$(sw_header shell/a.txt x-object-meta-color)" ]'
       sw_header shell/a.txt x-object-meta-color)"
scurl -X POST -H "X-Object-Meta-Project: skyfs" -H "X-Object-Meta-Mode: 33188" \
    "$SWIFT_URL/posix/shell/a.txt" >/dev/null
check_eq "metadata set on the server shows as user.project after the TTL" skyfs \
    "$(sleep 2; getfattr --only-values -n user.project "$SW/shell/a.txt" 2>/dev/null)"
check "removexattr" setfattr -x user.project "$SW/shell/a.txt"
check_eq "takes the item off the object" "" \
    "$(wait_until 10 eval '[ -z "$(sw_header shell/a.txt x-object-meta-project)" ]'
       sw_header shell/a.txt x-object-meta-project)"

# --- objects other tools made
: >"$TEST_TMP/empty"
printf 'from swiftclient\n' >"$TEST_TMP/ext.txt"
touch -d '2010-01-02 03:04:05.5 UTC' "$TEST_TMP/ext.txt"
(cd "$TEST_TMP" && swiftcli upload posix ext.txt --object-name tools/ext.txt) >"$TEST_TMP/upload.out" 2>&1
check_eq "python-swiftclient wrote X-Object-Meta-Mtime (seconds with a fraction)" 1262401445.5 \
    "$(sw_header tools/ext.txt x-object-meta-mtime | sed 's/0*$//')"
check_eq "an object uploaded with swiftclient appears with its mtime" \
    "2010-01-02 03:04:05.500000000 from swiftclient" \
    "$(wait_until 10 test -f "$SW/tools/ext.txt"
       echo "$(TZ=UTC stat -c %y "$SW/tools/ext.txt" | sed 's/ +0000$//') $(cat "$SW/tools/ext.txt")")"
scurl -X PUT -T "$TEST_TMP/empty" -H "Content-Type: application/directory" \
    "$SWIFT_URL/posix/tools/olddir" >/dev/null
check_eq "an empty application/directory object (no slash) is a directory" "directory 755" \
    "$(wait_until 10 test -d "$SW/tools/olddir"; stat -c '%F %a' "$SW/tools/olddir" 2>&1)"
check "a file inside it" eval 'echo inside >"$SW/tools/olddir/in.txt"'
check_eq "is stored under olddir/" inside \
    "$(wait_until 10 sw_exists tools/olddir/in.txt; sw_get tools/olddir/in.txt)"
check "mv of such a directory" mv "$SW/tools/olddir" "$SW/tools/newdir"
check_eq "its object and content moved along" "tools/newdir tools/newdir/in.txt" \
    "$(sw_keys tools/newdir | paste -sd' ')"
check_eq "nothing is left under the old name" "" "$(sw_keys tools/olddir | paste -sd' ')"
scurl -X PUT -T "$TEST_TMP/empty" "$SWIFT_URL/posix/tools/slashdir/" >/dev/null
check_eq "a zero-byte dir/ object made by another tool is a directory" directory \
    "$(wait_until 10 test -d "$SW/tools/slashdir"; stat -c '%F' "$SW/tools/slashdir" 2>&1)"
scurl -X PUT -T "$TEST_TMP/ext.txt" "$SWIFT_URL/posix/deep/er/file.txt" >/dev/null
check "an object with implicit parent directories shows as a tree" \
    wait_until 10 test -f "$SW/deep/er/file.txt"
scurl -X DELETE "$SWIFT_URL/posix/deep/er/file.txt" >/dev/null
check "an object deleted on the server disappears after the TTL" \
    wait_until 10 test ! -e "$SW/deep/er/file.txt"
scurl -X PUT -T "$TEST_TMP/ext.txt" "$SWIFT_URL/posix/odd/$(enc 'with space & ü.txt')" >/dev/null
check_eq "a name with spaces and UTF-8 is listed by its name" "with space & ü.txt" \
    "$(wait_until 10 test -e "$SW/odd"; ls -A "$SW/odd" 2>&1)"

# --- special files, the s3fs way
check "mkfifo" mkfifo -m 0640 "$SW/shell/fifo"
check_eq "a FIFO is an empty object whose X-Object-Meta-Mode is S_IFIFO|0640" "4512 0" \
    "$(wait_until 10 sw_exists shell/fifo
       echo "$(sw_header shell/fifo x-object-meta-mode) $(sw_header shell/fifo content-length)")"
check_eq "link on Swift is EPERM: an object has one name" EPERM \
    "$(errno_of link "$SW/shell/a.txt" "$SW/shell/a2.txt")"

# --- prefix, environment and account clouds
echo pre >"$MNT/pre/x.txt"
check "a file in the prefix cloud is stored under the prefix" \
    wait_until 10 eval '[ "$(sw_get sub/dir/x.txt)" = pre ]'
check_eq "the environment's ST_AUTH/ST_USER/ST_KEY log the env cloud in" "hello swift" \
    "$(cat "$MNT/env/shell/a.txt" 2>&1)"
check "the account cloud lists the container" wait_until 10 test -d "$MNT/acct/posix"
check "the account cloud sees the container's files" test -f "$MNT/acct/posix/shell/a.txt"
check "mkdir in the account cloud creates a container" mkdir "$MNT/acct/newcont"
check "the new container exists on the server" scurl -I "$SWIFT_URL/newcont"
echo nc >"$MNT/acct/newcont/f"
check_eq "files go into the new container" nc \
    "$(wait_until 10 scurl -o /dev/null "$SWIFT_URL/newcont/f"; scurl "$SWIFT_URL/newcont/f")"
check_eq "rmdir of a container with objects is ENOTEMPTY" ENOTEMPTY \
    "$(errno_of rmdir "$MNT/acct/newcont")"
rm -f "$MNT/acct/newcont/f"
check "rmdir in the account cloud deletes the container" rmdir "$MNT/acct/newcont"
check_fails "the container is gone from the server" scurl -I "$SWIFT_URL/newcont"

# --- a token the server forgot is renewed on its 401
OLD_TOKEN=$(swift_token)
"$PYTHON" - "$_SWIFT_MEMCACHED_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"flush_all\r\n")
assert s.recv(100).startswith(b"OK")
PY
check_fails "after memcached forgot every token, the old token is refused" \
    curl -sf -o /dev/null -H "X-Auth-Token: $OLD_TOKEN" \
    "$SWIFT_URL/posix?format=json"
echo renewed >"$SW/shell/after-flush.txt"
check_eq "skyfs gets a new token and goes on" renewed \
    "$(wait_until 10 sw_exists shell/after-flush.txt; sw_get shell/after-flush.txt)"

# --- a key the server refuses
check_eq "a refused key gives EACCES" EACCES "$(errno_of listdir "$MNT/bad")"
check "the error names the cloud and the refusal, not the key" \
    eval "grep -q \"swift 'bad'.*refused (401)\" '$LOGS/mnt.log' && ! grep -q not-the-key '$LOGS/mnt.log'"
check "the other clouds still work" test -f "$SW/shell/a.txt"

unmount_skyfs "$MNT"
