# shellcheck shell=bash
# webdav_lib.sh - the WebDAV servers of the webdav_*.sh tests; source it
# after lib.sh.
#
#   start_apache_dav DIR PORT basic|digest
#       Apache httpd (Debian apache2) in the foreground with mod_dav and
#       mod_dav_fs, its config, pid file, lock database and logs under DIR,
#       serving DIR/data at http://127.0.0.1:PORT/dav/ to user "alice",
#       password "wonder land" (Basic or Digest, from an htpasswd or
#       htdigest file made here).  Apache drops root for www-data: DIR/data
#       belongs to www-data, and the test's directories are opened for it
#       to pass through (o+x).  apache_fix_owner hands files written
#       straight into DIR/data (the tests' "changes on the server") over.
#   start_rclone_dav DIR PORT
#       `rclone serve webdav` of DIR on http://127.0.0.1:PORT/, user
#       "bob", password "builder" (Basic).  rclone keeps its own listings
#       for --dir-cache-time (5 minutes by default): 1 s here, so files put
#       into DIR directly show in its answers at once.
#   webdav_cloud NAME URL USER PASSWORD
#       The config section of a webdav cloud, for a test's heredoc.
#
# A missing server program is a failed check, never a skip.

DAV_USER=alice
DAV_PASS="wonder land"
APACHE_MODULES=/usr/lib/apache2/modules

start_apache_dav() {
    local dir=$1 port=$2 auth=$3 d
    command -v apache2 >/dev/null || [ -x /usr/sbin/apache2 ] ||
        { record FAIL "start apache2: not installed (run make deps)"; return 1; }
    mkdir -p "$dir/data" "$dir/run" "$dir/lock"
    # www-data must pass through the test's directories to its own
    d=$dir
    while [ "$d" != / ] && [ "$d" != /tmp ]; do
        chmod o+x "$d"
        d=$(dirname "$d")
    done
    chown -R www-data:www-data "$dir/data" "$dir/run" "$dir/lock"
    local authconf
    if [ "$auth" = digest ]; then
        # htdigest asks for the password twice on its terminal: write the
        # line it would write, user:realm:md5(user:realm:password)
        printf '%s:skyfs-test:%s\n' "$DAV_USER" \
            "$(printf '%s' "$DAV_USER:skyfs-test:$DAV_PASS" | md5sum | cut -d' ' -f1)" \
            >"$dir/users"
        authconf="AuthType Digest
        AuthName skyfs-test
        AuthDigestDomain /dav/
        AuthDigestProvider file"
    else
        htpasswd -bc "$dir/users" "$DAV_USER" "$DAV_PASS" >/dev/null 2>&1 ||
            { record FAIL "htpasswd for apache2"; return 1; }
        authconf="AuthType Basic
        AuthName skyfs-test
        AuthBasicProvider file"
    fi
    chmod 644 "$dir/users"
    cat >"$dir/httpd.conf" <<CONF
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$dir/run/httpd.pid"
DefaultRuntimeDir "$dir/run"
Mutex file:$dir/lock default
ErrorLog "$LOGS/apache-$port.error.log"
LogLevel warn
User www-data
Group www-data
LoadModule mpm_event_module $APACHE_MODULES/mod_mpm_event.so
LoadModule authz_core_module $APACHE_MODULES/mod_authz_core.so
LoadModule authz_user_module $APACHE_MODULES/mod_authz_user.so
LoadModule authn_core_module $APACHE_MODULES/mod_authn_core.so
LoadModule authn_file_module $APACHE_MODULES/mod_authn_file.so
LoadModule auth_basic_module $APACHE_MODULES/mod_auth_basic.so
LoadModule auth_digest_module $APACHE_MODULES/mod_auth_digest.so
LoadModule alias_module $APACHE_MODULES/mod_alias.so
LoadModule dav_module $APACHE_MODULES/mod_dav.so
LoadModule dav_fs_module $APACHE_MODULES/mod_dav_fs.so
StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
KeepAlive On
MaxKeepAliveRequests 0
Timeout 60
LimitRequestBody 0
DavLockDB "$dir/lock/davlock"
DocumentRoot "$dir/data"
Alias /dav "$dir/data"
<Directory "$dir/data">
    Dav On
    $authconf
    AuthUserFile "$dir/users"
    Require valid-user
</Directory>
CONF
    _start_server apache2 "$port" "http://127.0.0.1:$port/dav/" \
        /usr/sbin/apache2 -f "$dir/httpd.conf" -DFOREGROUND
}

# apache_fix_owner DIR: files written into DIR/data by the test go to www-data.
apache_fix_owner() {
    chown -R www-data:www-data "$1/data"
}

start_rclone_dav() {
    local dir=$1 port=$2
    command -v rclone >/dev/null ||
        { record FAIL "start rclone serve webdav: rclone not installed (run make deps)"; return 1; }
    mkdir -p "$dir"
    _start_server rclone-webdav "$port" "http://127.0.0.1:$port/" \
        env RCLONE_CONFIG=/dev/null rclone serve webdav --addr "127.0.0.1:$port" \
        --user bob --pass builder --dir-cache-time 1s --log-level NOTICE "$dir"
}

webdav_cloud() {
    printf '[%s]\ntype = webdav\nurl = %s\nuser = %s\npassword = "%s"\n' "$1" "$2" "$3" "$4"
}
