#!/bin/sh
# mkinitramfs.sh OUT KIND BUSYBOX
# Build a gzip'ed newc initramfs around Debian's static i386 busybox.
#   KIND=shell     init mounts /proc, /sys, /dev and runs a shell on ttyS0
#   KIND=workload  init runs a fixed list of commands, prints their results
#                  between WORKLOAD-BEGIN/WORKLOAD-END and powers off
# Needs root for the device nodes (the build runs as root; see README).
set -eu
[ $# -eq 3 ] || { echo "usage: $0 OUT shell|workload BUSYBOX" >&2; exit 2; }
OUT=$(realpath -m "$1"); KIND=$2; BUSYBOX=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/dev" "$T/proc" "$T/sys" "$T/etc" "$T/tmp" "$T/root"
cp "$BUSYBOX" "$T/bin/busybox"
mknod -m 600 "$T/dev/console" c 5 1
mknod -m 666 "$T/dev/null" c 1 3
mknod -m 660 "$T/dev/ttyS0" c 4 64

common() {
cat <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
INIT
}

if [ "$KIND" = shell ]; then
    { common; cat <<'INIT'
echo "hv86 guest shell ready"
while true; do setsid cttyhack sh -l; done
INIT
    } > "$T/init"
else
    { common; cat <<'INIT'
echo WORKLOAD-BEGIN
uname -s -r -m
echo "cpus: $(grep -c ^processor /proc/cpuinfo)"
seq 1 200 | while read i; do /bin/true; done; echo "forked 200"
i=0; x=1; while [ $i -lt 5000 ]; do x=$(( (x * 1103515245 + 12345) % 2147483648 )); i=$((i+1)); done; echo "lcg $x"
dd if=/dev/zero bs=1024 count=256 2>/dev/null | md5sum
seq 1 20000 | md5sum
echo "ls: $(ls / | tr '\n' ' ')"
echo WORKLOAD-END
poweroff -f
INIT
    } > "$T/init"
fi
chmod 755 "$T/init"
(cd "$T" && find . | cpio -o -H newc --quiet | gzip -9) > "$OUT"
