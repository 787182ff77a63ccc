/*
 * virtio-blk over the legacy virtio PCI transport (vmm/dev/vblk.c,
 * vmm/dev/virtio.c), driven through the PCI bus and BAR0 as Linux's
 * virtio_pci_legacy and virtio_blk drivers do, against a fake guest RAM and
 * a disk in memory with guard sectors on both sides:
 *   - discovery: IDs, class, BAR0 sizing, Interrupt Line/Pin, features,
 *     capacity; BAR0 moved by the guest decodes at the new place only;
 *   - requests: OUT then IN round trip, FLUSH, GET_ID, an unknown type;
 *     used ring, status byte, ISR and the INTx line;
 *   - bad input: a sector past the end, a length that is not whole
 *     sectors, a write to a read-only disk, a request beyond
 *     VBLK_MAX_REQUEST (IOERR, the backend never called); a descriptor loop,
 *     an index beyond the queue, a buffer outside guest RAM, a readable
 *     descriptor after a writable one, the available index jumping ahead
 *     (the queue is refused and NEEDS_RESET set); the guard sectors and
 *     the RAM outside the request's buffers untouched throughout;
 *   - random traffic: 20,000 random descriptor tables and rings; the
 *     backend only ever sees sectors inside the disk;
 *   - the driver's VRING_AVAIL_F_NO_INTERRUPT: requests complete with no
 *     interrupt while it is set, and raise one again once it is cleared;
 *   - started reads (vdev_disk.submit, the backend's I/O thread played by
 *     the test): at most VBLK_INFLIGHT at once, the rest waiting in the
 *     queue; nothing handed back, written or interrupted before the
 *     backend is done; out-of-order completion, each handed back alone
 *     with its data and length; a backend error, a late E_NOTSUP (copied
 *     instead); writes, flushes and reads under submit_min never
 *     started; a driver reset with
 *     reads in flight (waited for, dropped, their bytes still reported);
 *     and the tests above run again with started reads;
 *   - zero copy (vdev_disk.rw_sg, vdev_mem.dma_frame/dma_written), with
 *     guest pages 0x50-0x5F on swapped host frames: the host pieces the
 *     backend gets (split at pages, merged where contiguous), the data both
 *     ways, what dma_written is told; the fallbacks to the bounce buffer
 *     (an odd address, the backend's E_NOTSUP) giving the same data; and
 *     the tests above run again with zero copy on.
 * Source: OASIS virtio v1.2 §2.7, §4.1.4.10, §5.2.
 */
#include "tests/unit/test_vdev_common.h"
#include "vmm/dev/vblk.h"
#include "vmm/dev/vpci.h"

#define RAM_BYTES   (1u << 20)
#define DISK_SECT   64u
#define GUARD_SECT  8u
#define IO_BASE     0xC000
#define IRQ         11
#define QUEUE_PFN   0x10       /* rings at 0x10000 */
#define DESC_GPA    (QUEUE_PFN * 4096u)
#define AVAIL_GPA   (DESC_GPA + 16u * VIRTIO_QUEUE_SIZE)
#define USED_GPA    (DESC_GPA + 4096u)  /* 16*128 + 4 + 256 + 2 rounds up to one page */

static uint8_t ram[RAM_BYTES];
static uint8_t disk[(DISK_SECT + 2 * GUARD_SECT) * 512];
static struct vpci pci;
static struct vblk *blk;
static int line_level, line_raises;
static unsigned long backend_calls;
static bool read_only;
static uint16_t avail_idx, used_seen; /* the driver's side of the rings */

static struct fake_ram guest_ram = { ram, RAM_BYTES };
static uint8_t *sector(uint64_t s) { return disk + (GUARD_SECT + s) * 512; }
static int be_read(void *o, uint64_t s, uint32_t n, void *buf)
{
    backend_calls++;
    assert_true(s + n <= DISK_SECT);
    memcpy(buf, sector(s), n * 512u);
    return 0;
}
static bool last_cached;
static int be_write(void *o, uint64_t s, uint32_t n, const void *buf, bool cached)
{
    backend_calls++;
    last_cached = cached;
    assert_true(s + n <= DISK_SECT);
    memcpy(sector(s), buf, n * 512u);
    return 0;
}
static int be_flush(void *o) { backend_calls++; return 0; }

/* Zero copy. Host "physical" memory is ram seen from HBASE; guest page g
 * is host page g, except that pages 0x50-0x5F swap in pairs (g ^ 1), so
 * that consecutive guest pages there are not contiguous in the host. */
#define HBASE 0x10000000u
static bool zero_copy, refuse_sg;
static unsigned long sg_calls, sg_pieces;
static struct { uint32_t gpa, len; } written[16];
static unsigned nwritten;
static uint32_t host_of(uint32_t gpa)
{
    uint32_t g = gpa >> 12;
    return (g >= 0x50 && g <= 0x5F ? g ^ 1 : g) << 12 | (gpa & 0xFFF);
}
static int zc_read(void *o, uint32_t gpa, void *buf, uint32_t len)
{
    if ((uint64_t)gpa + len > RAM_BYTES)
        return E_RANGE;
    for (uint32_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = ram[host_of(gpa + i)];
    return 0;
}
static int zc_write(void *o, uint32_t gpa, const void *buf, uint32_t len)
{
    if ((uint64_t)gpa + len > RAM_BYTES)
        return E_RANGE;
    for (uint32_t i = 0; i < len; i++)
        ram[host_of(gpa + i)] = ((const uint8_t *)buf)[i];
    return 0;
}
static int zc_frame(void *o, uint32_t gpa, bool for_write, uint32_t *hpa)
{
    assert_int_equal(gpa & 0xFFF, 0);
    if (gpa >= RAM_BYTES)
        return E_RANGE;
    *hpa = HBASE + host_of(gpa);
    return 0;
}
static void zc_written(void *o, uint32_t gpa, uint32_t len)
{
    assert_true(nwritten < 16);
    written[nwritten].gpa = gpa, written[nwritten++].len = len;
}
static int be_rw_sg(void *o, uint64_t s, uint32_t n, const struct dma_seg *sg, unsigned nseg, bool write,
                    bool cached)
{
    if (refuse_sg)
        return E_NOTSUP;
    sg_calls++;
    sg_pieces = nseg;
    if (write)
        last_cached = cached;
    assert_true(s + n <= DISK_SECT);
    uint8_t *d = sector(s);
    uint64_t total = 0;
    for (unsigned i = 0; i < nseg; i++) {
        assert_true(sg[i].hpa >= HBASE && sg[i].hpa - HBASE + (uint64_t)sg[i].len <= RAM_BYTES);
        assert_int_equal((sg[i].hpa | sg[i].len) & 1, 0);
        uint8_t *h = ram + (sg[i].hpa - HBASE);
        if (write)
            memcpy(d, h, sg[i].len);
        else
            memcpy(h, d, sg[i].len);
        d += sg[i].len, total += sg[i].len;
    }
    assert_int_equal(total, (uint64_t)n * 512);
    return 0;
}
/* Started reads: the test plays the backend's I/O thread. pending holds
 * the ios submitted and not yet done. */
static bool async_on;
static struct vdev_io *pending[VBLK_INFLIGHT + 1];
static unsigned npending, nsubmitted, drains;
static int be_submit(void *o, struct vdev_io *io)
{
    assert_true(npending < VBLK_INFLIGHT);                       /* never more than the device's slots */
    assert_false(io->write);                                     /* only reads are started */
    assert_false(io->done);
    pending[npending++] = io;
    nsubmitted++;
    return 0;
}
/* The I/O thread ends pending[i] with rc, having moved its data if rc is 0. */
static void finish(unsigned i, int rc)
{
    struct vdev_io *io = pending[i];
    if (rc == 0)
        assert_int_equal(be_rw_sg(NULL, io->sector, io->count, io->sg, io->n, io->write, io->cached), 0);
    io->rc = rc;
    __atomic_store_n(&io->done, true, __ATOMIC_RELEASE);
    pending[i] = pending[--npending];
}
/* The pending io reading sector sect. */
static unsigned pending_at(uint64_t sect)
{
    for (unsigned i = 0; i < npending; i++)
        if (pending[i]->sector == sect)
            return i;
    fail_msg("no started read at sector %llu", (unsigned long long)sect);
    return 0;
}
static void be_drain(void *o)
{
    drains++;
    while (npending)
        finish(0, 0);
}
/* The driver's kick; with started reads, the backend then finishes them
 * all and the vCPU polls, as it does before it next enters the guest. */
static void kick(void)
{
    outw(0, IO_BASE + 0x10);
    while (async_on && npending) {
        finish(0, 0);
        vblk_poll(blk);
    }
}

static void irq_set(void *o, int irq, int level)
{
    assert_int_equal(irq, IRQ);
    line_raises += level && !line_level;
    line_level = level;
}

static uint32_t cfg(unsigned devfn, unsigned off)
{
    outl(0x80000000u | devfn << 8 | off, 0xCF8);
    return inl(0xCFC);
}
static void cfg_write(unsigned devfn, unsigned off, uint32_t v)
{
    outl(0x80000000u | devfn << 8 | off, 0xCF8);
    outl(v, 0xCFC);
}

static int setup(void **state)
{
    memset(ram, 0, sizeof ram);
    for (unsigned i = 0; i < sizeof disk; i++)
        disk[i] = (uint8_t)(i * 7 + 3);
    iobus_init(&test_bus);
    vpci_init(&pci);
    assert_int_equal(vpci_attach(&pci, &test_bus), 0);
    blk = calloc(1, sizeof(*blk));
    struct vdev_disk be = { be_read, be_write, be_flush, NULL, DISK_SECT, read_only, "hv86-test", NULL, NULL, NULL, 0 };
    struct vdev_irq line = { irq_set, NULL };
    struct vdev_mem mem = fake_ram_mem(&guest_ram);
    if (zero_copy) {
        be.rw_sg = be_rw_sg;
        mem = (struct vdev_mem){ zc_read, zc_write, NULL, zc_frame, zc_written };
    }
    if (async_on)
        be.submit = be_submit, be.drain = be_drain;
    npending = nsubmitted = drains = 0;
    sg_calls = sg_pieces = nwritten = 0;
    refuse_sg = false;
    vblk_init(blk, 3 << 3, IO_BASE, IRQ, line, mem, &be);
    assert_int_equal(vblk_attach(blk, &pci, &test_bus), 0);
    line_level = 0;
    vblk_reset(blk);
    line_raises = 0;
    backend_calls = 0;
    avail_idx = used_seen = 0;
    return 0;
}
static int teardown(void **state)
{
    free(blk);
    read_only = false;
    return 0;
}
static int setup_zc(void **state)
{
    zero_copy = true;
    return setup(state);
}
static int teardown_zc(void **state)
{
    zero_copy = false;
    return teardown(state);
}
static int setup_async(void **state)
{
    async_on = true;
    return setup_zc(state);
}
static int teardown_async(void **state)
{
    async_on = false;
    return teardown_zc(state);
}

/* The legacy driver's bring-up (virtio_pci_legacy.c, virtio_blk.c). */
static void driver_up(void)
{
    outb(0, IO_BASE + 0x12);                       /* reset */
    outb(1, IO_BASE + 0x12);                       /* ACKNOWLEDGE */
    outb(3, IO_BASE + 0x12);                       /* DRIVER */
    uint32_t f = inl(IO_BASE + 0x00);
    outl(f, IO_BASE + 0x04);
    outw(0, IO_BASE + 0x0E);                       /* queue 0 */
    assert_int_equal(inw(IO_BASE + 0x0C), VIRTIO_QUEUE_SIZE);
    outl(QUEUE_PFN, IO_BASE + 0x08);
    outb(7, IO_BASE + 0x12);                       /* DRIVER_OK */
}

static void put_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *d = ram + DESC_GPA + 16 * i;
    memcpy(d, &addr, 8), memcpy(d + 8, &len, 4), memcpy(d + 12, &flags, 2), memcpy(d + 14, &next, 2);
}
static void make_avail(uint16_t head)
{
    memcpy(ram + AVAIL_GPA + 4 + 2 * (avail_idx % VIRTIO_QUEUE_SIZE), &head, 2);
    avail_idx++;
    memcpy(ram + AVAIL_GPA + 2, &avail_idx, 2);
}
static uint16_t used_idx(void) { uint16_t v; memcpy(&v, ram + USED_GPA + 2, 2); return v; }

/* Submit header (type, sector), a data buffer at 0x40000 of len bytes and a
 * status byte at 0x30000, as three descriptors; kick; return the status. */
static uint8_t request(uint32_t type, uint64_t sect, uint32_t len, bool data_writable)
{
    uint8_t hdr[16] = { 0 };
    memcpy(hdr, &type, 4), memcpy(hdr + 8, &sect, 8);
    memcpy(ram + 0x20000, hdr, 16);
    ram[0x30000] = 0xEE;
    put_desc(0, 0x20000, 16, 1, 1);
    if (len) {
        put_desc(1, 0x40000, len, 1 | (data_writable ? 2 : 0), 2);
        put_desc(2, 0x30000, 1, 2, 0);
    } else {
        put_desc(1, 0x30000, 1, 2, 0);
    }
    make_avail(0);
    kick();
    assert_int_equal(used_idx(), ++used_seen);
    return ram[0x30000];
}

static void test_discovery(void **state)
{
    unsigned f = 3 << 3;
    assert_int_equal(cfg(f, 0x00), 0x10011AF4u);
    assert_int_equal(cfg(f, 0x08) & 0xFFFFFF00u, 0x01000000u);   /* class 01/00, revision 0 */
    assert_int_equal(cfg(f, 0x08) & 0xFF, 0);
    assert_int_equal(cfg(f, 0x2C), 0x00021AF4u);                 /* subsystem 2 */
    assert_int_equal(cfg(f, 0x3C) & 0xFFFF, 0x0100 | IRQ);       /* pin A, line 11 */
    assert_int_equal(cfg(f, 0x10), IO_BASE | 1);
    cfg_write(f, 0x04, 0);                                       /* decode off for sizing */
    cfg_write(f, 0x10, 0xFFFFFFFFu);
    assert_int_equal(cfg(f, 0x10), ~(VBLK_BAR_BYTES - 1u) | 1u);
    assert_int_equal(inl(IO_BASE), 0xFFFFFFFFu);                 /* not decoding */
    cfg_write(f, 0x10, 0xD000);                                  /* moved */
    cfg_write(f, 0x04, 1);
    assert_int_equal(inl(0xD000) & (1u << 9), 1u << 9);          /* FLUSH offered, at the new place */
    assert_int_equal(inl(IO_BASE), 0xFFFFFFFFu);                 /* and not at the old one */
    cfg_write(f, 0x10, IO_BASE);
    uint32_t feat = inl(IO_BASE);
    assert_true((feat & (1u << 2)) && (feat & (1u << 6)) && !(feat & (1u << 5)));
    assert_int_equal(inl(IO_BASE + 0x14), DISK_SECT);            /* capacity */
    assert_int_equal(inl(IO_BASE + 0x14 + 20), 512);             /* blk_size */
    assert_int_equal(cfg(4 << 3, 0), 0xFFFFFFFFu);               /* nothing at 00:04.0 */
}

static void test_requests(void **state)
{
    driver_up();
    for (unsigned i = 0; i < 1024; i++)
        ram[0x40000 + i] = (uint8_t)(i ^ 0x5A);
    assert_int_equal(request(1, 5, 1024, false), 0);             /* OUT 2 sectors at 5 */
    assert_memory_equal(sector(5), ram + 0x40000, 1024);
    assert_true(line_level && line_raises == 1);
    assert_int_equal(inb(IO_BASE + 0x13), 1);                    /* ISR: queue interrupt, read clears */
    assert_false(line_level);
    memset(ram + 0x40000, 0, 1024);
    assert_int_equal(request(0, 5, 1024, true), 0);              /* IN */
    assert_memory_equal(sector(5), ram + 0x40000, 1024);
    uint32_t used_len;
    memcpy(&used_len, ram + USED_GPA + 4 + 8 * 1 + 4, 4);
    assert_int_equal(used_len, 1025);                            /* data + status */
    assert_int_equal(request(4, 0, 0, false), 0);                /* FLUSH */
    assert_int_equal(request(8, 0, 20, true), 0);                /* GET_ID */
    assert_string_equal((char *)ram + 0x40000, "hv86-test");
    assert_int_equal(request(99, 0, 0, false), 2);               /* UNSUPP */
    assert_int_equal(blk->st.reads, 1);
    assert_int_equal(blk->st.writes, 1);
    assert_true(last_cached);                                    /* FLUSH negotiated: write-back */
    outl(inl(IO_BASE) & ~(1u << 9), IO_BASE + 0x04);             /* a driver without FLUSH */
    assert_int_equal(request(1, 7, 512, false), 0);
    assert_false(last_cached);                                   /* gets write-through */
}

static void test_bad_requests(void **state)
{
    driver_up();
    uint8_t before[sizeof disk];
    memcpy(before, disk, sizeof disk);
    unsigned long calls = backend_calls;
    assert_int_equal(request(1, DISK_SECT, 512, false), 1);      /* past the end */
    assert_int_equal(request(1, DISK_SECT - 1, 1024, false), 1); /* runs past the end */
    assert_int_equal(request(1, UINT64_MAX, 512, false), 1);     /* wraps */
    assert_int_equal(request(0, 0, 100, true), 1);               /* not whole sectors */
    put_desc(1, 0, VBLK_MAX_REQUEST + 512, 3, 2);                /* too big (IN) */
    put_desc(0, 0x20000, 16, 1, 1);
    put_desc(2, 0x30000, 1, 2, 0);
    uint32_t in = 0;
    memcpy(ram + 0x20000, &in, 4);
    make_avail(0);
    kick();
    assert_int_equal(ram[0x30000], 1);
    assert_int_equal(used_idx(), ++used_seen);
    put_desc(1, 0xFFFFF000u, 512, 3, 2);                         /* data outside RAM: IOERR */
    make_avail(0);
    kick();
    assert_int_equal(ram[0x30000], 1);
    assert_int_equal(used_idx(), ++used_seen);
    calls = backend_calls - 1;                                   /* that IN read the disk */
    assert_int_equal(backend_calls, calls + 1);                      /* the backend never saw one */
    assert_memory_equal(before, disk, sizeof disk);
    assert_int_equal(inb(IO_BASE + 0x12) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

static void test_read_only(void **state)
{
    bool zc = zero_copy;
    teardown(state);
    read_only = true;
    zero_copy = zc;
    setup(state);
    assert_true(inl(IO_BASE) & (1u << 5));                       /* RO offered */
    driver_up();
    uint8_t before[sizeof disk];
    memcpy(before, disk, sizeof disk);
    assert_int_equal(request(1, 0, 512, false), 1);
    assert_memory_equal(before, disk, sizeof disk);
    assert_int_equal(request(0, 0, 512, true), 0);               /* reads work */
}

/* A malformed chain: the queue is refused, NEEDS_RESET and ISR bit 1 set,
 * nothing written; a reset brings it back. */
static void broken_case(void (*make)(void))
{
    memset(ram + DESC_GPA, 0, 3 * 4096);
    driver_up();
    used_seen = avail_idx = 0;
    uint8_t before[sizeof disk];
    memcpy(before, disk, sizeof disk);
    uint8_t ram_before[0x10000];
    memcpy(ram_before, ram + 0x40000, sizeof ram_before);
    make();
    outw(0, IO_BASE + 0x10);
    assert_true(inb(IO_BASE + 0x12) & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(inb(IO_BASE + 0x13), 2);
    assert_int_equal(used_idx(), 0);
    assert_memory_equal(before, disk, sizeof disk);
    assert_memory_equal(ram_before, ram + 0x40000, sizeof ram_before);
    outw(0, IO_BASE + 0x10);                                     /* ignored while broken */
    assert_int_equal(used_idx(), 0);
    memset(ram + DESC_GPA, 0, 3 * 4096);
    avail_idx = used_seen = 0;
    driver_up();                                                 /* reset: usable again */
    assert_int_equal(request(4, 0, 0, false), 0);
}
static void make_loop(void) { put_desc(0, 0x20000, 16, 1, 1); put_desc(1, 0x40000, 512, 3, 0); make_avail(0); }
static void make_bad_index(void) { put_desc(0, 0x20000, 16, 1, 200); make_avail(0); }
static void make_bad_head(void) { memset(ram + AVAIL_GPA + 4, 0xFF, 2); avail_idx = 1; memcpy(ram + AVAIL_GPA + 2, &avail_idx, 2); }
static void make_outside_ram(void) { memset(ram + 0x20000, 0, 16); put_desc(0, 0x20000, 16, 1, 1); put_desc(1, 0xFFFFF000u, 1, 2, 0); make_avail(0); } /* no byte for the status */
static void make_read_after_write(void) { put_desc(0, 0x30000, 1, 3, 1); put_desc(1, 0x20000, 16, 0, 0); make_avail(0); }
static void make_jump(void) { put_desc(0, 0x20000, 16, 0, 0); avail_idx = VIRTIO_QUEUE_SIZE + 1; memcpy(ram + AVAIL_GPA + 2, &avail_idx, 2); }
static void test_broken_chains(void **state)
{
    void (*cases[])(void) = { make_loop, make_bad_index, make_bad_head, make_outside_ram, make_read_after_write, make_jump };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++)
        broken_case(cases[i]);
    assert_int_equal(blk->vp.bad_chains, 6);
}

/* Random descriptor tables and rings: the backend's asserts check every
 * sector it is given, the guards stay, and nothing outside RAM is hit. */
static void test_random_rings(void **state)
{
    uint32_t rs = 0x7e57b10c;
    uint8_t guard_lo[GUARD_SECT * 512], guard_hi[GUARD_SECT * 512];
    memcpy(guard_lo, disk, sizeof guard_lo);
    memcpy(guard_hi, disk + (GUARD_SECT + DISK_SECT) * 512, sizeof guard_hi);
    for (int i = 0; i < 20000; i++) {
        if (i % 50 == 0) {
            driver_up();
            avail_idx = used_seen = 0;
        }
        for (unsigned j = 0; j < 8; j++) {
            rs ^= rs << 13, rs ^= rs >> 17, rs ^= rs << 5;
            unsigned k = rs % 8;
            uint32_t addr = (rs >> 8) % 3 == 0 ? rs : 0x20000 + (rs % 0x30000);
            put_desc(k, addr, (rs >> 3) % 3 == 0 ? 16 : (rs >> 5) % 4096, (uint16_t)((rs >> 11) & 7), (uint16_t)((rs >> 14) % 10));
        }
        uint32_t hdr[4] = { rs % 10, 0, rs % (DISK_SECT + 4), 0 };
        if (rs & 1)
            hdr[2] = (uint32_t)-1;
        memcpy(ram + 0x20000, hdr, sizeof hdr);
        make_avail((uint16_t)(rs % 9));
        kick();
    }
    assert_memory_equal(guard_lo, disk, sizeof guard_lo);
    assert_memory_equal(guard_hi, disk + (GUARD_SECT + DISK_SECT) * 512, sizeof guard_hi);
}


static void test_no_interrupt(void **state)
{
    driver_up();
    uint16_t no_interrupt = 1;
    memcpy(ram + AVAIL_GPA, &no_interrupt, 2);                   /* avail->flags */
    assert_int_equal(request(1, 5, 512, false), 0);
    assert_int_equal(request(0, 5, 512, true), 0);               /* both completed (used index checked) */
    assert_int_equal(line_raises, 0);
    assert_false(line_level);
    assert_int_equal(inb(IO_BASE + 0x13), 0);                    /* ISR: nothing */
    no_interrupt = 0;
    memcpy(ram + AVAIL_GPA, &no_interrupt, 2);
    assert_int_equal(request(4, 0, 0, false), 0);
    assert_int_equal(line_raises, 1);
    assert_int_equal(inb(IO_BASE + 0x13), 1);
}

/* A request with its data in the given (gpa, len) pieces, descriptors
 * 1..n; header at 0x20000, status at 0x30000. Returns the status. */
static uint8_t request_at(uint32_t type, uint64_t sect, const uint32_t (*pieces)[2], unsigned n, bool in)
{
    uint8_t hdr[16] = { 0 };
    memcpy(hdr, &type, 4), memcpy(hdr + 8, &sect, 8);
    memcpy(ram + 0x20000, hdr, 16);
    ram[0x30000] = 0xEE;
    put_desc(0, 0x20000, 16, 1, 1);
    for (unsigned i = 0; i < n; i++)
        put_desc(1 + i, pieces[i][0], pieces[i][1], 1 | (in ? 2 : 0), (uint16_t)(2 + i));
    put_desc(1 + n, 0x30000, 1, 2, 0);
    make_avail(0);
    kick();
    assert_int_equal(used_idx(), ++used_seen);
    return ram[0x30000];
}

/* 32 KiB at guest 0x50000 in two descriptors that meet inside a page. */
static const uint32_t split_buf[2][2] = { { 0x50000, 3072 }, { 0x50C00, 32768 - 3072 } };

static void test_zero_copy(void **state)
{
    uint8_t pattern[32768], back[32768];
    driver_up();
    for (unsigned i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i * 13 + (i >> 9));
    zc_write(NULL, 0x50000, pattern, sizeof pattern);
    assert_int_equal(request_at(1, 0, split_buf, 2, false), 0);     /* OUT 64 sectors */
    assert_memory_equal(sector(0), pattern, sizeof pattern);
    assert_int_equal(sg_calls, 1);
    assert_int_equal(sg_pieces, 8);                                 /* one per page: none contiguous */
    assert_int_equal(backend_calls, 0);                             /* no copy */
    memset(back, 0, sizeof back);
    zc_write(NULL, 0x50000, back, sizeof back);
    assert_int_equal(request_at(0, 0, split_buf, 2, true), 0);      /* IN */
    zc_read(NULL, 0x50000, back, sizeof back);
    assert_memory_equal(back, pattern, sizeof back);
    assert_int_equal(nwritten, 2);                                  /* exactly the data, not the status */
    assert_int_equal(written[0].gpa, 0x50000);
    assert_int_equal(written[0].len, 3072);
    assert_int_equal(written[1].gpa, 0x50C00);
    assert_int_equal(written[1].len, 32768 - 3072);
    assert_int_equal(blk->st.zero_copy, 2);
    /* Where guest pages are contiguous in the host: one piece. */
    static const uint32_t flat[1][2] = { { 0x44000, 16384 } };
    assert_int_equal(request_at(0, 8, flat, 1, true), 0);
    assert_int_equal(sg_pieces, 1);
    assert_memory_equal(ram + 0x44000, sector(8), 16384);
    assert_int_equal(backend_calls, 0);
}

static void test_zero_copy_fallbacks(void **state)
{
    uint8_t back[1024];
    driver_up();
    /* An odd address: the bounce buffer serves it, with the same bytes. */
    static const uint32_t odd[1][2] = { { 0x50001, 1024 } };
    assert_int_equal(request_at(0, 3, odd, 1, true), 0);
    zc_read(NULL, 0x50001, back, sizeof back);
    assert_memory_equal(back, sector(3), sizeof back);
    assert_int_equal(sg_calls, 0);
    assert_int_equal(backend_calls, 1);
    assert_int_equal(blk->st.zero_copy, 0);
    /* The backend turns zero copy down: copied, same bytes. */
    refuse_sg = true;
    static const uint32_t even[1][2] = { { 0x52000, 1024 } };
    for (unsigned i = 0; i < sizeof back; i++)
        back[i] = (uint8_t)~i;
    zc_write(NULL, 0x52000, back, sizeof back);
    assert_int_equal(request_at(1, 9, even, 1, false), 0);
    assert_memory_equal(sector(9), back, sizeof back);
    assert_int_equal(backend_calls, 2);
    assert_int_equal(blk->st.zero_copy, 0);
    /* Data outside RAM: IOERR, and no backend call either way. */
    refuse_sg = false;
    static const uint32_t outside[2][2] = { { 0x52000, 512 }, { RAM_BYTES - 512, 1024 } };
    assert_int_equal(request_at(0, 0, outside, 2, true), 1);
    assert_int_equal(backend_calls, 2);
    assert_int_equal(sg_calls, 0);
    assert_int_equal(nwritten, 0);
}

/* Read k of a batch: header at 0x20000 + 16k, 4 KiB of data at
 * 0x60000 + 4 KiB * k, status at 0x30000 + k; descriptors 3k..3k+2. */
static void queue_read(unsigned k, uint64_t sect)
{
    uint8_t hdr[16] = { 0 };
    memcpy(hdr + 8, &sect, 8);
    memcpy(ram + 0x20000 + 16 * k, hdr, 16);
    ram[0x30000 + k] = 0xEE;
    put_desc(3 * k, 0x20000 + 16 * k, 16, 1, (uint16_t)(3 * k + 1));
    put_desc(3 * k + 1, 0x60000 + 0x1000 * k, 4096, 3, (uint16_t)(3 * k + 2));
    put_desc(3 * k + 2, 0x30000 + k, 1, 2, 0);
    make_avail((uint16_t)(3 * k));
}
/* Used ring entry i: the chain's head and the bytes written. */
static void used_entry(unsigned i, uint32_t *id, uint32_t *len)
{
    memcpy(id, ram + USED_GPA + 4 + 8 * i, 4);
    memcpy(len, ram + USED_GPA + 8 + 8 * i, 4);
}

static void test_async_reads(void **state)
{
    enum { N = VBLK_INFLIGHT + 2 };
    driver_up();
    memset(ram + 0x60000, 0, N * 4096);
    for (unsigned k = 0; k < N; k++)
        queue_read(k, 8 * k);
    outw(0, IO_BASE + 0x10);
    assert_int_equal(nsubmitted, VBLK_INFLIGHT);                 /* the rest wait in the queue */
    assert_int_equal(used_idx(), 0);                             /* nothing handed back yet */
    assert_int_equal(line_raises, 0);
    assert_int_equal(nwritten, 0);
    assert_false(vblk_ready(blk));
    assert_true(vblk_busy(blk));                                 /* the disk may still write those frames */
    assert_false(vblk_poll(blk));
    for (unsigned i = 0; i < N * 4096; i++)
        assert_int_equal(ram[0x60000 + i], 0);
    /* The third finishes first: it alone comes back, and a waiting read starts. */
    finish(pending_at(16), 0);
    assert_true(vblk_ready(blk));
    assert_true(vblk_poll(blk));
    assert_false(vblk_ready(blk));
    assert_int_equal(used_idx(), 1);
    uint32_t id, len;
    used_entry(0, &id, &len);
    assert_int_equal(id, 6);
    assert_int_equal(len, 4097);                                 /* data + status */
    assert_int_equal(ram[0x30002], 0);
    assert_int_equal(ram[0x30000], 0xEE);
    assert_memory_equal(ram + 0x62000, sector(16), 4096);
    assert_int_equal(nwritten, 1);
    assert_int_equal(written[0].gpa, 0x62000);
    assert_int_equal(written[0].len, 4096);
    assert_int_equal(line_raises, 1);
    assert_int_equal(nsubmitted, VBLK_INFLIGHT + 1);
    /* The rest, newest first. */
    while (npending) {
        finish(npending - 1, 0);
        vblk_poll(blk);
    }
    assert_int_equal(nsubmitted, N);
    assert_false(vblk_busy(blk));
    assert_int_equal(used_idx(), N);
    for (unsigned k = 0; k < N; k++) {
        assert_int_equal(ram[0x30000 + k], 0);
        assert_memory_equal(ram + 0x60000 + 0x1000 * k, sector(8 * k), 4096);
    }
    assert_int_equal(blk->st.reads, N);
    assert_int_equal(blk->st.zero_copy, N);
    assert_int_equal(nwritten, N);
    assert_int_equal(backend_calls, 0);                          /* never copied */
}

static void test_async_errors(void **state)
{
    driver_up();
    memset(ram + 0x60000, 0, 3 * 4096);
    queue_read(0, 0);
    queue_read(1, 8);
    outw(0, IO_BASE + 0x10);
    assert_int_equal(npending, 2);
    /* A flush and a write while the reads are out: served at once. */
    put_desc(6, 0x20040, 16, 1, 7);
    put_desc(7, 0x30010, 1, 2, 0);
    memset(ram + 0x20040, 0, 16);
    ram[0x20040] = 4;
    make_avail(6);
    outw(0, IO_BASE + 0x10);
    assert_int_equal(used_idx(), 1);
    assert_int_equal(ram[0x30010], 0);
    assert_int_equal(nsubmitted, 2);
    /* A disk error: IOERR, no data, nothing reported written. */
    finish(pending_at(0), E_IO);
    vblk_poll(blk);
    assert_int_equal(used_idx(), 2);
    assert_int_equal(ram[0x30000], 1);
    uint32_t id, len;
    used_entry(1, &id, &len);
    assert_int_equal(len, 1);
    assert_int_equal(blk->st.errors, 1);
    assert_int_equal(nwritten, 0);
    /* The backend turns it down late: copied through the bounce buffer. */
    finish(pending_at(8), E_NOTSUP);
    vblk_poll(blk);
    assert_int_equal(used_idx(), 3);
    assert_int_equal(ram[0x30001], 0);
    assert_memory_equal(ram + 0x61000, sector(8), 4096);
    assert_int_equal(backend_calls, 2);                          /* the flush, and the copy's read */
    assert_int_equal(blk->st.zero_copy, 0);
}

/* A read shorter than submit_min is done at once, a longer one started. */
static void test_async_submit_min(void **state)
{
    blk->be.submit_min = 8192;
    driver_up();
    queue_read(0, 0);                                            /* 4 KiB */
    outw(0, IO_BASE + 0x10);
    assert_int_equal(nsubmitted, 0);
    assert_int_equal(used_idx(), 1);
    assert_int_equal(ram[0x30000], 0);
    assert_memory_equal(ram + 0x60000, sector(0), 4096);
    assert_int_equal(sg_calls, 1);
    static const uint32_t big[1][2] = { { 0x44000, 8192 } };     /* 8 KiB: started */
    uint8_t hdr[16] = { 0 };
    memcpy(ram + 0x20000, hdr, 16);
    put_desc(0, 0x20000, 16, 1, 1);
    put_desc(1, big[0][0], big[0][1], 3, 2);
    put_desc(2, 0x30000, 1, 2, 0);
    make_avail(0);
    outw(0, IO_BASE + 0x10);
    assert_int_equal(nsubmitted, 1);
    assert_int_equal(used_idx(), 1);
    finish(0, 0);
    assert_true(vblk_poll(blk));
    assert_int_equal(used_idx(), 2);
    assert_memory_equal(ram + 0x44000, sector(0), 8192);
}

static void test_async_reset(void **state)
{
    driver_up();
    queue_read(0, 0);
    queue_read(1, 8);
    outw(0, IO_BASE + 0x10);
    assert_int_equal(npending, 2);
    outb(0, IO_BASE + 0x12);                                     /* the driver resets the device */
    assert_int_equal(drains, 1);                                 /* it waited for the disk */
    assert_int_equal(npending, 0);
    assert_int_equal(nwritten, 2);                               /* what the disk wrote is reported */
    assert_int_equal(used_idx(), 0);                             /* nothing handed back */
    assert_false(vblk_ready(blk));
    assert_false(vblk_poll(blk));
    memset(ram + DESC_GPA, 0, 3 * 4096);
    avail_idx = used_seen = 0;
    driver_up();
    assert_int_equal(request(0, 5, 1024, true), 0);              /* and it works again */
    assert_memory_equal(sector(5), ram + 0x40000, 1024);
    assert_int_equal(drains, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_chains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_rings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_copy, setup_zc, teardown_zc),
        cmocka_unit_test_setup_teardown(test_zero_copy_fallbacks, setup_zc, teardown_zc),
        cmocka_unit_test_setup_teardown(test_requests, setup_zc, teardown_zc),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup_zc, teardown_zc),
        cmocka_unit_test_setup_teardown(test_read_only, setup_zc, teardown_zc),
        cmocka_unit_test_setup_teardown(test_broken_chains, setup_zc, teardown_zc),
        cmocka_unit_test_setup_teardown(test_random_rings, setup_zc, teardown_zc),
        cmocka_unit_test_setup_teardown(test_async_reads, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_async_errors, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_async_reset, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_async_submit_min, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_requests, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_read_only, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_broken_chains, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_random_rings, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_no_interrupt, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_zero_copy, setup_async, teardown_async),
        cmocka_unit_test_setup_teardown(test_zero_copy_fallbacks, setup_async, teardown_async),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
