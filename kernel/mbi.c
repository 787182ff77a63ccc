/*
 * Multiboot2 information parser. The structure is untrusted input in the
 * sense that a broken loader must give a clear error, not a wild pointer:
 * every size is bounds-checked against total_size.
 * Source: Multiboot2 specification §3.6.
 */
#include "boot/multiboot2.h"
#include "kernel/boot.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"

struct boot_info boot_info;

static void copy_str(char *dst, size_t cap, const char *src, size_t max)
{
    size_t n = strnlen(src, max);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void parse_mmap(const struct mb2_tag_mmap *t)
{
    if (t->entry_size < sizeof(struct mb2_mmap_entry))
        return;
    uint32_t n = (t->size - sizeof(*t)) / t->entry_size;
    for (uint32_t i = 0; i < n; i++) {
        const struct mb2_mmap_entry *e =
            (const void *)((const uint8_t *)t->entries + i * t->entry_size);
        struct mem_range r = { e->base_addr, e->length };
        if (e->type == MB2_MMAP_AVAILABLE && boot_info.nmmap < BOOT_MAX_MMAP)
            boot_info.avail[boot_info.nmmap++] = r;
        else if (e->type != MB2_MMAP_AVAILABLE && boot_info.nreserved_mmap < BOOT_MAX_MMAP)
            boot_info.reserved_mmap[boot_info.nreserved_mmap++] = r;
    }
}

static void parse_module(const struct mb2_tag_module *t)
{
    if (boot_info.nmodules >= BOOT_MAX_MODULES) {
        log_warn("boot: more than %d modules, ignoring the rest", BOOT_MAX_MODULES);
        return;
    }
    if (t->mod_end < t->mod_start) {
        log_warn("boot: module at %08x ends before it starts (%08x), ignored", t->mod_start, t->mod_end);
        return;
    }
    struct boot_module *m = &boot_info.modules[boot_info.nmodules++];
    size_t maxlen = t->size - sizeof(*t);
    const char *s = t->cmdline;
    size_t i = 0;
    while (i < maxlen && s[i] == ' ')
        i++;
    size_t w = i;
    while (w < maxlen && s[w] && s[w] != ' ')
        w++;
    copy_str(m->name, sizeof(m->name), s + i, w - i);
    while (w < maxlen && s[w] == ' ')
        w++;
    copy_str(m->args, sizeof(m->args), s + w, maxlen - w);
    m->grub_pa = t->mod_start;
    m->size = t->mod_end - t->mod_start;
    m->frames = NULL;
}

/*
 * GRUB puts the Multiboot information after the modules it loads: with the
 * bench ISO's 40 MB of modules it lands above the 48 MiB direct map. Then
 * it is copied here, a page at a time through the kmap window, and parsed
 * from the copy (everything kept is copied out of it anyway).
 */
#define MBI_COPY_MAX 16384u
static uint8_t mbi_copy[MBI_COPY_MAX] __attribute__((aligned(8)));

static void copy_phys(uint32_t pa, void *buf, uint32_t len)
{
    uint8_t *p = buf;
    while (len) {
        uint32_t off = pa & (PAGE_SIZE - 1), n = MIN(len, PAGE_SIZE - off);
        kmap_copy(pa & ~(PAGE_SIZE - 1), off, p, n, KMAP_READ);
        pa += n, p += n, len -= n;
    }
}

static const struct mb2_info *map_mbi(uint32_t mbi_phys)
{
    if ((uint64_t)mbi_phys + MBI_COPY_MAX <= DIRECTMAP_SIZE)
        return phys_to_virt(mbi_phys);
    struct mb2_info head;
    copy_phys(mbi_phys, &head, sizeof(head));
    if (head.total_size < sizeof(head) || head.total_size > MBI_COPY_MAX)
        return NULL;
    copy_phys(mbi_phys, mbi_copy, head.total_size);
    return (const struct mb2_info *)mbi_copy;
}

int boot_info_parse(uint32_t magic, uint32_t mbi_phys)
{
    if (magic != MB2_BOOTLOADER_MAGIC)
        return E_INVAL;
    if ((uint64_t)mbi_phys + sizeof(struct mb2_info) > UINT32_MAX)
        return E_RANGE;
    const struct mb2_info *info = map_mbi(mbi_phys);
    if (!info)
        return E_RANGE; /* larger than MBI_COPY_MAX beyond the direct map */
    if (info->total_size < sizeof(*info) || (uint64_t)mbi_phys + info->total_size > UINT32_MAX)
        return E_INVAL;
    boot_info.mbi_phys = mbi_phys;
    boot_info.mbi_size = info->total_size;
    const uint8_t *p = (const uint8_t *)(info + 1), *end = (const uint8_t *)info + info->total_size;
    while (p + sizeof(struct mb2_tag) <= end) {
        const struct mb2_tag *t = (const void *)p;
        if (t->size < sizeof(*t) || p + t->size > end)
            return E_INVAL;
        if (t->type == MB2_TAG_END)
            return 0;
        const struct mb2_tag_string *ts = (const void *)t;
        switch (t->type) {
        case MB2_TAG_CMDLINE:
            copy_str(boot_info.cmdline, sizeof(boot_info.cmdline), ts->string, t->size - sizeof(*t));
            break;
        case MB2_TAG_LOADER_NAME:
            copy_str(boot_info.loader, sizeof(boot_info.loader), ts->string, t->size - sizeof(*t));
            break;
        case MB2_TAG_MMAP:
            if (t->size >= sizeof(struct mb2_tag_mmap))
                parse_mmap((const void *)t);
            break;
        case MB2_TAG_MODULE:
            if (t->size >= sizeof(struct mb2_tag_module))
                parse_module((const void *)t);
            break;
        }
        p += ALIGN_UP(t->size, 8u);
    }
    return E_INVAL; /* no end tag */
}

bool boot_option(const char *opt)
{
    size_t n = strlen(opt);
    for (const char *s = boot_info.cmdline; *s; s++) {
        bool at_word = (s == boot_info.cmdline || s[-1] == ' ');
        if (at_word && !strncmp(s, opt, n) && (s[n] == ' ' || s[n] == '\0'))
            return true;
    }
    return false;
}

const struct boot_module *boot_module_find(const char *name)
{
    for (uint32_t i = 0; i < boot_info.nmodules; i++)
        if (!strcmp(boot_info.modules[i].name, name))
            return &boot_info.modules[i];
    return NULL;
}
