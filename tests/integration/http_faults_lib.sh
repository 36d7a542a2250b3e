# shellcheck shell=bash
# http_faults_lib.sh - the misbehaving-server scenarios shared by
# http_faults_s3.sh and http_faults_azure.sh (sourced after lib.sh).
#
# Between skyfs and the server (s3rver or Azurite) sits fault_proxy.py;
# a scenario writes its rules ($FAULTS/rules), does something through the
# mount and checks what skyfs made of it, and what the proxy saw
# ($FAULTS/log).  The test file sets, before calling them:
#   MNT       the mountpoint (mounted), CLOUD the cloud's directory in it
#   LIST_Q    the query word of a listing ("list-type=2", "comp=list")
#   put_direct NAME FILE [HEADER...]  stores FILE as object NAME straight on
#             the server (headers "name: value")
#   get_direct NAME OUT   fetches object NAME straight from the server
#   meta_count NAME       prints how many user metadata keys k00..k99
#             object NAME has on the server
FAULTS="$TEST_TMP/faults"
mkdir -p "$FAULTS"

# rules LINE...: the proxy's rules from now on (none: pass everything)
rules() {
    printf '%s\n' "$@" >"$FAULTS/rules"
}

# seen METHOD PATTERN: how many requests the proxy got with METHOD whose
# path and query contain PATTERN
seen() {
    grep -c -- "^$1 [^ ]*$2" "$FAULTS/log"
}

# file_is PATH EXPECTED_FILE
file_is() {
    cmp "$2" "$1"
}

# --- item 4: a 206 answer for another range than the one asked ----------
scenario_ranges() {
    head -c $((3 << 20)) /dev/urandom >"$TEST_TMP/r.src"
    put_direct rng-once.bin "$TEST_TMP/r.src" || die "cannot store rng-once.bin"
    put_direct rng-always.bin "$TEST_TMP/r.src" || die "cannot store rng-always.bin"
    rules "range GET rng-once.bin 1"
    check "$CLOUD: a 206 with a wrong Content-Range is retried, and the file reads right" \
        file_is "$MNT/$CLOUD/rng-once.bin" "$TEST_TMP/r.src"
    check "$CLOUD: the proxy did send a wrong range for rng-once.bin" \
        test "$(grep -c 'rng-once.bin range$' "$FAULTS/log")" -eq 1
    rules "range GET rng-always.bin all"
    check_eq "$CLOUD: a server that always answers the wrong range gives EIO, never data" \
        EIO "$(errno_of read "$MNT/$CLOUD/rng-always.bin")"
    check "$CLOUD: the log names the range mismatch" \
        grep -q "does not match the range asked" "$LOGS/$(basename "$MNT").log"
    rules
}

# --- item 6: 60 metadata keys, read whole and kept by a rewrite --------
meta60_rewritten() {
    get_direct meta60.txt "$TEST_TMP/m.out" && grep -q rewritten "$TEST_TMP/m.out"
}

scenario_many_meta() {
    local hdrs=() i
    for i in $(seq -w 0 59); do
        hdrs+=("$META_PREFIX$i: value-$i")
    done
    printf 'sixty keys\n' >"$TEST_TMP/m.src"
    put_direct meta60.txt "$TEST_TMP/m.src" "${hdrs[@]}" || die "cannot store meta60.txt"
    check_eq "$CLOUD: the server holds 60 metadata keys" 60 "$(meta_count meta60.txt)"
    check_eq "$CLOUD: all 60 keys show as xattrs" 60 \
        "$(getfattr -d -m '^user\.k' "$MNT/$CLOUD/meta60.txt" 2>/dev/null | grep -c '^user\.k')"
    check_eq "$CLOUD: the 60th key's value reads" '"value-59"' \
        "$(getfattr -n user.k59 "$MNT/$CLOUD/meta60.txt" 2>/dev/null | sed -n 's/^user.k59=//p')"
    check "$CLOUD: rewrite the file through skyfs" \
        sh -c "printf 'rewritten\n' >'$MNT/$CLOUD/meta60.txt'"
    check "$CLOUD: the rewrite reached the server" wait_until 20 meta60_rewritten
    check_eq "$CLOUD: the rewritten object keeps all 60 keys" 60 "$(meta_count meta60.txt)"
    check "$CLOUD: a 61st key through setxattr is stored" \
        setfattr -n user.k60 -v value-60 "$MNT/$CLOUD/meta60.txt"
    check_eq "$CLOUD: ...and the server has 61" 61 "$(meta_count meta60.txt)"
    local big
    big=$(head -c "$META_LIMIT" /dev/zero | tr '\0' x)
    check_eq "$CLOUD: metadata past the protocol's limit is E2BIG" E2BIG \
        "$("$PYTHON" -c 'import errno, os, sys
try:
    os.setxattr(sys.argv[1], "user.big", sys.argv[2].encode()); print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$MNT/$CLOUD/meta60.txt" "$big")"
    check_eq "$CLOUD: ...and the object still has its 61 keys" 61 "$(meta_count meta60.txt)"

    # three keys of 2/5 of the limit each: a rewrite can keep two
    local v
    v=$(head -c $((META_LIMIT * 2 / 5)) /dev/zero | tr '\0' v)
    put_direct over.txt "$TEST_TMP/m.src" "${META_PREFIX}1: $v" "${META_PREFIX}2: $v" \
        "${META_PREFIX}3: $v" || die "cannot store over.txt"
    check_eq "$CLOUD: the server holds 3 keys past the limit" 3 "$(meta_count over.txt)"
    check "$CLOUD: a rewrite with metadata past the limit succeeds" \
        sh -c "printf 'rewritten\n' >'$MNT/$CLOUD/over.txt'"
    check_eq "$CLOUD: ...keeping the keys that fit" 2 "$(meta_count over.txt)"
    check "$CLOUD: ...and the log names the key left out" \
        grep -q "'$CLOUD'.*over.txt: user metadata k[0-9] left out" "$LOGS/$(basename "$MNT").log"
}

# --- item 8: listings that never end ------------------------------------
scenario_listing_loops() {
    local mode dir n
    for mode in repeat noprogress; do
        dir="loop-$mode"
        mkdir "$MNT/$CLOUD/$dir" && touch "$MNT/$CLOUD/$dir/a" "$MNT/$CLOUD/$dir/b" ||
            die "cannot make $dir"
        sleep 1.2       # past the ttl: the next listing asks the server
        rules "$mode GET ${dir}%2F all"
        check_eq "$CLOUD: a listing whose server ${mode}s its page token fails with EIO" EIO \
            "$(errno_of listdir "$MNT/$CLOUD/$dir")"
        n=$(grep -c "^GET [^ ]*$LIST_Q[^ ]*${dir}%2F[^ ]* $mode$" "$FAULTS/log")
        check "$CLOUD: ...after a few pages ($n), not hundreds" test "$n" -ge 2 -a "$n" -le 20
        check "$CLOUD: the log names the cloud and the stopped listing" \
            grep -q "'$CLOUD'.*listing stopped" "$LOGS/$(basename "$MNT").log"
        rules
    done
}

# --- item 2: lost answers to commits, copies and deletes ---------------
# scenario_lost_answers COMMIT_MODE COMMIT_METHOD COMMIT_PATTERN DATA_METHOD
#                       DATA_PATTERN N
#   A 20 MiB file goes up with N requests matching DATA_METHOD DATA_PATTERN
#   (the parts, or the start of the upload) and a commit, whose answer the
#   proxy cuts (COMMIT_MODE cut: the server answers the retry itself;
#   cutfail:...: the proxy fails the retry).  Then a metadata change and a
#   rename (copies) whose answers are cut and whose retries fail, and a
#   delete whose answer is cut.
scenario_lost_answers() {
    head -c $((20 << 20)) /dev/urandom >"$TEST_TMP/c.src"
    rules "$1 $2 $3 2"
    check "$CLOUD: a large write whose commit answer is lost succeeds (fsync)" \
        dd if="$TEST_TMP/c.src" of="$MNT/$CLOUD/commit.bin" bs=1M conv=fsync status=none
    check "$CLOUD: the commit was sent again after its answer was cut" \
        test "$(seen "$2" "commit.bin?$3")" -ge 2
    check_eq "$CLOUD: the file was not uploaded a second time" "$6" \
        "$(seen "$4" "commit.bin?$5")"
    get_direct commit.bin "$TEST_TMP/c.out"
    check "$CLOUD: the server holds the file's bytes" cmp "$TEST_TMP/c.src" "$TEST_TMP/c.out"

    rules "cutfail:412:PreconditionFailed PUT commit.bin 2"
    check "$CLOUD: a metadata change whose answer is lost and whose retry fails succeeds" \
        setfattr -n user.k99 -v lost-answer "$MNT/$CLOUD/commit.bin"
    check_eq "$CLOUD: ...and the object carries it" 1 "$(meta_count commit.bin)"

    rules "$COPY_FAULT PUT moved.bin 2"
    check "$CLOUD: a rename whose copy answer is lost and whose retry fails succeeds" \
        mv "$MNT/$CLOUD/commit.bin" "$MNT/$CLOUD/moved.bin"
    check_eq "$CLOUD: the copy was sent twice" 2 "$(seen PUT moved.bin)"
    get_direct moved.bin "$TEST_TMP/c.out"
    check "$CLOUD: the server holds the moved file's bytes" cmp "$TEST_TMP/c.src" "$TEST_TMP/c.out"
    check_fails "$CLOUD: the old name is gone from the server" get_direct commit.bin /dev/null
    rules

    printf 'delete me\n' >"$TEST_TMP/d.src"
    put_direct gone.txt "$TEST_TMP/d.src" || die "cannot store gone.txt"
    check "$CLOUD: gone.txt shows" test -f "$MNT/$CLOUD/gone.txt"
    rules "cut DELETE gone.txt 1"
    check "$CLOUD: a delete whose answer is lost succeeds" rm "$MNT/$CLOUD/gone.txt"
    check_eq "$CLOUD: the delete was sent twice" 2 "$(seen DELETE gone.txt)"
    check_fails "$CLOUD: the object is gone from the server" get_direct gone.txt "$TEST_TMP/d.out"
    rules
}

# --- an upload that failed, though the server had stored it --------------
# write_closes PATH TEXT: "ok" when writing TEXT to PATH and closing it
# succeeded, else "failed"
write_closes() {
    "$PYTHON" - "$1" "$2" <<'PYW'
import os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, sys.argv[2].encode())
    os.close(fd)
    print("ok")
except OSError:
    print("failed")
PYW
}

# scenario_lost_upload: a new file's upload at close is cut after the
# server stored it, and its retry is refused (403: the close reports the
# error, and the upload at release fails too); the file's next upload
# meets that version on the server.  It is this machine's own (same size and mtime):
# replaced, no conflict copy.  When another machine wrote the name
# meanwhile (same size, its own time), it is a conflict as ever: the
# pending content goes beside it as a conflict copy (at an fsync).
scenario_lost_upload() {
    local name
    for name in lost own; do
        rules "cut PUT $name.txt 1" "status:403 PUT $name.txt all"
        check_eq "$CLOUD: $name.txt: the close of an upload cut and then refused fails" \
            failed "$(write_closes "$MNT/$CLOUD/$name.txt" "one!")"
        check "$CLOUD: $name.txt: ...and the upload at its release" wait_until 30 grep -q \
            "upload at close failed.*PUT $name.txt" "$LOGS/$(basename "$MNT").log"
        get_direct $name.txt "$TEST_TMP/l.out"
        check_eq "$CLOUD: $name.txt: ...though the server stored it" "one!" "$(cat "$TEST_TMP/l.out")"
        [ $name = lost ] && continue
        printf 'two!' >"$TEST_TMP/l.src"   # another machine's write, as long
        put_direct $name.txt "$TEST_TMP/l.src" || die "cannot store $name.txt"
        rules
        check "$CLOUD: own.txt: fsync uploads the pending content" "$PYTHON" -c \
            'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' \
            "$MNT/$CLOUD/own.txt"
    done
    rules
    check_eq "$CLOUD: lost.txt: written again, the close succeeds" \
        ok "$(write_closes "$MNT/$CLOUD/lost.txt" "three")"
    get_direct lost.txt "$TEST_TMP/l.out"
    check_eq "$CLOUD: the server holds the new content of lost.txt" three "$(cat "$TEST_TMP/l.out")"
    check_eq "$CLOUD: ...and no conflict copy of it was made" "" \
        "$(ls "$MNT/$CLOUD" | grep '^lost\.conflict-')"
    check "$CLOUD: the log says the cloud held this machine's own earlier upload" \
        grep -q "\"lost.txt\" holds this machine's own earlier upload" \
        "$LOGS/$(basename "$MNT").log"
    get_direct own.txt "$TEST_TMP/l.out"
    check_eq "$CLOUD: own.txt: the other machine's version stays" "two!" "$(cat "$TEST_TMP/l.out")"
    local copy
    copy=$(ls "$MNT/$CLOUD" | grep '^own\.conflict-' | head -n 1)
    check "$CLOUD: own.txt: this machine's is kept beside it ($copy)" \
        test -n "$copy" -a "$(cat "$MNT/$CLOUD/$copy" 2>/dev/null)" = "one!"
}

# scenario_rename_pending: a new file whose upload at close the server
# refused (the close fails; the journal keeps it) is renamed over a file
# the cloud holds, as an editor saves: the rename succeeds in the cache and
# the upload goes up under the new name, replacing that file.
scenario_rename_pending() {
    printf 'old target\n' >"$TEST_TMP/t.src"
    put_direct target.txt "$TEST_TMP/t.src" || die "cannot store target.txt"
    check "$CLOUD: target.txt shows" wait_until 10 test -f "$MNT/$CLOUD/target.txt"
    rules "status:403 PUT new.txt all"
    check_eq "$CLOUD: a new file whose upload the server refuses: its close fails" \
        failed "$(write_closes "$MNT/$CLOUD/new.txt" "saved!")"
    check "$CLOUD: ...and the upload at its release" wait_until 30 grep -q \
        "upload at close failed.*PUT new.txt" "$LOGS/$(basename "$MNT").log"
    rules
    check "$CLOUD: renamed over a file on the cloud, its upload still pending: rename works" \
        mv "$MNT/$CLOUD/new.txt" "$MNT/$CLOUD/target.txt"
    check_eq "$CLOUD: ...the file shows the new content" "saved!" \
        "$(cat "$MNT/$CLOUD/target.txt")"
    get_direct target.txt "$TEST_TMP/t.out"
    check_eq "$CLOUD: ...the server's target.txt holds it" "saved!" "$(cat "$TEST_TMP/t.out")"
    check_fails "$CLOUD: ...new.txt is not on the server" get_direct new.txt "$TEST_TMP/t.out"
    check_eq "$CLOUD: ...and no conflict copy was made" "" \
        "$(ls "$MNT/$CLOUD" | grep '^target\.conflict-')"
}

# scenario_pending_news: a file on the cloud rewritten here, longer, whose
# upload the server refuses (the close fails; the journal keeps it): past
# the ttl its stat asks the server, which still holds the older, shorter
# version, and must not take its size: stat and a read show this
# machine's bytes, also after a kill -9 and a new mount (whose journal
# retries are refused too).  Once the server takes uploads again the
# journal's retry stores them.
scenario_pending_news() {
    local text="a longer version of the file"
    printf 'short\n' >"$TEST_TMP/n.src"
    put_direct news.txt "$TEST_TMP/n.src" || die "cannot store news.txt"
    check "$CLOUD: news.txt shows" wait_until 10 test -f "$MNT/$CLOUD/news.txt"
    rules "status:403 PUT news.txt all"
    check_eq "$CLOUD: news.txt rewritten longer, its upload refused: the close fails" \
        failed "$(write_closes "$MNT/$CLOUD/news.txt" "$text")"
    check "$CLOUD: ...and the upload at its release" wait_until 30 grep -q \
        "upload at close failed.*PUT news.txt" "$LOGS/$(basename "$MNT").log"
    local mark
    mark=$(wc -l <"$FAULTS/log")
    sleep 1.2                   # past the ttl: the next stat asks the server
    check_eq "$CLOUD: ...past the ttl its stat shows this machine's size" "${#text}" \
        "$(stat -c %s "$MNT/$CLOUD/news.txt")"
    # (a HEAD of it on S3; on Azure, whose listings carry every attribute,
    # a listing of its stale folder)
    check "$CLOUD: ...(the server was asked)" bash -c \
        "tail -n +$((mark + 1)) '$FAULTS/log' | grep -qE '^(HEAD [^ ]*news\.txt|GET [^ ]*comp=list)'"
    check_eq "$CLOUD: ...and a read this machine's bytes" "$text" "$(cat "$MNT/$CLOUD/news.txt")"
    # the same after a crash, while the server still refuses the upload
    local daemon
    daemon=$(daemon_pids "$MNT")
    check "$CLOUD: the daemon is running" test -n "$daemon"
    # shellcheck disable=SC2086 # one argument per pid
    kill -9 $daemon
    fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    mount_skyfs "$TEST_TMP/skyfs.conf" "$MNT" || die "cannot mount again after kill -9"
    check "$CLOUD: ...after a kill -9, the journal's retry is refused again" wait_until 30 \
        grep -q "journal: upload of \"news.txt\" to cloud '$CLOUD' failed" \
        "$LOGS/$(basename "$MNT").log"
    sleep 1.2                   # past the ttl
    check_eq "$CLOUD: ...and past the ttl its stat still shows this machine's size" \
        "${#text}" "$(stat -c %s "$MNT/$CLOUD/news.txt")"
    check_eq "$CLOUD: ...and a read its bytes" "$text" "$(cat "$MNT/$CLOUD/news.txt")"
    rules
    check "$CLOUD: ...the journal's retry stores them on the server" wait_until 30 \
        server_holds news.txt "$text"
}

# server_holds NAME TEXT: object NAME, fetched straight from the server,
# holds TEXT
server_holds() {
    get_direct "$1" "$TEST_TMP/held.out" && [ "$(cat "$TEST_TMP/held.out")" = "$2" ]
}

# --- item 9: a server that accepts and never answers --------------------
# scenario_hang SLOW_CLOUD: SLOW_CLOUD has timeout = 1s, retries = 5 and
# every request of it names "hangzone".
scenario_hang() {
    rules "hang * hangzone all"
    local got
    got=$(errno_of listdir "$MNT/$1")
    check "$1: listing a cloud whose server never answers fails ($got)" test "$got" != ok
    check "$1: the proxy got requests for it" test "$(seen '[A-Z]*' hangzone)" -ge 2
    # an attempt's retry asks for the same path and query: a stalled
    # request is tried at most twice (once more, not `retries` more), and
    # one was retried (a request sent once is one the mount stopped asking
    # when it found the cloud down: on a busy machine that can come first)
    local counts
    counts=$(grep ' hang$' "$FAULTS/log" | grep hangzone | sort | uniq -c | awk '{print $1}' |
             sort -un | tr '\n' ' ')
    check_eq "$1: each stalled request was tried at most twice, not 1 + retries times" \
        2 "$(echo "$counts" | tr ' ' '\n' | sort -n | tail -n 1)"
    rules
}

# --- a body damaged on the way (plain HTTP: no TLS to catch it) --------
# scenario_damaged_bodies PART_PATTERN: the proxy damages the body of one
# PUT of a new file, and of the first part (block) of a 20 MiB file whose
# request's query holds PART_PATTERN.  Azurite verifies Content-MD5 and
# refuses (Md5Mismatch); s3rver stores what it gets (it does not verify the
# header, as S3 does) and skyfs finds the ETag it answers, the MD5 of what
# it stored, is not the MD5 of what was sent.  Either way the body is sent
# again, and the server holds the bytes written.
scenario_damaged_bodies() {
    local part=$1
    head -c $((1 << 20)) /dev/urandom >"$TEST_TMP/d.src"
    head -c $((20 << 20)) /dev/urandom >"$TEST_TMP/dbig.src"
    rules "flip PUT damaged-one.bin 1" "flip PUT $part 1"
    check "$CLOUD: a file whose PUT the proxy damages is written" \
        cp "$TEST_TMP/d.src" "$MNT/$CLOUD/damaged-one.bin"
    check "$CLOUD: the proxy did damage its PUT" \
        test "$(grep -c 'damaged-one.bin flip$' "$FAULTS/log")" -eq 1
    check_eq "$CLOUD: and it was sent again" 2 "$(seen PUT 'damaged-one.bin ')"
    check "$CLOUD: the server holds the bytes written" eval \
        "get_direct damaged-one.bin '$TEST_TMP/d.out' && cmp '$TEST_TMP/d.src' '$TEST_TMP/d.out'"
    check "$CLOUD: the log says what happened" \
        grep -q "damaged-one.bin: the server [a-z]* other bytes than were sent" \
        "$LOGS/$(basename "$MNT").log"
    check "$CLOUD: a 20 MiB file one of whose parts the proxy damages is written" \
        cp "$TEST_TMP/dbig.src" "$MNT/$CLOUD/damaged-big.bin"
    check "$CLOUD: the proxy did damage one part" \
        test "$(grep -c "damaged-big.bin?[^ ]*$part.* flip\$" "$FAULTS/log")" -eq 1
    check "$CLOUD: the server holds the bytes written" eval \
        "get_direct damaged-big.bin '$TEST_TMP/d.out' && cmp '$TEST_TMP/dbig.src' '$TEST_TMP/d.out'"
    check_eq "$CLOUD: both read back through the mount" "2" \
        "$(cmp "$TEST_TMP/d.src" "$MNT/$CLOUD/damaged-one.bin" &&
           cmp "$TEST_TMP/dbig.src" "$MNT/$CLOUD/damaged-big.bin" && echo 2)"
    rules
}

# scenario_damaged_downloads: the proxy damages the answers to GETs of
# objects put on the server behind the mount's back (never cached): once
# (the mount asks again and serves the right bytes), and every time (EIO
# after three tries: no wrong byte is served, none is kept); undamaged
# again, the file reads right.  S3 (s3rver): the sum of a whole object is
# compared with its ETag, the MD5 of a single PUT; Azure (Azurite): the
# sum of the range with the MD5 the server sends (x-ms-range-get-content-md5).
scenario_damaged_downloads() {
    local log
    log="$LOGS/$(basename "$MNT").log"
    head -c 300000 /dev/urandom >"$TEST_TMP/dl1.src"
    head -c 300000 /dev/urandom >"$TEST_TMP/dl2.src"
    put_direct dl-once.bin "$TEST_TMP/dl1.src" || die "cannot put dl-once.bin"
    put_direct dl-always.bin "$TEST_TMP/dl2.src" || die "cannot put dl-always.bin"
    sleep 1.2                   # past the ttl of the listing the mount holds
    rules "flipanswer GET faults/dl-once.bin 1" "flipanswer GET faults/dl-always.bin all"
    check "$CLOUD: a file whose download the proxy damages once reads right" \
        cmp "$TEST_TMP/dl1.src" "$MNT/$CLOUD/dl-once.bin"
    check_eq "$CLOUD: the proxy did damage it once" 1 "$(grep -c 'dl-once.bin flipanswer$' "$FAULTS/log")"
    check_eq "$CLOUD: and it was asked again" 2 "$(seen GET 'dl-once.bin ')"
    check "$CLOUD: the log says what happened" grep -q \
        "GET dl-once.bin: the bytes that arrived are not those the server" "$log"
    cat "$MNT/$CLOUD/dl-always.bin" >/dev/null 2>"$TEST_TMP/dl2.err"
    check "$CLOUD: a file whose every download is damaged is not read (EIO)" \
        grep -q 'Input/output error' "$TEST_TMP/dl2.err"
    check "$CLOUD: the log says why" grep -q "GET dl-always.bin: the bytes arrived damaged 3 times" "$log"
    rules
    check "$CLOUD: undamaged, it reads right (nothing wrong was kept)" \
        cmp "$TEST_TMP/dl2.src" "$MNT/$CLOUD/dl-always.bin"
}
