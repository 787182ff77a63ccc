/*
 * repio — REP OUTSB with ECX = 2^32 - 1 to an unused port, over and over:
 * one instruction that, emulated in one go, held its vCPU thread (and
 * `vm stop`, which waits for that thread) for hours. hv86 emulates at most
 * a burst of elements per exit and leaves the rest to the next entry, as
 * hardware leaves a REP string instruction between iterations to take an
 * interrupt. test_vms.py fairness stops it with `vm stop` and wants the
 * console back at once. For hv86 only (HV_GUESTS): it never ends.
 */
#include "guest.h"

void guest_main(void)
{
    for (;;)
        asm volatile("cld\n\t"
                     "mov $0xFFFFFFFF, %%ecx\n\t"
                     "mov $0x100000, %%esi\n\t"
                     "mov $0x80, %%dx\n\t"
                     "rep outsb"
                     : : : "ecx", "esi", "edx", "memory");
}
