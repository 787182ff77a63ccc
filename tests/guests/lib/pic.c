/* pic.c — 8259A pair and 8254 PIT channel 0. Sources: Intel 8259A and 8254 data sheets. */
#include "guest.h"
#include "pic.h"

void pic_init(void)
{
    outb(PIC1_CMD, ICW1_INIT);
    outb(PIC2_CMD, ICW1_INIT);
    outb(PIC1_DATA, T_IRQ0);
    outb(PIC2_DATA, T_IRQ8);
    outb(PIC1_DATA, ICW3_MASTER);
    outb(PIC2_DATA, ICW3_SLAVE);
    outb(PIC1_DATA, ICW4_8086);
    outb(PIC2_DATA, ICW4_8086);
    outb(PIC1_DATA, 0xFF & ~(1u << IRQ_CASCADE));
    outb(PIC2_DATA, 0xFF);
    outb(PIC1_CMD, OCW3_READ_IRR);
}

/* IRQs 8-15 are the slave's; its output is the master's IRQ_CASCADE, which
 * pic_init() leaves unmasked. */
void pic_unmask(int irq)
{
    if (irq >= 8)
        outb(PIC2_DATA, inb(PIC2_DATA) & ~(1u << (irq - 8)));
    else
        outb(PIC1_DATA, inb(PIC1_DATA) & ~(1u << irq));
}

void pic_mask(int irq)
{
    if (irq >= 8)
        outb(PIC2_DATA, inb(PIC2_DATA) | (1u << (irq - 8)));
    else
        outb(PIC1_DATA, inb(PIC1_DATA) | (1u << irq));
}

/* A slave IRQ is in service on both chips (the master sees the cascade). */
void pic_eoi(int irq)
{
    if (irq >= 8)
        outb(PIC2_CMD, OCW2_EOI);
    outb(PIC1_CMD, OCW2_EOI);
}

uint8_t pic_slave_isr(void)
{
    outb(PIC2_CMD, OCW3_READ_ISR);
    uint8_t v = inb(PIC2_CMD);
    outb(PIC2_CMD, OCW3_READ_IRR);
    return v;
}

uint8_t pic_irr(void)
{
    outb(PIC1_CMD, OCW3_READ_IRR);
    return inb(PIC1_CMD);
}

uint8_t pic_isr(void)
{
    outb(PIC1_CMD, OCW3_READ_ISR);
    uint8_t v = inb(PIC1_CMD);
    outb(PIC1_CMD, OCW3_READ_IRR);
    return v;
}

void pit_periodic(uint16_t divisor)
{
    outb(PIT_CMD, PIT_CH0_LOHI_MODE2);
    outb(PIT_CH0, divisor & 0xFF);
    outb(PIT_CH0, divisor >> 8);
}

/* Mode 0 with the longest count: the output stays low for ~55 ms and then
 * rises once, so no further edge reaches the PIC after the test is done. */
void pit_stop(void)
{
    outb(PIT_CMD, PIT_CH0_LOHI_MODE0);
    outb(PIT_CH0, 0);
    outb(PIT_CH0, 0);
}

bool wait_change(volatile uint32_t *p, uint32_t old, uint32_t spins)
{
    while (spins--)
        if (*p != old)
            return true;
    return *p != old;
}

bool wait_irr(int irq, uint32_t spins)
{
    while (spins--)
        if (pic_irr() & (1u << irq))
            return true;
    return false;
}
