#!/usr/bin/env bash
# crash_journal.sh - crash-safe write-back: kill -9 the daemon in the middle
# of a burst of writes, remount with the same cache, and check that every
# file whose close or fsync returned is intact in the cloud, and that
# acknowledged writes to a file still open at the crash are uploaded by the
# next mount (the journal).  Run on a local cloud and an S3 cloud.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
LOCAL="$TEST_TMP/data/local"
mkdir -p "$LOCAL" "$TEST_TMP/cache" "$TEST_TMP/src"

start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket crash || die "cannot start s3rver"

(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache
block_size = 1M

[local]
type = local
path = $LOCAL
ttl = 1s

$(s3rver_cloud s3 "http://127.0.0.1:$PORT" crash)
ttl = 1s
EOF
)

# burst CLOUD: 20 files written with fsync (seeded content), then one file
# left open with 3 MiB of acknowledged writes; then marks itself ready and
# waits.  Runs in the background; its pid goes to $TEST_TMP/burst-CLOUD.pid.
burst() {
    "$PYTHON" - "$MNT/$1" "$TEST_TMP/src" "$1" >"$LOGS/burst-$1.log" 2>&1 <<'PY' &
import os, random, sys, time
mnt, src, cloud = sys.argv[1:]
rng = random.Random(cloud)
for i in range(20):
    data = rng.randbytes(rng.randrange(1, 300000))
    with open(f"{src}/{cloud}-f{i}", "wb") as ref:
        ref.write(data)
    fd = os.open(f"{mnt}/f{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
pending = rng.randbytes(3 << 20)
with open(f"{src}/{cloud}-open", "wb") as ref:
    ref.write(pending)
fd = os.open(f"{mnt}/open.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
for off in range(0, len(pending), 65536):
    os.write(fd, pending[off:off + 65536])
open(f"{src}/{cloud}-ready", "w").close()
time.sleep(60)   # the daemon is killed under us; this process is killed too
PY
    echo $! >"$TEST_TMP/burst-$1.pid"
}

mount_skyfs "$CONF" "$MNT" || die "cannot mount"
burst local
burst s3
check "both write bursts reach their open file" \
    wait_until 60 test -e "$TEST_TMP/src/local-ready" -a -e "$TEST_TMP/src/s3-ready"

daemon=$(daemon_pids "$MNT")
check "the daemon is running" test -n "$daemon"
# shellcheck disable=SC2086
kill -9 $daemon
for cloud in local s3; do
    pid=$(cat "$TEST_TMP/burst-$cloud.pid")
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null   # only the writers: the servers run on
done
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
check "the cache records pending uploads after the crash" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -Eq '[1-9][0-9]* pending upload'"

mount_skyfs "$CONF" "$MNT" || die "cannot remount after the crash"
s3get() { curl -sf "http://127.0.0.1:$PORT/crash/$1"; }
for cloud in local s3; do
    bad=0
    for i in $(seq 0 19); do
        if [ "$cloud" = local ]; then
            cmp -s "$TEST_TMP/src/$cloud-f$i" "$LOCAL/f$i" || bad=$((bad + 1))
        else
            s3get "f$i" | cmp -s "$TEST_TMP/src/$cloud-f$i" - || bad=$((bad + 1))
        fi
    done
    check_eq "$cloud: all 20 fsynced files are intact in the cloud" 0 "$bad"
done
check "local: the file open at the crash is uploaded by the next mount" \
    wait_until 30 cmp -s "$TEST_TMP/src/local-open" "$LOCAL/open.bin"
check "s3: the file open at the crash is uploaded by the next mount" \
    wait_until 30 bash -c "curl -sf 'http://127.0.0.1:$PORT/crash/open.bin' | cmp -s '$TEST_TMP/src/s3-open' -"
check "the journal is empty again" wait_until 10 bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q ' 0 pending upload'"
check "the mount reads the recovered file" cmp "$TEST_TMP/src/s3-open" "$MNT/s3/open.bin"
unmount_skyfs "$MNT"
