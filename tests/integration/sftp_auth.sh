#!/usr/bin/env bash
# sftp_auth.sh - host key checks and logins of SFTP clouds (OpenSSH's sshd).
#
# One sshd on 127.0.0.1; clouds that differ only in how they trust the
# server and log in.  Checks:
#   - an unknown host key (not in known_hosts) and a changed one (another
#     key for the host) are refused with EACCES, for that cloud only, with
#     a message that shows the key's SHA256 fingerprint and how to trust
#     it; following that advice (ssh-keyscan) makes the cloud work;
#   - a pinned host_key fingerprint is checked instead of known_hosts: the
#     right one works, a wrong one is refused, showing the real one;
#   - password logins: the right password works, a wrong one is refused
#     with a clear message; no password appears in any log;
#   - a private key with a passphrase logs in with key_passphrase, a wrong
#     passphrase is refused naming the key; agent = true logs in with a key
#     only a running ssh-agent holds (SSH_AUTH_SOCK);
#   - bad settings are refused by `skyfs config check` naming the file,
#     the line and the fix: a private key readable by others, no way to
#     log in, a malformed host_key, a bad port.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/users_lib.sh"
. "$(dirname "$0")/sftp_lib.sh"

PORT=$(free_port)
SSHD="$TEST_TMP/sshd"
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
USER_NAME=skyfs-sftp-test
mkdir -p "$TEST_TMP/cache" "$TEST_TMP/remote"

start_sshd "$SSHD" "$PORT" || die "cannot start sshd"
FP=$(ssh-keygen -lf "$SSHD/host_ed25519.pub" | awk '{ print $2 }')
check "the host key has a SHA256 fingerprint" eval '[[ "$FP" == SHA256:* ]]'

# known_hosts files: empty, and one holding another key for the server
: >"$TEST_TMP/known_empty"
cp "$TEST_TMP/known_empty" "$TEST_TMP/known_later"
ssh-keygen -q -t ed25519 -N '' -f "$TEST_TMP/other_host" </dev/null
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1-2 "$TEST_TMP/other_host.pub")" >"$TEST_TMP/known_changed"

# a user with a password (sshd: PasswordAuthentication yes, UsePAM no)
test_user "$USER_NAME" >/dev/null || die "cannot create the test user"
PASSWORD="right-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
WRONG="wrong-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
check "set the test user's password" bash -c "echo '$USER_NAME:$PASSWORD' | chpasswd"
user_dir "$USER_NAME" "$TEST_TMP/userhome"

# a key with a passphrase, and a key only an ssh-agent holds
PHRASE="phrase-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
ssh-keygen -q -t ed25519 -N "$PHRASE" -C skyfs-test-phrase -f "$TEST_TMP/phrase_key" </dev/null
ssh-keygen -q -t ed25519 -N '' -C skyfs-test-agent -f "$TEST_TMP/agent_key" </dev/null
cat "$TEST_TMP/phrase_key.pub" "$TEST_TMP/agent_key.pub" >>"$SSHD/authorized_keys"
eval "$(ssh-agent -s -a "$TEST_TMP/agent.sock")" >/dev/null || die "cannot start ssh-agent"
echo "$SSH_AGENT_PID" >>"$_SKY_PIDS"
check "the agent takes the key" ssh-add -q "$TEST_TMP/agent_key"
rm -f "$TEST_TMP/agent_key"     # from now on only the agent has it

section() { # NAME KNOWN_HOSTS [extra lines...]
    local name=$1 known=$2; shift 2
    printf '\n[%s]\ntype = sftp\nhost = 127.0.0.1\nport = %s\nuser = root\n' "$name" "$PORT"
    printf 'key_file = %s\nknown_hosts = %s\npath = %s\nttl = 1s\nnegative_ttl = 1s\n' \
        "$SSHD/client_ed25519" "$known" "$TEST_TMP/remote"
    printf '%s\n' "$@"
}
(umask 077 && {
    printf '[cache]\ndir = %s\n' "$TEST_TMP/cache"
    section good "$SSHD/known_hosts"
    section unknown "$TEST_TMP/known_empty"
    section later "$TEST_TMP/known_later"
    section changed "$TEST_TMP/known_changed"
    section pinned "$TEST_TMP/known_empty" "host_key = $FP"
    section badpin "$SSHD/known_hosts" \
        "host_key = SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    login() { # NAME LINES...: a cloud on the good known_hosts, logging in as LINES say
        local name=$1; shift
        printf '\n[%s]\ntype = sftp\nhost = 127.0.0.1\nport = %s\nuser = root\n' "$name" "$PORT"
        printf 'known_hosts = %s\npath = %s\nttl = 1s\n' "$SSHD/known_hosts" "$TEST_TMP/remote"
        printf '%s\n' "$@"
    }
    login phrase "key_file = $TEST_TMP/phrase_key" "key_passphrase = $PHRASE"
    login badphrase "key_file = $TEST_TMP/phrase_key" "key_passphrase = $WRONG"
    login agent "agent = true"
    printf '\n[pw]\ntype = sftp\nhost = 127.0.0.1\nport = %s\nuser = %s\npassword = %s\n' \
        "$PORT" "$USER_NAME" "$PASSWORD"
    printf 'known_hosts = %s\npath = %s\nttl = 1s\n' "$SSHD/known_hosts" "$TEST_TMP/userhome"
    printf '\n[badpw]\ntype = sftp\nhost = 127.0.0.1\nport = %s\nuser = %s\npassword = %s\n' \
        "$PORT" "$USER_NAME" "$WRONG"
    printf 'known_hosts = %s\npath = %s\nttl = 1s\n' "$SSHD/known_hosts" "$TEST_TMP/userhome"
} >"$CONF")
check "config check accepts the config" "$SKYFS" config check -c "$CONF"
# before the mount: its crawl's listing, a second old, would hide a file
# made after it for the ttl
echo hello >"$TEST_TMP/remote/hello.txt"
mount_skyfs "$CONF" "$MNT" || die "cannot mount $CONF"
LOG="$LOGS/mnt.log"

check_eq "a cloud with the right known_hosts lists the server" "hello.txt" "$(ls "$MNT/good" 2>&1)"

# --- unknown host key
check_eq "an unknown host key is refused with EACCES" EACCES "$(errno_of listdir "$MNT/unknown")"
check "the log says the key is unknown and shows its fingerprint" \
    grep -qF "the host key of [127.0.0.1]:$PORT is unknown (ssh-ed25519 $FP is not in $TEST_TMP/known_empty)" "$LOG"
check "the message says how to trust it" \
    grep -qF "trust it with \`ssh-keyscan -p $PORT 127.0.0.1 >> $TEST_TMP/known_empty\` or set host_key = $FP" "$LOG"
check_eq "a file put there was not read" "" "$(ls "$MNT/unknown" 2>/dev/null)"
check_eq "the other clouds still work" "hello" "$(cat "$MNT/good/hello.txt" 2>&1)"
check_eq "'later' is refused until its key is trusted" EACCES "$(errno_of listdir "$MNT/later")"
ssh-keyscan -p "$PORT" 127.0.0.1 >>"$TEST_TMP/known_later" 2>/dev/null
check "after ssh-keyscan (as the message says) the cloud works" \
    wait_until 10 eval '[ "$(ls "$MNT/later" 2>/dev/null)" = hello.txt ]'

# --- changed host key
check_eq "a changed host key is refused with EACCES" EACCES "$(errno_of listdir "$MNT/changed")"
check "the log says it CHANGED, shows the new fingerprint and how to remove the old key" \
    grep -qF "the host key of [127.0.0.1]:$PORT CHANGED: it is now ssh-ed25519 $FP" "$LOG"
check "... with ssh-keygen -R" \
    grep -qF "ssh-keygen -R '[127.0.0.1]:$PORT' -f $TEST_TMP/known_changed" "$LOG"

# --- pinned fingerprints
check_eq "a pinned host_key that matches works (known_hosts not used)" "hello.txt" \
    "$(ls "$MNT/pinned" 2>&1)"
check_eq "a pinned host_key that does not match is refused" EACCES \
    "$(errno_of listdir "$MNT/badpin")"
check "the message shows the server's real fingerprint" \
    grep -qF "is ssh-ed25519 $FP, not the host_key = SHA256:AAAA" "$LOG"

# --- passwords
check_eq "the right password logs in" "" "$(ls -A "$MNT/pw" 2>&1)"
check "a file written over the password login" eval 'echo mine >"$MNT/pw/mine.txt"'
check_eq "lands on the server owned by that user" "$USER_NAME mine" \
    "$(stat -c %U "$TEST_TMP/userhome/mine.txt" 2>&1) $(cat "$TEST_TMP/userhome/mine.txt" 2>&1)"
check_eq "a wrong password is refused with EACCES" EACCES "$(errno_of listdir "$MNT/badpw")"
check "the log says the server refused the password" \
    grep -qF "sftp 'badpw': 127.0.0.1:$PORT refused the login of user '$USER_NAME' (tried the password)" "$LOG"
# --- key passphrases and the agent
check_eq "a key with a passphrase logs in with key_passphrase" "hello.txt" "$(ls "$MNT/phrase" 2>&1)"
check_eq "a wrong key_passphrase is refused with EACCES" EACCES "$(errno_of listdir "$MNT/badphrase")"
check "the log names the key and the wrong passphrase" \
    grep -qF "sftp 'badphrase': cannot load the private key $TEST_TMP/phrase_key (wrong key_passphrase, or not a key)" "$LOG"
check_eq "agent = true logs in with the agent's key" "hello.txt" "$(ls "$MNT/agent" 2>&1)"
check "the server saw the agent's key log in" grep -q "Accepted publickey for root .*$(ssh-keygen -lf "$TEST_TMP/agent_key.pub" | awk '{ print $2 }')" "$LOGS/sshd-$PORT.log"
check_eq "no password or passphrase appears in any log" "" \
    "$(grep -rlF -e "$PASSWORD" -e "$WRONG" -e "$PHRASE" "$LOGS" 2>/dev/null)"
check_eq "after all that the good cloud still works" "hello" "$(cat "$MNT/good/hello.txt" 2>&1)"
unmount_skyfs "$MNT"

# --- settings refused by config check (file, line, fix)
bad_conf() { # NAME LINES...: a config with one sftp cloud
    local f="$TEST_TMP/$1.conf"; shift
    (umask 077 && printf '[cache]\ndir = %s\n\n[s]\ntype = sftp\nhost = 127.0.0.1\n%s\n' \
        "$TEST_TMP/cache" "$(printf '%s\n' "$@")" >"$f")
    echo "$f"
}
expect_refused() { # DESC EXPECTED-TEXT CONFIG
    local out="$TEST_TMP/check.out"
    "$SKYFS" config check -c "$3" >"$out" 2>&1
    local rc=$?
    check "$1 (config check exits non-zero)" test "$rc" -ne 0
    check "$1: the message says \"$2\"" grep -qF -- "$2" "$out"
}
cp "$SSHD/client_ed25519" "$TEST_TMP/open_key"
chmod 0644 "$TEST_TMP/open_key"
f=$(bad_conf openkey "key_file = $TEST_TMP/open_key")
expect_refused "a private key readable by others" \
    "$f:7: [s] key_file: the private key $TEST_TMP/open_key is readable by others (mode 0644); run chmod 600 $TEST_TMP/open_key" "$f"
f=$(bad_conf nologin "user = root")
expect_refused "no key_file, password or agent" "no way to log in: set key_file, password or agent = true" "$f"
f=$(bad_conf badfp "key_file = $SSHD/client_ed25519" "host_key = 12:34:56")
expect_refused "a host_key that is no SHA256 fingerprint" "$f:8: [s] host_key: must be a SHA256 fingerprint" "$f"
f=$(bad_conf badport "key_file = $SSHD/client_ed25519" "port = 70000")
expect_refused "a port out of range" "$f:8: [s] port: must be a TCP port number" "$f"
f=$(bad_conf nokey "key_file = $TEST_TMP/no-such-key")
expect_refused "a key_file that does not exist" "[s] key_file: $TEST_TMP/no-such-key is not a readable file" "$f"
