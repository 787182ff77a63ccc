/*
 * A sampling profile of the hypervisor: at every timer interrupt, where the
 * CPU was (monitor EIP, or which guest ring; in translated code, the guest
 * instruction it was translated from). Read with `debug profile`,
 * symbolized offline (`addr2line -f -e hv86.elf ADDR` for the monitor, the
 * guest's /proc/kallsyms for guest EIPs: bench/profile.py does both).
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

/* What profile_top counts. */
enum profile_table {
    PROFILE_MONITOR, /* monitor EIPs */
    PROFILE_CALLERS, /* return addresses of the interrupted monitor functions */
    PROFILE_GUEST,   /* guest EIPs of the instructions translated code was
                      * interrupted in (vmm_ring1_guest_eip); in a stub of
                      * the translation cache, the ring-1 EIP (its offset) */
};

/*
 * profile_top - copy the up-to-n most frequent entries of table into out[],
 * most frequent first; *ring_samples gets the samples per interrupted ring
 * (0: monitor, 1: translated guest code, 3: guest user code). Returns how
 * many entries it wrote.
 */
uint32_t profile_top(struct profile_entry *out, uint32_t n, uint32_t ring_samples[4], enum profile_table table);

/*
 * vmm_ring1_guest_eip - (vmm/vcpu.c) the guest EIP of the instruction whose
 * translation contains ring-1 EIP eip on this thread's vCPU. Returns 0 and
 * sets *guest_eip, or E_NOENT (no vCPU, or eip in a stub: the IBL, an exit).
 * Called with interrupts off from the timer interrupt.
 */
int vmm_ring1_guest_eip(uint32_t eip, uint32_t *guest_eip);

/* profile_reset - forget every sample. */
void profile_reset(void);

#endif
