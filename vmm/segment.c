/*
 * Segment descriptors: limit checks and shadow descriptors (vmm/segment.h).
 *
 * Trust: the descriptors come from guest memory and may hold any bits. The
 * shadow is what keeps translated guest code out of the monitor, so its one
 * invariant is checked by tests/unit/test_segment.c against a model of the
 * SDM's rules: every offset the CPU accepts on a shadow lies inside the
 * guest's own limit and maps below MONITOR_BASE. A guest gains nothing by
 * lying in a descriptor: the worst it gets is a not-present shadow, whose
 * accesses the monitor emulates or refuses.
 */
#include "vmm/segment.h"
#include "kernel/layout.h"

#define LIMIT_FIELD_MAX 0xFFFFFu /* 20-bit limit field (SDM Vol. 3A Figure 3-8) */
#define PAGE_LOW        0xFFFu   /* what G=1 appends to the limit field */

bool seg_access_ok(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags, uint32_t off, uint32_t size,
                   bool write)
{
    uint64_t first = off, last = (uint64_t)off + size - 1;
    if (access & DESC_CODE) {
        if (write || !(access & DESC_WRITABLE))
            return false;
    } else if (write && !(access & DESC_WRITABLE)) {
        return false;
    }
    if (!(access & DESC_CODE) && (access & DESC_DOWN)) {
        uint64_t top = (flags & DESC_FLAG_D) ? 0xFFFFFFFFull : 0xFFFFull;
        return first > limit && last <= top;
    }
    if (base == 0 && limit == 0xFFFFFFFFu)
        return true; /* flat: the offset wraps, as on Bochs 2.7 */
    return last <= limit;
}

/* A byte limit (< 4 GiB - 1) as a limit field and G flag, never granting
 * more than limit: G=1 covers whole pages, so a partial last page is left
 * out (the monitor emulates accesses to it). */
static uint32_t limit_field_down(uint32_t limit, uint8_t *flags)
{
    *flags &= (uint8_t)~DESC_FLAG_G;
    if (limit <= LIMIT_FIELD_MAX)
        return limit;
    *flags |= DESC_FLAG_G;
    /* limit > 0xFFFFF, so limit >> 12 >= 0x100 and the -1 cannot wrap. */
    return (limit & PAGE_LOW) == PAGE_LOW ? limit >> 12 : (limit >> 12) - 1;
}

uint64_t seg_shadow_desc(uint64_t g)
{
    uint8_t acc = desc_access(g), flags = desc_flags(g);
    if (!(acc & DESC_P) || !(acc & DESC_S))
        return 0;
    if (!(acc & DESC_CODE) && (acc & DESC_DOWN))
        return 0;
    uint32_t base = desc_base_of(g), limit = desc_limit_bytes(g);
    if (base >= MONITOR_BASE)
        return 0;
    if (limit > MONITOR_BASE - 1 - base)
        limit = MONITOR_BASE - 1 - base;
    unsigned dpl = DESC_DPL(acc) ? DESC_DPL(acc) : 1;
    acc = (uint8_t)((acc & ~(3u << 5)) | (dpl << 5) | DESC_ACCESSED);
    uint32_t field = limit_field_down(limit, &flags);
    return desc_make(base, field, acc, flags);
}
