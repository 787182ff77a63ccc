#!/usr/bin/env python3
"""Run every test guest as a VM under hv86 and compare with its native run.

usage: test_guests_hv86.py qemu|bochs [GUEST...]

hv86 boots (under QEMU TCG or Bochs) with the guests on its ISO as GRUB
modules. The guests are created and started BATCH at a time from the
console, so several run concurrently; when each has stopped, its serial
output is read back through `console NAME` and its protocol lines
(PASS/FAIL/SKIP/DONE) are compared with what the same guest printed running
natively on the same emulator (build/guests/out/NAME.<emulator>.txt, made by
`make guests-native`). A guest passes when the lines are identical. When
they are not, the guest's lines under hv86 are kept in
build/guests/out/NAME.hv86-<emulator>.txt for a diff with the native ones.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import BUILD, PROTOCOL, Machine, clean, guest_reference  # noqa: E402

BATCH = 4

# Checks whose result under hv86 differs from the hardware's for a reason we
# accept and document (docs/vmm.md, "Known differences"). Only these exact
# checks may differ; any other difference in the same guest still fails.
KNOWN = {
    "user-desc-ucode": "ring-3 LSL reads the shadow descriptor, whose limit is truncated below the monitor",
    "user-desc-udata": "ring-3 LSL reads the shadow descriptor, whose limit is truncated below the monitor",
    # Without UMIP (not on QEMU's or Bochs' default CPU), ring-3 SMSW/SGDT/
    # SIDT/SLDT/STR read the real registers: the "Red Pill" of every monitor
    # before hardware virtualization. hv86 enables UMIP where the CPU has it.
    "user-smsw": "ring-3 SMSW reads the real CR0 (no UMIP)",
    "user-str": "ring-3 STR reads the real TR (no UMIP)",
    "user-sldt": "ring-3 SLDT reads the real LDTR (no UMIP)",
    "user-sgdt-base": "ring-3 SGDT reads the real GDTR (no UMIP)",
    "user-sgdt-limit": "ring-3 SGDT reads the real GDTR (no UMIP)",
    "user-sidt-base": "ring-3 SIDT reads the real IDTR (no UMIP)",
    "user-sidt-limit": "ring-3 SIDT reads the real IDTR (no UMIP)",
}


# Guests that cannot be run under an emulator that lacks what they test.
NOT_UNDER = {
    ("hostile", "qemu"): "its containment rests on segment limits, which QEMU TCG does not enforce "
                         "(it would write host memory); tests/integration/test_vms.py runs it under Bochs",
    ("pshare", "qemu"): "its store into the monitor range rests on segment limits, which QEMU TCG does not "
                        "enforce; test_vms.py pshare qemu runs it there without that store",
    ("seglimit", "qemu"): "it reaches the monitor range through segments, whose limits QEMU TCG "
                          "does not enforce; guests-hv86-bochs and vms-isolation run it under Bochs",
    ("mmiosite", "qemu"): "its store at 0xFF000000 is kept from the monitor's range by the segment "
                          "limit, which QEMU TCG does not enforce; guests-hv86-bochs runs it",
}


def check_name(line):
    return line.split()[1].rstrip(":") if len(line.split()) > 1 else ""


def compare(got, want):
    """(ok, known, other): lines equal except for KNOWN checks."""
    if len(got) != len(want):
        return False, [], ["%d lines vs %d native" % (len(got), len(want))]
    known, other = [], []
    for g, w in zip(got, want):
        if g == w:
            continue
        name = check_name(w)
        if name in KNOWN and check_name(g) == name:
            known.append(name)
        elif w.startswith("DONE") and g.startswith("DONE"):
            continue  # the pass/fail counts follow from the known differences
        else:
            other.append((w, g))
    return not other, known, other
ESCAPE = "\x1d"  # ^] detaches from a guest console


def guests_on_iso(emulator):
    """The guests on the ISO that have a native reference run."""
    cfg = open(os.path.join(BUILD, "iso", "boot", "grub", "grub.cfg")).read()
    out = os.path.join(BUILD, "guests", "out")
    return [n for n in re.findall(r"module2 \S+ (\S+)", cfg)
            if os.path.exists(os.path.join(out, "%s.%s.txt" % (n, emulator)))]


VM_ROW = re.compile(r"^(\S+)\s+(created|running|paused|stopped)\s+(\d+)M\s+(\d+)\s+(\d+)\s+(.*)$")


def vm_states(m):
    """{name: (state, reason)} from `vm list`, rows matched by shape."""
    states = {}
    for line in m.cmd("vm list").split("\n"):
        r = VM_ROW.match(line.strip())
        if r:
            states[r.group(1)] = (r.group(2), r.group(6))
    return states


def guest_output(m, name):
    """Attach, let the scrollback replay, detach; return the replayed text."""
    m.send("console %s\r" % name)
    m.expect(r"\[attached to %s" % re.escape(name), 30)
    text = m.log
    m.send(ESCAPE)
    m.expect_prompt(30)
    i = text.rfind("console %s" % name)
    return clean(text[i:])


# vm create keys a guest needs beyond kernel= and mem=: the apic guest
# checks the TSC-deadline mode of the timer, offered only with apic=deadline.
VM_KEYS = {"apic": "apic=deadline"}


# Paths a guest exists to drive, which a pass must show taken (`vm info`):
# name -> [(what, regex whose group 1 is a count, least count)]. The
# sysenter guest returns to ring 3 from translated SYSEXIT four times where
# the monitor may let it (sysenter.c: the plain return, the one checking
# every register, and twice with its GDT read through a linear alias), and
# takes three SYSENTERs into its kernel's translated entry without an exit
# (the repeat case: four system calls in one stint at ring 3, the first
# through the monitor's run loop, the others from the trap itself).
MUST_RUN = {"sysenter": [("translated SYSEXIT returned to ring 3 itself 4 times",
                          r"(\d+) returns to ring 3 by translated SYSEXIT without an exit", 4),
                         ("SYSENTER from ring 3 taken into translated code without an exit 3 times",
                          r"(\d+) SYSENTERs from ring 3 into translated code without an exit", 3)],
            # adbits touches its pages through fresh mappings at CPL 0 and 3:
            # hidden faults, each fixed from the trap (pf_in_world), A and D
            # as the CPU sets them (its checks against the native run).
            "adbits": [("hidden page faults fixed without an exit 20 times",
                        r"(\d+) hidden page faults fixed without an exit", 20)],
            # r3return's 24 demand faults and 13 system calls from ring 3
            # (SYSENTER_CS set, so IRET's CS and SS are SYSEXIT's): the
            # handlers' returns by the IRET stub (not those the stub must
            # refuse: TF, IOPL, the rewritten descriptor, the straddling
            # frame), and the faults after the first given to the guest
            # from the trap (reflect_in_world; the first finds no
            # translated handler yet), the stub calling the monitor to fill
            # the faulting page before those returns (prefault_call).
            "r3return": [("translated IRET returned to ring 3 itself 30 times",
                          r"(\d+) returns to ring 3 by translated IRET without an exit", 30),
                         ("guest page faults of ring 3 given to the guest without an exit 16 times",
                          r"(\d+) guest page faults of ring 3 given to the guest without an exit", 16),
                         ("the IRET stub filled the faulting page before 16 of the returns",
                          r"by translated IRET without an exit \((\d+) filled the faulting page first\)", 16)],
            # unsync's recycled table: its REP STOSD and REP MOVSD start on
            # a table the shadow still traces (emulated), and are given
            # back to the CPU once the shadow drops it (emu_string).
            "unsync": [("REP STOS/MOVS given back to the CPU twice",
                        r"(\d+) REP MOVS/STOS given back to the CPU", 2)],
            # ptchurn's 320 regions, each with a page table of its own: more
            # than the shadow pool holds, so fills from the trap evict shadow
            # tables of the loaded directory (a flush inside the trap).
            "ptchurn": [("shadow tables evicted for room 300 times", r"(\d+) evicted for room", 300),
                        ("hidden page faults fixed without an exit 300 times",
                         r"(\d+) hidden page faults fixed without an exit", 300)]}


def paths_not_run(m, name):
    """The MUST_RUN paths `vm info` shows fewer times than required."""
    info = m.cmd("vm info %s" % name)
    missing = []
    for what, pattern, least in MUST_RUN.get(name, []):
        got = re.search(pattern, info)
        if not got or int(got.group(1)) < least:
            missing.append("%s (%s)" % (what, got.group(0) if got else "no such line in vm info"))
    return missing


def main():
    emulator = sys.argv[1] if len(sys.argv) > 1 else "qemu"
    names = sys.argv[2:] or guests_on_iso(emulator)
    for n in list(names):
        if (n, emulator) in NOT_UNDER:
            print("SKIP %s: %s" % (n, NOT_UNDER[(n, emulator)]))
            names.remove(n)
    m = Machine(emulator, mem_mib=256).start()
    passed = failed = 0
    for i in range(0, len(names), BATCH):
        batch = names[i:i + BATCH]
        for n in batch:
            out = m.cmd("vm create %s kernel=%s mem=16M %s" % (n, n, VM_KEYS.get(n, "")))
            assert "created" in out, out
            m.cmd("vm start %s" % n)
        deadline = time.monotonic() + (120 if emulator == "qemu" else 300)
        while time.monotonic() < deadline:
            st = vm_states(m)
            if all(st.get(n, ("?",))[0] == "stopped" for n in batch):
                break
            time.sleep(1)
        st = vm_states(m)
        for n in batch:
            state, reason = st.get(n, ("missing", ""))
            if state != "stopped":
                m.cmd("vm stop %s" % n)
            got = [l for l in guest_output(m, n).split("\n") if PROTOCOL.match(l)]
            want = guest_reference(n, emulator)
            ok, known, other = compare(got, want)
            not_run = paths_not_run(m, n)
            if ok and not_run:
                failed += 1
                print("FAIL %s: its output is right but the path it tests did not run: %s" % (n, "; ".join(not_run)))
            elif ok:
                passed += 1
                print("PASS %s (%d lines, %s)%s" % (n, len(want), reason,
                      "; known differences: " + ", ".join(known) if known else ""))
            else:
                failed += 1
                print("FAIL %s: %s; first differences %s" % (n, reason or state, other[:3]))
                kept = os.path.join(BUILD, "guests", "out", "%s.hv86-%s.txt" % (n, emulator))
                with open(kept, "w") as f:
                    f.write("\n".join(got) + "\n")
                print("  its lines under hv86: %s" % kept)
            m.cmd("vm destroy %s" % n)
    print(m.cmd("vm list"))
    m.stop()
    with open(os.path.join(BUILD, "guests-hv86-%s.log" % emulator), "w") as f:
        f.write(m.log)
    print("guests-hv86-%s: %d passed, %d failed" % (emulator, passed, failed))
    if passed + failed == 0:  # no native reference run (make guests-native): nothing was compared
        print("FAIL no guest was compared: build/guests/out has no %s reference run (make guests-native)" % emulator)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
