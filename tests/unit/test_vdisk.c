/*
 * A VM's disks (vmm/vdisk.c) and redo logs (vmm/redo.c), on the host: the
 * kernel's frame allocator, kmap and the disk registry are stubbed with
 * plain memory; a partition of 101 sectors (not a whole number of chunks)
 * sits between guard sectors on a fake disk.
 *   - disk= parsing: modes, redo=, errors;
 *   - sharing rules (vdisk_conflict) for every pair of modes, partition
 *     against whole disk;
 *   - nonpersistent and undoable against a model: 20,000 random writes and
 *     reads of random ranges (chunk-straddling, the partial last chunk);
 *     the partition unchanged until commit, equal to the model after it;
 *     discard brings the partition back; guards never touched;
 *   - a full log: E_NOSPC, the chunks already held still read back.
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
#include "kernel/paging.h"
#include "mgmt/cmd.h"
#include "vmm/redo.h"
#include "vmm/vdisk.h"
#include "vmm/vm.h"

/* ---------------------------------------------------------------- stubs of the kernel */

#define PART_START 40u
#define PART_SECT  101u
#define DISK_SECT  200u

static uint8_t disk_bytes[DISK_SECT * 512];
static struct partition parts[2] = {
    { .index = 1, .start_lba = PART_START, .sectors = PART_SECT },
    { .index = 2, .start_lba = PART_START + PART_SECT, .sectors = 30 },
};
static struct disk fake_disk = { .name = "ata0", .sectors = DISK_SECT, .sector_size = 512, .nparts = 2, .parts = parts };
struct vm *vms[VM_MAX];
static unsigned long frames_out;

void *kzalloc(size_t n) { return calloc(1, n); }
void kfree(void *p) { free(p); }
int frame_alloc(enum pmm_zone z, uint32_t n, uint32_t *pa)
{
    void *p = aligned_alloc(4096, 4096);
    *pa = (uint32_t)(uintptr_t)p;
    frames_out++;
    return p ? 0 : E_NOMEM;
}
void frame_free(uint32_t pa, uint32_t n) { free((void *)(uintptr_t)pa); frames_out--; }
int disk_lookup(const char *spec, struct disk **d, const struct partition **p)
{
    *d = &fake_disk;
    if (!strcmp(spec, "ata0"))
        *p = NULL;
    else if (!strcmp(spec, "ata0p1") || !strcmp(spec, "ata0p2"))
        *p = &parts[spec[5] - '1'];
    else
        return E_NOENT;
    return 0;
}
static uint64_t part_first(const struct partition *p) { return p ? p->start_lba : 0; }
static uint64_t part_size(const struct partition *p) { return p ? p->sectors : DISK_SECT; }
int disk_part_read(struct disk *d, const struct partition *p, uint64_t lba, uint32_t n, void *buf)
{
    assert_true(lba + n <= part_size(p));
    memcpy(buf, disk_bytes + (part_first(p) + lba) * 512, n * 512u);
    return 0;
}
int disk_part_write(struct disk *d, const struct partition *p, uint64_t lba, uint32_t n, const void *buf)
{
    assert_true(lba + n <= part_size(p));
    memcpy(disk_bytes + (part_first(p) + lba) * 512, buf, n * 512u);
    return 0;
}
static unsigned long cached_writes, flushes;
int disk_part_write_cached(struct disk *d, const struct partition *p, uint64_t lba, uint32_t n, const void *buf)
{
    cached_writes++;
    return disk_part_write(d, p, lba, n, buf);
}
int disk_flush(struct disk *d) { flushes++; return 0; }
/* Zero copy: records what reached the disk layer. */
static unsigned long sg_calls;
static bool sg_last_write, sg_last_flush;
static const struct partition *sg_last_part;
int disk_part_rw_sg(struct disk *d, const struct partition *p, uint64_t lba, uint32_t count,
                    const struct dma_seg *sg, unsigned n, bool write, bool flush)
{
    assert_true(lba + count <= part_size(p));
    sg_calls++;
    sg_last_write = write, sg_last_flush = flush, sg_last_part = p;
    return 0;
}
/* The read-ahead window's write hook (vmm/vdiskio.c): records the writes
 * reported to it. */
static unsigned long wrote_calls;
static uint64_t wrote_sector;
static uint32_t wrote_count;
void vdiskio_wrote(struct vdisk *d, uint64_t sector, uint32_t count)
{
    wrote_calls++;
    wrote_sector = sector, wrote_count = count;
}
int cmd_parse_size(const char *text, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text)
        return E_INVAL;
    *out = v << (*end == 'K' ? 10 : *end == 'M' ? 20 : 0);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static uint32_t rs = 0x2ed0106u;
static uint32_t rnd(void) { rs ^= rs << 13, rs ^= rs >> 17, rs ^= rs << 5; return rs; }

static void fill_disk(void)
{
    for (unsigned i = 0; i < sizeof disk_bytes; i++)
        disk_bytes[i] = (uint8_t)(i * 13 + 7);
}

static void test_parse(void **state)
{
    struct vdisk d;
    char err[128];
    assert_int_equal(vdisk_parse("ata0p1", &d, err, sizeof err), 0);
    assert_true(d.mode == VDISK_PERSISTENT && d.sectors == PART_SECT && d.first == PART_START && !d.readahead);
    assert_int_equal(vdisk_parse("ata0p1,readahead=on,readahead=off", &d, err, sizeof err), 0);
    assert_false(d.readahead);
    assert_int_equal(vdisk_parse("ata0p1,mode=undoable,redo=128K", &d, err, sizeof err), 0);
    assert_true(d.mode == VDISK_UNDOABLE && d.redo_cap == 128 * 1024);
    assert_int_equal(vdisk_parse("ata0,mode=nonpersistent", &d, err, sizeof err), 0);
    assert_true(d.mode == VDISK_NONPERSISTENT && !d.part && d.sectors == DISK_SECT);
    assert_int_equal(vdisk_parse("ata0p3", &d, err, sizeof err), E_NOENT);
    assert_int_equal(vdisk_parse("ata0p1,redo=1", &d, err, sizeof err), E_INVAL);
    assert_non_null(strstr(err, "at least 4K"));
    assert_int_equal(vdisk_parse("ata0p1,mode=wild", &d, err, sizeof err), E_INVAL);
    assert_non_null(strstr(err, "unknown disk option 'mode=wild'"));
    assert_int_equal(vdisk_parse("ata0p1,type=ide,mode=ro", &d, err, sizeof err), 0);
    assert_true(d.type == VDISK_IDE && d.mode == VDISK_RO);
    assert_int_equal(vdisk_parse("ata0p1,type=scsi", &d, err, sizeof err), E_INVAL);
    assert_non_null(strstr(err, "type=virtio|ide"));
    assert_int_equal(vdisk_parse(",mode=ro", &d, err, sizeof err), E_INVAL);
}

/* Every pair of modes on the same partition, and partition 1 against the
 * whole disk: writers are persistent and undoable. */
static void test_conflicts(void **state)
{
    static const char *const modes[] = { "persistent", "ro", "nonpersistent", "undoable" };
    static struct vm holder = { .name = "holder", .ndisks = 1 };
    struct vm newcomer = { .name = "new" };
    char spec[64], err[128];
    vms[0] = &holder;
    for (unsigned a = 0; a < 4; a++) {
        for (unsigned b = 0; b < 4; b++) {
            for (unsigned whole = 0; whole < 2; whole++) {
                struct vdisk d;
                snprintf(spec, sizeof spec, "ata0p1,mode=%s", modes[a]);
                assert_int_equal(vdisk_parse(spec, &holder.disks[0], err, sizeof err), 0);
                snprintf(spec, sizeof spec, "%s,mode=%s", whole ? "ata0" : "ata0p1", modes[b]);
                assert_int_equal(vdisk_parse(spec, &d, err, sizeof err), 0);
                bool writes_a = a == 0 || a == 3, writes_b = b == 0 || b == 3;
                const char *who = vdisk_conflict(&newcomer, &d, 0);
                if ((writes_a || writes_b) != (who != NULL))
                    fail_msg("%s held, %s%s asked: got %s", modes[a], whole ? "whole disk " : "", modes[b], who);
            }
        }
    }
    struct vdisk d;
    assert_int_equal(vdisk_parse("ata0p2", &d, err, sizeof err), 0);
    assert_null(vdisk_conflict(&newcomer, &d, 0)); /* the neighbour partition */
    vms[0] = NULL;
}

/* Random writes and reads against a model. */
static void model_run(enum vdisk_mode mode)
{
    struct vdisk d;
    char err[128];
    static uint8_t model[PART_SECT * 512], orig[sizeof disk_bytes], buf[PART_SECT * 512];
    assert_int_equal(vdisk_parse(mode == VDISK_UNDOABLE ? "ata0p1,mode=undoable" : "ata0p1,mode=nonpersistent", &d,
                                 err, sizeof err), 0);
    assert_int_equal(vdisk_open(&d), 0);
    fill_disk();
    memcpy(orig, disk_bytes, sizeof orig);
    memcpy(model, disk_bytes + PART_START * 512, sizeof model);
    for (int i = 0; i < 20000; i++) {
        uint32_t s = rnd() % PART_SECT, n = 1 + rnd() % MIN(20u, PART_SECT - s);
        if (rnd() & 1) {
            for (uint32_t k = 0; k < n * 512; k++)
                buf[k] = (uint8_t)rnd();
            assert_int_equal(vdisk_write(&d, s, n, buf, rnd() & 1), 0);
            memcpy(model + s * 512, buf, n * 512);
        } else {
            assert_int_equal(vdisk_read(&d, s, n, buf), 0);
            assert_memory_equal(buf, model + s * 512, n * 512);
        }
    }
    assert_memory_equal(orig, disk_bytes, sizeof orig);                 /* the partition untouched */
    assert_int_equal(vdisk_write(&d, PART_SECT, 1, buf, false), E_RANGE); /* past the end */
    if (mode == VDISK_UNDOABLE) {
        assert_int_equal(vdisk_commit(&d), 0);
        assert_memory_equal(disk_bytes + PART_START * 512, model, sizeof model);
        assert_memory_equal(orig, disk_bytes, PART_START * 512);       /* guards */
        assert_memory_equal(orig + (PART_START + PART_SECT) * 512, disk_bytes + (PART_START + PART_SECT) * 512,
                            sizeof orig - (PART_START + PART_SECT) * 512);
        assert_int_equal(d.redo->used, 0);
    } else {
        assert_int_equal(vdisk_commit(&d), E_INVAL);
        vdisk_power_on(&d);                                             /* a nonpersistent disk forgets */
        assert_int_equal(vdisk_read(&d, 0, PART_SECT, buf), 0);
        assert_memory_equal(buf, orig + PART_START * 512, PART_SECT * 512);
    }
    vdisk_close(&d);
    assert_int_equal(frames_out, 0);
}

static void test_nonpersistent(void **state) { model_run(VDISK_NONPERSISTENT); }
static void test_undoable(void **state) { model_run(VDISK_UNDOABLE); }

static void test_discard_and_full(void **state)
{
    struct vdisk d;
    char err[128];
    uint8_t buf[4096], back[4096];
    fill_disk();
    assert_int_equal(vdisk_parse("ata0p1,mode=undoable,redo=16K", &d, err, sizeof err), 0);
    assert_int_equal(vdisk_open(&d), 0);
    memset(buf, 0xAB, sizeof buf);
    for (uint32_t c = 0; c < 4; c++)
        assert_int_equal(vdisk_write(&d, c * 8 + 3, 1, buf, false), 0);        /* 4 chunks: the cap */
    assert_int_equal(vdisk_write(&d, 40, 1, buf, false), E_NOSPC);
    assert_int_equal(vdisk_write(&d, 3, 2, buf, false), 0);                    /* a held chunk still takes writes */
    assert_int_equal(vdisk_read(&d, 24, 8, back), 0);
    assert_memory_equal(back + 3 * 512, buf, 512);
    assert_memory_equal(back, disk_bytes + (PART_START + 24) * 512, 3 * 512); /* the rest from the partition */
    assert_int_equal(vdisk_discard(&d), 0);
    assert_int_equal(vdisk_read(&d, 24, 8, back), 0);
    assert_memory_equal(back, disk_bytes + (PART_START + 24) * 512, sizeof back);
    assert_int_equal(vdisk_write(&d, 40, 1, buf, false), 0);                   /* room again */
    vdisk_close(&d);
    assert_int_equal(frames_out, 0);
}

/* Persistent: cached writes go to the disk's cache path, uncached ones
 * write through; FLUSH reaches the disk; a redo log's FLUSH does not. */
static void test_persistent_flush(void **state)
{
    struct vdisk d;
    char err[128];
    uint8_t buf[512] = { 1 };
    assert_int_equal(vdisk_parse("ata0p1", &d, err, sizeof err), 0);
    assert_int_equal(vdisk_open(&d), 0);
    cached_writes = flushes = 0;
    assert_int_equal(vdisk_write(&d, 0, 1, buf, true), 0);
    assert_int_equal(vdisk_write(&d, 1, 1, buf, false), 0);
    assert_int_equal(cached_writes, 1);
    assert_int_equal(vdisk_flush(&d), 0);
    assert_int_equal(flushes, 1);
    assert_memory_equal(disk_bytes + (PART_START + 1) * 512, buf, 512);
    vdisk_close(&d);
    assert_int_equal(vdisk_parse("ata0p1,mode=nonpersistent", &d, err, sizeof err), 0);
    assert_int_equal(vdisk_open(&d), 0);
    assert_int_equal(vdisk_flush(&d), 0);
    assert_int_equal(flushes, 1);
    vdisk_close(&d);
}

/* vdisk_rw_sg: straight to the partition for persistent and ro disks (a
 * cached write without the flush, an uncached one with it); E_NOTSUP, the
 * disk layer never called, for a disk with a redo log (its sectors may be
 * in the log) and for a write to a ro disk. */
static void test_zero_copy(void **state)
{
    struct vdisk d;
    char err[128];
    struct dma_seg sg = { 0x100000, 1024 };
    sg_calls = 0;
    assert_int_equal(vdisk_parse("ata0p2", &d, err, sizeof err), 0);
    assert_int_equal(vdisk_open(&d), 0);
    assert_int_equal(vdisk_rw_sg(&d, 3, 2, &sg, 1, true, true), 0);
    assert_true(sg_last_write && !sg_last_flush && sg_last_part == &parts[1]);
    assert_int_equal(vdisk_rw_sg(&d, 3, 2, &sg, 1, true, false), 0);
    assert_true(sg_last_write && sg_last_flush);
    assert_int_equal(vdisk_rw_sg(&d, 0, 2, &sg, 1, false, false), 0);
    assert_false(sg_last_write);
    assert_int_equal(sg_calls, 3);
    vdisk_close(&d);
    static const char *const copied[] = { "ata0p1,mode=nonpersistent", "ata0p1,mode=undoable" };
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(vdisk_parse(copied[i], &d, err, sizeof err), 0);
        assert_int_equal(vdisk_open(&d), 0);
        assert_int_equal(vdisk_rw_sg(&d, 0, 2, &sg, 1, false, false), E_NOTSUP);
        assert_int_equal(vdisk_rw_sg(&d, 0, 2, &sg, 1, true, false), E_NOTSUP);
        vdisk_close(&d);
    }
    assert_int_equal(vdisk_parse("ata0p1,mode=ro", &d, err, sizeof err), 0);
    assert_int_equal(vdisk_open(&d), 0);
    assert_int_equal(vdisk_rw_sg(&d, 0, 2, &sg, 1, true, false), E_NOTSUP);
    assert_int_equal(vdisk_rw_sg(&d, 0, 2, &sg, 1, false, false), 0);
    assert_int_equal(sg_calls, 4);
    vdisk_close(&d);
}

/* Every write of a persistent disk's sectors, whichever way it goes, is
 * reported to the read-ahead window with its range (a write it missed
 * could leave stale read-ahead data for a later read); reads and redo-log
 * writes (no window: no I/O thread) are not. */
static void test_writes_reach_readahead(void **state)
{
    struct vdisk d;
    char err[128];
    uint8_t buf[2 * 512] = { 3 };
    struct dma_seg sg = { 0x100000, 1024 };
    assert_int_equal(vdisk_parse("ata0p2,readahead=on", &d, err, sizeof err), 0);
    assert_true(d.readahead);
    assert_int_equal(vdisk_open(&d), 0);
    wrote_calls = 0;
    assert_int_equal(vdisk_write(&d, 7, 2, buf, true), 0);
    assert_true(wrote_calls == 1 && wrote_sector == 7 && wrote_count == 2);
    assert_int_equal(vdisk_write(&d, 9, 1, buf, false), 0);
    assert_true(wrote_calls == 2 && wrote_sector == 9 && wrote_count == 1);
    assert_int_equal(vdisk_rw_sg(&d, 11, 2, &sg, 1, true, true), 0);
    assert_true(wrote_calls == 3 && wrote_sector == 11 && wrote_count == 2);
    assert_int_equal(vdisk_rw_sg(&d, 11, 2, &sg, 1, false, false), 0);
    assert_int_equal(vdisk_read(&d, 0, 2, buf), 0);
    assert_int_equal(wrote_calls, 3);
    vdisk_close(&d);
    assert_int_equal(vdisk_parse("ata0p1,mode=nonpersistent", &d, err, sizeof err), 0);
    assert_int_equal(vdisk_open(&d), 0);
    assert_int_equal(vdisk_write(&d, 0, 1, buf, false), 0);
    assert_int_equal(wrote_calls, 3);
    vdisk_close(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_nonpersistent),
        cmocka_unit_test(test_undoable),
        cmocka_unit_test(test_discard_and_full),
        cmocka_unit_test(test_persistent_flush),
        cmocka_unit_test(test_zero_copy),
        cmocka_unit_test(test_writes_reach_readahead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
