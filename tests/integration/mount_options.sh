#!/usr/bin/env bash
# mount_options.sh - mount options from /etc/fstab, `mount -o` and
# `skyfs mount -o`:
#   - fstab through mount(8) and mount.skyfs (a test fstab file, never the
#     real /etc/fstab): ro is honoured (it used to be dropped: the mount
#     was writable), _netdev, nofail and x-* are accepted, and a second
#     `mount -a` is a no-op (util-linux recognises the mounted entry by
#     the config path as fsname);
#   - `mount -t skyfs -o ...` and `skyfs mount -o ...` take the same words;
#   - uid=, gid=, umask= make a root mount private: another user
#     (skyfs-t2) cannot read files it could before; allow_root keeps
#     everyone but root and the mounter out; rw is the default;
#   - a non-empty mountpoint is refused unless nonempty is given; an
#     unknown option is refused with its name.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "this test needs root (mount -a, a second user)"
# shellcheck source=users_lib.sh
. "$(dirname "$0")/users_lib.sh"
USER2=skyfs-t2
test_user "$USER2" >/dev/null || die "cannot create user $USER2"
UID2=$(id -u "$USER2")
GID2=$(id -g "$USER2")
as2() { as_user "$USER2" "$@"; }
chmod 1777 "$LOGS"              # sanitizer reports of $USER2's processes land there

# mount(8) runs helpers from /sbin only: point /sbin/mount.skyfs at this
# build for the test (as `make install` does) and put back what was there.
# pkg_deb.sh installs a package that owns it: one at a time.
exec 9>/tmp/skyfs-mount-helper.lock
flock -w 600 9 || die "another test holds /tmp/skyfs-mount-helper.lock"
HELPER=/sbin/mount.skyfs
OLD_HELPER=$(readlink "$HELPER" 2>/dev/null)
[ -e "$HELPER" ] && [ -z "$OLD_HELPER" ] && die "$HELPER is a file, not a link; not replacing it"
# (the binary itself, not the valgrind wrapper: the helper is known by its name)
ln -sfn "${SKY_VALGRIND_REAL:-$SKYFS}" "$HELPER" || die "cannot link $HELPER"
restore_helper() {
    if [ -n "$OLD_HELPER" ]; then ln -sfn "$OLD_HELPER" "$HELPER"; else rm -f "$HELPER"; fi
}
trap 'rc=$?; restore_helper; (exit $rc); _sky_exit' EXIT

chmod 755 "$TEST_TMP"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
DOCS="$TEST_TMP/data/docs"
write_local_config "$CONF" "$TEST_TMP/cache" docs="$DOCS"
chmod 755 "$TEST_TMP/data" "$DOCS"
echo hello >"$DOCS/note.txt"
chmod 644 "$DOCS/note.txt"
mkdir -p "$MNT"
echo "$MNT" >>"$_SKY_MOUNTS"    # lib.sh unmounts it at exit, whatever happens

mounts_at() { grep -c " $MNT " /proc/self/mountinfo; }

# ---- fstab: ro honoured, mount -a twice
FSTAB="$TEST_TMP/fstab"
echo "$CONF $MNT skyfs ro,_netdev,nofail,x-systemd.automount,noatime 0 0" >"$FSTAB"
check "mount -a mounts the fstab entry" mount -a -T "$FSTAB"
check "the entry is mounted" mountpoint -q "$MNT"
check_eq "source is the config and type fuse.skyfs" "fuse.skyfs $CONF" \
    "$(awk -v m="$MNT" '$5 == m { for (i = 7; $i != "-"; i++); print $(i+1), $(i+2) }' \
       /proc/self/mountinfo)"
check_eq "files read" hello "$(cat "$MNT/docs/note.txt")"
check_eq "ro from fstab: writing fails with EROFS" EROFS "$(errno_of create "$MNT/docs/new.txt")"
check "a second mount -a succeeds" mount -a -T "$FSTAB"
check_eq "and mounts nothing more" 1 "$(mounts_at)"
check "skyfs unmount of the fstab mount" "$SKYFS" unmount "$MNT"

# ---- mount -t skyfs -o (mount(8) command line), and skyfs mount -o
check "mount -t skyfs -o ro" mount -t skyfs -o ro "$CONF" "$MNT"
check_eq "mount -o ro: writing fails with EROFS" EROFS "$(errno_of create "$MNT/docs/new.txt")"
check "unmount" "$SKYFS" unmount "$MNT"
mount_skyfs "$CONF" "$MNT" -o rw
check_eq "-o rw: writable" ok "$(errno_of create "$MNT/docs/new.txt")"
check_eq "by default another user reads a 0644 file" hello \
    "$(as2 cat "$MNT/docs/note.txt" 2>&1)"
unmount_skyfs "$MNT"

# ---- uid, gid, umask: a private shared mount
mount_skyfs "$CONF" "$MNT" -o umask=077
check_eq "umask=077: modes lose group and other bits" "600 700" \
    "$(stat -c %a "$MNT/docs/note.txt") $(stat -c %a "$MNT/docs")"
check_eq "umask=077: another user cannot read" "Permission denied" \
    "$(as2 cat "$MNT/docs/note.txt" 2>&1 | sed 's/.*: //')"
unmount_skyfs "$MNT"
mount_skyfs "$CONF" "$MNT" -o "uid=$USER2,gid=$GID2" -o umask=027
check_eq "uid=NAME,gid=N: every file shows that owner" "$UID2 $GID2 640" \
    "$(stat -c '%u %g %a' "$MNT/docs/note.txt")"
check_eq "the owner named by uid= reads it" hello "$(as2 cat "$MNT/docs/note.txt" 2>&1)"
unmount_skyfs "$MNT"
mount_skyfs "$CONF" "$MNT" -o allow_root
check_eq "allow_root: another user is kept out" "Permission denied" \
    "$(as2 ls "$MNT/docs" 2>&1 | sed 's/.*: //')"
check_eq "allow_root: root reads" hello "$(cat "$MNT/docs/note.txt")"
unmount_skyfs "$MNT"

# ---- non-empty mountpoints, unknown options
echo stray >"$MNT/stray"
nonempty_refused() {
    local err
    err=$("$SKYFS" mount -c "$CONF" "$MNT" 2>&1 </dev/null)
    [ $? -ne 0 ] && ! mountpoint -q "$MNT" &&
        grep -qx "skyfs: mountpoint $MNT is not empty (it holds \"stray\"); mount on an empty directory, or add -o nonempty to hide what is there" <<<"$err"
}
check "a non-empty mountpoint is refused with one line" nonempty_refused
mount_skyfs "$CONF" "$MNT" -o nonempty
check_eq "-o nonempty mounts over it" hello "$(cat "$MNT/docs/note.txt")"
unmount_skyfs "$MNT"
rm -f "$MNT/stray"
bad_option() {
    local err
    err=$("$SKYFS" mount -c "$CONF" -o ro,colour=blue "$MNT" 2>&1 </dev/null)
    [ $? -ne 0 ] && ! mountpoint -q "$MNT" &&
        [ "$err" = 'skyfs: unknown mount option "colour=blue"; see skyfs mount --help' ]
}
check "an unknown option is refused, named" bad_option
