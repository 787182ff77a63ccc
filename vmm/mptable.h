/*
 * The MP configuration tables a guest finds in its BIOS area: an MP floating
 * pointer and a base MP configuration table (Intel MultiProcessor
 * Specification 1.4, ch. 4), describing one processor, its local APIC,
 * one I/O APIC, the PCI and ISA buses and how their interrupts reach the
 * I/O APIC's inputs. There is no guest BIOS: hv86 writes them itself
 * (vmdev_reset), so that Linux's direct kernel boot finds them with its
 * scan of 0xF0000-0xFFFFF (MP spec §4: "in the BIOS ROM address space").
 */
#ifndef HV86_VMM_MPTABLE_H
#define HV86_VMM_MPTABLE_H
#include <stddef.h>
#include <stdint.h>

#define MPTABLE_GPA   0x000F0000u /* floating pointer here, configuration table right after */
#define MPTABLE_MAX   512u        /* bytes the tables may take */
#define MP_BUS_PCI    0           /* bus IDs used in the table */
#define MP_BUS_ISA    1
#define MP_MAX_PCI_IRQS 16

/* What the table describes. */
struct mp_config {
    uint8_t apic_id, apic_version;   /* the processor's local APIC */
    uint32_t cpu_signature, cpu_features; /* CPUID.1 EAX and EDX */
    uint32_t lapic_addr;
    uint8_t ioapic_id, ioapic_version;
    uint32_t ioapic_addr;
    uint16_t isa_irqs;               /* bit n: ISA IRQ n is wired to the I/O APIC (edge, high) */
    uint8_t isa_pin[16];             /* its input */
    unsigned npci;
    struct { uint8_t slot, pin; } pci[MP_MAX_PCI_IRQS]; /* device slot's INTA# -> input pin (level, high) */
};

/*
 * mptable_build - the floating pointer and the configuration table for cfg,
 * as they go at guest-physical address gpa, into buf (cap bytes). Returns
 * the number of bytes (a multiple of 16), or 0 if cap is too small.
 * Checksums are filled in (MP spec §4.1, §4.2: the bytes sum to 0). Pure.
 */
size_t mptable_build(const struct mp_config *cfg, uint32_t gpa, uint8_t *buf, size_t cap);

#endif
