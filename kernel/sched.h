/*
 * Preemptive round-robin scheduler of kernel threads on one CPU.
 * The PIT interrupts at TIMER_HZ; a thread runs for at most SCHED_SLICE_TICKS
 * ticks before the next runnable thread takes over. Threads block on wait
 * queues or sleep for a number of ticks. vCPUs are threads too.
 */
#ifndef HV86_KERNEL_SCHED_H
#define HV86_KERNEL_SCHED_H
#include <stdbool.h>
#include <stdint.h>
#include "kernel/spinlock.h"

#define TIMER_HZ          1000u /* PIT interrupts per second: 1 tick = 1 ms */
#define SCHED_SLICE_TICKS 10u   /* time slice: 10 ms */
#define THREAD_NAME_MAX   16
#define THREAD_STACK_SIZE 16384u /* bytes of kernel stack per thread */

enum thread_state { THREAD_RUNNABLE, THREAD_RUNNING, THREAD_BLOCKED, THREAD_SLEEPING, THREAD_DEAD };

struct thread;
struct wait_queue {
    struct thread *head, *tail;
};
#define WAIT_QUEUE_INIT { 0, 0 }

/* Snapshot of one thread for the console's `threads` command. */
struct thread_info {
    uint32_t id;
    char name[THREAD_NAME_MAX];
    enum thread_state state;
    uint64_t cpu_ticks;   /* ticks spent running */
    uint32_t switches;    /* times switched in */
    const char *fault;    /* non-NULL if the thread was killed by an exception (points to fault_buf) */
    char fault_buf[64];
};

/* Thread entry point: arg is the value given to thread_create. Returning ends the thread. */
typedef void (*thread_fn)(void *arg);

void sched_init(void);
/* Create a runnable thread. Returns its id (> 0), or E_NOMEM. The stack is
 * THREAD_STACK_SIZE bytes from the heap with a guard canary at its bottom. */
int thread_create(const char *name, thread_fn fn, void *arg);
/* End the calling thread. Never returns. */
void thread_exit(void) __attribute__((noreturn));
/* Kill the calling thread because it faulted; reason is kept for `threads`. */
void thread_kill_current(const char *reason) __attribute__((noreturn));
/* Give the CPU to the next runnable thread. */
void thread_yield(void);
/*
 * thread_wait_interrupt - wait for a device that interrupts, unless *count
 * (bumped by its IRQ handler) differs from seen already. With no other
 * thread runnable the CPU halts until the next interrupt; else the caller
 * sleeps for at most 1 tick with its id in *waiter, and the device's IRQ
 * handler ends that sleep with thread_wake(*waiter) (0: nobody waits), so
 * the caller runs again at the end of that interrupt, ahead of the threads
 * that used their slices. The caller re-checks its device and its deadline
 * after every return. Interrupts are as they were on return.
 */
void thread_wait_interrupt(const volatile uint32_t *count, uint32_t seen, volatile uint32_t *waiter);
/* Block for at least ticks timer ticks. */
void thread_sleep(uint32_t ticks);
/*
 * thread_wake - end thread id's thread_sleep now instead of at its tick,
 * putting it first in the run queue (it waited for an event: a frame, a
 * disk interrupt; threads that used their slice wait behind it), and if it
 * is then runnable end the caller's slice at the next interrupt, so that
 * it runs within a tick (a receiver drains its queue before a sender fills
 * it). A thread that is not asleep (running, the caller itself from an
 * interrupt handler, or runnable) keeps the wake: its next thread_sleep
 * returns at once, so a wake between its last check and its sleep is not
 * lost. A no-op for a blocked thread or an id that does not exist (ids are
 * never reused). Only for threads whose every sleep re-checks what it
 * waits for, as a vCPU thread's halt does: a frame for its NIC
 * (net/vswitch.h kick) wakes it before its next timer event. Any context,
 * interrupts on or off.
 */
void thread_wake(uint32_t id);
/*
 * thread_handoff - if thread id is runnable, run it now and the caller
 * right after it, ahead of every other runnable thread: a vCPU thread that
 * queued work for its I/O thread lets it start the device, then goes on
 * (the I/O thread soon sleeps on the device's interrupt). A no-op if id is
 * the caller, not runnable, or does not exist. Thread context.
 */
void thread_handoff(uint32_t id);
/* Block the caller on q. The caller may hold lock l (taken with
 * spin_lock_irqsave, flags fl); it is released while asleep and re-taken. */
void wait_queue_sleep(struct wait_queue *q, spinlock_t *l, uint32_t *fl);
/* Wake the first / every thread blocked on q. Safe from interrupt handlers. */
void wait_queue_wake_one(struct wait_queue *q);
void wait_queue_wake_all(struct wait_queue *q);
/* Ticks since boot (monotonic). */
uint64_t timer_ticks(void);
/* Called by the PIT interrupt handler once per tick. */
void sched_tick(void);
/* Fill out[0..max) with current threads; returns how many. */
int sched_list(struct thread_info *out, int max);
uint32_t thread_current_id(void);
struct desc_ptr;
/*
 * thread_set_world - the calling thread from now on runs with page directory
 * cr3 (host physical), GDT gdtr (must stay valid while in use) and TSS.esp0
 * esp0 (0: leave as is); loaded now and at every switch back to this thread.
 * vCPU threads use it around guest execution; host threads never change it.
 */
void thread_set_world(uint32_t cr3, const struct desc_ptr *gdtr, uint32_t esp0);
/* thread_set_world_irqs_off - the same, called with interrupts already
 * disabled (a world switch into a guest): no EFLAGS save and restore,
 * whose POPF costs a translated-block end under QEMU TCG at every entry. */
void thread_set_world_irqs_off(uint32_t cr3, const struct desc_ptr *gdtr, uint32_t esp0);
/*
 * thread_set_cr3 - the calling thread from now on runs with page directory
 * cr3 (host physical), its GDT and esp0 unchanged; returns the page
 * directory it had. For a host thread that must work in one VM's address
 * space for a while (its per-VM window, kernel/vmwin.h): give the old value
 * back when done. Loads CR3 unless it is already cr3 (non-global TLB
 * entries, the window's among them, go with it: Intel SDM Vol. 3A §4.10.4.1).
 */
uint32_t thread_set_cr3(uint32_t cr3);
/* Set only the calling thread's TSS.esp0 (interrupts must be off). */
void thread_set_esp0(uint32_t esp0);
/* A pointer the thread's owner keeps per thread (NULL by default). */
void thread_set_local(void *p);
void *thread_local(void);
/* Ticks the calling thread has spent running. */
uint64_t thread_cpu_ticks(void);
/* True if the current context is a thread that may be killed on a fault
 * (not the idle/boot context, scheduler running). */
bool sched_can_kill_current(void);
/* Whether the len bytes at addr lie within the calling thread's own kernel
 * stack (the boot stack for the boot/idle thread): the only place a frame
 * pointer of monitor code can point. Ring-0 code may run with some other
 * value in EBP (hostexec runs a guest instruction with the guest's), so
 * whoever follows a frame chain (the profiler, a backtrace) asks first. */
bool sched_on_stack(uint32_t addr, uint32_t len);
/* Switch threads if the timer or a wakeup asked for it; called at the end of
 * every IRQ, interrupts disabled. */
void sched_preempt_point(void);
/* Turn the calling boot context into the idle thread. Never returns. */
void sched_idle_loop(void) __attribute__((noreturn));
const char *thread_current_name(void);

#endif
