#!/usr/bin/env bash
# swift_many.sh - a large container and moves between clouds over
# OpenStack Swift (Debian's all-in-one from swift_lib.sh).
#
# Checks:
#   - a container of 2,000 objects (put with one bulk extract-archive) is
#     listed completely with the right sizes, from one listing request and
#     no HEAD per object (a cloud with symlinks = no; none of them is
#     empty: the core asks what an empty object is);
#   - cp and mv between the swift cloud and a local and an S3 cloud, files
#     and trees, and a 40 MiB file that arrives as an SLO.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/swift_lib.sh"

MNT="$TEST_TMP/mnt"
NFILES=2000
S3PORT=$(free_port)
S3URL="http://127.0.0.1:$S3PORT"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$S3PORT" --configure-bucket other || die "cannot start s3rver"
start_swift "$TEST_TMP/swift" || die "cannot start swift"
swift_container data && swift_container many ||
    die "cannot create the containers"

mkdir -p "$TEST_TMP/cache" "$TEST_TMP/local"
(umask 077 && cat >"$TEST_TMP/skyfs.conf" <<EOC
[cache]
dir = $TEST_TMP/cache

[sw]
type = swift
auth_url = $SWIFT_AUTH
user = $SWIFT_USER
key = $SWIFT_KEY
container = data
ttl = 2s

[many]
type = swift
auth_url = $SWIFT_AUTH
user = $SWIFT_USER
key = $SWIFT_KEY
container = many
symlinks = no
ttl = 120s

[loc]
type = local
path = $TEST_TMP/local
ttl = 1s

$(s3rver_cloud s3 "$S3URL" other)
ttl = 1s
EOC
)
mount_skyfs "$TEST_TMP/skyfs.conf" "$MNT" || die "cannot mount"
SW="$MNT/sw"
sw_header() {
    scurl -I "$SWIFT_URL/data/$1" | header_of "$2"
}
sw_sha() { scurl "$SWIFT_URL/data/$1" | sha256sum | cut -d' ' -f1; }

# --- 2,000 objects in one container
mkdir -p "$TEST_TMP/many"
"$PYTHON" - "$TEST_TMP/many" "$NFILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "f%05d" % i), "w") as f:
        f.write("x" * (i % 7 + 1))
PY
(cd "$TEST_TMP/many" && tar -cf "$TEST_TMP/many.tar" .)
check "bulk extract-archive puts $NFILES objects" \
    scurl -X PUT -T "$TEST_TMP/many.tar" -H "Accept: application/json" \
    "$SWIFT_URL/many?extract-archive=tar"
check_eq "the server holds $NFILES objects" "$NFILES" \
    "$(scurl -I "$SWIFT_URL/many" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-container-object-count" { print $2 }')"
HEADS_BEFORE=$(grep -c 'HEAD /v1/AUTH_test/many/' "$LOGS/swift-proxy.log")
LISTS_BEFORE=$(grep -c 'GET /v1/AUTH_test/many%3Fformat' "$LOGS/swift-proxy.log")
check_eq "ls lists all $NFILES names" "$NFILES" "$(ls "$MNT/many" | grep -c '^f[0-9]\{5\}$')"
check_eq "with the right sizes (find -printf %s)" \
    "$(cd "$TEST_TMP/many" && find . -type f -printf '%f %s\n' | sort)" \
    "$(cd "$MNT/many" && find . -type f -printf '%f %s\n' | sort)"
check_eq "from one listing request and no HEAD per object" "1 0" \
    "$(echo "$(($(grep -c 'GET /v1/AUTH_test/many%3Fformat' "$LOGS/swift-proxy.log") - LISTS_BEFORE)) $(($(grep -c 'HEAD /v1/AUTH_test/many/' "$LOGS/swift-proxy.log") - HEADS_BEFORE))")"

# --- cp and mv between clouds
printf 'from swift\n' >"$SW/x.txt"
check "cp swift -> local" cp "$SW/x.txt" "$MNT/loc/x.txt"
check_eq "the local copy" "from swift" "$(cat "$TEST_TMP/local/x.txt" 2>&1)"
check "cp swift -> s3" cp "$SW/x.txt" "$MNT/s3/x.txt"
check_eq "the s3 copy (straight from the server)" "from swift" "$(s3curl "$S3URL/other/x.txt")"
printf 'from local\n' >"$TEST_TMP/local/y.txt"
check "mv local -> swift" mv "$MNT/loc/y.txt" "$SW/y.txt"
check_eq "lands in the container" "from local" "$(scurl "$SWIFT_URL/data/y.txt")"
check "and leaves the local cloud" test ! -e "$TEST_TMP/local/y.txt"
mkdir -p "$MNT/s3/tree/sub"
printf 'deep\n' >"$MNT/s3/tree/sub/f"
check "mv of a tree s3 -> swift" mv "$MNT/s3/tree" "$SW/tree"
check_eq "the tree is in the container" "deep" "$(scurl "$SWIFT_URL/data/tree/sub/f")"
check_fails "and gone from the bucket" s3curl -I "$S3URL/other/tree/sub/f"
check "mv of a tree swift -> local" mv "$SW/tree" "$MNT/loc/tree"
check_eq "the tree is in the local folder" "deep" "$(cat "$TEST_TMP/local/tree/sub/f" 2>&1)"
check_fails "and gone from the container" scurl -I "$SWIFT_URL/data/tree/sub/f"
head -c $((40 << 20)) /dev/urandom >"$TEST_TMP/big"
SHA=$(sha256sum <"$TEST_TMP/big" | cut -d" " -f1)
check "cp of a 40 MiB file local -> swift" cp "$TEST_TMP/big" "$MNT/loc/big"
check "mv of it local -> swift" mv "$MNT/loc/big" "$SW/big-again.bin"
check_eq "arrives as an SLO with the same bytes" "True $SHA" \
    "$(echo "$(sw_header big-again.bin x-static-large-object) $(sw_sha big-again.bin)")"

unmount_skyfs "$MNT"
