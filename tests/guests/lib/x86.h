/*
 * x86.h — hardware numbers and inline-assembly wrappers for the test guests.
 *
 * Every instruction a guest probes goes through a wrapper here (or sits in an
 * explicit asm block in the guest, where the exact encoding is the point), so
 * that a guest reads as a list of checks. Source: Intel SDM Vol. 3A, chapters
 * 2 (system registers), 3 (segments), 4 (paging), 5 (protection), 6 (interrupts).
 */
#ifndef GUEST_X86_H
#define GUEST_X86_H

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stdint.h>
#endif

/* ---------------------------------------------------------------- EFLAGS (SDM 3A 2.3) */
#define FL_CF     (1u << 0)     /* carry */
#define FL_RSVD1  (1u << 1)     /* reserved, always 1 in the pushed image */
#define FL_RSVD3  (1u << 3)     /* reserved, always 0 */
#define FL_RSVD5  (1u << 5)     /* reserved, always 0 */
#define FL_ZF     (1u << 6)     /* zero */
#define FL_TF     (1u << 8)     /* single-step trap */
#define FL_IF     (1u << 9)     /* interrupt enable */
#define FL_DF     (1u << 10)    /* direction */
#define FL_OF     (1u << 11)    /* overflow */
#define FL_IOPL_SHIFT 12
#define FL_IOPL   (3u << 12)    /* I/O privilege level */
#define FL_NT     (1u << 14)    /* nested task */
#define FL_RSVD15 (1u << 15)    /* reserved, always 0 */
#define FL_RF     (1u << 16)    /* resume; never in a pushf image */
#define FL_VM     (1u << 17)    /* virtual-8086; never in a pushf image */
#define FL_AC     (1u << 18)    /* alignment check (486+) */
#define FL_ID     (1u << 21)    /* CPUID available when toggleable */
#define FL_IOPL3  (3u << 12)

/* ---------------------------------------------------------------- control registers (SDM 3A 2.5) */
#define CR0_PE (1u << 0)        /* protection enable */
#define CR0_MP (1u << 1)        /* monitor coprocessor: WAIT honours TS */
#define CR0_EM (1u << 2)        /* x87 emulation */
#define CR0_TS (1u << 3)        /* task switched: next x87 use raises #NM */
#define CR0_ET (1u << 4)        /* extension type, hardwired 1 since the 486 */
#define CR0_NE (1u << 5)        /* native x87 error reporting */
#define CR0_WP (1u << 16)       /* supervisor writes honour read-only pages */
#define CR0_AM (1u << 18)       /* alignment mask */
#define CR0_NW (1u << 29)       /* not write-through */
#define CR0_CD (1u << 30)       /* cache disable */
#define CR0_PG (1u << 31)       /* paging */

#define CR4_VME (1u << 0)       /* virtual-8086 extensions */
#define CR4_PVI (1u << 1)       /* protected-mode virtual interrupts */
#define CR4_TSD (1u << 2)       /* RDTSC privileged */
#define CR4_DE  (1u << 3)       /* debugging extensions */
#define CR4_PSE (1u << 4)       /* 4 MiB pages in 32-bit paging */
#define CR4_PAE (1u << 5)       /* PAE paging */
#define CR4_PGE (1u << 7)       /* global pages */

/* ---------------------------------------------------------------- selectors of lib/desc.c's GDT */
#define SEL_RPL_MASK 3u
#define SEL_TI       4u         /* table indicator: 1 = LDT */
#define SEL_KCODE  0x08         /* flat 32-bit code, DPL 0 */
#define SEL_KDATA  0x10         /* flat 32-bit data, DPL 0 */
#define SEL_UCODE  0x18         /* flat 32-bit code, DPL 3 (SYSEXIT needs KCODE+16) */
#define SEL_UDATA  0x20         /* flat 32-bit data, DPL 3 (SYSEXIT needs KCODE+24) */
#define SEL_TSS    0x28         /* the one 32-bit TSS */
#define SEL_LDT    0x30         /* an LDT descriptor the guests may point at */
#define SEL_SPARE  0x38         /* first of GDT_SPARE free slots for the guests */
#define GDT_SPARE  8
#define GDT_ENTRIES (7 + GDT_SPARE)

/* descriptor access byte (SDM 3A 3.4.5) */
#define DA_P       0x80         /* present */
#define DA_DPL(n)  ((n) << 5)
#define DA_S       0x10         /* code/data (not system) */
#define DA_CODE    0x08         /* executable */
#define DA_C       0x04         /* conforming (code) */
#define DA_E       0x04         /* expand-down (data) */
#define DA_R       0x02         /* readable (code) */
#define DA_W       0x02         /* writable (data) */
#define DA_A       0x01         /* accessed */
#define DA_LDT     0x02         /* system type: LDT */
#define DA_TSS32   0x09         /* system type: available 32-bit TSS */
#define DA_TSS32_BUSY 0x0B      /* system type: busy 32-bit TSS */
#define DA_INTGATE 0x0E         /* system type: 32-bit interrupt gate */
#define DA_TRAPGATE 0x0F        /* system type: 32-bit trap gate */
/* flags nibble */
#define DF_G   0x8              /* limit in 4 KiB units */
#define DF_DB  0x4              /* 32-bit default operand size */

/* ---------------------------------------------------------------- MSRs */
#define MSR_SYSENTER_CS  0x174
#define MSR_SYSENTER_ESP 0x175
#define MSR_SYSENTER_EIP 0x176

/* ---------------------------------------------------------------- CPUID.1 EDX */
#define CPUID1_EDX_PSE (1u << 3)
#define CPUID1_EDX_MSR (1u << 5)
#define CPUID1_EDX_PGE (1u << 13)
#define CPUID1_EDX_SEP (1u << 11)

#ifndef __ASSEMBLER__
/* ---------------------------------------------------------------- wrappers */
static inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(uint16_t port, uint32_t v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint16_t inw(uint16_t port) { uint16_t v; asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline uint32_t read_cr0(void) { uint32_t v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline uint32_t read_cr2(void) { uint32_t v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline uint32_t read_cr3(void) { uint32_t v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline uint32_t read_cr4(void) { uint32_t v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr0(uint32_t v) { asm volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static inline void write_cr2(uint32_t v) { asm volatile("mov %0, %%cr2" : : "r"(v) : "memory"); }
static inline void write_cr3(uint32_t v) { asm volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static inline void write_cr4(uint32_t v) { asm volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }
static inline void clts(void) { asm volatile("clts" : : : "memory"); }
static inline void invlpg(uint32_t va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }

static inline uint32_t read_eflags(void) { uint32_t v; asm volatile("pushfl; popl %0" : "=r"(v)); return v; }
static inline void write_eflags(uint32_t v) { asm volatile("pushl %0; popfl" : : "r"(v) : "memory", "cc"); }
static inline void cli(void) { asm volatile("cli" : : : "memory"); }
static inline void sti(void) { asm volatile("sti" : : : "memory"); }

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static inline void cpuid(uint32_t leaf, uint32_t r[4])
{
    asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

#define READ_SEG(seg) ({ uint32_t _v; asm volatile("movl %%" #seg ", %0" : "=r"(_v)); _v & 0xFFFF; })

struct __attribute__((packed)) dtr {    /* GDTR/IDTR image of lgdt/sgdt */
    uint16_t limit;
    uint32_t base;
};
static inline void lgdt(const struct dtr *d) { asm volatile("lgdt %0" : : "m"(*d)); }
static inline void lidt(const struct dtr *d) { asm volatile("lidt %0" : : "m"(*d)); }
static inline void sgdt(struct dtr *d) { asm volatile("sgdt %0" : "=m"(*d)); }
static inline void sidt(struct dtr *d) { asm volatile("sidt %0" : "=m"(*d)); }
static inline void ltr(uint16_t sel) { asm volatile("ltr %0" : : "r"(sel)); }
static inline void lldt(uint16_t sel) { asm volatile("lldt %0" : : "r"(sel)); }
static inline uint16_t str(void) { uint16_t v; asm volatile("str %0" : "=r"(v)); return v; }
static inline uint16_t sldt(void) { uint16_t v; asm volatile("sldt %0" : "=r"(v)); return v; }
static inline uint32_t smsw(void) { uint32_t v; asm volatile("smsw %0" : "=r"(v)); return v; }

/* ---------------------------------------------------------------- descriptor queries */
#define LAR_MASK 0x00F0FF00u        /* bits lar defines (SDM 2A LAR) */
/* lar/lsl/verr/verw: *ok gets ZF (the selector passed the checks). */
static inline uint32_t lar(uint32_t sel, bool *ok)
{
    uint32_t v = 0; uint8_t z;
    asm volatile("larl %2, %0; setz %1" : "+r"(v), "=q"(z) : "r"(sel) : "cc");
    *ok = z; return v;
}
static inline uint32_t lsl(uint32_t sel, bool *ok)
{
    uint32_t v = 0; uint8_t z;
    asm volatile("lsll %2, %0; setz %1" : "+r"(v), "=q"(z) : "r"(sel) : "cc");
    *ok = z; return v;
}
static inline bool verr(uint16_t sel)
{
    uint8_t z; asm volatile("verr %1; setz %0" : "=q"(z) : "r"(sel) : "cc"); return z;
}
static inline bool verw(uint16_t sel)
{
    uint8_t z; asm volatile("verw %1; setz %0" : "=q"(z) : "r"(sel) : "cc"); return z;
}

/* ---------------------------------------------------------------- debug registers (SDM 3A 17.2) */
#define DR7_L0      (1u << 0)       /* local enable of DR0; R/W0 = LEN0 = 0: execution */
#define DR7_FIXED1  (1u << 10)      /* reserved, reads as 1 */
#define DR6_B0      (1u << 0)       /* DR0's condition was met */
#define DEBUG_REG(n) \
    static inline uint32_t read_dr##n(void) { uint32_t v; asm volatile("mov %%db" #n ", %0" : "=r"(v)); return v; } \
    static inline void write_dr##n(uint32_t v) { asm volatile("mov %0, %%db" #n : : "r"(v)); }
DEBUG_REG(0)
DEBUG_REG(3)
DEBUG_REG(6)
DEBUG_REG(7)
#undef DEBUG_REG
#endif /* __ASSEMBLER__ */

#endif
