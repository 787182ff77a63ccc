/* Unit tests of the kernel heap core (kernel/heap.c) over a test page source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"

/* ---------------------------------------------------------------- page source */

#define ARENA_PAGES 1024
static uint8_t arena[ARENA_PAGES][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

/* First-fit page runs out of arena, with a limit to simulate exhaustion. */
static struct {
    bool used[ARENA_PAGES];
    size_t out, limit;      /* pages handed out now; most that may be */
    size_t nallocs, nfrees; /* calls that succeeded */
} src;

static void *src_alloc(void *ctx, size_t n)
{
    if (src.out + n > src.limit)
        return NULL;
    for (size_t i = 0; i + n <= ARENA_PAGES; i++) {
        size_t k = 0;
        while (k < n && !src.used[i + k])
            k++;
        if (k < n)
            continue;
        for (k = 0; k < n; k++)
            src.used[i + k] = true;
        src.out += n;
        src.nallocs++;
        return arena[i];
    }
    return NULL;
}

static void src_free(void *ctx, void *p, size_t n)
{
    size_t i = ((uint8_t *)p - arena[0]) / PAGE_SIZE;

    assert_true((uint8_t *)p >= arena[0] && i + n <= ARENA_PAGES);
    assert_int_equal(((uint8_t *)p - arena[0]) % PAGE_SIZE, 0);
    for (size_t k = 0; k < n; k++) {
        assert_true(src.used[i + k]);
        src.used[i + k] = false;
    }
    src.out -= n;
    src.nfrees++;
}

static struct heap heap;
static const struct heap_ops ops = { src_alloc, src_free, NULL };

/* A fresh heap over a dirty arena: pages arrive holding garbage, as frames do. */
static int fresh(void **state)
{
    memset(&src, 0, sizeof(src));
    src.limit = ARENA_PAGES;
    memset(arena, 0xee, sizeof(arena));
    heap_init(&heap, &ops);
    return 0;
}

static struct heap_stats stats(void)
{
    struct heap_stats st;

    heap_get_stats(&heap, &st);
    return st;
}

static void assert_stats_equal(struct heap_stats a, struct heap_stats b)
{
    assert_int_equal(a.bytes_in_use, b.bytes_in_use);
    assert_int_equal(a.bytes_reserved, b.bytes_reserved);
    assert_int_equal(a.allocs, b.allocs);
    assert_int_equal(a.total_allocs, b.total_allocs);
    assert_int_equal(a.failed_allocs, b.failed_allocs);
    assert_int_equal(a.poison_faults, b.poison_faults);
}

/* Slot geometry from the documented layout: header + class + trailer. */
static size_t stride(size_t cls) { return 16 + cls + HEAP_CANARY_BYTES; }
static size_t slots(size_t cls) { return (PAGE_SIZE - HEAP_SLAB_FIRST) / stride(cls); }
static uintptr_t page_off(const void *p) { return (uintptr_t)p % PAGE_SIZE; }

/* ---------------------------------------------------------------- sizes */

static void test_zero_and_absurd_sizes(void **state)
{
    assert_null(heap_alloc(&heap, 0));
    assert_null(heap_alloc(&heap, SIZE_MAX));
    assert_null(heap_alloc(&heap, SIZE_MAX - PAGE_SIZE));
    assert_null(heap_alloc(&heap, HEAP_MAX_BYTES + 1));
    assert_int_equal(stats().failed_allocs, 4);
    assert_int_equal(stats().total_allocs, 0);
    assert_int_equal(src.nallocs, 0);
    assert_int_equal(heap_free(&heap, NULL), 0);
}

/* One row per request size: the class that must serve it (0 = large) and,
 * for large ones, the pages of its run. */
static const struct { size_t bytes, cls, pages; } size_rows[] = {
    { 1, 16, 0 },      { 15, 16, 0 },     { 16, 16, 0 },     { 17, 32, 0 },
    { 32, 32, 0 },     { 33, 64, 0 },     { 64, 64, 0 },     { 65, 128, 0 },
    { 128, 128, 0 },   { 129, 256, 0 },   { 256, 256, 0 },   { 257, 512, 0 },
    { 512, 512, 0 },   { 513, 1024, 0 },  { 1024, 1024, 0 }, { 1025, 2048, 0 },
    { 2048, 2048, 0 }, { 2049, 0, 1 },    { 4016, 0, 1 },    { 4017, 0, 2 },
    { 100000, 0, 25 },
};

static void check_size_row(size_t bytes, size_t cls, size_t pages)
{
    uint8_t *a = heap_alloc(&heap, bytes), *b = heap_alloc(&heap, bytes);

    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal((uintptr_t)a % HEAP_ALIGN, 0);
    assert_int_equal((uintptr_t)b % HEAP_ALIGN, 0);
    memset(a, 0x11, bytes);
    memset(b, 0x22, bytes);
    if (pages) {
        assert_int_equal(page_off(a), HEAP_LARGE_OFFSET);
        assert_int_equal(stats().bytes_reserved, 2 * pages * PAGE_SIZE);
    } else if (slots(cls) > 1) {
        /* Consecutive slots of one slab: the stride gives the class away. */
        assert_int_equal(b - a, stride(cls));
        assert_int_equal(stats().bytes_reserved, PAGE_SIZE);
    } else {
        assert_int_equal(page_off(a), HEAP_SLAB_FIRST + 16);
        assert_int_equal(stats().bytes_reserved, 2 * PAGE_SIZE);
    }
    assert_int_equal(stats().bytes_in_use, 2 * bytes);
    assert_int_equal(heap_check(&heap), 0);
    assert_int_equal(heap_free(&heap, a), 0);
    assert_int_equal(heap_free(&heap, b), 0);
    assert_int_equal(stats().allocs, 0);
}

static void test_size_class_boundaries(void **state)
{
    for (size_t i = 0; i < ARRAY_SIZE(size_rows); i++) {
        fresh(state);
        check_size_row(size_rows[i].bytes, size_rows[i].cls, size_rows[i].pages);
    }
}

static void test_alignment_all_sizes(void **state)
{
    static void *p[600];
    size_t n = 0;

    for (size_t bytes = 1; bytes <= 6000; bytes += 11, n++) {
        p[n] = heap_alloc(&heap, bytes);
        assert_non_null(p[n]);
        assert_int_equal((uintptr_t)p[n] % HEAP_ALIGN, 0);
    }
    assert_int_equal(heap_check(&heap), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(heap_free(&heap, p[i]), 0);
    assert_int_equal(stats().allocs, 0);
    assert_int_equal(stats().bytes_in_use, 0);
}

/* ---------------------------------------------------------------- contents */

static uint32_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static uint8_t pattern(size_t obj, size_t i) { return (uint8_t)(obj * 131 + i * 7 + 1); }

static void test_patterns_do_not_overlap(void **state)
{
    enum { N = 600 };
    static uint8_t *p[N];
    static size_t len[N];

    rng_state = 12345;
    for (size_t k = 0; k < N; k++) {
        len[k] = rng() % 4 ? 1 + rng() % 300 : 1 + rng() % 5000;
        p[k] = heap_alloc(&heap, len[k]);
        assert_non_null(p[k]);
        for (size_t i = 0; i < len[k]; i++)
            p[k][i] = pattern(k, i);
    }
    for (size_t k = 0; k < N; k++)
        for (size_t i = 0; i < len[k]; i++)
            assert_int_equal(p[k][i], pattern(k, i));
    assert_int_equal(heap_check(&heap), 0);
    for (size_t k = 0; k < N; k += 2)
        assert_int_equal(heap_free(&heap, p[k]), 0);
    for (size_t k = 1; k < N; k += 2)
        assert_int_equal(heap_free(&heap, p[k]), 0);
    assert_int_equal(stats().allocs, 0);
    assert_int_equal(stats().bytes_in_use, 0);
    assert_int_equal(stats().bytes_reserved, PAGE_SIZE); /* only the spare */
    assert_int_equal(src.out, 1);
}

static void test_freed_slot_is_poisoned(void **state)
{
    uint8_t *a = heap_alloc(&heap, 40), *b = heap_alloc(&heap, 40);

    memset(a, 0, 40);
    assert_int_equal(heap_free(&heap, a), 0);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(a[i], HEAP_POISON);
    assert_int_equal(heap_free(&heap, b), 0);
}

/* ---------------------------------------------------------------- misuse */

static void test_double_free(void **state)
{
    void *a = heap_alloc(&heap, 32), *b = heap_alloc(&heap, 32), *big = heap_alloc(&heap, 9000);
    struct heap_stats before;

    assert_int_equal(heap_free(&heap, a), 0);
    before = stats();
    assert_int_equal(heap_free(&heap, a), E_CORRUPT);
    assert_stats_equal(stats(), before);
    assert_int_equal(heap_check(&heap), 0);

    /* The last object makes its slab the spare: still a double free. */
    assert_int_equal(heap_free(&heap, b), 0);
    assert_ptr_equal(heap.spare, (void *)((uintptr_t)b & ~(uintptr_t)(PAGE_SIZE - 1)));
    assert_int_equal(heap_free(&heap, b), E_CORRUPT);

    /* A large run already given back to the page source. */
    assert_int_equal(heap_free(&heap, big), 0);
    before = stats();
    assert_int_equal(heap_free(&heap, big), E_CORRUPT);
    assert_stats_equal(stats(), before);
    assert_int_equal(stats().allocs, 0);
}

/* Overflow by one byte past the requested size, at every kind of object: the
 * free is refused and frees nothing; repaired, the object frees normally. */
static void test_overflow_by_one_byte(void **state)
{
    static const size_t sizes[] = { 1, 15, 16, 17, 100, 2047, 2048, 2049, 5000 };

    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        uint8_t *p = heap_alloc(&heap, sizes[i]);
        struct heap_stats before = stats();
        uint8_t saved = p[sizes[i]];

        p[sizes[i]] = saved + 1;
        assert_int_equal(heap_check(&heap), E_CORRUPT);
        assert_int_equal(heap_free(&heap, p), E_CORRUPT);
        assert_stats_equal(stats(), before);
        p[sizes[i]] = saved;
        assert_int_equal(heap_check(&heap), 0);
        assert_int_equal(heap_free(&heap, p), 0);
    }
    assert_int_equal(stats().allocs, 0);
}

static void test_header_damage(void **state)
{
    uint8_t *p = heap_alloc(&heap, 64);
    uint32_t *hdr = (uint32_t *)p - 4; /* magic, state, bytes, check */

    p[-1] ^= 0x40; /* underflow by one byte hits the header's checksum */
    assert_int_equal(heap_check(&heap), E_CORRUPT);
    assert_int_equal(heap_free(&heap, p), E_CORRUPT);
    p[-1] ^= 0x40;
    hdr[2] = 16; /* a smaller size, so that the canary would move */
    assert_int_equal(heap_free(&heap, p), E_CORRUPT);
    hdr[2] = 64;
    hdr[0] = 0;
    assert_int_equal(heap_free(&heap, p), E_CORRUPT);
    hdr[0] = 0x4f424a31u;
    assert_int_equal(heap_check(&heap), 0);
    assert_int_equal(heap_free(&heap, p), 0);
}

static void test_foreign_and_middle_pointers(void **state)
{
    static uint8_t page_buf[2 * PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
    uint8_t stack_buf[64] __attribute__((aligned(16)));
    uint8_t *small = heap_alloc(&heap, 64), *mid = heap_alloc(&heap, 1000);
    uint8_t *big = heap_alloc(&heap, 3 * PAGE_SIZE);
    uint8_t *slab = (uint8_t *)((uintptr_t)mid & ~(uintptr_t)(PAGE_SIZE - 1));
    struct heap other;
    struct heap_stats before = stats();

    heap_init(&other, &ops);
    void *theirs = heap_alloc(&other, 64);
    before = stats();
    memset(big, 0, 3 * PAGE_SIZE);
    memset(page_buf, 0, sizeof(page_buf));

    assert_int_equal(heap_free(&heap, stack_buf), E_INVAL);
    assert_int_equal(heap_free(&heap, page_buf + 64), E_INVAL);
    /* A page that looks like a slab, but of another heap. */
    memcpy(page_buf, (void *)((uintptr_t)theirs & ~(uintptr_t)(PAGE_SIZE - 1)), PAGE_SIZE);
    assert_int_equal(heap_free(&heap, page_buf + page_off(theirs)), E_INVAL);
    assert_int_equal(heap_free(&heap, theirs), E_INVAL);        /* another heap's object */
    assert_int_equal(heap_free(&heap, small + 1), E_INVAL);     /* unaligned */
    assert_int_equal(heap_free(&heap, small + 16), E_INVAL);    /* aligned, mid-object */
    assert_int_equal(heap_free(&heap, small - 16), E_INVAL);    /* its header */
    assert_int_equal(heap_free(&heap, mid + 512), E_INVAL);
    assert_int_equal(heap_free(&heap, slab), E_INVAL);          /* slab descriptor */
    assert_int_equal(heap_free(&heap, slab + HEAP_SLAB_FIRST + 16 + 3 * stride(1024)),
                     E_INVAL);                                  /* past the last slot */
    assert_int_equal(heap_free(&heap, big + 16), E_INVAL);
    assert_int_equal(heap_free(&heap, big + PAGE_SIZE), E_INVAL); /* second page of the run */
    assert_int_equal(heap_free(&heap, big - HEAP_LARGE_OFFSET), E_INVAL);

    assert_stats_equal(stats(), before);
    assert_int_equal(heap_check(&heap), 0);
    assert_int_equal(heap_free(&other, theirs), 0);
    assert_int_equal(heap_free(&heap, small), 0);
    assert_int_equal(heap_free(&heap, mid), 0);
    assert_int_equal(heap_free(&heap, big), 0);
}

/* A rewritten size whose new canary position happens to hold canary bytes
 * (the owner copied them there) is still caught: the checksum covers it. */
static void test_header_checksum_covers_size(void **state)
{
    uint8_t *p = heap_alloc(&heap, 64);
    uint32_t *hdr = (uint32_t *)p - 4;

    memcpy(p + 32, p + 64, HEAP_CANARY_BYTES);
    hdr[2] = 32;
    assert_int_equal(heap_check(&heap), E_CORRUPT);
    assert_int_equal(heap_free(&heap, p), E_CORRUPT);
    hdr[2] = 64;
    assert_int_equal(heap_free(&heap, p), 0);
}

/* A live slab that fell off its list is found by the count of live objects. */
static void test_lost_slab_found_by_check(void **state)
{
    void *p = heap_alloc(&heap, 16);
    struct heap_slab *s = heap.partial[0];

    assert_non_null(s);
    heap.partial[0] = NULL;
    assert_int_equal(heap_check(&heap), E_CORRUPT);
    heap.partial[0] = s;
    assert_int_equal(heap_check(&heap), 0);
    assert_int_equal(heap_free(&heap, p), 0);
}

static void test_descriptor_damage(void **state)
{
    uint8_t *p = heap_alloc(&heap, 100);
    uint32_t *desc = (uint32_t *)((uintptr_t)p & ~(uintptr_t)(PAGE_SIZE - 1));
    uint32_t magic = desc[0];

    desc[0] = 0;
    assert_int_equal(heap_check(&heap), E_CORRUPT);
    assert_int_equal(heap_free(&heap, p), E_INVAL); /* no longer recognisably ours */
    desc[0] = magic;
    assert_int_equal(heap_free(&heap, p), 0);
}

static void test_use_after_free_write(void **state)
{
    uint8_t *a = heap_alloc(&heap, 128), *b = heap_alloc(&heap, 128), *c;

    assert_int_equal(heap_free(&heap, a), 0);
    a[5] = 1; /* through a stale pointer */
    assert_int_equal(heap_check(&heap), E_CORRUPT);
    /* The damaged slot is the lowest free one, yet is never handed out. */
    c = heap_alloc(&heap, 128);
    assert_non_null(c);
    assert_ptr_not_equal(c, a);
    assert_ptr_equal(c, b + stride(128));
    assert_int_equal(stats().poison_faults, 1);
    assert_int_equal(stats().allocs, 2);
    assert_int_equal(heap_free(&heap, a), E_CORRUPT); /* quarantined */
    assert_int_equal(heap_check(&heap), E_CORRUPT);
    assert_int_equal(heap_free(&heap, b), 0);
    assert_int_equal(heap_free(&heap, c), 0);
}

/* ---------------------------------------------------------------- pages */

static void test_page_source_exhaustion(void **state)
{
    size_t per_slab = slots(16), n = 0;
    static void *p[256];

    src.limit = 2;
    while ((p[n] = heap_alloc(&heap, 16)) != NULL)
        n++;
    assert_int_equal(n, 2 * per_slab);
    assert_int_equal(stats().failed_allocs, 1);
    assert_null(heap_alloc(&heap, 3000));
    assert_int_equal(stats().failed_allocs, 2);
    assert_int_equal(stats().allocs, n);
    assert_int_equal(heap_check(&heap), 0);

    /* Emptying the first slab makes it the spare; a large request then
     * gets its page back from the source. */
    for (size_t i = 0; i < per_slab; i++)
        assert_int_equal(heap_free(&heap, p[i]), 0);
    assert_int_equal(src.out, 2);
    void *big = heap_alloc(&heap, 3000);
    assert_non_null(big);
    assert_null(heap.spare);
    assert_int_equal(src.out, 2);
    assert_int_equal(stats().bytes_reserved, 2 * PAGE_SIZE);
    assert_null(heap_alloc(&heap, 16));
    assert_int_equal(stats().failed_allocs, 3);
    assert_int_equal(heap_free(&heap, big), 0);
    for (size_t i = per_slab; i < n; i++)
        assert_int_equal(heap_free(&heap, p[i]), 0);
    assert_int_equal(src.out, 1);
}

static void test_empty_slabs_released(void **state)
{
    size_t per_slab = slots(64);
    static void *p[128];

    for (size_t i = 0; i < 2 * per_slab; i++)
        p[i] = heap_alloc(&heap, 64);
    assert_int_equal(src.out, 2);
    for (size_t i = 0; i < per_slab; i++)
        assert_int_equal(heap_free(&heap, p[i]), 0);
    assert_int_equal(src.out, 2); /* kept as the spare */
    assert_int_equal(stats().bytes_reserved, 2 * PAGE_SIZE);
    for (size_t i = per_slab; i < 2 * per_slab; i++)
        assert_int_equal(heap_free(&heap, p[i]), 0);
    assert_int_equal(src.out, 1);
    assert_int_equal(src.nfrees, 1);
    assert_int_equal(stats().bytes_reserved, PAGE_SIZE);

    /* The spare serves the next slab of any class without a page request. */
    size_t nallocs = src.nallocs;
    void *q = heap_alloc(&heap, 2000);
    assert_int_equal(src.nallocs, nallocs);
    assert_int_equal(heap_check(&heap), 0);
    assert_int_equal(heap_free(&heap, q), 0);

    /* Large runs go straight back. */
    q = heap_alloc(&heap, 20000);
    assert_int_equal(src.out, 1 + 5);
    assert_int_equal(heap_free(&heap, q), 0);
    assert_int_equal(src.out, 1);
}

static void test_stats_exact(void **state)
{
    void *a = heap_alloc(&heap, 10), *b = heap_alloc(&heap, 300), *c = heap_alloc(&heap, 5000);

    assert_null(heap_alloc(&heap, 0));
    assert_int_equal(stats().bytes_in_use, 5310);
    assert_int_equal(stats().allocs, 3);
    assert_int_equal(stats().total_allocs, 3);
    assert_int_equal(stats().failed_allocs, 1);
    assert_int_equal(stats().bytes_reserved, 2 * PAGE_SIZE + 2 * PAGE_SIZE);
    assert_int_equal(heap_free(&heap, b), 0);
    assert_int_equal(stats().bytes_in_use, 5010);
    assert_int_equal(stats().allocs, 2);
    assert_int_equal(stats().total_allocs, 3);
    assert_int_equal(stats().bytes_reserved, PAGE_SIZE + PAGE_SIZE + 2 * PAGE_SIZE); /* spare */
    assert_int_equal(heap_free(&heap, a), 0);
    assert_int_equal(heap_free(&heap, c), 0);
    assert_int_equal(stats().bytes_in_use, 0);
    assert_int_equal(stats().bytes_reserved, PAGE_SIZE);
    assert_int_equal(stats().poison_faults, 0);
}

/* ---------------------------------------------------------------- stress */

/*
 * Random allocations and frees (fixed seed) against a shadow table, with the
 * page source capped so that some requests fail: every live object keeps its
 * pattern, counters match the shadow, heap_check passes throughout.
 */
static void test_random_against_shadow(void **state)
{
    enum { SLOTS = 300, STEPS = 30000 };
    static struct { uint8_t *p; size_t len; uint8_t seed; } live[SLOTS];
    size_t nlive = 0, bytes = 0, failed = 0, total = 0;

    memset(live, 0, sizeof(live));
    rng_state = 0xC0FFEE;
    src.limit = 40;
    for (int step = 0; step < STEPS; step++) {
        size_t k = rng() % SLOTS;
        if (live[k].p) {
            for (size_t i = 0; i < live[k].len; i++)
                assert_int_equal(live[k].p[i], (uint8_t)(live[k].seed + i));
            assert_int_equal(heap_free(&heap, live[k].p), 0);
            bytes -= live[k].len;
            nlive--;
            live[k].p = NULL;
        } else {
            uint32_t r = rng() % 100;
            size_t len = r < 70 ? 1 + rng() % 256 : r < 95 ? 257 + rng() % 1792 : 2049 + rng() % 12000;
            uint8_t *p = heap_alloc(&heap, len);
            if (!p) {
                failed++;
                continue;
            }
            total++;
            live[k].p = p;
            live[k].len = len;
            live[k].seed = rng();
            for (size_t i = 0; i < len; i++)
                p[i] = live[k].seed + i;
            bytes += len;
            nlive++;
        }
        if (step % 1000 == 0)
            assert_int_equal(heap_check(&heap), 0);
        assert_int_equal(stats().allocs, nlive);
        assert_int_equal(stats().bytes_in_use, bytes);
        assert_int_equal(stats().bytes_reserved, src.out * PAGE_SIZE);
    }
    assert_true(failed > 0); /* the cap was reached: failure paths ran */
    assert_int_equal(stats().failed_allocs, failed);
    assert_int_equal(stats().total_allocs, total);
    assert_int_equal(heap_check(&heap), 0);
    for (size_t k = 0; k < SLOTS; k++)
        if (live[k].p)
            assert_int_equal(heap_free(&heap, live[k].p), 0);
    assert_int_equal(stats().allocs, 0);
    assert_true(src.out <= 1);
    assert_int_equal(stats().bytes_reserved, src.out * PAGE_SIZE);
}

#define T(f) cmocka_unit_test_setup(f, fresh)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_zero_and_absurd_sizes),
        T(test_size_class_boundaries),
        T(test_alignment_all_sizes),
        T(test_patterns_do_not_overlap),
        T(test_freed_slot_is_poisoned),
        T(test_double_free),
        T(test_overflow_by_one_byte),
        T(test_header_damage),
        T(test_foreign_and_middle_pointers),
        T(test_header_checksum_covers_size),
        T(test_lost_slab_found_by_check),
        T(test_descriptor_damage),
        T(test_use_after_free_write),
        T(test_page_source_exhaustion),
        T(test_empty_slabs_released),
        T(test_stats_exact),
        T(test_random_against_shadow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
