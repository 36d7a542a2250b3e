#!/usr/bin/env bash
# many_webdav.sh - many machines, one cloud (issue 17) on a webdav cloud:
# two mounts with their own caches race on one folder of Apache mod_dav
# (webdav_lib.sh; the races are many_lib.sh's).  An upload goes to a
# temporary name and then MOVEs into place: a new file's MOVE says
# Overwrite: F (the server refuses to replace: shown here with curl on
# Apache itself), a replacement compares the version (the server's ETag)
# with a PROPFIND right before the MOVE, and fs/ does the same before a
# delete (skyfs status: the weaker guarantee, with that reason).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webdav_lib.sh"
. "$(dirname "$0")/many_lib.sh"

APORT=$(free_port)
start_apache_dav "$TEST_TMP/apache" "$APORT" basic || die "cannot start apache2"
DAV="http://127.0.0.1:$APORT/dav"
dav() { curl -s -o /dev/null -w '%{http_code}' --user "$DAV_USER:$DAV_PASS" "$@"; }
dav -X PUT --data-binary one "$DAV/probe-a" >/dev/null
dav -X PUT --data-binary two "$DAV/probe-b" >/dev/null
check_eq "Apache refuses a MOVE with Overwrite: F onto a file (412)" 412 \
    "$(dav -X MOVE -H "Destination: $DAV/probe-b" -H 'Overwrite: F' "$DAV/probe-a")"
check_eq "and the file keeps its content" two \
    "$(curl -s --user "$DAV_USER:$DAV_PASS" "$DAV/probe-b")"
dav -X DELETE "$DAV/probe-a" >/dev/null
dav -X DELETE "$DAV/probe-b" >/dev/null
many_run "$(webdav_cloud c "http://127.0.0.1:$APORT/dav/" "$DAV_USER" "$DAV_PASS" | sed 1d)" compare
check "skyfs status --json names Overwrite: F and the compare before the MOVE" bash -c \
    "'$SKYFS' status -c '$TEST_TMP/b.conf' --json | grep -q 'MOVE Overwrite: F'"
check_fails "no temporary upload is left on the server" bash -c \
    "find '$TEST_TMP/apache/data' -name '.skyfs*' | grep -q ."
