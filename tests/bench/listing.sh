#!/usr/bin/env bash
# shellcheck disable=SC2030,SC2031 # rclone's settings live in its subshell only
# listing.sh - the metadata benchmark: listing a big directory, walking a
# big tree and searching a big index; skyfs vs rclone mount vs s3fs.
#
#     tests/bench/listing.sh [--tools skyfs,rclone,s3fs] [--files N]
#                            [--dirs N] [--per-dir N] [--rows N]
#
# Starts one s3rver on 127.0.0.1 (with its request log on, so every request
# the server answers is one line of $LOGS/s3rver-PORT.log) and times:
#
#   1. `ls -l DIR | wc -l` over one directory of N (default 10,000) objects
#      made on the server directly: cold (fresh mount, empty cache), warm
#      (same mount, again) and after an unmount + remount (same cache
#      directory; skyfs keeps its listings in its metadata cache and the
#      cloud has ttl = 1h, rclone and s3fs keep none);
#   2. `find MNT/cloud | wc -l` over a tree of DIRS x PER-DIR objects
#      (default 1,000 x 100): cold for every tool, and for skyfs also after
#      `skyfs index -c CONF` (which fills the index ahead of the mount);
#   3. `skyfs search` over ROWS (default 1,000,000) synthetic rows inserted
#      with python3's sqlite3 module into a metadata cache made by one mount
#      of an empty local cloud (no mount afterwards: it would relist the
#      empty folder and drop them), then the trigram index of names rebuilt
#      from them (skyfs keeps it in step itself; these rows bypass skyfs):
#      names by prefix (the name index), by substring or suffix (the
#      trigram index), size and mtime ranges, narrow and wide.
#
# For rows 1-2 each cell shows the wall time and the requests the server
# answered during the command (lines of its log between two counts); the
# listing output is checked (line count), so a short listing is a failure,
# never a fast result.  skyfs's own per-cloud counter (user.skyfs.requests
# on MNT/.skyfs) is noted too.  Prints the tables and writes them to
# $BUILD/bench/listing.md.  Each step has a time limit; on exit everything
# is unmounted and the server stopped (lib.sh's exit handler plus ours).
set -u -o pipefail

LB_TOOLS="skyfs rclone s3fs"
LB_FILES=10000
LB_DIRS=1000
LB_PER_DIR=100
LB_ROWS=1000000
# shellcheck source=SCRIPTDIR/peers.sh
. "$(dirname "$0")/peers.sh"
while [ $# -gt 0 ]; do
    case "$1" in
        --tools) LB_TOOLS=$(echo "${2:-}" | tr ',' ' '); shift 2 ;;
        --files) LB_FILES=${2:-}; shift 2 ;;
        --dirs) LB_DIRS=${2:-}; shift 2 ;;
        --per-dir) LB_PER_DIR=${2:-}; shift 2 ;;
        --rows) LB_ROWS=${2:-}; shift 2 ;;
        -h|--help) sed -n '4,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "listing.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
bench_check_args listing.sh "$LB_TOOLS" "$LB_FILES" "$LB_DIRS" "$LB_PER_DIR" "$LB_ROWS"

# shellcheck source=SCRIPTDIR/../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

LB_ALL="skyfs rclone s3fs"
FLAT=flat               # bucket (and skyfs cloud) with one big directory
TREE=tree               # bucket with the tree
OUT="$BUILD/bench"
WORK="$TEST_TMP/work"
LIST_LIMIT=240          # seconds for one ls / find
mkdir -p "$OUT" "$WORK"
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

declare -A CELL=()      # "row tool" -> table cell
NOTES=()
SEARCH_ROWS=()          # lines of the search table

now() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# ------------------------------------------------------------------ server

# The server runs without -s (lib.sh's start_s3rver silences it) so that it
# logs one line per answered request, ending "STATUS TIMEms SIZE".
start_logged_s3rver() {
    mkdir -p "$WORK/s3rver"
    [ -f "$SERVERS_DIR/s3rver/bin/s3rver.js" ] ||
        { record FAIL "start s3rver: not installed (run make deps)"; return 1; }
    _start_server s3rver "$PORT" "http://127.0.0.1:$PORT/" \
        env NODE_OPTIONS=--openssl-legacy-provider \
        node "$SERVERS_DIR/s3rver/bin/s3rver.js" -d "$WORK/s3rver" -a 127.0.0.1 \
        -p "$PORT" --configure-bucket "$FLAT" --configure-bucket "$TREE"
    S3_LOG="$LOGS/s3rver-$PORT.log"
}

# requests_so_far: requests the server has answered (it logs a line per
# response a moment after sending it, hence the short pause).
requests_so_far() {
    sleep 0.5
    grep -cE ' [1-5][0-9][0-9] [0-9.]+m?s [^ ]*$' "$S3_LOG"
}

# upload_objects BUCKET LISTFILE: PUTs one small body under every key of
# LISTFILE, 16 at a time.
upload_objects() {
    local bucket=$1 keys=$2 cfg="$WORK/upload-$1.curl"
    printf 'x%.0s' $(seq 100) >"$WORK/body"
    sed "s|^|url = \"http://127.0.0.1:$PORT/$bucket/|; s|\$|\"|" "$keys" |
        awk -v f="$WORK/body" '{ print "upload-file = \"" f "\""; print }' >"$cfg"
    timeout 300 curl -sSf --noproxy '*' --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --parallel --parallel-max 16 \
        -o /dev/null -K "$cfg" >"$LOGS/upload-$bucket.out" 2>&1
}

# ------------------------------------------------------------ the mounts

# mount_tool TOOL BUCKET: mounts on $WORK/mnt-TOOL with cache dir
# $WORK/cache-TOOL-BUCKET (kept across remounts) and sets DATA.
mount_tool() {
    local tool=$1 bucket=$2 mnt="$WORK/mnt-$1" cache="$WORK/cache-$1-$2"
    mkdir -p "$mnt" "$cache"
    case "$tool" in
        skyfs)
            bench_skyfs_config "$WORK/skyfs-$bucket.conf" "$cache" "$bucket" "ttl = 1h"
            mount_skyfs "$WORK/skyfs-$bucket.conf" "$mnt" || return 1
            DATA="$mnt/$bucket" ;;
        *)
            start_peer "$tool" "$bucket" "$mnt" "$cache" "$LOGS/$tool-$bucket.log" || return 1
            DATA="$mnt" ;;
    esac
}

unmount_tool() {
    case "$1" in
        skyfs) unmount_skyfs "$WORK/mnt-skyfs" ;;
        *) stop_peer "$1" "$WORK/mnt-$1" ;;
    esac
}

# skyfs_requests CLOUD: the running skyfs daemon's own request count.
skyfs_requests() {
    getfattr --only-values -n user.skyfs.requests "$WORK/mnt-skyfs/.skyfs" 2>/dev/null |
        awk -v c="$1" '$1 == c { print $2 }'
}

# ------------------------------------------------------------ measuring

# measure ROW TOOL EXPECTED ls|find DIR: runs `ls -l DIR | wc -l` or
# `find DIR | wc -l` and sets the cell to "TIME s, N req" when the count is
# EXPECTED.
measure() {
    local row=$1 tool=$2 expected=$3 how=$4 dir=$5
    local out="$LOGS/$tool-$row.out" before t0 t got reqs
    before=$(requests_so_far)
    t0=$(now)
    # shellcheck disable=SC2016 # $1 is expanded by the inner shell
    case "$how" in
        ls) got=$(timeout -k 10 $LIST_LIMIT bash -c 'ls -l "$1" | wc -l' _ "$dir" 2>"$out" </dev/null) ;;
        *) got=$(timeout -k 10 $LIST_LIMIT bash -c 'find "$1" | wc -l' _ "$dir" 2>"$out" </dev/null) ;;
    esac
    t=$(secs_since "$t0")
    reqs=$(( $(requests_so_far) - before ))
    if [ "$got" != "$expected" ]; then
        echo "(counted '$got' lines, expected $expected: $how $dir)" >>"$out"
        record FAIL "$tool: $row: complete listing" "$out"
        CELL["$row $tool"]="FAILED ($got)"
        return 1
    fi
    CELL["$row $tool"]="$t s, $reqs req"
    record ok "$tool: $row: $t s, $reqs requests"
}


bench_flat() {
    local tool=$1 expected=$((LB_FILES + 1)) n
    echo "--- $tool: ls -l of $LB_FILES files"
    mount_tool "$tool" "$FLAT" || return
    measure ls-cold "$tool" "$expected" ls "$DATA/big"
    measure ls-warm "$tool" "$expected" ls "$DATA/big"
    unmount_tool "$tool"
    mount_tool "$tool" "$FLAT" || return
    measure ls-remount "$tool" "$expected" ls "$DATA/big"
    if [ "$tool" = skyfs ]; then
        n=$(skyfs_requests "$FLAT")
        NOTES+=("skyfs's own counter (user.skyfs.requests on .skyfs) after the remount and its ls -l: ${n:-?} requests to cloud $FLAT.")
    fi
    unmount_tool "$tool"
}

bench_tree() {
    local tool=$1 expected=$((1 + LB_DIRS + LB_DIRS * LB_PER_DIR)) before t0 out n
    echo "--- $tool: find over $LB_DIRS x $LB_PER_DIR objects"
    rm -rf --one-file-system "$WORK/cache-$tool-$TREE"
    mount_tool "$tool" "$TREE" || return
    measure find-cold "$tool" "$expected" find "$DATA"
    unmount_tool "$tool"
    [ "$tool" = skyfs ] || return
    rm -rf --one-file-system "$WORK/cache-$tool-$TREE"
    bench_skyfs_config "$WORK/skyfs-$TREE.conf" "$WORK/cache-$tool-$TREE" "$TREE" "ttl = 1h"
    out="$LOGS/skyfs-index.out"
    before=$(requests_so_far)
    t0=$(now)
    if ! timeout -k 10 $LIST_LIMIT "$SKYFS" index -c "$WORK/skyfs-$TREE.conf" >"$out" 2>&1 </dev/null; then
        record FAIL "skyfs index" "$out"
        return
    fi
    CELL["index skyfs"]="$(secs_since "$t0") s, $(( $(requests_so_far) - before )) req"
    record ok "skyfs index: ${CELL["index skyfs"]}"
    mount_tool skyfs "$TREE" || return
    measure find-indexed skyfs "$expected" find "$DATA"
    n=$(skyfs_requests "$TREE")
    NOTES+=("skyfs's own counter after \`skyfs index\`, a mount and find: ${n:-?} requests to cloud $TREE.")
    unmount_tool skyfs
}

# ------------------------------------------------------------ search

# make_synthetic_index: one mount of an empty local cloud creates the
# schema and the cloud's root; then python3 inserts LB_ROWS files in
# directories of 1,000 under it.
make_synthetic_index() {
    local conf="$WORK/syn.conf" cache="$WORK/cache-syn" mnt="$WORK/mnt-skyfs" t0
    mkdir -p "$WORK/empty" "$cache"
    cat >"$conf" <<EOF
# written by tests/bench/listing.sh
[cache]
dir = $cache

[syn]
type = local
path = $WORK/empty
ttl = 1h
EOF
    mount_skyfs "$conf" "$mnt" || return 1
    ls "$mnt/syn" >/dev/null
    unmount_skyfs "$mnt" || return 1
    t0=$(now)
    timeout 300 "$PYTHON" - "$cache/meta.db" "$LB_ROWS" >"$LOGS/synthetic.out" 2>&1 <<'EOF' ||
import sqlite3, sys
db, rows = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA synchronous=OFF")
root = con.execute("SELECT ino FROM entries WHERE parent=1 AND name='syn'").fetchone()[0]
per_dir = 1000
exts = (".dat", ".txt", ".jpg", ".pdf")
base = 1_600_000_000 * 10**9
con.execute("BEGIN")
dirs = []
for d in range((rows + per_dir - 1) // per_dir):
    name = "d%04d" % d
    cur = con.execute("INSERT INTO entries(parent,cloud,name,path,kind,mtime_ns) "
                      "VALUES(?,?,?,?,2,?)", (root, "syn", name, name, base))
    dirs.append((cur.lastrowid, name))
def files():
    for i in range(rows):
        ino, dname = dirs[i // per_dir]
        name = "file%07d%s" % (i, exts[i % 4])
        yield (ino, "syn", name, dname + "/" + name, 1, (i * 7919) % 10_000_000,
               base + i * 10**9)
con.executemany("INSERT INTO entries(parent,cloud,name,path,kind,size,mtime_ns) "
                "VALUES(?,?,?,?,?,?,?)", files())
con.execute("COMMIT")
print(con.execute("SELECT count(*) FROM entries WHERE cloud='syn' AND kind=1").fetchone()[0])
if con.execute("SELECT 1 FROM sqlite_master WHERE name='entry_trigrams'").fetchone():
    import time
    t0 = time.time()
    con.execute("INSERT INTO entry_trigrams(entry_trigrams) VALUES('rebuild')")
    print("trigram index rebuilt in %.2f s" % (time.time() - t0))
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.close()
EOF
        { record FAIL "insert $LB_ROWS synthetic rows" "$LOGS/synthetic.out"; return 1; }
    record ok "insert $LB_ROWS synthetic rows: $(secs_since "$t0") s ($(tail -n +2 "$LOGS/synthetic.out" | tr '\n' ' '))"
    SYN_CONF=$conf
}

# search_row LABEL EXPECTED ARGS...: times `skyfs search ARGS` three times
# (the median), checks the number of hits.
search_row() {
    local label=$1 expected=$2; shift 2
    local out="$LOGS/search-$((${#SEARCH_ROWS[@]} + 1)).out" i t0 times=() got med
    for i in 1 2 3; do
        t0=$(now)
        got=$(timeout -k 10 120 "$SKYFS" search -c "$SYN_CONF" "$@" 2>"$out" </dev/null | wc -l)
        times+=("$(secs_since "$t0")")
    done
    med=$(printf '%s\n' "${times[@]}" | sort -g | sed -n 2p)
    if [ "$got" != "$expected" ]; then
        echo "(got $got hits, expected $expected: skyfs search $*)" >>"$out"
        record FAIL "search $label" "$out"
        SEARCH_ROWS+=("$(printf '| %-36s | %-10s | %-8s |' "$label" FAILED "$got")")
        return
    fi
    record ok "search $label: $med s, $got hits"
    SEARCH_ROWS+=("$(printf '| %-36s | %-10s | %-8s |' "$label" "$med s" "$got")")
}

bench_search() {
    echo "--- skyfs search over $LB_ROWS rows"
    make_synthetic_index || return
    # sizes are (i * 7919) % 10^7, mtimes 1,600,000,000 + i seconds
    local min=9990000 max=999 wide=1000 base=1600000000 counts
    local newer=$((1600000000 + LB_ROWS - 1000)) older=$((1600000000 + 1000))
    # the expected hits, from the formulas the rows were made with
    counts=$("$PYTHON" -c "
import fnmatch
exts = ('.dat', '.txt', '.jpg', '.pdf')
names = ['file%07d%s' % (i, exts[i % 4]) for i in range($LB_ROWS)]
sizes = [(i * 7919) % 10**7 for i in range($LB_ROWS)]
print(sum(fnmatch.fnmatchcase(n, 'file0012345.*') for n in names),
      sum(n.startswith('file00123') for n in names),
      sum('77777' in n for n in names),
      sum(fnmatch.fnmatchcase(n, '*0012345*') for n in names),
      sum(fnmatch.fnmatchcase(n, '*778.jpg') for n in names),
      sum(n.endswith('.jpg') and s >= $min for n, s in zip(names, sizes)),
      sum(s >= $min for s in sizes),
      sum(s <= $max for s in sizes),
      sum(s >= $wide for s in sizes),
      sum($base + i >= $newer for i in range($LB_ROWS)),
      sum($base + i < $older for i in range($LB_ROWS)))")
    # shellcheck disable=SC2086 # one argument per count
    set -- $counts
    search_row "--name 'file0012345.*'" "$1" --name 'file0012345.*'
    search_row "--name 'file00123*'" "$2" --name 'file00123*'
    search_row "--iname '*77777*'" "$3" --iname '*77777*'
    search_row "--name '*0012345*'" "$4" --name '*0012345*'
    search_row "--name '*778.jpg'" "$5" --name '*778.jpg'
    search_row "--name '*.jpg' --min-size $min" "$6" --name '*.jpg' --min-size "$min"
    search_row "--min-size $min" "$7" --min-size "$min"
    search_row "--type f --max-size $max" "$8" --type f --max-size "$max"
    search_row "--min-size $wide (nearly all)" "$9" --min-size "$wide"
    search_row "--type f --newer @$newer" "${10}" --type f --newer "@$newer"
    search_row "--type f --older @$older" "${11}" --type f --older "@$older"
}

# ------------------------------------------------------------ the tables

cell() {
    case " $LB_TOOLS " in *" $2 "*) ;; *) echo skipped; return ;; esac
    echo "${CELL["$1 $2"]:-${3:-FAILED}}"
}

table_row() { # ROW LABEL [default for tools without the row]
    printf '| %-40s | %-20s | %-20s | %-20s |\n' "$2" "$(cell "$1" skyfs)" \
        "$(cell "$1" rclone "${3:-FAILED}")" "$(cell "$1" s3fs "${3:-FAILED}")"
}

print_tables() {
    printf '| %-40s | %-20s | %-20s | %-20s |\n' workload skyfs "rclone mount" s3fs
    printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 42))" "$(printf -- '-%.0s' $(seq 22))" \
        "$(printf -- '-%.0s' $(seq 22))" "$(printf -- '-%.0s' $(seq 22))"
    table_row ls-cold "1. ls -l, $LB_FILES files, cold"
    table_row ls-warm "2. ls -l again, same mount"
    table_row ls-remount "3. ls -l after unmount + remount"
    table_row find-cold "4. find, $((LB_DIRS * LB_PER_DIR)) files in $LB_DIRS dirs, cold"
    table_row index "5. skyfs index (before the mount)" "n/a"
    table_row find-indexed "6. find after skyfs index" "n/a"
    echo
    printf '| %-36s | %-10s | %-8s |\n' "skyfs search, $LB_ROWS rows" time hits
    printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 38))" "$(printf -- '-%.0s' $(seq 12))" \
        "$(printf -- '-%.0s' $(seq 10))"
    local r
    for r in "${SEARCH_ROWS[@]}"; do echo "$r"; done
}

write_results() {
    local md="$OUT/listing.md" t
    {
        echo "# skyfs listing benchmark"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, Linux $(uname -r); one s3rver" \
             "on 127.0.0.1 (node $(node --version 2>/dev/null))."
        echo
        print_tables
        echo
        echo "- Cells: wall-clock seconds of \`ls -l DIR | wc -l\` / \`find DIR | wc -l\`, and the"
        echo "  requests the server answered meanwhile (lines of s3rver's request log)."
        echo "  Every count of lines is checked."
        echo "- Each tool's cache directory is empty at the first mount and kept across the"
        echo "  remount. skyfs: ttl = 1h; rclone mount --vfs-cache-mode full --cache-dir DIR;"
        echo "  s3fs -o use_path_request_style,use_cache=DIR."
        echo "- Where a peer's requests are about one per file, it asked for each object's attributes"
        echo "  with a request of its own; skyfs takes them from the LIST pages (1,000 keys per page)."
        echo "- Row 5 runs \`skyfs index -c CONF\` with no mount; row 6 mounts that cache and walks it."
        echo "- Search: median of 3 runs of \`skyfs search -c CONF ...\`; rows inserted with"
        echo "  python3's sqlite3 into the metadata cache of a mount of an empty local cloud,"
        echo "  and its trigram index of names rebuilt from them."
        for t in "${NOTES[@]}"; do echo "- $t"; done
        echo
        echo "Versions:"
        for t in $LB_ALL; do echo "- $(tool_version "$t")"; done
    } >"$md"
    echo
    print_tables
    for t in "${NOTES[@]}"; do echo "listing: note: $t"; done
    echo
    echo "listing: results written to $md"
}

# ------------------------------------------------------------ clean-up

listing_exit() {
    local rc=$? t pid busy=0
    for t in rclone s3fs; do
        stop_peer "$t" "$WORK/mnt-$t"
    done
    if mountpoint -q "$WORK/mnt-skyfs" 2>/dev/null; then
        fusermount3 -u -z "$WORK/mnt-skyfs" 2>/dev/null
    fi
    for pid in $(daemon_pids "$WORK/mnt-skyfs"); do
        kill "$pid" 2>/dev/null
    done
    stop_servers
    for t in $LB_ALL; do
        mountpoint -q "$WORK/mnt-$t" 2>/dev/null && busy=1
    done
    [ $busy = 0 ] && rm -rf --one-file-system "$WORK"
    (exit "$rc")
    _sky_exit
}
trap listing_exit EXIT

# ------------------------------------------------------------------ main

for t in $LB_TOOLS; do
    case "$t" in
        rclone) command -v rclone >/dev/null || die "rclone is missing (run make deps)" ;;
        s3fs) command -v s3fs >/dev/null || die "s3fs is missing (run make deps)" ;;
    esac
done
command -v getfattr >/dev/null || die "getfattr is missing (apt-get install attr)"

PORT=$(free_port)
start_logged_s3rver || die "s3rver did not start"

t0=$(now)
seq -f "big/file%05.0f.txt" 1 "$LB_FILES" >"$WORK/keys-flat"
check "put $LB_FILES objects in $FLAT/big/" upload_objects "$FLAT" "$WORK/keys-flat" ||
    die "cannot fill the flat bucket"
record ok "put $LB_FILES objects: $(secs_since "$t0") s"
t0=$(now)
for d in $(seq -f "%03.0f" 1 "$LB_DIRS"); do
    seq -f "d$d/f%04.0f.txt" 1 "$LB_PER_DIR"
done >"$WORK/keys-tree"
check "put $((LB_DIRS * LB_PER_DIR)) objects in $LB_DIRS directories of $TREE" \
    upload_objects "$TREE" "$WORK/keys-tree" || die "cannot fill the tree bucket"
record ok "put $((LB_DIRS * LB_PER_DIR)) objects: $(secs_since "$t0") s"

for t in $LB_TOOLS; do
    bench_flat "$t"
done
for t in $LB_TOOLS; do
    bench_tree "$t"
done
case " $LB_TOOLS " in *" skyfs "*) bench_search ;; esac
write_results
