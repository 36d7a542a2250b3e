#!/usr/bin/env bash
# many_swift.sh - many machines, one cloud (issue 17) on OpenStack Swift:
# two mounts with their own caches race on one container of Debian's
# all-in-one Swift (swift_lib.sh; the races are many_lib.sh's).  Swift
# honours If-None-Match: * on PUT (a new file never replaces another
# machine's: the probe finds that, and the test shows the server's 412
# itself) but has no If-Match on PUT or DELETE: a replacement or delete
# compares the version with a HEAD right before (skyfs status: the weaker
# guarantee, with that reason).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/swift_lib.sh"
. "$(dirname "$0")/many_lib.sh"

start_swift "$TEST_TMP/swift" || die "cannot start swift"
swift_container shared || die "cannot create the container shared"

# the server itself: a PUT with If-None-Match: * over an object is refused
check "a PUT of a new object with If-None-Match: * is taken" \
    swift_put shared/probe-by-test -H 'If-None-Match: *' --data-binary one
check_eq "the same PUT over that object answers 412" 412 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "X-Auth-Token: $(swift_token)" \
        -H 'If-None-Match: *' --data-binary two "$SWIFT_URL/shared/probe-by-test")"
check_eq "and the object keeps its content" one "$(scurl "$SWIFT_URL/shared/probe-by-test")"
scurl -X DELETE "$SWIFT_URL/shared/probe-by-test" || die "cannot delete probe-by-test"

many_run "type = swift
auth_url = $SWIFT_AUTH
user = $SWIFT_USER
key = $SWIFT_KEY
container = shared" compare
check "the log says the server checks If-None-Match: *" \
    grep -q "the server checks If-None-Match: \*" "$LOGS/b.log"
check "skyfs status --json gives the reason of the weaker guarantee" bash -c \
    "'$SKYFS' status -c '$TEST_TMP/b.conf' --json | grep -q 'has no If-Match on writes'"
check_fails "the probe leaves no object behind" bash -c \
    "curl -sf -H 'X-Auth-Token: $(swift_token)' '$SWIFT_URL/shared' | grep -q skyfs-probe"
