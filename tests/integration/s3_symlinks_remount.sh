#!/usr/bin/env bash
# s3_symlinks_remount.sh - on S3, symlinks stay symlinks on a fresh mount.
#
# A listing (ListObjectsV2) carries no metadata, so from a listing alone a
# symlink (an object whose body is its target, x-amz-meta-mode S_IFLNK)
# looks like a small file.  Symlinks made through skyfs, and one s3fs-style
# link put on the server directly, are checked after a remount with an
# empty cache directory: `ls -l`, `find -type l`, `stat`, `readlink`,
# `cp -a` and `tar` to a local cloud, and `skyfs index` + `search`.
# Small and large regular files stay files, and a directory listed again
# after its TTL asks no more HEADs (the answers are remembered per object
# version).  With `symlinks = no` the listing sends no HEAD at all.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
PROXY_PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
REQUESTS="$LOGS/requests.log"
CONF1="$TEST_TMP/first.conf"
CONF2="$TEST_TMP/fresh.conf"
MNT="$TEST_TMP/mnt"
LOCAL="$TEST_TMP/local"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket links || die "cannot start s3rver"
# listing_proxy.py with no fragments only logs the requests skyfs sends
: >"$TEST_TMP/no-fragments"
_start_server listing_proxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" \
    "$PYTHON" "$SKY_ROOT/tests/integration/listing_proxy.py" "$PROXY_PORT" "$PORT" s3 \
    "$TEST_TMP/no-fragments" "$REQUESTS" || die "cannot start listing_proxy.py"

# write_conf CONFIG CACHE_DIR [EXTRA S3 LINE]
write_conf() {
    mkdir -p "$2" "$LOCAL"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" links)
ttl = 2s
${3:-}

[loc]
type = local
path = $LOCAL
EOF
    )
}
write_conf "$CONF1" "$TEST_TMP/cache1"
write_conf "$CONF2" "$TEST_TMP/cache2"

requests() { # requests sent to the server so far, of one method
    grep -c "^$1 " "$REQUESTS"
}
# words CMD...: the command's output lines joined by spaces
words() { "$@" | tr '\n' ' ' | sed 's/ $//'; }

LONG_TARGET=$(printf 'd%.0s/' $(seq 1000))end      # 2,003 bytes
mount_skyfs "$CONF1" "$MNT" || die "cannot mount"
S=$MNT/s3
check "make files and symlinks through skyfs" sh -c "
    mkdir '$S/dir' && echo small >'$S/dir/small.txt' &&
    head -c 3000 /dev/urandom >'$S/dir/three-k' &&
    head -c 100000 /dev/urandom >'$S/dir/big' &&
    ln -s small.txt '$S/dir/rel' && ln -s /etc/hostname '$S/dir/abs' &&
    ln -s nowhere '$S/dir/dangling' && ln -s ../dir '$S/dir/up' &&
    ln -s '$LONG_TARGET' '$S/dir/long'"
unmount_skyfs "$MNT"

# One link written the way s3fs writes them, straight to the server.
check "put an s3fs-style symlink on the server" \
    s3curl -X PUT -H "x-amz-meta-mode: $((8#120777))" --data-binary small.txt \
        "$ENDPOINT/links/dir/s3fs-link"

# ---- a fresh mount: empty cache directory (its requests are those
# logged from here on: the first mount's uploads compared versions first)
fresh_from=$(( $(wc -l <"$REQUESTS") + 1 ))
mount_skyfs "$CONF2" "$MNT" || die "cannot mount with an empty cache"
LINKS="abs dangling long rel s3fs-link up"
check_eq "ls -l shows every symlink as a symlink" "$LINKS" \
    "$(words awk '/^l/ { print $9 }' <(ls -l "$S/dir"))"
check_eq "ls -l shows the files as files" "big small.txt three-k" \
    "$(words awk '/^-/ { print $9 }' <(ls -l "$S/dir"))"
check_eq "find -type l finds the symlinks" "$LINKS" \
    "$(words sort <(cd "$S/dir" && find . -type l | sed 's|^\./||'))"
check_eq "stat says symbolic link" "symbolic link" "$(stat -c %F "$S/dir/rel")"
check_eq "stat of a small file says regular file" "regular file" "$(stat -c %F "$S/dir/small.txt")"
check_eq "readlink of a relative link" "small.txt" "$(readlink "$S/dir/rel")"
check_eq "readlink of the s3fs-style link" "small.txt" "$(readlink "$S/dir/s3fs-link")"
check_eq "readlink of a 2,003-byte target" "$LONG_TARGET" "$(readlink "$S/dir/long")"
check_eq "reading through a link" "small" "$(cat "$S/dir/rel")"

# the first listing asked the two small files and the six links (one HEAD
# each), not the 100,000-byte file; a relisting after the TTL asks no HEAD:
# the answers are remembered per object version
tail -n +"$fresh_from" "$REQUESTS" >"$TEST_TMP/fresh-requests.log"
check "the listing asked the small objects" \
    grep -q "^HEAD /links/dir/three-k" "$TEST_TMP/fresh-requests.log"
check "it did not ask the large one" \
    sh -c "! grep '^HEAD /links/dir/big' '$TEST_TMP/fresh-requests.log'"
sleep 2.5
stat "$S/dir" >/dev/null        # the directory's own entry, refreshed first
heads=$(requests HEAD) lists=$(requests GET)
ls -l "$S/dir" >/dev/null
check_eq "a relisting after the TTL sends one LIST" 1 "$(( $(requests GET) - lists ))"
check_eq "and no HEAD" 0 "$(( $(requests HEAD) - heads ))"

check "cp -a to a local cloud" cp -a "$S/dir" "$MNT/loc/copy"
for l in $LINKS; do
    check "cp -a kept $l a symlink in the local folder" test -L "$LOCAL/copy/$l"
done
check_eq "the copied link points where it did" "small.txt" "$(readlink "$LOCAL/copy/rel")"
check "cp -a kept the files files" \
    sh -c "test -f '$LOCAL/copy/small.txt' && ! test -L '$LOCAL/copy/small.txt'"
check_eq "tar stores the links as links" "$LINKS" \
    "$(words sort <(tar -C "$S" -cf - dir | tar -tvf - | awk '/^l/ { sub(".*/", "", $6); print $6 }'))"
unmount_skyfs "$MNT"

# ---- skyfs index into a fresh cache: search answers from the index alone
rm -rf "$TEST_TMP/cache2" && write_conf "$CONF2" "$TEST_TMP/cache2"
check "skyfs index fills a fresh cache" "$SKYFS" index -c "$CONF2" s3
check_eq "skyfs search --type l finds the links" "$LINKS" \
    "$(words sort <("$SKYFS" search -c "$CONF2" --cloud s3 --type l 2>&1 | sed 's|.*/||'))"

# ---- symlinks = no: a bucket without links pays no HEAD for its listings
rm -rf "$TEST_TMP/cache2" && write_conf "$CONF2" "$TEST_TMP/cache2" "symlinks = no"
check "skyfs config check accepts symlinks = no" "$SKYFS" config check -c "$CONF2"
mount_skyfs "$CONF2" "$MNT" || die "cannot mount with symlinks = no"
heads=$(grep -c '^HEAD /links/dir/.' "$REQUESTS")
check_eq "ls -l lists the directory" 9 "$(ls -l "$S/dir" | grep -c '^[-l]')"
check_eq "with symlinks = no the listing sent no HEAD for its objects" 0 \
    "$(( $(grep -c '^HEAD /links/dir/.' "$REQUESTS") - heads ))"
unmount_skyfs "$MNT"
