#!/bin/sh
# The holder of a lab node. lab/nodes.sh runs it through `unshare --mount --uts --net` so it
# starts inside the node's fresh namespaces: it gives the node its hostname, a private /run and
# /dev/shm (libqb's IPC lives there) and private copies of the directories where libvirt, Ceph,
# Corosync and Pacemaker keep their state (and the site hooks with their log), then sleeps. The node lives as long as the
# processes of its network namespace; killing them all is the lab's power cut.
#
#   node-init.sh NODE ROOT HOSTS_FILE PID_FILE
set -eu
node=$1 root=$2 hosts=$3 pidfile=$4

hostname "$node"
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
for dir in etc/libvirt etc/ceph etc/corosync etc/pacemaker etc/gridvirt var/log/gridvirt \
    var/lib/libvirt var/lib/ceph var/lib/pacemaker var/lib/corosync \
    var/log/libvirt var/log/ceph var/log/pacemaker var/log/corosync var/cache/libvirt; do
    mkdir -p "$root/$dir" "/$dir"
    mount --bind "$root/$dir" "/$dir"
done
# Node names resolve to the lab addresses for every process of the node (QEMU included).
mount --bind "$hosts" /etc/hosts
mkdir -p /run/lock /run/ceph /run/libvirt /run/crm
ip link set lo up
echo $$ >"$pidfile"
exec sleep infinity
