/*
 * Per-VM monitor window (contract in kernel/vmwin.h). Source: Intel SDM
 * Vol. 3A §4.3 (32-bit paging), §4.10.2.4 and §4.10.4.1 (global pages, CR3
 * loads).
 */
#include "kernel/vmwin.h"
#include "kernel/kernel.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/sched.h"
#include "kernel/x86.h"

#define WIN_PTE (PTE_P | PTE_RW) /* supervisor, not global: see kernel/vmwin.h */
/* A page vmwin_reserve handed out: it owns no frame (PTE bit 9, one the
 * CPU leaves to software, SDM Vol. 3A Table 4-6); what vmwin_alias points
 * it at belongs to someone else, and vmwin_destroy frees nothing there. */
#define WIN_PTE_BORROWED 0x200u

static void *direct_frame(uint32_t *pa)
{
    if (frame_alloc(ZONE_DIRECT, 1, pa))
        return NULL;
    memset(phys_to_virt(*pa), 0, PAGE_SIZE);
    return phys_to_virt(*pa);
}

int vmwin_init(struct vmwin *w)
{
    uint32_t pa;
    *w = (struct vmwin){ 0 };
    uint32_t *pd = direct_frame(&w->pd_hpa);
    if (!pd)
        return E_NOMEM;
    memcpy(pd + MONITOR_PDE_FIRST, paging_monitor_pdes(), MONITOR_PDES * 4);
    for (unsigned i = 0; i < VMWIN_PDES; i++) {
        if (!(w->pt[i] = direct_frame(&pa))) {
            vmwin_destroy(w);
            return E_NOMEM;
        }
        pd[VMWIN_PDE_FIRST + i] = pa | WIN_PTE;
    }
    memcpy(w->pdes, pd + MONITOR_PDE_FIRST, sizeof(w->pdes));
    return 0;
}

static uint32_t *pte_of(const struct vmwin *w, uint32_t page)
{
    return &w->pt[page / 1024][page % 1024];
}

int vmwin_alloc(struct vmwin *w, uint32_t bytes, void **va)
{
    uint32_t n = ALIGN_UP(bytes, PAGE_SIZE) / PAGE_SIZE, pa;
    if (n > VMWIN_PAGES - w->pages)
        return E_RANGE;
    for (uint32_t i = 0; i < n; i++) {
        if (frame_alloc_exact(ZONE_HIGH, 1, &pa)) {
            while (i--) {
                frame_free(*pte_of(w, w->pages + i) & PTE_FRAME, 1);
                *pte_of(w, w->pages + i) = 0;
            }
            return E_NOMEM;
        }
        kmap_copy(pa, 0, NULL, PAGE_SIZE, KMAP_ZERO); /* no bytes of a VM that used the frame before */
        *pte_of(w, w->pages + i) = pa | WIN_PTE;
    }
    *va = (void *)(uintptr_t)(VMWIN_BASE + w->pages * PAGE_SIZE);
    w->pages += n;
    return 0;
}

int vmwin_reserve(struct vmwin *w, void **va)
{
    if (w->pages == VMWIN_PAGES)
        return E_RANGE;
    *pte_of(w, w->pages) = WIN_PTE_BORROWED; /* not present */
    *va = (void *)(uintptr_t)(VMWIN_BASE + w->pages * PAGE_SIZE);
    w->pages++;
    return 0;
}

void vmwin_alias(struct vmwin *w, const void *va, uint32_t hpa)
{
    uint32_t lin = (uint32_t)(uintptr_t)va, *pte = pte_of(w, (lin - VMWIN_BASE) / PAGE_SIZE);
    KASSERT(in_vmwin(lin) && (lin - VMWIN_BASE) / PAGE_SIZE < w->pages && (*pte & WIN_PTE_BORROWED));
    *pte = hpa ? (hpa & PAGE_MASK) | PTE_P | WIN_PTE_BORROWED : WIN_PTE_BORROWED;
    invlpg(lin); /* the VM's window is in the current address space: the caller's */
}

uint32_t vmwin_hpa(const struct vmwin *w, const void *va)
{
    uint32_t lin = (uint32_t)(uintptr_t)va;
    if (!in_vmwin(lin) || (lin - VMWIN_BASE) / PAGE_SIZE >= w->pages)
        return 0;
    return (*pte_of(w, (lin - VMWIN_BASE) / PAGE_SIZE) & PTE_FRAME) | (lin & (PAGE_SIZE - 1));
}

uint32_t vmwin_enter(const struct vmwin *w) { return thread_set_cr3(w->pd_hpa); }

void vmwin_leave(uint32_t token) { thread_set_cr3(token); }

void vmwin_destroy(struct vmwin *w)
{
    for (uint32_t p = 0; p < w->pages; p++)
        if (!(*pte_of(w, p) & WIN_PTE_BORROWED))
            frame_free(*pte_of(w, p) & PTE_FRAME, 1);
    for (unsigned i = 0; i < VMWIN_PDES; i++)
        if (w->pt[i])
            frame_free(virt_to_phys(w->pt[i]), 1);
    if (w->pd_hpa)
        frame_free(w->pd_hpa, 1);
    *w = (struct vmwin){ 0 };
}
