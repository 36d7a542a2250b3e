#!/usr/bin/env bash
# webdav_auth.sh - signing in to WebDAV servers, and WebDAV config errors.
#
# Checks:
#   - Digest (Apache) and Basic (rclone serve webdav) with the right
#     password list and write;
#   - a wrong password, an unknown user and no credentials at all give
#     EACCES on that cloud only, with a log line that says "wrong user or
#     password" (or that credentials are missing) and never the password;
#   - `skyfs config check` and mount refuse, with one line naming the file,
#     the line and the fix: a missing or non-HTTP url, credentials inside
#     the url, an unknown vendor, a password without user, user and
#     bearer_token together, and a password in a config others can read.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/webdav_lib.sh"

APORT=$(free_port)
RPORT=$(free_port)
MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
AURL="http://127.0.0.1:$APORT/dav/"
RURL="http://127.0.0.1:$RPORT/"

start_apache_dav "$TEST_TMP/apache" "$APORT" digest || die "cannot start apache2"
start_rclone_dav "$TEST_TMP/rclone" "$RPORT" || die "cannot start rclone serve webdav"

mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF2
[cache]
dir = $TEST_TMP/cache

$(webdav_cloud dav "$AURL" "$DAV_USER" "$DAV_PASS")
ttl = 1s

$(webdav_cloud davbad "$AURL" "$DAV_USER" "not-the-password-31337")
ttl = 1s

$(webdav_cloud davnobody "$AURL" mallory "wonder land")
ttl = 1s

[davanon]
type = webdav
url = $AURL
ttl = 1s

$(webdav_cloud rc "$RURL" bob builder)
ttl = 1s

$(webdav_cloud rcbad "$RURL" bob "wrong-builder-4242")
ttl = 1s
EOF2
)
check "the config passes config check" "$SKYFS" config check -c "$CONF"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"

check "Digest: write with the right password" eval "echo digest >'$MNT/dav/in.txt'"
check_eq "Digest: read back" digest "$(cat "$MNT/dav/in.txt" 2>&1)"
check_eq "Digest: listing" in.txt "$(ls "$MNT/dav" 2>&1)"
check "Basic: write with the right password" eval "echo basic >'$MNT/rc/in.txt'"
check_eq "Basic: read back" basic "$(cat "$MNT/rc/in.txt" 2>&1)"

for cloud in davbad davnobody rcbad; do
    check_eq "$cloud: a wrong user or password gives EACCES" EACCES \
        "$(errno_of listdir "$MNT/$cloud")"
    check "$cloud: the log says the server refused the user name or password" \
        grep -q "webdav '$cloud':.*401.*wrong user or password" "$LOGS/mnt.log"
done
check_eq "no credentials: EACCES" EACCES "$(errno_of listdir "$MNT/davanon")"
check "no credentials: the log says to set user and password" \
    grep -q "webdav 'davanon':.*401.*set user and password" "$LOGS/mnt.log"
check "no password appears in the log" \
    eval "! grep -qE 'not-the-password-31337|wrong-builder-4242|wonder land|builder\\b' '$LOGS/mnt.log'"
check "the good clouds still work next to the refused ones" \
    eval "[ \"\$(cat '$MNT/dav/in.txt')\" = digest ] && [ \"\$(cat '$MNT/rc/in.txt')\" = basic ]"
unmount_skyfs "$MNT"

# --- config errors
# config_error CASE PATTERN BODY: a config with the webdav section BODY must
# be refused by config check with one line matching PATTERN.
config_error() {
    local case=$1 pattern=$2 body=$3 conf="$TEST_TMP/$1.conf" err="$TEST_TMP/$1.err"
    (umask 077 && printf '[cache]\ndir = %s\n\n[w]\ntype = webdav\n%s\n' \
        "$TEST_TMP/cache" "$body" >"$conf")
    if "$SKYFS" config check -c "$conf" >/dev/null 2>"$err"; then
        echo "(config check accepted it)" >>"$err"
        record FAIL "$case: config check refuses it" "$err"
        return
    fi
    if [ "$(grep -c . "$err")" -eq 1 ] && grep -qE -- "$pattern" "$err"; then
        record ok "$case: one line: $(head -c 160 "$err")"
    else
        echo "(wanted one line matching /$pattern/)" >>"$err"
        record FAIL "$case: config check says what is wrong" "$err"
    fi
}
config_error no-url "$TEST_TMP/no-url.conf:[0-9]+.*url" "user = a"
config_error ftp-url "no-url|ftp-url.conf:6: url = ftp://h/ is not an http:// or https:// URL" \
    "url = ftp://h/"
config_error creds-in-url "creds-in-url.conf:6: url holds a user name or password" \
    "url = https://bob:secret@h/dav/"
check "the message does not repeat the password in the url" \
    eval "! grep -q secret '$TEST_TMP/creds-in-url.err'"
config_error bad-vendor "bad-vendor.conf:7: vendor = sharepoint is not known; write nextcloud, owncloud or other" \
    "url = https://h/dav/
vendor = sharepoint"
config_error password-no-user "password-no-user.conf:7: password is set but user is not" \
    "url = https://h/dav/
password = x"
config_error user-and-token "user-and-token.conf:8: both user and bearer_token" \
    "url = https://h/dav/
user = a
bearer_token = t"
check "a good webdav section with bearer_token and vendor passes config check" \
    eval "(umask 077 && printf '[cache]\ndir = %s\n\n[w]\ntype = webdav\nurl = https://h/remote.php/dav/files/a/\nbearer_token = tok\nvendor = nextcloud\n' '$TEST_TMP/cache' >'$TEST_TMP/token.conf') && '$SKYFS' config check -c '$TEST_TMP/token.conf'"
printf '[cache]\ndir = %s\n\n[w]\ntype = webdav\nurl = https://h/dav/\nuser = a\npassword = p\n' \
    "$TEST_TMP/cache" >"$TEST_TMP/open.conf"
chmod 0644 "$TEST_TMP/open.conf"
check_eq "a password in a config others can read is refused (chmod 600 asked)" 1 \
    "$("$SKYFS" config check -c "$TEST_TMP/open.conf" 2>&1 | grep -c 'readable by others.*chmod 600')"
