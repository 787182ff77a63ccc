/*
 * Emulated local APIC (xAPIC mode) of a one-processor VM: the IA32_APIC_BASE
 * MSR and the 4 KiB register page it places (0xFEE00000 at reset). Source:
 * Intel SDM Vol. 3A ch. 10 (§10.4 the APIC base and register map,
 * Table 10-1; §10.5 LVT, error handling and the timer; §10.6 ICR; §10.8
 * IRR/ISR/TMR, TPR/PPR, EOI; §10.9 the spurious vector).
 *
 * Modelled: ID, version (0x14, six LVT entries: no CMCI), TPR, APR and PPR,
 * EOI (a level-triggered vector is broadcast to the I/O APIC through eoi_fn),
 * LDR, DFR, the spurious-vector register with software enable/disable,
 * ISR/TMR/IRR, ESR (send/receive illegal vector, illegal register address)
 * with the error LVT, the ICR for fixed IPIs to this processor (self, all
 * including self, or a destination that names it; INIT, SIPI, NMI and IPIs
 * to no one are accepted and dropped: there is no other processor), LVT
 * timer/thermal/performance/LINT0/LINT1/error, and the timer in one-shot,
 * periodic and TSC-deadline modes with the divide register.
 *
 * The timer counts at VLAPIC_TIMER_HZ (the "core crystal clock" hv86 reports
 * in CPUID leaf 15h) divided by the divide configuration register; it is a
 * function of the host clock (vlapic_update). A periodic timer stays on its
 * grid, and periods the guest was not run for are kept (up to one second)
 * and delivered one at a time as the guest takes the previous one (EOI),
 * but for the bulk of a gap too long to catch up, as hv86's PIT does
 * (vmm/dev/vtick.h): Linux counts jiffies from its periodic
 * tick until it switches to one-shot mode, and with ticks lost there its
 * clocksource watchdog finds the TSC "unstable". One-shot and TSC-deadline
 * expirations are never lost, only late.
 *
 * Register accesses (§10.4.1: 32-bit, 16-byte aligned) of other sizes or
 * alignments: a read returns the bytes of the aligned 32-bit word(s) it
 * covers; a write that is not an aligned 32-bit store to the start of a
 * register is dropped and counted. A write to a reserved or read-only
 * offset sets ESR "illegal register address" as Pentium 4 and later do.
 */
#ifndef HV86_VMM_DEV_VLAPIC_H
#define HV86_VMM_DEV_VLAPIC_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/dev/vdev.h"
#include "vmm/dev/vtick.h"

#define VLAPIC_DEFAULT_BASE 0xFEE00000u /* IA32_APIC_BASE at reset (§10.4.4) */
#define VLAPIC_PAGE_BYTES   4096u
#define VLAPIC_TIMER_HZ     1000000u    /* timer input before the divider: 1 MHz */

/* IA32_APIC_BASE (§10.4.4, Figure 10-5) */
#define APIC_BASE_BSP    (1u << 8)
#define APIC_BASE_ENABLE (1u << 11)
#define APIC_BASE_ADDR   0xFFFFF000u

/* Register offsets (Table 10-1) */
#define APIC_ID     0x020
#define APIC_VER    0x030
#define APIC_TPR    0x080
#define APIC_APR    0x090
#define APIC_PPR    0x0A0
#define APIC_EOI    0x0B0
#define APIC_RRD    0x0C0
#define APIC_LDR    0x0D0
#define APIC_DFR    0x0E0
#define APIC_SVR    0x0F0
#define APIC_ISR    0x100 /* 8 registers, 0x10 apart */
#define APIC_TMR    0x180
#define APIC_IRR    0x200
#define APIC_ESR    0x280
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_LVT_TIMER   0x320
#define APIC_LVT_THERMAL 0x330
#define APIC_LVT_PERF    0x340
#define APIC_LVT_LINT0   0x350
#define APIC_LVT_LINT1   0x360
#define APIC_LVT_ERROR   0x370
#define APIC_TMICT  0x380 /* initial count */
#define APIC_TMCCT  0x390 /* current count */
#define APIC_TDCR   0x3E0 /* divide configuration */

/* LVT bits (§10.5.1, Figure 10-8) */
#define APIC_LVT_VECTOR   0xFFu
#define APIC_LVT_DM_SHIFT 8
#define APIC_LVT_DM       (7u << 8)
#define APIC_DM_FIXED     0u
#define APIC_DM_NMI       4u
#define APIC_DM_INIT      5u
#define APIC_DM_SIPI      6u
#define APIC_DM_EXTINT    7u
#define APIC_LVT_PENDING  (1u << 12)
#define APIC_LVT_LEVEL    (1u << 15)
#define APIC_LVT_MASKED   (1u << 16)
#define APIC_TIMER_MODE   (3u << 17)
#define APIC_TIMER_ONESHOT  (0u << 17)
#define APIC_TIMER_PERIODIC (1u << 17)
#define APIC_TIMER_DEADLINE (2u << 17)
#define APIC_SVR_ENABLE   (1u << 8)
/* ESR (§10.5.3) */
#define APIC_ESR_SEND_ILLEGAL 0x20u
#define APIC_ESR_RECV_ILLEGAL 0x40u
#define APIC_ESR_ILLEGAL_REG  0x80u

enum { VLAPIC_LVT_TIMER, VLAPIC_LVT_THERMAL, VLAPIC_LVT_PERF, VLAPIC_LVT_LINT0, VLAPIC_LVT_LINT1,
       VLAPIC_LVT_ERROR, VLAPIC_LVTS };

/* TSC now, and TSC ticks per second (0: unknown, TSC-deadline never fires). */
typedef uint64_t (*vlapic_tsc_fn)(void *opaque);
/* A level-triggered vector was EOIed (the I/O APIC clears its remote IRR). */
typedef void (*vlapic_eoi_fn)(void *opaque, uint8_t vector);

struct vlapic {
    uint32_t base_msr;          /* IA32_APIC_BASE, low half (the high half is 0: MAXPHYADDR 32) */
    uint32_t id, tpr, ldr, dfr, svr, icr_lo, icr_hi;
    uint32_t esr, esr_pending;  /* visible ESR; errors since the last ESR write */
    uint32_t lvt[VLAPIC_LVTS];
    uint32_t irr[8], isr[8], tmr[8];
    uint32_t tmict, tdcr;
    uint64_t t_start;           /* ns: when the current count was last tmict */
    uint64_t t_next;            /* ns: next one-shot/periodic expiry, VDEV_NEVER if none */
    uint64_t tsc_deadline;      /* IA32_TSC_DEADLINE, 0 = disarmed */
    vdev_clock_fn clock;
    vlapic_tsc_fn tsc;
    uint64_t tsc_hz;
    vlapic_eoi_fn eoi;
    void *opaque;
    bool has_deadline;          /* TSC-deadline mode exists (else LVT timer bit 18 is reserved) */
    struct vtick tick;          /* periodic expirations missed: kept (vlapic_reinject) or dropped */
    uint64_t timer_fires, bad_accesses; /* statistics */
};

/* vlapic_init - has_deadline false (set it after init to offer TSC-deadline
 * mode, and CPUID.1:ECX[24] with it); power-on state (§10.4.7.1: base 0xFEE00000 enabled, BSP,
 * LVTs masked, SVR 0xFF) except LINT0, which is left in ExtINT mode as a
 * PC's BIOS leaves it (virtual-wire mode, MP spec 1.4 §3.6.2.2), so the
 * 8259A reaches the CPU; hv86 has no BIOS. tsc_hz is the TSC frequency
 * (Hz) for TSC-deadline mode. Cannot fail. */
void vlapic_init(struct vlapic *a, vdev_clock_fn clock, vlapic_tsc_fn tsc, uint64_t tsc_hz, vlapic_eoi_fn eoi,
                 void *opaque);
void vlapic_reset(struct vlapic *a);

/* vlapic_enabled - is the APIC globally enabled (IA32_APIC_BASE[11])? */
static inline bool vlapic_enabled(const struct vlapic *a) { return a->base_msr & APIC_BASE_ENABLE; }
/* vlapic_page - guest-physical address of the register page while the APIC
 * is globally enabled, else 0 (no page: the gpa is a hole again). */
static inline uint32_t vlapic_page(const struct vlapic *a)
{
    return vlapic_enabled(a) ? a->base_msr & APIC_BASE_ADDR : 0;
}

/* vlapic_set_base - WRMSR IA32_APIC_BASE (low half; high must be 0).
 * Returns 0, or -1 if the value sets reserved bits (the caller raises
 * #GP(0)). Clearing the enable bit resets the APIC to its power-on state
 * (§10.4.3); x2APIC (bit 10) is reserved here. */
int vlapic_set_base(struct vlapic *a, uint64_t v);

/* Register page access at offset off (0-4095) of size 1, 2 or 4 bytes,
 * value in the low bytes. Never fails; see the header comment for odd
 * sizes. */
uint32_t vlapic_read(struct vlapic *a, uint32_t off, unsigned size);
void vlapic_write(struct vlapic *a, uint32_t off, unsigned size, uint32_t val);

/* IA32_TSC_DEADLINE (MSR 6E0h, §10.5.4.1): reads 0 and writes are dropped
 * unless the timer LVT is in TSC-deadline mode. */
uint64_t vlapic_get_deadline(const struct vlapic *a);
void vlapic_set_deadline(struct vlapic *a, uint64_t tsc);

/* vlapic_accept - an interrupt message for vector, edge or level (TMR),
 * from the I/O APIC or a local source (§10.8.3.1, §10.8.4). Vectors 0-15
 * are refused with ESR "receive illegal vector". Ignored while the APIC is
 * globally disabled. */
void vlapic_accept(struct vlapic *a, uint8_t vector, bool level);

/* vlapic_dest_match - does destination dest (physical: an APIC ID, 0xFF
 * broadcast; logical: a mask in the flat or cluster model of DFR) name this
 * APIC (§10.6.2)? */
bool vlapic_dest_match(const struct vlapic *a, uint8_t dest, bool logical);

/* vlapic_update - run the timer up to the clock's now: fire what expired. */
void vlapic_update(struct vlapic *a);
/* vlapic_reinject - deliver one kept periodic expiration if the timer's
 * vector is neither requested nor in service. */
void vlapic_reinject(struct vlapic *a);
/* vlapic_next_event_ns - absolute ns of the next timer expiry (0 if a kept
 * expiration can be delivered now), VDEV_NEVER.
 * Lock-free read of two fields: a torn value only wakes a sleeper early. */
uint64_t vlapic_next_event_ns(const struct vlapic *a);

/* vlapic_vector_idle - is vector neither requested (IRR) nor in service? */
bool vlapic_vector_idle(const struct vlapic *a, uint8_t vector);
/* vlapic_pending - the vector the APIC would present to the CPU now (the
 * highest IRR vector above the processor priority, §10.8.3.1), or -1. */
int vlapic_pending(const struct vlapic *a);
/* vlapic_ack - the CPU takes the interrupt: vector moves IRR -> ISR; returns
 * it, or the spurious vector (SVR[7:0], no ISR bit, §10.9) if nothing is
 * deliverable any more. */
int vlapic_ack(struct vlapic *a);

/* vlapic_extint_open - does the 8259A's INTR reach the CPU? Yes while the
 * APIC is globally disabled (it is then absent, §10.4.3) and while LINT0 is
 * unmasked in ExtINT mode (virtual wire, §10.5.1). */
bool vlapic_extint_open(const struct vlapic *a);

#endif
