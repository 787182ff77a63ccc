/*
 * virtio-net (vmm/dev/vnet.c) over the legacy virtio PCI transport
 * (vmm/dev/virtio.c), and the virtual switch (net/vswitch.c), driven as
 * Linux's virtio_pci_legacy and virtio_net drivers do, against fake guest
 * RAMs and a fake clock:
 *   - discovery: IDs 1AF4:1000, subsystem 1, class 02/00, BAR0 size,
 *     features MAC and STATUS, the configured MAC and LINK_UP in the
 *     device configuration;
 *   - two NICs on one switch: a broadcast and unicast replies go from one
 *     guest's transmit ring to the other's receive ring behind a zero
 *     virtio_net_hdr; used lengths, interrupts, counters;
 *   - bad transmits: runt, oversize, a buffer outside RAM (counted,
 *     dropped, completed); a device-writable buffer, a descriptor loop, an
 *     index past the queue (NEEDS_RESET); bad receive buffers: too small
 *     (counted, completed with length 0), device-readable (NEEDS_RESET); no
 *     buffers (the frame waits, the device stalls until the notify);
 *   - the switch alone: learning, filtering, flooding to every port but the
 *     ingress one and not to ports that are down, ageing after 300 s, a
 *     station moving, the per-port address limit, group source addresses,
 *     runts and oversize frames, per-sender shares of a queue (a flooder
 *     cannot take the room another sender needs), kicks only on an empty
 *     queue, removal forgetting a port's addresses, duplicate MACs, a full
 *     switch;
 *   - random traffic: 20,000 rounds of random descriptor tables in both
 *     guests' rings and random frames; the switch's invariants hold after
 *     each (queue counts, shares summing to counts, the address table's
 *     per-port counts).
 * Source: OASIS virtio v1.2 §4.1.4.10, §5.1; IEEE 802.1D-2004 §7.7-7.9.
 */
#include "tests/unit/test_vdev_common.h"
#include "net/vswitch.h"
#include "vmm/dev/vnet.h"
#include "vmm/dev/vpci.h"

#define RAM_BYTES   (1u << 20)
#define IO_A        0xC200
#define IO_B        0xC220
#define IRQ_A       7
#define IRQ_B       3
#define RXQ_PFN     0x10       /* receive rings at 0x10000 */
#define TXQ_PFN     0x20       /* transmit rings at 0x20000 */
#define QBYTES      (16u * VIRTIO_QUEUE_SIZE)
#define BUF_GPA     0x40000    /* receive buffers: 2 KiB each */
#define FRAME_GPA   0x80000    /* transmitted frames */

/* ---------------------------------------------------------------- kernel stubs */

void *kzalloc(size_t n) { return calloc(1, n); }
void kfree(void *p) { free(p); }
static int locks_held;
uint32_t spin_lock_irqsave(spinlock_t *l)
{
    assert_int_equal(l->locked, 0); /* never taken twice: a deadlock on hv86 */
    l->locked = 1;
    locks_held++;
    return 0;
}
void spin_unlock_irqrestore(spinlock_t *l, uint32_t flags)
{
    l->locked = 0;
    locks_held--;
}
static uint64_t now(void) { return fake_now_ns; }

/* ---------------------------------------------------------------- one guest with a NIC */

struct guest {
    uint8_t *ram;
    struct fake_ram fr;
    struct vpci pci;
    struct iobus bus;
    struct vnet nic;
    struct vsw_port *port;
    uint16_t io;
    int irq, line, raises, kicks;
    uint16_t rx_avail, tx_avail, rx_used_seen, tx_used_seen;
};

static struct vswitch *sw;
static struct guest ga, gb;

static void irq_set(void *o, int irq, int level)
{
    struct guest *g = o;
    assert_int_equal(irq, g->irq);
    g->raises += level && !g->line;
    g->line = level;
}
static void kick(void *o)
{
    assert_int_equal(locks_held, 1); /* with the switch locked, as documented */
    ((struct guest *)o)->kicks++;
}
static int p_send(void *o, const void *f, uint32_t len) { return vswitch_port_send(o, f, len); }
static uint32_t p_recv(void *o, void *buf, uint32_t cap) { return vswitch_port_recv(o, buf, cap); }
static bool p_pending(void *o) { return vswitch_port_pending(o); }
static void p_link(void *o, bool up) { vswitch_port_link(o, up); }

static void g_outb(struct guest *g, uint8_t v, uint16_t off) { assert_int_equal(iobus_out(&g->bus, g->io + off, 1, v), 0); }
static void g_outw(struct guest *g, uint16_t v, uint16_t off) { assert_int_equal(iobus_out(&g->bus, g->io + off, 2, v), 0); }
static void g_outl(struct guest *g, uint32_t v, uint16_t off) { assert_int_equal(iobus_out(&g->bus, g->io + off, 4, v), 0); }
static uint32_t g_in(struct guest *g, uint16_t off, unsigned size)
{
    uint32_t v;
    assert_int_equal(iobus_in(&g->bus, g->io + off, size, &v), 0);
    return v;
}

static void guest_init(struct guest *g, const char *name, uint16_t io, int irq, uint8_t last)
{
    memset(g, 0, sizeof(*g));
    g->ram = calloc(1, RAM_BYTES);
    g->fr = (struct fake_ram){ g->ram, RAM_BYTES };
    g->io = io;
    g->irq = irq;
    iobus_init(&g->bus);
    vpci_init(&g->pci);
    assert_int_equal(vpci_attach(&g->pci, &g->bus), 0);
    uint8_t mac[6] = { 2, 0, 0, 0, 0, last };
    assert_int_equal(vswitch_port_add(sw, name, mac, kick, g, &g->port), 0);
    struct vdev_net port = { p_send, p_recv, p_pending, p_link, g->port };
    vnet_init(&g->nic, 7 << 3, io, (uint8_t)irq, (struct vdev_irq){ irq_set, g }, fake_ram_mem(&g->fr), mac, &port);
    assert_int_equal(vnet_attach(&g->nic, &g->pci, &g->bus), 0);
    vnet_reset(&g->nic);
}

static void guest_free(struct guest *g)
{
    vswitch_port_remove(g->port);
    free(g->ram);
}

static void put_desc(struct guest *g, uint32_t qpfn, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    uint8_t *d = g->ram + qpfn * 4096u + 16 * i;
    memcpy(d, &addr, 8), memcpy(d + 8, &len, 4), memcpy(d + 12, &flags, 2), memcpy(d + 14, &next, 2);
}
static void make_avail(struct guest *g, uint32_t qpfn, uint16_t *idx, uint16_t head)
{
    uint8_t *avail = g->ram + qpfn * 4096u + QBYTES;
    memcpy(avail + 4 + 2 * (*idx % VIRTIO_QUEUE_SIZE), &head, 2);
    ++*idx;
    memcpy(avail + 2, idx, 2);
}
static uint16_t used_idx(struct guest *g, uint32_t qpfn)
{
    uint16_t v;
    memcpy(&v, g->ram + qpfn * 4096u + 4096u + 2, 2);
    return v;
}
static uint32_t used_len(struct guest *g, uint32_t qpfn, uint16_t i)
{
    uint32_t v;
    memcpy(&v, g->ram + qpfn * 4096u + 4096u + 4 + 8 * (i % VIRTIO_QUEUE_SIZE) + 4, 4);
    return v;
}

/* virtio_pci_legacy + virtnet_probe/open: status, features, both queues,
 * DRIVER_OK, then nbufs receive buffers of 2 KiB and a kick. */
static void driver_up(struct guest *g, unsigned nbufs)
{
    memset(g->ram + RXQ_PFN * 4096u, 0, 2 * 4096);
    memset(g->ram + TXQ_PFN * 4096u, 0, 2 * 4096);
    g->rx_avail = g->tx_avail = g->rx_used_seen = g->tx_used_seen = 0;
    g_outb(g, 0, 0x12);
    g_outb(g, 1, 0x12);
    g_outb(g, 3, 0x12);
    g_outl(g, g_in(g, 0, 4), 0x04);
    g_outw(g, 0, 0x0E);
    assert_int_equal(g_in(g, 0x0C, 2), VIRTIO_QUEUE_SIZE);
    g_outl(g, RXQ_PFN, 0x08);
    g_outw(g, 1, 0x0E);
    g_outl(g, TXQ_PFN, 0x08);
    g_outb(g, 7, 0x12);
    for (unsigned i = 0; i < nbufs; i++) {
        put_desc(g, RXQ_PFN, i, BUF_GPA + 2048u * i, 2048, 2, 0);
        make_avail(g, RXQ_PFN, &g->rx_avail, (uint16_t)i);
    }
    g_outw(g, VNET_RXQ, 0x10);
}

/* Transmit len bytes (a zero header, then frame) as one descriptor (or
 * two: header, frame); kick. */
static void transmit(struct guest *g, const uint8_t *frame, uint32_t len, bool split)
{
    memset(g->ram + FRAME_GPA, 0, VNET_HDR_BYTES);
    memcpy(g->ram + FRAME_GPA + 0x100, frame, len);
    if (split) {
        put_desc(g, TXQ_PFN, 0, FRAME_GPA, VNET_HDR_BYTES, 1, 1);
        put_desc(g, TXQ_PFN, 1, FRAME_GPA + 0x100, len, 0, 0);
    } else {
        memmove(g->ram + FRAME_GPA + VNET_HDR_BYTES, g->ram + FRAME_GPA + 0x100, len);
        put_desc(g, TXQ_PFN, 0, FRAME_GPA, VNET_HDR_BYTES + len, 0, 0);
    }
    make_avail(g, TXQ_PFN, &g->tx_avail, 0);
    g_outw(g, VNET_TXQ, 0x10);
    assert_int_equal(used_idx(g, TXQ_PFN), ++g->tx_used_seen);
}

static uint32_t frame(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint32_t len, uint8_t fill)
{
    memcpy(f, dst, 6), memcpy(f + 6, src, 6);
    f[12] = 0x08, f[13] = 0x00;
    for (uint32_t i = 14; i < len; i++)
        f[i] = (uint8_t)(fill + i);
    return len;
}

static const uint8_t BCAST[6] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
static const uint8_t MAC_A[6] = { 2, 0, 0, 0, 0, 0xA };
static const uint8_t MAC_B[6] = { 2, 0, 0, 0, 0, 0xB };

static void drop_switch(const char *name);

static int setup(void **state)
{
    drop_switch("s2"); /* a failed test's leftover must not fail the next one */
    fake_now_ns = 1000;
    vswitch_init(now);
    assert_int_equal(vswitch_create("lan", &sw), 0);
    guest_init(&ga, "a.0", IO_A, IRQ_A, 0xA);
    guest_init(&gb, "b.0", IO_B, IRQ_B, 0xB);
    return 0;
}
static int teardown(void **state)
{
    guest_free(&ga);
    guest_free(&gb);
    assert_int_equal(vswitch_destroy(sw), 0);
    assert_int_equal(locks_held, 0);
    return 0;
}

static uint32_t cfg(struct guest *g, unsigned off)
{
    uint32_t v;
    assert_int_equal(iobus_out(&g->bus, 0xCF8, 4, 0x80000000u | (7u << 11) | off), 0);
    assert_int_equal(iobus_in(&g->bus, 0xCFC, 4, &v), 0);
    return v;
}

static void test_discovery(void **state)
{
    assert_int_equal(cfg(&ga, 0x00), 0x10001AF4u);
    assert_int_equal(cfg(&ga, 0x08), 0x02000000u);               /* class 02/00, revision 0 */
    assert_int_equal(cfg(&ga, 0x2C), 0x00011AF4u);               /* subsystem 1: network */
    assert_int_equal(cfg(&ga, 0x3C) & 0xFFFF, 0x0100 | IRQ_A);
    assert_int_equal(cfg(&ga, 0x10), IO_A | 1u);
    assert_int_equal(g_in(&ga, 0, 4), (1u << 5) | (1u << 16));   /* MAC, STATUS */
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(g_in(&ga, 0x14 + i, 1), MAC_A[i]);
    assert_int_equal(g_in(&ga, 0x14 + 6, 2), 1);                 /* VIRTIO_NET_S_LINK_UP */
    assert_int_equal(g_in(&ga, 0x14 + 8, 4), 0);
    assert_false(ga.port->up);                                   /* no driver yet */
    driver_up(&ga, 4);
    assert_true(ga.port->up);
    g_outb(&ga, 0, 0x12);                                        /* reset: the link goes down */
    assert_false(ga.port->up);
}

/* A's broadcast reaches B behind a zero header; B's unicast reply reaches
 * A; addresses learned; interrupts, used lengths, counters. */
static void test_exchange(void **state)
{
    uint8_t f[VSW_FRAME_MAX];
    driver_up(&ga, 8);
    driver_up(&gb, 8);
    transmit(&ga, f, frame(f, BCAST, MAC_A, 42, 1), true);      /* an ARP-sized request */
    assert_true(ga.line);                                        /* the transmit is done */
    assert_int_equal(gb.kicks, 1);
    assert_true(vnet_rx_ready(&gb.nic));
    vnet_poll(&gb.nic);
    assert_false(vnet_rx_ready(&gb.nic));
    assert_int_equal(used_idx(&gb, RXQ_PFN), 1);
    assert_int_equal(used_len(&gb, RXQ_PFN, 0), VNET_HDR_BYTES + 42);
    uint8_t zero[VNET_HDR_BYTES] = { 0 };
    assert_memory_equal(gb.ram + BUF_GPA, zero, VNET_HDR_BYTES);
    assert_memory_equal(gb.ram + BUF_GPA + VNET_HDR_BYTES, f, 42);
    assert_true(gb.line && gb.raises == 1);
    transmit(&gb, f, frame(f, MAC_A, MAC_B, 1514, 2), false);    /* a full-size unicast reply */
    vnet_poll(&ga.nic);
    assert_int_equal(used_len(&ga, RXQ_PFN, 0), VNET_HDR_BYTES + 1514);
    assert_memory_equal(ga.ram + BUF_GPA + VNET_HDR_BYTES, f, 1514);
    transmit(&ga, f, frame(f, MAC_B, MAC_A, 60, 3), false);      /* and known unicast back */
    assert_int_equal(sw->flooded, 1);                            /* only the broadcast was flooded */
    vnet_poll(&gb.nic);
    assert_int_equal(used_idx(&gb, RXQ_PFN), 2);
    assert_int_equal(ga.nic.st.tx_frames, 2);
    assert_int_equal(ga.nic.st.tx_bytes, 42 + 60);
    assert_int_equal(gb.nic.st.rx_frames, 2);
    assert_int_equal(gb.nic.st.rx_bytes, 42 + 60);
    struct vsw_port_stats st;
    vswitch_port_stats(ga.port, &st);
    assert_int_equal(st.in_frames, 2);
    assert_int_equal(st.out_frames, 1);
    assert_int_equal(st.out_bytes, 1514);
    assert_int_equal(vswitch_learned(ga.port), 1);
    assert_int_equal(vswitch_learned(gb.port), 1);
    assert_int_equal(g_in(&ga, 0x13, 1), 1);                     /* ISR: used buffers; read clears */
    assert_false(ga.line);
}

static void test_bad_transmit(void **state)
{
    uint8_t f[VSW_FRAME_MAX + 64];
    driver_up(&ga, 8);
    driver_up(&gb, 8);
    transmit(&ga, f, frame(f, BCAST, MAC_A, 13, 0), true);       /* runt: no whole header */
    transmit(&ga, f, frame(f, BCAST, MAC_A, VSW_FRAME_MAX + 1, 0), true); /* oversize */
    put_desc(&ga, TXQ_PFN, 0, 0xFFFFF000u, 100, 0, 0);            /* outside RAM */
    make_avail(&ga, TXQ_PFN, &ga.tx_avail, 0);
    g_outw(&ga, VNET_TXQ, 0x10);
    assert_int_equal(used_idx(&ga, TXQ_PFN), ++ga.tx_used_seen);
    put_desc(&ga, TXQ_PFN, 0, 0, UINT32_MAX, 1, 1);               /* a 4 GiB chain */
    put_desc(&ga, TXQ_PFN, 1, 0, UINT32_MAX, 0, 0);
    make_avail(&ga, TXQ_PFN, &ga.tx_avail, 0);
    g_outw(&ga, VNET_TXQ, 0x10);
    assert_int_equal(used_idx(&ga, TXQ_PFN), ++ga.tx_used_seen);
    assert_int_equal(ga.nic.st.tx_errors, 4);
    assert_int_equal(ga.nic.st.tx_frames, 0);
    assert_false(vswitch_port_pending(gb.port));                 /* nothing reached the switch */
    assert_int_equal(g_in(&ga, 0x12, 1) & VIRTIO_STATUS_NEEDS_RESET, 0);
    /* Malformed chains: the queue is refused, NEEDS_RESET, config interrupt. */
    static const struct { uint16_t flags0, next0, flags1; } bad[] = {
        { 2, 0, 0 },    /* a device-writable buffer on the transmit queue */
        { 1, 1, 1 },    /* a loop: 0 -> 1 -> 1 ... */
        { 1, 200, 0 },  /* next past the queue */
    };
    for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
        driver_up(&ga, 8);
        put_desc(&ga, TXQ_PFN, 0, FRAME_GPA, 60, bad[i].flags0, bad[i].next0);
        put_desc(&ga, TXQ_PFN, 1, FRAME_GPA, 60, bad[i].flags1, 1);
        make_avail(&ga, TXQ_PFN, &ga.tx_avail, 0);
        g_outw(&ga, VNET_TXQ, 0x10);
        assert_true(g_in(&ga, 0x12, 1) & VIRTIO_STATUS_NEEDS_RESET);
        assert_int_equal(g_in(&ga, 0x13, 1), 2);
        assert_int_equal(used_idx(&ga, TXQ_PFN), 0);
        assert_false(ga.port->up);                               /* the switch queues nothing for it */
    }
    assert_int_equal(ga.nic.vp.bad_chains, 3);
    driver_up(&ga, 8);                                           /* a reset brings it back */
    transmit(&ga, f, frame(f, BCAST, MAC_A, 60, 0), false);
    assert_true(vswitch_port_pending(gb.port));
}

static void test_bad_receive(void **state)
{
    uint8_t f[VSW_FRAME_MAX];
    driver_up(&ga, 0);                                           /* no receive buffers yet */
    driver_up(&gb, 8);
    transmit(&gb, f, frame(f, BCAST, MAC_B, 100, 0), false);
    assert_true(vnet_rx_ready(&ga.nic));
    vnet_poll(&ga.nic);                                          /* nowhere to put it: waits */
    assert_true(vswitch_port_pending(ga.port));
    assert_false(vnet_rx_ready(&ga.nic));                        /* stalled until the driver kicks */
    put_desc(&ga, RXQ_PFN, 0, BUF_GPA, VNET_HDR_BYTES + 50, 2, 0); /* too small for 100 bytes */
    make_avail(&ga, RXQ_PFN, &ga.rx_avail, 0);
    g_outw(&ga, VNET_RXQ, 0x10);
    assert_true(vnet_rx_ready(&ga.nic));
    vnet_poll(&ga.nic);
    assert_int_equal(used_idx(&ga, RXQ_PFN), 1);
    assert_int_equal(used_len(&ga, RXQ_PFN, 0), 0);
    assert_int_equal(ga.nic.st.rx_dropped, 1);
    transmit(&gb, f, frame(f, BCAST, MAC_B, 100, 0), false);
    put_desc(&ga, RXQ_PFN, 1, BUF_GPA, 2048, 0, 0);               /* device-readable: malformed */
    make_avail(&ga, RXQ_PFN, &ga.rx_avail, 1);
    g_outw(&ga, VNET_RXQ, 0x10);
    vnet_poll(&ga.nic);
    assert_true(g_in(&ga, 0x12, 1) & VIRTIO_STATUS_NEEDS_RESET);
    assert_false(vnet_rx_ready(&ga.nic));
    assert_false(vswitch_port_pending(ga.port));                 /* link down: the queue is dropped */
}

/* ---------------------------------------------------------------- the switch alone */

struct sw_port {
    struct vsw_port *p;
    int kicks;
};
static void sw_kick(void *o) { ((struct sw_port *)o)->kicks++; }

static struct sw_port ports[VSW_PORTS];
static struct vswitch *s2;

static void drop_switch(const char *name)
{
    struct vswitch *s = vswitch_find(name);
    for (unsigned i = 0; s && i < VSW_PORTS; i++)
        if (s->ports[i])
            vswitch_port_remove(s->ports[i]);
    if (s)
        assert_int_equal(vswitch_destroy(s), 0);
    locks_held = 0;
}

static void sw_make(unsigned n)
{
    assert_int_equal(vswitch_create("s2", &s2), 0);
    for (unsigned i = 0; i < n; i++) {
        char name[8];
        uint8_t mac[6] = { 2, 1, 0, 0, 0, (uint8_t)i };
        snprintf(name, sizeof(name), "p%u", i);
        ports[i].kicks = 0;
        assert_int_equal(vswitch_port_add(s2, name, mac, sw_kick, &ports[i], &ports[i].p), 0);
        vswitch_port_link(ports[i].p, true);
    }
}
static void sw_free(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        vswitch_port_remove(ports[i].p);
    assert_int_equal(vswitch_destroy(s2), 0);
}
static uint8_t *mac_of(unsigned i, uint8_t *m)
{
    uint8_t x[6] = { 2, 1, 0, 0, 0, (uint8_t)i };
    memcpy(m, x, 6);
    return m;
}
static int sw_send(unsigned from, const uint8_t *dst, const uint8_t *src, uint32_t len)
{
    uint8_t f[VSW_FRAME_MAX + 8];
    return vswitch_port_send(ports[from].p, f, frame(f, dst, src, len, 0));
}
static unsigned drain(unsigned i)
{
    uint8_t buf[VSW_FRAME_MAX];
    unsigned n = 0;
    while (vswitch_port_recv(ports[i].p, buf, sizeof(buf)))
        n++;
    return n;
}

static void test_switch_forwarding(void **state)
{
    uint8_t m0[6], m1[6], m2[6], m9[6];
    sw_make(4);
    mac_of(0, m0), mac_of(1, m1), mac_of(2, m2), mac_of(9, m9);
    assert_int_equal(sw_send(0, m1, m0, 60), 0);                  /* unknown unicast: flooded */
    assert_int_equal(drain(0), 0);                                /* never back to the ingress */
    assert_true(drain(1) == 1 && drain(2) == 1 && drain(3) == 1);
    assert_true(ports[1].kicks == 1 && ports[2].kicks == 1 && ports[0].kicks == 0);
    assert_int_equal(sw_send(1, m0, m1, 60), 0);                  /* known: only port 0 */
    assert_true(drain(0) == 1 && drain(2) == 0 && drain(3) == 0);
    assert_int_equal(sw_send(2, m0, m0, 60), 0);                  /* m0 moved to port 2 */
    assert_int_equal(sw_send(1, m0, m1, 60), 0);
    assert_true(drain(2) == 1 && drain(0) == 0);
    assert_int_equal(s2->filtered, 1);                            /* (that one was to its own port) */
    assert_int_equal(sw_send(2, m0, m2, 60), 0);                  /* to its own port: filtered */
    assert_int_equal(s2->filtered, 2);
    vswitch_port_link(ports[3].p, false);                         /* down ports get no floods */
    assert_int_equal(sw_send(1, BCAST, m1, 60), 0);
    assert_true(drain(0) == 1 && drain(2) == 1 && drain(3) == 0);
    uint8_t mcast[6] = { 0x01, 0x00, 0x5E, 0, 0, 1 };
    assert_int_equal(sw_send(1, mcast, m1, 60), 0);               /* multicast: flooded */
    assert_true(drain(0) == 1 && drain(2) == 1);
    /* Bad frames: counted, dropped, nothing learned. */
    assert_int_equal(sw_send(1, BCAST, mcast, 60), E_INVAL);      /* group source */
    assert_int_equal(sw_send(1, BCAST, m9, VSW_FRAME_MIN - 1), E_INVAL);
    assert_int_equal(sw_send(1, BCAST, m9, VSW_FRAME_MAX + 1), E_INVAL);
    assert_int_equal(sw_send(1, BCAST, m9, VSW_FRAME_MAX), 0);
    assert_int_equal(sw_send(1, BCAST, m9, VSW_FRAME_MIN), 0);
    struct vsw_port_stats st;
    vswitch_port_stats(ports[1].p, &st);
    assert_int_equal(st.in_errors, 3);
    assert_true(drain(0) == 2 && drain(2) == 2);
    /* Ageing: 300 s without a frame from m1 and port 1's address is gone. */
    fake_now_ns += VSW_AGE_NS - 1;
    assert_int_equal(vswitch_learned(ports[1].p), 2);             /* m1 and m9 */
    assert_int_equal(sw_send(0, m1, m0, 60), 0);
    assert_true(drain(1) == 1 && drain(2) == 0);                  /* still known */
    fake_now_ns += 2;
    assert_int_equal(vswitch_learned(ports[1].p), 0);
    uint64_t flooded = s2->flooded;
    assert_int_equal(sw_send(0, m1, m0, 60), 0);                  /* aged: flooded again */
    assert_int_equal(s2->flooded, flooded + 1);
    assert_true(drain(1) == 1 && drain(2) == 1);
    /* Removal forgets the port's addresses. */
    assert_int_equal(vswitch_learned(ports[0].p), 1);
    vswitch_port_remove(ports[0].p);
    assert_int_equal(sw_send(1, m0, m1, 60), 0);
    assert_int_equal(s2->flooded, flooded + 2);
    assert_int_equal(drain(2), 1);
    uint8_t mac[6] = { 2, 1, 0, 0, 0, 0 };
    assert_int_equal(vswitch_port_add(s2, "p0", mac, sw_kick, &ports[0], &ports[0].p), 0);
    vswitch_port_link(ports[0].p, true);
    sw_free(4);
}

static void test_switch_limits(void **state)
{
    sw_make(VSW_PORTS);
    struct vsw_port *extra;
    uint8_t mac[6] = { 2, 9, 9, 9, 9, 9 }, m[6];
    assert_int_equal(vswitch_port_add(s2, "x", mac, NULL, NULL, &extra), E_BUSY);
    assert_int_equal(vswitch_destroy(s2), E_BUSY);
    vswitch_port_remove(ports[VSW_PORTS - 1].p);
    assert_int_equal(vswitch_port_add(s2, "x", mac_of(3, m), NULL, NULL, &extra), E_EXIST);
    assert_int_equal(vswitch_port_add(s2, "x", mac, NULL, NULL, &extra), 0);
    vswitch_port_remove(extra);
    assert_int_equal(vswitch_port_add(s2, "p15", mac_of(VSW_PORTS - 1, m), sw_kick, &ports[VSW_PORTS - 1],
                                      &ports[VSW_PORTS - 1].p), 0);
    vswitch_port_link(ports[VSW_PORTS - 1].p, true);
    /* A port sending from many addresses learns at most VSW_MACS_PER_PORT. */
    for (unsigned i = 0; i < 4 * VSW_MACS_PER_PORT; i++) {
        uint8_t src[6] = { 2, 7, 0, 0, (uint8_t)(i >> 8), (uint8_t)i };
        assert_int_equal(sw_send(1, BCAST, src, 60), 0);
        for (unsigned p = 0; p < VSW_PORTS; p++)
            drain(p);
    }
    assert_int_equal(vswitch_learned(ports[1].p), VSW_MACS_PER_PORT);
    assert_true(s2->learn_refused >= 3 * VSW_MACS_PER_PORT);
    /* Shares: port 1 floods port 0's queue; it gets VSW_QUEUE / 15 slots,
     * and port 2 still gets its frames through. */
    unsigned share = MAX(VSW_QUEUE / (VSW_PORTS - 1), VSW_MIN_SHARE), taken = 0;
    ports[0].kicks = 0;
    for (unsigned i = 0; i < 4 * VSW_QUEUE; i++)
        taken += sw_send(1, mac_of(0, m), mac_of(1, mac), 60) == 0;
    assert_int_equal(taken, 0 + share);                           /* m0 unknown: flooded, each queue its share */
    struct vsw_port_stats st;
    vswitch_port_stats(ports[1].p, &st);
    assert_true(st.in_drops >= (4 * VSW_QUEUE - share) * (VSW_PORTS - 1));
    assert_int_equal(sw_send(2, mac_of(0, m), mac_of(2, mac), 60), 0);
    assert_int_equal(ports[0].p->count, share + 1);
    vswitch_port_stats(ports[0].p, &st);
    assert_true(st.out_drops >= 4 * VSW_QUEUE - share);
    assert_int_equal(ports[0].kicks, 1);                           /* one kick: the queue was empty once */
    assert_int_equal(drain(0), share + 1);
    sw_free(VSW_PORTS);
}

/* Two ports: the only other sender may use the whole queue, no more. */
static void test_switch_queue_bound(void **state)
{
    uint8_t m0[6], m1[6];
    sw_make(2);
    mac_of(0, m0), mac_of(1, m1);
    for (unsigned i = 0; i < 3 * VSW_QUEUE; i++)
        sw_send(0, m1, m0, 100);
    assert_int_equal(ports[1].p->count, VSW_QUEUE);
    struct vsw_port_stats st;
    vswitch_port_stats(ports[1].p, &st);
    assert_int_equal(st.out_drops, 2 * VSW_QUEUE);
    assert_int_equal(drain(1), VSW_QUEUE);
    vswitch_port_stats(ports[1].p, &st);
    assert_int_equal(st.out_frames, VSW_QUEUE);
    assert_int_equal(st.out_bytes, 100ull * VSW_QUEUE);
    assert_int_equal(sw_send(0, m1, m0, 100), 0);                 /* room again */
    vswitch_port_link(ports[1].p, false);                         /* down: queue dropped */
    assert_false(vswitch_port_pending(ports[1].p));
    assert_int_equal(sw_send(0, m1, m0, 100), E_NOSPC);
    sw_free(2);
}

/* ---------------------------------------------------------------- random rings */

static uint32_t rs = 0x5eed7e57u;
static uint32_t rnd(void)
{
    rs ^= rs << 13, rs ^= rs >> 17, rs ^= rs << 5;
    return rs;
}

static void check_switch(const struct vswitch *s)
{
    unsigned learned[VSW_PORTS] = { 0 };
    for (unsigned i = 0; i < VSW_MAC_SETS; i++)
        for (unsigned w = 0; w < VSW_MAC_WAYS; w++)
            if (s->macs[i][w].used) {
                assert_true(s->macs[i][w].port < VSW_PORTS && s->ports[s->macs[i][w].port]);
                learned[s->macs[i][w].port]++;
            }
    for (unsigned i = 0; i < VSW_PORTS; i++) {
        const struct vsw_port *p = s->ports[i];
        if (!p)
            continue;
        unsigned sum = 0;
        for (unsigned j = 0; j < VSW_PORTS; j++)
            sum += p->share[j];
        assert_true(p->count <= VSW_QUEUE && p->head < VSW_QUEUE && sum == p->count);
        assert_true(learned[i] == p->learned && p->learned <= VSW_MACS_PER_PORT);
    }
}

/* Half the time a well-formed chain (transmit: header and a frame between
 * the two guests or to broadcast; receive: one 2 KiB buffer), else eight
 * random descriptors; one available entry, a kick. */
static void random_ring(struct guest *g, uint32_t qpfn, uint16_t *avail, unsigned qi)
{
    static const uint32_t lens[] = { 10, 14, 42, 60, 1514, 1528, 2048, 0, 5, 0xFFFFFFFFu };
    uint16_t head = (uint16_t)(rnd() % 9);
    if (rnd() % 2) {
        uint32_t addr = 0x40000 + 2048 * (rnd() % 64);
        if (qi == VNET_TXQ) {
            uint8_t *f = g->ram + addr + VNET_HDR_BYTES;
            memcpy(f, rnd() % 2 ? BCAST : g == &ga ? MAC_B : MAC_A, 6);
            memcpy(f + 6, g == &ga ? MAC_A : MAC_B, 6);
        }
        put_desc(g, qpfn, head, addr, qi == VNET_TXQ ? VNET_HDR_BYTES + 14 + rnd() % 1501 : 2048,
                 qi == VNET_TXQ ? 0 : 2, 0);
    } else {
        for (unsigned i = 0; i < 8; i++) {
            uint32_t addr = rnd() % 8 ? 0x40000 + rnd() % 0x40000 : rnd();
            put_desc(g, qpfn, i, addr, lens[rnd() % ARRAY_SIZE(lens)], (uint16_t)(rnd() & 7), (uint16_t)(rnd() % 10));
        }
    }
    make_avail(g, qpfn, avail, head);
    assert_int_equal(iobus_out(&g->bus, g->io + 0x10, 2, qi), 0);
}

static void test_random_rings(void **state)
{
    struct guest *gs[2] = { &ga, &gb };
    for (int i = 0; i < 20000; i++) {
        struct guest *g = gs[rnd() % 2];
        switch (rnd() % 8) {
        case 0: /* a driver that finds NEEDS_RESET resets the device (and sometimes one that does not) */
            if ((g->nic.vp.status & VIRTIO_STATUS_NEEDS_RESET) || rnd() % 16 == 0)
                driver_up(g, rnd() % 16);
            break;
        case 1: case 2: case 3:
            random_ring(g, TXQ_PFN, &g->tx_avail, VNET_TXQ);
            break;
        case 4:
            random_ring(g, RXQ_PFN, &g->rx_avail, VNET_RXQ);
            break;
        case 5:
            fake_now_ns += (uint64_t)(rnd() % 100) * NS_PER_SEC;
            break;
        default:
            vnet_poll(&g->nic);
            break;
        }
        check_switch(sw);
        assert_int_equal(locks_held, 0);
        for (unsigned k = 0; k < 2; k++) {
            assert_int_equal(gs[k]->nic.vp.isr & ~3u, 0);
            assert_int_equal(gs[k]->nic.vp.line_level, gs[k]->nic.vp.isr != 0);
        }
    }
    print_message("virtio-net: a %u/%u bad chains, tx %llu frames %llu errors, rx %llu frames %llu dropped\n",
                  ga.nic.vp.bad_chains, gb.nic.vp.bad_chains, (unsigned long long)(ga.nic.st.tx_frames + gb.nic.st.tx_frames),
                  (unsigned long long)(ga.nic.st.tx_errors + gb.nic.st.tx_errors),
                  (unsigned long long)(ga.nic.st.rx_frames + gb.nic.st.rx_frames),
                  (unsigned long long)(ga.nic.st.rx_dropped + gb.nic.st.rx_dropped));
    assert_true(ga.nic.vp.bad_chains + gb.nic.vp.bad_chains > 0);
    assert_true(ga.nic.st.tx_frames + gb.nic.st.tx_frames > 0 && ga.nic.st.tx_errors + gb.nic.st.tx_errors > 0);
    assert_true(ga.nic.st.rx_frames + gb.nic.st.rx_frames > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_transmit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_receive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_switch_forwarding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_switch_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_switch_queue_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_rings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
