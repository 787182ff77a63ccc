/*
 * Emulated 8254. Source: Intel 8254 datasheet.
 *
 * Map:
 *   time       ns <-> input-clock ticks without 64-bit overflow
 *   counting   elapsed(), counter value and OUT per mode as pure functions
 *              of "ticks since load" (d) and the initial count N
 *   gate/load  the events that (re)start a cycle: count written, gate edge
 *   irq0       the next OUT rising edge of counter 0 and its delivery
 *   ports      control word (incl. latch and read-back), counters, port 0x61
 */
#include "kernel/kernel.h"
#include "vmm/dev/vpit.h"

#define PIT_CTRL         (VPIT_BASE + 3)
#define CW_SC_SHIFT      6      /* control word: SC1-SC0 select counter */
#define CW_SC_READBACK   3
#define CW_RW_SHIFT      4
#define CW_RW_MASK       0x3
#define CW_RW_LATCH      0      /* counter latch command */
#define CW_RW_LSB        1
#define CW_RW_MSB        2
#define CW_RW_BOTH       3
#define CW_MODE_SHIFT    1
#define CW_MODE_MASK     0x7
#define CW_BCD           0x01
#define RB_NOT_COUNT     0x20   /* read-back: 0 = latch count */
#define RB_NOT_STATUS    0x10   /* read-back: 0 = latch status */
#define RB_CNT_SHIFT     1      /* read-back: counter select bits 1-3 */
#define ST_OUT           0x80   /* status byte: OUT pin */
#define ST_NULL_COUNT    0x40   /* status byte: count not yet loaded */
#define MOD_BINARY       0x10000u
#define MOD_BCD          10000u
#define NO_EDGE          UINT64_MAX

#define PORTB_GATE2      0x01   /* counter 2 gate */
#define PORTB_SPEAKER    0x02   /* speaker data enable */
#define PORTB_RW_MASK    0x0F   /* gate, speaker, parity/IOCHK check enables */
#define PORTB_REFRESH    0x10   /* toggles with each DRAM refresh request */
#define PORTB_OUT2       0x20   /* counter 2 OUT */
#define REFRESH_NS       15085  /* refresh toggle half-period on the AT, ns */
#define PACE_SLACK       8      /* paced turns: pace_ns, none under (1 - 1/8) of it */

enum pit_mode { MODE_INT_ON_TC, MODE_ONESHOT, MODE_RATE, MODE_SQUARE, MODE_SW_STROBE, MODE_HW_STROBE };

/* ---------------------------------------------------------------- time */

static uint64_t ns_to_ticks(uint64_t ns)
{
    if (ns < NS_PER_SEC)  /* the usual case: one 64-bit division, not three */
        return ns * VPIT_HZ / NS_PER_SEC;
    return ns / NS_PER_SEC * VPIT_HZ + ns % NS_PER_SEC * VPIT_HZ / NS_PER_SEC;
}

/* Smallest ns after which at least t ticks have elapsed. */
static uint64_t ticks_to_ns_ceil(uint64_t t)
{
    return t / VPIT_HZ * NS_PER_SEC + (t % VPIT_HZ * NS_PER_SEC + VPIT_HZ - 1) / VPIT_HZ;
}

/* ---------------------------------------------------------------- counting */

static bool periodic(const struct vpit_channel *c)
{
    return c->mode == MODE_RATE || c->mode == MODE_SQUARE;
}

static uint32_t modulus(const struct vpit_channel *c)
{
    return c->bcd ? MOD_BCD : MOD_BINARY;
}

/* Ticks the counting element has counted in this cycle. */
static uint64_t elapsed(const struct vpit_channel *c, uint64_t now)
{
    if (!c->running)
        return 0;
    if (c->paused)
        return c->paused_d;
    return now > c->load_ns ? ns_to_ticks(now - c->load_ns) : 0;
}

/* Counting element value (binary, 0..modulus-1). */
static uint32_t counter_value(const struct vpit_channel *c, uint64_t now)
{
    if (!c->running)
        return c->count % modulus(c);
    uint64_t d = elapsed(c, now), n = c->ce_init, m = modulus(c);
    switch (c->mode) {
    case MODE_RATE:   return (uint32_t)((n - d % n) % m);
    case MODE_SQUARE: return (uint32_t)((n - 2 * d % n) % m);
    default:          return (uint32_t)((n + m - d % m) % m);
    }
}

static bool out_pin(const struct vpit_channel *c, uint64_t now)
{
    if (!c->running)
        return c->mode != MODE_INT_ON_TC;  /* mode 0 OUT starts low */
    uint64_t d = elapsed(c, now), n = c->ce_init;
    switch (c->mode) {
    case MODE_INT_ON_TC:
    case MODE_ONESHOT:   return d >= n;
    case MODE_RATE:      return c->paused || d % n != n - 1;
    case MODE_SQUARE:    return c->paused || d % n < (n + 1) / 2;
    default:             return d != n;     /* strobes: low for one tick */
    }
}

bool vpit_out(const struct vpit *pit, int ch, uint64_t now_ns)
{
    return ch >= 0 && ch < VPIT_CHANNELS && out_pin(&pit->ch[ch], now_ns);
}

/* First OUT rising edge after tick `after` of this cycle, or NO_EDGE. */
static uint64_t next_edge(const struct vpit_channel *c, uint64_t after)
{
    uint64_t n = c->ce_init;
    if (!c->running || c->paused)
        return NO_EDGE;
    switch (c->mode) {
    case MODE_RATE:
    case MODE_SQUARE:    return (after / n + 1) * n;
    case MODE_INT_ON_TC:
    case MODE_ONESHOT:   return after < n ? n : NO_EDGE;
    default:             return after < n + 1 ? n + 1 : NO_EDGE;
    }
}

/* ---------------------------------------------------------------- gate/load */

static void start(struct vpit_channel *c, uint64_t now)
{
    c->ce_init = c->count;
    c->load_ns = now;
    c->running = true;
    c->paused = !c->gate && c->mode != MODE_ONESHOT && c->mode != MODE_HW_STROBE;
    c->paused_d = 0;
    c->last_tick = 0;
    c->null_count = false;
    c->reload_pending = false;
}

/* Modes 2/3: a count written while counting is loaded when the current
 * period ends (8254 datasheet, mode 2 "Writing a new count while counting"). */
static void schedule_reload(struct vpit_channel *c, uint64_t now)
{
    uint64_t n = c->ce_init, end = (elapsed(c, now) / n + 1) * n;
    c->reload_ns = c->load_ns + ticks_to_ns_ceil(end);
    c->reload_pending = true;
}

/* Apply a scheduled reload that is due; true if it happened (the old
 * period's last edge has passed). */
static bool sync_reload(struct vpit_channel *c, uint64_t now)
{
    if (!c->reload_pending || now < c->reload_ns)
        return false;
    start(c, c->reload_ns);
    return true;
}

static uint32_t bcd_to_bin(uint32_t v)
{
    return (v >> 12 & 0xF) * 1000 + (v >> 8 & 0xF) * 100 + (v >> 4 & 0xF) * 10 + (v & 0xF);
}

static uint32_t bin_to_bcd(uint32_t v)
{
    return (v / 1000 % 10) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | v % 10;
}

/* A complete initial count was written. */
static void load_count(struct vpit_channel *c, uint32_t raw, uint64_t now)
{
    uint32_t v = c->bcd ? bcd_to_bin(raw) % MOD_BCD : raw;
    c->count = v ? v : modulus(c);  /* 0 counts the full range */
    c->null_count = true;
    if (c->mode == MODE_ONESHOT || c->mode == MODE_HW_STROBE)
        return;  /* loaded by the next gate trigger */
    if (periodic(c) && c->running && !c->paused)
        schedule_reload(c, now);
    else
        start(c, now);
}

static void set_gate(struct vpit_channel *c, bool gate, uint64_t now)
{
    if (gate == c->gate)
        return;
    c->gate = gate;
    if (!gate) {
        if (c->running && !c->paused && c->mode != MODE_ONESHOT && c->mode != MODE_HW_STROBE) {
            c->paused_d = elapsed(c, now);
            c->paused = true;
        }
        return;
    }
    switch (c->mode) {
    case MODE_INT_ON_TC:
    case MODE_SW_STROBE:  /* resume where counting stopped */
        if (c->running && c->paused) {
            uint64_t back = ticks_to_ns_ceil(c->paused_d);
            c->load_ns = now > back ? now - back : 0;
            c->paused = false;
        }
        break;
    default:              /* modes 1, 5 trigger; modes 2, 3 reload */
        if (c->count)
            start(c, now);
        break;
    }
}

/* ---------------------------------------------------------------- irq0 */

/* Earliest time the rate limit lets the next periodic pulse out. */
static uint64_t rate_limit_ns(const struct vpit *pit)
{
    return pit->ticks && periodic(&pit->ch[0]) ? pit->last_irq_ns + VPIT_MIN_PERIOD_NS : 0;
}

/* One IRQ0 pulse: the PIC latches the rising edge. */
static void pulse(struct vpit *pit, uint64_t now_ns)
{
    pit->ticks++;
    pit->last_irq_ns = now_ns;
    vdev_irq_set(&pit->irq, VPIT_IRQ, 1);
    vdev_irq_set(&pit->irq, VPIT_IRQ, 0);
}

void vpit_update(struct vpit *pit, uint64_t now_ns)
{
    struct vpit_channel *c = &pit->ch[0];
    uint64_t edges = sync_reload(c, now_ns);  /* the old period's last edge */
    uint64_t d = elapsed(c, now_ns);
    uint64_t e = next_edge(c, c->last_tick);

    if (e != NO_EDGE && e <= d)
        edges += periodic(c) ? d / c->ce_init - c->last_tick / c->ce_init : 1;
    if (!edges || now_ns < rate_limit_ns(pit))
        return;
    bool keep = periodic(c) && ticks_to_ns_ceil(c->ce_init) >= VPIT_MIN_PERIOD_NS;
    vtick_missed(&pit->tick, edges - 1, keep ? VPIT_BACKLOG_MAX : 0, ticks_to_ns_ceil(c->ce_init));
    c->last_tick = d;
    pulse(pit, now_ns);
}

uint64_t vpit_reinject_ns(const struct vpit *pit)
{
    return pit->tick.backlog ? pit->last_irq_ns + VPIT_MIN_PERIOD_NS : VDEV_NEVER;
}

void vpit_reinject(struct vpit *pit, uint64_t now_ns)
{
    if (now_ns >= vpit_reinject_ns(pit) && vtick_take(&pit->tick))
        pulse(pit, now_ns);
}

uint64_t vpit_next_event_ns(const struct vpit *pit)
{
    const struct vpit_channel *c = &pit->ch[0];
    uint64_t e = next_edge(c, c->last_tick);
    return e == NO_EDGE ? VDEV_NEVER : MAX(c->load_ns + ticks_to_ns_ceil(e), rate_limit_ns(pit));
}

/* ---------------------------------------------------------------- ports */

static uint8_t status_byte(const struct vpit_channel *c, uint64_t now)
{
    return (uint8_t)((out_pin(c, now) ? ST_OUT : 0) | (c->null_count ? ST_NULL_COUNT : 0) |
                     c->rw << CW_RW_SHIFT | c->mode_bits << CW_MODE_SHIFT | (c->bcd ? CW_BCD : 0));
}

static void latch_count(struct vpit_channel *c, uint64_t now)
{
    if (c->count_latched)
        return;  /* a second latch before the read is ignored */
    uint32_t v = counter_value(c, now);
    c->latched = (uint16_t)(c->bcd ? bin_to_bcd(v) : v);
    c->count_latched = true;
}

static void read_back(struct vpit *pit, uint8_t cmd, uint64_t now)
{
    for (int i = 0; i < VPIT_CHANNELS; i++) {
        struct vpit_channel *c = &pit->ch[i];
        if (!(cmd & (1u << (RB_CNT_SHIFT + i))))
            continue;
        if (!(cmd & RB_NOT_COUNT))
            latch_count(c, now);
        if (!(cmd & RB_NOT_STATUS) && !c->status_latched) {
            c->status = status_byte(c, now);
            c->status_latched = true;
        }
    }
}

static void write_control(struct vpit *pit, uint8_t cw, uint64_t now)
{
    unsigned sc = cw >> CW_SC_SHIFT, rw = cw >> CW_RW_SHIFT & CW_RW_MASK;
    if (sc == CW_SC_READBACK) {
        read_back(pit, cw, now);
        return;
    }
    struct vpit_channel *c = &pit->ch[sc];
    if (rw == CW_RW_LATCH) {
        latch_count(c, now);
        return;
    }
    if (sc == 0)
        vtick_forget(&pit->tick); /* a new mode: the old period's ticks mean nothing */
    /* A new mode resets the counter's control logic; OUT goes to its
     * initial state and the counter waits for a count. */
    c->mode_bits = cw >> CW_MODE_SHIFT & CW_MODE_MASK;
    c->mode = c->mode_bits > MODE_HW_STROBE ? c->mode_bits & 3 : c->mode_bits;
    c->rw = (uint8_t)rw;
    c->bcd = cw & CW_BCD;
    c->running = c->paused = c->reload_pending = false;
    c->count = 0;
    c->null_count = true;
    c->write_msb_next = c->read_msb_next = false;
    c->count_latched = c->status_latched = false;
}

static void write_counter(struct vpit_channel *c, uint8_t v, uint64_t now)
{
    switch (c->rw) {
    case CW_RW_LSB: load_count(c, v, now); break;
    case CW_RW_MSB: load_count(c, (uint32_t)v << 8, now); break;
    case CW_RW_BOTH:
        if (!c->write_msb_next) {
            c->write_lsb = v;
            c->write_msb_next = true;
            if (c->mode == MODE_INT_ON_TC)
                c->running = false;  /* first byte stops counting, OUT low */
        } else {
            c->write_msb_next = false;
            load_count(c, c->write_lsb | (uint32_t)v << 8, now);
        }
        break;
    default: break;  /* counter never programmed: ignore */
    }
}

/* One byte of a 16-bit value, following the RW mode and LSB/MSB toggle. */
static uint8_t read_byte_of(struct vpit_channel *c, uint16_t v, bool *done)
{
    switch (c->rw) {
    case CW_RW_LSB: *done = true; return (uint8_t)v;
    case CW_RW_MSB: *done = true; return (uint8_t)(v >> 8);
    default:
        c->read_msb_next = !c->read_msb_next;
        *done = !c->read_msb_next;
        return (uint8_t)(c->read_msb_next ? v : v >> 8);
    }
}

static uint8_t read_counter(struct vpit_channel *c, uint64_t now)
{
    bool done;
    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    if (c->count_latched) {
        uint8_t b = read_byte_of(c, c->latched, &done);
        if (done)
            c->count_latched = false;
        return b;
    }
    uint32_t v = counter_value(c, now);
    return read_byte_of(c, (uint16_t)(c->bcd ? bin_to_bcd(v) : v), &done);
}

static uint8_t port_b_read(struct vpit *pit, uint64_t now)
{
    return (uint8_t)(pit->port_b | (now / REFRESH_NS & 1 ? PORTB_REFRESH : 0) |
                     (out_pin(&pit->ch[2], now) ? PORTB_OUT2 : 0));
}

/* Before a port access: due reloads of the counters it can see, and IRQ0
 * edges up to now when it can see or change counter 0. Port 0x61 and
 * counter 2 leave IRQ0 to the owner's vpit_update: they are what Linux's
 * TSC calibration polls, where time spent here is loop turns lost. */
static void catch_up(struct vpit *pit, uint16_t port, uint64_t now)
{
    if (port == VPIT_PORT_B || port == VPIT_BASE + 2) {
        sync_reload(&pit->ch[2], now);
        return;
    }
    vpit_update(pit, now);
    for (int i = 1; i < VPIT_CHANNELS; i++)
        sync_reload(&pit->ch[i], now);
}

/*
 * Pacing of port 0x61 while the guest waits for OUT2 to rise at counter
 * 2's terminal count, in mode 0 or 1 (vpit_set_pace).
 * Linux's pit_calibrate_tsc throws away a window whose slowest turn of
 * "inb $0x61; rdtsc" took more than ten times its fastest. Under hv86 the
 * host's own timer interrupt lands in every window (every 1 ms; 25-100 us
 * under QEMU TCG) while a turn is one exit (3.6 us there): the window is
 * lost although nothing went wrong. So reads are held in the device, to
 * make the guest's turns pace_ns long and none shorter than 7/8 of it:
 * such an interrupt is then no more than ten turns.
 *
 * The guest's turn runs from one read's return (plus the way back to its
 * RDTSC) to the next's. A read is released pace_ns after the last one
 * returned, or, if it arrives so late that this has passed, "floor less
 * the shortest gap seen" after its arrival (a gap: from an access's return
 * to the next read's arrival, the exits and the guest's loop). The second
 * rule is for an interrupt that struck between the last read's return and
 * the guest's RDTSC: the guest counted it in its last turn, and without
 * the hold this turn would be one bare exit. A return path a little slower
 * than usual (within pace_ns/8) only shortens the next turn that much.
 * The shortest gap is kept from one wait to the next: Linux polls three
 * times in the same loop, and the first turns of a wait run colder code
 * (blocks being chained), whose long gaps would make short holds.
 * None of this costs the guest time: its wait ends when OUT2 rises,
 * however often it looks.
 */
static uint64_t pace_port_b(struct vpit *pit, uint64_t now)
{
    const struct vpit_channel *c = &pit->ch[2];
    bool one_shot = c->mode == MODE_INT_ON_TC || c->mode == MODE_ONESHOT;
    if (!pit->pace_ns || !one_shot || !c->running || c->paused || out_pin(c, now)) {
        pit->port_b_ns = 0;  /* not a wait for OUT2 */
        return now;
    }
    if (pit->port_b_ns) {
        uint64_t floor = pit->pace_ns - pit->pace_ns / PACE_SLACK;
        pit->turn_min_ns = MIN(pit->turn_min_ns, now - pit->port_b_ns);
        uint64_t hold = floor > pit->turn_min_ns ? floor - pit->turn_min_ns : 0;
        uint64_t until = MAX(pit->port_b_ns + pit->pace_ns, now + hold);
        while (now < until)
            now = pit->clock(pit->opaque);
    }
    pit->port_b_ns = now;
    return now;
}

static uint32_t pit_in(void *opaque, uint16_t port, unsigned size)
{
    struct vpit *pit = opaque;
    uint64_t now = pit->clock(pit->opaque);

    catch_up(pit, port, now);
    if (port == VPIT_PORT_B)
        return port_b_read(pit, pace_port_b(pit, now));
    if (port == PIT_CTRL)
        return 0xFF;  /* the control word register is write-only */
    return read_counter(&pit->ch[port - VPIT_BASE], now);
}

static void pit_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vpit *pit = opaque;
    uint64_t now = pit->clock(pit->opaque);

    catch_up(pit, port, now);
    if (port == VPIT_PORT_B) {
        pit->port_b = val & PORTB_RW_MASK;
        set_gate(&pit->ch[2], val & PORTB_GATE2, now);
    } else if (port == PIT_CTRL) {
        write_control(pit, (uint8_t)val, now);
    } else {
        if (port == VPIT_BASE)
            vtick_forget(&pit->tick); /* a new count: the old period's ticks mean nothing */
        write_counter(&pit->ch[port - VPIT_BASE], (uint8_t)val, now);
    }
    /* A wait for OUT2 may start here: its first turn counts from the
     * write's end (the next read's gap is then one guest turn, as others). */
    pit->port_b_ns = pit->clock(pit->opaque);
}

void vpit_reset(struct vpit *pit)
{
    memset(pit->ch, 0, sizeof(pit->ch));
    pit->ch[0].gate = pit->ch[1].gate = true;  /* tied high on the PC */
    pit->port_b = 0;
    pit->ticks = pit->last_irq_ns = 0;
    vtick_reset(&pit->tick);
    pit->port_b_ns = 0;
    pit->turn_min_ns = UINT64_MAX;
}

void vpit_set_pace(struct vpit *pit, uint64_t pace_ns)
{
    pit->pace_ns = pace_ns;
    pit->turn_min_ns = UINT64_MAX;
}

void vpit_init(struct vpit *pit, vdev_clock_fn clock, void *opaque, struct vdev_irq irq)
{
    pit->pace_ns = 0;
    pit->clock = clock;
    pit->irq = irq;
    pit->opaque = opaque;
    vpit_reset(pit);
}

int vpit_attach(struct vpit *pit, struct iobus *bus)
{
    int err = iobus_register(bus, VPIT_BASE, 4, IOBUS_SZ_1, pit_in, pit_out, pit, "pit");
    if (!err)
        err = iobus_register(bus, VPIT_PORT_B, 1, IOBUS_SZ_1, pit_in, pit_out, pit, "port61");
    return err;
}
