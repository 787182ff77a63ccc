/*
 * stalecode — a guest that changes the instruction behind a translation
 * (issue 11; docs/security.md). hv86 finds translated code by its EIP; the
 * guest can remap that EIP to other bytes. A translation of `pop %es`
 * exits to the monitor with the reason "segment load"; if the monitor then
 * emulated what it fetches now, `pop %eax`, as a segment load, it indexed
 * its vCPU's segment array with EAX - ES, out of range, and wrote 16 bytes
 * of guest-chosen data into monitor memory. On hardware it is just a
 * remapped page: the second call pops into EAX.
 *
 * Three ways to change what an EIP holds: a PTE pointed at another frame
 * (INVLPG after), a second page directory mapping the EIP elsewhere
 * (MOV CR3), and a segment (CS) with another base over the same offset is
 * covered by far transfers elsewhere (segread, fuzz).
 *
 * Last, code that never exits (`mov $imm, %eax; jmp *%ecx`) remapped by its
 * PTE and INVLPG: hv86 must run the new bytes, not its translation of the
 * old ones (it watches the page table that maps translated code).
 */
#include "guest.h"

#define CODE_VA 0x40000000u           /* above the identity-mapped 4 MiB */

static uint8_t frame_a[PAGE_SIZE] ALIGNED(PAGE_SIZE);
static uint8_t frame_b[PAGE_SIZE] ALIGNED(PAGE_SIZE);
static uint8_t frame_c[PAGE_SIZE] ALIGNED(PAGE_SIZE);
static uint8_t frame_d[PAGE_SIZE] ALIGNED(PAGE_SIZE);
#define PLAIN_VA (CODE_VA + PAGE_SIZE) /* plain code (no exit), remapped from frame_c to frame_d */

/* Write `mov $v, %eax; jmp *%ecx` at the start of frame f. */
static void plain(uint8_t *f, uint32_t v)
{
    f[0] = 0xB8;
    f[1] = (uint8_t)v, f[2] = (uint8_t)(v >> 8), f[3] = (uint8_t)(v >> 16), f[4] = (uint8_t)(v >> 24);
    f[5] = 0xFF; /* jmp *%ecx */
    f[6] = 0xE1;
}

/* Jump to the code at PLAIN_VA and come back; returns its EAX. */
static uint32_t run_plain(void)
{
    uint32_t eax;
    asm volatile("lea 1f, %%ecx\n\t"
                 "jmp *%[va]\n"
                 "1:"
                 : "=a"(eax)
                 : [va] "r"(PLAIN_VA)
                 : "ecx", "memory");
    return eax;
}
static pte_t pd2[1024] ALIGNED(PAGE_SIZE);
static pte_t pt2[1024] ALIGNED(PAGE_SIZE);

/* Write `op; jmp *%ecx` at the start of frame f. */
static void stub(uint8_t *f, uint8_t op)
{
    f[0] = op;
    f[1] = 0xFF; /* jmp *%ecx */
    f[2] = 0xE1;
}

/* Push v, run the stub at CODE_VA (which pops one dword into ES or EAX)
 * and come back; returns EAX, with ES and the stack as the stub left them.
 * The stack pointers go through statics: no ESP-relative operand while the
 * pushed word is on the stack. */
static volatile uint32_t esp_before, esp_after, es_after;

static uint32_t run_stub(uint32_t v, uint32_t *es_out, uint32_t *esp_delta)
{
    uint32_t eax = 0x0BADBAD0;
    es_after = 0;
    asm volatile("mov %%esp, esp_before\n\t"
                 "pushl %[v]\n\t"
                 "lea 1f, %%ecx\n\t"
                 "jmp *%[va]\n"
                 "1:\tmov %%esp, esp_after\n\t"
                 "mov %%es, es_after\n\t"
                 "push %%ds\n\t"
                 "pop %%es"                    /* ES back to the flat data segment */
                 : "+a"(eax)
                 : [v] "r"(v), [va] "r"(CODE_VA)
                 : "ecx", "memory");
    *es_out = es_after & 0xFFFF;
    *esp_delta = esp_before - esp_after;
    return eax;
}

void guest_main(void)
{
    uint32_t ds, es, delta;
    asm volatile("mov %%ds, %0" : "=r"(ds));
    ds &= 0xFFFF;
    stub(frame_a, 0x07); /* pop %es */
    stub(frame_b, 0x58); /* pop %eax */
    uint32_t cr3 = paging_identity();
    paging_map(CODE_VA, (uint32_t)frame_a, PTE_P | PTE_W);
    paging_enable(cr3);

    /* 1. Translated as POP ES; run twice so the translation is warm. */
    for (int i = 0; i < 2; i++) {
        uint32_t eax = run_stub(ds, &es, &delta);
        check_eq("pop-es-loads-es", es, ds);
        check_eq("pop-es-leaves-eax", eax, 0x0BADBAD0);
        check_eq("pop-es-pops", delta, 0);
    }

    /* 2. The PTE now names frame_b: the same EIP holds POP EAX. The guest
     * pushes a valid selector, so an emulated segment load would succeed. */
    *paging_pte(CODE_VA) = (uint32_t)frame_b | PTE_P | PTE_W;
    asm volatile("invlpg (%0)" : : "r"(CODE_VA) : "memory");
    uint32_t eax = run_stub(ds, &es, &delta);
    check_eq("remapped-pte-pops-eax", eax, ds);
    check_eq("remapped-pte-pops", delta, 0);
    eax = run_stub(0x5EC0DE01, &es, &delta);
    check_eq("remapped-pte-pops-eax-again", eax, 0x5EC0DE01);

    /* 3. Back to POP ES through the first directory, then a second page
     * directory mapping CODE_VA to frame_b (the low 4 MiB the same). */
    *paging_pte(CODE_VA) = (uint32_t)frame_a | PTE_P | PTE_W;
    asm volatile("invlpg (%0)" : : "r"(CODE_VA) : "memory");
    eax = run_stub(ds, &es, &delta);
    check_eq("pop-es-again", es, ds);
    for (int i = 0; i < 1024; i++)
        pd2[i] = kernel_pd[i];
    for (int i = 0; i < 1024; i++)
        pt2[i] = 0;
    pt2[PTX(CODE_VA)] = (uint32_t)frame_b | PTE_P | PTE_W;
    pd2[PDX(CODE_VA)] = (uint32_t)pt2 | PTE_P | PTE_W;
    write_cr3((uint32_t)pd2);
    eax = run_stub(0x5EC0DE02, &es, &delta);
    check_eq("other-cr3-pops-eax", eax, 0x5EC0DE02);
    check_eq("other-cr3-pops", delta, 0);
    write_cr3(cr3);
    eax = run_stub(ds, &es, &delta);
    check_eq("first-cr3-pops-es", es, ds);

    /* 4. Code that never exits, remapped by its PTE and INVLPG (as Linux
     * loads a module where another's freed init text was): the new bytes
     * run, not a translation of the old ones. */
    plain(frame_c, 0x11111111);
    plain(frame_d, 0x22222222);
    paging_map(PLAIN_VA, (uint32_t)frame_c, PTE_P | PTE_W);
    for (int i = 0; i < 3; i++)
        check_eq("plain-code-runs", run_plain(), 0x11111111);
    *paging_pte(PLAIN_VA) = (uint32_t)frame_d | PTE_P | PTE_W;
    asm volatile("invlpg (%0)" : : "r"(PLAIN_VA) : "memory");
    check_eq("plain-code-remapped-pte-runs-new-bytes", run_plain(), 0x22222222);
    check_eq("plain-code-remapped-pte-runs-new-bytes-again", run_plain(), 0x22222222);
}
