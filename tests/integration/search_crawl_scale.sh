#!/usr/bin/env bash
# search_crawl_scale.sh - the background crawl of a 100,000-object bucket,
# in bounded memory (issue 19).
#
# An s3rver bucket of 100,000 objects in directories of 1,000.  PUTting
# them through s3rver's HTTP API takes about 6 minutes on the development
# machine (~275 PUTs/s), so the objects are written in s3rver's own
# storage layout (the three files its PUT writes for a key: the body, its
# MD5, its metadata) before it starts; a GET and a HEAD through its S3
# API check that it serves them.  Every LIST the crawl sends goes to
# s3rver over HTTP, as in real use.
#
# One mount crawls it (symlinks = no: these 1-byte objects would otherwise
# each be asked whether they are symlinks, one HEAD apiece).  The daemon's
# peak resident memory (VmHWM in /proc) is read once the crawl has stored
# 10,000 entries (skyfs status --json: crawl_entries) and again when it is
# complete: the crawl streams entries into SQLite in batches, so the peak
# must not grow by more than 8 MiB over the other 90,000 (holding the
# listing in memory would cost about 30 MiB more).  Also checked: every
# object is found by skyfs search, the crawl sent exactly one LIST per
# 1,000 objects and no HEAD.  The figures are printed (and kept in the
# test's log folder).
. "$(dirname "$0")/lib.sh"

# Under a sanitizer or valgrind the daemon is several times slower and
# keeps freed memory in quarantine, so the crawl gets more time and its
# peak memory says nothing about skyfs: the bound is then not checked
# (and the test says so).
INSTRUMENTED=0
if [ "${SKY_VALGRIND:-0}" = 1 ] || grep -qa __asan_init "$BUILD/skyfs"; then
    INSTRUMENTED=1
fi
CRAWL_LIMIT=$((INSTRUMENTED ? 540 : 170))

PORT=$(free_port)
S3="http://127.0.0.1:$PORT"
STORE="$TEST_TMP/s3rver"
MNT="$TEST_TMP/mnt"
BIG=100000
EARLY=10000

# make_objects BUCKET N: N one-byte objects d000/f000000.dat ... written in
# s3rver's filesystem layout.
make_objects() {
    "$PYTHON" - "$STORE/$1" "$2" <<'EOF'
import hashlib, os, sys
root, n = sys.argv[1], int(sys.argv[2])
body = b"x"
md5 = hashlib.md5(body).hexdigest()
meta = '{\n  "content-type": "binary/octet-stream"\n}'
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    base = os.path.join(d, "f%06d.dat._S3rver_" % i)
    with open(base + "object", "wb") as f:
        f.write(body)
    with open(base + "object.md5", "w") as f:
        f.write(md5)
    with open(base + "metadata.json", "w") as f:
        f.write(meta)
EOF
}

t0=$SECONDS
check "write $BIG objects in s3rver's layout" make_objects big $BIG
record ok "objects written in $((SECONDS - t0)) s"

[ -f "$SERVERS_DIR/s3rver/bin/s3rver.js" ] || die "s3rver is not installed (run make deps)"
# its request log on: one line per request, so LISTs and HEADs can be counted
_start_server s3rver "$PORT" "$S3/" env NODE_OPTIONS=--openssl-legacy-provider \
    node "$SERVERS_DIR/s3rver/bin/s3rver.js" -d "$STORE" -a 127.0.0.1 -p "$PORT" ||
    die "cannot start s3rver"
S3_LOG="$LOGS/s3rver-$PORT.log"
check_eq "s3rver serves an object written that way (GET)" x "$(s3curl "$S3/big/d099/f099999.dat")"
check "and answers a HEAD for it" s3curl -I "$S3/big/d000/f000000.dat"

write_conf() { # write_conf CONFIG CACHE BUCKET
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

$(s3rver_cloud "$3" "$S3" "$3")
symlinks = no
index_interval = 1h
EOF
)
}

index_field() { # index_field CONFIG CLOUD FIELD: a field of skyfs status --json's index
    "$SKYFS" status -c "$1" --json | "$PYTHON" -c '
import json, sys
for c in json.load(sys.stdin)["clouds"]:
    if c["name"] == sys.argv[1]:
        print(c["index"][sys.argv[2]])' "$2" "$3"
}
complete() { [ "$(index_field "$1" "$2" state)" = complete ]; }
MISSED=0
past_early() {
    local n
    n=$(index_field "$1" "$2" crawl_entries)
    [ "$n" != None ] && [ "$n" -ge "$EARLY" ] && return 0
    complete "$1" "$2" && MISSED=1      # over before it could be sampled
}
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
requests() { sleep 0.5; grep -cE "$1" "$S3_LOG"; }

bucket=big
conf="$TEST_TMP/big.conf"
write_conf "$conf" "$TEST_TMP/cache-big" big
lists=$(requests 'Fetched bucket "big"')
heads=$(requests 'HEAD /big/')
t=$SECONDS
mount_skyfs "$conf" "$MNT" || die "cannot mount"
pid=$(daemon_pids "$MNT" | head -n 1)
check "the crawl stores its first $EARLY entries" wait_until "$CRAWL_LIMIT" past_early "$conf" big
EARLY_HWM=$(hwm_kib "$pid")
[ "$MISSED" = 0 ] || record FAIL "the crawl ended before its memory could be read at $EARLY entries"
check "the crawl of $BIG objects completes" wait_until "$CRAWL_LIMIT" complete "$conf" big
SECS=$((SECONDS - t))
HWM=$(hwm_kib "$pid")
check_eq "skyfs search finds all $BIG objects" "$BIG" \
    "$("$SKYFS" search -c "$conf" --type f '*.dat' 2>/dev/null | wc -l)"
check_eq "and their $((BIG / 1000)) directories" "$((BIG / 1000))" \
    "$("$SKYFS" search -c "$conf" --type d 'd[0-9]*' 2>/dev/null | wc -l)"
check_eq "the crawl sent one LIST per 1,000 objects" "$((BIG / 1000))" \
    "$(( $(requests 'Fetched bucket "big"') - lists ))"
check_eq "and no HEAD" 0 "$(( $(requests 'HEAD /big/') - heads ))"
{
    echo "crawl of $BIG objects: $SECS s to complete; daemon VmHWM $((EARLY_HWM / 1024)) MiB" \
         "after $EARLY entries, $((HWM / 1024)) MiB at the end"
    grep -h "cloud 'big': crawl 1 complete" "$LOGS/mnt.log"
    "$SKYFS" status -c "$conf" | grep -A1 -E "^  big "
} | tee "$LOGS/figures.txt"
record ok "figures: $(tr '\n' ' ' <"$LOGS/figures.txt")"
unmount_skyfs "$MNT"
if [ "$INSTRUMENTED" = 1 ]; then
    record ok "peak memory not compared: this skyfs runs under a sanitizer or valgrind (quarantined memory)"
else
    check "the daemon's peak memory grew by less than 8 MiB from $EARLY to $BIG entries" \
        test $((HWM - EARLY_HWM)) -lt 8192
fi
