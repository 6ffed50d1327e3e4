# shellcheck shell=bash
# Corosync 3 (knet, loopback) + Pacemaker, one node. The CIB is pre-seeded before the first
# start (the DC is then elected in seconds instead of after a 20 s dc-deadtime) with stonith
# off and no-quorum-policy=ignore: one node can neither fence nor lose quorum meaningfully.
# Traps: shared lab notes #4-#6.

PCMK_CLUSTER=${PCMK_CLUSTER:-gridvirt-lab}

pacemaker_dirs() {
    mkdir -p /var/lib/pacemaker/{cib,pengine,blackbox,cores} /var/log/pacemaker /run/crm \
        /var/lib/corosync "$NODE_DIR/log/cluster"
    chown -R hacluster:haclient /var/lib/pacemaker /var/log/pacemaker /run/crm
}

pacemaker_write_corosync_conf() {
    # One key per line: corosync rejects `node { a: b }` on one line.
    cat >/etc/corosync/corosync.conf <<EOC
totem {
    version: 2
    cluster_name: $PCMK_CLUSTER
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 3000
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: $(uname -n)
        nodeid: 1
    }
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_logfile: yes
    logfile: $NODE_DIR/log/cluster/corosync.log
    to_syslog: no
    to_stderr: no
    timestamp: on
}
EOC
}

pacemaker_seed_cib() {
    local cib=/var/lib/pacemaker/cib/cib.xml
    [ -s "$cib" ] && return 0
    cibadmin --empty >"$cib"
    CIB_file=$cib cibadmin --modify --xml-text \
        '<crm_config><cluster_property_set id="cib-bootstrap-options">
           <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="2s"/>
           <nvpair id="opt-stonith-enabled" name="stonith-enabled" value="false"/>
           <nvpair id="opt-no-quorum-policy" name="no-quorum-policy" value="ignore"/>
           <nvpair id="opt-cluster-recheck" name="cluster-recheck-interval" value="1min"/>
         </cluster_property_set></crm_config>'
    chown hacluster:haclient /var/lib/pacemaker/cib/cib*
}

pacemaker_up() {
    local run=$NODE_DIR/run
    pacemaker_dirs
    if ! pid_alive "$run/corosync.pid"; then
        pacemaker_write_corosync_conf
        corosync
        wait_for corosync 30 corosync-cfgtool -s
        pgrep -x corosync | head -n 1 >"$run/corosync.pid"
        log "corosync started (pid $(cat "$run/corosync.pid"))"
    fi
    if ! pid_alive "$run/pacemakerd.pid"; then
        pacemaker_seed_cib
        # pacemakerd stays in the foreground.
        setsid pacemakerd >>"$NODE_DIR/log/cluster/pacemakerd.log" 2>&1 </dev/null &
        echo $! >"$run/pacemakerd.pid"
        wait_for "pacemaker DC" 60 pacemaker_has_dc
        log "pacemaker started (pid $(cat "$run/pacemakerd.pid"))"
    fi
}

pacemaker_has_dc() {
    crm_mon --output-as=xml --one-shot 2>/dev/null | python3 -c '
import sys
import xml.etree.ElementTree as ET
summary = ET.parse(sys.stdin).find("summary/current_dc")
sys.exit(0 if summary is not None and summary.get("present") == "true" else 1)'
}

pacemaker_down() {
    local run=$NODE_DIR/run
    # pacemakerd stops the resources (VMs) and its children before it exits.
    stop_pid pacemakerd "$run/pacemakerd.pid" 120
    stop_pid corosync "$run/corosync.pid" 30
}

pacemaker_reset() {
    pacemaker_down
    rm -f /var/lib/pacemaker/cib/cib* /var/lib/pacemaker/pengine/*
}

pacemaker_status() {
    local s=down
    pid_alive "$NODE_DIR/run/pacemakerd.pid" && s="up (pid $(cat "$NODE_DIR/run/pacemakerd.pid"))"
    echo "pacemaker: $s"
}
