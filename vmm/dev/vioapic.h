/*
 * Emulated I/O APIC (Intel 82093AA) of a one-processor VM: 24 interrupt
 * inputs, each with a 64-bit redirection entry, reached through the
 * IOREGSEL (base + 0x00) and IOWIN (base + 0x10) registers of its MMIO page
 * at 0xFEC00000. Source: Intel 82093AA I/O Advanced Programmable Interrupt
 * Controller (IOAPIC) datasheet, §3.0 (register description: IOAPICID,
 * IOAPICVER, IOAPICARB, IOREDTBL[0:23]), §2.4 (edge and level interrupts,
 * Remote IRR, the EOI message).
 *
 * Modelled: ID (bits 27:24, read/write), version 0x11 with 24 entries,
 * arbitration ID (reads the ID), redirection entries (vector, delivery
 * mode, destination mode, polarity, trigger, mask, destination; delivery
 * status and Remote IRR read-only), edge inputs (a message per rising edge
 * of the unmasked, polarity-corrected input) and level inputs (a message
 * while asserted and Remote IRR is clear; Remote IRR set on delivery,
 * cleared by the local APIC's EOI for that vector). Fixed and lowest-
 * priority messages go to the owner's deliver function, which matches the
 * destination against the one local APIC. ExtINT, NMI, SMI and INIT
 * entries send nothing (the 8259A reaches the CPU through LINT0 instead).
 * Rewriting an entry as edge-triggered clears its Remote IRR (what Linux
 * relies on for versions without an EOI register).
 *
 * Accesses: IOREGSEL takes the low byte of any write at offset 0; IOWIN is
 * a 32-bit register at 0x10; reads elsewhere return 0, other writes are
 * dropped and counted. Unimplemented register indexes read 0.
 */
#ifndef HV86_VMM_DEV_VIOAPIC_H
#define HV86_VMM_DEV_VIOAPIC_H
#include <stdbool.h>
#include <stdint.h>

#define VIOAPIC_BASE    0xFEC00000u
#define VIOAPIC_PINS    24
#define VIOAPIC_VERSION 0x11u
#define IOAPIC_REGSEL   0x00
#define IOAPIC_WIN      0x10
#define IOAPIC_REG_ID   0x00
#define IOAPIC_REG_VER  0x01
#define IOAPIC_REG_ARB  0x02
#define IOAPIC_REG_RTE  0x10 /* entry n: 0x10 + 2n (low), 0x11 + 2n (high) */

/* Redirection entry bits (datasheet §3.2.4) */
#define IOAPIC_RTE_VECTOR   0xFFu
#define IOAPIC_RTE_DM       (7u << 8)
#define IOAPIC_RTE_LOGICAL  (1u << 11)
#define IOAPIC_RTE_PENDING  (1u << 12)
#define IOAPIC_RTE_LOW      (1u << 13)
#define IOAPIC_RTE_RIRR     (1u << 14)
#define IOAPIC_RTE_LEVEL    (1u << 15)
#define IOAPIC_RTE_MASKED   (1u << 16)

/* Send a fixed (or lowest-priority) interrupt message: vector, level
 * trigger, destination field and logical mode. */
typedef void (*vioapic_deliver_fn)(void *opaque, uint8_t vector, bool level, uint8_t dest, bool logical);

struct vioapic {
    uint32_t regsel, id;
    uint64_t rte[VIOAPIC_PINS];
    uint32_t lines;                 /* input levels as driven (bit per pin) */
    vioapic_deliver_fn deliver;
    void *opaque;
    uint64_t messages, bad_accesses; /* statistics */
};

/* Power-on state: ID 0, every entry masked. Cannot fail. */
void vioapic_init(struct vioapic *io, vioapic_deliver_fn deliver, void *opaque);
void vioapic_reset(struct vioapic *io);
/* Drive input pin (0-23; others ignored) to level (0/1), as wired. */
void vioapic_set_irq(struct vioapic *io, int pin, int level);
/* The local APIC's EOI for vector: Remote IRR of matching level entries
 * clears, and an input still asserted sends again. */
void vioapic_eoi(struct vioapic *io, uint8_t vector);
/* MMIO access at offset off (0-4095) of the page, size 1, 2 or 4. */
uint32_t vioapic_read(struct vioapic *io, uint32_t off, unsigned size);
void vioapic_write(struct vioapic *io, uint32_t off, unsigned size, uint32_t val);
/* Would an edge on pin now be sent (unmasked fixed entry)? and its vector. */
bool vioapic_pin_routed(const struct vioapic *io, int pin, uint8_t *vector);

#endif
