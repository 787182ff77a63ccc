#!/usr/bin/env python3
"""mkwww.py DIR: the web image's /www (scripts/mkinitramfs.sh WWW=DIR).

  index.html  a page naming hv86 and the guest
  big.bin     WWW_BYTES bytes from a fixed seed (Python's Mersenne Twister,
              seed 13): random, so no layer's compression helps, and the
              same on every build
  big.md5     its md5 (md5sum's format), which the tests compare with what
              they fetched: the value comes from the build, not the test
"""
import hashlib
import os
import random
import sys

WWW_BYTES = 2 * 1024 * 1024
SEED = 13


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "index.html"), "w") as f:
        f.write("<html><head><title>hv86 web guest</title></head>\n"
                "<body><h1>Hello from a Linux guest of hv86</h1>\n"
                "<p>busybox httpd in a VM, through hv86's virtual switch and e1000 uplink.</p>\n"
                "<p><a href=\"big.bin\">big.bin</a> (%d bytes, md5 in big.md5)</p></body></html>\n" % WWW_BYTES)
    data = random.Random(SEED).randbytes(WWW_BYTES)
    with open(os.path.join(out, "big.bin"), "wb") as f:
        f.write(data)
    with open(os.path.join(out, "big.md5"), "w") as f:
        f.write("%s  big.bin\n" % hashlib.md5(data).hexdigest())


if __name__ == "__main__":
    main()
