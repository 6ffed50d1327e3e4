#!/usr/bin/env bash
# Local hypervisor lab: starts real daemons on this machine, by hand (no systemd here).
#
#   lab/lab.sh up   [component...]   start components (default: every enabled one), idempotent
#   lab/lab.sh down [component...]   stop what the lab started, by PID, in reverse order
#   lab/lab.sh status                one line per component
#   lab/lab.sh reset component...    wipe a component's persistent state (Ceph data)
#
# A cluster of N nodes on this machine, each in its own namespaces (lab/nodes.sh):
#   lab/lab.sh nodes-up [N]          create and start nodes node1..nodeN (default 3), idempotent
#   lab/lab.sh nodes-down            stop Pacemaker everywhere, then power every node off
#   lab/lab.sh nodes-reset           nodes-down, then wipe the nodes' state
#   lab/lab.sh nodes-status          one line per node
#   lab/lab.sh node-on NODE | node-off NODE     power a node on (stack restarted) / off (cut)
#   lab/lab.sh node-cut NODE | node-join NODE   unplug / replug a node's network
#   lab/lab.sh node-exec NODE CMD...            run a command inside a node
#   lab/lab.sh libvirtd-restart                 restart this node's libvirtd (LAB_NODE), guests run on
#
# Each component is a file lab/components/<name>.sh defining <name>_up, <name>_down and
# <name>_status. State, PID files and logs live under $LAB_DIR (default .lab/, git-ignored),
# one directory per node ("local" for this machine) so more nodes can be added later.
set -euo pipefail

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$LAB_ROOT")
export LAB_ROOT REPO_ROOT
export LAB_DIR=${LAB_DIR:-$REPO_ROOT/.lab}
export LAB_NODE=${LAB_NODE:-local}
export NODE_DIR=$LAB_DIR/nodes/$LAB_NODE
# The niceness of libvirtd and so of the TCG guests (components/libvirt.sh).
export LAB_GUEST_NICE=${LAB_GUEST_NICE:-10}
LAB_COMPONENTS_DEFAULT=(libvirt ceph pacemaker)
read -r -a LAB_COMPONENTS <<<"${LAB_COMPONENTS:-${LAB_COMPONENTS_DEFAULT[*]}}"

# shellcheck source=lab/lib.sh
source "$LAB_ROOT/lib.sh"
# shellcheck source=lab/nodes.sh
source "$LAB_ROOT/nodes.sh"
for f in "$LAB_ROOT"/components/*.sh; do
    # shellcheck disable=SC1090
    source "$f"
done

main() {
    local action=${1:-status}
    shift || true
    local comps=()
    case "$action" in up | down | status | reset) comps=("$@") ;; esac
    [ ${#comps[@]} -gt 0 ] || comps=("${LAB_COMPONENTS[@]}")
    mkdir -p "$NODE_DIR/run" "$NODE_DIR/log"
    case "$action" in
    up)
        for c in "${comps[@]}"; do "${c}_up"; done ;;
    down)
        local i
        for ((i = ${#comps[@]} - 1; i >= 0; i--)); do "${comps[i]}_down"; done ;;
    status)
        for c in "${comps[@]}"; do "${c}_status"; done ;;
    reset)
        # Wipe a component's persistent state (its data is lost); it must be named.
        [ $# -gt 0 ] || die "name the components to reset"
        for c in "${comps[@]}"; do "${c}_reset"; done ;;
    nodes-up) nodes_up "$@" ;;
    nodes-down) nodes_down ;;
    nodes-reset) nodes_reset ;;
    nodes-status) nodes_status ;;
    node-on) node_power_on "$1" ;;
    node-off) node_power_off "$1" ;;
    node-cut) node_cut "$1" ;;
    node-join) node_join "$1" ;;
    node-exec) node_in "$@" ;;
    libvirtd-restart) libvirtd_restart ;;
    *)
        echo "usage: $0 up|down|status|reset [component...] | nodes-up [N] | nodes-down | nodes-reset" \
            "| nodes-status | node-on|node-off|node-cut|node-join NODE | node-exec NODE CMD..." \
            "| libvirtd-restart" >&2
        exit 2 ;;
    esac
}

main "$@"
