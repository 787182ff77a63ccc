/*
 * Unit tests for drivers/ata_prd.c: PRD tables from scatter-gather lists.
 * Each table is checked the way the bus master would use it (SFF-8038i
 * rev 1.0 §3.2): walking its entries up to EOT must give back exactly the
 * list's bytes from pos on, in order, in whole sectors, with no entry
 * longer than 64 KiB or crossing a 64 KiB boundary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "drivers/ata_prd.h"

#define UNIT 512u
#define MAX_PIECES 64
#define BIG_TABLE 8192u

static uint32_t prd[2 * BIG_TABLE];

/* The byte at offset x of the list's stream, as a host-physical address. */
static uint32_t stream_hpa(const struct dma_seg *sg, unsigned n, uint64_t x)
{
    for (unsigned i = 0; i < n; i++) {
        if (x < sg[i].len)
            return sg[i].hpa + (uint32_t)x;
        x -= sg[i].len;
    }
    fail_msg("offset past the list");
    return 0;
}

/* Walk the table as the bus master does; returns the bytes it moves, and
 * checks each of them against the list's stream from pos. */
static uint32_t walk(unsigned max_entries, const struct dma_seg *sg, unsigned n, uint64_t pos)
{
    uint32_t moved = 0;
    for (unsigned e = 0;; e++) {
        assert_true(e < max_entries);
        uint32_t pa = prd[2 * e], w = prd[2 * e + 1];
        uint32_t len = (w & 0xFFFFu) ? (w & 0xFFFFu) : 0x10000u;
        assert_int_equal(w & ~(0xFFFFu | ATA_PRD_EOT), 0);
        assert_true((pa & 0xFFFFu) + len <= 0x10000u); /* no 64 KiB boundary crossed */
        /* Each entry is one run of the stream: its first and last byte
         * where the stream has them, and (pieces being contiguous runs)
         * every byte between. */
        assert_int_equal(pa, stream_hpa(sg, n, pos + moved));
        assert_int_equal(pa + len - 1, stream_hpa(sg, n, pos + moved + len - 1));
        moved += len;
        if (w & ATA_PRD_EOT)
            return moved;
    }
}

static uint64_t list_bytes(const struct dma_seg *sg, unsigned n)
{
    uint64_t b = 0;
    for (unsigned i = 0; i < n; i++)
        b += sg[i].len;
    return b;
}

/* One table against the model: covers min(max_bytes, what is left),
 * rounded down to whole units, when entries do not run out. */
static void check(const struct dma_seg *sg, unsigned n, uint64_t pos, uint32_t max_bytes, unsigned max_entries)
{
    uint32_t got = ata_prd_fill(prd, max_entries, sg, n, pos, max_bytes, UNIT);
    uint64_t left = list_bytes(sg, n) - pos;
    uint64_t want = (left < max_bytes ? left : max_bytes) / UNIT * UNIT;
    assert_int_equal(got % UNIT, 0);
    assert_true(got <= want);
    if (max_entries >= BIG_TABLE)
        assert_int_equal(got, want);
    if (got)
        assert_int_equal(walk(max_entries, sg, n, pos), got);
}

static void test_one_piece_splits_at_64k(void **state)
{
    /* 8 KiB starting 4 KiB below a 64 KiB boundary: two entries of 4 KiB. */
    struct dma_seg sg[] = { { 0x1000F000u, 0x2000 } };
    assert_int_equal(ata_prd_fill(prd, 16, sg, 1, 0, 1u << 20, UNIT), 0x2000);
    assert_int_equal(prd[0], 0x1000F000u);
    assert_int_equal(prd[1], 0x1000);
    assert_int_equal(prd[2], 0x10010000u);
    assert_int_equal(prd[3], 0x1000 | ATA_PRD_EOT);
}

static void test_full_64k_entry_is_zero(void **state)
{
    struct dma_seg sg[] = { { 0x00200000u, 0x10000 } };
    assert_int_equal(ata_prd_fill(prd, 16, sg, 1, 0, 1u << 20, UNIT), 0x10000);
    assert_int_equal(prd[0], 0x00200000u);
    assert_int_equal(prd[1], ATA_PRD_EOT); /* count 0 = 64 KiB */
}

static void test_cut_to_whole_sectors(void **state)
{
    /* 1000 bytes then 10: only the first 512 fit in whole sectors; the
     * 10-byte entry goes, the first is cut. */
    struct dma_seg sg[] = { { 0x3000u, 1000 }, { 0x9000u, 10 } };
    assert_int_equal(ata_prd_fill(prd, 16, sg, 2, 0, 1u << 20, UNIT), 512);
    assert_int_equal(prd[1], 512 | ATA_PRD_EOT);
    /* The cut reaches back across a whole entry: 300 + 300 + 300 bytes. */
    struct dma_seg sg3[] = { { 0x3000u, 300 }, { 0x5000u, 300 }, { 0x7000u, 300 } };
    assert_int_equal(ata_prd_fill(prd, 16, sg3, 3, 0, 1u << 20, UNIT), 512);
    assert_int_equal(prd[1], 300);
    assert_int_equal(prd[3], 212 | ATA_PRD_EOT);
}

static void test_max_bytes_and_pos(void **state)
{
    struct dma_seg sg[] = { { 0x10000u, 4096 }, { 0x40000u, 4096 }, { 0x80000u, 4096 } };
    /* 6 KiB from 3 KiB in: the rest of piece 0, all of 1, 1 KiB of 2. */
    assert_int_equal(ata_prd_fill(prd, 16, sg, 3, 3072, 6144, UNIT), 6144);
    assert_int_equal(prd[0], 0x10000u + 3072);
    assert_int_equal(prd[1], 1024);
    assert_int_equal(prd[2], 0x40000u);
    assert_int_equal(prd[3], 4096);
    assert_int_equal(prd[4], 0x80000u);
    assert_int_equal(prd[5], 1024 | ATA_PRD_EOT);
    /* Nothing left from the end on. */
    assert_int_equal(ata_prd_fill(prd, 16, sg, 3, 3 * 4096, 6144, UNIT), 0);
}

static void test_tiny_pieces_run_out_of_entries(void **state)
{
    /* 2-byte pieces: one sector needs 256 entries. */
    static struct dma_seg sg[300];
    for (unsigned i = 0; i < 300; i++)
        sg[i] = (struct dma_seg){ 0x100000u + 16 * i, 2 };
    assert_int_equal(ata_prd_fill(prd, 255, sg, 300, 0, 1u << 20, UNIT), 0);
    assert_int_equal(ata_prd_fill(prd, 256, sg, 300, 0, 1u << 20, UNIT), 512);
    assert_int_equal(walk(256, sg, 300, 0), 512);
}

static void test_random_lists(void **state)
{
    static struct dma_seg sg[MAX_PIECES];
    srand(8038);
    for (int round = 0; round < 20000; round++) {
        unsigned n = 1 + (unsigned)rand() % MAX_PIECES;
        for (unsigned i = 0; i < n; i++) {
            /* Even addresses, often near 64 KiB boundaries; even lengths up to 192 KiB. */
            uint32_t base = ((uint32_t)rand() << 16) & 0xFFF00000u;
            uint32_t off = (rand() & 1) ? 0x10000u - 2u * (uint32_t)(rand() % 2048) : 2u * (uint32_t)(rand() % 0x8000);
            uint32_t len = 2u * (1u + (uint32_t)rand() % ((rand() & 3) ? 2048 : 98304));
            sg[i] = (struct dma_seg){ base + off, len };
        }
        uint64_t bytes = list_bytes(sg, n);
        uint64_t pos = (rand() & 1) ? 0 : (uint64_t)(rand() % (int)bytes);
        uint32_t max_bytes = UNIT * (1u + (uint32_t)rand() % 4096);
        check(sg, n, pos, max_bytes, BIG_TABLE);
        check(sg, n, pos, max_bytes, 1 + (unsigned)rand() % 40);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_piece_splits_at_64k),
        cmocka_unit_test(test_full_64k_entry_is_zero),
        cmocka_unit_test(test_cut_to_whole_sectors),
        cmocka_unit_test(test_max_bytes_and_pos),
        cmocka_unit_test(test_tiny_pieces_run_out_of_entries),
        cmocka_unit_test(test_random_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
