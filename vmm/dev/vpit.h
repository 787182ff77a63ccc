/*
 * Emulated 8254 programmable interval timer at 0x40-0x43 and the PC/AT
 * system control port B at 0x61 (bit 0 gate of counter 2, bit 5 its OUT),
 * which Linux uses to calibrate the TSC (pit_calibrate_tsc, quick_pit_calibrate).
 * Source: Intel 8254 datasheet (modes 0-5, control word, read-back command,
 * status byte); IBM PC/AT Technical Reference for port 0x61.
 *
 * Time: every channel counts the 1.193182 MHz input clock, derived from the
 * owner's monotonic nanosecond clock; nothing happens between calls, all
 * state is computed from "ticks since this count was loaded". A count is
 * loaded at once where the datasheet says "on the next CLK pulse" (838 ns).
 * Simplifications: mode 3 with an odd count keeps OUT high for (N+1)/2
 * ticks and counts by two without the odd-count extra tick; counter 1 is an
 * ordinary counter (nothing is refreshed) and counter 2 drives no speaker.
 *
 * IRQ0: counter 0's OUT rising edges. The owner calls vpit_update(now) when
 * vpit_next_event_ns() has passed (and may sleep a halted vCPU until then);
 * each access to counter 0 or the control word also calls it first (not
 * port 0x61 or counter 2: the guest cannot see IRQ0 there, and Linux's TSC
 * calibration polls them as fast as it can). If several edges have passed since
 * the last update they are coalesced into one IRQ0 pulse (the PIC latches a
 * single request anyway) and the surplus goes to a backlog, which the owner
 * reinjects one pulse at a time once the PIC has taken the previous one
 * (vpit_reinject): a guest that was not run for a while still counts every
 * tick, unless it cannot keep up, when the backlog is given up (the
 * lost-tick policy of vmm/dev/vtick.h, shared with the APIC timer). Linux's clocksource watchdog
 * compares the TSC with jiffies early in boot; with ticks lost to slow
 * exits, jiffies fell 12% behind, Linux declared the TSC unstable and read
 * the PIT for every timestamp instead (six port exits each). The backlog
 * holds at most VPIT_BACKLOG_MAX edges; beyond it, and for periods shorter
 * than the rate limit below, edges are counted in tick.dropped.
 *
 * Host protection: in the periodic modes (2, 3) IRQ0 pulses are at least
 * VPIT_MIN_PERIOD_NS apart whatever the count (KVM limits its PIT the same
 * way), so a guest programming count 2 cannot make the host wake at
 * 600 kHz; the edges in between are coalesced as above.
 */
#ifndef HV86_VMM_DEV_VPIT_H
#define HV86_VMM_DEV_VPIT_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/dev/vtick.h"
#include "vmm/dev/iobus.h"
#include "vmm/dev/vdev.h"

#define VPIT_BASE      0x40       /* counters 0-2, control word at +3 */
#define VPIT_PORT_B    0x61       /* system control port B */
#define VPIT_HZ        1193182ull /* input clock, Hz */
#define VPIT_CHANNELS  3
#define VPIT_IRQ       0          /* counter 0 OUT drives IRQ0 */
#define VPIT_MIN_PERIOD_NS 100000 /* periodic IRQ0 at most 10 kHz */
#define VPIT_BACKLOG_MAX   250    /* coalesced edges kept for reinjection: 1 s at Linux's 250 Hz */
#define VPIT_PORT_B_PACE_NS 8000  /* vpit_set_pace for hv86: Linux's 10 ms window in <= 1250 turns */

struct vpit_channel {
    uint8_t mode_bits;       /* M2-M0 as written (status byte) */
    uint8_t mode;            /* effective mode 0-5 */
    uint8_t rw;              /* RW1-RW0: 1 LSB, 2 MSB, 3 LSB then MSB */
    bool bcd;
    bool gate;
    uint32_t count;          /* count register: 1..65536 (1..10000 BCD); 0 = none */
    uint32_t ce_init;        /* count the running cycle started from */
    bool running;            /* counting element loaded */
    bool paused;             /* gate low: counting held at paused_d */
    uint64_t paused_d;       /* ticks since load when paused */
    uint64_t load_ns;        /* when the running cycle started */
    uint64_t last_tick;      /* counter 0: ticks since load already delivered */
    bool reload_pending;     /* modes 2/3: new count waits for the period end */
    uint64_t reload_ns;      /* when that period ends */
    bool null_count;
    bool write_msb_next;     /* RW=3: LSB written, MSB expected */
    uint8_t write_lsb;
    bool read_msb_next;      /* RW=3: LSB read, MSB next */
    bool count_latched;
    uint16_t latched;
    bool status_latched;
    uint8_t status;
};

struct vpit {
    struct vpit_channel ch[VPIT_CHANNELS];
    uint8_t port_b;          /* writable bits of port 0x61 */
    vdev_clock_fn clock;
    struct vdev_irq irq;     /* IRQ0 */
    void *opaque;            /* passed to clock */
    uint64_t ticks;          /* IRQ0 pulses delivered */
    uint64_t last_irq_ns;    /* when the last pulse was delivered */
    struct vtick tick;       /* edges coalesced into an earlier pulse: kept (vpit_reinject) or dropped */
    uint64_t pace_ns;        /* vpit_set_pace; 0 = off */
    uint64_t port_b_ns;      /* last PIT write or paced port 0x61 read, 0 = none */
    uint64_t turn_min_ns;    /* shortest gap seen from that to the next paced read */
};

/* vpit_init - power-on state: counters unprogrammed, so no OUT edges (8254
 * datasheet); gates 0 and 1 tied high and gate 2 low (port 0x61 bit 0 = 0,
 * IBM PC/AT Technical Reference). clock (called with opaque) gives host
 * time in ns and is required; irq carries IRQ0 (a zero struct leaves it
 * unconnected). Allocates nothing; cannot fail. */
void vpit_init(struct vpit *pit, vdev_clock_fn clock, void *opaque, struct vdev_irq irq);
/* vpit_reset - the power-on state of vpit_init again, clock and irq kept
 * (a machine reset). Cannot fail. */
void vpit_reset(struct vpit *pit);

/* vpit_set_pace - while counter 2 counts towards OUT2 going high (mode 0
 * or 1, gate up, OUT2 low), reads of port 0x61 wait on the clock so that
 * the guest's polling turns (read to read) last pace_ns (host ns), none
 * less than 7/8 of it; turns slower than that are not held. 0 turns it off (the
 * default: tests with a clock that stands still need that). Also forgets
 * the turns seen so far. Why: vpit.c, pace_port_b, and Linux
 * arch/x86/kernel/tsc.c pit_calibrate_tsc. Cannot fail. */
void vpit_set_pace(struct vpit *pit, uint64_t pace_ns);

/* vpit_attach - claim ports 0x40-0x43 (counters 0-2, control word) and
 * 0x61 (port B), byte accesses. Returns 0 or iobus_register's E_EXIST
 * (a port already claimed) or E_NOMEM (the bus has no range left). */
int vpit_attach(struct vpit *pit, struct iobus *bus);

/* vpit_update - deliver counter 0's OUT rising edges due by now_ns (host
 * ns): one IRQ0 pulse (level 1 then 0) at most, the surplus added to the
 * backlog by vtick_missed (up to VPIT_BACKLOG_MAX; periodic modes with a
 * period of at least VPIT_MIN_PERIOD_NS) or else dropped, periodic pulses
 * at least VPIT_MIN_PERIOD_NS apart; applies a mode 2/3 reload of counter
 * 0 whose period has ended. now_ns may repeat; it must not go backwards. */
void vpit_update(struct vpit *pit, uint64_t now_ns);

/* vpit_reinject_ns - host time (ns) from which vpit_reinject may deliver a
 * pulse of the backlog (the rate limit after the last pulse); VDEV_NEVER
 * if the backlog is empty. Pure.
 * vpit_reinject - deliver one IRQ0 pulse from the backlog if it is due at
 * now_ns. The owner calls it only when the PIC has taken the previous
 * pulse (IRQ0 neither requested nor in service), or the pulse would merge
 * into that one. Writing a new mode or count to counter 0 empties the
 * backlog, as a new period makes the old ticks meaningless. KVM's PIT
 * "reinject" lost-tick policy, bounded as vmm/dev/vtick.h says. */
uint64_t vpit_reinject_ns(const struct vpit *pit);
void vpit_reinject(struct vpit *pit, uint64_t now_ns);

/* vpit_next_event_ns - host time (ns) of the next IRQ0 edge, rate limit
 * included; VDEV_NEVER if counter 0 will produce none (unprogrammed, or a
 * one-shot mode done). May be in the past if vpit_update has not been
 * called since. Pure. */
uint64_t vpit_next_event_ns(const struct vpit *pit);

/* vpit_out - counter ch's OUT pin (ch 0-2; false for any other) at now_ns,
 * per the 8254 datasheet's mode waveforms: what port 0x61 bit 5 shows for
 * counter 2 (IBM PC/AT Technical Reference). Pure: changes no state. */
bool vpit_out(const struct vpit *pit, int ch, uint64_t now_ns);

#endif
