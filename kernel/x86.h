/*
 * Thin wrappers around IA-32 instructions that C cannot express.
 * Every inline assembly statement of the host kernel lives here (STYLE.md §10).
 * Source: Intel SDM Vol. 2 (instruction reference), Vol. 3A ch. 2 (system registers).
 */
#ifndef HV86_KERNEL_X86_H
#define HV86_KERNEL_X86_H
#include <stdint.h>

/* EFLAGS bits (SDM Vol. 1 §3.4.3) */
#define EFLAGS_CF   0x00000001u
#define EFLAGS_FIXED 0x00000002u  /* bit 1 always reads 1 */
#define EFLAGS_PF   0x00000004u
#define EFLAGS_AF   0x00000010u
#define EFLAGS_ZF   0x00000040u
#define EFLAGS_SF   0x00000080u
#define EFLAGS_TF   0x00000100u
#define EFLAGS_IF   0x00000200u
#define EFLAGS_DF   0x00000400u
#define EFLAGS_OF   0x00000800u
#define EFLAGS_IOPL 0x00003000u
#define EFLAGS_NT   0x00004000u
#define EFLAGS_RF   0x00010000u
#define EFLAGS_VM   0x00020000u
#define EFLAGS_AC   0x00040000u
#define EFLAGS_VIF  0x00080000u
#define EFLAGS_VIP  0x00100000u
#define EFLAGS_ID   0x00200000u

/* CR0 bits (SDM Vol. 3A §2.5) */
#define CR0_PE 0x00000001u
#define CR0_MP 0x00000002u
#define CR0_EM 0x00000004u
#define CR0_TS 0x00000008u
#define CR0_ET 0x00000010u
#define CR0_NE 0x00000020u
#define CR0_WP 0x00010000u
#define CR0_AM 0x00040000u
#define CR0_NW 0x20000000u
#define CR0_CD 0x40000000u
#define CR0_PG 0x80000000u

/* CR4 bits */
#define CR4_VME 0x00000001u
#define CR4_PVI 0x00000002u
#define CR4_TSD 0x00000004u
#define CR4_DE  0x00000008u
#define CR4_PSE 0x00000010u
#define CR4_PAE 0x00000020u
#define CR4_MCE 0x00000040u
#define CR4_PGE 0x00000080u
#define CR4_PCE 0x00000100u
#define CR4_OSFXSR 0x00000200u
#define CR4_OSXMMEXCPT 0x00000400u
#define CR4_UMIP 0x00000800u /* SGDT/SIDT/SLDT/SMSW/STR fault at CPL > 0 */
#define CPUID7_ECX_UMIP (1u << 2)
#define CPUID1_EDX_FXSR (1u << 24)
#define CPUID1_EDX_SSE  (1u << 25)

#ifndef HV86_HOSTED /* host unit tests compile the pure logic without these */
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
/* Repeated word input/output: count is in 16-bit words. */
static inline void insw(uint16_t port, void *buf, uint32_t count)
{
    __asm__ volatile("cld; rep insw" : "+D"(buf), "+c"(count) : "d"(port) : "memory");
}
static inline void outsw(uint16_t port, const void *buf, uint32_t count)
{
    __asm__ volatile("cld; rep outsw" : "+S"(buf), "+c"(count) : "d"(port) : "memory");
}
/* A write to the unused POST port: ~1 us of delay on PC hardware. */
static inline void io_delay(void) { outb(0x80, 0); }

static inline void cpu_cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void cpu_sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void cpu_hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
/* Enable interrupts and halt atomically: sti's one-instruction shadow covers hlt. */
static inline void cpu_sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
static inline void cpu_pause(void) { __asm__ volatile("pause"); }

static inline uint32_t read_eflags(void)
{
    uint32_t f;
    __asm__ volatile("pushfl; popl %0" : "=r"(f));
    return f;
}
static inline void write_eflags(uint32_t f) { __asm__ volatile("pushl %0; popfl" : : "r"(f) : "memory", "cc"); }

#define DEFINE_CR_ACCESS(n)                                                          \
    static inline uint32_t read_cr##n(void)                                          \
    {                                                                                \
        uint32_t v;                                                                  \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));                            \
        return v;                                                                    \
    }                                                                                \
    static inline void write_cr##n(uint32_t v) { __asm__ volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
DEFINE_CR_ACCESS(0)
DEFINE_CR_ACCESS(2)
DEFINE_CR_ACCESS(3)
DEFINE_CR_ACCESS(4)
#undef DEFINE_CR_ACCESS

/* FPU context (SDM Vol. 1 §8.1, §10.5): the 512-byte FXSAVE image must be 16-aligned. */
static inline void clts(void) { __asm__ volatile("clts"); }
static inline void fninit(void) { __asm__ volatile("fninit"); }
static inline void fxsave(void *area) { __asm__ volatile("fxsave %0" : "=m"(*(uint8_t(*)[512])area)); }
static inline void fxrstor(const void *area) { __asm__ volatile("fxrstor %0" : : "m"(*(const uint8_t(*)[512])area)); }

/* Two-operand ALU instructions the monitor emulates for a guest (on operands
 * it had to fetch itself), run on the host CPU so that the arithmetic flags
 * are exactly the hardware's. size: 1, 2 or 4 bytes; flags_in: the guest's
 * CF (for ADC/SBB). Returns the result; *flags_out: EFLAGS after it. */
enum alu_op { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP, ALU_TEST };

#define ALU_ASM(insn, sfx, reg_a, reg_b)                                                       \
    __asm__ volatile("push %[fi]\n\tpopf\n\t" insn sfx " %" reg_b "[b], %" reg_a "[a]\n\t"     \
                     "pushf\n\tpop %[fo]"                                                     \
                     : [a] "+q"(a), [fo] "=r"(fo) : [b] "q"(b), [fi] "r"(flags_in) : "cc")

#define ALU_CASES(sfx, ra, rb)                                                                  \
    switch (op) {                                                                               \
    case ALU_ADD: ALU_ASM("add", sfx, ra, rb); break;                                           \
    case ALU_OR: ALU_ASM("or", sfx, ra, rb); break;                                             \
    case ALU_ADC: ALU_ASM("adc", sfx, ra, rb); break;                                           \
    case ALU_SBB: ALU_ASM("sbb", sfx, ra, rb); break;                                           \
    case ALU_AND: ALU_ASM("and", sfx, ra, rb); break;                                           \
    case ALU_SUB: case ALU_CMP: ALU_ASM("sub", sfx, ra, rb); break;                             \
    case ALU_XOR: ALU_ASM("xor", sfx, ra, rb); break;                                           \
    case ALU_TEST: ALU_ASM("and", sfx, ra, rb); break;                                          \
    }

static inline uint32_t alu_exec(enum alu_op op, unsigned size, uint32_t a, uint32_t b, uint32_t flags_in,
                                uint32_t *flags_out)
{
    uint32_t fo = 0;
    /* The guest's CF only, and the monitor's own IF and DF: never load
     * guest IF/TF/IOPL, never change the monitor's interrupt state. */
    flags_in = (flags_in & EFLAGS_CF) | (read_eflags() & (EFLAGS_IF | EFLAGS_DF)) | EFLAGS_FIXED;
    if (size == 1) {
        ALU_CASES("b", "b", "b")
    } else if (size == 2) {
        ALU_CASES("w", "w", "w")
    } else {
        ALU_CASES("l", "k", "k")
    }
    *flags_out = fo;
    return a;
}

static inline void invlpg(uint32_t va) { __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory"); }

struct __attribute__((packed)) desc_ptr {
    uint16_t limit; /* bytes - 1 */
    uint32_t base;  /* linear address */
};
static inline void lgdt(const struct desc_ptr *p) { __asm__ volatile("lgdt %0" : : "m"(*p)); }
static inline void lidt(const struct desc_ptr *p) { __asm__ volatile("lidt %0" : : "m"(*p)); }
/* Load LDTR; 0 makes every LDT selector fault (SDM Vol. 3A §3.5.1). */
static inline void lldt(uint16_t sel) { __asm__ volatile("lldt %0" : : "r"(sel)); }
static inline void ltr(uint16_t sel) { __asm__ volatile("ltr %0" : : "r"(sel)); }

#define MSR_IA32_SYSENTER_CS 0x174u /* SDM Vol. 4 Table 2-2 */
#define MSR_IA32_SYSENTER_ESP 0x175u
#define MSR_IA32_SYSENTER_EIP 0x176u
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
static inline void cpuid_count(uint32_t leaf, uint32_t subleaf, uint32_t *a, uint32_t *b, uint32_t *c,
                               uint32_t *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(subleaf));
}
static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
    cpuid_count(leaf, 0, a, b, c, d);
}
static inline uint16_t read_cs(void) { uint16_t s; __asm__ volatile("mov %%cs, %0" : "=r"(s)); return s; }
#endif /* HV86_HOSTED */

#endif
