/*
 * adbits — the Accessed and Dirty bits the CPU writes into the guest's own
 * PTEs and PDEs: set by reads, writes and fetches, cleared by the guest
 * (with invlpg) and set again.
 *
 * Hazard: with shadow page tables the CPU sets A/D in the monitor's shadow
 * entries, not the guest's; the monitor must reflect them into the guest's
 * tables (typically by mapping read-only until the first write). SDM 3A 4.8.
 */
#include "guest.h"

#define DATA_VA  0x40000000u        /* 4 KiB page over data_page */
#define CODE_VA  0x40001000u        /* 4 KiB page over code_page */
#define LARGE_VA 0x80000000u        /* 4 MiB page over physical 4 MiB */
#define HIGH_PA  0x00400000u
#define AD (PTE_A | PTE_D)

static volatile uint32_t data_page[1024] ALIGNED(PAGE_SIZE);
asm(".text\n.align 4096\ncode_page:\n\tmovl $7, %eax\n\tret\n.align 4096\n");
extern char code_page[];

static volatile pte_t *pte, *pde, *large_pde;

static void rd(uint32_t va) { (void)*(volatile uint32_t *)va; }
static void wr(uint32_t va) { *(volatile uint32_t *)va = 1; }

/* Clear A/D in *e (and the directory entry), flush, then do the access. */
static void clear(volatile pte_t *e, uint32_t va)
{
    *e &= ~AD;
    *pde &= ~AD;
    invlpg(va);
}

struct ad_case {                    /* one access and the bits it must leave */
    const char *name;
    bool large;
    void (*access)(uint32_t va);
    uint32_t want_pte;              /* A/D of the PTE, or of the 4 MiB PDE */
};

static void user_write(void) { wr(DATA_VA + 8); }
static void user_access(uint32_t va) { (void)va; user_run(user_write, FL_RSVD1); }
static void fetch(uint32_t va) { ((uint32_t (*)(void))va)(); }

static const struct ad_case cases[] = {
    { "pte-read-sets-a",   false, rd, PTE_A },
    { "pte-write-sets-ad", false, wr, PTE_A | PTE_D },
    { "pte-user-write-sets-ad", false, user_access, PTE_A | PTE_D },
    { "large-read-sets-a", true, rd, PTE_A },
    { "large-write-sets-ad", true, wr, PTE_A | PTE_D },
};

void guest_main(void)
{
    paging_enable(paging_identity());
    write_cr4(read_cr4() | CR4_PSE);
    paging_map(DATA_VA, (uint32_t)data_page, PTE_P | PTE_W | PTE_U);
    paging_map(CODE_VA, (uint32_t)code_page, PTE_P | PTE_U);
    pte = paging_pte(DATA_VA);
    pde = &kernel_pd[PDX(DATA_VA)];
    large_pde = &kernel_pd[PDX(LARGE_VA)];
    *large_pde = HIGH_PA | PTE_PS | PTE_P | PTE_W;

    for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct ad_case *c = &cases[i];
        volatile pte_t *e = c->large ? large_pde : pte;
        uint32_t va = c->large ? LARGE_VA : DATA_VA;
        clear(e, va);
        c->access(va);
        check_eq(c->name, *e & AD, c->want_pte);
    }

    /* The PDE over a page table gets A; its bit 6 is ignored, never set. */
    clear(pte, DATA_VA);
    wr(DATA_VA);
    check_eq("pde-a-set", *pde & PTE_A, PTE_A);
    check_eq("pde-d-untouched", *pde & PTE_D, 0);

    /* A read leaves D clear; a later write through the same (cached)
     * translation must still set it. */
    clear(pte, DATA_VA);
    rd(DATA_VA);
    check_eq("read-leaves-d-clear", *pte & AD, PTE_A);
    wr(DATA_VA);
    check_eq("write-after-read-sets-d", *pte & AD, PTE_A | PTE_D);
    clear(large_pde, LARGE_VA);
    rd(LARGE_VA);
    wr(LARGE_VA + 4);
    check_eq("large-write-after-read-sets-d", *large_pde & AD, PTE_A | PTE_D);

    /* An instruction fetch sets A, not D. */
    volatile pte_t *code_pte = paging_pte(CODE_VA);
    clear(code_pte, CODE_VA);
    fetch(CODE_VA);
    check_eq("fetch-sets-a", *code_pte & AD, PTE_A);

    /* Set again after the guest clears them a second time. */
    clear(pte, DATA_VA);
    check_eq("cleared", *pte & AD, 0);
    wr(DATA_VA);
    check_eq("set-again", *pte & AD, PTE_A | PTE_D);
    paging_disable();
}
