#!/usr/bin/env python3
"""A PC's boot, under hv86: `vm create NAME firmware=bios disk=...` runs
Debian's SeaBIOS (package seabios, bios.bin) from the reset vector; it finds
the VM's virtio-blk disk, reads its MBR (GRUB's boot.img), GRUB's core.img
loads Debian's kernel and initramfs from the ext4 partition, and Linux runs
to the busybox shell (build/disk-boot.img, scripts/mkbootdisk.sh).

The reference is the same disk booted natively by QEMU with the same
bios.bin (-bios, its debug port 0x402 on isa-debugcon, virtio disk): every
stage the native run shows must show under hv86, in the same order, on the
VM's console: SeaBIOS's banner (its version read from dpkg, not from this
file), "Booting from Hard Disk...", GRUB's lines (from the boot disk's
embedded configuration), the kernel's "Linux version" with Debian's release,
the shell. In the shell: uname -r is Debian's; /proc/cmdline carries the
BOOT_IMAGE= that GRUB's linux command puts there (no hv86 loader was
involved); SeaBIOS's MP table is what Linux used, and its timer and the
virtio disk's interrupts count through the I/O APIC. `vm info` shows the
disk's reads.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import BUILD, Machine, clean  # noqa: E402
from linuxguest import LinuxConsole, attach, detach  # noqa: E402
import pexpect  # noqa: E402

DISK = os.path.join(BUILD, "disk-boot.img")
SEABIOS = "/usr/share/seabios/bios.bin"
MEM_MIB = 128
GRUB_LINES = ("hv86 boot disk: GRUB loading Linux from (hd0,msdos1)", "GRUB: loading initrd", "GRUB: booting Linux")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def seabios_banner():
    """"SeaBIOS (version 1.16.2-debian-1.16.2-1)" for Debian's 1.16.2-1."""
    ver = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "seabios"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout.strip()
    upstream = ver.split(":")[-1].rsplit("-", 1)[0]
    return "SeaBIOS (version %s-debian-%s)" % (upstream, ver)


def debian_release():
    out = subprocess.run(["sh", "-c", "ls %s/debian/root/boot/ | sed -n 's/^config-//p'" % BUILD],
                         stdout=subprocess.PIPE, text=True).stdout.split()
    if len(out) != 1:
        fail("expected one Debian kernel config in build/debian/root/boot, found %r" % out)
    return out[0]


def stages(banner, release):
    """What must appear, in this order."""
    return [banner, "Booting from Hard Disk...", *GRUB_LINES, "Linux version %s " % release]


def expect_stages(cons, want, timeout):
    for s in want:
        cons._expect(s, timeout, exact=True)
    cons.wait_ready(timeout)


def native(want):
    """The disk under QEMU alone: SeaBIOS's debug port into a file, COM1 on
    stdio (QEMU's mux would send typed input to the debug port)."""
    import tempfile
    dbg = tempfile.NamedTemporaryFile(prefix="hv86-bios-dbg-", suffix=".txt", delete=False).name
    args = ["-accel", "tcg", "-m", str(MEM_MIB), "-bios", SEABIOS, "-display", "none", "-monitor", "none",
            "-no-reboot", "-serial", "stdio", "-chardev", "file,id=dbg,path=%s" % dbg,
            "-device", "isa-debugcon,iobase=0x402,chardev=dbg",
            "-drive", "file=%s,format=raw,if=virtio,snapshot=on" % DISK]
    t0 = time.monotonic()
    child = pexpect.spawn("qemu-system-i386", args, encoding="latin-1", timeout=60, maxread=65536)
    try:
        cons = LinuxConsole(child, "native")
        n_bios = 2  # the banner and "Booting from Hard Disk...": SeaBIOS's, on its debug port
        expect_stages(cons, want[n_bios:], 300)
        log = open(dbg, encoding="latin-1").read()
        at = [log.find(s) for s in want[:n_bios]]
        if min(at) < 0 or at != sorted(at):
            fail("native SeaBIOS's debug port lacks %r in order: %r" % (want[:n_bios], log[-1000:]))
        print("ok: native QEMU + SeaBIOS: every stage, shell after %.1f s" % (cons.ready_at - t0))
    finally:
        child.terminate(force=True)
        os.unlink(dbg)


def boot_disk_name(m):
    """hv86's name of the disk attached as the secondary slave: the only one
    with the boot disk's size."""
    sectors = os.path.getsize(DISK) // 512
    names = re.findall(r"^disk \d+ (ata\d) .* %d sectors of 512 bytes" % sectors, m.cmd("disks"), re.M)
    if len(names) != 1:
        fail("cannot tell the boot disk in `disks`: %r" % names)
    return names[0]


def under_hv86(want, release):
    m = Machine("qemu", slave2=DISK, mem_mib=512).start()
    try:
        disk = boot_disk_name(m)
        out = m.cmd("vm create pc firmware=bios mem=%dM disk=%s" % (MEM_MIB, disk))
        if "created pc: %d MiB, firmware bios" % MEM_MIB not in out:
            fail("vm create firmware=bios: %r" % out)
        bad = m.cmd("vm create pc2 firmware=bios kernel=linux disk=%s" % disk)
        if "error" not in bad or "no kernel=" not in bad:
            fail("firmware=bios with kernel= was not refused: %r" % bad)
        bad = m.cmd("vm create pc3 firmware=bios")
        if "needs a disk=" not in bad:
            fail("firmware=bios without a disk was not refused: %r" % bad)
        t0 = time.monotonic()
        m.cmd("vm start pc")
        cons = attach(m, "pc")
        try:
            expect_stages(cons, want, 600)
        except (pexpect.TIMEOUT, pexpect.EOF):
            detach(m)
            fail("under hv86 the boot stopped before %r; vm list:\n%s\nconsole tail:\n%s"
                 % (want, m.cmd("vm list"), cons.transcript[-3000:]))
        print("ok: hv86 firmware=bios: every stage, shell after %.1f s" % (cons.ready_at - t0))
        st, uname = cons.run("uname -r")
        if st or uname.strip() != release:
            fail("uname -r says %r, Debian's package is %r" % (uname, release))
        st, cmdline = cons.run("cat /proc/cmdline")
        if not cmdline.startswith("BOOT_IMAGE=(hd0,msdos1)/boot/vmlinuz ") or "console=ttyS0" not in cmdline:
            fail("/proc/cmdline is not GRUB's: %r" % cmdline)
        print("ok: uname -r = %s; /proc/cmdline = %s" % (release, cmdline.strip()))
        st, mp = cons.run("dmesg | grep -i -E 'MP-table|MPTABLE|IOAPIC\\[0\\]' | head -3")
        if "found SMP MP-table" not in mp:
            fail("Linux did not use the MP table SeaBIOS built: %r" % mp)
        st, irqs = cons.run("cat /proc/interrupts; sleep 1; grep -E '^ *(0|LOC):' /proc/interrupts")
        if "IO-APIC" not in irqs or not re.search(r"virtio\d", irqs):
            fail("no IO-APIC or virtio lines in /proc/interrupts: %r" % irqs)
        print("ok: Linux found SeaBIOS's MP table; /proc/interrupts has IO-APIC and virtio lines")
        detach(m)
        info = m.cmd("vm info pc")
        if not re.search(r"firmware bios \(seabios\), boots disk 0", info):
            fail("vm info does not say firmware bios: %r" % info[:300])
        reads = re.search(r"disk 0: %s, .*virtio-blk .*reads (\d+) \((\d+) sectors\)" % disk, info)
        if not reads or int(reads.group(2)) < 2 * 8192:
            fail("the disk's reads do not show the kernel and initrd loaded from it: %r" % info[:800])
        print("ok: vm info: firmware bios, %s sectors read from %s" % (reads.group(2), disk))
        m.cmd("vm stop pc")
        if "hv86" not in m.cmd("version"):
            fail("the console does not answer after the guest stopped")
    finally:
        m.stop()


def main():
    want = stages(seabios_banner(), debian_release())
    native(want)
    under_hv86(want, debian_release())
    print("linux-bios: all passed")


if __name__ == "__main__":
    main()
