/*
 * Emulated local APIC (contract and sources in vmm/dev/vlapic.h).
 *
 * Trust: every value here comes from the guest (register writes, the base
 * MSR, the deadline MSR). Nothing it writes is used as an index beyond the
 * masks applied below, and the timer arithmetic is bounded (a 32-bit count
 * times a divisor of at most 128 microseconds), so a guest gains nothing by
 * lying but interrupts to itself.
 */
#include "vmm/dev/vlapic.h"

#define APIC_VERSION   0x14u                          /* integrated APIC (§10.4.8) */
#define APIC_VER_VALUE (APIC_VERSION | (VLAPIC_LVTS - 1u) << 16)
#define NS_PER_TICK1   (NS_PER_SEC / VLAPIC_TIMER_HZ)  /* ns per timer input tick, divide by 1 */
#define DEADLINE_CAP_S 3600u                           /* a deadline further away wakes us hourly */
#define BACKLOG_MAX    1000u                           /* kept periodic expirations, at most one second's */

/* Writable bits of each LVT entry (§10.5.1, Figure 10-8). */
static const uint32_t lvt_mask[VLAPIC_LVTS] = {
    [VLAPIC_LVT_TIMER] = APIC_LVT_VECTOR | APIC_LVT_MASKED | APIC_TIMER_MODE,
    [VLAPIC_LVT_THERMAL] = APIC_LVT_VECTOR | APIC_LVT_DM | APIC_LVT_MASKED,
    [VLAPIC_LVT_PERF] = APIC_LVT_VECTOR | APIC_LVT_DM | APIC_LVT_MASKED,
    [VLAPIC_LVT_LINT0] = APIC_LVT_VECTOR | APIC_LVT_DM | (1u << 13) | APIC_LVT_LEVEL | APIC_LVT_MASKED,
    [VLAPIC_LVT_LINT1] = APIC_LVT_VECTOR | APIC_LVT_DM | (1u << 13) | APIC_LVT_LEVEL | APIC_LVT_MASKED,
    [VLAPIC_LVT_ERROR] = APIC_LVT_VECTOR | APIC_LVT_MASKED,
};

static int highest(const uint32_t r[8])
{
    for (int i = 7; i >= 0; i--)
        if (r[i])
            return i * 32 + 31 - __builtin_clz(r[i]);
    return -1;
}

static bool bit_get(const uint32_t r[8], uint8_t v) { return r[v >> 5] >> (v & 31) & 1; }
static void bit_set(uint32_t r[8], uint8_t v) { r[v >> 5] |= 1u << (v & 31); }
static void bit_clear(uint32_t r[8], uint8_t v) { r[v >> 5] &= ~(1u << (v & 31)); }

/* Processor priority (§10.8.3.1). */
static uint32_t ppr(const struct vlapic *a)
{
    int isrv = highest(a->isr);
    uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xF0;
    return (a->tpr & 0xF0) >= isr_class ? a->tpr & 0xFF : isr_class;
}

/* Arbitration priority: the TPR, or the class of the highest vector in
 * service or requested if that is higher (§10.8.3.1 for P6 and later). */
static uint32_t apr(const struct vlapic *a)
{
    int v = highest(a->isr), irrv = highest(a->irr);
    uint32_t cls = (uint32_t)(irrv > v ? irrv : v < 0 ? 0 : v) & 0xF0;
    return (a->tpr & 0xF0) >= cls ? a->tpr & 0xFF : cls;
}

static void error(struct vlapic *a, uint32_t bits)
{
    if ((a->esr_pending & bits) == bits)
        return; /* already recorded: no new error interrupt (bounds the recursion below) */
    a->esr_pending |= bits;
    if (!(a->lvt[VLAPIC_LVT_ERROR] & APIC_LVT_MASKED))
        vlapic_accept(a, a->lvt[VLAPIC_LVT_ERROR] & APIC_LVT_VECTOR, false);
}

void vlapic_accept(struct vlapic *a, uint8_t vector, bool level)
{
    if (!vlapic_enabled(a))
        return;
    if (vector < 16) {
        error(a, APIC_ESR_RECV_ILLEGAL);
        return;
    }
    bit_set(a->irr, vector);
    if (level)
        bit_set(a->tmr, vector);
    else
        bit_clear(a->tmr, vector);
}

/* ---------------------------------------------------------------- timer (§10.5.4) */

static uint64_t MIN_U64(uint64_t x, uint64_t y) { return x < y ? x : y; }

static uint32_t timer_mode(const struct vlapic *a) { return a->lvt[VLAPIC_LVT_TIMER] & APIC_TIMER_MODE; }

/* ns per count at the current divide configuration (Figure 10-10). */
static uint64_t tick_ns(const struct vlapic *a)
{
    uint32_t x = ((a->tdcr & 8) >> 1) | (a->tdcr & 3);
    return NS_PER_TICK1 * (x == 7 ? 1u : 2u << x);
}

static uint32_t current_count(const struct vlapic *a, uint64_t now)
{
    if (timer_mode(a) == APIC_TIMER_DEADLINE || !a->tmict)
        return 0;
    uint64_t elapsed = (now - a->t_start) / tick_ns(a);
    if (timer_mode(a) == APIC_TIMER_PERIODIC)
        return a->tmict - (uint32_t)(elapsed % a->tmict);
    return elapsed >= a->tmict ? 0 : a->tmict - (uint32_t)elapsed;
}

/* Count down from count at now, tmict being the reload value. */
static void timer_start(struct vlapic *a, uint64_t now, uint32_t count)
{
    vtick_forget(&a->tick);
    a->t_start = now - (uint64_t)(a->tmict - count) * tick_ns(a);
    a->t_next = count ? now + (uint64_t)count * tick_ns(a) : VDEV_NEVER;
}

static void timer_fire(struct vlapic *a)
{
    a->timer_fires++;
    uint32_t lvt = a->lvt[VLAPIC_LVT_TIMER];
    if (!(lvt & APIC_LVT_MASKED))
        vlapic_accept(a, lvt & APIC_LVT_VECTOR, false);
}

static uint64_t tsc_now(const struct vlapic *a) { return a->tsc ? a->tsc(a->opaque) : 0; }

/* When (ns) TSC value tsc will be reached, from the clock's now. */
static uint64_t deadline_ns(const struct vlapic *a, uint64_t tsc, uint64_t now)
{
    uint64_t t = tsc_now(a), hz = a->tsc_hz;
    if (!hz)
        return VDEV_NEVER;
    if (tsc <= t)
        return now;
    uint64_t d = tsc - t;
    if (d / hz >= DEADLINE_CAP_S)
        return now + DEADLINE_CAP_S * NS_PER_SEC;
    return now + d / hz * NS_PER_SEC + d % hz * NS_PER_SEC / hz;
}

void vlapic_update(struct vlapic *a)
{
    uint64_t now = a->clock(a->opaque);
    if (a->t_next > now)
        return;
    if (timer_mode(a) == APIC_TIMER_DEADLINE) {
        if (!a->tsc_deadline || tsc_now(a) < a->tsc_deadline) {
            a->t_next = a->tsc_deadline ? deadline_ns(a, a->tsc_deadline, now) : VDEV_NEVER;
            if (a->t_next > now)
                return;
        }
        a->tsc_deadline = 0;
        a->t_next = VDEV_NEVER;
        timer_fire(a);
        return;
    }
    if (!a->tmict) {
        a->t_next = VDEV_NEVER;
        return;
    }
    if (timer_mode(a) == APIC_TIMER_PERIODIC) {
        uint64_t period = a->tmict * tick_ns(a), missed = (now - a->t_next) / period;
        a->t_next = a->t_start + ((now - a->t_start) / period + 1) * period;
        vtick_missed(&a->tick, missed, MIN_U64(BACKLOG_MAX, NS_PER_SEC / period), period);
    } else {
        a->t_next = VDEV_NEVER;
    }
    timer_fire(a);
}

static bool backlog_ready(const struct vlapic *a)
{
    return a->tick.backlog && vlapic_vector_idle(a, a->lvt[VLAPIC_LVT_TIMER] & APIC_LVT_VECTOR);
}

void vlapic_reinject(struct vlapic *a)
{
    if (backlog_ready(a) && vtick_take(&a->tick))
        timer_fire(a);
}

uint64_t vlapic_next_event_ns(const struct vlapic *a)
{
    if (!vlapic_enabled(a))
        return VDEV_NEVER;
    return backlog_ready(a) ? 0 : a->t_next;
}

uint64_t vlapic_get_deadline(const struct vlapic *a)
{
    return timer_mode(a) == APIC_TIMER_DEADLINE ? a->tsc_deadline : 0;
}

void vlapic_set_deadline(struct vlapic *a, uint64_t tsc)
{
    if (timer_mode(a) != APIC_TIMER_DEADLINE)
        return;
    a->tsc_deadline = tsc;
    a->t_next = tsc ? deadline_ns(a, tsc, a->clock(a->opaque)) : VDEV_NEVER;
}

static void write_lvt_timer(struct vlapic *a, uint32_t v, uint64_t now)
{
    uint32_t old = timer_mode(a);
    a->lvt[VLAPIC_LVT_TIMER] = v;
    if (timer_mode(a) == old)
        return;
    /* A mode change disarms the timer (§10.5.4.1). */
    a->tmict = 0;
    vtick_forget(&a->tick);
    a->tsc_deadline = 0;
    a->t_next = VDEV_NEVER;
    a->t_start = now;
}

/* ---------------------------------------------------------------- registers */

void vlapic_reset(struct vlapic *a)
{
    a->base_msr = VLAPIC_DEFAULT_BASE | APIC_BASE_ENABLE | APIC_BASE_BSP;
    a->id = 0;
    a->tpr = a->ldr = 0;
    a->dfr = 0xFFFFFFFFu;
    a->svr = 0xFF;
    a->icr_lo = a->icr_hi = 0;
    a->esr = a->esr_pending = 0;
    for (unsigned i = 0; i < VLAPIC_LVTS; i++)
        a->lvt[i] = APIC_LVT_MASKED;
    a->lvt[VLAPIC_LVT_LINT0] = APIC_DM_EXTINT << APIC_LVT_DM_SHIFT; /* what a PC BIOS leaves */
    for (unsigned i = 0; i < 8; i++)
        a->irr[i] = a->isr[i] = a->tmr[i] = 0;
    a->tmict = a->tdcr = 0;
    a->t_start = 0;
    a->t_next = VDEV_NEVER;
    a->tsc_deadline = 0;
    vtick_forget(&a->tick);
}

void vlapic_init(struct vlapic *a, vdev_clock_fn clock, vlapic_tsc_fn tsc, uint64_t tsc_hz, vlapic_eoi_fn eoi,
                 void *opaque)
{
    a->clock = clock;
    a->tsc = tsc;
    a->tsc_hz = tsc_hz;
    a->eoi = eoi;
    a->opaque = opaque;
    a->has_deadline = false;
    a->timer_fires = a->bad_accesses = 0;
    vtick_reset(&a->tick);
    vlapic_reset(a);
}

int vlapic_set_base(struct vlapic *a, uint64_t v)
{
    /* Writable: BSP (8), global enable (11), base (31:12). Bit 10 is x2APIC
     * enable, which this APIC does not have; 63:32 are beyond MAXPHYADDR. */
    if (v & ~(uint64_t)(APIC_BASE_ADDR | APIC_BASE_ENABLE | APIC_BASE_BSP))
        return -1;
    bool was = vlapic_enabled(a);
    if (was && !(v & APIC_BASE_ENABLE))
        vlapic_reset(a); /* disabled: back to power-on state (§10.4.3) */
    a->base_msr = (uint32_t)v;
    return 0;
}

static void eoi(struct vlapic *a)
{
    int v = highest(a->isr);
    if (v < 0)
        return;
    bit_clear(a->isr, (uint8_t)v);
    if (bit_get(a->tmr, (uint8_t)v) && a->eoi)
        a->eoi(a->opaque, (uint8_t)v); /* level-triggered: EOI message to the I/O APIC (§10.8.5) */
}

bool vlapic_dest_match(const struct vlapic *a, uint8_t dest, bool logical)
{
    if (!logical)
        return dest == 0xFF || dest == a->id >> 24;
    uint32_t ldr = a->ldr >> 24;
    if ((a->dfr >> 28) == 0xF) /* flat model */
        return (dest & ldr) != 0;
    return ((dest >> 4) == 0xF || (dest >> 4) == (ldr >> 4)) && (dest & ldr & 0xF); /* cluster */
}

/* ICR write: send the IPI (§10.6.1). Delivery is immediate: status reads 0. */
static void send_ipi(struct vlapic *a)
{
    uint32_t dm = (a->icr_lo & APIC_LVT_DM) >> APIC_LVT_DM_SHIFT, shorthand = (a->icr_lo >> 18) & 3;
    bool to_me = shorthand == 1 || shorthand == 2 ||
                 (shorthand == 0 && vlapic_dest_match(a, (uint8_t)(a->icr_hi >> 24), a->icr_lo & (1u << 11)));
    uint8_t vector = a->icr_lo & APIC_LVT_VECTOR;
    if (dm != APIC_DM_FIXED && dm != 1 /* lowest priority */)
        return; /* INIT, SIPI, NMI, SMI: no other processor to start; accepted and dropped */
    if (vector < 16) {
        error(a, APIC_ESR_SEND_ILLEGAL);
        return;
    }
    if (to_me)
        vlapic_accept(a, vector, a->icr_lo & APIC_LVT_LEVEL);
}

static int lvt_index(uint32_t reg)
{
    return reg >= APIC_LVT_TIMER && reg <= APIC_LVT_ERROR ? (int)((reg - APIC_LVT_TIMER) >> 4) : -1;
}

/* The 32-bit register at 16-byte aligned offset reg; *ok false if none. */
static uint32_t reg_read(struct vlapic *a, uint32_t reg, bool *ok)
{
    *ok = true;
    if (reg >= APIC_ISR && reg < APIC_ISR + 0x80)
        return a->isr[(reg - APIC_ISR) >> 4];
    if (reg >= APIC_TMR && reg < APIC_TMR + 0x80)
        return a->tmr[(reg - APIC_TMR) >> 4];
    if (reg >= APIC_IRR && reg < APIC_IRR + 0x80)
        return a->irr[(reg - APIC_IRR) >> 4];
    if (lvt_index(reg) >= 0)
        return a->lvt[lvt_index(reg)];
    switch (reg) {
    case APIC_ID: return a->id;
    case APIC_VER: return APIC_VER_VALUE;
    case APIC_TPR: return a->tpr;
    case APIC_APR: return apr(a);
    case APIC_PPR: return ppr(a);
    case APIC_LDR: return a->ldr;
    case APIC_DFR: return a->dfr | 0x0FFFFFFFu;
    case APIC_SVR: return a->svr;
    case APIC_ESR: return a->esr;
    case APIC_ICR_LO: return a->icr_lo;
    case APIC_ICR_HI: return a->icr_hi;
    case APIC_TMICT: return a->tmict;
    case APIC_TMCCT: return current_count(a, a->clock(a->opaque));
    case APIC_TDCR: return a->tdcr;
    case APIC_EOI: case APIC_RRD: return 0; /* write-only / remote read unsupported */
    default: *ok = false; return 0;
    }
}

uint32_t vlapic_read(struct vlapic *a, uint32_t off, unsigned size)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < size && i < 4; i++) {
        uint32_t at = (off + i) & (VLAPIC_PAGE_BYTES - 1), pos = at & 0xF;
        bool ok;
        uint32_t r = pos < 4 ? reg_read(a, at & ~0xFu, &ok) : 0;
        v |= (pos < 4 ? (r >> (8 * pos)) & 0xFF : 0) << (8 * i);
    }
    if (size != 4 || (off & 0xF))
        a->bad_accesses++;
    return v;
}

static void write_svr(struct vlapic *a, uint32_t v)
{
    a->svr = v & (0xFF | APIC_SVR_ENABLE | (1u << 9));
    if (!(a->svr & APIC_SVR_ENABLE))
        for (unsigned i = 0; i < VLAPIC_LVTS; i++)
            a->lvt[i] |= APIC_LVT_MASKED; /* software disable masks every LVT entry (§10.4.7.2) */
}

void vlapic_write(struct vlapic *a, uint32_t off, unsigned size, uint32_t v)
{
    if (size != 4 || (off & 0xF) || off >= VLAPIC_PAGE_BYTES) {
        a->bad_accesses++;
        return;
    }
    uint64_t now = a->clock(a->opaque);
    int lvt = lvt_index(off);
    if (lvt >= 0) {
        v &= lvt_mask[lvt];
        if (lvt == VLAPIC_LVT_TIMER && !a->has_deadline)
            v &= ~APIC_TIMER_DEADLINE; /* reserved without TSC-deadline support */
        if (!(a->svr & APIC_SVR_ENABLE))
            v |= APIC_LVT_MASKED; /* cannot be unmasked while software-disabled */
        if (lvt == VLAPIC_LVT_TIMER)
            write_lvt_timer(a, v, now);
        else
            a->lvt[lvt] = v;
        return;
    }
    switch (off) {
    case APIC_ID: a->id = v & 0xFF000000u; break;
    case APIC_TPR: a->tpr = v & 0xFF; break;
    case APIC_EOI: eoi(a); break;
    case APIC_LDR: a->ldr = v & 0xFF000000u; break;
    case APIC_DFR: a->dfr = v | 0x0FFFFFFFu; break;
    case APIC_SVR: write_svr(a, v); break;
    case APIC_ESR: a->esr = a->esr_pending; a->esr_pending = 0; break;
    case APIC_ICR_LO: a->icr_lo = v & 0x000CCFFFu; send_ipi(a); break;
    case APIC_ICR_HI: a->icr_hi = v & 0xFF000000u; break;
    case APIC_TMICT:
        if (timer_mode(a) == APIC_TIMER_DEADLINE)
            break; /* ignored in TSC-deadline mode */
        a->tmict = v;
        timer_start(a, now, v);
        break;
    case APIC_TDCR: {
        uint32_t cc = current_count(a, now);
        a->tdcr = v & 0xB;
        if (a->tmict && timer_mode(a) != APIC_TIMER_DEADLINE && a->t_next != VDEV_NEVER)
            timer_start(a, now, cc); /* the rest of the count at the new rate */
        break;
    }
    default:
        error(a, APIC_ESR_ILLEGAL_REG); /* read-only or reserved */
        break;
    }
}

bool vlapic_vector_idle(const struct vlapic *a, uint8_t vector)
{
    return !bit_get(a->irr, vector) && !bit_get(a->isr, vector);
}

int vlapic_pending(const struct vlapic *a)
{
    if (!vlapic_enabled(a))
        return -1;
    int v = highest(a->irr);
    if (v < 0 || ((uint32_t)v & 0xF0) <= (ppr(a) & 0xF0))
        return -1;
    return v;
}

int vlapic_ack(struct vlapic *a)
{
    int v = vlapic_pending(a);
    if (v < 0)
        return a->svr & 0xFF; /* the request went away (TPR raised): spurious (§10.9) */
    bit_clear(a->irr, (uint8_t)v);
    bit_set(a->isr, (uint8_t)v);
    return v;
}

bool vlapic_extint_open(const struct vlapic *a)
{
    if (!vlapic_enabled(a))
        return true;
    uint32_t l = a->lvt[VLAPIC_LVT_LINT0];
    return !(l & APIC_LVT_MASKED) && (l & APIC_LVT_DM) >> APIC_LVT_DM_SHIFT == APIC_DM_EXTINT;
}
