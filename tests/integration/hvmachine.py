"""Drive hv86's serial console under QEMU TCG or Bochs with pexpect.

Machine(backend).start() boots hv86.iso with the build's disk images and
returns once the console prompt is up; cmd(line) sends one command line and
returns what the console printed before the next prompt.
QEMU: the serial line is QEMU's stdio. Bochs: the serial line is a TCP socket
(com1 mode=socket-server) that we connect to, because Bochs' own stdio is its
debugger.
"""
import atexit
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

import pexpect
import pexpect.fdpexpect

import bochs_snapshot

PROMPT = "hv86> "
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def clean(text):
    """Strip ANSI escapes and carriage returns from console output."""
    return ANSI.sub("", text).replace("\r", "")


# A test guest's result lines (tests/guests/README.md "Output protocol").
PROTOCOL = re.compile(r"^(PASS|FAIL|SKIP|DONE)\b.*$")


def guest_reference(name, emulator):
    """The result lines of test guest name's native run under emulator
    (make guests-native: build/guests/out/NAME.EMULATOR.txt)."""
    with open(os.path.join(BUILD, "guests", "out", "%s.%s.txt" % (name, emulator))) as f:
        return [l for l in f.read().split("\n") if PROTOCOL.match(l)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Machine:
    def __init__(self, backend, disks=None, mem_mib=256, iso=None, extra_args=None, slave2=None):
        self.backend = backend
        # HV86_ISO: another build's ISO (e.g. one made while the tree's is rebuilt)
        self.iso = iso or os.environ.get("HV86_ISO") or os.path.join(ROOT, "hv86.iso")
        self.disks = disks if disks is not None else [
            os.path.join(BUILD, "disk-gpt.img"), os.path.join(BUILD, "disk-mbr.img")]
        self.slave2 = slave2  # disk image on the secondary channel's slave (beside the CD-ROM)
        self.mem_mib = mem_mib
        self.extra_args = extra_args or []
        self.child = None
        self.proc = None
        self.tmp = None
        self.sock = None
        self.log = ""        # everything received, cleaned
        self.boot_seconds = None

    # ------------------------------------------------------------ start/stop
    def _private_disks(self):
        """Work on sparse copies: a test must not change the build's images,
        and Bochs leaves *.lock files behind when it is killed."""
        self.tmp = tempfile.mkdtemp(prefix="hv86-%s-" % self.backend)
        def copy(path):
            dst = os.path.join(self.tmp, os.path.basename(path))
            subprocess.run(["cp", "--sparse=always", path, dst], check=True)
            return dst
        self.disks = [copy(d) for d in self.disks]
        if self.slave2:
            self.slave2 = copy(self.slave2)

    def start(self, timeout=None):
        t0 = time.monotonic()
        # A test that fails before its stop() must not leave its emulator
        # running: a Bochs left spinning at 100% of a core once slowed every
        # test after it on a two-core machine.
        atexit.register(self.stop)
        self._private_disks()
        if self.backend == "qemu":
            self._start_qemu()
            timeout = timeout or 60
        else:
            self._start_bochs()
            timeout = timeout or 300
        self.expect_prompt(timeout)
        self.boot_seconds = time.monotonic() - t0
        return self

    def _start_qemu(self):
        args = ["-accel", "tcg", "-m", str(self.mem_mib), "-cdrom", self.iso, "-boot", "d",
                "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
        for i, d in enumerate(self.disks):
            args += ["-drive", "file=%s,format=raw,if=ide,index=%d" % (d, i)]
        if self.slave2:
            args += ["-drive", "file=%s,format=raw,if=ide,index=3" % self.slave2]
        self.child = pexpect.spawn("qemu-system-i386", args + self.extra_args,
                                   encoding="latin-1", timeout=60)

    def _bochs_config(self, port):
        ata = ["ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14",
               "ata1: enabled=1, ioaddr1=0x170, ioaddr2=0x370, irq=15"]
        slots = ["ata0-master", "ata0-slave"]
        for slot, d in zip(slots, self.disks):
            ata.append("%s: type=disk, path=%s, mode=flat" % (slot, d))
        ata.append("ata1-master: type=cdrom, path=%s, status=inserted" % self.iso)
        if self.slave2:
            ata.append("ata1-slave: type=disk, path=%s, mode=flat" % self.slave2)
        return "\n".join([
            "megs: %d" % self.mem_mib,
            "romimage: file=/usr/share/bochs/BIOS-bochs-latest",
            "vgaromimage: file=/usr/share/vgabios/vgabios.bin",
            "cpu: count=1, ips=200000000, reset_on_triple_fault=0",  # a realistic virtual CPU speed: per-tick monitor work must fit in a tick
            "clock: sync=none, time0=utc",
            'display_library: rfb, options="timeout=0"',
            *ata,
            "boot: cdrom",
            "com1: enabled=1, mode=socket-server, dev=127.0.0.1:%d" % port,
            "port_e9_hack: enabled=1",
            "speaker: enabled=0",
            "sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy",
            "log: %s" % os.path.join(self.tmp, "bochs.log"),
            "panic: action=fatal",
            "error: action=report",
        ]) + "\n"

    def _start_bochs(self):
        port = free_port()
        rc = os.path.join(self.tmp, "bochsrc")
        with open(rc, "w") as f:
            f.write(self._bochs_config(port))
        cmds = os.path.join(self.tmp, "cmds")
        with open(cmds, "w") as f:
            f.write("c\n")
        # stdin a pipe: the debugger reads it when a stall is diagnosed
        # (bochs_snapshot); stop() closes it.
        self.proc = subprocess.Popen(["bochs", "-q", "-f", rc, "-rc", cmds], cwd=self.tmp,
                                     stdin=subprocess.PIPE, stdout=open(os.path.join(self.tmp, "stdout"), "w"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("bochs serial socket never came up (see %s)" % self.tmp)
                time.sleep(0.2)
        self.child = pexpect.fdpexpect.fdspawn(self.sock.fileno(), encoding="latin-1", timeout=60)

    def stop(self):
        """Stop the emulator and remove its files; again: nothing."""
        if self.backend == "qemu" and self.child is not None:
            self.child.terminate(force=True)
        if self.proc is not None:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.tmp and not os.environ.get("HV86_KEEP_TMP"):
            subprocess.run(["rm", "-rf", self.tmp])
            self.tmp = None

    # ------------------------------------------------------------ I/O
    def _record(self):
        self.log += clean((self.child.before or "") + (self.child.after if isinstance(self.child.after, str) else ""))

    def expect_prompt(self, timeout=60):
        try:
            self.child.expect_exact(PROMPT, timeout=timeout)
        except pexpect.TIMEOUT:
            self._diagnose_stall(timeout)
            raise
        out = clean(self.child.before)
        self.log += out + PROMPT
        return out

    def _diagnose_stall(self, timeout):
        """No prompt for timeout s: say on stderr what came last, what hv86
        was doing (under Bochs: its threads, from a snapshot), whether the
        prompt comes late, and whether an empty line gets one. The caller's
        TIMEOUT is raised all the same; this only tells a slow console from a
        stopped one, and a prompt broken up by other output from none."""
        tail = (self.child.before or "")[-4000:]
        sys.stderr.write("console: no prompt in %d s; last bytes received: %r\n" % (timeout, tail))
        self._snapshot("at the stall")
        t0 = time.monotonic()
        for probe in ("", "\r"):
            if probe:
                self._snapshot("60 s later")
                self.child.send(probe)
            try:
                self.child.expect_exact(PROMPT, timeout=60)
                sys.stderr.write("console: a prompt came %.0f s later%s; bytes before it: %r\n"
                                 % (time.monotonic() - t0, " after an empty line" if probe else "",
                                    (self.child.before or "")[-400:]))
                return
            except (pexpect.TIMEOUT, pexpect.EOF):
                pass
        sys.stderr.write("console: still no prompt %.0f s later, nor after an empty line\n" % (time.monotonic() - t0))

    def _snapshot(self, when):
        if self.backend != "bochs":
            return
        elf = os.path.join(ROOT, "hv86.elf")
        sys.stderr.write("console: inside hv86 %s (Bochs snapshot; symbols from the tree's hv86.elf%s):\n%s\n" % (
            when, ", which may not be HV86_ISO's" if os.environ.get("HV86_ISO") else "",
            bochs_snapshot.snapshot(self.proc, self.tmp, elf)))

    def expect(self, pattern, timeout=30):
        self.child.expect(pattern, timeout=timeout)
        out = clean(self.child.before + self.child.after)
        self.log += out
        return out

    def send(self, data):
        self.child.send(data)

    def cmd(self, line, timeout=60):
        """Run one console command; return its output without the echoed line."""
        self.child.send(line + "\r")
        out = self.expect_prompt(timeout)
        lines = out.split("\n")
        if lines and lines[0].strip() == line.strip():
            lines = lines[1:]
        return "\n".join(lines).strip("\n")
