/*
 * Shadow segment descriptors (vmm/segment.c) against a model of the limit
 * rules, written from Intel SDM Vol. 3A §3.4.5 and §5.3 and not from the
 * code under test:
 *   - the 20-bit limit field is in bytes (G=0) or in 4 KiB units (G=1), the
 *     CPU then filling in the low 12 bits with ones;
 *   - expand-up segments accept offsets 0..limit; expand-down data segments
 *     accept limit+1..0xFFFF, or limit+1..0xFFFFFFFF with the B flag;
 *   - the linear address is base + offset.
 * For every guest descriptor tried (each combination of edge values of
 * base, limit field, G, D/B, type with expand-down, DPL, P and S, then
 * random ones), the shadow must be not present or accept only offsets that
 * the guest's own descriptor accepts and whose linear addresses lie below
 * MONITOR_BASE without wrapping; it must keep base and type, give DPL >= 1,
 * and lose at most the partial last page of the clipped range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/layout.h"
#include "vmm/segment.h"

/* ---------------------------------------------------------------- the model */

/* The offsets a descriptor accepts: [lo, hi] (64-bit so that "none" is
 * lo > hi), per SDM Vol. 3A §5.3. Bits are taken from the raw descriptor. */
struct range { uint64_t lo, hi; };

static unsigned bits(uint64_t d, unsigned at, unsigned n) { return (unsigned)((d >> at) & ((1ull << n) - 1)); }

static struct range model_offsets(uint64_t d)
{
    uint64_t field = bits(d, 0, 16) | (uint64_t)bits(d, 48, 4) << 16;
    uint64_t limit = bits(d, 55, 1) ? field * 4096 + 4095 : field; /* G */
    bool present = bits(d, 47, 1), codedata = bits(d, 44, 1), code = bits(d, 43, 1);
    bool down = !code && bits(d, 42, 1), big = bits(d, 54, 1);
    if (!present || !codedata)
        return (struct range){ 1, 0 };
    if (down)
        return (struct range){ limit + 1, big ? 0xFFFFFFFFull : 0xFFFFull };
    return (struct range){ 0, limit };
}

static uint64_t model_base(uint64_t d) { return bits(d, 16, 24) | (uint64_t)bits(d, 56, 8) << 24; }

static uint64_t raw(uint64_t base, uint32_t field, unsigned type, unsigned dpl, bool p, bool s, bool g, bool db)
{
    return (field & 0xFFFFull) | (base & 0xFFFFFFull) << 16 | (uint64_t)type << 40 | (uint64_t)s << 44 |
           (uint64_t)dpl << 45 | (uint64_t)p << 47 | (uint64_t)((field >> 16) & 0xF) << 48 |
           (uint64_t)db << 54 | (uint64_t)g << 55 | (base >> 24) << 56;
}

/* ---------------------------------------------------------------- the property */

static unsigned long checked, shadowed, clipped_by_page;

static void check_shadow(uint64_t g)
{
    uint64_t s = seg_shadow_desc(g);
    checked++;
    struct range gr = model_offsets(g), sr = model_offsets(s);
    if (!s || sr.lo > sr.hi)
        return; /* not present: every load or use faults to the monitor */
    shadowed++;
    uint64_t base = model_base(g);
    if (model_base(s) != base || bits(s, 40, 5) != (bits(g, 40, 5) | 1) || bits(s, 45, 2) == 0 ||
        sr.lo < gr.lo || sr.hi > gr.hi || base + sr.hi >= MONITOR_BASE)
        fail_msg("guest %016llx -> shadow %016llx: guest offsets [%llx, %llx], shadow [%llx, %llx], base %llx",
                 (unsigned long long)g, (unsigned long long)s, (unsigned long long)gr.lo,
                 (unsigned long long)gr.hi, (unsigned long long)sr.lo, (unsigned long long)sr.hi,
                 (unsigned long long)base);
    /* Not too tight: the guest's range clipped below the monitor, minus at
     * most a partial page (G=1 cannot end elsewhere), exact up to 1 MiB. */
    uint64_t want = gr.hi < MONITOR_BASE - 1 - base ? gr.hi : MONITOR_BASE - 1 - base;
    if (sr.lo != gr.lo || sr.hi > want || want - sr.hi > 4095 || (want <= 0xFFFFF && sr.hi != want))
        fail_msg("guest %016llx -> shadow %016llx: ends at offset %llx, the guest's clipped limit is %llx",
                 (unsigned long long)g, (unsigned long long)s, (unsigned long long)sr.hi,
                 (unsigned long long)want);
    if (sr.hi != want)
        clipped_by_page++;
}

static const uint32_t bases[] = {
    0, 1, 0x100, 0xFFF, 0x1000, 0x1001, 0xFFFFF, 0x100000, 0x12345678, 0x7FFFFFFF,
    MONITOR_BASE - 0x100001, MONITOR_BASE - 0x100000, MONITOR_BASE - 0xFFFFF, MONITOR_BASE - 0x1001,
    MONITOR_BASE - 0x1000, MONITOR_BASE - 0xFFF, MONITOR_BASE - 0x100, MONITOR_BASE - 1,
    MONITOR_BASE, MONITOR_BASE + 0x100, 0xFFFFF000, 0xFFFFFFFF,
};
static const uint32_t fields[] = {
    0, 1, 0xFFE, 0xFFF, 0x1000, 0xFFFF, 0x10000, 0x7FFFF, 0xFBFFE, 0xFBFFF,
    0xFC000, 0xFC001, 0xFFFFE, 0xFFFFF,
};

/* Every combination of the edge values: bases x limit fields x G x D/B x
 * the 16 code/data types (expand-down, conforming, R/W, accessed) x DPL x P x S. */
static void test_edges(void **state)
{
    (void)state;
    checked = shadowed = clipped_by_page = 0;
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++)
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
            for (unsigned flags = 0; flags < 4; flags++)
                for (unsigned type = 0; type < 16; type++)
                    for (unsigned dpl = 0; dpl < 4; dpl++)
                        for (unsigned ps = 0; ps < 4; ps++)
                            check_shadow(raw(bases[b], fields[f], type, dpl, ps & 1, ps & 2, flags & 1, flags & 2));
    printf("edges: %lu descriptors, %lu shadowed, %lu rounded down by part of a page\n", checked, shadowed,
           clipped_by_page);
    assert_true(clipped_by_page > 0); /* the rounding case is among them */
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next64(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; /* xorshift64 */
    return rng;
}

/* Random descriptors, with bases often near the monitor and limits often
 * reaching it, where the rounding matters. */
static void test_random(void **state)
{
    (void)state;
    for (int i = 0; i < 2000000; i++) {
        uint64_t d = next64();
        if (i & 1) { /* present code/data, base within 64 MiB below the monitor */
            uint32_t base = MONITOR_BASE - 1 - (uint32_t)(next64() % 0x4000000);
            d = (d & ~(0xFFull << 56 | 0xFFFFFFull << 16)) | (uint64_t)(base & 0xFFFFFF) << 16 |
                (uint64_t)(base >> 24) << 56 | 1ull << 47 | 1ull << 44;
        }
        check_shadow(d);
    }
}

/* The one the review found: base 0x100, G=1, 4 GiB. Before the fix the CPU
 * accepted offsets up to 0xFBFFFFFF, linear 0xFC0000FF: host page 0. */
static void test_unaligned_base_4g(void **state)
{
    (void)state;
    uint64_t s = seg_shadow_desc(raw(0x100, 0xFFFFF, 0x3, 0, true, true, true, true));
    struct range r = model_offsets(s);
    assert_int_equal(r.hi, 0xFBFFEFFFu); /* offsets up to 0xFBFFFEFF are the guest's; the rest of that page is emulated */
    assert_true(0x100 + r.hi < MONITOR_BASE);
}

/* ---------------------------------------------------------------- guest limit checks */

/* seg_access_ok against the model, byte by byte. In a flat expand-up
 * segment (base 0, 4 GiB) offsets wrap modulo 2^32 (Bochs 2.7, the oracle
 * of the fuzzer); elsewhere a byte past 0xFFFFFFFF is out of the segment. */
static bool model_access(uint64_t d, uint32_t off, uint32_t size, bool write)
{
    struct range r = model_offsets(d);
    bool code = bits(d, 43, 1), rw = bits(d, 41, 1);
    bool flat = model_base(d) == 0 && r.lo == 0 && r.hi == 0xFFFFFFFFull && (code || !bits(d, 42, 1));
    if ((code && (write || !rw)) || (!code && write && !rw))
        return false;
    for (uint64_t a = off; a < (uint64_t)off + size; a++) {
        uint64_t b = flat ? a & 0xFFFFFFFFull : a;
        if (b < r.lo || b > r.hi)
            return false;
    }
    return true;
}

static void test_access_ok(void **state)
{
    (void)state;
    static const uint32_t offs[] = { 0, 1, 0xFFC, 0xFFD, 0xFFF, 0x1000, 0x7FFC, 0x7FFF, 0x8000, 0xFFFC,
                                     0xFFFD, 0xFFFE, 0xFFFF, 0x10000, 0xFBFFFFFC, 0xFC000000,
                                     0xFFFFFFFC, 0xFFFFFFFE, 0xFFFFFFFF };
    static const uint32_t sizes[] = { 1, 2, 4, 8 };
    for (int i = 0; i < 400000; i++) {
        uint64_t d = next64() | 1ull << 47 | 1ull << 44; /* present code/data */
        if (i & 1) /* small limits, where B=0 expand-down matters */
            d &= ~(0xFull << 48 | 1ull << 55);
        else if (i % 6 == 0) /* flat: base 0, limit field 0xFFFFF, G=1 */
            d = (d & ~(0xFFull << 56 | 0xFFFFFFull << 16)) | 0xFFFFull | 0xFull << 48 | 1ull << 55;
        uint32_t off = (i & 2) ? offs[next64() % (sizeof offs / sizeof offs[0])] : (uint32_t)next64();
        if (i & 4)
            off = (uint32_t)(model_offsets(d).lo + (next64() % 9) - 4); /* near the bottom */
        else if (i & 8)
            off = (uint32_t)(model_offsets(d).hi + (next64() % 9) - 4); /* near the top */
        uint32_t size = sizes[next64() % 4];
        bool write = next64() & 1;
        bool want = model_access(d, off, size, write);
        bool got = seg_access_ok(desc_base_of(d), desc_limit_bytes(d), desc_access(d), desc_flags(d), off, size, write);
        if (got != want)
            fail_msg("descriptor %016llx offset %x size %u write %d: got %d, want %d", (unsigned long long)d,
                     off, size, write, got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_unaligned_base_4g),
        cmocka_unit_test(test_access_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
