/*
 * virtio-blk, legacy PCI interface (1AF4:1001, subsystem 2, class 01/00):
 * one request queue of VIRTIO_QUEUE_SIZE entries, served synchronously
 * when the driver notifies it (on the vCPU thread), from a backend of
 * 512-byte sectors (a raw partition through vmm/vdisk.c).
 *
 * Features offered: SEG_MAX (VBLK_SEG_MAX segments), BLK_SIZE (512), FLUSH,
 * and RO for a read-only backend. Requests: IN, OUT, FLUSH, GET_ID; any
 * other type completes with UNSUPP. A request past the end of the disk, one
 * whose data is not whole sectors, a write to a read-only disk, or one with
 * more than VBLK_MAX_REQUEST bytes of data completes with IOERR; so does
 * one the backend fails. FLUSH completes only after the backend's flush
 * (the host disk's FLUSH CACHE) did; a driver that did not negotiate FLUSH
 * gets write-through.
 * Source: OASIS virtio v1.2 §5.2 (block device), §5.2.6 (requests).
 *
 * Trust: the request header, data buffers and status byte are guest
 * memory reached through the chain (vmm/dev/virtio.h); the header's sector
 * and the data length are checked against the backend's size before any
 * backend call.
 */
#ifndef HV86_VMM_DEV_VBLK_H
#define HV86_VMM_DEV_VBLK_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/dev/virtio.h"

#define VBLK_SECTOR       512u
#define VBLK_BUF_BYTES    65536u          /* bounce buffer: requests go through it in pieces */
#define VBLK_MAX_REQUEST  (4u << 20)      /* data bytes one request may move */
#define VBLK_SEG_MAX      (VIRTIO_QUEUE_SIZE - 2)
#define VBLK_BAR_BYTES    0x40            /* legacy registers + device config, a power of two */
#define VBLK_ID_BYTES     20              /* GET_ID: the serial (§5.2.6) */

/* Where a disk's sectors come from. Every call returns 0 or a negative
 * error; sector counts are 512-byte sectors within [0, sectors). write's
 * cached: the driver negotiated FLUSH, so the data may wait in a write
 * cache until flush; else it must be on the medium when write returns
 * (write-through, virtio v1.2 §5.2.6.2). */
struct vblk_backend {
    int (*read)(void *opaque, uint64_t sector, uint32_t count, void *buf);
    int (*write)(void *opaque, uint64_t sector, uint32_t count, const void *buf, bool cached);
    int (*flush)(void *opaque);
    void *opaque;
    uint64_t sectors;
    bool read_only;
    char serial[VBLK_ID_BYTES + 1];
};

struct vblk_stats {
    uint64_t reads, writes, flushes, errors, sectors_read, sectors_written;
};

struct vblk {
    struct virtio_pci vp;
    struct vblk_backend be;
    struct vblk_stats st;
    struct virtq_chain chain;     /* the request being served */
    uint8_t buf[VBLK_BUF_BYTES];
};

/*
 * vblk_init - a virtio-blk function at devfn, BAR0 at io_base, INTx on
 * irq through line, DMA through mem, sectors from be (copied). Then
 * vblk_attach and vblk_reset.
 */
void vblk_init(struct vblk *b, uint8_t devfn, uint16_t io_base, uint8_t irq, struct vdev_irq line,
               struct vdev_mem mem, const struct vblk_backend *be);
int vblk_attach(struct vblk *b, struct vpci *pci, struct iobus *bus);
void vblk_reset(struct vblk *b);

#endif
