# shellcheck shell=bash
# A cluster of several hypervisor nodes on this one machine (`lab.sh nodes-up 3`).
#
# Each node is a mount + UTS + network namespace held by lab/node-init.sh: hostname nodeN,
# address 10.99.0.N on a veth whose other end is on a bridge that lives in a namespace of its
# own (no lab address exists outside these namespaces), private /run, /dev/shm, /etc/hosts and
# libvirt / Ceph / Corosync / Pacemaker state under $LAB_DIR/nodes/nodeN/root. The components
# (lab/components) run inside a node through node_in, with LAB_NODES naming the cluster.
#
# A node is powered off the way a power cut would: every process of its network namespace is
# killed at once, by the lab's fence agent (lab/fence/fence_gridvirt_lab), which Pacemaker
# also uses. Powering on recreates the namespaces and restarts the node's stack; its disks
# (the state directories) survive, as a real machine's would.

LAB_NET=${LAB_NET:-10.99.0}
CLUSTER_DIR=$LAB_DIR/cluster
NODE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
FENCE_AGENT=$LAB_ROOT/fence/fence_gridvirt_lab
FENCE_LINK=/usr/sbin/fence_gridvirt_lab

node_dir() { echo "$LAB_DIR/nodes/$1"; }
node_ip() { echo "$LAB_NET.${1#node}"; }
cluster_nodes() { cat "$CLUSTER_DIR/nodes" 2>/dev/null || true; }

# holder_alive PID_FILE NETNS_FILE: the process still exists and is still the one recorded
# (its network namespace is the node's), so a reused PID is not taken for the node.
holder_alive() {
    local pid
    pid_alive "$1" || return 1
    pid=$(cat "$1")
    [ -s "$2" ] && [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$(cat "$2")" ]
}

node_alive() { holder_alive "$(node_dir "$1")/holder.pid" "$(node_dir "$1")/netns"; }

bridge_in() { nsenter --target "$(cat "$LAB_DIR/bridge.pid")" --net -- "$@"; }

# node_in NODE COMMAND...: run COMMAND inside the node, with a clean environment.
node_in() {
    local node=$1
    shift
    nsenter --target "$(cat "$(node_dir "$node")/holder.pid")" --mount --uts --net -- \
        env -i PATH="$NODE_PATH" HOME=/root LANG=C.UTF-8 LAB_DIR="$LAB_DIR" LAB_NODE="$node" \
        LAB_NODE_IP="$(node_ip "$node")" LAB_NODES="$(cluster_nodes | tr '\n' ' ')" "$@"
}

# ---- the network --------------------------------------------------------------------------

bridge_up() {
    if holder_alive "$LAB_DIR/bridge.pid" "$LAB_DIR/bridge.netns"; then return 0; fi
    rm -f "$LAB_DIR/bridge.pid"
    # shellcheck disable=SC2016 # $$ and $1 belong to the holder's shell
    setsid unshare --net --fork -- /bin/sh -c 'echo $$ >"$1.new"; mv "$1.new" "$1"; exec sleep infinity' \
        sh "$LAB_DIR/bridge.pid" </dev/null >/dev/null 2>&1 &
    wait_for "bridge namespace" 10 test -s "$LAB_DIR/bridge.pid"
    readlink "/proc/$(cat "$LAB_DIR/bridge.pid")/ns/net" >"$LAB_DIR/bridge.netns"
    bridge_in ip link set lo up
    bridge_in ip link add br0 type bridge
    bridge_in ip link set br0 up
    log "bridge namespace up (pid $(cat "$LAB_DIR/bridge.pid"))"
}

# node_cut NODE / node_join NODE: unplug and replug the node's cable (a network partition).
node_cut() { bridge_in ip link set "gv-$1" down; log "$1 cut from the lab network"; }
node_join() { bridge_in ip link set "gv-$1" up; log "$1 back on the lab network"; }

node_link() {
    local node=$1 pid=$2
    bridge_in ip link del "gv-$node" 2>/dev/null || true
    bridge_in ip link add "gv-$node" type veth peer name eth0 netns "$pid"
    bridge_in ip link set "gv-$node" master br0 up
    nsenter --target "$pid" --net -- ip addr add "$(node_ip "$node")/24" dev eth0
    nsenter --target "$pid" --net -- ip link set eth0 up
}

# ---- one node -----------------------------------------------------------------------------

# node_create NODE: the namespaces, private directories and network of a powered-off node.
node_create() {
    local node=$1 dir pid
    dir=$(node_dir "$node")
    node_alive "$node" && return 0
    mkdir -p "$dir/root" "$dir/run" "$dir/log"
    rm -f "$dir"/run/*.pid "$dir/holder.pid" "$dir/holder.pid.new"
    setsid unshare --mount --uts --net --propagation private --fork -- \
        /bin/sh "$LAB_ROOT/node-init.sh" "$node" "$dir/root" "$CLUSTER_DIR/hosts" "$dir/holder.pid.new" \
        </dev/null >>"$dir/log/holder.log" 2>&1 &
    wait_for "$node namespaces" 20 test -s "$dir/holder.pid.new"
    pid=$(cat "$dir/holder.pid.new")
    readlink "/proc/$pid/ns/net" >"$dir/netns"
    mv "$dir/holder.pid.new" "$dir/holder.pid"
    node_link "$node" "$pid"
    node_configure "$node"
    log "$node created (holder pid $pid, $(node_ip "$node"))"
}

# node_configure NODE: the node's own configuration files (its "disk").
node_configure() {
    local node=$1 root
    root=$(node_dir "$node")/root
    mkdir -p "$root/etc/libvirt" "$root/etc/ceph" "$root/var/lib/ceph/bootstrap-osd"
    [ -e "$root/etc/libvirt/qemu.conf" ] || cp /etc/libvirt/qemu.conf "$root/etc/libvirt/"
    # Live migration: qemu+tcp between the nodes. No authentication: the lab network exists
    # only inside the lab's namespaces. Every node needs its own host UUID, or libvirt refuses
    # to migrate ("migrate guest to the same host"): all nodes share this machine's SMBIOS.
    cat >"$root/etc/libvirt/libvirtd.conf" <<EOC
listen_tls = 0
listen_tcp = 1
auth_tcp = "none"
host_uuid = "$(printf '6c616200-0000-4000-8000-%012d' "${node#node}")"
EOC
    cp "$CLUSTER_DIR/ceph/ceph.conf" "$CLUSTER_DIR/ceph/ceph.client.admin.keyring" \
        "$CLUSTER_DIR/ceph/ceph.client.libvirt.keyring" "$root/etc/ceph/"
    cp "$CLUSTER_DIR/ceph/bootstrap-osd.keyring" "$root/var/lib/ceph/bootstrap-osd/ceph.keyring"
}

# node_power_on NODE: namespaces, then its whole stack (the others are expected to be up).
node_power_on() {
    local node=$1
    node_create "$node"
    node_in "$node" bash "$LAB_ROOT/lab.sh" up libvirt ceph_mon ceph_daemons pacemaker
    log "$node powered on"
}

node_power_off() {
    [ -s "$(node_dir "$1")/netns" ] || return 0
    "$FENCE_AGENT" --action=off --plug="$1" --lab-dir="$LAB_DIR" >/dev/null
    log "$1 powered off"
}

# ---- the cluster --------------------------------------------------------------------------

# cluster_init N: node names, /etc/hosts and the Ceph identity shared by every node, once.
cluster_init() {
    local count=$1 i
    if [ -s "$CLUSTER_DIR/nodes" ]; then
        [ "$(wc -l <"$CLUSTER_DIR/nodes")" -eq "$count" ] ||
            die "the lab has $(wc -l <"$CLUSTER_DIR/nodes") nodes, not $count: lab.sh nodes-reset first"
        return 0
    fi
    [ "$count" -ge 3 ] || die "a multi-node lab needs at least 3 nodes (quorum and fencing)"
    mkdir -p "$CLUSTER_DIR"
    for ((i = 1; i <= count; i++)); do echo "node$i"; done >"$CLUSTER_DIR/nodes.new"
    {
        echo "127.0.0.1 localhost"
        for ((i = 1; i <= count; i++)); do echo "$LAB_NET.$i node$i"; done
    } >"$CLUSTER_DIR/hosts"
    LAB_NODES="$(tr '\n' ' ' <"$CLUSTER_DIR/nodes.new")" ceph_cluster_bootstrap "$CLUSTER_DIR/ceph"
    mv "$CLUSTER_DIR/nodes.new" "$CLUSTER_DIR/nodes"
}

nodes_up() {
    local count=${1:-3} node
    cluster_init "$count"
    bridge_up
    ln -sfn "$FENCE_AGENT" "$FENCE_LINK"
    for node in $(cluster_nodes); do
        node_create "$node"
        node_in "$node" bash "$LAB_ROOT/lab.sh" up libvirt ceph_mon
    done
    node_in node1 bash "$LAB_ROOT/lab.sh" up ceph_quorum
    for node in $(cluster_nodes); do node_in "$node" bash "$LAB_ROOT/lab.sh" up ceph_daemons; done
    node_in node1 bash "$LAB_ROOT/lab.sh" up ceph_health
    # Corosync everywhere first: the cluster is quorate once every node has been seen
    # (wait_for_all), so no node is fenced for being slower to boot than the others.
    for node in $(cluster_nodes); do node_in "$node" bash "$LAB_ROOT/lab.sh" up corosync; done
    for node in $(cluster_nodes); do node_in "$node" bash "$LAB_ROOT/lab.sh" up pacemaker; done
    node_in node1 bash "$LAB_ROOT/lab.sh" up pacemaker_members
}

nodes_down() {
    local node pids=()
    [ -s "$CLUSTER_DIR/nodes" ] || return 0
    # Pacemaker first, on every node at once, so no VM is moved to a node about to stop;
    # whatever is left after that is cut off like a power failure.
    for node in $(cluster_nodes); do
        node_alive "$node" || continue
        node_in "$node" bash "$LAB_ROOT/lab.sh" down pacemaker &
        pids+=($!)
    done
    [ ${#pids[@]} -eq 0 ] || wait "${pids[@]}" || true
    for node in $(cluster_nodes); do node_power_off "$node"; done
    if holder_alive "$LAB_DIR/bridge.pid" "$LAB_DIR/bridge.netns"; then
        kill -KILL "$(cat "$LAB_DIR/bridge.pid")"
        log "bridge namespace removed"
    fi
    rm -f "$LAB_DIR/bridge.pid"
    [ "$(readlink "$FENCE_LINK" 2>/dev/null)" != "$FENCE_AGENT" ] || rm -f "$FENCE_LINK"
}

nodes_reset() {
    nodes_down
    rm -rf "$LAB_DIR/nodes"/node* "$CLUSTER_DIR"
    log "multi-node lab state removed"
}

nodes_status() {
    local node
    [ -s "$CLUSTER_DIR/nodes" ] || { echo "nodes: none"; return 0; }
    for node in $(cluster_nodes); do
        if node_alive "$node"; then
            echo "$node: on ($(node_ip "$node"), holder pid $(cat "$(node_dir "$node")/holder.pid"))"
        else
            echo "$node: off"
        fi
    done
}
