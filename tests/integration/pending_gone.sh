#!/usr/bin/env bash
# pending_gone.sh - news from the cloud that a folder is gone never drops
# what this machine made in it and has not uploaded yet.
#
# On a write_back = async cloud a new folder and the files in it live in
# the cache until their upload (write_back_delay, here 1 h).  Before, the
# background crawl listed such a folder, the cloud answered "no such
# folder", and the crawl removed it from the cache with everything in it:
# the files vanished from the mount, their uploads were never made (the
# journal still held them, for a path no entry had), and the unmount
# reported nothing.  The same happened to a cloud folder deleted by another
# machine while this one had new files in it (a listing of its parent).
#
# Local cloud: mkdir, a file and a symlink in it, crawls every second;
# after two crawls everything is still there, and the unmount uploads it.
# S3 cloud: a folder that exists on the server, a new file written in it
# here, then the folder's only object deleted behind the mount; the
# listing of its parent no longer has the folder, the mount keeps it and
# the new file, and the unmount puts the file on the server.
# S3 cloud with write_back = sync: a file kept open after writes, deleted
# behind the mount, stays listed until its close stores the conflict copy.
# S3 cloud: files on the server changed here (upload pending) and deleted
# behind the mount, one at the top, one the only object of its folder:
# listings and stats past the ttl keep showing them with this machine's
# bytes (before, they vanished from the mount until their upload), and
# the unmount stores each as a conflict copy beside its old name (README
# "Many machines, one cloud": a file deleted elsewhere while this machine
# changed it).
. "$(dirname "$0")/lib.sh"

start_bucket gone
LOCAL="$TEST_TMP/data/local"
MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
mkdir -p "$LOCAL"
echo old >"$LOCAL/old.txt"
check "put the server's folder/a.txt" s3curl -X PUT --data-binary 'from the server' \
    "$BUCKET_URL/folder/a.txt" -o /dev/null
for key in top.txt only/mod.txt syncdir/open.txt; do
    check "put the server's $key" s3curl -X PUT --data-binary $'old bytes\n' \
        "$BUCKET_URL/$key" -o /dev/null
done
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[local]
type = local
path = $LOCAL
write_back = async
write_back_delay = 1h
index_interval = 1s

$(s3rver_cloud s3 "http://127.0.0.1:$S3PORT" "$BUCKET")
write_back = async
write_back_delay = 1h
ttl = 1s
index = off

$(s3rver_cloud s3sync "http://127.0.0.1:$S3PORT" "$BUCKET")
prefix = syncdir
ttl = 1s
index = off
EOF
)
mount_skyfs "$CONF" "$MNT" || die "cannot mount"

# --- local: the crawl lists a folder made here
crawls_done() { grep -c "cloud 'local': crawl [0-9]* complete" "$LOGS/mnt.log"; }
crawls_reach() { test "$(crawls_done)" -ge "$1"; }
check "mkdir new, a file and a symlink in it" eval \
    "mkdir '$MNT/local/new' && echo pending >'$MNT/local/new/file.txt' &&
     ln -s file.txt '$MNT/local/new/link'"
check "nothing of it is on the cloud yet" test ! -e "$LOCAL/new"
before=$(crawls_done)
check "two crawls complete meanwhile" wait_until 20 crawls_reach $((before + 2))
check_eq "the folder is still listed" "new old.txt" "$(ls "$MNT/local" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "so are the file and the symlink" "file.txt link" \
    "$(ls "$MNT/local/new" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "the file reads back" "pending" "$(cat "$MNT/local/new/file.txt" 2>&1)"
check_eq "the symlink too" "file.txt" "$(readlink "$MNT/local/new/link" 2>&1)"

# --- S3: the folder is deleted behind the mount
check "write folder/new.txt (pending)" eval "echo 'made here' >'$MNT/s3/folder/new.txt'"
check "the server does not have it yet" bucket_lacks folder/new.txt
check "delete the server's folder/a.txt behind the mount" s3curl -X DELETE \
    "$BUCKET_URL/folder/a.txt" -o /dev/null
check "the server lists no folder/ any more" \
    test -z "$(s3curl "$BUCKET_URL?list-type=2&prefix=folder/" | grep -o '<Key>[^<]*')"
sleep 1.5   # past the ttl: the next listing asks the server
check_eq "the folder is still listed" "folder only syncdir top.txt" \
    "$(ls "$MNT/s3" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "it holds the new file alone" "new.txt" "$(ls "$MNT/s3/folder" 2>&1)"
sleep 1.5
check "stat of the folder (the server finds nothing) still answers" stat "$MNT/s3/folder"
check_eq "the new file reads back" "made here" "$(cat "$MNT/s3/folder/new.txt" 2>&1)"

# --- S3: files changed here, deleted behind the mount
check "change top.txt and only/mod.txt (pending)" eval \
    "echo 'changed here' >>'$MNT/s3/top.txt' && echo 'changed too' >>'$MNT/s3/only/mod.txt'"
check_eq "the server still has the old top.txt" "old bytes" "$(bucket_get top.txt)"
for key in top.txt only/mod.txt; do
    check "delete the server's $key behind the mount" s3curl -X DELETE "$BUCKET_URL/$key" \
        -o /dev/null
done
sleep 1.5   # past the ttl
check_eq "the cloud's folder lists the changed file and folder" "folder only syncdir top.txt" \
    "$(ls "$MNT/s3" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "the folder the server lost still holds the changed file" "mod.txt" \
    "$(ls "$MNT/s3/only" 2>&1)"
sleep 1.5
check "stat of top.txt (the server finds nothing) still answers" stat "$MNT/s3/top.txt"
check "and of only/mod.txt" stat "$MNT/s3/only/mod.txt"
check_eq "top.txt reads back this machine's bytes" "$(printf 'old bytes\nchanged here')" \
    "$(cat "$MNT/s3/top.txt" 2>&1)"
check_eq "so does only/mod.txt" "$(printf 'old bytes\nchanged too')" \
    "$(cat "$MNT/s3/only/mod.txt" 2>&1)"
check_eq "a find of the cloud finds both" "$MNT/s3/only/mod.txt $MNT/s3/top.txt" \
    "$(find "$MNT/s3" -type f -name '*.txt' ! -path '*/folder/*' ! -path '*/syncdir/*' |
       LC_ALL=C sort | tr '\n' ' ' |
       sed 's/ $//')"

# --- S3, write_back = sync: a file open after writes, deleted behind the
# mount, stays listed while it is open; its close stores the conflict copy
"$PYTHON" - "$MNT/s3sync/open.txt" "$TEST_TMP/close-now" "$TEST_TMP/written" <<'PYEOF2' &
import os, sys, time
f = open(sys.argv[1], "a")
f.write("appended here\n")
f.flush()
open(sys.argv[3], "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
f.close()
PYEOF2
writer=$!
check "a writer appends to s3sync/open.txt and keeps it open" \
    wait_until 10 test -e "$TEST_TMP/written"
check "delete the server's syncdir/open.txt behind the mount" \
    s3curl -X DELETE "$BUCKET_URL/syncdir/open.txt" -o /dev/null
sleep 1.5   # past the ttl
check_eq "the open file is still listed" "open.txt" "$(ls "$MNT/s3sync" 2>&1)"
check "and its stat answers" stat "$MNT/s3sync/open.txt"
touch "$TEST_TMP/close-now"
check "its close succeeds" wait "$writer"
sync_copy=$(bucket_keys syncdir/ | grep -F "open.conflict-" | head -1)
check "its close stored it as a conflict copy beside the old name" test -n "$sync_copy"
check_eq "with this machine's bytes" "$(printf 'old bytes\nappended here')" \
    "$(bucket_get "$sync_copy")"

unmount_skyfs "$MNT"     # uploads what is pending
check_eq "the local cloud has new/file.txt" "pending" "$(cat "$LOCAL/new/file.txt" 2>&1)"
check_eq "and new/link" "file.txt" "$(readlink "$LOCAL/new/link" 2>&1)"
check_eq "the server has folder/new.txt" "made here" "$(bucket_get folder/new.txt)"
conflict_copy() { bucket_keys "$1" | grep -F "$2.conflict-" | head -1; }
top_copy=$(conflict_copy "" top)
check "top.txt went up as a conflict copy beside its old name" test -n "$top_copy"
check_eq "with this machine's bytes" "$(printf 'old bytes\nchanged here')" \
    "$(bucket_get "$top_copy")"
mod_copy=$(conflict_copy only/ only/mod)
check "only/mod.txt likewise" test -n "$mod_copy"
check_eq "with this machine's bytes" "$(printf 'old bytes\nchanged too')" \
    "$(bucket_get "$mod_copy")"
check "nothing is left pending" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q ' 0 pending upload(s), 0 folder(s)'"
