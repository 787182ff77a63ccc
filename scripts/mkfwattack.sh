#!/bin/sh
# mkfwattack.sh OUT BIN: the fwattack disk (tests/guests/fwattack.S). BIN is
# the 4 KiB program (sector 0: the boot stub, 1-7: its body). OUT, 4 MiB,
# MBR with two partitions (LBA 2048 and 4096, 1 MiB each); the program is
# in sector 0 of the disk (case 1) and of partitions 1 (case 2) and 2
# (case 3), its case byte at offset 437; the disk's own sector 0 keeps the
# partition table (the stub ends before byte 440).
set -eu
OUT=$1 BIN=$2
SFDISK=$(command -v sfdisk || echo /usr/sbin/sfdisk)
rm -f "$OUT"
dd if=/dev/zero of="$OUT" bs=1M count=4 2>/dev/null
"$SFDISK" --quiet --no-reread --no-tell-kernel "$OUT" <<PT
label: dos
unit: sectors
start=2048, size=2048, type=da
start=4096, size=2048, type=da
PT
put() { # put LBA CASE
    dd if="$BIN" of="$OUT" bs=1 count=437 seek=$(($1 * 512)) conv=notrunc 2>/dev/null
    printf "\\$(printf %o "$2")" | dd of="$OUT" bs=1 seek=$(($1 * 512 + 437)) conv=notrunc 2>/dev/null
    dd if="$BIN" of="$OUT" bs=512 skip=1 count=7 seek=$(($1 + 1)) conv=notrunc 2>/dev/null
    if [ "$1" -ne 0 ]; then printf '\125\252' | dd of="$OUT" bs=1 seek=$(($1 * 512 + 510)) conv=notrunc 2>/dev/null; fi
}
put 0 1
put 2048 2
put 4096 3
