/*
 * A VM disk's I/O thread: the host side of vdev_disk.submit and .drain
 * (vmm/dev/vdev.h). A virtio-blk read that goes without a copy is queued
 * here by the vCPU thread and moved by this thread through vdisk_rw_sg
 * (bus-master DMA straight into the guest's frames), so that the guest
 * runs on while the host disk works, as a PC's CPU does while its disk
 * controller transfers. The thread touches no guest memory through the
 * monitor's mappings and no device state: only the host frames the device
 * named (by DMA, or by a copy from the read-ahead window through
 * kmap_copy, which writes exactly what the DMA would have) and the io's rc
 * and done; the device finishes the request on the vCPU thread
 * (vblk_poll).
 *
 * Read-ahead (vmm/diskra.h): after a guest read that continues the
 * previous one, the thread reads the next DISKRA_SECTORS into the disk's
 * window (256 KiB of host frames, allocated with the thread), unless
 * another request waits; a later guest read that lies in the window is a
 * copy instead of a host command. Writes (vdiskio_wrote, called by
 * vmm/vdisk.c) drop what they overlap.
 */
#ifndef HV86_VMM_VDISKIO_H
#define HV86_VMM_VDISKIO_H
#include "vmm/dev/vdev.h"
#include "vmm/diskra.h"
#include "vmm/vdisk.h"

#define VDISKIO_QUEUE 8u /* ios queued per disk (at least VBLK_INFLIGHT) */
/* Shorter reads are done on the vCPU thread (vdev_disk.submit_min):
 * under QEMU TCG, 4 KiB random reads went at 1,690 IOPS started against
 * 2,466 done at once (make bench-disk, quiet machine). */
#define VDISKIO_SUBMIT_MIN (32u << 10)

/*
 * vdiskio_start - d's I/O thread, named after its VM and disk; each io's
 * end calls kick(ctx) on that thread (wake the vCPU that polls the
 * device). Returns 0, or E_NOMEM (no thread: submit answers E_BUSY, and
 * the device moves its data itself). Only for a disk whose data all lives
 * on its partition (persistent, ro): vdisk_rw_sg refuses the others.
 */
int vdiskio_start(struct vdisk *d, const char *name, void (*kick)(void *ctx), void *ctx);
/* vdiskio_stop - wait for d's queued ios (vdiskio_drain), end its thread
 * and free what vdiskio_start took. No-op if none. Thread context. */
void vdiskio_stop(struct vdisk *d);
/*
 * vdiskio_submit - vdev_disk.submit, opaque = struct vdisk *: queue io and
 * let the I/O thread start it at once (thread_handoff) before the caller
 * goes on. Returns 0, or E_BUSY (no thread, queue full, stopping). The io
 * and the frames of its sg must stay the caller's until io->done.
 */
int vdiskio_submit(void *opaque, struct vdev_io *io);
/*
 * vdiskio_wrote - count sectors at sector of d were written (by whatever
 * path: zero copy, bounce buffer, the emulated IDE): drop what the
 * read-ahead window or a fill in flight holds of them (vmm/diskra.h,
 * Coherence). Call after the write reached the host drive and before the
 * guest is told. No-op for a disk without an I/O thread. Any thread.
 */
void vdiskio_wrote(struct vdisk *d, uint64_t sector, uint32_t count);
/* vdiskio_ra_stats - d's read-ahead counters and window size (KiB), for
 * `vm info`; false if d has no window (no I/O thread, or no memory for it). */
bool vdiskio_ra_stats(const struct vdisk *d, struct diskra_stats *st, uint32_t *window_kib);
/* vdiskio_drain - vdev_disk.drain: return once every submitted io is done
 * (sleeps a tick at a time). Thread context. */
void vdiskio_drain(void *opaque);

#endif
