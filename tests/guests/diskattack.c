/*
 * diskattack — a hostile guest kernel against hv86's disk devices: a
 * virtio-blk disk (legacy PCI 1AF4:1001) and an IDE disk on the PIIX3
 * (8086:7010 at 00:01.1), both found by scanning PCI bus 0 as a driver
 * would. It hands them what a buggy or malicious driver could:
 *
 *   virtio-blk  sectors at and across the end of the disk, a data buffer in
 *               the monitor's range, a length of almost 2 GiB, a descriptor
 *               loop, a queue outside guest RAM;
 *   IDE         LBA28 and LBA48 addresses past the end (PIO and DMA), a
 *               65536-sector command, a PRD region and a PRD table outside
 *               guest RAM, a DMA engine set the wrong way;
 *
 * and checks hv86's documented answers (docs/storage.md, vmm/dev/vblk.h,
 * vmm/dev/vide.h): IOERR, NEEDS_RESET until the driver resets the device,
 * ABRT/IDNF and the bus master error bit. Between the attacks it writes a
 * pattern to the last sector of each disk and reads it back, so the test
 * on the host can check that the partition's last sector holds it and the
 * sector after the partition does not. The command line gives the disks'
 * sizes: vsect=N isect=N (sectors). For hv86 only (HV_GUESTS): a native
 * run would answer with QEMU's own choices.
 */
#include "guest.h"

#define PCI_ADDR 0xCF8
#define PCI_DATA 0xCFC
#define RAM_LIMIT 0x01000000u           /* the VM has 16 MiB: everything above is outside */
#define MONITOR_GPA 0xFFC00000u         /* where the monitor sits in every linear space */

static uint32_t pci_read(unsigned dev, unsigned fn, unsigned off)
{
    outl(PCI_ADDR, 0x80000000u | dev << 11 | fn << 8 | (off & 0xFC));
    return inl(PCI_DATA);
}

/* The first function on bus 0 with vendor:device id; its BAR, or 0. */
static uint16_t find(uint32_t id, unsigned bar, unsigned *devfn)
{
    for (unsigned dev = 0; dev < 32; dev++)
        for (unsigned fn = 0; fn < 8; fn++)
            if (pci_read(dev, fn, 0) == id) {
                *devfn = dev << 3 | fn;
                return (uint16_t)(pci_read(dev, fn, 0x10 + 4 * bar) & 0xFFFC);
            }
    return 0;
}

static void fill(uint8_t *p, unsigned n, uint8_t seed)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static bool same(const uint8_t *a, const uint8_t *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* ------------------------------------------------------------ virtio-blk */

struct vdesc { uint64_t addr; uint32_t len; uint16_t flags, next; };
#define VQ_SIZE 128
#define F_NEXT  1
#define F_WRITE 2
static uint8_t vq[2 * 4096] ALIGNED(4096);
static struct vdesc *const desc = (struct vdesc *)vq;
static uint16_t *const avail = (uint16_t *)(vq + 16 * VQ_SIZE);  /* flags, idx, ring[] */
static volatile uint16_t *const used = (volatile uint16_t *)(vq + 4096);  /* flags, idx, {id, len}[] */
static struct { uint32_t type, reserved; uint64_t sector; } hdr;
static uint8_t data[1024] ALIGNED(512), back[1024] ALIGNED(512);
static volatile uint8_t vstatus;
static uint16_t vio, avail_idx;

static void virtio_up(uint32_t pfn)
{
    outb(vio + 0x12, 0);                 /* reset */
    outb(vio + 0x12, 1 | 2);             /* ACKNOWLEDGE, DRIVER */
    outl(vio + 0x04, 0);                 /* no features: write-through */
    outw(vio + 0x0E, 0);
    for (unsigned i = 0; i < sizeof vq; i++)
        vq[i] = 0;
    avail_idx = 0;
    outl(vio + 0x08, pfn);
    outb(vio + 0x12, 1 | 2 | 4);         /* DRIVER_OK */
}

static uint64_t tsc(void)
{
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

#define VREQ_WAIT_TSC (1ull << 32) /* TSC ticks (a second or more) a request may take */

/* One request: header, data (len bytes at gpa, device-writable for a
 * read), status. Returns the status byte once the device has put the
 * request in the used ring (as on any virtio device, that may be after
 * the notify returns: hv86 reads in the background), or 0xEE if it did
 * not within VREQ_WAIT_TSC. */
static uint8_t vreq(uint32_t type, uint64_t sector, uint32_t gpa, uint32_t len)
{
    hdr.type = type;
    hdr.sector = sector;
    vstatus = 0xEE;
    desc[0] = (struct vdesc){ (uint32_t)&hdr, sizeof hdr, F_NEXT, 1 };
    desc[1] = (struct vdesc){ gpa, len, (uint16_t)(F_NEXT | (type == 0 ? F_WRITE : 0)), 2 };
    desc[2] = (struct vdesc){ (uint32_t)&vstatus, 1, F_WRITE, 0 };
    avail[2 + avail_idx % VQ_SIZE] = 0;
    avail[1] = ++avail_idx;
    uint16_t before = used[1];
    outw(vio + 0x10, 0);
    for (uint64_t t0 = tsc(); used[1] == before && tsc() - t0 < VREQ_WAIT_TSC;)
        asm volatile("pause");
    return vstatus;
}

static void virtio_attacks(uint32_t vsect)
{
    unsigned devfn;
    vio = find(0x10011AF4u, 0, &devfn);
    if (!check("vblk-found", vio != 0, "no 1af4:1001 on bus 0"))
        return;
    virtio_up((uint32_t)vq >> 12);
    check_eq("vblk-capacity", inl(vio + 0x14), vsect);
    check_eq("vblk-read-past-end", vreq(0, vsect, (uint32_t)data, 512), 1);
    check_eq("vblk-write-across-end", vreq(1, vsect - 1, (uint32_t)data, 1024), 1);
    check_eq("vblk-sector-2^63", vreq(0, 1ull << 63, (uint32_t)data, 512), 1);
    check_eq("vblk-buffer-in-monitor", vreq(0, 0, MONITOR_GPA, 512), 1);
    check_eq("vblk-buffer-past-ram", vreq(0, 0, RAM_LIMIT - 256, 512), 1);
    check_eq("vblk-length-2gib", vreq(0, 0, 0, 0x7FFFFE00u), 1);
    fill(data, 512, 0xA5);
    check_eq("vblk-write-last", vreq(1, vsect - 1, (uint32_t)data, 512), 0);
    check_eq("vblk-read-last", vreq(0, vsect - 1, (uint32_t)back, 512), 0);
    check("vblk-last-reads-back", same(data, back, 512), "the last sector differs");

    /* A descriptor loop: the queue is refused until a reset. */
    uint16_t before = used[1];
    desc[0] = (struct vdesc){ (uint32_t)&hdr, sizeof hdr, F_NEXT, 1 };
    desc[1] = (struct vdesc){ (uint32_t)data, 512, F_NEXT | F_WRITE, 0 };
    avail[2 + avail_idx % VQ_SIZE] = 0;
    avail[1] = ++avail_idx;
    outw(vio + 0x10, 0);
    check("vblk-loop-needs-reset", (inb(vio + 0x12) & 0x40) && used[1] == before, "status %x used %u",
          inb(vio + 0x12), used[1]);
    check_eq("vblk-refused-until-reset", vreq(0, 0, (uint32_t)back, 512), 0xEE);
    virtio_up((uint32_t)vq >> 12);
    check_eq("vblk-works-after-reset", vreq(0, vsect - 1, (uint32_t)back, 512), 0);

    /* A queue outside guest RAM. */
    virtio_up(MONITOR_GPA >> 12);
    outw(vio + 0x10, 0);
    check("vblk-queue-in-monitor", inb(vio + 0x12) & 0x40, "status %x", inb(vio + 0x12));
    virtio_up((uint32_t)vq >> 12);
    check_eq("vblk-works-at-last", vreq(0, 0, (uint32_t)back, 512), 0);
}

/* ------------------------------------------------------------ IDE */

#define IDE 0x1F0
#define IDE_CTL 0x3F6
static uint32_t prd[2] ALIGNED(8);
static uint16_t bm;
static uint16_t ident[256];

static void task(uint64_t lba, uint32_t count, bool ext, uint8_t cmd)
{
    if (ext) {
        outb(IDE + 2, (uint8_t)(count >> 8));
        outb(IDE + 3, (uint8_t)(lba >> 24)), outb(IDE + 4, (uint8_t)(lba >> 32)), outb(IDE + 5, (uint8_t)(lba >> 40));
    }
    outb(IDE + 2, (uint8_t)count);
    outb(IDE + 3, (uint8_t)lba), outb(IDE + 4, (uint8_t)(lba >> 8)), outb(IDE + 5, (uint8_t)(lba >> 16));
    outb(IDE + 6, (uint8_t)(0xE0 | (ext ? 0 : (lba >> 24 & 0xF))));
    outb(IDE + 7, cmd);
}

/* A DMA command through a one-entry PRD table at table (region gpa, len
 * bytes). Returns bus master status << 16 | ATA error << 8 | ATA status. */
static uint32_t dma(bool write, uint64_t lba, uint32_t count, bool ext, uint32_t table, uint32_t gpa, uint32_t len,
                    bool engine_write)
{
    prd[0] = gpa;
    prd[1] = 0x80000000u | (len & 0xFFFF);
    outb(bm, engine_write ? 0 : 8);
    outb(bm + 2, 0x06);                  /* clear error and interrupt */
    outl(bm + 4, table);
    task(lba, count, ext, write ? (ext ? 0x35 : 0xCA) : (ext ? 0x25 : 0xC8));
    outb(bm, engine_write ? 1 : 9);
    uint8_t bs = inb(bm + 2);
    outb(bm, engine_write ? 0 : 8);
    uint8_t st = inb(IDE + 7), err = inb(IDE + 1);
    return (uint32_t)bs << 16 | (uint32_t)err << 8 | st;
}

static void ide_attacks(uint32_t isect)
{
    unsigned devfn;
    bm = find(0x70108086u, 4, &devfn);
    if (!check("ide-found", bm != 0 && devfn == (1 << 3 | 1), "no 8086:7010 at 00:01.1"))
        return;
    outb(IDE_CTL, 0x02);                 /* nIEN: polled */
    outb(IDE + 6, 0xE0);
    outb(IDE + 7, 0xEC);
    for (unsigned i = 0; i < 256; i++)
        ident[i] = inw(IDE);
    check_eq("ide-capacity", ident[100] | (uint32_t)ident[101] << 16, isect);

    check_eq("ide-pio-read-past-end", (task(isect, 1, true, 0x24), inb(IDE + 7) | inb(IDE + 1) << 8), 0x1051);
    check_eq("ide-dma-read-past-end", dma(false, isect, 1, true, (uint32_t)prd, (uint32_t)data, 512, false) & 0xFFFF,
             0x1051);
    check_eq("ide-dma-65536-sectors", dma(false, 0, 0, true, (uint32_t)prd, (uint32_t)data, 0, false) & 0xFFFF, 0x1051);
    check_eq("ide-lba28-past-end", dma(true, isect, 2, false, (uint32_t)prd, (uint32_t)data, 1024, true) & 0xFFFF,
             0x1051);
    /* Bus master error (02h) and interrupt (04h), ABRT. */
    check_eq("ide-region-in-monitor", dma(false, 0, 1, false, (uint32_t)prd, MONITOR_GPA, 512, false), 0x060451);
    check_eq("ide-region-past-ram", dma(false, 0, 1, false, (uint32_t)prd, RAM_LIMIT - 256, 512, false), 0x060451);
    check_eq("ide-table-in-monitor", dma(true, 0, 1, false, MONITOR_GPA, (uint32_t)data, 512, true), 0x060451);
    check_eq("ide-table-short", dma(false, 0, 2, false, (uint32_t)prd, (uint32_t)data, 512, false), 0x060451);
    check_eq("ide-wrong-direction", dma(true, 0, 1, false, (uint32_t)prd, (uint32_t)data, 512, false), 0x060451);
    fill(data, 512, 0x5A);
    check_eq("ide-write-last", dma(true, isect - 1, 1, true, (uint32_t)prd, (uint32_t)data, 512, true), 0x040050);
    outb(IDE + 6, 0xE0), outb(IDE + 7, 0xE7);  /* FLUSH CACHE */
    check_eq("ide-flush", inb(IDE + 7), 0x50);
    check_eq("ide-read-last", dma(false, isect - 1, 1, true, (uint32_t)prd, (uint32_t)back, 512, false), 0x040050);
    check("ide-last-reads-back", same(data, back, 512), "the last sector differs");
}

void guest_main(void)
{
    virtio_attacks(boot_arg("vsect", 0));
    ide_attacks(boot_arg("isect", 0));
}
