/*
 * clisti — CLI/STI, the IF that pushf shows, and STI's interrupt shadow.
 *
 * Hazard: a translator emulating cli/sti on a virtual IF must deliver a
 * pending virtual interrupt exactly where the CPU would: after the
 * instruction following sti (SDM 2B STI), but right after popf or iret that
 * set IF (they have no shadow), and not at all for `sti; cli`.
 */
#include "guest.h"

extern char sti_nop1[], sti_nop2[], popf_next[], after_sti_cli[], iret_target[];

static void shadow_checks(void)
{
    /* sti; nop; nop: the interrupt comes between the two nops. */
    check("pending-1", irq0_make_pending(), "IRQ 0 never requested");
    uint32_t before = irq0_count;
    asm volatile("sti\n.globl sti_nop1\nsti_nop1: nop\n.globl sti_nop2\nsti_nop2: nop\ncli" ::: "memory");
    check_eq("sti-shadow-taken-once", irq0_count - before, 1);
    check_eq("sti-shadow-eip", irq0_eip, (uint32_t)sti_nop2);

    /* sti; cli: the shadow covers cli, so nothing is taken. */
    check("pending-2", irq0_make_pending(), "IRQ 0 never requested");
    before = irq0_count;
    asm volatile("sti\ncli\n.globl after_sti_cli\nafter_sti_cli: nop" ::: "memory");
    check_eq("sti-cli-not-taken", irq0_count - before, 0);
    /* ...and it is still pending: the next window takes it. */
    asm volatile("sti\nnop\nnop\ncli" ::: "memory");
    check_eq("sti-cli-still-pending", irq0_count - before, 1);

    /* popf setting IF: no shadow, taken right after the popf. */
    check("pending-3", irq0_make_pending(), "IRQ 0 never requested");
    before = irq0_count;
    uint32_t fl = read_eflags() | FL_IF;
    asm volatile("pushl %0\npopfl\n.globl popf_next\npopf_next: nop\ncli" : : "r"(fl) : "memory", "cc");
    check_eq("popf-if-taken-once", irq0_count - before, 1);
    check_eq("popf-if-eip", irq0_eip, (uint32_t)popf_next);

    /* iret setting IF: no shadow either, taken at the iret's target. */
    check("pending-iret", irq0_make_pending(), "IRQ 0 never requested");
    before = irq0_count;
    asm volatile("pushl %0\npushl %%cs\npushl $iret_target\niret\n"
                 ".globl iret_target\niret_target: nop\ncli" : : "r"(fl) : "memory", "cc");
    check_eq("iret-if-taken-once", irq0_count - before, 1);
    check_eq("iret-if-eip", irq0_eip, (uint32_t)iret_target);

    /* With IF=0 a pending interrupt waits. */
    check("pending-4", irq0_make_pending(), "IRQ 0 never requested");
    before = irq0_count;
    for (volatile int i = 0; i < 1000; i++)
        ;
    check_eq("cli-holds-pending", irq0_count - before, 0);
    sti();
    asm volatile("nop\nnop" ::: "memory");
    cli();
    check_eq("sti-releases-pending", irq0_count - before, 1);
    irq0_quiet();
}

void guest_main(void)
{
    cli();
    check_eq("cli-pushf", read_eflags() & FL_IF, 0);
    sti();
    check_eq("sti-pushf", read_eflags() & FL_IF, FL_IF);
    cli();
    check_eq("cli-again-pushf", read_eflags() & FL_IF, 0);
    shadow_checks();
    check_eq("isr-set-in-handler", irq0_isr & 1, 1);
    check_eq("isr-clear-after-eoi", pic_isr() & 1, 0);
}
