/*
 * The lost-tick policy of hv86's periodic timers: the 8254's counter 0 in
 * modes 2 and 3 (vmm/dev/vpit.c) and the local APIC timer in periodic mode
 * (vmm/dev/vlapic.c). It decides what becomes of the periods that passed
 * while the guest was not run (its vCPU thread waited for the host CPU, or
 * an exit took longer than a period): the timer delivers one interrupt for
 * all of them at once, and this keeps or drops the rest.
 *
 * Catch-up with a bound, then give up (Timekeeping in VMware Virtual
 * Machines, VMware white paper, "Catching up"; QEMU/KVM's
 * lost_tick_policy=reinject and =discard). A gap (the periods missed before
 * the one delivered now) is
 *   - caught up in full if it is short, under VTICK_GAP_FULL_NS: the vCPU
 *     shares the CPU with a few others or took a slow exit. The periods are
 *     kept (the backlog holds at most a cap the timer gives, one second's
 *     worth) and reinjected one at a time as the guest takes the previous
 *     interrupt, so that a guest counting ticks (Linux's jiffies before its
 *     tick goes one-shot) keeps pace with real time;
 *   - given up, but for VTICK_GAP_KEEP periods, if it is longer: the vCPU
 *     waited behind many others and gets too little CPU to pay for every
 *     tick it missed. Catching up in full would only make it spend the CPU
 *     it gets in its tick handler: twelve Linux guests booting at once
 *     under QEMU TCG, each descheduled for about 110 ms at a time, had nine
 *     ticks in ten reinjected ones and none reached its shell in ten minutes
 *     on a loaded machine (docs/vmm.md "Lost ticks"). This is KVM's "discard"
 *     for such gaps.
 * Why VTICK_GAP_KEEP and not nothing: Linux's check_timer
 * (arch/x86/kernel/apic/io_apic.c, timer_irq_works) wants more than four
 * jiffies within 40e9/HZ TSC cycles of the PIT's first ticks, and panics
 * "IO-APIC + timer doesn't work!" otherwise. A guest descheduled across
 * that window gets its ticks only when it runs again; with every period of
 * long gaps dropped, all twelve guests of the test above panicked there.
 * With four kept they arrive back to back when it resumes.
 * Dropped periods are counted, never silent (`vm info`).
 *
 * Trust: the guest chooses the period (its count) and the timing of its
 * EOIs, nothing else. missed x period never exceeds the host time since the
 * timer's last update (both timers compute missed from it), so the product
 * cannot overflow; a guest that never EOIs only keeps its own backlog from
 * draining, and whatever it programs, it only loses its own ticks.
 */
#ifndef HV86_VMM_DEV_VTICK_H
#define HV86_VMM_DEV_VTICK_H
#include <stdbool.h>
#include <stdint.h>

#define VTICK_GAP_FULL_NS 50000000ull /* ns: a gap up to this long is caught up in full */
#define VTICK_GAP_KEEP    4u           /* periods of a longer gap that are caught up */

struct vtick {
    uint64_t backlog;    /* missed periods kept, to reinject one at a time */
    uint64_t reinjected; /* periods delivered from the backlog */
    uint64_t dropped;    /* missed periods never delivered (cap, long gaps) */
    uint64_t gave_up;    /* gaps too long to catch up in full */
};

/* vtick_reset - no backlog, no hold, statistics zero (a machine reset). */
void vtick_reset(struct vtick *t);

/* vtick_missed - missed periods (count) of period_ns (ns) each passed
 * undelivered before the one the timer delivers now. Keeps them, the
 * backlog holding at most cap periods (0: keep none, e.g. a period shorter
 * than the timer's rate limit), or drops them by the policy above. Cannot
 * fail. */
void vtick_missed(struct vtick *t, uint64_t missed, uint64_t cap, uint64_t period_ns);

/* vtick_take - one period out of the backlog, to reinject: true and
 * counted as reinjected, or false if the backlog is empty. */
bool vtick_take(struct vtick *t);

/* vtick_forget - empty the backlog without counting it dropped: the guest
 * reprogrammed the timer, and the old period's ticks mean nothing. */
void vtick_forget(struct vtick *t);

#endif
