#!/usr/bin/env bash
# local_posix.sh - the mount root and POSIX semantics over local clouds.
#
# Two local clouds, "beta" then "alpha" (config order differs from name
# order on purpose), ttl = 1s.  Checks that the root lists exactly the
# clouds in config order and refuses mkdir with EPERM, then runs
# posix_ops.py on the mount and on a plain directory and diffs the two
# transcripts (results and errno names), checks that a file reads right
# after touch, that chmod and utime on the cloud's root reach its folder,
# and compares the backing directory with the plain one.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
ALPHA="$TEST_TMP/data/alpha"
BETA="$TEST_TMP/data/beta"
PLAIN="$TEST_TMP/plain"
write_local_config "$CONF" "$TEST_TMP/cache" "beta=$BETA" "alpha=$ALPHA"
mkdir -p "$PLAIN"

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"

# --- the synthetic root
root_listing=$("$PYTHON" -c 'import os, sys; print(" ".join(os.listdir(sys.argv[1])))' "$MNT" 2>&1)
check_eq "root lists exactly the clouds, in config order" "beta alpha" "$root_listing"
check "each cloud is a directory" test -d "$MNT/alpha" -a -d "$MNT/beta"
check_eq "a new cloud directory is empty" "" "$(ls -A "$MNT/alpha" 2>&1)"
check_eq "mkdir at the root fails with EPERM" EPERM "$(errno_of mkdir "$MNT/gamma")"
check_eq "lookup of a missing root entry gives ENOENT" ENOENT "$(errno_of stat "$MNT/gamma")"
check_eq "root still lists only the clouds" "beta alpha" \
    "$("$PYTHON" -c 'import os, sys; print(" ".join(os.listdir(sys.argv[1])))' "$MNT" 2>&1)"

# --- the same POSIX script on the mount and on a plain directory
check "mkdir inside a cloud" mkdir "$MNT/alpha/posix"
mkdir "$PLAIN/posix"
"$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$PLAIN/posix" --kind local \
    --root "$PLAIN" >"$TEST_TMP/plain.out" 2>&1
check "posix_ops.py runs on a plain directory" test -s "$TEST_TMP/plain.out"
timeout 300 "$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$MNT/alpha/posix" --kind local \
    --root "$MNT/alpha" \
    >"$TEST_TMP/mount.out" 2>&1
check "POSIX ops give the same results and errnos on the mount as on a plain directory" \
    diff -u "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
check "both transcripts ran to their end" \
    transcript_complete "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"

# touch then read, within the ttl: the cache keeps the version the
# driver reports after the change (it kept a stale one: EIO)
echo "touched" >"$ALPHA/touched"       # in the folder: nothing of it cached
check "the file shows in the mount" test -f "$MNT/alpha/touched"
check "touch an existing file" touch "$MNT/alpha/touched"
check_eq "cat right after touch reads it (no stale version, no EIO)" touched \
    "$(cat "$MNT/alpha/touched" 2>&1)"
echo "touched 2" >"$ALPHA/touched2"
check "touch -d a file" touch -d '2010-10-10 10:10:10' "$MNT/alpha/touched2"
check_eq "cat right after touch -d reads it" "touched 2" "$(cat "$MNT/alpha/touched2" 2>&1)"
rm -f "$MNT/alpha/touched" "$MNT/alpha/touched2"

# the cloud's root: chmod and utime reach the backing folder
mode=$(stat -c %a "$ALPHA")
check "chmod on the cloud root" chmod 0750 "$MNT/alpha"
check_eq "the backing folder took the mode" 750 "$(stat -c %a "$ALPHA")"
check "touch -d on the cloud root" touch -d '2011-11-11 11:11:11 UTC' "$MNT/alpha"
check_eq "the backing folder took the mtime" 1321009871 "$(stat -c %Y "$ALPHA")"
chmod "$mode" "$MNT/alpha"

# The backing directory now holds what the plain one holds: names, kinds,
# symlink targets and bytes.
check "backing directory matches the plain directory (diff -r)" \
    diff -r --no-dereference "$PLAIN/posix" "$ALPHA/posix"
check_eq "nothing was written to the other cloud" "" "$(ls -A "$BETA" 2>&1)"

# A second look through the mount after the TTL, when the cache must be
# refreshed from the backing store, still shows the same tree.
sleep 2
check "after the TTL the mount still matches (diff -r)" \
    diff -r --no-dereference "$PLAIN/posix" "$MNT/alpha/posix"

unmount_skyfs "$MNT"
