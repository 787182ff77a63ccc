/*
 * Physical frame allocator (contract in kernel/pmm.h).
 *
 * Map of this file:
 *   1. bit helpers over the two maps
 *   2. turning byte ranges into frame ranges (clipped to 4 GiB)
 *   3. pmm_init: everything used, then avail frames cleared, then reserved
 *      frames set again -- so reserved always wins, whatever the order
 *   4. next-fit search for a run of free frames inside one zone
 *   5. pmm_alloc / pmm_free / pmm_reserve / pmm_unreserve
 *   6. the kernel instance (locked wrappers)
 *
 * Invariants kept by every function:
 *   - bitmap bit clear  => frame free (and then managed bit set);
 *   - managed bit set   <=> frame is RAM the allocator may hand out;
 *   - stats.free[z]  == managed frames of zone z with bitmap bit clear;
 *   - stats.total[z] == managed frames of zone z;
 *   - bits past nframes are set in bitmap and clear in managed.
 * A failing call changes nothing.
 */
#include "kernel/pmm.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"

#define FRAMES_4G (1u << (32 - PAGE_SHIFT)) /* frames below 4 GiB */
#define NO_FRAME  UINT32_MAX               /* find_run: nothing found */

/* ---------------------------------------------------------------- bits */

static inline bool bit_test(const uint32_t *map, uint32_t f)
{
    return (map[f / 32] >> (f % 32)) & 1;
}

/* Set (set=true) or clear bits [first, end) of map, a word at a time where
 * possible: boot clears up to 2^20 bits per range. */
static void bits_fill(uint32_t *map, uint32_t first, uint32_t end, bool set)
{
    uint32_t f = first;

    for (; f < end && (f % 32); f++)
        map[f / 32] = set ? map[f / 32] | (1u << (f % 32)) : map[f / 32] & ~(1u << (f % 32));
    for (; f + 32 <= end; f += 32)
        map[f / 32] = set ? ~0u : 0;
    for (; f < end; f++)
        map[f / 32] = set ? map[f / 32] | (1u << (f % 32)) : map[f / 32] & ~(1u << (f % 32));
}

/* Number of frames in [first, end) whose bitmap bit is clear. */
static uint32_t bits_count_clear(const uint32_t *map, uint32_t first, uint32_t end)
{
    uint32_t n = 0;

    for (uint32_t f = first; f < end; f++)
        n += !bit_test(map, f);
    return n;
}

/* ---------------------------------------------------------------- ranges */

static uint64_t range_end(const struct mem_range *r)
{
    return r->len > UINT64_MAX - r->base ? UINT64_MAX : r->base + r->len;
}

static uint32_t frame_clip(uint64_t f)
{
    return f > FRAMES_4G ? FRAMES_4G : (uint32_t)f;
}

/* Frame number of the first frame starting at or after addr (bytes). */
static uint64_t frame_ceil(uint64_t addr)
{
    return (addr >> PAGE_SHIFT) + ((addr & (PAGE_SIZE - 1)) != 0);
}

/* Frames lying wholly inside r: [*first, *end), empty if *end <= *first. */
static void range_inner(const struct mem_range *r, uint32_t *first, uint32_t *end)
{
    *first = frame_clip(frame_ceil(r->base));
    *end = frame_clip(range_end(r) >> PAGE_SHIFT);
}

/* Frames touched by r, even by one byte; none for a zero-length range. */
static void range_outer(const struct mem_range *r, uint32_t *first, uint32_t *end)
{
    *first = frame_clip(r->base >> PAGE_SHIFT);
    *end = r->len ? frame_clip(frame_ceil(range_end(r))) : *first;
}

size_t pmm_bitmap_bytes(uint64_t max_addr)
{
    uint32_t frames = frame_clip(frame_ceil(max_addr));

    return 2 * sizeof(uint32_t) * ((frames + 31) / 32);
}

/* ---------------------------------------------------------------- init */

static uint32_t zone_lo(const struct pmm *p, enum pmm_zone z)
{
    return z == ZONE_DIRECT ? 0 : p->zone_split;
}

static uint32_t zone_hi(const struct pmm *p, enum pmm_zone z)
{
    return z == ZONE_DIRECT ? p->zone_split : p->nframes;
}

/* Highest whole avail frame end below 4 GiB: what the bitmap must cover. */
static uint32_t avail_end(const struct mem_range *avail, size_t navail)
{
    uint32_t top = 0, first, end;

    for (size_t i = 0; i < navail; i++) {
        range_inner(&avail[i], &first, &end);
        if (end > first)
            top = MAX(top, end);
    }
    return top;
}

static void stats_recount(struct pmm *p)
{
    for (int z = 0; z < PMM_NZONES; z++) {
        p->stats.free[z] = bits_count_clear(p->bitmap, zone_lo(p, z), zone_hi(p, z));
        p->stats.total[z] = p->stats.free[z];
    }
}

int pmm_init(struct pmm *p, void *bitmap, size_t bitmap_bytes, uint64_t zone_split_addr,
             const struct mem_range *avail, size_t navail, const struct mem_range *reserved,
             size_t nreserved)
{
    uint32_t nframes, words, first, end;

    if (!p || (navail && !avail) || (nreserved && !reserved))
        return E_INVAL;
    nframes = avail_end(avail, navail);
    words = (nframes + 31) / 32;
    if (!bitmap || bitmap_bytes < pmm_bitmap_bytes((uint64_t)nframes << PAGE_SHIFT))
        return E_INVAL;

    p->bitmap = bitmap;
    p->managed = p->bitmap + words;
    p->nframes = nframes;
    memset(p->bitmap, 0xff, words * sizeof(uint32_t));
    for (size_t i = 0; i < navail; i++) {
        range_inner(&avail[i], &first, &end);
        if (end > first)
            bits_fill(p->bitmap, first, end, false);
    }
    for (size_t i = 0; i < nreserved; i++) {
        range_outer(&reserved[i], &first, &end);
        if (MIN(end, nframes) > first)
            bits_fill(p->bitmap, first, MIN(end, nframes), true);
    }
    /* Whatever is free now is exactly what may ever be freed again. */
    for (uint32_t w = 0; w < words; w++)
        p->managed[w] = ~p->bitmap[w];

    p->zone_split = MIN(frame_clip(frame_ceil(zone_split_addr)), nframes);
    p->next[ZONE_DIRECT] = 0;
    p->next[ZONE_HIGH] = p->zone_split;
    stats_recount(p);
    return 0;
}

/* ---------------------------------------------------------------- search */

/*
 * First frame f in [from, to) with frames f .. f+n-1 all free and inside
 * [from, to), or NO_FRAME. Whole used words are skipped: after boot most of a
 * busy map is full words.
 */
static uint32_t find_run(const struct pmm *p, uint32_t from, uint32_t to, uint32_t n)
{
    uint32_t run = 0;

    for (uint32_t f = from; f < to;) {
        if (f % 32 == 0 && p->bitmap[f / 32] == ~0u) {
            run = 0;
            f += 32;
            continue;
        }
        if (bit_test(p->bitmap, f))
            run = 0;
        else if (++run == n)
            return f + 1 - n;
        f++;
    }
    return NO_FRAME;
}

/* Next fit inside zone z: from the hint to the zone's end, then wrap around
 * to the runs that start before the hint. */
static uint32_t zone_find(const struct pmm *p, enum pmm_zone z, uint32_t n)
{
    uint32_t lo = zone_lo(p, z), hi = zone_hi(p, z), hint = p->next[z], f;

    if (hi <= lo || n > hi - lo)
        return NO_FRAME;
    if (hint < lo || hint >= hi)
        hint = lo;
    f = find_run(p, hint, hi, n);
    if (f == NO_FRAME && hint > lo)
        f = find_run(p, lo, MIN(hint + n - 1, hi), n); /* n <= 2^20: no overflow */
    return f;
}

/* Frames of [f, f+n) that lie in ZONE_DIRECT. */
static uint32_t direct_part(const struct pmm *p, uint32_t f, uint32_t n)
{
    return f >= p->zone_split ? 0 : MIN(n, p->zone_split - f);
}

/* ---------------------------------------------------------------- alloc/free */

/* pmm_alloc's search; ZONE_HIGH falls back to ZONE_DIRECT only if fallback. */
static int alloc_frames(struct pmm *p, enum pmm_zone z, uint32_t nframes, uint32_t *pa, bool fallback)
{
    uint32_t f = NO_FRAME;

    if (!p || !pa || nframes == 0 || (unsigned)z >= PMM_NZONES)
        return E_INVAL;
    f = zone_find(p, z, nframes);
    if (f == NO_FRAME && z == ZONE_HIGH && fallback) {
        z = ZONE_DIRECT; /* guest RAM may live anywhere; page tables may not */
        f = zone_find(p, z, nframes);
    }
    if (f == NO_FRAME)
        return E_NOMEM;
    bits_fill(p->bitmap, f, f + nframes, true);
    p->stats.free[z] -= nframes;
    p->next[z] = f + nframes < zone_hi(p, z) ? f + nframes : zone_lo(p, z);
    *pa = f << PAGE_SHIFT;
    return 0;
}

int pmm_alloc(struct pmm *p, enum pmm_zone z, uint32_t nframes, uint32_t *pa)
{
    return alloc_frames(p, z, nframes, pa, true);
}

int pmm_alloc_exact(struct pmm *p, enum pmm_zone z, uint32_t nframes, uint32_t *pa)
{
    return alloc_frames(p, z, nframes, pa, false);
}

/* True if every frame of [f, f+n) is managed and currently allocated. */
static bool run_allocated(const struct pmm *p, uint32_t f, uint32_t n)
{
    for (uint32_t i = f; i < f + n; i++)
        if (!bit_test(p->managed, i) || !bit_test(p->bitmap, i))
            return false;
    return true;
}

int pmm_free(struct pmm *p, uint32_t pa, uint32_t nframes)
{
    uint32_t f = pa >> PAGE_SHIFT, direct;

    if (!p || (pa & (PAGE_SIZE - 1)) || nframes == 0)
        return E_INVAL;
    if (f >= p->nframes || nframes > p->nframes - f || !run_allocated(p, f, nframes))
        return E_INVAL;
    bits_fill(p->bitmap, f, f + nframes, false);
    direct = direct_part(p, f, nframes);
    p->stats.free[ZONE_DIRECT] += direct;
    p->stats.free[ZONE_HIGH] += nframes - direct;
    return 0;
}

int pmm_reserve(struct pmm *p, uint64_t base, uint64_t len)
{
    struct mem_range r = { base, len };
    uint32_t first, end;

    range_outer(&r, &first, &end);
    end = MIN(end, p->nframes);
    for (uint32_t f = first; f < end; f++)
        if (bit_test(p->managed, f) && bit_test(p->bitmap, f))
            return E_BUSY;
    for (uint32_t f = first; f < end; f++) {
        if (!bit_test(p->managed, f))
            continue;
        p->managed[f / 32] &= ~(1u << (f % 32));
        p->bitmap[f / 32] |= 1u << (f % 32);
        p->stats.free[f < p->zone_split ? ZONE_DIRECT : ZONE_HIGH]--;
        p->stats.total[f < p->zone_split ? ZONE_DIRECT : ZONE_HIGH]--;
    }
    return 0;
}

/* True if frame f lies in one of ranges[0..n): wholly (inner) or touched (!inner). */
static bool frame_in_ranges(uint32_t f, const struct mem_range *ranges, size_t n, bool inner)
{
    uint32_t first, end;

    for (size_t i = 0; i < n; i++) {
        if (inner)
            range_inner(&ranges[i], &first, &end);
        else
            range_outer(&ranges[i], &first, &end);
        if (f >= first && f < end)
            return true;
    }
    return false;
}

uint32_t pmm_unreserve(struct pmm *p, const struct mem_range *r, const struct mem_range *avail, size_t navail,
                       const struct mem_range *reserved, size_t nreserved)
{
    uint32_t first, end, added = 0;

    range_outer(r, &first, &end);
    end = MIN(end, p->nframes);
    for (uint32_t f = first; f < end; f++) {
        /* pmm_init's rule, frame by frame: reserved wins. */
        if (bit_test(p->managed, f) || !frame_in_ranges(f, avail, navail, true) ||
            frame_in_ranges(f, reserved, nreserved, false))
            continue;
        p->managed[f / 32] |= 1u << (f % 32);
        p->bitmap[f / 32] &= ~(1u << (f % 32));
        p->stats.free[f < p->zone_split ? ZONE_DIRECT : ZONE_HIGH]++;
        p->stats.total[f < p->zone_split ? ZONE_DIRECT : ZONE_HIGH]++;
        added++;
    }
    return added;
}

bool pmm_is_free(const struct pmm *p, uint32_t pa)
{
    uint32_t f = pa >> PAGE_SHIFT;

    return f < p->nframes && !bit_test(p->bitmap, f);
}

void pmm_get_stats(const struct pmm *p, struct pmm_stats *out)
{
    *out = p->stats;
}

/* ---------------------------------------------------------------- kernel */

#ifndef HV86_HOSTED
#include "kernel/spinlock.h"

struct pmm kernel_pmm;
static spinlock_t pmm_lock = SPINLOCK_INIT("pmm");

/*
 * Both maps for all of 4 GiB live in .bss (2 x 128 KiB): sizing them from the
 * memory map would mean carving them out of RAM before any allocator exists,
 * and touching that RAM through a direct map boot may not have built yet.
 * 256 KiB is under half a percent of the direct map.
 */
static uint32_t pmm_storage[2 * FRAMES_4G / 32];

/* Real-mode IVT, BIOS data area, EBDA, VGA memory and option ROMs: never
 * handed out even if the firmware map calls part of them available. */
static const struct mem_range low_mem = { 0, 0x100000 };

void pmm_boot_init(const struct mem_range *avail, size_t navail, const struct mem_range *reserved,
                   size_t nreserved)
{
    int err = pmm_init(&kernel_pmm, pmm_storage, sizeof(pmm_storage), DIRECTMAP_SIZE, avail,
                       navail, reserved, nreserved);

    if (err)
        panic("pmm: unusable memory map (%s)", err_name(err));
    pmm_reserve(&kernel_pmm, low_mem.base, low_mem.len); /* nothing allocated yet: cannot fail */
}

/* frame_alloc - locked pmm_alloc on kernel_pmm; same contract. */
int frame_alloc(enum pmm_zone z, uint32_t nframes, uint32_t *pa)
{
    uint32_t flags = spin_lock_irqsave(&pmm_lock);
    int err = pmm_alloc(&kernel_pmm, z, nframes, pa);

    spin_unlock_irqrestore(&pmm_lock, flags);
    return err;
}

/* frame_alloc_exact - locked pmm_alloc_exact on kernel_pmm; same contract. */
int frame_alloc_exact(enum pmm_zone z, uint32_t nframes, uint32_t *pa)
{
    uint32_t flags = spin_lock_irqsave(&pmm_lock);
    int err = pmm_alloc_exact(&kernel_pmm, z, nframes, pa);

    spin_unlock_irqrestore(&pmm_lock, flags);
    return err;
}

/* frame_unreserve - locked pmm_unreserve on kernel_pmm; same contract. */
uint32_t frame_unreserve(const struct mem_range *r, const struct mem_range *avail, size_t navail,
                         const struct mem_range *reserved, size_t nreserved)
{
    uint32_t flags = spin_lock_irqsave(&pmm_lock);
    uint32_t added = pmm_unreserve(&kernel_pmm, r, avail, navail, reserved, nreserved);

    spin_unlock_irqrestore(&pmm_lock, flags);
    return added;
}

/* frame_free - locked pmm_free; panics on a bad free (a hypervisor bug). */
void frame_free(uint32_t pa, uint32_t nframes)
{
    uint32_t flags = spin_lock_irqsave(&pmm_lock);
    int err = pmm_free(&kernel_pmm, pa, nframes);

    spin_unlock_irqrestore(&pmm_lock, flags);
    if (err)
        panic("frame_free(%#x, %u): %s", pa, nframes, err_name(err));
}

/* frame_stats - consistent snapshot of the kernel allocator's counters. */
void frame_stats(struct pmm_stats *out)
{
    uint32_t flags = spin_lock_irqsave(&pmm_lock);

    pmm_get_stats(&kernel_pmm, out);
    spin_unlock_irqrestore(&pmm_lock, flags);
}
#endif
