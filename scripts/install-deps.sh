#!/bin/sh
# Install the Debian 12 packages hv86 needs to build, run and test, if missing.
# Idempotent and quick when everything is present. Used by `make deps`.
set -eu
PKGS="build-essential gcc-multilib binutils make grub-pc-bin grub-common xorriso mtools
qemu-system-x86 bochs bochsbios vgabios libcmocka-dev:i386 libzydis-dev:i386
libcapstone-dev:i386 qemu-user expect python3-pexpect fdisk gdisk cpio dosfstools
kmod e2fsprogs curl seabios"
missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! dpkg --print-foreign-architectures | grep -qx i386; then
    $SUDO dpkg --add-architecture i386
fi
# A mirror mid-sync can fail one index; the rest is still usable, so go on.
$SUDO apt-get update -q || echo "install-deps: apt-get update reported errors, continuing"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
