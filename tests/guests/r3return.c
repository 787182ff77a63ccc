/*
 * r3return — returns to ring 3 by IRET and page faults of ring 3, each
 * with the state the CPU gives: the handler's frame (CR2, error code, EIP,
 * CS, EFLAGS, ESP, SS) for a run of demand faults, and after IRET the
 * flags, registers and descriptors the popped frame and the GDT say, also
 * where IRET must do more than return: TF set (a step trap after one
 * instruction), IOPL raised, a descriptor rewritten before the return,
 * a frame that straddles two pages; and a ring-3 fault whose #PF gate is
 * not present, which is a double fault.
 *
 * Hazard: a monitor that returns to ring 3 and gives ring 3's faults to
 * the guest kernel without a world switch (hv86's IRET stub and
 * reflect_in_world, with SYSENTER_CS set as Linux sets it, so that IRET's
 * CS and SS are the ones SYSEXIT loads) takes those shortcuts only where
 * the popped frame and the GDT allow them, and must fall back to the full
 * IRET for everything else (SDM Vol. 2A IRET, Vol. 3A §6.12, §17.3.1.4).
 */
#include "guest.h"

#define REGION   0x40000000u        /* NPAGES not-present pages, mapped on demand */
#define NPAGES   24u
#define SYS_FLAGS   1               /* ZF set, CF clear, EAX..EDX replaced */
#define SYS_STEP    2               /* TF set in the returned EFLAGS */
#define SYS_GDT     3               /* SEL_SPARE's limit rewritten */
#define SYS_IOPL    4               /* IOPL 3 in the returned EFLAGS */
#define SYS_IOPL0   5               /* IOPL 0 again */
#define SPARE_OLD   0x1FFFu
#define SPARE_NEW   0x2FFFu

static uint8_t frames[NPAGES + 1][PAGE_SIZE] ALIGNED(PAGE_SIZE); /* the last: double_fault's */
static uint8_t entry_stack[2 * PAGE_SIZE] ALIGNED(PAGE_SIZE); /* the straddling frame's */
static uint32_t sysenter_stack[64];

/* ------------------------------------------------------------------ demand faults */
struct pf_seen { uint32_t cr2, err, eip, cs, eflags, esp, ss; };
static volatile struct pf_seen pf[NPAGES + 1];
static volatile uint32_t pf_count, pf_stray;

static void on_pf(struct trapframe *tf)
{
    uint32_t cr2 = read_cr2(), i = (cr2 - REGION) / PAGE_SIZE;
    if (cr2 < REGION || i > NPAGES || pf_count > NPAGES || !(tf->cs & 3)) {
        pf_stray++;
        check("pf-stray", false, "#PF cr2 0x%x err 0x%x at %x:%x", cr2, tf->err, tf->cs, tf->eip);
        guest_exit();
    }
    pf[pf_count] = (struct pf_seen){ cr2, tf->err, tf->eip, tf->cs, tf->eflags, tf->esp, tf->ss };
    pf_count++;
    paging_map(REGION + i * PAGE_SIZE, (uint32_t)frames[i], PTE_P | PTE_W | PTE_U);
    invlpg(cr2); /* as Linux does after changing a PTE */
}

static volatile uint32_t u_esp[NPAGES], u_sum, u_store_eip[NPAGES];

/* Ring 3: one store into each page (each a #PF), then the values back. */
static void user_demand(void)
{
    uint32_t esp, eip, sum = 0;
    for (uint32_t i = 0; i < NPAGES; i++) {
        uint32_t *p = (uint32_t *)(REGION + i * PAGE_SIZE + 4 * i);
        asm volatile("movl %%esp, %1\n\tmovl $1f, %0\n1:\tmovl %3, (%2)"
                     : "=&r"(eip), "=&r"(esp) : "r"(p), "r"(0x1000 + i) : "memory");
        u_store_eip[i] = eip;
        u_esp[i] = esp;
    }
    for (uint32_t i = 0; i < NPAGES; i++)
        sum += *(volatile uint32_t *)(REGION + i * PAGE_SIZE + 4 * i);
    u_sum = sum;
}

static void demand_faults(void)
{
    paging_enable(paging_identity());
    trap_set_handler(T_PF, on_pf);
    user_run(user_demand, FL_RSVD1 | FL_IF);
    trap_set_handler(T_PF, 0);
    paging_disable();
    check_eq("demand-faults", pf_count, NPAGES);
    check_eq("demand-no-stray", pf_stray, 0);
    uint32_t want_sum = 0, bad = 0;
    for (uint32_t i = 0; i < NPAGES; i++) {
        want_sum += 0x1000 + i;
        const volatile struct pf_seen *s = &pf[i];
        bool ok = s->cr2 == REGION + i * PAGE_SIZE + 4 * i && s->err == (PFE_W | PFE_U) && s->cs == (SEL_UCODE | 3) &&
                  s->ss == (SEL_UDATA | 3) && s->esp == u_esp[i] && s->eip == u_store_eip[i] &&
                  (s->eflags & (FL_IF | FL_TF | FL_IOPL | FL_VM)) == FL_IF;
        if (!ok && bad++ < 3)
            check("demand-frame", false, "fault %u: cr2 0x%x err 0x%x eip 0x%x cs 0x%x eflags 0x%x esp 0x%x ss 0x%x",
                  i, s->cr2, s->err, s->eip, s->cs, s->eflags, s->esp, s->ss);
    }
    check_eq("demand-frames-as-pushed", bad, 0);
    check_eq("demand-values-back", u_sum, want_sum);
}

/* ------------------------------------------------------------------ a fault delivering a fault */
/* The #PF gate not present when ring 3 faults: delivering the #PF raises
 * #NP, and a contributory fault while a #PF is delivered is a double fault
 * (SDM Vol. 3A Table 6-5), error code 0. The #DF handler makes the gate
 * present again and returns (the saved EIP of a #DF is undefined, but
 * both emulators give the faulting instruction's); the store then faults
 * again, this time into the #PF handler. */
static volatile uint32_t df_count, df_err, df_cs, np_count, df_val;

static void on_df(struct trapframe *tf)
{
    df_count++;
    df_err = tf->err;
    df_cs = tf->cs;
    idt[T_PF].hi |= 1u << 15;
}

static void on_np(struct trapframe *tf)
{
    np_count++;
    idt[T_PF].hi |= 1u << 15;
}

static void user_double_fault(void)
{
    volatile uint32_t *p = (volatile uint32_t *)(REGION + NPAGES * PAGE_SIZE + 8);
    *p = 0x7777;
    df_val = *p;
}

static void double_fault(void)
{
    paging_enable(paging_identity());
    paging_map(REGION, (uint32_t)frames[0], PTE_P | PTE_W | PTE_U); /* demand_faults' own, kept */
    trap_set_handler(T_PF, on_pf);
    trap_set_handler(T_DF, on_df);
    trap_set_handler(T_NP, on_np);
    uint32_t before = pf_count;
    idt[T_PF].hi &= ~(1u << 15);
    user_run(user_double_fault, FL_RSVD1 | FL_IF);
    idt[T_PF].hi |= 1u << 15;
    trap_set_handler(T_NP, 0);
    trap_set_handler(T_DF, 0);
    trap_set_handler(T_PF, 0);
    paging_disable();
    check_eq("pf-gate-absent-double-fault", df_count, 1);
    check_eq("pf-gate-absent-no-np", np_count, 0);
    check_eq("double-fault-err", df_err, 0);
    check_eq("double-fault-from-user", df_cs, SEL_UCODE | 3);
    check_eq("double-fault-then-pf", pf_count - before, 1);
    check_eq("double-fault-value", df_val, 0x7777);
}

/* ------------------------------------------------------------------ returns from int 0x80 */
static volatile uint32_t db_count, db_eip, db_cs;

static void on_db(struct trapframe *tf)
{
    db_count++;
    db_eip = tf->eip;
    db_cs = tf->cs;
    tf->eflags &= ~FL_TF;
}

static void on_syscall(struct trapframe *tf)
{
    switch (tf->eax) {
    case SYS_FLAGS: /* the arithmetic flags and DF come from the popped image */
        tf->eflags = (tf->eflags & ~FL_CF) | FL_ZF;
        tf->eax = 0xA0A0A0A0;
        tf->ebx = 0xB1B1B1B1;
        tf->ecx = 0xC2C2C2C2;
        tf->edx = 0xD3D3D3D3;
        break;
    case SYS_STEP:
        tf->eflags |= FL_TF;
        break;
    case SYS_GDT:
        gdt[SEL_SPARE >> 3] = seg_make(0, SPARE_NEW, DA_P | DA_S | DA_W | DA_A | DA_DPL(3), DF_DB);
        break;
    case SYS_IOPL:
        tf->eflags |= FL_IOPL3;
        break;
    case SYS_IOPL0:
        tf->eflags &= ~FL_IOPL;
        break;
    default:
        check("unexpected-syscall", false, "eax 0x%x", tf->eax);
    }
}

static volatile uint32_t f_eflags, f_eax, f_ebx, f_ecx, f_edx, f_esi, f_edi, f_esp_in, f_esp_out;
static volatile uint32_t st_after, lsl_old, lsl_new, lsl_ok, iopl_seen, iopl_after;

/* Flags: STD, STC and ZF clear before the call; the handler clears CF,
 * sets ZF and replaces EAX..EDX; ESI, EDI and ESP come back as they were. */
static void user_flags(void)
{
    uint32_t fl, a, b, c, d, si, di, e0, e1;
    asm volatile("movl %%esp, %7\n\t"
                 "movl $0x51515151, %%esi\n\tmovl $0xD1D1D1D1, %%edi\n\t"
                 "movl $1, %%eax\n\t" /* SYS_FLAGS; OR clears ZF, STC sets CF after it */
                 "orl %%eax, %%eax\n\tstc\n\tstd\n\t"
                 "int $0x80\n\t"
                 "pushfl\n\tpopl %0\n\tcld\n\t"
                 "movl %%esp, %8"
                 : "=m"(fl), "=a"(a), "=b"(b), "=c"(c), "=d"(d), "=S"(si), "=D"(di), "=m"(e0), "=m"(e1)
                 : : "memory", "cc");
    f_eflags = fl, f_eax = a, f_ebx = b, f_ecx = c, f_edx = d, f_esi = si, f_edi = di;
    f_esp_in = e0, f_esp_out = e1;
}

/* TF in the returned EFLAGS: the instruction after INT runs, then #DB with
 * the EIP after it (SDM Vol. 3B §17.3.1.4). */
static void user_step(void)
{
    uint32_t after;
    asm volatile("movl $2, %%eax\n\t"
                 "int $0x80\n\t"
                 "nop\n"
                 "1:\tmovl $1b, %0"
                 : "=r"(after) : : "eax", "memory");
    st_after = after;
}

static void user_gdt(void)
{
    bool ok;
    lsl_old = lsl(SEL_SPARE | 3, &ok);
    asm volatile("movl $3, %%eax\n\tint $0x80" : : : "eax", "memory");
    lsl_new = lsl(SEL_SPARE | 3, &ok);
    lsl_ok = ok;
}

static void user_iopl(void)
{
    asm volatile("movl $4, %%eax\n\tint $0x80" : : : "eax", "memory");
    iopl_seen = (read_eflags() & FL_IOPL) >> FL_IOPL_SHIFT;
    asm volatile("movl $5, %%eax\n\tint $0x80" : : : "eax", "memory");
    iopl_after = (read_eflags() & FL_IOPL) >> FL_IOPL_SHIFT;
}

static volatile uint32_t strad_eax;
static void user_straddle(void)
{
    uint32_t a;
    asm volatile("movl $1, %%eax\n\tint $0x80" : "=a"(a) : : "ebx", "ecx", "edx", "memory", "cc");
    strad_eax = a;
}

static void syscall_returns(void)
{
    user_set_syscall(on_syscall);
    trap_set_handler(T_DB, on_db);
    for (int round = 0; round < 3; round++) { /* the later rounds run translated handlers */
        user_run(user_flags, FL_RSVD1 | FL_IF);
        db_count = 0;
        user_run(user_step, FL_RSVD1 | FL_IF);
        if (round)
            continue;
        check_eq("flags-cf-cleared", f_eflags & FL_CF, 0);
        check_eq("flags-zf-set", f_eflags & FL_ZF, FL_ZF);
        check_eq("flags-df-kept", f_eflags & FL_DF, FL_DF);
        check_eq("flags-if-set", f_eflags & FL_IF, FL_IF);
        check_eq("flags-eax", f_eax, 0xA0A0A0A0);
        check_eq("flags-ebx", f_ebx, 0xB1B1B1B1);
        check_eq("flags-ecx", f_ecx, 0xC2C2C2C2);
        check_eq("flags-edx", f_edx, 0xD3D3D3D3);
        check_eq("flags-esi", f_esi, 0x51515151);
        check_eq("flags-edi", f_edi, 0xD1D1D1D1);
        check_eq("flags-esp", f_esp_out, f_esp_in);
        check_eq("step-traps", db_count, 1);
        check_eq("step-eip", db_eip, st_after);
        check_eq("step-cs", db_cs, SEL_UCODE | 3);
    }
    gdt[SEL_SPARE >> 3] = seg_make(0, SPARE_OLD, DA_P | DA_S | DA_W | DA_A | DA_DPL(3), DF_DB);
    user_run(user_gdt, FL_RSVD1 | FL_IF);
    check_eq("gdt-before", lsl_old, SPARE_OLD);
    check_eq("gdt-after-return", lsl_new, SPARE_NEW);
    check_eq("gdt-lsl-valid", lsl_ok, 1);
    gdt[SEL_SPARE >> 3] = (struct seg_desc){ 0, 0 };
    user_run(user_iopl, FL_RSVD1 | FL_IF);
    check_eq("iopl-returned", iopl_seen, 3);
    check_eq("iopl-back", iopl_after, 0);
    /* The return frame's 20 bytes across a page boundary. */
    uint32_t esp0 = tss.esp0;
    tss.esp0 = (uint32_t)entry_stack + PAGE_SIZE + 8;
    user_run(user_straddle, FL_RSVD1 | FL_IF);
    tss.esp0 = esp0;
    check_eq("straddle-eax", strad_eax, 0xA0A0A0A0);
    trap_set_handler(T_DB, 0);
    user_set_syscall(0);
}

void guest_main(void)
{
    /* As Linux sets them: user CS and SS are SYSENTER_CS + 16 and + 24. */
    wrmsr(MSR_SYSENTER_CS, SEL_KCODE);
    wrmsr(MSR_SYSENTER_ESP, (uint32_t)&sysenter_stack[64]);
    wrmsr(MSR_SYSENTER_EIP, 0);
    demand_faults();
    double_fault();
    syscall_returns();
    cli();
}
