#!/usr/bin/env bash
# writeback_async.sh - write_back = async on a local cloud and
# on S3 (s3rver), and write_back = sync (the default) beside it.
#
# Checks, the cloud's own view (the local folder, or s3rver's objects
# fetched straight from the server) being the judge:
#   - a new file still open has the times it was made with (atime = mtime
#     = ctime: its create is not a write);
#   - fsync means "on the cloud": right after fsync returns, with the file
#     still open (no close), the server holds the bytes;
#   - with the S3 server stopped, close still returns 0 (the bytes are safe
#     in the cache), stat shows the local size without waiting, another
#     process reads the bytes, `skyfs status` and the metrics count the
#     queue; fsync then fails with the upload's error; on a write_back =
#     sync cloud close itself fails; once the server is back every queued
#     upload arrives (retried, nothing dropped);
#   - on each cloud, right after close: rename, unlink, chmod + utime,
#     truncate(2), reopen and append, many closes of one file, setxattr
#     (S3), a cross-cloud mv: the cloud ends up exactly as the operations
#     say, and a second mount with an empty cache sees the same;
#   - kill -9 with five uploads queued (server stopped): the next mount
#     uploads them all, in the order they were closed;
#   - a power cut (kill -9, then the metadata cache's entries dropped)
#     after `mkdir -p d/sub; cp f d/sub/f` on a local cloud: the next
#     mount makes the folders and uploads the file.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
CONF="$TEST_TMP/skyfs.conf"
CONF2="$TEST_TMP/fresh.conf"
MNT="$TEST_TMP/mnt"
MNT2="$TEST_TMP/mnt2"
LOCAL="$TEST_TMP/data/local"
SRC="$TEST_TMP/src"
mkdir -p "$LOCAL" "$SRC"

s3start() {
    start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket wb --configure-bucket wbsync
}
s3stop() {
    local pid
    pid=$(tail -n 1 "$_SKY_PIDS")
    kill "$pid" 2>/dev/null
    wait_until 10 bash -c "! curl -s -o /dev/null --max-time 1 '$ENDPOINT/'"
}
s3start || die "cannot start s3rver"

# write_conf CONFIG CACHE: local (write_back = async), s3 (write_back =
# async), s3sync (write_back = sync, the default, said explicitly).
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2
block_size = 1M

[local]
type = local
path = $LOCAL
ttl = 1s
write_back = async

$(s3rver_cloud s3 "$ENDPOINT" wb)
ttl = 1s
write_back = async
# one upload at a time: the replay after kill -9 is checked for the order
# of the closes (with several, only each file's own uploads keep order)
upload_parallel = 1

$(s3rver_cloud s3sync "$ENDPOINT" wbsync)
ttl = 1s
write_back = sync
EOF
    )
}
write_conf "$CONF" "$TEST_TMP/cache"
write_conf "$CONF2" "$TEST_TMP/cache-fresh"

check "skyfs config check accepts write_back = async and sync" \
    "$SKYFS" config check -c "$CONF"
sed '0,/^write_back = async$/s//write_back = later/' "$CONF" >"$TEST_TMP/bad.conf"
chmod 600 "$TEST_TMP/bad.conf"
check "a bad write_back value is refused, naming the line and the fix" bash -c \
    "'$SKYFS' config check -c '$TEST_TMP/bad.conf' 2>&1 | grep -q 'bad.conf:[0-9]*: write_back = \"later\" is not sync or async'"
check "skyfs config keys lists write_back" bash -c "'$SKYFS' config keys | grep -q write_back"

# the cloud's own view of KEY on CLOUD, to stdout
server_get() {
    if [ "$1" = local ]; then cat "$LOCAL/$2"; else s3curl "$ENDPOINT/wb/$2"; fi
}
server_has() { server_get "$1" "$2" >/dev/null 2>&1; }
# on_server CLOUD KEY FILE: the cloud holds exactly FILE's bytes at KEY
on_server() { server_get "$1" "$2" 2>/dev/null | cmp -s "$3" -; }
pending() { "$SKYFS" status -c "$CONF" 2>/dev/null | grep -Eo '[0-9]+ pending upload' | grep -Eo '^[0-9]+'; }
drained() { [ "$(pending)" = 0 ]; }
pending_at_least() { local n; n=$(pending); echo "pending: ${n:-?}"; [ "${n:-0}" -ge "$1" ]; }

mount_skyfs "$CONF" "$MNT" || die "cannot mount"

# --- a new file's times, as made (its create is not a write) ------------
for cloud in local s3 s3sync; do
    check_eq "$cloud: a new file, still open, has atime = mtime = ctime" "equal" \
        "$("$PYTHON" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
st = os.fstat(fd)
os.close(fd)
os.unlink(sys.argv[1])
print("equal" if st.st_atime_ns == st.st_mtime_ns == st.st_ctime_ns else
      "atime %d mtime %d ctime %d" % (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns))
' "$MNT/$cloud/new-times" 2>&1)"
done

# --- fsync waits for the upload -----------------------------------------
for cloud in local s3; do
    head -c 300000 /dev/urandom >"$SRC/fsync-$cloud"
    rm -f "$TEST_TMP/fsynced" "$TEST_TMP/release"
    "$PYTHON" - "$MNT/$cloud/fsync.bin" "$SRC/fsync-$cloud" "$TEST_TMP" <<'PY' &
import os, sys, time
path, src, tmp = sys.argv[1:]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, open(src, "rb").read())
os.fsync(fd)
open(f"{tmp}/fsynced", "w").close()
for _ in range(300):                  # hold the file open: no close yet
    if os.path.exists(f"{tmp}/release"):
        break
    time.sleep(0.1)
os.close(fd)
PY
    writer=$!
    wait_until 30 test -e "$TEST_TMP/fsynced"
    check "$cloud: right after fsync returns (file still open) the cloud holds the bytes" \
        on_server "$cloud" fsync.bin "$SRC/fsync-$cloud"
    touch "$TEST_TMP/release"
    wait "$writer"
done

# --- the server stopped: async close, sync close, fsync -----------------
# (files are created while it runs: the sync cloud's empty file goes up
# at its release, right after touch returns; waited for, so that the
# server is not stopped in the middle of it: that case, an upload the
# server stored without its answer reaching skyfs, is http_faults_*'s)
touch "$MNT/s3/down.bin" "$MNT/s3sync/down.bin"
wait_until 30 s3curl -o /dev/null "$ENDPOINT/wbsync/down.bin" ||
    die "the empty file made on s3sync never reached the server"
s3stop
head -c 200000 /dev/urandom >"$SRC/down"
check "s3 (async), server stopped: write and close return 0" cp "$SRC/down" "$MNT/s3/down.bin"
check_eq "stat shows the local size at once" 200000 "$(timeout 10 stat -c %s "$MNT/s3/down.bin")"
check "another process reads the bytes from the cache" cmp "$SRC/down" "$MNT/s3/down.bin"
check "skyfs status counts the queued upload" pending_at_least 1
check "the metrics count it" bash -c \
    "grep -Eq '^skyfs_upload_pending_files [1-9]' '$MNT/.skyfs/metrics'"
check_eq "fsync of a queued file reports the upload's error" EIO_OR_HOSTDOWN "$(
    "$PYTHON" - "$MNT/s3/down.bin" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
try:
    os.fsync(fd)
    print("no error")
except OSError as e:
    print("EIO_OR_HOSTDOWN" if e.errno in (errno.EIO, errno.EHOSTDOWN) else errno.errorcode[e.errno])
os.close(fd)
PY
)"
check_eq "s3sync (write_back = sync), server stopped: close reports the failed upload" \
    close-failed "$(
    "$PYTHON" - "$MNT/s3sync/down.bin" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"sync\n")
try:
    os.close(fd)
    print("close returned 0")
except OSError:
    print("close-failed")
PY
)"
check_fails "the queued upload is not on the server meanwhile" \
    cmp -s "$SRC/down" "$TEST_TMP/s3rver/wb/down.bin._S3rver_object"
s3start || die "cannot restart s3rver"
check "once the server is back the queued upload arrives (retried, not dropped)" \
    wait_until 90 on_server s3 down.bin "$SRC/down"
sync_file_arrived() { s3curl "$ENDPOINT/wbsync/down.bin" | grep -qx sync; }
check "and the write_back = sync file too (from the journal)" wait_until 90 sync_file_arrived

# --- operations on files whose upload may still be queued ----------------
for cloud in local s3; do
    d="$MNT/$cloud"
    head -c 150000 /dev/urandom >"$SRC/a"
    cp "$SRC/a" "$d/ren-a" && mv "$d/ren-a" "$d/ren-b"
    cp "$SRC/a" "$d/gone" && rm "$d/gone"
    cp "$SRC/a" "$d/attr" && chmod 600 "$d/attr" && touch -m -d @1000000000 "$d/attr"
    cp "$SRC/a" "$d/trunc" && truncate -s 1000 "$d/trunc"
    head -c 1000 "$SRC/a" >"$SRC/a1000"
    printf 'one\n' >"$d/append" && printf 'two\n' >>"$d/append"
    printf 'one\ntwo\n' >"$SRC/append"
    for i in $(seq 1 20); do echo "line $i" >>"$d/many"; done
    seq 1 20 | sed 's/^/line /' >"$SRC/many"
    check_eq "$cloud: stat right after chmod/utime shows the local size, mode, mtime" \
        "150000 600 1000000000" "$(stat -c '%s %a %Y' "$d/attr")"
    check "$cloud: the queue drains" wait_until 60 drained
    check "$cloud: renamed right after close: the new name holds the bytes" \
        on_server "$cloud" ren-b "$SRC/a"
    check_fails "$cloud: renamed right after close: the old name is gone" server_has "$cloud" ren-a
    check_fails "$cloud: removed right after close: not put back by its upload" server_has "$cloud" gone
    check "$cloud: chmod + utime right after close: bytes on the cloud" on_server "$cloud" attr "$SRC/a"
    check "$cloud: truncate(2) right after close: the cloud holds the first 1000 bytes" \
        on_server "$cloud" trunc "$SRC/a1000"
    check "$cloud: reopened and appended: the cloud holds both writes" on_server "$cloud" append "$SRC/append"
    check "$cloud: 20 closes of one file: the cloud holds all 20 lines" on_server "$cloud" many "$SRC/many"
done
check_eq "local: the cloud's file has the mode and mtime set right after close" "600 1000000000" \
    "$(stat -c '%a %Y' "$LOCAL/attr")"

# setxattr right after close (S3 keeps user metadata)
printf 'x\n' >"$MNT/s3/xattr" && setfattr -n user.colour -v blue "$MNT/s3/xattr"
check "s3: setxattr right after close succeeds and shows" bash -c \
    "getfattr --only-values -n user.colour '$MNT/s3/xattr' | grep -qx blue"

# cross-cloud mv right after close: the bytes come from the cache
head -c 120000 /dev/urandom >"$SRC/cross"
cp "$SRC/cross" "$MNT/s3/cross" && mv "$MNT/s3/cross" "$MNT/local/cross"
check "the queue drains again" wait_until 60 drained
# (local is async too: its copy arrives with the upload, after write_back_delay)
check "mv s3 -> local right after close: the local cloud holds the bytes" cmp "$SRC/cross" "$LOCAL/cross"
check_fails "mv s3 -> local: the S3 key is gone" s3curl -I "$ENDPOINT/wb/cross"

# a second mount with an empty cache sees what the operations left
mount_skyfs "$CONF2" "$MNT2" || die "cannot mount with an empty cache"
check_eq "s3: the object's stored mode and mtime are those set right after close" \
    "33152 1000000000" "$("$PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1]))
print(m.get("x-amz-meta-mode"), m.get("x-amz-meta-mtime"))' "$TEST_TMP/s3rver/wb/attr._S3rver_metadata.json")"
check "fresh mount, s3: the renamed file's bytes" cmp "$SRC/a" "$MNT2/s3/ren-b"
check "fresh mount, s3: the setxattr made right after close" bash -c \
    "getfattr --only-values -n user.colour '$MNT2/s3/xattr' | grep -qx blue"
check_eq "fresh mount, s3: the removed file stays removed" ENOENT "$(errno_of stat "$MNT2/s3/gone")"
unmount_skyfs "$MNT2"

# --- kill -9 with five uploads queued; replayed in order ----------------
touch "$MNT/s3/q1" "$MNT/s3/q2" "$MNT/s3/q3" "$MNT/s3/q4" "$MNT/s3/q5"
s3stop
closed=0
for i in 1 2 3 4 5; do
    head -c $((50000 + i)) /dev/urandom >"$SRC/q$i"
    cp "$SRC/q$i" "$MNT/s3/q$i" && closed=$((closed + 1))
    sleep 0.1
done
check_eq "server stopped: five files written and closed" 5 "$closed"
check "five uploads are queued" pending_at_least 5
daemon=$(daemon_pids "$MNT")
check "the daemon is running" test -n "$daemon"
# shellcheck disable=SC2086
kill -9 $daemon
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
check "after kill -9 the journal still holds them" pending_at_least 5
s3start || die "cannot restart s3rver"
mount_skyfs "$CONF" "$MNT" || die "cannot remount after kill -9"
check "the next mount uploads them all" wait_until 60 drained
bad=0
for i in 1 2 3 4 5; do on_server s3 "q$i" "$SRC/q$i" || bad=$((bad + 1)); done
check_eq "all five are intact on the server" 0 "$bad"
check_eq "the server received them in the order they were closed" "q1 q2 q3 q4 q5" "$(
    "$PYTHON" - "$TEST_TMP/s3rver/wb" <<'PY'
import os, sys
d = sys.argv[1]
names = [f"q{i}" for i in range(1, 6)]
print(" ".join(sorted(names, key=lambda n: os.stat(f"{d}/{n}._S3rver_object").st_mtime_ns)))
PY
)"
unmount_skyfs "$MNT"

# --- a power cut after mkdir d; echo x >d/f, on a cloud with real folders -
# The folder is made in the cache only (created on the cloud before the
# file's upload), and close syncs the file's journal entry, not the
# metadata cache: a power cut may lose the folder's entry (and the
# file's) while the journal keeps the file.  Simulated here by kill -9
# within the settle delay, then removing those entries from the metadata
# cache; the next mount must still put the file on the cloud, making its
# folders first.
LOCAL3="$TEST_TMP/data/local3"
mkdir -p "$LOCAL3" "$TEST_TMP/cache3"
(umask 077 && cat >"$TEST_TMP/power.conf" <<EOF
[cache]
dir = $TEST_TMP/cache3

[local]
type = local
path = $LOCAL3
write_back = async
write_back_delay = 5s
EOF
)
MNT3="$TEST_TMP/mnt3"
mount_skyfs "$TEST_TMP/power.conf" "$MNT3" || die "cannot mount the power-cut cloud"
echo "in a new folder" >"$SRC/pf"
check "mkdir -p and a file in the new folder" bash -c \
    "mkdir -p '$MNT3/local/pd/sub' && cp '$SRC/pf' '$MNT3/local/pd/sub/f'"
daemon=$(daemon_pids "$MNT3")
# shellcheck disable=SC2086
kill -9 $daemon
fusermount3 -u -z "$MNT3" 2>/dev/null || umount -l "$MNT3" 2>/dev/null
check "killed within the delay: the folder was not on the cloud yet" bash -c "! test -e '$LOCAL3/pd'"
check_eq "the power cut's loss: the folders' and the file's entries dropped from the metadata cache" 3 "$(
    "$PYTHON" - "$TEST_TMP/cache3/meta.db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
n = con.execute("DELETE FROM entries WHERE cloud='local' AND (path='pd' OR path LIKE 'pd/%')").rowcount
con.commit()
print(n)
PY
)"
mount_skyfs "$TEST_TMP/power.conf" "$MNT3" || die "cannot mount after the power cut"
check "the file went up all the same, into the folders made for it" \
    wait_until 30 cmp -s "$SRC/pf" "$LOCAL3/pd/sub/f"
unmount_skyfs "$MNT3"
