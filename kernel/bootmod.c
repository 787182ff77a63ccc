/*
 * GRUB modules: moving them out of the direct map, and reading them
 * wherever they are (contract in kernel/boot.h).
 *
 * GRUB loads the modules just above the hypervisor image, inside the direct
 * map that the heap, page tables and translation caches must come from: the
 * guest kernels and initrds are ~10 MiB of its ~36. boot_modules_move copies
 * each module into ZONE_HIGH frames one 4 KiB piece at a time (no contiguous
 * high run needed) and keeps the list of pieces; kmain then gives GRUB's
 * frames back to the allocator. Nothing reads a module through its GRUB
 * address once it has frames: boot_module_read is the one way in.
 */
#include "kernel/boot.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/x86.h"

static uint32_t module_pages(const struct boot_module *m) { return ALIGN_UP(m->size, PAGE_SIZE) / PAGE_SIZE; }

/* Host physical address of the module's byte off. */
static uint32_t module_pa(const struct boot_module *m, uint32_t off)
{
    if (m->frames)
        return m->frames[off >> PAGE_SHIFT] + (off & (PAGE_SIZE - 1));
    return m->grub_pa + off;
}

/* Copy len bytes at host physical pa into buf; [pa, pa+len) within one page. */
static void phys_read_in_page(uint32_t pa, void *buf, uint32_t len)
{
    if (pa < DIRECTMAP_SIZE) { /* DIRECTMAP_SIZE is page aligned: so is the rest of the page */
        memcpy(buf, phys_to_virt(pa), len);
        return;
    }
    uint32_t fl = read_eflags(); /* kmap_cached: one window, no preemption while in use */
    cpu_cli();
    memcpy(buf, (const uint8_t *)kmap_cached(pa & PAGE_MASK) + (pa & (PAGE_SIZE - 1)), len);
    write_eflags(fl);
}

int boot_module_read(const struct boot_module *m, uint32_t off, void *buf, uint32_t len)
{
    if ((uint64_t)off + len > m->size)
        return E_RANGE;
    uint8_t *p = buf;
    while (len) {
        uint32_t pa = module_pa(m, off), n = MIN(len, PAGE_SIZE - (pa & (PAGE_SIZE - 1)));
        phys_read_in_page(pa, p, n);
        off += n;
        p += n;
        len -= n;
    }
    return 0;
}

/* ---------------------------------------------------------------- moving */

static void frames_free(const uint32_t *frames, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        frame_free(frames[i], 1);
}

/* Fill frame hpa with piece `page` of m (read where GRUB put it), zeros after
 * the module's end. kmap, not kmap_cached: boot_module_read may need that one
 * for the source if the module reaches above the direct map. */
static int copy_piece(const struct boot_module *m, uint32_t page, uint32_t hpa)
{
    uint32_t off = page * PAGE_SIZE, len = MIN(PAGE_SIZE, m->size - off);
    uint8_t *dst = hpa < DIRECTMAP_SIZE ? phys_to_virt(hpa) : kmap(hpa);
    if (!dst)
        return E_BUSY; /* every kmap slot taken: not at boot */
    int err = boot_module_read(m, off, dst, len);
    memset(dst + len, 0, PAGE_SIZE - len);
    if (hpa >= DIRECTMAP_SIZE)
        kunmap(dst);
    return err;
}

/* Copy m into frames of its own; on failure m is left as it was. */
static int module_move(struct boot_module *m)
{
    uint32_t n = module_pages(m), i;
    uint32_t *frames = kmalloc(n * sizeof(*frames));
    int err = 0;
    if (!frames)
        return E_NOMEM;
    for (i = 0; i < n; i++) {
        if ((err = frame_alloc(ZONE_HIGH, 1, &frames[i])))
            goto err_free_frames;
        if ((err = copy_piece(m, i, frames[i]))) {
            i++;
            goto err_free_frames;
        }
    }
    m->frames = frames;
    return 0;

err_free_frames:
    frames_free(frames, i);
    kfree(frames);
    return err;
}

uint32_t boot_modules_move(void)
{
    uint32_t moved = 0;
    for (uint32_t i = 0; i < boot_info.nmodules; i++) {
        struct boot_module *m = &boot_info.modules[i];
        if (m->frames || !m->size || m->grub_pa >= DIRECTMAP_SIZE)
            continue; /* nothing of it in the direct map to give back */
        int err = module_move(m);
        if (err)
            log_err("module '%s' (%u bytes): cannot copy it out of the direct map (%s); "
                    "it stays at %08x", m->name, m->size, err_name(err), m->grub_pa);
        else
            moved++;
    }
    return moved;
}
