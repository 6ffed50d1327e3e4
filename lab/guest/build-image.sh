#!/usr/bin/env bash
# Builds the lab's self-contained bootable test disk, offline from Debian packages:
# MBR + SYSLINUX on a FAT partition holding a Debian cloud kernel and a busybox initramfs
# (lab/guest/init), plus a one-sector data partition holding the boot counter.
# Nothing is mounted (mtools + syslinux work on the image file), so it builds in seconds.
# Beside it, OUT-cdrom.iso: the same kernel and initramfs on a bootable ISO 9660 CD-ROM
# (ISOLINUX, El Torito), whose guest says "boot medium=cdrom" (the CD-ROM boot tests).
#
#   build-image.sh [--size SIZE] [--fill] OUT.qcow2     (also writes OUT.raw beside it)
#
# --size grows the disk (default 40M); --fill writes pseudo-random data into the unused
# space so copies of the image cost what copies of a real disk cost (benchmarks).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SIZE=40M
FILL=0
while [ $# -gt 1 ]; do
    case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --fill) FILL=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
OUT=${1:?usage: build-image.sh [--size SIZE] [--fill] OUT.qcow2}
mkdir -p "$(dirname "$OUT")"
OUT_DIR=$(cd "$(dirname "$OUT")" && pwd)
CACHE=${GUEST_CACHE:-$OUT_DIR/cache}
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
    scsi_common scsi_mod sd_mod virtio_scsi button evdev failover net_failover virtio_net)
BOOT_MIB=16      # FAT partition: kernel (~8 MiB) + initramfs (~2 MiB)
START_MIB=1

mkdir -p "$CACHE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch_kernel() {
    # The meta package names the current cloud kernel in its Depends field.
    local meta pkg
    if ! ls "$CACHE"/linux-image-*-cloud-amd64_*.deb >/dev/null 2>&1; then
        (cd "$CACHE" && apt-get download -q linux-image-cloud-amd64 >/dev/null 2>&1)
        meta=$(ls "$CACHE"/linux-image-cloud-amd64_*.deb)
        pkg=$(dpkg-deb -f "$meta" Depends | sed 's/[ ,(].*//')
        (cd "$CACHE" && apt-get download -q "$pkg" >/dev/null 2>&1)
        rm -f "$meta"
    fi
    dpkg-deb -x "$(find "$CACHE" -name 'linux-image-*-cloud-amd64_*.deb' | sort | tail -n 1)" \
        "$work/kpkg"
}

build_initramfs() {
    local root=$work/initramfs kver m path
    kver=$(ls "$work/kpkg/lib/modules")
    mkdir -p "$root"/{bin,dev,proc,sys,etc,lib/modules}
    cp /bin/busybox "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    cp "$HERE/init" "$root/init"
    chmod +x "$root/init"
    for m in "${MODULES[@]}"; do
        path=$(find "$work/kpkg/lib/modules/$kver" -name "$m.ko" | head -n 1)
        [ -n "$path" ] || { echo "module $m not found in the kernel package" >&2; exit 1; }
        cp "$path" "$root/lib/modules/"
    done
    # One module name per line, in load order.
    printf '%s\n' "${MODULES[@]}" >"$root/etc/modules"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$work/initrd.gz"
    cp "$work/kpkg/boot/vmlinuz-$kver" "$work/vmlinuz"
}

# boot_config FILE [KERNEL ARGS...]: the SYSLINUX/ISOLINUX configuration booting the kernel
# and initramfs at the root of the medium, with the extra kernel arguments given.
boot_config() {
    local file=$1
    shift
    cat >"$file" <<EOS
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0,115200 quiet loglevel=3 panic=-1${*:+ $*}
EOS
}

build_boot_partition() {
    local fat=$work/boot.fat
    boot_config "$work/syslinux.cfg"
    mkfs.fat -C -n GVBOOT "$fat" $((BOOT_MIB * 1024)) >/dev/null
    mcopy -i "$fat" "$work/vmlinuz" "$work/initrd.gz" "$work/syslinux.cfg" ::/
    syslinux --install "$fat"
}

build_cdrom() {
    local iso=$1 tree=$work/iso
    mkdir -p "$tree/isolinux"
    cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$tree/isolinux/"
    cp "$work/vmlinuz" "$work/initrd.gz" "$tree/"
    boot_config "$tree/isolinux/isolinux.cfg" gridvirt.medium=cdrom
    xorriso -as mkisofs -quiet -o "$iso.tmp" -V GVCDROM -b isolinux/isolinux.bin \
        -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table "$tree"
    mv "$iso.tmp" "$iso"
}

assemble_disk() {
    local raw=$1 data_start=$((START_MIB + BOOT_MIB))
    truncate -s 0 "$raw"
    truncate -s "$SIZE" "$raw"
    sfdisk --quiet "$raw" <<EOS
label: dos
start=${START_MIB}MiB, size=${BOOT_MIB}MiB, type=6, bootable
start=${data_start}MiB, size=1MiB, type=83
EOS
    dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
    dd if="$work/boot.fat" of="$raw" bs=1M seek=$START_MIB conv=notrunc status=none
    printf 'GVGUEST1\n0\n' | dd of="$raw" bs=512 count=1 seek=$((data_start * 2048)) conv=notrunc,sync status=none
    if [ "$FILL" = 1 ]; then
        local total_mib
        total_mib=$(( $(stat -c %s "$raw") / 1048576 ))
        # Fill the space after the partitions: openssl is far faster than /dev/urandom.
        local fill_mib=$((total_mib - data_start - 1))
        head -c $((fill_mib * 1048576)) /dev/zero |
            openssl enc -aes-128-ctr -nosalt -pass pass:gridvirt 2>/dev/null |
            dd of="$raw" bs=1M seek=$((data_start + 1)) iflag=fullblock conv=notrunc status=none
    fi
}

fetch_kernel
build_initramfs
build_boot_partition
raw=${OUT%.qcow2}.raw
assemble_disk "$raw"
qemu-img convert -f raw -O qcow2 "$raw" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
build_cdrom "${OUT%.qcow2}-cdrom.iso"
echo "built $OUT, $raw ($SIZE) and ${OUT%.qcow2}-cdrom.iso"
