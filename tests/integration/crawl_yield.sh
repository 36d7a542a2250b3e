#!/usr/bin/env bash
# crawl_yield.sh - the background crawl of the search index waits while
# the mount is using the cloud, and goes on once it is quiet (issue 18:
# a cold `find` or `du` does not share the server with the crawl).
#
# An S3 bucket (s3rver behind the logging proxy) holds a few objects; the
# cloud is crawled every 2 s (index_interval) and trusts nothing it
# listed (ttl 0), so that `ls` through the mount asks the cloud each
# time.  For 6 s the mount lists the bucket without pause: the proxy's
# log must show those listings (delimited) and no crawl listing (a
# listing without a delimiter) among them, where without the wait there
# would be two or three crawls.  Then, with the mount quiet, the crawl
# lists again within seconds and completes.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver_behind logging cy || die "cannot start s3rver behind listing_proxy.py"
BUCKET_URL="http://127.0.0.1:$S3_PORT/cy"
for k in a/one b/two three; do
    printf 'x' | s3curl -T - "$BUCKET_URL/$k" -o /dev/null || die "cannot put $k"
done
write_s3_config "$CONF" "http://127.0.0.1:$PROXY_PORT" cy \
    "ttl = 0s" "negative_ttl = 0s" "index_interval = 2s"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
D="$MNT/s3"

crawl_lists() { grep '^GET /cy?' | grep 'list-type=2' | grep -vc 'delimiter='; }
mount_lists() { grep '^GET /cy?' | grep 'list-type=2' | grep -c 'delimiter='; }
crawls() {
    getfattr --only-values -n user.skyfs.crawls "$MNT/.skyfs" 2>/dev/null |
        awk '$1 == "s3" { print $5 }'
}
check "the first crawl completes" wait_until 30 eval '[ "$(crawls)" -ge 1 ]'

# --- 6 s of listings through the mount, none more than ~0.1 s apart
m=$(requests_mark)
end=$((SECONDS + 6))
while [ "$SECONDS" -lt "$end" ]; do
    ls "$D" >/dev/null 2>&1
done
busy=$(requests_since "$m")
n_mount=$(printf '%s\n' "$busy" | mount_lists)
check "the mount listed the cloud all along (more than 20 listings)" \
    test "$n_mount" -gt 20
check_eq "and the crawl did not list it meanwhile" 0 "$(printf '%s\n' "$busy" | crawl_lists)"
check_eq "ls shows the bucket" "a b three" "$(ls "$D" | paste -sd' ')"

# --- quiet: the crawl goes on
m=$(requests_mark)
before=$(crawls)
check "once the mount is quiet, the crawl lists the cloud" \
    wait_until 15 eval '[ "$(requests_since "$m" | crawl_lists)" -ge 1 ]'
check "and completes" wait_until 15 eval '[ "$(crawls)" -gt "$before" ]'
unmount_skyfs "$MNT"
