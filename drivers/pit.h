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

#endif
