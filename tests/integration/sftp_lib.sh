# shellcheck shell=bash
# sftp_lib.sh - OpenSSH's own sshd for the sftp_* tests.  Source it after
# lib.sh.  The tests run as root; sshd runs as root too, in the foreground,
# on 127.0.0.1, with everything it needs in the test's own directory:
#
#   start_sshd DIR PORT
#       makes in DIR a host key (host_ed25519), a login key for root
#       (client_ed25519, authorized in DIR/authorized_keys), sshd_config
#       (UsePAM no, internal-sftp, password logins allowed for users that
#       have a password) and known_hosts (the host key as `ssh-keyscan`
#       prints it); starts `sshd -D -e -f DIR/sshd_config`, waits until it
#       answers, and leaves its pid to stop_servers.  Records one check;
#       returns 1 on failure.  Its log: $LOGS/sshd-PORT.log.
#   sftp_cloud NAME PORT DIR [PATH]
#       prints the config section of an sftp cloud NAME logging in as root
#       with DIR's key, checking the host key against DIR/known_hosts, its
#       root at PATH on the server (ttl $SFTP_TTL, default 1s).

start_sshd() {
    local dir=$1 port=$2 log="$LOGS/sshd-$2.log" pid
    local sshd=/usr/sbin/sshd
    [ -x "$sshd" ] || { record FAIL "start sshd: $sshd is missing (run make deps)"; return 1; }
    command -v ssh-keygen >/dev/null && command -v ssh-keyscan >/dev/null ||
        { record FAIL "start sshd: ssh-keygen/ssh-keyscan missing (run make deps)"; return 1; }
    mkdir -p "$dir" /run/sshd
    chmod 700 "$dir"
    ssh-keygen -q -t ed25519 -N '' -C skyfs-test-host -f "$dir/host_ed25519" </dev/null ||
        { record FAIL "start sshd: ssh-keygen failed"; return 1; }
    ssh-keygen -q -t ed25519 -N '' -C skyfs-test-client -f "$dir/client_ed25519" </dev/null
    cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
    cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_ed25519
PidFile none
UsePAM no
PermitRootLogin prohibit-password
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
MaxStartups 100
MaxSessions 32
LogLevel VERBOSE
EOF
    "$sshd" -D -e -f "$dir/sshd_config" >"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >>"$_SKY_PIDS"
    local end=$((SECONDS + 30))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "(sshd exited before answering)" >>"$log"
            record FAIL "start sshd on port $port" "$log"
            return 1
        fi
        if ssh-keyscan -T 2 -p "$port" -t ed25519 127.0.0.1 >"$dir/known_hosts" 2>/dev/null &&
           [ -s "$dir/known_hosts" ]; then
            record ok "start sshd on port $port"
            return 0
        fi
        if [ $SECONDS -ge $end ]; then
            echo "(sshd did not answer on port $port within 30 s)" >>"$log"
            record FAIL "start sshd on port $port" "$log"
            return 1
        fi
        sleep 0.2
    done
}

sftp_cloud() {
    local name=$1 port=$2 dir=$3 path=${4:-}
    printf '[%s]\ntype = sftp\nhost = 127.0.0.1\nport = %s\nuser = root\n' "$name" "$port"
    printf 'key_file = %s\nknown_hosts = %s\n' "$dir/client_ed25519" "$dir/known_hosts"
    [ -n "$path" ] && printf 'path = %s\n' "$path"
    printf 'ttl = %s\n' "${SFTP_TTL:-1s}"
}
