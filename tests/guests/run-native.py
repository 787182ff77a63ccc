#!/usr/bin/env python3
"""Run the test guests under each backend and compare their COM1 output.

    run-native.py [--backends qemu,bochs] [--out DIR] [--jobs N] GUEST...

Each guest prints `PASS name` / `FAIL name: detail` / `SKIP name: why` lines
and a final `DONE pass=N fail=M`. A guest passes when, under every backend,
it printed DONE with fail=0, and every backend's lines equal the reference
backend's (the first one named, qemu by default).

Backends are entries of BACKENDS: a function (guest, paths) -> raw COM1 text.
To add hv86, write run_hv86() below and register it; see README.md.
"""
import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build", "guests")

# The lines of the output protocol; anything else (firmware chatter) is kept
# in the .raw file but not compared.
PROTOCOL = re.compile(r"^(PASS|FAIL|SKIP|DONE)\b.*$")
DONE = re.compile(r"^DONE pass=(\d+) fail=(\d+)$")

QEMU_TIMEOUT = 30
BOCHS_TIMEOUT = 90


class Paths:
    """Where a guest's build products are."""
    def __init__(self, guest):
        self.elf = os.path.join(BUILD, guest + ".elf")
        self.iso = os.path.join(BUILD, "iso", guest + ".iso")


def run_qemu(guest, paths):
    """QEMU TCG loads the Multiboot v1 ELF itself; COM1 is stdio."""
    args = ["qemu-system-i386", "-accel", "tcg", "-kernel", paths.elf,
            "-serial", "stdio", "-display", "none", "-monitor", "none",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-no-reboot", "-m", "64"]
    try:
        p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=QEMU_TIMEOUT)
        return p.stdout.decode("latin-1")
    except subprocess.TimeoutExpired as e:
        return (e.stdout or b"").decode("latin-1") + "\n(qemu timed out)\n"


BOCHSRC = """\
megs: 64
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
cpu: count=1, ips=20000000, reset_on_triple_fault=0
clock: sync=none, time0=utc
display_library: rfb, options="timeout=0"
ata1: enabled=1, ioaddr1=0x170, ioaddr2=0x370, irq=15
ata1-master: type=cdrom, path={iso}, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev={com1}
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
log: {log}
panic: action=fatal
error: action=report
"""


# Guests that need a CPU feature Bochs's default CPU lacks get a model that
# has it: apic checks TSC-deadline mode (CPUID.1:ECX[24]), which QEMU 7.2
# TCG does not offer either, so this model's run is its only native reference.
BOCHS_CPU = {"apic": ", model=corei7_sandy_bridge_2600k"}

BOCHS_TRIES = 3     # a Bochs that dies at once (e.g. racing another one for
                    # its RFB port) is started again; a guest failure is not


def run_bochs(guest, paths):
    """Bochs boots the guest's GRUB rescue ISO; COM1 goes to a file. The
    guest's "Shutdown" on port 0x8900 ends Bochs."""
    for attempt in range(BOCHS_TRIES):
        out, started = bochs_once(guest, paths)
        if started:
            break
    return out


def bochs_once(guest, paths):
    """One Bochs run: (COM1 text, whether the guest produced any output)."""
    tmp = tempfile.mkdtemp(prefix="guest-bochs-%s-" % guest)
    com1 = os.path.join(tmp, "com1.txt")
    rc = os.path.join(tmp, "bochsrc")
    log = os.path.join(tmp, "bochs.log")
    with open(rc, "w") as f:
        cpu = "reset_on_triple_fault=0"
        f.write(BOCHSRC.format(iso=paths.iso, com1=com1, log=log).replace(cpu, cpu + BOCHS_CPU.get(guest, "")))
    cmds = os.path.join(tmp, "cmds")
    with open(cmds, "w") as f:
        f.write("c\n")
    note = ""
    try:
        with open(os.path.join(tmp, "stdout"), "w") as so:
            subprocess.run(["bochs", "-q", "-f", rc, "-rc", cmds], cwd=tmp,
                           stdin=subprocess.DEVNULL, stdout=so, stderr=subprocess.STDOUT,
                           timeout=BOCHS_TIMEOUT)
    except subprocess.TimeoutExpired:
        note = "\n(bochs timed out)\n"
    try:
        with open(com1, encoding="latin-1") as f:
            out = f.read()
    except OSError:
        out = ""
    started = out.strip() != "" or note != ""
    if not started:
        out = "(bochs wrote no COM1 output; log tail:)\n" + tail(log) + tail(os.path.join(tmp, "stdout"))
    out += note
    if os.environ.get("GUESTS_KEEP_TMP"):
        out += "\n(bochs files kept in %s)\n" % tmp
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, started


def tail(path, n=5):
    try:
        with open(path, encoding="latin-1") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def run_hv86(guest, paths):
    """Hook for the VMM: boot hv86 with paths.elf as a guest and return the
    guest's COM1 output as hv86 relays it (see README.md, 'hv86 backend')."""
    raise NotImplementedError("the hv86 backend arrives with the VMM")


BACKENDS = {"qemu": run_qemu, "bochs": run_bochs, "hv86": run_hv86}


def protocol_lines(raw):
    return [l.rstrip() for l in raw.replace("\r", "").split("\n") if PROTOCOL.match(l.rstrip())]


def verdict(lines):
    """None if the lines end in DONE with fail=0, else why not."""
    done = [DONE.match(l) for l in lines if l.startswith("DONE")]
    if not done or not done[-1]:
        return "no DONE line"
    if lines[-1] != done[-1].group(0):
        return "output after DONE"
    if done[-1].group(2) != "0":
        return "fail=%s" % done[-1].group(2)
    if any(l.startswith("FAIL") for l in lines):
        return "FAIL line"
    return None


def run_one(guest, backend, out_dir):
    t0 = time.monotonic()
    try:
        raw = BACKENDS[backend](guest, Paths(guest))
    except Exception as e:  # a backend that cannot run counts as a failure
        raw = "(backend %s: %s)\n" % (backend, e)
    secs = time.monotonic() - t0
    lines = protocol_lines(raw)
    base = os.path.join(out_dir, "%s.%s" % (guest, backend))
    with open(base + ".raw", "w", encoding="latin-1") as f:
        f.write(raw)
    with open(base + ".txt", "w") as f:
        f.write("".join(l + "\n" for l in lines))
    return guest, backend, lines, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="qemu,bochs",
                    help="comma-separated, the first is the reference (default qemu,bochs)")
    ap.add_argument("--out", default=os.path.join(BUILD, "out"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("guests", nargs="+")
    a = ap.parse_args()
    backends = a.backends.split(",")
    for b in backends:
        if b not in BACKENDS:
            ap.error("unknown backend %s (have %s)" % (b, ", ".join(BACKENDS)))
    os.makedirs(a.out, exist_ok=True)

    t0 = time.monotonic()
    # Slowest backend first so the pool stays busy to the end.
    jobs = [(g, b) for b in sorted(backends, key=lambda b: b != "bochs") for g in a.guests]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        for guest, backend, lines, secs in pool.map(lambda j: run_one(j[0], j[1], a.out), jobs):
            results[guest, backend] = lines
            print("  %-9s %-6s %5.1fs %s" % (guest, backend, secs, lines[-1] if lines else "(no output)"),
                  flush=True)

    passed = failed = 0
    ref = backends[0]
    for g in a.guests:
        problems = []
        for b in backends:
            why = verdict(results[g, b])
            if why:
                problems.append("%s: %s" % (b, why))
            if b != ref and results[g, b] != results[g, ref]:
                problems.append("%s output differs from %s" % (b, ref))
        if problems:
            failed += 1
            print("FAIL %s: %s (see %s/%s.*.txt)" % (g, "; ".join(problems), a.out, g))
            for b in backends:
                for l in results[g, b]:
                    if not l.startswith("PASS"):
                        print("    %s| %s" % (b, l))
        else:
            passed += 1
            print("PASS %s" % g)
    print("guests-native: %d guests x %d backends in %.0fs" % (len(a.guests), len(backends), time.monotonic() - t0))
    print("guests-native: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
