#!/usr/bin/env bash
# s3_rgw.sh - incremental uploads on a real S3 implementation: Ceph's RADOS
# Gateway (start_rgw: one ceph-mon, one ceph-osd on memstore, radosgw),
# which has what s3rver lacks: UploadPartCopy with x-amz-copy-source-range
# and x-amz-copy-source-if-match.  One mount, two s3 clouds on one bucket:
# "s3" straight to RGW, "sp" through fault_proxy.py (to change an object
# at the exact moment skyfs sends its first part).
#
# Checks:
#   - a 64 MiB file, then 1 MiB appended: the append sends 1 MiB (the
#     64 MiB are copied on the server), not 65 MiB; 1 MiB overwritten at
#     32 MiB sends one 5 MiB part (S3's smallest part before a copied
#     one); a cut to 40 MiB + 3 bytes sends nothing; the object on RGW is
#     byte-exact after each step, the log has no "goes up whole" and no
#     NotImplemented, and a fresh mount with an empty cache reads it back;
#   - another client replaces the object while skyfs has it open: the HEAD
#     before the incremental upload sees it, the file goes up whole and
#     conditional, RGW refuses it (If-Match), the other client's object
#     stays, skyfs's version is kept as a conflict copy;
#   - another client replaces the object between that HEAD and the first
#     UploadPartCopy (fault_proxy.py runs the change right before the
#     part request): RGW refuses the copy (x-amz-copy-source-if-match,
#     412), and the result is the same - never a mix of two versions.
. "$(dirname "$0")/lib.sh"

MiB=$((1 << 20))
BUCKET=incr

RGWPORT=$(free_port)
start_rgw "$TEST_TMP/rgw" "$RGWPORT" "$BUCKET" || die "cannot start rgw"
END="$RGW_ENDPOINT"

FAULTS="$TEST_TMP/faults"
mkdir -p "$FAULTS"
PROXYPORT=$(free_port)
start_fault_proxy "$PROXYPORT" "$RGWPORT" || die "cannot start fault_proxy.py"

# write_conf CONFIG CACHE_DIR
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

[daemon]
log_level = debug

$(rgw_cloud s3 "$END" "$BUCKET")
ttl = 1s

$(rgw_cloud sp "http://127.0.0.1:$PROXYPORT" "$BUCKET")
ttl = 1s
EOF
    )
}
write_conf "$TEST_TMP/a.conf" "$TEST_TMP/cache-a"
write_conf "$TEST_TMP/b.conf" "$TEST_TMP/cache-b"

MNT="$TEST_TMP/mnt"
mount_skyfs "$TEST_TMP/a.conf" "$MNT" || die "cannot mount"
LOG="$LOGS/mnt.log"

# server_has KEY FILE: RGW's object KEY equals FILE.
server_has() {
    rgw_curl --max-time 120 "$END/$BUCKET/$1" | cmp - "$2"
}
# copy_is KEY FILE: KEY is a name and RGW's object KEY equals FILE.
copy_is() {
    [ -n "$1" ] || { echo "no conflict copy"; ls -la "$MNT/s3"; return 1; }
    server_has "$1" "$2"
}
# reused N: the debug line of the last upload of big.bin says N bytes were
# sent and the rest reused.
reused() {
    local line
    line=$(grep -a "s3 's3': big.bin: [0-9]* of [0-9]* bytes sent, the rest reused" "$LOG" |
        tail -n 1)
    echo "$line"
    case "$line" in *"big.bin: $1 of "*) return 0 ;; esac
    return 1
}

head -c $((64 * MiB)) /dev/urandom >"$TEST_TMP/base" || die "cannot make data"
head -c "$MiB" /dev/urandom >"$TEST_TMP/tail" || die "cannot make data"
head -c "$MiB" /dev/urandom >"$TEST_TMP/mid" || die "cannot make data"

want="$TEST_TMP/want"
f="$MNT/s3/big.bin"
cp "$TEST_TMP/base" "$want"
check "a 64 MiB file is written" cp "$TEST_TMP/base" "$f"
check "RGW holds it" server_has big.bin "$want"

before=$(sent s3)
check "1 MiB is appended" sh -c "cat '$TEST_TMP/tail' >>'$f'"
cat "$TEST_TMP/tail" >>"$want"
APPEND=$(($(sent s3) - before))
check "after the append RGW holds exactly the 65 MiB" server_has big.bin "$want"
check "the append sent 1 MiB and copied the rest on the server" reused "$MiB"

before=$(sent s3)
check "1 MiB is overwritten at 32 MiB" \
    dd if="$TEST_TMP/mid" of="$f" bs=1M seek=32 count=1 conv=notrunc status=none
dd if="$TEST_TMP/mid" of="$want" bs=1M seek=32 count=1 conv=notrunc status=none
MIDDLE=$(($(sent s3) - before))
check "after the middle write RGW holds exactly the new bytes" server_has big.bin "$want"
check "the middle write sent one 5 MiB part" reused $((5 * MiB))

before=$(sent s3)
check "the file is cut to 40 MiB + 3 bytes" truncate -s $((40 * MiB + 3)) "$f"
truncate -s $((40 * MiB + 3)) "$want"
CUT=$(($(sent s3) - before))
check "after the cut RGW holds exactly 40 MiB + 3 bytes" server_has big.bin "$want"

echo "bytes sent to RGW: append $APPEND, middle $MIDDLE, cut $CUT"
check "the append sent about 1 MiB (not 65 MiB)" between "$MiB" $((MiB + 64 * 1024)) "$APPEND"
check "the middle write sent one 5 MiB part (not 65 MiB)" \
    between $((5 * MiB)) $((5 * MiB + 64 * 1024)) "$MIDDLE"
check "the cut sent next to nothing (not 40 MiB)" between 0 $((64 * 1024)) "$CUT"
check_fails "big.bin never went up whole" grep -a "big.bin goes up whole" "$LOG"
check_fails "no NotImplemented in the log" grep -a "NotImplemented" "$LOG"

# --- another client replaces the object while skyfs has the file open: the
# HEAD before the incremental upload sees it
head -c $((16 * MiB)) /dev/urandom >"$TEST_TMP/stale.want"
head -c $((16 * MiB)) /dev/urandom >"$TEST_TMP/other"
check "a 16 MiB file is written" cp "$TEST_TMP/stale.want" "$MNT/s3/stale.bin"
exec 3>>"$MNT/s3/stale.bin"
check "another client replaces the object while the file is open" \
    rgw_curl -o /dev/null --max-time 120 -X PUT --data-binary @"$TEST_TMP/other" \
    "$END/$BUCKET/stale.bin"
cat "$TEST_TMP/tail" >&3
exec 3>&-
cat "$TEST_TMP/tail" >>"$TEST_TMP/stale.want"
check "the object keeps the other client's version, not a mix of both" \
    server_has stale.bin "$TEST_TMP/other"
copy=$(ls "$MNT/s3" | grep -E '^stale\.conflict-.*\.bin$' | head -n 1)
check "skyfs's whole file is kept as a conflict copy ($copy)" \
    copy_is "$copy" "$TEST_TMP/stale.want"
check "the log says it was not sent in part because the object changed" \
    grep -aq "s3 's3': stale.bin goes up whole instead of only its changed parts: the object is no longer the version it was read as" "$LOG"

# --- another client replaces the object after skyfs's HEAD, right before
# its first UploadPartCopy: x-amz-copy-source-if-match refuses the copy
head -c $((16 * MiB)) /dev/urandom >"$TEST_TMP/race.want"
head -c $((16 * MiB)) /dev/urandom >"$TEST_TMP/race.other"
check "a 16 MiB file is written through the proxy" cp "$TEST_TMP/race.want" "$MNT/sp/race.bin"
cat >"$FAULTS/other" <<EOF
#!/bin/sh
exec curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$RGW_ACCESS_KEY:$RGW_SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --max-time 120 -o /dev/null -X PUT \
    --data-binary @"$TEST_TMP/race.other" "$END/$BUCKET/race.bin"
EOF
chmod +x "$FAULTS/other"
echo "run:other PUT /$BUCKET/race.bin?partNumber= 1" >"$FAULTS/rules"
check "1 MiB is appended through the proxy" sh -c "cat '$TEST_TMP/tail' >>'$MNT/sp/race.bin'"
cat "$TEST_TMP/tail" >>"$TEST_TMP/race.want"
check "the proxy made the other client's change right before the first part" \
    grep -q "^run other: exit 0" "$FAULTS/log"
check "the object holds the other client's version, not a mix of both" \
    server_has race.bin "$TEST_TMP/race.other"
check "the log says the object changed while its parts were copied" \
    grep -aq "s3 'sp': race.bin goes up whole instead of only its changed parts: .*the object changed while its parts were copied" "$LOG"
check_fails "the incremental upload was never completed (its parts were discarded)" \
    grep -aq "s3 'sp': race.bin: [0-9]* of [0-9]* bytes sent, the rest reused" "$LOG"
copy=$(ls "$MNT/sp" | grep -E '^race\.conflict-.*\.bin$' | head -n 1)
check "skyfs's whole file is kept as a conflict copy ($copy)" \
    copy_is "$copy" "$TEST_TMP/race.want"

unmount_skyfs "$MNT"

# A fresh mount with an empty cache reads the object back.
MNT2="$TEST_TMP/mnt2"
mount_skyfs "$TEST_TMP/b.conf" "$MNT2" || die "cannot mount again"
check_eq "a fresh mount with an empty cache reads the same sha256" \
    "$(sha256sum <"$want" | cut -d' ' -f1)" \
    "$(sha256sum <"$MNT2/s3/big.bin" | cut -d' ' -f1)"
unmount_skyfs "$MNT2"
