/*
 * Physical frame allocator: one bit per 4 KiB host frame, built from the
 * Multiboot2 memory map (Multiboot2 spec §3.6.8) minus reserved ranges (the
 * hypervisor image, GRUB modules, the Multiboot info, the first MiB).
 *
 * Two zones: ZONE_DIRECT frames lie below DIRECTMAP_SIZE and are reachable
 * through the direct map (page tables, heap, translation caches); ZONE_HIGH
 * frames lie above and are only reached through kmap (guest RAM).
 *
 * The core (struct pmm, pmm_*) is pure and takes no lock, so that it can be
 * unit-tested on the Linux host; frame_alloc()/frame_free() are the locked
 * wrappers the kernel uses around the one global allocator.
 */
#ifndef HV86_KERNEL_PMM_H
#define HV86_KERNEL_PMM_H
#include <stddef.h>
#include <stdint.h>

enum pmm_zone { ZONE_DIRECT, ZONE_HIGH, PMM_NZONES };

struct mem_range {
    uint64_t base; /* bytes */
    uint64_t len;  /* bytes */
};

struct pmm_stats {
    uint32_t total[PMM_NZONES]; /* frames managed per zone */
    uint32_t free[PMM_NZONES];  /* frames free per zone */
};

struct pmm {
    uint32_t *bitmap;          /* bit set = frame used or not RAM */
    uint32_t nframes;          /* frames covered by the bitmap */
    uint32_t zone_split;       /* first frame number of ZONE_HIGH */
    uint32_t next[PMM_NZONES]; /* next-fit search hint per zone */
    struct pmm_stats stats;
};

/* Bytes of bitmap needed to cover physical addresses [0, max_addr). */
size_t pmm_bitmap_bytes(uint64_t max_addr);

/*
 * pmm_init - set up p over caller-owned bitmap storage. Frames are free only if
 * entirely inside some avail range and not touched by any reserved range;
 * ranges may overlap, be unsorted, zero-length or extend past 4 GiB (clipped).
 * zone_split_addr: first byte of ZONE_HIGH (DIRECTMAP_SIZE in the kernel).
 * Returns 0, or E_INVAL if bitmap_bytes is too small for the highest avail frame
 * below 4 GiB (frames past the bitmap are then ignored, not an error, only if
 * bitmap_bytes == 0 -- never).
 */
int pmm_init(struct pmm *p, void *bitmap, size_t bitmap_bytes, uint64_t zone_split_addr,
             const struct mem_range *avail, size_t navail, const struct mem_range *reserved,
             size_t nreserved);

/*
 * pmm_alloc - allocate nframes physically contiguous frames from zone z.
 * ZONE_HIGH requests fall back to ZONE_DIRECT when ZONE_HIGH is exhausted;
 * ZONE_DIRECT requests never fall back. Stores the first frame's physical
 * address (bytes, 4 KiB aligned) in *pa. Returns 0, E_NOMEM or E_INVAL (nframes 0).
 */
int pmm_alloc(struct pmm *p, enum pmm_zone z, uint32_t nframes, uint32_t *pa);

/*
 * pmm_free - free nframes frames starting at pa. Returns 0, or E_INVAL if pa is
 * unaligned, out of range, or any frame in the run is already free (double
 * free) -- in which case nothing is changed.
 */
int pmm_free(struct pmm *p, uint32_t pa, uint32_t nframes);

/* Copy the per-zone counters. */
void pmm_get_stats(const struct pmm *p, struct pmm_stats *out);

#ifndef HV86_HOSTED
/* Kernel allocator, set up by boot from the Multiboot2 map. Locked wrappers; a
 * failing free of a kernel frame is a hypervisor bug and panics. */
extern struct pmm kernel_pmm;
void pmm_boot_init(const struct mem_range *avail, size_t navail, const struct mem_range *reserved,
                   size_t nreserved);
int frame_alloc(enum pmm_zone z, uint32_t nframes, uint32_t *pa);
void frame_free(uint32_t pa, uint32_t nframes);
void frame_stats(struct pmm_stats *out);
#endif

#endif
