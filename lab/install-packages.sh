#!/usr/bin/env bash
# Debian packages the lab and the tests need (hypervisor side and test tools). Idempotent:
# apt runs only when something is missing.
set -euo pipefail
PACKAGES=(
    libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils qemu-block-extra
    python3-libvirt python3-lxml libvirt-dev pkg-config gcc
    busybox-static cpio syslinux syslinux-common isolinux xorriso mtools dosfstools fdisk openssl
    isc-dhcp-client
    ceph-mon ceph-mgr ceph-osd ceph-common python3-rbd python3-rados
    pacemaker pacemaker-cli-utils corosync resource-agents crmsh
    python3-pytest python3-pytest-timeout cloud-init
    rsync git make shellcheck
)
# cloud-init is here for its converter (the seed tests), never to configure this machine at
# its next boot.
disable_cloud_init() {
    [ ! -d /etc/cloud ] || [ -e /etc/cloud/cloud-init.disabled ] || touch /etc/cloud/cloud-init.disabled
}
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    disable_cloud_init
    exit 0
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
disable_cloud_init
