#!/usr/bin/env bash
# s3_relist.sh - past the ttl, the cached names of a folder listed before
# are checked with one listing of the folder, not a HEAD each, and a change
# of only an object's metadata by another client is still seen, also one
# made right after the mount's own change of the object.
#
# An S3 listing carries each object's ETag, size and Last-Modified, not the
# mode and times skyfs and s3fs keep in its metadata.  So a listed name is
# taken as checked only while it is the version whose metadata the cache
# read (the same ETag, size and Last-Modified); a copy in place (chmod or
# touch by s3fs or aws-cli: x-amz-metadata-directive REPLACE) keeps the
# ETag but moves Last-Modified, and that name alone gets its HEAD.  The
# requests are counted by listing_proxy.py's request log.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver_behind logging rl || die "cannot start s3rver behind listing_proxy.py"
# (index = off: the background crawl, which starts in the first quiet
# second, would refresh names between the counts; crawlstore's unit test
# checks that it refreshes only what a listing through the mount would)
write_s3_config "$CONF" "http://127.0.0.1:$PROXY_PORT" rl "ttl = 2s" "index = off"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
D="$MNT/s3/d"
. "$SKY_ROOT/tests/integration/relist_lib.sh"
make_names
lists_of_d() { requests_since "$1" | grep -c '^GET /rl/\??.*prefix=d%2F'; }

# ---- past the ttl: one listing; a name whose Last-Modified falls in the
# second in which the mount's own last change of it ended (its upload, its
# touch) may be another client's change made after ours: that one gets its
# HEAD, once
sleep 2.5
stat "$D" >/dev/null            # the folder's own entry, refreshed first
m=$(requests_mark)
check_eq "past the ttl, stat of the 12 names shows their mode and mtime" \
    "$(expected f05 600 "$want")" "$(attrs)"
check_eq "from one listing of their folder" 1 "$(lists_of_d "$m")"
check_eq "and at most one HEAD per name" "" \
    "$(requests_since "$m" | grep '^HEAD ' | sort | uniq -d)"

# ---- past the ttl again: one listing, no HEAD
sleep 2.5
stat "$D" >/dev/null
m=$(requests_mark)
check_eq "past the ttl again, stat of the 12 names shows their mode and mtime" \
    "$(expected f05 600 "$want")" "$(attrs)"
check_eq "and cost one listing of their folder" 1 "$(lists_of_d "$m")"
check_eq "and no HEAD" 0 "$(heads "$m")"
check_eq "and no other request" 1 "$(requests_since "$m" | wc -l)"

# ---- another client changes f05's metadata only: a copy in place
etag_of() { s3curl -I "http://127.0.0.1:$S3_PORT/rl/d/f05" | tr -d '\r' |
            awk 'tolower($1) == "etag:" { print $2 }'; }
etag=$(etag_of)
check "another client sets f05's mode and mtime (a copy in place)" \
    s3curl -X PUT --data-binary '' -H "x-amz-copy-source: /rl/d/f05" \
        -H "x-amz-metadata-directive: REPLACE" -H "x-amz-meta-mode: $((8#100644))" \
        -H "x-amz-meta-mtime: 1000000000" -o /dev/null "http://127.0.0.1:$S3_PORT/rl/d/f05"
check_eq "which keeps its ETag" "$etag" "$(etag_of)"
sleep 2.5
stat "$D" >/dev/null
m=$(requests_mark)
check_eq "past the ttl, stat shows the new mode and mtime of f05" \
    "$(expected f05 644 1000000000)" "$(attrs)"
check_eq "after one listing of the folder" 1 "$(lists_of_d "$m")"
check_eq "and one HEAD, of f05" "HEAD /rl/d/f05" "$(requests_since "$m" | grep '^HEAD ')"
check_eq "and no other request" 2 "$(requests_since "$m" | wc -l)"

# ---- once more: f05's new version is known now
sleep 2.5
stat "$D" >/dev/null
m=$(requests_mark)
check_eq "past the ttl again, the same attributes" \
    "$(expected f05 644 1000000000)" "$(attrs)"
check_eq "from one listing" 1 "$(lists_of_d "$m")"
check_eq "and no HEAD" 0 "$(heads "$m")"

# ---- right after the mount's own change (within the same second, most
# often: dates are whole seconds), another client changes the metadata
own_then_other() {
    chmod 640 "$D/f03" &&
    s3curl -X PUT --data-binary '' -H "x-amz-copy-source: /rl/d/f03" \
        -H "x-amz-metadata-directive: REPLACE" -H "x-amz-meta-mode: $((8#100604))" \
        -H "x-amz-meta-mtime: 1000000000" -o /dev/null "http://127.0.0.1:$S3_PORT/rl/d/f03"
}
check "the mount sets f03's mode, and at once another client sets it again" own_then_other
sleep 2.5
stat "$D" >/dev/null
m=$(requests_mark)
check_eq "past the ttl, stat shows the other client's mode and mtime of f03" \
    "f03 604 1000000000" "$(stat -c '%n %a %Y' "$D/f03" 2>&1 | sed 's|.*/||')"
check_eq "after one listing of the folder" 1 "$(lists_of_d "$m")"

# ---- another client removes one name and adds one
check "another client deletes f12" \
    s3curl -X DELETE -o /dev/null "http://127.0.0.1:$S3_PORT/rl/d/f12"
check "and puts g01" \
    s3curl -X PUT --data-binary 'new' -o /dev/null "http://127.0.0.1:$S3_PORT/rl/d/g01"
sleep 2.5
stat "$D" >/dev/null
m=$(requests_mark)
check_fails "past the ttl, f12 is gone" stat "$D/f12"
check_eq "g01 is there" "3" "$(stat -c %s "$D/g01" 2>&1)"
check_eq "both known from one listing" 1 "$(lists_of_d "$m")"
unmount_skyfs "$MNT"
