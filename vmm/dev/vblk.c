/*
 * virtio-blk (vmm/dev/vblk.h): configuration space and request service.
 * Trust: see vblk.h; a request's sector and length are checked against
 * the backend's size before the backend sees them.
 * Source: OASIS virtio v1.2 §5.2.
 */
#include "kernel/kernel.h"
#include "vmm/dev/vblk.h"

#define VIRTIO_ID_BLOCK      2      /* subsystem ID of a legacy block device (§5.2.1) */
#define DEVICE_ID_BLOCK      0x1001 /* transitional PCI device ID (§4.1.2.1) */
#define CLASS_STORAGE        0x01
#define SUBCLASS_SCSI        0x00

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX  (1u << 2)
#define VIRTIO_BLK_F_RO       (1u << 5)
#define VIRTIO_BLK_F_BLK_SIZE (1u << 6)
#define VIRTIO_BLK_F_FLUSH    (1u << 9)

/* Request types and status values (§5.2.6). */
#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define HDR_BYTES 16 /* le32 type, le32 reserved, le64 sector */

/* struct virtio_blk_config (§5.2.4) up to blk_size: capacity, size_max,
 * seg_max, geometry, blk_size. Later fields read as 0. */
static uint32_t cfg_read(void *dev, unsigned off, unsigned size)
{
    struct vblk *b = dev;
    uint8_t cfg[24] = { 0 };
    for (unsigned i = 0; i < 8; i++)
        cfg[i] = (uint8_t)(b->be.sectors >> (8 * i));
    cfg[12] = VBLK_SEG_MAX;
    cfg[20] = (uint8_t)VDEV_SECTOR, cfg[21] = (uint8_t)(VDEV_SECTOR >> 8);
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)(off + i < sizeof(cfg) ? cfg[off + i] : 0) << (8 * i);
    return v;
}

static void cfg_write(void *dev, unsigned off, unsigned size, uint32_t v) { } /* nothing writable offered */

/* Call fn(b, gpa, len) for each guest-physical run of the request's data:
 * for OUT the readable bytes after the header, for IN the writable bytes
 * before the status byte, data bytes in all. Stops at fn's first nonzero
 * answer and returns it. */
static int each_data_run(struct vblk *b, const struct virtq_chain *c, bool out, uint64_t data,
                         int (*fn)(struct vblk *b, uint64_t gpa, uint32_t len))
{
    uint64_t skip = out ? HDR_BYTES : 0;
    for (unsigned i = 0; i < c->n && data; i++) {
        const struct virtq_seg *s = &c->seg[i];
        if (s->write == out)
            continue;
        uint64_t len = s->len, gpa = s->gpa;
        uint64_t k = MIN(skip, len);
        skip -= k, gpa += k, len -= k;
        len = MIN(len, data);
        if (!len)
            continue;
        int rc = fn(b, gpa, (uint32_t)len);
        if (rc)
            return rc;
        data -= len;
    }
    return 0;
}

#define VBLK_STARTED (-1) /* not a virtio status: the request was started (vdev_disk.submit) */

/* Append the host frames behind [gpa, gpa + len) to b->sg. E_RANGE outside
 * RAM; E_NOTSUP when the list is full or a piece is odd (copy instead). */
static int add_run(struct vblk *b, uint64_t gpa, uint32_t len)
{
    bool in = b->sg_in;
    for (uint64_t end = gpa + len; gpa < end;) {
        uint32_t hpa, page_off = (uint32_t)(gpa & (VDEV_PAGE - 1));
        uint32_t k = (uint32_t)MIN(end - gpa, (uint64_t)(VDEV_PAGE - page_off));
        if (gpa > UINT32_MAX || b->vp.mem.dma_frame(b->vp.mem.opaque, (uint32_t)gpa - page_off, in, &hpa))
            return E_RANGE;
        hpa += page_off;
        struct dma_seg *last = b->sg_n ? &b->sg[b->sg_n - 1] : NULL;
        if (last && last->hpa + last->len == hpa) {
            last->len += k;
        } else {
            if (b->sg_n == VBLK_SG_MAX || (last && last->len & 1))
                return E_NOTSUP;
            b->sg[b->sg_n++] = (struct dma_seg){ hpa, k };
        }
        gpa += k;
    }
    return 0;
}

static int note_written(struct vblk *b, uint64_t gpa, uint32_t len)
{
    b->vp.mem.dma_written(b->vp.mem.opaque, (uint32_t)gpa, len);
    return 0;
}

/* The data of slot s's request (data bytes, OUT or IN) as host frames in
 * s->sg (b->sg_n pieces). Returns 0, E_RANGE (outside guest RAM), or
 * E_NOTSUP: the request cannot go without a copy. */
static int build_sg(struct vblk *b, struct vblk_slot *s, bool out, uint64_t data)
{
    if (!b->be.rw_sg || !b->vp.mem.dma_frame || !b->vp.mem.dma_written)
        return E_NOTSUP;
    b->sg = s->sg;
    b->sg_n = 0;
    b->sg_in = !out;
    int rc = each_data_run(b, &s->chain, out, data, add_run);
    for (unsigned i = 0; rc == 0 && i < b->sg_n; i++)
        if ((s->sg[i].hpa | s->sg[i].len) & 1)
            rc = E_NOTSUP;
    return rc;
}

static void count_rw(struct vblk *b, bool out, uint64_t data, bool direct)
{
    if (out)
        b->st.writes++, b->st.sectors_written += data / VDEV_SECTOR;
    else
        b->st.reads++, b->st.sectors_read += data / VDEV_SECTOR;
    b->st.zero_copy += direct;
}

/* The status of s's request once the backend moved its data without a
 * copy with result rc; a read's bytes are reported to the memory owner. */
static uint8_t direct_done(struct vblk *b, struct vblk_slot *s, int rc)
{
    if (rc)
        return VIRTIO_BLK_S_IOERR;
    if (!s->io.write)
        each_data_run(b, &s->chain, false, s->data, note_written);
    count_rw(b, s->io.write, s->data, true);
    return VIRTIO_BLK_S_OK;
}

/* IN or OUT of data bytes at sector through the bounce buffer. */
static uint8_t rw_copy(struct vblk *b, const struct virtq_chain *c, bool out, uint64_t sector, uint64_t data)
{
    for (uint64_t done = 0; done < data;) {
        uint32_t n = (uint32_t)MIN(data - done, (uint64_t)VBLK_BUF_BYTES), count = n / VDEV_SECTOR;
        uint64_t at = sector + done / VDEV_SECTOR;
        int rc;
        if (out) { /* the driver's buffers after the header, then the disk */
            rc = virtq_copy(c, &b->vp.mem, false, HDR_BYTES + done, b->buf, n);
            rc = rc ? rc : b->be.write(b->be.opaque, at, count, b->buf, b->vp.driver_features & VIRTIO_BLK_F_FLUSH);
        } else {   /* the disk, then the driver's writable buffers */
            rc = b->be.read(b->be.opaque, at, count, b->buf);
            rc = rc ? rc : virtq_copy(c, &b->vp.mem, true, done, b->buf, n);
        }
        if (rc)
            return VIRTIO_BLK_S_IOERR;
        done += n;
    }
    count_rw(b, out, data, false);
    return VIRTIO_BLK_S_OK;
}

/* IN or OUT of data bytes at sector for slot s: a virtio status, or
 * VBLK_STARTED. Without a copy where the request's buffers allow it (a
 * read started through submit where the backend offers it), else through
 * the bounce buffer. */
static int rw(struct vblk *b, struct vblk_slot *s, bool out, uint64_t sector, uint64_t data)
{
    if (data % VDEV_SECTOR || data > VBLK_MAX_REQUEST || sector > b->be.sectors ||
        data / VDEV_SECTOR > b->be.sectors - sector || (out && b->be.read_only))
        return VIRTIO_BLK_S_IOERR;
    int rc = build_sg(b, s, out, data);
    if (rc == E_RANGE)
        return VIRTIO_BLK_S_IOERR;
    if (rc == 0) {
        bool cached = b->vp.driver_features & VIRTIO_BLK_F_FLUSH;
        s->io = (struct vdev_io){ sector, (uint32_t)(data / VDEV_SECTOR), s->sg, b->sg_n, out, cached, 0, false };
        s->data = data;
        if (!out && data && data >= b->be.submit_min && b->be.submit && b->be.submit(b->be.opaque, &s->io) == 0)
            return VBLK_STARTED;
        rc = b->be.rw_sg(b->be.opaque, sector, s->io.count, s->sg, s->io.n, out, cached);
        if (rc != E_NOTSUP)
            return direct_done(b, s, rc);
    }
    return rw_copy(b, &s->chain, out, sector, data);
}

/* Slot s's request (§5.2.6): its status or VBLK_STARTED, and in *written
 * the data bytes put into the driver's buffers (the status byte not
 * counted). */
static int request(struct vblk *b, struct vblk_slot *s, uint32_t *written)
{
    const struct virtq_chain *c = &s->chain;
    struct { uint32_t type, reserved; uint64_t sector; } h;
    *written = 0;
    if (c->readable < HDR_BYTES || virtq_copy(c, &b->vp.mem, false, 0, &h, HDR_BYTES))
        return VIRTIO_BLK_S_IOERR;
    uint64_t in_bytes = c->writable - 1; /* the last writable byte is the status */
    switch (h.type) {
    case VIRTIO_BLK_T_IN: {
        int st = rw(b, s, false, h.sector, in_bytes);
        *written = st == VIRTIO_BLK_S_OK ? (uint32_t)in_bytes : 0;
        return st;
    }
    case VIRTIO_BLK_T_OUT:
        return rw(b, s, true, h.sector, c->readable - HDR_BYTES);
    case VIRTIO_BLK_T_FLUSH:
        b->st.flushes++;
        return b->be.flush(b->be.opaque) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID: {
        uint32_t n = (uint32_t)MIN(in_bytes, (uint64_t)VDEV_DISK_SERIAL);
        if (virtq_copy(c, &b->vp.mem, true, 0, b->be.serial, n))
            return VIRTIO_BLK_S_IOERR;
        *written = n;
        return VIRTIO_BLK_S_OK;
    }
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

/* Hand slot s's request back with status and written data bytes; false if
 * the queue broke doing it. */
static bool complete(struct vblk *b, unsigned qi, struct vblk_slot *s, uint8_t status, uint32_t written)
{
    struct virtio_pci *v = &b->vp;
    b->st.errors += status != VIRTIO_BLK_S_OK;
    if (virtq_copy(&s->chain, &v->mem, true, s->chain.writable - 1, &status, 1) ||
        virtq_push(&v->q[qi], &v->mem, s->chain.head, written + 1)) {
        virtio_queue_broken(v, qi);
        return false;
    }
    return true;
}

static struct vblk_slot *free_slot(struct vblk *b)
{
    for (unsigned i = 0; i < VBLK_INFLIGHT; i++)
        if (!b->slot[i].busy)
            return &b->slot[i];
    return NULL;
}

/* Serve the available requests of queue qi, at most a queue's worth (one
 * exit does bounded work), until the slots run out. Returns whether
 * anything went into the used ring. */
static bool serve(struct vblk *b, unsigned qi)
{
    struct virtio_pci *v = &b->vp;
    bool pushed = false;
    for (unsigned i = 0; i < VIRTIO_QUEUE_SIZE; i++) {
        struct vblk_slot *s = free_slot(b);
        if (!s) {
            b->starved = true; /* vblk_poll serves the rest when a slot frees */
            break;
        }
        int rc = virtq_pop(&v->q[qi], &v->mem, &s->chain);
        if (rc == 0)
            break;
        if (rc < 0 || s->chain.writable == 0) { /* malformed, or no byte for the status */
            virtio_queue_broken(v, qi);
            break;
        }
        uint32_t written;
        int status = request(b, s, &written);
        if (status == VBLK_STARTED) {
            s->busy = true;
            continue;
        }
        if (!complete(b, qi, s, (uint8_t)status, written))
            break;
        pushed = true;
    }
    return pushed;
}

/* The driver kicked the queue: serve it, then interrupt. */
static void notify(void *dev, unsigned qi)
{
    struct vblk *b = dev;
    if (serve(b, qi))
        virtio_interrupt(&b->vp, qi);
}

static bool slot_done(const struct vblk_slot *s)
{
    return s->busy && __atomic_load_n(&s->io.done, __ATOMIC_ACQUIRE);
}

/* Forget started slot s, done, without handing it back: what its read
 * put in guest RAM is still reported to the memory owner. */
static void drop(struct vblk *b, struct vblk_slot *s)
{
    if (!s->io.write && s->io.rc == 0)
        each_data_run(b, &s->chain, false, s->data, note_written);
    s->busy = false;
}

bool vblk_poll(struct vblk *b)
{
    const struct virtq *q = &b->vp.q[0];
    bool pushed = false, freed = false;
    for (unsigned i = 0; i < VBLK_INFLIGHT; i++) {
        struct vblk_slot *s = &b->slot[i];
        if (!slot_done(s))
            continue;
        freed = true;
        if (!q->pfn || q->broken) { /* the driver let the queue go meanwhile: nobody to tell */
            drop(b, s);
            continue;
        }
        uint8_t status;
        if (s->io.rc == E_NOTSUP) /* the backend turned it down after all: copy */
            status = rw_copy(b, &s->chain, false, s->io.sector, s->data);
        else
            status = direct_done(b, s, s->io.rc);
        s->busy = false;
        pushed |= complete(b, 0, s, status, status == VIRTIO_BLK_S_OK ? (uint32_t)s->data : 0);
    }
    if (freed && b->starved) {
        b->starved = false;
        pushed |= serve(b, 0);
    }
    if (pushed)
        virtio_interrupt(&b->vp, 0);
    return pushed;
}

bool vblk_busy(const struct vblk *b)
{
    for (unsigned i = 0; i < VBLK_INFLIGHT; i++)
        if (b->slot[i].busy)
            return true;
    return false;
}

bool vblk_ready(const struct vblk *b)
{
    for (unsigned i = 0; i < VBLK_INFLIGHT; i++)
        if (slot_done(&b->slot[i]))
            return true;
    return false;
}

/* A reset (the driver's status 0, or power-on): the started requests are
 * waited for and dropped, not put in the used ring; what their reads wrote
 * is reported to the memory owner all the same. */
static void dev_reset(void *dev)
{
    struct vblk *b = dev;
    if (vblk_busy(b))
        b->be.drain(b->be.opaque);
    for (unsigned i = 0; i < VBLK_INFLIGHT; i++)
        if (b->slot[i].busy)
            drop(b, &b->slot[i]);
    b->starved = false;
}

static const struct virtio_ops vblk_ops = { cfg_read, cfg_write, notify, dev_reset, NULL };

void vblk_init(struct vblk *b, uint8_t devfn, uint16_t io_base, uint8_t irq, struct vdev_irq line,
               struct vdev_mem mem, const struct vdev_disk *be)
{
    uint32_t features = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH |
                        (be->read_only ? VIRTIO_BLK_F_RO : 0);
    b->be = *be;
    memset(&b->st, 0, sizeof(b->st));
    virtio_pci_init(&b->vp, devfn, DEVICE_ID_BLOCK, VIRTIO_ID_BLOCK, CLASS_STORAGE, SUBCLASS_SCSI, io_base,
                    VBLK_BAR_BYTES, irq, 1, features, line, mem, &vblk_ops, b);
}

int vblk_attach(struct vblk *b, struct vpci *pci, struct iobus *bus)
{
    return virtio_pci_attach(&b->vp, pci, bus);
}

void vblk_reset(struct vblk *b)
{
    virtio_pci_reset(&b->vp);
}
