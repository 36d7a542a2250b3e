# shellcheck shell=bash
# rgw.sh - the configuration of a one-machine Ceph cluster serving S3
# through the RADOS Gateway (Debian's ceph-mon, ceph-osd, radosgw): one
# monitor, one OSD keeping its data in memory (memstore, capped), one
# radosgw with the beast frontend, cephx with keys made for this cluster
# alone, pools of one replica.  Everything - configuration, keyring, the
# monitor's store, logs - lives under one directory, every daemon listens
# on 127.0.0.1 only.  Sourced by tests/integration/lib.sh (start_rgw, which
# starts the daemons and tracks their pids) and tests/bench/append.sh.
# The S3 user and keys below are the test cluster's own: they open nothing
# but that local cluster.

RGW_ACCESS_KEY=SKYFSRGWTESTKEY00001
RGW_SECRET_KEY=skyfsRgwTestSecret0000000000000000000001
RGW_UID=skyfs-test

# rgw_ceph DIR ARGS...: the ceph CLI on the cluster of DIR (as its admin).
rgw_ceph() {
    local dir=$1; shift
    timeout 60 ceph -c "$dir/ceph.conf" --connect-timeout 30 "$@"
}

# rgw_write_conf DIR MON_PORT RGW_PORT [MEMSTORE_BYTES]
#   Writes DIR/ceph.conf and DIR/keyring (keys for mon., client.admin,
#   osd.0 and client.rgw, made now) and the monitor map DIR/monmap.  The
#   OSD's memstore reports MEMSTORE_BYTES (default 2 GiB) as its size: data
#   lives in memory, so that also bounds the memory it can take.
rgw_write_conf() {
    local dir=$1 mon_port=$2 rgw_port=$3 bytes=${4:-2147483648} fsid
    fsid=$(cat /proc/sys/kernel/random/uuid)
    mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/crash"
    cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$mon_port
public_addr = 127.0.0.1
public_network = 127.0.0.0/8
cluster_network = 127.0.0.0/8
ms_bind_msgr1 = false
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = $dir/keyring
run_dir = $dir/run
crash_dir = $dir/crash
admin_socket = $dir/run/\$name.asok
pid_file = $dir/run/\$name.pid
log_file = $dir/log/\$name.log
log_to_stderr = false
err_to_stderr = true
mon_cluster_log_file = $dir/log/cluster.log
# one machine, one OSD: pools of one replica, few placement groups
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
# a test machine's disk may be fuller than a real monitor would accept
mon_data_avail_warn = 1
mon_data_avail_crit = 0
# a busy 2-core machine: few threads, patient timeouts
ms_async_op_threads = 2
osd_op_thread_timeout = 120
osd_op_thread_suicide_timeout = 0
osd_heartbeat_grace = 120
mon_osd_report_timeout = 3600
client_mount_timeout = 120
rados_osd_op_timeout = 0

[mon]
mon_data = $dir/mon

[osd]
osd_data = $dir/osd
osd_objectstore = memstore
memstore_device_bytes = $bytes
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
osd_crush_update_on_start = true

[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port
rgw_thread_pool_size = 16
rgw_enable_lc_threads = false
rgw_enable_quota_threads = false
rgw_run_sync_thread = false
# what an overwrite or a delete leaves goes back soon (memory is the disk)
rgw_gc_obj_min_wait = 30
rgw_gc_processor_period = 30
debug_rgw = 1
EOF
    rm -f "$dir/keyring"
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null &&
    ceph-authtool "$dir/keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null &&
    ceph-authtool "$dir/keyring" --gen-key -n osd.0 \
        --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null &&
    ceph-authtool "$dir/keyring" --gen-key -n client.rgw \
        --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null &&
    chmod 600 "$dir/keyring" &&
    monmaptool --create --clobber --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" \
        "$dir/monmap" >/dev/null
}

# rgw_mkfs_mon DIR: makes the monitor's store (its keyring holds every key).
rgw_mkfs_mon() {
    ceph-mon -c "$1/ceph.conf" --mkfs -i a --monmap "$1/monmap" --keyring "$1/keyring"
}

# rgw_mkfs_osd DIR: registers osd.0 with the running monitor and makes its
# (memory) store.
rgw_mkfs_osd() {
    local dir=$1 uuid
    uuid=$(cat /proc/sys/kernel/random/uuid)
    rgw_ceph "$dir" osd new "$uuid" 0 >/dev/null &&
    ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$uuid"
}

# rgw_user DIR: makes the S3 user RGW_UID with RGW_ACCESS_KEY /
# RGW_SECRET_KEY (radosgw-admin; it makes the gateway's pools if the
# gateway has not yet).
rgw_user() {
    timeout 120 radosgw-admin -c "$1/ceph.conf" -n client.admin user create \
        --uid "$RGW_UID" --display-name "skyfs tests" \
        --access-key "$RGW_ACCESS_KEY" --secret-key "$RGW_SECRET_KEY" >/dev/null
}

# rgw_curl CURL-ARGS...: curl signed as the test user (SigV4, unsigned
# payload), failing on HTTP errors.
rgw_curl() {
    curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$RGW_ACCESS_KEY:$RGW_SECRET_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
