/*
 * Unit tests for drivers/part.c (MBR, EBR chain, GPT), drivers/crc32.c and
 * the registry listing of drivers/disk.c. Every disk is an in-memory image
 * built here; hostile tables are made by editing a good one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "drivers/crc32.h"
#include "drivers/disk.h"
#include "drivers/part.h"
#include "kernel/kernel.h"

#define SS 512u

/* ---------------------------------------------------------------- kernel stubs */

#define LOG_KEEP 512
static char log_lines[LOG_KEEP][LOG_LINE_MAX];
static int log_n;

void klog(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (log_n < LOG_KEEP)
        vsnprintf(log_lines[log_n++], LOG_LINE_MAX, fmt, ap);
    va_end(ap);
}

static int log_has(const char *text)
{
    for (int i = 0; i < log_n; i++)
        if (strstr(log_lines[i], text))
            return 1;
    return 0;
}

static int alloc_fail_at = -1; /* fail the Nth allocation (0-based), -1: never */
static int alloc_calls;
static size_t alloc_max;       /* largest single request */
static int alloc_live;

void *kzalloc(size_t bytes)
{
    if (alloc_calls++ == alloc_fail_at)
        return NULL;
    if (bytes > alloc_max)
        alloc_max = bytes;
    alloc_live++;
    return calloc(1, bytes);
}

void kfree(void *p)
{
    if (p)
        alloc_live--;
    free(p);
}

/* ---------------------------------------------------------------- memory disks */

struct memdisk {
    struct disk d;
    uint8_t *img;
    uint64_t readable; /* sectors below this read fine; the rest fail (truncated image) */
};

static int mem_read(struct disk *d, uint64_t lba, uint32_t count, void *buf)
{
    struct memdisk *m = container_of(d, struct memdisk, d);

    if (lba + count > m->readable)
        return E_IO;
    memcpy(buf, m->img + lba * SS, (size_t)count * SS);
    return 0;
}

static struct memdisk *md_new(uint64_t sectors)
{
    struct memdisk *m = calloc(1, sizeof(*m));

    m->img = calloc(sectors, SS);
    m->readable = sectors;
    m->d.sectors = sectors;
    m->d.sector_size = SS;
    m->d.read = mem_read;
    snprintf(m->d.name, sizeof(m->d.name), "mem0");
    return m;
}

static void md_free(struct memdisk *m)
{
    part_release(&m->d);
    free(m->img);
    free(m);
}

static uint8_t *sec(struct memdisk *m, uint64_t lba) { return m->img + lba * SS; }

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void mbr_entry(struct memdisk *m, uint64_t lba, int i, uint8_t status, uint8_t type, uint32_t start,
                      uint32_t size)
{
    uint8_t *e = sec(m, lba) + MBR_ENTRIES_OFF + i * MBR_ENTRY_SIZE;

    e[0] = status;
    e[4] = type;
    put32(e + 8, start);
    put32(e + 12, size);
    sec(m, lba)[MBR_SIG_OFF] = MBR_SIG0;
    sec(m, lba)[MBR_SIG_OFF + 1] = MBR_SIG1;
}

/* The scan result, as a test wants to see it. */
static int scan(struct memdisk *m)
{
    log_n = 0;
    return part_scan(&m->d);
}

static void assert_part(const struct disk *d, uint32_t i, uint32_t index, uint64_t start, uint64_t sectors)
{
    assert_true(i < d->nparts);
    assert_int_equal(d->parts[i].index, index);
    assert_int_equal(d->parts[i].start_lba, start);
    assert_int_equal(d->parts[i].sectors, sectors);
}

/* ---------------------------------------------------------------- GPT builder */

static const uint8_t GUID_LINUX[16] = {0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47,
                                       0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4};
static const uint8_t GUID_MSDATA[16] = {0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44,
                                        0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7};
static const uint8_t GUID_SWAP[16] = {0x6D, 0xFD, 0x57, 0x06, 0xAB, 0xA4, 0xC4, 0x43,
                                      0x84, 0xE5, 0x09, 0x33, 0xC8, 0x4B, 0x4F, 0x4F};

struct gpe {
    const uint8_t *type;
    uint64_t first, last;
    const char *name;
};

struct gpt_geom {
    uint32_t nentries, entry_size;
    uint64_t arr_sectors, first_usable, last_usable, last;
};

#define GPT_DISK_SECTORS 4096
static const struct gpe std_parts[] = {
    {GUID_LINUX, 40, 167, "mail"},    /* 128 sectors */
    {GUID_MSDATA, 200, 455, "web"},   /* 256 */
    {GUID_SWAP, 1000, 1383, "ftp"},   /* 384 */
};

static struct gpt_geom gpt_geom(struct memdisk *m, uint32_t nentries, uint32_t entry_size)
{
    struct gpt_geom g = {nentries, entry_size, 0, 0, 0, m->d.sectors - 1};

    g.arr_sectors = ((uint64_t)nentries * entry_size + SS - 1) / SS;
    g.first_usable = 2 + g.arr_sectors;
    g.last_usable = g.last - g.arr_sectors - 1;
    return g;
}

static void gpt_write_entries(struct memdisk *m, uint64_t lba, const struct gpt_geom *g, const struct gpe *p,
                              int n)
{
    memset(sec(m, lba), 0, g->arr_sectors * SS);
    for (int i = 0; i < n; i++) {
        uint8_t *e = sec(m, lba) + (size_t)i * g->entry_size;
        memcpy(e, p[i].type, 16);
        memset(e + 16, 0x11 * (i + 1), 16);
        put64(e + 32, p[i].first);
        put64(e + 40, p[i].last);
        for (int c = 0; p[i].name[c]; c++)
            e[56 + 2 * c] = (uint8_t)p[i].name[c];
    }
}

static void gpt_fix_header_crc(struct memdisk *m, uint64_t lba)
{
    uint8_t *h = sec(m, lba);
    uint32_t size = get32(h + 12);

    put32(h + 16, 0);
    put32(h + 16, crc32(h, size < SS ? size : SS));
}

static void gpt_write_header(struct memdisk *m, uint64_t lba, uint64_t alt, uint64_t entries,
                             const struct gpt_geom *g)
{
    uint8_t *h = sec(m, lba);

    memset(h, 0, SS);
    memcpy(h, "EFI PART", 8);
    put32(h + 8, 0x00010000);
    put32(h + 12, 92);
    put64(h + 24, lba);
    put64(h + 32, alt);
    put64(h + 40, g->first_usable);
    put64(h + 48, g->last_usable);
    memset(h + 56, 0xD1, 16);
    put64(h + 72, entries);
    put32(h + 80, g->nentries);
    put32(h + 84, g->entry_size);
    put32(h + 88, crc32(sec(m, entries), (size_t)g->nentries * g->entry_size));
    gpt_fix_header_crc(m, lba);
}

/* A protective MBR, primary and backup headers and arrays holding p[0..n). */
static struct memdisk *gpt_disk_geom(const struct gpe *p, int n, uint32_t nentries, uint32_t entry_size)
{
    struct memdisk *m = md_new(GPT_DISK_SECTORS);
    struct gpt_geom g = gpt_geom(m, nentries, entry_size);

    mbr_entry(m, 0, 0, 0, MBR_TYPE_GPT_PROT, 1, (uint32_t)g.last);
    gpt_write_entries(m, 2, &g, p, n);
    gpt_write_entries(m, g.last - g.arr_sectors, &g, p, n);
    gpt_write_header(m, 1, g.last, 2, &g);
    gpt_write_header(m, g.last, 1, g.last - g.arr_sectors, &g);
    return m;
}

static struct memdisk *gpt_disk(void)
{
    return gpt_disk_geom(std_parts, 3, 128, 128);
}

static void assert_std_gpt(const struct disk *d)
{
    assert_int_equal(d->scheme, PART_GPT);
    assert_int_equal(d->nparts, 3);
    assert_part(d, 0, 1, 40, 128);
    assert_part(d, 1, 2, 200, 256);
    assert_part(d, 2, 3, 1000, 384);
    assert_string_equal(d->parts[0].name, "mail");
    assert_string_equal(d->parts[1].name, "web");
    assert_string_equal(d->parts[2].name, "ftp");
    assert_memory_equal(d->parts[1].type_guid, GUID_MSDATA, 16);
    assert_int_equal(d->parts[2].uniq_guid[0], 0x33);
}

/* ---------------------------------------------------------------- CRC, GUID */

static void test_crc32_vectors(void **st)
{
    assert_int_equal(crc32("123456789", 9), 0xCBF43926u);
    assert_int_equal(crc32("", 0), 0);
    /* chained updates equal one pass */
    assert_int_equal(crc32_update(crc32_update(CRC32_INIT, "1234", 4), "56789", 5), 0xCBF43926u);
}

static void test_guid_format(void **st)
{
    static const uint8_t esp[16] = {0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
                                    0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B};
    char s[PART_GUID_STR_LEN];

    assert_string_equal(part_guid_format(esp, s), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    assert_string_equal(part_guid_format(GUID_LINUX, s), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
}

/* ---------------------------------------------------------------- MBR */

static void test_blank_disk(void **st)
{
    struct memdisk *m = md_new(100);

    assert_int_equal(scan(m), 0);
    assert_int_equal(m->d.scheme, PART_NONE);
    assert_int_equal(m->d.nparts, 0);
    assert_null(m->d.table_error);
    md_free(m);
}

static void test_no_signature(void **st)
{
    struct memdisk *m = md_new(100);

    mbr_entry(m, 0, 0, 0, 0x83, 1, 10);
    sec(m, 0)[MBR_SIG_OFF + 1] = 0;
    assert_int_equal(scan(m), 0);
    assert_int_equal(m->d.scheme, PART_NONE);
    assert_string_equal(m->d.table_error, "no 0x55AA signature in sector 0");
    assert_true(log_has("mem0: partition table: no 0x55AA signature in sector 0"));
    md_free(m);
}

static void test_mbr_bad_boot_flag(void **st)
{
    struct memdisk *m = md_new(100);

    mbr_entry(m, 0, 0, 0x80, 0x83, 1, 10);
    mbr_entry(m, 0, 1, 0x12, 0x83, 20, 10);
    assert_int_equal(scan(m), 0);
    assert_int_equal(m->d.scheme, PART_NONE);
    assert_int_equal(m->d.nparts, 0);
    assert_string_equal(m->d.table_error, "MBR boot flag not 0x00/0x80 (not a partition table)");
    md_free(m);
}

static void test_mbr_primaries(void **st)
{
    struct memdisk *m = md_new(1000);

    mbr_entry(m, 0, 0, 0x80, 0x83, 10, 100);
    mbr_entry(m, 0, 1, 0, 0x0C, 200, 300);
    mbr_entry(m, 0, 2, 0, 0x83, 600, 0); /* zero size: an empty slot */
    mbr_entry(m, 0, 3, 0, 0x82, 900, 100); /* ends exactly at the last LBA */
    assert_int_equal(scan(m), 0);
    assert_int_equal(m->d.scheme, PART_MBR);
    assert_null(m->d.table_error);
    assert_int_equal(m->d.nparts, 3);
    assert_part(&m->d, 0, 1, 10, 100);
    assert_part(&m->d, 1, 2, 200, 300);
    assert_part(&m->d, 2, 4, 900, 100);
    assert_int_equal(m->d.parts[0].mbr_type, 0x83);
    assert_int_equal(m->d.parts[1].mbr_type, 0x0C);
    assert_int_equal(m->d.parts[2].mbr_type, 0x82);
    assert_string_equal(m->d.parts[0].name, "");
    md_free(m);
}

/* Primary 1, extended 2 at 100..999 holding logicals at 101, 301 and 601. */
static struct memdisk *mbr_logical_disk(void)
{
    struct memdisk *m = md_new(2000);

    mbr_entry(m, 0, 0, 0, 0x83, 1, 99);
    mbr_entry(m, 0, 1, 0, MBR_TYPE_EXT_LBA, 100, 900);
    mbr_entry(m, 0, 2, 0, 0x07, 1000, 500);
    mbr_entry(m, 100, 0, 0, 0x83, 1, 150);
    mbr_entry(m, 100, 1, 0, MBR_TYPE_EXT_CHS, 200, 200);
    mbr_entry(m, 300, 0, 0, 0x82, 1, 199);
    mbr_entry(m, 300, 1, 0, MBR_TYPE_EXT_LBA, 500, 400);
    mbr_entry(m, 600, 0, 0, 0x8E, 1, 399);
    return m;
}

static void test_mbr_logicals(void **st)
{
    struct memdisk *m = mbr_logical_disk();

    assert_int_equal(scan(m), 0);
    assert_null(m->d.table_error);
    assert_int_equal(m->d.nparts, 6);
    assert_part(&m->d, 0, 1, 1, 99);
    assert_part(&m->d, 1, 2, 100, 900);
    assert_part(&m->d, 2, 3, 1000, 500);
    assert_part(&m->d, 3, 5, 101, 150);
    assert_part(&m->d, 4, 6, 301, 199);
    assert_part(&m->d, 5, 7, 601, 399);
    assert_int_equal(m->d.parts[1].mbr_type, MBR_TYPE_EXT_LBA);
    assert_int_equal(m->d.parts[5].mbr_type, 0x8E);
    md_free(m);
}

static void test_mbr_overlap(void **st)
{
    struct memdisk *m = md_new(1000);

    mbr_entry(m, 0, 0, 0, 0x83, 10, 100);  /* 10..109 */
    mbr_entry(m, 0, 1, 0, 0x83, 109, 50);  /* 109..158: shares LBA 109 */
    mbr_entry(m, 0, 2, 0, 0x83, 159, 50);  /* touches #2 but does not overlap */
    assert_int_equal(scan(m), 0);
    assert_int_equal(m->d.scheme, PART_MBR);
    assert_string_equal(m->d.table_error, "overlapping partitions");
    assert_true(log_has("overlapping partitions: #1 and #2"));
    assert_int_equal(m->d.nparts, 1);
    assert_part(&m->d, 0, 3, 159, 50);
    md_free(m);
}

static void test_mbr_out_of_range(void **st)
{
    struct memdisk *m = md_new(1000);

    mbr_entry(m, 0, 0, 0, 0x83, 900, 101);        /* one sector too long */
    mbr_entry(m, 0, 1, 0, 0x83, 0, 10);           /* covers the MBR itself */
    mbr_entry(m, 0, 2, 0, 0x83, 0xFFFFFFFFu, 0xFFFFFFFFu); /* 32-bit sum would wrap */
    mbr_entry(m, 0, 3, 0, 0x83, 100, 800);
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "partition outside the disk");
    assert_true(log_has("partition outside the disk: #1 start 900 sectors 101"));
    assert_true(log_has("partition outside the disk: #2 start 0 sectors 10"));
    assert_true(log_has("partition outside the disk: #3 start 4294967295 sectors 4294967295"));
    assert_int_equal(m->d.nparts, 1);
    assert_part(&m->d, 0, 4, 100, 800);
    md_free(m);
}

static void test_ebr_loop(void **st)
{
    struct memdisk *m = mbr_logical_disk();

    mbr_entry(m, 600, 1, 0, MBR_TYPE_EXT_LBA, 200, 100); /* back to the EBR at 300 */
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "EBR chain loops");
    assert_int_equal(m->d.nparts, 6); /* each logical once */
    assert_part(&m->d, 5, 7, 601, 399);
    md_free(m);
}

static void test_ebr_self_loop(void **st)
{
    struct memdisk *m = mbr_logical_disk();

    mbr_entry(m, 100, 1, 0, MBR_TYPE_EXT_LBA, 0, 10); /* links to itself */
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "EBR chain loops");
    assert_int_equal(m->d.nparts, 4);
    assert_part(&m->d, 3, 5, 101, 150);
    md_free(m);
}

static void test_ebr_chain_too_long(void **st)
{
    struct memdisk *m = md_new(1000);

    mbr_entry(m, 0, 0, 0, MBR_TYPE_EXT_LBA, 1, 999);
    for (uint32_t i = 0; i < 300; i++) { /* EBR every 3 sectors, logical of 2 */
        mbr_entry(m, 1 + 3 * i, 0, 0, 0x83, 1, 2);
        mbr_entry(m, 1 + 3 * i, 1, 0, MBR_TYPE_EXT_LBA, 3 * (i + 1), 3);
    }
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "EBR chain too long");
    assert_int_equal(m->d.nparts, 1 + MBR_MAX_LOGICALS);
    assert_part(&m->d, MBR_MAX_LOGICALS, MBR_FIRST_LOGICAL + MBR_MAX_LOGICALS - 1,
                2 + 3 * (MBR_MAX_LOGICALS - 1), 2);
    md_free(m);
}

static void test_logical_outside_extended(void **st)
{
    struct memdisk *m = mbr_logical_disk();

    mbr_entry(m, 300, 0, 0, 0x82, 1, 800); /* runs past the extended partition's end */
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "logical partition outside its extended partition");
    assert_true(log_has("#6 start 301 sectors 800"));
    assert_int_equal(m->d.nparts, 5);
    assert_part(&m->d, 3, 5, 101, 150);
    assert_part(&m->d, 4, 7, 601, 399); /* numbering kept as the tools number it */
    md_free(m);
}

static void test_logical_overlaps_primary(void **st)
{
    struct memdisk *m = mbr_logical_disk();

    mbr_entry(m, 0, 2, 0, 0x07, 650, 500); /* primary 3 now overlaps extended 2 and logical 7 */
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "overlapping partitions");
    assert_true(log_has("#2 and #3"));
    assert_true(log_has("#3 and #7"));
    assert_int_equal(m->d.nparts, 3);
    assert_part(&m->d, 0, 1, 1, 99);
    assert_part(&m->d, 1, 5, 101, 150);
    assert_part(&m->d, 2, 6, 301, 199);
    md_free(m);
}

static void test_truncated_mbr(void **st)
{
    struct memdisk *m = mbr_logical_disk();

    m->readable = 0;
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "sector 0 unreadable");
    assert_int_equal(m->d.nparts, 0);
    m->readable = 500; /* the third EBR (600) is past the readable end */
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "EBR unreadable");
    assert_int_equal(m->d.nparts, 5);
    md_free(m);
}

static void test_ebr_bad_signature(void **st)
{
    struct memdisk *m = mbr_logical_disk();

    sec(m, 300)[MBR_SIG_OFF] = 0;
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "EBR has no 0x55AA signature");
    assert_int_equal(m->d.nparts, 4);
    md_free(m);
}

static void test_ebr_link_outside_extended(void **st)
{
    struct memdisk *m = mbr_logical_disk();

    mbr_entry(m, 300, 1, 0, MBR_TYPE_EXT_LINUX, 900, 10); /* 100 + 900: just past the end */
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "EBR link outside the extended partition");
    assert_int_equal(m->d.nparts, 5);
    assert_part(&m->d, 4, 6, 301, 199);
    md_free(m);
}

static void test_linux_extended_type(void **st)
{
    struct memdisk *m = mbr_logical_disk();

    mbr_entry(m, 0, 1, 0, MBR_TYPE_EXT_LINUX, 100, 900);
    mbr_entry(m, 300, 1, 0, MBR_TYPE_EXT_LINUX, 500, 400);
    assert_int_equal(scan(m), 0);
    assert_null(m->d.table_error);
    assert_int_equal(m->d.nparts, 6);
    assert_int_equal(m->d.parts[1].mbr_type, MBR_TYPE_EXT_LINUX);
    assert_part(&m->d, 5, 7, 601, 399);
    md_free(m);
}

/* ---------------------------------------------------------------- GPT */

static void test_gpt_valid(void **st)
{
    struct memdisk *m = gpt_disk();
    char s[PART_GUID_STR_LEN];

    assert_int_equal(scan(m), 0);
    assert_null(m->d.table_error);
    assert_std_gpt(&m->d);
    assert_string_equal(part_guid_format(m->d.parts[0].type_guid, s), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    assert_int_equal(m->d.parts[0].mbr_type, 0);
    assert_int_equal(log_n, 0);
    md_free(m);
}

static void test_gpt_unicode_name(void **st)
{
    static const uint16_t name[] = {'c', 'a', 'f', 0xE9, ' ', 0xD83D, 0xDE00, '!', 0};
    struct memdisk *m = gpt_disk();
    struct gpt_geom g = gpt_geom(m, 128, 128);
    uint8_t *e = sec(m, 2) + 128;

    memset(e + 56, 0, 72);
    for (int i = 0; name[i]; i++)
        e[56 + 2 * i] = (uint8_t)name[i], e[57 + 2 * i] = (uint8_t)(name[i] >> 8);
    gpt_write_header(m, 1, g.last, 2, &g);
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.parts[1].name, "caf? ?!");
    /* a name using all 36 units */
    memset(e + 56, 'x', 72);
    for (int i = 0; i < 36; i++)
        e[57 + 2 * i] = 0;
    gpt_write_header(m, 1, g.last, 2, &g);
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.parts[1].name, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    md_free(m);
}

static void test_gpt_hybrid_mbr(void **st)
{
    struct memdisk *m = gpt_disk();

    mbr_entry(m, 0, 0, 0, 0x83, 40, 128);              /* hybrid: a legacy view first */
    mbr_entry(m, 0, 1, 0, MBR_TYPE_GPT_PROT, 1, 39);
    assert_int_equal(scan(m), 0);
    assert_null(m->d.table_error);
    assert_std_gpt(&m->d);
    md_free(m);
}

static void test_protective_mbr_without_gpt(void **st)
{
    struct memdisk *m = md_new(1000);

    mbr_entry(m, 0, 0, 0, MBR_TYPE_GPT_PROT, 1, 999);
    assert_int_equal(scan(m), 0);
    assert_int_equal(m->d.scheme, PART_GPT);
    assert_string_equal(m->d.table_error, "GPT primary and backup both invalid");
    assert_true(log_has("GPT header at LBA 1: no \"EFI PART\" signature"));
    assert_true(log_has("GPT header at LBA 999: no \"EFI PART\" signature"));
    assert_int_equal(m->d.nparts, 0);
    md_free(m);
}

static void test_gpt_wide_entries(void **st)
{
    struct memdisk *m = gpt_disk_geom(std_parts, 3, 16, 1024); /* entries wider than a sector */

    assert_int_equal(scan(m), 0);
    assert_null(m->d.table_error);
    assert_std_gpt(&m->d);
    md_free(m);
}

static void test_gpt_bad_primary_crc(void **st)
{
    struct memdisk *m = gpt_disk();

    sec(m, 1)[16] ^= 1;
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "GPT primary header invalid, backup used");
    assert_true(log_has("mem0: GPT header at LBA 1: header CRC32 mismatch"));
    assert_std_gpt(&m->d);
    md_free(m);
}

static void test_gpt_both_bad(void **st)
{
    struct memdisk *m = gpt_disk();

    sec(m, 1)[16] ^= 1;
    sec(m, GPT_DISK_SECTORS - 1)[0] = 'X';
    assert_int_equal(scan(m), 0);
    assert_int_equal(m->d.scheme, PART_GPT);
    assert_string_equal(m->d.table_error, "GPT primary and backup both invalid");
    assert_true(log_has("GPT header at LBA 4095: no \"EFI PART\" signature"));
    assert_int_equal(m->d.nparts, 0);
    assert_null(m->d.parts);
    md_free(m);
}

static void test_gpt_bad_entries_crc(void **st)
{
    struct memdisk *m = gpt_disk();

    sec(m, 2)[32] ^= 0x40; /* partition 1's first LBA: 40 -> 104, CRC now wrong */
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "GPT primary partition entries invalid, backup used");
    assert_true(log_has("GPT entry array at LBA 2: CRC32"));
    assert_std_gpt(&m->d);
    md_free(m);
}

static void test_gpt_backup_bad(void **st)
{
    struct memdisk *m = gpt_disk();

    sec(m, GPT_DISK_SECTORS - 1)[16] ^= 1;
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "GPT backup header invalid (primary used)");
    assert_std_gpt(&m->d);
    sec(m, GPT_DISK_SECTORS - 1)[16] ^= 1;
    put64(sec(m, 1) + 32, 1ull << 40); /* AlternateLBA far past the disk */
    gpt_fix_header_crc(m, 1);
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "GPT backup header invalid (primary used)");
    assert_std_gpt(&m->d);
    /* the primary's entries now fail: AlternateLBA is unreadable, the last LBA serves */
    sec(m, 2)[40] ^= 1;
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "GPT primary partition entries invalid, backup used");
    assert_true(log_has("GPT header at LBA 1099511627776: unreadable"));
    assert_std_gpt(&m->d);
    md_free(m);
}

/* Set a 32-bit header field of the primary header and re-seal its CRC. */
static void primary_set32(struct memdisk *m, int off, uint32_t v)
{
    put32(sec(m, 1) + off, v);
    gpt_fix_header_crc(m, 1);
}

static void expect_primary_rejected(struct memdisk *m, const char *why)
{
    char line[LOG_LINE_MAX];

    alloc_max = 0;
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "GPT primary header invalid, backup used");
    snprintf(line, sizeof(line), "mem0: GPT header at LBA 1: %s", why);
    assert_true(log_has(line));
    assert_std_gpt(&m->d);
    assert_true(alloc_max < 64 * 1024); /* never sized by the hostile header */
}

static void test_gpt_absurd_counts(void **st)
{
    struct memdisk *m = gpt_disk();

    primary_set32(m, 80, 0xFFFFFFFFu);
    expect_primary_rejected(m, "partition entry array larger than 1 MiB");
    primary_set32(m, 80, 0x02000000u); /* 2^25 * 128 = 2^32: wraps to 0 in 32 bits */
    expect_primary_rejected(m, "partition entry array larger than 1 MiB");
    primary_set32(m, 80, 128);
    primary_set32(m, 84, 0x80000000u);
    expect_primary_rejected(m, "SizeOfPartitionEntry not 128*2^n (max 4096)");
    primary_set32(m, 84, 0);
    expect_primary_rejected(m, "SizeOfPartitionEntry not 128*2^n (max 4096)");
    primary_set32(m, 84, 384);
    expect_primary_rejected(m, "SizeOfPartitionEntry not 128*2^n (max 4096)");
    md_free(m);
}

static void test_gpt_header_size(void **st)
{
    struct memdisk *m = gpt_disk();

    primary_set32(m, 12, 91);
    expect_primary_rejected(m, "HeaderSize out of range");
    primary_set32(m, 12, 513);
    expect_primary_rejected(m, "HeaderSize out of range");
    primary_set32(m, 12, 0xFFFFFFFFu);
    expect_primary_rejected(m, "HeaderSize out of range");
    primary_set32(m, 12, 512); /* legal: the CRC covers the zero tail too */
    assert_int_equal(scan(m), 0);
    assert_null(m->d.table_error);
    md_free(m);
}

static void test_gpt_bad_geometry(void **st)
{
    struct memdisk *m = gpt_disk();

    put64(sec(m, 1) + 24, 7);
    gpt_fix_header_crc(m, 1);
    expect_primary_rejected(m, "MyLBA is not where the header was read");
    put64(sec(m, 1) + 24, 1);
    put64(sec(m, 1) + 48, GPT_DISK_SECTORS); /* last usable past the disk */
    gpt_fix_header_crc(m, 1);
    expect_primary_rejected(m, "usable LBA range outside the disk");
    put64(sec(m, 1) + 48, GPT_DISK_SECTORS - 34);
    put64(sec(m, 1) + 72, 10); /* array inside the usable LBAs */
    gpt_fix_header_crc(m, 1);
    expect_primary_rejected(m, "partition entry array overlaps the usable LBAs");
    put64(sec(m, 1) + 72, 0xFFFFFFFFFFFFFFF0ull);
    gpt_fix_header_crc(m, 1);
    expect_primary_rejected(m, "partition entry array outside the disk");
    put64(sec(m, 1) + 72, 2);
    put64(sec(m, 1) + 40, 1); /* first usable LBA 1: the header's own sector */
    gpt_fix_header_crc(m, 1);
    expect_primary_rejected(m, "usable LBA range outside the disk");
    put64(sec(m, 1) + 40, 34);
    put64(sec(m, 1) + 72, 1); /* entry array on the header */
    gpt_fix_header_crc(m, 1);
    expect_primary_rejected(m, "partition entry array outside the disk");
    put64(sec(m, 1) + 72, 2);
    put32(sec(m, 1) + 8, 0x00020000);
    gpt_fix_header_crc(m, 1);
    expect_primary_rejected(m, "unsupported revision");
    md_free(m);
}

static void test_gpt_overlap_and_range(void **st)
{
    static const struct gpe p[] = {
        {GUID_LINUX, 40, 167, "a"},
        {GUID_LINUX, 100, 199, "b"},   /* overlaps a */
        {GUID_LINUX, 200, 299, "c"},
        {GUID_LINUX, 4000, 4090, "d"}, /* past last usable (4062) */
        {GUID_LINUX, 20, 30, "e"},     /* before first usable (34) */
        {GUID_LINUX, 310, 300, "f"},   /* ends before it starts */
        {GUID_LINUX, 3000, 4062, "g"}, /* ends at last usable */
    };
    struct memdisk *m = gpt_disk_geom(p, 7, 128, 128);

    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "partition outside the usable LBAs");
    assert_true(log_has("partition outside the usable LBAs: #4 start 4000 sectors 91"));
    assert_true(log_has("partition outside the usable LBAs: #5 start 20 sectors 11"));
    assert_true(log_has("partition outside the usable LBAs: #6 start 310 sectors 0"));
    assert_true(log_has("overlapping partitions: #1 and #2"));
    assert_int_equal(m->d.nparts, 2);
    assert_part(&m->d, 0, 3, 200, 100);
    assert_string_equal(m->d.parts[0].name, "c");
    assert_part(&m->d, 1, 7, 3000, 1063);
    md_free(m);
}

static void test_gpt_sparse_and_too_many(void **st)
{
    static struct gpe p[200];
    struct memdisk *m;

    for (int i = 0; i < 200; i++)
        p[i] = (struct gpe){GUID_LINUX, 100 + 10 * i, 100 + 10 * i + 9, "p"};
    p[0].type = (const uint8_t[16]){0}; /* unused slot: skipped, numbering kept */
    m = gpt_disk_geom(p, 200, 256, 128);
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "too many partitions (first 128 kept)");
    assert_int_equal(m->d.nparts, DISK_MAX_PARTS);
    assert_part(&m->d, 0, 2, 110, 10);
    assert_part(&m->d, 127, 129, 1380, 10);
    md_free(m);
}

static void test_gpt_truncated(void **st)
{
    struct memdisk *m = gpt_disk();

    m->readable = 1; /* only the protective MBR */
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "GPT primary and backup both invalid");
    assert_true(log_has("GPT header at LBA 1: unreadable"));
    assert_true(log_has("GPT header at LBA 4095: unreadable"));
    m->readable = 20; /* primary entries unreadable from sector 20 on */
    assert_int_equal(scan(m), 0);
    assert_true(log_has("GPT entry array sector 20 unreadable"));
    assert_string_equal(m->d.table_error, "GPT primary and backup both invalid");
    md_free(m);
}

static void test_gpt_disk_smaller_than_table(void **st)
{
    struct memdisk *m = gpt_disk();

    m->d.sectors = 2048; /* the image claims 4096 sectors */
    assert_int_equal(scan(m), 0);
    assert_string_equal(m->d.table_error, "GPT primary and backup both invalid");
    assert_true(log_has("GPT header at LBA 1: usable LBA range outside the disk"));
    md_free(m);
}

static void test_out_of_memory(void **st)
{
    for (int fail = 0; fail < 3; fail++) {
        struct memdisk *m = gpt_disk();
        int r;
        alloc_calls = 0;
        alloc_fail_at = fail;
        r = scan(m);
        alloc_fail_at = -1;
        assert_int_equal(r, E_NOMEM);
        assert_int_equal(m->d.nparts, 0);
        assert_null(m->d.parts);
        assert_string_equal(m->d.table_error, "out of memory while reading the partition table");
        md_free(m);
    }
    assert_int_equal(alloc_live, 0);
}

static void test_bad_sector_size(void **st)
{
    struct memdisk *m = gpt_disk();

    m->d.sector_size = 520;
    assert_int_equal(scan(m), E_INVAL);
    assert_string_equal(m->d.table_error, "unsupported sector size");
    md_free(m);
}

/* ---------------------------------------------------------------- fuzz */

static uint32_t lcg_state = 12345;
static uint32_t lcg(void)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return lcg_state >> 8;
}

/* Whatever the bytes, the result keeps the invariants the registry relies on. */
static void assert_scan_invariants(const struct disk *d)
{
    assert_true(d->nparts <= DISK_MAX_PARTS);
    assert_true((d->nparts == 0) == (d->parts == NULL));
    for (uint32_t i = 0; i < d->nparts; i++) {
        const struct partition *a = &d->parts[i];
        assert_true(a->sectors > 0 && a->start_lba > 0 && a->start_lba < d->sectors);
        assert_true(a->sectors <= d->sectors - a->start_lba);
        assert_true(strlen(a->name) < DISK_NAME_MAX);
        for (uint32_t j = i + 1; j < d->nparts && d->scheme == PART_GPT; j++) {
            const struct partition *b = &d->parts[j];
            assert_true(a->start_lba + a->sectors <= b->start_lba || b->start_lba + b->sectors <= a->start_lba);
        }
    }
}

/* Flip random bytes of the sectors that hold tables; 2000 seeded rounds per image. */
static void fuzz_image(struct memdisk *(*make)(void), const uint64_t *lbas, int nlbas)
{
    for (int round = 0; round < 2000; round++) {
        struct memdisk *m = make();
        int flips = 1 + lcg() % 8;
        for (int f = 0; f < flips; f++) {
            uint64_t lba = lbas[lcg() % nlbas];
            sec(m, lba)[lcg() % SS] ^= (uint8_t)(1u << (lcg() % 8));
            if (lcg() % 4 == 0 && lba <= 1)
                gpt_fix_header_crc(m, 1); /* let some mutations past the CRC */
        }
        m->readable = lcg() % 16 == 0 ? lcg() % m->d.sectors : m->d.sectors;
        assert_int_equal(scan(m), 0);
        assert_scan_invariants(&m->d);
        md_free(m);
    }
}

static void test_fuzz_tables(void **st)
{
    static const uint64_t gpt_lbas[] = {0, 1, 2, 3, GPT_DISK_SECTORS - 1, GPT_DISK_SECTORS - 33};
    static const uint64_t mbr_lbas[] = {0, 100, 300, 600};

    fuzz_image(gpt_disk, gpt_lbas, ARRAY_SIZE(gpt_lbas));
    fuzz_image(mbr_logical_disk, mbr_lbas, ARRAY_SIZE(mbr_lbas));
}

/* ---------------------------------------------------------------- registry */

static char out_lines[32][DISK_LINE_MAX];
static int out_n;
static void collect(const char *line, void *ctx)
{
    (*(int *)ctx)++;
    snprintf(out_lines[out_n++], DISK_LINE_MAX, "%s", line);
}

/* disk_lookup and partition-relative I/O on the registered MBR disk mem1. */
static void check_lookup_and_part_io(struct memdisk *b)
{
    struct disk *d = NULL;
    const struct partition *p = NULL;
    uint8_t buf[2 * SS];

    assert_int_equal(disk_lookup("mem1p6", &d, &p), 0);
    assert_ptr_equal(d, &b->d);
    assert_int_equal(p->start_lba, 301);
    assert_int_equal(disk_lookup("mem1", &d, &p), 0);
    assert_null(p);
    assert_int_equal(disk_lookup("mem1p4", &d, &p), E_NOENT);
    assert_int_equal(disk_lookup("mem1p", &d, &p), E_INVAL);
    assert_int_equal(disk_lookup("mem1p6x", &d, &p), E_INVAL);
    assert_int_equal(disk_lookup("mem1p99999999999", &d, &p), E_INVAL);
    assert_int_equal(disk_lookup("mem9", &d, &p), E_NOENT);
    assert_int_equal(disk_lookup("mem1x", &d, &p), E_NOENT);
    assert_int_equal(disk_lookup("mem1p6", &d, NULL), E_INVAL);

    assert_int_equal(disk_lookup("mem1p6", &d, &p), 0);
    memset(sec(b, 499), 0xA5, SS);
    assert_int_equal(disk_part_read(d, p, 198, 1, buf), 0); /* the partition's last sector */
    assert_memory_equal(buf, sec(b, 499), SS);
    assert_int_equal(disk_part_read(d, p, 198, 2, buf), E_RANGE);
    assert_int_equal(disk_part_read(d, p, 0xFFFFFFFFFFFFFFFFull, 2, buf), E_RANGE);
    assert_int_equal(disk_part_read(d, NULL, 1999, 1, buf), 0);
    assert_int_equal(disk_part_read(d, NULL, 1999, 2, buf), E_RANGE);
    assert_int_equal(disk_part_write(d, p, 0, 1, buf), E_INVAL); /* no write method */
    assert_int_equal(disk_part_write(d, p, 199, 1, buf), E_RANGE);
}

static void test_registry_listing(void **st)
{
    struct memdisk *g = gpt_disk(), *b = mbr_logical_disk(), *bad = gpt_disk();
    int calls = 0;

    strcpy(g->d.model, "QEMU HARDDISK");
    strcpy(b->d.name, "mem1");
    strcpy(bad->d.name, "mem2");
    sec(bad, 1)[16] ^= 1;
    sec(bad, GPT_DISK_SECTORS - 1)[16] ^= 1;
    assert_int_equal(disk_count(), 0);
    assert_null(disk_get(0));
    assert_int_equal(disk_register(&g->d), 0);
    assert_int_equal(disk_register(&b->d), 0);
    assert_int_equal(disk_register(&bad->d), 0);
    assert_int_equal(disk_count(), 3);
    assert_ptr_equal(disk_get(1), &b->d);
    assert_null(disk_get(3));
    assert_null(disk_get(-1));
    assert_int_equal(disk_format_lines(collect, &calls), 13);
    assert_int_equal(calls, 13);
    assert_string_equal(out_lines[0], "disk 0 mem0 \"QEMU HARDDISK\" 4096 sectors of 512 bytes (2.0 MiB) GPT, 3 partitions");
    assert_string_equal(out_lines[1], "  part 0 1 start 40 sectors 128 (64 KiB) type 0FC63DAF-8483-4772-8E79-3D69D8477DE4 name \"mail\"");
    assert_string_equal(out_lines[3], "  part 0 3 start 1000 sectors 384 (192 KiB) type 0657FD6D-A4AB-43C4-84E5-0933C84B4F4F name \"ftp\"");
    assert_string_equal(out_lines[4], "disk 1 mem1 \"\" 2000 sectors of 512 bytes (1000 KiB) MBR, 6 partitions");
    assert_string_equal(out_lines[6], "  part 1 2 start 100 sectors 900 (450 KiB) type 0x0f name \"\"");
    assert_string_equal(out_lines[10], "  part 1 7 start 601 sectors 399 (199 KiB) type 0x8e name \"\"");
    assert_string_equal(out_lines[11], "disk 2 mem2 \"\" 4096 sectors of 512 bytes (2.0 MiB) GPT, 0 partitions");
    assert_string_equal(out_lines[12], "  table error 2: GPT primary and backup both invalid");
    check_lookup_and_part_io(b);
    for (int i = 3; i < DISK_MAX_DISKS; i++)
        assert_int_equal(disk_register(&md_new(10)->d), 0);
    assert_int_equal(disk_register(&bad->d), E_RANGE);
    assert_int_equal(disk_count(), DISK_MAX_DISKS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_vectors),
        cmocka_unit_test(test_guid_format),
        cmocka_unit_test(test_blank_disk),
        cmocka_unit_test(test_no_signature),
        cmocka_unit_test(test_mbr_bad_boot_flag),
        cmocka_unit_test(test_mbr_primaries),
        cmocka_unit_test(test_mbr_logicals),
        cmocka_unit_test(test_mbr_overlap),
        cmocka_unit_test(test_mbr_out_of_range),
        cmocka_unit_test(test_ebr_loop),
        cmocka_unit_test(test_ebr_self_loop),
        cmocka_unit_test(test_ebr_chain_too_long),
        cmocka_unit_test(test_logical_outside_extended),
        cmocka_unit_test(test_logical_overlaps_primary),
        cmocka_unit_test(test_truncated_mbr),
        cmocka_unit_test(test_ebr_bad_signature),
        cmocka_unit_test(test_ebr_link_outside_extended),
        cmocka_unit_test(test_linux_extended_type),
        cmocka_unit_test(test_gpt_valid),
        cmocka_unit_test(test_gpt_unicode_name),
        cmocka_unit_test(test_gpt_hybrid_mbr),
        cmocka_unit_test(test_protective_mbr_without_gpt),
        cmocka_unit_test(test_gpt_wide_entries),
        cmocka_unit_test(test_gpt_bad_primary_crc),
        cmocka_unit_test(test_gpt_both_bad),
        cmocka_unit_test(test_gpt_bad_entries_crc),
        cmocka_unit_test(test_gpt_backup_bad),
        cmocka_unit_test(test_gpt_absurd_counts),
        cmocka_unit_test(test_gpt_header_size),
        cmocka_unit_test(test_gpt_bad_geometry),
        cmocka_unit_test(test_gpt_overlap_and_range),
        cmocka_unit_test(test_gpt_sparse_and_too_many),
        cmocka_unit_test(test_gpt_truncated),
        cmocka_unit_test(test_gpt_disk_smaller_than_table),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_bad_sector_size),
        cmocka_unit_test(test_fuzz_tables),
        cmocka_unit_test(test_registry_listing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
