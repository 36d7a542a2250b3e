#!/usr/bin/env bash
# s3_copy_names.sh - names with the characters a URL path may carry raw
# or must escape ($ & + , : ; = @, a space, %, #, ?, non-ASCII) through
# every S3 operation that copies an object onto itself or elsewhere
# (x-amz-copy-source): chmod, chown, touch -d of a file and of a folder,
# a rename of a file; on s3rver and on Ceph's RGW, which decode that
# header differently (s3rver with JavaScript's decodeURI, which leaves
# %2B and its kin encoded: a chmod of "c++" was ENOENT there).
#
# Checks, per server and name: each operation succeeds; the folder's
# marker on the server holds the new mode; after an unmount and a fresh
# mount with an empty cache (everything read back from the server) the
# file's mode and mtime and the renamed file's bytes are right and the old
# name is gone.  s3rver gets every name but those with # and ?: it cannot
# copy them at all (decodeURI leaves %23 and %3F encoded, and raw they
# would end the path), which RGW and AWS can.
. "$(dirname "$0")/lib.sh"

NAMES=('c++' 'p$q' 'a&b' 'x=y' 'u@h' 'c:d' 'one,two;three' 'sp ace' 'pct%41' 'ünï' 'h#sh' 'q?m')
names_of() { if [ "$1" = s3rver ]; then printf '%s\n' "${NAMES[@]:0:10}"; else printf '%s\n' "${NAMES[@]}"; fi; }
# marker_mode CLOUD NAME: the x-amz-meta-mode of folder NAME's marker, octal
marker_mode() {
    local enc url
    enc=$("$PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$2")
    if [ "$1" = s3rver ]; then
        s3curl -I "http://127.0.0.1:$S3PORT/names/$enc/"
    else
        rgw_curl -I "http://127.0.0.1:$RGWPORT/names/$enc/"
    fi | tr -d '\r' | awk -F': ' 'tolower($1) == "x-amz-meta-mode" { printf "%o\n", $2 }'
}

S3PORT=$(free_port)
start_s3rver "$TEST_TMP/s3rver" "$S3PORT" --configure-bucket names || die "cannot start s3rver"
RGWPORT=$(free_port)
start_rgw "$TEST_TMP/rgw" "$RGWPORT" names || die "cannot start rgw"

write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOC
[cache]
dir = $2

$(s3rver_cloud s3rver "http://127.0.0.1:$S3PORT" names)

$(rgw_cloud rgw "http://127.0.0.1:$RGWPORT" names)
EOC
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"

MNT="$TEST_TMP/mnt"
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
for cloud in s3rver rgw; do
    while read -r n; do
        d="$MNT/$cloud/$n"
        check "$cloud: mkdir '$n'" mkdir "$d"
        check "$cloud: write '$n/$n'" sh -c 'echo "bytes of $2" >"$1"' _ "$d/$n" "$n"
        check "$cloud: chmod 0640 '$n/$n'" chmod 0640 "$d/$n"
        check "$cloud: touch -d '$n/$n'" touch -d '2020-02-03 04:05:06' "$d/$n"
        check "$cloud: chmod 0750 folder '$n'" chmod 0750 "$d"
        check "$cloud: mv '$n/$n' '$n/$n.2'" mv "$d/$n" "$d/$n.2"
        check_eq "$cloud: folder '$n''s marker has mode 40750" 40750 "$(marker_mode "$cloud" "$n")"
    done < <(names_of "$cloud")
done
unmount_skyfs "$MNT"

mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount again"
for cloud in s3rver rgw; do
    while read -r n; do
        d="$MNT/$cloud/$n"
        check_eq "$cloud: '$n/$n.2' has mode 640 and its mtime" "640 2020-02-03 04:05:06" \
            "$(stat -c '%a %y' "$d/$n.2" 2>&1 | cut -c1-23)"
        check_eq "$cloud: '$n/$n.2' holds its bytes" "bytes of $n" "$(cat "$d/$n.2" 2>&1)"
        check "$cloud: '$n/$n' is gone" test ! -e "$d/$n"
    done < <(names_of "$cloud")
done
unmount_skyfs "$MNT"
