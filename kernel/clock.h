/*
 * Host time for device models: a monotonic nanosecond clock from the TSC,
 * calibrated against the PIT tick at boot, and wall-clock seconds from the
 * CMOS RTC plus elapsed time. Source: Intel SDM Vol. 3B §17.17 (TSC).
 */
#ifndef HV86_KERNEL_CLOCK_H
#define HV86_KERNEL_CLOCK_H
#include <stdint.h>

/* Measure the TSC rate over CLOCK_CALIBRATE_TICKS timer ticks; call once from
 * a thread after interrupts are on. Until then clock_ns() counts ticks. */
void clock_init(void);
/* Nanoseconds since clock_init (monotonic). */
uint64_t clock_ns(void);
/* TSC frequency measured at boot, Hz (0 before clock_init). */
uint64_t clock_tsc_hz(void);
/*
 * clock_tsc_before - a TSC value (as rdtsc reads it) before which
 * clock_ns() is below ns, for a deadline a hot path compares with rdtsc()
 * alone instead of converting every time: a few ticks early, never late;
 * 0 (every rdtsc() is past it) before clock_init, UINT64_MAX for an ns
 * centuries away (no deadline).
 */
uint64_t clock_tsc_before(uint64_t ns);
/* Seconds since 1970-01-01 00:00:00 UTC (from the RTC at clock_init). */
uint64_t clock_wall_seconds(void);

#endif
