#!/usr/bin/env bash
# local_external.sh - changes made directly in a local cloud's backing
# directory show through the mount once the TTL (1s) has passed.
#
# The mount first reads the tree (so its caches hold the old state); then
# files are created, rewritten, deleted and a directory replaced behind its
# back; after ttl + 1 s the mount must show the new state.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
ALPHA="$TEST_TMP/data/alpha"
BETA="$TEST_TMP/data/beta"
write_local_config "$CONF" "$TEST_TMP/cache" "alpha=$ALPHA" "beta=$BETA"

# listing DIR: names under DIR, recursively, sorted, one line.
listing() {
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | tr '\n' ' ')
}

mkdir -p "$ALPHA/olddir"
printf 'keep me\n' >"$ALPHA/keep.txt"
printf 'old content\n' >"$ALPHA/change.txt"
printf 'going away\n' >"$ALPHA/gone.txt"
printf 'in old dir\n' >"$ALPHA/olddir/inside.txt"
ln -s keep.txt "$ALPHA/link"

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"

check_eq "pre-existing files are listed" "$(listing "$ALPHA")" "$(listing "$MNT/alpha")"
check_eq "pre-existing file is readable" "old content" "$(cat "$MNT/alpha/change.txt" 2>&1)"
check_eq "pre-existing file in a subdirectory is readable" "in old dir" \
    "$(cat "$MNT/alpha/olddir/inside.txt" 2>&1)"
check_eq "pre-existing symlink reads back" "keep.txt" "$(readlink "$MNT/alpha/link" 2>&1)"
check_eq "missing file is ENOENT (and cached as missing)" ENOENT \
    "$(errno_of stat "$MNT/alpha/new.txt")"
check_eq "stat size of a pre-existing file" 12 "$(stat -c %s "$MNT/alpha/change.txt" 2>&1)"

# --- change everything behind the mount's back
printf 'brand new\n' >"$ALPHA/new.txt"
printf 'the new content is longer than the old\n' >"$ALPHA/change.txt"
rm "$ALPHA/gone.txt"
rm -r "$ALPHA/olddir"
mkdir "$ALPHA/newdir"
printf 'in new dir\n' >"$ALPHA/newdir/inside.txt"
printf 'beta file\n' >"$BETA/b.txt"
sleep 2   # ttl + 1

check_eq "after the TTL the listing matches the backing directory" \
    "$(listing "$ALPHA")" "$(listing "$MNT/alpha")"
check_eq "a file created outside is readable" "brand new" "$(cat "$MNT/alpha/new.txt" 2>&1)"
check_eq "a file rewritten outside shows its new size" "$(stat -c %s "$ALPHA/change.txt")" \
    "$(stat -c %s "$MNT/alpha/change.txt" 2>&1)"
check_eq "a file rewritten outside shows its new content" \
    "the new content is longer than the old" "$(cat "$MNT/alpha/change.txt" 2>&1)"
check_eq "a file deleted outside is gone (ENOENT)" ENOENT "$(errno_of stat "$MNT/alpha/gone.txt")"
check_eq "a directory deleted outside is gone (ENOENT)" ENOENT \
    "$(errno_of stat "$MNT/alpha/olddir/inside.txt")"
check_eq "a directory created outside is readable" "in new dir" \
    "$(cat "$MNT/alpha/newdir/inside.txt" 2>&1)"
check_eq "a file created outside in the other cloud is readable" "beta file" \
    "$(cat "$MNT/beta/b.txt" 2>&1)"

# --- a shrink and a same-size rewrite (only mtime and bytes change)
printf 'short\n' >"$ALPHA/change.txt"
printf 'BRAND NEW\n' >"$ALPHA/new.txt"
touch -d '2001-02-03 04:05:06' "$ALPHA/new.txt"
sleep 2
check_eq "a file shrunk outside shows its new content" "short" \
    "$(cat "$MNT/alpha/change.txt" 2>&1)"
check_eq "a same-size rewrite outside shows its new content" "BRAND NEW" \
    "$(cat "$MNT/alpha/new.txt" 2>&1)"
check_eq "mtime set outside shows through the mount" "$(stat -c %Y "$ALPHA/new.txt")" \
    "$(stat -c %Y "$MNT/alpha/new.txt" 2>&1)"

unmount_skyfs "$MNT"
