#!/bin/sh
# mkdisks.sh GPT_IMG MBR_IMG [BAD_IMG]
#
# Build the raw disk images QEMU/Bochs attach for `make run` and the tests:
#   GPT_IMG  64 MiB, GPT (sgdisk): 1 "mail" 8 MiB Linux fs, 2 "web" 16 MiB
#            Microsoft basic data, 3 "ftp" 24 MiB Linux swap. "mail" holds
#            an ext4 file system (mke2fs -d) with hello.txt ("hello from
#            mail") and seq.txt (seq 1 100000): a guest disk's first files.
#   MBR_IMG  48 MiB, MBR (sfdisk): 1 8 MiB 0x83, 2 12 MiB 0x0c, 3 extended
#            0x05 (rest) holding logicals 5 (8 MiB, 0x82) and 6 (rest, 0x83).
#   BAD_IMG  (optional) 8 MiB GPT whose primary AND backup header CRCs are
#            corrupted: hv86 must report "GPT primary and backup both invalid"
#            for that disk, list no partition of it, and keep booting.
#
# Also writes DIR/disks.expected (DIR = directory of GPT_IMG), generated from
# what sgdisk and sfdisk report about the images they made, not from the
# numbers above. One line per partition, fields separated by one space:
#   DISK PART START SECTORS TYPE "NAME"
#   DISK     registry index hv86 should give the disk: 0 = GPT_IMG (IDE
#            primary master), 1 = MBR_IMG (primary slave), as in the Makefile
#   PART     partition number as the tools number it (MBR logicals from 5;
#            the extended container is listed too)
#   START    first LBA; SECTORS  length in 512-byte sectors
#   TYPE     GPT type GUID (upper case, standard text form) or MBR id 0xNN
#   "NAME"   GPT partition name, "" for MBR
# Lines starting with '#' are comments. The same fields appear in hv86's
# `disks` listing (drivers/disk.h: disk_format_lines) as
#   part DISK PART start START sectors SECTORS (SIZE) type TYPE name "NAME"
set -eu

[ $# -ge 2 ] || { echo "usage: $0 GPT_IMG MBR_IMG [BAD_IMG]" >&2; exit 2; }
GPT_IMG=$1
MBR_IMG=$2
BAD_IMG=${3:-}
EXPECTED=$(dirname "$GPT_IMG")/disks.expected
SGDISK=$(command -v sgdisk || echo /usr/sbin/sgdisk)
SFDISK=$(command -v sfdisk || echo /usr/sbin/sfdisk)

# blank_image FILE MIB: a fresh all-zero sparse file.
blank_image() {
    rm -f "$1"
    dd if=/dev/zero of="$1" bs=1M count=0 seek="$2" 2>/dev/null
}

make_gpt() {
    blank_image "$1" 64
    "$SGDISK" --clear \
        --new=1:0:+8M  --typecode=1:8300 --change-name=1:mail \
        --new=2:0:+16M --typecode=2:0700 --change-name=2:web \
        --new=3:0:+24M --typecode=3:8200 --change-name=3:ftp \
        "$1" >/dev/null
    files=$(mktemp -d)
    echo "hello from mail" > "$files/hello.txt"
    seq 1 100000 > "$files/seq.txt"
    start=$("$SGDISK" --info=1 "$1" | awk '/^First sector:/ {print $3}')
    /usr/sbin/mke2fs -q -F -t ext4 -L mail -d "$files" -E offset=$((start * 512)) "$1" 8M
    rm -rf "$files"
}

make_mbr() {
    blank_image "$1" 48
    "$SFDISK" --quiet --no-reread --no-tell-kernel "$1" <<'EOF'
label: dos
unit: sectors
start=2048, size=8MiB, type=83
size=12MiB, type=c
type=5
size=8MiB, type=82
type=83
EOF
}

# make_bad FILE: a GPT, then every bit inverted of one byte of each header's CRC32
# field (byte 16 of the header; UEFI 2.10 §5.3.2), primary at LBA 1, backup at
# the last LBA. Inverted, not overwritten: the CRC depends on sgdisk's random
# GUIDs, and a constant written over it left it unchanged once in 256 images.
make_bad() {
    blank_image "$1" 8
    "$SGDISK" --clear --new=1:0:+2M --change-name=1:bad1 --new=2:0:+2M --change-name=2:bad2 "$1" >/dev/null
    last=$(( $(stat -c %s "$1") / 512 - 1 ))
    for lba in 1 "$last"; do
        off=$((lba * 512 + 16))
        byte=$(od -An -tu1 -j "$off" -N1 "$1" | tr -d ' ')
        printf "\\$(printf %03o $((byte ^ 255)))" | dd of="$1" bs=1 seek="$off" conv=notrunc 2>/dev/null
        [ "$(od -An -tu1 -j "$off" -N1 "$1" | tr -d ' ')" -eq $((byte ^ 255)) ] ||
            { echo "mkdisks: could not corrupt the GPT header CRC at byte $off of $1" >&2; exit 1; }
    done
}

# gpt_expected DISK FILE: one line per partition from `sgdisk --info`.
gpt_expected() {
    "$SGDISK" --print "$2" | awk '/^ *[0-9]+ +[0-9]+ +[0-9]+ /{print $1}' | while read -r n; do
        "$SGDISK" --info="$n" "$2" | awk -v disk="$1" -v part="$n" '
            /^Partition GUID code:/ { type = $4 }
            /^First sector:/        { start = $3 }
            /^Partition size:/      { size = $3 }
            /^Partition name:/      { name = $0; sub(/^Partition name: \047/, "", name); sub(/\047$/, "", name) }
            END { printf "%s %s %s %s %s \"%s\"\n", disk, part, start, size, type, name }'
    done
}

# mbr_expected DISK FILE: one line per partition from `sfdisk --dump`.
mbr_expected() {
    "$SFDISK" --dump "$2" | awk -v disk="$1" -v dev="$2" '
        index($0, dev) == 1 && / : start=/ {
            part = substr($1, length(dev) + 1)
            line = $0; sub(/^[^:]*: /, "", line)
            start = ""; size = ""; type = ""
            n = split(line, f, ",")
            for (i = 1; i <= n; i++) {
                split(f[i], kv, "="); key = kv[1]; val = kv[2]
                gsub(/ /, "", key); gsub(/ /, "", val)
                if (key == "start") start = val
                else if (key == "size") size = val
                else if (key == "type") type = val
            }
            type = tolower(type); if (length(type) < 2) type = "0" type
            printf "%s %s %s %s 0x%s \"\"\n", disk, part, start, size, type
        }'
}

make_gpt "$GPT_IMG"
make_mbr "$MBR_IMG"
[ -z "$BAD_IMG" ] || make_bad "$BAD_IMG"
{
    echo "# generated by scripts/mkdisks.sh from sgdisk --info and sfdisk --dump"
    echo "# DISK PART START SECTORS TYPE \"NAME\""
    gpt_expected 0 "$GPT_IMG"
    mbr_expected 1 "$MBR_IMG"
} >"$EXPECTED.tmp"
mv "$EXPECTED.tmp" "$EXPECTED"
