/*
 * hlt — HLT with IF=1 sleeps until an interrupt and resumes after itself.
 *
 * Hazard: a monitor that emulates hlt must park the virtual CPU until a
 * virtual interrupt is due and then deliver it with the saved EIP pointing
 * past the hlt (SDM 2A HLT); `sti; hlt` with an interrupt already pending
 * must not lose the wake-up (the shadow lets hlt start first).
 */
#include "guest.h"

#define WAKES 5

extern char hlt_next[], hlt2_next[];
static volatile uint32_t ticks, tick_eip;

static void on_tick(struct trapframe *tf)
{
    ticks++;
    tick_eip = tf->eip;
    pic_eoi(IRQ_TIMER);
}

static void periodic_checks(void)
{
    trap_set_handler(T_IRQ0, on_tick);
    pit_periodic(PIT_DIV_1KHZ);
    pic_unmask(IRQ_TIMER);
    unsigned woke_by_tick = 0, eip_ok = 0;
    for (int i = 0; i < WAKES; i++) {
        uint32_t before = ticks;
        asm volatile("sti\nhlt\n.globl hlt_next\nhlt_next: cli" ::: "memory");
        woke_by_tick += ticks != before;
        eip_ok += tick_eip == (uint32_t)hlt_next;
    }
    check_eq("hlt-wakes-on-tick", woke_by_tick, WAKES);
    check_eq("hlt-resume-eip", eip_ok, WAKES);
    irq0_quiet();
}

void guest_main(void)
{
    /* sti; hlt with IRQ 0 already pending: the interrupt arrives after hlt
     * has started, so it returns to the instruction after hlt. */
    check("pending", irq0_make_pending(), "IRQ 0 never requested");
    uint32_t before = irq0_count;
    asm volatile("sti\nhlt\n.globl hlt2_next\nhlt2_next: cli" ::: "memory");
    check_eq("sti-hlt-pending-wakes", irq0_count - before, 1);
    check_eq("sti-hlt-pending-eip", irq0_eip, (uint32_t)hlt2_next);
    irq0_quiet();

    periodic_checks();
    check_eq("if-clear-after", read_eflags() & FL_IF, 0);
}
