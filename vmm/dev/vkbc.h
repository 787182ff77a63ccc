/*
 * Minimal emulated i8042 keyboard controller (0x60 data, 0x64 status and
 * command), a controller with no keyboard and no mouse plugged in.
 * Source: IBM PC/AT Technical Reference (8042 commands), IBM PS/2 Hardware
 * Interface Technical Reference (AUX commands 0xA7-0xA9, 0xD2-0xD4).
 *
 * Why a working controller and not an absent one: Linux reboots by pulsing
 * the reset line (0xFE to 0x64), and its kb_wait() only gives up after a
 * long spin if the status register floats at 0xFF. So the controller answers
 * every command; what is missing is only the devices behind it. A byte sent
 * to the keyboard or (via 0xD4) to the mouse gets the controller's "no
 * device" answer at once: 0xFE with the time-out status bit, so Linux's
 * atkbd/psmouse probes fail in microseconds instead of waiting for a reply.
 * The i8042 probe itself (flush, 0xAA self-test, CTR read/write, AUX loop
 * 0xD3 and its IRQ12 test) succeeds: Linux ends with an idle KBD and AUX port.
 *
 * Reset: command 0xFE (any 0xF0-0xFF pulse with bit 0 clear) and command
 * 0xD1 writing an output port with bit 0 clear call the owner's reset hook
 * (in hv86 vm_request_reset: the VM reboots once the OUT is done). Nothing
 * else about the controller changes: the owner resets it with the machine.
 *
 * The A20 gate is here too: the output port's bit 1 (command 0xD1, and
 * 0xDD/0xDF) and System Control Port A at 0x92 (PS/2 "fast A20": bit 1
 * A20, bit 0 a reset pulse on a 0 -> 1 write; reads give the gate's
 * state in bit 1). Both drive one gate and the last write wins, as in
 * QEMU and Bochs 2.7, the references the test guests are compared with
 * (IBM PS/2 Hardware Interface Technical Reference, System Control Port A).
 * vkbc_a20 says whether it is open.
 */
#ifndef HV86_VMM_DEV_VKBC_H
#define HV86_VMM_DEV_VKBC_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/dev/iobus.h"
#include "vmm/dev/vdev.h"

#define VKBC_DATA      0x60
#define VKBC_CMD       0x64   /* read: status */
#define VKBC_PORT92    0x92   /* System Control Port A */
#define VKBC_IRQ_KBD   1
#define VKBC_IRQ_AUX   12
#define VKBC_QUEUE     16     /* output bytes queued, the head is in OBF */

struct vkbc {
    uint8_t ctr;                 /* controller command byte ("CTR") */
    uint8_t outport;             /* output port (bit 0 reset, bit 1 A20) */
    uint8_t port92;              /* System Control Port A as last written (bit 0 reset pulse) */
    bool a20;                    /* the A20 gate: open after reset */
    uint8_t pending_cmd;         /* command awaiting its data byte, 0 = none */
    bool last_was_cmd;           /* status A2: last write went to 0x64 */
    uint8_t queue[VKBC_QUEUE];   /* output buffer bytes */
    uint8_t qflags[VKBC_QUEUE];  /* status bits (AUX, time-out) for each byte */
    unsigned qhead, qcount;
    bool irq1, irq12;            /* line levels given to irq */
    vdev_reset_fn reset;
    struct vdev_irq irq;         /* IRQ1 and IRQ12 */
    void *opaque;                /* passed to reset */
    uint64_t resets;             /* reset pulses requested */
};

/* vkbc_init - the controller after POST: CTR 0x65 (translate, system flag,
 * keyboard IRQ on, AUX off), output port 0x03 (reset inactive, A20 on),
 * empty buffer, IRQ1 and IRQ12 low. reset (may be NULL) is called with
 * opaque, from inside the port write, on each pulse of the CPU reset line;
 * it must only record the request (vdev_reset_fn). irq carries IRQ1 and
 * IRQ12. Allocates nothing; cannot fail. */
void vkbc_init(struct vkbc *kbc, vdev_reset_fn reset, void *opaque, struct vdev_irq irq);
/* vkbc_reset - the POST state of vkbc_init again (port 0x92 reads 0),
 * reset hook, irq and the resets count kept (a machine reset). Lowers a
 * raised IRQ1/IRQ12. */
void vkbc_reset(struct vkbc *kbc);

/* vkbc_attach - claim ports 0x60 (data), 0x64 (status/command) and 0x92
 * (System Control Port A), byte accesses. Returns 0 or iobus_register's
 * E_EXIST or E_NOMEM. */
int vkbc_attach(struct vkbc *kbc, struct iobus *bus);

/* vkbc_a20 - whether the A20 gate is open: bit 1 of the last write to the
 * output port or to port 0x92 (or 0xDD/0xDF). Open after reset. Inline:
 * the run loop asks at every exit (vcpu.c sync_a20). */
static inline bool vkbc_a20(const struct vkbc *kbc) { return kbc->a20; }

#endif
