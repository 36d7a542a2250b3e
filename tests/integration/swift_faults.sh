#!/usr/bin/env bash
# swift_faults.sh - how the swift cloud answers a Swift that fails or
# refuses requests: fault_proxy.py (status:N rules) sits between skyfs and
# the all-in-one Swift of swift_lib.sh, so every request, the TempAuth one
# included, goes through it.  Checks:
#   - 498 (Swift's rate limit) and 429 are retried with backoff and the
#     operation succeeds;
#   - a 401 renews the token once (a new TempAuth request) and the request
#     is sent again;
#   - 403 is EACCES; a 5xx or a 498 that persists is EIO after the retries,
#     and the log names the cloud, the object and the status;
#   - the other files of the cloud keep working;
#   - a PUT and a segment whose body the proxy damages (mode flip) are
#     refused by Swift (the MD5 sent as their ETag) and sent again;
#   - a download damaged on the way (mode flipanswer) is asked again, one
#     damaged every time fails with EIO, and nothing wrong is kept.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/swift_lib.sh"

FAULTS="$TEST_TMP/faults"
mkdir -p "$FAULTS"
start_swift "$TEST_TMP/swift" || die "cannot start swift"
FPORT=$(free_port)
_start_server fault_proxy "$FPORT" "http://127.0.0.1:$FPORT/healthcheck" \
    "$PYTHON" "$SKY_ROOT/tests/integration/fault_proxy.py" "$FPORT" "$_SWIFT_PROXY_PORT" \
    "$FAULTS" || die "cannot start fault_proxy"
rules() { printf '%s\n' "$@" >"$FAULTS/rules"; }
seen() { grep -c -- "^$1 [^ ]*$2" "$FAULTS/log"; }

swift_container data || die "cannot create the container"
for f in a b c d e; do
    echo "content of $f" | scurl -X PUT -T - "$SWIFT_URL/data/$f.txt" || die "cannot put $f.txt"
done

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[sw]
type = swift
auth_url = http://127.0.0.1:$FPORT/auth/v1.0
user = $SWIFT_USER
key = $SWIFT_KEY
container = data
retries = 2
ttl = 1s
# each read below must reach the proxy: no file fetched ahead of the reader
open_ahead = 0
EOF
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
LOG="$LOGS/mnt.log"
check "the listing goes through the proxy" test -f "$MNT/sw/a.txt"

rules "status:498 GET /data/a.txt 2"
check_eq "two 498 answers are retried and the file reads" "content of a" \
    "$(cat "$MNT/sw/a.txt" 2>&1)"
check_eq "the proxy saw three GETs of a.txt" 3 "$(seen GET /data/a.txt)"

AUTHS=$(seen GET /auth/v1.0)
rules "status:401 GET /data/b.txt 1"
check_eq "a 401 renews the token and the file reads" "content of b" \
    "$(cat "$MNT/sw/b.txt" 2>&1)"
check_eq "with one new TempAuth request" $((AUTHS + 1)) "$(seen GET /auth/v1.0)"

rules "status:403 GET /data/c.txt all"
check_eq "403 is EACCES" EACCES "$(errno_of read "$MNT/sw/c.txt")"

rules "status:503 GET /data/d.txt all"
check_eq "a 503 that persists is EIO after the retries" EIO "$(errno_of read "$MNT/sw/d.txt")"
check "the log names the cloud, the object and the status" \
    grep -q "swift 'sw': GET d.txt: 503" "$LOG"
N=$(seen GET /data/d.txt)
check "each read that reached the proxy was sent 3 times (first try, 2 retries): $N GETs" \
    test "$N" -gt 0 -a $((N % 3)) -eq 0

rules "status:498 GET /data/e.txt all"
check_eq "a 498 that persists is EIO" EIO "$(errno_of read "$MNT/sw/e.txt")"
check "the log names the 498" grep -q "swift 'sw': GET e.txt: 498" "$LOG"

rules "status:429 PUT /data/new.txt 1"
check "a 429 on an upload is retried" eval 'echo fresh >"$MNT/sw/new.txt"'
check_eq "and the object is stored" fresh \
    "$(rules; scurl "$SWIFT_URL/data/new.txt")"

# a body damaged on the way: Swift checks the MD5 sent as the PUT's ETag
# and answers 422; skyfs sends it again
head -c $((1 << 20)) /dev/urandom >"$TEST_TMP/d.src"
head -c $((40 << 20)) /dev/urandom >"$TEST_TMP/dbig.src"
rules "flip PUT /data/damaged.bin 1" "flip PUT /data_segments/damaged-big.bin 1"
check "a file whose PUT the proxy damages is written" \
    cp "$TEST_TMP/d.src" "$MNT/sw/damaged.bin"
check_eq "Swift refused the damaged body and it was sent again" 2 \
    "$(seen PUT /data/damaged.bin)"
check "the object holds the bytes written" eval \
    "scurl '$SWIFT_URL/data/damaged.bin' | cmp - '$TEST_TMP/d.src'"
check "a 40 MiB file one of whose segments the proxy damages is written" \
    cp "$TEST_TMP/dbig.src" "$MNT/sw/damaged-big.bin"
check_eq "the proxy damaged one segment" 1 \
    "$(grep -c '/data_segments/damaged-big.bin.* flip$' "$FAULTS/log")"
check "the object holds the bytes written" eval \
    "scurl '$SWIFT_URL/data/damaged-big.bin' | cmp - '$TEST_TMP/dbig.src'"
check "the log says what happened" grep -q "other bytes than were sent (422)" "$LOG"

# downloads damaged on the way (the proxy flips a byte of the answer) of
# objects put behind the mount's back: once (asked again, the right bytes),
# every time (EIO after three tries, nothing wrong served or kept)
head -c 300000 /dev/urandom >"$TEST_TMP/dl1.src"
head -c 300000 /dev/urandom >"$TEST_TMP/dl2.src"
scurl -X PUT -T "$TEST_TMP/dl1.src" "$SWIFT_URL/data/dl-once.bin" || die "cannot put dl-once.bin"
scurl -X PUT -T "$TEST_TMP/dl2.src" "$SWIFT_URL/data/dl-always.bin" || die "cannot put dl-always.bin"
sleep 1.2                       # past the ttl of the listing the mount holds
rules "flipanswer GET /data/dl-once.bin 1" "flipanswer GET /data/dl-always.bin all"
check "a file whose download the proxy damages once reads right" \
    cmp "$TEST_TMP/dl1.src" "$MNT/sw/dl-once.bin"
check_eq "the proxy damaged it once, and it was asked again" "1 2" \
    "$(grep -c '/data/dl-once.bin flipanswer$' "$FAULTS/log") $(seen GET /data/dl-once.bin)"
check "the log says what happened" grep -q \
    "GET dl-once.bin: the bytes that arrived are not those the server holds" "$LOG"
cat "$MNT/sw/dl-always.bin" >/dev/null 2>"$TEST_TMP/dl2.err"
check "a file whose every download is damaged is not read (EIO)" \
    grep -q 'Input/output error' "$TEST_TMP/dl2.err"
check "the log says why" grep -q "GET dl-always.bin: the bytes arrived damaged 3 times" "$LOG"
rules
check "undamaged, it reads right (nothing wrong was kept)" \
    cmp "$TEST_TMP/dl2.src" "$MNT/sw/dl-always.bin"

rules
check_eq "with no faults left the refused files read" "content of c content of d" \
    "$(cat "$MNT/sw/c.txt" "$MNT/sw/d.txt" 2>&1 | paste -sd' ')"
check "no token appears in the log" eval "! grep -q 'AUTH_tk' '$LOG'"
unmount_skyfs "$MNT"
