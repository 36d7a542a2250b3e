#!/usr/bin/env bash
# s3_stat_hints.sh - a name the cache cannot answer for is asked about the
# way the cache expects it to be (driver.h, enum sky_stat_hint), on s3rver
# behind fault_proxy.py:
#   - a folder the cache holds, past its ttl, is asked about as a folder
#     (the LIST of one key and the HEAD of its marker), never as an object;
#   - a name its folder's stale listing lacks (a name about to be made) is
#     asked about as an object and as a folder at once: the proxy holds the
#     object's HEAD until the folder's LIST has come (`await`), and logs
#     that it came while the HEAD was held;
#   - a file the cache holds is asked about with one HEAD;
#   - a rename asks about its source and its target at once, and a chmod
#     of a folder asks about the folder's marker, not an object of its name;
#   - what the cache expected may be wrong: a folder replaced on the
#     server by a file, a file replaced by a folder, and a name made by
#     another client show what the server holds.
# Each name checked is alone in its folder: a stale folder of two names or
# more is listed again instead (ops.c, lookup_relist), which asks nothing
# about the name itself.
. "$(dirname "$0")/lib.sh"

S3_PORT=$(free_port)
PROXY_PORT=$(free_port)
FAULTS="$TEST_TMP/faults"
MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
B=hints
mkdir -p "$FAULTS"
start_s3rver "$TEST_TMP/s3rver" "$S3_PORT" --configure-bucket $B || die "cannot start s3rver"
start_fault_proxy "$PROXY_PORT" "$S3_PORT" || die "cannot start fault_proxy.py"
BUCKET_URL="http://127.0.0.1:$S3_PORT/$B"

put_direct() { printf '%s' "$2" | s3curl -T - "$BUCKET_URL/$1" -o /dev/null; }
del_direct() { s3curl -X DELETE "$BUCKET_URL/$1" -o /dev/null; }

mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" $B)
ttl = 1s
negative_ttl = 1s
index = off
list_ahead = 0
open_ahead = 0
EOF
)

put_direct d/ ""
put_direct d/a "a file"
put_direct solo/sub/leaf "a leaf"
put_direct wasdir/x/inside "soon gone"
put_direct wasfile/y "soon a folder"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
check "the folder lists its file" test "$(ls "$MNT/s3/d")" = a
check "a leaf three folders down reads" test "$(cat "$MNT/s3/solo/sub/leaf")" = "a leaf"
check "x is a folder" test -d "$MNT/s3/wasdir/x"
check "y is a file" test -f "$MNT/s3/wasfile/y"

mark() { wc -l <"$FAULTS/log"; }
# asked NAME MARK: the requests since MARK whose path or query names NAME
asked() { tail -n +$(($2 + 1)) "$FAULTS/log" | grep -F -- "$1" || true; }
past_ttl() { sleep 1.3; }

# A folder the cache holds: asked as a folder.
past_ttl
m=$(mark)
check "the folder is still a folder past its ttl" test -d "$MNT/s3/solo/sub"
check_eq "it was asked about as a folder: the LIST of one key under it and the HEAD of its marker" \
    "GET /$B?list-type=2&encoding-type=url&max-keys=1&prefix=solo%2Fsub%2F pass
HEAD /$B/solo/sub/ pass" "$(asked sub "$m" | sort)"

# A file the cache holds: one HEAD.
past_ttl
m=$(mark)
check "the file is still a file past its ttl" test -f "$MNT/s3/solo/sub/leaf"
check_eq "it was asked about with one HEAD" "HEAD /$B/solo/sub/leaf pass" "$(asked leaf "$m")"

# A new name: the object and the folder at once.
past_ttl
echo "await:prefix=d%2Fnew%2F HEAD /$B/d/new 1" >"$FAULTS/rules"
m=$(mark)
check "a name about to be made is not there" test ! -e "$MNT/s3/d/new"
check "its HEAD was held until the folder's LIST came: asked at once" \
    bash -c "tail -n +$((m + 1)) '$FAULTS/log' | grep -qx 'await prefix=d%2Fnew%2F: met'"
check "the marker's HEAD went out too" bash -c "tail -n +$((m + 1)) '$FAULTS/log' | grep -q '^HEAD /$B/d/new/ '"
: >"$FAULTS/rules"
check "a file made there through the mount reads back" \
    bash -c "echo made >'$MNT/s3/d/new' && test \"\$(cat '$MNT/s3/d/new')\" = made"

# The cache's guess was wrong: the server holds something else.
put_direct d/other "another client's file"
past_ttl
check "a name another client made shows (asked as new)" \
    test "$(cat "$MNT/s3/d/other")" = "another client's file"
del_direct wasdir/x/inside
put_direct wasdir/x "now a file"
past_ttl
check "a folder the server replaced by a file is a file" test -f "$MNT/s3/wasdir/x"
check "with the file's bytes" test "$(cat "$MNT/s3/wasdir/x")" = "now a file"
del_direct wasfile/y
put_direct wasfile/y/inside "a file in the new folder"
past_ttl
check "a file the server replaced by a folder is a folder" test -d "$MNT/s3/wasfile/y"
check "with its file" test "$(cat "$MNT/s3/wasfile/y/inside")" = "a file in the new folder"
past_ttl
check_fails "a name nothing holds is not there" stat "$MNT/s3/d/nothing"

# A rename asks what the source is and what holds the target at once
# (the folder freshly listed: the lookups ask nothing).
echo moved >"$MNT/s3/d/tmp.1"
ls "$MNT/s3/d" >/dev/null
echo "await:/$B/d/final/ HEAD /$B/d/tmp.1 1" >"$FAULTS/rules"
m=$(mark)
check "a file renamed to a new name" mv "$MNT/s3/d/tmp.1" "$MNT/s3/d/final"
check "the source's HEAD was held until the target's questions came: asked at once" \
    bash -c "tail -n +$((m + 1)) '$FAULTS/log' | grep -qx 'await /$B/d/final/: met'"
: >"$FAULTS/rules"
check_eq "the server holds the renamed file" moved "$(s3curl "$BUCKET_URL/d/final")"
check "and not the old name" bash -c "! s3curl -I '$BUCKET_URL/d/tmp.1' >/dev/null 2>&1"

# A chmod of a folder the cache holds edits its marker, asked first; a
# folder without a marker gets one.
m=$(mark)
check "chmod of a folder with a marker" chmod 0700 "$MNT/s3/d"
check_eq "its marker holds the mode (S_IFDIR|0700)" 16832 \
    "$(s3curl -I "$BUCKET_URL/d/" | header_of x-amz-meta-mode)"
check "the marker was asked about, not an object of the folder's name" \
    bash -c "! tail -n +$((m + 1)) '$FAULTS/log' | grep -q '^HEAD /$B/d '"
check "chmod of a folder without a marker" chmod 0750 "$MNT/s3/solo/sub"
check_eq "it has a marker now, with the mode (S_IFDIR|0750)" 16872 \
    "$(s3curl -I "$BUCKET_URL/solo/sub/" | header_of x-amz-meta-mode)"

unmount_skyfs "$MNT"
check "no request waited out the proxy's hold" bash -c "! grep -q ': timeout' '$FAULTS/log'"
