#!/usr/bin/env bash
# metrics_prom.sh - the metrics in the Prometheus text format: the file
# MOUNTPOINT/.skyfs/metrics, `skyfs metrics MOUNTPOINT` and the HTTP
# listener ([daemon] metrics_listen), over a local cloud and an S3 cloud
# (s3rver).
#
# Checks:
#   - each of the three parses as Prometheus text (`promtool check
#     metrics`, Debian's prometheus package: the test fails if it is
#     missing) and holds the series the README lists;
#   - the counters move: writing a file to S3 counts PUTs and bytes sent,
#     reading it from an empty cache counts GETs, bytes received and block
#     misses, reading it again counts block hits, a stat of a fresh entry a
#     metadata hit; the pending uploads show while a file is open and
#     written, and go back to 0 after its close;
#   - a cloud that stops answering shows skyfs_cloud_online 0 and
#     network errors; the listener answers 404 off /metrics and 405 to a
#     POST; the file is read-only;
#   - a metrics_listen port already in use fails the mount with FILE:LINE,
#     and a bad metrics_listen or log_level fails config check with the line.
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null 2>&1 ||
    die "promtool is missing: install Debian's prometheus package (make deps)"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
MPORT=$(free_port)
MNT="$TEST_TMP/mnt"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket data || die "cannot start s3rver"

mkdir -p "$TEST_TMP/docs" "$TEST_TMP/cache"
echo "local file" >"$TEST_TMP/docs/a.txt"
(umask 077 && cat >"$TEST_TMP/m.conf" <<EOF
[cache]
dir = $TEST_TMP/cache

[daemon]
log_level = info
metrics_listen = 127.0.0.1:$MPORT

[docs]
type = local
path = $TEST_TMP/docs
ttl = 30s

$(s3rver_cloud s3 "$ENDPOINT" data)
ttl = 30s
retries = 0
connect_timeout = 2s
timeout = 5s
EOF
)
check "config check accepts [daemon] log_level and metrics_listen" \
    "$SKYFS" config check -c "$TEST_TMP/m.conf"
mount_skyfs "$TEST_TMP/m.conf" "$MNT" || die "cannot mount"

# snapshot: the metrics file now, into $TEST_TMP/now.
# value NAME [LABELS]: a sample's value in $TEST_TMP/now (0 when absent).
snapshot() { cat "$MNT/.skyfs/metrics" >"$TEST_TMP/now"; }
value() {
    local name=$1
    [ -n "${2:-}" ] && name="$1{$2}"
    awk -v n="$name" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }' \
        "$TEST_TMP/now"
}
# grew NAME LABELS BEFORE: after a new snapshot, the sample is larger than BEFORE
grew() { snapshot; awk -v a="$(value "$1" "$2")" -v b="$3" 'BEGIN { exit !(a > b) }'; }

snapshot
check "the metrics file parses as Prometheus text (promtool check metrics)" \
    promtool check metrics <"$TEST_TMP/now"
for series in skyfs_build_info skyfs_cloud_requests_total skyfs_cloud_request_duration_seconds \
    skyfs_cloud_sent_bytes_total skyfs_cloud_received_bytes_total \
    skyfs_cloud_request_retries_total skyfs_cloud_online skyfs_cloud_operations_total \
    skyfs_cache_metadata_hits_total skyfs_cache_metadata_misses_total \
    skyfs_cache_block_hits_total skyfs_cache_block_misses_total skyfs_cache_bytes \
    skyfs_cache_limit_bytes skyfs_upload_pending_files skyfs_upload_pending_bytes \
    skyfs_upload_retries_total; do
    check "the metrics hold the family $series" grep -q "^# TYPE $series " "$TEST_TMP/now"
done
check_eq "the cache limit is max_size (10G)" 10737418240 "$(value skyfs_cache_limit_bytes)"
check_eq "both clouds are online" "1 1" \
    "$(value skyfs_cloud_online 'cloud="docs"') $(value skyfs_cloud_online 'cloud="s3"')"

# --- writes: PUTs and bytes sent; a written file is pending until its close
head -c $((3 << 20)) /dev/urandom >"$TEST_TMP/payload"
# a writer that keeps its file open (a shell redirection would close a
# duplicate of the descriptor, and that close uploads)
"$PYTHON" - "$MNT/s3/pending.bin" "$TEST_TMP/written" "$TEST_TMP/go" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"abc")
open(sys.argv[2], "w").close()
for _ in range(300):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.1)
os.close(fd)
PY
writer=$!
check "the writer wrote" wait_until 60 test -e "$TEST_TMP/written"
snapshot
check_eq "a written, open file is one pending upload" 1 "$(value skyfs_upload_pending_files)"
check_eq "... of 3 bytes" 3 "$(value skyfs_upload_pending_bytes)"
touch "$TEST_TMP/go"
wait "$writer"
check "after its close nothing is pending" \
    wait_until 60 eval 'snapshot; [ "$(value skyfs_upload_pending_files)" = 0 ]'
snapshot
puts=$(value skyfs_cloud_requests_total 'cloud="s3",method="PUT",outcome="success"')
sent=$(value skyfs_cloud_sent_bytes_total 'cloud="s3"')
check "cp of 3 MiB to the S3 cloud" cp "$TEST_TMP/payload" "$MNT/s3/payload.bin"
check "a PUT to s3 is counted as a success" \
    grew skyfs_cloud_requests_total 'cloud="s3",method="PUT",outcome="success"' "$puts"
check "the bytes sent to s3 grew by at least 3 MiB" \
    awk -v a="$(value skyfs_cloud_sent_bytes_total 'cloud="s3"')" -v b="$sent" \
        'BEGIN { exit !(a - b >= 3 * 1048576) }'
check "the PUT latency histogram counts it" \
    grew skyfs_cloud_request_duration_seconds_count 'cloud="s3",method="PUT"' 0

# --- reads: an empty cache fetches (GET, bytes received, block misses)
check "cache evict of the file" "$SKYFS" cache evict "$MNT/s3/payload.bin"
snapshot
gets=$(value skyfs_cloud_requests_total 'cloud="s3",method="GET",outcome="success"')
received=$(value skyfs_cloud_received_bytes_total 'cloud="s3"')
misses=$(value skyfs_cache_block_misses_total)
check "the evicted file reads back from S3" cmp "$TEST_TMP/payload" "$MNT/s3/payload.bin"
check "GETs to s3 grew" \
    grew skyfs_cloud_requests_total 'cloud="s3",method="GET",outcome="success"' "$gets"
check "the bytes received from s3 grew by at least 3 MiB" \
    awk -v a="$(value skyfs_cloud_received_bytes_total 'cloud="s3"')" -v b="$received" \
        'BEGIN { exit !(a - b >= 3 * 1048576) }'
check "block misses grew" grew skyfs_cache_block_misses_total "" "$misses"
hits=$(value skyfs_cache_block_hits_total)
check "reading it again with O_DIRECT (served by the block cache)" \
    dd if="$MNT/s3/payload.bin" of=/dev/null iflag=direct bs=1M status=none
check "block hits grew" grew skyfs_cache_block_hits_total "" "$hits"
check "the cache holds the file's bytes" \
    awk -v a="$(value skyfs_cache_bytes)" 'BEGIN { exit !(a >= 3 * 1048576) }'
check "listing the local cloud" ls "$MNT/docs"
snapshot
meta_hits=$(value skyfs_cache_metadata_hits_total)
check "listing it again (within its ttl)" ls "$MNT/docs"
check "metadata hits grew" grew skyfs_cache_metadata_hits_total "" "$meta_hits"
snapshot
ops=$(value skyfs_cloud_operations_total 'cloud="docs"')
check_eq "reading a file of the local cloud" "local file" "$(cat "$MNT/docs/a.txt" 2>&1)"
check "the local cloud's driver calls are counted" \
    grew skyfs_cloud_operations_total 'cloud="docs"' "$ops"

# --- the background index crawl (fs/crawl.c) of each cloud
check "the local cloud's first index crawl is counted" \
    wait_until 60 grew skyfs_index_crawls_total 'cloud="docs"' 0
check "its entries are counted (a.txt at least)" \
    grew skyfs_index_crawl_entries_total 'cloud="docs"' 0
check_eq "no crawl of the local cloud failed" 0 \
    "$(value skyfs_index_crawl_failures_total 'cloud="docs"')"
check "the crawl families parse with the rest (promtool)" promtool check metrics <"$TEST_TMP/now"

# --- skyfs metrics and the listener give the same families
check "skyfs metrics MOUNTPOINT prints the metrics" \
    eval '"$SKYFS" metrics "$MNT" >"$TEST_TMP/cli" && promtool check metrics <"$TEST_TMP/cli"'
check "skyfs metrics shows the same families as the file" \
    diff <(grep '^# TYPE' "$TEST_TMP/now") <(grep '^# TYPE' "$TEST_TMP/cli")
check_fails "skyfs metrics of a directory that is no mount fails" "$SKYFS" metrics "$TEST_TMP"
check "the HTTP listener serves /metrics" \
    curl -sf -o "$TEST_TMP/http" "http://127.0.0.1:$MPORT/metrics"
check "the listener's text parses as Prometheus text" promtool check metrics <"$TEST_TMP/http"
check "the listener shows the same families" \
    diff <(grep '^# TYPE' "$TEST_TMP/now") <(grep '^# TYPE' "$TEST_TMP/http")
check "the listener's counters are the mount's (PUTs to s3)" \
    grep -q '^skyfs_cloud_requests_total{cloud="s3",method="PUT",outcome="success"} [1-9]' \
    "$TEST_TMP/http"
check_eq "the listener answers 404 off /metrics" 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/secrets")"
check_eq "the listener answers 405 to a POST" 405 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$MPORT/metrics")"
check_eq "the listener's content type is Prometheus text 0.0.4" \
    "text/plain; version=0.0.4; charset=utf-8" \
    "$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$MPORT/metrics")"
check_eq "the metrics file cannot be opened for writing" EACCES \
    "$("$PYTHON" -c 'import errno, os, sys
try:
    os.open(sys.argv[1], os.O_WRONLY); print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$MNT/.skyfs/metrics")"

# --- a cloud that stops answering
stop_servers
snapshot
# network_errors: the sum over every method of s3's network errors
network_errors() {
    snapshot
    awk '/^skyfs_cloud_requests_total\{cloud="s3",.*outcome="network_error"\}/ { n += $2 }
         END { print n + 0 }' "$TEST_TMP/now"
}
neterr=$(network_errors)
check "an append to a file of the stopped S3 (its upload fails: kept in the journal)" \
    sh -c "echo more >>'$MNT/s3/pending.bin'"
check "skyfs_cloud_online of s3 drops to 0" \
    wait_until 60 eval 'snapshot; [ "$(value skyfs_cloud_online "cloud=\"s3\"")" = 0 ]'
check "network errors of s3 are counted" [ "$(network_errors)" -gt "$neterr" ]
check_eq "the local cloud stays online" 1 "$(value skyfs_cloud_online 'cloud="docs"')"
check_eq "the failed upload is pending" "1 8" \
    "$(value skyfs_upload_pending_files) $(value skyfs_upload_pending_bytes)"
check "the metrics still parse" promtool check metrics <"$TEST_TMP/now"
"$SKYFS" unmount --timeout 5 "$MNT" >/dev/null 2>&1
_force_unmount "$MNT"

# --- wrong settings
sed "s/^metrics_listen = .*/metrics_listen = localhost:80x/" "$TEST_TMP/m.conf" \
    >"$TEST_TMP/bad1.conf"
chmod 600 "$TEST_TMP/bad1.conf"
check_fails "config check refuses metrics_listen = localhost:80x" \
    "$SKYFS" config check -c "$TEST_TMP/bad1.conf"
"$SKYFS" config check -c "$TEST_TMP/bad1.conf" >"$TEST_TMP/bad1.out" 2>&1
check "... naming the file and line" grep -qF \
    "$TEST_TMP/bad1.conf:6: metrics_listen = \"localhost:80x\" is not an address" "$TEST_TMP/bad1.out"
sed "s/^log_level = .*/log_level = loud/" "$TEST_TMP/m.conf" >"$TEST_TMP/bad2.conf"
chmod 600 "$TEST_TMP/bad2.conf"
"$SKYFS" config check -c "$TEST_TMP/bad2.conf" >"$TEST_TMP/bad2.out" 2>&1
check "config check refuses log_level = loud, naming the line and the levels" grep -qF \
    "bad2.conf:5: log_level = \"loud\" is not a level; write debug, info, warn or error" \
    "$TEST_TMP/bad2.out"

# a port in use: the mount fails, says where, and mounts nothing. The
# stopped mount's daemon may still hold the port for a moment: wait until
# it is free, then hold it ourselves and say so in a file once listening.
wait_until 30 eval '"$PYTHON" -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", int(sys.argv[1])))" "$MPORT" 2>/dev/null'
rm -f "$TEST_TMP/holding"
"$PYTHON" -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
open(sys.argv[2], "w").close(); time.sleep(60)' "$MPORT" "$TEST_TMP/holding" &
holder=$!
check "a helper holds the metrics port" wait_until 30 test -e "$TEST_TMP/holding"
sed -i '/^\[s3\]/,$d' "$TEST_TMP/m.conf"      # the local cloud alone
mkdir -p "$TEST_TMP/mnt2"
echo "$TEST_TMP/mnt2" >>"$_SKY_MOUNTS"
"$SKYFS" mount -c "$TEST_TMP/m.conf" "$TEST_TMP/mnt2" >"$TEST_TMP/inuse.out" 2>&1
rc=$?
kill "$holder" 2>/dev/null
check_eq "a metrics_listen port in use fails the mount" 1 "$rc"
check "... with FILE:LINE and the address" \
    grep -qF "$TEST_TMP/m.conf:6: metrics_listen 127.0.0.1:$MPORT: cannot listen there" \
    "$TEST_TMP/inuse.out"
check_fails "... and nothing is mounted" mountpoint -q "$TEST_TMP/mnt2"
