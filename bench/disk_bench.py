#!/usr/bin/env python3
"""Guest disk speed under hv86 against QEMU's own virtio-blk (make bench-disk).

usage: disk_bench.py [--readahead] [REPEAT] [ISO...]
    --readahead: every ISO runs twice, the second time with the VM's disk
         given readahead=on (an A/B of host read-ahead in one run)
    REPEAT defaults to 1; each figure the best of REPEAT
    ISO: hv86 ISOs to compare (an A/B in one run: each round runs native,
         then every ISO in turn, so the load of the machine falls on all
         alike); default hv86-bench.iso

The same Linux guest (the bench image: the shell image plus Debian's fio,
stress-ng and sysbench and their libraries, 92 MiB unpacked, hence 256 MiB
of RAM) on a raw 16 MiB
disk. Sequential: it reads and writes the disk PASSES times over with
busybox dd in 64 KiB blocks, timed by the guest's /proc/uptime around the
passes, once untimed and then ROUNDS times, the best counting:
  read      per pass: drop the page cache, dd if=/dev/vda of=/dev/null
  write     per pass: dd if=/dev/zero of=/dev/vda conv=fsync (the data on
            the disk before dd returns)
Random: fio's 4 KiB random reads over the whole disk, one at a time
(--rw=randread --bs=4k --direct=1 --ioengine=psync), RANDREAD_SECONDS
measured after a RAMP_SECONDS warm-up that fio does not count:
  randread  IOPS, as fio reports them
natively: qemu-system-i386 -kernel ... with the disk as QEMU's virtio-blk
(-drive if=virtio, its default cache); under hv86: hv86-bench.iso in QEMU
(the bench image is its GRUB module "bench"), the VM with disk=ata0p2 (the
GPT test disk's 16 MiB "web" partition), served by hv86's virtio-blk over
its ATA driver (bus master DMA, interrupt completion). Prints MB/s and IOPS
of each and the ratios hv86/native. Exits 1 if a figure could not be taken.
"""
import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from hvmachine import Machine  # noqa: E402
from linuxguest import NativeLinux, attach, detach  # noqa: E402

PASSES = 4          # of the whole 16 MiB disk per figure: long enough for /proc/uptime's 10 ms
MIB = 16 * PASSES
ROUNDS = 3
TIMED = 'read a x < /proc/uptime; %s; read b x < /proc/uptime; echo "T $a $b"'
# Shell functions, defined first: each pass of r drops the page cache and
# reads the disk; each pass of w writes it and fsyncs.
FUNCS = ["r() { for i in %s; do echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/vda of=/dev/null bs=64k 2>/dev/null; "
         "done; }" % " ".join(str(i) for i in range(PASSES)),
         "w() { for i in %s; do dd if=/dev/zero of=/dev/vda bs=64k count=256 conv=fsync 2>/dev/null; done; }"
         % " ".join(str(i) for i in range(PASSES))]
CMDS = {"read": TIMED % "r", "write": TIMED % "w"}
GUEST_MEM_MIB = 256  # the bench image unpacked, its gzip'ed copy while it unpacks, the kernel
HOST_MEM_MIB = 768   # hv86's machine: the guest's RAM and the 38.5 MB module beside it
RAMP_SECONDS, RANDREAD_SECONDS = 5, 20
FIO = ("fio --name=rr --filename=/dev/vda --rw=randread --bs=4k --direct=1 --ioengine=psync --size=16M "
       "--time_based --ramp_time=%d --runtime=%d --minimal" % (RAMP_SECONDS, RANDREAD_SECONDS))


def randread_iops(con):
    """fio's read IOPS: field 8 of its terse (--minimal) output, version 3;
    field 5 is its error code."""
    status, text = con.run(FIO, 900)
    line = [l for l in text.split("\n") if l.startswith("3;fio-")]
    fields = line[-1].split(";") if line else []
    if status != 0 or len(fields) < 8 or fields[4] != "0":
        raise RuntimeError("randread: %r" % text[-300:])
    return float(fields[7])


def measure(con):
    """{kind: MB/s or IOPS} from one attached shell: the best of ROUNDS
    runs of each sequential figure, after one untimed run (the steady
    state a server sees: under hv86 the first run also pays for
    translating the guest kernel's I/O path, natively for QEMU's own
    translation); fio's ramp time does the same for randread."""
    out = {}
    for f in FUNCS:
        if con.run(f, 60)[0] != 0:
            raise RuntimeError("defining %r failed" % f)
    for kind, cmd in CMDS.items():
        for r in range(ROUNDS + 1):
            status, text = con.run(cmd, 900)
            m = re.search(r"T ([\d.]+) ([\d.]+)", text)
            if status != 0 or not m:
                raise RuntimeError("%s: %r" % (kind, text[-200:]))
            secs = max(float(m.group(2)) - float(m.group(1)), 0.01)
            if r:
                out[kind] = max(out.get(kind, 0), MIB * 1.048576 / secs)
    out["randread"] = randread_iops(con)
    return out


def native():
    fd, disk = tempfile.mkstemp(prefix="hv86-bench-disk-")
    os.ftruncate(fd, 16 << 20)
    os.close(fd)
    nat = NativeLinux("bench", mem_mib=GUEST_MEM_MIB,
                      extra_args=["-drive", "file=%s,if=virtio,format=raw" % disk]).start()
    try:
        nat.wait_ready(300)
        return measure(nat.console)
    finally:
        nat.stop()
        os.remove(disk)


def hv86(iso, disk_opts=""):
    """The figures of one hv86 run; disk_opts is appended to the VM's
    disk= key (for example ",readahead=on")."""
    m = Machine("qemu", mem_mib=HOST_MEM_MIB, iso=iso).start()
    try:
        out = m.cmd('vm create bench kernel=linux initrd=bench mem=%dM cmdline="console=ttyS0" disk=ata0p2%s'
                    % (GUEST_MEM_MIB, disk_opts))
        if "created" not in out:
            raise RuntimeError("vm create: %r" % out.strip())
        m.cmd("vm start bench")
        con = attach(m, "bench")
        con.wait_ready(600)
        r = measure(con)
        detach(m)
        return r
    finally:
        m.stop()


def main():
    args = sys.argv[1:]
    readahead = "--readahead" in args
    args = [a for a in args if a != "--readahead"]
    repeat = int(args[0]) if args else 1
    isos = args[1:] or [os.path.join(ROOT, "hv86-bench.iso")]
    sides = [("native", native)] + [(iso, lambda iso=iso: hv86(iso)) for iso in isos]
    if readahead:
        ra = [(iso + " readahead=on", lambda iso=iso: hv86(iso, ",readahead=on")) for iso in isos]
        sides += ra
        isos = isos + [side for side, _ in ra]
    best = {side: {} for side, _ in sides}
    for _ in range(repeat):
        for side, fn in sides:
            for k, v in fn().items():
                best[side][k] = max(best[side].get(k, 0), v)
    for iso in isos:
        if len(isos) > 1:
            print("hv86: %s" % iso)
        for k in CMDS:
            n, h = best["native"][k], best[iso][k]
            print("disk %-8s native %6.1f MB/s  hv86 %6.1f MB/s  ratio hv86/native %.2f" % (k, n, h, h / n))
        n, h = best["native"]["randread"], best[iso]["randread"]
        print("disk %-8s native %6.0f IOPS  hv86 %6.0f IOPS  ratio hv86/native %.2f  (4 KiB, one at a time)"
              % ("randread", n, h, h / n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
