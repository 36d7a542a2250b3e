#!/usr/bin/env bash
# search_queries.sh - .skyfs/search queries that need a '/' in a value
# (path=CLOUD/DIR, type_is=TYPE/SUBTYPE) spell it %2F, since a directory
# name cannot hold '/', and a query that cannot work is refused (EINVAL)
# with the reason in the daemon's log.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
DOCS="$TEST_TMP/data/docs"
mkdir -p "$DOCS/reports/2024" "$DOCS/other" "$TEST_TMP/cache"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket q || die "cannot start s3rver"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[docs]
type = local
path = $DOCS

$(s3rver_cloud s3 "http://127.0.0.1:$PORT" q)
EOF
)
echo a >"$DOCS/reports/2024/a.pdf"
echo b >"$DOCS/other/b.pdf"
echo c >"$DOCS/reports/c.txt"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
ls -R "$MNT/docs" >/dev/null
echo jpeg >"$MNT/s3/photo.jpg"
echo text >"$MNT/s3/note.txt"
ls -l "$MNT/s3" >/dev/null

q() { ls -1 "$MNT/.skyfs/search/$1" 2>&1 | sort | tr '\n' ' '; }
check_eq "path=docs%2Freports finds the files under docs/reports" "a.pdf c.txt " \
    "$(q 'path=docs%2Freports&type=f')"
check_eq "path= with %2F combines with a name" "a.pdf " \
    "$(q 'path=docs%2Freports%2F2024&iname=*.pdf')"
check_eq "type_is=image%2Fjpeg finds the JPEG" "photo.jpg " "$(q 'type_is=image%2Fjpeg')"
check_eq "type_is=text%2F* finds the text" "note.txt " "$(q 'type_is=text%2F*')"
check_eq "%25 is a literal %" "" "$(q 'name=100%25*')"

invalid() { # invalid QUERY LOGTEXT: ls fails with EINVAL, the log says why
    local out
    out=$(ls "$MNT/.skyfs/search/$1" 2>&1)
    grep -q "Invalid argument" <<<"$out" &&
        wait_until 5 grep -qF "search query \"$1\": $2" "$LOGS/mnt.log"
}
check "type=x is refused and the log says why" invalid 'type=x' 'type=x: use f, d or l'
check "min=lots is refused and the log says why" invalid 'min=lots' 'min=lots is not a size'
check "an unknown criterion is refused and the log says why" invalid 'colour=blue' \
    'unknown criterion "colour"'
unmount_skyfs "$MNT"
