/*
 * netflood — a hostile guest kernel on a virtual switch: it drives its
 * virtio-net NIC (legacy PCI 1AF4:1000, found by scanning bus 0) as a
 * buggy or malicious driver could, checks hv86's documented answers
 * (docs/net.md, vmm/dev/vnet.h), then floods the switch for ever.
 *
 *   checks    a runt (10 bytes), an oversize frame (1600 bytes), a frame in
 *             the monitor's range and one past RAM: each completed, none
 *             refused (they are counted and dropped); a device-writable
 *             buffer on the transmit queue: NEEDS_RESET, not completed,
 *             refused until the driver resets the device, which works
 *             again afterwards; the configured MAC in the config space
 *   flood     prints FLOOD-START, then for ever: 128 broadcast frames of
 *             1514 bytes with a made-up EtherType, from source addresses
 *             that change (its own, then others: the table's per-port
 *             limit), one kick each batch; it never posts a receive
 *             buffer, so frames for it pile up at its port
 *
 * The command line gives nothing. For hv86 only (HV_GUESTS): the point is
 * how hv86 and the other guests on the switch cope (test_net.py flood).
 */
#include "guest.h"

#define PCI_ADDR 0xCF8
#define PCI_DATA 0xCFC
#define RAM_LIMIT 0x01000000u           /* the VM has 16 MiB: everything above is outside */
#define MONITOR_GPA 0xFFC00000u         /* where the monitor sits in every linear space */
#define HDR 10                          /* legacy struct virtio_net_hdr */

static uint32_t pci_read(unsigned dev, unsigned fn, unsigned off)
{
    outl(PCI_ADDR, 0x80000000u | dev << 11 | fn << 8 | (off & 0xFC));
    return inl(PCI_DATA);
}

struct vdesc { uint64_t addr; uint32_t len; uint16_t flags, next; };
#define VQ_SIZE 128
#define F_WRITE 2
static uint8_t rxq[2 * 4096] ALIGNED(4096), txq[2 * 4096] ALIGNED(4096);
static struct vdesc *const desc = (struct vdesc *)txq;
static uint16_t *const avail = (uint16_t *)(txq + 16 * VQ_SIZE);         /* flags, idx, ring[] */
static volatile uint16_t *const used = (volatile uint16_t *)(txq + 4096); /* flags, idx, {id, len}[] */
static uint8_t frame[HDR + 1600];
static uint16_t io, avail_idx;
static uint8_t mac[6];

static void zero(uint8_t *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = 0;
}

static void virtio_up(void)
{
    outb(io + 0x12, 0);                  /* reset */
    outb(io + 0x12, 1 | 2);              /* ACKNOWLEDGE, DRIVER */
    outl(io + 0x04, 1u << 5);            /* MAC */
    zero(rxq, sizeof rxq);
    zero(txq, sizeof txq);
    avail_idx = 0;
    outw(io + 0x0E, 0);
    outl(io + 0x08, (uint32_t)rxq >> 12);
    outw(io + 0x0E, 1);
    outl(io + 0x08, (uint32_t)txq >> 12);
    outb(io + 0x12, 1 | 2 | 4);          /* DRIVER_OK */
}

/* One transmit chain of one descriptor; returns how far used moved. */
static uint16_t send(uint32_t gpa, uint32_t len, uint16_t flags)
{
    uint16_t before = used[1];
    desc[0] = (struct vdesc){ gpa, len, flags, 0 };
    avail[2 + avail_idx % VQ_SIZE] = 0;
    avail[1] = ++avail_idx;
    outw(io + 0x10, 1);
    return (uint16_t)(used[1] - before);
}

static void make_frame(const uint8_t *src)
{
    zero(frame, sizeof frame);
    for (unsigned i = 0; i < 6; i++)
        frame[HDR + i] = 0xFF, frame[HDR + 6 + i] = src[i];
    frame[HDR + 12] = 0x88, frame[HDR + 13] = 0xB5;   /* IEEE 802 local experimental EtherType */
    for (unsigned i = 14; i < 1514; i++)
        frame[HDR + i] = (uint8_t)i;
}

static void checks(void)
{
    for (unsigned i = 0; i < 6; i++)
        mac[i] = inb(io + 0x14 + i);
    check("vnet-mac-unicast", !(mac[0] & 1) && (mac[0] | mac[5]), "mac %x:..:%x", mac[0], mac[5]);
    check_eq("vnet-features", inl(io) & ((1u << 5) | (1u << 16)), (1u << 5) | (1u << 16));
    virtio_up();
    make_frame(mac);
    check_eq("vnet-good-frame", send((uint32_t)frame, HDR + 60, 0), 1);
    check_eq("vnet-runt-completed", send((uint32_t)frame, HDR + 10, 0), 1);
    check_eq("vnet-oversize-completed", send((uint32_t)frame, HDR + 1600, 0), 1);
    check_eq("vnet-in-monitor-completed", send(MONITOR_GPA, HDR + 60, 0), 1);
    check_eq("vnet-past-ram-completed", send(RAM_LIMIT - 32, HDR + 60, 0), 1);
    check_eq("vnet-no-reset-yet", inb(io + 0x12) & 0x40, 0);
    check_eq("vnet-writable-refused", send((uint32_t)frame, HDR + 60, F_WRITE), 0);
    check("vnet-writable-needs-reset", inb(io + 0x12) & 0x40, "status %x", inb(io + 0x12));
    check_eq("vnet-refused-until-reset", send((uint32_t)frame, HDR + 60, 0), 0);
    virtio_up();
    check_eq("vnet-works-after-reset", send((uint32_t)frame, HDR + 60, 0), 1);
}

static void flood(void)
{
    printf("FLOOD-START\n");
    for (uint32_t round = 0;; round++) {
        uint8_t src[6] = { mac[0], mac[1], mac[2], mac[3], mac[4], mac[5] };
        if (round & 1) /* every other batch from somebody else: the table's per-port limit */
            src[3] = (uint8_t)(round >> 1), src[4] = (uint8_t)(round >> 9);
        make_frame(src);
        for (unsigned i = 0; i < VQ_SIZE; i++) {
            desc[i] = (struct vdesc){ (uint32_t)frame, HDR + 1514, 0, 0 };
            avail[2 + avail_idx % VQ_SIZE] = (uint16_t)i;
            avail_idx++;
        }
        avail[1] = avail_idx;
        outw(io + 0x10, 1);
    }
}

void guest_main(void)
{
    io = 0;
    for (unsigned dev = 0; dev < 32 && !io; dev++)
        if (pci_read(dev, 0, 0) == 0x10001AF4u)
            io = (uint16_t)(pci_read(dev, 0, 0x10) & 0xFFFC);
    if (!check("vnet-found", io != 0, "no 1af4:1000 on bus 0"))
        return;
    checks();
    flood();
}
