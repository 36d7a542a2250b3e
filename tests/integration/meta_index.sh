#!/usr/bin/env bash
# meta_index.sh - the metadata cache as an index: remounts that ask the
# cloud nothing, TTLs, offline browsing, skyfs index / search, the hidden
# .skyfs/search directory and the etag xattr.
#
# Clouds: "docs" (local, ttl 1h), "quick" (local, ttl 1s, negative_ttl 1s)
# and "s3" (s3rver, ttl 1s), which goes offline when the server is stopped.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
DOCS="$TEST_TMP/data/docs"
QUICK="$TEST_TMP/data/quick"
mkdir -p "$DOCS/reports/2024" "$DOCS/photos" "$QUICK" "$TEST_TMP/cache"

start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket idx || die "cannot start s3rver"

(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[docs]
type = local
path = $DOCS
ttl = 1h

[quick]
type = local
path = $QUICK
ttl = 1s
negative_ttl = 1s

$(s3rver_cloud s3 "http://127.0.0.1:$PORT" idx)
ttl = 1s
EOF
)

# a small tree with known sizes and times
head -c 100 /dev/zero >"$DOCS/reports/2024/q1.pdf"
head -c 5000 /dev/zero >"$DOCS/reports/2024/q2.PDF"
head -c 2000000 /dev/zero >"$DOCS/reports/big.pdf"
head -c 10 /dev/zero >"$DOCS/photos/cat.jpg"
echo notes >"$DOCS/notes.txt"
touch -d '2020-06-01 00:00:00' "$DOCS/reports/2024/q1.pdf"
touch -d '2024-03-01 00:00:00' "$DOCS/reports/2024/q2.PDF"
touch -d '2024-09-01 00:00:00' "$DOCS/reports/big.pdf"

requests() { # requests CLOUD: the daemon's request count for one cloud
    getfattr --only-values -n user.skyfs.requests "$MNT/.skyfs" 2>/dev/null |
        awk -v c="$1" '$1 == c { print $2 }'
}

mount_skyfs "$CONF" "$MNT" || die "cannot mount"

# ---- a remount answers from the cache alone within the TTL
first=$(ls -lR "$MNT/docs" 2>&1)
cat "$MNT/docs/notes.txt" >/dev/null
check_eq "ls -lR lists the tree" 1 "$(grep -c ' big.pdf$' <<<"$first")"
unmount_skyfs "$MNT"
mount_skyfs "$CONF" "$MNT" || die "cannot remount"
second=$(ls -lR "$MNT/docs" 2>&1)
check_eq "after a remount ls -lR shows the same" "$first" "$second"
check_eq "and asked the cloud nothing" 0 "$(requests docs)"
cat "$MNT/docs/notes.txt" >/dev/null
check_eq "a file read before the remount comes from the block cache" 0 "$(requests docs)"

# ---- etag as an xattr, user metadata round trip
check "getfattr shows the etag" bash -c \
    "getfattr -d '$MNT/docs/notes.txt' | grep -q '^user.skyfs.etag='"
check "setfattr stores user metadata" setfattr -n user.colour -v blue "$MNT/docs/notes.txt"
check_eq "getfattr reads it back" blue \
    "$(getfattr --only-values -n user.colour "$MNT/docs/notes.txt" 2>/dev/null)"
etag=$(getfattr --only-values -n user.skyfs.etag "$MNT/docs/notes.txt" 2>/dev/null)
check "setting the etag (as cp -a does) is accepted" \
    setfattr -n user.skyfs.etag -v x "$MNT/docs/notes.txt"
check_eq "but changes nothing" "$etag" \
    "$(getfattr --only-values -n user.skyfs.etag "$MNT/docs/notes.txt" 2>/dev/null)"

# ---- negative lookups expire
check_eq "a missing file is ENOENT" ENOENT "$(errno_of stat "$MNT/quick/later.txt")"
echo later >"$QUICK/later.txt"
sleep 2.2
check_eq "after negative_ttl and ttl it is found" ok "$(errno_of stat "$MNT/quick/later.txt")"

# ---- skyfs index and search
echo s3 >"$TEST_TMP/s3file"
check "write a file into the s3 cloud" cp "$TEST_TMP/s3file" "$MNT/s3/report.pdf"
check "skyfs index indexes every cloud" "$SKYFS" index -c "$CONF"
search() { "$SKYFS" search -c "$CONF" "$@" 2>&1 | sed "s|^$MNT/||" | sort | tr '\n' ' '; }
check_eq "search by name" "docs/reports/2024/q1.pdf docs/reports/big.pdf s3/report.pdf " \
    "$(search --name '*.pdf')"
check_eq "search by name, case-insensitive" \
    "docs/reports/2024/q1.pdf docs/reports/2024/q2.PDF docs/reports/big.pdf s3/report.pdf " \
    "$(search --iname '*.pdf')"
check_eq "search by path prefix" \
    "docs/reports/2024 docs/reports/2024/q1.pdf docs/reports/2024/q2.PDF " \
    "$(search --path docs/reports/2024)"
check_eq "search by size range" "docs/reports/2024/q2.PDF docs/reports/big.pdf " \
    "$(search --type f --min-size 1000 --max-size 3M)"
check_eq "search by mtime range" "docs/reports/2024/q2.PDF docs/reports/big.pdf " \
    "$(search --newer 2024-01-01 --older 2025-01-01)"
check_eq "search by cloud" "s3/report.pdf " "$(search --cloud s3 --type f)"
check_eq "search by combined criteria" "docs/reports/big.pdf " \
    "$(search --iname '*.pdf' --cloud docs --min-size 1M)"
check_eq "search by substring (the trigram index)" "docs/reports s3/report.pdf " \
    "$(search --name '*epor*')"
check_eq "search --iname with a class" "docs/reports/2024/q1.pdf docs/reports/2024/q2.PDF " \
    "$(search --iname 'Q[12].pdf')"
check "create a file through the mount" cp "$TEST_TMP/s3file" "$MNT/docs/draft-plan.txt"
check "rename it through the mount" mv "$MNT/docs/draft-plan.txt" "$MNT/docs/final-plan.txt"
check_eq "search finds it by its new name at once" "docs/final-plan.txt " \
    "$(search --iname '*PLAN*')"
check_eq "and no longer by its old one" "" "$(search --name '*draft*')"
check "remove it through the mount" rm "$MNT/docs/final-plan.txt"
check_eq "search no longer finds it" "" "$(search --name '*plan*')"
check "search --long prints size, mtime and cloud" bash -c \
    "'$SKYFS' search -c '$CONF' --long --name big.pdf | grep -Eq '^- +2000000  2024-09-01 00:00:00  docs +$MNT/docs/reports/big.pdf\$'"
check_fails "a bad search criterion is refused" "$SKYFS" search -c "$CONF" --min-size lots

# ---- the virtual search directory
check_eq ".skyfs is hidden from the root listing" "docs quick s3" \
    "$(ls -A "$MNT" | tr '\n' ' ' | sed 's/ $//')"
check_eq ".skyfs/search/<glob> lists the matches" "big.pdf q1.pdf q2.PDF report.pdf" \
    "$(ls "$MNT/.skyfs/search/*.pdf" | tr '\n' ' ' | sed 's/ $//')"
check_eq "its entries are symlinks to the mount paths" "$MNT/docs/reports/big.pdf" \
    "$(readlink "$MNT/.skyfs/search/*.pdf/big.pdf")"
check "read a file through a search result" \
    cmp "$DOCS/reports/big.pdf" "$MNT/.skyfs/search/*.pdf/big.pdf"
check_eq "criteria in the directory name" "big.pdf" \
    "$(ls "$MNT/.skyfs/search/iname=*.pdf&min=1M")"
check_eq "the .skyfs directory is read-only" EROFS "$(errno_of mkdir "$MNT/.skyfs/new")"

# ---- skyfs cache warm / stats
check "skyfs cache warm reads a tree into the cache" "$SKYFS" cache warm "$MNT/docs/reports"
before=$(requests docs)
sync; echo 3 >/proc/sys/vm/drop_caches
check "a warmed file reads back" cmp "$DOCS/reports/big.pdf" "$MNT/docs/reports/big.pdf"
check_eq "with no request to the cloud" "$before" "$(requests docs)"
check "skyfs cache stats counts the cached objects" bash -c \
    "'$SKYFS' cache stats -c '$CONF' | grep -Eq '^objects +[1-9]'"

# ---- offline: stop the server, keep browsing
ls -l "$MNT/s3" >/dev/null
cat "$MNT/s3/report.pdf" >/dev/null
stop_servers
sleep 1.2
check "an offline cloud still lists from the cache" bash -c "ls '$MNT/s3' | grep -qx report.pdf"
check_eq "and its cached file still reads" s3 "$(cat "$MNT/s3/report.pdf" 2>&1)"
check_fails "writes to the offline cloud fail" cp "$TEST_TMP/s3file" "$MNT/s3/new.txt"
check "skyfs status marks the cloud offline with the reason" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -E '^  s3 .*offline: .+'"
check "the other clouds are unaffected" bash -c \
    "'$SKYFS' status -c '$CONF' | grep -E '^  docs .*online' && cat '$MNT/docs/notes.txt'"
unmount_skyfs "$MNT"
