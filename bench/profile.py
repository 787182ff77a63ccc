#!/usr/bin/env python3
"""Where hv86's time goes while a Linux guest runs a command: a sampling
profile of the whole QEMU machine, taken through QEMU's gdbstub (issue 14).

usage: profile.py [--samples N] [--top K] [--iso ISO] [--native] COMMAND...
       profile.py [--samples N] [--top K] [--iso ISO] [--callers FN] [--under FN] --boot IMAGE
    COMMAND: a shell command for the bench guest, run as the bench user
        through stress-ng's wrapper `sn` when it starts with "sn "
        (e.g. 'sn --null 1 --null-ops 200000'), else as root; it is run
        again until N samples are taken
    --samples N (default 3000), --top K (default 30 rows per table)
    --disk SPEC   give the VM disk=SPEC (e.g. ata0p2, as make bench-disk
        does), to profile a disk command such as
        'echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/vda of=/dev/null bs=64k'
    --callers FN  also count, for the samples taken in monitor function
        FN, the chains of its three nearest callers
    --under FN    also count, for the samples with FN on the stack, the
        function they were taken in
    --native      profile COMMAND in the same bench guest booted natively
        under QEMU TCG (as make bench-stress does), by guest kernel
        function: the table to hold the translated kernel's against
    --boot IMAGE  instead of a command, profile whole runs of a VM with
        IMAGE (workload or shell: make bench-linux's 64 MiB guest, on
        hv86.iso unless --iso), from `vm start` to WORKLOAD-END or the
        shell's prompt, each VM destroyed and created again until N
        samples are taken

hv86-bench.iso boots in QEMU TCG with `-gdb tcp::PORT`; a VM with the
bench image (bench/stress_bench.py) starts and runs COMMAND. Meanwhile the
script stops the machine about every 2 ms of host time (GDB remote
protocol: ^C, `g` for the registers, `c`), and counts where EIP was:
    ring 0   the monitor: its function, from the symbols (nm) of the
             hv86.elf in the ISO;
    ring 1   translated guest kernel code (the translation cache), one row;
    ring 3   guest user code, one row (v86 mode counted apart);
and prints the shares, then the monitor's functions by share: self (EIP
in it) and inclusive (in it or below it, from the EBP chain; hv86 is built
with frame pointers, the trap entry stubs end a chain). For a COMMAND it
then prints the ring-1 samples by place in the translation cache (a stub
`vm info` lists, by offset, or a block), then the guest kernel functions
translated code ran, from the monitor's own timer profile (`debug profile`: at each of its 1 ms ticks
that lands in ring 1, the guest instruction the translation came from),
named by the guest's /proc/kallsyms; --native prints the same table from
the gdbstub's samples of the native kernel (CPL 0). The monitor runs its
trap paths with interrupts off, so a tick that comes meanwhile is taken at
the first ring-1 instruction after it: the monitor's time shows there (a
page-fault handler's first instruction after a fault given to the guest;
a small hex number, a stub of the translation cache by its offset, after
a call into the monitor). Read those rows with the gdbstub's table above.

Under TCG a stop lands at a translated block's boundary, so a helper's
time (a segment load, an IRET, a TLB flush) is seen at the instruction
after it: read rows as "time up to and around this function". Samples
are of QEMU's wall time, so a loaded machine distorts nothing but the
count per second.
"""
import bisect
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from hvmachine import Machine, free_port  # noqa: E402
from linuxguest import WORKLOAD_END, attach, detach, hv86_create  # noqa: E402
from disk_bench import GUEST_MEM_MIB, HOST_MEM_MIB  # noqa: E402
from stress_bench import SETUP, SN  # noqa: E402

VM = "prof"
MONITOR_BASE = 0xFC000000   # docs/memory-layout.md: the monitor's linear range
STACK_DEPTH = 12
EFLAGS_VM = 1 << 17


class Rsp:
    """A minimal GDB remote serial protocol client (GDB manual, appendix E
    "Remote Protocol"): packets $data#checksum, acknowledged by '+'."""

    def __init__(self, port):
        for _ in range(100):
            try:
                self.s = socket.create_connection(("127.0.0.1", port))
                # Without it, Nagle and delayed ACKs hold each small packet
                # ~40 ms: 88 ms per sample instead of well under one.
                self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("no gdbstub on port %d" % port)
        self.buf = b""

    def _read_packet(self):
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start)
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                data = self.buf[start + 1:end]
                self.buf = self.buf[end + 3:]
                self.s.sendall(b"+")
                return data.decode("latin-1")
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("gdbstub closed")
            self.buf += chunk

    def send(self, data, reply=True):
        pkt = "$%s#%02x" % (data, sum(data.encode()) & 0xFF)
        self.s.sendall(pkt.encode())
        return self._read_packet() if reply else None

    def interrupt(self):
        self.s.sendall(b"\x03")
        return self._read_packet()

    def registers(self):
        """(eip, cs, eflags, ebp) from a `g` packet: i386 order eax ecx edx
        ebx esp ebp esi edi eip eflags cs ..., 32-bit little-endian hex each."""
        g = self.send("g")
        word = lambda i: int.from_bytes(bytes.fromhex(g[8 * i:8 * i + 8]), "little")
        return word(8), word(10), word(9), word(5)

    def read_words(self, addr, n):
        """N 32-bit words at linear ADDR (the current CR3's), or None."""
        r = self.send("m%x,%x" % (addr, 4 * n))
        if len(r) != 8 * n:
            return None
        return [int.from_bytes(bytes.fromhex(r[8 * i:8 * i + 8]), "little") for i in range(n)]

    def callers(self, ebp, depth):
        """Return addresses up the EBP chain (hv86 is built with
        -fno-omit-frame-pointer): [ret1, ret2, ...], at most DEPTH."""
        rets = []
        while len(rets) < depth and ebp >= MONITOR_BASE and ebp & 3 == 0:
            w = self.read_words(ebp, 2)
            if not w or w[0] <= ebp:
                break
            ebp = w[0]
            rets.append(w[1])
        return rets


def symbols(iso):
    """Sorted [(address, name)] of the text symbols of the hv86.elf that
    ISO boots (/boot/hv86.elf in it, read with osirrox): the tree's own
    hv86.elf may be a later build than the ISO profiled."""
    with tempfile.TemporaryDirectory() as tmp:
        elf = os.path.join(tmp, "hv86.elf")
        subprocess.run(["osirrox", "-indev", iso, "-extract", "/boot/hv86.elf", elf],
                       capture_output=True, check=True)
        out = subprocess.run(["nm", "-n", elf], capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    return syms


def boot_runner(m, image):
    """A function that runs one VM with IMAGE from `vm start` to its end
    (WORKLOAD-END, or the shell image's prompt) and destroys it."""
    def run():
        if "created" not in hv86_create(m, VM, image):
            raise RuntimeError("vm create failed")
        m.cmd("vm start %s" % VM)
        con = attach(m, VM)
        if image == "workload":
            con._expect(WORKLOAD_END, 600, exact=True)
        else:
            con.wait_ready(600)
        detach(m)
        m.cmd("vm stop %s" % VM)
        m.cmd("vm destroy %s" % VM)
    return run


def command_runner(m, command, disk):
    """Boot the bench guest, run COMMAND once untimed (translations, page
    cache); return a function that runs it once more."""
    out = m.cmd('vm create %s kernel=linux initrd=bench mem=%dM cmdline="console=ttyS0"%s'
                % (VM, GUEST_MEM_MIB, disk))
    if "created" not in out:
        raise RuntimeError("vm create: %r" % out.strip())
    m.cmd("vm start %s" % VM)
    con = attach(m, VM)
    con.wait_ready(600)
    for line in (SETUP, SN):
        con.run(line, 120)
    con.run(command, 600)
    return lambda: con.run(command, 600)


# Name each guest EIP by the guest's /proc/kallsyms, in the guest: an awk
# program (typed line by line: the shell's line editor takes short lines)
# that binary-searches the sorted text symbols (fixed-width hex, so string
# order is numeric order).
KSYM_AWK = [
    'NR == FNR { if ($2 ~ /^[tT]$/) { a[n] = $1; s[n++] = $3 }; next }',
    '{ lo = 0; hi = n - 1',
    '  while (lo < hi) { m = int((lo + hi + 1) / 2); if (a[m] <= $1) lo = m; else hi = m - 1 }',
    '  if (a[lo] <= $1) print $1, s[lo], a[lo]; else print $1, "?", $1 }',
]


def guest_symbols(con, eips):
    """{eip: (kernel function, its address)} for the guest EIPs (ints),
    through shell con."""
    con.run("sort /proc/kallsyms > /tmp/ksyms; : > /tmp/keips; : > /tmp/ksym.awk", 120)
    for line in KSYM_AWK:
        con.run("echo '%s' >> /tmp/ksym.awk" % line, 60)
    eips = sorted(set(eips))
    for i in range(0, len(eips), 8):
        con.run("for e in %s; do echo $e; done >> /tmp/keips" % " ".join("%08x" % e for e in eips[i:i + 8]), 60)
    out = con.run("awk -f /tmp/ksym.awk /tmp/ksyms /tmp/keips", 300)[1]
    names = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and len(f[0]) == 8:
            names[int(f[0], 16)] = (f[1], int(f[2], 16))
    return names


def print_guest_functions(title, counts, names, total, top):
    by_fn = Counter()
    for eip, n in counts.items():
        by_fn[names.get(eip, ("%08x" % eip, eip))[0]] += n
    if title:
        print(title)
    for name, n in by_fn.most_common(top):
        print("  %5.1f%%  %s" % (100.0 * n / total, name))
    print("  the guest instructions sampled most:")
    for eip, n in counts.most_common(min(top, 20)):
        name, base = names.get(eip, ("?", eip))
        print("  %5.1f%%  %08x %s+0x%x" % (100.0 * n / total, eip, name, eip - base))


def sample(port, samples, run_once, take):
    """Call run_once until the gdbstub on port took `samples` samples: about
    every 2 ms the machine is stopped, take(rsp, eip, cs, eflags, ebp) is
    called while it is (it may read memory through rsp) and returns the
    sample's label, and the machine goes on. Returns (Counter of labels,
    runs of run_once)."""
    rings, done = Counter(), threading.Event()

    def sampler():
        rsp = Rsp(port)
        while sum(rings.values()) < samples and not done.is_set():
            rsp.interrupt()
            rings[take(rsp, *rsp.registers())] += 1
            rsp.send("c", reply=False)
            time.sleep(0.002)
        rsp.s.close()
    t = threading.Thread(target=sampler)
    t.start()
    runs = 0
    while t.is_alive():
        run_once()
        runs += 1
    done.set()
    t.join()
    return rings, runs


def native_profile(command, samples, top):
    """--native: the bench guest booted natively, COMMAND run until the
    gdbstub took `samples` samples; prints ring shares and the kernel's
    functions."""
    from linuxguest import NativeLinux
    port = free_port()
    nat = NativeLinux("bench", mem_mib=GUEST_MEM_MIB, extra_args=["-gdb", "tcp::%d" % port]).start()
    try:
        con = nat.console
        con.wait_ready(600)
        for line in (SETUP, SN):
            con.run(line, 120)
        con.run(command, 600)
        kernel = Counter()

        def take(rsp, eip, cs, eflags, ebp):
            if cs & 3 == 0 and not eflags & EFLAGS_VM:
                kernel[eip] += 1
                return "kernel (CPL 0)"
            return "user (CPL 3)"
        rings, runs = sample(port, samples, lambda: con.run(command, 600), take)
        total = sum(rings.values())
        print("%d samples over %d runs of %r, native" % (total, runs, command))
        for name, n in rings.most_common():
            print("  %5.1f%%  %s" % (100.0 * n / total, name))
        print_guest_functions("guest kernel functions, share of all samples:", kernel,
                              guest_symbols(con, kernel), total, top)
    finally:
        nat.stop()


def debug_profile_guest(text):
    """{guest eip: samples} and the ring-1 sample count from `debug profile`."""
    counts, ring1, in_guest = Counter(), 0, False
    for line in text.splitlines():
        if "timer samples" in line:
            ring1 = int(line.split("ring 1)")[1].split(",")[0])
        elif line.startswith("translated guest code, by"):
            in_guest = True
        elif in_guest and line.strip():
            f = line.split()
            counts[int(f[0], 16)] += int(f[1])
    return counts, ring1


def print_ring1_places(eips, info, top):
    """The gdbstub's ring-1 samples by place in the translation cache: in
    one of the stubs `vm info` lists (by offset in it), else in a block.
    Under TCG a stop lands at a translated block's boundary, so a stub's
    first offset also holds the time of the block that jumped to it."""
    m = re.search(r"stubs at ring-1 EIP ([0-9a-f]+)-([0-9a-f]+): lookup ([0-9a-f]+), exit routine ([0-9a-f]+), "
                  r"return to ring 3 ([0-9a-f]+), its IRET variant ([0-9a-f]+)", info)
    total = sum(eips.values())
    if not m or not total:
        print("ring 1 by place: %s" % ("no stubs line in vm info" if total else "no ring-1 samples"))
        return
    first, end, lookup, exit_routine, r3, r3_iret = (int(g, 16) for g in m.groups())
    named = {first: "other stubs", lookup: "lookup stub"}
    for at, name in ((exit_routine, "exit routine"), (r3, "ring-3 return stub"), (r3_iret, "its IRET variant")):
        if at:  # 0: no such stub (bt_config)
            named[at] = name
    starts = sorted(named)
    places = Counter()
    for eip, n in eips.items():
        if not first <= eip < end:
            places["blocks"] += n
            continue
        base = starts[bisect.bisect_right(starts, eip) - 1]
        name = named[base]
        places["%s +%x" % (name, eip - base)] += n
    print("ring 1 by place in the translation cache (gdbstub samples), share of ring 1:")
    for name, n in places.most_common(top):
        print("  %5.1f%%  %s" % (100.0 * n / total, name))


def main():
    args = sys.argv[1:]
    samples, top, iso, disk, boot, callers_of, under, native = 3000, 30, None, "", None, None, None, False
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--samples":
            samples = int(args.pop(0))
        elif opt == "--top":
            top = int(args.pop(0))
        elif opt == "--iso":
            iso = args.pop(0)
        elif opt == "--disk":
            disk = " disk=" + args.pop(0)
        elif opt == "--callers":
            callers_of = args.pop(0)
        elif opt == "--under":
            under = args.pop(0)
        elif opt == "--boot":
            boot = args.pop(0)
        elif opt == "--native":
            native = True
        else:
            sys.exit("unknown option %s" % opt)
    if not args and not boot:
        sys.exit(__doc__)
    command = " ".join(args) if not boot else "boot of the %s image" % boot
    if native:
        if boot:
            sys.exit("--native profiles a COMMAND, not --boot")
        return native_profile(command, samples, top)
    iso = iso or os.path.join(ROOT, "hv86.iso" if boot else "hv86-bench.iso")
    syms = symbols(iso)
    addrs = [a for a, _ in syms]
    port = free_port()
    m = Machine("qemu", mem_mib=HOST_MEM_MIB, iso=iso, extra_args=["-gdb", "tcp::%d" % port]).start()
    try:
        run_once = boot_runner(m, boot) if boot else command_runner(m, command, disk)
        if not boot:
            detach(m)
            m.cmd("debug profile reset")
            attach(m, VM)
        counts, inclusive, chains, leaves, ring1_eips = Counter(), Counter(), Counter(), Counter(), Counter()
        def name_of(a):
            i = bisect.bisect_right(addrs, a) - 1
            return syms[i][1] if i >= 0 else hex(a)

        def take(rsp, eip, cs, eflags, ebp):
            if eflags & EFLAGS_VM:
                return "v86"
            if cs & 3 == 1:
                ring1_eips[eip] += 1
                return "ring 1 (translated guest kernel)"
            if cs & 3 == 3:
                return "ring 3 (guest user)"
            names = [name_of(a) for a in [eip] + rsp.callers(ebp, STACK_DEPTH)]
            counts[names[0]] += 1
            if names[0] == callers_of:
                chains[" < ".join(names[1:4])] += 1
            if under in names:
                leaves[names[0]] += 1
            for name in set(names):
                inclusive[name] += 1
            return "ring 0 (monitor)"
        rings, runs = sample(port, samples, run_once, take)
        total = sum(rings.values())
        print("%d samples over %d runs of %r" % (total, runs, command))
        for name, n in rings.most_common():
            print("  %5.1f%%  %s" % (100.0 * n / total, name))
        print("monitor functions, share of all samples: self, and with what they call")
        for name, n in inclusive.most_common(top):
            print("  %5.1f%% %5.1f%%  %s" % (100.0 * counts[name] / total, 100.0 * n / total, name))
        if callers_of:
            print("%s's callers (nearest first), share of all samples:" % callers_of)
            for chain, n in chains.most_common(top):
                print("  %5.1f%%  %s" % (100.0 * n / total, chain or "(none)"))
        if under:
            print("samples with %s on the stack, by the function they were taken in, share of all samples:" % under)
            for name, n in leaves.most_common(top):
                print("  %5.1f%%  %s" % (100.0 * n / total, name))
        if not boot:
            detach(m)
            print_ring1_places(ring1_eips, m.cmd("vm info %s" % VM), top)
            guest, ring1 = debug_profile_guest(m.cmd("debug profile"))
            con = attach(m, VM)
            print("translated guest kernel by guest function (the monitor's %d ring-1 timer samples), "
                  "share of ring 1:" % ring1)
            if ring1:
                print_guest_functions("", guest, guest_symbols(con, guest), ring1, top)
    finally:
        m.stop()


if __name__ == "__main__":
    main()
