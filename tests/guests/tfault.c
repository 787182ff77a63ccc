/*
 * tfault — a guest that triple-faults: with an empty IDT, int3 cannot be
 * delivered (#GP), nor can the #GP, nor the double fault that follows
 * (SDM Vol. 3A §6.15, "Interrupt 8"). Real hardware shuts down; hv86 must
 * stop this VM with a reason and nothing else.
 */
#include "guest.h"

void guest_main(void)
{
    static const struct dtr empty = { 0, 0 };
    printf("INFO about to triple-fault\n");
    lidt(&empty);
    asm volatile("int3");
    check("survived-triple-fault", false, "int3 with an empty IDT returned");
}
