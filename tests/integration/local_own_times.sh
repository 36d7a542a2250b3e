#!/usr/bin/env bash
# local_own_times.sh - the marks skyfs's own changes leave on a local
# cloud's times are not taken for news once the TTL (1s) has passed.
#
# Writing an existing file uploads it through a temporary name renamed
# over it, which moves its folder's mtime and ctime in the backing
# directory; an upload stamps the file's ctime with the time of the
# rename, after the write.  POSIX changes neither the folder (the file
# was written, not created) nor the file's ctime after the write, and
# neither may the mount after the TTL, also after a remount.  A change by
# another writer in the backing directory after that still shows.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
ALPHA="$TEST_TMP/data/alpha"
write_local_config "$CONF" "$TEST_TMP/cache" "alpha=$ALPHA"

# times PATH: "m=<mtime ns> c=<ctime ns>"
times() {
    "$PYTHON" -c 'import os, sys; s = os.stat(sys.argv[1]); print("m=%d c=%d" % (s.st_mtime_ns, s.st_ctime_ns))' "$1" 2>&1
}

# relation PATH: how the ctime stands to the mtime ("ctime=mtime", ...)
relation() {
    "$PYTHON" -c '
import os, sys
s = os.stat(sys.argv[1])
print("ctime=mtime" if s.st_ctime_ns == s.st_mtime_ns else
      "ctime>mtime" if s.st_ctime_ns > s.st_mtime_ns else "ctime<mtime")' "$1" 2>&1
}

# write_slowly PATH TEXT: open (creating), write, wait 0.2 s, close: the
# upload at close comes well after the write's times.
write_slowly() {
    "$PYTHON" -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, sys.argv[2].encode())
time.sleep(0.2)
os.close(fd)' "$1" "$2"
}

# create PATH: open with O_CREAT and close (no utimensat, unlike touch)
create() {
    "$PYTHON" -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644))' "$1"
}

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"

# --- writing an existing file leaves its folder as it was
check "mkdir pa" mkdir "$MNT/alpha/pa"
check "create pa/f" create "$MNT/alpha/pa/f"
before=$(times "$MNT/alpha/pa")
sleep 0.1       # the upload's rename comes on a later tick of the clock
check "write pa/f" write_slowly "$MNT/alpha/pa/f" "data"
check_eq "within the TTL, pa's times are as before the write" "$before" \
    "$(times "$MNT/alpha/pa")"
sleep 1.5       # past the TTL: pa is refreshed from its backing folder
check "the backing folder's mtime moved (the upload's temporary name)" \
    test "$(times "$ALPHA/pa")" != "$before"
check_eq "after the TTL, pa's mtime and ctime are as before the write" "$before" \
    "$(times "$MNT/alpha/pa")"
check_eq "after the TTL, the written file's ctime is its mtime" "ctime=mtime" \
    "$(relation "$MNT/alpha/pa/f")"

# --- new entries: their times as the mount gave them
check "write a new file pa/n" write_slowly "$MNT/alpha/pa/n" "new"
check "create an empty file pa/e" create "$MNT/alpha/pa/e"
check "mkdir pa/d" mkdir "$MNT/alpha/pa/d"
sleep 1.5
check_eq "after the TTL, a new file's ctime is its mtime" "ctime=mtime" \
    "$(relation "$MNT/alpha/pa/n")"
check_eq "after the TTL, a new empty file's ctime is its mtime" "ctime=mtime" \
    "$(relation "$MNT/alpha/pa/e")"
check_eq "after the TTL, a new folder's ctime is its mtime" "ctime=mtime" \
    "$(relation "$MNT/alpha/pa/d")"

# --- the same after a remount: the cache remembers its own changes
check "mkdir pb" mkdir "$MNT/alpha/pb"
check "create pb/f" create "$MNT/alpha/pb/f"
before_b=$(times "$MNT/alpha/pb")
sleep 0.1
check "write pb/f" write_slowly "$MNT/alpha/pb/f" "data"
unmount_skyfs "$MNT"
mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF again"
sleep 1.5
check "the backing folder pb's mtime moved" test "$(times "$ALPHA/pb")" != "$before_b"
check_eq "after a remount and the TTL, pb's times are as before the write" "$before_b" \
    "$(times "$MNT/alpha/pb")"

# --- another writer's later changes still show
sleep 0.1
touch "$ALPHA/pa"                                   # mtime and ctime: now
chmod 0600 "$ALPHA/pa/f"                            # f's ctime: now
touch -d '2001-02-03 04:05:06' "$ALPHA/pa/n"        # a file's mtime, back
sleep 1.5
check_eq "a folder touched in the backing directory shows its new times" \
    "$(times "$ALPHA/pa")" "$(times "$MNT/alpha/pa")"
check_eq "a file chmod-ed in the backing directory shows its mode" 600 \
    "$(stat -c %a "$MNT/alpha/pa/f" 2>&1)"
check_eq "... and its new ctime" "$(times "$ALPHA/pa/f")" "$(times "$MNT/alpha/pa/f")"
check_eq "a file's mtime set back in the backing directory shows" \
    "$(stat -c %Y "$ALPHA/pa/n")" "$(stat -c %Y "$MNT/alpha/pa/n" 2>&1)"

unmount_skyfs "$MNT"
