# shellcheck shell=bash
# DHCP + DNS test network: dnsmasq serving the address registry's reservations to lab guests.
# Not in the default component list; tests bring it up with `lab/lab.sh up dhcp`.
#
#   bridge gvaddr0 (root namespace, no address)
#     └─ veth gvdhcp-br ══ gvdhcp0 (namespace gvdhcp, $LAB_DHCP_ADDR, $LAB_DHCP_ADDR6) ── dnsmasq
#
# Guests plug their NIC into gvaddr0. This machine has no address on that bridge, so no
# test traffic can leave it; only the namespace side holds an address (a 10.x test network
# that is not this machine's own).
#
# dnsmasq reads the configuration that the address_services role wrote ($LAB_DHCP_CONF,
# default $NODE_DIR/dhcp/gvlab.conf, which must name interface gvdhcp0). It runs in the
# foreground under our own PID record, so `down` stops exactly the process `up` started.

LAB_DHCP_BRIDGE=${LAB_DHCP_BRIDGE:-gvaddr0}
LAB_DHCP_NETNS=${LAB_DHCP_NETNS:-gvdhcp}
LAB_DHCP_ADDR=${LAB_DHCP_ADDR:-10.213.77.1/24}
# dnsmasq serves DHCPv6 only on a prefix the interface has an address in (a ULA, never routed).
LAB_DHCP_ADDR6=${LAB_DHCP_ADDR6:-fd77:213:77::1/64}

_dhcp_conf() { echo "${LAB_DHCP_CONF:-$NODE_DIR/dhcp/gvlab.conf}"; }
_dhcp_pidfile() { echo "$NODE_DIR/run/dnsmasq-dhcp.pid"; }

# No IPv6 link-local address either: the root side of the test network stays address-free.
_dhcp_no_ipv6() {
    local f=/proc/sys/net/ipv6/conf/$1/disable_ipv6
    [ ! -w "$f" ] || echo 1 >"$f"
}

_dhcp_network_up() {
    if ! ip link show "$LAB_DHCP_BRIDGE" >/dev/null 2>&1; then
        ip link add "$LAB_DHCP_BRIDGE" type bridge
        _dhcp_no_ipv6 "$LAB_DHCP_BRIDGE"
        log "bridge $LAB_DHCP_BRIDGE created (no address)"
    fi
    ip link set "$LAB_DHCP_BRIDGE" up
    [ -e "/run/netns/$LAB_DHCP_NETNS" ] || ip netns add "$LAB_DHCP_NETNS"
    if ! ip link show gvdhcp-br >/dev/null 2>&1; then
        ip link add gvdhcp-br type veth peer name gvdhcp0 netns "$LAB_DHCP_NETNS"
        _dhcp_no_ipv6 gvdhcp-br
        ip link set gvdhcp-br master "$LAB_DHCP_BRIDGE"
    fi
    ip link set gvdhcp-br up
    ip netns exec "$LAB_DHCP_NETNS" ip link set lo up
    ip netns exec "$LAB_DHCP_NETNS" ip link set gvdhcp0 up
    # `ip addr replace` is idempotent: a rerun keeps the one address.
    ip netns exec "$LAB_DHCP_NETNS" ip addr replace "$LAB_DHCP_ADDR" dev gvdhcp0
    # nodad: usable at once, so dnsmasq binds its DHCPv6 socket to it when it starts.
    ip netns exec "$LAB_DHCP_NETNS" ip -6 addr replace "$LAB_DHCP_ADDR6" dev gvdhcp0 nodad
}

dhcp_up() {
    local conf pidfile
    conf=$(_dhcp_conf)
    pidfile=$(_dhcp_pidfile)
    _dhcp_network_up
    pid_alive "$pidfile" && return 0
    [ -s "$conf" ] || die "no dnsmasq configuration at $conf: run the address_services role first"
    # nsenter without --fork execs dnsmasq itself, so $! is dnsmasq's PID. It runs as root:
    # the lab's files live under the checkout, which the unprivileged user cannot read.
    nsenter --net="/run/netns/$LAB_DHCP_NETNS" \
        /usr/sbin/dnsmasq --keep-in-foreground --user=root --conf-file="$conf" \
        --log-facility="$NODE_DIR/log/dnsmasq-dhcp.log" \
        </dev/null >>"$NODE_DIR/log/dnsmasq-dhcp.out" 2>&1 &
    echo $! >"$pidfile"
    # Ready once it listens for DHCP in the namespace; a bad configuration makes it exit.
    local deadline=$((SECONDS + 10))
    until _dhcp_listening; do
        pid_alive "$pidfile" || die "dnsmasq exited: see $NODE_DIR/log/dnsmasq-dhcp.out"
        [ "$SECONDS" -lt "$deadline" ] || die "dnsmasq does not listen on port 67 after 10s"
        sleep 0.2
    done
    log "dnsmasq started in namespace $LAB_DHCP_NETNS (pid $(cat "$pidfile"))"
}

# _dhcp_listening: something holds the DHCP socket (port 67) in the namespace.
_dhcp_listening() {
    ip netns exec "$LAB_DHCP_NETNS" ss -H -uln 'sport = :67' | grep -q .
}

dhcp_down() {
    stop_pid dnsmasq "$(_dhcp_pidfile)"
    ip link del gvdhcp-br 2>/dev/null || true
    [ ! -e "/run/netns/$LAB_DHCP_NETNS" ] || ip netns del "$LAB_DHCP_NETNS"
    ip link del "$LAB_DHCP_BRIDGE" 2>/dev/null || true
}

dhcp_status() {
    local s=down br=absent net=absent
    pid_alive "$(_dhcp_pidfile)" && s="up (pid $(cat "$(_dhcp_pidfile)"))"
    ip link show "$LAB_DHCP_BRIDGE" >/dev/null 2>&1 && br=present
    [ -e "/run/netns/$LAB_DHCP_NETNS" ] && net="present ($LAB_DHCP_ADDR, $LAB_DHCP_ADDR6)"
    echo "dhcp: dnsmasq $s, bridge $LAB_DHCP_BRIDGE $br, namespace $LAB_DHCP_NETNS $net"
}

dhcp_reset() {
    dhcp_down
    rm -rf "$NODE_DIR/dhcp"
}
