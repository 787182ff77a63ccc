/*
 * pgonoff — paging turned on over an identity map, a non-identity alias
 * for data and for code, a CR3 switch between two directories, and paging
 * turned off again.
 *
 * Hazard: with shadow paging the monitor must rebuild its tables when the
 * guest sets CR0.PG, loads CR3 or clears PG again, and must never let the
 * guest's own linear = physical view (paging off) see the monitor's
 * mappings (SDM 3A 4.1, 9.9).
 */
#include "guest.h"

#define ALIAS_DATA 0x40000000u      /* non-identity view of page_a / page_b */
#define ALIAS_CODE 0x40001000u      /* non-identity view of alias_code_page */
#define MAGIC_A 0xA1A1A1A1u
#define MAGIC_B 0xB2B2B2B2u
#define CODE_RESULT 0x5A5Au

static volatile uint32_t page_a[1024] ALIGNED(PAGE_SIZE);
static volatile uint32_t page_b[1024] ALIGNED(PAGE_SIZE);
static pte_t second_pd[1024] ALIGNED(PAGE_SIZE);
static pte_t second_pt[1024] ALIGNED(PAGE_SIZE);

/* A page of position-independent code: returns CODE_RESULT wherever mapped. */
asm(".text\n.align 4096\nalias_code_page:\n\tmovl $0x5A5A, %eax\n\tret\n.align 4096\n");
extern char alias_code_page[];

void guest_main(void)
{
    page_a[0] = MAGIC_A;
    page_b[0] = MAGIC_B;
    uint32_t cr3 = paging_identity();
    paging_map(ALIAS_DATA, (uint32_t)page_a, PTE_P | PTE_W);
    paging_map(ALIAS_CODE, (uint32_t)alias_code_page, PTE_P);
    paging_enable(cr3);
    check_eq("pg-on", read_cr0() & CR0_PG, CR0_PG);
    check_eq("cr3-readback", read_cr3(), cr3);
    check_eq("identity-read", page_a[0], MAGIC_A);

    volatile uint32_t *alias = (volatile uint32_t *)ALIAS_DATA;
    check_eq("alias-read", alias[0], MAGIC_A);
    alias[1] = 0x11223344;
    check_eq("alias-write-seen-identity", page_a[1], 0x11223344);
    page_a[2] = 0x55667788;
    check_eq("identity-write-seen-alias", alias[2], 0x55667788);
    uint32_t (*fn)(void) = (uint32_t (*)(void))ALIAS_CODE;
    check_eq("alias-code-call", fn(), CODE_RESULT);

    /* The same alias through a second directory: CR3 switch. */
    for (int i = 0; i < 1024; i++)
        second_pd[i] = kernel_pd[i], second_pt[i] = 0;
    second_pt[PTX(ALIAS_DATA)] = (uint32_t)page_b | PTE_P | PTE_W;
    second_pd[PDX(ALIAS_DATA)] = (uint32_t)second_pt | PTE_P | PTE_W;
    write_cr3((uint32_t)second_pd);
    check_eq("cr3-switch-readback", read_cr3(), (uint32_t)second_pd);
    check_eq("cr3-switch-alias", alias[0], MAGIC_B);
    write_cr3(cr3);
    check_eq("cr3-back-alias", alias[0], MAGIC_A);

    /* Paging off: linear = physical again; what the alias wrote stays. */
    alias[3] = 0x99AABBCC;
    paging_disable();
    check_eq("pg-off", read_cr0() & CR0_PG, 0);
    check_eq("pg-off-physical", page_a[3], 0x99AABBCC);
    check_eq("pg-off-cr3-kept", read_cr3(), cr3);

    /* And on again, straight into the second directory. */
    paging_enable((uint32_t)second_pd);
    check_eq("pg-on-again-alias", alias[0], MAGIC_B);
    paging_disable();
    check_eq("pg-off-again", read_cr0() & CR0_PG, 0);
}
