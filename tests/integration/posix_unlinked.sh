#!/usr/bin/env bash
# posix_unlinked.sh - a file unlinked (or replaced) while open does not take
# a later file of the same name with it (issue 20).
#
# posix_ops.py checks what the open descriptors of such a file see; this
# checks what happens to the next file at its name.  A local cloud and an
# s3 cloud: "f" is written, opened, unlinked; a new "f" is created and
# written but not closed; then the old descriptor is closed (its last
# close), and the daemon is killed (kill -9).  The new file's writes were
# acknowledged, so they are in the journal: the next mount uploads them.
# (The last close of the old file dropped the cached data at its path, the
# new file's journal entry included.)  The same with "f" replaced by a
# rename while open.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
LOCAL="$TEST_TMP/data/local"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket unl || die "cannot start s3rver"
mkdir -p "$TEST_TMP/cache" "$LOCAL"
(umask 077 && cat >"$CONF" <<EOT
[cache]
dir = $TEST_TMP/cache

[local]
type = local
path = $LOCAL
ttl = 60s

$(s3rver_cloud s3 "http://127.0.0.1:$PORT" unl)
ttl = 60s
EOT
)

# writer CLOUD: the sequence above, for "f" (unlinked) and "g" (replaced
# by a rename), then marks itself ready and waits to be killed.
writer() {
    "$PYTHON" - "$MNT/$1" "$TEST_TMP/ready-$1" >"$LOGS/writer-$1.log" 2>&1 <<'PY' &
import os, sys, time
d, ready = sys.argv[1:]
def put(name, data):
    with open(f"{d}/{name}", "wb") as f:
        f.write(data)
put("f", b"the old f\n")
old = os.open(f"{d}/f", os.O_RDONLY)
os.unlink(f"{d}/f")
new = os.open(f"{d}/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(new, b"the new f, written after the old one was unlinked\n")
os.close(old)                           # the old file's last close
put("g", b"the old g\n")
put("g.tmp", b"g.tmp, soon g\n")
old = os.open(f"{d}/g", os.O_RDONLY)
os.rename(f"{d}/g.tmp", f"{d}/g")       # g replaced while open
newg = os.open(f"{d}/g", os.O_WRONLY | os.O_APPEND)
os.write(newg, b"and appended to\n")
os.close(old)                           # the replaced file's last close
open(ready, "w").close()
time.sleep(60)                          # killed with the daemon
PY
    echo $! >"$TEST_TMP/writer-$1.pid"
}

mount_skyfs "$CONF" "$MNT" || die "cannot mount"
writer local
writer s3
check "both writers are done" wait_until 60 test -e "$TEST_TMP/ready-local" -a -e "$TEST_TMP/ready-s3"
daemon=$(daemon_pids "$MNT")
check "the daemon is running" test -n "$daemon"
# shellcheck disable=SC2086
kill -9 $daemon
for cloud in local s3; do
    pid=$(cat "$TEST_TMP/writer-$cloud.pid")
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
done
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null

mount_skyfs "$CONF" "$MNT" || die "cannot remount after the crash"
NEW_F="the new f, written after the old one was unlinked"
NEW_G="g.tmp, soon g
and appended to"
s3get() { curl -sf "http://127.0.0.1:$PORT/unl/$1"; }
check "local: the new f's writes are uploaded by the next mount" \
    wait_until 30 eval '[ "$(cat "$LOCAL/f")" = "$NEW_F" ]'
check "s3: the new f's writes are uploaded by the next mount" \
    wait_until 30 eval '[ "$(s3get f)" = "$NEW_F" ]'
check "local: so are the writes to the g that replaced the open one" \
    wait_until 30 eval '[ "$(cat "$LOCAL/g")" = "$NEW_G" ]'
check "s3: so are the writes to the g that replaced the open one" \
    wait_until 30 eval '[ "$(s3get g)" = "$NEW_G" ]'
check_eq "the mount reads the new f" "$NEW_F" "$(cat "$MNT/s3/f" 2>&1)"
unmount_skyfs "$MNT"
