#!/usr/bin/env bash
# pending_names.sh - new names for a file whose upload is pending.
#
# On a local cloud (write_back = sync, the default) a new file's upload at
# close fails because its folder vanished behind the mount: the close
# reports it and the journal keeps the file.  Nobody has it open any
# more.  With the folder back:
#   - link(2) gives it a second name: it goes up first, then the cloud
#     links it (before, EIO: "its upload is still pending");
#   - rename(2) over a file the cloud holds (an editor's save) works: the
#     cloud's file is replaced by the pending content, the old name never
#     reaches the cloud (before, the cloud's error for a file it lacks).
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
LOCAL="$TEST_TMP/data"
MNT="$TEST_TMP/mnt"
mkdir -p "$LOCAL"
write_local_config "$CONF" "$TEST_TMP/cache" docs="$LOCAL"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"

# pending NAME TEXT: docs/sub/NAME made and written through the mount
# while docs/sub is gone from the cloud; prints how its close ended
pending() {
    mkdir -p "$LOCAL/sub"
    wait_until 10 test -d "$MNT/docs/sub" || die "docs/sub does not show"
    "$PYTHON" - "$MNT/docs/sub/$1" "$LOCAL/sub" "$2" <<'PY'
import os, shutil, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
shutil.rmtree(sys.argv[2])
os.write(fd, sys.argv[3].encode())
try:
    os.close(fd)
    print("closed")
except OSError:
    print("close failed")
PY
    mkdir -p "$LOCAL/sub"
}

check_eq "a new file whose folder vanished: its close fails" "close failed" \
    "$(pending linked.txt "linked!")"
check "one upload is pending" bash -c "'$SKYFS' status -c '$CONF' | grep -q ' 1 pending upload'"
check "link(2) of it works, its upload pending and nobody holding it open" \
    ln "$MNT/docs/sub/linked.txt" "$MNT/docs/sub/second.txt"
check_eq "the cloud holds it" "linked!" "$(cat "$LOCAL/sub/linked.txt" 2>&1)"
check_eq "...under both names, one file" "$(stat -c %i "$LOCAL/sub/linked.txt")" \
    "$(stat -c %i "$LOCAL/sub/second.txt" 2>&1)"
check_eq "the mount shows two links" 2 "$(stat -c %h "$MNT/docs/sub/linked.txt")"

check_eq "another new file whose folder vanished: its close fails" "close failed" \
    "$(pending saved.txt "saved!")"
printf 'old target\n' >"$LOCAL/sub/target.txt"
check "the cloud's target.txt shows" wait_until 10 test -f "$MNT/docs/sub/target.txt"
check "rename(2) of it over the cloud's target.txt works" \
    mv "$MNT/docs/sub/saved.txt" "$MNT/docs/sub/target.txt"
check_eq "the mount shows the new content" "saved!" "$(cat "$MNT/docs/sub/target.txt")"
check_eq "the cloud's target.txt holds it" "saved!" "$(cat "$LOCAL/sub/target.txt")"
check_fails "saved.txt never reached the cloud" test -e "$LOCAL/sub/saved.txt"
check_eq "no conflict copy" "" "$(ls "$LOCAL/sub" | grep conflict)"
check "nothing is pending" bash -c "'$SKYFS' status -c '$CONF' | grep -q ' 0 pending upload'"

unmount_skyfs "$MNT"
