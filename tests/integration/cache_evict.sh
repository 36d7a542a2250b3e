#!/usr/bin/env bash
# cache_evict.sh - `skyfs cache evict PATH` on a local and an S3 cloud.
#
# Both clouds hold tree/a.bin (1 MiB), tree/sub/b.bin (2 MiB) and
# keep/c.bin (1 MiB).  After `skyfs cache warm` of everything:
#   - evicting alpha/tree while tree/sub/b.bin is open for reading drops
#     a.bin only and counts b.bin as skipped;
#   - evicting s3/tree drops both of its files;
#   - `cache stats` shrinks by exactly what was evicted;
#   - every file still reads right afterwards, its bytes fetched again
#     (read with O_DIRECT, so the kernel's page cache does not answer);
#   - evicting the mount root drops everything left; a path outside any
#     skyfs mount is an error.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
CACHE="$TEST_TMP/cache"
ALPHA="$TEST_TMP/data/alpha"
SRC="$TEST_TMP/src"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket data || die "cannot start s3rver"

write_local_config "$CONF" "$CACHE" "alpha=$ALPHA"
cat >>"$CONF" <<EOC

$(s3rver_cloud s3 "$ENDPOINT" data)
EOC
chmod 600 "$CONF"

mkdir -p "$SRC/tree/sub" "$SRC/keep"
head -c $((1 << 20)) /dev/urandom >"$SRC/tree/a.bin"
head -c $((2 << 20)) /dev/urandom >"$SRC/tree/sub/b.bin"
head -c $((1 << 20)) /dev/urandom >"$SRC/keep/c.bin"
FILES="tree/a.bin tree/sub/b.bin keep/c.bin"
cp -r "$SRC/tree" "$SRC/keep" "$ALPHA/"
for f in $FILES; do
    s3curl -T "$SRC/$f" "$ENDPOINT/data/$f" >/dev/null || die "cannot upload $f to s3rver"
done

# cached_mib: the "bytes cached" figure of `skyfs cache stats`, in MiB.
cached_mib() {
    "$SKYFS" cache stats -c "$CONF" | awk '$1 == "bytes" && $2 == "cached" { print $3 }'
}
# requests CLOUD: how many requests the daemon has sent to CLOUD.
requests() {
    getfattr --only-values -n user.skyfs.requests "$MNT/.skyfs" 2>/dev/null |
        awk -v c="$1" '$1 == c { print $2 }'
}
# direct_read FILE: FILE through the mount, bypassing the page cache.
direct_read() { dd if="$1" iflag=direct bs=1M status=none; }

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
check "cache warm of both clouds" "$SKYFS" cache warm "$MNT/alpha" "$MNT/s3"
check_eq "8 MiB cached" "8.0" "$(cached_mib)"

exec 3<"$MNT/alpha/tree/sub/b.bin"
check_eq "evict alpha/tree with tree/sub/b.bin open: a.bin goes, b.bin is skipped" \
    "evicted 1 files (1.0 MiB); 1 skipped (open or not uploaded yet)" \
    "$("$SKYFS" cache evict "$MNT/alpha/tree" 2>&1)"
check_eq "cache stats: 7 MiB left" "7.0" "$(cached_mib)"
exec 3<&-
check_eq "evict s3/tree: both files go" \
    "evicted 2 files (3.0 MiB); 0 skipped (open or not uploaded yet)" \
    "$("$SKYFS" cache evict "$MNT/s3/tree" 2>&1)"
check_eq "cache stats: 4 MiB left" "4.0" "$(cached_mib)"

before=$(requests s3)
for cloud in alpha s3; do
    for f in $FILES; do
        check "$cloud/$f reads right after the eviction" \
            cmp "$SRC/$f" <(direct_read "$MNT/$cloud/$f")
    done
done
check "the evicted S3 files were fetched again ($before requests before)" \
    test "$(requests s3)" -gt "$before"
check_eq "cache stats: the evicted files are cached again" "8.0" "$(cached_mib)"

check_eq "evict the mount root: everything goes" \
    "evicted 6 files (8.0 MiB); 0 skipped (open or not uploaded yet)" \
    "$("$SKYFS" cache evict "$MNT" 2>&1)"
check_eq "cache stats: nothing left" "0.0" "$(cached_mib)"
check_fails "a path outside any skyfs mount is an error" "$SKYFS" cache evict "$TEST_TMP"
unmount_skyfs "$MNT"
