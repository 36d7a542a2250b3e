#!/usr/bin/env bash
# liveness_slow.sh - a server that is slow (here: holds every request until
# the test lets it go, so nothing depends on timing) does not hold up
# `stat` and `ls -l` of entries the cache has: once the refresh of an
# expired entry or listing takes longer than a short bound, the cached
# answer is given, and the refresh goes on in the background and updates
# the cache when the server answers.
#
# liveness_proxy.py sits between skyfs and s3rver; "gate" holds requests.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
start_s3rver_behind liveness slow || die "cannot start s3rver behind liveness_proxy.py"
# ttl 8 s: long enough that the listing refreshed in the background (it
# counts from when it was asked) is still fresh when the test looks.
# index = off: the crawl (it starts once the cloud pauses) would add
# requests of its own to the counts.
write_s3_config "$CONF" "http://127.0.0.1:$PROXY_PORT" slow "ttl = 8s" "index = off"
echo "some text" >"$TEST_TMP/a"
s3curl -X PUT -T "$TEST_TMP/a" "http://127.0.0.1:$S3_PORT/slow/a.txt" -o /dev/null ||
    die "cannot put a.txt"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
requests() {
    getfattr --absolute-names --only-values -n user.skyfs.requests "$MNT/.skyfs" |
        awk '$1 == "s3" { print $2 }'
}
check_eq "the cloud lists" "a.txt" "$(ls "$MNT/s3")"
sleep 8.3       # the listing and a.txt's attributes expire
echo gate >"$MODE"
gated=$(cat "$COUNT")

# in_background NAME CMD...: runs CMD with its output in $TEST_TMP/NAME.out
# and its exit status, once it ends, in $TEST_TMP/NAME.rc.
in_background() {
    local name=$1; shift
    ("$@" >"$TEST_TMP/$name.out" 2>&1; echo $? >"$TEST_TMP/$name.rc") &
}
in_background stat stat -c %s "$MNT/s3/a.txt"
check "stat of an expired entry answers while the server holds its refresh" \
    wait_until 10 test -s "$TEST_TMP/stat.rc"
check_eq "with the cached size" "0 10" "$(cat "$TEST_TMP/stat.rc" "$TEST_TMP/stat.out" | xargs)"
in_background ls ls -l "$MNT/s3"
check "ls -l of an expired listing answers while the server holds it" \
    wait_until 10 test -s "$TEST_TMP/ls.rc"
check "with the cached entries" grep -q "a.txt" "$TEST_TMP/ls.out"
check_eq "ls -l exited 0" "0" "$(cat "$TEST_TMP/ls.rc")"
check "both refreshes did reach the server" test "$(cat "$COUNT")" -ge $((gated + 2))

before=$(requests)
s3curl -X PUT -T "$TEST_TMP/a" "http://127.0.0.1:$S3_PORT/slow/new.txt" -o /dev/null ||
    die "cannot put new.txt"
echo forward >"$MODE"
requests_reach() { [ "$(requests)" -ge "$1" ]; }
check "the held refreshes end in the background" wait_until 20 requests_reach $((before + 2))
after=$(requests)
check_eq "the listing they brought is in the cache" "a.txt new.txt" "$(echo $(ls "$MNT/s3"))"
check_eq "so that ls needed no request" "$after" "$(requests)"
unmount_skyfs "$MNT"
