#!/usr/bin/env bash
# gcs_auth.sh - how gcs clouds authenticate: OAuth2 tokens and anonymous.
#
# Servers: s3rver (the storage), and gcs_token_server.js: a token endpoint
# that checks the service account's JWT (RS256 signature against the
# public key, issuer, audience, scope, expiry) and refresh-token grants
# before it answers, plus a storage front that passes only requests
# carrying a Bearer token it issued and that has not expired.
# Checks:
#   - a service-account key (credentials_file): files written, listed and
#     read back through the front, every request with a Bearer token the
#     endpoint issued for the service account; the token is renewed
#     before it expires (short-lived tokens, ops for longer than a life:
#     several tokens, no request refused);
#   - the same key through GOOGLE_APPLICATION_CREDENTIALS;
#   - gcloud's authorized_user credentials (refresh token);
#   - Bearer clouds send user metadata as x-goog-meta-* (what GCS reads
#     without an AWS signature);
#   - a key signed by another private key: the endpoint refuses, EACCES on
#     that cloud only, the reason in the log;
#   - anonymous: no Authorization header at all; a public bucket reads;
#   - a key file with mode 0644 is refused by `skyfs config check` and by
#     mount, naming the file and the chmod;
#   - no token, private key, client secret or refresh token in the logs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"

S3PORT=$(free_port)
TPORT=$(free_port)
FPORT=$(free_port)
while [ "$FPORT" = "$TPORT" ]; do FPORT=$(free_port); done
S3="http://127.0.0.1:$S3PORT"
FRONT="http://127.0.0.1:$FPORT"
TOKEN_URI="http://127.0.0.1:$TPORT/token"
MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
KEYS="$TEST_TMP/keys"
TLOG="$TEST_TMP/token.log"

export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$S3PORT" --configure-bucket tok --configure-bucket pub ||
    die "cannot start s3rver"

# --- keys: a service account's RSA key, another one, gcloud ADC
mkdir -p "$KEYS" && chmod 700 "$KEYS"
check "openssl makes the service account's RSA key" \
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/sa.pem"
openssl pkey -in "$KEYS/sa.pem" -pubout -out "$KEYS/sa.pub" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/other.pem" 2>/dev/null
# sa_key PEM OUT MODE: a service-account JSON key file as Google issues them
sa_key() {
    "$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
pem = open(sys.argv[1]).read()
json.dump({"type": "service_account", "project_id": "skyfs-test",
           "private_key_id": "0123456789abcdef", "private_key": pem,
           "client_email": "skyfs@skyfs-test.iam.gserviceaccount.com",
           "client_id": "1234567890", "token_uri": "https://oauth2.googleapis.com/token"},
          open(sys.argv[2], "w"))
EOF
    chmod "$3" "$2"
}
sa_key "$KEYS/sa.pem" "$KEYS/sa.json" 600
sa_key "$KEYS/other.pem" "$KEYS/wrong.json" 600
sa_key "$KEYS/sa.pem" "$KEYS/open.json" 644
CLIENT_SECRET="cs-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
REFRESH="rt-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cat >"$KEYS/adc.json" <<EOF
{"type": "authorized_user", "client_id": "42.apps.googleusercontent.com",
 "client_secret": "$CLIENT_SECRET", "refresh_token": "$REFRESH"}
EOF
chmod 600 "$KEYS/adc.json"

cat >"$TEST_TMP/token.json" <<EOF
{"token_port": $TPORT, "front_port": $FPORT, "upstream": "$S3",
 "public_key_file": "$KEYS/sa.pub",
 "client_email": "skyfs@skyfs-test.iam.gserviceaccount.com",
 "client_id": "42.apps.googleusercontent.com", "client_secret": "$CLIENT_SECRET",
 "refresh_token": "$REFRESH", "token_ttl": 6, "log": "$TLOG"}
EOF
: >"$TLOG"
start_gcs_token_server "$TEST_TMP/token.json" "$TPORT" || die "cannot start the token server"
check "the front answers on its port" wait_until 10 eval \
    'curl -s -o /dev/null "$FRONT/"'
check "the front refuses a request without a token" eval \
    '[ "$(curl -s -o /dev/null -w "%{http_code}" "$FRONT/tok/x")" = 401 ]'
: >"$TLOG"

mkdir -p "$TEST_TMP/cache"
(umask 077 && cat >"$CONF" <<EOF
[cache]
dir = $TEST_TMP/cache

[sa]
type = gcs
endpoint = $FRONT
bucket = tok
prefix = sa
credentials_file = $KEYS/sa.json
token_uri = $TOKEN_URI
ttl = 1s

[envsa]
type = gcs
endpoint = $FRONT
bucket = tok
prefix = env
token_uri = $TOKEN_URI
ttl = 1s

[user]
type = gcs
endpoint = $FRONT
bucket = tok
prefix = user
credentials_file = $KEYS/adc.json
token_uri = $TOKEN_URI
ttl = 1s

[wrong]
type = gcs
endpoint = $FRONT
bucket = tok
credentials_file = $KEYS/wrong.json
token_uri = $TOKEN_URI
ttl = 1s

[anonfront]
type = gcs
endpoint = $FRONT
bucket = tok
anonymous = yes
ttl = 1s

[public]
type = gcs
endpoint = $S3
bucket = pub
anonymous = yes
ttl = 1s
EOF
)
check "skyfs config check accepts the gcs clouds" \
    env GOOGLE_APPLICATION_CREDENTIALS="$KEYS/sa.json" "$SKYFS" config check -c "$CONF"

echo "public data" >"$TEST_TMP/pubfile"
s3curl -T "$TEST_TMP/pubfile" "$S3/pub/hello.txt" >/dev/null

GOOGLE_APPLICATION_CREDENTIALS="$KEYS/sa.json" mount_skyfs "$CONF" "$MNT" || die "cannot mount"

# --- service account
check "mkdir in the service-account cloud" mkdir "$MNT/sa/d"
check "write a file" eval 'echo "via a service account" >"$MNT/sa/d/f.txt"'
check "setfattr user.color" setfattr -n user.color -v blue "$MNT/sa/d/f.txt"
check_eq "read it back" "via a service account" "$(cat "$MNT/sa/d/f.txt" 2>&1)"
check "the object reached the storage" wait_until 10 eval \
    '[ "$(s3curl "$S3/tok/sa/d/f.txt")" = "via a service account" ]'
check "the endpoint issued a token to the service account (its JWT verified)" \
    grep -q '^issued sa ' "$TLOG"
check "the front saw Bearer requests of the service account" \
    wait_until 10 eval 'grep -q "^front sa PUT /tok/sa/d/f.txt" "$TLOG"'
check "the user metadata went as x-goog-meta-* (Bearer: GCS's own names)" \
    wait_until 10 eval 'grep "^front sa PUT /tok/sa/d/f.txt" "$TLOG" | grep -q "goog-meta=.*color"'
check_eq "it is kept (s3rver stores it as x-amz-meta-color)" "blue" \
    "$(wait_until 10 eval 'getfattr --only-values -n user.color "$MNT/sa/d/f.txt" >/dev/null 2>&1'
       getfattr --only-values -n user.color "$MNT/sa/d/f.txt" 2>/dev/null)"

# Tokens live 6 s (renewed after 4 s): keep working for 15 s.
for i in $(seq 1 15); do
    echo "round $i" >"$MNT/sa/d/r$i.txt"
    ls "$MNT/sa/d" >/dev/null
    sleep 1
done
sleep 2
check_eq "every file written over several token lives is there" 15 \
    "$(ls "$MNT/sa/d" | grep -c '^r[0-9]*\.txt$')"
check_eq "read back from the storage" "round 15" "$(s3curl "$S3/tok/sa/d/r15.txt")"
n=$(grep -c '^issued sa ' "$TLOG")
check "the token was renewed (3 or more tokens in 17 s of 6-second tokens; got $n)" \
    test "$n" -ge 3
check_eq "no request reached the front with an expired or unknown token" "" \
    "$(grep -E '^front-refused (expired|unknown)' "$TLOG")"

# --- GOOGLE_APPLICATION_CREDENTIALS
check "a cloud without credentials_file uses GOOGLE_APPLICATION_CREDENTIALS" \
    eval 'echo env >"$MNT/envsa/e.txt"'
check "and its requests carry the service account's tokens" \
    wait_until 10 eval 'grep -q "^front sa PUT /tok/env/e.txt" "$TLOG"'

# --- authorized_user (gcloud application-default credentials)
check "write with gcloud's authorized_user credentials" eval 'echo user >"$MNT/user/u.txt"'
check_eq "read back" user "$(cat "$MNT/user/u.txt" 2>&1)"
check "the refresh token was exchanged" grep -q '^issued user ' "$TLOG"
check "the front saw the user's Bearer token" \
    wait_until 10 eval 'grep -q "^front user PUT /tok/user/u.txt" "$TLOG"'

# --- a key whose signature the endpoint cannot verify
check_eq "a JWT signed by another key: EACCES" EACCES "$(errno_of listdir "$MNT/wrong")"
check "the endpoint refused it for its signature" grep -q '^refused Invalid JWT Signature' "$TLOG"
check "the daemon log says why" grep -q 'Invalid JWT Signature' "$LOGS/mnt.log"
check "the other clouds still work" test -f "$MNT/sa/d/f.txt"

# --- anonymous
check_eq "anonymous requests carry no Authorization (the front refuses): EACCES" EACCES \
    "$(errno_of listdir "$MNT/anonfront")"
check "the front saw no Authorization header" grep -q '^front-refused no Authorization' "$TLOG"
check_eq "an anonymous cloud reads a public bucket" "public data" \
    "$(cat "$MNT/public/hello.txt" 2>&1)"

unmount_skyfs "$MNT"

# --- nothing secret in the logs
secrets_in_logs() {
    local t
    grep -rl -e 'ya29\.' -e 'PRIVATE KEY' -e "$CLIENT_SECRET" -e "$REFRESH" "$LOGS" && return 0
    for t in $(awk '/^issued/ {print $3}' "$TLOG"); do
        grep -rlF -- "$t" "$LOGS" && return 0
    done
    return 1
}
check_fails "no token, private key, client secret or refresh token in the logs" secrets_in_logs

# --- a key file others can read
sed "s#$KEYS/sa.json#$KEYS/open.json#" "$CONF" >"$TEST_TMP/open.conf"
chmod 600 "$TEST_TMP/open.conf"
"$SKYFS" config check -c "$TEST_TMP/open.conf" >"$TEST_TMP/open.out" 2>&1
rc=$?
check "config check refuses a key file with mode 0644" test "$rc" -ne 0
check "and names the file and the fix" eval \
    'grep -q "$KEYS/open.json" "$TEST_TMP/open.out" && grep -q "chmod 600" "$TEST_TMP/open.out"'
check_fails "mount refuses it too" timeout 60 "$SKYFS" mount -c "$TEST_TMP/open.conf" \
    --log "$LOGS/open.log" "$TEST_TMP/mnt-open"
check_fails "the message holds no key material" grep -q 'PRIVATE KEY' "$TEST_TMP/open.out"
