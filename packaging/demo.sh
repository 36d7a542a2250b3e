#!/usr/bin/env bash
# demo.sh - sets up and mounts the skyfs demo (`make demo`), or takes it
# down again (`demo.sh --stop`, `make demo-stop`).
#
# Everything lives in the repository's demo/ (config, clouds, cache, logs,
# server pids) and the mount is ./mnt; both are gitignored.  Sample files are
# seeded once, so changes made while playing survive a restart.
#
# Adding a cloud kind: write add_<kind>_cloud NAME, which starts the server
# the kind needs with start_server (so --stop ends it), seeds it, and
# appends its section with conf_section; then call it from setup_clouds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SKYFS="$BUILD/skyfs"
DEMO="$ROOT/demo"
MNT="$ROOT/mnt"
CONF="$DEMO/skyfs.conf"
PIDS="$DEMO/pids"
LOG="$DEMO/skyfs.log"
# Test servers (s3rver, Azurite) for S3 and Azure clouds, from make deps;
# rclone serves the WebDAV cloud.
export SERVERS_DIR="$ROOT/tests/servers/node_modules"

say() { echo "demo: $*"; }
die() { echo "demo: $*" >&2; exit 1; }

# conf_section NAME KEY=VALUE...: appends a [NAME] section to the config.
conf_section() {
    local name=$1 kv; shift
    {
        echo
        echo "[$name]"
        for kv in "$@"; do
            echo "${kv%%=*} = ${kv#*=}"
        done
    } >>"$CONF"
}

# start_server NAME URL cmd...: starts a server in the background (log in
# demo/NAME.log), records its pid for --stop, waits until URL answers.
start_server() {
    local name=$1 url=$2 pid i; shift 2
    "$@" >"$DEMO/$name.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >>"$PIDS"
    for i in $(seq 150); do
        curl -s -o /dev/null --max-time 2 "$url" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    die "$name did not start; see $DEMO/$name.log"
}

# free_port: a TCP port on 127.0.0.1 that is free now.
free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- sample content

seed_docs() {
    local dir=$1
    mkdir -p "$dir/notes" "$dir/reports/2024"
    cat >"$dir/README.txt" <<'EOF'
Welcome to the skyfs demo.

This folder is the "docs" cloud: a local directory (demo/clouds/docs)
shown by skyfs at mnt/docs.  Every other directory under mnt/ is another
cloud; skyfs shows them all as one tree.
EOF
    printf '# Todo\n\n- try cp, mv and rm in mnt/\n- edit a file in demo/clouds/ and watch it change in mnt/\n' \
        >"$dir/notes/todo.md"
    printf 'quarter,revenue\nQ1,100\nQ2,120\nQ3,90\nQ4,150\n' >"$dir/reports/2024/revenue.csv"
    local i
    for i in $(seq 2000); do
        printf 'line %05d of a longer document, to have something to page through\n' "$i"
    done >"$dir/reports/long.txt"
}

seed_photos() {
    local dir=$1
    mkdir -p "$dir/2024/summer"
    # Small real PNG images (gradients), written with Python's zlib.
    python3 - "$dir" <<'EOF'
import struct, sys, zlib
def png(path, w, h, pixel):
    rows = b"".join(b"\0" + b"".join(bytes(pixel(x, y)) for x in range(w))
                    for y in range(h))
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(rows, 9)))
        f.write(chunk(b"IEND", b""))
d = sys.argv[1]
png(f"{d}/sunset.png", 160, 120, lambda x, y: (255, 200 - y, 80 + y))
png(f"{d}/2024/summer/sea.png", 160, 120, lambda x, y: (20, 100 + y, 200))
png(f"{d}/2024/summer/forest.png", 160, 120, lambda x, y: (30, 120 + x // 2, 40))
EOF
}

# --- cloud kinds

# add_local_cloud NAME SEED: a local-directory cloud in demo/clouds/NAME,
# seeded by the function SEED the first time.
add_local_cloud() {
    local name=$1 seed=$2 dir="$DEMO/clouds/$1"
    if [ ! -d "$dir" ]; then
        mkdir -p "$dir"
        "$seed" "$dir"
    fi
    conf_section "$name" type=local "path=$dir" ttl=2s
}

# add_azure_cloud NAME: an Azure Blob container NAME on Azurite (data in
# demo/azurite, a free port each start), seeded once through a SAS token
# that openssl signs with Azurite's well-known development key.
# shellcheck source=../tests/servers/azurite.sh
. "$ROOT/tests/servers/azurite.sh"
seed_azure() {
    local endpoint=$1 container=$2 sas tmp
    sas=$(azurite_sas)
    tmp=$(mktemp -d)
    printf 'This folder is an Azure Blob container on Azurite (demo/azurite).\n' >"$tmp/README.txt"
    printf 'month,visits\nJan,310\nFeb,280\nMar,355\n' >"$tmp/visits.csv"
    curl -sf -X PUT "$endpoint/$container?restype=container&$sas" -o /dev/null
    curl -sf -X PUT -H 'x-ms-blob-type: BlockBlob' --data-binary "@$tmp/README.txt" \
        "$endpoint/$container/README.txt?$sas" -o /dev/null
    curl -sf -X PUT -H 'x-ms-blob-type: BlockBlob' --data-binary "@$tmp/visits.csv" \
        "$endpoint/$container/stats/2024/visits.csv?$sas" -o /dev/null
    rm -rf "$tmp"
}
add_azure_cloud() {
    local name=$1 data="$DEMO/azurite" port endpoint
    local main="$SERVERS_DIR/azurite/dist/src/blob/main.js"
    [ -f "$main" ] || die "Azurite is missing; run make deps"
    port=$(free_port)
    endpoint="http://127.0.0.1:$port/$AZURITE_ACCOUNT"
    mkdir -p "$data"
    start_server azurite "$endpoint?comp=list" node "$main" --blobHost 127.0.0.1 \
        --blobPort "$port" -l "$data" --disableTelemetry --skipApiVersionCheck -s
    if [ ! -f "$data/.seeded" ]; then
        seed_azure "$endpoint" "$name" || die "cannot seed the Azure demo container"
        touch "$data/.seeded"
    fi
    conf_section "$name" type=azure "endpoint=$endpoint" "account=$AZURITE_ACCOUNT" \
        "key=$AZURITE_KEY" "container=$name" ttl=2s
}

# add_s3_cloud NAME: an S3 bucket NAME on s3rver (data in demo/s3rver, a
# free port each start), seeded once with curl (SigV4, s3rver's S3RVER key).
seed_s3() {
    local endpoint=$1 bucket=$2 tmp
    tmp=$(mktemp -d)
    printf 'This folder is an S3 bucket on s3rver (demo/s3rver).\n' >"$tmp/README.txt"
    printf 'city,temp\nOslo,4\nLisbon,19\nTokyo,15\n' >"$tmp/weather.csv"
    s3_demo_put() {
        curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$1" "$2" -o /dev/null
    }
    s3_demo_put "$tmp/README.txt" "$endpoint/$bucket/README.txt" &&
        s3_demo_put "$tmp/weather.csv" "$endpoint/$bucket/data/2024/weather.csv"
    local rc=$?
    rm -rf "$tmp"
    return $rc
}
add_s3_cloud() {
    local name=$1 data="$DEMO/s3rver" port endpoint
    local main="$SERVERS_DIR/s3rver/bin/s3rver.js"
    [ -f "$main" ] || die "s3rver is missing; run make deps"
    port=$(free_port)
    endpoint="http://127.0.0.1:$port"
    DEMO_S3RVER=$endpoint      # add_gcs_cloud uses the same s3rver
    mkdir -p "$data"
    # s3rver's listing tokens use DES: OpenSSL 3 has it in the legacy provider
    start_server s3rver "$endpoint/" env NODE_OPTIONS=--openssl-legacy-provider \
        node "$main" -d "$data" -a 127.0.0.1 -p "$port" -s \
        --configure-bucket "$name"
    if [ ! -f "$data/.seeded" ]; then
        seed_s3 "$endpoint" "$name" || die "cannot seed the S3 demo bucket"
        touch "$data/.seeded"
    fi
    conf_section "$name" type=s3 "endpoint=$endpoint" "bucket=$name" \
        access_key_id=S3RVER secret_access_key=S3RVER ttl=2s
}

# add_gcs_cloud NAME: a Google Cloud Storage bucket NAME, spoken to through
# GCS's XML API with HMAC keys (SigV4), on the s3rver add_s3_cloud started
# (call it after add_s3_cloud); the bucket is made and seeded once.
seed_gcs() {
    local endpoint=$1 bucket=$2 tmp
    tmp=$(mktemp -d)
    printf 'This folder is a gcs cloud: GCS XML API with HMAC keys, here on s3rver.\n' \
        >"$tmp/README.txt"
    printf 'planet,moons\nEarth,1\nMars,2\nJupiter,95\n' >"$tmp/moons.csv"
    gcs_demo() {
        curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" -o /dev/null
    }
    gcs_demo -X PUT "$endpoint/$bucket" &&
        gcs_demo -T "$tmp/README.txt" "$endpoint/$bucket/README.txt" &&
        gcs_demo -T "$tmp/moons.csv" "$endpoint/$bucket/space/moons.csv"
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

# add_swift_cloud NAME: a container NAME on an all-in-one OpenStack Swift
# (Debian's packages, TempAuth; config, rings, data and logs in demo/swift,
# free ports each start), seeded once with curl.  Swift takes about 30 s
# to start on an idle machine.
# shellcheck source=../tests/servers/swift.sh
. "$ROOT/tests/servers/swift.sh"
seed_swift() {
    local auth=$1 container=$2 tmp token url
    tmp=$(mktemp -d)
    printf 'This folder is a Swift container on an all-in-one Swift (demo/swift).\n' \
        >"$tmp/README.txt"
    printf 'station,rain_mm\nBergen,2250\nManchester,870\n' >"$tmp/rain.csv"
    curl -sf -D "$tmp/h" -o /dev/null -H "X-Auth-User: $SWIFT_USER" \
        -H "X-Auth-Key: $SWIFT_KEY" "$auth" || { rm -rf "$tmp"; return 1; }
    token=$(tr -d '\r' <"$tmp/h" | awk -F': ' 'tolower($1) == "x-auth-token" { print $2 }')
    url=$(tr -d '\r' <"$tmp/h" | awk -F': ' 'tolower($1) == "x-storage-url" { print $2 }')
    curl -sf -X PUT -H "X-Auth-Token: $token" "$url/$container" -o /dev/null &&
        curl -sf -T "$tmp/README.txt" -H "X-Auth-Token: $token" \
            "$url/$container/README.txt" -o /dev/null &&
        curl -sf -T "$tmp/rain.csv" -H "X-Auth-Token: $token" \
            "$url/$container/data/rain.csv" -o /dev/null
    local rc=$?
    rm -rf "$tmp"
    return $rc
}
add_gcs_cloud() {
    local name=$1 data="$DEMO/s3rver"
    [ -n "${DEMO_S3RVER:-}" ] || die "add_gcs_cloud needs add_s3_cloud's s3rver"
    if [ ! -f "$data/.seeded-gcs" ]; then
        seed_gcs "$DEMO_S3RVER" "$name" || die "cannot seed the GCS demo bucket"
        touch "$data/.seeded-gcs"
    fi
    conf_section "$name" type=gcs "endpoint=$DEMO_S3RVER" "bucket=$name" \
        access_key_id=S3RVER secret_access_key=S3RVER ttl=2s
}

add_swift_cloud() {
    local name=$1 data="$DEMO/swift" kind bin i
    local proxy account container object memcached sink
    for bin in swift-proxy-server swift-account-server swift-container-server \
               swift-object-server swift-ring-builder memcached; do
        command -v "$bin" >/dev/null || die "$bin is missing; run make deps"
    done
    proxy=$(free_port) account=$(free_port) container=$(free_port)
    object=$(free_port) memcached=$(free_port) sink=$(free_port)
    swift_write_conf "$data" "$proxy" "$account" "$container" "$object" "$memcached" \
        "$sink" >"$DEMO/swift-rings.log" 2>&1 || die "cannot build Swift's rings; see $DEMO/swift-rings.log"
    local mc_user=()
    [ "$(id -u)" -eq 0 ] && mc_user=(-u root)
    memcached -l 127.0.0.1 -p "$memcached" -U 0 -m 32 "${mc_user[@]}" \
        >"$DEMO/memcached.log" 2>&1 </dev/null &
    echo $! >>"$PIDS"
    for kind in account container object proxy; do
        "swift-$kind-server" "$data/conf/$kind-server.conf" -v \
            >"$DEMO/swift-$kind.log" 2>&1 </dev/null &
        echo $! >>"$PIDS"
    done
    say "starting Swift (about 30 s)"
    local auth="http://127.0.0.1:$proxy/auth/v1.0"
    for i in $(seq 600); do
        curl -sf -o /dev/null --max-time 2 -H "X-Auth-User: $SWIFT_USER" \
            -H "X-Auth-Key: $SWIFT_KEY" "$auth" && break
        [ "$i" -eq 600 ] && die "Swift did not start in 120 s; see $DEMO/swift-*.log"
        sleep 0.2
    done
    if [ ! -f "$data/.seeded" ]; then
        seed_swift "$auth" "$name" || die "cannot seed the Swift demo container"
        touch "$data/.seeded"
    fi
    conf_section "$name" type=swift "auth_url=$auth" "user=$SWIFT_USER" "key=$SWIFT_KEY" \
        "container=$name" ttl=2s
}

# add_webdav_cloud NAME: a WebDAV folder served by `rclone serve webdav`
# (it starts in a fraction of a second) from demo/webdav, user "demo",
# password "demo", a free port each start; seeded once in the folder.
add_webdav_cloud() {
    local name=$1 data="$DEMO/webdav" port
    command -v rclone >/dev/null || die "rclone is missing; run make deps"
    port=$(free_port)
    if [ ! -d "$data" ]; then
        mkdir -p "$data/notes"
        printf 'This folder is a WebDAV server: rclone serve webdav of demo/webdav.\n' \
            >"$data/README.txt"
        printf 'WebDAV keeps folders and renames: mv of a folder is one MOVE.\n' \
            >"$data/notes/webdav.txt"
    fi
    start_server rclone-webdav "http://127.0.0.1:$port/" env RCLONE_CONFIG=/dev/null \
        rclone serve webdav --addr "127.0.0.1:$port" --user demo --pass demo \
        --dir-cache-time 1s "$data"
    conf_section "$name" type=webdav "url=http://127.0.0.1:$port/" user=demo password=demo \
        ttl=2s
}

# add_sftp_cloud NAME: a directory (demo/clouds/NAME) served by OpenSSH's
# sshd on 127.0.0.1 (a free port each start), with a host key and a login
# key made once in demo/sshd.  sshd needs root; without it, or without
# sshd, the demo goes on without this cloud.
add_sftp_cloud() {
    local name=$1 dir="$DEMO/sshd" data="$DEMO/clouds/$1" port pid i
    local sshd=/usr/sbin/sshd
    if [ ! -x "$sshd" ] || [ "$(id -u)" != 0 ]; then
        say "no sftp cloud: it needs $sshd (make deps) and root"
        return 0
    fi
    mkdir -p "$dir" /run/sshd
    chmod 700 "$dir"
    [ -f "$dir/host_ed25519" ] ||
        ssh-keygen -q -t ed25519 -N '' -C skyfs-demo-host -f "$dir/host_ed25519" </dev/null
    [ -f "$dir/client_ed25519" ] ||
        ssh-keygen -q -t ed25519 -N '' -C skyfs-demo -f "$dir/client_ed25519" </dev/null
    cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
    if [ ! -d "$data" ]; then
        mkdir -p "$data/projects"
        printf 'This folder is an SFTP cloud: demo/clouds/%s, served by sshd.\n' "$name" \
            >"$data/README.txt"
        printf 'plan: mount everything with skyfs\n' >"$data/projects/plan.txt"
    fi
    port=$(free_port)
    printf '%s\n' "ListenAddress 127.0.0.1" "Port $port" "HostKey $dir/host_ed25519" \
        "PidFile none" "UsePAM no" "PermitRootLogin prohibit-password" \
        "AuthorizedKeysFile $dir/authorized_keys" "StrictModes no" \
        "PasswordAuthentication no" "KbdInteractiveAuthentication no" \
        "Subsystem sftp internal-sftp" >"$dir/sshd_config"
    "$sshd" -D -e -f "$dir/sshd_config" >"$DEMO/sshd.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >>"$PIDS"
    for i in $(seq 50); do
        if ssh-keyscan -T 2 -p "$port" 127.0.0.1 >"$dir/known_hosts" 2>/dev/null &&
           [ -s "$dir/known_hosts" ]; then
            conf_section "$name" type=sftp host=127.0.0.1 "port=$port" "user=$(id -un)" \
                "key_file=$dir/client_ed25519" "known_hosts=$dir/known_hosts" \
                "path=$data" ttl=2s
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    die "sshd did not start; see $DEMO/sshd.log"
}

setup_clouds() {
    add_local_cloud docs seed_docs
    add_local_cloud photos seed_photos
    add_azure_cloud azure
    add_s3_cloud s3
    add_gcs_cloud gcs
    add_swift_cloud swift
    add_webdav_cloud webdav
    add_sftp_cloud sftp
}

# --- start and stop

stop_servers() {
    local pid
    [ -f "$PIDS" ] || return 0
    while read -r pid; do
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    done <"$PIDS"
    rm -f "$PIDS"
}

stop_demo() {
    if mountpoint -q "$MNT" 2>/dev/null; then
        say "unmounting $MNT (uploads pending data first)"
        "$SKYFS" unmount "$MNT" || {
            say "skyfs unmount failed; detaching the mount lazily"
            fusermount3 -u -z "$MNT"
        }
    fi
    stop_servers
    say "stopped"
}

print_tips() {
    local rel_skyfs=${SKYFS#"$ROOT"/}
    cat <<EOF

skyfs demo is mounted at ./mnt
  config: demo/skyfs.conf    log: demo/skyfs.log    clouds: demo/clouds/

Things to try:
  ls mnt                                  # one directory per cloud
  ls -lR mnt/docs | head -20
  cat mnt/docs/README.txt
  cp /etc/os-release mnt/docs/            # lands in demo/clouds/docs/
  ls demo/clouds/docs
  mv mnt/photos/sunset.png mnt/photos/2024/
  echo hello > demo/clouds/photos/outside.txt; sleep 3; ls mnt/photos
                                          # outside changes show after the ttl
  cp -r mnt/docs/reports mnt/s3/          # from a local cloud into S3 (s3rver)
  mv mnt/s3/reports mnt/azure/            # and on into Azure (Azurite)
  cp mnt/gcs/space/moons.csv mnt/docs/    # from the gcs cloud (XML API, HMAC keys)
  cp -r mnt/azure/reports mnt/swift/      # and into OpenStack Swift
  cp -r mnt/azure/reports mnt/webdav/     # and into WebDAV (rclone serve webdav)
  cp -r mnt/azure/reports mnt/sftp/       # and to an SSH server (sshd; as root)
  $rel_skyfs search -c demo/skyfs.conf --iname '*.txt' --long
                                          # every cloud at once, no network
  ls -l 'mnt/.skyfs/search/*.png'         # the same search as a directory
  $rel_skyfs status -c demo/skyfs.conf
  $rel_skyfs config check -c demo/skyfs.conf
  $rel_skyfs unmount mnt                  # or: make demo-stop
EOF
}

start_demo() {
    [ -x "$SKYFS" ] || die "$SKYFS is missing; run make first"
    [ -c /dev/fuse ] || die "/dev/fuse is missing; skyfs needs FUSE"
    if mountpoint -q "$MNT" 2>/dev/null; then
        say "already mounted at $MNT"
        print_tips
        return 0
    fi
    stop_servers
    mkdir -p "$DEMO/cache" "$MNT"
    (umask 077 && printf '# skyfs demo, written by packaging/demo.sh\n[cache]\ndir = %s\n' \
        "$DEMO/cache" >"$CONF")
    setup_clouds
    "$SKYFS" mount -c "$CONF" --log "$LOG" "$MNT" || {
        stop_servers
        die "mount failed (log: $LOG)"
    }
    print_tips
}

case "${1:-}" in
    --stop) stop_demo ;;
    "") start_demo ;;
    *) die "usage: demo.sh [--stop]" ;;
esac
