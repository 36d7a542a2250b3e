#!/usr/bin/env bash
# cache_damage.sh - a cache database damaged on disk (a bad sector, a stray
# write, a copy taken mid-write) no longer keeps the mount from starting,
# and what only it held is kept whenever SQLite can still read it.
#
# Before, `skyfs mount` refused to start ("file is not a database",
# "database disk image is malformed") and said nothing of what to do.
# Now the daemon checks both databases at mount (PRAGMA quick_check),
# moves a damaged one with its log into <cache>/damaged/<time>-<pid>/,
# makes a new one and copies from the old what exists nowhere else: the
# entries made here and not on their clouds yet (meta.db) and the pending
# uploads (blocks.db).
#
# Round 1: a local cloud and an S3 cloud, both write_back = async with a
# long delay; a changed file, a new 3 MiB file, a new folder with a file
# and a symlink, a new S3 object; the daemon is killed (kill -9), and one
# index page of each database is overwritten with random bytes.  The next
# mount keeps all of it, and its unmount uploads it with the right bytes.
# Round 2: the same kind of writes, then the first 100 bytes (the header)
# of both databases destroyed: nothing can be read from them.  The mount
# starts, says so as an error, keeps the written bytes beside the damaged
# file, shows the clouds' versions (no file that will never upload, no
# read error), uploads nothing wrong, and works for new writes.
. "$(dirname "$0")/lib.sh"

start_bucket damage
LOCAL="$TEST_TMP/data/local"
MNT="$TEST_TMP/mnt"
CACHE="$TEST_TMP/cache"
CONF="$TEST_TMP/skyfs.conf"
SRC="$TEST_TMP/src"
mkdir -p "$LOCAL" "$SRC"
printf 'hello\n' >"$LOCAL/a.txt"
head -c $((3 << 20)) /dev/urandom >"$SRC/big.bin"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $CACHE
block_size = 1M

[local]
type = local
path = $LOCAL
write_back = async
write_back_delay = 1h

$(s3rver_cloud s3 "http://127.0.0.1:$S3PORT" "$BUCKET")
write_back = async
write_back_delay = 1h
EOF
)

# crash: kill -9 the daemon of $MNT and drop the dead mount.
crash() {
    local daemon
    daemon=$(daemon_pids "$MNT")
    [ -n "$daemon" ] || { echo "no daemon serves $MNT"; return 1; }
    # shellcheck disable=SC2086
    kill -9 $daemon
    sleep 0.3
    fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    return 0
}

# damage_index DB INDEX: fold DB's write-ahead log in, then overwrite the
# root page of index INDEX with random bytes (the tables stay readable).
damage_index() {
    "$PYTHON" - "$1" "$2" <<'PYEOF'
import os, sqlite3, sys
path, index = sys.argv[1:]
db = sqlite3.connect(path)
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
size = db.execute("PRAGMA page_size").fetchone()[0]
root = db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (index,)).fetchone()[0]
db.close()
with open(path, "r+b") as f:
    f.seek((root - 1) * size)
    f.write(os.urandom(size))
print(f"page {root} of {path} overwritten")
PYEOF
}

# damage_header DB: fold DB's write-ahead log in (a log holding page 1
# would mend it), then destroy its first 100 bytes (SQLite's header).
damage_header() {
    "$PYTHON" -c 'import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
with open(sys.argv[1], "r+b") as f:
    f.write(os.urandom(100))' "$1"
}

log_has() { grep -q -- "$1" "$LOGS/mnt.log"; }

# --- round 1: index pages damaged: everything pending is kept
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
check "append to a.txt" eval "echo changed >>'$MNT/local/a.txt'"
check "write big.bin (3 MiB)" cp "$SRC/big.bin" "$MNT/local/big.bin"
check "mkdir d, d/new.txt, a symlink" eval \
    "mkdir '$MNT/local/d' && echo new >'$MNT/local/d/new.txt' && ln -s d/new.txt '$MNT/local/link'"
check "write s3/up.txt" eval "echo 'to the server' >'$MNT/s3/up.txt'"
check "nothing reached the clouds yet" eval \
    "[ ! -e '$LOCAL/big.bin' ] && [ ! -e '$LOCAL/d' ] && bucket_lacks up.txt"
check "kill -9 the daemon" crash
check "damage meta.db's name index" damage_index "$CACHE/meta.db" entries_name
check "damage blocks.db's LRU index" damage_index "$CACHE/blocks.db" blocks_lru
check_fails "the old files now fail SQLite's check" "$PYTHON" -c 'import sqlite3, sys
ok = sqlite3.connect(sys.argv[1]).execute("PRAGMA quick_check").fetchone()[0] == "ok"
sys.exit(0 if ok else 1)' "$CACHE/meta.db"

mount_skyfs "$CONF" "$MNT" || die "cannot mount over the damaged caches"
check "the log warns of the damaged metadata cache" \
    log_has "warn: the metadata cache $CACHE/meta.db was damaged"
check "... and says what it kept" log_has "entries (5 of them made here and not on their clouds yet)"
check "the log warns of the damaged block cache" \
    log_has "warn: the block cache $CACHE/blocks.db was damaged"
check "... and that the 4 pending uploads go on" log_has "4 pending uploads were kept and go on"
check "the damaged files are kept under damaged/" eval \
    "ls '$CACHE'/damaged/*/meta.db '$CACHE'/damaged/*/blocks.db"
check "skyfs status counts both and says where" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q 'damaged: 2 damaged cache database(s) set aside in $CACHE/damaged'"
check_eq "the local cloud lists everything" "a.txt big.bin d link" \
    "$(ls "$MNT/local" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "a.txt reads the appended bytes" "$(printf 'hello\nchanged')" "$(cat "$MNT/local/a.txt" 2>&1)"
check "big.bin reads back" cmp "$SRC/big.bin" "$MNT/local/big.bin"
check_eq "d/new.txt reads back" "new" "$(cat "$MNT/local/d/new.txt" 2>&1)"
check_eq "the symlink is kept" "d/new.txt" "$(readlink "$MNT/local/link" 2>&1)"
check_eq "s3/up.txt reads back" "to the server" "$(cat "$MNT/s3/up.txt" 2>&1)"
unmount_skyfs "$MNT"    # uploads what is pending
check_eq "the cloud's a.txt" "$(printf 'hello\nchanged')" "$(cat "$LOCAL/a.txt" 2>&1)"
check "the cloud's big.bin" cmp "$SRC/big.bin" "$LOCAL/big.bin"
check_eq "the cloud's d/new.txt" "new" "$(cat "$LOCAL/d/new.txt" 2>&1)"
check_eq "the cloud's link" "d/new.txt" "$(readlink "$LOCAL/link" 2>&1)"
check_eq "the server's up.txt" "to the server" "$(bucket_get up.txt)"
check "nothing is left pending" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -q ' 0 pending upload(s), 0 folder(s)'"

# --- round 2: headers destroyed: nothing can be read from the old files
rm -rf "$CACHE/damaged"
mount_skyfs "$CONF" "$MNT" || die "cannot mount for round 2"
check "append to a.txt again" eval "echo 'never uploaded' >>'$MNT/local/a.txt'"
check "write lost.txt" eval "echo 'never uploaded' >'$MNT/local/lost.txt'"
check "write s3/lost.txt" eval "echo 'never uploaded' >'$MNT/s3/lost.txt'"
check "kill -9 the daemon again" crash
check "destroy meta.db's header" damage_header "$CACHE/meta.db"
check "destroy blocks.db's header" damage_header "$CACHE/blocks.db"
mount_skyfs "$CONF" "$MNT" || die "cannot mount over the destroyed caches"
check "the log says the metadata cache was replaced, nothing read from it" \
    log_has "error: the metadata cache $CACHE/meta.db was damaged.*nothing could be read from it"
check "the log gives an error: pending uploads could not be read" \
    log_has "error: the block cache $CACHE/blocks.db was damaged.*its pending uploads could not be read"
check "the written bytes are kept beside the damaged file" eval \
    "grep -rl 'never uploaded' '$CACHE'/damaged/*/data/"
check_eq "the local cloud shows its own files (no lost.txt)" "a.txt big.bin d link" \
    "$(ls "$MNT/local" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "a.txt reads the cloud's version" "$(printf 'hello\nchanged')" \
    "$(cat "$MNT/local/a.txt" 2>&1)"
check_eq "s3 shows the server's objects" "up.txt" "$(ls "$MNT/s3" 2>&1)"
check "big.bin reads back" cmp "$SRC/big.bin" "$MNT/local/big.bin"
check "a new file can be written" eval "echo after >'$MNT/local/after.txt'"
unmount_skyfs "$MNT"
check_eq "the cloud's a.txt is as it was" "$(printf 'hello\nchanged')" "$(cat "$LOCAL/a.txt" 2>&1)"
check "no lost.txt was made on the cloud" test ! -e "$LOCAL/lost.txt"
check "none on the server either" bucket_lacks lost.txt
check_eq "the new file reached the cloud" "after" "$(cat "$LOCAL/after.txt" 2>&1)"

# --- the tools never repair: status over a damaged cache leaves it be
rm -rf "$CACHE/damaged"
check "destroy blocks.db's header once more" damage_header "$CACHE/blocks.db"
"$SKYFS" status -c "$CONF" >"$LOGS/status.out" 2>&1
check "skyfs status sets nothing aside" test ! -e "$CACHE/damaged"
check "the damaged blocks.db stays for the daemon" test -s "$CACHE/blocks.db"
mount_skyfs "$CONF" "$MNT" || die "cannot mount for round 3"
check "the daemon sets it aside" eval "ls '$CACHE'/damaged/*/blocks.db"
check_eq "and serves the files" "after" "$(cat "$MNT/local/after.txt" 2>&1)"
unmount_skyfs "$MNT"
