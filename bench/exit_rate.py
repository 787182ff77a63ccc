#!/usr/bin/env python3
"""Exits per second of a CPU-bound Linux guest in its steady state, by cause
(issue 14: what the user CPU items pay besides their own instructions).

usage: exit_rate.py [--iso ISO] [SHORT LONG]
    SHORT, LONG (default 200 and 1000): sysbench cpu --cpu-max-prime=5000
        events in the short and the long run
    --iso ISO (default hv86-bench.iso)

hv86 boots in QEMU TCG with the bench guest (bench/stress_bench.py: 256 MiB,
one CPU), which runs `sysbench cpu` for SHORT events, then for LONG events,
twice over. Around each run the VM's exit counters (`vm info`) are read.
A run's exits include its start and end (the shell, sysbench's start, its
report on the serial line: thousands of exits whatever the length), so the
steady state is the difference of the second long and short runs' exits
over the difference of their times (sysbench's "total time"): exits per
second of sysbench's own work. The guest's clocksource is printed with it
(with refined-jiffies, clock_gettime is a system call: two exits).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from hvmachine import Machine  # noqa: E402
from linuxguest import attach, detach  # noqa: E402
from disk_bench import GUEST_MEM_MIB, HOST_MEM_MIB  # noqa: E402
from stress_bench import SETUP, SN, counter_delta, exit_counters  # noqa: E402

VM = "rate"
COMMAND = "sysbench cpu --cpu-max-prime=5000 --events=%d --time=0 run"


def run(m, events):
    """(sysbench's seconds, exit counter increase) of one run."""
    detach(m)
    before = exit_counters(m.cmd("vm info %s" % VM))
    con = attach(m, VM)
    status, out = con.run(COMMAND % events, 900)
    t = re.search(r"total time:\s+([\d.]+)s", out)
    if status != 0 or not t:
        raise RuntimeError("sysbench failed: %r" % out[-300:])
    detach(m)
    d = counter_delta(before, exit_counters(m.cmd("vm info %s" % VM)))
    attach(m, VM)
    return float(t.group(1)), d


def main():
    args = sys.argv[1:]
    iso = os.path.join(ROOT, "hv86-bench.iso")
    if args[:1] == ["--iso"]:
        iso, args = args[1], args[2:]
    short, long_ = (int(args[0]), int(args[1])) if len(args) == 2 else (200, 1000)
    m = Machine("qemu", mem_mib=HOST_MEM_MIB, iso=iso).start()
    try:
        out = m.cmd('vm create %s kernel=linux initrd=bench mem=%dM cmdline="console=ttyS0"' % (VM, GUEST_MEM_MIB))
        if "created" not in out:
            raise RuntimeError("vm create: %r" % out)
        m.cmd("vm start %s" % VM)
        con = attach(m, VM)
        con.wait_ready(600)
        for line in (SETUP, SN):
            con.run(line, 120)
        clock = con.run("cat /sys/devices/system/clocksource/clocksource0/current_clocksource", 60)[1].strip()
        runs = [run(m, n) for n in (short, long_, short, long_)]
        for n, (secs, d) in zip((short, long_, short, long_), runs):
            print("%5d events: %6.2f s, %6d exits" % (n, secs, d.get("exits", 0)))
        (s1, d1), (s2, d2) = runs[2], runs[3]
        rate = {k: (d2.get(k, 0) - d1.get(k, 0)) / (s2 - s1) for k in set(d1) | set(d2)}
        print("guest clocksource: %s; steady state over %.2f s of sysbench (%s):" % (clock, s2 - s1, iso))
        print("  exits per second: %.0f" % rate.get("exits", 0))
        for prefix, what in (("exit:", "by cause"), ("bt:", "translator exits by reason")):
            rows = sorted(((v, k[len(prefix):]) for k, v in rate.items() if k.startswith(prefix)), reverse=True)
            print("  %s: %s" % (what, ", ".join("%s %.0f" % (k, v) for v, k in rows if round(v))))
        detach(m)
        info = m.cmd("vm info %s" % VM)
        print("\n".join(l for l in info.split("\n") if "host interrupts resumed" in l or l.startswith("APIC")))
    finally:
        m.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
