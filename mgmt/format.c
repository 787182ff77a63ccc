/* Text formats of the status commands; contracts in format.h. */
#include "mgmt/format.h"
#include "kernel/kernel.h"

#define SECS_PER_DAY  86400u
#define SECS_PER_HOUR 3600u
#define MIB           (1024u * 1024u)

int fmt_uptime(char *buf, size_t size, uint64_t ticks, uint32_t hz)
{
    uint64_t secs = ticks / hz;
    uint32_t ms = (uint32_t)((ticks % hz) * 1000u / hz);
    uint32_t days = (uint32_t)(secs / SECS_PER_DAY), rest = (uint32_t)(secs % SECS_PER_DAY);

    return snprintf(buf, size, "%u day%s, %u:%02u:%02u.%03u", days, days == 1 ? "" : "s",
                    rest / SECS_PER_HOUR, rest % SECS_PER_HOUR / 60, rest % 60, ms);
}

int fmt_iso8601(char *buf, size_t size, const struct rtc_time *t)
{
    return snprintf(buf, size, "%04u-%02u-%02uT%02u:%02u:%02u", t->year, t->month, t->day,
                    t->hour, t->minute, t->second);
}

int fmt_mib(char *buf, size_t size, uint64_t bytes)
{
    uint32_t whole = (uint32_t)(bytes / MIB);
    uint32_t tenth = (uint32_t)(bytes % MIB * 10 / MIB);

    return snprintf(buf, size, "%u.%u MiB", whole, tenth);
}
