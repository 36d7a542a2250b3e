#!/usr/bin/env bash
# posix_atime.sh - atime and ctime through a mount: the relatime rule by
# default, the noatime and strictatime mount options, and where object
# clouds store the times (issue 20).
#
# Clouds: "s3" (s3rver) and "loc" (local), ttl 60s.  Checks:
#   - a read moves the atime of a file whose atime is not later than its
#     mtime, and sends no request (the atime is kept in the cache);
#   - a second read does not move it (relatime), and the atime survives
#     a remount;
#   - chmod writes the object's metadata, and x-amz-meta-atime/-ctime go
#     along with the times stat shows;
#   - -o noatime: reads never move it; -o strictatime: every read does,
#     also through mount.skyfs with mount(8)'s options.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
LOC="$TEST_TMP/data/loc"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket times || die "cannot start s3rver"
mkdir -p "$TEST_TMP/cache" "$LOC"
(umask 077 && cat >"$CONF" <<EOT
[cache]
dir = $TEST_TMP/cache

$(s3rver_cloud s3 "$ENDPOINT" times)
ttl = 60s

[loc]
type = local
path = $LOC
ttl = 60s
EOT
)

# ns FIELD PATH: atime, mtime or ctime of PATH in nanoseconds.
ns() { "$PYTHON" -c 'import os, sys; print(getattr(os.lstat(sys.argv[2]), "st_" + sys.argv[1] + "_ns"))' "$1" "$2"; }
requests() {
    getfattr --only-values -n user.skyfs.requests "$MNT/.skyfs" 2>/dev/null |
        awk -v c="$1" '$1 == c { print $2 }'
}
s3_header() { s3curl -I "$ENDPOINT/times/$1" | header_of "$2"; }
# s3fs's form of a time in ns: seconds, a 9-digit fraction when not 0
s3fs_time() { "$PYTHON" -c 'import sys; n = int(sys.argv[1]); s, f = divmod(n, 10**9); print(f"{s}.{f:09d}" if f else s)' "$1"; }
# later A B: A > B
later() { [ "$1" -gt "$2" ]; }

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
echo "first version" >"$MNT/s3/f"
cat "$MNT/s3/f" >/dev/null                      # the upload is read back by nothing
a0=$(ns atime "$MNT/s3/f")
touch -a -d '2001-01-01' "$MNT/s3/f"            # atime before mtime: the next read moves it
a1=$(ns atime "$MNT/s3/f")
before=$(requests s3)
sleep 0.05
check_eq "a read that moves the atime sends no request (no upload per read)" "$before" \
    "$(cat "$MNT/s3/f" >/dev/null; requests s3)"
a2=$(ns atime "$MNT/s3/f")
check "the read moved the atime (relatime: it was before the mtime)" later "$a2" "$a1"
check "... to now" later "$a2" "$a0"
sleep 0.05
cat "$MNT/s3/f" >/dev/null
check_eq "a second read leaves it (relatime: it is after the mtime and ctime)" "$a2" \
    "$(ns atime "$MNT/s3/f")"
c0=$(ns ctime "$MNT/s3/f")
check "chmod" chmod 0600 "$MNT/s3/f"
check "chmod moved the ctime" later "$(ns ctime "$MNT/s3/f")" "$c0"
check_eq "chmod stored the atime the cache kept (x-amz-meta-atime)" "$(s3fs_time "$a2")" \
    "$(s3_header f x-amz-meta-atime)"
check_eq "... and the ctime stat shows (x-amz-meta-ctime)" \
    "$(s3fs_time "$(ns ctime "$MNT/s3/f")")" "$(s3_header f x-amz-meta-ctime)"
unmount_skyfs "$MNT"
mount_skyfs "$CONF" "$MNT" || die "cannot remount $CONF"
check_eq "the atime survives a remount" "$a2" "$(ns atime "$MNT/s3/f")"
unmount_skyfs "$MNT"

# --- -o noatime
mount_skyfs "$CONF" "$MNT" -o noatime || die "cannot mount with -o noatime"
echo data >"$MNT/loc/g"
touch -a -d '2001-01-01' "$MNT/loc/g"
a=$(ns atime "$MNT/loc/g")
cat "$MNT/loc/g" >/dev/null
check_eq "-o noatime: a read leaves an old atime" "$a" "$(ns atime "$MNT/loc/g")"
unmount_skyfs "$MNT"

# --- -o strictatime, given the way mount(8) gives fstab options
mount_skyfs "$CONF" "$MNT" -o rw,strictatime,_netdev || die "cannot mount with -o strictatime"
cat "$MNT/loc/g" >/dev/null
a=$(ns atime "$MNT/loc/g")
sleep 0.05
cat "$MNT/loc/g" >/dev/null
check "-o strictatime: every read moves the atime" later "$(ns atime "$MNT/loc/g")" "$a"
unmount_skyfs "$MNT"
