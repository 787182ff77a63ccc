/*
 * Hardware interrupt dispatch. IRQ 0-15 from the 8259A pair are remapped to
 * vectors 0x20-0x2F (see kernel/traps.h). Handlers run with interrupts
 * disabled, on the interrupted thread's stack, and must not sleep.
 */
#ifndef HV86_KERNEL_IRQ_H
#define HV86_KERNEL_IRQ_H
#include <stdint.h>

#define IRQ_TIMER   0
#define IRQ_KBD     1
#define IRQ_CASCADE 2
#define IRQ_COM2    3
#define IRQ_COM1    4
#define IRQ_RTC     8
#define IRQ_ATA0    14
#define IRQ_ATA1    15
#define NR_IRQS     16

typedef void (*irq_handler_t)(int irq, void *ctx);

/* Install handler for irq (0..15) and unmask it at the PIC. Returns 0,
 * E_INVAL for a bad number, E_BUSY if a handler is already installed. */
int irq_register(int irq, irq_handler_t handler, void *ctx);
/* Per-IRQ counters for statistics. */
uint64_t irq_count(int irq);

#endif
