/*
 * Robustness: every device of vmm/dev/ on one bus, wired to one vpic, fed a
 * fixed-seed stream of random port accesses (all sizes, including invalid
 * ones and ports next to the devices), clock jumps, interrupt traffic and
 * input; the virtio-net NIC's port loops its frames back. Nothing may crash, and each device's invariants must hold after
 * every step.
 */
#include "tests/unit/test_vdev_common.h"
#include "vmm/dev/devices.h"

#define VBLK_IO    0xC000
#define IDE_BM     0xC100
#define VBLK_IRQ   11
#define VNET_IO    0xC200
#define VNET_IRQ   7
#define RAM_BYTES  (64u << 10)       /* the virtio disk's guest RAM */
#define DISK_SECT  64u

#define STEPS 200000
#ifndef SEED
#define SEED  0x5eed1234u  /* fixed; -DSEED=... to explore others */
#endif

static struct vpic pic;
static struct vpit pit;
static struct vuart uart;
static struct vrtc rtc;
static struct vkbc kbc;
static struct vpci pci;
static struct vdbg dbg;
static struct vblk blk;
static struct vide ide;
static struct vnet net;
static uint8_t ram[RAM_BYTES], disk[DISK_SECT * 512];
static uint32_t rng = SEED;
static uint64_t valid_accesses;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static uint64_t wall(void *opaque) { return 4102444799ull; }  /* 2099-12-31 23:59:59 */
static void sink_reset(void *opaque) { }
static void sink_byte(void *opaque, uint8_t b) { }
static void sink_exit(void *opaque, uint32_t code) { }

/* Lines go to the PIC and to the recorder, so levels can be cross-checked. */
static void to_pic(void *opaque, int irq, int level)
{
    record_irq(NULL, irq, level);
    vpic_set_irq(&pic, irq, level);
}

static struct fake_ram guest_ram = { ram, RAM_BYTES };
/* The disk: every sector the device asks for must be inside it. */
static int disk_read(void *o, uint64_t s, uint32_t n, void *buf)
{
    assert_true(s + n <= DISK_SECT);
    memcpy(buf, disk + s * 512, n * 512u);
    return 0;
}
static int disk_write(void *o, uint64_t s, uint32_t n, const void *buf, bool cached)
{
    assert_true(s + n <= DISK_SECT);
    memcpy(disk + s * 512, buf, n * 512u);
    return 0;
}
static int disk_flush(void *o) { return 0; }

/* The NIC's port: what it sends comes back (a one-frame loop), so the
 * receive path runs too. */
static uint8_t looped[VDEV_FRAME_MAX];
static uint32_t looped_len;
static int port_send(void *o, const void *f, uint32_t len)
{
    assert_true(len >= VDEV_FRAME_MIN && len <= VDEV_FRAME_MAX);
    memcpy(looped, f, len);
    looped_len = len;
    return 0;
}
static uint32_t port_recv(void *o, void *buf, uint32_t cap)
{
    uint32_t n = looped_len;
    assert_true(cap >= VDEV_FRAME_MAX);
    memcpy(buf, looped, n);
    looped_len = 0;
    return n;
}
static bool port_pending(void *o) { return looped_len != 0; }
static void port_link(void *o, bool up) { if (!up) looped_len = 0; }

static void build(void)
{
    struct vdev_irq line = { to_pic, NULL };
    struct vdev_mem mem = fake_ram_mem(&guest_ram);
    struct vdev_disk be = { disk_read, disk_write, disk_flush, NULL, DISK_SECT, false, "fuzz", NULL, NULL, NULL, 0 };
    iobus_init(&test_bus);
    reset_recorder();
    fake_now_ns = 0;
    vpic_init(&pic, NULL, NULL);
    vpit_init(&pit, fake_clock, NULL, line);
    vuart_init(&uart, VUART_COM1_BASE, VUART_COM1_IRQ, sink_byte, NULL, line);
    vrtc_init(&rtc, fake_clock, wall, NULL, line, 256ull << 20);
    vkbc_init(&kbc, sink_reset, NULL, line);
    vpci_init(&pci);
    vdbg_init(&dbg, sink_byte, sink_exit, NULL);
    assert_int_equal(vpic_attach(&pic, &test_bus), 0);
    assert_int_equal(vpit_attach(&pit, &test_bus), 0);
    assert_int_equal(vuart_attach(&uart, &test_bus), 0);
    assert_int_equal(vrtc_attach(&rtc, &test_bus), 0);
    assert_int_equal(vkbc_attach(&kbc, &test_bus), 0);
    assert_int_equal(vpci_attach(&pci, &test_bus), 0);
    assert_int_equal(vdbg_attach(&dbg, &test_bus), 0);
    vblk_init(&blk, 3 << 3, VBLK_IO, VBLK_IRQ, line, mem, &be);
    assert_int_equal(vblk_attach(&blk, &pci, &test_bus), 0);
    vblk_reset(&blk);
    vide_init(&ide, IDE_BM, line, mem);
    assert_int_equal(vide_add_drive(&ide, 0, &be), 0);
    assert_int_equal(vide_add_drive(&ide, 3, &be), 0);
    assert_int_equal(vide_attach(&ide, &pci, &test_bus), 0);
    vide_reset(&ide);
    static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
    struct vdev_net port = { port_send, port_recv, port_pending, port_link, NULL };
    vnet_init(&net, 7 << 3, VNET_IO, VNET_IRQ, line, mem, mac, &port);
    assert_int_equal(vnet_attach(&net, &pci, &test_bus), 0);
    vnet_reset(&net);
    for (unsigned i = 0; i < RAM_BYTES; i++)
        ram[i] = (uint8_t)rnd();
}

/* Ports near the devices most of the time, anywhere sometimes. */
static uint16_t pick_port(void)
{
    static const uint16_t bases[] = { 0x20, 0xA0, 0x4D0, 0x40, 0x61, 0x3F8, 0x70,
                                      0x60, 0x64, 0xCF8, 0xCFC, 0x80, 0xE9, 0xF4, VBLK_IO, VBLK_IO + 0x10,
                                      0x1F0, 0x1F5, 0x3F6, 0x170, 0x175, 0x376, IDE_BM, IDE_BM + 8,
                                      VNET_IO, VNET_IO + 0x10 };
    if (rnd() % 16 == 0)
        return (uint16_t)rnd();
    return (uint16_t)(bases[rnd() % ARRAY_SIZE(bases)] + rnd() % 10 - 2);
}

static unsigned pick_size(void)
{
    static const unsigned sizes[] = { 1, 1, 1, 1, 2, 4, 0, 3 };
    return sizes[rnd() % ARRAY_SIZE(sizes)];
}

static void io_step(void)
{
    uint16_t port = pick_port();
    unsigned size = pick_size();
    uint32_t v = rnd();
    bool ok = size == 1 || size == 2 || size == 4;
    int err = rnd() & 1 ? iobus_in(&test_bus, port, size, &v) : iobus_out(&test_bus, port, size, v);
    assert_int_equal(err, ok ? 0 : E_INVAL);
    valid_accesses += ok;
}

static void out8(uint16_t port, uint32_t v)
{
    assert_int_equal(iobus_out(&test_bus, port, 1, v & 0xFF), 0);
    valid_accesses++;
}

/* A plausible request in the queue at gpa q (just reset: available index
 * 0): one available entry, eight descriptors of random shape inside RAM
 * (or not), a header of a random type and sector (or not). */
static void virtio_request(uint32_t q)
{
    static const uint32_t lens[] = { 16, 1, 512, 1024, 0, 4096 };
    for (unsigned i = 0; i < 8; i++) {
        uint8_t *d = ram + q + 16 * i;
        uint32_t addr = rnd() % 8 ? rnd() % RAM_BYTES : rnd(), len = lens[rnd() % 6];
        uint16_t flags = (uint16_t)(rnd() & 3), next = (uint16_t)(rnd() % 9);
        memset(d, 0, 16), memcpy(d, &addr, 4), memcpy(d + 8, &len, 4), memcpy(d + 12, &flags, 2), memcpy(d + 14, &next, 2);
        uint32_t hdr[4] = { rnd() % 3, 0, rnd() % (DISK_SECT + 8), 0 };
        if (addr + 16 <= RAM_BYTES)
            memcpy(ram + addr, hdr, sizeof hdr);
    }
    uint16_t idx = 1, head = (uint16_t)(rnd() % 8);
    memcpy(ram + q + 16 * VIRTIO_QUEUE_SIZE + 2, &idx, 2);
    memcpy(ram + q + 16 * VIRTIO_QUEUE_SIZE + 4, &head, 2);
}

/* Well-formed driver snippets with random parameters, so that the random
 * stream also reaches the devices' deeper states. */
static void script_step(void)
{
    uint32_t r = rnd();
    switch (rnd() % 8) {
    case 6:  /* IDE: a random PRD table, a DMA or PIO command on either channel, start */
        for (unsigned i = 0; i < 4; i++) {
            uint32_t e[2] = { rnd() % RAM_BYTES, rnd() & 0x80000FFFu };
            memcpy(ram + 0x100 + 8 * i, e, 8);
        }
        for (unsigned c = 0; c < 2; c++) {
            uint16_t base = c ? 0x170 : 0x1F0, bm = (uint16_t)(IDE_BM + 8 * c);
            static const uint8_t cmds[] = { 0xC8, 0xCA, 0x25, 0x35, 0x20, 0x30, 0xEC, 0xE7, 0xEF };
            assert_int_equal(iobus_out(&test_bus, bm + 4, 4, 0x100), 0);
            valid_accesses++;
            out8(bm, r & 8);
            out8(base + 2, r >> 4 & 7);
            out8(base + 3, (r >> 8) % (DISK_SECT + 4));
            out8(base + 6, 0xE0 | (r >> 12 & 0x10));
            out8(base + 7, cmds[(r >> 16) % sizeof cmds]);
            out8(bm, (r & 8) | 1);
        }
        break;
    case 0:  /* 8254: a control word and a small count */
        out8(0x43, (r & 0xC0) | 0x30 | (r & 0x0F));
        out8(0x40 + (r >> 6 & 3) % 3, r >> 8 & 0x3F);
        out8(0x40 + (r >> 6 & 3) % 3, 0);
        break;
    case 1:  /* 8259A: Linux-style init with a random vector base */
        out8(0x20, 0x11); out8(0x21, r & 0xF8); out8(0x21, 0x04); out8(0x21, 0x01 | (r >> 8 & 2));
        out8(0xA0, 0x11); out8(0xA1, (r >> 16) & 0xF8); out8(0xA1, 0x02); out8(0xA1, 0x01);
        out8(0x21, r >> 24 & 0xFB); out8(0xA1, r >> 20);
        break;
    case 2:  /* 16550A: DLAB off, interrupts on, a few bytes out */
        out8(0x3FB, 0x03); out8(0x3FC, 0x08 | (r & 0x10)); out8(0x3F9, r >> 8 & 0x0F);
        out8(0x3FA, r >> 12 & 0xC7);
        for (unsigned i = 0; i < (r >> 16) % 20; i++)
            out8(0x3F8, r >> i);
        break;
    case 3:  /* RTC: interrupts and a rate */
        out8(0x70, 0x0A); out8(0x71, 0x20 | (r & 0x0F));
        out8(0x70, 0x0B); out8(0x71, r >> 8 & 0x76);
        break;
    case 5:  /* virtio-blk: driver up, a queue in RAM full of random bytes, a kick */
        out8(VBLK_IO + 0x12, 0);
        out8(VBLK_IO + 0x12, 7);
        assert_int_equal(iobus_out(&test_bus, VBLK_IO + 0x0E, 2, 0), 0);
        assert_int_equal(iobus_out(&test_bus, VBLK_IO + 0x08, 4, r % 16), 0);
        valid_accesses += 2;
        virtio_request(r % 16 * 4096u);
        assert_int_equal(iobus_out(&test_bus, VBLK_IO + 0x10, 2, 0), 0);
        valid_accesses++;
        break;
    case 7:  /* virtio-net: driver up, both queues in RAM full of random bytes, kicks, a poll */
        out8(VNET_IO + 0x12, 0);
        out8(VNET_IO + 0x12, 3);
        for (unsigned q = 0; q < 2; q++) {
            assert_int_equal(iobus_out(&test_bus, VNET_IO + 0x0E, 2, q), 0);
            assert_int_equal(iobus_out(&test_bus, VNET_IO + 0x08, 4, (r >> (4 * q)) % 16), 0);
            valid_accesses += 2;
            virtio_request((r >> (4 * q)) % 16 * 4096u);
        }
        out8(VNET_IO + 0x12, 7);
        assert_int_equal(iobus_out(&test_bus, VNET_IO + 0x10, 2, 1), 0);
        assert_int_equal(iobus_out(&test_bus, VNET_IO + 0x10, 2, 0), 0);
        valid_accesses += 2;
        vnet_poll(&net);
        break;
    default: /* 8254 counter 2 gate via port 0x61 */
        out8(0x61, r & 0x0F);
        break;
    }
}

static void other_step(void)
{
    uint8_t buf[24];
    switch (rnd() % 8) {
    case 0: fake_now_ns += rnd() % 3000000; break;
    case 1: fake_now_ns += (uint64_t)(rnd() % 4) * NS_PER_SEC * 3600; break;
    case 2: vpit_update(&pit, fake_now_ns); vrtc_update(&rtc, fake_now_ns); break;
    case 3: if (vpic_pending(&pic) >= 0 || rnd() % 8 == 0) vpic_ack(&pic); break;
    case 4: vpic_set_irq(&pic, (int)(rnd() % 20) - 2, (int)(rnd() % 2)); break;
    case 5:
        for (unsigned i = 0; i < sizeof(buf); i++)
            buf[i] = (uint8_t)rnd();
        vuart_receive(&uart, buf, rnd() % sizeof(buf));
        break;
    case 6: if (rnd() % 64 == 0) { vpit_reset(&pit); vuart_reset(&uart); vkbc_reset(&kbc); } break;
    default: io_step(); break;
    }
}

static void check_invariants(void)
{
    int vec = vpic_pending(&pic);
    assert_true(vec >= -1 && vec <= 255);
    if (vec >= 0)
        assert_true((vec & 0xF8) == pic.chip[0].vector_base || (vec & 0xF8) == pic.chip[1].vector_base);
    for (int c = 0; c < 2; c++)
        assert_true(pic.chip[c].lowest < 8 && pic.chip[c].init_step <= 4);
    assert_int_equal((pic.chip[0].elcr & ~0xF8) | (pic.chip[1].elcr & ~0xDE), 0);

    for (int i = 0; i < VPIT_CHANNELS; i++) {
        const struct vpit_channel *c = &pit.ch[i];
        assert_true(c->mode <= 5 && c->count <= 0x10000);
        assert_true(!c->running || (c->ce_init >= 1 && c->ce_init <= 0x10000));
    }
    uint64_t next = vpit_next_event_ns(&pit);
    assert_true(next == VDEV_NEVER || next >= pit.ch[0].load_ns);

    assert_true(uart.rx_count <= VUART_FIFO_SIZE && uart.rx_head < VUART_FIFO_SIZE);
    assert_int_equal(uart.irq_level, irq_level[VUART_COM1_IRQ]);
    assert_int_equal(uart.ier & 0xF0, 0);

    assert_true(rtc.index < VRTC_BYTES);
    if (!(rtc.cmos[0x0B] & 0x80) && (rtc.cmos[0x0A] & 0x60) != 0x60) {
        struct vrtc_tm t = vrtc_time(&rtc, fake_now_ns);
        assert_in_range(t.mon, 1, 12);
        assert_in_range(t.mday, 1, 31);
        assert_in_range(t.hour, 0, 23);
        assert_in_range(t.min, 0, 59);
        assert_in_range(t.sec, 0, 59);
    }
    assert_int_equal(rtc.irq_level, irq_level[VRTC_IRQ]);

    assert_true(kbc.qcount <= VKBC_QUEUE && kbc.qhead < VKBC_QUEUE);

    assert_int_equal(blk.vp.isr & ~3u, 0);
    assert_int_equal(blk.vp.line_level, blk.vp.isr != 0);
    assert_int_equal(net.vp.isr & ~3u, 0);
    assert_int_equal(net.vp.line_level, net.vp.isr != 0);
    assert_int_equal(net.vp.line_level, irq_level[VNET_IRQ]);
    assert_int_equal(pci.address & ~0x80FFFFFCu, 0);

    for (unsigned c = 0; c < VIDE_CHANNELS; c++) {
        const struct vide_channel *ch = &ide.ch[c];
        assert_int_equal(ch->line, irq_level[c ? VIDE_SECONDARY_IRQ : VIDE_PRIMARY_IRQ]);
        assert_true(ch->pio_pos <= ch->pio_len && ch->pio_len <= VDEV_SECTOR);
        assert_int_equal(ch->prd_addr & 3, 0);
    }
}

static void test_random_traffic(void **state)
{
    build();
    for (int i = 0; i < STEPS; i++) {
        if (rnd() % 64 == 0)
            script_step();
        else if (rnd() % 2)
            io_step();
        else
            other_step();
        check_invariants();
    }
    uint64_t counted = test_bus.unclaimed_reads + test_bus.unclaimed_writes;
    for (unsigned i = 0; i < test_bus.nranges; i++)
        counted += test_bus.range[i].reads + test_bus.range[i].writes;
    assert_int_equal(counted, valid_accesses);
    /* The stream did reach the devices' deeper states (device resets zero
     * the devices' own counters, the recorder's survive). */
    assert_true(irq_rises[VPIT_IRQ] > 100 && irq_rises[VUART_COM1_IRQ] > 100);
    assert_true(irq_rises[VRTC_IRQ] > 0 && irq_rises[VKBC_IRQ_KBD] > 0);
    assert_true(pic.acks > pic.spurious);
    assert_true(blk.vp.bad_chains > 0 && blk.st.reads + blk.st.writes + blk.st.errors > 0);
    const struct vdev_disk_stats *ist = &ide.ch[0].drive[0].st;
    assert_true(ist->reads + ist->writes > 0 && ide.bad_prd > 0);
    print_message("IDE: %llu reads, %llu writes, %llu errors, %llu bad PRD tables\n", (unsigned long long)ist->reads,
                  (unsigned long long)ist->writes, (unsigned long long)ist->errors, (unsigned long long)ide.bad_prd);
    assert_true(net.vp.bad_chains > 0 && net.st.tx_frames + net.st.tx_errors > 0);
    print_message("virtio-net: %u malformed chains, %llu frames sent, %llu received, %llu transmit errors\n",
                  net.vp.bad_chains, (unsigned long long)net.st.tx_frames, (unsigned long long)net.st.rx_frames,
                  (unsigned long long)net.st.tx_errors);
    print_message("virtio-blk: %u malformed chains, %llu reads, %llu writes, %llu errors\n", blk.vp.bad_chains,
                  (unsigned long long)blk.st.reads, (unsigned long long)blk.st.writes,
                  (unsigned long long)blk.st.errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_traffic),
    };
    return cmocka_run_group_tests_name("vdev_fuzz", tests, NULL, NULL);
}
