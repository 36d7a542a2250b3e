#!/usr/bin/env bash
# list_ahead.sh - opening a folder lists its subfolders in the background
# (the clouds' list_ahead key).
#
# On s3rver, behind listing_proxy.py (which logs every request): a folder
# top/ with six subfolders d1..d6, each holding a file and a subfolder
# sub/ with a file.  With index = off (no crawl) and ttl = 1h:
#   - list_ahead = 0: a cold `ls top` lists top/ only (no listing of a
#     subfolder is sent);
#   - list_ahead = 2 (fresh cache): after one cold `ls top`, the six
#     subfolders get listed in the background (the proxy sees their
#     listings, and skyfs_list_ahead_total counts 6); with the server
#     then stopped, each subfolder lists from the cache;
#   - offline cloud: opening a folder whose subfolder was never listed
#     queues no listing ahead (skyfs_list_ahead_total stays put);
#   - `find` over the tree (list_ahead = 2, fresh cache) gives the tree.
. "$(dirname "$0")/lib.sh"

METRICS_PORT=$(free_port)
MNT="$TEST_TMP/mnt"
start_s3rver_behind logging tree || die "cannot start s3rver behind listing_proxy.py"

# write_conf NAME LIST_AHEAD: config NAME.conf with its own cache
write_conf() {
    mkdir -p "$TEST_TMP/cache-$1"
    (umask 077 && cat >"$TEST_TMP/$1.conf" <<EOF
[daemon]
metrics_listen = 127.0.0.1:$METRICS_PORT

[cache]
dir = $TEST_TMP/cache-$1

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" tree)
ttl = 1h
index = off
list_ahead = $2
EOF
    )
}
write_conf off 0
write_conf on 2
write_conf find 2

: >"$TEST_TMP/expected"
echo "top" >>"$TEST_TMP/expected"
for d in 1 2 3 4 5 6; do
    for key in "top/d$d/f$d" "top/d$d/sub/g$d"; do
        echo "$key" | s3curl -T - "http://127.0.0.1:$S3_PORT/tree/$key" ||
            die "cannot upload $key"
    done
    printf 'top/d%s\ntop/d%s/f%s\ntop/d%s/sub\ntop/d%s/sub/g%s\n' "$d" "$d" "$d" "$d" "$d" "$d" \
        >>"$TEST_TMP/expected"
done
sort -o "$TEST_TMP/expected" "$TEST_TMP/expected"

sub_lists() {   # listings of top/dN/ sent so far
    grep -Ec "^GET [^ ]*prefix=top(%2F|/)d[0-9](%2F|/)(&|$| )" "$REQUESTS"
}
list_ahead_total() {
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
        awk '$1 == "skyfs_list_ahead_total" { print $2 }'
}

# --- list_ahead = 0
mount_skyfs "$TEST_TMP/off.conf" "$MNT" || die "cannot mount off.conf"
check_eq "list_ahead = 0: ls top shows the six subfolders" "d1 d2 d3 d4 d5 d6" \
    "$(ls "$MNT/s3/top" | xargs)"
sleep 1
check_eq "list_ahead = 0: no subfolder was listed" 0 "$(sub_lists)"
check_eq "list_ahead = 0: nothing queued ahead" 0 "$(list_ahead_total)"
unmount_skyfs "$MNT"

# --- find over the tree
mount_skyfs "$TEST_TMP/find.conf" "$MNT" || die "cannot mount find.conf"
find "$MNT/s3/top" >"$TEST_TMP/found" 2>&1
check "list_ahead = 2: find over the tree gives the tree" \
    cmp "$TEST_TMP/expected" <(sed "s|^$MNT/s3/||" "$TEST_TMP/found" | sort)
unmount_skyfs "$MNT"

# --- list_ahead = 2, then the server stops
before=$(sub_lists)
mount_skyfs "$TEST_TMP/on.conf" "$MNT" || die "cannot mount on.conf"
check_eq "list_ahead = 2: ls top shows the six subfolders" "d1 d2 d3 d4 d5 d6" \
    "$(ls "$MNT/s3/top" | xargs)"
listed_since() {    # listed_since N: at least N more listings of top/dN/ were sent
    [ "$(( $(sub_lists) - before ))" -ge "$1" ]
}
check "list_ahead = 2: the six subfolders get listed in the background" wait_until 60 listed_since 6
check_eq "list_ahead = 2: six folders were queued ahead" 6 "$(list_ahead_total)"
stop_servers
for d in 1 2 3 4 5 6; do
    check_eq "server stopped: top/d$d lists from the cache" "f$d sub" \
        "$(ls "$MNT/s3/top/d$d" 2>&1 | xargs)"
done

# --- offline: make the cloud known offline, then open a folder whose
# subfolder was never listed
ls "$MNT/s3/top/d1/sub" >/dev/null 2>&1
check "the cloud is offline" wait_until 30 bash -c "'$SKYFS' status -c '$TEST_TMP/on.conf' | grep -q offline"
ahead=$(list_ahead_total)
ls "$MNT/s3/top/d2" >/dev/null 2>&1
check_eq "offline: opening top/d2 queues no listing ahead of top/d2/sub" "$ahead" \
    "$(list_ahead_total)"
unmount_skyfs "$MNT"
