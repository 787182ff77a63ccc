/*
 * unsync — a guest kernel that rewrites its page tables without INVLPG and
 * then goes through the entries it changed: retargeted to another of its
 * pages, to an address with no RAM, and to a page it unmapped ("freed") and
 * reused as a page table, whose stale mapping it then writes through.
 *
 * Hazard: hv86 lets a page table the guest writes often go out of sync with
 * its shadow (vmm/shadow.c, "out of sync"): until the guest flushes, the
 * shadow may still hold what an entry was, as a TLB may (SDM Vol. 3A
 * §4.10.4). That staleness must stay inside what hardware allows: a stale
 * access reaches the page the entry mapped before or the one it maps now,
 * never anything else (another guest's frame, the monitor, a frame the
 * guest does not own), and INVLPG or a CR3 load ends it. Every check here
 * accepts both hardware outcomes and nothing else, so the output is the
 * same natively (QEMU, Bochs) and under hv86; vms-isolation runs it under
 * Bochs beside other VMs.
 *
 * Last, a freed page directory cleared by REP STOSD and refilled by REP
 * MOVSD: under hv86 those start as emulated stores to a traced directory,
 * and the CPU must finish them exactly (recycled_table).
 */
#include "guest.h"

#define VA      0x40000000u /* retargeted entry */
#define VA_FREE 0x40400000u /* a page the guest unmaps and reuses as a table */
#define VA_NEW  0x40800000u /* the region that reused table maps */
#define VA_TBL  0x40C00000u /* the region of the table recycled() clears and refills */
#define NO_RAM  0xE0000000u /* no RAM and no device natively, nor under hv86 */
#define MARK    0x5A5A0000u

enum { PG_A, PG_B, PG_C, PG_D, PG_E, PG_T, PG_P, NPAGES };
static volatile uint32_t pages[NPAGES][1024] ALIGNED(PAGE_SIZE);

static uint32_t pa(int i) { return (uint32_t)pages[i]; }
static uint32_t rd(uint32_t va) { return *(volatile uint32_t *)va; }
static void wr(uint32_t va, uint32_t v) { *(volatile uint32_t *)va = v; }

/* How many of the guest's pages hold v anywhere in their first words. */
static int holders(uint32_t v, int *which)
{
    int n = 0;
    for (int i = 0; i < NPAGES; i++)
        for (int j = 0; j < 4; j++)
            if (pages[i][j] == v) {
                n++;
                *which = i;
            }
    return n;
}

/* Retarget VA from A to B, then to C, no flush: old or new, nothing else. */
static void retarget(void)
{
    int who = -1;
    paging_map(VA, pa(PG_A), PTE_P | PTE_W);
    wr(VA, MARK + 1); /* the shadow now maps VA -> A, writable */
    *paging_pte(VA) = pa(PG_B) | PTE_P | PTE_W;
    uint32_t v = rd(VA);
    check("retarget-read-old-or-new", v == MARK + 1 || v == pages[PG_B][0], "got %x", v);
    wr(VA + 4, MARK + 2);
    check("retarget-write-lands-old-or-new",
          holders(MARK + 2, &who) == 1 && (who == PG_A || who == PG_B), "%d holders, last %d", holders(MARK + 2, &who), who);
    *paging_pte(VA) = pa(PG_C) | PTE_P | PTE_W; /* again: still no flush */
    wr(VA + 8, MARK + 3);
    check("retarget-twice-lands-in-a-mapped-page",
          holders(MARK + 3, &who) == 1 && who <= PG_C, "%d holders, last %d", holders(MARK + 3, &who), who);
    invlpg(VA);
    wr(VA + 12, MARK + 4);
    check_eq("retarget-invlpg-exact", pages[PG_C][3], MARK + 4);
    *paging_pte(VA) = pa(PG_D) | PTE_P | PTE_W;
    write_cr3(read_cr3());
    wr(VA, MARK + 5);
    check_eq("retarget-cr3-exact", pages[PG_D][0], MARK + 5);
}

/* VA -> an address with no RAM, no flush: the old page or nowhere. */
static void no_ram(void)
{
    int who = -1;
    paging_map(VA, pa(PG_A), PTE_P | PTE_W);
    write_cr3(read_cr3());
    wr(VA, MARK + 6);
    *paging_pte(VA) = NO_RAM | PTE_P | PTE_W;
    wr(VA + 4, MARK + 7);
    int n = holders(MARK + 7, &who);
    check("no-ram-stale-write-old-page-or-nowhere", n == 0 || (n == 1 && who == PG_A), "%d holders, last %d", n, who);
    invlpg(VA);
    wr(VA + 8, MARK + 8);
    check_eq("no-ram-after-invlpg-reaches-no-page", holders(MARK + 8, &who), 0);
}

/*
 * Unmap E ("free" it) without a flush, reuse it as the page table of VA_NEW,
 * then store through the stale mapping into that table an entry aimed at
 * no RAM. Hardware either does the store (the TLB kept the entry) or
 * faults (it did not); either way VA_NEW's second page then reaches no page
 * of the guest's, and its first still reaches D.
 */
static void freed_frame(void)
{
    int who = -1;
    uint32_t start, next;
    paging_map(VA_FREE, pa(PG_E), PTE_P | PTE_W);
    wr(VA_FREE + 0x800, MARK + 9);
    *paging_pte(VA_FREE) = 0; /* freed, no INVLPG */
    for (int i = 0; i < 1024; i++)
        pages[PG_E][i] = 0;
    pages[PG_E][0] = pa(PG_D) | PTE_P | PTE_W;
    kernel_pd[VA_NEW >> 22] = pa(PG_E) | PTE_P | PTE_W;
    pages[PG_D][0] = MARK + 10;
    check_eq("reused-table-maps-d", rd(VA_NEW), MARK + 10);
    probe_arg = NO_RAM | PTE_P | PTE_W;
    PROBE(start, next, "movl probe_arg, %%eax", "movl %%eax, 0x40400004", "eax");
    bool stored = last_trap.vector < 0 && pages[PG_E][1] == (NO_RAM | PTE_P | PTE_W);
    bool faulted = last_trap.vector == T_PF && !(last_trap.err & 1) && pages[PG_E][1] == 0;
    check("freed-frame-stale-store-done-or-not-present", stored || faulted, "vector %d err %x entry %x",
          last_trap.vector, last_trap.err, pages[PG_E][1]);
    (void)start, (void)next;
    pages[PG_E][1] = NO_RAM | PTE_P | PTE_W; /* what a stale store would have left */
    invlpg(VA_NEW + PAGE_SIZE);
    wr(VA_NEW + PAGE_SIZE, MARK + 11);
    check_eq("reused-table-no-ram-entry-reaches-no-page", holders(MARK + 11, &who), 0);
    check_eq("reused-table-first-entry-still-d", rd(VA_NEW), MARK + 10);
}

static uint32_t pattern[1024];

/* Make P a second page directory (the identity map copied, and T the
 * page table of VA_TBL), run on it and read through it (the shadow builds
 * and keeps a directory from it), then go back to the first: P is now the
 * directory of an address space not running, as Linux's are when it frees
 * them (a process that exited). */
static void use_directory_elsewhere(void)
{
    uint32_t cr3 = read_cr3();
    for (int i = 0; i < 1024; i++) {
        pages[PG_T][i] = i < 4 ? pa(PG_A + i) | PTE_P | PTE_W : 0;
        pages[PG_P][i] = kernel_pd[i];
    }
    pages[PG_P][VA_TBL >> 22] = pa(PG_T) | PTE_P | PTE_W;
    write_cr3(pa(PG_P));
    check_eq("recycled-directory-maps-a", rd(VA_TBL), pages[PG_A][0]);
    write_cr3(cr3);
}

/*
 * A freed page directory cleared and refilled by string instructions, the
 * way Linux clears a page-table page it allocates again (kernel_init_pages:
 * the first and the last dword, then REP STOSD over the rest) and copies a
 * page. Under hv86 the first stores reach a directory the shadow still
 * keeps and are emulated; once it drops it (SHADOW_FLOOD stores), the rest
 * is the CPU's (emu_string gives the instruction back). Every dword must
 * end as written, and ECX, ESI and EDI where the CPU leaves them.
 */
static void recycled_table(void)
{
    uint32_t *t = (uint32_t *)pages[PG_P], ecx, edi, esi, bad = 0;
    use_directory_elsewhere();
    t[0] = 0;
    t[1023] = 0;
    __asm__ volatile("cld; rep stosl" : "=c"(ecx), "=D"(edi) : "a"(0), "c"(1022), "D"(t + 1) : "memory");
    for (int i = 0; i < 1024; i++)
        bad += t[i] != 0;
    check("recycled-directory-rep-stos-zeroes-it", bad == 0 && ecx == 0 && edi == (uint32_t)(t + 1023),
          "%d dwords not zero, ecx %x, edi %x", bad, ecx, edi);
    for (int i = 0; i < 1024; i++)
        pattern[i] = 0x3C000000u + i * 0x01010101u;
    use_directory_elsewhere();
    __asm__ volatile("cld; rep movsl" : "=c"(ecx), "=S"(esi), "=D"(edi) : "c"(1024), "S"(pattern), "D"(t) : "memory");
    bad = 0;
    for (int i = 0; i < 1024; i++)
        bad += t[i] != pattern[i];
    check("recycled-directory-rep-movs-copies-into-it",
          bad == 0 && ecx == 0 && esi == (uint32_t)(pattern + 1024) && edi == (uint32_t)(t + 1024),
          "%d dwords differ, ecx %x, esi %x, edi %x", bad, ecx, esi, edi);
}

void guest_main(void)
{
    paging_enable(paging_identity());
    retarget();
    no_ram();
    freed_frame();
    recycled_table();
    paging_disable();
}
