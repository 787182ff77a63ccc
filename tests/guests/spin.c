/*
 * spin — a CPU-bound guest for fairness and soak runs under hv86.
 *
 * Does rounds=N (command line; default 2000) rounds of work with the PIT
 * interrupting at 100 Hz, folding two identical running checksums that must
 * agree at the end, so that lost or corrupted state shows up as a FAIL. A
 * fixed amount of work, not of time: under contention a guest that counts
 * timer ticks sees them coalesced (as on any busy host), so its clock is
 * not a measure of anything. Prints only deterministic lines; the ticks it
 * saw go out on an INFO line.
 */
#include "guest.h"

#define HZ 100
#define PIT_DIV_100HZ 11932 /* 1193182 Hz / 100 */

static volatile uint32_t ticks;

static void on_tick(struct trapframe *tf)
{
    ticks++;
    pic_eoi(IRQ_TIMER);
}

/* One unit of work: a xorshift walk over a small array. */
static uint32_t work(uint32_t seed, uint32_t *buf, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        buf[seed % 64] += seed;
    }
    return seed;
}

void guest_main(void)
{
    uint32_t rounds = boot_arg("rounds", 2000);
    static uint32_t a[64], b[64];
    trap_set_handler(T_IRQ0, on_tick);
    pit_periodic(PIT_DIV_100HZ);
    pic_unmask(IRQ_TIMER);
    sti();
    uint32_t sa = 1, sb = 1;
    for (uint32_t r = 0; r < rounds; r++) {
        sa = work(sa, a, 1000);
        sb = work(sb, b, 1000);
    }
    cli();
    bool same = sa == sb;
    for (int i = 0; i < 64; i++)
        same = same && a[i] == b[i];
    check("spin-state-consistent", same, "diverged after %u rounds", rounds);
    check("spin-ticks", ticks > 0 || rounds < HZ, "no timer interrupt in %u rounds", rounds);
    printf("INFO rounds=%u ticks=%u\n", rounds, ticks);
    irq0_quiet();
}
