#!/usr/bin/env bash
# many_webdav.sh - many machines, one cloud (issue 17) on a webdav cloud:
# two mounts with their own caches race on one folder of Apache mod_dav
# (webdav_lib.sh; the races are many_lib.sh's).  skyfs sends no WebDAV
# preconditions yet: fs/ compares the version (the server's ETag) with a
# stat right before each upload and delete (skyfs status: the weaker
# guarantee).  This shows that guarantee holds on a real server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webdav_lib.sh"
. "$(dirname "$0")/many_lib.sh"

APORT=$(free_port)
start_apache_dav "$TEST_TMP/apache" "$APORT" basic || die "cannot start apache2"
many_run "$(webdav_cloud c "http://127.0.0.1:$APORT/dav/" "$DAV_USER" "$DAV_PASS" | sed 1d)" compare
