#!/usr/bin/env python3
"""Debian's i386 Linux under hv86 with the APICs (apic=1) and without (apic=0).

usage: apic_bench.py [ROUNDS]      (default 2)

In one hv86 (hv86.iso in QEMU TCG), ROUNDS rounds of: boot the shell image
to its prompt, then run the workload image to WORKLOAD-END, once with
`apic=1` and once with `apic=0`, alternating which goes first, one VM at a
time. Times are from `vm start`. Then, for each mode, one VM booted and
left idle at its shell for IDLE_S seconds: its exits and CPU time in that
time (`vm list`), what an idle guest costs the host. Prints each figure and
the apic=1/apic=0 ratios of the fastest times; timings on a shared machine
are noisy, compare within one run.
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from hvmachine import Machine  # noqa: E402
from linux_bench import hv86_run  # noqa: E402
from test_linux import BOOT_TIMEOUT, WORKLOAD_TIMEOUT  # noqa: E402
from test_vms import vm_list  # noqa: E402

IDLE_S = 20


def run(m, name, image, apic, until, timeout, idle=0):
    """(seconds from `vm start` to `until`, CPU ms per second while idle
    for idle seconds afterwards, or None)."""
    cost = []

    def idle_cost(m, name):
        a = vm_list(m)[name]
        time.sleep(idle)
        cost.append((vm_list(m)[name]["cpu_ms"] - a["cpu_ms"]) / idle)
    secs, _ = hv86_run(m, name, image, until, timeout, extra="apic=%d" % apic,
                       before_stop=idle_cost if idle else None)
    return secs, cost[0] if cost else None


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    m = Machine("qemu", mem_mib=256).start()
    best = {}
    try:
        for r in range(rounds):
            for apic in ((1, 0) if r % 2 == 0 else (0, 1)):
                for image, until, timeout in (("shell", "shell", BOOT_TIMEOUT),
                                              ("workload", "workload", WORKLOAD_TIMEOUT)):
                    secs, _ = run(m, "ab%d" % apic, image, apic, until, timeout)
                    key = ("boot" if image == "shell" else "workload", apic)
                    best[key] = min(best.get(key, secs), secs)
                    print("round %d apic=%d %-8s %6.1f s" % (r + 1, apic, key[0], secs), flush=True)
        for apic in (1, 0):
            _, cost = run(m, "idle%d" % apic, "shell", apic, "shell", BOOT_TIMEOUT, idle=IDLE_S)
            print("apic=%d idle at the shell: %.1f ms of CPU per second" % (apic, cost), flush=True)
    finally:
        m.stop()
    for what in ("boot", "workload"):
        print("%-8s fastest: apic=1 %.1f s, apic=0 %.1f s, ratio %.2f"
              % (what, best[(what, 1)], best[(what, 0)], best[(what, 1)] / best[(what, 0)]))


if __name__ == "__main__":
    main()
