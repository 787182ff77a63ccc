/* irq.c — a one-shot IRQ 0 the interrupt guests can make pending at will. */
#include "guest.h"

#define IRR_SPINS 50000000u         /* bounded wait; far longer than one period */

volatile uint32_t irq0_count;
volatile uint32_t irq0_eip;         /* saved EIP of the last IRQ 0 */
volatile uint32_t irq0_isr;         /* master ISR seen inside the handler */
volatile struct trapframe irq0_frame;

/* Masks IRQ 0 again before the EOI, so exactly one interrupt is taken per
 * irq0_make_pending(), whatever the emulator's timer does meanwhile. */
static void irq0_once(struct trapframe *tf)
{
    irq0_count++;
    irq0_eip = tf->eip;
    irq0_frame = *tf;
    irq0_isr = pic_isr();
    pic_mask(IRQ_TIMER);
    pic_eoi(IRQ_TIMER);
}

/* Contract: with IF=0, leaves IRQ 0 requested at the CPU (unmasked, IRR set),
 * so the next instruction boundary with IF=1 takes it. Returns false if the
 * PIT never raised it. */
bool irq0_make_pending(void)
{
    cli();
    trap_set_handler(T_IRQ0, irq0_once);
    pit_periodic(PIT_DIV_1KHZ);
    pic_unmask(IRQ_TIMER);
    return wait_irr(IRQ_TIMER, IRR_SPINS);
}

void irq0_quiet(void)
{
    cli();
    pic_mask(IRQ_TIMER);
    pit_stop();
}
