/*
 * Virtio legacy PCI transport and split virtqueues (vmm/dev/virtio.h).
 *
 *   1. virtqueues: ring addresses, virtq_pop (walk and check a chain),
 *      virtq_push, virtq_copy
 *   2. the legacy register block in BAR0
 *   3. the PCI function: configuration space as firmware leaves it, BAR0
 *      and command-register decoding
 *
 * Trust: everything read through v->mem is the guest's and is copied into
 * locals before it is checked; see virtio.h.
 * Source: OASIS virtio v1.2 §2.7, §4.1.4.10, §4.1.5.
 */
#include "kernel/kernel.h"
#include "vmm/dev/virtio.h"

#define VIRTQ_ALIGN         4096u /* legacy used-ring alignment (§2.7 legacy note) */
#define VIRTQ_DESC_BYTES    16u
#define VIRTQ_DESC_F_NEXT   1u
#define VIRTQ_DESC_F_WRITE  2u
#define VIRTQ_DESC_F_INDIRECT 4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u /* avail->flags: the driver asks for no used-buffer interrupt (§2.7.7.2) */
#define N                   VIRTIO_QUEUE_SIZE

/* Legacy register offsets in BAR0 (§4.1.4.10). */
enum {
    REG_DEVICE_FEATURES = 0x00, REG_DRIVER_FEATURES = 0x04, REG_QUEUE_PFN = 0x08, REG_QUEUE_SIZE = 0x0C,
    REG_QUEUE_SEL = 0x0E, REG_QUEUE_NOTIFY = 0x10, REG_STATUS = 0x12, REG_ISR = 0x13,
};
#define ISR_QUEUE  0x1 /* used buffer notification */
#define ISR_CONFIG 0x2 /* configuration change (here: NEEDS_RESET) */

/* ---------------------------------------------------------------- 1. virtqueues */

struct ring_addr {
    uint32_t desc, avail, used;
};

/* Where q's rings are; E_RANGE if they would pass 4 GiB. */
static int ring_addr(const struct virtq *q, struct ring_addr *r)
{
    uint64_t desc = (uint64_t)q->pfn * VIRTQ_ALIGN;
    uint64_t avail = desc + VIRTQ_DESC_BYTES * N;
    uint64_t used = (avail + 4 + 2 * N + 2 + VIRTQ_ALIGN - 1) & ~(uint64_t)(VIRTQ_ALIGN - 1);
    if (used + 4 + 8 * N + 2 > 0x100000000ull)
        return E_RANGE;
    *r = (struct ring_addr){ (uint32_t)desc, (uint32_t)avail, (uint32_t)used };
    return 0;
}

static int rd16(const struct vdev_mem *m, uint32_t gpa, uint16_t *v) { return m->read(m->opaque, gpa, v, 2); }

/* Append the descriptor idx of the table at desc to c. */
static int chain_add(const struct vdev_mem *m, uint32_t desc, uint16_t idx, struct virtq_chain *c,
                     uint16_t *flags, uint16_t *next)
{
    struct __attribute__((packed)) { uint64_t addr; uint32_t len; uint16_t flags, next; } d;
    int rc = m->read(m->opaque, desc + VIRTQ_DESC_BYTES * idx, &d, sizeof(d));
    if (rc)
        return rc;
    bool write = d.flags & VIRTQ_DESC_F_WRITE;
    if ((d.flags & VIRTQ_DESC_F_INDIRECT) || d.addr + d.len > 0x100000000ull || (!write && c->writable))
        return E_INVAL;
    c->seg[c->n++] = (struct virtq_seg){ (uint32_t)d.addr, d.len, write };
    if (write)
        c->writable += d.len;
    else
        c->readable += d.len;
    *flags = d.flags;
    *next = d.next;
    return 0;
}

int virtq_pop(struct virtq *q, const struct vdev_mem *m, struct virtq_chain *c)
{
    struct ring_addr r;
    uint16_t avail_idx, head, flags, next;
    if (!q->pfn || q->broken)
        return 0;
    int rc = ring_addr(q, &r);
    rc = rc ? rc : rd16(m, r.avail + 2, &avail_idx);
    if (rc)
        return rc;
    uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
    if (!pending)
        return 0;
    if (pending > N)
        return E_INVAL;
    rc = rd16(m, r.avail + 4 + 2 * (q->last_avail % N), &head);
    if (rc)
        return rc;
    if (head >= N)
        return E_INVAL;
    c->head = head;
    c->n = 0;
    c->readable = c->writable = 0;
    for (uint16_t idx = head;; idx = next) {
        if (c->n >= VIRTQ_CHAIN_MAX || c->n >= N) /* longer than the table: a loop */
            return E_INVAL;
        rc = chain_add(m, r.desc, idx, c, &flags, &next);
        if (rc)
            return rc;
        if (!(flags & VIRTQ_DESC_F_NEXT))
            break;
        if (next >= N)
            return E_INVAL;
    }
    q->last_avail++;
    return 1;
}

int virtq_push(struct virtq *q, const struct vdev_mem *m, uint16_t head, uint32_t len)
{
    struct ring_addr r;
    uint32_t elem[2] = { head, len };
    int rc = ring_addr(q, &r);
    rc = rc ? rc : m->write(m->opaque, r.used + 4 + 8 * (q->used_idx % N), elem, sizeof(elem));
    if (rc)
        return rc;
    q->used_idx++;
    return m->write(m->opaque, r.used + 2, &q->used_idx, 2);
}

int virtq_copy(const struct virtq_chain *c, const struct vdev_mem *m, bool write, uint64_t off, void *buf,
               uint32_t len)
{
    uint8_t *p = buf;
    for (unsigned i = 0; i < c->n && len; i++) {
        const struct virtq_seg *s = &c->seg[i];
        if (s->write != write)
            continue;
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        uint32_t n = (uint32_t)MIN((uint64_t)len, s->len - off);
        uint32_t gpa = s->gpa + (uint32_t)off;
        int rc = write ? m->write(m->opaque, gpa, p, n) : m->read(m->opaque, gpa, p, n);
        if (rc)
            return rc;
        p += n;
        len -= n;
        off = 0;
    }
    return len ? E_INVAL : 0;
}

/* ---------------------------------------------------------------- 2. registers */

static void update_line(struct virtio_pci *v)
{
    bool level = v->isr != 0;
    if (level != v->line_level) {
        v->line_level = level;
        vdev_irq_set(&v->line, v->irq, level);
    }
}

void virtio_interrupt(struct virtio_pci *v, unsigned qi)
{
    struct ring_addr r;
    uint16_t flags;
    if (qi < v->nqueues && v->q[qi].pfn && ring_addr(&v->q[qi], &r) == 0 && rd16(&v->mem, r.avail, &flags) == 0 &&
        (flags & VIRTQ_AVAIL_F_NO_INTERRUPT))
        return; /* the driver is polling the used ring (§2.7.7.2) */
    v->isr |= ISR_QUEUE;
    update_line(v);
}

void virtio_queue_broken(struct virtio_pci *v, unsigned q)
{
    if (q < v->nqueues)
        v->q[q].broken = true;
    v->bad_chains++;
    v->status |= VIRTIO_STATUS_NEEDS_RESET;
    v->isr |= ISR_CONFIG;
    update_line(v);
}

/* Status 0: the device forgets the driver (§2.1, §4.1.4.10). */
static void device_reset(struct virtio_pci *v)
{
    v->driver_features = 0;
    v->queue_sel = 0;
    v->status = 0;
    v->isr = 0;
    memset(v->q, 0, sizeof(v->q));
    update_line(v);
    if (v->ops->reset)
        v->ops->reset(v->dev);
}

/* The fixed registers 0x00-0x13 as bytes; reading ISR clears it. */
static uint8_t reg_byte(struct virtio_pci *v, unsigned off)
{
    uint32_t val;
    struct virtq *q = v->queue_sel < v->nqueues ? &v->q[v->queue_sel] : NULL;
    switch (off & ~3u) {
    case REG_DEVICE_FEATURES: val = v->features; break;
    case REG_DRIVER_FEATURES: val = v->driver_features; break;
    case REG_QUEUE_PFN: val = q ? q->pfn : 0; break;
    case REG_QUEUE_SIZE: val = (q ? N : 0) | (uint32_t)v->queue_sel << 16; break;
    default: val = (uint32_t)v->status << 16 | (uint32_t)v->isr << 24; break; /* 0x10: notify reads 0 */
    }
    uint8_t b = (uint8_t)(val >> (8 * (off & 3)));
    if (off == REG_ISR) {
        v->isr = 0;
        update_line(v);
    }
    return b;
}

static uint32_t bar_in(void *opaque, uint16_t port, unsigned size)
{
    struct virtio_pci *v = opaque;
    unsigned off = (uint16_t)(port - v->bar0.base);
    if (off >= VIRTIO_LEGACY_CONFIG)
        return v->ops->cfg_read(v->dev, off - VIRTIO_LEGACY_CONFIG, size);
    uint32_t val = 0;
    for (unsigned i = 0; i < size && off + i < VIRTIO_LEGACY_CONFIG; i++)
        val |= (uint32_t)reg_byte(v, off + i) << (8 * i);
    return val;
}

static void bar_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct virtio_pci *v = opaque;
    unsigned off = (uint16_t)(port - v->bar0.base);
    struct virtq *q = v->queue_sel < v->nqueues ? &v->q[v->queue_sel] : NULL;
    if (off >= VIRTIO_LEGACY_CONFIG) {
        v->ops->cfg_write(v->dev, off - VIRTIO_LEGACY_CONFIG, size, val);
        return;
    }
    /* The driver writes each register with its own width (§4.1.4.10);
     * other widths and offsets are dropped. */
    if (off == REG_DRIVER_FEATURES && size == 4) {
        v->driver_features = val & v->features;
    } else if (off == REG_QUEUE_PFN && size == 4 && q) {
        *q = (struct virtq){ .pfn = val }; /* 0 releases the queue */
    } else if (off == REG_QUEUE_SEL && size == 2) {
        v->queue_sel = (uint16_t)val;
    } else if (off == REG_QUEUE_NOTIFY && size == 2) {
        if (val < v->nqueues && v->q[val].pfn && !v->q[val].broken)
            v->ops->notify(v->dev, val);
    } else if (off == REG_STATUS && size == 1) {
        if ((val & 0xFF) == 0) {
            device_reset(v);
        } else {
            v->status = (uint8_t)val;
            if (v->ops->status)
                v->ops->status(v->dev, v->status);
        }
    }
}

/* ---------------------------------------------------------------- 3. the PCI function */

#define PCI_HEADER_NORMAL 0x00
#define PCI_PIN_INTA      0x01
#define STATUS_RESET      0x0000

/* After a guest configuration write: BAR0 decodes where the guest put it
 * while I/O decoding is on (PCI 3.0 §6.2.2, §6.2.5.1). */
static void cfg_written(void *opaque)
{
    struct virtio_pci *v = opaque;
    vpci_decode_follow(&v->bar0, &v->fn);
}

void virtio_pci_init(struct virtio_pci *v, uint8_t devfn, uint16_t device_id, uint16_t subsys_id,
                     uint8_t class_code, uint8_t subclass, uint16_t io_base, uint32_t bar_size, uint8_t irq,
                     unsigned nqueues, uint32_t features, struct vdev_irq line, struct vdev_mem mem,
                     const struct virtio_ops *ops, void *dev)
{
    memset(v, 0, sizeof(*v));
    v->fn.devfn = devfn;
    v->fn.written = cfg_written;
    v->fn.opaque = v;
    v->io_base = io_base;
    v->bar_size = bar_size;
    v->bar0 = (struct vpci_io_decode){ .opaque = v, .bar = 0, .size = bar_size };
    v->irq = irq;
    v->device_id = device_id;
    v->subsys_id = subsys_id;
    v->class_code = class_code;
    v->subclass = subclass;
    v->nqueues = MIN(nqueues, (unsigned)VIRTIO_MAX_QUEUES);
    v->features = features;
    v->line = line;
    v->mem = mem;
    v->ops = ops;
    v->dev = dev;
}

int virtio_pci_attach(struct virtio_pci *v, struct vpci *pci, struct iobus *bus)
{
    int rc = vpci_add(pci, &v->fn);
    rc = rc ? rc : iobus_register(bus, v->io_base, v->bar_size, IOBUS_SZ_ALL, bar_in, bar_out, v, "virtio");
    if (!rc) {
        v->bar0.bus = bus;
        vpci_decode_at(&v->bar0, v->io_base);
    }
    return rc;
}

void virtio_pci_reset(struct virtio_pci *v)
{
    struct vpci_func *f = &v->fn;
    /* firmware enabled its I/O decode; revision 0: legacy/transitional (§4.1.2.1) */
    vpci_header(f, VIRTIO_VENDOR, v->device_id, v->class_code, v->subclass, 0, VPCI_CMD_IO, STATUS_RESET);
    f->cfg[VPCI_HEADER_TYPE] = PCI_HEADER_NORMAL;
    vpci_put(f, VPCI_SUBSYS_VENDOR, 2, VIRTIO_VENDOR);
    vpci_put(f, VPCI_SUBSYS_ID, 2, v->subsys_id);
    f->cfg[VPCI_INTERRUPT_LINE] = v->irq;
    f->cfg[VPCI_INTERRUPT_PIN] = PCI_PIN_INTA;
    f->wmask[VPCI_COMMAND] = VPCI_CMD_IO | VPCI_CMD_MASTER | 0x2;
    f->wmask[VPCI_LATENCY] = 0xF8;
    f->wmask[VPCI_INTERRUPT_LINE] = 0xFF;
    vpci_io_bar(f, 0, v->io_base, v->bar_size);
    vpci_decode_at(&v->bar0, v->io_base);
    v->bad_chains = 0;
    v->line_level = true; /* forces the line low in device_reset */
    device_reset(v);
}
