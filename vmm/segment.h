/*
 * Segment descriptors: their fields, the limit check a guest's own segment
 * asks for, and the shadow descriptor the CPU gets in its place.
 * Source: Intel SDM Vol. 3A §3.4.5 (descriptor fields, G and E), §5.3
 * (limit checking, expand-down with D/B).
 */
#ifndef HV86_VMM_SEGMENT_H
#define HV86_VMM_SEGMENT_H
#include <stdbool.h>
#include <stdint.h>
#include "kernel/desc.h"

/* Descriptor access-byte fields (SDM Vol. 3A §3.4.5) */
#define DESC_P        0x80
#define DESC_DPL(a)   (((a) >> 5) & 3)
#define DESC_S        0x10
#define DESC_CODE     0x08
#define DESC_DOWN     0x04 /* data: expand-down */
#define DESC_CONFORM  0x04 /* code: conforming */
#define DESC_ACCESSED 0x01
#define DESC_WRITABLE 0x02 /* data: W; code: R */
/* Flags nibble (bits 52-55) */
#define DESC_FLAG_G   0x8  /* limit in 4 KiB units */
#define DESC_FLAG_D   0x4  /* D/B: 32-bit; for expand-down data, upper bound 4 GiB - 1 */

/* Segment registers in Sreg encoding order (SDM Vol. 2A Table 3-6). */
enum { SR_ES, SR_CS, SR_SS, SR_DS, SR_FS, SR_GS, SR_N };

/* The guest-visible ("hidden part") state of one segment register. */
struct vseg {
    uint16_t sel;
    uint32_t base;   /* linear */
    uint32_t limit;  /* bytes - 1, granularity applied */
    uint8_t access;  /* P DPL S type */
    uint8_t flags;   /* G D/B L AVL (high nibble of byte 6) */
};

/* Fields of a raw segment descriptor (SDM Vol. 3A Figure 3-8). */
static inline uint8_t desc_access(uint64_t d) { return (uint8_t)(d >> 40); }
static inline uint8_t desc_flags(uint64_t d) { return (uint8_t)((d >> 52) & 0xF); }
static inline uint32_t desc_base_of(uint64_t d)
{
    return (uint32_t)((d >> 16) & 0xFFFFFF) | (uint32_t)((d >> 56) << 24);
}
/* Limit in bytes - 1, granularity applied. */
static inline uint32_t desc_limit_bytes(uint64_t d)
{
    uint32_t lim = (uint32_t)(d & 0xFFFF) | (uint32_t)((d >> 32) & 0xF0000);
    return ((d >> 55) & 1) ? (lim << 12) | 0xFFF : lim;
}

/* The segment cache a load of sel with descriptor d leaves (SDM Vol. 3A §3.4.3). */
/* *d = *s field by field, without the memcpy call the hypervisor's build
 * makes of a structure assignment (-mstringop-strategy=libcall). */
static inline void vseg_copy(struct vseg *d, const struct vseg *s)
{
    d->sel = s->sel;
    d->base = s->base;
    d->limit = s->limit;
    d->access = s->access;
    d->flags = s->flags;
}

static inline struct vseg vseg_of(uint16_t sel, uint64_t d)
{
    return (struct vseg){ sel, desc_base_of(d), desc_limit_bytes(d), desc_access(d), desc_flags(d) };
}

/*
 * Whether an access of size bytes (1-16) at offset off passes the limit
 * check of a segment with the given limit (bytes - 1, granularity applied),
 * access byte and flags (SDM Vol. 3A §5.3): expand-up, every byte in
 * [0, limit]; expand-down data, every byte in [limit + 1, 0xFFFF] or, with
 * D/B, [limit + 1, 0xFFFFFFFF]. An access that wraps past 4 GiB fails,
 * except in a flat expand-up segment (base 0, limit 0xFFFFFFFF), where the
 * offset wraps to 0 with no check, as on Bochs 2.7 (its flat-segment fast
 * path); the SDM's "Segment Wraparound" section (Vol. 3A, architecture
 * compatibility chapter) says such wraps differ between processor families.
 * write: data segments need W; code segments are never written and read
 * only with R. Presence and privilege are the caller's.
 */
bool seg_access_ok(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags, uint32_t off, uint32_t size,
                   bool write);

/*
 * The descriptor the CPU gets in place of guest descriptor g: the same base
 * and type, DPL 0 -> 1 (ring compression), accessed set, and a limit that
 * keeps every offset the CPU accepts both inside the guest's own limit and
 * below MONITOR_BASE (base + offset never wraps). When the clipped limit
 * needs G=1 and is not a multiple of 4 KiB minus one, it is rounded DOWN to
 * one: the CPU then refuses up to 4095 bytes the guest may use, and those
 * accesses #GP into the monitor, which emulates them against the guest's
 * own limit (seg_access_ok). Limits up to 0xFFFFF are exact (G=0).
 * Returns 0 (not present: a load or use faults to the monitor) for what
 * cannot be shadowed so: not present, system descriptors, expand-down data
 * (its valid range ends at 0xFFFF or 4 GiB, which is the monitor's end),
 * and bases at or above MONITOR_BASE.
 */
uint64_t seg_shadow_desc(uint64_t g);

#endif
