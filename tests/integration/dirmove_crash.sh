#!/usr/bin/env bash
# dirmove_crash.sh - a directory rename that a crash cuts short is
# finished by the next mount.
#
# On S3 a directory's rename is every object under it copied to the new
# name, then deleted.  Before, a daemon killed in the middle left both
# trees on the server (the old one whole, the new one in part), the mount
# showing the old name, its pending upload going up under the old name,
# and a second `mv` refused (the new name is a folder that is not empty).
# Now the rename is recorded in the metadata cache before its first
# request, and the next mount finishes it: the server holds the new tree
# alone, the mount shows it, and the pending upload goes up under it.
#
# fault_proxy.py between skyfs and s3rver lets 20 of the 31 copies through
# and holds the others (mode hang); the daemon is killed with kill -9 while
# they hang.  Then a rename whose copies the server refuses in part fails,
# and is undone: the copies it made are deleted again (before, they stayed
# and a second try was refused: the target was a folder not empty).
# Last, file renames (a copy, then a delete) cut short by kill -9, one
# after its copy and one before: the next mount finishes each.
. "$(dirname "$0")/lib.sh"

start_bucket moves
FAULTS="$TEST_TMP/faults"
mkdir -p "$FAULTS" "$TEST_TMP/src"
: >"$FAULTS/rules"
PROXYPORT=$(free_port)
start_fault_proxy "$PROXYPORT" "$S3PORT" || die "cannot start fault_proxy.py"
MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
write_s3_config "$CONF" "http://127.0.0.1:$PROXYPORT" "$BUCKET" \
    "write_back = async" "write_back_delay = 1h" "index = off"

names=()
for i in $(seq -w 0 29); do names+=("p$i"); done
put_ok=0
for n in "${names[@]}" sub/deep; do
    mkdir -p "$(dirname "$TEST_TMP/src/$n")"
    head -c 10000 /dev/urandom >"$TEST_TMP/src/$n"
    s3curl -X PUT --data-binary "@$TEST_TMP/src/$n" "$BUCKET_URL/photos/$n" -o /dev/null &&
        put_ok=$((put_ok + 1))
done
check_eq "31 objects under photos/ on the server" 31 "$put_ok"

mount_skyfs "$CONF" "$MNT" || die "cannot mount"
check "a new file in photos/, its upload pending" eval \
    "echo 'written here' >'$MNT/s3/photos/new.txt'"
check "the server does not have it yet" bucket_lacks photos/new.txt

# the copies to album/p20..p29 hang; the others go through
echo "hang PUT /$BUCKET/album/p2 all" >"$FAULTS/rules"
copies_done() { test "$(grep -c "^PUT /$BUCKET/album/.* pass$" "$FAULTS/log")" -ge "$1"; }
mv "$MNT/s3/photos" "$MNT/s3/album" 2>"$TEST_TMP/mv.err" &
mv_pid=$!
check "the rename copied 20 objects and hangs on the rest" wait_until 30 copies_done 20
daemon=$(daemon_pids "$MNT")
check "the daemon is running" test -n "$daemon"
# shellcheck disable=SC2086
kill -9 $daemon
wait "$mv_pid" 2>/dev/null
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
: >"$FAULTS/rules"
check_eq "the server holds both trees, the new one in part" "31 20" \
    "$(bucket_keys photos/ | wc -l) $(bucket_keys album/ | wc -l)"
check "skyfs status says a rename is not finished" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q '  1 rename(s) not finished'"
check_eq "and --json" 1 "$("$SKYFS" status -c "$CONF" --json |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["cache"]["unfinished_renames"])')"

mount_skyfs "$CONF" "$MNT" || die "cannot mount again"
finished() { grep -q "finished the rename of \"photos\" to \"album\"" "$LOGS/mnt.log"; }
check "the next mount finishes the rename" wait_until 30 finished
check_eq "the server holds no photos/" "" "$(bucket_keys photos/)"
check_eq "and all of album/" 31 "$(bucket_keys album/ | wc -l)"
check "the mount shows no photos" test ! -e "$MNT/s3/photos"
check_eq "it shows album with every file, the pending one too" \
    "new.txt ${names[*]} sub" "$(ls "$MNT/s3/album" | tr '\n' ' ' | sed 's/ $//')"
bad=0
for n in "${names[@]}" sub/deep; do
    cmp -s "$TEST_TMP/src/$n" "$MNT/s3/album/$n" || bad=$((bad + 1))
done
check_eq "every file reads back its bytes" 0 "$bad"
check_eq "the pending file too" "written here" "$(cat "$MNT/s3/album/new.txt" 2>&1)"
check "a second rename of the tree works" mv "$MNT/s3/album" "$MNT/s3/pictures"

# --- a rename that fails part way (the server refuses some copies) is
# undone: the copies it made are deleted again, and a second try works
echo "status:500 PUT /$BUCKET/gallery/p2 all" >"$FAULTS/rules"
check_fails "a rename whose copies the server refuses in part fails" \
    mv "$MNT/s3/pictures" "$MNT/s3/gallery"
check "some of its copies were made" test "$(grep -c "^PUT /$BUCKET/gallery/.* pass$" \
    "$FAULTS/log")" -gt 0
check_eq "the server holds the old tree alone again" "31 0" \
    "$(bucket_keys pictures/ | wc -l) $(bucket_keys gallery/ | wc -l)"
check "the log says the copies were deleted again" \
    grep -q "failed part way: the [0-9]* copies it made were deleted again" "$LOGS/mnt.log"
: >"$FAULTS/rules"
check "a second try works" mv "$MNT/s3/pictures" "$MNT/s3/gallery"

# --- a file's rename (a copy, then a delete) cut short by kill -9: after
# its copy (the delete hangs), and before it (the copy hangs); the next
# mount finishes each
head -c 30000 /dev/urandom >"$TEST_TMP/src/solo1"
head -c 30000 /dev/urandom >"$TEST_TMP/src/solo2"
for n in solo1 solo2; do
    s3curl -X PUT --data-binary "@$TEST_TMP/src/$n" "$BUCKET_URL/$n.bin" -o /dev/null ||
        die "cannot put $n.bin"
done
sleep 1.2                                   # past the root listing's ttl
check "both files show" test -e "$MNT/s3/solo1.bin" -a -e "$MNT/s3/solo2.bin"
# file_rename_crash N METHOD KEY WHAT KEYS_AFTER_CRASH: mv soloN.bin to
# soloN-moved.bin while the proxy holds METHOD KEY, kill -9, remount
file_rename_crash() {
    local n=$1 method=$2 key=$3 what=$4 after=$5 mvpid daemon
    echo "hang $method /$BUCKET/$key all" >"$FAULTS/rules"
    mv "$MNT/s3/solo$n.bin" "$MNT/s3/solo$n-moved.bin" 2>/dev/null &
    mvpid=$!
    check "solo$n: the rename's $what hangs" wait_until 30 \
        grep -q "^$method /$BUCKET/$key hang" "$FAULTS/log"
    daemon=$(daemon_pids "$MNT")
    # shellcheck disable=SC2086
    kill -9 $daemon
    wait "$mvpid" 2>/dev/null
    fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    : >"$FAULTS/rules"
    check_eq "solo$n: after kill -9 the server holds" "$after" \
        "$(bucket_keys "solo$n" | paste -sd' ')"
    check "solo$n: skyfs status says a rename is not finished" bash -c \
        "'$SKYFS' status -c '$CONF' | grep -q '  1 rename(s) not finished'"
    mount_skyfs "$CONF" "$MNT" || die "cannot mount after the crash of solo$n"
    check "solo$n: the next mount finishes the rename" wait_until 30 grep -q \
        "finished the rename of \"solo$n.bin\" to \"solo$n-moved.bin\"" "$LOGS/mnt.log"
    check_eq "solo$n: the server holds the new name alone" "solo$n-moved.bin" \
        "$(bucket_keys "solo$n" | paste -sd' ')"
    check_eq "solo$n: the mount shows the new name alone" "solo$n-moved.bin" \
        "$(cd "$MNT/s3" && ls -d "solo$n"* | paste -sd' ')"
    check "solo$n: it reads back its bytes" cmp "$TEST_TMP/src/solo$n" "$MNT/s3/solo$n-moved.bin"
}
file_rename_crash 1 DELETE solo1.bin "delete" "solo1-moved.bin solo1.bin"
file_rename_crash 2 PUT solo2-moved.bin "copy" "solo2.bin"

unmount_skyfs "$MNT"     # uploads what is pending
check_eq "the pending file went up under the last name" "written here" \
    "$(bucket_get gallery/new.txt)"
check_eq "the server holds gallery/ alone" "0 0 0 32" \
    "$(for d in photos album pictures gallery; do bucket_keys $d/ | wc -l; done | paste -sd' ')"
check "nothing is left pending" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q ' 0 pending upload(s)'"
check_eq "and no rename unfinished" 0 "$("$SKYFS" status -c "$CONF" --json |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["cache"]["unfinished_renames"])')"
