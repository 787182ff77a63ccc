/*
 * Guest RAM (vmm/gmem.c) and content-based page sharing (vmm/pshare.c) on
 * the Linux host. The frame allocator, kmap and the heap are stubbed with
 * plain memory (a frame's "hpa" is its address: the test is a 32-bit
 * program); frames out are counted, so a leak or a double free fails.
 *   - scan + apply shares equal pages across and within VMs, with the
 *     reference counts, VM counters and the frames saved;
 *   - a write (gmem_write, gmem_zero) unshares: the writer gets a private
 *     copy, the other sharers keep the old bytes; the last reference keeps
 *     the frame with no copy; the unshare hook names the frame left;
 *   - DMA: gmem_gpa_to_hpa_w gives a private frame a device may write, the
 *     read-only lookup does not unshare;
 *   - a page written between its hash and the apply is not shared on stale
 *     bytes; equal hashes of different bytes never share;
 *   - gmem_free drops references: the other VM keeps its bytes, and the
 *     last frees the frame;
 *   - no frame for a private copy: E_NOMEM, nothing changed;
 *   - a random model: several VMs, random writes of a few patterns (many
 *     duplicates), random DMA, scans, applies, a VM destroyed and made
 *     again; after every step every VM reads exactly what it wrote, and the
 *     table's counts agree with the VMs'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/spinlock.h"
#include "vmm/gmem.h"
#include "vmm/pshare.h"

/* ---------------------------------------------------------------- stubs of the kernel */

static long frames_out, frames_limit = -1;

void *kzalloc(size_t n) { return calloc(1, n); }
void kfree(void *p) { free(p); }
int frame_alloc_exact(enum pmm_zone z, uint32_t n, uint32_t *pa)
{
    assert_int_equal(n, 1);
    if (frames_limit >= 0 && frames_out >= frames_limit)
        return E_NOMEM;
    void *p = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
    assert_non_null(p);
    memset(p, 0xA5, PAGE_SIZE); /* not zero: whoever needs zeroes must write them */
    *pa = (uint32_t)(uintptr_t)p;
    frames_out++;
    return 0;
}
void frame_free(uint32_t pa, uint32_t n)
{
    assert_int_equal(n, 1);
    assert_int_equal(pa & (PAGE_SIZE - 1), 0);
    memset((void *)(uintptr_t)pa, 0xDD, PAGE_SIZE); /* a use after free reads garbage */
    free((void *)(uintptr_t)pa);
    frames_out--;
}
void *kmap(uint32_t pa) { return (void *)(uintptr_t)pa; }
void kunmap(void *va) { }
void *kmap_cached(uint32_t pa) { return (void *)(uintptr_t)pa; }
uint32_t spin_lock_irqsave(spinlock_t *l)
{
    assert_int_equal(l->locked, 0); /* no recursion */
    l->locked = 1;
    return 0;
}
void spin_unlock_irqrestore(spinlock_t *l, uint32_t flags) { l->locked = 0; }

/* ---------------------------------------------------------------- harness */

#define NVM    4
#define NPAGES 32

static struct gmem vm[NVM];
/* What the VM's shadow would have to drop: frames named by the hooks. */
static uint32_t unshared_old[NVM], unshared_calls[NVM], sharing_calls[NVM];

static void hook_unshared(void *ctx, uint32_t gpa, uint32_t old)
{
    unsigned i = (unsigned)(uintptr_t)ctx;
    assert_true(gpa < vm[i].npages * PAGE_SIZE && !(gpa & (PAGE_SIZE - 1)));
    assert_int_equal(vm[i].hpa[gpa >> PAGE_SHIFT] & GMEM_SHARED, 0); /* already private */
    unshared_old[i] = old;
    unshared_calls[i]++;
}

static void hook_sharing(void *ctx, uint32_t *hpas, unsigned n)
{
    unsigned i = (unsigned)(uintptr_t)ctx;
    /* Called before any of them is installed: each is still a private
     * frame of this VM. */
    for (unsigned k = 0; k < n; k++) {
        bool found = false;
        for (uint32_t p = 0; p < vm[i].npages; p++)
            found |= vm[i].hpa[p] == hpas[k];
        assert_true(found);
    }
    sharing_calls[i]++;
}

static void vm_make(unsigned i, uint32_t pages)
{
    assert_int_equal(gmem_init(&vm[i], pages * PAGE_SIZE), 0);
    vm[i].ctx = (void *)(uintptr_t)i;
    vm[i].unshared = hook_unshared;
    vm[i].sharing = hook_sharing;
}

static int setup(void **state)
{
    frames_out = 0;
    frames_limit = -1;
    assert_int_equal(pshare_init(), 0);
    memset(unshared_calls, 0, sizeof(unshared_calls));
    memset(sharing_calls, 0, sizeof(sharing_calls));
    return 0;
}

static int teardown(void **state)
{
    for (unsigned i = 0; i < NVM; i++)
        gmem_free(&vm[i]);
    assert_int_equal(frames_out, 0);
    struct pshare_stats st;
    pshare_get_stats(&st);
    assert_int_equal(st.frames, 0);
    assert_int_equal(st.refs, 0);
    return 0;
}

static void fill(unsigned i, uint32_t pfn, uint8_t byte)
{
    uint8_t page[PAGE_SIZE];
    memset(page, byte, sizeof(page));
    assert_int_equal(gmem_write(&vm[i], pfn * PAGE_SIZE, page, PAGE_SIZE), 0);
}

static uint8_t byte_at(unsigned i, uint32_t gpa)
{
    uint8_t b;
    assert_int_equal(gmem_read(&vm[i], gpa, &b, 1), 0);
    return b;
}

/* Scan every page of every VM `passes` times, applying after each VM's page. */
static void scan_all(unsigned passes)
{
    for (unsigned p = 0; p < passes; p++)
        for (unsigned i = 0; i < NVM; i++)
            for (uint32_t k = 0; k < vm[i].npages; k++) {
                gmem_scan_page(&vm[i], i);
                if (vm[i].nreq == GMEM_SHARE_BATCH)
                    gmem_share_apply(&vm[i]);
            }
    for (unsigned i = 0; i < NVM; i++)
        gmem_share_apply(&vm[i]);
}

static uint32_t frame_of(unsigned i, uint32_t pfn) { return vm[i].hpa[pfn] & PAGE_MASK; }
static bool is_shared(unsigned i, uint32_t pfn) { return vm[i].hpa[pfn] & GMEM_SHARED; }

/* VMs 0 and 1 of n pages, every page filled with byte, scanned until shared. */
static void two_vms_all_equal(uint32_t n, uint8_t byte)
{
    vm_make(0, n);
    vm_make(1, n);
    for (uint32_t p = 0; p < n; p++) {
        fill(0, p, byte);
        fill(1, p, byte);
    }
    scan_all(2);
}

/* VMs 0 and 1 of two pages: page 0 of both filled with byte and shared, page 1 distinct. */
static void two_vms_page0_equal(uint8_t byte)
{
    vm_make(0, 2);
    vm_make(1, 2);
    fill(0, 0, byte);
    fill(1, 0, byte);
    fill(0, 1, 0x01);
    fill(1, 1, 0x02);
    scan_all(2);
}

/* ---------------------------------------------------------------- directed tests */

/* Two VMs, one page of 0x11 in each and a third copy in VM 0: one frame, three refs. */
static void test_share_across_and_within(void **state)
{
    vm_make(0, 8);
    vm_make(1, 8);
    for (uint32_t p = 0; p < 8; p++) { /* all pages distinct first */
        fill(0, p, (uint8_t)(0x40 + p));
        fill(1, p, (uint8_t)(0x80 + p));
    }
    fill(0, 2, 0x11);
    fill(0, 5, 0x11);
    fill(1, 3, 0x11);
    long before = frames_out;
    scan_all(2);
    assert_true(is_shared(0, 2) && is_shared(0, 5) && is_shared(1, 3));
    assert_int_equal(frame_of(0, 2), frame_of(0, 5));
    assert_int_equal(frame_of(0, 2), frame_of(1, 3));
    for (uint32_t p = 0; p < 8; p++)
        if (p != 2 && p != 5)
            assert_false(is_shared(0, p)); /* unique content stays private */
    assert_int_equal(vm[0].nshared, 2);
    assert_int_equal(vm[1].nshared, 1);
    assert_int_equal(frames_out, before - 2); /* three pages on one frame */
    struct pshare_stats st;
    pshare_get_stats(&st);
    assert_int_equal(st.frames, 1);
    assert_int_equal(st.refs, 3);
    assert_true(sharing_calls[0] > 0 && sharing_calls[1] > 0);
    assert_int_equal(byte_at(1, 3 * PAGE_SIZE + 100), 0x11);
}

/* A write unshares: the writer's copy changes, the others' bytes do not. */
static void test_write_unshares(void **state)
{
    two_vms_all_equal(4, 0x22);
    uint32_t shared = frame_of(0, 0);
    for (uint32_t p = 0; p < 4; p++)
        assert_int_equal(frame_of(1, p), shared);
    long before = frames_out;
    uint8_t v = 0x99;
    assert_int_equal(gmem_write(&vm[1], 2 * PAGE_SIZE + 7, &v, 1), 0);
    assert_false(is_shared(1, 2));
    assert_int_not_equal(frame_of(1, 2), shared);
    assert_int_equal(unshared_calls[1], 1);
    assert_int_equal(unshared_old[1], shared); /* the shadow drops its mappings of this frame */
    assert_int_equal(frames_out, before + 1);
    assert_int_equal(byte_at(1, 2 * PAGE_SIZE + 7), 0x99);
    assert_int_equal(byte_at(1, 2 * PAGE_SIZE + 8), 0x22); /* the copy carries the rest */
    for (unsigned i = 0; i < 2; i++)
        for (uint32_t p = 0; p < 4; p++)
            if (!(i == 1 && p == 2))
                assert_int_equal(byte_at(i, p * PAGE_SIZE + 7), 0x22);
    /* gmem_zero unshares too */
    assert_int_equal(gmem_zero(&vm[0], 1 * PAGE_SIZE + 100, 4), 0);
    assert_false(is_shared(0, 1));
    assert_int_equal(byte_at(0, 1 * PAGE_SIZE + 100), 0);
    assert_int_equal(byte_at(1, 1 * PAGE_SIZE + 100), 0x22);
}

/* The last reference keeps its frame: no copy, the entry goes. */
static void test_last_reference_keeps_frame(void **state)
{
    vm_make(0, 2);
    fill(0, 0, 0x33);
    fill(0, 1, 0x33);
    scan_all(2);
    assert_true(is_shared(0, 0) && is_shared(0, 1));
    uint32_t shared = frame_of(0, 0);
    uint8_t v = 1;
    assert_int_equal(gmem_write(&vm[0], 0, &v, 1), 0); /* two refs: a copy */
    long before = frames_out;
    assert_int_equal(gmem_write(&vm[0], PAGE_SIZE, &v, 1), 0); /* the last: no copy */
    assert_int_equal(frames_out, before);
    assert_int_equal(frame_of(0, 1), shared);
    assert_false(is_shared(0, 1));
    struct pshare_stats st;
    pshare_get_stats(&st);
    assert_int_equal(st.frames, 0);
    assert_int_equal(st.refs, 0);
    assert_int_equal(st.reclaimed, 1);
    assert_int_equal(unshared_calls[0], 2); /* read-only mappings of it must still go */
}

/* DMA: the writable lookup gives a private frame; the read-only one does not unshare. */
static void test_dma_unshares(void **state)
{
    two_vms_page0_equal(0x44);
    assert_true(is_shared(0, 0) && is_shared(1, 0));
    uint32_t hpa;
    assert_int_equal(gmem_gpa_to_hpa(&vm[0], 0x10, &hpa), GMEM_SHARED); /* a device reading: no copy */
    assert_true(is_shared(0, 0));
    assert_int_equal(hpa, frame_of(0, 0) | 0x10);
    assert_int_equal(gmem_gpa_to_hpa_w(&vm[0], 0x10, &hpa), 0); /* a device about to write */
    assert_false(is_shared(0, 0));
    assert_int_equal(hpa, frame_of(0, 0) | 0x10);
    memset((void *)(uintptr_t)(hpa & PAGE_MASK), 0x55, PAGE_SIZE); /* the "host controller" writes */
    assert_int_equal(byte_at(0, 0), 0x55);
    assert_int_equal(byte_at(1, 0), 0x44); /* never seen by the other VM */
    assert_int_equal(gmem_gpa_to_hpa_w(&vm[0], 2 * PAGE_SIZE, &hpa), E_RANGE);
    assert_int_equal(gmem_gpa_to_hpa(&vm[0], 2 * PAGE_SIZE, &hpa), E_RANGE);
}

/* Written after its hash, before the apply: shared on its bytes of now, or not at all. */
static void test_stale_request(void **state)
{
    two_vms_page0_equal(0x66); /* 0x66 is a shared frame now */
    struct pshare_stats st, st0;
    pshare_get_stats(&st0);
    fill(0, 1, 0x66); /* VM 0 page 1 now matches, is hashed and queued ... */
    for (uint32_t k = 0; k < 2; k++)
        gmem_scan_page(&vm[0], 0);
    assert_int_equal(vm[0].nreq, 1);
    uint8_t v = 0x77;
    assert_int_equal(gmem_write(&vm[0], PAGE_SIZE + 9, &v, 1), 0); /* ... then written */
    assert_int_equal(gmem_share_apply(&vm[0]), 0);
    assert_false(is_shared(0, 1));
    assert_int_equal(byte_at(0, PAGE_SIZE + 9), 0x77);
    assert_int_equal(byte_at(1, 9), 0x66);
    pshare_get_stats(&st);
    assert_int_equal(st.merges, st0.merges); /* hashed again at the apply: no longer equal */
}

/* gmem_free drops references; the other VM keeps its bytes; the last frees. */
static void test_free_respects_refs(void **state)
{
    two_vms_all_equal(3, 0x12);
    assert_int_equal(vm[0].nshared + vm[1].nshared, 6);
    assert_int_equal(frames_out, 1);
    gmem_free(&vm[0]);
    assert_int_equal(frames_out, 1);
    for (uint32_t p = 0; p < 3; p++)
        assert_int_equal(byte_at(1, p * PAGE_SIZE + 1), 0x12);
    gmem_free(&vm[1]);
    assert_int_equal(frames_out, 0);
}

/* No frame for the private copy: E_NOMEM, the page and the sharers unchanged. */
static void test_unshare_out_of_memory(void **state)
{
    vm_make(0, 2);
    fill(0, 0, 0x21);
    fill(0, 1, 0x21);
    scan_all(2);
    assert_true(is_shared(0, 0));
    frames_limit = frames_out;
    uint8_t v = 3;
    uint32_t hpa;
    assert_int_equal(gmem_write(&vm[0], 0, &v, 1), E_NOMEM);
    assert_int_equal(gmem_gpa_to_hpa_w(&vm[0], 0, &hpa), E_NOMEM);
    assert_true(is_shared(0, 0) && is_shared(0, 1));
    assert_int_equal(byte_at(0, 0), 0x21);
    assert_int_equal(unshared_calls[0], 0);
    frames_limit = -1;
}

/* Sharing off: the table refuses nothing already shared, but scanning is the scanner's
 * business; equal hashes of different bytes never share. */
static void test_hash_collision_never_shares(void **state)
{
    vm_make(0, 2);
    fill(0, 0, 0x31);
    fill(0, 1, 0x31);
    scan_all(2);
    uint32_t priv;
    assert_int_equal(frame_alloc_exact(ZONE_HIGH, 1, &priv), 0);
    memset((void *)(uintptr_t)priv, 0x32, PAGE_SIZE);
    uint32_t hash = pshare_hash((void *)(uintptr_t)frame_of(0, 0)), out = 0;
    /* Claim priv has the shared frame's hash: the comparison must refuse it. */
    assert_int_equal(pshare_share(hash, priv, false, &out), E_NOENT);
    frame_free(priv, 1);
}

/* The hash tells apart a zero page from each of its 1024 variants with
 * one word set, and those variants from one another (the lanes' results
 * are not simply combined: word i and word i + 1 land in different ones),
 * and the same bytes always hash the same. */
static void test_hash_single_words(void **state)
{
    static uint32_t page[PAGE_SIZE / 4], seen[PAGE_SIZE / 4 + 1];
    memset(page, 0, sizeof(page));
    uint32_t zero = pshare_hash(page);
    assert_int_equal(pshare_hash(page), zero);
    seen[0] = zero;
    for (unsigned i = 0; i < PAGE_SIZE / 4; i++) {
        page[i] = 1;
        seen[i + 1] = pshare_hash(page);
        page[i] = 0;
    }
    for (unsigned i = 0; i <= PAGE_SIZE / 4; i++)
        for (unsigned j = i + 1; j <= PAGE_SIZE / 4; j++)
            if (seen[i] == seen[j])
                fail_msg("pages %u and %u (0: none set, k: word k - 1 set) hash the same: %08x", i, j, seen[i]);
}

/* Requests wait for more to join them: an apply is due GMEM_SHARE_WAIT_TICKS
 * after the VM's thread first saw one queued, or at once with a full batch;
 * the apply starts the wait over. */
static void test_share_due(void **state)
{
    vm_make(0, GMEM_SHARE_BATCH + 2);
    vm_make(1, GMEM_SHARE_BATCH + 2);
    for (uint32_t p = 0; p < GMEM_SHARE_BATCH + 2; p++) {
        fill(0, p, 0x66);
        fill(1, p, 0x66);
    }
    assert_false(gmem_share_due(&vm[0], 1000)); /* nothing queued */
    for (uint32_t p = 0; p < GMEM_SHARE_BATCH + 2; p++)
        gmem_scan_page(&vm[1], 1); /* hints for VM 0's pages to find */
    gmem_scan_page(&vm[0], 0);
    assert_int_equal(vm[0].nreq, 1);
    assert_false(gmem_share_ready(&vm[0], 1000000));         /* not seen by the VM's thread yet */
    assert_false(gmem_share_due(&vm[0], 1000));              /* first seen now */
    assert_false(gmem_share_ready(&vm[0], 1000 + GMEM_SHARE_WAIT_TICKS - 1));
    assert_true(gmem_share_ready(&vm[0], 1000 + GMEM_SHARE_WAIT_TICKS));
    assert_false(gmem_share_due(&vm[0], 1000 + GMEM_SHARE_WAIT_TICKS - 1));
    assert_true(gmem_share_due(&vm[0], 1000 + GMEM_SHARE_WAIT_TICKS));
    assert_int_equal(gmem_share_apply(&vm[0]), 1);
    assert_false(gmem_share_due(&vm[0], 5000));
    while (vm[0].nreq < GMEM_SHARE_BATCH)
        assert_int_equal(gmem_scan_page(&vm[0], 0), 1);
    assert_true(gmem_share_ready(&vm[0], 5000)); /* full: no wait, seen or not */
    assert_true(gmem_share_due(&vm[0], 5000));
    assert_int_equal(gmem_share_apply(&vm[0]), GMEM_SHARE_BATCH);
    gmem_scan_page(&vm[0], 0);
    assert_false(gmem_share_due(&vm[0], 9000)); /* the wait starts over */
    /* Sharing turned off: what is queued is due at once and dropped. */
    pshare_set_enabled(false);
    assert_true(gmem_share_ready(&vm[0], 9000));
    uint32_t shared = vm[0].nshared;
    assert_int_equal(gmem_share_apply(&vm[0]), 0);
    assert_int_equal(vm[0].nshared, shared);
    assert_int_equal(vm[0].nreq, 0);
    pshare_set_enabled(true);
}

/* ---------------------------------------------------------------- the random model */

static uint8_t model[NVM][NPAGES][PAGE_SIZE / 64]; /* one byte per 64-byte line */

static void model_write(unsigned i, uint32_t pfn, unsigned line, uint8_t b, bool dma)
{
    uint8_t buf[64];
    memset(buf, b, sizeof(buf));
    uint32_t gpa = pfn * PAGE_SIZE + line * 64, hpa;
    if (dma) { /* a device: the writable lookup, then the frame itself */
        assert_int_equal(gmem_gpa_to_hpa_w(&vm[i], gpa, &hpa), 0);
        memcpy((void *)(uintptr_t)hpa, buf, sizeof(buf));
    } else {
        assert_int_equal(gmem_write(&vm[i], gpa, buf, sizeof(buf)), 0);
    }
    model[i][pfn][line] = b;
}

static void model_fill(unsigned i, uint32_t pfn, uint8_t b)
{
    for (unsigned l = 0; l < PAGE_SIZE / 64; l++)
        model_write(i, pfn, l, b, false);
}

static uint8_t lines[4][64]; /* line of each byte value the model writes */

static void model_check(void)
{
    uint32_t refs = 0;
    for (unsigned i = 0; i < NVM; i++) {
        uint32_t nshared = 0;
        for (uint32_t p = 0; p < NPAGES; p++) {
            const uint8_t *page = (const uint8_t *)(uintptr_t)frame_of(i, p);
            for (unsigned l = 0; l < PAGE_SIZE / 64; l++)
                if (memcmp(page + l * 64, lines[model[i][p][l]], 64))
                    fail_msg("vm %u page %u line %u: not the %02x it wrote", i, p, l, model[i][p][l]);
            nshared += is_shared(i, p);
        }
        assert_int_equal(nshared, vm[i].nshared);
        refs += nshared;
    }
    struct pshare_stats st;
    pshare_get_stats(&st);
    assert_int_equal(st.refs, refs);
    assert_int_equal(frames_out, (long)NVM * NPAGES - refs + st.frames);
}

static void test_random_model(void **state)
{
    srand(15);
    for (unsigned b = 0; b < 4; b++)
        memset(lines[b], b, 64);
    for (unsigned i = 0; i < NVM; i++) {
        vm_make(i, NPAGES);
        for (uint32_t p = 0; p < NPAGES; p++)
            model_fill(i, p, (uint8_t)(rand() % 4)); /* four contents: many duplicates */
    }
    struct pshare_stats st;
    uint32_t max_refs = 0;
    for (unsigned step = 0; step < 8000; step++) {
        unsigned i = (unsigned)rand() % NVM, what = (unsigned)rand() % 100;
        uint32_t pfn = (uint32_t)rand() % NPAGES;
        if (what < 30) {
            model_write(i, pfn, (unsigned)rand() % (PAGE_SIZE / 64), (uint8_t)(rand() % 4), false);
        } else if (what < 40) {
            model_write(i, pfn, (unsigned)rand() % (PAGE_SIZE / 64), (uint8_t)(rand() % 4), true);
        } else if (what < 50) {
            model_fill(i, pfn, (uint8_t)(rand() % 4)); /* back to a common content */
        } else if (what < 85) {
            for (unsigned n = (unsigned)rand() % 48; n; n--)
                gmem_scan_page(&vm[i], i);
        } else if (what < 99) {
            gmem_share_apply(&vm[i]);
        } else { /* destroy and make again */
            gmem_free(&vm[i]);
            vm_make(i, NPAGES);
            for (uint32_t p = 0; p < NPAGES; p++)
                model_fill(i, p, (uint8_t)(rand() % 4));
        }
        model_check();
        pshare_get_stats(&st);
        max_refs = st.refs > max_refs ? st.refs : max_refs;
    }
    print_message("random model: %u merges, %u promotions, %u unshares, %u reclaimed, at most %u pages shared\n",
                  st.merges, st.promotions, st.unshares, st.reclaimed, max_refs);
    /* The run must have exercised sharing, not only writes. */
    assert_true(st.merges > 500 && st.unshares > 500 && st.reclaimed > 50 && max_refs > NVM * NPAGES / 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_share_across_and_within, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_unshares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_reference_keeps_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_unshares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_respects_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unshare_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_collision_never_shares, setup, teardown),
        cmocka_unit_test(test_hash_single_words),
        cmocka_unit_test_setup_teardown(test_share_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
