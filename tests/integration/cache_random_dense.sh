#!/usr/bin/env bash
# cache_random_dense.sh - dense random reads fetch large pieces and fill
# the file; sparse random reads stay small.
#
# On s3rver, behind listing_proxy.py (which logs every request), with
# block_size = 1M:
#   - sparse: 12 random 4 KiB reads of a 128 MiB object, each in another
#     block (12 of 128 blocks): right bytes, one GET of a 64 KiB chunk each,
#     less than 1 MiB cached, and no GET more for that object afterwards
#     (no background fill);
#   - dense: 1,024 random 4 KiB reads of a 64 MiB object: right bytes, far
#     fewer GETs than reads (the reader switches to whole blocks, then the
#     rest of the file comes in the background in runs of blocks), and the
#     whole object ends up cached while the file is open;
#   - offline (server stopped, fresh mount on the same cache): the whole
#     64 MiB object reads back byte for byte from the cache.
# The cloud has timeout = 10m, so a slow machine's stalls do not re-send.
. "$(dirname "$0")/lib.sh"

MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
start_s3rver_behind logging dense || die "cannot start s3rver behind listing_proxy.py"

mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache
block_size = 1M

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" dense)
ttl = 1h
timeout = 10m
EOF
)

head -c $((64 << 20)) /dev/urandom >"$TEST_TMP/dense.bin"
head -c $((128 << 20)) /dev/urandom >"$TEST_TMP/sparse.bin"
for f in dense.bin sparse.bin; do
    check "upload $f straight to the server" \
        s3curl -T "$TEST_TMP/$f" "http://127.0.0.1:$S3_PORT/dense/$f"
done

gets() {    # gets NAME: GETs of object NAME sent so far
    grep -c "^GET /dense/$1" "$REQUESTS"
}
cached_mib() {
    "$SKYFS" cache stats -c "$CONF" | awk '$1 == "bytes" && $2 == "cached" { print $3 }'
}
# all_cached: the cache holds at least 64 MiB (the dense object; the
# sparse reads hold less than 1 MiB)
cat >"$TEST_TMP/all_cached.sh" <<EOF
"$SKYFS" cache stats -c "$CONF" |
    awk '\$1 == "bytes" && \$2 == "cached" { found = 1; ok = \$3 + 0 >= 64 } END { exit !(found && ok) }'
EOF

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
check_eq "the dense object is 64 MiB" $((64 << 20)) "$(stat -c %s "$MNT/s3/dense.bin" 2>&1)"
check_eq "the sparse object is 128 MiB" $((128 << 20)) "$(stat -c %s "$MNT/s3/sparse.bin" 2>&1)"

# --- sparse: 12 reads in 12 of 128 blocks
check "12 sparse random reads give the object's bytes" \
    "$PYTHON" "$SKY_ROOT/tests/integration/random_reader.py" "$MNT/s3/sparse.bin" \
    "$TEST_TMP/sparse.bin" 12 7 128
check_eq "the sparse reads sent one GET each" 12 "$(gets sparse.bin)"
mib=$(cached_mib)
check "less than 1 MiB cached after the sparse reads (got '$mib' MiB)" \
    awk -v m="$mib" 'BEGIN { exit !(m != "" && m + 0 < 1) }'

# --- dense: 1,024 reads of a 64 MiB object, kept open until all is cached
start=$(date +%s.%N)
check "1024 dense random reads give the object's bytes, and all of it gets cached" \
    "$PYTHON" "$SKY_ROOT/tests/integration/random_reader.py" "$MNT/s3/dense.bin" \
    "$TEST_TMP/dense.bin" 1024 11 0 sh "$TEST_TMP/all_cached.sh"
end=$(date +%s.%N)
dense_gets=$(gets dense.bin)
echo "dense: 1024 reads, $dense_gets GETs, $(cached_mib) MiB cached," \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s"
check "far fewer GETs than reads: $dense_gets for 1024 reads (< 128)" \
    test "$dense_gets" -lt 128
check_eq "no GET more of the sparse object (it was not filled)" 12 "$(gets sparse.bin)"
unmount_skyfs "$MNT"

# --- offline: the whole dense object from the cache
stop_servers
mount_skyfs "$CONF" "$MNT" || die "cannot mount offline"
check "offline, the whole 64 MiB object reads back from the cache, byte for byte" \
    cmp "$TEST_TMP/dense.bin" "$MNT/s3/dense.bin"
unmount_skyfs "$MNT"
