/*
 * A VM's serial line output on its way to COM1 (contract in vmm/vm.h).
 *
 * The guest's UART transmits instantly (vmm/dev/vuart.h); COM1 does not
 * (115200 baud is 11.5 KiB/s, and it is shared with the management console).
 * Between the two sits the VM's scrollback, a ring of VM_SCROLLBACK bytes:
 *
 *   - the vCPU thread appends (vm_console_output) and never waits;
 *   - scroll_sent is how far COM1 has been given the output: the console
 *     thread replays the ring up to the head at `console NAME`, then the
 *     "vm-console" thread forwards the rest, at the pace of the line, for the
 *     one VM that is attached (`live`);
 *   - a guest more than VM_SCROLLBACK bytes ahead of the line has its oldest
 *     unsent bytes overwritten: the forwarder skips them, adds them to
 *     scroll_lost and prints one marker with their count, as a terminal
 *     server with a bounded buffer (xl console, QEMU's ringbuf chardev) does.
 *
 * So a guest can neither hold up its own vCPU, nor the console thread for
 * longer than one scrollback at line speed, nor any other VM. Guest output
 * is data, never a length or an index: nothing here trusts its contents.
 */
#include "drivers/serial.h"
#include "kernel/kernel.h"
#include "kernel/sched.h"
#include "kernel/spinlock.h"
#include "mgmt/cmd.h"
#include "vmm/vm.h"

#define FORWARD_CHUNK 256 /* bytes copied out of the ring per lock hold */

static spinlock_t out_lock = SPINLOCK_INIT("vm-console");
static struct wait_queue out_wq = WAIT_QUEUE_INIT; /* the forwarder waits for output */
static struct vm *live;                            /* attached VM, forwarded by the thread */
static volatile bool forwarding;                   /* the thread is writing a chunk of live's */

void vm_console_output(struct vm *vm, const uint8_t *buf, uint32_t len)
{
    uint32_t fl = spin_lock_irqsave(&out_lock);
    for (uint32_t i = 0; i < len; i++)
        vm->scroll[(vm->scroll_head + i) % VM_SCROLLBACK] = buf[i];
    vm->scroll_head += len;
    bool wake = vm == live;
    spin_unlock_irqrestore(&out_lock, fl);
    if (wake)
        wait_queue_wake_all(&out_wq);
}

/* Copy the next unsent bytes of vm (before `until`) into buf; bytes the
 * guest overwrote before they were sent are skipped and counted in *lost.
 * Returns the bytes copied (at most FORWARD_CHUNK). out_lock held. */
static uint32_t take_locked(struct vm *vm, uint64_t until, uint8_t *buf, uint64_t *lost)
{
    *lost = 0;
    if (vm->scroll_head - vm->scroll_sent > VM_SCROLLBACK) {
        *lost = vm->scroll_head - VM_SCROLLBACK - vm->scroll_sent;
        vm->scroll_sent += *lost;
        vm->scroll_lost += *lost;
    }
    if (until <= vm->scroll_sent)
        return 0;
    uint32_t at = (uint32_t)(vm->scroll_sent % VM_SCROLLBACK);
    uint32_t n = (uint32_t)MIN(MIN(until - vm->scroll_sent, (uint64_t)FORWARD_CHUNK), (uint64_t)(VM_SCROLLBACK - at));
    memcpy(buf, vm->scroll + at, n);
    vm->scroll_sent += n;
    return n;
}

static void write_chunk(struct cmd_out *out, const uint8_t *buf, uint32_t n, uint64_t lost)
{
    if (lost)
        cmd_printf(out, "\n[hv86: %llu bytes of output lost: the guest outran the console line]\n",
                   (unsigned long long)lost);
    if (n)
        out->write((const char *)buf, n, out->ctx);
}

static void serial_out(const char *buf, size_t len, void *ctx) { serial_write(buf, len); }
static struct cmd_out line_out = { serial_out, NULL, 0 };

/* The "vm-console" thread: forward the live VM's new output to COM1,
 * blocking on the line (serial_write) so that nobody else has to. */
static void forward_thread(void *arg)
{
    uint8_t buf[FORWARD_CHUNK];
    for (;;) {
        uint32_t fl = spin_lock_irqsave(&out_lock), n = 0;
        uint64_t lost = 0;
        if (live)
            n = take_locked(live, live->scroll_head, buf, &lost);
        forwarding = n || lost;
        if (!forwarding) {
            wait_queue_sleep(&out_wq, &out_lock, &fl);
            spin_unlock_irqrestore(&out_lock, fl);
            continue;
        }
        spin_unlock_irqrestore(&out_lock, fl);
        write_chunk(&line_out, buf, n, lost);
    }
}

void vm_console_replay(struct vm *vm, struct cmd_out *out)
{
    uint8_t buf[FORWARD_CHUNK];
    uint32_t fl = spin_lock_irqsave(&out_lock);
    uint64_t until = vm->scroll_head, lost;
    vm->scroll_sent = until - MIN(until, (uint64_t)VM_SCROLLBACK);
    for (;;) {
        uint32_t n = take_locked(vm, until, buf, &lost);
        if (!n && !lost)
            break;
        spin_unlock_irqrestore(&out_lock, fl);
        write_chunk(out, buf, n, lost);
        fl = spin_lock_irqsave(&out_lock);
    }
    spin_unlock_irqrestore(&out_lock, fl);
}

int vm_console_live(struct vm *vm)
{
    static int thread;

    if (!thread && (thread = thread_create("vm-console", forward_thread, NULL)) < 0) {
        int err = thread;
        thread = 0;
        return err;
    }
    uint32_t fl = spin_lock_irqsave(&out_lock);
    live = vm;
    spin_unlock_irqrestore(&out_lock, fl);
    wait_queue_wake_all(&out_wq);
    return 0;
}

void vm_console_unlive(struct vm *vm)
{
    uint32_t fl = spin_lock_irqsave(&out_lock);
    bool was = live == vm;
    if (was)
        live = NULL;
    spin_unlock_irqrestore(&out_lock, fl);
    /* Let the chunk in flight out before the caller's "[detached]": at most
     * FORWARD_CHUNK bytes and a marker behind a full transmit ring. */
    while (was && forwarding)
        thread_sleep(1);
}
