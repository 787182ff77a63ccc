#!/usr/bin/env python3
"""Debian's i386 Linux under hv86, checked against the same kernel run natively.

usage: test_linux.py [shell] [workload] [many]     (default: all three)

Everything runs under QEMU TCG with QEMU's default CPU: the reference is
`qemu-system-i386 -kernel linux.bz -initrd IMAGE -m 64 -append
console=ttyS0`; hv86 boots from hv86.iso in QEMU and its guests get the same
kernel, image, memory and command line (tests/integration/linuxguest.py).

shell     The shell image natively, then as the hv86 VM `web` through
          `console web`: the COMMANDS below run in both and each output is
          compared by its rule (next paragraph). Boot-to-shell times printed.
          `web` is created with apic=deadline (the other Linux VMs have the
          default, apic=1, whose timer has no TSC-deadline mode): its
          /proc/cpuinfo has tsc_deadline_timer, and its /proc/interrupts
          LOC, the local APIC timer (lapic-deadline), counting; the PIT and
          ttyS0 on IO-APIC inputs;
          and a VM `pic` with apic=0 boots with ttyS0 on the XT-PIC.
workload  The workload image natively and as an hv86 VM: the lines between
          WORKLOAD-BEGIN and WORKLOAD-END must be identical, and the VM must
          stop with the reason "powered off" (QEMU exits natively).
many      `web` and two more shell guests and the `spin` test guest run at
          once; every shell answers (uname, md5sum); one Linux guest is
          stopped; the other two still answer (md5sum on both, the fork loop
          on one, as natively), spin keeps getting CPU time and prints no
          failure, hv86's console answers.

How each output is compared, and the differences that are legitimate:

* `uname -a`, `ls /`, the fork loop, the md5sum command: identical text and
  exit status 0. (The fork loop runs in a subshell, so the interactive
  shell's job messages with their pids are not part of it; each of the 200
  children prints its number, so the count shows that all of them ran.)
* `cat /proc/cpuinfo`: the same set of fields, in the same order, and every
  field equal except:
  - CPUINFO_MEASURED (`cpu MHz`, `bogomips`): both runs measure the same
    host TSC against a PIT, so they vary from run to run but must agree
    within MEASURED_TOLERANCE (10%): that checks hv86's PIT and TSC
    calibration path, not an exact number.
  - CPUINFO_ABSENT (`microcode`): hv86 reports revision 0, and Linux
    leaves the line out then.
  - `flags`: exactly the native set minus HIDDEN_FLAGS, the CPUID bits
    hv86's policy hides (docs/vmm.md "CPUID and MSR policy"), plus
    ADDED_FLAGS, what Linux derives from leaves the policy adds; that none
    of the hidden ones is present is a check of its own.
  - `bugs`: exactly the native set minus BUGS_FROM_HYPERVISOR, the bugs
    Linux assumes only because CPUID says "hypervisor" (hidden). Found by
    booting natively with `-cpu qemu32,-apic,-hypervisor`: that cpuinfo
    lacks exactly these bugs.
  - `address sizes`: 36 bits physical natively becomes 32 (PAE and PSE-36
    hidden, expected_address_sizes()).
  - `cpuid level`: 22 (16h) on an Intel host, where leaves 15h and 16h give
    the TSC frequency; else the native level capped at 7.
  These rules are for the CPU QEMU gives both runs (its default, qemu32);
  a CPU with more features would show more Linux-derived differences.
* Workload: the text between the markers, line by line, after dropping
  kernel messages (`[ 1.234567] ...` lines, printed by the kernel whenever
  it likes, not by the workload; they are listed when present).

Timeouts are generous: hv86 under QEMU TCG is several times slower than
QEMU alone, three guests at once share one CPU. Transcripts of every guest
console go to build/linux-test/. A part whose hv86 guest never reached its
shell fails; `many` then fails at once rather than waiting for three more.
"""
import os
import re
import sys
import time

import pexpect

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import BUILD, Machine, clean  # noqa: E402
from linuxguest import (ESCAPE, WORKLOAD_END, NativeLinux, attach, detach,  # noqa: E402
                        hv86_create, workload_lines)
from test_vms import vm_list  # noqa: E402

FORK = ("(i=0; while [ $i -lt 200 ]; do /bin/echo $i & i=$((i+1)); done; wait; echo forked $i)"
        " > /tmp/fk; sort -u /tmp/fk | wc -l; tail -n 1 /tmp/fk")
MD5 = "seq 1 20000 > /tmp/f; md5sum /tmp/f"
COMMANDS = [("uname", "uname -a"), ("cpuinfo", "cat /proc/cpuinfo"), ("ls", "ls /"),
            ("fork", FORK), ("md5sum", MD5)]

# Both runs measure the same TSC (hv86 passes RDTSC through) against a PIT
# (QEMU's, or hv86's driven by the TSC); BogoMIPS follows from the TSC
# frequency (lpj_fine: "Calibrating delay loop (skipped)"). So the values
# differ from run to run but must agree within MEASURED_TOLERANCE.
CPUINFO_MEASURED = {
    "cpu MHz": "TSC frequency, calibrated against the PIT",
    "bogomips": "from the TSC frequency",
}
MEASURED_TOLERANCE = 0.10
CPUINFO_ABSENT = {
    "microcode": "IA32_BIOS_SIGN_ID reads 0 under hv86 (no microcode revision to report) "
                 "and Linux prints the line only for a non-zero revision",
}
# Flags Linux sets from what hv86's CPUID adds: leaf 15h gives the TSC
# frequency hv86 measured against the PIT, so Linux need not time the PIT
# itself (arch/x86/kernel/tsc.c native_calibrate_tsc, X86_FEATURE_TSC_KNOWN_FREQ).
ADDED_FLAGS = {"tsc_known_freq": "CPUID 15h reports the TSC frequency",
               "tsc_deadline_timer": "CPUID.1:ECX[24]: the local APIC's TSC-deadline mode, which QEMU TCG lacks"}
# The CPUID policy (vmm/cpuid.c, a whitelist; docs/vmm.md): /proc/cpuinfo
# names of the feature bits it hides. Only those the native CPU has matter;
# the list is complete for leaf 1, the rest names what a bigger -cpu shows.
HIDDEN_FLAGS = {
    # leaf 1 EDX
    "vme": "no virtual-8086 mode", "de": "debug extensions (CR4.DE) not modelled",
    "pae": "32-bit shadow paging only", "pse36": "32-bit shadow paging only",
    "mce": "no machine check", "mca": "no machine check",
    "mtrr": "no MTRRs", "pat": "no PAT", "pn": "no serial number", "dts": "no debug store",
    "acpi": "no thermal control MSRs", "ht": "one logical processor", "tm": "no thermal monitor",
    "ia64": "not an IA-64", "pbe": "no pending break enable",
    # leaf 1 ECX
    "dtes64": "no debug store", "monitor": "MWAIT would halt the host thread",
    "ds_cpl": "no debug store", "vmx": "no VMX", "smx": "no SMX", "est": "no SpeedStep MSRs",
    "tm2": "no thermal monitor", "cid": "no L1 context ID", "sdbg": "no silicon debug MSR",
    "fma": "XCR0 not virtualized", "xtpr": "no xTPR", "pdcm": "no perfmon capabilities MSR",
    "pcid": "not modelled", "dca": "no direct cache access", "x2apic": "no x2APIC mode",
    "xsave": "XCR0 not virtualized",
    "avx": "XCR0 not virtualized", "f16c": "XCR0 not virtualized",
    "hypervisor": "hv86 does not announce itself",
    # leaf 7 and 80000001h
    "fsgsbase": "not exposed", "tsc_adjust": "not exposed", "sgx": "not exposed",
    "hle": "no TSX", "rtm": "no TSX", "avx2": "XCR0 not virtualized", "smep": "CR4.SMEP not shadowed",
    "smap": "CR4.SMAP not shadowed", "invpcid": "not modelled", "mpx": "XCR0 not virtualized",
    "avx512f": "XCR0 not virtualized", "umip": "leaf 7 ECX hidden", "pku": "leaf 7 ECX hidden",
    "syscall": "80000001h EDX hidden", "nx": "needs PAE", "rdtscp": "no IA32_TSC_AUX",
    "lm": "a 32-bit machine", "pdpe1gb": "needs PAE",
}
BUGS_FROM_HYPERVISOR = {
    "its": "vulnerable_to_its(): assumed under a hypervisor that does not say ITS_NO",
    "bhi": "cpu_set_bug_bits(): assumed under a hypervisor (eIBRS may be hidden)",
}


def expected_address_sizes(native):
    """Linux's physical address width with no CPUID leaf 80000008h is 36 bits
    if PAE or PSE-36 is present, else 32 (get_cpu_address_sizes): hv86 hides
    both, so a native 36 becomes 32. A CPU with the leaf reports it in both."""
    return native.replace("36 bits physical", "32 bits physical") \
        if native == "36 bits physical, 32 bits virtual" else native


BOOT_TIMEOUT = 300         # one guest to its shell under hv86 (6 s natively, 23 s under hv86)
MANY_BOOT_TIMEOUT = 900    # two more while `web` and spin run (three at once: 172 s)
WORKLOAD_TIMEOUT = 600     # to WORKLOAD-END (10 s natively, 97 s under hv86)
CMD_TIMEOUT = 900          # one command (the fork loop: 3 s natively, 33 s under hv86
                           # alone, 130-280 s beside two idle Linux guests and spin)
NATIVE_TIMEOUT = 120
HV86_MEM_MIB = 512         # three 64 MiB Linux guests, a workload guest, spin
SPIN_ROUNDS = 1000000000   # hours of work: still running when the test ends
OUT = os.path.join(BUILD, "linux-test")

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else ": " + detail), flush=True)
    return ok


def info(text):
    print("    " + text, flush=True)


def save(name, text):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".log"), "w") as f:
        f.write(text)


# ---------------------------------------------------------------- comparisons

def parse_cpuinfo(text):
    """[(field, value)] of the one processor, in order."""
    fields = []
    for line in text.split("\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            fields.append((k.strip(), v.strip()))
    return fields


def compare_cpuinfo(native, hv86):
    """[(check name, ok, detail)] by the rules in the module comment."""
    n = [(k, v) for k, v in parse_cpuinfo(native) if k not in CPUINFO_ABSENT]
    h = parse_cpuinfo(hv86)
    nd, hd = dict(parse_cpuinfo(native)), dict(h)
    out = [("cpuinfo: same fields in the same order (without %s)" % ", ".join(CPUINFO_ABSENT),
            [k for k, _ in n] == [k for k, _ in h],
            "native %s, hv86 %s" % ([k for k, _ in n], [k for k, _ in h]))]
    if not out[0][1]:
        return out
    special = set(CPUINFO_MEASURED) | {"flags", "bugs", "address sizes", "cpuid level"}
    same = [k for k, _ in n if k not in special]
    # hv86 reports basic leaves up to 16h on an Intel host (15h/16h: the TSC
    # frequency), else up to 7 or the host's own maximum (vmm/cpuid.c).
    intel = nd.get("vendor_id") == "GenuineIntel"
    want_level = "22" if intel else str(min(int(nd["cpuid level"]), 7))
    out.append(("cpuinfo: cpuid level %s (native %s)" % (hd["cpuid level"], nd["cpuid level"]),
                hd["cpuid level"] == want_level, "want %s" % want_level))
    differ = [(k, nd[k], hd[k]) for k in same if nd[k] != hd[k]]
    out.append(("cpuinfo: %d fields equal" % len(same), not differ,
                "differ (field, native, hv86): %s" % differ))
    for k, why in CPUINFO_MEASURED.items():
        num = re.compile(r"\d+(\.\d+)?")
        ok = bool(num.fullmatch(hd[k]) and num.fullmatch(nd[k])) and \
            abs(float(hd[k]) - float(nd[k])) <= MEASURED_TOLERANCE * float(nd[k])
        out.append(("cpuinfo: %s within %d%% of native (%s, native %s: %s)"
                    % (k, 100 * MEASURED_TOLERANCE, hd[k], nd[k], why), ok, "hv86 %r" % hd[k]))
    want = expected_address_sizes(nd["address sizes"])
    out.append(("cpuinfo: address sizes %r" % hd["address sizes"], hd["address sizes"] == want,
                "native %r, hv86 %r, want %r" % (nd["address sizes"], hd["address sizes"], want)))
    nf, hf, hidden = set(nd["flags"].split()), set(hd["flags"].split()), set(HIDDEN_FLAGS)
    out.append(("cpuinfo: flags hidden by policy are absent (native had %s)" % " ".join(sorted(nf & hidden)),
                not hf & hidden, "present: %s" % sorted(hf & hidden)))
    added = set(ADDED_FLAGS)
    out.append(("cpuinfo: flags = native minus hidden plus added (%s)" % " ".join(sorted(hf)),
                hf == (nf - hidden) | added,
                "missing %s, extra %s" % (sorted((nf - hidden) | added - hf), sorted(hf - nf - added))))
    nb, hb = set(nd["bugs"].split()), set(hd["bugs"].split())
    want = nb - set(BUGS_FROM_HYPERVISOR)
    out.append(("cpuinfo: bugs = native minus those assumed under a hypervisor (%s)" % " ".join(sorted(hb)),
                hb == want, "missing %s, extra %s" % (sorted(want - hb), sorted(hb - want))))
    return out


def compare_output(name, native, hv86):
    """[(check name, ok, detail)] for one command's (status, output) pairs."""
    if name == "cpuinfo":
        rows = compare_cpuinfo(native[1], hv86[1])
    else:
        rows = [("%s: identical output" % name, native[1] == hv86[1],
                 "native %r, hv86 %r" % (native[1][:300], hv86[1][:300]))]
    rows.append(("%s: exit status 0 in both" % name, native[0] == 0 and hv86[0] == 0,
                 "native %d, hv86 %d" % (native[0], hv86[0])))
    return rows


# ---------------------------------------------------------------- the native reference

def native_shell():
    """{command name: (status, output)} and the boot time, natively."""
    nat = NativeLinux("shell").start()
    try:
        boot = nat.wait_ready(NATIVE_TIMEOUT)
        info("native: boot to shell %.1f s" % boot)
        ref = {}
        for name, cmd in COMMANDS:
            t0 = time.monotonic()
            ref[name] = nat.console.run(cmd, NATIVE_TIMEOUT)
            info("native: %s %.1f s" % (name, time.monotonic() - t0))
        return ref, boot
    finally:
        save("native-shell", nat.console.transcript)
        nat.stop()


_native = {}


def reference():
    if "shell" not in _native:
        _native["shell"] = native_shell()[0]
    return _native["shell"]


# ---------------------------------------------------------------- hv86 helpers

def start_linux(m, name, image="shell", extra=""):
    out = hv86_create(m, name, image, extra=extra)
    if not check("vm create %s (%s)" % (name, image), "created" in out, out):
        info("hv86 memory then:\n" + m.cmd("mem"))
        return None
    t0 = time.monotonic()
    out = m.cmd("vm start %s" % name)
    check("vm start %s" % name, "error" not in out, out)
    return t0


def boot_attached(m, name, t0, timeout):
    """Attach to NAME and wait for its shell; the caller detaches.
    Returns (ok, seconds from t0 to the prompt or to giving up, last output)."""
    con = attach(m, name)
    try:
        con.wait_ready(timeout)
        return True, con.ready_at - t0, ""
    except pexpect.TIMEOUT:
        return False, time.monotonic() - t0, con.transcript[-400:]
    finally:
        save("hv86-%s" % name, con.transcript)


def run_on(m, name, commands, ref):
    """Attach to NAME, run [(name, cmd)], compare with ref, detach."""
    con = attach(m, name)
    try:
        for cname, cmd in commands:
            t0 = time.monotonic()
            got = con.run(cmd, CMD_TIMEOUT)
            for row in compare_output(cname, ref[cname], got):
                check("%s: %s" % (name, row[0]), row[1], row[2])
            info("hv86 %s: %s %.1f s" % (name, cname, time.monotonic() - t0))
    finally:
        save("hv86-%s-cmds" % name, con.transcript)
        detach(m)


# ---------------------------------------------------------------- the parts

def part_shell(m, state):
    ref = reference()
    t0 = start_linux(m, "web", extra="apic=deadline")  # the other Linux VMs keep the default, apic=1
    if t0 is None:
        return
    ok, secs, last = boot_attached(m, "web", t0, BOOT_TIMEOUT)
    detach(m)
    if not check("web: Linux boots to the busybox shell under hv86 (%.1f s from vm start)" % secs,
                 ok, "no shell prompt in %d s; last output %r" % (BOOT_TIMEOUT, last)):
        m.cmd("vm stop web")  # it would only take CPU from the next parts
        return
    state["web"] = True
    run_on(m, "web", COMMANDS, ref)
    interrupts(m, "web", apic=True)
    syscall_exits(m, "web")
    pic_only(m)


def pic_only(m):
    """A VM created with apic=0, the PIC-only machine of before the APICs:
    it boots to its shell with the UART on the 8259A. Alone beside the idle
    `web`: under load a guest that counts its ticks may find its TSC
    "unstable" (docs/vmm.md), and with the PIT as its clocksource then (the
    8259A machine has one) every clock read is three port accesses."""
    t0 = start_linux(m, "pic", extra="apic=0")
    if t0 is None:
        return
    ok, secs, last = boot_attached(m, "pic", t0, BOOT_TIMEOUT)
    detach(m)
    if check("pic (apic=0): boots to the busybox shell (%.1f s from vm start)" % secs, ok,
             "no shell prompt in %d s; last output %r" % (BOOT_TIMEOUT, last)):
        interrupts(m, "pic", apic=False)
    m.cmd("vm stop pic")
    m.cmd("vm destroy pic")


def loc_count(text):
    found = re.search(r"^\s*LOC:\s+(\d+)", text, re.M)
    return int(found.group(1)) if found else None


def interrupts(m, name, apic):
    """/proc/interrupts twice, a second apart. With the APICs (the default):
    local APIC timer interrupts (LOC) counting, the PIT and the UART on
    IO-APIC inputs (the PIT on input 2, as the MP table says). With apic=0:
    the UART on the 8259A (XT-PIC) and no I/O APIC line."""
    con = attach(m, name)
    try:
        _, first = con.run("cat /proc/interrupts", CMD_TIMEOUT)
        _, second = con.run("sleep 1; cat /proc/interrupts", CMD_TIMEOUT)
        _, clockevent = con.run("cat /sys/devices/system/clockevents/clockevent0/current_device", CMD_TIMEOUT)
    finally:
        save("hv86-%s-interrupts" % name, con.transcript)
        detach(m)
    a, b = loc_count(first), loc_count(second)
    if apic:
        check("%s: LOC (local APIC timer) counts: %s -> %s" % (name, a, b),
              a is not None and b is not None and b > a, second)
        check("%s: the local APIC timer in TSC-deadline mode is the clockevent (%s)" % (name, clockevent.strip()),
              "lapic-deadline" in clockevent, clockevent)
        check("%s: the PIT on IO-APIC input 2" % name,
              re.search(r"^\s*0:\s+\d+\s+IO-APIC\s+2-edge\s+timer", second, re.M) is not None, second)
        check("%s: ttyS0 on an IO-APIC line" % name,
              re.search(r"IO-APIC\s+4-edge\s+ttyS0", second) is not None, second)
    else:
        check("%s (apic=0): ttyS0 on the 8259A, no I/O APIC" % name,
              re.search(r"XT-PIC\s+ttyS0", second) is not None and "IO-APIC" not in second, second)


SYSCALL_DD = 5000  # one-byte dd: a read and a write system call per byte


R3_RETURNS = re.compile(r"(\d+) returns to ring 3 by translated SYSEXIT without an exit \(GDT page walked (\d+) times\)")


def interrupt_polls(info_text):
    """(polls, answered from the last) of `vm info`'s "interrupt polls" line, or None."""
    found = re.search(r"interrupt polls: (\d+), (\d+) of them", info_text)
    return (int(found.group(1)), int(found.group(2))) if found else None


SYSENTER_IN_WORLD = re.compile(r"(\d+) SYSENTERs from ring 3 into translated code without an exit")
IBL_AGES = re.compile(r"the lookup table emptied (\d+) times")


def syscall_exits(m, name):
    """`vm exits`: where the guest's system calls leave translated code.
    SYSCALL_DD one-byte dd transfers make 2 * SYSCALL_DD system calls and
    no site exits that often: their entry, the user's SYSENTER, goes into
    translated code from the trap without an exit (docs/bt.md "System
    calls without a world switch"), and their return, the kernel's `sti;
    sysexit`, back to ring 3 (docs/bt.md "Returning to ring 3"): `vm info`
    counts at least one of each per system call but those an interrupt or
    a page fault sent through the monitor. The DS, ES and FS loads and the
    VERW between run natively (docs/vmm.md): no site of them either."""
    m.cmd("vm exits %s reset" % name)
    info0 = m.cmd("vm info %s" % name)
    before, polls0 = R3_RETURNS.search(info0), interrupt_polls(info0)
    entries0 = SYSENTER_IN_WORLD.search(info0)
    con = attach(m, name)
    try:
        con.run("dd if=/dev/zero of=/dev/null bs=1 count=%d 2>/dev/null" % SYSCALL_DD, 120)
    finally:
        detach(m)
    info1 = m.cmd("vm info %s" % name)
    after, polls1 = R3_RETURNS.search(info1), interrupt_polls(info1)
    entries1 = SYSENTER_IN_WORLD.search(info1)
    out = m.cmd("vm exits %s" % name)
    # The run loop asks the devices for an interrupt at every exit: fewer
    # times than there are system calls, as those no longer exit. What
    # exits remain are the timer's (interrupts()'s LOC count, the deadline
    # MSR), the console's and the process's own page faults; those that
    # touch no device are answered from the last poll (vmdev_poll_irq).
    polls, cached = (polls1[0] - polls0[0], polls1[1] - polls0[1]) if polls0 and polls1 else (-1, 0)
    check("%s: %d system calls polled the devices %d times, %d of them answered from the last poll"
          % (name, 2 * SYSCALL_DD, polls, cached),
          0 <= polls < 2 * SYSCALL_DD and cached > 0, "before %r, after %r" % (polls0, polls1))
    rows = re.findall(r"^\s*(\d+)\s+([0-9a-f]{8})\s+(\d)\s+(\S.*?)\s*$", out, re.M)
    hot = [r for r in rows if int(r[0]) >= 2 * SYSCALL_DD]
    check("%s: no site exits once per system call (the busiest: %s)"
          % (name, ", ".join("%s x%s" % (r[3], r[0]) for r in rows[:3]) or "none"), not hot, out)
    entries = int(entries1.group(1)) - int(entries0.group(1)) if entries0 and entries1 else -1
    check("%s: %d of the %d system calls entered the kernel without an exit" % (name, entries, 2 * SYSCALL_DD),
          entries >= 0.9 * 2 * SYSCALL_DD,
          "vm info: %r -> %r" % (entries0 and entries0.group(0), entries1 and entries1.group(0)))
    returns = int(after.group(1)) - int(before.group(1)) if before and after else -1
    check("%s: %d of the %d system calls returned to ring 3 without an exit" % (name, returns, 2 * SYSCALL_DD),
          returns >= 0.9 * 2 * SYSCALL_DD, "vm info: %r -> %r" % (before and before.group(0), after and after.group(0)))
    # The GDT's page (Linux's fixmap alias, in the monitor's range) is
    # walked again only after a CR3 load, an INVLPG... (vmm/vcpu.c
    # gdtw_map), not at each of these entries to translated code.
    walks = int(after.group(2)) - int(before.group(2)) if before and after else -1
    check("%s: the GDT's page walked %d times for those %d returns" % (name, walks, returns),
          0 <= walks <= returns // 10, "vm info: %r -> %r" % (before and before.group(0), after and after.group(0)))
    profile_guest_eips(m, name)
    tc_guest_eips(m, name)
    ibl_aging(m, name)
    bad = m.cmd("vm exits %s sideways" % name)
    check("vm exits with a typo is an error naming it", "sideways" in bad and "error" in bad.lower(), bad)


def ibl_aging(m, name):
    """The run loop empties the translator's lookup table once a second
    (vmm/vcpu.c IBL_AGE_TICKS), so that the targets a boot left there give
    their first slot up to those in use: over a guest's `sleep 3`, mostly
    halted, `vm info` counts one emptying a second."""
    ages0 = IBL_AGES.search(m.cmd("vm info %s" % name))
    t0 = time.monotonic()
    con = attach(m, name)
    try:
        con.run("sleep 3", 60)
    finally:
        detach(m)
    ages1 = IBL_AGES.search(m.cmd("vm info %s" % name))
    secs = time.monotonic() - t0
    ages = int(ages1.group(1)) - int(ages0.group(1)) if ages0 and ages1 else -1
    check("%s: the lookup table emptied %d times in %.1f s" % (name, ages, secs), secs - 2 <= ages <= secs + 1,
          "vm info: %r -> %r" % (ages0 and ages0.group(0), ages1 and ages1.group(0)))


def profile_guest_eips(m, name):
    """`debug profile` around a kernel-bound command (the kernel's random
    generator, about 0.2 s of translated code): the timer ticks that found
    translated code are counted by the guest instruction it came from
    (tc_lookup_guest_eip), which bench/profile.py names by the guest's
    /proc/kallsyms. Most of those EIPs must lie in the kernel's text as
    the guest's own symbol table gives it."""
    m.cmd("debug profile reset")
    con = attach(m, name)
    try:
        con.run("dd if=/dev/urandom of=/dev/null bs=64k count=60 2>/dev/null", 120)
    finally:
        detach(m)
    out = m.cmd("debug profile")
    i = out.find("translated guest code, by the guest EIP")
    eips = [(int(a, 16), int(n)) for a, n in re.findall(r"^\s+([0-9a-f]{8})\s+(\d+)\s*$", out[i:], re.M)] if i >= 0 else []
    con = attach(m, name)
    try:
        text = con.run("grep -wE '_stext|_etext' /proc/kallsyms", 60)[1]
    finally:
        detach(m)
    bounds = dict((sym, int(a, 16)) for a, sym in re.findall(r"^([0-9a-f]{8}) \S (_stext|_etext)\s*$", text, re.M))
    lo, hi = bounds.get("_stext", 1), bounds.get("_etext", 0)
    ticks = sum(n for _, n in eips)
    in_text = sum(n for a, n in eips if lo <= a < hi)
    check("debug profile: %d of %d ticks in translated code named a guest instruction in the kernel's text "
          "(%08x-%08x by /proc/kallsyms)" % (in_text, ticks, lo, hi),
          ticks >= 20 and in_text >= 0.5 * ticks, out[-1500:] + "\n" + text)


TC_WINDOW = 0xFE400000  # the VM's translation cache (docs/memory-layout.md)


def tc_guest_eips(m, name):
    """`vm tceip` (bench/insn_count.py --by-function): the guest EIP each
    translation cache address was translated from. Refused while the VM
    runs; paused, addresses spread over the first 52 KiB of the cache,
    which a booted Linux has filled, name guest kernel instructions (at
    least half of them; the rest are stubs or padding: "-"); a typo is an
    error naming it, and the VM runs on after `vm resume`."""
    addrs = " ".join("0x%x" % (TC_WINDOW + 0x1000 * (i + 1) + 0x40) for i in range(13))
    running = m.cmd("vm tceip %s %s" % (name, addrs))
    check("vm tceip on a running VM is refused", "not paused" in running and "error" in running.lower(), running)
    m.cmd("vm pause %s" % name)
    try:
        out = m.cmd("vm tceip %s %s" % (name, addrs))
        bad = m.cmd("vm tceip %s 0x%x zz" % (name, TC_WINDOW))
    finally:
        m.cmd("vm resume %s" % name)
    rows = re.findall(r"^([0-9a-f]{8}) (-|[0-9a-f]{8})\s*$", out, re.M)
    eips = [int(e, 16) for _, e in rows if e != "-"]
    check("vm tceip: %d of 13 addresses answered, %d in translated blocks, all of them kernel code (%s)"
          % (len(rows), len(eips), " ".join("%08x" % e for e in eips[:4])),
          len(rows) == 13 and len(eips) >= 7 and all(e >= 0xC0000000 for e in eips), out)
    check("vm tceip with a typo is an error naming it", "'zz'" in bad and "error" in bad.lower(), bad)
    con = attach(m, name)
    try:
        status, text = con.run("echo still-running", 60)
    finally:
        detach(m)
    check("the VM runs on after vm tceip and vm resume", status == 0 and "still-running" in text, text)


def part_workload(m, state):
    nat = NativeLinux("workload").start()
    try:
        nsecs, ntext, exited = nat.workload(NATIVE_TIMEOUT)
    finally:
        save("native-workload", nat.console.transcript)
        nat.stop()
    want, _ = workload_lines(ntext)
    info("native: workload %.1f s (QEMU start to WORKLOAD-END), %d lines, QEMU exited: %s"
         % (nsecs, len(want or []), exited))
    t0 = start_linux(m, "wl", "workload")
    if t0 is None:
        return
    con = attach(m, "wl")
    try:
        if WORKLOAD_END not in clean(con.replay):
            con._expect(WORKLOAD_END, WORKLOAD_TIMEOUT, exact=True)
        secs = time.monotonic() - t0
        got, kmsgs = workload_lines(con.transcript)
        check("workload under hv86 prints exactly what it prints natively (%.1f s from vm start)" % secs,
              got == want and want is not None, "native %r, hv86 %r" % (want, got))
        for k in kmsgs:
            info("kernel message among the workload's lines (ignored): %s" % k)
    except pexpect.TIMEOUT:
        check("workload reaches WORKLOAD-END under hv86", False, "not in %d s" % WORKLOAD_TIMEOUT)
    finally:
        save("hv86-wl", con.transcript)
        detach(m)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and vm_list(m).get("wl", {}).get("state") == "running":
        time.sleep(2)
    row = vm_list(m).get("wl", {})
    check("workload VM stops with 'powered off' (%s)" % row.get("reason"),
          row.get("state") == "stopped" and "powered off" in row.get("reason", ""), str(row))
    if row.get("state") != "stopped":
        m.cmd("vm stop wl")
    m.cmd("vm destroy wl")


def part_many(m, state):
    names = ["web", "lx2", "lx3"]
    if state.get("web") is False:
        check("three Linux guests and spin at once", False,
              "not tried: `web` did not reach its shell under hv86 in part shell")
        return
    ref = reference()
    rows = vm_list(m)
    spin = m.cmd('vm create spin kernel=spin mem=16M cmdline="rounds=%d"' % SPIN_ROUNDS)
    check("vm create spin", "created" in spin, spin)
    m.cmd("vm start spin")
    t0 = time.monotonic()
    todo = [n for n in names if rows.get(n, {}).get("state") != "running"]
    starts = {n: start_linux(m, n) for n in todo}
    for n in todo:
        if starts[n] is None:
            return
        ok, secs, last = boot_attached(m, n, starts[n], MANY_BOOT_TIMEOUT)
        detach(m)
        ok = check("%s: boots to the shell beside the others (%.1f s from vm start)" % (n, secs),
                   ok, "no shell prompt in %d s; last output %r" % (MANY_BOOT_TIMEOUT, last))
        if not ok:
            return
    info("%s booted alongside the others in %.1f s" % (", ".join(todo), time.monotonic() - t0))
    rows = vm_list(m)
    check("all four run at once: %s" % {n: rows.get(n, {}).get("state") for n in names + ["spin"]},
          all(rows.get(n, {}).get("state") == "running" for n in names + ["spin"]), str(rows))
    for n in names:
        run_on(m, n, [("uname", "uname -a"), ("md5sum", MD5)], ref)
    spin_ms = vm_list(m)["spin"]["cpu_ms"]
    out = m.cmd("vm stop lx2")
    rows = vm_list(m)
    check("vm stop lx2: stopped, the others still running",
          rows.get("lx2", {}).get("state") == "stopped" and
          all(rows.get(n, {}).get("state") == "running" for n in ["web", "lx3", "spin"]), "%s %s" % (out, rows))
    run_on(m, "web", [("uname", "uname -a"), ("md5sum", MD5)], ref)
    run_on(m, "lx3", [("fork", FORK), ("md5sum", MD5)], ref)
    rows = vm_list(m)
    check("spin kept running and getting CPU time (%d -> %d ms)" % (spin_ms, rows["spin"]["cpu_ms"]),
          rows["spin"]["state"] == "running" and rows["spin"]["cpu_ms"] > spin_ms, str(rows["spin"]))
    spin_out = spin_console(m)
    check("spin printed no failure", "FAIL" not in spin_out, spin_out[-300:])
    check("hv86 console answers", "hv86" in m.cmd("version"))
    for n in names + ["spin"]:
        m.cmd("vm stop %s" % n)


def spin_console(m):
    con = attach(m, "spin")
    detach(m)
    return clean(con.replay)


def recover(m):
    """Back to a quiet hv86 prompt after a timeout, attached or not: ^] (the
    line editor ignores it when nothing is attached), Enter, and everything
    printed until the line is quiet is dropped, so the next m.cmd() is in step."""
    m.send(ESCAPE)
    time.sleep(1)
    m.send("\r")
    m.child.expect(pexpect.TIMEOUT, timeout=5)
    m.log += clean(m.child.before or "")


PARTS = {"shell": part_shell, "workload": part_workload, "many": part_many}


def main():
    parts = sys.argv[1:] or ["shell", "workload", "many"]
    state = {"web": False} if "shell" in parts else {}
    m = None
    t0 = time.monotonic()
    try:
        m = Machine("qemu", mem_mib=HV86_MEM_MIB).start()
        info("hv86 up in %.1f s" % m.boot_seconds)
        for p in parts:
            tp = time.monotonic()
            print("== %s" % p, flush=True)
            try:
                PARTS[p](m, state)
            except (pexpect.TIMEOUT, pexpect.EOF) as e:
                check("%s: guest and hv86 consoles kept answering" % p, False,
                      "%s: %s" % (type(e).__name__, str(e).split("\n")[0][:200]))
                recover(m)
            info("part %s took %.0f s" % (p, time.monotonic() - tp))
    except Exception as e:  # noqa: BLE001 -- a dead console is a failure to report, not a traceback
        check("hv86 kept answering on its console", False, "%s: %s" % (type(e).__name__, str(e)[:200]))
    finally:
        if m is not None:
            save("hv86-console", m.log)
            m.stop()
    passed = sum(1 for r in results if r)
    print("linux: %d passed, %d failed (%.0f s)" % (passed, len(results) - passed, time.monotonic() - t0))
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
