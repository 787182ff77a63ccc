#!/usr/bin/env python3
"""Guest disks on raw partitions (docs/storage.md "Guest disks"), checked
from outside with e2fsprogs, under QEMU TCG.

hv86 boots with the build's disks (a private copy each run): ata0p1 "mail"
holds an ext4 file system that scripts/mkdisks.sh made with mke2fs -d
(hello.txt, seq.txt).

console   Bad `disk=` values get a one-line reason and create nothing: no
          such partition, an unknown option or device type, a redo size
          too small. Sharing: a second writer of ata0p1, the whole disk ata0 over
          it, a reader while it has a writer are refused naming the holder;
          two readers of ata0p2 are allowed; `disks` names the holders;
          destroying the writer frees it.
guest     Linux VM `mail` with disk=ata0p1: virtio_blk finds vda of the
          partition's size; the build's ext4 mounts, hello.txt and seq.txt
          read back as debugfs reads them from the host's image. Then the
          guest makes its own file system with Debian's mkfs.ext4 (the
          shell image's e2fsprogs, not busybox's), mounts it, writes
          new.txt, big.txt (`seq 1 50000`) and yes.bin (1 MiB), checks
          their md5s, runs a copy of busybox from the disk after dropping
          the page cache (code arriving by DMA), unmounts, and its own
          `e2fsck -fn` finds the file system clean; a write past the end
          fails. Then from the host (the VM destroyed): e2fsck -fn finds
          it clean, dumpe2fs shows the guest's label and UUID, debugfs
          reads the three files with their contents. A second VM on the
          same partition (after destroy) reads them back with their md5s:
          persistent. A read-only VM (mode=ro) mounts it, and its writes
          fail.
modes     nonpersistent: the guest's writes read back while it runs, the
          partition is unchanged (e2fsck, debugfs), and they are gone after
          `vm stop` and `vm start`. undoable: they survive the power cycle;
          `vm discard` drops them; `vm commit` (refused while running)
          writes them, and the host's e2fsck and debugfs see them. A redo
          log at its cap (redo=64K) makes the guest's write fail with an
          I/O error; the guest and hv86 go on.
ide       Linux VM with disk=ata0p1,type=ide: ata_piix drives the PIIX3 at
          multiword DMA 2; the guest makes ext4 with mkfs.ext4, writes a file
          and a copy of busybox, remounts after dropping its caches, runs the
          copy, checks the file's md5 and runs e2fsck; a write past the end
          fails; `vm info` counts IDE writes and flushes. From the host:
          e2fsck -fn clean, debugfs reads the file. A second VM (mode=ro)
          reads it back, and its writes fail.
hostile   tests/guests/diskattack.c, a hostile guest kernel with a virtio
          disk on ata0p2 and an IDE disk on ata0p3: sectors past the end,
          buffers and PRD tables in the monitor's range and past RAM, a 2 GiB
          length, a descriptor loop, a queue outside RAM, a DMA engine set
          the wrong way; every one of its checks of hv86's answers passes,
          `vm info` counts the errors, and from the host only the two
          partitions' last sectors changed (to the guest's patterns).
"""
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import Machine  # noqa: E402
import linuxguest as lg  # noqa: E402

MAIL_START, MAIL_SECTORS = 2048, 16384  # scripts/mkdisks.sh: GPT p1 "mail"
WEB, FTP = (18432, 32768), (51200, 49152)  # GPT p2 "web", p3 "ftp": (start, sectors)
failures = []


def check(ok, what):
    print("%s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    if not ok:
        failures.append(what)
    return ok


def sectors(image, start, count):
    """count sectors of image from sector start, as bytes."""
    with open(image, "rb") as f:
        f.seek(start * 512)
        return f.read(count * 512)


def partition(image, start, count):
    """A copy of the partition's bytes in a temporary file (its path)."""
    fd, path = tempfile.mkstemp(prefix="hv86-part-")
    with os.fdopen(fd, "wb") as out:
        out.write(sectors(image, start, count))
    return path


def debugfs_cat(path, name):
    r = subprocess.run(["debugfs", "-R", "cat /%s" % name, path], capture_output=True)
    return r.stdout


def console_checks(m):
    bad = [
        ("disk=ata0p9", "no disk or partition 'ata0p9'"),
        ("disk=ata0p1,mode=undoable,redo=12", "is not a size of at least 4K"),
        ("disk=ata0p1,type=scsi", "unknown disk option 'type=scsi'"),
        ("disk=ata0p1,colour=red", "unknown disk option 'colour=red'"),
        ("disk=", "disk= needs a disk or partition"),
    ]
    for arg, reason in bad:
        out = m.cmd('vm create bad kernel=linux initrd=shell mem=64M %s' % arg)
        check(reason in out and "created" not in out, "vm create ... %s: %r" % (arg, out.strip()[:100]))
    check("bad " not in m.cmd("vm list"), "no VM left behind by the refused creates")
    check("created" in m.cmd("vm create w1 kernel=linux initrd=shell mem=64M disk=ata0p1"), "w1 holds ata0p1")
    for name, arg in (("w2", "disk=ata0p1"), ("w3", "disk=ata0"), ("r0", "disk=ata0p1,mode=ro")):
        out = m.cmd("vm create %s kernel=linux initrd=shell mem=64M %s" % (name, arg))
        check("in use by VM w1" in out, "%s with %s refused: %r" % (name, arg, out.strip()[:100]))
    for name in ("r1", "r2"):
        out = m.cmd("vm create %s kernel=linux initrd=shell mem=64M disk=ata0p2,mode=ro" % name)
        check("created" in out, "%s reads ata0p2 beside the other reader" % name)
    out = m.cmd("disks")
    check(re.search(r'part 0 1 start 2048 .*name "mail"  held by w1 \(persistent\)', out) and
          re.search(r'part 0 2 start .*name "web"  held by r1 \(ro\), r2 \(ro\)', out) and
          not re.search(r'name "ftp"  held', out), "disks shows who holds each partition")
    out = m.cmd("vm create w4 kernel=linux initrd=shell mem=64M disk=ata0p2")
    check("in use by VM r1" in out, "a writer of ata0p2 refused while it has readers: %r" % out.strip()[:100])
    for name in ("w1", "r1", "r2"):
        m.cmd("vm destroy %s" % name)
    out = m.cmd("vm create w5 kernel=linux initrd=shell mem=64M disk=ata0p1 disk=ata0p2,mode=ro")
    check("created" in out, "ata0p1 free again once w1 is destroyed; two disks on one VM")
    info = m.cmd("vm info w5")
    check(re.search(r"disk 0: ata0p1, persistent, 16384 sectors; virtio-blk 00:03\.0 io c000 irq 11", info) and
          re.search(r"disk 1: ata0p2, ro, 32768 sectors; virtio-blk 00:04\.0 io c040 irq 10", info),
          "vm info lists both disks")
    m.cmd("vm destroy w5")


def boot(m, name, disk):
    out = m.cmd('vm create %s kernel=linux initrd=shell mem=64M cmdline="console=ttyS0" disk=%s' % (name, disk))
    check("created" in out, "vm create %s disk=%s" % (name, disk))
    m.cmd("vm start %s" % name)
    con = lg.attach(m, name)
    con.wait_ready(600)
    return con


def run(con, cmd, what, want_status=0):
    status, out = con.run(cmd, 600)
    if not check(status == want_status, "%s (status %s)" % (what, status)):
        print("     its output: %r" % out[-600:])
        print("     the console before it: %r" % con.transcript[-1500:])
    return out


# The files the guest writes on the file system it makes, by name.
GUEST_FILES = {
    "new.txt": b"written-by-guest\n",
    "big.txt": "".join("%d\n" % i for i in range(1, 50001)).encode(),   # seq 1 50000
    "yes.bin": (b"hv86\n" * 209716)[:1 << 20],                          # yes hv86 | head -c 1048576
}
GUEST_WRITES = ("echo written-by-guest > /mnt/new.txt && seq 1 50000 > /mnt/big.txt && "
                "yes hv86 | head -c 1048576 > /mnt/yes.bin && sync")
GUEST_MD5S = "cd /mnt && md5sum %s; cd /" % " ".join(sorted(GUEST_FILES))


def md5s_ok(out):
    """Whether OUT (md5sum's) lists every guest file with its md5."""
    return all(re.search(r"^%s\s+%s$" % (hashlib.md5(data).hexdigest(), re.escape(name)), out, re.M)
               for name, data in GUEST_FILES.items())


def guest_makes_fs(m, seq, fs_uuid):
    """The first VM: reads the build's file system, makes its own with
    Debian's mkfs.ext4 (label guestfs, UUID fs_uuid), writes GUEST_FILES,
    checks it with e2fsck -fn."""
    con = boot(m, "mail", "ata0p1,readahead=on")
    out = run(con, "cat /sys/block/vda/size", "vda exists")
    check(out.strip() == str(MAIL_SECTORS), "vda has the partition's %d sectors (%r)" % (MAIL_SECTORS, out.strip()))
    run(con, "mount -t ext4 /dev/vda /mnt", "mount the build's ext4")
    out = run(con, "cat /mnt/hello.txt; md5sum /mnt/seq.txt; umount /mnt", "read the build's files")
    check("hello from mail" in out and hashlib.md5(seq).hexdigest() in out, "guest reads what debugfs reads")

    # Debian's e2fsprogs in the shell image, not busybox's mke2fs applet.
    out = run(con, "command -v mkfs.ext4; command -v e2fsck; mkfs.ext4 -V 2>&1; e2fsck -V 2>&1",
              "e2fsprogs in the guest")
    check(out.split("\n")[:2] == ["/sbin/mkfs.ext4", "/sbin/e2fsck"] and
          out.count("Using EXT2FS Library version 1.47") == 2, "mkfs.ext4 and e2fsck are Debian's: %r" % out[:200])
    # Read-ahead coherence (vmm/diskra.h): a sequential read makes the host
    # fill its window with what follows; a write over all of it must
    # drop the window, so the read back gives the new bytes, not the
    # window's (vm info must count the drop, below, or this proved nothing).
    run(con, "echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/vda of=/dev/null bs=64k count=64 2>/dev/null",
        "read the disk's first 4 MiB")
    run(con, "head -c 6291456 /dev/urandom >/tmp/r && dd if=/tmp/r of=/dev/vda bs=64k conv=fsync 2>/dev/null && "
        "echo 3 >/proc/sys/vm/drop_caches", "overwrite its first 6 MiB with random bytes")
    out = run(con, "md5sum </tmp/r; dd if=/dev/vda bs=64k count=96 2>/dev/null | md5sum; rm /tmp/r", "read them back")
    sums = re.findall(r"^([0-9a-f]{32})", out, re.M)
    check(len(sums) == 2 and sums[0] == sums[1], "a write after read-ahead reads back as written: %r" % sums)
    run(con, "mkfs.ext4 -q -F -L guestfs -U %s /dev/vda" % fs_uuid, "mkfs.ext4 /dev/vda in the guest")
    run(con, "mount -t ext4 /dev/vda /mnt", "mount the guest's ext4")
    out = run(con, "ls /mnt", "ls the new file system")
    check(out.split() == ["lost+found"], "the new file system holds only lost+found (%r)" % out)
    run(con, GUEST_WRITES, "write the files")
    out = run(con, GUEST_MD5S, "md5 of the files")
    check(md5s_ok(out), "the guest's files have their md5s")
    # Code read from the disk by DMA into pages that may have held
    # translated code: drop the page cache, then run a copy of busybox
    # from the disk (vcpu_dma_write must drop stale translations).
    run(con, "cp /bin/busybox /mnt/busybox && sync && echo 3 > /proc/sys/vm/drop_caches", "busybox onto the disk")
    out = run(con, "/mnt/busybox echo ran-from-disk; /mnt/busybox md5sum /mnt/big.txt", "run busybox from the disk")
    check("ran-from-disk" in out and hashlib.md5(GUEST_FILES["big.txt"]).hexdigest() in out,
          "a program read from the disk runs")
    run(con, "rm /mnt/busybox && umount /mnt", "umount")
    # The disk's interrupt through the I/O APIC: a level-triggered input
    # (the MP table's PCI entry for its slot), with every request above.
    out = run(con, "grep virtio /proc/interrupts", "virtio-blk in /proc/interrupts")
    found = re.search(r"^\s*11:\s+(\d+)\s+IO-APIC\s+11-fasteoi\s+virtio0", out, re.M)
    check(found is not None and int(found.group(1)) > 0,
          "virtio-blk interrupts on IO-APIC input 11, level-triggered (fasteoi), counting: %r" % out.strip())
    out = run(con, "e2fsck -fn /dev/vda 2>&1", "e2fsck -fn in the guest")
    check(re.search(r"^guestfs: \d+/\d+ files", out, re.M) is not None,
          "the guest's e2fsck -fn finds its file system clean: %r" % out.strip().split("\n")[-1])
    run(con, "dd if=/dev/zero of=/dev/vda bs=512 seek=%d count=1 2>&1" % MAIL_SECTORS,
        "a write past the end fails", want_status=1)
    lg.detach(m)
    info = m.cmd("vm info mail")
    check(re.search(r"disk 0: ata0p1, persistent, 16384 sectors; .*writes [1-9]", info) is not None,
          "vm info counts the writes")
    check(re.search(r"disk 0: read-ahead window 256 KiB: [1-9]\d* fills .*, [1-9]\d* reads served from it .*, "
                    r"[1-9]\d* dropped by writes", info) is not None,
          "vm info counts read-ahead fills, reads served from the window and windows dropped by writes: %r"
          % [l for l in info.split("\n") if "read-ahead" in l])
    m.cmd("vm stop mail")
    m.cmd("vm destroy mail")


def guest_checks(m):
    image = m.disks[0]
    orig = partition(image, MAIL_START, MAIL_SECTORS)
    hello, seq = debugfs_cat(orig, "hello.txt"), debugfs_cat(orig, "seq.txt")
    os.remove(orig)
    check(hello == b"hello from mail\n" and len(seq) > 500000, "debugfs reads the build's files from the image")

    fs_uuid = str(uuid.uuid4())
    guest_makes_fs(m, seq, fs_uuid)
    part = partition(image, MAIL_START, MAIL_SECTORS)
    fsck = subprocess.run(["e2fsck", "-fn", part], capture_output=True, text=True)
    check(fsck.returncode == 0, "e2fsck -fn: clean after the guest (%s)" % fsck.stdout.strip().split("\n")[-1])
    head = subprocess.run(["dumpe2fs", "-h", part], capture_output=True, text=True).stdout
    check(re.search(r"^Filesystem volume name:\s+guestfs$", head, re.M) and
          re.search(r"^Filesystem UUID:\s+%s$" % fs_uuid, head, re.M),
          "the host sees the file system the guest made (guestfs, %s)" % fs_uuid)
    for name, data in GUEST_FILES.items():
        check(debugfs_cat(part, name) == data, "debugfs reads the guest's %s" % name)
    check(debugfs_cat(part, "hello.txt") == b"", "the build's hello.txt is gone")
    os.remove(part)

    con = boot(m, "mail2", "ata0p1")
    run(con, "mount -t ext4 /dev/vda /mnt", "mount again in a new VM")
    out = run(con, GUEST_MD5S + "; umount /mnt", "read back")
    check(md5s_ok(out), "persistent: a new VM reads the files back with their md5s")
    lg.detach(m)
    m.cmd("vm stop mail2")
    m.cmd("vm destroy mail2")

    con = boot(m, "reader", "ata0p1,mode=ro")
    run(con, "mount -t ext4 -o ro /dev/vda /mnt && cat /mnt/new.txt", "mount read-only")
    run(con, "dd if=/dev/zero of=/dev/vda bs=512 count=1 conv=fsync 2>&1", "a write to a ro disk fails",
        want_status=1)
    lg.detach(m)
    m.cmd("vm stop reader")
    part = partition(image, MAIL_START, MAIL_SECTORS)
    check(debugfs_cat(part, "new.txt") == b"written-by-guest\n", "the read-only VM changed nothing")
    os.remove(part)


def fs_files(image):
    """(e2fsck return code, {name: bytes}) of the mail partition in image."""
    part = partition(image, MAIL_START, MAIL_SECTORS)
    rc = subprocess.run(["e2fsck", "-fn", part], capture_output=True).returncode
    ls = subprocess.run(["debugfs", "-R", "ls -p /", part], capture_output=True, text=True).stdout
    names = [f.split("/")[5] for f in ls.split("\n") if f.count("/") >= 6 and f.split("/")[5] not in (".", "..")]
    files = {n: debugfs_cat(part, n) for n in names if n.endswith(".txt")}
    os.remove(part)
    return rc, files


def reattach(m, name, boots):
    """Attach to a VM the console has seen boot `boots` times before this
    boot: the replay holds the earlier shells' READY lines, which must not
    count as this boot's."""
    con = lg.attach(m, name)
    if con.replay.count(lg.READY) <= boots:
        con.replay = ""                      # this boot's READY is still to come
    else:
        con.replay = con.replay[con.replay.rfind(lg.READY):]
    con.wait_ready(600)
    return con


def power_cycle(m, name, boots=1):
    """`vm stop`, `vm start`, attach: a power-off and a power-on."""
    lg.detach(m)
    m.cmd("vm stop %s" % name)
    m.cmd("vm start %s" % name)
    return reattach(m, name, boots)


def mode_checks(m):
    image = m.disks[0]
    rc, before = fs_files(image)
    check(rc == 0 and "hello.txt" in before, "the mail file system before: %s" % sorted(before))

    con = boot(m, "np", "ata0p1,mode=nonpersistent")
    run(con, "mount -t ext4 /dev/vda /mnt && echo np-data > /mnt/np.txt && sync && umount /mnt", "np writes np.txt")
    out = run(con, "mount -t ext4 /dev/vda /mnt && cat /mnt/np.txt; umount /mnt", "np reads it back")
    check("np-data" in out, "nonpersistent: the guest reads its write back while powered on")
    check(fs_files(image) == (0, before), "nonpersistent: the partition unchanged, e2fsck clean")
    con = power_cycle(m, "np")
    out = run(con, "mount -t ext4 /dev/vda /mnt && ls /mnt; umount /mnt", "np after power-on")
    check("np.txt" not in out and "hello.txt" in out, "nonpersistent: gone after power-off and on")
    lg.detach(m)
    m.cmd("vm stop np")
    m.cmd("vm destroy np")

    con = boot(m, "ud", "ata0p1,mode=undoable")
    run(con, "mount -t ext4 /dev/vda /mnt && echo ud-one > /mnt/ud1.txt && sync && umount /mnt", "ud writes ud1.txt")
    con = power_cycle(m, "ud")
    out = run(con, "mount -t ext4 /dev/vda /mnt && cat /mnt/ud1.txt; umount /mnt", "ud after power-on")
    check("ud-one" in out, "undoable: the redo log survives power-off")
    check(fs_files(image) == (0, before), "undoable: the partition unchanged before commit")
    lg.detach(m)
    m.cmd("vm stop ud")
    out = m.cmd("vm discard ud")
    check("KiB of redo log dropped" in out, "vm discard: %r" % out.strip()[:80])
    m.cmd("vm start ud")
    con = reattach(m, "ud", 2)
    out = run(con, "mount -t ext4 /dev/vda /mnt && ls /mnt && echo ud-two > /mnt/ud2.txt && sync && umount /mnt",
              "ud after discard")
    check("ud1.txt" not in out, "undoable: discarded writes are gone")
    lg.detach(m)
    out = m.cmd("vm commit ud")
    check("vm commit: ud is running" in out, "vm commit refuses a running VM: %r" % out.strip()[:80])
    m.cmd("vm stop ud")
    out = m.cmd("vm commit ud")
    check("KiB of redo log written to the partition" in out, "vm commit: %r" % out.strip()[:80])
    rc, after = fs_files(image)
    check(rc == 0 and after.get("ud2.txt") == b"ud-two\n" and "ud1.txt" not in after,
          "undoable: after commit the host's e2fsck is clean and debugfs reads ud2.txt")
    out = m.cmd("vm commit ud")
    check("0 KiB of redo log written" in out, "a second commit has nothing left: %r" % out.strip()[:80])
    m.cmd("vm destroy ud")

    con = boot(m, "tiny", "ata0p2,mode=nonpersistent,redo=64K")
    out = run(con, "dd if=/dev/zero of=/dev/vda bs=4096 count=64 conv=fsync 2>&1", "a write beyond the redo cap fails",
              want_status=1)
    out = run(con, "dd if=/dev/vda bs=4096 count=1 2>/dev/null | md5sum", "tiny still reads")
    lg.detach(m)
    info = m.cmd("vm info tiny")
    check("disk 0: redo log 64 of 64 KiB" in info, "vm info: the redo log is full at its cap")
    m.cmd("vm stop tiny")
    m.cmd("vm destroy tiny")


def guest_part(m):
    guest_checks(m)
    out = m.cmd("vm list")
    check(re.search(r"^reader\s+stopped", out, re.M) is not None, "the console answers, `vm list` shows reader")


def ide_checks(m):
    """The write-then-read-back test through the emulated PIIX3 IDE
    controller: ata_piix with DMA, mkfs and fsck in the guest, e2fsck and
    debugfs from the host, a second VM reading back."""
    image = m.disks[0]
    con = boot(m, "ide", "ata0p1,type=ide")
    out = run(con, "cat /sys/block/sda/size; cat /sys/class/ata_device/dev1.0/dma_mode; "
              "cat /sys/block/sda/device/model", "ata_piix found sda")
    check(str(MAIL_SECTORS) in out and "XFER_MW_DMA_2" in out and "hv86 HARDDISK" in out,
          "sda: the partition's %d sectors, hv86's model, multiword DMA 2 (%r)" % (MAIL_SECTORS, out.strip()))
    run(con, "mkfs.ext4 -q -F -L idetest /dev/sda", "mkfs.ext4 on the IDE disk")
    run(con, "mount -t ext4 /dev/sda /mnt && seq 1 60000 > /mnt/ide.txt && cp /bin/busybox /mnt/busybox && sync",
        "write files")
    ide_md5 = hashlib.md5("".join("%d\n" % i for i in range(1, 60001)).encode()).hexdigest()
    run(con, "umount /mnt && echo 3 > /proc/sys/vm/drop_caches && mount -t ext4 /dev/sda /mnt", "remount")
    out = run(con, "/mnt/busybox md5sum /mnt/ide.txt; umount /mnt", "run busybox read back by DMA")
    check(ide_md5 in out, "the guest reads its file back, with a program read from the IDE disk")
    out = run(con, "grep ata_piix /proc/interrupts", "ata_piix in /proc/interrupts")
    found = re.search(r"^\s*14:\s+(\d+)\s+IO-APIC\s+14-edge\s+ata_piix", out, re.M)
    check(found is not None and int(found.group(1)) > 0,
          "IDE interrupts on IO-APIC input 14, edge-triggered, counting: %r" % out.strip())
    out = run(con, "e2fsck -fn /dev/sda 2>&1", "e2fsck in the guest")
    check("idetest: " in out, "the guest's e2fsck checks its new file system (%r)" % out[-80:])
    out = run(con, "dd if=/dev/zero of=/dev/sda bs=512 seek=%d count=1 2>&1" % MAIL_SECTORS,
              "a write past the end fails", want_status=1)
    lg.detach(m)
    info = m.cmd("vm info ide")
    check(re.search(r"disk 0: ata0p1, persistent, %d sectors; IDE primary master .*writes [1-9].*flushes [1-9]"
                    % MAIL_SECTORS, info) is not None, "vm info counts the IDE writes and flushes")
    check("bad PRD tables 0" in info, "Linux's PRD tables all good")
    m.cmd("vm stop ide")
    m.cmd("vm destroy ide")

    part = partition(image, MAIL_START, MAIL_SECTORS)
    fsck = subprocess.run(["e2fsck", "-fn", part], capture_output=True, text=True)
    check(fsck.returncode == 0, "host e2fsck -fn: clean after the IDE guest (%s)" % fsck.stdout.strip().split("\n")[-1])
    check(hashlib.md5(debugfs_cat(part, "ide.txt")).hexdigest() == ide_md5, "debugfs reads the guest's ide.txt")
    os.remove(part)

    con = boot(m, "ide2", "ata0p1,type=ide,mode=ro")
    out = run(con, "mount -t ext4 -o ro /dev/sda /mnt && md5sum /mnt/ide.txt; umount /mnt", "a new VM reads back")
    check(ide_md5 in out, "persistent through IDE: a new VM reads the file back")
    run(con, "dd if=/dev/zero of=/dev/sda bs=512 count=1 conv=fsync 2>&1", "a write to a ro IDE disk fails",
        want_status=1)
    lg.detach(m)
    m.cmd("vm stop ide2")
    m.cmd("vm destroy ide2")


def hostile_checks(m):
    """tests/guests/diskattack.c, a hostile guest kernel, against a virtio
    disk on ata0p2 and an IDE disk on ata0p3: its own checks of hv86's
    answers must all pass; from the host, the only sectors of the image
    that changed are the two partitions' last ones, which hold the
    guest's patterns; hv86 and its console carry on."""
    from test_guests_hv86 import guest_output, vm_states
    image = m.disks[0]
    (p2, n2), (p3, n3) = WEB, FTP
    before = sectors(image, 0, os.path.getsize(image) // 512)
    out = m.cmd('vm create atk kernel=diskattack mem=16M cmdline="vsect=%d isect=%d" disk=ata0p2 disk=ata0p3,type=ide'
                % (n2, n3))
    check("created" in out, "vm create atk (diskattack, a virtio and an IDE disk)")
    m.cmd("vm start atk")
    for _ in range(120):
        if vm_states(m).get("atk", ("?",))[0] == "stopped":
            break
        time.sleep(1)
    state = vm_states(m).get("atk", ("?", ""))
    check(state[0] == "stopped" and "code 0" in state[1], "diskattack ran to its end: %s" % (state,))
    lines = [l for l in guest_output(m, "atk").split("\n") if re.match(r"^(PASS|FAIL|DONE)", l)]
    for l in lines:
        if l.startswith("FAIL"):
            check(False, "diskattack: " + l)
    check(any(re.match(r"DONE pass=(\d+) fail=0", l) and int(l.split("=")[1].split()[0]) >= 30 for l in lines),
          "diskattack: every check passed (%s)" % (lines[-1] if lines else "no output"))
    info = m.cmd("vm info atk")
    check(re.search(r"disk 0: ata0p2.* errors [1-9].*bad chains [1-9]", info) is not None,
          "vm info counts the virtio errors and bad chains")
    check(re.search(r"disk 1: ata0p3.* errors [1-9].*bad PRD tables [1-9]", info) is not None,
          "vm info counts the IDE errors and bad PRD tables")
    m.cmd("vm destroy atk")
    after = sectors(image, 0, os.path.getsize(image) // 512)
    changed = [i for i in range(len(before) // 512) if before[i * 512:(i + 1) * 512] != after[i * 512:(i + 1) * 512]]
    check(changed == [p2 + n2 - 1, p3 + n3 - 1], "only the partitions' last sectors changed: %s" % changed[:8])
    want2 = bytes((0xA5 + i * 7) & 0xFF for i in range(512))
    want3 = bytes((0x5A + i * 7) & 0xFF for i in range(512))
    check(after[(p2 + n2 - 1) * 512:(p2 + n2) * 512] == want2, "ata0p2's last sector holds the virtio pattern")
    check(after[(p3 + n3 - 1) * 512:(p3 + n3) * 512] == want3, "ata0p3's last sector holds the IDE pattern")
    check("atk" not in m.cmd("vm list"), "the console carries on")


def main():
    parts = sys.argv[1:] or ["console", "guest", "modes", "ide", "hostile"]
    # Each part boots its own hv86 with fresh copies of the disks, so that
    # one part's leftovers cannot hide another's bug. (Run in one hv86 after
    # the console part, the modes part's last Linux boot once stalled after
    # "console enabled", with the polled ATA driver; see docs/storage.md.)
    for name, fn in (("console", console_checks), ("modes", mode_checks), ("guest", guest_part), ("ide", ide_checks),
                     ("hostile", hostile_checks)):
        if name not in parts:
            continue
        m = Machine("qemu", mem_mib=512).start()
        try:
            fn(m)
        finally:
            m.stop()
    print("test_disk: %d failure(s)" % len(failures))
    for f in failures:
        print("  FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
