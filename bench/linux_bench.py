#!/usr/bin/env python3
"""Debian's i386 Linux under hv86 against the same guest under QEMU alone
(make bench-linux; issue 14).

usage: linux_bench.py [REPEAT]      (make bench-linux: 3; REPEAT defaults to 1)
       HV86_BENCH_ISO=this.iso      (the hv86 side; default hv86.iso)
       HV86_BENCH_ISO_B=other.iso   (A/B: a second hv86 build, in the same pairs)
       HV86_BENCH_CPU=N|none        (the host CPU every QEMU is pinned to;
        default the highest one this process may use)
    REPEAT: pairs per figure; each ratio is the median of the per-pair ratios

Two times, each taken on the guest's serial line:
  boot      shell image, to the busybox shell's first prompt
  workload  workload image, to WORKLOAD-END (boot included: the image runs
            its commands from init and powers off)
natively: `qemu-system-i386 -accel tcg -kernel linux.bz -initrd IMAGE -m 64`,
timed from QEMU's start (its firmware included, about half a second);
under hv86: the ISO in QEMU TCG, booted once and kept for all runs, the same
kernel, image, memory and command line as a VM, timed from `vm start`
(hv86's own boot is printed, not counted).

The estimator is bench/stress_bench.py's (its module comment says why): a
*pair* is one run on each side back to back, native first in even rounds
and hv86 first in odd ones; every QEMU is pinned to one host CPU (hv86's
while its VM waits, native's as soon as it is spawned); a figure's ratio is
the median of its pairs' ratios hv86/native, printed with the number of
pairs and their range. This host has two speeds about 1.45x apart that
switch over minutes, so each side's fastest run (what this bench took until
December 2026) measured the best speed that side happened to get. The host's
load average is printed at the start and the end. Under hv86 each workload
run's exits (`vm info`) are printed by cause.

Exits 1 if a figure could not be taken (no pair on some figure).
Targets (issue 14): boot to shell at most 1.5x, workload at most 1.7x.
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from hvmachine import Machine  # noqa: E402
from linuxguest import NativeLinux, attach, detach, hv86_create, workload_lines  # noqa: E402
from linuxguest import WORKLOAD_END  # noqa: E402
from test_linux import BOOT_TIMEOUT, NATIVE_TIMEOUT, WORKLOAD_TIMEOUT  # noqa: E402
from stress_bench import (bench_cpu, exit_counters, load_average, median, pair_ratios, pin,  # noqa: E402
                          print_table, ratio_cells)

FIGURES = ("boot", "workload")
TARGETS = {"boot": 1.5, "workload": 1.7}


def native_run(what, want):
    """Seconds from QEMU's start to the shell prompt (boot) or to
    WORKLOAD-END (workload; its lines are kept in want[0] for hv86's check)."""
    nat = NativeLinux("shell" if what == "boot" else "workload").start()
    try:
        pin(nat.child.pid, bench_cpu())
        if what == "boot":
            return nat.wait_ready(NATIVE_TIMEOUT)
        secs, text, _ = nat.workload(NATIVE_TIMEOUT)
        want[0] = workload_lines(text)[0]
        return secs
    finally:
        nat.stop()


def hv86_run(m, name, image, until, timeout, extra="", before_stop=None):
    """Create and start NAME (`vm create` options extra), attach at once,
    wait for `until` (READY and the prompt, or WORKLOAD-END), call
    before_stop(m, name) if given; return (seconds from `vm start`,
    transcript)."""
    out = hv86_create(m, name, image, extra=extra)
    if "created" not in out:
        raise RuntimeError(out)
    t0 = time.monotonic()
    m.cmd("vm start %s" % name)
    con = attach(m, name)
    failed = None
    try:
        if until == "shell":
            con.wait_ready(timeout)
            secs = con.ready_at - t0
        else:
            con._expect(WORKLOAD_END, timeout, exact=True)
            secs = time.monotonic() - t0
        return secs, con.transcript
    except Exception as e:  # noqa: BLE001 -- said with what the VM was doing, then raised again
        failed = e
        raise
    finally:
        detach(m)
        if failed is not None:  # where the guest was: its last lines, the VM's state and EIP
            info = m.cmd("vm info %s" % name).splitlines()
            print("  %s failed (%s) after %.0f s; its console's last lines:\n    %s\n  vm info: %s" % (
                name, type(failed).__name__, time.monotonic() - t0,
                "\n    ".join(con.transcript.strip().splitlines()[-8:]),
                " | ".join(l.strip() for l in info[:2] + [l for l in info if l.startswith(("EIP=", "exits:"))])),
                flush=True)
        if before_stop:
            before_stop(m, name)
        m.cmd("vm stop %s" % name)
        m.cmd("vm destroy %s" % name)


def exits_summary(info):
    """One line from `vm info`: total exits and the largest causes."""
    c = exit_counters(info)
    causes = sorted(((v, k[5:]) for k, v in c.items() if k.startswith("exit:")), reverse=True)[:8]
    return "%d exits: %s; %d hidden faults" % (c["exits"], ", ".join("%s %d" % (k, v) for v, k in causes),
                                               c.get("hidden faults", 0))


class Side:
    """One side of the pairs: `times[figure][round]` (seconds, None where the
    run failed)."""

    def __init__(self, side):
        self.side = side
        self.times = {f: [] for f in FIGURES}

    def run(self, what, want):
        raise NotImplementedError

    def measure(self, what, r, want):
        got = self.times[what]
        got.extend([None] * (r + 1 - len(got)))
        try:
            got[r] = self.run(what, want)
            print("  %-7s %-9s %7.2f s" % (self.side, what, got[r]), flush=True)
        except Exception as e:  # noqa: BLE001 -- report and go on with the other runs
            print("  %-7s %-9s no figure: %s: %s" % (self.side, what, type(e).__name__,
                                                      str(e).split("\n")[0][:160]), flush=True)

    def stop(self):
        pass


class Native(Side):
    def run(self, what, want):
        return native_run(what, want)


class Hv86(Side):
    """hv86 booted once from iso, pinned; each run is a VM created,
    started and destroyed."""

    def __init__(self, side, iso):
        super().__init__(side)
        self.iso = iso
        self.m = Machine("qemu", mem_mib=256, iso=iso).start()
        n = pin(self.m.child.pid, bench_cpu())
        print("  %-7s up in %.1f s (not counted; %s%s)" % (side, self.m.boot_seconds, iso,
              ", %d QEMU threads pinned to host CPU %d" % (n, bench_cpu()) if n else ""), flush=True)

    def run(self, what, want):
        if what == "boot":
            return hv86_run(self.m, "bboot", "shell", "shell", BOOT_TIMEOUT)[0]
        info = []
        secs, text = hv86_run(self.m, "bwork", "workload", "workload", WORKLOAD_TIMEOUT,
                              before_stop=lambda m, name: info.append(m.cmd("vm info %s" % name)))
        got = workload_lines(text)[0]
        if want[0] is not None and got != want[0]:
            print("  (%s: the workload printed something else than natively: %r)" % (self.side, got))
        print("          %s" % exits_summary(info[0]), flush=True)
        return secs

    def stop(self):
        self.m.stop()


def main():
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    print("linux bench: Debian's i386 kernel, busybox images, 64 MiB, QEMU TCG, %d pair%s per figure;"
          " host load average %s" % (repeat, "s" if repeat > 1 else "", load_average()), flush=True)
    sides = [Native("native")]
    try:
        sides.append(Hv86("hv86", os.environ.get("HV86_BENCH_ISO") or os.path.join(ROOT, "hv86.iso")))
        if os.environ.get("HV86_BENCH_ISO_B"):
            sides.append(Hv86("hv86-B", os.environ["HV86_BENCH_ISO_B"]))
        want = [None]
        for r in range(repeat):
            order = sides[r % len(sides):] + sides[:r % len(sides)]
            for what in FIGURES:
                for s in order:
                    s.measure(what, r, want)
    finally:
        for s in sides:
            s.stop()
    print("host load average at the end: %s" % load_average())
    print("linux bench results (seconds: each side's median; ratio: the median of per-pair ratios"
          " hv86/native, %d pair%s):" % (repeat, "s" if repeat > 1 else ""))
    t = {s.side: s.times for s in sides}
    rows = [("figure", "", "native", "hv86", "ratio", "pairs", "pair range", "target")]
    ok = True
    for what in FIGURES:
        n, h = t["native"][what], t["hv86"][what]
        ratios = pair_ratios(h, n)
        ok = ok and bool(ratios)
        med, npairs, spread = ratio_cells(ratios)
        target = "<= %g" % TARGETS[what] + ("" if not ratios else "  %s" % (
            "met" if median(ratios) <= TARGETS[what] else "missed"))
        mn, mh = [x for x in n if x], [x for x in h if x]
        rows.append((what, "", "%.2f" % median(mn) if mn else "-", "%.2f" % median(mh) if mh else "-",
                     med, npairs, spread, target))
    print_table(rows)
    print("per-pair ratios hv86/native, round by round (native first in even rounds):")
    for what in FIGURES:
        print("  %-9s %s" % (what, " ".join("%.3f" % x if x else "-" for x in
                                           [hh / nn if hh and nn else None
                                            for hh, nn in zip(t["hv86"][what], t["native"][what])])))
    if len(sides) > 2:
        print("A/B: hv86 (%s) against hv86-B (%s), median of per-round ratios:" % (sides[1].iso, sides[2].iso))
        rows = [("figure", "", "hv86", "hv86-B", "hv86/B", "pairs", "pair range", "hv86-B/native")]
        for what in FIGURES:
            a, b, n = t["hv86"][what], t["hv86-B"][what], t["native"][what]
            med, npairs, spread = ratio_cells(pair_ratios(a, b))
            ma, mb = [x for x in a if x], [x for x in b if x]
            rows.append((what, "", "%.2f" % median(ma) if ma else "-", "%.2f" % median(mb) if mb else "-",
                         med, npairs, spread, ratio_cells(pair_ratios(b, n))[0]))
        print_table(rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
