/* traps.h — exception and interrupt vectors. Source: Intel SDM Vol. 3A 6.3. */
#ifndef GUEST_TRAPS_H
#define GUEST_TRAPS_H

#define T_DE   0    /* divide error (fault) */
#define T_DB   1    /* debug */
#define T_NMI  2
#define T_BP   3    /* int3 breakpoint (trap) */
#define T_OF   4    /* into overflow (trap) */
#define T_BR   5    /* bound range (fault) */
#define T_UD   6    /* invalid opcode (fault) */
#define T_NM   7    /* device not available (fault) */
#define T_DF   8    /* double fault */
#define T_TS  10    /* invalid TSS */
#define T_NP  11    /* segment not present */
#define T_SS  12    /* stack fault */
#define T_GP  13    /* general protection */
#define T_PF  14    /* page fault */
#define T_MF  16    /* x87 error */
#define T_AC  17    /* alignment check */

#define T_IRQ0     0x20     /* master 8259 remapped here by pic_init() */
#define T_IRQ8     0x28     /* slave 8259 */
#define T_SYSCALL  0x80     /* DPL-3 interrupt gate the user-mode helpers use */

/* Error code of a fault on an IDT entry (SDM 3A 6.13): index*8 + IDT(2) + EXT(1) */
#define ERR_IDT(vec)  ((vec) * 8 + 2)

#endif
