/*
 * guest.h — the runtime every test guest links against.
 *
 * A guest defines `void guest_main(void)` as a list of checks; the runtime has
 * already set up COM1, its own GDT (x86.h SEL_*), a TSS, an IDT whose every
 * vector goes to trap_dispatch(), and masked/remapped the 8259s. When
 * guest_main returns the runtime prints `DONE pass=N fail=M` and exits.
 *
 * Output is one line per check: `PASS name`, `FAIL name: detail` or
 * `SKIP name: why`. It must be the same on every correct CPU, so no check
 * prints timing-dependent numbers.
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86.h"
#include "mmu.h"
#include "traps.h"

#define ALIGNED(n) __attribute__((aligned(n)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- output (serial.c, printf.c) */
void serial_init(void);
void serial_putc(char c);
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vprintf(const char *fmt, va_list ap);

/* ---------------------------------------------------------------- checks (check.c) */
/* Print PASS name, or FAIL name: detail (printf-style); returns ok. */
bool check(const char *name, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Equality of two 32-bit values; the FAIL line shows both in hex. */
bool check_eq(const char *name, uint32_t got, uint32_t want);
void skip(const char *name, const char *why);
/* Print DONE and leave the machine: isa-debug-exit (QEMU), 0x8900 (Bochs), hlt. */
void guest_exit(void) __attribute__((noreturn));
/* The loader's command line ("" if none), and the number after "key=" in it. */
const char *boot_cmdline(void);
uint32_t boot_arg(const char *key, uint32_t def);
/* Does the CPU's brand string (CPUID 80000002h-80000004h, which hv86
 * passes through) say QEMU? QEMU TCG skips some checks hardware makes. */
bool cpu_is_qemu(void);
void guest_main(void);

/* ---------------------------------------------------------------- descriptors (desc.c) */
struct __attribute__((packed)) seg_desc { uint32_t lo, hi; };
struct __attribute__((packed)) gate_desc { uint32_t lo, hi; };
struct __attribute__((packed)) tss32 {
    uint32_t link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
    uint32_t eax, ecx, edx, ebx, esp, ebp, esi, edi;
    uint32_t es, cs, ss, ds, fs, gs, ldt;
    uint16_t trap, iomap;
};
extern struct seg_desc gdt[GDT_ENTRIES];
extern struct gate_desc idt[256];
extern struct tss32 tss;
extern uint32_t stub_table[256];        /* entry stub of each vector (entry.S) */

struct seg_desc seg_make(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags);
struct gate_desc gate_make(uint16_t sel, uint32_t offset, uint8_t type, int dpl);
/* Set IDT gate vec to the runtime stub with the given DPL (interrupt gate). */
void idt_set_dpl(int vec, int dpl);
/* Reload CS (far jump) and the data segment registers. */
void seg_reload(uint16_t cs, uint16_t ds);
void desc_init(void);

/* ---------------------------------------------------------------- traps (trap.c) */
struct trapframe {
    uint32_t gs, fs, es, ds;
    uint32_t edi, esi, ebp, esp_pusha, ebx, edx, ecx, eax;
    uint32_t vector, err;
    uint32_t eip, cs, eflags;
    uint32_t esp, ss;               /* only when the trap came from ring 3 */
};
typedef void (*trap_fn)(struct trapframe *tf);
void trap_set_handler(int vec, trap_fn fn);

/* A probe runs code expected to trap once: with no handler registered for
 * the vector, trap_dispatch records the trap in last_trap and resumes at
 * probe_resume. Use PROBE() below from C. */
struct trap_record {
    int vector;                     /* -1 if nothing was taken */
    uint32_t err, eip, cs, cr2, eflags;
    uint32_t ecx, esi, edi;         /* for string instructions: progress at the trap */
};
extern volatile struct trap_record last_trap;
extern volatile uint32_t probe_resume;
void trap_expect(void);             /* arm: the next trap is recorded, not fatal */
void trap_disarm(void);

/* Run `setup` then `insn` (asm text) once with the trap recorder armed.
 * `start`/`next` get the addresses of insn's first instruction and of what
 * follows it: the saved EIP of a fault and of a trap. Values reach the asm
 * through probe_arg (e.g. "movl probe_arg, %%eax"); registers named in the
 * trailing clobber list are free. After a trap, execution resumes at next. */
extern volatile uint32_t probe_arg;
#define PROBE(start, next, setup, insn, ...)                            \
    do {                                                               \
        trap_expect();                                                 \
        asm volatile("movl $1f, %0\n\tmovl $2f, %1\n\tmovl $2f, probe_resume\n\t" \
                     setup "\n1:\t" insn "\n2:\n"                     \
                     : "=m"(start), "=m"(next) : : "memory", "cc", ##__VA_ARGS__); \
        trap_disarm();                                                 \
    } while (0)

/* A fault probe as data: run it, then check vector, error code and that the
 * saved EIP is the faulting instruction (or the next one, for traps). */
struct fault_want { int vector; uint32_t err; bool trap; };
void check_fault(const char *name, uint32_t start, uint32_t next, struct fault_want w);

/* ---------------------------------------------------------------- user mode (entry.S, user.c) */
#define SYS_EXIT 0                  /* eax for int 0x80: back to user_run's caller */
/* Run fn at CPL 3 with eflags (IF/IOPL as given) on the user stack; returns
 * when fn returns (it returns into a stub doing SYS_EXIT). Traps at CPL 3 go
 * through trap_dispatch like any other and return to ring 3; other int 0x80
 * calls go to the handler set by user_set_syscall(). */
void user_run(void (*fn)(void), uint32_t eflags);
void user_set_syscall(trap_fn fn);
void user_resume(void) __attribute__((noreturn));   /* entry.S */
extern uint8_t user_stack_top[];

/* ---------------------------------------------------------------- paging (paging.c) */
extern pte_t kernel_pd[1024];
/* Build kernel_pd: identity map of the first 4 MiB with 4 KiB pages (flags
 * PTE_P|PTE_W|PTE_U), nothing else present. Returns the PD's address for CR3. */
uint32_t paging_identity(void);
/* The PTE mapping va in kernel_pd, making a page table from a small pool if
 * the PDE is empty. */
pte_t *paging_pte(uint32_t va);
void paging_map(uint32_t va, uint32_t pa, uint32_t flags);
void paging_enable(uint32_t cr3);
void paging_disable(void);

/* ---------------------------------------------------------------- PIC and PIT (pic.c) */
#define PIT_DIV_1KHZ 1193           /* ~1 ms period: quick under both emulators */
#define IRQ_TIMER 0                 /* PIT channel 0 on the master 8259 */
void pic_init(void);                /* remap to T_IRQ0/T_IRQ8, mask all */
void pic_unmask(int irq);
void pic_mask(int irq);
void pic_eoi(int irq);
uint8_t pic_irr(void);              /* master's interrupt request register */
uint8_t pic_isr(void);              /* master's in-service register */
uint8_t pic_slave_isr(void);        /* slave's in-service register */
void pit_periodic(uint16_t divisor); /* channel 0, mode 2 (rate generator) */
void pit_stop(void);
/* Poll until (*p != old) or spins run out; true if it changed. */
bool wait_change(volatile uint32_t *p, uint32_t old, uint32_t spins);
/* Poll the master IRR until irq is requested; true if it was. */
bool wait_irr(int irq, uint32_t spins);

/* ---------------------------------------------------------------- one-shot IRQ 0 (irq.c) */
extern volatile uint32_t irq0_count, irq0_eip, irq0_isr;
extern volatile struct trapframe irq0_frame;   /* the last IRQ 0's frame */
/* With IF=0, leave IRQ 0 requested at the CPU so that the next instruction
 * boundary with IF=1 takes it, exactly once (the handler masks IRQ 0 again).
 * Returns false if the PIT never raised it. */
bool irq0_make_pending(void);
void irq0_quiet(void);              /* IF=0, IRQ 0 masked, PIT quiet */

#endif
