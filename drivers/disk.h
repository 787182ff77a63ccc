/*
 * Registry of host disks and their raw partitions: what `disks` shows and what
 * guests will later be given as virtual disks. Filled at boot by the ATA
 * driver (drivers/ata.c) and the partition parser (drivers/part.c).
 */
#ifndef HV86_DRIVERS_DISK_H
#define HV86_DRIVERS_DISK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kernel/pmm.h"

#define DISK_NAME_MAX 40
#define DISK_MAX_PARTS 128
#define DISK_MAX_DISKS 8     /* registry slots (4 legacy ATA drives, room for more) */
#define DISK_LINE_MAX 192    /* bytes per line of disk_format_lines() */
#define DISK_KIB 1024u
#define DISK_MIB (1024u * 1024u)

enum part_scheme { PART_NONE, PART_MBR, PART_GPT };

struct partition {
    uint32_t index;        /* 1-based, as in the table (MBR: 1-4 primary, 5+ logical) */
    uint64_t start_lba;    /* sectors */
    uint64_t sectors;      /* size in sectors */
    uint8_t mbr_type;      /* MBR system id (0 for GPT) */
    uint8_t type_guid[16]; /* GPT partition type GUID (on-disk byte order) */
    uint8_t uniq_guid[16]; /* GPT unique partition GUID */
    char name[DISK_NAME_MAX]; /* GPT name (UTF-16LE converted to ASCII, '?' for others); "" for MBR */
};

struct disk {
    char name[DISK_NAME_MAX]; /* "ata0" ... (channel*2 + drive) */
    char model[DISK_NAME_MAX]; /* from IDENTIFY */
    uint64_t sectors;      /* capacity in sectors */
    uint32_t sector_size;  /* bytes, 512 */
    enum part_scheme scheme;
    const char *table_error; /* NULL, or why the partition table was rejected/suspect */
    uint32_t nparts;
    struct partition *parts; /* nparts entries, heap-allocated */
    /* Read count sectors at lba into buf. Returns 0 or a negative E_* code. */
    int (*read)(struct disk *d, uint64_t lba, uint32_t count, void *buf);
    /* Write count sectors; with flush, the drive's write cache is flushed
     * before it returns (0 then means on the medium), else the data may
     * still be in it until the next flush. */
    int (*write)(struct disk *d, uint64_t lba, uint32_t count, const void *buf, bool flush);
    /* The drive's write cache to the medium (ATA FLUSH CACHE [EXT]). */
    int (*flush)(struct disk *d);
    /* Optional (NULL: none): count sectors at lba straight between the
     * drive and host memory, the pieces sg[0..n) (bus-master DMA, no
     * copy); with write and flush as write's flush. E_NOTSUP when the
     * driver cannot do it for this request: the caller uses read/write. */
    int (*rw_sg)(struct disk *d, uint64_t lba, uint32_t count, const struct dma_seg *sg, unsigned n, bool write,
                 bool flush);
    void *priv;
};

/* Register a disk and parse its partition table; never fails the boot: a
 * bad table is recorded in d->table_error and logged. Returns 0 or E_NOMEM.
 * d stays owned by the caller and must live forever; d->parts must be NULL.
 * The disk is registered even on E_NOMEM (with no partitions); E_RANGE if
 * DISK_MAX_DISKS disks are already registered (d is then not registered).
 * Call from one thread at boot (drivers/ata.c: ata_init()). */
int disk_register(struct disk *d);
/* Number of registered disks; disk i (0-based) or NULL. */
int disk_count(void);
struct disk *disk_get(int i);

/*
 * disk_format_lines - the `disks` listing: call emit(line, ctx) once per line
 * (no newline, at most DISK_LINE_MAX bytes) and return the number of lines.
 * For each disk i, in registry order:
 *   disk I NAME "MODEL" N sectors of 512 bytes (64.0 MiB) GPT, 3 partitions
 *   then per partition (start and sectors in sectors; size rounded down):
 *   part I P start S sectors N (8.0 MiB) type 0FC63DAF-8483-4772-8E79-3D69D8477DE4 name "mail"
 *   part I P start S sectors N (8.0 MiB) type 0x83 name ""           (MBR)
 *   and, if the table was rejected or is suspect:
 *   table error I: WHY
 * GPT type GUIDs are printed in the standard mixed-endian text form.
 */
int disk_format_lines(void (*emit)(const char *line, void *ctx), void *ctx);
/*
 * disk_set_holder_fn - who uses a disk or partition, for the listing: fn
 * (the VMM's, vmm/vdisk.c) writes e.g. "held by mail (persistent)" into
 * buf, or nothing; disk_format_lines appends it to that disk's or
 * partition's line after two spaces. part is NULL for the whole disk.
 */
typedef void (*disk_holder_fn)(const struct disk *d, const struct partition *part, char *buf, size_t len);
void disk_set_holder_fn(disk_holder_fn fn);

/*
 * disk_lookup - find "ata0" (a whole disk: *part = NULL) or "ata0p2" (the
 * partition whose table index is 2) among the registered disks, as a VM
 * configuration names them. Returns 0, E_INVAL for a malformed spec, E_NOENT
 * if no such disk or partition. part may be NULL when only disks are wanted.
 */
int disk_lookup(const char *spec, struct disk **disk, const struct partition **part);

/*
 * disk_part_read / disk_part_write - count sectors at lba, relative to the
 * start of partition p of d (p NULL: the whole disk), through d->read/write.
 * Returns 0, E_RANGE if any sector of [lba, lba + count) lies outside p (so
 * a guest given p can never reach a neighbour's sectors), E_INVAL if d has no
 * write method, or the driver's error.
 */
int disk_part_read(struct disk *d, const struct partition *p, uint64_t lba, uint32_t count, void *buf);
int disk_part_write(struct disk *d, const struct partition *p, uint64_t lba, uint32_t count, const void *buf);
/* disk_part_write_cached - as disk_part_write, but the data may stay in the
 * drive's write cache until disk_flush (ATA-8 ACS §7.10, §7.14). */
int disk_part_write_cached(struct disk *d, const struct partition *p, uint64_t lba, uint32_t count,
                           const void *buf);
/*
 * disk_part_rw_sg - count sectors at lba, relative to partition p of d (p
 * NULL: the whole disk), straight between the disk and the host-physical
 * pieces sg[0..n) (their lengths summing to count * 512), through
 * d->rw_sg. write: to the disk; flush: as disk_part_write (else as
 * disk_part_write_cached). Returns 0, E_RANGE (as disk_part_read),
 * E_NOTSUP (no zero-copy path for this disk or this request: use
 * disk_part_read/_write), or the driver's error.
 */
int disk_part_rw_sg(struct disk *d, const struct partition *p, uint64_t lba, uint32_t count,
                    const struct dma_seg *sg, unsigned n, bool write, bool flush);
/* disk_flush - everything written so far to the medium. 0, E_INVAL (no
 * flush method) or the driver's error. */
int disk_flush(struct disk *d);

#endif
