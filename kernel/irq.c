/*
 * IRQ dispatch: acknowledge the PIC, filter spurious IRQ 7/15, count, call the
 * registered handler. Source: Intel 8259A datasheet (EOI, spurious IRQs).
 */
#include "kernel/irq.h"
#include "drivers/pic.h"
#include "kernel/kernel.h"
#include "kernel/profile.h"
#include "kernel/traps.h"

static struct {
    irq_handler_t fn;
    void *ctx;
    uint64_t count;
} irqs[NR_IRQS];
static uint64_t spurious;

int irq_register(int irq, irq_handler_t handler, void *ctx)
{
    if (irq < 0 || irq >= NR_IRQS || irq == IRQ_CASCADE || !handler)
        return E_INVAL;
    if (irqs[irq].fn)
        return E_BUSY;
    irqs[irq].ctx = ctx;
    irqs[irq].fn = handler;
    pic_unmask(irq);
    return 0;
}

uint64_t irq_count(int irq) { return (irq >= 0 && irq < NR_IRQS) ? irqs[irq].count : spurious; }

void irq_handle(struct trap_frame *tf)
{
    int irq = (int)tf->vector - IRQ_BASE_VECTOR;
    if ((irq == 7 || irq == 15) && pic_is_spurious(irq)) {
        spurious++;
        return;
    }
    irqs[irq].count++;
    if (irq == 0)
        profile_sample(tf); /* where the timer found the CPU: `debug profile` */
    /* EOI first: the handler may switch threads (the timer does, via the
     * preemption point), and the PIC must not stay blocked meanwhile. */
    pic_eoi(irq);
    if (irqs[irq].fn)
        irqs[irq].fn(irq, irqs[irq].ctx);
}
