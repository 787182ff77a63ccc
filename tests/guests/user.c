/*
 * user — ring 3 entered with iret, system calls through a DPL-3 gate and
 * back with iret, and what ring 3 may not do: int to a DPL-0 gate,
 * privileged instructions, I/O outside the TSS bitmap.
 *
 * Hazard: guest ring-3 code runs directly, so its traps reach the monitor
 * first. It must deliver them to the guest's IDT with the guest's privilege
 * checks (gate DPL, IOPL, the guest's own I/O bitmap), switch to the
 * guest's ESP0 and build the same frame (SDM 3A 6.12, 18.5; 2A INT n).
 */
#include "guest.h"

#define SYS_ADD1      1             /* eax = ebx + 1 */
#define DPL0_VEC      0x81          /* an interrupt gate user code may not use */
#define IO_ALLOWED    0x80          /* POST diagnostic port, open in the bitmap */
#define IO_DENIED     0x81          /* DMA page register, closed in the bitmap */
#define SEL_IO_TSS    SEL_SPARE     /* the TSS with an I/O bitmap */
#define IOMAP_BYTES   (65536 / 8)

/* A TSS followed by its I/O permission bitmap and the terminating 0xFF byte. */
static struct __attribute__((packed)) {
    struct tss32 tss;
    uint8_t map[IOMAP_BYTES];
    uint8_t end;
} io_tss ALIGNED(128);

/* ------------------------------------------------------------------ syscalls */
struct sys_seen { uint32_t cs, ss, esp, user_esp, eflags, kcs, kss, frame_end; };
static volatile struct sys_seen seen;
static volatile uint32_t u_result, u_ds_after, u_cs;

static void on_syscall(struct trapframe *tf)
{
    seen.cs = tf->cs;
    seen.ss = tf->ss;
    seen.esp = tf->esp;
    seen.user_esp = tf->ecx;        /* the caller put its ESP in ECX */
    seen.eflags = tf->eflags;
    seen.kcs = READ_SEG(cs);
    seen.kss = READ_SEG(ss);
    seen.frame_end = (uint32_t)tf + sizeof(*tf);
    if (tf->eax == SYS_ADD1)
        tf->eax = tf->ebx + 1;
}

static void user_syscall(void)
{
    uint32_t r;
    u_cs = READ_SEG(cs);
    asm volatile("movl %%esp, %%ecx\n\tint $0x80" : "=a"(r) : "a"(SYS_ADD1), "b"(41) : "ecx", "memory");
    u_result = r;
    u_ds_after = READ_SEG(ds);
}

static void syscall_checks(void)
{
    user_set_syscall(on_syscall);
    user_run(user_syscall, FL_RSVD1);
    check_eq("user-cpl3", u_cs & SEL_RPL_MASK, 3);
    check_eq("syscall-result", u_result, 42);
    check_eq("syscall-frame-cs", seen.cs, SEL_UCODE | 3);
    check_eq("syscall-frame-ss", seen.ss, SEL_UDATA | 3);
    check_eq("syscall-frame-esp", seen.esp, seen.user_esp);
    check_eq("syscall-frame-if", seen.eflags & (FL_IF | FL_IOPL), 0);
    check_eq("syscall-kernel-cs", seen.kcs, SEL_KCODE);
    check_eq("syscall-kernel-ss", seen.kss, SEL_KDATA);
    check_eq("syscall-stack-is-esp0", seen.frame_end, tss.esp0);
    check_eq("iret-keeps-user-ds", u_ds_after, SEL_UDATA | 3);
}

/* ------------------------------------------------------------------ faults at CPL 3 */
struct priv_case {
    const char *name;
    void (*probe)(uint32_t *start, uint32_t *next);
    struct fault_want want;         /* vector -1: no fault */
};

#define PRIV(fn, setup, insn)                                            \
    static void fn(uint32_t *start, uint32_t *next)                      \
    {                                                                    \
        uint32_t s, n;                                                   \
        PROBE(s, n, setup, insn, "eax", "ecx", "edx");                   \
        *start = s, *next = n;                                           \
    }
PRIV(p_int_dpl0, "", "int $0x81")
PRIV(p_int3, "", "int3")
PRIV(p_int_3, "", "int $3")
PRIV(p_into, "movl $0x7FFFFFFF, %%eax\n\taddl $1, %%eax", "into")
PRIV(p_cli, "", "cli")
PRIV(p_sti, "", "sti")
PRIV(p_hlt, "", "hlt")
PRIV(p_cr0_read, "", "movl %%cr0, %%eax")
PRIV(p_cr3_write, "xorl %%eax, %%eax", "movl %%eax, %%cr3")
PRIV(p_lgdt, "", "lgdt gdt")
PRIV(p_lidt, "", "lidt idt")
PRIV(p_ltr, "movl $0x28, %%eax", "ltr %%ax")
PRIV(p_clts, "", "clts")
PRIV(p_invlpg, "", "invlpg 0")
PRIV(p_rdmsr, "movl $0x174, %%ecx", "rdmsr")
PRIV(p_wbinvd, "", "wbinvd")
PRIV(p_in_denied, "", "inb $0x81, %%al")
PRIV(p_in_allowed, "", "inb $0x80, %%al")
PRIV(p_out_denied, "xorl %%eax, %%eax", "outb %%al, $0x81")
/* The faulting iret leaves its three pushes behind: the inner 2: (which the
 * resume address 2f names, gas numeric labels may repeat) restores ESP. */
PRIV(p_iret_to_cpl0, "movl %%esp, %%edx\n\tpushl $0x202\n\tpushl $0x08\n\tpushl $2f",
     "iret\n2:\tmovl %%edx, %%esp")

static const struct priv_case priv_cases[] = {
    { "user-int-dpl0-gate-gp", p_int_dpl0, { T_GP, ERR_IDT(DPL0_VEC), false } },
    { "user-int3-bp",          p_int3,     { T_BP, 0, true } },
    { "user-int-3-bp",         p_int_3,    { T_BP, 0, true } },
    { "user-into-of",          p_into,     { T_OF, 0, true } },
    { "user-cli-gp",           p_cli,      { T_GP, 0, false } },
    { "user-sti-gp",           p_sti,      { T_GP, 0, false } },
    { "user-hlt-gp",           p_hlt,      { T_GP, 0, false } },
    { "user-mov-from-cr0-gp",  p_cr0_read, { T_GP, 0, false } },
    { "user-mov-to-cr3-gp",    p_cr3_write, { T_GP, 0, false } },
    { "user-lgdt-gp",          p_lgdt,     { T_GP, 0, false } },
    { "user-lidt-gp",          p_lidt,     { T_GP, 0, false } },
    { "user-ltr-gp",           p_ltr,      { T_GP, 0, false } },
    { "user-clts-gp",          p_clts,     { T_GP, 0, false } },
    { "user-invlpg-gp",        p_invlpg,   { T_GP, 0, false } },
    { "user-rdmsr-gp",         p_rdmsr,    { T_GP, 0, false } },
    { "user-wbinvd-gp",        p_wbinvd,   { T_GP, 0, false } },
    { "user-in-denied-gp",     p_in_denied, { T_GP, 0, false } },
    { "user-in-bitmap-ok",     p_in_allowed, { -1, 0, false } },
    { "user-out-denied-gp",    p_out_denied, { T_GP, 0, false } },
    { "user-iret-to-cpl0-gp",  p_iret_to_cpl0, { T_GP, SEL_KCODE, false } },
};

static struct { struct trap_record t; uint32_t start, next; } priv_res[ARRAY_SIZE(priv_cases)];

static void user_priv(void)
{
    for (unsigned i = 0; i < ARRAY_SIZE(priv_cases); i++) {
        uint32_t s, n;
        priv_cases[i].probe(&s, &n);
        priv_res[i].t = *(struct trap_record *)&last_trap;
        priv_res[i].start = s;
        priv_res[i].next = n;
    }
}

static void priv_checks(void)
{
    io_tss.tss = tss;
    for (unsigned i = 0; i < IOMAP_BYTES; i++)
        io_tss.map[i] = 0xFF;
    io_tss.map[IO_ALLOWED / 8] &= ~(1u << (IO_ALLOWED % 8));
    io_tss.end = 0xFF;
    io_tss.tss.iomap = sizeof(struct tss32);
    gdt[SEL_IO_TSS >> 3] = seg_make((uint32_t)&io_tss, sizeof(io_tss) - 1, DA_P | DA_TSS32, 0);
    ltr(SEL_IO_TSS);

    user_run(user_priv, FL_RSVD1);
    for (unsigned i = 0; i < ARRAY_SIZE(priv_cases); i++) {
        const struct priv_case *c = &priv_cases[i];
        if (c->want.vector < 0) {
            check(c->name, priv_res[i].t.vector == -1, "vector %d", priv_res[i].t.vector);
            continue;
        }
        last_trap = priv_res[i].t;
        check_fault(c->name, priv_res[i].start, priv_res[i].next, c->want);
    }
    check_eq("fault-frame-cs-user", priv_res[0].t.cs, SEL_UCODE | 3);
}

/* An external interrupt arriving while ring 3 runs: the frame carries the
 * user CS/SS/ESP and the handler runs on ESP0. The monitor injecting a
 * virtual IRQ into guest user mode must build exactly this. */
static void user_irq_body(void)
{
    asm volatile("nop\nnop" ::: "memory");
}

static void irq_checks(void)
{
    check("irq-pending", irq0_make_pending(), "IRQ 0 never requested");
    uint32_t before = irq0_count;
    user_run(user_irq_body, FL_RSVD1 | FL_IF);
    irq0_quiet();
    check_eq("irq-at-cpl3-taken", irq0_count - before, 1);
    check_eq("irq-at-cpl3-frame-cs", irq0_frame.cs, SEL_UCODE | 3);
    check_eq("irq-at-cpl3-frame-ss", irq0_frame.ss, SEL_UDATA | 3);
    check_eq("irq-at-cpl3-frame-if", irq0_frame.eflags & FL_IF, FL_IF);
    /* iret has no interrupt shadow: the pending IRQ comes before the
     * first user instruction. */
    check_eq("irq-at-cpl3-eip-first-insn", irq0_frame.eip, (uint32_t)user_irq_body);
}

void guest_main(void)
{
    syscall_checks();
    priv_checks();
    irq_checks();
    check_eq("back-at-cpl0", READ_SEG(cs), SEL_KCODE);
}
