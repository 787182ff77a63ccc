#!/usr/bin/env python3
"""A guest on a switch bridged to hv86's e1000 (docs/net.md), under QEMU TCG
with QEMU's user-mode network (slirp: 10.0.2.0/24, gateway and DHCP server
10.0.2.2) behind the NIC and a port forward 127.0.0.1:PORT -> 10.0.2.15:80.

console   `net create wan uplink=e1000` (a second switch on the same NIC,
          an unknown NIC and an unknown option refused); `net` shows the
          uplink port, its link up and the NIC's counters.
dhcp      the web image (build/linux/web.img) as VM web on wan with
          ip=dhcp: busybox udhcpc gets slirp's first lease, 10.0.2.15, with
          the gateway 10.0.2.2 and a name server, through the switch and
          the e1000 both ways.
in        from outside in: this harness fetches the index page and big.bin with curl
          (2 MiB) from the guest's httpd through the port forward, QEMU's
          e1000, hv86's driver, the switch and the guest's virtio-net; the
          md5 is the build's (build/linux/www/big.md5), not the test's.
out       from inside out: the harness serves a file (2 MiB of other
          random bytes) with Python's http.server on 127.0.0.1; the guest
          fetches it from 10.0.2.2 (slirp's alias for the host) with wget,
          and md5sum in the guest matches.
flood     netflood (a hostile guest kernel) floods wan with broadcast
          frames as fast as it can; meanwhile big.bin still comes out and
          the harness's file still goes in, md5s right; `net` shows the
          flooder's drops.
counters  `net` afterwards: the uplink received and sent more than the file
          each way, no errors, the guest's port learned its address; the
          console answers; `net destroy wan` refused while web has a port,
          and works once it is gone (the NIC can then be attached again).
"""
import functools
import hashlib
import http.server
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvmachine import BUILD, Machine, free_port  # noqa: E402
import linuxguest as lg  # noqa: E402

failures = []
WWW = os.path.join(BUILD, "linux", "www")


def check(ok, what):
    print("%s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    if not ok:
        failures.append(what)


def refused(m, line, reason):
    out = m.cmd(line)
    check(out.startswith("error:") and re.search(reason, out) is not None, "refused: %s (%s)" % (line, out))


def fetch(url, timeout=300):
    """The body curl gets from url (raises OSError if curl fails)."""
    r = subprocess.run(["curl", "-sS", "--fail", "--max-time", str(timeout), url], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if r.returncode:
        raise OSError("curl %s: exit %d %s" % (url, r.returncode, r.stderr.decode(errors="replace").strip()))
    return r.stdout


def fetch_retry(url, deadline):
    """The guest's httpd starts before its DHCP lease is in: retry until it answers."""
    err = None
    while time.monotonic() < deadline:
        try:
            return fetch(url, 120)
        except OSError as e:
            err = e
            time.sleep(2)
    raise err


def host_server(data):
    """http.server on 127.0.0.1 serving data as /host.bin; returns (server, port)."""
    d = tempfile.mkdtemp(prefix="hv86-www-")
    with open(os.path.join(d, "host.bin"), "wb") as f:
        f.write(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=d)
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def uplink_counters(net):
    rx = re.search(r"rx (\d+) frames (\d+) bytes, dropped: runt (\d+), oversize (\d+), errors (\d+), not bridged (\d+)", net)
    tx = re.search(r"tx (\d+) frames (\d+) bytes, bad (\d+)", net)
    return rx, tx


def flood_checks(m, port, want_md5, hport, data):
    """netflood (tests/guests/netflood.c) floods wan with broadcast frames as
    fast as it can; meanwhile both directions through the uplink still
    carry 2 MiB with the right md5, and `net` shows the flooder's drops."""
    from test_guests_hv86 import guest_output, vm_states
    check("created" in m.cmd("vm create flood kernel=netflood mem=16M net=wan"), "vm create flood kernel=netflood net=wan")
    m.cmd("vm start flood")
    text = ""
    for _ in range(60):
        text = guest_output(m, "flood")
        if "FLOOD-START" in text:
            break
        time.sleep(1)
    check("FLOOD-START" in text, "netflood floods wan")
    t0 = time.monotonic()
    big = fetch("http://127.0.0.1:%d/big.bin" % port, 600)
    check(hashlib.md5(big).hexdigest() == want_md5,
          "during the flood, outside in: big.bin in %.1f s, md5 is the build's" % (time.monotonic() - t0))
    con = lg.attach(m, "web")
    con.wait_ready(60)
    status, out = con.run("wget -q -O /tmp/host.bin http://10.0.2.2:%d/host.bin && md5sum /tmp/host.bin" % hport, 600)
    check(status == 0 and hashlib.md5(data).hexdigest() in out, "during the flood, inside out: md5 matches (%r)" % out)
    con.run("rm /tmp/host.bin")
    lg.detach(m)
    net = m.cmd("net")
    print(net)
    f = re.search(r"port \d+\s+flood\.0\s+\S+\s+up\s+learned \d+\n\s+in  (\d+) frames \d+ bytes, errors \d+, drops (\d+)", net)
    check(f is not None and int(f.group(1)) > 1000 and int(f.group(2)) > 0,
          "net: the flooder sent %s frames, %s of its copies dropped" % (f and f.group(1), f and f.group(2)))
    check(vm_states(m).get("flood", ("?",))[0] == "running", "the flooder still runs, the console answers")
    m.cmd("vm stop flood")
    m.cmd("vm destroy flood")


def main():
    port = free_port()
    want_md5 = open(os.path.join(WWW, "big.md5")).read().split()[0]
    index = open(os.path.join(WWW, "index.html"), "rb").read()
    m = Machine("qemu", mem_mib=512, extra_args=[
        "-nic", "user,model=e1000,hostfwd=tcp:127.0.0.1:%d-10.0.2.15:80" % port]).start()
    srv = None
    try:
        check(re.search(r"e1000: e1000 at 00:\d\d\.0, 52:54:00:12:34:56, irq \d+, link up", m.log) is not None,
              "boot log: the 82540EM found, its address and link")
        check("created switch wan (uplink e1000)" in m.cmd("net create wan uplink=e1000"), "net create wan uplink=e1000")
        refused(m, "net create wan2 uplink=e1000", "already the uplink of switch wan")
        refused(m, "net create wan3 uplink=e1000.7", "no host NIC 'e1000.7'")
        refused(m, "net create wan4 upstream=e1000", "unknown option 'upstream=e1000'")
        net = m.cmd("net")
        check(re.search(r"switch wan \(uplink e1000\): 1 ports", net) is not None, "net: wan has the uplink port")
        check(re.search(r"port 0\s+e1000\s+52:54:00:12:34:56\s+up", net) is not None, "net: the uplink port is up")
        check(re.search(r"uplink e1000: 82540EM 00:\d\d\.0 irq \d+, link up 1000 Mb/s", net) is not None,
              "net: the NIC's link is up at 1000 Mb/s")

        out = m.cmd('vm create web kernel=linux initrd=web mem=64M cmdline="console=ttyS0 ip=dhcp" net=wan')
        check("created" in out, "vm create web initrd=web ip=dhcp net=wan")
        m.cmd("vm start web")
        con = lg.attach(m, "web")
        con.wait_ready(900)
        lease = re.search(r"init: eth0 dhcp (\S+)/(\S+) router (\S+) dns (\S*)", con.transcript)
        check(lease is not None and lease.group(1) == "10.0.2.15" and lease.group(3) == "10.0.2.2",
              "web: DHCP lease %s" % (lease and lease.group(0)))
        check("init: httpd serves /www on port 80" in con.transcript, "web: httpd started")
        status, out = con.run("ip route; cat /etc/resolv.conf")
        check(status == 0 and "default via 10.0.2.2 dev eth0" in out and "nameserver 10.0.2.3" in out,
              "web: default route via 10.0.2.2, resolv.conf from the lease (%r)" % out)
        lg.detach(m)

        t0 = time.monotonic()
        page = fetch_retry("http://127.0.0.1:%d/" % port, time.monotonic() + 300)
        check(page == index, "outside in: the index page, %d bytes" % len(page))
        t0 = time.monotonic()
        big = fetch("http://127.0.0.1:%d/big.bin" % port)
        secs = time.monotonic() - t0
        check(hashlib.md5(big).hexdigest() == want_md5,
              "outside in: big.bin, %d bytes in %.1f s, md5 %s is the build's" % (len(big), secs, want_md5))

        data = random.Random(31).randbytes(2 * 1024 * 1024)
        srv, hport = host_server(data)
        con = lg.attach(m, "web")
        con.wait_ready(60)
        status, out = con.run("wget -q -O /tmp/host.bin http://10.0.2.2:%d/host.bin && md5sum /tmp/host.bin" % hport, 600)
        check(status == 0 and hashlib.md5(data).hexdigest() in out,
              "inside out: web fetched the harness's file from 10.0.2.2, md5 matches (%r)" % out)
        con.run("rm /tmp/host.bin")
        lg.detach(m)

        flood_checks(m, port, want_md5, hport, data)

        net = m.cmd("net")
        print(net)
        rx, tx = uplink_counters(net)
        check(rx is not None and int(rx.group(2)) > len(data) and rx.group(3) == rx.group(4) == rx.group(5) == "0",
              "net: the uplink received more than the harness's file, no runt, oversize or error")
        check(tx is not None and int(tx.group(2)) > len(big) and tx.group(3) == "0",
              "net: the uplink sent more than big.bin, none bad")
        check(re.search(r"port \d+\s+web\.0\s+\S+\s+up\s+learned 1", net) is not None, "net: web's port learned its address")
        refused(m, "net destroy wan", "has ports")
        m.cmd("vm stop web")
        m.cmd("vm destroy web")
        check(m.cmd("net destroy wan") == "" and "no switches" in m.cmd("net"), "net destroy wan after the VM")
        check("created switch wan (uplink e1000)" in m.cmd("net create wan uplink=e1000"),
              "the NIC is free again: net create wan uplink=e1000")
    finally:
        if srv:
            srv.shutdown()
        m.stop()
    print("test_uplink: %d failure(s)" % len(failures))
    for f in failures:
        print("  FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
