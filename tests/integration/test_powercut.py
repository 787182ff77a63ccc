#!/usr/bin/env python3
"""Power cut: data a guest was told is on disk is on disk (issue 12, docs/storage.md).

usage: test_powercut.py [TRIALS]      (default 3)

Each trial boots hv86 in QEMU with a private copy of the build's disks,
starts a Linux VM with disk=ata0p1 (the ext4 "mail" partition, persistent),
and has it append numbered records to /mnt/log.txt, printing `ACK n` only
after `sync FILE` (fsync) returned for record n. After a random 3-12 s the
QEMU process running hv86 is killed (SIGKILL: no flush, no shutdown). Then,
from outside: the partition's bytes are copied from the image, e2fsck -fy
replays the journal, and debugfs reads log.txt. Every record acknowledged
on the console must be there, in order. Prints trials, records acknowledged
and records lost; any loss fails.

A killed QEMU loses what it had not handed to the host kernel; what it had
(every write an ATA command completed for, hv86's FLUSH CACHE included) is
in the image file. That is the guarantee hv86 must pass on: a guest's fsync
returns only after its data reached the host disk.
"""
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import Machine  # noqa: E402
import linuxguest as lg  # noqa: E402

MAIL_START, MAIL_SECTORS = 2048, 16384  # scripts/mkdisks.sh: GPT p1 "mail"
APPEND = 'i=0; while true; do i=$((i+1)); echo "record $i" >> /mnt/log.txt && sync /mnt/log.txt && echo "ACK $i"; done'


def records_in_image(image):
    """The record numbers in log.txt of the partition, after journal replay."""
    fd, part = tempfile.mkstemp(prefix="hv86-cut-")
    with open(image, "rb") as f, os.fdopen(fd, "wb") as out:
        f.seek(MAIL_START * 512)
        out.write(f.read(MAIL_SECTORS * 512))
    fsck = subprocess.run(["e2fsck", "-fy", part], capture_output=True, text=True)
    text = subprocess.run(["debugfs", "-R", "cat /log.txt", part], capture_output=True, text=True).stdout
    os.remove(part)
    return fsck.returncode, [int(n) for n in re.findall(r"^record (\d+)$", text, re.M)]


def trial(n, rng):
    m = Machine("qemu", mem_mib=256).start()
    try:
        out = m.cmd('vm create cut kernel=linux initrd=shell mem=64M cmdline="console=ttyS0" disk=ata0p1')
        assert "created" in out, out
        m.cmd("vm start cut")
        con = lg.attach(m, "cut")
        con.wait_ready(600)
        status, _ = con.run("mount -t ext4 /dev/vda /mnt && rm -f /mnt/log.txt && sync", 300)
        assert status == 0, "mount failed"
        con.type_line(APPEND)
        seconds = rng.uniform(3, 12)
        deadline, text = time.monotonic() + seconds, ""
        while time.monotonic() < deadline:
            try:
                m.child.expect(r"ACK \d+\r*\n", timeout=1)
                text += m.child.before + m.child.after
            except Exception:  # noqa: BLE001 -- a quiet second is fine
                pass
        m.child.kill(signal.SIGKILL)  # the power cut: QEMU gets no chance to flush anything
        m.child.close(force=True)
        acked = [int(a) for a in re.findall(r"ACK (\d+)\r*\n", text)]
        last = max(acked) if acked else 0
        rc, found = records_in_image(m.disks[0])
        lost = [r for r in range(1, last + 1) if r not in set(found)]
        in_order = found == list(range(1, len(found) + 1))
        print("trial %d: cut after %.1f s, %d records acknowledged, %d in the image (e2fsck %d), %d lost%s" %
              (n, seconds, last, len(found), rc, len(lost), "" if in_order else ", NOT IN ORDER"), flush=True)
        return last, len(lost), rc in (0, 1) and in_order
    finally:
        m.stop()


def main():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rng = random.Random(int(os.environ.get("HV86_CUT_SEED", "12")))
    acked = lost = bad = 0
    for n in range(1, trials + 1):
        a, lo, ok = trial(n, rng)
        acked, lost, bad = acked + a, lost + lo, bad + (not ok)
    print("powercut: %d trials, %d records acknowledged, %d lost, %d file systems not clean after replay"
          % (trials, acked, lost, bad))
    return 0 if lost == 0 and bad == 0 and acked > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
