/*
 * The PIIX3 IDE controller and its ATA disks (vmm/dev/vide.c), driven
 * through the PCI bus and the ports as Linux's ata_piix and libata-sff do,
 * against a fake guest RAM and disks in memory with guard sectors on both
 * sides:
 *   - discovery: the ISA bridge at 00:01.0 (multi-function header), the
 *     IDE function's IDs, class, programming interface, BAR4 sizing, the
 *     IDETIM decode bits; clearing decode or moving BAR4 moves the ports;
 *   - reset: SRST holds BSY, then the ATA signature; an absent device 1
 *     reads 0, a channel without drives floats;
 *   - IDENTIFY: capacity (28- and 48-bit), strings, feature words, the
 *     integrity checksum, modes selected by SET FEATURES; INTRQ and nIEN;
 *   - data: PIO write and read (one interrupt per block), DMA write and
 *     read with 48-bit addresses through a scattered PRD table, CHS
 *     addressing, FLUSH CACHE reaching the backend, write cache on/off;
 *   - bad input: a sector past the end (IDNF, the backend never called),
 *     writes to a read-only disk, an unknown command, a PRD table that is
 *     short, outside guest RAM, or crossing 64 KiB, a direction that does
 *     not match the command (ABRT and the bus master error bit);
 *   - random traffic: 20,000 random register programs; the backend only
 *     ever sees sectors inside the disk and the guard sectors stay intact.
 * Sources: ATA/ATAPI-6 (T13/1410D), SFF-8038i, Intel 82371SB datasheet.
 */
#include "tests/unit/test_vdev_common.h"
#include "vmm/dev/vide.h"
#include "vmm/dev/vpci.h"

#define RAM_BYTES   (1u << 20)
#define DISK_SECT   300u               /* more than one 8-bit sector count */
#define GUARD_SECT  8u
#define BM_IO       0xC100
#define PRD_GPA     0x8000u
#define BUF_GPA     0x20000u
#define ISA_DEVFN   (1 << 3)
#define IDE_DEVFN   (1 << 3 | 1)

static uint8_t ram[RAM_BYTES];
static uint8_t disk[2][(DISK_SECT + 2 * GUARD_SECT) * 512];
static struct vpci pci;
static struct vide *ide;
static int level[16], raises[16];
static unsigned long backend_calls, flushes;
static bool last_cached;

static struct fake_ram guest_ram = { ram, RAM_BYTES };
static uint8_t *sector(unsigned d, uint64_t s) { return disk[d] + (GUARD_SECT + s) * 512; }
static int be_read(void *o, uint64_t s, uint32_t n, void *buf)
{
    backend_calls++;
    assert_true(s + n <= DISK_SECT);
    memcpy(buf, sector((unsigned)(uintptr_t)o, s), n * 512u);
    return 0;
}
static int be_write(void *o, uint64_t s, uint32_t n, const void *buf, bool cached)
{
    backend_calls++;
    last_cached = cached;
    assert_true(s + n <= DISK_SECT);
    memcpy(sector((unsigned)(uintptr_t)o, s), buf, n * 512u);
    return 0;
}
static int be_flush(void *o) { backend_calls++; flushes++; return 0; }
static void irq_set(void *o, int irq, int lv)
{
    assert_true(irq == VIDE_PRIMARY_IRQ || irq == VIDE_SECONDARY_IRQ);
    assert_int_not_equal(level[irq], lv);        /* only changes are driven */
    raises[irq] += lv;
    level[irq] = lv;
}

static uint32_t cfg(unsigned devfn, unsigned off, unsigned size)
{
    outl(0x80000000u | devfn << 8 | (off & 0xFC), 0xCF8);
    uint32_t v = inl(0xCFC);
    return (v >> 8 * (off & 3)) & (size == 4 ? 0xFFFFFFFFu : (1u << 8 * size) - 1);
}
static void cfg_write(unsigned devfn, unsigned off, uint32_t v)
{
    outl(0x80000000u | devfn << 8 | off, 0xCF8);
    outl(v, 0xCFC);
}

/* Drives in the given slots (vide_add_drive), on disk[0] and disk[1];
 * the second one read-only when asked. */
static void build(unsigned slot0, unsigned slot1, bool slave_ro)
{
    for (unsigned d = 0; d < 2; d++)
        for (unsigned i = 0; i < sizeof disk[d]; i++)
            disk[d][i] = (uint8_t)(i * 7 + 3 + d);
    memset(ram, 0, sizeof ram);
    iobus_init(&test_bus);
    vpci_init(&pci);
    assert_int_equal(vpci_attach(&pci, &test_bus), 0);
    ide = calloc(1, sizeof(*ide));
    struct vdev_irq line = { irq_set, NULL };
    struct vdev_mem mem = fake_ram_mem(&guest_ram);
    vide_init(ide, BM_IO, line, mem);
    struct vdev_disk d0 = { be_read, be_write, be_flush, (void *)0, DISK_SECT, false, "hv86-ata0p1", NULL, NULL, NULL, 0 };
    struct vdev_disk d1 = { be_read, be_write, be_flush, (void *)1, DISK_SECT, slave_ro, "hv86-ata0p2", NULL, NULL, NULL, 0 };
    assert_int_equal(vide_add_drive(ide, slot0, &d0), 0);
    assert_int_equal(vide_add_drive(ide, slot0, &d0), E_EXIST);
    assert_int_equal(vide_add_drive(ide, 4, &d0), E_INVAL);
    if (slot1 < 4)
        assert_int_equal(vide_add_drive(ide, slot1, &d1), 0);
    assert_int_equal(vide_attach(ide, &pci, &test_bus), 0);
    level[VIDE_PRIMARY_IRQ] = level[VIDE_SECONDARY_IRQ] = 1; /* unknown: reset drives them low */
    vide_reset(ide);
    memset(raises, 0, sizeof raises);
    backend_calls = flushes = 0;
}
/* Two drives on the primary channel (the slave read-only for setup_ro),
 * none on the secondary; or only a secondary master. */
static int setup(void **state) { build(0, 1, false); return 0; }
static int setup_ro(void **state) { build(0, 1, true); return 0; }
static int setup_secondary(void **state) { build(2, 4, false); return 0; }
static int teardown(void **state) { free(ide); return 0; }

static void select_dev(unsigned dev) { outb((uint8_t)(0xE0 | dev << 4), 0x1F6); }

/* LBA28 task file and a command. */
static void lba28(unsigned dev, uint32_t lba, uint8_t count, uint8_t cmd)
{
    outb((uint8_t)(0xE0 | dev << 4 | (lba >> 24 & 0xF)), 0x1F6);
    outb(count, 0x1F2);
    outb((uint8_t)lba, 0x1F3), outb((uint8_t)(lba >> 8), 0x1F4), outb((uint8_t)(lba >> 16), 0x1F5);
    outb(cmd, 0x1F7);
}

/* LBA48: high bytes first, as ata_tf_load writes HOB (ATA-6 §6.2). */
static void lba48(unsigned dev, uint64_t lba, uint16_t count, uint8_t cmd)
{
    outb((uint8_t)(count >> 8), 0x1F2);
    outb((uint8_t)(lba >> 24), 0x1F3), outb((uint8_t)(lba >> 32), 0x1F4), outb((uint8_t)(lba >> 40), 0x1F5);
    outb((uint8_t)count, 0x1F2);
    outb((uint8_t)lba, 0x1F3), outb((uint8_t)(lba >> 8), 0x1F4), outb((uint8_t)(lba >> 16), 0x1F5);
    outb((uint8_t)(0x40 | dev << 4), 0x1F6);
    outb(cmd, 0x1F7);
}

static void read_identify(uint16_t id[256])
{
    for (unsigned i = 0; i < 256; i++)
        id[i] = inw(0x1F0);
}

static void test_pci(void **state)
{
    assert_int_equal(cfg(ISA_DEVFN, 0, 4), 0x70008086u);
    assert_int_equal(cfg(ISA_DEVFN, 0x0E, 1) & 0x80, 0x80);    /* multi-function: Linux scans .1 */
    assert_int_equal(cfg(ISA_DEVFN, 0x08, 4) >> 8, 0x060100u);
    assert_int_equal(cfg(IDE_DEVFN, 0, 4), 0x70108086u);
    assert_int_equal(cfg(IDE_DEVFN, 0x08, 4) >> 8, 0x010180u);  /* IDE, compatibility, bus master */
    assert_int_equal(cfg(IDE_DEVFN, 0x04, 2) & 5, 5);           /* I/O and bus master on */
    assert_int_equal(cfg(IDE_DEVFN, 0x40, 2) & 0x8000, 0x8000); /* ata_piix's piix_enable_bits */
    assert_int_equal(cfg(IDE_DEVFN, 0x42, 2) & 0x8000, 0x8000);
    assert_int_equal(cfg(IDE_DEVFN, 0x20, 4), BM_IO | 1u);
    for (unsigned bar = 0; bar < 4; bar++)
        assert_int_equal(cfg(IDE_DEVFN, 0x10 + 4 * bar, 4), 0);  /* legacy channels: no BARs */
    cfg_write(IDE_DEVFN, 0x20, 0xFFFFFFFFu);
    assert_int_equal(cfg(IDE_DEVFN, 0x20, 4), 0xFFFFFFF1u);       /* 16 bytes of I/O */
    cfg_write(IDE_DEVFN, 0x20, 0xD000);
    assert_int_equal(inb(BM_IO + 2), 0xFF);                       /* the old place floats */
    assert_int_equal(inb(0xD002) & 0x60, 0x60);                   /* both drives DMA capable */
    cfg_write(ISA_DEVFN, 0x00, 0);                                /* read-only */
    assert_int_equal(cfg(ISA_DEVFN, 0, 4), 0x70008086u);
    /* The primary's decode enable off: its ports float; on again: back. */
    assert_int_equal(inb(0x1F7), 0x50);
    cfg_write(IDE_DEVFN, 0x40, 0x0000);
    assert_int_equal(inb(0x1F7), 0xFF);
    assert_int_equal(inb(0x3F6), 0xFF);
    cfg_write(IDE_DEVFN, 0x40, 0x8000);
    assert_int_equal(inb(0x1F7), 0x50);
    cfg_write(IDE_DEVFN, 0x04, 0x0004);                           /* I/O decode off */
    assert_int_equal(inb(0x1F7), 0xFF);
    assert_int_equal(inb(0xD002), 0xFF);
}

static void test_reset_signature(void **state)
{
    outb(0x04 | 0x02, 0x3F6);                                     /* SRST, nIEN */
    assert_int_equal(inb(0x3F6), 0x80);                           /* BSY while held */
    outb(0x02, 0x3F6);
    assert_int_equal(inb(0x1F7), 0x50);
    assert_int_equal(inb(0x1F1), 0x01);                           /* diagnostics passed */
    assert_int_equal(inb(0x1F2), 1);
    assert_int_equal(inb(0x1F3), 1);
    assert_int_equal(inb(0x1F4), 0);
    assert_int_equal(inb(0x1F5), 0);
    select_dev(1);
    assert_int_equal(inb(0x1F2), 1);                              /* device 1 present too */
    assert_int_equal(inb(0x1F7), 0x50);
    /* The secondary has no drive: everything floats. */
    assert_int_equal(inb(0x177), 0xFF);
    assert_int_equal(inb(0x376), 0xFF);
    outb(0xEC, 0x177);
    assert_int_equal(raises[VIDE_SECONDARY_IRQ], 0);
}

static void test_absent_slave(void **state)
{
    assert_null(vide_drive(ide, 0));
    assert_non_null(vide_drive(ide, 2));
    assert_int_equal(inb(0x1F7), 0xFF);
    assert_int_equal(inb(0x177), 0x50);
    outb(0xF0, 0x176);                                            /* device 1 */
    outb(0x55, 0x172), outb(0xAA, 0x173);                         /* ata_devchk's patterns */
    assert_int_equal(inb(0x172), 0);                              /* nobody there */
    assert_int_equal(inb(0x173), 0);
    assert_int_equal(inb(0x177), 0);
    outb(0xEC, 0x177);                                            /* a command to nobody */
    assert_int_equal(raises[VIDE_SECONDARY_IRQ], 0);
    outb(0xE0, 0x176);
    assert_int_equal(inb(0x172), 0x55);                           /* device 0 latched them */
    assert_int_equal(inb(0x173), 0xAA);
}

static void test_identify(void **state)
{
    uint16_t id[256];
    select_dev(0);
    outb(0xEC, 0x1F7);
    assert_int_equal(level[VIDE_PRIMARY_IRQ], 1);
    assert_int_equal(inb(0x3F6), 0x58);                           /* alternate status keeps INTRQ */
    assert_int_equal(level[VIDE_PRIMARY_IRQ], 1);
    assert_int_equal(inb(0x1F7), 0x58);
    assert_int_equal(level[VIDE_PRIMARY_IRQ], 0);
    assert_int_equal(inb(BM_IO + 2) & 4, 4);                      /* latched in the bus master status */
    read_identify(id);
    assert_int_equal(inb(0x1F7), 0x50);
    assert_int_equal(id[0] & 0x8000, 0);                          /* ATA */
    assert_int_equal(id[49] & 0x0300, 0x0300);                    /* LBA, DMA */
    assert_int_equal(id[60] | (uint32_t)id[61] << 16, DISK_SECT);
    assert_int_equal(id[100] | (uint32_t)id[101] << 16, DISK_SECT);
    assert_int_equal(id[102] | id[103], 0);
    assert_int_equal(id[83] & 0xC400, 0x4400);                    /* 48-bit */
    assert_int_equal(id[83] & 0x3000, 0x3000);                    /* FLUSH CACHE (EXT) */
    assert_int_equal(id[85] & 0x0020, 0x0020);                    /* write cache on */
    assert_int_equal(id[63] & 0x0707, 0x0007);                    /* MWDMA 0-2, none selected */
    char model[41], serial[21];
    for (unsigned i = 0; i < 20; i++)
        model[2 * i] = (char)(id[27 + i] >> 8), model[2 * i + 1] = (char)id[27 + i];
    for (unsigned i = 0; i < 10; i++)
        serial[2 * i] = (char)(id[10 + i] >> 8), serial[2 * i + 1] = (char)id[10 + i];
    model[40] = serial[20] = 0;
    assert_memory_equal(model, "hv86 HARDDISK   ", 16);
    assert_memory_equal(serial, "hv86-ata0p1         ", 20);
    uint8_t sum = 0;
    for (unsigned i = 0; i < 256; i++)
        sum = (uint8_t)(sum + (id[i] & 0xFF) + (id[i] >> 8));
    assert_int_equal(id[255] & 0xFF, 0xA5);
    assert_int_equal(sum, 0);                                     /* integrity word */

    /* SET FEATURES: MWDMA2, write cache off; IDENTIFY shows both. */
    outb(0x03, 0x1F1), outb(0x22, 0x1F2), outb(0xEF, 0x1F7);
    assert_int_equal(inb(0x1F7), 0x50);
    outb(0x82, 0x1F1), outb(0xEF, 0x1F7);
    assert_int_equal(inb(0x1F7), 0x50);
    outb(0x03, 0x1F1), outb(0x45, 0x1F2), outb(0xEF, 0x1F7);      /* UDMA5: not offered */
    assert_int_equal(inb(0x1F7), 0x51);
    assert_int_equal(inb(0x1F1), 0x04);
    outb(0xEC, 0x1F7);
    read_identify(id);
    assert_int_equal(id[63] & 0x0707, 0x0407);
    assert_int_equal(id[85] & 0x0020, 0);

    /* nIEN: the line stays low, the interrupt is still latched. */
    outb(0x02, 0x3F6);
    int before = raises[VIDE_PRIMARY_IRQ];
    outb(0xEC, 0x1F7);
    assert_int_equal(raises[VIDE_PRIMARY_IRQ], before);
    outb(0x00, 0x3F6);                                            /* enabled again: it shows */
    assert_int_equal(level[VIDE_PRIMARY_IRQ], 1);
}

static void test_pio(void **state)
{
    uint8_t data[3 * 512];
    for (unsigned i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13 + 1);
    inb(0x1F7);
    lba28(1, 5, 3, 0x30);                                         /* WRITE SECTORS, device 1 */
    assert_int_equal(inb(0x3F6), 0x58);
    assert_int_equal(level[VIDE_PRIMARY_IRQ], 0);                 /* no interrupt for the first block */
    for (unsigned i = 0; i < sizeof data / 2; i++) {
        if (i % 256 == 0 && i)
            assert_int_equal(inb(0x1F7), 0x58);                   /* each later block interrupted */
        outw((uint16_t)(data[2 * i] | data[2 * i + 1] << 8), 0x1F0);
    }
    assert_int_equal(level[VIDE_PRIMARY_IRQ], 1);
    assert_int_equal(inb(0x1F7), 0x50);
    assert_int_equal(raises[VIDE_PRIMARY_IRQ], 3);
    assert_memory_equal(sector(1, 5), data, sizeof data);
    assert_int_equal(sector(0, 5)[0], (uint8_t)((GUARD_SECT + 5) * 512 * 7 + 3));  /* device 0 untouched */

    uint8_t back[3 * 512];
    lba28(1, 5, 3, 0x20);                                         /* READ SECTORS */
    for (unsigned i = 0; i < sizeof back / 4; i++) {
        if (i % 128 == 0)
            assert_int_equal(inb(0x1F7), 0x58);
        uint32_t v = inl(0x1F0);                                  /* 32-bit PIO */
        memcpy(back + 4 * i, &v, 4);
    }
    assert_int_equal(inb(0x1F7), 0x50);
    assert_memory_equal(back, data, sizeof data);

    /* CHS: cylinder 0, head 1, sector 2 is LBA 64 with 16 heads x 63. */
    outb(0xA1, 0x1F6), outb(1, 0x1F2), outb(2, 0x1F3), outb(0, 0x1F4), outb(0, 0x1F5), outb(0x20, 0x1F7);
    assert_int_equal(inb(0x1F7), 0x58);
    for (unsigned i = 0; i < 256; i++) {
        uint16_t w = inw(0x1F0);
        assert_int_equal(w, sector(0, 64)[2 * i] | sector(0, 64)[2 * i + 1] << 8);
    }
    outb(0xA1, 0x1F6), outb(1, 0x1F2), outb(64, 0x1F3), outb(0x20, 0x1F7);  /* sector 64 > 63 */
    assert_int_equal(inb(0x1F7), 0x51);
    assert_int_equal(inb(0x1F1), 0x10);
}

/* A PRD table at PRD_GPA: n regions of len bytes each, 4 KiB apart from BUF_GPA. */
static void prd(unsigned n, uint32_t len, uint32_t gap)
{
    for (unsigned i = 0; i < n; i++) {
        uint32_t e[2] = { BUF_GPA + i * gap, (len & 0xFFFF) | (i == n - 1 ? 0x80000000u : 0) };
        memcpy(ram + PRD_GPA + 8 * i, e, 8);
    }
    outl(PRD_GPA, BM_IO + 4);
}

/* ata_bmdma_setup + exec_command + bmdma_start, then the interrupt. */
static uint8_t dma(unsigned dev, uint64_t lba, uint16_t count, bool write, bool ext)
{
    outb(write ? 0x00 : 0x08, BM_IO);
    outb(0x06, BM_IO + 2);                                        /* clear error and interrupt */
    if (ext)
        lba48(dev, lba, count, write ? 0x35 : 0x25);
    else
        lba28(dev, (uint32_t)lba, (uint8_t)count, write ? 0xCA : 0xC8);
    outb(write ? 0x01 : 0x09, BM_IO);
    uint8_t bm = inb(BM_IO + 2);
    outb(write ? 0x00 : 0x08, BM_IO);                             /* ata_bmdma_stop */
    return bm;
}

static void test_dma(void **state)
{
    /* 260 sectors (past an 8-bit count) from sector 20, in 5 regions of
     * 26 KiB scattered 64 KiB apart, 48-bit. */
    const uint16_t n = 260;
    for (unsigned i = 0; i < 5; i++)
        for (unsigned j = 0; j < 26 * 1024; j++)
            ram[BUF_GPA + i * 0x10000 + j] = (uint8_t)(i * 31 + j * 3);
    prd(5, 26 * 1024, 0x10000);
    uint8_t bm = dma(0, 20, n, true, true);
    assert_int_equal(bm & 7, 4);                                  /* done, interrupt, no error */
    assert_int_equal(inb(0x1F7), 0x50);
    assert_int_equal(level[VIDE_PRIMARY_IRQ], 0);
    assert_true(last_cached);                                     /* write cache on */
    for (unsigned i = 0; i < 5; i++)
        assert_memory_equal(sector(0, 20) + i * 26 * 1024, ram + BUF_GPA + i * 0x10000, 26 * 1024);
    assert_int_equal(ide->ch[0].drive[0].st.sectors_written, n);

    memset(ram + BUF_GPA, 0, 5 * 0x10000);
    bm = dma(0, 20, n, false, true);
    assert_int_equal(bm & 7, 4);
    assert_int_equal(inb(0x1F7), 0x50);
    for (unsigned i = 0; i < 5; i++) {
        assert_memory_equal(ram + BUF_GPA + i * 0x10000, sector(0, 20) + i * 26 * 1024, 26 * 1024);
        assert_int_equal(ram[BUF_GPA + i * 0x10000 + 26 * 1024], 0);  /* nothing past the region */
    }

    /* A longer table than the transfer leaves Active set. */
    prd(1, 0, 0);                                                 /* one 64 KiB region */
    bm = dma(0, 0, 1, false, false);
    assert_int_equal(bm & 7, 5);
    assert_memory_equal(ram + BUF_GPA, sector(0, 0), 512);

    /* Start before the command, as other drivers do. */
    prd(1, 512, 0);
    outb(0x09, BM_IO);
    lba28(0, 7, 1, 0xC8);
    assert_int_equal(inb(BM_IO + 2) & 7, 4);
    assert_memory_equal(ram + BUF_GPA, sector(0, 7), 512);

    /* FLUSH CACHE reaches the backend; with the cache off writes are through. */
    outb(0xE0, 0x1F6), outb(0xE7, 0x1F7);
    assert_int_equal(flushes, 1);
    assert_int_equal(inb(0x1F7), 0x50);
    outb(0x82, 0x1F1), outb(0xEF, 0x1F7);
    prd(1, 512, 0);
    dma(0, 3, 1, true, false);
    assert_false(last_cached);
    assert_int_equal(ide->ch[0].drive[0].st.flushes, 1);
}

static void test_bad_requests(void **state)
{
    /* Past the end: IDNF, the backend not called. */
    lba48(0, DISK_SECT - 1, 2, 0x24);
    assert_int_equal(inb(0x1F7), 0x51);
    assert_int_equal(inb(0x1F1), 0x10);
    lba48(0, 1ull << 40, 1, 0x24);
    assert_int_equal(inb(0x1F1), 0x10);
    lba28(0, DISK_SECT, 1, 0xC8);
    assert_int_equal(inb(0x1F1), 0x10);
    lba28(0, 0, 0, 0x20);                                         /* count 0 = 256 sectors: fits */
    assert_int_equal(inb(0x1F7), 0x58);
    lba28(0, DISK_SECT - 255, 0, 0x20);                           /* 256 from there: does not */
    assert_int_equal(inb(0x1F1), 0x10);
    assert_int_equal(backend_calls, 1);

    /* Unknown command, DEVICE RESET, PACKET: ABRT. */
    static const uint8_t bad[] = { 0x00, 0x08, 0xA0, 0xA1, 0xC4, 0xF8, 0xFF };
    for (unsigned i = 0; i < sizeof bad; i++) {
        outb(bad[i], 0x1F7);
        assert_int_equal(inb(0x1F7), 0x51);
        assert_int_equal(inb(0x1F1), 0x04);
    }
    outb(0x99, 0x1F1), outb(0xEF, 0x1F7);                         /* unknown SET FEATURES */
    assert_int_equal(inb(0x1F1), 0x04);

    /* PRD table outside RAM, short, crossing 64 KiB, wrong direction. */
    unsigned long before = ide->bad_prd;
    outl(RAM_BYTES - 4, BM_IO + 4);
    outb(0x08, BM_IO), lba28(0, 0, 1, 0xC8), outb(0x09, BM_IO);
    assert_int_equal(inb(BM_IO + 2) & 7, 6);                      /* error, interrupt */
    assert_int_equal(inb(0x1F7), 0x51);
    uint32_t e[2] = { RAM_BYTES - 256, 0x80000000u | 512 };       /* region runs out of RAM */
    memcpy(ram + PRD_GPA, e, 8);
    assert_int_equal(dma(0, 0, 1, false, false) & 3, 2);
    prd(1, 512, 0);                                               /* 512 bytes for 2 sectors */
    assert_int_equal(dma(0, 0, 2, false, false) & 3, 2);
    for (unsigned i = 0; i < 8192; i++) {                         /* no EOT in the whole 64 KiB */
        uint32_t f[2] = { BUF_GPA, 2 };
        memcpy(ram + 0x10000 + 8 * i, f, 8);
    }
    outl(0x10000, BM_IO + 4);
    assert_int_equal(dma(0, 0, 100, true, false) & 3, 2);
    prd(1, 512, 0);
    outb(0x00, BM_IO), lba28(0, 0, 1, 0xC8), outb(0x01, BM_IO);   /* READ DMA, engine set to read memory */
    assert_int_equal(inb(BM_IO + 2) & 3, 2);
    assert_int_equal(ide->bad_prd, before + 5);
    /* None of it reached past its region or the disk. */
    assert_int_equal(ram[BUF_GPA + 512], 0);
    /* Bus mastering off: nothing moves until it is on. */
    cfg_write(IDE_DEVFN, 0x04, 0x0001);
    prd(1, 512, 0);
    memset(ram + BUF_GPA, 0, 512);
    outb(0x08, BM_IO), outb(0x06, BM_IO + 2), lba28(0, 9, 1, 0xC8), outb(0x09, BM_IO);
    assert_int_equal(inb(BM_IO + 2) & 5, 1);                      /* active, no interrupt */
    assert_int_equal(ram[BUF_GPA], 0);
}

static void test_read_only(void **state)
{
    prd(1, 512, 0);
    assert_int_equal(dma(1, 0, 1, true, false) & 4, 4);
    assert_int_equal(inb(0x1F7), 0x51);
    assert_int_equal(inb(0x1F1), 0x04);
    lba28(1, 0, 1, 0x30);
    assert_int_equal(inb(0x1F7), 0x51);
    assert_int_equal(backend_calls, 0);
    assert_int_equal(dma(1, 0, 1, false, false) & 7, 4);          /* reads work */
    assert_memory_equal(ram + BUF_GPA, sector(1, 0), 512);
    assert_int_equal(ide->ch[0].drive[1].st.errors, 2);
}

/* Random register programs: every register, random PRD tables in RAM,
 * random commands and addresses. The backend asserts every sector it is
 * given lies inside the disk; the guard sectors must survive. */
static uint32_t rng = 0x1de5eed;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void test_random(void **state)
{
    uint8_t guard[2][GUARD_SECT * 512 * 2];
    for (unsigned d = 0; d < 2; d++) {
        memcpy(guard[d], disk[d], GUARD_SECT * 512);
        memcpy(guard[d] + GUARD_SECT * 512, sector(d, DISK_SECT), GUARD_SECT * 512);
    }
    static const uint8_t cmds[] = { 0x20, 0x24, 0x25, 0x30, 0x34, 0x35, 0x40, 0x42, 0xC8, 0xCA,
                                    0xE7, 0xEA, 0xEC, 0xEF, 0x91, 0x90, 0x10, 0x70 };
    for (unsigned step = 0; step < 20000; step++) {
        for (unsigned i = 0; i < 4; i++) {
            uint32_t e[2] = { rnd() % 8 ? rnd() % RAM_BYTES : rnd(), rnd() & 0x8000FFFFu };
            memcpy(ram + PRD_GPA + 8 * i, e, 8);
        }
        outl(rnd() % 4 ? PRD_GPA : rnd(), BM_IO + 4 + (rnd() % 2) * 8);
        for (unsigned i = 0; i < 6; i++)
            outb((uint8_t)rnd(), (uint16_t)(0x1F1 + rnd() % 6));
        if (rnd() % 8 == 0)
            outb((uint8_t)rnd(), 0x3F6);
        outb(rnd() % 4 ? cmds[rnd() % sizeof cmds] : (uint8_t)rnd(), 0x1F7);
        outb((uint8_t)rnd(), BM_IO + (rnd() % 3));
        for (unsigned i = 0; i < rnd() % 300; i++)
            rnd() % 2 ? (void)inw(0x1F0) : outw((uint16_t)rnd(), 0x1F0);
        inb(0x1F7);
    }
    for (unsigned d = 0; d < 2; d++) {
        assert_memory_equal(guard[d], disk[d], GUARD_SECT * 512);
        assert_memory_equal(guard[d] + GUARD_SECT * 512, sector(d, DISK_SECT), GUARD_SECT * 512);
    }
    assert_true(backend_calls > 1000);                            /* the programs did reach the disk */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_slave, setup_secondary, teardown),
        cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup_ro, teardown),
        cmocka_unit_test_setup_teardown(test_random, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
