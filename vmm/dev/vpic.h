/*
 * Emulated 8259A pair of a PC/AT: master at 0x20/0x21, slave at 0xA0/0xA1
 * cascaded on master IR2, plus the PIIX edge/level control registers (ELCR)
 * at 0x4D0/0x4D1. Source: Intel 8259A datasheet; Intel 82371SB (PIIX3)
 * datasheet §4.1.10 for ELCR.
 *
 * Modelled: ICW1-ICW4 (single/cascade, LTIM, AEOI; SFNM and buffered mode
 * accepted and ignored), OCW1 mask, OCW2 non-specific/specific EOI, rotate on
 * EOI, set priority, rotate in AEOI, OCW3 read IRR/ISR, poll, special mask.
 *
 * Trigger: an edge-triggered input latches IRR on the rising edge and keeps
 * it until INTA even if the line drops (as KVM and QEMU do, so an owner may
 * pulse a line 1 then 0). A level-triggered input (ELCR or ICW1.LTIM) holds
 * IRR only while the line is high; if it drops before INTA the 8259A answers
 * with the spurious vector (IR7 of that chip) and sets no ISR bit.
 */
#ifndef HV86_VMM_DEV_VPIC_H
#define HV86_VMM_DEV_VPIC_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/dev/iobus.h"

#define VPIC_MASTER_BASE 0x20  /* master command, data = +1 */
#define VPIC_SLAVE_BASE  0xA0  /* slave command, data = +1 */
#define VPIC_ELCR_BASE   0x4D0 /* ELCR master, slave = +1 */
#define VPIC_CASCADE_IRQ 2     /* master input the slave drives */
#define VPIC_IRQS        16

struct vpic_chip {
    uint8_t irr, isr, imr;
    uint8_t lines;        /* current input levels */
    uint8_t elcr;         /* 1 = level-triggered input */
    uint8_t elcr_mask;    /* ELCR bits that can be set on this chip */
    uint8_t vector_base;  /* ICW2 & 0xF8 */
    uint8_t icw3;
    uint8_t lowest;       /* input with the lowest priority (rotation) */
    uint8_t init_step;    /* 0 = ready; 2,3,4 = expecting ICW2/3/4 */
    bool ltim;            /* ICW1 level-triggered mode (all inputs) */
    bool single;          /* ICW1.SNGL: no ICW3 */
    bool need_icw4;
    bool aeoi;            /* ICW4 auto EOI */
    bool rotate_aeoi;     /* OCW2 rotate in automatic EOI mode */
    bool read_isr;        /* OCW3 RR/RIS: command port reads ISR, not IRR */
    bool poll;            /* OCW3 P: next command-port read is a poll */
    bool special_mask;    /* OCW3 SMM */
};

/* Called when the pair's INT output to the CPU changes (true = asserted),
 * so that the owner can wake a halted vCPU. May be NULL. */
typedef void (*vpic_intr_fn)(void *opaque, bool asserted);

struct vpic {
    struct vpic_chip chip[2]; /* [0] master, [1] slave */
    vpic_intr_fn intr;
    void *opaque;
    bool int_out;             /* last level reported to intr */
    uint64_t acks, spurious;  /* statistics */
};

/* Power-on state: both chips uninitialised (vector base 0, all unmasked,
 * edge-triggered), ELCR 0. intr may be NULL. */
void vpic_init(struct vpic *pic, vpic_intr_fn intr, void *opaque);
void vpic_reset(struct vpic *pic);

/* Claim 0x20-0x21, 0xA0-0xA1 and 0x4D0-0x4D1. Returns 0 or an iobus error. */
int vpic_attach(struct vpic *pic, struct iobus *bus);

/* Drive input irq (0-15) to level (0/1). Out-of-range irq is ignored. */
void vpic_set_irq(struct vpic *pic, int irq, int level);

/* vdev_irq_fn-shaped wrapper of vpic_set_irq: pass it, with the vpic as
 * opaque, to the devices whose lines this PIC receives. */
void vpic_irq_sink(void *pic, int irq, int level);

/* Vector the CPU would get at INTA now, or -1 if INT is not asserted. */
int vpic_pending(const struct vpic *pic);
/* vpic_irq_idle - is input irq (0-15) neither requested (IRR) nor in
 * service (ISR)? Then a new edge on it is a new interrupt, not one merged
 * into the last (8259A datasheet: edge-triggered mode). Pure. */
bool vpic_irq_idle(const struct vpic *pic, int irq);

/* INTA cycle: returns the vector (0-255) and moves the request from IRR to
 * ISR (unless AEOI). If the request vanished, returns the spurious vector of
 * the chip concerned (IR7). Call it only when delivering the interrupt. */
int vpic_ack(struct vpic *pic);

#endif
