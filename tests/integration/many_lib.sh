# shellcheck shell=bash
# many_lib.sh - many machines, one cloud (issue 17): two skyfs mounts, A and
# B, each with its own cache, over the same cloud, race on the same files,
# and a third mount V (a fresh cache, ttl 1s) shows what the cloud holds.
# A and B keep what they listed for an hour (ttl = 1h), so each acts on the
# version it last saw, as machines far apart do.  Sourced by many_local.sh,
# many_s3.sh and many_azure.sh after lib.sh; they call many_run with the
# cloud's config section (without its [name] line and ttl).
#
# Every race must lose nothing: the later writer's version goes up beside
# the file as NAME.conflict-HOST-YYYYMMDD-HHMMSS.EXT, the file shows the
# other version, `skyfs status` (and --json) lists the conflict until the
# copy is removed; a delete of a file changed elsewhere is not made; a
# crash with a pending upload of a file changed meanwhile ends the same way.
# And a file B listed but never read, rewritten by A, reads A's version on
# B at once (B's first read finds the change; before, EIO until the ttl).

HOST=$(hostname | cut -d. -f1 | tr '/ ' '__')
STAMP_RE='[0-9]{8}-[0-9]{6}'

# many_conf NAME TTL SECTION: writes $TEST_TMP/NAME.conf (cache NAME).
many_conf() {
    mkdir -p "$TEST_TMP/cache-$1"
    (umask 077 && printf '[cache]\ndir = %s\n\n[c]\n%s\nttl = %s\n' \
        "$TEST_TMP/cache-$1" "$3" "$2" >"$TEST_TMP/$1.conf")
}

# conflict_copies DIR STEM EXT: the names of DIR's conflict copies of STEM.EXT.
conflict_copies() {
    ls -1 "$1" | grep -E "^$2\.conflict-$HOST-$STAMP_RE$3\$"
}

# one_copy_holds DIR STEM EXT CONTENT: exactly one conflict copy, holding CONTENT.
one_copy_holds() {
    local names
    names=$(conflict_copies "$1" "$2" "$3") || { echo "no conflict copy of $2$3 in $1"; ls -la "$1"; return 1; }
    [ "$(printf '%s\n' "$names" | wc -l)" -eq 1 ] || { echo "several: $names"; return 1; }
    [ "$(cat "$1/$names")" = "$4" ] || { echo "$names holds: $(cat "$1/$names")"; return 1; }
}

# holds FILE CONTENT
holds() {
    [ "$(cat "$1" 2>&1)" = "$2" ] || { echo "$1 holds: $(cat "$1" 2>&1)"; return 1; }
}

# in_v TEST...: V refreshes (ttl 1s) and the test holds within 10 s.
in_v() {
    wait_until 10 "$@"
}

# hold_open FILE CONTENT: a writer opens FILE now (read-write, no
# truncation) and keeps it open; `release` makes it write CONTENT at
# offset 0 and close, and returns the writer's status (close included).
hold_open() {
    rm -f "$TEST_TMP/go" "$TEST_TMP/opened"
    "$PYTHON" - "$1" "$2" "$TEST_TMP" >>"$LOGS/holder.log" 2>&1 <<'PY' &
import os, sys, time
path, content, tmp = sys.argv[1:]
fd = os.open(path, os.O_RDWR)
open(tmp + "/opened", "w").close()
while not os.path.exists(tmp + "/go"):
    time.sleep(0.05)
os.write(fd, content.encode())
os.close(fd)
PY
    HOLDER=$!
    wait_until 10 test -e "$TEST_TMP/opened" || die "the writer could not open $1"
}
release() {
    touch "$TEST_TMP/go"
    wait "$HOLDER"
}

status_json() {
    "$SKYFS" status -c "$TEST_TMP/$1.conf" --json
}

json_field() {  # json_field CONF PYTHON-EXPR-ON-CLOUD
    status_json "$1" | "$PYTHON" -c "import json,sys; c=json.load(sys.stdin)['clouds'][0]; print($2)"
}

# many_own_changes MOUNT V: a mount's own renames and metadata edits never
# turn its later deletes or uploads into conflicts.  Object stores rename
# by copy + delete, and a copy (Azure's) gives the new object a new ETag;
# chmod, utime and setxattr may give one too (Azure, and S3's copy onto
# itself).  The cache must then hold the new version, or the next
# conditional delete or upload meets "another" version that is its own.
# MANY_XATTRS=no: the cloud kind has no extended attributes (setfattr must
# then be refused with ENOTSUP).
many_own_changes() {
    local m=$1 v=$2 f
    mkdir -p "$m/c/own/sub" || die "cannot make own/sub"
    for f in rm put sub/rm keep; do
        printf 'own-%s' "$f" >"$m/c/own/$f.txt" || die "cannot write own/$f.txt"
    done
    for f in chmod utime xattr mv; do
        printf 'own-%s' "$f" >"$m/c/$f-own.txt" || die "cannot write $f-own.txt"
    done
    # the mount reads them all: the cache holds their versions (and blocks)
    for f in rm put sub/rm keep; do
        check_eq "the mount reads own/$f.txt" "own-$f" "$(cat "$m/c/own/$f.txt")"
    done
    check "mv of a directory on the same mount" mv "$m/c/own" "$m/c/own2"
    check "rm of a file in the renamed directory" rm "$m/c/own2/rm.txt"
    check "the file is gone from the cloud" in_v test ! -e "$v/c/own2/rm.txt"
    check "rm of a file in a subdirectory of the renamed directory" rm "$m/c/own2/sub/rm.txt"
    check "that file is gone from the cloud too" in_v test ! -e "$v/c/own2/sub/rm.txt"
    check "overwrite of a file in the renamed directory" \
        bash -c "printf own-put-2 >'$m/c/own2/put.txt'"
    check "the cloud holds the new content" in_v holds "$v/c/own2/put.txt" own-put-2
    check "the untouched file moved with its content" in_v holds "$v/c/own2/keep.txt" own-keep
    check_fails "no conflict copy of the overwritten file" conflict_copies "$v/c/own2" put .txt
    check "append to the moved file" bash -c "printf -- -more >>'$m/c/own2/keep.txt'"
    check "the cloud holds the appended content" in_v holds "$v/c/own2/keep.txt" own-keep-more
    # a file renamed, then removed
    check "mv of a file on the same mount" mv "$m/c/mv-own.txt" "$m/c/mv-own2.txt"
    check "rm of the renamed file" rm "$m/c/mv-own2.txt"
    check "the renamed file is gone from the cloud" in_v test ! -e "$v/c/mv-own2.txt"
    # metadata edits, then rm
    check "chmod of a file" chmod 600 "$m/c/chmod-own.txt"
    check "rm after chmod" rm "$m/c/chmod-own.txt"
    check "the file is gone from the cloud after chmod + rm" in_v test ! -e "$v/c/chmod-own.txt"
    check "touch -d of a file" touch -d '2020-01-02 03:04:05' "$m/c/utime-own.txt"
    check "rm after touch -d" rm "$m/c/utime-own.txt"
    check "the file is gone from the cloud after utime + rm" in_v test ! -e "$v/c/utime-own.txt"
    if [ "${MANY_XATTRS:-yes}" = yes ]; then
        check "setfattr of a file" setfattr -n user.color -v blue "$m/c/xattr-own.txt"
    else    # a cloud kind without extended attributes (sftp)
        check "setfattr is refused: the cloud has no extended attributes" bash -c \
            "setfattr -n user.color -v blue '$m/c/xattr-own.txt' 2>&1 | grep -q 'Operation not supported'"
    fi
    check "rm after setfattr" rm "$m/c/xattr-own.txt"
    check "the file is gone from the cloud after setxattr + rm" in_v test ! -e "$v/c/xattr-own.txt"
    check_eq "the mount met no conflict with its own changes" 0 \
        "$(json_field "$(basename "$m")" "c['conflict_count']")"
    check_fails "its log names no conflict" grep -q 'conflict:' "$LOGS/$(basename "$m").log"
}

# many_run SECTION GUARANTEE: the races on a cloud whose config section
# (type and keys) is SECTION; GUARANTEE is what status must say of it
# ("native" or "compare").
many_run() {
    local section=$1 guarantee=$2
    many_conf a 1h "$section"
    many_conf b 1h "$section"
    many_conf v 1s "$section"
    A="$TEST_TMP/a" B="$TEST_TMP/b" V="$TEST_TMP/v"
    mount_skyfs "$TEST_TMP/a.conf" "$A" || die "cannot mount A"
    local f
    for f in same del gone ren mvchg over crash again; do
        printf original >"$A/c/$f.txt" || die "cannot write $f.txt on A"
    done
    printf original >"$A/c/listed.txt" || die "cannot write listed.txt on A"
    printf 'line 1\n' >"$A/c/a-log.txt" || die "cannot write a-log.txt on A"
    printf 0123456789 >"$A/c/a-dd.txt" || die "cannot write a-dd.txt on A"
    printf 0123456789 >"$A/c/a-trunc.txt" || die "cannot write a-trunc.txt on A"
    printf 0123456789 >"$A/c/a-cut.txt" || die "cannot write a-cut.txt on A"
    printf original >"$A/c/a-redir.txt" || die "cannot write a-redir.txt on A"
    head -c $((12 << 20)) /dev/urandom >"$TEST_TMP/big.orig"
    cp "$TEST_TMP/big.orig" "$A/c/a-big.bin" || die "cannot write a-big.bin on A"
    # SFTP's version token is size + mtime in whole seconds: A's changes
    # below (the same size as "original") must come in a later second
    sleep 1.1
    mount_skyfs "$TEST_TMP/b.conf" "$B" || die "cannot mount B"
    mount_skyfs "$TEST_TMP/v.conf" "$V" || die "cannot mount V"
    # B reads every file: it knows (and caches) their first version
    for f in same del gone ren mvchg over crash again; do
        check_eq "B sees $f.txt as A wrote it" original "$(cat "$B/c/$f.txt")"
    done

    # B's first crawl (soon after its mount) would bring it A's changes
    # below as news before B acts on them: it is over first (the next one
    # is an hour away)
    check "B's first crawl is over" wait_until 20 grep -q "crawl 1 complete" "$LOGS/b.log"

    # --- a file B listed and never read, rewritten by A: B's listing is
    # fresh for an hour, so its open is at the old version; the cloud says
    # it changed, and B, having served nothing of that version, reads the
    # new one (before: EIO)
    check "B lists listed.txt" bash -c "ls -l '$B/c' | grep -q ' listed.txt$'"
    printf 'a longer version written by A' >"$A/c/listed.txt"
    check "A's rewrite of listed.txt is on the cloud" \
        in_v holds "$V/c/listed.txt" 'a longer version written by A'
    check_eq "B reads A's new version of the file it had only listed" \
        'a longer version written by A' "$(cat "$B/c/listed.txt" 2>&1)"
    check_eq "and shows its new size" 29 "$(stat -c %s "$B/c/listed.txt")"
    check "B's log says it read the new version" \
        grep -q '"listed.txt" changed on the cloud since it was listed' "$LOGS/b.log"

    # --- the same for B's first write: an append goes after A's (two
    # machines writing one log), a write in place and a truncate go into
    # A's version (before: EIO until the ttl).  Their names come before
    # the files B read: its reads fetched none of them ahead (open_ahead),
    # or B would hold their old version and act on it
    check "B lists a-log.txt, a-dd.txt, a-trunc.txt and a-cut.txt" bash -c \
        "ls -l '$B/c' | grep -q ' a-log.txt$' && ls '$B/c' | grep -q '^a-dd.txt$' && ls '$B/c' | grep -q '^a-trunc.txt$' && ls '$B/c' | grep -q '^a-cut.txt$'"
    printf 'line 2\n' >>"$A/c/a-log.txt"
    for f in a-dd a-trunc a-cut; do
        printf abcdefghijklmnop >"$A/c/$f.txt"
    done
    check "A's changes are on the cloud" in_v bash -c \
        "[ \"\$(cat '$V/c/a-log.txt')\" = \"\$(printf 'line 1\nline 2')\" ] && [ \"\$(cat '$V/c/a-dd.txt')\" = abcdefghijklmnop ] && [ \"\$(cat '$V/c/a-trunc.txt')\" = abcdefghijklmnop ] && [ \"\$(cat '$V/c/a-cut.txt')\" = abcdefghijklmnop ]"
    # (two writes on one descriptor: the second goes after the first too)
    check "B appends two lines to a-log.txt" bash -c \
        "{ printf 'line 3\n'; printf 'line 4\n'; } >>'$B/c/a-log.txt'"
    check_eq "B's a-log.txt holds A's line and then its own" \
        "$(printf 'line 1\nline 2\nline 3\nline 4')" "$(cat "$B/c/a-log.txt" 2>&1)"
    check_eq "and shows their size" 28 "$(stat -c %s "$B/c/a-log.txt")"
    check "the cloud holds the four lines" in_v holds "$V/c/a-log.txt" \
        "$(printf 'line 1\nline 2\nline 3\nline 4')"
    check "B writes two bytes into a-dd.txt in place" bash -c \
        "printf XY | dd of='$B/c/a-dd.txt' bs=1 seek=2 conv=notrunc status=none"
    check "the cloud holds A's a-dd.txt with B's two bytes" in_v holds "$V/c/a-dd.txt" abXYefghijklmnop
    check "B truncates a-trunc.txt to 12 bytes" truncate -s 12 "$B/c/a-trunc.txt"
    check "the cloud holds A's a-trunc.txt cut at 12" in_v holds "$V/c/a-trunc.txt" abcdefghijkl
    check_eq "B shows it cut" abcdefghijkl "$(cat "$B/c/a-trunc.txt" 2>&1)"
    # a truncate into bytes B never fetched (before: a failed close, and the
    # journal's retry put A's first bytes up as B's conflict copy)
    check "B truncates a-cut.txt to 5 bytes" truncate -s 5 "$B/c/a-cut.txt"
    check "the cloud holds A's a-cut.txt cut at 5" in_v holds "$V/c/a-cut.txt" abcde
    check_eq "B shows it cut at 5" abcde "$(cat "$B/c/a-cut.txt" 2>&1)"
    for f in a-log a-dd a-trunc a-cut; do
        check_fails "no conflict copy of $f.txt" conflict_copies "$V/c" $f .txt
    done

    # --- both write the same file: B held it open while A replaced it
    hold_open "$B/c/same.txt" from-b-2
    printf from-a-1 >"$A/c/same.txt"
    check "B's close of a file A changed meanwhile succeeds" release
    check "the file keeps A's version" in_v holds "$V/c/same.txt" from-a-1
    check "B's version is beside it as same.conflict-$HOST-DATE-TIME.txt" \
        in_v one_copy_holds "$V/c" same .txt from-b-2
    check "B now shows A's version of the file" holds "$B/c/same.txt" from-a-1
    check "B lists the conflict copy at once" one_copy_holds "$B/c" same .txt from-b-2
    check "B's log names the conflict" grep -q 'conflict: "same.txt"' "$LOGS/b.log"
    check "skyfs status lists the conflict" bash -c \
        "'$SKYFS' status -c '$TEST_TMP/b.conf' | grep -E 'conflict: same.txt changed on another machine; this machine.s version is same.conflict-'"
    check_eq "skyfs status --json counts one conflict" 1 "$(json_field b "c['conflict_count']")"
    check_eq "skyfs status --json lists its copy" "same.txt upload" \
        "$(json_field b "' '.join([c['conflicts'][0]['path'], c['conflicts'][0]['what']])")"
    check_eq "A has met no conflict" 0 "$(json_field a "c['conflict_count']")"
    check "B's metrics count the conflict" \
        grep -Eq '^skyfs_conflicts_total 1(\.0*)?$' "$B/.skyfs/metrics"

    # --- A's own renames and metadata edits, then deletes and uploads
    many_own_changes "$A" "$V"

    # --- a file B saw in its current version goes up as usual
    printf from-b-3 >"$B/c/again.txt"
    check "an upload over the version B saw replaces it" in_v holds "$V/c/again.txt" from-b-3
    check_fails "and leaves no conflict copy" conflict_copies "$V/c" again .txt

    # --- delete on B of a file A changed: not made, A's version stays
    printf from-a-1 >"$A/c/del.txt"
    check "rm on B of a file A changed returns" rm "$B/c/del.txt"
    check "the file is still in the cloud with A's version" in_v holds "$V/c/del.txt" from-a-1
    check "B shows A's version again" holds "$B/c/del.txt" from-a-1
    check "skyfs status lists the delete it did not make" bash -c \
        "'$SKYFS' status -c '$TEST_TMP/b.conf' | grep -q 'conflict: del.txt was not deleted'"

    # --- edit on B of a file A deleted: the edit goes up as a conflict copy
    hold_open "$B/c/gone.txt" from-b-2
    rm "$A/c/gone.txt"
    check "B's close of a file A deleted meanwhile succeeds" release
    check "B's edit survives as a conflict copy" in_v one_copy_holds "$V/c" gone .txt from-b-2
    check "the file A deleted stays deleted" in_v test ! -e "$V/c/gone.txt"

    # --- rename races: A renames a file B is writing
    hold_open "$B/c/ren.txt" from-b-2
    mv "$A/c/ren.txt" "$A/c/ren2.txt"
    check "B's close of a file A renamed meanwhile succeeds" release
    check "A's rename holds the first version" in_v holds "$V/c/ren2.txt" original
    check "B's edit survives as a conflict copy of the old name" \
        in_v one_copy_holds "$V/c" ren .txt from-b-2
    # ... and B renames a file A changed: the move carries A's version
    printf from-a-1 >"$A/c/mvchg.txt"
    check "mv on B of a file A changed" mv "$B/c/mvchg.txt" "$B/c/moved.txt"
    check "the moved file holds A's version" in_v holds "$V/c/moved.txt" from-a-1
    # ... and B saves over a file A changed, as editors save: a new name,
    # then a rename over the old one: A's change is not lost
    printf from-a-1 >"$A/c/over.txt"
    printf from-b-2 >"$B/c/over.tmp"
    check "mv on B of a new file over one A changed" mv "$B/c/over.tmp" "$B/c/over.txt"
    check "the file keeps A's version" in_v holds "$V/c/over.txt" from-a-1
    check "B's saved version is beside it as a conflict copy" \
        in_v one_copy_holds "$V/c" over .txt from-b-2
    check_fails "the temporary name is gone from the cloud" in_v test -e "$V/c/over.tmp"
    check "B shows A's version of the file" wait_until 10 holds "$B/c/over.txt" from-a-1
    check "B lists the conflict copy" one_copy_holds "$B/c" over .txt from-b-2
    check "B's log names the rename's conflict" grep -q 'conflict: "over.txt" .*the rename of "over.tmp" over it' "$LOGS/b.log"
    # a save over a file B saw in its current version replaces it
    printf from-b-3 >"$B/c/over.tmp"
    check "mv on B over a file it saw as it is" mv "$B/c/over.tmp" "$B/c/over.txt"
    check "the save replaced the file" in_v holds "$V/c/over.txt" from-b-3
    check_eq "and made no second conflict copy" 1 "$(conflict_copies "$V/c" over .txt | wc -l)"

    # --- both create the same new file
    printf from-a-1 >"$A/c/new.txt"
    check "B creates the file A just made (B has not seen it)" \
        bash -c "printf from-b-2 >'$B/c/new.txt'"
    check "A's new file stays" in_v holds "$V/c/new.txt" from-a-1
    check "B's new file survives as a conflict copy" in_v one_copy_holds "$V/c" new .txt from-b-2

    # --- both create it with the same size and modification time (as two
    # machines extracting different archives would): B's upload notes that
    # size and time before it goes out, and must not take A's file for its
    # own earlier upload
    local same_time='import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, sys.argv[2].encode())
os.utime(fd, ns=(1600000000 * 10**9, 1600000000 * 10**9))
os.close(fd)'
    "$PYTHON" -c "$same_time" "$A/c/twin.txt" from-a-1
    check "B creates the file A just made, with A's size and mtime" \
        "$PYTHON" -c "$same_time" "$B/c/twin.txt" from-b-2
    check "A's file stays" in_v holds "$V/c/twin.txt" from-a-1
    check "B's survives as a conflict copy" in_v one_copy_holds "$V/c" twin .txt from-b-2
    # ... and the same bytes on both (one archive extracted on both): no
    # conflict, nothing to keep twice
    "$PYTHON" -c "$same_time" "$A/c/same-bytes.txt" same-on-both
    check "B creates the file A just made, with the same bytes" \
        "$PYTHON" -c "$same_time" "$B/c/same-bytes.txt" same-on-both
    check "the file holds them" in_v holds "$V/c/same-bytes.txt" same-on-both
    check_fails "and has no conflict copy" conflict_copies "$V/c" same-bytes .txt

    # --- a crash with a pending upload whose object changed meanwhile
    "$PYTHON" - "$B/c/crash.txt" "$TEST_TMP/crash-ready" >"$LOGS/crash-writer.log" 2>&1 <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, b"from-b-2")
open(sys.argv[2], "w").close()
time.sleep(60)
PY
    local writer=$!
    check "B's writer has its write acknowledged" wait_until 20 test -e "$TEST_TMP/crash-ready"
    local daemon
    daemon=$(daemon_pids "$B")
    check "B's daemon is running" test -n "$daemon"
    # shellcheck disable=SC2086
    kill -9 $daemon
    kill "$writer" 2>/dev/null
    wait "$writer" 2>/dev/null
    fusermount3 -u -z "$B" 2>/dev/null || umount -l "$B" 2>/dev/null
    printf from-a-1 >"$A/c/crash.txt"
    check "A's change is in the cloud" in_v holds "$V/c/crash.txt" from-a-1
    mount_skyfs "$TEST_TMP/b.conf" "$B" || die "cannot remount B after the crash"
    check "the journal's upload becomes a conflict copy" \
        wait_until 60 one_copy_holds "$V/c" crash .txt from-b-2
    check "A's version is not overwritten" holds "$V/c/crash.txt" from-a-1

    # --- the guarantee, and resolving a conflict
    check_eq "skyfs status --json says how $(echo "$section" | head -1) checks preconditions" \
        "$guarantee" "$(json_field b "c['guarantee']")"
    if [ "$guarantee" = native ]; then
        check "skyfs status says the cloud checks preconditions" bash -c \
            "'$SKYFS' status -c '$TEST_TMP/b.conf' | grep -q 'uploads: the cloud checks preconditions'"
    else
        check "skyfs status says the guarantee is weaker" bash -c \
            "'$SKYFS' status -c '$TEST_TMP/b.conf' | grep -q 'uploads: weaker guarantee'"
    fi
    local copy
    copy=$(conflict_copies "$B/c" same .txt)
    check "B removes the conflict copy of same.txt" rm "$B/c/$copy"
    check_fails "skyfs status no longer lists it" bash -c \
        "'$SKYFS' status -c '$TEST_TMP/b.conf' | grep -q 'conflict: same.txt'"
    check_eq "the count keeps it" 8 "$(json_field b "c['conflict_count']")"

    # --- B read the start of a large file and changes it there; A replaced
    # it meanwhile with a shorter one: the old version's bytes B never read
    # are gone.  B's close succeeds and its version goes up as a conflict
    # copy, the bytes it never had taken from A's version or zeros (the log
    # says so); before, the close failed (Stale file handle) and the
    # journal retried the upload for ever, a pending upload never done
    check "B reads the start of a-big.bin" bash -c "head -c 100 '$B/c/a-big.bin' >/dev/null"
    head -c $((5 << 20)) /dev/urandom >"$TEST_TMP/big.a"
    cp "$TEST_TMP/big.a" "$A/c/a-big.bin"
    check "A's shorter a-big.bin is on the cloud" in_v cmp -s "$TEST_TMP/big.a" "$V/c/a-big.bin"
    check "B writes into a-big.bin, and its close succeeds" bash -c \
        "printf HELLO | dd of='$B/c/a-big.bin' bs=1 seek=10 conv=notrunc status=none"
    check "B's log says the copy mixes the two versions" \
        wait_until 10 grep -q '"a-big.bin" was changed here, but the version it was read at is gone' "$LOGS/b.log"
    check "B has no pending upload left" wait_until 20 bash -c \
        "'$SKYFS' status -c '$TEST_TMP/b.conf' | grep -q ' 0 pending upload(s)'"
    check "A's a-big.bin stays on the cloud" cmp -s "$TEST_TMP/big.a" "$V/c/a-big.bin"
    head -c $((4 << 20)) "$TEST_TMP/big.orig" >"$TEST_TMP/big.b0"
    printf HELLO | dd of="$TEST_TMP/big.b0" bs=1 seek=10 conv=notrunc status=none
    check "B's version is beside it, its first block as B changed it" in_v bash -c \
        "c=\$(ls '$V/c' | grep -E '^a-big\.conflict-.*\.bin\$') && [ \$(stat -c %s '$V/c/'\$c) -eq $((12 << 20)) ] && head -c $((4 << 20)) '$V/c/'\$c | cmp -s - '$TEST_TMP/big.b0'"

    # --- a shell's `cmd > file` on B, of a file A deleted: the shell's
    # first close (of a copy of the descriptor, before cmd writes) meets
    # the delete and goes up as an empty conflict copy; what cmd writes
    # then goes up beside it too (before: dropped, "nothing to upload
    # to", while the write and the close had succeeded)
    check "B lists a-redir.txt" bash -c "ls '$B/c' | grep -q '^a-redir.txt$'"
    rm "$A/c/a-redir.txt"
    check "A's delete is on the cloud" in_v bash -c "! ls '$V/c' | grep -q '^a-redir.txt$'"
    check "B's redirect into a-redir.txt returns" bash -c "printf 'from B\n' >'$B/c/a-redir.txt'"
    check "what B wrote is on the cloud, beside the delete" in_v bash -c \
        "for f in \$(ls '$V/c' | grep -E '^a-redir\.conflict-'); do [ \"\$(cat '$V/c/'\$f)\" = 'from B' ] && exit 0; done; exit 1"
    check_fails "and a-redir.txt stays deleted" test -e "$V/c/a-redir.txt"
    unmount_skyfs "$A"
    unmount_skyfs "$B"
    unmount_skyfs "$V"
}
