/* TSC-based monotonic clock and wall clock (contract in kernel/clock.h). */
#include "kernel/clock.h"
#include "drivers/pit.h"
#include "drivers/rtc.h"
#include "kernel/kernel.h"
#include "kernel/sched.h"
#include "kernel/x86.h"

#define CLOCK_CALIBRATE_MS 50u /* per window against the PIT */

static uint64_t tsc0, tsc_hz, mult; /* ns = delta * mult / 2^32 */
static uint64_t wall0;              /* wall seconds at tsc0 */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's civil algorithm). */
static int64_t days_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void clock_init(void)
{
    /* Five 50 ms windows of the PIT's channel 2, interrupts off; a window
     * can only come out long (polling, an emulator's host descheduling it),
     * so the shortest is the truest. Counting IRQ0s instead read 32% high
     * on a loaded host: QEMU delivered the ticks late. */
    tsc_hz = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint32_t fl = read_eflags();
        cpu_cli();
        uint64_t hz = pit_measure_tsc(CLOCK_CALIBRATE_MS);
        write_eflags(fl);
        if (hz)
            tsc_hz = MIN(tsc_hz, hz);
    }
    if (tsc_hz == UINT64_MAX)
        panic("clock: PIT channel 2 never reached its terminal count (port 61h bit 5): cannot time the TSC");
    uint64_t b = rdtsc();
    mult = (1000000000ull << 32) / tsc_hz;
    tsc0 = b;
    struct rtc_time rt;
    if (rtc_read(&rt) == 0)
        wall0 = (uint64_t)days_from_civil(rt.year, rt.month, rt.day) * 86400 + rt.hour * 3600u + rt.minute * 60u + rt.second;
    log_info("clock: TSC %u.%03u MHz", (uint32_t)(tsc_hz / 1000000), (uint32_t)(tsc_hz / 1000 % 1000));
}

uint64_t clock_ns(void)
{
    if (!mult)
        return timer_ticks() * (1000000000ull / TIMER_HZ);
    /* (d * mult) >> 32 without a 128-bit product: split both into 32-bit halves. */
    uint64_t d = rdtsc() - tsc0;
    uint64_t dh = d >> 32, dl = d & 0xFFFFFFFFull, mh = mult >> 32, ml = mult & 0xFFFFFFFFull;
    return ((dh * mh) << 32) + dh * ml + dl * mh + ((dl * ml) >> 32);
}

uint64_t clock_tsc_hz(void) { return tsc_hz; }

uint64_t clock_tsc_before(uint64_t ns)
{
    if (!mult)
        return 0;
    /* ns * tsc_hz / 1e9 in two parts, neither of which overflows: the
     * second's product is below 1e9 * tsc_hz < 2^64 for tsc_hz < 18 GHz.
     * Truncating and the margin of 2 keep it at or before the TSC where
     * clock_ns() (truncating too) reaches ns. */
    uint64_t s = ns / 1000000000ull;
    if (s >= (UINT64_MAX - tsc0) / tsc_hz / 2)
        return UINT64_MAX; /* centuries away (no timer armed): never */
    uint64_t d = s * tsc_hz + ns % 1000000000ull * tsc_hz / 1000000000ull;
    return d < 2 ? 0 : tsc0 + d - 2;
}
uint64_t clock_wall_seconds(void) { return wall0 + clock_ns() / 1000000000ull; }
