#!/usr/bin/env bash
# azure_posix.sh - POSIX semantics over Azure Blob Storage (Azurite), and
# moving trees between an Azure cloud and a local cloud in the same mount.
#
# Clouds: "az" (container "posix", Shared Key from account + key), "acct"
# (no container: the account's containers are its directories; credentials
# from a connection string) and "loc" (type = local).  Checks:
#   - mkdir in "acct" creates a container, which "az" then shows;
#   - posix_ops.py gives the same transcript on the mount as on a plain
#     directory (create/read/write/append/truncate/rename/mkdir/rmdir/
#     unlink/symlink/chmod/utime/xattrs), before and after the TTL;
#   - what skyfs stored is in the blobs the way other tools expect it
#     (metadata mode/mtime, blobfuse2 directory markers, symlink bodies);
#   - cp -a, cp -r and mv (EXDEV: copy + delete) from Azure to local and
#     back keep content, modes and mtimes, and a remount shows the same.
. "$(dirname "$0")/lib.sh"

AZ_KEY=$AZURITE_KEY
AZ_ACCOUNT=$AZURITE_ACCOUNT
PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT/$AZ_ACCOUNT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
LOCAL="$TEST_TMP/data/loc"
PLAIN="$TEST_TMP/plain"
SRC="$TEST_TMP/src"

start_azurite "$TEST_TMP/azurite" "$PORT" || die "cannot start Azurite"

mkdir -p "$LOCAL" "$PLAIN" "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[az]
type = azure
endpoint = $ENDPOINT
account = $AZ_ACCOUNT
key = $AZ_KEY
container = posix
ttl = 1s

[acct]
type = azure
connection_string = DefaultEndpointsProtocol=http;AccountName=$AZ_ACCOUNT;AccountKey=$AZ_KEY;BlobEndpoint=$ENDPOINT;
ttl = 1s

[loc]
type = local
path = $LOCAL
ttl = 1s
EOF
)

SAS=$(azurite_sas)

# blob_header CONTAINER BLOB HEADER: one response header of Get Blob
# Properties, straight from Azurite.
blob_header() {
    curl -sf -I "$ENDPOINT/$1/$2?$SAS" | header_of "$3"
}

# tree_state DIR: every path under DIR with kind, mode, size, mtime (s) and
# a checksum, sorted; symlinks with their targets.
tree_state() {
    (cd "$1" && find . -mindepth 1 -printf '%p %y %m %s %T@\n' | LC_ALL=C sort |
        while read -r p y m s t; do
            case $y in
                f) echo "$p f $m $s ${t%.*} $(md5sum <"$p" | cut -c1-12)" ;;
                l) echo "$p l -> $(readlink "$p")" ;;
                *) echo "$p $y $m ${t%.*}" ;;
            esac
        done)
}

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"

# --- containers through the account root
check "mkdir in an account cloud creates a container" mkdir "$MNT/acct/posix"
check_eq "the container shows in the account cloud" "posix" \
    "$(find "$MNT/acct" -mindepth 1 -maxdepth 1 -name posix -printf '%f\n' 2>&1)"
check "the container cloud is an empty directory" test -d "$MNT/az"
check_eq "a file at the account root is refused (EPERM)" EPERM \
    "$(errno_of create "$MNT/acct/file.txt")"

# --- the same POSIX script on the mount and on a plain directory
check "mkdir inside the container" mkdir "$MNT/az/posix"
mkdir "$PLAIN/posix"
"$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$PLAIN/posix" --kind azure \
    --root "$PLAIN" >"$TEST_TMP/plain.out" 2>&1
timeout 300 "$PYTHON" "$SKY_ROOT/tests/integration/posix_ops.py" "$MNT/az/posix" --kind azure \
    --root "$MNT/az" \
    >"$TEST_TMP/mount.out" 2>&1
check "POSIX ops give the same results and errnos on Azure as on a plain directory" \
    diff -u "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
check "both transcripts ran to their end" \
    transcript_complete "$TEST_TMP/plain.out" "$TEST_TMP/mount.out"
sleep 2
check "after the TTL the Azure tree matches the plain one (diff -r)" \
    diff -r --no-dereference "$PLAIN/posix" "$MNT/az/posix"
check "the same tree through the account cloud (acct/posix/posix)" \
    diff -r --no-dereference "$PLAIN/posix" "$MNT/acct/posix/posix"

# --- what the blobs look like to other tools
check_eq "a symlink blob holds its target" "f2" \
    "$(curl -sf "$ENDPOINT/posix/posix/ln?$SAS" 2>&1)"
check_eq "a symlink blob's mode metadata has S_IFLNK (0120777)" "$((0120777))" \
    "$(blob_header posix posix/ln x-ms-meta-mode)"
check_eq "a file's mode metadata is the decimal st_mode" "$((0100755))" \
    "$(blob_header posix posix/f2 x-ms-meta-mode)"
check_eq "mkdir writes a blobfuse2 marker (hdi_isfolder=true)" "true" \
    "$(blob_header posix posix/modes x-ms-meta-hdi_isfolder)"
check_eq "utime is stored as rclone's RFC 3339 mtime" "2005-03-18T01:58:31.000000000Z" \
    "$(blob_header posix posix/modes x-ms-meta-mtime)"

# --- special files and hard links
check "mkfifo" mkfifo -m 0640 "$MNT/az/fifo"
check_eq "a FIFO is an empty blob whose mode metadata has S_IFIFO (010640)" "$((010640)) 0" \
    "$(blob_header posix fifo x-ms-meta-mode) $(blob_header posix fifo content-length)"
check "mknod c 1 3" mknod -m 0600 "$MNT/az/null" c 1 3
check_eq "a device's mode has S_IFCHR (020600) and its number is metadata rdev" \
    "$((020600)) 259" "$(blob_header posix null x-ms-meta-mode) $(blob_header posix null x-ms-meta-rdev)"
check "chmod a FIFO" chmod 0604 "$MNT/az/fifo"
check "chown a device" chown 123:456 "$MNT/az/null"
sleep 2
check_eq "after the TTL (a fresh listing) the special files keep kinds and modes" \
    "fifo 604 0,0 0:0|character special file 600 1,3 123:456" \
    "$(ls "$MNT/az" >/dev/null; for f in fifo null; do
         stat -c '%F %a %t,%T %u:%g' "$MNT/az/$f"; done | paste -sd'|')"
check_eq "the device's blob keeps its number after the chown" "259" \
    "$(blob_header posix null x-ms-meta-rdev)"
check "rm of special files deletes their blobs" rm "$MNT/az/fifo" "$MNT/az/null"
check_eq "link on Azure is EPERM: a blob has one name" EPERM \
    "$(errno_of link "$MNT/az/posix/f2" "$MNT/az/posix/f2-link")"

# --- a "dir/" marker blob another tool made is the directory's metadata
curl -sf -X PUT -H "x-ms-blob-type: BlockBlob" -H "x-ms-meta-mode: $((040750))" \
    -H "x-ms-meta-mtime: 2001-02-03T04:05:06Z" --data-binary "" \
    "$ENDPOINT/posix/legacy/?$SAS" >/dev/null
check_eq "a directory with only a dir/ marker has the marker's mode and mtime" \
    "directory 750 981173106" \
    "$(wait_until 10 test -d "$MNT/az/legacy"; stat -c '%F %a %Y' "$MNT/az/legacy" 2>&1)"
check "chmod of that directory" chmod 0700 "$MNT/az/legacy"
check "utime of that directory" touch -d '2002-03-04 05:06:07 UTC' "$MNT/az/legacy"
check_eq "both edit the dir/ marker (S_IFDIR|0700, the new mtime)" \
    "$((040700)) 2002-03-04T05:06:07.000000000Z" \
    "$(blob_header posix legacy/ x-ms-meta-mode) $(blob_header posix legacy/ x-ms-meta-mtime)"
check_eq "no second marker (a \"legacy\" blob with hdi_isfolder) is made" "" \
    "$(curl -s -o /dev/null -w '%{http_code}' -I "$ENDPOINT/posix/legacy?$SAS" | grep -v 404)"
check "setxattr on that directory" setfattr -n user.origin -v other-tool "$MNT/az/legacy"
check_eq "is stored on the dir/ marker too" "other-tool" "$(blob_header posix legacy/ x-ms-meta-origin)"
sleep 2
check_eq "after the TTL the directory still shows the marker's attributes" "directory 700 1015218367" \
    "$(ls "$MNT/az" >/dev/null; stat -c '%F %a %Y' "$MNT/az/legacy" 2>&1)"
check "rmdir of that directory" rmdir "$MNT/az/legacy"
check_eq "deletes the dir/ marker" "404" \
    "$(curl -s -o /dev/null -w '%{http_code}' -I "$ENDPOINT/posix/legacy/?$SAS")"

# --- moving data between the Azure and the local cloud
mkdir -p "$SRC/tree/sub/deeper"
printf 'top file\n' >"$SRC/tree/top.txt"
head -c 300000 /dev/urandom >"$SRC/tree/sub/random.bin"
printf 'deep\n' >"$SRC/tree/sub/deeper/deep.txt"
printf '#!/bin/sh\necho hi\n' >"$SRC/tree/run.sh"
ln -s sub/random.bin "$SRC/tree/link"
chmod 0640 "$SRC/tree/top.txt"
chmod 0755 "$SRC/tree/run.sh"
chmod 0750 "$SRC/tree/sub"
touch -h -d '2020-02-02 12:00:00' "$SRC/tree/top.txt" "$SRC/tree/run.sh" "$SRC/tree/link"
touch -d '2019-01-01 00:00:00' "$SRC/tree/sub/random.bin" "$SRC/tree/sub/deeper" \
    "$SRC/tree/sub"
EXPECT=$(tree_state "$SRC/tree")

check "cp -a a tree into Azure" cp -a "$SRC/tree" "$MNT/az/tree"
check_eq "cp -a into Azure keeps content, modes and mtimes" "$EXPECT" \
    "$(tree_state "$MNT/az/tree" 2>&1)"
check "cp -a from Azure to the local cloud" cp -a "$MNT/az/tree" "$MNT/loc/tree"
check_eq "Azure -> local keeps content, modes and mtimes" "$EXPECT" \
    "$(tree_state "$LOCAL/tree" 2>&1)"
check "cp -r from Azure to the local cloud" cp -r "$MNT/az/tree" "$MNT/loc/tree-r"
check "cp -r copies every byte" diff -r --no-dereference "$SRC/tree" "$LOCAL/tree-r"

check "mv a tree from local to Azure (a cross-cloud copy)" mv "$MNT/loc/tree" "$MNT/az/moved"
check_eq "mv local -> Azure keeps content, modes and mtimes" "$EXPECT" \
    "$(tree_state "$MNT/az/moved" 2>&1)"
check_eq "the tree is gone from the local cloud" ENOENT "$(errno_of stat "$LOCAL/tree")"
check "mv the tree back from Azure to local" mv "$MNT/az/moved" "$MNT/loc/back"
check_eq "mv Azure -> local keeps content, modes and mtimes" "$EXPECT" \
    "$(tree_state "$LOCAL/back" 2>&1)"
check_eq "the tree is gone from Azure" ENOENT "$(errno_of stat "$MNT/az/moved")"
check_eq "no blob is left under moved/" "" \
    "$(curl -sf "$ENDPOINT/posix?restype=container&comp=list&prefix=moved&$SAS" |
        grep -o '<Name>[^<]*</Name>')"
check "mv within Azure renames a directory" mv "$MNT/az/tree" "$MNT/az/renamed"
check_eq "rename within Azure keeps content, modes and mtimes" "$EXPECT" \
    "$(tree_state "$MNT/az/renamed" 2>&1)"

unmount_skyfs "$MNT"

# --- a fresh mount (empty cache) sees what is stored in the blobs
rm -rf "$TEST_TMP/cache"
mkdir -p "$TEST_TMP/cache"
mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF again"
check_eq "after a remount the tree has the same content, modes and mtimes" "$EXPECT" \
    "$(tree_state "$MNT/az/renamed" 2>&1)"
check "after a remount the POSIX tree matches the plain one" \
    diff -r --no-dereference "$PLAIN/posix" "$MNT/az/posix"
unmount_skyfs "$MNT"
