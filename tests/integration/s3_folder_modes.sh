#!/usr/bin/env bash
# s3_folder_modes.sh - a folder's mode, owner and times, kept in the
# metadata of its marker "dir/", show through a fresh cache whose first
# look at the folder is its parent's listing (S3 and GCS: one object-store
# core), against s3rver.
#
# A delimited listing shows a folder as a common prefix, without metadata;
# skyfs asks each folder's marker once (a HEAD of "dir/") before it answers
# the listing.  Checks, on cloud "s3" (bucket data) and "gcs" (bucket
# gdata, GCS's XML API):
#   - folders chmod'ed, chown'ed and touched on mount A show the same mode,
#     uid, gid and mtime on mount B (an empty cache) in `ls -l` of their
#     parent, with no lookup before the listing;
#   - a folder another tool made (a PUT of "x/" with x-amz-meta-mode 16832,
#     040700) shows 0700; a prefix without marker shows the default 0755;
#   - the parent listed again after the ttl sends no HEAD of a marker asked
#     before (counted by listing_proxy.py's request log);
#   - a marker another tool rewrote (new mode, new ETag) is asked again
#     once the folder's own listing shows the new ETag.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"

PORT=$(free_port)
PROXY_PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
PROXIED="http://127.0.0.1:$PROXY_PORT"
REQUESTS="$LOGS/requests.log"
MNT="$TEST_TMP/mnt"
CLOUDS="s3 gcs"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket data --configure-bucket gdata ||
    die "cannot start s3rver"
: >"$TEST_TMP/no-fragments"     # the proxy only logs the requests
_start_server listing_proxy "$PROXY_PORT" "$PROXIED/" \
    "$PYTHON" "$SKY_ROOT/tests/integration/listing_proxy.py" "$PROXY_PORT" "$PORT" s3 \
    "$TEST_TMP/no-fragments" "$REQUESTS" || die "cannot start listing_proxy.py"

# write_conf CONFIG CACHE_DIR TTL: no background crawl, whose listing of
# a folder at the same moment as the mount's would ask its markers too
# (the counts below are of what a listing asks)
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<CONF
[cache]
dir = $2

$(s3rver_cloud s3 "$PROXIED" data)
ttl = $3
index = off

$(gcs_cloud gcs "$PROXIED" gdata)
ttl = $3
index = off
CONF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a" 1s
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b" 3s
bucket_of() { [ "$1" = s3 ] && echo data || echo gdata; }
want_mtime=$(date -d '2001-02-03 04:05:06' +%s)

mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount A"
for c in $CLOUDS; do
    top="$MNT/$c/top"
    mkdir -p "$top/d1" "$top/d2" "$top/d3" "$top/plain"
    for d in d1 d2 d3; do
        echo x >"$top/$d/f"
    done
    echo y >"$top/plain/f"
    chmod 750 "$top/d1" "$top/d2"
    chmod 700 "$top/d3"
    chown 1234:2345 "$top/d2" "$top/d3"
    touch -d '2001-02-03 04:05:06' "$top/d1" "$top/d3"
done
unmount_skyfs "$MNT"

for c in $CLOUDS; do
    b=$(bucket_of "$c")
    check_eq "$c: A stored d3's mode in its marker" 16832 \
        "$(s3curl -I "$ENDPOINT/$b/top/d3/" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-amz-meta-mode" { print $2 }')"
    # "plain" becomes a prefix without marker; "x" a folder of another tool
    check "$c: drop plain/'s marker" s3curl -X DELETE "$ENDPOINT/$b/top/plain/"
    check "$c: another tool's folder x/ (040700)" \
        s3curl -X PUT -H "x-amz-meta-mode: 16832" --data-binary '' "$ENDPOINT/$b/top/x/"
    check "$c: a file in x/" s3curl -X PUT --data-binary 'z' "$ENDPOINT/$b/top/x/f"
done

# the first listing of each cloud's top (list-ahead may list the second
# cloud's while the first is looked at): one HEAD per marker in all
cp "$REQUESTS" "$LOGS/requests-before-1.log"
: >"$REQUESTS"
mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount B"
for c in $CLOUDS; do
    got=$(ls -ln --time-style=+%s "$MNT/$c/top" | awk 'NR > 1 { print $NF, $1, $3, $4 }')
    mtimes=$(ls -ln --time-style=+%s "$MNT/$c/top" | awk 'NR > 1 { print $NF, $6 }')
    check_eq "$c: ls -l through an empty cache: modes and owners" \
        "d1 drwxr-x--- 0 0
d2 drwxr-x--- 1234 2345
d3 drwx------ 1234 2345
plain drwxr-xr-x 0 0
x drwx------ 0 0" "$got"
    check_eq "$c: touched folders' mtimes through an empty cache" \
        "d1 $want_mtime
d3 $want_mtime" "$(echo "$mtimes" | grep -E '^(d1|d3) ')"
    heads=$(grep -c "^HEAD /$(bucket_of "$c")/top/[^/]*/\$" "$REQUESTS")
    check_eq "$c: one HEAD per folder marker for the first listing" 5 "$heads"
done
sleep 4
for c in $CLOUDS; do
    : >"$REQUESTS"
    ls -l "$MNT/$c/top" >/dev/null
    check "$c: the listing after the ttl went to the cloud" \
        grep -q "^GET /$(bucket_of "$c")?.*prefix=top%2F" "$REQUESTS"
    check_eq "$c: no HEAD of a marker asked before" 0 \
        "$(grep -c "^HEAD /$(bucket_of "$c")/top/[^/]*/\$" "$REQUESTS")"
    check_eq "$c: modes after the relisting" "drwxr-x--- drwx------" \
        "$(stat -c %A "$MNT/$c/top/d1" "$MNT/$c/top/x" | tr '\n' ' ' | sed 's/ $//')"
done

# another tool rewrites x/'s metadata (0750, uid 77; still empty: the same
# ETag, a newer Last-Modified).  The parent's relisting keeps what it
# asked before; x's own listing shows the new version, and the parent's
# next listing asks x/ again (one HEAD) and shows the new attributes.
for c in $CLOUDS; do
    b=$(bucket_of "$c")
    check "$c: another tool rewrites x/ (040750, uid 77)" \
        s3curl -X PUT -H "x-amz-meta-mode: 16872" -H "x-amz-meta-uid: 77" --data-binary '' \
        "$ENDPOINT/$b/top/x/"
done
sleep 4
for c in $CLOUDS; do
    ls -l "$MNT/$c/top" >/dev/null     # relisted: x's entry fresh, not looked up
    ls "$MNT/$c/top/x" >/dev/null      # x's own listing
done
sleep 4
cp "$REQUESTS" "$LOGS/requests-before-2.log"
: >"$REQUESTS"
for c in $CLOUDS; do
    ls -l "$MNT/$c/top" >/dev/null
    check_eq "$c: x after another tool's rewrite" "750 77" "$(stat -c '%a %u' "$MNT/$c/top/x")"
    check_eq "$c: x/ asked again once, d1/ not" "1 0" \
        "$(grep -c "^HEAD /$(bucket_of "$c")/top/x/\$" "$REQUESTS") $(grep -c "^HEAD /$(bucket_of "$c")/top/d1/\$" "$REQUESTS")"
done
unmount_skyfs "$MNT"

# a remount with the same cache: the folders the cache knows from their
# markers cost no HEAD; "plain" (no marker, nothing to remember in the
# cache) is asked once
sleep 4
cp "$REQUESTS" "$LOGS/requests-before-3.log"
: >"$REQUESTS"
mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot remount B"
for c in $CLOUDS; do
    got=$(ls -ln "$MNT/$c/top" | awk 'NR > 1 { print $NF, $1, $3, $4 }')
    check_eq "$c: ls -l after a remount" \
        "d1 drwxr-x--- 0 0
d2 drwxr-x--- 1234 2345
d3 drwx------ 1234 2345
plain drwxr-xr-x 0 0
x drwxr-x--- 77 0" "$got"
    check "$c: the listing after the remount went to the cloud" \
        grep -q "^GET /$(bucket_of "$c")?.*prefix=top%2F" "$REQUESTS"
    check_eq "$c: after a remount only the marker-less folder is asked" \
        "/$(bucket_of "$c")/top/plain/" \
        "$(grep "^HEAD /$(bucket_of "$c")/top/[^/]*/\$" "$REQUESTS" | cut -d' ' -f2 | sort | tr '\n' ' ' | sed 's/ $//')"
done
unmount_skyfs "$MNT"
