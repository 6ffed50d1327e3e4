#!/usr/bin/env bash
# Local hypervisor lab: starts real daemons on this machine, by hand (no systemd here).
#
#   lab/lab.sh up   [component...]   start components (default: every enabled one), idempotent
#   lab/lab.sh down [component...]   stop what the lab started, by PID, in reverse order
#   lab/lab.sh status                one line per component
#   lab/lab.sh reset component...    wipe a component's persistent state (Ceph data)
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
LAB_COMPONENTS_DEFAULT=(libvirt ceph pacemaker)
read -r -a LAB_COMPONENTS <<<"${LAB_COMPONENTS:-${LAB_COMPONENTS_DEFAULT[*]}}"

# shellcheck source=lab/lib.sh
source "$LAB_ROOT/lib.sh"
for f in "$LAB_ROOT"/components/*.sh; do
    # shellcheck disable=SC1090
    source "$f"
done

main() {
    local action=${1:-status}
    shift || true
    local comps=("$@")
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
    *)
        echo "usage: $0 up|down|status|reset [component...]" >&2
        exit 2 ;;
    esac
}

main "$@"
