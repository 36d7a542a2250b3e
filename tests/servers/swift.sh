# shellcheck shell=bash
# swift.sh - the configuration of an all-in-one OpenStack Swift (Debian's
# swift-proxy, -account, -container and -object servers, TempAuth, one
# replica, a plain directory as the device), shared by
# tests/integration/swift_lib.sh (which starts it for the tests) and
# packaging/demo.sh (the demo's swift cloud).  The TempAuth user and key
# below are the test cluster's own: they open nothing but that local
# cluster.

SWIFT_USER=test:tester
SWIFT_KEY=testing

# swift_write_conf DIR PROXY ACCOUNT CONTAINER OBJECT MEMCACHED LOGSINK
#   Writes DIR/conf (swift.conf, the four servers' configs, the rings of
#   one device DIR/node/d1 with one replica) for servers on 127.0.0.1 at
#   those ports; MEMCACHED is memcached's (TempAuth keeps its tokens there),
#   LOGSINK a UDP port nobody reads (the servers' syslog copies; their
#   logs proper go to their stderr, started with -v).  The servers run as
#   the user who starts them.  Rings are rebuilt each time (the ports may
#   change; the one device keeps every partition, so data stays found).
swift_write_conf() {
    local dir=$1 user
    local _SWIFT_PROXY_PORT=$2 _SWIFT_ACCOUNT_PORT=$3 _SWIFT_CONTAINER_PORT=$4
    local _SWIFT_OBJECT_PORT=$5 _SWIFT_MEMCACHED_PORT=$6 _SWIFT_SINK_PORT=$7
    user=$(id -un)
    mkdir -p "$dir/conf" "$dir/node/d1" "$dir/run" "$dir/cache"
    cat >"$dir/conf/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = skyfs-test-suffix
swift_hash_path_prefix = skyfs-test-prefix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
EOF
    local common="swift_dir = $dir/conf
devices = $dir/node
mount_check = false
bind_ip = 127.0.0.1
workers = 0
user = $user
log_level = INFO
log_address = $dir/run/no-syslog
log_udp_host = 127.0.0.1
log_udp_port = $_SWIFT_SINK_PORT"
    cat >"$dir/conf/account-server.conf" <<EOF
[DEFAULT]
$common
bind_port = $_SWIFT_ACCOUNT_PORT
log_name = account-server

[pipeline:main]
pipeline = account-server

[app:account-server]
use = egg:swift#account
EOF
    cat >"$dir/conf/container-server.conf" <<EOF
[DEFAULT]
$common
bind_port = $_SWIFT_CONTAINER_PORT
log_name = container-server

[pipeline:main]
pipeline = container-server

[app:container-server]
use = egg:swift#container
conn_timeout = 5
node_timeout = 30
allow_versions = true
EOF
    cat >"$dir/conf/object-server.conf" <<EOF
[DEFAULT]
$common
bind_port = $_SWIFT_OBJECT_PORT
log_name = object-server

[pipeline:main]
pipeline = object-server

[app:object-server]
use = egg:swift#object
conn_timeout = 5
node_timeout = 30
EOF
    # The proxy: TempAuth (tokens in memcached), Static Large Objects, bulk
    # delete, server-side copy; the middleware order of Swift's sample.
    cat >"$dir/conf/proxy-server.conf" <<EOF
[DEFAULT]
$common
bind_port = $_SWIFT_PROXY_PORT
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
# A loaded test machine (2 cores, several test files at once) can take more
# than Swift's default half second to accept a connection; with one replica,
# a node the proxy error-limits would make every request a 503 for a minute.
conn_timeout = 5
node_timeout = 60
client_timeout = 120
error_suppression_limit = 100000

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = $SWIFT_KEY .admin
user_test2_tester2 = testing2 .admin
token_life = 86400

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$_SWIFT_MEMCACHED_PORT

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl

[filter:slo]
use = egg:swift#slo
min_segment_size = 1

[filter:dlo]
use = egg:swift#dlo

[filter:copy]
use = egg:swift#copy
EOF
    # The three rings (16 partitions, one replica, the one device), built in
    # one Python process with Swift's RingBuilder, what swift-ring-builder
    # create/add/rebalance does (nine processes' imports cost minutes on a
    # busy machine).
    rm -f "$dir/conf/"*.builder "$dir/conf/"*.ring.gz
    /usr/bin/python3 - "$dir/conf" "$_SWIFT_ACCOUNT_PORT" "$_SWIFT_CONTAINER_PORT" \
        "$_SWIFT_OBJECT_PORT" <<'PY'
import sys
from swift.common.ring import RingBuilder
conf = sys.argv[1]
for kind, port in zip(("account", "container", "object"), sys.argv[2:5]):
    builder = RingBuilder(4, 1, 1)
    builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "device": "d1", "weight": 100})
    builder.rebalance()
    builder.get_ring().save("%s/%s.ring.gz" % (conf, kind))
    builder.save("%s/%s.builder" % (conf, kind))
PY
}
