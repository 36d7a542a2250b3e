#!/usr/bin/env bash
# writeback_symlinks.sh - write_back = async defers a symlink as it
# defers a folder (fs/localdirs.h): `ln -s` answers from the cache, and
# the write-back thread creates the link on the cloud once it settled
# (write_back_delay), after its folders.
#
# On s3rver behind listing_proxy.py (which logs every request); the
# server's own objects, fetched straight from it, are the judge:
#   - ln -s, readlink, lstat, touch -h, unlink and mv of such a link send
#     no request; the link then reaches the server once, at its last name,
#     as s3fs and rclone keep one (the target as content, the mode with
#     S_IFLNK, the mtime set with touch -h);
#   - a link removed or renamed before that never reaches the server at
#     its old name;
#   - a link renamed over a file on the cloud replaces it; a file renamed
#     over a link not created yet is not overwritten by it later;
#   - another client's object at the link's name, made before the link is
#     created, stays, and the link goes beside it as a conflict copy;
#   - kill -9 before the link is created: the next mount creates it;
#   - (a file made in a folder still moves the folder's mtime and ctime);
#   - a second mount with an empty cache reads every link back.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
CONF2="$TEST_TMP/fresh.conf"
MNT="$TEST_TMP/mnt"
MNT2="$TEST_TMP/mnt2"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver_behind logging sl || die "cannot start s3rver behind listing_proxy.py"
write_s3_config "$CONF" "http://127.0.0.1:$PROXY_PORT" sl \
    "write_back = async" "write_back_delay = 3s" "ttl = 60s"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
D="$MNT/s3"

# server_meta KEY NAME: x-amz-meta-NAME of KEY
server_meta() { bucket_header "$1" "x-amz-meta-$2"; }
status() { "$SKYFS" status -c "$CONF" 2>/dev/null; }
created() { status | grep -q ' 0 pending upload(s), 0 folder(s) and symlink(s) to create'; }
LINK_MODE=$((8#120777))

# --- made, looked at, changed, removed and moved: nothing sent -----------
check "the cloud's folder is listed (so new names are known new)" ls "$D"
m=$(requests_mark)
check "mkdir and ln -s" bash -c "mkdir '$D/d' && ln -s ../target '$D/d/l'"
check_eq "readlink answers from the cache" "../target" "$(readlink "$D/d/l")"
check_eq "lstat shows a symlink" "symbolic link" "$(stat -c %F "$D/d/l")"
check "touch -h sets its mtime" touch -h -d @1000000000 "$D/d/l"
check_eq "which shows" 1000000000 "$(stat -c %Y "$D/d/l")"
check "ln -s then rm" bash -c "ln -s gone '$D/tmp' && rm '$D/tmp'"
check "ln -s then mv" bash -c "ln -s moved '$D/l2' && mv '$D/l2' '$D/l3'"
check "ln -s, then mv of it into a new folder" bash -c "ln -s deep '$D/l4' && mkdir '$D/e' && mv '$D/l4' '$D/e/l4'"
check_eq "none of that sent a request" "" "$(requests_since "$m")"
check "skyfs status counts the symlinks still to create" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -E ' [1-9][0-9]* folder\(s\) and symlink\(s\) to create'"

# --- renames between links not created yet and files on the cloud --------
printf 'on the cloud\n' >"$D/f"
printf 'data\n' >"$D/g"
check "two files are uploaded" wait_until 30 created
check "a link renamed over a file on the cloud" bash -c "ln -s over '$D/f2' && mv '$D/f2' '$D/f'"
check "a file on the cloud renamed over a link not created yet" bash -c \
    "ln -s under '$D/lk' && mv '$D/g' '$D/lk'"

# --- another client's object at a link's name, made before the link ------
check "ln -s of a name another client is about to take" ln -s mine "$D/c1"
check "the other client puts an object there" \
    s3curl -X PUT --data-binary 'theirs' -o /dev/null "http://127.0.0.1:$S3_PORT/sl/c1"

check "the links are created once settled" wait_until 30 created
check_eq "the link reached the server with its target as content" "../target" "$(bucket_get d/l)"
check_eq "with the mode of a symlink" "$LINK_MODE" "$(server_meta d/l mode)"
check_eq "and the mtime set with touch -h" 1000000000 "$(server_meta d/l mtime)"
check_fails "the removed link never reached the server" bucket_has tmp
check_fails "the moved link is not at its first name" bucket_has l2
check_eq "it is at its last name" "moved" "$(bucket_get l3)"
check_eq "also when moved into a new folder" "deep" "$(bucket_get e/l4)"
check_eq "the link renamed over a file replaced it" "over" "$(bucket_get f)"
check_eq "as a link" "$LINK_MODE" "$(server_meta f mode)"
check_fails "and left nothing at its own name" bucket_has f2
check_eq "the file renamed over a link holds its bytes" "data" "$(bucket_get lk)"
check_fails "and left nothing at its own name" bucket_has g
check_eq "the other client's object stays" "theirs" "$(bucket_get c1)"
copy=$(bucket_keys | grep '^c1\.conflict-' | head -1)
check "the link went beside it as a conflict copy" test -n "$copy"
[ -n "$copy" ] && check_eq "holding the link's target" "mine" "$(bucket_get "$copy")"
check "the log names the conflict" grep -q 'conflict: "c1" on cloud .* symlink to "mine"' "$LOGS/mnt.log"
check_eq "no other conflict copy" "1" "$(bucket_keys | grep -c conflict)"
check_eq "the mount shows the other client's file at c1 (its entry was dropped)" "theirs" "$(cat "$D/c1")"

# --- a file made in a folder moves the folder's mtime and ctime (recorded
# with the deferred create, in one commit) ----------------------------------
check "a folder with an old mtime" bash -c "mkdir '$D/times' && touch -d @1000000000 '$D/times'"
ctime_before=$(stat -c %Z "$D/times")
sleep 1.1
check "a file made in it" bash -c "echo x >'$D/times/f'"
check "moved the folder's mtime" test "$(stat -c %Y "$D/times")" -gt 1000000000
check "and its ctime" test "$(stat -c %Z "$D/times")" -gt "$ctime_before"

# --- a second mount with an empty cache ------------------------------------
sed "s#^dir = .*#dir = $TEST_TMP/cache-fresh#" "$CONF" >"$CONF2"
chmod 600 "$CONF2"
mount_skyfs "$CONF2" "$MNT2" || die "cannot mount the second time"
check_eq "fresh mount: the links read back" "../target moved deep over" \
    "$(readlink "$MNT2/s3/d/l") $(readlink "$MNT2/s3/l3") $(readlink "$MNT2/s3/e/l4") $(readlink "$MNT2/s3/f")"
check_eq "fresh mount: the link's mtime" 1000000000 "$(stat -c %Y "$MNT2/s3/d/l")"
check_eq "fresh mount: lk is the file" "data" "$(cat "$MNT2/s3/lk")"
unmount_skyfs "$MNT2"

# --- unlink of a link once created: deleted on the cloud -------------------
check "rm of a created link" rm "$D/l3"
check_fails "is gone from the server" bucket_has l3

# --- kill -9 before the link is created: the next mount creates it --------
check "ln -s right before a kill -9" ln -s survivor "$D/k"
daemon=$(daemon_pids "$MNT")
check "the daemon is running" test -n "$daemon"
# shellcheck disable=SC2086
kill -9 $daemon
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
check_fails "killed within the delay: the link is not on the server" bucket_has k
mount_skyfs "$CONF" "$MNT" || die "cannot remount after kill -9"
check "the next mount creates it" wait_until 30 created
check_eq "with its target" "survivor" "$(bucket_get k)"
check_eq "and the mount reads it" "survivor" "$(readlink "$D/k")"
unmount_skyfs "$MNT"
