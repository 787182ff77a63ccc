/*
 * Emulated I/O APIC (contract and sources in vmm/dev/vioapic.h).
 *
 * Trust: IOREGSEL, the entries and every access come from the guest. The
 * register index is checked against the table before any use; an entry's
 * vector and destination only choose which interrupt the guest gets. A
 * level entry that is asserted sends at most one message per EOI, so a
 * guest cannot make it flood the monitor.
 */
#include "vmm/dev/vioapic.h"

/* Bits of an entry the guest may write (delivery status and Remote IRR
 * are the chip's, bits 55:17 reserved). */
#define RTE_WRITABLE (0xFF00000000000000ull | IOAPIC_RTE_VECTOR | IOAPIC_RTE_DM | IOAPIC_RTE_LOGICAL | \
                      IOAPIC_RTE_LOW | IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED)

void vioapic_reset(struct vioapic *io)
{
    io->regsel = io->id = 0;
    for (unsigned i = 0; i < VIOAPIC_PINS; i++)
        io->rte[i] = IOAPIC_RTE_MASKED;
}

void vioapic_init(struct vioapic *io, vioapic_deliver_fn deliver, void *opaque)
{
    io->deliver = deliver;
    io->opaque = opaque;
    io->lines = 0;
    io->messages = io->bad_accesses = 0;
    vioapic_reset(io);
}

static bool asserted(const struct vioapic *io, int pin)
{
    bool line = io->lines >> pin & 1;
    return line != !!(io->rte[pin] & IOAPIC_RTE_LOW);
}

/* Send pin's message if its entry allows it now. */
static void send(struct vioapic *io, int pin)
{
    uint64_t e = io->rte[pin];
    uint32_t dm = (uint32_t)(e & IOAPIC_RTE_DM) >> 8;
    if (e & IOAPIC_RTE_MASKED)
        return;
    if (e & IOAPIC_RTE_LEVEL) {
        if (e & IOAPIC_RTE_RIRR)
            return;
        io->rte[pin] |= IOAPIC_RTE_RIRR;
    }
    if (dm > 1)
        return; /* SMI, NMI, INIT, ExtINT: nothing to send in a one-CPU VM with the 8259A on LINT0 */
    io->messages++;
    if (io->deliver)
        io->deliver(io->opaque, (uint8_t)(e & IOAPIC_RTE_VECTOR), e & IOAPIC_RTE_LEVEL, (uint8_t)(e >> 56),
                    e & IOAPIC_RTE_LOGICAL);
}

void vioapic_set_irq(struct vioapic *io, int pin, int level)
{
    if (pin < 0 || pin >= VIOAPIC_PINS)
        return;
    bool before = asserted(io, pin);
    io->lines = level ? io->lines | 1u << pin : io->lines & ~(1u << pin);
    bool now = asserted(io, pin);
    if (now && (!before || (io->rte[pin] & IOAPIC_RTE_LEVEL)))
        send(io, pin);
}

void vioapic_eoi(struct vioapic *io, uint8_t vector)
{
    for (int pin = 0; pin < VIOAPIC_PINS; pin++) {
        uint64_t e = io->rte[pin];
        if (!(e & IOAPIC_RTE_LEVEL) || (e & IOAPIC_RTE_VECTOR) != vector || !(e & IOAPIC_RTE_RIRR))
            continue;
        io->rte[pin] &= ~(uint64_t)IOAPIC_RTE_RIRR;
        if (asserted(io, pin))
            send(io, pin);
    }
}

static uint32_t reg_read(const struct vioapic *io)
{
    uint32_t r = io->regsel;
    if (r == IOAPIC_REG_ID || r == IOAPIC_REG_ARB)
        return io->id;
    if (r == IOAPIC_REG_VER)
        return VIOAPIC_VERSION | (VIOAPIC_PINS - 1u) << 16;
    if (r >= IOAPIC_REG_RTE && r < IOAPIC_REG_RTE + 2 * VIOAPIC_PINS) {
        uint64_t e = io->rte[(r - IOAPIC_REG_RTE) / 2];
        return (r & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
    }
    return 0;
}

static void reg_write(struct vioapic *io, uint32_t v)
{
    uint32_t r = io->regsel;
    if (r == IOAPIC_REG_ID) {
        io->id = v & 0x0F000000u;
        return;
    }
    if (r < IOAPIC_REG_RTE || r >= IOAPIC_REG_RTE + 2 * VIOAPIC_PINS)
        return; /* version, arbitration: read-only; others unimplemented */
    int pin = (int)(r - IOAPIC_REG_RTE) / 2;
    uint64_t e = io->rte[pin];
    uint64_t w = (r & 1) ? ((uint64_t)v << 32) | (uint32_t)e : (e & 0xFFFFFFFF00000000ull) | v;
    e = (e & ~RTE_WRITABLE) | (w & RTE_WRITABLE);
    if (!(e & IOAPIC_RTE_LEVEL))
        e &= ~(uint64_t)IOAPIC_RTE_RIRR;
    io->rte[pin] = e;
    if (asserted(io, pin) && (e & IOAPIC_RTE_LEVEL))
        send(io, pin); /* unmasked while the line is up: a level input is seen at once */
}

uint32_t vioapic_read(struct vioapic *io, uint32_t off, unsigned size)
{
    uint32_t word = off & ~3u, v = 0;
    if (word == IOAPIC_REGSEL)
        v = io->regsel;
    else if (word == IOAPIC_WIN)
        v = reg_read(io);
    if (size != 4 || (off & 3))
        io->bad_accesses++;
    v >>= 8 * (off & 3);
    return size >= 4 ? v : v & ((1u << (8 * size)) - 1);
}

void vioapic_write(struct vioapic *io, uint32_t off, unsigned size, uint32_t val)
{
    if (off == IOAPIC_REGSEL) {
        io->regsel = val & 0xFF;
        return;
    }
    if (off == IOAPIC_WIN && size == 4) {
        reg_write(io, val);
        return;
    }
    io->bad_accesses++;
}

bool vioapic_pin_routed(const struct vioapic *io, int pin, uint8_t *vector)
{
    if (pin < 0 || pin >= VIOAPIC_PINS)
        return false;
    uint64_t e = io->rte[pin];
    *vector = (uint8_t)(e & IOAPIC_RTE_VECTOR);
    return !(e & IOAPIC_RTE_MASKED) && ((e & IOAPIC_RTE_DM) >> 8) <= 1;
}
