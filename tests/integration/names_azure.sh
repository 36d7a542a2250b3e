#!/usr/bin/env bash
# names_azure.sh - Azure blob names that cannot be file names are skipped
# with a warning, one at a time; names too long are ENAMETOOLONG before
# anything is sent (Azure would store the blob, and the listing then hide
# it); and symlinks stay symlinks on a fresh mount (Azure listings carry
# the metadata that says so).
#
# Azurite refuses the names a broken or hostile server could list, so
# listing_proxy.py (between skyfs and Azurite) adds them to the listings of
# a few directories, each next to real blobs:
#   nul/    "x%00evil" (Encoded="true") beside a real "x"
#   raw/    a name with a raw 0xFF byte in the XML: not the whole page lost
#   enc/    "bad%FFname" (Encoded="true": not UTF-8 once decoded)
#   sizes/  Content-Length -5, 2^63 and 10^20
#   names/  a 300-byte name, "." and ".."
. "$(dirname "$0")/lib.sh"

AZ_PORT=$(free_port)
PROXY_PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$AZ_PORT/$AZURITE_ACCOUNT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
FRAGMENTS="$TEST_TMP/fragments"
start_azurite "$TEST_TMP/azurite" "$AZ_PORT" || die "cannot start Azurite"
SAS=$(azurite_sas)

# blob NAME SIZE [ENCODED]: one listed blob as List Blobs writes it
blob() {
    printf '<Blob><Name%s>%s</Name><Properties>' "${3:+ Encoded=\"true\"}" "$1"
    printf '<Last-Modified>Thu, 01 Jan 2026 00:00:00 GMT</Last-Modified>'
    printf '<Etag>0x8DC0123456789AB</Etag><Content-Length>%s</Content-Length>' "$2"
    printf '<Content-Type>application/octet-stream</Content-Type><BlobType>BlockBlob</BlobType>'
    printf '</Properties><Metadata /></Blob>'
}
LONG=$(printf 'L%.0s' $(seq 300))
{
    echo "== nul/"; blob 'nul/x%00evil' 5 enc; echo
    echo "== raw/"; blob "raw/bad$(printf '\377')name" 5; echo
    echo "== enc/"; blob 'enc/bad%FFname' 5 enc; echo
    echo "== sizes/"
    blob sizes/negative -5; blob sizes/huge 9223372036854775808
    blob sizes/absurd 100000000000000000000; echo
    echo "== names/"; blob "names/$LONG" 5; blob names/. 5; blob names/.. 5; echo
} >"$FRAGMENTS"
_start_server listing_proxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" \
    "$PYTHON" "$SKY_ROOT/tests/integration/listing_proxy.py" "$PROXY_PORT" "$AZ_PORT" azure \
    "$FRAGMENTS" "$LOGS/requests.log" || die "cannot start listing_proxy.py"

# put BLOB BODY: a block blob straight to Azurite
put() {
    curl -sf -X PUT -H "x-ms-blob-type: BlockBlob" --data-binary "$2" \
        "$ENDPOINT/names/$1?$SAS" >/dev/null
}
curl -sf -X PUT "$ENDPOINT/names?restype=container&$SAS" >/dev/null || die "cannot create container"
for d in raw enc sizes names; do
    put "$d/good.txt" good || die "cannot put $d/good.txt"
done
put nul/x x-real || die "cannot put nul/x"

mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[az]
type = azure
endpoint = http://127.0.0.1:$PROXY_PORT/$AZURITE_ACCOUNT
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
container = names
ttl = 1s
EOF
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
A=$MNT/az
LOG="$LOGS/mnt.log"
listing() { ls "$1" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }

check_eq "a %00 name is not listed as the name before the NUL" "x" "$(listing "$A/nul")"
check_eq "the real x keeps its size" 6 "$(stat -c %s "$A/nul/x" 2>&1)"
check_eq "the real x reads its own bytes" "x-real" "$(cat "$A/nul/x" 2>&1)"
check_eq "a raw 0xFF byte in the XML skips that blob, not the folder" "good.txt" \
    "$(listing "$A/raw")"
check_eq "the good file there reads" "good" "$(cat "$A/raw/good.txt" 2>&1)"
check_eq "a name that is not UTF-8 once decoded is skipped" "good.txt" "$(listing "$A/enc")"
check_eq "sizes no file has are skipped" "good.txt" "$(listing "$A/sizes")"
check "ls -l of that folder shows no ?????????" \
    sh -c "out=\$(ls -l '$A/sizes' 2>&1) && echo \"\$out\" && ! echo \"\$out\" | grep -q '?'"
check_eq "a 300-byte name, . and .. are skipped" "good.txt" "$(listing "$A/names")"
check "the log names the NUL blob" grep -q 'x\\x00evil.*holds a NUL byte' "$LOG"
check "the log names the blob that is not UTF-8" grep -q 'bad\\xffname.*not valid UTF-8' "$LOG"
check "the log names the sizes" grep -q 'sizes/negative.*not a file size' "$LOG"
check "the log names the long name" grep -q 'LLLL.*longer than 255 bytes' "$LOG"

# ---- names over 255 bytes: ENAMETOOLONG, and no request names them
N255=$(printf 'n%.0s' $(seq 255))
N256=$(printf 'n%.0s' $(seq 256))
check_eq "create of a 256-byte name" ENAMETOOLONG "$(errno_of create "$A/$N256")"
check_eq "mkdir of a 256-byte name" ENAMETOOLONG "$(errno_of mkdir "$A/$N256")"
check_eq "rename to a 256-byte name" ENAMETOOLONG "$(errno_of rename "$A/raw/good.txt" "$A/$N256")"
check_eq "stat of a 256-byte name" ENAMETOOLONG "$(errno_of stat "$A/$N256")"
check "symlink with a 256-byte name: File name too long" \
    sh -c "ln -s x '$A/$N256' 2>&1 | grep -q 'File name too long'"
check "no request named them (listing_proxy.py's log)" \
    sh -c "grep -c . '$LOGS/requests.log' && ! grep -q '$N256' '$LOGS/requests.log'"
check "the container holds no blob of that name" \
    sh -c "curl -sf '$ENDPOINT/names?restype=container&comp=list&$SAS' >'$TEST_TMP/blobs.xml' &&
           grep -q good.txt '$TEST_TMP/blobs.xml' && ! grep -q '$N256' '$TEST_TMP/blobs.xml'"
check_eq "a 255-byte name is created" ok "$(errno_of create "$A/$N255")"
check_eq "and listed" "$N255" "$(ls "$A" | grep '^nnn')"

# ---- symlinks on a fresh mount (empty cache): Azure listings say what they are
check "make a symlink and a small file" \
    sh -c "mkdir '$A/links' && ln -s hi '$A/links/link' && echo hi >'$A/links/hi'"
unmount_skyfs "$MNT"
rm -rf "$TEST_TMP/cache" && mkdir -p "$TEST_TMP/cache"
mount_skyfs "$CONF" "$MNT" || die "cannot mount again"
check_eq "ls -l on a fresh mount shows the symlink as one" "link" \
    "$(ls -l "$A/links" | awk '/^l/ { print $9 }')"
check_eq "find -type l finds it" "$A/links/link" "$(find "$A/links" -type l)"
check_eq "the small file is a file" "regular file" "$(stat -c %F "$A/links/hi")"
check_eq "readlink" "hi" "$(readlink "$A/links/link")"
unmount_skyfs "$MNT"
