#!/bin/sh
# mkinitramfs.sh OUT KIND BUSYBOX [ROOT [MODULE...] [-- PATH...]]
# Build a gzip'ed newc initramfs around Debian's static i386 busybox.
#   KIND=shell     init mounts /proc, /sys, /dev and runs a shell on ttyS0
#   KIND=workload  init runs a fixed list of commands, prints their results
#                  between WORKLOAD-BEGIN/WORKLOAD-END and powers off
# ROOT MODULE...: kernel modules from ROOT/lib/modules/VERSION (Debian's
# package, unpacked), with every module they depend on as `depmod` computes
# it from the package's own files; init loads them when the VM has a disk
# controller from `vm create ... disk=` or a NIC from `net=`: a virtio PCI
# device (vendor 1af4: virtio-blk 1001, virtio-net 1000) or the PIIX3's IDE
# function (8086:7010).
# The shell image configures eth0 from the kernel command line (docs/net.md):
#   ip=ADDR/PREFIX[:GATEWAY]   e.g. ip=10.0.0.1/24 or ip=10.0.0.1/24:10.0.0.254
#   ip=dhcp                    busybox udhcpc; its script (/etc/udhcpc.script)
#                              sets the address, the default route and
#                              /etc/resolv.conf from the server's answer
#   ip1=...                    the same for eth1 (a VM's second net=)
# WWW=DIR in the environment (the web image): DIR's files go to /www, and
# init starts busybox httpd on port 80 serving them.
# (Debian's kernel has no CONFIG_IP_PNP, so the name is free for init.)
# -- PATH...: files of ROOT (Debian's i386 packages, unpacked by
# scripts/i386-progs.sh fetch), e.g. sbin/mkfs.ext4, put at the same place
# with the dynamic loader and every shared library they need
# (scripts/i386-progs.sh install). The shell's profile makes a program of
# the same name as a busybox applet win over the applet.
# Needs root for the device nodes (the build runs as root; see README).
set -eu
[ $# -ge 3 ] || { echo "usage: $0 OUT shell|workload BUSYBOX [ROOT [MODULE...] [-- PATH...]]" >&2; exit 2; }
OUT=$(realpath -m "$1"); KIND=$2; BUSYBOX=$3
shift 3
T=$(mktemp -d)
chmod 755 "$T" # the image's root directory: mktemp makes it 700, which shuts every other user out
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/dev" "$T/proc" "$T/sys" "$T/etc" "$T/tmp" "$T/root" "$T/mnt"
cp "$BUSYBOX" "$T/bin/busybox"
MODULES="" PROGS=""
if [ $# -gt 0 ]; then
    ROOT=$1; shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do MODULES="$MODULES $1"; shift; done
    [ $# -eq 0 ] || { shift; PROGS="$*"; }
    # shellcheck disable=SC2086
    set -- $MODULES
    VER=$(ls "$ROOT/lib/modules")
    depmod -b "$ROOT" "$VER"
    DEP="$ROOT/lib/modules/$VER/modules.dep"
    mkdir -p "$T/lib/modules/$VER"
    for m in "$@"; do
        line=$(grep -E "/$m\.ko:" "$DEP") || { echo "mkinitramfs: no module $m in $DEP" >&2; exit 1; }
        for f in $(echo "$line" | tr -d :); do
            mkdir -p "$T/lib/modules/$VER/$(dirname "$f")"
            cp "$ROOT/lib/modules/$VER/$f" "$T/lib/modules/$VER/$f"
            grep -E "^$f:" "$DEP" >> "$T/lib/modules/$VER/modules.dep"
        done
    done
    [ $# -eq 0 ] || sort -u -o "$T/lib/modules/$VER/modules.dep" "$T/lib/modules/$VER/modules.dep"
fi
if [ -n "$PROGS" ]; then
    # shellcheck disable=SC2086
    sh "$(dirname "$0")/i386-progs.sh" install "$T" "$ROOT" $PROGS
    # This busybox runs its own applet for a bare command name before
    # looking at PATH (FEATURE_SH_STANDALONE): `mke2fs` would be busybox's
    # even with Debian's in /sbin. The login shell (`sh -l`) reads
    # /etc/profile, which turns every such name into a function running the
    # program. (Not needed for mkfs.ext4 or e2fsck, which are no applets.)
    CMDS=""
    for p in $PROGS; do
        case "/${p#/}" in /bin/*|/sbin/*|/usr/bin/*|/usr/sbin/*) CMDS="$CMDS /${p#/}" ;; esac
    done
    { echo "for p in$CMDS; do"; cat <<'PROFILE'
    n=${p##*/}
    busybox --list | grep -qx "$n" && eval "$n() { $p \"\$@\"; }"
done
unset p n
PROFILE
    } > "$T/etc/profile"
fi
if [ -n "${WWW:-}" ]; then
    mkdir -p "$T/www"
    cp -r "$WWW"/. "$T/www/"
fi
cat > "$T/etc/udhcpc.script" <<'DHCP'
#!/bin/sh
# udhcpc's hook (busybox networking/udhcp): $1 is the event; the lease is
# in $ip, $subnet, $router, $dns.
case $1 in
deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    ip route del default 2>/dev/null
    for r in $router; do ip route add default via "$r" dev "$interface" && break; done
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "init: $interface dhcp $ip/$subnet router $router dns $dns"
    ;;
esac
exit 0
DHCP
chmod 755 "$T/etc/udhcpc.script"
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
    { common; [ -z "$MODULES" ] || cat <<INIT
disks=
for d in /sys/bus/pci/devices/*; do
    case \$(cat \$d/vendor):\$(cat \$d/device) in 0x1af4:*|0x8086:0x7010) disks=1 ;; esac
done
if [ -n "\$disks" ]; then
    for m in $MODULES; do modprobe \$m || echo "init: modprobe \$m failed"; done
fi
INIT
    cat <<'INIT'
ip link set lo up
# netif IFACE CFG: CFG is dhcp or ADDR/PREFIX[:GATEWAY]
netif() {
    if [ "$2" = dhcp ]; then
        ip link set "$1" up && echo "init: $1 $(cat /sys/class/net/$1/address) asks for an address (udhcpc)"
        udhcpc -i "$1" -s /etc/udhcpc.script -t 10 -T 3 -n -q || echo "init: $1: no DHCP lease"
        return
    fi
    addr=${2%%:*} gw=
    case $2 in *:*) gw=${2#*:} ;; esac
    if ip link set "$1" up && ip addr add "$addr" dev "$1"; then
        echo "init: $1 $addr $(cat /sys/class/net/$1/address)"
        [ -z "$gw" ] || ip route add default via "$gw" || echo "init: no route via $gw"
    else
        echo "init: cannot configure $1 with $2"
    fi
}
for a in $(cat /proc/cmdline); do
    case $a in ip=*) netif eth0 "${a#ip=}" ;; ip1=*) netif eth1 "${a#ip1=}" ;; esac
done
if [ -f /www/index.html ]; then
    httpd -p 80 -h /www && echo "init: httpd serves /www on port 80"
fi
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
