/*
 * Multiboot v1/v2 guest loader (contract in vmm/loader.h).
 *
 * Map:
 *   1. bounds-checked readers over the untrusted image: header fields through
 *      a small window the image's read callback refills, bulk bytes straight
 *      into guest RAM a chunk at a time
 *   2. header search: Multiboot2 (first 32 KiB, 8-aligned), then v1 (first
 *      8 KiB, 4-aligned)
 *   3. image placement: ELF32 PT_LOAD segments, or the a.out address kludge
 *   4. boot information: v1 struct + mmap, or v2 tags, at GUEST_MBI_GPA
 * Every failure returns E_INVAL/E_RANGE with a one-line reason; nothing in
 * the image is trusted (offsets, sizes, counts all checked for overflow).
 * A failed image read wins over every later reason: the checks after it saw
 * zeros, not the image.
 */
#include "vmm/loader.h"
#include "kernel/kernel.h"

#define MB1_SEARCH       8192u
#define MB2_HEADER_MAGIC 0xE85250D6u
#define MB2_SEARCH       32768u
#define MB2_ARCH_I386    0u

#define MB1_F_PAGE_ALIGN 0x00000001u /* modules page aligned: we load none */
#define MB1_F_MEMINFO    0x00000002u /* wants mem_* and mmap */
#define MB1_F_VIDEO      0x00000004u /* wants a video mode: not offered */
#define MB1_F_AOUT       0x00010000u /* address fields valid (a.out kludge) */
#define MB1_F_REQUIRED   0x0000FFFFu /* low half: must be honoured or refused */

/* v1 boot information (§3.3) */
#define MBI1_MEM      0x001u
#define MBI1_CMDLINE  0x004u
#define MBI1_MODS     0x008u
#define MBI1_MMAP     0x040u
#define MBI1_LOADER   0x200u
#define MBI1_SIZE     88u     /* through the VBE fields */

/* v2 header tags (§3.1.3) and boot information tags (§3.6) */
#define MB2H_END        0
#define MB2H_INFO_REQ   1
#define MB2H_ADDRESS    2
#define MB2H_ENTRY      3
#define MB2H_CONSOLE    4
#define MB2H_FRAMEBUF   5
#define MB2H_MODALIGN   6
#define MB2H_RELOC      10
#define MB2H_OPTIONAL   1u
#define MB2I_END        0u
#define MB2I_CMDLINE    1u
#define MB2I_LOADER     2u
#define MB2I_BASIC_MEM  4u
#define MB2I_MMAP       6u

#define MMAP_AVAILABLE 1u
#define MMAP_RESERVED  2u

/* ELF32 (TIS ELF 1.2) */
#define ELF_MAGIC      0x464C457Fu /* "\x7fELF" little-endian */
#define ELFCLASS32     1
#define ELFDATA2LSB    1
#define ET_EXEC        2
#define EM_386         3
#define PT_LOAD        1
#define ELF_MAX_PHDRS  64

#define LOADER_NAME "hv86"
#define PAGE_SIZE_4K 4096u

/* Image bytes per header-window refill, and per bulk copy step. Both on the
 * stack, not static: a vCPU thread reloads its guest on reset while the
 * console may be loading another. */
#define WINDOW_SIZE 256u
#define CHUNK_SIZE  1024u

struct ctx {
    const struct loader_image *img;
    size_t size;             /* img->size */
    uint32_t mem;
    const struct loader_ops *ops;
    char *err;
    size_t errlen;
    int read_err;            /* first failed image read, 0 if none */
    size_t win_off, win_len; /* image bytes [win_off, win_off + win_len) are in win */
    uint8_t win[WINDOW_SIZE];
};

static void ctx_init(struct ctx *c, const struct loader_image *img, uint32_t mem, const struct loader_ops *ops,
                     char *err, size_t errlen)
{
    c->img = img;
    c->size = img->size;
    c->mem = mem;
    c->ops = ops;
    c->err = err;
    c->errlen = errlen;
    c->read_err = 0;
    c->win_off = c->win_len = 0;
}

static int fail(struct ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct ctx *c, int code, const char *fmt, ...)
{
    if (c->read_err)
        return c->read_err; /* its reason stands */
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---------------------------------------------------------------- readers */

static bool in_image(const struct ctx *c, uint64_t off, uint64_t len) { return off + len <= c->size; }

/* Read image bytes [off, off+len) of src with the callback; a failure is
 * recorded as the load's reason. */
static int image_read(struct ctx *c, const struct loader_image *src, const char *what, uint64_t off, void *buf,
                      uint32_t len)
{
    int rc = src->read(src->ctx, (uint32_t)off, buf, len);
    if (!rc)
        return 0;
    rc = rc < 0 ? rc : E_IO;
    fail(c, rc, "cannot read %s at byte %llu (error %d)", what, (unsigned long long)off, rc);
    c->read_err = rc;
    return rc;
}

/* Image bytes [off, off+len), len <= 4, through the window; zeros past the
 * end (callers check in_image first) or after a failed read. */
static const uint8_t *peek(struct ctx *c, size_t off, uint32_t len)
{
    static const uint8_t zeros[4];
    if (off >= c->win_off && off + len <= c->win_off + c->win_len)
        return c->win + (off - c->win_off);
    if (c->read_err || !in_image(c, off, len))
        return zeros;
    uint32_t n = (uint32_t)MIN((size_t)WINDOW_SIZE, c->size - off);
    c->win_len = 0;
    if (image_read(c, c->img, "the image", off, c->win, n))
        return zeros;
    c->win_off = off;
    c->win_len = n;
    return c->win;
}

static uint8_t rd8(struct ctx *c, size_t off) { return *peek(c, off, 1); }

static uint32_t rd32(struct ctx *c, size_t off)
{
    const uint8_t *p = peek(c, off, 4);
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(struct ctx *c, size_t off)
{
    const uint8_t *p = peek(c, off, 2);
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Copy bytes [off, off+len) of src to guest-physical gpa, CHUNK_SIZE at a
 * time. Returns 0, the read's code (reason recorded) or E_RANGE when the
 * guest write fails (the caller gives the reason). */
static int copy_to_guest(struct ctx *c, const struct loader_image *src, const char *what, uint64_t off,
                         uint64_t len, uint32_t gpa)
{
    uint8_t chunk[CHUNK_SIZE];
    while (len) {
        uint32_t n = (uint32_t)MIN(len, (uint64_t)CHUNK_SIZE);
        int rc = image_read(c, src, what, off, chunk, n);
        if (rc)
            return rc;
        if (c->ops->write(c->ops->ctx, gpa, chunk, n))
            return E_RANGE;
        off += n;
        gpa += n;
        len -= n;
    }
    return 0;
}

/* ---------------------------------------------------------------- placement */

/* A guest range must be inside RAM and clear of the boot information and
 * of the legacy hole [GUEST_LOWMEM_END, GUEST_HIGHMEM). */
static int check_range(struct ctx *c, const char *what, int idx, uint64_t gpa, uint64_t len)
{
    uint64_t end = gpa + len;
    if (end > c->mem)
        return fail(c, E_RANGE, "%s %d [%#llx, %#llx) outside guest RAM (%u KiB)", what, idx,
                    (unsigned long long)gpa, (unsigned long long)end, c->mem / 1024);
    if (gpa < GUEST_MBI_GPA + GUEST_MBI_MAX && end > GUEST_MBI_GPA)
        return fail(c, E_RANGE, "%s %d [%#llx, %#llx) overlaps the boot information at %#x", what,
                    idx, (unsigned long long)gpa, (unsigned long long)end, GUEST_MBI_GPA);
    if (gpa < GUEST_HIGHMEM && end > GUEST_LOWMEM_END)
        return fail(c, E_RANGE, "%s %d [%#llx, %#llx) overlaps the ROM/video hole below 1 MiB", what,
                    idx, (unsigned long long)gpa, (unsigned long long)end);
    return 0;
}

static int place(struct ctx *c, const char *what, int idx, uint64_t off, uint64_t filesz, uint64_t gpa,
                 uint64_t memsz, struct loader_entry *e)
{
    if (memsz < filesz)
        return fail(c, E_INVAL, "%s %d: memory size %llu < file size %llu", what, idx,
                    (unsigned long long)memsz, (unsigned long long)filesz);
    if (!in_image(c, off, filesz))
        return fail(c, E_INVAL, "%s %d: file bytes [%llu, +%llu) past the end of the image (%zu bytes)",
                    what, idx, (unsigned long long)off, (unsigned long long)filesz, c->size);
    int err = check_range(c, what, idx, gpa, memsz);
    if (err)
        return err;
    if (copy_to_guest(c, c->img, "the image", off, filesz, (uint32_t)gpa))
        return fail(c, E_RANGE, "%s %d: guest write failed", what, idx);
    if (memsz > filesz && c->ops->zero(c->ops->ctx, (uint32_t)(gpa + filesz), (uint32_t)(memsz - filesz)))
        return fail(c, E_RANGE, "%s %d: guest zero-fill failed", what, idx);
    if (memsz) {
        e->load_lo = MIN(e->load_lo, (uint32_t)gpa);
        e->load_hi = MAX(e->load_hi, (uint32_t)(gpa + memsz));
    }
    return 0;
}

static int load_elf(struct ctx *c, struct loader_entry *e)
{
    if (c->size < 52 || rd32(c, 0) != ELF_MAGIC)
        return fail(c, E_INVAL, "not an ELF image and no a.out address fields in the Multiboot header");
    if (rd8(c, 4) != ELFCLASS32 || rd8(c, 5) != ELFDATA2LSB || rd16(c, 16) != ET_EXEC || rd16(c, 18) != EM_386)
        return fail(c, E_INVAL, "ELF image is not a 32-bit little-endian i386 executable");
    uint32_t entry = rd32(c, 24), phoff = rd32(c, 28);
    uint16_t phentsize = rd16(c, 42), phnum = rd16(c, 44);
    if (phentsize < 32 || phnum == 0 || phnum > ELF_MAX_PHDRS || !in_image(c, phoff, (uint64_t)phentsize * phnum))
        return fail(c, E_INVAL, "ELF program headers malformed (%u of %u bytes at %u)", phnum, phentsize, phoff);
    int loaded = 0;
    e->eip = entry;
    for (int i = 0; i < phnum; i++) {
        size_t ph = phoff + (size_t)i * phentsize;
        if (rd32(c, ph) != PT_LOAD)
            continue;
        uint32_t off = rd32(c, ph + 4), vaddr = rd32(c, ph + 8), paddr = rd32(c, ph + 12);
        uint32_t filesz = rd32(c, ph + 16), memsz = rd32(c, ph + 20);
        int err = place(c, "segment", i, off, filesz, paddr, memsz, e);
        if (err)
            return err;
        /* Like GRUB: an entry given as a virtual address is translated. */
        if (entry >= vaddr && (uint64_t)entry < (uint64_t)vaddr + memsz)
            e->eip = entry - vaddr + paddr;
        loaded++;
    }
    if (!loaded)
        return fail(c, E_INVAL, "ELF image has no loadable segment");
    if (e->eip < e->load_lo || e->eip >= e->load_hi)
        return fail(c, E_INVAL, "entry point %#x is outside the loaded image", e->eip);
    return 0;
}

/* a.out kludge: header_addr is where the header itself lands, which fixes
 * the file offset of load_addr (v1 §3.1.3, v2 §3.1.5). */
static int load_aout(struct ctx *c, size_t hdr_off, uint32_t header_addr, uint32_t load_addr,
                     uint32_t load_end, uint32_t bss_end, uint32_t entry, struct loader_entry *e)
{
    if (header_addr < load_addr || header_addr - load_addr > hdr_off)
        return fail(c, E_INVAL, "Multiboot address fields inconsistent (header %#x, load %#x)", header_addr, load_addr);
    size_t off = hdr_off - (header_addr - load_addr);
    uint64_t filesz = load_end ? (uint64_t)load_end - load_addr : c->size - off;
    if (load_end && load_end < load_addr)
        return fail(c, E_INVAL, "Multiboot load_end_addr %#x below load_addr %#x", load_end, load_addr);
    uint64_t memsz = bss_end ? (uint64_t)bss_end - load_addr : filesz;
    if (bss_end && memsz < filesz)
        return fail(c, E_INVAL, "Multiboot bss_end_addr %#x below the loaded image", bss_end);
    int err = place(c, "image", 0, off, filesz, load_addr, memsz, e);
    if (err)
        return err;
    e->eip = entry;
    if (entry < e->load_lo || entry >= e->load_hi)
        return fail(c, E_INVAL, "entry point %#x is outside the loaded image", entry);
    return 0;
}

/* ---------------------------------------------------------------- boot information */

struct mmap_ent {
    uint64_t base, len;
    uint32_t type;
};

static int guest_mmap(uint32_t mem, struct mmap_ent out[3])
{
    out[0] = (struct mmap_ent){ 0, GUEST_LOWMEM_END, MMAP_AVAILABLE };
    out[1] = (struct mmap_ent){ GUEST_LOWMEM_END, GUEST_HIGHMEM - GUEST_LOWMEM_END, MMAP_RESERVED };
    out[2] = (struct mmap_ent){ GUEST_HIGHMEM, mem - GUEST_HIGHMEM, MMAP_AVAILABLE };
    return 3;
}

/* Assemble the information in buf (GUEST_MBI_MAX bytes) then copy it once. */
struct mbi_buf {
    uint8_t b[GUEST_MBI_MAX];
    uint32_t len;
};

static uint32_t put(struct mbi_buf *m, const void *p, uint32_t n)
{
    uint32_t at = m->len;
    memcpy(m->b + at, p, n);
    m->len += n;
    return at;
}

static void put32(struct mbi_buf *m, uint32_t v) { put(m, &v, 4); }
static void put64(struct mbi_buf *m, uint64_t v) { put(m, &v, 8); }
static void set32(struct mbi_buf *m, uint32_t at, uint32_t v) { memcpy(m->b + at, &v, 4); }
static void align8(struct mbi_buf *m)
{
    while (m->len & 7)
        m->b[m->len++] = 0;
}

static void build_mbi1(struct mbi_buf *m, uint32_t mem, const char *cmdline)
{
    memset(m->b, 0, MBI1_SIZE);
    m->len = MBI1_SIZE;
    struct mmap_ent mm[3];
    int n = guest_mmap(mem, mm);
    uint32_t mmap_at = m->len;
    for (int i = 0; i < n; i++) {
        put32(m, 20); /* size of the rest of the entry */
        put64(m, mm[i].base);
        put64(m, mm[i].len);
        put32(m, mm[i].type);
    }
    uint32_t cmd_at = put(m, cmdline, (uint32_t)strlen(cmdline) + 1);
    uint32_t name_at = put(m, LOADER_NAME, sizeof(LOADER_NAME));
    set32(m, 0, MBI1_MEM | MBI1_CMDLINE | MBI1_MODS | MBI1_MMAP | MBI1_LOADER);
    set32(m, 4, GUEST_LOWMEM_END / 1024);
    set32(m, 8, (mem - GUEST_HIGHMEM) / 1024);
    set32(m, 12, 0xFFFFFFFFu); /* no BIOS boot device */
    set32(m, 16, GUEST_MBI_GPA + cmd_at);
    set32(m, 20, 0);           /* mods_count */
    set32(m, 24, 0);
    set32(m, 44, (uint32_t)n * 24u);
    set32(m, 48, GUEST_MBI_GPA + mmap_at);
    set32(m, 64, GUEST_MBI_GPA + name_at);
}

static void put_tag_string(struct mbi_buf *m, uint32_t type, const char *s)
{
    uint32_t n = (uint32_t)strlen(s) + 1;
    put32(m, type);
    put32(m, 8 + n);
    put(m, s, n);
    align8(m);
}

static void build_mbi2(struct mbi_buf *m, uint32_t mem, const char *cmdline)
{
    m->len = 8; /* total_size, reserved */
    put_tag_string(m, MB2I_CMDLINE, cmdline);
    put_tag_string(m, MB2I_LOADER, LOADER_NAME);
    put32(m, MB2I_BASIC_MEM);
    put32(m, 16);
    put32(m, GUEST_LOWMEM_END / 1024);
    put32(m, (mem - GUEST_HIGHMEM) / 1024);
    struct mmap_ent mm[3];
    int n = guest_mmap(mem, mm);
    put32(m, MB2I_MMAP);
    put32(m, 16 + (uint32_t)n * 24u);
    put32(m, 24); /* entry_size */
    put32(m, 0);  /* entry_version */
    for (int i = 0; i < n; i++) {
        put64(m, mm[i].base);
        put64(m, mm[i].len);
        put32(m, mm[i].type);
        put32(m, 0);
    }
    align8(m);
    put32(m, MB2I_END);
    put32(m, 8);
    set32(m, 0, m->len);
    set32(m, 4, 0);
}

/* ---------------------------------------------------------------- headers */

static int find_header(struct ctx *c, uint32_t magic, uint32_t window, uint32_t align, size_t *at)
{
    for (size_t off = 0; off + 12 <= c->size && off < window; off += align) {
        if (rd32(c, off) != magic)
            continue;
        uint32_t sum = magic + rd32(c, off + 4) + rd32(c, off + 8);
        if (magic == MB2_HEADER_MAGIC) {
            if (off + 16 > c->size)
                continue;
            sum += rd32(c, off + 12);
        }
        if (sum == 0) {
            *at = off;
            return 0;
        }
    }
    return E_NOENT;
}

static int load_v1(struct ctx *c, size_t h, struct loader_entry *e)
{
    uint32_t flags = rd32(c, h + 4);
    uint32_t unsupported = flags & MB1_F_REQUIRED & ~(MB1_F_PAGE_ALIGN | MB1_F_MEMINFO);
    if (unsupported)
        return fail(c, E_INVAL, "Multiboot header requires features hv86 does not offer (flags %#x)", unsupported);
    if (!(flags & MB1_F_AOUT))
        return load_elf(c, e);
    if (!in_image(c, h, 32))
        return fail(c, E_INVAL, "Multiboot header truncated");
    return load_aout(c, h, rd32(c, h + 12), rd32(c, h + 16), rd32(c, h + 20), rd32(c, h + 24), rd32(c, h + 28), e);
}

static bool mb2_info_provided(uint32_t type)
{
    return type == MB2I_CMDLINE || type == MB2I_LOADER || type == MB2I_BASIC_MEM || type == MB2I_MMAP;
}

static int load_v2(struct ctx *c, size_t h, struct loader_entry *e)
{
    uint32_t arch = rd32(c, h + 4), hlen = rd32(c, h + 8);
    if (arch != MB2_ARCH_I386)
        return fail(c, E_INVAL, "Multiboot2 header is for architecture %u, not i386", arch);
    if (hlen < 24 || !in_image(c, h, hlen))
        return fail(c, E_INVAL, "Multiboot2 header length %u malformed", hlen);
    bool have_addr = false, have_entry = false;
    uint32_t a[4] = { 0 }, entry = 0;
    for (size_t t = h + 16; t + 8 <= h + hlen;) {
        uint16_t type = rd16(c, t), tflags = rd16(c, t + 2);
        uint32_t tsize = rd32(c, t + 4);
        if (tsize < 8 || t + tsize > h + hlen)
            return fail(c, E_INVAL, "Multiboot2 header tag %u has bad size %u", type, tsize);
        bool optional = tflags & MB2H_OPTIONAL;
        if (type == MB2H_END)
            break;
        if (type == MB2H_INFO_REQ) {
            for (uint32_t i = 8; i + 4 <= tsize; i += 4)
                if (!mb2_info_provided(rd32(c, t + i)) && !optional)
                    return fail(c, E_INVAL, "Multiboot2 kernel requires boot information tag %u", rd32(c, t + i));
        } else if (type == MB2H_ADDRESS && tsize >= 24) {
            for (int i = 0; i < 4; i++)
                a[i] = rd32(c, t + 8 + 4 * i);
            have_addr = true;
        } else if (type == MB2H_ENTRY && tsize >= 12) {
            entry = rd32(c, t + 8);
            have_entry = true;
        } else if (type != MB2H_CONSOLE && type != MB2H_MODALIGN && type != MB2H_FRAMEBUF &&
                   type != MB2H_RELOC && !optional) {
            return fail(c, E_INVAL, "Multiboot2 header tag %u is required but not supported", type);
        }
        t += ALIGN_UP(tsize, 8u);
    }
    int err = have_addr ? load_aout(c, h, a[0], a[1], a[2], a[3], have_entry ? entry : 0, e) : load_elf(c, e);
    if (err)
        return err;
    if (have_entry) {
        if (entry < e->load_lo || entry >= e->load_hi)
            return fail(c, E_INVAL, "entry point %#x is outside the loaded image", entry);
        e->eip = entry;
    }
    return 0;
}

int loader_load_multiboot(const struct loader_image *img, uint32_t mem_bytes, const char *cmdline,
                          const struct loader_ops *ops, struct loader_entry *entry, char *err,
                          size_t errlen)
{
    struct ctx c;
    ctx_init(&c, img, mem_bytes, ops, err, errlen);
    if (err && errlen)
        err[0] = '\0';
    if (mem_bytes < GUEST_MIN_MEM)
        return fail(&c, E_RANGE, "guest RAM %u KiB is below the minimum %u KiB", mem_bytes / 1024, GUEST_MIN_MEM / 1024);
    if (!cmdline)
        cmdline = "";
    if (strlen(cmdline) > GUEST_MBI_MAX / 2)
        return fail(&c, E_TOOBIG, "command line longer than %u bytes", GUEST_MBI_MAX / 2);
    *entry = (struct loader_entry){ .load_lo = 0xFFFFFFFFu };
    size_t h;
    int rc;
    static struct mbi_buf mbi; /* 32 KiB: too big for a kernel stack */
    if (find_header(&c, MB2_HEADER_MAGIC, MB2_SEARCH, 8, &h) == 0) {
        rc = load_v2(&c, h, entry);
        entry->version = 2;
        entry->eax = MB2_BOOT_MAGIC;
        if (!rc)
            build_mbi2(&mbi, mem_bytes, cmdline);
    } else if (find_header(&c, MB1_HEADER_MAGIC, MB1_SEARCH, 4, &h) == 0) {
        rc = load_v1(&c, h, entry);
        entry->version = 1;
        entry->eax = MB1_BOOT_MAGIC;
        if (!rc)
            build_mbi1(&mbi, mem_bytes, cmdline);
    } else {
        return fail(&c, E_INVAL, "no Multiboot header in the first %u bytes", MB1_SEARCH);
    }
    if (rc || c.read_err)
        return rc ? rc : c.read_err;
    entry->ebx = GUEST_MBI_GPA;
    if (ops->write(ops->ctx, GUEST_MBI_GPA, mbi.b, mbi.len))
        return fail(&c, E_RANGE, "cannot write the boot information");
    return 0;
}

/* ---------------------------------------------------------------- Linux bzImage */

/* Setup header fields (boot.rst "The Real-Mode Kernel Header"), file offsets. */
#define LX_SETUP_SECTS   0x1F1
#define LX_HDR_END_REL   0x201 /* the header ends at 0x202 + this byte */
#define LX_HEADER        0x202 /* "HdrS" */
#define LX_VERSION       0x206
#define LX_TYPE_OF_LOADER 0x210
#define LX_LOADFLAGS     0x211
#define LX_CODE32_START  0x214
#define LX_RAMDISK_IMAGE 0x218
#define LX_RAMDISK_SIZE  0x21C
#define LX_CMD_LINE_PTR  0x228
#define LX_INITRD_MAX    0x22C
#define LX_CMDLINE_SIZE  0x238
#define LX_INIT_SIZE     0x260
#define LX_E820_ENTRIES  0x1E8 /* boot_params (zero page) offsets */
#define LX_E820_TABLE    0x2D0
#define LX_E820_MAX      128
#define LX_MAGIC         0x53726448u /* "HdrS" */
#define LX_MIN_VERSION   0x0204      /* 32-bit entry needs 2.04+ (initrd_addr_max etc.) */
#define LX_LOADED_HIGH   0x01
#define LX_TYPE_UNKNOWN  0xFF
#define LX_KERNEL_GPA    0x00100000u
#define LX_BOOT_CS       0x10
#define LX_BOOT_DS       0x18

static bool is_linux(struct ctx *c) { return c->size >= 0x260 && rd32(c, LX_HEADER) == LX_MAGIC; }

int loader_is_linux(const struct loader_image *img)
{
    struct ctx c;
    ctx_init(&c, img, 0, NULL, NULL, 0);
    return is_linux(&c);
}

static void put_e820(uint8_t *bp, uint32_t mem)
{
    struct mmap_ent mm[3];
    int n = guest_mmap(mem, mm);
    bp[LX_E820_ENTRIES] = (uint8_t)n;
    for (int i = 0; i < n; i++) {
        uint8_t *e = bp + LX_E820_TABLE + 20 * i; /* boot_e820_entry: u64 addr, u64 size, u32 type, packed */
        memcpy(e, &mm[i].base, 8);
        memcpy(e + 8, &mm[i].len, 8);
        memcpy(e + 16, &mm[i].type, 4);
    }
}

int loader_load_linux(const struct loader_image *img, const struct loader_image *initrd, uint32_t mem_bytes,
                      const char *cmdline, const struct loader_ops *ops, struct loader_entry *entry, char *err,
                      size_t errlen)
{
    struct ctx c;
    ctx_init(&c, img, mem_bytes, ops, err, errlen);
    size_t size = c.size, initrd_size = initrd ? initrd->size : 0;
    if (err && errlen)
        err[0] = '\0';
    if (!is_linux(&c))
        return fail(&c, E_INVAL, "not a bzImage: no HdrS signature at 0x202");
    uint16_t version = rd16(&c, LX_VERSION);
    if (version < LX_MIN_VERSION)
        return fail(&c, E_INVAL, "boot protocol %u.%02u is older than 2.04", version >> 8, version & 0xFF);
    if (!(rd8(&c, LX_LOADFLAGS) & LX_LOADED_HIGH))
        return fail(&c, E_INVAL, "not a bzImage (zImage kernels load below 1 MiB)");
    unsigned setup_sects = rd8(&c, LX_SETUP_SECTS) ? rd8(&c, LX_SETUP_SECTS) : 4;
    size_t pm_off = (size_t)(setup_sects + 1) * 512;
    size_t hdr_end = 0x202 + rd8(&c, LX_HDR_END_REL);
    if (pm_off >= size || hdr_end > pm_off)
        return fail(&c, E_INVAL, "bzImage truncated: %zu bytes, protected-mode code at %zu", size, pm_off);
    uint32_t init_size = version >= 0x020A ? rd32(&c, LX_INIT_SIZE) : 0;
    uint32_t need = LX_KERNEL_GPA + MAX((uint32_t)(size - pm_off), init_size);
    if (mem_bytes < need + (16u << 20))
        return fail(&c, E_RANGE, "guest RAM %u MiB is too small for this kernel (it needs %u MiB to unpack)",
                    mem_bytes >> 20, (need >> 20) + 16);
    if (!cmdline)
        cmdline = "";
    size_t cmd_max = version >= 0x0206 ? rd32(&c, LX_CMDLINE_SIZE) : 255;
    if (strlen(cmdline) > MIN(cmd_max, (size_t)LINUX_CMDLINE_MAX - 1))
        return fail(&c, E_TOOBIG, "command line longer than %zu bytes", MIN(cmd_max, (size_t)LINUX_CMDLINE_MAX - 1));

    *entry = (struct loader_entry){ .version = LOADER_LINUX, .load_lo = 0xFFFFFFFFu };
    int rc = place(&c, "kernel", 0, pm_off, size - pm_off, LX_KERNEL_GPA, size - pm_off, entry);
    if (rc)
        return rc;
    /* The initrd: page aligned at the top of RAM, below initrd_addr_max. */
    uint32_t rd_gpa = 0;
    if (initrd_size) {
        uint64_t top = MIN((uint64_t)mem_bytes, (uint64_t)rd32(&c, LX_INITRD_MAX) + 1);
        if (initrd_size > top || ALIGN_DOWN(top - initrd_size, (uint64_t)PAGE_SIZE_4K) < need)
            return fail(&c, E_RANGE, "initrd of %zu KiB does not fit above the kernel in %u MiB of RAM",
                        initrd_size / 1024, mem_bytes >> 20);
        rd_gpa = (uint32_t)ALIGN_DOWN(top - initrd_size, (uint64_t)PAGE_SIZE_4K);
        if (copy_to_guest(&c, initrd, "the initrd", 0, initrd_size, rd_gpa))
            return fail(&c, E_RANGE, "cannot write the initrd");
    }
    /* The zero page: the setup header as the kernel carries it, plus ours. */
    static uint8_t bp[4096];
    memset(bp, 0, sizeof(bp));
    if (image_read(&c, c.img, "the image", LX_SETUP_SECTS, bp + LX_SETUP_SECTS, (uint32_t)(hdr_end - LX_SETUP_SECTS)))
        return c.read_err;
    bp[LX_TYPE_OF_LOADER] = LX_TYPE_UNKNOWN;
    uint32_t v = LINUX_CMDLINE_GPA;
    memcpy(bp + LX_CMD_LINE_PTR, &v, 4);
    memcpy(bp + LX_RAMDISK_IMAGE, &rd_gpa, 4);
    v = (uint32_t)initrd_size;
    memcpy(bp + LX_RAMDISK_SIZE, &v, 4);
    put_e820(bp, mem_bytes);
    /* GDT: null, null, __BOOT_CS (0x10) flat code, __BOOT_DS (0x18) flat data. */
    static const uint64_t gdt[4] = { 0, 0, 0x00CF9A000000FFFFull, 0x00CF92000000FFFFull };
    if (ops->write(ops->ctx, LINUX_BOOT_PARAMS_GPA, bp, sizeof(bp)) ||
        ops->write(ops->ctx, LINUX_CMDLINE_GPA, cmdline, (uint32_t)strlen(cmdline) + 1) ||
        ops->write(ops->ctx, LINUX_GDT_GPA, gdt, sizeof(gdt)))
        return fail(&c, E_RANGE, "cannot write the boot parameters");
    entry->eip = version >= 0x0200 ? rd32(&c, LX_CODE32_START) : LX_KERNEL_GPA;
    entry->esi = LINUX_BOOT_PARAMS_GPA;
    entry->gdt_base = LINUX_GDT_GPA;
    entry->gdt_limit = sizeof(gdt) - 1;
    entry->cs = LX_BOOT_CS;
    entry->ds = LX_BOOT_DS;
    if (entry->eip != LX_KERNEL_GPA)
        return fail(&c, E_INVAL, "code32_start %#x: only kernels entered at 1 MiB are supported", entry->eip);
    return c.read_err;
}
