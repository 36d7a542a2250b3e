#!/usr/bin/env bash
# rsync_xattr.sh - `rsync -aX` between clouds works, as the README says:
# the read-only user.skyfs.* attributes the source or the destination
# shows (etag, content type, storage class) are accepted when set and
# when removed, and change nothing; user metadata is copied.  Local cloud
# "docs" to S3 cloud "s3" (s3rver) and back, then again after a change
# (rsync then removes the destination's names the source lacks).
. "$(dirname "$0")/lib.sh"

command -v rsync >/dev/null || die "rsync is missing (run make deps)"
PORT=$(free_port)
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
DOCS="$TEST_TMP/data/docs"
mkdir -p "$DOCS/sub" "$TEST_TMP/cache"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket sync || die "cannot start s3rver"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[docs]
type = local
path = $DOCS
ttl = 1s

$(s3rver_cloud s3 "http://127.0.0.1:$PORT" sync)
ttl = 1s
EOF
)
echo one >"$DOCS/a.txt"
echo two >"$DOCS/sub/b.csv"
setfattr -n user.color -v blue "$DOCS/a.txt"

mount_skyfs "$CONF" "$MNT" || die "cannot mount"
check "getfattr shows user.skyfs.etag on the source" \
    bash -c "getfattr -d -m - '$MNT/docs/a.txt' | grep -q user.skyfs.etag"
check "rsync -aX local -> s3 exits 0" rsync -aX "$MNT/docs/" "$MNT/s3/copy/"
check_eq "the copy has the data" one "$(cat "$MNT/s3/copy/a.txt")"
check_eq "the copy has the user metadata" blue \
    "$(getfattr --only-values -n user.color "$MNT/s3/copy/a.txt" 2>/dev/null)"
echo one-changed >"$MNT/docs/a.txt"
echo three >"$MNT/docs/sub/c.txt"
check "rsync -aX again, over copies with a content type, exits 0" \
    rsync -aX "$MNT/docs/" "$MNT/s3/copy/"
check_eq "the second rsync updated the copy" one-changed "$(cat "$MNT/s3/copy/a.txt")"
check "rsync -aX s3 -> local exits 0" rsync -aX "$MNT/s3/copy/" "$MNT/docs/back/"
check_eq "the copy back has the data" two "$(cat "$MNT/docs/back/sub/b.csv")"
check_eq "the copy back has the user metadata" blue \
    "$(getfattr --only-values -n user.color "$MNT/docs/back/a.txt" 2>/dev/null)"
ctype=$(getfattr --only-values -n user.skyfs.content_type "$MNT/s3/copy/a.txt" 2>/dev/null)
check "the copy has a content type" test -n "$ctype"
check "removing user.skyfs.content_type is accepted" \
    setfattr -x user.skyfs.content_type "$MNT/s3/copy/a.txt"
check_eq "and changes nothing" "$ctype" \
    "$(getfattr --only-values -n user.skyfs.content_type "$MNT/s3/copy/a.txt" 2>/dev/null)"
unmount_skyfs "$MNT"
