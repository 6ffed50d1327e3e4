# shellcheck shell=bash
# A one-node Ceph cluster on loopback: 1 mon, 1 mgr, 1 bluestore OSD on a 4 GiB sparse file,
# cephx everywhere, pool `rbd` (size 1) initialised, a client.libvirt key for the hypervisor.
# Settings and traps: shared lab notes #9. Cluster state lives where Ceph expects it
# (/etc/ceph, /var/lib/ceph) so that clients and the rados/rbd bindings need no options;
# it survives lab down/up (`lab.sh reset ceph` wipes it).
# In a multi-node lab (lab/nodes.sh, LAB_NODES set) every node runs a mon, a mgr and an OSD on
# the lab network, pools keep 3 copies (2 needed for I/O): one node can die without data loss.

CEPH_POOL=${CEPH_POOL:-rbd}
CEPH_OSD_SIZE=${CEPH_OSD_SIZE:-4294967296}

ceph_host() { uname -n; }

ceph_write_conf() {
    local fsid=$1
    mkdir -p /etc/ceph /run/ceph "$NODE_DIR/log/ceph"
    ceph_conf "$fsid" >/etc/ceph/ceph.conf
}

ceph_conf() {
    local fsid=$1
    cat <<EOC
[global]
fsid = $fsid
mon initial members = $(ceph_host)
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
public network = 127.0.0.1/32
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon allow pool delete = true
auth allow insecure global id reclaim = false
# The lab shares the machine's disk: warn only when it is really full.
mon data avail warn = 3
mon data avail crit = 1
osd crush chooseleaf type = 0
bluestore block create = true
bluestore block size = $CEPH_OSD_SIZE
pid file = /run/ceph/\$type.\$id.pid
run dir = /run/ceph
log file = $NODE_DIR/log/ceph/\$name.log
osd objectstore = bluestore
EOC
}

# ceph_multi_conf FSID: the configuration every node of a multi-node lab shares.
ceph_multi_conf() {
    local fsid=$1 node members="" hosts=""
    for node in $LAB_NODES; do
        members="$members${members:+,}$node"
        hosts="$hosts${hosts:+,}[v2:$LAB_NET.${node#node}:3300,v1:$LAB_NET.${node#node}:6789]"
    done
    cat <<EOC
[global]
fsid = $fsid
mon initial members = $members
mon host = $hosts
public network = $LAB_NET.0/24
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 3
osd pool default min size = 2
osd pool default pg autoscale mode = off
mon allow pool delete = true
auth allow insecure global id reclaim = false
mon data avail warn = 3
mon data avail crit = 1
# Three OSDs share this machine's memory with the guests.
osd memory target = 939524096
bluestore block create = true
bluestore block size = $CEPH_OSD_SIZE
pid file = /run/ceph/\$type.\$id.pid
run dir = /run/ceph
log file = $LAB_DIR/nodes/\$host/log/ceph/\$name.log
osd objectstore = bluestore
EOC
}

# ceph_cluster_bootstrap DIR (on the host): the identity of a multi-node Ceph cluster, written
# to DIR and copied to every node: configuration, keys (with client.libvirt's, so every node
# has the same one), and the monmap of one mon per node.
ceph_cluster_bootstrap() {
    local dir=$1 fsid node addv=()
    fsid=$(cat /proc/sys/kernel/random/uuid)
    mkdir -p "$dir"
    ceph_multi_conf "$fsid" >"$dir/ceph.conf"
    ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$dir/ceph.client.admin.keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool --create-keyring "$dir/bootstrap-osd.keyring" --gen-key -n client.bootstrap-osd \
        --cap mon 'profile bootstrap-osd' --cap mgr 'allow r' >/dev/null
    ceph-authtool --create-keyring "$dir/ceph.client.libvirt.keyring" --gen-key -n client.libvirt \
        --cap mon 'profile rbd' --cap osd "profile rbd pool=$CEPH_POOL" \
        --cap mgr "profile rbd pool=$CEPH_POOL" >/dev/null
    local k
    for k in ceph.client.admin bootstrap-osd ceph.client.libvirt; do
        ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/$k.keyring" >/dev/null
    done
    for node in $LAB_NODES; do
        addv+=(--addv "$node" "[v2:$LAB_NET.${node#node}:3300,v1:$LAB_NET.${node#node}:6789]")
    done
    monmaptool --create "${addv[@]}" --fsid "$fsid" "$dir/monmap" >/dev/null
    log "Ceph cluster identity created (fsid $fsid, mons: $LAB_NODES)"
}

# The phases of a node's Ceph in a multi-node lab (lab/nodes.sh runs them node by node).
ceph_mon_up() {
    local host dir
    host=$(ceph_host)
    dir=/var/lib/ceph/mon/ceph-$host
    if [ ! -e "$dir/done" ]; then
        mkdir -p "$dir"
        ceph-mon --mkfs -i "$host" --monmap "$LAB_DIR/cluster/ceph/monmap" \
            --keyring "$LAB_DIR/cluster/ceph/mon.keyring"
        touch "$dir/done"
    fi
    mkdir -p /run/ceph "$NODE_DIR/log/ceph"
    pid_alive /run/ceph/mon."$host".pid || { ceph-mon -i "$host"; log "ceph-mon.$host started"; }
}

ceph_quorum_up() { wait_for "ceph mon quorum" 120 ceph --connect-timeout 5 mon stat; }

ceph_daemons_up() {
    ceph_quorum_up
    ceph_start_mgr
    ceph_start_osd
}

# Once every OSD is up: the pool cannot take I/O (rbd pool init) with fewer than min_size.
ceph_health_up() {
    ceph_ensure_pool
    ceph_wait_healthy
}

ceph_bootstrap() {
    local host fsid tmp
    host=$(ceph_host)
    fsid=$(cat /proc/sys/kernel/random/uuid)
    tmp=$(mktemp -d)
    log "bootstrapping Ceph (fsid $fsid)"
    ceph_write_conf "$fsid"
    ceph-authtool --create-keyring "$tmp/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring /etc/ceph/ceph.client.admin.keyring --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
    mkdir -p /var/lib/ceph/bootstrap-osd
    ceph-authtool --create-keyring /var/lib/ceph/bootstrap-osd/ceph.keyring --gen-key \
        -n client.bootstrap-osd --cap mon 'profile bootstrap-osd' --cap mgr 'allow r' >/dev/null
    ceph-authtool "$tmp/mon.keyring" --import-keyring /etc/ceph/ceph.client.admin.keyring >/dev/null
    ceph-authtool "$tmp/mon.keyring" --import-keyring /var/lib/ceph/bootstrap-osd/ceph.keyring >/dev/null
    monmaptool --create --addv "$host" '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' --fsid "$fsid" \
        "$tmp/monmap" >/dev/null
    mkdir -p "/var/lib/ceph/mon/ceph-$host"
    ceph-mon --mkfs -i "$host" --monmap "$tmp/monmap" --keyring "$tmp/mon.keyring"
    rm -rf "$tmp"
    touch "/var/lib/ceph/mon/ceph-$host/done"
}

ceph_start_mon() {
    local host
    host=$(ceph_host)
    pid_alive /run/ceph/mon."$host".pid && return 0
    ceph-mon -i "$host"
    wait_for "ceph mon" 60 ceph --connect-timeout 5 mon stat
    log "ceph-mon started (pid $(cat /run/ceph/mon."$host".pid))"
}

ceph_start_mgr() {
    local host dir
    host=$(ceph_host)
    dir=/var/lib/ceph/mgr/ceph-$host
    pid_alive /run/ceph/mgr."$host".pid && return 0
    if [ ! -s "$dir/keyring" ]; then
        mkdir -p "$dir"
        ceph auth get-or-create "mgr.$host" mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
            >"$dir/keyring"
    fi
    ceph-mgr -i "$host"
    log "ceph-mgr started"
}

ceph_osd_id() { cat /var/lib/ceph/osd/lab-osd-id 2>/dev/null || true; }

ceph_create_osd() {
    local uuid secret id dir
    uuid=$(cat /proc/sys/kernel/random/uuid)
    secret=$(ceph-authtool --gen-print-key)
    id=$(printf '{"cephx_secret": "%s"}' "$secret" |
        ceph osd new "$uuid" -i - -n client.bootstrap-osd -k /var/lib/ceph/bootstrap-osd/ceph.keyring \
            2>>"$NODE_DIR/log/ceph/bootstrap.log")
    dir=/var/lib/ceph/osd/ceph-$id
    mkdir -p "$dir"
    ceph-authtool --create-keyring "$dir/keyring" --name "osd.$id" --add-key "$secret" >/dev/null
    ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" >/dev/null 2>&1
    echo "$id" >/var/lib/ceph/osd/lab-osd-id
}

ceph_start_osd() {
    local id
    id=$(ceph_osd_id)
    [ -n "$id" ] || { ceph_create_osd; id=$(ceph_osd_id); }
    pid_alive /run/ceph/osd."$id".pid && return 0
    ceph-osd -i "$id"
    wait_for "ceph osd.$id up" 60 ceph_osd_is_up "$id"
    log "ceph-osd.$id started"
}

ceph_osd_is_up() {
    ceph osd dump --format json | python3 -c '
import json, sys
osd = [o for o in json.load(sys.stdin)["osds"] if o["osd"] == int(sys.argv[1])]
sys.exit(0 if osd and osd[0]["up"] == 1 else 1)' "$1"
}

ceph_ensure_pool() {
    if ! ceph osd pool ls --format json | python3 -c '
import json, sys
sys.exit(0 if sys.argv[1] in json.load(sys.stdin) else 1)' "$CEPH_POOL"; then
        ceph osd pool create "$CEPH_POOL" 32 32 >/dev/null
        [ -n "${LAB_NODES:-}" ] ||
            ceph osd pool set "$CEPH_POOL" size 1 --yes-i-really-mean-it >/dev/null
        log "pool $CEPH_POOL created"
    fi
    # Separate from the creation, so that an interrupted first run is completed by the next.
    if ! ceph osd pool application get "$CEPH_POOL" --format json | python3 -c '
import json, sys
sys.exit(0 if "rbd" in json.load(sys.stdin) else 1)'; then
        rbd pool init "$CEPH_POOL"
        log "pool $CEPH_POOL initialised for RBD"
    fi
    # The key the hypervisors use (libvirt secret, qemu, our modules through rados/rbd); a
    # multi-node lab created it with the cluster, the same on every node.
    [ -n "${LAB_NODES:-}" ] && return 0
    ceph auth get-or-create client.libvirt mon 'profile rbd' osd "profile rbd pool=$CEPH_POOL" \
        mgr "profile rbd pool=$CEPH_POOL" >/etc/ceph/ceph.client.libvirt.keyring
}

ceph_wait_healthy() {
    wait_for "ceph HEALTH_OK" 90 ceph_is_healthy
}

ceph_is_healthy() {
    ceph health --format json | python3 -c '
import json, sys
sys.exit(0 if json.load(sys.stdin)["status"] == "HEALTH_OK" else 1)'
}

ceph_up() {
    [ -e "/var/lib/ceph/mon/ceph-$(ceph_host)/done" ] || ceph_bootstrap
    mkdir -p /run/ceph "$NODE_DIR/log/ceph"
    ceph_start_mon
    ceph_start_mgr
    ceph_start_osd
    ceph_ensure_pool
    ceph_wait_healthy
}

ceph_down() {
    local f
    for f in /run/ceph/osd.*.pid /run/ceph/mgr.*.pid /run/ceph/mon.*.pid; do
        [ -e "$f" ] || continue
        stop_pid "ceph $(basename "$f" .pid)" "$f" 60
    done
}

ceph_reset() {
    ceph_down
    rm -rf /var/lib/ceph/mon/* /var/lib/ceph/mgr/* /var/lib/ceph/osd/* \
        /var/lib/ceph/bootstrap-osd/ceph.keyring /etc/ceph/ceph.conf /etc/ceph/*.keyring
}

ceph_status() {
    local s=down
    if pid_alive /run/ceph/mon."$(ceph_host)".pid; then
        s="up, $(ceph health 2>/dev/null || echo unreachable)"
    fi
    echo "ceph: $s"
}
