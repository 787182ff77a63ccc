/*
 * Unit tests for drivers/e1000_ring.c: the 82540EM's legacy receive and
 * transmit rings, against a model of the NIC's side written here from the
 * 8254x manual (§3.2.6 and §3.3.1: the NIC owns descriptors from head to
 * tail - 1, writes a received frame over as many 2 KiB buffers as it needs
 * with EOP on the last, sets DD, advances the head; transmits from TDH to
 * TDT and sets DD where RS asks). The register file is host memory.
 *
 * Bad input from the wire: runt, oversize (in one descriptor or spread over
 * several), descriptors with error bits: counted, not delivered, their
 * descriptors given back. Then 20,000 random frames with random damage and
 * the ring's invariants after each poll.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "drivers/e1000.h"
#include "kernel/kernel.h"
#include "net/vswitch.h"

#define RXN E1000_RX_DESCS
#define TXN E1000_TX_DESCS

/* ---------------------------------------------------------------- the device model */

struct rig {
    struct e1000 e;
    uint8_t *regs;                         /* E1000_MMIO_PAGES pages */
    struct e1000_rx_desc rx[RXN];
    struct e1000_tx_desc tx[TXN];
    uint8_t rxb[RXN][E1000_BUF_BYTES], txb[TXN][E1000_BUF_BYTES];
    uint32_t rx_pa[RXN], tx_pa[TXN];
    /* what the driver delivered */
    unsigned delivered;
    uint32_t last_len;
    uint8_t last[VSW_FRAME_MAX];
    int deliver_rc;
};

static uint32_t reg(struct rig *r, uint32_t off) { return e1000_reg_read(&r->e, off); }
static void set_reg(struct rig *r, uint32_t off, uint32_t v) { e1000_reg_write(&r->e, off, v); }

static struct rig *rig_new(void)
{
    struct rig *r = calloc(1, sizeof(*r));
    r->regs = calloc(E1000_MMIO_PAGES, 4096);
    for (unsigned i = 0; i < E1000_MMIO_PAGES; i++)
        r->e.page[i] = r->regs + i * 4096;
    r->e.rx = r->rx;
    r->e.tx = r->tx;
    for (unsigned i = 0; i < RXN; i++) {
        r->e.rx_buf[i] = r->rxb[i];
        r->rx_pa[i] = 0x100000 + i * E1000_BUF_BYTES; /* what the NIC would DMA to: checked below */
    }
    for (unsigned i = 0; i < TXN; i++) {
        r->e.tx_buf[i] = r->txb[i];
        r->tx_pa[i] = 0x200000 + i * E1000_BUF_BYTES;
    }
    e1000_rings_init(&r->e, 0x3000, 0x3400, r->rx_pa, r->tx_pa);
    return r;
}

static void rig_free(struct rig *r)
{
    free(r->regs);
    free(r);
}

/* The NIC's index of a descriptor's buffer, from the address it was given. */
static unsigned rx_buf_index(struct rig *r, unsigned d)
{
    uint64_t a = r->rx[d].addr - 0x100000;
    assert_true(a % E1000_BUF_BYTES == 0 && a / E1000_BUF_BYTES < RXN);
    return (unsigned)(a / E1000_BUF_BYTES);
}

/*
 * The NIC receives len bytes of frame (CRC stripped) with error bits err:
 * over as many descriptors as it needs from RDH, if it owns that many
 * (else the frame is missed, as MPC would count). Returns descriptors used.
 */
static unsigned nic_rx(struct rig *r, const uint8_t *frame, uint32_t len, uint8_t err)
{
    unsigned need = len ? (len + E1000_BUF_BYTES - 1) / E1000_BUF_BYTES : 1;
    unsigned head = reg(r, E1000_RDH), tail = reg(r, E1000_RDT);
    unsigned owned = (tail + RXN - head) % RXN;
    if (owned < need)
        return 0;
    for (unsigned k = 0; k < need; k++) {
        unsigned d = (head + k) % RXN;
        uint32_t part = MIN(len - k * E1000_BUF_BYTES, (uint32_t)E1000_BUF_BYTES);
        if (!len)
            part = 0;
        memcpy(r->rxb[rx_buf_index(r, d)], frame + k * E1000_BUF_BYTES, part);
        r->rx[d].length = (uint16_t)part;
        r->rx[d].errors = k == need - 1 ? err : 0;
        r->rx[d].status = E1000_RXD_DD | (k == need - 1 ? E1000_RXD_EOP : 0);
    }
    set_reg(r, E1000_RDH, (head + need) % RXN);
    return need;
}

/* The NIC sends what lies between TDH and TDT (DD on each); returns frames. */
static unsigned nic_tx(struct rig *r, unsigned max)
{
    unsigned n = 0, head = reg(r, E1000_TDH), tail = reg(r, E1000_TDT);
    while (head != tail && n < max) {
        struct e1000_tx_desc *d = &r->tx[head];
        assert_int_equal(d->cmd & (E1000_TXD_EOP | E1000_TXD_RS | E1000_TXD_IFCS),
                         E1000_TXD_EOP | E1000_TXD_RS | E1000_TXD_IFCS);
        assert_true(d->length >= VSW_FRAME_MIN && d->length <= VSW_FRAME_MAX);
        assert_int_equal(d->addr, r->tx_pa[head]);
        d->status = E1000_TXD_DD;
        head = (head + 1) % TXN;
        n++;
    }
    set_reg(r, E1000_TDH, head);
    return n;
}

static int deliver(void *ctx, const uint8_t *frame, uint32_t len)
{
    struct rig *r = ctx;
    assert_true(len >= VSW_FRAME_MIN && len <= VSW_FRAME_MAX);
    r->delivered++;
    r->last_len = len;
    memcpy(r->last, frame, len);
    return r->deliver_rc;
}

static void fill(uint8_t *f, uint32_t len, unsigned seed)
{
    for (uint32_t i = 0; i < len; i++)
        f[i] = (uint8_t)(seed * 31 + i * 7);
}

/* ---------------------------------------------------------------- tests */

static void test_init(void **state)
{
    struct rig *r = rig_new();
    assert_int_equal(reg(r, E1000_RDBAL), 0x3000);
    assert_int_equal(reg(r, E1000_RDLEN), RXN * 16);
    assert_int_equal(reg(r, E1000_RDLEN) % 128, 0);
    assert_int_equal(reg(r, E1000_RDH), 0);
    assert_int_equal(reg(r, E1000_RDT), RXN - 1); /* all but one descriptor the NIC's */
    assert_int_equal(reg(r, E1000_TDBAL), 0x3400);
    assert_int_equal(reg(r, E1000_TDLEN), TXN * 16);
    assert_int_equal(reg(r, E1000_TDH), 0);
    assert_int_equal(reg(r, E1000_TDT), 0);
    for (unsigned i = 0; i < RXN; i++)
        assert_int_equal(r->rx[i].addr, r->rx_pa[i]);
    assert_int_equal(sizeof(struct e1000_rx_desc), 16);
    assert_int_equal(sizeof(struct e1000_tx_desc), 16);
    rig_free(r);
}

static void test_rx_good(void **state)
{
    struct rig *r = rig_new();
    uint8_t f[VSW_FRAME_MAX];
    assert_int_equal(e1000_rx_poll(&r->e, E1000_BUDGET, deliver, r), 0);
    for (unsigned i = 0; i < 3; i++) {
        uint32_t len = i == 0 ? 60 : i == 1 ? 1514 : VSW_FRAME_MAX;
        fill(f, len, i);
        assert_int_equal(nic_rx(r, f, len, 0), 1);
        assert_int_equal(e1000_rx_poll(&r->e, E1000_BUDGET, deliver, r), 1);
        assert_int_equal(r->last_len, len);
        assert_memory_equal(r->last, f, len);
        assert_int_equal(reg(r, E1000_RDT), i); /* the descriptor went back to the NIC */
        assert_int_equal(r->rx[i].status, 0);
    }
    assert_int_equal(r->e.st.rx_frames, 3);
    assert_int_equal(r->e.st.rx_bytes, 60 + 1514 + VSW_FRAME_MAX);
    rig_free(r);
}

/* Frames the wire may bring that the switch must never see. */
static void test_rx_bad_input(void **state)
{
    struct rig *r = rig_new();
    static uint8_t f[3 * E1000_BUF_BYTES];
    fill(f, sizeof(f), 9);
    assert_int_equal(nic_rx(r, f, 0, 0), 1);                      /* empty */
    assert_int_equal(nic_rx(r, f, VSW_FRAME_MIN - 1, 0), 1);      /* runt */
    assert_int_equal(nic_rx(r, f, VSW_FRAME_MAX + 1, 0), 1);      /* oversize, one buffer */
    assert_int_equal(nic_rx(r, f, 2 * E1000_BUF_BYTES + 100, 0), 3); /* oversize over three buffers */
    assert_int_equal(nic_rx(r, f, 100, 0x01), 1);                 /* CRC error */
    assert_int_equal(nic_rx(r, f, 100, 0x80), 1);                 /* RX data error */
    assert_int_equal(nic_rx(r, f, 200, 0), 1);                    /* and a good one after them */
    assert_int_equal(e1000_rx_poll(&r->e, E1000_BUDGET, deliver, r), 9);
    assert_int_equal(r->delivered, 1);
    assert_int_equal(r->last_len, 200);
    assert_int_equal(r->e.st.rx_runt, 2);
    assert_int_equal(r->e.st.rx_oversize, 2);
    assert_int_equal(r->e.st.rx_errors, 2);
    assert_int_equal(r->e.st.rx_frames, 1);
    assert_int_equal(reg(r, E1000_RDT), 8);
    assert_false(r->e.rx_skip);
    rig_free(r);
}

/* A poll takes at most its budget; the ring wraps; the switch refusing a
 * frame is counted, and the descriptor still goes back. */
static void test_rx_budget_wrap(void **state)
{
    struct rig *r = rig_new();
    uint8_t f[64];
    unsigned sent = 0;
    for (unsigned round = 0; round < 10; round++) {
        while (nic_rx(r, f, sizeof(f), 0))
            fill(f, sizeof(f), ++sent);
        assert_int_equal((reg(r, E1000_RDT) + RXN - reg(r, E1000_RDH)) % RXN, 0); /* the NIC owns none */
        assert_int_equal(e1000_rx_poll(&r->e, E1000_BUDGET, deliver, r), E1000_BUDGET);
        assert_int_equal(e1000_rx_poll(&r->e, 1000, deliver, r), RXN - 1 - E1000_BUDGET);
        assert_int_equal(e1000_rx_poll(&r->e, 1000, deliver, r), 0);
    }
    assert_int_equal(r->delivered, sent);
    r->deliver_rc = E_NOSPC;
    assert_int_equal(nic_rx(r, f, sizeof(f), 0), 1);
    assert_int_equal(e1000_rx_poll(&r->e, 1000, deliver, r), 1);
    assert_int_equal(r->e.st.rx_unbridged, 1);
    rig_free(r);
}

static void test_tx(void **state)
{
    struct rig *r = rig_new();
    unsigned posted = 0;
    for (uint8_t *b; (b = e1000_tx_slot(&r->e)); posted++) {
        fill(b, 100, posted);
        assert_int_equal(e1000_tx_post(&r->e, 100), 0);
        assert_int_equal(reg(r, E1000_TDT), (posted + 1) % TXN);
    }
    assert_int_equal(posted, TXN - 1); /* one entry stays empty */
    assert_int_equal(e1000_tx_post(&r->e, 100), E_NOSPC);
    assert_int_equal(e1000_tx_reclaim(&r->e), 0);
    assert_int_equal(nic_tx(r, 10), 10);
    assert_int_equal(e1000_tx_reclaim(&r->e), 10);
    assert_non_null(e1000_tx_slot(&r->e));
    /* a bad length from the switch side is refused, nothing posted */
    uint32_t tdt = reg(r, E1000_TDT);
    assert_int_equal(e1000_tx_post(&r->e, VSW_FRAME_MIN - 1), E_INVAL);
    assert_int_equal(e1000_tx_post(&r->e, VSW_FRAME_MAX + 1), E_INVAL);
    assert_int_equal(reg(r, E1000_TDT), tdt);
    assert_int_equal(r->e.st.tx_bad, 2);
    assert_int_equal(nic_tx(r, 1000), TXN - 1 - 10);
    assert_int_equal(e1000_tx_reclaim(&r->e), TXN - 1 - 10);
    assert_int_equal(r->e.st.tx_frames, TXN - 1);
    rig_free(r);
}

/* Random frames, lengths and damage; random budgets. After each poll: the
 * NIC never owns the descriptor the driver reads next, every delivered
 * frame was a good one, and the counters add up. */
static void test_rx_random(void **state)
{
    struct rig *r = rig_new();
    static uint8_t f[3 * E1000_BUF_BYTES];
    unsigned good = 0, bad = 0, missed = 0;
    srand(13);
    for (unsigned i = 0; i < 20000; i++) {
        uint32_t len = (uint32_t)rand() % (rand() % 8 ? VSW_FRAME_MAX + 16 : sizeof(f));
        uint8_t err = rand() % 10 ? 0 : (uint8_t)(1u << (rand() % 8));
        fill(f, len, i);
        if (!nic_rx(r, f, len, err))
            missed++;
        else if (!err && len >= VSW_FRAME_MIN && len <= VSW_FRAME_MAX)
            good++;
        else
            bad++;
        if (rand() % 25 == 0)
            e1000_rx_poll(&r->e, 1 + (unsigned)rand() % 40, deliver, r);
        unsigned head = reg(r, E1000_RDH), tail = reg(r, E1000_RDT);
        assert_true(head < RXN && tail < RXN);
        assert_int_equal(r->e.rx_next, (tail + 1) % RXN); /* the driver reads right after what it gave back */
    }
    while (e1000_rx_poll(&r->e, 1000, deliver, r))
        ;
    assert_int_equal(r->delivered, good);
    assert_int_equal(r->e.st.rx_frames, good);
    assert_int_equal(r->e.st.rx_runt + r->e.st.rx_oversize + r->e.st.rx_errors, bad);
    printf("random: %u good, %u bad, %u missed (the ring was full)\n", good, bad, missed);
    assert_true(missed > 0 && good > 1000 && bad > 1000);
    rig_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_rx_good),
        cmocka_unit_test(test_rx_bad_input),
        cmocka_unit_test(test_rx_budget_wrap),
        cmocka_unit_test(test_tx),
        cmocka_unit_test(test_rx_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
