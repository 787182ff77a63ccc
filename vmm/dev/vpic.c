/*
 * Emulated 8259A master/slave pair. Source: Intel 8259A datasheet
 * (initialization and operation command words, priority, poll, spurious IR7).
 *
 * Map:
 *   chip_*      one 8259A: priority resolution, INTA, command words
 *   update()    re-derives the cascade (slave INT -> master IR2) and the INT
 *               output, and tells the owner when INT changes
 *   pic_in/out  the iobus handlers for 0x20/0x21, 0xA0/0xA1, 0x4D0/0x4D1
 * Invariant after every public call: master IRR bit 2 equals the slave's INT
 * output (the cascade input is level-sensitive whatever ICW1/ELCR say).
 */
#include "kernel/kernel.h"
#include "vmm/dev/vpic.h"

#define PIC_IRQS_PER_CHIP 8
#define PIC_MASTER 0
#define PIC_SLAVE  1
#define PIC_SPURIOUS_IR 7      /* IR answered when the request vanished */

#define ICW1_IC4   0x01        /* ICW4 needed */
#define ICW1_SNGL  0x02        /* single 8259A, no ICW3 */
#define ICW1_LTIM  0x08        /* level-triggered mode */
#define ICW1_INIT  0x10        /* distinguishes ICW1 from OCW2/OCW3 */
#define ICW2_VECTOR_MASK 0xF8  /* T7-T3; T2-T0 come from the IR number */
#define ICW4_AEOI  0x02        /* automatic end of interrupt */
#define OCW3_SEL   0x08        /* distinguishes OCW3 from OCW2 */
#define OCW3_RIS   0x01        /* with RR: read ISR (else IRR) */
#define OCW3_RR    0x02        /* read register command */
#define OCW3_POLL  0x04
#define OCW3_SMM   0x20        /* with ESMM: set (else reset) special mask */
#define OCW3_ESMM  0x40
#define OCW2_LEVEL_MASK 0x07
#define OCW2_CMD_SHIFT  5      /* R, SL, EOI bits */
#define POLL_INT   0x80        /* poll word: an interrupt is pending */

/* OCW2 R/SL/EOI combinations (8259A datasheet, OCW2 table). */
enum ocw2_cmd {
    OCW2_CLEAR_ROTATE_AEOI = 0, OCW2_NONSPECIFIC_EOI = 1, OCW2_NOP = 2,
    OCW2_SPECIFIC_EOI = 3, OCW2_SET_ROTATE_AEOI = 4, OCW2_ROTATE_NONSPECIFIC = 5,
    OCW2_SET_PRIORITY = 6, OCW2_ROTATE_SPECIFIC = 7,
};

/* ELCR bits that exist (PIIX3): IRQ0, 1, 2, 8 and 13 are always edge. */
#define ELCR_MASK_MASTER 0xF8
#define ELCR_MASK_SLAVE  0xDE

/* ---------------------------------------------------------------- one chip */

/* Priority of input irq: 0 is the highest, 7 the lowest. */
static unsigned prio(const struct vpic_chip *c, unsigned irq)
{
    return (irq - c->lowest - 1) & (PIC_IRQS_PER_CHIP - 1);
}

/* Input with the highest priority among bits, or -1. */
static int chip_highest(const struct vpic_chip *c, uint8_t bits)
{
    for (unsigned p = 0; p < PIC_IRQS_PER_CHIP; p++) {
        unsigned irq = (c->lowest + 1 + p) & (PIC_IRQS_PER_CHIP - 1);
        if (bits & (1u << irq))
            return (int)irq;
    }
    return -1;
}

/* ISR bits that block lower priorities: in special mask mode a masked
 * in-service level lets everything else through. */
static uint8_t chip_isr_blocking(const struct vpic_chip *c)
{
    return c->special_mask ? c->isr & ~c->imr : c->isr;
}

/* The input this chip would present at INTA now, or -1 (INT low). */
static int chip_request(const struct vpic_chip *c)
{
    int req = chip_highest(c, c->irr & ~c->imr);
    if (req < 0)
        return -1;
    int cur = chip_highest(c, chip_isr_blocking(c));
    if (cur >= 0 && prio(c, (unsigned)cur) <= prio(c, (unsigned)req))
        return -1;
    return req;
}

static uint8_t chip_level_bits(const struct vpic_chip *c)
{
    return c->ltim ? 0xFF : c->elcr;
}

/* INTA on one chip for input irq: IRR to ISR, or AEOI. */
static void chip_ack(struct vpic_chip *c, int irq)
{
    uint8_t bit = (uint8_t)(1u << irq);
    if (!(chip_level_bits(c) & bit))
        c->irr &= (uint8_t)~bit;  /* edge latch consumed; level follows the line */
    if (c->aeoi) {
        if (c->rotate_aeoi)
            c->lowest = (uint8_t)irq;
    } else {
        c->isr |= bit;
    }
}

static void chip_init(struct vpic_chip *c, uint8_t elcr_mask)
{
    memset(c, 0, sizeof(*c));
    c->elcr_mask = elcr_mask;
    c->lowest = PIC_IRQS_PER_CHIP - 1;
}

static void chip_write_icw1(struct vpic_chip *c, uint8_t val)
{
    /* ICW1 clears IMR, ISR, special mask, the edge latches; IR7 lowest. */
    c->ltim = val & ICW1_LTIM;
    c->single = val & ICW1_SNGL;
    c->need_icw4 = val & ICW1_IC4;
    c->imr = 0;
    c->isr = 0;
    c->irr = c->lines & chip_level_bits(c);
    c->lowest = PIC_IRQS_PER_CHIP - 1;
    c->aeoi = c->rotate_aeoi = false;
    c->read_isr = c->poll = c->special_mask = false;
    c->init_step = 2;
}

static void chip_write_data(struct vpic_chip *c, uint8_t val)
{
    switch (c->init_step) {
    case 2:
        c->vector_base = val & ICW2_VECTOR_MASK;
        c->init_step = !c->single ? 3 : c->need_icw4 ? 4 : 0;
        break;
    case 3:
        c->icw3 = val;
        c->init_step = c->need_icw4 ? 4 : 0;
        break;
    case 4:
        c->aeoi = val & ICW4_AEOI;
        c->init_step = 0;
        break;
    default:
        c->imr = val;  /* OCW1 */
        break;
    }
}

static void chip_eoi(struct vpic_chip *c, int irq, bool rotate)
{
    if (irq < 0)
        return;
    c->isr &= (uint8_t)~(1u << irq);
    if (rotate)
        c->lowest = (uint8_t)irq;
}

static void chip_write_ocw2(struct vpic_chip *c, uint8_t val)
{
    int level = val & OCW2_LEVEL_MASK;
    switch ((enum ocw2_cmd)(val >> OCW2_CMD_SHIFT)) {
    case OCW2_CLEAR_ROTATE_AEOI: c->rotate_aeoi = false; break;
    case OCW2_SET_ROTATE_AEOI:   c->rotate_aeoi = true; break;
    case OCW2_NONSPECIFIC_EOI:   chip_eoi(c, chip_highest(c, chip_isr_blocking(c)), false); break;
    case OCW2_ROTATE_NONSPECIFIC: chip_eoi(c, chip_highest(c, chip_isr_blocking(c)), true); break;
    case OCW2_SPECIFIC_EOI:      chip_eoi(c, level, false); break;
    case OCW2_ROTATE_SPECIFIC:   chip_eoi(c, level, true); break;
    case OCW2_SET_PRIORITY:      c->lowest = (uint8_t)level; break;
    case OCW2_NOP:               break;
    }
}

static void chip_write_ocw3(struct vpic_chip *c, uint8_t val)
{
    if (val & OCW3_ESMM)
        c->special_mask = val & OCW3_SMM;
    if (val & OCW3_POLL)
        c->poll = true;
    if (val & OCW3_RR)
        c->read_isr = val & OCW3_RIS;
}

static void chip_write_cmd(struct vpic_chip *c, uint8_t val)
{
    if (val & ICW1_INIT)
        chip_write_icw1(c, val);
    else if (val & OCW3_SEL)
        chip_write_ocw3(c, val);
    else
        chip_write_ocw2(c, val);
}

/* ---------------------------------------------------------------- the pair */

static bool cascaded(const struct vpic *pic)
{
    return !pic->chip[PIC_MASTER].single;
}

static void update(struct vpic *pic)
{
    struct vpic_chip *m = &pic->chip[PIC_MASTER];
    uint8_t cascade = 1u << VPIC_CASCADE_IRQ;

    if (cascaded(pic)) {
        if (chip_request(&pic->chip[PIC_SLAVE]) >= 0)
            m->irr |= cascade;
        else
            m->irr &= (uint8_t)~cascade;
    }
    bool out = chip_request(m) >= 0;
    if (out != pic->int_out) {
        pic->int_out = out;
        if (pic->intr)
            pic->intr(pic->opaque, out);
    }
}

void vpic_reset(struct vpic *pic)
{
    chip_init(&pic->chip[PIC_MASTER], ELCR_MASK_MASTER);
    chip_init(&pic->chip[PIC_SLAVE], ELCR_MASK_SLAVE);
    pic->int_out = false;
    pic->acks = pic->spurious = 0;
}

void vpic_init(struct vpic *pic, vpic_intr_fn intr, void *opaque)
{
    pic->intr = intr;
    pic->opaque = opaque;
    vpic_reset(pic);
}

void vpic_set_irq(struct vpic *pic, int irq, int level)
{
    if (irq < 0 || irq >= VPIC_IRQS)
        return;
    struct vpic_chip *c = &pic->chip[irq / PIC_IRQS_PER_CHIP];
    uint8_t bit = (uint8_t)(1u << (irq % PIC_IRQS_PER_CHIP));
    bool level_trig = chip_level_bits(c) & bit;

    if (level) {
        if (!(c->lines & bit) || level_trig)
            c->irr |= bit;
        c->lines |= bit;
    } else {
        c->lines &= (uint8_t)~bit;
        if (level_trig)
            c->irr &= (uint8_t)~bit;
    }
    update(pic);
}

void vpic_irq_sink(void *pic, int irq, int level)
{
    vpic_set_irq(pic, irq, level);
}

static uint8_t vector_of(const struct vpic_chip *c, int irq)
{
    return (uint8_t)(c->vector_base + irq);
}

bool vpic_irq_idle(const struct vpic *pic, int irq)
{
    const struct vpic_chip *c = &pic->chip[irq >> 3];
    uint8_t bit = (uint8_t)(1u << (irq & 7));
    return !(c->irr & bit) && !(c->isr & bit);
}

int vpic_pending(const struct vpic *pic)
{
    const struct vpic_chip *m = &pic->chip[PIC_MASTER];
    int irq = chip_request(m);
    if (irq < 0)
        return -1;
    if (irq == VPIC_CASCADE_IRQ && cascaded(pic)) {
        const struct vpic_chip *s = &pic->chip[PIC_SLAVE];
        int sirq = chip_request(s);
        return vector_of(s, sirq < 0 ? PIC_SPURIOUS_IR : sirq);
    }
    return vector_of(m, irq);
}

/* INTA on the slave after the master granted IR2. */
static int ack_slave(struct vpic *pic)
{
    struct vpic_chip *s = &pic->chip[PIC_SLAVE];
    int irq = chip_request(s);
    if (irq < 0) {
        pic->spurious++;
        return vector_of(s, PIC_SPURIOUS_IR);
    }
    chip_ack(s, irq);
    return vector_of(s, irq);
}

int vpic_ack(struct vpic *pic)
{
    struct vpic_chip *m = &pic->chip[PIC_MASTER];
    int irq = chip_request(m);
    int vector;

    pic->acks++;
    if (irq < 0) {
        pic->spurious++;
        vector = vector_of(m, PIC_SPURIOUS_IR);
    } else {
        chip_ack(m, irq);
        vector = irq == VPIC_CASCADE_IRQ && cascaded(pic) ? ack_slave(pic) : vector_of(m, irq);
    }
    update(pic);
    return vector;
}

/* ---------------------------------------------------------------- ports */

/* Poll command: the read acts as INTA on this chip alone. */
static uint8_t chip_poll(struct vpic *pic, struct vpic_chip *c)
{
    c->poll = false;
    int irq = chip_request(c);
    if (irq < 0)
        return 0;
    chip_ack(c, irq);
    update(pic);
    return (uint8_t)(POLL_INT | irq);
}

static struct vpic_chip *chip_of_port(struct vpic *pic, uint16_t port)
{
    if (port >= VPIC_ELCR_BASE)
        return &pic->chip[port - VPIC_ELCR_BASE];
    return &pic->chip[port >= VPIC_SLAVE_BASE ? PIC_SLAVE : PIC_MASTER];
}

static uint32_t pic_in(void *opaque, uint16_t port, unsigned size)
{
    struct vpic *pic = opaque;
    struct vpic_chip *c = chip_of_port(pic, port);

    if (port >= VPIC_ELCR_BASE)
        return c->elcr;
    if (port & 1)
        return c->imr;
    if (c->poll)
        return chip_poll(pic, c);
    return c->read_isr ? c->isr : c->irr;
}

static void pic_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vpic *pic = opaque;
    struct vpic_chip *c = chip_of_port(pic, port);
    uint8_t v = (uint8_t)val;

    if (port >= VPIC_ELCR_BASE) {
        c->elcr = v & c->elcr_mask;
        c->irr = (c->irr & ~chip_level_bits(c)) | (c->lines & chip_level_bits(c));
    } else if (port & 1) {
        chip_write_data(c, v);
    } else {
        chip_write_cmd(c, v);
    }
    update(pic);
}

int vpic_attach(struct vpic *pic, struct iobus *bus)
{
    int err = iobus_register(bus, VPIC_MASTER_BASE, 2, IOBUS_SZ_1, pic_in, pic_out, pic, "pic-master");
    if (!err)
        err = iobus_register(bus, VPIC_SLAVE_BASE, 2, IOBUS_SZ_1, pic_in, pic_out, pic, "pic-slave");
    if (!err)
        err = iobus_register(bus, VPIC_ELCR_BASE, 2, IOBUS_SZ_1, pic_in, pic_out, pic, "pic-elcr");
    return err;
}
