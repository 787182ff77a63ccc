#!/bin/sh
# run-i386.sh PROBE PROG [ARG...] — run one i386 host program (a bench),
# natively or under qemu-i386 as scripts/i386-exec.sh decides, after one line
# saying which: figures measured under emulation compare only with figures
# from the same emulator in the same run (the benches print such ratios).
set -u
here=$(dirname "$0")
. "$here/i386-exec.sh"
probe=$1; shift
if ! i386_select "$probe"; then
    echo "$(basename "$1"): cannot run i386 programs: $I386_HOW" >&2
    exit 1
fi
echo "$(basename "$1"): runs $I386_HOW"
exec $I386_RUN "$@"
