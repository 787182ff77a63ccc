/*
 * Text formats of the console's status commands, kept apart from the kernel
 * calls that gather the numbers so the host unit tests can check them.
 */
#ifndef HV86_MGMT_FORMAT_H
#define HV86_MGMT_FORMAT_H
#include <stddef.h>
#include <stdint.h>
#include "drivers/rtc.h"

/*
 * fmt_uptime - ticks at hz (> 0) ticks per second as "D days, H:MM:SS.mmm"
 * ("1 day, ..." for one day). Writes at most size bytes, NUL-terminated;
 * returns the length the text would have had (as snprintf).
 */
int fmt_uptime(char *buf, size_t size, uint64_t ticks, uint32_t hz);

/* fmt_iso8601 - t as ISO 8601 "YYYY-MM-DDTHH:MM:SS" (as snprintf). */
int fmt_iso8601(char *buf, size_t size, const struct rtc_time *t);

/* fmt_mib - bytes as MiB with one decimal, rounded down: "63.9 MiB"
 * (as snprintf). */
int fmt_mib(char *buf, size_t size, uint64_t bytes);

#endif
