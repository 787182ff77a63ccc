/*
 * MP spec 1.4 tables (contract in vmm/mptable.h). Entry layouts: MP spec
 * 1.4 §4.1 (floating pointer), §4.2 (header), §4.3.1-4.3.5 (processor,
 * bus, I/O APIC, I/O and local interrupt assignment entries).
 */
#include "vmm/mptable.h"
#include "kernel/kernel.h"

#define MP_SPEC_REV     4  /* version 1.4 */
#define MP_ENTRY_CPU    0
#define MP_ENTRY_BUS    1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_IOINT  3
#define MP_ENTRY_LINT   4
#define MP_INT          0  /* vectored interrupt, vector from the I/O APIC */
#define MP_NMI          1
#define MP_EXTINT       3
#define MP_FLAGS_CONFORM 0x0   /* polarity and trigger as the bus defines them */
#define MP_FLAGS_LEVEL_HIGH 0xD /* polarity 01 active high, trigger 11 level */
#define MP_CPU_EN_BP    0x3    /* enabled, bootstrap processor */
#define MP_ALL_LAPICS   0xFF
#define HEADER_BYTES    44

struct w { uint8_t *buf; size_t at, cap; bool overflow; };

static void put(struct w *w, const void *p, size_t n)
{
    if (w->at + n > w->cap) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->at, p, n);
    w->at += n;
}
static void put8(struct w *w, uint8_t v) { put(w, &v, 1); }
static void put16(struct w *w, uint16_t v) { put(w, &v, 2); }
static void put32(struct w *w, uint32_t v) { put(w, &v, 4); }

static uint8_t checksum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s += *p++;
    return (uint8_t)-s;
}

static void intsrc(struct w *w, uint8_t type, uint8_t flags, uint8_t bus, uint8_t irq, uint8_t dst, uint8_t pin, bool lint)
{
    put8(w, lint ? MP_ENTRY_LINT : MP_ENTRY_IOINT);
    put8(w, type);
    put16(w, flags);
    put8(w, bus);
    put8(w, irq);
    put8(w, dst);
    put8(w, pin);
}

/* The entries; returns how many. */
static uint16_t entries(const struct mp_config *cfg, struct w *w)
{
    uint16_t n = 0;
    put8(w, MP_ENTRY_CPU); put8(w, cfg->apic_id); put8(w, cfg->apic_version); put8(w, MP_CPU_EN_BP);
    put32(w, cfg->cpu_signature); put32(w, cfg->cpu_features); put32(w, 0); put32(w, 0);
    n++;
    put8(w, MP_ENTRY_BUS); put8(w, MP_BUS_PCI); put(w, "PCI   ", 6);
    put8(w, MP_ENTRY_BUS); put8(w, MP_BUS_ISA); put(w, "ISA   ", 6);
    n += 2;
    put8(w, MP_ENTRY_IOAPIC); put8(w, cfg->ioapic_id); put8(w, cfg->ioapic_version); put8(w, 1 /* EN */);
    put32(w, cfg->ioapic_addr);
    n++;
    for (unsigned irq = 0; irq < 16; irq++) {
        if (!(cfg->isa_irqs >> irq & 1))
            continue;
        intsrc(w, MP_INT, MP_FLAGS_CONFORM, MP_BUS_ISA, (uint8_t)irq, cfg->ioapic_id, cfg->isa_pin[irq], false);
        n++;
    }
    for (unsigned i = 0; i < cfg->npci && i < MP_MAX_PCI_IRQS; i++, n++)
        intsrc(w, MP_INT, MP_FLAGS_LEVEL_HIGH, MP_BUS_PCI, (uint8_t)(cfg->pci[i].slot << 2), cfg->ioapic_id,
               cfg->pci[i].pin, false);
    intsrc(w, MP_EXTINT, MP_FLAGS_CONFORM, MP_BUS_ISA, 0, MP_ALL_LAPICS, 0, true); /* the 8259A on LINT0 */
    intsrc(w, MP_NMI, MP_FLAGS_CONFORM, MP_BUS_ISA, 0, MP_ALL_LAPICS, 1, true);
    return n + 2;
}

size_t mptable_build(const struct mp_config *cfg, uint32_t gpa, uint8_t *buf, size_t cap)
{
    struct w w = { buf, 0, cap, false };
    /* Floating pointer: 16 bytes, the configuration table right after. */
    put(&w, "_MP_", 4);
    put32(&w, gpa + 16);
    put8(&w, 1); /* length in 16-byte units */
    put8(&w, MP_SPEC_REV);
    put8(&w, 0); /* checksum */
    put8(&w, 0); /* feature 1: a configuration table is present */
    put8(&w, 0); /* feature 2: bit 7 clear, virtual wire mode (no IMCR) */
    put8(&w, 0); put8(&w, 0); put8(&w, 0);
    size_t hdr = w.at;
    put(&w, "PCMP", 4);
    put16(&w, 0); /* base table length */
    put8(&w, MP_SPEC_REV);
    put8(&w, 0); /* checksum */
    put(&w, "HV86    ", 8);
    put(&w, "VIRTUAL PC  ", 12);
    put32(&w, 0); put16(&w, 0); /* no OEM table */
    put16(&w, 0); /* entry count */
    put32(&w, cfg->lapic_addr);
    put16(&w, 0); put8(&w, 0); put8(&w, 0); /* no extended table */
    uint16_t count = entries(cfg, &w);
    if (w.overflow)
        return 0;
    uint16_t len = (uint16_t)(w.at - hdr);
    memcpy(buf + hdr + 4, &len, 2);
    memcpy(buf + hdr + 34, &count, 2);
    buf[hdr + 7] = checksum(buf + hdr, len);
    buf[10] = checksum(buf, 16);
    size_t total = ALIGN_UP(w.at, (size_t)16);
    if (total > cap)
        return 0;
    memset(buf + w.at, 0, total - w.at);
    return total;
}
