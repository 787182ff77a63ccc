/* Unit tests of the physical frame allocator core (kernel/pmm.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/pmm.h"

#define KiB 0x400ull
#define MiB 0x100000ull
#define GiB 0x40000000ull
#define FRAME(n) ((uint32_t)((n) * PAGE_SIZE)) /* physical address of frame n */

static uint32_t storage[2 * (1u << 20) / 32]; /* enough for 4 GiB */
static struct pmm pm;

/* pmm_init over the shared storage; the tests below all start here. */
static void init(const struct mem_range *avail, size_t navail, const struct mem_range *res,
                 size_t nres, uint64_t split)
{
    assert_int_equal(pmm_init(&pm, storage, sizeof(storage), split, avail, navail, res, nres), 0);
}

/* Free frames of [first, end), through the public predicate. */
static uint32_t count_free(uint32_t first, uint32_t end)
{
    uint32_t n = 0;

    for (uint32_t f = first; f < end; f++)
        n += pmm_is_free(&pm, FRAME(f));
    return n;
}

static void assert_stats(uint32_t total_d, uint32_t free_d, uint32_t total_h, uint32_t free_h)
{
    struct pmm_stats st;

    pmm_get_stats(&pm, &st);
    assert_int_equal(st.total[ZONE_DIRECT], total_d);
    assert_int_equal(st.free[ZONE_DIRECT], free_d);
    assert_int_equal(st.total[ZONE_HIGH], total_h);
    assert_int_equal(st.free[ZONE_HIGH], free_h);
}

/* ---------------------------------------------------------------- sizing */

static void test_bitmap_bytes(void **state)
{
    assert_int_equal(pmm_bitmap_bytes(0), 0);
    assert_int_equal(pmm_bitmap_bytes(1), 8);               /* one word of each map */
    assert_int_equal(pmm_bitmap_bytes(32 * PAGE_SIZE), 8);
    assert_int_equal(pmm_bitmap_bytes(32 * PAGE_SIZE + 1), 16);
    assert_int_equal(pmm_bitmap_bytes(4 * GiB), 256 * KiB);
    assert_int_equal(pmm_bitmap_bytes(64 * GiB), 256 * KiB); /* clipped */
}

static void test_bitmap_too_small(void **state)
{
    const struct mem_range avail[] = { { 0, 64 * MiB } };
    size_t need = pmm_bitmap_bytes(64 * MiB);

    assert_int_equal(pmm_init(&pm, storage, need - 1, 16 * MiB, avail, 1, NULL, 0), E_INVAL);
    assert_int_equal(pmm_init(&pm, NULL, 0, 16 * MiB, avail, 1, NULL, 0), E_INVAL);
    assert_int_equal(pmm_init(&pm, storage, need, 16 * MiB, NULL, 1, NULL, 0), E_INVAL);
    assert_int_equal(pmm_init(&pm, storage, need, 16 * MiB, avail, 1, NULL, 0), 0);
    assert_int_equal(pm.nframes, 64 * MiB / PAGE_SIZE);
}

/* ---------------------------------------------------------------- init */

static void test_reserved_excluded(void **state)
{
    /* The boot picture: 64 MiB of RAM, first MiB, a kernel image whose end is
     * not frame aligned, and a GRUB module inside one frame's bytes. */
    const struct mem_range avail[] = { { 0, 64 * MiB } };
    const struct mem_range res[] = {
        { 0, 1 * MiB },                /* frames 0..255 */
        { 1 * MiB, 300 * KiB + 123 },  /* frames 256..331, last one partly */
        { 8 * MiB + 100, 4900 },       /* bytes in frames 2048 and 2049 */
    };

    init(avail, 1, res, 3, 16 * MiB);
    assert_int_equal(count_free(0, 332), 0);
    assert_true(pmm_is_free(&pm, FRAME(332)));
    assert_false(pmm_is_free(&pm, FRAME(2048)));
    assert_false(pmm_is_free(&pm, FRAME(2049)));
    assert_true(pmm_is_free(&pm, FRAME(2047)));
    assert_true(pmm_is_free(&pm, FRAME(2050)));
    assert_stats(4096 - 332 - 2, 4096 - 332 - 2, 12288, 12288);
}

static void test_unsorted_overlapping(void **state)
{
    /* Union of [4 KiB, 4 MiB), [2 MiB, 10 MiB), [8 MiB, 16 MiB), listed out
     * of order, with a duplicate: frames 1 .. 4095. */
    const struct mem_range avail[] = {
        { 8 * MiB, 8 * MiB }, { 4 * KiB, 4 * MiB - 4 * KiB }, { 2 * MiB, 8 * MiB },
        { 8 * MiB, 8 * MiB },
    };

    init(avail, 4, NULL, 0, 64 * MiB);
    assert_false(pmm_is_free(&pm, 0));
    assert_int_equal(count_free(1, 4096), 4095);
    assert_int_equal(pm.nframes, 4096);
    assert_stats(4095, 4095, 0, 0);
}

static void test_unaligned_avail(void **state)
{
    /* Only frames wholly inside: 0x1800..0x5800 holds frames 2, 3, 4. Two
     * halves of frame 8 in two ranges do not make it free. */
    const struct mem_range avail[] = { { 0x1800, 0x4000 }, { 0x7000, 0x1800 }, { 0x8800, 0x2800 } };

    init(avail, 3, NULL, 0, 64 * MiB);
    assert_int_equal(count_free(0, 2), 0);
    assert_int_equal(count_free(2, 5), 3);
    assert_false(pmm_is_free(&pm, FRAME(5)));
    assert_true(pmm_is_free(&pm, FRAME(7)));
    assert_false(pmm_is_free(&pm, FRAME(8)));
    assert_int_equal(count_free(9, 11), 2);
    assert_stats(6, 6, 0, 0);
}

static void test_zero_length_ranges(void **state)
{
    /* A zero-length avail range frees nothing; a zero-length reserved range,
     * even an unaligned one, takes nothing. */
    const struct mem_range avail[] = { { 32 * MiB, 0 }, { 0, 2 * MiB } };
    const struct mem_range res[] = { { 1 * MiB + 0x800, 0 }, { 0x3000, 0 } };

    init(avail, 2, res, 2, 64 * MiB);
    assert_int_equal(pm.nframes, 512);
    assert_int_equal(count_free(0, 512), 512);
    assert_stats(512, 512, 0, 0);
}

static void test_clip_at_4g(void **state)
{
    /* RAM from 3.5 GiB to 5 GiB is clipped at 4 GiB; a range wholly above
     * 4 GiB is ignored, as is a length that would wrap 64 bits. */
    const struct mem_range avail[] = {
        { 3 * GiB + 512 * MiB, 1536 * MiB }, { 6 * GiB, 1 * GiB }, { 5 * GiB, UINT64_MAX },
    };
    const struct mem_range res[] = { { 4 * GiB - PAGE_SIZE, 8 * GiB }, { 7 * GiB, PAGE_SIZE } };
    uint32_t pa;

    init(avail, 3, res, 2, DIRECTMAP_SIZE);
    assert_int_equal(pm.nframes, 1u << 20);
    assert_false(pmm_is_free(&pm, 0xFFFFF000u)); /* reserved, starting below 4 GiB */
    assert_true(pmm_is_free(&pm, 0xFFFFE000u));
    assert_true(pmm_is_free(&pm, 0xE0000000u));
    assert_false(pmm_is_free(&pm, 0xDFFFF000u));
    assert_stats(0, 0, 131071, 131071);
    assert_int_equal(pmm_alloc(&pm, ZONE_HIGH, 1, &pa), 0);
    assert_int_equal(pa, 0xE0000000u);
}

static void test_reserve_after_init(void **state)
{
    const struct mem_range avail[] = { { 0, 1 * MiB } };
    uint32_t pa;

    init(avail, 1, NULL, 0, 64 * MiB);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &pa), 0);
    assert_int_equal(pa, 0);
    assert_int_equal(pmm_reserve(&pm, 0, 2 * PAGE_SIZE), E_BUSY); /* frame 0 is in use */
    assert_stats(256, 255, 0, 0);
    assert_int_equal(pmm_reserve(&pm, PAGE_SIZE + 1, PAGE_SIZE), 0); /* frames 1 and 2 */
    assert_stats(254, 253, 0, 0);
    assert_false(pmm_is_free(&pm, FRAME(1)));
    assert_int_equal(pmm_free(&pm, FRAME(2), 1), E_INVAL); /* no longer RAM we manage */
    assert_int_equal(pmm_free(&pm, 0, 1), 0);
    assert_stats(254, 254, 0, 0);
}

static void test_unreserve_moved_modules(void **state)
{
    /* Boot with three modules reserved; the first two are copied away and
     * given back, the third stays. Module 1 ends in a frame that also holds
     * the start of the Multiboot info, module 2 in a frame that module 3
     * starts in; one page of module 1 lies in a firmware hole. */
    const struct mem_range avail[] = { { 0, 20 * MiB }, { 20 * MiB + 8 * KiB, 60 * MiB } };
    const struct mem_range low = { 0, 1 * MiB }, mbi = { 4 * MiB + 2 * KiB, 1 * KiB };
    const struct mem_range mod1 = { 2 * MiB, 2 * MiB + 2 * KiB }; /* frames 512..1024 */
    const struct mem_range mod2 = { 20 * MiB - 8 * KiB, 20 * KiB + 100 }; /* frames 5118..5123 */
    const struct mem_range mod3 = { 20 * MiB + 12 * KiB + 100, 40 * MiB }; /* frames 5123..15363 */
    const struct mem_range boot[] = { low, mbi, mod1, mod2, mod3 }, kept[] = { low, mbi, mod3 };
    uint32_t pa;

    init(avail, 2, boot, 5, 16 * MiB);
    assert_stats(4096 - 256 - 513, 4096 - 256 - 513, 16384 - 3 - 10241, 16384 - 3 - 10241);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &pa), 0); /* a heap page, before the move */
    /* mod1: 512 whole frames; frame 1024 holds the MBI too. */
    assert_int_equal(pmm_unreserve(&pm, &mod1, avail, 2, kept, 3), 512);
    assert_int_equal(count_free(512, 1024), 512);
    assert_false(pmm_is_free(&pm, FRAME(1024)));
    /* mod2: frames 5118..5119 are RAM, 5120..5121 a hole, 5122 RAM; 5123 is mod3's. */
    assert_int_equal(pmm_unreserve(&pm, &mod2, avail, 2, kept, 3), 3);
    assert_true(pmm_is_free(&pm, FRAME(5118)) && pmm_is_free(&pm, FRAME(5122)));
    assert_false(pmm_is_free(&pm, FRAME(5120)) || pmm_is_free(&pm, FRAME(5123)));
    assert_int_equal(pmm_free(&pm, FRAME(5120), 1), E_INVAL); /* the hole never becomes RAM */
    /* Twice is harmless: nothing more to add, the heap page untouched. */
    assert_int_equal(pmm_unreserve(&pm, &mod1, avail, 2, kept, 3), 0);
    assert_false(pmm_is_free(&pm, pa));
    assert_stats(4096 - 256 - 1, 4096 - 256 - 2, 16384 - 10241, 16384 - 10241);
    /* Given-back frames are ordinary frames: allocated and freed again. */
    assert_int_equal(pmm_free(&pm, pa, 1), 0);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 4096 - 1025, &pa), 0); /* above the MBI's frame */
    assert_int_equal(pa, FRAME(1025));
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1024 - 256, &pa), 0); /* below it */
    assert_int_equal(pa, FRAME(256));
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &pa), E_NOMEM);
}

/* ---------------------------------------------------------------- zones */

static void test_zone_split_and_fallback(void **state)
{
    /* 8 frames direct, 8 high. */
    const struct mem_range avail[] = { { 0, 16 * PAGE_SIZE } };
    uint32_t pa;

    init(avail, 1, NULL, 0, 8 * PAGE_SIZE);
    assert_stats(8, 8, 8, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pmm_alloc(&pm, ZONE_HIGH, 1, &pa), 0);
        assert_int_equal(pa, FRAME(8 + i));
    }
    assert_stats(8, 8, 8, 0);
    /* HIGH is exhausted: the exact allocation fails, changing nothing... */
    assert_int_equal(pmm_alloc_exact(&pm, ZONE_HIGH, 1, &pa), E_NOMEM);
    assert_stats(8, 8, 8, 0);
    /* ... the other falls back to DIRECT. */
    assert_int_equal(pmm_alloc(&pm, ZONE_HIGH, 2, &pa), 0);
    assert_int_equal(pa, FRAME(0));
    assert_stats(8, 6, 8, 0);
    /* DIRECT never falls back to HIGH. */
    assert_int_equal(pmm_free(&pm, FRAME(12), 1), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &pa), 0);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &pa), E_NOMEM);
    assert_stats(8, 0, 8, 1);
}

static void test_split_straddling_frame_is_high(void **state)
{
    const struct mem_range avail[] = { { 0, 16 * PAGE_SIZE } };

    init(avail, 1, NULL, 0, 4 * PAGE_SIZE + 1);
    assert_int_equal(pm.zone_split, 5);
    assert_stats(5, 5, 11, 11);
}

static void test_run_never_spans_zones(void **state)
{
    const struct mem_range avail[] = { { 0, 16 * PAGE_SIZE } };
    uint32_t pa;

    init(avail, 1, NULL, 0, 8 * PAGE_SIZE);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 9, &pa), E_NOMEM);
    assert_int_equal(pmm_alloc(&pm, ZONE_HIGH, 9, &pa), E_NOMEM);
    assert_int_equal(pmm_alloc(&pm, ZONE_HIGH, 8, &pa), 0);
    assert_int_equal(pa, FRAME(8));
    assert_stats(8, 8, 8, 0);
}

/* ---------------------------------------------------------------- alloc */

static void test_contiguous_around_holes(void **state)
{
    /* Frames 0..15 with frame 3 reserved and frames 9..10 missing. */
    const struct mem_range avail[] = { { 0, 9 * PAGE_SIZE }, { 11 * PAGE_SIZE, 5 * PAGE_SIZE } };
    const struct mem_range res[] = { { 3 * PAGE_SIZE, 1 } };
    uint32_t pa;

    init(avail, 2, res, 1, 1 * GiB);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 5, &pa), 0);
    assert_int_equal(pa, FRAME(4)); /* 4..8: the first run of 5 */
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 5, &pa), 0);
    assert_int_equal(pa, FRAME(11));
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 4, &pa), E_NOMEM); /* 0..2 is only 3 */
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 3, &pa), 0);
    assert_int_equal(pa, FRAME(0));
    assert_stats(13, 0, 0, 0);
}

static void test_run_across_word_boundary(void **state)
{
    /* A run of 40 needs bits from two bitmap words, after a busy word. */
    const struct mem_range avail[] = { { 0, 128 * PAGE_SIZE } };
    const struct mem_range res[] = { { 0, 50 * PAGE_SIZE } };
    uint32_t pa;

    init(avail, 1, res, 1, 1 * GiB);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 40, &pa), 0);
    assert_int_equal(pa, FRAME(50));
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 38, &pa), 0);
    assert_int_equal(pa, FRAME(90));
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &pa), E_NOMEM);
}

static void test_next_fit_and_wrap(void **state)
{
    const struct mem_range avail[] = { { 0, 4 * PAGE_SIZE } };
    uint32_t a, b, c;

    init(avail, 1, NULL, 0, 1 * GiB);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &a), 0);
    assert_int_equal(pmm_free(&pm, a, 1), 0);
    /* The hint moved past a: a just-freed frame is not reused at once. */
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &b), 0);
    assert_int_equal(b, FRAME(1));
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 2, &c), 0);
    assert_int_equal(c, FRAME(2));
    /* At the end of the zone the search wraps around to frame 0. */
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &a), 0);
    assert_int_equal(a, FRAME(0));
    /* A run that starts before the hint and ends after it is found too:
     * frames 1..3 free, hint at 2. */
    assert_int_equal(pmm_free(&pm, FRAME(1), 3), 0);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &b), 0);
    assert_int_equal(b, FRAME(1));
    assert_int_equal(pmm_free(&pm, FRAME(1), 1), 0);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 3, &c), 0);
    assert_int_equal(c, FRAME(1));
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &a), E_NOMEM);
}

static void test_exhaustion_and_refill(void **state)
{
    const struct mem_range avail[] = { { 0, 2 * MiB } };
    const struct mem_range res[] = { { 0, 1 * MiB } };
    uint32_t pa, n = 0;

    init(avail, 1, res, 1, 1 * MiB + 128 * PAGE_SIZE);
    assert_stats(128, 128, 128, 128);
    while (pmm_alloc(&pm, ZONE_HIGH, 1, &pa) == 0) {
        assert_true(pa >= 1 * MiB && pa < 2 * MiB);
        n++;
    }
    assert_int_equal(n, 256);
    assert_stats(128, 0, 128, 0);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, &pa), E_NOMEM);
    for (uint32_t f = 256; f < 512; f++)
        assert_int_equal(pmm_free(&pm, FRAME(f), 1), 0);
    assert_stats(128, 128, 128, 128);
    assert_int_equal(pmm_alloc(&pm, ZONE_HIGH, 128, &pa), 0);
    assert_int_equal(pa, FRAME(384));
}

static void test_bad_alloc_args(void **state)
{
    const struct mem_range avail[] = { { 0, 1 * MiB } };
    uint32_t pa = 0x1234;

    init(avail, 1, NULL, 0, 1 * GiB);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 0, &pa), E_INVAL);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 1, NULL), E_INVAL);
    assert_int_equal(pmm_alloc(&pm, PMM_NZONES, 1, &pa), E_INVAL);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, UINT32_MAX, &pa), E_NOMEM);
    assert_int_equal(pa, 0x1234);
    assert_stats(256, 256, 0, 0);
}

static void test_empty_map(void **state)
{
    uint32_t pa;

    init(NULL, 0, NULL, 0, 1 * GiB);
    assert_int_equal(pm.nframes, 0);
    assert_int_equal(pmm_alloc(&pm, ZONE_HIGH, 1, &pa), E_NOMEM);
    assert_int_equal(pmm_free(&pm, 0, 1), E_INVAL);
    assert_stats(0, 0, 0, 0);
}

/* ---------------------------------------------------------------- free */

static void test_double_free(void **state)
{
    const struct mem_range avail[] = { { 0, 16 * PAGE_SIZE } };
    uint32_t pa;

    init(avail, 1, NULL, 0, 1 * GiB);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 4, &pa), 0);
    assert_int_equal(pmm_free(&pm, pa + PAGE_SIZE, 1), 0);
    assert_int_equal(pmm_free(&pm, pa + PAGE_SIZE, 1), E_INVAL);
    assert_stats(16, 13, 0, 0);
    /* A run with one free frame inside is refused whole: nothing changes. */
    assert_int_equal(pmm_free(&pm, pa, 4), E_INVAL);
    assert_stats(16, 13, 0, 0);
    assert_false(pmm_is_free(&pm, pa));
    assert_false(pmm_is_free(&pm, pa + 2 * PAGE_SIZE));
    assert_int_equal(pmm_free(&pm, pa, 1), 0);
    assert_int_equal(pmm_free(&pm, pa + 2 * PAGE_SIZE, 2), 0);
    assert_stats(16, 16, 0, 0);
}

static void test_foreign_and_malformed_frees(void **state)
{
    /* RAM 0..64 frames with a hole at 32..39 and frames 8..9 reserved. */
    const struct mem_range avail[] = { { 0, 32 * PAGE_SIZE }, { 40 * PAGE_SIZE, 24 * PAGE_SIZE } };
    const struct mem_range res[] = { { 8 * PAGE_SIZE, 2 * PAGE_SIZE } };
    uint32_t pa;

    init(avail, 2, res, 1, 1 * GiB);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 8, &pa), 0);
    assert_int_equal(pa, 0);
    assert_int_equal(pmm_free(&pm, 0x1001, 1), E_INVAL);              /* unaligned */
    assert_int_equal(pmm_free(&pm, 0, 0), E_INVAL);                   /* empty run */
    assert_int_equal(pmm_free(&pm, FRAME(8), 1), E_INVAL);            /* reserved */
    assert_int_equal(pmm_free(&pm, FRAME(7), 2), E_INVAL);            /* runs into reserved */
    assert_int_equal(pmm_free(&pm, FRAME(33), 1), E_INVAL);           /* hole */
    assert_int_equal(pmm_free(&pm, FRAME(64), 1), E_INVAL);           /* past the bitmap */
    assert_int_equal(pmm_free(&pm, FRAME(63), 2), E_INVAL);           /* runs past it */
    assert_int_equal(pmm_free(&pm, 0xFFFFF000u, 1), E_INVAL);
    assert_int_equal(pmm_free(&pm, FRAME(1), UINT32_MAX), E_INVAL);   /* length wraps */
    assert_stats(54, 46, 0, 0);
    assert_int_equal(pmm_free(&pm, 0, 8), 0);
    assert_stats(54, 54, 0, 0);
}

static void test_free_spanning_zones_counts_both(void **state)
{
    const struct mem_range avail[] = { { 0, 16 * PAGE_SIZE } };
    uint32_t lo, hi;

    init(avail, 1, NULL, 0, 8 * PAGE_SIZE);
    assert_int_equal(pmm_alloc(&pm, ZONE_DIRECT, 8, &lo), 0);
    assert_int_equal(pmm_alloc(&pm, ZONE_HIGH, 8, &hi), 0);
    assert_int_equal(pmm_free(&pm, FRAME(6), 4), 0);
    assert_stats(8, 2, 8, 2);
}

/* ---------------------------------------------------------------- stress */

static uint32_t rng_state = 0x2545F491u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Random runs allocated and freed against a shadow owner map (fixed seed):
 * no frame is handed out twice, every free succeeds, counters stay exact. */
static void test_random_against_shadow(void **state)
{
    enum { NF = 1024, SPLIT = 600, SLOTS = 64 };
    const struct mem_range avail[] = { { 0, NF * PAGE_SIZE } };
    const struct mem_range res[] = { { 100 * PAGE_SIZE, 20 * PAGE_SIZE } };
    static uint8_t owner[NF];
    struct { uint32_t pa, n; } live[SLOTS] = { { 0 } };
    uint32_t used_d = 0, used_h = 0;

    init(avail, 1, res, 1, SPLIT * PAGE_SIZE);
    memset(owner, 0, sizeof(owner));
    for (int step = 0; step < 20000; step++) {
        int k = rng() % SLOTS;
        if (live[k].n) {
            assert_int_equal(pmm_free(&pm, live[k].pa, live[k].n), 0);
            for (uint32_t f = live[k].pa / PAGE_SIZE; f < live[k].pa / PAGE_SIZE + live[k].n; f++) {
                assert_int_equal(owner[f], k + 1);
                owner[f] = 0;
                *(f < SPLIT ? &used_d : &used_h) -= 1;
            }
            live[k].n = 0;
            continue;
        }
        uint32_t n = 1 + rng() % 24, pa;
        if (pmm_alloc(&pm, rng() & 1 ? ZONE_HIGH : ZONE_DIRECT, n, &pa))
            continue;
        for (uint32_t f = pa / PAGE_SIZE; f < pa / PAGE_SIZE + n; f++) {
            assert_true(f < NF && (f < 100 || f >= 120));
            assert_int_equal(owner[f], 0);
            owner[f] = k + 1;
            *(f < SPLIT ? &used_d : &used_h) += 1;
        }
        live[k].pa = pa;
        live[k].n = n;
    }
    assert_stats(SPLIT - 20, SPLIT - 20 - used_d, NF - SPLIT, NF - SPLIT - used_h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitmap_bytes),
        cmocka_unit_test(test_bitmap_too_small),
        cmocka_unit_test(test_reserved_excluded),
        cmocka_unit_test(test_unsorted_overlapping),
        cmocka_unit_test(test_unaligned_avail),
        cmocka_unit_test(test_zero_length_ranges),
        cmocka_unit_test(test_clip_at_4g),
        cmocka_unit_test(test_reserve_after_init),
        cmocka_unit_test(test_unreserve_moved_modules),
        cmocka_unit_test(test_zone_split_and_fallback),
        cmocka_unit_test(test_split_straddling_frame_is_high),
        cmocka_unit_test(test_run_never_spans_zones),
        cmocka_unit_test(test_contiguous_around_holes),
        cmocka_unit_test(test_run_across_word_boundary),
        cmocka_unit_test(test_next_fit_and_wrap),
        cmocka_unit_test(test_exhaustion_and_refill),
        cmocka_unit_test(test_bad_alloc_args),
        cmocka_unit_test(test_empty_map),
        cmocka_unit_test(test_double_free),
        cmocka_unit_test(test_foreign_and_malformed_frees),
        cmocka_unit_test(test_free_spanning_zones_counts_both),
        cmocka_unit_test(test_random_against_shadow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
