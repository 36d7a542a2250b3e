# shellcheck shell=bash
# users_lib.sh - helpers for tests that need a second (and third) local
# user: a mount by a user who is not root, files another user planted.
# Source it after lib.sh.  The tests run as root.
#
#   test_user NAME       creates the system user NAME if missing (no home,
#                        no login shell; kept for later runs) and prints
#                        its uid
#   as_user NAME CMD...  runs CMD as NAME (uid, gid, no other groups),
#                        with HOME=$USER_HOME (default $TEST_TMP/home-NAME)
#                        and XDG_RUNTIME_DIR unset, as under su or cron
#   user_dir NAME DIR    creates DIR owned by NAME (mode 700) and makes
#                        $TEST_TMP reachable (711) so NAME can get there,
#                        and $LOGS writable (1777) so that sanitizer and
#                        valgrind reports of NAME's processes land there

test_user() {
    local name=$1
    # test files run side by side: one useradd at a time, and a user
    # another file just made is not made twice
    if ! id -u "$name" >/dev/null 2>&1; then
        flock /tmp/skyfs-test-useradd.lock sh -c 'id -u "$1" >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin "$1"' sh "$name" ||
            { record FAIL "cannot create the test user $name"; return 1; }
    fi
    id -u "$name"
}

as_user() {
    local name=$1; shift
    local home=${USER_HOME:-$TEST_TMP/home-$name}
    setpriv --reuid="$name" --regid="$name" --clear-groups \
        env -u XDG_RUNTIME_DIR -u XDG_CACHE_HOME -u SKYFS_CONFIG HOME="$home" "$@"
}

user_dir() {
    local name=$1 dir=$2
    chmod 711 "$TEST_TMP"
    chmod 1777 "$LOGS"
    mkdir -p "$dir"
    chown "$name:" "$dir"
    chmod 700 "$dir"
}
