#!/bin/sh
# mkbootdisk.sh OUT KERNEL INITRD
#
# A disk a PC boots from, made without root (no loop mounts), for the
# firmware=bios VM (docs/vmm.md "Guest firmware"):
#   sector 0      MBR: GRUB's boot.img (Debian grub-pc-bin, i386-pc) in its
#                 first 440 bytes, then the partition table (sfdisk)
#   sectors 1-    GRUB's core.img (grub-mkimage -O i386-pc), in the gap
#                 before the first partition, as grub-install embeds it:
#                 boot.img reads core.img's first sector from LBA 1 (its
#                 kernel_sector field, default 1) and core.img's
#                 diskboot.img the rest (its blocklist: LBA 2 on, length
#                 filled in by grub-mkimage)
#   partition 1   ext4 (mke2fs -d), bootable, from 1 MiB: /boot/vmlinuz
#                 (KERNEL, Debian's i386 bzImage), /boot/initrd.img (INITRD)
# core.img carries its configuration (grub-mkimage -c): a serial terminal
# on COM1, so GRUB's output reaches the guest's console without a VGA,
# lines that name the boot loader, then linux/initrd/boot with
# console=ttyS0. The modules it needs are in core.img; nothing is read
# from /boot/grub.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 OUT KERNEL INITRD" >&2; exit 2; }
OUT=$1 KERNEL=$2 INITRD=$3
GRUB_DIR=/usr/lib/grub/i386-pc
SFDISK=$(command -v sfdisk || echo /usr/sbin/sfdisk)
MIB=72                  # disk size (unlike the other test disks, so `disks` tells it apart)
PART_START=2048         # sectors: 1 MiB, room for core.img in the gap
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/root/boot"
cp "$KERNEL" "$tmp/root/boot/vmlinuz"
cp "$INITRD" "$tmp/root/boot/initrd.img"
cat > "$tmp/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
echo "hv86 boot disk: GRUB loading Linux from (hd0,msdos1)"
linux (hd0,msdos1)/boot/vmlinuz console=ttyS0 panic=-1 pnpbios=off
echo "GRUB: loading initrd"
initrd (hd0,msdos1)/boot/initrd.img
echo "GRUB: booting Linux"
boot
CFG
grub-mkimage -O i386-pc -d "$GRUB_DIR" -o "$tmp/core.img" -c "$tmp/grub.cfg" -p '(hd0,msdos1)/boot/grub' \
    biosdisk part_msdos ext2 linux serial terminal echo
core_sectors=$(( ($(stat -c %s "$tmp/core.img") + 511) / 512 ))
[ "$core_sectors" -lt "$PART_START" ] || { echo "$0: core.img ($core_sectors sectors) does not fit before the partition" >&2; exit 1; }

rm -f "$OUT"
dd if=/dev/zero of="$OUT" bs=1M count=0 seek=$MIB 2>/dev/null
"$SFDISK" --quiet --no-reread --no-tell-kernel "$OUT" <<PT
label: dos
unit: sectors
start=$PART_START, type=83, bootable
PT
part_sectors=$(( MIB * 2048 - PART_START ))
# GRUB 2.06 reads ext4 without metadata_csum_seed and orphan_file (features newer than it).
/usr/sbin/mke2fs -q -F -t ext4 -O ^metadata_csum_seed,^orphan_file -L hv86boot -d "$tmp/root" \
    -E offset=$((PART_START * 512)) "$OUT" $((part_sectors / 2))k
dd if="$GRUB_DIR/boot.img" of="$OUT" bs=440 count=1 conv=notrunc 2>/dev/null
dd if="$tmp/core.img" of="$OUT" bs=512 seek=1 conv=notrunc 2>/dev/null
