#!/usr/bin/env bash
# sftp_data.sh - data over an SFTP cloud (OpenSSH's sshd on 127.0.0.1).
#
# Clouds: "sftp" (root $TEST_TMP/remote on the server), "loc" (a local
# folder) and "s3" (s3rver).  Checks:
#   - a 100 MiB file written through the mount lands on the server byte for
#     byte, and one put on the server reads back byte for byte (pipelined
#     reads), also from a random offset;
#   - a directory of 5,000 files made on the server is listed whole;
#   - files made, changed and deleted on the server directly show up after
#     the TTL;
#   - cp and mv between the SFTP cloud and the local and S3 clouds;
#   - a dropped SSH connection is re-established and the request retried;
#   - a dead server marks the cloud offline (cached files still read, the
#     other clouds unaffected), and it is back once sshd is.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp_lib.sh"

PORT=$(free_port)
S3_PORT=$(free_port)
SSHD="$TEST_TMP/sshd"
REMOTE="$TEST_TMP/remote"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
NFILES=5000
mkdir -p "$REMOTE" "$TEST_TMP/cache" "$TEST_TMP/local"

start_sshd "$SSHD" "$PORT" || die "cannot start sshd"
start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket data || die "cannot start s3rver"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache
max_size = 1G

$(sftp_cloud sftp "$PORT" "$SSHD" "$REMOTE")

[loc]
type = local
path = $TEST_TMP/local
ttl = 1s

$(s3rver_cloud s3 "http://127.0.0.1:$S3_PORT" data)
ttl = 1s
EOF
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
S="$MNT/sftp"
sha() { sha256sum "$1" 2>&1 | cut -d' ' -f1; }

# --- 100 MiB both ways
head -c $((100 << 20)) /dev/urandom >"$TEST_TMP/big"
want=$(sha "$TEST_TMP/big")
check "cp of a 100 MiB file into the SFTP cloud" cp "$TEST_TMP/big" "$S/big.bin"
check_eq "the server holds the same 100 MiB" "$want" "$(sha "$REMOTE/big.bin")"
check_eq "no temporary upload name is left" "" "$(ls -A "$REMOTE" | grep skyfs-tmp)"
head -c $((100 << 20)) /dev/urandom >"$REMOTE/server-big.bin"
check_eq "a 100 MiB file put on the server reads back byte for byte" \
    "$(sha "$REMOTE/server-big.bin")" \
    "$(wait_until 5 test -f "$S/server-big.bin"; sha "$S/server-big.bin")"
check_eq "a range from an odd offset reads right" \
    "$(tail -c +$((77 << 20 | 12345)) "$REMOTE/server-big.bin" | head -c 3000000 | sha256sum | cut -d' ' -f1)" \
    "$(tail -c +$((77 << 20 | 12345)) "$S/server-big.bin" | head -c 3000000 | sha256sum | cut -d' ' -f1)"
rm -f "$REMOTE/server-big.bin" "$TEST_TMP/big"

# --- 5,000 files made on the server
mkdir "$REMOTE/many"
"$PYTHON" - "$REMOTE/many" "$NFILES" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"f{i:05d}.txt"), "w") as f:
        f.write(str(i))
EOF
# (the crawl may list the folder while the files are made: its listing is
# then the cache's answer for the ttl, 1 s)
check "ls lists all $NFILES files" wait_until 10 eval '[ "$(ls "$S/many" | wc -l)" = "$NFILES" ]'
check_eq "the listing holds all $NFILES files" "$NFILES" "$(ls "$S/many" | wc -l)"
check_eq "the listing has the names" "f00000.txt f02500.txt f04999.txt" \
    "$(ls "$S/many" | grep -E '^f(00000|02500|04999)\.txt$' | paste -sd' ')"
check_eq "ls -l shows sizes from the listing" "4" "$(stat -c %s "$S/many/f04999.txt")"
check_eq "a listed file reads" "2500" "$(cat "$S/many/f02500.txt")"

# --- changes made on the server directly
echo "first" >"$REMOTE/ext.txt"
check "a file made on the server appears after the TTL" wait_until 10 test -f "$S/ext.txt"
check_eq "its content" "first" "$(cat "$S/ext.txt")"
sleep 1.1               # a new mtime second: SFTP v3 times are whole seconds
echo "second version" >"$REMOTE/ext.txt"
check "a change on the server shows after the TTL" \
    wait_until 10 eval '[ "$(cat "$S/ext.txt")" = "second version" ]'
mkdir "$REMOTE/extdir"
check "a directory made on the server appears" wait_until 10 test -d "$S/extdir"
rm "$REMOTE/ext.txt"
check "a file deleted on the server disappears after the TTL" wait_until 10 test ! -e "$S/ext.txt"

# --- cp and mv between clouds
echo "from local" >"$MNT/loc/l.txt"
echo "from s3" >"$MNT/s3/s.txt"
echo "from sftp" >"$S/f.txt"
check "cp local -> sftp" cp "$MNT/loc/l.txt" "$S/l.txt"
check_eq "the server has it" "from local" "$(cat "$REMOTE/l.txt")"
check "mv s3 -> sftp" mv "$MNT/s3/s.txt" "$S/s.txt"
check_eq "the server has the moved file" "from s3" "$(cat "$REMOTE/s.txt")"
check "the S3 source is gone" test ! -e "$MNT/s3/s.txt"
check "cp sftp -> s3" cp "$S/f.txt" "$MNT/s3/f.txt"
check_eq "S3 has it" "from sftp" "$(cat "$MNT/s3/f.txt")"
check "mv sftp -> local" mv "$S/f.txt" "$MNT/loc/f.txt"
check_eq "the local folder has it" "from sftp" "$(cat "$TEST_TMP/local/f.txt")"
check_eq "the server no longer has it" no "$(test -e "$REMOTE/f.txt" && echo yes || echo no)"
check "cp -r of a tree local -> sftp" cp -r "$TEST_TMP/local" "$S/tree"
check_eq "the tree is on the server" "f.txt l.txt" "$(ls "$REMOTE/tree" | paste -sd' ')"

# --- a dropped connection: sshd's per-connection processes are ended
sshd_pid=$(head -n1 "$_SKY_PIDS")
for p in $(pgrep -P "$sshd_pid"); do kill "$p"; done
sleep 1.2
echo "after the drop" >"$REMOTE/drop.txt"
check_eq "after the connections dropped, a new file is listed and read" "after the drop" \
    "$(wait_until 10 test -f "$S/drop.txt"; cat "$S/drop.txt" 2>&1)"
check "the daemon reconnected (its log says so)" grep -q "reconnecting" "$LOGS/mnt.log"

# --- a dead server: the cloud goes offline, then comes back
cat "$S/l.txt" >/dev/null
children=$(pgrep -P "$sshd_pid")
kill "$sshd_pid"
for p in $children; do kill "$p"; done
check "sshd stopped" wait_until 10 eval '! kill -0 '"$sshd_pid"' 2>/dev/null'
sleep 1.2
ls "$S" >/dev/null 2>&1
check "skyfs status says the SFTP cloud is offline" \
    wait_until 20 bash -c "'$SKYFS' status -c '$CONF' | grep -E '^ *sftp' | grep -q offline"
check_eq "a cached file still reads while offline" "from local" "$(cat "$S/l.txt" 2>&1)"
check_eq "the other clouds still work" "from sftp" "$(cat "$MNT/loc/f.txt" 2>&1)"
"/usr/sbin/sshd" -D -e -f "$SSHD/sshd_config" >>"$LOGS/sshd-$PORT.log" 2>&1 </dev/null &
echo $! >>"$_SKY_PIDS"
check "once sshd is back the cloud is online again" \
    wait_until 60 bash -c "'$SKYFS' status -c '$CONF' | grep -E '^ *sftp' | grep -q online"
echo "back" >"$REMOTE/back.txt"
check_eq "and new files show" "back" "$(wait_until 10 test -f "$S/back.txt"; cat "$S/back.txt" 2>&1)"

unmount_skyfs "$MNT"
