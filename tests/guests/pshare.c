/*
 * pshare — content-based page sharing must never let one VM see another's
 * write (docs/memory-layout.md "Page sharing").
 *
 * The guest fills 16 pages with contents that depend only on the page's
 * index, so two VMs running it hold identical pages (and hv86's scanner
 * shares them copy-on-write, with each other and with the zero pages and
 * code). It builds its page tables, which are identical in both VMs too,
 * and then waits: until a byte arrives on COM1 (the test sends one when
 * `vm info` shows the pages shared) or wait=N seconds of PIT time pass
 * (natively nothing is sent). Then it writes its half of the pages
 * (role=1: pages 0-7, role=2: pages 8-15) through every path a store can
 * take under hv86:
 *
 *   kernel-store     a plain store from kernel code (translated at ring 1)
 *   user-store       a store from CPL 3 (run directly at ring 3)
 *   string-across    REP MOVSB across a page boundary (two shared pages)
 *   locked-rmw       LOCK XADD (a read-modify-write through the translator)
 *   pt-store         with paging on, a store into the guest's own page
 *                    table (hv86 traces it: the store is emulated), then a
 *                    store through the mapping it made; A and D set by the
 *                    CPU (hv86's shadow pager) in that shared table
 *   emulated-store   a store through a mapping in hv86's monitor range,
 *                    which hv86 emulates; with A and D set in that table
 *                    (ad-bits). Under hv86 only where segment limits
 *                    hold (Bochs): monitor=0 leaves both out (QEMU TCG,
 *                    where the store would reach the monitor's memory)
 *
 * and checks that its pages hold what it wrote and the other half still
 * holds the original contents: a write that reached a shared frame would
 * show in the other VM's half. Output does not depend on the role, so both
 * VMs must print the native run's lines.
 */
#include "guest.h"

#define NPAGES   16
#define HALF     (NPAGES / 2)
#define MON_VA   0xFD000000u /* inside hv86's monitor range (0xFC000000-0xFF3FFFFF) */
#define PT_VA    0x003FF000u /* the last page of the identity table: remapped */
#define COM1_LSR 0x3FD
#define COM1_RBR 0x3F8

static uint8_t pages[NPAGES][PAGE_SIZE] ALIGNED(PAGE_SIZE);
static volatile uint32_t *user_target;

/* The original contents of page i, word w: equal in every VM running this. */
static uint32_t pattern(unsigned i, unsigned w) { return 0x5A000000u ^ (i << 16) ^ (w * 0x9E37u); }

static void fill_all(void)
{
    for (unsigned i = 0; i < NPAGES; i++)
        for (unsigned w = 0; w < PAGE_SIZE / 4; w++)
            ((uint32_t *)pages[i])[w] = pattern(i, w);
}

/* PIT channel 0's count (latched), counting down from PIT_DIV_1KHZ. */
static uint16_t pit_count(void)
{
    outb(0x43, 0x00);
    uint8_t lo = inb(0x40);
    return (uint16_t)(lo | inb(0x40) << 8);
}

/* Wait for a byte on COM1 or `seconds` of PIT time, whichever is first. */
static void wait_for_share(uint32_t seconds)
{
    pit_periodic(PIT_DIV_1KHZ); /* masked at the PIC: only counted here */
    uint16_t last = pit_count();
    uint32_t ms = 0;
    printf("pshare: waiting\n");
    while (ms < seconds * 1000) {
        if (inb(COM1_LSR) & 1) {
            (void)inb(COM1_RBR);
            printf("pshare: go (input)\n");
            return;
        }
        uint16_t now = pit_count();
        if (now > last) /* wrapped: one period */
            ms++;
        last = now;
    }
    printf("pshare: go (timeout)\n");
}

static void user_store(void) { *user_target = 0xC0DE0001u; }

/* The bytes page p should hold at word w after the writes, written by us or not. */
static uint32_t expect(unsigned p, unsigned w, unsigned first)
{
    unsigned k = p - first;
    if (p < first || p >= first + HALF)
        return pattern(p, w);
    if (k == 0 && w == 0)
        return 0xC0DE0000u;
    if (k == 1 && w == 1)
        return 0xC0DE0001u;
    if ((k == 2 && w >= 1016) || (k == 3 && w < 8))
        return 0x11111111u;
    if (k == 4 && w == 3)
        return pattern(p, w) + 0x100;
    if (k == 5 && w == 5)
        return 0xC0DE0005u;
    if (k == 6 && w == 6)
        return 0xC0DE0006u;
    return pattern(p, w);
}

void guest_main(void)
{
    unsigned role = boot_arg("role", 1) == 2 ? 2 : 1, first = role == 2 ? HALF : 0;
    fill_all();
    uint32_t cr3 = paging_identity(); /* page tables equal in both VMs: shared too */
    paging_map(MON_VA, (uint32_t)pages[first + 5], PTE_P | PTE_W);
    wait_for_share(boot_arg("wait", 2));

    uint8_t *pg = pages[first];
    ((volatile uint32_t *)pg)[0] = 0xC0DE0000u; /* kernel-store */
    user_target = (volatile uint32_t *)pages[first + 1] + 1;
    user_run(user_store, FL_RSVD1); /* user-store */
    static uint8_t ones[64];
    for (unsigned i = 0; i < sizeof(ones); i++)
        ones[i] = 0x11;
    uint8_t *dst = pages[first + 2] + PAGE_SIZE - 32, *src = ones;
    uint32_t n = sizeof(ones);
    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory"); /* string-across */
    uint32_t add = 0x100;
    asm volatile("lock xaddl %0, %1" : "+r"(add), "+m"(((uint32_t *)pages[first + 4])[3]) : : "memory");
    bool monitor = boot_arg("monitor", 1);
    paging_enable(cr3);
    *(volatile pte_t *)paging_pte(PT_VA) = (uint32_t)pages[first + 6] | PTE_P | PTE_W; /* pt-store */
    ((volatile uint32_t *)PT_VA)[6] = 0xC0DE0006u;
    pte_t pt_pte = *paging_pte(PT_VA), pte = 0;
    if (monitor) {
        ((volatile uint32_t *)MON_VA)[5] = 0xC0DE0005u; /* emulated-store */
        pte = *paging_pte(MON_VA);
    } else {
        ((uint32_t *)pages[first + 5])[5] = 0xC0DE0005u; /* what it would have written */
    }
    paging_disable();

    const char *names[] = { "kernel-store", "user-store", "string-across", "string-across", "locked-rmw",
                            "emulated-store", "pt-store" };
    uint32_t bad[NPAGES] = { 0 };
    for (unsigned p = 0; p < NPAGES; p++)
        for (unsigned w = 0; w < PAGE_SIZE / 4; w++)
            bad[p] += ((uint32_t *)pages[p])[w] != expect(p, w, first);
    for (unsigned k = 0; k < 7; k++)
        if (k != 3 && (k != 5 || monitor))
            check(names[k], !bad[first + k] && (k != 2 || !bad[first + 3]), "%u words differ", bad[first + k]);
    uint32_t others = 0;
    for (unsigned p = 0; p < NPAGES; p++)
        if (p < first || p >= first + HALF || p - first >= 7)
            others += bad[p];
    check("others-untouched", others == 0, "%u words of pages this VM did not write differ", others);
    check_eq("pt-store-ad", pt_pte & (PTE_A | PTE_D), PTE_A | PTE_D);
    if (monitor)
        check_eq("ad-bits", pte & (PTE_A | PTE_D), PTE_A | PTE_D);
}
