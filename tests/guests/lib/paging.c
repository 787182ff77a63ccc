/* paging.c — one page directory, identity-mapped low 4 MiB, a small table pool. */
#include "guest.h"

#define IDENTITY_TOP   LARGE_SIZE   /* the guests live in the first 4 MiB */
#define TABLE_POOL     4            /* page tables for mappings above it */

pte_t kernel_pd[1024] ALIGNED(PAGE_SIZE);
static pte_t identity_pt[1024] ALIGNED(PAGE_SIZE);
static pte_t pool[TABLE_POOL][1024] ALIGNED(PAGE_SIZE);
static int pool_used;

uint32_t paging_identity(void)
{
    for (int i = 0; i < 1024; i++) {
        kernel_pd[i] = 0;
        identity_pt[i] = (uint32_t)i * PAGE_SIZE | PTE_P | PTE_W | PTE_U;
    }
    /* Page 0 stays present too: the BIOS data area is harmless to map and a
     * guest that wants null-pointer faults unmaps it itself. */
    kernel_pd[0] = (uint32_t)identity_pt | PTE_P | PTE_W | PTE_U;
    pool_used = 0;
    return (uint32_t)kernel_pd;
}

pte_t *paging_pte(uint32_t va)
{
    pte_t *pde = &kernel_pd[PDX(va)];
    if (!(*pde & PTE_P) || (*pde & PTE_PS)) {
        if (pool_used == TABLE_POOL) {
            check("paging-pool", false, "out of page tables at va 0x%x", va);
            guest_exit();
        }
        pte_t *pt = pool[pool_used++];
        for (int i = 0; i < 1024; i++)
            pt[i] = 0;
        *pde = (uint32_t)pt | PTE_P | PTE_W | PTE_U;
    }
    return (pte_t *)(*pde & PAGE_MASK) + PTX(va);
}

void paging_map(uint32_t va, uint32_t pa, uint32_t flags)
{
    *paging_pte(va) = (pa & PAGE_MASK) | flags;
    if (read_cr0() & CR0_PG)
        invlpg(va);
}

void paging_enable(uint32_t cr3)
{
    write_cr3(cr3);
    write_cr0(read_cr0() | CR0_PG);
}

/* Contract: the caller runs from identity-mapped code (true of all guest
 * code), so the next fetch after PG=0 finds the same bytes. */
void paging_disable(void)
{
    write_cr0(read_cr0() & ~CR0_PG);
}
