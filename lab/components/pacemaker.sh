# shellcheck shell=bash
# Corosync 3 (knet, loopback) + Pacemaker, one node. The CIB is pre-seeded before the first
# start (the DC is then elected in seconds instead of after a 20 s dc-deadtime) with stonith
# off and no-quorum-policy=ignore: one node can neither fence nor lose quorum meaningfully.
# Traps: shared lab notes #4-#6.
# In a multi-node lab (lab/nodes.sh, LAB_NODES set) the cluster is the real thing: every node
# in the nodelist, quorum first reached with all nodes present (wait_for_all), fencing on
# through the lab's fence agent, no-quorum-policy=stop, resources a little sticky.

PCMK_CLUSTER=${PCMK_CLUSTER:-gridvirt-lab}

pacemaker_dirs() {
    mkdir -p /var/lib/pacemaker/{cib,pengine,blackbox,cores} /var/log/pacemaker /run/crm \
        /var/lib/corosync "$NODE_DIR/log/cluster"
    chown -R hacluster:haclient /var/lib/pacemaker /var/log/pacemaker /run/crm
}

# The nodelist: this machine on loopback, or every lab node on the lab network.
corosync_nodelist() {
    local node
    if [ -z "${LAB_NODES:-}" ]; then
        printf '    node {\n        ring0_addr: 127.0.0.1\n        name: %s\n        nodeid: 1\n    }\n' "$(uname -n)"
        return 0
    fi
    for node in $LAB_NODES; do
        printf '    node {\n        ring0_addr: %s.%s\n        name: %s\n        nodeid: %s\n    }\n' \
            "$LAB_NET" "${node#node}" "$node" "${node#node}"
    done
}

pacemaker_write_corosync_conf() {
    local wait_for_all="" token=3000
    # Corosync's default token. The three nodes keep it under CI load because the guests
    # run at a lower priority than the softirqs carrying the token (libvirt.sh).
    [ -z "${LAB_NODES:-}" ] || wait_for_all="    wait_for_all: 1"
    # One key per line: corosync rejects `node { a: b }` on one line.
    cat >/etc/corosync/corosync.conf <<EOC
totem {
    version: 2
    cluster_name: $PCMK_CLUSTER
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: $token
}
nodelist {
$(corosync_nodelist)
}
quorum {
    provider: corosync_votequorum
$wait_for_all
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
    if [ -z "${LAB_NODES:-}" ]; then
        pacemaker_seed_single "$cib"
    else
        pacemaker_seed_multi "$cib"
    fi
    chown hacluster:haclient /var/lib/pacemaker/cib/cib*
}

pacemaker_seed_single() {
    CIB_file=$1 cibadmin --modify --xml-text \
        '<crm_config><cluster_property_set id="cib-bootstrap-options">
           <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="2s"/>
           <nvpair id="opt-stonith-enabled" name="stonith-enabled" value="false"/>
           <nvpair id="opt-no-quorum-policy" name="no-quorum-policy" value="ignore"/>
           <nvpair id="opt-cluster-recheck" name="cluster-recheck-interval" value="1min"/>
         </cluster_property_set></crm_config>'
}

# Every node seeds the same CIB: fencing by the lab's agent (a power cut, kept off so tests
# decide when a node comes back), and resource-stickiness 1 so that a VM without placement
# stays where it runs while a preferred_host (score 100) still pulls its VM back.
pacemaker_seed_multi() {
    local nodes
    read -r -a nodes <<<"$LAB_NODES"
    CIB_file=$1 cibadmin --modify --xml-text \
        '<crm_config><cluster_property_set id="cib-bootstrap-options">
           <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="5s"/>
           <nvpair id="opt-stonith-enabled" name="stonith-enabled" value="true"/>
           <nvpair id="opt-stonith-action" name="stonith-action" value="off"/>
           <nvpair id="opt-stonith-timeout" name="stonith-timeout" value="90s"/>
           <nvpair id="opt-no-quorum-policy" name="no-quorum-policy" value="stop"/>
           <nvpair id="opt-cluster-recheck" name="cluster-recheck-interval" value="1min"/>
         </cluster_property_set></crm_config>'
    CIB_file=$1 cibadmin --create -o configuration --xml-text \
        '<rsc_defaults><meta_attributes id="rsc-options">
           <nvpair id="rsc-options-resource-stickiness" name="resource-stickiness" value="1"/>
         </meta_attributes></rsc_defaults>'
    CIB_file=$1 cibadmin --create -o resources --xml-text \
        "<primitive id=\"lab-fence\" class=\"stonith\" type=\"fence_gridvirt_lab\">
           <instance_attributes id=\"lab-fence-params\">
             <nvpair id=\"lab-fence-hosts\" name=\"pcmk_host_list\" value=\"${nodes[*]}\"/>
             <nvpair id=\"lab-fence-dir\" name=\"lab_dir\" value=\"$LAB_DIR\"/>
           </instance_attributes>
           <operations><op id=\"lab-fence-monitor\" name=\"monitor\" interval=\"60s\"/></operations>
         </primitive>"
}

corosync_up() {
    local run=$NODE_DIR/run
    pacemaker_dirs
    if ! pid_alive "$run/corosync.pid"; then
        pacemaker_write_corosync_conf
        corosync
        wait_for corosync 30 corosync-cfgtool -s
        pid_in_netns corosync >"$run/corosync.pid"
        log "corosync started (pid $(cat "$run/corosync.pid"))"
    fi
}

corosync_down() { stop_pid corosync "$NODE_DIR/run/corosync.pid" 30; }

pacemaker_up() {
    local run=$NODE_DIR/run
    corosync_up
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

# Every node of the multi-node lab is an online member (checked from one node).
pacemaker_members_up() {
    wait_for "every node online in Pacemaker" 180 pacemaker_all_online
    log "Pacemaker: every node online ($LAB_NODES)"
}

pacemaker_all_online() {
    local nodes
    read -r -a nodes <<<"$LAB_NODES"
    crm_mon --output-as=xml --one-shot 2>/dev/null | python3 -c '
import sys
import xml.etree.ElementTree as ET
wanted = set(sys.argv[1:])
online = set(n.get("name") for n in ET.parse(sys.stdin).iter("node")
             if n.get("online") == "true" and n.get("pending") == "false")
sys.exit(0 if wanted <= online else 1)' "${nodes[@]}"
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
