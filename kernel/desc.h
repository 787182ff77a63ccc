/*
 * Encoding of a code, data or system segment descriptor (Intel SDM Vol. 3A
 * §3.4.5, Figure 3-8). Hosted-safe: the unit tests use it too.
 */
#ifndef HV86_KERNEL_DESC_H
#define HV86_KERNEL_DESC_H
#include <stdint.h>

/* limit is the 20-bit field as stored (4 KiB units when flags has G);
 * access the access byte; flags the G D/B L AVL nibble. Bits beyond each
 * field are dropped. */
static inline uint64_t desc_make(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    uint64_t d = limit & 0xFFFF;
    d |= (uint64_t)(base & 0xFFFFFF) << 16;
    d |= (uint64_t)access << 40;
    d |= (uint64_t)((limit >> 16) & 0xF) << 48;
    d |= (uint64_t)(flags & 0xF) << 52;
    d |= (uint64_t)(base >> 24) << 56;
    return d;
}

#endif
