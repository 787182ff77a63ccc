/*
 * Emulated NS16550A UART (COM1 at 0x3F8, IRQ4 by default; base and IRQ are
 * per instance). Source: TI PC16550D datasheet (register map, FIFO control,
 * interrupt priorities, loopback), IBM PC wiring for OUT2.
 *
 * Transmission is instantaneous: a byte written to THR goes straight to the
 * owner's tx callback (in loopback, to the receiver), so THR and the TX FIFO
 * are always empty by the time the guest looks again; LSR.THRE/TEMT stay set.
 * Baud rate, word length and parity are kept for the guest to read back but
 * do not pace anything.
 *
 * Reception: vuart_receive() puts bytes in the RX FIFO (16 bytes, or the
 * single RBR when FIFOs are off). Bytes arriving to a full FIFO are lost,
 * LSR.OE is set and rx_overruns counts them. The character timeout (CTI) is
 * not timed: a FIFO holding fewer bytes than the trigger level reports CTI
 * at once, as if four character times had passed - keystrokes are sparse.
 *
 * IRQ line = (an enabled interrupt is pending) AND MCR.OUT2 AND NOT loopback;
 * on a PC OUT2 gates the UART's INTRPT onto the bus, and in loopback the
 * datasheet holds OUT2 inactive.
 */
#ifndef HV86_VMM_DEV_VUART_H
#define HV86_VMM_DEV_VUART_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/dev/iobus.h"
#include "vmm/dev/vdev.h"

#define VUART_COM1_BASE 0x3F8
#define VUART_COM1_IRQ  4
#define VUART_PORTS     8     /* registers at base..base+7 */
#define VUART_FIFO_SIZE 16    /* bytes, 16550A */
#define VUART_LINE_QUEUE 4096 /* bytes typed ahead on the console line (power of two) */

/* A byte the guest transmitted (outside loopback). */
typedef void (*vuart_tx_fn)(void *opaque, uint8_t byte);

struct vuart {
    uint16_t base;
    int irq_no;
    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
    uint16_t divisor;
    uint8_t rx[VUART_FIFO_SIZE];
    unsigned rx_head, rx_count;
    bool thre_pending;       /* THRE interrupt latched (see datasheet IIR table) */
    bool irq_level;          /* last level given to irq */
    vuart_tx_fn tx;
    struct vdev_irq irq;
    void *opaque;            /* passed to tx */
    uint64_t tx_bytes, rx_bytes, rx_overruns;
    /* The console line's type-ahead: bytes vuart_feed() accepted that the
     * receiver has no room for yet; they move in as the guest reads RBR. */
    uint8_t line[VUART_LINE_QUEUE];
    unsigned line_head, line_count;
};

/* Reset state (datasheet "Reset" table) at base/irq_no; the modem inputs
 * read as a connected terminal (CTS, DSR, DCD asserted). tx may be NULL. */
void vuart_init(struct vuart *u, uint16_t base, int irq_no, vuart_tx_fn tx, void *opaque,
                struct vdev_irq irq);
void vuart_reset(struct vuart *u);

/* Claim the 8 ports at u->base. Returns 0 or an iobus error. */
int vuart_attach(struct vuart *u, struct iobus *bus);

/* Bytes typed at the guest's console. Returns how many were stored; the rest
 * were lost to overrun (counted, LSR.OE set). */
size_t vuart_receive(struct vuart *u, const uint8_t *buf, size_t len);

/*
 * Bytes typed at the guest's console through a paced line (the hv86 console,
 * like a terminal server with flow control): what does not fit in the
 * receiver waits in the line queue (VUART_LINE_QUEUE bytes) and moves in as
 * the guest reads, so nothing is lost to overrun while the guest keeps up
 * eventually. Returns how many bytes were accepted (fewer only when the
 * queue is full).
 */
size_t vuart_feed(struct vuart *u, const uint8_t *buf, size_t len);

/* Free room in the receiver, bytes (lets the owner pace a paste). */
size_t vuart_rx_space(const struct vuart *u);

#endif
