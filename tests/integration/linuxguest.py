"""Debian's i386 Linux with the busybox images, natively or under hv86.

Shared by tests/integration/test_linux.py and bench/linux_bench.py.

The guest is build/linux/linux.bz with build/linux/shell.img or
workload.img (scripts/mkinitramfs.sh), 64 MiB, `console=ttyS0`: the same
kernel, image, memory and command line in both places.

  NativeLinux(image).start()   qemu-system-i386 -accel tcg -kernel ... (the
                               reference); .console is a LinuxConsole
  hv86_create(m, name, image)  `vm create` on an hvmachine.Machine
  attach(m, name)              `console NAME`: a LinuxConsole on the guest's
                               serial line; detach(m) sends ^] and waits for
                               the hv86 prompt
  LinuxConsole.wait_ready()    the shell image's init says READY, then the
                               busybox prompt; sets up the shell (below)
  LinuxConsole.run(cmd)        (status, output) of one command line
  workload_lines(text)         what the workload printed between its markers

The shell is busybox ash with line editing on a serial line. How run()
stays robust on it:
* Input is typed in chunks of CHUNK bytes, each one only after the shell
  has echoed the previous: hv86's virtual 16550 has a 16-byte receive FIFO
  and drops what overflows it (QEMU's own serial port has flow control, so
  the native run would never show the problem).
* The output is taken between two marker lines the command line prints
  (`echo @@B"7"` prints @@B7; the echo of the typed line shows @@B"7", which
  does not match), so kernel messages before the command, the prompt and the
  echo are never part of it; the end marker carries $?.
* wait_ready() sets, in one line: `dmesg -n 1` (kernel messages, which
  depend on timing, stay off the console), `stty cols 200` (ash's line
  editor wraps at the terminal width, 80 on a serial line, and a wrapped echo
  would not match what was typed) and a prompt of our own (PS1).
* Through hv86, `console NAME` first replays what the guest printed while
  nobody was attached; markers are numbered across the whole process, so
  an old command's markers in a replay never match a new one.
"""
import itertools
import os
import re
import time

import pexpect

from hvmachine import BUILD, clean

LINUX_DIR = os.path.join(BUILD, "linux")
KERNEL = os.path.join(LINUX_DIR, "linux.bz")
IMAGES = {"shell": os.path.join(LINUX_DIR, "shell.img"),
          "workload": os.path.join(LINUX_DIR, "workload.img"),
          "web": os.path.join(LINUX_DIR, "web.img"),         # the shell image plus /www and httpd (docs/net.md)
          "bench": os.path.join(LINUX_DIR, "bench.img")}     # the shell image plus fio (bench/disk_bench.py)
MEM_MIB = 64
CMDLINE = "console=ttyS0"

READY = "hv86 guest shell ready"       # the shell image's init, before the first prompt
FIRST_PROMPT = r"[#$] "                # busybox's default "\w \$ " for root: "/ # "
PS1 = "LX-SH> "
PS1_TYPED = "PS1='LX-''SH> '"          # its echo does not contain PS1 itself
SETUP = "dmesg -n 1; stty cols 200; " + PS1_TYPED
WORKLOAD_BEGIN, WORKLOAD_END = "WORKLOAD-BEGIN", "WORKLOAD-END"
PRINTK = re.compile(r"^\[\s*\d+\.\d+\] ")  # a kernel message (CONFIG_PRINTK_TIME)
ESCAPE = "\x1d"                        # ^] detaches from an hv86 guest console
CHUNK = 8                              # bytes typed before waiting for their echo
MAX_LINE = 190                         # under `stty cols 200`, with the prompt

_marker = itertools.count(1)


class LinuxConsole:
    """The busybox shell on a guest serial line reached through a pexpect child
    (QEMU's stdio natively, hv86's console when attached). `replay` is text
    already read from the line (hv86's scrollback replay) that wait_ready()
    should search first. Everything read is appended to `transcript`."""

    def __init__(self, child, name="linux", replay=""):
        self.child = child
        self.name = name
        self.replay = replay
        self.transcript = clean(replay)
        self.ready_at = None   # time.monotonic() when the shell's first prompt was seen

    def _expect(self, pattern, timeout, exact=False):
        try:
            if exact:
                self.child.expect_exact(pattern, timeout=timeout)
            else:
                self.child.expect(pattern, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF):
            self.transcript += clean(self.child.before or "")  # what came instead
            raise
        got = clean(self.child.before + self.child.after)
        self.transcript += got
        return got

    def type_line(self, line, timeout=60):
        """Type LINE and Enter, CHUNK bytes at a time, each after the echo of
        the one before (see the module comment)."""
        for i in range(0, len(line), CHUNK):
            chunk = line[i:i + CHUNK]
            self.child.send(chunk)
            self._expect(chunk, timeout, exact=True)
        self.child.send("\r")

    def wait_ready(self, timeout):
        """Wait for READY and the shell's first prompt (in the replay or
        live; ready_at is when it was seen), then set the shell up."""
        t0 = time.monotonic()
        tail = self.replay[self.replay.rfind(READY):] if READY in self.replay else None
        if tail is None:
            self._expect(READY, timeout, exact=True)
        if tail is None or not re.search(FIRST_PROMPT, clean(tail)[len(READY):]):
            self._expect(FIRST_PROMPT, max(1, timeout - (time.monotonic() - t0)))
        self.ready_at = time.monotonic()
        self.type_line(SETUP)
        self._expect(PS1, 120, exact=True)

    def run(self, cmd, timeout=120):
        """Run one command line at the prompt; return (exit status of its last
        command, its output with \\r removed and without a final newline).
        Raises pexpect.TIMEOUT/EOF if the shell does not answer."""
        n = next(_marker)
        line = 'echo @@B"%d"; %s; echo @@E"%d" $?' % (n, cmd, n)
        if len(line) > MAX_LINE:
            raise ValueError("command line too long for the shell's line editor: %r" % cmd)
        self.type_line(line)
        self._expect(r"\n@@B%d\r*\n" % n, timeout)
        out = self._expect(r"@@E%d (\d+)\r*\n" % n, timeout)
        status = int(self.child.match.group(1))
        self._expect(PS1, 60, exact=True)
        out = out[:out.rfind("@@E%d " % n)]
        return status, out.rstrip("\n")


# ---------------------------------------------------------------- native (the reference)

class NativeLinux:
    """The guest as QEMU TCG runs it natively: same kernel, image, memory,
    command line and (default) CPU model as hv86 gets under QEMU."""

    def __init__(self, image, mem_mib=MEM_MIB, cmdline=CMDLINE, extra_args=()):
        self.args = ["-accel", "tcg", "-m", str(mem_mib), "-display", "none",
                     "-serial", "stdio", "-monitor", "none", "-no-reboot",
                     "-kernel", KERNEL, "-initrd", IMAGES[image], "-append", cmdline] + list(extra_args)
        self.child = None
        self.console = None
        self.t0 = None

    def start(self):
        """Spawn QEMU; t0 is taken just before (so boot times include QEMU's
        start and its firmware, about half a second)."""
        self.t0 = time.monotonic()
        self.child = pexpect.spawn("qemu-system-i386", self.args, encoding="latin-1",
                                   timeout=60, maxread=65536)
        self.console = LinuxConsole(self.child, "native")
        return self

    def wait_ready(self, timeout):
        """Boot to the shell; returns seconds from QEMU's start to the prompt."""
        self.console.wait_ready(timeout)
        return self.console.ready_at - self.t0

    def workload(self, timeout):
        """Run the workload image to its end marker and QEMU's exit (poweroff).
        Returns (seconds from QEMU's start to WORKLOAD-END, text, exited)."""
        self.console._expect(WORKLOAD_END, timeout, exact=True)
        seconds = time.monotonic() - self.t0
        try:
            self.child.expect(pexpect.EOF, timeout=60)
            self.console.transcript += clean(self.child.before)
            exited = True
        except pexpect.TIMEOUT:
            exited = False
        return seconds, self.console.transcript, exited

    def stop(self):
        if self.child is not None and self.child.isalive():
            self.child.terminate(force=True)


# ---------------------------------------------------------------- under hv86

def hv86_create(m, name, image, mem_mib=MEM_MIB, cmdline=CMDLINE, extra=""):
    """`vm create NAME kernel=linux initrd=IMAGE [extra]`; returns the console's answer."""
    return m.cmd('vm create %s kernel=linux initrd=%s mem=%dM cmdline="%s"%s'
                 % (name, image, mem_mib, cmdline, " " + extra if extra else ""))


def attach(m, name, timeout=60):
    """`console NAME`: returns a LinuxConsole whose replay is the scrollback
    hv86 printed before '[attached to NAME ...]'."""
    m.send("console %s\r" % name)
    m.expect(r"\[attached to %s; press \^\] to detach\]\r*\n" % re.escape(name), timeout)
    return LinuxConsole(m.child, name, replay=m.child.before)


def detach(m, timeout=60):
    """^] and the hv86 prompt back."""
    m.send(ESCAPE)
    m.expect(r"\[detached from", timeout)
    m.expect_prompt(timeout)


def workload_lines(text):
    """The lines between the last WORKLOAD-BEGIN and the WORKLOAD-END after it,
    without kernel messages (they come from the kernel, not the workload, and
    when they arrive depends on timing). Returns (lines, kernel messages)."""
    text = clean(text)
    i = text.rfind(WORKLOAD_BEGIN + "\n")
    j = text.find("\n" + WORKLOAD_END, i)
    if i < 0 or j < 0:
        return None, []
    lines = text[i + len(WORKLOAD_BEGIN) + 1:j].split("\n")
    return [l for l in lines if not PRINTK.match(l)], [l for l in lines if PRINTK.match(l)]
