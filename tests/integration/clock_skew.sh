#!/usr/bin/env bash
# clock_skew.sh - a machine whose clock is wrong still reaches its S3 cloud.
#
# S3 refuses a signature more than 15 minutes off the server's clock
# (403 RequestTimeTooSkewed; s3rver checks it as AWS does).  The daemon
# runs under libfaketime (Debian's faketime package), its clock 20 minutes
# behind the real one; s3rver and the test's own requests keep the real
# clock.  Checks:
#   - ls, a write and a read of the cloud work (the first refusal teaches
#     the client the server's clock, and the request goes again);
#   - the file is on the server with its bytes;
#   - the log says the server's clock is about 1,200 s ahead, and the fix;
#   - once the daemon's clock is set right (libfaketime's offset, read from
#     a file, becomes 0), the next refusal drops what it learned: a write
#     works, and the log says the clocks agree again;
#   - a mount whose clock is right logs nothing of the kind.
. "$(dirname "$0")/lib.sh"

FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -r "$FAKETIME_LIB" ] || die "$FAKETIME_LIB is missing (run make deps: package faketime)"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket skew || die "cannot start s3rver"
CONF="$TEST_TMP/skyfs.conf"
write_s3_config "$CONF" "$ENDPOINT" skew
s3curl -X PUT --data-binary 'from the server' "$ENDPOINT/skew/before.txt" -o /dev/null ||
    die "cannot put before.txt"

# the daemon alone runs 20 minutes in the past (an ASan build must come
# first in the library list: libfaketime is preloaded after it)
check_eq "libfaketime puts a process 20 minutes behind" 1200 \
    "$(( $(date +%s) - $(LD_PRELOAD=$FAKETIME_LIB FAKETIME=-20m date +%s) ))"
# (the offset is read from a file at each clock call: the test sets the
# clock right later)
echo -20m >"$TEST_TMP/faketime"
LD_PRELOAD=$FAKETIME_LIB FAKETIME_TIMESTAMP_FILE="$TEST_TMP/faketime" FAKETIME_NO_CACHE=1 \
    ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" \
    mount_skyfs "$CONF" "$TEST_TMP/mnt" || die "cannot mount"
MNT="$TEST_TMP/mnt"
LOG="$LOGS/mnt.log"

check_eq "ls lists the cloud's file" "before.txt" "$(ls "$MNT/s3" 2>&1)"
check_eq "cat reads it" "from the server" "$(cat "$MNT/s3/before.txt" 2>&1)"
head -c 300000 /dev/urandom >"$TEST_TMP/new.bin"
check "cp writes a new file" cp "$TEST_TMP/new.bin" "$MNT/s3/new.bin"
check_eq "the server holds its bytes" "$(sha256sum <"$TEST_TMP/new.bin")" \
    "$(s3curl "$ENDPOINT/skew/new.bin" | sha256sum)"
check "the log says the server's clock is about 1,200 s ahead, and the fix" bash -c \
    "grep -E \"cloud 's3': the server refused a request, and its clock is 1(19[0-9]|20[0-9]) s ahead of this machine's\" '$LOG' | grep -q 'timedatectl set-ntp true'"
check_eq "it says so once" 1 "$(grep -c 'its clock is' "$LOG")"

# the clock is set right: the learned difference is now what is wrong
echo +0 >"$TEST_TMP/faketime"
check "with the clock set right, cp writes another file" \
    bash -c "echo right >'$MNT/s3/right.txt'"
check_eq "the server holds it" right "$(s3curl "$ENDPOINT/skew/right.txt")"
check "the log says the clocks agree again" \
    grep -q "cloud 's3': the server's clock agrees with this machine's again" "$LOG"
unmount_skyfs "$MNT"

# the same mount with the right clock: nothing learned, nothing said
mount_skyfs "$CONF" "$TEST_TMP/mnt2" || die "cannot mount with the right clock"
check_eq "with the right clock: ls" "before.txt new.bin right.txt" "$(echo $(ls "$TEST_TMP/mnt2/s3" 2>&1))"
check "and the log says nothing of clocks" bash -c "! grep -q 'its clock is\|clock agrees' '$LOGS/mnt2.log'"
unmount_skyfs "$TEST_TMP/mnt2"
