/*
 * Spinlocks for a uniprocessor monitor: disabling interrupts is what excludes
 * other contexts; the lock word turns a recursive acquisition -- which would
 * be a deadlock on SMP -- into an immediate panic with the lock's name.
 */
#include "kernel/spinlock.h"
#include "kernel/kernel.h"
#include "kernel/x86.h"

uint32_t spin_lock_irqsave(spinlock_t *l)
{
    uint32_t flags = read_eflags();
    cpu_cli();
    if (l->locked)
        panic("spinlock '%s' taken twice", l->name ? l->name : "?");
    l->locked = 1;
    return flags;
}

void spin_unlock_irqrestore(spinlock_t *l, uint32_t flags)
{
    l->locked = 0;
    if (flags & EFLAGS_IF)
        cpu_sti();
}
