/*
 * A VM's disks: what `vm create ... disk=SPEC[,mode=M][,type=T]` names, who
 * holds which host sectors, and the sector backend a guest disk device
 * reads and writes through (docs/storage.md, "Guest disks").
 *
 *   SPEC   a whole disk or a partition as `disks` lists it: ata0, ata0p2
 *   mode   persistent (default): writes go to the partition;
 *          ro: the guest sees a read-only disk (virtio-blk RO feature;
 *          an IDE disk has no such flag, its writes fail with ABRT);
 *          nonpersistent: writes go to a redo log in host RAM (vmm/redo.h)
 *          that is thrown away at every power-on (start, guest reset);
 *          undoable: the redo log survives power-off until `vm commit`
 *          writes it to the partition or `vm discard` drops it
 *   redo   the redo log's cap (a size, default VDISK_REDO_DEFAULT): a write
 *          that needs more is an I/O error to the guest
 *   readahead  on: a persistent or ro virtio disk gets a host read-ahead
 *          window (vmm/diskra.h); off (default): its gain is unproven
 *          (docs/performance.md, "Host read-ahead")
 *   type   virtio (default): a virtio-blk PCI function (vmm/dev/vblk.h);
 *          ide: an ATA disk on the VM's PIIX3 IDE controller
 *          (vmm/dev/vide.h), in the order given: primary master, primary
 *          slave, secondary master, secondary slave
 *
 * A range of host sectors is writable by at most one VM at a time, and
 * read by any number while nobody writes it: a partition and the whole
 * disk it lies on overlap. persistent and undoable (its commit) write;
 * ro and nonpersistent only read the partition. The claim lasts from
 * `vm create` to `vm destroy`.
 *
 * Trust: the spec is the administrator's; the guest only ever names
 * sectors relative to its own disk, and disk_part_read/write refuse any
 * that leave the partition.
 */
#ifndef HV86_VMM_VDISK_H
#define HV86_VMM_VDISK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drivers/disk.h"

#define VM_MAX_DISKS  4
#define VDISK_SPEC_MAX 16
#define VDISK_REDO_DEFAULT (64ull << 20) /* bytes of redo log per disk unless redo= says */

enum vdisk_mode { VDISK_PERSISTENT, VDISK_RO, VDISK_NONPERSISTENT, VDISK_UNDOABLE };
enum vdisk_type { VDISK_VIRTIO, VDISK_IDE };

struct vdisk {
    char spec[VDISK_SPEC_MAX];       /* as given: "ata0p2" */
    struct disk *disk;
    const struct partition *part;    /* NULL: the whole disk */
    uint64_t first, sectors;         /* host LBA range held */
    enum vdisk_mode mode;
    enum vdisk_type type;
    uint64_t redo_cap;               /* bytes */
    struct redo *redo;               /* nonpersistent, undoable: from vm_create (vdisk_open) */
    struct vdiskio *io;              /* its I/O thread (vmm/vdiskio.h), or NULL */
    bool readahead;                  /* readahead=on: the I/O thread's read-ahead window (off by default) */
};

struct vm;

/*
 * vdisk_parse - one `disk=` value into *d (looked up among the host's
 * disks). Returns 0, or E_INVAL / E_NOENT with a one-line reason in err:
 * unknown disk or partition, unknown key or value.
 */
int vdisk_parse(const char *value, struct vdisk *d, char *err, size_t errlen);

/*
 * vdisk_conflict - whether d may be held by vm given every other VM's
 * disks (and vm's own ones before it): NULL if so, else the name of the VM
 * holding an overlapping range in a way that conflicts (either side
 * writes). The caller holds no lock; VMs are created and destroyed on the
 * console thread only.
 */
const char *vdisk_conflict(const struct vm *vm, const struct vdisk *d, unsigned index);

/* Backend callbacks for vmm/dev/vblk.h, opaque = struct vdisk *: sectors
 * relative to the disk, 512 bytes each; the buffer is monitor memory. A
 * persistent disk's cached writes may sit in the host drive's write cache
 * until vdisk_flush (ATA FLUSH CACHE); uncached ones are on the medium when
 * vdisk_write returns. */
int vdisk_read(void *opaque, uint64_t sector, uint32_t count, void *buf);
int vdisk_write(void *opaque, uint64_t sector, uint32_t count, const void *buf, bool cached);
int vdisk_flush(void *opaque);
/* vdisk_rw_sg - the zero-copy backend call (vdev_disk.rw_sg): straight
 * between the partition and host frames, for a disk whose sectors all live
 * on the partition (persistent or ro). A disk with a redo log, and a write
 * to a ro disk, answer E_NOTSUP: the device copies through vdisk_read and
 * vdisk_write, which know the log. Otherwise as disk_part_rw_sg. */
int vdisk_rw_sg(void *opaque, uint64_t sector, uint32_t count, const struct dma_seg *sg, unsigned n, bool write,
                bool cached);

const char *vdisk_mode_name(enum vdisk_mode m);

/* vdisk_open - what d needs while a VM holds it: the redo log of a
 * nonpersistent or undoable disk. Returns 0 or E_NOMEM. vdisk_close frees
 * it (the log's contents are lost). */
int vdisk_open(struct vdisk *d);
void vdisk_close(struct vdisk *d);
/* Power-on: a nonpersistent disk's log is thrown away. */
void vdisk_power_on(struct vdisk *d);
/*
 * vdisk_commit - write an undoable disk's redo log to the partition, then
 * empty it; vdisk_discard - empty it. Return 0, E_INVAL (not undoable) or
 * the disk's error (the log is kept then, and so is what was written).
 * The VM must not be running.
 */
int vdisk_commit(struct vdisk *d);
int vdisk_discard(struct vdisk *d);

/* disk_holder_fn for `disks` (drivers/disk.h): "held by NAME (MODE)" for
 * every VM holding exactly that disk or partition. Install with
 * disk_set_holder_fn(vdisk_holders) at boot. */
void vdisk_holders(const struct disk *d, const struct partition *part, char *buf, size_t len);

#endif
