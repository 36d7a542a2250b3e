#!/usr/bin/env bash
# many_sftp.sh - many machines, one cloud (issue 17) on an SFTP cloud: two
# mounts with their own caches race on one directory of a local OpenSSH
# server (sftp_lib.sh; the races are many_lib.sh's).  SFTP has no
# conditional rename: the driver compares the version (size + mtime) with
# a stat right before the final rename of an upload, and fs/ before a
# delete (skyfs status: the weaker guarantee, with that reason).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp_lib.sh"
. "$(dirname "$0")/many_lib.sh"

PORT=$(free_port)
SSHD="$TEST_TMP/sshd"
mkdir -p "$TEST_TMP/remote"
start_sshd "$SSHD" "$PORT" || die "cannot start sshd"
MANY_XATTRS=no      # SFTP has no extended attributes in skyfs
many_run "$(sftp_cloud c "$PORT" "$SSHD" "$TEST_TMP/remote" | sed '1d; /^ttl = /d')" compare
check "skyfs status --json names the compare before the final rename" bash -c \
    "'$SKYFS' status -c '$TEST_TMP/b.conf' --json | grep -q 'a stat compare right before the final rename'"
