/*
 * Sequential read-ahead for one VM disk: the bookkeeping only (which host
 * read to start next, whether a guest read lies in what was fetched, what a
 * write makes stale). vmm/vdiskio.c moves the data and holds the lock;
 * this file does no I/O and touches no memory but its struct, so that it
 * is unit-tested on the build host (tests/unit/test_diskra.c).
 *
 * The technique is a disk controller's (or Linux's page-cache) read-ahead:
 * when a guest read starts where its previous one ended, the next
 * DISKRA_SECTORS after it are read into a per-disk window while the guest
 * consumes what it got, so that its next read is a copy from the window
 * instead of a wait for the host disk.
 *
 * Bounds: one window of DISKRA_SECTORS per disk, allocated once; at most
 * one fill at a time, and one fill per DISKRA_SECTORS / 2 of sequential
 * progress, so a guest reading everywhere gets no fills at all and one
 * reading sequentially at most doubles what it reads from the host disk.
 *
 * Coherence (the rule: a guest read never returns data older than a write
 * the guest was told is done): diskra_write is called after every write of
 * the disk's sectors reaches the host drive and before the guest hears of
 * it; it drops the window if the write overlaps it, and marks a fill in
 * flight that overlaps it stale, so that diskra_fill_end throws that
 * fill's data away (the drive may have read the old sectors). A fill
 * started after the write reads the new data. Only the VM holding the disk
 * writes its sectors (vmm/vdisk.h: one writer per range).
 */
#ifndef HV86_VMM_DISKRA_H
#define HV86_VMM_DISKRA_H
#include <stdbool.h>
#include <stdint.h>

#define DISKRA_SECTORS 512u /* 512-byte sectors in the window: 256 KiB */

struct diskra_stats {
    uint64_t fills;          /* host reads started into the window */
    uint64_t sectors_filled; /* sectors they read */
    uint64_t hits;           /* guest reads served from the window */
    uint64_t sectors_hit;
    uint64_t stale;          /* windows or fills dropped by a guest write */
};

struct diskra {
    uint64_t disk_sectors; /* the disk's size: no fill passes it */
    uint64_t next;         /* the sector after the guest's last read: a read starting here is sequential */
    bool have_next;
    uint64_t start;        /* the window's data: [start, start + count) when valid */
    uint32_t count;
    bool valid;
    uint64_t fill_start;   /* the fill in flight, when filling */
    uint32_t fill_count;
    bool filling, fill_stale;
    struct diskra_stats st;
};

/* diskra_init - an empty window for a disk of disk_sectors sectors. */
void diskra_init(struct diskra *ra, uint64_t disk_sectors);

/*
 * diskra_lookup - whether the guest read of count sectors at sector lies
 * wholly in the valid window; if so *off is its first sector's offset in
 * the window (sectors) and the hit is counted. A read that only overlaps
 * it is a miss (the host disk serves it whole).
 */
bool diskra_lookup(struct diskra *ra, uint64_t sector, uint32_t count, uint32_t *off);

/*
 * diskra_plan - after the guest read of count sectors at sector was
 * served: whether to fill the window now, and with which sectors
 * (*start, *n <= DISKRA_SECTORS, inside the disk). Yes when the read was
 * sequential (it started where the previous one ended), no fill is in
 * flight, and the window does not already hold the next DISKRA_SECTORS / 2
 * sectors (or up to the disk's end).
 */
bool diskra_plan(struct diskra *ra, uint64_t sector, uint32_t count, uint64_t *start, uint32_t *n);

/* diskra_fill_begin - the window is about to be overwritten with n sectors
 * at start (as planned): it holds nothing valid until diskra_fill_end. */
void diskra_fill_begin(struct diskra *ra, uint64_t start, uint32_t n);

/* diskra_fill_end - the fill finished with rc (0 or a negative error):
 * returns whether the window now holds its sectors (false after an error
 * or a write that made it stale). */
bool diskra_fill_end(struct diskra *ra, int rc);

/* diskra_write - count sectors at sector were written (see Coherence). */
void diskra_write(struct diskra *ra, uint64_t sector, uint32_t count);

#endif
