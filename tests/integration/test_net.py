#!/usr/bin/env python3
"""Guest-to-guest networking (docs/net.md) under QEMU TCG: two Debian
Linux guests on one internal switch of hv86.

console   `net` with no switch; `net create lan`; a second `net create
          lan`, a bad name, an unknown action; `vm create` with net= naming
          no switch, an unknown option, a malformed, multicast or zero
          mac=, a mac= already in use on the switch, one net= too many:
          each refused with a one-line reason, nothing created.
guests    VMs a (ip=10.0.0.1/24) and b (ip=10.0.0.2/24, mac= given) on
          lan: each guest's eth0 has the address hv86 gives (a's the
          default derived from its name, 02:crc32(name):00; b's its mac=);
          b serves a file of known md5 (seq 1 100000) with busybox httpd;
          b pings a and a pings b; a fetches the file with busybox wget and
          its md5 matches; `vm info` shows each NIC; `net` shows both ports
          up, with frames and bytes in and out, no errors, both addresses
          learned.
flood     tests/guests/netflood.c, a hostile guest kernel, joins lan as c:
          its checks of hv86's answers (runt, oversize, outside-RAM frames
          counted and completed; a writable transmit buffer: NEEDS_RESET
          until reset) all pass, then it floods the switch with broadcast
          frames as fast as it can. Meanwhile a fetches the file from b
          again and its md5 matches, and a pings b; `net` shows c's drops,
          `vm info c` its transmit errors and bad chain; the console
          answers. `net destroy lan` is refused while ports remain, and
          works after the VMs are destroyed.
"""
import hashlib
import os
import re
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import Machine  # noqa: E402
import linuxguest as lg  # noqa: E402

failures = []
FILE = "".join("%d\n" % i for i in range(1, 100001)).encode()  # seq 1 100000
B_MAC = "02:00:5e:00:00:0b"


def check(ok, what):
    print("%s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    if not ok:
        failures.append(what)


def default_mac(name, index=0):
    """vmm/vnic.c vnic_default_mac: 02, CRC-32 of the name big-endian, the index."""
    h = zlib.crc32(name.encode())
    return "02:%02x:%02x:%02x:%02x:%02x" % (h >> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255, index)


def refused(m, line, reason):
    out = m.cmd(line)
    check(out.startswith("error:") and re.search(reason, out) is not None, "refused: %s (%s)" % (line, out))


def console_checks(m):
    check("no switches" in m.cmd("net"), "`net` with no switch says so")
    check("created switch lan" in m.cmd("net create lan"), "net create lan")
    refused(m, "net create lan", "exists")
    refused(m, "net create bad.name", "bad name")
    refused(m, "net crete lan", "not `net`")
    base = 'vm create x kernel=linux initrd=shell mem=64M'
    refused(m, base + " net=lann", "no switch named 'lann'")
    refused(m, base + " net=lan,macc=02:00:00:00:00:01", "unknown net option 'macc=")
    refused(m, base + " net=lan,mac=02:00:00:00:00", "not an address")
    refused(m, base + " net=lan,mac=03:00:00:00:00:01", "multicast or zero")
    refused(m, base + " net=lan,mac=00:00:00:00:00:00", "multicast or zero")
    refused(m, base + " net=lan net=lan net=lan net=lan", "at most 3 net=")
    check("x " not in m.cmd("vm list"), "nothing was created")


def boot(m, name, ip, extra=""):
    out = m.cmd('vm create %s kernel=linux initrd=shell mem=64M cmdline="console=ttyS0 ip=%s" net=lan%s'
                % (name, ip, extra))
    check("created" in out, "vm create %s net=lan%s" % (name, extra))


def run(con, cmd, what, timeout=300):
    status, out = con.run(cmd, timeout)
    check(status == 0, "%s (status %s)" % (what, status))
    return out


def guest_checks(m):
    boot(m, "a", "10.0.0.1/24")
    boot(m, "b", "10.0.0.2/24", ",mac=" + B_MAC)
    refused(m, 'vm create c kernel=linux initrd=shell mem=64M net=lan,mac=' + B_MAC, "in use on switch lan by port b.0")
    m.cmd("vm start a")
    m.cmd("vm start b")
    con = lg.attach(m, "b")
    con.wait_ready(900)
    check("init: eth0 10.0.0.2/24 " + B_MAC in con.transcript, "b's eth0: 10.0.0.2/24 with its mac=")
    run(con, "mkdir -p /www && seq 1 100000 > /www/seq.txt && httpd -p 80 -h /www", "b: busybox httpd serves /www")
    lg.detach(m)
    con = lg.attach(m, "a")
    con.wait_ready(900)
    check("init: eth0 10.0.0.1/24 " + default_mac("a") in con.transcript,
          "a's eth0: 10.0.0.1/24 with the default address " + default_mac("a"))
    out = run(con, "ping -c 3 -W 5 10.0.0.2", "a pings b")
    check("3 packets received" in out, "a: 3 of 3 replies from b")
    run(con, "wget -q -O /tmp/seq.txt http://10.0.0.2/seq.txt", "a fetches seq.txt from b's httpd")
    out = run(con, "md5sum /tmp/seq.txt", "md5sum")
    check(hashlib.md5(FILE).hexdigest() in out, "the fetched file's md5 is seq 1 100000's")
    lg.detach(m)
    con = lg.attach(m, "b")
    con.wait_ready(60)
    out = run(con, "ping -c 3 -W 5 10.0.0.1", "b pings a")
    check("3 packets received" in out, "b: 3 of 3 replies from a")
    lg.detach(m)
    info = m.cmd("vm info a")
    check(re.search(r"nic 0: %s on switch lan \(port a\.0\); virtio-net 00:07\.0 io c200 irq 7" % default_mac("a"), info)
          is not None, "vm info a: the NIC")
    rx = re.search(r"nic 0: rx (\d+) frames (\d+) bytes, 0 dropped; tx (\d+) frames (\d+) bytes, 0 errors; bad chains 0",
                   info)
    check(rx is not None and int(rx.group(2)) > len(FILE), "vm info a: rx counts the file, no errors")
    net = m.cmd("net")
    print(net)
    check(re.search(r"switch lan \(internal\): 2 ports", net) is not None, "net: lan has 2 ports")
    for port, mac in (("a.0", default_mac("a")), ("b.0", B_MAC)):
        check(re.search(r"port \d+\s+%s\s+%s\s+up\s+learned 1" % (re.escape(port), mac), net) is not None,
              "net: %s up, %s, its address learned" % (port, mac))
    check(len(re.findall(r"in  \d+ frames \d+ bytes, errors 0, drops 0", net)) == 2, "net: no input errors or drops")
    check(len(re.findall(r"out \d+ frames \d+ bytes, drops 0", net)) == 2, "net: no output drops")
    outs = [int(b) for b in re.findall(r"out \d+ frames (\d+) bytes", net)]
    check(len(outs) == 2 and max(outs) > len(FILE), "net: the file's bytes went out to a's port")


def flood_checks(m):
    from test_guests_hv86 import guest_output, vm_states
    out = m.cmd("vm create c kernel=netflood mem=16M net=lan")
    check("created" in out, "vm create c kernel=netflood net=lan")
    m.cmd("vm start c")
    text = ""
    for _ in range(60):
        text = guest_output(m, "c")
        if "FLOOD-START" in text:
            break
        time.sleep(1)
    lines = [l for l in text.split("\n") if re.match(r"^(PASS|FAIL)", l)]
    check("FLOOD-START" in text and len(lines) >= 12 and not [l for l in lines if l.startswith("FAIL")],
          "netflood: %d checks, none failed, then the flood (%s)" % (len(lines), [l for l in lines if "FAIL" in l]))
    con = lg.attach(m, "a")
    con.wait_ready(60)
    run(con, "wget -q -O /tmp/again.txt http://10.0.0.2/seq.txt", "during the flood: a fetches seq.txt again", 600)
    out = run(con, "md5sum /tmp/again.txt", "md5sum", 600)
    check(hashlib.md5(FILE).hexdigest() in out, "during the flood: the md5 matches")
    out = run(con, "ping -c 3 -W 5 10.0.0.2", "during the flood: a pings b", 600)
    check("3 packets received" in out or "2 packets received" in out, "during the flood: replies from b")
    lg.detach(m)
    net = m.cmd("net")
    print(net)
    c = re.search(r"port \d+\s+c\.0\s+\S+\s+up\s+learned (\d+)\n\s+in  (\d+) frames \d+ bytes, errors (\d+), drops (\d+)", net)
    check(c is not None and int(c.group(2)) > 1000 and int(c.group(4)) > 0,
          "net: c's port sent %s frames, %s of its copies dropped" % (c and c.group(2), c and c.group(4)))
    check(c is not None and int(c.group(1)) <= 64, "net: c's addresses learned at most 64 (%s)" % (c and c.group(1)))
    info = m.cmd("vm info c")
    check(re.search(r"nic 0: rx 0 frames 0 bytes, 0 dropped; tx \d+ frames \d+ bytes, 4 errors; bad chains 1", info)
          is not None, "vm info c: 4 transmit errors, 1 bad chain")
    check(vm_states(m).get("c", ("?",))[0] == "running", "c still floods, the console answers")
    m.cmd("vm stop c")
    m.cmd("vm destroy c")


def teardown(m):
    refused(m, "net destroy lan", "has ports")
    m.cmd("vm stop a")
    m.cmd("vm stop b")
    m.cmd("vm destroy a")
    m.cmd("vm destroy b")
    check(m.cmd("net destroy lan") == "" and "no switches" in m.cmd("net"), "net destroy lan after the VMs")


def main():
    m = Machine("qemu", mem_mib=512).start()
    try:
        console_checks(m)
        guest_checks(m)
        flood_checks(m)
        teardown(m)
    finally:
        m.stop()
    print("test_net: %d failure(s)" % len(failures))
    for f in failures:
        print("  FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
