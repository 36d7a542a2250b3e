#!/usr/bin/env bash
# crawl.sh - what the background crawl's SQLite side costs for N objects
# (default 1,000,000): builds tests/bench/crawl_store.c against
# $BUILD/libskyfs.a and runs it on a fresh metadata cache in a temporary
# folder (a first crawl, then a refresh with 1% of the objects gone).
# The LIST side is measured on s3rver by
# tests/integration/search_crawl_scale.sh.
#
#     tests/bench/crawl.sh [N]
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
N=${1:-1000000}
[ -f "$BUILD/libskyfs.a" ] || { echo "crawl.sh: $BUILD/libskyfs.a is missing (run make)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/skyfs-bench-crawl-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# shellcheck disable=SC2046 # one word per library flag
cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
    -o "$WORK/crawl_store" "$ROOT/tests/bench/crawl_store.c" "$BUILD/libskyfs.a" \
    $(pkg-config --libs fuse3 libcurl openssl sqlite3 libxxhash expat json-c) -lpthread ||
    { echo "crawl.sh: cannot build crawl_store" >&2; exit 1; }
mkdir -p "$WORK/cache"
"$WORK/crawl_store" "$WORK/cache" "$N" || exit 1
echo "metadata cache after both: $(du -sh "$WORK/cache" | cut -f1)"
