. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"
PORT=$(free_port); ENDPOINT="http://127.0.0.1:$PORT"; CONF="$TEST_TMP/c.conf"; MNT="$TEST_TMP/mnt"
export NODE_OPTIONS="--openssl-legacy-provider"
start_s3rver "$TEST_TMP/s3rver" "$PORT" --configure-bucket gb --configure-bucket sb --configure-bucket sb2
mkdir -p "$TEST_TMP/cache" "$TEST_TMP/lc"
(umask 077; cat >"$CONF" <<EOC
[cache]
dir = $TEST_TMP/cache

$(gcs_cloud gcs "$ENDPOINT" gb)
ttl = 1s

$(s3rver_cloud s3 "$ENDPOINT" sb)
ttl = 1s

$(s3rver_cloud s3b "$ENDPOINT" sb2)
ttl = 1s

[local]
type = local
path = $TEST_TMP/lc
ttl = 1s
EOC
)
mount_skyfs "$CONF" "$MNT"
mkdir -p "$TEST_TMP/l/tree/sub"; head -c 3000000 /dev/urandom > "$TEST_TMP/l/tree/sub/blob"; echo hello > "$TEST_TMP/l/tree/h"; chmod 600 "$TEST_TMP/l/tree/h"; touch -d '2005-06-07 08:09:10 UTC' "$TEST_TMP/l/tree/h"
for d in gcs s3; do
cp -a "$TEST_TMP/l/tree" "$TEST_TMP/lc/tree-$d"
strace -f -o "$TEST_TMP/strace-$d" mv "$MNT/local/tree-$d" "$MNT/$d/tree"; echo "$d after mv: $(stat -c %Y "$MNT/$d/tree/h")"
done
s3curl -I "$ENDPOINT/gb/tree/h" | grep mtime
grep -E "utimensat|copy_file|ioctl|h\"" "$TEST_TMP/strace-gcs" | head -20
unmount_skyfs "$MNT"
