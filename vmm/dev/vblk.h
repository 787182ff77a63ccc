/*
 * virtio-blk, legacy PCI interface (1AF4:1001, subsystem 2, class 01/00):
 * one request queue of VIRTIO_QUEUE_SIZE entries, served synchronously
 * when the driver notifies it (on the vCPU thread), from a struct
 * vdev_disk (vmm/dev/vdev.h; a raw partition through vmm/vdisk.c).
 *
 * Features offered: SEG_MAX (VBLK_SEG_MAX segments), BLK_SIZE (512), FLUSH,
 * and RO for a read-only backend. Requests: IN, OUT, FLUSH, GET_ID; any
 * other type completes with UNSUPP. A request past the end of the disk, one
 * whose data is not whole sectors, a write to a read-only disk, or one with
 * more than VBLK_MAX_REQUEST bytes of data completes with IOERR; so does
 * one the backend fails. FLUSH completes only after the backend's flush
 * (the host disk's FLUSH CACHE) did; a driver that did not negotiate FLUSH
 * gets write-through.
 *
 * Data moves without a copy when the backend and the memory owner offer it
 * (vdev_disk.rw_sg, vdev_mem.dma_frame): the request's buffers become a
 * list of host frames (split at guest page boundaries, merged where the
 * frames are contiguous) that the host disk's bus master reads or writes
 * directly; dma_written then tells the owner what a read wrote. A request
 * whose buffers do not fit that (an odd address or length, more than
 * VBLK_SG_MAX pieces) or that the backend turns down (E_NOTSUP) goes
 * through the bounce buffer instead; both ways give the guest the same.
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

#define VBLK_BUF_BYTES    65536u          /* bounce buffer: requests go through it in pieces */
#define VBLK_MAX_REQUEST  (4u << 20)      /* data bytes one request may move */
#define VBLK_SEG_MAX      (VIRTIO_QUEUE_SIZE - 2)
#define VBLK_BAR_BYTES    0x40            /* legacy registers + device config, a power of two */
#define VBLK_SG_MAX       512u            /* host pieces of one zero-copy request (else it is copied) */

struct vblk {
    struct virtio_pci vp;
    struct vdev_disk be;
    struct vdev_disk_stats st;
    struct virtq_chain chain;     /* the request being served */
    uint8_t buf[VBLK_BUF_BYTES];
    struct dma_seg sg[VBLK_SG_MAX]; /* the request's data in host frames (zero copy) */
    unsigned sg_n;                  /* pieces of sg in use */
    bool sg_in;                     /* they are being built for an IN (the device writes them) */
};

/*
 * vblk_init - a virtio-blk function at devfn, BAR0 at io_base, INTx on
 * irq through line, DMA through mem, sectors from be (copied). Then
 * vblk_attach and vblk_reset.
 */
void vblk_init(struct vblk *b, uint8_t devfn, uint16_t io_base, uint8_t irq, struct vdev_irq line,
               struct vdev_mem mem, const struct vdev_disk *be);
int vblk_attach(struct vblk *b, struct vpci *pci, struct iobus *bus);
void vblk_reset(struct vblk *b);

#endif
