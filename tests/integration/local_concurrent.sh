#!/usr/bin/env bash
# shellcheck disable=SC2012 # test file names are plain
# local_concurrent.sh - parallel writers and readers on one mount.
#
# Four writers write different files (different sizes and chunk sizes) at
# the same time as two readers read a pre-existing file over and over and a
# lister lists the directory; then every file is compared with cmp through
# the mount and in the backing directory.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
ALPHA="$TEST_TMP/data/alpha"
BETA="$TEST_TMP/data/beta"
SRC="$TEST_TMP/src"
write_local_config "$CONF" "$TEST_TMP/cache" "alpha=$ALPHA" "beta=$BETA"
mkdir -p "$SRC" "$TEST_TMP/status"

head -c $((8 * 1024 * 1024)) /dev/urandom >"$SRC/shared"
cp "$SRC/shared" "$ALPHA/shared"
sizes=(5242880 3000017 7340033 1048577)
chunks=(4096 65537 131072 777)
for i in 0 1 2 3; do
    head -c "${sizes[$i]}" /dev/urandom >"$SRC/w$i"
done

# reader N: reads the shared file 5 times, records each comparison.
reader() {
    local n=$1 k
    for k in 1 2 3 4 5; do
        cmp "$SRC/shared" "$MNT/alpha/shared" >>"$TEST_TMP/status/reader$n.out" 2>&1 ||
            echo "read $k differs" >>"$TEST_TMP/status/reader$n.out"
    done
}

mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"

pids=()
for i in 0 1 2 3; do
    (dd if="$SRC/w$i" of="$MNT/alpha/w$i" bs="${chunks[$i]}" status=none
     echo $? >"$TEST_TMP/status/w$i") &
    pids+=($!)
done
for n in 1 2; do
    reader "$n" &
    pids+=($!)
done
(for k in $(seq 20); do ls -l "$MNT/alpha" >/dev/null 2>>"$TEST_TMP/status/ls.out"; done) &
pids+=($!)
for p in "${pids[@]}"; do
    wait "$p"
done

for i in 0 1 2 3; do
    check_eq "writer $i exited 0" 0 "$(cat "$TEST_TMP/status/w$i" 2>&1)"
done
for n in 1 2; do
    check_eq "reader $n read the same bytes every time" "" \
        "$(cat "$TEST_TMP/status/reader$n.out" 2>&1)"
done
check_eq "listing during the writes gave no error" "" "$(cat "$TEST_TMP/status/ls.out" 2>&1)"
for i in 0 1 2 3; do
    check "file w$i through the mount equals its source" cmp "$SRC/w$i" "$MNT/alpha/w$i"
    check "file w$i in the backing directory equals its source" cmp "$SRC/w$i" "$ALPHA/w$i"
done

# Parallel writers to one directory of the other cloud, small files.
for i in $(seq 20); do
    printf 'file %s\n' "$i" >"$MNT/beta/f$i" &
done
wait
check_eq "20 small files written in parallel are all listed" 20 \
    "$(ls "$MNT/beta" 2>&1 | wc -l)"
bad=
for i in $(seq 20); do
    [ "$(cat "$BETA/f$i" 2>&1)" = "file $i" ] || bad="$bad f$i"
done
check_eq "20 small files written in parallel have their content" "" "$bad"

unmount_skyfs "$MNT"
