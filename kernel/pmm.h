/*
 * Physical frame allocator: one bit per 4 KiB host frame, built from the
 * Multiboot2 memory map (Multiboot2 spec §3.6.8) minus reserved ranges (the
 * hypervisor image, GRUB modules until boot has copied them to high memory,
 * the Multiboot info, the first MiB).
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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pmm_zone { ZONE_DIRECT, ZONE_HIGH, PMM_NZONES };

struct mem_range {
    uint64_t base; /* bytes */
    uint64_t len;  /* bytes */
};

/* One piece of a scatter-gather list: len bytes of host-physical memory at
 * hpa, which a bus-master device reads or writes directly (a 32-bit
 * address: hv86 manages no frame above 4 GiB). */
struct dma_seg {
    uint32_t hpa;
    uint32_t len; /* bytes */
};

struct pmm_stats {
    uint32_t total[PMM_NZONES]; /* frames managed per zone */
    uint32_t free[PMM_NZONES];  /* frames free per zone */
};

struct pmm {
    uint32_t *bitmap;          /* bit set = frame used or not RAM */
    uint32_t *managed;         /* bit set = frame was free RAM at init (may be freed) */
    uint32_t nframes;          /* frames covered by the bitmap */
    uint32_t zone_split;       /* first frame number of ZONE_HIGH */
    uint32_t next[PMM_NZONES]; /* next-fit search hint per zone */
    struct pmm_stats stats;
};

/*
 * Bytes of bitmap storage needed to cover physical addresses [0, max_addr)
 * (clipped to 4 GiB): two bits per 4 KiB frame -- the used map and the managed
 * map, which lets pmm_free refuse frames that were never free RAM. At most
 * 256 KiB (4 GiB).
 */
size_t pmm_bitmap_bytes(uint64_t max_addr);

/*
 * pmm_init - set up p over caller-owned bitmap storage (bitmap_bytes bytes,
 * 4-byte aligned, kept by the caller for the life of p). Frames are free only
 * if entirely inside some avail range and not touched by any reserved range;
 * ranges may overlap, be unsorted, zero-length or extend past 4 GiB (clipped).
 * The bitmap covers frames up to the highest whole avail frame below 4 GiB.
 * zone_split_addr: first byte of ZONE_HIGH (DIRECTMAP_SIZE in the kernel); a
 * frame straddling it counts as ZONE_HIGH.
 * Returns 0, or E_INVAL if bitmap_bytes < pmm_bitmap_bytes(highest avail
 * address below 4 GiB) or a pointer is NULL with a nonzero count; p is then
 * left unusable.
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
 * pmm_alloc_exact - pmm_alloc from zone z only: no fallback. For per-VM
 * monitor memory that is mapped page by page (kernel/vmwin.h), so that it
 * never eats the direct map the heap and page tables need. Returns 0,
 * E_NOMEM (zone z exhausted) or E_INVAL.
 */
int pmm_alloc_exact(struct pmm *p, enum pmm_zone z, uint32_t nframes, uint32_t *pa);

/*
 * pmm_free - free nframes frames starting at pa (bytes). Returns 0, or E_INVAL
 * if pa is unaligned, nframes is 0, the run leaves the bitmap, any frame in it
 * is already free (double free) or was never free RAM (reserved, hole) -- in
 * which case nothing is changed.
 */
int pmm_free(struct pmm *p, uint32_t pa, uint32_t nframes);

/*
 * pmm_reserve - take every free frame touched by [base, base+len) (bytes) out
 * of the allocator for good, as if it had been in pmm_init's reserved list
 * (e.g. firmware tables found after init). Frames already outside the pool
 * are ignored. Returns 0, or E_BUSY if a touched frame is currently allocated
 * (nothing is changed then).
 */
int pmm_reserve(struct pmm *p, uint64_t base, uint64_t len);

/*
 * pmm_unreserve - give back to the pool the frames touched by r (bytes) that
 * pmm_init would have made free had it been given avail and reserved: wholly
 * inside some avail range and touched by no reserved range. The undo of a
 * boot-time reservation, e.g. of GRUB modules once their bytes have been
 * copied elsewhere: the caller lists in reserved everything still in use
 * (the same list as at init, minus r), so that a frame r shares with
 * something else stays out. Frames already in the pool or past the bitmap
 * are left alone. Returns the number of frames added (free, and counted in
 * their zone's total).
 */
uint32_t pmm_unreserve(struct pmm *p, const struct mem_range *r, const struct mem_range *avail, size_t navail,
                       const struct mem_range *reserved, size_t nreserved);

/* True if the frame holding physical address pa (bytes) is free RAM. */
bool pmm_is_free(const struct pmm *p, uint32_t pa);

/* Copy the per-zone counters. */
void pmm_get_stats(const struct pmm *p, struct pmm_stats *out);

#ifndef HV86_HOSTED
/*
 * Kernel allocator, set up by boot from the Multiboot2 map. Its bitmaps live
 * in .bss (256 KiB, all of 4 GiB), so the reserved list passed to
 * pmm_boot_init must cover the whole hypervisor image including .bss; the
 * first MiB is always reserved in addition. pmm_boot_init panics if the map
 * cannot be used. Locked wrappers; a failing free of a kernel frame is a
 * hypervisor bug and panics.
 */
extern struct pmm kernel_pmm;
void pmm_boot_init(const struct mem_range *avail, size_t navail, const struct mem_range *reserved,
                   size_t nreserved);
int frame_alloc(enum pmm_zone z, uint32_t nframes, uint32_t *pa);
int frame_alloc_exact(enum pmm_zone z, uint32_t nframes, uint32_t *pa);
/* frame_unreserve - locked pmm_unreserve on kernel_pmm; same contract. */
uint32_t frame_unreserve(const struct mem_range *r, const struct mem_range *avail, size_t navail,
                         const struct mem_range *reserved, size_t nreserved);
void frame_free(uint32_t pa, uint32_t nframes);
void frame_stats(struct pmm_stats *out);
#endif

#endif
