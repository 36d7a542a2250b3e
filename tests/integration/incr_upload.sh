#!/usr/bin/env bash
# incr_upload.sh - incremental uploads: a file changed in part sends only
# what changed, where the cloud allows it, and its content is exactly
# right afterwards.  One mount over three clouds: S3 (s3rver), Azure
# (Azurite) and a local folder.  On each, a 64 MiB file is written, then
# 1 MiB is appended, then 1 MiB is overwritten in the middle, then (Azure
# and local) the file is cut to 40 MiB + 3 bytes; each step is closed
# (uploaded) before the next.  Bytes sent are read from the mount's metrics
# (skyfs_cloud_sent_bytes_total per cloud); for the local cloud from the
# driver's own debug line ("N of M bytes written, the rest cloned").
#
# Checks:
#   - Azure: the append sends 1 MiB (the blob's committed 8 MiB blocks are
#     kept by Put Block List), the middle write one 8 MiB block (the block
#     holding it), the cut 3 bytes;
#   - local: the append writes 1 MiB, the middle write one 4 MiB cache
#     block, the cut 3 bytes; the file is replaced by a rename (new inode),
#     as a whole write is: each version is held open until the end, and
#     still reads what it held then (an inode number alone proves nothing:
#     ext4 hands a freed one out again at once);
#   - S3 on s3rver: s3rver answers UploadPartCopy with NotImplemented, so
#     the file goes up whole each time (65 MiB sent for the append), and
#     the log says why once, not at every upload;
#   - on every cloud: the server holds exactly the expected bytes after each
#     step, and a fresh mount with an empty cache reads them back.
. "$(dirname "$0")/lib.sh"

MiB=$((1 << 20))

S3PORT=$(free_port)
start_s3rver "$TEST_TMP/s3rver" "$S3PORT" --configure-bucket incr || die "cannot start s3rver"
S3END="http://127.0.0.1:$S3PORT"

AZPORT=$(free_port)
start_azurite "$TEST_TMP/azurite" "$AZPORT" || die "cannot start Azurite"
AZEND="http://127.0.0.1:$AZPORT/$AZURITE_ACCOUNT"
SAS=$(azurite_sas)
curl -sf -X PUT "$AZEND/incr?restype=container&$SAS" -o /dev/null ||
    die "cannot create Azure container incr"

LOCALDIR="$TEST_TMP/localcloud"
mkdir -p "$LOCALDIR"

# write_conf CONFIG CACHE_DIR
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

[daemon]
log_level = debug

$(s3rver_cloud s3 "$S3END" incr)
ttl = 1s

[az]
type = azure
endpoint = $AZEND
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
container = incr
ttl = 1s

[loc]
type = local
path = $LOCALDIR
ttl = 1s
EOF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"

MNT="$TEST_TMP/mnt"
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
LOG="$LOGS/mnt.log"

# server_has CLOUD FILE: the cloud's own copy of big.bin equals FILE.
server_has() {
    case "$1" in
    s3) s3curl "$S3END/incr/big.bin" | cmp - "$2" ;;
    az) curl -sf "$AZEND/incr/big.bin?$SAS" | cmp - "$2" ;;
    loc) cmp "$LOCALDIR/big.bin" "$2" ;;
    esac
}
# local_written N: the local driver's last debug line for big.bin says N
# bytes were written.
local_written() {
    local line
    line=$(grep -a '"big.bin": .* bytes written, the rest cloned' "$LOG" | tail -n 1)
    echo "$line"
    case "$line" in *"\"big.bin\": $1 of "*) return 0 ;; esac
    return 1
}

head -c $((64 * MiB)) /dev/urandom >"$TEST_TMP/base" || die "cannot make data"
head -c "$MiB" /dev/urandom >"$TEST_TMP/tail" || die "cannot make data"
head -c "$MiB" /dev/urandom >"$TEST_TMP/mid" || die "cannot make data"

# hold_loc_version: keeps the local cloud's big.bin of now open (HELD_FD)
# with the sha256 of the bytes it must keep (HELD_SUM). A file patched in
# place would change under the descriptor; a file replaced by a rename
# keeps its old bytes there. Held open, its inode number cannot be given
# to a later file either (a freed one can: comparing numbers of files
# that are gone proves nothing).
HELD_FD=()
HELD_SUM=()
hold_loc_version() {
    local fd
    exec {fd}<"$LOCALDIR/big.bin" || return 1
    HELD_FD+=("$fd")
    HELD_SUM+=("$(sha256sum <"$TEST_TMP/loc.want" | cut -d' ' -f1)")
}
# loc_versions_kept: every held version still reads what it held, and the
# held versions and today's big.bin are as many inodes as they are files.
loc_versions_kept() {
    local i fd sum inodes
    inodes=$(stat -c %i "$LOCALDIR/big.bin") || return 1
    for i in "${!HELD_FD[@]}"; do
        fd=${HELD_FD[$i]}
        sum=$(sha256sum "/dev/fd/$fd" | cut -d' ' -f1)
        [ "$sum" = "${HELD_SUM[$i]}" ] ||
            { echo "version $((i + 1)) changed under its descriptor"; return 1; }
        inodes="$inodes $(stat -L -c %i "/dev/fd/$fd")" || return 1
    done
    echo "inodes, oldest held first, today's big.bin last: $inodes"
    [ "$(printf '%s\n' $inodes | sort -u | wc -l)" -eq $((${#HELD_FD[@]} + 1)) ]
}

# declared per cloud: bytes sent by each step
declare -A APPEND MIDDLE CUT

for c in s3 az loc; do
    want="$TEST_TMP/$c.want"
    f="$MNT/$c/big.bin"
    cp "$TEST_TMP/base" "$want"
    check "$c: a 64 MiB file is written" cp "$TEST_TMP/base" "$f"
    check "$c: the cloud holds it" server_has "$c" "$want"
    [ "$c" = loc ] && hold_loc_version

    before=$(sent "$c")
    check "$c: 1 MiB is appended" sh -c "cat '$TEST_TMP/tail' >>'$f'"
    cat "$TEST_TMP/tail" >>"$want"
    APPEND[$c]=$(($(sent "$c") - before))
    check "$c: after the append the cloud holds exactly the 65 MiB" server_has "$c" "$want"
    [ "$c" = loc ] && check "loc: the append wrote 1 MiB, the rest was cloned" \
        local_written "$MiB"
    [ "$c" = loc ] && hold_loc_version

    before=$(sent "$c")
    check "$c: 1 MiB is overwritten at 32 MiB" \
        dd if="$TEST_TMP/mid" of="$f" bs=1M seek=32 count=1 conv=notrunc status=none
    dd if="$TEST_TMP/mid" of="$want" bs=1M seek=32 count=1 conv=notrunc status=none
    MIDDLE[$c]=$(($(sent "$c") - before))
    check "$c: after the middle write the cloud holds exactly the new bytes" \
        server_has "$c" "$want"
    [ "$c" = loc ] && check "loc: the middle write wrote one 4 MiB cache block" \
        local_written $((4 * MiB))
    [ "$c" = loc ] && hold_loc_version

    # s3rver sends it whole anyway (see below): spare the time of a third upload
    [ "$c" = s3 ] && continue
    before=$(sent "$c")
    check "$c: the file is cut to 40 MiB + 3 bytes" truncate -s $((40 * MiB + 3)) "$f"
    truncate -s $((40 * MiB + 3)) "$want"
    # truncate(1) closes without a write: the cut goes up at its close
    CUT[$c]=$(($(sent "$c") - before))
    check "$c: after the cut the cloud holds exactly 40 MiB + 3 bytes" server_has "$c" "$want"
    [ "$c" = loc ] && check "loc: the cut wrote 3 bytes" local_written 3
done

echo "bytes sent: append s3=${APPEND[s3]} az=${APPEND[az]};" \
    "middle s3=${MIDDLE[s3]} az=${MIDDLE[az]}; cut az=${CUT[az]}"

# Azure: only the changed blocks (plus nothing: the block list is sent as
# a request body too, a few hundred bytes).
check "az: the append sent about 1 MiB (not 65 MiB)" \
    between "$MiB" $((MiB + 64 * 1024)) "${APPEND[az]}"
check "az: the middle write sent the one 8 MiB block holding it" \
    between $((8 * MiB)) $((8 * MiB + 64 * 1024)) "${MIDDLE[az]}"
check "az: the cut sent a few bytes, not 40 MiB" between 3 $((64 * 1024)) "${CUT[az]}"
check "az: no whole upload was logged for Azure's big.bin" \
    bash -c "! grep -a \"azure 'az': big.bin goes up whole\" '$LOG'"

# A blob changed on the server while the file is open: the upload must not
# build on the new blob (a mix of two versions). The log says why it is
# not sent in part; the whole upload is conditional on the version read
# (issue 17), so the other client's blob stays and skyfs's file is kept
# beside it as a conflict copy: nothing is lost, nothing is mixed.
head -c $((16 * MiB)) /dev/urandom >"$TEST_TMP/stale.want"
head -c $((16 * MiB)) /dev/urandom >"$TEST_TMP/other"
check "az: a 16 MiB file is written" cp "$TEST_TMP/stale.want" "$MNT/az/stale.bin"
exec 3>>"$MNT/az/stale.bin"
check "az: another client replaces the blob while the file is open" \
    curl -sf -X PUT -H "x-ms-blob-type: BlockBlob" --data-binary @"$TEST_TMP/other" \
    "$AZEND/incr/stale.bin?$SAS" -o /dev/null
cat "$TEST_TMP/tail" >&3
exec 3>&-
cat "$TEST_TMP/tail" >>"$TEST_TMP/stale.want"
check "az: the blob keeps the other client's version, not a mix of both" \
    bash -c "curl -sf '$AZEND/incr/stale.bin?$SAS' | cmp - '$TEST_TMP/other'"
copy=$(ls "$MNT/az" | grep -E '^stale\.conflict-.*\.bin$' | head -n 1)
check "az: skyfs's whole file is kept as a conflict copy ($copy)" \
    bash -c "[ -n '$copy' ] && curl -sf '$AZEND/incr/$copy?$SAS' | cmp - '$TEST_TMP/stale.want'"
check "az: the log says it was not sent in part because the blob changed" \
    grep -aq "azure 'az': stale.bin goes up whole instead of only its changed parts: the object is no longer the version it was read as" "$LOG"

# S3 on s3rver: no UploadPartCopy, so whole uploads, and the reason once.
check "s3: s3rver has no UploadPartCopy, so the append sent the whole 65 MiB" \
    between $((65 * MiB)) $((66 * MiB)) "${APPEND[s3]}"
check "s3: ... and the middle write the whole file again" \
    between $((65 * MiB)) $((66 * MiB)) "${MIDDLE[s3]}"
check_eq "s3: the log says once why the file goes up whole (UploadPartCopy: NotImplemented)" \
    1 "$(grep -ac "s3 's3': big.bin goes up whole instead of only its changed parts: .*UploadPartCopy.*NotImplemented" "$LOG")"

check_eq "loc: three versions were held open" 3 "${#HELD_FD[@]}"
check "loc: each step replaced the file by a rename (a new inode), never patched it in place" \
    loc_versions_kept
for fd in "${HELD_FD[@]}"; do exec {fd}<&-; done

unmount_skyfs "$MNT"

# A fresh mount with an empty cache reads every copy back.
MNT2="$TEST_TMP/mnt2"
mount_skyfs "$TEST_TMP/b.conf" "$MNT2" || die "cannot mount again"
for c in s3 az loc; do
    check_eq "$c: a fresh mount with an empty cache reads the same sha256" \
        "$(sha256sum <"$TEST_TMP/$c.want" | cut -d' ' -f1)" \
        "$(sha256sum <"$MNT2/$c/big.bin" | cut -d' ' -f1)"
done
unmount_skyfs "$MNT2"
