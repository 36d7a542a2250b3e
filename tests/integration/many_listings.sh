#!/usr/bin/env bash
# many_listings.sh - other machines' changes seen without waiting (issue
# 17): a listing older than its ttl is answered at once from the cache
# while one background refresh runs (stale-while-revalidate, with
# `revalidate = async`); `revalidate = sync` (the default) refreshes first,
# so ttl bounds how stale an answer is; a refresh of one cloud held by its server never
# delays another cloud's; an open file keeps reading the version it opened
# and the next open sees the new one.
#
# No crawl (index = off): its listing of the bucket would make the cache
# fresher than the listings these checks expire on purpose.
# s3rver holds the bucket; the cloud [slow] reaches it through
# liveness_proxy.py, which can hold requests ("gate") with no timing in the
# test: what is checked is skyfs's answers, not HTTP.
. "$(dirname "$0")/lib.sh"

MNT="$TEST_TMP/mnt"
start_s3rver_behind liveness shared || die "cannot start s3rver behind liveness_proxy.py"
mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$TEST_TMP/skyfs.conf" <<EOF
[cache]
dir = $TEST_TMP/cache

$(s3rver_cloud slow "http://127.0.0.1:$PROXY_PORT" shared)
prefix = s
ttl = 1s
index = off
revalidate = async

$(s3rver_cloud fast "http://127.0.0.1:$S3_PORT" shared)
prefix = f
ttl = 1s
index = off
revalidate = async

$(s3rver_cloud strict "http://127.0.0.1:$S3_PORT" shared)
prefix = t
ttl = 1s
index = off
revalidate = sync
EOF
)
put() {  # put KEY CONTENT: another machine writes straight to the bucket
    printf '%s' "$2" >"$TEST_TMP/body"
    s3curl -X PUT -T "$TEST_TMP/body" "http://127.0.0.1:$S3_PORT/shared/$1" -o /dev/null
}
for p in s f t; do
    put "$p/a.txt" one || die "cannot put $p/a.txt"
done
mount_skyfs "$TEST_TMP/skyfs.conf" "$MNT" || die "cannot mount"
for c in slow fast strict; do
    check_eq "$c lists" "a.txt" "$(ls "$MNT/$c")"
done
for p in s f t; do
    put "$p/b.txt" two || die "cannot put $p/b.txt"
done
sleep 1.2       # every listing is now older than its ttl

# async: the first answer is the cached listing, the refresh follows
check_eq "an expired listing is answered from the cache at once" "a.txt" "$(ls "$MNT/fast")"
check "and the background refresh brings the other machine's file" \
    wait_until 10 bash -c "ls '$MNT/fast' | grep -qx b.txt"
# sync: ttl bounds the answer
check_eq "revalidate = sync lists the other machine's file at once" "a.txt b.txt" \
    "$(ls "$MNT/strict" | xargs)"

# a held refresh of one cloud delays no other cloud
put f/c.txt three || die "cannot put f/c.txt"
sleep 1.2
echo gate >"$MODE"
(ls "$MNT/slow" >"$TEST_TMP/slow.out" 2>&1; echo $? >"$TEST_TMP/slow.rc") &
check "a listing whose refresh the server holds is answered" \
    wait_until 10 test -s "$TEST_TMP/slow.rc"
check_eq "with the cached entries" "0 a.txt" "$(cat "$TEST_TMP/slow.rc" "$TEST_TMP/slow.out" | xargs)"
check "another cloud's listing refreshes meanwhile" \
    wait_until 10 bash -c "ls '$MNT/fast' | grep -qx c.txt"
echo forward >"$MODE"
check "the held refresh lands once the server answers" \
    wait_until 15 bash -c "ls '$MNT/slow' | grep -qx b.txt"

# an open file keeps its version; the next open sees the new one
put f/v.txt first-version || die "cannot put f/v.txt"
sleep 1.2
check "the new file is listed" wait_until 10 bash -c "ls '$MNT/fast' | grep -qx v.txt"
check_eq "and read" "first-version" "$(cat "$MNT/fast/v.txt")"
"$PYTHON" - "$MNT/fast/v.txt" "$TEST_TMP" >"$LOGS/reader.log" 2>&1 <<'PY' &
import os, sys, time
path, tmp = sys.argv[1:]
with open(path, "rb") as f:
    first = f.read()
    open(tmp + "/read1", "wb").write(first)
    while not os.path.exists(tmp + "/changed"):
        time.sleep(0.05)
    f.seek(0)
    open(tmp + "/read2", "wb").write(f.read())
PY
reader=$!
check "the reader read the file" wait_until 30 test -e "$TEST_TMP/read1"
put f/v.txt second-version-longer || die "cannot replace f/v.txt"
touch "$TEST_TMP/changed"
wait "$reader"
check_eq "an open file keeps reading the version it opened" "first-version" \
    "$(cat "$TEST_TMP/read2")"
check "the next open sees the new version" \
    wait_until 10 bash -c "[ \"\$(cat '$MNT/fast/v.txt')\" = second-version-longer ]"
unmount_skyfs "$MNT"
