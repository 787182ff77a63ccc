/*
 * Types shared by the emulated devices of vmm/dev/: the callbacks an owner
 * (the VMM) hands to a device. Devices never call into the rest of hv86;
 * everything they need from the outside world comes through these.
 */
#ifndef HV86_VMM_DEV_VDEV_H
#define HV86_VMM_DEV_VDEV_H
#include <stdbool.h>
#include <stdint.h>
#include "kernel/pmm.h"

/* Drive interrupt line irq (0-15, ISA numbering) to level (0 low, 1 high).
 * Devices call it only when the level changes, except for pulses (1 then 0)
 * by which edge-only sources (the PIT) signal one edge. */
typedef void (*vdev_irq_fn)(void *opaque, int irq, int level);

/* Where a device's interrupt line goes: usually { vpic_irq_sink, &pic }.
 * A zero struct leaves the line unconnected. */
struct vdev_irq {
    vdev_irq_fn set;
    void *opaque;
};

static inline void vdev_irq_set(const struct vdev_irq *line, int irq, int level)
{
    if (line->set)
        line->set(line->opaque, irq, level);
}

/* The guest asked for a machine reset (a pulse of the CPU reset line: the
 * i8042's 0xFE command). The owner only records the request: the device is
 * in the middle of a port access, so resetting the vCPU or the devices
 * from inside the callback would pull state from under it. hv86's owner is
 * vm_request_reset (vmm/vm.h); the vCPU thread reboots at its next turn. */
typedef void (*vdev_reset_fn)(void *opaque);

/* Guest physical memory as a device that does DMA sees it: read or write
 * len bytes at gpa. Returns 0, or E_RANGE if any byte lies outside guest
 * RAM (nothing is copied then). The owner keeps the monitor's caches of
 * guest memory (shadow page tables, translated code) coherent on writes.
 *
 * Zero copy (optional: both NULL, and devices copy through read/write):
 * dma_frame gives the host frame (its physical address) that holds the
 * guest page at gpa (page aligned), for a host device to move data in
 * (for_write) or out of directly; 0 or E_RANGE (outside guest RAM). The
 * frame stays the page's while the calling device model runs (a guest's
 * frames change only on its own vCPU thread). dma_written tells the owner
 * that [gpa, gpa + len) was written that way, after the fact, so that it
 * drops what it cached of those bytes as write would have. */
#define VDEV_PAGE 4096u /* bytes of a guest page (dma_frame's unit) */
struct vdev_mem {
    int (*read)(void *opaque, uint32_t gpa, void *buf, uint32_t len);
    int (*write)(void *opaque, uint32_t gpa, const void *buf, uint32_t len);
    void *opaque;
    int (*dma_frame)(void *opaque, uint32_t gpa, bool for_write, uint32_t *hpa);
    void (*dma_written)(void *opaque, uint32_t gpa, uint32_t len);
};

/* Monotonic host time in nanoseconds; never goes backwards. */
typedef uint64_t (*vdev_clock_fn)(void *opaque);

/* "Never" for next-event functions, in ns. */
#define VDEV_NEVER UINT64_MAX

#define NS_PER_SEC 1000000000ull /* nanoseconds in a second */
#define NS_PER_US  1000ull       /* nanoseconds in a microsecond */

/* A disk I/O started without waiting for it (vdev_disk.submit): count
 * sectors at sector between the disk and the host pieces sg[0..n), as
 * rw_sg takes them. rc and done are written by the owner, rc first, from
 * any thread; read done with __atomic_load_n(..., __ATOMIC_ACQUIRE). */
struct vdev_io {
    uint64_t sector;
    uint32_t count;
    const struct dma_seg *sg;
    unsigned n;
    bool write, cached;
    int rc;
    bool done;
};

/* A disk a storage device model serves (virtio-blk, IDE): 512-byte
 * sectors [0, sectors). Every call returns 0 or a negative error, and the
 * device has checked the range first. write's cached: the driver asked for
 * write-back (virtio FLUSH negotiated, ATA write cache enabled), so the
 * data may wait in a write cache until flush; else it must be on the
 * medium when write returns. hv86's owner is vmm/vdisk.h. */
#define VDEV_SECTOR        512u
#define VDEV_DISK_SERIAL   20      /* serial number bytes (virtio GET_ID, ATA IDENTIFY words 10-19) */
struct vdev_disk {
    int (*read)(void *opaque, uint64_t sector, uint32_t count, void *buf);
    int (*write)(void *opaque, uint64_t sector, uint32_t count, const void *buf, bool cached);
    int (*flush)(void *opaque);
    void *opaque;
    uint64_t sectors;
    bool read_only;
    char serial[VDEV_DISK_SERIAL + 1];
    /* Optional (NULL: none): count sectors at sector straight between the
     * disk and host memory, the pieces sg[0..n) (lengths summing to
     * count * 512, even addresses and lengths), with no copy; write: to
     * the disk, cached as for write. E_NOTSUP: not for this request, and
     * nothing of it is promised: the device does it again through
     * read/write. */
    int (*rw_sg)(void *opaque, uint64_t sector, uint32_t count, const struct dma_seg *sg, unsigned n, bool write,
                 bool cached);
    /* Optional (NULL: none; then drain is NULL too): start io as rw_sg
     * would do it and return 0 at once; later, from any thread, the owner
     * sets io->rc (rw_sg's answer) and then io->done, and the device
     * finishes the request on its own thread (vblk_poll). io, its sg and
     * the frames they name stay the device's until done. E_BUSY: not
     * started (the owner's queue is full); the device does it with rw_sg. */
    int (*submit)(void *opaque, struct vdev_io *io);
    /* Return once every io submitted so far is done (device reset, VM
     * destroyed). */
    void (*drain)(void *opaque);
    /* Reads shorter than this (bytes) are not started but done at once
     * with rw_sg: for a short read the switch to the owner's I/O thread
     * and back costs more than the guest gains by running meanwhile. */
    uint32_t submit_min;
};

/* What a storage device did, for `vm info`: requests and 512-byte sectors
 * moved, flushes, requests that completed with an error, and reads and
 * writes that moved their data without a copy (vdev_disk.rw_sg). */
struct vdev_disk_stats {
    uint64_t reads, writes, flushes, errors, sectors_read, sectors_written, zero_copy;
};

/* An Ethernet port a NIC model is plugged into; hv86's owner is a port of
 * a virtual switch (net/vswitch.h). Frames are Ethernet frames without the
 * FCS (destination, source, type/length, payload), VDEV_FRAME_MIN to
 * VDEV_FRAME_MAX bytes (IEEE 802.3 §3.2, with an 802.1Q tag; no padding
 * required: a 42-byte ARP frame is fine).
 *   send     a frame the guest transmitted; the port copies it before it
 *            returns. 0, or a negative error if it was dropped (the port
 *            counts why).
 *   recv     the next frame waiting for the guest, copied into buf (cap
 *            >= VDEV_FRAME_MAX bytes): its length, or 0 if none waits.
 *   pending  whether a frame waits: a lock-free read, callable from any
 *            thread and from interrupt handlers.
 *   link     the guest's driver came up (true) or the device was reset
 *            (false); a port that is down is given no frames and forgets
 *            the ones it held. */
#define VDEV_FRAME_MIN 14u   /* destination, source, type: a header and nothing else */
#define VDEV_FRAME_MAX 1518u /* 1500 bytes of payload behind a tagged header */
struct vdev_net {
    int (*send)(void *opaque, const void *frame, uint32_t len);
    uint32_t (*recv)(void *opaque, void *buf, uint32_t cap);
    bool (*pending)(void *opaque);
    void (*link)(void *opaque, bool up);
    void *opaque;
};

#endif
