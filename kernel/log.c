/*
 * Levelled kernel log kept in a ring buffer of LOG_RING_LINES lines, echoed on
 * COM1 up to a threshold. klog may be called from interrupt handlers.
 */
#include "kernel/log.h"
#include "drivers/serial.h"
#include "kernel/sched.h"
#include "kernel/spinlock.h"

struct log_line {
    uint64_t tick;
    uint8_t level;
    char text[LOG_LINE_MAX];
};

static struct log_line ring[LOG_RING_LINES];
static uint32_t written; /* total lines ever written; ring index = written % size */
static spinlock_t log_lock = SPINLOCK_INIT("log");
static enum log_level console_level = LOG_INFO;
static const char level_char[] = { 'E', 'W', 'I', 'D' };

static int format_line(const struct log_line *l, char *buf, size_t size)
{
    uint32_t ms = (uint32_t)(l->tick * 1000 / TIMER_HZ);
    return snprintf(buf, size, "[%5u.%03u] %c %s", ms / 1000, ms % 1000, level_char[l->level], l->text);
}

void klog(enum log_level level, const char *fmt, ...)
{
    char out[LOG_LINE_MAX + 24];
    va_list ap;
    uint32_t fl = spin_lock_irqsave(&log_lock);
    struct log_line *l = &ring[written % LOG_RING_LINES];
    l->tick = timer_ticks();
    l->level = (uint8_t)level;
    va_start(ap, fmt);
    vsnprintf(l->text, sizeof(l->text), fmt, ap);
    va_end(ap);
    written++;
    int n = (level <= console_level) ? format_line(l, out, sizeof(out) - 1) : -1;
    spin_unlock_irqrestore(&log_lock, fl);
    if (n >= 0) {
        n = MIN(n, (int)sizeof(out) - 2);
        out[n++] = '\n';
        serial_write(out, (size_t)n);
    }
}

int log_dump(enum log_level min_level, void (*emit)(const char *line, void *ctx), void *ctx)
{
    char buf[LOG_LINE_MAX + 24];
    int emitted = 0;
    uint32_t end = written;
    uint32_t start = end > LOG_RING_LINES ? end - LOG_RING_LINES : 0;
    for (uint32_t i = start; i < end; i++) {
        struct log_line copy;
        uint32_t fl = spin_lock_irqsave(&log_lock);
        bool live = written - i <= LOG_RING_LINES; /* not overwritten meanwhile */
        copy = ring[i % LOG_RING_LINES];
        spin_unlock_irqrestore(&log_lock, fl);
        if (!live || copy.level > min_level)
            continue;
        format_line(&copy, buf, sizeof(buf));
        emit(buf, ctx);
        emitted++;
    }
    return emitted;
}

void log_counters(uint32_t *w, uint32_t *overwritten)
{
    *w = written;
    *overwritten = written > LOG_RING_LINES ? written - LOG_RING_LINES : 0;
}

void log_set_console_level(enum log_level level) { console_level = level; }
