/*
 * virtio-blk, legacy PCI interface (1AF4:1001, subsystem 2, class 01/00):
 * one request queue of VIRTIO_QUEUE_SIZE entries, served when the driver
 * notifies it (on the vCPU thread), from a struct vdev_disk
 * (vmm/dev/vdev.h; a raw partition through vmm/vdisk.c).
 *
 * A read that goes without a copy is started through vdev_disk.submit
 * where the backend offers it, and the guest runs on while the host disk
 * works: vblk_poll, on the vCPU thread, finishes it (used ring, status,
 * interrupt) once the backend says it is done. At most VBLK_INFLIGHT
 * requests are started at once; further ones wait in the queue. Every
 * other request (writes, flushes, copies) is served before notify
 * returns. Guest memory is touched on the vCPU thread only; the backend
 * moves data between the disk and the frames of sg.
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

#define VBLK_INFLIGHT     4u              /* requests one disk may have started and not finished */

/* A request the device has taken from the queue: served at once, or
 * started through vdev_disk.submit and finished by vblk_poll. */
struct vblk_slot {
    struct virtq_chain chain;
    struct vdev_io io;
    struct dma_seg sg[VBLK_SG_MAX]; /* the request's data in host frames (zero copy) */
    uint64_t data;                  /* data bytes */
    bool busy;                      /* started, not finished */
};

struct vblk {
    struct virtio_pci vp;
    struct vdev_disk be;
    struct vdev_disk_stats st;
    uint8_t buf[VBLK_BUF_BYTES];
    struct vblk_slot slot[VBLK_INFLIGHT];
    struct dma_seg *sg;             /* the pieces being built (a slot's sg) */
    unsigned sg_n;                  /* pieces of sg in use */
    bool sg_in;                     /* they are being built for an IN (the device writes them) */
    bool starved;                   /* requests wait in the queue for a free slot */
};

/*
 * vblk_init - a virtio-blk function at devfn, BAR0 at io_base, INTx on
 * irq through line, DMA through mem, sectors from be (copied). Then
 * vblk_attach and vblk_reset.
 */
void vblk_init(struct vblk *b, uint8_t devfn, uint16_t io_base, uint8_t irq, struct vdev_irq line,
               struct vdev_mem mem, const struct vdev_disk *be);
int vblk_attach(struct vblk *b, struct vpci *pci, struct iobus *bus);
/* vblk_reset - power-on state. As on the driver's reset (status 0), the
 * requests the backend still works on are waited for (vdev_disk.drain)
 * and dropped, not put in the used ring; the memory owner is told what
 * their reads wrote. */
void vblk_reset(struct vblk *b);
/*
 * vblk_poll - finish the started requests the backend is done with (status
 * byte, used ring, one interrupt for all), then serve requests that
 * waited for a free slot. On the vCPU thread, as notify. Returns whether
 * it put anything in the used ring.
 */
bool vblk_poll(struct vblk *b);
/* vblk_busy - whether a request is started and not finished (its frames
 * may still be written by the host disk). */
bool vblk_busy(const struct vblk *b);
/* vblk_ready - whether vblk_poll has work now: a started request is done.
 * Lock-free: any thread, for the vCPU's halt. */
bool vblk_ready(const struct vblk *b);

#endif
