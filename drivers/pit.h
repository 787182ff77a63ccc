/*
 * 8254 programmable interval timer, channel 0 drives the scheduler tick.
 * Source: Intel 8254 datasheet (control word, mode 2 rate generator).
 */
#ifndef HV86_DRIVERS_PIT_H
#define HV86_DRIVERS_PIT_H
#include <stdint.h>

#define PIT_INPUT_HZ 1193182u /* input clock of the 8254 on a PC, Hz */

/* Program channel 0 as a rate generator at hz interrupts per second (19..1193182). */
void pit_init(uint32_t hz);

/*
 * pit_measure_tsc - TSC ticks per second, timed against channel 2 in mode 0
 * over ms milliseconds (<= 54) by polling its OUT in port 61h, as PC BIOSes
 * and Linux do. Unlike counting IRQ0s this holds when an emulator delivers
 * timer interrupts late. Call with interrupts off; an interrupt inside the
 * window only lengthens it (take the least of several). Returns 0 if OUT
 * did not rise within 2^32 TSC ticks (no usable channel 2).
 */
uint64_t pit_measure_tsc(uint32_t ms);

#endif
