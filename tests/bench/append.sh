#!/usr/bin/env bash
# append.sh - what a 1 MiB append to a large file costs on each cloud kind
# that has incremental uploads (README "Incremental uploads"): Azure
# (Azurite), S3 on Ceph's RADOS Gateway (start_rgw: UploadPartCopy), S3 on
# s3rver (no UploadPartCopy: the whole file again) and a local folder.
#
#     BUILD=build bash tests/bench/append.sh [SIZE_MIB]
#
# One mount over the four clouds.  On each, a SIZE_MIB (default 1024) file
# is written (closed: uploaded), then 1 MiB is appended and closed.  For
# the append: the bytes sent to the cloud (metrics'
# skyfs_cloud_sent_bytes_total; for the local cloud the driver's debug
# line "N of M bytes written") and the time until close returned (the
# upload included: write_back = sync).  The cloud's copy is then read back
# whole and compared (sha256) with what was written, so a wrong result is
# a failure, never a fast one.  Prints one table (also in
# $LOGS/bench.txt).  A benchmark: it asserts nothing about speed.
# shellcheck source=SCRIPTDIR/../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

SIZE_MIB=${1:-1024}
MiB=$((1 << 20))

RGWPORT=$(free_port)
# memstore keeps objects in memory: the file, the appended version's
# copied parts, what garbage collection has not freed yet
start_rgw "$TEST_TMP/rgw" "$RGWPORT" bench MEMSTORE_BYTES=$((8 * 1024 * MiB)) ||
    die "cannot start rgw"
S3PORT=$(free_port)
start_s3rver "$TEST_TMP/s3rver" "$S3PORT" --configure-bucket bench || die "cannot start s3rver"
AZPORT=$(free_port)
start_azurite "$TEST_TMP/azurite" "$AZPORT" || die "cannot start Azurite"
AZEND="http://127.0.0.1:$AZPORT/$AZURITE_ACCOUNT"
SAS=$(azurite_sas)
curl -sf -X PUT "$AZEND/bench?restype=container&$SAS" -o /dev/null ||
    die "cannot create Azure container bench"
LOCALDIR="$TEST_TMP/localcloud"
mkdir -p "$LOCALDIR" "$TEST_TMP/cache"

CONF="$TEST_TMP/skyfs.conf"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[daemon]
log_level = debug

[az]
type = azure
endpoint = $AZEND
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
container = bench

$(rgw_cloud rgw "$RGW_ENDPOINT" bench)

$(s3rver_cloud s3rver "http://127.0.0.1:$S3PORT" bench)

[local]
type = local
path = $LOCALDIR
EOF
)
MNT="$TEST_TMP/mnt"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
LOG="$LOGS/mnt.log"

# local_written: what the local driver's last line for big.bin says it wrote.
local_written() {
    grep -a '"big.bin": .* bytes written, the rest cloned' "$LOG" | tail -n 1 |
        sed -E 's/.*"big.bin": ([0-9]+) of .*/\1/'
}
# server_sum CLOUD: sha256 of the cloud's own copy of big.bin.
server_sum() {
    case "$1" in
    az) curl -sf "$AZEND/bench/big.bin?$SAS" ;;
    rgw) rgw_curl "$RGW_ENDPOINT/bench/big.bin" ;;
    s3rver) s3curl "http://127.0.0.1:$S3PORT/bench/big.bin" ;;
    local) cat "$LOCALDIR/big.bin" ;;
    esac | sha256sum | cut -d' ' -f1
}
now() { date +%s.%N; }

head -c $((SIZE_MIB * MiB)) /dev/urandom >"$TEST_TMP/base" || die "cannot make data"
head -c "$MiB" /dev/urandom >"$TEST_TMP/tail" || die "cannot make data"
cat "$TEST_TMP/base" "$TEST_TMP/tail" | sha256sum | cut -d' ' -f1 >"$TEST_TMP/want.sum"
want=$(cat "$TEST_TMP/want.sum")

{
    echo "| cloud | write ${SIZE_MIB} MiB (s) | append 1 MiB: bytes sent | append 1 MiB: time to close (s) |"
    echo "|---|---|---|---|"
} >"$LOGS/bench.txt"
for c in az rgw s3rver local; do
    t0=$(now)
    check "$c: a $SIZE_MIB MiB file is written" cp "$TEST_TMP/base" "$MNT/$c/big.bin"
    t1=$(now)
    before=$(sent "$c")
    check "$c: 1 MiB is appended" sh -c "cat '$TEST_TMP/tail' >>'$MNT/$c/big.bin'"
    t2=$(now)
    if [ "$c" = local ]; then bytes=$(local_written); else bytes=$(($(sent "$c") - before)); fi
    check_eq "$c: the cloud holds exactly the file with the appended MiB" "$want" "$(server_sum "$c")"
    awk -v c="$c" -v a="$t0" -v b="$t1" -v d="$t2" -v n="$bytes" 'BEGIN {
        printf "| %s | %.1f | %d | %.2f |\n", c, b - a, n, d - b }' >>"$LOGS/bench.txt"
done
unmount_skyfs "$MNT"
echo
cat "$LOGS/bench.txt"
