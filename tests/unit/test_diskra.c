/*
 * Unit tests for vmm/diskra.c: sequential read-ahead bookkeeping.
 *
 * The coherence test runs the window against a model of the disk: every
 * sector has a version, bumped by each write; a fill captures the versions
 * its DMA could have read (any moment between its begin and its end, so a
 * write in between makes it unknowable, which the window must then not
 * trust), and every read the window serves must return the sectors'
 * current versions. Writes, reads, fills begun and ended are interleaved
 * at random, as the vCPU thread (writes) and the I/O thread (reads,
 * fills) interleave them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/diskra.h"

#define DISK 4096u /* sectors of the model disk */

static uint32_t rs = 0x5eed1234u;
static uint32_t rnd(void) { rs ^= rs << 13, rs ^= rs >> 17, rs ^= rs << 5; return rs; }

/* A sequential stream: the first read plans nothing (no stream yet), the
 * second plans the window right after it; reads inside the window hit;
 * the next fill comes once less than half a window is left ahead. */
static void test_sequential(void **state)
{
    struct diskra ra;
    uint64_t start;
    uint32_t n, off;
    diskra_init(&ra, DISK);
    assert_false(diskra_lookup(&ra, 0, 256, &off));
    assert_false(diskra_plan(&ra, 0, 256, &start, &n));
    assert_true(diskra_plan(&ra, 256, 256, &start, &n));
    assert_true(start == 512 && n == DISKRA_SECTORS);
    diskra_fill_begin(&ra, start, n);
    assert_false(diskra_plan(&ra, 512, 256, &start, &n)); /* one fill at a time */
    assert_true(diskra_fill_end(&ra, 0));
    assert_true(diskra_lookup(&ra, 768, 256, &off));       /* the read at 512 went to the disk meanwhile */
    assert_int_equal(off, 256);
    assert_false(diskra_lookup(&ra, 960, 128, &off));      /* passes the window's end: a miss */
    /* After the read at 768 the window holds nothing ahead: fill again. */
    assert_true(diskra_plan(&ra, 768, 256, &start, &n));
    assert_true(start == 1024 && n == DISKRA_SECTORS);
    diskra_fill_begin(&ra, start, n);
    assert_true(diskra_fill_end(&ra, 0));
    assert_true(diskra_lookup(&ra, 1024, 256, &off) && off == 0);
    assert_false(diskra_plan(&ra, 1024, 256, &start, &n));  /* 256 still ahead in the window */
    assert_true(diskra_lookup(&ra, 1280, 256, &off) && off == 256);
    assert_true(diskra_plan(&ra, 1280, 256, &start, &n) && start == 1536);
    assert_int_equal(ra.st.hits, 3);
    assert_int_equal(ra.st.fills, 2);
}

/* No fill passes the disk's end; none is planned at it; a failed fill
 * leaves the window empty. */
static void test_disk_end(void **state)
{
    struct diskra ra;
    uint64_t start;
    uint32_t n, off;
    diskra_init(&ra, 1000);
    diskra_plan(&ra, 500, 100, &start, &n);
    assert_true(diskra_plan(&ra, 600, 100, &start, &n));
    assert_true(start == 700 && n == 300);
    diskra_fill_begin(&ra, start, n);
    assert_false(diskra_fill_end(&ra, -5));
    assert_false(diskra_lookup(&ra, 700, 100, &off));
    assert_true(diskra_plan(&ra, 700, 300, &start, &n) == false); /* at the end: nothing to read */
}

/* A write overlapping the valid window drops it; one overlapping a fill in
 * flight makes the fill's data stale; writes elsewhere change nothing. */
static void test_write_coherence(void **state)
{
    struct diskra ra;
    uint64_t start;
    uint32_t n, off;
    diskra_init(&ra, DISK);
    diskra_plan(&ra, 0, 8, &start, &n);
    assert_true(diskra_plan(&ra, 8, 8, &start, &n));
    diskra_fill_begin(&ra, start, n);
    diskra_write(&ra, 4000, 8);                /* elsewhere */
    assert_true(diskra_fill_end(&ra, 0));
    diskra_write(&ra, 0, 16);                  /* just before the window */
    assert_true(diskra_lookup(&ra, 16, 8, &off));
    diskra_write(&ra, 16 + DISKRA_SECTORS - 1, 1); /* its last sector */
    assert_false(diskra_lookup(&ra, 16, 8, &off));
    assert_true(diskra_plan(&ra, 16, 8, &start, &n) == false || start == 24);
    diskra_init(&ra, DISK);
    diskra_plan(&ra, 0, 8, &start, &n);
    assert_true(diskra_plan(&ra, 8, 8, &start, &n));
    diskra_fill_begin(&ra, start, n);
    diskra_write(&ra, 100, 1);                 /* while the drive reads it */
    assert_false(diskra_fill_end(&ra, 0));
    assert_false(diskra_lookup(&ra, 100, 1, &off));
    assert_int_equal(ra.st.stale, 1);
}

/* Model: versions of each sector now, and of the window's copy. */
static uint32_t version[DISK];
static uint32_t window[DISKRA_SECTORS];

/* Random reads (sequential runs and jumps), writes, and fills that begin
 * and end around them: a hit always returns the current versions. */
static void test_model(void **state)
{
    struct diskra ra;
    uint64_t next = 0, fill_start = 0;
    uint32_t fill_n = 0, hits = 0, fills = 0, off;
    bool filling = false, fill_clean = false;
    memset(version, 0, sizeof version);
    diskra_init(&ra, DISK);
    for (unsigned step = 0; step < 200000; step++) {
        uint32_t op = rnd() % 10;
        if (op < 2) {                          /* a guest write */
            uint64_t s = rnd() % DISK;
            uint32_t c = 1 + rnd() % (uint32_t)(DISK - s < 64 ? DISK - s : 64);
            for (uint32_t i = 0; i < c; i++)
                version[s + i]++;
            if (filling && s < fill_start + fill_n && fill_start < s + c)
                fill_clean = false;            /* the drive may have read either version */
            diskra_write(&ra, s, c);
        } else if (op < 3 && filling) {        /* the fill in flight ends */
            bool kept = diskra_fill_end(&ra, rnd() % 50 == 0 ? -5 : 0);
            assert_true(!kept || fill_clean);
            filling = false;
            fills += kept;
        } else {                               /* a guest read, usually continuing the last one */
            uint64_t s = rnd() % 4 ? next : rnd() % DISK;
            uint32_t c = 1 + rnd() % 256;
            if (s + c > DISK)
                s = 0;
            next = s + c;
            if (diskra_lookup(&ra, s, c, &off)) {
                hits++;
                assert_true(off + c <= DISKRA_SECTORS);
                for (uint32_t i = 0; i < c; i++)
                    assert_int_equal(window[off + i], version[s + i]);
            }
            uint64_t st;
            uint32_t n;
            if (diskra_plan(&ra, s, c, &st, &n)) {
                assert_false(filling);
                assert_true(n > 0 && n <= DISKRA_SECTORS && st + n <= DISK && st == s + c);
                diskra_fill_begin(&ra, st, n);
                for (uint32_t i = 0; i < n; i++)
                    window[i] = version[st + i]; /* what the drive reads if nothing is written meanwhile */
                filling = fill_clean = true;
                fill_start = st, fill_n = n;
            }
        }
    }
    assert_true(hits > 1000 && fills > 100); /* the model did exercise the window */
}

/* A guest reading everywhere (no read continuing the last) gets no fill at
 * all; one reading sequentially in tiny pieces gets one fill per half
 * window of progress, never more. */
static void test_hostile_bounds(void **state)
{
    struct diskra ra;
    uint64_t start, prev = UINT64_MAX;
    uint32_t n;
    diskra_init(&ra, DISK * 16);
    for (unsigned i = 0; i < 100000; i++) {
        uint64_t s = rnd() % (DISK * 16 - 8);
        if (s == prev)
            continue;
        assert_false(diskra_plan(&ra, s, 1 + rnd() % 8, &start, &n) && s == prev);
        prev = s;
    }
    diskra_init(&ra, DISK * 16);
    unsigned planned = 0;
    for (uint64_t s = 0; s + 1 < DISK * 16; s++) {
        if (diskra_plan(&ra, s, 1, &start, &n)) {
            planned++;
            diskra_fill_begin(&ra, start, n);
            diskra_fill_end(&ra, 0);
        }
    }
    assert_true(planned <= DISK * 16 / (DISKRA_SECTORS / 2) + 1);
    assert_true(planned >= DISK * 16 / DISKRA_SECTORS - 1);
    /* Reads jumping around: the stream detector never fires. */
    diskra_init(&ra, DISK * 16);
    unsigned fired = 0;
    uint64_t last_end = UINT64_MAX;
    for (unsigned i = 0; i < 100000; i++) {
        uint64_t s = rnd() % (DISK * 16 - 8);
        uint32_t c = 1 + rnd() % 8;
        bool seq = s == last_end;
        if (diskra_plan(&ra, s, c, &start, &n)) {
            assert_true(seq);
            fired++;
        }
        last_end = s + c;
    }
    assert_true(fired < 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential),
        cmocka_unit_test(test_disk_end),
        cmocka_unit_test(test_write_coherence),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_hostile_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
