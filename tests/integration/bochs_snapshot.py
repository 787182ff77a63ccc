"""A look inside hv86 running under Bochs, for a test that finds it stuck.

snapshot(proc, tmp, elf) breaks into Bochs's debugger (SIGINT; Bochs must
have been started with stdin a pipe), prints the CPU's registers, the PIC's
and the UART's state, saves the monitor's direct map (linear
DIRECTMAP_BASE.., where hv86's image and heap live) with `writemem`, and lets
Bochs go on. The saved memory becomes an ELF core file, so that gdb, with
hv86.elf's debug information, prints every thread (state, name, and a
backtrace of each switched-out one from its saved stack) and the scheduler's
queues. Returns the report as text; nothing here changes the machine's run
beyond the pause.
"""
import os
import re
import signal
import struct
import subprocess
import time

DIRECTMAP_BASE = 0xFC000000  # kernel/layout.h
DIRECTMAP_SIZE = 0x02400000

# gdb, on the core: every thread and the scheduler's state. A switched-out
# thread's stack holds (switch_context, boot/switch.S) edi esi ebx ebp and
# the return address into schedule(); its frame chain goes on from that ebp.
GDB_SCRIPT = r'''
set pagination off
set print pretty off
printf "ticks %llu, current thread %u '%s', need_resched %d, slice_left %u\n", ticks, current->id, current->name, need_resched, slice_left
printf "run queue: %u threads; serial rx %u..%u, tx %u..%u busy %d\n", runq.len, rx_tail, rx_head, tx_tail, tx_head, tx_busy
python
import gdb, struct
cur_eip, cur_ebp = CUR_EIP, CUR_EBP  # the CPU's, when Bochs stopped
names = ["runnable", "running", "blocked", "sleeping", "dead"]  # enum thread_state
t = gdb.parse_and_eval("all_threads")
while int(t):
    th = t.dereference()
    state = int(th["state"])
    print("thread %d %-14s %-9s cpu %d ticks, %d switches, wake_pending %d" % (
        int(th["id"]), th["name"].string(), names[state] if state < len(names) else str(state),
        int(th["cpu_ticks"]), int(th["switches"]), int(th["wake_pending"])))
    inf = gdb.selected_inferior()
    chain = []
    if state == 1 and cur_eip >= 0xFC000000:  # running monitor code: from the CPU's registers
        chain, ebp = [cur_eip], cur_ebp
    elif state != 1:
        sp = int(th["sp"])
        try:
            words = struct.unpack("<5I", bytes(inf.read_memory(sp, 20)))
            ebp, chain = words[3], [words[4]]
        except Exception as e:
            print("    stack unreadable at %#x: %s" % (sp, e))
    if chain:
        for _ in range(16):
            if not (0xFC000000 <= ebp < 0xFE400000):
                break
            try:
                nebp, nret = struct.unpack("<2I", bytes(inf.read_memory(ebp, 8)))
            except Exception:
                break
            chain.append(nret)
            ebp = nebp
        for pc in chain:
            sym = gdb.execute("info symbol %#x" % pc, to_string=True).split(" in section")[0].strip()
            sal = gdb.find_pc_line(pc)
            print("    %#010x %s (%s:%d)" % (pc, sym, sal.symtab.filename if sal.symtab else "?", sal.line))
    t = th["all_next"]
for i in range(int(gdb.parse_and_eval("sizeof(vms)/sizeof(vms[0])"))):
    vm = gdb.parse_and_eval("vms[%d]" % i)
    if int(vm):
        v = vm.dereference()
        print("vm %d %-12s state %s, vCPU thread %d, stop_req %d, pause_req %d, share requests %d" % (
            i, v["name"].string(), str(v["state"]), int(v["thread"]), int(v["stop_req"]), int(v["pause_req"]),
            int(v["mem"]["nreq"])))
end
'''


def _core(dump, path):
    """An ELF32 core file with one PT_LOAD: dump at DIRECTMAP_BASE."""
    ehdr_size, phdr_size = 52, 32
    off = ehdr_size + phdr_size
    ehdr = struct.pack("<4sBBBBB7sHHIIIIIHHHHHH", b"\x7fELF", 1, 1, 1, 0, 0, b"\0" * 7,
                       4, 3, 1, 0, ehdr_size, 0, 0, ehdr_size, phdr_size, 1, 40, 0, 0)
    phdr = struct.pack("<IIIIIIII", 1, off, DIRECTMAP_BASE, 0, len(dump), len(dump), 7, 0x1000)
    with open(path, "wb") as f:
        f.write(ehdr + phdr + dump)


def _debugger(proc, out_path, cmds, wait=20):
    """Send cmds to a stopped Bochs debugger; the text it printed for them
    (each command's output ends with the next "<bochs:N>" prompt)."""
    start = os.path.getsize(out_path)
    proc.stdin.write("".join(c + "\n" for c in cmds).encode())
    proc.stdin.flush()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with open(out_path, errors="replace") as f:
            f.seek(start)
            text = f.read()
        if text.count("<bochs:") >= len(cmds):
            return text
        time.sleep(0.2)
    with open(out_path, errors="replace") as f:
        f.seek(start)
        return f.read()


def snapshot(proc, tmp, elf):
    if proc is None or proc.poll() is not None or proc.stdin is None:
        return "bochs snapshot: Bochs is not running with a debugger pipe"
    out_path = os.path.join(tmp, "stdout")
    start = os.path.getsize(out_path)
    proc.send_signal(signal.SIGINT)
    time.sleep(1)
    dump_path = os.path.join(tmp, "directmap.bin")
    text = _debugger(proc, out_path, ["r", "info device \"pic\"",
                                      "writemem \"%s\" 0x%x 0x%x" % (dump_path, DIRECTMAP_BASE, DIRECTMAP_SIZE)],
                     wait=120)
    with open(out_path, errors="replace") as f:
        f.seek(start)
        stopped_at = f.read().split("<bochs:", 1)[0]
    _debugger(proc, out_path, ["c"], wait=0)
    report = [stopped_at.strip(), text.strip()]
    eip = re.search(r"rip: 00000000_([0-9a-f]{8})", text)
    ebp = re.search(r"rbp: 00000000_([0-9a-f]{8})", text)
    cur_eip, cur_ebp = (int(eip.group(1), 16), int(ebp.group(1), 16)) if eip and ebp else (0, 0)
    if os.path.exists(dump_path) and os.path.getsize(dump_path) == DIRECTMAP_SIZE:
        core = os.path.join(tmp, "hv86.core")
        with open(dump_path, "rb") as f:
            _core(f.read(), core)
        script = os.path.join(tmp, "threads.gdb")
        with open(script, "w") as f:
            f.write(GDB_SCRIPT.replace("CUR_EIP", str(cur_eip)).replace("CUR_EBP", str(cur_ebp)))
        r = subprocess.run(["gdb", "-batch", "-nx", "-x", script, elf, core], capture_output=True, text=True,
                           timeout=120)
        report.append(r.stdout.strip() + ("\n" + r.stderr.strip() if r.returncode else ""))
    else:
        report.append("bochs snapshot: writemem of the direct map failed")
    return "\n".join(report)
