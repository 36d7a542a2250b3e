#!/usr/bin/env bash
# meta_xattr.sh - cloud metadata as xattrs and in the search index, on S3
# (s3rver), Azure (Azurite) and a local folder:
#
#   - setfattr through the mount stores user metadata; getfattr -d shows it
#     with user.skyfs.etag, the content type (S3, Azure) and the storage
#     class (S3: STANDARD, Azure: its access tier), never the POSIX fields
#     kept as metadata (mode, uid, gid, mtime);
#   - a second getfattr -d within the ttl asks the cloud nothing;
#   - `skyfs search --meta` finds a file at once after setfattr, combined
#     with --name, --cloud and size criteria, with globs and key-only
#     tests, and no longer after setfattr -x;
#   - objects made directly on the servers with metadata: Azure and local
#     listings carry it, so `skyfs index` is enough; S3 listings do not, so
#     only `skyfs index --metadata` (a HEAD per object) makes it searchable;
#   - with every server stopped, search still answers (it never uses the
#     network).
. "$(dirname "$0")/lib.sh"

AZ_KEY=$AZURITE_KEY
AZ_ACCOUNT=$AZURITE_ACCOUNT
S3_PORT=$(free_port)
AZ_PORT=$(free_port)
S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
AZ_ENDPOINT="http://127.0.0.1:$AZ_PORT/$AZ_ACCOUNT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
LOCAL="$TEST_TMP/data/loc"
mkdir -p "$LOCAL" "$TEST_TMP/cache"

start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket meta || die "cannot start s3rver"
start_azurite "$TEST_TMP/azurite" "$AZ_PORT" || die "cannot start Azurite"

SAS=$(azurite_sas)
curl -sf -X PUT "$AZ_ENDPOINT/meta?restype=container&$SAS" -o /dev/null ||
    die "cannot create container meta"

(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

$(s3rver_cloud s3 "$S3_ENDPOINT" meta)
ttl = 1h

[az]
type = azure
endpoint = $AZ_ENDPOINT
account = $AZ_ACCOUNT
key = $AZ_KEY
container = meta
ttl = 1h

[loc]
type = local
path = $LOCAL
ttl = 1h
EOF
)

requests() { # requests CLOUD: the daemon's request count for one cloud
    getfattr --only-values -n user.skyfs.requests "$MNT/.skyfs" 2>/dev/null |
        awk -v c="$1" '$1 == c { print $2 }'
}
search() {
    wait_until 30 indexed "$CONF"
    "$SKYFS" search -c "$CONF" "$@" 2>&1 | sed "s|^$MNT/||" | sort | tr '\n' ' '
}
xattr() { getfattr --absolute-names --only-values -n "$1" "$2" 2>&1; }
has_line() { grep -qxF -- "$1" <<<"$2"; }   # has_line LINE TEXT
dump() { getfattr --absolute-names -d -m - "$1" 2>/dev/null | grep -v '^#' | sed '/^$/d' | sort; }

mount_skyfs "$CONF" "$MNT" || die "cannot mount"

# ---- setfattr / getfattr through the mount, on each kind of cloud
for c in s3 az loc; do
    check "write $c/note.txt" bash -c "echo hello $c >'$MNT/$c/note.txt'"
    check "setfattr user.color on $c" setfattr -n user.color -v blue "$MNT/$c/note.txt"
    check "setfattr user.size_class on $c" setfattr -n user.size_class -v small "$MNT/$c/note.txt"
    check_eq "getfattr reads user.color back on $c" blue "$(xattr user.color "$MNT/$c/note.txt")"
done
s3_dump=$(dump "$MNT/s3/note.txt")
check "getfattr -d on s3 shows the user metadata" has_line 'user.color="blue"' "$s3_dump"
check "getfattr -d on s3 shows the etag" grep -q "^user.skyfs.etag=" <(echo "$s3_dump")
check "getfattr -d on s3 shows the content type" \
    has_line 'user.skyfs.content_type="text/plain"' "$s3_dump"
check "getfattr -d on s3 shows the storage class STANDARD" \
    has_line 'user.skyfs.storage_class="STANDARD"' "$s3_dump"
check_eq "getfattr -d on s3 shows no POSIX metadata" 0 \
    "$(grep -cE '^user\.(mode|uid|gid|mtime|atime|ctime)=' <<<"$s3_dump")"
az_dump=$(dump "$MNT/az/note.txt")
check "getfattr -d on az shows the user metadata" has_line 'user.color="blue"' "$az_dump"
check "getfattr -d on az shows the etag" grep -q "^user.skyfs.etag=" <(echo "$az_dump")
check "getfattr -d on az shows the content type" \
    has_line 'user.skyfs.content_type="text/plain"' "$az_dump"
check "getfattr -d on az shows the access tier" \
    has_line 'user.skyfs.storage_class="Hot"' "$az_dump"
check_eq "getfattr -d on az shows no POSIX metadata" 0 \
    "$(grep -cE '^user\.(mode|uid|gid|mtime|hdi_isfolder)=' <<<"$az_dump")"
loc_dump=$(dump "$MNT/loc/note.txt")
check_eq "getfattr -d on a local file: user metadata and etag only" \
    'user.color="blue" user.size_class="small" user.skyfs.etag' \
    "$(sed 's/^\(user.skyfs.etag\)=.*/\1/' <<<"$loc_dump" | tr '\n' ' ' | sed 's/ $//')"

before=$(requests s3)
dump "$MNT/s3/note.txt" >/dev/null
check_eq "a second getfattr -d within the ttl asks the cloud nothing" "$before" "$(requests s3)"
check "setting user.skyfs.content_type (as cp -a does) is accepted" \
    setfattr -n user.skyfs.content_type -v text/x-else "$MNT/s3/note.txt"
check_eq "and changes nothing" text/plain \
    "$(xattr user.skyfs.content_type "$MNT/s3/note.txt")"
check "removing it is accepted too (rsync -X does)" \
    setfattr -x user.skyfs.content_type "$MNT/s3/note.txt"
check_eq "and changes nothing either" text/plain \
    "$(xattr user.skyfs.content_type "$MNT/s3/note.txt")"
check_fails "Azure refuses a name in capitals (it would read back in lowercase)" \
    setfattr -n user.Color -v x "$MNT/az/note.txt"

# ---- search by user metadata, at once, combined with other criteria
echo "big enough to be found by size" >"$TEST_TMP/big.txt"
check "a bigger blue file on s3" cp "$TEST_TMP/big.txt" "$MNT/s3/big.txt"
check "colour it blue" setfattr -n user.color -v blue "$MNT/s3/big.txt"
check "a red one on az" bash -c \
    "echo red >'$MNT/az/red.txt' && setfattr -n user.color -v red '$MNT/az/red.txt'"
check_eq "search --meta color=blue finds every blue file at once" \
    "az/note.txt loc/note.txt s3/big.txt s3/note.txt " "$(search --meta color=blue)"
check_eq "with --name and --cloud" "s3/note.txt " \
    "$(search --meta color=blue --name 'note*' --cloud s3)"
check_eq "with a size range" "s3/big.txt " "$(search --meta color=blue --min-size 20)"
check_eq "two tests must both hold" "az/note.txt loc/note.txt s3/note.txt " \
    "$(search --meta color=blue --meta size_class=small)"
check_eq "a glob on the value" "az/note.txt az/red.txt loc/note.txt s3/big.txt s3/note.txt " \
    "$(search --meta 'color=[br]*')"
check_eq "a key alone" "az/note.txt az/red.txt loc/note.txt s3/big.txt s3/note.txt " \
    "$(search --meta color)"
check_eq "no match is no output" "" "$(search --meta color=green)"
check_eq "by content type" "az/note.txt az/red.txt s3/big.txt s3/note.txt " \
    "$(search --meta color --content-type 'text/*')"
check_eq "the .skyfs/search directory takes meta= too" "big.txt note.txt" \
    "$(ls "$MNT/.skyfs/search/cloud=s3&meta=color=blue" | tr '\n' ' ' | sed 's/ $//')"
check "setfattr -x removes user metadata" setfattr -x user.color "$MNT/s3/note.txt"
check_eq "and search no longer finds it" "az/note.txt loc/note.txt s3/big.txt " \
    "$(search --meta color=blue)"
check_eq "getfattr agrees" 'user.size_class="small"' \
    "$(dump "$MNT/s3/note.txt" | grep -v '^user.skyfs')"

# ---- objects made on the servers directly, with metadata
echo "a,b" >"$TEST_TMP/data.csv"
check "an S3 object with metadata, put directly" s3curl -X PUT -o /dev/null \
    -H 'x-amz-meta-project: apollo' -H 'Content-Type: text/csv' \
    -H 'x-amz-storage-class: STANDARD_IA' --data-binary "@$TEST_TMP/data.csv" \
    "$S3_ENDPOINT/meta/ext/data.csv"
check "an Azure blob with metadata, put directly" curl -sf -X PUT -o /dev/null \
    -H 'x-ms-blob-type: BlockBlob' -H 'x-ms-meta-Project: gemini' -H 'Content-Type: text/csv' \
    --data-binary "@$TEST_TMP/data.csv" "$AZ_ENDPOINT/meta/ext/data.csv?$SAS"
mkdir -p "$LOCAL/ext"
cp "$TEST_TMP/data.csv" "$LOCAL/ext/data.csv"
check "a local file with a user xattr, made directly" \
    setfattr -n user.project -v mercury "$LOCAL/ext/data.csv"
check "skyfs index lists everything" "$SKYFS" index -c "$CONF"
check_eq "Azure and local listings carry metadata: found after skyfs index" \
    "az/ext/data.csv loc/ext/data.csv " "$(search --meta project)"
check_eq "the Azure listing's content type is indexed" "az/ext/data.csv " \
    "$(search --content-type text/csv)"
check_eq "S3 listings carry the storage class only" "s3/big.txt s3/ext/data.csv s3/note.txt " \
    "$(search --cloud s3 --type f --storage-class STANDARD)"
check "skyfs index --metadata s3 fetches the rest" bash -c \
    "'$SKYFS' index -c '$CONF' --metadata s3 2>&1 | grep -E '^metadata s3: 1/1 files - done'"
check_eq "now the S3 object is found by its metadata" \
    "az/ext/data.csv loc/ext/data.csv s3/ext/data.csv " "$(search --meta project)"
check_eq "by value" "s3/ext/data.csv " "$(search --meta project=apollo)"
check_eq "with its content type and storage class from the HEAD" "s3/ext/data.csv " \
    "$(search --content-type 'text/*' --storage-class STANDARD_IA)"
want='user.project="apollo" user.skyfs.content_type="text/csv"'
want="$want user.skyfs.storage_class=\"STANDARD_IA\""
check_eq "getfattr shows the object's metadata through the mount" "$want" \
    "$(dump "$MNT/s3/ext/data.csv" | grep -v etag | tr '\n' ' ' | sed 's/ $//')"
# (s3rver lists every object as STANDARD, so the next listing says so too)
check "a second --metadata pass has nothing left to fetch" bash -c \
    "'$SKYFS' index -c '$CONF' --metadata s3 2>&1 | grep -E '^metadata s3: 0/0 files - done'"

# ---- search never uses the network
stop_servers
check_eq "with every server stopped, search still answers" \
    "az/note.txt loc/note.txt s3/big.txt " "$(search --meta color=blue)"
unmount_skyfs "$MNT"
