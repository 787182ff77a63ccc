#!/usr/bin/env python3
"""Integration test of the serial management console (mgmt/).

Boots hv86 (tests/integration/hvmachine.py: QEMU TCG or Bochs, private copies
of the test disks) and types at COM1 like an administrator: every command,
line editing and completion, errors, faults in kernel threads (the console
must survive each one) and the attach hook. Each step is one row of STEPS:
what to type, then the texts that must appear, in order, before the prompt.
Usage: mgmt_console.py [qemu|bochs] [ISO]. Exit status 0 if every step passed.
"""
import os
import sys
import time

import pexpect

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import Machine  # noqa: E402

PROMPT = "hv86> "
UP, LEFT = "\x1b[A", "\x1b[D"

# (keys typed, texts expected in order before the next prompt)
STEPS = [
    ("help", ["console commands:", "help [CMD [SUB]]", "system commands:", "debug fault pf|gp|ud|de"]),
    ("help mem", ["mem", "physical frames per zone"]),
    ("version", ["hv86 0.1.0 (git ", ", built "]),
    ("uptime", ["up 0 days, 0:0", " ticks at 1000 Hz)"]),
    ("date", ["-", "T", ":"]),
    ("mem", ["direct  total ", " frames (", "high    total ", "all ", "heap: ", " bytes in use"]),
    ("threads", ["id name", "console", "running"]),
    ("disks", ["disk 0 ata0", "GPT, 3 partitions", 'name "mail"', "disk 1 ata1", "MBR",
               "type 0x83"]),
    ("pci", ["00:00.0 8086:1237", "host bridge", "IDE controller"]),
    ("log info", ["ata: ", "lines shown (info and more severe)"]),
    ("log verbose", ["error: log: unknown level 'verbose' (one of: err, warn, info, debug)"]),
    ("stats", ["com1: ", " bytes received", "irqs: 0:"]),
    # tokenizer: quotes, escapes, key="value with blanks"
    ('echo a "b c" cmdline="console=ttyS0 quiet" "q\\"x"',
     ['[a][b c][cmdline=console=ttyS0 quiet][q"x]']),
    ('echo "open', ["error: unterminated quote at column 6"]),
    # errors with hints
    ("hepl", ["error: unknown command 'hepl' (did you mean 'help'? type 'help' for a list)"]),
    ("uptime now", ["error: uptime: too many arguments (usage: uptime)"]),
    ("debug", ["error: debug: missing subcommand (one of: fault)"]),
    ("debug fault", ["error: debug fault: missing arguments (usage: debug fault pf|gp|ud|de)"]),
    ("debug fault xx", ["error: debug fault: unknown kind 'xx' (one of: pf, gp, ud, de)"]),
    # line editing: mid-line insert after Left, history recall and edit, ^U, ^C
    ("ech a" + LEFT + LEFT + "o", ["[a]"]),
    (UP + "b", ["[ab]"]),
    ("junk\x15echo ok", ["[ok]"]),
    ("upt\t", ["up 0 days"]),                      # TAB completes a unique command
    ("d\t\x15", ["date  disks  debug"]),            # ... lists the choices
    ("debug f\tzz", ["unknown kind 'zz'"]),          # ... and subcommands
    ("x" * 300, ["error: line longer than 255 bytes refused"]),
    ("echo after", ["[after]"]),
    # a fault in a kernel thread kills that thread only
    ("debug fault pf", ["#PF", "thread", "is dead, fault: #PF"]),
    ("debug fault gp", ["#GP", "is dead, fault: #GP"]),
    ("debug fault ud", ["#UD", "is dead, fault: #UD"]),
    ("debug fault de", ["#DE", "is dead, fault: #DE"]),
    ("threads", ["fault-de", "dead", "#DE", "fault-pf", "#PF", "console", "running"]),
    ("uptime", ["up 0 days"]),
]


def run_step(p, keys, expected):
    p.send(keys + "\r")
    for text in expected:
        p.expect_exact(text)
    p.expect_exact(PROMPT)


def attach_steps(p, detach_wait):
    """The attach hook: bytes go to the client until ^] or a detach from
    another thread, then the prompt comes back."""
    p.send("debug attach\r")
    p.expect_exact("[attached to loopback; press ^] to detach]")
    p.send("hello\r")
    p.expect_exact("hello")
    p.send("\x1d")
    p.expect_exact("[detached from loopback]")
    p.expect_exact(PROMPT)
    p.send("debug attach 200\r")
    p.expect_exact("[attached to loopback")
    time.sleep(detach_wait)
    p.send("z")  # the console notices the detach at the next byte
    p.expect_exact("[detached from loopback]")
    p.expect_exact(PROMPT)
    run_step(p, "\x15echo back", ["[back]"])


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "qemu"
    m = Machine(backend, iso=sys.argv[2] if len(sys.argv) > 2 else None)
    failed = "boot"
    try:
        m.start()
        p = m.child
        p.logfile_read = sys.stdout
        p.timeout = 20 if backend == "qemu" else 120
        for keys, expected in STEPS:
            failed = keys
            run_step(p, keys, expected)
        failed = "attach"
        attach_steps(p, 1.0 if backend == "qemu" else 10.0)
        failed = None
    except (pexpect.TIMEOUT, pexpect.EOF, RuntimeError) as e:
        print(f"\nmgmt_console: FAILED at step {failed!r}: {type(e).__name__}")
    finally:
        m.stop()
    if failed is None:
        print(f"\nmgmt_console ({backend}): {len(STEPS) + 1} steps passed")
    return 0 if failed is None else 1


if __name__ == "__main__":
    sys.exit(main())
