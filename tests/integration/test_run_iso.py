#!/usr/bin/env python3
"""`make run`'s ISO (hv86-run.iso): the startup script boot/hv86.rc has created
the switches wan (bridged to the e1000) and lan and the Linux guests before
the first prompt, and the first session of the README works on it: start a
guest, talk to its busybox shell through `console`; curl on this machine
gets web's page through the port forward `make run` gives QEMU's user-mode
network, hv86's e1000 and switch wan; web pings mail on lan (web's eth1);
reboot web from inside, detach, stop it, and the console lives on.

Checks against things nobody here wrote: the kernel release the guest reports
is the one in Debian's package (build/debian/root/boot/config-*), and `ls /`
lists what scripts/mkinitramfs.sh put into the shell image.
"""
import glob
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import ROOT, BUILD, Machine, clean, free_port  # noqa: E402

SHELL_PROMPT = re.compile(r"[~/][^\r\n]* # ")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def debian_release():
    configs = glob.glob(os.path.join(BUILD, "debian", "root", "boot", "config-*"))
    if len(configs) != 1:
        fail("expected one Debian kernel config in build/debian/root/boot, found %r" % configs)
    return os.path.basename(configs[0])[len("config-"):]


def shell_cmd(m, line, timeout=120):
    m.send(line + "\r")
    m.child.expect(SHELL_PROMPT, timeout=timeout)
    out = clean(m.child.before)
    # drop the echoed command line
    return out.split("\n", 1)[1] if "\n" in out else ""


def main():
    release = debian_release()
    port = free_port()
    # as `make run` (Makefile RUN_NIC), on a free port
    m = Machine("qemu", mem_mib=512, iso=os.path.join(ROOT, "hv86-run.iso"), extra_args=[
        "-nic", "user,model=e1000,hostfwd=tcp:127.0.0.1:%d-10.0.2.15:80" % port]).start()
    try:
        boot = clean(m.log)
        for line in ("rc: net create wan uplink=e1000", "created switch wan (uplink e1000)", "rc: net create lan"):
            if line not in boot:
                fail("the startup script's %r is not in the boot log" % line)
        for name in ("web", "mail", "batch"):
            if "rc: vm create %s " % name not in boot:
                fail("the startup script did not run 'vm create %s'" % name)
        listing = m.cmd("vm list")
        for name in ("web", "mail", "batch"):
            if not re.search(r"^%s\s+created\s+64M" % name, listing, re.M):
                fail("vm list does not show %s created with 64M:\n%s" % (name, listing))
        print("ok: startup script created web, mail, batch")

        t0 = time.monotonic()
        m.cmd("vm start web")
        m.send("console web\r")
        m.child.expect(SHELL_PROMPT, timeout=600)
        print("ok: web reached its shell %.1f s after vm start" % (time.monotonic() - t0))
        uname = shell_cmd(m, "uname -r").strip()
        if uname != release:
            fail("uname -r says %r, Debian's package is %r" % (uname, release))
        print("ok: uname -r = %s" % uname)
        ls = shell_cmd(m, "ls /").split()
        for entry in ("bin", "dev", "proc", "sys", "init"):
            if entry not in ls:
                fail("ls / lacks %s: %r" % (entry, ls))
        print("ok: ls / = %s" % " ".join(ls))
        # the README's `curl http://127.0.0.1:8080/`: the port forward, the
        # e1000, switch wan, web's virtio-net and its httpd
        index = open(os.path.join(BUILD, "linux", "www", "index.html"), "rb").read()
        page = subprocess.run(["curl", "-sS", "--fail", "--max-time", "120", "http://127.0.0.1:%d/" % port],
                              stdout=subprocess.PIPE).stdout
        if page != index:
            fail("curl through the port forward got %r, not web's index.html" % page[:200])
        print("ok: curl http://127.0.0.1:%d/ answered by web's httpd (%d bytes)" % (port, len(page)))
        m.send("\x1d")
        m.child.expect_exact("[detached from web]", timeout=30)
        m.expect_prompt(30)
        m.cmd("vm start mail")
        m.send("console web\r")
        m.child.expect_exact("[attached to web", timeout=30)
        m.send("\r")
        m.child.expect(SHELL_PROMPT, timeout=60)
        pong = shell_cmd(m, "for i in $(seq 90); do ping -c 1 -W 2 10.0.0.2 >/dev/null && echo PONG && break; done",
                         timeout=300)
        if "PONG" not in pong:
            fail("web (10.0.0.1 on lan) got no ping reply from mail (10.0.0.2): %r" % pong)
        print("ok: web pings mail on lan")
        # reboot: Linux pulses the i8042's reset line; the VM starts over
        t0 = time.monotonic()
        m.send("reboot -f\r")
        m.child.expect("Linux version", timeout=120)
        m.child.expect(SHELL_PROMPT, timeout=600)
        if shell_cmd(m, "uname -r").strip() != release:
            fail("after reboot, uname -r is not %r" % release)
        print("ok: reboot -f restarted web to its shell in %.1f s" % (time.monotonic() - t0))
        m.send("\x1d")
        m.child.expect_exact("[detached from web]", timeout=30)
        m.expect_prompt(30)
        m.cmd("vm stop web")
        listing = m.cmd("vm list")
        if not re.search(r"^web\s+stopped", listing, re.M):
            fail("web is not stopped after vm stop:\n%s" % listing)
        if "hv86" not in m.cmd("version"):
            fail("the console does not answer after the guest stopped")
        print("ok: web stopped, console answers")
    finally:
        m.stop()
    print("run-iso: all passed")


if __name__ == "__main__":
    main()
