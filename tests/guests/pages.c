/*
 * pages — 4 KiB and 4 MiB (CR4.PSE) pages side by side, aliases between
 * them, and the TLB flushes that make a changed entry take effect: invlpg
 * for a PTE and a large PDE, a CR3 reload, and CR4.PGE off for global pages.
 *
 * Hazard: a shadow pager must emulate 4 MiB guest pages (perhaps with 4 KiB
 * shadow pages), and must treat invlpg / CR3 loads / CR4.PGE writes as the
 * moments a guest entry change becomes visible (SDM 3A 4.3, 4.10.4).
 * Stale translations are not checked: whether a stale entry is used before
 * the flush is not architecturally defined.
 */
#include "guest.h"

#define SMALL_VA  0x40000000u       /* 4 KiB page, retargeted */
#define LARGE_VA  0x80000000u       /* 4 MiB page over physical 0 */
#define LARGE2_VA 0x80400000u       /* 4 MiB page over physical 4 MiB */
#define HIGH_PA   0x00400000u       /* physical 4 MiB: only large pages reach it */
#define GLOBAL_VA 0x40001000u

static volatile uint32_t page_a[1024] ALIGNED(PAGE_SIZE);
static volatile uint32_t page_b[1024] ALIGNED(PAGE_SIZE);

static uint32_t rd(uint32_t va) { return *(volatile uint32_t *)va; }
static void wr(uint32_t va, uint32_t v) { *(volatile uint32_t *)va = v; }

static void large_checks(void)
{
    kernel_pd[PDX(LARGE_VA)] = 0 | PTE_PS | PTE_P | PTE_W;
    kernel_pd[PDX(LARGE2_VA)] = HIGH_PA | PTE_PS | PTE_P | PTE_W;
    invlpg(LARGE_VA);
    invlpg(LARGE2_VA);
    check_eq("large-read", rd(LARGE_VA + (uint32_t)&page_a[5]), 0xAAAA0005);
    wr(LARGE_VA + (uint32_t)&page_a[6], 0x6666);
    check_eq("large-write-seen-4k", page_a[6], 0x6666);
    wr(LARGE2_VA + 0x100, 0x12345678);
    /* Retarget the first large page to physical 4 MiB with invlpg. */
    kernel_pd[PDX(LARGE_VA)] = HIGH_PA | PTE_PS | PTE_P | PTE_W;
    invlpg(LARGE_VA + 0x100);
    check_eq("large-invlpg-retarget", rd(LARGE_VA + 0x100), 0x12345678);
    /* A 4 KiB alias into the same physical memory as a large page. */
    paging_map(SMALL_VA, HIGH_PA, PTE_P | PTE_W);
    check_eq("small-alias-of-large", rd(SMALL_VA + 0x100), 0x12345678);
    wr(SMALL_VA + 0x104, 0x9ABC);
    check_eq("large-sees-small-write", rd(LARGE2_VA + 0x104), 0x9ABC);
}

static void small_checks(void)
{
    paging_map(SMALL_VA, (uint32_t)page_a, PTE_P | PTE_W);
    check_eq("small-read-a", rd(SMALL_VA), 0xAAAA0000);
    *paging_pte(SMALL_VA) = (uint32_t)page_b | PTE_P | PTE_W;
    invlpg(SMALL_VA);
    check_eq("invlpg-retarget", rd(SMALL_VA), 0xBBBB0000);
    wr(SMALL_VA + 4, 0x4444);
    check_eq("invlpg-write-lands-b", page_b[1], 0x4444);

    *paging_pte(SMALL_VA) = (uint32_t)page_a | PTE_P | PTE_W;
    write_cr3(read_cr3());
    check_eq("cr3-reload-retarget", rd(SMALL_VA), 0xAAAA0000);

    *paging_pte(SMALL_VA) = 0;
    invlpg(SMALL_VA);
    uint32_t start, next;
    probe_arg = SMALL_VA;
    PROBE(start, next, "movl probe_arg, %%eax", "movl (%%eax), %%ecx", "eax", "ecx");
    check_fault("invlpg-unmap-faults", start, next, (struct fault_want){ T_PF, 0, false });
}

static void global_checks(void)
{
    write_cr4(read_cr4() | CR4_PGE);
    paging_map(GLOBAL_VA, (uint32_t)page_a, PTE_P | PTE_W | PTE_G);
    check_eq("global-read-a", rd(GLOBAL_VA), 0xAAAA0000);
    *paging_pte(GLOBAL_VA) = (uint32_t)page_b | PTE_P | PTE_W | PTE_G;
    write_cr4(read_cr4() & ~CR4_PGE);   /* flushes global entries too */
    check_eq("pge-off-retarget", rd(GLOBAL_VA), 0xBBBB0000);
    check_eq("cr4-pge-off", read_cr4() & CR4_PGE, 0);
}

void guest_main(void)
{
    for (int i = 0; i < 1024; i++)
        page_a[i] = 0xAAAA0000 + i, page_b[i] = 0xBBBB0000 + i;
    paging_enable(paging_identity());
    write_cr4(read_cr4() | CR4_PSE);
    check_eq("cr4-pse-on", read_cr4() & CR4_PSE, CR4_PSE);
    small_checks();
    large_checks();
    global_checks();
    paging_disable();
    write_cr4(0);
}
