/*
 * 8259A programmable interrupt controller pair (master 0x20/0x21, slave 0xA0/0xA1).
 * Source: Intel 8259A datasheet (ICW1-ICW4, OCW1-OCW3).
 */
#ifndef HV86_DRIVERS_PIC_H
#define HV86_DRIVERS_PIC_H
#include <stdbool.h>
#include <stdint.h>

/* Remap IRQ 0-7 to vectors base..base+7 and IRQ 8-15 to base+8..; all masked
 * except the cascade line. */
void pic_init(uint8_t base);
void pic_mask(int irq);
void pic_unmask(int irq);
/* End of interrupt for irq (both controllers for IRQ 8-15). */
void pic_eoi(int irq);
/* True if irq (7 or 15) is spurious: not set in the in-service register. A
 * spurious IRQ 15 still needs an EOI to the master, which this does. */
bool pic_is_spurious(int irq);

#endif
