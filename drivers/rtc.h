/*
 * CMOS real-time clock (MC146818A compatible, ports 0x70/0x71).
 * Source: Motorola MC146818A datasheet; PC/AT CMOS register map.
 */
#ifndef HV86_DRIVERS_RTC_H
#define HV86_DRIVERS_RTC_H
#include <stdint.h>

struct rtc_time {
    uint16_t year; /* e.g. 2026 */
    uint8_t month, day, hour, minute, second;
};

/* Read wall-clock time (waits for a consistent read across the update cycle).
 * Returns 0 or E_TIMEOUT if the update-in-progress bit never clears. */
int rtc_read(struct rtc_time *t);

#endif
