#!/usr/bin/env bash
# writeback_rename_over.sh - write_back = async: a file made here and not
# uploaded yet, renamed over a file the cloud holds (git's
# `mv config.lock config`, an editor's save), is moved in the cache alone:
# the rename sends nothing, and the pending upload goes to the new name,
# replacing the version of the file there that this mount last saw.
#
# On s3rver behind listing_proxy.py (which logs every request), with a
# write_back_delay long enough that every rename below happens before the
# upload starts.  The server's own objects, fetched straight from it, are
# the judge:
#   - the rename sends no request (but the lookup of a target whose entry
#     is older than the ttl); the new name reads the new bytes at once and,
#     after the ttl too, shows the new size and mode: the cloud's older
#     version of the name changes nothing until the upload;
#   - once the queue drains, the server holds the new bytes at the new name,
#     nothing at the old one, no conflict copy, and the mode set before the
#     rename; a second mount with an empty cache sees the same;
#   - another client's change of the target made before the upload is
#     kept: the target holds theirs, this mount's bytes go beside it as a
#     conflict copy (as a rename at once would have done);
#   - right after such a rename, an unlink deletes the target on the cloud,
#     and a second rename moves it: nothing is left at either old name;
#   - kill -9 right after the rename: the next mount uploads the new bytes
#     to the new name, with no conflict copy.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
CONF2="$TEST_TMP/fresh.conf"
MNT="$TEST_TMP/mnt"
MNT2="$TEST_TMP/mnt2"
SRC="$TEST_TMP/src"
mkdir -p "$SRC"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver_behind logging ro || die "cannot start s3rver behind listing_proxy.py"
write_s3_config "$CONF" "http://127.0.0.1:$PROXY_PORT" ro \
    "write_back = async" "write_back_delay = 3s" "ttl = 1s"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
D="$MNT/s3"

on_server() { bucket_get "$1" 2>/dev/null | cmp -s "$2" -; }
pending() { "$SKYFS" status -c "$CONF" 2>/dev/null | grep -Eo '[0-9]+ pending upload' | grep -Eo '^[0-9]+'; }
drained() { [ "$(pending)" = 0 ]; }

# --- the target on the cloud, then a new file renamed over it ------------
printf 'old config\n' >"$SRC/old"
head -c 70000 /dev/urandom >"$SRC/new"
cp "$SRC/old" "$D/config"
check "the target is uploaded" wait_until 30 drained
check "and on the server" on_server config "$SRC/old"
cp "$SRC/new" "$D/config.lock" && chmod 600 "$D/config.lock"
sleep 1.2       # past the ttl: the target's entry is stale, its lookup asks
m=$(requests_mark)
check "mv of the new file over the uploaded one" mv "$D/config.lock" "$D/config"
check_eq "the rename sent nothing (but the lookup of the stale target)" "" \
    "$(requests_since "$m" | grep -v '^HEAD /ro/config$')"
check "the new name reads the new bytes at once" cmp "$SRC/new" "$D/config"
sleep 1.2       # past the ttl again: the moved file's stat asks the cloud
check_eq "and shows the new size and the mode set before the rename" "70000 600" \
    "$(stat -c '%s %a' "$D/config")"
check_fails "the old name is gone from the mount" test -e "$D/config.lock"
check "the queue drains" wait_until 30 drained
check "the server holds the new bytes at the new name" on_server config "$SRC/new"
check_eq "and nothing else: no old name, no conflict copy" "config" "$(bucket_keys)"
check_eq "the object carries the mode set before the rename" "$((8#100600))" \
    "$(bucket_header config x-amz-meta-mode)"

# --- another client changed the target before the upload: kept -----------
printf 'theirs\n' >"$SRC/theirs"
printf 'mine\n' >"$SRC/mine"
cp "$SRC/old" "$D/shared"
check "a second target is uploaded" wait_until 30 drained
cp "$SRC/mine" "$D/shared.tmp"
check "mv of a new file over it" mv "$D/shared.tmp" "$D/shared"
check "meanwhile another client replaces the target on the server" \
    s3curl -X PUT --data-binary @"$SRC/theirs" -o /dev/null "http://127.0.0.1:$S3_PORT/ro/shared"
check "the queue drains" wait_until 30 drained
check "the target holds the other client's bytes" on_server shared "$SRC/theirs"
copy=$(bucket_keys | grep '^shared\.conflict-' | head -1)
check "this mount's bytes went beside it as a conflict copy" test -n "$copy"
[ -n "$copy" ] && check "the conflict copy holds them" on_server "$copy" "$SRC/mine"
check_fails "nothing at the old name" bucket_has shared.tmp
check "the log names the conflict" grep -q 'conflict: "shared" on cloud' "$LOGS/mnt.log"

# --- right after such a rename: unlink, and a second rename ---------------
cp "$SRC/old" "$D/gone" && cp "$SRC/old" "$D/first"
check "two more targets are uploaded" wait_until 30 drained
cp "$SRC/new" "$D/gone.tmp" && mv "$D/gone.tmp" "$D/gone"
check "rm right after the rename over a file on the cloud" rm "$D/gone"
cp "$SRC/new" "$D/first.tmp" && mv "$D/first.tmp" "$D/first"
check "a second rename right after the first" mv "$D/first" "$D/second"
check "the queue drains" wait_until 30 drained
check_fails "the removed file is gone from the server" bucket_has gone
check_fails "its temporary name never reached the server" bucket_has gone.tmp
check_fails "the twice-renamed file left nothing at its first name" bucket_has first
check_fails "nor at its temporary one" bucket_has first.tmp
check "the server holds its bytes at the last name" on_server second "$SRC/new"

# --- a second mount with an empty cache sees what they left ---------------
sed "s#^dir = .*#dir = $TEST_TMP/cache-fresh#" "$CONF" >"$CONF2"
chmod 600 "$CONF2"
mount_skyfs "$CONF2" "$MNT2" || die "cannot mount the second time"
check "fresh mount: config holds the new bytes" cmp "$SRC/new" "$MNT2/s3/config"
check "fresh mount: shared holds the other client's bytes" cmp "$SRC/theirs" "$MNT2/s3/shared"
check "fresh mount: second holds the new bytes" cmp "$SRC/new" "$MNT2/s3/second"
check_fails "fresh mount: no file gone" test -e "$MNT2/s3/gone"
unmount_skyfs "$MNT2"

# --- kill -9 right after the rename: the next mount uploads it ------------
cp "$SRC/old" "$D/crash"
check "a last target is uploaded" wait_until 30 drained
head -c 90000 /dev/urandom >"$SRC/crash"
cp "$SRC/crash" "$D/crash.lock" && mv "$D/crash.lock" "$D/crash"
daemon=$(daemon_pids "$MNT")
check "the daemon is running" test -n "$daemon"
# shellcheck disable=SC2086
kill -9 $daemon
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
check "killed within the delay: the server still holds the old bytes" on_server crash "$SRC/old"
mount_skyfs "$CONF" "$MNT" || die "cannot remount after kill -9"
check "the next mount uploads the renamed file" wait_until 30 drained
check "the server holds the new bytes at the new name" on_server crash "$SRC/crash"
check_fails "nothing at the old name" bucket_has crash.lock
check_eq "no conflict copy anywhere" "" "$(bucket_keys | grep conflict |
    grep -v '^shared\.conflict-')"
check "the mount reads the new bytes" cmp "$SRC/crash" "$D/crash"
unmount_skyfs "$MNT"
