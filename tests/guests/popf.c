/*
 * popf — PUSHF/POPF and the flags a deprivileged kernel must not see change.
 *
 * Hazard: hv86 runs guest CPL 0 at ring 1 with the real IF and IOPL its own.
 * A guest popf at CPL 0 must change the guest's IF and IOPL (the translator
 * emulates it); pushf must show the guest's values. At real CPL 3, popf
 * silently keeps IF (unless CPL <= IOPL) and always keeps IOPL (SDM 2B POPF).
 */
#include "guest.h"

#define FIXED_ZERO (FL_RSVD3 | FL_RSVD5 | FL_RSVD15 | FL_RF | FL_VM)

/* Results of the ring-3 stubs, read back at CPL 0 (ring 3 cannot print). */
static volatile uint32_t u_before, u_after_if, u_after_iopl, u_after_cli;

static uint32_t popf_readback(uint32_t v)
{
    write_eflags(v);
    return read_eflags();
}

/* At CPL 3: try to clear IF, then to change IOPL, with popf. */
static void user_popf(void)
{
    u_before = read_eflags();
    u_after_if = popf_readback(u_before & ~FL_IF);
    u_after_iopl = popf_readback((u_before & ~FL_IOPL) | ((~u_before) & FL_IOPL));
    write_eflags(u_before);
}

/* At CPL 3 with IOPL 3: cli and popf may change IF there. */
static void user_cli(void)
{
    user_popf();
    cli();
    u_after_cli = read_eflags();
    sti();
}

/* The operand-size prefixed forms touch FLAGS[15:0] only. */
static void size16_checks(uint32_t fl)
{
    uint16_t w;
    write_eflags(fl | FL_AC);
    asm volatile("pushfw; popw %0" : "=r"(w));
    check_eq("pushfw-low-half", w, (fl | FL_AC) & 0xFFFF);
    uint16_t nw = (uint16_t)((fl & 0xFFFF) | FL_IF | FL_IOPL3);
    asm volatile("pushw %0; popfw" : : "r"(nw) : "memory", "cc");
    uint32_t after = read_eflags();
    check_eq("popfw-sets-if-iopl", after & (FL_IF | FL_IOPL), FL_IF | FL_IOPL3);
    check_eq("popfw-keeps-ac", after & FL_AC, FL_AC);
    write_eflags(fl);
}

/* IRET to the same privilege level restores IF and IOPL too (SDM 2A IRET). */
static void iret_checks(uint32_t fl)
{
    uint32_t after;
    asm volatile("pushl %1\n\tpushl %%cs\n\tpushl $1f\n\tiret\n1:\tpushfl\n\tpopl %0"
                 : "=r"(after) : "r"(fl | FL_IF | FL_IOPL3) : "memory", "cc");
    check_eq("iret-cpl0-sets-if-iopl", after & (FL_IF | FL_IOPL), FL_IF | FL_IOPL3);
    asm volatile("pushl %1\n\tpushl %%cs\n\tpushl $1f\n\tiret\n1:\tpushfl\n\tpopl %0"
                 : "=r"(after) : "r"(fl & ~(FL_IF | FL_IOPL)) : "memory", "cc");
    check_eq("iret-cpl0-clears-if-iopl", after & (FL_IF | FL_IOPL), 0);
    write_eflags(fl);
}

static void kernel_checks(void)
{
    uint32_t fl = read_eflags();
    check("pushf-image", (fl & FL_RSVD1) && !(fl & FIXED_ZERO), "eflags 0x%x", fl);
    check_eq("pushf-cpl0-if-clear", fl & FL_IF, 0);

    check_eq("popf-cpl0-sets-if", popf_readback(fl | FL_IF) & FL_IF, FL_IF);
    check_eq("popf-cpl0-clears-if", popf_readback(fl & ~FL_IF) & FL_IF, 0);
    check_eq("popf-cpl0-iopl3", popf_readback(fl | FL_IOPL3) & FL_IOPL, FL_IOPL3);
    check_eq("popf-cpl0-iopl1", popf_readback((fl & ~FL_IOPL) | (1u << FL_IOPL_SHIFT)) & FL_IOPL,
             1u << FL_IOPL_SHIFT);
    check_eq("popf-cpl0-iopl0", popf_readback(fl & ~FL_IOPL) & FL_IOPL, 0);
    check_eq("popf-reserved-fixed", popf_readback(fl | FIXED_ZERO) & (FIXED_ZERO | FL_RSVD1),
             FL_RSVD1);
    check_eq("popf-rsvd1-stays", popf_readback(fl & ~FL_RSVD1) & FL_RSVD1, FL_RSVD1);
    check_eq("popf-ac-set", popf_readback(fl | FL_AC) & FL_AC, FL_AC);
    check_eq("popf-ac-clear", popf_readback(fl & ~FL_AC) & FL_AC, 0);
    check_eq("popf-id-toggles", popf_readback(fl ^ FL_ID) & FL_ID, (fl ^ FL_ID) & FL_ID);
    check_eq("popf-nt-set", popf_readback(fl | FL_NT) & FL_NT, FL_NT);
    check_eq("popf-df-tf-off", popf_readback(fl) & (FL_DF | FL_TF), 0);
    write_eflags(fl);
    size16_checks(fl);
    iret_checks(fl);
}

static void user_checks(void)
{
    trap_expect();                  /* popf at CPL 3 must not fault */
    user_run(user_popf, FL_RSVD1 | FL_IF);
    trap_disarm();
    check_eq("user-no-trap", (uint32_t)last_trap.vector, (uint32_t)-1);
    check_eq("user-pushf-if", u_before & FL_IF, FL_IF);
    check_eq("user-pushf-iopl", u_before & FL_IOPL, 0);
    check_eq("user-popf-if-ignored", u_after_if & FL_IF, FL_IF);
    check_eq("user-popf-iopl-ignored", u_after_iopl & FL_IOPL, 0);

    trap_expect();
    user_run(user_cli, FL_RSVD1 | FL_IF | FL_IOPL3);
    trap_disarm();
    check_eq("iopl3-no-trap", (uint32_t)last_trap.vector, (uint32_t)-1);
    check_eq("iopl3-pushf-iopl", u_before & FL_IOPL, FL_IOPL3);
    check_eq("iopl3-popf-clears-if", u_after_if & FL_IF, 0);
    check_eq("iopl3-popf-iopl-kept", u_after_iopl & FL_IOPL, FL_IOPL3);
    check_eq("iopl3-cli", u_after_cli & FL_IF, 0);
}

void guest_main(void)
{
    kernel_checks();
    user_checks();
    check_eq("cpl0-if-after-user", read_eflags() & FL_IF, 0);
}
