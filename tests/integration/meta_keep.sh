#!/usr/bin/env bash
# meta_keep.sh - rewriting a file keeps its cloud metadata, and new files
# get a real Content-Type, on S3 (s3rver) and Azure (Azurite); a local
# folder keeps its xattrs too.  Checked on the servers themselves (HEAD):
#
#   - setfattr user.color=blue, then an in-place rewrite (echo >) and an
#     append (>>) through the mount: the server's object still has
#     x-amz-meta-color / x-ms-meta-color, and after a remount with an empty
#     cache getfattr shows user.color=blue; `skyfs search --meta color=blue`
#     still finds the file (the index learnt what the upload sent);
#   - an object made directly on the server with a Content-Type and user
#     metadata (which the cache has never seen) keeps both when rewritten
#     through the mount (one HEAD before the upload);
#   - new files get their type from /etc/mime.types: photo.jpg image/jpeg,
#     index.html text/html, a name without extension
#     application/octet-stream; a new 20 MiB movie.mp4 (a streamed upload)
#     video/mp4, with a user.color set while it was still open;
#   - rename (copy + delete on the server) keeps the metadata.
# (An editor's save - write f.tmp, mv f.tmp f - replaces f by another file,
# which keeps nothing in POSIX either; it is not checked.)
. "$(dirname "$0")/lib.sh"

AZ_KEY=$AZURITE_KEY
AZ_ACCOUNT=$AZURITE_ACCOUNT
S3_PORT=$(free_port)
AZ_PORT=$(free_port)
S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
AZ_ENDPOINT="http://127.0.0.1:$AZ_PORT/$AZ_ACCOUNT"
MNT="$TEST_TMP/mnt"
LOCAL="$TEST_TMP/data/loc"
MiB=$((1 << 20))
mkdir -p "$LOCAL"

start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket keep || die "cannot start s3rver"
start_azurite "$TEST_TMP/azurite" "$AZ_PORT" || die "cannot start Azurite"

SAS=$(azurite_sas)
curl -sf -X PUT "$AZ_ENDPOINT/keep?restype=container&$SAS" -o /dev/null ||
    die "cannot create container keep"

# header CLOUD PATH NAME: the value of response header NAME (lowercase) of
# a HEAD of the object on the server itself; "(none)" when absent.
header() {
    local out
    case "$1" in
    s3) out=$(s3curl -I "$S3_ENDPOINT/keep/$2") ;;
    az) out=$(curl -sfI "$AZ_ENDPOINT/keep/$2?$SAS") ;;
    esac || { echo "(HEAD failed)"; return; }
    out=$(tr -d '\r' <<<"$out" | awk -v h="$3" 'BEGIN { FS = ": " }
        tolower($1) == h { sub(/^[^:]*: /, ""); print; found = 1 }
        END { if (!found) print "(none)" }')
    echo "$out"
}
meta_header() { case "$1" in s3) echo "x-amz-meta-$2" ;; az) echo "x-ms-meta-$2" ;; esac; }

# write_conf CONFIG CACHE_DIR
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

$(s3rver_cloud s3 "$S3_ENDPOINT" keep)
ttl = 1h

[az]
type = azure
endpoint = $AZ_ENDPOINT
account = $AZ_ACCOUNT
key = $AZ_KEY
container = keep
ttl = 1h

[loc]
type = local
path = $LOCAL
ttl = 1h
EOF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"

xattr() { getfattr --absolute-names --only-values -n "$1" "$2" 2>&1; }
search() {
    wait_until 30 indexed "$1"
    "$SKYFS" search -c "$1" "${@:2}" 2>&1 | sed "s|^$MNT/||" | sort | tr '\n' ' '
}

# objects other tools made, with a Content-Type and user metadata
echo "body { color: red }" >"$TEST_TMP/site.css"
check "an S3 object with its own type and metadata, put directly" s3curl -X PUT -o /dev/null \
    -H 'Content-Type: text/x-custom' -H 'x-amz-meta-owner: web' \
    --data-binary "@$TEST_TMP/site.css" "$S3_ENDPOINT/keep/site.css"
check "an Azure blob with its own type and metadata, put directly" curl -sf -X PUT -o /dev/null \
    -H 'x-ms-blob-type: BlockBlob' -H 'Content-Type: text/x-custom' -H 'x-ms-meta-owner: web' \
    --data-binary "@$TEST_TMP/site.css" "$AZ_ENDPOINT/keep/site.css?$SAS"

mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"

# ---- rewrites keep the user metadata set through the mount
for c in s3 az loc; do
    check "write $c/keep.txt" bash -c "echo one >'$MNT/$c/keep.txt'"
    check "setfattr user.color=blue on $c/keep.txt" \
        setfattr -n user.color -v blue "$MNT/$c/keep.txt"
    check "rewrite $c/keep.txt in place" bash -c "echo two >'$MNT/$c/keep.txt'"
    check "append to $c/keep.txt" bash -c "echo three >>'$MNT/$c/keep.txt'"
    check_eq "$c/keep.txt has the new content" "two
three" "$(cat "$MNT/$c/keep.txt")"
    check_eq "getfattr still shows user.color on $c" blue "$(xattr user.color "$MNT/$c/keep.txt")"
done
for c in s3 az; do
    check_eq "the $c server's object still has the user metadata" blue \
        "$(header $c keep.txt "$(meta_header $c color)")"
    check_eq "and a content type from its name on $c" text/plain \
        "$(header $c keep.txt content-type)"
done
check_eq "the local file keeps its xattr" blue "$(xattr user.color "$LOCAL/keep.txt")"
check_eq "search --meta color=blue finds the rewritten files" \
    "az/keep.txt loc/keep.txt s3/keep.txt " "$(search "$TEST_TMP/a.conf" --meta color=blue)"
check_eq "and --content-type text/plain the S3 and Azure ones" "az/keep.txt s3/keep.txt " \
    "$(search "$TEST_TMP/a.conf" --content-type text/plain)"

# ---- an object the cache never saw the metadata of keeps it too
for c in s3 az; do
    check "rewrite $c/site.css (made by another tool)" \
        bash -c "echo 'body { color: blue }' >'$MNT/$c/site.css'"
    check_eq "$c/site.css has the new content" "body { color: blue }" \
        "$(cat "$MNT/$c/site.css")"
    check_eq "the $c server's object kept its content type" text/x-custom \
        "$(header $c site.css content-type)"
    check_eq "and its user metadata" web "$(header $c site.css "$(meta_header $c owner)")"
done

# ---- new files: a content type from the name
for c in s3 az; do
    check "new files on $c" bash -c "echo jpeg >'$MNT/$c/photo.jpg' &&
        echo '<p>' >'$MNT/$c/index.html' && echo plain >'$MNT/$c/NOTES'"
    check_eq "photo.jpg is image/jpeg on $c" image/jpeg "$(header $c photo.jpg content-type)"
    check_eq "index.html is text/html on $c" text/html "$(header $c index.html content-type)"
    check_eq "a name without extension is application/octet-stream on $c" \
        application/octet-stream "$(header $c NOTES content-type)"
    check_eq "getfattr shows the type on $c" image/jpeg \
        "$(xattr user.skyfs.content_type "$MNT/$c/photo.jpg")"
done

# ---- a new 20 MiB file goes up while written (streamed): it gets its type,
# and a user.color set while it is still open
head -c $((20 * MiB)) /dev/urandom >"$TEST_TMP/movie.mp4"
for c in s3 az; do
    # (one open file, no dup closed before the end: every close() flushes)
    check "write $c/movie.mp4, setfattr while it is open, close" "$PYTHON" -c "
import os, sys
src, dst = sys.argv[1:3]
with open(dst, 'wb') as out, open(src, 'rb') as data:
    out.write(data.read())
    os.setxattr(dst, 'user.color', b'green')
" "$TEST_TMP/movie.mp4" "$MNT/$c/movie.mp4"
    check "$c/movie.mp4 has the right bytes" cmp "$TEST_TMP/movie.mp4" "$MNT/$c/movie.mp4"
    check_eq "movie.mp4 is video/mp4 on the $c server" video/mp4 \
        "$(header $c movie.mp4 content-type)"
    check_eq "with the user.color set while it was written" green \
        "$(header $c movie.mp4 "$(meta_header $c color)")"
done

# ---- rename keeps the metadata (a copy on the server)
for c in s3 az; do
    check "setfattr user.color=red on $c/photo.jpg" setfattr -n user.color -v red "$MNT/$c/photo.jpg"
    check "mv $c/photo.jpg $c/moved.jpg" mv "$MNT/$c/photo.jpg" "$MNT/$c/moved.jpg"
    check_eq "the moved $c object keeps its user metadata" red \
        "$(header $c moved.jpg "$(meta_header $c color)")"
    check_eq "and its content type" image/jpeg "$(header $c moved.jpg content-type)"
done
unmount_skyfs "$MNT"

# ---- a fresh mount with an empty cache reads it all back
mount_skyfs "$TEST_TMP/b.conf" "$MNT" || die "cannot mount again"
for c in s3 az loc; do
    check_eq "after a remount, getfattr shows user.color on $c/keep.txt" blue \
        "$(xattr user.color "$MNT/$c/keep.txt")"
done
for c in s3 az; do
    check_eq "and user.color on the moved $c file" red "$(xattr user.color "$MNT/$c/moved.jpg")"
    check_eq "and user.owner on $c/site.css" web "$(xattr user.owner "$MNT/$c/site.css")"
done
unmount_skyfs "$MNT"
