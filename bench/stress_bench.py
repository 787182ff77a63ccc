#!/usr/bin/env python3
"""System calls, processes, pipes, faults and user CPU: Debian's stress-ng and
sysbench in a Linux guest under hv86 against the same guest under QEMU alone
(make bench-stress; issue 14).

usage: stress_bench.py [ROUNDS] [ITEM...]
       HV86_BENCH_ISO_B=other-bench.iso stress_bench.py ...   (A/B: a second
        hv86 build measured in the same run, in the same pairs)
       HV86_BENCH_ISO=this-bench.iso   (the hv86 side; default hv86-bench.iso)
       HV86_BENCH_CPU=N|none           (the host CPU every QEMU is pinned to;
        default the highest one this process may use)
    ROUNDS (default 1): pairs per item; each ratio is the median of the
        per-pair ratios (the user CPU items: at least CPU_ROUNDS pairs)
    ITEM: a name in ITEMS, e.g. "null system call" (default: every item)

The guest is the bench image (bench/disk_bench.py: the shell image plus fio,
stress-ng 0.15.06 and sysbench 1.0.20 from Debian 12 with their libraries),
256 MiB, one CPU. It boots natively (`qemu-system-i386 -accel tcg -kernel
linux.bz -initrd bench.img`), then hv86-bench.iso boots in the same QEMU
and a VM with the same kernel, image, memory and command line; both stay up.
Each item then runs natively and at once under hv86, item after item, and
all of it ROUNDS times. Only one QEMU works at a time (the other's guest
waits at its shell prompt, halted), and the two sides of a ratio run
minutes apart at most: on a shared two-core machine, whatever else runs
weighs on both alike, where one side after the other measured user CPU at
1.5 in one run and 0.8 in the next.

The estimator: the median of per-pair ratios, every QEMU on one host CPU.
Round r runs each item once on each side, back to back (a *pair*: seconds
apart), native first in even rounds and hv86 first in odd ones, so that a
drift in the host's speed within a pair favours neither side over the run.
The pair's ratio is hv86's time over native's; an item's ratio is the
median of its pairs' ratios, printed with the number of pairs and the
lowest and highest (their spread). Why:
* The host has (at least) two speeds. In one run on main at f5278d1, user
  CPU (queens) took 2.08/2.18, 1.97/2.11, 2.05/2.14 s (native/hv86) in three
  rounds and 1.41/2.11, 1.41/2.16 in the next two, when other engineers'
  QEMUs had started: native got the fast speed twice and hv86 never, so the
  fastest of each side gave 1.50 where every pair gave 1.04-1.07 (and
  sysbench's fastest gave 1.00 from a native 1.00 s in round 1 and an hv86
  1.00 s in round 4, 1.45 s natively in between; docs/performance.md). A
  side's fastest time measures the best speed it happened to get; a pair's
  ratio measures hv86 against native at one speed. The median ignores the
  pairs that straddle a change of speed, which the lowest and highest show.
* One host CPU for all QEMUs (sched_setaffinity on every thread; only one
  side works at a time, the others' guests halt at their prompt): both sides
  then share whatever else runs on that CPU, and the host's scheduler
  cannot put one side on a less loaded CPU than the other. HV86_BENCH_CPU
  chooses it; "none" leaves the QEMUs where the host puts them.
* Not a mean: one pair that straddles a change of speed moves a mean of
  five by several percent, the target's whole margin.

Each item runs a fixed amount of work: stress-ng with one worker and
`--ITEM-ops N` (bogo operations), sysbench with `--events=N --time=0`, the
same N on both sides. The figure is the tool's own elapsed real time for
that work (stress-ng's "real time (secs)" of its metrics line, sysbench's
"total time"), and the ratio hv86/native is of those times. Why this and not
the alternatives:
* A fixed count, not `--timeout`: both sides do the same work, so the work
  that is paid once (translating the kernel's paths under hv86, QEMU's own
  translation natively, the stressor's start) weighs the same on both; a
  timed run would do 10-50 times fewer operations under hv86. And the stop
  does not hang on a timer signal, whose delivery is itself what is slow.
* Real (wall) time, not usr+sys time: Linux charges CPU time by sampling
  the timer tick, and under hv86 the time spent in the monitor on the
  guest's behalf lands wherever the next tick finds the guest; wall time
  counts all of it. (bogo ops/s over real time is the same figure inverted.)
* The tool's own clock, not the host's: the tool times only its operations,
  not `su`, the dynamic loader, stress-ng's start and the serial line, which
  are slower under hv86 for reasons the items do not measure. That clock is
  the guest's, so the bench checks it: the guest's /proc/uptime across all
  items must advance with the host's clock within CLOCK_TOLERANCE on each
  side, or no figure of that side counts; within it, each figure is divided
  by the measured rate (guest seconds per host second), so that a slow
  guest clock does not flatter hv86, which matters for the 1.05 target.
  Natively the rate has been 1.000; under hv86 between 0.943 and 1.000:
  both guests take TSC frequencies 0.2% apart (CPUID leaf 15h under hv86,
  docs/vmm.md), but in some boots under hv86 on a busy machine Linux's
  clocksource watchdog marks the TSC unstable 4 s into the boot ("skew is
  too large": its reference clock lagged) and the guest's clock runs on the
  PIT, lagging when ticks come late and costing port I/O exits at every
  read. The bench prints each guest's clocksource, TSC frequency and
  Linux's messages on the TSC, before the first item and after the last,
  and says so under the table when the two sides' clocksources differ.

The items (stress-ng's stressors as 0.15.06 has them):
  null system call  null: per op a write(2) of 4 KiB to /dev/null and ten
                    more calls on it (lseek, fcntl, ioctl...) that return
                    at once: 11 sysenter exits per op under hv86 (13 when
                    the guest's clock is the PIT and the vDSO makes system
                    calls). 0.15.06 has no getpid stressor
  fork+exit         fork: fork, the child _exits, the parent waits
  fork+exec         exec --exec-fork-method fork --exec-max 1: fork and
                    execve or execveat of stress-ng itself (dynamic, some
                    20 libraries), which exits at once; one at a time.
                    stress-ng refuses to exec as root, so every stressor
                    runs as a user, bench.
  page faults       vm --vm-method write64, 1 MiB mmap'ed, written and
                    unmapped per pass (no --vm-keep): about 500 anonymous
                    zero-fill faults per bogo op (/proc/vmstat's pgfault,
                    natively)
  pipe round trip   switch --switch-method pipe: one byte through a one-slot
                    pipe per op; the writer waits until the reader has it
                    (one CPU: a write, a read and two process switches)
  context switch    switch --switch-method sem-sysv: two processes taking
                    turns on a System V semaphore
  mmap/munmap       mmap --mmap-bytes 256K: 64 pages mapped, touched,
                    unmapped and remapped in several ways per op: about
                    500 system calls and 500 page faults per op (sysenter
                    and pf-guest exits under hv86)
  user CPU          cpu --cpu-method queens: integer work, no system call
  user CPU (sysbench)  sysbench cpu: primes by trial division
Targets (issue 14): null system call, fork+exec and pipe round trip at most
3x, page faults 2x, user CPU 1.05x.

Under hv86, around each run of an item, the VM's exit counters (`vm info`:
exits by cause, the translator's exits by reason, hidden shadow faults) are
read and their increase is printed, with exits per bogo op, and again for
the last round after the table: the engineers who make the common path
cheap need to see where each workload exits. The increase includes what
the shell, `su` and stress-ng's start did: a few thousand exits, which
matter only where an item has few ops (fork+exec).

Exits 1 if a figure could not be taken (an item failed, did fewer
operations than asked, or a guest clock disagreed with the host's); a
missed target does not fail it.
"""
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from hvmachine import Machine  # noqa: E402
from linuxguest import NativeLinux, attach, detach  # noqa: E402
from disk_bench import GUEST_MEM_MIB, HOST_MEM_MIB  # noqa: E402

VM = "stress"
BOOT_TIMEOUT = 600          # the bench image's boot, hv86 included
ITEM_TIMEOUT = 300          # per item; more would blow the suite's ~10 minutes
CLOCK_TOLERANCE = 0.10      # see the module comment
# What the guest's clock runs on: its clocksource, the TSC frequency Linux
# took (natively from its own calibration, under hv86 from CPUID leaf
# 15h/16h, which hv86 measured against the PIT at its own boot), and what
# Linux said of the TSC.
CLOCK_INFO = ("cat /sys/devices/system/clocksource/clocksource0/current_clocksource; "
              "dmesg | grep -o 'tsc: [A-Za-z ]*[0-9.]* MHz' | tail -n 1")
TSC_UNSTABLE = "dmesg | grep -i tsc | grep -i -m 2 'unstable\\|fail\\|skew\\|switched'"
WORKDIR = "/tmp/b"          # the bench user's home and stress-ng's --temp-path
# Make the guest able to run stress-ng as a user: the initramfs root is mode
# 700 (mktemp -d) and has no passwd entry but root's.
SETUP = ("echo bench:x:1000:1000::%s:/bin/sh >>/etc/passwd; mkdir -p %s; chown 1000 %s"
         % (WORKDIR, WORKDIR, WORKDIR))
SN = 'sn() { su bench -c "cd %s; stress-ng $* --metrics-brief --temp-path %s"; }' % (WORKDIR, WORKDIR)


class Item:
    """One figure: stress-ng with one worker of `stressor` for `ops` bogo
    ops, `args` added; or, when `sysbench` is given (its test and options),
    sysbench for `ops` events. `target`: issue 14's ratio, if it sets one."""

    def __init__(self, name, stressor, args, ops, target=None, sysbench=None):
        self.name, self.stressor, self.args, self.ops, self.target = name, stressor, args, ops, target
        self.sysbench = sysbench

    def label(self):
        if self.sysbench:
            return "sysbench " + self.sysbench
        return ("%s %s" % (self.stressor, self.args)).strip()

    def command(self):
        if self.sysbench:
            return "sysbench %s --events=%d --time=0 run" % (self.sysbench, self.ops)
        return "sn --%s 1 --%s-ops %d %s" % (self.stressor, self.stressor, self.ops, self.args)

    def seconds(self, status, out):
        """The tool's real time for the item's work, from its output; raises
        RuntimeError when the run failed or did less than asked."""
        if self.sysbench:
            t = re.search(r"total time:\s+([\d.]+)s", out)
            n = re.search(r"total number of events:\s+(\d+)", out)
            secs, done = (float(t.group(1)), int(n.group(1))) if t and n else (None, 0)
        else:
            m = re.search(r"metrc: \[\d+\] %s\s+(\d+)\s+([\d.]+)\s" % re.escape(self.stressor), out)
            secs, done = (float(m.group(2)), int(m.group(1))) if m else (None, 0)
        if status != 0 or secs is None or done < self.ops:
            raise RuntimeError("%s: status %d, %d of %d ops: %r" % (self.name, status, done, self.ops, out[-300:]))
        return secs


# The user CPU items, whose target leaves 5% and which take seconds, run at
# least CPU_ROUNDS pairs: an odd number, so that the median is one pair's.
USER_CPU_TARGET = 1.05
CPU_ROUNDS = 7

# Sized so that native QEMU TCG takes 0.3-3 s per item and hv86, at 1-12
# times that (main at 954646c; 1-100 at cb2ec91), two rounds 4-9 minutes
# on two cores.
ITEMS = [
    Item("null system call", "null", "", 20000, 3.0),
    Item("fork+exit", "fork", "", 500),
    Item("fork+exec", "exec", "--exec-fork-method fork --exec-max 1", 40, 3.0),
    Item("page faults", "vm", "--vm-bytes 1M --vm-method write64", 256, 2.0),
    Item("pipe round trip", "switch", "--switch-method pipe", 20000, 3.0),
    Item("context switch", "switch", "--switch-method sem-sysv", 40000),
    Item("mmap/munmap", "mmap", "--mmap-bytes 256K", 60),
    Item("user CPU", "cpu", "--cpu-method queens", 600, USER_CPU_TARGET),
    Item("user CPU (sysbench)", None, "", 200, USER_CPU_TARGET, sysbench="cpu --cpu-max-prime=5000"),
]


# ---------------------------------------------------------------- the two guests

def bench_cpu():
    """The host CPU to pin every QEMU to (HV86_BENCH_CPU), or None."""
    want = os.environ.get("HV86_BENCH_CPU", "")
    if want == "none":
        return None
    return int(want) if want else max(os.sched_getaffinity(0))


def pin(pid, cpu):
    """Pin every thread of process pid to host CPU cpu (None: leave it);
    threads it starts later inherit it. Returns how many were pinned."""
    if cpu is None:
        return 0
    tids = os.listdir("/proc/%d/task" % pid)
    for tid in tids:
        os.sched_setaffinity(int(tid), {cpu})
    return len(tids)


def load_average():
    """The host's 1, 5 and 15 minute load averages, as text: how busy the
    machine was (other engineers' QEMUs; two cores)."""
    return " ".join("%.2f" % x for x in os.getloadavg())


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def bench_shell(con):
    """Make the bench image's shell (a LinuxConsole at its prompt) ready for
    `sn`: the user bench, its directory, the function (SETUP, SN). Raises
    RuntimeError if a line fails."""
    for line in (SETUP, SN):
        if con.run(line, 120)[0] != 0:
            raise RuntimeError("guest setup failed: %r" % line)


class Guest:
    """One side's guest, booted once and kept for all rounds: the bench
    image's shell set up for stress-ng. Keeps each item's time per round
    (`times[item][round]`, guest seconds, None where it failed), the items
    that failed and why (`failed`), and whether its shell still answers
    (`alive`)."""

    side = "?"

    def __init__(self):
        self.con = None
        self.times, self.failed, self.alive = {}, {}, True
        self.clock = None   # (guest uptime, host monotonic) at the first item

    def boot(self):
        """Start the guest and return its shell (a LinuxConsole) at the prompt."""
        raise NotImplementedError

    def before(self, item):
        """Called before each run of an item (hv86: the exit counters)."""

    def after(self, item, secs):
        """Called after each run of an item that gave a time (secs)."""

    def stop(self):
        raise NotImplementedError

    def qemu_pid(self):
        raise NotImplementedError

    def start(self):
        t0 = time.monotonic()
        self.con = self.boot()
        self.con.wait_ready(BOOT_TIMEOUT)
        print("  %-6s booted in %.1f s (not counted)" % (self.side, time.monotonic() - t0), flush=True)
        cpu = bench_cpu()
        n = pin(self.qemu_pid(), cpu)
        if n:
            print("  %-6s QEMU's %d threads pinned to host CPU %d" % (self.side, n, cpu), flush=True)
        bench_shell(self.con)
        self.print_clock()

    def print_clock(self):
        """Print the guest's clocksource (kept in `clocksource`) and TSC."""
        info = self.con.run(CLOCK_INFO, 120)[1].split("\n") + self.con.run(TSC_UNSTABLE, 120)[1].split("\n")
        self.clocksource = info[0].strip()
        print("  %-6s guest clock: %s" % (self.side, "; ".join(i.strip() for i in info if i.strip())), flush=True)

    def uptime(self):
        out = self.con.run("cat /proc/uptime", 120)[1]
        return float(out.split()[0]), time.monotonic()

    def measure(self, item, r):
        """Round r's run of ITEM; a failed item is not run again, a shell
        that does not answer ends this side."""
        got = self.times.setdefault(item.name, [])
        got.extend([None] * (r + 1 - len(got)))
        if not self.alive or item.name in self.failed:
            return
        if self.clock is None:
            self.clock = self.uptime()
        try:
            self.before(item)
            secs = item.seconds(*self.con.run(item.command(), ITEM_TIMEOUT))
            got[r] = secs
            print("  %-6s %-20s %8.2f s" % (self.side, item.name, secs), flush=True)
            self.after(item, secs)
        except Exception as e:  # noqa: BLE001 -- report, go on with the other items
            self.failed[item.name] = "%s: %s" % (type(e).__name__, str(e).split("\n")[0][:200])
            print("  %-6s %-20s no figure: %s" % (self.side, item.name, self.failed[item.name]), flush=True)
            if not isinstance(e, RuntimeError):
                self.alive = False      # the shell did not answer: nothing else would be

    def figures(self):
        """{item: [host seconds or None per round]}: the times over the guest
        clock's rate, measured from the first item to now; {} if the clock is
        off by more than CLOCK_TOLERANCE or the shell died."""
        if not self.alive or self.clock is None:
            return {}
        g0, h0 = self.clock
        g1, h1 = self.uptime()
        rate = (g1 - g0) / (h1 - h0)
        self.print_clock()
        print("  %-6s guest clock / host clock over the items: %.3f" % (self.side, rate), flush=True)
        if abs(rate - 1) > CLOCK_TOLERANCE:
            print("  %-6s the guest's clock is off by more than %d%%: no figure of this side counts"
                  % (self.side, CLOCK_TOLERANCE * 100), flush=True)
            return {}
        return {name: [t / rate if t else None for t in ts] for name, ts in self.times.items()}


class Native(Guest):
    side = "native"

    def boot(self):
        self.nat = NativeLinux("bench", mem_mib=GUEST_MEM_MIB).start()
        return self.nat.console

    def qemu_pid(self):
        return self.nat.child.pid

    def stop(self):
        if getattr(self, "nat", None):
            self.nat.stop()


# ---------------------------------------------------------------- exit counters under hv86

def exit_counters(info):
    """{counter: value} from `vm info`: "exits" (the total) and "exit:CAUSE"
    from its "exits: N total; CAUSE N..." line, "bt:REASON" from the
    translator's "exits by reason:" line, "hidden faults" and "reflected"
    from the shadow line. Raises RuntimeError if the exits line is missing
    (the format changed: fix this parser)."""
    c = {}
    m = re.search(r"^exits: (\d+) total;(.*)$", info, re.M)
    if not m:
        raise RuntimeError("no 'exits: N total;' line in vm info: %r" % info[:300])
    c["exits"] = int(m.group(1))
    for name, n in re.findall(r"(\S+) (\d+)", m.group(2)):
        c["exit:" + name] = int(n)
    m = re.search(r"exits by reason:(.*)$", info, re.M)
    for name, n in re.findall(r"(\S+) (\d+)", m.group(1) if m else ""):
        c["bt:" + name] = int(n)
    for what in ("hidden faults", "reflected"):
        m = re.search(r"(\d+) %s" % what, info)
        if m:
            c[what] = int(m.group(1))
    # The translation cache: a flush during an item costs it the
    # translation of the whole working set again (a Linux guest's ~17,000
    # blocks, some 0.2 s under QEMU TCG): the item's time then says so.
    m = re.search(r"translation cache: (\d+) blocks translated", info)
    if m:
        c["blocks translated"] = int(m.group(1))
    m = re.search(r"(\d+) flushes,", info)
    if m:
        c["tc flushes"] = int(m.group(1))
    return c


def counter_delta(before, after):
    """after - before per counter; the console prints 32-bit counters, so a
    wrap is undone modulo 2^32."""
    return {k: (v - before.get(k, 0)) % (1 << 32) for k, v in after.items() if v != before.get(k, 0)}


def format_delta(d, ops, secs):
    causes = sorted(((v, k[5:]) for k, v in d.items() if k.startswith("exit:")), reverse=True)
    reasons = sorted(((v, k[3:]) for k, v in d.items() if k.startswith("bt:")), reverse=True)
    total = d.get("exits", 0)
    return ("%d exits, %.1f per op, %.0f per second of its time (its start's included); by cause: %s; translator exits by reason: %s;"
            " hidden faults %d; blocks translated %d, translation cache flushes %d"
            % (total, total / ops, total / secs, ", ".join("%s %d" % (k, v) for v, k in causes) or "-",
               ", ".join("%s %d" % (k, v) for v, k in reasons) or "-", d.get("hidden faults", 0),
               d.get("blocks translated", 0), d.get("tc flushes", 0)))


class Hv86(Guest):
    """The VM on hv86-bench.iso. `exits` holds, per item, the increase of
    the VM's exit counters over its last run, formatted."""
    side = "hv86"
    exits = {}

    def __init__(self, iso=None, side="hv86"):
        super().__init__()
        self.iso = iso or os.environ.get("HV86_BENCH_ISO") or os.path.join(ROOT, "hv86-bench.iso")
        self.side = side

    def qemu_pid(self):
        return self.m.child.pid

    def boot(self):
        self.m = Machine("qemu", mem_mib=HOST_MEM_MIB, iso=self.iso).start()
        print("  hv86 up in %.1f s (not counted)" % self.m.boot_seconds, flush=True)
        out = self.m.cmd('vm create %s kernel=linux initrd=bench mem=%dM cmdline="console=ttyS0"'
                         % (VM, GUEST_MEM_MIB))
        if "created" not in out:
            raise RuntimeError("vm create: %r" % out.strip())
        self.m.cmd("vm start %s" % VM)
        self.exits = {}
        return attach(self.m, VM)

    def counters(self):
        """The VM's exit counters; the shell is detached meanwhile."""
        detach(self.m)
        try:
            return exit_counters(self.m.cmd("vm info %s" % VM))
        finally:
            self.con = attach(self.m, VM)

    def before(self, item):
        self.counted = self.counters()

    def after(self, item, secs):
        self.exits[item.name] = format_delta(counter_delta(self.counted, self.counters()), item.ops, secs)
        print("         %s" % self.exits[item.name], flush=True)

    def stop(self):
        if getattr(self, "m", None):
            self.m.stop()


def pair_ratios(a, b):
    """Per-round ratios a/b of two sides' times (lists by round), where
    both have one."""
    return [x / y for x, y in zip(a or [], b or []) if x and y]


def ratio_cells(ratios):
    """(median, "pairs", "lowest-highest") of per-pair ratios, as text."""
    if not ratios:
        return "-", "0", "-"
    return "%.2f" % median(ratios), "%d" % len(ratios), "%.2f-%.2f" % (min(ratios), max(ratios))


def print_table(rows):
    w = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w[k]) if k < 2 else c.rjust(w[k]) for k, c in enumerate(r[:-1])) + "  " + r[-1])


def item_rounds(item, rounds):
    return max(rounds, CPU_ROUNDS) if item.target == USER_CPU_TARGET else rounds


def main():
    args = sys.argv[1:]
    rounds = int(args.pop(0)) if args and args[0].isdigit() else 1
    items = [i for i in ITEMS if not args or i.name in args]
    if not items:
        print("no such item; the items: %s" % ", ".join(i.name for i in ITEMS))
        return 2
    print("stress bench: Debian's stress-ng and sysbench, bench image, %d MiB, QEMU TCG, %d pair%s per item;"
          " host load average %s" % (GUEST_MEM_MIB, rounds, "s" if rounds > 1 else "", load_average()), flush=True)
    guests = [Native(), Hv86()]
    if os.environ.get("HV86_BENCH_ISO_B"):  # an A/B of two hv86 builds, interleaved in this run
        guests.append(Hv86(os.environ["HV86_BENCH_ISO_B"], "hv86-B"))
    t = {}
    try:
        for g in guests:
            try:
                g.start()
            except Exception as e:  # noqa: BLE001 -- a side that did not boot: its figures are missing
                print("  %-6s no figures: %s: %s" % (g.side, type(e).__name__, str(e).split("\n")[0][:200]),
                      flush=True)
                g.alive = False
        for r in range(max(rounds, CPU_ROUNDS)):
            # Rotate who goes first, round by round: native first in even rounds.
            order = guests[r % len(guests):] + guests[:r % len(guests)]
            for item in items:
                if r < item_rounds(item, rounds):
                    for g in order:
                        g.measure(item, r)
        for g in guests:
            t[g.side] = g.figures()
    finally:
        for g in guests:
            g.stop()
    exits = guests[1].exits
    print("host load average at the end: %s" % load_average())
    print("stress bench results (the tool's own real time for the same work on both sides; ratio: the median "
          "of per-pair ratios hv86/native, %d pairs per item, user CPU %d; seconds: each side's median):"
          % (rounds, max(rounds, CPU_ROUNDS)))
    rows = [("item", "stressor", "native", "hv86", "ratio", "pairs", "pair range", "target")]
    for i in items:
        n, h = t["native"].get(i.name), t["hv86"].get(i.name)
        ratios = pair_ratios(h, n)
        med, npairs, spread = ratio_cells(ratios)
        target = ""
        if i.target:
            target = "<= %g" % i.target + ("" if not ratios else
                                           "  %s" % ("met" if median(ratios) <= i.target else "missed"))
        med_n = [x for x in n or [] if x]
        med_h = [x for x in h or [] if x]
        rows.append((i.name, "%s, %d ops" % (i.label(), i.ops), "%.2f" % median(med_n) if med_n else "-",
                     "%.2f" % median(med_h) if med_h else "-", med, npairs, spread, target))
    print_table(rows)
    print("per-pair ratios hv86/native, round by round (native first in even rounds):")
    for i in items:
        print("  %-20s %s" % (i.name, " ".join("%.3f" % x if x else "-" for x in
                                               [hh / nn if hh and nn else None for hh, nn in
                                                zip(t["hv86"].get(i.name) or [], t["native"].get(i.name) or [])])))
    print("hv86 exits per item (vm info, increase over the item's last run):")
    for i in items:
        print("  %-20s %s" % (i.name, exits.get(i.name, "-")))
    if len(guests) > 2:
        print("A/B: hv86 (%s) against hv86-B (%s), median of per-round ratios:" % (guests[1].iso, guests[2].iso))
        rows = [("item", "", "hv86", "hv86-B", "hv86/B", "pairs", "pair range", "hv86-B/native")]
        for i in items:
            a, b, n = t["hv86"].get(i.name), t["hv86-B"].get(i.name), t["native"].get(i.name)
            ab = pair_ratios(a, b)
            med, npairs, spread = ratio_cells(ab)
            ma, mb = [x for x in a or [] if x], [x for x in b or [] if x]
            rows.append((i.name, "", "%.2f" % median(ma) if ma else "-", "%.2f" % median(mb) if mb else "-",
                         med, npairs, spread, ratio_cells(pair_ratios(b, n))[0]))
        print_table(rows)
        for i in items:
            print("  %-20s hv86-B: %s" % (i.name, guests[2].exits.get(i.name, "-")))
    sources = {g.side: getattr(g, "clocksource", "?") for g in guests}
    if len(set(sources.values())) > 1:
        print("note: the guests' clocksources differ (%s): with pit, every clock read is port I/O (io exits"
              " under hv86) and the clock lags when ticks come late; with refined-jiffies, clock_gettime"
              " is a system call (two exits under hv86)"
              % ", ".join("%s %s" % kv for kv in sources.items()))
    ok = all(i.name in t["native"] and i.name in t["hv86"] and pair_ratios(t["hv86"][i.name], t["native"][i.name])
             for i in items)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
