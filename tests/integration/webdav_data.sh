#!/usr/bin/env bash
# webdav_data.sh - large files, large folders and changes made on the
# server, over WebDAV: Apache httpd's mod_dav_fs (Basic authentication) and
# `rclone serve webdav`.
#
# Checks, on each server:
#   - a 100 MiB file written through the mount (PUT to a temporary name,
#     then MOVE) is on the server byte for byte, and a second mount with an
#     empty cache reads it back byte for byte (ranged GETs); renaming it
#     (MOVE) keeps its bytes;
#   - a folder of 5,000 files created on the server directly is listed
#     completely (one PROPFIND Depth 1), with the right names and sizes;
#   - files created, changed and deleted on the server directly, and a new
#     folder, show up through the mount once the TTL has passed;
#   - Apache: chmod and touch -d of a file, chmod of a folder keep the
#     folder's mtime (a fresh mount reads it), although the server's .DAV
#     folder made by the first PROPPATCH moved it; touch -d of a folder
#     sets its time; a file put by another client (curl) still moves it;
#     .DAV is never listed (rclone serving a folder that has one);
#   - df shows room on both (neither tells a quota).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webdav_lib.sh"

APORT=$(free_port)
RPORT=$(free_port)
MNT="$TEST_TMP/mnt"
AROOT="$TEST_TMP/apache/data"
RROOT="$TEST_TMP/rclone"
NFILES=5000

start_apache_dav "$TEST_TMP/apache" "$APORT" basic || die "cannot start apache2"
start_rclone_dav "$RROOT" "$RPORT" || die "cannot start rclone serve webdav"

# write_conf CONFIG CACHE_DIR: clouds "dav" (Apache) and "rc" (rclone).
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF2
[cache]
dir = $2

$(webdav_cloud dav "http://127.0.0.1:$APORT/dav/" "$DAV_USER" "$DAV_PASS")
ttl = 2s
index = off

$(webdav_cloud rc "http://127.0.0.1:$RPORT/" bob builder)
ttl = 2s
index = off
EOF2
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"

# server_root CLOUD: the folder the cloud's server keeps its files in.
server_root() { if [ "$1" = dav ]; then echo "$AROOT"; else echo "$RROOT"; fi; }
# server_done CLOUD: files written into the server's folder by the test are
# handed to the server's user.
server_done() { [ "$1" = dav ] && apache_fix_owner "$TEST_TMP/apache"; return 0; }

# --- 100 MiB
head -c $((100 << 20)) /dev/urandom >"$TEST_TMP/big"
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
for cloud in dav rc; do
    check "$cloud: cp of a 100 MiB file into the cloud" cp "$TEST_TMP/big" "$MNT/$cloud/big.bin"
    check "$cloud: the mount reads it back byte for byte" cmp "$TEST_TMP/big" "$MNT/$cloud/big.bin"
done
unmount_skyfs "$MNT"     # drains the uploads
for cloud in dav rc; do
    check "$cloud: the server holds the same 100 MiB" \
        cmp "$TEST_TMP/big" "$(server_root $cloud)/big.bin"
done

mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount with an empty cache"
for cloud in dav rc; do
    check_eq "$cloud: a fresh mount sees the size" $((100 << 20)) \
        "$(stat -c %s "$MNT/$cloud/big.bin" 2>&1)"
    check "$cloud: a fresh mount (empty cache) reads it byte for byte" \
        cmp "$TEST_TMP/big" "$MNT/$cloud/big.bin"
    check "$cloud: rename of the large file (MOVE)" mv "$MNT/$cloud/big.bin" "$MNT/$cloud/big2.bin"
    check "$cloud: the renamed file reads back" cmp "$TEST_TMP/big" "$MNT/$cloud/big2.bin"
    check "$cloud: the old name is gone from the server" test ! -e "$(server_root $cloud)/big.bin"
    check "$cloud: rm of the large file" rm "$MNT/$cloud/big2.bin"
    check "$cloud: and it is gone from the server" test ! -e "$(server_root $cloud)/big2.bin"
done
rm -f "$TEST_TMP/big"

# --- 5,000 files made on the server, listed through the mount
for cloud in dav rc; do
    root=$(server_root $cloud)
    mkdir -p "$root/many"
    (cd "$root/many" && for i in $(seq -w 1 $NFILES); do printf '%s' "$i" >"f$i.txt"; done)
    server_done $cloud
    expected=$(cd "$root/many" && ls | LC_ALL=C sort)
    # (the crawl may list the folder while the files are made: its
    # listing is then the cache's answer for the ttl)
    listed_all() { [ "$(ls "$MNT/$cloud/many" 2>/dev/null | wc -l)" = "$NFILES" ]; }
    check "$cloud: the listing reaches $NFILES files" wait_until 20 listed_all
    check_eq "$cloud: ls lists all $NFILES files" "$expected" \
        "$(ls "$MNT/$cloud/many" 2>&1 | LC_ALL=C sort)"
    check_eq "$cloud: every size is right (stat of all $NFILES)" "$NFILES" \
        "$(cd "$MNT/$cloud/many" && stat -c '%n %s' -- * |
           awk '{ n = substr($1, 2, 4); if (length(n) == $2) c++ } END { print c }')"
    check_eq "$cloud: a file's content" "4321" "$(cat "$MNT/$cloud/many/f4321.txt" 2>&1)"
done

# --- changes made on the server directly
for cloud in dav rc; do
    root=$(server_root $cloud)
    mkdir -p "$root/ext"
    echo "first" >"$root/ext/changed.txt"
    echo "doomed" >"$root/ext/deleted.txt"
    server_done $cloud
    check_eq "$cloud: the mount lists the server's files" "changed.txt deleted.txt" \
        "$(ls "$MNT/$cloud/ext" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
    check_eq "$cloud: and reads them" first "$(cat "$MNT/$cloud/ext/changed.txt" 2>&1)"
    echo "second version" >"$root/ext/changed.txt"
    rm "$root/ext/deleted.txt"
    echo "new" >"$root/ext/added.txt"
    mkdir "$root/ext/newdir"
    echo "inner" >"$root/ext/newdir/inside.txt"
    server_done $cloud
    check "$cloud: after the TTL the mount lists the server's changes" \
        wait_until 10 eval "[ \"\$(ls '$MNT/$cloud/ext' | tr '\n' ' ')\" = 'added.txt changed.txt newdir ' ]"
    check_eq "$cloud: the changed file shows its new content" "second version" \
        "$(cat "$MNT/$cloud/ext/changed.txt" 2>&1)"
    check_eq "$cloud: the deleted file is gone" ENOENT \
        "$(errno_of stat "$MNT/$cloud/ext/deleted.txt")"
    check_eq "$cloud: the new folder's file reads" inner \
        "$(cat "$MNT/$cloud/ext/newdir/inside.txt" 2>&1)"
done
unmount_skyfs "$MNT"

# --- folder times: mod_dav_fs keeps dead properties in a .DAV folder it
# makes inside the folder at the first PROPPATCH there, which moves the
# folder's mtime on the server; a chmod or utime through skyfs must not
# move it, a real change by another client must.  The writer mount (a)
# changes, a reader mount (c, an empty cache) reads each folder once.
OLD=1614834367                          # 2021-03-04 05:06:07 UTC
mkdir -p "$RROOT/hid/.DAV"              # what Apache leaves, served by rclone
echo x >"$RROOT/hid/.DAV/f.pag"
echo y >"$RROOT/hid/seen.txt"
for d in chm tou chd tod ext2; do
    mkdir -p "$AROOT/$d"
    echo one >"$AROOT/$d/a.txt"
    echo two >"$AROOT/$d/b.txt"
    touch -d "@$OLD" "$AROOT/$d"
done
apache_fix_owner "$TEST_TMP/apache"
check "dav: no .DAV folder before (the server made none yet)" test ! -e "$AROOT/chm/.DAV"
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
check "dav: chmod of a file in a folder" chmod 600 "$MNT/dav/chm/a.txt"
check "dav: touch -d of a file in another folder" touch -d '2022-02-02 02:02:02' "$MNT/dav/tou/b.txt"
check "dav: chmod of a folder" chmod 700 "$MNT/dav/chd"
check "dav: touch -d of a folder" touch -d '@1549166706' "$MNT/dav/tod"
check "dav: chmod of a file in the folder another client changes next" \
    chmod 640 "$MNT/dav/ext2/a.txt"
unmount_skyfs "$MNT"
check "dav: the server made its .DAV folder (the case tested)" test -d "$AROOT/chm/.DAV"
before_put=$(date +%s)
check "dav: another client puts a new file (curl PUT)" \
    curl -sf -u "$DAV_USER:$DAV_PASS" -T /etc/hostname "http://127.0.0.1:$APORT/dav/ext2/new.txt"

write_conf "$TEST_TMP/c.conf" "$TEST_TMP/cache-c"
mount_skyfs "$TEST_TMP/c.conf" "$MNT" || die "cannot mount the reader"
check_eq "dav: the file's new mode is stored" 600 "$(stat -c %a "$MNT/dav/chm/a.txt" 2>&1)"
check_eq "dav: chmod of a file keeps its folder's mtime" "$OLD" \
    "$(stat -c %Y "$MNT/dav/chm" 2>&1)"
check_eq "dav: touch -d of a file keeps its folder's mtime" "$OLD" \
    "$(stat -c %Y "$MNT/dav/tou" 2>&1)"
check_eq "dav: the file's time is the one set" 1643767322 \
    "$(stat -c %Y "$MNT/dav/tou/b.txt" 2>&1)"
check_eq "dav: chmod of a folder keeps its mtime" "$OLD" "$(stat -c %Y "$MNT/dav/chd" 2>&1)"
check_eq "dav: touch -d of a folder sets its mtime" 1549166706 \
    "$(stat -c %Y "$MNT/dav/tod" 2>&1)"
check "dav: a new file put by another client moves the folder's mtime" \
    test "$(stat -c %Y "$MNT/dav/ext2" 2>&1)" -ge "$before_put"
for cloud in dav rc; do      # neither server tells a quota (404)
    check "$cloud: df shows room, not a full disk" \
        test "$(df -B1 --output=avail "$MNT/$cloud" 2>/dev/null | tail -1)" -gt $((1 << 30))
done
check_eq "dav: .DAV is not listed" "a.txt b.txt" \
    "$(ls -A "$MNT/dav/chm" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
# rclone answers from its own listings for a while (webdav_lib.sh)
check "rc: the server's folder shows" wait_until 10 test -e "$MNT/rc/hid/seen.txt"
check_eq "rc: a .DAV folder on the server is not listed" "seen.txt" \
    "$(ls -A "$MNT/rc/hid" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
unmount_skyfs "$MNT"
