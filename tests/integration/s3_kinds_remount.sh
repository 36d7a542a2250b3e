#!/usr/bin/env bash
# s3_kinds_remount.sh - on S3, what an object version is (symlink, special
# file, plain file) is asked once, not once per process.
#
# A listing carries no metadata, so skyfs sends a HEAD for each listed
# object that may be a symlink (1..4096 bytes) or a special file (empty).
# The metadata cache keeps each entry's kind and etag across remounts: a
# remount with the same cache, listing again after the TTL, and a second
# `skyfs index` run send no HEAD for object versions the cache knows, and
# still show the symlinks and the FIFO as such.  An object another tool
# replaced (a new ETag) is asked again.  The requests are counted by
# listing_proxy.py's request log.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
PROXY_PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
REQUESTS="$LOGS/requests.log"
CONF="$TEST_TMP/skyfs.conf"
CONF_INDEX="$TEST_TMP/index.conf"
MNT="$TEST_TMP/mnt"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket kinds || die "cannot start s3rver"
: >"$TEST_TMP/no-fragments"     # the proxy only logs the requests
_start_server listing_proxy "$PROXY_PORT" "http://127.0.0.1:$PROXY_PORT/" \
    "$PYTHON" "$SKY_ROOT/tests/integration/listing_proxy.py" "$PROXY_PORT" "$PORT" s3 \
    "$TEST_TMP/no-fragments" "$REQUESTS" || die "cannot start listing_proxy.py"

# write_conf CONFIG CACHE_DIR
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF2
[cache]
dir = $2

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" kinds)
ttl = 2s
EOF2
    )
}
write_conf "$CONF" "$TEST_TMP/cache"
write_conf "$CONF_INDEX" "$TEST_TMP/cache-index"

heads_under() { # HEAD requests for objects under kinds/$1/ so far
    grep -c "^HEAD /kinds/$1/." "$REQUESTS"
}
heads_of() { # HEAD requests for object kinds/$1 so far
    grep -c "^HEAD /kinds/$1\$" "$REQUESTS"
}
words() { "$@" | tr '\n' ' ' | sed 's/ $//'; }
# the names ls -l shows with type letter $1 in directory $2
of_type() { words awk -v t="$1" 'substr($1, 1, 1) == t { print $9 }' <(ls -l "$2"); }

mount_skyfs "$CONF" "$MNT" || die "cannot mount"
S=$MNT/s3
check "make files, symlinks and a FIFO through skyfs" sh -c "
    mkdir '$S/dir' && echo small >'$S/dir/small.txt' &&
    head -c 3000 /dev/urandom >'$S/dir/three-k' && : >'$S/dir/empty' &&
    echo other >'$S/dir/other.txt' &&
    ln -s small.txt '$S/dir/rel' && ln -s /etc/hostname '$S/dir/abs' &&
    mkfifo '$S/dir/fifo'"
check_eq "the FIFO is a FIFO" "fifo" "$(stat -c %F "$S/dir/fifo")"
unmount_skyfs "$MNT"

# ---- a remount with the same cache, listing again after the TTL
mount_skyfs "$CONF" "$MNT" || die "cannot remount"
sleep 2.5
stat "$S/dir" >/dev/null        # the directory's own entry, refreshed first
heads=$(heads_under dir)
check_eq "after a remount ls -l shows the symlinks" "abs rel" "$(of_type l "$S/dir")"
check_eq "and the files" "empty other.txt small.txt three-k" "$(of_type - "$S/dir")"
check_eq "and the FIFO" "fifo" "$(of_type p "$S/dir")"
check_eq "the relisting after a remount sent no HEAD for known versions" 0 \
    "$(( $(heads_under dir) - heads ))"
check_eq "readlink answers" "small.txt" "$(readlink "$S/dir/rel")"
check_eq "reading through a link" "small" "$(cat "$S/dir/rel")"

# ---- another tool replaces objects: new ETags are asked again
check "another tool rewrites other.txt" \
    s3curl -X PUT --data-binary changed "$ENDPOINT/kinds/dir/other.txt"
check "another tool turns three-k into an s3fs-style symlink" \
    s3curl -X PUT -H "x-amz-meta-mode: $((8#120777))" --data-binary small.txt \
        "$ENDPOINT/kinds/dir/three-k"
sleep 2.5
stat "$S/dir" >/dev/null
heads=$(heads_under dir) other=$(heads_of dir/other.txt) three=$(heads_of dir/three-k)
check_eq "the changed symlink is seen as one" "abs rel three-k" "$(of_type l "$S/dir")"
check_eq "the changed file is still a file" "empty other.txt small.txt" "$(of_type - "$S/dir")"
check_eq "the rewritten file was asked (one HEAD)" 1 "$(( $(heads_of dir/other.txt) - other ))"
check_eq "the new symlink was asked (one HEAD)" 1 "$(( $(heads_of dir/three-k) - three ))"
check_eq "nothing else was asked" 2 "$(( $(heads_under dir) - heads ))"
check_eq "readlink of the new symlink" "small.txt" "$(readlink "$S/dir/three-k")"
unmount_skyfs "$MNT"

# ---- skyfs index, twice into the same cache
heads=$(heads_under dir)
check "skyfs index fills a fresh cache" "$SKYFS" index -c "$CONF_INDEX" s3
check "the first run asked about the small objects" \
    test "$(( $(heads_under dir) - heads ))" -gt 0
heads=$(heads_under dir)
check "skyfs index runs again" "$SKYFS" index -c "$CONF_INDEX" s3
check_eq "the second run sent no HEAD for unchanged objects" 0 \
    "$(( $(heads_under dir) - heads ))"
check_eq "skyfs search --type l still finds the symlinks" "abs rel three-k" \
    "$(words sort <("$SKYFS" search -c "$CONF_INDEX" --type l 2>&1 | sed 's|.*/||'))"
check "another tool rewrites small.txt" \
    s3curl -X PUT --data-binary "new small" "$ENDPOINT/kinds/dir/small.txt"
heads=$(heads_under dir) small=$(heads_of dir/small.txt)
check "skyfs index runs a third time" "$SKYFS" index -c "$CONF_INDEX" s3
check_eq "it asked the changed object once" 1 "$(( $(heads_of dir/small.txt) - small ))"
check_eq "and nothing else" 1 "$(( $(heads_under dir) - heads ))"

# ---- what the index stored is right: a mount on its cache trusts it
mount_skyfs "$CONF_INDEX" "$MNT" || die "cannot mount the indexed cache"
check_eq "on the indexed cache the FIFO is a FIFO" "fifo" "$(stat -c %F "$S/dir/fifo")"
check_eq "the symlinks are symlinks" "abs rel three-k" "$(of_type l "$S/dir")"
check_eq "the empty file is a file" "regular empty file" "$(stat -c %F "$S/dir/empty")"
sleep 2.5
stat "$S/dir" >/dev/null
heads=$(heads_under dir)
check_eq "a relisting after the TTL still shows the FIFO" "fifo" "$(of_type p "$S/dir")"
check_eq "and sends no HEAD" 0 "$(( $(heads_under dir) - heads ))"
unmount_skyfs "$MNT"
