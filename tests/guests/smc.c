/*
 * smc — self-modifying code: new bytes written over code that already ran
 * (an immediate, an opcode), over the very next instruction of the running
 * block and one a few bytes further, inside a running loop, into a buffer executed as code, with rep
 * movsb, and through a second virtual mapping of the code page; over the
 * last byte of a routine, over the part of a routine that runs into the
 * next page, and after a hundred stores into data sharing the page with code.
 *
 * Hazard: guest kernel code runs from the translator's cache, so every
 * guest write to translated code must invalidate the translation before
 * the modified bytes next execute; x86 guarantees that even for the next
 * instruction (SDM 3A 8.1.3). Writes through an alias must be caught by
 * physical page, not by address.
 */
#include "guest.h"

#define ALIAS_VA 0x40000000u        /* writable second view of smc_page */

/* Each routine is data for the checks below: where it is patched and how. */
asm(".text\n"
    /* returns the imm32 at smc_imm+1 */
    "smc_imm:\n\tmovl $1, %eax\n\tret\n"
    /* eax = 0, then one inc (0x40) or dec (0x48) at smc_op+2 */
    "smc_op:\n\txorl %eax, %eax\n\t.byte 0x40\n\tret\n"
    /* writes AL into the immediate of the next instruction, then runs it */
    "smc_next:\n\tmovb %al, 1f+1\n1:\tmovl $0, %eax\n\tret\n"
    /* the same, with the patched instruction three instructions ahead */
    "smc_ahead:\n\tmovb %al, 1f+1\n\tnop\n\txchgl %ecx, %ecx\n\tnop\n1:\tmovl $0, %eax\n\tret\n"
    /* ten iterations of add $imm8; the sixth one first makes imm8 = 2 */
    "smc_loop:\n\txorl %eax, %eax\n\tmovl $10, %ecx\n"
    "1:\tcmpl $5, %ecx\n\tjne 2f\n\tmovb $2, 3f+2\n"
    "2:\n3:\t.byte 0x83, 0xC0, 0x01\n"      /* addl $1, %eax */
    "\tloop 1b\n\tmovb $1, 3b+2\n\tret\n"
    /* a page of its own, for the alias mapping */
    ".align 4096\nsmc_page:\n\tmovl $7, %eax\n\tret\n.align 4096\n"
    /* returns 5; its first RET, the routine's last byte, becomes INC EAX */
    "smc_last:\n\tmovl $5, %eax\n\tret\n\tret\n"
    /* 32 bytes of data on the same page as code */
    ".align 64\nsmc_data:\n\t.fill 32, 1, 0\n"
    /* returns the imm32 at smc_cross+1, whose last two bytes are on the next page */
    ".align 4096\n\t.fill 4093, 1, 0x90\nsmc_cross:\n\tmovl $0x01020304, %eax\n\tret\n.align 4096\n");
extern uint8_t smc_imm[], smc_op[], smc_next[], smc_ahead[], smc_loop[], smc_page[];
extern uint8_t smc_last[], smc_data[], smc_cross[];

#define OP_INC_EAX 0x40
#define OP_DEC_EAX 0x48
#define OP_MOV_EAX_IMM 0xB8
#define OP_RET 0xC3

static uint32_t call(const void *fn) { return ((uint32_t (*)(void))fn)(); }
static uint32_t call_al(const void *fn, uint32_t al)
{
    uint32_t r;
    asm volatile("call *%1" : "=a"(r) : "r"(fn), "a"(al) : "ecx", "edx", "memory");
    return r;
}
static void put32(volatile uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t jit[32] ALIGNED(16);

static void jit_checks(void)
{
    jit[0] = OP_MOV_EAX_IMM;
    put32(jit + 1, 100);
    jit[5] = OP_RET;
    check_eq("jit-first", call(jit), 100);
    put32(jit + 1, 200);
    check_eq("jit-rewritten", call(jit), 200);

    static const uint8_t code[] = { OP_MOV_EAX_IMM, 0x2C, 0x01, 0, 0, OP_RET };   /* 300 */
    asm volatile("rep movsb" : : "D"(jit), "S"(code), "c"(sizeof(code)) : "memory");
    check_eq("jit-rep-movsb", call(jit), 300);
}

static void alias_checks(void)
{
    paging_enable(paging_identity());
    paging_map(ALIAS_VA, (uint32_t)smc_page, PTE_P | PTE_W);
    check_eq("alias-before", call(smc_page), 7);
    put32((volatile uint8_t *)ALIAS_VA + 1, 8);
    check_eq("alias-write-then-run-identity", call(smc_page), 8);
    put32(smc_page + 1, 9);
    check_eq("identity-write-then-run-alias", call((void *)ALIAS_VA), 9);
    paging_disable();
}

/* Stores that meet a translation only at its edges: the routine's last
 * byte, the part of it on its second page, and code next to data stored
 * into a hundred times (the monitor may drop translations by byte range). */
static void edge_checks(void)
{
    check_eq("last-byte-before", call(smc_last), 5);
    smc_last[5] = OP_INC_EAX;
    check_eq("last-byte-patched", call(smc_last), 6);
    smc_last[5] = OP_RET;
    check_eq("last-byte-back", call(smc_last), 5);

    check_eq("cross-page-before", call(smc_cross), 0x01020304);
    smc_cross[4] = 0x11;                 /* the imm32's top byte: on the second page */
    check_eq("cross-page-second-page", call(smc_cross), 0x11020304);
    smc_cross[1] = 0x22;                 /* its low byte: on the first page */
    check_eq("cross-page-first-page", call(smc_cross), 0x11020322);

    for (uint32_t i = 0; i < 100; i++) {
        put32(smc_data + 4 * (i % 8), i);
        if (i % 25 == 0)
            check(i == 0 ? "data-page-run-0" : i == 25 ? "data-page-run-25" : i == 50 ? "data-page-run-50"
                                                                                     : "data-page-run-75",
                  call(smc_last) == 5, "got 0x%x", call(smc_last));
    }
    smc_last[5] = OP_INC_EAX;
    check_eq("data-page-then-patched", call(smc_last), 6);
    smc_last[5] = OP_RET;
}

void guest_main(void)
{
    check_eq("imm-original", call(smc_imm), 1);
    for (uint32_t v = 2; v <= 4; v++) {
        put32(smc_imm + 1, v);
        check(v == 2 ? "imm-patched-2" : v == 3 ? "imm-patched-3" : "imm-patched-4",
              call(smc_imm) == v, "got 0x%x", call(smc_imm));
    }
    check_eq("op-inc", call(smc_op), 1);
    smc_op[2] = OP_DEC_EAX;
    check_eq("op-patched-dec", call(smc_op), 0xFFFFFFFF);
    smc_op[2] = OP_INC_EAX;
    check_eq("op-back-to-inc", call(smc_op), 1);

    check_eq("next-insn-0x42", call_al(smc_next, 0x42), 0x42);
    check_eq("next-insn-0x43", call_al(smc_next, 0x43), 0x43);
    check_eq("ahead-insn-0x44", call_al(smc_ahead, 0x44), 0x44);
    check_eq("ahead-insn-0x45", call_al(smc_ahead, 0x45), 0x45);
    check_eq("loop-self-patch", call(smc_loop), 15);
    check_eq("loop-self-patch-again", call(smc_loop), 15);
    jit_checks();
    alias_checks();
    edge_checks();
}
