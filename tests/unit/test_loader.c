/*
 * Unit tests of the Multiboot guest loader (vmm/loader.c): well-formed v1/v2
 * images built here byte by byte from the specifications, hv86.elf itself as
 * a real linker-made Multiboot2 image, and hostile images.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "kernel/kernel.h"
#include "vmm/loader.h"

#define GUEST_MEM (8u << 20)
static uint8_t *guest;                 /* the fake guest RAM of the running test */
static uint32_t guest_size = GUEST_MEM; /* its size, bytes */

static int g_write(void *ctx, uint32_t gpa, const void *buf, uint32_t len)
{
    if ((uint64_t)gpa + len > guest_size)
        return E_RANGE;
    memcpy(guest + gpa, buf, len);
    return 0;
}

static int g_zero(void *ctx, uint32_t gpa, uint32_t len)
{
    if ((uint64_t)gpa + len > guest_size)
        return E_RANGE;
    memset(guest + gpa, 0, len);
    return 0;
}

static const struct loader_ops ops = { g_write, g_zero, NULL };

/* A loader_image over a buffer in host memory. The loader must only ask for
 * bytes inside the image, and never for none. */
struct buf_image {
    const uint8_t *p;
    size_t size;
};

static int buf_read(void *ctx, uint32_t off, void *out, uint32_t len)
{
    const struct buf_image *b = ctx;
    if (len == 0 || (uint64_t)off + len > b->size)
        fail_msg("read of [%u, +%u) outside the %zu-byte image", off, len, b->size);
    memcpy(out, b->p + off, len);
    return 0;
}

/* The loader's entry points over images in host memory (rd NULL: no initrd). */
static int load_mb(const uint8_t *img, size_t n, uint32_t mem, const char *cmdline, struct loader_entry *e,
                   char *err, size_t errlen)
{
    struct buf_image b = { img, n };
    struct loader_image li = { n, buf_read, &b };
    return loader_load_multiboot(&li, mem, cmdline, &ops, e, err, errlen);
}

static int load_lx(const uint8_t *img, size_t n, const uint8_t *rd, size_t rdn, uint32_t mem, const char *cmdline,
                   struct loader_entry *e, char *err, size_t errlen)
{
    struct buf_image b = { img, n }, r = { rd, rdn };
    struct loader_image li = { n, buf_read, &b }, ri = { rdn, buf_read, &r };
    return loader_load_linux(&li, rd ? &ri : NULL, mem, cmdline, &ops, e, err, errlen);
}

static int is_linux(const uint8_t *img, size_t n)
{
    struct buf_image b = { img, n };
    struct loader_image li = { n, buf_read, &b };
    return loader_is_linux(&li);
}

static int setup(void **state)
{
    guest = malloc(GUEST_MEM);
    memset(guest, 0xCC, GUEST_MEM);
    return guest ? 0 : -1;
}

static int teardown(void **state)
{
    free(guest);
    guest_size = GUEST_MEM;
    return 0;
}

static void w32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void w16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static uint32_t g32(uint32_t gpa) { uint32_t v; memcpy(&v, guest + gpa, 4); return v; }
static uint64_t g64(uint32_t gpa) { uint64_t v; memcpy(&v, guest + gpa, 8); return v; }

/*
 * An ELF32 image: header, one PT_LOAD program header, then the segment's file
 * bytes at offset 0x80 (the Multiboot header first, then code bytes).
 * Segment: paddr 0x100000, filesz = 64, memsz = 0x2000 (bss after).
 */
#define SEG_OFF 0x80u
#define SEG_PADDR 0x100000u
static size_t make_elf(uint8_t *img, uint32_t vaddr, uint32_t paddr, uint32_t entry, uint32_t filesz, uint32_t memsz)
{
    memset(img, 0, SEG_OFF + filesz);
    w32(img, 0x464C457F);
    img[4] = 1; img[5] = 1; img[6] = 1;
    w16(img + 16, 2);   /* ET_EXEC */
    w16(img + 18, 3);   /* EM_386 */
    w32(img + 20, 1);
    w32(img + 24, entry);
    w32(img + 28, 52);  /* phoff */
    w16(img + 40, 52);
    w16(img + 42, 32);
    w16(img + 44, 1);
    uint8_t *ph = img + 52;
    w32(ph, 1);         /* PT_LOAD */
    w32(ph + 4, SEG_OFF);
    w32(ph + 8, vaddr);
    w32(ph + 12, paddr);
    w32(ph + 16, filesz);
    w32(ph + 20, memsz);
    for (uint32_t i = 0; i < filesz; i++)
        img[SEG_OFF + i] = (uint8_t)(0x40 + i);
    return SEG_OFF + filesz;
}

static void put_mb1(uint8_t *at, uint32_t flags)
{
    w32(at, MB1_HEADER_MAGIC);
    w32(at + 4, flags);
    w32(at + 8, -(MB1_HEADER_MAGIC + flags));
}

static void test_mb1_elf(void **state)
{
    uint8_t img[512];
    size_t n = make_elf(img, SEG_PADDR, SEG_PADDR, SEG_PADDR + 12, 64, 0x2000);
    put_mb1(img + SEG_OFF, 0x3); /* page-align + meminfo */
    guest[SEG_PADDR + 64] = 0xAA;       /* bss must be zeroed */
    struct loader_entry e;
    char err[128];
    assert_int_equal(load_mb(img, n, GUEST_MEM, "root=/dev/x quiet", &e, err, sizeof err), 0);
    assert_int_equal(e.version, 1);
    assert_int_equal(e.eax, MB1_BOOT_MAGIC);
    assert_int_equal(e.ebx, GUEST_MBI_GPA);
    assert_int_equal(e.eip, SEG_PADDR + 12);
    assert_int_equal(e.load_lo, SEG_PADDR);
    assert_int_equal(e.load_hi, SEG_PADDR + 0x2000);
    assert_memory_equal(guest + SEG_PADDR + 12, img + SEG_OFF + 12, 52);
    assert_int_equal(guest[SEG_PADDR + 64], 0);
    assert_int_equal(guest[SEG_PADDR + 0x1FFF], 0);
    /* boot information (Multiboot 0.6.96 §3.3) */
    uint32_t mbi = GUEST_MBI_GPA;
    assert_int_equal(g32(mbi), 0x24D); /* mem, cmdline, mods, mmap, loader name; no boot device */
    assert_int_equal(g32(mbi + 4), 639);
    assert_int_equal(g32(mbi + 8), (GUEST_MEM - 0x100000) / 1024);
    assert_string_equal((char *)guest + g32(mbi + 16), "root=/dev/x quiet");
    assert_string_equal((char *)guest + g32(mbi + 64), "hv86");
    assert_int_equal(g32(mbi + 20), 0);
    uint32_t mlen = g32(mbi + 44), maddr = g32(mbi + 48);
    assert_int_equal(mlen, 3 * 24);
    /* entries: size, base, length, type */
    assert_int_equal(g32(maddr), 20);
    assert_int_equal(g64(maddr + 4), 0);
    assert_int_equal(g64(maddr + 12), 0x9FC00);
    assert_int_equal(g32(maddr + 20), 1);
    assert_int_equal(g32(maddr + 24 + 20), 2);
    assert_int_equal(g64(maddr + 48 + 4), 0x100000);
    assert_int_equal(g64(maddr + 48 + 12), GUEST_MEM - 0x100000);
    assert_int_equal(g32(maddr + 48 + 20), 1);
}

static void test_mb1_entry_virtual_translated(void **state)
{
    /* Linked high, loaded low: e_entry is virtual, translated through the segment. */
    uint8_t img[512];
    size_t n = make_elf(img, 0xC0100000u, SEG_PADDR, 0xC0100010u, 64, 64);
    put_mb1(img + SEG_OFF, 0);
    struct loader_entry e;
    assert_int_equal(load_mb(img, n, GUEST_MEM, NULL, &e, NULL, 0), 0);
    assert_int_equal(e.eip, SEG_PADDR + 0x10);
}

static void test_mb1_aout_kludge(void **state)
{
    /* Flat binary: header at file offset 16, which lands at 0x200010. */
    uint8_t img[256];
    memset(img, 0x90, sizeof img);
    uint8_t *h = img + 16;
    put_mb1(h, 0x10000);
    w32(h + 12, 0x200010); /* header_addr */
    w32(h + 16, 0x200000); /* load_addr */
    w32(h + 20, 0x200100); /* load_end_addr: the whole 256-byte file */
    w32(h + 24, 0x204000); /* bss_end_addr */
    w32(h + 28, 0x200040); /* entry */
    struct loader_entry e;
    char err[128];
    assert_int_equal(load_mb(img, sizeof img, GUEST_MEM, "", &e, err, sizeof err), 0);
    assert_int_equal(e.eip, 0x200040);
    assert_memory_equal(guest + 0x200000, img, sizeof img);
    assert_int_equal(guest[0x203FFF], 0);
    assert_int_equal(e.load_hi, 0x204000);
}

static size_t put_mb2(uint8_t *at, const uint32_t *tags, size_t ntag_words)
{
    uint32_t len = 16 + (uint32_t)ntag_words * 4 + 8;
    w32(at, 0xE85250D6u);
    w32(at + 4, 0);
    w32(at + 8, len);
    w32(at + 12, -(0xE85250D6u + len));
    memcpy(at + 16, tags, ntag_words * 4);
    w32(at + 16 + ntag_words * 4, 0);     /* end tag */
    w32(at + 16 + ntag_words * 4 + 4, 8);
    return len;
}

static void test_mb2_elf_with_tags(void **state)
{
    uint8_t img[512];
    size_t n = make_elf(img, SEG_PADDR, SEG_PADDR, SEG_PADDR + 8, 120, 0x1000);
    /* info request for cmdline(1) + mmap(6), then an entry tag (3) */
    const uint32_t tags[] = { 1 | (0 << 16), 16, 1, 6, 3, 12, SEG_PADDR + 0x60, 0 };
    put_mb2(img + SEG_OFF, tags, 8);
    struct loader_entry e;
    char err[128];
    assert_int_equal(load_mb(img, n, GUEST_MEM, "console=ttyS0", &e, err, sizeof err), 0);
    assert_int_equal(e.version, 2);
    assert_int_equal(e.eax, MB2_BOOT_MAGIC);
    assert_int_equal(e.eip, SEG_PADDR + 0x60);
    /* walk the tags (Multiboot2 §3.6) */
    uint32_t mbi = GUEST_MBI_GPA, total = g32(mbi);
    int seen_cmd = 0, seen_mmap = 0, seen_mem = 0, seen_end = 0;
    for (uint32_t t = mbi + 8; t < mbi + total;) {
        uint32_t type = g32(t), size = g32(t + 4);
        assert_true(size >= 8);
        if (type == 1) {
            assert_string_equal((char *)guest + t + 8, "console=ttyS0");
            seen_cmd = 1;
        } else if (type == 4) {
            assert_int_equal(g32(t + 8), 639);
            assert_int_equal(g32(t + 12), (GUEST_MEM - 0x100000) / 1024);
            seen_mem = 1;
        } else if (type == 6) {
            assert_int_equal(g32(t + 8), 24);
            assert_int_equal(size, 16 + 3 * 24);
            assert_int_equal(g64(t + 16 + 48), 0x100000);
            assert_int_equal(g32(t + 16 + 48 + 16), 1);
            seen_mmap = 1;
        } else if (type == 0) {
            assert_int_equal(size, 8);
            seen_end = 1;
            break;
        }
        t += (size + 7) & ~7u;
    }
    assert_true(seen_cmd && seen_mmap && seen_mem && seen_end);
}

static void test_mb2_required_unknown_refused(void **state)
{
    uint8_t img[512];
    size_t n = make_elf(img, SEG_PADDR, SEG_PADDR, SEG_PADDR + 8, 120, 0x1000);
    const uint32_t tags[] = { 1, 12, 8 /* framebuffer info, required */, 0 };
    put_mb2(img + SEG_OFF, tags, 4);
    struct loader_entry e;
    char err[128];
    assert_int_equal(load_mb(img, n, GUEST_MEM, "", &e, err, sizeof err), E_INVAL);
    assert_non_null(strstr(err, "requires boot information tag 8"));
    /* the same request marked optional is fine */
    const uint32_t opt[] = { 1 | (1u << 16), 12, 8, 0 };
    put_mb2(img + SEG_OFF, opt, 4);
    assert_int_equal(load_mb(img, n, GUEST_MEM, "", &e, err, sizeof err), 0);
}

struct bad_case {
    const char *name;
    uint32_t vaddr, paddr, entry, filesz, memsz;
    uint32_t mb_flags;
    int expect;
    const char *msg;
};

static void test_hostile_elf(void **state)
{
    static const struct bad_case cases[] = {
        { "beyond RAM", 0x7FF000, 0x7FF000, 0x7FF000, 64, 0x2000, 0, E_RANGE, "outside guest RAM" },
        { "over the MBI", 0x10000, 0x10000, 0x10000, 64, 64, 0, E_RANGE, "boot information" },
        { "in the ROM hole", 0xA0000, 0xA0000, 0xA0000, 64, 64, 0, E_RANGE, "hole" },
        { "memsz < filesz", SEG_PADDR, SEG_PADDR, SEG_PADDR, 64, 32, 0, E_INVAL, "memory size" },
        { "entry outside", SEG_PADDR, SEG_PADDR, 0x500000, 64, 64, 0, E_INVAL, "entry point" },
        { "wraps 4 GiB", 0xFFFFF000, 0xFFFFF000, 0xFFFFF000, 64, 0x2000, 0, E_RANGE, "outside guest RAM" },
        { "video required", SEG_PADDR, SEG_PADDR, SEG_PADDR, 64, 64, 0x4, E_INVAL, "requires features" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct bad_case *b = &cases[i];
        uint8_t img[512];
        size_t n = make_elf(img, b->vaddr, b->paddr, b->entry, b->filesz, b->memsz);
        put_mb1(img + SEG_OFF, b->mb_flags);
        struct loader_entry e;
        char err[128] = "";
        int rc = load_mb(img, n, GUEST_MEM, "", &e, err, sizeof err);
        if (rc != b->expect || !strstr(err, b->msg))
            fail_msg("case '%s': rc %d err '%s'", b->name, rc, err);
    }
}

static void test_hostile_structure(void **state)
{
    uint8_t img[512];
    struct loader_entry e;
    char err[128];
    size_t n = make_elf(img, SEG_PADDR, SEG_PADDR, SEG_PADDR, 64, 64);
    put_mb1(img + SEG_OFF, 0);

    uint8_t bad[512];
    memcpy(bad, img, n);
    w32(bad + 28, 0xFFFFFFF0u); /* phoff past the end, and overflowing */
    assert_int_equal(load_mb(bad, n, GUEST_MEM, "", &e, err, sizeof err), E_INVAL);
    assert_non_null(strstr(err, "program headers"));

    memcpy(bad, img, n);
    w32(bad + 52 + 4, 0xFFFFFFF0u); /* p_offset: offset + filesz overflows 32 bits */
    assert_int_equal(load_mb(bad, n, GUEST_MEM, "", &e, err, sizeof err), E_INVAL);
    assert_non_null(strstr(err, "past the end"));

    memcpy(bad, img, n);
    w16(bad + 44, 0); /* no program headers */
    assert_int_equal(load_mb(bad, n, GUEST_MEM, "", &e, err, sizeof err), E_INVAL);

    memcpy(bad, img, n);
    w32(bad + SEG_OFF + 8, 0); /* checksum broken: no valid header anywhere */
    assert_int_equal(load_mb(bad, n, GUEST_MEM, "", &e, err, sizeof err), E_INVAL);
    assert_non_null(strstr(err, "no Multiboot header"));

    /* every truncation of a good image fails cleanly or loads what is there */
    for (size_t len = 0; len < n; len++) {
        int rc = load_mb(img, len, GUEST_MEM, "", &e, err, sizeof err);
        assert_true(rc == E_INVAL || rc == E_RANGE);
    }
    assert_int_equal(load_mb(img, n, 1u << 20, "", &e, err, sizeof err), E_RANGE);
    assert_non_null(strstr(err, "below the minimum"));
}

static void test_random_bytes_never_crash(void **state)
{
    /* Random images with a valid Multiboot header at a random place. */
    srand(42);
    static uint8_t img[4096];
    for (int iter = 0; iter < 3000; iter++) {
        for (size_t i = 0; i < sizeof img; i++)
            img[i] = (uint8_t)rand();
        if (iter & 1)
            memcpy(img, "\x7f" "ELF\x01\x01\x01", 7);
        size_t at = ((size_t)rand() % 2000) & ~3u;
        put_mb1(img + at, (uint32_t)rand() & 0x10003);
        struct loader_entry e;
        char err[128];
        int rc = load_mb(img, sizeof img, GUEST_MEM, "x", &e, err, sizeof err);
        if (rc == 0) {
            assert_true(e.eip >= e.load_lo && e.eip < e.load_hi);
            assert_true(e.load_hi <= GUEST_MEM);
        } else {
            assert_true(err[0] != '\0');
        }
    }
}

static void test_real_hv86_elf(void **state)
{
    /* hv86.elf is a Multiboot2 ELF made by GNU ld: it loads, with the ELF entry. */
    FILE *f = fopen("hv86.elf", "rb");
    if (!f)
        fail_msg("hv86.elf not built (the unit tests run after `make hv86.elf`)");
    static uint8_t buf[4 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    struct loader_entry e;
    char err[160];
    int rc = load_mb(buf, n, GUEST_MEM, "", &e, err, sizeof err);
    if (rc)
        fail_msg("hv86.elf: %s", err);
    uint32_t entry;
    memcpy(&entry, buf + 24, 4);
    assert_int_equal(e.version, 2);
    assert_int_equal(e.eip, entry);
    assert_int_equal(e.load_lo, 0x100000);
    /* the Multiboot2 header is where the ELF puts it: first bytes at 1 MiB */
    assert_int_equal(g32(0x100000), 0xE85250D6u);
}

/* ---------------------------------------------------------------- Linux bzImage */

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    if (fread(b, 1, *n, f) != *n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* A file the tests need, read whole (malloc'd); the test fails if it is missing. */
static uint8_t *must_read(const char *path, size_t *n)
{
    uint8_t *b = read_file(path, n);
    if (!b)
        fail_msg("%s missing (hv86.elf: make hv86.elf; vmlinuz: scripts/fetch-debian.sh)", path);
    return b;
}

/* Guest RAM big enough for Debian's kernel. */
#define LINUX_MEM (64u << 20)
static int setup_linux(void **state)
{
    guest = calloc(1, LINUX_MEM);
    guest_size = LINUX_MEM;
    return guest ? 0 : -1;
}

static uint32_t l32(uint32_t gpa) { uint32_t v; memcpy(&v, guest + gpa, 4); return v; }

/* Debian's own i386 kernel, loaded as boot.rst says; every field checked
 * against the image's header or what we asked for. */
static void test_linux_real_kernel(void **state)
{
    size_t n = 0;
    uint8_t *img = must_read("build/debian/vmlinuz", &n);
    static uint8_t rd[300000];
    for (size_t i = 0; i < sizeof rd; i++)
        rd[i] = (uint8_t)(i * 13);
    struct loader_entry e;
    char err[160];
    assert_true(is_linux(img, n));
    int rc = load_lx(img, n, rd, sizeof rd, LINUX_MEM, "console=ttyS0 quiet", &e, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    unsigned setup = img[0x1F1] ? img[0x1F1] : 4;
    size_t pm = (setup + 1) * 512u;
    assert_int_equal(e.version, LOADER_LINUX);
    assert_int_equal(e.eip, 0x100000);
    assert_int_equal(e.esi, LINUX_BOOT_PARAMS_GPA);
    assert_int_equal(e.cs, 0x10);
    assert_int_equal(e.ds, 0x18);
    assert_memory_equal(guest + 0x100000, img + pm, n - pm);
    uint32_t bp = LINUX_BOOT_PARAMS_GPA;
    assert_memory_equal(guest + bp + 0x202, "HdrS", 4);
    assert_int_equal(guest[bp + 0x1F1], img[0x1F1]);
    assert_int_equal(guest[bp + 0x210], 0xFF);                   /* type_of_loader */
    assert_string_equal((char *)guest + l32(bp + 0x228), "console=ttyS0 quiet");
    uint32_t rd_gpa = l32(bp + 0x218);
    assert_int_equal(l32(bp + 0x21C), sizeof rd);
    assert_int_equal(rd_gpa % 4096, 0);
    assert_true(rd_gpa + sizeof rd <= LINUX_MEM && rd_gpa + sizeof rd > LINUX_MEM - 4096);
    assert_memory_equal(guest + rd_gpa, rd, sizeof rd);
    assert_int_equal(guest[bp + 0x1E8], 3);                       /* e820 entries */
    uint64_t a, sz;
    uint32_t type;
    memcpy(&a, guest + bp + 0x2D0 + 40, 8);
    memcpy(&sz, guest + bp + 0x2D0 + 48, 8);
    memcpy(&type, guest + bp + 0x2D0 + 56, 4);
    assert_int_equal(a, 0x100000);
    assert_int_equal(sz, LINUX_MEM - 0x100000);
    assert_int_equal(type, 1);
    /* the GDT with __BOOT_CS / __BOOT_DS */
    uint64_t cs, ds;
    memcpy(&cs, guest + e.gdt_base + 0x10, 8);
    memcpy(&ds, guest + e.gdt_base + 0x18, 8);
    assert_int_equal((cs >> 40) & 0xFF, 0x9A);
    assert_int_equal((ds >> 40) & 0xFF, 0x92);

    /* hostile and impossible variants of the same image */
    assert_int_equal(load_lx(img, n, rd, sizeof rd, 16u << 20, "", &e, err, sizeof err), E_RANGE);
    assert_non_null(strstr(err, "too small"));
    assert_int_equal(load_lx(img, 1500, NULL, 0, LINUX_MEM, "", &e, err, sizeof err), E_INVAL);
    assert_non_null(strstr(err, "truncated"));
    static char longcmd[4000];
    memset(longcmd, 'x', sizeof longcmd - 1);
    assert_int_equal(load_lx(img, n, NULL, 0, LINUX_MEM, longcmd, &e, err, sizeof err), E_TOOBIG);
    uint8_t *big = malloc(60u << 20);
    assert_int_equal(load_lx(img, n, big, 60u << 20, LINUX_MEM, "", &e, err, sizeof err), E_RANGE);
    assert_non_null(strstr(err, "does not fit"));
    free(big);
    uint8_t *bad = malloc(n);
    memcpy(bad, img, n);
    bad[0x206] = 0x02, bad[0x207] = 0x02; /* protocol 2.02 */
    assert_int_equal(load_lx(bad, n, NULL, 0, LINUX_MEM, "", &e, err, sizeof err), E_INVAL);
    assert_non_null(strstr(err, "older than 2.04"));
    bad[0x202] = 'X';
    assert_false(is_linux(bad, n));
    assert_int_equal(load_lx(bad, n, NULL, 0, LINUX_MEM, "", &e, err, sizeof err), E_INVAL);
    memcpy(bad, img, n);
    bad[0x1F1] = 0xFF; /* setup_sects past the end of a small image */
    assert_int_equal(load_lx(bad, 0x20000, NULL, 0, LINUX_MEM, "", &e, err, sizeof err), E_INVAL);
    free(bad);
    free(img);
}

/* ---------------------------------------------------------------- images read in pieces */

/*
 * The same image scattered over separately allocated pieces of `piece` bytes
 * (the last one shorter), allocated last piece first so that no two are
 * adjacent: what a GRUB module moved into high frames looks like, with any
 * piece size. Reads crossing a piece boundary are counted.
 */
struct pieces {
    uint8_t **p;
    size_t npieces, piece, size;
    unsigned crossings;
};

static struct pieces *pieces_new(const uint8_t *img, size_t n, size_t piece)
{
    struct pieces *ps = calloc(1, sizeof(*ps));
    ps->piece = piece;
    ps->size = n;
    ps->npieces = (n + piece - 1) / piece;
    ps->p = calloc(ps->npieces, sizeof(*ps->p));
    for (size_t i = ps->npieces; i-- > 0;) {
        size_t len = MIN(piece, n - i * piece);
        ps->p[i] = malloc(len);
        memcpy(ps->p[i], img + i * piece, len);
    }
    return ps;
}

static void pieces_free(struct pieces *ps)
{
    for (size_t i = 0; i < ps->npieces; i++)
        free(ps->p[i]);
    free(ps->p);
    free(ps);
}

static int pieces_read(void *ctx, uint32_t off, void *out, uint32_t len)
{
    struct pieces *ps = ctx;
    if (len == 0 || (uint64_t)off + len > ps->size)
        fail_msg("read of [%u, +%u) outside the %zu-byte image", off, len, ps->size);
    ps->crossings += off / ps->piece != (off + len - 1) / ps->piece;
    for (uint8_t *o = out; len;) {
        size_t i = off / ps->piece, at = off % ps->piece, n = MIN((size_t)len, ps->piece - at);
        memcpy(o, ps->p[i] + at, n);
        o += n;
        off += (uint32_t)n;
        len -= (uint32_t)n;
    }
    return 0;
}

/* One load; guest RAM starts as 0xCC, so untouched bytes compare too. */
static int load_image(const struct loader_image *img, const struct loader_image *rd, uint32_t mem,
                      struct loader_entry *e, char *err, size_t errlen)
{
    memset(guest, 0xCC, guest_size);
    if (loader_is_linux(img))
        return loader_load_linux(img, rd, mem, "console=ttyS0", &ops, e, err, errlen);
    return loader_load_multiboot(img, mem, "console=ttyS0", &ops, e, err, errlen);
}

/* Load img (and rd) from whole buffers, then scattered in pieces of each
 * size in piece_sizes: guest RAM and entry state must not differ by a byte. */
static void check_pieces_same(const char *what, const uint8_t *img, size_t n, const uint8_t *rd, size_t rdn,
                              const size_t *piece_sizes, size_t nsizes)
{
    struct buf_image b = { img, n }, r = { rd, rdn };
    struct loader_image whole = { n, buf_read, &b }, whole_rd = { rdn, buf_read, &r };
    struct loader_entry want, got;
    char err[160];
    if (load_image(&whole, rd ? &whole_rd : NULL, guest_size, &want, err, sizeof err))
        fail_msg("%s: %s", what, err);
    uint8_t *ref = malloc(guest_size);
    memcpy(ref, guest, guest_size);
    for (size_t k = 0; k < nsizes; k++) {
        struct pieces *pi = pieces_new(img, n, piece_sizes[k]), *pr = rd ? pieces_new(rd, rdn, piece_sizes[k]) : NULL;
        struct loader_image scattered = { n, pieces_read, pi }, scattered_rd = { rdn, pieces_read, pr };
        if (load_image(&scattered, pr ? &scattered_rd : NULL, guest_size, &got, err, sizeof err))
            fail_msg("%s in %zu-byte pieces: %s", what, piece_sizes[k], err);
        if (memcmp(guest, ref, guest_size)) {
            size_t at = 0;
            while (guest[at] == ref[at])
                at++;
            fail_msg("%s in %zu-byte pieces: guest RAM differs at %#zx", what, piece_sizes[k], at);
        }
        if (got.eip != want.eip || got.eax != want.eax || got.ebx != want.ebx || got.esi != want.esi ||
            got.version != want.version || got.load_lo != want.load_lo || got.load_hi != want.load_hi ||
            got.gdt_base != want.gdt_base || got.gdt_limit != want.gdt_limit || got.cs != want.cs || got.ds != want.ds)
            fail_msg("%s in %zu-byte pieces: another entry state (eip %#x, want %#x)", what, piece_sizes[k],
                     got.eip, want.eip);
        if (piece_sizes[k] % 256 && n > piece_sizes[k]) /* odd sizes: reads were cut by piece boundaries */
            assert_true(pi->crossings > 0);
        pieces_free(pi);
        if (pr)
            pieces_free(pr);
    }
    free(ref);
}

static void test_pieces_multiboot(void **state)
{
    static const size_t sizes[] = { 4096, 1021, 7, 1 };
    uint8_t img[512];
    size_t n = make_elf(img, SEG_PADDR, SEG_PADDR, SEG_PADDR + 12, 300, 0x2000);
    put_mb1(img + SEG_OFF, 0x3);
    check_pieces_same("ELF with bss", img, n, NULL, 0, sizes, ARRAY_SIZE(sizes));

    size_t hn = 0;
    uint8_t *hv = must_read("hv86.elf", &hn);
    check_pieces_same("hv86.elf", hv, hn, NULL, 0, sizes, 3);
    free(hv);
}

static void test_pieces_linux(void **state)
{
    static const size_t sizes[] = { 4096, 1021 };
    size_t n = 0;
    uint8_t *img = must_read("build/debian/vmlinuz", &n);
    size_t rdn = 1234567; /* not a multiple of anything the loader uses */
    uint8_t *rd = malloc(rdn);
    for (size_t i = 0; i < rdn; i++)
        rd[i] = (uint8_t)(i * 7 + (i >> 12));
    check_pieces_same("vmlinuz + initrd", img, n, rd, rdn, sizes, ARRAY_SIZE(sizes));
    free(rd);
    free(img);
}

/* A reader that fails from byte fail_at on, as a broken module store would. */
struct failing {
    struct buf_image b;
    uint32_t fail_at;
};

static int failing_read(void *ctx, uint32_t off, void *out, uint32_t len)
{
    struct failing *f = ctx;
    if ((uint64_t)off + len > f->fail_at)
        return E_IO;
    return buf_read(&f->b, off, out, len);
}

static void test_read_errors(void **state)
{
    size_t n = 0;
    uint8_t *hv = must_read("hv86.elf", &n);
    struct loader_entry e;
    char err[160];
    /* in the header search, in a segment: the read's error and reason win */
    static const uint32_t at[] = { 0, 4096 + 100, 200000 };
    for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
        struct failing f = { { hv, n }, at[i] };
        struct loader_image li = { n, failing_read, &f };
        err[0] = 0;
        assert_int_equal(loader_load_multiboot(&li, GUEST_MEM, "", &ops, &e, err, sizeof err), E_IO);
        if (!strstr(err, "cannot read the image at byte"))
            fail_msg("failing at %u: '%s'", at[i], err);
    }
    free(hv);

    uint8_t *img = must_read("build/debian/vmlinuz", &n);
    struct failing fk = { { img, n }, (uint32_t)n / 2 }, fr = { { img, n }, 5000 };
    struct buf_image bk = { img, n };
    struct loader_image kbad = { n, failing_read, &fk }, kgood = { n, buf_read, &bk }, rbad = { n, failing_read, &fr };
    assert_int_equal(loader_load_linux(&kbad, NULL, LINUX_MEM, "", &ops, &e, err, sizeof err), E_IO);
    assert_non_null(strstr(err, "cannot read the image at byte"));
    assert_int_equal(loader_load_linux(&kgood, &rbad, LINUX_MEM, "", &ops, &e, err, sizeof err), E_IO);
    assert_non_null(strstr(err, "cannot read the initrd at byte 4096"));
    fk.fail_at = 0x100; /* the header itself cannot be read */
    assert_false(loader_is_linux(&kbad));
    assert_int_equal(loader_load_linux(&kbad, NULL, LINUX_MEM, "", &ops, &e, err, sizeof err), E_IO);
    assert_non_null(strstr(err, "cannot read the image at byte 514")); /* the signature, 0x202 */
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mb1_elf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mb1_entry_virtual_translated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mb1_aout_kludge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mb2_elf_with_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mb2_required_unknown_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_elf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_structure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_bytes_never_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_hv86_elf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_real_kernel, setup_linux, teardown),
        cmocka_unit_test_setup_teardown(test_pieces_multiboot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pieces_linux, setup_linux, teardown),
        cmocka_unit_test_setup_teardown(test_read_errors, setup_linux, teardown),
    };
    return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
