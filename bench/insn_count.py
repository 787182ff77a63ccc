#!/usr/bin/env python3
"""Guest instructions QEMU runs for a command in the bench guest, by place.

    python3 bench/insn_count.py [--iso ISO | --native] [--runs N] [--top N] 'COMMAND'
    python3 bench/insn_count.py [--iso ISO] --boot [--top N]
    python3 bench/insn_count.py [--iso ISO] [--top N] --by-function 'COMMAND'

Boots the bench image (stress-ng as `sn`, as bench/stress_bench.py sets it
up) natively under QEMU TCG or as a VM of hv86 (ISO: default
hv86-bench.iso), with the TCG plugin bench/qemu_tbcount.c loaded, runs
COMMAND once to warm up, then N times (default 2), and for each run prints
how many guest instructions and translated-block executions QEMU ran, by
where the TB starts:
    user         guest user code (below 0xC0000000)
    kernel       the guest kernel run natively (0xC0000000 up; native only)
    monitor      hv86 (its image and direct map, 0xFC000000 up), with its
                 functions from the ISO's hv86.elf (--top of them)
    tc           hv86's translation cache (the VM's window, 0xFE400000 up)
and the translation cache's TBs by size. With --inclusive N, the plugin
also follows the monitor's calls and returns, and the N monitor functions
with the most instructions under them (their own and their callees',
monitor code only: a world switch's guest time is not in it) are printed
with their calls and instructions per call: what a path costs whole, where
the table above splits it by function. With --native and --inclusive N,
it follows the guest kernel's calls instead: the N kernel functions
called most (calls, instructions per call with their callees, named from
the guest's /proc/kallsyms), and how many of all calls went to functions
of at most 12 and 25 instructions: the returns a translator that inlined
such functions would not look up (docs/performance.md, session 20).
With --boot (hv86 only), it counts the guest's boot instead, from `vm
start` to the shell's prompt: what translation costs (docs/performance.md,
session 21).
With --by-function, it runs COMMAND natively and then under hv86 (one
warm-up and one counted run each) and puts the two side by side by guest
kernel function: natively the kernel's TBs by their address, under hv86
the translation cache's TBs by the guest EIP each starts in (`vm tceip`,
the VM paused), both named from the guest's /proc/kallsyms; what is in no
translated block (the shared lookup stub, exit stubs) is a row of its own.
Where translated code runs more instructions than the kernel it
translates, and in which functions (docs/performance.md, session 22).
QEMU's time follows the guest instruction count closely (about 1 ns each on the build machine, natively
and under hv86 alike): a difference of a few percent is visible here from
one run, where a timed A/B needs many (docs/performance.md "Counting guest
instructions"). What it does not count: QEMU's own work per TB
transition, TB lookup, TLB fill and exception, which a change of code size
or of the number of indirect jumps moves too.
"""
import argparse
import bisect
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from hvmachine import Machine  # noqa: E402
from linuxguest import NativeLinux, attach, detach, hv86_create  # noqa: E402
from disk_bench import GUEST_MEM_MIB, HOST_MEM_MIB  # noqa: E402
from stress_bench import bench_shell  # noqa: E402
from profile import MONITOR_BASE, guest_symbols, symbols  # noqa: E402

PLUGIN = os.path.join(ROOT, "build", "bench", "qemu_tbcount.so")
USER_TOP, VMWIN_BASE, KMAP_BASE = 0xC0000000, 0xFE400000, 0xFF000000  # docs/memory-layout.md
VM = "count"
DUMP_TIMEOUT = 60


def region(vaddr, native):
    if vaddr < USER_TOP:
        return "user"
    if native:
        return "kernel"
    if VMWIN_BASE <= vaddr < KMAP_BASE:
        return "tc"
    return "monitor" if vaddr >= MONITOR_BASE else "other"


def read_dump(path, translations=None):
    """{(vaddr, ninsns): executions} of one dump (TBs of one vaddr and size
    translated more than once are added up); translations, if given, gets
    {vaddr: TB translations that ran} (one line each in the dump)."""
    counts = Counter()
    with open(path) as f:
        for line in f:
            vaddr, ninsns, n = line.split()
            counts[(int(vaddr, 16), int(ninsns))] += int(n)
            if translations is not None:
                translations[int(vaddr, 16)] += 1
    return counts


class Counted:
    """The plugin's control file: dump() returns the counts so far."""

    def __init__(self, tmp, calls=False):
        self.ctl = os.path.join(tmp, "tbcount")
        self.n = 0
        self.calls = calls
        self.last = None
        self.translations = Counter()  # {vaddr: TB translations that ran}, as of the last dump

    def args(self, native=False):
        lo, hi = (USER_TOP, 0xFFFFF000) if native else (MONITOR_BASE, VMWIN_BASE)
        extra = ",calls=%x-%x" % (lo, hi) if self.calls else ""
        return ["-plugin", "%s,ctl=%s%s" % (PLUGIN, self.ctl, extra)]

    def dump(self):
        self.n += 1
        out = "%s.%d" % (self.ctl, self.n)
        with open(self.ctl + ".req", "w") as f:
            f.write(out + "\n")
        deadline = time.monotonic() + DUMP_TIMEOUT
        while os.path.exists(self.ctl + ".req"):
            if time.monotonic() > deadline:
                raise RuntimeError("the plugin wrote no dump in %d s (is it loaded?)" % DUMP_TIMEOUT)
            time.sleep(0.05)
        self.last = out
        self.translations = Counter()
        return read_dump(out, self.translations)

    def calls_dump(self):
        """{entry: (instructions, calls)} of the last dump's PATH.calls."""
        got = {}
        if self.calls and self.last and os.path.exists(self.last + ".calls"):
            with open(self.last + ".calls") as f:
                for line in f:
                    entry, insns, calls = line.split()
                    got[int(entry, 16)] = (int(insns), int(calls))
        return got


def report_inclusive(before, after, syms, top):
    addrs = [a for a, _ in syms]
    rows = []
    for entry, (insns, calls) in after.items():
        i0, c0 = before.get(entry, (0, 0))
        if calls > c0:
            k = bisect.bisect_right(addrs, entry) - 1
            name = syms[k][1] if k >= 0 and syms[k][0] == entry else "%08x" % entry
            rows.append((insns - i0, calls - c0, name))
    rows.sort(reverse=True)
    print("    monitor functions with their callees: instructions (M), calls, per call")
    for insns, calls, name in rows[:top]:
        print("      %8.2f M %9d %8.0f  %s" % (insns / 1e6, calls, insns / calls, name))


def report_kernel_calls(before, after, con, top):
    """The guest kernel's functions by calls (natively), and the share of
    calls to short ones."""
    rows = []
    for entry, (insns, calls) in after.items():
        i0, c0 = before.get(entry, (0, 0))
        if calls > c0:
            rows.append((calls - c0, (insns - i0) / (calls - c0), entry))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows) or 1
    names = guest_symbols(con, [e for _, _, e in rows[:top]])
    print("    guest kernel functions by calls: calls, instructions per call with their callees")
    for calls, per, entry in rows[:top]:
        name, at = names.get(entry, ("%08x" % entry, entry))
        print("      %9d %8.1f  %s%s" % (calls, per, name, "" if at == entry else "+%x" % (entry - at)))
    for most in (12, 25):
        n = sum(r[0] for r in rows if r[1] <= most)
        print("    calls to functions of at most %d instructions: %d of %d (%.0f%%)" % (most, n, total, 100.0 * n / total))


def report(delta, native, syms, top):
    insns, execs = Counter(), Counter()
    for (vaddr, n), c in delta.items():
        r = region(vaddr, native)
        insns[r] += n * c
        execs[r] += c
    total = sum(insns.values())
    print("  %.1f M guest instructions, %.1f M TB executions" % (total / 1e6, sum(execs.values()) / 1e6))
    for r, i in insns.most_common():
        print("    %-8s %9.1f M  %5.1f%%  %8.2f M TBs (%.1f instructions each)"
              % (r, i / 1e6, 100.0 * i / total, execs[r] / 1e6, i / execs[r]))
    if syms and top:
        addrs = [a for a, _ in syms]
        fn, calls = Counter(), Counter()
        for (vaddr, n), c in delta.items():
            if region(vaddr, native) != "monitor":
                continue
            k = bisect.bisect_right(addrs, vaddr) - 1
            name = syms[k][1] if k >= 0 else "?"
            fn[name] += n * c
            if k >= 0 and vaddr == addrs[k]:
                calls[name] += c
        print("    monitor functions: instructions (M), calls (entries at the symbol)")
        for name, i in fn.most_common(top):
            print("      %8.2f M %9d  %s" % (i / 1e6, calls[name], name))
    if not native and top:
        tbs = sorted(((n * c, vaddr, n, c) for (vaddr, n), c in delta.items() if region(vaddr, native) == "tc"),
                     reverse=True)[:top]
        sizes = Counter()
        for (vaddr, n), c in delta.items():
            if region(vaddr, native) == "tc":
                sizes[min(n, 9)] += c
        print("    translation cache TB executions by size (instructions; 9: 9 or more): %s"
              % ", ".join("%d: %.2f M" % (n, c / 1e6) for n, c in sorted(sizes.items())))
        print("    translation cache TBs: instructions (M), tca, size, executions")
        for i, vaddr, n, c in tbs:
            print("      %8.2f M  %08x  %3d  %d" % (i / 1e6, vaddr, n, c))


TCEIP_PER_LINE = 13  # addresses per `vm tceip` line (the console takes 16 tokens)
BY_FN_SHARE = 0.995  # the translation cache TBs resolved: those that ran this share of its instructions


def kernel_text_symbols(con):
    """[(address, name)] of the guest kernel's text symbols, sorted."""
    _, out = con.run("awk '$2 ~ /^[tT]$/ { print $1, $3 }' /proc/kallsyms | sort", 600)
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 2 and len(f[0]) == 8:
            syms.append((int(f[0], 16), f[1]))
    if not syms:
        raise RuntimeError("no text symbols in the guest's /proc/kallsyms")
    return sorted(syms)


def by_symbol(counts, syms):
    """{name: instructions} of {eip: instructions}, each eip in the text
    symbol at or below it."""
    addrs = [a for a, _ in syms]
    out = Counter()
    for eip, n in counts.items():
        k = bisect.bisect_right(addrs, eip) - 1
        out[syms[k][1] if k >= 0 else "?"] += n
    return out


def tc_guest_eips(m, tcas):
    """{tca: guest EIP or None} through `vm tceip`, the VM paused (its
    console detached meanwhile); returns it and the console attached again."""
    detach(m)
    m.cmd("vm pause %s" % VM)
    eips = {}
    try:
        tcas = sorted(tcas)
        for i in range(0, len(tcas), TCEIP_PER_LINE):
            line = "vm tceip %s %s" % (VM, " ".join("0x%x" % t for t in tcas[i:i + TCEIP_PER_LINE]))
            out = m.cmd(line)
            if "did not answer" in out:
                raise RuntimeError(out.strip())
            for row in out.splitlines():
                f = row.split()
                if len(f) == 2 and len(f[0]) == 8:
                    eips[int(f[0], 16)] = None if f[1] == "-" else int(f[1], 16)
    finally:
        m.cmd("vm resume %s" % VM)
    missing = set(tcas) - set(eips)
    if missing:
        raise RuntimeError("vm tceip answered nothing for %d addresses, e.g. %08x" % (len(missing), min(missing)))
    return eips, attach(m, VM)


def counted_run(con, counted, command):
    """One warm-up run of command, then one counted: the TBs' delta."""
    bench_shell(con)
    con.run(command, 900)
    before = counted.dump()
    status, _ = con.run(command, 900)
    if status:
        raise RuntimeError("%r exited %d" % (command, status))
    after = counted.dump()
    return Counter({k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)})


def by_function(a):
    """--by-function: COMMAND natively and under hv86, by kernel function."""
    with tempfile.TemporaryDirectory() as tmp:
        counted = Counted(tmp)
        side = NativeLinux("bench", mem_mib=GUEST_MEM_MIB, extra_args=counted.args(native=True)).start()
        try:
            side.console.wait_ready(600)
            delta = counted_run(side.console, counted, a.command)
            ksyms = kernel_text_symbols(side.console)
        finally:
            side.stop()
    native = Counter()
    for (vaddr, n), c in delta.items():
        if vaddr >= USER_TOP:
            native[vaddr] += n * c
    native_fn = by_symbol(native, ksyms)
    with tempfile.TemporaryDirectory() as tmp:
        counted = Counted(tmp)
        m = Machine("qemu", mem_mib=HOST_MEM_MIB, iso=a.iso, extra_args=counted.args()).start()
        try:
            out = hv86_create(m, VM, "bench", mem_mib=GUEST_MEM_MIB)
            if "created" not in out:
                raise RuntimeError("vm create: %r" % out.strip())
            m.cmd("vm start %s" % VM)
            con = attach(m, VM)
            con.wait_ready(600)
            delta = counted_run(con, counted, a.command)
            tc = Counter()
            for (vaddr, n), c in delta.items():
                if region(vaddr, False) == "tc":
                    tc[vaddr] += n * c
            total = sum(tc.values())
            chosen, acc = [], 0
            for vaddr, n in tc.most_common():
                if acc >= BY_FN_SHARE * total:
                    break
                chosen.append(vaddr)
                acc += n
            eips, con = tc_guest_eips(m, chosen)
            hv_ksyms = kernel_text_symbols(con)  # its own: the kernel may sit elsewhere in each boot (KASLR)
        finally:
            m.stop()
    guest, stubs = Counter(), 0
    for vaddr in chosen:
        if eips[vaddr] is None:
            stubs += tc[vaddr]
        else:
            guest[eips[vaddr]] += tc[vaddr]
    hv_fn = by_symbol(guest, hv_ksyms)
    unresolved = total - acc
    print("%r: guest kernel instructions natively against translated code under hv86 (%s), by function"
          % (a.command, a.iso))
    print("  native kernel %.1f M; translation cache %.1f M: in blocks %.1f M, in no block (lookup and exit"
          " stubs) %.1f M, not resolved (the rarest TBs) %.1f M"
          % (sum(native.values()) / 1e6, total / 1e6, sum(guest.values()) / 1e6, stubs / 1e6, unresolved / 1e6))
    stub_tbs = sorted(((tc[v], v) for v in chosen if eips[v] is None), reverse=True)[:12]
    print("  the TBs in no block that ran most (M instructions, tca, executions):")
    for n, v in stub_tbs:
        execs = sum(c for (vaddr, _), c in delta.items() if vaddr == v)
        print("    %8.2f  %08x  %d" % (n / 1e6, v, execs))
    rows = [(hv_fn[f] - native_fn[f], f) for f in set(hv_fn) | set(native_fn)]
    rows.sort(reverse=True)
    print("  function: native M, hv86 M, hv86 - native M, ratio (most excess first)")
    for d, f in rows[:a.top]:
        nat, hv = native_fn[f], hv_fn[f]
        print("    %-40s %8.2f %8.2f %+8.2f  %s" % (f[:40], nat / 1e6, hv / 1e6, d / 1e6,
                                                    "%.2f" % (hv / nat) if nat else "-"))
    print("  ... and the functions hv86 runs fewer instructions of (inlined callees count in their caller):")
    for d, f in sorted(rows)[:min(a.top, 10)]:
        print("    %-40s %8.2f %8.2f %+8.2f" % (f[:40], native_fn[f] / 1e6, hv_fn[f] / 1e6, d / 1e6))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iso", default=os.environ.get("HV86_BENCH_ISO") or os.path.join(ROOT, "hv86-bench.iso"))
    ap.add_argument("--native", action="store_true")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--inclusive", type=int, default=0, metavar="N")
    ap.add_argument("--boot", action="store_true")
    ap.add_argument("--by-function", action="store_true")
    ap.add_argument("command", nargs="?")
    a = ap.parse_args()
    if a.boot == (a.command is not None) or (a.boot and a.native):
        ap.error("give a COMMAND, or --boot (hv86 only)")
    if a.by_function and (a.native or a.boot or a.inclusive):
        ap.error("--by-function runs both sides, without --inclusive")
    subprocess.run(["make", "-s", "-C", ROOT, os.path.relpath(PLUGIN, ROOT)], check=True)
    if a.by_function:
        by_function(a)
        return
    with tempfile.TemporaryDirectory() as tmp:
        counted = Counted(tmp, calls=a.inclusive > 0)
        if a.native:
            side = NativeLinux("bench", mem_mib=GUEST_MEM_MIB, extra_args=counted.args(native=True)).start()
            con, syms = side.console, None
        else:
            side = Machine("qemu", mem_mib=HOST_MEM_MIB, iso=a.iso, extra_args=counted.args()).start()
            out = hv86_create(side, VM, "bench", mem_mib=GUEST_MEM_MIB)
            if "created" not in out:
                raise RuntimeError("vm create: %r" % out.strip())
            before = counted.dump() if a.boot else None
            side.cmd("vm start %s" % VM)
            con, syms = attach(side, VM), symbols(a.iso)
        try:
            con.wait_ready(600)
            if a.boot:
                tr_before = counted.translations
                after = counted.dump()
                delta = Counter({k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)})
                print("boot of the bench guest, vm start to its shell (%s):" % a.iso)
                report(delta, a.native, syms, a.top)
                tr, addrs = Counter(), Counter()
                for vaddr, n in counted.translations.items():
                    if n > tr_before.get(vaddr, 0):
                        tr[region(vaddr, False)] += n - tr_before.get(vaddr, 0)
                        addrs[region(vaddr, False)] += 1
                print("    QEMU's translations of TBs that ran, by place (translations, addresses): %s"
                      % ", ".join("%s %d, %d" % (r, n, addrs[r]) for r, n in tr.most_common()))
                return
            bench_shell(con)
            con.run(a.command, 900)
            for r in range(a.runs):
                before = counted.dump()
                calls_before = counted.calls_dump()
                status, _ = con.run(a.command, 900)
                after = counted.dump()
                delta = Counter({k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)})
                print("run %d of %r (%s, exit status %d):" % (r + 1, a.command, "native" if a.native else a.iso, status))
                report(delta, a.native, syms, a.top)
                if counted.calls and a.native:
                    report_kernel_calls(calls_before, counted.calls_dump(), con, a.inclusive)
                elif counted.calls:
                    report_inclusive(calls_before, counted.calls_dump(), syms, a.inclusive)
        finally:
            side.stop()


if __name__ == "__main__":
    main()
