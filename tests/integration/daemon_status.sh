#!/usr/bin/env bash
# daemon_status.sh - what `skyfs status`, `unmount` and `mount` say about
# the daemon, and where the daemon logs.
#
# - status names the daemon serving the mount and its log file; after an
#   unmount and after kill -9 it says no daemon serves the mount, and no
#   cloud is shown "online".
# - unmount of a directory that is not mounted says so plainly.
# - a mountpoint left broken by a killed daemon (ENOTCONN) is cleared by
#   the next mount, which says so and works.
# - the background daemon logs by default to <cache>/skyfs.log (0600),
#   --debug puts libfuse's request lines there, and --log FILE with
#   --debug gets them too.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
CACHE="$TEST_TMP/cache"
MNT="$TEST_TMP/mnt"
write_local_config "$CONF" "$CACHE" docs="$TEST_TMP/data"
echo hi >"$TEST_TMP/data/hi.txt"
# status FILE: skyfs status into FILE (checks read files: their stdin is /dev/null)
status() { "$SKYFS" status -c "$CONF" >"$1" 2>&1; }

# ------------------------------------------------ default log, --debug
mkdir -p "$MNT"
echo "$MNT" >>"$TEST_TMP/.mounts"
check "mount without --log, with --debug" "$SKYFS" mount -c "$CONF" --debug "$MNT"
check_eq "a file reads through the mount" hi "$(cat "$MNT/docs/hi.txt")"
pid=$(daemon_pids "$MNT")
check "status names the mount and its daemon" \
    bash -c "'$SKYFS' status -c '$CONF' | grep -qxF 'mount: $MNT (daemon pid $pid)'"
check "status names the default log file" \
    bash -c "'$SKYFS' status -c '$CONF' | grep -qxF 'log: $CACHE/skyfs.log'"
check "status shows the cloud online" bash -c "'$SKYFS' status -c '$CONF' | grep -Eq '^  docs +local +online\$'"
check_eq "the default log file is 0600" 600 "$(stat -c %a "$CACHE/skyfs.log" 2>&1)"
check "the default log has the daemon's lines" grep -F "mounted 1 cloud(s) at $MNT" "$CACHE/skyfs.log"
check "--debug puts libfuse's request lines in the default log" \
    grep -E "opcode: (LOOKUP|GETATTR)" "$CACHE/skyfs.log"

# ------------------------------------------------ after unmount
unmount_skyfs "$MNT"
out="$TEST_TMP/status-unmounted.out"
status "$out"
check "after unmount status says no daemon serves the mount" \
    grep -qxF "mount: not mounted (no skyfs daemon serves this cache; last mounted at $MNT)" "$out"
check_fails "after unmount no cloud is shown online" grep -Eq 'online$' "$out"
check "after unmount the cloud shows as not served" \
    grep -Eq '^  docs +local +not served \(no daemon; last seen online\)$' "$out"

out="$TEST_TMP/unmount-plain.out"
"$SKYFS" unmount "$MNT" >"$out" 2>&1 </dev/null
rc=$?
check_eq "unmount of a directory that is not mounted fails (exit status)" 1 "$rc"
check_eq "it says so plainly" "skyfs: $MNT is not mounted" "$(cat "$out")"

# ------------------------------------------------ --log FILE with --debug
mount_skyfs "$CONF" "$MNT" --debug || die "cannot mount with --log and --debug"
ls "$MNT/docs" >/dev/null
check "--debug puts libfuse's request lines in --log FILE" \
    grep -E "opcode: (LOOKUP|GETATTR|READDIR)" "$LOGS/mnt.log"
check "status names the --log file" \
    bash -c "'$SKYFS' status -c '$CONF' | grep -qxF 'log: $LOGS/mnt.log'"

# ------------------------------------------------ after kill -9
pid=$(daemon_pids "$MNT")
# shellcheck disable=SC2086
kill -9 $pid
check "the killed daemon is gone" wait_until 10 bash -c "! kill -0 $pid 2>/dev/null"
out="$TEST_TMP/status-killed.out"
status "$out"
check "after kill -9 status says no daemon serves the mount" \
    grep -qF "mount: not mounted (no skyfs daemon serves this cache" "$out"
check_fails "after kill -9 no cloud is shown online" grep -Eq 'online$' "$out"
check_eq "the mountpoint is broken (ENOTCONN)" ENOTCONN "$(errno_of stat "$MNT")"

# ------------------------------------------------ mount over the broken mountpoint
out="$TEST_TMP/mount-broken.out"
"$SKYFS" mount -c "$CONF" --log "$LOGS/mnt2.log" "$MNT" >"$out" 2>&1 </dev/null
rc=$?
check_eq "mount over a mountpoint left broken by a killed daemon works (exit status)" 0 "$rc"
check "it says it cleared the broken mountpoint" \
    grep -F "$MNT was left broken by a skyfs daemon that died (Transport endpoint is not connected); cleared it" "$out"
check_eq "the new mount serves files" hi "$(cat "$MNT/docs/hi.txt")"
check_eq "only one mount is left on the mountpoint" 1 \
    "$(awk -v m="$MNT" '$5 == m' /proc/self/mountinfo | wc -l)"
unmount_skyfs "$MNT"
