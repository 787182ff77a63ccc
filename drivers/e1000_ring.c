/*
 * The 82540EM's legacy descriptor rings (drivers/e1000.h): set up, receive,
 * transmit. No kernel services, so the unit test (tests/unit/test_e1000.c)
 * runs this file against a fake register file and rings in host memory.
 *
 * Ownership (§3.2.6, §3.3.1): receive descriptors from RDH up to RDT - 1
 * are the NIC's; it writes a frame and sets DD, advances RDH; we take
 * descriptors in order from rx_next while DD is set, clear DD and give
 * each back by moving RDT onto it. Transmit descriptors from TDH up to
 * TDT - 1 are the NIC's; we fill at tx_tail and move TDT past it; the NIC
 * sets DD (we ask with RS) when it is done, and tx_clean follows. One
 * entry of each ring stays empty so that head == tail means empty.
 *
 * Trust: the NIC writes length, status and errors of a receive descriptor
 * from what came on the wire. A length is used only after it is checked
 * against E1000_BUF_BYTES and VSW_FRAME_MIN/MAX; the buffer address is
 * ours (rewritten at every give-back), never read back from the NIC.
 */
#include "drivers/e1000.h"
#include "kernel/kernel.h"
#include "net/vswitch.h"

/* The NIC reads and writes descriptors in memory behind the compiler's
 * back: order our descriptor accesses against the register accesses and
 * the DD tests (x86 keeps stores in order; the compiler need not). */
#define dma_barrier() __asm__ volatile("" ::: "memory")

uint32_t e1000_reg_read(const struct e1000 *e, uint32_t reg)
{
    return *(volatile uint32_t *)(e->page[reg >> 12] + (reg & 0xFFF));
}

void e1000_reg_write(struct e1000 *e, uint32_t reg, uint32_t v)
{
    dma_barrier();
    *(volatile uint32_t *)(e->page[reg >> 12] + (reg & 0xFFF)) = v;
}

void e1000_rings_init(struct e1000 *e, uint32_t rx_ring_pa, uint32_t tx_ring_pa, const uint32_t *rx_pa,
                      const uint32_t *tx_pa)
{
    for (unsigned i = 0; i < E1000_RX_DESCS; i++)
        e->rx[i] = (struct e1000_rx_desc){.addr = rx_pa[i]};
    for (unsigned i = 0; i < E1000_TX_DESCS; i++)
        e->tx[i] = (struct e1000_tx_desc){.addr = tx_pa[i]};
    e->rx_next = 0;
    e->rx_skip = false;
    e->tx_tail = e->tx_clean = 0;
    e1000_reg_write(e, E1000_RDBAL, rx_ring_pa);
    e1000_reg_write(e, E1000_RDBAH, 0);
    e1000_reg_write(e, E1000_RDLEN, E1000_RX_DESCS * sizeof(struct e1000_rx_desc));
    e1000_reg_write(e, E1000_RDH, 0);
    e1000_reg_write(e, E1000_RDT, E1000_RX_DESCS - 1);
    e1000_reg_write(e, E1000_TDBAL, tx_ring_pa);
    e1000_reg_write(e, E1000_TDBAH, 0);
    e1000_reg_write(e, E1000_TDLEN, E1000_TX_DESCS * sizeof(struct e1000_tx_desc));
    e1000_reg_write(e, E1000_TDH, 0);
    e1000_reg_write(e, E1000_TDT, 0);
}

/* What one completed receive descriptor holds; counts the bad ones. A frame
 * without EOP is oversize (it did not fit one 2 KiB buffer): it and every
 * descriptor up to its EOP are dropped, counted once. */
static bool rx_good(struct e1000 *e, const struct e1000_rx_desc *d)
{
    bool eop = d->status & E1000_RXD_EOP;
    if (e->rx_skip) {
        e->rx_skip = !eop;
        return false;
    }
    if (!eop) {
        e->st.rx_oversize++;
        e->rx_skip = true;
        return false;
    }
    if (d->errors) {
        e->st.rx_errors++;
        return false;
    }
    if (d->length < VSW_FRAME_MIN) {
        e->st.rx_runt++;
        return false;
    }
    if (d->length > VSW_FRAME_MAX || d->length > E1000_BUF_BYTES) {
        e->st.rx_oversize++;
        return false;
    }
    return true;
}

unsigned e1000_rx_poll(struct e1000 *e, unsigned budget,
                       int (*deliver)(void *ctx, const uint8_t *frame, uint32_t len), void *ctx)
{
    unsigned n = 0;
    while (n < budget) {
        unsigned i = e->rx_next;
        struct e1000_rx_desc *d = &e->rx[i];
        if (!(*(volatile uint8_t *)&d->status & E1000_RXD_DD))
            break;
        dma_barrier();
        if (rx_good(e, d)) {
            uint32_t len = d->length;
            if (deliver(ctx, e->rx_buf[i], len) < 0)
                e->st.rx_unbridged++;
            e->st.rx_frames++;
            e->st.rx_bytes += len;
        }
        d->status = 0;
        d->errors = 0;
        d->length = 0;
        e->rx_next = (i + 1) % E1000_RX_DESCS;
        e1000_reg_write(e, E1000_RDT, i); /* the NIC may fill it again */
        n++;
    }
    return n;
}

unsigned e1000_tx_reclaim(struct e1000 *e)
{
    unsigned n = 0;
    while (e->tx_clean != e->tx_tail && (*(volatile uint8_t *)&e->tx[e->tx_clean].status & E1000_TXD_DD)) {
        dma_barrier();
        e->tx[e->tx_clean].status = 0;
        e->tx_clean = (e->tx_clean + 1) % E1000_TX_DESCS;
        n++;
    }
    return n;
}

uint8_t *e1000_tx_slot(struct e1000 *e)
{
    if ((e->tx_tail + 1) % E1000_TX_DESCS == e->tx_clean)
        return NULL;
    return e->tx_buf[e->tx_tail];
}

int e1000_tx_post(struct e1000 *e, uint32_t len)
{
    if (!e1000_tx_slot(e))
        return E_NOSPC;
    if (len < VSW_FRAME_MIN || len > VSW_FRAME_MAX) {
        e->st.tx_bad++;
        return E_INVAL;
    }
    struct e1000_tx_desc *d = &e->tx[e->tx_tail];
    d->length = (uint16_t)len;
    d->cso = d->css = 0;
    d->special = 0;
    d->status = 0;
    d->cmd = E1000_TXD_EOP | E1000_TXD_IFCS | E1000_TXD_RS;
    e->tx_tail = (e->tx_tail + 1) % E1000_TX_DESCS;
    e1000_reg_write(e, E1000_TDT, e->tx_tail);
    e->st.tx_frames++;
    e->st.tx_bytes += len;
    return 0;
}
