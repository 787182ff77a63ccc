/*
 * Guest-physical memory: a VM's RAM is a set of host frames in no particular
 * order, found through a gpa -> hpa table (one entry per 4 KiB guest page).
 * The monitor reaches guest RAM through kmap windows, never through a
 * mapping the guest controls. Guest-physical addresses outside RAM are not
 * memory: they belong to device emulation or fault.
 */
#ifndef HV86_VMM_GMEM_H
#define HV86_VMM_GMEM_H
#include <stdint.h>

struct gmem {
    uint32_t npages;  /* guest RAM in 4 KiB pages */
    uint32_t *hpa;    /* hpa[gpa >> 12]: host physical frame, kmalloc'd table */
};

/*
 * gmem_init - allocate bytes (rounded up to 4 KiB) of guest RAM from
 * ZONE_HIGH frames (falling back to ZONE_DIRECT), zeroed. Returns 0 or
 * E_NOMEM (nothing stays allocated then).
 */
int gmem_init(struct gmem *m, uint32_t bytes);
/* Return every frame to the allocator. Safe on a zeroed or freed gmem. */
void gmem_free(struct gmem *m);
/* Host frame behind gpa; E_RANGE if gpa is outside guest RAM. */
int gmem_gpa_to_hpa(const struct gmem *m, uint32_t gpa, uint32_t *hpa);
/* Copy between guest RAM and host memory; E_RANGE if any byte is outside. */
int gmem_read(const struct gmem *m, uint32_t gpa, void *buf, uint32_t len);
int gmem_write(const struct gmem *m, uint32_t gpa, const void *buf, uint32_t len);
int gmem_zero(const struct gmem *m, uint32_t gpa, uint32_t len);

#endif
