#!/usr/bin/env python3
"""Networking under hv86 against the same guests under QEMU alone (docs/net.md).

usage: net_bench.py [REPEAT]      (make bench-net; REPEAT defaults to 1)

Two figures, each natively and under hv86 in one run, then hv86/native:

  tcp    guest-to-guest TCP throughput: guest b runs `nc -l -p 5000 |
         wc -c`, guest a sends TCP_MIB MiB of zeros with `dd | nc`; timed
         by a's own clock (/proc/uptime, 10 ms) around the pipeline; b's
         count must be all of it.
         Natively: two QEMU processes, each guest with QEMU's virtio-net
         (virtio-net-pci), joined by `-netdev socket` (QEMU copies the
         frames over a TCP connection on the host's loopback). Under hv86:
         both guests as VMs of one hv86 on the internal switch lan (hv86's
         virtio-net and switch). Not the same machine: natively each guest
         has its own QEMU and so its own host CPU; under hv86 both share
         one virtual CPU, as VMs of one consolidated server do.
  http   harness-to-guest HTTP requests per second: this harness fetches
         the web image's index page (258 bytes) over a new connection per
         request, one at a time, for HTTP_SECONDS. Natively: one guest
         with QEMU's virtio-net on QEMU's user-mode network (slirp) and a
         port forward; under hv86: the web guest on switch wan, bridged to
         hv86's e1000 on the same user-mode network and port forward. The
         same path outside the guest (slirp, the forward); inside, QEMU's
         virtio-net versus QEMU's e1000 + hv86's driver, switch and
         virtio-net. Also the time to fetch big.bin (2 MiB) once, as MiB/s.

The guests: build/linux/linux.bz with the shell image (tcp) or the web
image (http), 64 MiB, the same command line. With REPEAT > 1 each figure
is the best of REPEAT. Exits 1 if a figure could not be taken.
"""
import hashlib
import http.client
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from hvmachine import BUILD, Machine, free_port  # noqa: E402
from linuxguest import NativeLinux, attach, detach  # noqa: E402

TCP_MIB = 32
HTTP_SECONDS = 15
BOOT_TIMEOUT = 900
WWW = os.path.join(BUILD, "linux", "www")


def tcp_send(sender, dst):
    """MiB/s, as the sender's clock says, of TCP_MIB MiB from sender (a
    LinuxConsole at its prompt) to the nc listening at dst."""
    st, out = sender.run("a=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero bs=64k count=%d 2>/dev/null | "
                         "nc %s 5000; echo T $a $(cut -d' ' -f1 /proc/uptime)" % (TCP_MIB * 16, dst), 900)
    m = re.search(r"T (\d+\.\d+) (\d+\.\d+)", out)
    if st or not m:
        raise RuntimeError("the transfer failed: %r" % out)
    return TCP_MIB / max(float(m.group(2)) - float(m.group(1)), 0.01)


# The receiver: busybox's small nc ends its connection when its own stdin
# ends (and a background job's stdin is /dev/null), so it gets a pipe that
# stays open; it counts what arrived. In a subshell: run() appends "; ...".
LISTEN = "(sleep 900 | nc -l -p 5000 | wc -c >/tmp/got &)"


def tcp_check(receiver):
    """The receiver got all TCP_MIB MiB (its nc has ended)."""
    for _ in range(30):
        st, out = receiver.run("cat /tmp/got 2>/dev/null")
        if out.strip():
            break
        time.sleep(1)
    if out.strip() != str(TCP_MIB * 1048576):
        raise RuntimeError("the receiver counted %r bytes, not %d" % (out.strip(), TCP_MIB * 1048576))


def http_rate(port):
    """(requests per second over HTTP_SECONDS, MiB/s of one big.bin fetch)."""
    index = open(os.path.join(WWW, "index.html"), "rb").read()
    want = open(os.path.join(WWW, "big.md5")).read().split()[0]

    def get(path):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("GET", path)
        body = c.getresponse().read()
        c.close()
        return body
    deadline = time.monotonic() + 300
    while True:  # the first answer: httpd and the forward are up
        try:
            get("/")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < HTTP_SECONDS:
        if get("/") != index:
            raise RuntimeError("a wrong page")
        n += 1
    rate = n / (time.monotonic() - t0)
    t0 = time.monotonic()
    big = get("/big.bin")
    secs = time.monotonic() - t0
    if hashlib.md5(big).hexdigest() != want:
        raise RuntimeError("big.bin's md5 is not the build's")
    return rate, len(big) / 1048576 / secs


# ---------------------------------------------------------------- natively

def native_tcp():
    port = free_port()
    nets = [["-netdev", "socket,id=n0,listen=127.0.0.1:%d" % port],
            ["-netdev", "socket,id=n0,connect=127.0.0.1:%d" % port]]
    guests = []
    try:
        for i, (ip, net) in enumerate((("10.0.0.2/24", nets[0]), ("10.0.0.1/24", nets[1]))):
            g = NativeLinux("shell", cmdline="console=ttyS0 ip=" + ip, extra_args=net + [
                "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:%02x" % (i + 1)]).start()
            guests.append(g)
            if i == 0:
                time.sleep(1)  # listening before the other connects
        for g in guests:
            g.wait_ready(BOOT_TIMEOUT)
        guests[0].console.run(LISTEN)
        time.sleep(1)
        rate = tcp_send(guests[1].console, "10.0.0.2")
        tcp_check(guests[0].console)
        return rate
    finally:
        for g in guests:
            g.stop()


def native_http():
    port = free_port()
    g = NativeLinux("web", cmdline="console=ttyS0 ip=dhcp", extra_args=[
        "-nic", "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:%d-:80" % port]).start()
    try:
        g.wait_ready(BOOT_TIMEOUT)
        return http_rate(port)
    finally:
        g.stop()


# ---------------------------------------------------------------- under hv86

def hv86_all():
    """One hv86: web on wan (the uplink), a and b on lan. Returns
    (tcp MiB/s, (req/s, MiB/s))."""
    port = free_port()
    m = Machine("qemu", mem_mib=512, extra_args=[
        "-nic", "user,model=e1000,hostfwd=tcp:127.0.0.1:%d-10.0.2.15:80" % port]).start()
    try:
        m.cmd("net create wan uplink=e1000")
        m.cmd("net create lan")
        for name, image, ip, sw in (("web", "web", "dhcp", "wan"), ("a", "shell", "10.0.0.1/24", "lan"),
                                    ("b", "shell", "10.0.0.2/24", "lan")):
            out = m.cmd('vm create %s kernel=linux initrd=%s mem=64M cmdline="console=ttyS0 ip=%s" net=%s'
                        % (name, image, ip, sw))
            if "created" not in out:
                raise RuntimeError(out)
        step("hv86: web boots")
        m.cmd("vm start web")
        con = attach(m, "web")
        con.wait_ready(BOOT_TIMEOUT)
        detach(m)
        step("hv86: http")
        http = http_rate(port)
        step("hv86: a and b boot")
        m.cmd("vm stop web")  # idle or not, the TCP figure is a and b's alone
        m.cmd("vm start a")
        m.cmd("vm start b")
        b = attach(m, "b")
        b.wait_ready(BOOT_TIMEOUT)
        b.run(LISTEN)
        detach(m)
        a = attach(m, "a")
        a.wait_ready(BOOT_TIMEOUT)
        step("hv86: tcp")
        tcp = tcp_send(a, "10.0.0.2")
        step("hv86: tcp done")
        detach(m)
        tcp_check(attach(m, "b"))
        detach(m)
        print(m.cmd("net"))
        return tcp, http
    finally:
        m.stop()


def best(runs, key):
    vals = [r for r in runs if r is not None]
    return max(vals, key=key) if vals else None


def step(what):
    print("  [%s] %s" % (time.strftime("%H:%M:%S"), what), flush=True)


def attempt(what, fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 -- report and go on with the other figures
        print("  %-12s no figure: %s: %s" % (what, type(e).__name__, str(e).split("\n")[0][:160]), flush=True)
        return None


def main():
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    print("net bench: Debian's i386 kernel, busybox images, 64 MiB guests, QEMU TCG", flush=True)
    nat_tcp, nat_http, hv = [], [], []
    only = os.environ.get("NET_BENCH_ONLY", "")  # one part (native-tcp, native-http, hv86) while debugging
    for _ in range(repeat):
        nat_tcp.append(attempt("native tcp", native_tcp) if only in ("", "native-tcp") else None)
        nat_http.append(attempt("native http", native_http) if only in ("", "native-http") else None)
        hv.append(attempt("hv86", hv86_all) if only in ("", "hv86") else None)
        print("  run: native tcp %s, native http %s, hv86 %s" % (nat_tcp[-1], nat_http[-1], hv[-1]), flush=True)
    nt = best(nat_tcp, lambda r: r)
    nh = best(nat_http, lambda r: r[0])
    ht = best([r and r[0] for r in hv], lambda r: r)
    hh = best([r and r[1] for r in hv], lambda r: r[0])
    print("net bench results%s:" % (" (best of %d)" % repeat if repeat > 1 else ""))
    rows = (("tcp MiB/s", nt, ht),
            ("http req/s", nh and nh[0], hh and hh[0]),
            ("http MiB/s", nh and nh[1], hh and hh[1]))
    for what, n, h in rows:
        print("  %-11s native %8s  hv86 %8s  hv86/native %s" % (
            what, "%.2f" % n if n else "-", "%.2f" % h if h else "-", "%.2f" % (h / n) if n and h else "-"))
    return 0 if all(n and h for _, n, h in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
