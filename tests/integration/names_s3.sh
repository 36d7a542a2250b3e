#!/usr/bin/env bash
# names_s3.sh - S3 keys that cannot be file names are skipped with a
# warning, one at a time; names too long are ENAMETOOLONG before anything
# is sent.
#
# s3rver refuses to store the keys a broken or hostile server could list,
# so listing_proxy.py (between skyfs and s3rver) adds them to the listings
# of a few directories, each next to real objects:
#   nul/    "x%00evil" beside a real "x": not shown as (or read as) "x"
#   raw/    a key with a raw 0xFF byte in the XML: not the whole page lost
#   enc/    "bad%FFname" (url-encoded, not UTF-8 once decoded)
#   sizes/  sizes -5, 2^63 and 10^20: no `?????????`, no entry
#   names/  a 300-byte name, "." and ".."
. "$(dirname "$0")/lib.sh"

S3_PORT=$(free_port)
PROXY_PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$S3_PORT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
FRAGMENTS="$TEST_TMP/fragments"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket names || die "cannot start s3rver"

# contents KEY SIZE: one listed object as ListObjectsV2 writes it
contents() {
    printf '<Contents><Key>%s</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>' "$1"
    printf '<ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>%s</Size>' "$2"
    printf '<StorageClass>STANDARD</StorageClass></Contents>'
}
LONG=$(printf 'L%.0s' $(seq 300))
{
    echo "== nul/"; contents 'nul/x%00evil' 5; echo
    echo "== raw/"; contents "raw/bad$(printf '\377')name" 5; echo
    echo "== enc/"; contents 'enc/bad%FFname' 5; echo
    echo "== sizes/"
    contents sizes/negative -5; contents sizes/huge 9223372036854775808
    contents sizes/absurd 100000000000000000000; echo
    echo "== names/"; contents "names/$LONG" 5; contents names/. 5; contents names/.. 5; echo
} >"$FRAGMENTS"
_start_server listing_proxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" \
    "$PYTHON" "$SKY_ROOT/tests/integration/listing_proxy.py" "$PROXY_PORT" "$S3_PORT" s3 \
    "$FRAGMENTS" "$LOGS/requests.log" || die "cannot start listing_proxy.py"

for d in raw enc sizes names; do
    s3curl -X PUT --data-binary good "$ENDPOINT/names/$d/good.txt" || die "cannot put $d/good.txt"
done
s3curl -X PUT --data-binary x-real "$ENDPOINT/names/nul/x" || die "cannot put nul/x"

mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" names)
ttl = 1s
EOF
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
S=$MNT/s3
LOG="$LOGS/mnt.log"
listing() { ls "$1" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }

check_eq "a %00 key is not listed as the key before the NUL" "x" "$(listing "$S/nul")"
check_eq "the real x keeps its size" 6 "$(stat -c %s "$S/nul/x" 2>&1)"
check_eq "the real x reads its own bytes" "x-real" "$(cat "$S/nul/x" 2>&1)"
check_eq "a raw 0xFF byte in the XML skips that key, not the folder" "good.txt" \
    "$(listing "$S/raw")"
check_eq "the good file there reads" "good" "$(cat "$S/raw/good.txt" 2>&1)"
check_eq "a key that is not UTF-8 once decoded is skipped" "good.txt" "$(listing "$S/enc")"
check_eq "sizes no file has are skipped" "good.txt" "$(listing "$S/sizes")"
check "ls -l of that folder shows no ?????????" \
    sh -c "out=\$(ls -l '$S/sizes' 2>&1) && echo \"\$out\" && ! echo \"\$out\" | grep -q '?'"
check_eq "a 300-byte name, . and .. are skipped" "good.txt" "$(listing "$S/names")"
check "the log names the NUL key" grep -q 'x\\x00evil.*holds a NUL byte' "$LOG"
check "the log names the key that is not UTF-8" grep -q 'bad\\xffname.*not valid UTF-8' "$LOG"
check "the log names the sizes" grep -q 'sizes/negative.*not a file size' "$LOG"
check "the log names the long name" grep -q 'LLLL.*longer than 255 bytes' "$LOG"

# ---- names over 255 bytes: ENAMETOOLONG, and no request names them
N230=$(printf 'n%.0s' $(seq 230))    # s3rver stores a key as a file named KEY._S3rver_...
N256=$(printf 'n%.0s' $(seq 256))
check_eq "create of a 256-byte name" ENAMETOOLONG "$(errno_of create "$S/$N256")"
check_eq "mkdir of a 256-byte name" ENAMETOOLONG "$(errno_of mkdir "$S/$N256")"
check_eq "rename to a 256-byte name" ENAMETOOLONG "$(errno_of rename "$S/raw/good.txt" "$S/$N256")"
check_eq "stat of a 256-byte name" ENAMETOOLONG "$(errno_of stat "$S/$N256")"
check "symlink with a 256-byte name: File name too long" \
    sh -c "ln -s x '$S/$N256' 2>&1 | grep -q 'File name too long'"
check "no request named them (listing_proxy.py's log)" \
    sh -c "grep -c . '$LOGS/requests.log' && ! grep -q '$N256' '$LOGS/requests.log'"
check_eq "a long name that fits is created" ok "$(errno_of create "$S/$N230")"
check_eq "and listed" "$N230" "$(ls "$S" | grep '^nnn')"
unmount_skyfs "$MNT"
