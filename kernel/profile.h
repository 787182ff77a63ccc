/*
 * A sampling profile of the hypervisor: at every timer interrupt, where the
 * CPU was (monitor EIP, or which guest ring). Read with `debug profile`,
 * symbolized offline (`addr2line -f -e hv86.elf ADDR`).
 */
#ifndef HV86_KERNEL_PROFILE_H
#define HV86_KERNEL_PROFILE_H
#include <stdbool.h>
#include <stdint.h>
#include "kernel/traps.h"

#define PROFILE_SLOTS 4096u /* distinct monitor EIPs kept (open addressing) */

struct profile_entry {
    uint32_t eip, count;
};

/* profile_sample - count one timer tick at tf (interrupts off, IRQ context). */
void profile_sample(const struct trap_frame *tf);

/*
 * profile_top - copy the up-to-n most frequent monitor EIPs (by_caller: the
 * return addresses of the interrupted functions) into out[],
 * most frequent first; *ring_samples gets the samples per interrupted ring
 * (0: monitor, 1: translated guest code, 3: guest user code). Returns how
 * many entries it wrote.
 */
uint32_t profile_top(struct profile_entry *out, uint32_t n, uint32_t ring_samples[4], bool by_caller);

/* profile_reset - forget every sample. */
void profile_reset(void);

#endif
