/* 8254 PIT driver. Source: Intel 8254 datasheet §"Control Word Format", mode 2. */
#include "drivers/pit.h"
#include "kernel/x86.h"

#define PIT_CH0  0x40
#define PIT_CH2  0x42
#define PIT_CTRL 0x43
#define PORT_B   0x61          /* bit 0: channel 2 gate, bit 1: speaker, bit 5: channel 2 OUT */
#define PIT_SEL_CH2    0x80
#define PIT_MODE_ONESHOT 0x00  /* mode 0: OUT rises at terminal count */
#define PIT_SEL_CH0    0x00
#define PIT_RW_LOHI    0x30
#define PIT_MODE_RATE  0x04 /* mode 2 */

void pit_init(uint32_t hz)
{
    uint32_t div = (PIT_INPUT_HZ + hz / 2) / hz;
    if (div > 0xFFFF)
        div = 0; /* 0 means 65536 */
    outb(PIT_CTRL, PIT_SEL_CH0 | PIT_RW_LOHI | PIT_MODE_RATE);
    outb(PIT_CH0, div & 0xFF);
    outb(PIT_CH0, (div >> 8) & 0xFF);
}

uint64_t pit_measure_tsc(uint32_t ms)
{
    uint32_t count = PIT_INPUT_HZ / 1000u * ms;
    if (count > 0xFFFF)
        count = 0xFFFF;
    uint8_t b = inb(PORT_B);
    outb(PORT_B, (uint8_t)((b & ~0x02u) | 0x01u)); /* gate high, speaker off */
    outb(PIT_CTRL, PIT_SEL_CH2 | PIT_RW_LOHI | PIT_MODE_ONESHOT);
    outb(PIT_CH2, count & 0xFF);
    outb(PIT_CH2, (count >> 8) & 0xFF);
    uint64_t t0 = rdtsc(), t1;
    /* OUT2 never rising (no port 61h status, a broken counter) must not
     * hang the boot with interrupts off: give up after 2^32 TSC ticks, over
     * a second on anything that runs hv86 at a useful speed. */
    while (!(inb(PORT_B) & 0x20) && (t1 = rdtsc()) - t0 < (1ull << 32))
        ;
    t1 = rdtsc();
    outb(PORT_B, b);
    if (t1 - t0 >= (1ull << 32))
        return 0;
    /* TSC ticks per second: count PIT periods of 1/PIT_INPUT_HZ each. */
    return (t1 - t0) * PIT_INPUT_HZ / count;
}
