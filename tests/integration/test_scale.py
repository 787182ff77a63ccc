#!/usr/bin/env python3
"""Many VMs on one host: the number of guests is bounded by RAM (issue 15).

usage: test_scale.py dozen [N]     (QEMU TCG, 1 GiB host; N guests, default 12)
       test_scale.py limits        (QEMU TCG, 2 GiB host)

dozen: N Debian Linux guests of 64 MiB (the shell image) are created on a
1 GiB host and all started at once (`vm start all`); each one's shell must
come up within HV86_SCALE_BOOT_S seconds (1200; 780 s were measured with
QEMU getting a third of a core), and then, with all N running, each must
answer a command at its shell (its name, uptime and clocksource).
Each guest's timer catch-up (vmm/dev/vtick.h) is printed from `vm info`:
without giving up most of a long gap's ticks, twelve Linux guests booting
at once spent their CPU in reinjected ticks. `mem` is printed before the
creates, after them and at the end; `vm list` must show N running rows
and a total line. Each guest's translation cache and shadow tables are in its own window in high
memory (docs/memory-layout.md), so the direct map must keep most of its
frames. Then the host is nearly full: a guest whose RAM does not fit must be
refused naming guest RAM, one whose RAM fits but not its translation cache
must be refused naming the translation cache, and neither may leave a frame
allocated. Before that, the page-sharing scanner is given up to
HV86_SCALE_SHARE_S seconds (240) and the pages shared and saved are printed:
the guests' RAM must take less host memory than N x 64 MiB.

limits: on a 2 GiB host, small guests (the `timer` test guest, 2 MiB) are
created until `vm create` fails: it must fail naming what ran out, and that
must be the 64 VM slots, not the direct map (each VM's state there is about
0.5 MiB); the `vm list` total must show the VMs created; every VM is
destroyed and `mem` must show the frames of both zones back where they were.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import Machine  # noqa: E402
from linuxguest import attach, detach, hv86_create  # noqa: E402

results = []
VM_MAX = 64  # vmm/vm.h
BOOT_BUDGET = int(os.environ.get("HV86_SCALE_BOOT_S", "1200"))  # seconds from `vm start all` to the last shell
TIMER = re.compile(r"^\s*(timer \(8254 IRQ0\)|APIC): .*$", re.M)
MEM_ROW = re.compile(r"^(direct|high)\s+total\s+(\d+) frames .*free\s+(\d+) frames", re.M)
VM_ROW = re.compile(r"^(\S+)\s+(created|running|paused|stopped)\s+(\d+)M\s+(\d+)\s+(\d+)\s+(.*)$")
SHARING = re.compile(r"page sharing: (on|off), (\d+) pages/s; (\d+) guest pages shared .* on (\d+) frames, (\d+) pages saved")
SHARE_SETTLE_S = int(os.environ.get("HV86_SCALE_SHARE_S", "240"))  # how long to let the scanner work
TOTAL = re.compile(r"^(\d+) of (\d+) VMs: (\d+) running, (\d+) paused, (\d+) stopped, (\d+) created; (\d+) MiB",
                   re.M)


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else ": " + detail), flush=True)
    return ok


def mem(m, label):
    """`mem` printed under label; returns {zone: (total, free)} in frames."""
    out = m.cmd("mem")
    print("--- mem %s\n%s" % (label, out), flush=True)
    return {z: (int(t), int(f)) for z, t, f in MEM_ROW.findall(out)}


def sharing(m):
    """(pages shared, frames they are on, pages saved) from `mem`."""
    s = SHARING.search(m.cmd("mem"))
    return (int(s.group(3)), int(s.group(4)), int(s.group(5))) if s else (0, 0, 0)


def same_frames(a, b):
    """High memory exactly; the direct map within 16 frames (slabs the heap keeps)."""
    return a["high"] == b["high"] and a["direct"][0] == b["direct"][0] and abs(a["direct"][1] - b["direct"][1]) <= 16


def vm_rows(m):
    out = m.cmd("vm list")
    rows = {}
    for line in out.split("\n"):
        r = VM_ROW.match(line.strip())
        if r:
            rows[r.group(1)] = (r.group(2), r.group(6))
    return rows, out


def dozen(n):
    m = Machine("qemu", mem_mib=1024).start()
    try:
        names = ["lx%02d" % i for i in range(1, n + 1)]
        before = mem(m, "before the guests")
        for name in names:
            out = hv86_create(m, name, "shell")
            check("vm create %s" % name, "created %s" % name in out, out)
        created = mem(m, "with %d guests created" % n)
        per_vm_direct = (before["direct"][1] - created["direct"][1]) / n
        per_vm_high = (before["high"][1] - created["high"][1]) / n
        print("per guest: %.0f direct-map frames (%.2f MiB), %.0f high frames (%.2f MiB)"
              % (per_vm_direct, per_vm_direct / 256, per_vm_high, per_vm_high / 256))
        check("each guest takes under 2 MiB of the direct map (%.2f MiB)" % (per_vm_direct / 256),
              per_vm_direct < 512)
        t0 = time.monotonic()
        out = m.cmd("vm start all")
        check("vm start all", "error" not in out and "started %d VMs" % n in out, out)
        for name in names:  # all boot at once; the shells are looked at in turn
            con = attach(m, name)
            try:
                con.wait_ready(max(60, BOOT_BUDGET - (time.monotonic() - t0)))
            except Exception:
                print("--- %s's console, last 3000 characters:\n%s" % (name, con.transcript[-3000:]))
                raise
            detach(m)
            print("%s: shell up %.0f s after vm start all" % (name, time.monotonic() - t0), flush=True)
        print("all %d shells up in %.0f s (started at once)" % (n, time.monotonic() - t0))
        for name in names:  # the lost-tick policy's counters (vmm/dev/vtick.h)
            info = m.cmd("vm info %s" % name)
            print("%s: %s" % (name, "; ".join(x.group(0).strip() for x in TIMER.finditer(info))), flush=True)
        for name in names:  # all running: each answers now
            con = attach(m, name)
            status, out = con.run("echo I am %s; cut -d' ' -f1 /proc/uptime; "
                                  "cat /sys/devices/system/clocksource/clocksource0/current_clocksource" % name,
                                  timeout=120)
            print("%s: uptime and clocksource: %s" % (name, " ".join(out.split("\n")[1:])), flush=True)
            detach(m)
            check("%s answers at its shell with all %d running" % (name, n),
                  status == 0 and out.startswith("I am %s\n" % name), out)
        rows, out = vm_rows(m)
        print(out)
        check("vm list: %d rows, all running, no stop reason" % n,
              all(rows.get(x) == ("running", "-") for x in names), out)
        t = TOTAL.search(out)
        check("vm list total line", t is not None and int(t.group(3)) == n and int(t.group(7)) == 64 * n, out)
        report_sharing(m, n, created)
        full = mem(m, "with %d guests running" % n)
        check("the direct map keeps over half its frames", full["direct"][1] * 2 > full["direct"][0],
              str(full))
        refusals(m, full)
    finally:
        m.stop()


def report_sharing(m, n, created):
    """Content-based page sharing (docs/memory-layout.md "Page sharing"):
    let the scanner work, then the guests' RAM must take less host memory
    than n x 64 MiB."""
    t0, last = time.monotonic(), (0, 0, 0)
    while time.monotonic() - t0 < SHARE_SETTLE_S:
        time.sleep(30)
        now = sharing(m)
        print("after %.0f s: %d guest pages shared on %d frames, %d pages saved (%.1f MiB)"
              % (time.monotonic() - t0, now[0], now[1], now[2], now[2] / 256), flush=True)
        if now[2] and now[2] - last[2] < now[2] // 100:
            break  # less than 1% more in the last 30 s: settled
        last = now
    shared, frames, saved = sharing(m)
    ram = n * 64 * 256
    print("pages shared: %d on %d frames; pages saved: %d (%.1f MiB): the %d guests' RAM takes %.1f MiB of host "
          "memory instead of %d MiB (%.1f%% less)" % (shared, frames, saved, saved / 256, n, (ram - saved) / 256,
                                                     n * 64, 100.0 * saved / ram), flush=True)
    check("page sharing: the %d guests take less host memory than %d x 64 MiB (%d pages saved)" % (n, n, saved),
          saved > 0, str((shared, frames, saved)))
    for name in ("lx01",):
        print(m.cmd("vm info %s" % name).split("\n")[2])


UNSHARED = re.compile(r"(\d+) unshared by a write \((\d+) the last reference\)")


def copies(m):
    """Private copies page sharing has made so far (each took a frame)."""
    u = UNSHARED.search(m.cmd("mem"))
    return int(u.group(1)) - int(u.group(2))


def refusals(m, full):
    """The host is nearly full: what does not fit is refused, by name. Page
    sharing is off meanwhile (no merge frees a frame), and each private copy
    a guest's write makes in between takes one: the check allows exactly
    those."""
    m.cmd("mem share off")
    full = mem(m, "sharing off")
    copies0 = copies(m)
    free_mib = full["high"][1] // 256
    out = m.cmd('vm create big kernel=linux initrd=shell mem=%dM' % (free_mib + 4))
    check("a guest whose RAM does not fit: refused naming guest RAM",
          "error" in out and "out of high memory for %d MiB of guest RAM" % (free_mib + 4) in out, out)
    ram = free_mib - 6  # fits; its 10 MiB translation cache does not
    if ram >= 32:
        out = m.cmd('vm create tight kernel=linux initrd=shell mem=%dM' % ram)
        check("a guest whose RAM fits but not its translation cache: refused naming it",
              "error" in out and "out of high memory for the translation cache" in out, out)
    after = mem(m, "after the refused creates")
    made = copies(m) - copies0
    after["high"] = (after["high"][0], after["high"][1] + made)
    check("refused creates leave no frame allocated (%d private copies made meanwhile)" % made,
          same_frames(after, full), "%s -> %s" % (full, after))
    m.cmd("mem share on")


def limits():
    m = Machine("qemu", mem_mib=2048).start()
    try:
        before = mem(m, "before")
        made, out = [], ""
        for i in range(VM_MAX + 1):
            out = m.cmd("vm create t%02d kernel=timer mem=2M" % i)
            if "created t%02d" % i not in out:
                break
            made.append("t%02d" % i)
        print("created %d small guests; then: %s" % (len(made), out.strip()))
        full = mem(m, "with %d guests" % len(made))
        named = re.search(r"error: vm create t\d+: (all %d VM slots in use|out of direct-map memory)" % VM_MAX, out)
        check("vm create fails naming what ran out: %s" % (named.group(1) if named else "?"),
              named is not None and len(made) >= 24, out)
        check("the VM slots run out before the direct map (%d frames of it free with %d VMs)"
              % (full["direct"][1], len(made)), len(made) == VM_MAX and full["direct"][1] > 0, str(full))
        rows, listing = vm_rows(m)
        t = TOTAL.search(listing)
        check("vm list: one row per VM and the total", len(rows) == len(made) and t is not None
              and int(t.group(1)) == len(made) and int(t.group(6)) == len(made), listing)
        for name in made:
            m.cmd("vm destroy %s" % name)
        after = mem(m, "after destroying them")
        check("every frame comes back (%d direct, %d high were in use)"
              % (before["direct"][1] - full["direct"][1], before["high"][1] - full["high"][1]),
              same_frames(after, before), "%s -> %s" % (before, after))
    finally:
        m.stop()


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "dozen"
    if what == "dozen":
        dozen(int(sys.argv[2]) if len(sys.argv) > 2 else 12)
    elif what == "limits":
        limits()
    else:
        sys.exit(__doc__)
    print("%d checks, %d failed" % (len(results), results.count(False)))
    sys.exit(0 if results and all(results) else 1)


if __name__ == "__main__":
    main()
