#!/usr/bin/env python3
"""Integration tests of hv86 on an emulated PC, through its serial console.

usage: test_console.py qemu|bochs

Boots hv86.iso with the disk images scripts/mkdisks.sh made (a GPT disk, an
MBR disk, and a deliberately corrupted GPT disk on the secondary slave) and
checks what the console says against independent sources: the partition
tables as sgdisk/sfdisk report them (build/disks.expected), the host clock,
and the emulator's configured memory size.
"""
import datetime
import os
import re
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import BUILD, Machine  # noqa: E402

MEM_MIB = 256
results = []


def check(name):
    def wrap(fn):
        fn.check_name = name
        return fn
    return wrap


def read_expected_partitions():
    """{(disk, part): (start, sectors, type, name)} from build/disks.expected."""
    exp = {}
    with open(os.path.join(BUILD, "disks.expected")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            m = re.match(r'(\d+) (\d+) (\d+) (\d+) (\S+) "(.*)"$', line.strip())
            assert m, "bad expectation line: %r" % line
            d, p, start, n, typ, name = m.groups()
            exp[(int(d), int(p))] = (int(start), int(n), typ.upper(), name)
    return exp


def parse_disks_output(out):
    got = {}
    for m in re.finditer(r'part (\d+) (\d+) start (\d+) sectors (\d+) .*?type (\S+) name "(.*?)"', out):
        d, p, start, n, typ, name = m.groups()
        got[(int(d), int(p))] = (int(start), int(n), typ.upper(), name)
    return got


@check("console prompt comes up")
def t_boot(m):
    assert m.boot_seconds is not None
    print("    boot to prompt: %.1f s (%s)" % (m.boot_seconds, m.backend))


@check("version names hv86")
def t_version(m):
    out = m.cmd("version")
    assert re.search(r"hv86 \d+\.\d+\.\d+", out), out


@check("help lists every command")
def t_help(m):
    out = m.cmd("help")
    for c in ("help", "version", "uptime", "date", "mem", "threads", "disks", "log"):
        assert re.search(r"(^|\s)%s(\s|$)" % c, out, re.M), "help lacks %s:\n%s" % (c, out)


@check("disks lists exactly the partitions sgdisk/sfdisk created")
def t_disks(m):
    out = m.cmd("disks")
    exp = read_expected_partitions()
    got = parse_disks_output(out)
    good = {k: v for k, v in got.items() if k[0] in (0, 1)}
    assert good == exp, "disks mismatch\nexpected %s\ngot %s\n%s" % (sorted(exp.items()), sorted(good.items()), out)


@check("malformed partition table reported for its disk only")
def t_bad_disk(m):
    out = m.cmd("disks")
    bad_lines = [l for l in out.split("\n") if re.search(r"\bGPT\b.*\b(invalid|bad|corrupt)", l, re.I)]
    assert bad_lines, "no per-disk table error shown:\n" + out
    got = parse_disks_output(out)
    assert not [k for k in got if k[0] >= 2], "partitions listed from the corrupted disk:\n" + out


@check("mem accounts for the machine's RAM")
def t_mem(m):
    out = m.cmd("mem")
    mm = re.search(r"all\s+(\d+) frames of 4 KiB.*?(\d+) free, (\d+) used", out)
    assert mm, out
    total, free, used = map(int, mm.groups())
    assert free + used == total, out
    # Everything the emulator gave, minus the first MiB, the hypervisor image,
    # the Multiboot information and firmware holes: at most MEM_MIB, and no
    # more than 4 MiB less. The GRUB modules' frames count: boot copies the
    # modules to high frames and gives GRUB's back (kernel/bootmod.c).
    assert total * 4096 <= MEM_MIB << 20, "%d frames > %d MiB\n%s" % (total, MEM_MIB, out)
    assert total * 4096 >= (MEM_MIB - 4) << 20, "too few frames managed: %d\n%s" % (total, out)
    moved = re.search(r"(\d+) of (\d+) modules copied out of GRUB.s frames", m.cmd("log"))
    assert moved and moved.group(1) == moved.group(2), "modules not all moved out of the direct map"
    zones = [int(z) for z in re.findall(r"^\s*\w+\s+total\s+(\d+) frames", out, re.M)]
    assert len(zones) == 2 and sum(zones) == total, out
    assert re.search(r"heap: \d+ bytes in use", out), out


@check("uptime advances")
def t_uptime(m):
    def secs(out):
        mm = re.search(r"(\d+):(\d\d):(\d\d)\.(\d{3})", out)
        assert mm, out
        h, mi, s, ms = map(int, mm.groups())
        return h * 3600 + mi * 60 + s + ms / 1000
    a = secs(m.cmd("uptime"))
    time.sleep(1.5)
    b = secs(m.cmd("uptime"))
    assert b > a, (a, b)


@check("date matches the host clock")
def t_date(m):
    out = m.cmd("date")
    mm = re.search(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)", out)
    assert mm, out
    got = datetime.datetime(*map(int, mm.groups()))
    now = datetime.datetime.utcnow()
    if m.backend == "bochs":  # Bochs' clock runs at instruction speed: compare the day only
        assert abs((got - now).total_seconds()) < 2 * 86400, (got, now)
    else:
        assert abs((got - now).total_seconds()) < 120, (got, now)


@check("threads lists the console thread")
def t_threads(m):
    out = m.cmd("threads")
    assert re.search(r"console", out), out


@check("log keeps the boot messages")
def t_log(m):
    out = m.cmd("log")
    assert re.search(r"memory:", out), out
    assert re.search(r"\[\s*\d+\.\d{3}\] [EWID] ", out), out


@check("unknown command gets a one-line error with a hint")
def t_unknown(m):
    out = m.cmd("hepl")
    lines = [l for l in out.split("\n") if l.strip()]
    assert len(lines) == 1, out
    assert "help" in lines[0], out


@check("overlong line refused, console still works")
def t_overlong(m):
    m.send("x" * 400 + "\r")
    out = m.expect_prompt(30)
    assert re.search(r"too long|refused|overlong", out, re.I), out[-300:]
    assert "hv86" in m.cmd("version")


@check("line editing: backspace, ^U and history")
def t_lineedit(m):
    m.send("verzz\x7f\x7fsion\r")
    out = m.expect_prompt(30)
    assert re.search(r"hv86 \d", out), out
    m.send("garbage\x15version\r")
    out = m.expect_prompt(30)
    assert re.search(r"hv86 \d", out), out
    m.send("\x1b[A\r")  # up arrow: run "version" again
    out = m.expect_prompt(30)
    assert re.search(r"hv86 \d", out), out


def fault_check(kind, label):
    @check("fault %s in a kernel thread: dump, thread stopped, console alive" % kind)
    def t(m):
        out = m.cmd("debug fault %s" % kind)
        if label not in out:  # the dump may come after the prompt
            out += m.expect(re.escape(label) + r"[\s\S]*?stopped", 30)
        for field in ("EIP=", "CS=", "EFLAGS=", "CR2=", "ESP=", "DS=", "stack:"):
            assert field in m.log[-3000:], "dump lacks %s:\n%s" % (field, m.log[-3000:])
        th = m.cmd("threads")
        assert label in th, th
        assert re.search(r"hv86 \d", m.cmd("version"))
    return t


TESTS = [t_boot, t_version, t_help, t_disks, t_bad_disk, t_mem, t_uptime, t_date, t_threads,
         t_log, t_unknown, t_overlong, t_lineedit,
         fault_check("pf", "#PF"), fault_check("gp", "#GP"), fault_check("ud", "#UD"),
         fault_check("de", "#DE")]


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "qemu"
    m = Machine(backend, mem_mib=MEM_MIB, slave2=os.path.join(BUILD, "disk-bad.img"))
    passed = failed = 0
    try:
        m.start()
    except Exception as e:  # noqa: BLE001
        print("FAIL boot: %s" % e)
        print(m.log[-2000:] if m.log else getattr(m.child, "before", ""))
        print("integration-%s: 0 passed, %d failed" % (backend, len(TESTS)))
        m.stop()
        return 1
    for t in TESTS:
        try:
            t(m)
            passed += 1
            print("PASS %s" % t.check_name)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAIL %s: %s" % (t.check_name, e))
            traceback.print_exc(limit=1)
    m.stop()
    with open(os.path.join(BUILD, "console-%s.log" % backend), "w") as f:
        f.write(m.log)
    print("integration-%s: %d passed, %d failed" % (backend, passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
