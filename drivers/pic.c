/* 8259A driver. Source: Intel 8259A datasheet; PC/AT wiring (slave on IRQ 2). */
#include "drivers/pic.h"
#include "kernel/x86.h"

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xA0
#define PIC2_DATA 0xA1
#define ICW1_INIT 0x10
#define ICW1_ICW4 0x01
#define ICW4_8086 0x01
#define OCW2_EOI  0x20
#define OCW3_READ_ISR 0x0B
#define CASCADE_IRQ 2

static uint16_t mask = 0xFFFF & ~(1u << CASCADE_IRQ);

static void write_mask(void)
{
    outb(PIC1_DATA, mask & 0xFF);
    outb(PIC2_DATA, mask >> 8);
}

void pic_init(uint8_t base)
{
    outb(PIC1_CMD, ICW1_INIT | ICW1_ICW4); io_delay();
    outb(PIC2_CMD, ICW1_INIT | ICW1_ICW4); io_delay();
    outb(PIC1_DATA, base); io_delay();           /* ICW2: vector base */
    outb(PIC2_DATA, base + 8); io_delay();
    outb(PIC1_DATA, 1u << CASCADE_IRQ); io_delay(); /* ICW3: slave on IRQ 2 */
    outb(PIC2_DATA, CASCADE_IRQ); io_delay();    /* ICW3: slave identity */
    outb(PIC1_DATA, ICW4_8086); io_delay();
    outb(PIC2_DATA, ICW4_8086); io_delay();
    write_mask();
}

void pic_mask(int irq)
{
    mask |= (uint16_t)(1u << irq);
    write_mask();
}

void pic_unmask(int irq)
{
    mask &= (uint16_t)~(1u << irq);
    write_mask();
}

void pic_eoi(int irq)
{
    if (irq >= 8)
        outb(PIC2_CMD, OCW2_EOI);
    outb(PIC1_CMD, OCW2_EOI);
}

bool pic_is_spurious(int irq)
{
    uint16_t cmd = irq >= 8 ? PIC2_CMD : PIC1_CMD;
    outb(cmd, OCW3_READ_ISR);
    if (inb(cmd) & (1u << (irq & 7)))
        return false;
    if (irq >= 8)
        outb(PIC1_CMD, OCW2_EOI); /* the master did see the cascade line */
    return true;
}
