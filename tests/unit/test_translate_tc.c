/*
 * Unit tests of the translation cache alone (bt/tc.c): lookup, flush on
 * full, chaining and unchaining of exit stubs, page invalidation, the IBL
 * table and the TC-address -> guest-EIP map. No code is executed here
 * (test_translate.c runs translated code).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "bt/tc.h"
#include "kernel/kernel.h"

static uint8_t code[64 * 1024] __attribute__((aligned(16)));
static uint32_t meta[64 * 1024 / 4];
static struct bt_vcpu vcpu;
static struct tc tc;

static int setup(void **state)
{
    assert_int_equal(tc_init(&tc, code, sizeof(code), meta, sizeof(meta), &vcpu), 0);
    static const uint8_t head[5] = { 0xC7, 0xC7, 0xC7, 0xC7, 0xC7 }; /* fake_block's stubs */
    tc_set_stub_head(&tc, head);
    return 0;
}

/* A fake block of ninsns instructions of 2 guest bytes and 10 TC bytes each,
 * with one 16-byte exit stub at the end (looks like a translator's). */
static struct tc_block *fake_block(uint32_t eip, uint16_t ninsns, struct bt_exit **exit_out)
{
    struct tc_block *b = tc_begin_block(&tc, eip);
    for (uint16_t i = 0; i < ninsns; i++) {
        b->imap[i].tca_off = (uint16_t)(10 * i);
        b->imap[i].eip_off = (uint16_t)(2 * i);
        b->imap[i].flags = 0;
    }
    b->ninsns = ninsns;
    b->guest_len = 2u * ninsns;
    b->page[0] = eip & ~0xFFFu;
    b->page[1] = (eip + b->guest_len - 1) & ~0xFFFu;
    struct bt_exit *e = tc_alloc_exit(&tc);
    e->reason = BT_EXIT_BRANCH;
    e->from = b;
    e->stub_tca = b->tca + 10u * ninsns;
    memset(e->stub_tca, 0xC7, 16);
    b->body_len = 10u * ninsns + 16;
    tc_commit_block(&tc, b);
    if (exit_out)
        *exit_out = e;
    return b;
}

static void test_lookup_and_flush(void **state)
{
    tc_flush(&tc);
    struct tc_block *a = fake_block(0x1000, 3, NULL), *b = fake_block(0x2000, 3, NULL);
    assert_ptr_equal(tc_lookup(&tc, 0x1000), a);
    assert_ptr_equal(tc_lookup(&tc, 0x2000), b);
    assert_null(tc_lookup(&tc, 0x1002));
    uint32_t gen = tc.generation;
    tc_flush(&tc);
    assert_null(tc_lookup(&tc, 0x1000));
    assert_int_equal(tc.generation, gen + 1);
}

/* Blocks that share a hash bucket (the bucket is the low 12 bits of
 * eip ^ eip >> 12: page 0x100 * k at offset 0x100 * k ^ 0x55 is bucket
 * 0x55 for every k) are all found whatever the order of lookups, the one
 * looked up moves to the front, and a removed one is gone without losing
 * the others. */
static void test_lookup_same_bucket(void **state)
{
    tc_flush(&tc);
    struct tc_block *blk[4];
    const uint32_t h = 0x55;
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t page = 0x100u * (i + 1);
        blk[i] = fake_block(page << 12 | (page ^ h), 2, NULL);
    }
    assert_ptr_equal(tc.hash[h], blk[3]); /* the last committed is first */
    static const unsigned order[] = { 0, 2, 0, 1, 3, 1, 2 };
    for (unsigned k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        struct tc_block *b = blk[order[k]];
        assert_ptr_equal(tc_lookup(&tc, b->guest_eip), b);
        assert_ptr_equal(tc.hash[h], b);
    }
    for (uint32_t i = 0; i < 4; i++)
        assert_ptr_equal(tc_lookup(&tc, blk[i]->guest_eip), blk[i]);
    unsigned n = 0;
    for (struct tc_block *b = tc.hash[h]; b; b = b->hash_next)
        n++;
    assert_int_equal(n, 4);
    assert_int_equal(tc_invalidate_page(&tc, blk[1]->guest_eip), 1);
    assert_null(tc_lookup(&tc, blk[1]->guest_eip));
    for (uint32_t i = 0; i < 4; i++)
        if (i != 1)
            assert_ptr_equal(tc_lookup(&tc, blk[i]->guest_eip), blk[i]);
}

static void test_flush_when_full(void **state)
{
    tc_flush(&tc);
    uint32_t flushes = tc.stats.flushes;
    for (uint32_t i = 0; i < 2000; i++)
        fake_block(0x100000 + 64 * i, 4, NULL);
    assert_true(tc.stats.flushes > flushes);
    /* The last one survives the eviction it may have caused. */
    assert_non_null(tc_lookup(&tc, 0x100000 + 64 * 1999));
    assert_true(tc.nblocks <= tc.max_blocks);
}

static void test_chain_unchain(void **state)
{
    tc_flush(&tc);
    struct bt_exit *e;
    struct tc_block *from = fake_block(0x3000, 2, &e), *to = fake_block(0x4000, 2, NULL);
    tc_chain(&tc, e, to);
    assert_int_equal(e->stub_tca[0], 0xE9);
    int32_t rel;
    memcpy(&rel, e->stub_tca + 1, 4);
    assert_ptr_equal(e->stub_tca + 5 + rel, to->tca);
    assert_ptr_equal(to->in_links, e);
    /* Writing the target's page kills it and restores the stub. */
    assert_int_equal(tc_invalidate_page(&tc, 0x4abc), 1);
    assert_true(to->dead);
    assert_false(from->dead);
    assert_memory_equal(e->stub_tca, tc.stub_head, 5);
    assert_null(e->to);
    assert_null(tc_lookup(&tc, 0x4000));
    /* Chaining into a dead block is refused. */
    tc_chain(&tc, e, to);
    assert_null(e->to);
}

static void test_invalidate_straddling(void **state)
{
    tc_flush(&tc);
    struct tc_block *b = fake_block(0x5FFC, 4, NULL); /* 0x5FFC..0x6003 */
    assert_int_equal(b->page[1], 0x6000);
    assert_int_equal(tc_invalidate_page(&tc, 0x6000), 1);
    assert_int_equal(tc_invalidate_page(&tc, 0x5000), 0); /* already dead */
}

static void test_invalidate_bucket_sharing(void **state)
{
    tc_flush(&tc);
    /* 0x1000 and 0x401000 share a page bucket; 0x1FFC straddles into 0x2000. */
    struct tc_block *a = fake_block(0x1000, 2, NULL), *far = fake_block(0x401000, 2, NULL);
    struct tc_block *s = fake_block(0x1FFC, 4, NULL), *c = fake_block(0x2000, 2, NULL);
    assert_int_equal(tc_invalidate_page(&tc, 0x1000), 2);
    assert_true(a->dead && s->dead);
    assert_false(far->dead || c->dead);
    assert_int_equal(tc_invalidate_page(&tc, 0x2000), 1);
    assert_true(c->dead);
    assert_int_equal(tc_invalidate_page(&tc, 0x401000), 1);
    assert_true(far->dead);
    assert_int_equal(tc_invalidate_page(&tc, 0x1000), 0);
}

/*
 * A store the monitor emulated into translated code kills only the blocks
 * whose guest bytes it meets: their own, and the 15 after them that the
 * last instruction's decode may have read; the part of a block past its
 * first page is in its second from offset 0; guest_eip is offset by the
 * CS base given.
 */
static void test_invalidate_range(void **state)
{
    tc_flush(&tc);
    struct tc_block *a = fake_block(0x1100, 3, NULL); /* 0x1100..0x1105, decode slack to 0x1114 */
    assert_int_equal(tc_invalidate_range(&tc, 0x1000, 0x0FF, 1, 0), 0);  /* the byte before */
    assert_int_equal(tc_invalidate_range(&tc, 0x1000, 0x115, 4, 0), 0);  /* past the slack */
    assert_int_equal(tc_invalidate_range(&tc, 0x2000, 0x100, 1, 0), 0);  /* another page */
    assert_int_equal(tc_invalidate_range(&tc, 0x1000, 0x105, 0, 0), 0);  /* nothing stored */
    assert_false(a->dead);
    assert_int_equal(tc_invalidate_range(&tc, 0x1000, 0x114, 1, 0), 1);  /* the slack's last byte */
    assert_true(a->dead);
    a = fake_block(0x1100, 3, NULL);
    assert_int_equal(tc_invalidate_range(&tc, 0x1000, 0x0FE, 3, 0), 1);  /* ends on its first byte */
    a = fake_block(0x1100, 3, NULL);
    assert_int_equal(tc_invalidate_range(&tc, 0x1000, 0x105, 1, 0), 1);  /* its last byte */
    /* Two blocks on a page: a store meets one of them. */
    struct tc_block *lo = fake_block(0x3000, 2, NULL), *hi = fake_block(0x3800, 2, NULL);
    assert_int_equal(tc_invalidate_range(&tc, 0x3000, 0x801, 2, 0), 1);
    assert_true(hi->dead);
    assert_false(lo->dead);
    assert_ptr_equal(tc_lookup(&tc, 0x3000), lo);
    /* Across pages: 0x5FFC..0x6003, slack to 0x6012. */
    struct tc_block *s = fake_block(0x5FFC, 4, NULL);
    assert_int_equal(tc_invalidate_range(&tc, 0x5000, 0xFFB, 1, 0), 0);
    assert_int_equal(tc_invalidate_range(&tc, 0x6000, 0x013, 8, 0), 0);
    assert_false(s->dead);
    assert_int_equal(tc_invalidate_range(&tc, 0x6000, 0x012, 1, 0), 1);
    s = fake_block(0x5FFC, 4, NULL);
    assert_int_equal(tc_invalidate_range(&tc, 0x5000, 0xFFF, 1, 0), 1);
    /* Under a CS base of 0x80, guest_eip 0x7100 is linear 0x7180 (the
     * same page: fake_block takes its page from guest_eip). */
    fake_block(0x7100, 3, NULL);
    assert_int_equal(tc_invalidate_range(&tc, 0x7000, 0x100, 1, 0x80), 0);
    assert_int_equal(tc_invalidate_range(&tc, 0x7000, 0x180, 1, 0x80), 1);
}

/* The guest-EIP hash takes about a 64th of the metadata arena (a power of
 * two within TC_HASH_MIN..TC_HASH_MAX), the page hash follows it, and the
 * blocks come after both: a flush clears the tables, not the blocks'
 * metadata, and a block written never lands in a bucket. */
static void test_hash_in_meta(void **state)
{
    static uint32_t big[(4u << 20) / 4];
    struct tc t;
    assert_int_equal(tc_init(&t, code, sizeof(code), big, sizeof(big), &vcpu), 0);
    assert_int_equal(t.hash_mask + 1, TC_HASH_MAX);
    assert_ptr_equal(t.hash, (void *)big);
    assert_ptr_equal(t.page_hash, t.hash + TC_HASH_MAX);
    assert_true((uint8_t *)t.blocks >= (uint8_t *)(t.page_hash + TC_PAGE_BUCKETS));
    assert_int_equal(tc_init(&t, code, sizeof(code), big, 256u << 10, &vcpu), 0);
    assert_int_equal(t.hash_mask + 1, 1024); /* 256 KiB / 64 = 4 KiB of pointers */
    assert_int_equal(tc.hash_mask + 1, TC_HASH_MIN); /* setup's 64 KiB */
    /* More blocks than buckets are all found, and a flush forgets them. */
    tc_flush(&tc);
    uint32_t flushes = tc.stats.flushes, n = MIN(tc.max_blocks - 1, 2 * TC_HASH_MIN);
    assert_true(n > TC_HASH_MIN);
    for (uint32_t i = 0; i < n; i++)
        fake_block(0x10000 + 16 * i, 1, NULL);
    assert_int_equal(tc.stats.flushes, flushes);
    for (uint32_t i = 0; i < n; i++)
        assert_non_null(tc_lookup(&tc, 0x10000 + 16 * i));
    tc_flush(&tc);
    for (uint32_t b = 0; b <= tc.hash_mask; b++)
        assert_null(tc.hash[b]);
    assert_null(tc_lookup(&tc, 0x10000));
}

static void test_ibl_table(void **state)
{
    tc_flush(&tc);
    struct tc_block *b = fake_block(0x7010, 1, NULL);
    tc_ibl_insert(&tc, b);
    uint32_t *slot = vcpu.ibl[tc_ibl_slot(0x7010)];
    assert_int_equal(slot[0], bt_ibl_key(0x7010));
    assert_int_equal(slot[1], (uint32_t)(uintptr_t)b->tca);
    tc_invalidate_page(&tc, 0x7000);
    assert_int_equal(slot[0], bt_ibl_key(BT_IBL_EMPTY));
    assert_int_equal(slot[1], tc.ibl_miss_tca); /* a lookup racing with this still exits */
    /* Two eips with one first slot: the second goes to its other slot, and
     * both are found. */
    struct tc_block *x = fake_block(0xC8107010, 1, NULL), *y = fake_block(0xC8117010, 1, NULL);
    assert_int_equal(tc_ibl_slot(0xC8107010), tc_ibl_slot(0xC8117010));
    assert_int_not_equal(tc_ibl_slot2(0xC8117010), tc_ibl_slot(0xC8117010));
    tc_ibl_insert(&tc, x);
    tc_ibl_insert(&tc, y);
    assert_ptr_equal(tc_ibl_find(&tc, 0xC8107010), vcpu.ibl[tc_ibl_slot(0xC8107010)]);
    assert_ptr_equal(tc_ibl_find(&tc, 0xC8117010), vcpu.ibl[tc_ibl_slot2(0xC8117010)]);
    assert_int_equal(tc_ibl_find(&tc, 0xC8117010)[1], (uint32_t)(uintptr_t)y->tca);
    b = fake_block(0x8010, 1, NULL);
    tc_ibl_insert(&tc, b);
    tc_flush(&tc);
    assert_int_equal(vcpu.ibl[tc_ibl_slot(0x8010)][0], bt_ibl_key(BT_IBL_EMPTY));
}

static void test_guest_eip_map(void **state)
{
    tc_flush(&tc);
    struct tc_block *a = fake_block(0x9000, 5, NULL), *b = fake_block(0xA000, 3, NULL);
    uint32_t eip;
    assert_int_equal(tc_lookup_guest_eip(&tc, (uint32_t)(uintptr_t)a->tca, &eip), 0);
    assert_int_equal(eip, 0x9000);
    assert_int_equal(tc_lookup_guest_eip(&tc, (uint32_t)(uintptr_t)a->tca + 29, &eip), 0);
    assert_int_equal(eip, 0x9004); /* inside the third instruction's expansion */
    assert_int_equal(tc_lookup_guest_eip(&tc, (uint32_t)(uintptr_t)b->tca + 20, &eip), 0);
    assert_int_equal(eip, 0xA004);
    assert_int_equal(tc_lookup_guest_eip(&tc, (uint32_t)(uintptr_t)code + sizeof(code) - 1, &eip),
                     E_NOENT);
    assert_int_equal(tc_lookup_guest_eip(&tc, 0x10, &eip), E_NOENT);
    /* Invalidated blocks still answer (the monitor may map after invalidating). */
    tc_invalidate_page(&tc, 0x9000);
    assert_int_equal(tc_lookup_guest_eip(&tc, (uint32_t)(uintptr_t)a->tca + 12, &eip), 0);
    assert_int_equal(eip, 0x9002);
}

/* Where a host interrupt may leave translated code, and how it stops a block. */
static void test_interrupt_exits(void **state)
{
    tc_flush(&tc);
    struct bt_exit *ea, *ec;
    struct tc_block *a = fake_block(0x5000, 4, &ea), *b = fake_block(0x6000, 2, NULL);
    struct tc_block *c = fake_block(0x7000, 2, &ec);
    uint32_t eip, atca = (uint32_t)(uintptr_t)a->tca;
    tc_chain(&tc, ea, b);
    tc_chain(&tc, ec, b);
    tc_ibl_insert(&tc, b);

    assert_int_equal(tc_insn_boundary(&tc, atca, &eip), 0);
    assert_int_equal(eip, 0x5000);
    assert_int_equal(tc_insn_boundary(&tc, atca + 30, &eip), 0);
    assert_int_equal(eip, 0x5006);
    assert_int_equal(tc_insn_boundary(&tc, atca + 15, &eip), E_NOENT); /* inside an expansion */
    assert_int_equal(tc_insn_boundary(&tc, atca + 40, &eip), E_NOENT); /* the exit stub */
    assert_int_equal(tc_insn_boundary(&tc, 0x10, &eip), E_NOENT);
    a->imap[2].flags = TC_IMAP_IRQ_SHADOW;                                /* right after STI */
    assert_int_equal(tc_insn_boundary(&tc, atca + 20, &eip), E_NOENT);

    /* Stopping a: its own chained exit goes back to the dispatcher, c's stays. */
    assert_int_equal(tc_stop_block_at(&tc, atca + 15), 0);
    assert_null(ea->to);
    assert_memory_equal(ea->stub_tca, tc.stub_head, 5);
    assert_ptr_equal(ec->to, b);
    assert_ptr_equal(b->in_links, ec);
    assert_null(ec->next_in);
    assert_int_equal(ec->stub_tca[0], 0xE9);
    assert_int_equal(vcpu.ibl[tc_ibl_slot(0x6000)][0], bt_ibl_key(0x6000)); /* the lookup table is left alone */
    /* An address in a block's stubs stops that block; outside every block: no. */
    assert_int_equal(tc_stop_block_at(&tc, (uint32_t)(uintptr_t)ec->stub_tca + 2), 0);
    assert_null(ec->to);
    assert_null(b->in_links);
    assert_false(c->dead);
    assert_int_equal(tc_stop_block_at(&tc, 0x10), E_NOENT);
}

/* In TC t, a block of n bytes (one instruction) ending in a jump to the
 * lookup stub, committed and placed (tc_ibl_place) as bt_translate does. */
static struct tc_block *ibl_block(struct tc *t, uint32_t eip, uint32_t n)
{
    struct tc_block *b = tc_begin_block(t, eip);
    b->imap[0] = (struct tc_imap){ 0 };
    b->ninsns = 1;
    b->guest_len = 1;
    b->page[0] = b->page[1] = eip & ~0xFFFu;
    b->body_len = (uint16_t)n;
    memset(b->tca, 0x90, n - 5);
    b->tca[n - 5] = 0xE9;
    uint32_t disp = (uint32_t)((uintptr_t)t->ibl_stub - (uintptr_t)(b->tca + n));
    memcpy(b->tca + n - 4, &disp, 4);
    b->ibl_jmp = (uint16_t)(n - 4);
    tc_commit_block(t, b);
    tc_ibl_place(t, b);
    return b;
}

/* tc_ibl_place: a block's jump to the lookup stub goes to a copy of the
 * stub in the page of that jump, placed right after the first such block
 * of the page; the page's next block jumps to the same copy; a page
 * without room after its block keeps the jump at the stub itself; a flush
 * drops the copies; tc_ibl_stub_at finds the stub and each copy by any
 * address in them, and nothing else. */
static void test_ibl_copies(void **state)
{
    static uint8_t arena[6 * 4096] __attribute__((aligned(4096)));
    static uint32_t meta2[32 * 1024];
    static struct tc t;
    assert_int_equal(tc_init(&t, arena, sizeof(arena), meta2, sizeof(meta2), &vcpu), 0);
    uint8_t *stub = tc_reserve_code(&t, 64);
    for (unsigned i = 0; i < 64; i++)
        stub[i] = (uint8_t)i;
    tc_set_ibl_stop(&t, stub, 48, 20);
    struct tc_block *a = ibl_block(&t, 0x1000, 100), *b = ibl_block(&t, 0x2000, 100);
    uint8_t *copy = tc_ibl_jmp_target(a);
    assert_ptr_equal(copy, a->tca + 112);                   /* right after a, 16-byte aligned */
    assert_memory_equal(copy, stub, 48);
    assert_ptr_equal(tc_ibl_jmp_target(b), copy);                   /* b is in the same page */
    assert_true(b->tca > copy);
    assert_int_equal(t.stats.ibl_copies, 1);
    assert_ptr_equal(tc_ibl_stub_at(&t, (uint32_t)(uintptr_t)stub + 47), stub);
    assert_ptr_equal(tc_ibl_stub_at(&t, (uint32_t)(uintptr_t)copy), copy);
    assert_ptr_equal(tc_ibl_stub_at(&t, (uint32_t)(uintptr_t)copy + 47), copy);
    assert_null(tc_ibl_stub_at(&t, (uint32_t)(uintptr_t)copy + 48));
    assert_null(tc_ibl_stub_at(&t, (uint32_t)(uintptr_t)a->tca));
    /* A block filling page 0 (its jump there: the page's copy), then one
     * of 4,080 bytes filling page 1 but 16: no room for a copy after it,
     * so its jump stays at the stub. */
    uint8_t *page1 = arena + 4096;
    struct tc_block *f = ibl_block(&t, 0x2800, (uint32_t)(page1 - (t.code + t.code_used)));
    assert_ptr_equal(tc_ibl_jmp_target(f), copy);
    struct tc_block *c = ibl_block(&t, 0x3000, 4080);
    assert_ptr_equal(c->tca, page1);
    assert_ptr_equal(tc_ibl_jmp_target(c), stub);
    assert_int_equal(t.stats.ibl_copies, 1);
    /* The next block's jump is in page 2, which gets its own copy; a
     * stopped block's jump goes to its copy's miss path and comes back. */
    struct tc_block *d = ibl_block(&t, 0x4000, 100);
    assert_true((uintptr_t)(d->tca + d->ibl_jmp) >= (uintptr_t)page1 + 4096);
    assert_ptr_not_equal(tc_ibl_jmp_target(d), copy);
    assert_int_equal(t.stats.ibl_copies, 2);
    assert_ptr_equal(tc_ibl_stub_at(&t, (uint32_t)(uintptr_t)tc_ibl_jmp_target(d)), tc_ibl_jmp_target(d));
    uint8_t *dcopy = tc_ibl_jmp_target(d);
    assert_int_equal(tc_stop_block_at(&t, (uint32_t)(uintptr_t)d->tca), 0);
    assert_ptr_equal(tc_ibl_jmp_target(d), dcopy + 20);
    tc_restore_stopped(&t);
    assert_ptr_equal(tc_ibl_jmp_target(d), dcopy);
    assert_int_equal(t.ibl_copies_live, 2);
    tc_flush(&t);
    assert_int_equal(t.ibl_copies_live, 0);   /* vm info's "in use since the last flush" */
    assert_int_equal(t.stats.ibl_copies, 2);  /* ... and its count since the start */
    assert_null(tc_ibl_stub_at(&t, (uint32_t)(uintptr_t)copy));
    assert_ptr_equal(tc_ibl_stub_at(&t, (uint32_t)(uintptr_t)stub), stub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_and_flush), cmocka_unit_test(test_lookup_same_bucket),
        cmocka_unit_test(test_flush_when_full),
        cmocka_unit_test(test_chain_unchain),    cmocka_unit_test(test_invalidate_straddling),
        cmocka_unit_test(test_invalidate_bucket_sharing), cmocka_unit_test(test_invalidate_range), cmocka_unit_test(test_hash_in_meta),
        cmocka_unit_test(test_ibl_table),        cmocka_unit_test(test_guest_eip_map),
        cmocka_unit_test(test_interrupt_exits), cmocka_unit_test(test_ibl_copies),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
