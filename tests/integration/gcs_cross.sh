#!/usr/bin/env bash
# gcs_cross.sh - cp and mv between a gcs cloud and the other clouds.
#
# One mount with a local folder, an s3 cloud and a gcs cloud (HMAC keys;
# both on one s3rver, different buckets).  Checks: cp -a and mv of files
# and of a directory tree from local to gcs, gcs to s3, s3 to gcs and gcs
# to local keep the bytes, the mode and the mtime, and mv leaves nothing
# behind at the source.  The object clouds have a long TTL: a listing of
# an object cloud after the TTL shows a small object's Last-Modified as
# its mtime (S3 on main does so too; reported, not this file's subject).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
LOCAL="$TEST_TMP/local"

export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket gbucket --configure-bucket sbucket ||
    die "cannot start s3rver"

mkdir -p "$LOCAL" "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOC
[cache]
dir = $TEST_TMP/cache

[local]
type = local
path = $LOCAL
ttl = 1s

$(gcs_cloud gcs "$ENDPOINT" gbucket)
ttl = 60s

$(s3rver_cloud s3 "$ENDPOINT" sbucket)
ttl = 60s
EOC
)
head -c 3000000 /dev/urandom >"$TEST_TMP/blob"
mkdir -p "$LOCAL/tree/sub"
cp "$TEST_TMP/blob" "$LOCAL/tree/sub/blob"
echo "hello" >"$LOCAL/tree/hello.txt"
chmod 0600 "$LOCAL/tree/hello.txt"
touch -d '2005-06-07 08:09:10 UTC' "$LOCAL/tree/hello.txt"
cp "$TEST_TMP/blob" "$LOCAL/one.bin"

mount_skyfs "$CONF" "$MNT" || die "cannot mount"

attrs() { stat -c '%a %Y %s' "$1" 2>&1; }

check "cp -a local -> gcs (a tree)" cp -a "$MNT/local/tree" "$MNT/gcs/tree"
check "the bytes arrived" cmp "$TEST_TMP/blob" "$MNT/gcs/tree/sub/blob"
check_eq "mode and mtime arrived" "$(attrs "$LOCAL/tree/hello.txt")" \
    "$(attrs "$MNT/gcs/tree/hello.txt")"
check "they are on the server" wait_until 10 eval \
    '[ "$(s3curl "$ENDPOINT/gbucket/tree/hello.txt")" = hello ]'

check "mv local -> gcs (a file)" mv "$MNT/local/one.bin" "$MNT/gcs/one.bin"
check "it reads back" cmp "$TEST_TMP/blob" "$MNT/gcs/one.bin"
check "nothing left at the source" test ! -e "$LOCAL/one.bin"

check "cp -a gcs -> s3" cp -a "$MNT/gcs/tree" "$MNT/s3/tree"
check "the bytes arrived in s3" cmp "$TEST_TMP/blob" "$MNT/s3/tree/sub/blob"
check_eq "mode and mtime arrived in s3" "$(attrs "$LOCAL/tree/hello.txt")" \
    "$(attrs "$MNT/s3/tree/hello.txt")"

check "mv gcs -> s3 (a file)" mv "$MNT/gcs/one.bin" "$MNT/s3/one.bin"
check "it reads back from s3" cmp "$TEST_TMP/blob" "$MNT/s3/one.bin"
check "the gcs object is gone" wait_until 10 eval \
    '! s3curl -I "$ENDPOINT/gbucket/one.bin" >/dev/null'

# mv carries what the source shows.
before=$(attrs "$MNT/s3/tree/hello.txt")
check "mv s3 -> gcs (a tree)" mv "$MNT/s3/tree" "$MNT/gcs/tree2"
check "the tree arrived in gcs" cmp "$TEST_TMP/blob" "$MNT/gcs/tree2/sub/blob"
check_eq "with the mode and mtime the source showed" "$before" \
    "$(attrs "$MNT/gcs/tree2/hello.txt")"
check "nothing left in s3" wait_until 10 test ! -e "$MNT/s3/tree"

before=$(attrs "$MNT/gcs/tree2/hello.txt")
check "mv gcs -> local (a tree)" mv "$MNT/gcs/tree2" "$MNT/local/back"
check "the bytes are back in the local folder" cmp "$TEST_TMP/blob" "$LOCAL/back/sub/blob"
check_eq "with the mode and mtime gcs showed" "$before" "$(attrs "$LOCAL/back/hello.txt")"
check "mv local -> gcs keeps an old mtime" eval \
    'touch -d "2003-04-05 06:07:08 UTC" "$MNT/local/back/hello.txt" && mv "$MNT/local/back" "$MNT/gcs/back"'
check_eq "mode and mtime arrived" "600 1049522828 6" "$(attrs "$MNT/gcs/back/hello.txt")"
check "nothing left in gcs" wait_until 10 test ! -e "$MNT/gcs/tree2"
check_eq "no key left under tree2/ on the server" "" \
    "$(s3curl "$ENDPOINT/gbucket?list-type=2&prefix=tree2/" | grep -o '<Key>[^<]*</Key>')"

unmount_skyfs "$MNT"
