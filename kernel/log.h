/*
 * The kernel log ring buffer behind klog() (kernel/kernel.h).
 * LOG_RING_LINES lines of at most LOG_LINE_MAX bytes are kept; the oldest are
 * overwritten. Each line records its level and the tick it was written at.
 */
#ifndef HV86_KERNEL_LOG_H
#define HV86_KERNEL_LOG_H
#include <stdint.h>
#include "kernel/kernel.h"

#define LOG_RING_LINES 256

/* Call emit(line, ctx) for every kept line at or above min_level, oldest
 * first; line is formatted "[   12.345] W text". Returns the number emitted. */
int log_dump(enum log_level min_level, void (*emit)(const char *line, void *ctx), void *ctx);
/* Lines written since boot, and lines lost to overwrite. */
void log_counters(uint32_t *written, uint32_t *overwritten);
/* Messages at or below level are echoed on COM1 (default LOG_INFO). */
void log_set_console_level(enum log_level level);

#endif
