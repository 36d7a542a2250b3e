#!/usr/bin/env bash
# search_crawl_scale.sh - the background crawl of a 100,000-object bucket,
# in bounded memory (issue 19).
#
# Two s3rver buckets, "small" (10,000 objects) and "big" (100,000), in
# directories of 1,000.  PUTting 110,000 objects through s3rver's HTTP API
# takes about 7 minutes on the development machine (~275 PUTs/s), so the
# objects are written in s3rver's own storage layout (the three files its
# PUT writes for a key: the body, its MD5, its metadata) before it starts;
# a GET and a HEAD through its S3 API check that it serves them.  Every
# LIST the crawl sends goes to s3rver over HTTP, as in real use.
#
# Each bucket is crawled by a mount of its own (symlinks = no: these
# 1-byte objects would otherwise each be asked whether they are symlinks,
# one HEAD apiece); once skyfs status says the crawl is complete the
# daemon's peak resident memory (VmHWM in /proc) is read.  The crawl
# streams entries into SQLite in batches, so the peak for 100,000 objects
# must not exceed the peak for 10,000 by more than 8 MiB (holding the
# listing in memory would cost about 30 MiB more).  Also checked: every
# object is found by skyfs search, the crawl sent exactly one LIST per
# 1,000 objects and no HEAD.  The figures are printed (and kept in the
# test's log folder).
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
S3="http://127.0.0.1:$PORT"
STORE="$TEST_TMP/s3rver"
MNT="$TEST_TMP/mnt"
SMALL=10000
BIG=100000

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
check "write $SMALL objects in s3rver's layout" make_objects small $SMALL
check "write $BIG objects in s3rver's layout" make_objects big $BIG
record ok "objects written in $((SECONDS - t0)) s"

[ -f "$SERVERS_DIR/s3rver/bin/s3rver.js" ] || die "s3rver is not installed (run make deps)"
# its request log on: one line per request, so LISTs and HEADs can be counted
_start_server s3rver "$PORT" "$S3/" env NODE_OPTIONS=--openssl-legacy-provider \
    node "$SERVERS_DIR/s3rver/bin/s3rver.js" -d "$STORE" -a 127.0.0.1 -p "$PORT" ||
    die "cannot start s3rver"
S3_LOG="$LOGS/s3rver-$PORT.log"
check_eq "s3rver serves an object written that way (GET)" x "$(s3curl "$S3/big/d099/f099999.dat")"
check "and answers a HEAD for it" s3curl -I "$S3/small/d009/f009999.dat"

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

state_of() { # state_of CONFIG CLOUD: the index state skyfs status --json gives
    "$SKYFS" status -c "$1" --json | "$PYTHON" -c '
import json, sys
for c in json.load(sys.stdin)["clouds"]:
    if c["name"] == sys.argv[1]:
        print(c["index"]["state"])' "$2"
}
complete() { [ "$(state_of "$1" "$2")" = complete ]; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
requests() { sleep 0.5; grep -cE "$1" "$S3_LOG"; }

# crawl BUCKET N: mounts a cloud over BUCKET, waits for its first crawl,
# checks what it found and sent; sets HWM (KiB) and SECS.
crawl() {
    local bucket=$1 n=$2 conf="$TEST_TMP/$1.conf" pid lists heads t found
    write_conf "$conf" "$TEST_TMP/cache-$bucket" "$bucket"
    lists=$(requests "Fetched bucket \"$bucket\"")
    heads=$(requests "HEAD /$bucket/")
    t=$SECONDS
    mount_skyfs "$conf" "$MNT" || die "cannot mount"
    pid=$(daemon_pids "$MNT" | head -n 1)
    check "the crawl of $n objects completes" wait_until 170 complete "$conf" "$bucket"
    SECS=$((SECONDS - t))
    HWM=$(hwm_kib "$pid")
    found=$("$SKYFS" search -c "$conf" --type f '*.dat' 2>/dev/null | wc -l)
    check_eq "skyfs search finds all $n objects" "$n" "$found"
    check_eq "and their $((n / 1000)) directories" "$((n / 1000))" \
        "$("$SKYFS" search -c "$conf" --type d 'd[0-9]*' 2>/dev/null | wc -l)"
    check_eq "the crawl sent one LIST per 1,000 objects" "$((n / 1000))" \
        "$(( $(requests "Fetched bucket \"$bucket\"") - lists ))"
    check_eq "and no HEAD" 0 "$(( $(requests "HEAD /$bucket/") - heads ))"
    "$SKYFS" status -c "$conf" | grep -A1 -E "^  $bucket " >"$LOGS/status-$bucket.txt"
    unmount_skyfs "$MNT"
}

crawl small $SMALL
SMALL_HWM=$HWM
SMALL_SECS=$SECS
crawl big $BIG
BIG_HWM=$HWM
BIG_SECS=$SECS
{
    echo "crawl of $SMALL objects: ${SMALL_SECS} s to complete, daemon VmHWM $((SMALL_HWM / 1024)) MiB"
    echo "crawl of $BIG objects: ${BIG_SECS} s to complete, daemon VmHWM $((BIG_HWM / 1024)) MiB"
    cat "$LOGS/status-small.txt" "$LOGS/status-big.txt"
} | tee "$LOGS/figures.txt"
record ok "figures: $(tr '\n' ' ' <"$LOGS/figures.txt")"
check "the daemon's peak memory for $BIG objects is within 8 MiB of that for $SMALL" \
    test $((BIG_HWM - SMALL_HWM)) -lt 8192
