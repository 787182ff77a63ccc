/*
 * Spinlocks with interrupt save/restore. hv86 runs on one CPU; the lock word
 * still exists so that a recursive acquisition (a deadlock on SMP) is caught.
 */
#ifndef HV86_KERNEL_SPINLOCK_H
#define HV86_KERNEL_SPINLOCK_H
#include <stdint.h>

typedef struct {
    volatile uint32_t locked;
    const char *name;
} spinlock_t;

#define SPINLOCK_INIT(n) { 0, (n) }

/* Disable interrupts, take the lock; returns the previous EFLAGS for restore. */
uint32_t spin_lock_irqsave(spinlock_t *l);
/* Release the lock and restore EFLAGS.IF as it was before spin_lock_irqsave. */
void spin_unlock_irqrestore(spinlock_t *l, uint32_t flags);

#endif
