#!/usr/bin/env bash
# writeback_lazy.sh - write_back = async that sends one upload per file:
# deferred create, attributes carried by the queued upload, the settle
# delay (write_back_delay), on S3 (s3rver) and Azure (Azurite).
#
# Each server sits behind listing_proxy.py, which logs every request
# skyfs sends (METHOD PATH), so the checks count requests.  The clouds
# have write_back_delay = 5s, so that load cannot split a file's close
# and its chmod/utime into two uploads.  What the cloud holds is judged by
# a second mount with an empty cache, straight to the servers.
#   - tar -x of a small tree: after unmount (which waits) the cloud holds
#     every file with its bytes, mode and mtime, sent by exactly one PUT
#     per file;
#   - a file created, written, chmod'ed, setxattr'ed and renamed while
#     held open: nothing reaches the cloud under its old name; the new
#     name arrives with the mode and the xattr; one removed while held
#     open: nothing at all is sent for it;
#   - setxattr with XATTR_CREATE / XATTR_REPLACE and removexattr of a
#     missing name on a file not uploaded yet: EEXIST / ENODATA answered
#     from the cache, and the upload carries the final set;
#   - a relisting (ttl expiry) of a folder while a file in it is not
#     uploaded yet keeps the file visible (and nothing was sent for it);
#   - a file on the cloud appended, chmod'ed and utime'd here: past the
#     ttl its stat, its folder's listing and a read show the changes,
#     not the cloud's older version, and the upload carries them;
#   - folders made here (deferred mkdir): nothing sent at mkdir, chmod,
#     rmdir or rename of them, nor for lookups in them; after unmount a
#     folder's marker went up before the file in it, the cloud holds them
#     with their modes (an empty one too), and nothing was ever sent for
#     the ones removed or renamed away;
#   - kill -9 right after new files and folders are made (within the
#     delay): they had not reached the cloud; the next mount uploads them,
#     a small file whose cached data was lost (as a power cut may lose it)
#     from the journal's copy of its bytes.
. "$(dirname "$0")/lib.sh"

S3_PORT=$(free_port)
S3_PROXY=$(free_port)
AZ_PORT=$(free_port)
AZ_PROXY=$(free_port)
S3_LOG="$LOGS/s3-requests.log"
AZ_LOG="$LOGS/az-requests.log"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
CHECK_MNT="$TEST_TMP/check"
SRC="$TEST_TMP/src"
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"

start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket lazy || die "cannot start s3rver"
start_azurite "$TEST_TMP/azurite" "$AZ_PORT" || die "cannot start Azurite"
curl -sf -X PUT "http://127.0.0.1:$AZ_PORT/$AZURITE_ACCOUNT/lazy?restype=container&$(azurite_sas)" \
    >/dev/null || die "cannot create the Azure container"
: >"$TEST_TMP/no-fragments"
for p in "s3 $S3_PROXY $S3_PORT $S3_LOG" "azure $AZ_PROXY $AZ_PORT $AZ_LOG"; do
    # shellcheck disable=SC2086 # kind, ports and log: one word each
    set -- $p
    : >"$4"
    _start_server "listing_proxy-$1" "$2" "http://127.0.0.1:$2/" \
        "$PYTHON" "$SKY_ROOT/tests/integration/listing_proxy.py" "$2" "$3" "$1" \
        "$TEST_TMP/no-fragments" "$4" || die "cannot start listing_proxy.py for $1"
done

# write_conf CONFIG CACHE S3_PORT AZ_PORT TTL [LINES FOR BOTH CLOUDS]
write_conf() {
    mkdir -p "$2"
    (umask 077 && cat >"$1" <<EOF
[cache]
dir = $2

$(s3rver_cloud s3 "http://127.0.0.1:$3" lazy)
ttl = $5
${6:-}

[az]
type = azure
endpoint = http://127.0.0.1:$4/$AZURITE_ACCOUNT
account = $AZURITE_ACCOUNT
key = $AZURITE_KEY
container = lazy
ttl = $5
${6:-}
EOF
    )
}
ASYNC='write_back = async
write_back_delay = 5s'
write_conf "$CONF" "$TEST_TMP/cache" "$S3_PROXY" "$AZ_PROXY" 1s "$ASYNC"

log_of() { if [ "$1" = s3 ]; then echo "$S3_LOG"; else echo "$AZ_LOG"; fi; }
# puts CLOUD KEY: PUT requests sent for object KEY (any query: copies,
# metadata edits, blocks)
puts() { grep -cE "^PUT (/[^ /]+)?/lazy/$2(\?|$)" "$(log_of "$1")"; }
# writes_for CLOUD KEY: requests that change object KEY (a lookup of a
# new name, HEAD or GET, is no change)
writes_for() { grep -cE "^(PUT|POST|DELETE|PATCH) (/[^ /]+)?/lazy/$2(\?|$)" "$(log_of "$1")"; }

# check_mount N: mount the clouds with a fresh cache, straight to the
# servers, at $CHECK_MNT (the cloud's own view; ttl 0: every stat asks
# the object itself, as an S3 listing carries no mode)
check_mount() {
    write_conf "$TEST_TMP/check$1.conf" "$TEST_TMP/check-cache$1" "$S3_PORT" "$AZ_PORT" 0
    mount_skyfs "$TEST_TMP/check$1.conf" "$CHECK_MNT"
}

# ---- a small tree, archived with modes and mtimes of its own -------------
mkdir -p "$SRC/tree/sub/deeper"
i=0
for f in a.txt b.sh sub/c.bin sub/d sub/deeper/e.conf sub/deeper/f empty; do
    i=$((i + 1))
    if [ "$f" = empty ]; then : >"$SRC/tree/$f"; else head -c $((i * 3001)) /dev/urandom >"$SRC/tree/$f"; fi
done
chmod 755 "$SRC/tree/b.sh"; chmod 600 "$SRC/tree/sub/d"; chmod 640 "$SRC/tree/sub/deeper/e.conf"
chmod 444 "$SRC/tree/sub/deeper/f"
touch -d '2021-03-04 05:06:07' "$SRC/tree/a.txt" "$SRC/tree/sub/d"
touch -d '2019-11-12 13:14:15' "$SRC/tree/sub/deeper/f" "$SRC/tree/empty"
FILES=$(cd "$SRC" && find tree -type f | sort)
NFILES=$(echo "$FILES" | wc -l)
tar -C "$SRC" -cf "$TEST_TMP/tree.tar" tree || die "cannot archive the tree"

mount_skyfs "$CONF" "$MNT" || die "cannot mount"
for cloud in s3 az; do
    check "$cloud: tar -x returns 0" tar -C "$MNT/$cloud" -xpf "$TEST_TMP/tree.tar"
done

# ---- changes of a file held open, before its upload ----------------------
echo "held open" >"$SRC/held"
for cloud in s3 az; do
    M=$MNT/$cloud
    check "$cloud: create, write, chmod, setxattr, rename while held open" bash -c "
        exec 3>'$M/old-name' && cat '$SRC/held' >&3 &&
        chmod 640 '$M/old-name' && setfattr -n user.colour -v blue '$M/old-name' &&
        mv '$M/old-name' '$M/new-name' && exec 3>&-"
    check "$cloud: create, write, chmod, setxattr, remove while held open" bash -c "
        exec 3>'$M/doomed' && echo bye >&3 && chmod 600 '$M/doomed' &&
        setfattr -n user.x -v y '$M/doomed' && rm '$M/doomed' && exec 3>&-"
    check_eq "$cloud: the new name shows the mode at once" 640 "$(stat -c %a "$M/new-name")"
done

# ---- xattr flags on a file not uploaded yet ------------------------------
for cloud in s3 az; do
    check_eq "$cloud: XATTR_CREATE / XATTR_REPLACE / remove answered from the cache" \
        "ok EEXIST ENODATA ENODATA ok ok ok 3" "$(
        "$PYTHON" - "$MNT/$cloud/xa" <<'PY'
import errno, os, sys
p = sys.argv[1]
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)   # held open throughout
os.write(fd, b"xattr flags\n")
def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
out = [attempt(lambda: os.setxattr(p, "user.a", b"1", os.XATTR_CREATE)),
       attempt(lambda: os.setxattr(p, "user.a", b"2", os.XATTR_CREATE)),
       attempt(lambda: os.setxattr(p, "user.b", b"2", os.XATTR_REPLACE)),
       attempt(lambda: os.removexattr(p, "user.none")),
       attempt(lambda: os.setxattr(p, "user.a", b"3", os.XATTR_REPLACE)),
       attempt(lambda: os.setxattr(p, "user.gone", b"x")),
       attempt(lambda: os.removexattr(p, "user.gone")),
       os.getxattr(p, "user.a").decode()]
os.close(fd)
print(" ".join(out))
PY
    )"
done

# ---- a relisting while a file is not uploaded yet ------------------------
for cloud in s3 az; do
    M=$MNT/$cloud
    # (a new folder waits for what goes in it: a file fsynced, which means
    # "on the cloud", takes it there first)
    mkdir "$M/fresh" && "$PYTHON" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644); os.write(fd, b"seed\n")
os.fsync(fd); os.close(fd)' "$M/fresh/seed" && ls "$M/fresh" >/dev/null
    exec 3>"$M/fresh/pending"
    echo pending >&3
    lists=$(grep -c "^GET .*prefix=fresh" "$(log_of "$cloud")")
    sleep 2     # past the ttl (1s): the next ls lists the folder again
    check_eq "$cloud: after the ttl a relisting keeps the file not uploaded yet" "pending seed" \
        "$(ls "$M/fresh" | tr '\n' ' ' | sed 's/ $//')"
    check "$cloud: (the folder was listed again from the cloud)" \
        test "$(grep -c "^GET .*prefix=fresh" "$(log_of "$cloud")")" -gt "$lists"
    check_eq "$cloud: and nothing was sent for the file yet" 0 "$(writes_for "$cloud" fresh/pending)"
    exec 3>&-
done

# ---- a file on the cloud changed here: its older version changes nothing --
# An append, chmod and utime of a file the cloud holds wait for one upload;
# past the ttl its stat and its folder's listing ask the cloud, whose
# older version must not undo them (nor the upload carry the old mode).
touch -d '2020-01-02 03:04:05' "$SRC/kept-times"
for cloud in s3 az; do
    M=$MNT/$cloud
    "$PYTHON" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644); os.write(fd, b"first\n")
os.fsync(fd); os.close(fd)' "$M/edited"
    check "$cloud: append, chmod and utime of a file on the cloud" bash -c "
        echo second >>'$M/edited' && chmod 600 '$M/edited' &&
        touch -m -r '$SRC/kept-times' '$M/edited'"
    sleep 1.2   # past the ttl (1s)
    check_eq "$cloud: after the ttl its stat shows the changes, not the cloud's version" \
        "13 600 $(stat -c %Y "$SRC/kept-times")" "$(stat -c '%s %a %Y' "$M/edited")"
    sleep 1.2
    check_eq "$cloud: so does its folder's listing" "-rw------- 13" \
        "$(ls -l "$M" | awk '$NF == "edited" { print $1, $5 }')"
    check "$cloud: and a read" bash -c "printf 'first\nsecond\n' | cmp -s - '$M/edited'"
    sleep 1.2
    check_eq "$cloud: and a stat after the read" "13 600" "$(stat -c '%s %a' "$M/edited")"
done

# ---- folders made here: deferred, like files -----------------------------
# On a write_back = async cloud a mkdir is answered from the cache; the
# folder goes up before what goes in it, or (empty) after the delay; one
# removed or renamed before that sends nothing at all.
DIRS_RE='(dnew|dgone|dold|dmoved|dempty|dtree)'
for cloud in s3 az; do
    M=$MNT/$cloud
    check "$cloud: mkdir, chmod, a file in it, rmdir and mv of new folders" bash -c "
        mkdir '$M/dnew' '$M/dgone' '$M/dold' '$M/dempty' && mkdir -p '$M/dtree/a/b' &&
        chmod 750 '$M/dnew' && chmod 705 '$M/dempty' && echo inside >'$M/dnew/f' &&
        echo deep >'$M/dtree/a/b/g' && rmdir '$M/dgone' && mv '$M/dold' '$M/dmoved'"
    check_eq "$cloud: none of it was sent yet" 0 \
        "$(grep -cE "^(PUT|POST|DELETE|PATCH) (/[^ /]+)?/lazy/$DIRS_RE" "$(log_of "$cloud")")"
    check_eq "$cloud: nor asked: lookups in a new folder come from the cache" 0 \
        "$(grep -cE "dnew(/|%2F)f|dtree(/|%2F)a(/|%2F)" "$(log_of "$cloud")")"
    check_eq "$cloud: the new folders as made" "750 f 705 dmoved" \
        "$(stat -c %a "$M/dnew") $(ls "$M/dnew") $(stat -c %a "$M/dempty") $(ls -d "$M/dmoved" | xargs basename)"
    check "$cloud: the removed one is gone" bash -c "! test -e '$M/dgone'"
    # folders not created yet (write_back_delay is 5 s): this cloud's
    # dnew, dempty, dmoved, dtree... (not counted exactly: under load some
    # may have gone up already)
    check "$cloud: skyfs status counts the folders still to create" bash -c \
        "'$SKYFS' status -c '$CONF' | grep -E ' [1-9][0-9]* folder\(s\) and symlink\(s\) to create'"
done

unmount_skyfs "$MNT"
check "after the unmount, no folder is left to create" bash -c \
    "'$SKYFS' status -c '$CONF' | grep ' 0 folder(s) and symlink(s) to create'"
check_eq "status --json says so too" 0 \
    "$("$SKYFS" status -c "$CONF" --json | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["cache"]["pending_creates"])')"

# ---- what reached the clouds ---------------------------------------------
for cloud in s3 az; do
    bad=
    for f in $FILES; do
        n=$(puts "$cloud" "$f")
        [ "$n" = 1 ] || bad="$bad $f:$n"
    done
    check_eq "$cloud: exactly one PUT for each of the $NFILES extracted files" "" "$bad"
    check_eq "$cloud: one PUT for the renamed file" 1 "$(puts "$cloud" new-name)"
    check_eq "$cloud: nothing sent under its old name" 0 "$(writes_for "$cloud" old-name)"
    check_eq "$cloud: nothing sent for the file removed before its upload" 0 \
        "$(writes_for "$cloud" doomed)"
    check_eq "$cloud: one PUT for the file whose xattrs changed" 1 "$(puts "$cloud" xa)"
    check_eq "$cloud: nothing ever sent for the folders removed or renamed before their upload" \
        0 "$(grep -cE "^(PUT|POST|DELETE|PATCH) (/[^ /]+)?/lazy/(dgone|dold)" "$(log_of "$cloud")")"
    log=$(log_of "$cloud")
    marker=$(grep -nE "^PUT (/[^ /]+)?/lazy/dnew/?(\?|$)" "$log" | head -1 | cut -d: -f1)
    file=$(grep -nE "^PUT (/[^ /]+)?/lazy/dnew/f(\?|$)" "$log" | head -1 | cut -d: -f1)
    check "$cloud: a new folder went up before the file in it (lines ${marker:-none} < ${file:-none})" \
        test "${marker:-999999}" -lt "${file:-0}"
    # dtree/a and dtree/a/b: made here, nothing asked about them since
    # (lookups in a new folder come from the cache); their create is
    # their marker alone, no head or listing first
    check_eq "$cloud: a folder made here costs one request: its marker" 2 \
        "$(grep -cE "/lazy/dtree/a(/b)?/?(\?|$)|prefix=dtree(/|%2F)a((/|%2F)b)?(/|%2F)(&|$)" "$log")"
done

check_mount 1 || die "cannot mount the check view"
for cloud in s3 az; do
    C=$CHECK_MNT/$cloud
    bad=
    for f in $FILES; do
        cmp -s "$SRC/$f" "$C/$f" || bad="$bad $f(bytes)"
        [ "$(stat -c '%a %Y' "$SRC/$f")" = "$(stat -c '%a %Y' "$C/$f" 2>&1)" ] ||
            bad="$bad $f($(stat -c '%a %Y' "$C/$f" 2>&1) want $(stat -c '%a %Y' "$SRC/$f"))"
    done
    check_eq "$cloud: the cloud holds every file with its bytes, mode and mtime" "" "$bad"
    check "$cloud: the renamed file's bytes" cmp "$SRC/held" "$C/new-name"
    check_eq "$cloud: its mode" 640 "$(stat -c %a "$C/new-name")"
    check_eq "$cloud: its xattr" blue "$(getfattr --absolute-names --only-values -n user.colour "$C/new-name" 2>&1)"
    check "$cloud: the old name and the removed file are not there" \
        bash -c "! test -e '$C/old-name' && ! test -e '$C/doomed'"
    check_eq "$cloud: the xattrs the upload carried" "user.a=3" "$(
        "$PYTHON" -c 'import os, sys; p = sys.argv[1]
print(" ".join(sorted(f"{n}={os.getxattr(p, n).decode()}" for n in os.listxattr(p) if not n.startswith("user.skyfs."))))' "$C/xa" 2>&1)"
    check_eq "$cloud: the file changed while on the cloud arrived with its mode and mtime" \
        "13 600 $(stat -c %Y "$SRC/kept-times")" "$(stat -c '%s %a %Y' "$C/edited" 2>&1)"
    check "$cloud: the file listed during the relisting arrived" \
        bash -c "echo pending | cmp -s - '$C/fresh/pending'"
    check_eq "$cloud: the new folders arrived with their modes and files" \
        "750 inside 705 deep dmoved" \
        "$(stat -c %a "$C/dnew" 2>&1) $(cat "$C/dnew/f" 2>&1) $(stat -c %a "$C/dempty" 2>&1) $(
           cat "$C/dtree/a/b/g" 2>&1) $(ls -d "$C/dmoved" 2>&1 | xargs basename)"
    check "$cloud: the removed and the renamed-away folders are not there" \
        bash -c "! test -e '$C/dgone' && ! test -e '$C/dold'"
done
unmount_skyfs "$CHECK_MNT"

# ---- kill -9 right after close, within the settle delay -----------------
mount_skyfs "$CONF" "$MNT" || die "cannot remount"
for cloud in s3 az; do
    for i in 1 2 3; do
        head -c $((20000 + i)) /dev/urandom >"$SRC/k$cloud$i"
    done
done
daemon=$(daemon_pids "$MNT")
check "the daemon is running" test -n "$daemon"
for cloud in s3 az; do
    for i in 1 2 3; do cp "$SRC/k$cloud$i" "$MNT/$cloud/k$i"; done
    mkdir "$MNT/$cloud/kdir" "$MNT/$cloud/kempty" && cp "$SRC/k${cloud}1" "$MNT/$cloud/kdir/f"
done
# shellcheck disable=SC2086 # one argument per pid
kill -9 $daemon
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
for cloud in s3 az; do
    check_eq "$cloud: killed within the delay: nothing was sent for the new files" 0 \
        "$(( $(writes_for "$cloud" k1) + $(writes_for "$cloud" k2) + $(writes_for "$cloud" k3) ))"
    check_eq "$cloud: nor for the new folders" 0 \
        "$(grep -cE "^(PUT|POST|DELETE|PATCH) (/[^ /]+)?/lazy/k(dir|empty)" "$(log_of "$cloud")")"
done
# A power cut may also lose what the page cache held of a file's cached
# data (never synced: a small file's close syncs only the journal, which
# holds a copy of its bytes): k2's cached data is emptied here, and the
# journal's copy must stand in for it.
for cloud in s3 az; do
    data=$("$PYTHON" - "$TEST_TMP/cache" "$cloud" <<'PY'
import glob, os, sqlite3, sys
db = glob.glob(os.path.join(sys.argv[1], "**", "blocks.db"), recursive=True)[0]
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
row = con.execute("SELECT id FROM objects WHERE cloud=? AND path='k2' AND dirty=1",
                  (sys.argv[2],)).fetchone()
print(os.path.join(os.path.dirname(db), "data", str(row[0])) if row else "")
PY
    )
    check "$cloud: k2 is pending in the journal, its cached data at hand" test -s "$data"
    [ -n "$data" ] && : >"$data"
done
mount_skyfs "$CONF" "$MNT" || die "cannot mount after kill -9"
unmount_skyfs "$MNT"    # waits for the uploads the journal replays
check_mount 2 || die "cannot mount the second check view"
for cloud in s3 az; do
    bad=
    for i in 1 2 3; do cmp -s "$SRC/k$cloud$i" "$CHECK_MNT/$cloud/k$i" || bad="$bad k$i"; done
    check_eq "$cloud: the next mount uploaded every file closed before the kill" "" "$bad"
    check "$cloud: and the new folders, the file in one of them too" bash -c "
        cmp -s '$SRC/k${cloud}1' '$CHECK_MNT/$cloud/kdir/f' && test -d '$CHECK_MNT/$cloud/kempty'"
done
unmount_skyfs "$CHECK_MNT"

