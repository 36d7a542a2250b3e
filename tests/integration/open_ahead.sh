#!/usr/bin/env bash
# open_ahead.sh - a reader going through a folder's files in order gets the
# next files fetched ahead (the clouds' open_ahead key).
#
# On s3rver, behind listing_proxy.py (which logs every request): folder
# docs/ holds f01..f20 (5 KiB each, random bytes), big.bin (3 MiB) and a
# subfolder; folder other/ holds g1..g3.  With index = off (no crawl) and a
# fresh cache each time:
#   - open_ahead = 0: reading f01 then f02 sends no GET of f03;
#   - open_ahead = 4: reading f01 then f02 brings f03..f06 into the cache
#     (the proxy sees their GETs before the reader opens them, and
#     skyfs_open_ahead_total counts them); reading them then sends no GET,
#     and every byte read equals the server's; files past the window and
#     big.bin (over 1 MiB) were not asked; going on reading (f03, f04...)
#     moves the window on, each file asked once;
#   - a reader that goes backwards (f10 then f09) or jumps to another
#     folder starts nothing;
#   - a file rewritten on the server after the listing (another ETag) is
#     not fetched ahead: the read asks for the listed version; the reader
#     then gets the new bytes (ttl = 0 on that mount);
#   - `grep -r` and `cat docs/*` give the same bytes as the server.
. "$(dirname "$0")/lib.sh"

METRICS_PORT=$(free_port)
MNT="$TEST_TMP/mnt"
start_s3rver_behind logging oa || die "cannot start s3rver behind listing_proxy.py"

# write_conf NAME OPEN_AHEAD [LINE...]: config NAME.conf with its own cache
write_conf() {
    local name=$1 ahead=$2
    shift 2
    mkdir -p "$TEST_TMP/cache-$name"
    (umask 077 && cat >"$TEST_TMP/$name.conf" <<EOF
[daemon]
metrics_listen = 127.0.0.1:$METRICS_PORT

[cache]
dir = $TEST_TMP/cache-$name

$(s3rver_cloud s3 "http://127.0.0.1:$PROXY_PORT" oa)
index = off
open_ahead = $ahead
$(printf '%s\n' "$@")
EOF
    )
}
write_conf off 0
write_conf on 4
write_conf back 4
write_conf changed 4 "ttl = 0"
write_conf grep 8

put() {     # put KEY FILE: straight to s3rver
    s3curl -T "$2" "http://127.0.0.1:$S3_PORT/oa/$1" || die "cannot upload $1"
}
mkdir -p "$TEST_TMP/src/docs/sub" "$TEST_TMP/src/other"
for i in $(seq -w 1 20); do
    head -c 5120 /dev/urandom >"$TEST_TMP/src/docs/f$i"
    put "docs/f$i" "$TEST_TMP/src/docs/f$i"
done
head -c $((3 << 20)) /dev/urandom >"$TEST_TMP/src/docs/big.bin"
put docs/big.bin "$TEST_TMP/src/docs/big.bin"
echo inner >"$TEST_TMP/src/docs/sub/inner"
put docs/sub/inner "$TEST_TMP/src/docs/sub/inner"
for i in 1 2 3; do
    echo "other $i" >"$TEST_TMP/src/other/g$i"
    put "other/g$i" "$TEST_TMP/src/other/g$i"
done

gets_of() {     # gets_of MARK NAME: GETs of docs/NAME since MARK
    requests_since "$1" | grep -c "^GET /oa/docs/$2\( \|$\)"
}
open_ahead_total() {
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
        awk '$1 == "skyfs_open_ahead_total" { print $2 }'
}
ahead_total_is() { [ "$(open_ahead_total)" = "$1" ]; }
asked() { [ "$(gets_of "$since" "$1")" -ge 1 ]; }   # asked NAME: GOT since mark $since

# --- open_ahead = 0
mount_skyfs "$TEST_TMP/off.conf" "$MNT" || die "cannot mount off.conf"
ls "$MNT/s3/docs" >/dev/null
mark=$(requests_mark)
cat "$MNT/s3/docs/f01" "$MNT/s3/docs/f02" >/dev/null
sleep 1
check_eq "open_ahead = 0: f01 and f02 were fetched" "1 1" \
    "$(gets_of "$mark" f01) $(gets_of "$mark" f02)"
check_eq "open_ahead = 0: f03 was not asked" 0 "$(gets_of "$mark" f03)"
check_eq "open_ahead = 0: nothing fetched ahead" 0 "$(open_ahead_total)"
unmount_skyfs "$MNT"

# --- open_ahead = 4
mount_skyfs "$TEST_TMP/on.conf" "$MNT" || die "cannot mount on.conf"
ls "$MNT/s3/docs" >/dev/null
since=$(requests_mark)
mark=$since
cat "$MNT/s3/docs/f01" "$MNT/s3/docs/f02" >/dev/null
wait_until 10 ahead_total_is 4
check_eq "open_ahead = 4: four files counted as fetched ahead" 4 "$(open_ahead_total)"
check_eq "open_ahead = 4: f03..f06 asked before the reader opened them" "1 1 1 1" \
    "$(gets_of "$mark" f03) $(gets_of "$mark" f04) $(gets_of "$mark" f05) $(gets_of "$mark" f06)"
check_eq "open_ahead = 4: f07 and big.bin not asked" "0 0" \
    "$(gets_of "$mark" f07) $(gets_of "$mark" big.bin)"
mark=$(requests_mark)
for i in 03 04 05 06; do
    check "open_ahead = 4: f$i reads the server's bytes" \
        cmp "$MNT/s3/docs/f$i" "$TEST_TMP/src/docs/f$i"
done
check_eq "open_ahead = 4: reading f03..f06 asked nothing of them" "0 0 0 0" \
    "$(gets_of "$mark" f03) $(gets_of "$mark" f04) $(gets_of "$mark" f05) $(gets_of "$mark" f06)"
# the reader went on: the window moved on, each file asked once
wait_until 10 asked f10
check_eq "open_ahead = 4: going on, f07..f10 asked once each" "1 1 1 1" \
    "$(gets_of "$since" f07) $(gets_of "$since" f08) $(gets_of "$since" f09) $(gets_of "$since" f10)"
check_eq "open_ahead = 4: f11 not asked yet" 0 "$(gets_of "$since" f11)"
for i in 07 08 09 10; do
    check "open_ahead = 4: f$i reads the server's bytes" \
        cmp "$MNT/s3/docs/f$i" "$TEST_TMP/src/docs/f$i"
done
check_eq "open_ahead = 4: no file was asked twice" "" \
    "$(requests_since "$since" | grep '^GET /oa/docs/f' | sort | uniq -d)"
unmount_skyfs "$MNT"

# --- backwards, and to another folder: nothing ahead
mount_skyfs "$TEST_TMP/back.conf" "$MNT" || die "cannot mount back.conf"
ls "$MNT/s3/docs" "$MNT/s3/other" >/dev/null
mark=$(requests_mark)
cat "$MNT/s3/docs/f10" "$MNT/s3/docs/f09" "$MNT/s3/other/g1" "$MNT/s3/docs/f12" >/dev/null
sleep 1
check_eq "backwards or across folders: nothing fetched ahead" 0 "$(open_ahead_total)"
check_eq "backwards or across folders: f11 and f13 not asked" "0 0" \
    "$(gets_of "$mark" f11) $(gets_of "$mark" f13)"
unmount_skyfs "$MNT"

# --- a file rewritten on the server after the listing
mount_skyfs "$TEST_TMP/changed.conf" "$MNT" || die "cannot mount changed.conf"
ls "$MNT/s3/docs" >/dev/null
since=$(requests_mark)
head -c 5120 /dev/urandom >"$TEST_TMP/src/docs/f03"
put docs/f03 "$TEST_TMP/src/docs/f03"
cat "$MNT/s3/docs/f01" "$MNT/s3/docs/f02" >/dev/null
wait_until 10 asked f06
check "changed on the server: f03 reads the new bytes" \
    cmp "$MNT/s3/docs/f03" "$TEST_TMP/src/docs/f03"
check "changed on the server: f04 reads the server's bytes" \
    cmp "$MNT/s3/docs/f04" "$TEST_TMP/src/docs/f04"
unmount_skyfs "$MNT"

# --- whole-folder readers
mount_skyfs "$TEST_TMP/grep.conf" "$MNT" || die "cannot mount grep.conf"
check_eq "grep -r: the same matches as on the source" \
    "$(cd "$TEST_TMP/src" && grep -rc . docs other | sort)" \
    "$(cd "$MNT/s3" && grep -rc . docs other | sort)"
check "cat docs/f*: the server's bytes" \
    cmp <(cat "$MNT"/s3/docs/f*) <(cat "$TEST_TMP"/src/docs/f*)
check "grep -r: files were fetched ahead" test "$(open_ahead_total)" -gt 0
unmount_skyfs "$MNT"
