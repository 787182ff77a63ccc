#!/usr/bin/env python3
"""Differential fuzzer: the `fuzz` guest natively under Bochs against the
same guest as an hv86 VM under Bochs (docs/testing.md, "Differential fuzzer").

usage: fuzz.py [--seed S] [--first F] [--count N | --seconds T] [--batch B]
               [--explained FILE] [--expect-clean]
       fuzz.py --dump N [--seed S] [--first F]
                         # program N verbosely on both sides, after F..N-1

The guest (tests/guests/fuzz.c) runs programs F.. of seed S and prints one
`FZ n v= e= r= m= g=` digest line per program. Natively, each batch of B
programs is one Bochs boot of a GRUB ISO whose menu passes
`seed= first= count=`; under hv86, one hv86 boots under Bochs for the whole
run and each batch is a VM (`vm create ... cmdline=`) whose console is
streamed. A program whose lines differ is a divergence: explained if
(seed, program) is listed in FILE with a reason, else unexplained.

An escape is: the monitor's code/rodata checksum (`monsum`) changed, the
console stopped answering, or a VM stopped for a reason other than the
guest's own exit (the rest of that batch then runs in a new VM).

Prints `fuzz: P programs, D divergences (X explained, U unexplained), E
escapes` and the programs per minute of each side. A `field F -- reason` line in FILE
explains a divergence in which only such fields differ; exits 1 on any escape or
unexplained divergence when --expect-clean is given.
"""
import argparse
import concurrent.futures
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import BUILD, ROOT, Machine, clean  # noqa: E402

ELF = os.path.join(BUILD, "guests", "fuzz.elf")
WORK = os.path.join(BUILD, "fuzz")
MAX_BATCH = 800     # programs per boot/VM: ~56 KB of 70-byte lines, within hv86's 64 KiB console scrollback
LINE = re.compile(r"^FZ (\d+) (v=\S+ e=\S+ r=\S+ m=\S+ g=\S+ a=\S+ rf=\S+)\s*$", re.M)
END = re.compile(r"FZ-END first=(\d+) count=(\d+)")
VM_ROW = re.compile(r"^(\S+)\s+(created|running|paused|stopped)\s+(\d+)M\s+(\d+)\s+(\d+)\s+(.*)$")
# Bochs configuration and runner conventions: run-native.py's (one boot per batch).
_spec = importlib.util.spec_from_file_location("run_native", os.path.join(ROOT, "tests", "guests", "run-native.py"))
run_native_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_native_mod)
BOCHSRC = run_native_mod.BOCHSRC


def args_line(seed, first, count, dump=None):
    if dump is not None:
        return "seed=%d first=%d dump=%d" % (seed, min(first, dump), dump)
    return "seed=%d first=%d count=%d" % (seed, first, count)


def digests(text):
    return {int(n): d for n, d in LINE.findall(clean(text))}


# ---------------------------------------------------------------- native Bochs
def native_iso(cmdline):
    """A GRUB rescue ISO booting fuzz.elf with cmdline (grub-mkrescue, ~2 s)."""
    tree = tempfile.mkdtemp(prefix="tree-", dir=WORK)
    os.makedirs(os.path.join(tree, "boot", "grub"))
    shutil.copy(ELF, os.path.join(tree, "boot", "fuzz.elf"))
    with open(os.path.join(tree, "boot", "grub", "grub.cfg"), "w") as f:
        f.write('set timeout=0\nmenuentry "fuzz" {\n  multiboot /boot/fuzz.elf %s\n}\n' % cmdline)
    iso = tree + ".iso"
    subprocess.run(["grub-mkrescue", "-o", iso, tree], check=True, capture_output=True)
    shutil.rmtree(tree)
    return iso


def timed_native(cmdline, timeout):
    """(digests, seconds) of one native batch: run in a worker thread."""
    t0 = time.monotonic()
    nat = digests(run_native(cmdline, timeout))
    return nat, time.monotonic() - t0


def run_native(cmdline, timeout):
    """COM1 text of one Bochs boot of the guest with cmdline."""
    tmp = tempfile.mkdtemp(prefix="native-", dir=WORK)
    iso = native_iso(cmdline)
    com1, rc, cmds = (os.path.join(tmp, n) for n in ("com1.txt", "bochsrc", "cmds"))
    with open(rc, "w") as f:
        f.write(BOCHSRC.format(iso=iso, com1=com1, log=os.path.join(tmp, "bochs.log")))
    with open(cmds, "w") as f:
        f.write("c\n")
    out = ""
    for _ in range(3):      # a Bochs that died before any output is started again
        try:
            with open(os.path.join(tmp, "stdout"), "w") as so:
                subprocess.run(["bochs", "-q", "-f", rc, "-rc", cmds], cwd=tmp, stdin=subprocess.DEVNULL,
                               stdout=so, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        out = open(com1, encoding="latin-1").read() if os.path.exists(com1) else ""
        if out.strip():
            break
    os.remove(iso)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


# ---------------------------------------------------------------- hv86 under Bochs
class Hv86:
    def __init__(self):
        self.m = Machine("bochs", disks=[], mem_mib=128).start()
        self.vms = 0

    def monsum(self):
        return re.search(r"monitor text \S+ rodata \S+", self.m.cmd("monsum")).group(0)

    def vm_row(self, name):
        for line in self.m.cmd("vm list").split("\n"):
            r = VM_ROW.match(line.strip())
            if r and r.group(1) == name:
                return r.group(2), r.group(6)
        return "missing", ""

    def run(self, seed, first, count, timeout=600, dump=None):
        """(text, stop reason or None if the guest finished) of one VM run
        of programs first..first+count-1; the VM's console is streamed."""
        self.vms += 1
        name = "fz%d" % self.vms
        out = self.m.cmd('vm create %s kernel=fuzz mem=16M cmdline="%s"' % (name, args_line(seed, first, count, dump)))
        assert "created" in out, out
        self.m.cmd("vm start %s" % name)
        # Poll until the VM stops (a batch's lines fit in the 64 KiB
        # scrollback, MAX_BATCH), then replay its console once.
        deadline = time.monotonic() + timeout
        state, reason = self.vm_row(name)
        while state != "stopped" and time.monotonic() < deadline:
            time.sleep(0.25)   # a VM stopped early costs its batch this wait
            state, reason = self.vm_row(name)
        if state != "stopped":
            self.m.cmd("vm stop %s" % name)
            reason = "still running after %d s" % timeout
        self.m.send("console %s\r" % name)
        self.m.expect(r"\[attached to %s" % name, 60)
        text = self.m.log
        self.m.send("\x1d")
        self.m.expect_prompt(120)
        text = clean(text[text.rfind("console %s" % name):])
        self.m.cmd("vm destroy %s" % name)
        finished = END.search(clean(text)) is not None
        return text, (None if finished and "exited with code 0" in reason else reason)

    def stop(self):
        self.m.stop()


def load_explained(path):
    """From FILE: {(seed, program): reason} for lines `SEED PROGRAM reason`,
    and [(regex, reason)] for lines `stop REGEX -- reason` (VM stop reasons
    that are documented limitations: a divergence, not an escape)."""
    known, stops, fields = {}, [], {}
    if path and os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("field "):
                f, why = line[6:].split(" -- ", 1)
                fields[f.strip()] = why
            elif line.startswith("stop "):
                rx, why = line[5:].split(" -- ", 1)
                stops.append((re.compile(rx), why))
            else:
                s, n, why = line.split(None, 2)
                known[(int(s), int(n))] = why
    return known, stops, fields


def differing(w, g):
    """The names of the digest fields (v e r m g a) in which two lines differ."""
    if " " not in w or " " not in g or not w.startswith("v=") or not g.startswith("v="):
        return None
    dw = dict(kv.split("=", 1) for kv in w.split())
    dg = dict(kv.split("=", 1) for kv in g.split())
    return sorted(k for k in dw if dw[k] != dg.get(k))


def dump(seed, n, first):
    print("== native Bochs ==")
    print("\n".join(l for l in clean(run_native(args_line(seed, first, 0, n), 120)).split("\n") if l.startswith("FZ")))
    h = Hv86()
    try:
        text, why = h.run(seed, first, 0, dump=n)
        print("== hv86 under Bochs (%s) ==" % (why or "finished"))
        print("\n".join(l for l in text.split("\n") if l.startswith("FZ")))
    finally:
        h.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--batch", type=int, default=MAX_BATCH)
    ap.add_argument("--explained", default=os.path.join(ROOT, "tests", "integration", "fuzz-explained.txt"))
    ap.add_argument("--expect-clean", action="store_true")
    ap.add_argument("--dump", type=int)
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    if a.dump is not None:
        dump(a.seed, a.dump, a.first if a.first else a.dump)
        return 0
    if not a.count and not a.seconds:
        a.count = 1000
    known, stops, fields = load_explained(a.explained)
    t_start = time.monotonic()
    h = Hv86()
    escapes, before = [], h.monsum()
    programs = 0
    t_native = t_hv = 0.0
    div_x, div_u = [], []
    first = a.first
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        while True:
            if a.count and first >= a.first + a.count:
                break
            if a.seconds and time.monotonic() - t_start > a.seconds:
                break
            count = min(a.batch, MAX_BATCH, a.first + a.count - first) if a.count else min(a.batch, MAX_BATCH)
            # The native Bochs run of this batch goes on beside the hv86 one
            # (two processes, two cores): the batch takes the longer of the two.
            native_job = pool.submit(timed_native, args_line(a.seed, first, count), 60 + count)
            t1 = time.monotonic()
            hv, n = {}, first
            while n < first + count:        # a VM that stops early: the rest in a new one
                text, why = h.run(a.seed, n, first + count - n)
                got = digests(text)
                hv.update(got)
                if why is None:
                    break
                bad = max(got) + 1 if got else n
                hv[bad] = "VM stopped: " + why
                limit = [w for rx, w in stops if rx.search(why)]
                if limit:
                    known[(a.seed, bad)] = "documented limitation: " + limit[0]
                else:
                    escapes.append("seed %d program %d: VM stopped: %s" % (a.seed, bad, why))
                n = bad + 1
            t2 = time.monotonic()
            nat, native_s = native_job.result()
            t_native += native_s
            t_hv += t2 - t1
            for p in range(first, first + count):
                w, g = nat.get(p, "(no native line)"), hv.get(p, "(no hv86 line)")
                if w != g:
                    why = known.get((a.seed, p))
                    diff = differing(w, g)
                    if not why and diff and all(f in fields for f in diff):
                        why = "; ".join(fields[f] for f in diff)
                    (div_x if why else div_u).append("seed %d program %d: native %s / hv86 %s%s" %
                                                     (a.seed, p, w, g, " -- " + why if why else ""))
            programs += count
            print("batch %d..%d: native %.0f s, hv86 %.0f s, %d divergences so far" %
                  (first, first + count - 1, native_s, t2 - t1, len(div_x) + len(div_u)), flush=True)
            first += count
        after = h.monsum()
        if after != before:
            escapes.append("monitor checksum changed: %s -> %s" % (before, after))
    except Exception as e:  # noqa: BLE001 -- a dead console is an escape
        escapes.append("hv86 console stopped answering: %s: %s" % (type(e).__name__, str(e)[:200]))
    finally:
        h.stop()
        pool.shutdown(wait=True)
    wall = time.monotonic() - t_start
    for d in div_x:
        print("EXPLAINED " + d)
    for d in div_u:
        print("UNEXPLAINED " + d)
    for e in escapes:
        print("ESCAPE " + e)
    if t_native and t_hv:
        print("programs/minute: native Bochs %.0f, hv86 under Bochs %.0f (boots included), %.0f overall "
              "(both at once, %.0f s)" % (programs * 60 / t_native, programs * 60 / t_hv, programs * 60 / wall, wall))
    print("fuzz: %d programs (seed %d, %d..%d), %d divergences (%d explained, %d unexplained), %d escapes" %
          (programs, a.seed, a.first, first - 1, len(div_x) + len(div_u), len(div_x), len(div_u), len(escapes)))
    if a.expect_clean and (div_u or escapes):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
