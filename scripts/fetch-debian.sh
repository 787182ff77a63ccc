#!/bin/sh
# fetch-debian.sh DIR — fetch Debian's i386 kernel and busybox-static into DIR.
#
# Produces (idempotently; a second run with everything present does nothing):
#   DIR/vmlinuz   the bzImage of the current linux-image-686:i386 dependency
#   DIR/vmlinux   the uncompressed kernel ELF pulled out of that bzImage
#   DIR/busybox   the statically linked busybox from busybox-static:i386
#   DIR/debs/     the downloaded .deb files; DIR/root/ their extracted trees
#                 (DIR/root/lib/modules/... stays there for later initrd work)
#
# Used by the decoder's differential test (corpus of real i386 code) and meant
# to be reused by the Linux-guest work, so it keeps the whole extracted tree.
# Nothing fetched here is committed: DIR lives under build/.
set -eu
DIR=${1:?usage: fetch-debian.sh DIR}
mkdir -p "$DIR/debs" "$DIR/root"
DIR=$(cd "$DIR" && pwd)

if [ -s "$DIR/vmlinux" ] && [ -s "$DIR/vmlinuz" ] && [ -s "$DIR/busybox" ]; then
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- apt: i386 architecture and package lists -------------------------------
if ! dpkg --print-foreign-architectures | grep -qx i386; then
    $SUDO dpkg --add-architecture i386
fi
if ! apt-cache show linux-image-686:i386 >/dev/null 2>&1; then
    # A mirror mid-sync can fail one index; the rest is still usable.
    $SUDO apt-get update -q || echo "fetch-debian: apt-get update reported errors, continuing"
fi

# --- tools needed to unpack every kernel compression Debian might use -------
need=""
for tool_pkg in xz:xz-utils zstd:zstd lz4:lz4 bzip2:bzip2 lzma:xz-utils gzip:gzip lzop:lzop; do
    command -v "${tool_pkg%%:*}" >/dev/null 2>&1 || need="$need ${tool_pkg#*:}"
done
if [ -n "$need" ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $need
fi

# --- resolve the metapackage to the real kernel image package ---------------
kpkg=$(apt-cache depends linux-image-686:i386 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "fetch-debian: cannot resolve linux-image-686:i386" >&2; exit 1; }
kpkg=${kpkg%:i386}
echo "fetch-debian: kernel package $kpkg"

cd "$DIR/debs"
for p in "$kpkg:i386" busybox-static:i386; do
    name=${p%:i386}
    ls "${name}"_*_i386.deb >/dev/null 2>&1 || apt-get download -q "$p"
done
for deb in "$DIR"/debs/*.deb; do
    dpkg-deb -x "$deb" "$DIR/root"
done

cp "$(ls "$DIR"/root/boot/vmlinuz-* | head -n 1)" "$DIR/vmlinuz"
cp "$DIR/root/bin/busybox" "$DIR/busybox"

# --- extract vmlinux: find the compressed payload inside the bzImage --------
# The bzImage setup code and decompressor are followed by the payload; its
# format is found by magic number (same idea as Linux scripts/extract-vmlinux).
# Each candidate offset is tried until one yields an ELF file.
is_elf() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' \n')" = '177ELF' ]; }
try_format() { # $1 = grep -P magic, $2 = decompress command
    for off in $(LC_ALL=C grep -obUaP "$1" "$DIR/vmlinuz" | cut -d: -f1); do
        tail -c +$((off + 1)) "$DIR/vmlinuz" | $2 > "$DIR/vmlinux.tmp" 2>/dev/null || true
        if is_elf "$DIR/vmlinux.tmp"; then
            mv "$DIR/vmlinux.tmp" "$DIR/vmlinux"
            echo "fetch-debian: vmlinux extracted ($2 payload at offset $off)"
            return 0
        fi
    done
    return 1
}
try_format '\x1f\x8b\x08' 'gzip -dc' ||
try_format '\xfd\x37\x7a\x58\x5a\x00' 'xz -dc' ||
try_format '\x28\xb5\x2f\xfd' 'zstd -dc' ||
try_format '\x5d\x00\x00\x00' 'xz -dc --format=lzma' ||
try_format '\x02\x21\x4c\x18' 'lz4 -dc' ||
try_format 'BZh' 'bzip2 -dc' ||
try_format '\x89\x4c\x5a' 'lzop -dc' ||
{ rm -f "$DIR/vmlinux.tmp"; echo "fetch-debian: no known payload in vmlinuz" >&2; exit 1; }
rm -f "$DIR/vmlinux.tmp"
