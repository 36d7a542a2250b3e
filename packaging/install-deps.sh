#!/bin/sh
# install-deps.sh - installs what building and testing skyfs needs.
#
# Called by `make deps` (and so by `make test`, `make demo`, `make bench`).
# On Debian 12 it installs the missing system packages (build tools, the
# libraries skyfs links, FUSE, the tools the tests and benchmarks use) and
# the npm test servers in tests/servers (s3rver, Azurite); Ceph's monitor,
# OSD and RADOS Gateway serve the real S3 implementation of s3_rgw.sh and
# many_rgw.sh.  When everything is present it only checks, quickly, and
# changes nothing.  Installing needs
# root; checking does not.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVERS="$ROOT/tests/servers"

# Debian packages and, for each, a command that proves it is there when the
# package itself was installed some other way (e.g. nodejs with its own npm).
PACKAGES="
build-essential:gcc
pkg-config:pkg-config
libfuse3-dev:
fuse3:fusermount3
libcurl4-openssl-dev:
libssl-dev:
libsqlite3-dev:
libxxhash-dev:
libexpat1-dev:
libjson-c-dev:
libssh-dev:
openssh-server:/usr/sbin/sshd
openssh-client:ssh-keygen
attr:setfattr
curl:curl
nodejs:node
npm:npm
python3:python3
s3fs:s3fs
rclone:rclone
apache2:apache2
apache2-utils:htpasswd
valgrind:valgrind
media-types:
rsync:rsync
git:git
tar:tar
swift-proxy:swift-proxy-server
swift-account:swift-account-server
swift-container:swift-container-server
swift-object:swift-object-server
memcached:memcached
faketime:faketime
eatmydata:eatmydata
btrfs-progs:mkfs.btrfs
e2fsprogs:mkfs.ext4
python3-swiftclient:swift
ceph-mon:ceph-mon
ceph-osd:ceph-osd
radosgw:radosgw
ceph-common:radosgw-admin
debhelper:dh
lintian:lintian
man-db:man
bash-completion:
prometheus:promtool
systemd:systemd-analyze
"

say() { echo "install-deps: $*"; }
die() { echo "install-deps: $*" >&2; exit 1; }

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Prints the packages that are neither installed nor provided by a command.
missing_packages() {
    for entry in $PACKAGES; do
        pkg=${entry%%:*}
        cmd=${entry#*:}
        if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then
            continue
        fi
        is_installed "$pkg" || echo "$pkg"
    done
}

install_packages() {
    missing=$(missing_packages | tr '\n' ' ')
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing Debian packages: $missing- run 'sudo make deps' (or install them with apt-get as root)"
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "missing packages: $missing- this script knows only Debian's apt-get; install them by hand"
    say "installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086 # word splitting of the package list is meant
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    still=$(missing_packages | tr '\n' ' ')
    [ -z "$still" ] || die "apt-get could not install: $still"
}

# node_modules is current when npm's record of what it installed
# (node_modules/.package-lock.json) is newer than package-lock.json.
servers_current() {
    stamp="$SERVERS/node_modules/.package-lock.json"
    [ -f "$stamp" ] &&
        [ -z "$(find "$SERVERS/package-lock.json" -newer "$stamp")" ] &&
        [ -f "$SERVERS/node_modules/s3rver/bin/s3rver.js" ] &&
        [ -f "$SERVERS/node_modules/azurite/dist/src/blob/main.js" ]
}

install_servers() {
    [ -f "$SERVERS/package-lock.json" ] || die "$SERVERS/package-lock.json is missing"
    servers_current && return 0
    say "installing the test servers (npm ci in tests/servers)"
    (cd "$SERVERS" && npm ci --no-audit --no-fund --loglevel=error) ||
        die "npm ci failed in $SERVERS"
    touch "$SERVERS/node_modules/.package-lock.json"
}

install_packages
install_servers
[ -e /dev/fuse ] || say "warning: /dev/fuse is missing; the integration tests need FUSE (load the fuse module, or give the container --device /dev/fuse)"
exit 0
