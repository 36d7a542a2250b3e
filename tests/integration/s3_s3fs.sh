#!/usr/bin/env bash
# s3_s3fs.sh - skyfs and s3fs mounted on the same bucket (s3rver).
#
# Files, directories and symlinks written through either mount must be
# read through the other one with the same content, mode and mtime: both
# keep POSIX metadata in x-amz-meta-mode/-mtime (and dir/ markers,
# symlink bodies).  s3fs caches stat answers, so it runs with a short
# stat cache and reads after the writes have been flushed.
. "$(dirname "$0")/lib.sh"

command -v s3fs >/dev/null || die "s3fs is missing (run make deps)"

PORT=$(free_port)
ENDPOINT="http://127.0.0.1:$PORT"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
S3FS="$TEST_TMP/s3fs"

# s3rver makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3
# only offers through its legacy provider.
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket shared || die "cannot start s3rver"
mkdir -p "$S3FS"
write_s3_config "$CONF" "$ENDPOINT" shared "ttl = 1s"
(umask 077 && echo "S3RVER:S3RVER" >"$TEST_TMP/passwd")

mount_skyfs "$CONF" "$MNT" || die "cannot mount skyfs"
SKY="$MNT/s3"

s3fs shared "$S3FS" -o "url=$ENDPOINT" -o use_path_request_style \
    -o "passwd_file=$TEST_TMP/passwd" -o stat_cache_expire=1 -o use_xattr \
    -o dbglevel=warn -o logfile="$LOGS/s3fs.log" >"$LOGS/s3fs.out" 2>&1
check "s3fs mounts the same bucket" wait_until 10 mountpoint -q "$S3FS"
# shellcheck disable=SC2317 # called by the EXIT trap
unmount_s3fs() {
    mountpoint -q "$S3FS" || return 0
    fusermount3 -u "$S3FS" 2>/dev/null || fusermount -u "$S3FS" 2>/dev/null || umount -l "$S3FS"
}
# shellcheck disable=SC2154 # rc is set inside the trap
trap 'rc=$?; unmount_s3fs; (exit $rc); _sky_exit' EXIT

# attrs PATH: "mode mtime-ns size" as lstat sees it.
attrs() { stat -c '%a %.9Y %s' "$1" 2>&1; }

# --- written by skyfs, read by s3fs
mkdir -p "$SKY/fromsky"
printf 'written by skyfs\n' >"$SKY/fromsky/file.txt"
chmod 0640 "$SKY/fromsky/file.txt"
touch -d '2020-01-02 03:04:05.500000000 UTC' "$SKY/fromsky/file.txt"
mkdir -m 0750 "$SKY/fromsky/dir"
ln -s file.txt "$SKY/fromsky/link"
sync
sky_file=$(attrs "$SKY/fromsky/file.txt")
check "s3fs sees the file" wait_until 15 test -f "$S3FS/fromsky/file.txt"
check_eq "s3fs reads skyfs's content" "written by skyfs" "$(cat "$S3FS/fromsky/file.txt" 2>&1)"
check_eq "s3fs sees skyfs's mode, mtime and size" "$sky_file" \
    "$(wait_until 15 eval '[ "$(attrs "$S3FS/fromsky/file.txt")" = "$sky_file" ]'
       attrs "$S3FS/fromsky/file.txt")"
check_eq "s3fs sees skyfs's directory with its mode" "750 directory" \
    "$(stat -c '%a %F' "$S3FS/fromsky/dir" 2>&1)"
check_eq "s3fs sees skyfs's symlink" "file.txt" "$(readlink "$S3FS/fromsky/link" 2>&1)"

# --- written by s3fs, read by skyfs
mkdir -p "$S3FS/froms3fs"
printf 'written by s3fs\n' >"$S3FS/froms3fs/file.txt"
chmod 0604 "$S3FS/froms3fs/file.txt"
touch -d '2019-05-06 07:08:09.123456789 UTC' "$S3FS/froms3fs/file.txt"
mkdir -m 0700 "$S3FS/froms3fs/dir"
ln -s file.txt "$S3FS/froms3fs/link"
sync
s3fs_file=$(attrs "$S3FS/froms3fs/file.txt")
check_eq "s3fs kept its own mode and mtime" "604 1557126489.123456789 16" "$s3fs_file"
check "skyfs sees the file after the TTL" wait_until 15 test -f "$SKY/froms3fs/file.txt"
check_eq "skyfs reads s3fs's content" "written by s3fs" "$(cat "$SKY/froms3fs/file.txt" 2>&1)"
check_eq "skyfs sees s3fs's mode, mtime and size" "$s3fs_file" \
    "$(wait_until 15 eval '[ "$(attrs "$SKY/froms3fs/file.txt")" = "$s3fs_file" ]'
       attrs "$SKY/froms3fs/file.txt")"
check_eq "skyfs sees s3fs's directory with its mode" "700 directory" \
    "$(stat -c '%a %F' "$SKY/froms3fs/dir" 2>&1)"
check_eq "skyfs sees s3fs's symlink" "file.txt" "$(readlink "$SKY/froms3fs/link" 2>&1)"
check_eq "skyfs follows s3fs's symlink" "written by s3fs" "$(cat "$SKY/froms3fs/link" 2>&1)"

# --- changes through one mount seen by the other
chmod 0600 "$S3FS/fromsky/file.txt"
check "a chmod by s3fs is seen by skyfs" \
    wait_until 15 eval '[ "$(stat -c %a "$SKY/fromsky/file.txt")" = 600 ]'
printf 'rewritten by skyfs\n' >"$SKY/froms3fs/file.txt"
sync
check "a rewrite by skyfs is read by s3fs" \
    wait_until 15 eval '[ "$(cat "$S3FS/froms3fs/file.txt")" = "rewritten by skyfs" ]'

# --- s3fs's xattrs (its x-amz-meta-xattr JSON) and special files
printf 'tagged\n' >"$S3FS/froms3fs/tagged"
check "s3fs sets two xattrs" eval 'setfattr -n user.color -v blue "$S3FS/froms3fs/tagged" &&
    setfattr -n user.size -v 12345 "$S3FS/froms3fs/tagged"'
sync
check_eq "skyfs reads s3fs's xattrs as user.* items" "user.color=\"blue\"|user.size=\"12345\"" \
    "$(wait_until 15 eval 'getfattr -n user.size "$SKY/froms3fs/tagged" >/dev/null 2>&1'
       getfattr -d "$SKY/froms3fs/tagged" 2>/dev/null | grep '^user\.' | grep -v '^user.skyfs' |
       LC_ALL=C sort | paste -sd'|')"
check "skyfs changes one of them" setfattr -n user.color -v green "$SKY/froms3fs/tagged"
check_eq "s3fs sees the change and still the other one" "user.color=\"green\"|user.size=\"12345\"" \
    "$(wait_until 15 eval '[ "$(getfattr --only-values -n user.color "$S3FS/froms3fs/tagged" 2>/dev/null)" = green ]'
       getfattr -d "$S3FS/froms3fs/tagged" 2>/dev/null | grep '^user\.' | LC_ALL=C sort | paste -sd'|')"
check "skyfs removes the other" setfattr -x user.size "$SKY/froms3fs/tagged"
check_eq "skyfs no longer lists it" "user.color" \
    "$(getfattr -d "$SKY/froms3fs/tagged" 2>/dev/null | grep -o '^user\.[a-z]*' | grep -v '^user.skyfs' | paste -sd,)"
check_eq "nor does s3fs" "user.color" \
    "$(wait_until 15 eval '! getfattr -n user.size "$S3FS/froms3fs/tagged" >/dev/null 2>&1'
       getfattr -d "$S3FS/froms3fs/tagged" 2>/dev/null | grep -o '^user\.[a-z]*' | paste -sd,)"

check "s3fs makes a FIFO and a device" eval 'mkfifo -m 0620 "$S3FS/froms3fs/fifo" &&
    mknod -m 0600 "$S3FS/froms3fs/dev" c 4 5'
# (s3fs keeps a device's type in x-amz-meta-mode but not its number; it
# makes a FIFO in two requests, the object with mode 644, then the mode:
# a stat between them sees the first, for the ttl)
fifo_mode_is() { [ "$(stat -c '%F %a' "$SKY/froms3fs/fifo" 2>&1)" = "$1" ]; }
check_eq "skyfs sees s3fs's FIFO and device" "fifo 620|character special file 600" \
    "$(wait_until 15 fifo_mode_is "fifo 620"
       for f in fifo dev; do stat -c '%F %a' "$SKY/froms3fs/$f" 2>&1; done | paste -sd'|')"
check "skyfs makes a FIFO and a socket" eval 'mkfifo -m 0640 "$SKY/fromsky/fifo" &&
    "$PYTHON" -c "import os, stat, sys; os.mknod(sys.argv[1], 0o600 | stat.S_IFSOCK)" "$SKY/fromsky/sock"'
check_eq "s3fs sees skyfs's FIFO and socket" "fifo 640|socket 600" \
    "$(wait_until 15 test -p "$S3FS/fromsky/fifo"
       for f in fifo sock; do stat -c '%F %a' "$S3FS/fromsky/$f" 2>&1; done | paste -sd'|')"

unmount_s3fs
unmount_skyfs "$MNT"
