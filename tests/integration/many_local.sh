#!/usr/bin/env bash
# many_local.sh - many machines, one cloud (issue 17) on a local cloud: two
# mounts with their own caches race on the same folder (many_lib.sh).  A
# filesystem has no conditional rename: the version is compared with a stat
# right before the final rename (skyfs status: the weaker guarantee).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/many_lib.sh"

mkdir -p "$TEST_TMP/data"
many_run "type = local
path = $TEST_TMP/data" compare
