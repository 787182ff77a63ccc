/*
 * mmiosite — one MOV that keeps touching the local APIC, then RAM, then
 * an unmapped page at the top of the linear space, then rewritten.
 *
 * Hazard: a monitor emulates a translated store that faults on device
 * memory (the shadow keeps the device's page not present); the same
 * instruction, run again and again, must stay the instruction's whatever
 * the monitor learnt of it: a store to RAM lands in RAM; a store to a page
 * the guest never mapped, in the range a monitor keeps for itself at the
 * top of every address space, is the guest's #PF with its CR2 and error
 * code (and writes nothing of the monitor's); and once the guest rewrites
 * the instruction, the new one runs. A monitor that translates such a MOV
 * into an exit of its own after enough device faults (adaptive
 * translation, Adams & Agesen §4; tried in hv86 and not kept,
 * docs/performance.md) emulates it from then on without a fault to say
 * what the operand is. SDM Vol. 3A §4.7, §10.4.1.
 */
#include "guest.h"

#define LAPIC_PA   0xFEE00000u
#define LAPIC_VA   0x00400000u  /* as tests/guests/apic.c maps it */
#define L_TPR      0x80
#define TOP_VA     0xFF000000u  /* not mapped: paging_identity maps the first 4 MiB only */
#define CALLS      20           /* device accesses through the site */
#define OP_MOV_RM_R 0x89        /* mov %eax,(%edx) is 89 02 */
#define OP_ADD_RM_R 0x01        /* add %eax,(%edx) is 01 02 */

/* The site alone on its page: mov %eax,(%edx); jmp *%ecx (no stack, so a
 * fault inside it resumes cleanly at the probe's end). */
static uint8_t site[PAGE_SIZE] ALIGNED(PAGE_SIZE) = { OP_MOV_RM_R, 0x02, 0xFF, 0xE1 };
static volatile uint32_t ram_word;

static void run_site(uint32_t eax, uint32_t edx)
{
    asm volatile("movl $1f, %%ecx\n\tjmp *%2\n1:" : "+a"(eax), "+d"(edx) : "r"(site) : "ecx", "memory");
}

static uint32_t tpr(void) { return *(volatile uint32_t *)(LAPIC_VA + L_TPR) & 0xFF; }

static void apic_through_site(const char *name)
{
    for (uint32_t i = 0; i < CALLS; i++)
        run_site((i * 0x10) & 0xF0, LAPIC_VA + L_TPR);
    check_eq(name, tpr(), ((CALLS - 1) * 0x10) & 0xF0);
}

void guest_main(void)
{
    paging_identity();
    paging_map(LAPIC_VA, LAPIC_PA, PTE_P | PTE_W | PTE_PCD | PTE_PWT);
    paging_enable((uint32_t)kernel_pd);

    apic_through_site("site-stores-apic-tpr");

    ram_word = 0;
    run_site(0x1234, (uint32_t)&ram_word);
    check_eq("site-stores-ram", ram_word, 0x1234);

    uint32_t start, next;
    PROBE(start, next, "movl $0x55, %%eax\n\tmovl top_va, %%edx\n\tmovl $2f, %%ecx",
          "jmp *site_ptr", "eax", "ecx", "edx");
    (void)start, (void)next;
    check_eq("site-top-pf-vector", (uint32_t)last_trap.vector, T_PF);
    check_eq("site-top-pf-err", last_trap.err, 0x2);  /* write, not present, CPL 0 */
    check_eq("site-top-pf-cr2", last_trap.cr2, TOP_VA);
    check_eq("site-top-pf-eip", last_trap.eip, (uint32_t)site);

    site[0] = OP_ADD_RM_R;
    ram_word = 0x1234;
    run_site(1, (uint32_t)&ram_word);
    check_eq("site-rewritten-adds", ram_word, 0x1235);

    site[0] = OP_MOV_RM_R;
    apic_through_site("site-again-stores-apic-tpr");
    run_site(0, LAPIC_VA + L_TPR);
    check_eq("tpr-cleared", tpr(), 0);
}

/* The site's address for the probe's indirect jump, and its operand. */
uint8_t *const site_ptr = site;
const uint32_t top_va = TOP_VA;
