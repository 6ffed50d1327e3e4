# shellcheck shell=bash
# libvirtd + virtlogd serving qemu:///system. Guests run under TCG (<domain type='qemu'>):
# /dev/kvm exists here but is software-emulated and crashes guests (see shared lab notes).

libvirt_up() {
    local run=$NODE_DIR/run log=$NODE_DIR/log
    # Without group access to /dev/kvm libvirt re-probes QEMU on every call (a define then
    # takes ~44 s). KVM is still unusable; this only stops the re-probing.
    if [ -e /dev/kvm ]; then
        chgrp kvm /dev/kvm 2>/dev/null || true
        chmod 0660 /dev/kvm 2>/dev/null || true
    fi
    mkdir -p /run/libvirt /var/log/libvirt/qemu /var/lib/libvirt/images
    if ! pid_alive "$run/virtlogd.pid"; then
        # A virtlogd left by someone else would hold the socket; only ours is managed here.
        virtlogd --daemon --pid-file "$run/virtlogd.pid"
        wait_for virtlogd 10 test -S /run/libvirt/virtlogd-sock
        log "virtlogd started (pid $(cat "$run/virtlogd.pid"))"
    fi
    if ! pid_alive "$run/libvirtd.pid"; then
        # A node of a multi-node lab listens on the lab network for live migrations
        # (qemu+tcp, configured in its private libvirtd.conf by lab/nodes.sh).
        local listen=()
        [ -z "${LAB_NODES:-}" ] || listen=(--listen)
        # At a lower priority than the lab's daemons: the TCG guests it starts inherit it, so
        # that their busy vCPUs yield to the softirqs carrying Corosync's and Ceph's traffic
        # (Corosync itself runs real-time).
        LIBVIRT_LOG_OUTPUTS="3:file:$log/libvirtd.log" \
            nice -n "$LAB_GUEST_NICE" libvirtd --daemon "${listen[@]}" --pid-file "$run/libvirtd.pid"
        wait_for libvirtd 60 virsh -c qemu:///system version
        log "libvirtd started (pid $(cat "$run/libvirtd.pid"))"
    fi
}

# libvirtd alone restarted: it looks for its hook scripts (the hypervisor role's qemu hook)
# only when it starts. The guests and virtlogd run on.
libvirtd_restart() {
    stop_pid libvirtd "$NODE_DIR/run/libvirtd.pid"
    libvirt_up
}

libvirt_down() {
    local run=$NODE_DIR/run
    if pid_alive "$run/libvirtd.pid"; then
        # Guests are children of nothing we track by PID: destroy them through libvirt first
        # so no QEMU outlives the lab.
        local dom
        for dom in $(virsh -c qemu:///system list --name 2>/dev/null); do
            virsh -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
        done
    fi
    stop_pid libvirtd "$run/libvirtd.pid"
    stop_pid virtlogd "$run/virtlogd.pid"
}

libvirt_status() {
    local run=$NODE_DIR/run s1=down s2=down
    pid_alive "$run/libvirtd.pid" && s1="up (pid $(cat "$run/libvirtd.pid"))"
    pid_alive "$run/virtlogd.pid" && s2="up (pid $(cat "$run/virtlogd.pid"))"
    echo "libvirt: libvirtd $s1, virtlogd $s2"
}
