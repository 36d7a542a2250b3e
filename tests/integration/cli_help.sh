#!/usr/bin/env bash
# cli_help.sh - the command line answers as documented: every command's
# --help prints its usage and does nothing else (`skyfs unmount --help`
# does not try to unmount a path called --help), --version prints the
# version, `search -0` and `search --json` print names that hold newlines,
# quotes and bytes that are not UTF-8 so that xargs -0 and a JSON parser
# get them right, `status --json` is one JSON object, and `cache warm`
# refuses paths outside a skyfs mount as `cache evict` does.
. "$(dirname "$0")/lib.sh"

CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
DOCS="$TEST_TMP/data/docs"
write_local_config "$CONF" "$TEST_TMP/cache" docs="$DOCS"

# ---- --help of every command: usage on stdout, exit 0, nothing done
for cmd in mount unmount config status search index cache help; do
    out=$("$SKYFS" "$cmd" --help 2>&1)
    rc=$?
    check_eq "skyfs $cmd --help exits 0" 0 "$rc"
    check_eq "skyfs $cmd --help prints its usage" "usage: skyfs $cmd" \
        "$(head -n 1 <<<"$out" | awk '{print $1, $2, $3}')"
done
mkdir -p "$TEST_TMP/cwd/--help"
out=$(cd "$TEST_TMP/cwd" && "$SKYFS" unmount --help 2>&1)
check_eq "skyfs unmount --help does not try to unmount --help" "" \
    "$(grep -i 'cannot unmount\|not mounted' <<<"$out")"
check_eq "skyfs cache warm -h prints the cache usage" "usage: skyfs cache" \
    "$("$SKYFS" cache warm -h | head -n 1 | awk '{print $1, $2, $3}')"
check_eq "skyfs help unmount prints the unmount usage" "usage: skyfs unmount [--timeout SECONDS] MOUNTPOINT" \
    "$("$SKYFS" help unmount | head -n 1)"
check "skyfs --version prints the version" \
    bash -c "'$SKYFS' --version | grep -qxE 'skyfs [0-9]+\.[0-9]+\.[0-9]+'"
check_fails "an unknown command fails" "$SKYFS" frobnicate

# ---- search -0 and --json with awkward names
printf x >"$DOCS/plain.txt"
printf y >"$DOCS/new
line.txt"
printf z >"$DOCS/quote\"back\\slash.txt"
printf w >"$DOCS/$(printf 'latin\xe9')1.txt"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
ls -la "$MNT/docs" >/dev/null

names_nul=$("$SKYFS" search -c "$CONF" -0 '*.txt' | "$PYTHON" -c '
import sys, os
data = sys.stdin.buffer.read()
print(data.endswith(b"\0"), sorted(os.path.basename(p) for p in data.split(b"\0") if p))')
check_eq "search -0 separates names with NULs, newlines kept" \
    "True [b'latin\\xe91.txt', b'new\\nline.txt', b'plain.txt', b'quote\"back\\\\slash.txt']" \
    "$names_nul"
check_eq "search -0 works with xargs -0" 4 \
    "$("$SKYFS" search -c "$CONF" -0 '*.txt' | xargs -0 -n1 cat | wc -c)"

json=$("$SKYFS" search -c "$CONF" --json '*.txt' | "$PYTHON" -c '
import sys, json
rows = [json.loads(l) for l in sys.stdin]
print(ascii(sorted((r["cloud"], r["cloud_path"], r["type"], r["size"]) for r in rows)))
print(all(r["path"].endswith("/docs/" + r["cloud_path"]) for r in rows))')
check_eq "search --json: one valid JSON object per hit, names escaped" \
    "[('docs', 'latin\\ufffd1.txt', 'file', 1), ('docs', 'new\\nline.txt', 'file', 1), ('docs', 'plain.txt', 'file', 1), ('docs', 'quote\"back\\\\slash.txt', 'file', 1)]
True" "$json"

# ---- status --json
status=$("$SKYFS" status -c "$CONF" --json | "$PYTHON" -c '
import sys, json
s = json.load(sys.stdin)
print([(c["name"], c["type"], c["state"]) for c in s["clouds"]], s["cache"]["dir"] != "")')
check_eq "status --json is one JSON object with the clouds and the cache" \
    "[('docs', 'local', 'online')] True" "$status"

unmount_skyfs "$MNT"

# ---- cache warm, like evict, only works inside a mount
mount_skyfs "$CONF" "$MNT" || die "cannot mount again"
warm_outside() {
    local err
    err=$("$SKYFS" cache warm "$DOCS" 2>&1 >/dev/null)
    [ $? -ne 0 ] && grep -q "not a path inside a mounted skyfs" <<<"$err"
}
check "cache warm refuses a path outside a skyfs mount" warm_outside
check "cache warm reads a path inside the mount" "$SKYFS" cache warm "$MNT/docs"
unmount_skyfs "$MNT"
